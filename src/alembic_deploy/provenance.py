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


def identity(settings: Settings) -> dict[str, Any]:
    return {
        "host": socket.gethostname()[:255],
        "pid": os.getpid(),
        "environment": settings.env,
        "git_sha": settings.git_sha,
        "actor": settings.actor,
        "run_url": settings.run_url,
        "tool_version": __version__,
        "alembic_version": _alembic_version(),
    }


def journal_row(settings: Settings, report: DeployReport, outcome: str) -> dict[str, Any]:
    """A journal row's columns (timestamps aside), shared by the journal and the fast path."""
    return {
        "command": report.command,
        "outcome": outcome,
        "target": report.target,
        "from_revisions": ",".join(report.from_revisions),
        "to_revisions": ",".join(report.to_revisions),
        "revisions": "[]",
        "duration_seconds": round(report.duration_seconds, 4),
        "db_wait_seconds": report.db_wait_seconds,
        "lock_wait_seconds": report.lock_wait_seconds,
        **identity(settings),
    }
