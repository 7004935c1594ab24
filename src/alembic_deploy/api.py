"""The library API: one function per verb. Each returns a report and never exits; failures raise an
:class:`~alembic_deploy.errors.AlembicDeployError` subclass carrying the report as ``.report``.

``upgrade`` runs the pipeline of :mod:`alembic_deploy.pipeline` (after the fast no-op path of
:mod:`alembic_deploy.fastpath` when it applies)::

    resolve settings -> database URL -> [fast no-op path] -> wait for the database
    -> [health gate] -> preflight -> migration lock -> journal 'running' -> upgrade (env.py)
    -> verify -> journal outcome -> outcome event and metrics (:func:`alembic_deploy.observer.run_ending`)
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from .deployment import Deployment, Echo, shielded
from .errors import AlembicDeployError, CheckRefused, Interrupted
from .heap import RunHeap
from .motion import Motion
from .observer import run_ending
from .pipeline import fail, record_failure
from .report import DeployReport, RollbackReport, StatusReport

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from datetime import timedelta
    from pathlib import Path

    from .backups.restore import RestoreReport
    from .drift import DriftReport
    from .fastpath.direct import DirectConnection
    from .history_report import HistoryReport
    from .integrations.aws.ecs_health import ServiceHealth
    from .integrations.aws.ecs_run import EcsRunResult
    from .integrations.github.workflows import WorkflowValues, Written
    from .rollback_plan import RollbackPlan, RollbackRequest
    from .settings import Settings


def upgrade(settings: Settings, target: str = "head", echo: Echo | None = None) -> DeployReport:
    """Migrate the database to ``target`` (``head``, ``heads`` or a revision) under the lock.

    Safe to call from every replica at once: one takes the lock and migrates, the others wait,
    re-read the revision under the lock and record a no-op. Fast when there is nothing to do: when
    the no-op can be proven without Alembic (see :mod:`alembic_deploy.fastpath`), neither Alembic
    nor env.py is loaded.
    """
    from . import pipeline
    from .signals import interruptible

    echo = shielded(echo)
    report = DeployReport(command="upgrade", target=target, environment=settings.env)
    with run_ending(settings, report, echo), interruptible() as interrupt, RunHeap() as heap:
        try:
            # A health gate or a drift check is asked for explicitly: it runs even when there is nothing
            # to migrate.
            spare: list[DirectConnection] = []
            with heap.loading():
                if (settings.fast_path and not settings.x and not settings.wait_healthy
                        and settings.wait_ecs_service is None and not settings.check_drift):
                    from .fastpath import try_noop

                    if try_noop(settings, target, report, keep=spare.append):
                        return report
                deployment = Deployment.open(settings, echo, spare[0] if spare else None)
        except AlembicDeployError as exc:
            raise fail(report, exc, "interrupted" if isinstance(exc, Interrupted) else "refused") from None
        report.database = deployment.masked_url
        report.backend = deployment.backend.name
        try:
            return pipeline.run(deployment, Motion("upgrade", target), report, interrupt, heap)
        finally:
            deployment.close()


def rollback(settings: Settings, request: RollbackRequest, echo: Echo | None = None,
             confirm: Callable[[RollbackPlan], bool] | None = None, dry_run: bool = False) -> RollbackReport:
    """Undo a deploy: plan it (:mod:`alembic_deploy.rollback_plan`), print the plan, refuse what must
    not run without ``request.force`` (exit 5), ask ``confirm`` (None: confirmed; it may raise,
    e.g. a ConfigError when nobody can be asked), then run it through the same pipeline as
    :func:`upgrade`, downwards: lock, journal (outcome ``rolled-back``, the id of the deploy it
    undoes in ``undoes``), timeouts, retries, signals, partly applied revisions, verification.

    The plan is made before the lock is taken (a person may take a while to confirm it); under
    the lock the database must still be where it was planned from, or nothing runs (exit 5).
    ``dry_run``: print the plan, refuse as the run would, change nothing (outcome ``noop``).
    """
    from . import pipeline
    from .alembic_env import RunObserver
    from .observer import event
    from .rollback_plan import make_plan
    from .signals import interruptible

    echo = shielded(echo)
    report = RollbackReport(command="rollback", target="", environment=settings.env, dry_run=dry_run)
    with run_ending(settings, report, echo), interruptible() as interrupt, RunHeap() as heap:
        try:
            deployment = Deployment.open(settings, echo)
        except AlembicDeployError as exc:
            raise fail(report, exc, "refused") from None
        report.database, report.backend = deployment.masked_url, deployment.backend.name
        try:
            deployment.wait(report)
            with heap.loading():
                project = deployment.alembic_project()
            current = project.run("inspect", "heads", RunObserver()).current
            plan = make_plan(deployment, project, request, current)
            report.plan, report.undoes = plan.to_dict(), plan.undoes
            report.target = ",".join(plan.target) or "base"
            report.from_revisions = current
            echo(event("rollback_planned", plan.render_text(), **plan.to_dict()))
            refusal = plan.refusal(request.force)
            if refusal is not None:
                raise refusal
            if not plan.steps or dry_run:
                report.outcome, report.to_revisions, report.finished_at = "noop", current, time.time()
                echo("Dry run: nothing was changed." if dry_run and plan.steps else
                     f"Nothing to roll back: the database is at {', '.join(current) or '<base>'} already.")
                return report
            if confirm is not None and not confirm(plan):
                raise CheckRefused("The rollback was not confirmed; nothing was changed.")
            return pipeline.run(deployment, plan.motion(), report, interrupt, heap)  # type: ignore[return-value]
        except AlembicDeployError as exc:
            if exc.report is None:
                raise fail(report, exc, "refused") from None
            raise
        except KeyboardInterrupt:
            # signals.SignalInterrupt: SIGTERM/SIGINT while planning or asking.
            raise fail(report, interrupt.error(), "interrupted") from None
        finally:
            deployment.close()


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

    echo = shielded(echo)
    report = DeployReport(command="repair", target=action or "diagnose", environment=settings.env)
    with run_ending(settings, report, echo), interruptible() as interrupt:
        try:
            deployment = Deployment.open(settings, echo)
        except AlembicDeployError as exc:
            raise fail(report, exc, "refused") from None
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
            record_failure(report, journal, error)
            if error is exc:
                raise
            raise error from None
        finally:
            deployment.close()


def status(settings: Settings, echo: Echo | None = None) -> StatusReport:
    """Current revision(s) read through env.py, heads, pending revisions and the last deploys, and
    what a deploy would find unfinished (``unfinished``: its ``exit_code`` is the CLI's)."""
    from .alembic_env import RunObserver
    from .progress.record import remask_rows
    from .steps.unfinished import describe_unfinished

    deployment = Deployment.open(settings, echo)
    try:
        deployment.wait(DeployReport(command="status", environment=settings.env))
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
    from .progress.record import remask_rows

    deployment = Deployment.open(settings, echo)
    try:
        deployment.wait(DeployReport(command="history", target="", environment=settings.env))
        return remask_rows(deployment.journal().rows(limit=limit))
    finally:
        deployment.close()


def drift(settings: Settings, echo: Echo | None = None) -> DriftReport:
    """Replay the history up to the revision(s) the database is at into a scratch database of the
    same dialect and compare the two schemas (see :mod:`alembic_deploy.drift`). The report's
    ``differences`` are empty when they match (``exit_code`` 0, else 5). The scratch database is
    dropped whatever happens; one that cannot be created raises
    :class:`~alembic_deploy.errors.ScratchUnavailable`."""
    from .drift import drift as compare_with_history

    return compare_with_history(settings, echo)


def ecs_run(settings: Settings, command: Sequence[str], out: Echo, echo: Echo | None = None) -> EcsRunResult:
    """Run ``command`` as a one-off ECS task (see :mod:`alembic_deploy.integrations.aws.ecs_run`):
    the container's log lines go to ``out`` as they arrive, ecs-run's own lines to ``echo``. Returns
    once the task stopped, with the exit code of the container that ran the command; raises
    :class:`~alembic_deploy.errors.EcsTaskFailed` (exit 12) when there is none, and
    :class:`~alembic_deploy.errors.Interrupted` (exit 9) after stopping the task on SIGTERM/SIGINT."""
    from .integrations.aws.ecs_run import run

    return run(settings, command, out, shielded(echo))


def report(settings: Settings, urls: Sequence[str] = (), environments: Sequence[str] = (),
           since: timedelta | str = "30d", secrets: Sequence[str] = ()) -> HistoryReport:
    """The deploy journals of several environments over the last ``since`` (a timedelta, or
    ``30d``, ``12h``, ``2w``) summed up: per environment, per revision, the latest failures (see
    :mod:`alembic_deploy.history_report`). ``urls`` (``NAME=URL`` or a URL) and ``secrets``
    (``NAME=SECRET``, AWS Secrets Manager) replace the policy's environments; ``environments``
    picks some of those. Only reads: an environment that cannot be
    read is listed with why (``warnings``), and ``error()`` is exit 3 only when none could be."""
    from .history_report import build, parse_since, sources

    window = parse_since(since) if isinstance(since, str) else since
    return build(settings, sources(settings, urls, environments, secrets), window)


def init_github_actions(root: Path, values: WorkflowValues, force: bool = False) -> list[Written]:
    """Write the deploy workflows into ``root/.github/workflows`` (see
    :mod:`alembic_deploy.integrations.github.workflows`): what was done with each file. A file the
    user changed since it was generated is kept unless ``force``."""
    from .integrations.github.workflows import render, write

    return write(root, render(values), force)


def wait_ecs(settings: Settings, echo: Echo | None = None) -> ServiceHealth:
    """The health gates alone: the ECS service of ``--wait-ecs-service`` runs its new task definition
    healthy (:mod:`alembic_deploy.integrations.aws.ecs_health`), then the ``--wait-healthy`` URLs
    answer healthy, each gate within ``--health-timeout``, as ``upgrade``'s; raises
    :class:`~alembic_deploy.errors.HealthCheckFailed` (exit 4) saying what was not healthy."""
    from .errors import ConfigError
    from .integrations.aws.ecs_health import wait_ecs_healthy
    from .steps.health import wait_healthy

    if settings.wait_ecs_service is None:
        raise ConfigError("wait-ecs needs the service: --wait-ecs-service CLUSTER/SERVICE "
                          "(or ALEMBIC_DEPLOY_WAIT_ECS_SERVICE).")
    say = shielded(echo)
    health = wait_ecs_healthy(settings.wait_ecs_service, task_definition=settings.wait_ecs_task_definition,
                              timeout=settings.health_timeout, interval=settings.health_interval, echo=say)
    if settings.wait_healthy:
        wait_healthy(settings.wait_healthy, count=settings.healthy_count,
                     timeout=settings.health_timeout,
                     expect=settings.health_expect, interval=settings.health_interval, echo=say)
    return health


def backups(settings: Settings, limit: int = 20, echo: Echo | None = None) -> list[dict[str, Any]]:
    """The backups the journal records (taken before migrating, or attempted), newest first."""
    from .backups.record import BackupLog, entry

    deployment = Deployment.open(settings, echo)
    try:
        deployment.wait(DeployReport(command="backups", target="", environment=settings.env))
        return [entry(row) for row in BackupLog(deployment.engine, settings.journal_table).rows(limit=limit)]
    finally:
        deployment.close()


def restore(settings: Settings, backup: str, force: bool = False, confirm: Callable[[str], bool] | None = None,
            echo: Echo | None = None) -> RestoreReport:
    """Restore ``backup`` (an id of :func:`backups`, a path, an s3:// URL or a snapshot ARN) into the
    database (see :mod:`alembic_deploy.backups.restore`): refused (exit 5) over a database holding
    tables unless ``force``; ``confirm`` is asked before tables are replaced (None: not asked). A
    snapshot is not restored: the report's ``instructions`` are the AWS CLI steps."""
    from .backups.restore import restore as restore_backup

    echo = shielded(echo)
    report = DeployReport(command="restore", target=backup, environment=settings.env)
    with run_ending(settings, report, echo):
        deployment = Deployment.open(settings, echo)
        report.database, report.backend = deployment.masked_url, deployment.backend.name
        try:
            deployment.wait(report)
            result = restore_backup(deployment, backup, force, confirm, report)
        finally:
            deployment.close()
        if report.outcome == "running":  # a snapshot: instructions printed, nothing changed here
            report.outcome, report.finished_at = "noop", time.time()
        return result
