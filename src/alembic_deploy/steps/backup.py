"""The backup before migrating: under the migration lock, after the journal's ``running`` row and
before the first revision, only when revisions are pending (or, for a rollback, to be undone) and
the backup policy calls for one (:mod:`alembic_deploy.backups.decision`).

A backup that fails stops the deploy with :class:`~alembic_deploy.errors.BackupFailed` (exit 11)
before anything changed, unless the policy says ``backup-on-failure = "continue"``: then the
deploy goes on with a warning. Either way the attempt is a row of the backups table, and a failed
run's journal row carries the message.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import BackupFailed

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..alembic_env import AlembicProject
    from ..backups.decision import BackupPolicy, Decision
    from ..backups.destination import Written
    from ..backups.record import BackupRecord
    from ..deployment import Deployment
    from ..motion import Motion
    from ..report import DeployReport
    from ..rollback_plan import UndoStep


def protect(deployment: Deployment, project: AlembicProject, motion: Motion, report: DeployReport) -> None:
    """Back up before ``motion`` when the policy says so (see the module's docstring)."""
    from ..backups.decision import decide, resolve_policy

    settings, echo = deployment.settings, deployment.echo
    policy = resolve_policy(settings)
    if policy.mode == "never":
        return
    started = time.monotonic()
    from ..alembic_env import RunObserver

    # The database's revision(s) and its version table, as env.py configures them.
    inspected = project.run("inspect", "heads", RunObserver())
    before = "migrating" if motion.upgrading else "rolling back"
    if motion.upgrading:
        pending = project.pending(motion.target, inspected.current)
        if pending is None:
            return  # an unknown target or database revision: the upgrade refuses it in its own words
        # What the lint refuses (--lint enforce, the --env policy's default) is refused before a backup
        # is made for it; its notes and warnings are said when alembic plans the run, as without a backup.
        from .preflight import check_lint, lint_mode

        if lint_mode(settings)[0] == "enforce":
            check_lint(project, pending, settings, deployment.backend.name, _quiet, _quiet)
        decision = decide(policy, pending, project, deployment.backend.name, settings.backup_tables)
    else:
        undoing = _rollback_decision(policy, project, motion, inspected.current, deployment.backend.name)
        if undoing is None:
            return  # the database moved since the plan: the rollback refuses it in its own words
        decision = undoing
    for note in decision.notes:
        echo(f"note: backup: {note}")
    if decision.reason is None:
        report.step("backup", started, "not needed")
        return
    version_table = ".".join(filter(None, (inspected.version_table_schema, inspected.version_table)))
    record = _record(deployment, inspected.current, decision.tables, version_table, decision.reason, report)
    echo(f"Backing up {report.database or 'the database'} before {before} ({decision.reason})...")
    try:
        _take(deployment, record)
    except BackupFailed as exc:
        record.outcome, record.error = "failed", exc.message
        record.duration_seconds = round(time.monotonic() - started, 4)
        _journal(deployment, record, report)
        report.backup = record.to_dict()
        if policy.on_failure == "continue":
            note = (f"The backup before {before} failed and {policy.source} says to continue without one: "
                    f"{exc.message}")
            report.warnings.append(note)
            echo(f"warning: {note}")
            report.step("backup", started, "failed; continued")
            return
        run, go = ("deploy", "deploy") if motion.upgrading else ("rollback", "roll back")
        raise BackupFailed(
            f"{exc.message.rstrip('.')}. The {run} stopped before {before} ({decision.reason}); to {go} "
            "without a backup anyway set backup-on-failure = \"continue\" in the policy or pass "
            "--backup-on-failure continue.", **exc.fields,
        ) from None
    record.duration_seconds = round(time.monotonic() - started, 4)
    _journal(deployment, record, report)
    report.backup = record.to_dict()
    size = f", {_size(record.size_bytes)}" if record.size_bytes is not None else ""
    report.step("backup", started, f"{record.method}{size}")
    echo(f"Backed up to {record.location}{size} in {record.duration_seconds:.1f}s.")
    for gone in _prune(deployment, record):
        echo(f"  retention: deleted {gone}")


def _rollback_decision(policy: BackupPolicy, project: AlembicProject, motion: Motion, current: Sequence[str],
                       dialect: str) -> Decision | None:
    """The decision for a rollback from ``current``: over the revisions it undoes, read as the
    rollback plan reads them (their downgrade rendered, its findings) when the policy needs it."""
    import logging

    from ..backups.decision import decide_rollback
    from ..rollback_plan import undo_step

    if motion.expected_from is not None and sorted(motion.expected_from) != sorted(current):
        return None
    undo = list(motion.undo) or [rev for rev, _ in project.steps(motion, current)]
    if policy.mode != "destructive":
        return decide_rollback(policy, [_unread(rev) for rev in undo], project)
    logging.disable(logging.INFO)  # alembic's "Generating static SQL" would read as if something ran
    try:
        return decide_rollback(policy, [undo_step(project, rev, dialect) for rev in undo], project)
    finally:
        logging.disable(logging.NOTSET)


def _unread(revision: str) -> UndoStep:
    from ..rollback_plan import UndoStep

    return UndoStep(revision, "", "", (), [])


def _record(deployment: Deployment, current: Sequence[str], tables: tuple[str, ...] | None, version_table: str,
            reason: str, report: DeployReport) -> BackupRecord:
    from ..backups.destination import backup_name
    from ..backups.methods import SNAPSHOT_METHODS, method_name, suffix
    from ..backups.record import BackupRecord

    settings, backend, url = deployment.settings, deployment.backend, deployment.engine.url
    database = url.database or ""
    if settings.backup_method in SNAPSHOT_METHODS or (settings.backup_method == "auto" and backend.backup_by_copy):
        tables = None  # a snapshot, a file copy: the whole database (a command gets the list in BACKUP_TABLES)
    elif tables is not None:
        tables = _existing([*tables, version_table], deployment)
    name = backup_name(settings.env, Path(database).stem if backend.backup_by_copy else database, current,
                       datetime.now(timezone.utc))
    return BackupRecord(name + suffix(settings.backup_method, backend), method_name(settings.backup_method, backend),
                        time.time(), settings.env, database if not backend.backup_by_copy else Path(database).name,
                        tuple(current), tables, reason, report.journal_id)


def _existing(tables: Sequence[str], deployment: Deployment) -> tuple[str, ...]:
    """Those of ``tables`` the database has (a revision may name a table it creates itself)."""
    from sqlalchemy import inspect

    with deployment.engine.connect() as conn:
        inspector = inspect(conn)
        found: list[str] = []
        for table in dict.fromkeys(tables):
            schema, _, name = table.rpartition(".")
            if inspector.has_table(name, schema=schema or None):
                found.append(table)
    return tuple(found)


def journal_tables(journal: str) -> list[str]:
    """The journal's own tables, never in a backup: a restore must not rewind the history of deploys."""
    from ..backups.record import backups_table_name

    return [journal, f"{journal}_progress", backups_table_name(journal)]


def _take(deployment: Deployment, record: BackupRecord) -> None:
    from ..backups import methods
    from ..backups.destination import parse_destination

    settings, backend, engine = deployment.settings, deployment.backend, deployment.engine
    method = settings.backup_method
    written: Written
    if method in methods.SNAPSHOT_METHODS:
        identifier = methods.rds_identifier(settings.backup_rds_identifier, engine.url)
        written = methods.snapshot(method, identifier, record.name, settings.backup_timeout)
    elif method == "command":
        written = methods.user_command(settings.backup_command, backend, engine.url, record.name,
                                       settings.backup_destination, record.tables or (), settings.backup_timeout)
    else:
        written = methods.dump(backend, engine, record.tables or (), journal_tables(settings.journal_table),
                               parse_destination(settings.backup_destination), record.name, settings.backup_timeout)
    record.location, record.size_bytes = written.location, written.size


def _prune(deployment: Deployment, record: BackupRecord) -> list[str]:
    """The retention count, after a backup that succeeded; a failure to prune is only a warning."""
    from ..backups import methods
    from ..backups.destination import parse_destination

    settings = deployment.settings
    keep = settings.backup_retention
    if keep <= 0 or settings.backup_method == "command":
        return []
    try:
        if settings.backup_method in methods.SNAPSHOT_METHODS:
            identifier = methods.rds_identifier(settings.backup_rds_identifier, deployment.engine.url)
            return methods.prune_snapshots(settings.backup_method, identifier, record.name, keep)
        suffix = methods.suffix(settings.backup_method, deployment.backend)
        return parse_destination(settings.backup_destination).prune(record.name, suffix, keep)
    except BackupFailed as exc:
        deployment.echo(f"warning: the retention count was not applied: {exc.message}")
        return []


def _journal(deployment: Deployment, record: BackupRecord, report: DeployReport) -> None:
    from ..backups.record import BackupLog

    refused = BackupLog(deployment.engine, deployment.settings.journal_table).add(record)
    if refused is not None:
        note = f"The backup was not recorded in the journal ({refused}); it is at {record.location}."
        report.warnings.append(note)
        deployment.echo(f"warning: {note}")


def _quiet(_line: str) -> None:
    pass


def _size(size: int | None) -> str:
    value = float(size or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
