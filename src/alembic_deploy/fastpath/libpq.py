"""The few libpq calls the fast path needs, through ctypes, on the libpq that psycopg[binary] ships.

Why: importing psycopg (asyncio, typing_extensions, its type system) costs more than the rest of
the fast path together, only to run two statements (benchmarks/README.md has the figures). libpq
is what psycopg itself drives, so the same conninfo reaches the same server, database, role and
search_path. When that libpq is not there or does not load on its own (psycopg built against the
system's, no psycopg, or a wheel whose libpq needs libraries only psycopg's extension module
locates), or lacks a function this needs, :func:`connect` returns None and the caller uses
psycopg instead; so does a caller whose settings switch it off (``fast_path_libpq``).

Every wait is in Python (``select`` on the connection's socket, libpq's non-blocking calls), never
inside libpq, so a signal's handler runs at once (the SIGTERM handler raises), and every wait has
a deadline. What bounds a statement on the server is the caller's (the fast path sets
``statement_timeout`` and ``lock_timeout`` in the conninfo's ``options``): a connection given up
is closed without a cancel request, which would be one more connect to wait for.
"""

from __future__ import annotations

import ctypes
import select
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

_CONNECTION_BAD = 1
_PGRES_COMMAND_OK = 1
_PGRES_TUPLES_OK = 2
# PostgresPollingStatusType
_POLLING_FAILED, _POLLING_READING, _POLLING_WRITING, _POLLING_OK = 0, 1, 2, 3
#: Seconds a connect, or a statement's reply, may take unless the caller says (libpq leaves
#: ``connect_timeout`` to the caller of its non-blocking connect).
WAIT_SECONDS = 5.0
_lib: Any = None


class LibpqError(Exception):
    pass


def _bundled_libpq() -> Path | None:
    """psycopg_binary's own copy (auditwheel/delocate/delvewheel put it beside the package)."""
    from importlib.util import find_spec

    spec = find_spec("psycopg_binary")
    if spec is None or not spec.submodule_search_locations:
        return None
    package = Path(next(iter(spec.submodule_search_locations)))
    patterns = {"linux": "libpq-*.so*", "darwin": "libpq*.dylib", "win32": "libpq*.dll"}
    pattern = next((p for prefix, p in patterns.items() if sys.platform.startswith(prefix)), None)
    if pattern is None:
        return None
    folders = (package.parent / "psycopg_binary.libs", package / ".dylibs")
    found = [p for folder in folders for p in folder.glob(pattern)]
    return found[0] if len(found) == 1 else None


def _open(path: Path | None) -> Any:
    """The library at ``path``, or None when there is none or it does not load on its own: older
    wheels' libpq finds its libssl only through psycopg's extension module (psycopg-binary 3.1.4:
    "libssl-3a880ada.so.1.1: cannot open shared object file")."""
    if path is None:
        return None
    try:
        return ctypes.CDLL(str(path))
    except OSError:
        return None


def _load() -> Any:
    global _lib
    if _lib is None:
        lib = _open(_bundled_libpq())
        if lib is None:
            _lib = False
            return _lib
        try:
            _declare(lib)
        except AttributeError:  # not the libpq this was written for: psycopg instead
            _lib = False
            return _lib
        _lib = lib
    return _lib


def _declare(lib: Any) -> None:
    """Give each function this module calls its C signature (AttributeError: one is missing)."""
    ptr, text, num = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    for name, restype, argtypes in (
        ("PQconnectStart", ptr, [text]),
        ("PQconnectPoll", num, [ptr]),
        ("PQstatus", num, [ptr]),
        ("PQsocket", num, [ptr]),
        ("PQerrorMessage", text, [ptr]),
        ("PQfinish", None, [ptr]),
        ("PQsendQueryParams", num, [ptr, text, num, ptr, ctypes.POINTER(text), ptr, ptr, num]),
        ("PQconsumeInput", num, [ptr]),
        ("PQisBusy", num, [ptr]),
        ("PQgetResult", ptr, [ptr]),
        ("PQresultStatus", num, [ptr]),
        ("PQresultErrorMessage", text, [ptr]),
        ("PQntuples", num, [ptr]),
        ("PQnfields", num, [ptr]),
        ("PQgetisnull", num, [ptr, num, num]),
        ("PQgetvalue", text, [ptr, num, num]),
        ("PQclear", None, [ptr]),
    ):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes


class Connection:
    """One libpq connection; :meth:`execute` runs a statement with ``$n`` placeholders."""

    def __init__(self, lib: Any, conninfo: str, timeout: float = WAIT_SECONDS) -> None:
        self._lib = lib
        self._conn = lib.PQconnectStart(conninfo.encode())
        if not self._conn:
            raise LibpqError("out of memory")
        try:
            deadline = time.monotonic() + timeout
            status = _POLLING_WRITING
            while lib.PQstatus(self._conn) != _CONNECTION_BAD and status not in (_POLLING_OK, _POLLING_FAILED):
                self._wait(status == _POLLING_READING, deadline, "connecting")
                status = lib.PQconnectPoll(self._conn)
            if status != _POLLING_OK:
                raise LibpqError(self._error())
        except BaseException:
            self.close()
            raise

    def _error(self) -> str:
        return (self._lib.PQerrorMessage(self._conn) or b"").decode("utf-8", "replace").strip()

    def _wait(self, readable: bool, deadline: float, doing: str) -> None:
        """Until the socket is ready; a signal's handler runs meanwhile (and may raise)."""
        sock = self._lib.PQsocket(self._conn)
        remaining = deadline - time.monotonic()
        if sock < 0 or remaining <= 0:
            raise LibpqError(f"timed out {doing}" if sock >= 0 else self._error())
        select.select([sock] if readable else [], [] if readable else [sock], [], remaining)

    def execute(
        self, sql: str, params: Sequence[object] = (), timeout: float = WAIT_SECONDS,
    ) -> list[tuple[str | None, ...]]:
        lib = self._lib
        values = (ctypes.c_char_p * max(len(params), 1))(*(_text(p) for p in params))
        if not lib.PQsendQueryParams(self._conn, sql.encode(), len(params), None, values, None, None, 0):
            raise LibpqError(self._error())
        rows: list[tuple[str | None, ...]] = []
        error = None
        try:
            deadline = time.monotonic() + timeout
            while True:  # every result (then none: the connection is ready for the next statement)
                while not lib.PQconsumeInput(self._conn) or lib.PQisBusy(self._conn):
                    if lib.PQstatus(self._conn) == _CONNECTION_BAD:
                        raise LibpqError(self._error())
                    self._wait(True, deadline, "waiting for the server")
                result = lib.PQgetResult(self._conn)
                if not result:
                    break
                try:
                    if lib.PQresultStatus(result) not in (_PGRES_COMMAND_OK, _PGRES_TUPLES_OK):
                        error = error or (lib.PQresultErrorMessage(result) or b"").decode("utf-8", "replace")
                        continue
                    count, cols = lib.PQntuples(result), lib.PQnfields(result)
                    get, isnull = lib.PQgetvalue, lib.PQgetisnull
                    rows = [
                        tuple(None if isnull(result, r, c) else get(result, r, c).decode() for c in range(cols))
                        for r in range(count)
                    ]
                finally:
                    lib.PQclear(result)
        except BaseException:
            self.close()  # a statement half read: nothing else can run on this connection
            raise
        if error is not None:
            raise LibpqError(error)
        return rows

    def close(self) -> None:
        if self._conn:
            self._lib.PQfinish(self._conn)
            self._conn = None


def _text(value: object) -> bytes | None:
    """A parameter in libpq's text format (the server casts it to the column's type)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return b"t" if value else b"f"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ").encode()
    return str(value).encode()


def connect(conninfo: str, timeout: float = WAIT_SECONDS) -> Connection | None:
    """A connection through psycopg[binary]'s libpq, within ``timeout`` seconds; None when that
    libpq is not installed. Connection failures raise :class:`LibpqError`."""
    lib = _load()
    if not lib:
        return None
    return Connection(lib, conninfo, timeout)
