"""The promotion order: ``plan --env production`` reads the journals of the lower environments'
databases and lists (or, with ``require-promotion``, blocks on) pending revisions they never applied."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from alembic_deploy.errors import EXIT_OK, CheckRefused, ConfigError
from helpers import Database, invoke_cli, url_text
from scenarios import copy_project
from test_json_output import checked

OFFLINE = ("plan", "--from", "base", "--dialect", "mysql", "--env", "production")


def _project(tmp_path: Path, qa: str, required: bool = False, extra: str = "") -> Path:
    project = copy_project("sync", tmp_path / "p")
    (project / "pyproject.toml").write_text(
        f"[tool.alembic-deploy.env.qa]\n{qa}\n\n"
        f"[tool.alembic-deploy.env.production]\nrequire-promotion = {'true' if required else 'false'}\n{extra}"
    )
    return project


def _lower(doc: dict, name: str) -> dict:
    (env,) = [e for e in doc["promotion"]["lower"] if e["environment"] == name]
    return env


def test_a_revision_never_applied_in_qa_is_listed_and_those_applied_there_are_not(tmp_path: Path) -> None:
    qa = f"sqlite:///{tmp_path / 'qa.db'}"
    project = _project(tmp_path, f'database-url = "{qa}"')
    assert invoke_cli(project, "upgrade", "a2_users_email_index", "--env", "qa", url=qa).returncode == EXIT_OK
    doc = checked(invoke_cli(project, *OFFLINE, "--json").stdout, "plan", EXIT_OK)
    assert doc["promotion"]["order"] == ["dev", "qa", "beta", "production"]
    assert (doc["promotion"]["required"], doc["promotion"]["blocking"]) == (False, False)
    assert _lower(doc, "qa") == {"environment": "qa", "state": "checked", "missing": ["a3_seed"], "problem": None}
    assert _lower(doc, "dev")["state"] == _lower(doc, "beta")["state"] == "no-database"
    text = invoke_cli(project, *OFFLINE)
    assert text.returncode == EXIT_OK and "warning: qa never applied a3_seed" in text.stdout
    markdown = invoke_cli(project, *OFFLINE, "--format", "markdown")
    assert "| qa | checked | `a3_seed` |" in markdown.stdout and "warning: qa never applied a3_seed" in markdown.stderr


def test_require_promotion_blocks_until_qa_applied_the_revision(tmp_path: Path, pg_db: Database,
                                                                 mysql_db: Database) -> None:
    """qa on PostgreSQL, production on MariaDB, planned live from the revision it is at."""
    project = _project(tmp_path, f'database-url = "{pg_db.url}"\nallow = ["index-not-concurrent"]', required=True)
    assert invoke_cli(project, "upgrade", "a2_users_email_index", "--env", "qa", url=pg_db.url).returncode == EXIT_OK
    assert invoke_cli(project, "upgrade", "a1_users", url=mysql_db.url).returncode == EXIT_OK
    run = invoke_cli(project, "plan", "--env", "production", "--json", url=mysql_db.url)
    doc = checked(run.stdout, "plan", CheckRefused.exit_code)
    assert [r["revision"] for r in doc["revisions"]] == ["a2_users_email_index", "a3_seed"]
    assert doc["promotion"]["blocking"] is True and _lower(doc, "qa")["missing"] == ["a3_seed"]
    assert "requires promotion through dev, qa, beta, and qa never applied a3_seed" in run.stderr
    # qa applies it: the same plan passes.
    assert invoke_cli(project, "upgrade", "--env", "qa", url=pg_db.url).returncode == EXIT_OK
    doc = checked(invoke_cli(project, "plan", "--env", "production", "--json", url=mysql_db.url).stdout,
                  "plan", EXIT_OK)
    assert _lower(doc, "qa")["missing"] == [] and doc["promotion"]["blocking"] is False


def test_a_wrong_password_for_qa_warns_naming_qa_and_never_shows_the_password(
        tmp_path: Path, password_db: Database) -> None:
    """On PostgreSQL and MariaDB, each with a user whose password the server checks."""
    wrong = f"wrong-{uuid.uuid4().hex[:10]}"
    url = url_text(make_url(password_db.url), password=wrong)
    project = _project(tmp_path, 'database-url-env = "QA_DATABASE_URL"')
    env = {"QA_DATABASE_URL": url}
    runs = [invoke_cli(project, *OFFLINE, *view, env=env) for view in ((), ("--json",), ("--format", "markdown"))]
    for run in runs:
        assert run.returncode == EXIT_OK
        for secret in (wrong, make_url(password_db.url).password, url):
            assert secret not in run.stdout + run.stderr
    assert "warning: qa's journal could not be read (" in runs[0].stdout
    qa = _lower(json.loads(runs[1].stdout), "qa")
    assert qa["state"] == "unreachable" and ("password authentication failed" in qa["problem"]
                                             or "Access denied" in qa["problem"]), qa["problem"]
    # Required: the promotion cannot be shown, so the plan is refused, still without the password.
    project = _project(tmp_path / "required", f'database-url = "{url}"', required=True)
    run = invoke_cli(project, *OFFLINE, "--json")
    doc = checked(run.stdout, "plan", CheckRefused.exit_code)
    assert "qa's journal could not be read" in doc["error"]["message"] and wrong not in run.stdout + run.stderr


def test_an_unset_variable_is_unreachable_and_check_reads_no_database(tmp_path: Path) -> None:
    project = _project(tmp_path, 'database-url-env = "QA_DATABASE_URL"', required=True)
    run = invoke_cli(project, *OFFLINE, "--json")
    assert _lower(checked(run.stdout, "plan", CheckRefused.exit_code), "qa")["problem"] == "$QA_DATABASE_URL is not set"
    doc = checked(invoke_cli(project, "check", "--dialect", "mysql", "--env", "production", "--json").stdout,
                  "check", EXIT_OK)
    assert "promotion" not in doc


def test_a_missing_sqlite_file_is_unreachable_and_not_created(tmp_path: Path) -> None:
    qa = tmp_path / "gone" / "qa.db"
    (tmp_path / "gone").mkdir()
    project = _project(tmp_path, f'database-url = "sqlite:///{qa}"')
    doc = checked(invoke_cli(project, *OFFLINE, "--json").stdout, "plan", EXIT_OK)
    assert _lower(doc, "qa") == {"environment": "qa", "state": "unreachable", "missing": [],
                                 "problem": f"the file {qa} does not exist"}
    assert not qa.exists()


def test_an_unusable_url_for_qa_is_a_config_error_naming_qa(tmp_path: Path) -> None:
    run = invoke_cli(_project(tmp_path, 'database-url = "nosuchdb://u:hidden-pw@h/x"'), *OFFLINE)
    assert run.returncode == ConfigError.exit_code and "The database of qa in its policy" in run.stderr
    assert "hidden-pw" not in run.stdout + run.stderr


def test_the_promotion_order_is_a_setting(tmp_path: Path) -> None:
    (tmp_path / "qa.db").touch()  # a database that has no journal: it applied nothing
    qa = f"sqlite:///{tmp_path / 'qa.db'}"
    project = _project(tmp_path, f'database-url = "{qa}"')
    table = (project / "pyproject.toml").read_text()
    (project / "pyproject.toml").write_text(f'[tool.alembic-deploy]\npromotion-order = ["qa", "production"]\n\n{table}')
    doc = checked(invoke_cli(project, *OFFLINE, "--json").stdout, "plan", EXIT_OK)
    assert doc["promotion"]["order"] == ["qa", "production"]
    assert _lower(doc, "qa")["missing"] == ["a1_users", "a2_users_email_index", "a3_seed"]
    flags = ("--promotion-order", "production", "--promotion-order", "qa")
    doc = checked(invoke_cli(project, *OFFLINE, *flags, "--json").stdout, "plan", EXIT_OK)
    assert doc["promotion"]["lower"] == []  # the lowest environment has none below it
    doc = checked(invoke_cli(project, *OFFLINE, "--json", env={"ALEMBIC_DEPLOY_PROMOTION_ORDER": "dev,qa"}).stdout,
                  "plan", EXIT_OK)
    assert doc["promotion"] is None  # production is not in the order: nothing to check
    run = invoke_cli(project, *OFFLINE, "--promotion-order", "qa", "--promotion-order", "qa")
    assert run.returncode == ConfigError.exit_code and "must name each environment once" in run.stderr


def test_requiring_promotion_for_an_environment_the_order_does_not_rank_is_a_config_error(tmp_path: Path) -> None:
    project = _project(tmp_path, 'database-url = "sqlite://"', required=True)
    run = invoke_cli(project, *OFFLINE, "--promotion-order", "qa", "--promotion-order", "prod")
    assert run.returncode == ConfigError.exit_code and "Add production to promotion-order" in run.stderr


@pytest.mark.parametrize(("table", "said"), [
    ('require-promotion = "yes"', "must be true or false, got 'yes'"),
    ('database-url = "sqlite://"\ndatabase-url-env = "X"', "gives both database-url and database-url-env"),
    ("database-url-env = 3", "must be a non-empty string"),
])
def test_a_bad_promotion_key_is_a_config_error(tmp_path: Path, table: str, said: str) -> None:
    run = invoke_cli(_project(tmp_path, table), *OFFLINE)
    assert run.returncode == ConfigError.exit_code and said in run.stderr, run.stderr
