"""Step 4 of the fast path's proof: the database, read through the DBAPI driver (or libpq: :mod:`.libpq`),
never SQLAlchemy (see :mod:`alembic_deploy.fastpath`)."""

from __future__ import annotations

import json
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from ..backends.base import for_dialect
from ..compat import has_dialect
from ..errors import AlembicDeployError, ConfigError
from ..provenance import journal_row

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..backends.base import Backend, DirectSession
    from ..report import DeployReport
    from ..settings import Settings

#: Seconds a statement of the fast path may wait (for a lock: a migration by another tool holds the
#: version table, a writer SQLite's database), ended by the server (by SQLite's busy timeout) even
#: where the driver waits inside C code and no signal handler can run until it returns; a longer
#: wait declines to the full path, which waits as long as it takes and can be interrupted.
WAIT_SECONDS = 1.0
#: Seconds a connect may take when the URL does not say (``connect_timeout``); connects wait in
#: Python, where a signal interrupts them at once.
CONNECT_SECONDS = 5.0
#: The version table the fast path reads (env.py's proof rules out any other).
DEFAULT_VERSION_TABLE = "alembic_version"
#: Outcomes after which nothing a run did is left unsettled (partial.py ``SETTLED``,
#: not imported from there: that module is slow to import, for the fast path).
SETTLED = ("applied", "noop", "rolled-back")
#: Journal table names the fast path writes into: what needs no quoting on any backend and fits
#: every backend's identifier limit (PostgreSQL silently truncates past 63 bytes, MySQL stops at
#: 64). Any other name declines: the full path, through SQLAlchemy, quotes or refuses it.
_PLAIN_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


def plain_identifier(name: str) -> bool:
    return _PLAIN_IDENTIFIER.fullmatch(name) is not None


@dataclass(frozen=True)
class JournalState:
    """What the full path's recovery reads from the journal, read by :meth:`DirectConnection.journal_state`."""

    #: A ``running`` row: a run that crashed (the full path closes and reports it) or runs now.
    running: bool
    #: (outcome, progress JSON) of the newest row with statement progress.
    last_progress: tuple[str, str] | None

    def needs_recovery(self, known: Iterable[str]) -> bool:
        """Could the full path's recovery (``recovery.recover``/``find_partial``) do anything
        here: report a crashed run, or find a partly applied revision? ``known``: every revision
        of the scripts, the database being at their heads, so each is applied.

        ``find_partial`` looks only at the newest row with progress, and only when its outcome is
        not settled; there it refuses over a revision that is not applied (one these scripts lack:
        an ancestor of the heads is applied), or a downgrade's that still is, whose statements are
        durable or may be (one that commits by itself still ``running``, or one ``undoing``:
        recovery settles those by looking at the schema, which the fast path does not). Any doubt
        counts as yes: declining costs only time. Progress a crashed run left outside its row
        (MySQL's MEMORY table, SQLite's lock file) needs no look of its own: recovery moves it only
        into a row still ``running``."""
        if self.running:
            return True
        if self.last_progress is None or self.last_progress[0] in SETTLED:
            return False
        from ..progress.record import Progress  # only on this rare path: slow to import
        from ..progress.sql_text import READ

        try:
            progress = Progress.from_dict(json.loads(self.last_progress[1]))
        except (ValueError, TypeError, KeyError, AttributeError):
            return True
        if progress.version_table != DEFAULT_VERSION_TABLE or progress.version_table_schema is not None:
            return True  # recovery reads another version table than the fast path did
        known = set(known)
        return any(
            statement.kind != READ and (
                statement.applied or statement.state == "undoing"
                or (statement.state == "running" and statement.may_commit)
            )
            # A downgrade (rollback) is unsettled while its revision is applied, as every known one is.
            for entry in progress.revisions if entry.revision not in known or entry.direction == "downgrade"
            for statement in entry.statements
        )


class DirectConnection:
    """The database, read and written without SQLAlchemy: a DBAPI driver, or libpq itself."""

    def __init__(self, backend: Backend, session: DirectSession) -> None:
        #: What differs between databases (quoting, timestamps, bounds): the full path's backend.
        self.dialect = backend
        #: The backend's name, as the full path reports it.
        self.backend = backend.name
        self.conn = session.conn
        #: "qmark" (sqlite3), "format" (pymysql, psycopg) or "dollar" (libpq's $1, $2...).
        self.paramstyle = session.paramstyle
        #: The DBAPI ``connect()`` keywords, when the session can serve another engine (:meth:`hand_over`).
        self.connect_args = session.connect_args

    @classmethod
    def open(cls, url: str, libpq: bool = True) -> DirectConnection | None:
        """A connection to the database env.py would migrate; None when unsure. ``libpq``: on
        PostgreSQL through psycopg[binary]'s libpq (:mod:`.libpq`) where it loads, else psycopg."""
        try:
            parts = urlsplit(url)
            dialect, _, driver = parts.scheme.partition("+")
            backend = for_dialect(dialect)
            module = backend.direct_drivers.get(driver)
            if module is None or not _importable(module):
                return None  # env.py's engine fails without its driver: the fast path must not answer
            if not has_dialect(dialect, driver):
                return None  # env.py fails without it (SQLAlchemy 1.4 has no psycopg 3 dialect)
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            session = backend.open_direct(url, parts, query, module, libpq)
            return None if session is None else cls(backend, session)
        except AlembicDeployError as exc:
            if isinstance(exc, ConfigError):
                return None  # a dialect without a backend: the full path says so
            raise  # Interrupted, raised by the SIGTERM handler inside a blocking connect
        except Exception:  # noqa: BLE001 - any doubt (driver missing, server down): full path
            return None

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.paramstyle == "dollar" or isinstance(self.conn, Psycopg2Session):
            rows: list[tuple[Any, ...]] = self.conn.execute(sql, params)
            return rows
        cur = self._cursor(sql, params)
        return list(cur.fetchall()) if cur.description is not None else []

    def _cursor(self, sql: str, params: tuple[Any, ...]) -> Any:
        """A DBAPI cursor that ran ``sql``: on MySQL/MariaDB within the fast path's time bound."""
        sql = self.dialect.bounded(sql, int(WAIT_SECONDS), self.conn)
        cur = self.conn.cursor()
        cur.execute(sql, params) if params else cur.execute(sql)
        return cur

    def _placeholders(self, count: int) -> str:
        if self.paramstyle == "dollar":
            return ", ".join(f"${i}" for i in range(1, count + 1))
        return ", ".join(["?" if self.paramstyle == "qmark" else "%s"] * count)

    def _quote(self, name: str) -> str:
        """``name`` as a quoted identifier; :func:`plain_identifier` names only, so nothing but
        the quotes is ever needed."""
        return self.dialect.quote_identifier(name)

    def query_column(self, sql: str) -> list[str] | None:
        try:
            return [row[0] for row in self._execute(sql)]
        except AlembicDeployError:
            raise
        except Exception:  # noqa: BLE001 - missing table or anything odd: full path
            return None

    def journal_state(self, table: str) -> JournalState | None:
        """What the full path's recovery (steps/recovery.py) reads from the journal before it
        migrates: the ``running`` rows (runs that crashed, or run now) and the newest row with
        statement progress (``find_partial``). None when the journal cannot be read (none yet)."""
        journal = self._quote(table)
        try:
            rows = self._execute(
                f"SELECT outcome, progress FROM (SELECT outcome, progress FROM {journal} "
                "WHERE progress IS NOT NULL ORDER BY id DESC LIMIT 1) last_progress "
                f"UNION ALL SELECT outcome, NULL FROM {journal} WHERE outcome = 'running'"
            )
        except AlembicDeployError:
            raise
        except Exception:  # noqa: BLE001 - no journal (or anything odd): the full path
            return None
        running = any(outcome == "running" for outcome, _ in rows)
        last = next(((o, p) for o, p in rows if p is not None), None)
        return JournalState(running, last)

    def insert_journal_row(self, settings: Settings, report: DeployReport) -> int | None:
        """The no-op's journal row; its id, or None when it could not be written."""
        row = journal_row(settings, report, "noop")
        now = datetime.fromtimestamp(report.started_at, timezone.utc)
        end = datetime.fromtimestamp(report.finished_at or time.time(), timezone.utc)
        row["started_at"], row["finished_at"] = self.dialect.journal_timestamp(now), self.dialect.journal_timestamp(end)
        sql = (
            f"INSERT INTO {self._quote(settings.journal_table)} ({', '.join(row)}) "
            f"VALUES ({self._placeholders(len(row))})"
        )
        try:
            if self.dialect.returning_id:
                (ident,), = self._execute(f"{sql} RETURNING id", tuple(row.values()))
                return int(ident)
            return int(self._cursor(sql, tuple(row.values())).lastrowid)
        except AlembicDeployError:
            raise
        except Exception:  # noqa: BLE001 - no journal yet: the full path creates it
            return None

    def hand_over(self, cparams: dict[str, Any]) -> Any:
        """The DBAPI session, in the state a new one starts in, for a ``connect()`` with keywords
        ``cparams`` that would reach the same server, database and user the same way; None (and
        the session closed) otherwise. Only once: it then belongs to the caller."""
        conn, self.conn = self.conn, None
        mine = self.connect_args
        given = {**_PYMYSQL_DEFAULTS, **cparams}
        same = (
            conn is not None and mine is not None and set(cparams) <= set(mine)
            and str(given["host"]).lower() == mine["host"].lower()
            and all(given[k] == mine[k] for k in mine if k != "host")
        )
        try:
            if same:
                conn.autocommit(False)  # PyMySQL's default, as a new session would have it
                return conn
        except Exception:  # noqa: BLE001 - gone meanwhile: the engine connects afresh
            pass
        if conn is not None:
            _close(conn)
        return None

    def close(self) -> None:
        conn, self.conn = self.conn, None
        if conn is not None:
            _close(conn)


class Psycopg2Session:
    """A psycopg2 session in its asynchronous mode, so that each wait is a ``select`` in Python
    (a signal's handler runs) with a deadline; a blocking psycopg2 call waits inside libpq."""

    def __init__(self, conninfo: str, options: str, timeout: float) -> None:
        import psycopg2

        self.conn = psycopg2.connect(conninfo, options=options, async_=True)
        try:
            self._wait(timeout)
        except BaseException:
            self.close()
            raise

    def _wait(self, timeout: float = CONNECT_SECONDS) -> None:
        import select

        from psycopg2.extensions import POLL_OK, POLL_READ, POLL_WRITE

        deadline = time.monotonic() + timeout
        while True:
            state = self.conn.poll()
            if state == POLL_OK:
                return
            remaining = deadline - time.monotonic()
            if state not in (POLL_READ, POLL_WRITE) or remaining <= 0:
                raise TimeoutError("PostgreSQL did not answer in time")
            fd = self.conn.fileno()
            select.select([fd] if state == POLL_READ else [], [fd] if state == POLL_WRITE else [], [], remaining)

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        cur = self.conn.cursor()
        try:
            cur.execute(sql, params) if params else cur.execute(sql)
            self._wait()
        except BaseException:
            self.close()  # a statement half read: nothing else can run on this session
            raise
        return list(cur.fetchall()) if cur.description is not None else []

    def close(self) -> None:
        self.conn.close()


def libpq_connect(conninfo: str, timeout: float) -> Any:
    """A :mod:`.libpq` connection; None, for psycopg to connect instead, when that libpq is not
    there or fails in any way but the server's refusal or a timeout (which psycopg would meet too)."""
    from . import libpq

    try:
        return libpq.connect(conninfo, timeout)
    except (libpq.LibpqError, AlembicDeployError):
        raise  # refused, timed out, or interrupted by a signal
    except Exception:  # noqa: BLE001 - anything unexpected of the ctypes layer: psycopg
        return None


#: PyMySQL's defaults for what SQLAlchemy leaves out of ``connect()`` when the URL does.
_PYMYSQL_DEFAULTS = {"host": "localhost", "port": 3306, "user": "", "password": "", "charset": "utf8mb4",
                     "client_flag": 0, "connect_timeout": 10}


def _close(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001
        pass


def _importable(module: str) -> bool:
    if module in sys.modules:
        return True
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        return False
