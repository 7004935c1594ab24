"""A SQLAlchemy or Alembic older than alembic-deploy supports is refused at once, with exit 2 naming
the release, before anything connects: not left to fail halfway with an AttributeError (exit 1).

The old releases are real ones, fetched by pip from the configured index and put first on the
CLI's PYTHONPATH: SQLAlchemy 1.3.24 unpacked from its CPython 3.9 wheel (its C extensions do not
load here, so it runs as pure Python, as SQLAlchemy 1.3 does without them) and Alembic 1.12.1's
wheel imported as a zip (so its version comes from the package metadata: the source cannot be read
as a file there).
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from alembic_deploy.compat import MINIMUM, has_dialect, installed_version, release
from helpers import ASYNC_DRIVERS, Database, assert_failed_cleanly, free_port, run_cli, url_text


def _download(requirement: str, folder: Path, *pip_args: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(folder), *pip_args,
                    requirement], check=True, capture_output=True, timeout=300)
    (found,) = folder.iterdir()
    return found


@pytest.fixture(scope="session")
def old_sqlalchemy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding SQLAlchemy 1.3.24's package."""
    root = tmp_path_factory.mktemp("sqlalchemy13")
    wheel = _download("sqlalchemy==1.3.24", root / "wheel", "--only-binary", ":all:", "--python-version", "3.9",
                      "--platform", "manylinux2014_x86_64")
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(root / "lib")
    return root / "lib"


@pytest.fixture(scope="session")
def old_alembic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Alembic 1.12.1's wheel (importable as it is: a zip of pure Python)."""
    return _download("alembic==1.12.1", tmp_path_factory.mktemp("alembic112"), "--only-binary", ":all:")


def _first_on_path(entry: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(entry), *filter(None, [os.environ.get("PYTHONPATH")])])}


def _unreachable_pg() -> str:
    # Nothing listens there: a tool that tried to connect before refusing would exit 3, not 2.
    return f"postgresql+psycopg2://app@127.0.0.1:{free_port()}/app"


@pytest.mark.parametrize("command", [("upgrade",), ("upgrade", "--no-fast-path"), ("status",), ("history",)])
def test_an_older_sqlalchemy_is_refused_at_once_naming_its_release(
    old_sqlalchemy: Path, make_project, command: tuple[str, ...]
) -> None:
    project = make_project("sync")
    run = run_cli(project, *command, url=_unreachable_pg(), env=_first_on_path(old_sqlalchemy))
    message = assert_failed_cleanly(run, 2)
    assert "SQLAlchemy 1.3.24 is installed" in message and "SQLAlchemy 1.4.29 or later" in message


def test_an_older_alembic_is_refused_at_once_naming_its_release(old_alembic: Path, make_project) -> None:
    project = make_project("sync")
    run = run_cli(project, "upgrade", url=_unreachable_pg(), env=_first_on_path(old_alembic))
    message = assert_failed_cleanly(run, 2)
    assert "alembic 1.12.1 is installed" in message and "alembic 1.13.0 or later" in message


def test_the_installed_releases_are_read_as_their_packages_report_them() -> None:
    import alembic
    import sqlalchemy

    assert installed_version("sqlalchemy") == sqlalchemy.__version__
    assert installed_version("alembic") == alembic.__version__
    assert installed_version("no_such_package_here") is None
    for package, (minimum, _dist) in MINIMUM.items():
        assert release(installed_version(package)) >= minimum


def test_the_supported_releases_run_a_migration(sqlite_db: Database, make_project) -> None:
    """The releases this suite runs on (the newest in `make test`, SQLAlchemy 1.4 in `make
    test-sqla14`, the oldest in `make test-minimum`) migrate: the check refuses nothing it supports."""
    project = make_project("sync")
    run = run_cli(project, "upgrade", "--no-fast-path", url=sqlite_db.url)
    assert run.returncode == 0, run.output
    assert sqlite_db.versions() == ["a3_seed"]


@pytest.mark.parametrize(
    ("scenario", "driver"), [("sync", "postgresql+psycopg"), ("async", "postgresql+psycopg_async")],
)
def test_the_fast_path_answers_only_with_a_dialect_the_installed_sqlalchemy_has(
    pg_db: Database, make_project, scenario: str, driver: str
) -> None:
    """SQLAlchemy 1.4 has no dialect for psycopg 3, which the fast path can still reach the database
    with: env.py cannot connect through such a URL, and the full path refuses it, so the fast path
    must not answer "Nothing to do" either. With SQLAlchemy 2, both paths take it."""
    project = make_project(scenario)
    first = url_text(pg_db.url, drivername=ASYNC_DRIVERS["postgresql"]) if scenario == "async" else pg_db.url
    assert run_cli(project, "upgrade", url=first).returncode == 0  # and journaled: the fast path may answer
    psycopg3 = url_text(pg_db.url, drivername=driver)
    fast = run_cli(project, "upgrade", url=psycopg3)
    full = run_cli(project, "upgrade", "--no-fast-path", url=psycopg3)
    if has_dialect("postgresql", "psycopg"):
        assert (fast.returncode, full.returncode) == (0, 0), fast.output + full.output
    else:
        for run in (fast, full):
            message = assert_failed_cleanly(run, 2)
            assert f"has no dialect {driver!r}" in message and "postgresql+psycopg2://" in message
    assert pg_db.versions() == ["a3_seed"]


@pytest.mark.parametrize("future", [False, True], ids=["default-engine", "future-engine"])
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_guard_reads_through_the_applications_own_engine_in_either_style(
    request: pytest.FixtureRequest, make_project, backend: str, future: bool
) -> None:
    """An application pinned to SQLAlchemy 1.4 hands the guard a "legacy" engine (``create_engine``'s
    default there), whose connections have no commit/rollback; a database without a version table
    (a failed SELECT, a PostgreSQL transaction to end) and one at head both answer."""
    from sqlalchemy import create_engine

    from alembic_deploy import guard

    db: Database = request.getfixturevalue("sqlite_db" if backend == "sqlite" else "pg_db")
    project = make_project("sync")
    engine = create_engine(db.url, future=True) if future else create_engine(db.url)
    try:
        guard.clear_cache()
        assert guard.check(engine, str(project / "migrations")).database_revisions == ()
        assert run_cli(project, "upgrade", url=db.url).returncode == 0
        assert guard.check(engine, str(project / "migrations")).verdict == "ok"
    finally:
        engine.dispose()
        guard.clear_cache()
