"""One typed settings object, resolved once: CLI flags > ``ALEMBIC_DEPLOY_*`` environment variables >
``[tool.alembic-deploy]`` in pyproject.toml > defaults.

A field named ``lock_timeout_wait`` is set by ``--lock-timeout-wait``, ``ALEMBIC_DEPLOY_LOCK_TIMEOUT_WAIT``
or ``lock-timeout-wait = 600`` in pyproject.toml. The database URL is also read from ``DATABASE_URL``
(the variable every container platform already sets); it is never shown unmasked.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final

from .errors import ConfigError
from .provenance import COLUMN_SIZES
from .masking import mask_url, register_url

ENV_PREFIX = "ALEMBIC_DEPLOY_"


@dataclass(frozen=True)
class Settings:
    config: str = "alembic.ini"
    name: str = "alembic"
    x: tuple[str, ...] = ()
    database_url: str | None = field(default=None, repr=False)
    env: str | None = None
    wait_timeout: float = 60.0
    lock_timeout_wait: float = 600.0
    journal_table: str = "alembic_deploy_history"
    fast_path: bool = True
    json: bool = False
    debug: bool = False
    git_sha: str | None = None
    actor: str | None = None
    run_url: str | None = None
    # The migrating connection's DDL lock timeout and statement timeout, retries on lock timeouts.
    ddl_lock_timeout: float = 2.0
    statement_timeout: float | None = None
    retries: int = 5
    retry_deadline: float = 300.0
    # The health gate before migrating (upgrade --wait-healthy) and the entrypoint (run).
    wait_healthy: tuple[str, ...] = ()
    healthy_count: int = 3
    health_timeout: float = 300.0
    health_expect: tuple[str, ...] = ()
    health_interval: float = 1.0
    run_mode: str | None = None  # migrate | wait-for-schema | no-migrate
    schema_timeout: float = 300.0
    accept_ahead: bool = False

    @property
    def config_path(self) -> Path:
        return Path(self.config).expanduser().absolute()

    @property
    def masked_url(self) -> str | None:
        return mask_url(self.database_url) if self.database_url else None

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def resolve(
        cls,
        flags: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        pyproject: Path | None = None,
    ) -> Settings:
        """Merge the sources; ``flags`` holds only options the user gave (None means not given).

        Each value is checked as it is taken (:func:`check`), so a bad one fails here with exit 2
        naming where it came from, before anything connects: never later as a driver's error.
        """
        flags = {k: v for k, v in (flags or {}).items() if v is not None and v != ()}
        environ = os.environ if environ is None else environ
        config = flags.get("config") or environ.get(ENV_PREFIX + "CONFIG") or cls.config
        pyproject = pyproject or _find_pyproject(Path(config))
        file_values = _read_pyproject(pyproject)
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = f.name
            if key in flags:
                source = f"--{key.replace('_', '-')}"
                value = flags[key]
            elif ENV_PREFIX + key.upper() in environ:
                source = ENV_PREFIX + key.upper()
                value = environ[source]
            elif key.replace("_", "-") in file_values:
                source = f"{key.replace('_', '-')} in [tool.alembic-deploy] of {pyproject}"
                value = file_values[key.replace("_", "-")]
            else:
                continue
            values[key] = check(key, _coerce(f, value, source), source)
        values.setdefault("database_url", environ.get("DATABASE_URL") or None)
        # Provenance a CI system supplies is clipped to the journal's columns when written
        # (provenance.clip), never refused: a deploy must not fail over the shape of a commit id.
        values.setdefault("git_sha", environ.get("GITHUB_SHA"))
        values.setdefault("actor", environ.get("GITHUB_ACTOR"))
        if "run_url" not in values and environ.get("GITHUB_RUN_ID"):
            server = environ.get("GITHUB_SERVER_URL", "https://github.com")
            values["run_url"] = (
                f"{server}/{environ.get('GITHUB_REPOSITORY', '')}/actions/runs/{environ['GITHUB_RUN_ID']}"
            )
        register_url(values.get("database_url"))
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check every field (as :func:`check` does, naming each by its flag) and how they combine;
        for Settings built directly rather than through :meth:`resolve`."""
        for f in fields(self):
            check(f.name, getattr(self, f.name), f"--{f.name.replace('_', '-')}")
        for item in self.x:
            if "=" not in item:
                raise ConfigError(
                    f"-x takes key=value pairs, as in alembic; got {item!r}. "
                    "Write it as -x key=value."
                )
        from .steps.health import validate as validate_health
        from .entrypoint import validate as validate_run

        validate_health(self)
        validate_run(self)


#: The longest wait or timeout a setting may ask for: PostgreSQL takes lock and statement timeouts
#: in milliseconds as a 32-bit integer, so 2147483 s (about 24.8 days) is the most every backend
#: accepts; no deploy step is meant to wait longer.
MAX_SECONDS: Final = 2_147_483.0
SECONDS: Final = frozenset({
    "wait_timeout", "lock_timeout_wait", "ddl_lock_timeout", "statement_timeout", "retry_deadline",
    "health_timeout", "health_interval", "schema_timeout",
})
#: Inclusive ranges of the whole-number settings.
COUNTS: Final = {"retries": (0, 10_000), "healthy_count": (1, 10_000)}
#: The journal table's name: a plain identifier, so it means the same table unquoted or quoted on
#: every backend and needs no escaping, within the strictest backend's limit (PostgreSQL's 63
#: bytes; MySQL/MariaDB allow 64, SQLite any length). The URL, and so the backend, may only be
#: known once alembic.ini or env.py is read, after the settings: the strictest limit holds for all.
IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_IDENTIFIER: Final = 63
#: Settings a person chooses that the journal stores in a column of its own.
JOURNALED: Final = {"env": "environment"}


def check(name: str, value: Any, source: str) -> Any:
    """``value`` of setting ``name`` if usable, else a :class:`ConfigError` naming ``source``
    (the flag, environment variable or pyproject key it came from) and what it accepts."""
    if value is None:
        return value
    if name in SECONDS:
        if not (math.isfinite(value) and 0 <= value <= MAX_SECONDS):
            raise ConfigError(
                f"{source} must be a number of seconds from 0 to {MAX_SECONDS:.0f}, got {value!r}. "
                "Give a finite value such as 30 (0 where the option documents it as 'no limit')."
            )
    elif name in COUNTS:
        low, high = COUNTS[name]
        if not low <= value <= high:
            raise ConfigError(f"{source} must be a whole number from {low} to {high}, got {value!r}.")
    elif name == "journal_table":
        if not IDENTIFIER.match(value) or len(value) > MAX_IDENTIFIER:
            raise ConfigError(
                f"{source} must be a plain table name: a letter or underscore, then letters, digits or "
                f"underscores, at most {MAX_IDENTIFIER} characters (the longest PostgreSQL allows); "
                f"got {value!r}. Name the journal table e.g. deploy_history."
            )
    elif name in JOURNALED and len(value) > COLUMN_SIZES[JOURNALED[name]]:
        raise ConfigError(
            f"{source} is {len(value)} characters long; the journal's {JOURNALED[name]} column holds "
            f"{COLUMN_SIZES[JOURNALED[name]]}. Give a shorter name."
        )
    return value


def _find_pyproject(config: Path) -> Path | None:
    for folder in (config.expanduser().absolute().parent, Path.cwd()):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _read_pyproject(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Could not read {path}: {exc}. Fix the file or remove it.") from None
    section = data.get("tool", {}).get("alembic-deploy", {})
    if not isinstance(section, dict):
        raise ConfigError(f"[tool.alembic-deploy] in {path} must be a table.")
    known = {f.name.replace("_", "-") for f in fields(Settings)}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigError(
            f"Unknown key(s) {', '.join(unknown)} in [tool.alembic-deploy] of {path}. "
            f"Known keys: {', '.join(sorted(known))}."
        )
    return section


#: How a yes/no setting may be written in an environment variable.
TRUE_WORDS: Final = frozenset({"1", "true", "yes", "on"})
_FALSE = {"0", "false", "no", "off", ""}


def _coerce(f: dataclasses.Field[Any], value: Any, source: str) -> Any:
    kind = str(f.type)
    try:
        if kind.startswith("bool"):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in TRUE_WORDS:
                return True
            if text in _FALSE:
                return False
            raise ValueError(value)
        if kind.startswith("tuple"):
            if isinstance(value, str):
                return tuple(v for v in value.split(",") if v)
            return tuple(str(v) for v in value)
        if value in ("", None) and "None" in kind:
            return None
        if kind.startswith("float"):
            return float(value)
        if kind.startswith("int"):
            return int(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{source} has an invalid value {value!r}: expected {kind.split(' ')[0]}."
        ) from None
