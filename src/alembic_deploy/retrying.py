"""Retry loops: tenacity's, with one exception type for a loop that gave up.

The wait, lock and upgrade steps each build a ``tenacity.Retrying`` (their retry test, stop, wait
and ``before_sleep`` report) and run their attempt through :func:`call`. A loop that gives up
raises :class:`GaveUp`, not tenacity's ``RetryError``, so no ``except`` clause needs tenacity.
KeyboardInterrupt (the signals' ``SignalInterrupt`` is one) and SystemExit are never retried:
no step's retry test accepts them, and tenacity raises what it does not retry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from tenacity import RetryError, Retrying

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")


class GaveUp(Exception):
    """The loop's stop condition ended it while the last attempt still failed or was refused."""

    def __init__(self, last: BaseException | None, attempts: int) -> None:
        super().__init__(f"gave up after {attempts} attempt(s)")
        #: The last attempt's exception; None when it returned a result the loop retries on.
        self.last = last
        self.attempts = attempts


def call(attempt: Callable[[], T], build: Callable[[], Retrying]) -> T:
    """``build()(attempt)``; raises :class:`GaveUp` where that loop would raise ``RetryError``."""
    try:
        return build()(attempt)
    except RetryError as exc:
        last = exc.last_attempt
        raise GaveUp(last.exception() if last.failed else None, last.attempt_number) from None
