"""Checks that refuse a deploy before anything changes (exit 5)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import CheckRefused
from ..observer import event

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ..alembic_env import AlembicProject, Motion
    from ..lint import RevisionLint
    from ..policy import Policy
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


def check_unmoved(motion: Motion, current: tuple[str, ...]) -> None:
    """A run planned from one version table (a rollback, shown and confirmed first) refuses when,
    holding the lock, it finds the database elsewhere: another deploy moved it since."""
    expected = motion.expected_from
    if expected is not None and sorted(current) != sorted(expected):
        raise CheckRefused(
            f"The database is at {', '.join(sorted(current)) or '<base>'}, not at "
            f"{', '.join(sorted(expected)) or '<base>'} as when the {motion.direction} was planned: another "
            f"deploy moved it in between. Nothing was changed; run the command again to plan from where it is now.",
            database_revisions=list(current),
        )


def lint_mode(settings: Settings) -> tuple[str, Policy | None]:
    """What upgrade does with the lint (``--lint``, ``ALEMBIC_DEPLOY_LINT``, ``lint`` in pyproject),
    and the environment policy that applies: ``enforce`` by default when ``--env`` has a policy
    (``[tool.alembic-deploy.env.NAME]``), ``off`` otherwise, so a project without policies deploys as
    plain alembic does, without rendering every pending revision offline first."""
    from ..policy import choose

    policy = choose(settings.policies, settings.env) if settings.env else None
    return settings.lint or ("enforce" if policy is not None else "off"), policy


def check_lint(project: AlembicProject, planned: Sequence[str], settings: Settings, dialect: str,
               echo: Callable[[str], None], warn: Callable[[str], None]) -> None:
    """Lint the revisions about to run as ``plan --env`` would, under the lock before the first of
    them (:func:`lint_mode` says whether). ``enforce`` refuses the deploy (exit 5, nothing applied)
    on a finding at or above the policy's ``fail-on`` (``--fail-on``; default error) that neither the
    revision file nor the policy allows; ``warn`` passes each such finding to ``warn`` and goes on,
    and a lint that cannot run at all (the ``lint`` extra missing) is one more warning, never a
    failure. SQLite, which the lint does not read, passes with a note."""
    mode, policy = lint_mode(settings)
    if mode == "off" or not planned:
        return
    from ..lint import DIALECTS, blocking

    who = f"the {policy.name} policy" if policy is not None else f"--lint {mode}"
    if dialect not in DIALECTS:
        echo(event("policy_skipped", f"note: {who} was not applied: the lint does not read {dialect} SQL.",
                   policy=policy.name if policy is not None else None, dialect=dialect))
        return
    from ..policy import apply, fail_on

    try:
        lints = _lint(project, planned, dialect)
        apply(policy, lints)
    except Exception as exc:  # warn must never fail a deploy plain alembic would run
        if mode == "enforce":
            raise
        warn(f"the lint did not run ({exc}); the revisions were not linted")
        return
    floor = fail_on(settings.fail_on, policy)
    found = blocking((f for lint in lints for f in lint.findings), floor)
    lines = [f"{f.revision} line {f.line or '-'}: {f.rule} ({f.severity.value}) {f.message}" for f in found]
    if mode == "warn":
        for line in lines:
            warn(f"lint: {line}")
        return
    if found:
        raise CheckRefused(
            f"{who[0].upper()}{who[1:]} blocks {len(found)} lint finding(s) at or above {floor} in the "
            "revisions about to run; nothing was applied. See them with `alembic-deploy plan"
            f"{f' --env {policy.name}' if policy is not None else ''}`; fix them, allow one in its revision file "
            "with `# alembic-deploy: allow RULE -- reason`, or deploy with `--lint warn` to apply them anyway.",
            findings=lines,
        )


def _lint(project: AlembicProject, planned: Sequence[str], dialect: str) -> list[RevisionLint]:
    from ..alembic_env import read_revision_file
    from ..lint.env_options import read_env_options
    from ..lint.offline import lint_revision_file

    env = read_env_options(Path(project.script.env_py_location))
    lints = []
    for rev in planned:
        path = project.path(rev)
        found = read_revision_file(Path(path)) if path else None
        if found is not None and found.error is None:
            lints.append(lint_revision_file(found, dialect, env))
    return lints
