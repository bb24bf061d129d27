"""The SNS topic a cluster's `notifications:` take over, checked before a deploy (the
ownership rule of DESIGN §12: an adopting call checks first and refuses what is not ours).

The stack's AWS::SNS::TopicPolicy (cloudformation/notifications.py) sets the topic's one
access policy, its `Policy` attribute (SNS API reference, SetTopicAttributes,
https://docs.aws.amazon.com/sns/latest/api/API_SetTopicAttributes.html), to a document that
allows this stack's two EventBridge rules only, and deleting the stack resets it. So a topic
whose policy says anything else — a statement of the user's, or another stack's rules — would
lose it without a word. A topic is taken only when its policy holds nothing but SNS's default
statement (every new topic's, Sid `__default_statement_ID`) and this very stack's own
statement (Sid NixecsEcsEvents, every aws:SourceArn one of this stack's rules, looked up as
its resources' physical ids); anything else is refused, naming the topic and the statements.
"""

from __future__ import annotations

import json
from typing import Any

from ..cloudformation.ids import DEPLOYMENT_FAILED_RULE, STOPPED_TASK_RULE
from ..cloudformation.notifications import DEFAULT_ACTIONS_FOUND, DEFAULT_SID, STATEMENT_SID
from .ownership import NotOurs
from .session import error_code

TOPIC_POLICY = "AWS::SNS::TopicPolicy"


def policy_topics(template: dict[str, Any]) -> list[str]:
    """The topics the template's topic policies name (ARNs written as text)."""
    found: list[str] = []
    for resource in (template.get("Resources") or {}).values():
        if isinstance(resource, dict) and resource.get("Type") == TOPIC_POLICY:
            topics = (resource.get("Properties") or {}).get("Topics") or []
            found += [t for t in topics if isinstance(t, str)]
    return found


def _stack_rules(cfn: Any, stack: str) -> set[str]:
    """The names of the stack's two notification rules (empty when it has none yet)."""
    from botocore.exceptions import ClientError

    try:
        resources = cfn.describe_stack_resources(StackName=stack)["StackResources"]
    except ClientError as error:
        if error_code(error) == "ValidationError":  # no such stack
            return set()
        raise
    return {
        str(r["PhysicalResourceId"])
        for r in resources
        if r.get("LogicalResourceId") in (DEPLOYMENT_FAILED_RULE, STOPPED_TASK_RULE)
        and r.get("PhysicalResourceId")
    }


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else [value]


def _default(statement: dict[str, Any], account: str) -> bool:
    """SNS's default statement as SNS writes it (its Sid alone is not enough: a statement
    edited under that Sid, e.g. for another account, is the user's): Allow, to any principal
    of the topic's own `account` (AWS:SourceOwner), of the default actions only."""
    if statement.get("Sid") != DEFAULT_SID or statement.get("Effect") != "Allow":
        return False
    principal = statement.get("Principal")
    if principal not in ("*", {"AWS": "*"}):
        return False
    condition = statement.get("Condition")
    if not isinstance(condition, dict) or list(condition) != ["StringEquals"]:
        return False
    equals = condition["StringEquals"]
    if not isinstance(equals, dict) or [k.lower() for k in equals] != ["aws:sourceowner"]:
        return False
    if _as_list(next(iter(equals.values()))) != [account]:
        return False
    allowed = {a.lower() for a in DEFAULT_ACTIONS_FOUND}
    return all(
        isinstance(a, str) and a.lower() in allowed for a in _as_list(statement.get("Action"))
    )


def _ours(statement: dict[str, Any], rules: set[str]) -> bool:
    if statement.get("Sid") != STATEMENT_SID:
        return False
    condition = statement.get("Condition") or {}
    arns = _as_list((condition.get("ArnEquals") or {}).get("aws:SourceArn"))
    # a rule's ARN is arn:PARTITION:events:REGION:ACCOUNT:rule/NAME
    names = [str(a).rpartition(":rule/")[2] for a in arns if isinstance(a, str)]
    return bool(names) and len(names) == len(arns) and all(n in rules for n in names)


def foreign_statements(policy_text: str | None, rules: set[str], account: str) -> list[str]:
    """What the topic's policy holds besides SNS's default statement (for the topic's own
    `account`) and this stack's: each as its Sid (or its position)."""
    try:
        policy = json.loads(policy_text or "{}")
    except ValueError:
        return ["(a policy that is not JSON)"]
    statements = policy.get("Statement", []) if isinstance(policy, dict) else []
    found = []
    for index, statement in enumerate(_as_list(statements)):
        if not isinstance(statement, dict):
            found.append(f"statement {index + 1}")
        elif not _default(statement, account) and not _ours(statement, rules):
            found.append(str(statement.get("Sid") or f"statement {index + 1}"))
    return found


def check_topics(session: Any, stack: str, template: dict[str, Any], *, action: str) -> None:
    """Refuse (NotOurs, exit 2) a stack whose topic policy would replace a policy that is
    not SNS's default or this stack's own; a topic that does not exist is refused too (the
    stack would fail on it half-way)."""
    topics = policy_topics(template)
    if not topics:
        return
    from botocore.exceptions import ClientError

    sns = session.client("sns")
    rules = _stack_rules(session.client("cloudformation"), stack)
    for topic in topics:
        try:
            attributes = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
        except ClientError as error:
            if error_code(error) in ("NotFound", "NotFoundException"):
                raise NotOurs(
                    f"{action}: SNS topic {topic} of `notifications:` does not exist: create "
                    "it first (a standard topic for this cluster alone)"
                ) from None
            raise
        # arn:PARTITION:sns:REGION:ACCOUNT:NAME
        account = topic.split(":")[4] if topic.count(":") >= 5 else ""
        foreign = foreign_statements(attributes.get("Policy"), rules, account)
        if foreign:
            raise NotOurs(
                f"{action}: SNS topic {topic} has a policy of its own (statements "
                f"{', '.join(foreign)}), which this stack's AWS::SNS::TopicPolicy would replace "
                "(and deleting the stack would reset): give the cluster's `notifications:` a "
                "topic of its own"
            )
