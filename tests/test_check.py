"""``alembic-deploy check``: the revision graph and the lint, with no database and no env.py."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from alembic_deploy.errors import EXIT_OK, CheckRefused, ConfigError
from alembic_deploy.lint import RULES, Severity
from alembic_deploy.settings import SEVERITIES
from helpers import invoke_cli
from scenarios import copy_project
from test_json_output import SCHEMA, checked

VERSIONS = Path("migrations") / "versions"


def revision_file(project: Path, name: str, body: str) -> Path:
    path = project / VERSIONS / f"{name}.py"
    path.write_text(body)
    return path


def revision(rev: str, down: str | None, upgrade: str = "op.execute('SELECT 1')") -> str:
    return (
        f"from alembic import op\nrevision = {rev!r}\ndown_revision = {down!r}\n"
        f"def upgrade():\n    {upgrade}\ndef downgrade():\n    op.execute('SELECT 1')\n"
    )


def test_multiple_heads_exit_5_with_the_merge_command(tmp_path: Path) -> None:
    project = copy_project("two_heads", tmp_path / "p")
    run = invoke_cli(project, "check", "--dialect", "mysql")
    assert run.returncode == CheckRefused.exit_code, run
    assert f"alembic -c {project / 'alembic.ini'} merge -m 'merge heads' a3_seed b2_audit" in run.stdout
    doc = checked(invoke_cli(project, "check", "--dialect", "mysql", "--json").stdout, "check", 5)
    assert [p["kind"] for p in doc["problems"]] == ["multiple-heads"]
    assert doc["heads"] == ["a3_seed", "b2_audit"]


def test_a_clean_history_passes_and_a_blocking_finding_fails(tmp_path: Path) -> None:
    project = copy_project("sync", tmp_path / "p")
    doc = checked(invoke_cli(project, "check", "--dialect", "mysql", "--json").stdout, "check", EXIT_OK)
    assert [r["revision"] for r in doc["revisions"]] == ["a1_users", "a2_users_email_index", "a3_seed"]
    run = invoke_cli(project, "check", "--dialect", "postgresql")
    assert run.returncode == CheckRefused.exit_code
    assert "a2_users_email_index.py:16: index-not-concurrent [error]" in run.stdout
    assert "The check failed: 1 lint finding(s) at or above error" in run.stderr
    doc = checked(invoke_cli(project, "check", "--dialect", "postgresql", "--json").stdout, "check", 5)
    (finding,) = doc["revisions"][1]["findings"]
    assert (finding["rule"], finding["line"], finding["allowed"]) == ("index-not-concurrent", 16, None)


def test_an_allow_comment_with_a_reason_lets_the_check_pass(tmp_path: Path) -> None:
    project = copy_project("sync", tmp_path / "p")
    path = project / VERSIONS / "a2_users_email_index.py"
    path.write_text(path.read_text().replace(
        "def upgrade()", "# alembic-deploy: allow index-not-concurrent -- users has 40 rows\ndef upgrade()", 1))
    run = invoke_cli(project, "check", "--dialect", "postgresql")
    assert run.returncode == EXIT_OK, run
    assert "[allowed: users has 40 rows]" in run.stdout


def test_fail_on_warning_blocks_warnings(tmp_path: Path) -> None:
    project = copy_project("sync", tmp_path / "p")
    revision_file(project, "a4_backfill", revision("a4_backfill", "a3_seed", "op.execute('UPDATE users SET a = 1')"))
    assert invoke_cli(project, "check", "--dialect", "mysql").returncode == EXIT_OK
    run = invoke_cli(project, "check", "--dialect", "mysql", "--fail-on", "warning")
    assert run.returncode == CheckRefused.exit_code and "unbounded-dml [warning]" in run.stdout
    assert invoke_cli(project, "check", "--dialect", "mysql", "--fail-on", "fatal").returncode == ConfigError.exit_code


def test_from_lints_only_what_a_database_there_has_to_apply(tmp_path: Path) -> None:
    project = copy_project("sync", tmp_path / "p")
    doc = checked(invoke_cli(project, "check", "--dialect", "postgresql", "--from", "a2_users_email_index",
                             "--json").stdout, "check", EXIT_OK)
    assert [r["revision"] for r in doc["revisions"]] == ["a3_seed"]
    assert invoke_cli(project, "check", "--dialect", "postgresql", "--from", "nope").returncode == ConfigError.exit_code


@pytest.mark.parametrize(("files", "kind", "said"), [
    ({"a4_orphan": revision("a4_orphan", "a3_seed_typo")}, "dangling-down-revision",
     "a4_orphan has down_revision 'a3_seed_typo', which no revision defines"),
    ({"a4_copy": revision("a3_seed", "a2_users_email_index")}, "duplicate-revision",
     "revision id a3_seed is defined by 2 files"),
    ({"c1": revision("c1", "c2"), "c2": revision("c2", "c1")}, "cycle", "form a cycle"),
    ({"a4_broken": "from alembic import op\nrevision = 'a4'\ndown_revision = 'a3_seed'\nimport no_such_module\n"},
     "import-error", "raises on import: ModuleNotFoundError"),
    ({"a4_syntax": "revision = 'a4'\ndef upgrade(:\n"}, "import-error", "does not compile"),
])
def test_graph_problems_are_each_named(tmp_path: Path, files: dict[str, str], kind: str, said: str) -> None:
    project = copy_project("sync", tmp_path / "p")
    for name, body in files.items():
        revision_file(project, name, body)
    run = invoke_cli(project, "check", "--dialect", "mysql", "--json")
    doc = checked(run.stdout, "check", CheckRefused.exit_code)
    assert kind in [p["kind"] for p in doc["problems"]]
    assert any(said in p["message"] for p in doc["problems"]), doc["problems"]


def test_the_dialect_comes_from_the_url_or_must_be_given(tmp_path: Path) -> None:
    project = copy_project("sync", tmp_path / "p")  # sqlalchemy.url = driver://... (alembic's template)
    run = invoke_cli(project, "check")
    assert run.returncode == ConfigError.exit_code and "--dialect" in run.stderr
    doc = checked(invoke_cli(project, "check", "--json").stdout, "check", ConfigError.exit_code)
    assert "dialect" not in doc
    run = invoke_cli(project, "check", "--json", url="postgresql+psycopg://u@localhost/db")
    assert json.loads(run.stdout)["dialect"] == "postgresql"


def test_severities_of_settings_and_lint_agree_and_the_schema_lists_them() -> None:
    assert [s.value for s in sorted(Severity, key=lambda s: -s.rank)] == list(SEVERITIES)
    assert SCHEMA["$defs"]["severity"]["enum"] == list(SEVERITIES)
    for rule in RULES:
        jsonschema.validate(rule.id, SCHEMA["$defs"]["finding"]["properties"]["rule"])


def test_independent_labelled_branches_are_not_a_problem(tmp_path: Path) -> None:
    labelled = copy_project("depends_on", tmp_path / "labelled")  # heads b2 (branch main) and x1 (branch extra)
    doc = checked(invoke_cli(labelled, "check", "--dialect", "mysql", "--json").stdout, "check", EXIT_OK)
    assert doc["heads"] == ["b2", "x1"] and doc["problems"] == []
    unlabelled = copy_project("depends_on_unlabelled", tmp_path / "unlabelled")
    doc = checked(invoke_cli(unlabelled, "check", "--dialect", "mysql", "--json").stdout, "check", 5)
    assert [p["kind"] for p in doc["problems"]] == ["multiple-heads"]
