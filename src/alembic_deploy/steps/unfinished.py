"""What ``status`` tells of unfinished work: what the next deploy will find and do about it.

A run's ``running`` row without an end is either a deploy migrating now (it holds the migration
lock) or one that died (nobody holds the lock for it: locks die with their session or process).
``status`` tells them apart by trying the lock once, and for a dead run reads, while it holds the
lock, the progress records that run kept outside its journal row (SQLite's lock file, MySQL's
volatile table), without moving or writing them: so it names the revision a killed run left
partly applied, as the next deploy will.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..aftermath import crashed_cleanly, partial_error
from ..errors import EXIT_OK, AlembicDeployError, LockNotAcquired
from ..partial import find_partial
from .repair import choices

if TYPE_CHECKING:
    from ..alembic_env import AlembicProject
    from ..deployment import Deployment
    from ..journal import Journal
    from ..partial import Partial


def describe_unfinished(deployment: Deployment, journal: Journal, project: AlembicProject) -> dict[str, Any] | None:
    """For ``status``: what the journal shows left unfinished; None when nothing is.

    ``state``, with the ``exit_code`` status exits with (the code the next deploy would give):

    * ``partial`` (8): a revision is partly applied, by a run that failed, was interrupted or
      died; the next deploy refuses until ``alembic-deploy repair`` settles it;
    * ``crashed`` (0): a run died (it no longer holds the lock) with no revision partly applied;
      the next deploy records it as crashed and migrates from the version table;
    * ``running`` (0): a deploy holds the migration lock now (or the lock could not be tried).
    """
    if not journal.exists():
        return None
    running = journal.unfinished()
    if not running:
        partial = find_partial(deployment, journal, project, exclude=None)
        return None if partial is None else _partial(deployment, partial, None)
    row = running[-1]
    started = (f"journal #{row['id']}: {row['command']} on host {row['host']}, pid {row['pid']}, started "
               f"{str(row['started_at'])[:19]}")
    try:
        with deployment.lock(timeout=0) as lock:
            outside = journal.outside_records()
            inherited = getattr(lock.progress_log, "inherited", None)
            if inherited is not None and isinstance(inherited.get("journal_id"), int):
                outside[inherited["journal_id"]] = (inherited.get("pid"), inherited["progress"])
            partial = find_partial(deployment, journal, project, exclude=None, outside=outside)
    except LockNotAcquired:
        return _running(row, f"A deploy is migrating now ({started}): it holds the migration lock.")
    except AlembicDeployError:  # the lock cannot be tried (e.g. a SQLite folder this user cannot write)
        return _running(row, f"{started} has not recorded its end: a deploy is running now, or it died; the "
                             "next deploy waits for it, or reports it crashed and settles what it left.")
    if partial is not None:
        crashed = next((r for r in running if r["id"] == partial.row["id"]), None)
        return _partial(deployment, partial, started if crashed is not None else None)
    return {
        "state": "crashed", "exit_code": EXIT_OK, "journal_id": row["id"], "revision": None,
        "message": crashed_cleanly(started),
    }


def _running(row: dict[str, Any], message: str) -> dict[str, Any]:
    return {"state": "running", "exit_code": EXIT_OK, "journal_id": row["id"], "revision": None, "message": message}


def _partial(deployment: Deployment, partial: Partial, crashed: str | None) -> dict[str, Any]:
    """``crashed``: the dead run's description when the revision was left by a run that died
    (its row still says ``running``; the next deploy closes it as ``crashed``)."""
    if crashed is not None:
        partial.row["outcome"] = "crashed"
    error = partial_error(partial, deployment.backend, choices, crashed)
    return {
        "state": "partial", "exit_code": error.exit_code, "journal_id": partial.row["id"],
        "revision": partial.revision, "message": error.message, "error": error.to_dict(),
    }
