"""`add-required-column`: a NOT NULL column is added without a default."""

from __future__ import annotations

from ..finding import Severity
from ..rule import EVERY_DIALECT, Rule, per_change

RULE = Rule(
    id="add-required-column",
    severity=Severity.ERROR,
    dialects=EVERY_DIALECT,
    why=(
        "A NOT NULL column without a default fails on a table with rows (PostgreSQL), or is filled with an "
        "implicit zero value (MySQL); either way the running code inserts rows without it and those inserts fail."
    ),
    safe=(
        "Add the column nullable or with a server default; backfill; make it NOT NULL in a later revision."
    ),
    check=per_change(
        lambda c: c.kind == "add-column" and c.has("not-null") and not c.has("default") and not c.has("primary-key"),
        lambda c: f"column {c.name} is added to {c.table} as NOT NULL without a default",
    ),
)
