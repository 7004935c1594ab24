"""`not-renderable`: the revision raised when rendered offline, so its SQL was not linted."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..finding import Severity
from ..rule import EVERY_DIALECT, Hit, Rule

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..revision import LintInput


def _check(revision: LintInput) -> Iterator[Hit]:
    if revision.render_error is not None:
        yield Hit(f"the revision cannot be rendered offline: {revision.render_error}", line=revision.render_error_line)


RULE = Rule(
    id="not-renderable",
    severity=Severity.WARNING,
    dialects=EVERY_DIALECT,
    why=(
        "A revision that reads the database (op.get_bind(), a SELECT to decide what to run) has no "
        "offline SQL, so none of the SQL rules could judge it."
    ),
    safe="Review it by hand, or keep data-dependent logic out of schema revisions; allow the finding with the reason.",
    check=_check,
)
