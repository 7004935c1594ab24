"""Every lint rule, one per module, in the order findings are reported."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from . import (
    add_enum_value,
    add_primary_key,
    add_required_column,
    add_unique,
    change_column_type,
    check_not_valid,
    concurrently_in_transaction,
    drop_column,
    drop_schema_or_database,
    drop_table,
    fk_not_valid,
    index_not_concurrent,
    irreversible,
    marker_violation,
    mysql_table_copy,
    not_renderable,
    rename_column,
    rename_table,
    set_not_null,
    truncate,
    unbounded_dml,
    unparsed_statement,
    validate_same_transaction,
    volatile_default,
)

if TYPE_CHECKING:
    from ..rule import Rule

RULES: Final[tuple[Rule, ...]] = tuple(module.RULE for module in (
    drop_table, drop_column, drop_schema_or_database, rename_table, rename_column, add_required_column,
    set_not_null, change_column_type, index_not_concurrent, concurrently_in_transaction, fk_not_valid,
    check_not_valid, add_unique, add_primary_key, truncate, unbounded_dml, irreversible, unparsed_statement,
    not_renderable, marker_violation, volatile_default, validate_same_transaction, mysql_table_copy, add_enum_value,
))
BY_ID: Final = {rule.id: rule for rule in RULES}


def markdown_table() -> str:
    """The rule list as the README shows it (a test keeps the two identical)."""
    names = {"postgresql": "PostgreSQL", "mysql": "MySQL", "mariadb": "MariaDB"}
    rows = ["| rule | dialects | severity | why it hurts | the safe way |", "|---|---|---|---|---|"]
    for rule in RULES:
        dialects = ", ".join(names[d] for d in ("postgresql", "mysql", "mariadb") if d in rule.dialects)
        rows.append(f"| `{rule.id}` | {dialects} | {rule.severity.value} | {rule.why} | {rule.safe} |")
    return "\n".join(rows)
