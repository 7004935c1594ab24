"""Progress as events, and the callbacks the upgrade pipeline hands alembic for one attempt.

Every progress line the tool prints is a :class:`ProgressEvent`: a ``str`` (its text, what the
text log prints and what a library caller's ``echo`` receives) that also carries an event name and
fields, which :func:`json_line` renders as one JSON object per line (``--log-format json``). The
field names are stable and listed in the README (*Logs and metrics*):

* every line: ``ts`` (ISO-8601 UTC), ``level`` (``info``, ``warning``, ``error``), ``event``, and
  ``message`` (the text line) when the event has one;
* durations are seconds in fields ending in ``_s``; revisions in ``revision``/``revisions``.

An event with no text (``revision_started``, ``outcome``) is printed in the JSON log only; one with
no name (:func:`text_only`) in the text log only. :func:`observe` connects what alembic reports
(configured, planned, a revision started, a revision applied) to the report, the migrating
session, the progress tracker and these events.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .errors import AlembicDeployError, ConfigError
from .masking import database_label
from .report import FailedRevision, RevisionResult

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from alembic.runtime.migration import MigrationContext
    from typing_extensions import Self

    from .alembic_env import AlembicProject, Motion, RunObserver
    from .deployment import Deployment
    from .journal import Journal
    from .progress.tracker import ProgressTracker
    from .report import DeployReport
    from .settings import Settings
    from .signals import InterruptState
    from .steps.migrating_session import MigratingSession

class ProgressEvent(str):
    """A progress line that is also data: the ``str`` is its text (empty: printed in the JSON log
    only), ``event`` its name (None: printed in the text log only), ``level`` and ``fields``."""

    event: str | None
    level: str
    fields: dict[str, Any]

    def __new__(cls, event: str | None, text: str = "", level: str = "info", **fields: Any) -> Self:
        self = super().__new__(cls, text)
        self.event, self.level, self.fields = event, level, fields
        return self


def event(name: str, text: str = "", level: str = "info", **fields: Any) -> ProgressEvent:
    """A progress event named ``name``: ``text`` is its line in the text log ("" for none)."""
    return ProgressEvent(name, text, level, **fields)


def text_only(text: str) -> ProgressEvent:
    """A line for people that the JSON log leaves out (its content is in another event's fields)."""
    return ProgressEvent(None, text)


def record(msg: str) -> dict[str, Any] | None:
    """The JSON log object of a progress line (None: a text-only line). A plain ``str`` (a line not
    yet given an event of its own) is a ``message`` event, its level read from its prefix."""
    now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(msg, ProgressEvent):
        if msg.event is None:
            return None
        out: dict[str, Any] = {"ts": now, "level": msg.level, "event": msg.event}
        if msg:
            out["message"] = str(msg).strip()
        out.update(msg.fields)
        return out
    level = "warning" if msg.startswith("warning:") else "error" if msg.startswith("error:") else "info"
    return {"ts": now, "level": level, "event": "message", "message": msg}


def json_line(msg: str) -> str | None:
    """:func:`record` as one line of JSON (None for a text-only line); credentials scrubbed."""
    from .masking import scrub

    data = record(msg)
    if data is None:
        return None
    return scrub(json.dumps(data, separators=(",", ":"), default=str))


def outcome_event(report: DeployReport) -> ProgressEvent:
    """The end of a run, whatever it was (printed in the JSON log only: the text log says it in the
    summary line or the error paragraph)."""
    error = report.error or {}
    outcome = report.outcome
    return event(
        "outcome", level="info" if outcome in ("applied", "noop", "rolled-back") else "error",
        command=report.command, outcome=outcome, journal_id=report.journal_id,
        duration_s=round(report.duration_seconds, 4), database=database_label(report.database),
        backend=report.backend,
        environment=report.environment, from_revisions=list(report.from_revisions),
        to_revisions=list(report.to_revisions), revisions_applied=len(report.applied),
        failed_revision=report.failed_revision.revision if report.failed_revision else None,
        exit_code=report.exit_code, kind=error.get("kind"), warnings=list(report.warnings),
    )


@contextmanager
def run_ending(settings: Settings, report: DeployReport, echo: Callable[[str], None]) -> Iterator[None]:
    """Around a run (upgrade, repair): when it ends, however it ends, its ``outcome`` event and its
    metrics (:func:`alembic_deploy.metrics.publish`). A metrics failure is a warning, never the
    run's failure."""
    try:
        yield
    except AlembicDeployError as exc:
        if report.outcome == "running":  # a verb that records no outcome of its own before it journals
            from .masking import scrub
            from .pipeline import outcome_of

            report.outcome = "refused" if report.journal_id is None and outcome_of(exc) == "failed" else outcome_of(exc)
            report.error = {**exc.to_dict(), "message": scrub(exc.message)}
        raise
    finally:
        if report.finished_at is None:  # ended by something unforeseen (the CLI says exit 1)
            report.finished_at = time.time()
        echo(outcome_event(report))
        if settings.metrics:
            from .metrics import publish

            publish(settings, report, echo)


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
    session: MigratingSession, tracker: ProgressTracker, running: InFlight, journal: Journal, motion: Motion,
) -> RunObserver:
    """The observer of one attempt: ``session`` is that attempt's migrating session; ``motion``
    which way it goes (a downgrade is reported as rolled back, and linted before, not here)."""
    from .aftermath import unjournaled
    from .alembic_env import RunObserver
    from .steps.preflight import check_current, check_lint, check_unmoved

    echo = deployment.echo
    done, doing = ("applied", "Applying") if motion.upgrading else ("rolled back", "Rolling back")

    def warn(note: str) -> None:
        report.warnings.append(note)
        echo(f"warning: {note}")

    def on_configured(ctx: MigrationContext, current: tuple[str, ...]) -> None:
        if session.attempt == 1:  # a retry resumes from where the failed attempt left the database
            report.from_revisions = current
        check_current(project, current)
        if session.attempt == 1:
            check_unmoved(motion, current)
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
        if session.attempt == 1 and motion.upgrading:  # a retry plans what the first attempt linted, or less
            check_lint(project, [rev for rev, _ in planned], deployment.settings, deployment.backend.name, echo,
                       warn)
        session.planned(planned)
        tracker.plan([rev for rev, _ in planned])
        if planned:
            revisions = [r for r, _ in planned]
            echo(event("revisions_planned", f"{doing} {len(planned)} revision(s): {plan_summary(revisions)}",
                       count=len(planned), revisions=revisions, attempt=session.attempt, direction=motion.direction))

    def on_revision_start(rev: str, options: dict[str, Any]) -> None:
        running.revision, running.started_at = rev, time.time()
        session.revision_started(rev, options)
        tracker.revision_started(rev)
        echo(event("revision_started", revision=rev, attempt=session.attempt))

    def on_revision(rev: str, down: tuple[str, ...], doc: str, started: float, duration: float) -> None:
        running.revision = None
        counts = tracker.counts
        statements = counts.completed if counts is not None and counts.revision == rev else None
        tracker.revision_applied(rev)
        status = "applied" if motion.upgrading else "rolled-back"
        report.applied.append(RevisionResult(rev, down, doc, started, duration, status=status, statements=statements))
        echo(event(f"revision_{status.replace('-', '_')}", f"  {done} {rev} ({duration:.3f}s) {doc}", revision=rev,
                   duration_s=round(duration, 4), description=doc, statements=statements))
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
