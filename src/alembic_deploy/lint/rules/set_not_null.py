"""`set-not-null`: an existing column becomes NOT NULL (unless a valid CHECK proves it first)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..finding import Severity
from ..rule import EVERY_DIALECT, Hit, Rule

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..revision import LintInput


def _check(revision: LintInput) -> Iterator[Hit]:
    # PostgreSQL 12+ skips the scan when a valid CHECK (col IS NOT NULL) already proves the column
    # has no NULLs: one added without NOT VALID, or added NOT VALID and validated, earlier in the
    # revision. (A check an earlier revision made is not seen: allow the finding with that reason.)
    proven: set[tuple[str | None, str]] = set()
    unvalidated: dict[tuple[str | None, str | None], str] = {}
    for change in revision.changes:
        if change.kind == "add-constraint" and change.not_null_column is not None:
            if change.has("not-valid"):
                unvalidated[(change.table, change.name)] = change.not_null_column
            else:
                proven.add((change.table, change.not_null_column))
        elif change.kind == "validate-constraint" and (change.table, change.name) in unvalidated:
            proven.add((change.table, unvalidated.pop((change.table, change.name))))
        elif change.kind == "set-not-null" and not change.on_new_table and change.name is not None:
            if revision.dialect == "postgresql" and (change.table, change.name) in proven:
                continue
            yield Hit(
                f"column {change.name} of {change.table} becomes NOT NULL: the table is scanned (or rebuilt) "
                "under lock", change,
            )


RULE = Rule(
    id="set-not-null",
    severity=Severity.WARNING,
    dialects=EVERY_DIALECT,
    why=(
        "PostgreSQL scans the whole table under an ACCESS EXCLUSIVE lock to check for NULLs; MySQL rebuilds the "
        "table. Reads and writes wait the whole time."
    ),
    safe=(
        "PostgreSQL 12+: add CHECK (col IS NOT NULL) NOT VALID, VALIDATE it after the ADD has committed (an "
        "autocommit_block() or a later revision), then SET NOT NULL, which the valid check lets skip the scan, "
        "and drop the check. MySQL: run it with an online schema change tool."
    ),
    check=_check,
)
