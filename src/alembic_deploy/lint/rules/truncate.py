"""`truncate`: a table is truncated."""

from __future__ import annotations

from ..finding import Severity
from ..rule import EVERY_DIALECT, Rule, per_change

RULE = Rule(
    id="truncate",
    severity=Severity.ERROR,
    dialects=EVERY_DIALECT,
    why=(
        "TRUNCATE removes every row at once, under an ACCESS EXCLUSIVE lock on PostgreSQL; the data is gone."
    ),
    safe=(
        "Delete what must go in batches, or do it by hand after a backup."
    ),
    check=per_change(
        lambda c: c.kind == "truncate",
        lambda c: f"TRUNCATE {c.table} removes every row",
    ),
)
