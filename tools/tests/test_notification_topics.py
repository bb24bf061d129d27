"""The SNS topic of `notifications:` and whose it is. A topic has one access policy (its
`Policy` attribute, SetTopicAttributes), and a cluster's stack sets it to a document that
allows that cluster's own two EventBridge rules only. So two clusters of one fleet on one
topic are E196 (the cluster deployed last would silently take the topic from the other,
nixecs.fleet.notifications), and `deploy` refuses a topic whose policy holds anything but
SNS's default statement and this stack's own (nixecs.aws.topics), before any change."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aws_fixtures import alb_network, moto_client, run_cli
from capacity_fixtures import line_of
from nixecs.diagnostics import FIXES, InvalidInput
from nixecs.fleet.checks import check_text

TOPIC = "arn:aws:sns:us-east-1:123456789012:ops"


def cluster(name: str, topic: str | None) -> str:
    notifications = f"    notifications: {{sns_topic: '{topic}'}}\n" if topic else ""
    return (
        f"  {name}:\n"
        "    subnets: [subnet-0a1b2c3d]\n"
        "    security_groups: [sg-0a1b2c3d]\n" + notifications + "    groups:\n"
        "      web: {ami: ami-0123456789abcdef0, instance_types: [m6i.large], capacity: {min: 1, max: 2}}\n"
    )


def fleet(*clusters: str) -> str:
    return "version: 1\nregion: us-east-1\nclusters:\n" + "".join(clusters)


def test_two_clusters_on_one_topic_is_e196_at_the_second() -> None:
    text = fleet(cluster("prod", TOPIC), cluster("staging", None), cluster("batch", TOPIC))
    with pytest.raises(InvalidInput) as caught:
        check_text(text, "fleet.yml", nix=False)
    [error] = caught.value.report.errors
    assert error.code == "E196" and FIXES["E196"]
    # located at the second cluster's sns_topic, naming the first
    assert (
        error.location.line
        == [n for n, line in enumerate(text.splitlines(), 1) if "notifications" in line][1]
    )
    assert "'prod'" in error.message
    assert line_of(text, "batch:") < error.location.line


@pytest.mark.parametrize(
    "clusters",
    [
        (cluster("prod", TOPIC), cluster("batch", TOPIC.replace(":ops", ":ops-batch"))),
        (cluster("prod", TOPIC), cluster("batch", None)),
        # the same topic name in another account is another topic
        (cluster("prod", TOPIC), cluster("batch", TOPIC.replace("123456789012", "210987654321"))),
    ],
)
def test_a_topic_of_each_clusters_own_is_accepted(clusters: tuple[str, str]) -> None:
    check_text(fleet(*clusters), "fleet.yml", nix=False)


# --- deploy: the topic's policy is checked before the stack takes it over (moto) ----------

DEPLOYED = """\
version: 1
region: us-east-1
clusters:
  {cluster}:
    subnets: [{subnet_a}]
    security_groups: [{instances}]
    notifications: {{sns_topic: "{topic}"}}
    groups:
      web: {{ami: ami-0123456789abcdef0, instance_types: [m6i.large], capacity: {{min: 0, max: 1}}}}
"""


def _deploy(moto: Any, capsys: Any, directory: Path, cluster: str, topic: str) -> Any:
    fleet = directory / f"{cluster}.yml"
    fleet.write_text(DEPLOYED.format(cluster=cluster, topic=topic, **alb_network(moto.url)))
    return run_cli(
        capsys, ["--endpoint-url", moto.url, "deploy", str(fleet), "--yes", "--no-preflight"]
    )


def _stacks(moto: Any) -> list[str]:
    cfn = moto_client(moto.url, "cloudformation")
    return [s["StackName"] for s in cfn.describe_stacks()["Stacks"]]


@pytest.mark.moto
def test_deploy_takes_a_new_topic_and_deploys_again_over_its_own_policy(
    moto: Any, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A new topic (SNS's default policy) is taken; the next deploy finds this stack's own
    statement there and goes on (a fleet edit, not only a creation)."""
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    sns = moto_client(moto.url, "sns")
    topic = sns.create_topic(Name="prod-ops")["TopicArn"]
    first = _deploy(moto, capsys, tmp_path, "prod", topic)
    assert first.code == 0, first.err
    # what AWS leaves after the stack's topic policy: this stack's statement, its two rules
    # (moto's CloudFormation may or may not apply AWS::SNS::TopicPolicy: set it as AWS would)
    cfn = moto_client(moto.url, "cloudformation")
    rules = [
        r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName="nixecs-prod")["StackResources"]
        if r.get("LogicalResourceId") in ("DeploymentFailedRule", "StoppedTaskRule")
    ]
    assert len(rules) == 2
    events = moto_client(moto.url, "events")
    arns = [events.describe_rule(Name=name)["Arn"] for name in rules]
    sns.set_topic_attributes(
        TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(_policy(topic, arns))
    )
    again = _deploy(moto, capsys, tmp_path, "prod", topic)
    assert again.code == 0, again.err
    # … and a cluster of another stack finds that statement another stack's: refused
    other = _deploy(moto, capsys, tmp_path, "batch", topic)
    assert other.code == 2 and "refusing: deploy batch: SNS topic" in other.err
    assert "NixecsEcsEvents" in other.err and "nixecs-batch" not in _stacks(moto)


@pytest.mark.moto
@pytest.mark.parametrize(
    ("statement", "named"),
    [
        # a policy of the user's: CloudWatch alarms of another account publishing
        (
            {
                "Sid": "OtherAccountAlarms",
                "Effect": "Allow",
                "Principal": {"AWS": "arn:aws:iam::210987654321:root"},
                "Action": "sns:Publish",
                "Resource": "*",
            },
            "OtherAccountAlarms",
        ),
        # our Sid, but for rules no stack of this cluster has
        (
            {
                "Sid": "NixecsEcsEvents",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": "*",
                "Condition": {
                    "ArnEquals": {
                        "aws:SourceArn": "arn:aws:events:us-east-1:123456789012:rule/elsewhere"
                    }
                },
            },
            "NixecsEcsEvents",
        ),
        # no Sid at all
        (
            {"Effect": "Deny", "Principal": "*", "Action": "sns:Subscribe", "Resource": "*"},
            "statement 2",
        ),
    ],
)
def test_deploy_refuses_a_topic_whose_policy_is_not_its_own(
    moto: Any,
    tmp_path: Path,
    capsys: Any,
    monkeypatch: pytest.MonkeyPatch,
    statement: dict[str, Any],
    named: str,
) -> None:
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    sns = moto_client(moto.url, "sns")
    topic = sns.create_topic(Name="shared-ops")["TopicArn"]
    default = json.loads(sns.get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"])
    assert [s["Sid"] for s in default["Statement"]] == ["__default_statement_ID"]
    policy = {**default, "Statement": [*default["Statement"], statement]}
    sns.set_topic_attributes(
        TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(policy)
    )
    refused = _deploy(moto, capsys, tmp_path, "prod", topic)
    assert refused.code == 2, refused.err
    assert f"SNS topic {topic} has a policy of its own (statements {named})" in refused.err
    assert "Traceback" not in refused.err and "nixecs-prod" not in _stacks(moto)
    # the topic's policy is left as it was
    after = sns.get_topic_attributes(TopicArn=topic)["Attributes"]["Policy"]
    assert json.loads(after) == policy


@pytest.mark.moto
def test_deploy_refuses_a_topic_that_does_not_exist(
    moto: Any, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    refused = _deploy(moto, capsys, tmp_path, "prod", "arn:aws:sns:us-east-1:123456789012:nope")
    assert refused.code == 2 and "does not exist" in refused.err, refused.err
    assert "nixecs-prod" not in _stacks(moto)


def _policy(topic: str, rule_arns: list[str]) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "NixecsEcsEvents",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": "sns:Publish",
                "Resource": topic,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arns}},
            }
        ],
    }


RULES = {"nixecs-prod-DeploymentFailedRule-ABC", "nixecs-prod-StoppedTaskRule-DEF"}
ACCOUNT = "123456789012"
# SNS's default statement of a new topic of ACCOUNT, as the stack's policy keeps it too
DEFAULT = {
    "Sid": "__default_statement_ID",
    "Effect": "Allow",
    "Principal": {"AWS": "*"},
    "Action": ["SNS:GetTopicAttributes", "SNS:Publish", "SNS:Subscribe", "SNS:Receive"],
    "Resource": f"arn:aws:sns:us-east-1:{ACCOUNT}:ops",
    "Condition": {"StringEquals": {"AWS:SourceOwner": ACCOUNT}},
}
OURS = {
    "Sid": "NixecsEcsEvents",
    "Condition": {
        "ArnEquals": {
            "aws:SourceArn": [
                f"arn:aws:events:us-east-1:123456789012:rule/{r}" for r in sorted(RULES)
            ]
        }
    },
}


@pytest.mark.parametrize(
    ("policy", "foreign"),
    [
        (None, []),  # no Policy attribute at all
        ("", []),
        (json.dumps({"Statement": [DEFAULT, OURS]}), []),
        # SNS's Sid alone is not its statement: another account's, another principal, more
        # actions, another condition, a Deny are the user's own
        (
            json.dumps({"Statement": [{"Sid": "__default_statement_ID"}]}),
            ["__default_statement_ID"],
        ),
        *(
            (json.dumps({"Statement": [{**DEFAULT, **change}]}), ["__default_statement_ID"])
            for change in (
                {"Condition": {"StringEquals": {"AWS:SourceOwner": "210987654321"}}},
                {"Principal": {"AWS": "arn:aws:iam::210987654321:root"}},
                {"Action": ["SNS:Publish", "SNS:*"]},
                {"Condition": {"StringEquals": {"AWS:SourceOwner": "123456789012"}, "Bool": {}}},
                {"Effect": "Deny"},
            )
        ),
        (json.dumps({"Statement": OURS}), []),  # one statement, not in a list
        ("{not json", ["(a policy that is not JSON)"]),
        (json.dumps([1, 2]), []),  # not an object: no statements of anyone's
        (json.dumps({"Statement": ["text"]}), ["statement 1"]),
        (json.dumps({"Statement": [{"Sid": "Mine"}]}), ["Mine"]),
        (json.dumps({"Statement": [{"Sid": ""}]}), ["statement 1"]),
        # our Sid without a condition, with one rule of ours and one of another stack's,
        # with a source ARN that is not text
        (json.dumps({"Statement": [{"Sid": "NixecsEcsEvents"}]}), ["NixecsEcsEvents"]),
        (
            json.dumps(
                {
                    "Statement": [
                        {
                            "Sid": "NixecsEcsEvents",
                            "Condition": {
                                "ArnEquals": {
                                    "aws:SourceArn": [
                                        OURS["Condition"]["ArnEquals"]["aws:SourceArn"][0],  # type: ignore[index]
                                        "arn:aws:events:us-east-1:123456789012:rule/other",
                                    ]
                                }
                            },
                        }
                    ]
                }
            ),
            ["NixecsEcsEvents"],
        ),
        (
            json.dumps(
                {
                    "Statement": [
                        {"Sid": "NixecsEcsEvents", "Condition": {"ArnEquals": {"aws:SourceArn": 7}}}
                    ]
                }
            ),
            ["NixecsEcsEvents"],
        ),
    ],
)
def test_foreign_statements_of_hostile_policies(policy: str | None, foreign: list[str]) -> None:
    from nixecs.aws.topics import foreign_statements

    assert foreign_statements(policy, RULES, ACCOUNT) == foreign


def test_our_statement_is_another_stacks_before_this_stack_has_rules() -> None:
    """A stack not made yet has no rules: a NixecsEcsEvents statement on the topic is
    another stack's, whose events the new policy would cut off."""
    from nixecs.aws.topics import foreign_statements

    assert foreign_statements(json.dumps({"Statement": [OURS]}), set(), ACCOUNT) == [
        "NixecsEcsEvents"
    ]
