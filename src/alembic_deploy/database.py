"""The tool's own engine (lock, journal, verification): sync, no pool, short connect timeout."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from .backends import Backend, for_dialect
from .backends.base import importable
from .errors import ConfigError
from .masking import mask_url, register, register_url

if TYPE_CHECKING:
    from sqlalchemy.engine import URL, Engine

    from .fastpath.direct import DirectConnection


def parse_url(raw: str) -> URL:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    register_url(raw)
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"The database URL {mask_url(raw)!r} is not a valid SQLAlchemy URL. Expected "
            "dialect+driver://user:password@host:port/database, e.g. "
            "postgresql+psycopg://app:***@db:5432/app or sqlite:///app.db."
        ) from None
    if url.password:
        register(str(url.password))
    return url


def make_engine(raw_url: str, lock_wait: float | None = None) -> tuple[Engine, Backend]:
    """A sync engine for ``raw_url``; an async driver is swapped for its sync sibling.
    ``lock_wait``: how long a statement waits for another process's lock on the whole database
    (:meth:`~.backends.base.Backend.connect_args`)."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import NoSuchModuleError
    from sqlalchemy.pool import NullPool

    url = parse_url(raw_url)
    backend = for_dialect(url.get_backend_name())
    asked = url.get_driver_name()
    own = backend.own_driver(asked)
    if own != asked:
        url = url.set(drivername=f"{url.get_backend_name()}+{own}")
    default = backend.default_drivername() if "+" not in url.drivername else None
    if default is not None:
        url = url.set(drivername=default)
    driver = url.get_driver_name()
    try:
        engine = create_engine(url, poolclass=NullPool, connect_args=backend.connect_args(driver, lock_wait),
                               future=True)
    except (NoSuchModuleError, ImportError) as exc:
        raise _dialect_missing(url, backend) or missing_driver(exc, repr(url.drivername), backend) or ConfigError(
            f"No database driver for {url.drivername!r} ({exc})."
        ) from None
    if own != asked:
        _require_driver(url.set(drivername=f"{url.get_backend_name()}+{asked}"), backend)
    from sqlalchemy import event

    from . import credentials

    def connect(_dialect: object, _record: object, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> object:
        return None if cargs else backend.connect(driver, cparams)

    def make(dialect: Any, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> object:
        return connect(dialect, None, cargs, cparams) or dialect.connect(*cargs, **cparams)

    # A login read at every connect (a rotated secret, an IAM token) connects itself, so that a
    # refused login can be read again (alembic_deploy.credentials); else the listener below.
    credentials.install(engine, raw_url, make)
    event.listen(engine, "do_connect", connect)
    return engine, backend


#: Drivers of the three backends that came with a later SQLAlchemy than the oldest one supported
#: (psycopg 3's, 2.0, has its own message): the release each came with.
_LATER_DIALECTS: Final = {"asyncmy": "1.4.29"}


def no_dialect(backend_name: str, driver: str) -> ConfigError:
    """Exit 2 for a URL naming a driver the installed SQLAlchemy has no dialect for: one that came
    with a later release, or a name SQLAlchemy does not know (a typo), listing the drivers it has,
    since "upgrade SQLAlchemy" would send the user the wrong way."""
    import importlib
    import types

    from .compat import dialect_package, installed_version

    # A dialect package imports each driver module, and a driver module names its dialect class
    # ``dialect`` (SQLAlchemy's entry-point contract).
    package = importlib.import_module(f"sqlalchemy.dialects.{dialect_package(backend_name)}")
    known = ", ".join(sorted(key for key, value in vars(package).items()
                             if isinstance(value, types.ModuleType) and hasattr(value, "dialect") and key != "base"))
    name = f"{backend_name}+{driver}"
    said = f"No database driver: SQLAlchemy {installed_version('sqlalchemy')} has no dialect {name!r}."
    if driver in _LATER_DIALECTS:
        return ConfigError(f"{said} It came with SQLAlchemy {_LATER_DIALECTS[driver]}: upgrade SQLAlchemy, or use "
                           f"another of the {backend_name} drivers it has: {known}.")
    return ConfigError(
        f"{said} Check the driver in the URL ({backend_name}+DRIVER://...): the {backend_name} drivers it "
        f"has are {known}; or leave the driver out ({backend_name}://) for the default one."
    )


#: The pip package that provides each DBAPI module SQLAlchemy's dialects import (the module name is
#: what an ImportError names), and for the ones that build C code, the URL that needs no compiler.
DRIVER_PACKAGES: Final = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "psycopg2cffi": "psycopg2cffi",
    "pg8000": "pg8000",
    "asyncpg": "asyncpg",
    "pymysql": "PyMySQL",
    "MySQLdb": "mysqlclient",
    "mysql": "mysql-connector-python",
    "mariadb": "mariadb",
    "aiomysql": "aiomysql",
    "asyncmy": "asyncmy",
    "aiosqlite": "aiosqlite",
    "greenlet": "greenlet",
}
_ALTERNATIVE: Final = {
    "MySQLdb": ("mysql+pymysql", " (it needs a C compiler and the MySQL client headers)"),
    "psycopg2": ("postgresql+psycopg", ""),
}


def missing_module(exc: BaseException) -> str | None:
    """The driver module (or ``greenlet``) whose absence ``exc`` or an exception it chains reports."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ImportError) and current.name:
            top = current.name.split(".")[0]
            if top in DRIVER_PACKAGES:
                return top
        # SQLAlchemy says "greenlet" in the message only: ImportError (2.1) or ValueError (1.4, 2.0);
        # SQLAlchemy 1.4's sqlalchemy.ext.asyncio lacks its names altogether without greenlet.
        if isinstance(current, (ImportError, ValueError)) and "greenlet" in str(current):
            return "greenlet"
        if (isinstance(current, ImportError) and (current.name or "").startswith("sqlalchemy.ext.asyncio")
                and not importable("greenlet")):
            return "greenlet"
        current = current.__cause__ or current.__context__
    return None


def missing_driver(exc: BaseException, what: str, backend: Backend | None = None) -> ConfigError | None:
    """Exit 2 naming the pip package to install, when ``exc`` reports a missing driver module;
    ``what`` names the connection that needs it (a quoted driver name, or env.py's engine)."""
    from .compat import has_dialect

    module = missing_module(exc)
    if module is None:
        return None
    needs = "SQLAlchemy's asyncio support" if module == "greenlet" else "it"
    advice = f"Install it with `pip install '{DRIVER_PACKAGES[module]}'`"
    if module == "greenlet":
        advice += " (or `pip install 'sqlalchemy[asyncio]'`)"
    if module in _ALTERNATIVE and has_dialect(*_ALTERNATIVE[module][0].split("+")):  # not psycopg 3 on 1.4
        alternative, note = _ALTERNATIVE[module]
        extra = f", which `pip install 'alembic-deploy[{backend.extra}]'` installs" if backend and backend.extra else ""
        advice += f"{note}, or use a {alternative}:// URL{extra}"
    return ConfigError(
        f"No database driver for {what}: {needs} needs the Python module {module}, which is not "
        f"installed. {advice}."
    )


def _dialect_missing(url: URL, backend: Backend) -> ConfigError | None:
    """Exit 2 when the installed SQLAlchemy has no dialect for ``url``'s driver."""
    from .compat import has_dialect

    driver = url.get_driver_name()
    advice = backend.missing_dialect_advice(url.drivername, driver)
    if advice is not None:
        return ConfigError(advice)
    if not has_dialect(url.get_backend_name(), driver):
        return no_dialect(url.get_backend_name(), driver)
    return None


def _require_driver(url: URL, backend: Backend) -> None:
    """The tool itself connects with a sync sibling of an async driver; env.py will use the async
    one: make sure it (and greenlet) can be imported now, not after the lock and the journal."""
    import importlib

    from sqlalchemy.exc import NoSuchModuleError

    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        error = _dialect_missing(url, backend)
        if error is None:
            raise
        raise error from None
    try:
        load: Any = getattr(dialect, "import_dbapi", None) or dialect.dbapi
        load()
        if getattr(dialect, "is_async", False):
            importlib.import_module("greenlet")
    except (ImportError, ValueError) as exc:
        error = missing_driver(exc, repr(url.drivername), backend)
        if error is None:
            raise
        raise error from None


def adopt(engine: Engine, spare: DirectConnection) -> None:
    """Let ``engine``'s first connect take over ``spare``, the session the fast path opened before
    it declined, instead of opening one: it does when it would have connected the same way
    (:meth:`~.fastpath.direct.DirectConnection.hand_over`): a connect is a round trip or more."""
    from sqlalchemy import event

    pending = [spare]

    def connect(_dialect: object, _record: object, cargs: tuple[Any, ...], cparams: dict[str, Any]) -> object:
        if not pending:
            return None
        first = pending.pop()
        if cargs:
            first.close()
            return None
        return first.hand_over(cparams)

    # First: a connect it takes over is not made at all (make_engine's own listener comes after).
    try:
        event.listen(engine, "do_connect", connect, insert=True)
    except TypeError:  # SQLAlchemy 1.4's dialect events take no insert=: the engine connects itself
        event.listen(engine, "do_connect", connect)  # and the spare is closed with the deployment
