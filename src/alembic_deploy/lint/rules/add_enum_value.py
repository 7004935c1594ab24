"""`add-enum-value`: ALTER TYPE ... ADD VALUE inside the revision's transaction (PostgreSQL)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..finding import Severity
from ..rule import POSTGRESQL, Hit, Rule

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..revision import LintInput


def _check(revision: LintInput) -> Iterator[Hit]:
    changes = list(zip(revision.changes, revision.transactions, strict=True))
    last = changes[-1][1] if changes else None
    for n, (change, tx) in enumerate(changes):
        if change.kind != "add-enum-value" or tx is None:
            continue
        literal = "'" + change.detail.replace("'", "''") + "'"
        used = next((c for c, t in changes[n + 1:] if t == tx and literal in c.statement.sql), None)
        if used is not None:
            after = f" (line {used.statement.line or '-'} uses it in the same transaction, so the revision fails)"
        elif tx != last:
            after = ""  # an autocommit_block() later in the revision commits it
        elif revision.transaction_per_migration:
            after = "; env.py sets transaction_per_migration, so it commits with this revision"
        else:
            after = ("; with env.py's transaction_per_migration off (Alembic's default) that is the end of the whole "
                     "upgrade, so a later revision of the same run that uses it fails")
        yield Hit(
            f"value {change.detail!r} is added to enum {change.name} inside a transaction: PostgreSQL before 12 "
            f"refuses that, and 12+ refuses any use of the new value until the transaction commits{after}",
            change,
        )


RULE = Rule(
    id="add-enum-value",
    severity=Severity.WARNING,
    dialects=POSTGRESQL,
    why=(
        "ALTER TYPE ... ADD VALUE cannot run inside a transaction block before PostgreSQL 12; from 12 on, the "
        "new value cannot be used in the transaction that added it, which is the whole upgrade unless env.py "
        "sets transaction_per_migration."
    ),
    safe=(
        "Run it inside `with op.get_context().autocommit_block():` (committed at once, usable right after), "
        "and use the new value only after it."
    ),
    check=_check,
)
