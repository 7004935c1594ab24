"""Step 3 of the fast path's proof: env.py migrates the database alembic-deploy connects to,
through the default version table (see :mod:`alembic_deploy.fastpath`).

The proof is an allowlist, checked the way a type checker would: every name env.py binds gets a
*kind* (alembic's ``context``, its ``Config``, the URL alembic-deploy passes, a copy of the ini
section, an engine built from that URL, a connection of that engine, a string, an object of the
application...), and every call, attribute, subscript and assignment must be one this module
knows cannot change which database, schema, version table or connection options env.py
migrates. Anything it does not know declines. The rules it relies on:

* alembic-deploy sets ``sqlalchemy.url`` of env.py's Config section *and* the ``DATABASE_URL``
  environment variable to the URL it uses (never empty) before env.py runs
  (:class:`alembic_deploy.alembic_env.AlembicProject`), so both, read in any way listed below, are
  that URL, and a default or an ``or`` fallback after them is never used;
* importing a module is trusted, as plain alembic trusts it (see the trust note of
  :mod:`alembic_deploy.fastpath`), and so is reading an attribute of what it exports (the
  application's ``Base.metadata``); *calling* into it is not: a call is allowed only when it is
  in the tables below (``logging``, ``sys.path``, ``os.path``, the engine factories of
  SQLAlchemy, ``asyncio.run``...) or to a function env.py defines, whose body is checked too;
* ``context.configure`` takes only keywords whose effect is known at head: ``connection``
  (a connection of the URL's engine), ``url`` (the URL, offline), and options alembic reads only
  while autogenerating, rendering offline SQL or running a revision step (none runs at head):
  see :data:`_CONFIGURE_KEYWORDS`, checked against ``EnvironmentContext.configure`` and
  ``MigrationContext``. ``version_table``, ``version_table_schema``, unknown keywords (they are
  merged into the MigrationContext's options, ``fn`` included) and ``**options`` that are not
  provably a dict of allowed keys decline;
* functions passed to ``configure`` only as autogenerate hooks (``include_object`` ...) or as
  ``on_version_apply`` are never called by ``alembic upgrade`` at head, so their bodies are not
  checked (their decorators and defaults are).

Scopes are merged on purpose: a name has a kind only when *every* binding of it, anywhere in the
file, agrees; otherwise it is unknown, and an unknown value can be passed along but never called,
subscripted or read an attribute of.
"""

from __future__ import annotations

import ast
import sys
from typing import TYPE_CHECKING, Any, TypeAlias, TypeGuard

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

_URL_ENV = "DATABASE_URL"
_URL_KEY = "sqlalchemy.url"

# Kinds. A kind is one of these strings, ("mod", qualified name) for an imported object,
# ("fn", name)/("coro", name) for a function env.py defines and the coroutine it returns, or
# ("dict", ((key, kind), ...)) for a dict display whose keys are all string constants.
Kind: TypeAlias = str | tuple[str, Any]
CONTEXT, CONFIG, SECTION, SECTION_NAME = "context", "config", "section", "section-name"
URL, ENGINE, AENGINE, CONN, ACONN, DIALECT = "url", "engine", "async-engine", "conn", "async-conn", "dialect"
STR, VALUE, LOGGER, PATH, UNKNOWN = "str", "value", "logger", "path", "unknown"
_PLAIN = frozenset({STR, VALUE, URL, SECTION_NAME, PATH})  # immutable enough to hold in containers

_CONFIGURE_KEYWORDS = frozenset({
    # alembic reads these only in offline (--sql) mode, which alembic-deploy never runs (not
    # starting_rev: with a connection it is an error; nor output_buffer/output_encoding).
    "url", "dialect_name", "dialect_opts", "literal_binds", "tag",
    # How revision steps run (transactions, batch mode); at head no step runs.
    "transactional_ddl", "transaction_per_migration", "render_as_batch", "on_version_apply",
    "target_metadata",
    # Read only by autogenerate (alembic/autogenerate/*.py).
    "include_object", "include_name", "include_schemas", "process_revision_directives", "render_item",
    "compare_type", "compare_server_default", "template_args", "user_module_prefix",
    "sqlalchemy_module_prefix", "alembic_module_prefix", "autogenerate_plugins",
    # Used only when the version table is created; at head it exists.
    "version_table_pk",
    "connection",
})
# Callables alembic keeps but calls only while autogenerating or after a step ran.
_HOOK_KEYWORDS = frozenset({"include_object", "include_name", "process_revision_directives", "render_item",
                            "on_version_apply"})
# create_engine() arguments that cannot change which database, schema or table a connection sees.
_ENGINE_KEYWORDS = frozenset({
    "poolclass", "echo", "echo_pool", "pool_size", "max_overflow", "pool_timeout", "pool_recycle",
    "pool_pre_ping", "pool_reset_on_return", "pool_use_lifo", "hide_parameters", "future", "logging_name",
    "pool_logging_name", "query_cache_size",
})
_POOLS = frozenset({"NullPool", "StaticPool", "QueuePool", "SingletonThreadPool", "AsyncAdaptedQueuePool",
                    "AssertionPool"})
# Drivers of the URL (after "+") SQLAlchemy runs only under create_async_engine, or under both.
_ASYNC_DRIVERS = frozenset({"asyncpg", "aiosqlite", "aiomysql", "asyncmy", "aioodbc", "psycopg_async"})
_DUAL_DRIVERS = frozenset({"psycopg"})
#: ``try`` statements; from Python 3.11 also ``try``/``except*``, with the same fields.
if sys.version_info >= (3, 11):
    _TRY_NODES = (ast.Try, ast.TryStar)
else:
    _TRY_NODES = (ast.Try,)
_SYNC_FACTORIES = frozenset({
    f"sqlalchemy.{m}{f}" for m in ("", "engine.", "engine.create.") for f in ("create_engine", "engine_from_config")
})
_ASYNC_FACTORIES = frozenset({
    f"sqlalchemy.ext.asyncio.{m}{f}" for m in ("", "engine.")
    for f in ("create_async_engine", "async_engine_from_config")
})
# Standard-library calls env.py files make that touch no database setting: kind of the result.
_SAFE_CALLS: dict[str, Kind] = {
    "logging.config.fileConfig": VALUE, "logging.basicConfig": VALUE, "logging.getLogger": LOGGER,
    "sys.path.append": VALUE, "sys.path.insert": VALUE, "os.getcwd": STR, "os.fspath": STR,
    **{f"os.path.{f}": STR for f in ("join", "dirname", "abspath", "realpath", "basename", "normpath",
                                      "expanduser")},
    **{f"os.path.{f}": VALUE for f in ("exists", "isfile", "isdir")},
    "pathlib.Path": PATH, "warnings.filterwarnings": VALUE, "warnings.simplefilter": VALUE,
}
_SAFE_BUILTINS: dict[str, Kind] = {
    **dict.fromkeys(("bool", "int", "float", "len", "isinstance", "print", "repr", "hasattr", "Exception",
                     "RuntimeError", "ValueError", "KeyError", "TypeError", "SystemExit", "NotImplementedError"),
                    VALUE),
    "str": STR,
}
_BUILTIN_CONSTANTS = {"__file__": STR, "__name__": STR, "__doc__": STR}
_METHODS: dict[Kind, dict[str, Kind]] = {
    CONTEXT: {"begin_transaction": VALUE, "run_migrations": VALUE, "is_offline_mode": VALUE},
    CONFIG: {"print_stdout": VALUE, "get_alembic_option": STR},
    ENGINE: {"dispose": VALUE},
    AENGINE: {"dispose": VALUE},
    CONN: {"begin": VALUE, "commit": VALUE, "close": VALUE, "in_transaction": VALUE},
    ACONN: {"begin": VALUE, "commit": VALUE, "close": VALUE, "in_transaction": VALUE},
    LOGGER: dict.fromkeys(("debug", "info", "warning", "warn", "error", "critical", "exception", "log", "setLevel"),
                          VALUE),
    STR: dict.fromkeys(("startswith", "endswith", "lower", "upper", "strip", "format", "replace", "split"), STR),
    PATH: {"resolve": PATH, "absolute": PATH, "joinpath": PATH, "exists": VALUE, "is_file": VALUE,
           "is_dir": VALUE},
}
_METHODS[URL] = _METHODS[SECTION_NAME] = _METHODS[STR]
_ATTRIBUTES: dict[Kind, dict[str, Kind]] = {
    CONFIG: {"config_file_name": STR, "config_ini_section": SECTION_NAME, "toml_file_name": STR},
    **{kind: {"dialect": DIALECT} for kind in (CONN, ACONN, ENGINE, AENGINE)},
    DIALECT: {"name": STR, "driver": STR, "server_version_info": VALUE},
    PATH: {"parent": PATH, "parents": PATH, "name": STR, "stem": STR, "suffix": STR},
}


class _Decline(Exception):
    """Something env.py does is not known to leave the database, schema and version table alone."""

    node: ast.AST | None = None


def env_py_is_plain(path: Path, section: str = "alembic", url: str | None = None) -> bool:
    """True when env.py provably migrates the database alembic-deploy connects to, through the
    default version table (see the module docstring).

    With ``url`` (the URL alembic-deploy passes), what env.py could not run with it declines too,
    since the full path would fail where the fast path answers: writing the URL back into the
    Config when it holds a ``%`` (the ini's interpolation rejects it), an async engine on a sync
    driver or a sync engine on an async-only one."""
    return why_not_plain(path, section, url) is None


def why_not_plain(path: Path, section: str = "alembic", url: str | None = None) -> str | None:
    """None when :func:`env_py_is_plain`, else where the proof stopped (``line N: <code>``)."""
    try:
        source = path.read_bytes()
        tree = ast.parse(source, filename=str(path))
    except (SyntaxError, ValueError, OSError) as exc:
        return f"unreadable: {exc}"
    try:
        if _EnvChecker(tree, section, url).plain():
            return None
        return "no context.configure(connection=...) with a connection of the URL's engine"
    except RecursionError:
        return "nested too deeply"
    except _Decline as exc:
        node = exc.node
        if node is None or not hasattr(node, "lineno"):
            return "not known"
        text = ast.get_source_segment(source.decode("utf-8", "replace"), node) or ""
        return f"line {node.lineno}: {text.splitlines()[0] if text else type(node).__name__}"


class _EnvChecker:
    def __init__(self, tree: ast.Module, section: str, url: str | None) -> None:
        self.tree = tree
        self.section = section
        self.url = url
        scheme = url.split("://", 1)[0] if url and "://" in url else None
        self.driver = None if scheme is None else scheme.split("+", 1)[1] if "+" in scheme else ""
        self.parents: dict[ast.AST, ast.AST] = {}
        for node in ast.walk(tree):
            for child in ast.iter_child_nodes(node):
                self.parents[child] = node
        self.functions: dict[str, ast.FunctionDef | ast.AsyncFunctionDef] = {}
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if node.name in self.functions:
                    raise _Decline  # two definitions: which one runs depends on the order
                self.functions[node.name] = node
        self.hooks = {name for name in self.functions if self._only_a_hook(name)}
        self.scope_of: dict[ast.AST, ast.AST] = {}
        self.enclosing: dict[ast.AST, ast.AST | None] = {tree: None}
        self.locals: dict[ast.AST, set[str]] = {tree: set()}
        self._scan(tree, tree)
        self.names: dict[tuple[ast.AST, str], Kind] = {}
        self.returns: dict[str, Kind] = {}
        self.configured_connection = False
        # Names feed each other (config -> url -> engine -> connection): settle in a few passes.
        for _ in range(8):
            names, returns = self._infer()
            if (names, returns) == (self.names, self.returns):
                break
            self.names, self.returns = names, returns
        else:
            raise _Decline

    # -- the proof ---------------------------------------------------------------------------
    def plain(self) -> bool:
        self.strict = True
        self.check_body(self.tree.body)
        # At least one connection comes from the URL's engine; every configure() was checked.
        return self.configured_connection

    def _scan(self, node: ast.AST, scope: ast.AST) -> None:
        """Record each node's scope (module, function or lambda) and the names bound in each:
        Python resolves a name to the innermost scope that binds it (``global``, ``nonlocal``
        and classes decline)."""
        for child in ast.iter_child_nodes(node):
            self.scope_of[child] = scope
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                if not isinstance(child, ast.Lambda):
                    self.locals[scope].add(child.name)
                    for part in (*child.decorator_list, child.returns):
                        if part is not None:
                            self.scope_of[part] = scope
                            self._scan(part, scope)
                self.enclosing[child] = scope
                self.locals[child] = {a.arg for a in _all_args(child.args)}
                for default in (*child.args.defaults, *(d for d in child.args.kw_defaults if d is not None)):
                    self.scope_of[default] = scope
                    self._scan(default, scope)
                body = child.body if isinstance(child.body, list) else [child.body]
                for stmt in body:
                    self.scope_of[stmt] = child
                    self._scan(stmt, child)
                continue
            if isinstance(child, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.ClassDef)):
                continue  # declined wherever they are evaluated; their names stay inside
            if isinstance(child, ast.Name) and not isinstance(child.ctx, ast.Load):
                self.locals[scope].add(child.id)
            elif isinstance(child, (ast.Import, ast.ImportFrom)):
                self.locals[scope].update((a.asname or a.name).split(".")[0] for a in child.names)
            elif isinstance(child, ast.ExceptHandler) and child.name:
                self.locals[scope].add(child.name)
            self._scan(child, scope)

    def resolve(self, node: ast.AST, name: str) -> tuple[ast.AST, str] | None:
        scope: ast.AST | None = self.scope_of.get(node, self.tree)
        while scope is not None:
            if name in self.locals[scope]:
                return (scope, name)
            scope = self.enclosing[scope]
        return None

    def check_statement(self, stmt: ast.stmt) -> None:
        try:
            self._check_statement(stmt)
        except _Decline as exc:
            exc.node = exc.node or stmt
            raise

    def _check_statement(self, stmt: ast.stmt) -> None:
        ev = self.kind
        if isinstance(stmt, (ast.Expr, ast.Return)):
            if stmt.value is not None:
                ev(stmt.value)
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign)):
            if isinstance(stmt, ast.AnnAssign):
                self.check_annotation(stmt.annotation)
            value = ev(stmt.value) if stmt.value is not None else VALUE
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for target in targets:
                self.check_target(target, value)
        elif isinstance(stmt, ast.AugAssign):
            # `section |= {...}` changes the dict in place, under every name it has.
            if not isinstance(stmt.target, ast.Name) or ev(stmt.target) not in _PLAIN:
                raise _Decline
            ev(stmt.value)
        elif isinstance(stmt, (ast.If, ast.While)):
            ev(stmt.test)
            self.check_body(stmt.body, stmt.orelse)
        elif isinstance(stmt, (ast.For, ast.AsyncFor)):
            ev(stmt.iter)
            self.check_target(stmt.target, UNKNOWN)
            self.check_body(stmt.body, stmt.orelse)
        elif isinstance(stmt, (ast.With, ast.AsyncWith)):
            for item in stmt.items:
                ev(item.context_expr)
                if item.optional_vars is not None:
                    self.check_target(item.optional_vars, UNKNOWN)
            self.check_body(stmt.body)
        elif isinstance(stmt, _TRY_NODES):
            self.check_body(stmt.body, stmt.orelse, stmt.finalbody)
            for handler in stmt.handlers:
                if handler.type is not None:
                    ev(handler.type)
                self.check_body(handler.body)
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if stmt.decorator_list:
                raise _Decline  # a decorator runs code and may replace the function
            for default in (*stmt.args.defaults, *(d for d in stmt.args.kw_defaults if d is not None)):
                ev(default)
            self.check_annotations(stmt)
            if stmt.name not in self.hooks:
                self.check_body(stmt.body)
        elif isinstance(stmt, ast.Raise):
            for part in (stmt.exc, stmt.cause):
                if part is not None:
                    ev(part)
        elif isinstance(stmt, ast.Assert):
            ev(stmt.test)
        elif isinstance(stmt, ast.Import):
            pass  # trusted, as plain alembic trusts it
        elif isinstance(stmt, ast.ImportFrom):
            if any(alias.name == "*" for alias in stmt.names):
                raise _Decline
        elif isinstance(stmt, (ast.Pass, ast.Break, ast.Continue)):
            pass
        else:  # class, global, nonlocal, del, match, ...: not known
            raise _Decline

    def check_body(self, *bodies: list[ast.stmt]) -> None:
        for body in bodies:
            for stmt in body:
                self.check_statement(stmt)

    def check_annotations(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for annotation in (*(a.annotation for a in _all_args(fn.args)), fn.returns):
            if annotation is not None:
                self.check_annotation(annotation)

    def check_annotation(self, annotation: ast.expr) -> None:
        """Annotations may be evaluated when defined: only names, attributes and subscripts of
        what is imported (typing's), no calls."""
        for node in ast.walk(annotation):
            if not isinstance(node, (ast.Name, ast.Attribute, ast.Subscript, ast.Constant, ast.Tuple, ast.List,
                                     ast.BinOp, ast.BitOr, ast.Load)):
                raise _Decline

    def check_target(self, target: ast.expr, value: Kind) -> None:
        if isinstance(target, ast.Name):
            return
        if isinstance(target, (ast.Tuple, ast.List)):
            for elt in target.elts:
                self.check_target(elt.value if isinstance(elt, ast.Starred) else elt, UNKNOWN)
            return
        # configuration["sqlalchemy.url"] = <the URL>: the one write into a copied section allowed.
        if (isinstance(target, ast.Subscript) and self.kind(target.value) == SECTION
                and _constant(target.slice) == _URL_KEY and value == URL):
            return
        raise _Decline

    # -- kinds of expressions ----------------------------------------------------------------
    strict = False

    def kind(self, node: ast.expr) -> Kind:
        """The kind of ``node``'s value; raises :class:`_Decline` when evaluating it is not known
        to be harmless."""
        try:
            return self._kind(node)
        except _Decline as exc:
            exc.node = exc.node or node
            raise

    def _kind(self, node: ast.expr) -> Kind:
        if isinstance(node, ast.Constant):
            return STR if isinstance(node.value, str) else VALUE
        if isinstance(node, ast.JoinedStr):
            for part in node.values:
                if isinstance(part, ast.FormattedValue):
                    self.kind(part.value)
                    if part.format_spec is not None:
                        self.kind(part.format_spec)
            return STR
        if isinstance(node, ast.Name):
            key = self.resolve(node, node.id)
            if key is None:
                return _BUILTIN_CONSTANTS.get(node.id, ("builtin", node.id))
            return self.names.get(key, UNKNOWN)
        if isinstance(node, ast.Attribute):
            return self.attribute(self.kind(node.value), node.attr)
        if isinstance(node, ast.Subscript):
            return self.subscript(node)
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Await):
            self.kind(node.value)
            return VALUE
        if isinstance(node, ast.BoolOp):
            kinds = [self.kind(v) for v in node.values]
            # DATABASE_URL and sqlalchemy.url are never empty (nor, holding it, the section):
            # `url or fallback` is the URL.
            if isinstance(node.op, ast.Or) and kinds[0] in (URL, SECTION):
                return kinds[0]
            return kinds[0] if all(k == kinds[0] for k in kinds) else UNKNOWN
        if isinstance(node, ast.IfExp):
            self.kind(node.test)
            body, orelse = self.kind(node.body), self.kind(node.orelse)
            return body if body == orelse else UNKNOWN
        if isinstance(node, ast.Compare):
            for operand in (node.left, *node.comparators):
                self.kind(operand)
            return VALUE
        if isinstance(node, ast.UnaryOp):
            self.kind(node.operand)
            return VALUE
        if isinstance(node, ast.BinOp):
            left, right = self.kind(node.left), self.kind(node.right)
            if PATH in (left, right) and isinstance(node.op, ast.Div):
                return PATH
            if not {left, right} <= _PLAIN:
                return UNKNOWN
            return STR if {left, right} & {STR, URL, SECTION_NAME} else VALUE
        if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
            kinds = [self.kind(e) for e in node.elts]
            return VALUE if all(_holdable(k) for k in kinds) else UNKNOWN
        if isinstance(node, ast.Dict):
            return self.dict_display(node)
        if isinstance(node, ast.Lambda):
            # Its body runs only when called; nothing allowed here calls an unknown callable.
            for default in (*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)):
                self.kind(default)
            return VALUE
        raise _Decline  # comprehensions, walrus, yield, starred...

    def attribute(self, receiver: Kind, attr: str) -> Kind:
        if isinstance(receiver, tuple) and receiver[0] == "mod":
            # Reading what a module exports is trusted; calling it is not.
            return _module(f"{receiver[1]}.{attr}")  # reading what a module exports is trusted; calling it is not
        if receiver == CONTEXT and attr == "config":
            return CONFIG
        kinds = _ATTRIBUTES.get(receiver, {})
        if attr in kinds:
            return kinds[attr]
        raise _Decline

    def subscript(self, node: ast.Subscript) -> Kind:
        receiver = self.kind(node.value)
        key = _constant(node.slice)
        if not isinstance(node.slice, ast.Slice):
            self.kind(node.slice)
        if receiver == ("mod", "os.environ"):
            if key == _URL_ENV:
                return URL
            raise _Decline  # another variable may name another database or schema
        if receiver == SECTION:
            return URL if key == _URL_KEY else STR
        if isinstance(receiver, tuple) and receiver[0] == "dict" and isinstance(key, str):
            entries: dict[str, Kind] = dict(receiver[1])
            return entries.get(key, UNKNOWN)
        if isinstance(receiver, tuple) and receiver[0] == "mod":
            return ("mod", f"{receiver[1]}[]")
        if receiver in (STR, URL, PATH):
            return STR if receiver != PATH else PATH
        raise _Decline

    def dict_display(self, node: ast.Dict) -> Kind:
        items: dict[str, Kind] = {}
        spreads_section = constant_keys = True
        spreads_section = False
        for key, value in zip(node.keys, node.values, strict=True):
            kind = self.kind(value)
            if key is None:  # {**other}
                if kind == SECTION:
                    spreads_section = True
                elif isinstance(kind, tuple) and kind[0] == "dict":
                    items.update(kind[1])
                else:
                    return UNKNOWN
                continue
            self.kind(key)
            name = _constant(key)
            if isinstance(name, str):
                items[name] = kind
            else:
                constant_keys = False
                items[repr(name)] = kind
        if spreads_section or _URL_KEY in items:
            # {**section, "sqlalchemy.url": <URL>} or {"sqlalchemy.url": <URL>}: a section.
            only_the_url = all(k == _URL_KEY and v == URL for k, v in items.items())
            return SECTION if only_the_url and (spreads_section or items) else UNKNOWN
        if not constant_keys:
            return VALUE if all(_holdable(k) for k in items.values()) else UNKNOWN
        return ("dict", tuple(items.items()))

    # -- calls -------------------------------------------------------------------------------
    def call(self, node: ast.Call) -> Kind:
        func = node.func
        if isinstance(func, ast.Attribute):
            receiver = self.kind(func.value)
            if not (isinstance(receiver, tuple) and receiver[0] == "mod"):
                return self.method(node, receiver, func.attr)
        callee = self.kind(func)
        if isinstance(callee, tuple) and callee[0] == "mod":
            if callee[1].startswith("alembic.context."):  # from alembic.context import configure
                return self.method(node, CONTEXT, callee[1].rsplit(".", 1)[1])
            return self.library_call(node, callee[1])
        if isinstance(callee, tuple) and callee[0] == "fn":
            self.arguments(node)
            fn = self.functions[callee[1]]
            if isinstance(fn, ast.AsyncFunctionDef):
                return ("coro", fn.name)
            return self.returns.get(fn.name, UNKNOWN)
        if isinstance(callee, tuple) and callee[0] == "builtin":
            return self.builtin_call(node, callee[1])
        raise _Decline

    def arguments(self, node: ast.Call) -> list[Kind]:
        kinds = []
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise _Decline
            kinds.append(self.kind(arg))
        for keyword in node.keywords:
            if keyword.arg is None:
                raise _Decline
            self.kind(keyword.value)
        return kinds

    def builtin_call(self, node: ast.Call, name: str) -> Kind:
        kinds = self.arguments(node) if name != "dict" else []
        if name == "str" and kinds == [URL]:
            return URL
        if name == "dict":
            if node.args and not node.keywords and len(node.args) == 1 and self.kind(node.args[0]) == SECTION:
                return SECTION  # a copy of the section
            if node.args:
                raise _Decline
            items: dict[str, Kind] = {}
            for keyword in node.keywords:
                kind = self.kind(keyword.value)
                if keyword.arg is not None:
                    items[keyword.arg] = kind
                elif isinstance(kind, tuple) and kind[0] == "dict":  # dict(a=1, **other)
                    items.update(kind[1])
                else:
                    raise _Decline
            return ("dict", tuple(items.items()))
        if name in _SAFE_BUILTINS:
            return _SAFE_BUILTINS[name]
        raise _Decline

    def library_call(self, node: ast.Call, qualname: str) -> Kind:
        if qualname in ("os.environ.get", "os.getenv"):
            self.arguments(node)
            if _first_string(node) == _URL_ENV and not node.keywords:
                return URL  # a default, if any, is never used: DATABASE_URL is always set
            raise _Decline
        if qualname in _SYNC_FACTORIES or qualname in _ASYNC_FACTORIES:
            return self.engine(node, qualname)
        if qualname == "asyncio.run":
            kinds = self.arguments(node)
            if len(kinds) == 1 and not node.keywords and isinstance(kinds[0], tuple) and kinds[0][0] == "coro":
                return VALUE
            raise _Decline
        if qualname in _SAFE_CALLS:
            self.arguments(node)
            return _SAFE_CALLS[qualname]
        raise _Decline  # a call into the application or a library not listed

    def engine(self, node: ast.Call, qualname: str) -> Kind:
        """``create_engine(<URL>)`` / ``engine_from_config(<section>, prefix="sqlalchemy.")``
        (and the async twins) with only harmless options."""
        args = self.arguments(node)
        keywords = {k.arg: k.value for k in node.keywords}
        from_config = qualname.endswith("engine_from_config")
        first = "configuration" if from_config else "url"
        if len(args) > (2 if from_config else 1) or (args and first in keywords):
            raise _Decline
        source = args[0] if args else (self.kind(keywords[first]) if first in keywords else None)
        if source != (SECTION if from_config else URL):
            raise _Decline
        if from_config:
            prefix = node.args[1] if len(node.args) > 1 else keywords.pop("prefix", None)
            if prefix is not None and _constant(prefix) != "sqlalchemy.":
                raise _Decline
        for name, value in keywords.items():
            if name in (first, "prefix"):
                continue
            if name not in _ENGINE_KEYWORDS:
                raise _Decline  # connect_args, execution_options, creator, url= ... may move it
            kind = self.kind(value)
            if name == "poolclass":
                if not (isinstance(kind, tuple) and kind[0] == "mod" and kind[1].startswith("sqlalchemy.")
                        and kind[1].rsplit(".", 1)[1] in _POOLS):
                    raise _Decline
            elif kind not in (VALUE, STR):
                raise _Decline
        # An async engine fails on a sync driver and a sync one on an async-only driver: the full
        # path would fail where the database says "at head".
        if (self.strict and self.driver is not None and self.driver not in _DUAL_DRIVERS
                and (qualname in _ASYNC_FACTORIES) != (self.driver in _ASYNC_DRIVERS)):
            raise _Decline
        return AENGINE if qualname in _ASYNC_FACTORIES else ENGINE

    def method(self, node: ast.Call, receiver: Kind, name: str) -> Kind:
        if receiver == CONTEXT and name == "configure":
            return self.configure(node)
        if receiver == CONFIG:
            return self.config_method(node, name)
        if receiver == SECTION:
            if name == "get" and not node.keywords:
                self.arguments(node)
                return URL if _first_string(node) == _URL_KEY else STR
            if name == "copy" and not node.args and not node.keywords:
                return SECTION
            raise _Decline  # update(), setdefault(), pop() ...: the URL could change
        if receiver in (ENGINE, AENGINE) and name in ("connect", "begin"):
            if node.args or node.keywords:
                raise _Decline
            return ACONN if receiver == AENGINE else CONN
        if receiver == ACONN and name == "run_sync":
            kinds = self.arguments(node)
            if (len(kinds) == 1 and not node.keywords and isinstance(kinds[0], tuple) and kinds[0][0] == "fn"
                    and isinstance(self.functions[kinds[0][1]], ast.FunctionDef)):
                return VALUE  # the function's parameter is this connection, made sync
            raise _Decline
        methods = _METHODS.get(receiver, {})
        if name in methods:
            self.arguments(node)
            return methods[name]
        raise _Decline

    def config_method(self, node: ast.Call, name: str) -> Kind:
        kinds = self.arguments(node)
        if node.keywords:
            raise _Decline
        if name == "get_main_option" and kinds:
            return URL if _first_string(node) == _URL_KEY else STR
        if name == "get_section" and kinds and self.is_own_section(node.args[0], kinds[0]):
            return SECTION
        if name == "get_section_option" and len(kinds) >= 2 and self.is_own_section(node.args[0], kinds[0]):
            return URL if _constant(node.args[1]) == _URL_KEY else STR
        # Setting the URL to itself is harmless unless "%" makes configparser read it otherwise.
        same_url = "%" not in (self.url or "")
        if (name == "set_main_option" and len(kinds) == 2
                and _first_string(node) == _URL_KEY and kinds[1] == URL and same_url):
            return VALUE
        if (name == "set_section_option" and len(kinds) == 3 and self.is_own_section(node.args[0], kinds[0])
                and _constant(node.args[1]) == _URL_KEY and kinds[2] == URL and same_url):
            return VALUE
        if name in _METHODS[CONFIG]:
            return _METHODS[CONFIG][name]
        # get_section() of another section, set_main_option() of anything but the URL, attributes,
        # file_config, cmd_opts, get_x_argument...: not known.
        raise _Decline

    def is_own_section(self, node: ast.expr, kind: Kind) -> bool:
        return kind == SECTION_NAME or _constant(node) == self.section

    def configure(self, node: ast.Call) -> Kind:
        if node.args:
            raise _Decline
        given: dict[str, Kind] = {}
        for keyword in node.keywords:
            kind = self.kind(keyword.value)
            items = ((keyword.arg, kind),) if keyword.arg is not None else kind[1] if (
                isinstance(kind, tuple) and kind[0] == "dict") else None
            if items is None:
                raise _Decline  # **options that is not provably a dict display of known keys
            for key, value in items:
                if key in given:
                    raise _Decline  # "got multiple values for keyword argument": env.py fails
                given[key] = value
        if set(given) - _CONFIGURE_KEYWORDS:
            raise _Decline  # version_table, version_table_schema, upgrade_token, fn, as_sql, ...
        if "connection" in given:
            if given["connection"] != CONN or "url" in given:
                raise _Decline
            self.configured_connection = self.configured_connection or self.strict
        elif given.get("url") != URL:
            raise _Decline
        return VALUE

    # -- inference ---------------------------------------------------------------------------
    def _only_a_hook(self, name: str) -> bool:
        """``name`` is only ever handed to ``configure`` as an autogenerate hook or
        ``on_version_apply``: alembic never calls it during ``upgrade`` at head."""
        uses = [n for n in ast.walk(self.tree) if isinstance(n, ast.Name) and n.id == name]
        if not uses:
            return False
        for use in uses:
            parent = self.parents.get(use)
            if not (isinstance(use.ctx, ast.Load) and isinstance(parent, ast.keyword) and parent.arg in _HOOK_KEYWORDS):
                return False
            call = self.parents.get(parent)
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "configure"):
                return False
        return True

    def _skipped(self, node: ast.AST) -> TypeGuard[ast.FunctionDef | ast.AsyncFunctionDef]:
        return isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in self.hooks

    def _walk(self) -> Iterator[ast.AST]:
        """Every node whose code may run during ``upgrade``, hook bodies left out."""
        stack: list[ast.AST] = [self.tree]
        while stack:
            node = stack.pop()
            yield node
            if self._skipped(node):
                stack.extend([*node.decorator_list, node.args])
                continue
            stack.extend(ast.iter_child_nodes(node))

    def _infer(self) -> tuple[dict[tuple[ast.AST, str], Kind], dict[str, Kind]]:
        """One pass: the kind of every binding with the kinds known so far, joined by name
        within its scope."""
        bound: dict[tuple[ast.AST, str], set[Kind]] = {}

        def bind(node: ast.AST, name: str, kind: Kind) -> None:
            bound.setdefault((self.scope_of.get(node, self.tree), name), set()).add(kind)

        def guess(node: ast.expr) -> Kind:
            try:
                return self.kind(node)
            except (_Decline, KeyError):
                return UNKNOWN

        returns: dict[str, set[Kind]] = {}
        for node in self._walk():
            if isinstance(node, (ast.Assign, ast.AnnAssign)):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                kind = guess(node.value) if node.value is not None else VALUE
                for target in targets:
                    for n in ast.walk(target):
                        if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load):
                            bind(n, n.id, kind if n is target else UNKNOWN)
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                kind = guess(node.context_expr)
                for n in ast.walk(node.optional_vars):
                    if isinstance(n, ast.Name):
                        connection = n is node.optional_vars and kind in (CONN, ACONN)
                        bind(n, n.id, kind if connection else UNKNOWN)
            elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
                # `n += <plain>` keeps n plain: a string stays a string (never the URL), a number a
                # value; the proof then checks that every binding of n agrees.
                kind = guess(node.value)
                bind(node.target, node.target.id,
                     UNKNOWN if kind not in _PLAIN else STR if kind in (STR, URL, SECTION_NAME) else VALUE)
            elif isinstance(node, (ast.AugAssign, ast.For, ast.AsyncFor, ast.NamedExpr)):
                for n in ast.walk(node.target):
                    if isinstance(n, ast.Name):
                        bind(n, n.id, UNKNOWN)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        bind(node, alias.asname, _module(alias.name))
                    else:
                        bind(node, alias.name.split(".")[0], _module(alias.name.split(".")[0]))
            elif isinstance(node, ast.ImportFrom):
                base = ("." * node.level) + (node.module or "")
                for alias in node.names:
                    bind(node, alias.asname or alias.name, _module(f"{base}.{alias.name}"))
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                bind(node, node.name, ("fn", node.name))
                if node.name in self.hooks:
                    continue
                for arg, kind in self._parameter_kinds(node, guess).items():
                    bound.setdefault((node, arg), set()).add(kind)
                if isinstance(node, ast.FunctionDef):
                    returns[node.name] = self._return_kinds(node, guess)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                bind(node, node.name, UNKNOWN)
        for scope, local_names in self.locals.items():  # bound only where nothing is collected
            for name in local_names:
                bound.setdefault((scope, name), {UNKNOWN})
        names = {key: next(iter(kinds)) if len(kinds) == 1 else UNKNOWN for key, kinds in bound.items()}
        return names, {fn: next(iter(k)) if len(k) == 1 else UNKNOWN for fn, k in returns.items()}

    def _return_kinds(self, fn: ast.FunctionDef, guess: Callable[[ast.expr], Kind]) -> set[Kind]:
        """Kinds ``fn`` may return: falling off its end returns None."""
        kinds: set[Kind] = set()
        stack: list[ast.AST] = list(fn.body)
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
                continue
            if isinstance(node, ast.Return):
                kinds.add(guess(node.value) if node.value is not None else VALUE)
            elif isinstance(node, (ast.Yield, ast.YieldFrom)):
                kinds.add(UNKNOWN)
            stack.extend(ast.iter_child_nodes(node))
        if not fn.body or not isinstance(fn.body[-1], (ast.Return, ast.Raise)):
            kinds.add(VALUE)
        return kinds

    def _parameter_kinds(
        self, fn: ast.FunctionDef | ast.AsyncFunctionDef, guess: Callable[[ast.expr], Kind]
    ) -> dict[str, Kind]:
        """Parameters take the kinds of the arguments at every place the function is called
        (``connection.run_sync(fn)`` hands it a connection); unknown when it is used otherwise."""
        params = [a.arg for a in (*fn.args.posonlyargs, *fn.args.args)]
        every = [a.arg for a in _all_args(fn.args)]
        simple = not (fn.args.vararg or fn.args.kwarg or fn.args.kwonlyargs or fn.args.defaults)
        found: dict[str, set[Kind]] = {p: set() for p in every}
        for use in ast.walk(self.tree):
            if not (isinstance(use, ast.Name) and use.id == fn.name):
                continue
            parent = self.parents.get(use)
            if (simple and isinstance(parent, ast.Call) and parent.func is use and not parent.keywords
                    and len(parent.args) == len(params) and not any(isinstance(a, ast.Starred) for a in parent.args)):
                for param, arg in zip(params, parent.args, strict=True):
                    found[param].add(guess(arg))
            elif (simple and len(params) == 1 and isinstance(parent, ast.Call)
                  and isinstance(parent.func, ast.Attribute) and parent.func.attr == "run_sync"
                  and parent.args == [use] and not parent.keywords):
                found[params[0]].add(CONN)  # method() checks that the receiver is an async connection
            else:
                return dict.fromkeys(every, UNKNOWN)
        return {p: next(iter(k)) if len(k) == 1 else UNKNOWN for p, k in found.items()}


def _module(qualname: str) -> Kind:
    if qualname == "alembic.context":
        return CONTEXT
    return CONFIG if qualname == "alembic.context.config" else ("mod", qualname)


def _all_args(args: ast.arguments) -> list[ast.arg]:
    return [a for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg) if a is not None]


def _holdable(kind: Kind) -> bool:
    """A value a container may hold without hiding it from the checks: immutable, or the
    application's own objects (only their attributes are ever read)."""
    return kind in _PLAIN or (isinstance(kind, tuple) and kind[0] == "mod")


def _constant(node: ast.expr) -> object:
    return node.value if isinstance(node, ast.Constant) else None


def _first_string(node: ast.Call) -> str | None:
    if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        return node.args[0].value
    return None
