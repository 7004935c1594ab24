"""`irreversible`: the revision's downgrade() does nothing or refuses (while its upgrade() does
something: a merge revision's two empty functions undo each other)."""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING

from ..finding import Severity
from ..rule import EVERY_DIALECT, Hit, Rule

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ..revision import LintInput


def _empty(body: list[ast.stmt]) -> bool:
    """Only ``pass``, ``...`` or a docstring."""
    return all(
        isinstance(node, ast.Pass) or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))
        for node in body
    )


def _refuses(node: ast.FunctionDef) -> bool:
    for item in ast.walk(node):
        if isinstance(item, ast.Raise) and item.exc is not None:
            raised = item.exc.func if isinstance(item.exc, ast.Call) else item.exc
            if isinstance(raised, ast.Name) and raised.id == "NotImplementedError":
                return True
    return False


def _check(revision: LintInput) -> Iterator[Hit]:
    if revision.tree is None:
        return
    upgrade = revision.function("upgrade")
    if upgrade is not None and _empty(upgrade.body):
        return  # a merge revision, or one that changes nothing: there is nothing to undo
    downgrade = revision.function("downgrade")
    if downgrade is None:
        yield Hit("the revision has no downgrade()", line=1)
    elif _empty(downgrade.body):
        yield Hit("downgrade() is empty: the revision cannot be rolled back", line=downgrade.lineno)
    elif _refuses(downgrade):
        yield Hit("downgrade() raises NotImplementedError: the revision cannot be rolled back",
                  line=downgrade.lineno)


RULE = Rule(
    id="irreversible",
    severity=Severity.WARNING,
    dialects=EVERY_DIALECT,
    why="A deploy that goes wrong cannot be undone by `alembic downgrade`; the way back is a restore.",
    safe=(
        "Write the downgrade; if the change truly cannot be undone (data dropped), say so with an allow "
        "comment and take a backup before it runs."
    ),
    check=_check,
)
