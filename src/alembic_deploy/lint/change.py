"""The statements of a revision as the rules see them: a small, dialect-neutral vocabulary of
changes (:class:`Change`), read from the parsers' syntax trees by :mod:`.postgresql` and
:mod:`.mysql`, so each rule is written once for every dialect it claims."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ..alembic_offline import RenderedStatement

#: Every change kind a parser produces. A statement the parser could not read is ``unparsed``;
#: one it read but no rule needs to tell apart is ``other`` (SET, SELECT, COMMENT ON, ...).
KINDS: Final = frozenset({
    "create-table", "drop-table", "rename-table", "truncate",
    "add-column", "drop-column", "rename-column", "alter-type", "set-not-null", "drop-not-null",
    "set-default", "drop-default",
    "create-index", "drop-index", "add-constraint", "drop-constraint", "validate-constraint",
    "drop-schema", "drop-database", "add-enum-value", "create-other", "drop-other", "alter-other", "rename-other",
    "insert", "update", "delete", "other", "unparsed",
})

#: Flags a change may carry.
#: add-column: ``not-null``, ``default``, ``volatile-default`` (the default is computed per row),
#: ``unique``, ``primary-key``; create-index / drop-index: ``concurrently``, ``unique``;
#: add-constraint: ``foreign-key``, ``check``, ``unique``, ``primary-key``, ``not-valid``,
#: ``using-index``; update / delete: ``where``; alter-other (MySQL): ``table-copy``;
#: any change on a table created earlier in the same revision: ``new-table``.
FLAGS: Final = frozenset({
    "not-null", "default", "volatile-default", "unique", "primary-key", "concurrently", "foreign-key", "check",
    "not-valid", "using-index", "where", "table-copy", "new-table",
})


@dataclass(frozen=True)
class Change:
    kind: str
    statement: RenderedStatement
    table: str | None = None
    #: The column, index, constraint, schema or database the change names.
    name: str | None = None
    flags: frozenset[str] = frozenset()
    #: For ``unparsed``: what the parser said; for ``alter-other`` (MySQL): what it does; for
    #: ``add-enum-value``: the value added.
    detail: str = ""
    #: For ``add-constraint`` of a ``CHECK (col IS NOT NULL)``: that column, which a valid such
    #: check proves free of NULLs (PostgreSQL 12+ then sets NOT NULL without scanning the table).
    not_null_column: str | None = None

    def has(self, flag: str) -> bool:
        return flag in self.flags

    @property
    def on_new_table(self) -> bool:
        """On a table this revision created: nobody reads or writes it yet, so locks and rewrites
        do not matter."""
        return "new-table" in self.flags
