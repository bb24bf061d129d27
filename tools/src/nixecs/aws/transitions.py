"""`deploy`'s side of a transition (cloudformation/transition.py): the plan of each stack
update from the deployed template, hazards refused unless accepted, the first update of a
two-phase one (listener rules moved out of the way), and groups emptied before the update
deletes them.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .. import naming
from ..cloudformation import transition as cfn_transition
from ..cloudformation.registry import INSTALL_HINT, Registry
from ..diagnostics import FIXES
from .deploy import Change, _parse_template, _template_text
from .ownership import describe_stack
from .session import Session, aws_errors

Say = Callable[[str], None]


@dataclass
class Planned:
    cluster: str
    deployed: dict[str, Any] | None  # the stack's template; None when there is no stack yet
    transition: cfn_transition.Transition


def plan_cluster(session: Session, cluster: str, body: str) -> Planned:
    """The transition from what the cluster's stack holds now to `body`."""
    cfn = session.client("cloudformation")
    stack = naming.stack_name(cluster)
    deployed: dict[str, Any] | None = None
    with aws_errors(session, f"plan {cluster}"):
        current = describe_stack(cfn, stack)
        if current is not None and current["StackStatus"] not in (
            "REVIEW_IN_PROGRESS",
            "ROLLBACK_COMPLETE",
            "ROLLBACK_FAILED",
        ):
            deployed = _parse_template(_template_text(cfn, stack))
    registry = Registry(session.region_name() or "us-east-1")
    new = _parse_template(body)
    foreign = foreign_priorities(session, stack, new, exists=deployed is not None)
    transition = cfn_transition.plan(deployed, new, registry, foreign=foreign)
    transition.hazards += ingress_hazards(session, transition, new)
    return Planned(cluster, deployed, transition)


def foreign_priorities(
    session: Session, stack: str, new: dict[str, Any], *, exists: bool
) -> dict[str, set[int]]:
    """Per existing listener (`listener_arn:`, shared with other stacks or tools), the
    priorities of the rules there that this stack does not own (DescribeRules, paged)."""
    arns = sorted(
        {
            str(props["ListenerArn"])
            for resource in (new.get("Resources") or {}).values()
            if isinstance(resource, dict)
            and resource.get("Type") == cfn_transition.LISTENER_RULE
            and isinstance(props := resource.get("Properties") or {}, dict)
            and isinstance(props.get("ListenerArn"), str)
        }
    )
    if not arns:
        return {}
    ours: set[str] = set()
    found: dict[str, set[int]] = {}
    with aws_errors(session, "plan: listener rules"):
        if exists:
            cfn = session.client("cloudformation")
            for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
                ours |= {
                    str(item.get("PhysicalResourceId"))
                    for item in page.get("StackResourceSummaries", [])
                    if item.get("ResourceType") == cfn_transition.LISTENER_RULE
                }
        elbv2 = session.client("elbv2")
        for arn in arns:
            found[arn] = {
                int(rule["Priority"])
                for page in elbv2.get_paginator("describe_rules").paginate(ListenerArn=arn)
                for rule in page.get("Rules", [])
                if not rule.get("IsDefault") and rule.get("RuleArn") not in ours
            }
    return found


def ingress_hazards(
    session: Session, transition: cfn_transition.Transition, new: dict[str, Any]
) -> list[cfn_transition.Hazard]:
    """H106: an ingress rule the update would create that its security group already has —
    another stack's (a cluster of another fleet sharing the groups) or one made by hand. EC2
    refuses it, "InvalidPermission.Duplicate: The specified rule already exists"
    (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html), the stack
    rolls back; and were it accepted, deleting either owner would revoke the rule for both.
    Within one fleet, `validate` refuses the same as E168."""
    wanted: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for logical in transition.created(cfn_transition.INGRESS):
        props = new["Resources"][logical].get("Properties") or {}
        if isinstance(props.get("GroupId"), str) and isinstance(
            props.get("SourceSecurityGroupId"), str
        ):
            wanted.setdefault(props["GroupId"], []).append((logical, props))
    if not wanted:
        return []
    ec2 = session.client("ec2")
    hazards = []
    with aws_errors(session, "plan: security groups"):
        groups = ec2.describe_security_groups(GroupIds=sorted(wanted))["SecurityGroups"]
    for group in groups:
        for logical, props in wanted.get(group["GroupId"], []):
            for permission in group.get("IpPermissions", []):
                sources = {p.get("GroupId") for p in permission.get("UserIdGroupPairs", [])}
                if (
                    permission.get("IpProtocol") == props.get("IpProtocol")
                    and permission.get("FromPort") == props.get("FromPort")
                    and permission.get("ToPort") == props.get("ToPort")
                    and props["SourceSecurityGroupId"] in sources
                ):
                    hazards.append(
                        cfn_transition.Hazard(
                            cfn_transition.H_INGRESS,
                            logical,
                            f"{logical}: security group {group['GroupId']} already admits "
                            f"{props['SourceSecurityGroupId']} on {props.get('IpProtocol')} "
                            f"{props.get('FromPort')}-{props.get('ToPort')} (another stack's "
                            "rule, or one made by hand): EC2 refuses a duplicate "
                            "(InvalidPermission.Duplicate)",
                        )
                    )
    return hazards


def with_change_set(transition: cfn_transition.Transition, changes: Iterable[Change]) -> None:
    """Without cfn-lint's schemas, take replacement from CloudFormation's change set."""
    if transition.replacement_known:
        return
    replaced = {c.logical_id for c in changes if c.action == "Modify" and c.replacement == "True"}
    transition.resources = [
        cfn_transition.ResourcePlan(r.logical_id, r.resource_type, cfn_transition.REPLACE)
        if r.logical_id in replaced and r.action == cfn_transition.MODIFY
        else r
        for r in transition.resources
    ]


def lines(planned: Planned) -> list[str]:
    out = cfn_transition.summary(planned.transition)
    if not planned.transition.replacement_known:
        out.append(f"  note: {INSTALL_HINT}")
    return out


def refusal(planned: Planned, accepted: Iterable[str]) -> str | None:
    """Why `deploy` refuses this transition (None: it does not)."""
    refused = planned.transition.refused(accepted)
    if not refused:
        return None
    stack = naming.stack_name(planned.cluster)
    parts = [f"{h.code}: {h.message}; fix: {FIXES[h.code]}" for h in refused]
    codes = " ".join(f"--accept-hazard {code}" for code in sorted({h.code for h in refused}))
    return f"{stack}: refused: " + "; ".join(parts) + f" (to go ahead regardless, pass {codes})"


def phase_one_body(planned: Planned) -> str | None:
    """The first update of a two-phase one (listener rules moved to free priorities), or
    None when the transition needs none."""
    moves = planned.transition.priority_moves
    if not moves or planned.deployed is None:
        return None
    return json.dumps(cfn_transition.phase_one(planned.deployed, moves), sort_keys=True)


def lift_removed_groups(
    session: Session, planned: Planned, *, say: Say, poll: float, timeout: float
) -> list[str]:
    """Empty each Auto Scaling group the update deletes, exactly as `destroy` does (its own
    code): scale-in protection lifted, scaled to 0, instances waited for — otherwise the
    cleanup cannot delete a group whose instances are protected from scale-in and the stack
    sits in UPDATE_COMPLETE_CLEANUP_IN_PROGRESS (aws/aws-cdk#18179,
    aws/containers-roadmap#2862). `check_removed_groups` has already made sure no service
    still runs on them."""
    from .destroy import _groups

    logical = planned.transition.removed_groups()
    if not logical:
        return []
    cfn = session.client("cloudformation")
    stack = naming.stack_name(planned.cluster)
    names = []
    with aws_errors(session, f"deploy {planned.cluster}: groups removed"):
        for page in cfn.get_paginator("list_stack_resources").paginate(StackName=stack):
            for item in page.get("StackResourceSummaries", []):
                if item.get("LogicalResourceId") in logical and item.get("PhysicalResourceId"):
                    names.append(str(item["PhysicalResourceId"]))
        say(f"{stack}: emptying the groups this update deletes: {', '.join(sorted(names))}")
        return _groups(session, sorted(names), say, poll, timeout)
