"""Logs a machine can read and metrics of every run (issue 25, first half): ``--log-format json``
lines parsed and checked field by field, CloudWatch EMF documents against the specification's
structure, a real Pushgateway read back over its HTTP API, node_exporter textfiles read with
prometheus_client's parser; on real PostgreSQL, MariaDB and SQLite runs that apply, do nothing,
fail, wait and are interrupted."""

from __future__ import annotations

import json
import re
import signal
from datetime import datetime, timezone
from pathlib import Path

import jsonschema
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from alembic_deploy import api
from alembic_deploy.metrics import METRICS
from alembic_deploy.settings import Settings
from helpers import free_port, invoke_cli, run_cli, signal_at, spawn_cli, url_text
from lockscene import BLOCKER_MARKER, Blocker
from pushgateway import Pushgateway
from test_exit_codes import _hold_migration_lock
from test_health import HealthServer

EMF_SCHEMA = json.loads((Path(__file__).parent / "emf.schema.json").read_text())
TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")
COMMON = {"ts", "level", "event"}


def _log(stderr: str) -> list[dict]:
    """Every line of stderr as its JSON object, each with the fields every line has."""
    lines = [json.loads(line) for line in stderr.splitlines()]
    for line in lines:
        assert isinstance(line, dict) and set(line) >= COMMON, line
        assert TS.match(line["ts"]) and line["level"] in ("info", "warning", "error"), line
    return lines


def _events(lines: list[dict], name: str) -> list[dict]:
    return [line for line in lines if line["event"] == name]


def _label(db) -> str:
    url = make_url(db.url)
    return f"{url.host}/{url.database}" if url.host else str(url.database)


@pytest.fixture
def pushgateway():
    server = Pushgateway().start()
    try:
        yield server
    finally:
        server.stop()


# -- the JSON log -------------------------------------------------------------------------------------
def test_json_log_lines_of_a_run_field_by_field(db, make_project):
    project = make_project("sync")
    run = run_cli(project, "upgrade", "--log-format", "json", "--env", "qa", url=db.url)
    assert run.returncode == 0, run.output
    lines = _log(run.stderr)  # alembic's own logging arrives as "log" events: nothing else is on stderr
    assert _events(lines, "log"), "env.py's logging shows as log events"
    [planned] = _events(lines, "revisions_planned")
    assert planned["count"] == 3 and planned["revisions"] == ["a1_users", "a2_users_email_index", "a3_seed"]
    assert planned["message"].startswith("Applying 3 revision(s)")
    started, applied = _events(lines, "revision_started"), _events(lines, "revision_applied")
    assert [e["revision"] for e in started] == [e["revision"] for e in applied] == planned["revisions"]
    for event in applied:
        assert isinstance(event["duration_s"], float) and event["duration_s"] >= 0
        assert isinstance(event["statements"], int) and event["statements"] >= 1
        assert event["description"] and event["message"].startswith(f"applied {event['revision']} ")
    order = [e["event"] for e in lines if e["event"] != "log"]
    assert order == ["revisions_planned", *["revision_started", "revision_applied"] * 3, "outcome"]
    [outcome] = _events(lines, "outcome")
    [row] = db.journal()
    assert outcome["journal_id"] == row["id"] and outcome["outcome"] == row["outcome"] == "applied"
    assert (outcome["level"], outcome["exit_code"], outcome["kind"], outcome["command"]) == ("info", 0, None, "upgrade")
    assert outcome["revisions_applied"] == 3 and outcome["to_revisions"] == ["a3_seed"]
    assert outcome["database"] == _label(db) and outcome["backend"] == db.backend and outcome["environment"] == "qa"
    assert isinstance(outcome["duration_s"], float)

    again = run_cli(project, "upgrade", "--log-format", "json", url=db.url)
    assert again.returncode == 0, again.output
    [noop] = _events(_log(again.stderr), "outcome")  # "Nothing to do" only in its fields, not as text
    assert noop["outcome"] == "noop" and noop["journal_id"] == db.journal()[-1]["id"]


def test_log_format_from_the_environment_and_pyproject(sqlite_db, make_project):
    project = make_project("sync")
    run = run_cli(project, "upgrade", url=sqlite_db.url, env={"ALEMBIC_DEPLOY_LOG_FORMAT": "json"})
    assert run.returncode == 0 and _events(_log(run.stderr), "outcome")[0]["outcome"] == "applied"
    (project / "pyproject.toml").write_text('[tool.alembic-deploy]\nlog-format = "json"\n')
    run = run_cli(project, "status", url=sqlite_db.url)
    assert run.returncode == 0, run.output
    assert {e["event"] for e in _log(run.stderr)} == {"log"}  # env.py's logging; status's report is stdout's
    run = run_cli(project, "upgrade", "--log-format", "yaml", url=sqlite_db.url)
    assert run.returncode == 2 and "--log-format must be one of text, json, got 'yaml'" in run.stderr


def test_waiting_for_the_database_then_its_error_are_json_lines(tmp_path, make_project):
    secret = "s3cr3t-obs-wait"
    url = f"postgresql+psycopg://app:{secret}@127.0.0.1:{free_port()}/appdb"
    run = run_cli(make_project("sync"), "upgrade", "--log-format", "json", "--wait-timeout", "1",
                  "--metrics", "emf", url=url)
    assert run.returncode == 3, run.output
    assert secret not in run.output
    lines = _log(run.stderr)
    assert [e["event"] for e in lines] == ["database_waiting", "outcome", "error"]
    waiting, outcome, error = lines
    assert (waiting["database"], waiting["timeout_s"]) == ("127.0.0.1/appdb", 1.0)
    assert (outcome["outcome"], outcome["exit_code"], outcome["kind"], outcome["level"]) == (
        "failed", 3, "database-unreachable", "error")
    assert (error["kind"], error["exit_code"], error["level"]) == ("database-unreachable", 3, "error")
    assert "within" in error["message"] and error["fields"] == {}
    [emf] = [json.loads(line) for line in run.stdout.splitlines()]
    assert (emf["outcome"], emf["Succeeded"], emf["database"]) == ("failed", 0, "127.0.0.1/appdb")
    assert emf["DatabaseWait"] > 0  # it waited, then gave up


def test_lock_holder_and_lock_wait(sqlite_db, make_project, tmp_path):
    textfile = tmp_path / "deploy.prom"
    with _hold_migration_lock(sqlite_db) as holder:
        run = run_cli(make_project("sync"), "upgrade", "--log-format", "json", "--lock-timeout-wait", "1",
                      "--metrics", f"textfile={textfile}", url=sqlite_db.url)
    assert run.returncode == 6, run.output
    lines = _log(run.stderr)
    [waiting] = _events(lines, "lock_waiting")
    assert holder in json.dumps(waiting["holder"]) and waiting["timeout_s"] == 1.0
    assert holder in waiting["message"]
    [error] = _events(lines, "error")
    assert (error["kind"], error["exit_code"]) == ("lock-not-acquired", 6)
    samples = _samples(textfile.read_text())
    assert samples["alembic_deploy_lock_wait_seconds"][0][0]["outcome"] == "failed"
    assert samples["alembic_deploy_lock_wait_seconds"][0][1] > 0


def test_health_gate_events_and_its_wait_in_the_metrics(sqlite_db, make_project):
    """A gate that never passes: its events, exit 4, and the whole wait as HealthWait."""
    server = HealthServer(lambda n: (200, {"status": "ok"}) if n < 1 else (503, {"status": "down"}))
    with server.running():
        run = run_cli(make_project("sync"), "upgrade", "--log-format", "json", "--wait-healthy", server.url,
                      "--healthy-count", "2", "--health-timeout", "1", "--health-interval", "0.05",
                      "--metrics", "emf", url=sqlite_db.url)
    assert run.returncode == 4, run.output
    lines = _log(run.stderr)
    [waiting] = _events(lines, "health_waiting")
    assert (waiting["urls"], waiting["count"], waiting["timeout_s"]) == ([server.url], 2, 1.0)
    unstable = _events(lines, "health_unstable")
    assert unstable and (unstable[0]["url"], unstable[0]["streak"], unstable[0]["level"]) == (server.url, 1, "warning")
    assert "HTTP 503" in unstable[0]["failure"]
    [error] = _events(lines, "error")
    assert (error["kind"], error["exit_code"]) == ("health-check-failed", 4)
    [emf] = [json.loads(line) for line in run.stdout.splitlines()]
    assert emf["HealthWait"] > 0 and emf["outcome"] == "failed"  # the wait of a gate that did not pass


def test_retry_names_the_blocker(pg_db, make_project, tmp_path):
    project = make_project("alter_users")
    assert run_cli(project, "upgrade", "a3_seed", url=pg_db.url).returncode == 0
    blocker = Blocker(pg_db.url, pg_db.backend)
    try:
        run = run_cli(project, "upgrade", "--log-format", "json", "--ddl-lock-timeout", "0.3", "--retries", "1",
                      "--metrics", "emf", url=pg_db.url)
    finally:
        blocker.release()
    assert run.returncode == 7, run.output
    lines = _log(run.stderr)
    [retry] = _events(lines, "retry")
    assert (retry["level"], retry["reason"], retry["revision"]) == ("warning", "lock-timeout", "a4_users_nickname")
    assert (retry["retry"], retry["retries_allowed"]) == (1, 1) and retry["delay_s"] >= 0
    assert f"pid {blocker.pid}" in retry["blocker"] and BLOCKER_MARKER in retry["blocker"]
    [outcome] = _events(lines, "outcome")
    assert (outcome["outcome"], outcome["failed_revision"], outcome["exit_code"]) == ("failed", "a4_users_nickname", 7)
    [emf] = [json.loads(line) for line in run.stdout.splitlines()]
    assert (emf["Retries"], emf["Succeeded"], emf["RevisionsApplied"]) == (1, 0, 0)


def test_an_error_with_its_traceback_stays_one_json_line(tmp_path):
    run = invoke_cli(tmp_path, "upgrade", "--log-format", "json", "--debug", url="sqlite:///x.db")
    assert run.returncode == 2
    outcome, error = _log(run.stderr)
    assert (outcome["event"], outcome["outcome"], outcome["exit_code"]) == ("outcome", "refused", 2)
    assert (error["event"], error["kind"], error["exit_code"]) == ("error", "config-error", 2)
    assert "No Alembic config" in error["message"] and "Traceback" in error["traceback"]


def test_a_usage_error_is_a_json_line(tmp_path):
    run = run_cli(tmp_path, "upgrade", "--log-format", "json", "--no-such-option")
    assert run.returncode == 2
    [error] = _log(run.stderr)
    assert (error["event"], error["kind"], error["exit_code"]) == ("error", "config-error", 2)
    assert "--no-such-option" in error["message"]


def test_a_library_callers_echo_gets_only_lines_with_text(sqlite_db, make_project):
    """Events for the JSON log only (revision_started, outcome) never reach a caller's echo as empty lines."""
    lines: list[str] = []
    settings = Settings(config=str(make_project("sync") / "alembic.ini"), database_url=sqlite_db.url)
    api.upgrade(settings, echo=lines.append)
    assert lines and all(line.strip() for line in lines), lines
    assert any(line.startswith("Migrated") for line in lines)


def test_sigterm_while_waiting_for_the_lock_still_sends_the_metrics(sqlite_db, make_project, tmp_path):
    textfile = tmp_path / "deploy.prom"
    with _hold_migration_lock(sqlite_db):
        proc = spawn_cli(make_project("sync"), "upgrade", "--log-format", "json", "--lock-timeout-wait", "120",
                         "--metrics", f"textfile={textfile}", url=sqlite_db.url)
        run = signal_at(proc, '"event":"lock_waiting"', signal.SIGTERM)
    assert run.returncode == 9, run.output
    lines = _log(run.stderr)
    assert [e["outcome"] for e in _events(lines, "outcome")] == ["interrupted"]
    assert _events(lines, "error")[0]["kind"] == "interrupted"
    samples = _samples(textfile.read_text())
    assert samples["alembic_deploy_succeeded"] == [({"backend": "sqlite", "command": "upgrade",
                                                     "database": _label(sqlite_db), "environment": "none",
                                                     "outcome": "interrupted"}, 0.0)]


# -- CloudWatch EMF -----------------------------------------------------------------------------------
def _check_emf(doc: dict) -> None:
    """The document against the specification: its schema, then what a schema cannot say."""
    jsonschema.validate(doc, EMF_SCHEMA)
    for directive in doc["_aws"]["CloudWatchMetrics"]:
        for dimension_set in directive["Dimensions"]:
            for name in dimension_set:  # a dimension is a string member of the root
                assert isinstance(doc[name], str) and 0 < len(doc[name]) <= 1024 and doc[name].isascii(), name
        for metric in directive["Metrics"]:  # a metric is a number, or an array of at most 100 numbers
            value = doc[metric["Name"]]
            values = value if isinstance(value, list) else [value]
            assert 0 < len(values) <= 100 and all(isinstance(v, (int, float)) for v in values), metric


def test_emf_document_matches_the_specification(db, make_project):
    project = make_project("sync")
    run = run_cli(project, "upgrade", "--metrics", "emf", "--metrics-namespace", "Team/Deploys", "--env", "beta",
                  url=db.url)
    assert run.returncode == 0, run.output
    [line] = run.stdout.splitlines()
    doc = json.loads(line)
    _check_emf(doc)
    [row] = db.journal()
    aws = doc["_aws"]
    started = datetime.fromisoformat(str(row["started_at"]))
    started = started.replace(tzinfo=timezone.utc) if started.tzinfo is None else started
    assert started.timestamp() * 1000 <= aws["Timestamp"]  # milliseconds, at the run's end
    [directive] = aws["CloudWatchMetrics"]
    assert directive["Namespace"] == "Team/Deploys"
    assert directive["Dimensions"] == [["environment", "database", "backend", "outcome"], ["environment", "outcome"]]
    names = [m["Name"] for m in directive["Metrics"]]
    assert names == [m.name for m in METRICS] + ["RevisionDuration"]
    assert {m["Name"]: m["Unit"] for m in directive["Metrics"]}["DeployDuration"] == "Seconds"
    assert (doc["environment"], doc["database"], doc["backend"], doc["outcome"]) == (
        "beta", _label(db), db.backend, "applied")
    assert (doc["command"], doc["journal_id"]) == ("upgrade", row["id"])
    assert (doc["RevisionsApplied"], doc["Succeeded"]) == (3, 1)
    assert doc["revisions"] == ["a1_users", "a2_users_email_index", "a3_seed"]
    assert len(doc["RevisionDuration"]) == 3 and doc["Statements"] >= 3
    assert doc["DeployDuration"] >= sum(doc["RevisionDuration"])

    noop = run_cli(project, "upgrade", "--metrics", "emf", url=db.url)
    [doc] = [json.loads(line) for line in noop.stdout.splitlines()]
    _check_emf(doc)
    assert (doc["outcome"], doc["environment"], doc["RevisionsApplied"]) == ("noop", "none", 0)
    assert "RevisionDuration" not in doc and "RevisionDuration" not in json.dumps(doc["_aws"])


def test_emf_with_json_goes_to_stderr_and_stdout_stays_one_document(sqlite_db, make_project):
    run = run_cli(make_project("sync"), "upgrade", "--json", "--metrics", "emf", url=sqlite_db.url)
    assert run.returncode == 0, run.output
    report = json.loads(run.stdout)
    assert report["outcome"] == "applied" and report["retries"] == [] and report["health_wait_seconds"] == 0
    assert all(isinstance(r["statements"], int) for r in report["applied"])
    [doc] = [json.loads(line) for line in run.stderr.splitlines() if line.startswith('{"_aws"')]
    _check_emf(doc)
    assert doc["journal_id"] == report["journal_id"]


def test_metrics_never_carry_credentials(password_mysql_db, make_project, tmp_path):
    textfile = tmp_path / "m.prom"
    run = run_cli(make_project("sync"), "upgrade", "--metrics", "emf", "--metrics", f"textfile={textfile}",
                  "--log-format", "json", url=password_mysql_db.url)
    assert run.returncode == 0, run.output
    user = make_url(password_mysql_db.url).username
    for text in (run.stdout, run.stderr, textfile.read_text()):
        assert password_mysql_db.password not in text and f"{user}@" not in text
    assert json.loads(run.stdout)["database"] == _label(password_mysql_db)


# -- Prometheus -----------------------------------------------------------------------------------------
def _samples(text: str) -> dict[str, list[tuple[dict, float]]]:
    """A textfile read with prometheus_client's parser: samples by name, (labels, value)."""
    out: dict[str, list[tuple[dict, float]]] = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge", family
        for sample in family.samples:
            out.setdefault(sample.name, []).append((dict(sample.labels), sample.value))
    return out


def test_textfile_for_node_exporter(pg_db, make_project, tmp_path):
    folder = tmp_path / "textfile"
    folder.mkdir()
    path = folder / "alembic_deploy.prom"
    project = make_project("sync")
    run = run_cli(project, "upgrade", "--env", "dev", "--metrics", f"textfile={path}", url=pg_db.url)
    assert run.returncode == 0, run.output
    samples = _samples(path.read_text())
    labels = {"environment": "dev", "database": _label(pg_db), "backend": "postgresql", "outcome": "applied",
              "command": "upgrade"}
    for metric in METRICS:
        [(got, _value)] = samples[metric.prometheus]
        assert got == labels, metric
    assert samples["alembic_deploy_revisions_applied"][0][1] == 3
    assert samples["alembic_deploy_succeeded"][0][1] == 1
    assert samples["alembic_deploy_last_run_timestamp_seconds"][0][1] > 1.7e9
    per_revision = {lbl["revision"]: value for lbl, value in samples["alembic_deploy_revision_duration_seconds"]}
    assert sorted(per_revision) == ["a1_users", "a2_users_email_index", "a3_seed"]

    again = run_cli(project, "upgrade", "--env", "dev", "--metrics", f"textfile={path}", url=pg_db.url)
    assert again.returncode == 0, again.output
    samples = _samples(path.read_text())  # replaced whole, by a rename: the last run only
    assert samples["alembic_deploy_revisions_applied"] == [({**labels, "outcome": "noop"}, 0.0)]
    assert "alembic_deploy_revision_duration_seconds" not in samples
    assert [p.name for p in folder.iterdir()] == ["alembic_deploy.prom"]  # no temporary file left


def test_pushgateway_round_trip(pg_db, sqlite_db, make_project, pushgateway):
    target = f"pushgateway={pushgateway.url}"
    run = run_cli(make_project("sync"), "upgrade", "--env", "qa", "--metrics", target, url=pg_db.url)
    assert run.returncode == 0, run.output
    [group] = pushgateway.groups()
    assert group["labels"] == {"job": "alembic-deploy", "environment": "qa", "database": _label(pg_db)}
    [applied] = group["alembic_deploy_revisions_applied"]["metrics"]
    assert applied["value"] == "3"
    assert {k: v for k, v in applied["labels"].items() if k != "instance"} == {
        "job": "alembic-deploy", "environment": "qa", "database": _label(pg_db), "backend": "postgresql",
        "outcome": "applied", "command": "upgrade"}
    revisions = {m["labels"]["revision"] for m in group["alembic_deploy_revision_duration_seconds"]["metrics"]}
    assert revisions == {"a1_users", "a2_users_email_index", "a3_seed"}

    # Another database (a path, sent base64-encoded in the grouping key) is a group of its own; a
    # failed run of the first database replaces that group.
    other = run_cli(make_project("sync", "other"), "upgrade", "--env", "qa", "--metrics", target, url=sqlite_db.url)
    assert other.returncode == 0, other.output
    failed = run_cli(make_project("failing"), "upgrade", "--env", "qa", "--metrics", target, url=pg_db.url)
    assert failed.returncode == 7, failed.output
    groups = {g["labels"]["database"]: g for g in pushgateway.groups()}
    assert sorted(groups) == sorted([_label(pg_db), _label(sqlite_db)])
    [succeeded] = groups[_label(pg_db)]["alembic_deploy_succeeded"]["metrics"]
    assert (succeeded["value"], succeeded["labels"]["outcome"]) == ("0", "failed")
    assert "alembic_deploy_revision_duration_seconds" not in groups[_label(pg_db)]
    [other_applied] = groups[_label(sqlite_db)]["alembic_deploy_revisions_applied"]["metrics"]
    assert other_applied["value"] == "3"


def test_pushgateway_down_is_a_warning_never_a_failed_deploy(sqlite_db, make_project):
    closed = f"pushgateway=http://127.0.0.1:{free_port()}"
    run = run_cli(make_project("sync"), "upgrade", "--metrics", closed, url=sqlite_db.url)
    assert run.returncode == 0, run.output
    assert "warning: could not send the run's metrics to the Pushgateway at http://127.0.0.1:" in run.stderr
    assert "exit code are unchanged" in run.stderr and "Traceback" not in run.stderr
    assert [row["outcome"] for row in sqlite_db.journal()] == ["applied"]
    failed = run_cli(make_project("failing"), "upgrade", "--metrics", closed, "--log-format", "json",
                     url=sqlite_db.url)
    assert failed.returncode == 7  # the deploy's own exit code, unchanged
    [warning] = _events(_log(failed.stderr), "metrics_failed")
    assert (warning["level"], warning["sink"]) == ("warning", "pushgateway") and "refused" in warning["error"]


def test_pushgateway_url_credentials_are_masked(sqlite_db, make_project):
    closed = f"pushgateway=http://user:pushpass-obs@127.0.0.1:{free_port()}"
    run = run_cli(make_project("sync"), "upgrade", "--metrics", closed, url=sqlite_db.url)
    assert run.returncode == 0 and "pushpass-obs" not in run.output and "metrics" in run.stderr


#: bcrypt of PUSH_PASSWORD (the Pushgateway's web config wants a hash; made once with crypt(3)).
PUSH_PASSWORD = "push-qa-pass"
PUSH_PASSWORD_BCRYPT = "$2b$12$wgPKHwmid0TeOGQx0uFuBeIHGtfZ7X.iar8PDqsaa/esUd1BjAAci"


def test_a_pushgateway_behind_basic_auth_gets_the_urls_login(sqlite_db, make_project, tmp_path):
    """qa: a URL with user:password@ was sent as the host name (urllib does not read a login from
    a URL): "Name or service not known". The login is HTTP basic auth; the password never shown."""
    config = tmp_path / "web.yml"
    config.write_text(f"basic_auth_users:\n  metrics: {PUSH_PASSWORD_BCRYPT}\n")
    gateway = Pushgateway(flags=(f"--web.config.file={config}",), login=("metrics", PUSH_PASSWORD)).start()
    try:
        project = make_project("sync")
        without = run_cli(project, "upgrade", "a1_users", "--metrics", f"pushgateway={gateway.url}", url=sqlite_db.url)
        assert without.returncode == 0 and "Unauthorized" in without.stderr, without.output
        target = f"pushgateway=http://metrics:{PUSH_PASSWORD}@127.0.0.1:{gateway.port}"
        run = run_cli(project, "upgrade", "--metrics", target, "--log-format", "json", url=sqlite_db.url)
        assert run.returncode == 0 and "metrics_failed" not in run.stderr, run.output
        assert PUSH_PASSWORD not in run.output
        [group] = gateway.groups()
        assert group["alembic_deploy_revisions_applied"]["metrics"][0]["value"] == "2"
    finally:
        gateway.stop()
    refused = run_cli(project, "upgrade", "--metrics", target, url=sqlite_db.url)  # the gateway is gone
    assert "Pushgateway at http://metrics:***@127.0.0.1" in refused.stderr, refused.output
    assert PUSH_PASSWORD not in refused.output


# -- settings -------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "says"), [
    ("statsd", "unknown metrics sink 'statsd'"),
    ("pushgateway=localhost:9091", "needs an http(s) URL"),
    ("textfile=/tmp/deploy.txt", "ending in .prom"),
    ("emf=yes", "emf takes no value"),
])
def test_a_bad_metrics_setting_exits_2(sqlite_db, make_project, value, says):
    run = invoke_cli(make_project("sync"), "upgrade", "--metrics", value, url=sqlite_db.url)
    assert run.returncode == 2 and says in run.stderr, run.output
    assert not sqlite_db.has_table("users")


def test_repair_takes_the_metrics_settings(sqlite_db, make_project, tmp_path):
    path = tmp_path / "repair.prom"
    project = make_project("sync")
    assert run_cli(project, "upgrade", url=sqlite_db.url).returncode == 0
    run = run_cli(project, "repair", "--metrics", f"textfile={path}", "--log-format", "json", url=sqlite_db.url,
                  env={"ALEMBIC_DEPLOY_METRICS_NAMESPACE": "X"})
    assert run.returncode == 0, run.output
    [outcome] = _events(_log(run.stderr), "outcome")
    assert (outcome["command"], outcome["outcome"]) == ("repair", "noop")
    [(labels, _)] = _samples(path.read_text())["alembic_deploy_succeeded"]
    assert (labels["command"], labels["outcome"]) == ("repair", "noop")


def test_rollback_and_restore_send_their_metrics(sqlite_db, make_project, tmp_path):
    project = make_project("sync")
    assert run_cli(project, "upgrade", url=sqlite_db.url).returncode == 0
    path = tmp_path / "rollback.prom"
    run = run_cli(project, "rollback", "--steps", "1", "--force", "--yes", "--metrics", f"textfile={path}",
                  "--log-format", "json", url=sqlite_db.url)
    assert run.returncode == 0, run.output
    [outcome] = _events(_log(run.stderr), "outcome")
    assert (outcome["command"], outcome["outcome"]) == ("rollback", "rolled-back")
    samples = _samples(path.read_text())
    [(labels, undone)] = samples["alembic_deploy_revisions_applied"]
    assert (labels["command"], labels["outcome"], undone) == ("rollback", "rolled-back", 1.0)
    assert [lbl["revision"] for lbl, _ in samples["alembic_deploy_revision_duration_seconds"]] == ["a3_seed"]

    run = run_cli(project, "restore", "no-such-backup", "--yes", "--metrics", f"textfile={path}",
                  "--log-format", "json", url=sqlite_db.url)
    assert run.returncode == 2, run.output
    outcome, error = _events(_log(run.stderr), "outcome") + _events(_log(run.stderr), "error")
    assert (outcome["command"], outcome["outcome"], outcome["kind"]) == ("restore", "refused", "config-error")
    assert error["exit_code"] == 2
    [(labels, _)] = _samples(path.read_text())["alembic_deploy_succeeded"]
    assert (labels["command"], labels["outcome"]) == ("restore", "refused")


def test_metrics_from_the_environment(sqlite_db, make_project, tmp_path):
    path = tmp_path / "env.prom"
    run = run_cli(make_project("sync"), "upgrade", url=url_text(sqlite_db.url),
                  env={"ALEMBIC_DEPLOY_METRICS": f"emf,textfile={path}"})
    assert run.returncode == 0, run.output
    _check_emf(json.loads(run.stdout))
    assert path.exists()
