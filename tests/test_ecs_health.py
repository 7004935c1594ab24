"""The ECS health gate (--wait-ecs-service, wait-ecs) against moto's ECS and ELBv2 running as a local
server, reached by boto3 through AWS_ENDPOINT_URL.

moto's public API creates services whose one deployment is IN_PROGRESS (fewer tasks running than
desired) or COMPLETED (desired 0), and cannot express a rollout that COMPLETED with tasks running or
one the circuit breaker rolled back: those states are set through moto's own backend (the server runs
in this test process: ``moto.ecs.models.ecs_backends``, the service's ``deployments`` and
``running_count``), as :func:`set_rollout` says each time."""

from __future__ import annotations

from typing import Any

import pytest

from aws_server import REGION
from helpers import assert_failed_cleanly, run_cli, spawn_cli

CLUSTER, SERVICE = "prod", "web"


def ecs_service(aws, desired: int = 2, revisions: int = 1,
                load_balancers: list[dict[str, Any]] | None = None) -> list[str]:
    """A cluster, ``revisions`` revisions of the task definition ``app`` and the service on the last
    one; returns the task definition ARNs, oldest first."""
    ecs = aws.client("ecs")
    ecs.create_cluster(clusterName=CLUSTER)
    arns = [ecs.register_task_definition(family="app", containerDefinitions=[
        {"name": "web", "image": f"app:{n}", "memory": 256, "portMappings": [{"containerPort": 8000}]},
    ])["taskDefinition"]["taskDefinitionArn"] for n in range(revisions)]
    ecs.create_service(cluster=CLUSTER, serviceName=SERVICE, taskDefinition=arns[-1], desiredCount=desired,
                       loadBalancers=load_balancers or [])
    return arns


def set_rollout(deployments: list[dict[str, Any]], running: int) -> None:
    """moto's backend API (in this process): the service's deployments and running task count, as
    describe_services will report them (moto's public API cannot set a rolloutState)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.ecs.models import ecs_backends

    service = ecs_backends[DEFAULT_ACCOUNT_ID][REGION].services[f"{CLUSTER}:{SERVICE}"]
    service.deployments = [{"id": f"ecs-svc/{n}", "status": "ACTIVE", "desiredCount": service.desired_count,
                            "pendingCount": 0, "runningCount": running, **d} for n, d in enumerate(deployments)]
    service.running_count = running


def completed(task_definition: str, running: int = 2) -> None:
    set_rollout([{"status": "PRIMARY", "taskDefinition": task_definition, "rolloutState": "COMPLETED",
                  "rolloutStateReason": "ECS deployment completed."}], running)


def wait_ecs(aws, tmp_path, *args: str) -> Any:
    return run_cli(tmp_path, "wait-ecs", "--wait-ecs-service", f"{CLUSTER}/{SERVICE}", "--health-interval", "0.1",
                   *args, env=aws.env)


def test_a_completed_rollout_with_every_task_running_is_healthy(aws, tmp_path):
    [arn] = ecs_service(aws)
    completed(arn)
    run = wait_ecs(aws, tmp_path)
    assert run.returncode == 0, run.output
    assert "healthy: prod/web: app:1 COMPLETED, 2/2 running" in run.stderr


def test_a_rollout_in_progress_until_the_deadline_is_exit_4_saying_so(aws, tmp_path):
    """moto's own state for a new service with tasks desired: IN_PROGRESS, none running."""
    ecs_service(aws)
    run = wait_ecs(aws, tmp_path, "--health-timeout", "0.5")
    message = assert_failed_cleanly(run, 4)
    assert "its rollout is IN_PROGRESS" in message and "0 of 2 tasks" in message
    assert "prod/web" in message and "Nothing was migrated" in message


def test_the_gate_waits_for_a_rollout_to_complete(aws, tmp_path):
    [arn] = ecs_service(aws)
    process = spawn_cli(tmp_path, "wait-ecs", "--wait-ecs-service", f"{CLUSTER}/{SERVICE}",
                        "--health-interval", "0.1", "--health-timeout", "300", env=aws.env)
    try:
        assert process.stderr is not None
        seen = []
        for line in process.stderr:  # the gate has looked once and found the rollout IN_PROGRESS
            seen.append(line)
            if "not yet:" in line:
                break
        completed(arn)
        _, rest = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, "".join(seen) + rest
    assert "healthy: prod/web" in rest


def test_a_rollout_the_circuit_breaker_failed_is_exit_4_at_once(aws, tmp_path):
    """A FAILED rollout does not recover: the gate fails at its first look, long before the deadline."""
    [arn] = ecs_service(aws)
    set_rollout([{"status": "PRIMARY", "taskDefinition": arn, "rolloutState": "FAILED",
                  "rolloutStateReason": "ECS deployment circuit breaker: tasks failed to start."}], 0)
    run = wait_ecs(aws, tmp_path, "--health-timeout", "3000")
    message = assert_failed_cleanly(run, 4)
    assert "rolled back by the deployment circuit breaker" in message
    assert "tasks failed to start" in message and "waiting longer cannot help" in message


def test_a_rollback_to_the_previous_task_definition_is_not_healthy(aws, tmp_path):
    """What services-stable calls stable: app:1 is PRIMARY again and COMPLETED, the deployment of
    the expected app:2 FAILED."""
    old, new = ecs_service(aws, revisions=2)
    set_rollout([{"status": "PRIMARY", "taskDefinition": old, "rolloutState": "COMPLETED"},
                 {"status": "ACTIVE", "taskDefinition": new, "rolloutState": "FAILED",
                  "rolloutStateReason": "ECS deployment circuit breaker: rolling back to deploymentId ecs-svc/0."}], 2)
    run = wait_ecs(aws, tmp_path, "--ecs-task-definition", "app:2", "--health-timeout", "3000")
    message = assert_failed_cleanly(run, 4)
    assert "the deployment of app:2 FAILED: rolled back by the deployment circuit breaker" in message
    assert "the service runs app:1 again" in message


def test_the_primary_deployment_must_run_the_expected_task_definition(aws, tmp_path):
    old, _new = ecs_service(aws, revisions=2)
    completed(old)
    run = wait_ecs(aws, tmp_path, "--ecs-task-definition", "app:2", "--health-timeout", "0.3")
    message = assert_failed_cleanly(run, 4)
    assert "the PRIMARY deployment runs app:1, not app:2" in message


def test_fewer_tasks_running_than_desired_is_not_healthy(aws, tmp_path):
    [arn] = ecs_service(aws, desired=3)
    completed(arn, running=2)
    run = wait_ecs(aws, tmp_path, "--health-timeout", "0.3")
    message = assert_failed_cleanly(run, 4)
    assert "2 of 3 tasks of the PRIMARY deployment running" in message


def target_group(aws, targets: list[dict[str, Any]], target_type: str = "ip") -> str:
    ec2, elbv2 = aws.client("ec2"), aws.client("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    group = elbv2.create_target_group(Name=f"web-{target_type}", Protocol="HTTP", Port=8000, VpcId=vpc,
                                      TargetType=target_type)["TargetGroups"][0]["TargetGroupArn"]
    if targets:
        elbv2.register_targets(TargetGroupArn=group, Targets=targets)
    return group


def test_a_load_balanced_service_needs_healthy_targets(aws, tmp_path):
    group = target_group(aws, [{"Id": "10.0.0.11", "Port": 8000}, {"Id": "10.0.0.12", "Port": 8000}])
    [arn] = ecs_service(aws, load_balancers=[{"targetGroupArn": group, "containerName": "web", "containerPort": 8000}])
    completed(arn)
    run = wait_ecs(aws, tmp_path)
    assert run.returncode == 0, run.output
    assert "2 healthy target(s) in 1 target group(s)" in run.stderr


def test_an_unhealthy_target_keeps_the_gate_closed(aws, tmp_path):
    """moto reports a registered EC2 instance that is stopped as 'unused' (Target.InvalidState)."""
    ec2 = aws.client("ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    instance = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    group = target_group(aws, [{"Id": instance, "Port": 8000}], target_type="instance")
    ec2.stop_instances(InstanceIds=[instance])
    [arn] = ecs_service(aws, load_balancers=[{"targetGroupArn": group, "containerName": "web", "containerPort": 8000}])
    completed(arn)
    run = wait_ecs(aws, tmp_path, "--health-timeout", "0.3")
    message = assert_failed_cleanly(run, 4)
    assert "target group web-instance" in message and f"{instance}:8000 unused" in message


def test_an_unknown_service_or_cluster_is_exit_2(aws, tmp_path):
    ecs_service(aws)
    run = run_cli(tmp_path, "wait-ecs", "--wait-ecs-service", f"{CLUSTER}/nope", env=aws.env)
    assert "is not in the cluster 'prod'" in assert_failed_cleanly(run, 2)
    run = run_cli(tmp_path, "wait-ecs", "--wait-ecs-service", "nope/web", env=aws.env)
    assert "cluster 'nope' does not exist" in assert_failed_cleanly(run, 2)


@pytest.mark.parametrize("value", ["prod/", "/web", "arn:aws:ecs:us-east-1:1:cluster/prod"])
def test_a_malformed_service_is_exit_2_before_any_aws_call(tmp_path, value):
    run = run_cli(tmp_path, "wait-ecs", "--wait-ecs-service", value)
    assert "CLUSTER/SERVICE" in assert_failed_cleanly(run, 2)


def test_upgrade_migrates_only_after_the_ecs_gate(make_project, aws, tmp_path, sqlite_db):
    project = make_project("sync")
    [arn] = ecs_service(aws)
    set_rollout([{"status": "PRIMARY", "taskDefinition": arn, "rolloutState": "FAILED",
                  "rolloutStateReason": "circuit breaker"}], 0)
    refused = run_cli(project, "upgrade", "--wait-ecs-service", f"{CLUSTER}/{SERVICE}", url=sqlite_db.url,
                      env=aws.env)
    assert_failed_cleanly(refused, 4)
    assert not sqlite_db.has_table("alembic_version")
    completed(arn)
    run = run_cli(project, "upgrade", "--wait-ecs-service", f"{CLUSTER}/{SERVICE}", "--json", url=sqlite_db.url,
                  env=aws.env)
    assert run.returncode == 0, run.output
    assert sqlite_db.versions() == ["a3_seed"]
    import json

    steps = {s["name"]: s for s in json.loads(run.stdout)["steps"]}
    assert "app:1 COMPLETED, 2/2 running" in steps["ecs-health"]["detail"]


def test_the_library_function_returns_what_it_saw(aws, monkeypatch):
    """What ecs-run and other callers use: integrations.aws.ecs_health.wait_ecs_healthy."""
    from alembic_deploy.integrations.aws.ecs_health import wait_ecs_healthy

    for key, value in aws.env.items():
        monkeypatch.setenv(key, value)
    [arn] = ecs_service(aws)
    completed(arn)
    lines: list[str] = []
    health = wait_ecs_healthy(f"{CLUSTER}/{SERVICE}", task_definition="app", timeout=10, interval=0.1,
                              echo=lines.append)
    assert (health.task_definition, health.rollout_state, health.running, health.desired) == (arn, "COMPLETED", 2, 2)
    assert health.problems == [] and lines[-1].startswith("  healthy:")


def test_wait_ecs_json_is_a_document_of_the_schema(aws, tmp_path):
    from test_json_output import checked

    [arn] = ecs_service(aws)
    completed(arn)
    ok = wait_ecs(aws, tmp_path, "--json")
    doc = checked(ok.stdout, "wait-ecs", 0)
    assert doc["ecs"]["task_definition"] == arn and doc["ecs"]["rollout_state"] == "COMPLETED"
    set_rollout([{"status": "PRIMARY", "taskDefinition": arn, "rolloutState": "FAILED"}], 0)
    failed = wait_ecs(aws, tmp_path, "--json")
    assert checked(failed.stdout, "wait-ecs", 4)["error"]["kind"] == "health-check-failed"


def _deployment(status: str, day: int, reason: str | None = None) -> dict[str, Any]:
    """One ListServiceDeployments entry, created on ``day`` of January 2026."""
    import datetime

    entry = {"serviceDeploymentArn": f"arn:aws:ecs:{REGION}:123456789012:service-deployment/{CLUSTER}/{SERVICE}/d{day}",
             "status": status, "createdAt": datetime.datetime(2026, 1, day, tzinfo=datetime.timezone.utc)}
    if reason:
        entry["statusReason"] = reason
    return entry


def stubbed_deployments(*pages: list[dict[str, Any]], error: str | None = None) -> str | None:
    """latest_rollback against ListServiceDeployments answering ``pages`` (or ``error``): moto does
    not implement it, so its responses come from botocore's Stubber on a real boto3 ECS client."""
    import boto3
    from botocore.stub import Stubber

    from alembic_deploy.integrations.aws.ecs_health import latest_rollback

    ecs = boto3.client("ecs", region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")
    with Stubber(ecs) as stub:
        if error:
            stub.add_client_error("list_service_deployments", error, "not allowed")
        for n, page in enumerate(pages):
            token = {"nextToken": f"page{n + 1}"} if n + 1 < len(pages) else {}
            stub.add_response("list_service_deployments", {"serviceDeployments": page, **token})
        return latest_rollback(ecs, CLUSTER, SERVICE)


def test_a_rollback_that_already_finished_is_not_taken_for_the_new_version():
    """The newest deployment (on the second page) was rolled back and the old version is PRIMARY and
    COMPLETED again: without --ecs-task-definition the gate must not wait for what runs now."""
    said = stubbed_deployments([_deployment("SUCCESSFUL", 1)],
                               [_deployment("ROLLBACK_SUCCESSFUL", 3, "tasks failed to start"),
                                _deployment("SUCCESSFUL", 2)])
    assert said is not None
    assert "ROLLBACK_SUCCESSFUL: tasks failed to start" in said and "--ecs-task-definition" in said


def test_a_rollback_older_than_the_newest_deployment_is_history():
    assert stubbed_deployments([_deployment("ROLLBACK_SUCCESSFUL", 1), _deployment("SUCCESSFUL", 2)]) is None


def test_without_list_service_deployments_the_gate_keeps_its_default(aws):
    """A role without ecs:ListServiceDeployments, and an endpoint that lacks it (moto, which every
    other test here runs against): the service's task definition is the one waited for."""
    from alembic_deploy.integrations.aws.ecs_health import latest_rollback

    assert stubbed_deployments(error="AccessDeniedException") is None
    ecs_service(aws)
    assert latest_rollback(aws.client("ecs"), CLUSTER, SERVICE) is None


def test_wait_ecs_after_a_finished_rollback_is_exit_4_at_once(aws, tmp_path, monkeypatch):
    """The whole gate: the old version PRIMARY and COMPLETED (moto's backend, as above), the newest
    deployment rolled back. moto lacks ListServiceDeployments: the test gives its in-process server
    that one answer (a response method on moto's ECS response class, as moto's own are written)."""
    import json

    from moto.ecs.responses import EC2ContainerServiceResponse

    arns = ecs_service(aws)
    completed(arns[0])
    rolled_back = {**_deployment("ROLLBACK_SUCCESSFUL", 2, "tasks failed to start"), "createdAt": 1767312000.0}

    def list_service_deployments(_self: Any) -> str:
        return json.dumps({"serviceDeployments": [rolled_back]})

    monkeypatch.setattr(EC2ContainerServiceResponse, "list_service_deployments", list_service_deployments,
                        raising=False)
    run = wait_ecs(aws, tmp_path, "--health-timeout", "600")
    message = assert_failed_cleanly(run, 4)
    assert "newest deployment was rolled back (ROLLBACK_SUCCESSFUL: tasks failed to start)" in message
    assert "waiting longer cannot help" in message
