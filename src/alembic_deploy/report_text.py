"""``alembic-deploy report`` for a terminal: the environments' figures, the revision x environment
table, the slowest revisions, retries and blockers, the latest failures, then the warnings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .masking import scrub

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from .history_report import HistoryReport


def when(moment: datetime, minutes: bool = False) -> str:
    """A moment for people: UTC, to the second (or the minute)."""
    return moment.strftime("%Y-%m-%d %H:%M" if minutes else "%Y-%m-%dT%H:%M:%SZ")


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


def table(head: Sequence[str], body: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in (head, *body)) for i in range(len(head))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in (head, *body)]


def render_text(report: HistoryReport) -> str:
    lines = [(f"Deploys from {when(report.since)} to {when(report.until)}, "
             f"{len(report.environments)} environment(s)"), ""]
    body = []
    for env in report.environments:
        figures = env.to_dict()
        if env.state != "read":
            body.append((env.name, env.backend or "-", "-", "-", "-", "-", "-", "-", "-", env.state))
            continue
        rate = figures["success_rate"]
        failures = ", ".join(f"{k} {v}" for k, v in sorted(figures["failures"].items())) or "-"
        durations = figures["duration_seconds"]
        body.append((env.name, env.backend or "-", str(figures["deploys"]),
                     "-" if rate is None else f"{rate:.0%}", failures, seconds(durations["p50"]),
                     seconds(durations["p95"]), seconds(durations["max"]), seconds(figures["lock_wait_p95_seconds"]),
                     ""))
    lines += table(("environment", "backend", "deploys", "success", "failures", "p50", "p95", "max",
                    "lock wait p95", ""), body)
    names = [e.name for e in report.environments if e.state == "read"]
    if report.revisions:
        lines += ["", "Revisions (first applied in each environment: when, how long):"]
        rows = []
        for rev in report.revisions:
            cells = []
            for name in names:
                done = rev.first_applied(name)
                tried = [a for a in rev.runs if a.environment == name]
                cells.append(f"{when(done.at, minutes=True)} {done.duration:.2f}s" if done is not None
                             else f"{tried[-1].status}" if tried else "-")
            rows.append((rev.revision, *cells))
        lines += ["  " + line for line in table(("revision", *names), rows)]
    slowest = report.slowest()
    if slowest:
        lines += ["", "Slowest revisions:"]
        lines += ["  " + line for line in table(
            ("revision", "max", "where", "when"),
            [(r.revision, seconds(r.slowest.duration), r.slowest.environment, when(r.slowest.at))
             for r in slowest if r.slowest is not None])]
    retried = [r for r in report.revisions if r.retries]
    if retried:
        lines += ["", "Retries and blockers:"]
        for rev in retried:
            lines.append(f"  {rev.revision}: {rev.retries} retr{'y' if rev.retries == 1 else 'ies'}")
            lines += [f"    {blocker}" for blocker in rev.blockers]
    if report.failures:
        lines += ["", "Latest failures:"]
        for failure in report.failures:
            where = f" in {failure.revision}" if failure.revision else ""
            lines.append(f"  {when(failure.at)} {failure.environment} #{failure.journal_id} "
                         f"{failure.outcome}{where}")
            if failure.message:
                lines.append(f"    {failure.message}")
    if report.warnings:
        lines += [""] + [f"warning: {w}" for w in report.warnings]
    return scrub("\n".join(lines))
