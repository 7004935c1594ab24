"""Does the schema show a statement's effect? A table, column, index or constraint that a
statement creates or drops is looked up with SQLAlchemy's inspector: how a statement that was
running when its process died, or one about to be run again, is settled from the database itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from .progress.sql_text import Effect


def took_effect(engine: Engine, effect: Effect | None) -> bool | None:
    """Is the schema as ``effect``'s statement leaves it? None when that cannot be looked up."""
    if effect is None:
        return None
    exists = schema_has(engine, effect)
    return None if exists is None else exists == effect.creates


def schema_has(engine: Engine, effect: Effect) -> bool | None:
    """Does the object ``effect`` creates or drops exist now (names compared case-insensitively)?"""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        return _schema_has(engine, effect)
    except SQLAlchemyError:
        return None


def _schema_has(engine: Engine, effect: Effect) -> bool:
    from sqlalchemy import inspect

    with engine.connect() as conn:
        insp = inspect(conn)
        tables = {t.lower(): t for t in insp.get_table_names(schema=effect.schema)}
        if effect.kind == "table":
            return effect.name in tables
        names = [tables[effect.table]] if effect.table in tables else ([] if effect.table else list(tables.values()))
        for table in names:
            found: set[str | None]
            if effect.kind == "column":
                found = {c["name"] for c in insp.get_columns(table, schema=effect.schema)}
            else:
                found = {i["name"] for i in insp.get_indexes(table, schema=effect.schema)}
                for getter in (insp.get_unique_constraints, insp.get_foreign_keys, insp.get_check_constraints):
                    try:
                        found |= {c["name"] for c in getter(table, schema=effect.schema)}
                    except NotImplementedError:
                        continue
            if effect.name in {str(n).lower() for n in found if n}:
                return True
        return False
