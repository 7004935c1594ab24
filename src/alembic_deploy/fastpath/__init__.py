"""Prove "nothing to do" without Alembic, SQLAlchemy or env.py.

The most common deploy of all changes nothing, yet plain ``alembic upgrade head`` imports Alembic
and SQLAlchemy, runs env.py and imports every revision file just to learn that. The fast path
answers the same question from what can be proven statically, and declines (returns False, so the
full pipeline runs) whenever any part of the proof is missing:

1. the project: ``alembic.ini`` names plain folders, read the way Alembic reads them (no package
   resources, no ``sourceless``, no ``[tool.alembic]``), and
   gives the engine no option that could change where it connects (``sqlalchemy.plugins``...);
   the target is ``head``/``heads`` and there are no ``-x`` arguments;
2. the revision graph: every file Alembic would load from the versions folders, found as
   Alembic finds them (:func:`.revisions.revision_files`: symlinks resolved, several and
   recursive version locations, the names it skips; any layout it cannot mirror declines), is
   parsed (``ast``, never imported). The names Alembic reads from the module (``revision``,
   ``down_revision``, ``branch_labels``, ``depends_on``) must be bound exactly once, by a
   top-level assignment of a literal, and nothing that runs at import time may rebind them: no
   other binding of those names, no star import, no ``globals()``/``exec``/``setattr``-style
   access, no call into the file's own functions, no module ``__getattr__``. ``depends_on``
   may name revision ids or branch labels (resolved as Alembic resolves them; labels Alembic
   refuses decline). The graph must be complete and acyclic through both kinds of edge;
3. env.py: it must provably migrate the database alembic-deploy connects to, through the default
   version table: every connection it opens comes from ``create_engine``/``engine_from_config``
   (or the async twins) fed by ``sqlalchemy.url`` of its own ``context.config`` section or by
   ``os.environ["DATABASE_URL"]`` (alembic-deploy sets both to the URL it uses); no other
   environment variable, no hard-coded URL, no ``-x``/tag arguments, no
   ``version_table``/``version_table_schema``/multi-database tokens, no statement or event hook
   or ``connect_args``/``schema_translate_map`` that could move it to another schema;
4. the database, read once env.py passed, so that an empty one, or one at a revision another
   file quotes (most likely as its ``down_revision``: the database is behind), declines before
   any revision file is parsed. It is read without SQLAlchemy: through the DBAPI driver env.py's
   URL names, which must be installed (env.py would fail without it), or for PostgreSQL through
   libpq itself (:mod:`.libpq`, unless the ``fast_path_libpq`` setting is off; psycopg where it
   does not load); how each database is opened, quoted and bounded is its backend's
   (:meth:`~alembic_deploy.backends.base.Backend.open_direct` and what follows it). Its
   ``alembic_version`` rows must equal exactly what ``upgrade`` leaves there for the target: the
   heads no other revision names as its down revision or in its ``depends_on`` (Alembic's
   ``get_heads(consider_depends_on=True)``; a head another head depends on is merged away), and
   for ``head`` there must be one head by ``down_revision`` alone (else Alembic fails with
   "multiple heads"). The journal table must exist (the no-op row goes there) and hold nothing
   the full path's recovery (steps/recovery.py) would act on: no ``running`` row (a crashed run, which the full path
   reports), and no partly applied revision in the newest row with statement progress (which
   the full path refuses with exit 8 even when the version table is at the heads: a revision
   of a newer release failed or died halfway, then this older release is deployed). Its name
   must be a plain identifier (any other declines), and it is quoted all the same.

What the proof trusts, as plain alembic does: installed libraries and the modules env.py and the
revision files import do not rewrite those files' globals or the connection's target.

Reading the version table needs no lock: a single-statement read sees either the state before a
concurrent migration committed or after it; "equal to the heads" is only possible after.

Parsing is the expensive part (~0.5 ms a file), so each versions folder keeps a cache of the
per-file results keyed by a digest of each file's *content* (never by mtime or size): a stale
cache can only miss, never answer wrongly. It lives in ``versions/__pycache__/`` beside Python's
own bytecode cache, or under ``$XDG_CACHE_HOME/alembic-deploy`` when bytecode writing is off
(``PYTHONDONTWRITEBYTECODE``) or the folder is read-only; when neither is writable there is none.

One module per part of the proof: :mod:`.revisions` (2, with the cache), :mod:`.env_py` (3) and
:mod:`.direct` (4); :func:`try_noop` here puts them together, cheapest first, so that a proof that
fails costs the full path little: 1, 3 (a parse, no connect yet), the version table (4), 2, then
the journal (4).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import TYPE_CHECKING

from ..compat import require_supported
from ..masking import mask_url
from ..project import ProjectIni, read_ini
from ..signals import InterruptState, SignalInterrupt
from .direct import DEFAULT_VERSION_TABLE, DirectConnection, plain_identifier
from .env_py import env_py_is_plain
from .revisions import quoted_elsewhere, revision_files, revision_of, static_graph

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..report import DeployReport
    from ..settings import Settings

__all__ = ["env_py_is_plain", "revision_of", "try_noop"]

# ini keys engine_from_config turns into create_engine() arguments that cannot change which
# database, schema or table a connection sees.
_HARMLESS_ENGINE_OPTIONS = frozenset(
    f"sqlalchemy.{key}"
    for key in ("echo", "echo_pool", "pool_size", "max_overflow", "pool_timeout", "pool_recycle",
                "pool_pre_ping", "pool_reset_on_return", "pool_use_lifo", "hide_parameters", "future",
                "logging_name", "pool_logging_name", "query_cache_size")
)


def try_noop(
    settings: Settings, target: str, report: DeployReport, keep: Callable[[DirectConnection], None] | None = None,
) -> bool:
    """True when the database provably needs nothing; the no-op is then journaled and reported.
    Declining, it gives the session it opened to ``keep`` (the full path's engine may take it
    over: :func:`alembic_deploy.database.adopt`; the caller closes it if not) when it can serve
    another engine, else closes it. A signal's handler raising in any of its waits (they are all
    interruptible: :mod:`.direct`) ends it with :class:`~alembic_deploy.errors.Interrupted`."""
    try:
        return _try_noop(settings, target, report, keep)
    except SignalInterrupt as exc:
        state = InterruptState()
        state.signum = exc.args[0] if exc.args else None
        raise state.error() from None


def _try_noop(
    settings: Settings, target: str, report: DeployReport, keep: Callable[[DirectConnection], None] | None,
) -> bool:
    if target not in ("head", "heads") or settings.x or not plain_identifier(settings.journal_table):
        return False
    require_supported()  # the full path would refuse an unsupported SQLAlchemy or Alembic: so does this
    project = read_ini(settings.config_path, settings.name)
    url = settings.database_url or project.ini_url
    if settings.database_secret or settings.rds_iam:  # the login from AWS, as the full path connects
        from ..database_url import resolve_url

        url = resolve_url(settings, project)
    if not url or project.script_dir is None or project.unsupported or project.sourceless:
        return False
    if set(project.engine_options) - _HARMLESS_ENGINE_OPTIONS:
        return False  # e.g. sqlalchemy.plugins: engine_from_config in env.py would apply it
    # Static and cheap (a parse, ~1 ms), so before any connect: an env.py the proof does not take
    # costs the full path nothing more than this (a connect is a driver import, a round trip or
    # more, and on PostgreSQL a server process the full path cannot reuse).
    if not env_py_is_plain(project.script_dir / "env.py", project.section, url):
        return False
    db = DirectConnection.open(url, libpq=settings.fast_path_libpq)  # the URL the full path connects to as well
    if db is None:
        return False
    try:
        answered = _prove(db, settings, target, report, project, url)
    except BaseException:  # Interrupted by a signal, say: the full path does not run
        db.close()
        raise
    if answered or keep is None or db.connect_args is None:
        db.close()
    else:
        keep(db)
    return answered


def _prove(
    db: DirectConnection, settings: Settings, target: str, report: DeployReport, project: ProjectIni, url: str,
) -> bool:
    """Steps 4, 2 and the journal of the proof, on ``db``; journals the no-op when proven."""
    # The database before the revision files: an empty one (the first deploy, every CI run)
    # declines before they are read.
    current = db.query_column(f"SELECT version_num FROM {DEFAULT_VERSION_TABLE}")
    if not current:
        return False
    files = revision_files(project)
    if files is None or quoted_elsewhere(files, current):
        return False  # most likely a newer revision names it: behind, so no need to parse
    graph = static_graph(files)
    if graph is None or (target == "head" and len(graph.heads()) != 1):
        return False
    if sorted(current) != sorted(graph.effective_heads()):
        return False
    # A crashed run, or one that left a revision partly applied: the full path reports it or
    # refuses (exit 8), whatever the version table says.
    journal = db.journal_state(settings.journal_table)
    if journal is None or journal.needs_recovery(graph.down):
        return False
    at = tuple(sorted(current))
    # The report changes only once the no-op is journaled; if that fails the full path runs.
    proven = replace(report, outcome="noop", fast_path=True, from_revisions=at, to_revisions=at,
                     database=mask_url(url), backend=db.backend, finished_at=time.time())
    journal_id = db.insert_journal_row(settings, proven)
    if journal_id is None:
        return False
    for name in ("outcome", "fast_path", "from_revisions", "to_revisions", "database", "backend", "finished_at"):
        setattr(report, name, getattr(proven, name))
    report.journal_id = journal_id
    return True
