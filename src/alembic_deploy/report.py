"""Results are data: one :class:`DeployReport` per run, rendered to text for people, to JSON for
machines, and to GitHub annotations; the journal and the metrics read the same object."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .secrets import scrub


@dataclass
class RevisionResult:
    revision: str
    down_revisions: tuple[str, ...]
    description: str
    started_at: float
    duration: float
    status: str = "applied"  # applied | failed
    attempts: int = 1


@dataclass
class StepResult:
    name: str
    duration: float
    detail: str = ""


@dataclass
class DeployReport:
    command: str
    target: str = "head"
    outcome: str = "running"  # applied | noop | failed | interrupted | refused
    database: str | None = None
    backend: str | None = None
    from_revisions: tuple[str, ...] = ()
    to_revisions: tuple[str, ...] = ()
    applied: list[RevisionResult] = field(default_factory=list)
    steps: list[StepResult] = field(default_factory=list)
    db_wait_seconds: float = 0.0
    lock_wait_seconds: float = 0.0
    fast_path: bool = False
    journal_id: int | None = None
    environment: str | None = None
    warnings: list[str] = field(default_factory=list)
    error: dict[str, Any] | None = None
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None

    @property
    def duration_seconds(self) -> float:
        return (self.finished_at or time.time()) - self.started_at

    @property
    def exit_code(self) -> int:
        return int(self.error["exit_code"]) if self.error else 0

    def step(self, name: str, started: float, detail: str = "") -> None:
        self.steps.append(StepResult(name, time.monotonic() - started, detail))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["duration_seconds"] = round(self.duration_seconds, 4)
        data["exit_code"] = self.exit_code
        return data

    def to_json(self) -> str:
        return scrub(json.dumps(self.to_dict(), indent=2, default=str))

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
