"""The health gate against real HTTP servers on loopback ports: one that turns healthy after a
while, one that never does, one that flaps, and the full `upgrade --wait-healthy` pipeline."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from alembic_deploy.errors import ConfigError, HealthCheckFailed
from alembic_deploy.steps.health import wait_healthy
from helpers import PG_DRIVER, invoke_cli, run_cli

Answer = tuple[int, object]


class HealthServer:
    """A real HTTP server in a thread; ``answer(n)`` decides the n-th (0-based) response."""

    def __init__(self, answer: Callable[[int], Answer]) -> None:
        self.answer = answer
        self.requests = 0
        self.notes: list[object] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                n = server.requests
                server.requests += 1
                status, body = server.answer(n)
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/health"

    @contextmanager
    def running(self) -> Iterator[HealthServer]:
        thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self.httpd.shutdown()
            self.httpd.server_close()


def healthy_after(seconds: float) -> Callable[[int], Answer]:
    """503 until ``seconds`` after the first request (the app "starts" when first probed), then 200."""
    first: list[float] = []

    def answer(n: int) -> Answer:
        if not first:
            first.append(time.monotonic())
        return (200, {"status": "ok"}) if time.monotonic() - first[0] >= seconds else (503, {"status": "starting"})

    return answer


def test_waits_until_the_app_turns_healthy(make_project, sqlite_db):
    """The migration starts only after the app answered healthy: every health request saw an
    unmigrated database."""
    project = make_project("sync")
    answer = healthy_after(1.0)

    def watching(n: int) -> Answer:
        server.notes.append(sqlite_db.has_table("users"))
        return answer(n)

    server = HealthServer(watching)
    with server.running():
        run = invoke_cli(project, "upgrade", "--wait-healthy", server.url, "--healthy-count", "3",
                      "--health-interval", "0.05", "--json", url=sqlite_db.url)
    assert run.returncode == 0, run.output
    assert sqlite_db.versions() == ["a3_seed"]
    assert server.notes and not any(server.notes), "a health request saw the migration already applied"
    assert server.requests > 3  # some 503s first, then three 200s
    report = json.loads(run.stdout)
    assert [s["name"] for s in report["steps"]][:2] == ["wait", "health"]
    assert "is healthy (3 in a row" in run.stderr


def test_never_healthy_exits_4_and_migrates_nothing(make_project, sqlite_db):
    project = make_project("sync")
    server = HealthServer(lambda n: (503, {"status": "degraded", "db": "down"}))
    with server.running():
        run = invoke_cli(project, "upgrade", "--wait-healthy", server.url, "--health-timeout", "1.5",
                      "--health-interval", "0.1", url=sqlite_db.url)
    assert run.returncode == 4, run.output
    assert "did not answer healthy 3 time(s) in a row within 1.5s" in run.stderr
    assert 'HTTP 503: {"status": "degraded", "db": "down"}' in run.stderr
    assert "Traceback" not in run.output
    assert not sqlite_db.has_table("alembic_version")
    assert not sqlite_db.has_table("users")


def test_flapping_resets_the_streak():
    """healthy, healthy, unhealthy, ...: never three in a row, always two."""
    flapping = HealthServer(lambda n: (503, "flap") if n % 3 == 2 else (200, {"status": "ok"}))
    with flapping.running():
        with pytest.raises(HealthCheckFailed) as info:
            wait_healthy([flapping.url], count=3, timeout=1.0, interval=0.02)
        assert "best streak 2" in info.value.message
        assert "HTTP 503: flap" in info.value.message
    again = HealthServer(lambda n: (503, "flap") if n % 3 == 2 else (200, {"status": "ok"}))
    with again.running():
        wait_healthy([again.url], count=2, timeout=5.0, interval=0.02)
        assert again.requests == 2


def test_every_url_must_pass(make_project, sqlite_db):
    project = make_project("sync")
    good = HealthServer(lambda n: (200, {"status": "ok"}))
    bad = HealthServer(lambda n: (500, "boom"))
    with good.running(), bad.running():
        run = invoke_cli(project, "upgrade", "--wait-healthy", good.url, "--wait-healthy", bad.url,
                      "--health-timeout", "3", "--health-interval", "0.05", url=sqlite_db.url)
        assert run.returncode == 4, run.output
        assert bad.url in run.stderr and "HTTP 500: boom" in run.stderr
        assert f"{good.url} is healthy" in run.stderr
        bad.answer = lambda n: (204, "")
        run = invoke_cli(project, "upgrade", "--wait-healthy", good.url, "--wait-healthy", bad.url,
                      "--health-interval", "0.05", url=sqlite_db.url)
    assert run.returncode == 0, run.output
    assert sqlite_db.versions() == ["a3_seed"]


def test_expected_json_field():
    server = HealthServer(lambda n: (200, {"status": "starting" if n < 2 else "ok", "checks": {"db": n >= 4}}))
    with server.running():
        wait_healthy([server.url], count=2, timeout=10, interval=0.02, expect=["status=ok", "checks.db=true"])
        assert server.requests == 6  # 0,1 starting; 2,3 db false; 4,5 healthy
    missing = HealthServer(lambda n: (200, {"state": "ok"}))
    with missing.running(), pytest.raises(HealthCheckFailed, match="has no 'status'"):
        wait_healthy([missing.url], count=1, timeout=0.3, interval=0.05, expect=["status=ok"])
    not_json = HealthServer(lambda n: (200, "<html>ok</html>"))
    with not_json.running(), pytest.raises(HealthCheckFailed, match="not JSON"):
        wait_healthy([not_json.url], count=1, timeout=0.3, interval=0.05, expect=["status=ok"])


def test_gate_runs_even_when_nothing_is_pending(make_project, sqlite_db):
    """--wait-healthy is asked for explicitly: the no-op fast path does not skip it."""
    project = make_project("sync")
    assert invoke_cli(project, "upgrade", url=sqlite_db.url).returncode == 0
    server = HealthServer(lambda n: (503, "down"))
    with server.running():
        run = invoke_cli(project, "upgrade", "--wait-healthy", server.url, "--health-timeout", "0.5",
                      "--health-interval", "0.05", url=sqlite_db.url)
    assert run.returncode == 4, run.output
    assert server.requests >= 1


def test_credentials_in_the_url_are_masked():
    server = HealthServer(lambda n: (503, "no"))
    url = server.url.replace("http://", "http://probe:pr0be-s3cret@")
    with server.running(), pytest.raises(HealthCheckFailed) as info:
        wait_healthy([url], count=1, timeout=0.3, interval=0.05)
    assert "pr0be-s3cret" not in info.value.message
    assert "probe:***@" in info.value.message


def test_unreachable_url_is_reported():
    server = HealthServer(lambda n: (200, "ok"))
    url = server.url
    server.httpd.server_close()  # nothing listens there any more
    with pytest.raises(HealthCheckFailed, match="ConnectError"):
        wait_healthy([url], count=1, timeout=0.3, interval=0.05)


def test_bad_options_are_config_errors_before_any_wait(make_project):
    project = make_project("sync")
    # An unreachable database with a long wait: a config error must come first.
    url = f"{PG_DRIVER}://app@127.0.0.1:1/app"
    for args, text in [
        (["--wait-healthy", "127.0.0.1:8000/health"], "http:// or https://"),
        (["--wait-healthy", "http://127.0.0.1:1/h", "--healthy-count", "0"], "--healthy-count"),
        (["--wait-healthy", "http://127.0.0.1:1/h", "--health-expect", "status"], "key=value"),
    ]:
        run = invoke_cli(project, "upgrade", "--wait-timeout", "120", *args, url=url)
        assert run.returncode == 2, run.output
        assert text in run.stderr
    with pytest.raises(ConfigError, match="key=value"):
        wait_healthy(["http://127.0.0.1:1/"], expect=["=ok"])


def test_missing_httpx_names_the_extra(make_project, sqlite_db, tmp_path):
    """Without httpx importable (a module that fails to import shadows it), the error says what to install."""
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "httpx.py").write_text("raise ImportError('httpx is not installed')\n")
    project = make_project("sync")
    # A real process: the shadowing module must be on its start-up path.
    run = run_cli(project, "upgrade", "--wait-healthy", "http://127.0.0.1:1/health", url=sqlite_db.url,
                  env={"PYTHONPATH": str(shadow)})
    assert run.returncode == 2, run.output
    assert "pip install 'alembic-deploy[http]'" in run.stderr
    assert "Traceback" not in run.output
    assert not sqlite_db.has_table("users")
