"""A cluster's `notifications: {sns_topic}` (issue 21, item 4): EventBridge rules on ECS's
deployment-failure and stopped-essential-task events, to the topic, and a topic policy that
lets only those rules publish (nixecs.fleet.notifications cites the sources)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from capacity_fixtures import GROUP_WEB, HEAD, assert_cfn_lint_clean, errors, line_of, load_text
from nixecs.cloudformation import build_stack
from nixecs.diagnostics import InvalidInput
from nixecs.fleet import parse
from nixecs.fleet.schema import json_schema
from nixecs.fleet.yaml12 import load

TOPIC = "arn:aws:sns:us-east-1:123456789012:ops"


def fleet_text(notifications: str = f'{{sns_topic: "{TOPIC}"}}') -> str:
    return (
        HEAD
        + f"    notifications: {notifications}\n"
        + GROUP_WEB
        + "    services:\n      web:\n        group: web\n        image: nginx:1.27\n"
        + "        memory: 512\n"
    )


def resources(text: str) -> dict[str, Any]:
    fleet = load_text(text)
    return build_stack(fleet, "prod", {"web": b"#x\n"})["Resources"]  # type: ignore[no-any-return]


def test_two_rules_and_a_topic_policy_scoped_to_them() -> None:
    found = resources(fleet_text())
    deployment = found["DeploymentFailedRule"]["Properties"]
    assert deployment["EventPattern"]["detail-type"] == ["ECS Deployment State Change"]
    assert deployment["EventPattern"]["detail"] == {"eventName": ["SERVICE_DEPLOYMENT_FAILED"]}
    [prefix] = deployment["EventPattern"]["resources"]
    assert prefix["prefix"]["Fn::Sub"].endswith(":service/prod/")
    assert deployment["Targets"] == [{"Arn": TOPIC, "Id": "sns"}]
    stopped = found["StoppedTaskRule"]["Properties"]
    assert stopped["EventPattern"] == {
        "source": ["aws.ecs"],
        "detail-type": ["ECS Task State Change"],
        "detail": {
            "clusterArn": [{"Fn::GetAtt": ["Cluster", "Arn"]}],
            "lastStatus": ["STOPPED"],
            "stopCode": ["EssentialContainerExited"],
        },
    }
    policy = found["NotificationTopicPolicy"]["Properties"]
    assert policy["Topics"] == [TOPIC]
    # SNS's default statement, kept (the account's own publishers, CloudWatch alarm actions
    # among them), then the rules' own
    default, statement = policy["PolicyDocument"]["Statement"]
    assert default["Sid"] == "__default_statement_ID" and default["Principal"] == {"AWS": "*"}
    assert default["Condition"] == {"StringEquals": {"AWS:SourceOwner": {"Ref": "AWS::AccountId"}}}
    assert "SNS:Publish" in default["Action"] and default["Resource"] == TOPIC
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert statement["Action"] == "sns:Publish" and statement["Resource"] == TOPIC
    assert statement["Condition"]["ArnEquals"]["aws:SourceArn"] == [
        {"Fn::GetAtt": ["DeploymentFailedRule", "Arn"]},
        {"Fn::GetAtt": ["StoppedTaskRule", "Arn"]},
    ]


def test_without_notifications_nothing_is_added() -> None:
    text = fleet_text().replace(f'    notifications: {{sns_topic: "{TOPIC}"}}\n', "")
    assert not any(
        r["Type"].startswith(("AWS::Events", "AWS::SNS")) for r in resources(text).values()
    )


ODD = [
    ('{sns_topic: "arn:aws:sqs:us-east-1:123456789012:ops"}', "E107"),
    ('{sns_topic: "arn:aws:sns:us-east-1:123456789012:ops.fifo"}', "E107"),
    ("{sns_topic: ops}", "E107"),
    ('{sns_topic: "' + TOPIC + '", email: a@b.c}', "E101"),
    ("{}", "E104"),
    ("[ops]", "E103"),
]


@pytest.mark.parametrize(("notifications", "code"), ODD, ids=[n for n, _ in ODD])
def test_odd_values_are_located_errors(notifications: str, code: str) -> None:
    text = fleet_text(notifications)
    assert errors(text) == [(line_of(text, "notifications:"), code)]


@pytest.mark.parametrize(("notifications", "code"), ODD, ids=[n for n, _ in ODD])
def test_the_json_schema_rejects_them_too(notifications: str, code: str) -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    document = load(fleet_text(notifications).encode(), "fleet.yml").value
    assert list(validator.iter_errors(document)), notifications
    with pytest.raises(InvalidInput):
        parse(json.dumps(document), "fleet.json")
    assert list(validator.iter_errors(load(fleet_text().encode(), "f.yml").value)) == []


@pytest.mark.cfnlint
def test_cfn_lint_accepts_the_rules_and_policy(tmp_path: Path) -> None:
    assert_cfn_lint_clean(build_stack(load_text(fleet_text()), "prod", {"web": b"#x\n"}), tmp_path)
