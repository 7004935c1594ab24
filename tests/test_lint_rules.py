"""Every lint rule fires on its case and not on its safe counterpart, for each dialect it claims.

The cases are revision files in tests/projects/lint_rules (``RULE.bad.py``, ``RULE.safe.py``),
rendered through Alembic's offline mode for each dialect: no database is needed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from alembic_deploy.alembic_env import read_revision_file
from alembic_deploy.lint import RULES, RevisionLint
from alembic_deploy.lint.offline import lint_revision_file
from alembic_deploy.lint.rule import EVERY_DIALECT

CASES = Path(__file__).parent / "projects" / "lint_rules"


def lint_file(path: Path, dialect: str) -> RevisionLint:
    found = read_revision_file(path)
    assert found is not None and found.error is None, found
    return lint_revision_file(found, dialect)


PAIRS = [(rule.id, dialect) for rule in RULES for dialect in sorted(rule.dialects)]


@pytest.mark.parametrize(("rule", "dialect"), PAIRS)
def test_rule_fires_on_its_case_and_not_on_the_safe_way(rule: str, dialect: str) -> None:
    bad = lint_file(CASES / f"{rule}.bad.py", dialect)
    assert rule in {f.rule for f in bad.findings}, bad.findings
    hit = next(f for f in bad.findings if f.rule == rule)
    assert hit.revision == rule.replace("-", "_") + "_bad" and hit.line is not None and hit.help
    safe = lint_file(CASES / f"{rule}.safe.py", dialect)
    assert rule not in {f.rule for f in safe.findings}, safe.findings


def test_every_rule_has_a_case_pair_and_a_stable_id() -> None:
    ids = [rule.id for rule in RULES]
    assert len(ids) == len(set(ids))
    for rule in RULES:
        assert rule.id.replace("-", "").isalpha() and rule.id == rule.id.lower()
        assert rule.dialects <= EVERY_DIALECT and rule.why and rule.safe
        assert (CASES / f"{rule.id}.bad.py").is_file() and (CASES / f"{rule.id}.safe.py").is_file()
    cases = {p.name.split(".")[0] for p in CASES.glob("*.py")}
    assert cases == set(ids)


def test_allow_comment_keeps_the_finding_with_its_reason(tmp_path: Path) -> None:
    source = (CASES / "drop-column.bad.py").read_text()
    allowed = tmp_path / "allowed.py"
    allowed.write_text(source.replace(
        "def upgrade():", "# alembic-deploy: allow drop-column -- nickname unused since 2.3\ndef upgrade():"))
    finding = next(f for f in lint_file(allowed, "postgresql").findings if f.rule == "drop-column")
    assert finding.allowed == "nickname unused since 2.3" and not finding.blocks
    # Without a reason the comment does not count.
    bare = tmp_path / "bare.py"
    bare.write_text(source.replace("def upgrade():", "# alembic-deploy: allow drop-column\ndef upgrade():"))
    finding = next(f for f in lint_file(bare, "postgresql").findings if f.rule == "drop-column")
    assert finding.allowed is None and finding.blocks


@pytest.mark.parametrize(("case", "expected"), [
    ("drop-column.safe.py", "expand"),     # add a nullable column
    ("drop-column.bad.py", "contract"),
    ("rename-table.bad.py", "other"),
    ("add-required-column.bad.py", "other"),
])
def test_compatibility_class(case: str, expected: str) -> None:
    for dialect in ("postgresql", "mysql"):
        assert lint_file(CASES / case, dialect).compatibility == expected


def test_a_statement_on_a_table_created_in_the_same_revision_is_not_flagged(tmp_path: Path) -> None:
    revision = tmp_path / "new_table.py"
    revision.write_text(
        "from alembic import op\nimport sqlalchemy as sa\nrevision = 'n1'\ndown_revision = None\n"
        "def upgrade():\n"
        "    op.create_table('t', sa.Column('id', sa.Integer, primary_key=True), sa.Column('a', sa.Integer))\n"
        "    op.create_index('ix_t_a', 't', ['a'])\n"
        "    op.add_column('t', sa.Column('b', sa.Integer, nullable=False))\n"
        "def downgrade():\n    op.drop_table('t')\n"
    )
    result = lint_file(revision, "postgresql")
    assert result.findings == [] and result.compatibility == "expand"


def test_mysql_statement_sqlglot_reads_only_as_a_command_is_unparsed_not_passed(tmp_path: Path) -> None:
    revision = tmp_path / "convert.py"
    revision.write_text(
        "from alembic import op\nrevision = 'c1'\ndown_revision = None\n"
        "def upgrade():\n    op.execute('ALTER TABLE t CONVERT TO CHARACTER SET utf8mb4')\n"
        "def downgrade():\n    op.execute('SELECT 1')\n"
    )
    assert [f.rule for f in lint_file(revision, "mysql").findings] == ["unparsed-statement"]


def test_the_readme_lists_every_rule_as_the_code_defines_it() -> None:
    from alembic_deploy.lint.rules import markdown_table

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    assert markdown_table() in readme


@pytest.mark.parametrize(("dialect", "package"), [("postgresql", "pglast"), ("mariadb", "sqlglot")])
def test_a_missing_parser_says_which_extra_to_install(dialect: str, package: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from alembic_deploy.errors import ConfigError
    from alembic_deploy.lint.parsers import parser

    monkeypatch.setitem(sys.modules, package, None)  # import raises ImportError, as when not installed
    with pytest.raises(ConfigError, match=r"pip install 'alembic-deploy\[lint\]'"):
        parser(dialect)


NOT_NULL_VIA_CHECK = '''from alembic import op
revision = "n1"
down_revision = None
def upgrade():
    op.execute("ALTER TABLE users ADD CONSTRAINT ck_name CHECK (name IS NOT NULL) NOT VALID")
    with op.get_context().autocommit_block():
        op.execute("ALTER TABLE users VALIDATE CONSTRAINT ck_name")
    op.execute("ALTER TABLE users ALTER COLUMN name SET NOT NULL")
    op.execute("ALTER TABLE users DROP CONSTRAINT ck_name")
def downgrade():
    op.execute("SELECT 1")
'''


@pytest.mark.parametrize(("edit", "flagged"), [
    ((), False),                                                                   # the recommended pattern
    (('CHECK (name IS NOT NULL) NOT VALID', 'CHECK (name IS NOT NULL)'), False),  # valid from the start
    ((('    with op.get_context().autocommit_block():\n        op.execute("ALTER TABLE users VALIDATE '
      'CONSTRAINT ck_name")\n'), ''), True),                                        # never validated
    (('CHECK (name IS NOT NULL)', 'CHECK (nick IS NOT NULL)'), True),              # another column
    (('CHECK (name IS NOT NULL)', 'CHECK (name <> \'\')'), True),                  # proves nothing about NULL
    (('ALTER TABLE users VALIDATE', 'ALTER TABLE teams VALIDATE'), True),          # another table's check
])
def test_set_not_null_after_a_validated_not_null_check_is_not_flagged_on_postgresql(
        tmp_path: Path, edit: tuple[str, ...], flagged: bool) -> None:
    revision = tmp_path / "n1.py"
    revision.write_text(NOT_NULL_VIA_CHECK.replace(*edit) if edit else NOT_NULL_VIA_CHECK)
    assert ("set-not-null" in {f.rule for f in lint_file(revision, "postgresql").findings}) is flagged


def test_add_enum_value_says_whether_the_revision_itself_uses_the_value(tmp_path: Path) -> None:
    bad = next(f for f in lint_file(CASES / "add-enum-value.bad.py", "postgresql").findings
               if f.rule == "add-enum-value")
    assert "line 10 uses it in the same transaction" in bad.message
    revision = tmp_path / "e1.py"
    revision.write_text((CASES / "add-enum-value.bad.py").read_text().replace(
        "    op.execute(\"UPDATE events SET mood = 'ecstatic' WHERE id = 1\")\n", ""))
    (alone,) = [f for f in lint_file(revision, "postgresql").findings if f.rule == "add-enum-value"]
    assert "a later revision of the same run" in alone.message
    assert lint_file(revision, "postgresql").compatibility == "expand"
