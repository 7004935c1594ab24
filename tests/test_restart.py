"""The database restarts (or goes away) while a revision runs, on throwaway servers of the test's
own: PostgreSQL rolled the revision back, so the run waits for the server and retries; where a
retry is not safe, or the server stays down, the run fails clearly."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from helpers import Database, run_cli, spawn_cli
from lockscene import write_revision
from servers import MariaDBServer, PostgresServer, mariadb_server, postgres_server


@pytest.fixture
def throwaway_pg() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def throwaway_mariadb() -> Iterator[MariaDBServer]:
    with mariadb_server() as server:
        yield server


def _slow_project(make_project, sleep_sql: str):
    project = make_project("alter_users")
    write_revision(project, "a5_slow", "a4_users_nickname", f'    op.execute("{sleep_sql}")')
    write_revision(project, "a6_after", "a5_slow", "    op.create_table('after_slow', sa.Column('id', sa.Integer))")
    return project


def _when_running(db: Database, sql: str, action, timeout: float = 30.0) -> threading.Thread:
    """Run ``action`` in a thread as soon as ``sql`` counts a running statement."""

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if db.scalar(sql):
                    action()
                    return
            except Exception:  # noqa: BLE001 - not up yet
                pass
            time.sleep(0.1)

    thread = threading.Thread(target=watch)
    thread.start()
    return thread


PG_SLEEPING = "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(5)%'"


def test_postgres_restart_mid_revision_is_retried_once_the_server_is_back(throwaway_pg, make_project):
    db = Database(throwaway_pg.create_database("app"), "postgresql")
    project = _slow_project(make_project, "SELECT pg_sleep(5)")
    proc = spawn_cli(project, "upgrade", "--wait-timeout", "60", url=db.url)
    restarter = _when_running(db, PG_SLEEPING, lambda: throwaway_pg.restart(down_for=1.0))
    _out, err = proc.communicate(timeout=120)
    restarter.join()
    assert proc.returncode == 0, err
    assert "lost its database connection" in err and "Traceback" not in err
    assert db.versions() == ["a6_after"]
    assert db.has_table("after_slow")
    # One run, journaled once, on the lock session taken again after the restart.
    assert [row["outcome"] for row in db.journal()] == ["applied"]
    second = run_cli(project, "upgrade", url=db.url)
    assert second.returncode == 0 and db.versions() == ["a6_after"]


def test_postgres_that_stays_down_fails_clearly(throwaway_pg, make_project):
    db = Database(throwaway_pg.create_database("app"), "postgresql")
    project = _slow_project(make_project, "SELECT pg_sleep(5)")
    proc = spawn_cli(project, "upgrade", "--wait-timeout", "3", url=db.url)
    stopper = _when_running(db, PG_SLEEPING, throwaway_pg.stop)
    _out, err = proc.communicate(timeout=120)
    stopper.join()
    assert proc.returncode == 3, err
    assert "connection was lost during the migration" in err and "Traceback" not in err
    throwaway_pg.start()
    # env.py runs every revision in one transaction: the server rolled all of it back.
    assert not db.has_table("alembic_version") and not db.has_table("users")


def test_mariadb_restart_mid_statement_is_not_retried(throwaway_mariadb, make_project):
    """MariaDB commits DDL statement by statement, and a statement cut off by a restart may or may
    not have completed: no retry, a clear exit 7."""
    db = Database(throwaway_mariadb.create_database("app"), "mysql")
    project = _slow_project(make_project, "SELECT SLEEP(5)")
    proc = spawn_cli(project, "upgrade", "--wait-timeout", "60", url=db.url)
    sleeping = "SELECT count(*) FROM information_schema.processlist WHERE info LIKE 'SELECT SLEEP(5)%'"
    restarter = _when_running(db, sleeping, throwaway_mariadb.restart)
    _out, err = proc.communicate(timeout=120)
    restarter.join()
    assert proc.returncode == 7, err
    assert "lost its database connection" in err and "was not retried" in err
    assert "Traceback" not in err
    assert "a5_slow" not in db.versions()
