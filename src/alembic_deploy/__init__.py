"""alembic-deploy: deploy-time Alembic migrations that are safe with many replicas.

The public API is what ``__all__`` lists:

* the verbs, one per CLI command: :func:`upgrade`, :func:`status`, :func:`history`, :func:`repair`,
  :func:`check`, :func:`plan`, :func:`drift`, :func:`ecs_run`, :func:`backups`, :func:`restore`,
  :func:`rollback` (given a :class:`RollbackRequest`) and :func:`deploys_report` (``report``:
  ``api.report``, whose name is the :mod:`.report` module's here); each takes a :class:`Settings` and
  returns its report (:class:`DeployReport`, :class:`StatusReport`, the journal's rows,
  :class:`CheckReport`, :class:`PlanReport`, :class:`DriftReport`, :class:`EcsRunResult`, the backups
  table's rows, :class:`RestoreReport`, :class:`RollbackReport`, :class:`HistoryReport`), never exits,
  and raises an
  :class:`AlembicDeployError` subclass on failure, carrying the run's report as ``.report``
  (the CLI maps each class to its exit code);
* :class:`Settings`: every setting, resolved from flags > ``ALEMBIC_DEPLOY_*`` > pyproject.toml;
* the report types and the exception tree (drawn in :mod:`alembic_deploy.errors`);
* the application side: :func:`check_schema` / :class:`SchemaCheck` (the schema guard, also as
  :mod:`alembic_deploy.guard`) and :func:`wait_healthy`.

Importing the package loads neither SQLAlchemy nor Alembic: the verbs, the guard and the health
gate load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

# Before the imports: provenance (imported by settings) reads it.
__version__ = "0.1.0"

from .errors import (
    AlembicDeployError,
    BackupFailed,
    CheckRefused,
    ConfigError,
    CredentialsUnavailable,
    DatabaseUnreachable,
    EcsTaskFailed,
    HealthCheckFailed,
    Interrupted,
    LockNotAcquired,
    MigrationFailed,
    PartialMigration,
    ScratchUnavailable,
)
from .report import DeployReport, FailedRevision, RetryResult, RevisionResult, RollbackReport, StatusReport, StepResult
from .settings import Settings

if TYPE_CHECKING:
    from .api import backups, drift, ecs_run, history, repair, restore, rollback, status, upgrade
    from .api import report as deploys_report
    from .backups.restore import RestoreReport
    from .check import CheckReport, check
    from .drift import DriftReport
    from .guard import SchemaCheck
    from .guard import check as check_schema
    from .history_report import HistoryReport
    from .integrations.aws.ecs_run import EcsRunResult
    from .plan import PlanReport, plan
    from .rollback_plan import RollbackPlan, RollbackRequest
    from .steps.health import wait_healthy

# What loads on first use, as (module, attribute): the CLI imports this package on every run, and
# the fast path must not pay for SQLAlchemy and Alembic.
_LAZY = {
    "CheckReport": ("check", "CheckReport"),
    "check": ("check", "check"),
    "PlanReport": ("plan", "PlanReport"),
    "plan": ("plan", "plan"),
    "DriftReport": ("drift", "DriftReport"),
    "drift": ("api", "drift"),
    "HistoryReport": ("history_report", "HistoryReport"),
    "deploys_report": ("api", "report"),
    "history": ("api", "history"),
    "ecs_run": ("api", "ecs_run"),
    "EcsRunResult": ("integrations.aws.ecs_run", "EcsRunResult"),
    "backups": ("api", "backups"),
    "restore": ("api", "restore"),
    "RestoreReport": ("backups.restore", "RestoreReport"),
    "repair": ("api", "repair"),
    "rollback": ("api", "rollback"),
    "RollbackPlan": ("rollback_plan", "RollbackPlan"),
    "RollbackRequest": ("rollback_plan", "RollbackRequest"),
    "status": ("api", "status"),
    "upgrade": ("api", "upgrade"),
    "SchemaCheck": ("guard", "SchemaCheck"),
    "check_schema": ("guard", "check"),
    "wait_healthy": ("steps.health", "wait_healthy"),
}


def __getattr__(name: str) -> object:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module, attr = _LAZY[name]
    value = getattr(importlib.import_module(f".{module}", __name__), attr)
    globals()[name] = value
    return value


__all__ = [
    "AlembicDeployError",
    "BackupFailed",
    "CheckRefused",
    "CheckReport",
    "ConfigError",
    "CredentialsUnavailable",
    "DatabaseUnreachable",
    "DeployReport",
    "DriftReport",
    "EcsRunResult",
    "EcsTaskFailed",
    "FailedRevision",
    "HealthCheckFailed",
    "HistoryReport",
    "Interrupted",
    "LockNotAcquired",
    "MigrationFailed",
    "PartialMigration",
    "PlanReport",
    "RestoreReport",
    "RetryResult",
    "RevisionResult",
    "RollbackPlan",
    "RollbackReport",
    "RollbackRequest",
    "SchemaCheck",
    "ScratchUnavailable",
    "Settings",
    "StatusReport",
    "StepResult",
    "__version__",
    "backups",
    "check",
    "check_schema",
    "deploys_report",
    "drift",
    "ecs_run",
    "history",
    "plan",
    "repair",
    "restore",
    "rollback",
    "status",
    "upgrade",
    "wait_healthy",
]
