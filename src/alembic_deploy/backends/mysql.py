"""MySQL and MariaDB: ``GET_LOCK`` on a dedicated connection (named locks die with the session)."""

from __future__ import annotations

import hashlib
import math
import operator
import os
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Final
from urllib.parse import unquote

from ..masking import SQLLiterals
from .base import Backend, ClientCommand, DirectSession, Driver, raw_query, register, sql_name, text

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from pathlib import Path
    from urllib.parse import SplitResult

    from sqlalchemy import Table
    from sqlalchemy.engine import URL, Connection
    from sqlalchemy.sql import Executable

# Client error codes meaning "not reachable yet": can't connect, unknown host (DNS not ready),
# gone away, lost connection, too many connections, server shutting down.
_TRANSIENT_CODES = {2002, 2003, 2005, 2006, 2013, 1040, 1053, 1927}
# Access denied (1044/1045), unknown database (1049): wrong, not "not yet".
_PERMANENT_CODES = {1044, 1045, 1049, 1698}
#: ER_ACCESS_DENIED_ERROR: the server refused the login.
ER_ACCESS_DENIED = 1045
#: URL query keys that give the driver TLS settings (and so make it require TLS).
_TLS_KEYS = ("ssl_ca", "ssl_cert", "ssl_key", "ssl_capath")
#: MySQL rejects lock names longer than this.
MAX_LOCK_NAME = 64
#: ER_LOCK_WAIT_TIMEOUT (row locks and, with lock_wait_timeout, metadata locks) and ER_LOCK_NOWAIT.
LOCK_TIMEOUT_CODES = frozenset({1205, 3572})
#: Access denied (database, table, privilege), --read-only, a read-only transaction, a read-only table.
REFUSED_WRITE_CODES = frozenset({1044, 1142, 1227, 1290, 1792, 1036})
#: Unknown column (ER_BAD_FIELD_ERROR), table (ER_NO_SUCH_TABLE), database (ER_BAD_DB_ERROR).
_ABSENT_CODES = frozenset({1054, 1146, 1049})
#: MariaDB max_statement_time (ER_STATEMENT_TIMEOUT), MySQL max_execution_time (ER_QUERY_TIMEOUT).
STATEMENT_TIMEOUT_CODES = frozenset({1969, 3024})


#: Reads a dump on stdin; fails saying why unless its end is the dump program's last line.
_DUMP_COMPLETED: Final = (
    "tail -c 1024 | grep -q -e '^-- Dump completed' || { echo 'it does not end with the -- Dump completed line "
    "mysqldump and mariadb-dump write last: it is truncated, or not their dump' >&2; exit 1; }")


def _program(names: tuple[str, ...]) -> str:
    """The first of ``names`` on PATH (the first one when none is: its absence is then reported)."""
    import shutil

    return next((name for name in names if shutil.which(name)), names[0])


def _client_target(url: URL, private: Path) -> list[str]:
    """The connection options of a MySQL client program for ``url``: the password in a 0600
    option file in ``private`` (``--defaults-extra-file`` must come first), never an argument."""
    argv = []
    if url.password is not None:
        path = private / "client.cnf"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            escaped = str(url.password).replace("\\", "\\\\").replace('"', '\\"')
            stream.write(f'[client]\npassword="{escaped}"\n')
        argv.append(f"--defaults-extra-file={path}")
    if url.host:  # over TCP, as the drivers connect to it (the clients take "localhost" as the socket)
        argv += [f"--host={url.host}", "--protocol=TCP"]
    if url.port:
        argv.append(f"--port={url.port}")
    if url.username:
        argv.append(f"--user={url.username}")
    socket = url.query.get("unix_socket")
    if isinstance(socket, str):
        argv.append(f"--socket={socket}")
    return argv


def _error_code(exc: BaseException) -> int | None:
    # args[0] in PyMySQL, mysqlclient, aiomysql, asyncmy and Connector/Python; ``errno`` in
    # MariaDB Connector/Python (whose args hold the message only).
    orig = getattr(exc, "orig", None) or exc
    args = getattr(orig, "args", None)
    if args and isinstance(args[0], int):
        return args[0]
    errno = getattr(orig, "errno", None)
    return errno if isinstance(errno, int) else None


def _server_in_transaction(connection: Any) -> int:
    return int(connection.server_status) & 1


def _is_mariadb(dbapi_connection: Any) -> bool:
    # get_server_info(): the version string in PyMySQL, mysqlclient, aiomysql and asyncmy alike
    # (PyMySQL's ``server_version`` is a tuple of ints in mysqlclient).
    raw = getattr(dbapi_connection, "driver_connection", dbapi_connection)
    try:
        info = raw.get_server_info()
    except AttributeError:
        info = raw_query(dbapi_connection, "SELECT VERSION()")[0][0]
    return "mariadb" in str(info).lower()




@register
class MySQLBackend(Backend):
    name = "mysql"
    #: "x" is a string unless ANSI_QUOTES is on; a backslash escapes unless NO_BACKSLASH_ESCAPES is.
    literals = SQLLiterals()
    # DDL commits implicitly: a failed revision may leave earlier statements applied.
    transactional_ddl = False
    partial_cause = "MySQL/MariaDB commits DDL statement by statement"
    drivers: ClassVar[dict[str, Driver]] = {
        "pymysql": Driver("pymysql", connect_timeout_arg="connect_timeout"),
        "mysqldb": Driver("MySQLdb", connect_timeout_arg="connect_timeout"),
        "aiomysql": Driver("aiomysql", is_async=True),
        "asyncmy": Driver("asyncmy", is_async=True),
        "mariadbconnector": Driver("mariadb", connect_timeout_arg="connect_timeout"),
        "mysqlconnector": Driver("mysql.connector", connect_timeout_arg="connection_timeout"),
    }
    sync_siblings = ("pymysql", "mysqldb")
    default_port = 3306
    extra = "mysql"
    volatile_progress = True
    volatile_table_options: ClassVar[dict[str, Any]] = {"mysql_engine": "MEMORY", "mariadb_engine": "MEMORY"}
    backup_suffix = ".sql"
    aurora_engine = "aurora-mysql"
    #: The dump and client programs, the server's own first (MariaDB 11 warns on the mysql* names).
    dump_programs: ClassVar[tuple[str, ...]] = ("mysqldump", "mariadb-dump")
    client_programs: ClassVar[tuple[str, ...]] = ("mysql", "mariadb")

    @property
    def backup_method(self) -> str:  # type: ignore[override]
        return _program(self.dump_programs)

    def dump_command(self, url: URL, tables: Sequence[str], exclude: Sequence[str], private: Path) -> ClientCommand:
        database = url.database or ""
        # --single-transaction: one consistent snapshot of the InnoDB tables, without locking them;
        # --no-tablespaces: MySQL 8 otherwise needs the PROCESS privilege.
        argv = [_program(self.dump_programs), *_client_target(url, private), "--single-transaction",
                "--routines", "--triggers", "--no-tablespaces"]
        argv += [f"--ignore-table={database}.{t}" for t in exclude]
        argv += [database, *tables]
        return ClientCommand(tuple(argv))

    def check_backup_command(self) -> ClientCommand | None:
        # A dump is SQL text the client would run statement by statement (each DROP TABLE first):
        # a whole one ends with the dump program's "-- Dump completed" comment.
        return ClientCommand(("sh", "-c", _DUMP_COMPLETED))

    def restore_command(self, url: URL, replace: bool, private: Path) -> ClientCommand:
        # A dump drops each table it recreates (DROP TABLE IF EXISTS): replace needs nothing more.
        return ClientCommand((_program(self.client_programs), *_client_target(url, private), url.database or ""))

    def upsert(self, table: Table, values: dict[str, Any]) -> Executable:
        from sqlalchemy.dialects.mysql import insert

        statement = insert(table).values(**values)
        key = {column.name for column in table.primary_key}
        return statement.on_duplicate_key_update(
            **{name: statement.inserted[name] for name in values if name not in key})

    direct_drivers: ClassVar[dict[str, str]] = {d: d for d in ("pymysql", "aiomysql", "asyncmy")}
    identifier_quote = "`"
    databases_like = "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE :pattern"

    def _scratch_options(self, conn: Connection) -> str:
        # The live database's character set and collation: the replayed tables' columns then
        # reflect the same, and only what the migrations really changed differs.
        row = conn.exec_driver_sql("SELECT @@character_set_database, @@collation_database").one()
        return f" CHARACTER SET {row[0]} COLLATE {row[1]}"

    def _end_sessions(self, conn: Connection, database: str) -> None:
        # A session whose transaction touched a table of the database (alembic's version row)
        # holds a metadata lock DROP DATABASE would wait for, e.g. one cut short in SELECT SLEEP().
        from sqlalchemy.exc import DBAPIError

        found = conn.execute(text("SELECT id FROM information_schema.processlist "
                                  "WHERE db = :name AND id <> CONNECTION_ID()"), {"name": database})
        for (session,) in list(found):
            try:
                conn.exec_driver_sql(f"KILL {int(session)}")
            except DBAPIError:
                pass  # it ended meanwhile

    def open_direct(
        self, url: str, parts: SplitResult, query: dict[str, str], module: str, libpq: bool,
    ) -> DirectSession | None:
        if set(query) - {"charset"}:
            return None
        import pymysql
        from pymysql.constants.CLIENT import FOUND_ROWS

        from ..fastpath.direct import CONNECT_SECONDS

        # What SQLAlchemy's pymysql dialect passes (FOUND_ROWS included), so that the full path's
        # engine can take this session over (fastpath/direct.py ``hand_over``).
        args: dict[str, Any] = {
            "host": parts.hostname or "localhost",
            "port": parts.port or 3306,
            "user": unquote(parts.username or ""),
            "password": unquote(parts.password or ""),
            "database": unquote(parts.path.lstrip("/")),
            "charset": query.get("charset", "utf8mb4"),
            "connect_timeout": CONNECT_SECONDS,
            "client_flag": FOUND_ROWS,
        }
        return DirectSession(pymysql.connect(**args, autocommit=True), "format", args)

    def journal_timestamp(self, moment: datetime) -> Any:
        return moment.replace(tzinfo=None)  # DATETIME has no zone: UTC, as SQLAlchemy writes it

    def bounded(self, sql: str, seconds: int, dbapi_connection: Any) -> str:
        # Set per statement, so a session the full path takes over keeps its own settings.
        if _is_mariadb(dbapi_connection):
            return f"SET STATEMENT max_statement_time={seconds}, lock_wait_timeout={seconds} FOR {sql}"
        verb, _, rest = sql.partition(" ")  # MySQL: optimizer hints, ignored with a warning before 8.0
        return f"{verb} /*+ SET_VAR(lock_wait_timeout={seconds}) MAX_EXECUTION_TIME({seconds * 1000}) */ {rest}"

    def is_auth_failure(self, exc: BaseException) -> bool:
        return _error_code(exc) == ER_ACCESS_DENIED

    def tls_required_problem(self, url: URL) -> str | None:
        # SQLAlchemy's MySQL dialects turn ssl_* query keys into the driver's ssl settings, which
        # make PyMySQL and mysqlclient connect over TLS or not at all; ssl_mode is mysqlclient's.
        if any(key in url.query for key in _TLS_KEYS):
            return None
        if str(url.query.get("ssl_mode", "")).upper() in ("REQUIRED", "VERIFY_CA", "VERIFY_IDENTITY"):
            return None
        return ("no ssl_ca (nor ssl_cert, ssl_key, ssl_capath, or ssl_mode=REQUIRED) in its query; add "
                "?ssl_ca=/path/to/the RDS CA bundle (global-bundle.pem)")

    def is_transient(self, exc: BaseException) -> bool:
        code = _error_code(exc)
        if code in _PERMANENT_CODES:
            return False
        if code in _TRANSIENT_CODES:
            return True
        return super().is_transient(exc)

    def session_id(self, dbapi_connection: Any) -> Any:
        raw = getattr(dbapi_connection, "driver_connection", dbapi_connection)
        probes: tuple[Callable[[Any], Any], ...] = (
            lambda c: c.thread_id(),  # PyMySQL, mysqlclient, aiomysql, asyncmy
            lambda c: c.connection_id,  # Connector/Python, MariaDB Connector/Python
        )
        for probe in probes:
            try:
                return int(probe(raw))
            except (AttributeError, TypeError):
                continue
        try:
            return int(raw_query(dbapi_connection, "SELECT CONNECTION_ID()")[0][0])
        except Exception:  # noqa: BLE001 - no id: no cancel and no blocker names, the run goes on
            return None

    def session_alive(self, conn: Connection, session_id: Any) -> bool | None:
        # Connection ids are not reused while the server runs.
        query = text("SELECT COUNT(*) FROM information_schema.processlist WHERE id = :i")
        return bool(conn.execute(query, {"i": int(session_id)}).scalar())

    def cancel(self, lock_connection: Connection | None, dbapi_connection: Any, session_id: Any) -> None:
        if lock_connection is not None and session_id is not None:
            lock_connection.exec_driver_sql(f"KILL QUERY {int(session_id)}")

    def timeout_settings(
        self, dbapi_connection: Any, lock_timeout: float | None, statement_timeout: float | None
    ) -> dict[str, str | None]:
        # lock_wait_timeout bounds metadata-lock waits (the ALTER queue), innodb_lock_wait_timeout
        # row-lock waits. Statement time: MariaDB's max_statement_time covers every statement;
        # MySQL's max_execution_time only SELECTs (there is nothing better there).
        lock = f"{self.effective_lock_timeout(lock_timeout):g}" if lock_timeout else None
        settings: dict[str, str | None] = {"lock_wait_timeout": lock, "innodb_lock_wait_timeout": lock}
        if _is_mariadb(dbapi_connection):
            settings["max_statement_time"] = f"{statement_timeout:g}" if statement_timeout else None
        else:
            settings["max_execution_time"] = str(math.ceil(statement_timeout * 1000)) if statement_timeout else None
        return settings

    def effective_lock_timeout(self, seconds: float) -> float:
        # Both lock variables take whole seconds (1 at least on MySQL): round up, never down to "no wait".
        return float(max(1, math.ceil(seconds)))

    def read_settings(self, dbapi_connection: Any, names: list[str]) -> dict[str, str]:
        if not names:
            return {}
        row = raw_query(dbapi_connection, "SELECT " + ", ".join(f"@@SESSION.{n}" for n in names))[0]
        return {name: str(value) for name, value in zip(names, row, strict=True)}

    def write_settings(self, dbapi_connection: Any, values: dict[str, str]) -> None:
        if values:
            raw_query(dbapi_connection, "SET SESSION " + ", ".join(f"{k} = {v}" for k, v in values.items()))

    def send_query(
        self, dbapi_connection: Any, sql: str, params: tuple[Any, ...] | dict[str, Any],
    ) -> Callable[[], Any] | None:
        # PyMySQL (the sync driver of every async one here) sends a query and reads its reply in
        # two steps of Connection.query; other drivers wait.
        raw = getattr(dbapi_connection, "driver_connection", None) or dbapi_connection
        if not type(raw).__module__.startswith("pymysql."):
            return None
        from .._private_api import pymysql_send

        literals = (
            {k: raw.escape(v) for k, v in params.items()} if isinstance(params, dict)
            else tuple(raw.escape(v) for v in params)
        )
        return pymysql_send(raw, sql % literals)

    ddl_commits_open_transaction = True
    #: Connector/Python and MariaDB Connector/Python: ``in_transaction``; PyMySQL, aiomysql:
    #: SERVER_STATUS_IN_TRANS in the last reply's status flags.
    transaction_probes = (operator.attrgetter("in_transaction"), _server_in_transaction)

    def commits_by_itself(self, ddl: bool, in_transaction: bool | None) -> bool:
        """DDL: the server commits before and after it; DML waits for a commit."""
        return ddl

    def object_exists(
        self, dbapi_connection: Any, kind: str, name: str, table: str | None, schema: str | None,
    ) -> bool | None:
        """A table or column by selecting it (``SELECT col FROM t WHERE 1 = 0``: the server's table
        cache answers, where ``information_schema.COLUMNS`` opens the table's definition, several
        times slower); "no such table/column/database" is False. An index or constraint from
        ``information_schema`` with the schema and table given as constants (the server reads that
        one table). Table names resolve as the server resolves them (``lower_case_table_names``);
        column, index and constraint names are compared case-insensitively."""
        if any(sql_name(part) is None for part in (name, table, schema) if part is not None):
            return None
        owner = f"`{schema}`.`{table or name}`" if schema else f"`{table or name}`"
        if kind in ("table", "column"):
            try:
                column = "1" if kind == "table" else f"`{name}`"
                raw_query(dbapi_connection, f"SELECT {column} FROM {owner} WHERE 1 = 0")
            except Exception as exc:  # noqa: BLE001 - an error that does not say "absent" answers nothing
                if _error_code(exc) in _ABSENT_CODES:
                    return False
                return None
            return True
        where = f"TABLE_SCHEMA = {sql_name(schema) if schema else 'DATABASE()'}" + (
            f" AND TABLE_NAME = {sql_name(table)}" if table else "")
        wanted = sql_name(name)
        return bool(raw_query(
            dbapi_connection,
            f"SELECT 1 FROM information_schema.STATISTICS WHERE {where} AND INDEX_NAME = {wanted} UNION ALL "
            f"SELECT 1 FROM information_schema.TABLE_CONSTRAINTS WHERE {where} AND CONSTRAINT_NAME = {wanted} LIMIT 1",
        ))

    def is_refused(self, exc: BaseException) -> bool:
        return _error_code(exc) in REFUSED_WRITE_CODES

    def is_lock_timeout(self, exc: BaseException) -> bool:
        return _error_code(exc) in LOCK_TIMEOUT_CODES

    def is_statement_timeout(self, exc: BaseException) -> bool:
        return _error_code(exc) in STATEMENT_TIMEOUT_CODES

    def describe_blockers(self, conn: Connection, session_id: Any) -> list[dict[str, Any]]:
        """Row-lock blockers from ``innodb_lock_waits``; metadata-lock holders from MariaDB's
        ``metadata_lock_info`` plugin when installed (only on the tables the waiting statement
        names); otherwise every other open transaction, oldest first, marked as a likely blocker
        (a transaction that read a table keeps its metadata lock until it ends)."""
        sid = int(session_id)
        pids: dict[int, str] = {}
        row_waits = _try_rows(
            conn,
            "SELECT DISTINCT b.trx_mysql_thread_id AS pid FROM information_schema.innodb_lock_waits w "
            "JOIN information_schema.innodb_trx b ON b.trx_id = w.blocking_trx_id "
            "JOIN information_schema.innodb_trx r ON r.trx_id = w.requesting_trx_id "
            "WHERE r.trx_mysql_thread_id = :sid",
            sid,
        )
        pids.update({int(r.pid): "row lock" for r in row_waits or ()})
        waiting = _try_rows(conn, "SELECT info FROM information_schema.processlist WHERE id = :sid", sid)
        statement = (waiting[0].info or "") if waiting else ""
        holders = _try_rows(
            conn,
            "SELECT DISTINCT thread_id AS pid, table_name FROM information_schema.metadata_lock_info "
            "WHERE thread_id <> :sid AND thread_id <> CONNECTION_ID() AND table_name <> ''",
            sid,
        )
        for r in holders or ():
            if re.search(rf"\b{re.escape(r.table_name)}\b", statement, re.IGNORECASE):
                pids.setdefault(int(r.pid), "metadata lock")
        if not pids and holders is None:
            for r in _try_rows(
                conn,
                "SELECT trx_mysql_thread_id AS pid FROM information_schema.innodb_trx "
                "WHERE trx_mysql_thread_id NOT IN (:sid, CONNECTION_ID()) ORDER BY trx_started",
                sid,
            ) or ():
                pids.setdefault(int(r.pid), "open transaction (likely)")
        if not pids:
            return []
        now: datetime = conn.execute(text("SELECT NOW()")).scalar_one()
        described = []
        for pid, why in pids.items():
            row = conn.execute(
                text(
                    "SELECT p.command, p.time, p.state, LEFT(p.info, 200) AS info, t.trx_started "
                    "FROM information_schema.processlist p LEFT JOIN information_schema.innodb_trx t "
                    "ON t.trx_mysql_thread_id = p.id WHERE p.id = :pid"
                ),
                {"pid": pid},
            ).first()
            if row is None:
                continue
            running = row.command == "Query" and row.info
            since = now - timedelta(seconds=int(row.time or 0)) if running else row.trx_started
            described.append({
                "pid": pid,
                "state": f"{why}: " + ("running" if running else "idle in transaction" if row.trx_started else "idle"),
                "since": since if isinstance(since, datetime) else None,
                "query": row.info,
            })
        return described

    def lock_name(self, url_database: str | None, version_table: str, schema: str | None) -> str:
        name = super().lock_name(url_database, version_table, schema)
        if len(name) > MAX_LOCK_NAME:
            name = "alembic-deploy:" + hashlib.sha256(name.encode()).hexdigest()[:40]
        return name

    def try_acquire(self, conn: Connection, name: str) -> bool:
        return conn.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": name}).scalar() == 1

    def release(self, conn: Connection, name: str) -> None:
        conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": name})

    def describe_holder(self, conn: Connection, name: str) -> dict[str, Any]:
        holder_id = conn.execute(text("SELECT IS_USED_LOCK(:n)"), {"n": name}).scalar()
        if holder_id is None:
            return {}
        row = conn.execute(
            text("SELECT host, time FROM information_schema.processlist WHERE id = :i"),
            {"i": holder_id},
        ).first()
        return {
            "server_connection": holder_id,
            "client": row.host if row else None,
            "connected_for": f"{row.time}s" if row else None,
        }


@register
class MariaDBBackend(MySQLBackend):
    name = "mariadb"
    dump_programs = ("mariadb-dump", "mysqldump")
    client_programs = ("mariadb", "mysql")


def _try_rows(conn: Connection, sql: str, sid: int) -> list[Any] | None:
    """Rows, or None when the server lacks the table (plugin not installed, other flavour)."""
    from sqlalchemy.exc import DBAPIError

    try:
        return list(conn.execute(text(sql), {"sid": sid}))
    except DBAPIError:
        return None
