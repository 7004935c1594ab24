"""The migration pipeline, once a :class:`~alembic_deploy.deployment.Deployment` is open::

    wait for the database -> [health gate] -> preflight -> migration lock -> journal 'running'
    -> crashed runs and partly applied revisions -> [drift] -> [backup] -> upgrade (env.py, retried)
    -> verify -> journal outcome

``upgrade`` and ``rollback`` both run it: a :class:`~alembic_deploy.alembic_env.Motion` says which
way (a rollback has planned and been confirmed before, in :mod:`alembic_deploy.rollback_plan`).

and how a run that fails ends: its outcome in the report and, once its row exists, in the journal.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from .errors import AlembicDeployError, CheckRefused, Interrupted, LockNotAcquired, PartialMigration
from .masking import scrub
from .observer import text_only

if TYPE_CHECKING:
    from .alembic_env import Motion
    from .backends import MigrationLock
    from .deployment import Deployment
    from .heap import RunHeap
    from .journal import Journal
    from .progress.tracker import Writer
    from .report import DeployReport
    from .signals import InterruptState


def run(
    deployment: Deployment, motion: Motion, report: DeployReport, interrupt: InterruptState, heap: RunHeap,
) -> DeployReport:
    """Migrate as ``motion`` says under the lock, journaled; raises an AlembicDeployError carrying
    ``report`` (its outcome recorded in the journal too) when the run fails."""
    from .aftermath import migration_error, unjournaled
    from .observer import InFlight, observe
    from .progress.tracker import ProgressTracker
    from .steps import recovery
    from .steps.backup import protect
    from .steps.health import health_gate
    from .steps.preflight import check_heads
    from .steps.upgrade import run_upgrade
    from .steps.verify import read_versions, verify

    settings, echo, backend = deployment.settings, deployment.echo, deployment.backend
    journal = None
    lock_started: float | None = None
    try:
        deployment.wait(report)
        health_gate(settings, report, echo)
        with heap.loading():
            project = deployment.alembic_project()
            if motion.upgrading:
                check_heads(project, motion.target)
        if motion.upgrading:
            project.check_target(motion.target)
        started = lock_started = time.monotonic()
        with deployment.lock() as lock, heap.migrating():
            report.lock_wait_seconds = round(lock.waited, 4)
            report.step("lock", started)
            journal = deployment.journal(lock)
            journal.ensure(extend=not motion.upgrading)
            journal.start(report, settings)
            # Report crashed runs; refuse (exit 8) over a partly applied revision.
            recovery.check(deployment, journal, project, report, lock)
            if settings.check_drift and motion.upgrading:
                from .drift import refuse_drift

                refuse_drift(deployment, interrupt, report)
            # The backup the policy asks for (--backup, the --env policy): before any change, over the
            # revisions an upgrade applies or a rollback undoes.
            protect(deployment, project, motion, report)
            tracker = ProgressTracker(backend, *_progress_writers(journal, lock, report))
            tracker.direction = motion.direction
            started = time.monotonic()
            ok = False
            running = InFlight()
            try:
                # Lock timeouts, statement timeouts and retries live in steps/upgrade.py.
                result = run_upgrade(
                    deployment, project, motion, report, lock, journal, interrupt,
                    lambda session: observe(deployment, project, report, interrupt, session, tracker, running,
                                            journal, motion),
                    tracker,
                )
                ok = True
            except AlembicDeployError:
                running.report_failed(project, report)
                raise
            except BaseException as exc:  # every failure of env.py is reported
                interrupt.cancel = None
                in_flight = running.report_failed(project, report)
                if interrupt.interrupted or isinstance(exc, KeyboardInterrupt):
                    if interrupt.signum is None:
                        import signal

                        interrupt.signum = signal.SIGINT
                    raise interrupt.error() from exc
                # Chained: --debug shows the revision's and SQLAlchemy's frames, not only ours.
                raise migration_error(deployment, project, report, exc, tracker, in_flight) from exc
            finally:
                interrupt.cancel = None
                tracker.close(ok)
            report.step(motion.direction, started, f"{len(report.applied)} revision(s)")
            started = time.monotonic()
            actual = read_versions(deployment.engine, result.version_table, result.version_table_schema,
                                   lock.connection)
            report.to_revisions = actual
            verify(actual, result, project, motion)
            report.step("verify", started)
            report.outcome = ("applied" if motion.upgrading else "rolled-back") if result.planned else "noop"
            if journal.refused is not None:  # only a no-op gets here (on_plan refuses work)
                report.warnings.append(unjournaled(journal, "The run was not journaled"))
            report.finished_at = time.time()
            journal.finish(report)
        if report.outcome in ("applied", "rolled-back"):  # the JSON log has it all in the outcome event
            echo(text_only(report.summary()))
        return report
    except AlembicDeployError as exc:
        if isinstance(exc, LockNotAcquired) and journal is None and lock_started is not None:
            report.lock_wait_seconds = round(time.monotonic() - lock_started, 4)  # waited, then gave up
        record_failure(report, journal, exc)
        raise
    except KeyboardInterrupt:
        # signals.SignalInterrupt: a signal while no migration statement ran (waiting for the
        # database or the lock, between retries, after the migration).
        error = interrupt.error()
        record_failure(report, journal, error)
        raise error from None


def _progress_writers(journal: Journal, lock: MigrationLock, report: DeployReport) -> tuple[Writer, Writer]:
    """(write while migrating, write the final state): the journal row, or first the lock's
    cheaper progress log where the backend has one (SQLite)."""
    def save(state: str, durable: bool) -> None:
        if report.journal_id is not None:  # None: the journal is refused and nothing is written
            journal.progress(report.journal_id, state, durable)

    log = lock.progress_log
    if log is None:
        return save, save

    def final(state: str, durable: bool) -> None:
        save(state, durable)
        log.saved()

    return (lambda state, durable: log.append(report.journal_id, state, sync=durable)), final


def fail(report: DeployReport, exc: AlembicDeployError, outcome: str = "failed") -> AlembicDeployError:
    """Record in ``report`` that the run ended with ``exc`` (``outcome``), and attach it to ``exc``."""
    report.outcome = outcome
    report.error = {**exc.to_dict(), "message": scrub(exc.message)}
    report.finished_at = time.time()
    exc.report = report
    return exc


def outcome_of(exc: AlembicDeployError) -> str:
    """The journal outcome of a run that ended with ``exc``."""
    return "interrupted" if isinstance(exc, Interrupted) else (
        "refused" if isinstance(exc, (CheckRefused, PartialMigration)) else "failed"
    )


def record_failure(report: DeployReport, journal: Journal | None, exc: AlembicDeployError) -> None:
    """The failed run's outcome in the report and, once its row exists, in the journal."""
    fail(report, exc, outcome_of(exc))
    if journal is not None and report.journal_id is not None:
        with contextlib.suppress(Exception):  # the error being raised matters more
            journal.finish(report)
