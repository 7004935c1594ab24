"""The collector during a run (heap.py): paused while loading, batched while migrating, and left
as the caller had it. The library is called in a subprocess: freezing is process-wide."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap

from alembic_deploy.heap import MIGRATING_THRESHOLD, RunHeap


def test_loading_pauses_the_collector_then_freezes_what_it_built():
    assert gc.get_freeze_count() == 0
    with RunHeap() as heap:
        with heap.loading():
            assert not gc.isenabled()
            kept = [[i] for i in range(1000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(kept)
    assert gc.get_freeze_count() == 0


def test_migrating_batches_young_collections_and_restores_the_threshold():
    before = gc.get_threshold()
    with RunHeap() as heap:
        with heap.migrating():
            assert gc.get_threshold() == (MIGRATING_THRESHOLD, *before[1:])
            assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_collector_the_caller_disabled_stays_disabled_while_loading():
    gc.disable()
    try:
        with RunHeap() as heap, heap.loading():
            pass
        assert not gc.isenabled()
        assert gc.get_freeze_count() == 0
    finally:
        gc.enable()


_CALL_UPGRADE = textwrap.dedent(
    """
    import gc, json, sys
    from alembic_deploy import Settings
    from alembic_deploy.api import upgrade

    if sys.argv[1] == "frozen-by-caller":
        gc.freeze()
    before = {"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold(), "enabled": gc.isenabled()}
    report = upgrade(Settings(config=sys.argv[2], database_url=sys.argv[3]))
    after = {"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold(), "enabled": gc.isenabled()}
    print(json.dumps({"outcome": report.outcome, "before": before, "after": after}))
    """
)


def _call_upgrade(mode: str, project, url: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CALL_UPGRADE, mode, str(project / "alembic.ini"), url],
        cwd=project, capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_library_call_leaves_the_collector_as_it_found_it(make_project, tmp_path):
    project = make_project("sync")
    url = f"sqlite:///{tmp_path / 'app.db'}"
    applied = _call_upgrade("plain", project, url)
    assert applied["outcome"] == "applied"
    assert applied["after"] == applied["before"]
    assert applied["before"]["frozen"] == 0
    # At head the fast path answers: it loads too, and hands back what it froze.
    noop = _call_upgrade("plain", project, url)
    assert noop["outcome"] == "noop"
    assert noop["after"] == noop["before"]


def test_a_caller_that_froze_objects_itself_is_left_alone(make_project, tmp_path):
    project = make_project("sync")
    result = _call_upgrade("frozen-by-caller", project, f"sqlite:///{tmp_path / 'app.db'}")
    assert result["outcome"] == "applied"
    before, after = result["before"], result["after"]
    # Neither handed back (0) nor grown by all that the run loaded (SQLAlchemy and Alembic are
    # 100,000+ objects); a few of the caller's frozen objects may be freed meanwhile.
    assert 0 < after.pop("frozen") <= before.pop("frozen")
    assert after == before
