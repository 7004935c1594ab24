"""The script of the composite action (``action.yml`` at the repository root), for teams that migrate
from the runner: ``python -m alembic_deploy.integrations.github.action``.

It runs ``alembic-deploy COMMAND --json`` with the action's inputs (``INPUT_*`` variables that
action.yml sets), lets its progress through on stderr, and from the JSON document:

* writes the step outputs ``current``, ``target``, ``applied-count``, ``exit-code`` and
  ``journal-id`` to ``$GITHUB_OUTPUT``;
* appends the result to ``$GITHUB_STEP_SUMMARY`` (Markdown);
* turns a failure into an ``::error file=...::`` annotation on the failing revision's file (the line
  of its ``def upgrade``), or a plain ``::error::`` when no revision is to blame;

then exits with alembic-deploy's exit code. The database URL reaches alembic-deploy through
``DATABASE_URL``, never its command line, and its password is masked in the job's log.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from .outputs import write_outputs

if TYPE_CHECKING:
    from collections.abc import Mapping

#: Inputs that become ``--flag VALUE`` when not empty, by input name.
VALUED: Final = {
    "config": "--config", "env": "--env", "database-secret": "--database-secret",
    "wait-timeout": "--wait-timeout", "lock-timeout-wait": "--lock-timeout-wait",
    "ddl-lock-timeout": "--ddl-lock-timeout", "statement-timeout": "--statement-timeout",
}


def _input(environ: Mapping[str, str], name: str) -> str:
    return environ.get("INPUT_" + name.upper().replace("-", "_"), "").strip()


def command_line(environ: Mapping[str, str]) -> list[str]:
    """``alembic-deploy COMMAND [REVISION] --json`` with the flags the inputs give, then ``args``."""
    command = _input(environ, "command") or "upgrade"
    argv = [sys.executable, "-m", "alembic_deploy", command]
    revision = _input(environ, "revision")
    if revision:
        argv.append(revision)
    for name, flag in VALUED.items():
        value = _input(environ, name)
        if value:
            argv += [flag, value]
    return [*argv, "--json", *shlex.split(_input(environ, "args"))]


def outputs(document: Mapping[str, Any] | None, exit_code: int) -> dict[str, str]:
    """The step outputs from the command's JSON document (empty strings where it says nothing)."""
    document = document or {}
    current = document.get("to_revisions", document.get("current")) or []
    applied = document.get("applied")
    journal_id = document.get("journal_id")
    return {
        "current": ",".join(current),
        "target": str(document.get("target") or ""),
        "applied-count": str(len(applied)) if isinstance(applied, list) else "",
        "exit-code": str(exit_code),
        "journal-id": "" if journal_id is None else str(journal_id),
    }


def summary(document: Mapping[str, Any] | None, exit_code: int, command: str) -> str:
    """The Markdown appended to ``$GITHUB_STEP_SUMMARY``."""
    if document is None:
        return f"### alembic-deploy {command}: exit {exit_code}\n\nNo JSON document was printed; see the log.\n"
    outcome = document.get("outcome") or ("ok" if exit_code == 0 else "failed")
    lines = [f"### alembic-deploy {command}: {outcome} (exit {exit_code})", "", "| | |", "|---|---|"]
    for label, key in (("database", "database"), ("environment", "environment"), ("target", "target"),
                       ("from", "from_revisions"), ("to", "to_revisions"), ("journal id", "journal_id")):
        value = document.get(key)
        if value not in (None, "", []):
            lines.append(f"| {label} | {', '.join(value) if isinstance(value, list) else value} |")
    applied = document.get("applied")
    if isinstance(applied, list):
        done = ", ".join(f"`{r['revision']}` ({r.get('duration', 0):.2f} s)" for r in applied)
        lines.append(f"| applied | {len(applied)}{': ' + done if done else ''} |")
    failed = document.get("failed_revision")
    if failed:
        lines.append(f"| failed | `{failed['revision']}` {failed.get('description') or ''} |")
    error = document.get("error")
    if error:
        lines += ["", f"**{error.get('kind')}**: {error.get('message')}"]
    return "\n".join(lines) + "\n"


def _escape(text: str, property_value: bool = False) -> str:
    """A workflow command's data (or property value) as the runner reads it."""
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return text.replace(":", "%3A").replace(",", "%2C") if property_value else text


def annotation(document: Mapping[str, Any] | None, exit_code: int, workspace: Path, config: Path,
               section: str = "alembic") -> str | None:
    """The ``::error`` line for a failed run: on the failing revision's file when there is one."""
    if exit_code == 0:
        return None
    error = (document or {}).get("error") or {}
    message = error.get("message") or f"alembic-deploy exited {exit_code}; see the log."
    title = f"alembic-deploy: {error.get('kind') or 'failed'} (exit {exit_code})"
    failed = (document or {}).get("failed_revision") or {}
    revision = failed.get("revision") or (error.get("fields") or {}).get("revision")
    located = _revision_file(str(revision), workspace, config, section) if revision else None
    where = ""
    if located is not None:
        path, line = located
        where = f"file={_escape(path, True)},line={line},"
    return f"::error {where}title={_escape(title, True)}::{_escape(message)}"


def _revision_file(revision: str, workspace: Path, config: Path, section: str) -> tuple[str, int] | None:
    """The file of ``revision`` relative to the workspace, and the line of its ``def upgrade``."""
    try:
        from ...alembic_env import revision_files

        files = revision_files(config, section)
    except Exception:  # noqa: BLE001 - an annotation without a file is still an annotation
        return None
    for found in files:
        if found.revision == revision:
            path = found.path.resolve()
            lines = found.source.splitlines()
            line = next((i for i, text in enumerate(lines, 1) if text.lstrip().startswith("def upgrade")), 1)
            try:
                return str(path.relative_to(workspace.resolve())), line
            except ValueError:
                return str(path), line
    return None


def _mask(url: str) -> None:
    from urllib.parse import urlsplit

    password = urlsplit(url).password
    if password:
        print(f"::add-mask::{password}", flush=True)


def main(environ: Mapping[str, str] | None = None) -> int:
    environ = os.environ if environ is None else environ
    env = dict(environ)
    url = _input(environ, "database-url")
    if url:
        _mask(url)
        env["DATABASE_URL"] = url
    argv = command_line(environ)
    command = argv[3]
    proc = subprocess.run(argv, stdout=subprocess.PIPE, text=True, env=env, check=False)
    try:
        document: dict[str, Any] | None = json.loads(proc.stdout)
    except ValueError:
        document = None
        sys.stdout.write(proc.stdout)
    exit_code = proc.returncode
    write_outputs(outputs(document, exit_code), environ)
    target = environ.get("GITHUB_STEP_SUMMARY")
    if target:
        try:
            with open(target, "a", encoding="utf-8") as stream:
                stream.write(summary(document, exit_code, command))
        except OSError as exc:  # a courtesy: the step's exit code is the migration's whatever happens here
            print(f"warning: could not append the result to $GITHUB_STEP_SUMMARY ({target}): {exc.strerror or exc}.",
                  file=sys.stderr)
    config = Path(_input(environ, "config") or "alembic.ini").absolute()
    line = annotation(document, exit_code, Path(environ.get("GITHUB_WORKSPACE") or os.getcwd()), config)
    if line:
        print(line, flush=True)
    return exit_code


if __name__ == "__main__":
    sys.exit(main())
