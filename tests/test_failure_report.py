"""What a failed migration tells its reader: with ``--debug`` the original exception's traceback
(the revision's frames, SQLAlchemy's, env.py's), chained under alembic-deploy's message, and no
advice to rerun with ``--debug``; in ``--json`` the revision it failed in under
``failed_revision``, never listed as applied."""

from __future__ import annotations

import pytest

from alembic_deploy.report import DeployReport, FailedRevision, RevisionResult
from helpers import assert_failed_cleanly, invoke_cli


@pytest.fixture(params=("sqlite", "postgresql"))
def any_db(request: pytest.FixtureRequest):
    return request.getfixturevalue({"sqlite": "sqlite_db", "postgresql": "pg_db"}[request.param])


def _frames(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if line.strip().startswith('File "')]


def test_debug_shows_the_failed_revisions_own_traceback(any_db, make_project):
    project = make_project("failing")
    run = invoke_cli(project, "upgrade", "--debug", url=any_db.url)
    assert run.returncode == 7, run.output
    frames = _frames(run.stderr)
    revision = str(project / "migrations" / "versions" / "a4_broken.py")
    assert any(f'"{revision}"' in f and "in upgrade" in f for f in frames), run.stderr
    assert any("/sqlalchemy/engine/" in f for f in frames), run.stderr
    # The original error is the cause of alembic-deploy's: both are shown, the cause first.
    assert "direct cause of the following exception" in run.stderr
    assert "table_that_does_not_exist" in run.stderr.split("direct cause")[0]
    [error] = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert "a4_broken" in error and "--debug" not in error


def test_without_debug_the_message_points_to_it_and_shows_no_traceback(sqlite_db, make_project):
    run = invoke_cli(make_project("failing"), "upgrade", url=sqlite_db.url)
    assert "run with --debug for the traceback" in assert_failed_cleanly(run, 7)


def test_debug_shows_env_pys_traceback_when_it_fails_before_any_revision(sqlite_db, make_project):
    """The class: any failure inside env.py's run keeps its own frames under --debug."""
    project = make_project("sync")
    env_py = project / "migrations" / "env.py"
    env_py.write_text(env_py.read_text().replace(
        "def run_migrations_online() -> None:",
        "def tenant_url():\n    raise RuntimeError('no tenant configured')\n\n\ndef run_migrations_online() -> None:\n"
        "    tenant_url()",
    ))
    run = invoke_cli(project, "upgrade", "--debug", url=sqlite_db.url)
    assert run.returncode == 7, run.output
    assert any(f'"{env_py}"' in f and "in tenant_url" in f for f in _frames(run.stderr)), run.stderr
    [error] = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert "no tenant configured" in error and "--debug" not in error


def test_json_lists_the_failed_revision_apart_from_the_applied_ones(any_db, make_project):
    from test_json_output import checked

    project = make_project("failing")
    run = invoke_cli(project, "upgrade", "--json", url=any_db.url)
    doc = checked(run.stdout, "upgrade", 7)
    assert "a4_broken" not in [r["revision"] for r in doc["applied"]]
    assert all(r["status"] in ("applied", "rolled-back") for r in doc["applied"])
    failed = doc["failed_revision"]
    assert (failed["revision"], failed["down_revisions"], failed["description"]) == (
        "a4_broken", ["a3_seed"], "add a column then fail",
    )
    # It ran (its ALTER TABLE) before it failed: the time until the failure, from its own start.
    assert failed["duration"] > 0 and failed["started_at"] >= doc["started_at"]


def test_a_run_that_succeeds_has_no_failed_revision(sqlite_db, make_project):
    from test_json_output import checked

    doc = checked(invoke_cli(make_project("sync"), "upgrade", "--json", url=sqlite_db.url).stdout, "upgrade", 0)
    assert doc["failed_revision"] is None and len(doc["applied"]) == 3


def test_the_report_keeps_the_failed_revision_out_of_applied():
    report = DeployReport("upgrade")
    report.applied.append(RevisionResult("a1", (), "first", 1.0, 0.5))
    report.failed_revision = FailedRevision("a2", ("a1",), "second", 1.5, 0.25)
    data = report.to_dict()
    assert [r["revision"] for r in data["applied"]] == ["a1"]
    assert data["failed_revision"]["revision"] == "a2" and data["failed_revision"]["started_at"].endswith("Z")


def test_debug_shows_the_lock_timeout_behind_retries_that_ran_out(pg_db, make_project):
    """The other way a migration fails: retries run out (steps/upgrade.py). The last attempt's
    LockNotAvailable from the revision's ALTER TABLE is the cause shown under --debug."""
    from lockscene import Blocker

    project = make_project("alter_users")
    assert invoke_cli(project, "upgrade", "a3_seed", url=pg_db.url).returncode == 0
    blocker = Blocker(pg_db.url, pg_db.backend)
    try:
        run = invoke_cli(project, "upgrade", "--debug", "--ddl-lock-timeout", "0.3", "--retries", "0", url=pg_db.url)
    finally:
        blocker.release()
    assert run.returncode == 7, run.output
    revision = str(project / "migrations" / "versions" / "a4_users_nickname.py")
    assert any(f'"{revision}"' in f and "in upgrade" in f for f in _frames(run.stderr)), run.stderr
    assert "LockNotAvailable" in run.stderr.split("direct cause")[0]
    assert pg_db.versions() == ["a3_seed"]


def test_the_journal_records_the_failed_revision_and_history_shows_it(any_db, make_project):
    """The journal's ``revisions`` column names the revision the run failed in, as data (status
    ``failed``, its down revisions, the seconds it ran until it failed), not only in the error text;
    ``history`` shows it, as text and as a document of the schema."""
    import json

    from test_json_output import checked

    project = make_project("failing")
    assert invoke_cli(project, "upgrade", url=any_db.url).returncode == 7
    [row] = any_db.journal()
    assert row["outcome"] == "failed"
    *applied, failed = json.loads(row["revisions"])
    assert [r["revision"] for r in applied] == ["a1_users", "a2_users_email_index", "a3_seed"]
    assert all(r["status"] in ("applied", "rolled-back") for r in applied)
    assert (failed["revision"], failed["down_revisions"], failed["description"], failed["status"]) == (
        "a4_broken", ["a3_seed"], "add a column then fail", "failed",
    )
    assert failed["duration"] > 0 and applied[1]["down_revisions"] == ["a1_users"]

    [deploy] = checked(invoke_cli(project, "history", "--json", url=any_db.url).stdout, "history", 0)["deploys"]
    assert deploy["revisions"][-1] == failed
    text = invoke_cli(project, "history", url=any_db.url)
    assert text.returncode == 0, text.output
    _header, run, ended_in = text.stdout.strip().splitlines()
    assert "failed" in run and ended_in.strip().startswith("failed in a4_broken after ")
    assert ended_in.endswith(": add a column then fail")
    status = invoke_cli(project, "status", url=any_db.url)
    assert "failed in a4_broken" in status.stdout, status.output


def test_an_interrupted_revision_is_journaled_as_interrupted():
    """The other way a run ends inside a revision: its entry says so (the run's outcome is
    ``interrupted``), after the applied ones."""
    from alembic_deploy.journal import journal_revisions

    report = DeployReport("upgrade", outcome="interrupted")
    report.applied.append(RevisionResult("a1", (), "first", 1.0, 0.5))
    report.failed_revision = FailedRevision("a2", ("a1",), "second", 1.5, 0.25)
    assert journal_revisions(report) == [
        {"revision": "a1", "down_revisions": [], "description": "first", "duration": 0.5, "status": "applied"},
        {"revision": "a2", "down_revisions": ["a1"], "description": "second", "duration": 0.25,
         "status": "interrupted"},
    ]


def test_a_run_of_many_revisions_is_journaled_within_the_column_a_journal_may_have(mysql_db, make_project):
    """MySQL's TEXT holds 65,535 bytes, and a journal made by an earlier release keeps that type: a
    run that applied more than it can list whole must still journal its outcome (it exited 1 after
    migrating), keeping the newest entries whole and where it began in ``from_revisions``."""
    from alembic_deploy.journal import REVISIONS_BUDGET
    from test_json_output import checked

    project = make_project("generic")
    versions = project / "migrations" / "versions"
    versions.mkdir(exist_ok=True)
    count, down = 200, None
    for i in range(count):
        (versions / f"r{i:03d}.py").write_text(
            f'"""{"a long description of what this revision does " * 8}"""\n'
            f"revision = 'r{i:03d}'\ndown_revision = {down!r}\nbranch_labels = None\ndepends_on = None\n\n"
            "def upgrade():\n    pass\n\ndef downgrade():\n    pass\n"
        )
        down = f"r{i:03d}"
    run = invoke_cli(project, "upgrade", url=mysql_db.url)
    assert run.returncode == 0, run.output
    assert mysql_db.versions() == [f"r{count - 1:03d}"]
    [(text,)] = mysql_db.rows("SELECT revisions FROM alembic_deploy_history WHERE outcome = 'applied'")
    assert len(text.encode()) <= REVISIONS_BUDGET
    [deploy] = checked(invoke_cli(project, "history", "--json", url=mysql_db.url).stdout, "history", 0)["deploys"]
    kept = deploy["revisions"]
    assert [e["revision"] for e in kept] == [f"r{i:03d}" for i in range(count - len(kept), count)]
    assert kept[-1]["description"].startswith("a long description")
    assert kept[-1]["down_revisions"] == [f"r{count - 2:03d}"]
    assert deploy["from_revisions"] == [] and deploy["to_revisions"] == [f"r{count - 1:03d}"]


def test_the_revisions_column_keeps_the_newest_entries_whole_and_the_failed_one_last():
    from alembic_deploy.journal import REVISIONS_BUDGET, revisions_json

    report = DeployReport("upgrade", outcome="failed")
    for i in range(3000):
        report.applied.append(RevisionResult(f"r{i}", (f"r{i - 1}",), "x" * 40, 1.0, 0.5))
    report.failed_revision = FailedRevision("bad", ("r2999",), "the failing one", 1.5, 0.25)
    text = revisions_json(report)
    assert len(text.encode()) <= REVISIONS_BUDGET
    kept = __import__("json").loads(text)
    assert kept[-1] == {"revision": "bad", "down_revisions": ["r2999"], "description": "the failing one",
                        "duration": 0.25, "status": "failed"}
    assert kept[-2]["description"] == "x" * 40 and kept[0]["description"] == ""
    ids = [e["revision"] for e in kept[:-1]]
    assert ids == [f"r{i}" for i in range(3000 - len(ids), 3000)]


def test_a_version_table_it_cannot_read_after_the_failure_is_said_so(sqlite_db, make_project):
    """The revision replaces the version table with a view that raises when read, then fails: the
    message says the table could not be read, and the revisions applied before it are not reported
    as rolled back (reading nothing is not reading "<base>")."""
    import json

    project = make_project("failing")
    broken = project / "migrations" / "versions" / "a4_broken.py"
    broken.write_text(broken.read_text().replace(
        'op.add_column("users", sa.Column("nickname", sa.String(50)))',
        'op.execute("DROP TABLE alembic_version")\n'
        '    op.execute("CREATE VIEW alembic_version AS SELECT abs(-9223372036854775808) AS version_num")',
    ))
    run = invoke_cli(project, "upgrade", "--json", url=sqlite_db.url)
    assert run.returncode == 7, run.output
    [error] = [line for line in run.stderr.splitlines() if line.startswith("error:")]
    assert "the version table could not be read" in error and "<base>" not in error, error
    applied = {r["revision"]: r["status"] for r in json.loads(run.stdout)["applied"]}
    assert applied and "rolled-back" not in applied.values(), applied
