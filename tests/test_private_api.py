"""The private APIs of Alembic and PyMySQL the package relies on (all in ``_private_api.py``):
each still exists and does what the package needs, on the installed releases, and those releases
are within the upper bounds pinned in pyproject.toml. A release that changes any of them fails
here first, loudly, instead of somewhere in a deploy."""

from __future__ import annotations

import inspect
import re
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

from alembic_deploy import _private_api
from helpers import Database

if sys.version_info >= (3, 11):
    import tomllib
else:
    import tomli as tomllib

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def _upper_bound(requirements: list[str], name: str) -> tuple[int, ...]:
    [spec] = [r for r in requirements if re.match(rf"{name}\b", r, re.IGNORECASE)]
    bound = re.search(r"<=\s*([\d.]+)", spec)
    assert bound, f"{spec!r}: _private_api.py relies on private APIs of {name}; pin the release it was tested with"
    return tuple(int(p) for p in bound.group(1).split("."))


def _installed(name: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version(name))[:3])


def test_the_installed_releases_are_within_the_pinned_upper_bounds():
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    assert _installed("alembic") <= _upper_bound(project["dependencies"], "alembic")
    assert _installed("pymysql") <= _upper_bound(project["optional-dependencies"]["mysql"], "pymysql")


def _params(fn: object) -> list[str]:
    return list(inspect.signature(fn).parameters)  # type: ignore[arg-type]


def test_alembics_private_names_keep_their_signatures():
    assert _params(ScriptDirectory._upgrade_revs) == ["self", "destination", "current_rev"]
    assert _params(ScriptDirectory._downgrade_revs) == ["self", "destination", "current_rev"]
    assert _params(ScriptDirectory._stamp_revs) == ["self", "revision", "heads"]


def _scripts(project: Path) -> ScriptDirectory:
    config = Config(str(project / "alembic.ini"))
    config.set_main_option("script_location", str(project / "migrations"))
    return ScriptDirectory.from_config(config)


def test_the_steps_of_an_upgrade_downgrade_and_stamp_are_alembics(make_project):
    script = _scripts(make_project("sync"))
    up = _private_api.upgrade_steps(script, "heads", ())
    assert [s.revision.revision for s in up] == ["a1_users", "a2_users_email_index", "a3_seed"]
    assert all(s.is_upgrade and callable(s.migration_fn) for s in up)
    assert [s.revision.revision for s in _private_api.upgrade_steps(script, "heads", ("a2_users_email_index",))] == [
        "a3_seed"]
    down = _private_api.downgrade_steps(script, "a1_users", ("a3_seed",))
    assert [s.revision.revision for s in down] == ["a3_seed", "a2_users_email_index"]
    assert not any(s.is_upgrade for s in down)
    [stamp] = _private_api.stamp_steps(script, "a3_seed", ("a1_users",))
    assert stamp.to_revisions == ("a3_seed",) and stamp.from_revisions == ("a1_users",)


def test_a_revisions_requirements_resolve_branch_labels(make_project):
    script = _scripts(make_project("depends_on"))
    b1 = script.get_revision("b1")
    assert b1 is not None
    assert _private_api.requires(b1) == ("a1", "x1")
    a1 = script.get_revision("a1")
    assert a1 is not None and _private_api.requires(a1) == ()


def test_a_callback_is_chained_after_env_pys_own_once():
    engine = create_engine("sqlite://")
    try:
        with engine.connect() as conn:
            def own(**_kw: object) -> None: ...
            def ours(**_kw: object) -> None: ...
            context = MigrationContext.configure(conn, opts={"on_version_apply": (own,)})
            _private_api.chain_version_apply(context, ours)
            _private_api.chain_version_apply(context, ours)
            assert tuple(context.on_version_apply_callbacks) == (own, ours)
    finally:
        engine.dispose()


@pytest.mark.usefixtures("mysql_db")
def test_a_pymysql_query_is_sent_then_its_reply_read(mysql_db: Database):
    import pymysql
    from pymysql.constants.COMMAND import COM_QUERY
    from sqlalchemy.engine import make_url

    assert COM_QUERY == _private_api._COM_QUERY
    url = make_url(mysql_db.url)
    conn = pymysql.connect(host=url.host, port=url.port, user=url.username, database=url.database)
    try:
        read = _private_api.pymysql_send(conn, "DO SLEEP(0)")
        read()
        read = _private_api.pymysql_send(conn, "SELECT no_such_column")
        with pytest.raises(pymysql.err.OperationalError):
            read()
        with conn.cursor() as cur:  # the session is usable again once the reply was read
            cur.execute("SELECT 1")
            assert cur.fetchone() == (1,)
    finally:
        conn.close()


def test_op_proxy_kept_leaves_the_running_migrations_op_in_place() -> None:
    import io

    from alembic import op
    from alembic.operations import Operations

    def context() -> MigrationContext:
        return MigrationContext.configure(dialect_name="postgresql",
                                          opts={"as_sql": True, "output_buffer": io.StringIO()})

    with Operations.context(context()) as running:
        assert op._proxy is running
        with _private_api.op_proxy_kept(), Operations.context(context()) as rendering:
            assert op._proxy is rendering
        assert op._proxy is running  # Operations.context's exit alone leaves None there
        with Operations.context(context()):
            pass
        assert op._proxy is None
