"""Clusters removed from the fleet, against the moto server: `deploy` and `status --fleet`
report this fleet's stacks that the fleet no longer declares (by the stack tags deploy puts
on), `deploy --plan` says what --prune would do, `deploy --prune` destroys them through
destroy's path, and another fleet's stacks are never touched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aws_fixtures import FLEET, moto_client, no_preflight, run_cli, small_template, write_fleet
from nixecs.aws import deploy as deploy_module

OLD = """\
  old:
    subnets: [subnet-0a1b2c3d]
    security_groups: [sg-0a1b2c3d]
    groups:
      web:
        host: ecs-node
        ami: ami-0123456789abcdef0
        instance_types: [m6i.large]
        capacity: {min: 1, max: 4}
"""


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(
        deploy_module, "render_template", lambda model, cluster: small_template(model, cluster)
    )
    no_preflight(monkeypatch)
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    return write_fleet(tmp_path, FLEET + OLD)


def _stacks(url: str) -> list[str]:
    cfn = moto_client(url, "cloudformation")
    return sorted(s["StackName"] for s in cfn.describe_stacks()["Stacks"])


@pytest.mark.moto
def test_removed_clusters_are_reported_planned_and_pruned(moto, fleet, capsys):
    base = ["--endpoint-url", moto.url]
    first = run_cli(capsys, [*base, "deploy", str(fleet), "--yes"])
    assert first.code == 0, first.err
    assert _stacks(moto.url) == ["nixecs-old", "nixecs-prod"]
    # another fleet's stack in the same account and region: never ours to report or prune
    moto_client(moto.url, "cloudformation").create_stack(
        StackName="nixecs-gone",
        TemplateBody=json.dumps({"Resources": {"C": {"Type": "AWS::ECS::Cluster"}}}),
        Tags=[
            {"Key": "nixecs:cluster", "Value": "gone"},
            {"Key": "nixecs:fleet", "Value": "acme"},
        ],
    )

    fleet.write_text(FLEET, encoding="utf-8")  # cluster "old" removed
    second = run_cli(capsys, [*base, "deploy", str(fleet), "--yes"])
    assert second.code == 0, second.err
    assert (
        "stacks of this fleet no longer declared in it, left in place (--prune destroys them): "
        "nixecs-old (CREATE_COMPLETE)"
    ) in second.err
    assert "nixecs-gone" not in second.err

    status = run_cli(capsys, [*base, "--output", "json", "status", "--fleet", str(fleet)])
    assert status.code == 0, status.err
    assert status.json()["orphans"] == ["nixecs-old"]

    plan = run_cli(capsys, [*base, "--output", "json", "deploy", str(fleet), "--plan", "--prune"])
    assert plan.code == 0, plan.err
    assert plan.json()["orphans"] == ["nixecs-old"] and plan.json()["pruned"] == []
    assert "would be destroyed by --prune" in plan.err
    assert _stacks(moto.url) == ["nixecs-gone", "nixecs-old", "nixecs-prod"]

    refused = run_cli(capsys, [*base, "deploy", str(fleet), "--prune"], stdin="y\n")
    assert refused.code == 2 and "--yes" in refused.err

    pruned = run_cli(capsys, [*base, "--output", "json", "deploy", str(fleet), "--prune", "--yes"])
    assert pruned.code == 0, pruned.err
    assert pruned.json()["pruned"] == ["nixecs-old"]
    assert "nixecs-old: destroyed (pruned)" in pruned.err
    assert _stacks(moto.url) == ["nixecs-gone", "nixecs-prod"]
