"""``alembic-deploy plan`` offline: ``--from REV --dialect D``, no database."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from alembic_deploy.errors import EXIT_OK, CheckRefused, ConfigError
from helpers import invoke_cli
from scenarios import copy_project
from test_json_output import checked

VERSIONS = Path("migrations") / "versions"
AUTOCOMMIT = '''"""index users.email concurrently"""
from alembic import op

revision = "a4_concurrent"
down_revision = "a3_seed"


def upgrade():
    op.execute("UPDATE users SET email = lower(email) WHERE id < 100")
    with op.get_context().autocommit_block():
        op.create_index("ix_users_email_lower", "users", ["email"], postgresql_concurrently=True)


def downgrade():
    op.drop_index("ix_users_email_lower", table_name="users")
'''
READS_THE_DATABASE = '''"""decide from the data"""
from alembic import op

revision = "a4_reads"
down_revision = "a3_seed"


def upgrade():
    if op.get_bind().execute("SELECT 1").scalar():
        op.drop_column("users", "email")


def downgrade():
    pass
'''


def test_plan_lists_each_pending_revision_with_its_sql_class_and_findings(tmp_path: Path) -> None:
    project = copy_project("sync", tmp_path / "p")
    (project / VERSIONS / "a4_concurrent.py").write_text(AUTOCOMMIT)
    doc = checked(invoke_cli(project, "plan", "--from", "a1_users", "--dialect", "postgresql", "--json").stdout,
                  "plan", CheckRefused.exit_code)
    assert [r["revision"] for r in doc["revisions"]] == ["a2_users_email_index", "a3_seed", "a4_concurrent"]
    a2, a3, a4 = doc["revisions"]
    assert a2["sql"] == ["CREATE UNIQUE INDEX ix_users_email ON users (email);"]
    assert [f["rule"] for f in a2["findings"]] == ["index-not-concurrent"] and doc["blocking"] == 1
    assert (a2["transactional"], a4["transactional"]) == ("yes", "partly")
    assert a3["message"] == "seed a user (data migration)" and a3["down_revisions"] == ["a2_users_email_index"]
    assert a4["findings"] == [] and a4["compatibility"] == "expand"  # a bounded backfill and a new index


def test_plan_from_base_on_mysql_suggests_markers_and_passes(tmp_path: Path) -> None:
    project = copy_project("sync", tmp_path / "p")
    doc = checked(invoke_cli(project, "plan", "--from", "base", "--dialect", "mysql", "--format", "json").stdout,
                  "plan", EXIT_OK)
    a1 = doc["revisions"][0]
    assert (a1["revision"], a1["compatibility"], a1["transactional"]) == ("a1_users", "expand", "no")
    assert a1["marker"] is None and a1["suggested_marker"] == '{"expand_only": True}'
    assert a1["sql"][0].startswith("CREATE TABLE users")


def test_a_revision_that_cannot_render_offline_is_shown_not_hidden(tmp_path: Path) -> None:
    project = copy_project("sync", tmp_path / "p")
    (project / VERSIONS / "a4_reads.py").write_text(READS_THE_DATABASE)
    run = invoke_cli(project, "plan", "--from", "a3_seed", "--dialect", "postgresql", "--json")
    (a4,) = checked(run.stdout, "plan", EXIT_OK)["revisions"]
    assert a4["transactional"] == "unknown" and a4["sql"] == [] and "AttributeError" in a4["render_error"]
    assert {f["rule"]: f["line"] for f in a4["findings"]} == {"irreversible": 13, "not-renderable": 9}


def test_markdown_goes_to_stdout_and_the_github_step_summary(tmp_path: Path) -> None:
    project = copy_project("sync", tmp_path / "p")
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    run = invoke_cli(project, "plan", "--from", "base", "--dialect", "postgresql", "--format", "markdown",
                     env={"GITHUB_STEP_SUMMARY": str(summary)})
    assert run.returncode == CheckRefused.exit_code
    assert run.stdout.startswith("## alembic-deploy plan: 3 revision(s) from `base` (postgresql)")
    assert "| `a2_users_email_index` | index users.email | other | yes | index-not-concurrent (error) |" in run.stdout
    written = summary.read_text()
    assert written.startswith("earlier step\n## alembic-deploy plan") and "```sql" in written


def test_the_author_comes_from_git(tmp_path: Path) -> None:
    project = copy_project("sync", tmp_path / "p")
    git = ["git", "-C", str(project), "-c", "user.name=Ada Lovelace", "-c", "user.email=ada@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "migrations"], check=True)
    doc = checked(invoke_cli(project, "plan", "--from", "a2_users_email_index", "--dialect", "mysql",
                             "--json").stdout, "plan", EXIT_OK)
    assert [r["author"] for r in doc["revisions"]] == ["Ada Lovelace"]


def test_plan_needs_a_known_from_revision_and_format(tmp_path: Path) -> None:
    project = copy_project("sync", tmp_path / "p")
    assert invoke_cli(project, "plan", "--from", "zz", "--dialect", "mysql").returncode == ConfigError.exit_code
    assert invoke_cli(project, "plan", "--from", "base", "--dialect", "mysql",
                      "--format", "html").returncode == ConfigError.exit_code


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_without_from_the_plan_starts_where_the_database_is(backend: str, request: pytest.FixtureRequest,
                                                            tmp_path: Path) -> None:
    db = request.getfixturevalue("pg_db" if backend == "postgresql" else "mysql_db")
    project = copy_project("sync", tmp_path / "p")
    assert invoke_cli(project, "upgrade", "a1_users", url=db.url).returncode == EXIT_OK
    run = invoke_cli(project, "plan", "--json", url=db.url)
    doc = checked(run.stdout, "plan", CheckRefused.exit_code if backend == "postgresql" else EXIT_OK)
    assert (doc["dialect"], doc["from_revision"]) == (backend, "a1_users")
    assert [r["revision"] for r in doc["revisions"]] == ["a2_users_email_index", "a3_seed"]
    assert invoke_cli(project, "upgrade", url=db.url).returncode == EXIT_OK
    doc = checked(invoke_cli(project, "plan", "--json", url=db.url).stdout, "plan", EXIT_OK)
    assert doc["revisions"] == [] and doc["from_revision"] == "a3_seed"


ENUM_VALUE = '''"""a new mood"""
from alembic import op

revision = "a4_mood"
down_revision = "a3_seed"


def upgrade():
    op.execute("ALTER TYPE mood ADD VALUE 'meh'")
    op.create_index("ix_users_email_lower", "users", ["email"], postgresql_concurrently=True)


def downgrade():
    pass
'''


def _with_online_configure(project: Path, keywords: str) -> None:
    env_py = project / "migrations" / "env.py"
    online = "connection=connection, target_metadata=target_metadata"
    env_py.write_text(env_py.read_text().replace(online, f"{online}, {keywords}"))


@pytest.mark.parametrize(("keywords", "transactional", "per_migration", "rules"), [
    ("", "yes", False, {"add-enum-value", "concurrently-in-transaction"}),
    ("transaction_per_migration=True", "yes", True, {"add-enum-value", "concurrently-in-transaction"}),
    ("transactional_ddl=False", "no", False, set()),
    ("transaction_per_migration=PER_MIGRATION", "yes", None, {"add-enum-value", "concurrently-in-transaction"}),
])
def test_plan_honours_what_env_py_configures_about_transactions(tmp_path: Path, keywords: str, transactional: str,
                                                                per_migration: bool | None, rules: set[str]) -> None:
    """transactional_ddl=False: nothing runs in a transaction, so neither rule about transactions fires;
    transaction_per_migration says when the new enum value commits."""
    project = copy_project("sync", tmp_path / "p")
    (project / VERSIONS / "a4_mood.py").write_text(ENUM_VALUE)
    _with_online_configure(project, keywords)
    doc = checked(invoke_cli(project, "plan", "--from", "a3_seed", "--dialect", "postgresql", "--json").stdout,
                  "plan", CheckRefused.exit_code if rules else EXIT_OK)
    assert doc["env_py"]["transaction_per_migration"] is per_migration
    (revision,) = doc["revisions"]
    assert revision["transactional"] == transactional
    found = {f["rule"]: f["message"] for f in revision["findings"]}
    assert set(found) - {"index-not-concurrent", "irreversible"} == rules
    if per_migration:
        assert "commits with this revision" in found["add-enum-value"]
    elif rules:
        assert "the end of the whole upgrade" in found["add-enum-value"]
    # check reads env.py the same way.
    checked_doc = checked(invoke_cli(project, "check", "--from", "a3_seed", "--dialect", "postgresql",
                                     "--json").stdout, "check", CheckRefused.exit_code if rules else EXIT_OK)
    assert {f["rule"] for r in checked_doc["revisions"] for f in r["findings"]} - {
        "index-not-concurrent", "irreversible"} == rules
