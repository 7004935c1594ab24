"""What this process changes in DBAPI drivers, in one place (both the fast path's direct session and
the engines of the full path call in here before they connect).

PyMySQL 1.2 and later, given no TLS options, connect in "preferred" mode and build a new default
TLS context for every connection (``ssl.create_default_context()``: it loads the system CA store,
~20 ms), whether or not the server then offers TLS. A full upgrade opens two connections in this
process (the lock session and env.py's migrating connection) where plain ``alembic`` opens one, so that
second context was a fixed cost of ~20 ms. :func:`share_pymysql_default_tls` lets every
connection of this process made without TLS options use one such context, built on the first
connect exactly as PyMySQL builds it: TLS contexts are made to be shared by many connections, and
PyMySQL only wraps sockets with it. Connections given TLS options (a CA, a certificate, a
context) are untouched.
"""

from __future__ import annotations

from typing import Any


def share_pymysql_default_tls() -> None:
    """Idempotent; does nothing when PyMySQL is not installed or no longer builds its context in
    ``Connection._create_ssl_ctx``."""
    try:
        from pymysql.connections import Connection
    except ImportError:
        return
    build = getattr(Connection, "_create_ssl_ctx", None)
    if build is None or getattr(build, "shared_default", False):
        return
    shared: list[Any] = []

    def create_ssl_ctx(self: Any, sslp: Any) -> Any:
        if not (isinstance(sslp, dict) and not sslp):
            return build(self, sslp)
        if not shared:
            shared.append(build(self, sslp))
        return shared[0]

    create_ssl_ctx.shared_default = True  # type: ignore[attr-defined]
    Connection._create_ssl_ctx = create_ssl_ctx  # type: ignore[method-assign]
