"""Every documented exit code, each produced by a real scenario on real servers: one clear
``error:`` paragraph on stderr, no traceback, and the password never shown.

Server URLs carry a password the server checks (a role on a throwaway scram PostgreSQL, a MariaDB
user of the test's own), so a leak would be a real one."""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from alembic_deploy.backends import for_dialect
from alembic_deploy.backends.base import stable_int64
from alembic_deploy.backends.sqlite import LOCK_SUFFIX
from helpers import (
    Database,
    assert_failed_cleanly,
    free_port,
    invoke_cli,
    run_cli,
    signal_at,
    spawn_cli,
    url_text,
    without_modules,
)
from servers import PostgresServer


@pytest.fixture(params=("sqlite", "postgresql", "mysql"))
def secret_db(request: pytest.FixtureRequest) -> Database:
    """One database per backend; on servers its URL carries a password the server checks."""
    fixture = {"sqlite": "sqlite_db", "postgresql": "password_pg_db", "mysql": "password_mysql_db"}
    return request.getfixturevalue(fixture[request.param])


def _secrets(db: Database) -> tuple[str, ...]:
    return (db.password,) if db.password else ()


def _with_port(db: Database, port: int) -> str:
    return url_text(db.url, host="127.0.0.1", port=port)


def _with_password(db: Database, password: str) -> str:
    return url_text(db.url, password=password)


def _read_stderr_until(proc, marker: str) -> str:
    """Read the process's stderr line by line until a line contains ``marker``; returns it all."""
    seen = ""
    while marker not in seen:
        line = proc.stderr.readline()
        assert line, f"exited ({proc.wait()}) before printing {marker!r}: {seen}"
        seen += line
    return seen


# -- 2: usage or configuration ------------------------------------------------------------------
def test_missing_ini_exits_2(tmp_path):
    run = invoke_cli(tmp_path, "upgrade", "--json", url="postgresql://app:s3cr3t-ini-1@127.0.0.1/app")
    message = assert_failed_cleanly(run, 2, "s3cr3t-ini-1")
    assert "No Alembic config" in message and "-c/--config" in message
    report = json.loads(run.stdout)
    assert (report["exit_code"], report["error"]["kind"]) == (2, "config-error")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://app:s3cr3t-url-1@db:notaport/app", "not a valid SQLAlchemy URL"),
        ("definitely not a url", "not a valid SQLAlchemy URL"),
        # A driver name SQLAlchemy does not know (a typo): the drivers it has, not "upgrade SQLAlchemy".
        ("postgresql+nodriver://app:s3cr3t-url-1@db/app", "No database driver: SQLAlchemy"),
        ("postgresql+nodriver://app:s3cr3t-url-1@db/app", "postgresql drivers it has are asyncpg, pg8000, psycopg"),
        ("mariadb+pymsql://app:s3cr3t-url-1@db/app", "mariadb drivers it has are aiomysql,"),
        ("sqlite+pysqlit:///app.db?x=s3cr3t-url-1", "sqlite drivers it has are aiosqlite, pysqlcipher, pysqlite"),
        ("oracle://app:s3cr3t-url-1@db/app", "does not support the 'oracle' dialect"),
        ("sqlite:///:memory:", "in-memory"),
    ],
)
def test_bad_url_exits_2(make_project, url, expected):
    run = invoke_cli(make_project("sync"), "upgrade", url=url)
    assert expected in assert_failed_cleanly(run, 2, "s3cr3t-url-1")


def test_missing_driver_exits_2_and_names_the_extra(make_project, tmp_path):
    run = run_cli(make_project("sync"), "upgrade", url="mysql+mysqldb://app:s3cr3t-drv-1@127.0.0.1/app",
                  env=without_modules(tmp_path / "hidden", "MySQLdb"))  # the test extra installs it
    message = assert_failed_cleanly(run, 2, "s3cr3t-drv-1")
    assert "mysql+mysqldb" in message and "alembic-deploy[mysql]" in message


def test_wrong_password_exits_2_at_once(password_db, make_project):
    wrong = f"wrong-{uuid.uuid4().hex[:8]}"
    run = invoke_cli(make_project("sync"), "upgrade", "--wait-timeout", "30", url=_with_password(password_db, wrong))
    message = assert_failed_cleanly(run, 2, wrong, password_db.password)
    assert "not retried" in message and "***" in message


def test_unknown_database_exits_2(password_db, make_project):
    url = url_text(password_db.url, database="ad_no_such_database")
    run = invoke_cli(make_project("sync"), "upgrade", "--wait-timeout", "30", url=url)
    assert "ad_no_such_database" in assert_failed_cleanly(run, 2, password_db.password)


# -- 3: database unreachable ------------------------------------------------------------------------
def test_closed_port_exits_3_after_retrying(password_db, make_project):
    run = invoke_cli(make_project("sync"), "upgrade", "--wait-timeout", "1", url=_with_port(password_db, free_port()))
    message = assert_failed_cleanly(run, 3, password_db.password)
    attempts = int(re.search(r"\((\d+) attempts", message).group(1))
    assert attempts > 1, "a refused connection is transient: it must be retried"
    assert "within 1s" in message


# -- the wait step itself -------------------------------------------------------------------------
def _wait(url: str, timeout: float, retried: list[int]) -> None:
    """Run the wait step in-process, noting each attempt it retried after in ``retried``."""
    from alembic_deploy.database import make_engine
    from alembic_deploy.steps.wait import wait_for_database

    engine, backend = make_engine(url)
    try:
        wait_for_database(engine, backend, timeout, on_retry=lambda n, _exc: retried.append(n))
    finally:
        engine.dispose()


@pytest.mark.parametrize("fault", ["password", "database"])
def test_wait_does_not_retry_what_is_wrong(password_db, fault):
    from alembic_deploy import ConfigError

    url = make_url(password_db.url)
    url = url.set(password="wrong-password") if fault == "password" else url.set(database="ad_no_such_database")
    retried: list[int] = []
    with pytest.raises(ConfigError):
        _wait(url_text(url), 30, retried)
    assert retried == []


def test_wait_retries_a_closed_port_until_the_timeout(password_db):
    from alembic_deploy import DatabaseUnreachable

    retried: list[int] = []
    with pytest.raises(DatabaseUnreachable):
        _wait(_with_port(password_db, free_port()), 2.0, retried)  # long enough for retries on a loaded machine
    assert len(retried) > 1 and retried == sorted(retried)


def test_wait_picks_up_a_server_that_starts_late(make_project):
    """The port is closed when the deploy starts; a real PostgreSQL comes up on it later."""
    server = PostgresServer()
    proc = spawn_cli(make_project("sync"), "upgrade", "--wait-timeout", "60", "--json", url=server.url())
    try:
        _read_stderr_until(proc, "Waiting for the database")
        server.init().start()
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        report = json.loads(out)
        wait = next(step for step in report["steps"] if step["name"] == "wait")
        assert int(wait["detail"].split()[0]) > 1
        assert report["db_wait_seconds"] > 0 and report["outcome"] == "applied"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        server.cleanup()


# -- 5: refused by a check ----------------------------------------------------------------------
def test_multiple_heads_with_target_head_exits_5(password_pg_db, make_project):
    """Refused from the scripts alone, before any change: one backend shows it."""
    run = invoke_cli(make_project("two_heads"), "upgrade", "head", url=password_pg_db.url)
    message = assert_failed_cleanly(run, 5, password_pg_db.password)
    assert "a3_seed" in message and "b2_audit" in message and "alembic merge" in message
    assert not password_pg_db.has_table("users")


def test_unknown_target_revision_exits_5(sqlite_db, make_project):
    run = invoke_cli(make_project("sync"), "upgrade", "no_such_rev", url=sqlite_db.url)
    assert "no_such_rev" in assert_failed_cleanly(run, 5)


def test_database_at_an_unknown_revision_exits_5(secret_db, make_project):
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", "a1_users", url=secret_db.url).returncode == 0
    with secret_db.engine().begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'f00dcafe0042'"))
    run = invoke_cli(project, "upgrade", url=secret_db.url)
    message = assert_failed_cleanly(run, 5, *_secrets(secret_db))
    assert "f00dcafe0042" in message and "older than the database" in message
    assert secret_db.versions() == ["f00dcafe0042"]
    assert [r["outcome"] for r in secret_db.journal()] == ["applied", "refused"]


# -- 6 and 9: the lock held by another process ----------------------------------------------------------
@contextmanager
def _hold_migration_lock(db: Database, database: str | None = None) -> Iterator[str]:
    """Hold the lock alembic-deploy takes for ``db`` (or, on the same server, for another
    ``database``), as another deploy would; yields what an error must name to identify this
    holder (PostgreSQL application_name, the SQLite lock file's text, the MySQL connection id)."""
    tag = f"holder-{uuid.uuid4().hex[:8]}"
    url = make_url(db.url)
    if db.backend == "sqlite":
        fd = os.open(url.database + LOCK_SUFFIX, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.write(fd, f"{tag} pid={os.getpid()}\n".encode())
            yield tag
        finally:
            os.close(fd)
        return
    # The name alembic-deploy derives (database + version table), computed by its own backend.
    name = for_dialect(url.get_backend_name()).lock_name(database or url.database, "alembic_version", None)
    connect_args = {"application_name": tag} if db.backend == "postgresql" else {}
    engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT", connect_args=connect_args,
                           future=True)
    try:
        with engine.connect() as conn:
            if db.backend == "postgresql":
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": stable_int64(name)})
                yield tag
            else:
                assert conn.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": name}).scalar() == 1
                yield f"server_connection {conn.execute(text('SELECT CONNECTION_ID()')).scalar()}"
    finally:
        engine.dispose()


def test_lock_held_by_another_process_exits_6_naming_the_holder(secret_db, make_project):
    with _hold_migration_lock(secret_db) as holder:
        run = invoke_cli(make_project("sync"), "upgrade", "--lock-timeout-wait", "1", "--json", url=secret_db.url)
    message = assert_failed_cleanly(run, 6, *_secrets(secret_db))
    assert holder in message
    assert "--lock-timeout-wait" in message
    assert not secret_db.has_table("users")
    report = json.loads(run.stdout)
    assert (report["outcome"], report["exit_code"], report["error"]["kind"]) == ("failed", 6, "lock-not-acquired")


def test_the_lock_of_another_database_on_the_server_does_not_block(password_db, make_project):
    """Two apps sharing a server never wait for each other: the lock is named after the database."""
    with _hold_migration_lock(password_db, database="another_app"):
        run = invoke_cli(make_project("sync"), "upgrade", "--lock-timeout-wait", "0", url=password_db.url)
    assert run.returncode == 0, run.output


def test_sigint_while_waiting_for_the_lock_exits_9(secret_db, make_project):
    with _hold_migration_lock(secret_db):
        proc = spawn_cli(make_project("sync"), "upgrade", "--lock-timeout-wait", "120", url=secret_db.url)
        run = signal_at(proc, "Waiting for the migration lock", signal.SIGINT)
    message = assert_failed_cleanly(run, 9, *_secrets(secret_db))
    assert "SIGINT" in message
    assert not secret_db.has_table("users")
    # The lock was released with the process: the next deploy goes straight through.
    again = run_cli(make_project("sync", "again"), "upgrade", "--lock-timeout-wait", "0", url=secret_db.url)
    assert again.returncode == 0, again.output


# -- 7: a migration failed ------------------------------------------------------------------------------
def test_failing_revision_exits_7_names_it_and_is_journaled(secret_db, make_project):
    run = invoke_cli(make_project("failing"), "upgrade", "--env", "production", url=secret_db.url)
    message = assert_failed_cleanly(run, 7, *_secrets(secret_db))
    assert "a4_broken" in message and "table_that_does_not_exist" in message
    assert "a4_broken" not in (secret_db.versions() if secret_db.has_table("alembic_version") else [])
    [row] = secret_db.journal()
    assert row["outcome"] == "failed" and row["finished_at"] is not None and row["environment"] == "production"
    assert "a4_broken" in row["error"] and "table_that_does_not_exist" in row["error"]
    assert all(secret not in json.dumps(row, default=str) for secret in _secrets(secret_db))
