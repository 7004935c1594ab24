"""The deploy journal: an append-only table in the migrated database itself.

A ``running`` row is written as soon as the migration lock is held and completed at the end, on
the tool's own connection (never the migrating one), so a failed migration is still recorded and
a crash stays visible as a ``running`` row whose holder is gone.
"""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import (
    VARBINARY,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    bindparam,
    inspect,
    null,
    select,
)
from sqlalchemy.exc import DBAPIError

from .masking import scrub
from .provenance import COLUMN_SIZES, journal_row, revision_columns

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from sqlalchemy.engine import Connection, Engine

    from .backends.base import Backend
    from .report import DeployReport
    from .settings import Settings

#: ``crashed``: a ``running`` row found by a later run holding the migration lock, so its process
#: was gone (killed, OOM, host lost) before it could record an outcome; see steps/recovery.py.
OUTCOMES = ("running", "applied", "noop", "failed", "interrupted", "refused", "rolled-back", "crashed")
#: The column a later release added: a rollback's journal id of the deploy it undid.
UNDOES: Final = "undoes"


def _text(column: str) -> String:
    return String(COLUMN_SIZES[column])


def journal_table(name: str, metadata: MetaData | None = None) -> Table:
    """The journal's table; ``name`` is a plain identifier (checked when the settings are resolved)
    that SQLAlchemy quotes wherever it is used, as every statement here is built from this object."""
    return Table(
        name,
        metadata or MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("started_at", DateTime(timezone=True), nullable=False),
        Column("finished_at", DateTime(timezone=True)),
        Column("duration_seconds", Float),
        Column("command", _text("command"), nullable=False),
        Column("outcome", _text("outcome"), nullable=False),
        Column("target", _text("target")),
        Column("from_revisions", _text("from_revisions")),
        Column("to_revisions", _text("to_revisions")),
        # JSON list (journal_revisions): [{"revision", "down_revisions", "description", "duration", "status"}]
        Column("revisions", Text),
        # JSON: statement progress of the revision in flight (non-transactional backends).
        Column("progress", Text),
        Column("error", Text),
        Column("host", _text("host")),
        Column("pid", Integer),
        Column("environment", _text("environment")),
        Column("git_sha", _text("git_sha")),
        Column("actor", _text("actor")),
        Column("run_url", _text("run_url")),
        Column("tool_version", _text("tool_version")),
        Column("alembic_version", _text("alembic_version")),
        Column("db_wait_seconds", Float),
        Column("lock_wait_seconds", Float),
        # rollback: the id of the row of the deploy it undid. Added to a journal an earlier release
        # made by Journal.ensure; one without it still works (see Journal.undoes_column).
        Column(UNDOES, Integer),
    )


#: Bytes of progress JSON a row of the volatile table holds; a longer record goes to the journal.
VOLATILE_BYTES = 30000


def volatile_table(journal: str, metadata: MetaData | None = None, **options: Any) -> Table:
    """Beside the journal, where the backend has a table engine whose writes commit without
    touching the disk (``options``: :attr:`~.backends.base.Backend.volatile_table_options`; MySQL's
    MEMORY engine, whose rows are gone when the server restarts), a run's newest progress record
    while it is newer than the one in the run's journal row (see :meth:`Journal.progress`)."""
    return Table(
        f"{journal}_progress",
        metadata or MetaData(),
        Column("journal_id", Integer, primary_key=True, autoincrement=False),
        Column("pid", Integer),
        Column("progress", VARBINARY(VOLATILE_BYTES)),
        **options,
    )


def journal_revisions(report: DeployReport) -> list[dict[str, Any]]:
    """The ``revisions`` column: every revision the run applied, then the one it ended in (status
    ``failed``, or ``interrupted``), so the journal names the revision that failed as data, not
    only inside the error text."""
    entries = [
        {"revision": r.revision, "down_revisions": list(r.down_revisions), "description": r.description,
         "duration": round(r.duration, 4), "status": r.status, **_retried(report, r.revision, r.attempts)}
        for r in report.applied
    ]
    failed = report.failed_revision
    if failed is not None:
        entries.append({
            "revision": failed.revision, "down_revisions": list(failed.down_revisions),
            "description": failed.description, "duration": round(failed.duration, 4),
            "status": "interrupted" if report.outcome == "interrupted" else "failed",
            **_retried(report, failed.revision, None),
        })
    return entries


def _retried(report: DeployReport, revision: str, attempts: int | None) -> dict[str, Any]:
    """``attempts`` and the ``blockers`` named at each retry, for a revision that was retried
    (nothing for one that ran once, so most rows stay as they were)."""
    blockers = [r.blockers for r in report.retries if r.revision == revision]
    attempts = attempts if attempts is not None else len(blockers) + 1
    if attempts <= 1:
        return {}
    return {"attempts": attempts, "blockers": [scrub(b) for b in blockers if b]}


#: Bytes the ``revisions`` column holds on every backend: MySQL's TEXT takes 65,535, and a journal
#: made by an earlier release keeps that type, so a larger value would fail the run after it migrated.
REVISIONS_BUDGET: Final = 60_000


def revisions_json(report: DeployReport) -> str:
    """:func:`journal_revisions` as the column's JSON, within :data:`REVISIONS_BUDGET`: when a run
    applied too many revisions to list whole, the newest entries (the failed one included) stay
    whole, older ones keep only their id, duration and status (an empty description), and the
    oldest are left out; ``from_revisions`` and ``to_revisions`` still say where the run began."""
    entries = journal_revisions(report)
    text = json.dumps(entries)
    if len(text.encode()) <= REVISIONS_BUDGET:
        return text
    kept: list[dict[str, Any]] = []
    size = 2  # the list's brackets
    for entry in reversed(entries):
        if size > REVISIONS_BUDGET // 2:
            entry = {"revision": entry["revision"], "description": "", "duration": entry["duration"],
                     "status": entry["status"]}
        cost = len(json.dumps(entry).encode()) + 2  # and its ", "
        if size + cost > REVISIONS_BUDGET:
            break
        kept.append(entry)
        size += cost
    return json.dumps(kept[::-1])


class Journal:
    """Reads and writes the journal table, on ``connection`` (the idle lock session, AUTOCOMMIT)
    when there is one, else on a short-lived connection per call (the engines use no pool)."""

    def __init__(
        self, engine: Engine, name: str, connection: Connection | None = None, backend: Backend | None = None,
    ) -> None:
        self.engine = engine
        self.table = journal_table(name)
        self.backend = backend
        self._progress_update = (
            self.table.update()
            .where(self.table.c.id == bindparam("row_id"))
            .values(progress=bindparam("state"), revisions=None)
        )
        self._progress_sql: tuple[str, Any] | None = None
        #: (DBAPI connection, read its reply) of a progress write sent without waiting for it.
        self._unread: tuple[Any, Callable[[], Any]] | None = None
        #: The volatile table, where the backend has one (:meth:`ensure`), its statements, and the
        #: journal id whose row there is newer than the journal's.
        self._volatile: Table | None = None
        self._volatile_sql: tuple[Any, Any] | None = None
        self._volatile_holds: int | None = None
        self._connection: Connection | None = None
        self.connection = connection
        #: Why the journal cannot be written, once the server refused a write of it for a privilege
        #: the role lacks or a read-only database (:meth:`~.backends.base.Backend.is_refused`):
        #: the run then writes nothing more to it. None while writes are accepted.
        self.refused: str | None = None
        self._missing = False  # refused while creating it: there is no table to read either
        #: Whether the table has the ``undoes`` column (None: not looked yet).
        self._has_undoes: bool | None = None

    @property
    def connection(self) -> Connection | None:
        return self._connection

    @connection.setter
    def connection(self, connection: Connection | None) -> None:
        """A new session (the lock taken again on one): a reply still unread on the old one is
        lost with it. Whatever else runs on the session reads that reply first."""
        from sqlalchemy import event

        self._unread = None
        self._connection = connection
        if connection is not None and self.backend is not None:
            event.listen(connection, "before_cursor_execute", lambda *_args: self.settle())

    def _run(self, fn: Any) -> Any:
        self.settle()
        try:
            if self.connection is not None and not self.connection.closed:
                return fn(self.connection)
            with self.engine.begin() as conn:
                return fn(conn)
        except DBAPIError:
            # Looked at only once a statement failed: a journal in shape costs nothing more.
            self._refuse_foreign_table()
            raise

    def _refuse_foreign_table(self) -> None:
        """Exit 2 when a table of the journal's name exists but something else made it (its
        statements fail on columns it lacks, or on columns of its own that need a value)."""
        from .errors import ConfigError

        try:
            with self.engine.connect() as conn:
                insp = inspect(conn)
                if not insp.has_table(self.table.name):
                    return
                found = insp.get_columns(self.table.name)
        except Exception:  # noqa: BLE001 - the database's own failure is the one to report
            return
        names = {str(c["name"]).lower() for c in found}
        missing = [c.name for c in self.table.columns if c.name not in names]
        ours = {c.name for c in self.table.columns}
        unknown = [str(c["name"]) for c in found if str(c["name"]).lower() not in ours and not c.get("nullable", True)
                   and c.get("default") is None and c.get("autoincrement") is not True]  # 1.4 says "auto" for any
        if not missing and not unknown:
            return
        more = f" and {len(missing) - 4} more" if len(missing) > 5 else ""
        lacks = f"missing columns {', '.join(missing[:4] if more else missing)}{more}" if missing else ""
        extra = f"columns it does not know that need a value: {', '.join(unknown)}" if unknown else ""
        raise ConfigError(
            f"The table {self.table.name!r} exists but is not an alembic-deploy journal "
            f"({'; '.join(filter(None, (lacks, extra)))}): something else created it, and alembic-deploy "
            "neither changes nor drops it. Keep the journal in another table: pass --journal-table NAME "
            "(or set ALEMBIC_DEPLOY_JOURNAL_TABLE) on every command that deploys this database.",
            table=self.table.name,
        ) from None

    def settle(self) -> None:
        """Read the reply to a progress write sent without waiting for it (raising its error)."""
        unread, self._unread = self._unread, None
        if unread is not None and self._dbapi() is unread[0]:
            unread[1]()

    def _dbapi(self) -> Any:
        conn = self.connection
        if conn is None or conn.closed or conn.invalidated:
            return None
        return conn.connection.dbapi_connection

    def exists(self) -> bool:
        return bool(self._run(lambda c: inspect(c).has_table(self.table.name)))

    def ensure(self, extend: bool = False) -> None:
        """Create the table if missing (call under the migration lock: CREATE races otherwise),
        and the volatile table where the backend has one. ``extend`` (``rollback``, the one
        command that writes it): add the ``undoes`` column to a journal an earlier release made."""
        try:
            created = self._run(self._create)
        except DBAPIError as exc:
            self._missing = self._refuse(exc)
            return
        if created:
            self._has_undoes = True
        elif extend and not self.undoes_column():
            self._add_undoes()
        if self.backend is not None and self.backend.volatile_progress and self.connection is not None:
            self._volatile = self._run(self._create_volatile)

    def _create(self, conn: Connection) -> bool:
        """Create the table unless it exists; True when it was created."""
        if inspect(conn).has_table(self.table.name):
            return False
        self.table.create(conn)
        return True

    def undoes_column(self) -> bool:
        """Does the table have the ``undoes`` column? (One look per Journal; False without a table.)"""
        if self._has_undoes is None:
            def look(conn: Connection) -> bool:
                insp = inspect(conn)
                if not insp.has_table(self.table.name):
                    return False
                return UNDOES in {str(c["name"]).lower() for c in insp.get_columns(self.table.name)}

            try:
                self._has_undoes = bool(self._run(look))
            except DBAPIError:
                self._has_undoes = False
        return self._has_undoes

    def _add_undoes(self) -> None:
        """``ALTER TABLE ... ADD COLUMN undoes INTEGER`` (the same on every backend); a role that may
        not alter the table keeps the journal as it is, and the rollback's row lacks the id."""
        def add(conn: Connection) -> None:
            name = conn.dialect.identifier_preparer.quote(self.table.name)
            conn.exec_driver_sql(f"ALTER TABLE {name} ADD COLUMN {UNDOES} INTEGER")

        try:
            self._run(add)
        except DBAPIError as exc:
            self._refuse(exc)
            self.refused = None  # the rest of the journal is still written
            self._has_undoes = False
            return
        self._has_undoes = True

    def _create_volatile(self, conn: Connection) -> Table | None:
        assert self.backend is not None
        table = volatile_table(self.table.name, **self.backend.volatile_table_options)
        if len(table.name) > conn.dialect.max_identifier_length:
            return None
        try:
            table.create(conn, checkfirst=True)
            # A server may refuse writes to a MEMORY table (Galera's strict mode): then there is none.
            conn.execute(table.delete().where(table.c.journal_id == 0))
        except DBAPIError:
            return None
        upsert = self.backend.upsert(
            table, {"journal_id": bindparam("j"), "pid": bindparam("p"), "progress": bindparam("s")})
        self._volatile_sql = (self._compiled(upsert, conn), self._compiled(
            table.delete().where(table.c.journal_id == bindparam("j")), conn))
        return table

    def adopt_volatile(self) -> None:
        """Move the records crashed runs left in the volatile table into their journal rows
        (:meth:`adopt_progress`), then clear it. Call under the migration lock, before reading
        any run's progress."""
        table = self._volatile
        if table is None:
            return
        rows = self._run(lambda c: list(c.execute(table.select())))
        for row in rows:
            try:
                progress = json.loads(bytes(row.progress).decode())
            except ValueError:
                continue  # not a record this tool wrote: the journal row's own record stands
            self.adopt_progress(row.journal_id, row.pid, progress)
        if rows:
            self._run(lambda c: c.execute(table.delete()))

    def outside_records(self) -> dict[int, tuple[Any, dict[str, Any]]]:
        """Progress records runs left in the volatile table (where the backend has one), by
        journal id: (pid, record), read without moving them (``status``, under the lock; a deploy
        moves them with :meth:`adopt_volatile`). Empty when there is no such table or it cannot
        be read."""
        if self.backend is None or not self.backend.volatile_progress or self._missing:
            return {}
        table = volatile_table(self.table.name, **self.backend.volatile_table_options)

        def read(conn: Connection) -> list[Any]:
            if not inspect(conn).has_table(table.name):
                return []
            return list(conn.execute(table.select()))

        try:
            rows = self._run(read)
        except DBAPIError:
            return {}
        records: dict[int, tuple[Any, dict[str, Any]]] = {}
        for row in rows:
            try:
                records[row.journal_id] = (row.pid, json.loads(bytes(row.progress).decode()))
            except ValueError:
                continue  # not a record this tool wrote
        return records

    def _refuse(self, exc: DBAPIError) -> bool:
        """True, remembering why, when the server refused ``exc``'s statement for a privilege or a
        read-only database; any other error is raised."""
        if self.backend is None or not self.backend.is_refused(exc):
            raise exc
        if self.refused is None:
            self.refused = scrub(self.backend.error_text(exc).strip().splitlines()[0])
        return True

    def start(self, report: DeployReport, settings: Settings) -> int | None:
        """The run's ``running`` row; None when the journal cannot be written (:attr:`refused`)."""
        if self.refused is not None:
            return None
        row = journal_row(settings, report, "running")
        row.update(started_at=datetime.fromtimestamp(report.started_at, timezone.utc), duration_seconds=None)
        try:
            ident = self._run(lambda c: c.execute(self.table.insert().values(**row)).inserted_primary_key[0])
        except DBAPIError as exc:
            self._refuse(exc)
            return None
        report.journal_id = int(ident)
        return report.journal_id

    def progress(self, journal_id: int, progress: str, durable: bool = True) -> None:
        """Write the run's statement progress into its row: before each statement of the migration
        that commits by itself, so on the DBAPI cursor, the UPDATE compiled once (SQLAlchemy's
        execution path costs as much again as the round trip).

        ``durable=False`` (the record need only survive a crash of this process, see
        :func:`~.progress.tracker.repeats_visibly`), on the lock session: the record goes to the
        volatile table where there is one (MySQL's MEMORY engine: no disk write), else to the row;
        and where the driver sends a query apart from reading its reply
        (:meth:`~.backends.base.Backend.send_query`), it is sent and this returns, the reply being
        read when the session is next used (:meth:`settle`). The server runs a query it received
        even if this process dies; a server crash may lose the record. The next write to the row
        removes the run's volatile record, so that one, when present, is always the newest
        (:meth:`adopt_volatile`)."""
        if self.refused is None:
            self._run(lambda conn: self._write_progress(conn, journal_id, progress, durable))

    def _write_progress(self, conn: Connection, journal_id: int, progress: str, durable: bool) -> None:
        ahead = not durable and conn is self.connection
        if ahead and self._volatile_sql is not None and len(progress) <= VOLATILE_BYTES:
            self._send(conn, self._volatile_sql[0], {"j": journal_id, "p": os.getpid(), "s": progress.encode()}, ahead)
            self._volatile_holds = journal_id
            return
        if self._progress_sql is None:
            self._progress_sql = self._compiled(self._progress_update, conn)
        self._send(conn, self._progress_sql, {"row_id": journal_id, "state": progress, "revisions": None}, ahead)
        if self._volatile_holds is not None and self._volatile_sql is not None:
            # The row holds the newest record now; recovery would prefer an older volatile one.
            self._send(conn, self._volatile_sql[1], {"j": self._volatile_holds}, conn is self.connection)
            self._volatile_holds = None

    @staticmethod
    def _compiled(statement: Any, conn: Connection) -> Any:
        compiled = statement.compile(dialect=conn.dialect)
        return str(compiled), compiled.positiontup if compiled.positional else None

    def _send(self, conn: Connection, sql: Any, values: dict[str, Any], ahead: bool) -> None:
        """Run ``sql`` (compiled: text and parameter order) on ``conn``'s DBAPI cursor; ``ahead``:
        sent without waiting for the reply where the backend can (:meth:`settle` reads it)."""
        text, order = sql
        params = tuple(values[k] for k in order) if order is not None else values
        self.settle()
        dbapi = conn.connection.dbapi_connection
        if ahead and self.backend is not None:
            read = self.backend.send_query(dbapi, text, params)
            if read is not None:
                self._unread = (dbapi, read)
                return
        cursor = conn.connection.cursor()
        try:
            cursor.execute(text, params)
        finally:
            cursor.close()

    def adopt_progress(self, row_id: Any, pid: Any, progress: dict[str, Any]) -> None:
        """Record a crashed run's last progress, kept outside the journal, in its row: the row of
        that id and pid still ``running`` (a run that ended saved its own final state)."""
        if not isinstance(row_id, int) or not isinstance(pid, int) or self.refused is not None:
            return
        t = self.table
        self._run(
            lambda c: c.execute(
                t.update().where(t.c.id == row_id, t.c.pid == pid, t.c.outcome == "running")
                .values(progress=json.dumps(progress))
            )
        )

    def finish(self, report: DeployReport) -> None:
        if report.journal_id is None or self.refused is not None:
            return
        finished = report.finished_at or time.time()
        values = {
            "finished_at": datetime.fromtimestamp(finished, timezone.utc),
            "duration_seconds": round(finished - report.started_at, 4),
            "outcome": report.outcome,
            **revision_columns(report),
            "revisions": revisions_json(report),
            "error": scrub(report.error["message"])[:4000] if report.error else None,
            "lock_wait_seconds": report.lock_wait_seconds,
        }
        undoes = getattr(report, UNDOES, None)  # a RollbackReport's
        if undoes is not None and self.undoes_column():
            values[UNDOES] = undoes
        self._run(
            lambda c: c.execute(
                self.table.update().where(self.table.c.id == report.journal_id).values(**values)
            )
        )

    def unfinished(self, exclude: int | None = None) -> list[dict[str, Any]]:
        """Rows still ``running``, oldest first, other than ``exclude`` (the caller's own row)."""
        query = self._select().where(self.table.c.outcome == "running").order_by(self.table.c.id)
        if exclude is not None:
            query = query.where(self.table.c.id != exclude)
        return self._read(query)

    def _select(self, undoes: bool = False) -> Any:
        """SELECT of the row's columns; ``undoes`` only when asked (the table has it: an earlier
        release's journal may not), else it reads as None."""
        columns: list[Any] = [c for c in self.table.columns if c.name != UNDOES]
        columns.append(self.table.c[UNDOES] if undoes else null().label(UNDOES))
        return select(*columns)

    def _read(self, query: Any) -> list[dict[str, Any]]:
        """Rows of ``query``; none when there is no table, or the role may not read it (then the
        journal is not written either: :attr:`refused`)."""
        if self._missing:
            return []
        try:
            rows: list[dict[str, Any]] = self._run(lambda c: [dict(r._mapping) for r in c.execute(query)])
        except DBAPIError as exc:
            self._missing = self._refuse(exc)
            return []
        return rows

    def mark_crashed(self, row_id: int, note: str) -> None:
        """Close a dead run's row; its end time is unknown, so ``finished_at`` stays empty."""
        if self.refused is not None:
            return
        self._run(
            lambda c: c.execute(
                self.table.update()
                .where(self.table.c.id == row_id, self.table.c.outcome == "running")
                .values(outcome="crashed", error=scrub(note)[:4000])
            )
        )

    def last_progress(self, exclude: int | None = None) -> dict[str, Any] | None:
        """The newest row (other than ``exclude``) that recorded statement progress."""
        query = (
            self._select().where(self.table.c.progress.is_not(None)).order_by(self.table.c.id.desc()).limit(1)
        )
        if exclude is not None:
            query = query.where(self.table.c.id != exclude)
        rows = self._read(query)
        return rows[0] if rows else None

    def since(self, moment: datetime, columns: Sequence[str] | None = None) -> list[dict[str, Any]] | None:
        """Every row that started at or after ``moment`` (aware), oldest first, with ``columns``
        (default: all but ``progress``, a dead run's statement record, which is for ``repair``,
        not for reading history); None when the database has no journal table (never deployed
        with alembic-deploy). Only reads: a driver's error, a refused read included, is raised."""
        if not self.exists():
            return None
        chosen = [c for c in self.table.columns if (c.name in columns if columns is not None else c.name != "progress")
                  and (c.name != UNDOES or self.undoes_column())]  # an earlier release's journal lacks it
        query = select(*chosen).where(self.table.c.started_at >= moment).order_by(self.table.c.id)

        def read(conn: Connection) -> list[dict[str, Any]]:
            result = conn.execute(query)
            keys = list(result.keys())
            return [dict(zip(keys, row, strict=True)) for row in result]

        rows: list[dict[str, Any]] = self._run(read)
        return rows

    def deploys(self, environment: str | None = None) -> list[dict[str, Any]]:
        """Runs that moved the database and ended well, newest first (``applied`` and
        ``rolled-back`` rows; of ``environment`` when given): what ``rollback`` undoes and has
        undone. Only the columns that tell it, not the progress records."""
        if not self.exists():
            return []
        t = self.table
        query = select(
            t.c.id, t.c.command, t.c.outcome, t.c.started_at, t.c.from_revisions, t.c.to_revisions, t.c.revisions,
            t.c.environment, t.c.undoes if self.undoes_column() else null().label(UNDOES),
        ).where(t.c.outcome.in_(("applied", "rolled-back"))).order_by(t.c.id.desc())
        if environment is not None:
            query = query.where(t.c.environment == environment)
        return self._read(query)

    def rows(self, limit: int = 20, outcome: str | None = None) -> list[dict[str, Any]]:
        if not self.exists():
            return []
        query = self._select(self.undoes_column()).order_by(self.table.c.id.desc()).limit(limit)
        if outcome:
            query = query.where(self.table.c.outcome == outcome)
        return self._read(query)
