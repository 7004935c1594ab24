"""The library API: one function per verb. Each returns a report and never exits; failures raise an
:class:`~alembic_deploy.errors.AlembicDeployError` subclass carrying the report as ``.report``.

The upgrade pipeline, one step module each::

    resolve settings -> database URL -> [fast no-op path] -> wait for the database
    -> [health gate] -> preflight -> migration lock -> journal 'running' -> upgrade (env.py)
    -> verify -> journal outcome -> metrics
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import (
    EXIT_OK,
    AlembicDeployError,
    CheckRefused,
    ConfigError,
    Interrupted,
    MigrationFailed,
    PartialMigration,
)
from .heap import RunHeap
from .project import ProjectIni, read_ini
from .report import DeployReport, FailedRevision, RevisionResult
from .masking import mask_url, scrub, scrub_statement

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from .alembic_env import AlembicProject
    from .backends import Backend, MigrationLock
    from .fastpath.direct import DirectConnection
    from .journal import Journal
    from .settings import Settings
    from .steps.progress import ProgressTracker, Writer
    from .steps.upgrade import MigratingSession

Echo = Callable[[str], None]

#: The connection that reached the database serves the migration lock when taken within this
#: many seconds (a health gate in between may take minutes: an idle session may be cut by then).
REUSE_CONNECTION_SECONDS = 10.0


def _quiet(_msg: str) -> None:
    pass


def shielded(echo: Echo | None) -> Echo:
    """The caller's ``echo`` (None: print nothing), unable to fail the work it reports: a line it
    raises on (a closed stream, a logging handler that fails) is dropped, since a migration half
    done or a journal row left ``running`` for want of a progress line is worse than the line
    lost; the report returned holds the outcome all the same. Signals (KeyboardInterrupt) pass."""
    if echo is None:
        return _quiet
    if getattr(echo, "shields", None) is not None:
        return echo

    def say(msg: str) -> None:
        try:
            echo(msg)
        except Exception:  # noqa: BLE001 - whatever the caller's output does, the work goes on
            pass

    say.shields = echo  # type: ignore[attr-defined]
    return say


@dataclass
class Deployment:
    """What every verb needs once: the project, the URL, the tool's own engine and backend."""

    settings: Settings
    ini: ProjectIni
    url: str
    engine: Engine
    backend: Backend
    echo: Echo
    #: The fast path's session, until the engine takes it over (closed with the deployment if not).
    _spare: DirectConnection | None = field(default=None, repr=False)
    #: (connection, when): the session the wait step reached the database with, until taken.
    _reached: tuple[Connection, float] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings, echo: Echo | None = None, spare: DirectConnection | None = None) -> Deployment:
        """``spare``: the fast path's session, for the engine to take over (:func:`.database.adopt`)."""
        from .compat import require_supported
        from .database_url import resolve_url
        from .database import adopt, make_engine

        try:
            require_supported()
            ini = read_ini(settings.config_path, settings.name)
            url = resolve_url(settings, ini)
            engine, backend = make_engine(url, settings.lock_timeout_wait)
        except BaseException:
            if spare is not None:
                spare.close()
            raise
        if spare is not None:
            adopt(engine, spare)
        return cls(settings, ini, url, engine, backend, shielded(echo), spare)

    @property
    def masked_url(self) -> str:
        return mask_url(self.engine.url.render_as_string(hide_password=True))

    def wait(self, report: DeployReport) -> None:
        from .steps.wait import wait_for_database

        def on_retry(attempt: int, _exc: BaseException) -> None:
            if attempt == 1:
                self.echo(
                    f"Waiting for the database at {self.masked_url} "
                    f"(up to {self.settings.wait_timeout:g}s)..."
                )

        started = time.monotonic()
        seconds, attempts, conn = wait_for_database(
            self.engine, self.backend, self.settings.wait_timeout, on_retry=on_retry, hold=True
        )
        self._drop_reached()
        self._reached = (conn, time.monotonic()) if conn is not None else None
        report.db_wait_seconds = round(seconds, 4)
        report.step("wait", started, f"{attempts} attempt(s)")

    def alembic_project(self) -> AlembicProject:
        from .alembic_env import AlembicProject

        return AlembicProject(self.settings, self.url)

    def lock(self, timeout: float | None = None) -> Any:
        """The migration lock, waited for up to ``timeout`` (default ``--lock-timeout-wait``; 0:
        one attempt) before :class:`~.errors.LockNotAcquired`."""
        name = self.backend.lock_name(self.engine.url.database, "alembic_version", None)

        def on_wait(holder: dict[str, Any]) -> None:
            who = ", ".join(f"{k} {v}" for k, v in holder.items() if v) or "another deploy"
            self.echo(f"Waiting for the migration lock held by {who}...")

        wait = self.settings.lock_timeout_wait if timeout is None else timeout
        return self.backend.lock(self.engine, name, wait, on_wait,
                                 connection=self._take_reached())

    def _take_reached(self) -> Connection | None:
        """The wait step's connection while it is fresh (then the lock opens no session of its
        own: a connect costs a server process on PostgreSQL, a TLS context with PyMySQL)."""
        reached, self._reached = self._reached, None
        if reached is not None and time.monotonic() - reached[1] <= REUSE_CONNECTION_SECONDS:
            return reached[0]
        if reached is not None:
            reached[0].close()
        return None

    def _drop_reached(self) -> None:
        conn = self._take_reached()
        if conn is not None:
            conn.close()

    def journal(self, lock: MigrationLock | None = None) -> Journal:
        from .journal import Journal

        return Journal(self.engine, self.settings.journal_table, lock.connection if lock else None, self.backend)

    def close(self) -> None:
        self._drop_reached()
        if self._spare is not None:
            self._spare.close()  # nothing left to close once the engine took it over
        self.engine.dispose()


def _new_report(command: str, target: str, settings: Settings) -> DeployReport:
    return DeployReport(command=command, target=target, environment=settings.env)


def _fail(report: DeployReport, exc: AlembicDeployError, outcome: str = "failed") -> AlembicDeployError:
    report.outcome = outcome
    report.error = {**exc.to_dict(), "message": scrub(exc.message)}
    report.finished_at = time.time()
    exc.report = report
    return exc


def upgrade(settings: Settings, target: str = "head", echo: Echo | None = None) -> DeployReport:
    """Migrate the database to ``target`` (``head``, ``heads`` or a revision) under the lock.

    Safe to call from every replica at once: one takes the lock and migrates, the others wait,
    re-read the revision under the lock and record a no-op. Fast when there is nothing to do: when
    the no-op can be proven without Alembic (see :mod:`alembic_deploy.fastpath`), neither Alembic
    nor env.py is loaded.
    """
    from .signals import interruptible

    echo = shielded(echo)
    report = _new_report("upgrade", target, settings)
    with interruptible() as interrupt, RunHeap() as heap:
        try:
            # A health gate is asked for explicitly: it runs even when there is nothing to migrate.
            spare: list[DirectConnection] = []
            with heap.loading():
                if settings.fast_path and not settings.x and not settings.wait_healthy:
                    from .fastpath import try_noop

                    if try_noop(settings, target, report, keep=spare.append):
                        return report
                deployment = Deployment.open(settings, echo, spare[0] if spare else None)
        except AlembicDeployError as exc:
            raise _fail(report, exc, "interrupted" if isinstance(exc, Interrupted) else "refused") from None
        report.database = deployment.masked_url
        report.backend = deployment.backend.name
        try:
            return _upgrade(deployment, target, report, interrupt, heap)
        finally:
            deployment.close()


def _upgrade(
    deployment: Deployment, target: str, report: DeployReport, interrupt: Any, heap: RunHeap,
) -> DeployReport:
    from .steps import recovery
    from .steps.health import health_gate
    from .steps.preflight import check_heads
    from .steps.progress import ProgressTracker
    from .steps.upgrade import run_upgrade
    from .steps.verify import read_versions, verify

    settings, echo, backend = deployment.settings, deployment.echo, deployment.backend
    journal = None
    try:
        deployment.wait(report)
        health_gate(settings, report, echo)
        with heap.loading():
            project = deployment.alembic_project()
            check_heads(project, target)
        project.check_target(target)
        started = time.monotonic()
        with deployment.lock() as lock, heap.migrating():
            report.lock_wait_seconds = round(lock.waited, 4)
            report.step("lock", started)
            journal = deployment.journal(lock)
            journal.ensure()
            journal.start(report, settings)
            # Report crashed runs; refuse (exit 8) over a partly applied revision.
            recovery.check(deployment, journal, project, report, lock)
            tracker = ProgressTracker(backend.name, *_progress_writers(journal, lock, report))
            started = time.monotonic()
            ok = False
            running = _InFlight()
            try:
                # Lock timeouts, statement timeouts and retries live in steps/upgrade.py.
                result = run_upgrade(
                    deployment, project, target, report, lock, journal, interrupt,
                    lambda session: _observer(deployment, project, report, lock, interrupt, session, tracker, running,
                                              journal),
                )
                ok = True
            except AlembicDeployError:
                running.report_failed(project, report)
                raise
            except BaseException as exc:  # noqa: BLE001 - every failure of env.py is reported
                interrupt.cancel = None
                # Chained: --debug shows the revision's and SQLAlchemy's frames, not only ours.
                raise _migration_error(deployment, project, report, interrupt, exc, tracker, running) from exc
            finally:
                interrupt.cancel = None
                tracker.close(ok)
            report.step("upgrade", started, f"{len(report.applied)} revision(s)")
            started = time.monotonic()
            actual = read_versions(deployment.engine, result.version_table, result.version_table_schema,
                                   lock.connection)
            report.to_revisions = actual
            verify(actual, result, project, target)
            report.step("verify", started)
            report.outcome = "applied" if result.planned else "noop"
            if journal.refused is not None:  # only a no-op gets here (on_plan refuses work)
                report.warnings.append(_unjournaled(journal, "The run was not journaled"))
            report.finished_at = time.time()
            journal.finish(report)
        if report.outcome == "applied":
            echo(report.summary())
        return report
    except AlembicDeployError as exc:
        _record_failure(report, journal, exc)
        raise
    except KeyboardInterrupt:
        # signals.SignalInterrupt: a signal while no migration statement ran (waiting for the
        # database or the lock, between retries, after the migration).
        error = interrupt.error()
        _record_failure(report, journal, error)
        raise error from None


def _progress_writers(journal: Journal, lock: MigrationLock, report: DeployReport) -> tuple[Writer, Writer]:
    """(write while migrating, write the final state): the journal row, or first the lock's
    cheaper progress log where the backend has one (SQLite)."""
    def save(state: str, durable: bool) -> None:
        journal.progress(report.journal_id, state, durable)

    log = lock.progress_log
    if log is None:
        return save, save

    def final(state: str, durable: bool) -> None:
        save(state, durable)
        log.saved()

    return (lambda state, durable: log.append(report.journal_id, state, sync=durable)), final


def _record_failure(report: DeployReport, journal: Any, exc: AlembicDeployError) -> None:
    """The failed run's outcome in the report and, once its row exists, in the journal."""
    outcome = "interrupted" if isinstance(exc, Interrupted) else (
        "refused" if isinstance(exc, (CheckRefused, PartialMigration)) else "failed"
    )
    _fail(report, exc, outcome)
    if journal is not None and report.journal_id is not None:
        try:
            journal.finish(report)
        except Exception:  # noqa: BLE001 - the error being raised matters more
            pass


@dataclass
class _InFlight:
    """The revision alembic started and has not finished (its step began, on_version_apply not yet)."""

    revision: str | None = None
    started_at: float = 0.0

    def report_failed(self, project: AlembicProject, report: DeployReport) -> str | None:
        """Put the revision the run ended in into ``report.failed_revision`` (never under
        ``applied``: it was not); returns its id, None when the run ended between revisions."""
        if self.revision is None:
            return None
        report.failed_revision = FailedRevision(
            self.revision, project.down_revisions(self.revision), project.describe(self.revision),
            self.started_at, time.time() - self.started_at,
        )
        return self.revision


def _observer(
    deployment: Deployment, project: AlembicProject, report: DeployReport, lock: MigrationLock, interrupt: Any,
    session: MigratingSession, tracker: ProgressTracker, running: _InFlight, journal: Journal,
) -> Any:
    from .alembic_env import RunObserver
    from .steps.preflight import check_current

    echo = deployment.echo

    def on_configured(ctx: Any, current: tuple[str, ...]) -> None:
        if session.attempt == 1:  # a retry resumes from where the failed attempt left the database
            report.from_revisions = current
        check_current(project, current)
        # Timeouts, statement counters, blocker watch, and interrupt.cancel for signals.
        session.configured(ctx)
        if ctx.connection is not None:  # statement progress, journaled (steps/progress.py)
            tracker.attach(ctx.connection, session.session_id, ctx.version_table, ctx.version_table_schema)

    def on_plan(planned: list[tuple[str, str]]) -> None:
        if planned and journal.refused is not None:
            # Without the journal a failed or killed revision could not be told from one never
            # run (exit 8 and repair rely on it): refuse before anything is applied.
            raise ConfigError(_unjournaled(journal, f"{len(planned)} revision(s) are pending "
                                          f"({_plan_summary([r for r, _ in planned])}) and nothing was applied"))
        session.planned(planned)
        tracker.plan([rev for rev, _ in planned])
        if planned:
            echo(f"Applying {len(planned)} revision(s): {_plan_summary([r for r, _ in planned])}")

    def on_revision_start(rev: str, options: dict[str, Any]) -> None:
        running.revision, running.started_at = rev, time.time()
        session.revision_started(rev, options)
        tracker.revision_started(rev)

    def on_revision(rev: str, down: tuple[str, ...], doc: str, started: float, duration: float) -> None:
        running.revision = None
        tracker.revision_applied(rev)
        report.applied.append(RevisionResult(rev, down, doc, started, duration))
        echo(f"  applied {rev} ({duration:.3f}s) {doc}")
        interrupt.raise_if_interrupted()

    return RunObserver(
        on_configured=on_configured, on_revision=on_revision, on_plan=on_plan,
        on_revision_start=on_revision_start,
    )


def _unjournaled(journal: Journal, what: str) -> str:
    """Why the journal could not be written, what the run did about it, and what to do."""
    name = journal.table.name
    advice = journal.backend.write_access_advice(name) if journal.backend is not None else ""
    return (
        f"{what}: the database refused alembic-deploy's journal table {name!r} ({journal.refused}). "
        "A database at its target needs no journal write and is reported as a no-op; to migrate, "
        f"{advice}."
    )


def _plan_summary(revisions: list[str], shown: int = 6) -> str:
    """The revisions a run will apply, in one readable line: all of them when few, else the first
    and the last few around a count of those left out (each is named again as it is applied)."""
    if len(revisions) <= shown:
        return ", ".join(revisions)
    head, tail = revisions[: shown - 2], revisions[-2:]
    return f"{', '.join(head)}, ... ({len(revisions) - shown} more) ..., {', '.join(tail)}"


def _migration_error(
    deployment: Deployment, project: AlembicProject, report: DeployReport, interrupt: Any, exc: BaseException,
    tracker: ProgressTracker | None = None, running: _InFlight | None = None,
) -> AlembicDeployError:
    from .steps.verify import read_versions

    in_flight = running.report_failed(project, report) if running is not None else None
    # With --debug the traceback follows the message: do not send the reader for it.
    debug = "" if deployment.settings.debug else "; run with --debug for the traceback"
    if interrupt.interrupted or isinstance(exc, KeyboardInterrupt):
        if interrupt.signum is None:
            import signal

            interrupt.signum = signal.SIGINT
        return interrupt.error()
    detail = scrub_statement(" ".join(str(getattr(exc, "orig", None) or exc).split()), getattr(exc, "statement", None),
                             getattr(exc, "params", None), deployment.backend.literals)[:600].rstrip(".")
    kind = type(getattr(exc, "orig", None) or exc).__name__
    if not project.last_run.configured:
        return MigrationFailed(
            f"env.py failed before any revision ran: {kind}: {detail}. Nothing was changed. "
            "Check that `alembic upgrade head` works with the same DATABASE_URL and drivers "
            f"installed{debug}.",
        )
    applied = {r.revision for r in report.applied}
    try:
        run = project.last_run
        now_at = read_versions(deployment.engine, run.version_table, run.version_table_schema)
    except Exception:  # noqa: BLE001
        now_at = ()
    report.to_revisions = now_at
    pending = [r for r in _pending_after(project, report) if r not in applied]
    failing = in_flight or (pending[0] if pending else "unknown")
    # Revisions reported applied earlier in this run but absent from the database now went down
    # with the failing one (one transaction for the whole run, as alembic's env.py templates do).
    kept = project.ancestry(now_at)
    for result in report.applied:
        if result.revision not in kept:
            result.status = "rolled-back"
    durable = tracker.applied(failing) if tracker is not None else []
    unsure = tracker.unsettled(failing) if tracker is not None else []
    if durable or unsure:
        committed = f"Statement(s) {', '.join(str(s.n) for s in durable) or 'none'} of it had been committed"
        lost = f" and statement(s) {', '.join(str(s.n) for s in unsure)} may have been" if unsure else ""
        state = (
            f"{committed} one by one{lost}, and the version table says {', '.join(now_at) or '<base>'}: it is "
            "partly applied. The next deploy will refuse (exit 8) until it is settled: run `alembic-deploy "
            "repair` to see the options (--rollback-partial undoes what ran, --resume runs the rest once "
            "the cause is fixed), then deploy again."
        )
    elif deployment.backend.transactional_ddl:
        gone = [r.revision for r in report.applied if r.status == "rolled-back"]
        along = f" together with {', '.join(gone)} (same transaction)" if gone else ""
        state = (
            f"Its transaction was rolled back{along}, so nothing of it was left behind; the database is at "
            f"{', '.join(now_at) or '<base>'}. Fix the migration and deploy again."
        )
    elif tracker is not None:
        state = (
            "None of its statements had been committed, so nothing of it was kept; the version table "
            f"says {', '.join(now_at) or '<base>'}. Fix the migration and deploy again."
        )
    else:
        state = (
            f"{deployment.backend.name} commits DDL statement by statement, so the revision may be "
            f"partly applied; the version table says {', '.join(now_at) or '<base>'}. Check the schema "
            "against the revision before deploying again."
        )
    return MigrationFailed(
        f"Revision {failing} ({project.describe(failing) if failing != 'unknown' else '?'}) failed: "
        f"{kind}: {detail}. {state.rstrip('.')}{debug}.",
        revision=failing,
        database_revisions=list(now_at),
    )


def repair(settings: Settings, action: str | None = None, echo: Echo | None = None,
           dry_run: bool = False, keep: Sequence[str] = ()) -> DeployReport:
    """Settle a partly applied revision, under the migration lock (see
    :mod:`alembic_deploy.steps.repair`).

    ``action`` is ``"resume"``, ``"rollback-partial"`` or ``"mark-applied"``; None only diagnoses:
    it raises :class:`~alembic_deploy.errors.PartialMigration` (exit 8) describing the revision and
    the options when there is one. With nothing to repair the outcome is ``noop``; so it is with
    ``dry_run``, which prints the plan and changes nothing. ``keep`` (with ``rollback-partial``):
    names of tables, columns, indexes or constraints the rollback leaves as they are. Like upgrade,
    it first closes and reports crashed runs; each call is journaled (command ``repair``).
    """
    from .signals import interruptible
    from .steps import recovery
    from .steps import repair as repair_step

    report = _new_report("repair", action or "diagnose", settings)
    with interruptible() as interrupt:
        try:
            deployment = Deployment.open(settings, echo)
        except AlembicDeployError as exc:
            raise _fail(report, exc, "refused") from None
        report.database, report.backend = deployment.masked_url, deployment.backend.name
        journal = None
        try:
            deployment.wait(report)
            project = deployment.alembic_project()
            with deployment.lock() as lock:
                report.lock_wait_seconds = round(lock.waited, 4)
                journal = deployment.journal(lock)
                journal.ensure()
                journal.start(report, settings)
                partial = recovery.recover(deployment, journal, project, report, lock)
                repair_step.run(deployment, project, journal, report, partial, action, dry_run, keep)
                report.finished_at = time.time()
                journal.finish(report)
            return report
        except (AlembicDeployError, KeyboardInterrupt) as exc:
            # KeyboardInterrupt: signals.SignalInterrupt, SIGTERM/SIGINT during the repair.
            error = exc if isinstance(exc, AlembicDeployError) else interrupt.error()
            _record_failure(report, journal, error)
            if error is exc:
                raise
            raise error from None
        finally:
            deployment.close()


def _pending_after(project: AlembicProject, report: DeployReport) -> list[str]:
    try:
        return [rev for rev, _ in project.upgrade_steps(report.target, report.from_revisions)]
    except Exception:  # noqa: BLE001
        return []


@dataclass
class StatusReport:
    database: str
    backend: str
    current: tuple[str, ...]
    heads: tuple[str, ...]
    pending: list[tuple[str, str]]
    unknown: list[str]
    last_deploys: list[dict[str, Any]] = field(default_factory=list)
    #: A partly applied revision or a run that has not ended (steps.unfinished.describe_unfinished).
    unfinished: dict[str, Any] | None = None

    @property
    def up_to_date(self) -> bool:
        return not self.pending and not self.unknown

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document of ``status`` (:func:`~alembic_deploy.report.document`)."""
        from .report import document, journal_entry

        unfinished = self.unfinished
        refusing = unfinished is not None and unfinished["exit_code"] != 0
        return document(
            "status", database=self.database, backend=self.backend, current=list(self.current),
            heads=list(self.heads), pending=[{"revision": rev, "description": doc} for rev, doc in self.pending],
            unknown=list(self.unknown), up_to_date=self.up_to_date,
            last_deploys=[journal_entry(row) for row in self.last_deploys],
            # A partly applied revision: the exit code and error a deploy would give.
            exit_code=unfinished["exit_code"] if refusing else EXIT_OK,  # type: ignore[index]
            error=unfinished["error"] if refusing else None,  # type: ignore[index]
            unfinished=None if unfinished is None else {k: v for k, v in unfinished.items() if k != "error"},
        )


def status(settings: Settings, echo: Echo | None = None) -> StatusReport:
    """Current revision(s) read through env.py, heads, pending revisions and the last deploys, and
    what a deploy would find unfinished (``unfinished``: its ``exit_code`` is the CLI's)."""
    from .alembic_env import RunObserver
    from .steps.progress import remask_rows
    from .steps.unfinished import describe_unfinished

    deployment = Deployment.open(settings, echo)
    try:
        deployment.wait(_new_report("status", "head", settings))
        project = deployment.alembic_project()
        result = project.run("inspect", "heads", RunObserver())
        unknown = [r for r in result.current if not project.knows(r)]
        pending = [] if unknown else project.upgrade_steps("heads", result.current)
        journal = deployment.journal()
        return StatusReport(
            database=deployment.masked_url,
            backend=deployment.backend.name,
            current=result.current,
            heads=project.heads(),
            pending=pending,
            unknown=unknown,
            last_deploys=remask_rows(journal.rows(limit=5)),
            unfinished=describe_unfinished(deployment, journal, project),
        )
    finally:
        deployment.close()


def history(settings: Settings, limit: int = 20, echo: Echo | None = None) -> list[dict[str, Any]]:
    """The journal's most recent rows, newest first."""
    from .steps.progress import remask_rows

    deployment = Deployment.open(settings, echo)
    try:
        deployment.wait(_new_report("history", "", settings))
        return remask_rows(deployment.journal().rows(limit=limit))
    finally:
        deployment.close()
