"""The timeouts and retries in force while one revision runs: the command-line values, overridden
by the revision's own ``alembic_deploy`` dict in its file, without touching env.py::

    alembic_deploy = {"lock_timeout": 10, "statement_timeout": None, "retries": 0}

``lock_timeout`` / ``statement_timeout``: seconds, or None for "none imposed by alembic-deploy"
(the session keeps its own value; e.g. a long ``CREATE INDEX CONCURRENTLY`` needs no statement
timeout). ``retries``: how often this revision may be retried (0: never). Keys left out take the
command-line values, and each value must pass the check of the setting it overrides (exit 2,
naming the file, before the plan's first revision runs); other keys belong to other features.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..settings import Settings

#: The keys of a revision's ``alembic_deploy`` dict that this module reads.
OPTION_KEYS = ("lock_timeout", "statement_timeout", "retries")


@dataclass(frozen=True)
class RevisionTimeouts:
    """The values in force while one revision runs (None: nothing imposed)."""

    lock_timeout: float | None
    statement_timeout: float | None
    retries: int


#: The setting each key of the revision's dict overrides: its value must pass the same check.
_SETTING_OF: dict[str, str] = {"lock_timeout": "ddl_lock_timeout", "statement_timeout": "statement_timeout",
                               "retries": "retries"}


def revision_timeouts(revision: str | None, options: dict[str, Any], settings: Settings,
                      path: str | None = None) -> RevisionTimeouts:
    """Command-line values overridden by the revision's ``alembic_deploy`` dict; ConfigError
    (exit 2, before anything runs) for a value of the wrong type or one the setting it overrides
    would refuse (infinite, negative, beyond what a server takes), naming ``path``, its file."""
    from ..settings import check

    values: dict[str, Any] = {
        "lock_timeout": settings.ddl_lock_timeout or None,
        "statement_timeout": settings.statement_timeout or None,
        "retries": settings.retries,
    }
    where = f"Revision {revision}" + (f" ({path})" if path else "")
    for key in OPTION_KEYS:
        if key not in options:
            continue
        value = options[key]
        if key == "retries":
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        else:
            ok = value is None or (isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0)
        if not ok:
            expected = "a whole number, 0 or more" if key == "retries" else "seconds (0 or more) or None"
            raise ConfigError(
                f"{where} sets alembic_deploy[{key!r}] = {value!r}; expected {expected}, "
                f'e.g. alembic_deploy = {{"lock_timeout": 10, "statement_timeout": None, "retries": 0}}.'
            )
        check(_SETTING_OF[key], value, f"{where}: alembic_deploy[{key!r}]")
        values[key] = (value or None) if key != "retries" else value
    return RevisionTimeouts(**values)
