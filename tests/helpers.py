"""Test helpers importable from any test module: ``from helpers import run_cli, spawn_cli``."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "mysql": "mysql+aiomysql"}


@dataclass
class Database:
    """A throwaway database: ``url`` (sync driver), ``backend`` name, and helpers."""

    url: str
    backend: str

    @property
    def async_url(self) -> str:
        return make_url(self.url).set(drivername=ASYNC_DRIVERS[self.backend]).render_as_string(hide_password=False)

    def engine(self):  # noqa: ANN201
        return create_engine(self.url, poolclass=NullPool)

    def scalar(self, sql: str, **params: object) -> object:
        with self.engine().connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: object) -> list[tuple]:
        with self.engine().connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]

    def versions(self, table: str = "alembic_version") -> list[str]:
        return sorted(r[0] for r in self.rows(f"SELECT version_num FROM {table}"))

    def journal(self, table: str = "alembic_deploy_history") -> list[dict]:
        with self.engine().connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY id"))]


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def run_cli(project: Path, *args: str, url: str | None = None, env: dict[str, str] | None = None,
            timeout: float = 120) -> Run:
    """Run ``alembic-deploy`` as a real subprocess in ``project`` (no chdir in the test process)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("ALEMBIC_DEPLOY_", "GITHUB_"))}
    full_env.pop("DATABASE_URL", None)
    if url is not None:
        full_env["DATABASE_URL"] = url
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "alembic_deploy", *args],
        cwd=project,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def spawn_cli(project: Path, *args: str, url: str | None = None, env: dict[str, str] | None = None,
              **popen: object) -> subprocess.Popen:
    """Start ``alembic-deploy`` as a background process (for races, signals and kills)."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("ALEMBIC_DEPLOY_", "GITHUB_"))}
    full_env.pop("DATABASE_URL", None)
    if url is not None:
        full_env["DATABASE_URL"] = url
    full_env.update(env or {})
    return subprocess.Popen(
        [sys.executable, "-m", "alembic_deploy", *args],
        cwd=project,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,  # type: ignore[arg-type]
    )
