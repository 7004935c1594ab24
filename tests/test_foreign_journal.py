"""A table of the journal's name that something else created: every command refuses with exit 2
naming the table and --journal-table, leaves it as it was, and migrates nothing; the fast path
declines rather than answering (or failing) on it."""

from __future__ import annotations

import pytest

from alembic_deploy.journal import journal_table
from helpers import Database, assert_failed_cleanly, invoke_cli, plain_alembic_upgrade

COMMANDS = (("history",), ("status",), ("upgrade",), ("upgrade", "--no-fast-path"))


def _create_foreign(db: Database, columns: str) -> None:
    with db.engine().begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE alembic_deploy_history ({columns})")
        conn.exec_driver_sql("INSERT INTO alembic_deploy_history (id, outcome) VALUES (1, 'theirs')")


def _versions(db: Database) -> list[str]:
    return db.versions() if db.has_table("alembic_version") else []


def _assert_refused_everywhere(db: Database, project, *expected: str, commands=COMMANDS) -> None:
    before, versions = db.rows("SELECT * FROM alembic_deploy_history"), _versions(db)
    for command in commands:
        run = invoke_cli(project, *command, url=db.url)
        message = assert_failed_cleanly(run, 2)
        assert "'alembic_deploy_history' exists but is not an alembic-deploy journal" in message, command
        assert "--journal-table" in message and all(part in message for part in expected), message
    assert db.rows("SELECT * FROM alembic_deploy_history") == before
    assert _versions(db) == versions


# Enough of the shape for the fast path's journal read (outcome, progress) to succeed: it gets as
# far as journaling the no-op, and must decline there.
_FOREIGN = "id INTEGER PRIMARY KEY, outcome VARCHAR(20), progress TEXT, note VARCHAR(20)"


@pytest.mark.parametrize("at_head", [False, True], ids=["empty", "at-head"])
def test_a_foreign_table_of_the_journals_name_exits_2_on_every_command(db, make_project, at_head):
    project = make_project("sync")
    if at_head:
        plain_alembic_upgrade(project, db.url)
    _create_foreign(db, _FOREIGN)
    _assert_refused_everywhere(db, project, "missing columns started_at, finished_at")


def test_a_table_with_the_journals_columns_and_a_required_one_of_its_own_exits_2(sqlite_db, make_project):
    """The class: not only missing columns, also one every journal write would have to fill
    (reading it, history and status can show the rows)."""
    from datetime import datetime, timezone

    from sqlalchemy import Column, String

    project = make_project("sync")
    plain_alembic_upgrade(project, sqlite_db.url)
    theirs = journal_table("alembic_deploy_history")
    theirs.append_column(Column("owner", String(20), nullable=False))
    with sqlite_db.engine().begin() as conn:
        theirs.create(conn)
        conn.execute(theirs.insert().values(started_at=datetime.now(timezone.utc), command="x", outcome="noop",
                                            owner="them"))
    _assert_refused_everywhere(sqlite_db, project, "need a value: owner", commands=COMMANDS[2:])
