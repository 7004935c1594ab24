"""`index-not-concurrent`: an index on an existing table is created or dropped without CONCURRENTLY."""

from __future__ import annotations

from ..finding import Severity
from ..rule import POSTGRESQL, Rule, per_change

RULE = Rule(
    id="index-not-concurrent",
    severity=Severity.ERROR,
    dialects=POSTGRESQL,
    why=(
        "CREATE INDEX blocks every write to the table until the index is built; DROP INDEX takes an ACCESS "
        "EXCLUSIVE lock."
    ),
    safe=(
        "Use postgresql_concurrently=True inside op.get_context().autocommit_block() (CREATE/DROP INDEX CONCURRENTLY)."
    ),
    check=per_change(
        lambda c: c.kind in ("create-index", "drop-index") and not c.has("concurrently"),
        lambda c: (
            f"{'CREATE' if c.kind == 'create-index' else 'DROP'} INDEX {c.name or ''} without CONCURRENTLY "
            f"blocks writes to {c.table or 'its table'}"
        ),
    ),
)
