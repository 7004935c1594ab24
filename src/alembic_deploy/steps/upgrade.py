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

A revision can set its own timeouts and retries in its file (:mod:`.timeouts`); the migrating
session imposes them (:mod:`.migrating_session`), and what a revision that was not retried left
behind is worded in :mod:`alembic_deploy.aftermath`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .. import aftermath, retrying
from ..errors import AlembicDeployError, DatabaseUnreachable
from ..observer import event
from ..report import RetryResult
from .blockers import describe_blockers
from .migrating_session import MigratingSession

if TYPE_CHECKING:
    from collections.abc import Callable

    from tenacity import Retrying

    from ..alembic_env import AlembicProject, Motion, RunObserver, RunResult
    from ..backends import MigrationLock
    from ..deployment import Deployment
    from ..journal import Journal
    from ..progress.tracker import ProgressTracker, StatementCounts
    from ..report import DeployReport
    from ..signals import InterruptState
    from .timeouts import RevisionTimeouts

#: First pause before a retry; it doubles each time, plus up to RETRY_JITTER_SECONDS of jitter.
RETRY_INITIAL_SECONDS = 0.5
RETRY_MAX_BACKOFF_SECONDS = 10.0
RETRY_JITTER_SECONDS = 0.5

LOCK_TIMEOUT = "lock-timeout"
CONNECTION_LOST = "connection-lost"
STATEMENT_TIMEOUT = "statement-timeout"


def retry_safe(transactional_ddl: bool, counts: StatementCounts | None, kind: str, applied: bool) -> bool:
    """May the failed revision run again without applying anything twice?

    * nothing of it reached the server: yes;
    * it is recorded as applied: no (there is nothing to retry);
    * transactional DDL and no statement outside the transaction: yes, it was rolled back whole;
    * otherwise only a lock timeout of its very first statement: the statement got no lock, so
      it changed nothing, and nothing before it ran. (Statement-level progress tracking can widen
      this on MySQL/MariaDB: a failed revision whose completed statements were all rolled back.)
    """
    if counts is None or counts.sent == 0:
        return True
    if applied:
        return False
    if transactional_ddl and not counts.outside_transaction:
        return True
    return kind == LOCK_TIMEOUT and counts.completed == 0 and not counts.outside_transaction


class _Attempts:
    """The retry loop's state: per-revision failure counts and what the last failure was."""

    def __init__(
        self,
        deployment: Deployment,
        project: AlembicProject,
        motion: Motion,
        report: DeployReport,
        lock: MigrationLock,
        journal: Journal | None,
        interrupt: InterruptState,
        observe: Callable[[MigratingSession], RunObserver],
        tracker: ProgressTracker,
    ) -> None:
        self.deployment, self.project, self.motion, self.report = deployment, project, motion, report
        self.lock, self.journal, self.interrupt, self.observe = lock, journal, interrupt, observe
        self.tracker = tracker
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
        self.tracker.new_attempt()
        self.session = session = MigratingSession(self.deployment, self.project, self.interrupt, self.count)
        try:
            return self.project.run(self.motion.direction, self.motion.target, self.observe(session), self.motion)
        except BaseException as exc:
            self._judge(exc)
            raise
        finally:
            session.close()

    # -- after a failure ------------------------------------------------------------------------
    def _judge(self, exc: BaseException) -> None:
        self.kind = self._classify(exc)
        counts = self.tracker.counts
        self.safe = False
        if self.kind in (LOCK_TIMEOUT, CONNECTION_LOST):
            applied = bool(counts and counts.sent) and self._applied(counts)
            self.safe = retry_safe(self.backend.transactional_ddl, counts, self.kind, applied)
        if self.safe:
            key = counts.revision if counts is not None else None
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

    def _applied(self, counts: StatementCounts | None) -> bool:
        """Is the failed revision recorded in the version table? (Only asked where it matters:
        where a rolled-back transaction does not answer it already.)"""
        if counts is None or counts.revision is None or self.backend.transactional_ddl:
            return False
        try:
            pending = self.project.steps(self.motion, self._versions())
        except Exception:  # noqa: BLE001 - cannot tell: treat as applied, i.e. do not retry
            return True
        return counts.revision not in {rev for rev, _ in pending}

    def _versions(self) -> tuple[str, ...]:
        from .verify import read_versions

        run = self.project.last_run
        return read_versions(self.deployment.engine, run.version_table, run.version_table_schema)

    def should_retry(self, _exc: BaseException) -> bool:
        if not self.safe or self.kind is None:
            return False
        return self.failures.get(self._revision, 0) <= self._retries

    @property
    def _revision(self) -> str | None:
        """The revision the last attempt failed in (None: before the first one)."""
        counts = self.tracker.counts
        return counts.revision if counts is not None else None

    @property
    def _timeouts(self) -> RevisionTimeouts | None:
        return self.session.revision_timeouts if self.session is not None else None

    @property
    def _retries(self) -> int:
        timeouts = self._timeouts
        return timeouts.retries if timeouts is not None else self.deployment.settings.retries

    def before_sleep(self, state: Any) -> None:
        allowed = self._retries
        key = self._revision
        where = f"Revision {key}" if key else "The migration"
        pause = state.next_action.sleep if state.next_action else 0.0
        retry = f"retry {self.failures.get(key, 0)}/{allowed} in {pause:.1f}s"
        blockers = describe_blockers(self.session.blockers if self.session else []) if self.kind == LOCK_TIMEOUT else ""
        self.report.retries.append(RetryResult(key or "", self.kind or "", blockers))
        fields: dict[str, Any] = {"revision": key, "retry": self.failures.get(key, 0), "retries_allowed": allowed,
                                  "delay_s": round(pause, 3)}
        if self.kind == LOCK_TIMEOUT:
            self.deployment.echo(event("retry", aftermath.lock_retry_notice(where, self._timeouts, blockers, retry),
                                       "warning", reason=self.kind, blocker=blockers, **fields))
        else:
            exc = state.outcome.exception()
            self.deployment.echo(event("retry", aftermath.connection_retry_notice(where, exc, retry), "warning",
                                       reason=self.kind, blocker=None, **fields))

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
            self.deployment.echo(event("lock_renewing", "The migration lock went with the lost connection; "
                                       "taking it again...", "warning"))
            self.lock.renew()
            if self.journal is not None:
                self.journal.connection = self.lock.connection
        self.reconnect = False

    def _forget_rolled_back(self) -> None:
        """Revisions reported by a failed attempt but rolled back with it run again: drop them."""
        if self.count == 0 or not self.report.applied:
            return
        try:
            pending = {rev for rev, _ in self.project.steps(self.motion, self._versions())}
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
        rev, timeouts = self._revision, self._timeouts
        what = f"Revision {rev}" if rev else "The migration"
        blocked = describe_blockers(self.session.blockers if self.session is not None else [])
        if self.kind == STATEMENT_TIMEOUT:
            self.deployment.echo(event("not_retried", aftermath.statement_timed_out(what, timeouts), "warning",
                                       revision=rev, reason=self.kind))
            return exc
        if not self.safe:
            self.deployment.echo(event(
                "not_retried",
                aftermath.not_retried(what, self.kind == LOCK_TIMEOUT, self.tracker.counts, timeouts, blocked, exc),
                "warning", revision=rev, reason=self.kind,
                blocker=blocked if self.kind == LOCK_TIMEOUT else None))
            return exc
        attempts = self.failures.get(rev, 0)
        title = f"{what} ({self.project.describe(rev)})" if rev else what
        if self.kind == CONNECTION_LOST:
            return aftermath.connection_lost(title, attempts, exc, rev)
        return aftermath.locks_not_granted(title, timeouts, attempts, time.monotonic() - self.started, blocked, rev)


def run_upgrade(
    deployment: Deployment,
    project: AlembicProject,
    motion: Motion,
    report: DeployReport,
    lock: MigrationLock,
    journal: Journal | None,
    interrupt: InterruptState,
    observe: Callable[[MigratingSession], RunObserver],
    tracker: ProgressTracker,
) -> RunResult:
    """``project.run(motion.direction, motion.target)`` with timeouts on the migrating session and
    retries (a downgrade, ``rollback``, runs the same way).

    ``observe`` builds the pipeline's RunObserver for one attempt; it must call the session's
    ``configured``, ``planned`` and ``revision_started`` hooks, and ``tracker``'s ``attach`` and
    ``revision_started`` (whose :class:`~alembic_deploy.progress.tracker.StatementCounts` tell
    whether a failed revision may run again). Failures that are not lock
    timeouts, lost connections or statement timeouts are raised unchanged for the pipeline to
    explain; those are raised as :class:`~alembic_deploy.errors.MigrationFailed` (exit 7).
    """
    settings = deployment.settings
    attempts = _Attempts(deployment, project, motion, report, lock, journal, interrupt, observe, tracker)

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
