"""`volatile-default`: a column is added with a volatile default."""

from __future__ import annotations

from ..finding import Severity
from ..rule import POSTGRESQL, Rule, per_change

RULE = Rule(
    id="volatile-default",
    severity=Severity.WARNING,
    dialects=POSTGRESQL,
    why=(
        "A column added with a default computed per row (random(), gen_random_uuid(), clock_timestamp(), a serial"
        " or identity) makes PostgreSQL write every row, under an ACCESS EXCLUSIVE lock. A constant default (or "
        "now()) is stored once and costs nothing."
    ),
    safe=(
        "Add the column without a default (or with a constant one), set the default for new rows, and backfill "
        "existing rows in batches."
    ),
    check=per_change(
        lambda c: c.kind == "add-column" and c.has("volatile-default"),
        lambda c: f"column {c.name} is added to {c.table} with a per-row default: every row is rewritten under lock",
    ),
)
