"""The per-dialect contract and its registry.

A backend says only what differs between databases: how to take the migration lock, which
connection errors are worth retrying, how to bound lock waits on the migrating connection and how
to cancel a running statement. Backends register under SQLAlchemy's ``dialect.name``.

Lock timeouts follow one rule everywhere: ``timeout < 0`` waits forever, ``timeout == 0`` tries
once, ``timeout > 0`` polls (jittered exponential backoff, capped) until that many seconds passed,
then raises :class:`~alembic_deploy.errors.LockNotAcquired`.
"""

from __future__ import annotations

import functools
import hashlib
import operator
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from ..errors import LockNotAcquired
from ..masking import ANY_DIALECT, SQLLiterals

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence
    from datetime import datetime
    from pathlib import Path
    from urllib.parse import SplitResult

    from sqlalchemy import Table
    from sqlalchemy.engine import URL, Connection, Engine
    from sqlalchemy.sql import Executable
    from sqlalchemy.sql.elements import TextClause
    from tenacity import Retrying
    from tenacity.stop import stop_base

#: Cap on the pause between two lock attempts: a released lock is picked up within this.
LOCK_POLL_MAX_SECONDS = 0.5
#: How often a waiting replica says again who holds the lock.
LOCK_REPORT_EVERY_SECONDS = 10.0


def holder_label() -> str:
    return f"alembic-deploy host={socket.gethostname()} pid={os.getpid()}"


@dataclass
class MigrationLock:
    """A held lock. ``connection`` is the dedicated lock session (None for file locks); it stays
    idle while migrations run, so it can journal on the migrating session's behalf (cancels use
    a fresh connection: a signal may arrive while this one is busy)."""

    name: str
    waited: float
    connection: Connection | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Take the lock again on a new session after the old one died (a database restart drops
    #: session locks); replaces ``connection``. None where the lock cannot be lost (file locks).
    renew: Callable[[], None] | None = field(default=None, repr=False)
    #: Where statement progress is written while migrating, when the backend has a cheaper place
    #: than the journal table (SQLite: the lock file, :class:`~.sqlite.ProgressLog`); None: the journal.
    progress_log: Any = field(default=None, repr=False)

    def alive(self) -> bool:
        """Is the lock session still there (so the lock is still ours)? True for file locks."""
        if self.connection is None:
            return True
        try:
            self.connection.exec_driver_sql("SELECT 1")
        except Exception:  # noqa: BLE001 - any failure means the session, and the lock, are gone
            return False
        return True


#: Seconds one connection attempt of the tool's own may take (the wait step retries).
CONNECT_TIMEOUT_SECONDS = 5


@dataclass(frozen=True)
class Driver:
    """One DBAPI driver SQLAlchemy supports for a backend, as far as the tool's own connections
    and the migrating session's driver calls differ between drivers."""

    #: The module SQLAlchemy imports for it (``database.DRIVER_PACKAGES`` names what installs it).
    module: str
    #: Only usable through SQLAlchemy's asyncio extension (env.py's ``async_engine_from_config``).
    is_async: bool = False
    #: The ``connect()`` keyword bounding one connection attempt and nothing else, in seconds;
    #: None when the driver has no such keyword (pg8000's ``timeout`` bounds every later read too).
    connect_timeout_arg: str | None = None


@dataclass(frozen=True)
class ClientCommand:
    """A client program a backup or a restore runs. ``argv`` never holds a password (every user of
    the host reads it in ``ps``); the password travels in ``env`` (added to the process's own
    environment) or in a 0600 file the backend wrote in the caller's private folder."""

    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict, repr=False)


class Backend:
    name: ClassVar[str] = ""
    #: Can a failed revision be rolled back whole (DDL inside transactions)?
    transactional_ddl: ClassVar[bool] = True
    #: The drivers SQLAlchemy supports for this backend, by SQLAlchemy driver name.
    drivers: ClassVar[dict[str, Driver]] = {}
    #: Sync drivers the tool's own (lock, journal, verification) connections may use when the URL
    #: names an async one, in order of preference: the first one installed is taken.
    sync_siblings: ClassVar[tuple[str, ...]] = ()
    #: Extra that installs the default driver, for "missing driver" messages.
    extra: ClassVar[str] = ""
    #: How its SQL writes literals, so what the journal keeps of a statement masks them all.
    literals: ClassVar[SQLLiterals] = ANY_DIALECT
    #: Why statements of a revision can be durable while the version table does not record it (a
    #: partly applied revision): the end of a sentence "..., because <partial_cause> and nothing
    #: rolled them back".
    partial_cause: ClassVar[str] = "they ran outside a transaction"
    #: The server's port when the URL names none (None: no server).
    default_port: ClassVar[int | None] = None
    #: Does :meth:`cancel` need a connection of the tool's own to the server? False where the
    #: statement is cancelled through the migrating connection itself (SQLite's interrupt).
    cancel_needs_connection: ClassVar[bool] = True

    # -- engines -----------------------------------------------------------------------------
    def own_driver(self, driver: str) -> str:
        """The driver of the tool's own connections for a URL naming ``driver``: that driver, or
        for an async one the first installed sync sibling (the tool's code is synchronous, and a
        sibling reaches the same server with the same credentials).

        Raises :class:`~alembic_deploy.errors.ConfigError` (exit 2) naming the package to install
        when no sibling is installed: the async driver alone cannot serve a synchronous session."""
        known = self.drivers.get(driver)
        if known is None or not known.is_async:
            return driver
        from ..compat import has_dialect

        for sibling in self.sync_siblings:
            if has_dialect(self.name, sibling) and importable(self.drivers[sibling].module):
                return sibling
        from ..database import DRIVER_PACKAGES
        from ..errors import ConfigError

        module = self.drivers[self.sync_siblings[0]].module
        package = DRIVER_PACKAGES.get(module, module)
        hint = f"pip install 'alembic-deploy[{self.extra}]'" if self.extra else f"pip install '{package}'"
        raise ConfigError(
            f"The database URL names the async driver {driver!r}; env.py migrates through it, but "
            "alembic-deploy's own connections (migration lock, journal, verification) are "
            f"synchronous and need one of the sync drivers {', '.join(self.sync_siblings)}, and "
            f"none is installed. Install one beside it: `{hint}` (installs {package})."
        )

    def connect_args(self, driver: str, lock_wait: float | None = None) -> dict[str, Any]:
        """Arguments that keep a single connection attempt short (the wait step retries), as
        ``driver`` spells them; none for a driver not in :attr:`drivers` (an unknown keyword would
        fail every connect). ``lock_wait``: how long one statement of the tool's own may wait for
        a lock another process holds on the whole database (SQLite's writers; None: the
        backend's default); the server-side backends bound their waits on the session instead."""
        known = self.drivers.get(driver)
        if known is None or known.connect_timeout_arg is None:
            return {}
        return {known.connect_timeout_arg: CONNECT_TIMEOUT_SECONDS}

    def missing_dialect_advice(self, drivername: str, driver: str) -> str | None:
        """The message for a URL naming ``drivername`` (``dialect+driver``) when the installed
        SQLAlchemy lacks that dialect for a reason this backend knows (its dialect came with a
        later release), saying what to use instead; None: the generic message."""
        return None

    def default_drivername(self) -> str | None:
        """The ``dialect+driver`` the tool's own engine uses for a URL that names no driver; None:
        SQLAlchemy's default for the dialect."""
        return None

    def connect(self, driver: str, cparams: dict[str, Any]) -> Any:
        """One DBAPI connection of the tool's own made here (SQLAlchemy's ``do_connect`` event),
        for a driver whose connect cannot be bounded by a keyword alone; None: the driver's
        ``connect(**cparams)`` as usual."""
        return None

    # -- waiting for the database --------------------------------------------------------------
    def is_transient(self, exc: BaseException) -> bool:
        """True when the error means "not reachable yet" (retry), False for "wrong" (fail now)."""
        text = str(exc).lower()
        return any(marker in text for marker in _TRANSIENT_MARKERS)

    def is_auth_failure(self, exc: BaseException) -> bool:
        """The server refused the login (a wrong password or IAM token), raised by a driver's
        ``connect()`` (SQLAlchemy's wrapper or not): a rotated secret is read again once."""
        return False

    def tls_required_problem(self, url: URL) -> str | None:
        """Why ``url`` does not make the driver refuse an unencrypted connection (RDS IAM tokens
        are accepted over TLS only); None when it does."""
        return "this database is not reached over a network"

    def error_text(self, exc: BaseException) -> str:
        """The driver's error message, as one would read it (``orig`` of SQLAlchemy's wrapper)."""
        return str(getattr(exc, "orig", None) or exc)

    def is_refused(self, exc: BaseException) -> bool:
        """The server refused the statement for lack of a privilege, or a write because the database
        is read-only (a role with SELECT only, no CREATE on the schema, a read-only replica or file):
        retrying will not help; the role or the database has to change."""
        return False

    def write_access_advice(self, table: str) -> str:
        """What gives this connection the right to create and write the journal table ``table``."""
        return (f"grant the role CREATE on the schema and SELECT, INSERT, UPDATE on {table!r} (or create "
                "the table once by running alembic-deploy with a role that can)")

    # -- the migrating session ----------------------------------------------------------------
    def session_id(self, dbapi_connection: Any) -> Any:
        """The server's id for the migrating session (to cancel it), or None."""
        return None

    def session_alive(self, conn: Connection, session_id: Any) -> bool | None:
        """Does the server still run session ``session_id`` (a crashed run's migrating session
        whose last statement the server may still be executing)? None if it cannot tell."""
        return None

    def cancel(self, lock_connection: Connection | None, dbapi_connection: Any, session_id: Any) -> None:
        """Cancel the statement running on the migrating session. Called from the canceller thread
        of :mod:`alembic_deploy.signals` with a fresh connection of the tool's own (never one that
        the main thread may be using)."""

    # -- timeouts on the migrating session ---------------------------------------------------------
    def timeout_settings(
        self, dbapi_connection: Any, lock_timeout: float | None, statement_timeout: float | None
    ) -> dict[str, str | None]:
        """Session variables that impose these timeouts (seconds), as server-native values.

        ``None`` for a variable means "not imposed by alembic-deploy": the session keeps the value it
        had before alembic-deploy first changed it (env.py's, the role's or the server's).
        """
        return {}

    def read_settings(self, dbapi_connection: Any, names: list[str]) -> dict[str, str]:
        """Current session values of ``names`` (to restore them later)."""
        return {}

    def effective_lock_timeout(self, seconds: float) -> float:
        """The lock timeout the server will apply when asked for ``seconds`` (its granularity)."""
        return seconds

    def write_settings(self, dbapi_connection: Any, values: dict[str, str]) -> None:
        """Set session variables on the raw DBAPI connection.

        The raw connection, not SQLAlchemy's: a statement through SQLAlchemy would autobegin a
        transaction (changing what alembic decides about owning it) and would be counted as a
        statement of the revision by the progress listeners.
        """

    # -- statement progress (:mod:`alembic_deploy.progress`) -------------------------------------
    def commits_by_itself(self, ddl: bool, in_transaction: bool | None) -> bool:
        """Is a change (``ddl``: a DDL statement, else DML) durable as soon as it completes,
        outside autocommit mode? ``in_transaction``: the session is inside a transaction before
        it runs (None: the driver cannot tell). A backend that does not say: assume it is (the
        safe side, "may be applied")."""
        return True

    #: A DDL statement commits the transaction open before it (MySQL's implicit commit), so the
    #: statements run in it are durable once the DDL starts.
    ddl_commits_open_transaction: ClassVar[bool] = False
    #: The journal's writes need the database write lock the migrating connection holds inside a
    #: transaction (SQLite): a progress write then waits for the next chance, never blocking the
    #: migration against itself.
    journal_shares_write_lock: ClassVar[bool] = False
    #: How this backend's drivers tell, with no round trip, whether the session is inside a
    #: transaction: functions of the driver's own connection, tried in order; the first that
    #: answers with a bool or an int is the one used (:meth:`transaction_probe`).
    transaction_probes: ClassVar[tuple[Callable[[Any], Any], ...]] = ()

    def transaction_probe(self, dbapi_connection: Any) -> Callable[[], bool | None]:
        """A function telling whether this connection's session is inside a transaction, as its
        driver knows it (no round trip; None when the driver cannot tell). Found once per
        connection: it is asked around every statement of the migration."""
        raw = driver_connection(dbapi_connection)
        for probe in self.transaction_probes:
            try:
                value = probe(raw)
            except Exception:  # noqa: BLE001 - not this driver (or a closed connection)
                continue
            if isinstance(value, (bool, int)):
                return functools.partial(_probe_or_none, probe, raw)
        return _unknown

    def autocommit_probe(self, dbapi_connection: Any) -> Callable[[], bool]:
        """A function telling whether this connection's session is in autocommit mode now
        (alembic's ``autocommit_block``, an AUTOCOMMIT engine), read at each call: the mode
        changes mid-run. Where the driver keeps it is found once (the search costs several
        attribute misses): an ``autocommit`` attribute (psycopg 2 and 3, SQLAlchemy's asyncpg
        adapter), ``get_autocommit()`` (PyMySQL, mysqlclient; a closed connection: False), else
        sqlite3's ``isolation_level`` None."""
        driver = driver_connection(dbapi_connection)
        for obj in (dbapi_connection, driver):
            if isinstance(getattr(obj, "autocommit", None), bool):
                return functools.partial(_autocommit_attribute, obj)
            if callable(getattr(obj, "get_autocommit", None)):
                return functools.partial(_get_autocommit, obj)
        return functools.partial(_no_isolation_level, driver)

    def needs_autocommit(self, sql: str) -> bool:
        """A statement that cannot run inside a transaction (alembic ran it in an autocommit
        block): ``repair`` runs it in autocommit mode too."""
        return False

    def object_exists(
        self, dbapi_connection: Any, kind: str, name: str, table: str | None, schema: str | None,
    ) -> bool | None:
        """Does the schema object exist now, as the migrating session sees it? ``kind`` is
        ``table``, ``column``, ``index`` or ``constraint`` (an index and a constraint are found
        by either name), names spelt as the statement that creates or drops it spells them
        (``table``: the table of a column, index or constraint, None if the statement names
        none). None when it cannot be looked up.

        Asked just before a statement that commits by itself runs, so one query on the raw
        DBAPI connection (as :meth:`write_settings`: not seen by the progress listeners, opening
        no transaction that matters: the statement about to run commits by itself). A doubt
        must answer True, never False: False lets ``repair --rollback-partial`` drop the object
        should the process die inside that statement."""
        return None

    #: The server has a table engine whose writes commit without touching the disk (MySQL's
    #: MEMORY): progress records that need only survive this process go there (journal.py).
    volatile_progress: ClassVar[bool] = False
    #: The ``Table`` keyword arguments that put a table in that engine (with volatile_progress).
    volatile_table_options: ClassVar[dict[str, Any]] = {}

    def upsert(self, table: Table, values: dict[str, Any]) -> Executable:
        """An INSERT of one row into ``table`` that, when a row with the same primary key exists,
        replaces that row's other columns instead (the volatile table's write; only backends with
        volatile_progress need one)."""
        raise NotImplementedError(f"{self.name} keeps no volatile table")

    def send_query(
        self, dbapi_connection: Any, sql: str, params: tuple[Any, ...] | dict[str, Any]
    ) -> Callable[[], Any] | None:
        """Send ``sql`` without waiting for the server's reply, and return the function that reads
        it (raising the statement's error); None, having sent nothing, when the driver cannot
        split the two. Until the reply is read, nothing else may use the connection."""
        return None

    def is_lock_timeout(self, exc: BaseException) -> bool:
        """The statement gave up waiting for a lock (nothing it would have changed was changed)."""
        return False

    def is_statement_timeout(self, exc: BaseException) -> bool:
        """The statement ran longer than the statement timeout and was cancelled by the server."""
        return False

    def describe_blockers(self, conn: Connection, session_id: Any) -> list[dict[str, Any]]:
        """Sessions the migrating session (``session_id``) is waiting for, most certain first.

        Each: ``pid``, ``state``, ``since`` (query or transaction start), ``query``. Called while a
        statement of the migration waits, from a separate connection: once a lock timeout fired
        nothing waits any more, so asking afterwards would find nobody.
        """
        return []

    # -- migration lock ----------------------------------------------------------------------
    def lock_name(self, url_database: str | None, version_table: str, schema: str | None) -> str:
        return f"alembic-deploy:{url_database or ''}:{schema or ''}:{version_table}"

    def try_acquire(self, conn: Connection, name: str) -> bool:
        raise NotImplementedError

    def release(self, conn: Connection, name: str) -> None:
        raise NotImplementedError

    def describe_holder(self, conn: Connection, name: str) -> dict[str, Any]:
        return {}

    def lock_connection(self, engine: Engine, connection: Connection | None = None) -> Connection:
        """The lock session: ``connection`` (idle, outside a transaction) when given, else a new one."""
        return (connection or engine.connect()).execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def lock(
        self,
        engine: Engine,
        name: str,
        timeout: float,
        on_wait: Callable[[dict[str, Any]], None] | None = None,
        connection: Connection | None = None,
    ) -> Iterator[MigrationLock]:
        """Hold the migration lock on a dedicated connection for the duration of the block:
        ``connection`` when given (the block closes it), else a new one."""
        conn = self.lock_connection(engine, connection)
        held = MigrationLock(name=name, waited=0.0, connection=conn)

        def renew() -> None:
            old = held.connection
            if old is not None:
                try:
                    old.close()
                except Exception:  # noqa: BLE001 - it is dead already
                    pass
            new = held.connection = self.lock_connection(engine)
            self._poll(lambda: self.try_acquire(new, name), timeout,
                       lambda: self.describe_holder(new, name), on_wait)

        held.renew = renew
        try:
            held.waited = self._poll(lambda: self.try_acquire(conn, name), timeout,
                                     lambda: self.describe_holder(conn, name), on_wait)
            yield held
        finally:
            current = held.connection or conn
            try:
                if not current.closed:
                    self.release(current, name)
            except Exception:  # noqa: BLE001 - closing the session releases it anyway
                pass
            finally:
                for each in {current, conn}:
                    try:
                        each.close()
                    except Exception:  # noqa: BLE001 - e.g. interrupted mid-command: drop it
                        each.invalidate()

    @staticmethod
    def _poll(
        attempt: Callable[[], bool],
        timeout: float,
        describe: Callable[[], dict[str, Any]],
        on_wait: Callable[[dict[str, Any]], None] | None,
    ) -> float:
        from .. import retrying  # tenacity: not for the fast path, which has no lock to wait for

        started = time.monotonic()
        last_report = [-LOCK_REPORT_EVERY_SECONDS]

        def tick(_state: object) -> None:
            now = time.monotonic() - started
            if on_wait is not None and now - last_report[0] >= LOCK_REPORT_EVERY_SECONDS:
                last_report[0] = now
                on_wait(describe())

        def loop() -> Retrying:
            from tenacity import (
                Retrying,
                retry_if_result,
                stop_after_attempt,
                stop_after_delay,
                stop_never,
                wait_random_exponential,
            )

            stop: stop_base
            if timeout == 0:
                stop = stop_after_attempt(1)
            elif timeout < 0:
                stop = stop_never
            else:
                stop = stop_after_delay(timeout)
            return Retrying(
                retry=retry_if_result(lambda ok: not ok),
                wait=wait_random_exponential(multiplier=0.02, max=LOCK_POLL_MAX_SECONDS),
                stop=stop,
                before_sleep=tick,
            )

        try:
            retrying.call(attempt, loop)
        except retrying.GaveUp:
            holder = describe()
            raise LockNotAcquired(
                f"The migration lock is still held by another deploy after {timeout:g}s "
                f"({_holder_text(holder)}). Another replica or a CI job is migrating this "
                "database; wait for it to finish, or raise --lock-timeout-wait. A crashed holder "
                "never keeps the lock: it is released when its session or process ends.",
                holder=holder or None,
            ) from None
        return time.monotonic() - started


    # -- the fast path's own session: a DBAPI driver, no SQLAlchemy (fastpath/direct.py) ---------
    #: The DBAPI module env.py's engine imports, by the driver a URL names ("" for none: the
    #: dialect's default), for the drivers the fast path can read this database through. A URL
    #: naming any other driver takes the full path.
    direct_drivers: ClassVar[dict[str, str]] = {}
    #: Quotes an identifier (an embedded one doubled).
    identifier_quote: ClassVar[str] = '"'
    #: An inserted row's id comes from ``INSERT ... RETURNING id``, not the cursor's ``lastrowid``.
    returning_id: ClassVar[bool] = False

    def open_direct(
        self, url: str, parts: SplitResult, query: dict[str, str], module: str, libpq: bool,
    ) -> DirectSession | None:
        """A session to the database ``url`` names, through ``module`` (from :attr:`direct_drivers`,
        installed) or a client that reaches the same database the same way (``libpq``: psycopg's
        bundled libpq may serve PostgreSQL). Its statements wait at most ``WAIT_SECONDS`` of
        fastpath/direct.py for a lock, its connect ``CONNECT_SECONDS`` unless the URL says. None
        when the URL holds anything this cannot honour exactly as env.py's engine would."""
        return None

    def quote_identifier(self, name: str) -> str:
        mark = self.identifier_quote
        return f"{mark}{name.replace(mark, mark * 2)}{mark}"

    def journal_timestamp(self, moment: datetime) -> Any:
        """``moment`` (aware, UTC) as a DBAPI parameter, stored as SQLAlchemy's ``DateTime(timezone=True)``
        column of the journal stores it."""
        return moment

    def bounded(self, sql: str, seconds: int, dbapi_connection: Any) -> str:
        """``sql``, ended by the server once it waited ``seconds`` for a lock; unchanged where the
        bound is the session's (set when it connects) or the driver's."""
        return sql

    # -- backups (steps/backup.py, backups/) -----------------------------------------------------
    #: The backend's own backup method, as the journal records it, and its files' suffix.
    backup_method: ClassVar[str] = ""
    backup_suffix: ClassVar[str] = ".dump"
    #: True where a backup is a copy made through the driver (:meth:`copy_database`), not a
    #: client program's output (:meth:`dump_command`).
    backup_by_copy: ClassVar[bool] = False
    #: The Aurora engine a cluster snapshot of this backend is restored with (``restore``'s steps).
    aurora_engine: ClassVar[str] = ""

    def dump_command(self, url: URL, tables: Sequence[str], exclude: Sequence[str], private: Path) -> ClientCommand:
        """The program that writes a backup of ``url``'s database to its stdout, consistent as of
        one moment: only ``tables`` when any are given, never those in ``exclude`` (the journal's
        own tables). ``private`` is a folder only this process reads, for a password file."""
        raise NotImplementedError(f"{self.name} has no dump program")

    def restore_command(self, url: URL, replace: bool, private: Path) -> ClientCommand:
        """The program that reads a backup :meth:`dump_command` wrote, on its stdin, into ``url``'s
        database; ``replace``: drop what the backup holds before recreating it."""
        raise NotImplementedError(f"{self.name} has no restore program")

    def check_backup_command(self) -> ClientCommand | None:
        """A program that reads a backup on its stdin, needing no database, and exits non-zero when
        :meth:`restore_command` could not restore all of it: run before a restore drops anything.
        None: the backend has no such check."""
        return None

    def copy_problem(self, source: Path) -> str | None:
        """Where :attr:`backup_by_copy`: why ``source`` is not a copy :meth:`restore_copy` can
        restore (None: it is one), read before a restore drops anything."""
        return None

    def copy_database(self, engine: Engine, destination: Path, exclude: Sequence[str]) -> None:
        """Where :attr:`backup_by_copy`: copy ``engine``'s database to the file ``destination``
        while others may go on writing to it, leaving out the tables in ``exclude``."""
        raise NotImplementedError(f"{self.name} backs up with a dump program")

    def restore_copy(self, source: Path, engine: Engine) -> None:
        """Where :attr:`backup_by_copy`: make ``engine``'s database a copy of ``source``."""
        raise NotImplementedError(f"{self.name} restores with a client program")

    # -- drift: a scratch database beside the live one (drift.py) ------------------------------
    def create_scratch(self, engine: Engine, name: str) -> str:
        """Create an empty database named ``name`` where ``engine``'s database lives, for the
        migrations to be replayed into; return the database part of a URL that reaches it (the
        live URL with this as its database). Raises the driver's error when the role may not
        create databases. Servers: ``CREATE DATABASE`` on the same server."""
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql(f"CREATE DATABASE {self.quote_identifier(name)}{self._scratch_options(conn)}")
        return name

    def _scratch_options(self, conn: Connection) -> str:
        """What follows ``CREATE DATABASE name`` so the scratch database is made like the live one."""
        return ""

    def drop_scratch(self, engine: Engine, database: str) -> None:
        """Drop what :meth:`create_scratch` made (``database``, as it returned it), even while a
        session (a replay cut short by a signal) is still connected to it; nothing if it is gone."""
        with engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            self._end_sessions(conn, database)
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {self.quote_identifier(database)}")

    def _end_sessions(self, conn: Connection, database: str) -> None:
        """End the sessions still connected to ``database`` (one would hold the drop up)."""

    def other_schemas(self, inspector: Any) -> list[str]:
        """The schemas besides the default one that drift compares: those a database holds of its
        own, so a scratch database has its own too. None by default: on MySQL/MariaDB a schema is
        another database (a replay would share it), on SQLite an attached file."""
        return []

    #: The server's list of databases whose name is LIKE ``:pattern`` (one column: the name).
    databases_like: ClassVar[str] = ""

    def scratch_databases(self, engine: Engine, prefix: str) -> list[str]:
        """Every scratch database whose name starts with ``prefix`` that ``engine``'s role can see,
        as :meth:`drop_scratch` takes them (the server's database names)."""
        from sqlalchemy import text

        with engine.connect() as conn:
            rows = conn.execute(text(self.databases_like), {"pattern": prefix.replace("_", "%") + "%"})
            return sorted(str(name) for (name,) in rows if str(name).startswith(prefix))

    def missing_database(self, engine: Engine) -> str | None:
        """Why ``engine``'s database is not there, where connecting would create it rather than
        fail (a reader must not leave an empty database behind); None when it is there, or when
        connecting to a missing one fails on its own (the servers: unknown database)."""
        return None


class DirectSession(NamedTuple):
    """A DBAPI session the fast path opened without SQLAlchemy (:meth:`Backend.open_direct`)."""

    conn: Any
    #: "qmark" (sqlite3), "format" (pymysql, psycopg) or "dollar" (libpq's $1, $2...).
    paramstyle: str
    #: The DBAPI ``connect()`` keywords, when the session can serve the full path's engine.
    connect_args: dict[str, Any] | None = None


def text(sql: str) -> TextClause:
    """SQLAlchemy's ``text()``, imported when first used: the backends are imported by the fast
    path too, which proves a no-op without loading SQLAlchemy."""
    from sqlalchemy import text as sql_text

    return sql_text(sql)


def _holder_text(holder: dict[str, Any]) -> str:
    if not holder:
        return "holder unknown"
    return ", ".join(f"{k} {v}" for k, v in holder.items() if v not in (None, ""))


def raw_query(dbapi_connection: Any, sql: str) -> list[Any]:
    """Run ``sql`` (no parameters: paramstyles differ between drivers) on a raw DBAPI connection.

    Works on SQLAlchemy's adapted async connections (asyncpg, aiomysql) too, as long as it is
    called from inside ``AsyncConnection.run_sync``, which is where env.py runs the migrations.
    """
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(sql)
        return list(cursor.fetchall()) if cursor.description else []
    finally:
        cursor.close()


def driver_connection(dbapi_connection: Any) -> Any:
    """The driver's own connection behind SQLAlchemy's adapter (async drivers), else itself."""
    return getattr(dbapi_connection, "driver_connection", None) or dbapi_connection


def _probe_or_none(probe: Callable[[Any], Any], raw: Any) -> bool | None:
    try:
        return bool(probe(raw))
    except Exception:  # noqa: BLE001 - a closed connection
        return None


def _unknown() -> bool | None:
    return None


def _autocommit_attribute(connection: Any) -> bool:
    return bool(connection.autocommit)


def _get_autocommit(connection: Any) -> bool:
    return _probe_or_none(_GET_AUTOCOMMIT, connection) is True


_GET_AUTOCOMMIT = operator.methodcaller("get_autocommit")


def _no_isolation_level(connection: Any) -> bool:
    return getattr(connection, "isolation_level", "") is None


def sql_name(name: str) -> str | None:
    """``name`` as a SQL string literal, for an identifier of word characters and ``$`` only
    (what statements are parsed into; None for anything else, which is then not looked up)."""
    return f"'{name}'" if name and all(c.isalnum() or c in "_$" for c in name) else None


def importable(module: str) -> bool:
    """``module`` imports (installed, and loads: a broken C extension does not)."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def stable_int64(text: str) -> int:
    """A signed 64-bit integer derived from ``text`` (an advisory lock key)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


_TRANSIENT_MARKERS = (
    "connection refused",
    "could not connect",
    "can't connect",
    "timeout expired",
    "timed out",
    "the database system is starting up",
    "the database system is shutting down",
    "the database system is in recovery mode",
    "could not translate host name",
    "name or service not known",
    "temporary failure in name resolution",
    "server closed the connection unexpectedly",
    "connection reset",
    "lost connection",
    "too many connections",
    "no route to host",
    "network is unreachable",
)

_REGISTRY: dict[str, type[Backend]] = {}


def register(cls: type[Backend]) -> type[Backend]:
    _REGISTRY[cls.name] = cls
    return cls


def for_dialect(name: str) -> Backend:
    from . import mysql, postgresql, sqlite  # noqa: F401 - registration side effect

    try:
        return _REGISTRY[name]()
    except KeyError:
        from ..errors import ConfigError

        raise ConfigError(
            f"alembic-deploy does not support the {name!r} dialect yet; supported: "
            f"{', '.join(sorted(_REGISTRY))}."
        ) from None
