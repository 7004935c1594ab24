"""The pieces of a lock-queue scene, shared by the timeout tests and the benchmark: a session that
holds a lock on ``users`` (a read in an open transaction), an application loop measuring its query
latency, and revision files written into a copied project."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

if TYPE_CHECKING:
    from typing_extensions import Self

#: Appears in the blocker's query, so a test can check the blocker was named.
BLOCKER_MARKER = "blocker-marker"


class Blocker:
    """Holds ACCESS SHARE (PostgreSQL) / a shared metadata lock (MySQL) on ``users`` until
    :meth:`release`, from an open transaction that read the table.

    ``running`` keeps a query running inside the transaction too (MySQL's processlist shows the
    query of a running session only), for at most that many seconds: :meth:`release` cancels it
    on the server (``pg_cancel_backend``, ``KILL QUERY``) instead of waiting it out.
    """

    def __init__(self, url: str, backend: str, running: float = 0.0) -> None:
        self.backend = backend
        self.engine = create_engine(url, poolclass=NullPool, future=True)
        self.conn = self.engine.connect()
        own_id = "pg_backend_pid()" if backend == "postgresql" else "CONNECTION_ID()"
        self.pid = self.conn.exec_driver_sql(f"SELECT {own_id}").scalar()
        # Last, so that it is the query the server shows for this session.
        self.conn.execute(text(f"SELECT id /* {BLOCKER_MARKER} */ FROM users"))
        self._thread: threading.Thread | None = None
        if running:
            sleep = "pg_sleep" if backend == "postgresql" else "SLEEP"
            query = f"SELECT {sleep}({running}) /* {BLOCKER_MARKER} */"
            self._thread = threading.Thread(target=self._run, args=(query,))
            self._thread.start()
            self._wait_running()

    def _wait_running(self, timeout: float = 30.0) -> None:
        """Return once the server shows the session running its query, so a test that starts
        next always meets it (and :meth:`release` always has a query to cancel)."""
        running = (
            "SELECT count(*) FROM pg_stat_activity WHERE pid = :pid AND state = 'active'"
            if self.backend == "postgresql"
            else "SELECT count(*) FROM information_schema.processlist WHERE id = :pid AND info LIKE 'SELECT SLEEP%'"
        )
        engine = create_engine(self.engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        deadline = time.monotonic() + timeout
        try:
            with engine.connect() as conn:
                while not conn.execute(text(running), {"pid": self.pid}).scalar():
                    if time.monotonic() > deadline:
                        raise AssertionError(f"the blocker's query did not start within {timeout:g}s")
                    time.sleep(0.01)
        finally:
            engine.dispose()

    def _run(self, sql: str) -> None:
        try:
            self.conn.exec_driver_sql(sql)
        except DBAPIError:
            pass  # cancelled by release(): the point of the cancel

    def _cancel_running(self) -> None:
        """End the running query from another session (the blocker's own is busy running it)."""
        cancel = f"SELECT pg_cancel_backend({self.pid})" if self.backend == "postgresql" else f"KILL QUERY {self.pid}"
        engine = create_engine(self.engine.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(cancel)
        except DBAPIError:
            pass  # the query had ended already
        finally:
            engine.dispose()

    def release_after(self, seconds: float) -> threading.Timer:
        timer = threading.Timer(seconds, self.release)
        timer.start()
        return timer

    def release(self) -> None:
        if self._thread is not None:
            if self._thread.is_alive():
                self._cancel_running()
            self._thread.join()
            self._thread = None
        if not self.conn.closed:
            self.conn.rollback()
            self.conn.close()
        self.engine.dispose()


class AppLoop:
    """The application: a short query on ``users`` every ``interval`` seconds, latency recorded."""

    def __init__(self, url: str, interval: float = 0.05) -> None:
        self.engine = create_engine(url, poolclass=NullPool, future=True)
        self.interval = interval
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def wait_measuring(self, timeout: float = 30.0) -> None:
        """Return once the loop has measured its first query: the application is running."""
        deadline = time.monotonic() + timeout
        while not self.latencies:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise AssertionError("the application loop measured no query")
            time.sleep(0.01)

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)
        self.engine.dispose()

    def _run(self) -> None:
        with self.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            while not self._stop.is_set():
                started = time.monotonic()
                conn.execute(text("SELECT count(*) FROM users")).scalar()
                self.latencies.append(time.monotonic() - started)
                self._stop.wait(self.interval)

    @property
    def max(self) -> float:
        return max(self.latencies, default=0.0)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def write_revision(project: Path, revision: str, down: str, body: str, options: str | None = None) -> Path:
    """Add a revision file; ``body`` is the indented code of upgrade(), ``options`` the literal
    of its ``alembic_deploy`` dict."""
    path = project / "migrations" / "versions" / f"{revision}.py"
    path.write_text(
        f'"""{revision}"""\n'
        "import sqlalchemy as sa\n"
        "from alembic import op\n\n"
        f"revision = {revision!r}\n"
        f"down_revision = {down!r}\n"
        "branch_labels = None\n"
        "depends_on = None\n"
        + (f"alembic_deploy = {options}\n" if options else "")
        + f"\n\ndef upgrade() -> None:\n{body}\n\n\ndef downgrade() -> None:\n    pass\n"
    )
    return path
