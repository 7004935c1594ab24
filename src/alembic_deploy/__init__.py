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
from .settings import Settings  # noqa: E402

# The app-side guard and the health gate load on first use: the CLI imports this package on
# every run and needs neither for most of them.
_LAZY = {
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
