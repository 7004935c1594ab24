"""The migration lint: rules over the SQL each revision renders for a dialect (and over its file).

Each rule lives in :mod:`alembic_deploy.lint.rules` (one module each, stable kebab-case ids); the
parsers (pglast for PostgreSQL, sqlglot for MySQL/MariaDB) are the ``lint`` extra, imported on
first use. See :func:`lint_revision`.
"""

from __future__ import annotations

from .compatibility import CONTRACT, EXPAND, OTHER, classify
from .finding import Finding, Severity, blocking
from .parsers import DIALECTS, dialect_of
from .rule import Rule
from .rules import BY_ID, RULES
from .runner import RevisionLint, lint_revision

__all__ = [
    "BY_ID",
    "CONTRACT",
    "DIALECTS",
    "EXPAND",
    "OTHER",
    "RULES",
    "Finding",
    "RevisionLint",
    "Rule",
    "Severity",
    "blocking",
    "classify",
    "dialect_of",
    "lint_revision",
]
