"""Environment policies ([tool.alembic-deploy.env.NAME]): what blocks where, for check and plan."""

from __future__ import annotations

from pathlib import Path

import pytest

from alembic_deploy.errors import EXIT_OK, CheckRefused, ConfigError
from helpers import invoke_cli, run_cli, without_modules
from scenarios import copy_project
from test_json_output import checked

POLICIES = """
[tool.alembic-deploy.env.dev]
allow = ["index-not-concurrent"]

[tool.alembic-deploy.env.production]
fail-on = "warning"
backup-before = ["contract"]
"""
BACKFILL = (
    '"""backfill"""\nfrom alembic import op\nrevision = "a4_backfill"\ndown_revision = "a3_seed"\n'
    "def upgrade():\n    op.execute(\"UPDATE users SET email = lower(email)\")\n"
    "def downgrade():\n    op.execute('SELECT 1')\n"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    project = copy_project("sync", tmp_path / "p")
    (project / "pyproject.toml").write_text(POLICIES)
    (project / "migrations" / "versions" / "a4_backfill.py").write_text(BACKFILL)
    return project


def test_the_policy_blocks_in_production_and_only_warns_in_dev(project: Path) -> None:
    args = ("plan", "--from", "a2_users_email_index", "--dialect", "postgresql", "--json")
    production = checked(invoke_cli(project, *args, "--env", "production").stdout, "plan", CheckRefused.exit_code)
    assert (production["policy"], production["fail_on"], production["blocking"]) == ("production", "warning", 1)
    dev = checked(invoke_cli(project, *args, "--env", "dev").stdout, "plan", EXIT_OK)
    assert (dev["policy"], dev["fail_on"]) == ("dev", "error")
    assert [f["rule"] for r in dev["revisions"] for f in r["findings"]] == ["unbounded-dml"]
    # --fail-on on the command line wins over the policy's.
    assert invoke_cli(project, *args, "--env", "production", "--fail-on", "error").returncode == EXIT_OK


def test_a_rule_the_policy_allows_is_kept_but_does_not_block(project: Path) -> None:
    doc = checked(invoke_cli(project, "check", "--dialect", "postgresql", "--env", "dev", "--json").stdout,
                  "check", EXIT_OK)
    (finding,) = [f for r in doc["revisions"] for f in r["findings"] if f["rule"] == "index-not-concurrent"]
    assert finding["allowed"] == "allowed in dev by its policy"


def test_check_without_env_applies_the_strictest_policy(project: Path) -> None:
    doc = checked(invoke_cli(project, "check", "--dialect", "postgresql", "--json").stdout, "check",
                  CheckRefused.exit_code)
    assert doc["policy"] == "strictest of dev, production" and doc["fail_on"] == "warning"
    assert sorted(f["rule"] for r in doc["revisions"] for f in r["findings"] if f["allowed"] is None) == [
        "index-not-concurrent", "unbounded-dml"]


@pytest.mark.parametrize(("table", "said"), [
    ('[tool.alembic-deploy.env.qa]\nfail-on = "fatal"\n', "fail-on in [tool.alembic-deploy.env.qa]"),
    ("[tool.alembic-deploy.env.qa]\nblock = 1\n", "Unknown key(s) block"),
    ('[tool.alembic-deploy.env.qa]\nallow = "drop-table"\n', "allow in [tool.alembic-deploy.env.qa]"),
    ('[tool.alembic-deploy.env.qa]\nallow = ["drop-tables"]\n', "allows unknown rule(s) drop-tables"),
])
def test_a_bad_policy_is_a_config_error_naming_it(project: Path, table: str, said: str) -> None:
    (project / "pyproject.toml").write_text(table)
    run = invoke_cli(project, "check", "--dialect", "mysql", "--env", "qa")
    assert run.returncode == ConfigError.exit_code and said in run.stderr, run.stderr


def test_env_as_a_name_in_pyproject_still_names_the_environment(project: Path) -> None:
    (project / "pyproject.toml").write_text('[tool.alembic-deploy]\nenv = "dev"\n')
    doc = checked(invoke_cli(project, "check", "--dialect", "mysql", "--json").stdout, "check", EXIT_OK)
    assert doc["policy"] is None


def test_upgrade_refuses_what_the_env_policy_blocks_before_any_revision_runs(project: Path, pg_db) -> None:
    (project / "migrations" / "versions" / "a4_backfill.py").unlink()
    run = invoke_cli(project, "upgrade", "--env", "production", "--json", url=pg_db.url)
    doc = checked(run.stdout, "upgrade", CheckRefused.exit_code)
    assert doc["outcome"] == "refused" and doc["applied"] == [] and doc["to_revisions"] == []
    assert "The production policy blocks 1 lint finding(s)" in run.stderr
    assert "a2_users_email_index line 16: index-not-concurrent (error)" in run.stderr
    # dev allows that rule: the same revisions migrate, the linted ones included.
    run = invoke_cli(project, "upgrade", "--env", "dev", "--json", url=pg_db.url)
    doc = checked(run.stdout, "upgrade", EXIT_OK)
    assert [r["revision"] for r in doc["applied"]] == ["a1_users", "a2_users_email_index", "a3_seed"]


def test_upgrade_without_a_policy_for_its_env_lints_nothing(project: Path, mysql_db) -> None:
    (project / "pyproject.toml").write_text('[tool.alembic-deploy.env.production]\nfail-on = "notice"\n')
    (project / "migrations" / "versions" / "a4_backfill.py").unlink()
    assert invoke_cli(project, "upgrade", "--env", "staging", url=mysql_db.url).returncode == EXIT_OK


# -- --lint: off / warn / enforce on upgrade -------------------------------------------------------
def test_lint_warn_without_a_policy_reports_the_findings_and_migrates(project: Path, pg_db) -> None:
    (project / "pyproject.toml").unlink()
    (project / "migrations" / "versions" / "a4_backfill.py").unlink()
    run = invoke_cli(project, "upgrade", "--lint", "warn", "--json", url=pg_db.url)
    doc = checked(run.stdout, "upgrade", EXIT_OK)
    assert [r["revision"] for r in doc["applied"]] == ["a1_users", "a2_users_email_index", "a3_seed"]
    (warning,) = doc["warnings"]
    assert warning.startswith("lint: a2_users_email_index line 16: index-not-concurrent (error) ")
    assert "warning: lint: a2_users_email_index line 16: index-not-concurrent" in run.stderr


def test_lint_enforce_without_a_policy_refuses_at_error(project: Path, pg_db) -> None:
    (project / "pyproject.toml").write_text('[tool.alembic-deploy]\nlint = "enforce"\n')
    (project / "migrations" / "versions" / "a4_backfill.py").unlink()
    run = invoke_cli(project, "upgrade", "--json", url=pg_db.url)
    doc = checked(run.stdout, "upgrade", CheckRefused.exit_code)
    assert doc["outcome"] == "refused" and doc["applied"] == [] and doc["to_revisions"] == []
    assert "--lint enforce blocks 1 lint finding(s) at or above error" in run.stderr
    assert "--lint warn" in run.stderr  # the way to apply them anyway


def test_lint_off_or_warn_overrides_the_environments_policy(project: Path, pg_db) -> None:
    (project / "migrations" / "versions" / "a4_backfill.py").unlink()
    run = invoke_cli(project, "upgrade", "--env", "production", "--json", url=pg_db.url,
                     env={"ALEMBIC_DEPLOY_LINT": "warn"})
    doc = checked(run.stdout, "upgrade", EXIT_OK)
    assert [w.split(":")[1].strip() for w in doc["warnings"]] == ["a2_users_email_index line 16"]
    assert invoke_cli(project, "upgrade", "--env", "production", "--lint", "off", url=pg_db.url).returncode == EXIT_OK


def test_lint_warn_without_the_lint_extra_warns_and_migrates(project: Path, mysql_db, tmp_path: Path) -> None:
    """A real process in which sqlglot cannot be imported, as in an install without the extra."""
    (project / "pyproject.toml").unlink()
    env = {**without_modules(tmp_path / "stubs", "sqlglot"), "ALEMBIC_DEPLOY_LINT": "warn"}
    run = run_cli(project, "upgrade", "--json", url=mysql_db.url, env=env)
    doc = checked(run.stdout, "upgrade", EXIT_OK)
    assert mysql_db.versions() == ["a4_backfill"]
    (warning,) = doc["warnings"]
    assert warning.startswith("the lint did not run (") and "alembic-deploy[lint]" in warning
    run = run_cli(project, "upgrade", "--lint", "enforce", url=mysql_db.url, env=env)
    assert run.returncode == EXIT_OK  # nothing pending: nothing to lint


def test_lint_enforce_on_sqlite_notes_that_it_reads_no_sqlite(project: Path, sqlite_db) -> None:
    (project / "pyproject.toml").unlink()
    run = invoke_cli(project, "upgrade", "--lint", "enforce", url=sqlite_db.url)
    assert run.returncode == EXIT_OK
    assert "note: --lint enforce was not applied: the lint does not read sqlite SQL." in run.stderr


def test_a_bad_lint_mode_is_a_config_error(project: Path) -> None:
    run = invoke_cli(project, "upgrade", "--lint", "strict", url="sqlite://")
    assert run.returncode == ConfigError.exit_code and "--lint must be one of off, warn, enforce" in run.stderr
