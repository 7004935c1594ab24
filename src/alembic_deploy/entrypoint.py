"""The container entrypoint: ``alembic-deploy run [MODE] -- CMD ARGS...``.

It replaces a hand-written startup script (wait for the database, apply the migrations, start the
application)::

    resolve credentials -> wait for the database -> MODE -> exec CMD

Modes:

* ``--migrate``: run the upgrade pipeline (:func:`alembic_deploy.api.upgrade`, under the migration
  lock, so every replica may do it at once), then start. It takes every option ``upgrade`` does;
  a health gate only when given on its command line (see :func:`prepare`).
* ``--wait-for-schema``: never migrate; wait until the schema guard accepts the database for this
  code (:mod:`alembic_deploy.guard`), then start. For replicas where a separate task migrates.
* ``--no-migrate``: wait for the database, then start.

The mode may also come from ``ALEMBIC_DEPLOY_RUN_MODE`` (or ``run-mode`` in pyproject.toml), so one
image serves every environment. A failure exits with the pipeline's code and the app never starts.

CMD is started with ``exec``: the process is *replaced*, so the app keeps this PID (PID 1 in a
container) and receives the platform's SIGTERM itself instead of through a shell or a wrapper that
might not forward it. It gets the environment ``alembic-deploy`` was started with, unchanged.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Final, NoReturn

from .errors import CheckRefused, ConfigError, DatabaseUnreachable
from .observer import event, text_only

if TYPE_CHECKING:
    from .deployment import Deployment
    from .guard import SchemaCheck
    from .settings import Settings

Echo = Callable[[str], None]

MIGRATE: Final = "migrate"
WAIT_FOR_SCHEMA: Final = "wait-for-schema"
NO_MIGRATE: Final = "no-migrate"
MODES: Final = (MIGRATE, WAIT_FOR_SCHEMA, NO_MIGRATE)
#: Pause between two schema checks while waiting for another task to migrate.
SCHEMA_POLL_SECONDS: Final = 1.0


def validate(settings: Settings) -> None:
    if settings.run_mode is not None and settings.run_mode not in MODES:
        raise ConfigError(
            f"Unknown run mode {settings.run_mode!r} (from ALEMBIC_DEPLOY_RUN_MODE or run-mode in "
            f"pyproject.toml); it must be one of {', '.join(MODES)}."
        )
    if settings.schema_timeout < 0:
        raise ConfigError(f"--schema-timeout must be zero or more seconds, got {settings.schema_timeout}.")


def pick_mode(settings: Settings, migrate: bool, wait_for_schema: bool, no_migrate: bool) -> str:
    """The mode from the flags, else from settings; exactly one is required."""
    chosen = [mode for mode, given in zip(MODES, (migrate, wait_for_schema, no_migrate), strict=False) if given]
    if len(chosen) > 1:
        raise ConfigError(f"Choose one mode, not {' and '.join('--' + m for m in chosen)}.")
    mode = chosen[0] if chosen else settings.run_mode
    if mode is None:
        raise ConfigError(
            "`alembic-deploy run` needs a mode: --migrate (migrate, then start), --wait-for-schema "
            "(start once another task has migrated) or --no-migrate (start once the database "
            "answers); or set ALEMBIC_DEPLOY_RUN_MODE."
        )
    return mode


def run(settings: Settings, mode: str, command: Sequence[str], echo: Echo | None = None,
        health_gate: bool = False) -> NoReturn:
    """Prepare the database for ``mode``, then replace this process with ``command``.

    ``health_gate``: wait for ``settings.wait_healthy`` before migrating (``--wait-healthy`` given
    to ``run --migrate`` itself); otherwise those URLs are ignored (see :func:`prepare`).

    Raises an :class:`~alembic_deploy.errors.AlembicDeployError` (and never starts the app) when
    the preparation fails; returns never.
    """
    from .deployment import shielded

    if health_gate and mode != MIGRATE:
        raise ConfigError(
            f"--wait-healthy and --wait-ecs-service wait before migrating, and `run --{mode}` does not migrate. "
            "Give it with --migrate, or leave it out."
        )
    echo = shielded(echo)
    environ = dict(os.environ)  # the app's environment, before anything here touches os.environ
    executable = _resolve(command, environ)
    prepare(settings, mode, echo, health_gate)
    echo(event("app_starting", f"Starting {shlex.join(command)} (pid {os.getpid()}).", command=list(command),
               pid=os.getpid()))
    _exec(executable, command, environ)


def prepare(settings: Settings, mode: str, echo: Echo, health_gate: bool = False) -> SchemaCheck | None:
    """Everything before the exec; returns the guard's result in ``wait-for-schema`` mode."""
    if mode == MIGRATE:
        from . import api

        # A health gate from the environment (ALEMBIC_DEPLOY_WAIT_HEALTHY set for the post-deploy
        # step) would wait here for an app that only starts after this migration: only one given
        # to this command (health_gate) applies.
        report = api.upgrade(settings if health_gate else settings.replace(wait_healthy=(), wait_ecs_service=None,
                                                                           wait_ecs_task_definition=None),
                             "head", echo=echo)
        if report.outcome == "noop":  # the JSON log has it in the outcome event
            echo(text_only(report.render_text()))
        return None
    from .deployment import Deployment
    from .report import DeployReport

    deployment = Deployment.open(settings, echo)
    try:
        deployment.wait(DeployReport(command="run", environment=settings.env))
        if mode == NO_MIGRATE:
            echo(event("database_answers", f"The database at {deployment.masked_url} answers.",
                       database=deployment.database_label))
            return None
        return wait_for_schema(settings, deployment, echo)
    finally:
        deployment.close()


def wait_for_schema(settings: Settings, deployment: Deployment, echo: Echo) -> SchemaCheck:
    """Poll the schema guard until it accepts the database, up to ``settings.schema_timeout``."""
    from . import guard
    from .alembic_env import RunObserver

    # env.py decides the version table (it may configure its own); run it once to learn which.
    project = deployment.alembic_project()
    inspected = project.run("inspect", "heads", RunObserver())
    accept = guard.DEFAULT_ACCEPT | ({guard.AHEAD_UNKNOWN} if settings.accept_ahead else set())
    deadline = time.monotonic() + settings.schema_timeout
    seen: tuple[str, tuple[str, ...]] | None = None
    result: SchemaCheck | None
    while True:
        try:
            checked = guard.check(
                deployment.engine,
                str(settings.config_path),
                accept=accept,
                version_table=inspected.version_table,
                version_table_schema=inspected.version_table_schema,
                section=settings.name,
            )
        except DatabaseUnreachable as exc:
            result, message = None, exc.message
        else:
            result, message = checked, checked.message
            if checked.accepted:
                echo(event("schema_accepted", f"Schema {checked.verdict}: {checked.message}",
                           verdict=checked.verdict))
                return checked
            if checked.verdict == guard.AHEAD_UNKNOWN:
                # Waiting cannot fix it: nothing migrates a database backwards on its own.
                raise CheckRefused(
                    f"{checked.message} Not starting. Pass --accept-ahead to start anyway.",
                    database_revisions=list(checked.database_revisions),
                    code_heads=list(checked.code_heads),
                )
        state = (result.verdict if result else "unreachable", result.database_revisions if result else ())
        if state != seen:
            echo(event("schema_waiting", f"Waiting for the schema (up to {settings.schema_timeout:g}s): {message}",
                       verdict=state[0], timeout_s=settings.schema_timeout))
            seen = state
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise CheckRefused(
                f"The database did not reach a revision this code accepts within "
                f"{settings.schema_timeout:g}s. {message} Not starting; raise --schema-timeout if "
                "the migration task needs longer.",
                verdict=state[0],
                database_revisions=list(state[1]),
            )
        time.sleep(min(SCHEMA_POLL_SECONDS, remaining))


def _resolve(command: Sequence[str], environ: dict[str, str]) -> str:
    """Find CMD before anything happens: a typo must not cost a migration first."""
    if not command:
        raise ConfigError(
            "No command to start. Put it after `--`: alembic-deploy run --migrate -- "
            "uvicorn app.main:app --port 8000"
        )
    found = shutil.which(command[0], path=environ.get("PATH", os.defpath))
    if found is None:
        raise ConfigError(
            f"Command {command[0]!r} not found on PATH (or not executable). Install it in the image "
            "or give its full path."
        )
    return found


def _exec(executable: str, command: Sequence[str], environ: dict[str, str]) -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        # Closed, or its reader gone: the app starts all the same.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    # Python ignores SIGPIPE and SIGXFSZ at startup, and an ignored signal stays ignored across
    # exec; the app must start with the defaults any other process gets.
    for name in ("SIGPIPE", "SIGXFSZ"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_DFL)
    try:
        os.execve(executable, list(command), environ)
    except OSError as exc:
        raise ConfigError(f"Could not start {executable}: {exc.strerror or exc}.") from None
