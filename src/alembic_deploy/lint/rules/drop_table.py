"""`drop-table`: a table is dropped."""

from __future__ import annotations

from ..finding import Severity
from ..rule import EVERY_DIALECT, Rule, per_change

RULE = Rule(
    id="drop-table",
    severity=Severity.ERROR,
    dialects=EVERY_DIALECT,
    why=(
        "The code still running during and after the deploy reads and writes the table; once it is gone every "
        "such query fails, and the data is lost with it."
    ),
    safe=(
        "Stop using the table in a release first, then drop it in a later contract revision (marked "
        "alembic_deploy = {\"contract\": True}) once no running code reads it."
    ),
    check=per_change(
        lambda c: c.kind == "drop-table",
        lambda c: f"DROP TABLE {c.table}: queries of the running code that use it will fail",
    ),
)
