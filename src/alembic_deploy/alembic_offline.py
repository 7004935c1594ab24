"""Revision files read and rendered without env.py or a database (for ``check`` and the lint).

Re-exported by :mod:`alembic_deploy.alembic_env`, which stays the one place the rest of the package
reaches Alembic through.

* :func:`scan_revision_files` imports every revision file of a project on its own, so a project whose
  graph is broken (two files with one id, a ``down_revision`` naming nothing, a cycle, a file that
  does not import) is still read whole and each problem can be named, where Alembic's
  ScriptDirectory stops at the first.
* :func:`render_offline` runs one revision's ``upgrade()`` (or ``downgrade()``) in Alembic's offline
  mode for a dialect name, through a :class:`MigrationContext` with ``as_sql`` (public API, as
  ``alembic upgrade --sql`` does), and returns each statement with the line of the revision file
  that emitted it, whether it is inside the revision's transaction, and what the Alembic operation
  behind it asked for (a MySQL ``MODIFY`` does not say whether the type or only the nullability
  changed; the ``alter_column`` call does).
"""

from __future__ import annotations

import importlib.util
import inspect
import itertools
import os
import re
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from alembic import util as alembic_util
from alembic.operations import Operations
from alembic.operations import ops as alembic_ops
from alembic.runtime.migration import MigrationContext

from ._private_api import op_proxy_kept

if TYPE_CHECKING:
    from collections.abc import Callable
    from types import FrameType, ModuleType

    from alembic.config import Config
    from alembic.script import ScriptDirectory

__all__ = [
    "RenderedStatement", "RevisionFile", "read_revision_file", "render_error_line", "render_offline",
    "scan_revision_files", "version_dirs",
]

#: Files Alembic reads as revisions (``alembic/script/base.py``): ``*.py`` but not ``__init__`` or
#: an editor's lock file.
_REVISION_FILE: Final = re.compile(r"(?!\.\#|__init__)(.*\.py)$")
_BEGIN: Final = re.compile(r"BEGIN( TRANSACTION)?;?\Z", re.IGNORECASE)
_COMMIT: Final = re.compile(r"COMMIT;?\Z", re.IGNORECASE)
_module_ids = itertools.count()


@dataclass
class RevisionFile:
    """One revision file as imported on its own (``module`` is None when it did not import)."""

    path: Path
    source: str
    module: ModuleType | None = None
    revision: str | None = None
    down_revisions: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    doc: str = ""
    #: Why it did not import, one line, and the line of the file it failed at when known.
    error: str | None = None
    error_line: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RenderedStatement:
    """One chunk of SQL a revision emits offline (it may hold several statements: ``op.execute``
    passes its text through as written)."""

    sql: str
    #: The line of the revision file whose call emitted it (None when it came from elsewhere).
    line: int | None
    #: Inside the revision's transaction (False in an ``autocommit_block()``, or on a dialect
    #: without transactional DDL such as MySQL).
    in_transaction: bool
    #: The Alembic operation behind it (``AlterColumnOp``, ``ExecuteSQLOp``...), "" when none.
    operation: str = ""
    #: What the operation asked for where the SQL alone cannot say: for ``alter_column``,
    #: ``type_change`` (a new type given that differs from ``existing_type``) and ``nullable``.
    facts: dict[str, Any] = field(default_factory=dict)


def version_dirs(script: ScriptDirectory) -> list[Path]:
    """The folders ``script`` reads revision files from (``version_locations``, else ``versions``)."""
    locations = script.version_locations or [os.path.join(script.dir, "versions")]
    return [Path(os.path.abspath(alembic_util.coerce_resource_to_filename(str(loc)))) for loc in locations]


def scan_revision_files(config: Config) -> list[RevisionFile]:
    """Every revision file of the project ``config`` names, each imported on its own, in path order.

    ``prepend_sys_path`` applies as under ``alembic``. A file that raises on import is returned with
    its ``error``; one that defines no ``revision`` is skipped, as Alembic skips it.
    """
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(config)  # applies prepend_sys_path; loads no revision yet
    files: list[RevisionFile] = []
    for folder in version_dirs(script):
        if not folder.is_dir():
            continue
        paths = folder.rglob("*.py") if script.recursive_version_locations else folder.glob("*.py")
        for path in sorted(paths):
            if _REVISION_FILE.match(path.name):
                found = read_revision_file(path)
                if found is not None:
                    files.append(found)
    return files


def read_revision_file(path: Path) -> RevisionFile | None:
    """``path`` imported on its own (None: not a revision file, as Alembic would skip it)."""
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return RevisionFile(path, "", error=f"cannot be read: {exc}")
    found = RevisionFile(path, source)
    spec = importlib.util.spec_from_file_location(f"_alembic_deploy_revision_{next(_module_ids)}", path)
    if spec is None or spec.loader is None:
        found.error = "is not a Python module"
        return found
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except SyntaxError as exc:
        found.error, found.error_line = f"does not compile: {exc.msg}", exc.lineno
        return found
    except Exception as exc:  # noqa: BLE001 - whatever the project's file raises is reported, not raised
        found.error, found.error_line = f"raises on import: {type(exc).__name__}: {exc}", render_error_line(exc, path)
        return found
    revision = getattr(module, "revision", None)
    if not isinstance(revision, str):
        return None if "revision" not in source else _no_revision(found)
    found.module, found.revision = module, revision
    found.down_revisions = _names(getattr(module, "down_revision", None))
    found.depends_on = _names(getattr(module, "depends_on", None))
    found.doc = (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""
    options = getattr(module, "alembic_deploy", None)
    found.options = dict(options) if isinstance(options, dict) else {}
    return found


def _no_revision(found: RevisionFile) -> RevisionFile | None:
    # A helper module beside the revisions mentions "revision" without being one: skip it as
    # Alembic does, unless it looks like a revision file (it has upgrade()).
    if "def upgrade" not in found.source:
        return None
    found.error = "defines upgrade() but no revision id (revision = '...')"
    return found


def _names(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


class _Recorder:
    """Alembic's output buffer: each write is one statement, tagged as it is written."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.statements: list[RenderedStatement] = []
        self.in_transaction = False
        self.operations: list[alembic_ops.MigrateOperation] = []

    def write(self, text: str) -> None:
        sql = text.strip()
        if not sql:
            return
        if _BEGIN.match(sql):
            self.in_transaction = True
            return
        if _COMMIT.match(sql):
            self.in_transaction = False
            return
        operation = self.operations[-1] if self.operations else None
        self.statements.append(RenderedStatement(
            sql, self._line(), self.in_transaction,
            type(operation).__name__ if operation is not None else "", _facts(operation),
        ))

    def flush(self) -> None:
        pass

    def _line(self) -> int | None:
        frame: FrameType | None = inspect.currentframe()
        while frame is not None:
            if frame.f_code.co_filename == self.path:
                return frame.f_lineno
            frame = frame.f_back
        return None

    def recording(self, invoke: Callable[[alembic_ops.MigrateOperation], Any]) -> Callable[..., Any]:
        def record(operation: alembic_ops.MigrateOperation) -> Any:
            self.operations.append(operation)
            try:
                return invoke(operation)
            finally:
                self.operations.pop()

        return record


def _facts(operation: alembic_ops.MigrateOperation | None) -> dict[str, Any]:
    if isinstance(operation, alembic_ops.AlterColumnOp):
        new, old = operation.modify_type, operation.existing_type
        changed = new is not None and (old is None or repr(new) != repr(old))
        return {"type_change": changed, "nullable": operation.modify_nullable}
    # What a table or column operation creates or drops (the rollback's destructive-downgrade
    # finding compares a downgrade's drops with what the upgrade created), on every dialect.
    if isinstance(operation, (alembic_ops.CreateTableOp, alembic_ops.DropTableOp)):
        return {"table": operation.table_name}
    if isinstance(operation, alembic_ops.AddColumnOp):
        return {"table": operation.table_name, "column": operation.column.name}
    if isinstance(operation, alembic_ops.DropColumnOp):
        return {"table": operation.table_name, "column": operation.column_name}
    return {}


def render_offline(found: RevisionFile, dialect: str, direction: str = "upgrade",
                   transactional_ddl: bool | None = None) -> list[RenderedStatement]:
    """The statements ``found``'s ``upgrade()`` (or ``downgrade()``) emits in Alembic's offline mode
    for ``dialect`` (a SQLAlchemy dialect name: postgresql, mysql, mariadb, sqlite), literal values
    inlined as ``alembic upgrade --sql`` does, inside one transaction where the dialect has
    transactional DDL (``transactional_ddl`` overrides the dialect's, as env.py's ``context.configure``
    keyword of that name does). Raises what the revision raises offline (e.g. it reads the database through
    ``op.get_bind()``); the version-table statements env.py would add are not included.
    """
    if found.module is None:
        raise ValueError(f"{found.path} did not import")
    recorder = _Recorder(found.path)
    opts: dict[str, Any] = {"as_sql": True, "output_buffer": recorder, "literal_binds": True}
    if transactional_ddl is not None:
        opts["transactional_ddl"] = transactional_ddl
    context = MigrationContext.configure(dialect_name=dialect, opts=opts)
    migrate: Callable[[], Any] = getattr(found.module, direction)
    # Inside env.py's own run (upgrade's preflight) alembic.op is that run's: keep it.
    with op_proxy_kept(), Operations.context(context) as operations:
        # The op proxy calls invoke() on this instance for every operation: record which one
        # each statement comes from. Wrapped on the instance: Operations.context() builds a plain
        # Operations (not cls), so a subclass overriding invoke() could not take its place.
        operations.invoke = recorder.recording(operations.invoke)  # type: ignore[method-assign]
        with context.begin_transaction():
            migrate()
    return recorder.statements


def render_error_line(exc: BaseException, path: Path) -> int | None:
    """The line of ``path`` that a failed :func:`render_offline` (or import) raised from, if any."""
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if Path(f.filename) == path]
    return lines[-1] if lines else None
