"""The only module that imports Alembic.

Migrations run through Alembic's own API: the project's ``env.py`` executes exactly as under
``alembic upgrade``, inside an :class:`EnvironmentContext` subclass that adds what a deploy needs
without any change to ``env.py``:

* an ``on_version_apply`` callback (chained after the project's own) that times each revision;
* a hook right after ``context.configure()`` that sees the migrating connection (to bound its lock
  waits and to cancel it on SIGTERM) and the version table it uses (to verify afterwards).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from alembic import util as alembic_util
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError, RevisionError

from .errors import CheckRefused, ConfigError

if TYPE_CHECKING:
    from alembic.runtime.migration import MigrationContext, MigrationInfo

    from .settings import Settings

__all__ = [
    "AlembicError",
    "Project",
    "RunObserver",
]

#: Alembic's own error type, for callers that translate it.
AlembicError = alembic_util.CommandError


@dataclass
class RunObserver:
    """Callbacks a run reports to; every field is optional."""

    #: (migration context, current heads) before any revision runs; may raise to refuse.
    on_configured: Callable[[MigrationContext, tuple[str, ...]], None] | None = None
    #: (revision id, description, started, duration) after each revision.
    on_revision: Callable[[str, tuple[str, ...], str, float, float], None] | None = None
    #: steps alembic is about to run, (revision id, description) in order.
    on_plan: Callable[[list[tuple[str, str]]], None] | None = None


@dataclass
class RunResult:
    #: True once env.py configured a context and alembic computed the steps.
    configured: bool = False
    current: tuple[str, ...] = ()
    planned: list[tuple[str, str]] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    version_table: str = "alembic_version"
    version_table_schema: str | None = None


class _DeployContext(EnvironmentContext):
    observer: RunObserver
    result: RunResult

    def configure(self, *args: Any, **kw: Any) -> None:  # noqa: D401 - alembic's signature
        own = kw.get("on_version_apply")
        callbacks: tuple[Any, ...] = tuple(own) if isinstance(own, (list, tuple)) else ((own,) if own else ())
        kw["on_version_apply"] = (*callbacks, self._on_version_apply)
        super().configure(*args, **kw)
        ctx = self.get_context()
        self.result.version_table = ctx.version_table
        self.result.version_table_schema = ctx.version_table_schema
        self._last = time.time()

    def run_migrations(self, **kw: Any) -> None:
        self._last = time.time()
        super().run_migrations(**kw)

    def _on_version_apply(self, *, ctx: MigrationContext, step: MigrationInfo, heads: Any, run_args: Any) -> None:
        now = time.time()
        started, self._last = self._last, now
        # For a downgrade step too, up_revision_id is the revision being applied or reverted.
        rev = step.up_revision_id
        self.result.applied.append(rev)
        if self.observer.on_revision:
            script = step.up_revision
            self.observer.on_revision(
                rev,
                tuple(step.down_revision_ids),
                (script.doc or "") if script is not None else "",
                started,
                now - started,
            )


# Alembic's `context` module proxies the EnvironmentContext class registered for it; let it proxy
# this subclass the same way (the registry is keyed by class).
EnvironmentContext._setups[_DeployContext] = EnvironmentContext._setups[EnvironmentContext]


class Project:
    """An Alembic project opened through Alembic: its Config and ScriptDirectory."""

    def __init__(self, settings: Settings, url: str) -> None:
        ini = settings.config_path
        cmd_opts = argparse.Namespace(x=list(settings.x), config=str(ini), name=settings.name)
        self.config = Config(str(ini), ini_section=settings.name, cmd_opts=cmd_opts)
        # env.py reads the URL either way: from the config or from DATABASE_URL.
        self.config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        os.environ["DATABASE_URL"] = url
        self.last_run = RunResult()
        try:
            self.script = ScriptDirectory.from_config(self.config)
        except alembic_util.CommandError as exc:
            raise ConfigError(f"Alembic could not open the migration scripts: {exc}.") from None

    # -- the revision graph ------------------------------------------------------------------
    def heads(self) -> tuple[str, ...]:
        return tuple(self.script.get_heads())

    def resolve(self, target: str) -> tuple[str, ...]:
        """Revision ids the database must be at after upgrading to ``target``."""
        if target == "heads":
            return self.heads()
        try:
            return tuple(sorted(s.revision for s in self.script.get_revisions(target) if s is not None))
        except (ResolutionError, RevisionError) as exc:
            raise CheckRefused(f"Unknown target revision {target!r}: {exc}.") from None

    def describe(self, revision: str) -> str:
        script = self.script.get_revision(revision)
        return (script.doc or "") if script is not None else ""

    def knows(self, revision: str) -> bool:
        try:
            return self.script.get_revision(revision) is not None
        except (ResolutionError, RevisionError):
            return False

    def upgrade_steps(self, target: str, current: Sequence[str]) -> list[tuple[str, str]]:
        revs = self.script._upgrade_revs(target, tuple(current))
        return [(step.revision.revision, step.doc or "") for step in revs]

    # -- running env.py ----------------------------------------------------------------------
    def run(self, direction: str, target: str, observer: RunObserver) -> RunResult:
        """Run env.py to move the database to ``target`` (``direction`` is upgrade/downgrade/inspect)."""
        result = self.last_run = RunResult()
        script = self.script

        def fn(rev: Any, context: MigrationContext) -> Any:
            result.configured = True
            result.current = tuple(rev) if isinstance(rev, (list, tuple)) else ((rev,) if rev else ())
            if observer.on_configured:
                observer.on_configured(context, result.current)
            if direction == "inspect":
                return []
            if direction == "upgrade":
                steps = script._upgrade_revs(target, rev)
                result.planned = [(s.revision.revision, s.doc or "") for s in steps]
            else:
                steps = script._downgrade_revs(target, rev)
                result.planned = [(s.revision.revision, s.doc or "") for s in steps]
            if observer.on_plan:
                observer.on_plan(result.planned)
            return steps

        ctx = _DeployContext(
            self.config,
            script,
            fn=fn,
            as_sql=False,
            starting_rev=None,
            destination_rev=target,
            tag=None,
        )
        ctx.observer = observer
        ctx.result = result
        with ctx:
            script.run_env()
        return result
