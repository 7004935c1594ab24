"""What is wrong with a project's revision graph, read from its files one by one (no database, no
env.py): every problem is named, where Alembic stops at the first.

* ``import-error``: a revision file that does not import (or defines upgrade() but no id);
* ``duplicate-revision``: two files with one revision id (Alembic keeps one of them silently);
* ``dangling-down-revision``: a ``down_revision`` (or ``depends_on``) naming no revision;
* ``cycle``: revisions that are, through their ``down_revision``, below themselves;
* ``multiple-heads``: more than one head, with the ``alembic merge`` command that joins them, unless
  each head is on a branch of its own: every head's history carries a ``branch_labels`` that no other
  head's does (Alembic's independent branches, deployed with ``heads`` or ``label@head``).
"""

from __future__ import annotations

import shlex
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from .alembic_offline import RevisionFile


@dataclass(frozen=True)
class GraphProblem:
    kind: str
    message: str
    revisions: tuple[str, ...] = ()
    file: str | None = None
    line: int | None = None
    #: The command or edit that fixes it, when there is one to give.
    fix: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "message": self.message, "revisions": list(self.revisions), "file": self.file,
                "line": self.line, "fix": self.fix}


def graph_problems(files: Sequence[RevisionFile], config: str = "alembic.ini") -> list[GraphProblem]:
    """The problems of the graph ``files`` make, in the order listed in the module docstring.
    ``config`` is the ini path the ``alembic merge`` command should name."""
    problems: list[GraphProblem] = []
    loaded = [f for f in files if f.error is None and f.revision is not None]
    for f in files:
        if f.error is not None:
            problems.append(GraphProblem("import-error", f"{f.path} {f.error}", file=str(f.path), line=f.error_line))
    counts = Counter(f.revision for f in loaded)
    for revision, count in sorted((r, c) for r, c in counts.items() if r is not None and c > 1):
        paths = [str(f.path) for f in loaded if f.revision == revision]
        problems.append(GraphProblem(
            "duplicate-revision", f"revision id {revision} is defined by {count} files: {', '.join(paths)}",
            (revision,), paths[0], fix="Give one of them a new id (alembic revision generates one).",
        ))
    known = {f.revision for f in loaded}
    labels = {label for f in loaded for label in _labels(f)}
    for f in loaded:
        for parent in f.down_revisions:
            if parent not in known:
                problems.append(GraphProblem(
                    "dangling-down-revision", f"{f.revision} has down_revision {parent!r}, which no revision defines",
                    (str(f.revision), parent), str(f.path),
                ))
        for needed in f.depends_on:
            if needed not in known and needed not in labels:
                problems.append(GraphProblem(
                    "dangling-down-revision", f"{f.revision} depends_on {needed!r}, which no revision or branch "
                    "label names", (str(f.revision), needed), str(f.path),
                ))
    problems.extend(_cycles(loaded))
    heads = _heads(loaded)
    if len(heads) > 1 and not _separate_branches(loaded, heads):
        given = "" if config == "alembic.ini" else f" -c {shlex.quote(config)}"
        command = f"alembic{given} merge -m {shlex.quote('merge heads')} {' '.join(heads)}"
        problems.append(GraphProblem(
            "multiple-heads", f"the history has {len(heads)} heads: {', '.join(heads)}; a deploy to 'head' is "
            "ambiguous", tuple(heads), fix=command,
        ))
    return problems


def heads_of(files: Sequence[RevisionFile]) -> list[str]:
    return _heads([f for f in files if f.error is None and f.revision is not None])


def _heads(loaded: Sequence[RevisionFile]) -> list[str]:
    below = {parent for f in loaded for parent in f.down_revisions}
    return sorted({str(f.revision) for f in loaded} - below)


def _separate_branches(loaded: Sequence[RevisionFile], heads: Sequence[str]) -> bool:
    by_id = {str(f.revision): f for f in loaded}
    seen: list[set[str]] = []
    for head in heads:
        labels: set[str] = set()
        stack, visited = [head], set()
        while stack:
            rev = stack.pop()
            if rev in by_id and rev not in visited:
                visited.add(rev)
                labels |= _labels(by_id[rev])
                stack.extend(by_id[rev].down_revisions)
        if not labels or any(labels & other for other in seen):
            return False
        seen.append(labels)
    return True


def _labels(found: RevisionFile) -> set[str]:
    module = found.module
    value = getattr(module, "branch_labels", None) if module is not None else None
    if isinstance(value, str):
        return {value}
    return {str(v) for v in value or ()}


def _cycles(loaded: Sequence[RevisionFile]) -> list[GraphProblem]:
    parents = {str(f.revision): f.down_revisions for f in loaded}
    paths = {str(f.revision): str(f.path) for f in loaded}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    problems: list[GraphProblem] = []
    for start in sorted(parents):
        if state.get(start):
            continue
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = []
        while stack:
            node, index = stack.pop()
            if index == 0:
                state[node] = 1
                path.append(node)
            ups = [p for p in parents.get(node, ()) if p in parents]
            if index < len(ups):
                stack.append((node, index + 1))
                up = ups[index]
                if state.get(up) == 1:
                    loop = path[path.index(up):]
                    problems.append(GraphProblem(
                        "cycle", f"revisions {' -> '.join([*loop, up])} form a cycle through their down_revision",
                        tuple(loop), paths[up],
                    ))
                elif not state.get(up):
                    stack.append((up, 0))
            else:
                state[node] = 2
                path.pop()
    return problems


def order(files: Sequence[RevisionFile]) -> list[RevisionFile]:
    """The loaded revisions, each after every revision below it (base first); those in a cycle last."""
    loaded = [f for f in files if f.error is None and f.revision is not None]
    by_id = {str(f.revision): f for f in loaded}
    done: set[str] = set()
    ordered: list[RevisionFile] = []
    pending = sorted(by_id)
    progress = True
    while pending and progress:
        progress = False
        rest = []
        for rev in pending:
            if all(p in done or p not in by_id for p in by_id[rev].down_revisions):
                ordered.append(by_id[rev])
                done.add(rev)
                progress = True
            else:
                rest.append(rev)
        pending = rest
    return ordered + [by_id[r] for r in pending]


def pending_from(files: Sequence[RevisionFile], revision: str) -> set[str]:
    """The revisions a database at ``revision`` has still to apply: every revision but it and
    those below it (through ``down_revision`` and ``depends_on``)."""
    loaded = {str(f.revision): f for f in files if f.error is None and f.revision is not None}
    applied: set[str] = set()
    stack = [revision]
    while stack:
        rev = stack.pop()
        if rev in loaded and rev not in applied:
            applied.add(rev)
            stack.extend((*loaded[rev].down_revisions, *loaded[rev].depends_on))
    return set(loaded) - applied
