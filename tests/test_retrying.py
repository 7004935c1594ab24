"""Retry loops (retrying.py): tenacity's own behaviour, with GaveUp for a loop that gave up."""

from __future__ import annotations

import time

import pytest
from tenacity import (
    Retrying,
    retry_if_exception_type,
    retry_if_result,
    stop_after_attempt,
    stop_after_delay,
    wait_none,
)

from alembic_deploy import retrying


def test_an_interrupt_is_never_retried():
    calls: list[int] = []

    def interrupted() -> None:
        calls.append(1)
        raise KeyboardInterrupt("SIGTERM")

    def build() -> Retrying:
        return Retrying(retry=retry_if_exception_type(ConnectionError), wait=wait_none())

    with pytest.raises(KeyboardInterrupt, match="SIGTERM"):
        retrying.call(interrupted, build)
    assert calls == [1]


def test_failures_are_retried_and_reported_before_each_sleep():
    calls: list[int] = []
    slept: list[tuple[int, str]] = []

    def attempt() -> str:
        calls.append(len(calls) + 1)
        if len(calls) < 3:
            raise ConnectionError(f"refused {len(calls)}")
        return "up"

    def build() -> Retrying:
        return Retrying(retry=retry_if_exception_type(ConnectionError), wait=wait_none(),
                        before_sleep=lambda s: slept.append((s.attempt_number, str(s.outcome.exception()))))

    assert retrying.call(attempt, build) == "up"
    assert calls == [1, 2, 3]
    assert slept == [(1, "refused 1"), (2, "refused 2")]


def test_an_error_the_loop_does_not_retry_comes_out_unchanged():
    error = KeyError("wrong password")

    def attempt() -> None:
        raise error

    def build() -> Retrying:
        return Retrying(retry=retry_if_exception_type(ConnectionError))

    with pytest.raises(KeyError) as raised:
        retrying.call(attempt, build)
    assert raised.value is error


def test_a_refused_result_is_retried_until_the_stop_then_gives_up():
    results = iter([False, False, True])

    def build() -> Retrying:
        return Retrying(retry=retry_if_result(lambda ok: not ok), stop=stop_after_attempt(2), wait=wait_none())

    with pytest.raises(retrying.GaveUp) as raised:
        retrying.call(lambda: next(results), build)
    assert (raised.value.attempts, raised.value.last) == (2, None)
    assert next(results) is True  # two attempts in all


def test_the_loop_clock_starts_with_the_first_attempt():
    attempts: list[float] = []

    def slow_failure() -> None:
        attempts.append(time.monotonic())
        time.sleep(0.3)
        raise ConnectionError("refused")

    def build() -> Retrying:
        return Retrying(retry=retry_if_exception_type(ConnectionError), stop=stop_after_delay(0.2), wait=wait_none())

    with pytest.raises(retrying.GaveUp) as raised:
        retrying.call(slow_failure, build)
    # The deadline passed during the first attempt: a loop started after it would try again.
    assert len(attempts) == 1
    assert isinstance(raised.value.last, ConnectionError) and raised.value.attempts == 1
