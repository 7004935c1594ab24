"""Another process holding a SQLite database in a write transaction for longer than the deploy
waits: the run ends with exit 6 (a lock not acquired within --lock-timeout-wait) and one paragraph
naming the database and what to do, never an internal error; nothing is journaled that did not
happen, and once the writer is gone the next deploy migrates as if the failed one never ran.

The writer is a real second process; the test waits for its readiness line, not for a time.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from helpers import assert_failed_cleanly, run_cli, spawn_cli

#: A second process: takes the database with ``BEGIN <mode>``, says so, holds it until stdin closes.
_WRITER = """
import sqlite3, sys
writer = sqlite3.connect(sys.argv[1], isolation_level=None)
writer.execute("CREATE TABLE IF NOT EXISTS other_app (id INTEGER)")
writer.execute("BEGIN " + sys.argv[2])
writer.execute("INSERT INTO other_app VALUES (1)")
print("holding", flush=True)
sys.stdin.read()
writer.execute("ROLLBACK")
"""


@contextmanager
def writer_holding(database: Path, mode: str) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(database), mode],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "holding"
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


# EXCLUSIVE keeps readers out too (the journal's first read waits); IMMEDIATE only writers (the
# journal's first write waits).
@pytest.mark.parametrize(("mode", "fast_path"), [("EXCLUSIVE", True), ("IMMEDIATE", False)])
def test_a_writer_holding_the_sqlite_database_past_the_lock_wait_exits_6_saying_so(
    sqlite_db, make_project, tmp_path, mode, fast_path,
):
    project = make_project("sync")
    database = tmp_path / "app.db"
    args = ["upgrade", "--lock-timeout-wait", "1"] + ([] if fast_path else ["--no-fast-path"])
    with writer_holding(database, mode) as writer:
        run = run_cli(project, *args, url=sqlite_db.url)
        assert writer.poll() is None  # the run ended while the writer still held the database
    message = assert_failed_cleanly(run, 6)
    assert f"Another process holds the SQLite database {database}" in message
    assert "--lock-timeout-wait" in message and "fuser" in message
    # Nothing happened, so nothing is journaled; the next deploy does everything.
    assert not sqlite_db.has_table("alembic_deploy_history")
    assert not sqlite_db.has_table("users")
    again = run_cli(project, "upgrade", url=sqlite_db.url)
    assert again.returncode == 0, again.output
    assert sqlite_db.versions() == ["a3_seed"]
    assert [row["outcome"] for row in sqlite_db.journal()] == ["applied"]


def test_the_json_document_reports_the_lock_error(sqlite_db, make_project, tmp_path):
    project = make_project("sync")
    with writer_holding(tmp_path / "app.db", "EXCLUSIVE"):
        run = run_cli(project, "upgrade", "--lock-timeout-wait", "0.5", "--json", url=sqlite_db.url)
    assert run.returncode == 6, run.output
    document = json.loads(run.stdout)
    assert document["exit_code"] == 6
    assert document["error"]["kind"] == "lock-not-acquired"
    assert document["error"]["fields"]["database"] == str(tmp_path / "app.db")


#: a4_locked: its first run starts a second process that takes the database's write lock (readers
#: go on) and keeps it until the file ``release`` exists; then the revision's statement waits, as
#: env.py's connection waits (pysqlite's busy timeout), and gives up.
_LOCKING_REVISION = '''"""a4_locked"""
import os
import subprocess
import sys

import sqlalchemy as sa
from alembic import op

revision = "a4_locked"
down_revision = "a3_seed"
branch_labels = None
depends_on = None

HOLDER = """
import os, sqlite3, sys, time
writer = sqlite3.connect(sys.argv[1], isolation_level=None)
writer.execute("BEGIN IMMEDIATE")
print("holding", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.01)
writer.execute("ROLLBACK")
"""


def upgrade() -> None:
    if not os.path.exists({started!r}):
        open({started!r}, "w").close()
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, {database!r}, {release!r}],
                                  stdout=subprocess.PIPE, text=True)
        holder.stdout.readline()
    op.create_table("after_the_writer", sa.Column("id", sa.Integer))


def downgrade() -> None:
    op.drop_table("after_the_writer")
'''


def test_a_writer_taking_the_database_mid_migration_is_waited_out_as_a_lock_timeout(sqlite_db, make_project, tmp_path):
    """The revision's statement gives up after pysqlite's busy timeout; nothing of it ran, so it is
    retried like any lock timeout, and once the writer is gone the deploy migrates."""
    project = make_project("sync")
    release = tmp_path / "release"
    (project / "migrations" / "versions" / "a4_locked.py").write_text(_LOCKING_REVISION.format(
        started=str(tmp_path / "started"), database=str(tmp_path / "app.db"), release=str(release)))
    proc = spawn_cli(project, "upgrade", url=sqlite_db.url)
    seen = []
    for line in proc.stderr:  # type: ignore[union-attr]
        seen.append(line)
        if "retry 1/" in line:
            release.touch()
            break
    release.touch()  # never leave the writer behind
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, "".join(seen) + err
    assert "Revision a4_locked could not get its locks" in "".join(seen)
    assert sqlite_db.versions() == ["a4_locked"] and sqlite_db.has_table("after_the_writer")
    assert [row["outcome"] for row in sqlite_db.journal()] == ["applied"]
