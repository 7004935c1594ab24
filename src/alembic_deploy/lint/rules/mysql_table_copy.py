"""`mysql-table-copy`: an ALTER that copies the table."""

from __future__ import annotations

from ..finding import Severity
from ..rule import MYSQL, Rule, per_change

RULE = Rule(
    id="mysql-table-copy",
    severity=Severity.WARNING,
    dialects=MYSQL,
    why=(
        "Some ALTERs cannot run with ALGORITHM=INSTANT or INPLACE, LOCK=NONE: primary key changes, AUTO_INCREMENT"
        " columns, column redefinitions. MySQL copies the table and blocks writes for the whole copy."
    ),
    safe=(
        "Run it with an online schema change tool (gh-ost, pt-online-schema-change), or state ALGORITHM=INPLACE, "
        "LOCK=NONE so MySQL refuses instead of copying."
    ),
    check=per_change(
        (lambda c: c.kind not in ("alter-type", "add-constraint")
        and (c.has("table-copy") or (c.kind == "add-column" and c.has("volatile-default")))),
        lambda c: f"this ALTER of {c.table} copies the table (ALGORITHM=COPY) and blocks writes while it runs",
    ),
)
