"""alembic's global options (-c/--config, -n/--name, -x, --raiseerr) work before the command, in
alembic's own order, as well as after it, on every command; given in both places, the one after
the command wins. Every command's options are the settings that name it (one definition, in
Settings), so `run` takes every option `upgrade` does."""

from __future__ import annotations

import gc
import sys
from dataclasses import fields
from typing import TYPE_CHECKING

import pytest
from click.testing import CliRunner

from alembic_deploy.cli import GLOBAL_OPTIONS, main, resolve
from alembic_deploy.errors import ConfigError, HealthCheckFailed
from alembic_deploy.settings import OPTION, RUN, UPGRADE, Settings, kind, options
from helpers import Database, free_port, run_cli

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

HEAD = ["a3_seed"]


@pytest.fixture(autouse=True)
def _thaw_the_heap() -> Iterator[None]:
    """The CLI freezes the heap as its process ends (cli._run); run in-process here, it must not
    hand a frozen heap to the tests that follow (test_heap counts frozen objects)."""
    yield
    gc.unfreeze()


def _invoke(*args: str, env: dict[str, str | None] | None = None):
    return CliRunner().invoke(main, list(args), env={"DATABASE_URL": None, **(env or {})}, catch_exceptions=False)


def _orders(command: str, *options: str, rest: tuple[str, ...] = ()) -> list[list[str]]:
    """The same invocation with ``options`` before the command (alembic's order) and after it."""
    return [[*options, command, *rest], [command, *options, *rest]]


@pytest.fixture
def project(make_project) -> Path:
    return make_project("ini_url")  # sqlalchemy.url in the ini: the test's cwd is not the project


@pytest.fixture
def db(project) -> Database:
    return Database(f"sqlite:///{project / 'app.db'}", "sqlite")


@pytest.mark.parametrize("before", [True, False], ids=["before-command", "after-command"])
def test_upgrade_status_history_and_repair_take_config_on_either_side(project, db, before):
    ini = ("-c", str(project / "alembic.ini"))
    pick = 0 if before else 1
    upgraded = _invoke(*_orders("upgrade", *ini, rest=("heads",))[pick])
    assert upgraded.exit_code == 0, upgraded.output
    assert db.versions() == HEAD
    status = _invoke(*_orders("status", *ini)[pick])
    assert status.exit_code == 0 and "current:  a3_seed" in status.output, status.output
    history = _invoke(*_orders("history", *ini)[pick])
    assert history.exit_code == 0 and "applied" in history.output, history.output
    repair = _invoke(*_orders("repair", *ini)[pick])
    assert repair.exit_code == 0 and "Nothing to repair" in repair.output, repair.output


@pytest.mark.parametrize("order", [0, 1], ids=["before-command", "after-command"])
def test_ini_section_name_on_either_side(project, db, order):
    ini = project / "alembic.ini"
    ini.write_text(ini.read_text().replace("[alembic]", "[tenant]"))
    missing = _invoke("upgrade", "-c", str(ini))
    assert missing.exit_code == 2 and "-n/--name" in missing.output, missing.output
    run = _invoke(*_orders("upgrade", "-c", str(ini), "-n", "tenant")[order])
    assert run.exit_code == 0, run.output
    assert db.versions() == HEAD


@pytest.mark.parametrize("order", [0, 1], ids=["before-command", "after-command"])
def test_x_arguments_reach_env_py_on_either_side(make_project, sqlite_db, order):
    project = make_project("xargs")
    args = _orders("upgrade", "-c", str(project / "alembic.ini"), "-x", "version_table=xargs_versions")[order]
    run = _invoke(*args, env={"DATABASE_URL": sqlite_db.url})
    assert run.exit_code == 0, run.output
    assert sqlite_db.versions("xargs_versions") == HEAD
    assert not sqlite_db.has_table("alembic_version")


def test_x_arguments_from_both_sides_are_all_passed_the_later_winning(make_project, sqlite_db):
    project = make_project("xargs")
    run = _invoke("-x", "version_table=before_versions", "-c", str(project / "alembic.ini"),
                  "upgrade", "-x", "version_table=after_versions", env={"DATABASE_URL": sqlite_db.url})
    assert run.exit_code == 0, run.output
    assert sqlite_db.versions("after_versions") == HEAD
    assert not sqlite_db.has_table("before_versions")


def test_an_option_after_the_command_overrides_the_same_one_before_it(project, db, tmp_path):
    run = _invoke("-c", str(tmp_path / "nowhere.ini"), "-n", "nosuch", "upgrade",
                  "-c", str(project / "alembic.ini"), "-n", "alembic")
    assert run.exit_code == 0, run.output
    assert db.versions() == HEAD
    # ... and one given only before the command still counts.
    wrong = _invoke("-c", str(tmp_path / "nowhere.ini"), "status")
    assert wrong.exit_code == 2 and "nowhere.ini" in wrong.output


@pytest.mark.parametrize("order", [0, 1], ids=["before-command", "after-command"])
@pytest.mark.parametrize("flag", ["--raiseerr", "--debug"])
def test_raiseerr_shows_the_traceback_on_either_side(tmp_path, order, flag):
    args = _orders("status", "-c", str(tmp_path / "missing.ini"), flag)[order]
    run = _invoke(*args)
    assert run.exit_code == 2
    assert "Traceback" in run.output
    assert "Traceback" not in _invoke("status", "-c", str(tmp_path / "missing.ini")).output


@pytest.mark.parametrize("order", [0, 1], ids=["before-command", "after-command"])
def test_demo_takes_raiseerr_on_either_side_and_refuses_a_config(tmp_path, order):
    refused = _invoke(*_orders("demo", "-c", str(tmp_path / "alembic.ini"))[order])
    assert refused.exit_code == 2 and "--config" in refused.output, refused.output
    ran = _invoke(*_orders("demo", "--raiseerr", rest=("--keep", str(tmp_path / "demo")))[order])
    assert ran.exit_code == 0, ran.output
    assert (tmp_path / "demo" / "demo.db").exists()


# -- real processes ---------------------------------------------------------------------------------
def test_alembics_own_order_in_a_real_process(project, db, tmp_path):
    """`alembic-deploy -c INI upgrade heads`, word for word as with alembic, from another folder."""
    run = run_cli(tmp_path, "-c", str(project / "alembic.ini"), "upgrade", "heads")
    assert run.returncode == 0, run.output
    assert db.versions() == HEAD


@pytest.mark.parametrize("order", [0, 1], ids=["before-command", "after-command"])
def test_run_takes_config_on_either_side(project, db, tmp_path, order):
    app = ("--", sys.executable, "-c", "print('app started')")
    args = _orders("run", "-c", str(project / "alembic.ini"), rest=("--migrate", *app))[order]
    run = run_cli(tmp_path, *args)
    assert run.returncode == 0, run.output
    assert "app started" in run.stdout
    assert db.versions() == HEAD


# -- every command's options come from the settings that name it --------------------------------------
#: Text settings that take one of a few words: a word each takes other than its default.
CHOICES = {"lint": "warn", "fail_on": "warning", "output_format": "json", "log_format": "json", "backup": "always",
           "backup_on_failure": "continue", "backup_method": "command", "backup_tables": "auto"}


def _sample(setting) -> tuple[list[str], object]:
    """Arguments giving ``setting`` a value other than its default, and the value Settings should hold."""
    spec = setting.metadata[OPTION]
    flag = (spec.flags or (f"--{setting.name.replace('_', '-')}",))[-1]
    value_type = kind(setting)
    if value_type == "bool":
        if "/" in flag:  # --on/--off: the one that is not the default
            on, off = flag.split("/")
            return ([off] if setting.default else [on]), not setting.default
        return [flag], True
    if value_type == "tuple":
        raw = {"URL": "http://127.0.0.1:9/ready", "SINK": "emf"}.get(spec.metavar or "", "key=value")
        return [flag, raw], (raw,)
    if setting.name in CHOICES:
        return [flag, CHOICES[setting.name]], CHOICES[setting.name]
    raw, value = {"float": ("7.5", 7.5), "int": ("3", 3), "str": ("deploy_log", "deploy_log")}[value_type]
    return [flag, raw], value


def test_each_command_takes_exactly_the_settings_that_name_it():
    """The CLI is built from the one definition in Settings: nothing added, nothing left out."""
    settings = {f.name for f in fields(Settings)}
    for name, command in main.commands.items():
        taken = {p.name for p in command.params if p.name in settings}
        assert taken == {f.name for f in options(name)}, name
    assert {p.name for p in main.params if p.name in settings} == set(GLOBAL_OPTIONS)


@pytest.mark.parametrize("setting", options(UPGRADE), ids=lambda f: f.name)
def test_run_accepts_every_option_upgrade_takes_and_it_reaches_the_settings(setting):
    """`run --migrate` runs upgrade's pipeline: every upgrade option is a run option with the same
    meaning (generated from Settings, so a new upgrade setting is covered as it is added)."""
    args, expected = _sample(setting)
    for command in (UPGRADE, RUN):
        assert setting in options(command)
        ctx = main.commands[command].make_context(command, [*args, *(("--no-migrate", "--", "true") if
                                                                     command == RUN else ())])
        settings, _ = resolve(dict(ctx.params))
        assert getattr(settings, setting.name) == expected, (command, args)


def test_run_migrates_with_upgrades_options_end_to_end(project, db, tmp_path):
    app = ("--", sys.executable, "-c", "print('app started')")
    run = run_cli(tmp_path, "run", "--migrate", "-c", str(project / "alembic.ini"), "--ddl-lock-timeout", "5",
                  "--statement-timeout", "30", "--retries", "2", "--retry-deadline", "60", "--no-fast-path",
                  "--lock-timeout-wait", "30", "--journal-table", "deploy_log", "--env", "qa", *app)
    assert run.returncode == 0, run.output
    assert "app started" in run.stdout
    assert db.versions() == HEAD
    assert [(r["outcome"], r["environment"]) for r in db.journal("deploy_log")] == [("applied", "qa")]
    assert not db.has_table("alembic_deploy_history")
    # The same options again: a no-op, off the fast path as asked.
    again = run_cli(tmp_path, "run", "--migrate", "-c", str(project / "alembic.ini"), "--no-fast-path",
                    "--retries", "0", "--journal-table", "deploy_log", "--env", "qa", *app)
    assert again.returncode == 0 and "app started" in again.stdout, again.output
    assert [r["outcome"] for r in db.journal("deploy_log")] == ["applied", "noop"]


def test_run_migrate_waits_for_a_health_gate_given_to_it(project, db, tmp_path):
    """Given to `run --migrate` itself (not from the environment, which the post-deploy step owns),
    --wait-healthy is upgrade's gate: an app that never answers stops the run with exit 4, and
    neither the migration nor CMD runs."""
    marker = tmp_path / "started"
    app = ("--", sys.executable, "-c", f"open({str(marker)!r}, 'w').write('started')")
    run = run_cli(tmp_path, "run", "--migrate", "-c", str(project / "alembic.ini"), "--wait-healthy",
                  f"http://127.0.0.1:{free_port()}/ready", "--health-timeout", "0.5", "--health-interval", "0.1",
                  *app)
    assert run.returncode == HealthCheckFailed.exit_code, run.output
    assert not marker.exists()
    assert not db.has_table("alembic_version")


@pytest.mark.parametrize("mode", ["--no-migrate", "--wait-for-schema"])
def test_run_refuses_a_health_gate_where_it_does_not_migrate(project, mode):
    result = _invoke("run", mode, "-c", str(project / "alembic.ini"), "--wait-healthy", "http://127.0.0.1:9/",
                     "--", "true")
    assert result.exit_code == ConfigError.exit_code, result.output
    assert "--wait-healthy" in result.output and "--migrate" in result.output


def test_the_readme_configuration_table_lists_every_option():
    from pathlib import Path

    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Configuration"):readme.index("The same keys, kebab-cased")]
    for setting in fields(Settings):
        if OPTION in setting.metadata:
            for flag in setting.metadata[OPTION].flags or (f"--{setting.name.replace('_', '-')}",):
                assert flag.split("/")[0] in table, flag
