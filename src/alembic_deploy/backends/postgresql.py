"""PostgreSQL: a session-level advisory lock on a dedicated connection."""

from __future__ import annotations

import operator
import os
import re
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote, urlencode

from ..masking import SQLLiterals
from .base import (
    CONNECT_TIMEOUT_SECONDS,
    Backend,
    ClientCommand,
    DirectSession,
    Driver,
    holder_label,
    raw_query,
    register,
    sql_name,
    stable_int64,
    text,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path
    from urllib.parse import SplitResult

    from sqlalchemy.engine import URL, Connection, Engine

# SQLSTATEs that mean "wrong", not "not yet": retrying them only hides the problem.
_PERMANENT_SQLSTATES = {"28P01", "28000", "3D000", "42501"}
# 57P03 cannot_connect_now: the server is starting up or shutting down.
_TRANSIENT_SQLSTATES = {"57P03", "53300", "08006", "08001"}
#: lock_timeout expired (also NOWAIT): the statement got none of the locks it waited for.
SQLSTATE_LOCK_NOT_AVAILABLE = "55P03"
#: invalid_password: the server refused the login.
SQLSTATE_INVALID_PASSWORD = "28P01"
#: The sslmode (libpq) / ssl (asyncpg) values that refuse an unencrypted connection.
_TLS_REQUIRED = frozenset({"require", "verify-ca", "verify-full"})
#: insufficient_privilege, read_only_sql_transaction (a standby, default_transaction_read_only).
SQLSTATES_REFUSED_WRITE = frozenset({"42501", "25006"})
#: statement_timeout, pg_cancel_backend and a client cancel.
SQLSTATE_QUERY_CANCELED = "57014"

#: How a driver's own connection tells its server process id without a query.
_PID_PROBES: tuple[Callable[[Any], Any], ...] = (
    lambda c: c.info.backend_pid,  # psycopg 3
    lambda c: c.get_backend_pid(),  # psycopg2
    lambda c: c.get_server_pid(),  # asyncpg
)


def _libpq_target(url: URL) -> list[str]:
    """The connection options of a libpq client program for ``url``, without its password."""
    argv = ["--no-password"]
    if url.host:
        argv.append(f"--host={url.host}")
    if url.port:
        argv.append(f"--port={url.port}")
    if url.username:
        argv.append(f"--username={url.username}")
    # --dbname would read a string holding '=' as a connection string: name it as libpq's dbname.
    argv.append(f"--dbname=dbname={_conninfo_value(url.database or 'postgres')}")
    return argv


def _conninfo_value(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _libpq_env(url: URL) -> dict[str, str]:
    """The password (libpq's PGPASSWORD, never an argument) and the URL's TLS settings."""
    env = {"PGPASSWORD": str(url.password)} if url.password is not None else {}
    for key, value in url.query.items():
        name = _LIBPQ_ENV.get(key)
        if name is not None and isinstance(value, str):
            env[name] = value
    return env


#: URL query keys libpq client programs read from the environment (``?host=/cloudsql/...``: a socket folder).
_LIBPQ_ENV = {"host": "PGHOST", "sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT",
              "sslkey": "PGSSLKEY", "application_name": "PGAPPNAME", "options": "PGOPTIONS",
              "target_session_attrs": "PGTARGETSESSIONATTRS"}


def _pattern(table: str) -> str:
    """A table name as a pg_dump pattern that matches only it (quoted: no wildcard, case kept)."""
    return ".".join('"' + part.replace('"', '""') + '"' for part in table.split(".", 1))


def _sqlstate(exc: BaseException) -> str | None:
    """The error's SQLSTATE, as each driver reports it: ``sqlstate`` (psycopg 3, asyncpg),
    ``pgcode`` (psycopg2), the ``C`` field of the server's error fields in ``args[0]`` (pg8000)."""
    orig = getattr(exc, "orig", None) or exc
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
    if state is None:
        args = getattr(orig, "args", None)
        if args and isinstance(args[0], dict):
            state = args[0].get("C")
    return state


_CONCURRENTLY = re.compile(r"\bconcurrently\b", re.IGNORECASE)


def _milliseconds(seconds: float | None) -> str | None:
    return f"{max(1, round(seconds * 1000))}ms" if seconds else None


@register
class PostgreSQLBackend(Backend):
    name = "postgresql"
    literals = SQLLiterals(string_quotes="'", backslash_escapes=False, hash_comments=False)  # "x" is a name
    transactional_ddl = True
    partial_cause = "they ran outside a transaction (an autocommit block)"
    drivers: ClassVar[dict[str, Driver]] = {
        "psycopg": Driver("psycopg", connect_timeout_arg="connect_timeout"),
        "psycopg_async": Driver("psycopg", is_async=True),
        "psycopg2": Driver("psycopg2", connect_timeout_arg="connect_timeout"),
        "psycopg2cffi": Driver("psycopg2cffi", connect_timeout_arg="connect_timeout"),
        "pg8000": Driver("pg8000"),
        "asyncpg": Driver("asyncpg", is_async=True),
    }
    sync_siblings = ("psycopg", "psycopg2", "pg8000")
    extra = "postgresql"
    direct_drivers: ClassVar[dict[str, str]] = {
        "": "psycopg2", "psycopg2": "psycopg2", "psycopg": "psycopg", "psycopg_async": "psycopg",
        "asyncpg": "asyncpg",
    }
    returning_id = True  # psycopg and libpq have no lastrowid
    default_port = 5432
    databases_like = "SELECT datname FROM pg_database WHERE datname LIKE :pattern"
    backup_method = "pg_dump"
    aurora_engine = "aurora-postgresql"

    def dump_command(self, url: URL, tables: Sequence[str], exclude: Sequence[str], private: Path) -> ClientCommand:
        # Custom format: compressed, and pg_restore can pick tables out of it or run it in parallel.
        argv = ["pg_dump", "--format=custom", *_libpq_target(url)]
        argv += [f"--table={_pattern(t)}" for t in tables]
        # The journal's tables, with the sequences of their id columns (dumped apart from them).
        argv += [f"--exclude-table={_pattern(t)}" for name in exclude for t in (name, f"{name}_id_seq")]
        return ClientCommand(tuple(argv), _libpq_env(url))

    def restore_command(self, url: URL, replace: bool, private: Path) -> ClientCommand:
        # One transaction: a restore that fails part way leaves the database as it was.
        argv = ["pg_restore", "--no-owner", "--single-transaction", "--exit-on-error", *_libpq_target(url)]
        if replace:
            argv += ["--clean", "--if-exists"]
        return ClientCommand(tuple(argv), _libpq_env(url))

    def check_backup_command(self) -> ClientCommand | None:
        # The whole archive read and rendered as SQL to nowhere: a truncated or foreign file fails.
        return ClientCommand(("pg_restore", "--file", os.devnull))

    def other_schemas(self, inspector: Any) -> list[str]:
        """Every schema of the database but the default one and PostgreSQL's own."""
        default = inspector.default_schema_name
        return [s for s in inspector.get_schema_names()
                if s != default and s != "information_schema" and not s.startswith("pg_")]

    def _end_sessions(self, conn: Connection, database: str) -> None:
        # DROP DATABASE refuses while anyone is connected (it waits a few seconds for sessions
        # that are ending): a replay cut short may leave one.
        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = :name AND pid <> pg_backend_pid()"), {"name": database})

    def open_direct(
        self, url: str, parts: SplitResult, query: dict[str, str], module: str, libpq: bool,
    ) -> DirectSession | None:
        from ..fastpath.direct import WAIT_SECONDS, Psycopg2Session, libpq_connect

        if set(query) - _LIBPQ_PARAMS:
            return None
        if module == "asyncpg" and any(k.startswith("PG") for k in os.environ):
            return None  # libpq honours PG* variables that asyncpg ignores (PGOPTIONS...)
        # The server ends any statement of this session that waits longer than WAIT_SECONDS (for a
        # lock on the version table, say), whether this process still waits for it or not; the
        # user's own options come first, so these win. The session never serves the full path.
        millis = int(WAIT_SECONDS * 1000)
        options = f"{query.get('options', '')} -c statement_timeout={millis} -c lock_timeout={millis}".strip()
        conninfo = parts._replace(scheme="postgresql").geturl()
        connect_timeout = _connect_timeout(query)
        if module == "psycopg2":
            return DirectSession(Psycopg2Session(conninfo, options, connect_timeout), "format")
        if libpq:
            raw = libpq_connect(parts._replace(
                scheme="postgresql", query=urlencode({**query, "client_encoding": "UTF8", "options": options},
                                                     quote_via=quote),
            ).geturl(), connect_timeout)  # libpq decodes %20, not + (urlencode's default for a space)
            if raw is not None:
                return DirectSession(raw, "dollar")
        import psycopg  # its waits run in Python: a signal interrupts them

        conn = psycopg.connect(conninfo, connect_timeout=max(2, round(connect_timeout)), autocommit=True,
                               options=options)
        return DirectSession(conn, "format")

    def missing_dialect_advice(self, drivername: str, driver: str) -> str | None:
        from ..compat import has_dialect, installed_version

        if driver in ("psycopg", "psycopg_async") and not has_dialect("postgresql", "psycopg"):
            return (
                f"SQLAlchemy {installed_version('sqlalchemy')} has no dialect {drivername!r}: psycopg 3's "
                "came with SQLAlchemy 2.0. Use postgresql+psycopg2:// with psycopg2 installed, or upgrade "
                "SQLAlchemy."
            )
        return None

    def default_drivername(self) -> str | None:
        # SQLAlchemy's bare "postgresql://" means psycopg2; the [postgresql] extra installs psycopg 3
        # (which SQLAlchemy 1.4 has no dialect for).
        import importlib.util

        from ..compat import has_dialect

        if (importlib.util.find_spec("psycopg2") is None and importlib.util.find_spec("psycopg")
                and has_dialect("postgresql", "psycopg")):
            return "postgresql+psycopg"
        return None

    def connect(self, driver: str, cparams: dict[str, Any]) -> Any:
        # pg8000's ``timeout`` would also bound every later read of the session (a long repair
        # statement, a wait for a row lock). pg8000 takes a connected socket instead (``sock``):
        # the TCP connect, what hangs on an unreachable host, is bounded here; the session is not.
        if driver != "pg8000" or "sock" in cparams or "unix_sock" in cparams or "timeout" in cparams:
            return None
        import socket

        import pg8000

        host, port = cparams.get("host", "localhost"), int(cparams.get("port", 5432))
        try:
            sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_SECONDS)
        except OSError as exc:
            # What pg8000 raises itself, so that the wait step judges it like any refused connect.
            raise pg8000.InterfaceError(f"Can't create a connection to host {host} and port {port}: {exc}") from None
        sock.settimeout(None)
        try:
            return pg8000.Connection(**cparams, sock=sock)
        except BaseException:
            sock.close()
            raise

    def is_transient(self, exc: BaseException) -> bool:
        state = _sqlstate(exc)
        if state in _PERMANENT_SQLSTATES:
            return False
        if state in _TRANSIENT_SQLSTATES:
            return True
        return super().is_transient(exc)

    def is_auth_failure(self, exc: BaseException) -> bool:
        # libpq reports a failed login without a SQLSTATE (psycopg's sqlstate is None): its text.
        state = _sqlstate(exc)
        return state == SQLSTATE_INVALID_PASSWORD or (
            state is None and "authentication failed" in self.error_text(exc))

    def tls_required_problem(self, url: URL) -> str | None:
        # libpq's sslmode (psycopg, psycopg2); asyncpg's ssl; pg8000 takes an ssl_context only.
        for key in ("sslmode", "ssl"):
            value = str(url.query.get(key, "")).lower()
            if value in _TLS_REQUIRED:
                return None
        given = ", ".join(f"{k}={url.query[k]}" for k in ("sslmode", "ssl") if k in url.query)
        return (f"{given or 'no sslmode'} in its query (libpq's default, prefer, falls back to an unencrypted "
                "connection); add ?sslmode=require, or verify-full with sslrootcert= the RDS CA bundle")

    def error_text(self, exc: BaseException) -> str:
        # pg8000 passes the server's error fields as a dict: M(essage), C(ode), D(etail)...
        orig = getattr(exc, "orig", None) or exc
        args = getattr(orig, "args", None)
        if args and isinstance(args[0], dict) and "M" in args[0]:
            return f"{args[0]['M']} (SQLSTATE {args[0].get('C', '?')})"
        return super().error_text(exc)

    def session_id(self, dbapi_connection: Any) -> Any:
        raw = getattr(dbapi_connection, "driver_connection", dbapi_connection)
        for probe in _PID_PROBES:
            try:
                return int(probe(raw))
            except (AttributeError, TypeError):
                continue
        # pg8000 and any other driver: ask the server (a raw cursor, unseen by the statement
        # listeners; pg8000 opens its transaction here instead of at the revision's first statement).
        try:
            return int(raw_query(dbapi_connection, "SELECT pg_backend_pid()")[0][0])
        except Exception:  # noqa: BLE001 - no id: no cancel and no blocker names, the run goes on
            return None

    def session_alive(self, conn: Connection, session_id: Any) -> bool | None:
        query = text("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = :p AND pid <> pg_backend_pid()")
        return bool(conn.execute(query, {"p": int(session_id)}).scalar())

    def cancel(self, lock_connection: Connection | None, dbapi_connection: Any, session_id: Any) -> None:
        if lock_connection is not None and session_id is not None:
            lock_connection.execute(text("SELECT pg_cancel_backend(:p)"), {"p": session_id})

    def timeout_settings(
        self, dbapi_connection: Any, lock_timeout: float | None, statement_timeout: float | None
    ) -> dict[str, str | None]:
        return {
            "lock_timeout": _milliseconds(lock_timeout),
            "statement_timeout": _milliseconds(statement_timeout),
        }

    def read_settings(self, dbapi_connection: Any, names: list[str]) -> dict[str, str]:
        if not names:
            return {}
        row = raw_query(dbapi_connection, "SELECT " + ", ".join(f"current_setting('{n}')" for n in names))[0]
        return {name: str(value) for name, value in zip(names, row, strict=True)}

    def write_settings(self, dbapi_connection: Any, values: dict[str, str]) -> None:
        # set_config(..., false) is a plain SELECT every driver can prepare (asyncpg included) and
        # is session-wide like SET. Inside a transaction that rolls back it is undone with it, which
        # is harmless: a retry runs env.py again and sets it again when the revision starts.
        calls = ", ".join(f"set_config('{name}', '{value}', false)" for name, value in values.items())
        if calls:
            raw_query(dbapi_connection, f"SELECT {calls}")

    #: pg8000; asyncpg; psycopg 3 (transaction status 0: idle); psycopg2.
    transaction_probes = (
        operator.attrgetter("in_transaction"),
        operator.methodcaller("is_in_transaction"),
        lambda c: int(c.pgconn.transaction_status) != 0,
        lambda c: c.get_transaction_status() != 0,
    )

    def commits_by_itself(self, ddl: bool, in_transaction: bool | None) -> bool:
        """DDL runs inside the transaction, as everything outside autocommit mode."""
        return False

    def needs_autocommit(self, sql: str) -> bool:
        """``CONCURRENTLY`` statements cannot run inside a transaction."""
        return _CONCURRENTLY.search(sql) is not None

    def object_exists(
        self, dbapi_connection: Any, kind: str, name: str, table: str | None, schema: str | None,
    ) -> bool | None:
        """From ``pg_catalog``, names compared case-insensitively (a quoted ``"Users"`` and an
        unquoted ``users`` are told apart by the server, not here: a doubt answers True).
        Tables, indexes and other relations share one namespace: any relation of that name
        counts; an unqualified name is looked up in every schema of the search path."""
        wanted, owner = sql_name(name), sql_name(table) if table else None
        namespace = f"n.nspname = {sql_name(schema)}" if schema else "n.nspname = ANY (current_schemas(true))"
        if wanted is None or (schema and sql_name(schema) is None) or (table and owner is None):
            return None
        relation = ("SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                    f"WHERE lower(c.relname) = lower({{}}) AND {namespace}")
        if kind == "table" or kind == "index":
            sql = relation.format(wanted)
        elif kind == "column":
            if owner is None:
                return None
            sql = (relation.format(owner) + " AND EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a WHERE "
                   "a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
                   f"AND lower(a.attname) = lower({wanted}))")
        else:
            sql = (relation.format(wanted) + " UNION ALL SELECT 1 FROM pg_catalog.pg_constraint k JOIN "
                   "pg_catalog.pg_namespace n ON n.oid = k.connamespace "
                   f"WHERE lower(k.conname) = lower({wanted}) AND {namespace}")
        return bool(raw_query(dbapi_connection, f"{sql} LIMIT 1"))

    def is_refused(self, exc: BaseException) -> bool:
        return _sqlstate(exc) in SQLSTATES_REFUSED_WRITE

    def is_lock_timeout(self, exc: BaseException) -> bool:
        return _sqlstate(exc) == SQLSTATE_LOCK_NOT_AVAILABLE

    def is_statement_timeout(self, exc: BaseException) -> bool:
        # 57014 is also what pg_cancel_backend (SIGTERM) raises; only the message tells them apart.
        return _sqlstate(exc) == SQLSTATE_QUERY_CANCELED and "statement timeout" in str(exc)

    def describe_blockers(self, conn: Connection, session_id: Any) -> list[dict[str, Any]]:
        rows = conn.execute(
            text(
                "SELECT pid, state, query_start, xact_start, left(query, 200) AS query "
                "FROM pg_stat_activity WHERE pid = ANY(pg_blocking_pids(:p)) ORDER BY xact_start"
            ),
            {"p": int(session_id)},
        )
        return [
            {
                "pid": r.pid,
                "state": r.state,
                "since": (r.query_start if r.state == "active" else r.xact_start or r.query_start),
                "query": r.query,
            }
            for r in rows
        ]

    def lock_connection(self, engine: Engine, connection: Connection | None = None) -> Connection:
        conn = super().lock_connection(engine, connection)
        conn.exec_driver_sql(f"SET application_name = '{holder_label()[:63]}'")
        return conn

    def try_acquire(self, conn: Connection, name: str) -> bool:
        return bool(conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": stable_int64(name)}).scalar())

    def release(self, conn: Connection, name: str) -> None:
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": stable_int64(name)})

    def describe_holder(self, conn: Connection, name: str) -> dict[str, Any]:
        key = stable_int64(name) & 0xFFFFFFFFFFFFFFFF
        row = conn.execute(
            text(
                "SELECT a.pid, a.application_name, a.client_addr, a.backend_start "
                "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.locktype = 'advisory' AND l.granted "
                "AND l.classid::bigint = :hi AND l.objid::bigint = :lo AND l.objsubid = 1"
            ),
            {"hi": key >> 32, "lo": key & 0xFFFFFFFF},
        ).first()
        if row is None:
            return {}
        return {
            "holder": row.application_name or None,
            "server_pid": row.pid,
            "client": str(row.client_addr) if row.client_addr else "local socket",
            "since": row.backend_start.isoformat(timespec="seconds") if row.backend_start else None,
        }


# libpq URI parameters that mean the same to libpq as to SQLAlchemy's psycopg dialects.
_LIBPQ_PARAMS = {"sslmode", "sslrootcert", "sslcert", "sslkey", "application_name", "connect_timeout",
                 "target_session_attrs", "options", "host", "port"}


def _connect_timeout(query: dict[str, str]) -> float:
    """The URL's ``connect_timeout`` (libpq's meaning: seconds, 0 or less for none), else the fast
    path's CONNECT_SECONDS."""
    from ..fastpath.direct import CONNECT_SECONDS

    try:
        seconds = float(query["connect_timeout"])
    except (KeyError, ValueError):
        return CONNECT_SECONDS
    return seconds if 0 < seconds < float("inf") else CONNECT_SECONDS
