"""The env.py proof of the fast path over a corpus of env.py files in the shapes real projects use
(``tests/envpy_corpus/``), each labelled on its first line with what the fast path must answer:
``# fast-path: take -- why`` or ``# fast-path: decline -- why``.

Judged statically for every file, and for a subset by real deploys on SQLite (and one on
PostgreSQL): a ``take`` file is migrated by the full path and then answered by the fast path; on
an unsafe ``decline`` file, plain alembic migrates something where the database looks at head, and
alembic-deploy with the fast path on must end exactly like ``--no-fast-path``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import alembic
import pytest

from alembic_deploy.fastpath.env_py import env_py_is_plain, why_not_plain
from helpers import Database, run_cli, schema_snapshot, set_ini_url

CORPUS = Path(__file__).parent / "envpy_corpus"
ALEMBIC_TEMPLATES = Path(alembic.__file__).parent / "templates"
FILES = sorted(CORPUS.glob("*.py"))
#: The alembic release whose ``alembic init`` templates the corpus holds, verbatim.
TEMPLATES_FROM = "1.20.1"


def label(path: Path) -> str:
    first = path.read_text().splitlines()[0]
    prefix = "# fast-path: "
    assert first.startswith(prefix) and " -- " in first, f"{path.name}: no label on the first line"
    answer = first[len(prefix):].split(" -- ", 1)[0]
    assert answer in ("take", "decline"), f"{path.name}: unknown label {answer!r}"
    return answer


def corpus(answer: str) -> list[Path]:
    return [p for p in FILES if label(p) == answer]


# -- every file, statically -------------------------------------------------------------------------
def test_the_corpus_has_the_shapes_it_must_have():
    assert len(FILES) >= 20
    assert len(corpus("take")) >= 10 and len(corpus("decline")) >= 10
    for template in ("generic", "async", "pyproject", "multidb"):
        assert (CORPUS / f"template_{template}.py").exists()


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_the_fast_path_answers_each_env_py_as_labelled(path):
    why = why_not_plain(path)
    assert (why is None) == (label(path) == "take"), f"{path.name}: {why or 'taken'}"
    assert env_py_is_plain(path) == (why is None)


@pytest.mark.parametrize("template", ["generic", "async", "pyproject", "pyproject_async", "multidb"])
def test_the_corpus_templates_are_alembics_own_verbatim(template):
    """What ``alembic init -t <template>`` writes today, below the label line."""
    installed = ALEMBIC_TEMPLATES / template / "env.py"
    if alembic.__version__ != TEMPLATES_FROM:
        pytest.skip(f"the corpus copies alembic {TEMPLATES_FROM}'s templates, this is {alembic.__version__}")
    copy = (CORPUS / f"template_{template}.py").read_text().split("\n", 1)[1]
    assert copy == installed.read_text()


# The instances found to pass the old blocklist, each declined *at* the line that does it.
@pytest.mark.parametrize(
    ("name", "culprit"),
    [
        ("decline_set_config_search_path", "connection.scalar("),
        ("decline_section_update", "section.update("),
        ("decline_putenv_pgoptions", "os.putenv("),
        ("decline_cursor_callproc", "connection.connection"),
        ("decline_file_config_set", "config.file_config"),
        ("decline_event_listen_alias", "on(connectable"),
        ("decline_kwargs_version_table", "context.configure("),
        ("decline_kwargs_mutated", 'options["version_table"]'),
        ("decline_listens_for_decorator", "def set_search_path"),
        ("decline_execution_options_schema", "connection.execution_options("),
        ("decline_flask_migrate", "current_app.extensions"),
    ],
)
def test_an_unsafe_env_py_is_declined_where_it_does_the_unsafe_thing(name, culprit):
    why = why_not_plain(CORPUS / f"{name}.py")
    assert why is not None and culprit in why, why


GENERIC = (CORPUS / "template_generic.py").read_text()
ONLINE_CONFIGURE = "connection=connection, target_metadata=target_metadata"


@pytest.mark.parametrize(
    ("keyword", "taken"),
    [
        # Read only by autogenerate, offline mode or a step that runs: nothing runs at head.
        ("compare_type=True", True),
        ("compare_server_default=True", True),
        ("include_schemas=True", True),
        ("render_as_batch=connection.dialect.name == 'sqlite'", True),
        ("transaction_per_migration=True", True),
        ("transactional_ddl=False", True),
        ("user_module_prefix='app.types.'", True),
        ("include_object=lambda *args: True", True),
        ("version_table_pk=False", True),
        # Which table or schema the versions are read from, or unknown to this proof.
        ("version_table='app_versions'", False),
        ("version_table_schema='tenant_a'", False),
        ("upgrade_token='app_upgrades'", False),
        ("fn=None", False),
        ("as_sql=True", False),
        ("purge=True", False),
        ("dont_mutate=True", False),
        ("url=config.get_main_option('sqlalchemy.url')", False),
    ],
)
def test_configure_keywords_are_judged_one_by_one(tmp_path, keyword, taken):
    path = tmp_path / "env.py"
    assert ONLINE_CONFIGURE in GENERIC
    path.write_text(GENERIC.replace(ONLINE_CONFIGURE, f"{ONLINE_CONFIGURE}, {keyword}"))
    assert env_py_is_plain(path) is taken, why_not_plain(path)


@pytest.mark.parametrize(
    ("options", "taken"),
    [
        ('{"target_metadata": target_metadata, "compare_type": True}', True),
        ("dict(target_metadata=target_metadata, render_as_batch=True)", True),
        ('{"version_table": "app_versions"}', False),
        ('dict(version_table_schema="tenant_a")', False),
        ("app_options()", False),  # a call into the application: its keys are unknown
        ('{key: True for key in ("compare_type",)}', False),
        ('{"target_metadata": target_metadata}\n        options.update(version_table="x")', False),
        ('{"target_metadata": target_metadata}\n        options.setdefault("version_table", "x")', False),
        ('{"connection": connection}', False),  # connection given twice: env.py raises TypeError
    ],
)
def test_configure_takes_kwargs_only_when_they_are_provably_known(tmp_path, options, taken):
    source = GENERIC.replace(
        "        context.configure(\n            connection=connection, target_metadata=target_metadata\n        )",
        f"        options = {options}\n        context.configure(connection=connection, **options)",
    )
    assert "**options" in source
    path = tmp_path / "env.py"
    path.write_text(
        source.replace("from alembic import context", "from alembic import context\nfrom app import app_options"))
    assert env_py_is_plain(path) is taken, why_not_plain(path)


@pytest.mark.parametrize(
    ("line", "taken"),
    [
        ("url = os.environ['DATABASE_URL']", True),
        ("url = os.environ.get('DATABASE_URL')", True),
        ("url = os.getenv('DATABASE_URL', 'sqlite:///fallback.db')", True),
        ("url = os.getenv('DATABASE_URL') or config.get_main_option('sqlalchemy.url')", True),
        ("url = str(os.environ['DATABASE_URL'])", True),
        ("url = config.get_section(config.config_ini_section)['sqlalchemy.url']", True),
        ("url = config.get_section_option('alembic', 'sqlalchemy.url')", True),
        ("url = os.environ['DATABASE_URL'] + '?options=-csearch_path%3Dtenant'", False),
        ("url = os.environ['DATABASE_URL'].replace('/app', '/other')", False),
        ("url = os.environ.get('OTHER_URL', os.environ['DATABASE_URL'])", False),
        ("url = f\"{os.environ['DATABASE_URL']}_other\"", False),
        ("url = config.get_section_option('other', 'sqlalchemy.url')", False),
        ("url = config.get_main_option('other.url')", False),
        ("url = os.environ['DATABASE_URL']\nos.environ.setdefault('PGOPTIONS', '-csearch_path=t')", False),
        ("url = os.environ['DATABASE_URL']\nurl = 'sqlite:///other.db'", False),
    ],
)
def test_the_url_env_py_connects_to_must_be_provably_alembic_deploys(tmp_path, line, taken):
    source = (
        "import os\nfrom alembic import context\nfrom sqlalchemy import create_engine, pool\n"
        "config = context.config\n" + line + "\n"
        "engine = create_engine(url, poolclass=pool.NullPool)\n"
        "with engine.connect() as connection:\n"
        "    context.configure(connection=connection, target_metadata=None)\n"
        "    with context.begin_transaction():\n"
        "        context.run_migrations()\n"
    )
    path = tmp_path / "env.py"
    path.write_text(source)
    assert env_py_is_plain(path) is taken, why_not_plain(path)


def test_scopes_are_resolved_like_python(tmp_path):
    """A local of one function does not leak into another (the async template reuses the name
    ``connection`` for the async and the sync connection), but a module-level name rebound
    anywhere is unknown."""
    base = (CORPUS / "template_async.py").read_text()
    assert env_py_is_plain(CORPUS / "template_async.py")
    path = tmp_path / "env.py"
    path.write_text(base + "\nconnection = None\n")  # a module-level `connection` the functions do not use
    assert env_py_is_plain(path), why_not_plain(path)
    path.write_text(base.replace("target_metadata = None", "target_metadata = None\nconfig = object()"))
    assert not env_py_is_plain(path)


def test_writing_the_url_back_into_the_config_declines_when_the_ini_cannot_hold_it(tmp_path):
    """``config.set_main_option`` interpolates ``%``: with such a URL env.py fails on the full
    path, so the fast path must not answer for it."""
    path = CORPUS / "set_main_option_from_environ.py"
    assert env_py_is_plain(path, url="sqlite:////tmp/app.db")
    assert not env_py_is_plain(path, url="postgresql://app:p%40ss@db/app")
    assert env_py_is_plain(CORPUS / "template_generic.py", url="postgresql://app:p%40ss@db/app")


# -- real deploys -----------------------------------------------------------------------------------
APP_PACKAGE = {
    "app/__init__.py": "",
    "app/models.py": (
        "from sqlalchemy import MetaData\nfrom sqlalchemy.orm import declarative_base\n\n"
        "Base = declarative_base()\nmetadata = MetaData()\n"
    ),
}
TAKEN_FOR_REAL = [
    "template_generic", "template_async", "get_url_helper_batch", "kwargs_options", "seed_fastapi_service",
    "include_object_hooks", "async_create_async_engine", "sync_helper_connection", "metadata_from_app_models",
]
# Unsafe env.py files that, on SQLite, migrate another database or version table than the one the
# database's alembic_version says is at head.
DECLINED_FOR_REAL = [
    "decline_section_update", "decline_file_config_set", "decline_version_table", "decline_kwargs_mutated",
    "decline_environ_overwritten",
]


def project_with_env_py(make_project, dest: str, name: str) -> Path:
    project = make_project("sync", dest)
    for relative, text in APP_PACKAGE.items():
        (project / relative).parent.mkdir(exist_ok=True)
        (project / relative).write_text(text)
    shutil.copyfile(CORPUS / f"{name}.py", project / "migrations" / "env.py")
    return project


def upgrade_json(project: Path, url: str, *args: str, env: dict[str, str]) -> tuple[int, dict]:
    run = run_cli(project, "upgrade", "--json", *args, url=url, env=env)
    assert "Traceback" not in run.output, run.output
    return run.returncode, json.loads(run.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("name", TAKEN_FOR_REAL)
def test_a_take_shape_is_migrated_by_the_full_path_then_answered_by_the_fast_path(name, make_project, tmp_path):
    assert label(CORPUS / f"{name}.py") == "take"
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg-cache")}
    project = project_with_env_py(make_project, "project", name)
    db = Database(f"sqlite:///{tmp_path / 'app.db'}", "sqlite")
    url = db.async_url if "asyncio" in (project / "migrations" / "env.py").read_text() else db.url

    code, report = upgrade_json(project, url, env=env)  # env.py migrates alembic-deploy's database
    assert code == 0 and report["outcome"] == "applied" and report["fast_path"] is False, report
    assert db.versions() == ["a3_seed"]

    code, report = upgrade_json(project, url, env=env)
    assert code == 0 and report["outcome"] == "noop" and report["fast_path"] is True, report
    code, report = upgrade_json(project, url, "--no-fast-path", env=env)  # env.py agrees: at head
    assert code == 0 and report["outcome"] == "noop" and report["fast_path"] is False, report


def plain_alembic(project: Path, url: str) -> subprocess.CompletedProcess:
    """``alembic upgrade head`` as a user runs it: the URL in alembic.ini and in DATABASE_URL."""
    set_ini_url(project, url)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALEMBIC_DEPLOY_")}
    env["DATABASE_URL"] = url
    return subprocess.run([sys.executable, "-m", "alembic", "upgrade", "head"], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)


def state(folder: Path) -> dict[str, object]:
    """Every SQLite database in ``folder``: its tables and the rows of its version tables."""
    found = {}
    for path in sorted(folder.glob("app.db*")):
        if path.suffix in (".lock", ".json") or path.name.endswith("-journal"):
            continue
        url = f"sqlite:///{path}"
        tables = schema_snapshot(url)
        versions = {t: Database(url, "sqlite").versions(t) for t in ("alembic_version", "app_versions") if t in tables}
        found[path.name] = (tables, versions)
    return found


@pytest.mark.slow
@pytest.mark.parametrize("name", DECLINED_FOR_REAL)
def test_an_unsafe_shape_ends_with_the_fast_path_on_as_without_it(name, make_project, tmp_path):
    """The database's alembic_version says head; the unsafe env.py migrates elsewhere. Plain
    alembic migrates; alembic-deploy with the fast path on must do what --no-fast-path does."""
    assert label(CORPUS / f"{name}.py") == "decline"
    ends = {}
    for mode in ("plain", "--no-fast-path", "--fast-path"):
        folder = tmp_path / mode.strip("-")
        env = {"XDG_CACHE_HOME": str(folder / "xdg-cache")}
        project = make_project("sync", f"{folder.name}/project")
        url = f"sqlite:///{folder / 'app.db'}"
        code, report = upgrade_json(project, url, env=env)  # at head, with the template's env.py
        assert code == 0 and report["outcome"] == "applied", report
        shutil.copyfile(CORPUS / f"{name}.py", project / "migrations" / "env.py")
        before = state(folder)
        if mode == "plain":
            # Plain alembic runs the revisions (into an empty database or version table: it may
            # fail on tables that exist); were it a no-op, the scenario would prove nothing.
            run = plain_alembic(project, url)
            assert "Running upgrade  -> a1_users" in run.stderr, run.stderr
            assert run.returncode != 0 or state(folder) != before
            continue
        code, report = upgrade_json(project, url, mode, env=env)
        assert report["fast_path"] is False, report
        ends[mode] = (code, report["outcome"], [r["revision"] for r in report["applied"]], state(folder))
    assert ends["--fast-path"] == ends["--no-fast-path"]
    assert ends["--fast-path"][1] != "noop"


def test_a_search_path_set_by_env_py_is_not_answered_by_the_fast_path(pg_db, make_project, tmp_path):
    """The generic template plus ``set_config('search_path', 'tenant_a', false)``: public is at
    head, but env.py migrates tenant_a, which is empty."""
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg-cache")}
    project = make_project("sync")
    code, report = upgrade_json(project, pg_db.url, env=env)
    assert code == 0 and report["outcome"] == "applied", report
    with pg_db.engine().begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA tenant_a")
    shutil.copyfile(CORPUS / "decline_set_config_search_path.py", project / "migrations" / "env.py")

    code, report = upgrade_json(project, pg_db.url, env=env)
    assert code == 0 and report["fast_path"] is False and report["outcome"] == "applied", report
    assert pg_db.versions("tenant_a.alembic_version") == ["a3_seed"]


@pytest.mark.parametrize(
    ("name", "url", "taken"),
    [
        ("template_async", "sqlite+aiosqlite:////tmp/app.db", True),
        ("template_async", "postgresql+asyncpg://db/app", True),
        ("template_async", "postgresql+psycopg://db/app", True),  # psycopg 3 serves both
        ("template_async", "sqlite:////tmp/app.db", False),
        ("template_async", "postgresql://db/app", False),
        ("template_generic", "sqlite:////tmp/app.db", True),
        ("template_generic", "mysql+pymysql://db/app", True),
        ("template_generic", "sqlite+aiosqlite:////tmp/app.db", False),
        ("template_generic", "mysql+aiomysql://db/app", False),
    ],
)
def test_an_engine_that_cannot_run_the_url_s_driver_declines(name, url, taken):
    """The full path would fail there (env.py raises), so "nothing to do" would be wrong."""
    assert env_py_is_plain(CORPUS / f"{name}.py", url=url) is taken


@pytest.mark.parametrize(
    ("line", "taken"),
    [
        ("retries = 3\nretries += 1", True),
        ("alias = section\nalias |= {'sqlalchemy.url': 'sqlite:///other.db'}", False),
        ("section |= {'sqlalchemy.url': 'sqlite:///other.db'}", False),
        ("holder = {'s': section}\nholder['s'].update({'sqlalchemy.url': 'sqlite:///other.db'})", False),
        ("holder = [section]\nholder[0]['sqlalchemy.url'] = 'sqlite:///other.db'", False),
        ("def edit(s):\n    s['sqlalchemy.url'] = 'sqlite:///other.db'\nedit(section)", False),
        ("def edit(s):\n    s['sqlalchemy.url'] = os.environ['DATABASE_URL']\nedit(section)", True),
        # Declined though that copy is never used: any other URL written into a section is.
        ("copy = dict(section)\ncopy['sqlalchemy.url'] = 'sqlite:///other.db'", False),
        ("x: make_annotation() = 1", False),
        ("class Settings:\n    url = 'sqlite:///other.db'", False),
        ("global section", False),
        ("del section", False),
    ],
)
def test_a_section_is_changed_only_through_the_ways_the_proof_knows(tmp_path, line, taken):
    source = (
        "import os\nfrom alembic import context\nfrom sqlalchemy import engine_from_config, pool\n"
        "from app import make_annotation\n"
        "config = context.config\nsection = config.get_section(config.config_ini_section, {})\n" + line + "\n"
        "engine = engine_from_config(section, prefix='sqlalchemy.', poolclass=pool.NullPool)\n"
        "with engine.connect() as connection:\n"
        "    context.configure(connection=connection, target_metadata=None)\n"
        "    with context.begin_transaction():\n"
        "        context.run_migrations()\n"
    )
    path = tmp_path / "env.py"
    path.write_text(source)
    assert env_py_is_plain(path) is taken, why_not_plain(path)


AUTOGENERATE_HOOKS = {"include_object", "include_name", "process_revision_directives"}


def bodies_that_run(tree):
    """Every statement list of env.py that runs during ``upgrade`` (the module's, each function's
    but the autogenerate hooks', each block's)."""
    import ast

    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in AUTOGENERATE_HOOKS:
            continue  # alembic calls it only while autogenerating: its body is not the proof's
        for field in ("body", "orelse", "finalbody"):
            body = getattr(node, field, None)
            if isinstance(body, list) and body and isinstance(body[0], ast.stmt):
                yield body
        stack.extend(ast.iter_child_nodes(node))


@pytest.mark.parametrize("path", corpus("take"), ids=[p.stem for p in corpus("take")])
def test_any_unknown_call_anywhere_in_a_taken_env_py_declines(path, tmp_path):
    """The allowlist as a class: one call the proof does not know (into the application, here),
    put in any block of any shape the fast path takes, makes it decline."""
    import ast

    source = path.read_text()
    count = len(list(bodies_that_run(ast.parse(source))))
    assert count >= 2
    for index in range(count):
        tree = ast.parse(source)
        body = list(bodies_that_run(tree))[index]
        body.insert(len(body) // 2, ast.parse("unknown_call()").body[0])
        tree.body.insert(0, ast.parse("from app import unknown_call").body[0])
        mutated = tmp_path / f"env_{index}.py"
        mutated.write_text(ast.unparse(tree))
        assert not env_py_is_plain(mutated), f"{path.name}, block {index}:\n{ast.unparse(tree)}"


def test_an_async_env_py_given_a_sync_url_ends_as_without_the_fast_path(make_project, tmp_path):
    """The async template at head through aiosqlite, then deployed with a sync URL: env.py cannot
    run it (create_async_engine needs an async driver), so the fast path must not call it a no-op."""
    env = {"XDG_CACHE_HOME": str(tmp_path / "xdg-cache")}
    project = project_with_env_py(make_project, "project", "template_async")
    db = Database(f"sqlite:///{tmp_path / 'app.db'}", "sqlite")
    code, report = upgrade_json(project, db.async_url, env=env)
    assert code == 0 and report["outcome"] == "applied", report

    fast = run_cli(project, "upgrade", "--json", url=db.url, env=env)
    full = run_cli(project, "upgrade", "--json", "--no-fast-path", url=db.url, env=env)
    assert full.returncode != 0, full.output  # the full path runs env.py, which refuses the URL
    assert (fast.returncode, json.loads(fast.stdout)["fast_path"]) == (full.returncode, False), fast.output


@pytest.mark.skipif(sys.version_info < (3, 11), reason="except* is new in Python 3.11")
@pytest.mark.parametrize("handler", ["except", "except*"])
def test_a_try_statement_is_judged_by_its_blocks_whether_it_catches_with_except_or_except_star(tmp_path, handler):
    """``try``/``except`` and ``try``/``except*`` hold the same blocks: the template's run wrapped in
    either is taken, and either declines once its handler calls into the application."""
    source = (CORPUS / "template_generic.py").read_text()
    run = "if context.is_offline_mode():\n    run_migrations_offline()\nelse:\n    run_migrations_online()\n"
    assert source.endswith(run)
    wrapped = "try:\n" + "".join(f"    {line}\n" for line in run.splitlines())
    plain = tmp_path / "plain.py"
    plain.write_text(source.replace(run, wrapped + f"{handler} ValueError:\n    raise\n"))
    assert env_py_is_plain(plain), why_not_plain(plain)
    calling = tmp_path / "calling.py"
    calling.write_text("from app import unknown_call\n"
                       + source.replace(run, wrapped + f"{handler} ValueError:\n    unknown_call()\n    raise\n"))
    assert not env_py_is_plain(calling)
