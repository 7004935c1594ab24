"""examples/fastapi-service deployed end to end: real uvicorn processes started through
`alembic-deploy run`, a real PostgreSQL, real HTTP traffic through two rolling updates with
post-deploy migrations behind the health gate (an expand, then a contract)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "fastapi-service"


@pytest.mark.skipif(sqlalchemy.__version__.startswith("1."),
                    reason="the example application's models are written for SQLAlchemy 2 (DeclarativeBase)")
@pytest.mark.slow  # minutes: six app processes, two rolling updates and their migrations
@pytest.mark.timeout(900)  # six app processes and two migrations on a busy 2-core machine
def test_rollout_never_fails_a_request_because_of_the_schema(pg_db):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALEMBIC_DEPLOY_")}
    env.pop("DATABASE_URL", None)
    proc = subprocess.run(
        [sys.executable, str(EXAMPLE / "simulate_deploy.py"), "--database-url", pg_db.url, "--json"],
        capture_output=True, text=True, timeout=900, env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    summary = json.loads(proc.stdout)
    assert summary["error"] is None
    assert summary["failures"] == []
    assert set(summary["statuses"]) <= {"200", "201"}, summary["statuses"]
    # The clients ran through every step: each rollout and each migration saw traffic.
    for phase in ("rollout of release 2", "migration of release 2", "rollout of release 3", "migration of release 3"):
        assert summary["requests_per_phase"].get(phase, 0) > 0, summary["requests_per_phase"]
    assert summary["notes_written"] > 0
    assert [m["exit_code"] for m in summary["migrations"]] == [0, 0]

    verdicts = [(v["step"], v["verdict"], v["pending"]) for v in summary["verdicts"]]
    assert verdicts == [
        ("release 1 running", "ok", ""),
        ("release 1 running", "ok", ""),
        ("release 2 started", "behind-compatible", "0002_expand_note_content (expand-only)"),
        ("release 2 started", "behind-compatible", "0002_expand_note_content (expand-only)"),
        ("release 2 migrated", "ok", ""),
        ("release 2 migrated", "ok", ""),
        ("release 3 started", "behind-compatible", "0003_contract_note_body (contract)"),
        ("release 3 started", "behind-compatible", "0003_contract_note_body (contract)"),
        ("release 3 migrated", "ok", ""),
        ("release 3 migrated", "ok", ""),
        # what older code would say after a rollback, and release 3 straight onto release 1's schema
        ("what if", "ahead-unknown", ""),
        ("what if", "ahead-unknown", ""),
        ("what if", "behind-incompatible",
         "0002_expand_note_content (expand-only), 0003_contract_note_body (contract)"),
    ]

    # The contract really ran: body is gone, content holds every note.
    assert pg_db.versions() == ["0003_contract_note_body"]
    columns = {
        r[0] for r in pg_db.rows("SELECT column_name FROM information_schema.columns WHERE table_name = 'notes'")
    }
    assert columns == {"id", "title", "content"}
    assert pg_db.scalar("SELECT count(*) FROM notes WHERE content IS NULL") == 0
    assert pg_db.scalar("SELECT count(*) FROM notes") == summary["notes_written"]
    assert [r["outcome"] for r in pg_db.journal()] == ["applied", "noop", "applied", "applied"]


@pytest.mark.slow  # a wheel build and a virtual environment filled from the package index
@pytest.mark.timeout(900)
def test_the_dockerfiles_install_line_works_with_the_wheel_make_builds(tmp_path):
    """The package is not on PyPI: the image installs it from wheels/, where the README says to put
    what `make wheel` builds. The Dockerfile's RUN line, run as written (its /wheels here a folder of
    the test's, requirements.txt the example's), in a new virtual environment."""
    root = EXAMPLE.parent.parent
    subprocess.run(["make", "-C", str(root), "wheel", f"PYTHON={sys.executable}"], check=True, timeout=600)
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for wheel in (root / "dist").glob("alembic_deploy-*.whl"):
        (wheels / wheel.name).write_bytes(wheel.read_bytes())
    [run] = [line.removeprefix("RUN ") for line in (EXAMPLE / "Dockerfile").read_text().splitlines()
             if line.startswith("RUN pip install")]
    assert run == "pip install --find-links /wheels -r requirements.txt"
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    command = [str(venv / "bin" / "pip"), *run.split()[1:]]
    command[command.index("/wheels")] = str(wheels)
    subprocess.run(command, cwd=EXAMPLE, check=True, timeout=600)
    version = subprocess.run([str(venv / "bin" / "alembic-deploy"), "--version"], capture_output=True, text=True,
                             timeout=60)
    assert version.returncode == 0 and "0.1.0" in version.stdout + version.stderr, version


def test_dockerfile_starts_the_app_through_the_entrypoint():
    """The image the simulation stands in for: ENTRYPOINT `alembic-deploy run --`, exec form
    (a shell form would put /bin/sh at PID 1, and SIGTERM would not reach uvicorn)."""
    lines = {
        line.split(None, 1)[0]: line.split(None, 1)[1]
        for line in (EXAMPLE / "Dockerfile").read_text().splitlines()
        if line and not line.startswith(("#", " "))
    }
    assert json.loads(lines["ENTRYPOINT"]) == ["alembic-deploy", "run", "--"]
    assert json.loads(lines["CMD"])[:2] == ["uvicorn", "app.main:app"]
    assert "ALEMBIC_DEPLOY_RUN_MODE=wait-for-schema" in (EXAMPLE / "Dockerfile").read_text()
