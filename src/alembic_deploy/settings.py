"""One typed settings object, resolved once: CLI flags > ``ALEMBIC_DEPLOY_*`` environment variables >
``[tool.alembic-deploy]`` in pyproject.toml > defaults.

A field named ``lock_timeout_wait`` is set by ``--lock-timeout-wait``, ``ALEMBIC_DEPLOY_LOCK_TIMEOUT_WAIT``
or ``lock-timeout-wait = 600`` in pyproject.toml. The database URL is also read from ``DATABASE_URL``
(the variable every container platform already sets); it is never shown unmasked.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .secrets import mask_url, register_url

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
    # Issue-4 knobs: DDL lock timeout on the migrating connection, retries on lock timeouts.
    ddl_lock_timeout: float = 2.0
    statement_timeout: float | None = None
    retries: int = 5
    retry_deadline: float = 300.0
    # Issue-5: the health gate before migrating (upgrade --wait-healthy) and the entrypoint (run).
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
        """Merge the sources; ``flags`` holds only options the user gave (None means not given)."""
        flags = {k: v for k, v in (flags or {}).items() if v is not None and v != ()}
        environ = os.environ if environ is None else environ
        config = flags.get("config") or environ.get(ENV_PREFIX + "CONFIG") or cls.config
        file_values = _read_pyproject(pyproject or _find_pyproject(Path(config)))
        values: dict[str, Any] = {}
        for f in fields(cls):
            key = f.name
            if key in flags:
                values[key] = _coerce(f, flags[key], f"--{key.replace('_', '-')}")
            elif ENV_PREFIX + key.upper() in environ:
                values[key] = _coerce(f, environ[ENV_PREFIX + key.upper()], ENV_PREFIX + key.upper())
            elif key.replace("_", "-") in file_values:
                name = key.replace("_", "-")
                values[key] = _coerce(f, file_values[name], f"{name} in [tool.alembic-deploy]")
        values.setdefault("database_url", environ.get("DATABASE_URL") or None)
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
        for name in ("wait_timeout", "lock_timeout_wait", "ddl_lock_timeout", "retry_deadline", "statement_timeout"):
            if (getattr(self, name) or 0) < 0:
                raise ConfigError(
                    f"--{name.replace('_', '-')} must be zero or more seconds, "
                    f"got {getattr(self, name)}."
                )
        if self.retries < 0:
            raise ConfigError(f"--retries must be zero or more, got {self.retries}.")
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


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _coerce(f: dataclasses.Field[Any], value: Any, source: str) -> Any:
    kind = str(f.type)
    try:
        if kind.startswith("bool"):
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE:
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
