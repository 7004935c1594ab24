"""Prove "nothing to do" without Alembic, SQLAlchemy or env.py.

The most common deploy of all changes nothing, yet plain ``alembic upgrade head`` imports Alembic
and SQLAlchemy, runs env.py and imports every revision file just to learn that. The fast path
answers the same question from what can be proven statically, and declines (returns False, so the
full pipeline runs) whenever any part of the proof is missing:

1. the revision graph: every file in the versions folder is parsed (``ast``, not imported) and
   must assign ``revision``/``down_revision`` exactly once, at top level, as literals, with no
   ``depends_on``; the heads follow from that graph;
2. env.py: it must be one whose database and version table are the ones alembic-deploy would use
   (the URL comes from the config or ``DATABASE_URL``, the default ``alembic_version`` table, no
   ``-x`` arguments, no hard-coded URL, no multi-database tokens);
3. the database: read with the DBAPI driver directly; its ``alembic_version`` rows must equal the
   heads exactly, and the journal table must already exist (the no-op row goes there).

Reading the version table needs no lock: a single-statement read sees either the state before a
concurrent migration committed or after it; "equal to the heads" is only possible after.
"""

from __future__ import annotations

import ast
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from .project import ProjectConfig, read_project
from .provenance import journal_row
from .secrets import mask_url

if TYPE_CHECKING:
    from .report import DeployReport
    from .settings import Settings

_GRAPH_NAMES = ("revision", "down_revision", "depends_on", "branch_labels")
# Anything in env.py that can change which database or version table it uses.
_UNSAFE_ATTRS = {
    "get_x_argument",
    "set_main_option",
    "set_section_option",
    "get_tag_argument",
    "get_section_option",
}
_UNSAFE_KEYWORDS = {"version_table", "version_table_schema", "upgrade_token", "downgrade_token"}
_ENGINE_FACTORIES = {"create_engine", "create_async_engine", "engine_from_config", "async_engine_from_config"}
_CONFIG_READERS = {"get_main_option", "get_section", "get_alembic_option"}
_URL_ENV = "DATABASE_URL"
# libpq URI parameters that mean the same to libpq as to SQLAlchemy's psycopg dialects.
_LIBPQ_PARAMS = {"sslmode", "sslrootcert", "sslcert", "sslkey", "application_name", "connect_timeout",
                 "target_session_attrs", "options", "host", "port"}


def try_noop(settings: Settings, target: str, report: DeployReport) -> bool:
    """True when the database provably needs nothing; the no-op is then journaled and reported."""
    if target not in ("head", "heads"):
        return False
    project = read_project(settings.config_path, settings.name)
    url = settings.database_url or project.ini_url
    if not url or project.script_dir is None or project.sourceless or project.recursive:
        return False
    if not env_py_is_plain(project.script_dir / "env.py"):
        return False
    heads = static_heads(project)
    if not heads or (target == "head" and len(heads) != 1):
        return False
    db = _DirectConnection.open(url)
    if db is None:
        return False
    try:
        current = db.query_column("SELECT version_num FROM alembic_version")
        if current is None or sorted(current) != sorted(heads):
            return False
        report.outcome = "noop"
        report.fast_path = True
        report.from_revisions = report.to_revisions = tuple(sorted(current))
        report.database = mask_url(url)
        report.backend = db.backend
        report.finished_at = time.time()
        return db.insert_journal_row(settings, report)
    finally:
        db.close()


# -- 1. the revision graph ------------------------------------------------------------------------
def static_heads(project: ProjectConfig) -> tuple[str, ...] | None:
    revisions: dict[str, tuple[str, ...]] = {}
    for folder in project.version_dirs:
        if not folder.is_dir():
            continue
        for entry in os.scandir(folder):
            name = entry.name
            if not name.endswith(".py") or name.startswith((".#", "__init__")) or not entry.is_file():
                continue
            graph = _literal_graph(Path(entry.path))
            if graph is None:
                return None
            rev, down = graph
            if rev in revisions:
                return None
            revisions[rev] = down
    referenced = {d for downs in revisions.values() for d in downs}
    if not revisions or not referenced <= revisions.keys():
        return None
    return tuple(sorted(revisions.keys() - referenced))


def _literal_graph(path: Path) -> tuple[str, tuple[str, ...]] | None:
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return None
    found: dict[str, Any] = {}
    for node in tree.body:
        targets: list[ast.expr]
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        for target in targets:
            if isinstance(target, ast.Name) and target.id in _GRAPH_NAMES:
                if target.id in found:
                    return None
                try:
                    found[target.id] = ast.literal_eval(value)
                except ValueError:
                    return None
    # A graph name bound anywhere else (a `global`, a loop, a function) defeats the proof.
    for node in ast.walk(tree):
        if isinstance(node, ast.Global) and set(node.names) & set(_GRAPH_NAMES):
            return None
    rev, down = found.get("revision"), found.get("down_revision")
    if not isinstance(rev, str) or found.get("depends_on"):
        return None
    if down is None:
        downs: tuple[str, ...] = ()
    elif isinstance(down, str):
        downs = (down,)
    elif isinstance(down, (tuple, list)) and all(isinstance(d, str) for d in down):
        downs = tuple(down)
    else:
        return None
    return rev, downs


# -- 2. env.py ------------------------------------------------------------------------------------
def env_py_is_plain(path: Path) -> bool:
    """True when env.py provably migrates the database alembic-deploy connects to, through the
    default version table (see the module docstring)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return False
    url_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and _is_url_source(node.value, set()):
            url_names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in _UNSAFE_ATTRS:
            return False
        if isinstance(node, ast.Name) and node.id in _UNSAFE_ATTRS | {"getenv", "environ"}:
            return False
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and "://" in node.value:
            return False
        if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
            if not _reads_only_url_env(node, tree):
                return False
        if isinstance(node, ast.Call):
            if any(k.arg in _UNSAFE_KEYWORDS or k.arg is None for k in node.keywords):
                return False
            name = _call_name(node)
            if name in _ENGINE_FACTORIES:
                source = node.args[0] if node.args else next(
                    (k.value for k in node.keywords if k.arg in ("url", "configuration")), None
                )
                if source is None or not _is_url_source(source, url_names):
                    return False
    return True


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _is_url_source(node: ast.expr, url_names: set[str]) -> bool:
    if isinstance(node, ast.Name):
        return node.id in url_names
    if isinstance(node, ast.Call):
        name = _call_name(node)
        if name in _CONFIG_READERS:
            return True
        if name in ("get", "getenv"):
            return _first_string(node) == _URL_ENV
    if isinstance(node, ast.Subscript):
        return isinstance(node.slice, ast.Constant) and node.slice.value == _URL_ENV
    if isinstance(node, ast.BoolOp):
        return all(_is_url_source(v, url_names) for v in node.values)
    return False


def _first_string(node: ast.Call) -> str | None:
    if node.args and isinstance(node.args[0], ast.Constant):
        return node.args[0].value
    return None


def _reads_only_url_env(attr: ast.Attribute, tree: ast.Module) -> bool:
    """``os.environ[...]``/``os.environ.get(...)``/``os.getenv(...)`` naming only DATABASE_URL."""
    for parent in ast.walk(tree):
        if isinstance(parent, ast.Subscript) and parent.value is attr:
            return isinstance(parent.slice, ast.Constant) and parent.slice.value == _URL_ENV
        if isinstance(parent, ast.Call):
            func = parent.func
            if func is attr or (isinstance(func, ast.Attribute) and func.value is attr and func.attr == "get"):
                return _first_string(parent) == _URL_ENV
    return False


# -- 3. the database, through the DBAPI driver ------------------------------------------------------
class _DirectConnection:
    def __init__(self, backend: str, conn: Any, paramstyle: str) -> None:
        self.backend = backend
        self.conn = conn
        self.paramstyle = paramstyle

    @classmethod
    def open(cls, url: str) -> _DirectConnection | None:
        try:
            parts = urlsplit(url)
        except ValueError:
            return None
        dialect, _, driver = parts.scheme.partition("+")
        query = dict(parse_qsl(parts.query))
        try:
            if dialect == "sqlite" and driver in ("", "pysqlite", "aiosqlite") and not query:
                return cls._sqlite(url)
            if dialect == "postgresql" and driver in ("", "psycopg", "psycopg2", "asyncpg", "psycopg_async"):
                if set(query) - _LIBPQ_PARAMS:
                    return None
                return cls._postgresql(parts, driver)
            if dialect in ("mysql", "mariadb") and driver in ("pymysql", "aiomysql", "asyncmy"):
                if set(query) - {"charset"}:
                    return None
                return cls._mysql(parts, query)
        except Exception:  # noqa: BLE001 - any doubt (driver missing, server down): full path
            return None
        return None

    @classmethod
    def _sqlite(cls, url: str) -> _DirectConnection | None:
        import sqlite3

        path = url.split(":///", 1)[1] if ":///" in url else ""
        if not path or path == ":memory:" or not Path(path).is_file():
            return None
        return cls("sqlite", sqlite3.connect(path, timeout=60, isolation_level=None), "qmark")

    @classmethod
    def _postgresql(cls, parts: Any, driver: str) -> _DirectConnection | None:
        conninfo = parts._replace(scheme="postgresql").geturl()
        if driver == "psycopg2":
            import psycopg2

            conn = psycopg2.connect(conninfo, connect_timeout=5)
            conn.autocommit = True
        else:
            import psycopg

            conn = psycopg.connect(conninfo, connect_timeout=5, autocommit=True)
        return cls("postgresql", conn, "format")

    @classmethod
    def _mysql(cls, parts: Any, query: dict[str, str]) -> _DirectConnection | None:
        import pymysql

        conn = pymysql.connect(
            host=parts.hostname or "localhost",
            port=parts.port or 3306,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            database=unquote(parts.path.lstrip("/")),
            charset=query.get("charset", "utf8mb4"),
            connect_timeout=5,
            autocommit=True,
        )
        return cls("mysql", conn, "format")

    def query_column(self, sql: str) -> list[str] | None:
        try:
            cur = self.conn.cursor()
            cur.execute(sql)
            return [row[0] for row in cur.fetchall()]
        except Exception:  # noqa: BLE001 - missing table or anything odd: full path
            return None

    def insert_journal_row(self, settings: Settings, report: DeployReport) -> bool:
        row = journal_row(settings, report, "noop")
        now = datetime.fromtimestamp(report.started_at, timezone.utc)
        end = datetime.fromtimestamp(report.finished_at or time.time(), timezone.utc)
        if self.backend == "sqlite":
            # SQLAlchemy's SQLite DateTime storage format.
            row["started_at"], row["finished_at"] = (d.strftime("%Y-%m-%d %H:%M:%S.%f") for d in (now, end))
        elif self.backend == "mysql":
            row["started_at"], row["finished_at"] = (d.replace(tzinfo=None) for d in (now, end))
        else:
            row["started_at"], row["finished_at"] = now, end
        mark = "?" if self.paramstyle == "qmark" else "%s"
        table = settings.journal_table
        quote = "`" if self.backend == "mysql" else '"'
        sql = (
            f"INSERT INTO {quote}{table}{quote} ({', '.join(row)}) "
            f"VALUES ({', '.join([mark] * len(row))})"
        )
        try:
            cur = self.conn.cursor()
            cur.execute(sql, tuple(row.values()))
        except Exception:  # noqa: BLE001 - no journal yet: the full path creates it
            return False
        return True

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass

