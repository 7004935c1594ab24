"""A TCP relay in front of a real database server that sees the server refuse a login: the moment
a secret's rotation may finish between a connect and the tool's next read of the secret.

:class:`RefusalProxy` relays bytes both ways unchanged. When the server's bytes to the client hold
its wrong-password error (PostgreSQL's ``ErrorResponse`` with SQLSTATE ``28P01``; MySQL's ``ERR``
packet with code 1045), it counts it and calls ``on_refused(n)`` **before** the client receives
the error: whatever the callback changes (the secret's current version) is in place before the
client can react to the refusal, with no timing involved.
"""

from __future__ import annotations

import select
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from helpers import free_port

if TYPE_CHECKING:
    from typing_extensions import Self

#: What a refusal looks like in the server's bytes: PostgreSQL's error field ``C28P01``; MySQL's
#: ERR packet marker ``0xff`` then error code 1045 (little-endian).
REFUSALS = {"postgresql": b"C28P01\0", "mysql": b"\xff\x15\x04"}


def accept_each(listener: socket.socket, serve: Callable[[socket.socket], None]) -> None:
    """Each connection ``listener`` accepts served by ``serve`` in a thread of its own, until it is closed."""
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        threading.Thread(target=serve, args=(client,), daemon=True).start()


@dataclass
class RefusalProxy:
    """The relay on a free loopback port, to the server at ``upstream`` speaking ``backend``'s protocol."""

    upstream: tuple[str, int]
    backend: str
    on_refused: Callable[[int], None] = lambda _n: None
    port: int = field(default_factory=free_port)
    #: Refusals seen so far, and connections relayed.
    refused: int = 0
    connections: int = 0

    def __enter__(self) -> Self:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._lock = threading.Lock()
        threading.Thread(target=accept_each, args=(self._listener, self._relay), daemon=True).start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._listener.close()

    def _relay(self, client: socket.socket) -> None:
        self.connections += 1
        marker = REFUSALS[self.backend]
        try:
            upstream = socket.create_connection(self.upstream)
        except OSError:
            client.close()
            return
        try:
            while True:
                for sock in select.select([client, upstream], [], [])[0]:
                    data = sock.recv(65536)
                    if not data:
                        return
                    if sock is upstream and marker in data:
                        with self._lock:
                            self.refused += 1
                            self.on_refused(self.refused)
                    (upstream if sock is client else client).sendall(data)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()
