"""`add-primary-key`: a primary key is added to an existing table."""

from __future__ import annotations

from ..finding import Severity
from ..rule import EVERY_DIALECT, Rule, per_change

RULE = Rule(
    id="add-primary-key",
    severity=Severity.WARNING,
    dialects=EVERY_DIALECT,
    why=(
        "Adding a primary key builds its index under an ACCESS EXCLUSIVE lock (PostgreSQL; also a full scan for "
        "NOT NULL) or rebuilds the table (MySQL)."
    ),
    safe=(
        "PostgreSQL: CREATE UNIQUE INDEX CONCURRENTLY, then ADD PRIMARY KEY USING INDEX. MySQL: define the key "
        "when the table is created, or use an online schema change tool."
    ),
    check=per_change(
        (lambda c: (c.kind == "add-constraint" and c.has("primary-key") and not c.has("using-index"))
        or (c.kind == "add-column" and c.has("primary-key"))),
        lambda c: f"a primary key is added to {c.table}: its index is built (or the table rebuilt) under lock",
    ),
)
