"""``alembic-deploy ecs-run``: a command (by default ``alembic-deploy upgrade``) as a one-off ECS task
that behaves like a local command.

What ``aws ecs run-task`` + ``aws ecs wait tasks-stopped`` get wrong, and what this does instead:

* with ``--wait-ecs-service`` (and/or ``--wait-healthy``), it first waits on the runner until the
  service runs its new version healthy, as ``upgrade``'s health gate does (exit 4 otherwise, and no
  task starts);
* the task runs where the app runs: the service's current task definition, network configuration
  (subnets, security groups, public IP), launch type or capacity provider strategy
  (:func:`plan_launch`), each overridable by a flag;
* ``startedBy`` and tags name the GitHub run that started it (:func:`started_by`, :func:`run_tags`);
* it waits with its own deadline (``--timeout``, default one hour) by polling ``DescribeTasks``,
  never with boto3's waiter, which gives up after 10 minutes;
* the container's CloudWatch log lines (the awslogs ``<prefix>/<container>/<task-id>`` stream named
  by the task definition) go to stdout while it runs, and the rest once it stopped (:class:`LogFollower`);
* the exit code is the **named** container's, not a sidecar's; a task that stopped without one
  (never started, or stopped by ECS) is an :class:`~alembic_deploy.errors.EcsTaskFailed` (exit 12)
  saying why, from ``stopCode``, ``stoppedReason`` and the container's ``reason`` (:func:`failure`);
* SIGTERM/SIGINT (a cancelled GitHub job) stops the task (``StopTask``: ECS sends the container
  SIGTERM, so ``alembic-deploy upgrade`` inside journals ``interrupted``), waits until it stopped,
  then raises :class:`~alembic_deploy.errors.Interrupted` (exit 9). ``--timeout`` stops it the same
  way and raises ``EcsTaskFailed``.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ...errors import ConfigError, EcsTaskFailed, Interrupted
from .clients import aws_errors, client, describe, error_code

if TYPE_CHECKING:
    from ...settings import Settings
    from ...signals import Received

Write = Callable[[str], None]

#: StopTask's reason and a tag value are cut to what ECS accepts.
MAX_REASON: Final = 255
MAX_TAG_VALUE: Final = 256
MAX_STARTED_BY: Final = 128
#: How long to wait for a task to stop once it was told to: ECS gives the container its stopTimeout
#: (at most 120 s) before SIGKILL, then deprovisions it.
STOP_WAIT_SECONDS: Final = 300.0
#: Looks at the log stream after the task stopped and the stream returned nothing new: CloudWatch
#: Logs may still be ingesting the container's last lines.
DRAIN_ROUNDS: Final = 2
#: What GitHub sets, as the tags of the task it started (in this order).
GITHUB_TAGS: Final = (
    ("GITHUB_REPOSITORY", "github:repository"), ("GITHUB_RUN_ID", "github:run-id"),
    ("GITHUB_RUN_ATTEMPT", "github:run-attempt"), ("GITHUB_WORKFLOW", "github:workflow"),
    ("GITHUB_JOB", "github:job"), ("GITHUB_REF", "github:ref"), ("GITHUB_SHA", "github:sha"),
    ("GITHUB_ACTOR", "github:actor"),
)
_TAG_UNSAFE: Final = re.compile(r"[^\w .:/=+\-@]")
_STARTED_BY_UNSAFE: Final = re.compile(r"[^A-Za-z0-9_/-]")


@dataclass(frozen=True)
class LogStream:
    """Where the awslogs driver writes the container's output."""

    group: str
    region: str | None
    name: str


@dataclass(frozen=True)
class Launch:
    """Everything ``RunTask`` needs, resolved from the flags and the service."""

    cluster: str
    task_definition: str  # the ARN, so a deploy registering a new revision meanwhile changes nothing
    container: str
    #: RunTask's placement parameters: networkConfiguration, launchType or capacityProviderStrategy,
    #: platformVersion.
    placement: dict[str, Any] = field(default_factory=dict)
    #: awslogs group, region and stream prefix of the container; None when it logs elsewhere.
    log_group: str | None = None
    log_region: str | None = None
    log_prefix: str | None = None

    def log_stream(self, task_arn: str) -> LogStream | None:
        if self.log_group is None or self.log_prefix is None:
            return None
        return LogStream(self.log_group, self.log_region, f"{self.log_prefix}/{self.container}/{task_id(task_arn)}")


@dataclass(frozen=True)
class EcsRunResult:
    """A task that ran: its ARN, the container that ran the command and that container's exit code,
    ECS's stoppedReason and the seconds from RunTask to the stop."""

    task_arn: str
    container: str
    exit_code: int
    log_stream: LogStream | None
    stopped_reason: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The ``ecs_task`` object of ``ecs-run --json``."""
        return {"task_arn": self.task_arn, "container": self.container, "container_exit_code": self.exit_code,
                "stopped_reason": self.stopped_reason, "seconds": round(self.seconds, 3)}


def task_id(task_arn: str) -> str:
    return task_arn.rsplit("/", 1)[-1]


def run(settings: Settings, command: Sequence[str], out: Write, echo: Write,
        environ: Mapping[str, str] | None = None) -> EcsRunResult:
    """Run ``command`` as a one-off task and return once it stopped, with the exit code of the
    container that ran it. ``out`` gets the container's log lines, ``echo`` what ecs-run itself says.

    Raises :class:`ConfigError` (a cluster, service or task definition that does not resolve),
    :class:`EcsTaskFailed` (no exit code, not placed, ``--timeout``) or :class:`Interrupted`
    (SIGTERM/SIGINT: the task was stopped first).
    """
    from ...signals import interruptible, recorded

    environ = os.environ if environ is None else environ
    if settings.ecs_poll_interval < 0.1:
        raise ConfigError(f"--poll-interval must be at least 0.1 s, got {settings.ecs_poll_interval}.")
    # Before the task exists a signal just ends the run (exit 9); from RunTask on it stops the task first.
    with interruptible():
        ecs = client("ecs")
        launch = plan_launch(ecs, settings)
        if settings.wait_ecs_service is not None or settings.wait_healthy:
            _health_gates(settings, echo)
    with recorded() as received:
        began = time.monotonic()
        task_arn = start(ecs, launch, command, environ)
        stream = launch.log_stream(task_arn)
        echo(f"ecs-run: started task {task_arn} on cluster {launch.cluster} "
             f"(task definition {launch.task_definition}, container {launch.container}).")
        if stream is None:
            echo(f"ecs-run: container {launch.container} has no awslogs log configuration with a stream prefix: "
                 "its output is not shown here.")
        else:
            echo(f"ecs-run: streaming CloudWatch Logs {stream.group} {stream.name}.")
        follower = LogFollower(client("logs", stream.region), stream, out, echo) if stream else None
        task = follow(ecs, launch, task_arn, settings, follower, received, echo)
    exit_code = container_exit_code(task, launch.container)
    return EcsRunResult(task_arn, launch.container, exit_code, stream, task.get("stoppedReason"),
                        time.monotonic() - began)


def _health_gates(settings: Settings, echo: Write) -> None:
    """``--wait-ecs-service`` (the service runs its new task definition healthy), then
    ``--wait-healthy``: upgrade's gates, here on the runner before the task starts; exit 4 when not
    healthy, and no task started."""
    from ...report import DeployReport
    from ...steps.health import health_gate

    health_gate(settings, DeployReport(command="ecs-run"), echo)


def plan_launch(ecs: Any, settings: Settings) -> Launch:
    """Resolve the cluster, task definition, container and placement from the flags, and from the
    service's current (PRIMARY) deployment with ``--service``; a flag wins over the service."""
    cluster = settings.ecs_cluster
    service_name = settings.ecs_service
    if service_name and "/" in service_name and not service_name.startswith("arn:"):
        service_cluster, service_name = service_name.split("/", 1)
        if cluster and cluster != service_cluster:
            raise ConfigError(f"--service {settings.ecs_service} names cluster {service_cluster}, "
                              f"but --cluster is {cluster}. Give one cluster.")
        cluster = service_cluster
    if not cluster:
        raise ConfigError("ecs-run needs the cluster: give --cluster NAME (or --service CLUSTER/NAME, or set "
                          "ALEMBIC_DEPLOY_ECS_CLUSTER).")
    placement: dict[str, Any] = {}
    task_definition = settings.ecs_task_definition
    if service_name:
        service = _describe_service(ecs, cluster, service_name)
        primary: dict[str, Any] = next(
            (d for d in service.get("deployments", []) if d.get("status") == "PRIMARY"), {})
        task_definition = task_definition or primary.get("taskDefinition") or service.get("taskDefinition")
        for key in ("networkConfiguration", "launchType", "capacityProviderStrategy", "platformVersion"):
            value = primary.get(key) or service.get(key)
            if value:
                placement[key] = value
    if not task_definition:
        raise ConfigError("ecs-run needs a task definition: give --service NAME (its current one is used) or "
                          "--task-definition FAMILY[:REVISION].")
    definition = _describe_task_definition(ecs, task_definition)
    container = _container(definition, settings.ecs_container)
    _override_placement(placement, definition, settings)
    options = (container.get("logConfiguration") or {})
    log_options = options.get("options") or {} if options.get("logDriver") == "awslogs" else {}
    return Launch(
        cluster=cluster, task_definition=definition["taskDefinitionArn"], container=container["name"],
        placement=placement, log_group=log_options.get("awslogs-group"),
        log_region=log_options.get("awslogs-region"), log_prefix=log_options.get("awslogs-stream-prefix"),
    )


def _describe_service(ecs: Any, cluster: str, name: str) -> dict[str, Any]:
    try:
        answer = ecs.describe_services(cluster=cluster, services=[name])
    except aws_errors() as exc:
        raise ConfigError(f"Could not read ECS service {name} on cluster {cluster}: {describe(exc)}. "
                          + _advice(exc, "Check --cluster and --service, and that the role may "
                                         "ecs:DescribeServices.")) from None
    services = [s for s in answer.get("services", []) if s.get("status") != "INACTIVE"]
    if not services:
        raise ConfigError(f"ECS service {name} was not found on cluster {cluster} (or is inactive). "
                          "Check --cluster and --service.")
    service: dict[str, Any] = services[0]
    return service


def _advice(exc: BaseException, otherwise: str) -> str:
    """What to check after a failed AWS call: the network for a transport failure, else ``otherwise``."""
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        return otherwise
    return ("Check the network route to AWS (a VPC endpoint or NAT from a private subnet) and AWS_ENDPOINT_URL if "
            "one is set.")


def _describe_task_definition(ecs: Any, name: str) -> dict[str, Any]:
    try:
        definition: dict[str, Any] = ecs.describe_task_definition(taskDefinition=name)["taskDefinition"]
    except aws_errors() as exc:
        raise ConfigError(f"Could not read ECS task definition {name}: {describe(exc)}. " + _advice(
            exc, "Check --task-definition, and that the role may ecs:DescribeTaskDefinition.")) from None
    return definition


def _container(definition: dict[str, Any], name: str | None) -> dict[str, Any]:
    containers: list[dict[str, Any]] = definition.get("containerDefinitions", [])
    names = ", ".join(c["name"] for c in containers)
    if name:
        for container in containers:
            if container["name"] == name:
                return container
        raise ConfigError(f"Task definition {definition['taskDefinitionArn']} has no container {name!r}; "
                          f"its containers: {names}. Give one of them with --container.")
    if len(containers) == 1:
        return containers[0]
    raise ConfigError(f"Task definition {definition['taskDefinitionArn']} has {len(containers)} containers "
                      f"({names}): name the one that runs the migration with --container, so its exit code, "
                      "not a sidecar's, is the result.")


def _override_placement(placement: dict[str, Any], definition: dict[str, Any], settings: Settings) -> None:
    """Apply --launch-type, --subnet, --security-group and --assign-public-ip over the service's."""
    if settings.ecs_launch_type:
        launch_type = settings.ecs_launch_type.upper()
        if launch_type not in ("FARGATE", "EC2", "EXTERNAL"):
            raise ConfigError(f"--launch-type must be FARGATE, EC2 or EXTERNAL, got {settings.ecs_launch_type!r}.")
        placement.pop("capacityProviderStrategy", None)
        placement["launchType"] = launch_type
    elif "launchType" not in placement and "capacityProviderStrategy" not in placement:
        compatible = definition.get("requiresCompatibilities") or ["FARGATE"]
        placement["launchType"] = "FARGATE" if "FARGATE" in compatible else compatible[0]
    if placement.get("launchType") in ("EC2", "EXTERNAL"):
        placement.pop("platformVersion", None)
    vpc = dict((placement.get("networkConfiguration") or {}).get("awsvpcConfiguration") or {})
    if settings.ecs_subnets:
        vpc["subnets"] = list(settings.ecs_subnets)
    if settings.ecs_security_groups:
        vpc["securityGroups"] = list(settings.ecs_security_groups)
    if settings.ecs_assign_public_ip is not None:
        vpc["assignPublicIp"] = "ENABLED" if settings.ecs_assign_public_ip else "DISABLED"
    if vpc:
        placement["networkConfiguration"] = {"awsvpcConfiguration": vpc}
    if definition.get("networkMode") == "awsvpc" and not vpc.get("subnets"):
        raise ConfigError(f"Task definition {definition['taskDefinitionArn']} uses the awsvpc network mode, so the "
                          "task needs subnets: give --service (its network configuration is used) or --subnet "
                          "(and --security-group).")


def started_by(environ: Mapping[str, str]) -> str:
    """RunTask's ``startedBy``: ``alembic-deploy/gh/<run id>/<attempt>`` in GitHub Actions, so
    ``aws ecs list-tasks --started-by`` finds a run's task; plain ``alembic-deploy`` elsewhere."""
    run_id = environ.get("GITHUB_RUN_ID")
    if not run_id:
        return "alembic-deploy"
    value = f"alembic-deploy/gh/{run_id}/{environ.get('GITHUB_RUN_ATTEMPT', '1')}"
    return _STARTED_BY_UNSAFE.sub("_", value)[:MAX_STARTED_BY]


def run_tags(environ: Mapping[str, str]) -> list[dict[str, str]]:
    """The task's tags: ``alembic-deploy=ecs-run`` and the GitHub run's repository, run id,
    attempt, workflow, job, ref, commit and actor where set (characters ECS refuses become ``_``)."""
    tags = [{"key": "alembic-deploy", "value": "ecs-run"}]
    for variable, key in GITHUB_TAGS:
        value = environ.get(variable)
        if value:
            tags.append({"key": key, "value": _TAG_UNSAFE.sub("_", value)[:MAX_TAG_VALUE]})
    return tags


def run_description(environ: Mapping[str, str]) -> str:
    """The GitHub run, as said in a StopTask reason: ``GitHub run owner/repo#123`` or ``local run``."""
    run_id = environ.get("GITHUB_RUN_ID")
    return f"GitHub run {environ.get('GITHUB_REPOSITORY', '?')}#{run_id}" if run_id else "a local run"


def start(ecs: Any, launch: Launch, command: Sequence[str], environ: Mapping[str, str]) -> str:
    """RunTask with the command as the container's override; the new task's ARN."""
    try:
        answer = ecs.run_task(
            cluster=launch.cluster, taskDefinition=launch.task_definition, count=1,
            overrides={"containerOverrides": [{"name": launch.container, "command": list(command)}]},
            startedBy=started_by(environ), tags=run_tags(environ), **launch.placement,
        )
    except aws_errors() as exc:
        raise EcsTaskFailed(
            f"ECS refused to run the task: {describe(exc)}. Check the cluster, the task definition and "
            "its network configuration, and that the role may ecs:RunTask, ecs:TagResource and iam:PassRole for "
            "the task's roles.", cluster=launch.cluster, task_definition=launch.task_definition) from None
    tasks = answer.get("tasks") or []
    if not tasks:
        reasons = "; ".join(f"{f.get('reason')}{' (' + f['detail'] + ')' if f.get('detail') else ''}"
                            for f in answer.get("failures", [])) or "no reason given"
        raise EcsTaskFailed(
            f"ECS could not place the task: {reasons}. {_hint(reasons)}",
            cluster=launch.cluster, task_definition=launch.task_definition)
    return str(tasks[0]["taskArn"])


class LogFollower:
    """Reads the container's CloudWatch log stream forward (GetLogEvents from the head, then from
    each ``nextForwardToken``) and writes every message as one line. A stream that does not exist
    yet (the container has not started) reads as empty."""

    def __init__(self, logs: Any, stream: LogStream, out: Write, echo: Write) -> None:
        self.logs = logs
        self.stream = stream
        self.out = out
        self.echo = echo
        self.token: str | None = None
        self.warned = False

    def pull(self) -> int:
        """Write the lines that arrived since the last pull; how many there were."""
        count = 0
        while True:
            request: dict[str, Any] = {"logGroupName": self.stream.group, "logStreamName": self.stream.name,
                                       "startFromHead": True}
            if self.token:
                request["nextToken"] = self.token
            try:
                page = self.logs.get_log_events(**request)
            except aws_errors() as exc:
                if error_code(exc) != "ResourceNotFoundException" and not self.warned:
                    self.warned = True
                    self.echo(f"ecs-run: warning: could not read the log stream {self.stream.name} "
                              f"({describe(exc)}); still waiting for the task.")
                return count
            for event in page.get("events", []):
                self.out(str(event.get("message", "")).rstrip("\n"))
                count += 1
            token = page.get("nextForwardToken")
            if not page.get("events") or token == self.token:
                self.token = token or self.token
                return count
            self.token = token

    def drain(self, interval: float) -> None:
        """After the task stopped: read until the stream has given nothing new :data:`DRAIN_ROUNDS`
        times in a row, ``interval`` apart (CloudWatch may still be ingesting the last lines)."""
        quiet = 0
        while quiet < DRAIN_ROUNDS:
            quiet = 0 if self.pull() else quiet + 1
            if quiet < DRAIN_ROUNDS:
                time.sleep(interval)


def follow(ecs: Any, launch: Launch, task_arn: str, settings: Settings, follower: LogFollower | None,
           received: Received, echo: Write) -> dict[str, Any]:
    """Poll the task (and its log stream) every ``--poll-interval`` until it is STOPPED; stop it on a
    signal or at ``--timeout``. Returns the stopped task as DescribeTasks describes it."""
    interval = settings.ecs_poll_interval
    deadline = time.monotonic() + settings.ecs_timeout
    environ = os.environ
    while True:
        task = _stopped(ecs, launch.cluster, task_arn, follower, interval, echo)
        if task is not None:
            return task
        if received.event.wait(max(0.0, min(interval, deadline - time.monotonic()))):
            why = f"cancelled by {received.name} ({run_description(environ)})"
            _stop(ecs, launch, task_arn, why, follower, interval, echo)
            raise Interrupted(
                f"Interrupted by {received.name}: stopped ECS task {task_id(task_arn)} (StopTask) and waited until "
                "it stopped; ECS sent its container SIGTERM, so an alembic-deploy upgrade inside rolled back the "
                "statement in flight and journaled the run as 'interrupted'. Run the deploy again to continue.",
                signal=received.name, task=task_arn)
        if time.monotonic() >= deadline:
            why = f"--timeout of {settings.ecs_timeout:g} s reached ({run_description(environ)})"
            _stop(ecs, launch, task_arn, why, follower, interval, echo)
            raise EcsTaskFailed(
                f"ECS task {task_id(task_arn)} was still running after --timeout {settings.ecs_timeout:g} s, so "
                "ecs-run stopped it (StopTask; an alembic-deploy upgrade inside journals the run as "
                "'interrupted'). Raise --timeout if the migration needs longer, or look at its log lines above "
                "for what it was waiting on.", task=task_arn, timeout=settings.ecs_timeout)


def _stopped(ecs: Any, cluster: str, task_arn: str, follower: LogFollower | None, interval: float,
             echo: Write) -> dict[str, Any] | None:
    """One look: the log lines that arrived, and the task once it is STOPPED (its last lines
    drained), else None."""
    task = _describe(ecs, cluster, task_arn, echo)
    if follower is not None:
        follower.pull()
    if task is None or task.get("lastStatus") != "STOPPED":
        return None
    if follower is not None:
        follower.drain(min(interval, 2.0))
    return task


def _describe(ecs: Any, cluster: str, task_arn: str, echo: Write) -> dict[str, Any] | None:
    """The task, or None when it could not be read this time (the next poll tries again; the
    deadline still holds)."""
    try:
        tasks = ecs.describe_tasks(cluster=cluster, tasks=[task_arn]).get("tasks") or []
    except aws_errors() as exc:
        echo(f"ecs-run: warning: could not describe task {task_id(task_arn)} ({error_code(exc)}); trying again.")
        return None
    return tasks[0] if tasks else None


def _stop(ecs: Any, launch: Launch, task_arn: str, why: str, follower: LogFollower | None,
          interval: float, echo: Write) -> None:
    """StopTask, then wait (at most :data:`STOP_WAIT_SECONDS`) until the task is STOPPED, showing
    its last log lines meanwhile."""
    echo(f"ecs-run: stopping task {task_id(task_arn)}: {why}.")
    try:
        ecs.stop_task(cluster=launch.cluster, task=task_arn, reason=f"alembic-deploy ecs-run {why}"[:MAX_REASON])
    except aws_errors() as exc:
        echo(f"ecs-run: warning: StopTask failed ({describe(exc)}); stop task {task_arn} by hand.")
        return
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    while time.monotonic() < deadline:
        if _stopped(ecs, launch.cluster, task_arn, follower, interval, echo) is not None:
            echo(f"ecs-run: task {task_id(task_arn)} stopped.")
            return
        time.sleep(interval)
    echo(f"ecs-run: warning: task {task_id(task_arn)} had not stopped {STOP_WAIT_SECONDS:g} s after StopTask.")


def container_exit_code(task: dict[str, Any], name: str) -> int:
    """The exit code of container ``name`` of a stopped task, or :class:`EcsTaskFailed` saying why
    there is none."""
    container = next((c for c in task.get("containers", []) if c.get("name") == name), None)
    code = container.get("exitCode") if container is not None else None
    if code is None:
        raise failure(task, name, container)
    return int(code)


def failure(task: dict[str, Any], name: str, container: dict[str, Any] | None) -> EcsTaskFailed:
    """The error for a task that stopped without an exit code for container ``name``: what ECS said
    (stop code, stopped reason, the container's reason) and what to do about it."""
    stop_code = task.get("stopCode")
    stopped_reason = task.get("stoppedReason")
    container_reason = container.get("reason") if container is not None else None
    said = "; ".join(part for part in (
        stopped_reason, f"container {name}: {container_reason}" if container_reason else None,
        f"stop code {stop_code}" if stop_code else None) if part) or "ECS gave no reason"
    what = ("never reported container" if container is None else "stopped without an exit code for container")
    return EcsTaskFailed(
        f"ECS task {task_id(str(task.get('taskArn', '?')))} {what} {name!r}: {said}. "
        f"{_hint(container_reason, stopped_reason, stop_code)}",
        task=task.get("taskArn"), stop_code=stop_code, stopped_reason=stopped_reason,
        container_reason=container_reason)


#: What ECS's reasons mean and what to do, first match wins (matched case-insensitively).
_HINTS: Final = (
    ("cannotpullcontainer|pull image|pull access|manifest", ("The image could not be pulled: check the image name "
     "and tag, that the task execution role may pull it (ecr:GetAuthorizationToken, ecr:BatchGetImage, "
     "ecr:GetDownloadUrlForLayer) and that the task's subnets reach ECR (a NAT gateway, a public IP or VPC "
     "endpoints).")),
    ("secret|ssm|parameter|kms|resourceinitializationerror", ("ECS could not fetch the task's secrets or "
     "parameters: check that the task execution role may read them (secretsmanager:GetSecretValue, "
     "ssm:GetParameters, kms:Decrypt) and that the task's subnets reach Secrets Manager and SSM.")),
    ("essential container", ("Another essential container of the task (a sidecar) exited first, so ECS stopped "
     "the task: read that container's logs, or mark it non-essential in the task definition.")),
    ("outofmemory|out of memory|oom", "The container ran out of memory: give the task definition more memory."),
    ("resource:|capacity|no container instances|insufficient|unable to place", ("The cluster had no capacity for "
     "the task: add instances or capacity provider capacity, lower the task's CPU/memory, or use FARGATE.")),
    ("spotinterruption", ("Fargate Spot reclaimed the capacity: run again, or run the migration on on-demand "
     "capacity (--launch-type FARGATE).")),
    ("userinitiated", "Someone (or something) stopped the task with StopTask."),
)


def _hint(*reasons: str | None) -> str:
    """What to do, for the first of ``reasons`` (the most specific first) that says something known."""
    for reason in reasons:
        for pattern, hint in _HINTS:
            if reason and re.search(pattern, reason.lower()):
                return hint
    return ("Look at the stopped task in the ECS console or with `aws ecs describe-tasks` (ECS keeps stopped "
            "tasks for about an hour).")
