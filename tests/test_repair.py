"""``alembic-deploy repair``: each option refuses, with the reason, whenever the recorded progress
and the database or the scripts disagree; nothing is applied twice; a repair that is itself
killed is found and repaired again."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from alembic_deploy.backends.sqlite import LOCK_SUFFIX, ProgressLog
from helpers import Database, drop_all, plain_alembic_upgrade, run_cli, schema_snapshot, spawn_cli
from test_partial import drop_stray_table, make_partial


def replace_in_revision(project, name: str, old: str, new: str) -> None:
    path = project / "migrations" / "versions" / name
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))


def test_repair_with_nothing_partly_applied_is_a_journaled_noop(sqlite_db, make_project):
    project = make_project("partial")
    assert run_cli(project, "upgrade", url=sqlite_db.url).returncode == 0
    for args in (("repair",), ("repair", "--resume")):
        done = run_cli(project, *args, url=sqlite_db.url)
        assert done.returncode == 0, done.output
        assert "Nothing to repair" in done.stderr
    assert [(r["command"], r["outcome"]) for r in sqlite_db.journal()][-2:] == [("repair", "noop")] * 2


def test_repair_without_an_option_describes_the_revision_and_changes_nothing(sqlite_db, make_project):
    project = make_project("partial")
    assert make_partial(project, sqlite_db).returncode == 7
    before = schema_snapshot(sqlite_db.url)
    shown = run_cli(project, "repair", url=sqlite_db.url)
    assert shown.returncode == 8, shown.output
    assert "Revision a4_profiles is partly applied" in shown.stderr and "  options: --resume" in shown.stderr
    both = run_cli(project, "repair", "--resume", "--mark-applied", url=sqlite_db.url)
    assert both.returncode == 2 and "Choose one of" in both.stderr
    # The stray table is still there: resuming would run into it, so it is refused.
    resume = run_cli(project, "repair", "--resume", url=sqlite_db.url)
    assert resume.returncode == 5, resume.output
    assert "Cannot resume revision a4_profiles: the schema already has what statement 3 creates" in resume.stderr
    assert "Nothing was changed" in resume.stderr
    assert schema_snapshot(sqlite_db.url) == before
    assert sqlite_db.versions() == ["a3_seed"]
    assert [r["outcome"] for r in sqlite_db.journal() if r["command"] == "repair"] == ["refused", "refused"]


def test_resume_refuses_when_the_revision_no_longer_renders_what_ran(sqlite_db, make_project):
    project = make_project("partial")
    assert make_partial(project, sqlite_db).returncode == 7
    drop_stray_table(sqlite_db)
    # Someone edits the revision after it half ran: its first statement is no longer what ran.
    replace_in_revision(project, "a4_profiles.py", 'sa.Column("nickname", sa.String(50))',
                        'sa.Column("nickname", sa.String(80))')
    resume = run_cli(project, "repair", "--resume", url=sqlite_db.url)
    assert resume.returncode == 5, resume.output
    assert "statement 1 as it ran (ALTER TABLE users ADD COLUMN nickname VARCHAR(50))" in resume.stderr
    assert "differs from what the revision renders offline" in resume.stderr
    assert sqlite_db.versions() == ["a3_seed"]
    # Undoing is matched by the objects the statements created, which did not change.
    rollback = run_cli(project, "repair", "--rollback-partial", url=sqlite_db.url)
    assert rollback.returncode == 0, rollback.output
    assert "nickname" not in {c for (c, *_rest) in schema_snapshot(sqlite_db.url)["users"]["columns"]}


def test_rollback_refuses_when_downgrade_has_no_undo_for_an_applied_statement(sqlite_db, make_project):
    project = make_project("partial")
    assert make_partial(project, sqlite_db).returncode == 7
    replace_in_revision(project, "a4_profiles.py", '    op.drop_index("ix_users_nickname", table_name="users")\n', "")
    rollback = run_cli(project, "repair", "--rollback-partial", url=sqlite_db.url)
    assert rollback.returncode == 5, rollback.output
    assert "downgrade() has no statement that undoes statement 2 (CREATE INDEX ix_users_nickname" in rollback.stderr
    assert "ix_users_nickname" in {i[0] for i in schema_snapshot(sqlite_db.url)["users"]["indexes"]}


def test_mark_applied_says_what_the_schema_does_not_show_done(sqlite_db, make_project):
    project = make_project("partial")
    assert make_partial(project, sqlite_db).returncode == 7
    drop_stray_table(sqlite_db)
    marked = run_cli(project, "repair", "--mark-applied", url=sqlite_db.url)
    assert marked.returncode == 0, marked.output
    assert "warning: the schema does not show statement 3 done (table profiles missing)" in marked.stderr
    assert "warning: the schema does not show statement 4 done (index ix_profiles_user_id missing)" in marked.stderr
    assert sqlite_db.versions() == ["a4_profiles"]


@pytest.fixture(params=["mysql", "sqlite"])
def nontx_db(request: pytest.FixtureRequest) -> Database:
    return request.getfixturevalue("mysql_db" if request.param == "mysql" else "sqlite_db")


def latest_progress(db: Database) -> tuple[dict, dict | None]:
    """The newest journal row and its progress (None before it has any)."""
    if not db.has_table("alembic_deploy_history"):
        return {}, None
    rows = db.journal()
    if not rows:
        return {}, None
    row = rows[-1]
    progress = json.loads(row["progress"]) if row["progress"] else None
    if db.backend == "sqlite":  # an upgrade keeps its progress in the lock file while it migrates
        lock_file = Path(make_url(db.url).database + LOCK_SUFFIX)
        lines = lock_file.read_text().splitlines()[1:] if lock_file.exists() else []
        record = ProgressLog.parse(lines[-1]) if lines else None
        if record is not None and record.get("journal_id") == row["id"]:
            progress = record["progress"]
    elif db.backend == "mysql":  # newer records in the MEMORY table, once the first run created it
        try:
            newer = db.scalar("SELECT progress FROM alembic_deploy_history_progress WHERE journal_id = :i", i=row["id"])
        except sa.exc.ProgrammingError:
            newer = None
        if newer is not None:
            progress = json.loads(newer)
    return row, progress


def pause_gates(folder: Path, *opened: str) -> Path:
    """A folder of gates for the slow project's pauses (env ``TEST_PAUSE_GATES``): the run stops in
    pause k of a revision until ``<revision>.<k>`` exists; ``opened`` are let through at once."""
    folder.mkdir(parents=True)
    for gate in opened:
        (folder / gate).touch()
    return folder


def kill_at_pause(proc, gates: Path, gate: str, signum: int = signal.SIGKILL, timeout: float = 120) -> None:
    """Signal (SIGKILL) ``proc`` once it is held in the pause ``gate`` names (``b1_accounts.2``): every
    statement before that pause has run and been journaled, none after it has begun. A signal the
    tool handles (SIGTERM) opens the gate after it is sent, so the run reaches its next statement."""
    entered = gates / f"{gate}.entered"
    deadline = time.monotonic() + timeout
    while not entered.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"the run never reached pause {gate}"
        time.sleep(0.01)  # polling for the file, not a guess at a duration
    os.kill(proc.pid, signum)
    if signum != signal.SIGKILL:  # the tool acts on SIGTERM at the next statement: let it go on to it
        (gates / gate).touch()
    proc.wait(timeout=60)


def kill_once_column_exists(proc, db: Database, table: str, column: str, timeout: float = 300) -> None:
    """SIGKILL ``proc`` as soon as another connection sees ``table.column``: the statement adding it
    has committed, and the run is in the pause after it."""
    deadline = time.monotonic() + timeout
    engine = sa.create_engine(db.url, poolclass=sa.pool.NullPool)
    try:
        while column not in {c["name"] for c in sa.inspect(engine).get_columns(table)}:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, f"the run never added {table}.{column}"
            time.sleep(0.01)  # polling the schema, not a guess at a duration
    finally:
        engine.dispose()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def test_sigterm_after_a_committed_statement_exits_9_and_the_next_run_exits_8(nontx_db, make_project, tmp_path):
    project = make_project("slow")
    gates = pause_gates(tmp_path / "upgrade")
    upgrade = spawn_cli(project, "upgrade", url=nontx_db.url, env={"TEST_PAUSE_GATES": str(gates)})
    kill_at_pause(upgrade, gates, "b1_accounts.1", signum=signal.SIGTERM)
    assert upgrade.returncode == 9, upgrade.communicate()
    assert [r["outcome"] for r in nontx_db.journal()] == ["interrupted"]
    refused = run_cli(project, "upgrade", url=nontx_db.url)
    assert refused.returncode == 8, refused.output
    assert "Revision b1_accounts is partly applied: statement(s) 1 of its 5 were committed" in refused.stderr, (
        refused.stderr)
    assert "(journal #1, interrupted)" in refused.stderr


def test_after_a_kill_mid_revision_the_previous_release_refuses_rather_than_a_silent_noop(nontx_db, make_project,
                                                                                        tmp_path):
    """The deploy is rolled back to the previous release, whose scripts end one revision earlier,
    after the new one was killed inside that revision: the database's version table says exactly
    the old release's head, so only the kill's progress record tells that the newer revision had
    started. The old release must refuse (exit 8), not report a no-op over a half-applied revision."""
    db = nontx_db
    project = make_project("slow")
    # b2_orders: CREATE TABLE, pause, CREATE INDEX, pause, INSERT, pause. Killed in the first pause.
    gates = pause_gates(tmp_path / "upgrade", "b1_accounts.1", "b1_accounts.2")
    upgrade = spawn_cli(project, "upgrade", url=db.url, env={"TEST_PAUSE_GATES": str(gates)})
    kill_at_pause(upgrade, gates, "b2_orders.1")
    assert db.versions() == ["b1_accounts"] and db.has_table("orders")

    versions = project / "migrations" / "versions"  # the previous release: b1_accounts is its head
    for path in (*versions.glob("b2_*.py"), *versions.glob("b3_*.py")):
        path.unlink()
    shutil.rmtree(versions / "__pycache__", ignore_errors=True)  # absent when bytecode is not written
    refused = run_cli(project, "upgrade", url=db.url)
    assert refused.returncode == 8, refused.output
    assert "Revision b2_orders is partly applied" in refused.stderr
    assert "these migration scripts do not contain b2_orders" in refused.stderr
    assert "ran: 1. CREATE TABLE orders" in refused.stderr
    assert "Traceback" not in refused.output
    assert db.versions() == ["b1_accounts"] and db.has_table("orders")
    assert [r["outcome"] for r in db.journal()] == ["crashed", "refused"]


def test_a_repair_killed_midway_is_found_and_repaired_again(nontx_db, make_project, tmp_path):
    db = nontx_db
    project = make_project("slow")
    plain_alembic_upgrade(project, db.url)
    reference = schema_snapshot(db.url)
    drop_all(db.url)

    # b1_accounts: CREATE TABLE, pause, ADD COLUMN, pause, CREATE UNIQUE INDEX. Killed in the
    # pause after the first.
    gates = pause_gates(tmp_path / "upgrade")
    upgrade = spawn_cli(project, "upgrade", url=db.url, env={"TEST_PAUSE_GATES": str(gates)})
    kill_at_pause(upgrade, gates, "b1_accounts.1")
    refused = run_cli(project, "upgrade", url=db.url)
    assert refused.returncode == 8, refused.output
    assert "crashed while applying revision b1_accounts, leaving it partly applied" in refused.stderr

    # The repair is killed too, in the pause after ADD COLUMN (the second change of the revision).
    # A repair runs the statements the revision renders, not its Python, so no gate holds it: its
    # pauses last long enough (3 s) that the kill lands in the one after ADD COLUMN, seen done. The
    # runs after it render the same pauses, or resuming would find statement 2 changed.
    long_pauses = {"TEST_PAUSE_SECONDS": "3"}
    repair = spawn_cli(project, "repair", "--resume", url=db.url, env=long_pauses)
    kill_once_column_exists(repair, db, "accounts", "email")
    row = db.journal()[-1]
    assert row["command"] == "repair"

    again = run_cli(project, "repair", url=db.url, env=long_pauses)
    assert again.returncode == 8, again.output
    assert "Revision b1_accounts is partly applied: statement(s) 1, 3 of its 5" in again.stderr, again.stderr
    assert f"left by: journal #{row['id']}: repair on host" in again.stderr and "crashed" in again.stderr
    resumed = run_cli(project, "repair", "--resume", url=db.url, env=long_pauses)
    assert resumed.returncode == 0, resumed.output
    assert "ran statement(s) 4, 5 and recorded it as applied" in resumed.stderr
    final = run_cli(project, "upgrade", url=db.url)
    assert final.returncode == 0, final.output
    assert db.versions() == ["b3_notes"]
    assert schema_snapshot(db.url) == reference
    assert db.scalar("SELECT COUNT(*) FROM accounts") == 1
