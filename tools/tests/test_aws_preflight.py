"""Preflight (`deploy`, `validate --aws`) against the moto server: every finding E131-E135 (E136-E138: test_aws_ecr_images.py)
at the fleet key that causes it, exit 2 before any change set; --create-service-linked-roles
creates the missing roles. (moto names the roles CreateServiceLinkedRole makes differently
from AWS — AWSServiceRoleForecs — so the "roles exist" case makes them with their AWS names.)"""

from __future__ import annotations

import json

import pytest

from aws_fixtures import moto_client, run_cli, write_fleet

X86_AMI = "ami-12c6146b"  # moto's built-in images: x86_64 …
ARM_AMI = "ami-0e9271c829888680e"  # … and arm64


def _fleet(subnet: str, sg: str, ami_web: str, ami_batch: str) -> str:
    return f"""\
version: 1
region: us-east-1
clusters:
  prod:
    subnets: [{subnet}]
    security_groups: [{sg}]
    groups:
      web:
        ami: {ami_web}
        instance_types: [m6i.large]
        capacity: {{min: 0, max: 4}}
        secrets:
          db: {{parameter: /prod/db}}
      batch:
        ami: {ami_batch}
        instance_types: [m6i.large]
        capacity: {{min: 0, max: 4}}
    services:
      bananas:
        group: web
        image: nginx:1.27
        cpu: 256
        memory: 512
        desired: 1
        secrets: {{PLAIN: /prod/plain, GONE: /prod/missing}}
        scaling:
          min: 1
          max: 4
          target_tracking: {{metric: cpu, target: 70}}
"""


def _account(url: str, *, roles: bool) -> tuple[str, str, str]:
    ec2 = moto_client(url, "ec2")
    default = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    subnet = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [default["VpcId"]]}])[
        "Subnets"
    ][0]["SubnetId"]
    sg = ec2.create_security_group(GroupName="a", Description="a", VpcId=default["VpcId"])[
        "GroupId"
    ]
    other = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    foreign = ec2.create_security_group(GroupName="b", Description="b", VpcId=other)["GroupId"]
    ssm = moto_client(url, "ssm")
    ssm.put_parameter(Name="/prod/db", Value="s3cret", Type="SecureString")
    ssm.put_parameter(Name="/prod/plain", Value="visible", Type="String")
    if roles:
        iam = moto_client(url, "iam")
        for name in (
            "AWSServiceRoleForECS",
            "AWSServiceRoleForApplicationAutoScaling_ECSService",
        ):
            iam.create_role(
                RoleName=name, Path="/aws-service-role/", AssumeRolePolicyDocument=json.dumps({})
            )
    return subnet, sg, foreign


@pytest.mark.moto
def test_every_finding_is_located_and_stops_the_deploy(moto, tmp_path, capsys):
    subnet, sg, foreign = _account(moto.url, roles=False)
    text = _fleet(subnet, f"{sg}, {foreign}, sg-0000000000000dead", X86_AMI, ARM_AMI)
    fleet = write_fleet(tmp_path, text.replace(f"ami: {X86_AMI}", "ami: ami-00000000000000bad"))
    result = run_cli(capsys, ["--endpoint-url", moto.url, "deploy", str(fleet), "--yes"])
    assert result.code == 2, result.err
    lines = result.err.splitlines()
    f = str(fleet)
    expected = [
        f"{f}:4:3: error[E131]: the service-linked role AWSServiceRoleForECS does not exist",
        f"{f}:26:9: error[E131]: the service-linked role AWSServiceRoleForApplicationAutoScaling_ECSService",
        f"{f}:25:45: error[E132]: SSM parameter /prod/missing does not exist",
        f"{f}:25:26: error[E132]: SSM parameter /prod/plain is a String, not a SecureString",
        f"{f}:6:67: error[E133]: sg-0000000000000dead does not exist in this region",
        f"{f}:6:5: error[E133]: subnets and security groups must be in one VPC",
        f"{f}:9:14: error[E134]: AMI ami-00000000000000bad does not exist in this region",
        f"{f}:15:14: error[E135]: AMI {ARM_AMI} is arm64, which instance type m6i.large cannot run",
    ]
    for prefix in expected:
        assert any(line.startswith(prefix) for line in lines), (prefix, result.err)
    assert "s3cret" not in result.err and "visible" not in result.err
    cfn = moto_client(moto.url, "cloudformation")
    assert cfn.describe_stacks()["Stacks"] == []  # nothing reached CloudFormation


@pytest.mark.moto
def test_a_clean_account_passes_and_roles_can_be_created(moto, tmp_path, capsys):
    subnet, sg, _ = _account(moto.url, roles=False)
    text = _fleet(subnet, sg, X86_AMI, X86_AMI).replace(
        "secrets: {PLAIN: /prod/plain, GONE: /prod/missing}", "secrets: {DB: /prod/db}"
    )
    fleet = write_fleet(tmp_path, text)
    missing = run_cli(capsys, ["--endpoint-url", moto.url, "validate", str(fleet), "--aws"])
    assert missing.code == 2 and missing.err.count("error[E131]") == 2, missing.err
    created = run_cli(
        capsys,
        [
            "--endpoint-url",
            moto.url,
            "validate",
            str(fleet),
            "--aws",
            "--create-service-linked-roles",
        ],
    )
    assert created.code == 0, created.err
    assert "created service-linked role AWSServiceRoleForECS (ecs.amazonaws.com)" in created.err
    assert (
        "created service-linked role AWSServiceRoleForApplicationAutoScaling_ECSService "
        "(ecs.application-autoscaling.amazonaws.com)" in created.err
    )


@pytest.mark.moto
def test_existing_roles_and_resources_are_clean(moto, tmp_path, capsys):
    subnet, sg, _ = _account(moto.url, roles=True)
    text = _fleet(subnet, sg, X86_AMI, X86_AMI).replace(
        "secrets: {PLAIN: /prod/plain, GONE: /prod/missing}", "secrets: {DB: /prod/db}"
    )
    fleet = write_fleet(tmp_path, text)
    result = run_cli(capsys, ["--endpoint-url", moto.url, "validate", str(fleet), "--aws"])
    assert result.code == 0, result.err
