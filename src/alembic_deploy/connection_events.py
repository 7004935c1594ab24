"""What one SQLAlchemy connection tells its database: each statement, commit and rollback.

* statements: the dialect's ``do_execute`` / ``do_execute_no_params`` / ``do_executemany``
  events, which replace the DBAPI call. The listener runs the dialect's own method between the
  ``before`` and ``after`` callbacks; other connections of the engine pass through untouched.
  (SQLAlchemy's ``before_cursor_execute``/``after_cursor_execute`` would do as well, at the cost
  of every execution point of the connection dispatching: these run once per statement.)
* commits and rollbacks: the Connection's ``commit`` and ``rollback`` events (fired before the
  driver is told), and the pool's ``reset`` event when the connection goes back to the pool
  without the Connection having ended its transaction (the pool then rolls back);
* errors: the dialect's ``handle_error`` event, for this connection's statements. A lost
  connection is also a rollback (the server rolls back what the session had not committed), and
  the Connection's own rollback after it is not reported again.

Callbacks run in the order they were registered, ``before`` before the statement is sent,
``commit``/``rollback`` before the driver is told (as SQLAlchemy's events of those names).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

#: ``before(statement, parameters, context, executemany)``: the statement, as the driver gets it.
Before = Callable[[str, Any, Any, bool], None]
#: ``error(context)``: SQLAlchemy's ExceptionContext of a statement of this connection.
OnError = Callable[[Any], None]

#: One watch per connection being listened to (a Connection hashes by identity).
_WATCHES: dict[Connection, _Watch] = {}


def listen(
    connection: Connection,
    before: Before | None = None,
    after: Callable[[], None] | None = None,
    commit: Callable[[], None] | None = None,
    rollback: Callable[[], None] | None = None,
    error: OnError | None = None,
) -> Callable[[], None]:
    """Call these around what ``connection`` sends; returns the function that stops it."""
    watch = _WATCHES.get(connection)
    if watch is None:
        watch = _WATCHES[connection] = _Watch(connection)
    else:
        watch.follow(connection.connection)
    callbacks = (before, after, commit, rollback, error)
    watch.add(callbacks)

    def remove() -> None:
        if watch.discard(callbacks):
            watch.close()
            if _WATCHES.get(connection) is watch:
                del _WATCHES[connection]

    return remove


class _Watch:
    """The listeners of one connection, installed once for all its callbacks."""

    def __init__(self, connection: Connection) -> None:
        from sqlalchemy import event

        self.connection = connection
        self.engine = connection.engine
        self.dialect = connection.dialect
        #: The pool's proxy of the DBAPI connection (kept: the Connection forgets it once closed).
        self.proxy: Any = connection.connection
        self.registered: list[tuple[Callable[..., Any] | None, ...]] = []
        self.befores: list[Before] = []
        self.afters: list[Callable[[], None]] = []
        self.commits: list[Callable[[], None]] = []
        self.rollbacks: list[Callable[[], None]] = []
        self.errors: list[OnError] = []
        dialect = self.dialect
        self._events = (("do_execute", self._listener(dialect.do_execute, False)),
                        ("do_execute_no_params", self._listener(dialect.do_execute_no_params, False)),
                        ("do_executemany", self._listener(dialect.do_executemany, True)),
                        ("handle_error", self._error))
        for name, fn in self._events:
            event.listen(self.engine, name, fn)
        self._hook()

    def _hook(self) -> None:
        from sqlalchemy import event

        self.dbapi: Any = self.proxy.dbapi_connection
        self.lost = False
        event.listen(self.connection, "commit", self._commit)
        event.listen(self.connection, "rollback", self._rollback)
        event.listen(self.engine, "reset", self._reset, named=True)

    def _unhook(self) -> None:
        from sqlalchemy import event

        for target, name, fn in ((self.connection, "commit", self._commit),
                                 (self.connection, "rollback", self._rollback),
                                 (self.engine, "reset", self._reset)):
            if event.contains(target, name, fn):
                event.remove(target, name, fn)

    def follow(self, proxy: Any) -> None:
        """The Connection reconnected since (it was invalidated): watch its new DBAPI connection."""
        if proxy is not self.proxy:
            self._unhook()
            self.proxy = proxy
            self._hook()

    def add(self, callbacks: tuple[Callable[..., Any] | None, ...]) -> None:
        self.registered.append(callbacks)
        self._index()

    def discard(self, callbacks: tuple[Callable[..., Any] | None, ...]) -> bool:
        """Forget ``callbacks``; True when none are left."""
        if callbacks in self.registered:
            self.registered.remove(callbacks)
            self._index()
        return not self.registered

    def _index(self) -> None:
        lists: tuple[list[Any], ...] = (self.befores, self.afters, self.commits, self.rollbacks, self.errors)
        for position, target in enumerate(lists):
            target[:] = [c[position] for c in self.registered if c[position] is not None]

    def close(self) -> None:
        from sqlalchemy import event

        for name, fn in self._events:
            if event.contains(self.engine, name, fn):
                event.remove(self.engine, name, fn)
        self._unhook()

    # -- the dialect's execution events: one of them runs each statement -------------------------
    def _listener(self, run: Callable[..., None], many: bool) -> Callable[..., bool]:
        """The listener of a ``do_execute*`` event, which replaces ``run`` (the dialect's method)
        for this connection's statements: ``(cursor, statement, [parameters,] context)``."""
        connection, befores, afters = self.connection, self.befores, self.afters  # lists kept in place

        def listener(cursor: Any, statement: str, *rest: Any) -> bool:
            context = rest[-1]
            if context.root_connection is not connection and not self._copy(context.root_connection):
                return False
            parameters = rest[0] if len(rest) == 2 else None
            for before in befores:
                before(statement, parameters, context, many)
            run(cursor, statement, *rest)
            for after in afters:
                after()
            return True

        return listener

    def _copy(self, other: Any) -> bool:
        """``other`` is a copy of the watched Connection on its DBAPI connection: on SQLAlchemy 1.4 a
        legacy Connection's ``execution_options()`` returns one (Alembic's ``autocommit_block()``
        runs its statements on it), where 2.0 changes the Connection itself."""
        return other is not None and not other.invalidated and other.connection is self.proxy

    def _error(self, context: Any) -> None:
        if context.connection is not self.connection and not self._copy(context.connection):
            return
        for on_error in self.errors:
            on_error(context)
        if context.is_disconnect:
            # The session is gone, and with it what it had not committed: a rollback no driver
            # call will tell of (SQLAlchemy does not roll back an invalidated connection).
            self.lost = True
            for fn in self.rollbacks:
                fn()

    # -- the driver told to commit or roll back ----------------------------------------------------
    def _commit(self, _connection: Any) -> None:
        for fn in self.commits:
            fn()

    def _rollback(self, connection: Any) -> None:
        if self.lost and connection.invalidated:
            return  # reported when the session was lost; no driver call follows
        for fn in self.rollbacks:
            fn()

    def _reset(self, dbapi_connection: Any, **kw: Any) -> None:
        """The pool takes the connection back: it rolls back unless the Connection already ended
        its transaction (``reset_state``: SQLAlchemy 2.0 and later; 1.4 always rolls back)."""
        if dbapi_connection is not self.dbapi:
            return
        state = kw.get("reset_state")
        if state is not None and (state.transaction_was_reset or not state.asyncio_safe):
            return
        for fn in self.rollbacks:
            fn()
