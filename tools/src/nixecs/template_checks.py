"""Security and limit checks on a cluster's final template (issue 16 item 6).

The fleet model's checks (E111 userdata size, E147 the `*` action, W101 hop limit, an
always-encrypted root volume) hold for what nixecs renders; `overrides:` change the rendered
template afterwards and could undo any of them. So `render_cluster` — which `validate`,
`render` and `deploy` all go through — runs these checks on the template as it will be sent,
overrides applied, whichever way a value got there:

- E401 a role's policy allows the `*` action (`*`, `*:*`) or is an Allow with NotAction
- E402 a role attaches an administrator AWS managed policy (ADMIN_POLICIES)
- E403 a launch template that leaves IMDSv1 on (MetadataOptions.HttpTokens not `required`;
  "Configure the instance metadata options", EC2 user guide: `optional` allows IMDSv1)
- W401 a launch template's HttpPutResponseHopLimit above 1 (the W101 of the model, for a
  value an override set: containers can reach the instance's credentials)
- E404 an EBS volume that is not encrypted (launch template block devices, AWS::EC2::Volume)
- E405 ingress from 0.0.0.0/0 or ::/0 to a security group the instances use
- E406 a launch template's UserData over EC2's 16 KB (formats.EC2_USERDATA_LIMIT)
- E407 a role's inline policies over IAM's 10,240 characters ("the total aggregate policy size
  (the sum size of all inline policies) per role can't exceed 10,240 characters", IAM and
  AWS STS quotas, https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html;
  whitespace does not count): many secrets or ECR repositories on one group reach it
- W402 a DeletionPolicy or UpdateReplacePolicy that leaves a resource behind (Retain,
  RetainExceptOnCreate, Snapshot): `destroy` then finishes with it still in the account

Each finding names the logical id; `render_cluster` locates it at that resource's override in
the fleet file (or at the cluster when no override touched it).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping
else:
    # A template is JSON-shaped data: every mapping in it is a dict (dump_template writes no
    # other kind). `isinstance(x, dict)` is a type check in C; against the Mapping ABC it goes
    # through ABCMeta, and a 1,000-group render makes ~160,000 of these checks (issue 18,
    # item 5). The annotations (never evaluated at run time) keep saying Mapping.
    Mapping = dict

from .formats import EC2_USERDATA_LIMIT
from .records import dataclass

# AWS managed policies that grant everything or the means to grant oneself everything: `*` on
# `*` (AdministratorAccess), everything but IAM and Organizations (PowerUserAccess, which
# still lets a principal run code anywhere), or iam:* (IAMFullAccess: attach
# AdministratorAccess to oneself). AWS Managed Policy Reference,
# https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AdministratorAccess.html
# (and PowerUserAccess.html, IAMFullAccess.html, job-function/...).
ADMIN_POLICIES = frozenset(
    {
        "AdministratorAccess",
        "PowerUserAccess",
        "IAMFullAccess",
        "job-function/SystemAdministrator",
        "AdministratorAccess-Amplify",
        "AdministratorAccess-AWSElasticBeanstalk",
    }
)
LEAVES_BEHIND = frozenset({"Retain", "RetainExceptOnCreate", "Snapshot"})
ROLE_INLINE_POLICY_MAX = 10_240
ACCOUNT_ID_LENGTH = 12
OPEN_CIDRS = {"CidrIp": "0.0.0.0/0", "CidrIpv6": "::/0"}


@dataclass(frozen=True)
class Finding:
    code: str
    logical_id: str
    message: str


def _mapping(value: object) -> Mapping[str, Any]:
    """`value` when it is a mapping, else empty: an override may put anything anywhere, and
    the checks must judge what is there, never fail on its shape (CloudFormation refuses it)."""
    return value if isinstance(value, Mapping) else {}


def _properties(resource: Mapping[str, Any]) -> Mapping[str, Any]:
    return _mapping(resource.get("Properties"))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _text(value: Any) -> str | None:
    """A string, or the text of an Fn::Sub string (enough to read a policy ARN's name)."""
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping) and isinstance(value.get("Fn::Sub"), str):
        return str(value["Fn::Sub"])
    return None


def _key(value: Any) -> str:
    """A canonical form to compare ids, Refs and GetAtts by."""
    return json.dumps(value, sort_keys=True)


def _documents(resource: Mapping[str, Any]) -> Iterator[Any]:
    properties = _properties(resource)
    if not isinstance(properties, Mapping):
        return
    kind = resource.get("Type")
    if kind == "AWS::IAM::Role":
        for policy in _list(properties.get("Policies") or []):
            if isinstance(policy, Mapping):
                yield policy.get("PolicyDocument")
    elif kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        yield properties.get("PolicyDocument")


def _iam(lid: str, resource: Mapping[str, Any]) -> Iterator[Finding]:
    for document in _documents(resource):
        statements = document.get("Statement") if isinstance(document, Mapping) else None
        for statement in _list(statements or []):
            if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
                continue
            if "NotAction" in statement:
                yield Finding(
                    "E401",
                    lid,
                    "an Allow statement with NotAction allows every action but those named",
                )
            for action in _list(statement.get("Action") or []):
                if action in ("*", "*:*"):
                    yield Finding("E401", lid, f"a policy allows the {action!r} action")
    properties = _properties(resource)
    if resource.get("Type") == "AWS::IAM::Role" and isinstance(properties, Mapping):
        for arn in _list(properties.get("ManagedPolicyArns") or []):
            text = _text(arn)
            name = text.split(":policy/", 1)[-1] if text and ":policy/" in text else None
            if name in ADMIN_POLICIES:
                yield Finding("E402", lid, f"the role attaches the AWS managed policy {name}")


def _pseudo(region: str) -> dict[str, str]:
    """The pseudo parameters' values in `region` (the account id by its length)."""
    partition = (
        "aws-cn"
        if region.startswith("cn-")
        else "aws-us-gov"
        if region.startswith("us-gov-")
        else "aws"
    )
    return {
        "AWS::Partition": partition,
        "AWS::Region": region,
        "AWS::AccountId": "0" * ACCOUNT_ID_LENGTH,
        "AWS::URLSuffix": "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com",
    }


def _compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _resolved_size(document: Any, pseudo: Mapping[str, str], arns: Mapping[str, str]) -> int:
    """Characters of `document` as CloudFormation hands it to IAM, as far as that is known
    offline: pseudo parameters in Fn::Sub resolved (and each `{"Fn::Sub":…}` wrapper, 12
    characters, gone), the cluster's ARN for its Fn::GetAtt; other intrinsics count as
    written. Works on the compact JSON text: one C-speed dump and a few replaces per role."""
    text = _compact(document)
    for name, actual in pseudo.items():
        text = text.replace("${" + name + "}", actual)
    for written, arn in arns.items():
        text = text.replace(written, arn)
    return len(text.replace("${!", "${")) - 12 * text.count('{"Fn::Sub":')


def _policy_sizes(resources: Mapping[str, Any], region: str | None) -> Iterator[Finding]:
    pseudo = _pseudo(region or "ap-southeast-4")
    # The cluster's ARN where a policy names it by Fn::GetAtt.
    arns = {
        _compact({"Fn::GetAtt": [lid, "Arn"]}): _compact(
            f"arn:{pseudo['AWS::Partition']}:ecs:{pseudo['AWS::Region']}:"
            f"{pseudo['AWS::AccountId']}:cluster/{_properties(r).get('ClusterName', '')}"
        )
        for lid, r in resources.items()
        if isinstance(r, Mapping) and r.get("Type") == "AWS::ECS::Cluster"
    }
    for lid, resource in resources.items():
        if not isinstance(resource, Mapping) or resource.get("Type") != "AWS::IAM::Role":
            continue
        size = sum(_resolved_size(d, pseudo, arns) for d in _documents(resource))
        if size > ROLE_INLINE_POLICY_MAX:
            yield Finding(
                "E407",
                lid,
                f"the role's inline policies are {size} characters; IAM accepts "
                f"{ROLE_INLINE_POLICY_MAX} per role",
            )


def _launch_template(lid: str, data: Mapping[str, Any]) -> Iterator[Finding]:
    options = data.get("MetadataOptions")
    options = options if isinstance(options, Mapping) else {}
    if options.get("HttpEndpoint") != "disabled" and options.get("HttpTokens") != "required":
        yield Finding(
            "E403",
            lid,
            f"MetadataOptions.HttpTokens is {options.get('HttpTokens', 'unset')!r}: IMDSv1 "
            "answers without a token (write 'required')",
        )
    hops = options.get("HttpPutResponseHopLimit")
    if isinstance(hops, int) and not isinstance(hops, bool) and hops > 1:
        yield Finding(
            "W401",
            lid,
            f"MetadataOptions.HttpPutResponseHopLimit is {hops}: containers can reach IMDS "
            "and the instance role's credentials",
        )
    for mapping in _list(data.get("BlockDeviceMappings") or []):
        ebs = mapping.get("Ebs") if isinstance(mapping, Mapping) else None
        if isinstance(ebs, Mapping) and ebs.get("Encrypted") not in (True, "true"):
            device = mapping.get("DeviceName", "?")
            yield Finding("E404", lid, f"the EBS volume {device} is not encrypted")
    size = _userdata_size(data.get("UserData"))
    if size is not None and size > EC2_USERDATA_LIMIT:
        yield Finding("E406", lid, f"UserData is {size} bytes; EC2 accepts {EC2_USERDATA_LIMIT}")


def _userdata_size(value: Any) -> int | None:
    """Bytes EC2 receives: a base64 string decoded, Fn::Base64 of text encoded; None when
    an intrinsic makes it unknowable offline."""
    if isinstance(value, str):
        try:
            return len(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            return len(value.encode())
    if isinstance(value, Mapping) and isinstance(value.get("Fn::Base64"), str):
        return len(value["Fn::Base64"].encode())
    return None


def _instance_groups(resources: Mapping[str, Any]) -> set[str]:
    groups: set[str] = set()
    for resource in resources.values():
        if not isinstance(resource, Mapping) or resource.get("Type") != "AWS::EC2::LaunchTemplate":
            continue
        data = _mapping(_properties(resource).get("LaunchTemplateData"))
        if not isinstance(data, Mapping):
            continue
        groups |= {_key(g) for g in _list(data.get("SecurityGroupIds") or [])}
        for interface in _list(data.get("NetworkInterfaces") or []):
            if isinstance(interface, Mapping):
                groups |= {_key(g) for g in _list(interface.get("Groups") or [])}
    return groups


def _open(rule: Mapping[str, Any]) -> str | None:
    for key, cidr in OPEN_CIDRS.items():
        if rule.get(key) == cidr:
            return cidr
    return None


def _ingress(resources: Mapping[str, Any]) -> Iterator[Finding]:
    # First the rules open to the world (rarely any), then whether instances use their group.
    candidates: list[tuple[str, str, set[str]]] = []
    for lid, resource in resources.items():
        if not isinstance(resource, Mapping):
            continue
        properties = _properties(resource)
        if not isinstance(properties, Mapping):
            continue
        kind = resource.get("Type")
        if kind == "AWS::EC2::SecurityGroupIngress":
            cidr = _open(properties)
            if cidr:
                candidates.append((lid, cidr, {_key(properties.get("GroupId"))}))
        elif kind == "AWS::EC2::SecurityGroup":
            for rule in _list(properties.get("SecurityGroupIngress") or []):
                cidr = _open(rule) if isinstance(rule, Mapping) else None
                if cidr:
                    mine = {_key({"Ref": lid}), _key({"Fn::GetAtt": [lid, "GroupId"]})}
                    candidates.append((lid, cidr, mine))
    if not candidates:
        return
    groups = _instance_groups(resources)
    for lid, cidr, targets in candidates:
        if targets & groups:
            yield Finding("E405", lid, f"ingress from {cidr} to the instances' security group")


def check_template(template: Mapping[str, Any], region: str | None = None) -> list[Finding]:
    """Every finding in `template` (empty when it passes); `region` sizes the ARNs (without
    it, the longest region name there is)."""
    resources = template.get("Resources")
    if not isinstance(resources, Mapping):
        return []
    found: list[Finding] = []
    for lid, resource in resources.items():
        if not isinstance(resource, Mapping):
            continue
        found += _iam(lid, resource)
        properties = _properties(resource)
        if resource.get("Type") == "AWS::EC2::LaunchTemplate" and isinstance(properties, Mapping):
            data = properties.get("LaunchTemplateData")
            if isinstance(data, Mapping):
                found += _launch_template(lid, data)
        if (
            resource.get("Type") == "AWS::EC2::Volume"
            and isinstance(properties, Mapping)
            and properties.get("Encrypted") not in (True, "true")
        ):
            found.append(Finding("E404", lid, "the EBS volume is not encrypted"))
        for attribute in ("DeletionPolicy", "UpdateReplacePolicy"):
            policy = resource.get(attribute)
            if policy in LEAVES_BEHIND:
                found.append(
                    Finding(
                        "W402",
                        lid,
                        f"{attribute} {policy} leaves the resource (or a snapshot) in the "
                        "account after destroy, untracked by nixecs",
                    )
                )
    found += _ingress(resources)
    found += _policy_sizes(resources, region)
    return found
