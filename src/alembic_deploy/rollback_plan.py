"""``alembic-deploy rollback``: what to undo, shown and judged before anything runs.

The run itself goes through the pipeline every migration takes (:mod:`alembic_deploy.pipeline`,
with a downgrade :class:`~alembic_deploy.alembic_env.Motion`): wait, lock, journal, timeouts,
retries, SIGTERM, partly applied revisions, verification. This module makes the plan it runs:

* the **target**: by default the version table as it was before the newest deploy the journal
  records ``applied`` that no rollback undid yet (its ``from_revisions``: one deploy may have
  applied several revisions, a merge among them); ``--to REV`` (what ``alembic downgrade REV``
  does), ``--steps N`` (the last N revisions, in the order alembic undoes them) or ``--deploy ID``
  (the revisions journal row ID applied, only when no revision applied after them depends on one);
* each revision to undo, in order, with the SQL its downgrade() renders offline for the dialect
  and the lint's view of it (:mod:`alembic_deploy.lint.downgrade`: ``irreversible``, refused
  unless ``--force``; ``destructive-downgrade``, shown);
* the schema guard's verdict (:func:`alembic_deploy.guard.evaluate`) for the code that runs on
  the database afterwards (these scripts' heads, or ``--code-head``, with its ``requires=`` as
  ``--requires``): a target below what that code needs is refused unless ``--force``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import CheckRefused, ConfigError

if TYPE_CHECKING:
    from .alembic_env import AlembicProject, Motion
    from .deployment import Deployment
    from .guard import SchemaCheck
    from .lint import Finding


@dataclass(frozen=True)
class RollbackRequest:
    """What the command line asked for; at most one of ``to``, ``steps`` and ``deploy``."""

    to: str | None = None
    steps: int | None = None
    deploy: int | None = None
    #: Run irreversible revisions, and go below what the code needs.
    force: bool = False
    #: The head of the code that runs on the database after the rollback (None: these scripts').
    code_head: str | None = None
    #: What that code passes the schema guard as ``requires=``.
    requires: tuple[str, ...] = ()

    def validate(self) -> None:
        given = [flag for flag, value in (("--to", self.to), ("--steps", self.steps), ("--deploy", self.deploy))
                 if value is not None]
        if len(given) > 1:
            raise ConfigError(
                f"rollback takes one target: {' and '.join(given)} were both given. Use --to REV, --steps N, "
                "--deploy JOURNAL_ID, or none (the last deploy)."
            )
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"--steps must be 1 or more, got {self.steps}.")


@dataclass
class UndoStep:
    """One revision to undo: its downgrade() rendered for the dialect, and the lint's findings."""

    revision: str
    description: str
    file: str
    down_revisions: tuple[str, ...]
    sql: list[str]
    render_error: str | None = None
    findings: list[Finding] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"revision": self.revision, "description": self.description, "file": self.file,
                "down_revisions": list(self.down_revisions), "sql": self.sql, "render_error": self.render_error,
                "findings": [f.to_dict() for f in self.findings]}


@dataclass
class RollbackPlan:
    """What a rollback will do, before it does it (``--dry-run`` prints only this)."""

    dialect: str
    current: tuple[str, ...]
    #: The version table once it is done.
    target: tuple[str, ...]
    #: How the target was chosen, in words ("before deploy #5", "--to a1", "--steps 2").
    chosen: str
    #: The journal id of the deploy it undoes (default and ``--deploy``), else None.
    undoes: int | None
    #: ``--to REV``: alembic's own target; otherwise the run undoes exactly :attr:`steps`.
    alembic_target: str | None
    steps: list[UndoStep] = field(default_factory=list)
    #: The schema guard's verdict for the code at the target (None: no code head to judge).
    guard: SchemaCheck | None = None
    code_head: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)

    @property
    def irreversible(self) -> list[Finding]:
        return [f for s in self.steps for f in s.findings if f.rule == "irreversible"]

    @property
    def needed(self) -> list[str]:
        """Revisions the code at :attr:`code_head` needs that the rollback would undo (what the
        guard holds against revisions the database never had is no business of the rollback)."""
        if self.guard is None:
            return []
        undone = {s.revision for s in self.steps}
        return [p.revision for p in self.guard.pending if not p.tolerated and p.revision in undone]

    def motion(self) -> Motion:
        from .alembic_env import Motion

        if self.alembic_target is not None:
            return Motion("downgrade", self.alembic_target, expected_from=self.current)
        # The target env.py may read (context.get_revision_argument()): one revision, as alembic passes.
        return Motion("downgrade", self.target[0] if self.target else "base", tuple(s.revision for s in self.steps),
                      expected_from=self.current)

    def refusal(self, force: bool) -> CheckRefused | None:
        """Why the rollback must not run without ``--force`` (None: it may)."""
        if force:
            return None
        reasons, fields = [], {}
        if self.irreversible:
            names = sorted({f.revision for f in self.irreversible})
            reasons.append(
                f"{', '.join(names)} cannot be rolled back: "
                + "; ".join(f"{f.revision}: {f.message}" for f in self.irreversible)
                + ". Restore a backup instead, or pass --force to run the downgrade anyway (it undoes nothing "
                "of those revisions but removes them from the version table, or fails)."
            )
            fields["irreversible"] = names
        if self.needed:
            head = ", ".join(self.code_head)
            older = (f" (the release before, at {self.target[0]}: --code-head {self.target[0]})"
                     if len(self.target) == 1 else "")
            reasons.append(
                f"The code at {head} needs revision(s) {', '.join(self.needed)}, which the rollback would undo "
                f"(schema guard: {self.guard.verdict if self.guard else '?'}): it would fail on the schema left "
                "behind. Roll the code back first and pass the head of the code that then runs as "
                f"--code-head{older}, mark the revisions expand-only if that code runs without them, or pass "
                "--force."
            )
            fields["code_needs"] = self.needed
        if not reasons:
            return None
        return CheckRefused(" ".join(reasons) + " Nothing was changed.", **fields)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dialect": self.dialect, "current": list(self.current), "target": list(self.target),
            "chosen": self.chosen, "undoes": self.undoes, "alembic_target": self.alembic_target,
            "revisions": [s.to_dict() for s in self.steps], "code_head": list(self.code_head),
            "guard": self.guard.to_dict() if self.guard is not None else None, "warnings": self.warnings,
        }

    def render_text(self) -> str:
        frm, to = ", ".join(self.current) or "<base>", ", ".join(self.target) or "<base>"
        lines = [(f"rollback plan: {frm} -> {to} ({self.chosen}; {self.dialect}), "
                  f"{len(self.steps)} revision(s) to undo, in this order:")]
        for s in self.steps:
            lines.append("")
            lines.append(f"{s.revision}  {s.description}")
            lines.append(f"  file: {s.file}")
            if s.render_error:
                lines.append(f"  downgrade() cannot render offline: {s.render_error}")
            lines.extend(f"    {line}" for sql in s.sql for line in sql.splitlines())
            for f in s.findings:
                state = f"allowed: {f.allowed}" if f.allowed is not None else f.severity.value
                lines.append(f"  {f.rule} [{state}] line {f.line or '-'}: {f.message}")
        if self.guard is not None:
            lines += ["", f"schema guard for the code at {', '.join(self.code_head)}: {self.guard.verdict}"]
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def make_plan(deployment: Deployment, project: AlembicProject, request: RollbackRequest,
              current: tuple[str, ...]) -> RollbackPlan:
    """The plan for a database at ``current`` (read through env.py): raises ConfigError (exit 2)
    for a request that names nothing usable, CheckRefused (exit 5) for one that cannot be done."""
    from .alembic_env import Motion

    request.validate()
    unknown = [r for r in current if not project.knows(r)]
    if unknown:
        raise CheckRefused(
            f"The database is at {', '.join(unknown)}, which these migration scripts do not contain: their "
            "downgrade() is not here. Roll back with the code that has those revisions.",
            database_revisions=list(current),
        )
    dialect = deployment.engine.dialect.name
    journal = deployment.journal()
    undoes: int | None = None
    warnings: list[str] = []
    alembic_target = None
    if request.to is not None:
        motion = Motion("downgrade", request.to)
        chosen, alembic_target = f"--to {request.to}", request.to
        undo = [rev for rev, _ in project.steps(motion, current)]
    elif request.steps is not None:
        walk = [rev for rev, _ in project.steps(Motion("downgrade", "base"), current)]
        if request.steps > len(walk):
            raise ConfigError(
                f"--steps {request.steps} asks for more than the {len(walk)} revision(s) applied "
                f"({', '.join(current) or '<base>'}). Give --steps {len(walk) or 1} or less, or --to base."
            )
        undo, chosen = walk[: request.steps], f"--steps {request.steps}"
    else:
        rows = journal.deploys(deployment.settings.env)
        row = _deploy_row(rows, request.deploy, deployment.settings.env)
        undoes = int(row["id"])
        if request.deploy is not None:
            undo, chosen = _undo_deploy(project, row, current), f"--deploy {undoes}"
        else:
            chosen = f"before deploy #{undoes}"
            before = _revisions(row["from_revisions"])
            below = project.ancestry(before)
            undo = [rev for rev, _ in project.steps(Motion("downgrade", "base"), current) if rev not in below]
            left = _revisions(row["to_revisions"])
            if sorted(left) != sorted(current):
                warnings.append(
                    f"deploy #{undoes} left the database at {', '.join(left) or '<base>'}, and it is at "
                    f"{', '.join(current) or '<base>'} now (changed outside alembic-deploy's journal since): "
                    f"the rollback returns it to {', '.join(before) or '<base>'} all the same"
                )
    target = project.heads_of(sorted(project.ancestry(current) - set(undo)))
    plan = RollbackPlan(dialect, current, target, chosen, undoes, alembic_target, warnings=warnings)
    # Alembic's INFO lines ("Generating static SQL") would read as if something ran.
    logging.disable(logging.INFO)
    try:
        plan.steps = [undo_step(project, rev, dialect) for rev in undo]
    finally:
        logging.disable(logging.NOTSET)
    _judge(project, plan, request)
    return plan


def _revisions(text: str | None) -> tuple[str, ...]:
    return tuple(r for r in (text or "").split(",") if r)


def _deploy_row(rows: list[dict[str, Any]], wanted: int | None, env: str | None) -> dict[str, Any]:
    """The journal row to undo: ``wanted``, or the newest applied upgrade no rollback undid."""
    undone = {int(r["undoes"]): int(r["id"]) for r in rows
              if r["command"] == "rollback" and r["outcome"] == "rolled-back" and r["undoes"] is not None}
    where = f" for environment {env!r}" if env else ""
    if wanted is not None:
        row = next((r for r in rows if int(r["id"]) == wanted), None)
        if row is None or row["command"] != "upgrade" or row["outcome"] != "applied":
            raise ConfigError(
                f"Journal row #{wanted} is not a deploy that applied revisions{where} (see `alembic-deploy "
                "history`: --deploy takes the id of an upgrade whose outcome is applied)."
            )
        if wanted in undone:
            raise CheckRefused(f"Deploy #{wanted} was rolled back already (by #{undone[wanted]}); nothing was changed.")
        return row
    for row in rows:
        if row["command"] == "upgrade" and row["outcome"] == "applied" and int(row["id"]) not in undone:
            return row
    raise CheckRefused(
        f"The journal records no deploy{where} that applied revisions and was not rolled back already, so there "
        "is no last deploy to undo. Name the target: --to REV or --steps N (see `alembic-deploy history`)."
    )


def _undo_deploy(project: AlembicProject, row: dict[str, Any], current: tuple[str, ...]) -> list[str]:
    """The revisions deploy ``row`` applied that are still applied, when nothing applied after them
    depends on one of them; in the order alembic undoes them."""
    from .alembic_env import Motion

    applied_by = set(_applied_by(project, row))
    applied = project.ancestry(current)
    undo = [rev for rev, _ in project.steps(Motion("downgrade", "base"), current) if rev in applied_by]
    staying = applied - set(undo)
    for rev in [n.revision for n in project.nodes() if n.revision in staying]:  # base first
        needs = sorted(project.ancestry([rev]) & set(undo))
        if needs:
            raise CheckRefused(
                f"Deploy #{row['id']} cannot be undone on its own: revision {rev} ({project.describe(rev)}), "
                f"applied after it, depends on {', '.join(needs)}, which it applied. Roll back the later deploy "
                f"first, or roll back to before both with --to.",
                revision=rev, depends_on=needs,
            )
    return undo


def _applied_by(project: AlembicProject, row: dict[str, Any]) -> list[str]:
    """What a journal row applied: its ``revisions`` listed ``applied``, else what lies between its
    from and to revisions."""
    try:
        entries = json.loads(row["revisions"] or "[]")
    except ValueError:
        entries = []
    listed = [str(e["revision"]) for e in entries if isinstance(e, dict) and e.get("status") == "applied"]
    if listed:
        return listed
    before = project.ancestry(_revisions(row["from_revisions"]))
    return sorted(project.ancestry(_revisions(row["to_revisions"])) - before)


def undo_step(project: AlembicProject, revision: str, dialect: str) -> UndoStep:
    """``revision``'s downgrade() rendered offline for ``dialect``, with the lint's findings."""
    from .alembic_env import read_revision_file
    from .lint.downgrade import destructive, irreversible
    from .lint.offline import render

    path = project.path(revision) or ""
    step = UndoStep(revision, project.describe(revision), path, project.down_revisions(revision), [])
    found = read_revision_file(Path(path)) if path else None
    if found is None or found.module is None:
        step.render_error = found.error if found is not None and found.error else "the revision file was not found"
        return step
    down = render(found, dialect, direction="downgrade")
    step.sql = [st.sql for st in down.statements or ()]
    step.render_error = down.error
    step.findings = irreversible(found)
    if down.statements is not None:
        step.findings += destructive(found, render(found, dialect).statements, down.statements)
    return step


def _judge(project: AlembicProject, plan: RollbackPlan, request: RollbackRequest) -> None:
    """The schema guard's verdict for the code at ``request.code_head`` (else these scripts'
    heads) on the database the rollback leaves."""
    from .guard import ScriptGraph, evaluate

    nodes = project.nodes()
    heads = project.heads()
    if request.code_head is not None:
        if not project.knows(request.code_head):
            raise ConfigError(
                f"--code-head {request.code_head} is not a revision of these migration scripts. Give the head "
                "revision of the code that runs on the database after the rollback."
            )
        keep = project.ancestry([request.code_head])
        nodes = tuple(n for n in nodes if n.revision in keep)
        heads = (request.code_head,)
    plan.code_head = tuple(heads)
    graph = ScriptGraph(str(project.config.config_file_name), tuple(heads), nodes)
    unknown = [r for r in request.requires if not graph.knows(r)]
    if unknown:
        raise ConfigError(
            f"--requires {', '.join(unknown)}: not a revision of the code at {', '.join(heads)}. Give the "
            "revisions that code passes the schema guard as requires=."
        )
    plan.guard = evaluate(plan.target, graph, requires=request.requires)
