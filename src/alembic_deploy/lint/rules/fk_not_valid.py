"""`fk-not-valid`: a foreign key is added and validated at once."""

from __future__ import annotations

from ..finding import Severity
from ..rule import POSTGRESQL, Rule, per_change

RULE = Rule(
    id="fk-not-valid",
    severity=Severity.WARNING,
    dialects=POSTGRESQL,
    why=(
        "Adding a foreign key checks every existing row while holding a lock that blocks writes to both tables."
    ),
    safe=(
        "Add it with NOT VALID (postgresql_not_valid=True), then VALIDATE CONSTRAINT in a later transaction, "
        "which does not block writes."
    ),
    check=per_change(
        lambda c: c.kind == "add-constraint" and c.has("foreign-key") and not c.has("not-valid"),
        lambda c: f"foreign key {c.name or ''} on {c.table} is validated while writes to both tables wait",
    ),
)
