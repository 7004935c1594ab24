"""The lint's cases on the real servers: the safe counterpart of every rule migrates for real on each
dialect the rule claims (the safe way is SQL the server runs), and where a rule says the server
refuses a statement, it does.

Each case revision runs with ``alembic-deploy upgrade`` on a fresh database, after a base revision
that creates the tables the cases touch.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from alembic_deploy.errors import EXIT_OK, MigrationFailed
from alembic_deploy.lint import RULES
from helpers import invoke_cli
from scenarios import copy_project
from test_lint_rules import CASES

BASE = '''"""the tables the lint cases touch"""
from alembic import op
import sqlalchemy as sa

revision = "base_schema"
down_revision = None


def upgrade():
    op.create_table("users", sa.Column("id", sa.Integer, primary_key=True), sa.Column("name", sa.String(50)),
                    sa.Column("email", sa.String(255)), sa.Column("age", sa.Integer), sa.Column("active", sa.Boolean))
    op.create_index("ix_users_name", "users", ["name"])
    op.create_table("orders", sa.Column("id", sa.Integer, primary_key=True), sa.Column("user_id", sa.Integer))
    op.create_table("audit", sa.Column("id", sa.Integer, primary_key=True), sa.Column("created_at", sa.DateTime))
    op.create_table("events", sa.Column("id", sa.Integer, nullable=False), sa.Column("kind", sa.String(20)),
                    sa.Column("mood", sa.Enum("ok", "sad", name="mood")))


def downgrade():
    pass
'''


def project_with(case: Path, tmp_path: Path) -> Path:
    project = copy_project("generic", tmp_path / "p")
    versions = project / "migrations" / "versions"
    versions.mkdir(exist_ok=True)
    (versions / "base_schema.py").write_text(BASE)
    (versions / "case.py").write_text(case.read_text().replace("down_revision = None", 'down_revision = "base_schema"'))
    return project


SAFE = [(rule.id, backend) for rule in RULES
        for backend in ("postgresql", "mysql") if backend in rule.dialects]


@pytest.mark.parametrize(("rule", "backend"), SAFE)
def test_the_safe_way_of_each_rule_migrates_on_its_server(rule: str, backend: str, request: pytest.FixtureRequest,
                                                         tmp_path: Path) -> None:
    db = request.getfixturevalue("pg_db" if backend == "postgresql" else "mysql_db")
    project = project_with(CASES / f"{rule}.safe.py", tmp_path)
    run = invoke_cli(project, "upgrade", url=db.url)
    assert run.returncode == EXIT_OK, run.output


def test_postgresql_refuses_what_concurrently_in_transaction_flags(pg_db, tmp_path: Path) -> None:
    project = project_with(CASES / "concurrently-in-transaction.bad.py", tmp_path)
    run = invoke_cli(project, "upgrade", url=pg_db.url)
    assert run.returncode == MigrationFailed.exit_code
    assert "CREATE INDEX CONCURRENTLY cannot run inside a transaction block" in run.output


def test_postgresql_refuses_the_new_enum_value_add_enum_value_flags(pg_db, tmp_path: Path) -> None:
    project = project_with(CASES / "add-enum-value.bad.py", tmp_path)
    run = invoke_cli(project, "upgrade", url=pg_db.url)
    assert run.returncode == MigrationFailed.exit_code
    assert 'UnsafeNewEnumValueUsage: unsafe use of new value' in run.output, run.output  # literals masked
