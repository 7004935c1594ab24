"""Output nobody can read never fails the work nor changes what is journaled: a real deploy whose
stdout or stderr is a pipe with its reader gone (``| head``), or closed (``2>&-``), migrates,
journals and exits exactly as with a terminal attached."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import Database

HEAD = ["a3_seed"]


def _broken_pipe() -> int:
    """The write end of a pipe whose read end is already closed: every write gets EPIPE."""
    read, write = os.pipe()
    os.close(read)
    return write


def _spawn(project: Path, *args: str, url: str, stdout: str = "pipe", stderr: str = "pipe") -> tuple[int, str]:
    """Run alembic-deploy with each stream ``pipe`` (read here), ``broken`` or ``closed``; returns
    (exit code, what could be read from stdout and stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALEMBIC_DEPLOY_", "GITHUB_"))}
    env["DATABASE_URL"] = url
    streams: dict[str, int] = {}
    for name, how in (("stdout", stdout), ("stderr", stderr)):
        streams[name] = _broken_pipe() if how == "broken" else subprocess.PIPE
    close_stderr = stderr == "closed"
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "alembic_deploy", *args], cwd=project, env=env,
            stdout=streams["stdout"], stderr=subprocess.DEVNULL if close_stderr else streams["stderr"],
            preexec_fn=(lambda: os.close(2)) if close_stderr else None,
            timeout=120, text=True,
        )
    finally:
        for fd in streams.values():
            if fd != subprocess.PIPE:
                os.close(fd)
    return proc.returncode, (proc.stdout or "") + (proc.stderr or "")


@pytest.mark.parametrize(
    ("stdout", "stderr"),
    [("broken", "pipe"), ("pipe", "broken"), ("pipe", "closed"), ("broken", "broken")],
)
def test_upgrade_with_unwritable_output_migrates_and_journals_applied(make_project, db, stdout, stderr):
    code, seen = _spawn(make_project("sync"), "upgrade", "--json", url=db.url, stdout=stdout, stderr=stderr)
    assert code == 0, seen
    assert "Traceback" not in seen and "BrokenPipe" not in seen
    assert db.versions() == HEAD
    [row] = db.journal()
    assert row["outcome"] == "applied" and row["error"] is None
    assert [r["status"] for r in json.loads(row["revisions"])] == ["applied"] * 3


def test_a_failing_revision_exits_7_with_unwritable_output_as_it_would_without(make_project, sqlite_db):
    code, _seen = _spawn(make_project("failing"), "upgrade", url=sqlite_db.url, stdout="broken", stderr="broken")
    assert code == 7
    [row] = sqlite_db.journal()
    assert row["outcome"] == "failed" and "a4_broken" in (row["error"] or "")


@pytest.mark.parametrize("command", ["status", "history"])
def test_status_and_history_into_a_closed_pipe_exit_0(make_project, sqlite_db, command):
    project = make_project("sync")
    assert _spawn(project, "upgrade", url=sqlite_db.url)[0] == 0
    for args in ((command,), (command, "--json")):
        code, seen = _spawn(project, *args, url=sqlite_db.url, stdout="broken")
        assert code == 0, seen
        assert "Traceback" not in seen and "BrokenPipe" not in seen


def test_demo_into_a_closed_pipe_migrates_and_exits_0(tmp_path):
    keep = tmp_path / "demo"
    code, seen = _spawn(tmp_path, "demo", "--keep", str(keep), url="", stdout="broken")
    assert code == 0, seen
    demo_db = Database(f"sqlite:///{keep / 'demo.db'}", "sqlite")
    assert demo_db.versions() == ["0004_users_name"]
    assert [r["outcome"] for r in demo_db.journal()] == ["applied", "noop"]
