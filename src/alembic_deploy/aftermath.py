"""What a failed, interrupted or crashed run left behind, in words: one place for every message
that tells the reader which revision failed, what of it was kept or rolled back, and what to do.

The steps find the facts (the pipeline, the retry loop in :mod:`.steps.upgrade`, crashed runs in
:mod:`.steps.recovery`, partly applied revisions in :mod:`.partial`); the messages are built here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import MigrationFailed
from .masking import scrub_statement

if TYPE_CHECKING:
    from .alembic_env import AlembicProject
    from .deployment import Deployment
    from .journal import Journal
    from .report import DeployReport
    from .steps.progress import ProgressTracker


def migration_error(
    deployment: Deployment, project: AlembicProject, report: DeployReport, exc: BaseException,
    tracker: ProgressTracker, in_flight: str | None,
) -> MigrationFailed:
    """The exit-7 error of a revision (or env.py) that raised: which revision, the database's
    error, and what of it was kept (committed statement by statement, or rolled back with its
    transaction). Records the database's revisions and the revisions rolled back in ``report``.
    ``in_flight``: the revision alembic had started, if the run ended inside one."""
    from .steps.verify import read_versions

    # With --debug the traceback follows the message: do not send the reader for it.
    debug = "" if deployment.settings.debug else "; run with --debug for the traceback"
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
    except Exception:  # noqa: BLE001 - the message matters more than the revisions in it
        now_at = ()
    report.to_revisions = now_at
    pending = [r for r in pending_revisions(project, report.target, report.from_revisions) if r not in applied]
    failing = in_flight or (pending[0] if pending else "unknown")
    # Revisions reported applied earlier in this run but absent from the database now went down
    # with the failing one (one transaction for the whole run, as alembic's env.py templates do).
    kept = project.ancestry(now_at)
    for result in report.applied:
        if result.revision not in kept:
            result.status = "rolled-back"
    durable = tracker.applied(failing)
    unsure = tracker.unsettled(failing)
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
    else:
        state = (
            "None of its statements had been committed, so nothing of it was kept; the version table "
            f"says {', '.join(now_at) or '<base>'}. Fix the migration and deploy again."
        )
    return MigrationFailed(
        f"Revision {failing} ({project.describe(failing) if failing != 'unknown' else '?'}) failed: "
        f"{kind}: {detail}. {state.rstrip('.')}{debug}.",
        revision=failing,
        database_revisions=list(now_at),
    )


def unjournaled(journal: Journal, what: str) -> str:
    """Why the journal could not be written, what the run did about it, and what to do."""
    name = journal.table.name
    advice = journal.backend.write_access_advice(name) if journal.backend is not None else ""
    return (
        f"{what}: the database refused alembic-deploy's journal table {name!r} ({journal.refused}). "
        "A database at its target needs no journal write and is reported as a no-op; to migrate, "
        f"{advice}."
    )


def pending_revisions(project: AlembicProject, target: str, versions: tuple[str, ...]) -> list[str]:
    """The revisions from ``versions`` up to ``target`` ([] if that cannot be told: revisions these
    scripts do not know)."""
    try:
        return [rev for rev, _ in project.upgrade_steps(target, versions)]
    except Exception:  # noqa: BLE001 - revisions these scripts do not know
        return []
