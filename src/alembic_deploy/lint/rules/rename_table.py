"""`rename-table`: a table is renamed."""

from __future__ import annotations

from ..finding import Severity
from ..rule import EVERY_DIALECT, Rule, per_change

RULE = Rule(
    id="rename-table",
    severity=Severity.ERROR,
    dialects=EVERY_DIALECT,
    why=(
        "The code still running uses the old name; every query of it fails from the moment of the rename until "
        "the new code is everywhere."
    ),
    safe=(
        "Create the new table, write to both, backfill, switch reads, then drop the old one (or keep a view under"
        " the old name during the switch)."
    ),
    check=per_change(
        lambda c: c.kind == "rename-table",
        lambda c: (
            f"table {c.table} is renamed{' to ' + c.name if c.name else ''}: running code still uses the old name"
        ),
    ),
)
