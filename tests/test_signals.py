"""SIGTERM / SIGINT as ECS and a terminal send them: during a long statement, while waiting for the
migration lock and while waiting for the database. Real processes, real signals, real servers."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable

import pytest
from helpers import PG_DRIVER, free_port, run_cli, spawn_cli
from lockscene import write_revision

#: A statement that runs far longer than any test: only a cancel ends it early.
LONG_STATEMENT = {
    "postgresql": "SELECT pg_sleep(60)",
    "mysql": "SELECT SLEEP(60)",
    # ~100 M rows of a recursive CTE: a minute of CPU inside one sqlite3_step call.
    "sqlite": "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 100000000) "
              "SELECT count(*) FROM r",
}
EXIT_WITHIN_SECONDS = 5.0


def _wait_until(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached")


#: Counts the sessions running LONG_STATEMENT.
RUNNING_SQL = {
    "postgresql": "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(60)%'",
    "mysql": "SELECT count(*) FROM information_schema.processlist WHERE info LIKE 'SELECT SLEEP(60)%'",
}


def _statement_running(db) -> Callable[[], bool]:  # noqa: ANN001
    if db.backend == "sqlite":
        return lambda: time.sleep(3) or True  # no session list: give the process time to get there
    return lambda: bool(db.scalar(RUNNING_SQL[db.backend]))


def _long_project(make_project, backend: str, template: str = "sync"):  # noqa: ANN202
    """alter_users plus a5 (the long statement) and a6, which must never run after a signal."""
    project = make_project("alter_users")
    if template == "async":
        (project / "migrations" / "env.py").write_text(
            (make_project("async", "async_template") / "migrations" / "env.py").read_text()
        )
    write_revision(project, "a5_long", "a4_users_nickname", f'    op.execute("{LONG_STATEMENT[backend]}")')
    write_revision(project, "a6_after", "a5_long", "    op.create_table('after_long', sa.Column('id', sa.Integer))")
    return project


def _stop(proc: subprocess.Popen, signum: int) -> tuple[float, str]:
    started = time.monotonic()
    proc.send_signal(signum)
    try:
        _out, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise
    return time.monotonic() - started, err


@pytest.mark.parametrize(
    ("backend", "template", "signum"),
    [
        ("postgresql", "sync", signal.SIGTERM),
        ("postgresql", "async", signal.SIGTERM),
        ("mysql", "sync", signal.SIGTERM),
        ("mysql", "async", signal.SIGINT),
        ("sqlite", "sync", signal.SIGINT),
    ],
)
def test_signal_during_a_long_statement_cancels_it_and_exits_9(request, make_project, backend, template, signum):
    db = request.getfixturevalue({"postgresql": "pg_db", "mysql": "mysql_db", "sqlite": "sqlite_db"}[backend])
    project = _long_project(make_project, backend, template)
    url = db.async_url if template == "async" else db.url
    proc = spawn_cli(project, "upgrade", url=url)
    _wait_until(_statement_running(db))
    took, err = _stop(proc, signum)
    assert proc.returncode == 9, err
    assert took < EXIT_WITHIN_SECONDS, took
    assert f"Interrupted by {signal.Signals(signum).name}" in err and "Traceback" not in err
    assert [row["outcome"] for row in db.journal()] == ["interrupted"]
    assert not db.has_table("after_long")
    if backend != "sqlite":
        assert not db.scalar(RUNNING_SQL[backend])  # cancelled on the server, not left running
    # The lock is free and nothing is half done: the next deploy (minus the long revision) completes.
    second = run_cli(project, "upgrade", "a4_users_nickname", url=url)
    assert second.returncode == 0, second.output
    assert db.versions() == ["a4_users_nickname"]


def test_sigterm_while_waiting_for_the_migration_lock_exits_9_promptly(pg_db, make_project):
    project = _long_project(make_project, "postgresql")
    holder = spawn_cli(project, "upgrade", url=pg_db.url)
    try:
        _wait_until(_statement_running(pg_db))
        waiter = spawn_cli(project, "upgrade", url=pg_db.url)
        _wait_until(lambda: bool(pg_db.scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_try_advisory_lock%' AND pid <> pg_backend_pid()"
        )))
        took, err = _stop(waiter, signal.SIGTERM)
        assert waiter.returncode == 9, err
        assert took < EXIT_WITHIN_SECONDS, took
        assert "no migration statement was running" in err and "Traceback" not in err
    finally:
        _stop(holder, signal.SIGTERM)
    assert holder.returncode == 9


def test_sigterm_while_waiting_for_the_database_exits_9_promptly(tmp_path, make_project):
    project = make_project("alter_users")
    nowhere = f"{PG_DRIVER}://app:s3cret-pw@127.0.0.1:{free_port()}/app"
    proc = spawn_cli(project, "upgrade", "--wait-timeout", "120", url=nowhere)
    time.sleep(2.5)  # past start-up, inside the wait loop
    took, err = _stop(proc, signal.SIGTERM)
    assert proc.returncode == 9, err
    assert took < EXIT_WITHIN_SECONDS, took
    assert "s3cret-pw" not in err and "Traceback" not in err
