"""``alembic-deploy drift`` on real PostgreSQL, MariaDB and SQLite: none on a clean database, the
differences a manual ALTER TABLE made outside migrations, the scratch database always removed
(also on a real SIGTERM), and a role that may not create databases."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from alembic_deploy.errors import (
    EXIT_OK,
    CheckRefused,
    ConfigError,
    Interrupted,
    MigrationFailed,
    ScratchUnavailable,
)
from alembic_deploy.scratch import SCRATCH_PREFIX, database_tag, host_tag, owner_of, scratch_name
from helpers import Database, invoke_cli, run_cli, spawn_cli, url_text
from lockscene import write_revision
from servers import ADMIN_URLS
from test_json_output import checked
from test_signals import _stop

SCRATCH = re.compile(r"scratch database (\S+) \(dropped afterwards\)")

#: A manual change outside the migrations, per backend: a column added, users.email made
#: nullable, the index ix_users_email dropped. SQLite cannot change nullability in place: the
#: table is rebuilt (as alembic's batch mode does).
OUTSIDE_MIGRATIONS = {
    "postgresql": ["ALTER TABLE users ADD COLUMN nickname VARCHAR(50)",
                   "ALTER TABLE users ALTER COLUMN email DROP NOT NULL",
                   "DROP INDEX ix_users_email"],
    "mysql": ["ALTER TABLE users ADD COLUMN nickname VARCHAR(50)",
              "ALTER TABLE users MODIFY email VARCHAR(255) NULL",
              "DROP INDEX ix_users_email ON users"],
    "sqlite": ["CREATE TABLE users_new (id INTEGER NOT NULL PRIMARY KEY, email VARCHAR(255), nickname VARCHAR(50))",
               "INSERT INTO users_new (id, email) SELECT id, email FROM users",
               "DROP TABLE users",
               "ALTER TABLE users_new RENAME TO users"],
}


#: env.py's models: users as the migrations make it, plus a column no migration adds yet.
MODELS = """import sqlalchemy as sa

target_metadata = sa.MetaData()
sa.Table(
    "users",
    target_metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(255), nullable=False),
    sa.Column("nickname", sa.String(50)),
    sa.Index("ix_users_email", "email", unique=True),
)
"""


def _scratch_of(stderr: str) -> str:
    found = SCRATCH.search(stderr)
    assert found, stderr
    return found.group(1)


def _scratch_exists(db: Database, name: str) -> bool:
    """Is the scratch database (a file for SQLite) still there? Listed as the server lists databases."""
    if db.backend == "sqlite":
        return Path(name).exists()
    engine = create_engine(ADMIN_URLS[db.backend], poolclass=NullPool)
    try:
        with engine.connect() as conn:
            listed = (conn.execute(text("SELECT datname FROM pg_database")) if db.backend == "postgresql"
                      else conn.execute(text("SHOW DATABASES")))
            return name in {row[0] for row in listed}
    finally:
        engine.dispose()


def _wait_for_the_replay_of_a4(proc: subprocess.Popen[str]) -> str:
    """Read ``proc``'s stderr until it replays a4 into its scratch database; what it said so far."""
    seen = ""
    while "a4_long_in_scratch" not in seen or SCRATCH.search(seen) is None:
        line = proc.stderr.readline()  # type: ignore[union-attr]
        assert line, f"exited ({proc.wait()}) before replaying a4: {seen}"
        seen += line
    return seen


def _alter(db: Database, statements: list[str]) -> None:
    engine = db.engine()
    with engine.begin() as conn:
        for statement in statements:
            conn.exec_driver_sql(statement)
    engine.dispose()


def test_drift_finds_nothing_on_a_database_its_migrations_made(make_project, db):
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", url=db.url).returncode == EXIT_OK
    run = invoke_cli(project, "drift", "--json", url=db.url)
    doc = checked(run.stdout, "drift", EXIT_OK)
    assert doc["differences"] == [] and doc["revisions"] == ["a3_seed"] and doc["backend"] in (db.backend, "mariadb")
    assert not _scratch_exists(db, _scratch_of(run.stderr))
    text_run = invoke_cli(project, "drift", url=db.url)
    assert text_run.returncode == EXIT_OK and "drift: none" in text_run.stdout


def test_drift_lists_what_an_alter_table_outside_migrations_changed(make_project, db):
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", url=db.url).returncode == EXIT_OK
    _alter(db, OUTSIDE_MIGRATIONS[db.backend])
    run = invoke_cli(project, "drift", "--json", url=db.url)
    doc = checked(run.stdout, "drift", CheckRefused.exit_code)
    found = {(d["kind"], d["name"], d["change"]) for d in doc["differences"]}
    assert {("column", "nickname", "unexpected"), ("column", "email", "changed"),
            ("index", "ix_users_email", "missing")} <= found
    email = next(d for d in doc["differences"] if d["name"] == "email")
    assert (email["database"]["nullable"], email["migrations"]["nullable"]) == (True, False)
    assert not _scratch_exists(db, _scratch_of(run.stderr))

    text_run = invoke_cli(project, "drift", url=db.url)
    assert text_run.returncode == CheckRefused.exit_code
    assert "users: column nickname is in the database but no migration makes it" in text_run.stdout
    assert "users: index ix_users_email is missing from the database" in text_run.stdout
    assert "nullable is yes in the database, no in the migrations" in text_run.stdout
    assert "differs from what its migrations make" in text_run.stderr


def test_drift_ignores_the_journal_and_a_database_at_base(make_project, db):
    """A database nothing migrated yet: the scratch database stays empty too; the journal tables
    alembic-deploy created while reading it are not drift."""
    project = make_project("sync")
    assert invoke_cli(project, "status", url=db.url).returncode == EXIT_OK
    doc = checked(invoke_cli(project, "drift", "--json", url=db.url).stdout, "drift", EXIT_OK)
    assert doc["revisions"] == [] and doc["differences"] == []


def test_a_failing_replay_still_drops_the_scratch_database(make_project, pg_db):
    """A revision that fails when replayed (here: only in a scratch database) ends the run with
    its error, and the scratch database is gone all the same."""
    project = make_project("sync")
    write_revision(project, "a4_scratch_only", "a3_seed",
                   f"    if op.get_bind().engine.url.database.startswith({SCRATCH_PREFIX!r}):\n"
                   "        op.execute('SELECT * FROM no_such_table')")
    assert invoke_cli(project, "upgrade", url=pg_db.url).returncode == EXIT_OK
    run = invoke_cli(project, "drift", url=pg_db.url)
    assert run.returncode == MigrationFailed.exit_code, run.stderr
    assert "Replaying the migrations into the scratch database failed in a4_scratch_only" in run.stderr
    assert "no_such_table" in run.stderr
    assert not _scratch_exists(pg_db, _scratch_of(run.stderr))


@pytest.mark.parametrize(("backend", "command"), [("postgresql", ("drift",)), ("mysql", ("drift",)),
                                                  ("postgresql", ("upgrade", "--check-drift"))])
def test_sigterm_during_the_replay_drops_the_scratch_database_and_exits_9(request, make_project, backend, command):
    db: Database = request.getfixturevalue("pg_db" if backend == "postgresql" else "mysql_db")
    sleep = "SELECT pg_sleep(60)" if backend == "postgresql" else "SELECT SLEEP(60)"
    project = make_project("sync")
    # Long only in the scratch database: the live upgrade is quick, the replay sleeps.
    write_revision(project, "a4_long_in_scratch", "a3_seed",
                   f"    if op.get_bind().engine.url.database.startswith({SCRATCH_PREFIX!r}):\n"
                   f"        op.execute({sleep!r})")
    assert invoke_cli(project, "upgrade", url=db.url).returncode == EXIT_OK
    proc = spawn_cli(project, *command, url=db.url)
    seen = _wait_for_the_replay_of_a4(proc)
    name = _scratch_of(seen)
    assert _scratch_exists(db, name)
    seconds, err = _stop(proc, signal.SIGTERM)
    assert proc.returncode == Interrupted.exit_code, err
    assert seconds < 10
    assert not _scratch_exists(db, name)
    if command[0] == "drift":
        assert "scratch database was dropped" in err
    else:  # the deploy's interruption: journaled, the lock released, nothing migrated
        assert db.journal()[-1]["outcome"] == "interrupted" and db.versions() == ["a4_long_in_scratch"]


def test_a_role_that_may_not_create_databases_gets_one_paragraph_and_exit_10(make_project, pg_db):
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", url=pg_db.url).returncode == EXIT_OK
    role = f"ad_nocreate_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URLS["postgresql"], poolclass=NullPool, isolation_level="AUTOCOMMIT")
    database = make_url(pg_db.url).database
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN NOCREATEDB")
    with pg_db.engine().begin() as conn:
        conn.exec_driver_sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    try:
        run = run_cli(project, "drift", "--json", url=url_text(pg_db.url, username=role))
        doc = checked(run.stdout, "drift", ScratchUnavailable.exit_code)
        assert doc["error"]["kind"] == "scratch-unavailable"
        message = doc["error"]["message"]
        assert "could not create its scratch database" in message and "CREATEDB" in message
        assert "Traceback" not in run.stderr and run.stderr.count("error:") == 1
    finally:
        with pg_db.engine().begin() as conn:
            conn.exec_driver_sql(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {role}")
        with admin.connect() as conn:
            conn.exec_driver_sql(f"REVOKE ALL ON DATABASE {database} FROM {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
        admin.dispose()


def test_upgrade_check_drift_refuses_before_migrating_a_database_that_drifted(make_project, db):
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", "a2_users_email_index", url=db.url).returncode == EXIT_OK
    clean = checked(invoke_cli(project, "upgrade", "--check-drift", "--json", url=db.url).stdout, "upgrade", EXIT_OK)
    assert clean["outcome"] == "applied" and "drift" in [step["name"] for step in clean["steps"]]

    _alter(db, OUTSIDE_MIGRATIONS[db.backend])
    write_revision(project, "a4_after", "a3_seed", "    op.create_table('after', sa.Column('id', sa.Integer))")
    run = invoke_cli(project, "upgrade", "--check-drift", "--json", url=db.url)
    doc = checked(run.stdout, "upgrade", CheckRefused.exit_code)
    assert doc["outcome"] == "refused" and doc["applied"] == []
    assert any("column nickname" in value for value in doc["error"]["fields"].values())
    assert db.versions() == ["a3_seed"] and not db.has_table("after")
    assert db.journal()[-1]["outcome"] == "refused"
    assert not _scratch_exists(db, _scratch_of(run.stderr))
    # Without the flag the same deploy migrates.
    assert invoke_cli(project, "upgrade", url=db.url).returncode == EXIT_OK and db.has_table("after")


def test_drift_reports_models_against_the_database_when_env_py_sets_target_metadata(make_project, db):
    project = make_project("sync")
    env_py = project / "migrations" / "env.py"
    env_py.write_text(env_py.read_text().replace("target_metadata = None\n", MODELS))
    assert invoke_cli(project, "upgrade", url=db.url).returncode == EXIT_OK
    run = invoke_cli(project, "drift", "--json", url=db.url)
    doc = checked(run.stdout, "drift", CheckRefused.exit_code)
    assert doc["differences"] == [] and doc["models"] == ["add_column users.nickname"]
    assert "target_metadata" in run.stderr

    _alter(db, ["ALTER TABLE users ADD COLUMN nickname VARCHAR(50)"])  # the models' column, added by hand
    run = invoke_cli(project, "drift", url=db.url)
    assert run.returncode == CheckRefused.exit_code
    assert "users: column nickname is in the database but no migration makes it" in run.stdout
    assert "models (env.py's target_metadata) against the database: 0 difference(s)." in run.stdout


def test_a_project_without_target_metadata_has_no_models_report(make_project, sqlite_db):
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", url=sqlite_db.url).returncode == EXIT_OK
    doc = checked(invoke_cli(project, "drift", "--json", url=sqlite_db.url).stdout, "drift", EXIT_OK)
    assert doc["models"] is None


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_plan_check_drift_shows_the_drift_after_the_revisions_and_exits_5(request, make_project, backend):
    db: Database = request.getfixturevalue("pg_db" if backend == "postgresql" else "mysql_db")
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", "a2_users_email_index", url=db.url).returncode == EXIT_OK
    clean = checked(invoke_cli(project, "plan", "--check-drift", "--json", url=db.url).stdout, "plan", EXIT_OK)
    assert [r["revision"] for r in clean["revisions"]] == ["a3_seed"] and clean["drift"]["differences"] == []
    assert checked(invoke_cli(project, "plan", "--json", url=db.url).stdout, "plan", EXIT_OK)["drift"] is None

    _alter(db, OUTSIDE_MIGRATIONS[backend])
    doc = checked(invoke_cli(project, "plan", "--check-drift", "--json", url=db.url).stdout, "plan",
                  CheckRefused.exit_code)
    assert ("column", "nickname", "unexpected") in {(d["kind"], d["name"], d["change"])
                                                    for d in doc["drift"]["differences"]}
    assert "differs from what its migrations make" in doc["error"]["message"]
    markdown = invoke_cli(project, "plan", "--check-drift", "--format", "markdown", url=db.url)
    assert markdown.returncode == CheckRefused.exit_code
    assert "### Drift" in markdown.stdout and "- users: column nickname is in the database" in markdown.stdout


def test_plan_check_drift_needs_the_database(make_project):
    project = make_project("sync")
    run = invoke_cli(project, "plan", "--check-drift", "--from", "base", "--dialect", "postgresql")
    assert run.returncode == ConfigError.exit_code and "--check-drift" in run.stderr


def test_drift_replays_every_head_a_database_with_two_is_at(make_project, pg_db):
    project = make_project("two_heads")
    assert invoke_cli(project, "upgrade", "heads", url=pg_db.url).returncode == EXIT_OK
    doc = checked(invoke_cli(project, "drift", "--json", url=pg_db.url).stdout, "drift", EXIT_OK)
    assert len(doc["revisions"]) == 2 and doc["differences"] == []


def test_a_mariadb_user_granted_only_its_database_gets_exit_10(make_project, password_mysql_db):
    project = make_project("sync")
    db = password_mysql_db
    assert invoke_cli(project, "upgrade", url=db.url).returncode == EXIT_OK
    run = run_cli(project, "drift", url=db.url)
    assert run.returncode == ScratchUnavailable.exit_code, run.stderr
    assert "could not create its scratch database" in run.stderr and "GRANT CREATE, DROP" in run.stderr
    assert db.password not in run.output and "Traceback" not in run.stderr


def _admin(db: Database, sql: str) -> None:
    """Run ``sql`` as the server's admin (names of [a-z0-9_] need no quoting on either server)."""
    engine = create_engine(ADMIN_URLS[db.backend], poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(sql)
    finally:
        engine.dispose()


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_a_scratch_database_a_sigkill_left_is_swept_at_the_next_start(request, make_project, backend, tmp_path):
    """kill -9 during the replay leaves the scratch database, named after its host, database and
    process; the next drift of that database drops it (its process is gone), and leaves alone one
    whose process still runs here, one made on another host and one made for another database."""
    db: Database = request.getfixturevalue("pg_db" if backend == "postgresql" else "mysql_db")
    sleep = "SELECT pg_sleep(60)" if backend == "postgresql" else "SELECT SLEEP(60)"
    project = make_project("sync")
    write_revision(project, "a4_long_in_scratch", "a3_seed",
                   "    import os\n"
                   f"    if os.environ.get('SLEEP_IN_SCRATCH') and op.get_bind().engine.url.database.startswith("
                   f"{SCRATCH_PREFIX!r}):\n"
                   f"        op.execute({sleep!r})")
    assert invoke_cli(project, "upgrade", url=db.url).returncode == EXIT_OK
    proc = spawn_cli(project, "drift", url=db.url, env={"SLEEP_IN_SCRATCH": "1"})
    seen = _wait_for_the_replay_of_a4(proc)
    name = _scratch_of(seen)
    owner = owner_of(name)
    assert owner is not None and owner.pid == proc.pid and owner.host == host_tag()
    assert owner.database == database_tag(make_url(db.url).database)
    proc.kill()
    assert proc.wait() == -signal.SIGKILL
    proc.stderr.close()  # type: ignore[union-attr]
    assert _scratch_exists(db, name)  # nothing could drop it
    live = make_url(db.url).database
    alive = scratch_name(live, pid=os.getpid())
    elsewhere = scratch_name(live, pid=proc.pid).replace(host_tag(), "other000")
    other_database = scratch_name(f"{live}_other", pid=proc.pid)
    for other in (alive, elsewhere, other_database):
        _admin(db, f"CREATE DATABASE {other}")
    try:
        run = run_cli(project, "drift", url=db.url)
        assert run.returncode == EXIT_OK, run.stderr
        said = f"Dropped stale scratch database {name}: its owner, process {proc.pid} of this host, is gone"
        assert said in run.stderr
        assert not _scratch_exists(db, name) and not _scratch_exists(db, _scratch_of(run.stderr))
        assert _scratch_exists(db, alive) and _scratch_exists(db, elsewhere) and _scratch_exists(db, other_database)
    finally:
        for other in (alive, elsewhere, other_database):
            _admin(db, f"DROP DATABASE IF EXISTS {other}")


def test_scratch_names_fit_every_server_and_read_back():
    for host in ("h", "a-very-long-host-name.example.internal", "ÜBER_host:1", ""):
        tag = host_tag(host)
        assert re.fullmatch(r"[a-z0-9]{4,12}", tag)
    assert host_tag("web-1") != host_tag("web1")  # same letters, another host
    name = scratch_name("x" * 64, now=4_102_444_800, pid=4_194_304)  # 2100-01-01, Linux's highest pid
    assert len(name) <= 63 and re.fullmatch(r"[a-z0-9_]+", name)
    owner = owner_of(name)
    assert owner is not None and (owner.pid, owner.created) == (4_194_304, 4_102_444_800)
    assert owner.database == database_tag("x" * 64) != database_tag("y")
    assert owner_of(f"/tmp/{name}-k2j3.db") == owner  # a SQLite scratch file
    assert owner_of(f"{SCRATCH_PREFIX}0123456789ab") is None  # an older release's name: left alone


#: A revision making a view everywhere, and on PostgreSQL a sequence, an enum and a table in a
#: schema of its own.
BEYOND_TABLES = (
    "    op.execute('CREATE VIEW active_users AS SELECT id, email FROM users WHERE id > 0')\n"
    "    if op.get_bind().dialect.name == 'postgresql':\n"
    "        op.execute('CREATE SEQUENCE invoice_numbers')\n"
    "        op.execute(\"CREATE TYPE mood AS ENUM ('ok', 'sad')\")\n"
    "        op.execute('CREATE SCHEMA audit')\n"
    "        op.create_table('events', sa.Column('id', sa.Integer, primary_key=True), schema='audit')"
)
#: Changes outside the migrations to each of those.
BEYOND_TABLES_OUTSIDE = {
    "postgresql": ["CREATE OR REPLACE VIEW active_users AS SELECT id, email FROM users WHERE id > 1",
                   "DROP SEQUENCE invoice_numbers", "CREATE SEQUENCE order_numbers",
                   "ALTER TYPE mood ADD VALUE 'meh'", "ALTER TABLE audit.events ADD COLUMN note TEXT",
                   "CREATE VIEW audit.recent AS SELECT id FROM audit.events"],
    "mysql": ["CREATE OR REPLACE VIEW active_users AS SELECT id, email FROM users WHERE id > 1"],
    "sqlite": ["DROP VIEW active_users", "CREATE VIEW active_users AS SELECT id, email FROM users WHERE id > 1"],
}


def test_drift_compares_views_sequences_enums_and_other_schemas(make_project, db):
    project = make_project("sync")
    write_revision(project, "a4_beyond_tables", "a3_seed", BEYOND_TABLES)
    assert invoke_cli(project, "upgrade", url=db.url).returncode == EXIT_OK
    doc = checked(invoke_cli(project, "drift", "--json", url=db.url).stdout, "drift", EXIT_OK)
    assert doc["differences"] == []  # the view's text, MySQL's database names in it included, compares equal

    _alter(db, BEYOND_TABLES_OUTSIDE[db.backend])
    run = invoke_cli(project, "drift", "--json", url=db.url)
    doc = checked(run.stdout, "drift", CheckRefused.exit_code)
    found = {(d["kind"], d["name"], d["change"]) for d in doc["differences"]}
    expected = {("view", "active_users", "changed")}
    if db.backend == "postgresql":
        expected |= {("sequence", "invoice_numbers", "missing"), ("sequence", "order_numbers", "unexpected"),
                     ("enum", "mood", "changed"), ("column", "note", "unexpected"),
                     ("view", "audit.recent", "unexpected")}
        mood = next(d for d in doc["differences"] if d["kind"] == "enum")
        assert (mood["database"]["labels"], mood["migrations"]["labels"]) == (["ok", "sad", "meh"], ["ok", "sad"])
        note = next(d for d in doc["differences"] if d["name"] == "note")
        assert note["table"] == "audit.events"
    assert found == expected
    text_run = invoke_cli(project, "drift", url=db.url)
    assert "view active_users differs: definition is" in text_run.stdout


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process start times come from Linux's /proc")
def test_a_process_id_taken_by_a_newer_process_does_not_keep_a_scratch_database():
    """A restarted container's entrypoint is pid 1 again: the id is taken, but by a process that
    started after the scratch database was made, so its owner is gone."""
    me = os.getpid()
    made_before_i_started = owner_of(scratch_name("app", now=time.time() - 10 * 365 * 86400, pid=me))
    made_while_i_run = owner_of(scratch_name("app", pid=me))
    assert made_before_i_started is not None and made_while_i_run is not None
    assert made_before_i_started.is_dead_here("app")
    assert not made_while_i_run.is_dead_here("app")
    assert not made_before_i_started.is_dead_here("another_app")  # not the sweeping run's database
