"""MySQL and MariaDB: ``GET_LOCK`` on a dedicated connection (named locks die with the session)."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from .base import Backend, register

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

# Client error codes meaning "not reachable yet": can't connect, unknown host (DNS not ready),
# gone away, lost connection, too many connections, server shutting down.
_TRANSIENT_CODES = {2002, 2003, 2005, 2006, 2013, 1040, 1053, 1927}
# Access denied (1044/1045), unknown database (1049): wrong, not "not yet".
_PERMANENT_CODES = {1044, 1045, 1049, 1698}
#: MySQL rejects lock names longer than this.
MAX_LOCK_NAME = 64


@register
class MySQLBackend(Backend):
    name = "mysql"
    # DDL commits implicitly: a failed revision may leave earlier statements applied.
    transactional_ddl = False
    sync_drivers = {"aiomysql": "pymysql", "asyncmy": "pymysql"}
    extra = "mysql"

    def connect_args(self) -> dict[str, Any]:
        return {"connect_timeout": 5}

    def is_transient(self, exc: BaseException) -> bool:
        orig = getattr(exc, "orig", exc)
        code = orig.args[0] if getattr(orig, "args", None) and isinstance(orig.args[0], int) else None
        if code in _PERMANENT_CODES:
            return False
        if code in _TRANSIENT_CODES:
            return True
        return super().is_transient(exc)

    def session_id(self, dbapi_connection: Any) -> Any:
        raw = getattr(dbapi_connection, "driver_connection", dbapi_connection)
        try:
            return int(raw.thread_id())
        except (AttributeError, TypeError):
            return None

    def cancel(self, lock_connection: Connection | None, dbapi_connection: Any, session_id: Any) -> None:
        if lock_connection is not None and session_id is not None:
            lock_connection.exec_driver_sql(f"KILL QUERY {int(session_id)}")

    def lock_name(self, url_database: str | None, version_table: str, schema: str | None) -> str:
        name = super().lock_name(url_database, version_table, schema)
        if len(name) > MAX_LOCK_NAME:
            name = "alembic-deploy:" + hashlib.sha256(name.encode()).hexdigest()[:40]
        return name

    def try_acquire(self, conn: Connection, name: str) -> bool:
        return conn.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": name}).scalar() == 1

    def release(self, conn: Connection, name: str) -> None:
        conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": name})

    def describe_holder(self, conn: Connection, name: str) -> dict[str, Any]:
        holder_id = conn.execute(text("SELECT IS_USED_LOCK(:n)"), {"n": name}).scalar()
        if holder_id is None:
            return {}
        row = conn.execute(
            text("SELECT host, time FROM information_schema.processlist WHERE id = :i"),
            {"i": holder_id},
        ).first()
        return {
            "server_connection": holder_id,
            "client": row.host if row else None,
            "connected_for": f"{row.time}s" if row else None,
        }


@register
class MariaDBBackend(MySQLBackend):
    name = "mariadb"
