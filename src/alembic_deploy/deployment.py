"""What every verb opens once: the project's ini, the database URL, the tool's own engine and
backend, and the caller's progress output (:class:`Deployment`); the wait, lock and journal steps
are reached through it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .masking import database_label, mask_url
from .observer import ProgressEvent, event
from .project import ProjectIni, read_ini

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from .alembic_env import AlembicProject
    from .backends import Backend, MigrationLock
    from .fastpath.direct import DirectConnection
    from .journal import Journal
    from .report import DeployReport
    from .settings import Settings

Echo = Callable[[str], None]

#: The connection that reached the database serves the migration lock when taken within this
#: many seconds (a health gate in between may take minutes: an idle session may be cut by then).
REUSE_CONNECTION_SECONDS = 10.0


def _quiet(_msg: str) -> None:
    pass


def shielded(echo: Echo | None) -> Echo:
    """The caller's ``echo`` (None: print nothing), unable to fail the work it reports: a line it
    raises on (a closed stream, a logging handler that fails) is dropped, since a migration half
    done or a journal row left ``running`` for want of a progress line is worse than the line
    lost; the report returned holds the outcome all the same. Signals (KeyboardInterrupt) pass.

    A caller whose ``echo`` has ``takes_events = True`` (the CLI's JSON log) receives every
    :class:`~alembic_deploy.observer.ProgressEvent`; any other only those with a text line."""
    if echo is None:
        return _quiet
    if isinstance(echo, _Shielded):
        return echo
    return _Shielded(echo)


class _Shielded:
    """``echo`` with whatever it raises dropped (see :func:`shielded`)."""

    __slots__ = ("echo", "events")

    def __init__(self, echo: Echo) -> None:
        self.echo = echo
        self.events = bool(getattr(echo, "takes_events", False))

    def __call__(self, msg: str) -> None:
        if not self.events and isinstance(msg, ProgressEvent) and not msg:
            return  # an event for the JSON log only: a caller taking lines gets none
        # Whatever the caller's output does, the work goes on.
        with contextlib.suppress(Exception):
            self.echo(msg)


@dataclass
class Deployment:
    """What every verb needs once: the project, the URL, the tool's own engine and backend."""

    settings: Settings
    ini: ProjectIni
    url: str
    engine: Engine
    backend: Backend
    echo: Echo
    #: The fast path's session, until the engine takes it over (closed with the deployment if not).
    _spare: DirectConnection | None = field(default=None, repr=False)
    #: (connection, when): the session the wait step reached the database with, until taken.
    _reached: tuple[Connection, float] | None = field(default=None, repr=False)

    @classmethod
    def open(cls, settings: Settings, echo: Echo | None = None, spare: DirectConnection | None = None) -> Deployment:
        """``spare``: the fast path's session, for the engine to take over (:func:`.database.adopt`)."""
        from .compat import require_supported
        from .database import adopt, make_engine
        from .database_url import resolve_url

        try:
            require_supported()
            ini = read_ini(settings.config_path, settings.name)
            url = resolve_url(settings, ini)
            engine, backend = make_engine(url, settings.lock_timeout_wait)
        except BaseException:
            if spare is not None:
                spare.close()
            raise
        if spare is not None:
            adopt(engine, spare)
        return cls(settings, ini, url, engine, backend, shielded(echo), spare)

    @property
    def masked_url(self) -> str:
        return mask_url(self.engine.url.render_as_string(hide_password=True))

    @property
    def database_label(self) -> str:
        """The database as logs and metrics name it: host and name, never a user or password."""
        return database_label(self.masked_url) or ""

    def wait(self, report: DeployReport) -> None:
        from .steps.wait import wait_for_database

        def on_retry(attempt: int, _exc: BaseException) -> None:
            if attempt == 1:
                self.echo(event(
                    "database_waiting",
                    f"Waiting for the database at {self.masked_url} (up to {self.settings.wait_timeout:g}s)...",
                    database=self.database_label, timeout_s=self.settings.wait_timeout,
                ))

        started = time.monotonic()
        try:
            seconds, attempts, conn = wait_for_database(
                self.engine, self.backend, self.settings.wait_timeout, on_retry=on_retry, hold=True
            )
        except BaseException:
            report.db_wait_seconds = round(time.monotonic() - started, 4)  # waited, then gave up
            raise
        self._drop_reached()
        self._reached = (conn, time.monotonic()) if conn is not None else None
        report.db_wait_seconds = round(seconds, 4)
        report.step("wait", started, f"{attempts} attempt(s)")

    def alembic_project(self) -> AlembicProject:
        from .alembic_env import AlembicProject

        return AlembicProject(self.settings, self.url)

    def lock(self, timeout: float | None = None) -> Any:
        """The migration lock, waited for up to ``timeout`` (default ``--lock-timeout-wait``; 0:
        one attempt) before :class:`~.errors.LockNotAcquired`."""
        name = self.backend.lock_name(self.engine.url.database, "alembic_version", None)

        def on_wait(holder: dict[str, Any]) -> None:
            who = ", ".join(f"{k} {v}" for k, v in holder.items() if v) or "another deploy"
            self.echo(event("lock_waiting", f"Waiting for the migration lock held by {who}...",
                            holder={k: v for k, v in holder.items() if v}, timeout_s=wait))

        wait = self.settings.lock_timeout_wait if timeout is None else timeout
        return self.backend.lock(self.engine, name, wait, on_wait,
                                 connection=self._take_reached())

    def _take_reached(self) -> Connection | None:
        """The wait step's connection while it is fresh (then the lock opens no session of its
        own: a connect costs a server process on PostgreSQL, a TLS context with PyMySQL)."""
        reached, self._reached = self._reached, None
        if reached is not None and time.monotonic() - reached[1] <= REUSE_CONNECTION_SECONDS:
            return reached[0]
        if reached is not None:
            reached[0].close()
        return None

    def _drop_reached(self) -> None:
        conn = self._take_reached()
        if conn is not None:
            conn.close()

    def journal(self, lock: MigrationLock | None = None) -> Journal:
        from .journal import Journal

        return Journal(self.engine, self.settings.journal_table, lock.connection if lock else None, self.backend)

    def close(self) -> None:
        self._drop_reached()
        if self._spare is not None:
            self._spare.close()  # nothing left to close once the engine took it over
        self.engine.dispose()
