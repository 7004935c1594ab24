"""Retry loops (tenacity's) that import tenacity only when the first attempt is not enough.

Nearly every call succeeds at once: the database is up, the lock is free, the migration applies.
Importing tenacity costs ~21 M instructions (callgrind; ~4.5 ms), about 0.6 % of a full upgrade
of 500 revisions, so :func:`call` makes the first attempt itself. Only when that attempt raises,
or returns a result ``accept`` refuses, is the loop built, and it takes that outcome as its own
first attempt: its retry test, stop, wait and ``before_sleep`` hook see exactly what they would
have seen, and its clock starts when the first attempt did. KeyboardInterrupt (the signals'
``SignalInterrupt`` is one) and SystemExit are never retried here: they leave at once, without
building the loop.

The import then happens while the run waits (for the database, for the lock), which is when a
SIGTERM is most likely to arrive, and :mod:`alembic_deploy.signals` raises it wherever the main
thread is. An import interrupted midway leaves half a package behind, so :func:`_load` drops what
it imported before letting the interruption through, and a loop that gives up raises
:class:`GaveUp`, not tenacity's ``RetryError``: an ``except`` clause never needs tenacity.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from tenacity import RetryCallState, Retrying

T = TypeVar("T")


class GaveUp(Exception):
    """The loop's stop condition ended it while the last attempt still failed or was refused."""

    def __init__(self, last: BaseException | None, attempts: int) -> None:
        super().__init__(f"gave up after {attempts} attempt(s)")
        #: The last attempt's exception; None when it returned a result ``accept`` refused.
        self.last = last
        self.attempts = attempts


def call(attempt: Callable[[], T], build: Callable[[], Retrying],
         accept: Callable[[T], bool] | None = None) -> T:
    """``build()(attempt)``, with the first attempt made before ``build`` is called; raises
    :class:`GaveUp` where that loop would raise ``RetryError``."""
    started = time.monotonic()
    try:
        result = attempt()
    except Exception as exc:  # noqa: BLE001 - the loop decides about it, as tenacity would
        first: tuple[bool, Any] = (True, exc)
    else:
        if accept is None or accept(result):
            return result
        first = (False, result)
    _load()
    from tenacity import RetryError

    retrying = build()
    own_before = retrying.before
    replay = [first]

    def before(state: RetryCallState) -> None:
        if state.attempt_number == 1:
            state.start_time = started  # its stop_after_delay counts the first attempt's time
        if own_before is not None:
            own_before(state)

    def again() -> T:
        if not replay:
            return attempt()
        raised, value = replay.pop()
        if raised:
            raise value
        return value  # type: ignore[no-any-return]

    try:
        return retrying.copy(before=before)(again)
    except RetryError as exc:
        last = exc.last_attempt
        raise GaveUp(last.exception() if last.failed else None, last.attempt_number) from None


def _load() -> None:
    """Import tenacity whole, or not at all: a signal raised midway (``SignalInterrupt``) would
    leave some of its modules in ``sys.modules`` and the package broken for the next import."""
    before = set(sys.modules)
    try:
        import tenacity  # noqa: F401
    except BaseException:
        for name in set(sys.modules) - before:
            if name == "tenacity" or name.startswith("tenacity."):
                del sys.modules[name]
        raise
