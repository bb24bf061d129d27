"""The real template of a cluster with a sized, encrypted root volume, Container Insights
off, a log retention and an override, deployed to the moto server: what AWS's APIs then
report (instances launched from the launch template, their volumes, the cluster's setting,
the log group's retention)."""

from __future__ import annotations

from pathlib import Path

import pytest

from aws_fixtures import moto_client, no_preflight, run_cli, write_fleet

pytestmark = pytest.mark.moto


def _network(url: str) -> tuple[list[str], str]:
    ec2 = moto_client(url, "ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    group = ec2.create_security_group(
        GroupName="nixecs-infra-test", Description="test", VpcId=vpc["VpcId"]
    )
    return [s["SubnetId"] for s in subnets["Subnets"]][:2], group["GroupId"]


def test_root_volume_insights_logs_and_overrides_deploy(
    moto: object,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = moto.url  # type: ignore[attr-defined]
    subnets, security_group = _network(url)
    no_preflight(monkeypatch)
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.05")
    fleet = write_fleet(
        tmp_path,
        f"""\
version: 1
region: us-east-1
flake: github:acme/infra
clusters:
  prod:
    subnets: [{", ".join(subnets)}]
    security_groups: [{security_group}]
    container_insights: disabled
    log_retention_days: 14
    overrides:
      WebLaunchTemplate:
        Properties.LaunchTemplateData.Monitoring.Enabled: true
    groups:
      web:
        ami: ami-0123456789abcdef0
        instance_types: [m6i.large]
        capacity: {{min: 1, max: 2}}
        root_volume: {{size_gib: 20, iops: 4000, throughput: 200}}
        key_pair: ops
    services:
      api:
        group: web
        image: nginx:1.27
        memory: 256
""",
    )
    result = run_cli(capsys, ["--endpoint-url", url, "deploy", str(fleet), "--wait", "--yes"])
    assert result.code == 0, result.err

    versions = moto_client(url, "ec2").describe_launch_template_versions(
        LaunchTemplateName="nixecs-prod-web"
    )["LaunchTemplateVersions"]
    data = versions[0]["LaunchTemplateData"]
    ebs = data["BlockDeviceMappings"][0]["Ebs"]
    assert data["BlockDeviceMappings"][0]["DeviceName"] == "/dev/xvda"
    assert (ebs["VolumeSize"], ebs["VolumeType"], ebs["Encrypted"]) == (20, "gp3", True)
    assert data["Monitoring"] == {"Enabled": True}  # the override reached AWS
    assert data["KeyName"] == "ops"

    # moto launches the group's instance from the template, with the volume as declared
    group = moto_client(url, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=["nixecs-prod-web"]
    )["AutoScalingGroups"][0]
    (instance,) = group["Instances"]
    volumes = moto_client(url, "ec2").describe_volumes(
        Filters=[{"Name": "attachment.instance-id", "Values": [instance["InstanceId"]]}]
    )["Volumes"]
    root = [v for v in volumes if v["Attachments"][0]["Device"] == "/dev/xvda"]
    assert [(v["Size"], v["Encrypted"]) for v in root] == [(20, True)]

    cluster = moto_client(url, "ecs").describe_clusters(clusters=["prod"], include=["SETTINGS"])
    assert cluster["clusters"][0]["settings"] == [
        {"name": "containerInsights", "value": "disabled"}
    ]
    (log_group,) = moto_client(url, "logs").describe_log_groups(
        logGroupNamePrefix="/nixecs/prod/api"
    )["logGroups"]
    assert log_group["retentionInDays"] == 14
