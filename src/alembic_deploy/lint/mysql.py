"""MySQL and MariaDB statements read with sqlglot into :class:`Change` records.

sqlglot reads some DDL forms only as an opaque command (``RENAME TABLE``, ``CONVERT TO CHARACTER
SET``): those are ``unparsed`` unless the Alembic operation that emitted them says what they do.
A ``MODIFY``/``CHANGE`` restates the whole column, so the SQL alone cannot say whether the type or
only the nullability changed: the ``alter_column`` call's facts decide, and raw SQL counts as a type
change (it may copy the table).
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any, Final

import sqlglot
from sqlglot import exp

from .change import Change

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..alembic_offline import RenderedStatement

#: What an Alembic operation emits when sqlglot cannot read its SQL.
_BY_OPERATION: Final = {
    "RenameTableOp": "rename-table", "DropTableOp": "drop-table", "CreateTableOp": "create-table",
    "DropColumnOp": "drop-column", "AddColumnOp": "add-column", "CreateIndexOp": "create-index",
    "DropIndexOp": "drop-index", "DropConstraintOp": "drop-constraint",
}
_DROPS: Final = {
    "TABLE": "drop-table", "INDEX": "drop-index", "DATABASE": "drop-database", "SCHEMA": "drop-schema",
}
_ALTER_DROPS: Final = {
    "COLUMN": "drop-column", "INDEX": "drop-index", "KEY": "drop-index", "FOREIGN KEY": "drop-constraint",
    "CONSTRAINT": "drop-constraint", "CHECK": "drop-constraint",
}


class _QuietFallback(logging.Filter):
    """sqlglot logs a warning for each statement it reads as an opaque command; the lint reports
    those itself (``unparsed-statement``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Falling back to parsing as a 'Command'" not in record.getMessage()


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    logger, quiet = logging.getLogger("sqlglot"), _QuietFallback()
    logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


def changes(statement: RenderedStatement) -> list[Change]:
    try:
        with _quiet():
            trees = sqlglot.parse(statement.sql, read="mysql")
    except sqlglot.errors.SqlglotError as exc:
        return [_unread(statement, str(exc).splitlines()[0])]
    found: list[Change] = []
    for tree in trees:
        if isinstance(tree, exp.Expression):
            found.extend(_read(tree, statement))
    return found


def _unread(st: RenderedStatement, why: str) -> Change:
    kind = _BY_OPERATION.get(st.operation)
    if kind is not None:
        return Change(kind, st, detail=f"read from the Alembic operation ({st.operation})")
    return Change("unparsed", st, detail=why)


def _read(tree: exp.Expression, st: RenderedStatement) -> list[Change]:
    if isinstance(tree, exp.Command):
        return [_unread(st, f"sqlglot reads {tree.this} ... only as an opaque command")]
    if isinstance(tree, exp.Create):
        kind = str(tree.args.get("kind") or "").upper()
        if kind == "TABLE":
            return [Change("create-table", st, _name(tree.this))]
        if kind == "INDEX":
            index = tree.this
            flags = frozenset({"unique"}) if tree.args.get("unique") else frozenset()
            return [Change("create-index", st, _name(index.args.get("table")), _name(index), flags)]
        return [Change("create-other", st)]
    if isinstance(tree, exp.Drop):
        kind = _DROPS.get(str(tree.args.get("kind") or "").upper(), "drop-other")
        if kind == "drop-table":
            return [Change(kind, st, _name(t)) for t in _targets(tree)]
        cluster = tree.args.get("cluster")
        table = _name(cluster.this) if isinstance(cluster, exp.OnProperty) else None
        return [Change(kind, st, table, _name(t)) for t in _targets(tree)]
    if isinstance(tree, exp.Alter) and str(tree.args.get("kind") or "").upper() == "TABLE":
        table = _name(tree.this)
        return [_alter(action, table, st) for action in tree.args.get("actions") or ()]
    if isinstance(tree, exp.TruncateTable):
        return [Change("truncate", st, _name(t)) for t in tree.expressions]
    if isinstance(tree, (exp.Update, exp.Delete)):
        kind = "update" if isinstance(tree, exp.Update) else "delete"
        where = frozenset({"where"}) if tree.args.get("where") is not None else frozenset()
        return [Change(kind, st, _name(tree.this), flags=where)]
    if isinstance(tree, exp.Insert):
        return [Change("insert", st, _name(tree.this))]
    return [Change("other", st)]


def _alter(action: exp.Expression, table: str | None, st: RenderedStatement) -> Change:
    if isinstance(action, exp.ColumnDef):
        return _add_column(action, table, st)
    if isinstance(action, exp.AlterRename):
        return Change("rename-table", st, table, _name(action.this))
    if isinstance(action, exp.RenameColumn):
        return Change("rename-column", st, table, _name(action.this))
    if isinstance(action, exp.ModifyColumn):
        return _modify(action, table, st)
    if isinstance(action, exp.AlterColumn):
        if action.args.get("drop"):
            return Change("drop-default", st, table, _name(action.this))
        if action.args.get("default") is not None:
            return Change("set-default", st, table, _name(action.this))
        return Change("alter-other", st, table, _name(action.this))
    if isinstance(action, exp.Drop):
        kind = _ALTER_DROPS.get(str(action.args.get("kind") or "").upper(), "alter-other")
        return Change(kind, st, table, ", ".join(_name(t) or "" for t in _targets(action)))
    if isinstance(action, exp.DropPrimaryKey):
        return Change("drop-constraint", st, table, "PRIMARY KEY", frozenset({"primary-key", "table-copy"}))
    if isinstance(action, exp.AddConstraint):
        return _add_constraint(action, table, st)
    return Change("alter-other", st, table, detail=type(action).__name__)


def _modify(action: exp.ModifyColumn, table: str | None, st: RenderedStatement) -> Change:
    column = action.this
    old = action.args.get("rename_from")
    if old is not None and _name(old) != _name(column):
        return Change("rename-column", st, table, _name(old))
    if st.operation == "AlterColumnOp" and not st.facts.get("type_change"):
        nullable = st.facts.get("nullable")
        if nullable is False:
            return Change("set-not-null", st, table, _name(column))
        if nullable is True:
            return Change("drop-not-null", st, table, _name(column))
        return Change("alter-other", st, table, _name(column), detail="MODIFY restating the column")
    return Change("alter-type", st, table, _name(column), frozenset({"table-copy"}))


def _add_column(col: exp.ColumnDef, table: str | None, st: RenderedStatement) -> Change:
    flags: set[str] = set()
    for constraint in col.args.get("constraints") or ():
        kind = constraint.args.get("kind")
        if isinstance(kind, exp.NotNullColumnConstraint) and not kind.args.get("allow_null"):
            flags.add("not-null")
        elif isinstance(kind, exp.DefaultColumnConstraint):
            flags.add("default")
        elif isinstance(kind, exp.AutoIncrementColumnConstraint):
            flags |= {"default", "volatile-default"}
        elif isinstance(kind, exp.PrimaryKeyColumnConstraint):
            flags |= {"primary-key", "not-null", "table-copy"}
        elif isinstance(kind, exp.UniqueColumnConstraint):
            flags.add("unique")
    return Change("add-column", st, table, _name(col.this), frozenset(flags))


def _add_constraint(action: exp.AddConstraint, table: str | None, st: RenderedStatement) -> Change:
    name: str | None = None
    flags: set[str] = set()
    for item in action.expressions:
        parts: list[Any] = [item]
        if isinstance(item, exp.Constraint):
            name = _name(item.this)
            parts = list(item.expressions)
        for part in parts:
            if isinstance(part, exp.PrimaryKey):
                flags |= {"primary-key", "table-copy"}
            elif isinstance(part, exp.ForeignKey):
                flags.add("foreign-key")
            elif isinstance(part, exp.UniqueColumnConstraint):
                flags.add("unique")
            elif isinstance(part, exp.CheckColumnConstraint):
                flags.add("check")
            elif isinstance(part, exp.IndexColumnConstraint):
                return Change("create-index", st, table, _name(part.this))
    return Change("add-constraint", st, table, name, frozenset(flags))


def _targets(drop: exp.Expression) -> list[Any]:
    return list(drop.args.get("tables") or drop.expressions)


def _name(node: Any) -> str | None:
    if node is None:
        return None
    if isinstance(node, exp.Table):
        return ".".join(p for p in (node.db, node.name) if p) or None
    if isinstance(node, exp.Expression):
        return node.name or None
    return str(node)
