"""``alembic-deploy report`` over a journal of 10,000 runs: how long reading and rendering take.

Run by hand (SQLite, no server needed)::

    .venv/bin/python benchmarks/bench_report.py [--runs-in-journal 10000] [--repeat 7] [--database-url URL]

The journal is generated (not filled by real deploys, which would take hours): a SQLite file (or
the empty database ``--database-url`` names) gets the journal table and N rows spread over the
last 30 days, in the proportions of a busy service: mostly no-ops, applied runs of one to three
revisions (some retried, with a blocker named), and a few failed, interrupted, crashed and
refused runs with error messages. Then, ``--repeat`` times each:

* ``api``: :func:`alembic_deploy.api.report` (read the journal, sum it up) and each rendering
  (text, JSON, HTML) in this process;
* ``cli``: ``alembic-deploy report --format FORMAT -o FILE`` as a subprocess (start-up included),
  wall and CPU (user + system) seconds; ``report --help`` for the start-up alone.

Every subprocess may write bytecode caches (``PYTHONDONTWRITEBYTECODE`` removed, as bench_upgrade
does), as an installed package has them. Printed: min / median / max seconds of each, and whether
the median HTML CLI run is under the 2 s target. There is no plain-alembic counterpart: alembic
keeps no history of its runs to report on (its version table holds only the current revision), so
nothing is measured beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

TARGET_SECONDS = 2.0
OUTCOMES = (("noop", 70), ("applied", 22), ("failed", 3), ("interrupted", 2), ("crashed", 1), ("refused", 2))


def fill(url: str, count: int, seed: int = 7) -> None:
    """``count`` generated journal rows over the last 30 days, in one transaction."""
    from sqlalchemy import create_engine

    from alembic_deploy.journal import journal_table

    rng = random.Random(seed)
    table = journal_table("alembic_deploy_history")
    now = datetime.now(timezone.utc)
    names, weights = zip(*OUTCOMES, strict=True)
    revision = 0
    rows = []
    for i in range(count):
        started = now - timedelta(days=30) + timedelta(seconds=30 * 86400 * (i + 0.5) / count)
        outcome = rng.choices(names, weights)[0]
        entries = []
        if outcome in ("applied", "failed", "interrupted"):
            for _ in range(rng.randint(1, 3)):
                revision += 1
                entry = {"revision": f"r{revision:05d}", "down_revisions": [f"r{revision - 1:05d}"],
                         "description": f"generated revision {revision}", "duration": round(rng.expovariate(2), 4),
                         "status": "applied"}
                if rng.random() < 0.05:
                    entry.update(attempts=2, blockers=[f"blocked by pid {rng.randint(100, 9999)} (SELECT ...)"])
                entries.append(entry)
            if outcome != "applied":
                entries[-1]["status"] = outcome
                revision -= 1  # tried again by a later run
        duration = None if outcome == "crashed" else round(0.2 + rng.expovariate(1 / (2.0 if entries else 0.3)), 4)
        rows.append({
            "started_at": started, "finished_at": None if duration is None else started + timedelta(seconds=duration),
            "duration_seconds": duration, "command": "upgrade", "outcome": outcome, "target": "head",
            "from_revisions": f"r{revision:05d}", "to_revisions": f"r{revision:05d}", "revisions": json.dumps(entries),
            "error": None if outcome in ("noop", "applied") else f"Revision failed: generated error number {i}.",
            "host": "bench", "pid": 1000 + i, "environment": "production", "db_wait_seconds": 0.01,
            "lock_wait_seconds": round(rng.expovariate(20), 4),
        })
    engine = create_engine(url)
    try:
        table.create(engine, checkfirst=True)
        with engine.begin() as conn:
            conn.execute(table.insert(), rows)
    finally:
        engine.dispose()


def timed(fn: object, repeat: int, cpu: list[float] | None = None) -> list[float]:
    """Wall seconds of each of ``repeat`` calls; with ``cpu``, the CPU seconds (user + system) of
    the subprocesses each call ran are appended to it (less sensitive to a busy machine)."""
    times = []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if cpu is not None:
            cpu.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return times


def line(label: str, times: list[float]) -> str:
    return f"{label:<14} min {min(times):6.3f}  median {statistics.median(times):6.3f}  max {max(times):6.3f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs-in-journal", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--database-url", help="An empty database to fill (default: a temporary SQLite file).")
    args = parser.parse_args()
    from alembic_deploy import api
    from alembic_deploy.settings import Settings

    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite:///{Path(folder) / 'journal.db'}"
        started = time.perf_counter()
        fill(url, args.runs_in_journal)
        print(f"journal: {args.runs_in_journal} generated runs in {time.perf_counter() - started:.1f}s "
              f"({url.split(':')[0]})")
        settings = Settings.resolve({"config": str(Path(folder) / "alembic.ini")}, environ={})
        built = api.report(settings, [f"production={url}"], since="30d")
        assert built.environments[0].state == "read" and len(built.environments[0].runs) == args.runs_in_journal
        print(line("api read", timed(lambda: api.report(settings, [f"production={url}"], since="30d"), args.repeat)))
        for name, render in (("text", built.render_text), ("json", built.to_json), ("html", built.render_html)):
            print(line(f"api {name}", timed(render, args.repeat)))
        # Bytecode caching allowed, as for an installed package (its modules load from __pycache__).
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("ALEMBIC_DEPLOY_") and k not in ("DATABASE_URL", "PYTHONDONTWRITEBYTECODE")}
        medians = {}
        for fmt in ("text", "json", "html"):
            out = Path(folder) / f"report.{fmt}"
            command = [sys.executable, "-m", "alembic_deploy", "-c", str(Path(folder) / "alembic.ini"), "report",
                       "--database-url", f"production={url}", "--format", fmt, "-o", str(out)]

            def run(command: list[str] = command) -> None:
                subprocess.run(command, check=True, env=env, cwd=folder, capture_output=True)

            cpu: list[float] = []
            times = timed(run, args.repeat, cpu)
            medians[fmt] = statistics.median(times)
            print(line(f"cli {fmt}", times) + f"  ({out.stat().st_size // 1024} KiB)")
            print(line(f"  cpu {fmt}", cpu))
        startup: list[float] = []
        print(line("cli --help", timed(lambda: subprocess.run(
            [sys.executable, "-m", "alembic_deploy", "report", "--help"], check=True, env=env, capture_output=True),
            args.repeat, startup)))
        print(line("  cpu --help", startup))
    # Wall-clock seconds on a shared machine are the CPU seconds times its contention: say how busy it was.
    print(f"load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPU(s)")
    verdict = "met" if medians["html"] < TARGET_SECONDS else "MISSED"
    print(f"target: the HTML report of {args.runs_in_journal} runs in under {TARGET_SECONDS:g}s "
          f"(CLI median {medians['html']:.3f}s): {verdict}")
    print("plain alembic: no counterpart (alembic keeps no history of its runs)")
    return 0 if verdict == "met" else 1


if __name__ == "__main__":
    sys.exit(main())
