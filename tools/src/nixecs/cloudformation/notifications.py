"""A cluster's `notifications:` (nixecs.fleet.notifications): two EventBridge rules on ECS's
events, each sending to the SNS topic, and the topic policy that lets EventBridge publish.

The policy is the topic's whole policy (AWS::SNS::TopicPolicy replaces it, and deleting the
stack resets it): give the fleet a topic of its own (docs/aws.md)."""

from __future__ import annotations

from ..fleet.notifications import Notifications
from .context import Context, Resources
from .ids import DEPLOYMENT_FAILED_RULE, NOTIFICATION_TOPIC_POLICY, STOPPED_TASK_RULE
from .intrinsics import IAM_POLICY_VERSION, Json, get_att, sub

# SNS's default statement, which every new topic's policy holds (Sid __default_statement_ID:
# its account may publish, subscribe and manage the topic, whoever in it asks, CloudWatch
# alarm actions included). The stack's TopicPolicy replaces the whole policy, so it keeps
# this statement as SNS writes it, or the account's other publishers would lose the topic
# (https://docs.aws.amazon.com/sns/latest/dg/sns-access-policy-use-cases.html; the actions
# as the default policy of a new topic lists them).
DEFAULT_SID = "__default_statement_ID"
DEFAULT_ACTIONS = (
    "SNS:GetTopicAttributes",
    "SNS:SetTopicAttributes",
    "SNS:AddPermission",
    "SNS:RemovePermission",
    "SNS:DeleteTopic",
    "SNS:Subscribe",
    "SNS:ListSubscriptionsByTopic",
    "SNS:Publish",
)
# Older topics' default statement also lists SNS:Receive, which is no IAM action (cfn-lint
# W3037 knows none): accepted on a topic found, never written.
DEFAULT_ACTIONS_FOUND = (*DEFAULT_ACTIONS, "SNS:Receive")
# the statement's Sid: how `deploy` knows the statement for its own (aws/topics.py)
STATEMENT_SID = "NixecsEcsEvents"


def notifications(ctx: Context) -> Resources:
    settings = ctx.cluster.notifications
    if settings is None:
        return {}
    return {
        DEPLOYMENT_FAILED_RULE: _rule(
            ctx,
            settings,
            "failed deployments of its services",
            {
                "source": ["aws.ecs"],
                "detail-type": ["ECS Deployment State Change"],
                "detail": {"eventName": ["SERVICE_DEPLOYMENT_FAILED"]},
                # the event's resources: the service's ARN, service/CLUSTER/SERVICE
                "resources": [
                    {
                        "prefix": sub(
                            "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:service/"
                            f"{ctx.ecs_cluster_name}/"
                        )
                    }
                ],
            },
        ),
        STOPPED_TASK_RULE: _rule(
            ctx,
            settings,
            "tasks stopped because an essential container exited",
            {
                "source": ["aws.ecs"],
                "detail-type": ["ECS Task State Change"],
                "detail": {
                    "clusterArn": [ctx.cluster_arn()],
                    "lastStatus": ["STOPPED"],
                    "stopCode": ["EssentialContainerExited"],
                },
            },
        ),
        NOTIFICATION_TOPIC_POLICY: {
            "Type": "AWS::SNS::TopicPolicy",
            "Properties": {
                "Topics": [settings.sns_topic],
                "PolicyDocument": {
                    "Version": IAM_POLICY_VERSION,
                    "Statement": [
                        {
                            "Sid": DEFAULT_SID,
                            "Effect": "Allow",
                            "Principal": {"AWS": "*"},
                            "Action": list(DEFAULT_ACTIONS),
                            "Resource": settings.sns_topic,
                            "Condition": {
                                "StringEquals": {"AWS:SourceOwner": {"Ref": "AWS::AccountId"}}
                            },
                        },
                        {
                            "Sid": STATEMENT_SID,
                            "Effect": "Allow",
                            "Principal": {"Service": "events.amazonaws.com"},
                            "Action": "sns:Publish",
                            "Resource": settings.sns_topic,
                            # only this stack's two rules (confused deputy)
                            "Condition": {
                                "ArnEquals": {
                                    "aws:SourceArn": [
                                        get_att(DEPLOYMENT_FAILED_RULE, "Arn"),
                                        get_att(STOPPED_TASK_RULE, "Arn"),
                                    ]
                                }
                            },
                        },
                    ],
                },
            },
        },
    }


def _rule(
    ctx: Context, settings: Notifications, what: str, pattern: dict[str, Json]
) -> dict[str, Json]:
    return {
        "Type": "AWS::Events::Rule",
        "Properties": {
            "Description": f"nixecs: {what} in cluster {ctx.cluster.name}, to SNS",
            "State": "ENABLED",
            "EventPattern": pattern,
            "Targets": [{"Arn": settings.sns_topic, "Id": "sns"}],
        },
    }
