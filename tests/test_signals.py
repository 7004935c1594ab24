"""SIGTERM / SIGINT as ECS and a terminal send them: during a long statement, while waiting for the
migration lock, while waiting for the database and while another writer locks a SQLite database.
Real processes, real signals, real servers."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from alembic_deploy.backends.sqlite import LOCK_SUFFIX
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


def _read_stderr_until(proc: subprocess.Popen, marker: str) -> str:
    """Read the process's stderr line by line until a line contains ``marker``; returns it all."""
    seen = ""
    while marker not in seen:
        line = proc.stderr.readline()  # type: ignore[union-attr]
        assert line, f"exited ({proc.wait()}) before printing {marker!r}: {seen}"
        seen += line
    return seen


#: Counts the sessions running LONG_STATEMENT in the database the counting session is connected to
#: (tests running at the same time on the same server run it in databases of their own).
RUNNING_SQL = {
    "postgresql": "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(60)%'"
                  " AND datname = current_database()",
    "mysql": "SELECT count(*) FROM information_schema.processlist WHERE info LIKE 'SELECT SLEEP(60)%'"
             " AND db = DATABASE()",
}


def _wait_for_the_long_statement(proc: subprocess.Popen, db) -> str:
    """Return once the deploy runs LONG_STATEMENT (what it printed on stderr until then): the
    server lists the session running it; SQLite has no session list, so the deploy's own line
    saying it starts the long revision, whose only statement it is, marks it."""
    seen = _read_stderr_until(proc, "-> a5_long")
    if db.backend != "sqlite":
        _wait_until(lambda: bool(db.scalar(RUNNING_SQL[db.backend])))
    return seen


def _long_project(make_project, backend: str, template: str = "sync"):
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
    seen = _wait_for_the_long_statement(proc, db)
    took, err = _stop(proc, signum)
    err = seen + err
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
        _wait_for_the_long_statement(holder, pg_db)
        waiter = spawn_cli(project, "upgrade", url=pg_db.url)
        seen = _read_stderr_until(waiter, "Waiting for the migration lock")
        took, err = _stop(waiter, signal.SIGTERM)
        err = seen + err
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
    seen = _read_stderr_until(proc, "Waiting for the database")  # past start-up, inside the wait loop
    took, err = _stop(proc, signal.SIGTERM)
    err = seen + err
    assert proc.returncode == 9, err
    assert took < EXIT_WITHIN_SECONDS, took
    assert "s3cret-pw" not in err and "Traceback" not in err


def _writer(path: Path) -> sqlite3.Connection:
    """Another writer holding the database: BEGIN EXCLUSIVE keeps every other connection out."""
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("CREATE TABLE other_app (id INTEGER)")
    writer.execute("BEGIN EXCLUSIVE")
    return writer


def _waits_on_the_database(proc: subprocess.Popen, database: Path) -> Callable[[], bool]:
    """The deploy holds the migration lock (its holder line is in the lock file) and its main
    thread sleeps in the kernel: SQLite's busy handler, waiting for the writer's lock."""
    lock_file = database.with_name(database.name + LOCK_SUFFIX)
    wchan = Path(f"/proc/{proc.pid}/wchan")
    if not wchan.exists():
        pytest.skip("needs /proc/<pid>/wchan to see where the process waits")

    def check() -> bool:
        holder = lock_file.read_text() if lock_file.exists() else ""
        return f"pid={proc.pid}" in holder and "nanosleep" in wchan.read_text()

    return check


def test_sigterm_while_another_writer_locks_the_database_exits_9_before_the_lock_is_released(
    sqlite_db, make_project, tmp_path,
):
    database = tmp_path / "app.db"
    writer = _writer(database)
    try:
        proc = spawn_cli(make_project("sync"), "upgrade", "--no-fast-path", url=sqlite_db.url)
        _wait_until(_waits_on_the_database(proc, database))
        _took, err = _stop(proc, signal.SIGTERM)
        assert writer.in_transaction  # the deploy ended while the writer still held the lock
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert proc.returncode == 9, err
    assert "Interrupted by SIGTERM" in err and "Traceback" not in err
    assert not sqlite_db.has_table("users")


@pytest.mark.parametrize("fast_path", [True, False])
def test_a_writer_that_releases_its_lock_lets_the_deploy_migrate(sqlite_db, make_project, tmp_path, fast_path):
    database = tmp_path / "app.db"
    writer = _writer(database)
    try:
        args = ["upgrade"] if fast_path else ["upgrade", "--no-fast-path"]
        proc = spawn_cli(make_project("sync"), *args, url=sqlite_db.url)
        _wait_until(_waits_on_the_database(proc, database))
        writer.execute("COMMIT")
        _out, err = proc.communicate(timeout=60)
    finally:
        writer.close()
    assert proc.returncode == 0, err
    assert sqlite_db.versions() == ["a3_seed"]
    assert sqlite_db.has_table("other_app")
