"""Does this deploy need a backup, and of which tables?

The ``backup`` setting (flag, ``ALEMBIC_DEPLOY_BACKUP``, ``[tool.alembic-deploy]``), else the
``--env`` policy's ``backup``, else ``never``:

* ``never``; ``always`` (whenever a revision is pending);
* ``destructive``: a pending revision has a finding of a destructive lint rule
  (:data:`DESTRUCTIVE_RULES`, or the policy's ``backup-before`` list of rule ids and compatibility
  classes when it has one). A revision the lint cannot read counts as destructive: the SQL of a
  dialect the lint does not parse (SQLite), an install without the ``lint`` extra, a revision that
  does not render offline. When unsure, back up;
* ``major``: more than ``backup-major-revisions`` (default 5) revisions pending, or one whose file
  sets ``alembic_deploy = {"backup": True}``.

A rollback (:func:`decide_rollback`) follows the same policy over the revisions it undoes:
``destructive`` reads the rollback plan's findings (``destructive-downgrade``: a downgrade that
drops a table or column, or deletes rows; or any rule of the ``backup-before`` list), a downgrade
that does not render offline counting as destructive; ``major`` counts the revisions undone.

``--backup-tables auto`` limits the backup to the tables the pending revisions touch, as the lint's
parse reads them, and the version table; any statement whose table it cannot tell (or a revision it
cannot read) means the whole database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from ..errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..alembic_env import AlembicProject
    from ..lint.change import Change
    from ..lint.runner import RevisionLint
    from ..rollback_plan import UndoStep
    from ..settings import Settings

#: The lint rules whose findings mean data is lost by the revision.
DESTRUCTIVE_RULES: Final = frozenset({"drop-table", "drop-column", "drop-schema-or-database", "truncate"})
#: The rollback plan's rule for a downgrade that drops data (:mod:`alembic_deploy.lint.downgrade`).
DESTRUCTIVE_DOWNGRADE: Final = "destructive-downgrade"
DEFAULT_MAJOR_REVISIONS: Final = 5
#: Change kinds whose table, if any, does not bound what they reach.
_UNBOUNDED: Final = frozenset({"unparsed", "drop-schema", "drop-database", "drop-other", "alter-other", "rename-other"})


@dataclass(frozen=True)
class BackupPolicy:
    mode: str
    major_revisions: int
    on_failure: str
    #: Rule ids and compatibility classes that call for a backup under ``destructive``.
    before: frozenset[str]
    #: Where ``mode`` came from, for messages.
    source: str


def resolve_policy(settings: Settings) -> BackupPolicy:
    """The backup policy of this run: the settings over the ``--env`` policy over the defaults."""
    from ..policy import choose

    policy = choose(settings.policies, settings.env) if settings.env else None
    mode, source = settings.backup, "--backup"
    if mode is None and policy is not None:
        source = f"the {policy.name} policy"
        mode = policy.backup or ("destructive" if policy.backup_before else None)
    major = settings.backup_major_revisions
    if major is None:
        major = policy.backup_major_revisions if policy is not None else None
    on_failure = settings.backup_on_failure or (policy.backup_on_failure if policy is not None else None)
    before = policy.backup_before if policy is not None and policy.backup_before else DESTRUCTIVE_RULES
    return BackupPolicy(mode or "never", DEFAULT_MAJOR_REVISIONS if major is None else major,
                        on_failure or "stop", before, source)


@dataclass
class Decision:
    #: Why a backup is taken; None: none is.
    reason: str | None
    #: The tables to back up; None: the whole database.
    tables: tuple[str, ...] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass
class _Read:
    """What the lint read of one pending revision; ``lint`` None when it could not (``why``)."""

    revision: str
    lint: RevisionLint | None = None
    changes: list[Change] = field(default_factory=list)
    why: str | None = None


def decide(policy: BackupPolicy, pending: Sequence[str], project: AlembicProject, dialect: str,
           tables: str = "all") -> Decision:
    """Whether (and of what) to back up before applying ``pending`` (revision ids, in order)."""
    if policy.mode == "never" or not pending:
        return Decision(None)
    reads: list[_Read] | None = None
    notes: list[str] = []
    reason: str | None = None
    if policy.mode == "always":
        reason = f"{policy.source} says always"
    elif policy.mode == "major":
        reason = _by_count(policy, pending, project, "pending")
    else:
        reads = [_read(project, rev, dialect) for rev in pending]
        unread: dict[str, list[str]] = {}
        for read in reads:
            if read.lint is None:
                unread.setdefault(read.why or "", []).append(read.revision)
                reason = reason or f"{read.revision} could not be linted: {read.why}"
                continue
            hits = sorted({f.rule for f in read.lint.findings if f.rule in policy.before})
            if read.lint.compatibility in policy.before:
                hits.append(read.lint.compatibility)
            if hits and reason is None:
                reason = f"{read.revision} is destructive ({', '.join(hits)})"
        notes += [f"{', '.join(revs)} not linted ({why}): taken as destructive" for why, revs in unread.items()]
    if reason is None:
        return Decision(None, notes=notes)
    chosen = None
    if tables == "auto":
        reads = reads if reads is not None else [_read(project, rev, dialect) for rev in pending]
        chosen = touched(reads)
        if chosen is None:
            notes.append("--backup-tables auto: a statement's tables could not be told, so the whole database")
    return Decision(reason, chosen, notes)


def decide_rollback(policy: BackupPolicy, steps: Sequence[UndoStep], project: AlembicProject) -> Decision:
    """Whether to back up before undoing ``steps`` (the rollback plan's, in order): always the
    whole database (``--backup-tables auto`` reads what an upgrade touches)."""
    if policy.mode == "never" or not steps:
        return Decision(None)
    undone = [step.revision for step in steps]
    notes: list[str] = []
    reason = _by_count(policy, undone, project, "undone")
    if policy.mode == "always":
        reason = f"{policy.source} says always"
    elif policy.mode == "destructive":
        unread = [step.revision for step in steps if step.render_error is not None]
        for step in steps:
            hits = sorted({f.rule for f in step.findings if f.rule in policy.before | {DESTRUCTIVE_DOWNGRADE}})
            if hits:
                reason = f"undoing {step.revision} is destructive ({', '.join(hits)})"
                break
        if reason is None and unread:
            reason = f"the downgrade of {unread[0]} could not be rendered"
        if unread:
            notes.append(f"{', '.join(unread)} not linted (the downgrade does not render offline): "
                         "taken as destructive")
    return Decision(reason, None, notes)


def _by_count(policy: BackupPolicy, revisions: Sequence[str], project: AlembicProject, verb: str) -> str | None:
    """``major``'s reason: a revision marked ``alembic_deploy = {"backup": True}``, or more than N."""
    if policy.mode != "major":
        return None
    marked = [rev for rev in revisions if project.options(rev).get("backup") is True]
    if marked:
        return f"{', '.join(marked)} asks for one (alembic_deploy = {{'backup': True}})"
    if len(revisions) > policy.major_revisions:
        return f"{len(revisions)} revisions are {verb}, more than {policy.major_revisions}"
    return None


def touched(reads: Sequence[_Read]) -> tuple[str, ...] | None:
    """The tables the revisions' statements name (None when one cannot be told), less those the
    revisions create (they do not exist yet)."""
    found: set[str] = set()
    created: set[str] = set()
    for read in reads:
        if read.lint is None:
            return None
        for change in read.changes:
            if change.kind in _UNBOUNDED:
                return None
            if change.kind == "create-table" and change.table:
                created.add(change.table)
            elif change.table:
                found.add(change.table)
            elif change.kind != "other":
                return None
    return tuple(sorted(found - created))


def _read(project: AlembicProject, revision: str, dialect: str) -> _Read:
    from ..alembic_env import read_revision_file
    from ..lint import DIALECTS

    if dialect not in DIALECTS:
        return _Read(revision, why=f"the lint does not read {dialect} SQL")
    path = project.path(revision)
    found = read_revision_file(Path(path)) if path else None
    if found is None or found.error is not None:
        return _Read(revision, why="its file could not be read on its own")
    from ..lint.offline import lint_rendered, render
    from ..lint.runner import read_changes

    rendered = render(found, dialect)
    if rendered.statements is None:
        return _Read(revision, why=f"it does not render offline ({rendered.error})")
    try:
        changes = read_changes(rendered.statements, dialect)
        lint = lint_rendered(found, dialect, rendered)
    except ConfigError:  # the parsers are the lint extra
        return _Read(revision, why="the lint extra is not installed (pip install 'alembic-deploy[lint]')")
    return _Read(revision, lint, changes)
