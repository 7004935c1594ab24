"""Statement progress of the revision in flight, journaled while it runs.

Why: MySQL/MariaDB commit every DDL statement on its own, and pysqlite runs DDL outside any
transaction unless a DML statement opened one, so a revision that fails, or whose process dies,
midway can leave some of its statements committed while the version table still names the
revision before it. Alembic cannot see that state and would run the revision again from its first
statement. The :class:`ProgressTracker` records which statements of the revision in flight ran and
which of them are durably committed, in the journal row's ``progress`` column, on the journal's
own connection (the idle lock session, AUTOCOMMIT), so that the next run can tell a partly applied
revision (exit 8, :mod:`.recovery`) from one that was rolled back whole.

How: the statements, commits, rollbacks and errors of the migrating connection (the one env.py
configured), seen through :mod:`~alembic_deploy.connection_events`. Durability is read from the
driver after each statement (:func:`transaction_probe`): once the session is outside a
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
  record is settled by looking at the schema (:mod:`.recovery`) or by the next write;
* never just because a revision started: the next statement that commits by itself names it,
  and without one the revision commits as a whole (with its version stamp), so after a crash the
  revision in flight is the first planned one the version table does not record, or, with one
  transaction for the whole run (PostgreSQL's default), one of the planned revisions it rolled
  back together (:func:`.recovery._crash_summary`);
* the plan once, and the final state when the run ends.

Where a write goes is the caller's choice (``write``, and ``final`` for the end state): the
journal row, or on SQLite during an upgrade the lock file (:class:`~alembic_deploy.backends.sqlite.ProgressLog`).
The journal table shares SQLite's write lock with the migration, so a write there is deferred
while the migrating connection holds a write transaction, never blocking the migration against
itself (every write a crash needs falls outside one).

The module also holds what the next run needs to reason about recorded statements without a
database: :func:`classify`, :func:`fingerprint` (whitespace- and paramstyle-insensitive, so an
online statement matches the same statement rendered by alembic's offline ``--sql`` mode) and
:func:`effect_of` (the schema object a DDL statement creates or drops).
"""

from __future__ import annotations

import functools
import hashlib
import json
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ..masking import ANY_DIALECT, MaskedSQL, SQLLiterals, mask_literals, scrub

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

READ: Final = "read"
DDL: Final = "ddl"
DML: Final = "dml"

#: Progress JSON layout version (bumped if the shape changes incompatibly).
FORMAT: Final = 1
#: Characters of a statement kept in the journal (the fingerprint covers the whole statement).
EXCERPT_CHARS: Final = 200

# First keyword -> kind. Anything unknown is DML: treated as a change, the conservative side.
_DDL_WORDS = {"create", "alter", "drop", "rename", "truncate", "comment", "grant", "revoke"}
# No durable effect: re-running them is harmless, losing them is harmless.
_READ_WORDS = {
    "select", "show", "describe", "desc", "explain", "values", "table", "set", "pragma", "analyze",
    "lock", "begin", "start", "commit", "rollback", "savepoint", "release", "use", "reset",
}
# Patterns seldom needed are kept as text: ``re`` compiles (and caches) one on its first use, and
# compiling costs as much as hundreds of matches.
_LEADING_NOISE = r"^(?:\s+|--[^\n]*\n?|/\*.*?\*/|\()+"
_WRITE_IN_QUERY = r"\b(insert|update|delete|merge|into)\b"


def classify(sql: str) -> str:
    """``read``, ``ddl`` or ``dml`` (any statement that may change data, unknown ones included)."""
    text = sql.lstrip()
    if text.startswith(("--", "/*", "(")):
        text = re.sub(_LEADING_NOISE, "", text, flags=re.S)
    word = text.split(None, 1)[0].lower() if text else ""
    if word in _DDL_WORDS:
        return DDL
    if word in ("select", "with", "values", "table"):
        # SELECT ... INTO creates a table (PostgreSQL); a CTE may wrap INSERT/UPDATE/DELETE.
        return DML if re.search(_WRITE_IN_QUERY, text, re.I) else READ
    if word in _READ_WORDS:
        return READ
    return DML


def normalize(sql: str) -> str:
    """One line, no trailing ``;``, ``%%`` as ``%``: the online statement (pyformat drivers double
    ``%``) and alembic's ``--sql`` rendering of it become equal."""
    return " ".join(sql.replace("%%", "%").split()).rstrip(";").rstrip()


def fingerprint(sql: str, syntax: SQLLiterals = ANY_DIALECT) -> str:
    """Whether two statements are the same, without keeping their literals: a hash of the statement
    with its literals masked (12 hex digits) and a short one of the literals (4 hex digits: 16 bits,
    too few to tell a password from a dictionary, enough to see an edited default or value).
    Whitespace, comments, a trailing ``;``, ``%%`` and identifier quotes do not count: the online
    dialect knows the server (MariaDB quotes its own reserved words) while alembic's offline
    rendering uses the generic dialect of the URL, and pyformat drivers double ``%``."""
    return _fingerprint(mask_literals(sql.replace("%%", "%"), syntax))


def _fingerprint(masked: MaskedSQL, normalized: str | None = None) -> str:
    """``normalized``: :func:`normalize`'s output for a statement that holds no literal or comment."""
    skeleton = (normalized if normalized is not None else normalize(masked.skeleton)).replace("`", "").replace('"', "")
    if not masked.literals:
        return hashlib.sha256(skeleton.encode()).hexdigest()[:12] + _NO_LITERALS
    literals = "\0".join([" ".join(literal.split()) for literal in masked.literals])
    return hashlib.sha256(skeleton.encode()).hexdigest()[:12] + hashlib.sha256(literals.encode()).hexdigest()[:4]


_NO_LITERALS: Final = hashlib.sha256(b"").hexdigest()[:4]


def legacy_fingerprint(sql: str) -> str:
    """The fingerprint records written before literals were kept out of them carry (the whole
    statement hashed); still matched, so a partial state such a run left can be resumed."""
    canonical = normalize(sql).replace("`", "").replace('"', "")
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def excerpt(sql: str, syntax: SQLLiterals = ANY_DIALECT) -> str:
    """What the journal and messages show of a statement: every literal masked (see
    :func:`~alembic_deploy.masking.mask_literals`), comments dropped, known secrets scrubbed, short."""
    return _excerpt(mask_literals(sql.replace("%%", "%"), syntax))


def _excerpt(masked: MaskedSQL, normalized: str | None = None) -> str:
    text = scrub(normalized if normalized is not None else normalize(masked.text))
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 3] + "..."


def remask_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Journal rows with the statement text of their ``progress`` masked again, for output: rows an
    earlier release wrote kept literals (a masked text stays as it is)."""
    for row in rows:
        raw = row.get("progress")
        if not raw:
            continue
        try:
            progress = json.loads(raw)
            syntax = literal_syntax(progress.get("backend"))
            for entry in progress.get("revisions", []):
                for statement in [*entry.get("statements", []), entry.get("failed") or {}]:
                    if isinstance(statement.get("sql"), str):
                        statement["sql"] = excerpt(statement["sql"], syntax)
        except (ValueError, TypeError, AttributeError):
            row["progress"] = None  # not a record this tool can read: shown as none rather than raw
            continue
        row["progress"] = json.dumps(progress, separators=(",", ":"))
    return rows


@functools.cache
def literal_syntax(backend: str | None) -> SQLLiterals:
    """How ``backend`` writes literals (:class:`~alembic_deploy.backends.Backend`); the reading
    that masks the most when it is not known."""
    from ..backends import for_dialect
    from ..errors import ConfigError

    if backend is None:
        return ANY_DIALECT
    try:
        return for_dialect(backend).literals
    except ConfigError:
        return ANY_DIALECT


def _object_lookup(backend: str) -> Callable[[Any, str, str, str | None, str | None], bool | None]:
    """``backend``'s :meth:`~alembic_deploy.backends.Backend.object_exists` (one that never
    knows for a backend not registered)."""
    from ..backends import for_dialect
    from ..backends.base import Backend
    from ..errors import ConfigError

    try:
        return for_dialect(backend).object_exists
    except ConfigError:
        return Backend().object_exists


def shorten(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def is_version_statement(sql: str, version_table: str) -> bool:
    """Alembic's own bookkeeping (the version table), not a statement of the revision."""
    return _version_statement(version_table).match(sql) is not None


@functools.lru_cache(maxsize=8)
def _version_statement(version_table: str) -> re.Pattern[str]:
    return re.compile(
        rf"\s*(insert\s+into|update|delete\s+from|create\s+table)\s+(\S+\.)?[`\"]?{re.escape(version_table)}[`\"]?(\s|\(|$)",
        re.I,
    )


def is_noise(sql: str) -> bool:
    """Lines of alembic's ``--sql`` output that are not statements (comments, BEGIN/COMMIT)."""
    text = normalize(sql)
    return not text or text.startswith("--") or text.upper() in ("BEGIN", "COMMIT", "BEGIN TRANSACTION")


# -- what a DDL statement does to the schema --------------------------------------------------------
@dataclass(frozen=True)
class Effect:
    """A schema object a statement creates (``creates``) or drops. ``kind`` is ``table``,
    ``column``, ``index`` or ``constraint`` (an index and a named constraint are matched by name:
    MySQL drops a unique constraint with DROP INDEX)."""

    kind: str
    table: str | None
    name: str
    creates: bool
    schema: str | None = None
    #: ``IF [NOT] EXISTS``: the statement does nothing when the schema already is as it leaves it,
    #: so its having run does not show that it made the change.
    conditional: bool = False

    def undone_by(self, other: Effect) -> bool:
        """``other`` reverses this effect (the downgrade statement that undoes this one)."""
        same_kind = self.kind == other.kind or {self.kind, other.kind} == {"index", "constraint"}
        tables_agree = self.table is None or other.table is None or self.table == other.table
        return same_kind and tables_agree and self.name == other.name and self.creates != other.creates


_ID = r"(?:[`\"]?[\w$]+[`\"]?\s*\.\s*)?[`\"]?[\w$]+[`\"]?"
_NOT_COLUMNS = {"constraint", "index", "key", "unique", "primary", "foreign", "check", "fulltext", "spatial",
                "partition", "period", "system"}


# (pattern, kind, creates), each pattern starting with the statement's first word.
_EFFECT_FORMS: Final = (
    (rf"^create\s+table\s+(?P<cond>if\s+not\s+exists\s+)?(?P<table>{_ID})\s*(\(|$)", "table", True),
    (rf"^drop\s+table\s+(?P<cond>if\s+exists\s+)?(?P<table>{_ID})\s*(cascade|restrict)?$", "table", False),
    (rf"^create\s+(?:unique\s+)?index\s+(?:concurrently\s+)?(?P<cond>if\s+not\s+exists\s+)?(?P<name>{_ID})"
     rf"\s+on\s+(?:only\s+)?(?P<table>{_ID})", "index", True),
    (rf"^drop\s+index\s+(?:concurrently\s+)?(?P<cond>if\s+exists\s+)?(?P<name>{_ID})(?:\s+on\s+(?P<table>{_ID}))?"
     r"\s*(cascade|restrict)?$", "index", False),
    (rf"^alter\s+table\s+(?:only\s+)?(?P<table>{_ID})\s+add\s+constraint\s+(?P<cond>if\s+not\s+exists\s+)?"
     rf"(?P<name>{_ID})\s", "constraint", True),
    (rf"^alter\s+table\s+(?:only\s+)?(?P<table>{_ID})\s+drop\s+(?:constraint|foreign\s+key|index|key|check)"
     rf"\s+(?P<cond>if\s+exists\s+)?(?P<name>{_ID})\s*(cascade|restrict)?$", "constraint", False),
    (rf"^alter\s+table\s+(?:only\s+)?(?P<table>{_ID})\s+add\s+(?:column\s+)?(?P<cond>if\s+not\s+exists\s+)?"
     rf"(?P<name>{_ID})\s", "column", True),
    (rf"^alter\s+table\s+(?:only\s+)?(?P<table>{_ID})\s+drop\s+(?:column\s+)?(?P<cond>if\s+exists\s+)?"
     rf"(?P<name>{_ID})\s*(cascade|restrict)?$", "column", False),
)


def _leading_word(pattern: str) -> str:
    """``create`` for ``^create\\s+table...``: the literal word an effect pattern starts with."""
    return pattern[1:pattern.index("\\")]


_EFFECT_WORDS: Final = frozenset(_leading_word(p) for p, _, _ in _EFFECT_FORMS)


@functools.cache
def _effect_patterns(word: str) -> tuple[tuple[re.Pattern[str], str, bool], ...]:
    """The forms of statements that start with ``word``, in order, compiled on first use: a run
    seldom meets all three words (a PostgreSQL run none), and compiling all eight costs as much as
    matching ~1,400 statements against them."""
    return tuple((re.compile(p, re.I), kind, creates) for p, kind, creates in _EFFECT_FORMS
                 if _leading_word(p) == word)


_MORE_CLAUSES: Final = r",\s*(add|drop|modify|change|alter|rename)\b"


def _split_id(raw: str | None, fold: bool = True) -> tuple[str | None, str | None]:
    """(schema, name) of a possibly qualified identifier, quotes removed; ``fold``: the name in
    lower case (how names are compared), else as the statement spells it (how it is looked up)."""
    if raw is None:
        return None, None
    parts = [p.strip().strip('`"') for p in raw.split(".")]
    name = parts[-1].lower() if fold else parts[-1]
    return (parts[0] if len(parts) == 2 else None), name


def effect_of(sql: str, normalized: bool = False) -> Effect | None:
    """The single schema object ``sql`` creates or drops, or None when that is not certain
    (several clauses, an unusual form, or not DDL at all). ``normalized``: ``sql`` is already
    :func:`normalize`'s output (so are the other helpers' same-named flags)."""
    fields = _effect_fields(sql if normalized else normalize(sql))
    return Effect(**fields) if fields else None


def _effect_fields(text: str, fold: bool = True) -> dict[str, Any] | None:
    """:func:`effect_of`'s :class:`Effect` as the dict a :class:`Statement` keeps (``fold``: see
    :func:`_split_id`)."""
    first = text.split(" ", 1)[0].lower()
    if first not in _EFFECT_WORDS or (first == "alter" and re.search(_MORE_CLAUSES, text, re.I)):
        return None
    for pattern, kind, creates in _effect_patterns(first):
        match = pattern.match(text)
        if match is None:
            continue
        schema, table = _split_id(match["table"], fold)
        name = _split_id(match["name"], fold)[1] if kind != "table" else None
        if kind == "column" and name is not None and name.lower() in _NOT_COLUMNS:
            continue
        if kind == "table":
            name, table = table, None
        assert name is not None
        conditional = match["cond"] is not None
        return {"kind": kind, "table": table, "name": name, "creates": creates, "schema": schema,
                "conditional": conditional}
    return None


# -- the recorded state ---------------------------------------------------------------------------
@dataclass
class Statement:
    """One statement of a revision's upgrade(), numbered from 1 in execution order.

    ``state``: ``running`` (started, outcome not seen: the process stopped inside it), ``done``,
    ``failed`` (raised; not applied), ``undoing``/``undone`` (``repair --rollback-partial``
    reverting it). ``committed``: its effect is durable. ``may_commit``: it commits by itself, so
    a ``running`` one may have taken effect.
    """

    n: int
    sql: str
    fp: str
    kind: str
    state: str = "running"
    committed: bool = False
    may_commit: bool = False
    #: :class:`Effect` as a dict, read from the whole statement (``sql`` is only an excerpt).
    effect: dict[str, Any] | None = None
    #: Whether the object of its effect existed just before it ran, looked up then for a
    #: statement that commits by itself (None: not looked up). A statement the process died in
    #: is settled from the schema afterwards, and only this tells whether what the schema shows
    #: was there before it (:func:`~alembic_deploy.steps.repair.unprovable`).
    before: bool | None = None

    @property
    def schema_effect(self) -> Effect | None:
        return Effect(**self.effect) if self.effect else None

    @property
    def applied(self) -> bool:
        """A durable change made by this statement (reads never count)."""
        return self.kind != READ and self.state == "done" and self.committed

    def to_json(self) -> str:
        """Its fields as a JSON object (what :func:`dataclasses.asdict` holds)."""
        return (
            f'{{"n":{self.n},"sql":{_quote(self.sql)},"fp":{_quote(self.fp)},"kind":{_quote(self.kind)},'
            f'"state":{_quote(self.state)},"committed":{"true" if self.committed else "false"},'
            f'"may_commit":{"true" if self.may_commit else "false"},"effect":{_effect_json(self.effect)},'
            f'"before":{_BOOLEAN[self.before]}}}'
        )


class _WorkedOut:
    """An attribute of :class:`_SeenStatement` computed from the statement's text on first read
    (a non-data descriptor: once stored on the instance, the stored value is read)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, obj: Any, objtype: type | None = None) -> Any:
        if obj is None:
            return self
        raw = obj.__dict__.pop("_text")
        text = normalize(raw)
        obj.effect = _effect_fields(text)
        masked = mask_literals(raw.replace("%%", "%"), obj.__dict__.pop("_syntax"))
        if masked.literals or masked.text is not masked.skeleton:
            text = None  # literals or comments: worked out from the masked text, not the statement's
        obj.sql, obj.fp = _excerpt(masked, text), _fingerprint(masked, text)
        return obj.__dict__[self.name]


class _SeenStatement(Statement):
    """A :class:`Statement` seen online, from its full text. Its excerpt, fingerprint and effect
    are worked out when first read (when it is journaled or reported): most statements of a
    migration never are, since a transaction that commits makes them moot."""

    sql = _WorkedOut()
    fp = _WorkedOut()
    effect = _WorkedOut()

    @classmethod
    def of(cls, n: int, text: str, kind: str, may_commit: bool, syntax: SQLLiterals) -> _SeenStatement:
        """A ``running`` statement of full text ``text`` (the dataclass ``__init__`` stays, for
        :func:`dataclasses.replace`)."""
        statement = cls.__new__(cls)
        statement.n, statement.kind, statement.state = n, kind, "running"
        statement.committed, statement.may_commit, statement.before = False, may_commit, None
        statement._text, statement._syntax = text, syntax
        return statement

    def __getstate__(self) -> dict[str, Any]:
        return _fields(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Statement) and _fields(self) == _fields(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, like Statement


def _fields(statement: Statement) -> dict[str, Any]:
    return {name: getattr(statement, name) for name in Statement.__dataclass_fields__}


# -- the progress as JSON --------------------------------------------------------------------------
# Written before every statement that commits by itself, so assembled from f-strings: the generic
# encoder costs ~1 us a call and ~0.1 us a value, several times the whole record this way. The
# layout is exactly dataclasses.asdict's (tests/test_partial.py compares them); values of an
# unexpected shape go through the generic encoder.
_dumps: Final = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode
#: A str as a JSON string, as ``json.dumps`` writes it (ASCII only).
_quote: Final = json.encoder.encode_basestring_ascii
_EFFECT_KEYS: Final = frozenset(("kind", "table", "name", "creates", "schema", "conditional"))


_BOOLEAN: Final = {None: "null", True: "true", False: "false"}


def _text(value: str | None) -> str:
    return "null" if value is None else _quote(value)


def _scalar(value: Any) -> str:
    if value is None or isinstance(value, str):
        return _text(value)
    return str(value) if type(value) is int else _dumps(value)


def _effect_json(effect: dict[str, Any] | None) -> str:
    if effect is None:
        return "null"
    if effect.keys() != _EFFECT_KEYS:
        return _dumps(effect)
    return (f'{{"kind":{_quote(effect["kind"])},"table":{_text(effect["table"])},"name":{_quote(effect["name"])},'
            f'"creates":{"true" if effect["creates"] else "false"},"schema":{_text(effect["schema"])},'
            f'"conditional":{"true" if effect["conditional"] else "false"}}}')


def record(n: int, sql: str, kind: str | None = None, may_commit: bool = False,
           syntax: SQLLiterals = ANY_DIALECT) -> Statement:
    """A :class:`Statement` for the full text ``sql`` (state ``running``); what it keeps of the
    text, its excerpt and fingerprint, holds no literal (``syntax``: how they are written)."""
    return _SeenStatement.of(n, sql, kind or classify(sql), may_commit, syntax)


@dataclass
class RevisionProgress:
    revision: str
    statements: list[Statement] = field(default_factory=list)
    #: Alembic updated the version table for it (durable once that transaction commits).
    stamped: bool = False
    #: The statement that raised, if one did.
    failed: Statement | None = None

    def to_json(self) -> str:
        statements = ",".join([s.to_json() for s in self.statements])
        failed = "null" if self.failed is None else self.failed.to_json()
        stamped = "true" if self.stamped else "false"
        return f'{{"revision":{_quote(self.revision)},"statements":[{statements}],"stamped":{stamped},"failed":{failed}}}'


@dataclass
class Progress:
    """The ``progress`` column's JSON."""

    backend: str
    version_table: str = "alembic_version"
    version_table_schema: str | None = None
    #: Server id of the migrating session (to wait for it after a crash), when the backend has one.
    session: Any = None
    #: How many revisions the run planned, and the last of them (not the whole list: the JSON is
    #: rewritten several times per revision, so its size must not grow with the run).
    planned_count: int = 0
    planned_last: str | None = None
    #: Revisions whose durability is not settled yet; normally only the one in flight.
    revisions: list[RevisionProgress] = field(default_factory=list)
    #: For ``repair`` rows: {"action": ..., "revision": ...}.
    repair: dict[str, Any] | None = None
    format: int = FORMAT

    def to_json(self) -> str:
        """The column's JSON: :func:`dataclasses.asdict`'s dict, without building it."""
        revisions = ",".join([r.to_json() for r in self.revisions])
        return (
            f'{{"backend":{_quote(self.backend)},"version_table":{_quote(self.version_table)},'
            f'"version_table_schema":{_text(self.version_table_schema)},'
            f'"session":{_scalar(self.session)},'
            f'"planned_count":{int(self.planned_count)},"planned_last":{_text(self.planned_last)},'
            f'"revisions":[{revisions}],"repair":{"null" if self.repair is None else _dumps(self.repair)},'
            f'"format":{int(self.format)}}}'
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Progress:
        def statement(raw: dict[str, Any]) -> Statement:
            return Statement(**{k: raw[k] for k in Statement.__dataclass_fields__ if k in raw})

        revisions = [
            RevisionProgress(
                revision=r["revision"],
                statements=[statement(s) for s in r.get("statements", [])],
                stamped=bool(r.get("stamped")),
                failed=statement(r["failed"]) if r.get("failed") else None,
            )
            for r in data.get("revisions", [])
        ]
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data and k != "revisions"}
        return cls(**known, revisions=revisions)


# -- reading the driver -----------------------------------------------------------------------------
def _driver(dbapi_connection: Any) -> Any:
    return getattr(dbapi_connection, "driver_connection", None) or dbapi_connection


_TRANSACTION_PROBES: tuple[Callable[[Any], Any], ...] = (
    operator.attrgetter("in_transaction"),  # sqlite3, aiosqlite
    operator.methodcaller("is_in_transaction"),  # asyncpg
    lambda c: int(c.pgconn.transaction_status) != 0,  # psycopg 3 (0 = IDLE)
    lambda c: c.get_transaction_status() != 0,  # psycopg2
    lambda c: c.server_status & 1,  # pymysql, aiomysql: SERVER_STATUS_IN_TRANS
)


def transaction_probe(dbapi_connection: Any) -> Callable[[], bool | None]:
    """A function telling whether this connection's session is inside a transaction, as its
    driver knows it (no round trip; None if the driver cannot tell). The driver's probe is found
    once: it is asked around every statement of the migration."""
    raw = _driver(dbapi_connection)
    for probe in _TRANSACTION_PROBES:
        try:
            value = probe(raw)
        except Exception:  # noqa: BLE001 - not this driver (or a closed connection)
            continue
        if isinstance(value, (bool, int)):
            return functools.partial(_probe_or_none, probe, raw)
    return lambda: None


def _probe_or_none(probe: Callable[[Any], Any], raw: Any) -> bool | None:
    try:
        return bool(probe(raw))
    except Exception:  # noqa: BLE001 - a closed connection
        return None


_GET_AUTOCOMMIT: Final = operator.methodcaller("get_autocommit")


def autocommit_probe(dbapi_connection: Any) -> Callable[[], bool]:
    """A function telling whether this connection's session is in autocommit mode now (alembic's
    ``autocommit_block``, an AUTOCOMMIT engine). Where the driver keeps that is found once: it is
    asked before every statement of the migration, and the search costs several attribute misses,
    each an exception. The mode itself is read at each call (``autocommit_block()`` changes it
    mid-run)."""
    driver = _driver(dbapi_connection)
    for obj in (dbapi_connection, driver):
        value = getattr(obj, "autocommit", None)
        if isinstance(value, bool):  # psycopg 2 and 3, SQLAlchemy's asyncpg adapter
            return lambda: bool(obj.autocommit)
        if callable(getattr(obj, "get_autocommit", None)):  # PyMySQL, mysqlclient
            # A closed connection raises: not in autocommit mode.
            return lambda: _probe_or_none(_GET_AUTOCOMMIT, obj) is True
    return lambda: getattr(driver, "isolation_level", "") is None  # sqlite3


def commits_by_itself(backend: str, kind: str, inside_transaction: bool | None, auto: bool) -> bool:
    """Would this statement be durable as soon as it completes, whatever happens next?

    MySQL/MariaDB commit before and after every DDL statement. pysqlite opens a transaction only
    before DML, so DDL outside one commits on its own (alembic treats SQLite DDL as
    non-transactional for this reason). PostgreSQL runs DDL in the transaction. In autocommit mode
    every statement commits. Unknown backends: assume it does (the safe side: "may be applied").
    """
    if kind == READ:
        return False
    if auto:
        return True
    if backend in ("mysql", "mariadb"):
        return kind == DDL
    if backend == "sqlite":
        return kind == DDL and inside_transaction is False
    if backend == "postgresql":
        return False
    return True


# -- the tracker ------------------------------------------------------------------------------------
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

    def __init__(self, backend: str, write: Writer | None = None, final: Writer | None = None) -> None:
        self.backend = backend
        self.progress = Progress(backend=backend)
        self._syntax = literal_syntax(backend)
        self._lookup = _object_lookup(backend)
        self._write = write
        #: Where :meth:`close` writes the final state (the journal), when ``write`` goes elsewhere.
        self._final = final or write
        self._stop_listening: Callable[[], None] | None = None
        self._dbapi: Any = None
        self._current: RevisionProgress | None = None
        self._commit_pending = False
        self._in_transaction: Callable[[], bool | None] = lambda: None
        self._autocommit: Callable[[], bool] = lambda: False
        #: Matches alembic's own version-table statements (:func:`is_version_statement`).
        self._is_version = _version_statement(self.progress.version_table).match
        #: Records written since the last durable one (in the revision in flight) may be lost
        #: with the machine or the server: True once the first change they alone know of
        #: repeats visibly, None while there are none.
        self._deferred: bool | None = None

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
        self._dbapi = connection.connection.dbapi_connection
        self._in_transaction = transaction_probe(self._dbapi)
        self._autocommit = autocommit_probe(self._dbapi)
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
    def plan(self, planned: Sequence[str]) -> None:
        self.progress.planned_count = len(planned)
        self.progress.planned_last = planned[-1] if planned else None
        self.flush()

    def revision_started(self, revision: str) -> None:
        self._settle_commit()
        # Earlier entries stay only while something of theirs is durable but their version stamp
        # is not (one transaction for the whole run, with autocommit statements inside).
        self.progress.revisions = [r for r in self.progress.revisions if any(s.applied for s in r.statements)]
        self._current = RevisionProgress(revision)
        self.progress.revisions.append(self._current)
        self._deferred = None

    def revision_applied(self, revision: str) -> None:
        for entry in self.progress.revisions:
            if entry.revision == revision:
                entry.stamped = True

    def resume(self, revision: str, statements: Sequence[Statement]) -> RevisionProgress:
        """Continue ``revision`` after the statements already applied (``repair --resume``)."""
        self._current = RevisionProgress(revision, [Statement(**asdict(s)) for s in statements])
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
        except Exception:  # noqa: BLE001 - after a failure, the failure being raised matters more
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
        if self._commit_pending:
            self._settle_commit()
        entry = self._current
        if entry is not None and self._is_version(statement) is None:
            self._see(entry, _literal(statement, parameters, context, executemany))

    def _see(self, entry: RevisionProgress, text: str) -> None:
        """``text``, a statement of the revision in flight, is about to run: record it."""
        kind = classify(text)
        may = commits_by_itself(self.backend, kind, self._in_transaction(), self._autocommit())
        committed: list[Statement] = []
        if may and kind == DDL and self.backend in ("mysql", "mariadb"):
            # MySQL commits the open transaction before it runs a DDL statement.
            committed = self._commit_done(entry)
        statement = record(len(entry.statements) + 1, text, kind, may, self._syntax)
        entry.statements.append(statement)
        if may:
            if kind == DDL:
                statement.before = self._existed(text)
            self.flush(durable=not self._may_defer(committed[0] if committed else statement))

    def _existed(self, text: str) -> bool | None:
        """Does the object the DDL statement ``text`` creates or drops exist now, before it runs?
        None when the statement has no single such object or the backend cannot look it up."""
        fields = _effect_fields(normalize(text), fold=False)
        if fields is None or self._dbapi is None:
            return None
        try:
            return self._lookup(self._dbapi, fields["kind"], fields["name"], fields["table"], fields["schema"])
        except Exception:  # noqa: BLE001 - not known then; the statement's own outcome is what matters
            return None

    def _after(self) -> None:
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
        # A rollback after a commit is that of the next transaction: the commit went through.
        self._settle_commit()
        for entry in self.progress.revisions:
            entry.stamped = False
            self._end_statements(entry)
            # What was not committed is gone: keep the durable prefix (and what may be durable),
            # so numbering stays that of the revision's statements when it is retried or resumed.
            entry.statements = [s for s in entry.statements if s.committed or s.state == "running"]

    @staticmethod
    def _end_statements(entry: RevisionProgress) -> None:
        """After the run or its transaction ended: a statement still ``running`` returned with an
        error unless it may have committed by itself (its outcome unknown: a lost connection)."""
        for statement in entry.statements:
            if statement.state == "running" and not statement.may_commit:
                statement.state = "failed"
                entry.failed = statement

    # -- helpers ------------------------------------------------------------------------------------
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
    def _commit_done(entry: RevisionProgress) -> list[Statement]:
        """Mark the done statements committed; returns those with a durable change."""
        changed = []
        for statement in entry.statements:
            if statement.state == "done" and not statement.committed:
                statement.committed = True
                if statement.kind != READ:
                    changed.append(statement)
        return changed

    def _safe_to_write(self) -> bool:
        # SQLite: the journal needs the database write lock the migrating connection may hold.
        return self.backend != "sqlite" or self._dbapi is None or self._in_transaction() is not True


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
