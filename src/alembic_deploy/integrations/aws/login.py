"""The database URL when the login comes from AWS (``--database-secret``, ``--rds-iam``): the URL
the tool and env.py connect with, and the source every later connect reads its login from
(:mod:`alembic_deploy.credentials`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ... import credentials
from ...masking import register_url

if TYPE_CHECKING:
    from ...settings import Settings

#: The URL already resolved in this process, by (secret, IAM, project URL): the fast path and
#: the full path of one run connect to the same URL, and the secret is read once for both.
_RESOLVED: dict[tuple[str | None, bool, str | None], str] = {}


def resolve(settings: Settings, project_url: str | None) -> str:
    """The URL to connect with, the secret read (or a token signed) now; later connects read it
    again. ``project_url``: ``DATABASE_URL`` / ``--database-url`` / ``sqlalchemy.url``, which
    completes what the secret lacks (host, database, driver) and is the URL with ``--rds-iam`` alone."""
    key = (settings.database_secret, settings.rds_iam, project_url)
    if key in _RESOLVED:
        return _RESOLVED[key]
    from sqlalchemy.engine import make_url

    from ...backends import for_dialect
    from ...database import parse_url
    from ...errors import ConfigError

    base = parse_url(project_url) if project_url else None
    source: credentials.LoginSource
    if settings.database_secret:
        from .secrets import SecretLogin, parse, url_from

        secret = SecretLogin(settings.database_secret)
        url = url_from(parse(secret.fetch(), secret.description), base, secret.description)
        source = secret
    elif base is not None:
        url = base
    else:
        raise ConfigError(
            "--rds-iam needs the database's host and user: set DATABASE_URL (or --database-url, or "
            "sqlalchemy.url), e.g. postgresql://app@db.xxxx.eu-west-1.rds.amazonaws.com/app?sslmode=require.")
    backend = for_dialect(url.get_backend_name())
    if settings.rds_iam:
        from .rds_iam import token_source

        source = token_source(url, backend)
        url = url.set(password=source.read().password)
    text = url.render_as_string(hide_password=False)
    register_url(text)
    make_url(text)  # the string parses back to the same URL (quoting of a token's '&', '/', '=')
    credentials.register(text, source, backend)
    _RESOLVED[key] = text
    return text
