"""The deploy journal (a `running` row first, completed at the end, failures recorded), and the
verbs that read it: `history` and `status`, as text for people and --json for machines."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

import alembic_deploy
from helpers import invoke_cli, journal_on_lock_session, spawn_cli

GITHUB = {
    "GITHUB_SHA": "9fceb02d0ae598e95dc970b74767f19372d61af8",
    "GITHUB_ACTOR": "octocat",
    "GITHUB_RUN_ID": "1234567",
    "GITHUB_REPOSITORY": "acme/shop",
    "GITHUB_SERVER_URL": "https://github.com",
}
RUN_URL = "https://github.com/acme/shop/actions/runs/1234567"


def _wait_for(path, proc) -> None:
    deadline = time.monotonic() + 120
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def test_a_running_row_is_written_first_then_completed(db, make_project, tmp_path):
    gate = tmp_path / "gate"
    proc = spawn_cli(make_project("gated"), "upgrade", "--env", "qa", "--json", url=db.url,
                     env={"TEST_GATE_FILE": str(gate), **GITHUB})
    try:
        _wait_for(tmp_path / "gate.entered", proc)
        [running] = db.journal()
        assert running["outcome"] == "running"
        assert running["finished_at"] is None and running["pid"] == proc.pid
        entered_at, opened_at = (tmp_path / "gate.entered").stat().st_mtime, time.time()
        gate.touch()
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    [row] = db.journal()
    assert row["id"] == running["id"]
    assert row["outcome"] == "applied" and row["command"] == "upgrade" and row["target"] == "head"
    assert (row["from_revisions"], row["to_revisions"]) == ("", "a4_gated")
    assert row["finished_at"] is not None and row["duration_seconds"] > 0
    assert (row["host"], row["pid"], row["environment"]) == (socket.gethostname(), proc.pid, "qa")
    assert (row["git_sha"], row["actor"], row["run_url"]) == (GITHUB["GITHUB_SHA"], "octocat", RUN_URL)
    assert row["tool_version"] == alembic_deploy.__version__ and row["alembic_version"]
    assert row["db_wait_seconds"] is not None and row["lock_wait_seconds"] is not None and row["error"] is None

    revisions = json.loads(row["revisions"])
    assert [r["revision"] for r in revisions] == ["a1_users", "a2_users_email_index", "a3_seed", "a4_gated"]
    assert all(r["status"] == "applied" and r["duration"] >= 0 and r["description"] for r in revisions)
    # a4's own time includes its wait at the gate (less the file clock's coarse granularity).
    assert revisions[-1]["duration"] >= opened_at - entered_at - 0.02
    assert sum(r["duration"] for r in revisions) <= row["duration_seconds"]
    assert json.loads(out)["journal_id"] == row["id"]


def test_custom_journal_table(sqlite_db, make_project):
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", "--journal-table", "deploy_log", url=sqlite_db.url).returncode == 0
    assert [r["outcome"] for r in sqlite_db.journal("deploy_log")] == ["applied"]
    assert not sqlite_db.has_table("alembic_deploy_history")
    history = invoke_cli(project, "history", "--journal-table", "deploy_log", "--json", url=sqlite_db.url)
    assert [r["outcome"] for r in json.loads(history.stdout)["deploys"]] == ["applied"]


# -- history ------------------------------------------------------------------------------------
def test_history_before_any_deploy(sqlite_db, make_project):
    project = make_project("sync")
    text = invoke_cli(project, "history", url=sqlite_db.url)
    assert text.returncode == 0 and "No deploys recorded yet." in text.stdout
    as_json = invoke_cli(project, "history", "--json", url=sqlite_db.url)
    assert json.loads(as_json.stdout)["deploys"] == []


def test_history_table_and_json_newest_first(db, make_project):
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", "--env", "beta", url=db.url, env=GITHUB).returncode == 0
    assert invoke_cli(project, "upgrade", "--env", "beta", url=db.url).returncode == 0

    table = invoke_cli(project, "history", url=db.url)
    assert table.returncode == 0, table.output
    header, newest, oldest = table.stdout.strip().splitlines()
    assert header.split() == ["id", "started", "outcome", "from", "to", "secs", "env", "host:pid", "git"]
    assert "noop" in newest and "a3_seed" in newest and "beta" in newest
    assert "applied" in oldest and GITHUB["GITHUB_SHA"][:10] in oldest and socket.gethostname() in oldest

    [newest_row] = json.loads(invoke_cli(project, "history", "--json", "--limit", "1", url=db.url).stdout)["deploys"]
    assert newest_row["outcome"] == "noop" and newest_row["environment"] == "beta"
    assert newest_row["id"] == max(row["id"] for row in db.journal())


# -- status ---------------------------------------------------------------------------------------
def test_status_shows_current_heads_and_pending(db, make_project):
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", "a1_users", url=db.url).returncode == 0

    text = invoke_cli(project, "status", url=db.url)
    assert text.returncode == 0, text.output
    lines = dict(line.split(":", 1) for line in text.stdout.splitlines() if line and not line.startswith((" ", "id")))
    assert lines["current"].strip() == "a1_users"
    assert lines["heads"].strip() == "a3_seed"
    assert lines["pending"].strip() == "2"
    assert "  a2_users_email_index  index users.email" in text.stdout
    assert "last deploys:" in text.stdout

    status = json.loads(invoke_cli(project, "status", "--json", url=db.url).stdout)
    assert status["current"] == ["a1_users"] and status["heads"] == ["a3_seed"]
    assert [p["revision"] for p in status["pending"]] == ["a2_users_email_index", "a3_seed"]
    assert status["unknown"] == [] and status["backend"] in ("sqlite", "postgresql", "mysql", "mariadb")
    assert [d["outcome"] for d in status["last_deploys"]] == ["applied"]


def test_status_names_a_revision_the_code_does_not_know(sqlite_db, make_project):
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", url=sqlite_db.url).returncode == 0
    with sqlite_db.engine().begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'f00dcafe0042'")
    text = invoke_cli(project, "status", url=sqlite_db.url)
    assert text.returncode == 0, text.output
    assert "unknown:  f00dcafe0042 (the database is ahead of this code)" in text.stdout
    status = json.loads(invoke_cli(project, "status", "--json", url=sqlite_db.url).stdout)
    assert status["unknown"] == ["f00dcafe0042"] and status["pending"] == []


def test_status_and_history_never_show_the_password(password_pg_db, make_project):
    password_db = password_pg_db
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", url=password_db.url).returncode == 0
    for args in (("status",), ("history", "--json")):
        run = invoke_cli(project, *args, url=password_db.url)
        assert run.returncode == 0, run.output
        assert password_db.password not in run.output and "Traceback" not in run.output
        if args == ("status",):
            assert ":***@127.0.0.1" in run.stdout


def test_status_of_an_empty_database(sqlite_db, make_project):
    status = json.loads(invoke_cli(make_project("sync"), "status", "--json", url=sqlite_db.url).stdout)
    assert status["current"] == [] and len(status["pending"]) == 3 and status["last_deploys"] == []
    assert not sqlite_db.has_table("alembic_deploy_history"), "status must not write"


# -- progress records that need only survive this process (MySQL/MariaDB) ----------------------------
_KILLED_AFTER_SENDING = """
import os, signal, sys
sys.path.insert(0, sys.argv[2])
from helpers import journal_on_lock_session

engine, journal, row = journal_on_lock_session(sys.argv[1])
journal.progress(row, '{"n":9}', durable=False)
print(row, flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # before the reply is read
"""


def _seen(url: str, sql: str, row: int, expected: object) -> bool:
    """Whether another session reads ``expected`` from ``sql`` (bound to ``row``) within 10 s."""
    other = create_engine(url, poolclass=NullPool, future=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with other.connect() as conn:
                if conn.execute(text(sql), {"i": row}).scalar() == expected:
                    return True
            time.sleep(0.02)
        return False
    finally:
        other.dispose()


VOLATILE = "SELECT progress FROM alembic_deploy_history_progress WHERE journal_id = :i"
ROW = "SELECT progress FROM alembic_deploy_history WHERE id = :i"


def test_a_record_that_need_not_be_durable_goes_to_the_memory_table_sent_ahead(mysql_db):
    engine, journal, row = journal_on_lock_session(mysql_db.url)
    try:
        assert mysql_db.scalar("SELECT ENGINE FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                               "AND TABLE_NAME = 'alembic_deploy_history_progress'") == "MEMORY"
        journal.progress(row, '{"n":1}', durable=False)
        assert _seen(mysql_db.url, VOLATILE, row, b'{"n":1}')  # committed, its reply still unread
        # Anything else on the session reads that reply first, or it would take it for its own.
        assert journal.connection.exec_driver_sql("SELECT 7").scalar() == 7
        # A durable record goes to the journal row and removes the older volatile one.
        journal.progress(row, '{"n":2}')
        assert _seen(mysql_db.url, ROW, row, '{"n":2}') and _seen(mysql_db.url, VOLATILE, row, None)
        # A record sent ahead that fails raises where its reply is read.
        with engine.connect() as other:
            other.exec_driver_sql("RENAME TABLE alembic_deploy_history_progress TO renamed_progress")
        journal.progress(row, '{"n":3}', durable=False)
        with pytest.raises(Exception, match="doesn't exist"):
            journal.settle()
    finally:
        journal.connection.close()
        engine.dispose()


def test_a_record_sent_ahead_survives_the_process_killed_and_the_next_holder_adopts_it(mysql_db):
    proc = subprocess.run([sys.executable, "-c", _KILLED_AFTER_SENDING, mysql_db.url, str(Path(__file__).parent)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    row = int(proc.stdout)
    assert _seen(mysql_db.url, VOLATILE, row, b'{"n":9}')
    engine, journal, _ = journal_on_lock_session(mysql_db.url)
    try:
        journal.adopt_volatile()  # what recovery does first, holding the lock
    finally:
        journal.connection.close()
        engine.dispose()
    assert _seen(mysql_db.url, ROW, row, json.dumps({"n": 9})) and _seen(mysql_db.url, VOLATILE, row, None)
