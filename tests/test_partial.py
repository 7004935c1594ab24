"""A revision whose third statement fails after two DDL statements committed (MySQL/MariaDB, and
SQLite, where alembic runs DDL outside a transaction): exit 7 on that run, exit 8 on the next one,
and each ``repair`` option ends in the schema plain alembic builds.

The failure is real: a stray ``profiles`` table (say, left by a hotfix) makes the revision's
``CREATE TABLE profiles`` fail after ``ADD COLUMN nickname`` and ``CREATE INDEX`` committed.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from alembic_deploy.backends import for_dialect
from alembic_deploy.progress.record import record
from alembic_deploy.progress.sql_text import DDL, DML, READ, Effect, classify, effect_of, fingerprint
from alembic_deploy.progress.tracker import commits_by_itself, repeats_visibly
from helpers import assert_failed_cleanly, drop_all, invoke_cli, plain_alembic_upgrade, run_cli, schema_snapshot


@pytest.mark.parametrize(
    ("sql", "kind", "effect"),
    [
        ("ALTER TABLE users ADD COLUMN nickname VARCHAR(50)", DDL, Effect("column", "users", "nickname", True)),
        ("ALTER TABLE `users` DROP COLUMN `nickname`", DDL, Effect("column", "users", "nickname", False)),
        ("ALTER TABLE users ADD CONSTRAINT uq_email UNIQUE (email)", DDL,
         Effect("constraint", "users", "uq_email", True)),
        ("ALTER TABLE users ADD COLUMN a INT, ADD COLUMN b INT", DDL, None),  # two clauses: no single effect
        ("CREATE UNIQUE INDEX CONCURRENTLY ix_a ON public.users (a)", DDL,
         Effect("index", "users", "ix_a", True, "public")),
        ("DROP INDEX ix_a ON users", DDL, Effect("index", "users", "ix_a", False)),
        ('CREATE TABLE "Profiles" (\n\tid INTEGER\n)', DDL, Effect("table", None, "profiles", True)),
        ("SELECT SLEEP(0.2)", READ, None),
        ("WITH RECURSIVE c(x) AS (SELECT 1) SELECT COUNT(*) FROM c", READ, None),
        ("WITH d AS (DELETE FROM users RETURNING id) SELECT * FROM d", DML, None),
        ("SELECT * INTO users_copy FROM users", DML, None),
        ("INSERT INTO users (id) VALUES (1)", DML, None),
        ("CALL do_something()", DML, None),  # unknown: counted as a change
    ],
)
def test_statements_are_classified_by_what_they_can_change(sql, kind, effect):
    assert classify(sql) == kind
    assert effect_of(sql) == effect


@pytest.mark.parametrize(
    ("sql", "visibly"),
    [
        ("CREATE TABLE notes (id INTEGER)", True),  # again: "table notes already exists"
        ("ALTER TABLE notes ADD COLUMN body TEXT", True),
        ("DROP INDEX IF EXISTS ix_notes_body", True),  # again: does nothing
        ("ALTER TABLE notes ADD COLUMN a INT, ADD COLUMN b INT", False),  # effect not known for sure
        ("CREATE TABLE notes_copy AS SELECT * FROM notes", False),
        ("INSERT INTO notes (id) VALUES (1)", False),  # again: a second row
        ("UPDATE notes SET body = body || '!'", False),
    ],
)
def test_only_statements_whose_repeat_shows_may_go_unsynced(sql, visibly):
    """What may skip the SQLite progress record's fdatasync: a statement that, run twice after
    an OS crash lost its record, fails or does nothing instead of applying twice."""
    assert repeats_visibly(record(1, sql, may_commit=True)) is visibly


# (statements of each revision, in order) -> whether each progress write had to be durable.
@pytest.mark.parametrize(
    ("revisions", "durable"),
    [
        # Both records may be lost with the server: a run starting r1 again stops on CREATE TABLE
        # (the INSERT that CREATE INDEX committed comes after it).
        ([["CREATE TABLE a (id INT)", "INSERT INTO a VALUES (1)", "CREATE INDEX ix_a ON a (id)"]], [False, False]),
        # r2's first change is the INSERT committed by its CREATE INDEX: run twice, two rows.
        ([["CREATE TABLE a (id INT)"], ["INSERT INTO a VALUES (1)", "CREATE INDEX ix_a ON a (id)"]], [False, True]),
        # Two clauses: no single effect to see; durable before, and after to say it ran.
        ([["CREATE TABLE a (id INT)"], ["ALTER TABLE a ADD COLUMN x INT, ADD COLUMN y INT"]], [False, True, True]),
    ],
)
def test_a_record_skips_durability_only_when_a_rerun_would_stop_at_its_first_change(mysql_db, revisions, durable):
    """MySQL commits the open transaction before each DDL statement: the record written before
    one may be the first to tell of earlier DML. Only when the first change a lost record alone
    knew of repeats visibly may it skip durability (the deferred journal write, the unsynced
    SQLite append)."""
    from alembic_deploy.progress.tracker import ProgressTracker

    writes: list[bool] = []
    tracker = ProgressTracker(for_dialect("mysql"), lambda _state, must_last: writes.append(must_last))
    engine = sa.create_engine(mysql_db.url, future=True)
    try:
        with engine.connect() as conn:
            tracker.attach(conn)
            with conn.begin():  # as alembic does: one transaction, which MySQL DDL commits
                for n, statements in enumerate(revisions):
                    tracker.revision_started(f"r{n}")
                    for sql in statements:
                        conn.exec_driver_sql(sql)
            tracker.detach()
    finally:
        engine.dispose()
    assert writes == durable


def test_a_recorded_statement_is_journaled_as_its_masked_excerpt_never_its_text():
    """Statements keep their full text only until first read; the journal gets the excerpt."""
    from dataclasses import replace

    from alembic_deploy.progress.record import Progress, RevisionRecord

    secret = record(1, "CREATE USER app IDENTIFIED BY 'hunter2'", may_commit=True)
    column = record(2, "ALTER TABLE notes ADD COLUMN body TEXT", may_commit=True)
    state = Progress("mysql", revisions=[RevisionRecord("r1", [secret, column])]).to_json()
    assert "hunter2" not in state and "IDENTIFIED BY '***'" in state
    assert json.loads(state)["revisions"][0]["statements"][1]["effect"]["name"] == "body"
    settled = replace(column, state="done", committed=True)  # what recovery does with one
    assert (settled.fp, settled.effect, settled.applied) == (column.fp, column.effect, True)


@pytest.mark.parametrize("session", [None, 4711, "12:34"])
def test_progress_json_is_the_dataclass_dict_and_reads_back(session):
    """to_json builds its dict without dataclasses.asdict's deep copy (it runs before every
    statement that commits by itself); it must hold exactly what asdict holds, and from_dict
    must read it."""
    from dataclasses import asdict

    from alembic_deploy.progress.record import Progress, RevisionRecord, Statement

    running = record(1, "\nCREATE TABLE \"Notes\" (\n\tbody VARCHAR(20) DEFAULT 'é\\\"'\n)\n", may_commit=True)
    failed = record(2, "UPDATE notes SET body = 'x' WHERE id = 1")
    failed.state = "failed"
    done = Statement(1, "ALTER TABLE t ADD COLUMN c INT", "fp", DDL, "done", True, True,
                     {"kind": "column", "table": "t", "name": "c", "creates": True, "schema": None})
    odd = Statement(2, "SELECT 1", "fp2", READ, effect={"kind": "table", "name": "x"})  # not Effect's keys
    progress = Progress(
        "mysql", "versions", "app", session=session, planned_count=3, planned_last="r2",
        revisions=[RevisionRecord("r1", [done, odd], stamped=True),
                   RevisionRecord("r2", [running, failed], failed=failed)],
        repair={"action": "resume", "revision": "r2"},
    )
    text = progress.to_json()
    assert json.loads(text) == asdict(progress)
    assert Progress.from_dict(json.loads(text)) == progress
    assert json.loads(Progress("sqlite").to_json()) == asdict(Progress("sqlite"))


def test_fingerprints_match_across_online_and_offline_renderings():
    online = "\nCREATE TABLE notes (\n\tid INTEGER NOT NULL AUTO_INCREMENT, \n\t`body` VARCHAR(200)\n)\n\n"
    offline = "CREATE TABLE notes (\n    id INTEGER NOT NULL AUTO_INCREMENT, \n    body VARCHAR(200)\n);"
    assert fingerprint(online) == fingerprint(offline)
    assert fingerprint("SELECT 'a%%'") == fingerprint("SELECT 'a%'")
    assert fingerprint(offline) != fingerprint(offline.replace("200", "201"))


@pytest.mark.parametrize(
    ("backend", "kind", "in_transaction", "autocommit", "commits"),
    [
        ("mysql", DDL, True, False, True),  # implicit commit
        ("mysql", DML, True, False, False),
        ("sqlite", DDL, False, False, True),  # pysqlite: no transaction before DDL
        ("sqlite", DDL, True, False, False),  # after a DML statement opened one
        ("postgresql", DDL, True, False, False),
        ("postgresql", DDL, False, True, True),  # autocommit_block
        ("postgresql", READ, False, True, False),
    ],
)
def test_which_statements_commit_by_themselves(backend, kind, in_transaction, autocommit, commits):
    assert commits_by_itself(for_dialect(backend), kind, in_transaction, autocommit) is commits


def test_the_autocommit_probe_follows_the_sessions_mode_as_autocommit_block_changes_it(db):
    """The probe is found once per migrating connection and read before every statement; alembic's
    autocommit_block() switches the same DBAPI connection to autocommit and back mid-run."""
    engine = sa.create_engine(db.url, poolclass=sa.pool.NullPool, future=True)
    try:
        with engine.connect() as conn:
            dbapi = conn.connection.dbapi_connection
            probe = for_dialect(db.backend).autocommit_probe(dbapi)
            assert probe() is False
            conn.execution_options(isolation_level="AUTOCOMMIT")
            assert probe() is True
            conn.execution_options(isolation_level=conn.default_isolation_level)
            assert probe() is False
    finally:
        engine.dispose()


@pytest.fixture(params=["mysql", "sqlite"])
def nontx_db(request: pytest.FixtureRequest):
    """A database whose DDL is not transactional: MariaDB (through a user with a password) and SQLite."""
    return request.getfixturevalue("password_mysql_db" if request.param == "mysql" else "sqlite_db")


def secrets_of(db) -> tuple[str, ...]:
    return (db.password,) if db.password else ()


def reference_schema(project, db) -> dict:
    """The schema plain ``alembic upgrade head`` builds, read from ``db``, which is then emptied."""
    plain_alembic_upgrade(project, db.url)
    snapshot = schema_snapshot(db.url)
    drop_all(db.url)
    return snapshot


def make_partial(project, db):
    """a1..a3 applied, a stray ``profiles`` table, then ``upgrade``: a4's statements 1-2 commit, 3 fails."""
    assert run_cli(project, "upgrade", "a3_seed", url=db.url).returncode == 0
    with db.engine().begin() as conn:
        conn.exec_driver_sql("CREATE TABLE profiles (legacy INTEGER)")
    return run_cli(project, "upgrade", url=db.url)


def drop_stray_table(db) -> None:
    with db.engine().begin() as conn:
        conn.exec_driver_sql("DROP TABLE profiles")


def test_failed_third_statement_exits_7_then_the_next_run_exits_8_naming_what_ran(nontx_db, make_project):
    db = nontx_db
    project = make_project("partial")
    failed = make_partial(project, db)

    message = assert_failed_cleanly(failed, 7, *secrets_of(db))
    assert "Revision a4_profiles" in message
    assert "Statement(s) 1, 2 of it had been committed" in message and "exit 8" in message

    refused = invoke_cli(project, "upgrade", url=db.url)
    message = assert_failed_cleanly(refused, 8, *secrets_of(db))
    assert message.startswith("Revision a4_profiles is partly applied: statement(s) 1, 2 of its 4 were committed")
    assert "version table says a3_seed" in message
    err = refused.stderr
    assert "  ran: 1. ALTER TABLE users ADD COLUMN nickname VARCHAR(50); 2. CREATE INDEX ix_users_nickname" in err
    assert "  failed: 3. CREATE TABLE profiles" in err
    # Each statement is listed once: the failed one is not also "not run".
    assert "  not run: 4. CREATE INDEX ix_profiles_user_id ON profiles" in err
    assert err.count("3. CREATE TABLE profiles") == 1
    # Resuming would hit the stray table again: the option says so instead of offering it.
    assert "--resume (not available: the schema already has what statement 3 creates (table profiles" in err
    assert "--rollback-partial (undo statement(s) 2, 1 with 2 statement(s) of downgrade())" in err
    assert "--mark-applied (" in err

    # The refusing run changed nothing and is journaled as refused; the failed run keeps its progress.
    assert db.versions() == ["a3_seed"]
    rows = db.journal()
    assert [(r["command"], r["outcome"]) for r in rows] == [("upgrade", "applied"), ("upgrade", "failed"),
                                                         ("upgrade", "refused")]
    progress = json.loads(rows[1]["progress"])
    (entry,) = progress["revisions"]
    assert entry["revision"] == "a4_profiles"
    assert [(s["n"], s["kind"], s["state"], s["committed"]) for s in entry["statements"]] == [
        (1, "ddl", "done", True), (2, "ddl", "done", True)]
    assert entry["failed"]["n"] == 3 and entry["failed"]["sql"].startswith("CREATE TABLE profiles")


@pytest.mark.parametrize("option", ["resume", "rollback-partial", "mark-applied"])
def test_each_repair_option_ends_in_the_schema_plain_alembic_builds(nontx_db, make_project, option):
    db = nontx_db
    project = make_project("partial")
    reference = reference_schema(project, db)
    assert make_partial(project, db).returncode == 7
    assert invoke_cli(project, "upgrade", url=db.url).returncode == 8
    # A person removes the cause of the failure (and, for --mark-applied, completes the revision).
    drop_stray_table(db)
    if option == "mark-applied":
        metadata = sa.MetaData()
        profiles = sa.Table(
            "profiles", metadata,
            sa.Column("id", sa.Integer, primary_key=True),
            sa.Column("user_id", sa.Integer, nullable=False),
            sa.Column("bio", sa.String(200)),
        )
        sa.Index("ix_profiles_user_id", profiles.c.user_id)
        engine = db.engine()
        metadata.create_all(engine)
        engine.dispose()

    repaired = invoke_cli(project, "repair", f"--{option}", url=db.url)
    assert repaired.returncode == 0, repaired.output
    assert f"Repaired a4_profiles ({option})" in repaired.stderr
    assert "warning" not in repaired.stderr  # --mark-applied: the schema shows the work done
    assert db.versions() == (["a3_seed"] if option == "rollback-partial" else ["a4_profiles"])

    final = invoke_cli(project, "upgrade", url=db.url)
    assert final.returncode == 0, final.output
    assert db.versions() == ["a5_tags"]
    assert schema_snapshot(db.url) == reference
    assert db.scalar("SELECT COUNT(*) FROM users") == 1

    repair_row = [r for r in db.journal() if r["command"] == "repair"][-1]
    assert repair_row["outcome"] == ("rolled-back" if option == "rollback-partial" else "applied")
    assert json.loads(repair_row["progress"])["repair"] == {"action": option, "revision": "a4_profiles"}
    for secret in secrets_of(db):
        assert secret not in repaired.output + final.output


def test_postgresql_rolls_the_failed_revision_back_so_the_next_run_is_not_refused(pg_db, make_project):
    project = make_project("partial")
    assert make_partial(project, pg_db).returncode == 7
    assert not {"nickname"} & {c["name"] for c in sa.inspect(pg_db.engine()).get_columns("users")}
    again = invoke_cli(project, "upgrade", url=pg_db.url)
    # The same failure again (the stray table is still there), not a partial revision.
    assert again.returncode == 7, again.output
    assert "Its transaction was rolled back" in again.stderr
    drop_stray_table(pg_db)
    assert invoke_cli(project, "upgrade", url=pg_db.url).returncode == 0
    assert pg_db.versions() == ["a5_tags"]


@pytest.mark.parametrize("option", ["resume", "rollback-partial"])
def test_postgresql_autocommit_block_half_done_is_partial_too(pg_db, make_project, option):
    """CREATE INDEX CONCURRENTLY runs in an autocommit block: each statement commits on its own."""
    project = make_project("partial_cic")
    reference = reference_schema(project, pg_db)
    assert invoke_cli(project, "upgrade", "a3_seed", url=pg_db.url).returncode == 0
    with pg_db.engine().begin() as conn:
        conn.exec_driver_sql("CREATE TABLE ix_users_id_email (stray INTEGER)")  # takes the second index's name
    failed = invoke_cli(project, "upgrade", url=pg_db.url)
    assert failed.returncode == 7, failed.output
    assert "Statement(s) 1 of it had been committed" in failed.stderr
    refused = invoke_cli(project, "upgrade", url=pg_db.url)
    assert refused.returncode == 8, refused.output
    assert "Revision a4_concurrent_indexes is partly applied: statement(s) 1 of its 2" in refused.stderr
    assert "they ran outside a transaction (an autocommit block)" in refused.stderr
    with pg_db.engine().begin() as conn:
        conn.exec_driver_sql("DROP TABLE ix_users_id_email")
    repaired = invoke_cli(project, "repair", f"--{option}", url=pg_db.url)
    assert repaired.returncode == 0, repaired.output
    final = invoke_cli(project, "upgrade", url=pg_db.url)
    assert final.returncode == 0, final.output
    assert pg_db.versions() == ["a4_concurrent_indexes"]
    assert schema_snapshot(pg_db.url) == reference


def test_a_partial_revision_of_another_project_sharing_the_database_is_named_as_such(nontx_db, make_project):
    """Two projects migrate one database, each with its own version table (so they share the lock
    and, by default, the journal): the second is refused over the first's partial revision, and
    told whose it is, not offered repairs its scripts cannot do."""
    db = nontx_db
    make_partial(make_project("partial"), db)
    other = make_project("custom_version_table")
    refused = invoke_cli(other, "upgrade", url=db.url)
    message = assert_failed_cleanly(refused, 8, *secrets_of(db))
    assert message.startswith("Revision a4_profiles is partly applied: statement(s) 1, 2 were committed")
    assert "whose version table alembic_version says a3_seed" in message
    assert "these migration scripts do not contain a4_profiles: it belongs to another Alembic project" in message
    assert "--journal-table" in message
    assert "  ran: 1. ALTER TABLE users ADD COLUMN nickname VARCHAR(50); 2. CREATE INDEX ix_users_nickname" in (
        refused.stderr)
    assert "--resume" not in refused.stderr  # its scripts could not do it
    # Nothing of either project moved, and the other project's version table was never created.
    assert db.versions() == ["a3_seed"]
    assert not db.has_table("deploy_versions")
