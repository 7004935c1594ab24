"""K separate OS processes run `alembic-deploy upgrade` at the same moment on one database, as K
replicas starting together do: exactly one migrates, the others wait for the lock, re-read the
revision under it and record a no-op."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

from helpers import Database, run_cli, spawn_cli

K = 8
REVISIONS = ["a1_users", "a2_users_email_index", "a3_seed"]


def _race(project: Path, db: Database, barrier: Path) -> list[dict]:
    """Start K deploys, release them together, return their JSON reports (each exited 0)."""
    procs = [spawn_cli(project, "upgrade", "--json", url=db.url, barrier=barrier) for _ in range(K)]
    try:
        deadline = time.monotonic() + 120
        while len(list(barrier.parent.glob(f"{barrier.name}.ready.*"))) < K:
            assert time.monotonic() < deadline, "racers never reached the barrier"
            assert all(p.poll() is None for p in procs), [p.communicate() for p in procs if p.poll() is not None]
            time.sleep(0.01)
        barrier.touch()
        results = [(p, *p.communicate(timeout=180)) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    failures = [(p.returncode, err) for p, _out, err in results if p.returncode != 0]
    assert failures == [], failures
    return [json.loads(out) for _p, out, _err in results]


def _assert_migrated_once(db: Database) -> None:
    assert db.versions() == ["a3_seed"]
    assert db.scalar("SELECT COUNT(*) FROM users") == 1  # a3_seed's insert ran exactly once


def test_racing_replicas_on_an_empty_database_migrate_exactly_once(db, make_project, tmp_path):
    reports = _race(make_project("sync"), db, tmp_path / "go")
    assert Counter(r["outcome"] for r in reports) == {"applied": 1, "noop": K - 1}
    [winner] = [r for r in reports if r["outcome"] == "applied"]
    assert [r["revision"] for r in winner["applied"]] == REVISIONS
    assert all(r["applied"] == [] for r in reports if r["outcome"] == "noop")
    _assert_migrated_once(db)

    journal = db.journal()
    assert Counter(row["outcome"] for row in journal) == {"applied": 1, "noop": K - 1}
    assert len({row["pid"] for row in journal}) == K
    [applied] = [row for row in journal if row["outcome"] == "applied"]
    assert [r["revision"] for r in json.loads(applied["revisions"])] == REVISIONS
    assert all(row["finished_at"] is not None for row in journal)
    assert all(row["to_revisions"] == "a3_seed" for row in journal)


def test_racing_replicas_at_head_all_noop(db, make_project, tmp_path):
    project = make_project("sync")
    assert run_cli(project, "upgrade", url=db.url).returncode == 0
    reports = _race(project, db, tmp_path / "go")
    assert [r["outcome"] for r in reports] == ["noop"] * K
    _assert_migrated_once(db)
    journal = db.journal()
    assert Counter(row["outcome"] for row in journal) == {"applied": 1, "noop": K}
    assert all(row["finished_at"] is not None for row in journal)
