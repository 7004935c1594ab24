"""Step 4 of the fast path's proof: the database, read through the DBAPI driver (or libpq),
never SQLAlchemy (see :mod:`alembic_deploy.fastpath`)."""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from ..compat import has_dialect
from ..errors import AlembicDeployError
from ..provenance import journal_row

if TYPE_CHECKING:
    from ..report import DeployReport
    from ..settings import Settings

# libpq URI parameters that mean the same to libpq as to SQLAlchemy's psycopg dialects.
_LIBPQ_PARAMS = {"sslmode", "sslrootcert", "sslcert", "sslkey", "application_name", "connect_timeout",
                 "target_session_attrs", "options", "host", "port"}
#: (dialect, driver in the URL) -> the DBAPI module env.py's engine imports (SQLAlchemy's defaults
#: for a bare dialect). Env.py fails when it is missing, so the fast path must not answer then.
_ENV_DRIVERS = {
    ("sqlite", ""): "sqlite3",
    ("sqlite", "pysqlite"): "sqlite3",
    ("sqlite", "aiosqlite"): "aiosqlite",
    ("postgresql", ""): "psycopg2",
    ("postgresql", "psycopg2"): "psycopg2",
    ("postgresql", "psycopg"): "psycopg",
    ("postgresql", "psycopg_async"): "psycopg",
    ("postgresql", "asyncpg"): "asyncpg",
    **{(dialect, driver): driver for dialect in ("mysql", "mariadb") for driver in ("pymysql", "aiomysql", "asyncmy")},
}


class DirectConnection:
    """The database, read and written without SQLAlchemy: a DBAPI driver, or libpq itself."""

    def __init__(self, backend: str, conn: Any, paramstyle: str, connect_args: dict[str, Any] | None = None) -> None:
        self.backend = backend
        self.conn = conn
        #: "qmark" (sqlite3), "format" (pymysql, psycopg) or "dollar" (libpq's $1, $2...).
        self.paramstyle = paramstyle
        #: The DBAPI ``connect()`` keywords, when the session can serve another engine (:meth:`hand_over`).
        self.connect_args = connect_args

    @classmethod
    def open(cls, url: str) -> DirectConnection | None:
        """A connection to the database env.py would migrate; None when unsure."""
        try:
            parts = urlsplit(url)
            dialect, _, driver = parts.scheme.partition("+")
            env_driver = _ENV_DRIVERS.get((dialect, driver))
            if env_driver is None or not _importable(env_driver):
                return None
            if not has_dialect(dialect, driver):
                return None  # env.py fails without it (SQLAlchemy 1.4 has no psycopg 3 dialect)
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            if dialect == "sqlite":
                return None if query else cls._sqlite(url)
            if dialect == "postgresql":
                if set(query) - _LIBPQ_PARAMS:
                    return None
                if env_driver == "asyncpg" and any(k.startswith("PG") for k in os.environ):
                    return None  # libpq honours PG* variables that asyncpg ignores (PGOPTIONS...)
                return cls._postgresql(parts, query, psycopg2=env_driver == "psycopg2")
            if set(query) - {"charset"}:
                return None
            return cls._mysql(parts, query)
        except AlembicDeployError:
            raise  # Interrupted, raised by the SIGTERM handler inside a blocking connect
        except Exception:  # noqa: BLE001 - any doubt (driver missing, server down): full path
            return None

    @classmethod
    def _sqlite(cls, url: str) -> DirectConnection | None:
        import sqlite3

        path = url.split(":///", 1)[1] if ":///" in url else ""
        if not path or path == ":memory:" or path.startswith("file:") or not Path(path).is_file():
            return None
        return cls("sqlite", sqlite3.connect(path, timeout=60, isolation_level=None), "qmark")

    @classmethod
    def _postgresql(cls, parts: Any, query: dict[str, str], psycopg2: bool) -> DirectConnection | None:
        conninfo = parts._replace(scheme="postgresql").geturl()
        if psycopg2:
            import psycopg2

            conn = psycopg2.connect(conninfo, connect_timeout=5)
            conn.autocommit = True
            return cls("postgresql", conn, "format")
        from .. import libpq

        extra = {"connect_timeout": "5", "client_encoding": "UTF8"}
        raw = libpq.connect(parts._replace(
            scheme="postgresql", query=urlencode({**extra, **query})
        ).geturl())
        if raw is not None:
            return cls("postgresql", raw, "dollar")
        import psycopg

        return cls("postgresql", psycopg.connect(conninfo, connect_timeout=5, autocommit=True), "format")

    @classmethod
    def _mysql(cls, parts: Any, query: dict[str, str]) -> DirectConnection | None:
        import pymysql
        from pymysql.constants.CLIENT import FOUND_ROWS

        from ..drivers import share_pymysql_default_tls

        share_pymysql_default_tls()

        # What SQLAlchemy's pymysql dialect passes (FOUND_ROWS included), so that the full path's
        # engine can take this session over (:meth:`hand_over`).
        args = {
            "host": parts.hostname or "localhost",
            "port": parts.port or 3306,
            "user": unquote(parts.username or ""),
            "password": unquote(parts.password or ""),
            "database": unquote(parts.path.lstrip("/")),
            "charset": query.get("charset", "utf8mb4"),
            "connect_timeout": 5,
            "client_flag": FOUND_ROWS,
        }
        return cls("mysql", pymysql.connect(**args, autocommit=True), "format", args)

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.paramstyle == "dollar":
            return self.conn.execute(sql, params)
        cur = self.conn.cursor()
        cur.execute(sql, params) if params else cur.execute(sql)
        return list(cur.fetchall()) if cur.description is not None else []

    def _placeholders(self, count: int) -> str:
        if self.paramstyle == "dollar":
            return ", ".join(f"${i}" for i in range(1, count + 1))
        return ", ".join(["?" if self.paramstyle == "qmark" else "%s"] * count)

    def _quote(self, name: str) -> str:
        return f"`{name}`" if self.backend == "mysql" else f'"{name}"'

    def query_column(self, sql: str) -> list[str] | None:
        try:
            return [row[0] for row in self._execute(sql)]
        except AlembicDeployError:
            raise
        except Exception:  # noqa: BLE001 - missing table or anything odd: full path
            return None

    def has_unfinished_run(self, table: str) -> bool:
        """A ``running`` journal row (or no journal to tell): see steps/recovery.py."""
        return self.query_column(f"SELECT id FROM {self._quote(table)} WHERE outcome = 'running'") != []

    def insert_journal_row(self, settings: Settings, report: DeployReport) -> bool:
        row = journal_row(settings, report, "noop")
        now = datetime.fromtimestamp(report.started_at, timezone.utc)
        end = datetime.fromtimestamp(report.finished_at or time.time(), timezone.utc)
        if self.backend == "sqlite":
            # SQLAlchemy's SQLite DateTime storage format.
            row["started_at"], row["finished_at"] = (d.strftime("%Y-%m-%d %H:%M:%S.%f") for d in (now, end))
        elif self.backend == "mysql":
            row["started_at"], row["finished_at"] = (d.replace(tzinfo=None) for d in (now, end))
        else:
            row["started_at"], row["finished_at"] = now, end
        sql = (
            f"INSERT INTO {self._quote(settings.journal_table)} ({', '.join(row)}) "
            f"VALUES ({self._placeholders(len(row))})"
        )
        try:
            self._execute(sql, tuple(row.values()))
        except AlembicDeployError:
            raise
        except Exception:  # noqa: BLE001 - no journal yet: the full path creates it
            return False
        return True

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
