"""The pieces of a lock-queue scene, shared by the timeout tests and the benchmark: a session that
holds a lock on ``users`` (a read in an open transaction), an application loop measuring its query
latency, and revision files written into a copied project."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

#: Appears in the blocker's query, so a test can check the blocker was named.
BLOCKER_MARKER = "blocker-marker"


class Blocker:
    """Holds ACCESS SHARE (PostgreSQL) / a shared metadata lock (MySQL) on ``users`` until
    :meth:`release`, from an open transaction that read the table.

    ``running`` keeps a query running inside the transaction too (MySQL's processlist shows the
    query of a running session only), for at most that many seconds.
    """

    def __init__(self, url: str, backend: str, running: float = 0.0) -> None:
        self.engine = create_engine(url, poolclass=NullPool, future=True)
        self.conn = self.engine.connect()
        own_id = "pg_backend_pid()" if backend == "postgresql" else "CONNECTION_ID()"
        self.pid = self.conn.exec_driver_sql(f"SELECT {own_id}").scalar()
        # Last, so that it is the query the server shows for this session.
        self.conn.execute(text(f"SELECT id /* {BLOCKER_MARKER} */ FROM users"))
        self._thread: threading.Thread | None = None
        if running:
            sleep = "pg_sleep" if backend == "postgresql" else "SLEEP"
            self._thread = threading.Thread(
                target=self.conn.exec_driver_sql, args=(f"SELECT {sleep}({running}) /* {BLOCKER_MARKER} */",)
            )
            self._thread.start()

    def release_after(self, seconds: float) -> threading.Timer:
        timer = threading.Timer(seconds, self.release)
        timer.start()
        return timer

    def release(self) -> None:
        if self._thread is not None:
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

    def __enter__(self) -> AppLoop:
        self._thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
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
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


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
