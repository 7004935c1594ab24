"""``alembic-deploy drift``: does the live schema still match what its migrations make?

The revision(s) the database is at are read as ``status`` reads them (through env.py); the history
up to them is replayed, through env.py, into a scratch database of the same dialect (a temporary,
uniquely named database on the same PostgreSQL or MySQL/MariaDB server, a temporary file for
SQLite), and the two schemas are compared as SQLAlchemy's public Inspector reflects them: tables,
columns (type, nullability, server default), primary keys, indexes, unique, foreign-key and check
constraints, views (their definitions), sequences (by name) and PostgreSQL enums (their labels), each
in a normalised form, in the default schema and, on PostgreSQL, every other schema of the database.
The version table and the journal's tables are left out. Out of reach of the Inspector, and so
not compared: triggers, functions and procedures, grants, comments, a sequence's parameters,
partitioning, and on MySQL/MariaDB schemas other than the connection's (each is another database).

The scratch database is always dropped: after the comparison, when the replay fails, and when
SIGTERM or SIGINT arrives (the drop itself is not cut short by a signal: see
:func:`alembic_deploy.signals.deferred`); one a SIGKILL left behind is swept at the next start
(:mod:`alembic_deploy.scratch`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from .errors import EXIT_OK, AlembicDeployError, CheckRefused, Interrupted, MigrationFailed
from .scratch import scratch_database

if TYPE_CHECKING:

    from alembic.runtime.migration import MigrationContext
    from sqlalchemy.engine import Engine

    from .backends.base import Backend
    from .deployment import Deployment, Echo
    from .report import DeployReport
    from .settings import Settings
    from .signals import InterruptState

#: One table's objects: (kind, name) -> the object's normalised description.
TableObjects = dict[tuple[str, str], dict[str, Any]]
Schema = dict[str, TableObjects]
#: Kinds of objects that belong to no table: a difference names them alone.
TOP_LEVEL: Final = frozenset({"table", "view", "sequence", "enum"})


@dataclass(frozen=True)
class Difference:
    """One object that differs: ``database`` is its description in the live database (None: it
    is not there), ``migrations`` in the replayed history (None: the migrations do not make it)."""

    table: str
    #: table, column, primary key, index, unique constraint, foreign key, check constraint; view,
    #: sequence, enum (``table`` is then their name too)
    kind: str
    name: str
    database: dict[str, Any] | None
    migrations: dict[str, Any] | None

    @property
    def change(self) -> str:
        """``unexpected`` (only in the database), ``missing`` (only in the migrations) or ``changed``."""
        if self.migrations is None:
            return "unexpected"
        return "missing" if self.database is None else "changed"

    def describe(self) -> str:
        what = f"{self.kind} {self.name}" if self.kind in TOP_LEVEL else f"{self.table}: {self.kind} {self.name}"
        if self.database is None:
            return f"{what} is missing from the database (the migrations make it: {_fields(self.migrations)})"
        if self.migrations is None:
            return f"{what} is in the database but no migration makes it ({_fields(self.database)})"
        changed = [
            f"{key} is {_value(self.database.get(key))} in the database, {_value(self.migrations.get(key))} "
            "in the migrations"
            for key in sorted(set(self.database) | set(self.migrations))
            if self.database.get(key) != self.migrations.get(key)
        ]
        return f"{what} differs: {'; '.join(changed)}"

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "kind": self.kind, "name": self.name, "change": self.change,
                "database": self.database, "migrations": self.migrations}


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return "(" + ", ".join(str(v) for v in value) + ")"
    return "none" if value is None else str(value)


def _fields(description: dict[str, Any] | None) -> str:
    return ", ".join(f"{k} {_value(v)}" for k, v in (description or {}).items()) or "-"


@dataclass
class DriftReport:
    database: str
    backend: str
    #: The revision(s) the database is at, which the history was replayed up to.
    revisions: list[str]
    differences: list[Difference] = field(default_factory=list)
    #: What alembic's autogenerate finds between env.py's ``target_metadata`` (the models) and
    #: the database, as ``alembic check`` does; None when env.py sets no target_metadata.
    models: list[str] | None = None

    @property
    def exit_code(self) -> int:
        return CheckRefused.exit_code if self.differences or self.models else EXIT_OK

    def error(self) -> CheckRefused | None:
        if self.differences:
            return CheckRefused(
                f"The database's schema differs from what its migrations make in {len(self.differences)} "
                "place(s): a change was made outside the migrations (or a migration was edited after it ran). "
                "Write a revision that makes the change, or undo it in the database, before the next deploy."
            )
        if self.models:
            return CheckRefused(
                f"The models (env.py's target_metadata) and the database differ in {len(self.models)} place(s), "
                "as `alembic check` reports them: write the revision they call for (`alembic revision "
                "--autogenerate`), or change the models."
            )
        return None

    def details(self) -> dict[str, Any]:
        """The report's own fields (``drift`` in ``plan --check-drift``'s document)."""
        return {"database": self.database, "backend": self.backend, "revisions": self.revisions,
                "differences": [d.to_dict() for d in self.differences], "models": self.models}

    def to_dict(self) -> dict[str, Any]:
        from .report import document

        error = self.error()
        return document("drift", self.exit_code, error.to_dict() if error is not None else None, **self.details())

    def markdown_lines(self) -> list[str]:
        lines = ["### Drift", ""]
        if not self.differences:
            lines.append("The database's schema is what its migrations make.")
        lines.extend(f"- {d.describe()}" for d in self.differences)
        if self.models is not None:
            lines += ["", (f"Models (env.py's `target_metadata`) against the database: {len(self.models)} "
                          "difference(s).")]
            lines.extend(f"- `{m}`" for m in self.models)
        return lines

    def render_text(self) -> str:
        at = ", ".join(self.revisions) or "base"
        if not self.differences:
            lines = [f"drift: none; the database ({self.database}) at {at} is as its migrations make it."]
        else:
            lines = [(f"drift: {len(self.differences)} difference(s) between the database ({self.database}) at "
                      f"{at} and its migrations replayed:")]
            lines.extend(f"  {d.describe()}" for d in self.differences)
        if self.models is not None:
            lines.append(f"models (env.py's target_metadata) against the database: {len(self.models)} difference(s)"
                         + (":" if self.models else "."))
            lines.extend(f"  {m}" for m in self.models)
        return "\n".join(lines)


def drift(settings: Settings, echo: Echo | None = None) -> DriftReport:
    """Replay the history into a scratch database and compare it with the live one (see the
    module's docstring). Raises :class:`~alembic_deploy.errors.ScratchUnavailable` (exit 10)
    when no scratch database can be created, :class:`~alembic_deploy.errors.Interrupted` on
    SIGTERM/SIGINT, both after dropping the scratch database."""
    from .deployment import Deployment
    from .report import DeployReport
    from .signals import interruptible

    with interruptible() as interrupt:
        try:
            deployment = Deployment.open(settings, echo)
            try:
                deployment.wait(DeployReport(command="drift", environment=settings.env))
                return compare_with_history(deployment, interrupt)
            finally:
                deployment.close()
        except KeyboardInterrupt:
            # signals.SignalInterrupt: the scratch database was dropped on the way out.
            name = interrupt.error().fields.get("signal", "a signal")
            raise Interrupted(
                f"Interrupted by {name}: the drift check stopped and its scratch database was dropped; "
                "the live database was only read. Run `alembic-deploy drift` again.", signal=name) from None


def compare_with_history(deployment: Deployment, interrupt: InterruptState) -> DriftReport:
    """The drift of the database ``deployment`` reaches (waited for already). A signal raises
    :class:`~alembic_deploy.signals.SignalInterrupt` once the scratch database is dropped."""
    from .alembic_env import RunObserver

    settings = deployment.settings
    ignored = {settings.journal_table, f"{settings.journal_table}_progress"}
    models: list[str] | None = None

    def on_configured(context: MigrationContext, _current: tuple[str, ...]) -> None:
        nonlocal models
        metadata = context.opts.get("target_metadata")
        if metadata is not None:
            models = models_against(context, metadata, ignored)

    result = deployment.alembic_project().run("inspect", "heads", RunObserver(on_configured=on_configured))
    current = list(result.current)
    ignored.add(result.version_table)
    live = snapshot(deployment.engine, deployment.backend, ignored)
    with scratch_database(deployment, interrupt) as scratch_url:
        replay(settings, scratch_url, current)
        replayed = _snapshot_url(scratch_url, ignored)
    return DriftReport(deployment.masked_url, deployment.backend.name, current, compare(live, replayed), models)


def models_against(context: MigrationContext, metadata: Any, ignored: set[str]) -> list[str]:
    """What ``alembic check`` reports between ``metadata`` and the database ``context`` is
    connected to (alembic's autogenerate ``compare_metadata``, with env.py's filters), one line
    each; changes to the ``ignored`` tables left out."""
    from alembic.autogenerate import compare_metadata

    found: list[str] = []
    for diff in compare_metadata(context, metadata):
        for change in diff if isinstance(diff, list) else [diff]:
            table, text = _autogenerate_text(tuple(change))
            if table not in ignored:
                found.append(text)
    return found


def _autogenerate_text(change: tuple[Any, ...]) -> tuple[str | None, str]:
    """(table, one line) of one of autogenerate's diff tuples."""
    kind = str(change[0])
    if kind in ("add_table", "remove_table"):
        return change[1].name, f"{kind} {change[1].name}"
    if kind in ("add_column", "remove_column"):
        return change[2], f"{kind} {change[2]}.{change[3].name}"
    if kind.startswith("modify_"):
        # (kind, schema, table, column, existing, database value, models value)
        return change[2], f"{kind} {change[2]}.{change[3]}: {change[5]!r} in the database, {change[6]!r} in the models"
    obj = change[1]
    table = getattr(getattr(obj, "table", None), "name", None) or getattr(getattr(obj, "parent", None), "name", None)
    return table, f"{kind} {getattr(obj, 'name', None) or obj} on {table}"


def refuse_drift(deployment: Deployment, interrupt: InterruptState, report: DeployReport) -> None:
    """``upgrade --check-drift``, under the migration lock before anything runs: refuse (exit 5,
    journaled as refused) when the schema differs from what its migrations make."""
    started = time.monotonic()
    found = compare_with_history(deployment, interrupt)
    report.step("drift", started, f"{len(found.differences)} difference(s)")
    error = found.error()
    if error is not None:
        raise CheckRefused(
            f"{error.message} Nothing was migrated (--check-drift); `alembic-deploy drift` lists them again.",
            **{f"drift {n}": d.describe() for n, d in enumerate(found.differences, 1)},
        )


def replay(settings: Settings, url: str, revisions: list[str]) -> None:
    """Upgrade the database at ``url`` to ``revisions`` through the project's env.py."""
    from .alembic_env import AlembicProject, RunObserver

    before = os.environ.get("DATABASE_URL")
    running: list[str] = []
    observer = RunObserver(on_revision_start=lambda revision, _options: running.append(revision))
    try:
        project = AlembicProject(settings, url)  # it points DATABASE_URL at ``url`` for env.py
        for revision in revisions:
            project.run("upgrade", revision, observer)
    except AlembicDeployError:
        raise
    except Exception as exc:
        failed = running[-1] if running else None
        raise MigrationFailed(
            f"Replaying the migrations into the scratch database failed{f' in {failed}' if failed else ''}: "
            f"{type(exc).__name__}: {exc}. The live database was only read, and the scratch database is dropped. "
            "drift needs every revision to run on an empty database: one that reads rows it expects, or "
            "objects made outside the migrations, cannot be replayed.", revision=failed,
        ) from exc
    finally:
        if before is None:
            os.environ.pop("DATABASE_URL", None)
        else:
            os.environ["DATABASE_URL"] = before


def _snapshot_url(url: str, ignored: set[str]) -> Snapshot:
    from .database import make_engine

    engine, backend = make_engine(url)
    try:
        return snapshot(engine, backend, ignored)
    finally:
        engine.dispose()


@dataclass
class Snapshot:
    """A database's schema as drift compares it: its tables' objects, and the objects that belong
    to no table (views, sequences, PostgreSQL enums), keyed ``(kind, name)``."""

    tables: Schema = field(default_factory=dict)
    others: TableObjects = field(default_factory=dict)


def snapshot(engine: Engine, backend: Backend, ignored: set[str]) -> Snapshot:
    """The tables (but ``ignored``) of the default schema, and of the other schemas where a
    database holds schemas of its own (:attr:`Backend.schemas_inside_database`), with their
    objects, views, sequences and enums, normalised so two databases built alike on one server
    compare equal. Names outside the default schema are qualified (``audit.events``)."""
    from sqlalchemy import inspect

    with engine.connect() as conn:
        inspector = inspect(conn)
        found = Snapshot()
        schemas: list[str | None] = [None, *backend.other_schemas(inspector)]
        for schema in schemas:
            for table in inspector.get_table_names(schema=schema):
                if schema is None and table in ignored:
                    continue
                found.tables[_qualified(schema, table)] = _table_objects(inspector, conn.dialect, table, schema)
            _others(inspector, schema, ignored, engine.url.database, found.others)
    return found


def _qualified(schema: str | None, name: str) -> str:
    return f"{schema}.{name}" if schema else name


def _table_objects(inspector: Any, dialect: Any, table: str, schema: str | None) -> TableObjects:
    objects: TableObjects = {}
    for column in inspector.get_columns(table, schema=schema):
        objects[("column", column["name"])] = {
            "type": _type_text(column["type"], dialect), "nullable": bool(column["nullable"]),
            "default": _sql_text(column.get("default")),
        }
    pk = inspector.get_pk_constraint(table, schema=schema)
    if pk.get("constrained_columns"):
        objects[("primary key", "")] = {"columns": list(pk["constrained_columns"]), "name": pk.get("name")}
    for index in inspector.get_indexes(table, schema=schema):
        described = {"columns": [str(c) for c in index["column_names"]], "unique": bool(index["unique"])}
        if index.get("expressions"):
            described["expressions"] = [_sql_text(e) for e in index.get("expressions") or ()]
        objects[("index", str(index["name"]))] = described
    for unique in inspector.get_unique_constraints(table, schema=schema):
        columns = [str(c) for c in unique["column_names"]]
        objects[("unique constraint", unique.get("name") or ",".join(columns))] = {"columns": columns}
    for fk in inspector.get_foreign_keys(table, schema=schema):
        columns = [str(c) for c in fk["constrained_columns"]]
        referred = _qualified(fk.get("referred_schema"), fk["referred_table"])
        objects[("foreign key", fk.get("name") or f"({','.join(columns)}) -> {referred}")] = {
            "columns": columns, "referred_table": referred,
            "referred_columns": [str(c) for c in fk["referred_columns"]],
            "options": ", ".join(f"{k}={v}" for k, v in sorted((fk.get("options") or {}).items())) or None,
        }
    try:
        checks = inspector.get_check_constraints(table, schema=schema)
    except NotImplementedError:
        checks = []
    for check in checks:
        sqltext = _sql_text(check["sqltext"])
        objects[("check constraint", check.get("name") or str(sqltext))] = {"sql": sqltext}
    return objects


def _others(inspector: Any, schema: str | None, ignored: set[str], database: str | None,
            into: TableObjects) -> None:
    """The views (their definitions), sequences and PostgreSQL enums (their labels) of ``schema``,
    as SQLAlchemy's Inspector reflects them; what a dialect cannot reflect is left out."""
    for view in inspector.get_view_names(schema=schema):
        definition = inspector.get_view_definition(view, schema=schema)
        into[("view", _qualified(schema, view))] = {"definition": _view_text(definition, database)}
    try:
        sequences = inspector.get_sequence_names(schema=schema)
    except NotImplementedError:  # SQLite, MySQL: no sequences
        sequences = []
    for sequence in sequences:
        # The journal's own (a serial id) is as much the tool's as its table.
        if not (schema is None and any(sequence.startswith(f"{table}_") for table in ignored)):
            into[("sequence", _qualified(schema, sequence))] = {}
    get_enums = getattr(inspector, "get_enums", None)  # PostgreSQL's Inspector only
    if get_enums is not None:
        for enum in get_enums(schema=schema or inspector.default_schema_name):
            into[("enum", _qualified(schema, enum["name"]))] = {"labels": list(enum["labels"])}


def _view_text(definition: Any, database: str | None) -> str | None:
    """A view's definition without its own database's name, which MySQL writes into every column
    reference (`live`.`users`.`id`) and which differs between the live and the scratch database."""
    text = _sql_text(definition)
    if text is None or not database:
        return text
    for quote in ("`", '"'):
        text = text.replace(f"{quote}{database}{quote}.", "")
    return text


def _type_text(type_: Any, dialect: Any) -> str:
    try:
        return str(type_.compile(dialect=dialect))
    except Exception:  # noqa: BLE001 - a type the dialect cannot render (NullType): its repr compares as well
        return repr(type_)


def _sql_text(sql: Any) -> str | None:
    """SQL text with its whitespace collapsed (servers keep a default or check as written)."""
    return " ".join(str(sql).split()) if sql is not None else None


def compare(database: Snapshot, migrations: Snapshot) -> list[Difference]:
    """What differs between the live schema and the replayed one: table by table in name order,
    then the views, sequences and enums."""
    found: list[Difference] = []
    for table in sorted(set(database.tables) | set(migrations.tables)):
        if table not in migrations.tables or table not in database.tables:
            here, there = database.tables.get(table), migrations.tables.get(table)
            found.append(Difference(table, "table", table, _table_summary(here), _table_summary(there)))
            continue
        live, replayed = database.tables[table], migrations.tables[table]
        for key in sorted(set(live) | set(replayed)):
            if live.get(key) != replayed.get(key):
                found.append(Difference(table, key[0], key[1], live.get(key), replayed.get(key)))
    for key in sorted(set(database.others) | set(migrations.others)):
        if database.others.get(key) != migrations.others.get(key):
            found.append(Difference(key[1], key[0], key[1], database.others.get(key), migrations.others.get(key)))
    return found


def _table_summary(objects: TableObjects | None) -> dict[str, Any] | None:
    if objects is None:
        return None
    return {"columns": [name for kind, name in objects if kind == "column"]}
