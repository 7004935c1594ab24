"""What a failed, interrupted or crashed run left behind, in words: one place for every message
that tells the reader which revision failed, what of it was kept or rolled back, and what to do.

The steps find the facts (the pipeline, the retry loop in :mod:`.steps.upgrade`, crashed runs in
:mod:`.steps.recovery`, partly applied revisions in :mod:`.partial`); the messages are built here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import MigrationFailed, PartialMigration
from .masking import scrub, scrub_statement
from .partial import describe, is_applied, read_progress, versions_of
from .progress.sql_text import excerpt, literal_syntax, shorten

if TYPE_CHECKING:
    from collections.abc import Callable

    from .alembic_env import AlembicProject
    from .backends import Backend
    from .deployment import Deployment
    from .journal import Journal
    from .partial import Partial
    from .progress.record import Statement
    from .progress.tracker import ProgressTracker, StatementCounts
    from .report import DeployReport
    from .steps.timeouts import RevisionTimeouts


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
        now_at: tuple[str, ...] | None = read_versions(
            deployment.engine, run.version_table, run.version_table_schema)
    except Exception:  # noqa: BLE001 - the message matters more than the revisions in it
        now_at = None
    report.to_revisions = now_at or ()
    pending = [r for r in pending_revisions(project, report.target, report.from_revisions) if r not in applied]
    failing = in_flight or (pending[0] if pending else "unknown")
    # Revisions reported applied earlier in this run but absent from the database now went down
    # with the failing one (one transaction for the whole run, as alembic's env.py templates do).
    if now_at is not None:
        kept = project.ancestry(now_at)
        if tracker.direction == "downgrade":
            # Undone earlier in this run but recorded again: their undo went back with the failing one.
            report.applied[:] = [r for r in report.applied if r.revision not in kept]
        for result in report.applied:
            if result.revision not in kept:
                result.status = "rolled-back"
    # An unreadable version table is said as such: "<base>" would claim the revisions went down.
    at = ", ".join(now_at or ()) or "<base>"
    versions = "could not be read" if now_at is None else f"says {at}"
    durable = tracker.applied(failing)
    unsure = tracker.unsettled(failing)
    if durable or unsure:
        committed = f"Statement(s) {', '.join(str(s.n) for s in durable) or 'none'} of it had been committed"
        lost = f" and statement(s) {', '.join(str(s.n) for s in unsure)} may have been" if unsure else ""
        half = ("partly applied" if tracker.direction == "upgrade"
                else "partly rolled back (its downgrade() ran in part)")
        state = (
            f"{committed} one by one{lost}, and the version table {versions}: it is "
            f"{half}. The next deploy will refuse (exit 8) until it is settled: run `alembic-deploy "
            "repair` to see the options (--rollback-partial undoes what ran, --resume runs the rest once "
            "the cause is fixed), then deploy again."
        )
    elif deployment.backend.transactional_ddl:
        gone = [r.revision for r in report.applied if r.status == "rolled-back"]
        along = f" together with {', '.join(gone)} (same transaction)" if gone else ""
        state = (
            f"Its transaction was rolled back{along}, so nothing of it was left behind; "
            f"{'the version table could not be read' if now_at is None else 'the database is at ' + at}. "
            "Fix the migration and deploy again."
        )
    else:
        state = (
            "None of its statements had been committed, so nothing of it was kept; the version table "
            f"{versions}. Fix the migration and deploy again."
        )
    return MigrationFailed(
        f"Revision {failing} ({project.describe(failing) if failing != 'unknown' else '?'}) failed: "
        f"{kind}: {detail}. {state.rstrip('.')}{debug}.",
        revision=failing,
        database_revisions=list(now_at or ()),
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


# -- a partly applied revision ----------------------------------------------------------------------
def partial_error(
    partial: Partial, backend: Backend, options: Callable[[Partial], list[str]], crashed: str | None = None,
) -> PartialMigration:
    """The exit-8 refusal over a partly applied revision: what ran, what did not, why it is
    partly applied on this backend, and ``options(partial)``: each repair option with what it would
    do or why it is not available. ``crashed``: the dead run's description, when ``status`` finds
    the revision left by a run that died and whose row the next deploy has still to close."""
    error = _partial_error(partial, backend, options)
    if crashed is None:
        return error
    return PartialMigration(
        f"The previous run crashed while applying revision {partial.revision} ({crashed}), leaving "
        f"it partly applied. The next deploy will refuse (exit 8) until it is repaired. {error.message}",
        **error.fields,
    )


def crashed_cleanly(started: str) -> str:
    """What ``status`` says of a run that died (``started``: which one) leaving no revision
    partly applied."""
    return (
        f"The previous run crashed ({started}; its process is gone: nobody holds the migration "
        "lock), and it left no revision partly applied. The next deploy records it as crashed and "
        "migrates from what the version table says."
    )


def _partial_error(partial: Partial, backend: Backend, options: Callable[[Partial], list[str]]) -> PartialMigration:
    row, rev = partial.row, partial.revision
    if not partial.project.knows(rev):
        return _foreign_error(partial)
    try:
        total: int | None = len(partial.statements())
    except ValueError:
        total = None
    what = _durable(partial, f" of its {total}" if total is not None else "")
    at = ", ".join(partial.versions) or "<base>"
    unsure = (
        f" Statement(s) {_numbers(partial.uncertain)} were running when that process died or lost its "
        "connection, and the schema cannot tell whether they took effect."
        if partial.uncertain else ""
    )
    fields: dict[str, Any] = {
        "revision": f"{rev} ({describe(partial.project, rev)})",
        "left by": _left_by(partial),
        "ran": _listing(partial.applied) or "-",
    }
    if partial.uncertain:
        fields["uncertain"] = _listing(partial.uncertain)
    if partial.entry.failed is not None:
        fields["failed"] = f"{_listing([partial.entry.failed])} (raised an error; not applied)"
    fields["not run"] = _not_run(partial)
    fields["options"] = "; ".join(options(partial))
    if partial.direction == "downgrade":
        return PartialMigration(
            f"Revision {rev} is partly rolled back: "
            f"{what.replace('statement(s)', 'statement(s) of its downgrade()', 1)} by an earlier rollback "
            f"(journal #{row['id']}, {row['outcome']}) but the version table still says "
            f"{at}, because {backend.partial_cause} and nothing undid them. Running it again (up or down) would "
            f"apply them twice or fail on them, so nothing was migrated.{unsure} Resolve it with `alembic-deploy "
            "repair`: --resume runs the rest of its downgrade() and records it as rolled back, --rollback-partial "
            "puts back what ran with its upgrade(), --mark-applied records it as rolled back (see options below); "
            "then roll back or deploy again.",
            **fields,
        )
    return PartialMigration(
        f"Revision {rev} is partly applied: {what} by an earlier "
        f"run (journal #{row['id']}, {row['outcome']}) but the version table says {at}, because "
        f"{backend.partial_cause} and nothing rolled them back. Running the revision again would apply them "
        f"twice or fail on them, so nothing was migrated.{unsure} Resolve it with `alembic-deploy repair` and "
        "one of --resume, --rollback-partial or --mark-applied (see options below), then deploy again.",
        **fields,
    )


def _foreign_error(partial: Partial) -> PartialMigration:
    """The revision is not in these scripts: another project migrating this database (its own
    version table, the same lock and journal table) or newer code left it; only that code can
    repair it."""
    row, rev, table = partial.row, partial.revision, partial.progress.version_table
    return PartialMigration(
        f"Revision {rev} is partly applied: {_durable(partial)} by an earlier run (journal #{row['id']}, "
        f"{row['outcome']}) whose version table {table} says {', '.join(partial.versions) or '<base>'}, "
        f"but these migration scripts do not contain {rev}: it belongs to another Alembic project "
        "that migrates this database and shares this journal table, or to newer code. Nothing was "
        "migrated. Repair it with that code (`alembic-deploy repair` in its folder), then deploy "
        "again; projects sharing a database should keep a journal table each (--journal-table).",
        revision=rev,
        **{"version table": table, "left by": _left_by(partial), "ran": _listing(partial.applied) or "-"},
    )


def _durable(partial: Partial, of: str = "") -> str:
    """What of the revision is durable (``of``: " of its N" when its statements are known)."""
    if partial.applied:
        return f"statement(s) {_numbers(partial.applied)}{of} were committed"
    return f"statement(s) {_numbers(partial.uncertain)}{of} may have been committed"


def _left_by(partial: Partial) -> str:
    row = partial.row
    return f"journal #{row['id']}: {row['command']} on host {row['host']} (pid {row['pid']}), {row['outcome']}"


def _not_run(partial: Partial) -> str:
    try:
        statements = partial.statements()
    except ValueError as exc:
        return f"cannot tell: {exc}"
    # Each statement is listed once: the one that failed is under "failed".
    done = {s.n for s in partial.applied} | {s.n for s in partial.uncertain}
    if partial.entry.failed is not None:
        done.add(partial.entry.failed.n)
    syntax = literal_syntax(partial.progress.backend)
    rest = [(n, sql) for n, sql in enumerate(statements, 1) if n not in done and n > partial.last_applied]
    return "; ".join(f"{n}. {shorten(excerpt(sql, syntax))}" for n, sql in rest) or "-"


def _numbers(statements: list[Statement]) -> str:
    return ", ".join(str(s.n) for s in statements)


def _listing(statements: list[Statement]) -> str:
    return "; ".join(f"{s.n}. {shorten(s.sql)}" for s in statements)


# -- a crashed run ----------------------------------------------------------------------------------
def crash_summary(
    deployment: Deployment, project: AlembicProject, row: dict[str, Any], partial: Partial | None,
) -> str:
    """What the crashed run of journal ``row`` was doing and what of it was kept, completing
    "crashed ..." (``partial``: the partly applied revision found, if any)."""
    progress = read_progress(row)
    if progress is None:
        return "before it started applying revisions"
    if partial is not None and partial.row["id"] == row["id"]:
        return f"while applying revision {partial.revision}, leaving it partly applied"
    try:
        versions = versions_of(deployment.engine, progress)
    except Exception:  # noqa: BLE001 - the report matters less than the run
        versions = ()
    in_flight = [e.revision for e in progress.revisions if not is_applied(project, e.revision, versions)]
    last = progress.planned_last
    if in_flight:
        current = in_flight[-1]
        earlier = pending_revisions(project, current, versions)[:-1]
    elif last is not None and not is_applied(project, last, versions):
        # No statement of it was recorded: nothing committed by itself. Each revision commits with
        # its version stamp (MySQL, SQLite, transaction_per_migration) and then the revision in
        # flight is the first one not recorded; with one transaction for the whole run (PostgreSQL's
        # default) it was one of them, and all of them went back together.
        pending = pending_revisions(project, last, versions) or [last]
        if deployment.backend.transactional_ddl and len(pending) > 1:
            return (
                f"while applying one of revisions {pending[0]} .. {pending[-1]} ({len(pending)} not in the "
                "version table); nothing of them was kept (their transaction was rolled back)"
            )
        current, earlier = pending[0], []
    else:
        return f"after applying its {progress.planned_count} revision(s) (before recording its end)"
    kept = (
        "its transaction was rolled back" if deployment.backend.transactional_ddl
        else "none of its statements had been committed"
    )
    with_it = f"; {', '.join(earlier)}, run in the same transaction, went with it" if earlier else ""
    return f"while applying revision {current}; nothing of it was kept ({kept}){with_it}"


# -- lock timeouts, lost connections, statement timeouts -------------------------------------------
def lock_retry_notice(where: str, timeouts: RevisionTimeouts | None, blockers: str, retry: str) -> str:
    """Before a retry: the revision gave up waiting for its locks, and nothing of it was kept."""
    return (f"{where} could not get its locks within {_seconds(timeouts)} ({blockers}); "
            f"nothing of it was kept, {retry}.")


def connection_retry_notice(where: str, exc: BaseException | None, retry: str) -> str:
    """Before a retry: the connection was lost, and the server rolled back what was not committed."""
    return (f"{where} lost its database connection ({first_line(exc)}); "
            f"the server rolled back what was not committed, {retry} once the database is back.")


def statement_timed_out(what: str, timeouts: RevisionTimeouts | None) -> str:
    """Why a revision cancelled by the statement timeout is not retried, and what to change."""
    return (
        f"{what} ran longer than the statement timeout of {_seconds(timeouts, 'statement')} and "
        "was cancelled by the server; statement timeouts are not retried. If it is meant to be "
        'long (a data migration, CREATE INDEX CONCURRENTLY), give it alembic_deploy = '
        '{"statement_timeout": None} in its file, or raise --statement-timeout.'
    )


def not_retried(what: str, lock_timeout: bool, counts: StatementCounts | None,
                timeouts: RevisionTimeouts | None, blockers: str, exc: BaseException) -> str:
    """Why a revision that hit the lock timeout or lost its connection was not retried: running it
    again could apply part of it twice (``counts``: what this attempt sent for it)."""
    cause = (
        f"could not get its locks within {_seconds(timeouts)} ({blockers})"
        if lock_timeout else f"lost its database connection ({first_line(exc)})"
    )
    return f"{what} {cause} and was not retried: {_unsafe(counts)}"


def connection_lost(title: str, attempts: int, exc: BaseException, revision: str | None) -> MigrationFailed:
    """The exit-7 error of a revision that lost its connection on every attempt."""
    return MigrationFailed(
        f"{title} lost its database connection {attempts} time(s) ({first_line(exc)}); each "
        "time its transaction was rolled back by the server, so nothing of it was kept. Check "
        "the database server's health and logs, then deploy again.",
        revision=revision,
    )


def locks_not_granted(title: str, timeouts: RevisionTimeouts | None, attempts: int, seconds: float,
                      blockers: str, revision: str | None) -> MigrationFailed:
    """The exit-7 error of a revision that hit the lock timeout until retries ran out."""
    allowed = timeouts.retries if timeouts is not None else 0
    why = (
        "the deadline (--retry-deadline) passed" if attempts <= allowed
        else f"retries are set to {allowed}"
    )
    return MigrationFailed(
        f"{title} could not get its locks within {_seconds(timeouts)} in {attempts} attempt(s) "
        f"over {seconds:.1f}s ({blockers}); it gave up because {why}. "
        "Each attempt gave up before changing anything, so nothing of it was kept, and the "
        "application waited behind it no longer than the lock timeout. A long transaction "
        "or query holds a lock on what this revision changes: end it or deploy at a quieter "
        "time; or raise --ddl-lock-timeout / --retries, or give this revision its own values "
        'with alembic_deploy = {"lock_timeout": 10, "retries": 10} in its file.',
        revision=revision,
        blocker=blockers,
        attempts=attempts,
    )


def _seconds(timeouts: RevisionTimeouts | None, which: str = "lock") -> str:
    if timeouts is None:
        return "the timeout"
    value = timeouts.lock_timeout if which == "lock" else timeouts.statement_timeout
    return f"{value:g}s" if value else "the server's timeout"


def _unsafe(counts: StatementCounts | None) -> str:
    if counts is not None and counts.outside_transaction:
        return ("it ran statements outside a transaction (an autocommit block), so running it again "
                "could apply part of it twice.")
    done = counts.completed if counts is not None else 0
    in_flight = " (and one was in flight)" if counts is not None and counts.sent > done else ""
    return (
        f"{done} of its statement(s) had completed{in_flight} on a database that commits DDL "
        "statement by statement, so running it again could apply part of it twice."
    )


def first_line(exc: BaseException | None) -> str:
    """The first line of the database's error (the driver's, under SQLAlchemy's wrapper), scrubbed."""
    if exc is None:
        return "unknown error"
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return scrub(f"{type(orig).__name__}: {lines[0] if lines else ''}")[:300]
