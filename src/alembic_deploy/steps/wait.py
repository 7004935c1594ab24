"""Wait for the database: retry "not reachable yet", fail at once on "wrong".

Connection refused, DNS not ready, timeouts and "the database system is starting up" are retried
with jittered exponential backoff capped at :data:`MAX_BACKOFF_SECONDS`, so the first attempt
after the server starts accepting comes within about that long. A wrong password, an unknown
database or a missing driver fail immediately: retrying them only hides the problem.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .. import retrying
from ..errors import ConfigError, DatabaseUnreachable
from ..masking import mask_url, scrub

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Connection, Engine
    from tenacity import RetryCallState, Retrying

    from ..backends import Backend

#: Cap on the pause between two connection attempts (a refused connect costs ~1 ms).
MAX_BACKOFF_SECONDS = 0.1


def wait_for_database(
    engine: Engine,
    backend: Backend,
    timeout: float,
    on_retry: Callable[[int, BaseException], None] | None = None,
    hold: bool = False,
) -> tuple[float, int, Connection | None]:
    """Connect once successfully; returns (seconds waited, attempts, the connection that got
    through when ``hold``, else None). A held connection is idle, outside any transaction."""
    from sqlalchemy.exc import DBAPIError

    started = time.monotonic()
    attempts = 0

    def attempt() -> Connection | None:
        nonlocal attempts
        attempts += 1
        conn = engine.connect()
        try:
            conn.exec_driver_sql("SELECT 1")
            conn.rollback()
        except BaseException:
            conn.close()
            raise
        if hold:
            return conn
        conn.close()
        return None

    def transient(exc: BaseException) -> bool:
        return isinstance(exc, DBAPIError) and backend.is_transient(exc)

    def before_sleep(state: RetryCallState) -> None:
        # Only a failed attempt is retried: its outcome holds the exception.
        exc = state.outcome.exception() if state.outcome is not None else None
        if on_retry is not None and exc is not None:
            on_retry(attempts, exc)

    def loop() -> Retrying:
        from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_random_exponential

        return Retrying(
            retry=retry_if_exception(transient),
            wait=wait_random_exponential(multiplier=0.01, max=MAX_BACKOFF_SECONDS),
            stop=stop_after_delay(max(timeout, 0)),
            before_sleep=before_sleep,
            reraise=False,
        )

    where = mask_url(engine.url.render_as_string(hide_password=True))
    try:
        conn = retrying.call(attempt, loop)
    except retrying.GaveUp as exc:
        last = exc.last
        raise DatabaseUnreachable(
            f"The database at {where} was not reachable within {timeout:g}s "
            f"({attempts} attempts; last error: {_first_line(backend, last)}). Check that the server is "
            "running and that host, port and network rules (security groups) let this task "
            "reach it; raise --wait-timeout if it is still starting.",
        ) from None
    except DBAPIError as exc:
        raise ConfigError(
            f"The database at {where} refused the connection: {_first_line(backend, exc)}. This is not "
            f"a transient error, so it was not retried: {_refused_advice(engine)}.",
        ) from None
    return time.monotonic() - started, attempts, conn


def _refused_advice(engine: Engine) -> str:
    """What to check when the database refused the URL's login: where that login came from."""
    from ..credentials import source_for

    source = source_for(engine.url.render_as_string(hide_password=False))
    if source is not None:  # --database-secret / --rds-iam: DATABASE_URL may hold no login at all
        return source.refused_advice
    return "check the user, password and database name in DATABASE_URL (or --database-url, or sqlalchemy.url)"


def _first_line(backend: Backend, exc: BaseException | None) -> str:
    if exc is None:
        return "unknown"
    text = backend.error_text(exc).strip().splitlines()
    return scrub(text[0] if text else type(getattr(exc, "orig", None) or exc).__name__)
