"""A cluster's `notifications: {sns_topic}`: ECS deployment failures and stopped essential
tasks, sent to an SNS topic through EventBridge rules (issue 21, item 4).

The events are ECS's own ("Amazon ECS events", developer guide,
https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs_cwe_events.html): "ECS
Deployment State Change" with `eventName` SERVICE_DEPLOYMENT_FAILED, its `resources` the
service's ARN; "ECS Task State Change" with `lastStatus` STOPPED and `stopCode`
EssentialContainerExited. EventBridge may publish to the topic only when the topic's policy
allows the service principal events.amazonaws.com ("Amazon SNS permissions", EventBridge
user guide, https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-use-resource-based.html#eb-sns-permissions);
the stack sets that policy (AWS::SNS::TopicPolicy), scoped to the two rules by aws:SourceArn.
"""

from __future__ import annotations

from ..records import dataclass
from ..settings import Issue
from .decl import as_str, obj, req, section, string
from .yaml12 import Path

# arn:PARTITION:sns:REGION:ACCOUNT:NAME, a standard topic (names of 1-256 letters, digits,
# - and _; a FIFO topic's name ends in .fifo and needs a message group id the rule would
# have to set: not offered)
TOPIC_ARN = r"arn:aws(?:-[a-z]+)*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}"
NOTIFICATIONS = obj(
    "ECS deployment failures and stopped essential tasks, sent to an SNS topic (EventBridge)",
    sns_topic=req(
        string(
            "a standard SNS topic of the fleet's own: the stack sets its policy",
            pattern=TOPIC_ARN,
            rule="a standard SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)",
            aws="SNS topic names: 1-256 letters, digits, - and _ (CreateTopic)",
            example="arn:aws:sns:us-east-1:123456789012:ops",
        )
    ),
)


@dataclass(frozen=True)
class Notifications:
    sns_topic: str
    path: Path


def parse(value: object, path: Path, issues: list[Issue]) -> Notifications | None:
    before = len(issues)
    m = section(NOTIFICATIONS, value, path, issues)
    if m is None or len(issues) != before or "sns_topic" not in m:
        return None
    return Notifications(as_str(m["sns_topic"]), path)
