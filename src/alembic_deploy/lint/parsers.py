"""Which parser reads which dialect, imported on first use: the parsers are the ``lint`` extra."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

from ..errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..alembic_offline import RenderedStatement
    from .change import Change

#: SQLAlchemy dialect name -> (module of this package that reads it, the package it needs).
PARSERS: Final = {
    "postgresql": ("postgresql", "pglast"),
    "mysql": ("mysql", "sqlglot"),
    "mariadb": ("mysql", "sqlglot"),
}
DIALECTS: Final = tuple(PARSERS)


def dialect_of(url_or_name: str) -> str:
    """The lint dialect of a URL (``postgresql+psycopg://...``) or a dialect name."""
    name = url_or_name.split("://", 1)[0].split("+", 1)[0].lower()
    if name == "postgres":
        name = "postgresql"
    if name not in PARSERS:
        raise ConfigError(
            f"The lint reads PostgreSQL, MySQL and MariaDB, not {name!r}. Give --dialect "
            f"{', '.join(DIALECTS)}."
        )
    return name


def parser(dialect: str) -> Callable[[RenderedStatement], list[Change]]:
    """The function that turns one rendered statement of ``dialect`` into changes."""
    module, package = PARSERS[dialect_of(dialect)]
    try:
        importlib.import_module(package)
    except ImportError:
        raise ConfigError(
            f"The lint reads {dialect} SQL with {package}, which is not installed. Install the "
            "lint extra: pip install 'alembic-deploy[lint]'."
        ) from None
    read: Callable[[RenderedStatement], list[Change]] = importlib.import_module(f"{__package__}.{module}").changes
    return read
