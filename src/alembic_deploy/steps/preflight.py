"""Checks that refuse a deploy before anything changes (exit 5)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CheckRefused

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ..alembic_env import AlembicProject
    from ..settings import Settings


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


def check_lint(project: AlembicProject, planned: Sequence[str], settings: Settings, dialect: str,
               echo: Callable[[str], None]) -> None:
    """With an environment policy for ``--env`` (``[tool.alembic-deploy.env.NAME]``), lint the
    revisions about to run as ``plan --env`` would, and refuse the deploy before the first of them
    on a finding the policy blocks. Without such a policy nothing is linted (the parsers are the
    ``lint`` extra, needed only then); SQLite, which the lint does not read, passes with a note."""
    from ..policy import choose

    policy = choose(settings.policies, settings.env) if settings.env else None
    if policy is None or not planned:
        return
    from ..lint import DIALECTS, blocking

    if dialect not in DIALECTS:
        echo(f"note: the {policy.name} policy was not applied: the lint does not read {dialect} SQL.")
        return
    from ..alembic_env import read_revision_file
    from ..lint.offline import lint_revision_file
    from ..policy import apply, fail_on

    lints = []
    for rev in planned:
        path = project.path(rev)
        found = read_revision_file(Path(path)) if path else None
        if found is not None and found.error is None:
            lints.append(lint_revision_file(found, dialect))
    apply(policy, lints)
    floor = fail_on(settings.fail_on, policy)
    blocked = blocking((f for lint in lints for f in lint.findings), floor)
    if blocked:
        raise CheckRefused(
            f"The {policy.name} policy blocks {len(blocked)} lint finding(s) at or above {floor} in the "
            f"revisions about to run; nothing was applied. See them with `alembic-deploy plan --env "
            f"{policy.name}`; fix them, or allow one in its revision file with "
            "`# alembic-deploy: allow RULE -- reason`.",
            findings=[f"{f.revision} line {f.line or '-'}: {f.rule} ({f.severity.value}) {f.message}" for f in blocked],
        )
