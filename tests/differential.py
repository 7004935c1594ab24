"""The differential test's parts: generated Alembic projects and database states, and a runner that
puts plain alembic and alembic-deploy (fast path on and off) on copies of one state.

A :class:`Scenario` is data: a revision graph (chains, branches with ``branch_labels``, merges,
``depends_on``, one or two version locations; each revision creates a table named after it, or
does nothing), an env.py shape, the steps that bring the database to its state (plain ``alembic
upgrade``/``stamp``, ``alembic-deploy upgrade``, a revision that fails or kills its process, then
fixed or the previous release deployed) and the target. :func:`write_project` lays it down as a
real project; :func:`play` builds the state once, copies it three times (the SQLite folder with its
lock file, or ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL) and runs each tool as a real
process on its own copy. :func:`problems` says where alembic-deploy ended worse than plain alembic.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from helpers import ASYNC_DRIVERS, PG_DRIVER, run_cli, url_text
from scenarios import PROJECTS, copy_project

# -- hypothesis profiles ----------------------------------------------------------------------------
# Each example starts 3 to 6 processes: the default suite runs a test's pinned examples only
# (``examples(default=0)``). The slow profile (the tests marked slow, or
# ALEMBIC_DEPLOY_DIFFERENTIAL=slow) explores far more, with a fresh seed each run; the default one
# is derandomized so a run repeats itself.
_HEALTH = [HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
           HealthCheck.function_scoped_fixture]
# Shrinking a failure costs minutes of processes: the default run reports the failing example as
# found (its report lays out the project, state and outputs), the slow one shrinks it first.
settings.register_profile("differential", deadline=None, derandomize=True, database=None, max_examples=12,
                          suppress_health_check=_HEALTH, print_blob=True,
                          phases=(Phase.explicit, Phase.reuse, Phase.generate))
settings.register_profile("differential-slow", deadline=None, max_examples=150, suppress_health_check=_HEALTH,
                          print_blob=True, phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink))


def examples(default: int, slow: int) -> settings:
    """Settings for one test: ``default`` examples, or ``slow`` under the slow profile;
    ``ALEMBIC_DEPLOY_DIFFERENTIAL_EXAMPLES`` overrides either. ``default`` 0: only the test's
    explicit ``@example`` cases (the generated ones run in the slow suite)."""
    profile = "differential-slow" if os.environ.get("ALEMBIC_DEPLOY_DIFFERENTIAL") == "slow" else "differential"
    count = int(os.environ.get("ALEMBIC_DEPLOY_DIFFERENTIAL_EXAMPLES", slow if profile.endswith("slow") else default))
    if count == 0:
        return settings(settings.get_profile(profile), max_examples=1, phases=(Phase.explicit,))
    return settings(settings.get_profile(profile), max_examples=count)


def slow_examples(count: int) -> settings:
    return settings(settings.get_profile("differential-slow"),
                    max_examples=int(os.environ.get("ALEMBIC_DEPLOY_DIFFERENTIAL_EXAMPLES", count)))


# -- what the generator covers ----------------------------------------------------------------------
# One switch for each kind of project and state the generator makes. A kind alembic-deploy gets
# wrong is switched off here, with the reason and its reproduction, only until its fix lands, never
# silently. All are on; the one class left out is written where it is made (in scenarios(): a
# release with no revision at all).
GENERATE = {
    "depends_on": True,
    "failures": True,
    "kill": True,
    "two_locations": True,
    "layouts": True,           # revision files in subfolders (recursive_version_locations), symlinks
    "relative_targets": True,  # +1, <label>@+1
}

JOURNAL_PREFIX = "alembic_deploy_history"
COMPARED = ("alembic", "fast", "full")  # plain alembic, alembic-deploy, alembic-deploy --no-fast-path


# -- scenarios --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Revision:
    id: str
    down: tuple[str, ...]          # () for a base
    labels: tuple[str, ...] = ()
    depends: tuple[str, ...] = ()
    location: int = 0              # index into the project's version locations
    table: bool = True             # creates table t_<id>, or does nothing
    layout: str = "file"           # file | subdir (recursive_version_locations) | link (<id>.link -> ../shared/<id>.py)
    depends_names: tuple[str, ...] = ()  # depends as the file names them (an id or its branch label); () = the ids

    def describe(self) -> str:
        parts = [f"{self.id} <- {', '.join(self.down) or 'base'}"]
        if self.labels:
            parts.append(f"branch_labels={list(self.labels)}")
        if self.depends:
            parts.append(f"depends_on={list(self.depends_names or self.depends)}")
        parts.append(f"in {self.path()}" + (f" -> {self.real_path()}" if self.layout == "link" else ""))
        parts.append(f"creates t_{self.id}" if self.table else "no-op")
        return " ".join(parts)

    def path(self) -> str:
        """Where the version location lists it, relative to ``migrations/``."""
        folder = _LOCATIONS[self.location]
        return {"file": f"{folder}/{self.id}.py", "subdir": f"{folder}/sub/{self.id}.py",
                "link": f"{folder}/{self.id}.link"}[self.layout]

    def real_path(self) -> str:
        return f"shared/{self.id}.py" if self.layout == "link" else self.path()


@dataclass(frozen=True)
class Step:
    """One run that builds the state: ``tool`` is ``alembic`` or ``alembic-deploy``."""

    tool: str
    verb: str                      # upgrade | stamp
    targets: tuple[str, ...]

    def describe(self) -> str:
        return f"{self.tool} {self.verb} {' '.join(self.targets)}"


@dataclass(frozen=True)
class Failure:
    """``<tool> upgrade <revision>`` while that revision fails (``mode``; ``ok``: a release that
    deployed fine), then the revision is fixed or the release before it is deployed (``then``)."""

    revision: str
    mode: str                      # raise-first | raise-after | kill-after | ok
    then: str                      # fixed | previous-release
    tool: str = "alembic-deploy"   # or alembic

    def describe(self) -> str:
        how = {"raise-first": "raises before any statement", "raise-after": "creates its table, then raises",
               "kill-after": "creates its table, then SIGKILLs its own process", "ok": "works"}[self.mode]
        return f"{self.tool} upgrade {self.revision} while {self.revision} {how}; then {self.then}"


@dataclass(frozen=True)
class Scenario:
    env_py: str
    locations: int
    revisions: tuple[Revision, ...]
    setup: tuple[Step, ...]
    failure: Failure | None
    target: str
    after: tuple[Step, ...] = ()   # runs on the state the failure left, with the released scripts
    driver: int = 0                # which of the backend's drivers (DRIVERS) the URL names

    def released(self) -> tuple[Revision, ...]:
        """The revisions of the release the compared runs deploy."""
        if self.failure is None or self.failure.then == "fixed":
            return self.revisions
        gone = descendants(self.revisions, self.failure.revision)
        return tuple(r for r in self.revisions if r.id not in gone)

    def describe(self) -> str:
        lines = [(f"env.py: {self.env_py}; driver choice {self.driver}; "
                 f"version locations: {', '.join(_LOCATIONS[: self.locations])}"), "revisions:"]
        lines += [f"  {r.describe()}" for r in self.revisions]
        lines.append("state:" + (" fresh database" if not self.setup and not self.failure else ""))
        lines += [f"  {s.describe()}" for s in self.setup]
        if self.failure:
            lines.append(f"  {self.failure.describe()}")
            if self.failure.then == "previous-release":
                lines.append(f"  released revisions: {', '.join(r.id for r in self.released()) or 'none'}")
        lines += [f"  {s.describe()}" for s in self.after]
        lines.append(f"compared: upgrade {self.target}")
        return "\n".join(lines)


_LOCATIONS = ("versions", "more_versions")


def descendants(revisions: tuple[Revision, ...], root: str) -> set[str]:
    """``root`` and every revision that needs it (through down_revision or depends_on)."""
    found = {root}
    for rev in revisions:  # in generation order: parents come first
        if found & (set(rev.down) | set(rev.depends)):
            found.add(rev.id)
    return found


def ancestors(revisions: tuple[Revision, ...], rev_id: str, *, depends: bool = False) -> set[str]:
    """Every revision ``rev_id`` comes after: its down_revisions' closure (``depends``: also
    through depends_on, i.e. what applying ``rev_id`` has applied)."""
    by_id = {r.id: r for r in revisions}
    found: set[str] = set()
    todo = [rev_id]
    while todo:
        current = todo.pop()
        for parent in (*by_id[current].down, *(by_id[current].depends if depends else ())):
            if parent not in found:
                found.add(parent)
                todo.append(parent)
    return found


@st.composite
def revision_graphs(draw: st.DrawFn, max_revisions: int = 8) -> tuple[int, tuple[Revision, ...]]:
    """(number of version locations, revisions in an order where parents come first)."""
    locations = draw(st.integers(1, 2)) if GENERATE["two_locations"] else 1
    count = draw(st.integers(1, max_revisions))
    revisions: list[Revision] = []
    children: dict[str, int] = {}
    roots = 0
    for i in range(count):
        rev_id = f"r{i}"
        ids = [r.id for r in revisions]
        if not ids:
            down: tuple[str, ...] = ()
        else:
            shape = draw(st.sampled_from(["chain", "chain", "branch", "merge", "base"]))
            if shape == "chain":
                down = (ids[-1],)
            elif shape == "branch" or (shape == "merge" and len(ids) < 2) or (shape == "base" and roots >= 2):
                down = (draw(st.sampled_from(ids)),)
            elif shape == "merge":
                down = tuple(sorted(draw(st.lists(st.sampled_from(ids), min_size=2, max_size=2, unique=True))))
                if down[0] in ancestors(tuple(revisions), down[1]) or down[1] in ancestors(tuple(revisions), down[0]):
                    down = (down[1],)  # alembic refuses a merge of a revision with its own ancestor
            else:
                down = ()
        roots += not down
        # A label where a new branch starts (a base, or a second child): label@head then names it.
        starts_branch = not down or any(children.get(p, 0) for p in down)
        labels = (f"lb{i}",) if starts_branch and draw(st.booleans()) else ()
        depends: tuple[str, ...] = ()
        if GENERATE["depends_on"] and len(ids) > 1 and draw(st.integers(0, 3)) == 0:
            reached = set(down).union(*(ancestors(tuple(revisions), p) for p in down))
            candidates = [r for r in ids if r not in reached]
            if candidates:
                depends = (draw(st.sampled_from(candidates)),)
        # A dependency with a branch label is named by it now and then (alembic resolves both).
        labelled = {r.id: r.labels[0] for r in revisions if r.labels}
        depends_names = tuple(labelled[d] if d in labelled and draw(st.booleans()) else d for d in depends)
        for parent in down:
            children[parent] = children.get(parent, 0) + 1
        layout = draw(st.sampled_from(["file", "file", "file", "subdir", "link"])) if GENERATE["layouts"] else "file"
        revisions.append(Revision(rev_id, down, labels, depends, draw(st.integers(0, locations - 1)),
                                  draw(st.integers(0, 4)) > 0, layout,
                                  depends_names if depends_names != depends else ()))
    return locations, tuple(revisions)


def _targets(revisions: tuple[Revision, ...]) -> list[str]:
    names = ["head", "heads"] + [r.id for r in revisions]
    names += [f"{label}@head" for r in revisions for label in r.labels]
    if GENERATE["relative_targets"]:
        names += ["+1", "+2"] + [f"{label}@+1" for r in revisions for label in r.labels]
    return names


@st.composite
def scenarios(draw: st.DrawFn, env_py: tuple[str, ...] | None = None, max_revisions: int = 8) -> Scenario:
    locations, revisions = draw(revision_graphs(max_revisions))
    ids = [r.id for r in revisions]
    failure = None
    if GENERATE["failures"] and draw(st.integers(0, 2)) == 0:
        modes = ["raise-first", "raise-after", "ok"] + (["kill-after"] if GENERATE["kill"] else [])
        failure = Failure(draw(st.sampled_from(ids)), draw(st.sampled_from(modes)),
                          draw(st.sampled_from(["fixed", "previous-release"])),
                          draw(st.sampled_from(["alembic-deploy", "alembic-deploy", "alembic"])))
    # The setup leaves the failing revision unapplied, so that the failure really happens.
    reachable = [r for r in ids if failure is None or r not in descendants(revisions, failure.revision)]
    setup = []
    for _ in range(draw(st.integers(0, 2)) if reachable else 0):
        tool = draw(st.sampled_from(["alembic", "alembic-deploy", "alembic-stamp"]))
        if tool == "alembic-stamp":
            stamped = draw(st.lists(st.sampled_from(reachable), min_size=1, max_size=2, unique=True))
            setup.append(Step("alembic", "stamp", tuple(sorted(stamped))))
        else:
            upgrade_to = draw(st.sampled_from(reachable + (["heads"] if failure is None else [])))
            setup.append(Step(tool, "upgrade", (upgrade_to,)))
    partial = Scenario("", locations, revisions, tuple(setup), failure, "")
    targets = _targets(partial.released())
    # After a failure, deploys that already met its leftovers (a later deploy must answer as the
    # first one after the failure did).
    after = tuple(
        Step(draw(st.sampled_from(["alembic-deploy", "alembic"])), "upgrade", (draw(st.sampled_from(targets)),))
                  for _ in range(draw(st.integers(0, 1)) if failure else 0))
    return Scenario(draw(st.sampled_from(env_py or tuple(ENV_PY))), locations, revisions, tuple(setup),
                    failure, draw(st.sampled_from(targets)), after, draw(st.integers(0, 1)))


# -- projects ---------------------------------------------------------------------------------------
_ENV_GENERIC = (PROJECTS / "generic" / "migrations" / "env.py").read_text()
_ENV_ASYNC = (PROJECTS / "async" / "migrations" / "env.py").read_text()


def _database_url_env_py() -> str:
    """The generic template in the shape most real projects give it: the URL from DATABASE_URL
    through a helper function into a copied ini section, batch mode on SQLite."""
    text = "import os\n" + _ENV_GENERIC
    for old, new in (
        ("\n\ndef run_migrations_offline",
         '\n\ndef get_url() -> str:\n    return os.environ["DATABASE_URL"]\n\n\ndef run_migrations_offline'),
        ("    connectable = engine_from_config(\n        config.get_section(config.config_ini_section, {}),",
         ('    configuration = config.get_section(config.config_ini_section, {})\n'
         '    configuration["sqlalchemy.url"] = get_url()\n'
         "    connectable = engine_from_config(\n        configuration,")),
        ("connection=connection, target_metadata=target_metadata\n",
         ('connection=connection,\n            target_metadata=target_metadata,\n'
         '            render_as_batch=connection.dialect.name == "sqlite",\n')),
    ):
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


ENV_PY = {
    "generic": _ENV_GENERIC,
    "async": _ENV_ASYNC,
    "database_url": _database_url_env_py(),
}
# The env.py corpus's files labelled "take" (the fast path must answer them) that run in a
# project of their own: not the pyproject templates (they need [tool.alembic]), nor multidb (its
# own ini sections), nor those importing the application they were taken from.
CORPUS = Path(__file__).parent / "envpy_corpus"


def _runs_alone(path: Path) -> bool:
    source = path.read_text()
    return (source.startswith("# fast-path: take") and "pyproject" not in path.stem and "multidb" not in path.stem
            and not any(line.startswith(("from app", "import app")) for line in source.splitlines()))


ENV_PY.update({f"corpus/{path.stem}": path.read_text() for path in sorted(CORPUS.glob("*.py")) if _runs_alone(path)})
# And some the fast path must decline, where the fast path declining is what keeps it right: those
# that migrate the database they are given. (The others point env.py at another database than the
# one the copies hold, or need an application: not a deploy this test can put on three copies.)
_CORPUS_DECLINED = ("decline_config_attributes_connection", "decline_putenv_pgoptions", "decline_url_rewritten",
                    "decline_x_argument", "decline_kwargs_mutated", "decline_kwargs_version_table",
                    "decline_version_table")
ENV_PY.update({f"corpus/{name}": (CORPUS / f"{name}.py").read_text() for name in _CORPUS_DECLINED
               if (CORPUS / f"{name}.py").is_file()})


def is_async(env_py: str) -> bool:
    return "async_engine_from_config" in ENV_PY[env_py] or "create_async_engine" in ENV_PY[env_py]

_REVISION = '''"""{rev_id}"""
import os
import signal

import sqlalchemy as sa
from alembic import op

revision = {rev_id!r}
down_revision = {down!r}
branch_labels = {labels!r}
depends_on = {depends!r}


def upgrade() -> None:
{upgrade}


def downgrade() -> None:
{downgrade}
'''


def revision_source(rev: Revision, failing: str | None = None) -> str:
    create = f'    op.create_table("t_{rev.id}", sa.Column("id", sa.Integer, primary_key=True))'
    body = create if rev.table else "    pass"
    if failing == "raise-first":
        body = f'    raise RuntimeError("revision {rev.id} fails on purpose")'
    elif failing == "raise-after":
        body = f'{create}\n    raise RuntimeError("revision {rev.id} fails on purpose after its first statement")'
    elif failing == "kill-after":
        body = f"{create}\n    os.kill(os.getpid(), signal.SIGKILL)"
    down = rev.down[0] if len(rev.down) == 1 else (rev.down or None)
    return _REVISION.format(
        rev_id=rev.id, down=down, labels=rev.labels or None, depends=(rev.depends_names or rev.depends) or None,
        upgrade=body,
        downgrade=f'    op.drop_table("t_{rev.id}")' if rev.table else "    pass",
    )


def write_project(scenario: Scenario, folder: Path) -> Path:
    """The scenario's project (every revision, none failing) in ``folder``."""
    copy_project("generic", folder)
    (folder / "migrations" / "env.py").write_text(ENV_PY[scenario.env_py])
    locations = [folder / "migrations" / name for name in _LOCATIONS[: scenario.locations]]
    for location in locations:
        location.mkdir(exist_ok=True)
    options = ""
    if scenario.locations > 1:
        options += "version_locations = " + os.pathsep.join(
            f"%(here)s/migrations/{name}" for name in _LOCATIONS[: scenario.locations]) + "\n"
    if any(r.layout == "subdir" for r in scenario.revisions):
        options += "recursive_version_locations = true\n"
    ini = folder / "alembic.ini"
    ini.write_text(ini.read_text().replace("[alembic]\n", f"[alembic]\n{options}", 1))
    for rev in scenario.revisions:
        write_revision(folder, scenario, rev)
    return folder


def write_revision(folder: Path, scenario: Scenario, rev: Revision, failing: str | None = None) -> None:
    real = folder / "migrations" / rev.real_path()
    real.parent.mkdir(parents=True, exist_ok=True)
    real.write_text(revision_source(rev, failing))
    shutil.rmtree(real.parent / "__pycache__", ignore_errors=True)
    if rev.layout == "link" and not (folder / "migrations" / rev.path()).is_symlink():
        (folder / "migrations" / rev.path()).symlink_to(Path("..") / rev.real_path())


def remove_revision(folder: Path, rev: Revision) -> None:
    for path in {folder / "migrations" / rev.path(), folder / "migrations" / rev.real_path()}:
        path.unlink()
        shutil.rmtree(path.parent / "__pycache__", ignore_errors=True)


def graph_error(folder: Path) -> str | None:
    """What alembic says is wrong with the project's revision graph, if anything."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    try:
        ScriptDirectory.from_config(Config(str(folder / "alembic.ini"))).revision_map.heads  # noqa: B018
    except Exception as exc:  # noqa: BLE001
        return f"{type(exc).__name__}: {exc}"
    return None


# -- databases --------------------------------------------------------------------------------------
@dataclass
class Copies:
    """Where one state lives: ``state`` is built, then copied to ``alembic``, ``fast`` and ``full``.
    ``sync_urls`` are what the test reads them through; :meth:`url` what the tools are given."""

    backend: str
    env_py: str
    driver: int = 0
    sync_urls: dict[str, str] = field(default_factory=dict)

    def url(self, name: str) -> str:
        drivers = DRIVERS[self.backend]["async" if is_async(self.env_py) else "sync"]
        return url_text(self.sync_urls[name], drivername=drivers[self.driver % len(drivers)])


# The drivers installed by the test extra, by backend and by env.py's kind (psycopg2 through the
# bare postgresql:// URL, the one the fast path reads with libpq's own client).
DRIVERS = {
    "sqlite": {"sync": ("sqlite",), "async": (ASYNC_DRIVERS["sqlite"],)},
    "postgresql": {"sync": (PG_DRIVER, "postgresql"), "async": (ASYNC_DRIVERS["postgresql"],) + (
        ("postgresql+psycopg_async",) if PG_DRIVER == "postgresql+psycopg" else ())},  # none on SQLAlchemy 1.4
    "mysql": {"sync": ("mysql+pymysql",), "async": (ASYNC_DRIVERS["mysql"],)},
}


class SQLiteStates:
    """Each copy a folder holding ``app.db`` and what alembic-deploy keeps beside it (lock file)."""

    backend = "sqlite"
    copies_state = True

    def __init__(self, root: Path) -> None:
        self.root = root

    @contextmanager
    def copies(self, env_py: str, driver: int) -> Iterator[Copies]:
        copies = Copies("sqlite", env_py, driver)
        for name in ("state", *COMPARED):
            copies.sync_urls[name] = f"sqlite:///{self.root / f'db-{name}' / 'app.db'}"
        (self.root / "db-state").mkdir()
        yield copies

    def copy_state(self, copies: Copies) -> None:
        for name in COMPARED:
            shutil.copytree(self.root / "db-state", self.root / f"db-{name}")


class PostgresStates:
    """Each copy a database of its own, the copies made with ``CREATE DATABASE ... TEMPLATE``.
    Creating and dropping a database costs most of a second here, so the copies are made side by
    side and the databases of a finished example dropped while the next one runs (:meth:`close`
    waits for them)."""

    backend = "postgresql"
    copies_state = True

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.pool = ThreadPoolExecutor(max_workers=3)
        self.drops: list[Future[None]] = []

    def _admin(self, sql: str) -> None:
        engine = create_engine(self.admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                conn.exec_driver_sql(sql)
        finally:
            engine.dispose()

    @contextmanager
    def copies(self, env_py: str, driver: int) -> Iterator[Copies]:
        copies = Copies("postgresql", env_py, driver)
        stem = f"ad_diff_{uuid.uuid4().hex[:10]}"
        names = {name: f"{stem}_{name}" for name in ("state", *COMPARED)}
        copies.sync_urls = {name: url_text(self.admin_url, database=db) for name, db in names.items()}
        self._admin(f'CREATE DATABASE "{names["state"]}"')
        try:
            yield copies
        finally:
            self.drops += [self.pool.submit(self._admin, f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                           for db in names.values()]

    def copy_state(self, copies: Copies) -> None:
        state = make_url(copies.sync_urls["state"]).database
        for done in [self.pool.submit(self._admin, f'CREATE DATABASE "{make_url(copies.sync_urls[name]).database}" '
                                                   f'TEMPLATE "{state}"') for name in COMPARED]:
            done.result()

    def close(self) -> None:
        for drop in self.drops:
            drop.result()
        self.pool.shutdown()


class MariaDBStates(PostgresStates):
    """A database of its own for each compared run; MariaDB copies no database, so the state is
    built on each of them by the same runs (``copies_state`` False)."""

    backend = "mysql"
    copies_state = False

    @contextmanager
    def copies(self, env_py: str, driver: int) -> Iterator[Copies]:
        copies = Copies("mysql", env_py, driver)
        stem = f"ad_diff_{uuid.uuid4().hex[:10]}"
        names = {name: f"{stem}_{name}" for name in COMPARED}
        copies.sync_urls = {name: url_text(self.admin_url, database=db) for name, db in names.items()}
        for db in names.values():
            self._admin(f"CREATE DATABASE `{db}`")
        try:
            yield copies
        finally:
            self.drops += [self.pool.submit(self._admin, f"DROP DATABASE IF EXISTS `{db}`") for db in names.values()]


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    versions: frozenset[str] | None   # None: no version table
    tables: frozenset[str]            # user tables (not alembic_version, not the journal)
    output: str

    def describe(self) -> str:
        versions = "no version table" if self.versions is None else sorted(self.versions)
        return f"exit {self.exit_code}, version table {versions}, tables {sorted(self.tables)}"


def snapshot(sync_url: str) -> tuple[frozenset[str] | None, frozenset[str]]:
    """The rows of the version table (whatever env.py names it: the table holding only
    ``version_num``) and the other tables but the journal's."""
    engine = create_engine(sync_url, poolclass=NullPool)
    try:
        insp = inspect(engine)
        names = set(insp.get_table_names())
        version_tables = {n for n in names if [c["name"] for c in insp.get_columns(n)] == ["version_num"]}
        versions = None
        with engine.connect() as conn:
            for table in sorted(version_tables):
                rows = conn.execute(text(f"SELECT version_num FROM {table}"))
                versions = (versions or frozenset()) | frozenset(r[0] for r in rows)
        tables = frozenset(n for n in names - version_tables if not n.startswith(JOURNAL_PREFIX))
        return versions, tables
    finally:
        engine.dispose()


# -- running the tools ------------------------------------------------------------------------------
# Plain alembic through its command API: the URL set as sqlalchemy.url exactly as alembic-deploy
# sets it (and DATABASE_URL in the environment, as alembic-deploy sets it too).
_PLAIN = """
import sys
from alembic import command
from alembic.config import Config
config = Config(sys.argv[1])
config.set_main_option("sqlalchemy.url", sys.argv[2].replace("%", "%%"))
verb, targets = sys.argv[3], sys.argv[4:]
if verb == "upgrade":
    command.upgrade(config, targets[0])
else:
    command.stamp(config, targets)
"""


def run_alembic(project: Path, url: str, verb: str, *targets: str) -> tuple[int, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALEMBIC_DEPLOY_", "GITHUB_"))}
    env["DATABASE_URL"] = url
    proc = subprocess.run([sys.executable, "-c", _PLAIN, str(project / "alembic.ini"), url, verb, *targets],
                          cwd=project, env=env, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout + proc.stderr


def run_deploy(project: Path, url: str, target: str, *flags: str, cache: Path) -> tuple[int, str]:
    run = run_cli(project, "upgrade", target, *flags, url=url, env={"XDG_CACHE_HOME": str(cache)})
    return run.returncode, run.output


@dataclass
class Played:
    scenario: Scenario
    backend: str
    project: Path
    log: list[str]
    state: Outcome
    alembic: Outcome
    fast: Outcome
    full: Outcome

    def report(self) -> str:
        files = sorted(str(p.relative_to(self.project)) for p in self.project.rglob("*")
                       if p.suffix in (".py", ".link") and "__pycache__" not in p.parts)
        return "\n".join([
            f"backend: {self.backend}", self.scenario.describe(), "project files: " + ", ".join(files),
            "building the state:", *[f"  {line}" for line in self.log],
            f"plain alembic:                  {self.alembic.describe()}",
            f"alembic-deploy (fast path):     {self.fast.describe()}",
            f"alembic-deploy --no-fast-path:  {self.full.describe()}",
            "--- plain alembic output ---", self.alembic.output[-1500:],
            "--- alembic-deploy output ---", self.fast.output[-1500:],
            "--- alembic-deploy --no-fast-path output ---", self.full.output[-1500:],
        ])


def play(scenario: Scenario, states: SQLiteStates | PostgresStates | MariaDBStates, root: Path) -> Played:
    """Build the scenario's state once and copy it (or build it on each copy where a database
    cannot be copied), and run the three deploys, one on each copy."""
    project = write_project(scenario, root / "project")
    cache = root / "cache"
    log: list[str] = []

    def run_steps(steps: tuple[Step, ...], urls: list[str]) -> None:
        for step in steps:
            codes = [run_alembic(project, url, step.verb, *step.targets)[0] if step.tool == "alembic"
                     else run_deploy(project, url, step.targets[0], cache=cache)[0] for url in urls]
            log.append(f"{step.describe()}: exit {'/'.join(map(str, codes))}")

    with states.copies(scenario.env_py, scenario.driver) as copies:
        builds = [copies.url(name) for name in (("state",) if states.copies_state else COMPARED)]
        run_steps(scenario.setup, builds)
        if scenario.failure:
            failure = scenario.failure
            failing = next(r for r in scenario.revisions if r.id == failure.revision)
            write_revision(project, scenario, failing, failure.mode)
            codes = [run_alembic(project, url, "upgrade", failure.revision)[0] if failure.tool == "alembic"
                     else run_deploy(project, url, failure.revision, cache=cache)[0] for url in builds]
            log.append(f"{failure.tool} upgrade {failure.revision} ({failure.mode}): exit {'/'.join(map(str, codes))}")
            write_revision(project, scenario, failing)
            if failure.then == "previous-release":
                for rev in scenario.revisions:
                    if rev not in scenario.released():
                        remove_revision(project, rev)
        run_steps(scenario.after, builds)
        state = Outcome(0, *snapshot(copies.sync_urls["state" if states.copies_state else "alembic"]), "")
        log.append("state: " + state.describe().split(", ", 1)[1])
        if states.copies_state:
            states.copy_state(copies)
        # The three runs go side by side, each on its own copy of the database and of the cache
        # alembic-deploy keeps (the fast path's revision graph), as on three identical machines.
        for name in COMPARED:
            if cache.exists():
                shutil.copytree(cache, root / f"cache-{name}")
        commands = {
            "alembic": lambda: run_alembic(project, copies.url("alembic"), "upgrade", scenario.target),
            "fast": lambda: run_deploy(project, copies.url("fast"), scenario.target, cache=root / "cache-fast"),
            "full": lambda: run_deploy(project, copies.url("full"), scenario.target, "--no-fast-path",
                                       cache=root / "cache-full"),
        }
        with ThreadPoolExecutor(max_workers=len(COMPARED)) as pool:
            runs = {name: pool.submit(command) for name, command in commands.items()}
            outcomes = {name: Outcome(run.result()[0], *snapshot(copies.sync_urls[name]), run.result()[1])
                        for name, run in runs.items()}
    return Played(scenario, states.backend, project, log, state, **outcomes)


# -- the promise ------------------------------------------------------------------------------------
# Where plain alembic succeeds and alembic-deploy refuses on purpose, to protect data. Each entry:
# exit code -> (when the refusal is due, why it is documented).
DOCUMENTED_REFUSALS = {
    8: (lambda played: partly_applied(played),
        ("a revision is partly applied (a failed or killed run left its first statement applied on a "
        "backend without transactional DDL): plain alembic cannot see it, the deploy must be repaired "
        "(README: Partly applied revisions)")),
}
TRANSACTIONAL_DDL = {"sqlite": False, "postgresql": True, "mysql": False}


def partly_applied(played: Played) -> bool:
    """A run of alembic-deploy failed on a backend without transactional DDL and left a revision's
    table behind while the version table does not record that revision: the failing revision's
    own first statement (raise-after, kill-after), or an earlier revision of the same run whose
    DDL committed by itself before the run's version-table transaction rolled back (any mode)."""
    failure = played.scenario.failure
    if failure is None or failure.tool != "alembic-deploy" or failure.mode == "ok" or TRANSACTIONAL_DDL[played.backend]:
        return False
    revisions = played.scenario.revisions
    known = {r.id for r in revisions}
    recorded = {rev for rev in played.state.versions or () if rev in known}  # and all they applied:
    recorded = recorded.union(*(ancestors(revisions, rev, depends=True) for rev in recorded))
    return any(f"t_{r.id}" in played.state.tables and r.id not in recorded for r in revisions)


def problems(played: Played) -> list[str]:
    """Every way the deploy with alembic-deploy ended worse than plain alembic's, or the fast path
    answered differently from the full path."""
    found = []
    plain, fast, full = played.alembic, played.fast, played.full
    for name, run in (("fast path", fast), ("--no-fast-path", full)):
        if run.exit_code == 1 or "Traceback" in run.output:
            found.append(f"alembic-deploy ({name}) exit {run.exit_code} with an internal error (exit 1 is for bugs)")
    if (fast.exit_code, fast.versions, fast.tables) != (full.exit_code, full.versions, full.tables):
        found.append(f"fast path {fast.describe()} but --no-fast-path {full.describe()}")
    for name, run in (("fast path", fast), ("--no-fast-path", full)):
        if plain.exit_code == 0:
            refusal = DOCUMENTED_REFUSALS.get(run.exit_code)
            if run.exit_code == 0:
                if (run.versions, run.tables) != (plain.versions, plain.tables):
                    found.append(
                        f"alembic-deploy ({name}) ends at {run.describe()}; plain alembic at {plain.describe()}")
            elif refusal is None or not refusal[0](played):
                found.append(f"alembic-deploy ({name}) exit {run.exit_code} where plain alembic succeeds")
        elif run.exit_code == 0:
            found.append(f"alembic-deploy ({name}) exit 0 where plain alembic fails (exit {plain.exit_code})")
    return found
