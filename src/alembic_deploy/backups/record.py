"""The journal's record of backups: a table beside the journal (``<journal>_backups``), one row per
backup taken or attempted, created by the first backup (a journal made before backups existed
keeps working unchanged; ``alembic-deploy backups`` lists none until then).

Each row says where the backup is (``location``), how it was made (``method``), its ``size_bytes``
(None for snapshots and user commands that do not leave a local file), ``duration_seconds``, the
database's revision(s) at the time (``revisions``), the tables it holds (None: all), the journal
id of the deploy it protected (``journal_id``), and ``outcome`` (``ok`` or ``failed``, with
``error``). No password is ever in it: locations are paths, s3:// URLs or snapshot ARNs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import BigInteger, Column, DateTime, Float, Integer, MetaData, String, Table, Text, inspect, select
from sqlalchemy.exc import DBAPIError

from ..masking import scrub

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

#: PostgreSQL's identifier limit, which the table's name keeps within.
_MAX_NAME: Final = 63
SUFFIX: Final = "_backups"


def backups_table_name(journal: str) -> str:
    return journal[: _MAX_NAME - len(SUFFIX)] + SUFFIX


def backups_table(journal: str, metadata: MetaData | None = None) -> Table:
    return Table(
        backups_table_name(journal),
        metadata or MetaData(),
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("journal_id", Integer),
        Column("started_at", DateTime(timezone=True), nullable=False),
        Column("duration_seconds", Float),
        Column("environment", String(64)),
        Column("database_name", String(255)),
        Column("name", String(255), nullable=False),
        Column("method", String(32), nullable=False),
        Column("location", Text),
        Column("size_bytes", BigInteger),
        Column("revisions", String(1000)),
        Column("tables", Text),
        Column("reason", Text),
        Column("outcome", String(16), nullable=False),
        Column("error", Text),
    )


@dataclass
class BackupRecord:
    """One backup, as the report shows it and the backups table stores it."""

    name: str
    method: str
    started_at: float
    environment: str | None
    database_name: str
    revisions: tuple[str, ...]
    #: Tables it holds; None: the whole database.
    tables: tuple[str, ...] | None
    reason: str
    journal_id: int | None = None
    location: str | None = None
    size_bytes: int | None = None
    duration_seconds: float | None = None
    outcome: str = "ok"
    error: str | None = None
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        from ..report import iso_time

        data = asdict(self)
        data["started_at"] = iso_time(self.started_at)
        data["revisions"] = list(self.revisions)
        data["tables"] = list(self.tables) if self.tables is not None else None
        return data

    def row(self) -> dict[str, Any]:
        return {
            "journal_id": self.journal_id, "started_at": datetime.fromtimestamp(self.started_at, timezone.utc),
            "duration_seconds": self.duration_seconds, "environment": self.environment,
            "database_name": self.database_name[:255], "name": self.name, "method": self.method,
            "location": self.location, "size_bytes": self.size_bytes,
            "revisions": ",".join(self.revisions)[:1000], "tables": ",".join(self.tables) if self.tables else None,
            "reason": self.reason, "outcome": self.outcome,
            "error": scrub(self.error)[:4000] if self.error else None,
        }


class BackupLog:
    """Reads and writes the backups table on short connections of the tool's own engine."""

    def __init__(self, engine: Engine, journal_table: str) -> None:
        self.engine = engine
        self.table = backups_table(journal_table)

    def add(self, record: BackupRecord) -> str | None:
        """Record ``record`` (creating the table the first time); returns why it could not be
        recorded (a role that may not create or write tables), None once recorded."""
        try:
            with self.engine.begin() as conn:
                self.table.create(conn, checkfirst=True)
            with self.engine.begin() as conn:
                inserted = conn.execute(self.table.insert().values(**record.row())).inserted_primary_key
            record.id = int(inserted[0]) if inserted else None
        except DBAPIError as exc:
            return scrub(str(exc.orig if exc.orig is not None else exc).strip().splitlines()[0])
        return None

    def rows(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest rows first; none when no backup was ever recorded."""
        with self.engine.connect() as conn:
            if not inspect(conn).has_table(self.table.name):
                return []
            query = select(self.table).order_by(self.table.c.id.desc()).limit(limit)
            return [dict(r._mapping) for r in conn.execute(query)]

    def get(self, backup_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            if not inspect(conn).has_table(self.table.name):
                return None
            row = conn.execute(select(self.table).where(self.table.c.id == backup_id)).first()
            return dict(row._mapping) if row is not None else None


def entry(row: dict[str, Any]) -> dict[str, Any]:
    """A backups-table row as data: its time in ISO-8601 UTC, its lists as lists."""
    from ..report import iso_time

    data = dict(row)
    data["started_at"] = iso_time(data.get("started_at"))
    for key in ("revisions", "tables"):
        value = data.get(key)
        data[key] = [v for v in value.split(",") if v] if value else ([] if key == "revisions" else None)
    return data


def render_backups(rows: list[dict[str, Any]]) -> str:
    """:func:`entry` rows as a table for people, one line per backup."""
    head = ("id", "started", "outcome", "method", "size", "secs", "env", "revision", "run", "location")
    body = [
        (
            str(r["id"]), str(r["started_at"])[:19].replace("T", " "), r["outcome"], r["method"],
            str(r["size_bytes"]) if r["size_bytes"] is not None else "-",
            f"{r['duration_seconds']:.2f}" if r["duration_seconds"] is not None else "-",
            r["environment"] or "-", ",".join(r["revisions"]) or "<base>",
            f"#{r['journal_id']}" if r["journal_id"] is not None else "-",
            r["location"] or (r["error"] or "-")[:80],
        )
        for r in rows
    ]
    widths = [max(len(x[i]) for x in (head, *body)) for i in range(len(head))]
    return scrub("\n".join("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()
                           for cells in (head, *body)))
