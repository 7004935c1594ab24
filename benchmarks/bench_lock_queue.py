"""The lock queue: how long the application waits while a migration waits for a lock.

Run by hand (about a minute; the servers of the test-suite must be up)::

    .venv/bin/python benchmarks/bench_lock_queue.py [--backends postgresql,mysql] [--hold 8] \\
        [--ddl-lock-timeout 0.5] [--json]

The scene, for each backend and each tool, on a fresh database at ``a3_seed`` of the
``tests/projects/alter_users`` project (``alembic init`` template, env.py unmodified):

1. a session reads ``users`` in an open transaction and keeps it open for ``--hold`` seconds
   (PostgreSQL: ACCESS SHARE; MySQL/MariaDB: a shared metadata lock);
2. the "app" runs ``SELECT count(*) FROM users`` every 50 ms on its own connection;
3. the migration starts: ``a4_users_nickname`` adds a column to ``users``, which needs an
   exclusive lock and queues behind the reader; every app query queues behind the migration.

Plain ``alembic upgrade head`` waits for the whole hold, and so does the app. ``alembic-deploy
upgrade`` gives up after the DDL lock timeout, lets the app through, and retries until the reader
is gone. Printed per run: the app's max and p99 latency during the migration, the migration's
duration and exit code, and whether the target holds (max <= effective DDL lock timeout + 50 ms,
migration completed). MySQL/MariaDB count lock timeouts in whole seconds, so 0.5 s becomes 1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

import servers  # noqa: E402  tests/servers.py: throwaway databases
from helpers import Database  # noqa: E402
from lockscene import AppLoop, Blocker  # noqa: E402  tests/lockscene.py: the scene's actors
from project import set_url  # noqa: E402
from scenarios import copy_project  # noqa: E402  tests/scenarios.py: the test projects

BIN = Path(sys.executable).parent
#: The app waits at most this much longer than the DDL lock timeout (the target).
TARGET_MARGIN_SECONDS = 0.05
EFFECTIVE = {"postgresql": lambda t: t, "mysql": lambda t: float(max(1, -(-t // 1)))}


def _run(argv: list[str], project: Path, url: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALEMBIC_DEPLOY_")}
    env["DATABASE_URL"] = url
    return subprocess.run(argv, cwd=project, env=env, capture_output=True, text=True, timeout=timeout)


def scene(backend: str, tool: str, hold: float, ddl_lock_timeout: float, scratch: Path) -> dict[str, object]:
    with servers.databases(backend, folder=scratch, prefix="ad_bench_") as dbs:
        url = dbs.create()
        project = scratch / f"{backend}-{tool}"
        copy_project("alter_users", project)
        set_url(project / "alembic.ini", url)
        setup = _run([str(BIN / "alembic-deploy"), "upgrade", "a3_seed"], project, url)
        if setup.returncode != 0:
            raise SystemExit(f"setup failed on {backend}:\n{setup.stderr}")
        if tool == "alembic":
            argv = [str(BIN / "alembic"), "upgrade", "head"]
        else:
            argv = [str(BIN / "alembic-deploy"), "upgrade", "--ddl-lock-timeout", f"{ddl_lock_timeout:g}"]
        blocker = Blocker(url, backend)
        try:
            with AppLoop(url) as app:
                time.sleep(0.5)  # a baseline of unblocked queries
                before = len(app.latencies)
                blocker.release_after(hold)
                started = time.monotonic()
                run = _run(argv, project, url)
                took = time.monotonic() - started
                during = app.latencies[before:]
        finally:
            blocker.release()
        ordered = sorted(during)
        at_head = Database(url, backend).versions() == ["a4_users_nickname"]
        effective = EFFECTIVE[backend](ddl_lock_timeout)
        worst = ordered[-1] if ordered else 0.0
        return {
            "backend": backend,
            "tool": tool,
            "app_queries": len(ordered),
            "app_max_ms": round(worst * 1000, 1),
            "app_p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * (len(ordered) - 1)))] * 1000, 1)
            if ordered else 0.0,
            "migration_seconds": round(took, 2),
            "exit_code": run.returncode,
            "migrated": at_head,
            "ddl_lock_timeout_s": effective if tool == "alembic-deploy" else None,
            "target_met": (
                (worst <= effective + TARGET_MARGIN_SECONDS and at_head) if tool == "alembic-deploy" else None
            ),
        }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="postgresql,mysql")
    parser.add_argument("--hold", type=float, default=8.0, help="seconds the reader keeps its lock")
    parser.add_argument("--ddl-lock-timeout", type=float, default=0.5)
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="ad-bench-lockq-") as tmp:
        for backend in args.backends.split(","):
            for tool in ("alembic", "alembic-deploy"):
                results.append(scene(backend, tool, args.hold, args.ddl_lock_timeout, Path(tmp)))
    if args.json:
        print(json.dumps({"machine": platform.platform(), "hold_s": args.hold, "results": results}, indent=2))
    else:
        print(f"lock queue: reader holds its lock {args.hold:g}s; app queries every 50 ms; "
              f"--ddl-lock-timeout {args.ddl_lock_timeout:g}")
        head = ("backend", "tool", "app max ms", "app p99 ms", "queries", "migration s", "exit", "migrated", "target")
        rows = [
            (
                r["backend"], r["tool"], f"{r['app_max_ms']:.1f}", f"{r['app_p99_ms']:.1f}", str(r["app_queries"]),
                f"{r['migration_seconds']:.2f}", str(r["exit_code"]), "yes" if r["migrated"] else "no",
                "-" if r["target_met"] is None else ("met" if r["target_met"] else "MISSED")
                + (f" (<= {r['ddl_lock_timeout_s'] * 1000 + TARGET_MARGIN_SECONDS * 1000:.0f} ms)"
                   if r["target_met"] is not None else ""),
            )
            for r in results
        ]
        widths = [max(len(x[i]) for x in (head, *rows)) for i in range(len(head))]
        for row in (head, *rows):
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0 if all(r["target_met"] is not False for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
