"""Runs that died: found at the start of every run, under the migration lock.

A crash (kill -9, OOM, a lost host) leaves the run's journal row ``running``. Its locks died with
it: session locks end with the session, the SQLite file lock with the process. So a run that holds
the lock knows every *other* ``running`` row is a dead run: nobody else can be migrating. It
closes each such row as ``crashed`` (the outcome name for "its process vanished without recording
an outcome") and reports it: "previous run on host X (pid P) crashed while applying revision R".
Before reading the database it waits for the dead run's migrating session to end on the server,
if the server still runs it: a MySQL ``ALTER`` or a PostgreSQL statement keeps running after its
client died, and only its end settles what it changed.

What the dead (or a failed) run left is then looked up (:mod:`alembic_deploy.partial`): a partly
applied revision refuses the upgrade (exit 8) until ``alembic-deploy repair`` settles it.
``status`` reads the same without writing (:mod:`.unfinished`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..aftermath import crash_summary, partial_error
from ..errors import LockNotAcquired
from ..observer import event
from ..partial import find_partial, read_progress
from .repair import choices

if TYPE_CHECKING:
    from ..alembic_env import AlembicProject
    from ..backends import MigrationLock
    from ..deployment import Deployment
    from ..journal import Journal
    from ..partial import Partial
    from ..progress.record import Progress
    from ..report import DeployReport

#: How often to look whether a dead run's session still runs on the server.
SESSION_POLL_SECONDS = 0.1


def check(
    deployment: Deployment, journal: Journal, project: AlembicProject, report: DeployReport, lock: MigrationLock,
) -> None:
    """For ``upgrade``: close and report crashed runs, then refuse (exit 8) over a partial revision."""
    partial = recover(deployment, journal, project, report, lock)
    if partial is not None:
        raise partial_error(partial, deployment.backend, choices)


def recover(
    deployment: Deployment, journal: Journal, project: AlembicProject, report: DeployReport, lock: MigrationLock,
) -> Partial | None:
    """Close the rows of crashed runs (reporting each) and return the partly applied revision one
    of them, or a failed run, left behind; None when there is none. Call under the migration lock,
    after the caller's own row is written (it is never taken for a crashed one).

    A crashed holder's last progress record kept outside its journal row (MySQL's volatile
    table, :meth:`~alembic_deploy.journal.Journal.adopt_volatile`; SQLite's lock file,
    :class:`~alembic_deploy.backends.sqlite.ProgressLog`) goes into its row first."""
    journal.adopt_volatile()
    log = lock.progress_log
    if log is not None and log.inherited is not None:
        record = log.inherited
        if record.get("journal_id") != report.journal_id:
            journal.adopt_progress(record.get("journal_id"), record.get("pid"), record["progress"])
        log.inherited = None
    crashed = journal.unfinished(exclude=report.journal_id)
    for row in crashed:
        _wait_for_session(deployment, read_progress(row))
    partial = find_partial(deployment, journal, project, exclude=report.journal_id)
    for row in crashed:
        what = crash_summary(deployment, project, row, partial)
        note = (
            f"previous run on host {row['host']} (pid {row['pid']}, journal #{row['id']}, started "
            f"{str(row['started_at'])[:19]}) crashed {what}"
        )
        journal.mark_crashed(row["id"], f"crashed {what}; found by run #{report.journal_id} holding the lock")
        if partial is not None and partial.row["id"] == row["id"]:
            partial.row["outcome"] = "crashed"
        report.warnings.append(note)
        deployment.echo(event("crashed_run", f"warning: {note}", "warning", journal_id=row["id"],
                              host=row["host"], pid=row["pid"]))
    return partial


def _wait_for_session(deployment: Deployment, progress: Progress | None) -> None:
    """Wait until the dead run's migrating session has ended on the server (its last statement
    may still be running there: servers notice a vanished client only when they next write)."""
    if progress is None or progress.session is None:
        return
    backend, settings = deployment.backend, deployment.settings
    deadline = time.monotonic() + settings.lock_timeout_wait
    told = False
    with deployment.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        while backend.session_alive(conn, progress.session):
            if time.monotonic() >= deadline:
                raise LockNotAcquired(
                    f"A crashed deploy's migrating session ({progress.session}) is still running on the "
                    f"server after {settings.lock_timeout_wait:g}s; what it changes is not settled until "
                    "it ends. Wait for it, or end it on the server (PostgreSQL pg_terminate_backend, "
                    "MySQL KILL), then deploy again.",
                    session=progress.session,
                )
            if not told:
                deployment.echo(event(
                    "crashed_session_waiting",
                    f"Waiting for session {progress.session} of a crashed deploy to end on the server...",
                    session=str(progress.session),
                ))
                told = True
            time.sleep(SESSION_POLL_SECONDS)
