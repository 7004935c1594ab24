"""Environment policies: what the lint blocks on, and what it lets through, per environment.

In ``pyproject.toml``, one table per environment name (the names ``--env`` takes)::

    [tool.alembic-deploy.env.dev]
    fail-on = "error"                      # the lowest severity that blocks (error, warning, notice)
    allow = ["drop-table", "truncate"]     # rules whose findings never block there

    [tool.alembic-deploy.env.production]
    fail-on = "warning"
    backup = "destructive"                 # never, always, destructive or major (the backup step)
    backup-before = ["contract", "drop-column"]   # with destructive: these classes or rule ids
    backup-on-failure = "stop"             # stop (exit 11) or continue (a warning)
    require-promotion = true               # plan blocks on revisions a lower environment never applied

    [tool.alembic-deploy.env.qa]
    database-url-env = "QA_DATABASE_URL"   # or database-url = "...": where plan reads qa's journal

``check`` and ``plan`` apply the policy of ``--env``; without ``--env``, ``check`` applies the
strictest of them all (the lowest ``fail-on``, only the rules every environment allows), so a pull
request fails on what would block in any environment. ``--fail-on`` on the command line wins over
a policy's ``fail-on``.

``backup``, ``backup-major-revisions``, ``backup-before`` and ``backup-on-failure`` are read by
``upgrade --env`` before migrating (:mod:`.steps.backup`): a ``backup`` setting given on the command
line, in the environment or in ``[tool.alembic-deploy]`` wins over the policy's. ``backup-before``
alone (without ``backup``, as releases before the backup step wrote it) means ``destructive`` with
those classes or rule ids as the ones that call for a backup.

``database-url`` (or ``database-url-env``, the name of an environment variable holding it) and
``require-promotion`` are read by ``plan --env`` for the promotion order (:mod:`.promotion`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from .errors import ConfigError
from .masking import register_url

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from .lint import RevisionLint

#: The lint's severities, the most severe first (``--fail-on`` and ``fail-on`` take one).
SEVERITIES: Final = ("error", "warning", "notice")
KEYS: Final = frozenset({
    "fail-on", "allow", "backup-before", "database-url", "database-url-env", "require-promotion",
    "backup", "backup-major-revisions", "backup-on-failure",
})
#: When the backup step backs up (``backup``; :mod:`.steps.backup`).
BACKUP_MODES: Final = ("never", "always", "destructive", "major")
#: What a failed backup does (``backup-on-failure``).
BACKUP_ON_FAILURE: Final = ("stop", "continue")


@dataclass(frozen=True)
class Policy:
    name: str
    fail_on: str | None = None
    allow: frozenset[str] = frozenset()
    #: Compatibility classes or rule ids a backup must precede (read by the backup step).
    backup_before: frozenset[str] = frozenset()
    #: Where this environment's database is, for the promotion check of a higher one: a URL, or
    #: the name of an environment variable holding it. Never shown.
    database_url: str | None = dataclasses.field(default=None, repr=False)
    database_url_env: str | None = None
    #: Does ``plan`` block (rather than warn) on a revision a lower environment never applied?
    require_promotion: bool = False
    #: When ``upgrade`` backs up first (:data:`BACKUP_MODES`; None: not set here).
    backup: str | None = None
    #: ``major``: more pending revisions than this call for a backup.
    backup_major_revisions: int | None = None
    #: :data:`BACKUP_ON_FAILURE` (None: not set here).
    backup_on_failure: str | None = None


def parse_policies(raw: Mapping[str, Any], source: str) -> tuple[Policy, ...]:
    """The policies of ``[tool.alembic-deploy.env]`` (``raw``), checked for shape; ``source`` names
    the file in errors. Rule ids are checked when the lint applies them (:func:`apply`)."""
    policies = []
    for name, table in raw.items():
        where = f"[tool.alembic-deploy.env.{name}] of {source}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where} must be a table with fail-on, allow and backup-before.")
        unknown = sorted(set(table) - KEYS)
        if unknown:
            raise ConfigError(f"Unknown key(s) {', '.join(unknown)} in {where}. Known keys: {', '.join(sorted(KEYS))}.")
        fail_on = table.get("fail-on")
        if fail_on is not None and fail_on not in SEVERITIES:
            raise ConfigError(f"fail-on in {where} must be one of {', '.join(SEVERITIES)}, got {fail_on!r}.")
        lists = {}
        for key in ("allow", "backup-before"):
            value = table.get(key, [])
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{key} in {where} must be a list of names, got {value!r}.")
            lists[key] = frozenset(value)
        texts = {}
        for key in ("database-url", "database-url-env"):
            value = table.get(key)
            if value is not None and (not isinstance(value, str) or not value):
                raise ConfigError(f"{key} in {where} must be a non-empty string.")
            texts[key] = value
        if texts["database-url"] is not None and texts["database-url-env"] is not None:
            raise ConfigError(f"{where} gives both database-url and database-url-env: keep one.")
        register_url(texts["database-url"])
        required = table.get("require-promotion", False)
        if not isinstance(required, bool):
            raise ConfigError(f"require-promotion in {where} must be true or false, got {required!r}.")
        backup = _choice(table, "backup", BACKUP_MODES, where)
        on_failure = _choice(table, "backup-on-failure", BACKUP_ON_FAILURE, where)
        major = table.get("backup-major-revisions")
        if major is not None and (isinstance(major, bool) or not isinstance(major, int) or major < 0):
            raise ConfigError(f"backup-major-revisions in {where} must be a whole number from 0, got {major!r}.")
        policies.append(Policy(name, fail_on, lists["allow"], lists["backup-before"], texts["database-url"],
                               texts["database-url-env"], required, backup, major, on_failure))
    return tuple(policies)


def _choice(table: Mapping[str, Any], key: str, allowed: tuple[str, ...], where: str) -> str | None:
    value = table.get(key)
    if value is not None and value not in allowed:
        raise ConfigError(f"{key} in {where} must be one of {', '.join(allowed)}, got {value!r}.")
    return value if value is None else str(value)


def choose(policies: Sequence[Policy], env: str | None) -> Policy | None:
    """The policy of ``env`` (None when it has none), or with no ``env`` the strictest of all."""
    if env is not None:
        return next((p for p in policies if p.name == env), None)
    if not policies:
        return None
    floors = [p.fail_on or "error" for p in policies]
    return Policy(
        "strictest of " + ", ".join(p.name for p in policies),
        max(floors, key=SEVERITIES.index),
        frozenset.intersection(*(p.allow for p in policies)),
        frozenset.union(*(p.backup_before for p in policies)),
    )


def apply(policy: Policy | None, lints: Sequence[RevisionLint]) -> None:
    """Mark the findings of rules ``policy`` allows as allowed (kept, never blocking)."""
    if policy is None or not policy.allow:
        return
    from .lint import BY_ID

    unknown = sorted(policy.allow - set(BY_ID))
    if unknown:
        raise ConfigError(
            f"The {policy.name} policy allows unknown rule(s) {', '.join(unknown)}. Rules: {', '.join(BY_ID)}."
        )
    for lint in lints:
        lint.findings = [
            dataclasses.replace(f, allowed=f"allowed in {policy.name} by its policy")
            if f.rule in policy.allow and f.allowed is None else f
            for f in lint.findings
        ]


def fail_on(given: str | None, policy: Policy | None) -> str:
    """The severity that blocks: ``--fail-on`` if given, else the policy's, else error."""
    return given or (policy.fail_on if policy is not None else None) or "error"
