"""`rename-column`: a column is renamed."""

from __future__ import annotations

from ..finding import Severity
from ..rule import EVERY_DIALECT, Rule, per_change

RULE = Rule(
    id="rename-column",
    severity=Severity.ERROR,
    dialects=EVERY_DIALECT,
    why=(
        "The code still running uses the old column name; its queries fail until the new code is everywhere."
    ),
    safe=(
        "Add the new column, write to both, backfill, switch reads, then drop the old column in a contract revision."
    ),
    check=per_change(
        lambda c: c.kind == "rename-column",
        lambda c: f"column {c.name} of {c.table} is renamed: running code still uses the old name",
    ),
)
