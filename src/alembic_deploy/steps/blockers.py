"""Who blocks the migration: noted while a statement waits, named when its lock timeout fires.

A lock timeout ends the wait, and with it every trace of who was in the way: asked afterwards,
``pg_blocking_pids`` returns nothing. So a :class:`BlockerWatch` thread looks while the statement
still waits: once a statement of the migrating session has run for a fraction of the lock timeout,
it asks the backend (``Backend.describe_blockers``) on a connection of its own, and keeps the last
answer for the retry log and the exit-7 message.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..masking import scrub

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from ..backends import Backend

#: Look this far into the lock timeout (a fraction of it), so the answer comes before it fires.
PROBE_AT_FRACTION = 0.5
#: ... but no later than this after the statement started, and then again this often.
PROBE_EVERY_SECONDS = 1.0
#: How much of a blocker's query to show.
QUERY_CHARS = 80


class BlockerWatch:
    """Watches the statements of one migrating session (``statement_started``/``_ended`` are
    called by the session's cursor listeners, from the main thread).

    Those two calls only set attributes: no lock, no wake-up, since they run for every statement
    of the migration. The watch thread polls them every half ``delay`` instead, so it probes
    between ``delay`` and 1.5 x ``delay`` into a waiting statement, still before the lock timeout
    (``delay`` is at most half of it)."""

    def __init__(self, engine: Engine, backend: Backend, session_id: Any) -> None:
        self.engine = engine
        self.backend = backend
        self.session_id = session_id
        #: Describe blockers once a statement has run this long (None: do not watch).
        self.delay: float | None = None
        self.blockers: list[dict[str, Any]] = []
        self._statement = 0
        self._running_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: Connection | None = None

    def watch(self, lock_timeout: float | None) -> None:
        """Bound to the lock timeout of the revision in flight (None or 0: no watching)."""
        self.delay = min(lock_timeout * PROBE_AT_FRACTION, PROBE_EVERY_SECONDS) if lock_timeout else None

    def statement_started(self) -> None:
        if self.delay is None or self.session_id is None:
            return
        self._statement += 1
        self.blockers = []
        self._running_since = time.monotonic()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="alembic-deploy-blockers", daemon=True)
            self._thread.start()

    def statement_ended(self) -> None:
        self._running_since = None

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # -- the watch thread --------------------------------------------------------------------------
    def _run(self) -> None:
        probed: tuple[int, float] | None = None  # (statement, when) of the last probe
        try:
            while not self._stop.wait((self.delay or PROBE_EVERY_SECONDS) / 2):
                statement, since, delay = self._statement, self._running_since, self.delay
                now = time.monotonic()
                if since is None or delay is None or now - since < delay:
                    continue
                # Then again every PROBE_EVERY_SECONDS while the same statement still runs.
                if probed is not None and probed[0] == statement and now - probed[1] < PROBE_EVERY_SECONDS:
                    continue
                probed = (statement, now)
                found = self._probe()
                if found and statement == self._statement:
                    self.blockers = found
        finally:
            if self._conn is not None:
                try:
                    self._conn.close()
                except Exception:  # noqa: BLE001
                    pass

    def _probe(self) -> list[dict[str, Any]]:
        try:
            if self._conn is None or self._conn.closed:
                self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            return self.backend.describe_blockers(self._conn, self.session_id)
        except Exception:  # noqa: BLE001 - naming the blocker is a courtesy, never a failure
            if self._conn is not None:
                try:
                    self._conn.close()
                except Exception:  # noqa: BLE001
                    pass
                self._conn = None
            return []


def describe_blocker(blocker: dict[str, Any]) -> str:
    """``pid 4242 (idle in transaction since 12:00:01, query: SELECT ...)``, scrubbed."""
    parts = [str(blocker.get("state") or "state unknown")]
    since = blocker.get("since")
    if isinstance(since, datetime):
        parts[0] += f" since {since.strftime('%H:%M:%S')}"
    query = " ".join(str(blocker.get("query") or "").split())
    if query:
        parts.append(f"query: {query[:QUERY_CHARS]}{'...' if len(query) > QUERY_CHARS else ''}")
    return scrub(f"pid {blocker.get('pid')} ({', '.join(parts)})")


def describe_blockers(blockers: list[dict[str, Any]]) -> str:
    if not blockers:
        return "the blocking session could not be identified"
    return "blocked by " + "; ".join(describe_blocker(b) for b in blockers[:3]) + (
        f" and {len(blockers) - 3} more" if len(blockers) > 3 else ""
    )
