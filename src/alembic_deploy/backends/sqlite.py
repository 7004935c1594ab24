"""SQLite: an OS file lock beside the database file; the kernel drops it when the process dies."""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError
from .base import Backend, MigrationLock, holder_label, register

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

LOCK_SUFFIX = ".alembic-deploy.lock"


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
    # pysqlite issues no BEGIN before DDL, so alembic treats SQLite DDL as non-transactional.
    transactional_ddl = False
    sync_drivers = {"aiosqlite": "pysqlite", "pysqlcipher": "pysqlcipher"}

    def connect_args(self) -> dict[str, Any]:
        # The journal and fast-path reads wait for another process's migration commit.
        return {"timeout": 60}

    def is_transient(self, exc: BaseException) -> bool:
        return "database is locked" in str(exc).lower()

    def session_id(self, dbapi_connection: Any) -> Any:
        return id(dbapi_connection)

    def cancel(self, lock_connection: Any, dbapi_connection: Any, session_id: Any) -> None:
        raw = getattr(dbapi_connection, "driver_connection", dbapi_connection)
        if hasattr(raw, "interrupt"):
            raw.interrupt()

    def lock_name(self, url_database: str | None, version_table: str, schema: str | None) -> str:
        return str(url_database)

    @contextmanager
    def lock(
        self,
        engine: Engine,
        name: str,
        timeout: float,
        on_wait: Callable[[dict[str, Any]], None] | None = None,
    ) -> Iterator[MigrationLock]:
        path = database_path(engine).with_name(database_path(engine).name + LOCK_SUFFIX)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            def attempt() -> bool:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return False
                return True

            waited = self._poll(attempt, timeout, lambda: _read_holder(path), on_wait)
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{holder_label()} since={time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode(), 0)
            try:
                yield MigrationLock(name=str(path), waited=waited)
            finally:
                os.ftruncate(fd, 0)
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def _read_holder(path: Path) -> dict[str, Any]:
    try:
        line = path.read_text().strip()
    except OSError:
        return {}
    return {"holder": line} if line else {}
