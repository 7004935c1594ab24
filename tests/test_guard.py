"""The schema guard on real databases (PostgreSQL and SQLite) with real revision graphs: a branch
into two expand-only heads, their merge, a contract revision, and a project with two unmarked heads."""

from __future__ import annotations

import asyncio
import shutil

import pytest
from sqlalchemy import event

from alembic_deploy import guard
from alembic_deploy.errors import ConfigError, DatabaseUnreachable
from helpers import PG_DRIVER, free_port, run_cli

HEAD = "x5_drop_legacy"


@pytest.fixture(params=["sqlite", "postgresql"])
def gdb(request):
    """Each guard test runs on SQLite and on PostgreSQL."""
    return request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "pg_db")


@pytest.fixture(autouse=True)
def _fresh_cache():
    guard.clear_cache()
    yield
    guard.clear_cache()


def stamp(db, *revisions: str) -> None:
    """Put the version table in a given state, as `alembic stamp` would."""
    with db.engine().begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.exec_driver_sql("DELETE FROM alembic_version")
        for rev in revisions:
            conn.exec_driver_sql(f"INSERT INTO alembic_version (version_num) VALUES ('{rev}')")


@pytest.mark.parametrize(
    ("database", "verdict", "pending"),
    [
        ((HEAD,), "ok", []),
        (("x4_merge",), "behind-compatible", [HEAD]),
        # both branch heads, before their merge
        (("x3a_nickname", "x3b_name_index"), "behind-compatible", ["x4_merge", HEAD]),
        # one branch only: the other branch, the merge and the contract are pending
        (("x3a_nickname",), "behind-compatible", ["x3b_name_index", "x4_merge", HEAD]),
        (("x2_accounts_status",), "behind-compatible", ["x3b_name_index", "x3a_nickname", "x4_merge", HEAD]),
        # x2 is not marked: this code reads accounts.status
        (("x1_accounts",), "behind-incompatible",
         ["x2_accounts_status", "x3b_name_index", "x3a_nickname", "x4_merge", HEAD]),
        (("zz_future",), "ahead-unknown", []),
        (("x3a_nickname", "zz_other_branch"), "ahead-unknown", []),
    ],
)
def test_verdict_follows_the_database_through_branches_and_a_merge(gdb, make_project, database, verdict, pending):
    project = make_project("expand_contract")
    stamp(gdb, *database)
    result = guard.check(gdb.url, str(project / "migrations"))
    assert result.verdict == verdict, result.message
    assert result.accepted is (verdict in ("ok", "behind-compatible"))
    assert result.database_revisions == tuple(sorted(database))
    assert result.code_heads == (HEAD,)
    assert [p.revision for p in result.pending] == pending
    if verdict == "ahead-unknown":
        assert [r for r in database if r.startswith("zz")] == list(result.unknown)
        assert "do not contain zz_" in result.message


def test_empty_database_is_behind_incompatible(gdb, make_project):
    project = make_project("expand_contract")
    result = guard.check(gdb.url, str(project / "alembic.ini"))  # the ini works as well as the folder
    assert result.verdict == "behind-incompatible"
    assert result.database_revisions == ()
    assert "<base>" in result.message
    assert len(result.pending) == 6


def test_real_upgrades_walk_the_verdicts_to_ok(gdb, make_project):
    """The version table written by real migrations, not by hand."""
    project = make_project("expand_contract")
    engine = gdb.engine()
    seen = []
    for target in ("x2_accounts_status", "x3a_nickname", "x4_merge", "head"):
        run = run_cli(project, "upgrade", target, url=gdb.url)
        assert run.returncode == 0, run.output
        seen.append(guard.check(engine, str(project / "migrations")).verdict)
    assert seen == ["behind-compatible", "behind-compatible", "behind-compatible", "ok"]
    # and the schema really is what the scripts say
    assert gdb.scalar("SELECT count(*) FROM accounts") == 0
    engine.dispose()


def test_pending_revisions_carry_their_marker_kind(gdb, make_project):
    project = make_project("expand_contract")
    stamp(gdb, "x2_accounts_status")
    result = guard.check(gdb.url, str(project / "migrations"))
    kinds = {p.revision: p.kind for p in result.pending}
    assert kinds == {"x3a_nickname": "expand-only", "x3b_name_index": "expand-only",
                     "x4_merge": "expand-only", HEAD: "contract"}
    assert result.to_dict()["pending"][0] == {
        "revision": "x3b_name_index", "description": "index accounts.name (expand, branch b)",
        "kind": "expand-only", "required": False,
    }
    assert result.has("x2_accounts_status") and result.has("x1_accounts")
    assert not result.has("x3a_nickname")


def test_requires_makes_a_marked_revision_block_the_code(gdb, make_project):
    project = make_project("expand_contract")
    stamp(gdb, "x3b_name_index")
    location = str(project / "migrations")
    assert guard.check(gdb.url, location).verdict == "behind-compatible"
    result = guard.check(gdb.url, location, requires=["x3a_nickname"])
    assert result.verdict == "behind-incompatible"
    assert not result.accepted
    assert "x3a_nickname (required by this code)" in result.message
    stamp(gdb, "x3a_nickname", "x3b_name_index")
    assert guard.check(gdb.url, location, requires=["x3a_nickname"]).verdict == "behind-compatible"


def test_accept_lets_code_run_degraded_on_a_newer_database(gdb, make_project):
    project = make_project("expand_contract")
    stamp(gdb, "zz_future")
    location = str(project / "migrations")
    assert not guard.check(gdb.url, location).accepted
    relaxed = guard.check(gdb.url, location, accept={"ok", "behind-compatible", "ahead-unknown"})
    assert relaxed.verdict == "ahead-unknown"
    assert relaxed.accepted


def test_two_unmarked_heads_need_both_applied(gdb, make_project):
    project = make_project("two_heads")
    location = str(project / "migrations")
    stamp(gdb, "a3_seed")
    result = guard.check(gdb.url, location)
    assert result.verdict == "behind-incompatible"
    assert [p.revision for p in result.pending] == ["b2_audit"]
    assert set(result.code_heads) == {"a3_seed", "b2_audit"}
    stamp(gdb, "a3_seed", "b2_audit")
    assert guard.check(gdb.url, location).verdict == "ok"


def test_each_check_is_one_query_and_the_scripts_load_once(gdb, make_project):
    project = make_project("expand_contract")
    location = str(project / "migrations")
    stamp(gdb, "x4_merge")
    engine = gdb.engine()
    statements: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: statements.append(args[2]))
    graph = guard.load_scripts(location)
    guard.check(engine, location)
    statements.clear()
    for _ in range(5):
        assert guard.check(engine, location).verdict == "behind-compatible"
    assert len(statements) == 5, statements
    assert all("alembic_version" in s for s in statements)
    # Removing the scripts changes nothing: the graph was loaded once and is kept.
    shutil.rmtree(project / "migrations" / "versions")
    assert guard.load_scripts(location) is graph
    assert guard.check(engine, location).verdict == "behind-compatible"
    engine.dispose()


def test_async_engine_check(gdb, make_project):
    from sqlalchemy.ext.asyncio import create_async_engine

    project = make_project("expand_contract")
    stamp(gdb, "x3a_nickname", "x3b_name_index")

    async def go():
        engine = create_async_engine(gdb.async_url)
        try:
            return await guard.check_async(engine, str(project / "migrations"))
        finally:
            await engine.dispose()

    result = asyncio.run(go())
    assert result.verdict == "behind-compatible"
    assert result.database_revisions == ("x3a_nickname", "x3b_name_index")


def test_unreachable_database_is_reported_not_crashed(make_project):
    project = make_project("expand_contract")
    url = f"{PG_DRIVER}://app:hunter2secret@127.0.0.1:{free_port()}/app"
    with pytest.raises(DatabaseUnreachable) as info:
        guard.check(url, str(project / "migrations"))
    assert "hunter2secret" not in info.value.message
    status, body = guard.readiness(url, str(project / "migrations"))
    assert status == 503
    assert body["accepted"] is False and body["error"] == "database-unreachable"
    assert "hunter2secret" not in str(body)


def test_readiness_answers_200_only_when_accepted(sqlite_db, make_project):
    project = make_project("expand_contract")
    location = str(project / "migrations")
    stamp(sqlite_db, "x1_accounts")
    status, body = guard.readiness(sqlite_db.url, location)
    assert (status, body["verdict"], body["accepted"]) == (503, "behind-incompatible", False)
    stamp(sqlite_db, "x4_merge")
    status, body = guard.readiness(sqlite_db.url, location)
    assert (status, body["verdict"], body["accepted"]) == (200, "behind-compatible", True)


def test_marker_must_be_a_dict(sqlite_db, make_project):
    project = make_project("expand_contract")
    path = project / "migrations" / "versions" / "x3a_nickname.py"
    path.write_text(path.read_text().replace('alembic_deploy = {"expand_only": True}', 'alembic_deploy = "expand"'))
    with pytest.raises(ConfigError, match="must be a dict"):
        guard.check(sqlite_db.url, str(project / "migrations"))


def test_only_a_true_expand_only_key_marks_a_revision(sqlite_db, make_project):
    """Other keys of the shared dict (another feature's per-revision settings) mark nothing."""
    project = make_project("expand_contract")
    path = project / "migrations" / "versions" / "x3a_nickname.py"
    path.write_text(path.read_text().replace(
        'alembic_deploy = {"expand_only": True}', 'alembic_deploy = {"lock_timeout": 5, "expand_only": "yes"}'
    ))
    stamp(sqlite_db, "x3b_name_index")
    result = guard.check(sqlite_db.url, str(project / "migrations"))
    assert result.verdict == "behind-incompatible"
    assert "x3a_nickname (not marked" in result.message


def test_bad_arguments_are_config_errors(sqlite_db, make_project):
    project = make_project("expand_contract")
    location = str(project / "migrations")
    with pytest.raises(ConfigError, match="accept= contains"):
        guard.check(sqlite_db.url, location, accept={"fine"})
    with pytest.raises(ConfigError, match="do not contain"):
        guard.check(sqlite_db.url, location, requires=["nope"])
    with pytest.raises(ConfigError, match="could not load"):
        guard.check(sqlite_db.url, str(project / "no-such-folder"))


def test_the_guard_inside_an_application_changes_nothing_of_pymysql(mysql_db, make_project):
    """The guard runs inside the user's application: it connects through the application's driver
    as the driver is, and leaves it so (no class attribute of PyMySQL's connection replaced)."""
    import pymysql.connections

    project = make_project("expand_contract")
    before = dict(vars(pymysql.connections.Connection))
    stamp(mysql_db, "x4_merge")
    status, body = guard.readiness(mysql_db.url, str(project / "migrations"))
    assert (status, body["verdict"]) == (200, "behind-compatible")
    assert dict(vars(pymysql.connections.Connection)) == before
