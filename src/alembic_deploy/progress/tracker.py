"""Statement progress of the revision in flight, journaled while it runs.

Why: MySQL/MariaDB commit every DDL statement on its own, and pysqlite runs DDL outside any
transaction unless a DML statement opened one, so a revision that fails, or whose process dies,
midway can leave some of its statements committed while the version table still names the
revision before it. Alembic cannot see that state and would run the revision again from its first
statement. The :class:`ProgressTracker` records which statements of the revision in flight ran and
which of them are durably committed, in the journal row's ``progress`` column, on the journal's
own connection (the idle lock session, AUTOCOMMIT), so that the next run can tell a partly applied
revision (exit 8, :mod:`~alembic_deploy.steps.recovery`) from one that was rolled back whole.

How: the statements, commits, rollbacks and errors of the migrating connection (the one env.py
configured), seen through :mod:`~alembic_deploy.connection_events`. Durability is read from the
driver after each statement (:meth:`~alembic_deploy.backends.Backend.transaction_probe`): once the session is outside a
transaction, everything it ran is committed. A statement that *commits by itself*
(:func:`commits_by_itself`: MySQL DDL, pysqlite DDL outside a transaction, anything in autocommit
mode) is journaled as ``running`` before it starts, so a process killed inside it is never
mistaken for "not run". Statements inside a transaction are not journaled one by one: a crash
rolls them back with their transaction.

What is written, and when, is kept to what a crash needs, since each write is a committed
transaction (an fsync) and the migration waits for it:

* before a statement that commits by itself: always (the whole state, earlier statements
  settled), the only write a crash cannot do without. It need not be durable when it returns,
  only certain to survive a crash of this process, when the first change it alone tells of
  repeats visibly (:meth:`ProgressTracker._may_defer`): then the migration does not wait for
  it to reach the disk (an unsynced append on SQLite; on MySQL a row of a MEMORY table, sent
  ahead: :meth:`~alembic_deploy.journal.Journal.progress`);
* after it: only when the schema could not tell afterwards whether it ran (:func:`effect_of`
  found no table, column, index or constraint it creates or drops). Otherwise the ``running``
  record is settled by looking at the schema (:mod:`~alembic_deploy.steps.recovery`) or by the
  next write;
* never just because a revision started: the next statement that commits by itself names it,
  and without one the revision commits as a whole (with its version stamp), so after a crash the
  revision in flight is the first planned one the version table does not record, or, with one
  transaction for the whole run (PostgreSQL's default), one of the planned revisions it rolled
  back together (:mod:`~alembic_deploy.steps.recovery`);
* the plan once, and the final state when the run ends.

Where a write goes is the caller's choice (``write``, and ``final`` for the end state): the
journal row, or on SQLite during an upgrade the lock file (:class:`~alembic_deploy.backends.sqlite.ProgressLog`).
The journal table shares SQLite's write lock with the migration, so a write there is deferred
while the migrating connection holds a write transaction, never blocking the migration against
itself (every write a crash needs falls outside one).

The tracker is the one model of what the migrating connection sends. Beside the record it
journals, it counts the statements of the revision in flight as this attempt sent them
(:class:`StatementCounts`): the record keeps only what a crash needs (a rollback forgets what it
undid), while the retry loop (:mod:`~alembic_deploy.steps.upgrade`) asks what this attempt did
before it failed.

Before each statement that commits by itself, the object it creates or drops is looked up
(:meth:`~alembic_deploy.backends.Backend.object_exists`) and recorded with it (``before``): after
a crash inside it, only that tells the statement's doing from an object that was there before.
One case needs no query: a column added to a table this run created, whose name no statement
since could have made (:meth:`ProgressTracker._known_absent`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .record import Progress, RevisionRecord, Statement, record
from .sql_text import DDL, READ, _effect_fields, _version_statement, classify, normalize

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from ..backends.base import Backend


@dataclass
class StatementCounts:
    """What this attempt's migrating connection sent for the revision in flight (``revision``
    None: before the first one), every statement counted (reads and alembic's version-table
    statements too). Enough to tell whether running the revision again is safe
    (:func:`~alembic_deploy.steps.upgrade.retry_safe`)."""

    revision: str | None = None
    sent: int = 0
    completed: int = 0
    #: A statement of this revision ran in autocommit mode (``autocommit_block``): alembic
    #: committed the revision's earlier work when the block began, and the block's own
    #: statements commit one by one.
    outside_transaction: bool = False


def commits_by_itself(backend: Backend, kind: str, inside_transaction: bool | None, auto: bool) -> bool:
    """Would this statement be durable as soon as it completes, whatever happens next? Never a
    read; every change in autocommit mode; otherwise as ``backend`` says
    (:meth:`~alembic_deploy.backends.Backend.commits_by_itself`)."""
    if kind == READ:
        return False
    return auto or backend.commits_by_itself(kind == DDL, inside_transaction)


#: Takes the progress as JSON (:meth:`Progress.to_json`) and whether the write must be durable
#: when it returns. When told it need not be (see :func:`repeats_visibly` and
#: :meth:`ProgressTracker._may_defer`), it must still survive a crash of this process: the SQLite
#: lock file skips its fdatasync; on MySQL the record goes to a MEMORY table, sent without waiting
#: for its reply (:meth:`~alembic_deploy.journal.Journal.progress`).
Writer = Callable[[str, bool], None]


def repeats_visibly(statement: Statement) -> bool:
    """Run a second time, would this statement fail or do nothing? True for DDL with one known
    schema effect: the table, column, index or constraint it creates then exists (an error, or
    nothing with ``IF NOT EXISTS``), the one it drops is gone. Its ``running`` record then needs
    to survive a crash of this process (the OS page cache keeps a written file; the server runs
    a query it received), not one of the machine or the server: were the record lost with them,
    the next run repeats the statement and stops on its error, applying nothing twice."""
    return statement.kind == DDL and statement.effect is not None


class ProgressTracker:
    """Follows the migrating connection and journals :class:`Progress` through ``write``.

    The pipeline drives it: :meth:`attach` once env.py configured its connection, :meth:`plan`,
    :meth:`revision_started` / :meth:`revision_applied` around each revision, :meth:`close` when
    env.py returned or raised. Statements are seen through :mod:`~alembic_deploy.connection_events`.
    """

    def __init__(self, backend: Backend, write: Writer | None = None, final: Writer | None = None) -> None:
        self.backend = backend
        self.progress = Progress(backend=backend.name)
        #: This attempt's statements of the revision in flight (None: no connection attached in
        #: this attempt yet).
        self.counts: StatementCounts | None = None
        self._syntax = backend.literals
        self._write = write
        #: Where :meth:`close` writes the final state (the journal), when ``write`` goes elsewhere.
        self._final = final or write
        self._stop_listening: Callable[[], None] | None = None
        self._dbapi: Any = None
        self._current: RevisionRecord | None = None
        self._commit_pending = False
        self._in_transaction: Callable[[], bool | None] = lambda: None
        self._autocommit: Callable[[], bool] = lambda: False
        #: Matches alembic's own version-table statements (:func:`is_version_statement`).
        self._is_version = _version_statement(self.progress.version_table).match
        #: Records written since the last durable one (in the revision in flight) may be lost
        #: with the machine or the server: True once the first change they alone know of
        #: repeats visibly, None while there are none.
        self._deferred: bool | None = None
        #: Tables this run created, by a statement that committed by itself: (schema, name) as
        #: spelt -> every word the statements that named the table since hold (lower case). See
        #: :meth:`_known_absent`.
        self._created: dict[tuple[str | None, str], set[str]] = {}
        #: The table the statement in flight creates, and its words, until it completes.
        self._creating: tuple[tuple[str | None, str], set[str]] | None = None
        #: Which function of each revision runs: ``upgrade``, or ``downgrade`` (``rollback``).
        self.direction = "upgrade"

    # -- wiring ---------------------------------------------------------------------------------
    def attach(
        self,
        connection: Connection,
        session: Any = None,
        version_table: str = "alembic_version",
        version_table_schema: str | None = None,
    ) -> None:
        from ..connection_events import listen

        self.detach()
        self.counts = StatementCounts()
        self._created.clear()
        self._dbapi = connection.connection.dbapi_connection
        self._in_transaction = self.backend.transaction_probe(self._dbapi)
        self._autocommit = self.backend.autocommit_probe(self._dbapi)
        self.progress.session = session if isinstance(session, (int, str)) else None
        self.progress.version_table = version_table
        self.progress.version_table_schema = version_table_schema
        self._is_version = _version_statement(version_table).match
        self._stop_listening = listen(connection, self._before, self._after, self._on_commit, self._on_rollback,
                                      self._on_error)

    def detach(self) -> None:
        stop, self._stop_listening = self._stop_listening, None
        if stop is not None:
            stop()

    # -- driven by the pipeline ----------------------------------------------------------------------
    def new_attempt(self) -> None:
        """The retry loop starts another attempt: it has sent nothing yet."""
        self.counts = None

    def plan(self, planned: Sequence[str]) -> None:
        self.progress.planned_count = len(planned)
        self.progress.planned_last = planned[-1] if planned else None
        self.flush()

    def revision_started(self, revision: str) -> None:
        self.counts = StatementCounts(revision)
        self._settle_commit()
        # Earlier entries stay only while something of theirs is durable but their version stamp
        # is not (one transaction for the whole run, with autocommit statements inside).
        self.progress.revisions = [r for r in self.progress.revisions if any(s.applied for s in r.statements)]
        self._current = RevisionRecord(revision, direction=self.direction)
        self.progress.revisions.append(self._current)
        self._deferred = None

    def revision_applied(self, revision: str) -> None:
        for entry in self.progress.revisions:
            if entry.revision == revision:
                entry.stamped = True

    def resume(self, revision: str, statements: Sequence[Statement]) -> RevisionRecord:
        """Continue ``revision`` after the statements already applied (``repair --resume``)."""
        self._current = RevisionRecord(revision, [Statement(**asdict(s)) for s in statements])
        self.progress.revisions = [self._current]
        self.flush()
        return self._current

    def applied(self, revision: str) -> list[Statement]:
        """The statements of ``revision`` that are durable although its version stamp is not."""
        return [s for r in self.progress.revisions if r.revision == revision for s in r.statements if s.applied]

    def unsettled(self, revision: str) -> list[Statement]:
        """Statements of ``revision`` that may have committed by themselves: the connection was
        lost while they ran."""
        return [s for r in self.progress.revisions if r.revision == revision for s in r.statements
                if s.state == "running" and s.may_commit]

    def close(self, ok: bool) -> None:
        """The run ended (``ok``: without an exception, so a pending commit went through)."""
        if ok:
            self._settle_commit()
        for entry in self.progress.revisions:
            self._end_statements(entry)
            entry.statements = [s for s in entry.statements if s.state != "failed"]
        self.detach()
        self._dbapi = None
        try:
            if self._final is not None:
                self._final(self.progress.to_json(), True)
        except Exception:  # after a failure, the failure being raised matters more
            if ok:
                raise

    def flush(self, durable: bool = True) -> None:
        """Journal the current state now, unless that could block the migration (SQLite, inside
        the migrating connection's transaction): then the next write carries it."""
        if self._write is None or not self._safe_to_write():
            return
        self._write(self.progress.to_json(), durable)
        if durable:
            self._deferred = None

    # -- what the connection sends (connection_events) ---------------------------------------------
    def _before(self, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        self._creating = None
        counts = self.counts
        if counts is not None:
            counts.sent += 1
            if context.root_connection.get_execution_options().get("isolation_level") == "AUTOCOMMIT":
                counts.outside_transaction = True
        if self._commit_pending:
            self._settle_commit()
        entry = self._current
        if self._is_version(statement) is not None:
            return
        if entry is not None:
            self._see(entry, _literal(statement, parameters, context, executemany))
        elif self._created and classify(statement) != READ:
            self._created.clear()  # a change outside any revision: what it did is not known

    def _see(self, entry: RevisionRecord, text: str) -> None:
        """``text``, a statement of the revision in flight, is about to run: record it."""
        kind = classify(text)
        may = commits_by_itself(self.backend, kind, self._in_transaction(), self._autocommit())
        committed: list[Statement] = []
        if may and kind == DDL and self.backend.ddl_commits_open_transaction:
            committed = self._commit_done(entry)
        statement = record(len(entry.statements) + 1, text, kind, may, self._syntax)
        entry.statements.append(statement)
        fields = None
        if kind != READ and (self._created or (may and kind == DDL)):
            fields = _effect_fields(normalize(text), fold=False)
        if may and kind == DDL:
            statement.before = self._existed(text, fields)
        if self._created and kind != READ:
            self._follow_created(text, fields)
        if may:
            self.flush(durable=not self._may_defer(committed[0] if committed else statement))

    def _existed(self, text: str, fields: dict[str, Any] | None) -> bool | None:
        """Does the object the DDL statement ``text`` (its effect: ``fields``) creates or drops
        exist now, before it runs? None when the statement has no single such object or the
        backend cannot look it up. Looked up on the database, unless this run's own statements
        tell (:meth:`_known_absent`)."""
        if fields is None or self._dbapi is None:
            return None
        if fields["kind"] == "table" and fields["creates"] and not fields["conditional"]:
            words = self._creating_words(text)
            if words is not None:
                self._creating = ((fields["schema"], fields["name"]), words)
        if self._known_absent(fields):
            return False
        try:
            return self.backend.object_exists(self._dbapi, fields["kind"], fields["name"], fields["table"],
                                              fields["schema"])
        except Exception:  # noqa: BLE001 - not known then; the statement's own outcome is what matters
            return None

    def _after(self) -> None:
        if self.counts is not None:
            self.counts.completed += 1
        if self._creating is not None:
            key, words = self._creating
            self._created[key] = words
            self._creating = None
        entry = self._current
        if entry is None or not entry.statements or entry.statements[-1].state != "running":
            return
        last = entry.statements[-1]
        last.state = "done"
        if self._in_transaction() is False or last.may_commit:
            # Outside a transaction now: everything this revision ran so far is durable. The
            # journal must say so at once unless it already holds enough for a crash to be read
            # right: ``last`` recorded as running, with an effect the schema shows.
            committed = self._commit_done(entry)
            if committed and (committed != [last] or not last.may_commit or last.effect is None):
                self.flush()

    def _on_commit(self) -> None:
        # Fires before the COMMIT reaches the server: settled at the next statement or at close.
        self._commit_pending = True

    def _on_error(self, context: Any) -> None:
        """The server answered a statement with an error: it did not take effect. A lost
        connection is no answer: a statement that commits by itself stays ``running`` (unsettled)."""
        entry = self._current
        if context.is_disconnect or entry is None:
            return
        if entry.statements and entry.statements[-1].state == "running":
            entry.statements[-1].state = "failed"
            entry.failed = entry.statements[-1]
            if entry.failed.may_commit:
                # Its "running" record would be settled from the schema after a crash, where an
                # object that was there before (why it failed) would pass for its doing.
                try:
                    self.flush()
                except Exception:  # noqa: BLE001 - the statement's own error is the one to raise
                    pass

    def _on_rollback(self) -> None:
        self._created.clear()
        # A rollback after a commit is that of the next transaction: the commit went through.
        self._settle_commit()
        for entry in self.progress.revisions:
            entry.stamped = False
            self._end_statements(entry)
            # What was not committed is gone: keep the durable prefix (and what may be durable),
            # so numbering stays that of the revision's statements when it is retried or resumed.
            entry.statements = [s for s in entry.statements if s.committed or s.state == "running"]

    @staticmethod
    def _end_statements(entry: RevisionRecord) -> None:
        """After the run or its transaction ended: a statement still ``running`` returned with an
        error unless it may have committed by itself (its outcome unknown: a lost connection)."""
        for statement in entry.statements:
            if statement.state == "running" and not statement.may_commit:
                statement.state = "failed"
                entry.failed = statement

    # -- helpers ------------------------------------------------------------------------------------
    @staticmethod
    def _creating_words(text: str) -> set[str] | None:
        """The words of a ``CREATE TABLE`` whose columns are all in its text (None: some come from
        elsewhere, ``AS SELECT`` / ``LIKE``, or an expression, ``GENERATED ... AS``)."""
        words = set(_WORD.findall(text.lower()))
        return None if words & {"select", "like", "as"} else words

    def _follow_created(self, text: str, fields: dict[str, Any] | None) -> None:
        """Keep :attr:`_created` true of the statement ``text`` (a change; its effect ``fields``)
        about to run: a statement that names no single object may do anything (every table is
        forgotten); one on a table this run created adds its words to that table's; dropping such a
        table forgets it."""
        if fields is None:
            self._created.clear()
            return
        if fields["kind"] == "table":
            self._created.pop((fields["schema"], fields["name"]), None)
            return
        words = self._created.get((fields["schema"], fields["table"]))
        if words is not None:
            words.update(_WORD.findall(text.lower()))

    def _known_absent(self, fields: dict[str, Any]) -> bool:
        """Is the column a statement adds (``fields``) certainly absent, from this run's own
        statements, with no lookup? Yes when this run created its table (a ``CREATE TABLE`` that
        committed by itself and listed every column) and no statement since, on any table, could
        have added it: each was a read, alembic's version-table bookkeeping, or one with a single
        known effect on an object whose table's statements never spelt that name. A column has
        no name the server makes up (an index or a constraint may: MySQL's ``t_ibfk_1``,
        PostgreSQL's ``t_pkey``), so only columns. Statements sent around SQLAlchemy (a raw DBAPI
        cursor, another connection) are not seen here, as the rest of this record does not see
        them."""
        if fields["kind"] != "column" or not fields["creates"]:
            return False
        words = self._created.get((fields["schema"], fields["table"]))
        return words is not None and fields["name"].lower() not in words

    def _may_defer(self, first: Statement) -> bool:
        """May the record about to be written skip durability? ``first``: the earliest change it
        tells of that no durable record holds (a statement committed by the one about to run, or
        that one). Were the records since the last durable one lost with the machine or the
        server, the next run would start this revision again from its first change they alone
        know of: when that change repeats visibly, the run stops on it and applies nothing twice.
        A revision's records are judged on their own: the version stamp of the one before may be
        durable, so a run never goes back to it."""
        if self._deferred is None:
            self._deferred = repeats_visibly(first)
        return self._deferred

    def _settle_commit(self) -> None:
        if not self._commit_pending:
            return
        self._commit_pending = False
        # A revision committed with its version stamp needs no record; statements committed
        # without one (a migration that commits midway) do, before anything else runs.
        unrecorded = [s for entry in self.progress.revisions for s in self._commit_done(entry) if not entry.stamped]
        durable = [r for r in self.progress.revisions if r.stamped]
        if durable:
            self.progress.revisions = [r for r in self.progress.revisions if not r.stamped]
            if self._current in durable:
                self._current = None
        if unrecorded:
            self.flush()

    @staticmethod
    def _commit_done(entry: RevisionRecord) -> list[Statement]:
        """Mark the done statements committed; returns those with a durable change."""
        changed = []
        for statement in entry.statements:
            if statement.state == "done" and not statement.committed:
                statement.committed = True
                if statement.kind != READ:
                    changed.append(statement)
        return changed

    def _safe_to_write(self) -> bool:
        return (not self.backend.journal_shares_write_lock or self._dbapi is None
                or self._in_transaction() is not True)


#: A word of a statement (identifiers as SQL spells them unquoted; quoted ones hold these too).
_WORD = re.compile(r"[\w$]+")


def _literal(statement: str, parameters: Any, context: Any, executemany: bool) -> str:
    """The statement with its bound values rendered, when SQLAlchemy can (so it compares equal to
    alembic's ``--sql`` rendering); otherwise the statement as sent.

    Rendered from the statement the caller gave (``invoked_statement``: the compiled form may come
    from SQLAlchemy's cache, holding the values of the first statement of that shape), and only
    when that statement holds every value itself: a value given at execute time (SQLAlchemy's own
    reflection queries pass ``filter_names`` so) is not in it, and rendering it would print NULL
    and warn."""
    if not parameters:
        return statement
    compiled = getattr(context, "compiled", None)
    invoked = getattr(context, "invoked_statement", None)
    if compiled is None or invoked is None or executemany:
        return statement
    binds = getattr(compiled, "binds", None) or {}
    if any(getattr(bind, "required", True) for bind in binds.values()):
        return statement
    try:
        return str(invoked.compile(dialect=context.dialect, compile_kwargs={"literal_binds": True}))
    except Exception:  # noqa: BLE001 - a value of a type with no literal rendering
        return statement
