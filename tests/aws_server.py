"""AWS for the tests: moto running as a real local HTTP server, reached by boto3 through its
documented endpoint setting (``AWS_ENDPOINT_URL``), the same code path production takes with a real
endpoint. No AWS account, no patched boto3::

    def test_secret(aws):                    # fixture from conftest.py
        aws.client("secretsmanager").create_secret(Name="db", SecretString="...")
        run_cli(project, "upgrade", "--database-secret", "db", env=aws.env)

``aws.env`` is what a subprocess needs (endpoint, region, fake credentials); ``aws.client`` builds a
boto3 client against the same server for the test's own setup and checks. Each test starts from an
empty server (moto's documented ``/moto-api/reset``). Where moto cannot express a state (a
container's exit code, say), tests drive it through moto's own backend API over HTTP
(``/moto-api/``) and say so.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from helpers import free_port

REGION = "us-east-1"
#: moto accepts any credentials; these are obviously fake.
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


@dataclass
class MotoServer:
    """A moto server on a free loopback port, running in a thread of the test process."""

    port: int = field(default_factory=free_port)
    _server: Any = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """The environment a process needs to reach this server through boto3's defaults."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION,
                **FAKE_CREDENTIALS}

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(service, endpoint_url=self.endpoint, region_name=REGION,
                            aws_access_key_id="testing", aws_secret_access_key="testing",
                            aws_session_token="testing")

    def start(self) -> MotoServer:
        from moto.server import ThreadedMotoServer

        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()  # returns once the server accepts connections
        return self

    def reset(self) -> None:
        """Forget every resource (moto's documented reset endpoint)."""
        request = urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()


def moto_server() -> Iterator[MotoServer]:
    """One server per test process (pytest-xdist worker), started on first use."""
    server = MotoServer().start()
    try:
        yield server
    finally:
        server.stop()
