"""The ECS health gate: is the new version of an ECS service really serving?

``aws ecs wait services-stable`` says yes for a deployment the circuit breaker rolled back (the
service is stable again: on the old version). This gate asks what a migration after the deploy
needs, every ``interval`` seconds until all hold or ``timeout`` passes:

* the service's PRIMARY deployment runs the expected task definition (``--ecs-task-definition``;
  default: the one the service names when the gate starts, so a rollback to the previous one does
  not pass; unless the service's newest deployment is one ECS rolled back (ListServiceDeployments),
  when that one is the previous version: the gate then fails at once, see :func:`latest_rollback`);
* its ``rolloutState`` is COMPLETED (IN_PROGRESS: not yet; FAILED, or the expected task
  definition's deployment FAILED while an older one became PRIMARY again: rolled back by the
  deployment circuit breaker, which no wait fixes, so the gate fails at once). A service whose
  deployments ECS does not roll out itself (CodeDeploy, external) has no rolloutState: its one
  deployment suffices;
* running = desired tasks (the service's and the PRIMARY deployment's);
* every target of each target group of the service's load balancers is healthy (targets being
  drained, the old tasks', aside), and at least one is when tasks are desired.

It fails with :class:`~alembic_deploy.errors.HealthCheckFailed` (exit 4) saying what was not
healthy at the last look. A service that does not exist, or a cluster, is a ConfigError (exit 2).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from ...errors import ConfigError, HealthCheckFailed
from .clients import aws_errors, client, error_code

if TYPE_CHECKING:
    from collections.abc import Callable

#: Target states that are neither healthy nor the old tasks leaving.
_LEAVING: Final = frozenset({"draining"})
#: ListServiceDeployments statuses of a deployment ECS rolled back (circuit breaker or alarm).
_ROLLED_BACK: Final = frozenset({"ROLLBACK_REQUESTED", "ROLLBACK_IN_PROGRESS", "ROLLBACK_SUCCESSFUL",
                                 "ROLLBACK_FAILED"})
#: Pages of ListServiceDeployments read at most (its default page size each).
_MAX_PAGES: Final = 10


@dataclass
class ServiceHealth:
    """What the gate saw at its last look."""

    cluster: str
    service: str
    #: The task definition ARN the PRIMARY deployment must run.
    task_definition: str = ""
    rollout_state: str | None = None
    running: int = 0
    desired: int = 0
    #: Per target group: (healthy targets, other targets as "id: state (reason)").
    targets: dict[str, tuple[int, list[str]]] = field(default_factory=dict)
    #: What is not healthy (empty: healthy).
    problems: list[str] = field(default_factory=list)
    #: Rolled back or failed: no wait changes it.
    final: bool = False
    looks: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """``wait-ecs --json``'s ``ecs`` object."""
        return {"cluster": self.cluster, "service": self.service, "task_definition": self.task_definition,
                "rollout_state": self.rollout_state, "running": self.running, "desired": self.desired,
                "target_groups": {name: healthy for name, (healthy, _others) in self.targets.items()},
                "seconds": round(self.seconds, 4)}

    def summary(self) -> str:
        targets = sum(healthy for healthy, _ in self.targets.values())
        lb = f", {targets} healthy target(s) in {len(self.targets)} target group(s)" if self.targets else ""
        return (f"{self.cluster}/{self.service}: {short(self.task_definition)} {self.rollout_state or 'deployed'}, "
                f"{self.running}/{self.desired} running{lb}")


def parse_service(value: str) -> tuple[str, str]:
    """``CLUSTER/SERVICE``, a service ARN (``arn:aws:ecs:...:service/CLUSTER/SERVICE``) or ``SERVICE``
    (in the ``default`` cluster) -> (cluster, service)."""
    text = value.strip()
    if text.startswith("arn:"):
        resource = text.split(":", 5)[-1]
        parts = resource.split("/")
        if len(parts) == 3 and parts[0] == "service":
            return parts[1], parts[2]
        raise ConfigError(f"--wait-ecs-service got the ARN {text!r}, which is not a service's "
                          "(arn:aws:ecs:REGION:ACCOUNT:service/CLUSTER/SERVICE).")
    cluster, sep, service = text.rpartition("/")
    if not service or (sep and not cluster):
        raise ConfigError(f"--wait-ecs-service takes CLUSTER/SERVICE (or a service ARN), got {value!r}.")
    return (cluster or "default"), service


def short(task_definition: str) -> str:
    """``arn:aws:ecs:...:task-definition/app:7`` -> ``app:7``."""
    return task_definition.rsplit("/", 1)[-1]


def wait_ecs_healthy(
    service: str,
    *,
    task_definition: str | None = None,
    timeout: float = 300.0,
    interval: float = 5.0,
    echo: Callable[[str], None] | None = None,
) -> ServiceHealth:
    """Wait until the ECS service ``service`` (``CLUSTER/SERVICE`` or its ARN) runs
    ``task_definition`` (family, family:revision or ARN; None: the service's current one)
    healthy, as the module says; returns what it saw. Raises
    :class:`~alembic_deploy.errors.HealthCheckFailed` (exit 4) when it does not within ``timeout``
    seconds or was rolled back, :class:`~alembic_deploy.errors.ConfigError` (exit 2) when the
    service or the task definition does not exist or boto3 is missing."""
    cluster, name = parse_service(service)
    say = echo or (lambda _msg: None)
    ecs = client("ecs")
    elbv2: list[Any] = []  # made on first use: a service without a load balancer needs none
    started = time.monotonic()
    deadline = started + timeout
    health = ServiceHealth(cluster, name)
    expected = _task_definition_arn(ecs, task_definition) if task_definition else None
    say(f"Waiting for the ECS service {cluster}/{name} to run its new version healthy (up to {timeout:g}s)...")
    last = ""
    rolled_back: str | None = None
    while True:
        described = _describe(ecs, cluster, name)
        if expected is None:
            expected = str(described.get("taskDefinition", ""))
            rolled_back = latest_rollback(ecs, cluster, name)
        health = _look(described, expected, cluster, name, elbv2, health.looks + 1)
        if rolled_back is not None:
            health.problems.insert(0, rolled_back)
            health.final = True
        health.seconds = time.monotonic() - started
        now = "; ".join(health.problems)
        if now != last and health.problems:
            say(f"  not yet: {now}")
        last = now
        if not health.problems:
            say(f"  healthy: {health.summary()}.")
            return health
        if health.final or time.monotonic() >= deadline:
            raise _failed(health, timeout)
        time.sleep(min(interval, max(deadline - time.monotonic(), 0)))


def latest_rollback(ecs: Any, cluster: str, name: str) -> str | None:
    """Why the service's current task definition is not the version to wait for, when its newest
    deployment is one ECS rolled back (a rollback that already finished leaves the old version
    PRIMARY and COMPLETED, and ECS drops the FAILED deployment from the service's list); else None.
    Read from ECS's ListServiceDeployments; a role or endpoint without it (access denied, a region
    or stand-in that lacks it) gives None: the gate then takes the service's task definition."""
    found: list[dict[str, Any]] = []
    token: str | None = None
    for _page in range(_MAX_PAGES):
        try:
            page = {"nextToken": token} if token else {}
            answer = ecs.list_service_deployments(cluster=cluster, service=name, **page)
        except aws_errors():
            return None
        found += [d for d in answer.get("serviceDeployments") or [] if d.get("createdAt") is not None]
        token = answer.get("nextToken")
        if not token:
            break
    if not found:
        return None
    newest = max(found, key=lambda d: d["createdAt"])
    if newest.get("status") not in _ROLLED_BACK:
        return None
    reason = f": {newest['statusReason']}" if newest.get("statusReason") else ""
    return (f"the service's newest deployment was rolled back ({newest['status']}{reason}), so the task definition "
            "it runs now is the previous version; give --ecs-task-definition to name the version to wait for")


def _describe(ecs: Any, cluster: str, name: str) -> dict[str, Any]:
    try:
        answer = ecs.describe_services(cluster=cluster, services=[name])
    except aws_errors() as exc:
        if error_code(exc) == "ClusterNotFoundException":
            raise ConfigError(f"--wait-ecs-service: the ECS cluster {cluster!r} does not exist in this region. "
                              "Check the cluster's name and AWS_REGION.") from None
        raise HealthCheckFailed(
            f"--wait-ecs-service could not describe the ECS service {cluster}/{name}: {error_code(exc)} ({exc}). "
            "Check that this role may call ecs:DescribeServices, and the network route to AWS.") from None
    services = answer.get("services") or []
    if not services:
        reasons = ", ".join(f.get("reason", "?") for f in answer.get("failures") or []) or "not found"
        raise ConfigError(f"--wait-ecs-service: the ECS service {name!r} is not in the cluster {cluster!r} "
                          f"({reasons}). Check the service's name (CLUSTER/SERVICE) and AWS_REGION.")
    found: dict[str, Any] = services[0]
    return found


def _task_definition_arn(ecs: Any, task_definition: str) -> str:
    """The ARN of a task definition given as family (its latest ACTIVE revision), family:revision or ARN."""
    try:
        answer = ecs.describe_task_definition(taskDefinition=task_definition)
    except aws_errors() as exc:
        raise ConfigError(
            f"--ecs-task-definition {task_definition!r} names no task definition ECS knows ({error_code(exc)}). "
            "Give a family, family:revision or ARN that exists in this region.") from None
    return str(answer["taskDefinition"]["taskDefinitionArn"])


def _look(service: dict[str, Any], expected: str, cluster: str, name: str, elbv2: list[Any],
          looks: int) -> ServiceHealth:
    health = ServiceHealth(cluster, name, expected, looks=looks)
    problems = health.problems
    if service.get("status") != "ACTIVE":
        problems.append(f"the service is {service.get('status')} (deleted or being deleted)")
        health.final = True
        return health
    deployments = service.get("deployments") or []
    primary = next((d for d in deployments if d.get("status") == "PRIMARY"), None)
    rolled_back = [d for d in deployments if d.get("taskDefinition") == expected and d.get("rolloutState") == "FAILED"]
    if rolled_back or (primary is not None and primary.get("rolloutState") == "FAILED"):
        failed = (rolled_back or [primary])[0]
        assert failed is not None
        reason = failed.get("rolloutStateReason") or "no reason given"
        now = f"; the service runs {short(str(primary.get('taskDefinition')))} again" if (
            primary is not None and primary.get("taskDefinition") != expected) else ""
        problems.append(f"the deployment of {short(str(failed.get('taskDefinition')))} FAILED: rolled back by the "
                        f"deployment circuit breaker{now} ({reason})")
        health.final = True
        return health
    if primary is None:
        problems.append("the service has no PRIMARY deployment")
        return health
    health.rollout_state = primary.get("rolloutState")
    health.running = int(service.get("runningCount", 0))
    health.desired = int(service.get("desiredCount", 0))
    if primary.get("taskDefinition") != expected:
        problems.append(f"the PRIMARY deployment runs {short(str(primary.get('taskDefinition')))}, not "
                        f"{short(expected)}")
    if health.rollout_state is not None and health.rollout_state != "COMPLETED":
        reason = primary.get("rolloutStateReason")
        problems.append(f"its rollout is {health.rollout_state}{f' ({reason})' if reason else ''}")
    elif health.rollout_state is None and len(deployments) > 1:
        problems.append(f"{len(deployments)} deployments are active (the old one is still draining)")
    primary_running, primary_desired = int(primary.get("runningCount", 0)), int(primary.get("desiredCount", 0))
    if health.running != health.desired or primary_running != primary_desired:
        problems.append(f"{primary_running} of {primary_desired} tasks of the PRIMARY deployment running "
                        f"({health.running} of {health.desired} in the service)")
    for balancer in service.get("loadBalancers") or []:
        group = balancer.get("targetGroupArn")
        if group:
            _targets(health, str(group), elbv2)
    return health


def _targets(health: ServiceHealth, group: str, elbv2: list[Any]) -> None:
    if not elbv2:
        elbv2.append(client("elbv2"))
    label = group.rsplit(":", 1)[-1].removeprefix("targetgroup/")
    try:
        descriptions = elbv2[0].describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    except aws_errors() as exc:
        health.problems.append(f"the target group {label} could not be read ({error_code(exc)})")
        return
    healthy, others = 0, []
    for item in descriptions:
        state = item.get("TargetHealth", {})
        if state.get("State") == "healthy":
            healthy += 1
        elif state.get("State") not in _LEAVING:
            target = item.get("Target", {})
            why = state.get("Reason") or state.get("Description")
            others.append(f"{target.get('Id')}:{target.get('Port')} {state.get('State')}{f' ({why})' if why else ''}")
    health.targets[label] = (healthy, others)
    if others:
        health.problems.append(f"target group {label}: {len(others)} target(s) not healthy: {', '.join(others)}")
    elif healthy == 0 and health.desired > 0:
        health.problems.append(f"target group {label} has no healthy target")


def _failed(health: ServiceHealth, timeout: float) -> HealthCheckFailed:
    when = ("the deployment was rolled back; waiting longer cannot help" if health.final
            else f"within {timeout:g}s ({health.looks} look(s))")
    return HealthCheckFailed(
        f"The ECS service {health.cluster}/{health.service} did not run {short(health.task_definition)} healthy: "
        f"{'; '.join(health.problems)} ({when}). Nothing was migrated. Look at the service's events (aws ecs "
        "describe-services) and its stopped tasks' stoppedReason; raise --health-timeout if the rollout needs "
        "longer.",
        service=f"{health.cluster}/{health.service}",
        expected=short(health.task_definition),
    )
