"""``repair --rollback-partial`` after a kill -9 inside a statement that commits by itself.

The statement the dead run was inside is settled from the schema, and the schema cannot tell an
object the statement made from one that was there before it (the process may have died between
the server's "already exists" error and the record of it). Before such a statement runs, the run
records whether its object exists (``before`` in the progress record); the rollback undoes it
only when that record shows the object absent then, and otherwise refuses, naming what it will
not drop, and offers ``--keep NAME``.

Each revision here stops its own process at the chosen moment, printing a line on stderr: after
the server ran statement 2 (its "done" is journaled lazily, with the next statement), or when the
server answered it with an error (before the run records the failure). The test kills the
process with SIGKILL on that line, once the journal shows statement 2 ``running``.
"""

from __future__ import annotations

import os
import signal
import textwrap
from dataclasses import asdict
from pathlib import Path

import pytest

from alembic_deploy.progress.record import Statement
from helpers import Database, run_cli, schema_snapshot, spawn_cli
from test_repair import latest_progress

LEGACY = "CREATE TABLE legacy_audit (id INTEGER PRIMARY KEY, note VARCHAR(20))"
LEGACY_ROWS = "INSERT INTO legacy_audit (id, note) VALUES (1, 'a'), (2, 'b'), (3, 'c')"
PLAIN_TABLE = "CREATE TABLE audit_new (id INTEGER PRIMARY KEY, note VARCHAR(20))"
#: What the revision prints when it stops itself (then it waits to be killed).
STOPPED = "TEST-STOPPED-IN-FLIGHT"


#: Stops the process at the moment chosen: prints STOPPED, then waits to be killed.
STOP = f"""\
def _stop(*_args):
    import sys
    import threading

    sys.stderr.write("{STOPPED}\\n")
    sys.stderr.flush()
    threading.Event().wait()
"""
#: Added to env.py before it connects: with STOP_AT=failed, stop when the server answers a
#: statement with an error, before alembic-deploy hears of it (SQLAlchemy runs ``handle_error``
#: listeners in the order they were registered, and alembic-deploy registers its own later).
STOP_ON_ERROR = STOP + """\
if os.environ.get("STOP_AT") == "failed":
    from sqlalchemy import event

    event.listen(connectable, "handle_error", _stop)
"""


def write_revision(project: Path, second: str) -> None:
    """c1_risky after the sync project's head: statement 1 creates audit_new, statement 2 is
    ``second``. With STOP_AT=executed it stops right after the server ran statement 2 (before
    the run journals it done: that waits for the next statement); with STOP_AT=failed, when
    the server answered statement 2 with an error, before the run records it."""
    env_py = project / "migrations" / "env.py"
    connect = "    with connectable.connect() as connection:\n"
    text = env_py.read_text()
    assert connect in text
    text = text.replace(connect, textwrap.indent(STOP_ON_ERROR, "    ") + "\n" + connect)
    env_py.write_text("import os\n" + text)
    (project / "migrations" / "versions" / "c1_risky.py").write_text(textwrap.dedent(f'''\
        """c1_risky

        Revision ID: c1_risky
        Revises: a3_seed
        """
        import os

        from alembic import op
        from sqlalchemy import event

        revision = "c1_risky"
        down_revision = "a3_seed"
        branch_labels = None
        depends_on = None

        {textwrap.indent(STOP, "        ").strip()}


        def upgrade() -> None:
            op.execute({PLAIN_TABLE!r})
            if os.environ.get("STOP_AT") == "executed":
                event.listen(op.get_bind(), "after_cursor_execute", _stop)
            op.execute({second!r})


        def downgrade() -> None:
            op.execute("DROP TABLE legacy_audit")
            op.execute("DROP TABLE audit_new")
        '''))


def kill_in_statement_2(project: Path, db: Database, stop_at: str) -> dict:
    """Run the upgrade until c1_risky stops itself inside statement 2, check that the journal
    records statement 2 as running, SIGKILL the process; returns statement 2's record."""
    proc = spawn_cli(project, "upgrade", url=db.url, env={"STOP_AT": stop_at})
    seen = ""
    while STOPPED not in seen:
        line = proc.stderr.readline()
        assert line, f"exited ({proc.wait()}) before stopping in statement 2: {seen}"
        seen += line
    _row, progress = latest_progress(db)
    assert progress is not None
    (entry,) = progress["revisions"]
    assert entry["revision"] == "c1_risky"
    statement = entry["statements"][-1]
    assert (statement["n"], statement["state"]) == (2, "running"), entry
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return statement


@pytest.fixture(params=["mysql", "sqlite"])
def nontx_db(request: pytest.FixtureRequest) -> Database:
    return request.getfixturevalue("mysql_db" if request.param == "mysql" else "sqlite_db")


def crashed_in_statement_2(make_project, db: Database, second: str, legacy_exists: bool,
                           stop_at: str) -> tuple[Path, dict]:
    """A sync project with c1_risky (statement 2 = ``second``) at a3_seed, legacy_audit made by
    hand with three rows first when ``legacy_exists``, then an upgrade killed inside statement 2
    (``stop_at``), and the next deploy refused (exit 8, crash reported). Returns the project and
    the schema before the killed upgrade; asserts what the run recorded before statement 2 ran."""
    project = make_project("sync")
    write_revision(project, second)
    assert run_cli(project, "upgrade", "a3_seed", url=db.url).returncode == 0
    if legacy_exists:
        with db.engine().begin() as conn:
            conn.exec_driver_sql(LEGACY)
            conn.exec_driver_sql(LEGACY_ROWS)
    before = schema_snapshot(db.url)
    statement = kill_in_statement_2(project, db, stop_at)
    assert statement["before"] is legacy_exists  # legacy_audit existed just before statement 2 ran
    assert db.has_table("legacy_audit") and db.has_table("audit_new")
    refused = run_cli(project, "upgrade", url=db.url)
    assert refused.returncode == 8, refused.output
    assert "crashed while applying revision c1_risky, leaving it partly applied" in refused.stderr
    assert "Revision c1_risky is partly applied: statement(s) 1, 2 of its 2 were committed" in refused.stderr
    return project, before


@pytest.mark.slow
def test_a_table_created_in_flight_by_the_dead_run_is_dropped_by_the_rollback(nontx_db, make_project):
    """The common case: killed after the server created the table, before "done" was journaled.
    The record made before the statement ran shows the table absent then: the rollback drops it."""
    db = nontx_db
    project, before = crashed_in_statement_2(make_project, db, LEGACY, legacy_exists=False, stop_at="executed")

    repaired = run_cli(project, "repair", "--rollback-partial", url=db.url)
    assert repaired.returncode == 0, repaired.output
    assert "  undo statement 2 (CREATE TABLE legacy_audit" in repaired.stderr
    assert "(drops table legacy_audit)" in repaired.stderr
    assert not db.has_table("legacy_audit") and not db.has_table("audit_new")
    assert schema_snapshot(db.url) == before
    final = run_cli(project, "upgrade", url=db.url)
    assert final.returncode == 0, final.output
    assert db.versions() == ["c1_risky"]


@pytest.mark.slow
def test_a_table_that_existed_with_rows_survives_a_conditional_create_killed_in_flight(nontx_db, make_project):
    """CREATE TABLE IF NOT EXISTS over a table with rows, killed after it ran (it did nothing):
    the rollback is refused, names the table, offers --keep; with --keep the rest is undone and
    the table keeps its rows."""
    db = nontx_db
    project, before = crashed_in_statement_2(
        make_project, db, "CREATE TABLE IF NOT EXISTS legacy_audit (id INTEGER PRIMARY KEY, note VARCHAR(20))",
        legacy_exists=True, stop_at="executed")

    refused = run_cli(project, "repair", "--rollback-partial", url=db.url)
    assert refused.returncode == 5, refused.output
    assert "statement 2 (CREATE TABLE IF NOT EXISTS legacy_audit" in refused.stderr
    assert "may have found table legacy_audit already there and changed nothing" in refused.stderr
    assert "add --keep legacy_audit" in refused.stderr and "Nothing was changed" in refused.stderr
    assert db.scalar("SELECT COUNT(*) FROM legacy_audit") == 3

    kept = run_cli(project, "repair", "--rollback-partial", "--keep", "legacy_audit", url=db.url)
    assert kept.returncode == 0, kept.output
    assert "  keep statement 2 (CREATE TABLE IF NOT EXISTS legacy_audit" in kept.stderr
    assert "table legacy_audit stays as it is" in kept.stderr
    assert db.scalar("SELECT COUNT(*) FROM legacy_audit") == 3 and not db.has_table("audit_new")
    assert schema_snapshot(db.url) == before
    final = run_cli(project, "upgrade", url=db.url)
    assert final.returncode == 0, final.output
    assert db.scalar("SELECT COUNT(*) FROM legacy_audit") == 3


@pytest.mark.slow
def test_a_plain_create_killed_between_already_exists_and_its_record_never_drops_the_table(nontx_db, make_project):
    """The server answered CREATE TABLE with "already exists" and the process died before the
    run recorded it: the schema shows the table, as if the statement had made it. The record made
    before it ran shows the table there already: the rollback refuses to drop it, and says so."""
    db = nontx_db
    project, before = crashed_in_statement_2(make_project, db, LEGACY, legacy_exists=True, stop_at="failed")

    for args in (("--rollback-partial", "--dry-run"), ("--rollback-partial",)):
        refused = run_cli(project, "repair", *args, url=db.url)
        assert refused.returncode == 5, refused.output
        assert ("statement 2 (CREATE TABLE legacy_audit (id INTEGER PRIMARY KEY, note VARCHAR(20))) was still "
                "running when that run ended, and table legacy_audit already existed just before it ran (looked up "
                "and recorded then), so it did not create it: the rollback will not drop table legacy_audit"
                ) in refused.stderr, refused.stderr
        assert "add --keep legacy_audit" in refused.stderr and "Nothing was changed" in refused.stderr
    assert db.scalar("SELECT COUNT(*) FROM legacy_audit") == 3

    typo = run_cli(project, "repair", "--rollback-partial", "--keep", "legacy_audti", url=db.url)
    assert typo.returncode == 5, typo.output
    assert "--keep legacy_audti: no statement that ran created or dropped" in typo.stderr

    kept = run_cli(project, "repair", "--rollback-partial", "--keep", "legacy_audit", url=db.url)
    assert kept.returncode == 0, kept.output
    assert ("Plan (rollback-partial c1_risky): undo statement(s) 1 with 1 statement(s) of downgrade(), leaving "
            "what statement(s) 2 did as it is (--keep).") in kept.stderr
    assert db.scalar("SELECT COUNT(*) FROM legacy_audit") == 3 and not db.has_table("audit_new")
    assert schema_snapshot(db.url) == before


def test_only_the_record_made_before_a_statement_ran_proves_what_it_did_when_the_run_died_inside_it():
    """A run of an earlier release recorded no ``before``: the statement it died in is not undone."""
    from dataclasses import replace

    from alembic_deploy.progress.sql_text import DDL, effect_of
    from alembic_deploy.steps.repair import unprovable

    def statement(sql: str, before: bool | None) -> Statement:
        effect = effect_of(sql)
        assert effect is not None
        return Statement(2, sql, "fp", DDL, "done", True, True, asdict(effect), before)

    create, drop = statement(LEGACY, None), statement("DROP TABLE legacy_audit", None)
    assert unprovable(create) is None and unprovable(drop) is None  # completed: its success is the proof
    assert "whether table legacy_audit existed before it ran was not recorded" in unprovable(create, in_flight=True)
    assert "the rollback will not drop table legacy_audit" in unprovable(create, in_flight=True)
    assert "the rollback will not recreate table legacy_audit" in unprovable(drop, in_flight=True)
    assert unprovable(replace(create, before=False), in_flight=True) is None
    assert unprovable(replace(drop, before=True), in_flight=True) is None
    assert "already existed just before it ran" in unprovable(replace(create, before=True), in_flight=True)
    assert "was already gone just before it ran" in unprovable(replace(drop, before=False), in_flight=True)


# -- when the run's own statements answer "did it exist before?" ------------------------------------
def _record_before(db_url: str, revisions: list[list[str]]) -> tuple[list[tuple[str, bool | None]], list[str]]:
    """Run ``revisions`` (each a list of statements) on SQLite under a ProgressTracker, as alembic
    does; returns (statement excerpt, its recorded ``before``) for every statement, and the
    lookups the tracker sent (the sqlite3 trace of ``sqlite_master`` / ``pragma_table_info``)."""
    import sqlalchemy as sa

    from alembic_deploy.backends import for_dialect
    from alembic_deploy.progress.tracker import ProgressTracker

    tracker = ProgressTracker(for_dialect("sqlite"))
    traced: list[str] = []
    seen: list[tuple[str, bool | None]] = []
    engine = sa.create_engine(db_url, future=True)
    try:
        with engine.connect() as conn:
            conn.connection.dbapi_connection.set_trace_callback(traced.append)
            tracker.attach(conn)
            for n, statements in enumerate(revisions):
                tracker.revision_started(f"r{n}")
                for sql in statements:
                    try:
                        conn.exec_driver_sql(sql)
                    except sa.exc.DBAPIError:  # "duplicate column": what matters is the record before
                        failed = tracker.progress.revisions[-1].failed
                        assert failed is not None
                        seen.append((failed.sql, failed.before))
                        conn.rollback()
                    else:
                        last = tracker.progress.revisions[-1].statements[-1]
                        seen.append((last.sql, last.before))
                tracker.revision_applied(f"r{n}")
            tracker.detach()
    finally:
        engine.dispose()
    lookups = [sql for sql in traced if "sqlite_master" in sql or "pragma_table_info" in sql]
    return seen, lookups


def test_a_column_added_to_a_table_this_run_created_is_known_absent_without_a_lookup(tmp_path):
    """The table was created by this run (a statement that committed by itself, every column in
    its text) and nothing since could have added the column: it was absent, no query needed."""
    seen, lookups = _record_before(f"sqlite:///{tmp_path / 'a.db'}", [
        ["CREATE TABLE notes (id INTEGER PRIMARY KEY, title VARCHAR(20))"],
        ["ALTER TABLE notes ADD COLUMN body TEXT"],
        ["CREATE INDEX ix_notes_title ON notes (title)"],
    ])
    assert seen == [("CREATE TABLE notes (id INTEGER PRIMARY KEY, title VARCHAR(20))", False),
                    ("ALTER TABLE notes ADD COLUMN body TEXT", False),
                    ("CREATE INDEX ix_notes_title ON notes (title)", False)]
    # The table and the index were looked up (an index may have a name the server made up); the
    # column was not.
    assert len(lookups) == 2 and not any("pragma_table_info" in sql for sql in lookups), lookups


@pytest.mark.parametrize(("revisions", "why"), [
    ([["CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)"], ["ALTER TABLE notes ADD COLUMN body TEXT"]],
     "the CREATE TABLE spelt the name"),
    ([["CREATE TABLE notes (id INTEGER PRIMARY KEY)"], ["CREATE VIEW notes_view AS SELECT id FROM notes"],
      ["ALTER TABLE notes ADD COLUMN body TEXT"]], "a change with no single known effect ran since"),
    ([["CREATE TABLE notes (id INTEGER PRIMARY KEY)"], ["ALTER TABLE notes ADD COLUMN x INT, ADD COLUMN y INT"],
      ["ALTER TABLE notes ADD COLUMN body TEXT"]], "a statement of several clauses ran since"),
    ([["CREATE TABLE other (id INTEGER PRIMARY KEY)"], ["CREATE TABLE notes AS SELECT id AS body FROM other"],
      ["ALTER TABLE notes ADD COLUMN body TEXT"]], "the table took its columns from a query"),
    ([["CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY)"], ["ALTER TABLE notes ADD COLUMN body TEXT"]],
     "the table may have been there before, with other columns"),
    ([["ALTER TABLE legacy ADD COLUMN body TEXT"]], "the table is not this run's"),
    ([["CREATE TABLE notes (id INTEGER PRIMARY KEY)"], ['ALTER TABLE "NOTES" ADD COLUMN body TEXT']],
     "the table is spelt another way"),
])
def test_a_column_is_looked_up_unless_this_runs_statements_prove_it_absent(tmp_path, revisions, why):
    """Whatever could have made the column without the tracker seeing its name leaves the lookup
    in place: its ``before`` is the database's answer."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    with __import__("sqlalchemy").create_engine(url).begin() as conn:
        conn.exec_driver_sql("CREATE TABLE legacy (id INTEGER PRIMARY KEY, body TEXT)")
    seen, lookups = _record_before(url, revisions)
    last_sql, last_before = seen[-1]
    assert last_sql.endswith("ADD COLUMN body TEXT"), seen
    assert any("pragma_table_info" in sql and "'body'" in sql for sql in lookups), (why, lookups)
    assert last_before is (why in ("the CREATE TABLE spelt the name", "the table is not this run's",
                                   "the table took its columns from a query")), (why, seen)
