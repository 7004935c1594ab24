"""What the rules read about one revision: its changes, its file's source, its markers."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from .change import Change

#: ``# alembic-deploy: allow drop-column, rename-column -- column unused since 2.3``
ALLOW: Final = re.compile(r"#\s*alembic-deploy:\s*allow\s+([a-z0-9, -]+?)\s+--\s*(\S.*)$")


@dataclass
class LintInput:
    revision: str
    file: str
    source: str
    dialect: str
    changes: list[Change]
    #: The revision file's ``alembic_deploy`` dict.
    options: dict[str, Any] = field(default_factory=dict)
    #: Why the revision could not be rendered offline (its changes are then empty), and where.
    render_error: str | None = None
    render_error_line: int | None = None
    #: env.py's ``transaction_per_migration`` (None: not known): off, the revision's transaction
    #: goes on through every later revision of the same upgrade.
    transaction_per_migration: bool | None = None

    @cached_property
    def tree(self) -> ast.Module | None:
        try:
            return ast.parse(self.source)
        except SyntaxError:
            return None

    @cached_property
    def allowed(self) -> dict[str, str]:
        """Rule id -> the reason an ``allow`` comment of the file gives for it."""
        found: dict[str, str] = {}
        if "alembic-deploy:" not in self.source:  # most files: no need to tokenize them
            return found
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(self.source).readline))
        except (tokenize.TokenError, SyntaxError):
            return found
        for token in tokens:
            if token.type == tokenize.COMMENT:
                match = ALLOW.match(token.string)
                if match:
                    for rule in match.group(1).replace(",", " ").split():
                        found[rule] = match.group(2).strip()
        return found

    @cached_property
    def transactions(self) -> list[int | None]:
        """For each change, the number of the transaction it runs in (None: autocommit), so two
        changes share a transaction exactly when their numbers are equal and not None."""
        numbers: list[int | None] = []
        current, previous_in = 0, False
        seen: dict[int, int | None] = {}
        for change in self.changes:
            st = change.statement
            key = id(st)
            if key not in seen:
                if st.in_transaction and not previous_in:
                    current += 1
                previous_in = st.in_transaction
                seen[key] = current if st.in_transaction else None
            numbers.append(seen[key])
        return numbers

    @cached_property
    def new_tables(self) -> set[str]:
        return {c.table for c in self.changes if c.kind == "create-table" and c.table}

    def function(self, name: str) -> ast.FunctionDef | None:
        """The module-level ``def name`` of the revision file."""
        if self.tree is None:
            return None
        for node in self.tree.body:
            if isinstance(node, ast.FunctionDef) and node.name == name:
                return node
        return None
