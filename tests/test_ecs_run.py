"""``alembic-deploy ecs-run`` against ECS and CloudWatch Logs served by moto (a local server reached
through boto3's ``AWS_ENDPOINT_URL``, :mod:`aws_server`), as real subprocesses.

moto runs no containers. What a container does is done by the test, each time said in the test:

* its task is held RUNNING through moto's state manager (``/moto-api/state-manager/set-transition``
  for model ``ecs::task``, manual progression that never advances on its own);
* its log lines are written into its awslogs stream with the CloudWatch Logs API, as the awslogs
  driver writes them;
* its end (the container's exit code, ``stopCode``, ``stoppedReason``, the container's ``reason``,
  which moto cannot express through its API) is set on moto's own backend objects
  (``moto.ecs.models.ecs_backends``): the server runs in a thread of this process
  (``ThreadedMotoServer``), so the test reaches them directly.

Every wait is on a line of the process's output or its exit, never on a duration.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from alembic_deploy.integrations.aws.ecs_run import failure, run_tags, started_by
from alembic_deploy.integrations.github.workflows import render, values_from
from aws_server import REGION, MotoServer
from helpers import invoke_cli, spawn_cli

ACCOUNT = "123456789012"  # moto's default account
CLUSTER = "apps"
LOG_GROUP = "/ecs/shop"
DEADLINE = 120.0
GITHUB = {"GITHUB_RUN_ID": "4242", "GITHUB_RUN_ATTEMPT": "2", "GITHUB_REPOSITORY": "acme/shop",
          "GITHUB_WORKFLOW": "Deploy", "GITHUB_JOB": "deploy", "GITHUB_SHA": "0123abcd",
          "GITHUB_ACTOR": "octo-cat", "GITHUB_REF": "refs/heads/main"}


class Lines:
    """Lines a process writes to one of its pipes, collected by a thread as they arrive."""

    def __init__(self, stream: Any) -> None:
        self.lines: list[str] = []
        self.done = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self.done = True
            self._changed.notify_all()

    def wait_for(self, text: str) -> str:
        """The first line containing ``text``, once written (fails when the stream ends without it)."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: self.done or any(text in line for line in self.lines), timeout=DEADLINE)
            match = next((line for line in self.lines if text in line), None)
        assert found and match is not None, f"no line with {text!r} in {self.lines}"
        return match

    @property
    def text(self) -> str:
        self._thread.join(DEADLINE)
        return "\n".join(self.lines)


@dataclass
class Scene:
    """A VPC, a cluster, the app's service and its task definition (container ``app`` logging to
    awslogs, optionally a sidecar), in moto."""

    aws: MotoServer
    subnet: str = ""
    security_group: str = ""
    task_definition: str = ""
    started: list[subprocess.Popen[str]] = field(default_factory=list)

    def build(self, sidecar: bool = False) -> Scene:
        ec2 = self.aws.client("ec2")
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        # Fargate VPCs have DNS hostnames on; moto's awsvpc task needs it (it names the ENI's DNS name).
        ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
        self.subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
        self.security_group = ec2.create_security_group(GroupName="app", Description="app", VpcId=vpc)["GroupId"]
        ecs = self.aws.client("ecs")
        ecs.create_cluster(clusterName=CLUSTER)
        containers = [{"name": "app", "image": "acme/shop:1", "essential": True, "memory": 256,
                       "logConfiguration": {"logDriver": "awslogs", "options": {
                           "awslogs-group": LOG_GROUP, "awslogs-region": REGION, "awslogs-stream-prefix": "shop"}}}]
        if sidecar:
            containers.append({"name": "datadog", "image": "datadog/agent", "essential": False, "memory": 128})
        self.task_definition = ecs.register_task_definition(
            family="shop", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
            containerDefinitions=containers)["taskDefinition"]["taskDefinitionArn"]
        ecs.create_service(
            cluster=CLUSTER, serviceName="web", taskDefinition=self.task_definition, desiredCount=1,
            launchType="FARGATE", networkConfiguration={"awsvpcConfiguration": {
                "subnets": [self.subnet], "securityGroups": [self.security_group], "assignPublicIp": "ENABLED"}})
        self.aws.client("logs").create_log_group(logGroupName=LOG_GROUP)
        return self

    def spawn(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[
            subprocess.Popen[str], Lines, Lines]:
        proc = spawn_cli(tmp_path, "ecs-run", "--poll-interval", "0.2", *args,
                         env={**self.aws.env, **GITHUB, **(env or {})})
        self.started.append(proc)
        return proc, Lines(proc.stdout), Lines(proc.stderr)

    def task(self, task_arn: str) -> Any:
        """moto's own object for the task (its backend, in this process)."""
        from moto.ecs.models import ecs_backends

        return ecs_backends[ACCOUNT][REGION].tasks[CLUSTER][task_arn]

    def log(self, task_arn: str, *messages: str, container: str = "app") -> None:
        """Write lines into the task's awslogs stream, as the awslogs driver does."""
        logs = self.aws.client("logs")
        stream = f"shop/{container}/{task_arn.rsplit('/', 1)[-1]}"
        try:
            logs.create_log_stream(logGroupName=LOG_GROUP, logStreamName=stream)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        now = int(time.time() * 1000)
        logs.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream,
                            logEvents=[{"timestamp": now, "message": m} for m in messages])

    def exit(self, task_arn: str, code: int | None, **stopped: Any) -> None:
        """End the task as ECS would once its container exited: the container's exit code (or
        none), the task's stop fields, lastStatus STOPPED; on moto's backend objects."""
        task = self.task(task_arn)
        task.containers[0].exitCode = code
        for name, value in stopped.items():
            setattr(task, name, value)
        task.last_status = "STOPPED"
        task.desired_status = "STOPPED"


def _state_manager(aws: MotoServer, action: str, body: dict[str, Any]) -> None:
    request = urllib.request.Request(f"{aws.endpoint}/moto-api/state-manager/{action}",
                                     data=json.dumps(body).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        response.read()


@pytest.fixture
def scene(aws: MotoServer) -> Iterator[Scene]:
    """The ECS scene, with tasks held RUNNING (moto's state manager: manual progression that needs
    far more describes than any test makes) until the test ends them."""
    _state_manager(aws, "set-transition", {"model_name": "ecs::task",
                                           "transition": {"progression": "manual", "times": 10**9}})
    built = Scene(aws)
    try:
        yield built
    finally:
        for proc in built.started:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        _state_manager(aws, "unset-transition", {"model_name": "ecs::task"})


def _started(stderr: Lines) -> str:
    """The task's ARN, from ecs-run's 'started task' line."""
    return stderr.wait_for("ecs-run: started task").split("started task ", 1)[1].split(" ", 1)[0]


def test_runs_upgrade_in_the_services_task_streams_its_logs_and_exits_with_its_code(scene: Scene,
                                                                                     tmp_path: Path) -> None:
    """The service's task definition, network configuration and launch type; the container command
    ``alembic-deploy upgrade`` plus the options ecs-run does not know; startedBy and tags naming the
    GitHub run; log lines shown while the task runs and after it stopped; exit code 7 is the
    container's. The container's lines are written with the Logs API; its exit code and STOPPED
    are set on moto's backend objects."""
    scene.build()
    proc, out, err = scene.spawn(tmp_path, "--service", "web", "--cluster", CLUSTER, "--env", "production",
                                 "--ddl-lock-timeout", "5")
    task_arn = _started(err)
    described = scene.aws.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[task_arn], include=["TAGS"])
    task = described["tasks"][0]
    assert task["overrides"]["containerOverrides"] == [
        {"name": "app", "command": ["alembic-deploy", "upgrade", "--env", "production", "--ddl-lock-timeout", "5"]}]
    assert task["taskDefinitionArn"] == scene.task_definition
    assert task["launchType"] == "FARGATE"
    assert task["startedBy"] == "alembic-deploy/gh/4242/2"
    tags = {t["key"]: t["value"] for t in task["tags"]}
    assert tags["github:repository"] == "acme/shop" and tags["github:run-id"] == "4242"
    assert tags["alembic-deploy"] == "ecs-run"
    assert scene.task(task_arn).network_configuration == {"awsvpcConfiguration": {
        "subnets": [scene.subnet], "securityGroups": [scene.security_group], "assignPublicIp": "ENABLED"}}

    scene.log(task_arn, "Upgrading to head", "applied 1a2b3c")
    out.wait_for("applied 1a2b3c")  # shown while the task still runs
    assert proc.poll() is None
    scene.log(task_arn, "revision 4d5e6f failed: lock timeout")
    scene.exit(task_arn, 7)
    assert proc.wait(DEADLINE) == 7
    assert out.text.splitlines() == ["Upgrading to head", "applied 1a2b3c", "revision 4d5e6f failed: lock timeout"]
    assert "Traceback" not in err.text


def test_flags_give_the_task_without_a_service_and_a_command_after_dashes_replaces_upgrade(
        scene: Scene, tmp_path: Path) -> None:
    """--task-definition, --subnet, --security-group and --no-assign-public-ip instead of a service;
    the command after ``--`` runs as is; exit 0 is the container's (set on moto's backend)."""
    scene.build()
    proc, _out, err = scene.spawn(
        tmp_path, "--cluster", CLUSTER, "--task-definition", "shop", "--subnet", scene.subnet,
        "--security-group", scene.security_group, "--no-assign-public-ip", "--", "python", "-m", "app.migrate")
    task_arn = _started(err)
    task = scene.task(task_arn)
    assert task.overrides == {"containerOverrides": [{"name": "app", "command": ["python", "-m", "app.migrate"]}]}
    assert task.network_configuration["awsvpcConfiguration"] == {
        "subnets": [scene.subnet], "securityGroups": [scene.security_group], "assignPublicIp": "DISABLED"}
    scene.exit(task_arn, 0)
    assert proc.wait(DEADLINE) == 0, err.text


def test_exit_code_is_the_named_containers_not_the_sidecars(scene: Scene, tmp_path: Path) -> None:
    """A task with a sidecar that exited 0: ecs-run exits with --container app's 3. moto describes
    only a task definition's first container, so the test adds the sidecar's container to moto's
    task object and sets both exit codes there."""
    scene.build(sidecar=True)
    proc, _out, err = scene.spawn(tmp_path, "--service", f"{CLUSTER}/web", "--container", "app")
    task_arn = _started(err)
    task = scene.task(task_arn)
    sidecar = type(task.containers[0]).__new__(type(task.containers[0]))
    sidecar.__dict__.update(task.containers[0].__dict__, name="datadog", exitCode=0)
    task.containers.insert(0, sidecar)
    task.containers[1].exitCode = 3
    task.last_status = "STOPPED"
    assert proc.wait(DEADLINE) == 3, err.text


def test_a_task_with_two_containers_needs_container(scene: Scene, tmp_path: Path) -> None:
    """Without --container, a two-container task definition is refused before any task starts."""
    scene.build(sidecar=True)
    run = invoke_cli(tmp_path, "ecs-run", "--service", "web", "--cluster", CLUSTER, env=scene.aws.env)
    assert run.returncode == 2
    assert "app, datadog" in run.stderr and "--container" in run.stderr
    assert scene.aws.client("ecs").list_tasks(cluster=CLUSTER)["taskArns"] == []


@pytest.mark.parametrize(("stopped", "expected"), [
    ({"stop_code": "TaskFailedToStart", "stopped_reason": "CannotPullContainerError: pull image manifest has been "
      "retried 5 time(s): failed to resolve ref docker.io/acme/shop:1: not found"}, "image could not be pulled"),
    ({"stop_code": "TaskFailedToStart", "stopped_reason": "ResourceInitializationError: unable to pull secrets or "
      "registry auth: execution resource retrieval failed: unable to retrieve secret from asm"},
     "secretsmanager:GetSecretValue"),
    ({"stop_code": "EssentialContainerExited", "stopped_reason": "Essential container in task exited"},
     "Another essential container"),
], ids=["image-pull", "secrets-fetch", "essential-container-exited"])
def test_a_task_that_stopped_without_an_exit_code_exits_12_saying_why(scene: Scene, tmp_path: Path,
                                                                      stopped: dict[str, str], expected: str) -> None:
    """The container's exit code null, the task's stopCode and stoppedReason as ECS reports them
    (set on moto's backend objects: moto's API cannot express them): exit 12 with what ECS said and
    what to do, in one paragraph."""
    scene.build()
    proc, _out, err = scene.spawn(tmp_path, "--service", "web", "--cluster", CLUSTER)
    task_arn = _started(err)
    scene.exit(task_arn, None, **stopped)
    assert proc.wait(DEADLINE) == 12
    error = next(line for line in err.text.splitlines() if line.startswith("error:"))
    assert stopped["stopped_reason"] in error and stopped["stop_code"] in error and expected in error
    assert "Traceback" not in err.text


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_task_waits_for_it_and_exits_9(scene: Scene, tmp_path: Path, signum: int) -> None:
    """A cancelled GitHub job: ecs-run calls StopTask with a reason naming the run, waits until the
    task is STOPPED (moto's StopTask stops it), shows the lines it wrote meanwhile, exits 9."""
    scene.build()
    proc, out, err = scene.spawn(tmp_path, "--service", "web", "--cluster", CLUSTER)
    task_arn = _started(err)
    scene.log(task_arn, "applying 1a2b3c")
    out.wait_for("applying 1a2b3c")
    proc.send_signal(signum)
    assert proc.wait(DEADLINE) == 9
    name = signal.Signals(signum).name
    task = scene.aws.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[task_arn])["tasks"][0]
    assert task["lastStatus"] == "STOPPED"
    assert task["stoppedReason"] == f"alembic-deploy ecs-run cancelled by {name} (GitHub run acme/shop#4242)"
    assert f"Interrupted by {name}: stopped ECS task {task_arn.rsplit('/', 1)[-1]}" in err.text
    assert "Traceback" not in err.text


def test_timeout_stops_the_task_and_exits_12(scene: Scene, tmp_path: Path) -> None:
    """--timeout reached while the task (held RUNNING by the state manager) still runs: StopTask,
    then exit 12 naming the timeout."""
    scene.build()
    proc, _out, err = scene.spawn(tmp_path, "--service", "web", "--cluster", CLUSTER, "--timeout", "1")
    task_arn = _started(err)
    assert proc.wait(DEADLINE) == 12
    assert "still running after --timeout 1 s" in err.text
    task = scene.aws.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[task_arn])["tasks"][0]
    assert task["lastStatus"] == "STOPPED" and "--timeout of 1 s reached" in task["stoppedReason"]


@pytest.mark.parametrize(("args", "message"), [
    (["--service", "web"], "needs the cluster"),
    (["--cluster", CLUSTER, "--service", "nope"], "ECS service nope was not found on cluster apps"),
    (["--cluster", CLUSTER], "needs a task definition"),
    (["--cluster", CLUSTER, "--task-definition", "shop"], "needs subnets"),
    (["--cluster", CLUSTER, "--service", "web", "heads", "--", "echo"], "give one"),
    (["--cluster", CLUSTER, "--service", "web", "--launch-type", "LAMBDA"], "--launch-type must be"),
    # qa: botocore's whole text after the code ("An error occurred (...) when calling ..") is left out
    (["--cluster", "no-such-cluster", "--service", "web"], "ClusterNotFoundException (Cluster not found). Check"),
    (["--cluster", CLUSTER, "--task-definition", "no-such-family", "--subnet", "subnet-1"],
     "no-such-family: ClientException (Unable to describe task definition). Check"),
], ids=["no-cluster", "unknown-service", "no-task-definition", "awsvpc-without-subnets", "args-and-command",
        "bad-launch-type", "unknown-cluster", "unknown-task-definition"])
def test_bad_input_is_refused_with_exit_2_before_a_task_starts(scene: Scene, tmp_path: Path, args: list[str],
                                                               message: str) -> None:
    scene.build()
    run = invoke_cli(tmp_path, "ecs-run", *args, env=scene.aws.env)
    assert run.returncode == 2, run.stderr
    assert message in run.stderr and "Traceback" not in run.stderr and "An error occurred" not in run.stderr
    assert scene.aws.client("ecs").list_tasks(cluster=CLUSTER)["taskArns"] == []


def test_without_boto3_ecs_run_says_which_extra_to_install(tmp_path: Path) -> None:
    """boto3 missing: exit 2 naming the extra (the module hidden from the subprocess)."""
    from helpers import run_cli, without_modules

    run = run_cli(tmp_path, "ecs-run", "--cluster", "c", "--service", "web",
                  env=without_modules(tmp_path / "stubs", "boto3"))
    assert run.returncode == 2, run.stderr
    assert "pip install 'alembic-deploy[aws]'" in run.stderr


def test_started_by_and_tags_fit_what_ecs_accepts() -> None:
    environ = {"GITHUB_RUN_ID": "1" * 200, "GITHUB_REPOSITORY": "acme/shop", "GITHUB_REF": "refs/pull/7/merge",
               "GITHUB_WORKFLOW": "Deploy (prod) #1 <main>"}
    assert len(started_by(environ)) == 128 and started_by({}) == "alembic-deploy"
    tags = {t["key"]: t["value"] for t in run_tags(environ)}
    assert tags["github:workflow"] == "Deploy _prod_ _1 _main_"
    assert len(tags["github:run-id"]) == 200


@pytest.mark.parametrize(("task", "expected"), [
    ({"stopCode": "TaskFailedToStart", "stoppedReason": "RESOURCE:MEMORY"}, "no capacity"),
    ({"stopCode": "SpotInterruption", "stoppedReason": "Your Spot Task was interrupted."}, "Fargate Spot"),
    ({"stopCode": "EssentialContainerExited", "stoppedReason": "Essential container in task exited",
      "containers": [{"name": "app", "reason": "OutOfMemoryError: Container killed due to memory usage"}]},
     "ran out of memory"),
], ids=["capacity", "spot", "oom"])
def test_failure_explains_what_ecs_reported(task: dict[str, Any], expected: str) -> None:
    """The reasons of DescribeTasks answers as the ECS documentation shows them ("stopped tasks
    errors"), turned into one paragraph with what to do."""
    task = {"taskArn": "arn:aws:ecs:us-east-1:1:task/apps/abc", **task}
    container = next(iter(task.get("containers", [])), None)
    error = failure(task, "app", container)
    assert expected in error.message and task["stoppedReason"] in error.message and error.exit_code == 12


@pytest.mark.parametrize("end", ["container-exits-7", "job-cancelled"])
def test_the_generated_workflows_migrate_step_fails_the_job_with_the_containers_exit_code(
        scene: Scene, tmp_path: Path, end: str) -> None:
    """The migrate step init github-actions writes, run as the runner runs it (bash -eo pipefail,
    its expressions replaced by this job's values, a GITHUB_OUTPUT file): ecs-run on the deployed
    task definition. The container's exit 7 (set on moto's backend) fails the step with 7 and is its
    exit-code output; a cancelled job's SIGINT, sent to the step's process as the runner does,
    reaches ecs-run (the step execs it), which stops the task and exits 9."""
    scene.build()
    files = render(values_from({"role_arn": ("arn:aws:iam::123456789012:role/deploy",), "container": "app"}, "shop"))
    workflow = yaml.safe_load(next(text for path, text in files.items() if path.name == "alembic-deploy.yml"))
    job = workflow["jobs"]["deploy"]
    step = next(s for s in job["steps"] if s.get("id") == "migrate")
    values = {"inputs.ecs-cluster": CLUSTER, "inputs.ecs-service": "web", "inputs.environment": "production",
              "steps.deploy.outputs.task-definition-arn": scene.task_definition}
    env = {k: re.sub(r"\$\{\{\s*([\w.-]+)\s*\}\}", lambda m: values[m.group(1)], str(v))
           for k, v in {**job["env"], **step["env"]}.items()}
    output = tmp_path / "github_output"
    (tmp_path / "step.sh").write_text(step["run"])
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    proc = subprocess.Popen(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", str(tmp_path / "step.sh")], cwd=tmp_path,
        env={**os.environ, **scene.aws.env, **GITHUB, **env, "PATH": path, "GITHUB_OUTPUT": str(output),
             "ALEMBIC_DEPLOY_ECS_POLL_INTERVAL": "0.2"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    scene.started.append(proc)
    err = Lines(proc.stderr)
    _out = Lines(proc.stdout)
    task_arn = _started(err)
    command = scene.task(task_arn).overrides["containerOverrides"][0]["command"]
    assert command == ["alembic-deploy", "upgrade", "--env", "production"]
    if end == "job-cancelled":
        proc.send_signal(signal.SIGINT)
        assert proc.wait(DEADLINE) == 9, err.text
        assert scene.aws.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[task_arn])["tasks"][0][
            "lastStatus"] == "STOPPED"
        assert output.read_text() == f"task-arn={task_arn}\nexit-code=9\n"
        return
    scene.exit(task_arn, 7)
    assert proc.wait(DEADLINE) == 7, err.text
    assert output.read_text() == f"task-arn={task_arn}\nexit-code=7\n"


def test_the_services_capacity_provider_strategy_and_a_task_without_awslogs(scene: Scene, tmp_path: Path) -> None:
    """A service on FARGATE_SPOT by capacity provider strategy (set on moto's backend objects): the
    task gets the strategy, not a launch type. Its task definition logs elsewhere (no awslogs):
    ecs-run says its output is not shown and still exits with the container's code (0, set on moto's
    backend)."""
    scene.build()
    ecs = scene.aws.client("ecs")
    quiet = ecs.register_task_definition(
        family="quiet", networkMode="awsvpc", requiresCompatibilities=["FARGATE"], cpu="256", memory="512",
        containerDefinitions=[{"name": "app", "image": "acme/shop:1", "essential": True, "memory": 256}],
    )["taskDefinition"]["taskDefinitionArn"]
    strategy = [{"capacityProvider": "FARGATE_SPOT", "weight": 1, "base": 0}]
    ecs.create_service(
        cluster=CLUSTER, serviceName="spot", taskDefinition=quiet, desiredCount=1, capacityProviderStrategy=strategy,
        networkConfiguration={"awsvpcConfiguration": {"subnets": [scene.subnet],
                                                      "securityGroups": [scene.security_group]}})
    # moto keeps no capacity provider strategy on a service (it gives every service launch type EC2):
    # the service is given the one AWS would report, on moto's backend object.
    from moto.ecs.models import ecs_backends

    service = next(s for s in ecs_backends[ACCOUNT][REGION].services.values() if s.name == "spot")
    service.launch_type = None
    service.capacity_provider_strategy = strategy
    for deployment in service.deployments:
        deployment.pop("launchType", None)
        deployment["capacityProviderStrategy"] = strategy
    described = ecs.describe_services(cluster=CLUSTER, services=["spot"])["services"][0]
    assert described["capacityProviderStrategy"] == strategy and "launchType" not in described
    proc, _out, err = scene.spawn(tmp_path, "--service", "spot", "--cluster", CLUSTER)
    task_arn = _started(err)
    err.wait_for("has no awslogs log configuration")
    task = scene.task(task_arn)
    assert task.capacity_provider_name == "FARGATE_SPOT" and task.launch_type == ""
    scene.exit(task_arn, 0)
    assert proc.wait(DEADLINE) == 0, err.text


def _rollout(state: str, running: int, reason: str, task_definition: str) -> None:
    """The web service's PRIMARY deployment in rollout ``state`` with ``running`` tasks, on moto's
    backend objects (moto's API cannot set a rolloutState)."""
    from moto.ecs.models import ecs_backends

    service = ecs_backends[ACCOUNT][REGION].services[f"{CLUSTER}:web"]
    service.deployments = [{"id": "ecs-svc/1", "status": "PRIMARY", "taskDefinition": task_definition,
                            "desiredCount": service.desired_count, "pendingCount": 0, "runningCount": running,
                            "rolloutState": state, "rolloutStateReason": reason}]
    service.running_count = running


def test_wait_ecs_service_gates_the_task_on_the_service_running_healthy(scene: Scene, tmp_path: Path) -> None:
    """--wait-ecs-service (the health gate of integrations/aws/ecs_health.py, run on the runner): a
    deployment the circuit breaker rolled back fails it at once with exit 4 and no task starts; a
    COMPLETED one with running = desired lets the task start. Rollout states are set on moto's backend."""
    scene.build()
    _rollout("FAILED", 0, "ECS deployment circuit breaker: tasks failed to start.", scene.task_definition)
    refused = invoke_cli(tmp_path, "ecs-run", "--service", "web", "--cluster", CLUSTER,
                         "--wait-ecs-service", f"{CLUSTER}/web", "--health-interval", "0.2", env=scene.aws.env)
    assert refused.returncode == 4, refused.stderr
    assert "circuit breaker" in refused.stderr
    assert scene.aws.client("ecs").list_tasks(cluster=CLUSTER)["taskArns"] == []

    _rollout("COMPLETED", 1, "ECS deployment completed.", scene.task_definition)
    proc, _out, err = scene.spawn(tmp_path, "--service", "web", "--cluster", CLUSTER,
                                  "--wait-ecs-service", f"{CLUSTER}/web", "--health-interval", "0.2")
    task_arn = _started(err)
    assert "healthy:" in err.wait_for("healthy:")
    assert scene.task(task_arn).overrides["containerOverrides"][0]["command"] == ["alembic-deploy", "upgrade"]
    scene.exit(task_arn, 0)
    assert proc.wait(DEADLINE) == 0, err.text


def test_sigterm_during_the_health_gate_exits_9_and_starts_no_task(scene: Scene, tmp_path: Path) -> None:
    """A cancelled job while ecs-run still waits for the service (IN_PROGRESS, set on moto's backend):
    exit 9, no task started."""
    scene.build()
    _rollout("IN_PROGRESS", 0, "ECS deployment in progress.", scene.task_definition)
    proc, _out, err = scene.spawn(tmp_path, "--service", "web", "--cluster", CLUSTER,
                                  "--wait-ecs-service", f"{CLUSTER}/web", "--health-interval", "0.2")
    err.wait_for("not yet:")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(DEADLINE) == 9, err.text
    assert "interrupted" in err.text and "Traceback" not in err.text
    assert scene.aws.client("ecs").list_tasks(cluster=CLUSTER)["taskArns"] == []


def test_a_task_ecs_cannot_place_is_exit_12_saying_why() -> None:
    """RunTask answering no task but a failure (the cluster has no room): moto always places a task,
    so this one RunTask response comes from botocore's Stubber on a real boto3 ECS client, handed to
    ecs_run.start."""
    import boto3
    from botocore.stub import Stubber

    from alembic_deploy.errors import EcsTaskFailed
    from alembic_deploy.integrations.aws.ecs_run import Launch, start

    ecs = boto3.client("ecs", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    launch = Launch(cluster=CLUSTER, task_definition="arn:aws:ecs:us-east-1:1:task-definition/shop:3",
                    container="app", placement={"launchType": "EC2"})
    with Stubber(ecs) as stub:
        stub.add_response("run_task", {"tasks": [], "failures": [
            {"arn": "arn:aws:ecs:us-east-1:1:container-instance/apps/abc", "reason": "RESOURCE:MEMORY"}]})
        with pytest.raises(EcsTaskFailed) as failed:
            start(ecs, launch, ["alembic-deploy", "upgrade"], GITHUB)
    assert failed.value.exit_code == 12
    assert "ECS could not place the task: RESOURCE:MEMORY" in failed.value.message
    assert "no capacity" in failed.value.message


def test_json_prints_the_tasks_result_as_a_schema_document(scene: Scene, tmp_path: Path) -> None:
    """--json: stdout is one document of the output schema (the task's ARN, its container's exit
    code, which is ecs-run's, ECS's stop reason, the seconds it took); the container's log lines
    go to stderr. Exit code and stop reason set on moto's backend."""
    import jsonschema

    from test_json_output import SCHEMA

    scene.build()
    proc, out, err = scene.spawn(tmp_path, "--service", "web", "--cluster", CLUSTER, "--json")
    task_arn = _started(err)
    assert "--json" not in scene.task(task_arn).overrides["containerOverrides"][0]["command"]
    scene.log(task_arn, "revision 4d5e6f failed")
    err.wait_for("revision 4d5e6f failed")
    scene.exit(task_arn, 3, stopped_reason="Essential container in task exited")
    assert proc.wait(DEADLINE) == 3
    doc = json.loads(out.text)
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    assert (doc["command"], doc["exit_code"], doc["error"]) == ("ecs-run", 3, None)
    assert doc["ecs_task"]["task_arn"] == task_arn and doc["ecs_task"]["container_exit_code"] == 3
    assert doc["ecs_task"]["container"] == "app" and doc["ecs_task"]["seconds"] >= 0
    assert doc["ecs_task"]["stopped_reason"] == "Essential container in task exited"



def test_a_github_output_file_that_cannot_be_written_keeps_the_exit_code(tmp_path: Path) -> None:
    """qa: an unwritable $GITHUB_OUTPUT turned ecs-run's exit code (here 2, no region) into 1, an
    internal error; the outputs are a warning now."""
    run = invoke_cli(tmp_path, "ecs-run", "--cluster", CLUSTER, "--service", "web",
                     env={"GITHUB_OUTPUT": str(tmp_path / "no-such-folder" / "output"), "AWS_DEFAULT_REGION": None,
                          "AWS_REGION": None, "AWS_CONFIG_FILE": os.devnull})
    assert run.returncode == 2, run.output
    assert "warning: could not write the step outputs to $GITHUB_OUTPUT" in run.stderr
    assert "No AWS region is configured" in run.stderr and "internal error" not in run.stderr


@pytest.mark.parametrize("args", [
    ("--database-url", "postgresql://app:task-pw-qa@db:5432/app"),
    ("--", "sh", "-c", "DATABASE_URL=mysql://app:task-pw-qa@db/app alembic-deploy upgrade"),
])
def test_a_password_on_the_command_line_never_reaches_the_tasks_command(tmp_path: Path, args: tuple[str, ...]) -> None:
    """qa: ecs-run passed a --database-url with its password into RunTask's command override, kept
    by ECS and CloudTrail; refused before any AWS call (exit 2), the password not shown."""
    run = invoke_cli(tmp_path, "ecs-run", "--cluster", CLUSTER, "--service", "web", *args)
    assert run.returncode == 2, run.output
    assert "would put a password" in run.stderr and "task-pw-qa" not in run.output


def test_an_unreachable_aws_endpoint_says_to_check_the_network(tmp_path: Path) -> None:
    """qa: a refused connection to AWS advised checking --cluster and --service."""
    from helpers import free_port

    run = invoke_cli(tmp_path, "ecs-run", "--cluster", CLUSTER, "--service", "web",
                     env={"AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}", "AWS_DEFAULT_REGION": REGION,
                          "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    assert run.returncode == 2, run.output
    assert "Could not connect to the endpoint URL" in run.stderr and "network route to AWS" in run.stderr
    assert "Check --cluster" not in run.stderr
