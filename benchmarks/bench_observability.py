"""What ``--log-format json`` and ``--metrics`` cost a deploy, beside plain ``alembic upgrade head``.

Run by hand (SQLite, no server needed)::

    .venv/bin/python benchmarks/bench_observability.py [--revisions 100] [--runs 9]

On a generated project (``project.py``: ``alembic init``'s generic env.py, N revisions), each
variant runs as a real subprocess through its console script, in rotating order (each variant
goes first in turn) after one unmeasured warm-up run each:

* ``noop``: the database already at head: plain alembic, then ``alembic-deploy upgrade`` with text
  logs, ``--log-format json``, ``--metrics emf`` and ``--metrics textfile=...`` (which imports
  prometheus-client);
* ``full``: an empty database upgraded to head (N revisions: N ``revision_started`` and N
  ``revision_applied`` events): the same variants.

Printed: min / median / max wall seconds per variant and the ratio of medians to plain alembic and
to alembic-deploy's text logs.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import project as generated  # benchmarks/project.py: this script's folder is first on sys.path

BIN = Path(sys.executable).parent


def variants(textfile: Path) -> dict[str, list[str]]:
    deploy = [str(BIN / "alembic-deploy"), "upgrade"]
    return {
        "alembic": [str(BIN / "alembic"), "upgrade", "head"],
        "deploy text": deploy,
        "deploy json log": [*deploy, "--log-format", "json"],
        "deploy emf": [*deploy, "--metrics", "emf"],
        "deploy textfile": [*deploy, "--metrics", f"textfile={textfile}"],
    }


def env() -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if not k.startswith("ALEMBIC_DEPLOY_")}
    for name in ("DATABASE_URL", "PYTHONDONTWRITEBYTECODE", "GITHUB_SHA", "GITHUB_RUN_ID"):
        out.pop(name, None)
    return out


def timed(cmd: list[str], folder: Path) -> float:
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=folder, env=env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return elapsed


def bench(scenario: str, folder: Path, db: Path, runs: int, cmds: dict[str, list[str]]) -> dict[str, list[float]]:
    names = list(cmds)
    samples: dict[str, list[float]] = {name: [] for name in names}

    def once(name: str) -> float:
        if scenario == "full":
            db.unlink(missing_ok=True)
        return timed(cmds[name], folder)

    if scenario == "noop":
        timed(cmds["alembic"], folder)
    for name in names:  # warm-up: bytecode caches, the fast path's graph cache
        once(name)
    for index in range(runs):
        order = names[index % len(names):] + names[: index % len(names)]
        for name in order:
            samples[name].append(once(name))
    return samples


def render(scenario: str, samples: dict[str, list[float]]) -> str:
    base = statistics.median(samples["alembic"])
    text = statistics.median(samples["deploy text"])
    lines = [f"{scenario}: {'variant':<16} {'min':>7} {'median':>7} {'max':>7}  {'x alembic':>9}  {'x text':>6}"]
    for name, values in samples.items():
        median = statistics.median(values)
        lines.append(f"{'':{len(scenario) + 2}}{name:<16} {min(values):7.3f} {median:7.3f} {max(values):7.3f}  "
                     f"{median / base:9.2f}  {median / text:6.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--revisions", type=int, default=100)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--scenarios", default="noop,full")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {args.revisions} revisions, {args.runs} runs each, "
          f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        ini = generated.generate(Path(tmp) / "project", args.revisions)
        folder = ini.parent
        db = folder / "bench.db"
        generated.set_url(ini, f"sqlite:///{db}")
        cmds = variants(Path(tmp) / "deploy.prom")
        for scenario in args.scenarios.split(","):
            print(render(scenario, bench(scenario, folder, db, args.runs, cmds)))


if __name__ == "__main__":
    main()
