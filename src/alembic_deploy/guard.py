"""The schema guard: may this code run on the database as it is right now?

A deploy that starts new code first and migrates once it is healthy runs new code on the old
schema for a while (and, after a rollback, old code on the new one). The guard makes that window
explicit. The application calls it at startup and from its readiness endpoint::

    from alembic_deploy import guard

    result = guard.check(engine, "migrations")        # or a URL, or the path of alembic.ini
    result.verdict    # "ok" | "behind-compatible" | "behind-incompatible" | "ahead-unknown"
    result.accepted   # verdict in accept (default: ok, behind-compatible)

Verdicts, for a database at revision(s) D and code whose scripts end at head(s) H:

* ``ok``: D is H; nothing pending.
* ``behind-compatible``: D is behind H, and every pending revision is declared tolerable by this
  code (see the marker below). This is the normal state between "new code deployed" and "post-deploy
  migration ran".
* ``behind-incompatible``: at least one pending revision is not declared tolerable, or is one this
  code ``requires``. The code needs the migration first.
* ``ahead-unknown``: D contains a revision the scripts do not know: newer code migrated the database
  (this code is old, e.g. after a rollback). Whether the schema is still usable cannot be known from
  here; the application decides (refuse, or run degraded by adding it to ``accept``).

Compatibility is declared in the revision file, never guessed, with a module-level dict named
``alembic_deploy`` (the guard reads only its own keys; other alembic-deploy features may keep their
per-revision settings in the same dict)::

    alembic_deploy = {"expand_only": True}   # additive: the code that ships this revision runs
                                             # whether or not it is applied, and so does older code
    alembic_deploy = {"contract": True}      # removes what the code that ships it no longer uses:
                                             # that code runs whether or not it is applied (older
                                             # code must be gone before it is applied)

A merge revision is a revision like any other: mark it when it changes nothing the code relies on.
A marker holds for the code that ships the revision. When a later release starts to rely on what an
expand-only revision added, that release passes ``requires=("<revision>",)``, so a database still
lacking it is ``behind-incompatible`` for that code, marker or not.

Cheap enough for every health check: the scripts are loaded once per location and process (Alembic
imports every revision file once), and each check is one ``SELECT version_num`` on one connection.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from .errors import CheckRefused, ConfigError, DatabaseUnreachable
from .masking import mask_url, scrub
from .steps.verify import read_revisions

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import AsyncEngine

    from .alembic_env import RevisionNode

__all__ = [
    "AHEAD_UNKNOWN",
    "BEHIND_COMPATIBLE",
    "BEHIND_INCOMPATIBLE",
    "DEFAULT_ACCEPT",
    "OK",
    "VERDICTS",
    "PendingRevision",
    "SchemaCheck",
    "ScriptGraph",
    "check",
    "check_async",
    "clear_cache",
    "decide",
    "evaluate",
    "load_scripts",
    "read_revisions",
    "readiness",
    "respond",
]

OK: Final = "ok"
BEHIND_COMPATIBLE: Final = "behind-compatible"
BEHIND_INCOMPATIBLE: Final = "behind-incompatible"
AHEAD_UNKNOWN: Final = "ahead-unknown"
VERDICTS: Final = frozenset({OK, BEHIND_COMPATIBLE, BEHIND_INCOMPATIBLE, AHEAD_UNKNOWN})
#: At its head, or behind only by revisions this code declares it tolerates.
DEFAULT_ACCEPT: Final = frozenset({OK, BEHIND_COMPATIBLE})

#: Marker keys in a revision's ``alembic_deploy`` dict, and the kind each declares.
_MARKERS: Final = (("expand_only", "expand-only"), ("contract", "contract"))


@dataclass(frozen=True)
class PendingRevision:
    revision: str
    description: str
    #: "expand-only" or "contract" when the revision declares this code tolerates it pending.
    kind: str | None
    #: This code relies on it (``requires=``), so it blocks whatever its marker says.
    required: bool = False

    @property
    def tolerated(self) -> bool:
        return self.kind is not None and not self.required


@dataclass(frozen=True)
class SchemaCheck:
    """What the guard found; ``to_dict()`` is what a readiness endpoint returns."""

    verdict: str
    accepted: bool
    database_revisions: tuple[str, ...]
    code_heads: tuple[str, ...]
    pending: tuple[PendingRevision, ...]
    unknown: tuple[str, ...]
    message: str
    #: Every known revision in effect in the database (its revisions and their ancestors).
    applied: frozenset[str] = field(default_factory=frozenset, repr=False)

    def has(self, revision: str) -> bool:
        """Whether ``revision`` is applied: lets code switch behaviour across an expand/contract."""
        return revision in self.applied

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "accepted": self.accepted,
            "database_revisions": list(self.database_revisions),
            "code_heads": list(self.code_heads),
            "pending": [
                {"revision": p.revision, "description": p.description, "kind": p.kind, "required": p.required}
                for p in self.pending
            ],
            "unknown": list(self.unknown),
            "message": self.message,
        }


class ScriptGraph:
    """The migration scripts of one location as plain data, loaded once per process."""

    def __init__(self, location: str, heads: tuple[str, ...], nodes: tuple[RevisionNode, ...]) -> None:
        self.location = location
        self.heads = heads
        self.nodes = {n.revision: n for n in nodes}
        self.order = tuple(n.revision for n in nodes)
        self._ancestors: dict[frozenset[str], frozenset[str]] = {}

    def knows(self, revision: str) -> bool:
        return revision in self.nodes

    def ancestors(self, revisions: Iterable[str]) -> frozenset[str]:
        """``revisions`` and everything they require, transitively (unknown ids are ignored)."""
        key = frozenset(r for r in revisions if r in self.nodes)
        found = self._ancestors.get(key)
        if found is None:
            seen: set[str] = set()
            stack = list(key)
            while stack:
                rev = stack.pop()
                if rev not in seen:
                    seen.add(rev)
                    stack.extend(self.nodes[rev].requires)
            found = frozenset(seen)
            if len(self._ancestors) < 256:  # a process sees a handful of database states
                self._ancestors[key] = found
        return found

    def kind(self, revision: str) -> str | None:
        options = self.nodes[revision].options
        return next((kind for key, kind in _MARKERS if options.get(key) is True), None)


_log = logging.getLogger("alembic_deploy.guard")
_graphs: dict[tuple[str, str], ScriptGraph] = {}
_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def load_scripts(script_location: str, section: str = "alembic") -> ScriptGraph:
    """The cached :class:`ScriptGraph` for ``script_location`` (a folder, ``package:resource`` or
    the path of alembic.ini, whose ``section`` is read)."""
    import os

    from .compat import require_supported

    require_supported()

    location = str(script_location)
    if ":" not in location or os.path.isabs(location) or os.path.splitdrive(location)[0]:
        location = os.path.abspath(location)
    key = (location, section)
    graph = _graphs.get(key)
    if graph is None:
        with _lock:
            graph = _graphs.get(key)
            if graph is None:
                from .alembic_env import revision_graph

                heads, nodes = revision_graph(location, section)
                graph = _graphs[key] = ScriptGraph(location, heads, nodes)
    return graph


def clear_cache() -> None:
    """Forget loaded scripts and engines made from URLs (tests; code reloads)."""
    with _lock:
        _graphs.clear()
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def evaluate(
    database_revisions: Iterable[str],
    graph: ScriptGraph,
    accept: Collection[str] = DEFAULT_ACCEPT,
    requires: Iterable[str] = (),
) -> SchemaCheck:
    """The verdict for a database at ``database_revisions``, without touching a database."""
    accept = _validate_accept(accept)
    required = frozenset(requires)
    missing = sorted(r for r in required if not graph.knows(r))
    if missing:
        raise ConfigError(
            f"requires= names revision(s) {', '.join(missing)} that the migration scripts at "
            f"{graph.location} do not contain. Use revision ids from the versions folder."
        )
    db = tuple(sorted(database_revisions))
    unknown = tuple(r for r in db if not graph.knows(r))
    applied = graph.ancestors(db)
    # Nothing is "pending" for a database this code cannot place in its history.
    pending = () if unknown else tuple(
        PendingRevision(rev, graph.nodes[rev].doc, graph.kind(rev), rev in required)
        for rev in graph.order
        if rev not in applied
    )
    at = ", ".join(db) or "<base> (no revision)"
    heads = ", ".join(graph.heads)
    if unknown:
        verdict = AHEAD_UNKNOWN
        message = (
            f"The database is at {at}; this code's migration scripts do not contain "
            f"{', '.join(unknown)} (its head is {heads}). Newer code migrated this database, so "
            "this code is older than the schema (a rollback, or a branch migrated elsewhere). "
            "Whether it still works cannot be known from here: deploy the code that contains "
            "that revision, or accept 'ahead-unknown' to run degraded."
        )
    elif not pending:
        verdict = OK
        message = f"The database is at {at}, this code's head: nothing is pending."
    else:
        blocking = [p for p in pending if not p.tolerated]
        listed = ", ".join(p.revision for p in pending)
        if not blocking:
            verdict = BEHIND_COMPATIBLE
            message = (
                f"The database is at {at}, {len(pending)} revision(s) behind this code ({listed}). "
                "Each is marked expand-only or contract, so this code runs on the schema as it is; "
                "apply them with `alembic-deploy upgrade` once every replica runs this code."
            )
        else:
            verdict = BEHIND_INCOMPATIBLE
            why = ", ".join(
                f"{p.revision} ({'required by this code' if p.required else 'not marked expand-only or contract'})"
                for p in blocking
            )
            message = (
                f"The database is at {at}, {len(pending)} revision(s) behind this code ({listed}), "
                f"and this code cannot run without {why}. Migrate before starting this code "
                "(`alembic-deploy run --migrate`, or a migration task ahead of the rollout); if a "
                "revision is in fact additive and unused by this code, mark it with "
                'alembic_deploy = {"expand_only": True}.'
            )
    return SchemaCheck(
        verdict=verdict,
        accepted=verdict in accept,
        database_revisions=db,
        code_heads=graph.heads,
        pending=pending,
        unknown=unknown,
        message=message,
        applied=applied,
    )


def check(
    engine_or_url: Engine | str,
    script_location: str,
    *,
    accept: Collection[str] = DEFAULT_ACCEPT,
    requires: Iterable[str] = (),
    version_table: str = "alembic_version",
    version_table_schema: str | None = None,
    section: str = "alembic",
) -> SchemaCheck:
    """Compare the database's revision with this code's migration scripts.

    ``engine_or_url``: the application's own Engine (its pool makes the check one query on a warm
    connection) or a URL (an engine is made once per URL and kept; an async driver is swapped for
    its sync sibling). ``accept``: the verdicts that count as accepted. ``requires``: revisions this
    code relies on, which block it while pending whatever their marker says. Raises
    :class:`~alembic_deploy.errors.DatabaseUnreachable` when the database cannot be queried and
    :class:`~alembic_deploy.errors.ConfigError` when the scripts cannot be loaded.
    """
    graph = load_scripts(script_location, section)
    engine = _engine(engine_or_url)
    try:
        with engine.connect() as conn:
            current = read_revisions(conn, version_table, version_table_schema)
    except Exception as exc:  # noqa: BLE001 - sorted into unreachable vs bug below
        raise _unreachable(engine.url, exc) from None
    return evaluate(current, graph, accept, requires)


async def check_async(
    engine: AsyncEngine,
    script_location: str,
    *,
    accept: Collection[str] = DEFAULT_ACCEPT,
    requires: Iterable[str] = (),
    version_table: str = "alembic_version",
    version_table_schema: str | None = None,
    section: str = "alembic",
) -> SchemaCheck:
    """:func:`check` for an application that uses an ``AsyncEngine``."""
    graph = load_scripts(script_location, section)
    try:
        async with engine.connect() as conn:
            current = await conn.run_sync(read_revisions, version_table, version_table_schema)
    except Exception as exc:  # noqa: BLE001
        raise _unreachable(engine.url, exc) from None
    return evaluate(current, graph, accept, requires)


def respond(outcome: SchemaCheck | Exception) -> tuple[int, dict[str, Any]]:
    """A readiness answer for any web framework: (200 or 503, JSON-able body).

    A database that cannot be queried is "not ready" (503) with the reason, not a 500.
    """
    if isinstance(outcome, SchemaCheck):
        return (200 if outcome.accepted else 503), outcome.to_dict()
    if isinstance(outcome, DatabaseUnreachable | ConfigError):
        return 503, {"verdict": None, "accepted": False, "error": outcome.kind, "message": scrub(outcome.message)}
    raise outcome


def decide(outcome: SchemaCheck | Exception, *, refuse: bool = True) -> SchemaCheck | None:
    """The startup decision every integration makes: go on, or refuse to start.

    An accepted result goes on. Otherwise ``refuse=True`` raises (a rejected schema as
    :class:`~alembic_deploy.errors.CheckRefused`), and ``refuse=False`` logs a warning and goes on
    degraded: the readiness route keeps answering 503 until the schema is accepted. A
    :class:`~alembic_deploy.errors.ConfigError` (scripts that do not load) always raises.
    """
    if isinstance(outcome, SchemaCheck):
        if outcome.accepted:
            return outcome
        if refuse:
            raise CheckRefused(
                f"Schema guard: {outcome.message}",
                verdict=outcome.verdict,
                database_revisions=list(outcome.database_revisions),
                code_heads=list(outcome.code_heads),
            )
        _log.warning("schema guard (%s): %s Starting anyway (refuse=False).", outcome.verdict, outcome.message)
        return outcome
    if refuse or not isinstance(outcome, DatabaseUnreachable):
        raise outcome
    _log.warning("schema guard: %s Starting anyway (refuse=False).", outcome.message)
    return None


def readiness(engine_or_url: Engine | str, script_location: str, **options: Any) -> tuple[int, dict[str, Any]]:
    """For any framework without a ready-made helper: :func:`check`, answered as :func:`respond`."""
    try:
        return respond(check(engine_or_url, script_location, **options))
    except (DatabaseUnreachable, ConfigError) as exc:
        return respond(exc)


# -- internals ---------------------------------------------------------------------------------
def _engine(engine_or_url: Engine | str) -> Engine:
    if not isinstance(engine_or_url, str):
        return engine_or_url
    engine = _engines.get(engine_or_url)
    if engine is None:
        from .database import make_engine

        with _lock:
            engine = _engines.get(engine_or_url)
            if engine is None:
                engine = _engines[engine_or_url] = make_engine(engine_or_url)[0]
    return engine


def _validate_accept(accept: Collection[str]) -> frozenset[str]:
    if isinstance(accept, str):
        accept = (accept,)
    wrong = sorted(set(accept) - VERDICTS)
    if wrong:
        raise ConfigError(
            f"accept= contains {', '.join(wrong)}; the verdicts are {', '.join(sorted(VERDICTS))}."
        )
    return frozenset(accept)


def _unreachable(url: Any, exc: Exception) -> Exception:
    from sqlalchemy.exc import DBAPIError

    if not isinstance(exc, DBAPIError | OSError | TimeoutError):
        return exc
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [type(orig).__name__])[0]
    where = mask_url(url.render_as_string(hide_password=True))
    return DatabaseUnreachable(
        f"The schema guard could not read the version table at {where}: {scrub(first)}. "
        "The database is unreachable or refused the query; the check answers again once it is back."
    )
