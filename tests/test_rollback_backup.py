"""The backup policy before a rollback, on real SQLite, PostgreSQL and MariaDB with the real dump programs.

The scenario ``backup`` is ``sync`` (a1 users, a2 index, a3 seed row) plus b4 (creates notes) and
b5 (drops users). Rolling back from b4_notes to a3_seed drops notes and its rows: the rollback
plan's ``destructive-downgrade`` finding.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from helpers import Database, assert_failed_cleanly, run_cli, schema_snapshot
from test_json_output import checked

HISTORY = "alembic_deploy_history"
BACKUPS = "alembic_deploy_history_backups"
NOTES = 25


@pytest.fixture(params=("sqlite_db", "pg_db", "mysql_db"))
def database(request: pytest.FixtureRequest) -> Database:
    db: Database = request.getfixturevalue(request.param)
    return db


def _at_b4_with_notes(project: Path, db: Database) -> None:
    r = run_cli(project, "upgrade", "b4_notes", url=db.url)
    assert r.returncode == 0, r.output
    with db.engine().begin() as conn:
        for i in range(1, NOTES + 1):
            conn.execute(text("INSERT INTO notes (id, body) VALUES (:i, :b)"), {"i": i, "b": f"note {i}"})


def _rollback(project: Path, db: Database, *args: str, destination: Path | None = None) -> object:
    return run_cli(project, "rollback", "--to", "a3_seed", "--code-head", "a3_seed", "--yes",
                   "--backup-destination", str(destination or project / "backups"), *args, url=db.url)


def _backups(db: Database) -> list[dict[str, object]]:
    return db.journal(BACKUPS) if db.has_table(BACKUPS) else []


def test_a_destructive_rollback_backs_up_first_and_a_restore_brings_the_rows_back(database, make_project):
    db = database
    project = make_project("backup")
    _at_b4_with_notes(project, db)
    r = _rollback(project, db, "--backup", "destructive", "--json")
    assert r.returncode == 0, r.output
    assert db.versions() == ["a3_seed"] and not db.has_table("notes")
    [backup] = _backups(db)
    doc = checked(r.stdout, "rollback", 0)
    assert doc["backup"]["location"] == backup["location"]
    run = db.journal()[-1]
    assert run["command"] == "rollback" and run["outcome"] == "rolled-back"
    assert backup["outcome"] == "ok" and backup["journal_id"] == run["id"]
    assert backup["revisions"] == "b4_notes" and "b4_notes" in str(backup["reason"])
    assert "destructive-downgrade" in str(backup["reason"])
    assert Path(str(backup["location"])).is_file()
    assert "before rolling back" in r.stderr and f"Backed up to {backup['location']}" in r.stderr

    r = run_cli(project, "restore", str(backup["id"]), "--force", "--yes", url=db.url)
    assert r.returncode == 0, r.output
    assert db.versions() == ["b4_notes"]
    assert db.scalar("SELECT COUNT(*) FROM notes") == NOTES
    assert [row["command"] for row in db.journal()] == ["upgrade", "rollback", "restore"]


def test_policy_never_takes_no_backup_before_a_rollback(database, make_project):
    db = database
    project = make_project("backup")
    _at_b4_with_notes(project, db)
    r = _rollback(project, db, "--backup", "never")
    assert r.returncode == 0, r.output
    assert db.versions() == ["a3_seed"]
    assert _backups(db) == []
    assert not (project / "backups").exists()


def test_major_counts_the_revisions_undone(sqlite_db, make_project):
    project = make_project("backup")
    _at_b4_with_notes(project, sqlite_db)
    # One revision undone: not more than 1, so none ...
    r = _rollback(project, sqlite_db, "--backup", "major", "--backup-major-revisions", "1")
    assert r.returncode == 0, r.output
    assert _backups(sqlite_db) == []
    # ... more than 0: a backup.
    r = run_cli(project, "upgrade", "b4_notes", url=sqlite_db.url)
    assert r.returncode == 0, r.output
    r = _rollback(project, sqlite_db, "--backup", "major", "--backup-major-revisions", "0")
    assert r.returncode == 0, r.output
    [backup] = _backups(sqlite_db)
    assert "1 revisions are undone, more than 0" in str(backup["reason"])


def test_a_failed_backup_stops_the_rollback_before_any_change(database, make_project, tmp_path):
    db = database
    project = make_project("backup")
    _at_b4_with_notes(project, db)
    before = schema_snapshot(db.url, exclude=(HISTORY, f"{HISTORY}_progress", BACKUPS))
    (tmp_path / "a-file").write_text("not a folder")
    r = _rollback(project, db, "--backup", "destructive", destination=tmp_path / "a-file" / "backups")
    message = assert_failed_cleanly(r, 11)
    assert "The rollback stopped before rolling back" in message and "--backup-on-failure continue" in message
    assert db.versions() == ["b4_notes"]
    assert schema_snapshot(db.url, exclude=(HISTORY, f"{HISTORY}_progress", BACKUPS)) == before
    assert db.scalar("SELECT COUNT(*) FROM notes") == NOTES
    run = db.journal()[-1]
    assert run["command"] == "rollback" and run["outcome"] == "failed" and "backup" in run["error"].lower()
    [backup] = _backups(db)
    assert backup["outcome"] == "failed" and backup["journal_id"] == run["id"]


def test_the_environment_policy_applies_to_a_rollback(pg_db, make_project):
    project = make_project("backup")
    (project / "pyproject.toml").write_text(
        '[tool.alembic-deploy.env.production]\nallow = ["index-not-concurrent"]\nbackup = "destructive"\n')
    r = run_cli(project, "upgrade", "b4_notes", "--env", "production", "--backup-destination",
                str(project / "backups"), url=pg_db.url)
    assert r.returncode == 0, r.output
    assert _backups(pg_db) == []  # creating notes destroys nothing
    r = _rollback(project, pg_db, "--env", "production")
    assert r.returncode == 0, r.output
    [backup] = _backups(pg_db)
    assert backup["outcome"] == "ok" and "destructive-downgrade" in str(backup["reason"])
    assert pg_db.versions() == ["a3_seed"]
