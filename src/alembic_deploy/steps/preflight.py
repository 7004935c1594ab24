"""Checks that refuse a deploy before anything changes (exit 5)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import CheckRefused

if TYPE_CHECKING:
    from ..alembic_env import AlembicProject


def check_heads(project: AlembicProject, target: str) -> None:
    """``head`` with several heads is ambiguous: alembic would refuse too, less clearly."""
    heads = project.heads()
    if target == "head" and len(heads) > 1:
        raise CheckRefused(
            f"The migration scripts have {len(heads)} heads ({', '.join(sorted(heads))}), so "
            "'head' is ambiguous. Merge them with `alembic merge -m \"merge heads\" "
            f"{' '.join(sorted(heads))}` and commit the merge revision, or deploy with target "
            "'heads' to upgrade every branch.",
            heads=sorted(heads),
        )


def check_current(project: AlembicProject, current: tuple[str, ...]) -> None:
    """A database revision the scripts do not know means the code is older than the database."""
    unknown = [rev for rev in current if not project.knows(rev)]
    if unknown:
        raise CheckRefused(
            f"The database is at revision {', '.join(unknown)}, which these migration scripts "
            "do not contain: the code being deployed is older than the database (a code "
            "rollback, or a branch that was migrated elsewhere). Deploy the code that contains "
            "that revision, or downgrade the database with the code that does.",
            database_revisions=list(current),
            code_heads=list(project.heads()),
        )
