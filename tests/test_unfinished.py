"""What a user reads after a revision failed: the exit-7 message says what the next deploy will do,
``status`` reports a partly applied revision and exits with the code a deploy would (8), and the
exit-8 message lists each statement once. After a kill -9, ``status`` tells a run that died from
one migrating now, and names the revision a killed run left partly applied, as the next deploy
will (exit 8), without settling anything itself."""

from __future__ import annotations

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest

from helpers import Database, invoke_cli, run_cli, spawn_cli
from lockscene import write_revision
from test_json_output import checked
from test_partial import make_partial

#: What the exit-7 message says the next deploy will do: refuse until repair where statements
#: committed one by one (MariaDB), redeploy where the revision's transaction took them back.
NEXT_STEP = {
    "mysql": "it is partly applied. The next deploy will refuse (exit 8) until it is settled: run "
             "`alembic-deploy repair`",
    "postgresql": "Its transaction was rolled back, so nothing of it was left behind; the database is at "
                  "a3_seed. Fix the migration and deploy again; run with --debug for the traceback.",
}


@pytest.mark.parametrize("backend", ["mysql", "postgresql"])
def test_after_a_failed_revision_every_message_tells_what_the_next_deploy_does(request, make_project, backend):
    db = request.getfixturevalue("mysql_db" if backend == "mysql" else "pg_db")
    project = make_project("partial")
    failed = make_partial(project, db)
    assert failed.returncode == 7, failed.output
    assert NEXT_STEP[backend] in failed.stderr
    assert ("Fix the migration and deploy again" in failed.stderr) is (backend == "postgresql")
    status = invoke_cli(project, "status", url=db.url)
    assert "pending:  2" in status.stdout  # a4_profiles (partly applied on MariaDB) and a5_tags
    if backend == "postgresql":
        assert status.returncode == 0, status.output
        assert "unfinished" not in status.output and "repair" not in failed.stderr
        return

    assert status.returncode == 8, status.output
    assert "unfinished: revision a4_profiles is partly applied (journal #2); a deploy refuses (exit 8)" in status.stdout
    assert "error: Revision a4_profiles is partly applied: statement(s) 1, 2 of its 4 were committed" in status.stderr
    as_json = invoke_cli(project, "status", "--json", url=db.url)
    assert as_json.returncode == 8, as_json.output
    document = checked(as_json.stdout, "status", 8)
    unfinished = document["unfinished"]
    assert (unfinished["state"], unfinished["revision"], unfinished["exit_code"]) == ("partial", "a4_profiles", 8)
    assert document["error"]["kind"] == "partial-migration" and "not run" in document["error"]["fields"]

    deploy = invoke_cli(project, "upgrade", url=db.url)
    assert deploy.returncode == 8  # the code status announced
    listed = [line for line in deploy.stderr.splitlines() if line.startswith(("  ran:", "  failed:", "  not run:"))]
    numbers = [n for line in listed for n in re.findall(r"(?:: |; )(\d+)\. ", line)]
    assert sorted(numbers) == ["1", "2", "3", "4"], listed  # each statement once

    # Settled: status is back to exit 0 with nothing unfinished.
    with db.engine().begin() as conn:
        conn.exec_driver_sql("DROP TABLE profiles")
    assert invoke_cli(project, "repair", "--resume", url=db.url).returncode == 0
    settled = invoke_cli(project, "status", url=db.url)
    assert settled.returncode == 0, settled.output
    assert "unfinished" not in settled.output


@pytest.fixture(params=["sqlite", "mysql"])
def nontx_db(request: pytest.FixtureRequest) -> Database:
    """Backends whose DDL commits statement by statement (SQLite under pysqlite, MariaDB)."""
    return request.getfixturevalue(f"{request.param}_db")


def halted_deploy(project: Path, db: Database, revision: str, before_halt: str) -> subprocess.Popen:
    """An ``upgrade`` stopped inside ``revision`` (after ``before_halt`` ran) until killed: it
    says so on stderr, and this returns once it did."""
    write_revision(project, revision, "a3_seed", (
        "    import sys\n"
        f"{before_halt}"
        f"    sys.stderr.write('{revision}: halted\\n')\n"
        "    sys.stderr.flush()\n"
        "    sys.stdin.read()\n"
        "    op.create_table('after_halt', sa.Column('id', sa.Integer))"
    ))
    proc = spawn_cli(project, "upgrade", url=db.url, stdin=subprocess.PIPE)
    for line in proc.stderr:  # type: ignore[union-attr]
        if line.startswith(f"{revision}: halted"):
            return proc
    pytest.fail(f"the revision never started: exit {proc.wait()}")


def kill_9(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


@pytest.mark.slow
def test_status_after_a_kill_9_mid_revision_says_the_run_crashed_and_the_next_deploy_refuses(nontx_db, make_project):
    db = nontx_db
    project = make_project("sync")
    assert run_cli(project, "upgrade", url=db.url).returncode == 0
    # Its first statement commits by itself; the process dies before the second.
    kill_9(halted_deploy(project, db, "a4_halt", "    op.add_column('users', sa.Column('nickname', sa.String(50)))\n"))

    status = run_cli(project, "status", url=db.url)
    assert status.returncode == 8, status.output
    assert "Traceback" not in status.output
    assert "unfinished: revision a4_halt is partly applied (journal #2)" in status.stdout
    error = status.stderr[status.stderr.index("error: "):]
    assert error.startswith("error: The previous run crashed while applying revision a4_halt "
                            "(journal #2: upgrade on host")
    assert "The next deploy will refuse (exit 8) until it is repaired." in error
    assert "alembic-deploy repair" in error and "--rollback-partial" in error
    assert "ran: 1. ALTER TABLE users ADD" in error
    document = checked(run_cli(project, "status", "--json", url=db.url).stdout, "status", 8)
    assert (document["unfinished"]["state"], document["unfinished"]["revision"]) == ("partial", "a4_halt")
    assert document["error"]["kind"] == "partial-migration"
    # status settled nothing: the row is still the dead run's, and the deploy says what status said.
    assert [row["outcome"] for row in db.journal()] == ["applied", "running"]
    deploy = run_cli(project, "upgrade", url=db.url)
    assert deploy.returncode == 8, deploy.output
    assert "Revision a4_halt is partly applied" in deploy.stderr
    assert [row["outcome"] for row in db.journal()][:2] == ["applied", "crashed"]


@pytest.mark.slow
def test_status_tells_a_deploy_migrating_now_from_one_killed_before_any_change(db, make_project):
    project = make_project("sync")
    assert run_cli(project, "upgrade", url=db.url).returncode == 0
    proc = halted_deploy(project, db, "a4_halt", "")
    try:
        running = run_cli(project, "status", "--json", url=db.url)
        assert running.returncode == 0, running.output
        unfinished = checked(running.stdout, "status", 0)["unfinished"]
        assert unfinished["state"] == "running" and "A deploy is migrating now" in unfinished["message"]
        assert "holds the migration lock" in unfinished["message"]
    finally:
        kill_9(proc)

    crashed = run_cli(project, "status", url=db.url)
    assert crashed.returncode == 0, crashed.output
    assert "unfinished: journal #2 crashed; the next deploy records it and migrates" in crashed.stdout
    assert "note: The previous run crashed (journal #2: upgrade on host" in crashed.stderr
    assert "it left no revision partly applied" in crashed.stderr
    (project / "migrations" / "versions" / "a4_halt.py").write_text(
        (project / "migrations" / "versions" / "a4_halt.py").read_text().replace("sys.stdin.read()", "pass"))
    deploy = run_cli(project, "upgrade", url=db.url)
    assert deploy.returncode == 0, deploy.output
    assert "crashed" in deploy.stderr
    assert db.versions() == ["a4_halt"]
