"""The ``alembic-deploy`` command: parse -> Settings -> api call -> render -> exit code.

Progress and errors go to stderr, as text or (``--log-format json``) one JSON object per line
rendered by :mod:`alembic_deploy.observer`; ``--json`` prints one JSON document on stdout. Exit
codes come from the exception classes in :mod:`alembic_deploy.errors` and nowhere else.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gc
import os
import sys
import traceback
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import fields
from typing import TYPE_CHECKING, Any, Final, TypeVar

import click

from .errors import EXIT_OK, AlembicDeployError, ConfigError, Interrupted
from .heap import collector_managed, manage_collector
from .masking import mask_url, scrub
from .settings import (
    BACKUPS,
    CHECK,
    DEMO,
    DRIFT,
    ECS_RUN,
    HISTORY,
    OPTION,
    PLAN,
    REPAIR,
    REPORT,
    RESTORE,
    ROLLBACK,
    RUN,
    STATUS,
    UPGRADE,
    WAIT_ECS,
    Option,
    Settings,
    kind,
)
from .settings import options as setting_options

if TYPE_CHECKING:
    from .check import CheckReport
    from .drift import DriftReport
    from .report import StatusReport

_F = TypeVar("_F", bound=Callable[..., Any])

#: What a write to a stream that is closed (``2>&-``: Python makes it None), or whose reader is gone
#: (``| head``: EPIPE), raises.
_UNWRITABLE = (OSError, ValueError, AttributeError)


def out(msg: str) -> None:
    """A line on stdout. Output nobody can read must not fail the work it reports (a migration
    half done, a journal row left ``running``): a write that cannot be made is dropped."""
    with contextlib.suppress(*_UNWRITABLE):
        click.echo(msg)


#: ``--log-format json`` in effect: every line on stderr is one JSON object (observer.json_line).
_LOG_JSON: ContextVar[bool] = ContextVar("alembic_deploy_log_json", default=False)


def _err(msg: str, **style: Any) -> None:
    """A line on stderr: text, or its JSON log object with --log-format json."""
    if _LOG_JSON.get():
        from .observer import json_line

        line = json_line(msg)
        if line is not None:
            with contextlib.suppress(*_UNWRITABLE):
                sys.stderr.write(line + "\n")
        return
    with contextlib.suppress(*_UNWRITABLE):
        click.secho(scrub(msg), err=True, **style)


class _JsonStderr:
    """stderr under --log-format json: whatever else writes there (alembic's and env.py's logging,
    Python's warnings, a print in a revision) arrives as a ``log`` event, one JSON object per
    line like the tool's own, which pass through unchanged. Logging handlers that env.py sets up
    take this stream as their ``sys.stderr``."""

    _LEVELS: Final = {"DEBUG": "info", "INFO": "info", "WARNING": "warning", "WARN": "warning", "ERROR": "error",
                      "CRITICAL": "error"}

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.pending = ""

    def write(self, text: str) -> int:
        self.pending += text
        while "\n" in self.pending:
            line, self.pending = self.pending.split("\n", 1)
            self._line(line)
        return len(text)

    def _line(self, line: str) -> None:
        if not line.startswith('{"ts":'):
            if not line.strip():
                return
            from .observer import event, json_line

            words = line.split(maxsplit=1)
            level = self._LEVELS.get(words[0].upper().strip(":[]"), "info") if words else "info"
            line = json_line(event("log", line.rstrip(), level)) or ""
        self.stream.write(line + "\n")

    def flush(self) -> None:
        if self.pending:
            line, self.pending = self.pending, ""
            self._line(line)
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding...: the real stream's
        return getattr(self.stream, name)


@contextlib.contextmanager
def _json_stderr(on: bool) -> Iterator[None]:
    if not on or isinstance(sys.stderr, _JsonStderr):
        yield
        return
    real = sys.stderr
    sys.stderr = _JsonStderr(real)
    try:
        yield
    finally:
        with contextlib.suppress(*_UNWRITABLE):
            sys.stderr.flush()
        sys.stderr = real


def _error(message: str, exit_code: int, kind: str, fields: dict[str, Any] | None = None,
           trace: BaseException | None = None) -> None:
    """The error a command ends with: its paragraph and titled fields (and with --debug the
    traceback) as text; with --log-format json, all of it in one ``error`` line."""
    fields = fields or {}
    if _LOG_JSON.get():
        from .observer import event

        extra = {"traceback": "".join(traceback.format_exception(trace))} if trace is not None else {}
        _err(event("error", message, "error", kind=kind, exit_code=exit_code, fields=fields, **extra))
        return
    _err(f"error: {message}", fg="red")
    for key, value in fields.items():
        _err(f"  {key}: {value}")
    if trace is not None:
        _err("".join(traceback.format_exception(trace)))


def _settle_streams() -> None:
    """At exit, point a stdout or stderr that cannot take its last flush at /dev/null, so the
    interpreter's own flush neither prints a BrokenPipeError nor turns the exit code into 120
    (the recipe in Python's documentation of SIGPIPE): the exit code stays the work's."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except _UNWRITABLE:
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, stream.fileno())
                os.close(devnull)
            except _UNWRITABLE:  # not a file (an in-process runner's buffer): nothing to flush at exit
                pass


_GLOBAL_KEY = "alembic_deploy.global_options"
_TYPES: Final = {"float": float, "int": int, "str": str}


def _option(setting: dataclasses.Field[Any]) -> Callable[[_F], _F]:
    """The click option of a setting, built from its :class:`~alembic_deploy.settings.Option`
    (None = not given, so the environment and pyproject.toml still apply)."""
    spec: Option = setting.metadata[OPTION]
    flags = spec.flags or (f"--{setting.name.replace('_', '-')}",)
    type_ = kind(setting)
    extra: dict[str, Any] = {}
    if type_ == "tuple":
        extra["multiple"] = True
    elif type_ == "bool":
        if not any("/" in flag for flag in flags):  # --on/--off pairs are flags already
            extra["is_flag"] = True
    else:
        extra["type"] = _TYPES[type_]
    return click.option(*flags, setting.name, default=None, help=spec.help, metavar=spec.metavar, **extra)


def _with(settings: list[dataclasses.Field[Any]]) -> Callable[[_F], _F]:
    def decorate(fn: _F) -> _F:
        for setting in reversed(settings):
            fn = _option(setting)(fn)
        return fn

    return decorate


#: alembic's global options (-c, -n, -x, --raiseerr), accepted before the command (alembic's
#: order) as well as after it.
GLOBAL_OPTIONS: Final = tuple(f.name for f in fields(Settings) if OPTION in f.metadata
                              and f.metadata[OPTION].alembic_global)


def settings_options(command: str) -> Callable[[_F], _F]:
    """The options of ``command``: every setting whose :class:`~alembic_deploy.settings.Option`
    names it, so a setting added to Settings is an option of each command that takes it."""
    return _with(setting_options(command))


_global_options = _with([f for f in fields(Settings) if f.name in GLOBAL_OPTIONS])


def _merge_global(options: dict[str, Any]) -> dict[str, Any]:
    """The command's options with the group's global ones under them: an option given after the
    command wins over the same one given before it; -x values from both places are all passed,
    the group's first (so for a key given twice, env.py's ``get_x_argument(as_dictionary=True)``
    keeps the later one, as when both are given after the command)."""
    given = click.get_current_context().meta.get(_GLOBAL_KEY, {})
    merged = dict(options)
    for key in GLOBAL_OPTIONS:
        if key == "x":
            merged["x"] = (*given.get("x", ()), *(options.get("x") or ()))
        elif options.get(key) is None:
            merged[key] = given.get(key)
    return merged


def _run(command: Callable[..., Any]) -> Callable[..., Any]:
    """Build Settings from the options, run the command, map exceptions to exit codes."""

    @functools.wraps(command)
    def wrapper(**options: Any) -> None:
        options = _merge_global(options)
        debug = bool(options.get("debug"))
        # Until the settings resolve (they may not): the flag, or the variable that sets it.
        as_json = bool(options.get("json")) or _json_from_env()
        log_json = _LOG_JSON.set(_log_json_given(options.get("log_format")))
        try:
            from .compat import require_supported

            require_supported()
            settings, rest = resolve(options)
            debug, as_json = settings.debug, settings.json
            _LOG_JSON.set(settings.log_format == "json")
            with _json_stderr(settings.log_format == "json"):
                command(settings, **rest)
        except AlembicDeployError as exc:
            if as_json:
                out(exc.report.to_json() if exc.report is not None else _error_json(exc))
            _error(exc.message, exc.exit_code, exc.kind, exc.fields, exc if debug else None)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            if as_json:
                out(_error_json(Interrupted("Interrupted.")))
            _error("interrupted.", Interrupted.exit_code, Interrupted.kind)
            sys.exit(Interrupted.exit_code)
        except Exception as exc:  # noqa: BLE001 - the last resort: exit 1, no traceback unless asked
            message = (
                f"internal error: {type(exc).__name__}: {exc}. This is a bug in "
                "alembic-deploy or an unexpected environment; rerun with --debug and report it."
            )
            if as_json:
                out(_error_json(AlembicDeployError(message)))
            _error(message, AlembicDeployError.exit_code, AlembicDeployError.kind, trace=exc if debug else None)
            sys.exit(AlembicDeployError.exit_code)
        finally:
            _LOG_JSON.reset(log_json)
            _settle_streams()
            # The process ends next: spare the interpreter's last garbage collection a walk over
            # every object it is about to drop anyway (~0.1 s after loading 500 revisions).
            if collector_managed():
                gc.freeze()

    return wrapper


def resolve(options: dict[str, Any]) -> tuple[Settings, dict[str, Any]]:
    """A command's parsed options: the Settings they give (flags > env > file) and the rest."""
    names = {f.name for f in fields(Settings)}
    settings = Settings.resolve({k: v for k, v in options.items() if k in names})
    return settings, {k: v for k, v in options.items() if k not in names}


def _error_json(exc: AlembicDeployError, command: str | None = None) -> str:
    """The ``--json`` document of a command that failed before it had a report of its own."""
    from .report import document, to_json

    if command is None:
        command = click.get_current_context().info_name
    return to_json(document(command, exc.exit_code, {**exc.to_dict(), "message": scrub(exc.message)}))


def _command_path(ctx: click.Context | None) -> str | None:
    """The command a usage error belongs to, as the JSON document names it (``init github-actions``);
    None before any command was named."""
    names: list[str] = []
    while ctx is not None and ctx.parent is not None:
        names.insert(0, ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(names) or None


def _echo(settings: Settings) -> Callable[[str], None]:
    """Progress lines (one per revision applied): plain, so written straight to stderr; with
    --log-format json, each event as its JSON object (events with no text line included)."""
    return _Progress(settings.log_format == "json")


class _Progress:
    """The CLI's progress output (see :func:`_echo`)."""

    __slots__ = ("takes_events",)

    def __init__(self, as_json: bool) -> None:
        #: deployment.shielded passes every event on to an echo that takes them.
        self.takes_events = as_json

    def __call__(self, msg: str) -> None:
        from .observer import ProgressEvent, json_line

        if self.takes_events:
            line = json_line(msg)
        else:
            line = None if isinstance(msg, ProgressEvent) and not msg else scrub(msg)
        if line is None:
            return
        # sys.stderr is line-buffered (Python >= 3.9, a TTY or not): each line goes out at once.
        # A progress line that cannot be written is dropped; the migration it reports goes on.
        with contextlib.suppress(*_UNWRITABLE):
            sys.stderr.write(line + "\n")


def _log_json_given(flag: str | None, argv: list[str] | None = None) -> bool:
    """--log-format json given (``flag``, or in ``argv`` before it parses) or ALEMBIC_DEPLOY_LOG_FORMAT=json:
    known before the settings resolve, so an error in them is a JSON line too."""
    if argv is not None:
        own = argv[: argv.index("--")] if "--" in argv else argv
        flag = next((own[i + 1] for i, a in enumerate(own[:-1]) if a == "--log-format"), None) or next(
            (a.split("=", 1)[1] for a in own if a.startswith("--log-format=")), None)
    value = flag or os.environ.get("ALEMBIC_DEPLOY_LOG_FORMAT", "")
    return value.strip().lower() == "json"


def _json_from_env() -> bool:
    from .settings import TRUE_WORDS

    return os.environ.get("ALEMBIC_DEPLOY_JSON", "").strip().lower() in TRUE_WORDS


def _wants_json(argv: list[str]) -> bool:
    """``--json`` among the tool's own arguments (not those of ``run``'s CMD, after ``--``), or
    ALEMBIC_DEPLOY_JSON set: known before the arguments parse, so a usage error prints JSON too."""
    own = argv[: argv.index("--")] if "--" in argv else argv
    return "--json" in own or _json_from_env()


class _Main(click.Group):
    """The group: click's usage errors (exit 2) also print their ``--json`` document, and no
    output that cannot be written turns into an exit code of its own (see :func:`_settle_streams`)."""

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if args is None:  # the alembic-deploy command itself, not a caller handing it arguments
            manage_collector()
        argv = list(sys.argv[1:] if args is None else args)
        if not standalone_mode:
            return super().main(argv, prog_name, complete_var, standalone_mode, **extra)
        try:
            code = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
        except click.ClickException as exc:
            if _wants_json(argv):
                ctx: click.Context | None = getattr(exc, "ctx", None)  # a UsageError's
                command = _command_path(ctx)
                out(_error_json(ConfigError(exc.format_message()), command))
            if _log_json_given(None, argv):
                from .observer import event

                token = _LOG_JSON.set(True)
                _err(event("error", exc.format_message(), "error", kind=ConfigError.kind, exit_code=exc.exit_code,
                           fields={}))
                _LOG_JSON.reset(token)
            else:
                with contextlib.suppress(*_UNWRITABLE):
                    exc.show()
            code = exc.exit_code
        except click.exceptions.Abort:
            _err("Aborted!")
            code = AlembicDeployError.exit_code  # what click's own Abort exits with
        _settle_streams()
        sys.exit(code if isinstance(code, int) else EXIT_OK)


@click.group(cls=_Main, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="alembic-deploy")
@_global_options
@click.pass_context
def main(ctx: click.Context, /, **global_options: Any) -> None:
    """Deploy-time Alembic migrations: one migration lock per database, clear exit codes,
    a history journal. Runs on an unmodified Alembic project.

    alembic's global options (-c/--config, -n/--name, -x, --raiseerr) go before the command, as
    with alembic, or after it; given in both places, the one after the command wins (-x values
    from both are all passed)."""
    ctx.meta[_GLOBAL_KEY] = global_options


@main.command()
@click.argument("revision", default="head")
@settings_options(UPGRADE)
@_run
def upgrade(settings: Settings, revision: str) -> None:
    """Upgrade the database to REVISION (default: head), safely from many replicas at once."""
    from . import api

    report = api.upgrade(settings, revision, echo=_echo(settings))
    if settings.json:
        out(report.to_json())
    elif report.outcome == "noop" and settings.log_format == "text":  # the JSON log has its outcome event
        _err(report.render_text())


# Options stop at CMD: `run --migrate uvicorn app:app --port 8000` passes --port to uvicorn.
@main.command(context_settings={"allow_interspersed_args": False})
@click.option("--migrate", "mode_migrate", is_flag=True, help="Run the upgrade pipeline, then start CMD.")
@click.option("--wait-for-schema", "mode_wait", is_flag=True,
              help="Do not migrate: start CMD once the schema guard accepts the database.")
@click.option("--no-migrate", "mode_none", is_flag=True, help="Start CMD once the database answers.")
@settings_options(RUN)
@click.argument("command", nargs=-1, type=click.UNPROCESSED, metavar="-- CMD [ARGS]...")
@_run
def run(settings: Settings, mode_migrate: bool, mode_wait: bool, mode_none: bool, command: tuple[str, ...]) -> None:
    """Container entrypoint: wait for the database, migrate or wait for the schema, then exec CMD.

    CMD replaces this process (same PID), so it receives SIGTERM directly. The mode may also come
    from ALEMBIC_DEPLOY_RUN_MODE (migrate, wait-for-schema, no-migrate).
    """
    from .entrypoint import pick_mode
    from .entrypoint import run as run_entrypoint

    mode = pick_mode(settings, mode_migrate, mode_wait, mode_none)
    # A health gate given on this command line applies; one from the environment or pyproject.toml
    # is meant for the post-deploy `upgrade` (see entrypoint.prepare).
    given = click.get_current_context().params
    health_gate = bool(given.get("wait_healthy") or given.get("wait_ecs_service"))
    run_entrypoint(settings, mode, command, echo=_echo(settings), health_gate=health_gate)


@main.command()
@click.option("--resume", is_flag=True,
              help="Run the statements of the revision that did not run, then record it as applied.")
@click.option("--rollback-partial", is_flag=True,
              help="Undo the statements that ran with the matching statements of its downgrade().")
@click.option("--mark-applied", is_flag=True,
              help="Record the revision as applied without running anything (after completing it by hand).")
@click.option("--keep", multiple=True, metavar="NAME",
              help="With --rollback-partial: leave this table, column, index or constraint as it is (do not undo "
                   "the statement that created or dropped it), e.g. one that existed before the revision ran. "
                   "Repeatable.")
@click.option("--dry-run", is_flag=True, help="Print what the option would run, and change nothing.")
@settings_options(REPAIR)
@_run
def repair(settings: Settings, resume: bool, rollback_partial: bool, mark_applied: bool, keep: tuple[str, ...],
           dry_run: bool) -> None:
    """Settle a revision left partly applied (exit 8): a MySQL/MariaDB or SQLite revision that
    failed or died after some of its statements committed. Without an option, show it and the
    options; each option is checked against the schema and journaled."""
    from . import api

    chosen = [name for name, on in (("resume", resume), ("rollback-partial", rollback_partial),
                                     ("mark-applied", mark_applied)) if on]
    if len(chosen) > 1:
        raise ConfigError(f"Choose one of --resume, --rollback-partial and --mark-applied, not {len(chosen)}.")
    report = api.repair(settings, chosen[0] if chosen else None, echo=_echo(settings), dry_run=dry_run, keep=keep)
    if settings.json:
        out(report.to_json())


@main.command()
@click.option("--to", "to", metavar="REV", help="Roll back to REV, as `alembic downgrade REV` would.")
@click.option("--steps", type=int, metavar="N", help="Undo the last N revisions (in the order alembic undoes them).")
@click.option("--deploy", type=int, metavar="JOURNAL_ID",
              help="Undo what that deploy applied (see `history`), when nothing applied after it depends on it.")
@click.option("--force", is_flag=True,
              help="Run irreversible downgrades, and go below what the running code needs (schema guard).")
@click.option("--yes", is_flag=True, help="Run without asking (CI); without a terminal to ask on, it is required.")
@click.option("--dry-run", is_flag=True, help="Print the plan (and any refusal), and change nothing.")
@click.option("--code-head", metavar="REV",
              help="Head revision of the code that runs on the database afterwards (default: these scripts' heads).")
@click.option("--requires", multiple=True, metavar="REV",
              help="A revision that code passes the schema guard as requires= (repeatable).")
@settings_options(ROLLBACK)
@_run
def rollback(settings: Settings, to: str | None, steps: int | None, deploy: int | None, force: bool, yes: bool,
             dry_run: bool, code_head: str | None, requires: tuple[str, ...]) -> None:
    """Undo the last deploy (the version table as it was before the newest deploy the journal
    records applied), or roll back --to REV, --steps N or one --deploy JOURNAL_ID. Prints the plan
    first (each revision, its downgrade SQL, the lint's view), refuses irreversible revisions and a
    schema below what the running code needs unless --force, asks on a terminal (--yes in CI), then
    runs through the same pipeline as upgrade: lock, journal, timeouts, retries, signals."""
    from . import api
    from .rollback_plan import RollbackPlan, RollbackRequest

    def confirm(plan: RollbackPlan) -> bool:
        if yes:
            return True
        if not sys.stdin.isatty():
            raise ConfigError(
                f"rollback would undo {len(plan.steps)} revision(s) and there is no terminal to ask on: read the "
                "plan above and pass --yes to run it (--dry-run prints it without running)."
            )
        return click.confirm(f"Undo {len(plan.steps)} revision(s) as planned above?", default=False, err=True)

    request = RollbackRequest(to, steps, deploy, force, code_head, requires)
    report = api.rollback(settings, request, echo=_echo(settings), confirm=confirm, dry_run=dry_run)
    if settings.json:
        out(report.to_json())


@main.command()
@settings_options(STATUS)
@_run
def status(settings: Settings) -> None:
    """Current revision(s), heads, pending revisions and the last deploys. Exits 8, as a deploy
    would, when a revision is partly applied."""
    from . import api

    st = api.status(settings, echo=_echo(settings))
    if settings.json:
        from .report import to_json

        out(to_json(st.to_dict()))
        _exit_unfinished(st)
        return
    out(st.render_text())
    _exit_unfinished(st)


def _exit_unfinished(st: StatusReport) -> None:
    """A partly applied revision: say so on stderr, and exit with the code a deploy would (8)."""
    unfinished = st.unfinished
    if unfinished is None:
        return
    if not unfinished["exit_code"]:
        _err(f"note: {unfinished['message']}")
        return
    _error(unfinished["message"], unfinished["exit_code"], unfinished["error"].get("kind", "partial-migration"),
           unfinished["error"].get("fields"))
    sys.exit(unfinished["exit_code"])


@main.command()
@click.option("--limit", type=click.IntRange(1, 100_000), default=20, show_default=True, help="How many runs to show.")
@settings_options(HISTORY)
@_run
def history(settings: Settings, limit: int) -> None:
    """The deploy journal: who migrated what, when, how long, and the outcome."""
    from . import api

    rows = api.history(settings, limit=limit, echo=_echo(settings))
    if settings.json:
        from .report import document, journal_entry, to_json

        out(to_json(document("history", deploys=[journal_entry(row) for row in rows])))
    elif not rows:
        out("No deploys recorded yet.")
    else:
        from .report import history_table

        out(history_table(rows))


@main.command()
@settings_options(CHECK)
@_run
def check(settings: Settings) -> None:
    """For every pull request, with no database and without env.py: the revision graph (one head,
    no dangling down_revision, no cycle, no duplicate id, every file imports) and the lint of the
    SQL each revision renders for --dialect. Exits 5 on a graph problem or a finding at or above
    --fail-on that no `# alembic-deploy: allow RULE -- reason` line excuses."""
    from .check import check as check_project

    _show(settings, check_project(settings))


@main.command()
@settings_options(PLAN)
@_run
def plan(settings: Settings) -> None:
    """What `upgrade` would run, before it runs: the revisions the database (or one at --from REV,
    offline) has still to apply, each with the SQL it renders for --dialect, whether it runs in a transaction, its
    compatibility class (expand / contract / other), its author and the lint's findings. Exits 5 on
    a finding at or above --fail-on. --format markdown is for a pull-request comment (and is
    appended to $GITHUB_STEP_SUMMARY when set); --format sarif for GitHub code scanning."""
    from .plan import plan as plan_upgrade

    report = plan_upgrade(settings, echo=_echo(settings))
    if settings.json or settings.output_format in ("json", "sarif"):
        from .report import to_json

        out(to_json(report.to_sarif() if settings.output_format == "sarif" and not settings.json else report.to_dict()))
    elif settings.output_format == "markdown":
        markdown = report.render_markdown()
        out(markdown)
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            try:
                with open(summary, "a", encoding="utf-8") as stream:
                    stream.write(markdown)
            except OSError as exc:
                _err(f"warning: could not append the plan to $GITHUB_STEP_SUMMARY ({summary}): {exc}")
    else:
        out(report.render_text())
    promotion = report.promotion
    shown = promotion is not None and not promotion.blocking and (settings.json or settings.output_format != "text")
    _finish(promotion.problems if shown and promotion is not None else [], report.error())


def _finish(warnings: list[str], error: AlembicDeployError | None) -> None:
    """After a report: ``warnings`` its view did not show (in yellow), then its error and exit code."""
    for warning in warnings:
        _err(f"warning: {warning}", fg="yellow")
    if error is not None:
        _error(error.message, error.exit_code, error.kind)
        sys.exit(error.exit_code)


@main.command()
@settings_options(DRIFT)
@_run
def drift(settings: Settings) -> None:
    """Does the database's schema match its migrations? Replays the history up to the revision(s)
    the database is at into a scratch database on the same server (a temporary file for SQLite),
    compares tables, columns, indexes and constraints, and drops the scratch database. Exits 5
    with the list of differences, 0 when there are none."""
    from . import api

    _show(settings, api.drift(settings, echo=_echo(settings)))


@main.command()
@click.option("--database-url", "urls", multiple=True, metavar="[NAME=]URL",
              help="A database whose journal to read, named NAME in the report (default: the environments of "
                   "[tool.alembic-deploy.env.NAME] with a database-url, else DATABASE_URL / sqlalchemy.url). "
                   "Repeatable.")
@click.option("--database-secret", "secrets", multiple=True, metavar="[NAME=]SECRET",
              help="An AWS Secrets Manager secret (name or ARN) holding a database login, as for every command; "
                   "its journal is read as a --database-url's (needs alembic-deploy[aws]). Repeatable.")
@click.option("--env", "environments", multiple=True, metavar="NAME",
              help="Only this environment of the policy (repeatable; default: every one with a database).")
@click.option("--since", default="30d", show_default=True, metavar="N[h|d|w]",
              help="The window: runs started in the last N hours, days or weeks.")
@click.option("--format", "report_format", type=click.Choice(["text", "json", "html"]), default="text",
              show_default=True, help="text for a terminal, json (as --json), html: one self-contained page.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write the report to this file, not stdout.")
@settings_options(REPORT)
@_run
def report(settings: Settings, urls: tuple[str, ...], secrets: tuple[str, ...], environments: tuple[str, ...],
           since: str, report_format: str, output: str | None) -> None:
    """Deploys of one or several environments over a window: per environment the number of deploys,
    success rate, failures by outcome, duration p50/p95/max and lock-wait p95; per revision where
    and when it was applied and how long it took, the slowest, retries and blockers; the latest
    failures with their messages. An environment that cannot be read is a warning; exit 3 only
    when none can."""
    from . import api

    result = api.report(settings, urls, environments, since, secrets)
    chosen = "json" if settings.json else report_format
    text = result.to_json() if chosen == "json" else result.render_html() if chosen == "html" else result.render_text()
    if output is None:
        out(text)
    else:
        from pathlib import Path

        try:
            Path(output).write_text(text + "\n", encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"Could not write the report to {output}: {exc.strerror}. Give a path in a "
                              "folder that exists and can be written.") from None
    # The text view on stdout lists the warnings itself.
    _finish(result.warnings if chosen != "text" or output is not None else [], result.error())


def _show(settings: Settings, report: CheckReport | DriftReport) -> None:
    """A report on stdout (text, or its JSON document with --json); when it refuses, its error on
    stderr and its exit code."""
    if settings.json:
        from .report import to_json

        out(to_json(report.to_dict()))
    else:
        out(report.render_text())
    error = report.error()
    if error is not None:
        _error(error.message, error.exit_code, error.kind)
        sys.exit(error.exit_code)


class _CommandAfterDashes(click.Command):
    """A command whose arguments after ``--`` are kept whole as ``ctx.meta["command"]`` (a command
    line for somewhere else), instead of joining its own positional arguments."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            ctx.meta["command"] = tuple(args[args.index("--") + 1:])
            args = args[: args.index("--")]
        return super().parse_args(ctx, args)


@main.command("ecs-run", cls=_CommandAfterDashes, context_settings={"ignore_unknown_options": True})
@settings_options(ECS_RUN)
@click.argument("upgrade_args", nargs=-1, type=click.UNPROCESSED, metavar="[UPGRADE ARGS]... [-- CMD [ARGS]...]")
@_run
def ecs_run(settings: Settings, upgrade_args: tuple[str, ...]) -> None:
    """Run `alembic-deploy upgrade UPGRADE ARGS` (or CMD, after --) as a one-off ECS task, like a local
    command: the container's CloudWatch log lines on stdout as they come, and its exit code as
    ecs-run's. Exits 12 when the task stopped without one (why, from ECS), and 9 after stopping the
    task on SIGTERM/SIGINT. Options it does not know are the upgrade's (e.g. --env production). In a
    GitHub Actions step it also sets the step outputs task-arn and exit-code. --json: the container's
    lines go to stderr, and stdout gets ecs-run's document (task ARN, exit code, stop reason, seconds)."""
    from . import api

    ctx = click.get_current_context()
    command: tuple[str, ...] | None = ctx.meta.get("command")
    if command is not None and upgrade_args:
        raise ConfigError(
            f"ecs-run got both upgrade arguments ({' '.join(upgrade_args)}) and a command after --; give one: "
            "options before -- are passed to `alembic-deploy upgrade`, a command after -- replaces it.")
    if command is None:
        command = ("alembic-deploy", "upgrade", *_given_globals(ctx), *upgrade_args)
    elif not command:
        raise ConfigError("ecs-run got -- without a command after it: give the command, or drop the --.")
    if any(mask_url(arg) != arg for arg in command):
        raise ConfigError(
            "ecs-run would put a password (a URL's user:password@) into the task's command, "
            "which ECS keeps in the task (DescribeTasks) and CloudTrail records. Give the task its login through "
            "the task definition (DATABASE_URL from a secret) or --database-secret NAME, and leave it off the "
            "command line.")
    from .integrations.github.outputs import write_outputs

    try:
        # With --json stdout holds the one document: the container's lines go to stderr.
        result = api.ecs_run(settings, command, out=_err if settings.json else out, echo=_echo(settings))
    except AlembicDeployError as exc:
        write_outputs({"task-arn": str(exc.fields.get("task") or ""), "exit-code": str(exc.exit_code)})
        raise
    write_outputs({"task-arn": result.task_arn, "exit-code": str(result.exit_code)})
    if settings.json:
        from .report import document, to_json

        out(to_json(document("ecs-run", result.exit_code, ecs_task=result.to_dict())))
    sys.exit(result.exit_code)


def _given_globals(ctx: click.Context) -> list[str]:
    """alembic's global options given before ``ecs-run`` (``alembic-deploy -c x.ini ecs-run``), as
    arguments of the upgrade it runs in the task."""
    given = ctx.meta.get(_GLOBAL_KEY, {})
    args: list[str] = []
    for key, flag in (("config", "-c"), ("name", "-n")):
        if given.get(key):
            args += [flag, given[key]]
    for item in given.get("x") or ():
        args += ["-x", item]
    return args


@main.group()
def init() -> None:
    """Write files that wire alembic-deploy into a platform (see `init github-actions`)."""


@init.command("github-actions")
@click.option("--dir", "root", type=click.Path(file_okay=False), default=".", show_default=True,
              help="Repository root: the workflows go into DIR/.github/workflows.")
@click.option("--app", help="Name the defaults derive from (default: the repository folder's name).")
@click.option("--region", help="AWS region (default: AWS_REGION, else us-east-1).")
@click.option("--ecr-repository", help="ECR repository of the image (default: the app name).")
@click.option("--container", help="Container that runs the app and the migration (default: the app name).")
@click.option("--task-definition", help="Task definition family (default: the app name).")
@click.option("--role-arn", multiple=True, metavar="[ENV=]ARN",
              help="IAM role the deploy job assumes through OIDC, per environment (repeat) or for all. Required.")
@click.option("--cluster", multiple=True, metavar="[ENV=]NAME", help="ECS cluster (default: APP-ENV).")
@click.option("--service", multiple=True, metavar="[ENV=]NAME", help="ECS service (default: the app name).")
@click.option("--health-url", multiple=True, metavar="[ENV=]URL",
              help="URL the health gate waits for (2xx) before migrating (default: none).")
@click.option("--migrate-when", type=click.Choice(["post-deploy", "pre-deploy"]), default="post-deploy",
              show_default=True, help="Migrate after the new release is healthy, or before the service update.")
@click.option("--branch", default="main", show_default=True, help="The default branch: a push to it deploys dev.")
@click.option("--build-context", default=".", show_default=True, help="docker build's context folder.")
@click.option("--force", is_flag=True, help="Overwrite generated files you changed since.")
@_run
def github_actions(settings: Settings, root: str, app: str | None, force: bool, **given: Any) -> None:
    """Write a reusable deploy workflow (.github/workflows/alembic-deploy.yml) and its caller
    (promote.yml): dev on push, qa -> beta -> production on a version tag, any one by hand; the
    migration as `alembic-deploy ecs-run`. Values missing from the flags are asked for on a
    terminal (with defaults); a re-run rewrites only files still as generated, unless --force."""
    from pathlib import Path

    from . import api
    from .integrations.github.workflows import values_from, where_github_looks

    folder = Path(root).absolute()
    ask = _ask if sys.stdin.isatty() else None
    values = values_from(given, app or folder.name, ask)
    warning = where_github_looks(folder)
    if warning:
        _err(f"warning: {warning}")
    for written in api.init_github_actions(folder, values, force=force):
        note = " (you changed it since it was generated; --force overwrites it)" if written.action == "kept" else ""
        out(f"{written.action:<11} {written.path}{note}")
    _err("next: in the repository's settings, create the Environments dev, qa, beta and production (give "
         "production required reviewers: its job waits for them); in AWS, give each environment's role a trust "
         "policy for GitHub's OIDC provider (token.actions.githubusercontent.com, this repository and "
         "environment) and the rights to push to ECR, register task definitions, update the service, run, "
         "describe and stop tasks, pass the task's roles and read its log group.")


def _ask(question: str, default: str | None) -> str:
    answer: str = click.prompt(question, default=default, show_default=bool(default), err=True)
    return answer


@main.command("wait-ecs")
@settings_options(WAIT_ECS)
@_run
def wait_ecs(settings: Settings) -> None:
    """Wait until the ECS service of --wait-ecs-service runs its new task definition healthy: its
    PRIMARY deployment on the expected task definition (--ecs-task-definition; default: the
    service's), rolloutState COMPLETED (FAILED: rolled back by the circuit breaker, at once),
    running = desired, its load balancers' targets healthy; then the --wait-healthy URLs, if given.
    Exits 4 saying what was not healthy within --health-timeout."""
    from . import api

    health = api.wait_ecs(settings, echo=_echo(settings))
    if settings.json:
        from .report import document, to_json

        out(to_json(document("wait-ecs", ecs=health.to_dict())))


@main.command()
@click.option("--limit", type=click.IntRange(1, 100_000), default=20, show_default=True,
              help="How many backups to show.")
@settings_options(BACKUPS)
@_run
def backups(settings: Settings, limit: int) -> None:
    """The backups taken before migrating (and those that failed): where, how, how big, the revision
    the database was at and the deploy each protected."""
    from . import api

    rows = api.backups(settings, limit=limit, echo=_echo(settings))
    if settings.json:
        from .report import document, to_json

        out(to_json(document("backups", backups=rows)))
    elif not rows:
        out("No backups recorded yet.")
    else:
        from .backups.record import render_backups

        out(render_backups(rows))


@main.command()
@click.argument("given", metavar="BACKUP")
@click.option("--force", is_flag=True, help="Restore over a database that holds tables, replacing them.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (needed without a terminal).")
@settings_options(RESTORE)
@_run
def restore(settings: Settings, given: str, force: bool, yes: bool) -> None:
    """Restore BACKUP (an id from `alembic-deploy backups`, a file, an s3:// URL, or a snapshot ARN)
    into the database (--database-url for another one). Refuses a database that holds tables unless
    --force; asks first on a terminal (--yes skips it; without a terminal --yes is required). For a
    snapshot, prints the AWS CLI steps that restore it."""
    from . import api

    def confirm(question: str) -> bool:
        if not sys.stdin.isatty():
            return False
        return click.confirm(question, default=False, err=True)

    result = api.restore(settings, given, force=force, confirm=None if yes else confirm, echo=_echo(settings))
    if settings.json:
        from .report import to_json

        out(to_json(result.to_dict()))
    else:
        out(result.render_text())


@main.command()
@click.option("--keep", type=click.Path(file_okay=False), help="Create the sample project here and keep it.")
@settings_options(DEMO)
def demo(keep: str | None, **options: Any) -> None:
    """Create a sample Alembic project on SQLite and run the whole pipeline on it, twice."""
    from .demo import run_demo

    options = _merge_global(options)
    try:
        given = [f"-{k}" if k == "x" else f"--{k}" for k in ("config", "name", "x") if options[k]]
        if given:
            raise ConfigError(
                f"demo creates and migrates a sample project of its own, so {', '.join(given)} does not "
                "apply to it; run `alembic-deploy demo --keep DIR`, then `alembic-deploy -c DIR/alembic.ini status`."
            )
        code = run_demo(keep)
    except AlembicDeployError as exc:
        _err(f"error: {exc.message}", fg="red")
        code = exc.exit_code
    _settle_streams()
    sys.exit(code)
