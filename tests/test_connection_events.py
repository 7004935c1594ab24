"""connection_events: what one connection sends (statements, commits, rollbacks, errors) reaches
its callbacks, on every backend, through SQLAlchemy's public events."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, event, exc, text
from sqlalchemy.engine import Engine

from alembic_deploy.connection_events import listen
from helpers import Database


@pytest.fixture
def engine(db: Database) -> Iterator[Engine]:
    engine = create_engine(db.url, future=True)  # the default pool: connections are reset when returned
    try:
        yield engine
    finally:
        engine.dispose()


class Seen:
    def __init__(self, tag: str = "") -> None:
        self.tag = tag
        self.events: list[Any] = []

    def callbacks(self) -> dict[str, Any]:
        return {
            "before": lambda statement, parameters, context, many: self.events.append(
                (self.tag + "before", " ".join(statement.split()).lower(), many)),
            "after": lambda: self.events.append(self.tag + "after"),
            "commit": lambda: self.events.append(self.tag + "commit"),
            "rollback": lambda: self.events.append(self.tag + "rollback"),
            "error": lambda context: self.events.append((self.tag + "error", context.is_disconnect)),
        }


def test_only_the_watched_connections_statements_reach_the_callbacks(engine: Engine) -> None:
    seen = Seen()
    with engine.connect() as watched, engine.connect() as other:
        listen(watched, **seen.callbacks())
        watched.execute(text("CREATE TABLE ev_t (id INTEGER)"))
        other.execute(text("SELECT 1"))
        watched.execute(text("INSERT INTO ev_t (id) VALUES (:id)"), [{"id": 1}, {"id": 2}])
        assert watched.execute(text("SELECT count(*) FROM ev_t")).scalar() == 2
        watched.execute(text("DROP TABLE ev_t"))
        watched.commit()
    # Each driver's own paramstyle: ?, %s or %(id)s.
    statements = [(sql.split(" values ")[0], many) for tag, sql, many in
                  (e for e in seen.events if isinstance(e, tuple))]
    assert statements == [("create table ev_t (id integer)", False), ("insert into ev_t (id)", True),
                          ("select count(*) from ev_t", False), ("drop table ev_t", False)]
    assert seen.events.count("after") == 4


def test_commits_rollbacks_and_the_pools_reset_are_seen_before_the_driver_is_told(engine: Engine) -> None:
    seen = Seen()
    with engine.connect() as conn:
        listen(conn, **seen.callbacks())
        conn.execute(text("SELECT 1"))
        conn.commit()
        conn.execute(text("SELECT 2"))
        conn.rollback()
        conn.execute(text("SELECT 3"))
        conn.commit()
    # The last rollback is the pool's, when the connection went back to it.
    assert [e for e in seen.events if isinstance(e, str) and e != "after"] == [
        "commit", "rollback", "commit", "rollback"]


def test_a_failing_statement_reaches_error_and_not_after(engine: Engine) -> None:
    seen = Seen()
    with engine.connect() as conn:
        listen(conn, **seen.callbacks())
        with pytest.raises(exc.DBAPIError):
            conn.execute(text("SELECT * FROM ev_no_such_table"))
        conn.rollback()
    assert seen.events[:3] == [("before", "select * from ev_no_such_table", False), ("error", False), "rollback"]


def test_two_listeners_share_the_connection_and_stopping_the_last_restores_it(engine: Engine) -> None:
    """Once the last listener stops, nothing of ours stands between the connection and its
    driver: a ``do_execute`` listener added afterwards is the one asked to run each statement
    (a listener left behind would run them itself first, and SQLAlchemy asks no further one)."""
    first, second = Seen("1:"), Seen("2:")
    reached_the_dialect: list[str] = []

    def dialect_listener(_cursor: Any, statement: str, *_rest: Any) -> bool:
        reached_the_dialect.append(" ".join(statement.split()).lower())
        return False  # not run here: the dialect runs it

    with engine.connect() as conn:
        stop_first = listen(conn, **first.callbacks())
        stop_second = listen(conn, **second.callbacks())
        conn.execute(text("SELECT 1"))
        stop_first()
        conn.execute(text("SELECT 2"))
        conn.commit()
        stop_second()
        for name in ("do_execute", "do_execute_no_params"):
            event.listen(engine, name, dialect_listener)
        try:
            conn.execute(text("SELECT 3"))
            conn.commit()
        finally:
            for name in ("do_execute", "do_execute_no_params"):
                event.remove(engine, name, dialect_listener)
    assert first.events == [("1:before", "select 1", False), "1:after"]
    assert second.events == [("2:before", "select 1", False), "2:after", ("2:before", "select 2", False),
                             "2:after", "2:commit"]
    assert reached_the_dialect == ["select 3"]


@pytest.fixture(params=("postgresql", "mysql"))
def server_engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    db = request.getfixturevalue("pg_db" if request.param == "postgresql" else "mysql_db")
    engine = create_engine(db.url, future=True)
    try:
        yield engine
    finally:
        engine.dispose()


def test_a_lost_session_is_a_rollback_though_no_driver_call_tells_of_it(server_engine: Engine) -> None:
    seen = Seen()
    postgres = server_engine.dialect.name == "postgresql"
    with server_engine.connect() as conn, server_engine.connect() as killer:
        listen(conn, **seen.callbacks())
        pid = conn.execute(text("SELECT pg_backend_pid()" if postgres else "SELECT CONNECTION_ID()")).scalar()
        killer.execute(text(f"SELECT pg_terminate_backend({int(pid)})" if postgres else f"KILL {int(pid)}"))
        with pytest.raises(exc.DBAPIError) as raised:
            conn.execute(text("SELECT 1"))
        assert raised.value.connection_invalidated
        conn.rollback()  # SQLAlchemy does not tell the driver: the connection is invalidated
    assert seen.events[-3:] == [("before", "select 1", False), ("error", True), "rollback"]


def test_a_connection_that_reconnected_is_followed_to_its_new_dbapi_connection(engine: Engine) -> None:
    """A retry may configure the same Connection again after it lost its session (env.py sharing
    the app's connection): a listener added then watches the commits of the new DBAPI connection."""
    first, second = Seen("1:"), Seen("2:")
    with engine.connect() as conn:
        listen(conn, **first.callbacks())
        old = conn.connection
        conn.invalidate()
        conn.execute(text("SELECT 1"))  # reconnects: a new DBAPI connection behind the same Connection
        assert conn.connection is not old
        listen(conn, **second.callbacks())
        conn.commit()
    assert "1:commit" in first.events and "2:commit" in second.events


def test_statements_and_errors_on_a_copy_of_the_connection_by_execution_options_are_seen(db: Database) -> None:
    """On SQLAlchemy 1.4 a legacy Connection's ``execution_options()`` returns a copy on the same DBAPI
    connection (Alembic's ``autocommit_block()`` runs its statements on it); on 2.0 it is the
    Connection itself. Either way what the copy sends is the watched session's; another
    connection's statements still are not."""
    engine = create_engine(db.url)  # create_engine's default: a legacy engine on 1.4
    seen = Seen()
    try:
        with engine.connect() as watched, engine.connect() as other:
            listen(watched, **seen.callbacks())
            copy = watched.execution_options(isolation_level="AUTOCOMMIT")
            copy.execute(text("SELECT 1"))
            other.execute(text("SELECT 2"))
            with pytest.raises(exc.DBAPIError):
                copy.execute(text("SELECT * FROM no_such_table"))
    finally:
        engine.dispose()
    assert [e for e in seen.events if e not in ("commit", "rollback")] == [
        ("before", "select 1", False), "after", ("before", "select * from no_such_table", False), ("error", False)]
