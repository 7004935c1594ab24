"""``--json``: one document per command, of the schema shipped in the package, on stdout for every
exit code (0, 1, 2 and the documented failures alike); times in ISO-8601 UTC, nothing JSON inside
a string."""

from __future__ import annotations

import json
from datetime import datetime
from importlib.resources import files
from pathlib import Path

import jsonschema
import pytest

from alembic_deploy.report import SCHEMA_VERSION
from helpers import PG_DRIVER, free_port, invoke_cli

SCHEMA = json.loads((files("alembic_deploy") / "schema" / "output.schema.json").read_text(encoding="utf-8"))


def checked(stdout: str, command: str | None, exit_code: int) -> dict:
    """The one document on ``stdout``, valid against the schema, for ``command`` exiting ``exit_code``."""
    doc = json.loads(stdout)
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert (doc["schema_version"], doc["command"], doc["exit_code"]) == (SCHEMA_VERSION, command, exit_code)
    if exit_code:
        assert doc["error"]["exit_code"] == exit_code and doc["error"]["message"]
    else:
        assert doc["error"] is None
    return doc


def test_the_schema_is_a_valid_json_schema_shipped_with_the_package():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    assert SCHEMA["properties"]["schema_version"]["const"] == SCHEMA_VERSION


def test_upgrade_applied_then_noop_on_both_paths(make_project, db):
    project = make_project("sync")
    applied = invoke_cli(project, "upgrade", "--json", url=db.url)
    doc = checked(applied.stdout, "upgrade", 0)
    assert doc["outcome"] == "applied"
    assert [r["revision"] for r in doc["applied"]] == ["a1_users", "a2_users_email_index", "a3_seed"]
    assert doc["started_at"] <= doc["finished_at"] and doc["started_at"].endswith("Z")
    for args in ((), ("--no-fast-path",)):
        noop = checked(invoke_cli(project, "upgrade", "--json", *args, url=db.url).stdout, "upgrade", 0)
        assert noop["outcome"] == "noop" and noop["to_revisions"] == ["a3_seed"]


def test_upgrade_failed_and_refused_revisions(make_project, sqlite_db):
    project = make_project("partial")
    assert invoke_cli(project, "upgrade", "a3_seed", url=sqlite_db.url).returncode == 0
    with sqlite_db.engine().begin() as conn:
        conn.exec_driver_sql("CREATE TABLE profiles (legacy INTEGER)")
    failed = invoke_cli(project, "upgrade", "--json", url=sqlite_db.url)
    assert failed.returncode == 7, failed.output
    doc = checked(failed.stdout, "upgrade", 7)
    assert doc["outcome"] == "failed" and doc["error"]["kind"] == "migration-failed"
    refused = invoke_cli(project, "upgrade", "--json", url=sqlite_db.url)
    assert checked(refused.stdout, "upgrade", 8)["error"]["kind"] == "partial-migration"
    # The journal's JSON columns come out as data: the failed run's statement progress is an object.
    history = checked(invoke_cli(project, "history", "--json", url=sqlite_db.url).stdout, "history", 0)
    by_outcome = {row["outcome"]: row for row in history["deploys"]}
    assert isinstance(by_outcome["failed"]["progress"], dict)
    assert isinstance(by_outcome["failed"]["revisions"], list)
    diagnosed = invoke_cli(project, "repair", "--json", url=sqlite_db.url)
    assert diagnosed.returncode == 8, diagnosed.output
    checked(diagnosed.stdout, "repair", 8)


def test_repair_with_nothing_to_repair(make_project, sqlite_db):
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", url=sqlite_db.url).returncode == 0
    doc = checked(invoke_cli(project, "repair", "--json", url=sqlite_db.url).stdout, "repair", 0)
    assert doc["outcome"] == "noop"


def test_status_and_history_are_documents_with_utc_times(make_project, db):
    project = make_project("sync")
    empty = checked(invoke_cli(project, "history", "--json", url=db.url).stdout, "history", 0)
    assert empty["deploys"] == []
    fresh = checked(invoke_cli(project, "status", "--json", url=db.url).stdout, "status", 0)
    assert fresh["current"] == [] and next(p["revision"] for p in fresh["pending"]) == "a1_users"
    assert fresh["up_to_date"] is False
    upgraded = checked(invoke_cli(project, "upgrade", "--json", url=db.url).stdout, "upgrade", 0)
    status = checked(invoke_cli(project, "status", "--json", url=db.url).stdout, "status", 0)
    assert status["up_to_date"] is True and status["current"] == ["a3_seed"]
    [row] = status["last_deploys"]
    assert row["id"] == upgraded["journal_id"]
    assert row["to_revisions"] == ["a3_seed"] and [r["revision"] for r in row["revisions"]][-1] == "a3_seed"
    # The same instant in both commands, in the same form (MySQL's DATETIME keeps whole seconds).
    journaled, reported = (
        datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (row["started_at"], upgraded["started_at"])
    )
    assert abs((journaled - reported).total_seconds()) < 1
    history = checked(invoke_cli(project, "history", "--json", url=db.url).stdout, "history", 0)
    assert history["deploys"] == status["last_deploys"]


# -- every failure exit prints its document too -----------------------------------------------------
@pytest.mark.parametrize(
    ("args", "env", "command"),
    [
        (("upgrade", "--json", "--wait-timeout", "nan"), {}, "upgrade"),  # a setting
        (("status", "--json", "--no-such-option"), {}, "status"),  # click's usage error
        (("history", "--limit", "0"), {"ALEMBIC_DEPLOY_JSON": "1"}, "history"),
        (("upgrade", "--json"), {"ALEMBIC_DEPLOY_WAIT_TIMEOUT": "soon"}, "upgrade"),
        (("status",), {"ALEMBIC_DEPLOY_JSON": "1", "ALEMBIC_DEPLOY_RETRIES": "-1"}, "status"),
        (("run", "--json"), {}, "run"),  # no mode
        (("repair", "--json", "--resume", "--mark-applied"), {}, "repair"),
    ],
)
def test_configuration_errors_print_a_document(tmp_path, args, env, command):
    result = invoke_cli(tmp_path, *args, env=env)
    assert result.returncode == 2, result.output
    doc = checked(result.stdout, command, 2)
    assert doc["error"]["kind"] == "config-error"


def test_a_missing_ini_is_a_refused_upgrade_document(tmp_path):
    run = invoke_cli(tmp_path, "upgrade", "--json", url="sqlite:///app.db")
    doc = checked(run.stdout, "upgrade", 2)
    assert doc["outcome"] == "refused" and "No Alembic config" in doc["error"]["message"]


def test_an_unreachable_database_prints_a_document(make_project):
    url = f"{PG_DRIVER}://app:pw@127.0.0.1:{free_port()}/app"
    for command in ("upgrade", "status", "history"):
        run = invoke_cli(make_project("sync", command), command, "--json", "--wait-timeout", "0", url=url)
        assert run.returncode == 3, run.output
        assert checked(run.stdout, command, 3)["error"]["kind"] == "database-unreachable"


def test_exit_1_prints_a_document_too(make_project, sqlite_db):
    """A database file SQLite cannot read at all: nothing the tool classifies, so an internal error."""
    project = make_project("sync")
    Path(sqlite_db.url.removeprefix("sqlite:///")).write_bytes(b"not a database, " * 64)
    run = invoke_cli(project, "history", "--json", url=sqlite_db.url)
    assert run.returncode == 1, run.output
    doc = checked(run.stdout, "history", 1)
    assert doc["error"]["kind"] == "internal-error" and "bug" in doc["error"]["message"]


def test_a_foreign_journal_table_is_a_config_error_document(make_project, sqlite_db):
    project = make_project("sync")
    with sqlite_db.engine().begin() as conn:
        conn.exec_driver_sql("CREATE TABLE alembic_deploy_history (id INTEGER PRIMARY KEY, note TEXT)")
    run = invoke_cli(project, "history", "--json", url=sqlite_db.url)
    doc = checked(run.stdout, "history", 2)
    assert doc["error"]["kind"] == "config-error" and doc["error"]["fields"]["table"] == "alembic_deploy_history"


def test_journal_entries_of_any_origin_are_data(make_project, sqlite_db):
    """A ``revisions`` or ``progress`` value this tool did not write still reads as data."""
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", url=sqlite_db.url).returncode == 0
    with sqlite_db.engine().begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_deploy_history SET revisions = 'not json', progress = '{\"n\": 1}'")
    [row] = checked(invoke_cli(project, "history", "--json", url=sqlite_db.url).stdout, "history", 0)["deploys"]
    assert row["revisions"] == {"unparsed": "not json"} and row["progress"] == {"n": 1}



@pytest.mark.parametrize(("args", "command"), [
    (("ecs-run",), "ecs-run"),  # its own error, with ALEMBIC_DEPLOY_JSON (no region here)
    (("init", "github-actions", "--json"), "init github-actions"),  # usage errors of commands without --json
    (("init", "--json"), "init"),
    (("demo", "--json"), "demo"),
])
def test_an_error_of_a_command_without_json_is_still_a_document_of_the_schema(make_project, args, command):
    """qa: these documents named commands the schema did not list (and `init github-actions` as
    `github-actions`)."""
    project = make_project("sync")
    run = invoke_cli(project, *args, env={"ALEMBIC_DEPLOY_JSON": "1", "AWS_DEFAULT_REGION": None, "AWS_REGION": None,
                                          "AWS_CONFIG_FILE": "/dev/null"})
    assert run.returncode == 2, run.output
    checked(run.stdout, command, 2)
