"""Stacks of this fleet that the fleet no longer declares (a cluster removed from fleet.yml).

A stack is this fleet's when `deploy` tagged it (naming.TAG_CLUSTER, and naming.TAG_FLEET
equal to this fleet's identity). A stack deployed before TAG_FLEET existed is nobody's here:
it becomes a fleet's only through an explicit `--adopt` (aws/ownership.py). Stack tags are set through the change set's Tags, which CloudFormation also
propagates to the stack's resources (CreateChangeSet, Tags —
https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html).
"""

from __future__ import annotations

from typing import Any

from .. import naming
from .session import Session

GONE = {"DELETE_COMPLETE"}


def fleet_stacks(session: Session, fleet: str | None) -> dict[str, str]:
    """cluster → stack status, for every live stack this fleet deployed (one paginated call);
    `fleet=None`: the stacks an earlier nixecs deployed (TAG_CLUSTER without TAG_FLEET)."""
    cfn = session.client("cloudformation")
    found: dict[str, str] = {}
    for page in cfn.get_paginator("describe_stacks").paginate():
        for stack in page.get("Stacks", []):
            tags = {t["Key"]: t["Value"] for t in stack.get("Tags", [])}
            cluster = tags.get(naming.TAG_CLUSTER)
            if cluster is None or stack["StackStatus"] in GONE:
                continue
            if tags.get(naming.TAG_FLEET) != fleet:
                continue
            if stack["StackName"] == naming.stack_name(cluster):
                found[cluster] = str(stack["StackStatus"])
    return found


def orphans(session: Session, model: Any) -> dict[str, str]:
    """This fleet's stacks whose cluster the fleet no longer declares → their status."""
    live = fleet_stacks(session, model.identity)
    return {c: status for c, status in sorted(live.items()) if c not in model.clusters}


def earlier(session: Session) -> dict[str, str]:
    """Stacks an earlier nixecs made (no TAG_FLEET) → their status: nobody's until adopted."""
    return dict(sorted(fleet_stacks(session, None).items()))


def adopt_note(unclaimed: dict[str, str]) -> str:
    """What `deploy` and `status --fleet` say about the stacks `earlier` found."""
    return (
        f"stacks of an earlier nixecs (no {naming.TAG_FLEET}), nobody's until adopted: "
        f"{describe(unclaimed)}; `nixecs deploy FLEET --adopt` claims those a fleet declares, "
        "`nixecs destroy CLUSTER --adopt` removes one"
    )


def describe(found: dict[str, str]) -> str:
    return ", ".join(f"{naming.stack_name(c)} ({status})" for c, status in found.items())
