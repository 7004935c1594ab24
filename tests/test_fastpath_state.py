"""The fast path against what the journal says: it answers "nothing to do" only where the full path
would too. Whatever unfinished or partial state the full path's recovery reports or refuses (a
crashed run, a revision some of whose statements are durable while the version table does not
record it), the fast path declines, so both paths end with the same exit code. Also: the journal
row it writes is on the report, and the journal table's name never reaches SQL unquoted.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from alembic_deploy import partial as partial_revisions
from alembic_deploy.fastpath.direct import SETTLED, DirectConnection, JournalState, plain_identifier
from alembic_deploy.progress.record import Progress, RevisionRecord, Statement
from alembic_deploy.progress.sql_text import DDL, READ
from helpers import Database, invoke_cli, spawn_cli, url_text
from lockscene import write_revision


@pytest.fixture
def cache_env(tmp_path: Path) -> dict[str, str]:
    return {"XDG_CACHE_HOME": str(tmp_path / "xdg-cache")}


@pytest.fixture(params=["sqlite", "mysql"])
def nontx_db(request: pytest.FixtureRequest) -> Database:
    """Backends whose DDL commits statement by statement (SQLite under pysqlite, MariaDB)."""
    return request.getfixturevalue(f"{request.param}_db")


def deploy(project: Path, url: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
    """``upgrade --json`` in this process: what is compared is the answer read from the journal,
    not the process's start-up."""
    run = invoke_cli(project, "upgrade", "--json", *args, url=url, env=env)
    assert "Traceback" not in run.output, run.output
    return run.returncode, json.loads(run.stdout)


def previous_release(project: Path, *revisions: str) -> None:
    """The scripts of the release before: without ``revisions``."""
    for rev in revisions:
        (project / "migrations" / "versions" / f"{rev}.py").unlink()
    shutil.rmtree(project / "migrations" / "versions" / "__pycache__", ignore_errors=True)


def test_settled_outcomes_are_recoverys():
    assert SETTLED == partial_revisions.SETTLED


@pytest.mark.slow
# -- the instances ----------------------------------------------------------------------------------
def test_a_revision_failed_halfway_then_the_previous_release_is_refused_with_or_without_fast_path(
    nontx_db, make_project, cache_env,
):
    """a4's third statement fails after two committed (exit 7); the release before (a1..a3, the
    version table's a3_seed its head) is deployed again: the full path refuses (exit 8), and so
    must the fast path, instead of "Nothing to do"."""
    db = nontx_db
    project = make_project("partial")
    assert invoke_cli(project, "upgrade", "a3_seed", url=db.url, env=cache_env).returncode == 0
    with db.engine().begin() as conn:
        conn.exec_driver_sql("CREATE TABLE profiles (legacy INTEGER)")
    assert invoke_cli(project, "upgrade", url=db.url, env=cache_env).returncode == 7
    previous_release(project, "a4_profiles", "a5_tags")

    for _ in range(2):
        fast, report = deploy(project, db.url, env=cache_env)
        assert fast == 8 and report["fast_path"] is False, report
        full, _ = deploy(project, db.url, "--no-fast-path", env=cache_env)
        assert full == 8
    assert "Revision a4_profiles is partly applied" in invoke_cli(project, "upgrade", url=db.url, env=cache_env).stderr


@pytest.mark.slow
def test_after_a_kill_9_mid_revision_every_deploy_of_the_previous_release_is_refused(nontx_db, make_project, cache_env):
    """The first deploy after the kill closes the crashed run's row (``crashed``) and refuses; the
    fast path must go on declining once that row is no longer ``running``."""
    db = nontx_db
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", url=db.url, env=cache_env).returncode == 0
    # Its first statement commits by itself; then it stops until killed.
    write_revision(project, "a4_halt", "a3_seed", (
        "    import sys\n"
        "    op.add_column('users', sa.Column('nickname', sa.String(50)))\n"
        "    sys.stderr.write('a4_halt: halfway\\n')\n"
        "    sys.stderr.flush()\n"
        "    sys.stdin.read()\n"
        "    op.create_table('after_halt', sa.Column('id', sa.Integer))"
    ))
    proc = spawn_cli(project, "upgrade", url=db.url, env=cache_env, stdin=subprocess.PIPE)
    try:
        for line in proc.stderr:  # type: ignore[union-attr]
            if line.startswith("a4_halt: halfway"):
                break
        else:
            pytest.fail(f"the revision never started: exit {proc.wait()}")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    previous_release(project, "a4_halt")

    codes = [deploy(project, db.url, env=cache_env)[0] for _ in range(3)]
    assert codes == [8, 8, 8]
    assert deploy(project, db.url, "--no-fast-path", env=cache_env)[0] == 8
    assert [r["outcome"] for r in db.journal()][:2] == ["applied", "crashed"]


# -- the class: any journal state, fast path or not, same answer -------------------------------------
def statement(n: int, state: str, committed: bool = False, may_commit: bool = True, kind: str = DDL,
              effect: dict | None = None) -> Statement:
    return Statement(n=n, sql=f"statement {n}", fp=f"fp{n}", kind=kind, state=state, committed=committed,
                     may_commit=may_commit, effect=effect)


ABSENT_COLUMN = {"kind": "column", "table": "users", "name": "no_such_column", "creates": True, "schema": None}
PRESENT_TABLE = {"kind": "table", "table": None, "name": "users", "creates": True, "schema": None}
#: Statement progress of a revision, as a run that failed or died may leave it.
STATEMENTS = {
    "durable": [statement(1, "done", committed=True)],
    "failed-first": [],
    "read-only": [statement(1, "done", committed=True, kind=READ)],
    "running-unknowable": [statement(1, "running")],
    "running-not-taken": [statement(1, "running", effect=ABSENT_COLUMN)],
    "running-taken": [statement(1, "running", effect=PRESENT_TABLE)],
    "in-transaction": [statement(1, "running", may_commit=False)],
    "undoing": [statement(1, "done", committed=True), statement(2, "undoing", effect=PRESENT_TABLE)],
}
#: a2 is in the scripts (and applied, the database being at a3), z9 in none of them.
REVISIONS = {"known": "a2_users_email_index", "unknown": "z9_gone"}


def progress_json(backend: str, revision: str, statements: list[Statement],
                  version_table: str = "alembic_version") -> str:
    entry = RevisionRecord(revision=revision, statements=statements,
                             failed=statement(len(statements) + 1, "failed"))
    return Progress(backend=backend, version_table=version_table, revisions=[entry]).to_json()


def add_journal_row(db: Database, outcome: str, progress: str | None) -> None:
    from datetime import datetime, timezone

    from alembic_deploy.journal import journal_table

    table = journal_table("alembic_deploy_history")
    with db.engine().begin() as conn:
        conn.execute(table.insert().values(
            started_at=datetime.now(timezone.utc), command="upgrade", outcome=outcome, progress=progress,
            host="elsewhere", pid=2**22 + 7,  # no such process: a dead run
        ))


def same_answer(project: Path, urls: tuple[str, str], env: dict[str, str], setup) -> tuple[int, dict]:
    """(exit code, report) of the fast path on ``urls[0]``, after asserting the full path on
    ``urls[1]`` (the same state: ``setup`` builds it on each) ends with the same exit code,
    outcome and warnings."""
    results = []
    for url, flags in zip(urls, ((), ("--no-fast-path",)), strict=True):
        setup(url)
        code, report = deploy(project, url, *flags, env=env)
        results.append((code, report))
    (fast, fast_report), (full, full_report) = results
    assert fast == full, (fast_report, full_report)
    assert fast_report["outcome"] == full_report["outcome"]
    assert len(fast_report["warnings"]) == len(full_report["warnings"])
    return fast, fast_report


@pytest.fixture(scope="module")
def sqlite_at_head(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(project, a SQLite database the full path migrated to its head, env): copied by each case."""
    from scenarios import copy_project

    root = tmp_path_factory.mktemp("at_head")
    project = copy_project("sync", root / "sync")
    env = {"XDG_CACHE_HOME": str(root / "xdg-cache")}
    assert invoke_cli(project, "upgrade", url=f"sqlite:///{root / 'template.db'}", env=env).returncode == 0
    return project, root / "template.db", env


CASES = [(outcome, shape, "unknown") for outcome in ("failed", "crashed", "running", "applied")
         for shape in sorted(STATEMENTS)]
CASES += [(outcome, shape, "known") for outcome in ("failed", "crashed") for shape in ("durable", "running-taken")]


@pytest.mark.parametrize(("outcome", "shape", "known"), CASES)
def test_the_fast_path_answers_as_the_full_path_whatever_the_last_run_left_sqlite(
    sqlite_at_head, tmp_path, outcome, shape, known,
):
    project, template, env = sqlite_at_head
    copies = tuple(tmp_path / name for name in ("fast.db", "full.db"))
    for copy in copies:
        shutil.copy(template, copy)
        add_journal_row(Database(f"sqlite:///{copy}", "sqlite"), outcome,
                        progress_json("sqlite", REVISIONS[known], STATEMENTS[shape]))
    code, report = same_answer(project, tuple(f"sqlite:///{c}" for c in copies), env, lambda _url: None)
    partial = outcome not in SETTLED and known == "unknown" and shape in ("durable", "running-unknowable",
                                                                         "running-taken", "undoing")
    assert code == (8 if partial else 0), report
    nothing_unsettled = outcome in SETTLED or known == "known" or shape in ("failed-first", "read-only",
                                                                           "in-transaction")
    if nothing_unsettled and outcome != "running":
        assert report["fast_path"] is True, f"declined where nothing can be unsettled: {report}"


@pytest.mark.parametrize(("outcome", "shape", "known"), [
    ("failed", "durable", "unknown"),
    ("crashed", "running-taken", "unknown"),
    ("crashed", "running-not-taken", "unknown"),
    ("failed", "durable", "known"),
    ("interrupted", "failed-first", "unknown"),
    ("running", "durable", "unknown"),
])
def test_the_fast_path_answers_as_the_full_path_whatever_the_last_run_left_mariadb(
    mysql_db, make_project, cache_env, outcome, shape, known,
):
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", url=mysql_db.url, env=cache_env).returncode == 0
    (base,) = mysql_db.rows("SELECT max(id) FROM alembic_deploy_history")[0]

    def setup(_url: str) -> None:
        with mysql_db.engine().begin() as conn:
            conn.exec_driver_sql(f"DELETE FROM alembic_deploy_history WHERE id > {int(base)}")
        add_journal_row(mysql_db, outcome, progress_json("mysql", REVISIONS[known], STATEMENTS[shape]))

    same_answer(project, (mysql_db.url, mysql_db.url), cache_env, setup)


def test_progress_of_another_version_table_declines(sqlite_db, make_project, cache_env):
    """A run of another project sharing the journal left it: recovery reads that project's version
    table, which the fast path does not."""
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", url=sqlite_db.url, env=cache_env).returncode == 0
    add_journal_row(sqlite_db, "failed", progress_json("sqlite", "a2_users_email_index", STATEMENTS["durable"],
                                                       version_table="other_version"))
    _code, report = deploy(project, sqlite_db.url, env=cache_env)
    assert report["fast_path"] is False


@pytest.mark.parametrize("raw", ["{", "[]", '{"backend": "sqlite", "revisions": [{"statements": []}]}', '"x"'])
def test_progress_it_cannot_read_declines(raw):
    assert JournalState(running=False, last_progress=("failed", raw)).needs_recovery({"a"}) is True


# -- the journal row ---------------------------------------------------------------------------------
def test_the_fast_paths_journal_row_id_is_on_the_report(db, make_project, cache_env):
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", url=db.url, env=cache_env).returncode == 0
    for _ in range(2):
        code, report = deploy(project, db.url, env=cache_env)
        assert code == 0 and report["fast_path"] is True, report
        last = db.journal()[-1]
        assert report["journal_id"] == last["id"] and last["outcome"] == "noop"


# -- the journal table's name ------------------------------------------------------------------------
INJECTIONS = [
    'alembic_deploy_history" WHERE false; DROP TABLE victim; --',
    "alembic_deploy_history` WHERE false; DROP TABLE victim; --",
    "alembic_deploy_history WHERE 1=0; DROP TABLE victim; --",
]


@pytest.mark.parametrize("name", INJECTIONS)
def test_a_journal_table_name_never_reaches_sql_unquoted(db, make_project, cache_env, name):
    """Through every driver the fast path reads with (psycopg2 runs several statements in one
    call), whatever the full path then makes of the name (uses it quoted, or refuses it)."""
    project = make_project("sync")
    url = url_text(db.url, drivername="postgresql+psycopg2") if db.backend == "postgresql" else db.url
    assert invoke_cli(project, "upgrade", url=url, env=cache_env).returncode == 0
    with db.engine().begin() as conn:
        conn.exec_driver_sql("CREATE TABLE victim (id INTEGER)")
    for _ in range(2):
        run = invoke_cli(project, "upgrade", "--journal-table", name, url=url, env=cache_env)
        assert "Traceback" not in run.output, run.output
        assert db.has_table("victim"), run.output
    run = invoke_cli(project, "upgrade", url=url, env={**cache_env, "ALEMBIC_DEPLOY_JOURNAL_TABLE": name})
    assert db.has_table("victim"), run.output


@pytest.mark.parametrize(("name", "plain"), [
    ("alembic_deploy_history", True), ("Deploys_2", True), ("_j", True), ("x" * 63, True),
    ("x" * 64, False), ("2deploys", False), ('a"b', False), ("a`b", False), ("a b", False), ("", False),
    ("a;b", False), ("a%sb", False), ("déploiements", False),
])
def test_only_plain_identifiers_are_written_by_the_fast_path(name, plain):
    assert plain_identifier(name) is plain


@pytest.mark.parametrize(("backend", "quoted"), [("postgresql", '"a""b"'), ("sqlite", '"a""b"'), ("mysql", '`a"b`')])
def test_identifiers_are_quoted_with_embedded_quotes_doubled(backend, quoted):
    from alembic_deploy.backends.base import DirectSession, for_dialect

    assert DirectConnection(for_dialect(backend), DirectSession(None, "qmark"))._quote('a"b') == quoted
    assert DirectConnection(for_dialect("mysql"), DirectSession(None, "format"))._quote("a`b") == "`a``b`"


# -- what a declined proof costs ---------------------------------------------------------------------
def test_an_env_py_the_proof_does_not_take_declines_before_any_connect(pg_db, make_project, cache_env, monkeypatch):
    """The static parts of the proof come first: declining on env.py opens no session (on
    PostgreSQL one the full path could not reuse), so the full path pays nothing twice."""
    from alembic_deploy.fastpath import try_noop
    from alembic_deploy.report import DeployReport
    from alembic_deploy.settings import Settings

    project = make_project("sync")
    assert invoke_cli(project, "upgrade", url=pg_db.url, env=cache_env).returncode == 0
    opened: list[str] = []
    real_open = DirectConnection.open.__func__  # type: ignore[attr-defined]

    def counted(cls, url: str, **options):
        opened.append(url)
        return real_open(cls, url, **options)

    monkeypatch.setattr(DirectConnection, "open", classmethod(counted))
    monkeypatch.chdir(project)
    settings = Settings.resolve({"database_url": pg_db.url}, environ={})

    def noop() -> bool:
        return try_noop(settings, "head", DeployReport(command="upgrade", target="head"))

    assert noop() is True and len(opened) == 1
    env_py = project / "migrations" / "env.py"
    env_py.write_text(env_py.read_text().replace("\n\n", "\nimport platform\n\nplatform.python_version()\n\n", 1))
    assert noop() is False and len(opened) == 1
