"""`alembic-deploy run`: real processes, real signals, real databases.

The app is a small Python program started through the entrypoint; it reports its PID and what it
sees, so each test checks that the process was replaced (not forked), that SIGTERM reaches the app's
own handler, and that the app never starts when the pipeline refuses.
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import PG_DRIVER, free_port, run_cli, spawn_cli, url_text

PID_APP = [sys.executable, "-c", "import os; print('app pid', os.getpid(), flush=True)"]

# Reads the version table through the URL it was given: proves the migration ran before it started.
VERSION_APP = [sys.executable, "-c", textwrap.dedent("""
    import os, sqlalchemy as sa
    engine = sa.create_engine(os.environ["DATABASE_URL"], future=True)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalars().all()
    print("app sees", ",".join(sorted(rows)), "pid", os.getpid(), flush=True)
""")]

SIGNAL_APP = [sys.executable, "-c", textwrap.dedent("""
    import os, signal, sys, time
    def on_term(signum, frame):
        print("app got SIGTERM in pid", os.getpid(), flush=True)
        sys.exit(42)
    signal.signal(signal.SIGTERM, on_term)
    print("app ready pid", os.getpid(), flush=True)
    while True:
        time.sleep(0.05)
""")]


def marker_app(path: Path) -> list[str]:
    return [sys.executable, "-c", f"open({str(path)!r}, 'w').write('started')"]


def finish(proc, timeout: float = 120) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.mark.parametrize("mode", ["--migrate", "--no-migrate"])
def test_exec_replaces_the_process_keeping_its_pid(make_project, sqlite_db, mode):
    project = make_project("sync")
    proc = spawn_cli(project, "run", mode, "--", *PID_APP, url=sqlite_db.url)
    code, out, err = finish(proc)
    assert code == 0, err
    assert out.strip() == f"app pid {proc.pid}"
    assert f"(pid {proc.pid})" in err


def test_sigterm_reaches_the_apps_own_handler(make_project, pg_db):
    project = make_project("sync")
    proc = spawn_cli(project, "run", "--migrate", "--", *SIGNAL_APP, url=pg_db.url)
    line = proc.stdout.readline()
    assert line.strip() == f"app ready pid {proc.pid}", line if line else proc.stderr.read()
    os.kill(proc.pid, signal.SIGTERM)
    code, out, _err = finish(proc, timeout=30)
    assert out.strip() == f"app got SIGTERM in pid {proc.pid}"
    assert code == 42  # the app's handler decided the exit code, not alembic-deploy's


def test_app_starts_with_default_signal_dispositions(make_project, sqlite_db):
    """Python ignores SIGPIPE; an ignored signal survives exec, so the entrypoint must reset it."""
    project = make_project("sync")
    run = run_cli(project, "run", "--no-migrate", "--", "grep", "SigIgn", "/proc/self/status", url=sqlite_db.url)
    assert run.returncode == 0, run.output
    ignored = int(run.stdout.split()[1], 16)
    assert not ignored & (1 << (signal.SIGPIPE - 1)), run.stdout


def test_migrate_mode_migrates_before_starting(db, make_project):
    project = make_project("sync")
    run = run_cli(project, "run", "--migrate", "--", *VERSION_APP, url=db.url)
    assert run.returncode == 0, run.output
    assert "app sees a3_seed" in run.stdout
    assert [r["outcome"] for r in db.journal()] == ["applied"]


def test_replicas_starting_together_migrate_once(make_project, pg_db):
    project = make_project("sync")
    procs = [spawn_cli(project, "run", "--migrate", "--", *VERSION_APP, url=pg_db.url) for _ in range(3)]
    results = [finish(p) for p in procs]
    for proc, (code, out, err) in zip(procs, results, strict=True):
        assert code == 0, err
        assert out.strip() == f"app sees a3_seed pid {proc.pid}"
    assert sorted(r["outcome"] for r in pg_db.journal()) == ["applied", "noop", "noop"]


def test_no_migrate_starts_without_touching_the_schema(make_project, pg_db, tmp_path):
    project = make_project("sync")
    marker = tmp_path / "started"
    run = run_cli(project, "run", "--no-migrate", "--", *marker_app(marker), url=pg_db.url)
    assert run.returncode == 0, run.output
    assert marker.exists()
    assert not pg_db.has_table("alembic_version")


def test_wait_for_schema_starts_once_another_task_migrated(make_project, pg_db):
    project = make_project("sync")
    proc = spawn_cli(project, "run", "--wait-for-schema", "--schema-timeout", "120", "--", *VERSION_APP, url=pg_db.url)
    # Read stderr until the entrypoint says it is waiting: by then the app must not have started.
    lines: list[str] = []
    for line in proc.stderr:
        lines.append(line)
        if "Waiting for the schema" in line:
            break
    assert any("behind-incompatible" in line or "cannot run without" in line for line in lines), lines
    assert proc.poll() is None
    migrate = run_cli(project, "upgrade", url=pg_db.url)
    assert migrate.returncode == 0, migrate.output
    code, out, err = finish(proc)
    assert code == 0, "".join(lines) + err
    assert out.strip() == f"app sees a3_seed pid {proc.pid}"


def test_wait_for_schema_accepts_a_database_behind_by_marked_revisions(make_project, pg_db):
    project = make_project("expand_contract")
    assert run_cli(project, "upgrade", "x3a_nickname", url=pg_db.url).returncode == 0
    run = run_cli(project, "run", "--wait-for-schema", "--", *VERSION_APP, url=pg_db.url)
    assert run.returncode == 0, run.output
    assert "Schema behind-compatible" in run.stderr
    assert "app sees x3a_nickname" in run.stdout


def test_wait_for_schema_times_out_without_starting(make_project, sqlite_db, tmp_path):
    project = make_project("sync")
    marker = tmp_path / "started"
    run = run_cli(project, "run", "--wait-for-schema", "--schema-timeout", "1", "--", *marker_app(marker),
                  url=sqlite_db.url)
    assert run.returncode == 5, run.output
    assert "did not reach a revision this code accepts within 1s" in run.stderr
    assert not marker.exists()


def test_wait_for_schema_refuses_a_newer_database_at_once(make_project, sqlite_db, tmp_path):
    project = make_project("sync")
    assert run_cli(project, "upgrade", url=sqlite_db.url).returncode == 0
    with sqlite_db.engine().begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'z9_from_newer_code'")
    marker = tmp_path / "started"
    run = run_cli(project, "run", "--wait-for-schema", "--schema-timeout", "600", "--", *marker_app(marker),
                  url=sqlite_db.url)
    assert run.returncode == 5, run.output
    assert "z9_from_newer_code" in run.stderr and "--accept-ahead" in run.stderr
    assert not marker.exists()
    run = run_cli(project, "run", "--wait-for-schema", "--accept-ahead", "--", *marker_app(marker),
                  url=sqlite_db.url)
    assert run.returncode == 0, run.output
    assert marker.exists()


@pytest.mark.parametrize(
    ("scenario", "code", "text"),
    [
        ("two_heads", 5, "heads"),
        ("failing", 7, "failed"),
    ],
)
def test_a_refused_or_failed_migration_never_starts_the_app(make_project, pg_db, tmp_path, scenario, code, text):
    project = make_project(scenario)
    marker = tmp_path / "started"
    run = run_cli(project, "run", "--migrate", "--", *marker_app(marker), url=pg_db.url)
    assert run.returncode == code, run.output
    assert text in run.stderr
    assert "Traceback" not in run.output
    assert not marker.exists()


@pytest.mark.parametrize("mode", ["--migrate", "--wait-for-schema", "--no-migrate"])
def test_unreachable_database_never_starts_the_app(make_project, tmp_path, mode):
    project = make_project("sync")
    marker = tmp_path / "started"
    url = f"{PG_DRIVER}://app:n0t-sh0wn-pw@127.0.0.1:{free_port()}/app"
    run = run_cli(project, "run", mode, "--wait-timeout", "1", "--", *marker_app(marker), url=url)
    assert run.returncode == 3, run.output
    assert "n0t-sh0wn-pw" not in run.output
    assert not marker.exists()


def test_wrong_password_is_not_retried_and_not_shown(make_project, password_pg_db, tmp_path):
    project = make_project("sync")
    marker = tmp_path / "started"
    wrong = url_text(password_pg_db.url, password="wr0ng-pa55word")
    run = run_cli(project, "run", "--migrate", "--", *marker_app(marker), url=wrong)
    assert run.returncode == 2, run.output
    assert "wr0ng-pa55word" not in run.output
    assert not marker.exists()
    ok = run_cli(project, "run", "--migrate", "--", *VERSION_APP, url=password_pg_db.url)
    assert ok.returncode == 0, ok.output
    assert "app sees a3_seed" in ok.stdout
    assert password_pg_db.password not in ok.output


def test_a_command_that_does_not_exist_fails_before_migrating(make_project, sqlite_db):
    project = make_project("sync")
    run = run_cli(project, "run", "--migrate", "--", "no-such-app-binary", "--port", "1", url=sqlite_db.url)
    assert run.returncode == 2, run.output
    assert "'no-such-app-binary' not found" in run.stderr
    assert not sqlite_db.has_table("alembic_version")


def test_mode_is_required_and_may_come_from_the_environment(make_project, sqlite_db):
    project = make_project("sync")
    run = run_cli(project, "run", "--", *PID_APP, url=sqlite_db.url)
    assert run.returncode == 2 and "needs a mode" in run.stderr
    run = run_cli(project, "run", "--migrate", "--no-migrate", "--", *PID_APP, url=sqlite_db.url)
    assert run.returncode == 2 and "Choose one mode" in run.stderr
    run = run_cli(project, "run", "--", *PID_APP, url=sqlite_db.url, env={"ALEMBIC_DEPLOY_RUN_MODE": "sideways"})
    assert run.returncode == 2 and "Unknown run mode" in run.stderr
    run = run_cli(project, "run", *PID_APP, url=sqlite_db.url, env={"ALEMBIC_DEPLOY_RUN_MODE": "migrate"})
    assert run.returncode == 0, run.output
    assert sqlite_db.versions() == ["a3_seed"]


def test_options_after_the_command_belong_to_the_command(make_project, sqlite_db):
    """Without `--`, everything from CMD on is CMD's, even options alembic-deploy also has."""
    project = make_project("sync")
    app = [sys.executable, "-c", "import sys; print(sys.argv[1:])"]
    run = run_cli(project, "run", "--no-migrate", *app, "--json", "--migrate", url=sqlite_db.url)
    assert run.returncode == 0, run.output
    assert run.stdout.strip() == "['--json', '--migrate']"


def test_sigterm_while_waiting_for_the_schema_never_starts_the_app(make_project, sqlite_db, tmp_path):
    project = make_project("sync")
    marker = tmp_path / "started"
    proc = spawn_cli(project, "run", "--wait-for-schema", "--schema-timeout", "600", "--", *marker_app(marker),
                     url=sqlite_db.url)
    for line in proc.stderr:
        if "Waiting for the schema" in line:
            break
    proc.send_signal(signal.SIGTERM)
    finish(proc, timeout=30)
    assert proc.returncode != 0
    assert not marker.exists()


def test_migrate_mode_ignores_a_health_gate_meant_for_the_post_deploy_step(make_project, sqlite_db):
    """The app behind that URL is the one this entrypoint is about to start: waiting for it would hang."""
    project = make_project("sync")
    run = run_cli(project, "run", "--migrate", "--", *PID_APP, url=sqlite_db.url,
                  env={"ALEMBIC_DEPLOY_WAIT_HEALTHY": f"http://127.0.0.1:{free_port()}/ready",
                       "ALEMBIC_DEPLOY_HEALTH_TIMEOUT": "600"})
    assert run.returncode == 0, run.output
    assert sqlite_db.versions() == ["a3_seed"]
