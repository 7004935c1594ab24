"""A deploy with less than the rights to write the journal: a PostgreSQL role with SELECT only or
without CREATE on its schema, a MariaDB user with SELECT only, a SQLite database in a folder this
process cannot write. Each is compared with plain alembic in the same state: at head plain alembic
exits 0, and so must alembic-deploy (a no-op, with a warning that it could not journal); with a
revision pending, plain alembic fails on the missing privilege, and alembic-deploy refuses before
applying anything (exit 2) naming it.

The tests run as root, whom file permissions do not stop: the SQLite folder is made read-only with
a read-only bind mount in a mount namespace of the subprocess's own (``unshare -m``), or made
immutable (``chattr +i``: the database file stays writable, the folder cannot get new files).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from helpers import Database, Run, assert_failed_cleanly, invoke_cli, url_text
from lockscene import write_revision

_PLAIN_ALEMBIC = """
import sys
from alembic import command
from alembic.config import Config
config = Config("alembic.ini")
config.set_main_option("sqlalchemy.url", sys.argv[1].replace("%", "%%"))
command.upgrade(config, "head")
"""


def _plain_alembic(project: Path, url: str, wrap: list[str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*(wrap or []), sys.executable, "-c", _PLAIN_ALEMBIC, url], cwd=project,
                          capture_output=True, text=True, timeout=120)


def _at_head(db: Database, make_project) -> Path:
    project = make_project("sync")
    first = invoke_cli(project, "upgrade", url=db.url)
    assert first.returncode == 0, first.output
    return project


def _add_pending(project: Path) -> None:
    write_revision(project, "a4_notes", "a3_seed", "    op.create_table('notes', sa.Column('id', sa.Integer))")


def _assert_noop_without_journal(run: Run, journal_rows: int, db: Database) -> None:
    assert run.returncode == 0, run.output
    assert "Nothing to do: database already at a3_seed" in run.stderr, run.stderr
    warning = next(line for line in run.stderr.splitlines() if line.startswith("warning:"))
    assert "refused alembic-deploy's journal table 'alembic_deploy_history'" in warning, warning
    assert "Traceback" not in run.output and "CREATE TABLE" not in run.output
    rows = len(db.journal()) if db.has_table("alembic_deploy_history") else 0
    assert rows == journal_rows


def _assert_refused_before_applying(run: Run, db: Database, privilege: str) -> None:
    message = assert_failed_cleanly(run, 2)
    assert "1 revision(s) are pending (a4_notes) and nothing was applied" in message, message
    assert privilege in message, message
    assert db.versions() == ["a3_seed"] and not db.has_table("notes")


# -- PostgreSQL ----------------------------------------------------------------------------------------
def _as_admin(db: Database, *statements: str) -> None:
    """Run ``statements`` on ``db`` as the test servers' superuser (its URL's user)."""
    engine = create_engine(db.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for sql in statements:
                conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


@pytest.fixture
def pg_reader(pg_db: Database):
    """(a role that may log in to pg_db and nothing more, its URL); CREATE on public is taken from
    PUBLIC (PostgreSQL before 15 grants it)."""
    role = f"ad_ro_{uuid.uuid4().hex[:8]}"
    _as_admin(pg_db, f'CREATE ROLE "{role}" LOGIN', "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
    try:
        yield role, url_text(pg_db.url, username=role)
    finally:
        _as_admin(pg_db, f'DROP OWNED BY "{role}"', f'DROP ROLE IF EXISTS "{role}"')


@pytest.mark.parametrize("journal", ["exists", "missing"])
def test_postgresql_select_only_role_at_head_is_a_noop_like_plain_alembic(pg_db, pg_reader, make_project, journal):
    role, url = pg_reader
    project = _at_head(pg_db, make_project)
    if journal == "missing":  # the role then needs CREATE on the schema to make it
        _as_admin(pg_db, "DROP TABLE alembic_deploy_history")
    _as_admin(pg_db, f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{role}"')
    rows = len(pg_db.journal()) if journal == "exists" else 0

    assert _plain_alembic(project, url).returncode == 0
    for args in (("upgrade",), ("upgrade", "--no-fast-path")):
        _assert_noop_without_journal(invoke_cli(project, *args, url=url), rows, pg_db)


def test_postgresql_role_that_cannot_read_the_journal_at_head_is_a_noop(pg_db, pg_reader, make_project):
    role, url = pg_reader
    project = _at_head(pg_db, make_project)
    _as_admin(pg_db, f'GRANT SELECT ON alembic_version TO "{role}"')
    assert _plain_alembic(project, url).returncode == 0
    _assert_noop_without_journal(invoke_cli(project, "upgrade", url=url), 1, pg_db)
    for command in ("status", "history"):  # read-only commands show what the role may read
        shown = invoke_cli(project, command, url=url)
        assert shown.returncode == 0 and "Traceback" not in shown.output, shown.output


def test_postgresql_role_without_create_refuses_pending_work_naming_it(pg_db, pg_reader, make_project):
    role, url = pg_reader
    project = _at_head(pg_db, make_project)
    _as_admin(pg_db, "DROP TABLE alembic_deploy_history")
    _as_admin(pg_db, f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO "{role}"')
    _add_pending(project)
    plain = _plain_alembic(project, url)
    assert plain.returncode != 0 and "permission denied for schema public" in plain.stderr
    run = invoke_cli(project, "upgrade", url=url)
    _assert_refused_before_applying(run, pg_db, "permission denied for schema public")
    assert "grant the role CREATE on the schema" in run.stderr


# -- MariaDB -------------------------------------------------------------------------------------------
@pytest.fixture
def mysql_reader(mysql_db: Database):
    """The URL of a user with SELECT only on mysql_db."""
    user = f"ad_ro_{uuid.uuid4().hex[:8]}"
    database = make_url(mysql_db.url).database
    _as_admin(mysql_db, f"CREATE USER '{user}'@'%%'", f"GRANT SELECT ON `{database}`.* TO '{user}'@'%%'")
    try:
        yield url_text(mysql_db.url, username=user)
    finally:
        _as_admin(mysql_db, f"DROP USER IF EXISTS '{user}'@'%%'")


def test_mariadb_select_only_user_at_head_is_a_noop_like_plain_alembic(mysql_db, mysql_reader, make_project):
    project = _at_head(mysql_db, make_project)
    rows = len(mysql_db.journal())
    assert _plain_alembic(project, mysql_reader).returncode == 0
    for args in (("upgrade",), ("upgrade", "--no-fast-path")):
        _assert_noop_without_journal(invoke_cli(project, *args, url=mysql_reader), rows, mysql_db)


def test_mariadb_select_only_user_refuses_pending_work_naming_it(mysql_db, mysql_reader, make_project):
    project = _at_head(mysql_db, make_project)
    _add_pending(project)
    plain = _plain_alembic(project, mysql_reader)
    assert plain.returncode != 0 and "command denied" in plain.stderr
    run = invoke_cli(project, "upgrade", url=mysql_reader)
    _assert_refused_before_applying(run, mysql_db, "command denied")


# -- SQLite in a folder this process cannot write ----------------------------------------------------------
def _read_only_mount(folder: Path) -> list[str]:
    """A command prefix running its command with ``folder`` mounted read-only (its own namespace)."""
    if shutil.which("unshare") is None:
        pytest.skip("unshare (util-linux) is not installed")
    wrap = ["unshare", "-m", "sh", "-c", f'mount --bind -o ro "{folder}" "{folder}" && exec "$@"', "sh"]
    probe = subprocess.run([*wrap, "touch", str(folder / "probe")], capture_output=True, text=True)
    if "Read-only file system" not in probe.stderr:
        pytest.skip(f"no read-only bind mount here: {probe.stderr.strip() or 'the folder stayed writable'}")
    return wrap


def _deploy(project: Path, url: str, wrap: list[str], *args: str) -> Run:
    proc = subprocess.run([*wrap, sys.executable, "-m", "alembic_deploy", "upgrade", *args], cwd=project,
                          env={**_env(), "DATABASE_URL": url}, capture_output=True, text=True, timeout=120)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("ALEMBIC_DEPLOY_", "GITHUB_", "DATABASE_URL"))}


@pytest.fixture
def sqlite_in_folder(tmp_path: Path) -> Database:
    (tmp_path / "data").mkdir()
    return Database(f"sqlite:///{tmp_path / 'data' / 'app.db'}", "sqlite")


@pytest.mark.parametrize("lock_file", ["left by an earlier deploy", "never made"])
def test_sqlite_in_a_read_only_folder_at_head_is_a_noop_like_plain_alembic(sqlite_in_folder, make_project, lock_file):
    db = sqlite_in_folder
    project = _at_head(db, make_project)
    folder = Path(make_url(db.url).database).parent
    if lock_file == "never made":
        (folder / "app.db.alembic-deploy.lock").unlink()
    wrap = _read_only_mount(folder)
    assert _plain_alembic(project, db.url, wrap).returncode == 0
    for args in ((), ("--no-fast-path",)):
        _assert_noop_without_journal(_deploy(project, db.url, wrap, *args), 1, db)


def test_sqlite_in_a_read_only_folder_refuses_pending_work(sqlite_in_folder, make_project):
    db = sqlite_in_folder
    project = _at_head(db, make_project)
    _add_pending(project)
    wrap = _read_only_mount(Path(make_url(db.url).database).parent)
    plain = _plain_alembic(project, db.url, wrap)
    assert plain.returncode != 0 and "readonly database" in plain.stderr
    run = _deploy(project, db.url, wrap)
    _assert_refused_before_applying(run, db, "readonly database")
    assert "write the database file and its folder" in run.stderr


def test_sqlite_in_an_immutable_folder_at_head_is_a_noop_like_plain_alembic(sqlite_in_folder, make_project):
    """The database file stays writable; the folder gets no new file (no lock file, no rollback journal)."""
    db = sqlite_in_folder
    project = _at_head(db, make_project)
    folder = Path(make_url(db.url).database).parent
    (folder / "app.db.alembic-deploy.lock").unlink()
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(folder)]).returncode != 0:
        pytest.skip("chattr +i is not available on this file system")
    try:
        assert _plain_alembic(project, db.url).returncode == 0
        _assert_noop_without_journal(_deploy(project, db.url, []), 1, db)
        _add_pending(project)
        plain = _plain_alembic(project, db.url)
        assert plain.returncode != 0 and "unable to open database file" in plain.stderr
        _assert_refused_before_applying(_deploy(project, db.url, []), db, "unable to open database file")
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)
