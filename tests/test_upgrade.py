"""`alembic-deploy upgrade` on unmodified Alembic projects, wherever their URL and files live:
sqlalchemy.url in the ini (with %(here)s and %%) or DATABASE_URL, -c/--config, --name, -x, and
the targets head, heads and an explicit revision."""

from __future__ import annotations

import json
import os

import pytest

from helpers import Database, run_cli, set_ini_url
from lockscene import write_revision

SEED = "SELECT COUNT(*) FROM users WHERE email = 'seed@example.com'"


def _report(run) -> dict:
    assert run.returncode == 0, run.output
    return json.loads(run.stdout)


def test_alembic_logs_each_revision_as_under_plain_alembic(sqlite_db, make_project):
    """alembic-deploy wraps each revision's upgrade() to time it; alembic's own log line, which
    names the function, still reads as under ``alembic upgrade``."""
    run = run_cli(make_project("sync"), "upgrade", url=sqlite_db.url)
    assert run.returncode == 0, run.output
    assert "Running upgrade  -> a1_users" in run.stderr and "Running upgrade a1_users -> a2_" in run.stderr


def test_a_long_plan_is_announced_in_one_short_line(sqlite_db, make_project):
    """Hundreds of pending revisions are not listed on one line: the first and last few and a
    count, since each is named again as it is applied."""
    project = make_project("sync")
    down = "a3_seed"
    for n in range(4, 10):
        down = write_revision(project, f"a{n}_noop", down, "    pass").stem
    run = run_cli(project, "upgrade", url=sqlite_db.url)
    assert run.returncode == 0, run.output
    line = next(line for line in run.stderr.splitlines() if line.startswith("Applying"))
    assert line == (
        "Applying 9 revision(s): a1_users, a2_users_email_index, a3_seed, a4_noop, ... (3 more) ..., a8_noop, a9_noop"
    )
    assert all(f"applied a{n}_" in run.stderr for n in range(1, 10))


# -- where the URL comes from -------------------------------------------------------------------
def test_sqlite_url_from_the_ini_with_here(make_project, tmp_path):
    project = make_project("ini_url")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    first = _report(run_cli(elsewhere, "upgrade", "-c", str(project / "alembic.ini"), "--json"))
    assert first["outcome"] == "applied"
    db = Database(f"sqlite:///{project / 'app.db'}", "sqlite")  # %(here)s is the ini's folder
    assert db.versions() == ["a3_seed"] and db.scalar(SEED) == 1
    assert not (elsewhere / "app.db").exists()
    second = _report(run_cli(elsewhere, "upgrade", "-c", str(project / "alembic.ini"), "--json"))
    assert (second["outcome"], second["fast_path"]) == ("noop", True)


def test_url_with_a_percent_in_the_password_from_the_ini(password_db, make_project):
    """The server checks the password, which holds a % (quoted %25 in the URL, %%25 in the ini).
    One template per server keeps it short: both templates run on every backend in test_smoke."""
    template = "sync" if password_db.backend == "postgresql" else "async"
    project = make_project(template)
    url = password_db.async_url if template == "async" else password_db.url
    set_ini_url(project, url)
    assert "%%25" in (project / "alembic.ini").read_text()
    first = run_cli(project, "upgrade")
    assert first.returncode == 0, first.output
    second = run_cli(project, "upgrade", "--json")
    report = json.loads(second.stdout)
    assert (report["outcome"], report["fast_path"]) == ("noop", True)  # it unquotes the password too
    assert ":***@127.0.0.1" in report["database"]
    assert password_db.versions() == ["a3_seed"] and password_db.scalar(SEED) == 1
    for run in (first, second):
        assert password_db.password not in run.output


def test_database_url_wins_over_the_ini(sqlite_db, make_project):
    project = make_project("ini_url")
    report = _report(run_cli(project, "upgrade", "--json", url=sqlite_db.url))
    assert report["database"] == sqlite_db.url
    assert sqlite_db.versions() == ["a3_seed"]
    assert not (project / "app.db").exists()


def test_database_url_flag_wins_over_the_environment(sqlite_db, make_project, tmp_path):
    project = make_project("sync")
    decoy = tmp_path / "decoy.db"
    run = run_cli(project, "upgrade", "--database-url", sqlite_db.url, url=f"sqlite:///{decoy}")
    assert run.returncode == 0, run.output
    assert sqlite_db.versions() == ["a3_seed"]
    assert not decoy.exists()


# -- where the files are --------------------------------------------------------------------------
def test_config_elsewhere_with_script_location_relative_to_the_ini(sqlite_db, make_project, tmp_path):
    code = make_project("sync", "code")
    conf, cwd = tmp_path / "conf", tmp_path / "somewhere"
    conf.mkdir(), cwd.mkdir()
    ini = (code / "alembic.ini").read_text().replace(
        "script_location = %(here)s/migrations", "script_location = %(here)s/../code/migrations"
    )
    (conf / "deploy.ini").write_text(ini)
    (code / "alembic.ini").unlink()
    first = _report(run_cli(cwd, "upgrade", "--config", "../conf/deploy.ini", "--json", url=sqlite_db.url))
    assert first["outcome"] == "applied"
    second = _report(run_cli(cwd, "upgrade", "-c", str(conf / "deploy.ini"), "--json", url=sqlite_db.url))
    assert (second["outcome"], second["fast_path"]) == ("noop", True)
    assert sqlite_db.versions() == ["a3_seed"]


def test_script_location_relative_to_the_working_directory(sqlite_db, make_project, tmp_path):
    """As in alembic, a plain relative script_location is resolved from the working directory."""
    project = make_project("sync", "repo/db")
    ini = project / "alembic.ini"
    ini.write_text(ini.read_text().replace("script_location = %(here)s/migrations", "script_location = db/migrations"))
    repo = project.parent
    first = _report(run_cli(repo, "upgrade", "-c", "db/alembic.ini", "--json", url=sqlite_db.url))
    assert first["outcome"] == "applied"
    second = _report(run_cli(repo, "upgrade", "-c", "db/alembic.ini", "--json", url=sqlite_db.url))
    assert (second["outcome"], second["fast_path"]) == ("noop", True)


def test_name_selects_the_ini_section(make_project):
    project = make_project("sync")
    ini = project / "alembic.ini"
    text = ini.read_text().replace("[alembic]", "[alembic]\nscript_location = %(here)s/nowhere\n\n[reporting]", 1)
    ini.write_text(text.replace("sqlalchemy.url = driver://user:pass@localhost/dbname",
                                "sqlalchemy.url = sqlite:///%(here)s/reporting.db"))
    first = _report(run_cli(project, "upgrade", "--name", "reporting", "--json"))
    assert first["outcome"] == "applied"
    assert Database(f"sqlite:///{project / 'reporting.db'}", "sqlite").versions() == ["a3_seed"]
    second = _report(run_cli(project, "upgrade", "-n", "reporting", "--json"))
    assert second["outcome"] == "noop"
    wrong = run_cli(project, "upgrade", "--name", "missing")
    assert wrong.returncode == 2 and "[missing]" in wrong.stderr


# -- -x pass-through and version tables the fast path cannot see ----------------------------------------
def _stale_alembic_version(db: Database) -> None:
    """An ``alembic_version`` at head that the project's env.py does not use: a fast path that
    read it would wrongly report a no-op."""
    with db.engine().begin() as conn:
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('a3_seed')")


def test_x_arguments_reach_env_py(sqlite_db, make_project):
    project = make_project("xargs")
    _stale_alembic_version(sqlite_db)
    args = ("-x", "version_table=xargs_versions", "--json")
    first = _report(run_cli(project, "upgrade", *args, url=sqlite_db.url))
    assert (first["outcome"], first["fast_path"]) == ("applied", False)
    assert sqlite_db.versions("xargs_versions") == ["a3_seed"] and sqlite_db.scalar(SEED) == 1
    status = _report(run_cli(project, "status", *args, url=sqlite_db.url))
    assert (status["current"], status["pending"]) == (["a3_seed"], [])


def test_fast_path_declines_a_custom_version_table_and_the_result_is_right(db, make_project):
    project = make_project("custom_version_table")
    _stale_alembic_version(db)
    first = _report(run_cli(project, "upgrade", "--json", url=db.url))
    assert (first["outcome"], first["fast_path"]) == ("applied", False)
    assert [r["revision"] for r in first["applied"]] == ["a1_users", "a2_users_email_index", "a3_seed"]
    second = _report(run_cli(project, "upgrade", "--json", url=db.url))
    assert (second["outcome"], second["fast_path"]) == ("noop", False)
    assert db.versions("deploy_versions") == ["a3_seed"] and db.scalar(SEED) == 1
    assert [r["outcome"] for r in db.journal()] == ["applied", "noop"]


def test_pyproject_template_config_in_tool_alembic(db, make_project, tmp_path):
    """`alembic init -t pyproject`: script_location lives in [tool.alembic] of pyproject.toml (read
    from the working directory, as alembic's CLI does, or beside the ini)."""
    import inspect

    from alembic.config import Config

    if "toml_file" not in inspect.signature(Config).parameters:
        pytest.skip("alembic < 1.16 reads no [tool.alembic]")
    project = make_project("pyproject")
    first = _report(run_cli(project, "upgrade", "--json", url=db.url))
    assert (first["outcome"], first["fast_path"]) == ("applied", False)
    assert [r["revision"] for r in first["applied"]] == ["a1_users", "a2_users_email_index", "a3_seed"]
    second = _report(run_cli(tmp_path, "upgrade", "-c", str(project / "alembic.ini"), "--json", url=db.url))
    assert second["outcome"] == "noop"
    status = _report(run_cli(project, "status", "--json", url=db.url))
    assert (status["current"], status["pending"]) == (["a3_seed"], [])
    assert db.versions() == ["a3_seed"] and db.scalar(SEED) == 1


# -- targets ----------------------------------------------------------------------------------------
def test_explicit_revision_then_head(db, make_project):
    project = make_project("sync")
    partial = _report(run_cli(project, "upgrade", "a2_users_email_index", "--json", url=db.url))
    assert [r["revision"] for r in partial["applied"]] == ["a1_users", "a2_users_email_index"]
    assert db.versions() == ["a2_users_email_index"] and db.scalar("SELECT COUNT(*) FROM users") == 0
    rest = _report(run_cli(project, "upgrade", "head", "--json", url=db.url))
    assert [r["revision"] for r in rest["applied"]] == ["a3_seed"]
    assert rest["from_revisions"] == ["a2_users_email_index"] and db.versions() == ["a3_seed"]


def test_heads_upgrades_every_branch(db, make_project):
    project = make_project("two_heads")
    first = _report(run_cli(project, "upgrade", "heads", "--json", url=db.url))
    applied = sorted(r["revision"] for r in first["applied"])
    assert applied == ["a1_users", "a2_users_email_index", "a3_seed", "b2_audit"]
    assert db.versions() == ["a3_seed", "b2_audit"] and db.has_table("audit")


def test_explicit_revision_on_one_branch_leaves_the_other_alone(sqlite_db, make_project):
    project = make_project("two_heads")
    report = _report(run_cli(project, "upgrade", "b2_audit", "--json", url=sqlite_db.url))
    assert [r["revision"] for r in report["applied"]] == ["a1_users", "b2_audit"]
    assert sqlite_db.versions() == ["b2_audit"]


# -- autocommit_block() under the lock ----------------------------------------------------------------
def test_create_index_concurrently_under_the_lock(pg_db, make_project):
    """CONCURRENTLY waits for every other transaction touching the table; the lock is held on a
    separate, idle, autocommit session, so it cannot be one of them."""
    project = make_project("cic")
    report = _report(run_cli(project, "upgrade", "--json", url=pg_db.url))
    assert report["applied"][-1]["revision"] == "a4_concurrent_index"
    assert pg_db.versions() == ["a4_concurrent_index"]
    valid = pg_db.scalar(
        "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE c.relname = 'ix_users_id_email'"
    )
    assert valid is True



_COUNT_CONNECTS = """
import json, sys
from sqlalchemy import event
from sqlalchemy.engine import Engine
opened = []
event.listen(Engine, "connect", lambda dbapi_connection, record: opened.append(1))  # every engine
from alembic_deploy.cli import main
try:
    main(["upgrade", "--no-fast-path"])
finally:
    sys.stderr.write(json.dumps({"connects": len(opened)}))
"""


@pytest.mark.parametrize("server", ["pg_db", "mysql_db"])
def test_a_full_upgrade_connects_twice_the_lock_session_and_env_py(server, request, make_project):
    """The connection the wait step reached the database with becomes the lock session, and the
    journal and verify use it too: one connect of the tool's own beside env.py's (each connect
    costs a server process on PostgreSQL, a TLS context with PyMySQL)."""
    import subprocess
    import sys

    db = request.getfixturevalue(server)
    project = make_project("sync")
    proc = subprocess.run([sys.executable, "-c", _COUNT_CONNECTS], cwd=project, capture_output=True, text=True,
                          env={**os.environ, "DATABASE_URL": db.url}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stderr[proc.stderr.rindex("{"):]) == {"connects": 2}
    assert db.versions() == ["a3_seed"]


_COUNT_PYMYSQL_CONNECTS = """
import json, sys
import pymysql.connections

opened = []
connect = pymysql.connections.Connection.connect
pymysql.connections.Connection.connect = lambda self, *a, **k: (opened.append(1), connect(self, *a, **k))[1]
before = dict(vars(pymysql.connections.Connection))
from alembic_deploy.cli import main
try:
    main(["upgrade"])
finally:
    unchanged = dict(vars(pymysql.connections.Connection)) == before
    sys.stderr.write(json.dumps({"connects": len(opened), "pymysql_unchanged": unchanged}))
"""


def test_on_mariadb_the_fast_paths_session_serves_the_full_path_when_it_cannot_answer(mysql_db, make_project):
    """An empty database: the fast path reads it and declines; the session it opened becomes the
    lock session, so the whole run connects twice, as with --no-fast-path; nothing of PyMySQL
    is changed along the way."""
    import subprocess
    import sys

    project = make_project("sync")
    proc = subprocess.run([sys.executable, "-c", _COUNT_PYMYSQL_CONNECTS], cwd=project, capture_output=True,
                          text=True, env={**os.environ, "DATABASE_URL": mysql_db.url}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stderr[proc.stderr.rindex("{"):]) == {"connects": 2, "pymysql_unchanged": True}
    assert mysql_db.versions() == ["a3_seed"]
    [row] = mysql_db.journal()
    assert row["outcome"] == "applied" and row["progress"] is not None


def test_the_fast_paths_session_is_handed_over_only_to_an_identical_connect(mysql_db):
    from sqlalchemy.engine import make_url

    from alembic_deploy.fastpath.direct import DirectConnection

    url = make_url(mysql_db.url)
    same = {"host": url.host, "port": url.port, "user": url.username, "database": url.database,
            "client_flag": 2, "connect_timeout": 5}
    db = DirectConnection.open(mysql_db.url)
    raw = db.hand_over(same)
    assert raw is not None and raw.open and raw.get_autocommit() is False
    assert db.hand_over(same) is None  # once
    raw.close()
    for other in ({**same, "database": "mysql"}, {**same, "client_flag": 0}, {**same, "ssl": {"ca": "x"}}):
        db = DirectConnection.open(mysql_db.url)
        session = db.conn
        assert db.hand_over(other) is None
        assert not session.open  # closed, not leaked
