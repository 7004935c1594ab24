"""``alembic-deploy repair``: each option refuses, with the reason, whenever the recorded progress
and the database or the scripts disagree; nothing is applied twice; a repair that is itself
killed is found and repaired again."""

from __future__ import annotations

import json
import os
import re
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


#: How long after a statement of the slow project is journaled as begun a kill lands in the ~0.2 s
#: pause that follows it (the statement itself takes milliseconds).
PAUSE_LANDING = 0.06


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


def kill_when(
    proc, db: Database, done: int | None = None, timeout: float = 60, signum: int = signal.SIGKILL,
    started: int | None = None, delay: float = 0.0, revision: str | None = None,
) -> dict:
    """Signal ``proc`` (SIGKILL) as soon as the journal shows ``done`` statements of the revision in
    flight committed, or statement number ``started`` begun, then ``delay`` seconds later; returns
    that row.

    A commit is journaled only with the next write (after the pause that follows it, or before the
    next statement that commits by itself), so ``done`` is seen at most a few milliseconds before
    the statement after it ends. ``started`` with a ``delay`` lands the signal inside the pause
    that follows statement ``started`` (the slow project's pauses last ~0.2 s). ``revision``: only
    once that revision is in flight (default: whichever is)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row, progress = latest_progress(db)
        if progress and progress["revisions"] and revision in (None, progress["revisions"][0]["revision"]):
            statements = progress["revisions"][0]["statements"]
            committed = sum(1 for s in statements if s["committed"] and s["kind"] != "read")
            if (done is not None and committed >= done) or (
                started is not None and any(s["n"] >= started for s in statements)
            ):
                time.sleep(delay)
                os.kill(proc.pid, signum)
                proc.wait(timeout=30)
                return row
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.005)  # the kill must land before the next statement ends
    raise AssertionError("the run never got that far")


def test_sigterm_after_a_committed_statement_exits_9_and_the_next_run_exits_8(nontx_db, make_project):
    project = make_project("slow")
    upgrade = spawn_cli(project, "upgrade", url=nontx_db.url)
    kill_when(upgrade, nontx_db, done=1, signum=signal.SIGTERM)
    assert upgrade.returncode == 9, upgrade.communicate()
    assert [r["outcome"] for r in nontx_db.journal()] == ["interrupted"]
    refused = run_cli(project, "upgrade", url=nontx_db.url)
    assert refused.returncode == 8, refused.output
    # Statement 1's commit is journaled with the next self-committing statement (3, a fast ADD
    # COLUMN), so the signal lands in statement 3 or in the pause after it.
    assert re.search(r"Revision b1_accounts is partly applied: statement\(s\) 1(, 3)? of its 5 were committed",
                     refused.stderr), refused.stderr
    assert "(journal #1, interrupted)" in refused.stderr


def test_after_a_kill_mid_revision_the_previous_release_refuses_rather_than_a_silent_noop(nontx_db, make_project):
    """The deploy is rolled back to the previous release, whose scripts end one revision earlier,
    after the new one was killed inside that revision: the database's version table says exactly
    the old release's head, so only the kill's progress record tells that the newer revision had
    started. The old release must refuse (exit 8), not report a no-op over a half-applied revision."""
    db = nontx_db
    project = make_project("slow")
    # b2_orders: CREATE TABLE, pause, CREATE INDEX, pause, INSERT, pause. Killed after the first.
    upgrade = spawn_cli(project, "upgrade", url=db.url)
    kill_when(upgrade, db, started=1, delay=PAUSE_LANDING, revision="b2_orders")
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


def test_a_repair_killed_midway_is_found_and_repaired_again(nontx_db, make_project):
    db = nontx_db
    project = make_project("slow")
    plain_alembic_upgrade(project, db.url)
    reference = schema_snapshot(db.url)
    drop_all(db.url)

    # b1_accounts: CREATE TABLE, pause, ADD COLUMN, pause, CREATE UNIQUE INDEX. Killed in the
    # pause after the first.
    upgrade = spawn_cli(project, "upgrade", url=db.url)
    kill_when(upgrade, db, started=1, delay=PAUSE_LANDING)
    refused = run_cli(project, "upgrade", url=db.url)
    assert refused.returncode == 8, refused.output
    assert "crashed while applying revision b1_accounts, leaving it partly applied" in refused.stderr

    # The repair is killed too, in the pause after ADD COLUMN (the second change of the revision).
    repair = spawn_cli(project, "repair", "--resume", url=db.url)
    row = kill_when(repair, db, started=3, delay=PAUSE_LANDING)
    assert row["command"] == "repair"

    again = run_cli(project, "repair", url=db.url)
    assert again.returncode == 8, again.output
    assert "Revision b1_accounts is partly applied: statement(s) 1, 3 of its 5" in again.stderr, again.stderr
    assert f"left by: journal #{row['id']}: repair on host" in again.stderr and "crashed" in again.stderr
    resumed = run_cli(project, "repair", "--resume", url=db.url)
    assert resumed.returncode == 0, resumed.output
    assert "ran statement(s) 4, 5 and recorded it as applied" in resumed.stderr
    final = run_cli(project, "upgrade", url=db.url)
    assert final.returncode == 0, final.output
    assert db.versions() == ["b3_notes"]
    assert schema_snapshot(db.url) == reference
    assert db.scalar("SELECT COUNT(*) FROM accounts") == 1
