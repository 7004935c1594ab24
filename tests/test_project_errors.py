"""The project's own configuration errors are exit 2, one paragraph naming the file (and line) or the
package to install, no traceback: a revision file that does not compile or cannot import, a
``down_revision``/``depends_on`` naming nothing, a cycle, env.py that cannot import, a missing
DBAPI module or ``greenlet``. Plain alembic fails on each too (with a traceback); none is a bug
of alembic-deploy (exit 1) or a failed migration (exit 7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from alembic_deploy.alembic_env import revision_graph
from alembic_deploy.errors import ConfigError
from helpers import Run, assert_failed_cleanly, invoke_cli

VERSIONS = Path("migrations", "versions")


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, path
    path.write_text(text.replace(old, new, 1))


# (name, file to edit, text there, its replacement, what the message must say, the file named)
BREAKAGES = [
    ("syntax-error", "a3_seed.py", "def upgrade() -> None:", "def upgrade() -> None\n    pass\n\ndef x():",
     ["does not compile", "line 15"], "a3_seed.py"),
    ("import-error", "a2_users_email_index.py", "from alembic import op",
     "from alembic import op\nfrom myapp_that_is_not_installed import models", ["line 8", "ModuleNotFoundError",
                                                                                "myapp_that_is_not_installed"],
     "a2_users_email_index.py"),
    ("raises-on-import", "a2_users_email_index.py", "from alembic import op",
     "from alembic import op\nSETTINGS = {}['tenant']", ["line 8", "KeyError", "tenant"], "a2_users_email_index.py"),
    ("unknown-down-revision", "a3_seed.py", 'down_revision = "a2_users_email_index"', 'down_revision = "a2_typo"',
     ["'a2_typo'", "no revision file defines"], "a3_seed.py"),
    ("unknown-depends-on", "a3_seed.py", "depends_on = None", 'depends_on = "zz_missing"',
     ["'zz_missing'", "no revision file defines"], "a3_seed.py"),
    ("cycle", "a1_users.py", "down_revision = None", 'down_revision = "a3_seed"',
     ["Cycle is detected", "a1_users", "a3_seed"], "a1_users.py"),
]


def _broken(make_project, name: str, file: str, old: str, new: str) -> Path:
    project = make_project("sync")
    _edit(project / VERSIONS / file, old, new)
    return project


@pytest.mark.parametrize(("name", "file", "old", "new", "says", "names"), BREAKAGES, ids=[b[0] for b in BREAKAGES])
@pytest.mark.parametrize("command", [("upgrade",), ("upgrade", "--no-fast-path"), ("status",)])
def test_a_broken_revision_file_or_graph_is_a_config_error_naming_the_file(
    sqlite_db, make_project, name, file, old, new, says, names, command
):
    project = _broken(make_project, name, file, old, new)
    run = invoke_cli(project, *command, "--json", url=sqlite_db.url)
    message = assert_failed_cleanly(run, 2)
    assert str(project / VERSIONS / names) in message, message
    for part in says:
        assert part in message, message
    assert "bug in alembic-deploy" not in message
    assert json.loads(run.stdout)["error"]["kind"] == "config-error"
    assert not sqlite_db.has_table("users")


@pytest.mark.parametrize(("name", "file", "old", "new", "says", "names"), BREAKAGES, ids=[b[0] for b in BREAKAGES])
def test_the_library_raises_the_same_config_error(make_project, name, file, old, new, says, names):
    """The schema guard loads the graph through revision_graph(): the same ConfigError there."""
    project = _broken(make_project, name, file, old, new)
    with pytest.raises(ConfigError) as raised:
        revision_graph(str(project / "alembic.ini"))
    assert str(project / VERSIONS / names) in raised.value.message


@pytest.mark.parametrize("command", ["upgrade", "status"])
def test_env_py_that_cannot_import_is_a_config_error_naming_it(sqlite_db, make_project, command):
    project = make_project("sync")
    env_py = project / "migrations" / "env.py"
    _edit(env_py, "from alembic import context", "from alembic import context\nfrom myservice.models import Base")
    run = invoke_cli(project, command, url=sqlite_db.url)
    message = assert_failed_cleanly(run, 2)
    assert f"{env_py}, line 7" in message and "myservice" in message


# -- missing drivers: each module is made unimportable in the alembic-deploy process, as Python
# reports a module that is not installed (ImportError), whatever this machine has installed.
_WITHOUT = """
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None
from alembic_deploy.cli import main
main(args=sys.argv[2:], prog_name="alembic-deploy")
"""


def _run_without(modules: str, project: Path, *args: str, url: str) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALEMBIC_DEPLOY_")}
    env["DATABASE_URL"] = url
    proc = subprocess.run([sys.executable, "-c", _WITHOUT, modules, *args], cwd=project, env=env,
                          capture_output=True, text=True, timeout=120)
    return Run(proc.returncode, proc.stdout, proc.stderr)


@pytest.mark.parametrize(
    ("url", "missing", "advice"),
    [
        # bare mysql:// is MySQLdb: its package is mysqlclient; PyMySQL (the extra) is the other way
        ("mysql://app:s3cr3t-drv-2@127.0.0.1/app", "MySQLdb", ["pip install 'mysqlclient'", "mysql+pymysql://"]),
        ("mysql+asyncmy://app:s3cr3t-drv-2@127.0.0.1/app", "asyncmy", ["pip install 'asyncmy'"]),
        ("mysql+aiomysql://app:s3cr3t-drv-2@127.0.0.1/app", "aiomysql", ["pip install 'aiomysql'"]),
        ("postgresql+asyncpg://app:s3cr3t-drv-2@127.0.0.1/app", "asyncpg", ["pip install 'asyncpg'"]),
        ("postgresql+pg8000://app:s3cr3t-drv-2@127.0.0.1/app", "pg8000", ["pip install 'pg8000'"]),
        ("postgresql+psycopg2://app:s3cr3t-drv-2@127.0.0.1/app", "psycopg2", ["pip install 'psycopg2-binary'"]),
        ("sqlite+aiosqlite:///app.db", "aiosqlite", ["pip install 'aiosqlite'"]),
        ("sqlite+aiosqlite:///app.db", "greenlet", ["pip install 'greenlet'"]),
        ("postgresql+asyncpg://app:s3cr3t-drv-2@127.0.0.1/app", "greenlet", ["pip install 'greenlet'"]),
    ],
)
def test_a_missing_driver_is_a_config_error_naming_the_package(make_project, url, missing, advice):
    run = _run_without(missing, make_project("sync"), "upgrade", "--no-fast-path", "--wait-timeout", "1", url=url)
    message = assert_failed_cleanly(run, 2, "s3cr3t-drv-2")
    assert f"Python module {missing}, which is not installed" in message, message
    for part in advice:
        assert part in message, message


def test_a_driver_only_env_py_uses_is_a_config_error_too(sqlite_db, make_project, tmp_path):
    """env.py builds its own async engine: the greenlet it needs is missing there, not in the
    tool's sync engine; still exit 2 naming the package, not exit 7 blaming a migration."""
    project = make_project("async")
    _edit(project / "migrations" / "env.py", "config.get_section(config.config_ini_section, {}),",
          f'{{"sqlalchemy.url": "sqlite+aiosqlite:///{tmp_path / "app.db"}"}},')
    for command in ("upgrade", "status"):
        run = _run_without("greenlet", project, command, url=sqlite_db.url)
        message = assert_failed_cleanly(run, 2)
        assert "env.py creates" in message and "pip install 'greenlet'" in message
