"""kill -9 at random moments of ``alembic-deploy upgrade``, on every backend.

The ``slow`` project has three revisions of several DDL statements with 0.2 s pauses between them
(``pg_sleep`` / ``SLEEP`` statements, a recursive count on SQLite), plus a data statement, so kills
land between committed statements, inside statements, inside journal writes, during start-up.
After each kill:

* the lock is not stale: another session takes it at once;
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
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from helpers import Database, drop_all, plain_alembic_upgrade, run_cli, schema_snapshot, spawn_cli

CHAIN = ("b1_accounts", "b2_orders", "b3_notes")
#: A table or column the first statement of each revision creates (the mark of a partial state).
FIRST_EFFECT = {"b1_accounts": ("accounts", None), "b2_orders": ("orders", None), "b3_notes": ("orders", "note")}
DEFAULT_TRIALS = 3
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


def spawn_upgrade(project: Path, db: Database) -> tuple[subprocess.Popen, threading.Event]:
    """``upgrade`` in the background, and an event set when it starts applying revisions."""
    proc = spawn_cli(project, "upgrade", url=db.url)
    applying = threading.Event()

    def watch() -> None:
        for line in proc.stderr:  # type: ignore[union-attr]
            if line.startswith("Applying"):
                applying.set()

    threading.Thread(target=watch, daemon=True).start()
    return proc, applying


def migration_seconds(project: Path, db: Database) -> float:
    """How long the migration phase of one whole run takes here and now (kills are spread over it)."""
    proc, applying = spawn_upgrade(project, db)
    assert applying.wait(timeout=120), "the run never started applying revisions"
    started = time.monotonic()
    assert proc.wait(timeout=120) == 0
    seconds = time.monotonic() - started
    drop_all(db.url)
    return seconds


def kill_at_random(project: Path, db: Database, rng: random.Random, window: float) -> tuple[int, str]:
    """Start ``upgrade`` and SIGKILL it at a random moment; (pid, when) of the killed process."""
    proc, applying = spawn_upgrade(project, db)
    if rng.random() < 0.2:  # start-up: settings, lock, journal row, recovery, env.py
        delay = rng.uniform(0.05, 1.5)
        time.sleep(delay)
        when = f"{delay:.2f}s after start"
    else:
        applying.wait(timeout=60)
        delay = rng.uniform(0.0, window)
        time.sleep(delay)
        when = f"{delay:.2f}s into the migration"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return proc.pid, when


def run_trials(project: Path, db: Database, trials: int, seed: int) -> Counter[str]:
    """Kill, check, recover, check; ``trials`` times on an emptied database. Returns what happened."""
    reference = _reference(project, db)
    window = migration_seconds(project, db)
    rng = random.Random(seed)
    seen: Counter[str] = Counter()
    for trial in range(trials):
        drop_all(db.url)
        pid, when = kill_at_random(project, db, rng, window)
        context = f"trial {trial} (seed {seed}), killed pid {pid} {when}"
        assert lock_is_free(db), f"stale migration lock after {context}"
        before = db.versions() if db.has_table("alembic_version") else []
        pending = [r for r in CHAIN if r not in _applied_through(before)]
        crashed_row = [r for r in _journal(db) if r["pid"] == pid and r["outcome"] == "running"]

        nxt = run_cli(project, "upgrade", url=db.url)
        assert "Traceback" not in nxt.output, f"{context}: {nxt.output}"
        if crashed_row:
            assert "crashed" in nxt.stderr, f"{context}: crash not reported: {nxt.output}"
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


def test_kill_9_during_upgrade_leaves_a_state_the_next_run_understands(db, make_project):
    seen = run_trials(make_project("slow"), db, DEFAULT_TRIALS, seed=sum(map(ord, db.backend)))
    assert sum(seen.values()) == DEFAULT_TRIALS


@pytest.mark.slow
@pytest.mark.timeout(3600)
def test_kill_9_at_twenty_random_moments(db, make_project):
    seen = run_trials(make_project("slow"), db, SLOW_TRIALS, seed=4242)
    assert sum(seen.values()) == SLOW_TRIALS
    print(f"{db.backend}: {dict(seen)}")
