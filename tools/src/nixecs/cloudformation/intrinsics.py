"""Intrinsic functions, partition-aware ARNs and tags, as plain JSON-shaped values.

Intrinsics are ordinary one-key mappings (`{"Ref": …}`, `{"Fn::GetAtt": […]}`), never YAML
tags, so the template is the same data in YAML and JSON and any tool can read it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..lazyre import lazy

Json = Any  # a JSON-shaped value: dict, list, str, int, float, bool

ARN_PREFIX = "arn:${AWS::Partition}"
REGION_ACCOUNT = "${AWS::Region}:${AWS::AccountId}"
IAM_POLICY_VERSION = "2012-10-17"

# ECS, IAM and CloudWatch Logs accept only these characters in tag values (EC2 and Auto
# Scaling accept more); one sanitised value everywhere keeps every resource's tags equal.
_TAG_VALUE_BAD = lazy(r"[^\w\s+=.:/@-]")
_TAG_VALUE_MAX = 256


def ref(logical_id: str) -> dict[str, Json]:
    return {"Ref": logical_id}


def get_att(logical_id: str, attribute: str) -> dict[str, Json]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def sub(text: str) -> dict[str, Json]:
    return {"Fn::Sub": text}


def literal(text: str) -> str:
    """Text for inside an Fn::Sub string, taken literally (`${` would start a variable)."""
    return text.replace("${", "${!")


def managed_policy_arn(path: str) -> dict[str, Json]:
    """An AWS managed policy, e.g. `service-role/AmazonECSTaskExecutionRolePolicy`."""
    return sub(f"{ARN_PREFIX}:iam::aws:policy/{literal(path)}")


def ssm_parameter_arn(name: str) -> dict[str, Json]:
    """The ARN of an SSM parameter. A hierarchical name's leading slash is the slash after
    `parameter` (`/prod/db/password` → `…:parameter/prod/db/password`)."""
    if not name.startswith("/"):
        name = "/" + name
    return sub(f"{ARN_PREFIX}:ssm:{REGION_ACCOUNT}:parameter{literal(name)}")


def tag_value(value: str) -> str:
    return _TAG_VALUE_BAD.sub("_", value)[:_TAG_VALUE_MAX]


def tags(pairs: Iterable[tuple[str, str]]) -> list[dict[str, Json]]:
    """CloudFormation's `[{Key, Value}]` tag list (a fresh list per resource: no sharing)."""
    return [{"Key": key, "Value": value} for key, value in pairs]


def kms_key_arn(key: str | None) -> Json:
    """The KMS key SSM encrypts the secrets under: a customer managed key (an ARN, or a key id
    in this account and region), or — None — any key of this account and region, which covers
    aws/ssm (whose ARN is not known in advance)."""
    if key is None:
        return sub(f"{ARN_PREFIX}:kms:{REGION_ACCOUNT}:key/*")
    if key.startswith("arn:"):
        return key
    return sub(f"{ARN_PREFIX}:kms:{REGION_ACCOUNT}:key/{literal(key)}")
