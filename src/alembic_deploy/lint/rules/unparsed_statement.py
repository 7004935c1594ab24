"""`unparsed-statement`: a statement the parser could not read, so no rule could judge it."""

from __future__ import annotations

from ..finding import Severity
from ..rule import EVERY_DIALECT, Rule, per_change

RULE = Rule(
    id="unparsed-statement",
    severity=Severity.WARNING,
    dialects=EVERY_DIALECT,
    why="The lint could not read this statement, so none of its rules judged it: it is never passed silently.",
    safe="Read it yourself; if it is safe, allow the finding with the reason in the revision file.",
    check=per_change(
        lambda c: c.kind == "unparsed",
        lambda c: f"the statement could not be parsed ({c.detail}): {c.statement.sql[:80]}",
        new_tables=True,
    ),
)
