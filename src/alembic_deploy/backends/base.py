"""The per-dialect contract and its registry.

A backend says only what differs between databases: how to take the migration lock, which
connection errors are worth retrying, how to bound lock waits on the migrating connection and how
to cancel a running statement. Backends register under SQLAlchemy's ``dialect.name``.

Lock timeouts follow one rule everywhere: ``timeout < 0`` waits forever, ``timeout == 0`` tries
once, ``timeout > 0`` polls (jittered exponential backoff, capped) until that many seconds passed,
then raises :class:`~alembic_deploy.errors.LockNotAcquired`.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from tenacity import (
    RetryError,
    Retrying,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    stop_never,
    wait_random_exponential,
)

from ..errors import LockNotAcquired

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

#: Cap on the pause between two lock attempts: a released lock is picked up within this.
LOCK_POLL_MAX_SECONDS = 0.5
#: How often a waiting replica says again who holds the lock.
LOCK_REPORT_EVERY_SECONDS = 10.0


def holder_label() -> str:
    return f"alembic-deploy host={socket.gethostname()} pid={os.getpid()}"


@dataclass
class MigrationLock:
    """A held lock. ``connection`` is the dedicated lock session (None for file locks); it stays
    idle while migrations run, so it can journal and cancel on the migrating session's behalf."""

    name: str
    waited: float
    connection: Connection | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Backend:
    name: ClassVar[str] = ""
    #: Can a failed revision be rolled back whole (DDL inside transactions)?
    transactional_ddl: ClassVar[bool] = True
    #: Async DBAPI driver -> a sync driver for the tool's own (lock and journal) connections.
    sync_drivers: ClassVar[dict[str, str]] = {}
    #: Extra that installs the default driver, for "missing driver" messages.
    extra: ClassVar[str] = ""

    # -- engines -----------------------------------------------------------------------------
    def connect_args(self) -> dict[str, Any]:
        """Arguments that keep a single connection attempt short (the wait step retries)."""
        return {}

    # -- waiting for the database --------------------------------------------------------------
    def is_transient(self, exc: BaseException) -> bool:
        """True when the error means "not reachable yet" (retry), False for "wrong" (fail now)."""
        text = str(exc).lower()
        return any(marker in text for marker in _TRANSIENT_MARKERS)

    # -- the migrating session ----------------------------------------------------------------
    def session_id(self, dbapi_connection: Any) -> Any:
        """The server's id for the migrating session (to cancel it), or None."""
        return None

    def cancel(self, lock_connection: Connection | None, dbapi_connection: Any, session_id: Any) -> None:
        """Cancel the statement running on the migrating session (called from a signal handler)."""

    # -- migration lock ----------------------------------------------------------------------
    def lock_name(self, url_database: str | None, version_table: str, schema: str | None) -> str:
        return f"alembic-deploy:{url_database or ''}:{schema or ''}:{version_table}"

    def try_acquire(self, conn: Connection, name: str) -> bool:
        raise NotImplementedError

    def release(self, conn: Connection, name: str) -> None:
        raise NotImplementedError

    def describe_holder(self, conn: Connection, name: str) -> dict[str, Any]:
        return {}

    def lock_connection(self, engine: Engine) -> Connection:
        return engine.connect().execution_options(isolation_level="AUTOCOMMIT")

    @contextmanager
    def lock(
        self,
        engine: Engine,
        name: str,
        timeout: float,
        on_wait: Callable[[dict[str, Any]], None] | None = None,
    ) -> Iterator[MigrationLock]:
        """Hold the migration lock on a dedicated connection for the duration of the block."""
        conn = self.lock_connection(engine)
        try:
            waited = self._poll(lambda: self.try_acquire(conn, name), timeout,
                                lambda: self.describe_holder(conn, name), on_wait)
            yield MigrationLock(name=name, waited=waited, connection=conn)
        finally:
            try:
                if not conn.closed:
                    self.release(conn, name)
            except Exception:  # noqa: BLE001 - closing the session releases it anyway
                pass
            finally:
                conn.close()

    @staticmethod
    def _poll(
        attempt: Callable[[], bool],
        timeout: float,
        describe: Callable[[], dict[str, Any]],
        on_wait: Callable[[dict[str, Any]], None] | None,
    ) -> float:
        started = time.monotonic()
        last_report = [-LOCK_REPORT_EVERY_SECONDS]

        def tick(_state: object) -> None:
            now = time.monotonic() - started
            if on_wait is not None and now - last_report[0] >= LOCK_REPORT_EVERY_SECONDS:
                last_report[0] = now
                on_wait(describe())

        if timeout == 0:
            stop = stop_after_attempt(1)
        elif timeout < 0:
            stop = stop_never
        else:
            stop = stop_after_delay(timeout)
        retrying = Retrying(
            retry=retry_if_result(lambda ok: not ok),
            wait=wait_random_exponential(multiplier=0.02, max=LOCK_POLL_MAX_SECONDS),
            stop=stop,
            before_sleep=tick,
        )
        try:
            retrying(attempt)
        except RetryError:
            holder = describe()
            raise LockNotAcquired(
                f"The migration lock is still held by another deploy after {timeout:g}s "
                f"({_holder_text(holder)}). Another replica or a CI job is migrating this "
                "database; wait for it to finish, or raise --lock-timeout-wait. A crashed holder "
                "never keeps the lock: it is released when its session or process ends.",
                holder=holder or None,
            ) from None
        return time.monotonic() - started


def _holder_text(holder: dict[str, Any]) -> str:
    if not holder:
        return "holder unknown"
    return ", ".join(f"{k} {v}" for k, v in holder.items() if v not in (None, ""))


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
