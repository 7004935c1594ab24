"""The fast no-op path: taken when the no-op is provable, declined (full pipeline) whenever any part
of the proof is missing, and never wrong, also with a stale revision-graph cache.

Each decline scenario is built so that the reason under test is the *only* reason to decline: the
database is at the heads and the journal exists, so a fast path that ignored that reason would
answer "noop" where the full path does something else.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import alembic
import pytest
from sqlalchemy.engine import make_url

from alembic_deploy.fastpath import env_py_is_plain, revision_of
from helpers import PG_DRIVER, Database, invoke_cli, run_cli
from scenarios import PROJECTS

ALEMBIC_TEMPLATES = Path(alembic.__file__).parent / "templates"
PLAIN_ENGINE = """connectable = engine_from_config(
        config.get_section(config.config_ini_section, {}),
        prefix="sqlalchemy.",
        poolclass=pool.NullPool,
    )"""


@pytest.fixture
def cache_env(tmp_path: Path) -> dict[str, str]:
    """Keep the revision-graph cache of these runs inside the test's folder."""
    return {"XDG_CACHE_HOME": str(tmp_path / "xdg-cache")}


def upgrade_json(project: Path, url: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
    """``upgrade --json`` in this process (what the fast path answers, not what its process imports:
    the start-up is tests/test_smoke.py's and the benchmarks')."""
    run = invoke_cli(project, "upgrade", "--json", *args, url=url, env=env)
    assert "Traceback" not in run.output, run.output
    assert run.stdout.strip(), run.output
    return run.returncode, json.loads(run.stdout)


def at_head_with_journal(project: Path, db: Database, env: dict[str, str], url: str | None = None) -> None:
    """Migrate with the full path (creates the journal too); the database is then at a3_seed."""
    code, report = upgrade_json(project, url or db.url, env=env)
    assert code == 0 and report["outcome"] == "applied" and report["fast_path"] is False, report
    assert db.versions() == ["a3_seed"]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def add_revision(project: Path, name: str, identity: str) -> Path:
    """A revision file creating table ``extra``, whose identity lines are ``identity``."""
    path = project / "migrations" / "versions" / f"{name}.py"
    header = "import sqlalchemy as sa\nfrom alembic import op\n\n" + textwrap.dedent(identity)
    path.write_text(header + textwrap.dedent("""

        def upgrade() -> None:
            op.create_table("extra", sa.Column("id", sa.Integer, primary_key=True))


        def downgrade() -> None:
            op.drop_table("extra")
    """))
    return path


def outcomes(db: Database) -> list[str]:
    return [row["outcome"] for row in db.journal()]


# -- taken ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("template", ["sync", "async"])
def test_fast_path_answers_noop_at_head_and_journals_it(db, make_project, template, cache_env):
    project = make_project(template)
    url = db.async_url if template == "async" else db.url
    at_head_with_journal(project, db, cache_env, url)

    code, report = upgrade_json(project, url, env=cache_env)
    assert code == 0
    assert report["fast_path"] is True and report["outcome"] == "noop", report
    assert report["from_revisions"] == report["to_revisions"] == ["a3_seed"]
    assert report["backend"] in (db.backend, "mariadb")

    text = run_cli(project, "upgrade", url=url, env=cache_env)  # and in a process of its own
    assert text.returncode == 0 and "Nothing to do" in text.stderr, text.output

    assert outcomes(db) == ["applied", "noop", "noop"]
    row = db.journal()[-1]
    assert (row["from_revisions"], row["to_revisions"], row["command"]) == ("a3_seed", "a3_seed", "upgrade")
    assert row["pid"] and row["host"] and row["finished_at"] is not None
    # The rows the fast path writes without SQLAlchemy read back through it like any other.
    history = invoke_cli(project, "history", "--json", url=url, env=cache_env)
    assert history.returncode == 0, history.output
    assert [r["outcome"] for r in json.loads(history.stdout)["deploys"]] == ["noop", "noop", "applied"]


def test_a_fast_path_noop_loads_neither_sqlalchemy_nor_alembic(sqlite_db, make_project, cache_env):
    """Its reason to be: a process that answers "nothing to do" never imports SQLAlchemy or Alembic."""
    project = make_project("sync")
    at_head_with_journal(project, sqlite_db, cache_env)
    probe = ("import sys\nfrom alembic_deploy.cli import main\ntry:\n    main(args=sys.argv[1:])\nfinally:\n"
             "    print(sorted(m for m in ('sqlalchemy', 'alembic') if m in sys.modules), file=sys.stderr)\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALEMBIC_DEPLOY_", "GITHUB_"))}
    env.update(cache_env, DATABASE_URL=sqlite_db.url)
    proc = subprocess.run([sys.executable, "-c", probe, "upgrade", "--json"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and json.loads(proc.stdout)["fast_path"] is True, proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr


def test_fast_path_serves_every_head_when_the_target_is_heads(sqlite_db, make_project, cache_env):
    project = make_project("two_heads")
    code, report = upgrade_json(project, sqlite_db.url, "heads", env=cache_env)
    assert code == 0 and report["outcome"] == "applied"
    code, report = upgrade_json(project, sqlite_db.url, "heads", env=cache_env)
    assert code == 0 and report["fast_path"] is True and report["outcome"] == "noop"
    assert report["to_revisions"] == ["a3_seed", "b2_audit"]


# -- declined: the database -------------------------------------------------------------------------
def test_declines_when_the_database_is_behind(db, make_project, cache_env):
    project = make_project("sync")
    code, report = upgrade_json(project, db.url, "a1_users", env=cache_env)
    assert code == 0 and db.versions() == ["a1_users"]
    code, report = upgrade_json(project, db.url, env=cache_env)
    assert code == 0 and report["fast_path"] is False and report["outcome"] == "applied", report
    assert [r["revision"] for r in report["applied"]] == ["a2_users_email_index", "a3_seed"]
    assert db.versions() == ["a3_seed"]


def test_declines_when_the_journal_table_does_not_exist(db, make_project, cache_env):
    project = make_project("sync")
    at_head_with_journal(project, db, cache_env)
    with db.engine().begin() as conn:
        conn.exec_driver_sql("DROP TABLE alembic_deploy_history")
    code, report = upgrade_json(project, db.url, env=cache_env)
    assert code == 0 and report["fast_path"] is False and report["outcome"] == "noop", report
    assert outcomes(db) == ["noop"]


def test_declines_when_the_version_table_does_not_exist(db, make_project, cache_env):
    project = make_project("sync")
    at_head_with_journal(project, db, cache_env)
    with db.engine().begin() as conn:
        conn.exec_driver_sql("DROP TABLE alembic_version")
        conn.exec_driver_sql("DROP TABLE users")
    code, report = upgrade_json(project, db.url, env=cache_env)
    assert code == 0 and report["fast_path"] is False and report["outcome"] == "applied", report
    assert len(report["applied"]) == 3 and db.versions() == ["a3_seed"]


@pytest.mark.skipif(PG_DRIVER != "postgresql+psycopg", reason="SQLAlchemy 1.4 has no psycopg 3 dialect")
def test_a_libpq_that_does_not_load_on_its_own_leaves_the_fast_path_to_psycopg(pg_db, tmp_path, monkeypatch):
    """psycopg-binary 3.1.4's libpq finds its libssl only through psycopg's extension module, so
    loading it alone fails ("cannot open shared object file"): the fast path then connects through
    psycopg, on the same database, instead of declining."""
    from alembic_deploy.fastpath import libpq
    from alembic_deploy.fastpath.direct import DirectConnection

    unloadable = tmp_path / "libpq-0123abcd.so.5.15"
    unloadable.write_bytes(b"\x7fELF, but not a shared object")
    monkeypatch.setattr(libpq, "_lib", None)
    monkeypatch.setattr(libpq, "_bundled_libpq", lambda: unloadable)
    assert libpq.connect("postgresql://postgres@127.0.0.1:5432/postgres") is None
    direct = DirectConnection.open(pg_db.url)
    assert direct is not None and type(direct.conn).__module__.startswith("psycopg")
    try:
        assert direct.query_column("SELECT current_database()") == [make_url(pg_db.url).database]
    finally:
        direct.close()


def _read_through(url: str, libpq: bool = True) -> str:
    """The module of the session the fast path reads PostgreSQL with, having checked it reads."""
    from alembic_deploy.fastpath.direct import DirectConnection

    direct = DirectConnection.open(url, libpq=libpq)
    assert direct is not None
    try:
        assert direct.query_column("SELECT current_database()") == [make_url(url).database]
        return type(direct.conn).__module__
    finally:
        direct.close()


@pytest.mark.skipif(PG_DRIVER != "postgresql+psycopg", reason="SQLAlchemy 1.4 has no psycopg 3 dialect")
def test_a_library_that_is_not_the_libpq_expected_leaves_the_fast_path_to_psycopg(pg_db, monkeypatch):
    """A library that loads but lacks a function the fast path calls (here libssl, shipped beside
    psycopg's libpq): psycopg reads the database instead, and the no-op is still proven."""
    from alembic_deploy.fastpath import libpq

    bundled = libpq._bundled_libpq()
    if bundled is None:
        pytest.skip("no psycopg[binary] libpq here")
    [other] = bundled.parent.glob("libssl*")
    monkeypatch.setattr(libpq, "_lib", None)
    monkeypatch.setattr(libpq, "_bundled_libpq", lambda: other)
    assert libpq.connect("postgresql://postgres@127.0.0.1:5432/postgres") is None
    assert _read_through(pg_db.url).startswith("psycopg")


@pytest.mark.skipif(PG_DRIVER != "postgresql+psycopg", reason="SQLAlchemy 1.4 has no psycopg 3 dialect")
def test_the_libpq_reader_can_be_switched_off(pg_db, make_project, cache_env):
    assert _read_through(pg_db.url) == "alembic_deploy.fastpath.libpq"
    assert _read_through(pg_db.url, libpq=False).startswith("psycopg")
    project = make_project("sync")
    off = {**cache_env, "ALEMBIC_DEPLOY_FAST_PATH_LIBPQ": "0"}
    code, report = upgrade_json(project, pg_db.url, env=off)
    assert code == 0 and report["outcome"] == "applied", report
    code, report = upgrade_json(project, pg_db.url, env=off)
    assert code == 0 and report["outcome"] == "noop" and report["fast_path"] is True, report


def test_declines_for_a_driver_it_does_not_know(sqlite_db, make_project, cache_env):
    project = make_project("sync")
    at_head_with_journal(project, sqlite_db, cache_env)
    # A driver SQLAlchemy knows and the fast path does not (sqlcipher3 is not installed).
    url = sqlite_db.url.replace("sqlite://", "sqlite+pysqlcipher://", 1)
    run = invoke_cli(project, "upgrade", "--json", url=url, env=cache_env)
    assert run.returncode == 2, run.output
    assert "Traceback" not in run.output
    assert json.loads(run.stdout)["fast_path"] is False
    assert "driver" in run.stderr
    assert outcomes(sqlite_db) == ["applied"]


# -- declined: env.py -------------------------------------------------------------------------------
def test_declines_when_env_py_uses_its_own_version_table(db, make_project, cache_env):
    project = make_project("sync")
    at_head_with_journal(project, db, cache_env)  # alembic_version says a3_seed...
    with db.engine().begin() as conn:
        conn.exec_driver_sql("DROP TABLE users")
    edit(project / "migrations" / "env.py", "connection=connection, target_metadata=target_metadata",
         'connection=connection, target_metadata=target_metadata, version_table="app_versions"')
    code, report = upgrade_json(project, db.url, env=cache_env)  # ...but env.py migrates app_versions
    assert code == 0 and report["fast_path"] is False and report["outcome"] == "applied", report
    assert len(report["applied"]) == 3
    assert db.versions("app_versions") == ["a3_seed"]


@pytest.mark.parametrize(
    "engine",
    [
        'create_engine(os.environ["APP_DB_URL"], poolclass=pool.NullPool)',
        'create_engine({other_url!r}, poolclass=pool.NullPool)',
    ],
    ids=["another-env-var", "hard-coded-url"],
)
def test_declines_when_env_py_migrates_another_database(sqlite_db, make_project, tmp_path, cache_env, engine):
    project = make_project("sync")
    at_head_with_journal(project, sqlite_db, cache_env)
    other = Database(f"sqlite:///{tmp_path / 'other.db'}", "sqlite")
    env_py = project / "migrations" / "env.py"
    edit(env_py, PLAIN_ENGINE, "connectable = " + engine.format(other_url=other.url))
    edit(env_py, "from sqlalchemy import pool", "import os\nfrom sqlalchemy import create_engine, pool")
    code, report = upgrade_json(project, sqlite_db.url, env={**cache_env, "APP_DB_URL": other.url})
    assert code == 0 and report["fast_path"] is False and report["outcome"] == "applied", report
    assert other.versions() == ["a3_seed"]


def test_declines_when_env_py_reads_x_arguments(sqlite_db, make_project, tmp_path, cache_env):
    project = make_project("sync")
    at_head_with_journal(project, sqlite_db, cache_env)
    env_py = project / "migrations" / "env.py"
    edit(env_py, PLAIN_ENGINE, 'x_url = context.get_x_argument(as_dictionary=True).get("url")\n    '
         "connectable = create_engine(x_url, poolclass=pool.NullPool) if x_url else " + PLAIN_ENGINE.split(" = ", 1)[1])
    edit(env_py, "from sqlalchemy import pool", "from sqlalchemy import create_engine, pool")
    # Without -x, env.py migrates the main database: declined all the same, and a no-op.
    code, report = upgrade_json(project, sqlite_db.url, env=cache_env)
    assert code == 0 and report["fast_path"] is False and report["outcome"] == "noop", report
    other = Database(f"sqlite:///{tmp_path / 'other.db'}", "sqlite")
    code, report = upgrade_json(project, sqlite_db.url, "-x", f"url={other.url}", env=cache_env)
    assert code == 0 and report["fast_path"] is False and report["outcome"] == "applied", report
    assert other.versions() == ["a3_seed"]


# -- declined: the revision graph -------------------------------------------------------------------
def test_declines_when_a_revision_computes_its_id(sqlite_db, make_project, cache_env):
    project = make_project("sync")
    at_head_with_journal(project, sqlite_db, cache_env)
    add_revision(project, "a4_extra", """
        revision = "a4_" + "extra"
        down_revision = "a3_seed"
    """)
    code, report = upgrade_json(project, sqlite_db.url, env=cache_env)
    assert code == 0 and report["fast_path"] is False and report["outcome"] == "applied", report
    assert sqlite_db.versions() == ["a4_extra"]


def test_answers_when_depends_on_names_an_ancestor(sqlite_db, make_project, cache_env):
    """depends_on is read (tests/test_fastpath_depends_on.py: the rule for the heads it merges)."""
    project = make_project("sync")
    at_head_with_journal(project, sqlite_db, cache_env)
    add_revision(project, "a4_depends", """
        revision = "a4_depends"
        down_revision = "a3_seed"
        depends_on = "a1_users"
    """)
    code, report = upgrade_json(project, sqlite_db.url, env=cache_env)
    assert code == 0 and report["outcome"] == "applied" and sqlite_db.versions() == ["a4_depends"]
    code, report = upgrade_json(project, sqlite_db.url, env=cache_env)
    assert code == 0 and report["fast_path"] is True and report["outcome"] == "noop", report
    code, report = upgrade_json(project, sqlite_db.url, "--no-fast-path", env=cache_env)
    assert code == 0 and report["outcome"] == "noop" and sqlite_db.versions() == ["a4_depends"], report


def test_declines_two_heads_when_the_target_is_head(sqlite_db, make_project, cache_env):
    project = make_project("two_heads")
    code, _ = upgrade_json(project, sqlite_db.url, "heads", env=cache_env)
    assert code == 0
    code, report = upgrade_json(project, sqlite_db.url, env=cache_env)
    assert code == 5 and report["fast_path"] is False, report
    assert "a3_seed" in report["error"]["message"] and "b2_audit" in report["error"]["message"]


def test_a_stale_cache_never_answers(sqlite_db, make_project, tmp_path, cache_env):
    """A revision file rewritten with the same size and mtime (what an mtime/size-keyed cache
    cannot see) changes the answer: the database is now at a revision the scripts do not have."""
    project = make_project("sync")
    path = add_revision(project, "a4_extra", """
        revision = "a4_extra"
        down_revision = "a3_seed"
    """)
    upgrade_json(project, sqlite_db.url, env=cache_env)
    code, report = upgrade_json(project, sqlite_db.url, env=cache_env)
    assert code == 0 and report["fast_path"] is True  # the cache is written and used
    caches = [*(tmp_path / "xdg-cache").rglob("*.json"), *project.rglob("alembic-deploy-*.json")]
    assert caches, "no revision-graph cache was written"

    stat = path.stat()
    edit(path, '"a4_extra"', '"a4_extrb"')
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    # Python's own bytecode cache is keyed the same way: drop it, or Alembic loads the old file.
    shutil.rmtree(path.parent / "__pycache__", ignore_errors=True)

    code, report = upgrade_json(project, sqlite_db.url, env=cache_env)
    assert code == 5 and report["fast_path"] is False, report
    assert "a4_extra" in report["error"]["message"]


def test_a_versions_folder_without_cache_access_still_takes_the_fast_path(sqlite_db, make_project, tmp_path):
    project = make_project("sync")
    unwritable = tmp_path / "not-a-folder"
    unwritable.write_text("a file where the cache folder would go")
    env = {"XDG_CACHE_HOME": str(unwritable), "PYTHONDONTWRITEBYTECODE": "1"}
    upgrade_json(project, sqlite_db.url, env=env)
    code, report = upgrade_json(project, sqlite_db.url, env=env)
    assert code == 0 and report["fast_path"] is True


# -- the proof, file by file -------------------------------------------------------------------------
RENDERED = '''"""add things

Revision ID: 1a2b3c4d5e6f
Revises: 0f0e0d0c0b0a
Create Date: 2024-01-01 00:00:00

"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '1a2b3c4d5e6f'
down_revision: Union[str, Sequence[str], None] = {down}
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None
alembic_deploy = {{"expand_only": True}}
table = sa.table("things", sa.column("id"))


def upgrade() -> None:
    """Upgrade schema."""
    global revision
    op.add_column("things", sa.Column("note", sa.String(20)))


def downgrade() -> None:
    op.drop_column("things", "note")
'''


@pytest.mark.parametrize(
    ("down", "downs"),
    [("'0f0e0d0c0b0a'", ("0f0e0d0c0b0a",)), ("None", ()), ("('aa', 'bb')", ("aa", "bb"))],
)
def test_a_rendered_revision_file_is_read_statically(down, downs):
    assert revision_of(RENDERED.format(down=down).encode()) == ("1a2b3c4d5e6f", downs, (), ())


@pytest.mark.parametrize(("labels", "read"), [("'main'", ("main",)), ("('main', 'v2')", ("main", "v2")),
                                              ("['main']", ("main",)), ("()", ()), ("None", ())])
def test_branch_labels_are_read_as_alembic_reads_them(labels, read):
    binding = "branch_labels: Union[str, Sequence[str], None] = "
    source = RENDERED.format(down="None").replace(f"{binding}None", f"{binding}{labels}")
    assert revision_of(source.encode()) == ("1a2b3c4d5e6f", (), (), read)


@pytest.mark.parametrize(
    "tail",
    [
        'revision = "other"',  # bound twice
        'if True:\n    revision = "other"',  # rebound in a block
        'for revision in ["other"]:\n    pass',
        'revision, x = "other", 1',
        'import os as revision',
        'from os import *',
        'globals()["revision"] = "other"',
        'exec("revision = \'other\'")',
        'setattr(__import__("sys").modules[__name__], "revision", "other")',
        'importlib.import_module(__name__).revision = "other"',
        'upgrade()',  # the file's own code runs at import time
        'def __getattr__(name):\n    return "other"',
        'class revision:\n    pass',
        '(revision := "other")',
        'try:\n    pass\nexcept Exception as revision:\n    pass',
        'del revision',
        '@upgrade\ndef later():\n    pass',
        'branch_labels = ("label", "label")',  # alembic fails on a label given twice
        'branch_labels = {"one", "two"}',  # a set: not the file's order
        'branch_labels = ["label", 1]',
        'depends_on = ["aa", 1]',
        'depends_on = ("0f0e0d0c0b0a",)',  # also its down revision: alembic dedupes, the proof declines
    ],
)
def test_a_revision_file_that_may_rebind_its_identity_is_not_read(tail):
    source = RENDERED.format(down="'0f0e0d0c0b0a'")
    for name in ("branch_labels", "depends_on"):
        if tail.startswith(name):  # replace the template's own binding instead of adding one
            source = source.replace(f"{name}: Union[str, Sequence[str], None] = None\n", "")
    assert revision_of((source + "\n" + tail + "\n").encode()) is None


@pytest.mark.parametrize(
    "source",
    [
        'revision = "a"\n',  # no down_revision: alembic fails on it
        'revision = make_id()\ndown_revision = None\n',
        'down_revision = None\n',  # alembic would take the id from the file name
        'revision = "a"\ndown_revision = ["b", 1]\n',
        'revision = "a"\ndown_revision = None\ndef f(\n',  # syntax error
    ],
)
def test_revision_files_without_a_literal_identity_are_not_read(source):
    assert revision_of(source.encode()) is None


# -- the proof, env.py -------------------------------------------------------------------------------
@pytest.mark.parametrize("template", ["generic", "async", "pyproject", "pyproject_async"])
def test_alembic_templates_env_py_is_plain(template):
    env_py = ALEMBIC_TEMPLATES / template / "env.py"
    if not env_py.exists():  # the pyproject templates came with alembic 1.16
        pytest.skip(f"alembic {alembic.__version__} has no {template!r} template")
    assert env_py_is_plain(env_py)


def test_multidb_template_env_py_is_not_plain():
    assert not env_py_is_plain(ALEMBIC_TEMPLATES / "multidb" / "env.py")


GENERIC_ENV = (ALEMBIC_TEMPLATES / "generic" / "env.py").read_text()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("connection=connection, target_metadata=target_metadata",
         "connection=connection, target_metadata=target_metadata, version_table_schema='tenant'"),
        ("connection=connection, target_metadata=target_metadata",
         "connection=connection, target_metadata=target_metadata, **extra"),
        ("with connectable.connect() as connection:",
         "with connectable.connect() as connection:\n        connection.exec_driver_sql('SET search_path TO tenant')"),
        ("poolclass=pool.NullPool,", "poolclass=pool.NullPool, connect_args={'options': '-csearch_path=t'},"),
        ("config.get_section(config.config_ini_section, {})", "config.get_section('otherdb', {})"),
        ('prefix="sqlalchemy."', 'prefix="otherdb."'),
        ("connectable = engine_from_config(", "from myapp.db import engine as connectable\n    unused = dict("),
        ("url = config.get_main_option(\"sqlalchemy.url\")", "url = os.environ['APP_URL']"),
        ("target_metadata = None", "target_metadata = None\nconfig.set_main_option('sqlalchemy.url', 'sqlite:///x.db')"),
        ("target_metadata = None", "target_metadata = None\nx = context.get_x_argument(as_dictionary=True)"),
        ("target_metadata = None", "target_metadata = None\nimport os\nschema = os.getenv('SCHEMA')"),
        ('url = config.get_main_option("sqlalchemy.url")', "url = app_settings.get('DATABASE_URL')"),
        ("config.get_section(config.config_ini_section, {})",
         "Config('other.ini').get_section(config.config_ini_section, {})"),
        ("from alembic import context", "from myapp.migrations import context"),
        ("target_metadata = None", "target_metadata = None\nimport os\nos.environ['DATABASE_URL'] = app_url"),
    ],
    ids=["version-table-schema", "kwargs", "set-search-path", "connect-args", "other-section",
         "other-prefix", "app-engine", "other-env-var", "hard-coded-url", "x-argument", "getenv",
         "url-from-app-settings", "another-config", "another-context", "overwrites-database-url"],
)
def test_env_py_that_may_migrate_elsewhere_is_not_plain(tmp_path, old, new):
    assert old in GENERIC_ENV
    path = tmp_path / "env.py"
    path.write_text(GENERIC_ENV.replace(old, new))
    assert not env_py_is_plain(path)


def test_env_py_setting_the_url_from_database_url_is_plain(tmp_path):
    path = tmp_path / "env.py"
    path.write_text(GENERIC_ENV.replace(
        "target_metadata = None",
        "target_metadata = None\nimport os\nconfig.set_main_option('sqlalchemy.url', os.environ['DATABASE_URL'])",
    ))
    assert env_py_is_plain(path)


def test_the_scenario_projects_env_py_are_judged_as_expected():
    assert env_py_is_plain(PROJECTS / "generic" / "migrations" / "env.py")  # sync's and most scenarios'
    assert env_py_is_plain(PROJECTS / "async" / "migrations" / "env.py")
    if (PROJECTS / "xargs").exists():
        assert not env_py_is_plain(PROJECTS / "xargs" / "migrations" / "env.py")
    if (PROJECTS / "custom_version_table").exists():
        assert not env_py_is_plain(PROJECTS / "custom_version_table" / "migrations" / "env.py")
