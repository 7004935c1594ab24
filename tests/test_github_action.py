"""The composite action (``action.yml`` at the repository root), run as the runner runs it: each step's
``run`` script under ``bash --noprofile --norc -eo pipefail``, its ``env`` and ``working-directory``
with the ``${{ inputs.* }}`` expressions replaced by the inputs (or their defaults), with
``GITHUB_OUTPUT``, ``GITHUB_STEP_SUMMARY`` and ``GITHUB_WORKSPACE`` pointing at files and folders of
the test, against real projects on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import Database, url_text

ACTION = Path(__file__).resolve().parents[1] / "action.yml"
_EXPRESSION = re.compile(r"\$\{\{\s*inputs\.([\w-]+)\s*\}\}")


@dataclass
class ActionRun:
    exit_code: int
    stdout: str
    stderr: str
    outputs: dict[str, str]
    summary: str


def run_action(workspace: Path, **given: str) -> ActionRun:
    """Run action.yml's steps in ``workspace`` with inputs ``given`` (input names with _ for -)."""
    action: dict[str, Any] = yaml.safe_load(ACTION.read_text())
    inputs = {name: str(spec.get("default", "")) for name, spec in action["inputs"].items()}
    inputs.update({name.replace("_", "-"): value for name, value in given.items()})
    unknown = set(inputs) - set(action["inputs"])
    assert not unknown, f"not inputs of action.yml: {unknown}"

    def expand(text: str) -> str:
        return _EXPRESSION.sub(lambda m: inputs[m.group(1)], str(text))

    output_file, summary_file = workspace / "github_output", workspace / "step_summary"
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ALEMBIC_DEPLOY_", "GITHUB_", "INPUT_"))}
    base.pop("DATABASE_URL", None)
    base.update(GITHUB_OUTPUT=str(output_file), GITHUB_STEP_SUMMARY=str(summary_file), GITHUB_WORKSPACE=str(workspace),
                GITHUB_ACTION_PATH=str(ACTION.parent))  # where the runner checked out the action
    stdout = stderr = ""
    exit_code = 0
    for step in action["runs"]["steps"]:
        condition = step.get("if")
        if condition is not None:
            match = re.fullmatch(r"inputs\.([\w-]+) == '([^']*)'", condition)
            assert match, f"the test reads only `inputs.X == 'v'` conditions, not {condition!r}"
            if inputs[match.group(1)] != match.group(2):
                continue
        assert step["shell"] == "bash"
        script = workspace / "step.sh"
        script.write_text(step["run"])
        proc = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)],
            cwd=workspace / expand(step.get("working-directory", ".")),
            env={**base, **{k: expand(v) for k, v in step.get("env", {}).items()}},
            capture_output=True, text=True, timeout=300)
        stdout, stderr, exit_code = stdout + proc.stdout, stderr + proc.stderr, proc.returncode
        if exit_code:
            break
    outputs = dict(line.split("=", 1) for line in output_file.read_text().splitlines()) if output_file.is_file() else {}
    summary = summary_file.read_text() if summary_file.is_file() else ""
    return ActionRun(exit_code, stdout, stderr, outputs, summary)


def _python() -> dict[str, str]:
    """The inputs that point the action at this environment's interpreter, where alembic-deploy is."""
    return {"python": sys.executable, "install": "false"}


def test_upgrade_on_sqlite_sets_the_outputs_and_the_summary(make_project: Any, tmp_path: Path) -> None:
    project = make_project("sync", "repo/app")
    workspace = tmp_path / "repo"
    run = run_action(workspace, working_directory="app", database_url=f"sqlite:///{tmp_path / 'app.db'}",
                     env="production", **_python())
    assert run.exit_code == 0, run.stderr
    assert run.outputs == {"current": "a3_seed", "target": "head", "applied-count": "3", "exit-code": "0",
                           "journal-id": "1"}
    assert "### alembic-deploy upgrade: applied (exit 0)" in run.summary
    assert "| applied | 3: `a1_users`" in run.summary and "| environment | production |" in run.summary
    assert "::error" not in run.stdout
    assert project.is_dir()

    again = run_action(workspace, working_directory="app", database_url=f"sqlite:///{tmp_path / 'app.db'}",
                       **_python())
    assert again.exit_code == 0 and again.outputs["applied-count"] == "0" and again.outputs["current"] == "a3_seed"


def test_a_failing_revision_is_annotated_on_its_file_and_fails_the_step(make_project: Any, tmp_path: Path) -> None:
    make_project("failing", "repo/service")
    workspace = tmp_path / "repo"
    run = run_action(workspace, working_directory="service", database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                     **_python())
    assert run.exit_code == 7
    assert run.outputs["exit-code"] == "7" and run.outputs["applied-count"] == "3"
    assert run.outputs["current"] == "a3_seed" and run.outputs["journal-id"] == "1"
    source = (workspace / "service/migrations/versions/a4_broken.py").read_text().splitlines()
    line = next(i for i, text in enumerate(source, 1) if text.startswith("def upgrade"))
    annotation = next(text for text in run.stdout.splitlines() if text.startswith("::error"))
    assert annotation.startswith(f"::error file=service/migrations/versions/a4_broken.py,line={line},"
                                 "title=alembic-deploy%3A migration-failed (exit 7)::Revision a4_broken")
    assert "| failed | `a4_broken`" in run.summary and "**migration-failed**" in run.summary


def test_unwritable_output_and_summary_files_keep_the_migrations_exit_code(make_project: Any, tmp_path: Path) -> None:
    """qa: $GITHUB_OUTPUT / $GITHUB_STEP_SUMMARY that cannot be written (here folders) made the step
    exit 1 with a traceback instead of the migration's 7; now each is a warning."""
    make_project("failing", "repo/service")
    workspace = tmp_path / "repo"
    (workspace / "github_output").mkdir()
    (workspace / "step_summary").mkdir()
    run = run_action(workspace, working_directory="service", database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
                     **_python())
    assert run.exit_code == 7, run.stderr
    assert "Traceback" not in run.stderr and "could not write the step outputs" in run.stderr
    assert "could not append the result to $GITHUB_STEP_SUMMARY" in run.stderr


@pytest.mark.slow
def test_without_alembic_deploy_it_installs_the_actions_own_source_tree(make_project: Any, tmp_path: Path) -> None:
    """The package is not on PyPI: by default the action installs the source tree it was checked out
    from (with its extras) into the project's interpreter, here a new virtual environment (pip
    fetches the dependencies from the package index)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    make_project("sync", "repo/app")
    run = run_action(tmp_path / "repo", working_directory="app", database_url=f"sqlite:///{tmp_path / 'app.db'}",
                     python=str(venv / "bin" / "python"))
    assert run.exit_code == 0, run.stderr
    assert run.outputs["applied-count"] == "3" and run.outputs["exit-code"] == "0"
    installed = subprocess.run([str(venv / "bin" / "python"), "-c", "import alembic_deploy, boto3, httpx"],
                               capture_output=True, text=True, timeout=60)
    assert installed.returncode == 0, installed.stderr


def test_the_database_password_is_masked_and_never_written(make_project: Any, tmp_path: Path,
                                                           pg_db: Database) -> None:
    """The URL goes in as DATABASE_URL (never on a command line); its password is registered with
    the runner's masking and appears nowhere else (PostgreSQL here trusts local logins, so any
    password connects)."""
    make_project("sync", "repo")
    url = url_text(pg_db.url, password="s3cret-Pw")
    run = run_action(tmp_path / "repo", database_url=url, args="--wait-timeout 30", **_python())
    assert run.exit_code == 0, run.stderr
    assert run.stdout.splitlines()[0] == "::add-mask::s3cret-Pw"
    rest = "\n".join(run.stdout.splitlines()[1:]) + run.stderr + run.summary + "".join(run.outputs.values())
    assert "s3cret-Pw" not in rest
    assert "***" in run.summary  # the summary's database line, masked by alembic-deploy itself
