"""A group removed while its services move to another group, in one deploy: ECS would refuse
to detach the capacity provider their tasks still use ("The specified capacity provider is in
use and cannot be removed"), so deploy refuses before any change set and names the two
deploys to make. Checked on the templates nixecs really renders, and on the exact AWS calls
(Stubber: the failure itself needs real ECS, which moto does not model)."""

from __future__ import annotations

import datetime

import pytest

from aws_fixtures import no_preflight, run_cli, stubbed_clients, write_fleet
from nixecs.aws.deploy import _parse_template, capacity_provider_conflicts
from nixecs.fleet.checks import check_fleet_file
from nixecs.render import render_cluster

_stubbed = pytest.fixture(name="stubbed")(stubbed_clients)

TWO_GROUPS = """\
version: 1
region: us-east-1
clusters:
  prod:
    subnets: [subnet-0a1b2c3d]
    security_groups: [sg-0a1b2c3d]
    groups:
      web: {host: ecs-node, ami: ami-0123456789abcdef0, instance_types: [m6i.large],
            capacity: {min: 1, max: 4}}
      batch: {host: ecs-node, ami: ami-0123456789abcdef0, instance_types: [m6i.large],
              capacity: {min: 1, max: 4}}
    services:
      bananas: {group: web, image: nginx:1.27, cpu: 256, memory: 512, desired: 1}
      apples: {group: batch, image: nginx:1.27, cpu: 256, memory: 512, desired: 1}
"""
# web removed, bananas moved to batch
MOVED = TWO_GROUPS.replace(
    "      web: {host: ecs-node, ami: ami-0123456789abcdef0, instance_types: [m6i.large],\n"
    "            capacity: {min: 1, max: 4}}\n",
    "",
).replace("bananas: {group: web", "bananas: {group: batch")
# first of the two deploys: web kept, bananas moved
KEPT = TWO_GROUPS.replace("bananas: {group: web", "bananas: {group: batch")


def _stack(tmp_path, text: str) -> str:
    model, _ = check_fleet_file(str(write_fleet(tmp_path, text)))
    return render_cluster(model, model.clusters["prod"]).stack_text


def test_real_templates(tmp_path):
    before = _parse_template(_stack(tmp_path, TWO_GROUPS))
    assert capacity_provider_conflicts(before, _parse_template(_stack(tmp_path, MOVED))) == [
        "service bananas runs on capacity provider nixecs-prod-web, which this deploy removes"
    ]
    # the two deploys that work: move first (nothing removed), then remove (nothing on it)
    kept = _parse_template(_stack(tmp_path, KEPT))
    assert capacity_provider_conflicts(before, kept) == []
    assert capacity_provider_conflicts(kept, _parse_template(_stack(tmp_path, MOVED))) == []


def test_deploy_refuses_before_any_change_set(tmp_path, stubbed, capsys, monkeypatch):
    no_preflight(monkeypatch)
    deployed = _stack(tmp_path, TWO_GROUPS)
    fleet = write_fleet(tmp_path, MOVED)
    cfn = stubbed("cloudformation")
    stack = {
        "StackName": "nixecs-prod",
        "StackStatus": "UPDATE_COMPLETE",
        "CreationTime": datetime.datetime(2026, 1, 1),
        "Tags": [
            {"Key": "nixecs:cluster", "Value": "prod"},
            {"Key": "nixecs:fleet", "Value": "default"},
        ],
    }
    # the ownership check of every stack first (aws/ownership.py) ...
    cfn.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "nixecs-prod"})
    # ... then the plan (aws/transitions.py) reads the deployed template ...
    cfn.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "nixecs-prod"})
    cfn.add_response(
        "get_template",
        {"TemplateBody": deployed},
        {"StackName": "nixecs-prod", "TemplateStage": "Original"},
    )
    # ... and the cluster's deploy starts
    cfn.add_response("describe_stacks", {"Stacks": [stack]}, {"StackName": "nixecs-prod"})
    cfn.add_response("describe_stack_events", {"StackEvents": []}, {"StackName": "nixecs-prod"})
    cfn.add_response(
        "get_template",
        {"TemplateBody": deployed},
        {"StackName": "nixecs-prod", "TemplateStage": "Original"},
    )
    result = run_cli(capsys, ["--region", "us-east-1", "deploy", str(fleet), "--yes"])
    assert result.code == 2, result.err
    assert "service bananas runs on capacity provider nixecs-prod-web" in result.err
    assert "two deploys" in result.err and "Traceback" not in result.err
    cfn.assert_no_pending_responses()  # and no create_change_set was made
