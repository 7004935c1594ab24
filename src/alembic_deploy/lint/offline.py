"""Lint a revision file as it renders offline for a dialect (no database, no env.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .env_options import EnvOptions
from .runner import RevisionLint, lint_revision

if TYPE_CHECKING:
    from ..alembic_offline import RenderedStatement, RevisionFile

#: Alembic's defaults: what the lint assumes when env.py's options are not known.
DEFAULTS = EnvOptions()


@dataclass(frozen=True)
class Rendered:
    """A revision's offline SQL, or why it has none (``error``, raised at ``line`` of its file)."""

    statements: list[RenderedStatement] | None
    error: str | None = None
    line: int | None = None

    @property
    def transactional(self) -> str:
        """``yes`` when every statement runs in the revision's transaction, ``no`` when none does
        (a dialect without transactional DDL), ``partly`` (an ``autocommit_block()``), ``unknown``."""
        if not self.statements:
            return "unknown" if self.statements is None else "yes"
        inside = {st.in_transaction for st in self.statements}
        return "partly" if len(inside) > 1 else ("yes" if inside == {True} else "no")


def render(found: RevisionFile, dialect: str, env: EnvOptions = DEFAULTS, direction: str = "upgrade") -> Rendered:
    """``found``'s upgrade() (or downgrade()) rendered for ``dialect`` as env.py's options ``env`` run
    it; one that raises offline (it reads the database, say) is returned with the error and the line
    of the file that raised."""
    from ..alembic_env import render_error_line, render_offline

    try:
        return Rendered(render_offline(found, dialect, direction, transactional_ddl=env.transactional_ddl))
    except Exception as exc:  # noqa: BLE001 - whatever the revision raises offline is reported, not raised
        return Rendered(None, f"{type(exc).__name__}: {exc}", render_error_line(exc, found.path))


def lint_rendered(found: RevisionFile, dialect: str, rendered: Rendered, env: EnvOptions = DEFAULTS) -> RevisionLint:
    if found.revision is None:
        raise ValueError(f"{found.path} is not a revision that imported")
    return lint_revision(found.revision, str(found.path), found.source, dialect, rendered.statements,
                         options=found.options, render_error=rendered.error, render_error_line=rendered.line,
                         transaction_per_migration=env.transaction_per_migration)


def lint_revision_file(found: RevisionFile, dialect: str, env: EnvOptions = DEFAULTS) -> RevisionLint:
    """Render ``found``'s upgrade() for ``dialect`` as env.py's options ``env`` run it, and lint it;
    a revision that cannot render is linted from its file alone, with a ``not-renderable`` finding
    at the line that raised."""
    return lint_rendered(found, dialect, render(found, dialect, env), env)
