"""`drop-schema-or-database`: a schema or database is dropped."""

from __future__ import annotations

from ..finding import Severity
from ..rule import EVERY_DIALECT, Rule, per_change

RULE = Rule(
    id="drop-schema-or-database",
    severity=Severity.ERROR,
    dialects=EVERY_DIALECT,
    why=(
        "Dropping a schema or database removes every table in it at once, with its data."
    ),
    safe=(
        "Do it by hand after a backup, outside the migration history, or drop the tables one by one in contract "
        "revisions."
    ),
    check=per_change(
        lambda c: c.kind in ("drop-schema", "drop-database"),
        lambda c: f"{c.kind.split('-')[1]} {c.name} is dropped with everything in it",
    ),
)
