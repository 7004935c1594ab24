"""``--database-secret``: the database login from an AWS Secrets Manager secret.

The secret's current value (``AWSCURRENT``) is either the JSON RDS and its rotation functions
write, ``{"engine", "host", "port", "username", "password", "dbname"}`` (keys case-sensitive, as
RDS writes them; ``engine`` read by prefix: ``postgres``/``aurora-postgresql``,
``mysql``/``mariadb``/``aurora-mysql``), or a database URL as plain text. A secret RDS manages for
an instance (``manage-master-user-password``) holds only ``username`` and ``password``: the host and
database then come from the project's URL (``DATABASE_URL``, ``--database-url`` or
``sqlalchemy.url``), as do a missing engine, port and database, before the engine's defaults.
The driver is the project URL's when it names the same kind of database, else the installed one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ...credentials import Login
from ...errors import ConfigError
from ...masking import register, register_url
from .clients import aws_errors, client, unavailable

if TYPE_CHECKING:
    from sqlalchemy.engine import URL

#: ``engine`` prefixes, longest first, and the SQLAlchemy dialect each means.
ENGINES: Final = (("aurora-postgresql", "postgresql"), ("aurora-mysql", "mysql"), ("postgres", "postgresql"),
                  ("mariadb", "mysql"), ("mysql", "mysql"))
#: What a key the secret lacks falls back to, after the project's URL.
DEFAULT_PORTS: Final = {"postgresql": 5432, "mysql": 3306}
DEFAULT_DATABASES: Final = {"postgresql": "postgres"}
#: The keys the JSON form is read from.
KEYS: Final = ("engine", "host", "port", "username", "password", "dbname")


@dataclass
class SecretLogin:
    """The login of secret ``secret_id``: read from Secrets Manager at every call of :meth:`read`."""

    secret_id: str
    _client: Any = field(default=None, repr=False, compare=False)

    @property
    def description(self) -> str:
        return f"the secret {self.secret_id!r}"

    @property
    def refused_advice(self) -> str:
        return (f"check the user, password and database name in {self.description}, where the login came "
                "from (and in DATABASE_URL for what it lacks)")

    def fetch(self) -> str:
        """The secret's current value, as text."""
        if self._client is None:  # one client for every read (a client costs a few ms to build)
            self._client = client("secretsmanager", _arn_region(self.secret_id))  # exit 2 without boto3
        secrets = self._client
        what = f"--database-secret could not read {self.description}"
        try:
            answer = secrets.get_secret_value(SecretId=self.secret_id)
        except aws_errors() as exc:
            raise unavailable(exc, what, "Check the secret's name or ARN and region, and that this role may call "
                              "secretsmanager:GetSecretValue on it (and kms:Decrypt on its key).") from None
        value = answer.get("SecretString")
        if value is None:
            raise ConfigError(
                f"{self.description} holds binary data (SecretBinary); alembic-deploy reads a database login "
                "from its text: the RDS JSON (engine, host, port, username, password, dbname) or a URL.")
        text = str(value)
        register(text)
        return text

    def read(self) -> Login:
        parsed = parse(self.fetch(), self.description)
        if isinstance(parsed, dict):
            return Login(_text(parsed, "username", self.description), _text(parsed, "password", self.description))
        return Login(parsed.username, None if parsed.password is None else str(parsed.password))


def parse(text: str, described: str) -> dict[str, Any] | URL:
    """The secret's JSON object, or the URL it holds; ConfigError (exit 2) for anything else,
    without quoting it (it holds a password)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped)
        except ValueError:
            value = None
        if not isinstance(value, dict):
            raise ConfigError(
                f"{described} starts with '{{' but is not a JSON object. Store the RDS JSON "
                "(engine, host, port, username, password, dbname) or a database URL.")
        for key in ("username", "password"):
            _text(value, key, described)
        register(value["password"])
        return value
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    register_url(stripped)
    try:
        return make_url(stripped)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"{described} is neither a JSON object nor a database URL. Store the RDS JSON (engine, host, port, "
            "username, password, dbname) or a URL such as postgresql://user:password@host:5432/db.") from None


def _text(secret: dict[str, Any], key: str, described: str) -> str:
    value = secret.get(key)
    if isinstance(value, str) and value:
        return value
    near = [k for k in secret if k.lower() == key and k != key]
    hint = f" It has {near[0]!r}: keys are case-sensitive, as RDS writes them." if near else ""
    raise ConfigError(
        f"{described} has no {key!r}{' string' if key in secret else ''}; its keys are "
        f"{', '.join(sorted(map(str, secret))) or 'none'}.{hint} An RDS secret holds engine, host, port, username, "
        "password and dbname (only username and password with host and database in DATABASE_URL).")


def url_from(secret: dict[str, Any] | URL, base: URL | None, described: str) -> URL:
    """The URL to connect with: the secret's, completed from the project's URL ``base``."""
    if not isinstance(secret, dict):
        if "+" not in secret.drivername and base is not None and _family(base.get_backend_name()) == _family(
                secret.get_backend_name()):
            secret = secret.set(drivername=base.drivername)
        return secret if "+" in secret.drivername else secret.set(drivername=installed_driver(secret.drivername))
    family = _engine_family(secret, base, described)
    same = base is not None and _family(base.get_backend_name()) == family
    host = secret.get("host") or (base.host if same and base is not None else None)
    if not host:
        raise ConfigError(
            f"{described} has no 'host', and the project's URL names none for it. Add host to the secret, or "
            f"give the host in DATABASE_URL (e.g. {family}://{'db.example.com'}/app), which supplies what the "
            "secret lacks.")
    port = _port(secret.get("port"), described) or (base.port if same and base is not None else None)
    database = secret.get("dbname") or (base.database if same and base is not None else None)
    database = database or DEFAULT_DATABASES.get(family)
    if not database:
        raise ConfigError(
            f"{described} has no 'dbname' and the project's URL names no database; MySQL has no default "
            "database to migrate. Add dbname to the secret or give the database in DATABASE_URL.")
    drivername = base.drivername if same and base is not None and "+" in base.drivername else installed_driver(family)
    from sqlalchemy import engine

    return engine.URL.create(drivername, username=_text(secret, "username", described),
                        password=_text(secret, "password", described), host=str(host),
                        port=port or DEFAULT_PORTS[family], database=str(database),
                        query=dict(base.query) if same and base is not None else {})


def _family(backend_name: str) -> str:
    return "mysql" if backend_name in ("mysql", "mariadb") else backend_name


def _engine_family(secret: dict[str, Any], base: URL | None, described: str) -> str:
    engine = secret.get("engine")
    if engine is None:
        if base is None:
            raise ConfigError(
                f"{described} has no 'engine' and there is no project URL to take it from. Add engine "
                "(postgres or mysql) to the secret, or set DATABASE_URL to e.g. postgresql:///.")
        family = _family(base.get_backend_name())
        if family not in DEFAULT_PORTS:
            raise ConfigError(f"{described} is an RDS secret, but the project's URL is for {family}.")
        return family
    for prefix, family in ENGINES:
        if str(engine).startswith(prefix):
            return family
    raise ConfigError(
        f"{described} names the engine {engine!r}, which alembic-deploy does not map to a database: it reads "
        "postgres, aurora-postgresql (PostgreSQL), mysql, mariadb and aurora-mysql (MySQL/MariaDB).")


def _port(value: Any, described: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        port = int(value)
    except (TypeError, ValueError):
        port = 0
    if not 0 < port < 65536:
        raise ConfigError(f"{described} has the port {value!r}, not a TCP port number (1 to 65535).")
    return port


def installed_driver(drivername: str) -> str:
    """``dialect+driver`` for a URL that names none: the first sync driver of that database
    installed, as the tool's own engine would choose (SQLAlchemy's bare default may be absent)."""
    from ...backends import for_dialect
    from ...backends.base import importable
    from ...compat import has_dialect

    backend = for_dialect(drivername)
    for driver in backend.sync_siblings:
        if has_dialect(drivername, driver) and importable(backend.drivers[driver].module):
            return f"{drivername}+{driver}"
    return drivername


def _arn_region(secret_id: str) -> str | None:
    """The region an ARN names (``arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME``)."""
    parts = secret_id.split(":")
    return parts[3] or None if secret_id.startswith("arn:") and len(parts) > 3 else None
