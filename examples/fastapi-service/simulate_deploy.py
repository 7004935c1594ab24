#!/usr/bin/env python3
"""Simulate the seed's deploy of the notes service on this machine, without Docker.

The seed deploys new code, waits for its health checks, then migrates. This script plays that out
for three releases of the service (see app/store.py), against a real PostgreSQL and real uvicorn
processes on loopback ports, with a client hitting the service the whole time:

1. release 1: two processes start through ``alembic-deploy run --migrate`` (both race for the lock;
   one migrates, the other finds nothing to do);
2. for releases 2 and 3, as ECS would:
   a. rolling update, one process at a time: start a new-release process through
      ``alembic-deploy run --wait-for-schema`` (the image's ENTRYPOINT), wait until its ``/ready``
      answers 200, put it behind the "load balancer", take an old one out, let in-flight requests
      finish (deregistration delay), SIGTERM it;
   b. post-deploy migration with the health gate:
      ``alembic-deploy upgrade --wait-healthy <each /ready> --health-expect accepted=true``;
3. the guard's verdict is read from every process at every step (and, without touching anything,
   what older or newer code would say about the database).

It fails (exit 1) if any client request fails or answers 5xx, or if a note written during the
rollout cannot be read back at the end.

    python simulate_deploy.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/notes

The database must exist and be empty. ``--json`` prints the summary as JSON on stdout.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent
#: The revisions each release ships (its migrations folder).
RELEASES: dict[int, tuple[str, ...]] = {
    1: ("0001_create_notes",),
    2: ("0001_create_notes", "0002_expand_note_content"),
    3: ("0001_create_notes", "0002_expand_note_content", "0003_contract_note_body"),
}
#: How long the load balancer keeps sending in-flight traffic to a target it is removing.
DEREGISTRATION_DELAY = 0.5
START_TIMEOUT = 60.0


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class AppProcess:
    release: int
    port: int
    proc: subprocess.Popen[bytes]
    log_path: Path

    @property
    def name(self) -> str:
        return f"release {self.release} on :{self.port} (pid {self.proc.pid})"

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def log_tail(self) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])


class LoadBalancer:
    """Round-robin over the registered targets, like an ALB target group."""

    def __init__(self) -> None:
        self._targets: list[AppProcess] = []
        self._lock = threading.Lock()
        self._turn = itertools.count()

    def register(self, app: AppProcess) -> None:
        with self._lock:
            self._targets.append(app)

    def deregister(self, app: AppProcess) -> None:
        with self._lock:
            self._targets.remove(app)

    def pick(self) -> AppProcess:
        with self._lock:
            return self._targets[next(self._turn) % len(self._targets)]


@dataclass
class Traffic:
    """Clients writing and reading notes through the load balancer for the whole rollout."""

    lb: LoadBalancer
    threads: int = 2
    statuses: Counter[str] = field(default_factory=Counter)
    #: Requests per phase: proof that the clients ran through every step of the rollout.
    phases: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    written: dict[int, str] = field(default_factory=dict)
    phase: str = ""
    _stop: threading.Event = field(default_factory=threading.Event)
    _workers: list[threading.Thread] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        for n in range(self.threads):
            worker = threading.Thread(target=self._run, args=(n,), daemon=True)
            worker.start()
            self._workers.append(worker)

    def stop(self) -> None:
        self._stop.set()
        for worker in self._workers:
            worker.join()

    def _run(self, n: int) -> None:
        with httpx.Client(timeout=10) as client:
            for i in itertools.count():
                if self._stop.is_set():
                    return
                target, phase = self.lb.pick(), self.phase
                text = f"note {n}-{i} written during {phase}"
                try:
                    if i % 2 == 0:
                        response = client.post(target.url("/notes"), json={"title": f"t{n}-{i}", "text": text})
                        if response.status_code == 201:
                            with self._lock:
                                self.written[response.json()["id"]] = text
                    else:
                        response = client.get(target.url("/notes"))
                except httpx.HTTPError as exc:
                    self._record(phase, "error", f"{phase}: {target.name}: {type(exc).__name__}: {exc}")
                else:
                    detail = f"{phase}: {target.name}: HTTP {response.status_code} {response.text[:200]}"
                    self._record(phase, str(response.status_code), detail if response.status_code >= 500 else None)
                time.sleep(0.01)

    def _record(self, phase: str, status: str, failure: str | None) -> None:
        with self._lock:
            self.phases[phase] += 1
            self.statuses[status] += 1
            if failure:
                self.failures.append(failure)


class Simulation:
    def __init__(self, database_url: str, workdir: Path) -> None:
        self.database_url = database_url
        self.workdir = workdir
        self.lb = LoadBalancer()
        self.traffic = Traffic(self.lb)
        self.verdicts: list[dict[str, Any]] = []
        self.migrations: list[dict[str, Any]] = []
        self.apps: list[AppProcess] = []

    # -- building blocks ----------------------------------------------------------------------
    def release_dir(self, release: int) -> Path:
        """The release as its image would hold it: the app, alembic.ini, its own migrations."""
        target = self.workdir / f"release-{release}"
        if not target.exists():
            ignore = shutil.ignore_patterns("__pycache__")
            for name in ("app", "migrations"):
                shutil.copytree(HERE / name, target / name, ignore=ignore)
            shutil.copy2(HERE / "alembic.ini", target / "alembic.ini")
            for script in (target / "migrations" / "versions").glob("*.py"):
                if script.stem not in RELEASES[release]:
                    script.unlink()
        return target

    def env(self, release: int) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("ALEMBIC_DEPLOY_")}
        env.update(DATABASE_URL=self.database_url, NOTES_RELEASE=str(release), PYTHONUNBUFFERED="1")
        return env

    def start(self, release: int, mode: str) -> AppProcess:
        """One container: the image's ENTRYPOINT (alembic-deploy run) with uvicorn as CMD."""
        port = free_port()
        log_path = self.workdir / f"release-{release}-{port}.log"
        command = [
            sys.executable, "-m", "alembic_deploy", "run", mode, "--",
            sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
        ]
        with log_path.open("wb") as out:
            proc = subprocess.Popen(command, cwd=self.release_dir(release), env=self.env(release),
                                    stdout=out, stderr=subprocess.STDOUT)
        app = AppProcess(release, port, proc, log_path)
        self.apps.append(app)
        return app

    def wait_ready(self, app: AppProcess) -> dict[str, Any]:
        """The target group's health check: /ready must answer 200."""
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=5) as client:
            while time.monotonic() < deadline:
                if app.proc.poll() is not None:
                    raise RuntimeError(f"{app.name} exited with {app.proc.returncode}:\n{app.log_tail()}")
                try:
                    response = client.get(app.url("/ready"))
                    if response.status_code == 200:
                        return response.json()
                except httpx.HTTPError:
                    pass
                time.sleep(0.1)
        raise RuntimeError(f"{app.name} was not ready within {START_TIMEOUT:g}s:\n{app.log_tail()}")

    def stop(self, app: AppProcess) -> None:
        self.lb.deregister(app)
        time.sleep(DEREGISTRATION_DELAY)
        app.proc.send_signal(signal.SIGTERM)  # the PID alembic-deploy run was started as: uvicorn now
        app.proc.wait(timeout=30)
        self.apps.remove(app)
        log(f"  stopped {app.name}: exit {app.proc.returncode}")

    def record(self, step: str, apps: list[AppProcess]) -> None:
        with httpx.Client(timeout=5) as client:
            for app in apps:
                body = client.get(app.url("/ready")).json()
                self.note(step, f"release {app.release} on :{app.port}", body)

    def note(self, step: str, who: str, body: dict[str, Any]) -> None:
        pending = ", ".join(f"{p['revision']} ({p['kind'] or 'unmarked'})" for p in body.get("pending", []))
        self.verdicts.append({"step": step, "who": who, "verdict": body["verdict"], "accepted": body["accepted"],
                              "database": body["database_revisions"], "pending": pending})
        log(f"  {who:<22} {body['verdict']:<20} db={','.join(body['database_revisions']) or '<base>'}"
            + (f"  pending: {pending}" if pending else ""))

    def migrate(self, release: int, apps: list[AppProcess]) -> None:
        """The workflow's post-deploy step: migrate once every new process is healthy."""
        command = [sys.executable, "-m", "alembic_deploy", "upgrade", "--healthy-count", "3",
                   "--health-interval", "0.2", "--health-timeout", "60", "--health-expect", "accepted=true"]
        for app in apps:
            command += ["--wait-healthy", app.url("/ready")]
        started = time.monotonic()
        run = subprocess.run(command, cwd=self.release_dir(release), env=self.env(release),
                             capture_output=True, text=True, timeout=300)
        self.migrations.append({"release": release, "exit_code": run.returncode,
                                "seconds": round(time.monotonic() - started, 2)})
        for line in run.stderr.splitlines():
            if not line.startswith("INFO"):
                log(f"  | {line}")
        if run.returncode != 0:
            raise RuntimeError(f"post-deploy migration of release {release} failed with exit {run.returncode}")

    def what_if(self, release: int, database: tuple[str, ...] | None = None) -> None:
        """What release N's code would say, without starting it: now, or on a database at ``database``."""
        from alembic_deploy import guard

        sys.path.insert(0, str(HERE))
        from app.store import REQUIRES

        ini = str(self.release_dir(release) / "alembic.ini")
        if database is None:
            result = guard.check(self.database_url, ini, requires=REQUIRES[release])
            who = f"release {release} (rollback)"
        else:
            result = guard.evaluate(database, guard.load_scripts(ini), requires=REQUIRES[release])
            who = f"release {release} on {database[0][:4]}"
        self.note("what if", who, result.to_dict())

    # -- the deploy ---------------------------------------------------------------------------
    def run(self) -> None:
        log("release 1: first deploy, two processes with `alembic-deploy run --migrate`")
        first = [self.start(1, "--migrate") for _ in range(2)]
        for app in first:
            self.wait_ready(app)
            self.lb.register(app)
        self.record("release 1 running", first)
        self.traffic.phase = "release 1 running"
        self.traffic.start()
        current = first
        for release in (2, 3):
            log(f"release {release}: rolling update, one process at a time (`run --wait-for-schema`)")
            self.traffic.phase = f"rollout of release {release}"
            fresh: list[AppProcess] = []
            for old in list(current):
                app = self.start(release, "--wait-for-schema")
                self.note(f"release {release} started", f"release {release} on :{app.port}", self.wait_ready(app))
                self.lb.register(app)
                fresh.append(app)
                self.stop(old)
            current = fresh
            log(f"release {release}: post-deploy migration behind the health gate")
            self.traffic.phase = f"migration of release {release}"
            self.migrate(release, current)
            self.record(f"release {release} migrated", current)
            self.traffic.phase = f"release {release} running"
            time.sleep(0.5)
        self.traffic.stop()
        log("what older or newer code would say about the database now (nothing is started):")
        self.what_if(2)
        self.what_if(1)
        self.what_if(3, ("0001_create_notes",))
        self.check_notes(current[0])

    def check_notes(self, app: AppProcess) -> None:
        """Every note written during the rollout reads back with its text through the final release."""
        with httpx.Client(timeout=10) as client:
            for note_id, text in sorted(self.traffic.written.items()):
                response = client.get(app.url(f"/notes/{note_id}"))
                if response.status_code != 200 or response.json().get("text") != text:
                    self.traffic.failures.append(
                        f"note {note_id} reads back as HTTP {response.status_code} {response.text[:200]}, "
                        f"expected text {text!r}"
                    )

    def close(self) -> None:
        for app in self.apps:
            if app.proc.poll() is None:
                app.proc.send_signal(signal.SIGTERM)
        for app in self.apps:
            try:
                app.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                app.proc.kill()

    def summary(self) -> dict[str, Any]:
        return {
            "requests": sum(self.traffic.statuses.values()),
            "statuses": dict(self.traffic.statuses),
            "requests_per_phase": dict(self.traffic.phases),
            "failures": self.traffic.failures,
            "notes_written": len(self.traffic.written),
            "verdicts": self.verdicts,
            "migrations": self.migrations,
        }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL"),
                        help="An empty PostgreSQL database (default: DATABASE_URL).")
    parser.add_argument("--json", action="store_true", help="Print the summary as JSON on stdout.")
    parser.add_argument("--keep", action="store_true", help="Keep the release folders and process logs.")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("give --database-url or set DATABASE_URL")
    workdir = Path(tempfile.mkdtemp(prefix="notes-deploy-"))
    simulation = Simulation(args.database_url, workdir)
    error = None
    try:
        simulation.run()
    except Exception as exc:  # noqa: BLE001 - reported below with the summary
        error = f"{type(exc).__name__}: {exc}"
    finally:
        simulation.close()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    summary = simulation.summary()
    summary["error"] = error
    if args.json:
        print(json.dumps(summary, indent=2))
    failures = summary["failures"]
    log(f"\n{summary['requests']} requests during the rollout: {dict(sorted(summary['statuses'].items()))}; "
        f"{summary['notes_written']} notes written, all read back: {not failures}")
    for failure in failures[:20]:
        log(f"FAILED {failure}")
    if error:
        log(f"ERROR {error}")
    if args.keep:
        log(f"release folders and logs kept in {workdir}")
    return 1 if failures or error or not summary["requests"] else 0


if __name__ == "__main__":
    sys.exit(main())
