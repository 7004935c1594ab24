"""`change-column-type`: a column's type changes."""

from __future__ import annotations

from ..finding import Severity
from ..rule import EVERY_DIALECT, Rule, per_change

RULE = Rule(
    id="change-column-type",
    severity=Severity.ERROR,
    dialects=EVERY_DIALECT,
    why=(
        "Changing a column's type rewrites the table (PostgreSQL, under ACCESS EXCLUSIVE) or copies it (MySQL), "
        "blocking it for as long as that takes, and the running code may not handle the new type."
    ),
    safe=(
        "Add a column of the new type, backfill in batches, switch the code, drop the old column later. Widening "
        "a varchar or dropping its limit does not rewrite on PostgreSQL: allow the finding with a reason."
    ),
    check=per_change(
        lambda c: c.kind == "alter-type",
        lambda c: f"column {c.name} of {c.table} changes type: the table is rewritten under lock",
    ),
)
