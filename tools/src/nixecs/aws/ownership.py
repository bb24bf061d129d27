"""Only what nixecs created: the ownership checks made before every destructive or adopting call.

A stack is this fleet's when it carries both marks `deploy` writes through the change set's
Tags (which CloudFormation puts on the stack and propagates to its resources — CreateChangeSet,
Tags, https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html):
naming.TAG_CLUSTER equal to the cluster the stack is named for, and naming.TAG_FLEET equal to
the fleet's identity (fleet.model.Fleet.identity). Anything else is refused, naming what was
found and whose it is:

- no marks at all: not made by nixecs (a stack that merely has our name);
- TAG_CLUSTER but no TAG_FLEET: made by an earlier nixecs, before TAG_FLEET existed. Claimed
  only with an explicit `--adopt` (never silently): the next deploy writes the fleet's tag;
- another TAG_FLEET: another fleet's.

A stack in REVIEW_IN_PROGRESS holds only change sets; when it shows no tags of its own, the
tags of its change sets say whose review it is (DescribeChangeSet returns them).

A refusal is exit 2 (DESIGN §6, invalid usage): the command as given may not act on what it
names; what fixes it is another name, `--fleet`, or `--adopt` — the user's input, not AWS.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import click

from .. import naming
from .session import error_code


def describe_stack(cfn: Any, stack: str) -> dict[str, Any] | None:
    """The stack's description, or None when it does not exist (here, not in deploy.py:
    deploy checks ownership before it changes a stack, so it imports this module)."""
    from botocore.exceptions import ClientError

    try:
        stacks = cfn.describe_stacks(StackName=stack)["Stacks"]
    except ClientError as error:
        if error_code(error) == "ValidationError" and "does not exist" in str(error):
            return None
        raise
    return dict(stacks[0]) if stacks else None


class NotOurs(click.ClickException):
    """A refused destructive or adopting call: exit 2, one line naming what and whose."""

    exit_code = 2

    def format_message(self) -> str:
        return f"refusing: {self.message}"


@dataclass(frozen=True)
class Marks:
    """What a stack says about who made it (None: the tag is absent)."""

    cluster: str | None
    fleet: str | None
    # a stack in REVIEW_IN_PROGRESS with neither tags nor change sets: nothing says whose
    empty_review: bool = False
    # … or whose change sets disagree about whose it is: each one's marks, described
    mixed: tuple[str, ...] = ()

    def describe(self) -> str:
        if self.cluster is None and self.fleet is None:
            return "no nixecs tags"
        parts = []
        if self.cluster is not None:
            parts.append(f"{naming.TAG_CLUSTER}={self.cluster}")
        if self.fleet is not None:
            parts.append(f"{naming.TAG_FLEET}={self.fleet}")
        return ", ".join(parts)


def _tags(items: Any) -> dict[str, str]:
    return {str(t["Key"]): str(t["Value"]) for t in items or []}


def stack_marks(cfn: Any, stack: dict[str, Any]) -> Marks:
    """The stack's marks; for a stack in review without tags, its change sets' — all of them
    must agree (two fleets' pending change sets on one stack are nobody's alone)."""
    tags = _tags(stack.get("Tags"))
    if tags or stack.get("StackStatus") != "REVIEW_IN_PROGRESS":
        return Marks(tags.get(naming.TAG_CLUSTER), tags.get(naming.TAG_FLEET))
    name = str(stack["StackName"])
    seen: list[Marks] = []
    for page in cfn.get_paginator("list_change_sets").paginate(StackName=name):
        for summary in page.get("Summaries", []):
            found = _tags(
                cfn.describe_change_set(StackName=name, ChangeSetName=summary["ChangeSetName"]).get(
                    "Tags"
                )
            )
            marks = Marks(found.get(naming.TAG_CLUSTER), found.get(naming.TAG_FLEET))
            if marks not in seen:
                seen.append(marks)
    if not seen:
        return Marks(None, None, empty_review=True)
    if len(seen) > 1:
        return Marks(None, None, mixed=tuple(m.describe() for m in seen))
    return seen[0]


def refusal(stack: str, cluster: str, fleet: str, marks: Marks, *, adopt: bool) -> str | None:
    """Why `stack` (named for `cluster`) is not this fleet's to change or delete; None when it is."""
    if marks.fleet == fleet and marks.cluster == cluster:
        return None
    if marks.fleet is None and marks.cluster == cluster:
        if adopt:
            return None
        return (
            f"stack {stack} was made by an earlier nixecs ({marks.describe()}, no "
            f"{naming.TAG_FLEET}); pass --adopt to claim it for fleet {fleet!r}"
        )
    if marks.mixed:
        return (
            f"stack {stack} is in review with change sets of different owners "
            f"({'; '.join(marks.mixed)}): none of them alone may change or delete it"
        )
    if marks.empty_review:
        return (
            f"stack {stack} is in REVIEW_IN_PROGRESS with no tags and no change set: nothing "
            "says whose it is (it holds no resources; if it is yours, delete it with `aws "
            f"cloudformation delete-stack --stack-name {stack}`)"
        )
    if marks.fleet is None and marks.cluster is None:
        return f"stack {stack} has {marks.describe()}: nixecs did not make it, it only has the same name"
    if marks.fleet is not None and marks.fleet != fleet:
        return (
            f"stack {stack} belongs to fleet {marks.fleet!r} ({marks.describe()}), "
            f"not to this fleet {fleet!r}"
        )
    return f"stack {stack} is tagged for another cluster ({marks.describe()}), not {cluster!r}"


def check_stack(
    cfn: Any, stack: dict[str, Any], cluster: str, fleet: str, *, action: str, adopt: bool = False
) -> Marks:
    """Raise NotOurs unless `stack` is this fleet's stack of `cluster` (or, with `adopt`, an
    earlier nixecs's); returns its marks."""
    marks = stack_marks(cfn, stack)
    reason = refusal(str(stack["StackName"]), cluster, fleet, marks, adopt=adopt)
    if reason is not None:
        raise NotOurs(f"{action}: {reason}")
    return marks


def check_group(
    session: Any,
    group: dict[str, Any],
    cluster: str,
    fleet: str,
    *,
    action: str,
    adopt: bool = False,
) -> None:
    """Raise NotOurs unless the Auto Scaling group `group` (named for `cluster`) is one this
    fleet's stack made. `deploy` tags every group naming.TAG_CLUSTER itself (its template's
    Tags); CloudFormation may add the stack's tags (naming.TAG_FLEET among them) and
    `aws:cloudformation:stack-name`, but "the propagation of stack-level tags to resources
    ... varies by resource type"
    (https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-resource-tags.html),
    so their absence proves nothing. Hence: the group must carry this cluster's TAG_CLUSTER;
    a TAG_FLEET or stack name it does carry must be this fleet's; and the cluster's stack,
    which always carries TAG_FLEET, must pass check_stack (a group whose stack is gone, or
    is another fleet's, is not replaced)."""
    name = str(group["AutoScalingGroupName"])
    tags = _tags(group.get("Tags"))
    marks = Marks(tags.get(naming.TAG_CLUSTER), tags.get(naming.TAG_FLEET))
    if marks.fleet is not None and marks.fleet != fleet:
        raise NotOurs(
            f"{action}: Auto Scaling group {name} belongs to fleet {marks.fleet!r} "
            f"({marks.describe()}), not to this fleet {fleet!r}"
            + (
                "; if it is yours, name its fleet file with --fleet (and --env)"
                if fleet == naming.DEFAULT_FLEET
                else ""
            )
        )
    if marks.cluster != cluster:
        raise NotOurs(
            f"{action}: Auto Scaling group {name} has {marks.describe()}: nixecs did not make "
            f"it for cluster {cluster!r}, it only has the same name"
        )
    stack = naming.stack_name(cluster)
    made_by = tags.get("aws:cloudformation:stack-name")
    if made_by is not None and made_by != stack:
        raise NotOurs(
            f"{action}: Auto Scaling group {name} was made by stack {made_by}, not by {stack}"
        )
    cfn = session.client("cloudformation")
    described = describe_stack(cfn, stack)
    if described is None:
        raise NotOurs(
            f"{action}: Auto Scaling group {name} has no stack {stack} (nixecs makes every "
            "group through its cluster's stack): it was not made by a nixecs deploy of this "
            "fleet, or its stack is gone"
        )
    check_stack(cfn, described, cluster, fleet, action=action, adopt=adopt)


def check_image(image: dict[str, Any], name: str, sha: str, *, region: str = "") -> None:
    """Raise NotOurs unless the AMI found under `name` is one `ami publish` registered from
    this very image: tagged naming.TAG_IMAGE_SHA256 with `sha`. An AMI without that tag (made
    by hand or by another tool) or of another image is never adopted, tagged or shared."""
    tagged = _tags(image.get("Tags")).get(naming.TAG_IMAGE_SHA256)
    where = f" in {region}" if region else ""
    if tagged == sha:
        return
    if tagged is None:
        raise NotOurs(
            f"ami publish: AMI name {name!r}{where} is taken by {image.get('ImageId')}, which "
            f"nixecs did not register (no {naming.TAG_IMAGE_SHA256} tag); pick another --name"
        )
    raise NotOurs(
        f"ami publish: AMI name {name!r}{where} is taken by {image.get('ImageId')}, built from "
        f"a different image ({naming.TAG_IMAGE_SHA256} {tagged[:16]}…, this image "
        f"{sha[:16]}…); pick another --name"
    )


def parameter_refusal(name: str, fleet: Any, fleet_file: str | None) -> str | None:
    """Why `secret put/rm NAME` may not act on the SSM parameter without --outside-fleet;
    None when it is the fleet's own (Fleet.owns_parameter): one the fleet file references, or
    one below the `parameter_prefix:` it declares."""
    if fleet is None:
        return (
            f"{name}: no --fleet FILE says whose parameter it is; pass --fleet (for a parameter "
            "the fleet references) or --outside-fleet"
        )
    if fleet.owns_parameter(name):
        return None
    known = sorted(fleet.parameter_uses())
    listed = ", ".join(known[:5]) + (f" and {len(known) - 5} more" if len(known) > 5 else "")
    prefix = fleet.parameter_prefix
    below = f", nor below its parameter_prefix {prefix}" if prefix else ""
    return (
        f"{name} is not a parameter {fleet_file} references "
        f"({'its parameters: ' + listed if known else 'it references none'}){below}; "
        "pass --outside-fleet to act on it anyway"
    )


def parameter_tag_refusal(
    name: str, tags: dict[str, str], fleet: str, *, claiming: bool = False
) -> str | None:
    """Why `secret rm` (or a `put` that changes the type) may not act on the existing
    parameter NAME without --outside-fleet, judged by the mark `secret put --fleet` writes:
    naming.TAG_FLEET equal to the fleet's identity. Another fleet's mark is always refused;
    no mark is refused unless `claiming` (a `put` of a new SecureString value over one the
    fleet references: it writes the mark, as `deploy --adopt` claims an earlier stack)."""
    found = tags.get(naming.TAG_FLEET)
    if found == fleet:
        return None
    if found is not None:
        return (
            f"{name} belongs to fleet {found!r} ({naming.TAG_FLEET}={found}), not to this fleet "
            f"{fleet!r}; pass --outside-fleet to act on it anyway"
        )
    if claiming:
        return None
    return (
        f"{name} has no {naming.TAG_FLEET} tag: `secret put --fleet` did not make it for "
        f"fleet {fleet!r} (it was made by hand, or before nixecs tagged parameters; a "
        "`secret put --fleet` of a new value tags it); pass --outside-fleet to act on it anyway"
    )


def check_stacks(
    session: Any,
    clusters: Iterable[str],
    fleet: str,
    *,
    action: str,
    adopt: bool = False,
    creating: bool = False,
) -> None:
    """check_stack for the stack of each of `clusters` that exists: every one is checked
    before the first is touched, so a refusal leaves all of them as they were. `creating`
    (deploy): where no stack exists, the stack about to be created must not claim an ECS
    cluster someone else made (check_ecs_cluster_free)."""
    cfn = session.client("cloudformation")
    for cluster in clusters:
        stack = describe_stack(cfn, naming.stack_name(cluster))
        if stack is not None:
            check_stack(cfn, stack, cluster, fleet, action=f"{action} {cluster}", adopt=adopt)
        elif creating:
            check_ecs_cluster_free(session, cluster, action=f"{action} {cluster}")


def check_ecs_cluster_free(session: Any, cluster: str, *, action: str) -> None:
    """NotOurs when an ACTIVE ECS cluster already has the name the new stack's cluster takes.

    ECS's CreateCluster does not fail on a name in use: it answers with the existing cluster
    (as Terraform's users found: hashicorp/terraform-provider-aws#38875 and #44817, "creating
    `aws_ecs_cluster` imports existing cluster automatically if it already exists"). A stack
    that created it that way would own a cluster it did not make — and `destroy` would then
    delete it with the stack. So a name in use is refused before the CREATE change set."""
    ecs = session.client("ecs")
    name = naming.ecs_cluster_name(cluster)
    found = ecs.describe_clusters(clusters=[name]).get("clusters", [])
    active = [c for c in found if c.get("status") == "ACTIVE"]
    if active:
        raise NotOurs(
            f"{action}: ECS cluster {name} already exists ({active[0].get('clusterArn')}) and no "
            f"nixecs stack owns it: creating {naming.stack_name(cluster)} would claim it; use "
            "another cluster name (or name_prefix), or delete that ECS cluster"
        )


def ecs_tags_for_cluster(
    tags: Iterable[dict[str, str]], cluster: str, what: str, refusal: str
) -> dict[str, str]:
    """An ECS resource's tags (ECS's lower-case `key`/`value` form), once its `nixecs:cluster`
    tag names `cluster` (every service and task definition nixecs deploys carries it,
    cloudformation/context.py); NotOurs otherwise: `what` is not nixecs's for it (`exec` into
    a service, `run` of a task definition)."""
    found = {str(t.get("key")): str(t.get("value")) for t in tags}
    owner = found.get(naming.TAG_CLUSTER)
    if owner != cluster:
        whose = f"its {naming.TAG_CLUSTER} tag is {owner!r}" if owner else "it has no nixecs tags"
        raise NotOurs(
            f"{what} is not one nixecs deployed for cluster {cluster} ({whose}): {refusal}"
        )
    return found
