"""kill -9 at random moments of ``alembic-deploy upgrade``, on every backend.

The ``slow`` project has three revisions of several DDL statements with 0.2 s pauses between them
(``pg_sleep`` / ``SLEEP`` statements, a recursive count on SQLite), plus a data statement, so kills
land between committed statements, inside statements, inside journal writes, during start-up.
After each kill:

* the lock is not stale: another session takes it (within 5 s; a stale one is held for good);
* the next ``upgrade`` either completes (PostgreSQL always: the revision in flight was rolled
  back) or exits 8 naming the revision in flight, which the schema shows partly applied
  (MariaDB, SQLite); then ``repair`` (``--resume`` or ``--rollback-partial``, in turn) and
  ``upgrade`` complete;
* the crashed run's row is reported and closed as ``crashed``;
* the end state equals what plain alembic builds, with the seed row once: nothing was applied
  twice and no partial state went unreported (it would have failed the re-run or left the schema
  different).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from helpers import Database, drop_all, plain_alembic_upgrade, run_cli, schema_snapshot, spawn_cli

CHAIN = ("b1_accounts", "b2_orders", "b3_notes")
#: A table or column the first statement of each revision creates (the mark of a partial state).
FIRST_EFFECT = {"b1_accounts": ("accounts", None), "b2_orders": ("orders", None), "b3_notes": ("orders", "note")}
SLOW_TRIALS = 20


def lock_is_free(db: Database) -> bool:
    """Can another session take the migration lock (within a few seconds: not held by anyone)?"""
    from alembic_deploy.database import make_engine
    from alembic_deploy.errors import LockNotAcquired

    engine, backend = make_engine(db.url)
    try:
        with backend.lock(engine, backend.lock_name(engine.url.database, "alembic_version", None), 5.0):
            return True
    except LockNotAcquired:
        return False
    finally:
        engine.dispose()


def has_effect(db: Database, revision: str) -> bool:
    from sqlalchemy import inspect

    table, column = FIRST_EFFECT[revision]
    engine = db.engine()
    try:
        insp = inspect(engine)
        if not insp.has_table(table):
            return False
        return column is None or column in {c["name"] for c in insp.get_columns(table)}
    finally:
        engine.dispose()


def spawn_upgrade(project: Path, db: Database) -> tuple[subprocess.Popen, threading.Event, threading.Event]:
    """``upgrade`` in the background, and events set when it starts applying revisions and when
    it reports the last one applied."""
    proc = spawn_cli(project, "upgrade", url=db.url)
    applying, applied = threading.Event(), threading.Event()

    def watch() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            if line.startswith("Applying"):
                applying.set()
            elif line.startswith(f"  applied {CHAIN[-1]}"):
                applied.set()

    threading.Thread(target=watch, daemon=True).start()
    return proc, applying, applied


def migration_seconds(project: Path, db: Database) -> float:
    """How long applying the revisions takes here and now (kills are spread over it)."""
    proc, applying, applied = spawn_upgrade(project, db)
    assert applying.wait(timeout=120), "the run never started applying revisions"
    started = time.monotonic()
    assert applied.wait(timeout=120), "the run never applied the last revision"
    seconds = time.monotonic() - started
    assert proc.wait(timeout=120) == 0
    drop_all(db.url)
    return seconds


def kill_at(project: Path, db: Database, moment: tuple[str, float]) -> tuple[int, str]:
    """Start ``upgrade`` and SIGKILL it ``moment`` = ("start" | "migration", seconds) in; (pid,
    when) of the killed process."""
    proc, applying, _applied = spawn_upgrade(project, db)
    phase, delay = moment
    if phase == "migration":
        applying.wait(timeout=60)
    time.sleep(delay)
    when = f"{delay:.2f}s into the {phase}"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return proc.pid, when


def random_moments(seed: int, count: int) -> Callable[[float], list[tuple[str, float]]]:
    """One kill in five during start-up (settings, lock, journal row, recovery, env.py), the rest
    anywhere in the migration ``window`` (seconds)."""
    rng = random.Random(seed)

    def moments(window: float) -> list[tuple[str, float]]:
        return [("start", rng.uniform(0.05, 1.5)) if rng.random() < 0.2 else ("migration", rng.uniform(0, window))
                for _ in range(count)]

    return moments


def run_trials(project: Path, db: Database, moments: Callable[[float], list[tuple[str, float]]]) -> Counter[str]:
    """Kill, check, recover, check, once per moment, on an emptied database. Returns what happened."""
    reference = _reference(project, db)
    seen: Counter[str] = Counter()
    for trial, moment in enumerate(moments(migration_seconds(project, db))):
        drop_all(db.url)
        pid, when = kill_at(project, db, moment)
        context = f"trial {trial}, killed pid {pid} {when}"
        assert lock_is_free(db), f"stale migration lock after {context}"
        before = db.versions() if db.has_table("alembic_version") else []
        pending = [r for r in CHAIN if r not in _applied_through(before)]
        crashed_row = [r for r in _journal(db) if r["pid"] == pid and r["outcome"] == "running"]

        nxt = run_cli(project, "upgrade", url=db.url)
        assert "Traceback" not in nxt.output, f"{context}: {nxt.output}"
        if crashed_row:
            assert "crashed" in nxt.stderr, f"{context}: crash not reported: {nxt.output}"
            if db.backend == "postgresql":  # nothing commits by itself: the report says what went back
                assert re.search(r"crashed (before it started applying revisions|after applying its \d+|while "
                                 r"applying (one of revisions \w+ \.\. \w+ \(\d+ not in the version table\)"
                                 r"|revision \w+); nothing of (it|them) was kept \((its|their) transaction was "
                                 r"rolled back\))", nxt.stderr), nxt.stderr
            (row,) = [r for r in _journal(db) if r["id"] == crashed_row[0]["id"]]
            assert row["outcome"] == "crashed", context
        if nxt.returncode == 8:
            assert db.backend != "postgresql", f"{context}: PostgreSQL left a partial revision: {nxt.output}"
            revision = pending[0]
            assert f"Revision {revision} is partly applied" in nxt.stderr, f"{context}: {nxt.output}"
            assert has_effect(db, revision), f"{context}: exit 8 but {revision} shows nothing applied"
            option = "--resume" if seen["partial"] % 2 == 0 else "--rollback-partial"
            repaired = run_cli(project, "repair", option, url=db.url)
            assert repaired.returncode == 0, f"{context}: repair {option}: {repaired.output}"
            seen["partial"] += 1
            nxt = run_cli(project, "upgrade", url=db.url)
        else:
            seen["crashed" if crashed_row else "no crashed row"] += 1
        assert nxt.returncode == 0, f"{context}: {nxt.output}"
        assert db.versions() == [CHAIN[-1]], context
        assert schema_snapshot(db.url) == reference, f"{context}: schema differs from plain alembic's"
        assert db.scalar("SELECT COUNT(*) FROM accounts") == 1, f"{context}: seed row applied twice or lost"
        applied = Counter(
            r["revision"]
            for row in _journal(db) if row["outcome"] == "applied" and row["revisions"]
            for r in json.loads(row["revisions"]) if r["status"] == "applied"
        )
        assert all(n == 1 for n in applied.values()), f"{context}: applied twice per the journal: {applied}"
        assert not [r for r in _journal(db) if r["outcome"] == "running"], context
    return seen


def _reference(project: Path, db: Database) -> dict:
    plain_alembic_upgrade(project, db.url)
    snapshot = schema_snapshot(db.url)
    drop_all(db.url)
    return snapshot


def _applied_through(versions: list[str]) -> set[str]:
    if not versions:
        return set()
    return set(CHAIN[: CHAIN.index(versions[0]) + 1])


def _journal(db: Database) -> list[dict]:
    return db.journal() if db.has_table("alembic_deploy_history") else []


@pytest.mark.slow  # three kill -9 trials, each followed by a recovery run and a repair
def test_kill_9_during_upgrade_leaves_a_state_the_next_run_understands(db, make_project):
    # Early, middle and late in the migration: each kill hits a run that is migrating.
    # run_trials checks every invariant after each kill. How many kills land mid-migration depends on
    # the machine's load (the window is measured on an earlier run), so only require that one did.
    seen = run_trials(make_project("slow"), db, lambda window: [("migration", f * window) for f in (0.15, 0.45, 0.7)])
    assert seen["partial" if db.backend != "postgresql" else "crashed"] >= 1, seen


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_kill_9_at_twenty_random_moments(db, make_project):
    seen = run_trials(make_project("slow"), db, random_moments(4242, SLOW_TRIALS))
    assert sum(seen.values()) == SLOW_TRIALS
    print(f"{db.backend}: {dict(seen)}")


def test_sqlite_progress_kept_in_the_lock_file_survives_a_lock_probe_and_reaches_the_journal(sqlite_db, make_project):
    """SQLite keeps statement progress in the lock file while migrating (a journal write would
    re-read the schema each time). A kill -9 leaves it there; a holder that only probes the lock
    keeps it; the next upgrade moves it into the crashed run's row and refuses (exit 8)."""
    from alembic_deploy.backends.sqlite import LOCK_SUFFIX, ProgressLog

    project = make_project("slow")
    lock_file = Path(str(sqlite_db.url).removeprefix("sqlite:///") + LOCK_SUFFIX)

    def in_flight() -> str | None:
        """The revision whose third statement the last record says is starting: its first one
        committed, and two more follow in every revision of this project, so a kill anywhere
        until the next record leaves it partly applied. (The first record, "statement 1 running",
        comes before the CREATE TABLE runs: a kill under load could land before it, and then
        nothing is kept and the next run rightly applies the revision from the start.)"""
        lines = lock_file.read_text().splitlines()[1:] if lock_file.exists() else []
        record = ProgressLog.parse(lines[-1]) if lines else None
        entries = record["progress"]["revisions"] if record else []
        statements = entries[-1]["statements"] if entries else []
        if len(statements) == 3 and statements[-1]["state"] == "running" and statements[0]["committed"]:
            return entries[-1]["revision"]
        return None

    proc = spawn_cli(project, "upgrade", url=sqlite_db.url)
    deadline = time.monotonic() + 60
    revision = None
    while revision is None:
        assert time.monotonic() < deadline and proc.poll() is None, "the run never recorded a third statement"
        if in_flight() is not None:
            # Frozen, the run cannot move past what its last record says; read it again.
            os.kill(proc.pid, signal.SIGSTOP)
            revision = in_flight()
            if revision is None:
                os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    (row,) = _journal(sqlite_db)
    assert row["outcome"] == "running" and row["progress"] is None  # all of it is in the lock file

    assert lock_is_free(sqlite_db)  # a probe: takes and releases the lock, recovers nothing
    assert ProgressLog.parse(lock_file.read_text().splitlines()[-1])["journal_id"] == row["id"]

    nxt = run_cli(project, "upgrade", url=sqlite_db.url)
    assert nxt.returncode == 8, nxt.output
    assert f"Revision {revision} is partly applied" in nxt.stderr
    crashed = next(r for r in _journal(sqlite_db) if r["id"] == row["id"])
    assert crashed["outcome"] == "crashed"
    assert json.loads(crashed["progress"])["revisions"][-1]["revision"] == revision
    assert lock_file.read_text().count("\n") <= 1, "the adopted record was left in the lock file"


@pytest.mark.parametrize("sync", [True, False])
def test_a_progress_record_is_in_the_file_when_append_returns(tmp_path, sync):
    """Synced or not, what a kill -9 right after append() leaves: the record, read by the next
    holder through a descriptor of its own."""
    from alembic_deploy.backends.sqlite import ProgressLog

    path = tmp_path / "app.db.alembic-deploy.lock"
    path.write_text("alembic-deploy host=h pid=42\n")
    fd = os.open(path, os.O_RDWR)
    try:
        ProgressLog(fd).append(7, json.dumps({"revisions": [{"revision": "r1"}]}), sync=sync)
    finally:
        os.close(fd)
    other = os.open(path, os.O_RDONLY)
    try:
        last = ProgressLog.last_record(other)
    finally:
        os.close(other)
    assert last is not None and last["journal_id"] == 7 and last["pid"] == os.getpid()
    assert last["progress"]["revisions"][0]["revision"] == "r1"


def test_a_torn_last_progress_record_is_skipped_for_the_one_before(tmp_path):
    from alembic_deploy.backends.sqlite import ProgressLog

    path = tmp_path / "app.db.alembic-deploy.lock"
    good = json.dumps({"journal_id": 3, "pid": 42, "progress": {"revisions": []}})
    path.write_text(f"alembic-deploy host=h pid=42\n{good}\n{good[:25]}")
    fd = os.open(path, os.O_RDWR)
    try:
        assert ProgressLog.last_record(fd) == json.loads(good)
    finally:
        os.close(fd)
    path.write_text("alembic-deploy host=h pid=42\n")
    fd = os.open(path, os.O_RDWR)
    try:
        assert ProgressLog.last_record(fd) is None
    finally:
        os.close(fd)
