"""The SQLAlchemy and Alembic releases alembic-deploy runs on, and the one API they differ in here.

Supported: SQLAlchemy 1.4.29 and later (1.4 and 2.x) with Alembic 1.13 and later. Alembic itself
still supports SQLAlchemy 1.4 (up to Alembic 1.19), and applications still pin it. The lock, the
journal and the progress tracker need the pool proxy's ``dbapi_connection``/``driver_connection``
(1.4.24), and Alembic's own async template ``async_engine_from_config`` (1.4.29, with the
``mysql+asyncmy`` dialect). Anything older is refused before anything connects
(:func:`require_supported`, exit 2), not left to fail halfway with an AttributeError.

The tool's own engine is a 2.0-style ("future") engine on 1.4 too (:func:`.database.make_engine`).
A connection the application or its env.py made may be a 1.4 "legacy" one, which has no
``commit``/``rollback``: code that gets such a connection ends its transaction with
:func:`rollback`.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any, Final

from .errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

#: package -> (oldest supported release, the distribution name pip knows it by).
MINIMUM: Final = {"sqlalchemy": ((1, 4, 29), "SQLAlchemy"), "alembic": ((1, 13, 0), "alembic")}

_VERSION_LINE = re.compile(rb"""^__version__\s*=\s*["']([^"']+)["']""", re.MULTILINE)


@functools.cache
def installed_version(package: str) -> str | None:
    """The installed release of ``package``, without importing it; None when it is not installed.

    Read from the ``__version__`` line of its ``__init__.py`` (SQLAlchemy and Alembic both keep one
    there): this runs on the fast path, where importing ``importlib.metadata`` alone costs ~25 ms.
    Once per process: the CLI, the fast path and the full path each check the releases.
    ``importlib.metadata`` answers when the source does not say (a sourceless install).
    """
    import importlib.util

    spec = importlib.util.find_spec(package)
    if spec is None:
        return None
    if spec.origin and spec.origin.endswith(".py"):
        try:
            with open(spec.origin, "rb") as source:
                found = _VERSION_LINE.search(source.read())
        except OSError:
            found = None
        if found:
            return found.group(1).decode("ascii", "replace")
    import importlib.metadata

    try:
        return importlib.metadata.version(MINIMUM[package][1] if package in MINIMUM else package)
    except importlib.metadata.PackageNotFoundError:
        return None


def release(version: str) -> tuple[int, ...]:
    """``"1.4.54"`` -> ``(1, 4, 54)``; a pre-release counts as its release (``"2.0.0b4"`` -> 2.0.0)."""
    parts = []
    for piece in version.split(".")[:3]:
        digits = re.match(r"\d+", piece)
        if digits is None:
            break
        parts.append(int(digits.group()))
        if digits.end() != len(piece):
            break
    return tuple(parts)


@functools.cache
def require_supported() -> None:
    """Raise :class:`~.errors.ConfigError` (exit 2) naming the release when SQLAlchemy or Alembic
    is older than alembic-deploy supports. A package that is missing is left to the code that
    imports it (its own error names the package)."""
    for package, (minimum, dist) in MINIMUM.items():
        version = installed_version(package)
        if version is not None and release(version) < minimum:
            oldest = ".".join(map(str, minimum))
            raise ConfigError(
                f"{dist} {version} is installed; alembic-deploy needs {dist} {oldest} or later. "
                f"Upgrade it (`pip install '{dist}>={oldest}'`), or use plain alembic with this "
                "release."
            )


def rollback(conn: Connection) -> None:
    """End ``conn``'s transaction, on a 2.0-style connection or a SQLAlchemy 1.4 legacy one (the
    application's own engine): a legacy connection has no ``rollback()``; its transaction, when
    it began one, does."""
    end: Any = getattr(conn, "rollback", None)
    if end is None:
        transaction = conn.get_transaction()
        end = transaction.rollback if transaction is not None else None
    if end is not None:
        end()


#: The DBAPI module SQLAlchemy's dialect package uses when the URL names no driver.
_DEFAULT_DRIVER: Final = {"sqlite": "pysqlite", "postgresql": "psycopg2", "mysql": "mysqldb"}
#: Dialect names whose dialects live in another dialect's package of SQLAlchemy (MariaDB's drivers
#: are MySQL's): SQLAlchemy's layout, not a difference between the backends.
_DIALECT_PACKAGE: Final = {"mariadb": "mysql"}
#: Drivers whose dialect lives in another driver's module.
_DRIVER_MODULE: Final = {"psycopg_async": "psycopg"}


def has_dialect(dialect: str, driver: str) -> bool:
    """Whether the installed SQLAlchemy has the dialect ``dialect+driver`` (``driver`` empty: the
    default one), without importing SQLAlchemy: 1.4 has no ``postgresql+psycopg`` (psycopg 3),
    and ``mysql+asyncmy`` came in 1.4.29. Unknown dialects (third-party plugins) are False."""
    folder = dialect_package(dialect)
    module = driver or _DEFAULT_DRIVER.get(folder, "")
    package = _sqlalchemy_folder()
    if not module or package is None:
        return False
    import os

    return os.path.isfile(os.path.join(package, "dialects", folder, f"{_DRIVER_MODULE.get(module, module)}.py"))


def dialect_package(dialect: str) -> str:
    """The ``sqlalchemy.dialects`` package that holds the dialect ``dialect`` and its drivers."""
    return _DIALECT_PACKAGE.get(dialect, dialect)


@functools.cache
def _sqlalchemy_folder() -> str | None:
    import importlib.util

    spec = importlib.util.find_spec("sqlalchemy")
    locations = list(spec.submodule_search_locations or ()) if spec is not None else []
    return locations[0] if locations else None
