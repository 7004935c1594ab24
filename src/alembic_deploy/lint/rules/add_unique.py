"""`add-unique`: a unique constraint is added with an index built under lock."""

from __future__ import annotations

from ..finding import Severity
from ..rule import POSTGRESQL, Rule, per_change

RULE = Rule(
    id="add-unique",
    severity=Severity.WARNING,
    dialects=POSTGRESQL,
    why=(
        "ADD CONSTRAINT ... UNIQUE builds its index under an ACCESS EXCLUSIVE lock: reads and writes wait for the"
        " whole build."
    ),
    safe=(
        "CREATE UNIQUE INDEX CONCURRENTLY (in an autocommit_block), then ADD CONSTRAINT ... UNIQUE USING INDEX."
    ),
    check=per_change(
        (lambda c: (c.kind == "add-constraint" and c.has("unique") and not c.has("using-index"))
        or (c.kind == "add-column" and c.has("unique"))),
        lambda c: f"unique constraint {c.name or ''} on {c.table} builds its index under ACCESS EXCLUSIVE",
    ),
)
