"""`nixecs deploy --plan` against the moto server: change sets made, shown (text and JSON)
and deleted; a plan for a stack that does not exist yet leaves no REVIEW_IN_PROGRESS stack
behind; an existing stack is left exactly as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from aws_fixtures import moto_client, no_preflight, run_cli, small_template, write_fleet
from nixecs.aws import deploy as deploy_module


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(
        deploy_module, "render_template", lambda model, cluster: small_template(model, cluster)
    )
    no_preflight(monkeypatch)
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    return write_fleet(tmp_path)


def _stacks(url: str) -> dict[str, str]:
    cfn = moto_client(url, "cloudformation")
    return {s["StackName"]: s["StackStatus"] for s in cfn.describe_stacks()["Stacks"]}


@pytest.mark.moto
def test_plan_of_a_new_stack_shows_it_and_leaves_nothing(moto, fleet, capsys):
    result = run_cli(capsys, ["--endpoint-url", moto.url, "deploy", str(fleet), "--plan"])
    assert result.code == 0, result.err
    assert "  + add      Cluster " in result.out and "AWS::ECS::Cluster" in result.out
    assert "6 to add, 0 to modify, 0 to replace, 0 to remove" in result.out
    # no stack in REVIEW_IN_PROGRESS (nor anything else) is left behind
    assert _stacks(moto.url) == {}


@pytest.mark.moto
def test_plan_of_an_update_in_json_leaves_the_stack_untouched(moto, fleet, capsys, monkeypatch):
    deployed = run_cli(capsys, ["--endpoint-url", moto.url, "deploy", str(fleet), "--yes"])
    assert deployed.code == 0, deployed.err
    monkeypatch.setattr(
        deploy_module, "render_template", lambda m, c: small_template(m, c, marker="2")
    )
    result = run_cli(
        capsys,
        ["--endpoint-url", moto.url, "--output", "json", "deploy", str(fleet), "--plan"],
    )
    assert result.code == 0, result.err
    document = result.json()
    assert document["plan"] is True
    (cluster,) = document["clusters"]
    assert cluster["outcome"] == "planned"
    assert {"action": "Modify", "logical_id": "Marker"}.items() <= cluster["changes"][0].items()
    # nixecs's own plan: per resource, replacement from createOnlyProperties
    assert cluster["plan"]["resources"] == [
        {"logical_id": "Marker", "type": "AWS::SSM::Parameter", "action": "modify", "reason": ""}
    ]
    assert cluster["plan"]["hazards"] == [] and cluster["plan"]["replacement_known"]
    assert _stacks(moto.url) == {"nixecs-prod": "CREATE_COMPLETE"}
    cfn = moto_client(moto.url, "cloudformation")
    # the plan's own change set is gone (moto, unlike AWS, keeps the executed one of the deploy)
    summaries = cfn.list_change_sets(StackName="nixecs-prod")["Summaries"]
    assert cluster["change_set"] not in [s["ChangeSetName"] for s in summaries]
    marker = moto_client(moto.url, "ssm").get_parameter(Name="/nixecs/prod/marker")
    assert marker["Parameter"]["Value"] == "v1"  # the plan changed nothing

    monkeypatch.setattr(deploy_module, "render_template", lambda m, c: small_template(m, c))
    same = run_cli(capsys, ["--endpoint-url", moto.url, "deploy", str(fleet), "--plan"])
    assert same.code == 0, same.err
    assert "nixecs-prod: no changes" in same.out
