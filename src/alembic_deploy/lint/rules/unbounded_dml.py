"""`unbounded-dml`: UPDATE or DELETE of every row, or a backfill in the same transaction as DDL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..finding import Severity
from ..rule import EVERY_DIALECT, Hit, Rule

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..revision import LintInput

_DML = ("update", "delete")
_DATA = ("insert", "update", "delete", "other", "unparsed")


def _check(revision: LintInput) -> Iterator[Hit]:
    ddl_tx = {tx for c, tx in zip(revision.changes, revision.transactions, strict=True)
              if tx is not None and c.kind not in _DATA and not c.on_new_table}
    for change, tx in zip(revision.changes, revision.transactions, strict=True):
        if change.kind not in _DML or change.on_new_table:
            continue
        verb = change.kind.upper()
        if not change.has("where"):
            yield Hit(f"{verb} of {change.table} has no WHERE: it touches (and locks) every row at once", change)
        elif tx is not None and tx in ddl_tx:
            yield Hit(
                f"{verb} of {change.table} runs in the same transaction as DDL: the DDL's locks are held "
                "until the backfill ends",
                change,
            )


RULE = Rule(
    id="unbounded-dml",
    severity=Severity.WARNING,
    dialects=EVERY_DIALECT,
    why=(
        "An UPDATE or DELETE without WHERE locks every row and runs as long as the table is big; "
        "in the transaction of an ALTER it also keeps that ALTER's lock on the table until it ends."
    ),
    safe=(
        "Backfill in batches by key range, in a revision of its own (or outside migrations), "
        "committed separately from the DDL."
    ),
    check=_check,
)
