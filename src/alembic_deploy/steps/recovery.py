"""Runs that died, and revisions they left half applied: found at the start of every run, under the
migration lock.

A crash (kill -9, OOM, a lost host) leaves the run's journal row ``running``. Its locks died with
it: session locks end with the session, the SQLite file lock with the process. So a run that holds
the lock knows every *other* ``running`` row is a dead run: nobody else can be migrating. It
closes each such row as ``crashed`` (the outcome name for "its process vanished without recording
an outcome") and reports it: "previous run on host X (pid P) crashed while applying revision R".
Before reading the database it waits for the dead run's migrating session to end on the server,
if the server still runs it: a MySQL ``ALTER`` or a PostgreSQL statement keeps running after its
client died, and only its end settles what it changed.

What happens next depends on what the dead (or failed) run left, read from the journal's
statement progress (:mod:`.progress`) and the version table:

* the revision in flight had no durable statement: nothing of it was kept (PostgreSQL rolled its
  transaction back; on MySQL/MariaDB and SQLite none of its statements had committed). The run
  continues and applies it from the start;
* some of its statements are durable but the version table does not record it: the revision is
  **partly applied**. The run refuses with :class:`~alembic_deploy.errors.PartialMigration`
  (exit 8) naming the revision, the statements that ran and those that did not, and the options
  of ``alembic-deploy repair`` (:mod:`.repair`). Statements that were still running when the
  process died are settled by looking at the schema when their effect is a recognizable schema
  object (a table, column, index or constraint); otherwise they are reported as uncertain.

SQLite with pysqlite is handled like MySQL: alembic runs SQLite DDL outside a transaction (the
driver opens one only before DML), so a revision can be partly applied there too, and is detected
the same way. PostgreSQL revisions are all-or-nothing except statements in an
``autocommit_block``, which are tracked and detected like MySQL DDL.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ..errors import LockNotAcquired, PartialMigration
from ..masking import scrub
from .progress import (
    READ,
    Effect,
    Progress,
    RevisionProgress,
    Statement,
    excerpt,
    is_noise,
    is_version_statement,
    literal_syntax,
    shorten,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.engine import Engine

    from ..alembic_env import AlembicProject
    from ..deployment import Deployment
    from ..backends import MigrationLock
    from ..journal import Journal
    from ..report import DeployReport

#: Outcomes after which nothing a run did is left unsettled.
SETTLED = ("applied", "noop", "rolled-back")
#: How often to look whether a dead run's session still runs on the server.
SESSION_POLL_SECONDS = 0.1


def check(
    deployment: Deployment, journal: Journal, project: AlembicProject, report: DeployReport, lock: MigrationLock,
) -> None:
    """For ``upgrade``: close and report crashed runs, then refuse (exit 8) over a partial revision."""
    partial = recover(deployment, journal, project, report, lock)
    if partial is not None:
        raise partial.error(deployment.backend.name)


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
        _wait_for_session(deployment, _progress(row))
    partial = find_partial(deployment, journal, project, exclude=report.journal_id)
    for row in crashed:
        what = _crash_summary(deployment, project, row, partial)
        note = (
            f"previous run on host {row['host']} (pid {row['pid']}, journal #{row['id']}, started "
            f"{str(row['started_at'])[:19]}) crashed {what}"
        )
        journal.mark_crashed(row["id"], f"crashed {what}; found by run #{report.journal_id} holding the lock")
        if partial is not None and partial.row["id"] == row["id"]:
            partial.row["outcome"] = "crashed"
        report.warnings.append(note)
        deployment.echo(f"warning: {note}")
    return partial


def find_partial(
    deployment: Deployment, journal: Journal, project: AlembicProject, exclude: int | None,
    outside: Mapping[int, tuple[Any, dict[str, Any]]] | None = None,
) -> Partial | None:
    """The partly applied revision recorded by the newest run with statement progress, if any.

    The newest such run decides: a run starts only after this check passed (or ``repair``
    settled it), so any older partial state was resolved before it. ``outside``: journal id ->
    (pid, newest progress record) that dead runs kept outside their ``running`` rows, read under
    the lock without moving them (``status``); each stands in for its row's own record.
    """
    row = journal.last_progress(exclude=exclude)
    if outside:
        dead = [r for r in journal.unfinished(exclude=exclude)
                if r["id"] in outside and outside[r["id"]][0] == r["pid"] and (row is None or r["id"] >= row["id"])]
        if dead:
            row = {**dead[-1], "progress": json.dumps(outside[dead[-1]["id"]][1])}
    if row is None or row["outcome"] in SETTLED:
        return None
    progress = _progress(row)
    if progress is None:
        return None
    versions = _versions(deployment.engine, progress)
    for entry in progress.revisions:
        if is_applied(project, entry.revision, versions):
            continue
        applied, uncertain = _settle(deployment.engine, entry)
        if applied or uncertain:
            return Partial(project, deployment.engine, row, progress, entry, versions, applied, uncertain)
    return None


def describe(project: AlembicProject, revision: str) -> str:
    try:
        return project.describe(revision)
    except Exception:  # noqa: BLE001 - a revision the scripts no longer have
        return "not in these migration scripts"


def is_applied(project: AlembicProject, revision: str, versions: tuple[str, ...]) -> bool:
    """Is ``revision`` in the version table or an ancestor of what is there?"""
    try:
        return revision not in {rev for rev, _ in project.upgrade_steps(revision, versions)}
    except Exception:  # noqa: BLE001 - a revision unknown to these scripts: only the table can tell
        return revision in versions


# -- what the dead run left ------------------------------------------------------------------------
@dataclass
class Partial:
    """A revision some of whose statements are durable while the version table does not record it."""

    project: AlembicProject
    engine: Engine
    row: dict[str, Any]
    progress: Progress
    entry: RevisionProgress
    versions: tuple[str, ...]
    #: Durable changes, in order (statements settled by looking at the schema included).
    applied: list[Statement]
    #: Statements that were running when the process died and may or may not have taken effect.
    uncertain: list[Statement]
    _statements: dict[str, list[str] | str] = field(default_factory=dict, repr=False)

    @property
    def revision(self) -> str:
        return self.entry.revision

    @property
    def last_applied(self) -> int:
        return max((s.n for s in self.applied), default=0)

    def settled_statements(self) -> list[Statement]:
        """The recorded statements, those settled by looking at the schema as settled."""
        settled = {s.n: s for s in self.applied}
        return [settled.get(s.n, s) for s in self.entry.statements]

    def statements(self, direction: str = "upgrade") -> list[str]:
        """The revision's statements as alembic's offline mode renders them (version-table
        bookkeeping left out); raises ValueError with the reason when they cannot be listed."""
        if direction not in self._statements:
            try:
                rendered = self.project.offline_sql(self.revision, direction)
                self._statements[direction] = [
                    s for s in rendered
                    if not is_noise(s) and not is_version_statement(s, self.progress.version_table)
                ]
            except Exception as exc:  # noqa: BLE001 - any failure means "cannot be listed"
                self._statements[direction] = scrub(f"{type(exc).__name__}: {' '.join(str(exc).split())}")[:300]
        found = self._statements[direction]
        if isinstance(found, str):
            raise ValueError(f"its {direction}() could not be rendered in alembic's offline mode ({found})")
        return found

    def error(self, backend: str) -> PartialMigration:
        from .repair import OPTIONS, plan_resume, plan_rollback

        row, rev = self.row, self.revision
        if not self.project.knows(rev):
            return self._foreign_error()
        try:
            total: int | None = len(self.statements())
        except ValueError:
            total = None
        what = self._what(f" of its {total}" if total is not None else "")
        where = {
            "postgresql": "they ran outside a transaction (an autocommit block)",
            "sqlite": "alembic runs SQLite DDL outside a transaction (pysqlite opens one only before DML)",
        }.get(backend, "MySQL/MariaDB commits DDL statement by statement")
        at = ", ".join(self.versions) or "<base>"
        unsure = (
            f" Statement(s) {_numbers(self.uncertain)} were running when that process died or lost its "
            "connection, and the schema cannot tell whether they took effect."
            if self.uncertain else ""
        )
        options = []
        for option, plan in (("--resume", plan_resume(self)), ("--rollback-partial", plan_rollback(self))):
            options.append(f"{option} ({plan.summary})" if plan.refusal is None
                           else f"{option} (not available: {plan.refusal})")
        options.append(f"--mark-applied ({OPTIONS['mark-applied']})")
        fields: dict[str, Any] = {
            "revision": f"{rev} ({describe(self.project, rev)})",
            "left by": self._left_by(),
            "ran": _listing(self.applied) or "-",
        }
        if self.uncertain:
            fields["uncertain"] = _listing(self.uncertain)
        if self.entry.failed is not None:
            fields["failed"] = f"{_listing([self.entry.failed])} (raised an error; not applied)"
        fields["not run"] = self.not_run_listing()
        fields["options"] = "; ".join(options)
        return PartialMigration(
            f"Revision {rev} is partly applied: {what} by an earlier "
            f"run (journal #{row['id']}, {row['outcome']}) but the version table says {at}, because "
            f"{where} and nothing rolled them back. Running the revision again would apply them twice or "
            f"fail on them, so nothing was migrated.{unsure} Resolve it with `alembic-deploy repair` and "
            "one of --resume, --rollback-partial or --mark-applied (see options below), then deploy again.",
            **fields,
        )

    def _foreign_error(self) -> PartialMigration:
        """The revision is not in these scripts: another project migrating this database (its own
        version table, the same lock and journal table) or newer code left it; only that code can
        repair it."""
        row, rev, table = self.row, self.revision, self.progress.version_table
        return PartialMigration(
            f"Revision {rev} is partly applied: {self._what()} by an earlier run (journal #{row['id']}, "
            f"{row['outcome']}) whose version table {table} says {', '.join(self.versions) or '<base>'}, "
            f"but these migration scripts do not contain {rev}: it belongs to another Alembic project "
            "that migrates this database and shares this journal table, or to newer code. Nothing was "
            "migrated. Repair it with that code (`alembic-deploy repair` in its folder), then deploy "
            "again; projects sharing a database should keep a journal table each (--journal-table).",
            revision=rev,
            **{"version table": table, "left by": self._left_by(), "ran": _listing(self.applied) or "-"},
        )

    def _what(self, of: str = "") -> str:
        """What of the revision is durable (``of``: " of its N" when its statements are known)."""
        if self.applied:
            return f"statement(s) {_numbers(self.applied)}{of} were committed"
        return f"statement(s) {_numbers(self.uncertain)}{of} may have been committed"

    def _left_by(self) -> str:
        row = self.row
        return f"journal #{row['id']}: {row['command']} on host {row['host']} (pid {row['pid']}), {row['outcome']}"

    def not_run_listing(self) -> str:
        try:
            statements = self.statements()
        except ValueError as exc:
            return f"cannot tell: {exc}"
        # Each statement is listed once: the one that failed is under "failed".
        done = {s.n for s in self.applied} | {s.n for s in self.uncertain}
        if self.entry.failed is not None:
            done.add(self.entry.failed.n)
        syntax = literal_syntax(self.progress.backend)
        rest = [(n, sql) for n, sql in enumerate(statements, 1) if n not in done and n > self.last_applied]
        return "; ".join(f"{n}. {shorten(excerpt(sql, syntax))}" for n, sql in rest) or "-"


def _numbers(statements: list[Statement]) -> str:
    return ", ".join(str(s.n) for s in statements)



def _listing(statements: list[Statement]) -> str:
    return "; ".join(f"{s.n}. {shorten(s.sql)}" for s in statements)


def _progress(row: dict[str, Any]) -> Progress | None:
    raw = row.get("progress")
    if not raw:
        return None
    try:
        progress = Progress.from_dict(json.loads(raw))
    except (ValueError, TypeError, KeyError):
        return None
    # Rows an earlier release wrote kept literals in the statement text this run may show.
    syntax = literal_syntax(progress.backend)
    for entry in progress.revisions:
        for statement in [*entry.statements, *([entry.failed] if entry.failed else [])]:
            statement.sql = excerpt(statement.sql, syntax)
    return progress


def _versions(engine: Engine, progress: Progress) -> tuple[str, ...]:
    from .verify import read_versions

    return read_versions(engine, progress.version_table, progress.version_table_schema)


def _settle(engine: Engine, entry: RevisionProgress) -> tuple[list[Statement], list[Statement]]:
    """(durable statements, uncertain statements) of ``entry``; a statement the process died in
    is settled by the schema when its effect can be looked up there."""
    applied: list[Statement] = []
    uncertain: list[Statement] = []
    for statement in entry.statements:
        if statement.kind == READ:
            continue
        if statement.applied:
            applied.append(statement)
        elif (statement.state == "running" and statement.may_commit) or statement.state == "undoing":
            verdict = took_effect(engine, statement.schema_effect)
            if verdict is None:
                uncertain.append(statement)
            elif verdict:
                applied.append(replace(statement, state="done", committed=True))
    return applied, uncertain


def took_effect(engine: Engine, effect: Effect | None) -> bool | None:
    """Is the schema as ``effect``'s statement leaves it? None when that cannot be looked up."""
    if effect is None:
        return None
    exists = schema_has(engine, effect)
    return None if exists is None else exists == effect.creates


def schema_has(engine: Engine, effect: Effect) -> bool | None:
    """Does the object ``effect`` creates or drops exist now (names compared case-insensitively)?"""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return _schema_has(engine, effect)
    except SQLAlchemyError:
        return None


def _schema_has(engine: Engine, effect: Effect) -> bool:
    from sqlalchemy import inspect

    with engine.connect() as conn:
        insp = inspect(conn)
        tables = {t.lower(): t for t in insp.get_table_names(schema=effect.schema)}
        if effect.kind == "table":
            return effect.name in tables
        names = [tables[effect.table]] if effect.table in tables else ([] if effect.table else list(tables.values()))
        for table in names:
            if effect.kind == "column":
                found = {c["name"] for c in insp.get_columns(table, schema=effect.schema)}
            else:
                found = {i["name"] for i in insp.get_indexes(table, schema=effect.schema)}
                for getter in (insp.get_unique_constraints, insp.get_foreign_keys, insp.get_check_constraints):
                    try:
                        found |= {c["name"] for c in getter(table, schema=effect.schema)}
                    except NotImplementedError:
                        continue
            if effect.name in {str(n).lower() for n in found if n}:
                return True
        return False


# -- crashed runs ------------------------------------------------------------------------------------
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
                deployment.echo(
                    f"Waiting for session {progress.session} of a crashed deploy to end on the server..."
                )
                told = True
            time.sleep(SESSION_POLL_SECONDS)


def _crash_summary(deployment: Deployment, project: AlembicProject, row: dict[str, Any], partial: Partial | None) -> str:
    progress = _progress(row)
    if progress is None:
        return "before it started applying revisions"
    if partial is not None and partial.row["id"] == row["id"]:
        return f"while applying revision {partial.revision}, leaving it partly applied"
    try:
        versions = _versions(deployment.engine, progress)
    except Exception:  # noqa: BLE001 - the report matters less than the run
        versions = ()
    in_flight = [e.revision for e in progress.revisions if not is_applied(project, e.revision, versions)]
    last = progress.planned_last
    if in_flight:
        current = in_flight[-1]
        earlier = _steps(project, current, versions)[:-1]
    elif last is not None and not is_applied(project, last, versions):
        # No statement of it was recorded: nothing committed by itself. Each revision commits with
        # its version stamp (MySQL, SQLite, transaction_per_migration) and then the revision in
        # flight is the first one not recorded; with one transaction for the whole run (PostgreSQL's
        # default) it was one of them, and all of them went back together.
        pending = _steps(project, last, versions) or [last]
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


def _steps(project: AlembicProject, target: str, versions: tuple[str, ...]) -> list[str]:
    """The revisions from the database's current ones up to ``target`` ([] if that cannot be told)."""
    try:
        return [rev for rev, _ in project.upgrade_steps(target, versions)]
    except Exception:  # noqa: BLE001 - revisions these scripts do not know
        return []
