"""`alembic-deploy demo`: the whole pipeline on a sample SQLite project, leaving nothing behind
unless asked to keep it."""

from __future__ import annotations

import json

from helpers import run_cli


def test_demo_runs_end_to_end_and_leaves_nothing_behind(tmp_path):
    scratch, cwd = tmp_path / "tmp", tmp_path / "cwd"
    scratch.mkdir(), cwd.mkdir()
    run = run_cli(cwd, "demo", env={"TMPDIR": str(scratch)})
    assert run.returncode == 0, run.output
    assert "Traceback" not in run.output
    assert "Migrated <base> -> 0004_users_name: 4 revision(s)" in run.output
    assert "Nothing to do: database already at 0004_users_name" in run.output
    assert "pending: 0" in run.output
    assert "applied" in run.output and "noop" in run.output  # the history table
    assert list(scratch.iterdir()) == [] and list(cwd.iterdir()) == []


def test_demo_keep_leaves_a_working_project(tmp_path):
    kept, cwd = tmp_path / "kept", tmp_path / "cwd"
    cwd.mkdir()
    run = run_cli(cwd, "demo", "--keep", str(kept))
    assert run.returncode == 0, run.output
    assert str(kept) in run.output
    assert (kept / "alembic.ini").is_file() and (kept / "demo.db").is_file()

    status = run_cli(cwd, "status", "-c", str(kept / "alembic.ini"), "--json")
    assert status.returncode == 0, status.output
    report = json.loads(status.stdout)
    assert report["current"] == ["0004_users_name"] and report["pending"] == []
    history = json.loads(run_cli(cwd, "history", "-c", str(kept / "alembic.ini"), "--json").stdout)["deploys"]
    assert [(r["outcome"], r["environment"]) for r in history] == [("noop", "demo"), ("applied", "demo")]
    again = run_cli(cwd, "upgrade", "-c", str(kept / "alembic.ini"), "--json")
    assert json.loads(again.stdout)["outcome"] == "noop"


def test_demo_keep_refuses_a_folder_that_is_not_empty(tmp_path):
    (tmp_path / "precious.txt").write_text("mine")
    run = run_cli(tmp_path, "demo", "--keep", str(tmp_path))
    assert run.returncode == 2
    assert "not empty" in run.stderr and "Traceback" not in run.output
    assert [p.name for p in tmp_path.iterdir()] == ["precious.txt"]
