"""Retry loops that import tenacity only after a first attempt failed (retrying.py): the loop
must then behave exactly as tenacity's own, first attempt included."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest
from tenacity import Retrying, retry_if_exception_type, retry_if_result, stop_after_attempt, stop_after_delay, wait_none

from alembic_deploy import retrying


def test_a_first_attempt_that_succeeds_or_is_interrupted_never_imports_tenacity():
    code = textwrap.dedent("""
        import sys
        from alembic_deploy import retrying
        def build():
            raise AssertionError("the loop was built")
        def interrupted():
            raise KeyboardInterrupt("SIGTERM")
        assert retrying.call(lambda: 42, build) == 42
        assert retrying.call(lambda: True, build, accept=bool) is True
        try:
            retrying.call(interrupted, build)
        except KeyboardInterrupt as exc:
            assert str(exc) == "SIGTERM"
        print(any(name.split(".")[0] == "tenacity" for name in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_the_first_failure_is_replayed_to_the_loop_as_its_first_attempt():
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
    assert calls == [1, 2, 3]  # the first attempt ran once, not again inside the loop
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
        retrying.call(lambda: next(results), build, accept=bool)
    assert (raised.value.attempts, raised.value.last) == (2, None)
    assert next(results) is True  # two attempts in all: the first, replayed, and one more


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


def test_a_signal_during_the_tenacity_import_leaves_no_half_imported_package():
    # SignalInterrupt (a KeyboardInterrupt) raised while tenacity's modules load, as a SIGTERM
    # during a lock wait does; the next retry loop must still work.
    code = textwrap.dedent('''
        import sys
        from alembic_deploy import retrying

        class Interrupting:
            def find_spec(self, name, path=None, target=None):
                if name == "tenacity.stop":
                    raise KeyboardInterrupt("SIGTERM")

        def build():
            from tenacity import Retrying, stop_after_attempt, wait_none
            return Retrying(stop=stop_after_attempt(2), wait=wait_none())

        def refused():
            raise ConnectionError("refused")

        sys.meta_path.insert(0, Interrupting())
        try:
            retrying.call(refused, build)
        except KeyboardInterrupt:
            pass
        print(sorted(n for n in sys.modules if n.split(".")[0] == "tenacity"))
        sys.meta_path.pop(0)
        try:
            retrying.call(refused, build)
        except retrying.GaveUp as exc:
            print(exc.attempts, type(exc.last).__name__)
    ''')
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == ["[]", "2 ConnectionError"]
