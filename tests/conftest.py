"""Shared fixtures: a uniquely named database per test on real servers, real Alembic projects
built from ``tests/projects/<scenario>`` (:mod:`scenarios`), and helpers to run the CLI in-process and as a real
subprocess.

Server URLs come from ``ALEMBIC_DEPLOY_TEST_PG`` / ``ALEMBIC_DEPLOY_TEST_MYSQL`` (defaults: the
local servers). An unreachable server fails the tests loudly; set
``ALEMBIC_DEPLOY_TEST_SKIP_SERVERS=1`` to skip server tests explicitly instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

from aws_server import MotoServer, moto_server
from helpers import Database, url_text
from scenarios import copy_project
from servers import BACKENDS, MYSQL_ADMIN, PG_ADMIN, PostgresServer, databases

SKIP_SERVERS = os.environ.get("ALEMBIC_DEPLOY_TEST_SKIP_SERVERS") == "1"


def _admin(url: str) -> Engine:
    engine = create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # noqa: BLE001
        if SKIP_SERVERS:
            pytest.skip(f"server at {make_url(url).host} unreachable and ALEMBIC_DEPLOY_TEST_SKIP_SERVERS=1")
        pytest.fail(
            f"Test server unreachable ({make_url(url).render_as_string(hide_password=True)}): {exc}. "
            "Start it, point ALEMBIC_DEPLOY_TEST_PG/MYSQL at one, or set "
            "ALEMBIC_DEPLOY_TEST_SKIP_SERVERS=1 to skip server tests.",
            pytrace=False,
        )
    return engine


def _unique_name() -> str:
    return f"ad_test_{uuid.uuid4().hex[:12]}"


def _database_on(backend: str, admin_url: str) -> Iterator[Database]:
    """A database of its own on the server at ``admin_url``, dropped after the test."""
    _admin(admin_url).dispose()  # fails loudly (or skips, as configured) when the server is down
    with databases(backend, admin_url=admin_url) as dbs:
        yield Database(dbs.create(), backend)


@pytest.fixture
def pg_db() -> Iterator[Database]:
    yield from _database_on("postgresql", PG_ADMIN)


@pytest.fixture
def mysql_db() -> Iterator[Database]:
    yield from _database_on("mysql", MYSQL_ADMIN)


@pytest.fixture(scope="session")
def password_pg() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL that checks passwords (scram-sha-256); the shared one trusts all.
    The password holds a ``%`` so URLs must quote it (and ini files escape it as ``%%``)."""
    if SKIP_SERVERS:
        pytest.skip("ALEMBIC_DEPLOY_TEST_SKIP_SERVERS=1")
    server = PostgresServer(password=f"s3cr3t%pg-{uuid.uuid4().hex[:8]}").init().start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def password_pg_db(password_pg: PostgresServer) -> Iterator[Database]:
    """A database of its own on :func:`password_pg`; its ``url`` carries the password."""
    yield from _database_on("postgresql", password_pg.url())


@pytest.fixture
def password_mysql_db(mysql_db: Database) -> Iterator[Database]:
    """:func:`mysql_db` reached through a user of its own whose password holds a ``%``."""
    admin = _admin(MYSQL_ADMIN)
    user, password = _unique_name(), f"s3cr3t%my-{uuid.uuid4().hex[:8]}"
    url = make_url(mysql_db.url)
    with admin.connect() as conn:
        # pymysql formats the statement with %, so a literal % is written %%.
        conn.exec_driver_sql(f"CREATE USER '{user}'@'%%' IDENTIFIED BY '{password.replace('%', '%%')}'")
        conn.exec_driver_sql(f"GRANT ALL ON `{url.database}`.* TO '{user}'@'%%'")
    try:
        yield Database(url_text(url, username=user, password=password), "mysql")
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'%%'")
        admin.dispose()


@pytest.fixture(params=("postgresql", "mysql"))
def password_db(request: pytest.FixtureRequest) -> Database:
    """A database on each server backend whose URL carries a password the server checks."""
    database: Database = request.getfixturevalue(f"password_{'pg' if request.param == 'postgresql' else 'mysql'}_db")
    return database


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'app.db'}", "sqlite")


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest) -> Database:
    """Every test using this runs once per backend."""
    database: Database = request.getfixturevalue(
        {"sqlite": "sqlite_db", "postgresql": "pg_db", "mysql": "mysql_db"}[request.param])
    return database


@pytest.fixture(scope="session")
def _moto() -> Iterator[MotoServer]:
    yield from moto_server()


@pytest.fixture
def aws(_moto: MotoServer) -> MotoServer:
    """AWS for one test: a local moto server (:mod:`aws_server`), emptied before the test."""
    _moto.reset()
    return _moto


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """``make_project("sync")`` builds the tests/projects scenario ``sync`` in tmp_path
    (:func:`scenarios.copy_project`) and returns its folder."""

    def make(scenario: str, dest: str | None = None) -> Path:
        return copy_project(scenario, tmp_path / (dest or scenario))

    return make


