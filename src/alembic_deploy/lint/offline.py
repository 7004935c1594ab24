"""Lint a revision file as it renders offline for a dialect (no database, no env.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .runner import RevisionLint, lint_revision

if TYPE_CHECKING:
    from ..alembic_offline import RevisionFile


def lint_revision_file(found: RevisionFile, dialect: str) -> RevisionLint:
    """Render ``found``'s upgrade() for ``dialect`` and lint it. A revision that raises when
    rendered (it reads the database, say) is linted from its file alone, with a ``not-renderable``
    finding at the line that raised."""
    from ..alembic_env import render_error_line, render_offline

    if found.revision is None:
        raise ValueError(f"{found.path} is not a revision that imported")
    try:
        statements, error, line = render_offline(found, dialect), None, None
    except Exception as exc:  # noqa: BLE001 - whatever the revision raises offline is reported, not raised
        statements, error, line = None, f"{type(exc).__name__}: {exc}", render_error_line(exc, found.path)
    return lint_revision(found.revision, str(found.path), found.source, dialect, statements,
                         options=found.options, render_error=error, render_error_line=line)
