"""Settings at and past what the journal and the databases hold, on real servers: a chosen name
the journal cannot hold is refused before anything connects (exit 2), provenance a CI system
supplies is clipped and recorded (never failing the deploy), and the journal's name reaches SQL
only quoted."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from alembic_deploy.journal import Journal
from alembic_deploy.provenance import CLIPPED, COLUMN_SIZES
from alembic_deploy.report import DeployReport
from alembic_deploy.settings import Settings
from helpers import Database, invoke_cli, run_cli

HOSTILE = 'alembic_deploy_history" WHERE false; DROP TABLE victim; --'


@pytest.fixture(params=("postgresql", "mysql"))
def server_db(request: pytest.FixtureRequest) -> Database:
    """Servers enforce column lengths (SQLite stores any length)."""
    return request.getfixturevalue("pg_db" if request.param == "postgresql" else "mysql_db")


def test_ci_provenance_longer_than_the_journal_columns_is_clipped_not_fatal(make_project, server_db):
    project = make_project("sync")
    ci = {
        "GITHUB_SHA": "f" * 70,
        "GITHUB_ACTOR": "bot-" + "a" * 300,
        "GITHUB_SERVER_URL": "https://github.example.com/" + "p" * 1100,
        "GITHUB_REPOSITORY": "acme/app",
        "GITHUB_RUN_ID": "42",
    }
    first = run_cli(project, "upgrade", url=server_db.url, env=ci)
    assert first.returncode == 0, first.output
    again = run_cli(project, "upgrade", url=server_db.url, env=ci)  # the no-op (fast path) journals too
    assert again.returncode == 0, again.output
    rows = server_db.journal()
    assert [r["outcome"] for r in rows] == ["applied", "noop"]
    for row in rows:
        assert row["git_sha"] == "f" * (COLUMN_SIZES["git_sha"] - 1) + CLIPPED
        assert row["actor"].startswith("bot-aaa") and row["actor"].endswith(CLIPPED)
        assert len(row["actor"]) == COLUMN_SIZES["actor"]
        assert row["run_url"].startswith("https://github.example.com/ppp") and row["run_url"].endswith(CLIPPED)
        assert len(row["run_url"]) == COLUMN_SIZES["run_url"]
    assert server_db.versions() == ["a3_seed"]


def test_provenance_that_fits_is_kept_whole(make_project, sqlite_db):
    project = make_project("sync")
    sha = "0123456789abcdef" * 4  # a SHA-256 object name: exactly the column
    run = run_cli(project, "upgrade", url=sqlite_db.url, env={"GITHUB_SHA": sha, "GITHUB_ACTOR": "octocat"})
    assert run.returncode == 0, run.output
    [row] = sqlite_db.journal()
    assert (row["git_sha"], row["actor"]) == (sha, "octocat")


@pytest.mark.parametrize("source", ["flag", "env", "pyproject"])
def test_hostile_journal_table_name_exits_2_from_every_source_and_drops_nothing(make_project, pg_db, source):
    project = make_project("sync")
    with pg_db.engine().begin() as conn:
        conn.execute(text("CREATE TABLE victim (id int)"))
        conn.execute(text("INSERT INTO victim VALUES (1)"))
    assert invoke_cli(project, "upgrade", url=pg_db.url).returncode == 0  # so the fast path would run next
    args, env = ["upgrade"], {}
    if source == "flag":
        args += ["--journal-table", HOSTILE]
    elif source == "env":
        env["ALEMBIC_DEPLOY_JOURNAL_TABLE"] = HOSTILE
    else:
        escaped = HOSTILE.replace('"', '\\"')
        (project / "pyproject.toml").write_text(f'[tool.alembic-deploy]\njournal-table = "{escaped}"\n')
    run = invoke_cli(project, *args, url=pg_db.url, env=env)
    assert run.returncode == 2, run.output
    assert "journal" in run.stderr and "Traceback" not in run.output
    assert pg_db.scalar("SELECT count(*) FROM victim") == 1
    assert [r["outcome"] for r in pg_db.journal()] == ["applied"]


def test_nan_wait_timeout_exits_2_at_once_instead_of_waiting_forever(make_project, sqlite_db):
    run = invoke_cli(make_project("sync"), "upgrade", "--wait-timeout", "nan", url=sqlite_db.url)
    assert run.returncode == 2, run.output
    assert "--wait-timeout" in run.stderr
    assert not Path(sqlite_db.url.removeprefix("sqlite:///")).exists()


@pytest.mark.parametrize(("flag", "value"), [("--ddl-lock-timeout", "nan"), ("--statement-timeout", "inf")])
def test_unusable_timeouts_exit_2_and_no_revision_is_blamed(make_project, pg_db, flag, value):
    run = invoke_cli(make_project("sync"), "upgrade", flag, value, url=pg_db.url)
    assert run.returncode == 2, run.output
    assert flag in run.stderr and "Revision" not in run.stderr
    assert not pg_db.has_table("alembic_version")


def test_a_journal_name_that_needs_quoting_works_on_the_full_and_the_fast_path(make_project, db):
    """A reserved word in mixed case: valid as a setting, and only usable if quoted everywhere."""
    project = make_project("sync")
    for _ in ("applied", "noop"):
        run = invoke_cli(project, "upgrade", "--journal-table", "Order", url=db.url)
        assert run.returncode == 0, run.output
    history = invoke_cli(project, "history", "--journal-table", "Order", url=db.url)
    assert history.returncode == 0, history.output
    quote = "`" if db.backend == "mysql" else '"'
    with db.engine().connect() as conn:
        outcomes = [r[0] for r in conn.execute(text(f"SELECT outcome FROM {quote}Order{quote} ORDER BY id"))]
    assert outcomes == ["applied", "noop"]


def test_the_journal_quotes_whatever_name_it_is_given(db):
    """journal.py builds every statement from a Table: even a name the settings would refuse is
    one quoted identifier there, never SQL."""
    engine = db.engine()
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE victim (id int)"))
    name = HOSTILE[:60] if db.backend == "mysql" else HOSTILE
    journal = Journal(engine, name)
    journal.ensure()
    report = DeployReport(command="upgrade")
    journal.start(report, Settings())
    report.outcome = "applied"
    journal.finish(report)
    assert [r["outcome"] for r in journal.rows()] == ["applied"]
    assert journal.unfinished() == []
    assert db.has_table("victim")
    engine.dispose()


def test_more_heads_than_the_journal_column_holds_are_clipped_not_fatal(make_project, pg_db):
    """90 independent heads: their names, comma-separated, outgrow the 1024 characters of the
    journal's revision columns; the deploy still succeeds and journals on both paths."""
    project = make_project("generic")
    versions = project / "migrations" / "versions"
    versions.mkdir(exist_ok=True)
    heads = [f"head_{n:03d}_{'x' * 6}" for n in range(90)]
    for rev in heads:
        (versions / f"{rev}.py").write_text(
            f'revision = "{rev}"\ndown_revision = None\nbranch_labels = None\ndepends_on = None\n\n\n'
            "def upgrade() -> None:\n    pass\n\n\ndef downgrade() -> None:\n    pass\n"
        )
    for _ in ("applied", "noop"):
        run = invoke_cli(project, "upgrade", "heads", url=pg_db.url)
        assert run.returncode == 0, run.output
    assert pg_db.versions() == sorted(heads)
    rows = pg_db.journal()
    assert [r["outcome"] for r in rows] == ["applied", "noop"]
    for row in rows:
        assert len(row["to_revisions"]) == COLUMN_SIZES["to_revisions"] and row["to_revisions"].endswith(CLIPPED)
    assert rows[1]["from_revisions"].endswith(CLIPPED)


@pytest.mark.parametrize(("args", "says"), [
    (("ecs-run", "--cluster", "c", "--service", "s", "--timeout", "-5"), "error: --timeout must be"),
    (("ecs-run", "--cluster", "c", "--service", "s", "--poll-interval", "0"), "error: --poll-interval must be"),
])
def test_a_bad_value_is_named_by_the_flag_the_user_typed(tmp_path, args, says):
    """qa: ecs-run's --timeout was called --ecs-timeout (its setting's name) in the message."""
    run = invoke_cli(tmp_path, *args)
    assert run.returncode == 2 and says in run.stderr, run.output


@pytest.mark.parametrize("name", ["prod\nerror: forged line", "prod\x1b[31m", "prod\tqa"])
def test_an_environment_name_with_control_characters_exits_2(make_project, sqlite_db, name):
    """qa: a newline in --env was journaled and printed as is, forging a line in history and logs."""
    run = invoke_cli(make_project("sync"), "upgrade", "--env", name, url=sqlite_db.url)
    assert run.returncode == 2 and "must be printable characters" in run.stderr, run.output
    assert not sqlite_db.has_table("users")
