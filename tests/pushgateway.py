"""A real Prometheus Pushgateway for the tests (Debian's ``prometheus-pushgateway``; ``.ci/run``
installs it): started on a free loopback port, waited for by its own "Listening on" log line and
then its ``/-/ready`` endpoint, read back over its HTTP API (``/api/v1/metrics``), and stopped by
its PID."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from helpers import free_port

BINARY = "prometheus-pushgateway"


@dataclass
class Pushgateway:
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[str] | None = None
    #: More command-line flags (``--web.config.file=...``), and the basic-auth login reads then need.
    flags: tuple[str, ...] = ()
    login: tuple[str, str] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, deadline: float = 60.0) -> Pushgateway:
        binary = shutil.which(BINARY) or f"/usr/bin/{BINARY}"
        assert os.path.exists(binary), f"{BINARY} is not installed (.ci/run installs it): apt-get install {BINARY}"
        # No persistence file: each test's server starts empty and leaves nothing behind.
        self.proc = subprocess.Popen(
            [binary, f"--web.listen-address=127.0.0.1:{self.port}", "--persistence.file=", "--log.level=info",
             *self.flags],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )
        seen = ""
        while "Listening on" not in seen:  # its own log line, once the port is bound
            line = self.proc.stderr.readline() if self.proc.stderr else ""
            assert line, f"{BINARY} exited ({self.proc.wait()}) before listening: {seen}"
            seen += line
        with urllib.request.urlopen(self._request("/-/ready"), timeout=deadline) as response:
            assert response.status == 200
        return self

    def _request(self, path: str) -> urllib.request.Request:
        request = urllib.request.Request(f"{self.url}{path}")
        if self.login is not None:
            import base64

            token = base64.b64encode(":".join(self.login).encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        return request

    def groups(self) -> list[dict[str, Any]]:
        """``/api/v1/metrics``: one entry per group, its labels and its metrics."""
        with urllib.request.urlopen(self._request("/api/v1/metrics"), timeout=30) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        return list(body["data"])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=30)
        if self.proc is not None and self.proc.stderr is not None:
            self.proc.stderr.close()
