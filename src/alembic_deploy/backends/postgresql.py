"""PostgreSQL: a session-level advisory lock on a dedicated connection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from ..secrets import SQLLiterals
from .base import Backend, holder_label, raw_query, register, stable_int64

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

# SQLSTATEs that mean "wrong", not "not yet": retrying them only hides the problem.
_PERMANENT_SQLSTATES = {"28P01", "28000", "3D000", "42501"}
# 57P03 cannot_connect_now: the server is starting up or shutting down.
_TRANSIENT_SQLSTATES = {"57P03", "53300", "08006", "08001"}
#: lock_timeout expired (also NOWAIT): the statement got none of the locks it waited for.
SQLSTATE_LOCK_NOT_AVAILABLE = "55P03"
#: statement_timeout, pg_cancel_backend and a client cancel.
SQLSTATE_QUERY_CANCELED = "57014"


def _sqlstate(exc: BaseException) -> str | None:
    orig = getattr(exc, "orig", None) or exc
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


def _milliseconds(seconds: float | None) -> str | None:
    return f"{max(1, round(seconds * 1000))}ms" if seconds else None


@register
class PostgreSQLBackend(Backend):
    name = "postgresql"
    literals = SQLLiterals(string_quotes="'", backslash_escapes=False, hash_comments=False)  # "x" is a name
    transactional_ddl = True
    sync_drivers = {"asyncpg": "psycopg", "psycopg_async": "psycopg", "psycopg2cffi": "psycopg2cffi"}
    extra = "postgresql"

    def connect_args(self) -> dict[str, Any]:
        return {"connect_timeout": 5}

    def is_transient(self, exc: BaseException) -> bool:
        orig = getattr(exc, "orig", exc)
        state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)
        if state in _PERMANENT_SQLSTATES:
            return False
        if state in _TRANSIENT_SQLSTATES:
            return True
        return super().is_transient(exc)

    def session_id(self, dbapi_connection: Any) -> Any:
        raw = getattr(dbapi_connection, "driver_connection", dbapi_connection)
        for probe in (
            lambda c: c.info.backend_pid,  # psycopg 3
            lambda c: c.get_backend_pid(),  # psycopg2
            lambda c: c.get_server_pid(),  # asyncpg
        ):
            try:
                return int(probe(raw))
            except (AttributeError, TypeError):
                continue
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
        return {name: str(value) for name, value in zip(names, row)}

    def write_settings(self, dbapi_connection: Any, values: dict[str, str]) -> None:
        # set_config(..., false) is a plain SELECT every driver can prepare (asyncpg included) and
        # is session-wide like SET. Inside a transaction that rolls back it is undone with it, which
        # is harmless: a retry runs env.py again and sets it again when the revision starts.
        calls = ", ".join(f"set_config('{name}', '{value}', false)" for name, value in values.items())
        if calls:
            raw_query(dbapi_connection, f"SELECT {calls}")

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
