"""`validate-same-transaction`: a constraint added NOT VALID is validated in the same transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..finding import Severity
from ..rule import POSTGRESQL, Hit, Rule

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..revision import LintInput


def _check(revision: LintInput) -> Iterator[Hit]:
    added: dict[tuple[str | None, int], str | None] = {}
    for change, tx in zip(revision.changes, revision.transactions, strict=True):
        if tx is None:
            continue
        if change.kind == "add-constraint" and change.has("not-valid"):
            added[(change.name, tx)] = change.table
        elif change.kind == "validate-constraint" and (change.name, tx) in added:
            yield Hit(
                f"constraint {change.name} on {change.table} is validated in the transaction that added it "
                "NOT VALID: the lock of the ADD is held through the whole validation",
                change,
            )


RULE = Rule(
    id="validate-same-transaction",
    severity=Severity.WARNING,
    dialects=POSTGRESQL,
    why=(
        "NOT VALID exists so the validation runs without the ADD's lock; validating in the same "
        "transaction keeps that lock for the whole scan, as if NOT VALID were not there."
    ),
    safe="Validate in a later revision, or after `op.get_context().autocommit_block()` has committed the ADD.",
    check=_check,
)
