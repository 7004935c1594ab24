"""PostgreSQL: a session-level advisory lock on a dedicated connection."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from .base import Backend, holder_label, register, stable_int64

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

# SQLSTATEs that mean "wrong", not "not yet": retrying them only hides the problem.
_PERMANENT_SQLSTATES = {"28P01", "28000", "3D000", "42501"}
# 57P03 cannot_connect_now: the server is starting up or shutting down.
_TRANSIENT_SQLSTATES = {"57P03", "53300", "08006", "08001"}


@register
class PostgreSQLBackend(Backend):
    name = "postgresql"
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

    def cancel(self, lock_connection: Connection | None, dbapi_connection: Any, session_id: Any) -> None:
        if lock_connection is not None and session_id is not None:
            lock_connection.execute(text("SELECT pg_cancel_backend(:p)"), {"p": session_id})

    def lock_connection(self, engine: Engine) -> Connection:
        conn = super().lock_connection(engine)
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
