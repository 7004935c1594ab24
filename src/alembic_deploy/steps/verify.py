"""After a run: read the version table on the tool's own connection and compare it with what alembic
reported leaving there."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..compat import rollback
from ..errors import MigrationFailed

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

    from ..alembic_env import AlembicProject, Motion, RunResult


def read_revisions(
    conn: Connection, version_table: str = "alembic_version", schema: str | None = None
) -> tuple[str, ...]:
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


def verify(actual: tuple[str, ...], result: RunResult, project: AlembicProject, motion: Motion) -> None:
    """The database must be exactly where alembic says it left it (:attr:`RunResult.heads`):
    whatever alembic computes for the target (a ``depends_on`` revision absorbing the head it
    depends on, nothing at all when the database is already past the target), and nothing else.

    When env.py never let alembic plan a run (it did not call ``context.run_migrations()``),
    there is nothing alembic reported: the database must then already have the target applied
    (an upgrade), or have none of the revisions the downgrade was to undo.
    """
    if result.configured:
        if sorted(actual) != sorted(result.heads):
            raise MigrationFailed(
                f"After migrating, the database is at {_listing(actual)} but alembic left the version "
                f"table at {_listing(result.heads)}. Something else changed the version table during "
                "the deploy, or env.py migrates a different database than the one alembic-deploy "
                "connects to; check env.py and DATABASE_URL.",
                actual=list(actual),
                expected=list(result.heads),
            )
    elif not motion.upgrading:
        left = [rev for rev, _ in project.steps(motion, actual)] if actual else []
        if left:
            raise MigrationFailed(
                f"env.py finished without running the migrations (it never called "
                f"context.run_migrations()), and the database at {_listing(actual)} still has "
                f"{', '.join(left)}. Check that env.py runs the migrations online as `alembic downgrade` would.",
                actual=list(actual),
            )
    elif not project.reached(motion.target, actual):
        raise MigrationFailed(
            f"env.py finished without running the migrations (it never called "
            f"context.run_migrations()), and the database at {_listing(actual)} has not reached "
            f"{motion.target!r}. Check that env.py runs the migrations online as `alembic upgrade` would.",
            actual=list(actual),
        )


def _listing(revisions: tuple[str, ...]) -> str:
    return ", ".join(revisions) or "<base>"
