"""Optional integrations, each in its own module and behind its own extra.

* :mod:`alembic_deploy.integrations.starlette` - FastAPI / Starlette: a lifespan that checks the
  schema at startup and a readiness route (``alembic-deploy[fastapi]``).
* :mod:`alembic_deploy.integrations.flask` - Flask: an extension that does the same
  (``alembic-deploy[flask]``).

Anything else calls :func:`alembic_deploy.guard.check` or :func:`alembic_deploy.guard.readiness`.
"""
