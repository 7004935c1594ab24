"""Run env.py without ever freezing production, and retry a revision that was safely rolled back.

The outage this prevents: an ``ALTER TABLE`` waits behind one long transaction, and every query of
the application queues behind the ALTER. So when each revision starts (inside its transaction,
before its first statement) the migrating session gets a **lock timeout** (``--ddl-lock-timeout``,
2 s by default) and, only when asked, a **statement timeout**: a blocked ALTER gives up after
that long and the application's queries flow again.

A revision that gave up this way is retried with jittered exponential backoff (up to
``--retries`` times within ``--retry-deadline``) when running it again is safe: it ran inside a
transaction that was rolled back (PostgreSQL), or none of its statements had completed and the
version table shows it not applied (MySQL/MariaDB, where DDL commits statement by statement). A
retry runs env.py again under the same migration lock, and alembic resumes from the database's
current revision. A lost connection (database restart) is handled the same way once the database
is back within ``--wait-timeout``; if the lock session died with it, the lock is taken again first.

A revision can set its own values in its file, without touching env.py::

    alembic_deploy = {"lock_timeout": 10, "statement_timeout": None, "retries": 0}

``lock_timeout`` / ``statement_timeout``: seconds, or None for "none imposed by alembic-deploy"
(the session keeps its own value; e.g. a long ``CREATE INDEX CONCURRENTLY`` needs no statement
timeout). ``retries``: how often this revision may be retried (0: never). Keys left out take the
command-line values, and each value must pass the check of the setting it overrides (exit 2,
naming the file, before the plan's first revision runs); other keys belong to other features.

Timeouts are set on the raw DBAPI connection (see ``Backend.write_settings``) so that alembic's
view of the transaction and the statement counters below never see them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from .. import retrying
from ..errors import AlembicDeployError, ConfigError, DatabaseUnreachable, MigrationFailed
from ..masking import scrub
from .blockers import BlockerWatch, describe_blockers

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection
    from tenacity import Retrying

    from ..alembic_env import AlembicProject, RunObserver, RunResult
    from ..deployment import Deployment
    from ..backends import MigrationLock
    from ..report import DeployReport
    from ..signals import InterruptState

#: First pause before a retry; it doubles each time, plus up to RETRY_JITTER_SECONDS of jitter.
RETRY_INITIAL_SECONDS = 0.5
RETRY_MAX_BACKOFF_SECONDS = 10.0
RETRY_JITTER_SECONDS = 0.5
#: The keys of a revision's ``alembic_deploy`` dict that this module reads.
OPTION_KEYS = ("lock_timeout", "statement_timeout", "retries")

LOCK_TIMEOUT = "lock-timeout"
CONNECTION_LOST = "connection-lost"
STATEMENT_TIMEOUT = "statement-timeout"


@dataclass(frozen=True)
class RevisionTimeouts:
    """The values in force while one revision runs (None: nothing imposed)."""

    lock_timeout: float | None
    statement_timeout: float | None
    retries: int


#: The setting each key of the revision's dict overrides: its value must pass the same check.
_SETTING_OF: dict[str, str] = {"lock_timeout": "ddl_lock_timeout", "statement_timeout": "statement_timeout",
                               "retries": "retries"}


def revision_timeouts(revision: str | None, options: dict[str, Any], settings: Any,
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


@dataclass
class RevisionProgress:
    """What the migrating session did for the revision in flight (None: before the first one).

    Enough to tell whether running the revision again is safe. Counts statements sent through
    SQLAlchemy on the migrating connection (alembic's operations and ``op.execute``).
    """

    revision: str | None
    timeouts: RevisionTimeouts
    sent: int = 0
    completed: int = 0
    #: A statement of this revision ran in autocommit mode (``autocommit_block``): alembic
    #: committed the revision's earlier work when the block began, and the block's own
    #: statements commit one by one.
    outside_transaction: bool = False


def retry_safe(transactional_ddl: bool, progress: RevisionProgress | None, kind: str, applied: bool) -> bool:
    """May the failed revision run again without applying anything twice?

    * nothing of it reached the server: yes;
    * it is recorded as applied: no (there is nothing to retry);
    * transactional DDL and no statement outside the transaction: yes, it was rolled back whole;
    * otherwise only a lock timeout of its very first statement: the statement got no lock, so
      it changed nothing, and nothing before it ran. (Statement-level progress tracking can widen
      this on MySQL/MariaDB: a failed revision whose completed statements were all rolled back.)
    """
    if progress is None or progress.sent == 0:
        return True
    if applied:
        return False
    if transactional_ddl and not progress.outside_transaction:
        return True
    return kind == LOCK_TIMEOUT and progress.completed == 0 and not progress.outside_transaction


class MigratingSession:
    """The migrating connection of one attempt: timeouts at each revision start, statement
    counters, the blocker watch and the server-side cancel for signals."""

    def __init__(self, deployment: Deployment, project: AlembicProject, interrupt: InterruptState, attempt: int) -> None:
        self.deployment = deployment
        self.backend = deployment.backend
        self.project = project
        self.interrupt = interrupt
        self.attempt = attempt
        self.connection: Connection | None = None
        self.dbapi: Any = None
        self.session_id: Any = None
        self.progress: RevisionProgress | None = None
        self.watch: BlockerWatch | None = None
        self._original: dict[str, str] | None = None
        self._current: dict[str, str] = {}
        #: The timeouts of a revision that sets none (most of them), and the ones last imposed.
        self._defaults: RevisionTimeouts | None = None
        self._imposed: RevisionTimeouts | None = None
        self._stop_listening: Callable[[], None] | None = None

    # -- RunObserver hooks ---------------------------------------------------------------------
    def configured(self, ctx: Any) -> None:
        """env.py called context.configure() and alembic read the current revision."""
        from ..connection_events import listen

        self.interrupt.raise_if_interrupted()
        if ctx.connection is None:
            return
        self.connection = ctx.connection
        self.dbapi = ctx.connection.connection.dbapi_connection
        self.session_id = self.backend.session_id(self.dbapi)
        self.watch = BlockerWatch(self.deployment.engine, self.backend, self.session_id)
        self.progress = RevisionProgress(None, self.timeouts(None, {}))
        self._stop_listening = listen(self.connection, self._before_statement, self._after_statement)
        self.interrupt.cancel = self.cancel

    def planned(self, planned: list[tuple[str, str]]) -> None:
        """Refuse a bad ``alembic_deploy`` dict before the first revision runs."""
        for rev, _doc in planned:
            self.timeouts(rev, self.project.options(rev))

    def revision_started(self, revision: str, options: dict[str, Any]) -> None:
        self.interrupt.raise_if_interrupted()
        timeouts = self.timeouts(revision, options)
        self.progress = RevisionProgress(revision, timeouts)
        if self.dbapi is not None:
            self._impose(timeouts)
        if self.watch is not None:
            self.watch.watch(timeouts.lock_timeout)

    def close(self) -> None:
        if self.interrupt.cancel == self.cancel:
            self.interrupt.cancel = None
        stop, self._stop_listening = self._stop_listening, None
        if stop is not None:
            stop()
        if self.watch is not None:
            self.watch.close()

    # -- helpers ----------------------------------------------------------------------------------
    def timeouts(self, revision: str | None, options: dict[str, Any]) -> RevisionTimeouts:
        if not options and self._defaults is not None:
            return self._defaults
        path = self.project.path(revision) if options and revision is not None else None
        timeouts = revision_timeouts(revision, options, self.deployment.settings, path)
        if timeouts.lock_timeout:
            timeouts = replace(timeouts, lock_timeout=self.backend.effective_lock_timeout(timeouts.lock_timeout))
        if not options:
            self._defaults = timeouts
        return timeouts

    @property
    def blockers(self) -> list[dict[str, Any]]:
        return list(self.watch.blockers) if self.watch is not None else []

    def cancel(self) -> None:
        """Cancel the statement in flight (canceller thread): from a fresh connection, never one
        the main thread may be using."""
        if self.backend.name == "sqlite":
            self.backend.cancel(None, self.dbapi, self.session_id)
            return
        with self.deployment.engine.connect() as conn:
            self.backend.cancel(conn.execution_options(isolation_level="AUTOCOMMIT"), self.dbapi, self.session_id)

    def _impose(self, timeouts: RevisionTimeouts) -> None:
        if timeouts is self._imposed:  # the same values as for the revision before (most often)
            return
        wanted = self.backend.timeout_settings(self.dbapi, timeouts.lock_timeout, timeouts.statement_timeout)
        if self._original is None and any(v is not None for v in wanted.values()):
            self._original = self.backend.read_settings(self.dbapi, list(wanted))
        if self._original is not None:
            values = {k: v if v is not None else self._original[k] for k, v in wanted.items()}
            changes = {k: v for k, v in values.items() if self._current.get(k, self._original[k]) != v}
            if changes:
                self.backend.write_settings(self.dbapi, changes)
                self._current.update(changes)
        self._imposed = timeouts

    def _before_statement(self, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        # A killed SELECT SLEEP() returns early without an error: stop before the next statement.
        self.interrupt.raise_if_interrupted()
        progress = self.progress
        if progress is not None:
            progress.sent += 1
            if context.root_connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
                progress.outside_transaction = True
        if self.watch is not None:
            self.watch.statement_started()

    def _after_statement(self) -> None:
        if self.progress is not None:
            self.progress.completed += 1
        if self.watch is not None:
            self.watch.statement_ended()


class _Attempts:
    """The retry loop's state: per-revision failure counts and what the last failure was."""

    def __init__(
        self,
        deployment: Deployment,
        project: AlembicProject,
        target: str,
        report: DeployReport,
        lock: MigrationLock,
        journal: Any,
        interrupt: InterruptState,
        observe: Callable[[MigratingSession], RunObserver],
    ) -> None:
        self.deployment, self.project, self.target, self.report = deployment, project, target, report
        self.lock, self.journal, self.interrupt, self.observe = lock, journal, interrupt, observe
        self.backend = deployment.backend
        self.started = time.monotonic()
        self.count = 0
        self.failures: dict[str | None, int] = {}
        self.session: MigratingSession | None = None
        self.kind: str | None = None
        self.safe = False
        self.reconnect = False

    def run(self) -> RunResult:
        self.kind, self.safe = None, False
        if self.reconnect:
            self._reconnect()
        self._forget_rolled_back()
        self.count += 1
        self.session = session = MigratingSession(self.deployment, self.project, self.interrupt, self.count)
        try:
            return self.project.run("upgrade", self.target, self.observe(session))
        except BaseException as exc:
            self._judge(exc)
            raise
        finally:
            session.close()

    # -- after a failure ------------------------------------------------------------------------
    def _judge(self, exc: BaseException) -> None:
        self.kind = self._classify(exc)
        progress = self.session.progress if self.session is not None else None
        self.safe = False
        if self.kind in (LOCK_TIMEOUT, CONNECTION_LOST):
            applied = bool(progress and progress.sent) and self._applied(progress)
            self.safe = retry_safe(self.backend.transactional_ddl, progress, self.kind, applied)
        if self.safe:
            key = progress.revision if progress is not None else None
            self.failures[key] = self.failures.get(key, 0) + 1
        self.reconnect = self.kind == CONNECTION_LOST

    def _classify(self, exc: BaseException) -> str | None:
        from sqlalchemy.exc import DBAPIError

        if self.interrupt.interrupted or not isinstance(exc, DBAPIError):
            return None
        if self.backend.is_lock_timeout(exc):
            return LOCK_TIMEOUT
        if self.backend.is_statement_timeout(exc):
            return STATEMENT_TIMEOUT
        if exc.connection_invalidated or self.backend.is_transient(exc):
            return CONNECTION_LOST
        return None

    def _applied(self, progress: RevisionProgress | None) -> bool:
        """Is the failed revision recorded in the version table? (Only asked where it matters:
        where a rolled-back transaction does not answer it already.)"""
        if progress is None or progress.revision is None or self.backend.transactional_ddl:
            return False
        try:
            return progress.revision not in {rev for rev, _ in self.project.upgrade_steps(self.target, self._versions())}
        except Exception:  # noqa: BLE001 - cannot tell: treat as applied, i.e. do not retry
            return True

    def _versions(self) -> tuple[str, ...]:
        from .verify import read_versions

        run = self.project.last_run
        return read_versions(self.deployment.engine, run.version_table, run.version_table_schema)

    def should_retry(self, _exc: BaseException) -> bool:
        if not self.safe or self.kind is None:
            return False
        progress = self.session.progress if self.session is not None else None
        key = progress.revision if progress is not None else None
        allowed = progress.timeouts.retries if progress is not None else self.deployment.settings.retries
        return self.failures.get(key, 0) <= allowed

    def before_sleep(self, state: Any) -> None:
        progress = self.session.progress if self.session is not None else None
        allowed = progress.timeouts.retries if progress is not None else self.deployment.settings.retries
        key = progress.revision if progress is not None else None
        where = f"Revision {key}" if key else "The migration"
        pause = state.next_action.sleep if state.next_action else 0.0
        retry = f"retry {self.failures.get(key, 0)}/{allowed} in {pause:.1f}s"
        if self.kind == LOCK_TIMEOUT:
            blockers = describe_blockers(self.session.blockers if self.session else [])
            self.deployment.echo(
                f"{where} could not get its locks within {_seconds(progress)} ({blockers}); "
                f"nothing of it was kept, {retry}."
            )
        else:
            self.deployment.echo(
                f"{where} lost its database connection ({_first_line(state.outcome.exception())}); "
                f"the server rolled back what was not committed, {retry} once the database is back."
            )

    def _reconnect(self) -> None:
        """After a lost connection: wait for the database, take the lock again if it went too."""
        from .wait import wait_for_database

        settings = self.deployment.settings
        self.interrupt.raise_if_interrupted()
        try:
            wait_for_database(self.deployment.engine, self.backend, settings.wait_timeout)
        except DatabaseUnreachable as exc:
            raise DatabaseUnreachable(
                f"The database connection was lost during the migration and did not come back: "
                f"{exc.message} Nothing of the interrupted revision was kept; deploy again once the "
                "database is up.",
            ) from None
        if not self.lock.alive() and self.lock.renew is not None:
            self.deployment.echo("The migration lock went with the lost connection; taking it again...")
            self.lock.renew()
            if self.journal is not None:
                self.journal.connection = self.lock.connection
        self.reconnect = False

    def _forget_rolled_back(self) -> None:
        """Revisions reported by a failed attempt but rolled back with it run again: drop them."""
        if self.count == 0 or not self.report.applied:
            return
        try:
            pending = {rev for rev, _ in self.project.upgrade_steps(self.target, self._versions())}
        except Exception:  # noqa: BLE001
            return
        self.report.applied[:] = [r for r in self.report.applied if r.revision not in pending]

    def finish(self) -> None:
        for result in self.report.applied:
            result.attempts = self.failures.get(result.revision, 0) + 1

    # -- the error when no retry is left ------------------------------------------------------------
    def final_error(self, exc: BaseException) -> BaseException:
        """The exit-7 error when retries ran out; otherwise ``exc`` itself, after a line saying
        why it was not retried: :func:`alembic_deploy.aftermath.migration_error` explains what a failed
        revision left behind, partly applied or rolled back, in one place."""
        if isinstance(exc, AlembicDeployError) or self.kind is None or self.interrupt.interrupted:
            return exc
        progress = self.session.progress if self.session is not None else None
        rev = progress.revision if progress is not None else None
        what = f"Revision {rev}" if rev else "The migration"
        blocked = describe_blockers(self.session.blockers if self.session is not None else [])
        if self.kind == STATEMENT_TIMEOUT:
            self.deployment.echo(
                f"{what} ran longer than the statement timeout of {_seconds(progress, 'statement')} and "
                "was cancelled by the server; statement timeouts are not retried. If it is meant to be "
                'long (a data migration, CREATE INDEX CONCURRENTLY), give it alembic_deploy = '
                '{"statement_timeout": None} in its file, or raise --statement-timeout.'
            )
            return exc
        if not self.safe:
            cause = (
                f"could not get its locks within {_seconds(progress)} ({blocked})"
                if self.kind == LOCK_TIMEOUT else f"lost its database connection ({_first_line(exc)})"
            )
            self.deployment.echo(f"{what} {cause} and was not retried: {_unsafe(progress)}")
            return exc
        attempts = self.failures.get(rev, 0)
        title = f"{what} ({self.project.describe(rev)})" if rev else what
        if self.kind == CONNECTION_LOST:
            return MigrationFailed(
                f"{title} lost its database connection {attempts} time(s) ({_first_line(exc)}); each "
                "time its transaction was rolled back by the server, so nothing of it was kept. Check "
                "the database server's health and logs, then deploy again.",
                revision=rev,
            )
        allowed = progress.timeouts.retries if progress is not None else 0
        why = (
            "the deadline (--retry-deadline) passed" if attempts <= allowed
            else f"retries are set to {allowed}"
        )
        return MigrationFailed(
            f"{title} could not get its locks within {_seconds(progress)} in {attempts} attempt(s) "
            f"over {time.monotonic() - self.started:.1f}s ({blocked}); it gave up because {why}. "
            "Each attempt gave up before changing anything, so nothing of it was kept, and the "
            "application waited behind it no longer than the lock timeout. A long transaction "
            "or query holds a lock on what this revision changes: end it or deploy at a quieter "
            "time; or raise --ddl-lock-timeout / --retries, or give this revision its own values "
            'with alembic_deploy = {"lock_timeout": 10, "retries": 10} in its file.',
            revision=rev,
            blocker=blocked,
            attempts=attempts,
        )


def run_upgrade(
    deployment: Deployment,
    project: AlembicProject,
    target: str,
    report: DeployReport,
    lock: MigrationLock,
    journal: Any,
    interrupt: InterruptState,
    observe: Callable[[MigratingSession], RunObserver],
) -> RunResult:
    """``project.run("upgrade", target)`` with timeouts on the migrating session and retries.

    ``observe`` builds the pipeline's RunObserver for one attempt; it must call the session's
    ``configured``, ``planned`` and ``revision_started`` hooks. Failures that are not lock
    timeouts, lost connections or statement timeouts are raised unchanged for the pipeline to
    explain; those are raised as :class:`~alembic_deploy.errors.MigrationFailed` (exit 7).
    """
    settings = deployment.settings
    attempts = _Attempts(deployment, project, target, report, lock, journal, interrupt, observe)

    def loop() -> Retrying:
        from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential, wait_random

        return Retrying(
            retry=retry_if_exception(attempts.should_retry),
            stop=stop_after_delay(settings.retry_deadline),
            wait=wait_exponential(multiplier=RETRY_INITIAL_SECONDS, max=RETRY_MAX_BACKOFF_SECONDS)
            + wait_random(0, RETRY_JITTER_SECONDS),
            before_sleep=attempts.before_sleep,
            reraise=True,
        )

    try:
        result = retrying.call(attempts.run, loop)
    except BaseException as exc:
        error = attempts.final_error(exc)
        if error is exc:
            raise
        raise error from exc
    attempts.finish()
    return result


def _seconds(progress: RevisionProgress | None, which: str = "lock") -> str:
    if progress is None:
        return "the timeout"
    value = progress.timeouts.lock_timeout if which == "lock" else progress.timeouts.statement_timeout
    return f"{value:g}s" if value else "the server's timeout"


def _unsafe(progress: RevisionProgress | None) -> str:
    if progress is not None and progress.outside_transaction:
        return "it ran statements outside a transaction (an autocommit block), so running it again could apply part of it twice."
    done = progress.completed if progress is not None else 0
    in_flight = " (and one was in flight)" if progress is not None and progress.sent > done else ""
    return (
        f"{done} of its statement(s) had completed{in_flight} on a database that commits DDL "
        "statement by statement, so running it again could apply part of it twice."
    )


def _first_line(exc: BaseException | None) -> str:
    if exc is None:
        return "unknown error"
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return scrub(f"{type(orig).__name__}: {lines[0] if lines else ''}")[:300]
