"""PostgreSQL statements read with pglast (PostgreSQL's own parser) into :class:`Change` records."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import pglast
from pglast import ast
from pglast.enums import AlterTableType, ConstrType, NullTestType, ObjectType

from .change import Change

if TYPE_CHECKING:
    from ..alembic_offline import RenderedStatement

#: Functions whose value differs per row: a column added with such a default is written into
#: every existing row (a table rewrite under ACCESS EXCLUSIVE), where a constant default is not.
VOLATILE: Final = frozenset({
    "random", "gen_random_uuid", "uuid_generate_v1", "uuid_generate_v1mc", "uuid_generate_v4", "uuidv4",
    "uuidv7", "clock_timestamp", "timeofday", "nextval", "txid_current",
})
#: Column types backed by a sequence (their default is nextval()).
SERIAL: Final = frozenset({"serial", "serial4", "bigserial", "serial8", "smallserial", "serial2"})
_CONSTRAINT_FLAGS: Final = {
    ConstrType.CONSTR_FOREIGN: "foreign-key", ConstrType.CONSTR_CHECK: "check",
    ConstrType.CONSTR_UNIQUE: "unique", ConstrType.CONSTR_PRIMARY: "primary-key",
}
_RENAMES: Final[dict[Any, str]] = {
    ObjectType.OBJECT_TABLE: "rename-table", ObjectType.OBJECT_COLUMN: "rename-column",
}
_DROPS: Final[dict[Any, str]] = {
    ObjectType.OBJECT_TABLE: "drop-table", ObjectType.OBJECT_INDEX: "drop-index",
    ObjectType.OBJECT_SCHEMA: "drop-schema",
}
_SIMPLE_ALTERS: Final = {
    AlterTableType.AT_DropColumn: "drop-column",
    AlterTableType.AT_SetNotNull: "set-not-null",
    AlterTableType.AT_DropNotNull: "drop-not-null",
    AlterTableType.AT_AlterColumnType: "alter-type",
    AlterTableType.AT_ValidateConstraint: "validate-constraint",
    AlterTableType.AT_DropConstraint: "drop-constraint",
}
_CREATES: Final = (
    ast.CreateSchemaStmt, ast.CreateSeqStmt, ast.CompositeTypeStmt, ast.CreateEnumStmt, ast.CreateFunctionStmt,
    ast.ViewStmt, ast.CommentStmt, ast.CreateExtensionStmt, ast.CreateTrigStmt,
    ast.CreateDomainStmt,
)


def changes(statement: RenderedStatement) -> list[Change]:
    try:
        raws = pglast.parse_sql(statement.sql)
    except pglast.parser.ParseError as exc:
        return [Change("unparsed", statement, detail=str(exc))]
    found: list[Change] = []
    for raw in raws:
        found.extend(_read(raw.stmt, statement))
    return found


def _read(node: Any, st: RenderedStatement) -> list[Change]:
    if isinstance(node, ast.CreateStmt):
        return [Change("create-table", st, _relname(node.relation))]
    if isinstance(node, ast.DropStmt):
        return _drop(node, st)
    if isinstance(node, ast.DropdbStmt):
        return [Change("drop-database", st, name=node.dbname)]
    if isinstance(node, ast.RenameStmt):
        kind = _RENAMES.get(node.renameType, "rename-other")
        table = _relname(node.relation)
        return [Change(kind, st, table, node.subname if kind == "rename-column" else node.newname)]
    if isinstance(node, ast.AlterTableStmt):
        table = _relname(node.relation)
        return [_alter(cmd, table, st) for cmd in node.cmds or ()]
    if isinstance(node, ast.IndexStmt):
        flags = {"concurrently"} if node.concurrent else set()
        if node.unique:
            flags.add("unique")
        return [Change("create-index", st, _relname(node.relation), node.idxname, frozenset(flags))]
    if isinstance(node, ast.TruncateStmt):
        return [Change("truncate", st, _relname(r)) for r in node.relations or ()]
    if isinstance(node, (ast.UpdateStmt, ast.DeleteStmt)):
        kind = "update" if isinstance(node, ast.UpdateStmt) else "delete"
        where = frozenset({"where"}) if node.whereClause is not None else frozenset()
        return [Change(kind, st, _relname(node.relation), flags=where)]
    if isinstance(node, ast.InsertStmt):
        return [Change("insert", st, _relname(node.relation))]
    if isinstance(node, ast.AlterEnumStmt):
        name = _dotted(node.typeName)
        if node.oldVal is not None:
            return [Change("rename-other", st, name=name)]
        return [Change("add-enum-value", st, name=name, detail=str(node.newVal))]
    if isinstance(node, _CREATES):
        return [Change("create-other", st)]
    return [Change("other", st)]


def _drop(node: ast.DropStmt, st: RenderedStatement) -> list[Change]:
    kind = _DROPS.get(node.removeType, "drop-other")
    flags = frozenset({"concurrently"}) if node.concurrent else frozenset()
    names = [_dotted(obj) for obj in node.objects or ()]
    if kind == "drop-table":
        return [Change(kind, st, name, flags=flags) for name in names]
    return [Change(kind, st, name=name, flags=flags) for name in names]


def _alter(cmd: Any, table: str | None, st: RenderedStatement) -> Change:
    subtype = cmd.subtype
    if subtype == AlterTableType.AT_AddColumn:
        return _add_column(cmd.def_, table, st)
    if subtype in _SIMPLE_ALTERS:
        return Change(_SIMPLE_ALTERS[subtype], st, table, cmd.name)
    if subtype == AlterTableType.AT_ColumnDefault:
        return Change("set-default" if cmd.def_ is not None else "drop-default", st, table, cmd.name)
    if subtype == AlterTableType.AT_AddConstraint:
        con = cmd.def_
        flags = {_CONSTRAINT_FLAGS.get(con.contype, "other")}
        if con.skip_validation:
            flags.add("not-valid")
        if con.indexname:
            flags.add("using-index")
        return Change("add-constraint", st, table, con.conname, frozenset(flags),
                      not_null_column=_not_null_column(con) if con.contype == ConstrType.CONSTR_CHECK else None)
    return Change("alter-other", st, table, cmd.name, detail=subtype.name)


def _add_column(col: Any, table: str | None, st: RenderedStatement) -> Change:
    flags: set[str] = set()
    type_name = col.typeName.names[-1].sval if col.typeName is not None and col.typeName.names else ""
    if type_name in SERIAL:
        flags |= {"default", "volatile-default", "not-null"}
    if col.is_not_null:
        flags.add("not-null")
    for con in col.constraints or ():
        if con.contype == ConstrType.CONSTR_NOTNULL:
            flags.add("not-null")
        elif con.contype == ConstrType.CONSTR_DEFAULT:
            flags.add("default")
            if _calls(con.raw_expr) & VOLATILE:
                flags.add("volatile-default")
        elif con.contype in (ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_GENERATED):
            # Both fill every existing row: an identity from its sequence, a stored generated
            # column from its expression.
            flags |= {"default", "volatile-default"}
        elif con.contype == ConstrType.CONSTR_PRIMARY:
            flags |= {"primary-key", "not-null"}
        elif con.contype == ConstrType.CONSTR_UNIQUE:
            flags.add("unique")
    return Change("add-column", st, table, col.colname, frozenset(flags))


def _not_null_column(con: Any) -> str | None:
    """The column of a ``CHECK (col IS NOT NULL)``, None for any other check."""
    expr = con.raw_expr
    if (isinstance(expr, ast.NullTest) and expr.nulltesttype == NullTestType.IS_NOT_NULL
            and isinstance(expr.arg, ast.ColumnRef) and expr.arg.fields
            and isinstance(expr.arg.fields[-1], ast.String)):
        return str(expr.arg.fields[-1].sval)
    return None


def _calls(expr: Any) -> set[str]:
    """The names of the functions ``expr`` calls, at any depth."""
    names: set[str] = set()
    for node in _walk(expr):
        if isinstance(node, ast.FuncCall) and node.funcname:
            names.add(str(node.funcname[-1].sval).lower())
    return names


def _walk(node: Any) -> list[Any]:
    found: list[Any] = []
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, (tuple, list)):
            stack.extend(item)
        elif isinstance(item, ast.Node):
            found.append(item)
            stack.extend(getattr(item, name) for name in item)
    return found


def _relname(rel: ast.RangeVar | None) -> str | None:
    if rel is None:
        return None
    return f"{rel.schemaname}.{rel.relname}" if rel.schemaname else str(rel.relname)


def _dotted(obj: Any) -> str:
    if isinstance(obj, ast.String):
        return str(obj.sval)
    if isinstance(obj, (tuple, list)):
        return ".".join(_dotted(part) for part in obj)
    return str(obj)
