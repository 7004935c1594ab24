"""`drop-column`: a column is dropped."""

from __future__ import annotations

from ..finding import Severity
from ..rule import EVERY_DIALECT, Rule, per_change

RULE = Rule(
    id="drop-column",
    severity=Severity.ERROR,
    dialects=EVERY_DIALECT,
    why=(
        "The code still running reads or writes the column (ORMs select every mapped column), so its queries fail"
        " as soon as the column is gone."
    ),
    safe=(
        "Remove the column from the code (and the ORM model) in one release, then drop it in a later contract revision."
    ),
    check=per_change(
        lambda c: c.kind == "drop-column",
        lambda c: f"column {c.name} of {c.table} is dropped: running code that reads it will fail",
    ),
)
