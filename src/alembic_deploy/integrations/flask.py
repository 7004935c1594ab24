"""The schema guard for Flask (``pip install 'alembic-deploy[flask]'``).

::

    from alembic_deploy.integrations.flask import SchemaGuard

    guard = SchemaGuard(engine_or_url="postgresql+psycopg://...", script_location="migrations")
    guard.init_app(app)        # checks now; registers GET /ready (200 accepted / 503, JSON body)

The URL defaults to ``app.config["SQLALCHEMY_DATABASE_URI"]`` and the scripts to
``app.config["ALEMBIC_DEPLOY_SCRIPT_LOCATION"]``. Flask has no startup hook, so ``init_app`` is
the startup check: it raises :class:`~alembic_deploy.errors.CheckRefused` unless the schema is
accepted (``refuse=False``: log a warning, start degraded, readiness answers 503 until accepted).
The latest result is ``guard.latest``; the extension is ``app.extensions["alembic_deploy"]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

try:
    from flask import Blueprint, jsonify
except ImportError:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "alembic_deploy.integrations.flask needs Flask. Install it with "
        "`pip install 'alembic-deploy[flask]'`."
    ) from None

from .. import guard
from ..errors import ConfigError, DatabaseUnreachable

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    from flask import Flask, Response
    from sqlalchemy.engine import Engine

__all__ = ["SchemaGuard"]


class SchemaGuard:
    """A Flask extension: the startup check plus a readiness blueprint."""

    def __init__(
        self,
        app: Flask | None = None,
        *,
        engine_or_url: Engine | str | None = None,
        script_location: str | None = None,
        accept: Collection[str] = guard.DEFAULT_ACCEPT,
        requires: Iterable[str] = (),
        refuse: bool = True,
        path: str = "/ready",
        **options: Any,
    ) -> None:
        self.engine_or_url = engine_or_url
        self.script_location = script_location
        self.refuse = refuse
        self.path = path
        self.options = {"accept": accept, "requires": tuple(requires), **options}
        self.latest: guard.SchemaCheck | None = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        self.engine_or_url = self.engine_or_url or app.config.get("SQLALCHEMY_DATABASE_URI")
        self.script_location = self.script_location or app.config.get("ALEMBIC_DEPLOY_SCRIPT_LOCATION")
        self._checked_against()
        try:
            outcome: guard.SchemaCheck | Exception = self.check()
        except (DatabaseUnreachable, ConfigError) as exc:
            outcome = exc
        guard.decide(outcome, refuse=self.refuse)
        blueprint = Blueprint("alembic_deploy", __name__)
        blueprint.add_url_rule(self.path, "readiness", self.readiness, methods=["GET"])
        app.register_blueprint(blueprint)
        app.extensions["alembic_deploy"] = self

    def check(self) -> guard.SchemaCheck:
        self.latest = guard.check(*self._checked_against(), **self.options)
        return self.latest

    def _checked_against(self) -> tuple[Engine | str, str]:
        """The database and the migration scripts; a ConfigError when either is not known."""
        if not self.engine_or_url or not self.script_location:
            raise ConfigError(
                "SchemaGuard needs a database (engine_or_url=, or SQLALCHEMY_DATABASE_URI in the app "
                "config) and the migration scripts (script_location=, or "
                "ALEMBIC_DEPLOY_SCRIPT_LOCATION): a folder or the path of alembic.ini."
            )
        return self.engine_or_url, self.script_location

    def readiness(self) -> tuple[Response, int]:
        try:
            outcome: guard.SchemaCheck | Exception = self.check()
        except (DatabaseUnreachable, ConfigError) as exc:
            outcome = exc
        status, body = guard.respond(outcome)
        return jsonify(body), status
