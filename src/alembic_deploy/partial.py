"""Partly applied revisions: a revision some of whose statements are durable while the version
table does not record it, found from the journal's statement progress (:mod:`.progress`),
the version table and the schema.

When a run failed or died inside a revision, what happens next depends on what it left:

* the revision in flight had no durable statement: nothing of it was kept (PostgreSQL rolled its
  transaction back; on MySQL/MariaDB and SQLite none of its statements had committed). The next
  run applies it from the start;
* some of its statements are durable but the version table does not record it: the revision is
  **partly applied** (:class:`Partial`). Deploys refuse with
  :class:`~alembic_deploy.errors.PartialMigration` (exit 8, worded in :mod:`.aftermath`) until
  ``alembic-deploy repair`` (:mod:`.steps.repair`) settles it. Statements that were still running
  when the process died are settled by looking at the schema (:mod:`.schema_lookup`) when their
  effect is a recognizable schema object (a table, column, index or constraint); otherwise they
  are reported as uncertain.

SQLite with pysqlite is handled like MySQL: alembic runs SQLite DDL outside a transaction (the
driver opens one only before DML), so a revision can be partly applied there too, and is detected
the same way. PostgreSQL revisions are all-or-nothing except statements in an
``autocommit_block``, which are tracked and detected like MySQL DDL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .masking import scrub
from .progress.record import Progress, RevisionRecord, Statement
from .progress.sql_text import READ, excerpt, is_noise, is_version_statement, literal_syntax
from .schema_lookup import took_effect

if TYPE_CHECKING:
    from collections.abc import Mapping

    from sqlalchemy.engine import Engine

    from .alembic_env import AlembicProject
    from .deployment import Deployment
    from .journal import Journal

#: Outcomes after which nothing a run did is left unsettled.
SETTLED = ("applied", "noop", "rolled-back")


def find_partial(
    deployment: Deployment, journal: Journal, project: AlembicProject, exclude: int | None,
    outside: Mapping[int, tuple[Any, dict[str, Any]]] | None = None,
) -> Partial | None:
    """The partly applied revision recorded by the newest run with statement progress, if any.

    The newest such run decides: a run starts only after this check passed (or ``repair``
    settled it), so any older partial state was resolved before it. ``outside``: journal id ->
    (pid, newest progress record) that dead runs kept outside their ``running`` rows, read under
    the lock without moving them (``status``); each stands in for its row's own record.
    """
    row = journal.last_progress(exclude=exclude)
    if outside:
        dead = [r for r in journal.unfinished(exclude=exclude)
                if r["id"] in outside and outside[r["id"]][0] == r["pid"] and (row is None or r["id"] >= row["id"])]
        if dead:
            row = {**dead[-1], "progress": json.dumps(outside[dead[-1]["id"]][1])}
    if row is None or row["outcome"] in SETTLED:
        return None
    progress = read_progress(row)
    if progress is None:
        return None
    versions = versions_of(deployment.engine, progress)
    for entry in progress.revisions:
        # An upgrade is settled once the version table records it, a downgrade (rollback) once
        # it no longer does.
        if is_applied(project, entry.revision, versions) == (entry.direction == "upgrade"):
            continue
        applied, uncertain = _settle(deployment.engine, entry)
        if applied or uncertain:
            return Partial(project, deployment.engine, row, progress, entry, versions, applied, uncertain)
    return None


def describe(project: AlembicProject, revision: str) -> str:
    """The revision's description, for messages (also when the scripts no longer have it)."""
    try:
        return project.describe(revision)
    except Exception:  # noqa: BLE001 - a revision the scripts no longer have
        return "not in these migration scripts"


def is_applied(project: AlembicProject, revision: str, versions: tuple[str, ...]) -> bool:
    """Is ``revision`` in the version table or an ancestor of what is there?"""
    try:
        return revision not in {rev for rev, _ in project.upgrade_steps(revision, versions)}
    except Exception:  # noqa: BLE001 - a revision unknown to these scripts: only the table can tell
        return revision in versions


@dataclass
class Partial:
    """A revision some of whose statements are durable while the version table does not record it
    (or, for a downgrade, some of whose downgrade() statements are durable while it still does)."""

    project: AlembicProject
    engine: Engine
    row: dict[str, Any]
    progress: Progress
    entry: RevisionRecord
    versions: tuple[str, ...]
    #: Durable changes, in order (statements settled by looking at the schema included).
    applied: list[Statement]
    #: Statements that were running when the process died and may or may not have taken effect.
    uncertain: list[Statement]
    _statements: dict[str, list[str] | str] = field(default_factory=dict, repr=False)

    @property
    def revision(self) -> str:
        return self.entry.revision

    @property
    def direction(self) -> str:
        """``upgrade``, or ``downgrade``: the run was rolling the revision back."""
        return self.entry.direction

    @property
    def last_applied(self) -> int:
        return max((s.n for s in self.applied), default=0)

    def settled_statements(self) -> list[Statement]:
        """The recorded statements, those settled by looking at the schema as settled."""
        settled = {s.n: s for s in self.applied}
        return [settled.get(s.n, s) for s in self.entry.statements]

    @property
    def reverse(self) -> str:
        """The function that undoes what ran: downgrade() of an upgrade, upgrade() of a downgrade."""
        return "upgrade" if self.direction == "downgrade" else "downgrade"

    def statements(self, direction: str | None = None) -> list[str]:
        """The revision's statements as alembic's offline mode renders them (version-table
        bookkeeping left out), of the function that ran (``direction`` None) or of ``direction``;
        raises ValueError with the reason when they cannot be listed."""
        direction = direction or self.direction
        if direction not in self._statements:
            try:
                rendered = self.project.offline_sql(self.revision, direction)
                self._statements[direction] = [
                    s for s in rendered
                    if not is_noise(s) and not is_version_statement(s, self.progress.version_table)
                ]
            except Exception as exc:  # noqa: BLE001 - any failure means "cannot be listed"
                self._statements[direction] = scrub(f"{type(exc).__name__}: {' '.join(str(exc).split())}")[:300]
        found = self._statements[direction]
        if isinstance(found, str):
            raise ValueError(f"its {direction}() could not be rendered in alembic's offline mode ({found})")
        return found


def read_progress(row: dict[str, Any]) -> Progress | None:
    """The statement progress of a journal row (None: none recorded, or not readable)."""
    raw = row.get("progress")
    if not raw:
        return None
    try:
        progress = Progress.from_dict(json.loads(raw))
    except (ValueError, TypeError, KeyError):
        return None
    # Rows an earlier release wrote kept literals in the statement text this run may show.
    syntax = literal_syntax(progress.backend)
    for entry in progress.revisions:
        for statement in [*entry.statements, *([entry.failed] if entry.failed else [])]:
            statement.sql = excerpt(statement.sql, syntax)
    return progress


def versions_of(engine: Engine, progress: Progress) -> tuple[str, ...]:
    """What the version table the progress names holds now."""
    from .steps.verify import read_versions

    return read_versions(engine, progress.version_table, progress.version_table_schema)


def _settle(engine: Engine, entry: RevisionRecord) -> tuple[list[Statement], list[Statement]]:
    """(durable statements, uncertain statements) of ``entry``; a statement the process died in
    is settled by the schema when its effect can be looked up there."""
    applied: list[Statement] = []
    uncertain: list[Statement] = []
    for statement in entry.statements:
        if statement.kind == READ:
            continue
        if statement.applied:
            applied.append(statement)
        elif (statement.state == "running" and statement.may_commit) or statement.state == "undoing":
            verdict = took_effect(engine, statement.schema_effect)
            if verdict is None:
                uncertain.append(statement)
            elif verdict:
                applied.append(replace(statement, state="done", committed=True))
    return applied, uncertain
