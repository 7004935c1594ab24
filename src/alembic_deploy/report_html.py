"""``alembic-deploy report --format html``: one self-contained page, charts as inline SVG.

No script, no font, no stylesheet or image from anywhere: the page's Content-Security-Policy
(``default-src 'none'``) lets the browser load nothing but the file itself, so it opens the same
from a CI artifact, an e-mail or an air-gapped laptop. Per environment, a chart of each run's
duration over time (one ``circle`` per run with a duration, coloured by outcome); one chart of
the daily success rate (one line per environment, a ``circle`` per day with a finished run); the
figures table, the revision x environment table, the slowest revisions, retries and blockers, and
the latest failures. Each chart's ``svg`` carries ``data-points`` (how many points it draws) and
``data-environment``, so a test or a reader's script can check it without parsing the drawing.
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING, Final

from .report_text import seconds, when

if TYPE_CHECKING:
    from collections.abc import Sequence
    from datetime import datetime

    from .history_report import EnvironmentSummary, HistoryReport

WIDTH: Final = 760
HEIGHT: Final = 220
#: Left, right, top, bottom margins inside a chart (axis labels).
MARGIN: Final = (56, 16, 12, 28)
COLOURS: Final = {
    "applied": "#2e7d32", "noop": "#9e9e9e", "rolled-back": "#00838f", "failed": "#c62828",
    "interrupted": "#ef6c00", "crashed": "#6a1b9a", "refused": "#8d6e63", "running": "#1565c0",
}
#: One colour per environment line of the success-rate chart, in turn.
LINES: Final = ("#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#c62828", "#00838f", "#5d4037", "#455a64")

STYLE: Final = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#212121;max-width:1100px}
h1{font-size:20px}h2{font-size:16px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ddd;padding:3px 8px;text-align:left;
vertical-align:top}th{background:#f5f5f5}td.num{text-align:right}
.warn{background:#fff8e1;border-left:4px solid #f9a825;padding:6px 10px;margin:6px 0}
svg.chart{display:block;background:#fff;border:1px solid #eee;margin:6px 0}
.axis{stroke:#bdbdbd;stroke-width:1}.label{font-size:11px;fill:#616161}
.legend span{display:inline-block;margin-right:12px}.legend i{display:inline-block;width:10px;height:10px;
margin-right:4px;border-radius:5px}
td.applied{background:#e8f5e9}td.failed,td.interrupted{background:#ffebee}
pre{white-space:pre-wrap;margin:0;font-size:12px}
"""


def render_html(report: HistoryReport) -> str:
    title = f"Deploys from {when(report.since, minutes=True)} to {when(report.until, minutes=True)} UTC"
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>alembic-deploy report: {escape(title)}</title>", f"<style>{STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
    ]
    parts += [f'<p class="warn">{escape(w)}</p>' for w in report.warnings]
    parts += _figures(report)
    parts.append("<h2>Success rate per day</h2>")
    parts.append(_success_chart(report))
    parts.append("<h2>Duration of each run</h2>")
    parts.append(_legend(COLOURS))
    for env in report.environments:
        if env.state == "read":
            parts.append(f"<h3>{escape(env.name)}</h3>")
            parts.append(_duration_chart(env, report.since, report.until))
    parts += _revisions(report)
    parts += _failures(report)
    parts.append("</body></html>")
    # Every text was scrubbed where it was read (history_report): the page is not scrubbed whole again.
    return "\n".join(parts)


def _figures(report: HistoryReport) -> list[str]:
    rows = []
    for env in report.environments:
        f = env.to_dict()
        if env.state != "read":
            problem = escape(env.problem or env.state)
            rows.append(f'<tr><td>{escape(env.name)}</td><td colspan="8">{problem}</td></tr>')
            continue
        rate = "-" if f["success_rate"] is None else f"{f['success_rate']:.1%}"
        failures = ", ".join(f"{k} {v}" for k, v in sorted(f["failures"].items())) or "-"
        d = f["duration_seconds"]
        cells = [f"{f['deploys']}", rate, escape(failures), seconds(d["p50"]), seconds(d["p95"]), seconds(d["max"]),
                 seconds(f["lock_wait_p95_seconds"])]
        rows.append(f"<tr><td>{escape(env.name)}</td><td>{escape(env.backend or '-')}</td>"
                    + "".join(f'<td class="num">{c}</td>' for c in cells) + "</tr>")
    return ["<h2>Environments</h2>", ("<table><tr><th>environment</th><th>backend</th><th>deploys</th>"
            "<th>success</th><th>failures</th><th>p50</th><th>p95</th><th>max</th><th>lock wait p95</th></tr>"),
            *rows, "</table>"]


def _legend(colours: dict[str, str]) -> str:
    return '<p class="legend">' + "".join(
        f'<span><i style="background:{c}"></i>{escape(name)}</span>' for name, c in colours.items()) + "</p>"


def _x(moment: datetime, since: datetime, until: datetime) -> float:
    span = (until - since).total_seconds() or 1.0
    left, right = MARGIN[0], WIDTH - MARGIN[1]
    return left + (right - left) * min(max((moment - since).total_seconds() / span, 0.0), 1.0)


def _y(value: float, top_value: float) -> float:
    top, bottom = MARGIN[2], HEIGHT - MARGIN[3]
    return bottom - (bottom - top) * (value / top_value if top_value else 0.0)


def _axes(since: datetime, until: datetime, top_value: float, unit: str) -> list[str]:
    left, right, top, bottom = MARGIN[0], WIDTH - MARGIN[1], MARGIN[2], HEIGHT - MARGIN[3]
    label = f"{top_value:.0%}" if unit == "%" else f"{top_value:.3g}s"
    return [
        f'<line class="axis" x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}"/>',
        f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{bottom}"/>',
        f'<text class="label" x="{left - 4}" y="{top + 10}" text-anchor="end">{label}</text>',
        f'<text class="label" x="{left - 4}" y="{bottom}" text-anchor="end">0</text>',
        f'<text class="label" x="{left}" y="{HEIGHT - 8}">{when(since)[:10]}</text>',
        f'<text class="label" x="{right}" y="{HEIGHT - 8}" text-anchor="end">{when(until)[:10]}</text>',
    ]


def _svg(kind: str, points: int, body: Sequence[str], environment: str | None = None) -> str:
    env = f' data-environment="{escape(environment)}"' if environment is not None else ""
    return (f'<svg class="chart {kind}" data-points="{points}"{env} width="{WIDTH}" height="{HEIGHT}" '
            f'viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg" role="img">'
            + "".join(body) + "</svg>")


def _duration_chart(env: EnvironmentSummary, since: datetime, until: datetime) -> str:
    timed = [r for r in env.runs if r.duration is not None]
    top_value = max((r.duration for r in timed if r.duration is not None), default=0.0) or 1.0
    body = _axes(since, until, top_value, "s")
    shown = {outcome: (escape(outcome), COLOURS.get(outcome, "#000")) for outcome in env.outcomes}
    for run in timed:
        assert run.duration is not None
        outcome, colour = shown[run.outcome]
        body.append(
            f'<circle class="point {outcome}" cx="{_x(run.started_at, since, until):.1f}" '
            f'cy="{_y(run.duration, top_value):.1f}" r="3" fill="{colour}"><title>#{run.journal_id} '
            f'{outcome} {run.duration:.3f}s</title></circle>')
    return _svg("duration", len(timed), body, env.name)


def _success_chart(report: HistoryReport) -> str:
    from datetime import datetime, timedelta, timezone

    body = _axes(report.since, report.until, 1.0, "%")
    total = 0
    legend = {}
    for i, env in enumerate(e for e in report.environments if e.state == "read"):
        colour = LINES[i % len(LINES)]
        legend[env.name] = colour
        days = env.daily
        total += len(days)
        coords = [(_x(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc) + timedelta(hours=12),
                      report.since, report.until), _y(ok / n, 1.0), day, ok, n) for day, ok, n in days]
        group = [f'<g class="environment" data-environment="{escape(env.name)}" data-points="{len(days)}">']
        if len(coords) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, *_ in coords)
            group.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="1.5"/>')
        group += [f'<circle class="point" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>{escape(env.name)} '
                  f'{day}: {ok}/{n}</title></circle>' for x, y, day, ok, n in coords]
        group.append("</g>")
        body += group
    return _legend(legend) + _svg("success-rate", total, body)


def _revisions(report: HistoryReport) -> list[str]:
    names = [e.name for e in report.environments if e.state == "read"]
    out = ["<h2>Revisions by environment</h2>",
           '<table class="revisions"><tr><th>revision</th><th>description</th>'
           + "".join(f"<th>{escape(n)}</th>" for n in names) + "</tr>"]
    for rev in report.revisions:
        cells = []
        for name in names:
            done = rev.first_applied(name)
            tried = [a for a in rev.runs if a.environment == name]
            if done is not None:
                cells.append(f'<td class="applied">{when(done.at, minutes=True)}<br>{done.duration:.3f}s</td>')
            elif tried:
                cells.append(f'<td class="{escape(tried[-1].status)}">{escape(tried[-1].status)}</td>')
            else:
                cells.append("<td>-</td>")
        out.append(f"<tr><td>{escape(rev.revision)}</td><td>{escape(rev.description)}</td>{''.join(cells)}</tr>")
    out.append("</table>")
    slowest = report.slowest()
    if slowest:
        out += ["<h2>Slowest revisions</h2>",
                "<table><tr><th>revision</th><th>max</th><th>where</th><th>when</th></tr>"]
        out += [f"<tr><td>{escape(r.revision)}</td><td class=\"num\">{seconds(r.slowest.duration)}</td>"
                f"<td>{escape(r.slowest.environment)}</td><td>{when(r.slowest.at)}</td></tr>"
                for r in slowest if r.slowest is not None]
        out.append("</table>")
    retried = [r for r in report.revisions if r.retries]
    if retried:
        out += ["<h2>Retries and blockers</h2>", "<table><tr><th>revision</th><th>retries</th><th>blockers</th></tr>"]
        out += [f"<tr><td>{escape(r.revision)}</td><td class=\"num\">{r.retries}</td><td>"
                + "<br>".join(escape(b) for b in r.blockers) + "</td></tr>" for r in retried]
        out.append("</table>")
    return out


def _failures(report: HistoryReport) -> list[str]:
    if not report.failures:
        return []
    out = ["<h2>Latest failures</h2>",
           ("<table><tr><th>when</th><th>environment</th><th>run</th><th>outcome</th><th>revision</th>"
           "<th>message</th></tr>")]
    out += [f"<tr><td>{when(f.at)}</td><td>{escape(f.environment)}</td><td>#{f.journal_id}</td>"
            f"<td>{escape(f.outcome)}</td><td>{escape(f.revision or '-')}</td>"
            f"<td><pre>{escape(f.message)}</pre></td></tr>"
            for f in report.failures]
    out.append("</table>")
    return out
