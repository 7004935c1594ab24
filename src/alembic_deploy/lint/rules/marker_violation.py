"""`marker-violation`: a revision's ``alembic_deploy`` marker disagrees with what it does."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ..compatibility import additive, removing
from ..finding import Severity
from ..rule import EVERY_DIALECT, Hit, Rule

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..revision import LintInput

_DATA = ("insert", "update", "delete", "other")
#: marker -> (what every change of a revision so marked must be, and what it says otherwise).
_MARKERS: Final = {
    "expand_only": (additive, "is not additive: the schema guard would let old code run against it"),
    "contract": (removing, "does not remove anything"),
}


def _check(revision: LintInput) -> Iterator[Hit]:
    for marker, (fits, otherwise) in _MARKERS.items():
        if not revision.options.get(marker):
            continue
        for change in revision.changes:
            if change.kind not in _DATA and not fits(change):
                yield Hit(f"marked {marker}, but {change.kind} {change.table or change.name or ''} {otherwise}", change)


RULE = Rule(
    id="marker-violation",
    severity=Severity.ERROR,
    dialects=EVERY_DIALECT,
    why=(
        "The schema guard trusts alembic_deploy = {\"expand_only\": True} and {\"contract\": True}: a "
        "revision marked expand-only that drops or renames makes it call a database compatible that "
        "breaks the running code."
    ),
    safe="Split the revision: additive changes in the expand revision, removals in a later contract revision.",
    check=_check,
)
