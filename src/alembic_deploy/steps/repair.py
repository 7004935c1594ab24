"""``alembic-deploy repair``: settle a partly applied revision, explicitly, under the migration lock.

A partly applied revision (see :mod:`alembic_deploy.partial`) blocks every deploy with exit 8 until a person
chooses how to settle it. Each option is one ``repair`` run, journaled with its own row (command
``repair``; its ``progress`` names the action and tracks the statements it runs, so a repair that
dies midway is itself detected and can be repaired again):

``--resume``
    Run the statements of the revision that did not run, then record the revision as applied.
    Only when they can be identified reliably: the revision is rendered with alembic's offline
    (``--sql``) mode, the statements that ran must match the first statements of that rendering
    by fingerprint, and none of the remaining ones may already have taken effect in the schema.
``--rollback-partial``
    Undo the statements that ran with the statements of the revision's ``downgrade()`` (rendered
    offline) that reverse them, matched by the schema object they create or drop; the version
    table is left as it is, so the next deploy applies the revision from its start. Refused, listing
    them, when an applied statement has no recognizable undo (a data change, a multi-clause ALTER)
    or may not have made the change its undo reverses (``IF [NOT] EXISTS``, ``CREATE OR REPLACE``:
    see :func:`unprovable`).
``--mark-applied``
    Record the revision as applied without running anything, after a person completed it by hand.

Nothing is applied twice silently: every option checks the schema before it acts and refuses
with the reason when the recorded progress and the database disagree.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ..aftermath import partial_error
from ..errors import CheckRefused, ConfigError, MigrationFailed
from ..masking import scrub_statement
from ..observer import event
from ..partial import describe, is_applied
from ..progress.sql_text import READ, effect_of, excerpt, fingerprint, legacy_fingerprint, literal_syntax, shorten
from ..progress.tracker import ProgressTracker
from ..report import RevisionResult
from ..schema_lookup import took_effect

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from ..alembic_env import AlembicProject
    from ..backends.base import Backend
    from ..deployment import Deployment
    from ..journal import Journal
    from ..partial import Partial
    from ..progress.record import Statement
    from ..report import DeployReport

#: The options and what each does, as messages and ``--help`` say it.
OPTIONS: Final = {
    "resume": "run the statements that did not run, then record the revision as applied",
    "rollback-partial": "undo the statements that ran with the matching statements of the revision's downgrade()",
    "mark-applied": "record the revision as applied without running anything, after you completed it by hand",
}


@dataclass
class Plan:
    """What an option would run: (number of the upgrade statement concerned, SQL to run)."""

    statements: list[tuple[int, str]] = field(default_factory=list)
    summary: str = ""
    #: Why the option is not available (None: it is).
    refusal: str | None = None
    #: Numbers of the applied statements left as they are (``--keep``).
    kept: list[int] = field(default_factory=list)


def _refused(reason: str) -> Plan:
    return Plan(refusal=reason)


def _uncertain(partial: Partial) -> Plan | None:
    if not partial.uncertain:
        return None
    numbers = ", ".join(str(s.n) for s in partial.uncertain)
    return _refused(
        f"statement(s) {numbers} may or may not have taken effect and the schema cannot tell; complete "
        "or undo the revision by hand"
    )


def plan_resume(partial: Partial) -> Plan:
    """The statements after the last applied one, when the recorded ones provably are the
    revision's first statements and nothing of the rest is in the schema already."""
    refusal = _uncertain(partial)
    if refusal is not None:
        return refusal
    try:
        statements = partial.statements()
    except ValueError as exc:
        return _refused(str(exc))
    last = partial.last_applied
    syntax = literal_syntax(partial.progress.backend)
    recorded = {s.n: s for s in partial.settled_statements()}
    if last > len(statements):
        return _refused(f"{last} statements ran but the revision now renders only {len(statements)}")
    for n in range(1, last + 1):
        statement = recorded.get(n)
        if statement is None:
            return _refused(f"statement {n} was not recorded")
        if statement.fp not in (fingerprint(statements[n - 1], syntax), legacy_fingerprint(statements[n - 1])):
            return _refused(
                f"statement {n} as it ran ({shorten(statement.sql)}) differs from what the revision renders "
                f"offline ({shorten(excerpt(statements[n - 1], syntax))}); the revision file changed, or it does not "
                "render the same SQL offline"
            )
        if statement.kind != READ and not statement.applied:
            return _refused(f"statement {n} is not applied while statement {last} is")
    rest = [(n, sql) for n, sql in enumerate(statements, 1) if n > last]
    for n, sql in rest:
        effect = effect_of(sql)
        if effect is not None and took_effect(partial.engine, effect):
            return _refused(
                f"the schema already has what statement {n} {'creates' if effect.creates else 'drops'} "
                f"({effect.kind} {effect.name} {'exists' if effect.creates else 'is gone'}): "
                f"{shorten(excerpt(sql, syntax))}"
            )
    done = "applied" if partial.direction == "upgrade" else "rolled back"
    if rest:
        span = str(rest[0][0]) if len(rest) == 1 else f"{rest[0][0]}-{rest[-1][0]}"
        summary = f"run statement(s) {span}, then record {partial.revision} as {done}"
    else:
        summary = f"every statement ran: record {partial.revision} as {done}"
    return Plan(rest, summary)


def plan_rollback(partial: Partial, keep: Sequence[str] = ()) -> Plan:
    """For each applied statement, the downgrade() statement that reverses it, in downgrade order;
    refused, listing every such statement, when one of them may not have made the change it
    would undo (see :func:`unprovable`). ``keep``: names of objects left as they are (``--keep``):
    the statements that created or dropped them are not undone."""
    refusal = _uncertain(partial)
    if refusal is not None:
        return refusal
    kept = [s for s in partial.applied if _kept(s, keep)]
    unmatched = [name for name in keep if not any(_kept(s, [name]) for s in kept)]
    if unmatched:
        return _refused(
            f"--keep {', '.join(unmatched)}: no statement that ran created or dropped a table, column, index or "
            "constraint of that name"
        )
    applied = [s for s in partial.applied if s not in kept]
    in_flight = {s.n for s in partial.entry.statements if s.state == "running"}
    doubts = [(s, why) for s in applied if (why := unprovable(s, s.n in in_flight))]
    if doubts:
        names = " ".join(f"--keep {effect.name}" for s, _ in doubts if (effect := s.schema_effect) is not None)
        them = "them as they are" if len(doubts) > 1 else "it as it is"
        escape = f"; to undo the rest and leave {them} (e.g. it was there before the revision ran), add {names}" \
            if names else ""
        return _refused(
            "undoing a statement is safe only when it provably made the change in that run, and "
            + "; ".join(f"statement {s.n} ({shorten(s.sql)}) {why}" for s, why in doubts) + escape
        )
    try:
        downgrade = partial.statements(partial.reverse)
    except ValueError as exc:
        return _refused(str(exc))
    reverses = [(i, sql, effect_of(sql)) for i, sql in enumerate(downgrade)]
    undo: list[tuple[int, int, str]] = []
    missing: list[str] = []
    for statement in applied:
        effect = statement.schema_effect
        assert effect is not None  # unprovable() refused those without one
        match = next(((i, sql) for i, sql, e in reverses if e is not None and effect.undone_by(e)), None)
        if match is None:
            missing.append(f"{statement.n} ({shorten(statement.sql)})")
        else:
            undo.append((match[0], statement.n, match[1]))
    if missing:
        return _refused(f"{partial.reverse}() has no statement that undoes statement {'; statement '.join(missing)}")
    undo.sort()
    numbers = ", ".join(str(n) for _, n, _ in undo)
    summary = (f"undo statement(s) {numbers} with {len(undo)} statement(s) of {partial.reverse}()" if undo
               else "undo nothing")
    if kept:
        summary += f", leaving what statement(s) {', '.join(str(s.n) for s in kept)} did as it is (--keep)"
    return Plan([(n, sql) for _, n, sql in undo], summary, kept=[s.n for s in kept])


def _kept(statement: Statement, keep: Sequence[str]) -> bool:
    """Does ``--keep`` name the object ``statement`` created or dropped (``name`` or ``table.name``)?"""
    effect = statement.schema_effect
    if effect is None:
        return False
    names = {effect.name} | ({f"{effect.table}.{effect.name}"} if effect.table else set())
    return any(name.strip('`"').lower() in names for name in keep)


_CONDITIONAL: Final = re.compile(r"\b(if\s+(not\s+)?exists|or\s+replace)\b", re.IGNORECASE)


def unprovable(statement: Statement, in_flight: bool = False) -> str | None:
    """Why ``statement`` may not have made the change its undo reverses (None: it provably did).

    The rule: a statement is undone only when its success proves it changed the schema: one
    table, column, index or constraint created or dropped by a statement that fails when the
    object is already there (or already gone). A statement that completes either way proves
    nothing: ``IF [NOT] EXISTS`` does nothing over an object that existed before the run (undoing
    it would drop a table someone else made, with its rows), ``CREATE OR REPLACE`` replaced
    something that was there. Neither do statements whose effect is not one such object (data
    changes, several clauses): they are refused, for a person to undo.

    A statement the dead run was inside when it died (``in_flight``) is settled from the schema
    (:mod:`alembic_deploy.partial`), and the schema cannot tell its doing from an object that was there before
    it: the process may have died between the server's "already exists" error and the record of
    it. Such a statement is undone only when the record made just before it ran
    (:attr:`Statement.before`) shows the object absent (for a drop: present) then."""
    effect = statement.schema_effect
    if effect is None:
        return "is not a schema change whose undo can be matched in downgrade()"
    if effect.conditional or _CONDITIONAL.search(statement.sql):
        return (f"may have found {effect.kind} {effect.name} {'already there' if effect.creates else 'already gone'} "
                "and changed nothing (IF [NOT] EXISTS / OR REPLACE), so undoing it could "
                f"{'drop' if effect.creates else 'recreate'} what the run did not make")
    if not in_flight or statement.before is (not effect.creates):
        return None
    thing = f"{effect.kind} {effect.name}"
    undo = f"the rollback will not {'drop' if effect.creates else 'recreate'} {thing}"
    if statement.before is None:
        return (f"was still running when that run ended, and whether {thing} existed before it ran was not "
                f"recorded, so it may have failed on a {effect.kind} that was "
                f"{'already there' if effect.creates else 'already gone'}: {undo}")
    return (f"was still running when that run ended, and {thing} "
            f"{'already existed' if effect.creates else 'was already gone'} just before it ran (looked up and "
            f"recorded then), so it did not {'create' if effect.creates else 'drop'} it: {undo}")


def choices(partial: Partial) -> list[str]:
    """Each option with what it would do, or why it is not available (for the exit-8 message)."""
    options = []
    for option, plan in (("--resume", plan_resume(partial)), ("--rollback-partial", plan_rollback(partial))):
        options.append(f"{option} ({plan.summary})" if plan.refusal is None
                       else f"{option} (not available: {plan.refusal})")
    options.append(f"--mark-applied ({OPTIONS['mark-applied']})")
    return options


def describe_plan(partial: Partial, action: str, plan: Plan) -> list[str]:
    """The plan as it is printed before anything runs: each statement and what it undoes or runs."""
    syntax = literal_syntax(partial.progress.backend)
    by_number = {s.n: s for s in partial.settled_statements()}
    lines = [f"Plan ({action} {partial.revision}): {plan.summary or OPTIONS[action]}."]
    for n in plan.kept:
        effect = by_number[n].schema_effect
        assert effect is not None  # only statements with an effect are kept
        lines.append(f"  keep statement {n} ({shorten(by_number[n].sql)}): {effect.kind} {effect.name} stays as it is")
    for n, sql in plan.statements:
        effect = by_number[n].schema_effect if action == "rollback-partial" else None
        if effect is not None:
            change = f"{'drops' if effect.creates else 'recreates'} {effect.kind} {effect.name}"
            lines.append(f"  undo statement {n} ({shorten(by_number[n].sql)}): {excerpt(sql, syntax)} ({change})")
        else:
            lines.append(f"  run statement {n}: {excerpt(sql, syntax)}")
    return lines


def run(
    deployment: Deployment, project: AlembicProject, journal: Journal, report: DeployReport, partial: Partial | None,
    action: str | None, dry_run: bool = False, keep: Sequence[str] = (),
) -> None:
    """Carry out ``action`` on ``partial`` (None: only diagnose; ``dry_run``: print the plan and
    stop; ``keep``: see :func:`plan_rollback`). The plan is printed before anything runs. Sets the
    report's outcome."""
    echo = deployment.echo
    if keep and action != "rollback-partial":
        raise ConfigError("--keep goes with --rollback-partial: it names what the rollback leaves as it is.")
    if partial is None:
        report.outcome = "noop"
        echo("Nothing to repair: no revision is partly applied.")
        return
    report.target = partial.revision
    report.from_revisions = report.to_revisions = partial.versions
    if action is None:
        raise partial_error(partial, deployment.backend, choices)
    planners: dict[str, Callable[[Partial], Plan]] = {
        "resume": plan_resume, "rollback-partial": lambda p: plan_rollback(p, keep), "mark-applied": lambda _p: Plan(),
    }
    if action not in planners:
        raise CheckRefused(f"Unknown repair action {action!r}; expected one of {', '.join(OPTIONS)}.")
    plan = _available(planners[action](partial), action, partial)
    for line in describe_plan(partial, action, plan):
        echo(line)
    if dry_run:
        report.outcome = "noop"
        echo("Dry run: nothing was changed.")
        return
    # From here on the repair row carries the revision's state: a repair that dies is found again.
    journal_id = report.journal_id
    assert journal_id is not None  # the repair's own row was written before recovery ran
    tracker = ProgressTracker(deployment.backend, lambda state, _durable: journal.progress(journal_id, state))
    tracker.progress.version_table = partial.progress.version_table
    tracker.progress.version_table_schema = partial.progress.version_table_schema
    tracker.progress.repair = {"action": action, "revision": partial.revision}
    statements = partial.settled_statements()
    if action == "resume":  # continue numbering after the applied prefix
        statements = [s for s in statements if s.n <= partial.last_applied]
    tracker.resume(partial.revision, statements)
    started = time.time()
    recorded = "applied" if partial.direction == "upgrade" else "rolled back"
    if action == "resume":
        _execute(deployment, tracker, plan)
        _stamp(deployment, project, partial)
        ran = ", ".join(str(n) for n, _ in plan.statements) or "none"
        done = f"ran statement(s) {ran} and recorded it as {recorded}"
    elif action == "rollback-partial":
        _undo(deployment, tracker, plan)
        done = f"undid statement(s) {', '.join(str(n) for n, _ in plan.statements) or 'none'}"
        if plan.kept:
            done += f", left what statement(s) {', '.join(str(n) for n in plan.kept)} did as it is"
        done += ("; the next deploy applies it whole" if partial.direction == "upgrade"
                 else "; it is applied as before the rollback, which can run again")
    else:
        _warn_unfinished(deployment, partial)
        _stamp(deployment, project, partial)
        done = f"recorded it as {recorded}"
    tracker.progress.revisions = []
    tracker.flush()
    report.to_revisions = _versions(deployment, partial)
    # What the revision ends as: an upgrade resumed or marked is applied, one whose statements were
    # undone is back below it; a downgrade (rollback) the other way round.
    undone = (action == "rollback-partial") == (partial.direction == "upgrade")
    report.outcome = "rolled-back" if undone else "applied"
    report.applied.append(
        RevisionResult(partial.revision, (), describe(project, partial.revision), started, time.time() - started,
                       status="rolled-back" if undone else "applied")
    )
    echo(event("repaired", f"Repaired {partial.revision} ({action}): {done}.", revision=partial.revision,
               action=action))


_VERBS: Final = {"resume": "resume", "rollback-partial": "roll back", "mark-applied": "mark as applied"}


def _available(plan: Plan, action: str, partial: Partial) -> Plan:
    if plan.refusal is not None:
        others = [f"--{o}" for o in OPTIONS if o != action]
        raise CheckRefused(
            f"Cannot {_VERBS[action]} revision {partial.revision}: {plan.refusal}. Nothing was "
            f"changed. The other options are {' and '.join(others)}.",
            revision=partial.revision,
        )
    return plan


def _execute(deployment: Deployment, tracker: ProgressTracker, plan: Plan) -> None:
    """Run the remaining statements on a connection of the tool's own, tracked like a migration."""
    with deployment.engine.connect() as conn:
        dbapi = conn.connection.dbapi_connection
        tracker.attach(conn, deployment.backend.session_id(dbapi), tracker.progress.version_table,
                       tracker.progress.version_table_schema)
        ok = False
        try:
            for n, sql in plan.statements:
                _statement(conn, deployment.backend, n, sql)
            conn.commit()
            ok = True
        finally:
            tracker.close(ok)


def _undo(deployment: Deployment, tracker: ProgressTracker, plan: Plan) -> None:
    """Run each undo statement in its own transaction, journaling it as ``undoing`` first: a
    process that dies inside one leaves a state the next run settles from the schema."""
    entry = tracker.progress.revisions[0]
    by_number = {s.n: s for s in entry.statements}
    with deployment.engine.connect() as conn:
        for n, sql in plan.statements:
            statement = by_number[n]
            if took_effect(deployment.engine, statement.schema_effect) is False:
                deployment.echo(f"  statement {n} is already undone in the schema; skipping its undo")
            else:
                statement.state = "undoing"
                tracker.flush()
                _statement(conn, deployment.backend, n, sql)
                conn.commit()
            statement.state, statement.committed = "undone", False
            tracker.flush()


def _warn_unfinished(deployment: Deployment, partial: Partial) -> None:
    """--mark-applied trusts the person; still say what the schema does not show done."""
    try:
        statements = partial.statements()
    except ValueError:
        return
    syntax = literal_syntax(partial.progress.backend)
    for n, sql in enumerate(statements, 1):
        effect = effect_of(sql)
        if n > partial.last_applied and effect is not None and took_effect(partial.engine, effect) is False:
            deployment.echo(
                f"warning: the schema does not show statement {n} done ({effect.kind} {effect.name} "
                f"{'missing' if effect.creates else 'still there'}): {shorten(excerpt(sql, syntax))}"
            )


def _statement(conn: Any, backend: Backend, n: int, sql: str) -> None:
    """Run one statement (SQLAlchemy begins a transaction; the caller commits). One that cannot run
    in a transaction (PostgreSQL's CONCURRENTLY: alembic ran it in an autocommit block) runs in
    autocommit mode here too, after committing what came before."""
    text = sql.rstrip()
    text = text.removesuffix(";")
    outside = backend.needs_autocommit(text)
    if outside:
        conn.commit()
        conn.execution_options(isolation_level="AUTOCOMMIT")
    try:
        conn.exec_driver_sql(text)
    except Exception as exc:  # noqa: BLE001 - the database said no: report which statement
        detail = scrub_statement(" ".join(str(getattr(exc, "orig", None) or exc).split()), text, None,
                                 backend.literals)[:400]
        raise MigrationFailed(
            f"Repair statement for statement {n} failed: {type(getattr(exc, 'orig', None) or exc).__name__}: "
            f"{detail}. What ran before it is journaled; fix the cause and run `alembic-deploy repair` again.",
            statement=shorten(excerpt(sql, backend.literals)),
        ) from None
    if outside:  # (after a failure the connection is discarded as it is)
        conn.commit()
        conn.execution_options(isolation_level=conn.default_isolation_level)


def _versions(deployment: Deployment, partial: Partial) -> tuple[str, ...]:
    from .verify import read_versions

    progress = partial.progress
    return read_versions(deployment.engine, progress.version_table, progress.version_table_schema)


def _stamp(deployment: Deployment, project: AlembicProject, partial: Partial) -> None:
    """Record the revision as applied through env.py (as ``alembic stamp`` would), only when it is
    the very next step from what the version table says; a downgrade's revision as rolled back."""
    from ..alembic_env import RunObserver
    if partial.direction == "downgrade":
        _stamp_down(deployment, project, partial)
        return
    versions = _versions(deployment, partial)
    try:
        steps = [rev for rev, _ in project.upgrade_steps(partial.revision, versions)]
    except Exception:  # noqa: BLE001 - unknown revisions: the scripts and the database disagree
        steps = ["(revisions these scripts do not know)"]
    if steps != [partial.revision]:
        raise CheckRefused(
            f"Cannot record {partial.revision} as applied: the version table says "
            f"{', '.join(versions) or '<base>'}, and {partial.revision} is not the next revision from there "
            f"({', '.join(steps) or 'it is applied already'}). Check the version table by hand.",
        )
    project.run("stamp", partial.revision, RunObserver())
    if not is_applied(project, partial.revision, _versions(deployment, partial)):
        raise MigrationFailed(
            f"Stamping {partial.revision} did not record it in the version table; env.py may use a "
            "different version table than the one the journal recorded.",
        )


def _stamp_down(deployment: Deployment, project: AlembicProject, partial: Partial) -> None:
    """Record a partly rolled back revision as rolled back (``alembic stamp`` to what it follows),
    only when the version table holds it as a head: nothing applied after it depends on it."""
    from ..alembic_env import RunObserver

    versions = _versions(deployment, partial)
    if partial.revision not in versions:
        raise CheckRefused(
            f"Cannot record {partial.revision} as rolled back: the version table says "
            f"{', '.join(versions) or '<base>'}, which does not hold it as a head. Check the version table by hand.",
        )
    below = project.down_revisions(partial.revision)
    if len(below) > 1:
        raise CheckRefused(
            f"Cannot record the merge revision {partial.revision} as rolled back here: stamp the version table "
            f"by hand (`alembic stamp {' '.join(below)}` after `alembic stamp --purge` if needed).",
        )
    target = below[0] if below else "base"
    project.run("stamp", target, RunObserver())
    if is_applied(project, partial.revision, _versions(deployment, partial)):
        raise MigrationFailed(
            f"Stamping {target} did not take {partial.revision} out of the version table; env.py may use a "
            "different version table than the one the journal recorded.",
        )
