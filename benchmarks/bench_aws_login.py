"""What a login from AWS Secrets Manager costs a deploy: ``alembic-deploy upgrade`` at head (the
no-op every replica runs) with the login in ``DATABASE_URL`` and with ``--database-secret``, beside
plain ``alembic upgrade head``, runs interleaved; min / median / max wall seconds and the ratio of
medians to plain alembic.

AWS is moto as a local server (as in the tests), so the figure is boto3's import and client set-up
and one GetSecretValue per connect over loopback; a real endpoint adds its round trips (a few ms
each inside a region). PostgreSQL: the local server (``ALEMBIC_DEPLOY_TEST_PG``), a database of its
own.

    .venv/bin/python benchmarks/bench_aws_login.py --revisions 50 --runs 9
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tests")]

from aws_server import MotoServer  # noqa: E402
from project import BIN, generate, set_url  # noqa: E402
from servers import PG_ADMIN, databases  # noqa: E402


def timed(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--revisions", type=int, default=50)
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    from sqlalchemy.engine import make_url

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
    aws = MotoServer().start()
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ALEMBIC_DEPLOY_", "AWS_"))}
    base.pop("DATABASE_URL", None)
    try:
        with tempfile.TemporaryDirectory() as tmp, databases("postgresql", admin_url=PG_ADMIN) as dbs:
            url = dbs.create()
            ini = generate(Path(tmp) / "project", args.revisions)
            folder = ini.parent
            set_url(ini, url)
            subprocess.run([str(BIN / "alembic"), "upgrade", "head"], cwd=folder, env=base, check=True,
                           capture_output=True)
            parts = make_url(url)
            aws.client("secretsmanager").create_secret(Name="bench/db", SecretString=json.dumps({
                "engine": "postgres", "host": parts.host, "port": parts.port, "username": parts.username,
                "password": "unused-the-server-trusts", "dbname": parts.database}))
            tools = {
                "alembic": ([str(BIN / "alembic"), "upgrade", "head"], base),
                "deploy, DATABASE_URL": ([str(BIN / "alembic-deploy"), "upgrade"], {**base, "DATABASE_URL": url}),
                "deploy, --database-secret": ([str(BIN / "alembic-deploy"), "upgrade", "--database-secret",
                                               "bench/db"], {**base, **aws.env}),
            }
            times: dict[str, list[float]] = {name: [] for name in tools}
            for _ in range(args.runs):
                for name, (argv, env) in tools.items():
                    times[name].append(timed(argv, folder, env))
    finally:
        aws.stop()
    plain = statistics.median(times["alembic"])
    print(f"no-op upgrade at head, {args.revisions} revisions, PostgreSQL, {args.runs} runs each (seconds)")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"  {name:<28} min {min(values):.3f}  median {med:.3f}  max {max(values):.3f}  "
              f"ratio {med / plain:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
