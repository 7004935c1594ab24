"""Plain ``alembic downgrade REV`` vs ``alembic-deploy rollback --to REV --yes``, side by side in the same run.

Run by hand (the test-suite's servers must be up for PostgreSQL and MariaDB)::

    .venv/bin/python benchmarks/bench_rollback.py [--backends sqlite,postgresql,mysql] [--runs 7]

The project is the test-suite's ``merged`` project (``tests/projects``): a3_seed, then two branches
joined by the merge revision m1, then c1 on top. Each timed run starts from the head (plain ``alembic
upgrade heads``, not timed) and goes down to ``a3_seed``: c1's downgrade, the unmerge of m1 and the
two branch revisions above a3_seed, the same walk for both tools (``tests/test_rollback.py`` checks
they end in the same version table and schema). ``--code-head a3_seed`` tells alembic-deploy's
schema guard which release runs afterwards, as a real rollback would.

Both tools run as real subprocesses through their console scripts, read the URL from
``sqlalchemy.url`` in alembic.ini, and alternate (A B, B A, ...) so a noisy machine slows both alike;
one unmeasured warm-up of each comes first. Times are wall clock per process, start to exit. Prints
min / median / max of each and the ratio of the medians. The issue sets no target for rollback:
alembic-deploy also plans (env.py once more to read the version table before the lock, each
downgrade rendered offline for the plan and the lint), takes the lock, writes the journal row and
verifies the result.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

import project as generated  # noqa: E402  (set_url)
import servers  # noqa: E402  tests/servers.py: throwaway databases
from scenarios import copy_project  # noqa: E402

BIN = Path(sys.executable).parent
TOOLS = ("alembic", "alembic-deploy")
TARGET = "a3_seed"


def child_env() -> dict[str, str]:
    """The subprocess environment: the URL comes from alembic.ini only."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALEMBIC_DEPLOY_")}
    env.pop("DATABASE_URL", None)
    return env


def command(tool: str) -> list[str]:
    if tool == "alembic":
        return [str(BIN / "alembic"), "downgrade", TARGET]
    return [str(BIN / "alembic-deploy"), "rollback", "--to", TARGET, "--code-head", TARGET, "--yes"]


def run(args: list[str], folder: Path) -> float:
    """Wall seconds of one process; it must exit 0."""
    started = time.perf_counter()
    done = subprocess.run(args, cwd=folder, env=child_env(), capture_output=True, text=True, check=False)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return took


def bench(backend: str, runs: int, root: Path) -> dict[str, list[float]]:
    folder = copy_project("merged", root / f"merged-{backend}")
    timings: dict[str, list[float]] = {tool: [] for tool in TOOLS}
    with servers.databases(backend, folder=root, prefix="ad_bench_") as dbs:
        generated.set_url(folder / "alembic.ini", dbs.create())
        for i in range(runs + 1):  # the first round is the warm-up
            order = TOOLS if i % 2 == 0 else TOOLS[::-1]
            for tool in order:
                run([str(BIN / "alembic"), "upgrade", "heads"], folder)
                took = run(command(tool), folder)
                if i > 0:
                    timings[tool].append(took)
    return timings


def spread(samples: list[float]) -> str:
    return f"{min(samples):.3f} / {statistics.median(samples):.3f} / {max(samples):.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    root = Path(tempfile.mkdtemp(prefix="ad_bench_rollback_"))
    try:
        for backend in args.backends.split(","):
            t = bench(backend, args.runs, root)
            ratio = statistics.median(t["alembic-deploy"]) / statistics.median(t["alembic"])
            print(f"{backend}: down to {TARGET} from the head, {args.runs} runs each, min / median / max s")
            print(f"  alembic downgrade {TARGET}                 {spread(t['alembic'])}")
            print(f"  alembic-deploy rollback --to {TARGET} --yes {spread(t['alembic-deploy'])}")
            print(f"  ratio of medians {ratio:.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
