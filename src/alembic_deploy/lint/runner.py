"""Run every rule that claims a dialect over one revision."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .compatibility import classify
from .finding import Finding
from .parsers import dialect_of, parser
from .revision import LintInput
from .rules import RULES

if TYPE_CHECKING:
    from ..alembic_offline import RenderedStatement
    from .change import Change


@dataclass
class RevisionLint:
    """The lint of one revision: its compatibility class and findings (allowed ones included)."""

    revision: str
    file: str
    compatibility: str
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "file": self.file, "compatibility": self.compatibility,
                "findings": [f.to_dict() for f in self.findings]}


def read_changes(statements: list[RenderedStatement], dialect: str) -> list[Change]:
    """The changes of a revision's statements, in order; those on a table the revision created
    before them carry the ``new-table`` flag."""
    read = parser(dialect)
    created: set[str] = set()
    found: list[Change] = []
    for statement in statements:
        for change in read(statement):
            if change.kind != "create-table" and change.table in created:
                change = dataclasses.replace(change, flags=change.flags | {"new-table"})
            elif change.kind == "create-table" and change.table:
                created.add(change.table)
            found.append(change)
    return found


def lint_revision(
    revision: str,
    file: str,
    source: str,
    dialect: str,
    statements: list[RenderedStatement] | None,
    *,
    options: dict[str, Any] | None = None,
    render_error: str | None = None,
    render_error_line: int | None = None,
    transaction_per_migration: bool | None = None,
) -> RevisionLint:
    """Lint one revision rendered for ``dialect`` (``statements`` is None when it could not be
    rendered: ``render_error`` says why). Findings an ``allow`` comment names keep its reason.
    ``transaction_per_migration`` is env.py's (None: not known; Alembic's default is off)."""
    dialect = dialect_of(dialect)
    changes = read_changes(statements or [], dialect)
    given = LintInput(revision, file, source, dialect, changes, dict(options or {}), render_error,
                      render_error_line, transaction_per_migration)
    allowed = given.allowed
    findings: list[Finding] = []
    for rule in RULES:
        if dialect not in rule.dialects:
            continue
        for hit in rule.check(given):
            statement = hit.change.statement if hit.change is not None else None
            line = hit.line if hit.line is not None else (statement.line if statement is not None else None)
            findings.append(Finding(
                rule.id, rule.severity, revision, file, line, hit.message, rule.safe,
                statement.sql if statement is not None else None, allowed.get(rule.id),
            ))
    findings.sort(key=lambda f: (f.line is None, f.line or 0))
    compatibility = classify(changes) if render_error is None else "other"
    return RevisionLint(revision, file, compatibility, findings)
