"""Taking a backup: the backend's own method (a dump program's output streamed to the destination,
or SQLite's online copy), an RDS instance or Aurora cluster snapshot, or the user's command.

Every program runs with the password in its environment or a 0600 file in a private temporary
folder (:class:`~alembic_deploy.backends.base.ClientCommand`), never in its arguments, and its
error output goes to that folder, read back (masked) only to explain a failure.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import shlex
import subprocess
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Final

from ..errors import BackupFailed, ConfigError
from ..masking import scrub
from .destination import LocalFolder, Written

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import URL, Engine

    from ..backends import Backend
    from .destination import Destination

SNAPSHOT_METHODS: Final = ("rds-snapshot", "aurora-snapshot")
#: Seconds between two looks at a snapshot that is not yet available.
SNAPSHOT_POLL_SECONDS: Final = 15
#: How much of a failed program's error output a message quotes.
_ERROR_TAIL: Final = 1500


def method_name(method: str, backend: Backend) -> str:
    """What the journal records: the backend's own method for ``auto``."""
    return backend.backup_method if method == "auto" else method


def suffix(method: str, backend: Backend) -> str:
    return backend.backup_suffix if method == "auto" else ""


def dump(backend: Backend, engine: Engine, tables: Sequence[str], exclude: Sequence[str],
         destination: Destination, filename: str, timeout: float) -> Written:
    """The backend's own backup of ``engine``'s database into ``destination`` as ``filename``."""
    with tempfile.TemporaryDirectory(prefix="alembic-deploy-") as folder:
        private = Path(folder)
        if backend.backup_by_copy:
            return _copy(backend, engine, exclude, destination, filename, private)
        command = backend.dump_command(engine.url, tables, exclude, private)
        env = {**os.environ, **command.env}
        errors = private / "stderr"
        if isinstance(destination, LocalFolder):
            with destination.open(filename) as out, open(errors, "wb") as err:
                _wait(_start(command.argv, env, out, err), command.argv, errors, timeout)
            return destination.commit(filename)
        with open(errors, "wb") as err:
            proc = _start(command.argv, env, subprocess.PIPE, err)
        try:
            assert proc.stdout is not None
            written = destination.upload(filename, proc.stdout)
            _wait(proc, command.argv, errors, timeout)
        except BaseException:
            _end(proc)
            destination.discard(filename)
            raise
        return written


def _copy(backend: Backend, engine: Engine, exclude: Sequence[str], destination: Destination, filename: str,
          private: Path) -> Written:
    import sqlite3

    try:
        if isinstance(destination, LocalFolder):
            with destination.open(filename):
                backend.copy_database(engine, destination.temporary(filename), exclude)
            return destination.commit(filename)
        path = private / filename
        backend.copy_database(engine, path, exclude)
        with open(path, "rb") as stream:
            return destination.upload(filename, stream)
    except sqlite3.Error as exc:
        raise BackupFailed(f"SQLite's online backup failed: {exc}. Nothing was migrated; check the disk "
                           "space and that this user may read the database.") from None


def _start(argv: Sequence[str], env: dict[str, str], stdout: Any, stderr: IO[bytes]) -> subprocess.Popen[bytes]:
    try:
        return subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=stdout, stderr=stderr, env=env)
    except FileNotFoundError:
        raise BackupFailed(
            f"{argv[0]} was not found on PATH, so no backup was taken and nothing was migrated. Install the "
            "database's client programs where alembic-deploy runs (PostgreSQL: postgresql-client of the "
            "server's major version or later; MySQL/MariaDB: mariadb-client or mysql-client), or back up "
            "with --backup-method command or a snapshot.",
            program=argv[0],
        ) from None
    except OSError as exc:
        raise BackupFailed(f"{argv[0]} could not be started: {exc.strerror or exc}. Nothing was migrated.",
                           program=argv[0]) from None


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
    with contextlib.suppress(Exception):
        proc.wait()


def _wait(proc: subprocess.Popen[bytes], argv: Sequence[str], errors: Path, timeout: float) -> None:
    try:
        code = proc.wait(timeout=timeout or None)
    except subprocess.TimeoutExpired:
        _end(proc)
        raise BackupFailed(
            f"{argv[0]} did not finish within --backup-timeout ({timeout:g}s) and was stopped; nothing was "
            "migrated. Give it longer, or back up only what the revisions touch (--backup-tables auto)."
        ) from None
    except BaseException:  # a signal: the dump must not outlive the deploy
        _end(proc)
        raise
    if code != 0:
        raise BackupFailed(
            f"{argv[0]} failed (exit {code}): {_tail(errors) or 'no message'}. No backup was kept and nothing "
            "was migrated; fix the cause (the role's privileges, the client's version) and deploy again.",
            program=argv[0],
        )


def _tail(errors: Path) -> str:
    try:
        text = errors.read_bytes()[-_ERROR_TAIL:].decode(errors="replace")
    except OSError:
        return ""
    return scrub(" ".join(text.split()).rstrip("."))


# -- snapshots --------------------------------------------------------------------------------------
def snapshot_id(name: str) -> str:
    """A backup name as an RDS snapshot identifier: letters, digits and single hyphens, starting
    with a letter."""
    text = re.sub(r"-+", "-", re.sub(r"[^a-z0-9]", "-", name.lower())).strip("-")
    return (text if text[:1].isalpha() else f"b-{text}")[:255]


def rds_identifier(given: str | None, url: URL) -> str:
    """``--backup-rds-identifier``, else the first label of the URL's host (RDS endpoints are
    ``<instance>.<hash>.<region>.rds.amazonaws.com``, Aurora's ``<cluster>.cluster-<hash>...``)."""
    if given:
        return given
    host = url.host or ""
    if not host or host[0].isdigit() or "." not in host:
        raise ConfigError(
            f"A snapshot backup needs the DB instance or cluster identifier, and the URL's host "
            f"{host or '(none)'!r} does not name one. Pass --backup-rds-identifier ID."
        )
    return host.split(".", 1)[0]


def snapshot(method: str, identifier: str, name: str, timeout: float) -> Written:
    """An RDS instance (``rds-snapshot``) or Aurora cluster (``aurora-snapshot``) snapshot named
    after ``name``, waited for until available; its ARN is the location."""
    from .aws import calling, client

    rds = client("rds")
    snap = snapshot_id(name)
    waiting = {"Delay": SNAPSHOT_POLL_SECONDS, "MaxAttempts": max(1, math.ceil(timeout / SNAPSHOT_POLL_SECONDS))}
    if method == "rds-snapshot":
        made = calling(f"Creating the snapshot {snap} of the RDS instance {identifier}", lambda: rds.create_db_snapshot(
            DBSnapshotIdentifier=snap, DBInstanceIdentifier=identifier))["DBSnapshot"]
        calling(f"Waiting for the snapshot {snap}", lambda: rds.get_waiter("db_snapshot_available").wait(
            DBSnapshotIdentifier=snap, WaiterConfig=waiting))
        return Written(str(made.get("DBSnapshotArn") or snap), None)
    made = calling(f"Creating the snapshot {snap} of the Aurora cluster {identifier}",
                   lambda: rds.create_db_cluster_snapshot(DBClusterSnapshotIdentifier=snap,
                                                          DBClusterIdentifier=identifier))["DBClusterSnapshot"]
    calling(f"Waiting for the snapshot {snap}", lambda: rds.get_waiter("db_cluster_snapshot_available").wait(
        DBClusterSnapshotIdentifier=snap, WaiterConfig=waiting))
    return Written(str(made.get("DBClusterSnapshotArn") or snap), None)


def prune_snapshots(method: str, identifier: str, name: str, keep: int) -> list[str]:
    """Delete this series' manual snapshots beyond the newest ``keep``; the identifiers deleted."""
    if keep <= 0:
        return []
    from .aws import calling, client
    from .destination import series

    rds = client("rds")
    prefix = snapshot_id(series(name) + "x")[:-1]
    if method == "rds-snapshot":
        found = calling("Listing the snapshots", lambda: rds.describe_db_snapshots(
            DBInstanceIdentifier=identifier, SnapshotType="manual"))["DBSnapshots"]
        ids = [(s.get("SnapshotCreateTime"), s["DBSnapshotIdentifier"]) for s in found]
    else:
        found = calling("Listing the snapshots", lambda: rds.describe_db_cluster_snapshots(
            DBClusterIdentifier=identifier, SnapshotType="manual"))["DBClusterSnapshots"]
        ids = [(s.get("SnapshotCreateTime"), s["DBClusterSnapshotIdentifier"]) for s in found]
    ours = sorted((i for i in ids if i[1].startswith(prefix)), key=lambda i: str(i[0]), reverse=True)
    gone = []
    for _, snap in ours[keep:]:
        if method == "rds-snapshot":
            calling(f"Deleting the snapshot {snap}", lambda snap=snap: rds.delete_db_snapshot(  # type: ignore[misc]
                DBSnapshotIdentifier=snap))
        else:
            calling(f"Deleting the snapshot {snap}", lambda snap=snap: rds.delete_db_cluster_snapshot(  # type: ignore[misc]
                DBClusterSnapshotIdentifier=snap))
        gone.append(snap)
    return gone


# -- the user's command -----------------------------------------------------------------------------
def user_command(command: str | None, backend: Backend, url: URL, name: str, destination: str,
                 tables: Sequence[str], timeout: float) -> Written:
    """Run ``--backup-command`` with the URL's parts in its environment; the last line it prints on
    stdout is the backup's location (else ``destination/name``)."""
    if not command:
        raise ConfigError("--backup-method command needs --backup-command CMD (the program that takes the backup).")
    argv = shlex.split(command)
    env = {**os.environ, "DB_DIALECT": backend.name, "DB_HOST": url.host or "", "DB_PORT": str(url.port or ""),
           "DB_USER": url.username or "", "DB_PASSWORD": str(url.password or ""), "DB_NAME": url.database or "",
           "BACKUP_NAME": name, "BACKUP_DESTINATION": destination, "BACKUP_TABLES": ",".join(tables)}
    with tempfile.TemporaryDirectory(prefix="alembic-deploy-") as folder:
        errors = Path(folder) / "stderr"
        out = Path(folder) / "stdout"
        with open(errors, "wb") as err, open(out, "wb") as stdout:
            _wait(_start(argv, env, stdout, err), argv, errors, timeout)
        lines = [line.strip() for line in out.read_text(errors="replace").splitlines() if line.strip()]
    location = lines[-1] if lines else f"{destination.rstrip('/')}/{name}"
    size = os.path.getsize(location) if os.path.isfile(location) else None
    return Written(scrub(location), size)


