"""Every wait of the fast path can be interrupted at once and ends by itself: SIGTERM while it waits
for a version table another session holds locked exits 9 while that lock is still held, and
without a signal it stops waiting and leaves the run to the full path.

Real servers, real locks, real signals: the moment to send the signal is when the server shows
the fast path's statement waiting for the lock.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from alembic_deploy.fastpath.direct import DirectConnection
from helpers import PG_DRIVER, Database, run_cli, spawn_cli, url_text

#: The fast path's read of the version table, and alembic's (the full path's), as the server shows them.
FAST_READ = "SELECT version_num FROM alembic_version"
ALEMBIC_READ = "SELECT alembic_version.version_num"
#: Sessions waiting for a lock, by the start of their statement.
WAITING_SQL = {
    "postgresql": "SELECT query FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
    "mysql": "SELECT info FROM information_schema.processlist WHERE state LIKE 'Waiting for table%%' "
             "AND db = database()",
}
#: Generous: a hung process fails the test instead of hanging it (the lock is never released first).
HANG_SECONDS = 60


@pytest.fixture
def cache_env(tmp_path: Path) -> dict[str, str]:
    return {"XDG_CACHE_HOME": str(tmp_path / "xdg-cache")}


@pytest.fixture(params=[
    pytest.param("postgresql+psycopg", marks=pytest.mark.skipif(
        PG_DRIVER != "postgresql+psycopg", reason="SQLAlchemy 1.4 has no psycopg 3 dialect")),
    "postgresql+psycopg2",
    "mysql",
])
def server_db(request: pytest.FixtureRequest) -> tuple[Database, str]:
    """(database, the URL the tool is given): PostgreSQL read through libpq (psycopg's) or psycopg2."""
    if request.param == "mysql":
        db = request.getfixturevalue("mysql_db")
        return db, db.url
    db = request.getfixturevalue("pg_db")
    return db, url_text(db.url, drivername=request.param)


@contextmanager
def version_table_locked(db: Database) -> Iterator[None]:
    """Another session holds the version table locked until the block ends (a migration by
    another tool, say)."""
    engine = db.engine()
    conn = engine.connect()
    try:
        if db.backend == "postgresql":
            conn.exec_driver_sql("LOCK TABLE alembic_version IN ACCESS EXCLUSIVE MODE")
        else:
            conn.exec_driver_sql("LOCK TABLES alembic_version WRITE")
        yield
    finally:
        if db.backend == "mysql":
            conn.exec_driver_sql("UNLOCK TABLES")
        conn.rollback()
        conn.close()
        engine.dispose()


def waiting(db: Database) -> list[str]:
    return [" ".join(str(q).split()) for (q,) in db.rows(WAITING_SQL[db.backend])]


def wait_for(what: Callable[[], bool], proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + HANG_SECONDS
    while not what():
        if proc is not None:
            assert proc.poll() is None, f"exited {proc.returncode} first: {proc.stderr.read()}"  # type: ignore[union-attr]
        assert time.monotonic() < deadline, "never seen"
        time.sleep(0.01)


def test_sigterm_while_the_fast_path_waits_for_a_locked_version_table_exits_9_at_once(
    server_db, make_project, cache_env,
):
    db, url = server_db
    project = make_project("sync")
    assert run_cli(project, "upgrade", url=url, env=cache_env).returncode == 0
    with version_table_locked(db):
        proc = spawn_cli(project, "upgrade", "--json", url=url, env=cache_env)
        try:
            wait_for(lambda: any(q.endswith(FAST_READ) for q in waiting(db)), proc)
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=HANG_SECONDS)  # the lock is still held meanwhile
        finally:
            proc.kill()
            proc.wait()
        assert proc.returncode == 9, err
        assert "error: Interrupted by SIGTERM" in err and "Traceback" not in err, err
        assert json.loads(out)["outcome"] == "interrupted"
        # Nor does the server go on waiting for the lock on its behalf for long.
        wait_for(lambda: not any(q.endswith(FAST_READ) for q in waiting(db)))
    assert db.versions() == ["a3_seed"]


def test_the_fast_path_stops_waiting_for_a_locked_version_table_and_the_full_path_takes_over(
    server_db, make_project, cache_env,
):
    db, url = server_db
    project = make_project("sync")
    assert run_cli(project, "upgrade", url=url, env=cache_env).returncode == 0
    with version_table_locked(db):
        proc = spawn_cli(project, "upgrade", "--json", url=url, env=cache_env)
        try:
            # alembic's own read waits now: the fast path gave up while the lock was held.
            wait_for(lambda: any(q.startswith(ALEMBIC_READ) for q in waiting(db)), proc)
        except BaseException:
            proc.kill()
            raise
    out, err = proc.communicate(timeout=HANG_SECONDS)
    assert proc.returncode == 0, err
    assert '"fast_path": false' in out and '"outcome": "noop"' in out


@pytest.mark.timeout(HANG_SECONDS // 2)
def test_a_locked_sqlite_database_declines_instead_of_waiting_inside_sqlite(sqlite_db, make_project, cache_env):
    """SQLite's busy wait runs inside the library, where no signal handler runs: the fast path keeps
    it short and declines (the full path waits instead)."""
    project = make_project("sync")
    assert run_cli(project, "upgrade", url=sqlite_db.url, env=cache_env).returncode == 0
    direct = DirectConnection.open(sqlite_db.url)
    assert direct is not None
    blocker = sqlite3.connect(sqlite_db.url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        assert direct.query_column(FAST_READ) is None
        blocker.rollback()
        assert direct.query_column(FAST_READ) == ["a3_seed"]
    finally:
        blocker.close()
        direct.close()
