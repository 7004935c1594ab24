"""``alembic-deploy rollback`` on real PostgreSQL, MariaDB and SQLite: a deploy of three revisions
(one a merge) undone back to exactly the version table and schema before it; ``--steps``, ``--to``
and ``--deploy``; irreversible revisions refused unless ``--force``; the schema guard's refusal;
the plan, the confirmation, SIGTERM during a rollback, and the journal row of each run."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import time
from pathlib import Path

import pytest

from helpers import Database, invoke_cli, run_cli, schema_snapshot, spawn_cli
from test_json_output import checked

#: A statement that runs far longer than any test: only a cancel ends it early (as in test_signals).
LONG_STATEMENT = {
    "postgresql": "SELECT pg_sleep(60)",
    "mysql": "SELECT SLEEP(60)",
    "sqlite": "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 100000000) "
              "SELECT count(*) FROM r",
}
RUNNING_SQL = {
    "postgresql": "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'SELECT pg_sleep(60)%'"
                  " AND datname = current_database()",
    "mysql": "SELECT count(*) FROM information_schema.processlist WHERE info LIKE 'SELECT SLEEP(60)%'"
             " AND db = DATABASE()",
}


def write_revision(project: Path, revision: str, down: str | None, upgrade: str, downgrade: str,
                   options: str | None = None) -> Path:
    """A revision file with both bodies (indented code)."""
    path = project / "migrations" / "versions" / f"{revision}.py"
    path.write_text(
        f'"""{revision}"""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
        f"revision = {revision!r}\ndown_revision = {down!r}\nbranch_labels = None\ndepends_on = None\n"
        + (f"alembic_deploy = {options}\n" if options else "")
        + f"\n\ndef upgrade() -> None:\n{upgrade}\n\n\ndef downgrade() -> None:\n{downgrade}\n"
    )
    return path


def rollback(project: Path, db: Database, *args: str):
    return invoke_cli(project, "rollback", *args, url=db.url)


def last_row(db: Database) -> dict:
    return db.journal()[-1]


def test_rollback_returns_a_deploy_of_three_revisions_with_a_merge_to_exactly_before_it(make_project, db):
    project = make_project("merged")
    assert invoke_cli(project, "upgrade", "a3_seed", url=db.url).returncode == 0
    versions, schema = db.versions(), schema_snapshot(db.url)
    deploy = invoke_cli(project, "upgrade", "heads", url=db.url)
    assert deploy.returncode == 0, deploy.output
    deploy_id = last_row(db)["id"]
    assert db.versions() == ["c1"]

    done = rollback(project, db, "--code-head", "a3_seed", "--yes", "--json")
    doc = checked(done.stdout, "rollback", 0)
    assert doc["outcome"] == "rolled-back" and doc["undoes"] == deploy_id
    assert [r["revision"] for r in doc["applied"]] == ["c1", "m1", "b2_audit"]
    assert {r["status"] for r in doc["applied"]} == {"rolled-back"}
    assert doc["plan"]["chosen"] == f"before deploy #{deploy_id}" and doc["plan"]["target"] == ["a3_seed"]
    assert "DROP TABLE t_c1" in "\n".join(doc["plan"]["revisions"][0]["sql"])
    assert db.versions() == versions
    assert schema_snapshot(db.url) == schema
    row = last_row(db)
    assert (row["command"], row["outcome"], row["undoes"]) == ("rollback", "rolled-back", deploy_id)
    assert [r["status"] for r in json.loads(row["revisions"])] == ["rolled-back"] * 3
    assert (row["from_revisions"], row["to_revisions"]) == ("c1", "a3_seed")
    # The plan and each revision undone were shown on stderr.
    assert "rollback plan: c1 -> a3_seed" in done.stderr and "rolled back m1" in done.stderr

    # The next rollback undoes the deploy before that one (the first), down to an empty database.
    again = rollback(project, db, "--force", "--yes", "--json")
    second = checked(again.stdout, "rollback", 0)
    assert second["undoes"] == deploy_id - 1 and db.versions() == []
    assert set(schema_snapshot(db.url)) <= {"alembic_version"}
    nothing = rollback(project, db, "--yes")
    assert nothing.returncode == 5 and "no deploy" in nothing.stderr


def test_steps_and_to_roll_back_as_far_as_asked(make_project, db):
    project = make_project("merged")
    assert invoke_cli(project, "upgrade", "heads", url=db.url).returncode == 0
    one = rollback(project, db, "--steps", "1", "--force", "--yes")
    assert one.returncode == 0, one.output
    assert db.versions() == ["m1"] and not db.has_table("t_c1")
    assert last_row(db)["undoes"] is None and last_row(db)["outcome"] == "rolled-back"
    # As `alembic downgrade a2_users_email_index` from m1: the merge and a3_seed go, b2_audit stays.
    to = rollback(project, db, "--to", "a2_users_email_index", "--force", "--yes")
    assert to.returncode == 0, to.output
    assert db.versions() == ["a2_users_email_index", "b2_audit"] and db.has_table("audit")
    too_far = rollback(project, db, "--steps", "9", "--force", "--yes")
    assert too_far.returncode == 2 and "--steps 9" in too_far.stderr
    above = rollback(project, db, "--to", "c1", "--force", "--yes")
    assert above.returncode == 5 and "Alembic cannot downgrade to 'c1'" in above.stderr
    both = rollback(project, db, "--to", "base", "--steps", "1", "--yes")
    assert both.returncode == 2 and "one target" in both.stderr


def test_deploy_undoes_one_deploy_only_when_nothing_after_it_depends_on_it(make_project, db):
    project = make_project("merged")
    assert invoke_cli(project, "upgrade", "a1_users", url=db.url).returncode == 0
    assert invoke_cli(project, "upgrade", "b2_audit", url=db.url).returncode == 0
    audit = last_row(db)["id"]
    assert invoke_cli(project, "upgrade", "a3_seed", url=db.url).returncode == 0
    users = last_row(db)["id"]
    assert db.versions() == ["a3_seed", "b2_audit"]
    # Deploy `audit` came before `users`, but nothing of `users` depends on it: it goes alone.
    done = rollback(project, db, "--deploy", str(audit), "--force", "--yes")
    assert done.returncode == 0, done.output
    assert db.versions() == ["a3_seed"] and not db.has_table("audit")
    assert last_row(db)["undoes"] == audit
    again = rollback(project, db, "--deploy", str(audit), "--force", "--yes")
    assert again.returncode == 5 and "rolled back already" in again.stderr
    # Now m1 and c1, applied after `users`, depend on a3_seed: `users` cannot go alone.
    assert invoke_cli(project, "upgrade", "heads", url=db.url).returncode == 0
    refused = rollback(project, db, "--deploy", str(users), "--force", "--yes")
    assert refused.returncode == 5, refused.output
    assert "revision m1" in refused.stderr and "depends on a2_users_email_index, a3_seed" in refused.stderr
    assert db.versions() == ["c1"]
    not_a_deploy = rollback(project, db, "--deploy", "99999", "--yes")
    assert not_a_deploy.returncode == 2 and "#99999" in not_a_deploy.stderr


@pytest.mark.parametrize("body", ["    pass", '    raise NotImplementedError("one way only")'])
def test_an_irreversible_revision_is_refused_unless_forced(make_project, db, body):
    project = make_project("sync")
    write_revision(project, "a4_flag", "a3_seed", "    op.add_column('users', sa.Column('flag', sa.Integer))", body)
    assert invoke_cli(project, "upgrade", "a3_seed", url=db.url).returncode == 0
    assert invoke_cli(project, "upgrade", url=db.url).returncode == 0
    journal_rows = len(db.journal())
    refused = rollback(project, db, "--code-head", "a3_seed", "--yes")
    assert refused.returncode == 5, refused.output
    assert "a4_flag cannot be rolled back" in refused.stderr and "--force" in refused.stderr
    assert "irreversible [warning]" in refused.stderr
    assert db.versions() == ["a4_flag"] and len(db.journal()) == journal_rows
    forced = rollback(project, db, "--force", "--yes")
    if body.strip() == "pass":  # the version row goes, the column stays: what --force was told
        assert forced.returncode == 0, forced.output
        assert db.versions() == ["a3_seed"]
    else:
        assert forced.returncode == 7, forced.output
        assert "NotImplementedError" in forced.stderr and db.versions() == ["a4_flag"]
        assert last_row(db)["outcome"] == "failed"


def test_rolling_back_below_what_the_running_code_needs_is_refused(make_project, db):
    project = make_project("sync")
    write_revision(project, "a4_expand", "a3_seed", "    op.add_column('users', sa.Column('x', sa.Integer))",
                   "    op.drop_column('users', 'x')", options='{"expand_only": True}')
    write_revision(project, "a5_used", "a4_expand", "    op.add_column('users', sa.Column('y', sa.Integer))",
                   "    op.drop_column('users', 'y')")
    assert invoke_cli(project, "upgrade", "a3_seed", url=db.url).returncode == 0
    assert invoke_cli(project, "upgrade", url=db.url).returncode == 0
    # The code at a5_used (these scripts) runs without a4_expand, not without a5_used.
    refused = rollback(project, db, "--yes")
    assert refused.returncode == 5, refused.output
    message = refused.stderr
    assert "The code at a5_used needs revision(s) a5_used" in message and "a4_expand," not in message
    assert "--code-head a3_seed" in message and db.versions() == ["a5_used"]
    # The expand-only revision alone may go while that code runs; requires= makes it needed too.
    assert rollback(project, db, "--steps", "1", "--code-head", "a4_expand", "--yes").returncode == 0
    needed = rollback(project, db, "--steps", "1", "--requires", "a4_expand", "--yes")
    assert needed.returncode == 5 and "needs revision(s) a4_expand" in needed.stderr
    assert rollback(project, db, "--steps", "1", "--yes").returncode == 0
    assert db.versions() == ["a3_seed"]


def test_the_plan_needs_yes_without_a_terminal_and_dry_run_changes_nothing(make_project, sqlite_db):
    project = make_project("merged")
    assert run_cli(project, "upgrade", "a3_seed", url=sqlite_db.url).returncode == 0
    assert run_cli(project, "upgrade", "heads", url=sqlite_db.url).returncode == 0
    rows = len(sqlite_db.journal())
    dry = run_cli(project, "rollback", "--code-head", "a3_seed", "--dry-run", url=sqlite_db.url)
    assert dry.returncode == 0, dry.output
    assert "c1  after the merge" in dry.stderr and "DROP TABLE audit" in dry.stderr
    assert "destructive-downgrade" in dry.stderr and "Dry run: nothing was changed." in dry.stderr
    unasked = run_cli(project, "rollback", "--code-head", "a3_seed", url=sqlite_db.url)
    assert unasked.returncode == 2 and "pass --yes" in unasked.stderr and "Traceback" not in unasked.output
    assert sqlite_db.versions() == ["c1"] and len(sqlite_db.journal()) == rows
    # On a terminal it asks; "n" changes nothing, "y" runs it.
    for answer, code, versions in (("n", 5, ["c1"]), ("y", 0, ["a3_seed"])):
        master, slave = pty.openpty()
        try:
            os.write(master, f"{answer}\n".encode())
            asked = subprocess.run(
                [*_cli(), "rollback", "--code-head", "a3_seed"], cwd=project, stdin=slave, capture_output=True,
                text=True, timeout=120, env=_env(sqlite_db.url),
            )
        finally:
            os.close(master)
            os.close(slave)
        assert asked.returncode == code, asked.stderr
        assert "Undo 3 revision(s) as planned above?" in asked.stderr
        assert sqlite_db.versions() == versions


def _cli() -> list[str]:
    import sys

    return [sys.executable, "-m", "alembic_deploy"]


def _env(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALEMBIC_DEPLOY_", "GITHUB_"))}
    env["DATABASE_URL"] = url
    return env


def test_sigterm_during_a_rollback_cancels_it_exits_9_and_journals_interrupted(request, make_project, db):
    project = make_project("sync")
    write_revision(project, "a4_slow_down", "a3_seed", "    op.create_table('t4', sa.Column('id', sa.Integer))",
                   f'    op.execute("{LONG_STATEMENT[db.backend]}")\n    op.drop_table("t4")')
    assert invoke_cli(project, "upgrade", "a3_seed", url=db.url).returncode == 0
    assert invoke_cli(project, "upgrade", url=db.url).returncode == 0
    proc = spawn_cli(project, "rollback", "--code-head", "a3_seed", "--yes", url=db.url)
    seen = ""
    while "Running downgrade a4_slow_down" not in seen:
        line = proc.stderr.readline()  # type: ignore[union-attr]
        assert line, f"exited ({proc.wait()}) before the downgrade started: {seen}"
        seen += line
    if db.backend != "sqlite":
        deadline = time.monotonic() + 60
        while not db.scalar(RUNNING_SQL[db.backend]):
            assert time.monotonic() < deadline, "the long statement never showed on the server"
            time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 9, seen + err
    assert "Interrupted by SIGTERM" in err and "Traceback" not in err
    row = last_row(db)
    assert (row["command"], row["outcome"]) == ("rollback", "interrupted")
    assert json.loads(row["revisions"])[-1] == {**json.loads(row["revisions"])[-1], "revision": "a4_slow_down",
                                                "status": "interrupted"}
    assert db.versions() == ["a4_slow_down"] and db.has_table("t4")
    if db.backend != "sqlite":
        assert not db.scalar(RUNNING_SQL[db.backend])


def test_a_journal_without_the_undoes_column_keeps_working_and_gains_it(make_project, db):
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", "a1_users", url=db.url).returncode == 0
    assert invoke_cli(project, "upgrade", url=db.url).returncode == 0
    with db.engine().begin() as conn:  # the journal as an earlier release made it
        conn.exec_driver_sql("ALTER TABLE alembic_deploy_history DROP COLUMN undoes")
    history = invoke_cli(project, "history", "--json", url=db.url)
    assert [d["undoes"] for d in checked(history.stdout, "history", 0)["deploys"]] == [None, None]
    assert invoke_cli(project, "status", url=db.url).returncode == 0
    done = rollback(project, db, "--force", "--yes")
    assert done.returncode == 0, done.output
    assert db.versions() == ["a1_users"] and last_row(db)["undoes"] == 2


_PLAIN_ALEMBIC = """
import sys
from alembic import command
from alembic.config import Config
config = Config("alembic.ini")
config.set_main_option("sqlalchemy.url", sys.argv[1].replace("%", "%%"))
getattr(command, sys.argv[2])(config, sys.argv[3])
"""


def _plain(project: Path, url: str, verb: str, target: str) -> None:
    """``alembic upgrade|downgrade TARGET`` without alembic-deploy, in a subprocess."""
    import sys

    subprocess.run([sys.executable, "-c", _PLAIN_ALEMBIC, url, verb, target], cwd=project, check=True,
                   capture_output=True, timeout=120, env=_env(url))


def test_rollback_to_ends_where_plain_alembic_downgrade_does(make_project, db):
    """The differential check: for each target, from the merged history at its head, plain `alembic
    downgrade TARGET` and `alembic-deploy rollback --to TARGET` leave the same version table and
    schema (the journal aside)."""
    project = make_project("merged")
    for target in ("-1", "a3_seed", "b2_audit", "base"):
        _plain(project, db.url, "upgrade", "heads")
        _plain(project, db.url, "downgrade", target)
        expected = (db.versions(), schema_snapshot(db.url))
        _plain(project, db.url, "upgrade", "heads")
        done = rollback(project, db, "--to", target, "--force", "--yes")
        assert done.returncode == 0, (target, done.output)
        assert (db.versions(), schema_snapshot(db.url)) == expected, target
        assert last_row(db)["outcome"] == "rolled-back"


@pytest.mark.parametrize("backend", ["sqlite", "mysql"])
def test_a_downgrade_that_fails_after_a_committed_statement_is_partly_rolled_back_until_repaired(
        request, make_project, backend):
    """MySQL/MariaDB and SQLite commit DDL statement by statement: a downgrade() that fails after
    its first statement leaves the revision partly rolled back; every later run refuses (exit 8)
    until `repair` settles it, each option the other way round from an upgrade's."""
    db = request.getfixturevalue(f"{backend}_db")
    project = make_project("sync")
    path = write_revision(
        project, "a4_two", "a3_seed",
        "    op.add_column('users', sa.Column('c1', sa.Integer))\n"
        "    op.create_table('t4', sa.Column('id', sa.Integer))",
        "    op.drop_table('t4')\n    op.execute('SELECT no_such_column FROM users')",
    )
    assert invoke_cli(project, "upgrade", "a3_seed", url=db.url).returncode == 0
    assert invoke_cli(project, "upgrade", url=db.url).returncode == 0
    failed = rollback(project, db, "--force", "--yes")
    assert failed.returncode == 7, failed.output
    assert "partly rolled back" in failed.stderr and not db.has_table("t4")
    assert db.versions() == ["a4_two"] and last_row(db)["outcome"] == "failed"
    for command in (("upgrade",), ("rollback", "--force", "--yes")):
        refused = invoke_cli(project, *command, url=db.url)
        assert refused.returncode == 8, refused.output
        assert "Revision a4_two is partly rolled back" in refused.stderr
    # Put back what ran with upgrade(): the revision is applied as before, and can be rolled back again.
    undone = invoke_cli(project, "repair", "--rollback-partial", url=db.url)
    assert undone.returncode == 0, undone.output
    assert db.has_table("t4") and db.versions() == ["a4_two"] and last_row(db)["outcome"] == "applied"
    # Fixed, it fails no more after its first statement: resume runs the rest and records it rolled back.
    assert rollback(project, db, "--force", "--yes").returncode == 7
    path.write_text(path.read_text().replace("op.execute('SELECT no_such_column FROM users')",
                                             "op.drop_column('users', 'c1')"))
    resumed = invoke_cli(project, "repair", "--resume", url=db.url)
    assert resumed.returncode == 0, resumed.output
    assert "recorded it as rolled back" in resumed.stderr
    assert db.versions() == ["a3_seed"] and not db.has_table("t4")
    assert last_row(db)["outcome"] == "rolled-back"
    assert invoke_cli(project, "upgrade", url=db.url).returncode == 0


def test_a_database_moved_while_the_plan_awaited_confirmation_is_not_rolled_back(make_project, sqlite_db):
    """The plan is made and confirmed before the lock; under the lock the version table must still be
    the one it was planned from. Another run moves it while the prompt waits: nothing runs (exit 5)."""
    db = sqlite_db
    project = make_project("merged")
    assert invoke_cli(project, "upgrade", "a3_seed", url=db.url).returncode == 0
    assert invoke_cli(project, "upgrade", "heads", url=db.url).returncode == 0
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen([*_cli(), "rollback", "--code-head", "a3_seed"], cwd=project, stdin=slave,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(db.url))
        seen = b""
        while b"as planned above?" not in seen:
            chunk = os.read(proc.stderr.fileno(), 4096)  # type: ignore[union-attr]
            assert chunk, f"exited ({proc.wait()}) before asking: {seen.decode()}"
            seen += chunk
        moved = invoke_cli(project, "rollback", "--steps", "1", "--force", "--yes", url=db.url)
        assert moved.returncode == 0, moved.output
        os.write(master, b"y\n")
        _out, err = proc.communicate(timeout=120)
    finally:
        os.close(master)
        os.close(slave)
    assert proc.returncode == 5, err.decode()
    assert "another deploy moved it in between" in err.decode()
    assert db.versions() == ["m1"] and last_row(db)["outcome"] == "refused"


def test_the_last_deploy_is_the_last_one_of_the_environment_given(make_project, sqlite_db):
    db = sqlite_db
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", "a1_users", "--env", "dev", url=db.url).returncode == 0
    assert invoke_cli(project, "upgrade", "--env", "qa", url=db.url).returncode == 0
    none = rollback(project, db, "--env", "beta", "--force", "--yes")
    assert none.returncode == 5 and "for environment 'beta'" in none.stderr
    done = rollback(project, db, "--env", "qa", "--force", "--yes")
    assert done.returncode == 0, done.output
    assert db.versions() == ["a1_users"] and last_row(db)["environment"] == "qa"
