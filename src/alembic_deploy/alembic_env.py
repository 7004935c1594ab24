"""The only module that imports Alembic.

Migrations run through Alembic's own API: the project's ``env.py`` executes exactly as under
``alembic upgrade``, in an :class:`EnvironmentContext` whose ``fn`` (what alembic calls once env.py
configured the context and called ``run_migrations``) adds what a deploy needs without any change
to ``env.py``:

* it sees the migrating connection (to bound its lock waits and to cancel it on SIGTERM) and the
  version table it uses (to verify afterwards);
* it chains an ``on_version_apply`` callback after the project's own that times each revision;
* it hands alembic the steps of the run, each announcing its start.

The few Alembic internals this needs are in :mod:`alembic_deploy._private_api`.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, cast

from alembic import util as alembic_util
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from alembic.script.revision import ResolutionError, RevisionError

from ._private_api import (
    chain_version_apply,
    downgrade_steps,
    requires,
    stamp_steps,
    upgrade_steps,
)
from .alembic_offline import (
    RenderedStatement,
    RevisionFile,
    read_revision_file,
    render_error_line,
    render_offline,
    scan_revision_files,
)
from .alembic_offline import version_dirs as _version_dirs
from .errors import CheckRefused, ConfigError
from .motion import Motion

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from alembic.runtime.migration import MigrationContext, MigrationInfo
    from alembic.script import Script

    from .settings import Settings

__all__ = [
    "REVISION_OPTIONS",
    "AlembicError",
    "AlembicProject",
    "Motion",
    "RenderedStatement",
    "RevisionFile",
    "RevisionNode",
    "RunObserver",
    "open_scripts",
    "read_revision_file",
    "render_error_line",
    "render_offline",
    "revision_files",
    "revision_graph",
    "revision_options",
]

#: Alembic's own error type, for callers that translate it.
AlembicError = alembic_util.CommandError


@dataclass
class RunObserver:
    """Callbacks a run reports to; every field is optional."""

    #: (migration context, current heads) before any revision runs; may raise to refuse.
    on_configured: Callable[[MigrationContext, tuple[str, ...]], None] | None = None
    #: (revision id, description, started, duration) after each revision.
    on_revision: Callable[[str, tuple[str, ...], str, float, float], None] | None = None
    #: steps alembic is about to run, (revision id, description) in order.
    on_plan: Callable[[list[tuple[str, str]]], None] | None = None
    #: (revision id, its ``alembic_deploy`` options dict) as each revision starts, inside its
    #: transaction and before its first statement (on_revision fires only after it ends).
    on_revision_start: Callable[[str, dict[str, Any]], None] | None = None


@dataclass
class RunResult:
    #: True once env.py configured a context and alembic computed the steps.
    configured: bool = False
    current: tuple[str, ...] = ()
    planned: list[tuple[str, str]] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    #: The version table's rows as alembic itself left them: the current heads, then after each
    #: revision the heads alembic's ``on_version_apply`` reports (a ``depends_on`` revision absorbs
    #: the head it depends on, a target below the database changes nothing). Verification
    #: compares the database with this, never with a target resolved on the side.
    heads: tuple[str, ...] = ()
    version_table: str = "alembic_version"
    version_table_schema: str | None = None


def _announce_start(step: Any, options: dict[str, Any], on_start: Callable[[str, dict[str, Any]], None]) -> None:
    """Make ``step`` call ``on_start`` when alembic runs it. Alembic calls ``step.migration_fn``
    inside the step's transaction (a plain attribute of each freshly built RevisionStep)."""
    migration_fn = step.migration_fn
    rev = step.revision.revision

    def started(*args: Any, **kw: Any) -> Any:
        on_start(rev, options)
        return migration_fn(*args, **kw)

    # Alembic logs the step by this name ("Running upgrade a -> b"); the rest of
    # functools.wraps is not needed and costs a dozen calls per revision.
    started.__name__ = migration_fn.__name__

    step.migration_fn = started


class AlembicProject:
    """An Alembic project opened through Alembic: its Config and ScriptDirectory, and env.py runs
    (:class:`~alembic_deploy.project.ProjectIni` is its ini read as text, without Alembic)."""

    def __init__(self, settings: Settings, url: str) -> None:
        ini = settings.config_path
        cmd_opts = argparse.Namespace(x=list(settings.x), config=str(ini), name=settings.name)
        self.config = alembic_config(ini, settings.name, cmd_opts=cmd_opts)
        # env.py reads the URL either way: from the config or from DATABASE_URL.
        self.config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        os.environ["DATABASE_URL"] = url
        self.url = url
        self.last_run = RunResult()
        #: The ``alembic_deploy`` dicts of the last run's planned revisions, read once per step.
        self._planned_options: dict[str, dict[str, Any]] = {}
        self.script = open_scripts(self.config)

    # -- the revision graph ------------------------------------------------------------------
    def heads(self) -> tuple[str, ...]:
        return tuple(self.script.get_heads())

    def check_target(self, target: str) -> None:
        """Refuse (exit 5) a target alembic cannot resolve, before anything runs. A relative target
        (``+1``, ``ae10+2``, ``branch@+1``) resolves only against the database's revisions: alembic
        judges it when it plans the run (:meth:`run`), with the same refusal."""
        try:
            self.script.get_revisions(target)
        except (ResolutionError, RevisionError, alembic_util.CommandError) as exc:
            if not _RELATIVE.search(target):
                raise _unknown_target(target, exc) from None

    def reached(self, target: str, revisions: Sequence[str]) -> bool:
        """Has a database at ``revisions`` applied ``target`` (itself or something above it)?
        False when ``target`` cannot be resolved without a database (a relative target)."""
        try:
            found: tuple[Script | None, ...] = tuple(self.script.get_revisions(target))
            wanted = {s.revision for s in found if s is not None}
        except (ResolutionError, RevisionError, alembic_util.CommandError):
            return False
        return wanted <= self.ancestry(revisions)

    def _script(self, revision: str) -> Script | None:
        """The revision's Script; None for ``base`` or no revision (alembic's annotation omits it)."""
        return self.script.get_revision(revision)

    def describe(self, revision: str) -> str:
        script = self._script(revision)
        return (script.doc or "") if script is not None else ""

    def path(self, revision: str) -> str | None:
        """The revision's file, for messages (None: not in these scripts)."""
        script = self._script(revision)
        return script.path if script is not None else None

    def down_revisions(self, revision: str) -> tuple[str, ...]:
        """The revision(s) ``revision`` follows (its ``down_revision``, as a tuple)."""
        script = self._script(revision)
        down = script.down_revision if script is not None else None
        return tuple(down) if isinstance(down, (list, tuple)) else ((down,) if down else ())

    def options(self, revision: str) -> dict[str, Any]:
        """The revision file's ``alembic_deploy`` dict ({} when it has none)."""
        if revision in self._planned_options:
            return self._planned_options[revision]
        script = self._script(revision)
        return revision_options(script.module) if script is not None else {}

    def knows(self, revision: str) -> bool:
        try:
            return self._script(revision) is not None
        # ScriptDirectory re-raises ResolutionError as CommandError ("Can't locate revision").
        except (ResolutionError, RevisionError, alembic_util.CommandError):
            return False

    def ancestry(self, revisions: Sequence[str]) -> set[str]:
        """``revisions`` and every revision below them (what a database at them has applied)."""
        if not revisions:
            return set()
        try:
            return {s.revision for s in self.script.iterate_revisions(tuple(revisions), "base")}
        except (alembic_util.CommandError, ResolutionError, RevisionError):
            return set(revisions)

    def nodes(self) -> tuple[RevisionNode, ...]:
        """Every revision as plain data, base first (what the schema guard judges a database by)."""
        return _nodes(list(self.script.walk_revisions("base", "heads")))

    def heads_of(self, applied: Sequence[str]) -> tuple[str, ...]:
        """The version table of a database where exactly ``applied`` (ancestors included) is
        applied: the revisions no other one of them requires."""
        scripts = [self._script(rev) for rev in applied]
        below = {r for script in scripts if script is not None for r in requires(script)}
        return tuple(sorted(set(applied) - below))

    def upgrade_steps(self, target: str, current: Sequence[str]) -> list[tuple[str, str]]:
        revs = upgrade_steps(self.script, target, tuple(current))
        return [(step.revision.revision, step.doc or "") for step in revs]

    def pending(self, target: str, current: Sequence[str]) -> list[str] | None:
        """The revisions an upgrade from ``current`` to ``target`` applies, in order; None when
        alembic cannot resolve one of them (the upgrade itself then refuses, in its own words)."""
        try:
            return [rev for rev, _ in self.upgrade_steps(target, current)]
        except (ResolutionError, RevisionError, alembic_util.CommandError):
            return None
    def steps(self, motion: Motion, current: Sequence[str]) -> list[tuple[str, str]]:
        """(revision, description) of what ``motion`` still has to run from a database at
        ``current``, in the order alembic runs them (alembic's errors on a target it cannot reach)."""
        if motion.upgrading:
            return self.upgrade_steps(motion.target, current)
        try:
            steps = self._downgrade_steps(motion, tuple(current))
        except (ResolutionError, RevisionError, alembic_util.CommandError) as exc:
            raise _unknown_target(motion.target, exc, current, "downgrade") from None
        return [(s.revision.revision, s.doc or "") for s in steps]

    def _downgrade_steps(self, motion: Motion, current: Any) -> list[Any]:
        if not motion.undo:
            return downgrade_steps(self.script, motion.target, current)
        # Alembic's own walk down to base, kept to the revisions to undo: each step decides what
        # it does to the version table from the heads it finds, so a subset in that order is
        # exactly what alembic would do to undo them.
        undo = set(motion.undo)
        return [s for s in downgrade_steps(self.script, "base", current) if s.revision.revision in undo]

    # -- running env.py ----------------------------------------------------------------------
    def run(self, direction: str, target: str, observer: RunObserver, motion: Motion | None = None) -> RunResult:
        """Run env.py to move the database to ``target`` (``direction`` is upgrade/downgrade/inspect);
        a downgrade's ``motion`` may name the revisions it undoes instead (:class:`Motion`)."""
        result = self.last_run = RunResult()
        script = self.script
        last = [time.time()]
        docs: dict[str, str] = {}

        def on_version_apply(*, ctx: MigrationContext, step: MigrationInfo, heads: Any, run_args: Any) -> None:
            now = time.time()
            started, last[0] = last[0], now
            # For a downgrade step too, up_revision_id is the revision being applied or reverted.
            rev = str(step.up_revision_id)
            result.applied.append(rev)
            result.heads = tuple(sorted(heads))
            if observer.on_revision:
                if rev not in docs:  # the plan holds every revision's doc, read once
                    docs.update(result.planned)
                doc = docs.get(rev)
                if doc is None:
                    doc = self.describe(rev)
                observer.on_revision(rev, tuple(step.down_revision_ids), doc, started, now - started)

        def fn(rev: Any, context: MigrationContext) -> Any:
            # env.py configured the context and called run_migrations; alembic read the current
            # revision(s) and asks for the steps.
            result.configured = True
            result.version_table = context.version_table
            result.version_table_schema = context.version_table_schema
            chain_version_apply(context, on_version_apply)
            last[0] = time.time()
            result.current = tuple(rev) if isinstance(rev, (list, tuple)) else ((rev,) if rev else ())
            result.heads = tuple(sorted(result.current))
            if observer.on_configured:
                observer.on_configured(context, result.current)
            if direction == "inspect":
                return []
            if direction == "stamp":  # record ``target`` as applied without running it (repair)
                result.planned = [(target, self.describe(target))]
                return stamp_steps(script, target, rev)
            if direction == "upgrade":
                try:
                    steps = upgrade_steps(script, target, rev)
                except (ResolutionError, RevisionError, alembic_util.CommandError) as exc:
                    raise _unknown_target(target, exc, result.current) from None
                result.planned = [(s.revision.revision, s.doc or "") for s in steps]
            else:
                try:
                    steps = self._downgrade_steps(motion or Motion("downgrade", target), rev)
                except (ResolutionError, RevisionError, alembic_util.CommandError) as exc:
                    raise _unknown_target(target, exc, result.current, "downgrade") from None
                result.planned = [(s.revision.revision, s.doc or "") for s in steps]
            self._planned_options = {s.revision.revision: revision_options(s.revision.module) for s in steps}
            if observer.on_plan:
                observer.on_plan(result.planned)
            if observer.on_revision_start:
                for step in steps:
                    _announce_start(step, self._planned_options[step.revision.revision], observer.on_revision_start)
            return steps

        ctx = EnvironmentContext(
            self.config,
            script,
            fn=fn,
            as_sql=False,
            starting_rev=None,
            destination_rev=target,
            tag=None,
        )
        from .credentials import while_env_py_runs

        with ctx, while_env_py_runs(self.url):
            try:
                script.run_env()
            except Exception as exc:
                error = _setup_error(exc, result)
                if error is None:
                    raise
                raise error from exc
        return result

    def offline_sql(self, revision: str, direction: str = "upgrade") -> list[str]:
        """The statements ``alembic upgrade <down>:<revision> --sql`` (or ``downgrade
        <revision>:<down> --sql``) emits for that one revision, one string each, as alembic writes
        them: env.py runs in offline mode. Comments, BEGIN/COMMIT and version-table statements are
        included (callers filter). Raises whatever env.py or the revision raises offline, e.g. a
        revision that reads the database through ``op.get_bind()``."""
        script = self._script(revision)
        down = script.down_revision if script is not None else None
        downs = tuple(down) if isinstance(down, (list, tuple)) else ((down,) if down else ())
        if direction == "downgrade" and len(downs) > 1:
            raise AlembicError(f"{revision} merges {', '.join(downs)}: its downgrade has no single target")
        chunks: list[str] = []

        class _Collect:
            write = chunks.append

            def flush(self) -> None:
                pass

        below = downs[0] if downs else "base"

        def fn(rev: Any, _context: MigrationContext) -> Any:
            if direction == "upgrade":
                steps = upgrade_steps(self.script, revision, rev)
            else:
                steps = downgrade_steps(self.script, below, rev)
            return [s for s in steps if s.revision.revision == revision]

        start, destination = (downs or None, revision) if direction == "upgrade" else (revision, below)
        saved, self.config.output_buffer = self.config.output_buffer, cast("TextIO", _Collect())
        # Alembic's INFO lines ("Running upgrade ...") would read as if something ran.
        logging.disable(logging.INFO)
        try:
            with EnvironmentContext(self.config, self.script, fn=fn, as_sql=True, starting_rev=start,
                                    destination_rev=destination, tag=None):
                self.script.run_env()
        finally:
            logging.disable(logging.NOTSET)
            self.config.output_buffer = saved
        return [c.strip() for c in chunks if c.strip()]


#: A target alembic resolves relative to the database's revisions: ``+1``, ``ae10-1``, ``branch@+2``.
_RELATIVE = re.compile(r"[-+]\d+$")


def _unknown_target(target: str, exc: Exception, current: Sequence[str] | None = None,
                    direction: str = "upgrade") -> CheckRefused:
    at = f" from the database's revision(s) {', '.join(current) or '<base>'}" if current is not None else ""
    advice = (
        "Deploy a revision these migration scripts contain, 'heads', or a branch's head such as "
        "'branch@head' (see `alembic-deploy status` for the heads)." if direction == "upgrade" else
        "Roll back to a revision below the database's, or 'base' (see `alembic-deploy history` for "
        "what each deploy applied)."
    )
    return CheckRefused(f"Alembic cannot {direction} to {target!r}{at}: {str(exc).rstrip('.')}. {advice}")


# -- the revision graph as plain data (no database, no env.py) --------------------------------------
#: Module attribute a revision file may define: a dict of per-revision options for alembic-deploy.
#: Each feature reads only its own keys (the schema guard reads ``expand_only`` and ``contract``).
REVISION_OPTIONS = "alembic_deploy"


@dataclass(frozen=True)
class RevisionNode:
    revision: str
    #: What must be applied before this revision: its down revisions and its ``depends_on``.
    requires: tuple[str, ...]
    doc: str
    #: The revision file's ``alembic_deploy`` dict ({} when it has none).
    options: dict[str, Any]


def revision_options(module: Any) -> dict[str, Any]:
    """The ``alembic_deploy`` dict of a loaded revision module; a non-dict is a config error."""
    value = getattr(module, REVISION_OPTIONS, None)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(
            f"{getattr(module, '__file__', module)} sets {REVISION_OPTIONS} = {value!r}; it must be "
            f'a dict, e.g. {REVISION_OPTIONS} = {{"expand_only": True}}.'
        )
    return dict(value)


def alembic_config(ini: Path, section: str, **kw: Any) -> Config:
    """Alembic's Config for ``ini``, with the pyproject.toml that alembic's CLI would read beside it
    (``alembic init -t pyproject`` keeps script_location there; alembic >= 1.16)."""
    from .project import alembic_toml

    toml = alembic_toml(ini)
    if toml is not None and "toml_file" in inspect.signature(Config).parameters:
        kw["toml_file"] = str(toml)
    return Config(str(ini), ini_section=section, **kw)


def revision_graph(location: str, section: str = "alembic") -> tuple[tuple[str, ...], tuple[RevisionNode, ...]]:
    """Load the migration scripts once, without a database: (heads, every revision base first).

    ``location`` is an ``alembic.ini`` path (so ``version_locations`` and ``prepend_sys_path``
    apply as under ``alembic``) or a ``script_location`` (a folder or ``package:resource``).
    """
    if location.endswith(".ini") or os.path.isfile(location):
        if not os.path.isfile(location):
            raise ConfigError(
                f"No Alembic config at {location}. Pass the path of alembic.ini or of the migrations folder."
            )
        config = alembic_config(Path(location), section)
    else:
        config = Config()
        config.set_main_option("script_location", location.replace("%", "%%"))
    script = open_scripts(config)
    try:
        scripts = list(script.walk_revisions("base", "heads"))
        heads = tuple(script.get_heads())
    except (alembic_util.CommandError, ResolutionError, RevisionError) as exc:
        raise ConfigError(f"Alembic could not load the migration scripts at {location}: {exc}.") from None
    return heads, _nodes(scripts)


def _nodes(scripts: Sequence[Script]) -> tuple[RevisionNode, ...]:
    """``scripts`` (newest first, as ``walk_revisions`` yields them) as plain data, base first."""
    return tuple(RevisionNode(s.revision, requires(s), s.doc or "", revision_options(s.module))
                 for s in reversed(scripts))


# -- revision files read one by one, without a database or env.py (check, lint) ----------------------
def revision_files(ini: Path, section: str = "alembic") -> list[RevisionFile]:
    """Every revision file of the project ``ini`` configures, each imported on its own (see
    :func:`~alembic_deploy.alembic_offline.scan_revision_files`)."""
    if not ini.is_file():
        raise ConfigError(f"No Alembic config at {ini}. Pass the path of alembic.ini with -c.")
    config = alembic_config(ini, section)
    try:
        return scan_revision_files(config)
    except alembic_util.CommandError as exc:
        raise ConfigError(
            f"Alembic could not find the migration scripts: {str(exc).rstrip('. ')}. Check "
            "script_location (and version_locations) in the ini."
        ) from None


def env_py_location(ini: Path, section: str = "alembic") -> Path:
    """The env.py of the project ``ini`` configures (read as text by the lint, never run)."""
    return Path(ScriptDirectory.from_config(alembic_config(ini, section)).env_py_location)


# -- opening the scripts: what fails there is the project's to fix (exit 2) -------------------------
def open_scripts(config: Config) -> ScriptDirectory:
    """Alembic's ScriptDirectory for ``config``, every revision file loaded and the graph built
    (alembic does that once, on first use, so nothing is loaded twice). A revision file that does
    not compile or raises on import, a ``down_revision``/``depends_on`` naming nothing, a cycle:
    plain alembic fails on each too; here each is a ConfigError naming the file."""
    try:
        script = ScriptDirectory.from_config(config)
    except alembic_util.CommandError as exc:
        raise ConfigError(
            f"Alembic could not load the migration scripts: {str(exc).rstrip('. ')}. Check "
            "script_location (and version_locations) in the ini."
        ) from None
    try:
        script.get_heads()
    except Exception as exc:
        raise _scripts_error(script, exc) from exc
    return script


_FIX = "Fix it and deploy again (plain `alembic` cannot load it either)."


def _scripts_error(script: ScriptDirectory, exc: Exception) -> ConfigError:
    if isinstance(exc, SyntaxError) and exc.filename:
        return ConfigError(
            f"The revision file {exc.filename} does not compile: {exc.msg} (line {exc.lineno}). {_FIX}",
            file=exc.filename, line=exc.lineno,
        )
    frame = _project_frame(exc)
    if frame is not None:
        hint = (" Is that module installed, and importable from the project (prepend_sys_path in the "
                "ini)?" if isinstance(exc, ImportError) else "")
        return ConfigError(
            f"Loading the revision file {frame.filename} failed at line {frame.lineno}: "
            f"{type(exc).__name__}: {exc}.{hint} {_FIX}",
            file=frame.filename, line=frame.lineno,
        )
    folders = _version_dirs(script)
    where = ", ".join(str(f) for f in folders)
    if isinstance(exc, KeyError) and exc.args:
        # Alembic builds the graph with map_[down_revision] (after warning "is not present").
        involved = [str(exc.args[0])]
        detail = f"a down_revision or depends_on names {involved[0]!r}, which no revision file defines"
    else:
        involved = [str(r) for r in getattr(exc, "revisions", ())]
        detail = f"{type(exc).__name__}: {str(exc).rstrip('.')}"
    files = _files_naming(folders, involved, script.recursive_version_locations)
    named = f" (see {', '.join(files)})" if files else ""
    return ConfigError(
        f"The revision graph in {where} is broken: {detail}{named}. Fix the revision files and deploy "
        "again (plain `alembic` cannot load them either).",
        file=", ".join(files) or None,
    )


def _setup_error(exc: BaseException, result: RunResult) -> ConfigError | None:
    """The project's setup, not a migration, failed env.py's run: a driver (or greenlet) env.py's
    own engine needs, or env.py's imports. Only before alembic is configured (env.py connects
    first): a revision's own failure is explained by the pipeline, partly applied or not."""
    from .database import missing_driver

    if result.configured:
        return None
    return missing_driver(exc, "the engine env.py creates") or _env_py_error(exc)


def _env_py_error(exc: BaseException) -> ConfigError | None:
    """A ConfigError naming the file and line when env.py (or what it imports) does not compile or
    cannot import a module: the project's setup, not a migration, failed. None for anything else."""
    if isinstance(exc, SyntaxError) and exc.filename:
        return ConfigError(
            f"{exc.filename} does not compile: {exc.msg} (line {exc.lineno}). Fix it and deploy again "
            "(plain `alembic` cannot run it either); nothing was changed.",
            file=exc.filename, line=exc.lineno,
        )
    frame = _project_frame(exc) if isinstance(exc, ImportError) else None
    if frame is None:
        return None
    return ConfigError(
        f"env.py could not import what it needs: {type(exc).__name__}: {str(exc).rstrip('.')} ({frame.filename}, "
        f"line {frame.lineno}). Install the missing package, or make the module importable from the "
        "project (prepend_sys_path in the ini); nothing was changed.",
        file=frame.filename, line=frame.lineno,
    )


def _project_frame(exc: BaseException) -> Any:
    """The outermost frame of ``exc``'s traceback in the project's own code that alembic called
    (the revision file or env.py being loaded), past alembic's, SQLAlchemy's and the import
    system's frames."""
    import traceback

    import alembic
    import sqlalchemy

    inside = os.path.dirname(alembic.__file__ or "") + os.sep
    libraries = tuple(os.path.dirname(m.__file__) + os.sep for m in (alembic, sqlalchemy, importlib) if m.__file__)
    entered = False
    for frame in traceback.extract_tb(exc.__traceback__):
        entered = entered or frame.filename.startswith(inside)
        if entered and not frame.filename.startswith("<") and not frame.filename.startswith(libraries):
            return frame
    return None


def _files_naming(folders: list[Path], revisions: list[str], recursive: bool) -> list[str]:
    """The revision files that quote any of ``revisions`` (to point at the ones to fix)."""
    quoted = [q + r + q for r in revisions if r for q in ("'", '"')]
    found: list[str] = []
    for folder in folders:
        for path in sorted(folder.rglob("*.py") if recursive else folder.glob("*.py")):
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            if any(q in text for q in quoted):
                found.append(str(path))
    return found
