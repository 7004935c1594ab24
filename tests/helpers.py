"""Test helpers importable from any test module: ``from helpers import run_cli, spawn_cli``."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.pool import NullPool

from alembic_deploy.compat import has_dialect

if TYPE_CHECKING:
    from alembic_deploy.journal import Journal

#: The PostgreSQL driver of the tests' URLs: psycopg 3, which SQLAlchemy 1.4 has no dialect for
#: (`make test-minimum`, `make test-sqla14` install psycopg2 for it).
PG_DRIVER = "postgresql+psycopg" if has_dialect("postgresql", "psycopg") else "postgresql+psycopg2"
ASYNC_DRIVERS = {"sqlite": "sqlite+aiosqlite", "postgresql": "postgresql+asyncpg", "mysql": "mysql+aiomysql"}


_PASSWORD_MARK = "ad-test-password-mark"


def url_text(url: str | URL, **changes: Any) -> str:
    """``url`` (with ``changes``, as ``URL.set`` takes them) as text, its password percent-quoted
    as SQLAlchemy 2.0.24 and later render it (earlier releases leave a ``%`` unquoted)."""
    url = make_url(url)
    url = url.set(**changes) if changes else url
    if url.password is None:
        return url.render_as_string(hide_password=False)
    text = url.set(password=_PASSWORD_MARK).render_as_string(hide_password=False)
    return text.replace(_PASSWORD_MARK, quote(str(url.password), safe=""), 1)


@dataclass
class Database:
    """A throwaway database: ``url`` (sync driver), ``backend`` name, and helpers."""

    url: str
    backend: str

    @property
    def password(self) -> str | None:
        """The URL's password, unquoted (what must never show in any output)."""
        return make_url(self.url).password

    @property
    def async_url(self) -> str:
        return url_text(self.url, drivername=ASYNC_DRIVERS[self.backend])

    def engine(self) -> Engine:
        return create_engine(self.url, poolclass=NullPool, future=True)

    def scalar(self, sql: str, **params: object) -> object:
        with self.engine().connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: object) -> list[tuple[Any, ...]]:
        with self.engine().connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params)]

    def versions(self, table: str = "alembic_version") -> list[str]:
        return sorted(r[0] for r in self.rows(f"SELECT version_num FROM {table}"))

    def has_table(self, name: str) -> bool:
        from sqlalchemy import inspect

        engine = self.engine()
        try:
            return bool(inspect(engine).has_table(name))
        finally:
            engine.dispose()

    def journal(self, table: str = "alembic_deploy_history") -> list[dict[str, Any]]:
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


def invoke_cli(project: Path, *args: str, url: str | None = None, env: dict[str, str | None] | None = None) -> Run:
    """Run ``alembic-deploy -c <project>/alembic.ini ARGS`` in this process, through click's
    CliRunner (the environment as :func:`run_cli` sets it; the working directory unchanged): for
    tests of parsing, configuration and messages. What a real process does (signals, exit on a
    closed pipe, a module missing at start-up) needs :func:`run_cli`."""
    import gc

    from click.testing import CliRunner

    from alembic_deploy.cli import main

    full_env: dict[str, str | None] = {
        k: None for k in os.environ if k.startswith(("ALEMBIC_DEPLOY_", "GITHUB_")) or k == "DATABASE_URL"
    }
    if url is not None:
        full_env["DATABASE_URL"] = url
    full_env.update(env or {})
    try:
        runner = CliRunner(mix_stderr=False)  # type: ignore[call-arg]  # click 8.1 mixes stderr into stdout
    except TypeError:  # click 8.2 keeps them apart and has no such argument
        runner = CliRunner()
    try:
        result = runner.invoke(main, ["-c", str(project / "alembic.ini"), *args], env=full_env, catch_exceptions=False)
    finally:
        gc.unfreeze()  # the CLI freezes the heap as its process would end; this process goes on
    return Run(result.exit_code, result.stdout, result.stderr)


# Imports the CLI, says it is ready (<barrier>.ready.<pid>), then waits for the barrier file:
# racers released together start within milliseconds of each other.
_BARRIER_SHIM = """
import os, sys, time
from alembic_deploy.cli import main
open(f"{sys.argv[1]}.ready.{os.getpid()}", "w").close()
while not os.path.exists(sys.argv[1]):
    time.sleep(0.002)
main(args=sys.argv[2:], prog_name="alembic-deploy")
"""


def spawn_cli(project: Path, *args: str, url: str | None = None, env: dict[str, str] | None = None,
              barrier: Path | None = None, **popen: Any) -> subprocess.Popen[str]:
    """Start ``alembic-deploy`` as a background process (for races, signals and kills).

    With ``barrier``, the process starts but runs the command only once that file exists:
    create it to release every process waiting on it at the same moment (each creates
    ``<barrier>.ready.<pid>`` once it is waiting).
    """
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("ALEMBIC_DEPLOY_", "GITHUB_"))}
    full_env.pop("DATABASE_URL", None)
    if url is not None:
        full_env["DATABASE_URL"] = url
    full_env.update(env or {})
    command = (
        [sys.executable, "-c", _BARRIER_SHIM, str(barrier)] if barrier else [sys.executable, "-m", "alembic_deploy"]
    )
    return subprocess.Popen(
        [*command, *args],
        cwd=project,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def signal_at(proc: subprocess.Popen[str], marker: str, signum: int) -> Run:
    """Send ``signum`` to ``proc`` once a line of its stderr contains ``marker``; its Run (stderr
    whole) once it exits. Kills it if it outlives the test."""
    seen = ""
    try:
        while marker not in seen:
            line = proc.stderr.readline() if proc.stderr is not None else ""
            assert line, f"exited ({proc.wait()}) before printing {marker!r}: {seen}"
            seen += line
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return Run(proc.returncode, out, seen + err)


#: Ports free_port hands out: below the kernel's ephemeral range (32768 and up on Linux), so that no
#: outgoing connection takes one between the test picking it and a server binding it.
_PORTS = range(20000, 32768)
_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback TCP port nobody listens on right now, never the same twice in one process.

    Each pytest-xdist worker draws from a band of its own, so two workers never start servers on
    one port; within the band the draw is random, so concurrent runs of the suite seldom meet."""
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
    workers = max(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")), worker + 1)
    width = len(_PORTS) // workers
    band = range(_PORTS.start + worker * width, _PORTS.start + (worker + 1) * width)
    for _ in range(100):
        port = random.choice(band)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free loopback port in {band.start}-{band.stop - 1}")


def set_ini_url(project: Path, url: str, ini: str = "alembic.ini") -> None:
    """Write ``url`` as sqlalchemy.url in the project's ini, ``%`` escaped as ``%%`` as the ini needs."""
    path = project / ini
    lines = path.read_text().splitlines(keepends=True)
    for i, line in enumerate(lines):
        if line.startswith("sqlalchemy.url"):
            lines[i] = f"sqlalchemy.url = {url.replace('%', '%%')}\n"
    path.write_text("".join(lines))


def assert_failed_cleanly(run: Run, exit_code: int, *secrets: str) -> str:
    """The run exited with ``exit_code`` and one ``error:`` paragraph on stderr, no traceback,
    and none of ``secrets`` (in plain or URL-quoted form) anywhere; returns the message."""
    assert run.returncode == exit_code, run.output
    assert "Traceback" not in run.output, run.output
    errors = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, run.stderr
    message = errors[0][len("error:"):].strip()
    assert len(message) > 40 and message.endswith("."), message
    for secret in secrets:
        for form in {secret, quote(secret, safe="")}:
            assert form not in run.output, f"secret {form!r} leaked: {run.output}"
    return message


# -- schema comparison (crash, partial and repair tests) --------------------------------------------
def schema_snapshot(url: str, exclude: tuple[str, ...] = ("alembic_deploy_history", "alembic_deploy_history_progress"),
                    ) -> dict[str, dict[str, Any]]:
    """Tables with their columns (name, type, nullable), indexes and unique constraints, as data two
    databases can be compared by (the journal table left out)."""
    from sqlalchemy import inspect

    engine = create_engine(url, poolclass=NullPool, future=True)
    try:
        insp = inspect(engine)
        return {
            t: {
                "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(t)],
                "indexes": sorted(
                    (i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(t)
                ),
                "unique": sorted((u["name"], tuple(u["column_names"])) for u in insp.get_unique_constraints(t)),
            }
            for t in sorted(insp.get_table_names())
            if t not in exclude
        }
    finally:
        engine.dispose()


def drop_all(url: str) -> None:
    """Drop every table (the journal and the version table included): back to an empty database."""
    from sqlalchemy import MetaData

    engine = create_engine(url, poolclass=NullPool, future=True)
    try:
        metadata = MetaData()
        metadata.reflect(engine)
        metadata.drop_all(engine)
    finally:
        engine.dispose()


_PLAIN_ALEMBIC = """
import sys
from alembic import command
from alembic.config import Config
config = Config("alembic.ini")
config.set_main_option("sqlalchemy.url", sys.argv[1].replace("%", "%%"))
command.upgrade(config, sys.argv[2])
"""


def plain_alembic_upgrade(project: Path, url: str, target: str = "head") -> None:
    """``alembic upgrade`` without alembic-deploy, in a subprocess (env.py reconfigures logging)."""
    subprocess.run([sys.executable, "-c", _PLAIN_ALEMBIC, url, target], cwd=project, check=True,
                   capture_output=True, timeout=120)


def journal_on_lock_session(url: str) -> tuple[Engine, Journal, int]:
    """(engine, a Journal on a lock session of the tool's own, the id of a new ``running`` row of
    this process), the journal and its volatile table created."""
    from datetime import datetime, timezone

    from alembic_deploy.database import make_engine
    from alembic_deploy.journal import Journal

    engine, backend = make_engine(url)
    journal = Journal(engine, "alembic_deploy_history", backend.lock_connection(engine), backend)
    journal.ensure()
    assert journal.connection is not None
    inserted = journal.connection.execute(journal.table.insert().values(
        started_at=datetime.now(timezone.utc), command="upgrade", outcome="running", pid=os.getpid(),
    )).inserted_primary_key
    assert inserted is not None
    return engine, journal, int(inserted[0])


def without_modules(folder: Path, *modules: str) -> dict[str, str]:
    """Environment variables for a subprocess in which importing ``modules`` fails with ImportError,
    as in an install without them (stubs in ``folder``, first on its PYTHONPATH)."""
    folder.mkdir(parents=True, exist_ok=True)
    for module in modules:
        (folder / f"{module}.py").write_text(
            f"raise ModuleNotFoundError(\"No module named '{module}'\", name={module!r})\n")
    return {"PYTHONPATH": os.pathsep.join([str(folder), *sys.path])}
