"""Helpers for the AWS tests: run the CLI in-process, a small fleet and a template built from
it (standing in for nixecs.cloudformation where a test needs a template moto can create),
stubbed clients, and call counting through botocore's event system."""

from __future__ import annotations

import io
import json
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from nixecs.aws.session import Session

FLEET = """\
version: 1
region: us-east-1
flake: github:acme/infra
clusters:
  prod:
    subnets: [subnet-0a1b2c3d]
    security_groups: [sg-0a1b2c3d]
    groups:
      web:
        host: ecs-node
        ami: ami-0123456789abcdef0
        instance_types: [m6i.large]
        capacity: {min: 1, max: 4}
    services:
      bananas:
        group: web
        image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/bananas:1.0
        cpu: 256
        memory: 512
        scaling:
          min: 1
          max: 20
          step:
            - name: cpu-high
              alarm: {metric: CPUUtilization, namespace: AWS/ECS, statistic: Average,
                      period: 300, evaluation_periods: 1, threshold: 80, comparison: ">="}
              adjustment_type: ChangeInCapacity
              cooldown: 60
              aggregation: Average
              steps:
                - {lower: 0, change: 2}
            - name: cpu-low
              alarm: {metric: CPUUtilization, namespace: AWS/ECS, statistic: Average,
                      period: 300, evaluation_periods: 3, threshold: 30, comparison: "<="}
              adjustment_type: ChangeInCapacity
              cooldown: 300
              aggregation: Average
              steps:
                - {upper: 0, change: -1}
      apples:
        group: web
        image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/apples:1.0
        cpu: 256
        memory: 512
        desired: 1
"""


def no_preflight(monkeypatch: pytest.MonkeyPatch) -> None:
    """For tests of other things on fleets whose subnets, AMIs and parameters are made up:
    the preflight (tested in test_aws_preflight.py) finds nothing."""
    from nixecs.aws import preflight
    from nixecs.diagnostics import Report

    monkeypatch.setattr(preflight, "preflight", lambda *a, **k: Report())


def write_fleet(directory: Path, text: str = FLEET) -> Path:
    path = directory / "fleet.yml"
    path.write_text(text, encoding="utf-8")
    return path


def deployable_fleet(directory: Path, monkeypatch: pytest.MonkeyPatch, text: str = FLEET) -> Path:
    """A fleet file `deploy` can take to moto: small_template instead of the real templates,
    no preflight, quick polls."""
    from nixecs.aws import deploy as deploy_module

    monkeypatch.setattr(
        deploy_module, "render_template", lambda model, cluster: small_template(model, cluster)
    )
    no_preflight(monkeypatch)
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    return write_fleet(directory, text)


def small_template(fleet: Any, cluster: str, *, marker: str = "1") -> str:
    """A template moto can create: the ECS cluster, an IAM role, an SSM parameter, and per
    scaled service a ScalableTarget, its policies and alarms (which moto skips)."""
    from nixecs import naming

    model = fleet.clusters[cluster]
    resources: dict[str, Any] = {
        "Cluster": {
            "Type": "AWS::ECS::Cluster",
            "Properties": {"ClusterName": naming.ecs_cluster_name(cluster)},
        },
        "InstanceRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": f"nixecs-{cluster}-instance",
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "ec2.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                },
            },
        },
        "Marker": {
            "Type": "AWS::SSM::Parameter",
            "Properties": {
                "Name": f"/nixecs/{cluster}/marker",
                "Type": "String",
                "Value": f"v{marker}",
            },
        },
    }
    for service in model.services.values():
        if service.scaling is None:
            continue
        logical = service.name.capitalize()
        resources[f"{logical}Target"] = {
            "Type": "AWS::ApplicationAutoScaling::ScalableTarget",
            "Properties": {
                "ServiceNamespace": "ecs",
                "ScalableDimension": "ecs:service:DesiredCount",
                "ResourceId": f"service/{cluster}/{service.name}",
                "MinCapacity": service.scaling.min,
                "MaxCapacity": service.scaling.max,
            },
        }
        for policy in service.scaling.step:
            resources[f"{logical}{policy.name.replace('-', '')}Alarm"] = {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmName": naming.alarm_name(cluster, service.name, policy.name),
                    "MetricName": policy.alarm.metric,
                    "Namespace": policy.alarm.namespace,
                    "Statistic": policy.alarm.statistic,
                    "Period": policy.alarm.period,
                    "EvaluationPeriods": policy.alarm.evaluation_periods,
                    "Threshold": policy.alarm.threshold,
                    "ComparisonOperator": "GreaterThanOrEqualToThreshold",
                },
            }
    return json.dumps(
        {"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources}, indent=1, sort_keys=True
    )


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def run_cli(
    capsys: pytest.CaptureFixture[str], argv: list[str], stdin: str | None = None
) -> Result:
    from nixecs.cli import run

    capsys.readouterr()
    saved = sys.stdin
    if stdin is not None:
        sys.stdin = io.StringIO(stdin)
    try:
        code = run(argv)
    finally:
        sys.stdin = saved
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


class CallCounter:
    """Counts API calls per (service, operation) through botocore's `before-call` event."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()

    def attach(self, client: Any) -> Any:
        client.meta.events.register("before-call", self._count)
        return client

    def _count(self, model: Any = None, **_: Any) -> None:
        self.calls[(model.service_model.service_name, model.name)] += 1

    def of(self, operation: str) -> int:
        return sum(n for (_, op), n in self.calls.items() if op == operation)

    @property
    def total(self) -> int:
        return sum(self.calls.values())


@contextmanager
def counting(session: Session, services: tuple[str, ...]) -> Iterator[CallCounter]:
    counter = CallCounter()
    for service in services:
        counter.attach(session.client(service))
    yield counter


def plain_client(service: str) -> Any:
    """A real client that never reaches the network once a Stubber is active on it."""
    import boto3

    return boto3.client(
        service,  # type: ignore[call-overload]
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def moto_client(url: str, service: str) -> Any:
    import boto3

    return boto3.client(
        service,  # type: ignore[call-overload]
        region_name="us-east-1",
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def alb_network(url: str) -> dict[str, str]:
    """A VPC with two subnets in two zones and two security groups (instances, load
    balancer) on the moto server: what a fleet with `load_balancer:` needs."""
    ec2 = moto_client(url, "ec2")
    vpc = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnets = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.42.{i}.0/24", AvailabilityZone=zone)["Subnet"][
            "SubnetId"
        ]
        for i, zone in enumerate(("us-east-1a", "us-east-1b"))
    ]
    groups = [
        ec2.create_security_group(GroupName=name, Description=name, VpcId=vpc)["GroupId"]
        for name in ("instances", "alb")
    ]
    return {
        "vpc": vpc,
        "subnet_a": subnets[0],
        "subnet_b": subnets[1],
        "instances": groups[0],
        "alb": groups[1],
    }


def stubbed_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Fixture body (register with `pytest.fixture(name="stubbed")(stubbed_clients)`):
    `stubbed("ec2")` → an active botocore Stubber; every Session hands out that client."""
    from botocore.stub import Stubber

    clients: dict[str, Any] = {}
    stubbers: dict[str, Stubber] = {}
    original = Session.client

    def client(self: Session, service: str) -> Any:
        if service in clients:
            self._record_client(clients[service])
            return clients[service]
        return original(self, service)

    def make(service: str) -> Stubber:
        if service not in stubbers:
            clients[service] = plain_client(service)
            stubbers[service] = Stubber(clients[service])
            stubbers[service].activate()
        return stubbers[service]

    monkeypatch.setattr(Session, "client", client)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0")
    yield make
    for stubber in stubbers.values():
        stubber.deactivate()


def make_services(url: str, cluster: str, names: list[str], desired: int = 1) -> None:
    """An ECS cluster with these services in moto (scalable targets need real services)."""
    ecs = moto_client(url, "ecs")
    ecs.create_cluster(clusterName=cluster)
    ecs.register_task_definition(
        family="app",
        containerDefinitions=[{"name": "app", "image": "nginx", "memory": 128}],
    )
    for name in names:
        ecs.create_service(
            cluster=cluster, serviceName=name, taskDefinition="app", desiredCount=desired
        )


def image_identity(disk: Path) -> str:
    """An image's identity computed plainly, as the reference for ebs.BlockMap.identity: every
    512 KiB block read (holes too), the last padded with zeros; the SHA-256 of a versioned
    header, the size, and each non-zero block's index and SHA-256 in order."""
    import hashlib

    block_size = 512 * 1024
    digest = hashlib.sha256(b"nixecs-image-v1\0" + disk.stat().st_size.to_bytes(8, "big"))
    with disk.open("rb") as handle:
        index = 0
        while chunk := handle.read(block_size):
            chunk = chunk.ljust(block_size, b"\0")
            if chunk.count(0) != block_size:
                digest.update(index.to_bytes(8, "big") + hashlib.sha256(chunk).digest())
            index += 1
    return digest.hexdigest()


def moto_tags_registered_images(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto 5.2.6 ignores RegisterImage's TagSpecifications; AWS applies them to the new AMI
    ("The tags to apply to the AMI" — RegisterImage, TagSpecifications,
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RegisterImage.html). Here every
    Session's EC2 client does what AWS does, through CreateTags right after the call, so that
    `ami publish` finds its own AMI by its tags on moto as it does on AWS."""
    original = Session.client

    def client(self: Session, service: str) -> Any:
        made = original(self, service)
        if service != "ec2" or getattr(made, "_nixecs_register_tags", False):
            return made
        register = made.register_image

        def register_image(**params: Any) -> Any:
            answer = register(**params)
            for spec in params.get("TagSpecifications", []):
                if spec.get("ResourceType") == "image":
                    made.create_tags(Resources=[answer["ImageId"]], Tags=spec["Tags"])
            return answer

        made.register_image = register_image
        made._nixecs_register_tags = True
        return made

    monkeypatch.setattr(Session, "client", client)
