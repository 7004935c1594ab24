"""``--rds-iam``: log in to RDS with an IAM authentication token instead of a password.

A token is a SigV4-signed request (``rds-db:connect`` for the host, port and user), signed
locally by boto3 (``generate_db_auth_token``: no call to AWS) with whatever credentials the
process has (the task role, GitHub's OIDC role); it is valid for 15 minutes, so one is signed for
every connect (:mod:`alembic_deploy.credentials`), never reused by a reconnect late in a long
migration. RDS only accepts a token over TLS: a URL that does not make the driver require TLS is
refused before anything connects (exit 2), since the token would otherwise be refused by the server
after crossing the network in the clear.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...credentials import Login
from ...errors import ConfigError
from ...masking import register
from .clients import aws_errors, client, unavailable

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

    from ...backends import Backend



@dataclass
class IamToken:
    """A fresh token for ``user`` at ``host``:``port`` at every :meth:`read`."""

    host: str
    port: int
    user: str
    region: str | None = None
    _client: Any = field(default=None, repr=False, compare=False)

    @property
    def description(self) -> str:
        return f"an RDS IAM token for {self.user!r} at {self.host}:{self.port}"

    @property
    def refused_advice(self) -> str:
        return (f"check that the database user {self.user!r} may log in with IAM (PostgreSQL: GRANT rds_iam; "
                "MySQL: IDENTIFIED WITH AWSAuthenticationPlugin), that IAM authentication is enabled on the "
                f"instance, and that this role may rds-db:connect as {self.user!r}")

    def read(self) -> Login:
        if self._client is None:  # one client for every token
            self._client = client("rds", self.region)  # exit 2 without boto3
        rds = self._client
        try:
            token = rds.generate_db_auth_token(DBHostname=self.host, Port=self.port, DBUsername=self.user,
                                               Region=self.region)
        except aws_errors() as exc:
            raise unavailable(exc, f"--rds-iam could not sign {self.description}",
                              "Check the AWS credentials of this process.") from None
        register(str(token))
        return Login(None, str(token))


def token_source(url: URL, backend: Backend) -> IamToken:
    """The token source for ``url``; ConfigError (exit 2) when the URL lacks what a token needs
    (a host, a user) or does not require TLS."""
    if backend.name == "sqlite":
        raise ConfigError("--rds-iam logs in to an RDS database server; the URL is a SQLite file. Drop --rds-iam.")
    if not url.host or not url.username:
        raise ConfigError(
            "--rds-iam signs a token for a host and a user, and the database URL names "
            f"{'no host' if not url.host else 'no user'}. Give both, e.g. "
            "postgresql://app@db.xxxx.eu-west-1.rds.amazonaws.com/app?sslmode=require.")
    problem = backend.tls_required_problem(url)
    if problem is not None:
        raise ConfigError(
            f"--rds-iam sends a token that RDS accepts only over TLS, and the database URL does not make the "
            f"driver require TLS: {problem}. Without it the token would cross the network in the clear "
            "before RDS refused the connection.")
    return IamToken(url.host, url.port or backend.default_port or 0, url.username)
