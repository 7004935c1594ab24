"""One typed settings object, resolved once: CLI flags > ``ALEMBIC_DEPLOY_*`` environment variables >
``[tool.alembic-deploy]`` in pyproject.toml > defaults.

A field named ``lock_timeout_wait`` is set by ``--lock-timeout-wait``, ``ALEMBIC_DEPLOY_LOCK_TIMEOUT_WAIT``
or ``lock-timeout-wait = 600`` in pyproject.toml. The database URL is also read from ``DATABASE_URL``
(the variable every container platform already sets); it is never shown unmasked.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import sys
from dataclasses import Field, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .errors import ConfigError
from .masking import mask_url, register_url
from .policy import BACKUP_MODES, BACKUP_ON_FAILURE, SEVERITIES, Policy, parse_policies
from .provenance import COLUMN_SIZES

if TYPE_CHECKING:
    from collections.abc import Mapping

ENV_PREFIX: Final = "ALEMBIC_DEPLOY_"

#: The commands, by the sets of settings they take: a setting's option is on every command of its set.
UPGRADE: Final = "upgrade"
RUN: Final = "run"
REPAIR: Final = "repair"
STATUS: Final = "status"
HISTORY: Final = "history"
DEMO: Final = "demo"
CHECK: Final = "check"
PLAN: Final = "plan"
DRIFT: Final = "drift"
#: ``ecs-run`` runs a command as an ECS task: it takes only the settings of that task; the options of
#: the ``upgrade`` it runs there are passed through (see :mod:`alembic_deploy.integrations.aws.ecs_run`).
ECS_RUN: Final = "ecs-run"
REPORT: Final = "report"
#: ``wait-ecs``: the ECS health gate alone (alembic_deploy.integrations.aws.ecs_health), then the URL one.
WAIT_ECS: Final = "wait-ecs"
BACKUPS: Final = "backups"
RESTORE: Final = "restore"
ROLLBACK: Final = "rollback"
#: Every command: alembic's global options, also accepted before the command.
EVERY_COMMAND: Final = frozenset({UPGRADE, RUN, REPAIR, STATUS, HISTORY, DEMO, CHECK, PLAN, DRIFT, REPORT,
                                    BACKUPS, RESTORE, ROLLBACK})
#: Commands that lint revisions, from their files alone.
LINTING: Final = frozenset({CHECK, PLAN})
#: Commands that read a database (``demo`` makes its own, ``check`` reads only the files; ``plan``
#: reads one unless given ``--from``; ``report`` reads several, each given its own way).
ON_A_DATABASE: Final = EVERY_COMMAND - {DEMO, CHECK, REPORT}
#: Commands that take the migration lock.
LOCKING: Final = frozenset({UPGRADE, RUN, REPAIR, RESTORE, ROLLBACK})
#: Commands that run the upgrade pipeline (``run --migrate`` runs ``upgrade``'s).
UPGRADING: Final = frozenset({UPGRADE, RUN})
#: Commands that run revisions through the pipeline, up or down: its timeouts and retries apply.
MIGRATING: Final = UPGRADING | {ROLLBACK}
#: Commands that take the health gates (``upgrade``'s, before migrating; ``wait-ecs`` alone; ``ecs-run``'s
#: on the runner, before its task starts).
HEALTH_GATED: Final = UPGRADING | {WAIT_ECS, ECS_RUN}
#: The environments a revision is promoted through, lowest first (``promotion-order``).
PROMOTION_ORDER: Final = ("dev", "qa", "beta", "production")
#: Where a field's :class:`Option` is kept in its ``dataclasses.Field.metadata``.
OPTION: Final = "alembic_deploy.option"


@dataclass(frozen=True)
class Option:
    """How a setting is given on the command line: the one definition the CLI builds its options
    from, so a setting added here is an option of every command in ``commands``.

    ``flags`` are click's parameter declarations (default ``--field-name``); the value type, and
    whether the option is a flag or repeatable, follow the field's type (:func:`kind`).
    """

    commands: frozenset[str]
    help: str
    flags: tuple[str, ...] = ()
    metavar: str | None = None

    @property
    def alembic_global(self) -> bool:
        """One of alembic's global options: accepted before the command as well as after it."""
        return self.commands == EVERY_COMMAND


def flag_of(f: Field[Any]) -> str:
    """The long flag a setting is given with on the command line (``--timeout`` for ``ecs_timeout``),
    as messages name it."""
    option = f.metadata.get(OPTION)
    for flag in option.flags if option is not None else ():
        if flag.startswith("--"):
            return str(flag.split("/")[0])
    return f"--{f.name.replace('_', '-')}"


def _option(default: Any, commands: frozenset[str], text: str, *flags: str, metavar: str | None = None,
            shown: bool = True) -> Any:
    return field(default=default, repr=shown, metadata={OPTION: Option(commands, text, flags, metavar)})


@dataclass(frozen=True)
class Settings:
    """Every setting of every command, typed. A field with an :class:`Option` in its metadata is
    also a command-line option; the rest come from the environment or pyproject.toml only."""

    config: str = _option("alembic.ini", EVERY_COMMAND, "Alembic ini file (default: alembic.ini).",
                          "-c", "--config")
    name: str = _option("alembic", EVERY_COMMAND, "Section of the ini file (default: alembic).", "-n", "--name")
    x: tuple[str, ...] = _option((), EVERY_COMMAND, "key=value passed to env.py, as with alembic -x.", "-x")
    database_url: str | None = _option(
        None, ON_A_DATABASE, "Database URL (default: DATABASE_URL, then sqlalchemy.url).", shown=False)
    # The login from AWS (alembic-deploy[aws]): read again at every connect (alembic_deploy.credentials).
    database_secret: str | None = _option(
        None, ON_A_DATABASE, "AWS Secrets Manager secret (name or ARN) holding the database login: RDS's JSON "
        "(engine, host, port, username, password, dbname) or a URL; what it lacks comes from DATABASE_URL. Read "
        "again at every connect, so a rotation mid-deploy is followed (needs alembic-deploy[aws]).",
        metavar="NAME_OR_ARN")
    rds_iam: bool = _option(
        False, ON_A_DATABASE, "Log in with an RDS IAM token signed for every connect instead of a password; the URL "
        "must require TLS (sslmode=require / ssl_ca=...) (needs alembic-deploy[aws]).")
    env: str | None = _option(None, ON_A_DATABASE | {CHECK},
                              "Environment name recorded in the journal (dev, qa, beta, production); check and plan "
                              "apply its policy.")
    wait_timeout: float = _option(60.0, ON_A_DATABASE, "Seconds to wait for the database (default 60).")
    lock_timeout_wait: float = _option(600.0, LOCKING, "Seconds to wait for the migration lock (default 600).")
    journal_table: str = _option("alembic_deploy_history", ON_A_DATABASE | {REPORT},
                                 "Journal table name (default alembic_deploy_history).")
    fast_path: bool = _option(True, UPGRADING, "Prove a no-op without loading Alembic (default on).",
                              "--fast-path/--no-fast-path")
    # The fast path reads PostgreSQL through psycopg[binary]'s libpq (fastpath/libpq.py), not psycopg.
    fast_path_libpq: bool = True
    json: bool = _option(False, ON_A_DATABASE | LINTING | {REPORT, WAIT_ECS, ECS_RUN},
                         "Print a JSON document on stdout.")
    log_format: str = _option(
        "text", ON_A_DATABASE | LINTING | {REPORT}, "Progress, warning and error lines on stderr: text (default) or "
        "json, one JSON object per line (fields in the README).", metavar="FORMAT")
    metrics: tuple[str, ...] = _option(
        (), LOCKING, "Send the run's metrics when it ends: emf (CloudWatch Embedded Metric Format on stdout; on "
        "stderr with --json), pushgateway=URL or textfile=PATH.prom (repeat for several). A metrics failure is a "
        "warning, never a failed deploy.", metavar="SINK")
    metrics_namespace: str = _option("AlembicDeploy", LOCKING,
                                     "CloudWatch namespace of --metrics emf (default AlembicDeploy).")
    debug: bool = _option(False, EVERY_COMMAND, "Show tracebacks (alembic's --raiseerr does the same).",
                          "--debug", "--raiseerr")
    git_sha: str | None = None
    actor: str | None = None
    run_url: str | None = None
    # The migrating connection's DDL lock timeout and statement timeout, retries on lock timeouts.
    ddl_lock_timeout: float = _option(
        2.0, MIGRATING, "Seconds a migration statement may wait for a lock before giving up "
        "(so the app's queries never queue behind it longer); 0 disables (default 2).")
    statement_timeout: float | None = _option(None, MIGRATING,
                                              "Seconds a migration statement may run (default: no limit).")
    retries: int = _option(5, MIGRATING,
                           "Retries of a revision that hit the lock timeout and was rolled back (default 5).")
    retry_deadline: float = _option(300.0, MIGRATING, "Seconds after which no further retry starts (default 300).")
    check_drift: bool = _option(
        False, UPGRADING | {PLAN}, "Compare the schema with what its migrations make, as `alembic-deploy drift` "
        "does: upgrade refuses (exit 5) under the migration lock before migrating when they differ; plan "
        "includes the comparison and exits 5.")
    # The health gate before migrating (upgrade --wait-healthy, run --migrate --wait-healthy): the ECS
    # service first (integrations/aws/ecs_health.py), then the URLs.
    wait_ecs_service: str | None = _option(
        None, HEALTH_GATED, "Wait (before migrating, on upgrade and run) until this ECS service runs its new task "
        "definition healthy: PRIMARY deployment COMPLETED (not rolled back), running = desired, load balancer "
        "targets healthy (exit 4 if not; needs alembic-deploy[aws]).", metavar="CLUSTER/SERVICE")
    wait_ecs_task_definition: str | None = _option(
        None, HEALTH_GATED, "The task definition --wait-ecs-service expects (family, family:revision or ARN; "
        "default: the service's when the gate starts).", "--ecs-task-definition", metavar="TASK_DEFINITION")
    wait_healthy: tuple[str, ...] = _option(
        (), HEALTH_GATED, "Wait (before migrating, on upgrade and run) until URL answers 2xx (repeat for several; "
        "all must pass).",
        metavar="URL")
    healthy_count: int = _option(3, HEALTH_GATED, "Healthy answers in a row each URL needs (default 3).")
    health_timeout: float = _option(300.0, HEALTH_GATED, "Seconds to wait for health before exit 4 (default 300).")
    health_expect: tuple[str, ...] = _option(
        (), HEALTH_GATED, "A JSON field the health answer must carry, e.g. status=ok (dotted keys nest).",
        metavar="KEY=VALUE")
    health_interval: float = _option(1.0, HEALTH_GATED, "Seconds between two health requests (default 1).")
    run_mode: str | None = None  # migrate | wait-for-schema | no-migrate
    #: The environment policies of [tool.alembic-deploy.env.NAME] (alembic_deploy.policy).
    policies: tuple[Policy, ...] = ()
    # The lint (check, plan): which SQL dialect the revisions render for, what blocks, from where.
    dialect: str | None = _option(
        None, LINTING, "SQL dialect the revisions are rendered and linted for: postgresql, mysql or "
        "mariadb (default: the scheme of DATABASE_URL, then of sqlalchemy.url in the ini).")
    lint: str | None = _option(
        None, UPGRADING, "Lint the revisions about to run, under the lock before the first: off, warn (print "
        "the findings, apply anyway) or enforce (refuse, exit 5). Default: enforce when --env has a policy, "
        "else off.", metavar="off|warn|enforce")
    fail_on: str | None = _option(None, LINTING | UPGRADING,
                           "Lowest finding severity that fails: error, warning or notice (default: the environment "
                                  "policy's, else error).")
    from_revision: str | None = _option(
        None, LINTING, "The revision the database is at: lint (and plan) only what it has still to apply; "
        "'base' for every revision (check's default; plan reads it from the database without it).", "--from",
        metavar="REV")
    output_format: str = _option(
        "text", frozenset({PLAN}),
        "plan's output: text, markdown (also appended to $GITHUB_STEP_SUMMARY), json or sarif.", "--format")
    promotion_order: tuple[str, ...] = _option(
        PROMOTION_ORDER, frozenset({PLAN, REPORT}),
        "Environments from lowest to highest (repeat, or comma-separated in ALEMBIC_DEPLOY_PROMOTION_ORDER); "
        "plan --env lists pending revisions a lower one never applied (default dev, qa, beta, production).",
        metavar="ENV")
    # The backup before migrating (steps/backup.py) and where backups go (restore reads them back).
    backup: str | None = _option(
        None, MIGRATING, "Back up the database before migrating: never, always, destructive (a pending revision "
        "drops a table, column, schema or database, or truncates; a rollback's downgrade drops data) or major "
        "(more than --backup-major-revisions pending or undone, or one marked alembic_deploy = {'backup': True}); "
        "default: the --env policy's, else never.")
    backup_major_revisions: int | None = _option(
        None, MIGRATING, "--backup major: back up when more than this many revisions are pending or undone "
        "(default: the --env policy's, else 5).", metavar="N")
    backup_on_failure: str | None = _option(
        None, MIGRATING, "When the backup fails: stop (exit 11, nothing migrated) or continue with a warning "
        "(default: the --env policy's, else stop).")
    backup_method: str = _option(
        "auto", MIGRATING, "auto (pg_dump -Fc, mariadb-dump/mysqldump, SQLite's online backup API), rds-snapshot, "
        "aurora-snapshot (boto3, the aws extra) or command (--backup-command) (default auto).")
    backup_destination: str = _option(
        "backups", MIGRATING, "Folder, or s3://bucket/prefix (the aws extra), the backups go to "
        "(default: ./backups).", metavar="DEST")
    backup_retention: int = _option(
        0, MIGRATING, "Keep this many backups of this environment and database at the destination, deleting "
        "older ones after a backup; 0 keeps all (default 0).", metavar="N")
    backup_tables: str = _option(
        "all", MIGRATING, "all, or auto: only the tables the pending revisions touch, read from the lint's parse "
        "(a full backup when one cannot be read) (default all).")
    backup_command: str | None = _option(
        None, MIGRATING, "--backup-method command: the program to run (split as a shell would, not run by "
        "one); it gets the URL's parts as DB_DIALECT, DB_HOST, DB_PORT, DB_USER, DB_PASSWORD, DB_NAME and "
        "BACKUP_NAME, BACKUP_DESTINATION, BACKUP_TABLES in its environment.", metavar="CMD")
    backup_rds_identifier: str | None = _option(
        None, MIGRATING, "rds-snapshot / aurora-snapshot: the DB instance or cluster identifier (default: the "
        "first label of the URL's host, as RDS names its endpoints).", metavar="ID")
    backup_timeout: float = _option(
        3600.0, MIGRATING, "Seconds a backup may take (a snapshot becoming available included) (default 3600).")
    schema_timeout: float = _option(300.0, frozenset({RUN}), "Seconds --wait-for-schema waits (default 300).")
    accept_ahead: bool = _option(
        False, frozenset({RUN}),
        "--wait-for-schema: start even when the database is at a revision this code lacks.")
    # ecs-run: where the one-off ECS task runs (alembic_deploy.integrations.aws.ecs_run).
    ecs_cluster: str | None = _option(None, frozenset({ECS_RUN}), "ECS cluster to run the task in.", "--cluster")
    ecs_service: str | None = _option(
        None, frozenset({ECS_RUN}), "ECS service whose current task definition, network configuration and "
        "launch type or capacity provider strategy the task takes (NAME, or CLUSTER/NAME).", "--service")
    ecs_task_definition: str | None = _option(
        None, frozenset({ECS_RUN}), "Task definition (family, family:revision or ARN); overrides the service's.",
        "--task-definition")
    ecs_container: str | None = _option(
        None, frozenset({ECS_RUN}), "Container that runs the command and whose exit code ecs-run exits with "
        "(default: the task definition's only container).", "--container")
    ecs_subnets: tuple[str, ...] = _option((), frozenset({ECS_RUN}),
                                           "Subnet for an awsvpc task (repeat; default: the service's).",
                                           "--subnet", metavar="SUBNET_ID")
    ecs_security_groups: tuple[str, ...] = _option(
        (), frozenset({ECS_RUN}), "Security group for an awsvpc task (repeat; default: the service's).",
        "--security-group", metavar="SG_ID")
    ecs_assign_public_ip: bool | None = _option(
        None, frozenset({ECS_RUN}), "Give the awsvpc task a public IP (default: as the service does, else no).",
        "--assign-public-ip/--no-assign-public-ip")
    ecs_launch_type: str | None = _option(
        None, frozenset({ECS_RUN}), "FARGATE, EC2 or EXTERNAL (default: the service's launch type or capacity "
        "provider strategy, else FARGATE).", "--launch-type")
    ecs_timeout: float = _option(
        3600.0, frozenset({ECS_RUN}), "Seconds the task may run before it is stopped and ecs-run exits 12 "
        "(default 3600).", "--timeout")
    ecs_poll_interval: float = _option(
        5.0, frozenset({ECS_RUN}), "Seconds between two looks at the task and its log stream (default 5).",
        "--poll-interval")

    @property
    def config_path(self) -> Path:
        return Path(self.config).expanduser().absolute()

    @property
    def masked_url(self) -> str | None:
        return mask_url(self.database_url) if self.database_url else None

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    @classmethod
    def resolve(
        cls,
        flags: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        pyproject: Path | None = None,
    ) -> Settings:
        """Merge the sources; ``flags`` holds only options the user gave (None means not given).

        Each value is checked as it is taken (:func:`check`), so a bad one fails here with exit 2
        naming where it came from, before anything connects: never later as a driver's error.
        """
        flags = {k: v for k, v in (flags or {}).items() if v is not None and v != ()}
        environ = os.environ if environ is None else environ
        config = flags.get("config") or environ.get(ENV_PREFIX + "CONFIG") or cls.config
        pyproject = pyproject or _find_pyproject(Path(config))
        file_values = _read_pyproject(pyproject)
        values: dict[str, Any] = {}
        policies = file_values.pop("env", None) if isinstance(file_values.get("env"), dict) else None
        if policies is not None:
            values["policies"] = parse_policies(policies, str(pyproject))
        for f in fields(cls):
            key = f.name
            if key == "policies":
                continue
            if key in flags:
                source = flag_of(f)
                value = flags[key]
            elif ENV_PREFIX + key.upper() in environ:
                source = ENV_PREFIX + key.upper()
                value = environ[source]
            elif key.replace("_", "-") in file_values:
                source = f"{key.replace('_', '-')} in [tool.alembic-deploy] of {pyproject}"
                value = file_values[key.replace("_", "-")]
            else:
                continue
            values[key] = check(key, _coerce(f, value, source), source)
        values.setdefault("database_url", environ.get("DATABASE_URL") or None)
        # Provenance a CI system supplies is clipped to the journal's columns when written
        # (provenance.clip), never refused: a deploy must not fail over the shape of a commit id.
        values.setdefault("git_sha", environ.get("GITHUB_SHA"))
        values.setdefault("actor", environ.get("GITHUB_ACTOR"))
        if "run_url" not in values and environ.get("GITHUB_RUN_ID"):
            server = environ.get("GITHUB_SERVER_URL", "https://github.com")
            values["run_url"] = (
                f"{server}/{environ.get('GITHUB_REPOSITORY', '')}/actions/runs/{environ['GITHUB_RUN_ID']}"
            )
        register_url(values.get("database_url"))
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check every field (as :func:`check` does, naming each by its flag) and how they combine;
        for Settings built directly rather than through :meth:`resolve`."""
        for f in fields(self):
            check(f.name, getattr(self, f.name), flag_of(f))
        for item in self.x:
            if "=" not in item:
                raise ConfigError(
                    f"-x takes key=value pairs, as in alembic; got {item!r}. "
                    "Write it as -x key=value."
                )
        from .entrypoint import validate as validate_run
        from .steps.health import validate as validate_health

        validate_health(self)
        validate_run(self)


#: The longest wait or timeout a setting may ask for: PostgreSQL takes lock and statement timeouts
#: in milliseconds as a 32-bit integer, so 2147483 s (about 24.8 days) is the most every backend
#: accepts; no deploy step is meant to wait longer.
MAX_SECONDS: Final = 2_147_483.0
SECONDS: Final = frozenset({
    "wait_timeout", "lock_timeout_wait", "ddl_lock_timeout", "statement_timeout", "retry_deadline",
    "health_timeout", "health_interval", "schema_timeout", "ecs_timeout", "ecs_poll_interval", "backup_timeout",
})
#: Inclusive ranges of the whole-number settings.
COUNTS: Final = {"retries": (0, 10_000), "healthy_count": (1, 10_000), "backup_major_revisions": (0, 10_000),
                 "backup_retention": (0, 10_000)}
#: Settings that take one of a few words.
CHOICES: Final = {
    "backup": BACKUP_MODES, "backup_on_failure": BACKUP_ON_FAILURE, "backup_tables": ("all", "auto"),
    "backup_method": ("auto", "rds-snapshot", "aurora-snapshot", "command"),
}
#: The journal table's name: a plain identifier, so it means the same table unquoted or quoted on
#: every backend and needs no escaping, within the strictest backend's limit (PostgreSQL's 63
#: bytes; MySQL/MariaDB allow 64, SQLite any length). The URL, and so the backend, may only be
#: known once alembic.ini or env.py is read, after the settings: the strictest limit holds for all.
IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
MAX_IDENTIFIER: Final = 63
#: What ``--log-format`` takes (alembic_deploy.observer renders the JSON log).
LOG_FORMATS: Final = ("text", "json")
#: What ``plan --format`` takes.
PLAN_FORMATS: Final = ("text", "markdown", "json", "sarif")
#: What ``--lint`` takes.
LINT_MODES: Final = ("off", "warn", "enforce")
#: Settings a person chooses that the journal stores in a column of its own.
JOURNALED: Final = {"env": "environment"}


def check(name: str, value: Any, source: str) -> Any:
    """``value`` of setting ``name`` if usable, else a :class:`ConfigError` naming ``source``
    (the flag, environment variable or pyproject key it came from) and what it accepts."""
    if value is None:
        return value
    if name in SECONDS:
        if not (math.isfinite(value) and 0 <= value <= MAX_SECONDS):
            raise ConfigError(
                f"{source} must be a number of seconds from 0 to {MAX_SECONDS:.0f}, got {value!r}. "
                "Give a finite value such as 30 (0 where the option documents it as 'no limit')."
            )
    elif name in COUNTS:
        low, high = COUNTS[name]
        if not low <= value <= high:
            raise ConfigError(f"{source} must be a whole number from {low} to {high}, got {value!r}.")
    elif name == "journal_table":
        if not IDENTIFIER.match(value) or len(value) > MAX_IDENTIFIER:
            raise ConfigError(
                f"{source} must be a plain table name: a letter or underscore, then letters, digits or "
                f"underscores, at most {MAX_IDENTIFIER} characters (the longest PostgreSQL allows); "
                f"got {value!r}. Name the journal table e.g. deploy_history."
            )
    elif name in CHOICES and value not in CHOICES[name]:
        raise ConfigError(f"{source} must be one of {', '.join(CHOICES[name])}, got {value!r}.")
    elif name == "fail_on" and value not in SEVERITIES:
        raise ConfigError(f"{source} must be one of {', '.join(SEVERITIES)}, got {value!r}.")
    elif name == "promotion_order" and (len(set(value)) != len(value) or not value):
        raise ConfigError(f"{source} must name each environment once, lowest first; got {', '.join(value) or 'none'}.")
    elif name == "lint" and value not in LINT_MODES:
        raise ConfigError(f"{source} must be one of {', '.join(LINT_MODES)}, got {value!r}.")
    elif name == "log_format" and value not in LOG_FORMATS:
        raise ConfigError(f"{source} must be one of {', '.join(LOG_FORMATS)}, got {value!r}.")
    elif name == "metrics":
        from .metrics import parse_sinks

        parse_sinks(value, source)
    elif name == "metrics_namespace" and not (0 < len(value) <= 255 and value.isascii() and value.isprintable()):
        raise ConfigError(
            f"{source} must be 1 to 255 printable ASCII characters (a CloudWatch namespace), got {value!r}."
        )
    elif name == "output_format" and value not in PLAN_FORMATS:
        raise ConfigError(f"{source} must be one of {', '.join(PLAN_FORMATS)}, got {value!r}.")
    elif name in JOURNALED and len(value) > COLUMN_SIZES[JOURNALED[name]]:
        raise ConfigError(
            f"{source} is {len(value)} characters long; the journal's {JOURNALED[name]} column holds "
            f"{COLUMN_SIZES[JOURNALED[name]]}. Give a shorter name."
        )
    elif name in JOURNALED and not value.isprintable():
        # A newline or an escape sequence would forge lines in history, report and every log.
        raise ConfigError(f"{source} must be printable characters (no newline, tab or control character), got "
                          f"{value!r}. Give a plain name such as production.")
    return value


def _find_pyproject(config: Path) -> Path | None:
    for folder in (config.expanduser().absolute().parent, Path.cwd()):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _read_pyproject(path: Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"Could not read {path}: {exc}. Fix the file or remove it.") from None
    section = data.get("tool", {}).get("alembic-deploy", {})
    if not isinstance(section, dict):
        raise ConfigError(f"[tool.alembic-deploy] in {path} must be a table.")
    known = {f.name.replace("_", "-") for f in fields(Settings)} - {"policies"}
    unknown = sorted(set(section) - known)
    if unknown:
        raise ConfigError(
            f"Unknown key(s) {', '.join(unknown)} in [tool.alembic-deploy] of {path}. "
            f"Known keys: {', '.join(sorted(known))}."
        )
    return section


#: How a yes/no setting may be written in an environment variable.
TRUE_WORDS: Final = frozenset({"1", "true", "yes", "on"})
_FALSE = {"0", "false", "no", "off", ""}


def kind(f: dataclasses.Field[Any]) -> str:
    """A setting's value type: ``bool``, ``int``, ``float``, ``str`` or ``tuple`` (of str). Where
    the field's type allows None, None means "none" (``statement_timeout``) or "not given"."""
    return str(f.type).split("[")[0].split(" ")[0]


def options(command: str) -> list[dataclasses.Field[Any]]:
    """The settings ``command`` takes as command-line options, in the order Settings declares them."""
    return [f for f in fields(Settings) if OPTION in f.metadata and command in f.metadata[OPTION].commands]


def _coerce(f: dataclasses.Field[Any], value: Any, source: str) -> Any:
    type_ = kind(f)
    try:
        if type_ == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in TRUE_WORDS:
                return True
            if text in _FALSE:
                return False
            raise ValueError(value)
        if type_ == "tuple":
            if isinstance(value, str):
                return tuple(v for v in value.split(",") if v)
            return tuple(str(v) for v in value)
        if value in ("", None) and "None" in str(f.type):
            return None
        if type_ == "float":
            return float(value)
        if type_ == "int":
            return int(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"{source} has an invalid value {value!r}: expected {str(f.type).split(' ')[0]}."
        ) from None
