"""Settings precedence: flags > ALEMBIC_DEPLOY_* env > [tool.alembic-deploy] in pyproject.toml >
defaults, and clear configuration errors (exit 2) for what cannot be used."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from alembic_deploy import ConfigError, Settings
from alembic_deploy.cli import main


def _pyproject(folder: Path, body: str) -> Path:
    path = folder / "pyproject.toml"
    path.write_text(f"[project]\nname = 'app'\n\n[tool.alembic-deploy]\n{body}\n")
    return path


def test_defaults_when_nothing_is_given(tmp_path):
    settings = Settings.resolve({}, environ={}, pyproject=_pyproject(tmp_path, ""))
    assert settings == Settings()
    assert (settings.wait_timeout, settings.lock_timeout_wait) == (60.0, 600.0)
    assert settings.journal_table == "alembic_deploy_history"
    assert settings.fast_path is True and settings.database_url is None


def test_flags_beat_env_beat_pyproject_beat_defaults(tmp_path):
    pyproject = _pyproject(tmp_path, 'wait-timeout = 30\nlock-timeout-wait = 100\nenv = "from-file"')
    environ = {"ALEMBIC_DEPLOY_LOCK_TIMEOUT_WAIT": "200", "ALEMBIC_DEPLOY_ENV": "from-env"}
    settings = Settings.resolve({"env": "from-flag", "journal_table": None}, environ=environ, pyproject=pyproject)
    assert settings.env == "from-flag"
    assert settings.lock_timeout_wait == 200.0
    assert settings.wait_timeout == 30.0
    assert settings.journal_table == "alembic_deploy_history"  # a None flag means "not given"


@pytest.mark.parametrize(("raw", "expected"), [("off", False), ("0", False), ("yes", True), ("TRUE", True)])
def test_boolean_env_values(tmp_path, raw, expected):
    settings = Settings.resolve({}, environ={"ALEMBIC_DEPLOY_FAST_PATH": raw}, pyproject=_pyproject(tmp_path, ""))
    assert settings.fast_path is expected


def test_x_arguments_from_env_and_from_pyproject(tmp_path):
    from_env = Settings.resolve({}, environ={"ALEMBIC_DEPLOY_X": "a=1,b=2"}, pyproject=_pyproject(tmp_path, ""))
    assert from_env.x == ("a=1", "b=2")
    from_file = Settings.resolve({}, environ={}, pyproject=_pyproject(tmp_path, 'x = ["tenant=acme"]'))
    assert from_file.x == ("tenant=acme",)


def test_database_url_comes_from_database_url_unless_a_flag_names_one(tmp_path):
    pyproject = _pyproject(tmp_path, "")
    environ = {"DATABASE_URL": "postgresql://app:pw-env-1@db/app"}
    assert Settings.resolve({}, environ=environ, pyproject=pyproject).database_url == environ["DATABASE_URL"]
    flagged = Settings.resolve({"database_url": "sqlite:///flag.db"}, environ=environ, pyproject=pyproject)
    assert flagged.database_url == "sqlite:///flag.db"
    own = {**environ, "ALEMBIC_DEPLOY_DATABASE_URL": "sqlite:///own.db"}
    assert Settings.resolve({}, environ=own, pyproject=pyproject).database_url == "sqlite:///own.db"


def test_the_url_never_shows_in_repr(tmp_path):
    settings = Settings.resolve({}, environ={"DATABASE_URL": "postgresql://app:pw-repr-77@db/app"},
                                pyproject=_pyproject(tmp_path, ""))
    assert "pw-repr-77" not in repr(settings)
    assert settings.masked_url == "postgresql://app:***@db/app"


def test_github_provenance_from_the_actions_environment(tmp_path):
    environ = {
        "GITHUB_SHA": "0123456789abcdef",
        "GITHUB_ACTOR": "octocat",
        "GITHUB_RUN_ID": "42",
        "GITHUB_REPOSITORY": "acme/app",
        "GITHUB_SERVER_URL": "https://github.example.com",
    }
    settings = Settings.resolve({}, environ=environ, pyproject=_pyproject(tmp_path, ""))
    assert (settings.git_sha, settings.actor) == ("0123456789abcdef", "octocat")
    assert settings.run_url == "https://github.example.com/acme/app/actions/runs/42"
    flagged = Settings.resolve({"git_sha": "feedface", "run_url": "https://ci/1"}, environ=environ,
                               pyproject=_pyproject(tmp_path, ""))
    assert (flagged.git_sha, flagged.run_url) == ("feedface", "https://ci/1")


def test_pyproject_is_found_beside_the_alembic_ini(tmp_path):
    (tmp_path / "app").mkdir()
    _pyproject(tmp_path / "app", 'journal-table = "deploys"')
    settings = Settings.resolve({"config": str(tmp_path / "app" / "alembic.ini")}, environ={})
    assert settings.journal_table == "deploys"


def test_unknown_pyproject_key_is_a_config_error_naming_it(tmp_path):
    with pytest.raises(ConfigError) as err:
        Settings.resolve({}, environ={}, pyproject=_pyproject(tmp_path, "wait-timout = 5"))
    assert err.value.exit_code == 2
    assert "wait-timout" in err.value.message and "wait-timeout" in err.value.message


@pytest.mark.parametrize(
    ("flags", "environ", "body", "names"),
    [
        ({}, {}, 'wait-timeout = "soon"', "wait-timeout in [tool.alembic-deploy]"),
        ({}, {"ALEMBIC_DEPLOY_FAST_PATH": "maybe"}, "", "ALEMBIC_DEPLOY_FAST_PATH"),
        ({}, {"ALEMBIC_DEPLOY_RETRIES": "many"}, "", "ALEMBIC_DEPLOY_RETRIES"),
        ({"wait_timeout": -1.0}, {}, "", "--wait-timeout"),
        ({"x": ("tenant",)}, {}, "", "-x"),
    ],
)
def test_bad_values_are_config_errors_naming_their_source(tmp_path, flags, environ, body, names):
    with pytest.raises(ConfigError) as err:
        Settings.resolve(flags, environ=environ, pyproject=_pyproject(tmp_path, body))
    assert names in err.value.message


def test_unparsable_pyproject_is_a_config_error(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text("[tool.alembic-deploy\nwait-timeout = ")
    with pytest.raises(ConfigError, match="Could not read"):
        Settings.resolve({}, environ={}, pyproject=path)


# -- through the CLI (in-process) ----------------------------------------------------------------
@pytest.fixture
def project(make_project) -> Path:
    return make_project("ini_url")


def _invoke(*args: str, env: dict[str, str | None] | None = None):
    # DATABASE_URL: None unsets it for the call and restores the caller's value afterwards
    # (the pipeline exports it for env.py).
    return CliRunner().invoke(main, list(args), env={"DATABASE_URL": None, **(env or {})}, catch_exceptions=False)


def test_cli_uses_the_pyproject_beside_the_ini_and_env_overrides_it(project):
    from helpers import Database

    _pyproject(project, 'journal-table = "from_pyproject"\nenv = "qa"')
    db = Database(f"sqlite:///{project / 'app.db'}", "sqlite")
    first = _invoke("upgrade", "-c", str(project / "alembic.ini"))
    assert first.exit_code == 0, first.output
    assert [r["environment"] for r in db.journal("from_pyproject")] == ["qa"]
    second = _invoke("upgrade", "-c", str(project / "alembic.ini"),
                     env={"ALEMBIC_DEPLOY_JOURNAL_TABLE": "from_env", "ALEMBIC_DEPLOY_ENV": None})
    assert second.exit_code == 0, second.output
    assert [r["outcome"] for r in db.journal("from_env")] == ["noop"]
    third = _invoke("upgrade", "-c", str(project / "alembic.ini"), "--env", "beta",
                    env={"ALEMBIC_DEPLOY_ENV": "production"})
    assert third.exit_code == 0, third.output
    assert [r["environment"] for r in db.journal("from_pyproject")] == ["qa", "beta"]


@pytest.mark.parametrize(
    ("body", "env", "expected"),
    [
        ("retrys = 3", {}, "Unknown key(s) retrys"),
        ('lock-timeout-wait = "ten minutes"', {}, "lock-timeout-wait in [tool.alembic-deploy]"),
        ("", {"ALEMBIC_DEPLOY_WAIT_TIMEOUT": "soon"}, "ALEMBIC_DEPLOY_WAIT_TIMEOUT"),
    ],
)
def test_cli_exits_2_with_one_clear_line_for_bad_settings(project, body, env, expected):
    _pyproject(project, body)
    result = _invoke("upgrade", "-c", str(project / "alembic.ini"), env=env)
    assert result.exit_code == 2
    assert expected in result.output
    assert "Traceback" not in result.output
    assert not (project / "app.db").exists(), "nothing may run with settings that do not resolve"


def test_cli_rejects_a_bad_flag_value_as_a_usage_error(project):
    result = _invoke("upgrade", "-c", str(project / "alembic.ini"), "--wait-timeout", "soon")
    assert result.exit_code == 2
    assert "--wait-timeout" in result.output


# -- every setting is checked when it is resolved (exit 2 naming its source) ----------------------
def _flag(key: str) -> str:
    """The flag a message names the setting by: its option's (``--timeout`` for ``ecs_timeout``)."""
    from dataclasses import fields

    from alembic_deploy.settings import flag_of

    return flag_of(next(f for f in fields(Settings) if f.name == key))


def _sources(key: str, raw: str, tmp_path: Path) -> list[tuple[dict, dict, Path, str]]:
    """(flags, environ, pyproject, the source the error must name) giving setting ``key`` ``raw``,
    once from each source."""
    name = key.replace("_", "-")
    env_var = "ALEMBIC_DEPLOY_" + key.upper()
    folder = tmp_path / f"{key}-{len(raw)}"
    folder.mkdir(exist_ok=True)
    return [
        ({key: raw}, {}, _pyproject(folder, ""), _flag(key)),
        ({}, {env_var: raw}, _pyproject(folder, ""), env_var),
        ({}, {}, _pyproject(folder, f"{name} = {_toml(raw)}"), f"{name} in [tool.alembic-deploy]"),
    ]


def _toml(raw: str) -> str:
    import json

    return raw if raw in ("nan", "inf", "-inf") or raw.lstrip("-").replace(".", "").isdigit() else json.dumps(raw)


def _numeric_fields() -> list[str]:
    from dataclasses import fields

    return [f.name for f in fields(Settings) if str(f.type).split(" ")[0] in ("float", "int")]


def test_every_numeric_setting_has_a_checked_range():
    from alembic_deploy.settings import COUNTS, SECONDS

    assert set(_numeric_fields()) == SECONDS | set(COUNTS), "a new number setting needs a range in settings.py"


@pytest.mark.parametrize("key", _numeric_fields())
@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "-1", "1e12"])
def test_every_numeric_setting_refuses_nan_infinite_negative_and_huge_from_every_source(tmp_path, key, raw):
    from alembic_deploy.settings import COUNTS

    if key in COUNTS and raw in ("nan", "inf", "-inf", "1e12"):
        raw = {"nan": "x", "inf": "99999999", "-inf": "-99999999", "1e12": "10001"}[raw]
    for flags, environ, pyproject, source in _sources(key, raw, tmp_path):
        with pytest.raises(ConfigError) as err:
            Settings.resolve(flags, environ=environ, pyproject=pyproject)
        assert err.value.exit_code == 2
        assert source in err.value.message, (source, err.value.message)


def test_numeric_settings_at_their_bounds_are_accepted(tmp_path):
    from alembic_deploy.settings import COUNTS, MAX_SECONDS, SECONDS

    pyproject = _pyproject(tmp_path, "")
    for key in SECONDS:
        for value in (0.0, MAX_SECONDS):
            assert getattr(Settings.resolve({key: value}, environ={}, pyproject=pyproject), key) == value
    for key, (low, high) in COUNTS.items():
        for value in (low, high):
            assert getattr(Settings.resolve({key: value}, environ={}, pyproject=pyproject), key) == value


@pytest.mark.parametrize(
    ("key", "raw"),
    [
        ("env", "e" * 65),
        ("journal_table", "j" * 64),
        ("journal_table", 'alembic_deploy_history" WHERE false; DROP TABLE victim; --'),
        ("journal_table", "deploy-log"),
        ("journal_table", "1deploys"),
        ("journal_table", "audit.deploys"),
        ("journal_table", "d\u00e9ploiements"),
    ],
)
def test_chosen_names_that_the_journal_cannot_hold_are_refused_from_every_source(tmp_path, key, raw):
    for flags, environ, pyproject, source in _sources(key, raw, tmp_path):
        with pytest.raises(ConfigError) as err:
            Settings.resolve(flags, environ=environ, pyproject=pyproject)
        assert source in err.value.message, (source, err.value.message)


def test_names_at_their_limits_are_accepted(tmp_path):
    pyproject = _pyproject(tmp_path, "")
    assert Settings.resolve({"env": "e" * 64}, environ={}, pyproject=pyproject).env == "e" * 64
    for name in ("j" * 63, "_deploys", "Deploy_Log_2", "select"):
        assert Settings.resolve({"journal_table": name}, environ={}, pyproject=pyproject).journal_table == name


def test_every_text_setting_is_checked_or_clipped_on_purpose():
    """Text settings either are checked when resolved, are checked by their own step, or are
    provenance a CI system supplies, which the journal clips instead of refusing."""
    from dataclasses import fields

    from alembic_deploy.settings import CHOICES, JOURNALED

    checked_here = {"journal_table", "fail_on", "lint", "output_format", "log_format", "metrics_namespace",
                    *JOURNALED, *CHOICES}
    # read, parsed, one of MODES, a lint dialect (lint.dialect_of), a revision check --from looks up
    checked_elsewhere = {"config", "name", "database_url", "run_mode", "dialect", "from_revision",
                         # ecs-run looks each up in ECS, or checks it (--launch-type) before a task starts
                         "ecs_cluster", "ecs_service", "ecs_task_definition", "ecs_container", "ecs_launch_type",
                         # ... and what Secrets Manager or ECS look up
                         "database_secret", "wait_ecs_service", "wait_ecs_task_definition",
                         # the backup's destination (backups.destination.parse_destination), command (split
                         # when run) and RDS identifier (AWS checks it)
                         "backup_destination", "backup_command", "backup_rds_identifier"}
    clipped = {"git_sha", "actor", "run_url"}  # provenance.clip
    text = {f.name for f in fields(Settings) if str(f.type).split(" ")[0] == "str"}
    assert text == checked_here | checked_elsewhere | clipped


def test_settings_built_directly_are_checked_by_validate():
    for bad in ({"wait_timeout": float("nan")}, {"statement_timeout": float("inf")}, {"env": "e" * 65},
                {"journal_table": "a b"}, {"retries": -1}):
        with pytest.raises(ConfigError):
            Settings(**bad).validate()


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (("--wait-timeout", "nan"), "--wait-timeout"),
        (("--ddl-lock-timeout", "nan"), "--ddl-lock-timeout"),
        (("--statement-timeout", "inf"), "--statement-timeout"),
        (("--retry-deadline", "-5"), "--retry-deadline"),
        (("--lock-timeout-wait", "1e300"), "--lock-timeout-wait"),
        (("--health-interval", "nan", "--wait-healthy", "http://127.0.0.1:9/"), "--health-interval"),
        (("--retries", "-1"), "--retries"),
        (("--env", "e" * 65), "--env"),
        (("--journal-table", "j" * 64), "--journal-table"),
    ],
)
def test_cli_refuses_bad_values_before_touching_the_database(project, args, named):
    result = _invoke("upgrade", "-c", str(project / "alembic.ini"), *args)
    assert result.exit_code == 2, result.output
    assert named in result.output and "Traceback" not in result.output
    assert not (project / "app.db").exists()
