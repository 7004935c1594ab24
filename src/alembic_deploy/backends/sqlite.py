"""SQLite: an OS file lock beside the database file; the kernel drops it when the process dies.

The lock file also keeps the run's statement progress while it migrates (:class:`ProgressLog`).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import importlib
import json
import operator
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import ConfigError, LockNotAcquired
from ..masking import SQLLiterals
from .base import Backend, DirectSession, Driver, MigrationLock, holder_label, raw_query, register, sql_name

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from datetime import datetime
    from urllib.parse import SplitResult

    from sqlalchemy.engine import Connection, Engine

LOCK_SUFFIX = ".alembic-deploy.lock"
#: How long a statement of the tool's own connections waits for another connection's lock on
#: the database when the caller sets no bound (the deploy verbs pass ``--lock-timeout-wait``).
BUSY_WAIT_SECONDS = 60.0
#: The longest single busy wait inside SQLite. SQLite waits in its C busy handler, where no
#: signal handler runs and sqlite3_interrupt is not looked at, so the wait is cut into slices
#: this long, retried in Python (:func:`_sliced_connection`) until the whole wait is spent.
BUSY_SLICE_SECONDS = 0.5
#: SQLAlchemy driver name -> the DBAPI module whose connections the tool opens.
_DBAPI = {"pysqlite": "sqlite3", "pysqlcipher": "sqlcipher3.dbapi2"}


def database_path(engine: Engine) -> Path:
    database = engine.url.database
    if not database or database == ":memory:" or "mode=memory" in str(engine.url.query):
        raise ConfigError(
            "SQLite in-memory databases cannot be migrated by a deploy: each connection sees its "
            "own empty database. Point the URL at a file, e.g. sqlite:///app.db."
        )
    if database.startswith("file:"):
        database = database[5:].split("?", 1)[0]
    return Path(database).absolute()


@register
class SQLiteBackend(Backend):
    name = "sqlite"
    literals = SQLLiterals(backslash_escapes=False, hash_comments=False)  # "x" is a string when no name matches
    # pysqlite issues no BEGIN before DDL, so alembic treats SQLite DDL as non-transactional.
    transactional_ddl = False
    partial_cause = "alembic runs SQLite DDL outside a transaction (pysqlite opens one only before DML)"
    cancel_needs_connection = False
    drivers: ClassVar[dict[str, Driver]] = {
        "pysqlite": Driver("sqlite3"),
        "aiosqlite": Driver("aiosqlite", is_async=True),
        "pysqlcipher": Driver("sqlcipher3"),
    }
    sync_siblings = ("pysqlite",)
    direct_drivers: ClassVar[dict[str, str]] = {"": "sqlite3", "pysqlite": "sqlite3", "aiosqlite": "aiosqlite"}

    def open_direct(
        self, url: str, parts: SplitResult, query: dict[str, str], module: str, libpq: bool,
    ) -> DirectSession | None:
        import sqlite3

        from ..fastpath.direct import WAIT_SECONDS

        path = url.split(":///", 1)[1] if ":///" in url else ""
        if query or not path or path == ":memory:" or path.startswith("file:") or not Path(path).is_file():
            return None
        # The busy wait runs inside SQLite, where no signal handler can run: kept short, and a
        # database locked for longer declines to the full path, whose waits can be interrupted.
        return DirectSession(sqlite3.connect(path, timeout=WAIT_SECONDS, isolation_level=None), "qmark")

    def create_scratch(self, engine: Engine, name: str) -> str:
        """A temporary file (``name`` in its name), not a database beside the live one."""
        import tempfile

        fd, path = tempfile.mkstemp(prefix=f"{name}-", suffix=".db")
        os.close(fd)
        return path

    def scratch_databases(self, engine: Engine, prefix: str) -> list[str]:
        """The temporary files :meth:`create_scratch` made (in this machine's temporary folder)."""
        import tempfile

        return sorted(str(p) for p in Path(tempfile.gettempdir()).glob(f"{prefix}*.db"))

    def drop_scratch(self, engine: Engine, database: str) -> None:
        for suffix in ("", "-journal", "-wal", "-shm", LOCK_SUFFIX):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(database + suffix)

    def missing_database(self, engine: Engine) -> str | None:
        """sqlite3 creates a missing file on connect: a path that names no file is missing."""
        try:
            path = database_path(engine)
        except ConfigError:
            return "it is an in-memory database"
        return None if path.is_file() else f"the file {path} does not exist"

    def journal_timestamp(self, moment: datetime) -> Any:
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")  # SQLAlchemy's SQLite DateTime storage format

    backup_method = "sqlite-backup"
    backup_suffix = ".sqlite3"
    backup_by_copy = True

    def copy_database(self, engine: Engine, destination: Path, exclude: Sequence[str]) -> None:
        # SQLite's online backup API, in one step: a writer of the application waits (its busy
        # timeout) for the copy, instead of restarting a copy made in slices at each of its writes.
        import sqlite3

        source = sqlite3.connect(f"{database_path(engine).as_uri()}?mode=ro", uri=True, timeout=BUSY_WAIT_SECONDS)
        try:
            target = sqlite3.connect(destination)
            try:
                source.backup(target)
                for name in exclude:
                    target.execute(f"DROP TABLE IF EXISTS {self.quote_identifier(name)}")
                target.commit()
            finally:
                target.close()
        finally:
            source.close()

    def copy_problem(self, source: Path) -> str | None:
        import sqlite3

        try:
            copy = sqlite3.connect(f"{source.absolute().as_uri()}?mode=ro", uri=True)
            try:
                found = [row[0] for row in copy.execute("PRAGMA quick_check")]
            finally:
                copy.close()
        except sqlite3.Error as exc:
            return str(exc)
        return None if found == ["ok"] else "; ".join(map(str, found[:3]))

    def restore_copy(self, source: Path, engine: Engine) -> None:
        import sqlite3

        copy = sqlite3.connect(f"{source.absolute().as_uri()}?mode=ro", uri=True)
        try:
            target = sqlite3.connect(database_path(engine), timeout=BUSY_WAIT_SECONDS)
            try:
                copy.backup(target)
            finally:
                target.close()
        finally:
            copy.close()

    def connect_args(self, driver: str, lock_wait: float | None = None) -> dict[str, Any]:
        # A statement waits up to ``lock_wait`` for another connection's lock on the database (the
        # journal waits for another process's write transaction), in slices; then it raises
        # LockNotAcquired (exit 6) instead of "database is locked".
        wait = BUSY_WAIT_SECONDS if lock_wait is None else lock_wait
        module = _DBAPI.get(driver)
        if module is None:
            return {}
        try:
            factory = _sliced_connection(module, wait)
        except ImportError:  # the dialect reports the missing driver in its own words
            return {"timeout": wait}
        return {"timeout": min(BUSY_SLICE_SECONDS, wait), "factory": factory}

    def is_transient(self, exc: BaseException) -> bool:
        return "database is locked" in str(exc).lower()

    def is_lock_timeout(self, exc: BaseException) -> bool:
        # SQLITE_BUSY: the busy timeout ran out while another connection held the database; the
        # statement changed nothing (SQLite undoes a statement that fails).
        return _is_busy(getattr(exc, "orig", None) or exc)

    def write_access_advice(self, table: str) -> str:
        return "let this user write the database file and its folder (SQLite creates its rollback journal there)"

    journal_shares_write_lock = True
    #: sqlite3 and aiosqlite connections: ``in_transaction``.
    transaction_probes = (operator.attrgetter("in_transaction"),)

    def commits_by_itself(self, ddl: bool, in_transaction: bool | None) -> bool:
        """pysqlite opens a transaction only before DML, so DDL outside one commits on its own
        (alembic treats SQLite DDL as non-transactional for this reason)."""
        return ddl and in_transaction is False

    def object_exists(
        self, dbapi_connection: Any, kind: str, name: str, table: str | None, schema: str | None,
    ) -> bool | None:
        """From ``sqlite_master`` and ``pragma_table_info`` (names are case-insensitive in SQLite).
        A constraint is neither added nor dropped by ``ALTER TABLE`` here: not looked up."""
        wanted, owner = sql_name(name), sql_name(table) if table else None
        database = sql_name(schema) if schema else None
        if wanted is None or (schema and database is None) or (table and owner is None):
            return None
        if kind in ("table", "index"):
            master = f'"{schema}".sqlite_master' if schema else "sqlite_master"
            sql = f"SELECT 1 FROM {master} WHERE type = '{kind}' AND name = {wanted} COLLATE NOCASE"
        elif kind == "column" and owner is not None:
            where = f"{owner}, {database}" if database else owner
            sql = f"SELECT 1 FROM pragma_table_info({where}) WHERE name = {wanted} COLLATE NOCASE"
        else:
            return None
        return bool(raw_query(dbapi_connection, f"{sql} LIMIT 1"))

    def is_refused(self, exc: BaseException) -> bool:
        # SQLITE_PERM, SQLITE_READONLY (a read-only file or mount), SQLITE_CANTOPEN (no rollback
        # journal can be made: the folder is not writable), SQLITE_AUTH; the messages before 3.11.
        orig = getattr(exc, "orig", None) or exc
        code = getattr(orig, "sqlite_errorcode", None)
        if isinstance(code, int):
            return code & 0xFF in (3, 8, 14, 23)
        text = str(orig).lower()
        return "readonly database" in text or "unable to open database file" in text

    def __init__(self) -> None:
        #: session id -> the event loop an async driver's session runs on (aiosqlite).
        self._loops: dict[int, Any] = {}

    def session_id(self, dbapi_connection: Any) -> Any:
        import asyncio

        try:
            # Called on the migrating connection, from env.py's run_sync() under an async driver.
            self._loops[id(dbapi_connection)] = asyncio.get_running_loop()
        except RuntimeError:
            pass
        return id(dbapi_connection)

    def cancel(self, lock_connection: Any, dbapi_connection: Any, session_id: Any) -> None:
        import asyncio
        import inspect

        raw = getattr(dbapi_connection, "driver_connection", dbapi_connection)
        stop = getattr(raw, "stop_waiting", None)
        if stop is not None:  # a busy wait ignores sqlite3_interrupt: it must not start again
            stop()
        interrupt = getattr(raw, "interrupt", None)
        if interrupt is None:
            return
        if not inspect.iscoroutinefunction(interrupt):  # sqlite3: callable from any thread
            interrupt()
            return
        # aiosqlite: a coroutine, run on the loop that awaits the statement.
        loop = self._loops.get(session_id)
        if loop is not None and not loop.is_closed():
            asyncio.run_coroutine_threadsafe(interrupt(), loop)

    def lock_name(self, url_database: str | None, version_table: str, schema: str | None) -> str:
        return str(url_database)

    @contextmanager
    def lock(
        self,
        engine: Engine,
        name: str,
        timeout: float,
        on_wait: Callable[[dict[str, Any]], None] | None = None,
        connection: Connection | None = None,
    ) -> Iterator[MigrationLock]:
        if connection is not None:
            connection.close()  # a file lock needs no session; a SQLite connect costs nothing
        database = database_path(engine)
        path = database.with_name(database.name + LOCK_SUFFIX)
        fd, writable = _open_lock(path, database)
        try:
            def attempt() -> bool:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False
                return True

            waited = self._poll(attempt, timeout, lambda: _read_holder(path), on_wait)
            inherited = ProgressLog.last_record(fd) if os.path.exists(path) else None
            if not writable:
                if inherited is not None:
                    raise ConfigError(
                        f"A run that died left its statement progress in {path}, and this process "
                        "cannot write that folder to move it into the journal. Deploy once as a user "
                        "who can write the folder (it then reports what the dead run left)."
                    )
                try:
                    yield MigrationLock(name=str(path), waited=waited)
                finally:
                    fcntl.flock(fd, fcntl.LOCK_UN)
                return
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{holder_label()} since={time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode(), 0)
            log = ProgressLog(fd, inherited)
            try:
                yield MigrationLock(name=str(path), waited=waited, progress_log=log)
            finally:
                if not log.unsaved and log.inherited is None:
                    os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


@functools.cache
def _sliced_connection(module_name: str, wait: float) -> type:
    """A ``Connection`` class of DBAPI module ``module_name`` (given to its ``connect`` as
    ``factory``) whose statements and commits wait for a locked database in Python, up to
    ``wait`` seconds each.

    Each attempt waits at most the connection's busy timeout (BUSY_SLICE_SECONDS) inside SQLite;
    a pending signal's handler runs between two attempts. Only an attempt that failed with
    SQLITE_BUSY after its busy handler waited is made again, which is what a longer busy timeout
    would have done: the statement that got no lock changed nothing (SQLite undoes a statement
    that fails), and a COMMIT that got SQLITE_BUSY is meant to be retried. SQLITE_BUSY returned
    at once (SQLite skips the busy handler where waiting would deadlock) fails at once, as before.
    A statement still locked out after ``wait`` raises :class:`~alembic_deploy.errors.LockNotAcquired`
    (not a DBAPI error, so SQLAlchemy passes it on unwrapped): the deploy ends with exit 6 and
    says who to look for, instead of an internal error.
    """
    module = importlib.import_module(module_name)

    def patient(connection: Any, call: Callable[..., Any], *args: Any) -> Any:
        started = time.monotonic()
        while True:
            attempt = time.monotonic()
            try:
                return call(*args)
            except module.OperationalError as exc:
                now = time.monotonic()
                if not _is_busy(exc) or now - attempt < min(BUSY_SLICE_SECONDS, wait) / 2 or connection.stopped:
                    raise
                if now - started >= wait:
                    raise _locked_out(connection.database, now - started) from None

    # The driver module is only known at run time (the one the URL's dialect loads), so its classes
    # are bases mypy cannot see.
    class Cursor(module.Cursor):  # type: ignore[name-defined,misc]
        def execute(self, *args: Any) -> Any:
            return patient(self.connection, super().execute, *args)

        def executemany(self, *args: Any) -> Any:
            return patient(self.connection, super().executemany, *args)

    class Connection(module.Connection):  # type: ignore[name-defined,misc]
        #: Set by a signal's cancel (:meth:`SQLiteBackend.cancel`): a busy wait ends at its slice.
        stopped = False

        def __init__(self, database: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(database, *args, **kwargs)
            self.database = os.fsdecode(database) if isinstance(database, (str, bytes, os.PathLike)) else str(database)

        def cursor(self, factory: Any = None) -> Any:
            return super().cursor(factory or Cursor)

        # The C shortcuts would make a plain cursor.
        def execute(self, *args: Any) -> Any:
            return self.cursor().execute(*args)

        def executemany(self, *args: Any) -> Any:
            return self.cursor().executemany(*args)

        def commit(self) -> None:
            patient(self, super().commit)

        def stop_waiting(self) -> None:
            self.stopped = True

    return Connection


def _locked_out(database: str, waited: float) -> LockNotAcquired:
    name = database.removeprefix("file:").split("?", 1)[0]
    return LockNotAcquired(
        f"Another process holds the SQLite database {name} locked: alembic-deploy's own connection "
        f"(migration lock, journal, verification) waited {waited:.0f}s for it to end its write "
        f"transaction and gave up. Find that process (`fuser {name}` lists the processes that have "
        "it open), let it finish or stop it, and deploy again; --lock-timeout-wait (also "
        "ALEMBIC_DEPLOY_LOCK_TIMEOUT_WAIT) sets how long to wait.",
        database=name,
    )


def _is_busy(exc: BaseException) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    if isinstance(code, int):
        return code & 0xFF == 5  # SQLITE_BUSY and its extended codes
    return "database is locked" in str(exc).lower()


def _open_lock(path: Path, database: Path) -> tuple[int, bool]:
    """(a descriptor to flock, whether it is the lock file opened for writing).

    A folder this process cannot write (a read-only mount, a folder owned by another user) cannot
    hold a new lock file, and the database in it cannot be written either (SQLite creates its
    rollback journal beside it), so this run can only read, as plain alembic at its head does.
    A read-only descriptor locks as well: the lock file when a deploy that could write made it
    (every such deploy locks it), else the database file itself (which SQLite never flocks).
    """
    try:
        return os.open(path, os.O_RDWR | os.O_CREAT, 0o644), True
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        refused = exc
    for candidate in (path, database):
        try:
            return os.open(candidate, os.O_RDONLY), False
        except FileNotFoundError:
            continue
        except OSError as unreadable:
            raise ConfigError(
                f"This process can neither write nor read {candidate} ({unreadable.strerror}), which "
                "alembic-deploy locks so that two deploys never migrate at once. Let this user read "
                "it, or deploy as one who can."
            ) from None
    raise ConfigError(
        f"The SQLite database {database} does not exist, and its folder cannot be written by this "
        f"process ({refused.strerror}), so it cannot be created. Create it, or let this user write "
        "the folder."
    )


class ProgressLog:
    """Statement progress of the run, appended to the lock file while it migrates.

    Why not the journal table: it lives in the database file, so each journal write mid-migration
    is a write transaction on a second connection that must first re-read the schema the migration
    just changed; with hundreds of tables that made a full upgrade half again as slow. An append
    to the lock file, which the run holds open and locked anyway, costs a write (and ~0.3 ms for
    an fdatasync), and is as durable as the statement it precedes. The fdatasync is skipped only
    before a statement that cannot be applied twice unnoticed
    (:func:`~alembic_deploy.progress.tracker.repeats_visibly`): that record survives a kill -9, and
    were it lost with the machine, the statement's second run fails instead.

    Layout: the holder line, then one JSON record per line, the newest last. A last line torn by a
    power cut is skipped for the one before it. The run's final state goes to the journal
    (:meth:`saved`); a run that dies first leaves its records to the next holder, which keeps the
    last of them (:attr:`inherited`) until recovery copied it into the crashed run's journal row
    (:func:`alembic_deploy.steps.recovery.recover`), so a holder that never recovers (a lock
    probe) loses nothing.
    """

    def __init__(self, fd: int, inherited: dict[str, Any] | None = None) -> None:
        self.fd = fd
        #: Records written that the journal does not hold yet (the file is kept on release).
        self.unsaved = False
        #: The last record of a holder that died before saving it; kept in the file until adopted.
        self.inherited = inherited
        #: (journal id, the start of its records): the same for every record of a run.
        self._opening: tuple[int | None, str] | None = None
        if inherited is not None:
            self._write_line(json.dumps(inherited, separators=(",", ":")) + "\n")

    def append(self, journal_id: int | None, progress: str, sync: bool = True) -> None:
        """Append ``progress`` (JSON) as the newest record: durably (fdatasync) when ``sync``,
        else only as far as a process crash goes (the page cache outlives the process). The
        next synced record makes the earlier ones durable too."""
        if self._opening is None or self._opening[0] != journal_id:
            self._opening = (journal_id, f'{{"journal_id":{json.dumps(journal_id)},"pid":{os.getpid()},"progress":')
        self._write_line(f"{self._opening[1]}{progress}}}\n", sync)
        self.unsaved = True

    def _write_line(self, line: str, sync: bool = True) -> None:
        os.lseek(self.fd, 0, os.SEEK_END)
        os.write(self.fd, line.encode())
        if sync:
            os.fdatasync(self.fd)

    def saved(self) -> None:
        """The journal now holds the final state: the records may go."""
        self.unsaved = False

    @staticmethod
    def parse(line: str) -> dict[str, Any] | None:
        """A record line, or None for a torn or foreign one."""
        try:
            record = json.loads(line)
        except ValueError:
            return None
        return record if isinstance(record, dict) and isinstance(record.get("progress"), dict) else None

    @classmethod
    def last_record(cls, fd: int) -> dict[str, Any] | None:
        lines = os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace").splitlines()[1:]
        return next((r for r in map(cls.parse, reversed(lines)) if r is not None), None)


def _read_holder(path: Path) -> dict[str, Any]:
    try:
        with path.open() as f:
            line = f.readline().strip()
    except OSError:
        return {}
    return {"holder": line} if line else {}
