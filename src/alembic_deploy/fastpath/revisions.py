"""Step 2 of the fast path's proof: the revision graph, from the revision files parsed (never
imported), with a content-keyed cache (see :mod:`alembic_deploy.fastpath`)."""

from __future__ import annotations

import ast
import hashlib
import json
import os
import re
import stat
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import __version__

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from ..project import ProjectIni

#: Module attributes Alembic's Script reads (alembic/script/base.py, Script.__init__/_from_path).
GRAPH_NAMES = frozenset({"revision", "down_revision", "branch_labels", "depends_on"})
# Builtins and attributes that read or write a module's namespace behind the parser's back.
_DYNAMIC_NAMES = frozenset(
    {"globals", "locals", "vars", "exec", "eval", "compile", "setattr", "delattr", "__import__",
     "__builtins__", "__dict__"}
)
_DYNAMIC_ATTRS = frozenset({"__dict__", "modules", "f_globals", "f_locals", "__setattr__", "__delattr__"})

Graph = dict[str, tuple[str, ...]]
#: What :func:`revision_of` reads from one file: (revision, down revisions, depends_on as
#: written: ids or branch labels, branch labels).
Entry = tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]
#: Names Alembic gives a meaning before any branch label (``RevisionMap._resolve_revision_number``),
#: or that no label of a revision Alembic loads can hold: a label that is one declines, whatever
#: Alembic would make of it.
_RESERVED_LABELS = frozenset({"head", "heads", "base"})


@dataclass(frozen=True)
class RevisionGraph:
    """The revisions as Alembic loads them: ``down`` their ``down_revision``, ``depends_on`` the
    revisions each one needs without merging them, as ids: Alembic's
    ``RevisionMap._add_depends_on`` resolves each name through one map of revision ids and branch
    labels (``_map_branch_labels`` fails on a label that is an id or another label), so a name is
    the exact id or the exact label, else Alembic fails."""

    down: Graph
    depends_on: Graph

    def heads(self) -> tuple[str, ...]:
        """Alembic's ``RevisionMap.heads`` (``get_heads()``): no revision names it as its down
        revision. ``upgrade head`` fails unless there is exactly one."""
        return heads_of(self.down)

    def effective_heads(self) -> tuple[str, ...]:
        """Alembic's ``RevisionMap._real_heads`` (``get_heads(consider_depends_on=True)``): no
        revision names it as its down revision *or* in its ``depends_on``. ``upgrade heads``
        targets these, and they are what it leaves in the version table: a head another head
        depends on is merged away (``HeadMaintainer``: the dependent's step deletes its row)."""
        return heads_of({rev: (*downs, *self.depends_on[rev]) for rev, downs in self.down.items()})


Sources = dict[Path, dict[str, bytes]]


#: Alembic's ``_only_source_rev_file`` (alembic/script/base.py), which it matches against the name
#: of each listed file's real path (symlinks resolved), in every release since 1.13.
_REVISION_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)$")


def revision_files(project: ProjectIni) -> Sources | None:
    """``{versions folder: {path in it: content}}`` of the files Alembic loads; None to decline.

    Alembic's ``ScriptDirectory._load_revisions``: each version location that exists is walked
    (``Script._list_py_dir``: its files, and with ``recursive_version_locations`` those of its
    subfolders, none of a folder whose name ends in ``__pycache__``); each file's real path
    (``realpath``/``resolve``: through symlinks) is loaded once, if its *name* matches
    :data:`_REVISION_FILE`. So ``versions/c1.link -> ../shared/c1.py`` is a revision and
    ``versions/c1.py -> c1.txt`` is not. What this cannot mirror for every alembic release and
    Python version declines: ``sourceless`` (``.pyc`` files cannot be parsed), a symlink to a
    folder (Python 3.12's ``Path.walk`` lists it as a file, ``os.walk`` as a folder), a broken
    or looping symlink, a name alembic would fail to import (``a.py`` plus a newline, ``.py``), a
    file that is not a regular file, a folder that cannot be read (``os.walk`` skips it silently).
    """
    if project.sourceless or project.unsupported is not None:
        return None
    found: Sources = {}
    seen: set[str] = set()
    for folder in project.version_dirs:
        if not folder.exists():
            continue  # alembic skips it too
        if not folder.is_dir():
            return None
        sources = found.setdefault(folder, {})
        try:
            for path in _listed(folder, project.recursive):
                if os.path.islink(path) and not os.path.exists(path):
                    return None  # broken or looping: alembic fails on it, or not, by its name
                real = os.path.realpath(path)
                name = os.path.basename(real)
                if _REVISION_FILE.match(name) is None:
                    continue
                if "\n" in name or os.path.splitext(name)[1] != ".py":
                    return None  # alembic's load_python_file fails on it (``assert False``)
                if real in seen:
                    continue  # "File ... loaded twice! ignoring."
                seen.add(real)
                if not stat.S_ISREG(os.stat(real).st_mode):
                    return None  # a FIFO or a device: importing it may block or fail
                with open(real, "rb") as fh:
                    sources[os.path.relpath(path, folder)] = fh.read()
        except (OSError, RuntimeError, ValueError):
            return None  # unreadable: alembic fails on it, or skips it silently
    return found


def _listed(top: Path, recursive: bool) -> Iterator[str]:
    """Alembic's ``Script._list_py_dir`` without ``sourceless``: the paths it goes on to load."""
    def fail(exc: OSError) -> None:
        raise exc

    for root, dirs, files in os.walk(top, topdown=True, onerror=fail):
        if any(os.path.islink(os.path.join(root, d)) for d in dirs):
            raise ValueError("a symlink to a folder")
        if not root.endswith("__pycache__"):  # alembic: skipped, its subfolders still walked
            yield from (os.path.join(root, f) for f in files)
            if not recursive:
                return


def quoted_elsewhere(files: Sources, revisions: list[str]) -> bool:
    """A revision id the database is at, quoted in two files or more: its own and, most likely,
    a child's ``down_revision``. Declining needs no proof, so no parse is spent to confirm it."""
    for rev in revisions:
        marks = (f'"{rev}"'.encode(), f"'{rev}'".encode())
        hits = sum(1 for sources in files.values() for text in sources.values() if any(m in text for m in marks))
        if hits > 1:
            return True
    return False


def static_graph(files: Sources) -> RevisionGraph | None:
    """The revision graph Alembic would load from these files (complete and acyclic through
    ``down_revision`` and ``depends_on`` alike), or None when it cannot be proven.

    Branch labels matter to the targets the fast path answers (``head``, ``heads``) only through
    ``depends_on``, which may name a label: each name is resolved as Alembic resolves it (an id,
    else a label). A ``down_revision`` must name an id (Alembic's cycle check reads those through
    ids alone); labels that Alembic refuses (one naming an id or given twice) decline."""
    down: Graph = {}
    written: Graph = {}
    labels: dict[str, str] = {}
    for folder, sources in files.items():
        graph = folder_graph(folder, sources)
        if graph is None:
            return None
        for rev, downs, needs, own_labels in graph:
            if rev in down:
                return None
            down[rev], written[rev] = downs, needs
            for label in own_labels:
                if label in labels or label in _RESERVED_LABELS:
                    return None
                labels[label] = rev
    if labels.keys() & down.keys():
        return None  # "Branch name ... already used by revision ..."
    depends: Graph = {}
    for rev, names in written.items():
        resolved = tuple(labels.get(name, name) if name not in down else name for name in names)
        if len({*down[rev], *resolved}) != len(down[rev]) + len(resolved):
            return None  # a label naming what another name does: alembic dedupes, the proof does not try
        depends[rev] = resolved
    # Alembic follows both kinds of edge: a missing target or a cycle through either fails it.
    if not down or not _is_complete_dag({rev: (*downs, *depends[rev]) for rev, downs in down.items()}):
        return None
    return RevisionGraph(down, depends)


def heads_of(graph: Graph) -> tuple[str, ...]:
    """The revisions no other revision names as its down revision."""
    referenced = {d for downs in graph.values() for d in downs}
    return tuple(sorted(graph.keys() - referenced))


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


def folder_graph(folder: Path, sources: dict[str, bytes]) -> list[Entry] | None:
    """:func:`revision_of` of each of one folder's files; None to decline. Parsing each file
    is skipped when the folder's cache has a result for its exact content."""
    cache = _GraphCache(folder)
    graph: list[Entry] = []
    for name, source in sources.items():
        digest = hashlib.blake2b(source, digest_size=16).hexdigest()
        found = cache.get(name, digest)
        if found is None:
            found = revision_of(source)
            if found is None:
                return None
            cache.put(name, digest, found)
        graph.append(found)
    cache.save(keep=sources)
    return graph


def revision_of(source: bytes) -> Entry | None:
    """(revision, down revisions, depends_on, branch labels) that importing ``source`` provably
    gives Alembic, or None.

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


def _graph_entry(literals: dict[str, Any]) -> Entry | None:
    rev = literals.get("revision")
    if not isinstance(rev, str) or not rev or "down_revision" not in literals:
        return None  # alembic falls back to the file name, or fails on a missing down_revision
    downs, needs = _ids(literals["down_revision"]), _ids(literals.get("depends_on"))
    labels = _ids(literals.get("branch_labels"))
    if downs is None or needs is None or len({*downs, *needs}) != len(downs) + len(needs):
        return None  # repeated or overlapping ids: alembic dedupes them, the proof does not try
    if labels is None or len(set(labels)) != len(labels):
        return None  # alembic fails on a label given twice
    return rev, downs, needs, labels


def _ids(value: Any) -> tuple[str, ...] | None:
    """A ``down_revision``/``depends_on``/``branch_labels`` value as Alembic's ``util.to_tuple``
    reads it; None unless every name is a non-empty string (a set declines: its order is not
    the file's)."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else None
    if isinstance(value, (tuple, list)) and all(isinstance(d, str) and d for d in value):
        return tuple(value)
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
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.ExceptHandler,
                               ast.MatchAs, ast.MatchStar)):
            if node.name in GRAPH_NAMES:
                return False
        elif isinstance(node, ast.MatchMapping) and node.rest in GRAPH_NAMES:
            return False
    return True


_USER_CACHE_PREFIX = "revisions-"
#: User cache files kept (one per versions folder; CI runs in fresh temporary folders).
_USER_CACHE_KEEP = 32


class _GraphCache:
    """Per-file results of :func:`revision_of` for one folder, keyed by content digest."""

    _FORMAT = 3  # 2: entries carry depends_on; 3: and branch labels

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

    def get(self, name: str, digest: str) -> Entry | None:
        entry = self.entries.get(name)
        try:
            if entry is not None and entry[0] == digest:
                rev, downs, needs, labels = entry[1], entry[2], entry[3], entry[4]
                if isinstance(rev, str) and all(
                    isinstance(ids, list) and all(isinstance(d, str) for d in ids) for ids in (downs, needs, labels)
                ):
                    return rev, tuple(downs), tuple(needs), tuple(labels)
        except (IndexError, TypeError):
            pass
        return None

    def put(self, name: str, digest: str, found: Entry) -> None:
        self.entries[name] = [digest, found[0], list(found[1]), list(found[2]), list(found[3])]
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
