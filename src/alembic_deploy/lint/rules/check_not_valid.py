"""`check-not-valid`: a check constraint is added and validated at once."""

from __future__ import annotations

from ..finding import Severity
from ..rule import POSTGRESQL, Rule, per_change

RULE = Rule(
    id="check-not-valid",
    severity=Severity.WARNING,
    dialects=POSTGRESQL,
    why=(
        "Adding a CHECK constraint scans the whole table under an ACCESS EXCLUSIVE lock."
    ),
    safe=(
        "Add it with NOT VALID (postgresql_not_valid=True), then VALIDATE CONSTRAINT in a later transaction."
    ),
    check=per_change(
        lambda c: c.kind == "add-constraint" and c.has("check") and not c.has("not-valid"),
        lambda c: f"check constraint {c.name or ''} on {c.table} scans the table under ACCESS EXCLUSIVE",
    ),
)
