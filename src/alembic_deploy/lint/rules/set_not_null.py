"""`set-not-null`: an existing column becomes NOT NULL."""

from __future__ import annotations

from ..finding import Severity
from ..rule import EVERY_DIALECT, Rule, per_change

RULE = Rule(
    id="set-not-null",
    severity=Severity.WARNING,
    dialects=EVERY_DIALECT,
    why=(
        "PostgreSQL scans the whole table under an ACCESS EXCLUSIVE lock to check for NULLs; MySQL rebuilds the "
        "table. Reads and writes wait the whole time."
    ),
    safe=(
        "PostgreSQL: add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it in a later transaction, then SET NOT NULL"
        " (12+ skips the scan) and drop the check. MySQL: run it with an online schema change tool."
    ),
    check=per_change(
        lambda c: c.kind == "set-not-null",
        lambda c: f"column {c.name} of {c.table} becomes NOT NULL: the table is scanned (or rebuilt) under lock",
    ),
)
