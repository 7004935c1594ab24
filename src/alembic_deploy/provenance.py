"""Who deployed, from where: the identity columns of a journal row (no SQLAlchemy import)."""

from __future__ import annotations

import os
import re
import socket
import sys
from typing import TYPE_CHECKING, Any

from . import __version__

if TYPE_CHECKING:
    from .report import DeployReport
    from .settings import Settings

#: Characters each text column of the journal holds (journal.py declares its columns with these):
#: settings a person chooses are checked against them when resolved (settings.py); values a CI
#: system or the host supplies are clipped to them instead (:func:`clip`), never refusing a deploy.
COLUMN_SIZES: dict[str, int] = {
    "command": 32,
    "outcome": 16,
    "target": 255,
    "from_revisions": 1024,
    "to_revisions": 1024,
    "host": 255,
    "environment": 64,
    "git_sha": 64,
    "actor": 255,
    "run_url": 1024,
    "tool_version": 32,
    "alembic_version": 32,
}

#: Ends a clipped value, so the journal says it was clipped: the prefix before it is the original's.
CLIPPED = "\u2026"


def _alembic_version() -> str:
    # importlib.metadata costs ~50 ms to import and scan, a large share of the fast path, which
    # never imports alembic: read ``__version__`` from alembic's source instead when needed.
    module = sys.modules.get("alembic")
    if module is not None and isinstance(getattr(module, "__version__", None), str):
        return str(module.__version__)
    try:
        from importlib.util import find_spec

        spec = find_spec("alembic")
        if spec is not None and spec.origin:
            with open(spec.origin, encoding="utf-8") as fh:
                found = re.search(r"""^__version__\s*=\s*["']([^"']+)["']""", fh.read(), re.M)
            if found:
                return found.group(1)
    except (ImportError, OSError, ValueError):
        pass
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("alembic")
    except PackageNotFoundError:  # pragma: no cover
        return "unknown"


def clip(column: str, value: str | None) -> str | None:
    """``value`` as the journal's ``column`` holds it: unchanged when it fits, else its prefix
    followed by :data:`CLIPPED` (a 70-character SHA from CI must not fail the deploy it records)."""
    size = COLUMN_SIZES[column]
    if value is None or len(value) <= size:
        return value
    return value[: size - len(CLIPPED)] + CLIPPED


def identity(settings: Settings) -> dict[str, Any]:
    return {
        "host": clip("host", socket.gethostname()),
        "pid": os.getpid(),
        "environment": settings.env,
        "git_sha": clip("git_sha", settings.git_sha),
        "actor": clip("actor", settings.actor),
        "run_url": clip("run_url", settings.run_url),
        "tool_version": clip("tool_version", __version__),
        "alembic_version": clip("alembic_version", _alembic_version()),
    }


def revision_columns(report: DeployReport) -> dict[str, str | None]:
    """The run's revisions as the journal's columns hold them: comma-separated, and clipped where
    many heads outgrow the column (the report and the version table keep them all)."""
    return {
        "from_revisions": clip("from_revisions", ",".join(report.from_revisions)),
        "to_revisions": clip("to_revisions", ",".join(report.to_revisions)),
    }


def journal_row(settings: Settings, report: DeployReport, outcome: str) -> dict[str, Any]:
    """A journal row's columns (timestamps aside), shared by the journal and the fast path."""
    return {
        "command": report.command,
        "outcome": outcome,
        "target": clip("target", report.target),
        **revision_columns(report),
        "revisions": "[]",
        "duration_seconds": round(report.duration_seconds, 4),
        "db_wait_seconds": report.db_wait_seconds,
        "lock_wait_seconds": report.lock_wait_seconds,
        **identity(settings),
    }
