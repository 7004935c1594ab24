"""The migrating connection of one attempt (:class:`MigratingSession`): the timeouts imposed at
each revision start, the blocker watch, and the server-side cancel that signals use. What the
connection sends is followed by :class:`~alembic_deploy.progress.tracker.ProgressTracker` alone
(its :class:`~alembic_deploy.progress.tracker.StatementCounts` tell the retry loop whether running
a failed revision again is safe).

Timeouts are set on the raw DBAPI connection (see ``Backend.write_settings``) so that alembic's
view of the transaction and the tracker never see them.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .blockers import BlockerWatch
from .timeouts import RevisionTimeouts, revision_timeouts

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy.engine import Connection

    from ..alembic_env import AlembicProject
    from ..deployment import Deployment
    from ..signals import InterruptState


class MigratingSession:
    """The migrating connection of one attempt: timeouts at each revision start, the blocker
    watch, the interrupt check before each statement and the server-side cancel for signals."""

    def __init__(
        self, deployment: Deployment, project: AlembicProject, interrupt: InterruptState, attempt: int,
    ) -> None:
        self.deployment = deployment
        self.backend = deployment.backend
        self.project = project
        self.interrupt = interrupt
        self.attempt = attempt
        self.connection: Connection | None = None
        self.dbapi: Any = None
        self.session_id: Any = None
        #: The timeouts of the revision in flight (None: before env.py configured its connection;
        #: those of a revision that sets none until the first revision starts).
        self.revision_timeouts: RevisionTimeouts | None = None
        self.watch: BlockerWatch | None = None
        self._original: dict[str, str] | None = None
        self._current: dict[str, str] = {}
        #: The timeouts of a revision that sets none (most of them), and the ones last imposed.
        self._defaults: RevisionTimeouts | None = None
        self._imposed: RevisionTimeouts | None = None
        self._stop_listening: Callable[[], None] | None = None

    # -- RunObserver hooks ---------------------------------------------------------------------
    def configured(self, ctx: Any) -> None:
        """env.py called context.configure() and alembic read the current revision."""
        from ..connection_events import listen

        self.interrupt.raise_if_interrupted()
        if ctx.connection is None:
            return
        self.connection = ctx.connection
        self.dbapi = ctx.connection.connection.dbapi_connection
        self.session_id = self.backend.session_id(self.dbapi)
        self.watch = BlockerWatch(self.deployment.engine, self.backend, self.session_id)
        self.revision_timeouts = self.timeouts(None, {})
        self._stop_listening = listen(self.connection, self._before_statement, self._after_statement)
        self.interrupt.cancel = self.cancel

    def planned(self, planned: list[tuple[str, str]]) -> None:
        """Refuse a bad ``alembic_deploy`` dict before the first revision runs."""
        for rev, _doc in planned:
            self.timeouts(rev, self.project.options(rev))

    def revision_started(self, revision: str, options: dict[str, Any]) -> None:
        self.interrupt.raise_if_interrupted()
        timeouts = self.timeouts(revision, options)
        self.revision_timeouts = timeouts
        if self.dbapi is not None:
            self._impose(timeouts)
        if self.watch is not None:
            self.watch.watch(timeouts.lock_timeout)

    def close(self) -> None:
        if self.interrupt.cancel == self.cancel:
            self.interrupt.cancel = None
        stop, self._stop_listening = self._stop_listening, None
        if stop is not None:
            stop()
        if self.watch is not None:
            self.watch.close()

    # -- helpers ----------------------------------------------------------------------------------
    def timeouts(self, revision: str | None, options: dict[str, Any]) -> RevisionTimeouts:
        if not options and self._defaults is not None:
            return self._defaults
        path = self.project.path(revision) if options and revision is not None else None
        timeouts = revision_timeouts(revision, options, self.deployment.settings, path)
        if timeouts.lock_timeout:
            timeouts = replace(timeouts, lock_timeout=self.backend.effective_lock_timeout(timeouts.lock_timeout))
        if not options:
            self._defaults = timeouts
        return timeouts

    @property
    def blockers(self) -> list[dict[str, Any]]:
        return list(self.watch.blockers) if self.watch is not None else []

    def cancel(self) -> None:
        """Cancel the statement in flight (canceller thread): from a fresh connection, never one
        the main thread may be using."""
        if not self.backend.cancel_needs_connection:
            self.backend.cancel(None, self.dbapi, self.session_id)
            return
        with self.deployment.engine.connect() as conn:
            self.backend.cancel(conn.execution_options(isolation_level="AUTOCOMMIT"), self.dbapi, self.session_id)

    def _impose(self, timeouts: RevisionTimeouts) -> None:
        if timeouts is self._imposed:  # the same values as for the revision before (most often)
            return
        wanted = self.backend.timeout_settings(self.dbapi, timeouts.lock_timeout, timeouts.statement_timeout)
        if self._original is None and any(v is not None for v in wanted.values()):
            self._original = self.backend.read_settings(self.dbapi, list(wanted))
        if self._original is not None:
            values = {k: v if v is not None else self._original[k] for k, v in wanted.items()}
            changes = {k: v for k, v in values.items() if self._current.get(k, self._original[k]) != v}
            if changes:
                self.backend.write_settings(self.dbapi, changes)
                self._current.update(changes)
        self._imposed = timeouts

    def _before_statement(self, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        # A killed SELECT SLEEP() returns early without an error: stop before the next statement.
        self.interrupt.raise_if_interrupted()
        if self.watch is not None:
            self.watch.statement_started()

    def _after_statement(self) -> None:
        if self.watch is not None:
            self.watch.statement_ended()
