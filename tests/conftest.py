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
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from helpers import PG_DRIVER, Database, url_text

PG_ADMIN = os.environ.get("ALEMBIC_DEPLOY_TEST_PG", f"{PG_DRIVER}://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN = os.environ.get("ALEMBIC_DEPLOY_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/")
SKIP_SERVERS = os.environ.get("ALEMBIC_DEPLOY_TEST_SKIP_SERVERS") == "1"
BACKENDS = ("sqlite", "postgresql", "mysql")

from scenarios import copy_project  # noqa: E402
from servers import PostgresServer  # noqa: E402


def _admin(url: str):  # noqa: ANN202
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


@pytest.fixture
def pg_db() -> Iterator[Database]:
    admin = _admin(PG_ADMIN)
    name = _unique_name()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield Database(url_text(PG_ADMIN, database=name), "postgresql")
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def mysql_db() -> Iterator[Database]:
    admin = _admin(MYSQL_ADMIN)
    name = _unique_name()
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}`")
    try:
        yield Database(url_text(MYSQL_ADMIN, database=name), "mysql")
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
        admin.dispose()


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
    admin = _admin(password_pg.url())
    name = _unique_name()
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield Database(url_text(password_pg.url(), database=name), "postgresql")
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


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
    return request.getfixturevalue(f"password_{'pg' if request.param == 'postgresql' else 'mysql'}_db")


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / 'app.db'}", "sqlite")


@pytest.fixture(params=BACKENDS)
def db(request: pytest.FixtureRequest) -> Database:
    """Every test using this runs once per backend."""
    return request.getfixturevalue({"sqlite": "sqlite_db", "postgresql": "pg_db", "mysql": "mysql_db"}[request.param])


@pytest.fixture
def make_project(tmp_path: Path):  # noqa: ANN201
    """``make_project("sync")`` builds the tests/projects scenario ``sync`` in tmp_path
    (:func:`scenarios.copy_project`) and returns its folder."""

    def make(scenario: str, dest: str | None = None) -> Path:
        return copy_project(scenario, tmp_path / (dest or scenario))

    return make


