"""The schema guard for Starlette and FastAPI (``pip install 'alembic-deploy[fastapi]'``).

::

    from alembic_deploy.integrations.starlette import SchemaGuard

    guard = SchemaGuard(engine, "migrations")      # an Engine, an AsyncEngine or a URL
    app = FastAPI(lifespan=guard.lifespan)         # or Starlette(lifespan=guard.lifespan)
    app.add_route("/ready", guard.readiness)       # 200 when accepted, 503 otherwise, JSON body

At startup the lifespan checks the schema and refuses to start (:class:`~alembic_deploy.errors.
CheckRefused`) unless it is accepted; with ``refuse=False`` the app starts degraded and the readiness
route answers 503 until the schema is accepted. An app with a lifespan of its own enters this one
inside it: ``async with guard.lifespan(app): yield``. The latest result is on
``app.state.schema_check`` and ``guard.latest``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

try:
    from starlette.concurrency import run_in_threadpool
    from starlette.responses import JSONResponse
except ImportError:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "alembic_deploy.integrations.starlette needs Starlette (FastAPI includes it). Install it "
        "with `pip install 'alembic-deploy[fastapi]'`."
    ) from None

from .. import guard
from ..errors import ConfigError, DatabaseUnreachable

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Collection, Iterable

    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine
    from starlette.requests import Request
    from typing_extensions import TypeIs

__all__ = ["SchemaGuard"]


class SchemaGuard:
    """Checks at startup and on every readiness request; see the module docstring."""

    def __init__(
        self,
        engine_or_url: Engine | AsyncEngine | str,
        script_location: str,
        *,
        accept: Collection[str] = guard.DEFAULT_ACCEPT,
        requires: Iterable[str] = (),
        refuse: bool = True,
        **options: Any,
    ) -> None:
        self.engine_or_url = engine_or_url
        self.script_location = script_location
        self.refuse = refuse
        self.options = {"accept": accept, "requires": tuple(requires), **options}
        self.latest: guard.SchemaCheck | None = None

    async def check(self) -> guard.SchemaCheck:
        """One check; a sync engine's query runs in the thread pool so the event loop never blocks."""
        if _is_async(self.engine_or_url):
            result = await guard.check_async(self.engine_or_url, self.script_location, **self.options)
        else:
            result = await run_in_threadpool(guard.check, self.engine_or_url, self.script_location, **self.options)
        self.latest = result
        return result

    @asynccontextmanager
    async def lifespan(self, app: Any) -> AsyncIterator[None]:
        try:
            outcome: guard.SchemaCheck | Exception = await self.check()
        except (DatabaseUnreachable, ConfigError) as exc:
            outcome = exc
        app.state.schema_check = guard.decide(outcome, refuse=self.refuse)
        yield

    async def readiness(self, request: Request) -> JSONResponse:
        try:
            outcome: guard.SchemaCheck | Exception = await self.check()
        except (DatabaseUnreachable, ConfigError) as exc:
            outcome = exc
        else:
            request.app.state.schema_check = outcome
        status, body = guard.respond(outcome)
        return JSONResponse(body, status_code=status)


def _is_async(engine: object) -> TypeIs[AsyncEngine]:
    try:
        from sqlalchemy.ext.asyncio import AsyncEngine
    except ImportError:  # pragma: no cover - sqlalchemy without its asyncio extension
        return False
    return isinstance(engine, AsyncEngine)
