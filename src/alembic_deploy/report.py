"""Results are data: one :class:`DeployReport` per run, rendered to text for people, to JSON for
machines, and to GitHub annotations; the journal and the metrics read the same object.

Every command's ``--json`` output is one document of the schema shipped in
``alembic_deploy/schema/output.schema.json`` (:data:`SCHEMA_VERSION`): ``schema_version``,
``command``, ``exit_code`` and ``error`` (null, or ``kind``, ``exit_code``, ``message``) in every
document, whatever the exit code, then the command's own fields. Times are ISO-8601 in UTC
(``2026-12-07T11:30:00.123456Z``), durations are seconds, and nothing is JSON inside a string.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final

from .errors import EXIT_OK
from .masking import scrub

if TYPE_CHECKING:
    from collections.abc import Mapping

#: Raised when a field is removed or changes meaning; fields may be added within a version.
SCHEMA_VERSION: Final = 1


def iso_time(value: float | datetime | str | None) -> str | None:
    """An epoch time or a datetime as ISO-8601 in UTC ending in ``Z``. A datetime without a zone is
    taken as UTC, as the journal writes its times in UTC (SQLite and MySQL store them without one)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        moment = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    else:
        moment = datetime.fromtimestamp(value, timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def document(command: str | None, exit_code: int = EXIT_OK, error: Mapping[str, Any] | None = None,
             **fields: Any) -> dict[str, Any]:
    """A ``--json`` document: the fields every command's output has, then ``fields``."""
    return {"schema_version": SCHEMA_VERSION, "command": command, "exit_code": exit_code,
            "error": dict(error) if error else None, **fields}


def to_json(doc: Mapping[str, Any]) -> str:
    # default=str: a value a driver returns in a type of its own (a Decimal) still prints.
    return scrub(json.dumps(doc, indent=2, default=str))


def journal_entry(row: Mapping[str, Any]) -> dict[str, Any]:
    """A journal row as data: times in ISO-8601 UTC, revision lists as lists, the JSON columns
    (``revisions``, ``progress``) parsed."""
    entry = dict(row)
    for key in ("started_at", "finished_at"):
        entry[key] = iso_time(entry.get(key))
    for key in ("from_revisions", "to_revisions"):
        entry[key] = [r for r in (entry.get(key) or "").split(",") if r]
    for key, empty in (("revisions", []), ("progress", None)):
        entry[key] = _parsed(entry.get(key), empty)
    return entry


def _parsed(text: Any, empty: Any) -> Any:
    if text is None or text == "":
        return empty
    try:
        return json.loads(text)
    except (TypeError, ValueError):
        return {"unparsed": str(text)}  # not written by this tool: shown, never dropped


@dataclass
class RevisionResult:
    revision: str
    down_revisions: tuple[str, ...]
    description: str
    started_at: float
    duration: float
    status: str = "applied"  # applied | rolled-back (went down with the failed revision's transaction)
    attempts: int = 1
    #: Statements the revision sent on the migrating connection (its version-table update
    #: included); None where not counted (a repair).
    statements: int | None = None


@dataclass
class FailedRevision:
    """The revision a run ended in: it raised (or the run was interrupted) after it started, so
    it is not among the applied ones."""

    revision: str
    down_revisions: tuple[str, ...]
    description: str
    started_at: float
    #: Seconds from its start until the run gave up on it.
    duration: float


@dataclass
class RetryResult:
    """One retry of a revision (or of the migration, before any revision began: ``revision``
    empty): why (``kind``: lock-timeout, connection-lost) and who blocked it, as the retry line
    named them ("" when nobody could be named)."""

    revision: str
    kind: str
    blockers: str = ""


@dataclass
class StepResult:
    name: str
    duration: float
    detail: str = ""


@dataclass
class DeployReport:
    command: str
    target: str = "head"
    outcome: str = "running"  # applied | rolled-back | noop | failed | interrupted | refused
    database: str | None = None
    backend: str | None = None
    from_revisions: tuple[str, ...] = ()
    to_revisions: tuple[str, ...] = ()
    applied: list[RevisionResult] = field(default_factory=list)
    failed_revision: FailedRevision | None = None
    steps: list[StepResult] = field(default_factory=list)
    db_wait_seconds: float = 0.0
    #: Seconds the health gate (--wait-ecs-service, --wait-healthy) waited, passed or not.
    health_wait_seconds: float = 0.0
    lock_wait_seconds: float = 0.0
    fast_path: bool = False
    journal_id: int | None = None
    environment: str | None = None
    #: The backup taken before migrating (backups.record.BackupRecord.to_dict), or attempted.
    backup: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)
    retries: list[RetryResult] = field(default_factory=list)
    error: dict[str, Any] | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at or time.time()) - self.started_at

    @property
    def exit_code(self) -> int:
        return int(self.error["exit_code"]) if self.error else EXIT_OK

    def step(self, name: str, started: float, detail: str = "") -> None:
        self.steps.append(StepResult(name, time.monotonic() - started, detail))

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document of the run (:func:`document`)."""
        data = asdict(self)
        command, error = data.pop("command"), data.pop("error")
        data["started_at"], data["finished_at"] = iso_time(self.started_at), iso_time(self.finished_at)
        for revision in [*data["applied"], *([data["failed_revision"]] if data["failed_revision"] else [])]:
            revision["started_at"] = iso_time(revision["started_at"])
        data["duration_seconds"] = round(self.duration_seconds, 4)
        return document(command, self.exit_code, error, **data)

    def to_json(self) -> str:
        return to_json(self.to_dict())

    def render_text(self) -> str:
        lines = [self.summary()] if self.outcome in ("noop", "applied", "rolled-back") else []
        if self.outcome in ("applied", "rolled-back"):
            lines.extend(self._revision_lines())
        for warning in self.warnings:
            lines.append(f"warning: {warning}")
        return scrub("\n".join(lines))

    def summary(self) -> str:
        """The first line of :meth:`render_text` (what the run did, in one line)."""
        frm = ", ".join(self.from_revisions) or "<base>"
        to = ", ".join(self.to_revisions) or "<base>"
        if self.outcome == "noop":
            line = f"Nothing to do: database already at {to} ({self.duration_seconds:.2f}s)."
        elif self.outcome == "applied":
            line = f"Migrated {frm} -> {to}: {len(self.applied)} revision(s) in {self.duration_seconds:.2f}s."
        elif self.outcome == "rolled-back":
            line = f"Rolled back {frm} -> {to} in {self.duration_seconds:.2f}s."
        else:
            line = f"{self.command}: {self.outcome}."
        return scrub(line)

    def _revision_lines(self) -> list[str]:
        width = max((len(r.revision) for r in self.applied), default=0)
        return [f"  {r.revision:<{width}}  {r.duration:7.3f}s  {r.description}" for r in self.applied]


@dataclass
class RollbackReport(DeployReport):
    """A ``rollback`` run: a :class:`DeployReport` (its ``applied`` are the revisions undone, each
    with status ``rolled-back``) with the plan it showed first and the deploy it undoes."""

    #: The journal id of the deploy it undoes (None: a target given as --to or --steps).
    undoes: int | None = None
    #: :meth:`~alembic_deploy.rollback.RollbackPlan.to_dict` (None: it failed before planning).
    plan: dict[str, Any] | None = None
    dry_run: bool = False


@dataclass
class StatusReport:
    """What ``status`` found: the database's revisions against the scripts', the last deploys, and
    what a deploy would find unfinished."""

    database: str
    backend: str
    current: tuple[str, ...]
    heads: tuple[str, ...]
    pending: list[tuple[str, str]]
    unknown: list[str]
    last_deploys: list[dict[str, Any]] = field(default_factory=list)
    #: A partly applied revision or a run that has not ended (steps.unfinished.describe_unfinished).
    unfinished: dict[str, Any] | None = None

    @property
    def up_to_date(self) -> bool:
        return not self.pending and not self.unknown

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document of ``status`` (:func:`document`)."""
        unfinished = self.unfinished
        # A partly applied revision: the exit code and error a deploy would give.
        refusal = unfinished if unfinished is not None and unfinished["exit_code"] != EXIT_OK else None
        return document(
            "status", database=self.database, backend=self.backend, current=list(self.current),
            heads=list(self.heads), pending=[{"revision": rev, "description": doc} for rev, doc in self.pending],
            unknown=list(self.unknown), up_to_date=self.up_to_date,
            last_deploys=[journal_entry(row) for row in self.last_deploys],
            exit_code=refusal["exit_code"] if refusal is not None else EXIT_OK,
            error=refusal["error"] if refusal is not None else None,
            unfinished=None if unfinished is None else {k: v for k, v in unfinished.items() if k != "error"},
        )

    def render_text(self) -> str:
        """``status`` for people: revisions, what is unfinished, pending revisions, last deploys."""
        lines = [
            f"database: {self.database} ({self.backend})",
            f"current:  {', '.join(self.current) or '<base>'}",
            f"heads:    {', '.join(self.heads)}",
        ]
        if self.unknown:
            lines.append(f"unknown:  {', '.join(self.unknown)} (the database is ahead of this code)")
        if self.unfinished is not None:
            u = self.unfinished
            lines.append(
                f"unfinished: revision {u['revision']} is partly applied (journal #{u['journal_id']}); a deploy "
                "refuses (exit 8) until `alembic-deploy repair` settles it" if u["state"] == "partial" else
                f"unfinished: journal #{u['journal_id']} crashed; the next deploy records it and migrates"
                if u["state"] == "crashed" else
                f"unfinished: journal #{u['journal_id']} has not recorded its end (a deploy running now)"
            )
        lines.append(f"pending:  {len(self.pending)}")
        lines.extend(f"  {rev}  {doc}" for rev, doc in self.pending)
        if self.last_deploys:
            lines.append("last deploys:")
            lines.append(history_table(self.last_deploys))
        return "\n".join(lines)


def history_table(rows: list[dict[str, Any]]) -> str:
    """Journal rows as a table for people, one line per run (and one under a run for the revision
    it failed or was interrupted in)."""
    head = ("id", "started", "outcome", "from", "to", "secs", "env", "host:pid", "git")
    body = [
        (
            str(r["id"]),
            str(r["started_at"])[:19],
            r["outcome"],
            r["from_revisions"] or "-",
            r["to_revisions"] or "-",
            f"{r['duration_seconds']:.2f}" if r["duration_seconds"] is not None else "-",
            r["environment"] or "-",
            f"{r['host']}:{r['pid']}",
            (r["git_sha"] or "-")[:10],
        )
        for r in rows
    ]
    widths = [max(len(x[i]) for x in (head, *body)) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(head, widths, strict=True)).rstrip()]
    for row, cells in zip(rows, body, strict=True):
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
        lines.extend(_ended_in(row))
    return scrub("\n".join(lines))


def _ended_in(row: dict[str, Any]) -> list[str]:
    """Under a run's line, the revision it failed (or was interrupted) in, from its journal row."""
    revisions = journal_entry({"revisions": row.get("revisions")})["revisions"]
    if not isinstance(revisions, list):
        return []
    lines = []
    for r in revisions:
        if isinstance(r, dict) and r.get("status") in ("failed", "interrupted"):
            about = f": {r['description']}" if r.get("description") else ""
            lines.append(f"  {r['status']} in {r.get('revision')} after {float(r.get('duration') or 0):.3f}s{about}")
    return lines
