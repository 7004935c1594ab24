"""Step 3 of the fast path's proof: env.py migrates the database alembic-deploy connects to,
through the default version table (see :mod:`alembic_deploy.fastpath`)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import TYPE_CHECKING


if TYPE_CHECKING:
    pass

_URL_ENV = "DATABASE_URL"

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
