"""Database backends: one module per dialect, registered by SQLAlchemy dialect name."""

from .base import Backend, MigrationLock, for_dialect

__all__ = ["Backend", "MigrationLock", "for_dialect"]
