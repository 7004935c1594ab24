"""``alembic-deploy report``: journals filled by real runs (applied, noop, retried behind a real
blocker, interrupted by SIGTERM, killed with SIGKILL and then recorded as crashed, failed, refused)
on PostgreSQL, MariaDB and SQLite, read back into figures checked against the journal rows; several
environments from the policy in one report, with an unreachable one and one never deployed; the
HTML page in a real headless Chromium (test_report_html_chromium.py)."""

from __future__ import annotations

import json
import signal
import statistics
from pathlib import Path

import pytest
from sqlalchemy import text

from alembic_deploy.history_report import parse_since
from helpers import PG_DRIVER, Database, assert_failed_cleanly, free_port, invoke_cli, run_cli, spawn_cli
from lockscene import BLOCKER_MARKER, Blocker, write_revision
from test_json_output import checked
from test_signals import LONG_STATEMENT, _read_stderr_until, _stop, _wait_for_the_long_statement

#: Set in a deploy's environment: a5_long runs LONG_STATEMENT (a signal or a kill ends it), else SELECT 1.
SLOW = "REPORT_TEST_SLOW"


#: The sessions still running the long statement of a killed run, and how to cancel one.
ORPHAN_SQL = {
    "postgresql": "SELECT pid FROM pg_stat_activity WHERE query LIKE 'SELECT pg_sleep(60)%' AND state = 'active' "
                  "AND datname = current_database()",
    "mysql": "SELECT id FROM information_schema.processlist WHERE info LIKE 'SELECT SLEEP(60)%' AND db = DATABASE()",
}
CANCEL_SQL = {"postgresql": "SELECT pg_cancel_backend({session})", "mysql": "KILL QUERY {session}"}


def scene_project(make_project, backend: str) -> Path:
    """alter_users (a1..a4) + a5_long (long only when SLOW is set) + a6_broken (adds a column, then fails)."""
    project = make_project("alter_users")
    write_revision(project, "a5_long", "a4_users_nickname",
                   f"    import os\n    op.execute({LONG_STATEMENT[backend]!r} if os.environ.get({SLOW!r}) "
                   "else 'SELECT 1')")
    write_revision(project, "a6_broken", "a5_long",
                   "    op.add_column('users', sa.Column('motto', sa.String(20)))\n"
                   "    op.execute('SELECT * FROM table_that_does_not_exist')")
    return project


def fill_journal(project: Path, db: Database, env: str = "dev") -> None:
    """Every outcome, by real runs of the CLI, in this order: applied (a1..a3), noop, applied a4
    (retried behind a blocker on the servers), interrupted (SIGTERM in a5), a run killed with SIGKILL
    in a5 (recorded ``crashed`` by the next run, which applies a5), failed (a6), then refused (exit 8:
    a6 left partly applied on MariaDB and SQLite) or failed again (PostgreSQL rolled it back)."""
    def upgrade(target: str, code: int = 0, *args: str) -> None:
        done = run_cli(project, "upgrade", target, "--env", env, *args, url=db.url)
        assert done.returncode == code, done.output

    upgrade("a3_seed")
    upgrade("a3_seed")
    if db.backend == "sqlite":
        upgrade("a4_users_nickname")
    else:
        blocker = Blocker(db.url, db.backend)
        try:
            proc = spawn_cli(project, "upgrade", "a4_users_nickname", "--env", env, "--ddl-lock-timeout", "0.5",
                             url=db.url)
            _read_stderr_until(proc, "retry 1/")
        finally:
            blocker.release()
        _out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    for signum, code in ((signal.SIGTERM, 9), (signal.SIGKILL, -signal.SIGKILL)):
        proc = spawn_cli(project, "upgrade", "a5_long", "--env", env, url=db.url, env={SLOW: "1"})
        _wait_for_the_long_statement(proc, db)
        _stop(proc, signum)
        assert proc.returncode == code
    # The killed run's statement goes on on the server, and the next run waits for its session to end
    # before it records the run as crashed (steps/recovery.py): end it now, as a DBA would, rather than
    # wait out its minute.
    if db.backend != "sqlite":
        with db.engine().connect() as conn:
            for (session,) in conn.execute(text(ORPHAN_SQL[db.backend])).fetchall():
                conn.execute(text(CANCEL_SQL[db.backend].format(session=int(session))))
    upgrade("a5_long")
    upgrade("head", 7)
    upgrade("head", 7 if db.backend == "postgresql" else 8)


def test_each_outcome_of_real_runs_is_counted_and_timed(db, make_project):
    project = scene_project(make_project, db.backend)
    fill_journal(project, db)
    rows = db.journal()
    outcomes = [r["outcome"] for r in rows]
    last = "failed" if db.backend == "postgresql" else "refused"
    assert outcomes == ["applied", "noop", "applied", "interrupted", "crashed", "applied", "failed", last], outcomes

    done = invoke_cli(project, "report", "--json", url=db.url)
    assert done.returncode == 0, done.output
    doc = checked(done.stdout, "report", 0)
    (env,) = doc["environments"]
    assert (env["environment"], env["state"], env["backend"], env["deploys"]) == ("dev", "read", db.backend, 8)
    assert env["outcomes"] == {o: outcomes.count(o) for o in set(outcomes)}
    assert env["failures"] == {o: outcomes.count(o) for o in ("interrupted", "crashed", "failed", "refused")
                               if o in outcomes}
    assert env["success_rate"] == round(4 / 8, 4)
    # p50/p95 as numpy's linear interpolation, which statistics' "inclusive" quantiles also are.
    durations = [r["duration_seconds"] for r in rows if r["duration_seconds"] is not None]
    assert len(durations) == 7  # the killed run has none
    assert env["duration_seconds"]["p50"] == pytest.approx(statistics.median(durations), abs=1e-4)
    assert env["duration_seconds"]["p95"] == pytest.approx(
        statistics.quantiles(durations, n=20, method="inclusive")[18], abs=1e-4)
    assert env["duration_seconds"]["max"] == pytest.approx(max(durations), abs=1e-4)
    waits = [r["lock_wait_seconds"] for r in rows if r["lock_wait_seconds"] is not None]
    assert env["lock_wait_p95_seconds"] == pytest.approx(
        statistics.quantiles(waits, n=20, method="inclusive")[18], abs=1e-4)

    revisions = {r["revision"]: r for r in doc["revisions"]}
    assert list(revisions) == ["a1_users", "a2_users_email_index", "a3_seed", "a4_users_nickname", "a5_long",
                               "a6_broken"]
    first = json.loads(rows[0]["revisions"])
    for entry in first:
        (applied,) = revisions[entry["revision"]]["applied"]
        assert (applied["environment"], applied["journal_id"]) == ("dev", rows[0]["id"])
        assert applied["duration_seconds"] == pytest.approx(entry["duration"], abs=1e-4)
    # a5: interrupted once, then applied by the run that recorded the killed one as crashed.
    assert [a["status"] for a in revisions["a5_long"]["failed"]] == ["interrupted"]
    assert [a["journal_id"] for a in revisions["a5_long"]["applied"]] == [rows[5]["id"]]
    assert revisions["a6_broken"]["applied"] == [] and revisions["a6_broken"]["failed"]
    slowest = doc["slowest_revisions"]
    assert [s["max_duration_seconds"] for s in slowest] == sorted(
        (s["max_duration_seconds"] for s in slowest), reverse=True)
    if db.backend != "sqlite":
        retried = revisions["a4_users_nickname"]
        assert retried["retries"] >= 1 and retried["applied"][0]["attempts"] >= 2
        assert any(BLOCKER_MARKER in b or "pid" in b for b in retried["blockers"]), retried

    failures = doc["latest_failures"]
    assert [f["outcome"] for f in failures] == [last, "failed", "crashed", "interrupted"]
    assert [f["journal_id"] for f in failures] == [rows[i]["id"] for i in (7, 6, 4, 3)]
    by_outcome = {f["outcome"]: f for f in failures}
    assert by_outcome["failed"]["revision"] == "a6_broken"
    assert "table_that_does_not_exist" in by_outcome["failed"]["message"]
    assert by_outcome["interrupted"]["revision"] == "a5_long"
    assert "crashed" in by_outcome["crashed"]["message"]

    text = invoke_cli(project, "report", url=db.url)
    assert text.returncode == 0, text.output
    for expected in ("dev", "50%", "a6_broken", "Latest failures:", "table_that_does_not_exist", "Slowest revisions:"):
        assert expected in text.stdout, text.stdout
    if db.backend != "sqlite":
        assert "Retries and blockers:" in text.stdout


def _policy(project: Path, environments: dict[str, str]) -> None:
    """[tool.alembic-deploy.env.NAME] tables in the project's pyproject.toml: each a URL or ``$VAR``."""
    lines = []
    for name, where in environments.items():
        key = ("database-url-env", where[1:]) if where.startswith("$") else ("database-url", where)
        lines += [f"[tool.alembic-deploy.env.{name}]", f"{key[0]} = {json.dumps(key[1])}", ""]
    (project / "pyproject.toml").write_text("\n".join(lines))


def multi_environment(make_project, tmp_path: Path, sqlite_db: Database, pg_db: Database, mysql_db: Database
                      ) -> tuple[Path, dict[str, str]]:
    """dev on SQLite, qa on PostgreSQL (its URL in $QA_DATABASE_URL), beta on MariaDB, each deployed
    by real runs (applied, noop; dev also a failed run); staging a SQLite database no deploy ever
    journaled; production a PostgreSQL port nobody listens on, its URL carrying a password."""
    project = make_project("failing")
    for name, db in (("dev", sqlite_db), ("qa", pg_db), ("beta", mysql_db)):
        for code in (0, 0):
            done = run_cli(project, "upgrade", "a3_seed", "--env", name, url=db.url)
            assert done.returncode == code, done.output
    failed = run_cli(project, "upgrade", "--env", "dev", url=sqlite_db.url)
    assert failed.returncode == 7, failed.output
    staging = tmp_path / "staging.db"
    import sqlite3

    sqlite3.connect(staging).close()
    production = f"{PG_DRIVER}://deployer:hunter2-{free_port()}@127.0.0.1:{free_port()}/app"
    _policy(project, {"dev": sqlite_db.url, "qa": "$QA_DATABASE_URL", "beta": mysql_db.url,
                      "staging": f"sqlite:///{staging}", "production": production})
    return project, {"QA_DATABASE_URL": pg_db.url, "production_password": production.split(":")[2].split("@")[0]}


def test_the_policy_environments_land_in_one_report_with_unreachable_ones_as_warnings(
        make_project, tmp_path, sqlite_db, pg_db, mysql_db):
    project, extra = multi_environment(make_project, tmp_path, sqlite_db, pg_db, mysql_db)
    password = extra.pop("production_password")
    done = invoke_cli(project, "report", "--json", env=extra)
    assert done.returncode == 0, done.output
    doc = checked(done.stdout, "report", 0)
    envs = {e["environment"]: e for e in doc["environments"]}
    # Promotion order first (dev, qa, beta, production), then the others.
    assert list(envs) == ["dev", "qa", "beta", "production", "staging"]
    assert [envs[n]["backend"] for n in ("dev", "qa", "beta")] == ["sqlite", "postgresql", "mysql"]
    assert [envs[n]["deploys"] for n in ("dev", "qa", "beta")] == [3, 2, 2]
    assert envs["dev"]["failures"] == {"failed": 1} and envs["qa"]["success_rate"] == 1.0
    assert envs["staging"]["state"] == "never-deployed"
    assert envs["production"]["state"] == "unreachable" and envs["production"]["problem"]
    assert [w.split(":")[0] for w in doc["warnings"]] == ["production", "staging"]
    assert "never deployed with alembic-deploy" in doc["warnings"][1]
    # The revision x environment table: a3_seed applied in each of the three, once.
    a3 = next(r for r in doc["revisions"] if r["revision"] == "a3_seed")
    assert sorted(a["environment"] for a in a3["applied"]) == ["beta", "dev", "qa"]
    assert password not in done.output and "warning: production: unreachable" in done.stderr

    only = checked(invoke_cli(project, "report", "--json", "--env", "qa", "--env", "beta", env=extra).stdout,
                   "report", 0)
    assert [e["environment"] for e in only["environments"]] == ["qa", "beta"]
    text = invoke_cli(project, "report", env=extra)
    assert text.returncode == 0 and "warning: staging: never deployed with alembic-deploy" in text.stdout
    assert password not in text.output


def test_database_urls_name_their_environments_and_default_to_what_the_rows_record(make_project, sqlite_db, pg_db):
    project = make_project("sync")
    for name, db in (("qa", sqlite_db), ("production", pg_db)):
        assert run_cli(project, "upgrade", "--env", name, url=db.url).returncode == 0
    doc = checked(invoke_cli(project, "report", "--json", "--database-url", sqlite_db.url,
                             "--database-url", f"live={pg_db.url}").stdout, "report", 0)
    assert [e["environment"] for e in doc["environments"]] == ["qa", "live"]


def test_a_window_leaves_older_runs_out(make_project, db):
    """The first run moved 15 days back (and the second a day back, still inside 2w): the window is
    compared in UTC on each backend, whose DATETIME may have no zone."""
    project = make_project("sync")
    for moved in ("15 days", "1 day"):
        assert run_cli(project, "upgrade", url=db.url).returncode == 0
        with db.engine().begin() as conn:
            conn.exec_driver_sql({
                "sqlite": f"UPDATE alembic_deploy_history SET started_at = datetime(started_at, '-{moved}') "
                          "WHERE id = (SELECT max(id) FROM alembic_deploy_history)",
                "postgresql": f"UPDATE alembic_deploy_history SET started_at = started_at - interval '{moved}' "
                              "WHERE id = (SELECT max(id) FROM alembic_deploy_history)",
                "mysql": f"UPDATE alembic_deploy_history SET started_at = started_at - INTERVAL {moved.split()[0]} DAY "
                         "ORDER BY id DESC LIMIT 1",
            }[db.backend])
    doc = checked(invoke_cli(project, "report", "--json", "--since", "2w", url=db.url).stdout, "report", 0)
    assert doc["environments"][0]["outcomes"] == {"noop": 1}
    assert [r["revision"] for r in doc["revisions"]] == []


def test_no_readable_journal_is_exit_3_naming_each_problem_without_the_password(make_project, tmp_path):
    project = make_project("sync")
    url = f"{PG_DRIVER}://deployer:s3cret-pw@127.0.0.1:{free_port()}/app"
    done = invoke_cli(project, "report", "--database-url", f"prod={url}",
                      "--database-url", f"sqlite:///{tmp_path / 'missing.db'}")
    message = assert_failed_cleanly(done, 3, "s3cret-pw")
    assert "prod: unreachable" in message and "missing.db does not exist" in message
    assert not (tmp_path / "missing.db").exists()  # reading created nothing
    as_json = invoke_cli(project, "report", "--json", "--database-url", url)
    assert checked(as_json.stdout, "report", 3)["error"]["kind"] == "database-unreachable"


@pytest.mark.parametrize(("args", "says"), [
    (("--since", "30"), "--since takes a whole number of hours, days or weeks"),
    (("--since", "0d"), "--since takes a whole number of hours, days or weeks"),
    (("--since", "999999w"), "up to 100 years"),
    (("--env", "nowhere"), "no [tool.alembic-deploy.env.NAME] policy of that name"),
    (("--env", "qa", "--database-url", "sqlite:///x.db"), "Give either --database-url / --database-secret or --env"),
])
def test_bad_options_are_exit_2_in_one_paragraph(make_project, args, says):
    done = invoke_cli(make_project("sync"), "report", *args)
    assert says in assert_failed_cleanly(done, 2)


def test_a_bad_option_with_json_is_one_error_document(make_project):
    done = invoke_cli(make_project("sync"), "report", "--json", "--since", "soon")
    assert checked(done.stdout, "report", 2)["error"]["kind"] == "config-error"


def test_since_units():
    assert parse_since("12h").total_seconds() == 12 * 3600
    assert parse_since("30d").days == 30
    assert parse_since(" 2W ").days == 14


def test_a_database_secret_is_an_environment_and_one_that_cannot_be_read_a_warning(make_project, password_pg_db, aws):
    from test_aws_credentials import rds_secret, store

    project = make_project("sync")
    assert run_cli(project, "upgrade", "--env", "production", url=password_pg_db.url).returncode == 0
    name = store(aws, rds_secret(password_pg_db.url, "postgresql"))
    done = invoke_cli(project, "report", "--json", "--database-secret", name,
                      "--database-secret", "beta=db/no-such-secret", env=aws.env)
    assert done.returncode == 0, done.output
    doc = checked(done.stdout, "report", 0)
    production, beta = doc["environments"]
    assert (production["environment"], production["state"], production["deploys"]) == ("production", "read", 1)
    assert (beta["environment"], beta["state"]) == ("beta", "no-database")
    assert "db/no-such-secret" in beta["problem"]
    assert password_pg_db.password not in done.output


def test_the_html_page_shows_names_as_text_never_as_markup(make_project, sqlite_db, tmp_path):
    project = make_project("sync")
    name = "<img src=x onerror=alert(1)>"
    assert run_cli(project, "upgrade", "--env", name, url=sqlite_db.url).returncode == 0
    page = tmp_path / "report.html"
    done = invoke_cli(project, "report", "--format", "html", "-o", str(page), url=sqlite_db.url)
    assert done.returncode == 0, done.output
    html = page.read_text()
    assert name not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script" not in html and "default-src 'none'" in html


def test_an_unreadable_only_source_is_one_sentence_per_reason(make_project):
    """qa: a reason ending in a full stop gave "..app.db.. Check" in the exit-3 message."""
    run = invoke_cli(make_project("sync"), "report", "--database-url", "prod=notaurl")
    message = assert_failed_cleanly(run, 3)
    assert "not a valid SQLAlchemy URL" in message and ".." not in message.replace("...", ""), message


def test_a_name_with_a_newline_cannot_forge_a_line_of_the_report(make_project, sqlite_db):
    """qa: NAME=URL's name was printed as is; a newline in it started a line of its own."""
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", url=sqlite_db.url).returncode == 0
    run = invoke_cli(project, "report", "--database-url", f"prod\nerror forged={sqlite_db.url}")
    assert run.returncode == 0, run.output
    assert "prod\\nerror forged" in run.stdout and not any(line.startswith("error") for line in run.stdout.splitlines())
