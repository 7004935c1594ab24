"""The callbacks the upgrade pipeline hands alembic for one attempt (a :class:`RunObserver`): each
connects what alembic reports (configured, planned, a revision started, a revision applied) to the
report, the migrating session, the progress tracker and the progress lines."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigError
from .report import FailedRevision, RevisionResult

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext

    from .alembic_env import AlembicProject, RunObserver
    from .deployment import Deployment
    from .journal import Journal
    from .progress.tracker import ProgressTracker
    from .report import DeployReport
    from .signals import InterruptState
    from .steps.migrating_session import MigratingSession


@dataclass
class InFlight:
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


def observe(
    deployment: Deployment, project: AlembicProject, report: DeployReport, interrupt: InterruptState,
    session: MigratingSession, tracker: ProgressTracker, running: InFlight, journal: Journal,
) -> RunObserver:
    """The observer of one attempt: ``session`` is that attempt's migrating session."""
    from .aftermath import unjournaled
    from .alembic_env import RunObserver
    from .steps.preflight import check_current, check_lint

    echo = deployment.echo

    def warn(note: str) -> None:
        report.warnings.append(note)
        echo(f"warning: {note}")

    def on_configured(ctx: MigrationContext, current: tuple[str, ...]) -> None:
        if session.attempt == 1:  # a retry resumes from where the failed attempt left the database
            report.from_revisions = current
        check_current(project, current)
        # Timeouts, blocker watch, and interrupt.cancel for signals.
        session.configured(ctx)
        if ctx.connection is not None:  # what the connection sends: counted, and journaled (alembic_deploy.progress)
            tracker.attach(ctx.connection, session.session_id, ctx.version_table, ctx.version_table_schema)

    def on_plan(planned: list[tuple[str, str]]) -> None:
        if planned and journal.refused is not None:
            # Without the journal a failed or killed revision could not be told from one never
            # run (exit 8 and repair rely on it): refuse before anything is applied.
            raise ConfigError(unjournaled(journal, f"{len(planned)} revision(s) are pending "
                                          f"({plan_summary([r for r, _ in planned])}) and nothing was applied"))
        if session.attempt == 1:  # a retry plans what the first attempt linted, or less
            check_lint(project, [rev for rev, _ in planned], deployment.settings, deployment.backend.name, echo,
                       warn)
        session.planned(planned)
        tracker.plan([rev for rev, _ in planned])
        if planned:
            echo(f"Applying {len(planned)} revision(s): {plan_summary([r for r, _ in planned])}")

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


def plan_summary(revisions: list[str], shown: int = 6) -> str:
    """The revisions a run will apply, in one readable line: all of them when few, else the first
    and the last few around a count of those left out (each is named again as it is applied)."""
    if len(revisions) <= shown:
        return ", ".join(revisions)
    head, tail = revisions[: shown - 2], revisions[-2:]
    return f"{', '.join(head)}, ... ({len(revisions) - shown} more) ..., {', '.join(tail)}"
