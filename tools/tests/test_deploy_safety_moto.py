"""Deployment safety as examples/fleet.yml uses it, on the moto server: the generated
deployment alarms (`deployment.alarms.http_5xx` / `unhealthy_hosts`) and the cluster's `notifications:` rules
and topic policy, deployed with the real template. What moto's CloudFormation makes of them
is checked through each service's own API, never by trusting CREATE_COMPLETE (DESIGN §8):
moto's CloudFormation creates the EventBridge rules with their SNS targets, but skips every
AWS::CloudWatch::Alarm, so `deploy` looks the generated alarms up through CloudWatch and
warns, naming each; the alarms themselves and the service's DeploymentConfiguration are
checked on the template (tests/test_cloudformation.py test_step_policy_pair_gets_two_alarms,
tests/test_deployment_alarms.py) and by cfn-lint."""

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
    notifications: {{sns_topic: "{topic}"}}
    load_balancer: {{vpc: {vpc}, security_groups: [{alb}]}}
    groups:
      web: {{ami: ami-0123456789abcdef0, instance_types: [m6i.large], capacity: {{min: 0, max: 2}}}}
    services:
      web:
        group: web
        image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.0
        memory: 512
        port: 8080
        routing: {{priority: 10, path_patterns: ["/*"]}}
        deployment:
          alarms: {{http_5xx: 10, unhealthy_hosts: 1}}
"""


def test_deployment_alarms_and_notifications_deploy(
    moto, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    network = alb_network(moto.url)
    topic = moto_client(moto.url, "sns").create_topic(Name="prod-ops")["TopicArn"]
    fleet = tmp_path / "fleet.yml"
    fleet.write_text(FLEET.format(topic=topic, **network))
    deployed = run_cli(
        capsys, ["--endpoint-url", moto.url, "deploy", str(fleet), "--yes", "--no-preflight"]
    )
    assert deployed.code == 0, deployed.err
    # moto's CloudFormation skipped the alarms: the deploy's own look-up says so, naming them
    warning = next(line for line in deployed.err.splitlines() if "not found through" in line)
    assert "alarm nixecs-prod-web-deployment-5xx" in warning
    assert "alarm nixecs-prod-web-deployment-unhealthy" in warning
    alarms = moto_client(moto.url, "cloudwatch").describe_alarms()["MetricAlarms"]
    assert not [a for a in alarms if "deployment" in a["AlarmName"]]
    rules = moto_client(moto.url, "events").list_rules()["Rules"]
    targets = [
        t["Arn"]
        for r in rules
        for t in moto_client(moto.url, "events").list_targets_by_rule(Rule=r["Name"])["Targets"]
    ]
    assert len(rules) == 2 and targets == [topic, topic]
