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

from typing import TYPE_CHECKING

from ..records import dataclass
from ..settings import Issue
from .decl import as_str, obj, req, section, string
from .yaml12 import Path

if TYPE_CHECKING:
    from .model import Fleet

# arn:PARTITION:sns:REGION:ACCOUNT:NAME, a standard topic (names of 1-256 letters, digits,
# - and _; a FIFO topic's name ends in .fifo and needs a message group id the rule would
# have to set: not offered)
TOPIC_ARN = r"arn:aws(?:-[a-z]+)*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}"
NOTIFICATIONS = obj(
    "ECS deployment failures and stopped essential tasks, sent to an SNS topic (EventBridge)",
    sns_topic=req(
        string(
            "a standard SNS topic of the cluster's own: the stack sets its policy (another "
            "cluster's topic: E196)",
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


def shared_topics(fleet: Fleet) -> list[Issue]:
    """E196: two clusters of the fleet naming one topic. A topic has one access policy, its
    `Policy` attribute (SNS API reference, SetTopicAttributes,
    https://docs.aws.amazon.com/sns/latest/api/API_SetTopicAttributes.html), which each
    cluster's AWS::SNS::TopicPolicy sets to a document allowing that cluster's two rules
    only: the stack deployed last wins, and SNS refuses the other cluster's events without a
    word (EventBridge counts them as failed invocations of the rule's target)."""
    first: dict[str, str] = {}
    issues: list[Issue] = []
    for cluster in fleet.clusters.values():
        settings = cluster.notifications
        if settings is None:
            continue
        other = first.setdefault(settings.sns_topic, cluster.name)
        if other != cluster.name:
            issues.append(
                Issue(
                    (*settings.path, "sns_topic"),
                    "E196",
                    f"cluster {other!r} already sends its notifications to this topic: each "
                    "cluster's stack writes the topic's whole policy, so only the cluster "
                    "deployed last could publish; give each cluster a topic of its own",
                )
            )
    return issues
