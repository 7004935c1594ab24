"""Every failure alembic-deploy reports, with the exit code the CLI maps it to.

::

    AlembicDeployError ............ 1  internal / unexpected
    ├── ConfigError ............... 2  bad flag, missing alembic.ini, bad URL, missing driver
    ├── DatabaseUnreachable ....... 3  database not reachable within --wait-timeout
    ├── HealthCheckFailed ......... 4  the app never became healthy (--wait-healthy, --wait-ecs-service)
    ├── CheckRefused .............. 5  a preflight check refused the deploy
    ├── LockNotAcquired ........... 6  migration lock not acquired within --lock-timeout-wait
    ├── MigrationFailed ........... 7  a revision failed (or the result did not verify)
    ├── PartialMigration .......... 8  a non-transactional revision is half applied
    ├── Interrupted ............... 9  SIGINT / SIGTERM
    ├── ScratchUnavailable ....... 10  drift: no scratch database could be created
    ├── BackupFailed ............. 11  the backup before migrating (or a restore) failed
    ├── EcsTaskFailed ............ 12  ecs-run: the task stopped without its container's exit code,
    │                                   could not be placed, or outlived --timeout
    └── CredentialsUnavailable ... 13  AWS: the database secret or IAM token could not be obtained

    (success) ..................... 0  EXIT_OK: migrated, nothing to do, or nothing unfinished

Each error carries a one-paragraph message (what happened, what to do), optional titled
``fields`` (revision, blocker, ...) that renderers show beneath it, and ``report``: the
:class:`~alembic_deploy.report.DeployReport` of the run it ended (None when it ended before a
run began, e.g. a bad setting), which ``--json`` prints. Messages pass through
:func:`alembic_deploy.masking.scrub` before they are shown, so a driver error that echoes a
DSN never leaks a password.

These classes and :data:`EXIT_OK` are the only place an exit code is written down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Final

if TYPE_CHECKING:
    from .report import DeployReport

__all__ = [
    "EXIT_OK",
    "AlembicDeployError",
    "BackupFailed",
    "CheckRefused",
    "ConfigError",
    "CredentialsUnavailable",
    "DatabaseUnreachable",
    "EcsTaskFailed",
    "HealthCheckFailed",
    "Interrupted",
    "LockNotAcquired",
    "MigrationFailed",
    "PartialMigration",
    "ScratchUnavailable",
]

#: The exit code of a command that did what it was asked.
EXIT_OK: Final = 0


class AlembicDeployError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with, ``report`` the run it ended (or None)."""

    exit_code: ClassVar[int] = 1
    kind: ClassVar[str] = "internal-error"
    #: The run this error ended, set by the verb that ran it (``api.upgrade``, ``api.repair``);
    #: None when the error came before a run began.
    report: DeployReport | None

    def __init__(self, message: str, **fields: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
        self.report = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "exit_code": self.exit_code,
            "message": self.message,
            **({"fields": self.fields} if self.fields else {}),
        }


class ConfigError(AlembicDeployError):
    exit_code = 2
    kind = "config-error"


class DatabaseUnreachable(AlembicDeployError):
    exit_code = 3
    kind = "database-unreachable"


class HealthCheckFailed(AlembicDeployError):
    exit_code = 4
    kind = "health-check-failed"


class CheckRefused(AlembicDeployError):
    exit_code = 5
    kind = "check-refused"


class LockNotAcquired(AlembicDeployError):
    exit_code = 6
    kind = "lock-not-acquired"


class MigrationFailed(AlembicDeployError):
    exit_code = 7
    kind = "migration-failed"


class PartialMigration(AlembicDeployError):
    exit_code = 8
    kind = "partial-migration"


class Interrupted(AlembicDeployError):
    exit_code = 9
    kind = "interrupted"



class ScratchUnavailable(AlembicDeployError):
    """``drift`` could not create the scratch database it replays the migrations into (the role
    may not create databases, or the temporary file could not be written)."""

    exit_code = 10
    kind = "scratch-unavailable"


class BackupFailed(AlembicDeployError):
    """The backup the policy asked for before migrating could not be taken (a dump program missing
    or failing, an unwritable folder, S3 or RDS refusing): nothing was migrated. Also a restore
    that failed (``alembic-deploy restore``)."""

    exit_code = 11
    kind = "backup-failed"


class EcsTaskFailed(AlembicDeployError):
    """``ecs-run``: the one-off ECS task gave no exit code for the named container (it never started:
    capacity, image pull, secrets fetch; or ECS stopped it: another essential container exited,
    out of memory, Spot reclaimed), ECS could not place it, or it outlived ``--timeout`` and was
    stopped. A container that ran and exited non-zero is not this error: ``ecs-run`` exits with
    that container's own code."""

    exit_code = 12
    kind = "ecs-task-failed"


class CredentialsUnavailable(AlembicDeployError):
    """The database credentials could not be obtained from AWS: the secret of ``--database-secret``
    is not there, this role may not read it (or decrypt it), no AWS credentials or region are
    configured, or the endpoint did not answer; or an RDS IAM token could not be signed. A secret
    that was read but holds something unusable (a key missing, an unknown engine) is a
    :class:`ConfigError` (exit 2): the secret has to change, not the access to it."""

    exit_code = 13
    kind = "credentials-unavailable"
