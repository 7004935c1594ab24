"""Lock timeouts, retries, statement timeouts and per-revision options, against real blocking
sessions on the shared PostgreSQL and MariaDB servers."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import inspect

from helpers import assert_failed_cleanly, invoke_cli, run_cli, spawn_cli
from lockscene import BLOCKER_MARKER, AppLoop, Blocker, write_revision

SERVER_BACKENDS = ["pg_db", "mysql_db"]
#: What the servers make of --ddl-lock-timeout 0.5: MySQL/MariaDB count whole seconds.
EFFECTIVE_LOCK_TIMEOUT = {"postgresql": 0.5, "mysql": 1.0}


@pytest.fixture(params=SERVER_BACKENDS)
def server_db(request: pytest.FixtureRequest):
    return request.getfixturevalue(request.param)


def _at_a3(db, make_project, template: str = "sync"):
    """The alter_users project with the database at a3_seed (users exists, a4 pending)."""
    project = make_project("alter_users")
    if template == "async":
        (project / "migrations" / "env.py").write_text(
            (make_project("async", "async_template") / "migrations" / "env.py").read_text()
        )
    url = db.async_url if template == "async" else db.url
    first = invoke_cli(project, "upgrade", "a3_seed", url=url)
    assert first.returncode == 0, first.output
    return project, url


def _columns(db, table: str) -> set[str]:
    engine = db.engine()
    try:
        return {c["name"] for c in inspect(engine).get_columns(table)}
    finally:
        engine.dispose()


def test_app_queries_never_queue_behind_a_blocked_alter_and_the_migration_completes(server_db, make_project):
    project, url = _at_a3(server_db, make_project)
    blocker = Blocker(server_db.url, server_db.backend)
    try:
        with AppLoop(server_db.url) as app:
            app.wait_measuring()
            proc = spawn_cli(project, "upgrade", "--json", "--ddl-lock-timeout", "0.5", url=url)
            seen = []
            for line in proc.stderr:  # the blocker goes once the revision has given up its locks once
                seen.append(line)
                if "could not get its locks within" in line:
                    blocker.release()
                    break
            out, rest = proc.communicate(timeout=120)
            err = "".join(seen) + rest
    finally:
        blocker.release()
    assert proc.returncode == 0, err
    assert server_db.versions() == ["a4_users_nickname"]
    assert "nickname" in _columns(server_db, "users")
    # Without a lock timeout the app would have stalled until the blocker went.
    assert app.max < EFFECTIVE_LOCK_TIMEOUT[server_db.backend] + 1.5, (app.max, err)
    report = json.loads(out)
    assert report["applied"][0]["attempts"] >= 2
    assert f"pid {blocker.pid}" in err
    assert "Traceback" not in err
    assert [row["outcome"] for row in server_db.journal()][-1] == "applied"


@pytest.mark.parametrize("template", ["sync", "async"])
def test_retries_run_out_with_exit_7_naming_the_blocker(pg_db, make_project, template):
    project, url = _at_a3(pg_db, make_project, template)
    blocker = Blocker(pg_db.url, pg_db.backend)
    try:
        run = invoke_cli(project, "upgrade", "--ddl-lock-timeout", "0.3", "--retries", "2", url=url)
    finally:
        blocker.release()
    assert run.returncode == 7, run.output
    assert "3 attempt(s)" in run.stderr
    assert f"pid {blocker.pid}" in run.stderr and BLOCKER_MARKER in run.stderr
    assert "retry 2/2" in run.stderr and "Traceback" not in run.output
    assert pg_db.versions() == ["a3_seed"]
    assert "nickname" not in _columns(pg_db, "users")
    assert [row["outcome"] for row in pg_db.journal()][-1] == "failed"
    # The lock was released: the next deploy, unblocked, completes.
    assert invoke_cli(project, "upgrade", url=url).returncode == 0


def test_retries_run_out_on_mariadb_naming_the_blocking_session(mysql_db, make_project):
    project, url = _at_a3(mysql_db, make_project)
    blocker = Blocker(mysql_db.url, mysql_db.backend, running=30)
    try:
        run = invoke_cli(project, "upgrade", "--ddl-lock-timeout", "1", "--retries", "1", url=url)
    finally:
        blocker.release()
    assert run.returncode == 7, run.output
    assert "2 attempt(s)" in run.stderr
    assert f"pid {blocker.pid}" in run.stderr and BLOCKER_MARKER in run.stderr
    assert mysql_db.versions() == ["a3_seed"]
    assert "nickname" not in _columns(mysql_db, "users")


def test_revision_that_worked_outside_a_transaction_is_never_retried(server_db, make_project):
    """PostgreSQL: an autocommit block; MariaDB: any DDL. The first statement commits, the second
    times out on the lock: running the revision again would create the table twice."""
    project, url = _at_a3(server_db, make_project)
    (project / "migrations" / "versions" / "a4_users_nickname.py").unlink()
    body = (
        "    op.create_table('audit_log', sa.Column('id', sa.Integer, primary_key=True))\n"
        "    op.add_column('users', sa.Column('nickname', sa.String(50)))"
    )
    if server_db.backend == "postgresql":
        body = "    with op.get_context().autocommit_block():\n" + body.replace("    op.", "        op.")
    write_revision(project, "a4_audit_and_nickname", "a3_seed", body)
    blocker = Blocker(server_db.url, server_db.backend)
    try:
        run = invoke_cli(project, "upgrade", "--ddl-lock-timeout", "0.5", url=url)
    finally:
        blocker.release()
    assert run.returncode == 7, run.output
    assert "was not retried" in run.stderr and "retry 1/" not in run.stderr
    assert f"pid {blocker.pid}" in run.stderr
    assert server_db.has_table("audit_log")  # the part that ran is still there, and reported
    assert server_db.versions() == ["a3_seed"]


def test_revision_can_opt_out_of_retries(pg_db, make_project):
    project, url = _at_a3(pg_db, make_project)
    write_revision(project, "a5_no_retry", "a4_users_nickname",
                   "    op.add_column('users', sa.Column('age', sa.Integer))", '{"retries": 0}')
    invoke_cli(project, "upgrade", "a4_users_nickname", url=url)
    blocker = Blocker(pg_db.url, pg_db.backend)
    try:
        run = invoke_cli(project, "upgrade", "--ddl-lock-timeout", "0.3", url=url)
    finally:
        blocker.release()
    assert run.returncode == 7, run.output
    assert "1 attempt(s)" in run.stderr and "retries are set to 0" in run.stderr
    assert pg_db.versions() == ["a4_users_nickname"]


def test_revision_without_lock_timeout_waits_for_the_blocker(pg_db, make_project):
    project, url = _at_a3(pg_db, make_project)
    (project / "migrations" / "versions" / "a4_users_nickname.py").unlink()
    write_revision(project, "a4_patient", "a3_seed",
                   "    op.add_column('users', sa.Column('nickname', sa.String(50)))", '{"lock_timeout": None}')
    blocker = Blocker(pg_db.url, pg_db.backend)
    blocker.release_after(2.0)
    try:
        run = invoke_cli(project, "upgrade", "--ddl-lock-timeout", "0.3", url=url)
    finally:
        blocker.release()
    assert run.returncode == 0, run.output
    assert "could not get its locks" not in run.stderr
    assert pg_db.versions() == ["a4_patient"]


@pytest.mark.parametrize("opt_out", [False, True])
def test_statement_timeout_cancels_a_long_revision_unless_it_opts_out(server_db, make_project, opt_out):
    project, url = _at_a3(server_db, make_project)
    sleep = "pg_sleep" if server_db.backend == "postgresql" else "SLEEP"
    write_revision(project, "a5_long", "a4_users_nickname", f"    op.execute('SELECT {sleep}(3)')",
                   '{"statement_timeout": None}' if opt_out else None)
    run = invoke_cli(project, "upgrade", "--statement-timeout", "1", url=url)
    if opt_out:
        assert run.returncode == 0, run.output
        assert server_db.versions() == ["a5_long"]
    else:
        assert run.returncode == 7, run.output
        assert "statement timeout of 1s" in run.stderr and "Traceback" not in run.output
        assert "a5_long" not in server_db.versions()


def test_malformed_revision_options_are_refused_before_anything_runs(sqlite_db, make_project):
    project = make_project("alter_users")
    write_revision(project, "a5_bad", "a4_users_nickname", "    pass", '{"retries": "many"}')
    run = invoke_cli(project, "upgrade", url=sqlite_db.url)
    assert run.returncode == 2, run.output
    assert "a5_bad" in run.stderr and "retries" in run.stderr
    assert not sqlite_db.has_table("users")


@pytest.mark.parametrize(("key", "value"), [
    ("statement_timeout", 'float("inf")'),
    ("statement_timeout", 'float("nan")'),
    ("statement_timeout", "10**12"),
    ("lock_timeout", "1e12"),
    ("lock_timeout", "-1"),
    ("retries", "10**9"),
])
def test_revision_options_a_setting_would_refuse_exit_2_naming_the_file_before_anything_runs(
    pg_db, make_project, key, value,
):
    """The values --statement-timeout, --ddl-lock-timeout and --retries refuse (infinite, not a
    number, negative, beyond what a server takes) are refused in a revision's dict as well, for
    the whole plan before its first revision: an infinite timeout used to fail inside the
    migration (OverflowError, exit 7 blaming the revision)."""
    project = make_project("alter_users")
    path = write_revision(project, "a5_bad", "a4_users_nickname", "    pass", f'{{"{key}": {value}}}')
    message = assert_failed_cleanly(invoke_cli(project, "upgrade", url=pg_db.url), 2)
    assert str(path) in message and f"alembic_deploy[{key!r}]" in message, message
    assert not pg_db.has_table("users")
    write_revision(project, "a5_bad", "a4_users_nickname", "    pass", f'{{"{key}": 3}}')
    fixed = invoke_cli(project, "upgrade", url=pg_db.url)
    assert fixed.returncode == 0, fixed.output
    assert pg_db.versions() == ["a5_bad"]


def test_an_infinite_revision_timeout_is_refused_on_mariadb_too(mysql_db, make_project):
    project = make_project("alter_users")
    write_revision(project, "a5_bad", "a4_users_nickname", "    pass", '{"lock_timeout": float("inf")}')
    message = assert_failed_cleanly(invoke_cli(project, "upgrade", url=mysql_db.url), 2)
    assert "a5_bad.py" in message and "alembic_deploy['lock_timeout']" in message, message
    assert not mysql_db.has_table("users")


def test_mariadb_with_metadata_lock_info_names_the_holder_not_bystanders(make_project):
    """With the metadata_lock_info plugin (loaded by the throwaway server), only the session that
    holds a metadata lock on the altered table is named, not every open transaction."""
    from sqlalchemy import text

    from helpers import Database
    from servers import mariadb_server

    with mariadb_server() as server:
        db = Database(server.create_database("app"), "mysql")
        project, url = _at_a3(db, make_project)
        bystander_engine = db.engine()
        with bystander_engine.connect() as bystander:
            bystander.execute(text("CREATE TABLE elsewhere (id INT)"))
            bystander.commit()
            bystander.execute(text("SELECT * FROM elsewhere"))  # an open transaction on another table
            bystander_pid = bystander.execute(text("SELECT CONNECTION_ID()")).scalar()
            blocker = Blocker(db.url, db.backend)
            try:
                run = run_cli(project, "upgrade", "--ddl-lock-timeout", "1", "--retries", "0", url=url)
            finally:
                blocker.release()
        bystander_engine.dispose()
    assert run.returncode == 7, run.output
    assert f"blocked by pid {blocker.pid} (metadata lock" in run.stderr
    assert f"pid {bystander_pid} " not in run.stderr
