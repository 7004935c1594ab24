"""What the text of a SQL statement tells, without a database: its kind (:func:`classify`), a
fingerprint that matches the same statement rendered online and by alembic's offline ``--sql``
mode (:func:`fingerprint`: whitespace-, quoting- and paramstyle-insensitive, literals kept out),
the excerpt the journal keeps of it (:func:`excerpt`: literals masked) and the schema object it
creates or drops (:func:`effect_of`).

The progress record (:mod:`.record`) stores these; the tracker (:mod:`.tracker`) asks them of
every statement the migration sends, so the common paths are cheap (patterns compiled on first
use, the normalised text reused).
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from typing import Any, Final

from ..masking import ANY_DIALECT, MaskedSQL, SQLLiterals, mask_literals, scrub

READ: Final = "read"
DDL: Final = "ddl"
DML: Final = "dml"

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
    ((rf"^create\s+(?:unique\s+)?index\s+(?:concurrently\s+)?(?P<cond>if\s+not\s+exists\s+)?(?P<name>{_ID})"
     rf"\s+on\s+(?:only\s+)?(?P<table>{_ID})"), "index", True),
    ((rf"^drop\s+index\s+(?:concurrently\s+)?(?P<cond>if\s+exists\s+)?(?P<name>{_ID})(?:\s+on\s+(?P<table>{_ID}))?"
     r"\s*(cascade|restrict)?$"), "index", False),
    ((rf"^alter\s+table\s+(?:only\s+)?(?P<table>{_ID})\s+add\s+constraint\s+(?P<cond>if\s+not\s+exists\s+)?"
     rf"(?P<name>{_ID})\s"), "constraint", True),
    ((rf"^alter\s+table\s+(?:only\s+)?(?P<table>{_ID})\s+drop\s+(?:constraint|foreign\s+key|index|key|check)"
     rf"\s+(?P<cond>if\s+exists\s+)?(?P<name>{_ID})\s*(cascade|restrict)?$"), "constraint", False),
    ((rf"^alter\s+table\s+(?:only\s+)?(?P<table>{_ID})\s+add\s+(?:column\s+)?(?P<cond>if\s+not\s+exists\s+)?"
     rf"(?P<name>{_ID})\s"), "column", True),
    ((rf"^alter\s+table\s+(?:only\s+)?(?P<table>{_ID})\s+drop\s+(?:column\s+)?(?P<cond>if\s+exists\s+)?"
     rf"(?P<name>{_ID})\s*(cascade|restrict)?$"), "column", False),
)


def _leading_word(pattern: str) -> str:
    """``create`` for ``^create\\s+table...``: the literal word an effect pattern starts with."""
    return pattern[1:pattern.index("\\")]


_EFFECT_WORDS: Final = frozenset(_leading_word(p) for p, _, _ in _EFFECT_FORMS)


@functools.cache
def _effect_patterns(word: str) -> tuple[tuple[re.Pattern[str], str, bool], ...]:
    """The forms of statements that start with ``word``, in order, compiled on first use: a run
    seldom meets all three words (a PostgreSQL run none), and compiling a pattern costs as much as
    matching many statements against it."""
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
