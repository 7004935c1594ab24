"""The compatibility class of a revision, read from its changes: ``expand`` when every change is
additive (the code already running keeps working with or without it), ``contract`` when it only
removes, ``other`` otherwise (renames, type changes, new constraints, ...). Data statements
(INSERT, UPDATE, DELETE) and session statements do not change the class of the DDL around them;
a revision with no DDL at all is ``other``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Iterable

    from .change import Change

EXPAND: Final = "expand"
CONTRACT: Final = "contract"
OTHER: Final = "other"
_NEUTRAL: Final = frozenset({"insert", "update", "delete", "other"})
_REMOVING: Final = frozenset({
    "drop-table", "drop-column", "drop-index", "drop-constraint", "drop-schema", "drop-database", "drop-other",
    "drop-default",
})


def additive(change: Change) -> bool:
    """Does ``change`` only add something the running code does not depend on?"""
    if change.kind in ("create-table", "create-other", "add-enum-value", "drop-not-null", "set-default"):
        return True
    if change.kind == "create-index":
        return not change.has("unique") or change.on_new_table
    if change.kind == "add-column":
        required = change.has("not-null") and not change.has("default")
        return change.on_new_table or not (required or change.has("unique") or change.has("primary-key"))
    return change.on_new_table and change.kind == "add-constraint"


def removing(change: Change) -> bool:
    return change.kind in _REMOVING


def classify(changes: Iterable[Change]) -> str:
    ddl = [c for c in changes if c.kind not in _NEUTRAL]
    if ddl and all(additive(c) for c in ddl):
        return EXPAND
    if ddl and all(removing(c) for c in ddl):
        return CONTRACT
    return OTHER
