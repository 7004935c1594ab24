"""After a run: read the version table on the tool's own connection and compare with the target."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..compat import rollback
from ..errors import MigrationFailed

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine


def read_revisions(conn: Connection, version_table: str = "alembic_version", schema: str | None = None) -> tuple[str, ...]:
    """The database's revision(s): one ``SELECT``; a missing version table means ``()`` (base)."""
    from sqlalchemy import column, inspect, select, table
    from sqlalchemy.exc import DBAPIError

    t = table(version_table, column("version_num"), schema=schema)
    try:
        rows = conn.execute(select(t.c.version_num)).scalars().all()
    except DBAPIError:
        # Only a missing table is "base"; anything else (a dropped connection, no privilege) is real.
        rollback(conn)
        if inspect(conn).has_table(version_table, schema=schema):
            raise
        return ()
    finally:
        if conn.in_transaction():
            rollback(conn)
    return tuple(sorted(rows))


def read_versions(
    engine: Engine, version_table: str, schema: str | None, connection: Connection | None = None
) -> tuple[str, ...]:
    """:func:`read_revisions` on ``connection`` (an idle one, e.g. the lock session) or a new one."""
    if connection is not None and not connection.closed:
        return read_revisions(connection, version_table, schema)
    with engine.connect() as conn:
        return read_revisions(conn, version_table, schema)


def verify(actual: tuple[str, ...], expected: tuple[str, ...], exact: bool = True) -> None:
    """``exact``: the database must be at exactly ``expected`` (targets head/heads); otherwise
    it must include them (an explicit revision on one branch leaves other branches alone)."""
    ok = sorted(actual) == sorted(expected) if exact else set(expected) <= set(actual)
    if not ok:
        raise MigrationFailed(
            f"After migrating, the database is at {', '.join(actual) or '<base>'} but the target "
            f"was {', '.join(expected) or '<base>'}. Something else changed the version table "
            "during the deploy, or env.py migrates a different database than the one "
            "alembic-deploy connects to; check env.py and DATABASE_URL.",
            actual=list(actual),
            expected=list(expected),
        )
