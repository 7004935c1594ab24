"""Database credentials read again at every connect, for logins that change while a deploy runs: a
secret rotated by AWS Secrets Manager, an RDS IAM token that expires after 15 minutes.

A :class:`LoginSource` (the AWS integration provides them) is registered for the database URL it
produced (:func:`register`). From then on every connection to that database reads it first:

* the tool's own engine (the wait step, the lock session, the journal), through SQLAlchemy's
  ``do_connect`` event on that engine (:func:`install`);
* env.py's engine, whatever way env.py builds it, through the same event listened to on every
  engine while env.py runs (:func:`while_env_py_runs`): it applies to the connections whose
  arguments reach the same server as the registered URL (host, port and the rest, the database
  and the login aside), found by asking the engine's own dialect what the URL connects with.

A connect the server refuses as a wrong password or token (PostgreSQL 28P01, MySQL 1045:
:meth:`~alembic_deploy.backends.base.Backend.is_auth_failure`) reads the source once more and
tries again when that gave another login: the secret may have been rotated between the read and
the connect (rotation changes the database's password before the secret's current version).
"""

from __future__ import annotations

import contextlib
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from .masking import register as register_secret

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from sqlalchemy.engine import URL, Engine

    from .backends import Backend


@dataclass(frozen=True)
class Login:
    """A user name and a password (or IAM token); None keeps what the URL says."""

    username: str | None
    password: str | None = None


class LoginSource(Protocol):
    """Where the login of each new connection comes from."""

    @property
    def description(self) -> str:
        """What it is, for messages: "the secret 'prod/db'", "an RDS IAM token for ..."."""
        ...

    @property
    def refused_advice(self) -> str:
        """What to check when the database refuses the login it gave (a sentence's end, no full stop)."""
        ...

    def read(self) -> Login:
        """The login to connect with now (a network call: the secret's current version, a token
        signed now). Raises :class:`~alembic_deploy.errors.CredentialsUnavailable` when it
        cannot be had, :class:`~alembic_deploy.errors.ConfigError` when what it holds is unusable."""
        ...


#: The dialects of the tool's own engines, which :func:`install` serves (env.py's listener skips them).
_OWN: weakref.WeakSet[Any] = weakref.WeakSet()
#: Sources by the URL they produced (as the tool hands it around: a string with the password).
_SOURCES: dict[str, tuple[LoginSource, Backend]] = {}
# Sentinels that find which connect() keywords of a dialect carry the login and the database.
_USER: Final = "alembic-deploy-user-sentinel"
_PASSWORD: Final = "alembic-deploy-password-sentinel"
_DATABASE: Final = "alembic-deploy-database-sentinel"


def register(url: str, source: LoginSource, backend: Backend) -> None:
    """Connections to ``url`` read ``source`` first (see the module's docstring)."""
    _SOURCES[url] = (source, backend)


@contextlib.contextmanager
def same_login(url: str, like: str) -> Iterator[None]:
    """While the block runs, connections to ``url`` (another database on ``like``'s server: drift's
    scratch database) read the source registered for ``like`` too, if any."""
    found = _SOURCES.get(like)
    if found is None or url in _SOURCES:
        yield
        return
    _SOURCES[url] = found
    try:
        yield
    finally:
        del _SOURCES[url]


def source_for(url: str) -> LoginSource | None:
    found = _SOURCES.get(url)
    return found[0] if found else None


def connect_fresh(source: LoginSource, backend: Backend, cparams: dict[str, Any], keys: _Keys,
                  connect: Callable[[], Any]) -> Any:
    """``connect()`` with ``cparams`` holding a login just read from ``source``; a refused login
    is read once more and tried again when it changed."""
    login = source.read()
    keys.apply(cparams, login)
    try:
        return connect()
    except Exception as exc:
        if not backend.is_auth_failure(exc):
            raise
        again = source.read()
        if again == login:
            raise
        keys.apply(cparams, again)
        return connect()


@dataclass(frozen=True)
class _Keys:
    """The ``connect()`` keywords of one dialect that carry the user, password and database."""

    user: str | None
    password: str | None
    database: str | None

    def apply(self, cparams: dict[str, Any], login: Login) -> None:
        if login.username is not None and self.user is not None:
            cparams[self.user] = login.username
        if login.password is not None and self.password is not None:
            register_secret(login.password)
            cparams[self.password] = login.password


def keys_of(dialect: Any, url: URL) -> tuple[_Keys, dict[str, Any]]:
    """Which keywords the dialect passes the login and database in, and the other keywords it
    connects to ``url`` with (SQLAlchemy's public ``Dialect.create_connect_args``)."""
    probe = url.set(username=_USER, password=_PASSWORD, database=_DATABASE)
    _args, params = dialect.create_connect_args(probe)
    found = {value: key for key, value in params.items() if value in (_USER, _PASSWORD, _DATABASE)}
    keys = _Keys(found.get(_USER), found.get(_PASSWORD), found.get(_DATABASE))
    rest = {k: v for k, v in params.items() if v not in (_USER, _PASSWORD, _DATABASE)}
    return keys, rest


def install(engine: Engine, url: str, connect: Callable[[Any, tuple[Any, ...], dict[str, Any]], Any]) -> None:
    """Make every connection of the tool's own ``engine`` read the source registered for ``url``
    (if any) first; ``connect(dialect, cargs, cparams)`` makes the DBAPI connection."""
    found = _SOURCES.get(url)
    if found is None:
        return
    source, backend = found
    from sqlalchemy import event

    keys = keys_of(engine.dialect, engine.url)[0]
    _OWN.add(engine.dialect)

    def do_connect(dialect: Any, _record: object, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> Any:
        return connect_fresh(source, backend, cparams, keys, lambda: connect(dialect, cargs, cparams))

    event.listen(engine, "do_connect", do_connect)


@contextlib.contextmanager
def while_env_py_runs(url: str) -> Iterator[None]:
    """While env.py runs: its engine's connections to ``url``'s server read the source registered
    for ``url`` (none registered: nothing changes). SQLAlchemy's ``do_connect`` event listened to
    on the ``Engine`` class (its documented way to reach every engine), removed afterwards."""
    found = _SOURCES.get(url)
    if found is None:
        yield
        return
    source, backend = found
    from sqlalchemy import event
    from sqlalchemy.engine import Engine, make_url

    target = make_url(url)
    known: weakref.WeakKeyDictionary[Any, tuple[_Keys, dict[str, Any]] | None] = weakref.WeakKeyDictionary()

    def ours(dialect: Any) -> tuple[_Keys, dict[str, Any]] | None:
        if dialect in _OWN:
            return None
        if dialect not in known:
            same = dialect.name == target.get_backend_name() or backend.name == dialect.name
            known[dialect] = keys_of(dialect, target) if same else None
        return known[dialect]

    def do_connect(dialect: Any, _record: object, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> Any:
        found = ours(dialect)
        if found is None:
            return None
        keys, expected = found
        # Another server (or another port, socket, TLS setting...) is not this login's business.
        if any(cparams.get(k) != v for k, v in expected.items()):
            return None
        return connect_fresh(source, backend, cparams, keys, lambda: dialect.connect(*cargs, **cparams))

    event.listen(Engine, "do_connect", do_connect)
    try:
        yield
    finally:
        event.remove(Engine, "do_connect", do_connect)
