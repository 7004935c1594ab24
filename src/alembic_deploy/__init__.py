"""alembic-deploy: deploy-time Alembic migrations that are safe with many replicas.

The library API mirrors the CLI verbs; each returns a report and raises an
:class:`~alembic_deploy.errors.AlembicDeployError` subclass on failure (the CLI maps each class to
its exit code).
"""

from __future__ import annotations

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    AlembicDeployError,
    CheckRefused,
    ConfigError,
    DatabaseUnreachable,
    HealthCheckFailed,
    Interrupted,
    LockNotAcquired,
    MigrationFailed,
    PartialMigration,
)
from .guard import SchemaCheck  # noqa: E402
from .guard import check as check_schema  # noqa: E402
from .settings import Settings  # noqa: E402
from .steps.health import wait_healthy  # noqa: E402

__all__ = [
    "AlembicDeployError",
    "CheckRefused",
    "ConfigError",
    "DatabaseUnreachable",
    "HealthCheckFailed",
    "Interrupted",
    "LockNotAcquired",
    "MigrationFailed",
    "PartialMigration",
    "SchemaCheck",
    "Settings",
    "__version__",
    "check_schema",
    "wait_healthy",
]
