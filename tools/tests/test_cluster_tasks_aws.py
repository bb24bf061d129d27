"""A cluster's `tasks:` against the moto server (issue 20, item 4): the deployed stack's
scheduler role, task definitions and the EventBridge Scheduler schedule; `status` showing the
tasks; `nixecs run` starting one with RunTask and waiting on it with DescribeTasks.

moto 5.2's CloudFormation does not model AWS::Scheduler::Schedule (moto/scheduler has no
CloudFormationModel; the stack skips the resource): the schedule's properties are checked
offline with cfn-lint (test_scheduled.py, test_cfn_lint_clean_in_the_fleets_region) and here
created with the Scheduler API from the deployed template, every reference resolved against
the stack's physical resources, so that moto's scheduler holds what CloudFormation would.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from aws_fixtures import moto_client, run_cli
from nixecs import naming
from nixecs.aws.deploy import _parse_template, _template_text
from stack_fixtures import deploy_on_moto
from test_scheduled import fleet_text

pytestmark = pytest.mark.moto


def _resolve(value: Any, physical: dict[str, str], attributes: dict[str, str]) -> Any:
    """The template's Ref and Fn::GetAtt … Arn resolved as CloudFormation would."""
    if isinstance(value, dict):
        if set(value) == {"Ref"}:
            return physical[value["Ref"]]
        if set(value) == {"Fn::GetAtt"}:
            logical, attribute = value["Fn::GetAtt"]
            assert attribute == "Arn", value
            return attributes[logical]
        return {k: _resolve(v, physical, attributes) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, physical, attributes) for v in value]
    return value


def _deployed(url: str, tmp_path: Path, capsys: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The fleet deployed; what moto's CloudFormation leaves out stood in as AWS makes it:
    the task definitions' Tags (moto registers them untagged) and the capacity providers
    (not modelled; Ref of AWS::ECS::CapacityProvider is its name)."""
    deploy_on_moto(fleet_text(), url, tmp_path, capsys)
    cfn = moto_client(url, "cloudformation")
    template = _parse_template(_template_text(cfn, naming.stack_name("prod")))
    resources = cfn.list_stack_resources(StackName=naming.stack_name("prod"))
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources["StackResourceSummaries"]
    }
    ecs = moto_client(url, "ecs")
    for logical, resource in template["Resources"].items():
        if resource["Type"] == "AWS::ECS::TaskDefinition":
            tags = [{"key": t["Key"], "value": t["Value"]} for t in resource["Properties"]["Tags"]]
            ecs.tag_resource(resourceArn=physical[logical], tags=tags)
        if resource["Type"] == "AWS::ECS::CapacityProvider" and logical not in physical:
            physical[logical] = resource["Properties"]["Name"]
    return template, physical


def _schedule_of(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (logical, r)
        for logical, r in template["Resources"].items()
        if r["Type"] == "AWS::Scheduler::Schedule"
    ]
    return found


def test_the_scheduler_role_and_task_definitions_are_created(moto, tmp_path, capsys) -> None:
    template, physical = _deployed(moto.url, tmp_path, capsys)
    logical, schedule = _schedule_of(template)
    # moto's CloudFormation leaves the schedule out (see the module's docstring)
    assert moto_client(moto.url, "scheduler").list_schedules()["Schedules"] == []
    role_logical = schedule["Properties"]["Target"]["RoleArn"]["Fn::GetAtt"][0]
    iam = moto_client(moto.url, "iam")
    role = iam.get_role(RoleName=physical[role_logical])["Role"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    (policy_name,) = iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
    document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=policy_name)
    policy = document["PolicyDocument"]
    if isinstance(policy, str):  # moto keeps a CloudFormation policy as Python's str(dict)
        policy = ast.literal_eval(policy)
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert statements["RunThisTask"]["Action"] == "ecs:RunTask"
    assert statements["RunThisTask"]["Resource"].endswith(":task-definition/nixecs-prod-report:*")
    # iam:PassRole on the task's own two roles, which exist
    passed = statements["PassItsRoles"]["Resource"]
    assert len(passed) == 2
    for arn in passed:
        assert iam.get_role(RoleName=arn.rsplit("/", 1)[-1])["Role"]["Arn"] == arn
    ecs = moto_client(moto.url, "ecs")
    families = ecs.list_task_definition_families(familyPrefix="nixecs-prod-")["families"]
    assert {"nixecs-prod-report", "nixecs-prod-migrate", "nixecs-prod-web"} <= set(families)
    assert logical not in physical  # moto's stack has no such resource


def test_the_schedule_as_cloudformation_would_create_it(moto, tmp_path, capsys) -> None:
    template, physical = _deployed(moto.url, tmp_path, capsys)
    _, schedule = _schedule_of(template)
    ecs = moto_client(moto.url, "ecs")
    iam = moto_client(moto.url, "iam")
    cluster_arn = ecs.describe_clusters(clusters=[naming.ecs_cluster_name("prod")])["clusters"][0][
        "clusterArn"
    ]
    attributes = {
        "Cluster": cluster_arn,
        **{
            name: iam.get_role(RoleName=physical[name])["Role"]["Arn"]
            for name, r in template["Resources"].items()
            if r["Type"] == "AWS::IAM::Role" and name in physical
        },
    }
    properties = _resolve(schedule["Properties"], physical, attributes)
    # The Scheduler API spells CapacityProviderStrategyItem's members capacityProvider, base,
    # weight; CloudFormation's AWS::Scheduler::Schedule schema CapacityProvider, Base, Weight
    # (cfn-lint's registry schema of the type): the resource handler maps one to the other.
    ecs_parameters = properties["Target"]["EcsParameters"]
    ecs_parameters["CapacityProviderStrategy"] = [
        {key[0].lower() + key[1:]: value for key, value in item.items()}
        for item in ecs_parameters["CapacityProviderStrategy"]
    ]
    scheduler = moto_client(moto.url, "scheduler")
    scheduler.create_schedule(Name="nixecs-prod-report", **properties)
    got = scheduler.get_schedule(Name="nixecs-prod-report")
    assert got["ScheduleExpression"] == "cron(15 3 ? * MON-FRI *)"
    assert got["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert got["State"] == "ENABLED" and got["FlexibleTimeWindow"] == {"Mode": "OFF"}
    target = got["Target"]
    assert target["Arn"] == cluster_arn
    # the role is the stack's scheduler role; the task definition the stack's report
    assert iam.get_role(RoleName=target["RoleArn"].rsplit("/", 1)[-1])
    parameters = target["EcsParameters"]
    definition = ecs.describe_task_definition(taskDefinition=parameters["TaskDefinitionArn"])
    assert definition["taskDefinition"]["family"] == "nixecs-prod-report"
    (strategy,) = parameters["CapacityProviderStrategy"]
    assert strategy["capacityProvider"] == naming.group_resource_name("prod", "web")
    assert parameters["TaskCount"] == 1


def _with_instance(url: str) -> None:
    """One container instance in the cluster (moto places RunTask's tasks on one)."""
    ec2 = moto_client(url, "ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    (instance,) = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"]
    document = json.dumps({"instanceId": instance["InstanceId"], "region": "us-east-1"})
    moto_client(url, "ecs").register_container_instance(
        cluster=naming.ecs_cluster_name("prod"), instanceIdentityDocument=document
    )


def test_status_shows_the_clusters_tasks(moto, tmp_path, capsys, monkeypatch) -> None:
    _deployed(moto.url, tmp_path, capsys)
    _with_instance(moto.url)
    base = ["--endpoint-url", moto.url, "--region", "us-east-1"]
    assert run_cli(capsys, [*base, "run", "prod/migrate"]).code == 0
    data = run_cli(capsys, [*base, "--output", "json", "status"]).json()
    (cluster,) = data["clusters"]
    tasks = {t["name"]: t for t in cluster["tasks"]}
    assert sorted(tasks) == ["migrate", "report"]  # the service `web` is not among them
    assert tasks["migrate"]["running"] == 1 and tasks["report"]["running"] == 0
    assert tasks["migrate"]["task_definition"].startswith("nixecs-prod-migrate:")
    assert [i["image"] for i in tasks["report"]["images"]] == ["busybox:1.36"]
    # moto made no schedule (module docstring): status says the stack's is missing
    assert tasks["report"]["schedule"]["expression"] == "cron(15 3 ? * MON-FRI *)"
    assert tasks["report"]["schedule"]["state"] == "missing"
    assert tasks["migrate"]["schedule"] is None
    text = run_cli(capsys, [*base, "status"]).out
    assert "cron(15 3 ? * MON-FRI *) Europe/Paris (missing)" in text
    assert "run by hand" in text


def test_run_starts_the_task_on_its_groups_capacity_provider(
    moto, tmp_path, capsys, monkeypatch
) -> None:
    """moto's tasks never run: RunTask's task is asserted as ECS recorded it; the wait reads
    moto's DescribeTasks, whose task moves one state a call (RUNNING … STOPPED) and stops
    with exit code 0. Other exit codes and failures: test_run_task.py's scripted client."""
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    _deployed(moto.url, tmp_path, capsys)
    _with_instance(moto.url)
    base = ["--endpoint-url", moto.url, "--region", "us-east-1"]
    done = run_cli(capsys, [*base, "run", "prod/report", "--command", "echo hi"])
    assert done.code == 0, done.out + done.err
    ecs = moto_client(moto.url, "ecs")
    (arn,) = ecs.list_tasks(cluster=naming.ecs_cluster_name("prod"))["taskArns"]
    assert arn in done.out + done.err
    (task,) = ecs.describe_tasks(cluster=naming.ecs_cluster_name("prod"), tasks=[arn])["tasks"]
    assert task["taskDefinitionArn"].rsplit("/", 1)[-1].startswith("nixecs-prod-report:")
    assert task["capacityProviderName"] == naming.group_resource_name("prod", "web")
    assert task["startedBy"] == "nixecs-run"
    assert task["overrides"]["containerOverrides"] == [
        {"name": "report", "command": ["echo", "hi"]}
    ]
    waited = run_cli(capsys, [*base, "run", "prod/migrate", "--wait", "--timeout", "60"])
    text = waited.out + waited.err
    assert waited.code == 0 and "Traceback" not in text, text
    (stopped,) = [
        t
        for t in ecs.describe_tasks(
            cluster=naming.ecs_cluster_name("prod"),
            tasks=ecs.list_tasks(cluster=naming.ecs_cluster_name("prod"))["taskArns"],
        )["tasks"]
        if "nixecs-prod-migrate" in t["taskDefinitionArn"]
    ]
    assert stopped["lastStatus"] == "STOPPED"
    task_id = stopped["taskArn"].rsplit("/", 1)[-1]
    # the essential container's exit code (moto's: 0) and its awslogs stream
    assert f"migrate: exit code 0; logs: /nixecs/prod/migrate migrate/migrate/{task_id}" in text


def test_run_of_a_task_that_was_never_deployed_is_one_line(moto, capsys) -> None:
    base = ["--endpoint-url", moto.url, "--region", "us-east-1"]
    done = run_cli(capsys, [*base, "run", "prod/nothing"])
    assert done.code == 1 and "Traceback" not in done.err, done.err
    assert "nixecs-prod-nothing" in done.err or "run prod/nothing" in done.err, done.err


MIGRATE = "  migrate:\n    group: web\n    image: busybox:1.36\n    memory: 64\n"
PREFLIGHTED = """\
  migrate:
    group: web
    image: {ecr: migrations, tag: v1}
    memory: 64
    secrets:
      DB_PASSWORD: /prod/db/password
      MISSING: /prod/missing
      BY_ARN: arn:aws:ssm:us-east-1:123456789012:parameter/prod/db/password
      MISSING_BY_ARN: arn:aws:ssm:us-east-1:123456789012:parameter/prod/gone
      OTHER_ACCOUNT: arn:aws:ssm:us-east-1:210987654321:parameter/shared/token
      SIGNING: {secretsmanager: prod/signing}
"""


def test_preflight_covers_a_clusters_tasks(moto, tmp_path, capsys) -> None:
    """E132 (SSM parameters, by name and by ARN of this account and region), E177 (Secrets
    Manager) and E137 (ECR repository) at the task's own entries; no value in the output."""
    from stack_fixtures import on_moto
    from test_scheduled import tasks_with

    moto_client(moto.url, "ssm").put_parameter(
        Name="/prod/db/password", Value="s3cret", Type="SecureString"
    )
    text = on_moto(tasks_with(MIGRATE, PREFLIGHTED), moto.url)
    fleet = tmp_path / "fleet.yml"
    fleet.write_text(text, encoding="utf-8")
    done = run_cli(capsys, ["--endpoint-url", moto.url, "validate", str(fleet), "--aws"])
    assert done.code == 2, done.out + done.err
    lines = text.split("\n")

    def at(code: str) -> list[str]:
        return [
            lines[int(x.split(":")[1]) - 1].strip()
            for x in done.err.splitlines()
            if f"error[{code}]" in x
        ]

    assert at("E132") == [
        "MISSING: /prod/missing",
        "MISSING_BY_ARN: arn:aws:ssm:us-east-1:123456789012:parameter/prod/gone",
    ], done.err
    assert at("E177") == ["SIGNING: {secretsmanager: prod/signing}"], done.err
    assert at("E137") == ["image: {ecr: migrations, tag: v1}"], done.err
    assert "s3cret" not in done.out + done.err
    assert "shared/token" not in done.err  # another account's: not judged (preflight.py)
