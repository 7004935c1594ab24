"""alembic-deploy ends every deploy where plain alembic does: the same project and database state go
through the real ``alembic upgrade X`` command and through ``alembic-deploy upgrade X`` (fast path on
and off), and the exit class (success or not), the version table and the tables must agree.

The graphs: ``depends_on`` (a revision that needs the head of another branch without merging it),
``two_heads`` (two branches), ``merged`` (two branches and their merge), ``sync`` (one line),
``generic`` (no revision yet); the states: empty, part way, at the heads; the targets: heads, head, a
revision below the database, branch labels, ``branch@head``, relative targets, and targets alembic refuses.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import inspect

import servers
from helpers import Database, drop_all, run_cli, set_ini_url

#: The ``alembic`` command installed beside this interpreter (the venv's own).
ALEMBIC = str(Path(sys.executable).with_name("alembic"))
#: Left out of the tables compared: the tool's journal, and the version table (its rows are compared;
#: plain alembic creates it empty even when it then refuses the target, which is the same state).
NOT_COMPARED = {"alembic_deploy_history", "alembic_deploy_history_progress", "alembic_version"}

# (scenario, targets plain alembic upgrades to first, the deploy's target); the default run takes one
# case of each kind, `-m slow` all of them.
FAST_CASES = [
    ("depends_on", (), "heads"),
    ("depends_on", ("heads",), "heads"),  # every later deploy
    ("depends_on", ("heads",), "a1"),  # the database is past the target
    ("depends_on", ("a1",), "a1+1"),  # relative: b1, which needs x1
    ("depends_on", (), "+1"),  # ambiguous from base: both refuse
    ("two_heads", ("heads",), "a1_users"),
    ("merged", ("a2_users_email_index", "b2_audit"), "head"),
    ("sync", (), "no_such_revision"),  # both refuse
    ("generic", (), "head"),  # no revision at all (alembic init): nothing to do
]
SLOW_CASES = [
    ("depends_on", ("x1",), "heads"),
    ("depends_on", ("heads",), "x1"),  # past it through depends_on only
    ("depends_on", (), "main@head"),
    ("depends_on", (), "extra"),  # a branch label: its revision
    ("depends_on", ("x1",), "b1"),
    ("depends_on", ("a1",), "main@+1"),
    ("depends_on", (), "head"),  # two heads: both refuse
    ("two_heads", (), "heads"),
    ("two_heads", ("b2_audit",), "a3_seed"),
    ("merged", ("head",), "b2_audit"),
    ("merged", ("head",), "m1"),
    ("sync", ("a1_users",), "+1"),
    ("sync", ("head",), "a1_users"),
    ("sync", ("head",), "base"),
    ("generic", (), "heads"),
]
CASES = [pytest.param(*case, id=f"{case[0]}-{'+'.join(case[1]) or 'base'}-{case[2]}") for case in FAST_CASES] + [
    pytest.param(*case, id=f"{case[0]}-{'+'.join(case[1]) or 'base'}-{case[2]}", marks=pytest.mark.slow)
    for case in SLOW_CASES
]


@pytest.fixture(scope="module", params=("sqlite", "postgresql"))
def databases(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Database]]:
    """Three databases per backend for the whole module (one per run compared), emptied by each
    case: creating databases per case would cost more than the runs themselves."""
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("parity")
        yield [Database(f"sqlite:///{folder / f'app{i}.db'}", "sqlite") for i in range(3)]
        return
    with servers.databases("postgresql") as dbs:
        yield [Database(dbs.create(), "postgresql") for _ in range(3)]


def _start_from(project: Path, databases: list[Database], targets: tuple[str, ...]) -> None:
    """Every database emptied, then brought to ``targets`` by plain alembic through its own API, in
    this process (the state a case starts from; the runs compared are real processes)."""
    from alembic import command
    from alembic.config import Config

    for db in databases:
        drop_all(db.url)
        config = Config(str(project / "alembic.ini"))
        config.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
        for target in targets:
            command.upgrade(config, target)


def _alembic(project: Path, url: str, *args: str) -> subprocess.CompletedProcess:
    """The real ``alembic`` command, in ``project``, the URL written into its ini."""
    set_ini_url(project, url)
    env = {k: v for k, v in __import__("os").environ.items() if k != "DATABASE_URL"}
    return subprocess.run([ALEMBIC, *args], cwd=project, env=env, capture_output=True, text=True, timeout=120)


def _state(db: Database) -> tuple[list[str], list[str]]:
    """(version table rows, the project's tables): what a deploy leaves behind."""
    engine = db.engine()
    try:
        names = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    return (db.versions() if "alembic_version" in names else []), sorted(names - NOT_COMPARED)


@pytest.mark.parametrize(("scenario", "setup", "target"), CASES)
def test_alembic_deploy_ends_where_plain_alembic_does(databases, make_project, scenario, setup, target):
    project = make_project(scenario)
    # The fast path only ever answers head/heads; for other targets both runs are the same code.
    variants = [(), ("--no-fast-path",)] if target in ("head", "heads") else [()]
    plain_db, *deploy_dbs = databases[: 1 + len(variants)]
    _start_from(project, [plain_db, *deploy_dbs], setup)
    before = _state(plain_db)

    plain = _alembic(project, plain_db.url, "upgrade", "--", target)
    expected = (plain.returncode == 0, *_state(plain_db))
    for flags, db in zip(variants, deploy_dbs, strict=True):
        run = run_cli(project, "upgrade", *flags, "--", target, url=db.url)
        assert (run.returncode == 0, *_state(db)) == expected, (flags, plain.stderr, run.output)
        assert "Traceback" not in run.output, run.output
        if run.returncode != 0:
            # What plain alembic refuses, alembic-deploy refuses before changing anything (exit 5).
            assert run.returncode == 5 and _state(db) == before, run.output


def test_a_version_table_alembic_did_not_leave_still_fails_verification(sqlite_db, make_project, tmp_path):
    """Verification trusts what alembic reports only for alembic's own database: an env.py that
    migrates another database than the one alembic-deploy connects to is still caught (exit 7)."""
    project = make_project("sync")
    other = tmp_path / "other.db"
    env_py = project / "migrations" / "env.py"
    env_py.write_text(env_py.read_text().replace(
        'config.get_section(config.config_ini_section, {}),',
        f'{{"sqlalchemy.url": "sqlite:///{other}"}},',
    ))
    run = run_cli(project, "upgrade", url=sqlite_db.url)
    assert run.returncode == 7, run.output
    assert "alembic left the version table at a3_seed" in run.output and "Traceback" not in run.output
    assert not sqlite_db.has_table("users")
