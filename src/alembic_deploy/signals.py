"""SIGTERM/SIGINT during a deploy: stop cleanly instead of dying mid-statement.

ECS stops a task with SIGTERM and kills it 30 s later. Two parts cooperate:

* a **canceller thread** woken through :func:`signal.set_wakeup_fd`. The C-level handler writes the
  signal number to a socket the moment the signal arrives, even while the main thread sits in a
  driver call that does not return to Python (SQLite's ``sqlite3_step``, a C driver's blocking
  read). While a migration statement may be running (``state.cancel`` is set), the thread cancels
  it on the server from a fresh connection (``Backend.cancel``: ``pg_cancel_backend``,
  ``KILL QUERY``, ``sqlite3_interrupt``) and repeats every :data:`CANCEL_REPEAT_SECONDS` until the
  migration has unwound, so a statement sent just after the first cancel is cancelled too;
* the **Python handler** in the main thread records the signal. Outside a migration (waiting for
  the database or the migration lock, sleeping between retries) it raises :class:`SignalInterrupt`
  at once, which the pipeline turns into :class:`~alembic_deploy.errors.Interrupted`; during one it
  lets the cancelled statement fail, so its transaction rolls back and the pipeline journals
  ``interrupted``, releases the lock and exits 9. A second signal raises at once wherever the main
  thread is.

The migrating session also checks the flag before every statement (``MigratingSession``), which
covers ``SELECT SLEEP()`` on MySQL: a killed sleep returns early without an error.
"""

from __future__ import annotations

import signal
import socket
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING

from .errors import Interrupted

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import FrameType

_HANDLED = (signal.SIGTERM, signal.SIGINT)
#: While a migration has not unwound after a signal, cancel its statement again this often.
CANCEL_REPEAT_SECONDS = 0.5


class SignalInterrupt(KeyboardInterrupt):
    """What the handler raises. A KeyboardInterrupt on purpose: psycopg then cancels the query it
    was waiting for and leaves the connection usable, and SQLAlchemy invalidates (instead of rolling
    back) a connection whose call it interrupted, so the cleanup that follows (releasing the lock,
    closing) never trips over a half-sent command."""


class InterruptState:
    def __init__(self) -> None:
        self.signum: int | None = None
        #: Set while a migration runs: cancels the statement in flight on the server. Called from
        #: the canceller thread, never from the main thread.
        self.cancel: Callable[[], None] | None = None
        #: True once a signal arrived while a migration statement could be running.
        self.during_migration = False
        self._handled = 0

    @property
    def interrupted(self) -> bool:
        return self.signum is not None

    def error(self) -> Interrupted:
        name = signal.Signals(self.signum).name if self.signum else "signal"
        if self.during_migration:
            what = (
                "the statement in flight was cancelled on the server and its transaction rolled "
                "back, the run was journaled as 'interrupted' and the migration lock was released"
            )
        else:
            what = "no migration statement was running, and the migration lock (if held) was released"
        return Interrupted(f"Interrupted by {name}: {what}. Run the deploy again to continue.", signal=name)

    def raise_if_interrupted(self) -> None:
        if self.interrupted:
            raise self.error()

    def _record(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum
            self.during_migration = self.cancel is not None


class _Canceller(threading.Thread):
    """Waits on the wakeup socket; cancels the running statement while ``state.cancel`` is set."""

    def __init__(self, state: InterruptState, wakeup: socket.socket) -> None:
        super().__init__(name="alembic-deploy-canceller", daemon=True)
        self.state = state
        self.wakeup = wakeup
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                data = self.wakeup.recv(64)
            except OSError:
                return
            if not data or self.stopping.is_set():
                return
            for signum in data:
                if signum in _HANDLED:
                    self.state._record(signum)
            if self.state.interrupted:
                self._cancel_until_unwound()

    def _cancel_until_unwound(self) -> None:
        while not self.stopping.is_set():
            cancel = self.state.cancel
            if cancel is None:
                return
            try:
                cancel()
            except Exception:  # noqa: BLE001 - best effort: the next statement checks the flag
                pass
            if self.stopping.wait(CANCEL_REPEAT_SECONDS):
                return


@contextmanager
def interruptible() -> Iterator[InterruptState]:
    """Install the handlers for the block (main thread only; elsewhere a no-op)."""
    state = InterruptState()
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum: int, _frame: FrameType | None) -> None:
        state._record(signum)
        state._handled += 1
        if state.cancel is None or state._handled > 1:
            raise SignalInterrupt(signum)

    reader, writer = socket.socketpair()
    writer.setblocking(False)
    canceller = _Canceller(state, reader)
    previous = {sig: signal.signal(sig, handler) for sig in _HANDLED}
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    canceller.start()
    try:
        yield state
    finally:
        signal.set_wakeup_fd(previous_fd)
        for sig, old in previous.items():
            signal.signal(sig, old)
        canceller.stopping.set()
        try:
            writer.send(b"\0")
        except OSError:
            pass
        canceller.join(timeout=2)
        reader.close()
        writer.close()


@contextmanager
def deferred(state: InterruptState) -> Iterator[None]:
    """Run a block that must finish (dropping what a run created) without SIGTERM/SIGINT cutting
    it short: a signal arriving meanwhile is recorded on ``state`` and raised as
    :class:`SignalInterrupt` once the block is done (main thread only; elsewhere a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    arrived: list[int] = []

    def record(signum: int, _frame: FrameType | None) -> None:
        state._record(signum)
        arrived.append(signum)

    previous = {sig: signal.signal(sig, record) for sig in _HANDLED}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
    if arrived:
        raise SignalInterrupt(arrived[0])


class Received:
    """SIGTERM/SIGINT recorded by :func:`recorded`: ``event`` is set by the first one."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signum: int | None = None

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name if self.signum else "signal"


@contextmanager
def recorded() -> Iterator[Received]:
    """Record SIGTERM/SIGINT instead of raising, for a loop that waits on ``received.event``
    between polls and reacts itself (``ecs-run`` stops its task, waits for it, then exits 9): a
    second signal does not cut that short. Main thread only; elsewhere nothing is recorded."""
    received = Received()
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def record(signum: int, _frame: FrameType | None) -> None:
        if received.signum is None:
            received.signum = signum
        received.event.set()

    previous = {sig: signal.signal(sig, record) for sig in _HANDLED}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
