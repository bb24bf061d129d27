"""An ALB-fronted service deployed end to end against the moto server (ELBv2 included) with
the real templates, and `nixecs status` showing its target group's health."""

from __future__ import annotations

from pathlib import Path

import pytest

from aws_fixtures import alb_network, moto_client, run_cli

pytestmark = pytest.mark.moto

FLEET = """\
version: 1
region: us-east-1
clusters:
  prod:
    subnets: [{subnet_a}, {subnet_b}]
    security_groups: [{instances}]
    load_balancer:
      vpc: {vpc}
      security_groups: [{alb}]
      http: true
    groups:
      web:
        ami: ami-0123456789abcdef0
        instance_types: [m6i.large]
        capacity: {{min: 0, max: 2}}
    services:
      web:
        group: web
        image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.0
        memory: 512
        port: 8080
        routing:
          priority: 10
          path_patterns: ["/*"]
          health_check: {{path: /healthz, matcher: "200-299", interval: 15, timeout: 5}}
        placement:
          strategy: ["spread:attribute:ecs.availability-zone"]
          constraints: [distinctInstance]
        deployment: {{minimum_healthy_percent: 50, maximum_percent: 200}}
"""


def test_alb_fronted_service_deploys_and_status_shows_target_health(
    moto, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    network = alb_network(moto.url)
    fleet = tmp_path / "fleet.yml"
    fleet.write_text(FLEET.format(**network))
    deployed = run_cli(
        capsys,
        ["--endpoint-url", moto.url, "deploy", str(fleet), "--yes", "--no-preflight"],
    )
    assert deployed.code == 0, deployed.err
    assert "nixecs-prod: created (CREATE_COMPLETE)" in deployed.out
    elbv2 = moto_client(moto.url, "elbv2")
    balancers = elbv2.describe_load_balancers()["LoadBalancers"]
    assert len(balancers) == 1 and balancers[0]["Scheme"] == "internet-facing"
    listeners = elbv2.describe_listeners(LoadBalancerArn=balancers[0]["LoadBalancerArn"])
    assert [x["Port"] for x in listeners["Listeners"]] == [80]
    groups = elbv2.describe_target_groups()["TargetGroups"]
    assert len(groups) == 1 and groups[0]["HealthCheckPath"] == "/healthz"
    rules = elbv2.describe_rules(ListenerArn=listeners["Listeners"][0]["ListenerArn"])["Rules"]
    assert {r["Priority"] for r in rules} == {"10", "default"}
    ec2 = moto_client(moto.url, "ec2")
    group = ec2.describe_security_groups(GroupIds=[network["instances"]])["SecurityGroups"][0]
    admitted = [
        (p["FromPort"], p["ToPort"], [g["GroupId"] for g in p.get("UserIdGroupPairs", [])])
        for p in group["IpPermissions"]
    ]
    assert (32768, 65535, [network["alb"]]) in admitted

    # moto's CloudFormation drops an ECS service's LoadBalancers (moto 5.2.5,
    # ecs/models.py Service.create_from_cloudformation_json), so the service status reads is
    # made through the ECS API itself, with the deployed target group and a target in it.
    instance = ec2.run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=network["subnet_a"]
    )["Instances"][0]["InstanceId"]
    target_group = groups[0]["TargetGroupArn"]
    elbv2.register_targets(TargetGroupArn=target_group, Targets=[{"Id": instance, "Port": 32770}])
    ecs = moto_client(moto.url, "ecs")
    ecs.create_service(
        cluster="prod",
        serviceName="direct",
        taskDefinition="nixecs-prod-web",
        desiredCount=0,
        loadBalancers=[
            {"targetGroupArn": target_group, "containerName": "web", "containerPort": 8080}
        ],
    )
    status = run_cli(capsys, ["--endpoint-url", moto.url, "--output", "json", "status"])
    assert status.code == 0, status.err
    (cluster,) = status.json()["clusters"]
    services = {s["name"]: s for s in cluster["services"]}
    (target,) = services["direct"]["target_groups"]
    assert target["arn"] == target_group and target["error"] is None
    assert target["total"] == 1 and sum(target["states"].values()) == 1
    text = run_cli(capsys, ["--endpoint-url", moto.url, "status"])
    row = next(line for line in text.out.splitlines() if line.lstrip().startswith("direct"))
    assert f"{target['healthy']}/1 healthy" in row, text.out

    # a target group the API does not answer for shows its error code, not a failure
    gone = target_group.rsplit("/", 2)[0] + "/gone/0123456789abcdef"
    ecs.create_service(
        cluster="prod",
        serviceName="gone",
        taskDefinition="nixecs-prod-web",
        desiredCount=0,
        loadBalancers=[{"targetGroupArn": gone, "containerName": "web", "containerPort": 8080}],
    )
    text = run_cli(capsys, ["--endpoint-url", moto.url, "status"])
    assert text.code == 0, text.err
    row = next(line for line in text.out.splitlines() if line.lstrip().startswith("gone"))
    assert "TargetGroupNotFound" in row, text.out


def test_alb_fleet_destroys(moto, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    fleet = tmp_path / "fleet.yml"
    fleet.write_text(FLEET.format(**alb_network(moto.url)))
    base = ["--endpoint-url", moto.url]
    deployed = run_cli(capsys, [*base, "deploy", str(fleet), "--yes", "--no-preflight"])
    assert deployed.code == 0, deployed.err
    destroyed = run_cli(capsys, [*base, "destroy", "prod", "--yes"])
    assert destroyed.code == 0, destroyed.err
    elbv2 = moto_client(moto.url, "elbv2")
    assert elbv2.describe_load_balancers()["LoadBalancers"] == []
    # (moto 5.2.5 leaves the target group behind: its FakeTargetGroup has no
    # delete_from_cloudformation_json; AWS deletes it with the stack)
    stacks = moto_client(moto.url, "cloudformation").describe_stacks()["Stacks"]
    assert all(
        s["StackStatus"] == "DELETE_COMPLETE" for s in stacks if s["StackName"] == "nixecs-prod"
    )


def test_the_demo_deploys_a_load_balanced_fleet(tmp_path: Path) -> None:
    """`make demo`'s flow (tools/demo_aws.py, `nixecs local deploy`) with an ALB: the VPC,
    both subnets and both security groups get stand-ins, it deploys, shows status and
    destroys."""
    import importlib.util
    import sys

    from conftest import REPO

    spec = importlib.util.spec_from_file_location("demo_aws", REPO / "tools" / "demo_aws.py")
    assert spec is not None and spec.loader is not None
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    text = FLEET.format(
        vpc="vpc-0a1b2c3d",
        subnet_a="subnet-0a1b2c3d",
        subnet_b="subnet-0a1b2c3e",
        instances="sg-0a1b2c3d",
        alb="sg-0b1b2c3d",
    )
    fleet = tmp_path / "fleet.yml"
    fleet.write_text(text)
    output = demo.deploy_and_status(fleet, sys.executable)
    assert "nixecs-prod: created (CREATE_COMPLETE)" in output
    for original in ("subnet-0a1b2c3d", "subnet-0a1b2c3e", "sg-0a1b2c3d", "sg-0b1b2c3d"):
        assert f" for {original}" in output, original
    assert "LoadBalancer" in output and "WebTargetGroup" in output
    assert output.rstrip().endswith("nixecs-prod: destroyed")
