"""Every DBAPI driver SQLAlchemy supports for the three backends, on the full path against its real
server: psycopg, psycopg2, pg8000, asyncpg; PyMySQL, mysqlclient (``mysql://``), aiomysql, asyncmy,
MySQL Connector/Python, MariaDB Connector/Python; sqlite3, aiosqlite. Async drivers run the
``alembic init -t async`` env.py, as a project using them does; the tool's own connections then use
an installed sync sibling (``Backend.own_driver``).

One scenario per test, each parametrized over the drivers: an upgrade from empty then the no-op
(fast path and full path), a failing revision (exit 7), two processes where one waits for the
other's migration lock, a lock-timeout retry naming the blocker (server backends), SIGTERM during a
statement. The drivers every other test already uses are marked ``drivers`` (deselected by
default, run by CI).
"""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from alembic_deploy.compat import has_dialect, installed_version
from helpers import Database, assert_failed_cleanly, free_port, run_cli, spawn_cli, url_text, without_modules
from lockscene import Blocker, write_revision
from test_signals import LONG_STATEMENT, RUNNING_SQL

#: (SQLAlchemy driver name in the URL, backend fixture, its env.py template)
DRIVERS = {
    "psycopg": ("postgresql+psycopg", "pg_db", "sync"),
    "psycopg2": ("postgresql+psycopg2", "pg_db", "sync"),
    "pg8000": ("postgresql+pg8000", "pg_db", "sync"),
    "asyncpg": ("postgresql+asyncpg", "pg_db", "async"),
    "pymysql": ("mysql+pymysql", "mysql_db", "sync"),
    "mysqldb": ("mysql", "mysql_db", "sync"),  # the bare scheme: SQLAlchemy's default, MySQLdb
    "aiomysql": ("mysql+aiomysql", "mysql_db", "async"),
    "asyncmy": ("mysql+asyncmy", "mysql_db", "async"),
    "mysqlconnector": ("mysql+mysqlconnector", "mysql_db", "sync"),
    "mariadbconnector": ("mariadb+mariadbconnector", "mysql_db", "sync"),
    "pysqlite": ("sqlite", "sqlite_db", "sync"),
    "aiosqlite": ("sqlite+aiosqlite", "sqlite_db", "async"),
}
#: Run only under ``-m drivers`` (CI): the drivers the rest of the suite runs every test with, and
#: the two MySQL connectors beyond the four drivers of the default run.
CI_ONLY = {"psycopg", "asyncpg", "pymysql", "aiomysql", "pysqlite", "aiosqlite", "mysqlconnector", "mariadbconnector"}


def _params(names: list[str]) -> list:
    return [pytest.param(n, id=n, marks=[pytest.mark.drivers] if n in CI_ONLY else []) for n in names]


class Target:
    """A throwaway database (``db``, read through the test's own sync driver) and the URL the
    deploy is given (``url``, through the driver under test)."""

    def __init__(self, db: Database, drivername: str, template: str) -> None:
        self.db = db
        self.url = url_text(db.url, drivername=drivername)
        self.template = template


def _target(request: pytest.FixtureRequest) -> Target:
    drivername, fixture, template = DRIVERS[request.param]
    backend, _, driver = drivername.partition("+")
    if not has_dialect(backend, driver):  # SQLAlchemy 1.4: no psycopg 3, asyncmy from 1.4.29
        pytest.skip(f"SQLAlchemy {installed_version('sqlalchemy')} has no {drivername} dialect")
    return Target(request.getfixturevalue(fixture), drivername, template)


@pytest.fixture(params=_params(list(DRIVERS)))
def target(request: pytest.FixtureRequest) -> Target:
    return _target(request)


@pytest.fixture(params=_params([n for n, (_u, fixture, _t) in DRIVERS.items() if fixture != "sqlite_db"]))
def server_target(request: pytest.FixtureRequest) -> Target:
    return _target(request)


def _project(make_project, target: Target, scenario: str = "sync") -> Path:
    project = make_project(scenario)
    if target.template == "async":
        (project / "migrations" / "env.py").write_text(
            (make_project("async", "async_template") / "migrations" / "env.py").read_text()
        )
    return project


def _outcomes(db: Database) -> list[str]:
    return [row["outcome"] for row in db.journal()]


def test_upgrade_from_empty_then_the_no_op(target, make_project):
    project = _project(make_project, target)
    first = run_cli(project, "upgrade", url=target.url)
    assert first.returncode == 0, first.output
    assert "Traceback" not in first.output
    assert target.db.versions() == ["a3_seed"]
    assert target.db.scalar("SELECT COUNT(*) FROM users") == 1
    [applied] = target.db.journal()
    assert applied["outcome"] == "applied" and applied["to_revisions"] == "a3_seed"

    for args in (("upgrade",), ("upgrade", "--no-fast-path")):
        again = run_cli(project, *args, url=target.url)
        assert again.returncode == 0, again.output
        assert "Nothing to do" in again.stderr
    assert _outcomes(target.db) == ["applied", "noop", "noop"]
    for command in ("status", "history"):
        shown = run_cli(project, command, "--json", url=target.url)
        assert shown.returncode == 0, shown.output
        json.loads(shown.stdout)


def test_a_failing_revision_exits_7_and_is_journaled(target, make_project):
    project = _project(make_project, target, "failing")
    run = run_cli(project, "upgrade", url=target.url)
    assert run.returncode == 7, run.output
    assert "a4_broken" in run.stderr and "table_that_does_not_exist" in run.stderr
    assert "Traceback" not in run.output
    versions = target.db.versions() if target.db.has_table("alembic_version") else []
    # PostgreSQL ran the whole upgrade in one transaction, rolled back; elsewhere a1..a3 stay.
    assert versions == ([] if target.db.backend == "postgresql" else ["a3_seed"])
    assert _outcomes(target.db)[-1] == "failed"


class _StderrWatch:
    """Reads a process's stderr as it comes; :meth:`wait_for` blocks until a line contains a text
    (or the process ended without writing it)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._done = False
        self._thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self._thread.start()

    def _read(self, proc: subprocess.Popen) -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._done = True
            self._changed.notify_all()

    def wait_for(self, text: str, timeout: float = 60) -> None:
        with self._changed:
            found = self._changed.wait_for(lambda: self._done or any(text in line for line in self.lines), timeout)
            assert found and any(text in line for line in self.lines), "".join(self.lines)

    def text(self) -> str:
        self._thread.join(timeout=60)
        return "".join(self.lines)


def _hold_rows(db: Database):
    """An open transaction of the test's own holding the write locks a5 needs, until closed."""
    conn = db.engine().connect()
    if db.backend == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE")  # the database's write lock
    else:
        conn.exec_driver_sql("BEGIN")
        conn.exec_driver_sql("SELECT * FROM users FOR UPDATE")
    return conn


def _holding_the_lock(target: Target, project: Path) -> bool:
    if target.db.backend == "sqlite":
        lock_file = Path(target.db.url.split("///", 1)[1] + ".alembic-deploy.lock")
        return lock_file.exists() and lock_file.read_text().startswith("alembic-deploy")
    return "running" in _outcomes(target.db)


def test_a_second_process_waits_for_the_migration_lock(target, make_project):
    project = _project(make_project, target)
    assert run_cli(project, "upgrade", url=target.url).returncode == 0
    write_revision(project, "a4_touch_users", "a3_seed", "    op.execute(\"UPDATE users SET email = email\")")
    gate = _hold_rows(target.db)
    try:
        holder = spawn_cli(project, "upgrade", "--ddl-lock-timeout", "0", url=target.url)
        deadline = time.monotonic() + 60
        while not _holding_the_lock(target, project):
            assert holder.poll() is None, holder.communicate()
            assert time.monotonic() < deadline, "the first deploy never took the lock"
            time.sleep(0.05)
        waiter = spawn_cli(project, "upgrade", url=target.url)
        watch = _StderrWatch(waiter)
        watch.wait_for("Waiting for the migration lock")
    finally:
        gate.rollback()
        gate.close()
    _out, err = holder.communicate(timeout=120)
    assert holder.returncode == 0, err
    waiter.wait(timeout=120)
    assert waiter.returncode == 0, watch.text()
    assert "Nothing to do" in watch.text()
    assert target.db.versions() == ["a4_touch_users"]
    assert sorted(_outcomes(target.db)[1:]) == ["applied", "noop"]


def test_a_lock_timeout_is_retried_and_the_blocker_named(server_target, make_project):
    target = server_target
    project = _project(make_project, target, "alter_users")
    assert run_cli(project, "upgrade", "a3_seed", url=target.url).returncode == 0
    blocker = Blocker(target.db.url, target.db.backend)
    try:
        proc = spawn_cli(project, "upgrade", "--json", "--ddl-lock-timeout", "0.5", "--retries", "20", url=target.url)
        watch = _StderrWatch(proc)
        # Until a retry names the blocker: on a busy machine the look at who blocks may come only
        # after an attempt's lock timeout (then that retry names nobody, and the next one does).
        watch.wait_for(f"pid {blocker.pid}")
    finally:
        blocker.release()
    out = proc.stdout.read()  # type: ignore[union-attr]
    proc.wait(timeout=120)
    assert proc.returncode == 0, watch.text()
    assert "retry 1/" in watch.text() and f"pid {blocker.pid}" in watch.text()
    assert json.loads(out)["applied"][0]["attempts"] >= 2
    assert target.db.versions() == ["a4_users_nickname"]
    assert _outcomes(target.db)[-1] == "applied"


def test_an_unreachable_server_is_waited_for_and_a_wrong_database_refused_at_once(server_target, make_project):
    """Each driver's connect is bounded and its errors read: exit 3 after --wait-timeout, exit 2
    at once, with the server's message (not a driver's data structure)."""
    project = _project(make_project, server_target)
    unreachable = run_cli(project, "upgrade", "--wait-timeout", "1", url=url_text(server_target.url, port=free_port()))
    assert "not reachable within 1s" in assert_failed_cleanly(unreachable, 3)
    wrong = run_cli(project, "upgrade", "--wait-timeout", "60",
                    url=url_text(server_target.url, database="ad_no_such_database"))
    message = assert_failed_cleanly(wrong, 2)
    assert "refused the connection" in message and message.count("ad_no_such_database") >= 2, message
    assert "{" not in message, message


def test_sigterm_cancels_the_running_statement_on_the_server(target, make_project):
    """The driver's session is found (its server id, or its event loop for aiosqlite) and its
    statement cancelled: exit 9, journaled, nothing after it applied, the next deploy completes."""
    project = _project(make_project, target, "alter_users")
    write_revision(project, "a5_long", "a4_users_nickname", f'    op.execute("{LONG_STATEMENT[target.db.backend]}")')
    write_revision(project, "a6_after", "a5_long", "    op.create_table('after_long', sa.Column('id', sa.Integer))")
    proc = spawn_cli(project, "upgrade", url=target.url)
    watch = _StderrWatch(proc)
    watch.wait_for("Running upgrade a4_users_nickname -> a5_long")
    if target.db.backend != "sqlite":  # SQLite lists no sessions: the line above is as close as it gets
        deadline = time.monotonic() + 30
        while not target.db.scalar(RUNNING_SQL[target.db.backend]):
            assert time.monotonic() < deadline and proc.poll() is None, watch.text()
            time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode == 9, watch.text()
    assert "Interrupted by SIGTERM" in watch.text() and "Traceback" not in watch.text()
    assert _outcomes(target.db)[-1] == "interrupted"
    assert not target.db.has_table("after_long")
    if target.db.backend != "sqlite":
        assert not target.db.scalar(RUNNING_SQL[target.db.backend])  # cancelled, not left running
    again = run_cli(project, "upgrade", "a4_users_nickname", url=target.url)
    assert again.returncode == 0, again.output


# -- an async driver without the sync sibling the README names -----------------------------------------
def test_an_async_driver_uses_whichever_sync_sibling_is_installed(pg_db, make_project, tmp_path):
    target = Target(pg_db, "postgresql+asyncpg", "async")
    project = _project(make_project, target)
    env = without_modules(tmp_path / "hidden", "psycopg", "psycopg2")  # asyncpg and pg8000 only
    run = run_cli(project, "upgrade", url=target.url, env=env)
    assert run.returncode == 0, run.output
    assert pg_db.versions() == ["a3_seed"] and _outcomes(pg_db) == ["applied"]


def test_an_async_driver_alone_is_a_configuration_error_naming_the_package(mysql_db, make_project, tmp_path):
    target = Target(mysql_db, "mysql+asyncmy", "async")
    project = _project(make_project, target)
    run = run_cli(project, "upgrade", url=target.url, env=without_modules(tmp_path / "hidden", "pymysql", "MySQLdb"))
    assert run.returncode == 2, run.output
    assert "Traceback" not in run.output
    assert "asyncmy" in run.stderr and "alembic-deploy[mysql]" in run.stderr and "pymysql" in run.stderr
    assert not mysql_db.has_table("users")
