"""SIGTERM/SIGINT during a deploy: stop cleanly instead of dying mid-statement.

ECS stops a task with SIGTERM and kills it 30 s later. On the first signal the handler records it
and asks the database to cancel the statement in flight (from the idle lock session, see
``Backend.cancel``); the statement fails, its transaction rolls back, and the pipeline turns the
failure into :class:`~alembic_deploy.errors.Interrupted` (exit 9), journals it and releases the
lock. Outside a migration there is nothing to cancel, so the handler raises at once.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from .errors import Interrupted

_HANDLED = (signal.SIGTERM, signal.SIGINT)


class InterruptState:
    def __init__(self) -> None:
        self.signum: int | None = None
        #: Set while a migration runs: cancels the statement in flight on the server.
        self.cancel: Callable[[], None] | None = None

    @property
    def interrupted(self) -> bool:
        return self.signum is not None

    def error(self) -> Interrupted:
        name = signal.Signals(self.signum).name if self.signum else "signal"
        return Interrupted(
            f"Interrupted by {name}: the statement in flight was cancelled and its transaction "
            "rolled back, the run was journaled as 'interrupted' and the migration lock was "
            "released. Run the deploy again to continue.",
            signal=name,
        )

    def raise_if_interrupted(self) -> None:
        if self.interrupted:
            raise self.error()


@contextmanager
def interruptible() -> Iterator[InterruptState]:
    """Install the handlers for the block (main thread only; elsewhere a no-op)."""
    state = InterruptState()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        first = state.signum is None
        state.signum = signum
        cancel = state.cancel
        if cancel is None:
            raise state.error()
        if first:
            try:
                cancel()
            except Exception:  # noqa: BLE001 - best effort; the next statement checks the flag
                pass

    previous = {sig: signal.signal(sig, handler) for sig in _HANDLED}
    try:
        yield state
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
