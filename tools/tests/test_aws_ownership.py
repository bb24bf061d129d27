"""Only what nixecs created (issue 16, item 1): `deploy` changes an existing stack only when it
carries this fleet's marks (nixecs:cluster and nixecs:fleet), against the moto server. Each
hostile case is a stack that merely has the name `deploy` would use, and the expected outcome
is a refusal naming what was found and whose it is, with the stack left as it was. `destroy`'s
table is in test_aws_destroy.py, `--prune`'s in test_aws_prune.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from aws_fixtures import FLEET, deployable_fleet, make_services, moto_client, plain_client, run_cli
from nixecs.aws.ownership import Marks, refusal, stack_marks
from nixecs.aws.session import Session
from test_aws_prune import OLD

pytestmark = pytest.mark.moto

FOREIGN = json.dumps({"Resources": {"Theirs": {"Type": "AWS::Logs::LogGroup"}}})


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return deployable_fleet(tmp_path, monkeypatch)


def _tag(key: str, value: str) -> dict[str, str]:
    return {"Key": f"nixecs:{key}", "Value": value}


def _created(url: str, tags: list[dict[str, str]]) -> None:
    moto_client(url, "cloudformation").create_stack(
        StackName="nixecs-prod", TemplateBody=FOREIGN, Tags=tags
    )


def _in_review(url: str, tags: list[dict[str, str]]) -> None:
    moto_client(url, "cloudformation").create_change_set(
        StackName="nixecs-prod",
        ChangeSetName="theirs",
        ChangeSetType="CREATE",
        TemplateBody=FOREIGN,
        Tags=tags,
    )


def _empty_review(url: str) -> None:
    _in_review(url, [])
    moto_client(url, "cloudformation").delete_change_set(
        StackName="nixecs-prod", ChangeSetName="theirs"
    )


def _resources(url: str) -> list[str]:
    cfn = moto_client(url, "cloudformation")
    summaries = cfn.list_stack_resources(StackName="nixecs-prod")["StackResourceSummaries"]
    return sorted(r["LogicalResourceId"] for r in summaries)


# (make the stack, extra arguments, exit code, message)
HOSTILE: dict[str, tuple[Any, list[str], int, str]] = {
    "foreign stack with the same name (no tags)": (
        lambda url: _created(url, []), [], 2,
        "refusing: deploy prod: stack nixecs-prod has no nixecs tags: nixecs did not make it, "
        "it only has the same name",
    ),
    "foreign stack, --adopt does not claim it": (
        lambda url: _created(url, []), ["--adopt"], 2, "has no nixecs tags",
    ),
    "another fleet's stack": (
        lambda url: _created(url, [_tag("cluster", "prod"), _tag("fleet", "acme")]), [], 2,
        "refusing: deploy prod: stack nixecs-prod belongs to fleet 'acme' "
        "(nixecs:cluster=prod, nixecs:fleet=acme), not to this fleet 'default'",
    ),
    "another fleet's pending change set": (
        lambda url: _in_review(url, [_tag("cluster", "prod"), _tag("fleet", "acme")]), [], 2,
        "stack nixecs-prod belongs to fleet 'acme'",
    ),
    "someone else's pending change set (no tags)": (
        lambda url: _in_review(url, []), [], 2, "stack nixecs-prod has no nixecs tags",
    ),
    "another fleet's stack, --plan": (
        lambda url: _created(url, [_tag("cluster", "prod"), _tag("fleet", "acme")]), ["--plan"], 2,
        "stack nixecs-prod belongs to fleet 'acme'",
    ),
    "an empty review nobody claims (no tags, no change set)": (
        _empty_review, [], 2,
        "stack nixecs-prod is in REVIEW_IN_PROGRESS with no tags and no change set: nothing "
        "says whose it is",
    ),
    "an earlier nixecs's stack, without --adopt": (
        lambda url: _created(url, [_tag("cluster", "prod")]), [], 2,
        "stack nixecs-prod was made by an earlier nixecs (nixecs:cluster=prod, no nixecs:fleet); "
        "pass --adopt to claim it for fleet 'default'",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(HOSTILE))
def test_deploy_refuses_a_stack_that_is_not_this_fleets(moto, fleet, capsys, case):
    make, extra, code, message = HOSTILE[case]
    make(moto.url)
    before = moto_client(moto.url, "cloudformation").describe_stacks(StackName="nixecs-prod")
    result = run_cli(capsys, ["--endpoint-url", moto.url, "deploy", str(fleet), "--yes", *extra])
    assert result.code == code, result.err
    assert message in result.err
    cfn = moto_client(moto.url, "cloudformation")
    after = cfn.describe_stacks(StackName="nixecs-prod")
    assert after["Stacks"][0]["StackStatus"] == before["Stacks"][0]["StackStatus"]
    assert after["Stacks"][0].get("Tags") == before["Stacks"][0].get("Tags")
    # nothing asked of it: no change set of ours, the foreign resources untouched
    names = [s["ChangeSetName"] for s in cfn.list_change_sets(StackName="nixecs-prod")["Summaries"]]
    assert not any(n.startswith("nixecs-") for n in names)
    if before["Stacks"][0]["StackStatus"] != "REVIEW_IN_PROGRESS":
        assert _resources(moto.url) == ["Theirs"]


def test_adopt_claims_an_earlier_nixecs_stack_with_the_fleets_tag(moto, fleet, capsys, monkeypatch):
    """--adopt updates the stack through a change set that carries the fleet's tag (moto does
    not copy an update's change set tags onto the stack, so the request is what is checked)."""
    _created(moto.url, [_tag("cluster", "prod")])
    sent: list[dict[str, Any]] = []
    original = Session.client

    def client(self: Session, service: str) -> Any:
        made = original(self, service)
        if service == "cloudformation":
            made.meta.events.register(
                "provide-client-params.cloudformation.CreateChangeSet",
                lambda params, **_: sent.append(dict(params)),
                unique_id="own-test-capture",
            )
        return made

    monkeypatch.setattr(Session, "client", client)
    result = run_cli(capsys, ["--endpoint-url", moto.url, "deploy", str(fleet), "--yes", "--adopt"])
    assert result.code == 0, result.err
    assert "nixecs-prod: updated" in result.out
    assert sent and sent[-1]["ChangeSetType"] == "UPDATE"
    assert sent[-1]["Tags"] == [_tag("cluster", "prod"), _tag("fleet", "default")]
    assert "Cluster" in _resources(moto.url)


def test_this_fleets_stack_is_updated(moto, fleet, capsys):
    first = run_cli(capsys, ["--endpoint-url", moto.url, "deploy", str(fleet), "--yes"])
    assert first.code == 0, first.err
    again = run_cli(capsys, ["--endpoint-url", moto.url, "deploy", str(fleet), "--yes"])
    assert again.code == 0 and "nixecs-prod: no changes" in again.out


@pytest.mark.parametrize(
    ("marks", "adopt", "expected"),
    [
        (Marks("prod", "default"), False, None),
        (Marks("prod", None), True, None),
        (Marks("prod", None), False, "earlier nixecs"),
        (Marks(None, None), True, "no nixecs tags"),
        (Marks(None, "default"), True, "tagged for another cluster"),
        (Marks("prod", "acme"), True, "belongs to fleet 'acme'"),
        (Marks("staging", "default"), True, "tagged for another cluster"),
        (Marks("staging", None), True, "tagged for another cluster"),
    ],
)
def test_refusal_rules(marks, adopt, expected):
    reason = refusal("nixecs-prod", "prod", "default", marks, adopt=adopt)
    assert (reason is None) if expected is None else (expected in (reason or ""))


def test_one_foreign_stack_stops_the_whole_deploy_before_any_change(
    moto, tmp_path, capsys, monkeypatch
):
    """Every cluster's stack is checked before the first change set: a fleet of two whose
    second name is taken deploys neither."""
    second = FLEET.replace("clusters:\n", "clusters:\n" + OLD, 1)
    fleet = deployable_fleet(tmp_path, monkeypatch, second)
    moto_client(moto.url, "cloudformation").create_stack(
        StackName="nixecs-prod", TemplateBody=FOREIGN
    )
    result = run_cli(capsys, ["--endpoint-url", moto.url, "deploy", str(fleet), "--yes"])
    assert result.code == 2 and "refusing: deploy prod: stack nixecs-prod" in result.err
    names = [
        s["StackName"] for s in moto_client(moto.url, "cloudformation").describe_stacks()["Stacks"]
    ]
    assert names == ["nixecs-prod"]  # nixecs-old was not created either


def test_a_hand_made_ecs_cluster_of_the_name_is_not_claimed_by_a_new_stack(moto, fleet, capsys):
    """ECS CreateCluster answers a name in use with the existing cluster, so a CREATE would
    make the stack own (and destroy later delete) a cluster nixecs did not make."""
    make_services(moto.url, "prod", ["handmade"])
    result = run_cli(capsys, ["--endpoint-url", moto.url, "deploy", str(fleet), "--yes"])
    assert result.code == 2, result.err
    assert "refusing: deploy prod: ECS cluster prod already exists (arn:aws:ecs:" in result.err
    assert "no nixecs stack owns it: creating nixecs-prod would claim it" in result.err
    assert moto_client(moto.url, "cloudformation").describe_stacks()["Stacks"] == []
    (service,) = moto_client(moto.url, "ecs").describe_services(
        cluster="prod", services=["handmade"]
    )["services"]
    assert service["status"] == "ACTIVE"


REVIEW = {"StackName": "nixecs-prod", "StackStatus": "REVIEW_IN_PROGRESS"}


@pytest.mark.parametrize(
    ("change_sets", "expected"),
    [
        ([[_tag("cluster", "prod"), _tag("fleet", "default")]], None),
        ([[_tag("cluster", "prod"), _tag("fleet", "default")]] * 2, None),
        ([[_tag("cluster", "prod"), _tag("fleet", "acme")]], "belongs to fleet 'acme'"),
        (
            [[_tag("cluster", "prod"), _tag("fleet", "default")], []],
            "change sets of different owners (nixecs:cluster=prod, nixecs:fleet=default; "
            "no nixecs tags)",
        ),
        (
            [[_tag("cluster", "prod"), _tag("fleet", "default")], [_tag("fleet", "acme")]],
            "none of them alone may change or delete it",
        ),
        ([], "with no tags and no change set"),
    ],
)
def test_a_review_without_stack_tags_is_judged_by_all_its_change_sets(change_sets, expected):
    """Where the stack in review shows no tags (AWS may not copy a CREATE change set's tags
    onto it; moto does), every pending change set's tags must say it is this fleet's."""
    cfn = plain_client("cloudformation")
    stubber = Stubber(cfn)
    summaries = [{"ChangeSetName": f"cs{n}"} for n in range(len(change_sets))]
    stubber.add_response("list_change_sets", {"Summaries": summaries}, {"StackName": "nixecs-prod"})
    for n, tags in enumerate(change_sets):
        stubber.add_response(
            "describe_change_set",
            {"ChangeSetName": f"cs{n}", "Tags": tags},
            {"StackName": "nixecs-prod", "ChangeSetName": f"cs{n}"},
        )
    stubber.activate()
    marks = stack_marks(cfn, REVIEW)
    reason = refusal("nixecs-prod", "prod", "default", marks, adopt=True)
    assert reason is None if expected is None else expected in (reason or ""), reason
    stubber.assert_no_pending_responses()


def test_stacks_of_an_earlier_nixecs_are_named_with_the_way_to_adopt_them(moto, fleet, capsys):
    """Not this fleet's (not pruned, not listed as its orphans), but never silently ignored."""
    moto_client(moto.url, "cloudformation").create_stack(
        StackName="nixecs-legacy", TemplateBody=FOREIGN, Tags=[_tag("cluster", "legacy")]
    )
    deployed = run_cli(capsys, ["--endpoint-url", moto.url, "deploy", str(fleet), "--yes"])
    assert deployed.code == 0, deployed.err
    note = (
        "stacks of an earlier nixecs (no nixecs:fleet), nobody's until adopted: nixecs-legacy "
        "(CREATE_COMPLETE); `nixecs deploy FLEET --adopt` claims those a fleet declares"
    )
    assert note in deployed.err
    status = run_cli(
        capsys, ["--endpoint-url", moto.url, "--output", "json", "status", "--fleet", str(fleet)]
    )
    assert status.code == 0, status.err
    assert status.json()["unclaimed"] == ["nixecs-legacy"] and status.json()["orphans"] == []
    adopted = run_cli(capsys, ["--endpoint-url", moto.url, "destroy", "legacy", "--adopt", "--yes"])
    assert adopted.code == 0 and adopted.out == "nixecs-legacy: destroyed\n", adopted.err
