"""Throwaway databases for the benchmarks: every database is uniquely named, created on demand and
dropped at the end (also when a run fails).

Server URLs default to the local test servers and can be pointed elsewhere with the same
variables the test-suite reads (``ALEMBIC_DEPLOY_TEST_PG``, ``ALEMBIC_DEPLOY_TEST_MYSQL``).
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.pool import NullPool

PG_ADMIN = os.environ.get("ALEMBIC_DEPLOY_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
MYSQL_ADMIN = os.environ.get("ALEMBIC_DEPLOY_TEST_MYSQL", "mysql+pymysql://root@127.0.0.1:3306/")
BACKENDS = ("sqlite", "postgresql", "mysql")


class Databases:
    """Creates databases of one backend; :meth:`drop_all` removes every one it created."""

    def __init__(self, backend: str, scratch: Path) -> None:
        if backend not in BACKENDS:
            raise SystemExit(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
        self.backend = backend
        self.scratch = scratch
        self.created: list[str] = []
        self._admin: Engine | None = None
        if backend != "sqlite":
            self._admin = create_engine(
                PG_ADMIN if backend == "postgresql" else MYSQL_ADMIN,
                poolclass=NullPool,
                isolation_level="AUTOCOMMIT",
            )

    def create(self) -> str:
        """A new empty database; returns its URL (sync driver)."""
        name = f"ad_bench_{uuid.uuid4().hex[:12]}"
        self.created.append(name)
        if self.backend == "sqlite":
            return f"sqlite:///{self.scratch / (name + '.db')}"
        assert self._admin is not None
        quote = '"' if self.backend == "postgresql" else "`"
        with self._admin.connect() as conn:
            conn.execute(text(f"CREATE DATABASE {quote}{name}{quote}"))
        return make_url(self._admin.url).set(database=name).render_as_string(hide_password=False)

    def drop(self, url: str) -> None:
        name = make_url(url).database or ""
        if self.backend == "sqlite":
            for suffix in ("", "-journal", "-wal", "-shm", ".alembic-deploy.lock"):
                Path(name + suffix).unlink(missing_ok=True)
            return
        assert self._admin is not None
        with self._admin.connect() as conn:
            if self.backend == "postgresql":
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            else:
                conn.execute(text(f"DROP DATABASE IF EXISTS `{name}`"))

    def drop_all(self) -> None:
        for name in self.created:
            if self.backend == "sqlite":
                self.drop(f"sqlite:///{self.scratch / (name + '.db')}")
            else:
                assert self._admin is not None
                self.drop(make_url(self._admin.url).set(database=name).render_as_string(hide_password=False))
        self.created.clear()
        if self._admin is not None:
            self._admin.dispose()


@contextmanager
def databases(backend: str, scratch: Path | None = None) -> Iterator[Databases]:
    with tempfile.TemporaryDirectory(prefix="ad-bench-db-") as tmp:
        dbs = Databases(backend, scratch or Path(tmp))
        try:
            yield dbs
        finally:
            dbs.drop_all()


def versions(url: str) -> list[str]:
    """The database's alembic_version rows ([] when the table does not exist)."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("alembic_version"):
                return []
            return sorted(r[0] for r in conn.execute(text("SELECT version_num FROM alembic_version")))
    finally:
        engine.dispose()


def journal_outcomes(url: str, table: str = "alembic_deploy_history") -> list[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table(table):
                return []
            return [r[0] for r in conn.execute(text(f"SELECT outcome FROM {table} ORDER BY id"))]
    finally:
        engine.dispose()
