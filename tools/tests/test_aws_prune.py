"""Clusters removed from the fleet, against the moto server: `deploy` and `status --fleet`
report this fleet's stacks that the fleet no longer declares (by the stack tags deploy puts
on), `deploy --plan` says what --prune would do, `deploy --prune` destroys them through
destroy's path, and another fleet's stacks are never touched — nor, since every fleet file
without `name_prefix` shares the identity `default`, another such file's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aws_fixtures import FLEET, deployable_fleet, moto_client, run_cli, write_fleet

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
    return deployable_fleet(tmp_path, monkeypatch, ACME + OLD)


ACME = FLEET.replace("region: us-east-1\n", "region: us-east-1\nname_prefix: acme\n")


def _stacks(url: str) -> list[str]:
    cfn = moto_client(url, "cloudformation")
    return sorted(s["StackName"] for s in cfn.describe_stacks()["Stacks"])


@pytest.mark.moto
def test_removed_clusters_are_reported_planned_and_pruned(moto, fleet, capsys):
    base = ["--endpoint-url", moto.url]
    first = run_cli(capsys, [*base, "deploy", str(fleet), "--yes"])
    assert first.code == 0, first.err
    assert _stacks(moto.url) == ["nixecs-acme-old", "nixecs-acme-prod"]
    # another fleet's stack in the same account and region: never ours to report or prune
    moto_client(moto.url, "cloudformation").create_stack(
        StackName="nixecs-gone",
        TemplateBody=json.dumps({"Resources": {"C": {"Type": "AWS::ECS::Cluster"}}}),
        Tags=[
            {"Key": "nixecs:cluster", "Value": "gone"},
            {"Key": "nixecs:fleet", "Value": "other"},
        ],
    )

    fleet.write_text(ACME, encoding="utf-8")  # cluster "old" removed
    second = run_cli(capsys, [*base, "deploy", str(fleet), "--yes"])
    assert second.code == 0, second.err
    assert (
        "stacks of this fleet no longer declared in it, left in place (--prune destroys them): "
        "nixecs-acme-old (CREATE_COMPLETE)"
    ) in second.err
    assert "nixecs-gone" not in second.err

    status = run_cli(capsys, [*base, "--output", "json", "status", "--fleet", str(fleet)])
    assert status.code == 0, status.err
    assert status.json()["orphans"] == ["nixecs-acme-old"]

    plan = run_cli(capsys, [*base, "--output", "json", "deploy", str(fleet), "--plan", "--prune"])
    assert plan.code == 0, plan.err
    assert plan.json()["orphans"] == ["nixecs-acme-old"] and plan.json()["pruned"] == []
    assert "would be destroyed by --prune" in plan.err
    assert _stacks(moto.url) == ["nixecs-acme-old", "nixecs-acme-prod", "nixecs-gone"]

    refused = run_cli(capsys, [*base, "deploy", str(fleet), "--prune"], stdin="y\n")
    assert refused.code == 2 and "--yes" in refused.err

    pruned = run_cli(capsys, [*base, "--output", "json", "deploy", str(fleet), "--prune", "--yes"])
    assert pruned.code == 0, pruned.err
    assert pruned.json()["pruned"] == ["nixecs-acme-old"]
    assert "nixecs-acme-old: destroyed (pruned)" in pruned.err
    assert _stacks(moto.url) == ["nixecs-acme-prod", "nixecs-gone"]


@pytest.mark.moto
def test_two_fleet_files_without_name_prefix_never_prune_each_other(moto, fleet, tmp_path, capsys):
    """Both carry the identity `default`: what one does not declare may be the other's.
    (`fleet`: the fixture's template and preflight stand-ins.)"""
    base = ["--endpoint-url", moto.url]
    (tmp_path / "b").mkdir()
    first = write_fleet(tmp_path, FLEET)  # the fixture's (prefixed) fleet file, replaced
    second = write_fleet(tmp_path / "b", FLEET.replace("  prod:", "  staging:"))
    for fleet in (first, second):
        deployed = run_cli(capsys, [*base, "deploy", str(fleet), "--yes"])
        assert deployed.code == 0, deployed.err
    assert _stacks(moto.url) == ["nixecs-prod", "nixecs-staging"]
    quiet = run_cli(capsys, [*base, "deploy", str(first), "--yes"])
    assert quiet.code == 0, quiet.err
    assert (
        "stacks of fleet 'default' (every fleet file without name_prefix) not declared in this "
        "one, left in place: nixecs-staging (CREATE_COMPLETE)"
    ) in quiet.err
    for extra in (["--prune", "--yes"], ["--prune", "--plan"]):
        refused = run_cli(capsys, [*base, "deploy", str(first), *extra])
        assert refused.code == 2, refused.err
        assert (
            "refusing: deploy --prune: nixecs-staging (CREATE_COMPLETE) carry nixecs:fleet=default, "
            "the identity every fleet file without `name_prefix` shares"
        ) in refused.err
    assert _stacks(moto.url) == ["nixecs-prod", "nixecs-staging"]
