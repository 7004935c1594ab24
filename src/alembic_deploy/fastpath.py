"""Prove "nothing to do" without Alembic, SQLAlchemy or env.py.

The most common deploy of all changes nothing, yet plain ``alembic upgrade head`` imports Alembic
and SQLAlchemy, runs env.py and imports every revision file just to learn that. The fast path
answers the same question from what can be proven statically, and declines (returns False, so the
full pipeline runs) whenever any part of the proof is missing:

1. the project: ``alembic.ini`` names plain folders, read the way Alembic reads them (no package
   resources, no ``sourceless``, no recursive version locations, no ``[tool.alembic]``), and
   gives the engine no option that could change where it connects (``sqlalchemy.plugins``...);
   the target is ``head``/``heads`` and there are no ``-x`` arguments;
2. the revision graph: every file Alembic would load from the versions folders is parsed
   (``ast``, never imported). The names Alembic reads from the module (``revision``,
   ``down_revision``, ``branch_labels``, ``depends_on``) must be bound exactly once, by a
   top-level assignment of a literal, and nothing that runs at import time may rebind them: no
   other binding of those names, no star import, no ``globals()``/``exec``/``setattr``-style
   access, no call into the file's own functions, no module ``__getattr__``. ``depends_on`` and
   ``branch_labels`` must be empty. The heads follow from that graph, which must be complete and
   acyclic;
3. env.py: it must provably migrate the database alembic-deploy connects to, through the default
   version table: every connection it opens comes from ``create_engine``/``engine_from_config``
   (or the async twins) fed by ``sqlalchemy.url`` of its own ``context.config`` section or by
   ``os.environ["DATABASE_URL"]`` (alembic-deploy sets both to the URL it uses); no other
   environment variable, no hard-coded URL, no ``-x``/tag arguments, no
   ``version_table``/``version_table_schema``/multi-database tokens, no statement or event hook
   or ``connect_args``/``schema_translate_map`` that could move it to another schema;
4. the database, read first, so that an empty one, or one at a revision another file quotes
   (most likely as its ``down_revision``: the database is behind), declines before any file is
   parsed. It is read without SQLAlchemy: through the DBAPI driver env.py's URL names, which
   must be installed (env.py would fail without it), or for PostgreSQL through libpq itself
   (:mod:`alembic_deploy.libpq`). Its ``alembic_version`` rows must equal the heads exactly, the
   journal table must exist (the no-op row goes there) and hold no ``running`` row (a crashed
   run, which the full path reports).

What the proof trusts, as plain alembic does: installed libraries and the modules env.py and the
revision files import do not rewrite those files' globals or the connection's target.

Reading the version table needs no lock: a single-statement read sees either the state before a
concurrent migration committed or after it; "equal to the heads" is only possible after.

Parsing is the expensive part (~0.5 ms a file), so each versions folder keeps a cache of the
per-file results keyed by a digest of each file's *content* (never by mtime or size): a stale
cache can only miss, never answer wrongly. It lives in ``versions/__pycache__/`` beside Python's
own bytecode cache, or under ``$XDG_CACHE_HOME/alembic-deploy`` when bytecode writing is off
(``PYTHONDONTWRITEBYTECODE``) or the folder is read-only; when neither is writable there is none.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from . import __version__
from .errors import AlembicDeployError
from .project import ProjectConfig, read_project
from .provenance import journal_row
from .secrets import mask_url

if TYPE_CHECKING:
    from .report import DeployReport
    from .settings import Settings

_URL_ENV = "DATABASE_URL"
_DEFAULT_VERSION_TABLE = "alembic_version"
# ini keys engine_from_config turns into create_engine() arguments that cannot change which
# database, schema or table a connection sees.
_HARMLESS_ENGINE_OPTIONS = frozenset(
    f"sqlalchemy.{key}"
    for key in ("echo", "echo_pool", "pool_size", "max_overflow", "pool_timeout", "pool_recycle",
                "pool_pre_ping", "pool_reset_on_return", "pool_use_lifo", "hide_parameters", "future",
                "logging_name", "pool_logging_name", "query_cache_size")
)


def try_noop(settings: Settings, target: str, report: DeployReport) -> bool:
    """True when the database provably needs nothing; the no-op is then journaled and reported."""
    if target not in ("head", "heads") or settings.x:
        return False
    project = read_project(settings.config_path, settings.name)
    url = settings.database_url or project.ini_url
    if not url or project.script_dir is None or project.unsupported or project.sourceless or project.recursive:
        return False
    if set(project.engine_options) - _HARMLESS_ENGINE_OPTIONS:
        return False  # e.g. sqlalchemy.plugins: engine_from_config in env.py would apply it
    if not env_py_is_plain(project.script_dir / "env.py", project.section):
        return False
    db = _DirectConnection.open(url)
    if db is None:
        return False
    try:
        # The database first: an empty one (the first deploy, every CI run) declines before
        # the revision files are even read.
        current = db.query_column(f"SELECT version_num FROM {_DEFAULT_VERSION_TABLE}")
        if not current:
            return False
        files = revision_files(project)
        if files is None or _quoted_elsewhere(files, current):
            return False  # most likely a newer revision names it: behind, so no need to parse
        heads = static_heads(files)
        if not heads or (target == "head" and len(heads) != 1) or sorted(current) != sorted(heads):
            return False
        if db.has_unfinished_run(settings.journal_table):  # a crashed run: the full path reports it
            return False
        at = tuple(sorted(current))
        proven = {"outcome": "noop", "fast_path": True, "from_revisions": at, "to_revisions": at,
                  "database": mask_url(url), "backend": db.backend, "finished_at": time.time()}
        # The report changes only once the no-op is journaled; if that fails the full path runs.
        if not db.insert_journal_row(settings, replace(report, **proven)):
            return False
        for name, value in proven.items():
            setattr(report, name, value)
        return True
    finally:
        db.close()


# -- 2. the revision graph ------------------------------------------------------------------------
#: Module attributes Alembic's Script reads (alembic/script/base.py, Script.__init__/_from_path).
GRAPH_NAMES = frozenset({"revision", "down_revision", "branch_labels", "depends_on"})
# Builtins and attributes that read or write a module's namespace behind the parser's back.
_DYNAMIC_NAMES = frozenset(
    {"globals", "locals", "vars", "exec", "eval", "compile", "setattr", "delattr", "__import__",
     "__builtins__", "__dict__"}
)
_DYNAMIC_ATTRS = frozenset({"__dict__", "modules", "f_globals", "f_locals", "__setattr__", "__delattr__"})

Graph = dict[str, tuple[str, ...]]


Sources = dict[Path, dict[str, bytes]]


def revision_files(project: ProjectConfig) -> Sources | None:
    """``{versions folder: {file name: content}}`` of the files Alembic loads; None to decline.

    Alembic loads every ``*.py`` directly in a folder except ``__init__*`` and ``.#*``
    (``_only_source_rev_file``); a folder that does not exist is skipped, as Alembic does.
    """
    found: Sources = {}
    for folder in project.version_dirs:
        if not folder.exists():
            continue
        if not folder.is_dir():
            return None
        sources = found.setdefault(folder, {})
        try:
            entries = list(os.scandir(folder))
            for entry in entries:
                name = entry.name
                if not name.endswith(".py") or name.startswith((".#", "__init__")) or "\n" in name:
                    continue
                if entry.is_dir():
                    continue  # os.walk lists it under dirs: alembic does not load it
                with open(entry.path, "rb") as fh:
                    sources[name] = fh.read()
        except OSError:
            return None  # a broken link or unreadable file: alembic would fail on it
    return found


def _quoted_elsewhere(files: Sources, revisions: list[str]) -> bool:
    """A revision id the database is at, quoted in two files or more: its own and, most likely,
    a child's ``down_revision``. Declining needs no proof, so no parse is spent to confirm it."""
    for rev in revisions:
        marks = (f'"{rev}"'.encode(), f"'{rev}'".encode())
        hits = sum(1 for sources in files.values() for text in sources.values() if any(m in text for m in marks))
        if hits > 1:
            return True
    return False


def static_heads(files: Sources) -> tuple[str, ...] | None:
    """The heads Alembic would compute from these files, or None when they cannot be proven."""
    revisions: Graph = {}
    for folder, sources in files.items():
        graph = folder_graph(folder, sources)
        if graph is None:
            return None
        for rev, downs in graph.items():
            if rev in revisions:
                return None
            revisions[rev] = downs
    if not revisions or not _is_complete_dag(revisions):
        return None
    referenced = {d for downs in revisions.values() for d in downs}
    return tuple(sorted(revisions.keys() - referenced))


def _is_complete_dag(revisions: Graph) -> bool:
    """Every down revision exists and there is no cycle (alembic raises on both)."""
    children: dict[str, list[str]] = {}
    pending = {}
    for rev, downs in revisions.items():
        if any(d not in revisions for d in downs) or len(set(downs)) != len(downs):
            return False
        pending[rev] = len(downs)
        for d in downs:
            children.setdefault(d, []).append(rev)
    ready = [rev for rev, n in pending.items() if n == 0]
    seen = 0
    while ready:
        rev = ready.pop()
        seen += 1
        for child in children.get(rev, ()):
            pending[child] -= 1
            if pending[child] == 0:
                ready.append(child)
    return seen == len(revisions)


def folder_graph(folder: Path, sources: dict[str, bytes]) -> Graph | None:
    """``{revision: down_revisions}`` of one folder's files; None to decline. Parsing each file
    is skipped when the folder's cache has a result for its exact content."""
    cache = _GraphCache(folder)
    graph: Graph = {}
    for name, source in sources.items():
        digest = hashlib.blake2b(source, digest_size=16).hexdigest()
        found = cache.get(name, digest)
        if found is None:
            found = revision_of(source)
            if found is None:
                return None
            cache.put(name, digest, found)
        rev, downs = found
        if rev in graph:
            return None
        graph[rev] = downs
    cache.save(keep=sources)
    return graph


def revision_of(source: bytes) -> tuple[str, tuple[str, ...]] | None:
    """(revision, down revisions) that importing ``source`` provably gives Alembic, or None.

    Only code that runs at import time can change what Alembic reads, so only that code is
    examined: every top-level statement except the bodies of top-level functions, which run
    only if import-time code calls them (and any reference to them at import time declines).
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    local_functions = {
        node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
    }
    if local_functions & (GRAPH_NAMES | {"__getattr__"}):
        return None
    literals: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            graph_targets = [t for t in targets if isinstance(t, ast.Name) and t.id in GRAPH_NAMES]
            for target in graph_targets:
                if target.id in literals or node.value is None:
                    return None
                try:
                    literals[target.id] = ast.literal_eval(node.value)
                except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                    return None
            rest: list[ast.AST] = [t for t in targets if t not in graph_targets]
            if isinstance(node, ast.AnnAssign):
                rest.append(node.annotation)
            if node.value is not None:
                rest.append(node.value)
            if not all(_import_time_safe(part, local_functions) for part in rest):
                return None
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if not all(_import_time_safe(part, local_functions) for part in _evaluated_at_def(node)):
                return None
        elif not _import_time_safe(node, local_functions):
            return None
    return _graph_entry(literals)


def _graph_entry(literals: dict[str, Any]) -> tuple[str, tuple[str, ...]] | None:
    rev, down = literals.get("revision"), literals.get("down_revision", ...)
    if not isinstance(rev, str) or not rev or down is ...:
        return None  # alembic falls back to the file name, or fails on a missing down_revision
    if literals.get("depends_on") or literals.get("branch_labels"):
        return None
    if down is None:
        return rev, ()
    if isinstance(down, str):
        return rev, (down,)
    if isinstance(down, (tuple, list)) and all(isinstance(d, str) and d for d in down):
        return rev, tuple(down)
    return None


def _evaluated_at_def(node: ast.FunctionDef | ast.AsyncFunctionDef) -> Iterator[ast.AST]:
    """The parts of a ``def`` that run when the module is imported."""
    yield from node.decorator_list
    args = node.args
    yield from args.defaults
    yield from (d for d in args.kw_defaults if d is not None)
    for arg in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg):
        if arg is not None and arg.annotation is not None:
            yield arg.annotation
    if node.returns is not None:
        yield node.returns


def _import_time_safe(root: ast.AST, local_functions: set[str]) -> bool:
    """No binding of a graph name, no dynamic namespace access, no use of the file's own functions."""
    for node in ast.walk(root):
        if isinstance(node, ast.Name):
            if node.id in _DYNAMIC_NAMES or node.id in local_functions:
                return False
            if node.id in GRAPH_NAMES and not isinstance(node.ctx, ast.Load):
                return False
        elif isinstance(node, ast.Attribute):
            if node.attr in _DYNAMIC_ATTRS:
                return False
            if node.attr in GRAPH_NAMES and not isinstance(node.ctx, ast.Load):
                return False  # importlib.import_module(__name__).revision = ...
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                if alias.name == "*" or (alias.asname or alias.name.split(".")[0]) in GRAPH_NAMES:
                    return False
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            if GRAPH_NAMES.intersection(node.names):
                return False
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name in GRAPH_NAMES:
                return False
        elif isinstance(node, ast.ExceptHandler):
            if node.name in GRAPH_NAMES:
                return False
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)):
            if node.name in GRAPH_NAMES:
                return False
        elif isinstance(node, ast.MatchMapping):
            if node.rest in GRAPH_NAMES:
                return False
    return True


_USER_CACHE_PREFIX = "revisions-"
#: User cache files kept (one per versions folder; CI runs in fresh temporary folders).
_USER_CACHE_KEEP = 32


class _GraphCache:
    """Per-file results of :func:`revision_of` for one folder, keyed by content digest."""

    _FORMAT = 1

    def __init__(self, folder: Path) -> None:
        self.paths = _cache_paths(folder)
        self.entries: dict[str, list[Any]] = {}
        self.dirty = False
        for path in self.paths:
            loaded = self._load(path)
            if loaded is not None:
                self.entries = loaded
                break

    def _stamp(self) -> dict[str, Any]:
        return {"format": self._FORMAT, "tool": __version__, "python": list(sys.version_info[:2])}

    def _load(self, path: Path) -> dict[str, list[Any]] | None:
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            return None
        if not isinstance(data, dict) or data.get("stamp") != self._stamp():
            return None
        files = data.get("files")
        return files if isinstance(files, dict) else None

    def get(self, name: str, digest: str) -> tuple[str, tuple[str, ...]] | None:
        entry = self.entries.get(name)
        try:
            if entry is not None and entry[0] == digest:
                rev, downs = entry[1], entry[2]
                if isinstance(rev, str) and isinstance(downs, list) and all(isinstance(d, str) for d in downs):
                    return rev, tuple(downs)
        except (IndexError, TypeError):
            pass
        return None

    def put(self, name: str, digest: str, found: tuple[str, tuple[str, ...]]) -> None:
        self.entries[name] = [digest, found[0], list(found[1])]
        self.dirty = True

    def save(self, keep: Iterable[str]) -> None:
        keep = set(keep)
        if not self.dirty and keep >= self.entries.keys():
            return
        payload = json.dumps(
            {"stamp": self._stamp(), "files": {k: v for k, v in self.entries.items() if k in keep}},
            separators=(",", ":"),
        ).encode()
        for path in self.paths:
            if _write_atomically(path, payload):
                if path.name.startswith(_USER_CACHE_PREFIX):
                    _prune(path.parent)
                return


def _cache_paths(folder: Path) -> list[Path]:
    paths = []
    if not sys.dont_write_bytecode:
        paths.append(folder / "__pycache__" / "alembic-deploy-revisions.json")
    home = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    key = hashlib.blake2b(str(folder.absolute()).encode(), digest_size=10).hexdigest()
    paths.append(Path(home) / "alembic-deploy" / f"{_USER_CACHE_PREFIX}{key}.json")
    return paths


def _prune(folder: Path, keep: int = _USER_CACHE_KEEP) -> None:
    try:
        files = sorted(folder.glob(f"{_USER_CACHE_PREFIX}*.json"), key=lambda p: p.stat().st_mtime_ns)
        for old in files[:-keep]:
            old.unlink(missing_ok=True)
    except OSError:
        pass


def _write_atomically(path: Path, payload: bytes) -> bool:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".alembic-deploy-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            os.chmod(tmp, 0o644)  # readable like the .pyc files beside it (mkstemp makes it 0600)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError:
        return False
    return True


# -- 3. env.py ------------------------------------------------------------------------------------
# Anything in env.py that can change which database, schema or version table it uses.
_UNSAFE_ATTRS = frozenset(
    {"get_x_argument", "get_tag_argument", "set_section_option", "cmd_opts", "execute", "exec_driver_sql",
     "listens_for", "listen", "execution_options", "raw_connection"}
)
_UNSAFE_KEYWORDS = frozenset(
    {"version_table", "version_table_schema", "upgrade_token", "downgrade_token", "connect_args",
     "schema_translate_map", "execution_options", "creator", "async_creator"}
)
_ENGINE_FACTORIES = frozenset({"create_engine", "create_async_engine", "engine_from_config", "async_engine_from_config"})


def env_py_is_plain(path: Path, section: str = "alembic") -> bool:
    """True when env.py provably migrates the database alembic-deploy connects to, through the
    default version table (see the module docstring)."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return False
    checker = _EnvChecker(tree, section)
    return checker.plain()


class _EnvChecker:
    """Tracks, by name, what env.py binds to its Config, a URL, an engine and a connection.
    Scopes are ignored on purpose: a name counts only when *every* binding of it in the file
    agrees."""

    def __init__(self, tree: ast.Module, section: str) -> None:
        self.tree = tree
        self.section = section
        self.parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
        self.config_names: set[str] = set()
        self.url_names: set[str] = set()
        self.engine_names: set[str] = set()
        self.connection_names: set[str] = set()
        # Names feed each other (config -> url -> engine -> connection): settle in a few passes.
        for _ in range(4):
            before = (set(self.config_names), set(self.url_names), set(self.engine_names), set(self.connection_names))
            self._classify_bindings()
            if before == (self.config_names, self.url_names, self.engine_names, self.connection_names):
                break

    def _classify_bindings(self) -> None:
        config, url, engine, connection, other = set(), set(), set(), set(), set()
        for node in ast.walk(self.tree):
            if isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                names = {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
                simple = all(isinstance(t, ast.Name) for t in targets)
                if simple and _is_context_config(node.value):
                    config |= names
                elif simple and self.is_url_source(node.value):
                    url |= names
                elif simple and self.is_engine(node.value):
                    engine |= names
                else:
                    other |= names
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                names = {n.id for n in ast.walk(node.optional_vars) if isinstance(n, ast.Name)}
                if isinstance(node.optional_vars, ast.Name) and self.opens_connection(node.context_expr):
                    connection |= names
                else:
                    other |= names
            elif isinstance(node, (ast.AugAssign, ast.NamedExpr, ast.For, ast.AsyncFor, ast.comprehension)):
                other |= {n.id for n in ast.walk(node.target) if isinstance(n, ast.Name)}
            elif isinstance(node, ast.arguments):
                # A parameter may be handed anything but a config, URL or engine; the async
                # template's do_run_migrations receives the connection from run_sync.
                connection |= {a.arg for a in (*node.posonlyargs, *node.args, *node.kwonlyargs, node.vararg, node.kwarg) if a}
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                other |= {(a.asname or a.name).split(".")[0] for a in node.names}
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                other.add(node.name)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                other.add(node.name)
            elif isinstance(node, (ast.Global, ast.Nonlocal, ast.Delete)):
                other |= set(getattr(node, "names", ())) | {
                    n.id for t in getattr(node, "targets", ()) for n in ast.walk(t) if isinstance(n, ast.Name)
                }
        # A name bound to two different kinds of thing is none of them.
        kinds = (config, url, engine, connection)
        for kind in kinds:
            kind -= other.union(*(k for k in kinds if k is not kind))
        self.config_names, self.url_names, self.engine_names, self.connection_names = config, url, engine, connection

    def plain(self) -> bool:
        if not self.binds_only_as_expected():
            return False
        connects = 0
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Attribute) and node.attr in _UNSAFE_ATTRS:
                return False
            if isinstance(node, ast.Name) and node.id in (_UNSAFE_ATTRS | {"getenv", "environ"}):
                return False
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "://" in node.value:
                return False
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                if not self.reads_only_url_env(node):
                    return False
            if not isinstance(node, ast.Call):
                continue
            if any(k.arg in _UNSAFE_KEYWORDS or k.arg is None for k in node.keywords):
                return False
            name = _call_name(node)
            if name in _ENGINE_FACTORIES and not self.is_engine(node):
                return False
            if name == "set_main_option" and not self.sets_url_from_source(node):
                return False
            if any(k.arg == "url" and not self.is_url_source(k.value) for k in node.keywords):
                return False
            if name in ("connect", "begin") and isinstance(node.func, ast.Attribute):
                if self.opens_connection(node):
                    connects += 1
                elif not (name == "begin" and self.is_connection(node.func.value)):
                    # An engine from elsewhere (the app, config.attributes): its URL is unknown.
                    return False
        return connects > 0

    def binds_only_as_expected(self) -> bool:
        """``context`` is alembic's and ``os`` the standard library's: the checks below read
        ``context.config`` and ``os.environ`` by name."""
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    bound = alias.asname or alias.name.split(".")[0]
                    if bound == "context" or (bound == "os" and alias.name != "os"):
                        return False
            elif isinstance(node, ast.ImportFrom):
                for alias in node.names:
                    bound = alias.asname or alias.name
                    if bound == "os" or (bound == "context" and (node.module, alias.name) != ("alembic", "context")):
                        return False
            elif isinstance(node, ast.Name) and node.id in ("context", "os") and not isinstance(node.ctx, ast.Load):
                return False
        return True

    def opens_connection(self, node: ast.expr) -> bool:
        """``<engine>.connect()`` or ``<engine>.begin()`` on an engine built from the URL."""
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            return False
        if node.func.attr not in ("connect", "begin") or node.args or node.keywords:
            return False
        receiver = node.func.value
        if isinstance(receiver, ast.Name):
            return receiver.id in self.engine_names
        return self.is_engine(receiver)

    def is_connection(self, node: ast.expr) -> bool:
        return isinstance(node, ast.Name) and node.id in self.connection_names

    def is_engine(self, node: ast.expr) -> bool:
        """``create_engine(<url>)`` / ``engine_from_config(<own section>, prefix="sqlalchemy.")``."""
        if not isinstance(node, ast.Call):
            return False
        name = _call_name(node)
        if name not in _ENGINE_FACTORIES:
            return False
        if any(k.arg in _UNSAFE_KEYWORDS or k.arg is None for k in node.keywords):
            return False
        keywords = {k.arg: k.value for k in node.keywords}
        if name in ("create_engine", "create_async_engine"):
            source = node.args[0] if node.args else keywords.get("url")
            return source is not None and self.is_url_source(source)
        # engine_from_config(configuration, prefix="sqlalchemy.", **kwargs): a url= kwarg wins.
        source = node.args[0] if node.args else keywords.get("configuration")
        prefix = node.args[1] if len(node.args) > 1 else keywords.get("prefix")
        if source is None or "url" in keywords or not self.is_url_source(source):
            return False
        return prefix is None or (isinstance(prefix, ast.Constant) and prefix.value == "sqlalchemy.")

    def is_url_source(self, node: ast.expr) -> bool:
        """An expression whose value is the URL alembic-deploy passes to env.py: the section's
        ``sqlalchemy.url`` in env.py's own Config, or ``os.environ`` DATABASE_URL."""
        if isinstance(node, ast.Name):
            return node.id in self.url_names
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            receiver, name = node.func.value, node.func.attr
            if name == "get_main_option" and self.is_config(receiver):
                return _first_string(node) == "sqlalchemy.url"
            if name == "get_section" and self.is_config(receiver):
                return bool(node.args) and self.is_own_section(node.args[0])
            if (name == "get" and _is_os_environ(receiver)) or (name == "getenv" and _is_name(receiver, "os")):
                return _first_string(node) == _URL_ENV and len(node.args) == 1 and not node.keywords
        if isinstance(node, ast.Subscript) and _is_os_environ(node.value):
            return isinstance(node.slice, ast.Constant) and node.slice.value == _URL_ENV
        if isinstance(node, ast.BoolOp):
            return all(self.is_url_source(v) for v in node.values)
        return False

    def is_config(self, node: ast.expr) -> bool:
        return _is_context_config(node) or (isinstance(node, ast.Name) and node.id in self.config_names)

    def is_own_section(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Attribute):
            return node.attr == "config_ini_section" and self.is_config(node.value)
        return isinstance(node, ast.Constant) and node.value == self.section

    def sets_url_from_source(self, node: ast.Call) -> bool:
        """``config.set_main_option("sqlalchemy.url", <DATABASE_URL or the ini URL>)``."""
        return (
            len(node.args) == 2
            and _first_string(node) == "sqlalchemy.url"
            and self.is_url_source(node.args[1])
        )

    def reads_only_url_env(self, attr: ast.Attribute) -> bool:
        """``os.environ[...]``/``os.environ.get(...)``/``os.getenv(...)`` naming only DATABASE_URL."""
        parent = self.parents.get(attr)
        if isinstance(parent, ast.Subscript) and parent.value is attr:
            if not isinstance(parent.ctx, ast.Load):
                return False  # os.environ["DATABASE_URL"] = ...: env.py picks its own database
            return isinstance(parent.slice, ast.Constant) and parent.slice.value == _URL_ENV
        if isinstance(parent, ast.Call) and parent.func is attr:
            return _first_string(parent) == _URL_ENV
        if isinstance(parent, ast.Attribute) and parent.attr == "get":
            call = self.parents.get(parent)
            if isinstance(call, ast.Call) and call.func is parent:
                return _first_string(call) == _URL_ENV
        return False


def _is_name(node: ast.expr, name: str) -> bool:
    return isinstance(node, ast.Name) and node.id == name


def _is_os_environ(node: ast.expr) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "environ" and _is_name(node.value, "os")


def _is_context_config(node: ast.expr) -> bool:
    """``context.config``: the Config alembic-deploy built (``from alembic import context``)."""
    return isinstance(node, ast.Attribute) and node.attr == "config" and _is_name(node.value, "context")


def _call_name(node: ast.Call) -> str | None:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else None


def _first_string(node: ast.Call) -> str | None:
    if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        return node.args[0].value
    return None


# -- 4. the database, through the DBAPI driver ------------------------------------------------------
# libpq URI parameters that mean the same to libpq as to SQLAlchemy's psycopg dialects.
_LIBPQ_PARAMS = {"sslmode", "sslrootcert", "sslcert", "sslkey", "application_name", "connect_timeout",
                 "target_session_attrs", "options", "host", "port"}
#: (dialect, driver in the URL) -> the DBAPI module env.py's engine imports (SQLAlchemy's defaults
#: for a bare dialect). Env.py fails when it is missing, so the fast path must not answer then.
_ENV_DRIVERS = {
    ("sqlite", ""): "sqlite3",
    ("sqlite", "pysqlite"): "sqlite3",
    ("sqlite", "aiosqlite"): "aiosqlite",
    ("postgresql", ""): "psycopg2",
    ("postgresql", "psycopg2"): "psycopg2",
    ("postgresql", "psycopg"): "psycopg",
    ("postgresql", "psycopg_async"): "psycopg",
    ("postgresql", "asyncpg"): "asyncpg",
    **{(dialect, driver): driver for dialect in ("mysql", "mariadb") for driver in ("pymysql", "aiomysql", "asyncmy")},
}


class _DirectConnection:
    """The database, read and written without SQLAlchemy: a DBAPI driver, or libpq itself."""

    def __init__(self, backend: str, conn: Any, paramstyle: str) -> None:
        self.backend = backend
        self.conn = conn
        #: "qmark" (sqlite3), "format" (pymysql, psycopg) or "dollar" (libpq's $1, $2...).
        self.paramstyle = paramstyle

    @classmethod
    def open(cls, url: str) -> _DirectConnection | None:
        """A connection to the database env.py would migrate; None when unsure."""
        try:
            parts = urlsplit(url)
            dialect, _, driver = parts.scheme.partition("+")
            env_driver = _ENV_DRIVERS.get((dialect, driver))
            if env_driver is None or not _importable(env_driver):
                return None
            query = dict(parse_qsl(parts.query, keep_blank_values=True))
            if dialect == "sqlite":
                return None if query else cls._sqlite(url)
            if dialect == "postgresql":
                if set(query) - _LIBPQ_PARAMS:
                    return None
                if env_driver == "asyncpg" and any(k.startswith("PG") for k in os.environ):
                    return None  # libpq honours PG* variables that asyncpg ignores (PGOPTIONS...)
                return cls._postgresql(parts, query, psycopg2=env_driver == "psycopg2")
            if set(query) - {"charset"}:
                return None
            return cls._mysql(parts, query)
        except AlembicDeployError:
            raise  # Interrupted, raised by the SIGTERM handler inside a blocking connect
        except Exception:  # noqa: BLE001 - any doubt (driver missing, server down): full path
            return None

    @classmethod
    def _sqlite(cls, url: str) -> _DirectConnection | None:
        import sqlite3

        path = url.split(":///", 1)[1] if ":///" in url else ""
        if not path or path == ":memory:" or path.startswith("file:") or not Path(path).is_file():
            return None
        return cls("sqlite", sqlite3.connect(path, timeout=60, isolation_level=None), "qmark")

    @classmethod
    def _postgresql(cls, parts: Any, query: dict[str, str], psycopg2: bool) -> _DirectConnection | None:
        conninfo = parts._replace(scheme="postgresql").geturl()
        if psycopg2:
            import psycopg2

            conn = psycopg2.connect(conninfo, connect_timeout=5)
            conn.autocommit = True
            return cls("postgresql", conn, "format")
        from . import libpq

        extra = {"connect_timeout": "5", "client_encoding": "UTF8"}
        raw = libpq.connect(parts._replace(
            scheme="postgresql", query=urlencode({**extra, **query})
        ).geturl())
        if raw is not None:
            return cls("postgresql", raw, "dollar")
        import psycopg

        return cls("postgresql", psycopg.connect(conninfo, connect_timeout=5, autocommit=True), "format")

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

    def _execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self.paramstyle == "dollar":
            return self.conn.execute(sql, params)
        cur = self.conn.cursor()
        cur.execute(sql, params) if params else cur.execute(sql)
        return list(cur.fetchall()) if cur.description is not None else []

    def _placeholders(self, count: int) -> str:
        if self.paramstyle == "dollar":
            return ", ".join(f"${i}" for i in range(1, count + 1))
        return ", ".join(["?" if self.paramstyle == "qmark" else "%s"] * count)

    def _quote(self, name: str) -> str:
        return f"`{name}`" if self.backend == "mysql" else f'"{name}"'

    def query_column(self, sql: str) -> list[str] | None:
        try:
            return [row[0] for row in self._execute(sql)]
        except AlembicDeployError:
            raise
        except Exception:  # noqa: BLE001 - missing table or anything odd: full path
            return None

    def has_unfinished_run(self, table: str) -> bool:
        """A ``running`` journal row (or no journal to tell): see steps/recovery.py."""
        return self.query_column(f"SELECT id FROM {self._quote(table)} WHERE outcome = 'running'") != []

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
        sql = (
            f"INSERT INTO {self._quote(settings.journal_table)} ({', '.join(row)}) "
            f"VALUES ({self._placeholders(len(row))})"
        )
        try:
            self._execute(sql, tuple(row.values()))
        except AlembicDeployError:
            raise
        except Exception:  # noqa: BLE001 - no journal yet: the full path creates it
            return False
        return True

    def close(self) -> None:
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass


def _importable(module: str) -> bool:
    if module in sys.modules:
        return True
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        return False
