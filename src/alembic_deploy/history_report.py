"""``alembic-deploy report``: the deploy journals of one or several environments over a window,
summed up as data (:class:`HistoryReport`) that renders to text, JSON and HTML
(:mod:`.report_html`).

Where the journals come from (:func:`sources`): ``--database-url`` (repeatable, ``NAME=URL`` to
name the environment) and ``--database-secret`` (``NAME=SECRET``: the login in AWS Secrets
Manager, as for every command), else every environment of the policy with a ``database-url`` or
``database-url-env`` (``[tool.alembic-deploy.env.NAME]``, see :mod:`.policy`), else the project's
own database (``DATABASE_URL``, then the ini's ``sqlalchemy.url``). Each is read once, through
:meth:`.journal.Journal.since`, on one connection attempt: an environment that cannot be read is a
warning in the report, never a failed report, and a database without a journal table is
"never deployed with alembic-deploy". URLs are never shown; every text taken from a journal (error
messages, blockers) is scrubbed again (:func:`.masking.scrub`).

What counts: every journal row that started within the window. A run ``succeeded`` when its outcome
is ``applied``, ``noop`` or ``rolled-back`` (a repair that did what it was asked), ``failed`` when
``failed``, ``interrupted``, ``crashed`` or ``refused``; ``running`` rows (a deploy in flight, or one
whose crash no run has recorded yet) are counted apart and left out of the success rate. Durations
are the runs' own (a crashed run has none); percentiles interpolate linearly between the two nearest
values (numpy's default), so with one run p50 = p95 = max.
"""

from __future__ import annotations

import functools
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any, Final

from .errors import EXIT_OK, ConfigError, DatabaseUnreachable
from .masking import mask_url, register_url, scrub
from .report import document, iso_time

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from .settings import Settings

#: Outcomes of a run that did what it was asked, and of one that did not.
SUCCEEDED: Final = ("applied", "noop", "rolled-back")
FAILED: Final = ("failed", "interrupted", "crashed", "refused")
#: What an environment's journal came to.
READ: Final = "read"
NEVER_DEPLOYED: Final = "never-deployed"
UNREACHABLE: Final = "unreachable"
NO_DATABASE: Final = "no-database"
#: ``--since``: a whole number and a unit (hours, days, weeks).
SINCE_UNITS: Final = {"h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
LONGEST_WINDOW: Final = timedelta(days=100 * 365)
_SINCE: Final = re.compile(r"\s*(\d{1,6})\s*([hdw])\s*\Z", re.IGNORECASE)
#: The journal columns a report reads.
COLUMNS: Final = ("id", "started_at", "duration_seconds", "command", "outcome", "revisions", "error", "environment",
                  "lock_wait_seconds")
#: How many of the slowest revisions and of the latest failures the report lists.
SLOWEST: Final = 10
LATEST_FAILURES: Final = 10
#: Journals read at the same time, at most.
READERS: Final = 8
#: Characters of a failure's message, and of a driver's error for an unreachable environment, kept.
MESSAGE_CHARS: Final = 600
PROBLEM_CHARS: Final = 300


def parse_since(text: str) -> timedelta:
    """``30d``, ``12h``, ``2w`` as a timedelta; anything else is a :class:`ConfigError`."""
    found = _SINCE.match(text)
    window = int(found[1]) * SINCE_UNITS[found[2].lower()] if found is not None else None
    if window is None or not timedelta(0) < window <= LONGEST_WINDOW:
        raise ConfigError(
            f"--since takes a whole number of hours, days or weeks up to {LONGEST_WINDOW.days // 365} years, such "
            f"as 12h, 30d or 2w; got {text!r}."
        )
    return window


@dataclass(frozen=True)
class Source:
    """One journal to read: the environment it belongs to (None: named after what its rows
    record, else its database), and its URL (never shown), or why there is none."""

    name: str | None
    url: str | None = field(default=None, repr=False)
    problem: str | None = None


def sources(settings: Settings, urls: Sequence[str] = (), environments: Sequence[str] = (),
            secrets: Sequence[str] = ()) -> list[Source]:
    """The journals a report reads (see the module docstring): ``urls`` and ``secrets`` (AWS
    Secrets Manager secrets holding a login, ``[NAME=]SECRET``), else the policy's environments,
    ``environments`` keeping only those of that name (each must have a policy), else the
    project's own database."""
    if urls or secrets:
        if environments:
            raise ConfigError("Give either --database-url / --database-secret or --env, not both: --env picks "
                              "environments of the policy in pyproject.toml, each with its own database-url.")
        return [_named_url(text) for text in urls] + [_secret_source(settings, text) for text in secrets]
    policies = {p.name: p for p in settings.policies}
    unknown = [name for name in environments if name not in policies]
    if unknown:
        known = ", ".join(policies) or "none"
        raise ConfigError(f"--env {', '.join(unknown)}: no [tool.alembic-deploy.env.NAME] policy of that name "
                          f"(policies: {known}). Add a policy with database-url or database-url-env, or pass "
                          "--database-url.")
    chosen = [policies[n] for n in environments] if environments else [
        p for p in _in_order(settings.policies, settings.promotion_order)
        if p.database_url is not None or p.database_url_env is not None]
    if chosen:
        return [_policy_source(p.name, p.database_url, p.database_url_env) for p in chosen]
    from .database_url import resolve_url
    from .project import read_ini

    return [Source(settings.env, resolve_url(settings, read_ini(settings.config_path, settings.name)))]


def _in_order(policies: Iterable[Any], order: Sequence[str]) -> list[Any]:
    """Policies in promotion order (lowest first), then the others as the file lists them."""
    rank = {name: i for i, name in enumerate(order)}
    return sorted(policies, key=lambda p: rank.get(p.name, len(rank)))


def _named_url(text: str) -> Source:
    """``NAME=URL`` or a bare URL (a URL's own ``=`` comes after its ``://``)."""
    name, sep, rest = text.partition("=")
    if sep and "://" not in name and "/" not in name and ":" not in name:
        register_url(rest)
        return Source(name.strip() or None, rest)
    register_url(text)
    return Source(None, text)


def _secret_source(settings: Settings, text: str) -> Source:
    """``[NAME=]SECRET``: the URL the secret's login makes (read again at every connect, as for
    every command: :mod:`.integrations.aws.login`), or why it cannot be read."""
    from .errors import AlembicDeployError
    from .integrations.aws.login import resolve

    name, sep, secret = text.partition("=")
    if not sep or not name or ":" in name or "/" in name:
        name, secret = "", text
    try:
        return Source(name or None, resolve(settings.replace(database_secret=secret, rds_iam=False), None))
    except AlembicDeployError as exc:
        return Source(name or secret, problem=_short(exc.message))


def _policy_source(name: str, url: str | None, url_env: str | None) -> Source:
    import os

    if url_env is not None:
        url = os.environ.get(url_env) or None
        if url is None:
            return Source(name, problem=f"${url_env} (its policy's database-url-env) is not set")
    if url is None:
        return Source(name, problem="its policy names no database-url or database-url-env")
    register_url(url)
    return Source(name, url)


@dataclass
class EnvironmentJournal:
    """What one source gave: its rows within the window, or why there are none."""

    name: str
    state: str
    database: str | None = None
    backend: str | None = None
    problem: str | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)


def _shown(name: str) -> str:
    """An environment's name as the report shows it: scrubbed, and a newline or escape written as
    ``\\n`` / ``\\x1b`` (a name from the command line must not forge a line of the report)."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in scrub(name))


def read_source(source: Source, journal_table: str, since: datetime) -> EnvironmentJournal:
    """One connection attempt to ``source``'s database and its journal rows since ``since``; a
    database that cannot be reached or read is ``unreachable`` (its driver's error, scrubbed), a
    SQLite file that is not there too (reading must not create it)."""
    if source.url is None:
        return EnvironmentJournal(_shown(source.name or "?"), NO_DATABASE, problem=source.problem)
    from sqlalchemy.exc import DBAPIError

    from .database import make_engine
    from .journal import Journal

    database = mask_url(source.url)
    try:
        engine, backend = make_engine(source.url)
    except ConfigError as exc:
        return EnvironmentJournal(_shown(source.name or database), UNREACHABLE, database, problem=_short(exc.message))
    database = mask_url(engine.url.render_as_string(hide_password=True))
    found = EnvironmentJournal(_shown(source.name or _database_label(engine.url)), UNREACHABLE, database, backend.name)
    try:
        missing = backend.missing_database(engine)
        if missing is not None:
            found.problem = missing
            return found
        rows = Journal(engine, journal_table, backend=backend).since(since, COLUMNS)
    except (DBAPIError, OSError) as exc:
        found.problem = _short(backend.error_text(exc))
        return found
    except ConfigError as exc:  # a table of the journal's name that something else made
        found.problem = _short(exc.message)
        return found
    finally:
        engine.dispose()
    if rows is None:
        found.state = NEVER_DEPLOYED
        found.problem = f"never deployed with alembic-deploy (no {journal_table} table)"
        return found
    found.state, found.rows = READ, rows
    if source.name is None:
        recorded = {r["environment"] for r in rows}
        if len(recorded) == 1 and None not in recorded:
            found.name = scrub(str(recorded.pop()))
    return found


def _database_label(url: Any) -> str:
    """An unnamed environment's label: host/database (a SQLite file's name)."""
    database = str(url.database or "")
    if url.host:
        return f"{url.host}/{database}"
    return database.rsplit("/", 1)[-1] or str(url.drivername)


def _short(text: str) -> str:
    return " ".join(scrub(text).split())[:PROBLEM_CHARS]


# -- the figures ------------------------------------------------------------------------------------
def percentile(values: Sequence[float], share: float) -> float | None:
    """The ``share`` (0..1) percentile of ``values``, interpolated linearly; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    at = (len(ordered) - 1) * share
    low = int(at)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (at - low)


def _moment(value: Any) -> datetime | None:
    """A journal time as an aware UTC datetime (SQLite and MySQL return it without a zone: UTC)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)


def _entries(row: dict[str, Any]) -> list[dict[str, Any]]:
    """The row's ``revisions`` column, parsed; [] for anything this tool did not write."""
    text = row.get("revisions")
    if not text or text == "[]":  # most runs (no-ops) apply nothing: no parse
        return []
    try:
        entries = json.loads(text)
    except (TypeError, ValueError):
        return []
    return [e for e in entries if isinstance(e, dict) and isinstance(e.get("revision"), str)] \
        if isinstance(entries, list) else []


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


@dataclass
class Run:
    """One journal row, as the report uses it."""

    environment: str
    journal_id: int
    started_at: datetime
    outcome: str
    command: str
    duration: float | None
    lock_wait: float | None
    error: str | None
    entries: list[dict[str, Any]]

    def to_point(self) -> dict[str, Any]:
        return {"journal_id": self.journal_id, "started_at": iso_time(self.started_at), "outcome": self.outcome,
                "duration_seconds": _round(self.duration)}


@dataclass
class EnvironmentSummary:
    """One environment's figures over the window."""

    name: str
    state: str
    database: str | None
    backend: str | None
    problem: str | None
    runs: list[Run] = field(default_factory=list)

    @functools.cached_property
    def outcomes(self) -> dict[str, int]:
        """Runs by outcome (computed once: read when every run is in)."""
        return dict(Counter(r.outcome for r in self.runs))

    @property
    def finished(self) -> list[Run]:
        return [r for r in self.runs if r.outcome != "running"]

    @property
    def success_rate(self) -> float | None:
        finished = self.finished
        if not finished:
            return None
        return sum(r.outcome in SUCCEEDED for r in finished) / len(finished)

    @property
    def failures(self) -> dict[str, int]:
        return {k: v for k, v in self.outcomes.items() if k in FAILED}

    def durations(self) -> list[float]:
        return [r.duration for r in self.runs if r.duration is not None]

    @functools.cached_property
    def daily(self) -> list[tuple[str, int, int]]:
        """(UTC day, runs that succeeded, finished runs) for each day with a finished run."""
        days: dict[str, list[int]] = {}
        for run in self.finished:
            day = days.setdefault(run.started_at.date().isoformat(), [0, 0])
            day[0] += run.outcome in SUCCEEDED
            day[1] += 1
        return [(day, ok, total) for day, (ok, total) in sorted(days.items())]

    def to_dict(self) -> dict[str, Any]:
        """Its figures (computed once: call when every run is in)."""
        return self.figures

    @functools.cached_property
    def figures(self) -> dict[str, Any]:
        durations = self.durations()
        waits = [r.lock_wait for r in self.runs if r.lock_wait is not None]
        rate = self.success_rate
        return {
            "environment": self.name, "state": self.state, "database": self.database, "backend": self.backend,
            "problem": self.problem, "deploys": len(self.runs), "running": self.outcomes.get("running", 0),
            "outcomes": self.outcomes, "failures": self.failures,
            "success_rate": None if rate is None else round(rate, 4),
            "duration_seconds": {"p50": _round(percentile(durations, 0.5)), "p95": _round(percentile(durations, 0.95)),
                                 "max": _round(max(durations, default=None))},
            "lock_wait_p95_seconds": _round(percentile(waits, 0.95)),
            "daily": [{"day": day, "succeeded": ok, "finished": total} for day, ok, total in self.daily],
        }


@dataclass
class Application:
    """A revision applied (or tried) in one environment by one run."""

    environment: str
    journal_id: int
    at: datetime
    duration: float
    status: str
    attempts: int
    blockers: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "journal_id": self.journal_id, "at": iso_time(self.at),
                "duration_seconds": _round(self.duration), "status": self.status, "attempts": self.attempts}


@dataclass
class RevisionSummary:
    """Where one revision ran over the window: applied, failed or interrupted, per environment."""

    revision: str
    description: str
    runs: list[Application] = field(default_factory=list)

    @property
    def applied(self) -> list[Application]:
        return [a for a in self.runs if a.status == "applied"]

    @property
    def slowest(self) -> Application | None:
        return max(self.applied, key=lambda a: a.duration, default=None)

    @property
    def retries(self) -> int:
        return sum(a.attempts - 1 for a in self.runs)

    @property
    def blockers(self) -> list[str]:
        seen: dict[str, None] = {}
        for a in self.runs:
            seen.update(dict.fromkeys(a.blockers))
        return list(seen)

    def first_applied(self, environment: str) -> Application | None:
        return next((a for a in self.applied if a.environment == environment), None)

    def to_dict(self) -> dict[str, Any]:
        slowest = self.slowest
        return {
            "revision": self.revision, "description": self.description,
            "applied": [a.to_dict() for a in self.applied],
            "failed": [a.to_dict() for a in self.runs if a.status != "applied"],
            "max_duration_seconds": None if slowest is None else _round(slowest.duration),
            "retries": self.retries, "blockers": self.blockers,
        }


@dataclass
class Failure:
    """A run that failed, with its message (scrubbed) and the revision it ended in."""

    environment: str
    journal_id: int
    at: datetime
    outcome: str
    revision: str | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"environment": self.environment, "journal_id": self.journal_id, "at": iso_time(self.at),
                "outcome": self.outcome, "revision": self.revision, "message": self.message}


@dataclass
class HistoryReport:
    """The report: its window, one summary per environment, the revisions, the latest failures."""

    since: datetime
    until: datetime
    environments: list[EnvironmentSummary]
    revisions: list[RevisionSummary]
    failures: list[Failure]

    @property
    def warnings(self) -> list[str]:
        """One line per environment whose journal could not be read (or was never written)."""
        return [f"{e.name}: {e.problem}" if e.state == NEVER_DEPLOYED else f"{e.name}: {e.state}: {e.problem}"
                for e in self.environments if e.state != READ]

    @property
    def readable(self) -> bool:
        """Could at least one environment be read (a journal, or the proof there is none)?"""
        return any(e.state in (READ, NEVER_DEPLOYED) for e in self.environments)

    def error(self) -> DatabaseUnreachable | None:
        """Exit 3 when not one environment could be read: the report then says nothing but why."""
        if self.readable or not self.environments:
            return None
        return DatabaseUnreachable(
            f"No journal could be read: {'; '.join(w.rstrip('.') for w in self.warnings)}. Check that the databases "
            "are up and their URLs (--database-url, --database-secret, or database-url / database-url-env in the "
            "environments' policies) are right, then run the report again.")

    def slowest(self, count: int = SLOWEST) -> list[RevisionSummary]:
        timed = [r for r in self.revisions if r.slowest is not None]
        return sorted(timed, key=lambda r: -r.slowest.duration)[:count]  # type: ignore[union-attr]

    def to_dict(self) -> dict[str, Any]:
        """The ``--json`` document of ``report``."""
        error = self.error()
        return document(
            "report", error.exit_code if error is not None else EXIT_OK, error.to_dict() if error else None,
            since=iso_time(self.since), until=iso_time(self.until),
            environments=[e.to_dict() for e in self.environments],
            revisions=[r.to_dict() for r in self.revisions],
            slowest_revisions=[{"revision": r.revision, "max_duration_seconds": _round(r.slowest.duration),
                                "environment": r.slowest.environment, "at": iso_time(r.slowest.at)}
                               for r in self.slowest() if r.slowest is not None],
            latest_failures=[f.to_dict() for f in self.failures],
            warnings=self.warnings,
        )

    def to_json(self) -> str:
        """Every text in it was scrubbed where it was read (messages, blockers, descriptions, problems;
        URLs masked), so the document is not scrubbed whole again: 10,000 runs make megabytes."""
        return json.dumps(self.to_dict(), indent=2, default=str)

    def render_text(self) -> str:
        from .report_text import render_text

        return render_text(self)

    def render_html(self) -> str:
        from .report_html import render_html

        return render_html(self)


def summarize(journals: Sequence[EnvironmentJournal], since: datetime, until: datetime) -> HistoryReport:
    """The report of ``journals`` (their rows within [since, until])."""
    environments: list[EnvironmentSummary] = []
    revisions: dict[str, RevisionSummary] = {}
    failures: list[Failure] = []
    for journal in journals:
        summary = EnvironmentSummary(journal.name, journal.state, journal.database, journal.backend, journal.problem)
        environments.append(summary)
        for row in journal.rows:
            started = _moment(row["started_at"])
            if started is None:
                continue
            run = Run(journal.name, int(row["id"]), started, str(row["outcome"]), str(row["command"]),
                      row["duration_seconds"], row["lock_wait_seconds"], row["error"], _entries(row))
            summary.runs.append(run)
            ended_in = None
            for entry in run.entries:
                status = str(entry.get("status") or "")
                if status in ("failed", "interrupted"):
                    ended_in = entry["revision"]
                revision = revisions.get(entry["revision"])
                if revision is None:
                    revision = revisions[entry["revision"]] = RevisionSummary(entry["revision"], "")
                if entry.get("description") and not revision.description:
                    revision.description = scrub(str(entry["description"]))
                revision.runs.append(Application(
                    journal.name, run.journal_id, started, float(entry.get("duration") or 0.0), status,
                    int(entry.get("attempts") or 1), [scrub(str(b)) for b in entry.get("blockers") or ()]))
            if run.outcome in FAILED:
                failures.append(Failure(journal.name, run.journal_id, started, run.outcome, ended_in,
                                        _message(run.error)))
    # Newest first; runs of one second (MySQL's DATETIME keeps whole seconds) in journal order.
    failures.sort(key=lambda f: (f.at, f.journal_id), reverse=True)
    ordered = sorted(revisions.values(), key=lambda r: min(a.at for a in r.runs))
    return HistoryReport(since, until, environments, ordered, failures[:LATEST_FAILURES])


def _message(error: str | None) -> str:
    if not error:
        return ""
    text = " ".join(scrub(error).split())
    return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 1] + "\u2026"


def build(settings: Settings, found: Sequence[Source], window: timedelta,
          now: datetime | None = None) -> HistoryReport:
    """Read every source's journal over the last ``window`` and sum them up. The sources are read
    at the same time, each on a thread of its own: an environment whose host does not answer costs
    its connect timeout once, not once more for each environment after it. (Their URLs' passwords
    were registered for scrubbing by :func:`sources`, before any thread starts.)"""
    until = now or datetime.now(timezone.utc)
    since = until - window
    if len(found) > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(len(found), READERS)) as pool:
            journals = list(pool.map(lambda source: read_source(source, settings.journal_table, since), found))
    else:
        journals = [read_source(source, settings.journal_table, since) for source in found]
    seen: Counter[str] = Counter()
    for journal in journals:  # two unnamed databases of one environment stay two columns
        seen[journal.name] += 1
        if seen[journal.name] > 1:
            journal.name = f"{journal.name} ({seen[journal.name]})"
    return summarize(journals, since, until)
