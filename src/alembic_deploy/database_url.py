"""Resolve the database URL: ``--database-url`` / ``DATABASE_URL`` first, then ``sqlalchemy.url``
from the ini; with ``--database-secret`` or ``--rds-iam`` the login (and what the secret holds of
the rest) comes from AWS (:mod:`alembic_deploy.integrations.aws.login`). The URL is registered as
a secret the moment it is read."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import ConfigError
from .masking import register_url

if TYPE_CHECKING:
    from .project import ProjectIni
    from .settings import Settings


def resolve_url(settings: Settings, project: ProjectIni) -> str:
    url = settings.database_url or project.ini_url
    if settings.database_secret or settings.rds_iam:
        from .integrations.aws.login import resolve

        return resolve(settings, url if url and not url.startswith("driver://") else None)
    if not url or url.startswith("driver://"):
        raise ConfigError(
            "No database URL: set DATABASE_URL (or --database-url), or sqlalchemy.url in "
            f"[{project.section}] of {project.ini_path}."
        )
    register_url(url)
    return url
