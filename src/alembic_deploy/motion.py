"""Which way a migrating run goes (no Alembic import: the CLI's fast path loads this)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Motion:
    """Where a migrating run takes the database: ``upgrade`` to alembic's ``target``, or
    ``downgrade`` to it (as ``alembic downgrade TARGET``) or, with ``undo``, undoing exactly those
    revisions (in the order alembic would undo them). ``expected_from``: the version table the run
    was planned from; a database found elsewhere under the lock refuses (it moved since)."""

    direction: str = "upgrade"
    target: str = "head"
    undo: tuple[str, ...] = ()
    expected_from: tuple[str, ...] | None = None

    @property
    def upgrading(self) -> bool:
        return self.direction == "upgrade"
