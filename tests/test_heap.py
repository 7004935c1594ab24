"""The collector during a run (heap.py): paused while loading, batched while migrating, and handed
back, in the alembic-deploy command only; a library call leaves it as the application set it. The
command and the library are run in subprocesses: the collector's settings are process-wide."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
import textwrap

import pytest

from alembic_deploy.heap import MIGRATING_THRESHOLD, RunHeap


def test_loading_pauses_the_collector_then_freezes_what_it_built():
    assert gc.get_freeze_count() == 0
    with RunHeap(managed=True) as heap:
        with heap.loading():
            assert not gc.isenabled()
            kept = [[i] for i in range(1000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(kept)
    assert gc.get_freeze_count() == 0


def test_migrating_batches_young_collections_and_restores_the_threshold():
    before = gc.get_threshold()
    with RunHeap(managed=True) as heap:
        with heap.migrating():
            assert gc.get_threshold() == (MIGRATING_THRESHOLD, *before[1:])
            assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0


def test_a_collector_the_caller_disabled_stays_disabled_while_loading():
    gc.disable()
    try:
        with RunHeap(managed=True) as heap, heap.loading():
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
    if sys.argv[1] == "disabled-by-caller":
        gc.disable()
    state = lambda: {"frozen": gc.get_freeze_count(), "threshold": gc.get_threshold(), "enabled": gc.isenabled()}
    before = state()
    during = []
    report = upgrade(Settings(config=sys.argv[2], database_url=sys.argv[3]), echo=lambda _line: during.append(state()))
    after = state()
    print(json.dumps({"outcome": report.outcome, "before": before, "during": during, "after": after}))
    """
)


def _call_upgrade(mode: str, project, url: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", _CALL_UPGRADE, mode, str(project / "alembic.ini"), url],
        cwd=project, capture_output=True, text=True, timeout=120, check=False,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_library_call_never_touches_the_collector(make_project, tmp_path):
    project = make_project("sync")
    url = f"sqlite:///{tmp_path / 'app.db'}"
    applied = _call_upgrade("plain", project, url)
    assert applied["outcome"] == "applied"
    assert applied["before"]["frozen"] == 0 and applied["before"]["enabled"]
    # Not frozen, paused or batched while the revisions ran either (a line per revision).
    assert applied["during"] and all(seen == applied["before"] for seen in applied["during"])
    assert applied["after"] == applied["before"]
    noop = _call_upgrade("plain", project, url)  # the fast path
    assert noop["outcome"] == "noop"
    assert all(seen == noop["before"] for seen in noop["during"]) and noop["after"] == noop["before"]


@pytest.mark.parametrize("mode", ["frozen-by-caller", "disabled-by-caller"])
def test_a_collector_the_application_set_up_stays_as_it_is(make_project, tmp_path, mode):
    project = make_project("sync")
    result = _call_upgrade(mode, project, f"sqlite:///{tmp_path / 'app.db'}")
    assert result["outcome"] == "applied"
    before, after = result["before"], result["after"]
    assert before["enabled"] == (mode != "disabled-by-caller")
    # Neither handed back (0) nor grown by all that the run loaded (SQLAlchemy and Alembic are
    # 100,000+ objects); a few of the caller's frozen objects may be freed meanwhile.
    assert after.pop("frozen") <= before.pop("frozen")
    assert after == before
    assert all(seen["enabled"] == before["enabled"] and seen["threshold"] == before["threshold"]
               for seen in result["during"])


_RUN_COMMAND = textwrap.dedent(
    """
    import atexit, gc, json, sys
    from alembic_deploy import heap
    from alembic_deploy.cli import main

    atexit.register(lambda: sys.stderr.write(json.dumps(
        {"managed": heap.collector_managed(), "frozen": gc.get_freeze_count()})))
    sys.argv = ["alembic-deploy", "upgrade", "--database-url", sys.argv[1]]
    main()
    """
)


def test_the_command_manages_the_collector(make_project, tmp_path):
    """``alembic-deploy`` (the CLI's main, reading its own argv) pauses and freezes the collector,
    and freezes everything before it exits."""
    project = make_project("sync")
    out = subprocess.run([sys.executable, "-c", _RUN_COMMAND, f"sqlite:///{tmp_path / 'app.db'}"],
                         cwd=project, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr
    state = json.loads(out.stderr[out.stderr.rindex("{"):])
    assert state["managed"] is True and state["frozen"] > 10_000
