"""A service with a sidecar, a task role and health checks, rendered with the real templates
and deployed end to end against the moto server (issue 10, items 1, 2 and 11): ECS then holds
exactly the task definition the fleet file describes."""

from __future__ import annotations

from pathlib import Path

import pytest

from aws_fixtures import moto_client, run_cli
from test_services import fleet_text

pytestmark = pytest.mark.moto


def _network(url: str) -> tuple[list[str], str]:
    ec2 = moto_client(url, "ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    group = ec2.create_security_group(
        GroupName="nixecs-svc-test", Description="nixecs test", VpcId=vpc["VpcId"]
    )
    return [s["SubnetId"] for s in subnets["Subnets"]][:2], group["GroupId"]


def test_sidecar_service_with_task_role_deploys(moto, tmp_path: Path, capsys) -> None:
    subnets, group = _network(moto.url)
    text = (
        fleet_text()
        .replace("region: eu-west-1", "region: us-east-1")
        .replace("subnets: [subnet-0a1b2c3d]", f"subnets: [{', '.join(subnets)}]")
        .replace("security_groups: [sg-0a1b2c3d]", f"security_groups: [{group}]")
        .replace("capacity: {min: 1, max: 3}", "capacity: {min: 0, max: 3}")
    )
    fleet = tmp_path / "fleet.yml"
    fleet.write_text(text, encoding="utf-8")
    argv = ["--endpoint-url", moto.url, "deploy", str(fleet), "--yes", "--no-preflight"]
    done = run_cli(capsys, argv)
    assert done.code == 0, done.out + done.err
    assert "nixecs-prod: created (CREATE_COMPLETE)" in done.out

    ecs = moto_client(moto.url, "ecs")
    (arn,) = ecs.list_task_definitions(familyPrefix="nixecs-prod-shop")["taskDefinitionArns"]
    task = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    assert task["memory"] == "1024"
    containers = {c["name"]: c for c in task["containerDefinitions"]}
    assert list(containers) == ["app", "envoy", "migrate"]
    app = containers["app"]
    assert app["healthCheck"]["command"][0] == "CMD-SHELL"
    assert app["healthCheck"]["startPeriod"] == 30
    assert {d["containerName"]: d["condition"] for d in app["dependsOn"]} == {
        "envoy": "HEALTHY",
        "migrate": "SUCCESS",
    }
    assert (app["memory"], app["memoryReservation"]) == (768, 512)
    assert containers["migrate"]["essential"] is False
    assert containers["envoy"]["portMappings"][1]["protocol"] == "udp"

    # The task role: exactly the file's statements and managed policy, assumed by ECS tasks.
    # moto's CloudFormation drops TaskRoleArn and ExecutionRoleArn from the task definition
    # (moto 5.2.5 moto/ecs/models.py TaskDefinition.create_from_cloudformation_json passes on
    # only Family, ContainerDefinitions, Volumes and Memory), so the role is found through the
    # stack's resources; test_services.py checks that the template references it.
    cfn = moto_client(moto.url, "cloudformation")
    resources = cfn.list_stack_resources(StackName="nixecs-prod")["StackResourceSummaries"]
    roles = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in resources
        if r["ResourceType"] == "AWS::IAM::Role"
    }
    role_name = next(name for logical, name in roles.items() if logical.endswith("TaskRole"))
    iam = moto_client(moto.url, "iam")
    role = iam.get_role(RoleName=role_name)["Role"]
    principal = role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]
    assert principal == {"Service": "ecs-tasks.amazonaws.com"}
    # (ManagedPolicyArns: moto's Role.create_from_cloudformation_json ignores it — moto 5.2.5
    # moto/iam/models.py — so the attachment is checked in the template, test_services.py.)
    (inline,) = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    document = iam.get_role_policy(RoleName=role_name, PolicyName=inline)["PolicyDocument"]
    # moto keeps the document as the text CloudFormation handed it (a Python repr here), so
    # only its content is compared; its exact shape is checked in test_services.py.
    text = str(document)
    for action in ("sqs:SendMessage", "sqs:ReceiveMessage", "s3:ListAllMyBuckets"):
        assert action in text
    assert "arn:aws:sqs:eu-west-1:123456789012:orders" in text
    # and the service runs that task definition
    (service,) = ecs.describe_services(cluster="prod", services=["shop"])["services"]
    assert service["taskDefinition"] == arn


def test_preflight_checks_every_containers_secrets_where_written(moto, tmp_path: Path, capsys):
    """E132 for a sidecar's secret points at the sidecar's `secrets:` entry."""
    subnets, group = _network(moto.url)
    ssm = moto_client(moto.url, "ssm")
    ssm.put_parameter(Name="/prod/db/password", Value="s3cret", Type="SecureString")
    text = (
        fleet_text()
        .replace("region: eu-west-1", "region: us-east-1")
        .replace("subnets: [subnet-0a1b2c3d]", f"subnets: [{', '.join(subnets)}]")
        .replace("security_groups: [sg-0a1b2c3d]", f"security_groups: [{group}]")
    )
    fleet = tmp_path / "fleet.yml"
    fleet.write_text(text, encoding="utf-8")
    done = run_cli(capsys, ["--endpoint-url", moto.url, "validate", str(fleet), "--aws"])
    assert done.code == 2
    line = next(i for i, t in enumerate(text.split("\n"), 1) if "TOKEN: /prod/envoy/token" in t)
    e132 = [x for x in done.err.splitlines() if "error[E132]" in x]
    assert len(e132) == 1 and e132[0].startswith(f"{fleet}:{line}:"), done.err
    assert "/prod/envoy/token does not exist" in e132[0] and "s3cret" not in done.err
