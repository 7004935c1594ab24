"""``alembic-deploy restore BACKUP``: put a backup back, into the same database or another one.

``BACKUP`` is a backup's id in the journal's backups table (``alembic-deploy backups``), a file
path, an ``s3://`` URL, or a snapshot ARN. Files and S3 objects of the backend's own method are
restored here (``pg_restore``, the ``mariadb``/``mysql`` client, SQLite's backup API), under the
migration lock so no deploy runs meanwhile; for a snapshot the exact AWS CLI steps are printed,
since restoring one makes a new instance or cluster that the application must then be pointed at.

A target that holds tables (other than the journal's) is refused unless ``force``: then the tables
the backup holds are replaced, and when the backup is known to hold the whole database (a SQLite
copy, or a backup the journal records without a table list), tables it does not hold are dropped
too, so the schema is exactly the backup's; a dump the journal does not know only replaces what it
holds. The journal's own tables are never
in a backup and never rewound; the restore is a row of the journal (command ``restore``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from ..errors import AlembicDeployError, BackupFailed, CheckRefused, ConfigError
from ..masking import scrub

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from sqlalchemy.engine import Engine

    from ..backends.base import ClientCommand
    from ..deployment import Deployment
    from ..report import DeployReport


@dataclass
class Backup:
    """What ``BACKUP`` names: where it is, how it was made, which tables it holds (None: all)."""

    location: str
    method: str
    tables: tuple[str, ...] | None = None
    id: int | None = None

    @property
    def snapshot(self) -> bool:
        return self.location.startswith("arn:aws:rds:")


@dataclass
class RestoreReport:
    backup: str
    method: str
    database: str
    #: restored | instructions (a snapshot: the steps to run are in ``instructions``)
    outcome: str
    replaced_tables: list[str] = field(default_factory=list)
    instructions: list[str] = field(default_factory=list)
    duration_seconds: float = 0.0
    journal_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        from ..report import document

        return document("restore", backup=self.backup, method=self.method, database=self.database,
                        outcome=self.outcome, replaced_tables=self.replaced_tables, instructions=self.instructions,
                        duration_seconds=round(self.duration_seconds, 4), journal_id=self.journal_id)

    def render_text(self) -> str:
        if self.outcome == "instructions":
            return "\n".join([f"{self.backup} is a snapshot: restore it with the AWS CLI, as a new instance:",
                              *(f"  {line}" for line in self.instructions)])
        return scrub(f"Restored {self.backup} into {self.database} in {self.duration_seconds:.1f}s.")


def find_backup(deployment: Deployment, given: str) -> Backup:
    """``given`` as a :class:`Backup` (see the module's docstring)."""
    from .record import BackupLog

    log = BackupLog(deployment.engine, deployment.settings.journal_table)
    if given.isdigit():
        row = log.get(int(given))
        if row is None or row["outcome"] != "ok":
            raise ConfigError(
                f"There is no backup #{given} in the journal of {deployment.masked_url}"
                f"{' that succeeded' if row is not None else ''}. List them with `alembic-deploy backups`, or give "
                "the backup's path, s3:// URL or snapshot ARN."
            )
        return _from_row(row)
    for row in log.rows(limit=10_000):
        if row["location"] == given and row["outcome"] == "ok":
            return _from_row(row)
    if given.startswith("arn:aws:rds:"):
        return Backup(given, "aurora-snapshot" if ":cluster-snapshot:" in given else "rds-snapshot")
    backend = deployment.backend
    if not given.endswith(backend.backup_suffix):
        raise ConfigError(
            f"{given} is not a backup alembic-deploy restores into {backend.name}: its backups end in "
            f"{backend.backup_suffix} ({backend.backup_method}). Restore a backup made from a {backend.name} database."
        )
    if not given.startswith("s3://") and not Path(given).is_file():
        raise ConfigError(f"There is no backup file {given}. List the backups with `alembic-deploy backups`.")
    return Backup(given, backend.backup_method)


def _from_row(row: dict[str, Any]) -> Backup:
    tables = tuple(t for t in (row["tables"] or "").split(",") if t) or None
    return Backup(str(row["location"]), str(row["method"]), tables, int(row["id"]))


def snapshot_steps(backup: Backup, aurora_engine: str) -> list[str]:
    """The AWS CLI commands that restore ``backup`` (a snapshot ARN) as a new instance or cluster."""
    snap = backup.location.rsplit(":", 1)[-1]
    new = f"{snap[:54]}-restored"
    if backup.method == "rds-snapshot":
        return [
            (f"aws rds restore-db-instance-from-db-snapshot --db-snapshot-identifier {snap} "
            f"--db-instance-identifier {new}"),
            f"aws rds wait db-instance-available --db-instance-identifier {new}",
            (f"aws rds describe-db-instances --db-instance-identifier {new} "
            "--query 'DBInstances[0].Endpoint.Address' --output text"),
            "then point DATABASE_URL at that endpoint (or swap the instance names) and deploy again.",
        ]
    engine = aurora_engine or "<the cluster's engine>"
    return [
        (f"aws rds restore-db-cluster-from-snapshot --snapshot-identifier {snap} --db-cluster-identifier {new} "
        f"--engine {engine}"),
        (f"aws rds create-db-instance --db-cluster-identifier {new} --db-instance-identifier {new}-1 "
        f"--engine {engine} --db-instance-class <the class of the original writer>"),
        f"aws rds wait db-instance-available --db-instance-identifier {new}-1",
        f"aws rds describe-db-clusters --db-cluster-identifier {new} --query 'DBClusters[0].Endpoint' --output text",
        "then point DATABASE_URL at that endpoint (or swap the cluster names) and deploy again.",
    ]


def restore(deployment: Deployment, given: str, force: bool, confirm: Callable[[str], bool] | None,
            report: DeployReport) -> RestoreReport:
    """Restore ``given`` into the deployment's database (see the module's docstring). ``confirm``
    is asked before tables are replaced (None: do not ask); ``report`` is the journal's view of it."""
    from ..steps.backup import journal_tables

    backend = deployment.backend
    backup = find_backup(deployment, given)
    result = RestoreReport(backup.location, backup.method, deployment.masked_url, "restored")
    if backup.snapshot:
        result.outcome, result.instructions = "instructions", snapshot_steps(backup, backend.aurora_engine)
        return result
    if backup.method != backend.backup_method:
        raise ConfigError(
            f"{backup.location} was made with {backup.method}; the target {deployment.masked_url} is a "
            f"{backend.name} database, restored with {backend.backup_method}. Restore it into a database of "
            "its own kind."
        )
    started = time.monotonic()
    keep = journal_tables(deployment.settings.journal_table)
    with deployment.lock() as lock:
        present = [t for t in _tables(deployment.engine) if t not in keep]
        if present and not force:
            raise CheckRefused(
                f"The target database {deployment.masked_url} is not empty ({len(present)} table(s): "
                f"{', '.join(present[:5])}{', ...' if len(present) > 5 else ''}); nothing was changed. Restoring "
                "over it replaces what it holds: pass --force to do so, or restore into an empty database "
                "with --database-url.",
            )
        question = f"Restore {backup.location} into {deployment.masked_url}, replacing its {len(present)} table(s)?"
        if present and confirm is not None and not confirm(question):
            raise CheckRefused(f"The restore of {backup.location} was not confirmed; nothing was changed. Pass "
                               "--yes to restore without being asked.")
        from ..steps.verify import read_versions

        journal = deployment.journal(lock)
        journal.ensure()
        report.target = backup.location
        report.from_revisions = read_versions(deployment.engine, "alembic_version", None)
        journal.start(report, deployment.settings)
        try:
            _check(deployment, backup)  # before anything is dropped: a broken file changes nothing
            saved = _save(deployment.engine, keep)
            if present and (backend.backup_by_copy or (backup.id is not None and backup.tables is None)):
                # A backup of the whole database: the schema becomes exactly its own. One the journal
                # does not know might hold only some tables: then only those are replaced.
                _drop(deployment.engine, present)
            _restore(deployment, backup, replace=bool(present))
            _put_back(deployment.engine, saved)
        except AlembicDeployError as exc:
            from ..pipeline import record_failure

            record_failure(report, journal, exc)
            raise
        result.replaced_tables = present
        report.to_revisions = read_versions(deployment.engine, "alembic_version", None)
        report.outcome, report.finished_at = "applied", time.time()
        journal.finish(report)
        result.journal_id = report.journal_id
    result.duration_seconds = time.monotonic() - started
    return result


def _tables(engine: Engine) -> list[str]:
    from sqlalchemy import inspect

    with engine.connect() as conn:
        return sorted(inspect(conn).get_table_names())


def _drop(engine: Engine, names: Sequence[str]) -> None:
    from sqlalchemy import MetaData

    metadata = MetaData()
    with engine.begin() as conn:
        metadata.reflect(conn, only=list(names))
        metadata.drop_all(conn)


def _save(engine: Engine, names: Sequence[str]) -> list[tuple[Any, list[dict[str, Any]]]]:
    """The journal's tables as they are (structure and rows), to put back where a restore replaced
    the whole database file (SQLite)."""
    from sqlalchemy import MetaData

    metadata = MetaData()
    present = set(_tables(engine))
    with engine.connect() as conn:
        metadata.reflect(conn, only=[n for n in names if n in present])
        return [(table, [dict(r._mapping) for r in conn.execute(table.select())]) for table in metadata.sorted_tables]


def _put_back(engine: Engine, saved: Sequence[tuple[Any, list[dict[str, Any]]]]) -> None:
    present = set(_tables(engine))
    for table, rows in saved:
        if table.name in present:
            continue
        with engine.begin() as conn:
            table.create(conn)
            if rows:
                conn.execute(table.insert(), rows)


def _check(deployment: Deployment, backup: Backup) -> None:
    """Raise :class:`BackupFailed` when the backup cannot be restored in full (a truncated or
    foreign file), read through before the restore drops or replaces anything."""
    backend = deployment.backend
    with tempfile.TemporaryDirectory(prefix="alembic-deploy-") as folder:
        problem: str | None = None
        if backend.backup_by_copy:
            with _local_copy(backup.location, Path(folder)) as path:
                problem = backend.copy_problem(path)
        else:
            command = backend.check_backup_command()
            if command is not None:
                code, tail = _feed(command, backup.location, Path(folder))
                problem = tail if code else None
    if problem:
        raise BackupFailed(f"{backup.location} is not a backup that can be restored: {problem}. Nothing was "
                           "changed in the database. Restore another backup (`alembic-deploy backups` lists them).")


def _feed(command: ClientCommand, location: str, private: Path) -> tuple[int, str]:
    """Run ``command`` with the backup at ``location`` on its stdin: its exit code and the end of
    its stderr (scrubbed)."""
    errors = private / "stderr"
    env = {**os.environ, **command.env}
    with _opened(location) as source, open(errors, "wb") as err:
        try:
            proc = subprocess.Popen(list(command.argv), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                    stderr=err, env=env)
        except FileNotFoundError:
            raise BackupFailed(f"{command.argv[0]} was not found on PATH: install the database's client "
                               "programs where alembic-deploy runs, then restore again.") from None
        assert proc.stdin is not None
        try:
            with contextlib.suppress(BrokenPipeError):  # the program failed: its exit code says why
                shutil.copyfileobj(source, proc.stdin, 1 << 20)
                proc.stdin.close()
            code = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
    tail = " ".join(errors.read_bytes()[-1500:].decode(errors="replace").split())
    return code, scrub(tail) or "no message"


def _restore(deployment: Deployment, backup: Backup, replace: bool) -> None:
    backend, engine = deployment.backend, deployment.engine
    with tempfile.TemporaryDirectory(prefix="alembic-deploy-") as folder:
        private = Path(folder)
        if backend.backup_by_copy:
            import sqlite3

            with _local_copy(backup.location, private) as path:
                try:
                    backend.restore_copy(path, engine)
                except sqlite3.Error as exc:
                    raise BackupFailed(f"Restoring {backup.location} failed: {exc}.") from None
            return
        command = backend.restore_command(engine.url, replace, private)
        code, tail = _feed(command, backup.location, private)
        if code != 0:
            raise BackupFailed(f"{command.argv[0]} failed (exit {code}) restoring {backup.location}: {tail}.")


@contextlib.contextmanager
def _opened(location: str) -> Iterator[IO[bytes]]:
    if location.startswith("s3://"):
        from .aws import calling, client

        bucket, _, key = location[5:].partition("/")
        body = calling(f"Reading {location}", lambda: client("s3").get_object(Bucket=bucket, Key=key))["Body"]
        try:
            yield body
        finally:
            body.close()
        return
    try:
        stream = open(location, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise BackupFailed(f"The backup {location} cannot be read: {exc.strerror or exc}.") from None
    with stream:
        yield stream


@contextlib.contextmanager
def _local_copy(location: str, private: Path) -> Iterator[Path]:
    if not location.startswith("s3://"):
        yield Path(location)
        return
    path = private / "backup"
    with _opened(location) as source, open(path, "wb") as out:
        shutil.copyfileobj(source, out, 1 << 20)
    yield path
