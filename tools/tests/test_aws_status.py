"""`nixecs status` against moto server: what it shows, in text and JSON, and that it pages
and batches (the number of calls does not grow with the number of resources)."""

from __future__ import annotations

import json

import pytest

from aws_fixtures import counting, make_services, moto_client, run_cli
from nixecs.aws.session import Session
from nixecs.aws.status import collect, render

pytestmark = pytest.mark.moto

SERVICES = ("application-autoscaling", "autoscaling", "cloudformation", "cloudwatch", "ec2", "ecs")


def build_cluster(
    url: str, cluster: str = "prod", services: int = 3, groups: tuple[str, ...] = ("web",)
) -> None:
    cfn = moto_client(url, "cloudformation")
    cfn.create_stack(
        StackName=f"nixecs-{cluster}",
        TemplateBody=json.dumps(
            {
                "Resources": {
                    "P": {
                        "Type": "AWS::SSM::Parameter",
                        "Properties": {"Name": f"/{cluster}/p", "Type": "String", "Value": "x"},
                    }
                }
            }
        ),
    )
    names = [f"svc{i:03d}" for i in range(services)]
    make_services(url, cluster, names, desired=2)
    ec2 = moto_client(url, "ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    autoscaling = moto_client(url, "autoscaling")
    for group in groups:
        name = f"nixecs-{cluster}-{group}"
        ec2.create_launch_template(
            LaunchTemplateName=name,
            LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"},
        )
        ec2.create_launch_template_version(
            LaunchTemplateName=name,
            LaunchTemplateData={"ImageId": "ami-1234abcd", "InstanceType": "t3.micro"},
        )
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": name, "Version": "2"},
            MinSize=1,
            MaxSize=4,
            DesiredCapacity=2,
            VPCZoneIdentifier=subnet,
            Tags=[
                {"Key": "nixecs:cluster", "Value": cluster, "PropagateAtLaunch": True},
                {"Key": "nixecs:group", "Value": group, "PropagateAtLaunch": True},
            ],
        )
    aas = moto_client(url, "application-autoscaling")
    cloudwatch = moto_client(url, "cloudwatch")
    for name in names:
        resource = f"service/{cluster}/{name}"
        aas.register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=resource,
            ScalableDimension="ecs:service:DesiredCount",
            MinCapacity=1,
            MaxCapacity=20,
        )
        policy = aas.put_scaling_policy(
            PolicyName="cpu-high",
            ServiceNamespace="ecs",
            ResourceId=resource,
            ScalableDimension="ecs:service:DesiredCount",
            PolicyType="StepScaling",
            StepScalingPolicyConfiguration={
                "AdjustmentType": "ChangeInCapacity",
                "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 2}],
            },
        )
        cloudwatch.put_metric_alarm(
            AlarmName=f"nixecs-{cluster}-{name}-cpu-high",
            MetricName="CPUUtilization",
            Namespace="AWS/ECS",
            Statistic="Average",
            Period=300,
            EvaluationPeriods=1,
            Threshold=80,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            AlarmActions=[policy["PolicyARN"]],
        )


def test_status_shows_clusters_groups_services_scaling_and_alarms(moto, capsys):
    build_cluster(moto.url, services=3)
    moto_client(moto.url, "cloudwatch").set_alarm_state(
        AlarmName="nixecs-prod-svc001-cpu-high", StateValue="ALARM", StateReason="test"
    )
    data = json.loads(
        run_cli(
            capsys,
            ["--endpoint-url", moto.url, "--region", "us-east-1", "--output", "json", "status"],
        ).out
    )
    (cluster,) = data["clusters"]
    assert (
        cluster["name"] == "prod"
        and cluster["stack_status"] == "CREATE_COMPLETE"
        and cluster["ecs_status"] == "ACTIVE"
    )
    (group,) = cluster["groups"]
    assert group["name"] == "web" and group["auto_scaling_group"] == "nixecs-prod-web"
    assert (group["desired"], group["in_service"], group["min"], group["max"]) == (2, 2, 1, 4)
    assert (group["launch_template_version"], group["ami"]) == ("2", "ami-1234abcd")
    assert [s["name"] for s in cluster["services"]] == ["svc000", "svc001", "svc002"]
    service = cluster["services"][1]
    assert service["desired"] == 2 and service["task_definition"] == "app:1"
    assert service["scaling"]["min"] == 1 and service["scaling"]["max"] == 20
    (policy,) = service["scaling"]["policies"]
    assert policy["name"] == "cpu-high" and policy["type"] == "StepScaling"
    assert policy["alarms"] == [{"name": "nixecs-prod-svc001-cpu-high", "state": "ALARM"}]

    text = run_cli(capsys, ["--endpoint-url", moto.url, "--region", "us-east-1", "status"])
    assert text.code == 0, text.err
    assert "cluster prod  stack nixecs-prod: CREATE_COMPLETE  ECS: ACTIVE" in text.out
    web = next(line for line in text.out.splitlines() if line.strip().startswith("web"))
    assert (
        web.split()[:6] == ["web", "2", "2", "1..4", "nixecs-prod-web", "2"]
        and "ami-1234abcd" in web
    )
    row = next(line for line in text.out.splitlines() if line.strip().startswith("svc001"))
    assert "cpu-high (step)" in row and "cpu-high=ALARM" in row


def test_status_of_one_cluster_and_of_nothing(moto, capsys):
    build_cluster(moto.url, cluster="prod", services=1)
    build_cluster(moto.url, cluster="prod-eu", services=2, groups=("batch",))
    base = ["--endpoint-url", moto.url, "--region", "us-east-1", "--output", "json", "status"]
    both = json.loads(run_cli(capsys, base).out)
    assert [c["name"] for c in both["clusters"]] == ["prod", "prod-eu"]
    # "nixecs-prod-eu-batch" belongs to prod-eu, not to a group "eu-batch" of prod
    assert [g["name"] for g in both["clusters"][0]["groups"]] == ["web"]
    assert [g["name"] for g in both["clusters"][1]["groups"]] == ["batch"]
    one = json.loads(run_cli(capsys, [*base, "prod-eu"]).out)
    assert [c["name"] for c in one["clusters"]] == ["prod-eu"] and len(
        one["clusters"][0]["services"]
    ) == 2
    missing = json.loads(run_cli(capsys, [*base, "nope"]).out)
    assert (
        missing["clusters"][0]["stack_status"] == "NOT_DEPLOYED"
        and missing["clusters"][0]["services"] == []
    )


def test_empty_region_says_so(moto, capsys):
    result = run_cli(capsys, ["--endpoint-url", moto.url, "--region", "us-east-1", "status"])
    assert result.code == 0 and "no nixecs clusters" in result.out


def _calls(url: str, services: int) -> dict[str, int]:
    session = Session(region="us-east-1", endpoint_url=url)
    with counting(session, SERVICES) as counter:
        data = collect(session)
    assert len(data["clusters"][0]["services"]) == services
    assert all(s["scaling"]["policies"] for s in data["clusters"][0]["services"])
    render(data)
    return {op: counter.of(op) for _, op in counter.calls}


def test_calls_are_batched_not_one_per_resource(moto):
    build_cluster(moto.url, services=5)
    few = _calls(moto.url, 5)
    moto.reset()
    build_cluster(moto.url, services=45)
    many = _calls(moto.url, 45)
    assert many["DescribeServices"] == 5  # 10 names a call
    assert few["DescribeServices"] == 1
    assert many["ListServices"] == 1
    # One DescribeTaskDefinition per distinct task definition (ECS has no batch form); the
    # services here share one.
    assert many["DescribeTaskDefinition"] == few["DescribeTaskDefinition"] == 1
    # nothing else grows with 9x the services, targets, policies and alarms
    assert {op: n for op, n in many.items() if op != "DescribeServices"} == {
        op: n for op, n in few.items() if op != "DescribeServices"
    }
    # (ListStackResources: the stack's task definitions no service runs, its `tasks:`)
    assert many["ListStackResources"] == 1
    assert sum(many.values()) <= 16
