"""The backup before migrating vs running the dump program by hand, on the same database.

Run by hand (the test-suite's servers must be up)::

    .venv/bin/python benchmarks/bench_backup.py [--backends postgresql,mysql] [--rows 200000] [--runs 7]

Each backend gets a throwaway database (``tests/servers.py``) with one table of ``--rows`` rows
(an id, a 95-character text of random hex digits, a timestamp: about 25 MB as SQL text). Then, alternating so a
noisy machine slows both alike, after one unmeasured warm-up of each:

* ``by hand``: ``pg_dump --format=custom ... --file=OUT`` or ``mariadb-dump --single-transaction
  ... --result-file=OUT``, as a person would type it (the password, when there is one, in
  PGPASSWORD / MYSQL_PWD);
* ``alembic-deploy``: the backup step's own call (:func:`alembic_deploy.backups.methods.dump`):
  the same program, its arguments built by the backend, the password in the environment or a 0600
  option file in a private temporary folder, its output streamed into ``NAME.partial`` and renamed.

Prints min / median / max wall seconds of each, throughput at the median, and the ratio of the
medians (target: <= 1.10x).
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.pool import NullPool  # noqa: E402

import servers  # noqa: E402  tests/servers.py: throwaway databases


def fill(url: str, rows: int) -> None:
    engine = create_engine(url, poolclass=NullPool)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE events (id INTEGER PRIMARY KEY, body VARCHAR(100), at TIMESTAMP)"))
        batch = 10_000
        for start in range(0, rows, batch):
            values = [{"id": i, "body": f"event {i:08d} {os.urandom(40).hex()}"}  # ~half compressible, as text is
                      for i in range(start, min(rows, start + batch))]
            conn.execute(text("INSERT INTO events (id, body, at) VALUES (:id, :body, CURRENT_TIMESTAMP)"), values)
    engine.dispose()


def by_hand(backend: str, url: str, out: Path) -> None:
    u = make_url(url)
    env = dict(os.environ)
    if backend == "postgresql":
        if u.password:
            env["PGPASSWORD"] = str(u.password)
        argv = ["pg_dump", "--format=custom", f"--host={u.host}", f"--port={u.port or 5432}",
                f"--username={u.username}", f"--file={out}", str(u.database)]
    else:
        if u.password:
            env["MYSQL_PWD"] = str(u.password)
        program = shutil.which("mariadb-dump") or "mysqldump"
        argv = [program, f"--host={u.host}", f"--port={u.port or 3306}", "--protocol=TCP", f"--user={u.username}",
                "--single-transaction", "--routines", "--triggers", "--no-tablespaces", f"--result-file={out}",
                str(u.database)]
    subprocess.run(argv, env=env, check=True, stdin=subprocess.DEVNULL)


def with_the_tool(url: str, folder: Path, name: str) -> None:
    from alembic_deploy.backups.destination import LocalFolder
    from alembic_deploy.backups.methods import dump
    from alembic_deploy.database import make_engine

    engine, backend = make_engine(url)
    try:
        dump(backend, engine, (), ["alembic_deploy_history", "alembic_deploy_history_progress",
                                   "alembic_deploy_history_backups"], LocalFolder(folder), name, 3600)
    finally:
        engine.dispose()


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default="postgresql,mysql")
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    for backend in args.backends.split(","):
        with servers.databases(backend) as dbs, tempfile.TemporaryDirectory() as folder:
            url = dbs.create()
            fill(url, args.rows)
            out = Path(folder)
            hand, tool, size = [], [], 0
            for run in range(args.runs + 1):
                pair = [("hand", functools.partial(by_hand, backend, url, out / f"hand-{run}")),
                        ("tool", functools.partial(with_the_tool, url, out, f"tool-{run}"))]
                if run % 2:
                    pair.reverse()
                for label, fn in pair:
                    seconds = timed(fn)
                    if run:  # the first round warms both up
                        (hand if label == "hand" else tool).append(seconds)
                size = (out / f"tool-{run}").stat().st_size
                for leftover in out.iterdir():
                    leftover.unlink()
            mb = size / 1e6
            print(f"{backend}: {args.rows} rows, backup {mb:.1f} MB, {args.runs} runs each")
            for label, times in (("by hand", hand), ("alembic-deploy", tool)):
                median = statistics.median(times)
                print(f"  {label:<15} min {min(times):.3f}s  median {median:.3f}s  max {max(times):.3f}s  "
                      f"({mb / median:.1f} MB/s)")
            ratio = statistics.median(tool) / statistics.median(hand)
            print(f"  ratio alembic-deploy / by hand (medians): {ratio:.3f}x")


if __name__ == "__main__":
    main()
