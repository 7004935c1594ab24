"""The few libpq calls the fast path needs, through ctypes, on the libpq that psycopg[binary] ships.

Why: importing psycopg costs ~250 ms (asyncio, typing_extensions, its type system), more than the
rest of the fast path together, only to run two statements. libpq is what psycopg itself drives,
so the same conninfo reaches the same server, database, role and search_path. When that libpq is
not there or does not load on its own (psycopg built against the system's, no psycopg, or a wheel
whose libpq needs libraries only psycopg's extension module locates), :func:`connect` returns None
and the caller uses a driver instead.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

_CONNECTION_OK = 0
_PGRES_COMMAND_OK = 1
_PGRES_TUPLES_OK = 2
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
    found = [p for folder in (package.parent / "psycopg_binary.libs", package / ".dylibs") for p in folder.glob(pattern)]
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
        ptr, text, num = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
        for name, restype, argtypes in (
            ("PQconnectdb", ptr, [text]),
            ("PQstatus", num, [ptr]),
            ("PQerrorMessage", text, [ptr]),
            ("PQfinish", None, [ptr]),
            ("PQexecParams", ptr, [ptr, text, num, ptr, ctypes.POINTER(text), ptr, ptr, num]),
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
        _lib = lib
    return _lib


class Connection:
    """One libpq connection; :meth:`execute` runs a statement with ``$n`` placeholders."""

    def __init__(self, lib: Any, conninfo: str) -> None:
        self._lib = lib
        self._conn = lib.PQconnectdb(conninfo.encode())
        if not self._conn:
            raise LibpqError("out of memory")
        if lib.PQstatus(self._conn) != _CONNECTION_OK:
            message = (lib.PQerrorMessage(self._conn) or b"").decode("utf-8", "replace")
            self.close()
            raise LibpqError(message.strip())

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[str | None, ...]]:
        values = (ctypes.c_char_p * max(len(params), 1))(*(_text(p) for p in params))
        result = self._lib.PQexecParams(self._conn, sql.encode(), len(params), None, values, None, None, 0)
        if not result:
            raise LibpqError((self._lib.PQerrorMessage(self._conn) or b"").decode("utf-8", "replace"))
        try:
            status = self._lib.PQresultStatus(result)
            if status not in (_PGRES_COMMAND_OK, _PGRES_TUPLES_OK):
                raise LibpqError((self._lib.PQresultErrorMessage(result) or b"").decode("utf-8", "replace"))
            rows, cols = self._lib.PQntuples(result), self._lib.PQnfields(result)
            get, isnull = self._lib.PQgetvalue, self._lib.PQgetisnull
            return [
                tuple(None if isnull(result, r, c) else get(result, r, c).decode() for c in range(cols))
                for r in range(rows)
            ]
        finally:
            self._lib.PQclear(result)

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


def connect(conninfo: str) -> Connection | None:
    """A connection through psycopg[binary]'s libpq; None when that libpq is not installed.
    Connection failures raise :class:`LibpqError`."""
    lib = _load()
    if not lib:
        return None
    return Connection(lib, conninfo)
