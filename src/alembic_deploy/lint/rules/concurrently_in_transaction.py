"""`concurrently-in-transaction`: CREATE/DROP INDEX CONCURRENTLY inside the revision's transaction."""

from __future__ import annotations

from ..finding import Severity
from ..rule import POSTGRESQL, Rule, per_change

RULE = Rule(
    id="concurrently-in-transaction",
    severity=Severity.ERROR,
    dialects=POSTGRESQL,
    why="PostgreSQL refuses CREATE or DROP INDEX CONCURRENTLY inside a transaction block: the revision fails.",
    safe=(
        "Run the statement inside `with op.get_context().autocommit_block():`, which commits the "
        "revision's transaction first."
    ),
    check=per_change(
        lambda c: c.kind in ("create-index", "drop-index") and c.has("concurrently") and c.statement.in_transaction,
        lambda c: f"INDEX {c.name or ''} CONCURRENTLY runs inside a transaction, which PostgreSQL refuses",
        new_tables=True,
    ),
)
