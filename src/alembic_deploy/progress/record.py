"""The progress record: which statements of the revision in flight ran, which are durably
committed, and what the next run needs to judge them, as the journal row's ``progress`` column
keeps it (JSON: ``json.dumps(dataclasses.asdict(progress))``, read back by
:meth:`Progress.from_dict`).

A :class:`Statement` keeps an excerpt of its text with every literal masked and a fingerprint,
never the text itself: statements may carry passwords.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field, fields
from typing import Any, Final

from ..masking import ANY_DIALECT, SQLLiterals, mask_literals
from .sql_text import (
    READ,
    Effect,
    _effect_fields,
    _excerpt,
    _fingerprint,
    classify,
    excerpt,
    literal_syntax,
    normalize,
)

#: Progress JSON layout version (bumped if the shape changes incompatibly).
FORMAT: Final = 1


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

    def to_dict(self) -> dict[str, Any]:
        """What :func:`dataclasses.asdict` returns, without its deep copy (the record is written
        before every statement that commits by itself)."""
        return {name: getattr(self, name) for name in _STATEMENT_FIELDS}

    def __eq__(self, other: object) -> bool:
        """Equal fields make equal statements, whether seen online (:class:`SeenStatement`) or read
        back from the journal."""
        if not isinstance(other, Statement):
            return NotImplemented
        return self.to_dict() == other.to_dict()


_STATEMENT_FIELDS: Final = tuple(f.name for f in fields(Statement))


class SeenStatement(Statement):
    """A :class:`Statement` seen online, from its full text. Its excerpt, fingerprint and effect
    are worked out when first read (when it is journaled or reported): most statements of a
    migration never are, since a transaction that commits makes them moot."""

    @classmethod
    def of(cls, n: int, text: str, kind: str, may_commit: bool, syntax: SQLLiterals) -> SeenStatement:
        """A ``running`` statement of full text ``text`` (the dataclass ``__init__`` stays, for
        :func:`dataclasses.replace`)."""
        statement = cls.__new__(cls)
        statement.n, statement.kind, statement.state = n, kind, "running"
        statement.committed, statement.may_commit, statement.before = False, may_commit, None
        statement._text, statement._syntax = text, syntax
        return statement

    _text: str
    _syntax: SQLLiterals

    @functools.cached_property
    def _worked_out(self) -> tuple[str, str, dict[str, Any] | None]:
        """(excerpt, fingerprint, effect) of the full text, which is then forgotten."""
        raw = self.__dict__.pop("_text")
        text = normalize(raw)
        masked = mask_literals(raw.replace("%%", "%"), self.__dict__.pop("_syntax"))
        # With literals or comments, excerpt and fingerprint come from the masked text.
        plain = None if masked.literals or masked.text is not masked.skeleton else text
        return _excerpt(masked, plain), _fingerprint(masked, plain), _effect_fields(text)

    # The fields below are worked out on first read. A cached_property stores its value in the
    # instance as the field would (and __init__ may set it), but mypy takes it for read-only.
    @functools.cached_property
    def sql(self) -> str:  # type: ignore[override]
        return self._worked_out[0]

    @functools.cached_property
    def fp(self) -> str:  # type: ignore[override]
        return self._worked_out[1]

    @functools.cached_property
    def effect(self) -> dict[str, Any] | None:  # type: ignore[override]
        return self._worked_out[2]


def record(n: int, sql: str, kind: str | None = None, may_commit: bool = False,
           syntax: SQLLiterals = ANY_DIALECT) -> Statement:
    """A :class:`Statement` for the full text ``sql`` (state ``running``); what it keeps of the
    text, its excerpt and fingerprint, holds no literal (``syntax``: how they are written)."""
    return SeenStatement.of(n, sql, kind or classify(sql), may_commit, syntax)


@dataclass
class RevisionRecord:
    """The recorded statements of one revision whose durability is not settled yet."""

    revision: str
    statements: list[Statement] = field(default_factory=list)
    #: Alembic updated the version table for it (durable once that transaction commits).
    stamped: bool = False
    #: The statement that raised, if one did.
    failed: Statement | None = None
    #: ``upgrade``, or ``downgrade`` (``rollback``: the statements are its downgrade()'s, and it
    #: is settled once the version table no longer records it).
    direction: str = "upgrade"

    def to_dict(self) -> dict[str, Any]:
        """What :func:`dataclasses.asdict` returns (see :meth:`Statement.to_dict`). A record an
        earlier release wrote has no direction: it is read as an upgrade."""
        return {"revision": self.revision, "statements": [s.to_dict() for s in self.statements],
                "stamped": self.stamped, "failed": None if self.failed is None else self.failed.to_dict(),
                "direction": self.direction}


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
    revisions: list[RevisionRecord] = field(default_factory=list)
    #: For ``repair`` rows: {"action": ..., "revision": ...}.
    repair: dict[str, Any] | None = None
    format: int = FORMAT

    def to_json(self) -> str:
        """The column's JSON: :func:`dataclasses.asdict`'s dict, built without its deep copy."""
        data = {name: getattr(self, name) for name in _PROGRESS_FIELDS}
        data["revisions"] = [r.to_dict() for r in self.revisions]
        return _encode(data)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Progress:
        def statement(raw: dict[str, Any]) -> Statement:
            return Statement(**{k: raw[k] for k in Statement.__dataclass_fields__ if k in raw})

        revisions = [
            RevisionRecord(
                revision=r["revision"],
                statements=[statement(s) for s in r.get("statements", [])],
                stamped=bool(r.get("stamped")),
                failed=statement(r["failed"]) if r.get("failed") else None,
                direction=str(r.get("direction") or "upgrade"),
            )
            for r in data.get("revisions", [])
        ]
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data and k != "revisions"}
        return cls(**known, revisions=revisions)


_PROGRESS_FIELDS: Final = tuple(f.name for f in fields(Progress))
#: ``json.dumps(..., separators=(",", ":"))`` with its encoder made once.
_encode: Final = json.JSONEncoder(separators=(",", ":")).encode


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
