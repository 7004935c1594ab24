"""``repair --rollback-partial`` undoes only what provably changed in the run that left the revision
partly applied, prints its plan before acting, and refuses (listing every doubtful statement)
whatever it cannot prove: ``IF [NOT] EXISTS`` and ``CREATE OR REPLACE`` complete whether or not
they changed anything, so their undo could drop an object the run never made.

Each revision here runs its statements for real and then fails on a call to a function that does
not exist, after its DDL committed (MariaDB; SQLite, where alembic runs DDL outside a transaction).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from helpers import Database, invoke_cli, schema_snapshot

FAILING = "SELECT no_such_function_ad()"
PLAIN_TABLE = "CREATE TABLE audit_new (id INTEGER PRIMARY KEY, note VARCHAR(20))"


def write_revision(project: Path, upgrade: str, downgrade: str = "pass", revision: str = "c1_risky") -> None:
    """A revision after the sync project's head (a3_seed) whose functions run these bodies."""
    (project / "migrations" / "versions" / f"{revision}.py").write_text(textwrap.dedent(f'''\
        """{revision}

        Revision ID: {revision}
        Revises: a3_seed
        """
        from alembic import op

        revision = "{revision}"
        down_revision = "a3_seed"
        branch_labels = None
        depends_on = None
        ''') + "\n\ndef upgrade() -> None:\n" + textwrap.indent(textwrap.dedent(upgrade), "    ")
        + "\n\ndef downgrade() -> None:\n" + textwrap.indent(textwrap.dedent(downgrade), "    ") + "\n")


def write_statements(project: Path, upgrade: list[str], downgrade: list[str]) -> None:
    """c1_risky: ``upgrade`` then the failing call; ``downgrade`` as its downgrade()."""
    write_revision(project, "\n".join(f"op.execute({sql!r})" for sql in [*upgrade, FAILING]),
                   "\n".join(f"op.execute({sql!r})" for sql in downgrade) or "pass")


def make_failed(project: Path, db: Database, before: list[str] = ()) -> None:  # type: ignore[assignment]
    """sync's revisions applied, ``before`` run by hand (what existed before the deploy), then the
    deploy that fails inside c1_risky (exit 7)."""
    assert invoke_cli(project, "upgrade", "a3_seed", url=db.url).returncode == 0
    with db.engine().begin() as conn:
        for sql in before:
            conn.exec_driver_sql(sql)
    failed = invoke_cli(project, "upgrade", url=db.url)
    assert failed.returncode == 7, failed.output


@pytest.fixture(params=["mysql", "sqlite"])
def nontx_db(request: pytest.FixtureRequest) -> Database:
    return request.getfixturevalue("mysql_db" if request.param == "mysql" else "sqlite_db")


def test_a_table_that_existed_with_rows_survives_rollback_partial(nontx_db, make_project):
    """CREATE TABLE IF NOT EXISTS over a table that was there did nothing: undoing it would drop
    the table and its rows. The rollback is refused, naming it, and nothing is changed."""
    db = nontx_db
    project = make_project("sync")
    write_statements(
        project,
        ["CREATE TABLE IF NOT EXISTS legacy_audit (id INTEGER PRIMARY KEY, note VARCHAR(20))", PLAIN_TABLE],
        ["DROP TABLE audit_new", "DROP TABLE legacy_audit"],
    )
    make_failed(project, db, [
        "CREATE TABLE legacy_audit (id INTEGER PRIMARY KEY, note VARCHAR(20))",
        "INSERT INTO legacy_audit (id, note) VALUES (1, 'a'), (2, 'b'), (3, 'c')",
    ])
    before = schema_snapshot(db.url)
    for args in (("--rollback-partial", "--dry-run"), ("--rollback-partial",)):
        refused = invoke_cli(project, "repair", *args, url=db.url)
        assert refused.returncode == 5, refused.output
        assert ("Cannot roll back revision c1_risky: undoing a statement is safe only when it provably made "
                "the change in that run, and statement 1 (CREATE TABLE IF NOT EXISTS legacy_audit") in refused.stderr
        assert "may have found table legacy_audit already there and changed nothing" in refused.stderr
        assert "Nothing was changed" in refused.stderr and "Traceback" not in refused.output
    assert db.scalar("SELECT COUNT(*) FROM legacy_audit") == 3
    assert schema_snapshot(db.url) == before
    # The exit-8 message offers the rollback as unavailable, for the same reason.
    shown = invoke_cli(project, "upgrade", url=db.url)
    assert shown.returncode == 8, shown.output
    assert "--rollback-partial (not available: undoing a statement is safe only when" in shown.stderr


CONDITIONAL_FORMS = {
    # form: (statement, its undo in downgrade(), what exists before the deploy, backends)
    "create index if not exists": (
        "CREATE INDEX IF NOT EXISTS ix_users_email_old ON users (email)",
        "DROP INDEX ix_users_email_old{on_users}",
        ["CREATE INDEX ix_users_email_old ON users (email)"],
        ("mysql", "sqlite"),
    ),
    "add column if not exists": (
        "ALTER TABLE users ADD COLUMN IF NOT EXISTS legacy_flag INTEGER",
        "ALTER TABLE users DROP COLUMN legacy_flag",
        ["ALTER TABLE users ADD COLUMN legacy_flag INTEGER", "UPDATE users SET legacy_flag = 7"],
        ("mysql",),
    ),
    "create or replace view": (
        "CREATE OR REPLACE VIEW user_names AS SELECT id FROM users",
        "DROP VIEW user_names",
        ["CREATE VIEW user_names AS SELECT id, email FROM users"],
        ("mysql",),
    ),
    "drop table if exists": (
        "DROP TABLE IF EXISTS scratch",
        "CREATE TABLE scratch (id INTEGER)",
        [],
        ("mysql", "sqlite"),
    ),
}


@pytest.mark.parametrize("form", sorted(CONDITIONAL_FORMS))
def test_statements_that_complete_whether_or_not_they_changed_anything_are_never_undone(nontx_db, make_project,
                                                                                        form):
    db = nontx_db
    statement, undo, existing, backends = CONDITIONAL_FORMS[form]
    if db.backend not in backends:
        pytest.skip(f"{db.backend} has no {form}")
    undo = undo.format(on_users=" ON users" if db.backend == "mysql" else "")
    project = make_project("sync")
    write_statements(project, [PLAIN_TABLE, statement], [undo, "DROP TABLE audit_new"])
    make_failed(project, db, existing)
    before = schema_snapshot(db.url)
    refused = invoke_cli(project, "repair", "--rollback-partial", url=db.url)
    assert refused.returncode == 5, refused.output
    assert "Cannot roll back revision c1_risky" in refused.stderr
    assert f"statement 2 ({statement[:20]}" in refused.stderr, refused.stderr
    assert "statement 1 (" not in refused.stderr  # the plain CREATE TABLE is provable: not listed
    assert schema_snapshot(db.url) == before
    if form == "add column if not exists":
        assert db.scalar("SELECT MAX(legacy_flag) FROM users") == 7


def test_a_plain_create_table_that_ran_is_undone_after_a_printed_plan(nontx_db, make_project):
    """The statement failed if the table had been there, so its success proves the run made it."""
    db = nontx_db
    project = make_project("sync")
    write_statements(project, [PLAIN_TABLE, "CREATE INDEX ix_audit_note ON audit_new (note)"],
                   [f"DROP INDEX ix_audit_note{' ON audit_new' if db.backend == 'mysql' else ''}",
                    "DROP TABLE audit_new"])
    make_failed(project, db)
    before = schema_snapshot(db.url)

    dry = invoke_cli(project, "repair", "--rollback-partial", "--dry-run", url=db.url)
    assert dry.returncode == 0, dry.output
    assert "Plan (rollback-partial c1_risky): undo statement(s) 2, 1 with 2 statement(s) of downgrade()." in dry.stderr
    assert "  undo statement 2 (CREATE INDEX ix_audit_note ON audit_new (note)): DROP INDEX ix_audit_note" in dry.stderr
    assert "(drops index ix_audit_note)" in dry.stderr
    assert "  undo statement 1 (CREATE TABLE audit_new" in dry.stderr and "(drops table audit_new)" in dry.stderr
    assert "Dry run: nothing was changed." in dry.stderr
    assert schema_snapshot(db.url) == before

    done = invoke_cli(project, "repair", "--rollback-partial", url=db.url)
    assert done.returncode == 0, done.output
    assert done.stderr.index("Plan (rollback-partial c1_risky)") < done.stderr.index("Repaired c1_risky")
    assert not db.has_table("audit_new")
    assert [(r["command"], r["outcome"]) for r in db.journal()][-2:] == [("repair", "noop"), ("repair", "rolled-back")]
