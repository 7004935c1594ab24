"""What env.py passes to ``context.configure`` that changes what the revisions run, read from its
source (``check`` and ``plan`` run no env.py): ``transactional_ddl`` (on/off for every statement)
and ``transaction_per_migration`` (one transaction per revision, or one for the whole upgrade).

The other keywords do not change the SQL a revision's ``upgrade()`` runs or its transactions:
``version_table``/``version_table_schema`` move only the version table's statements, which the lint
leaves out; ``include_schemas``, ``include_object``, ``compare_*``, ``render_as_batch`` and the rest
are read only while autogenerating. Only literal ``True``/``False`` is read: a keyword set from a
variable, an ``**options`` argument, or calls that disagree leave the value unknown (``None``), and
the lint then assumes Alembic's default.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from pathlib import Path

#: The ``configure`` keywords the lint honours.
READ: Final = ("transactional_ddl", "transaction_per_migration")
_UNKNOWN: Final = object()


@dataclass(frozen=True)
class EnvOptions:
    #: None: env.py does not say (the dialect's own: on for PostgreSQL, off for MySQL).
    transactional_ddl: bool | None = None
    #: None: env.py does not say, or not as a literal; Alembic's default is off.
    transaction_per_migration: bool | None = None

    def to_dict(self) -> dict[str, bool | None]:
        return {"transactional_ddl": self.transactional_ddl,
                "transaction_per_migration": self.transaction_per_migration}


def read_env_options(env_py: Path) -> EnvOptions:
    """The :data:`READ` keywords of env.py's ``configure`` calls that run online (those passing
    ``connection=``; every call when none does)."""
    try:
        tree = ast.parse(env_py.read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError, ValueError):
        return EnvOptions()
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and _is_configure(node.func)]
    online = [c for c in calls if any(k.arg == "connection" for k in c.keywords)] or calls
    values: dict[str, bool | None] = {}
    for name in READ:
        seen = {_literal(call, name) for call in online}
        if len(seen) == 1 and isinstance(value := next(iter(seen)), bool):
            values[name] = value
        elif name == "transaction_per_migration" and seen <= {None, False}:
            values[name] = False  # not given, or given as Alembic's default: the same
    return EnvOptions(**values)


def _is_configure(func: ast.expr) -> bool:
    return (isinstance(func, ast.Attribute) and func.attr == "configure") or (
        isinstance(func, ast.Name) and func.id == "configure")


def _literal(call: ast.Call, name: str) -> object:
    """The literal value of keyword ``name`` of ``call``; None when not given; unknown otherwise."""
    for keyword in call.keywords:
        if keyword.arg is None:  # **options: could hold it
            return _UNKNOWN
        if keyword.arg == name:
            if isinstance(keyword.value, ast.Constant) and isinstance(keyword.value.value, bool):
                return keyword.value.value
            return _UNKNOWN
    return None
