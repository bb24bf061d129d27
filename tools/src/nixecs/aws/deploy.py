"""`nixecs deploy`: one CloudFormation stack per cluster, changed only through change sets.

The change set's name is derived from the template, so a rerun after any failure finds the
change set it made before instead of making another; "no changes" is success; stack events
stream while the change set executes; a failed stack names the resource that failed and why.

moto's CloudFormation silently skips Application Auto Scaling targets and policies and
CloudWatch alarms, so a CREATE_COMPLETE proves nothing about them: after a deploy they are
looked up through their own service APIs and whatever is missing is reported.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .. import naming
from ..diagnostics import OperationalFailure
from .ownership import check_stack, describe_stack
from .progress import Progress, sleep
from .session import Session, aws_errors, error_code
from .topics import check_topics

TEMPLATE_BODY_LIMIT = 51_200
TEMPLATE_URL_LIMIT = 1_000_000
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
NO_CHANGES = ("didn't contain changes", "No updates are to be performed")
OK_STATUSES = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
DEAD_STATUSES = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED"}
CHANGE_SET_BUSY = {"CREATE_PENDING", "CREATE_IN_PROGRESS"}
REVIEW_POLLS = 20


@dataclass(frozen=True)
class Change:
    action: str  # Add | Modify | Remove | Import | Dynamic
    logical_id: str
    resource_type: str
    replacement: str  # True | False | Conditional | "" (not applicable)
    physical_id: str = ""

    def to_json(self) -> dict[str, str]:
        return {
            "action": self.action,
            "logical_id": self.logical_id,
            "type": self.resource_type,
            "replacement": self.replacement,
            "physical_id": self.physical_id,
        }


@dataclass
class ClusterDeploy:
    cluster: str
    stack: str
    change_set: str = ""
    outcome: str = ""  # created | updated | no changes | started | planned
    status: str = ""
    changes: list[Change] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    transition: dict[str, Any] = field(default_factory=dict)  # aws/transitions.py's plan

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster": self.cluster,
            "stack": self.stack,
            "change_set": self.change_set,
            "outcome": self.outcome,
            "stack_status": self.status,
            "changes": [c.to_json() for c in self.changes],
            "missing": self.missing,
            "plan": self.transition,
        }


Confirm = Callable[[ClusterDeploy], bool]
Say = Callable[[str], None]


def change_set_name(body: str) -> str:
    """Idempotent: the same template gives the same change set name (and client token)."""
    return "nixecs-" + hashlib.sha256(body.encode()).hexdigest()[:24]


def _describe_change_set(cfn: Any, stack: str, name: str) -> dict[str, Any] | None:
    """The change set with every page of its changes; None when there is none by that name."""
    from botocore.exceptions import ClientError

    try:
        first = cfn.describe_change_set(StackName=stack, ChangeSetName=name)
    except ClientError as error:
        # AWS: ChangeSetNotFound; moto: ValidationError "Stack with id <name> does not exist"
        if error_code(error) == "ChangeSetNotFound" or (
            error_code(error) == "ValidationError" and "does not exist" in str(error)
        ):
            return None
        raise
    result = dict(first)
    changes = list(first.get("Changes", []))
    token = first.get("NextToken")
    while token:
        page = cfn.describe_change_set(StackName=stack, ChangeSetName=name, NextToken=token)
        changes += page.get("Changes", [])
        token = page.get("NextToken")
    result["Changes"] = changes
    return result


def _changes(change_set: dict[str, Any]) -> list[Change]:
    out = []
    for item in change_set.get("Changes", []):
        rc = item.get("ResourceChange")
        if not rc:
            continue
        out.append(
            Change(
                action=str(rc.get("Action", "")),
                logical_id=str(rc.get("LogicalResourceId", "")),
                resource_type=str(rc.get("ResourceType", "")),
                replacement=str(rc.get("Replacement", "")),
                physical_id=str(rc.get("PhysicalResourceId", "")),
            )
        )
    return out


def summarize(changes: Iterable[Change]) -> list[str]:
    """Readable lines: `+ Add     Logical  AWS::Type  (replacement: True)`."""
    marks = {"Add": "+", "Modify": "~", "Remove": "-", "Import": ">", "Dynamic": "?"}
    rows = list(changes)
    if not rows:
        return ["  (no resource changes)"]
    width_id = max(len(c.logical_id) for c in rows)
    width_type = max(len(c.resource_type) for c in rows)
    lines = []
    for c in rows:
        line = f"  {marks.get(c.action, '?')} {c.action:<7} {c.logical_id:<{width_id}}  {c.resource_type:<{width_type}}"
        if c.action == "Modify" and c.replacement:
            line += f"  replacement: {c.replacement}"
        lines.append(line.rstrip())
    counts = {a: sum(1 for c in rows if c.action == a) for a in ("Add", "Modify", "Remove")}
    lines.append(
        f"  {counts['Add']} to add, {counts['Modify']} to modify, {counts['Remove']} to remove"
    )
    return lines


def _events(cfn: Any, stack: str, seen: set[str]) -> list[dict[str, Any]]:
    """New stack events, oldest first; pages back only until an event already seen."""
    new: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        args: dict[str, Any] = {"StackName": stack}
        if token:
            args["NextToken"] = token
        page = cfn.describe_stack_events(**args)
        stop = False
        for event in page.get("StackEvents", []):
            if event["EventId"] in seen:
                stop = True
                break
            new.append(event)
        token = page.get("NextToken")
        if stop or not token:
            break
    for event in new:
        seen.add(event["EventId"])
    new.reverse()
    return new


def _format_event(event: dict[str, Any]) -> str:
    when: Any = event.get("Timestamp")
    clock = when.strftime("%H:%M:%S") if when is not None and hasattr(when, "strftime") else ""
    line = f"  {clock} {event.get('ResourceStatus', ''):<28} {event.get('LogicalResourceId', '')} ({event.get('ResourceType', '')})"
    reason = event.get("ResourceStatusReason")
    if reason and reason != "User Initiated":
        line += f": {reason}"
    return line


def wait_for_stack(
    cfn: Any,
    stack: str,
    *,
    seen: set[str],
    total: int,
    poll: float,
    description: str,
    quiet: bool = False,
) -> tuple[str, list[dict[str, Any]]]:
    """Stream events until the stack leaves *_IN_PROGRESS; returns (status, events seen here)."""
    streamed: list[dict[str, Any]] = []
    done: set[str] = set()
    reviews = 0
    with Progress(description, total=max(total, 1)) as progress:
        while True:
            current = describe_stack(cfn, stack)
            status = current["StackStatus"] if current else "DELETE_COMPLETE"
            for event in _events(cfn, stack, seen) if current else []:
                streamed.append(event)
                if not quiet:
                    progress.log(_format_event(event))
                if event.get("LogicalResourceId") != stack and str(
                    event.get("ResourceStatus", "")
                ).endswith("_COMPLETE"):
                    done.add(str(event.get("LogicalResourceId")))
            # right after ExecuteChangeSet a new stack may still show REVIEW_IN_PROGRESS briefly
            reviews = reviews + 1 if status == "REVIEW_IN_PROGRESS" else 0
            settled = not status.endswith("_IN_PROGRESS") or reviews > REVIEW_POLLS
            complete = (
                max(total, 1)
                if settled and status in OK_STATUSES
                else min(len(done), max(total, 1))
            )
            progress.update(complete, status=status)
            if settled:
                return status, streamed
            sleep(poll)


def failure_reason(events: list[dict[str, Any]]) -> str:
    """The first resource that failed, and why (events oldest first)."""
    for event in events:
        status = str(event.get("ResourceStatus", ""))
        reason = str(event.get("ResourceStatusReason", "") or "")
        if status.endswith("_FAILED") and "cancelled" not in reason.lower():
            return f"{event.get('LogicalResourceId')} ({event.get('ResourceType')}) {status}: {reason or 'no reason given'}"
    for event in events:
        reason = str(event.get("ResourceStatusReason", "") or "")
        if reason and reason != "User Initiated":
            return f"{event.get('LogicalResourceId')}: {reason}"
    return "no failing resource reported"


def _all_events(cfn: Any, stack: str) -> list[dict[str, Any]]:
    return _events(cfn, stack, set())


def deploy_cluster(
    session: Session,
    cluster: str,
    body: str,
    *,
    wait: bool = True,
    confirm: Confirm | None = None,
    say: Say = print,
    poll: float = 5.0,
    template_bucket: str | None = None,
    plan: bool = False,
    fleet_id: str = naming.DEFAULT_FLEET,
    before_execute: Callable[[], None] | None = None,
    adopt: bool = False,
) -> ClusterDeploy:
    """Create or update the cluster's stack from `body` (the template text) via a change set;
    templates over the inline limit go through `template_bucket`. With `plan`, only show:
    the change set is made, read and deleted (and the stack a CREATE change set made).
    `before_execute` runs once the change set is confirmed, right before it executes.
    An existing stack is changed only when it is this fleet's (`fleet_id`), or with `adopt`
    an earlier nixecs's (aws/ownership.py); anything else is refused before any change."""
    cfn = session.client("cloudformation")
    stack = naming.stack_name(cluster)
    result = ClusterDeploy(cluster=cluster, stack=stack)
    size = len(body.encode())
    if size > TEMPLATE_URL_LIMIT:
        raise OperationalFailure(
            f"{stack}: template is {size} bytes; CloudFormation takes at most {TEMPLATE_URL_LIMIT}"
        )
    if size > TEMPLATE_BODY_LIMIT and not template_bucket:
        import click

        raise click.UsageError(
            f"{stack}: template is {size} bytes, over CloudFormation's {TEMPLATE_BODY_LIMIT} inline; "
            "pass --template-bucket BUCKET to send it through S3"
        )
    name = change_set_name(body)
    source: dict[str, str] = {"TemplateBody": body}
    if size > TEMPLATE_BODY_LIMIT and template_bucket:
        with aws_errors(session, f"deploy {cluster}: template upload"):
            source = {"TemplateURL": upload_template(session, template_bucket, stack, body)}
    result.change_set = name
    with aws_errors(session, f"deploy {cluster}"):
        current = describe_stack(cfn, stack)
        if current is not None:
            check_stack(cfn, current, cluster, fleet_id, action=f"deploy {cluster}", adopt=adopt)
        # the SNS topic whose policy the stack sets (`notifications:`): only one that is ours
        check_topics(session, stack, _parse_template(body), action=f"deploy {cluster}")
        seen = {e["EventId"] for e in _recent_events(cfn, stack)} if current else set()
        if (
            current
            and current["StackStatus"].endswith("_IN_PROGRESS")
            and current["StackStatus"] != "REVIEW_IN_PROGRESS"
        ):
            say(f"{stack}: {current['StackStatus']}, waiting for it to settle first")
            wait_for_stack(
                cfn,
                stack,
                seen=seen,
                total=1,
                poll=poll,
                description=f"{stack} (earlier operation)",
            )
            current = describe_stack(cfn, stack)
        if current and current["StackStatus"] in DEAD_STATUSES:
            say(
                f"{stack}: {current['StackStatus']} after a failed create; deleting it before creating it again"
            )
            cfn.delete_stack(StackName=stack, ClientRequestToken=f"{name}-delete")
            wait_for_stack(
                cfn,
                stack,
                seen=seen,
                total=1,
                poll=poll,
                description=f"deleting {stack}",
                quiet=True,
            )
            current = None
            seen = set()
        exists = current is not None and current["StackStatus"] != "REVIEW_IN_PROGRESS"
        kind = "UPDATE" if exists else "CREATE"
        if exists:
            check_removed_groups(cfn, stack, body)

        change_set = _describe_change_set(cfn, stack, name) if current is not None else None
        if change_set is not None and not _reusable(change_set):
            if change_set.get("ExecutionStatus") == "EXECUTE_IN_PROGRESS":
                say(f"{stack}: change set {name} is already executing")
            else:
                _delete_change_set(cfn, stack, name)
                change_set = None
        if change_set is None:
            _create_change_set(cfn, stack, name, source, kind, cluster, fleet_id)
        change_set = _wait_change_set(cfn, stack, name, poll)
        result.changes = _changes(change_set)
        if plan:
            _end_plan(cfn, stack, name, change_set, created=current is None, result=result)
            return result

        if change_set["Status"] == "FAILED":
            reason = str(change_set.get("StatusReason", ""))
            if any(text in reason for text in NO_CHANGES):
                _delete_change_set(cfn, stack, name)
                result.outcome = "no changes"
                result.status = current["StackStatus"] if current else ""
                return result
            raise OperationalFailure(f"deploy {cluster}: change set {name} failed: {reason}")

        if change_set.get("ExecutionStatus") != "EXECUTE_IN_PROGRESS":
            if confirm is not None and not confirm(result):
                import click

                raise click.exceptions.Abort()
            if before_execute is not None:  # confirmed: what must precede the update
                before_execute()
            _execute(cfn, stack, name)
        result.outcome = "started"
        if not wait:
            return result

        status, events = wait_for_stack(
            cfn,
            stack,
            seen=seen,
            total=len(result.changes),
            poll=poll,
            description=f"{stack} {kind.lower()}",
        )
        result.status = status
        if status not in OK_STATUSES:
            history = events or list(reversed(_all_events(cfn, stack)))
            raise OperationalFailure(
                f"deploy {cluster}: stack {stack} ended {status}: {failure_reason(history)}"
            )
        result.outcome = "created" if kind == "CREATE" else "updated"
    return result


def _end_plan(
    cfn: Any,
    stack: str,
    name: str,
    change_set: dict[str, Any],
    *,
    created: bool,
    result: ClusterDeploy,
) -> None:
    """`deploy --plan`: delete the change set, and the stack if this plan created it.

    A change set of type CREATE creates the stack itself: "If you create a change set for a
    new stack, CloudFormation creates a stack with a unique stack ID, but no template or
    resources. The stack will be in the REVIEW_IN_PROGRESS state until you execute the change
    set" (CreateChangeSet, ChangeSetType —
    https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html,
    as in botocore 1.44.8's cloudformation/2010-05-15 model). Unexecuted, that stack stays;
    having no resources, it is deleted at once and harmlessly."""
    reason = str(change_set.get("StatusReason", ""))
    failed = change_set.get("Status") == "FAILED"
    _delete_change_set(cfn, stack, name)
    if created:
        cfn.delete_stack(StackName=stack)
    if failed and not any(text in reason for text in NO_CHANGES):
        raise OperationalFailure(f"plan {result.cluster}: change set {name} failed: {reason}")
    result.outcome = "no changes" if failed else "planned"


# --- a group removed while its services move (item: capacity provider in use) -------------


def _parse_template(text: str) -> dict[str, Any]:
    """A template body as CloudFormation returns it (our JSON or YAML, long-form intrinsics)."""
    import json

    try:
        data = json.loads(text)
    except ValueError:
        import yaml

        data = yaml.safe_load(text)  # our templates use no short-form (!Ref) tags
    return data if isinstance(data, dict) else {}


def capacity_provider_conflicts(deployed: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Messages for every capacity provider the new template removes while a deployed service
    still runs on it.

    The update changes the cluster's ClusterCapacityProviderAssociations while the service's
    tasks still run on the old provider, and ECS refuses: "You can only disassociate an
    existing capacity provider from a cluster if it's not being used by any existing tasks"
    (PutClusterCapacityProviders —
    https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_PutClusterCapacityProviders.html);
    the stack fails with "The specified capacity provider is in use and cannot be removed"
    (aws/aws-cdk#15366, aws/containers-roadmap#631). A service deleted in the same deploy is
    no help: CloudFormation deletes removed resources only in the cleanup after the update.
    """
    old_resources = deployed.get("Resources", {}) or {}
    new_resources = new.get("Resources", {}) or {}

    def providers(resources: dict[str, Any]) -> dict[str, str]:
        return {
            logical: str((r.get("Properties") or {}).get("Name", logical))
            for logical, r in resources.items()
            if isinstance(r, dict) and r.get("Type") == "AWS::ECS::CapacityProvider"
        }

    removed = {
        k: v for k, v in providers(old_resources).items() if k not in providers(new_resources)
    }
    messages = []
    for logical, resource in sorted(old_resources.items()):
        if not isinstance(resource, dict) or resource.get("Type") != "AWS::ECS::Service":
            continue
        properties = resource.get("Properties") or {}
        for item in properties.get("CapacityProviderStrategy") or []:
            target = (item or {}).get("CapacityProvider")
            ref = target.get("Ref") if isinstance(target, dict) else target
            if ref in removed:
                service = str(properties.get("ServiceName", logical))
                messages.append(
                    f"service {service} runs on capacity provider {removed[ref]}, which this "
                    "deploy removes"
                )
    return messages


def check_removed_groups(cfn: Any, stack: str, body: str) -> None:
    """Refuse, before any change set, a deploy that would fail on a capacity provider in use;
    say which two deploys to make instead."""
    import click

    deployed = _parse_template(_template_text(cfn, stack))
    conflicts = capacity_provider_conflicts(deployed, _parse_template(body))
    if conflicts:
        raise click.UsageError(
            f"{stack}: {'; '.join(conflicts)}. ECS cannot detach a capacity provider that tasks "
            "still use, so this needs two deploys: first keep the group in the fleet and move "
            "its services to another group (or remove them), deploy and let the services move; "
            "then remove the group and deploy again"
        )


def _template_text(cfn: Any, stack: str) -> str:
    body = cfn.get_template(StackName=stack, TemplateStage="Original")["TemplateBody"]
    if isinstance(body, str):
        return body
    import json

    return json.dumps(body)  # botocore decodes a JSON body into a dict


def upload_template(session: Session, bucket: str, stack: str, body: str) -> str:
    """Put the template in S3 (content-addressed: a rerun finds it) and return its URL."""
    from botocore.exceptions import ClientError

    s3 = session.client("s3")
    key = f"nixecs/templates/{stack}/{hashlib.sha256(body.encode()).hexdigest()}.yaml"
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error_code(error) not in ("404", "NoSuchKey", "NotFound"):
            raise
        s3.put_object(Bucket=bucket, Key=key, Body=body.encode(), ContentType="text/yaml")
    region = session.region_name() or "us-east-1"
    return f"https://s3.{region}.amazonaws.com/{bucket}/{key}"


def _recent_events(cfn: Any, stack: str) -> list[dict[str, Any]]:
    """Every event so far (so that only newer ones stream)."""
    return _all_events(cfn, stack)


def _reusable(change_set: dict[str, Any]) -> bool:
    return change_set.get("Status") in CHANGE_SET_BUSY or (
        change_set.get("Status") == "CREATE_COMPLETE"
        and change_set.get("ExecutionStatus") == "AVAILABLE"
    )


def _create_change_set(
    cfn: Any,
    stack: str,
    name: str,
    source: dict[str, str],
    kind: str,
    cluster: str,
    fleet_id: str,
) -> None:
    from botocore.exceptions import ClientError

    try:
        cfn.create_change_set(
            StackName=stack,
            ChangeSetName=name,
            ChangeSetType=kind,
            **source,
            Capabilities=CAPABILITIES,
            ClientToken=name,
            Description=f"nixecs deploy of cluster {cluster}",
            Tags=[
                {"Key": naming.TAG_CLUSTER, "Value": cluster},
                {"Key": naming.TAG_FLEET, "Value": fleet_id},
            ],
        )
    except ClientError as error:
        # our own earlier request (retried after its response was lost) already made it
        if error_code(error) not in ("AlreadyExistsException", "AlreadyExists"):
            raise


def _delete_change_set(cfn: Any, stack: str, name: str) -> None:
    from botocore.exceptions import ClientError
    from botocore.parsers import ResponseParserError

    try:
        cfn.delete_change_set(StackName=stack, ChangeSetName=name)
    except ClientError as error:
        if error_code(error) != "ChangeSetNotFound" and "does not exist" not in str(error):
            raise
    except ResponseParserError:
        # a retry of a delete whose first answer was lost after it took effect: moto answers
        # it with a body botocore cannot parse. Done if the change set is gone.
        if _describe_change_set(cfn, stack, name) is not None:
            raise


def _wait_change_set(cfn: Any, stack: str, name: str, poll: float) -> dict[str, Any]:
    with Progress(f"{stack}: creating change set", total=None) as progress:
        while True:
            change_set = _describe_change_set(cfn, stack, name)
            if change_set is None:
                raise OperationalFailure(
                    f"{stack}: change set {name} disappeared while being created"
                )
            reason = str(change_set.get("StatusReason", ""))
            no_changes = change_set.get("Status") == "FAILED" and any(
                t in reason for t in NO_CHANGES
            )
            progress.update(status="no changes" if no_changes else str(change_set.get("Status")))
            if change_set.get("Status") not in CHANGE_SET_BUSY:
                return change_set
            sleep(poll)


def _execute(cfn: Any, stack: str, name: str) -> None:
    from botocore.exceptions import ClientError

    try:
        cfn.execute_change_set(StackName=stack, ChangeSetName=name, ClientRequestToken=name)
    except ClientError:
        # a retried request whose first attempt went through: fine if it is executing or done
        change_set = _describe_change_set(cfn, stack, name)
        if change_set is None or change_set.get("ExecutionStatus") not in (
            "EXECUTE_IN_PROGRESS",
            "EXECUTE_COMPLETE",
        ):
            raise


# --- verification of what moto's CloudFormation skips ------------------------------------


@dataclass(frozen=True)
class Expected:
    """Scaling resources a cluster's services should have in AWS."""

    targets: dict[str, int]  # resource id → number of scaling policies
    alarms: list[str]


def expected_scaling(fleet: Any, cluster: str) -> Expected:
    from ..cloudformation.deploy_alarms import generated as generated_alarms

    model = fleet.clusters[cluster]
    targets: dict[str, int] = {}
    alarms: list[str] = []
    for service in model.services.values():
        # the generated deployment alarms (cloudformation/deploy_alarms.py), which moto's
        # CloudFormation skips as it skips the step policies' alarms
        alarms += [
            naming.alarm_name(cluster, service.name, alarm.name)
            for alarm in generated_alarms(service)
        ]
        scaling = service.scaling
        if scaling is None:
            continue
        resource = f"service/{naming.ecs_cluster_name(cluster)}/{naming.service_name(service.name)}"
        targets[resource] = len(scaling.target_tracking) + len(scaling.step)
        alarms += [naming.alarm_name(cluster, service.name, policy.name) for policy in scaling.step]
    return Expected(targets, alarms)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def verify_scaling(session: Session, expected: Expected) -> list[str]:
    """What is missing, looked up through Application Auto Scaling and CloudWatch (batched)."""
    missing: list[str] = []
    if not expected.targets and not expected.alarms:
        return missing
    aas = session.client("application-autoscaling")
    with aws_errors(session, "verify scaling"):
        found_targets: set[str] = set()
        resources = sorted(expected.targets)
        for chunk in _chunks(resources, 50):
            for page in aas.get_paginator("describe_scalable_targets").paginate(
                ServiceNamespace="ecs",
                ResourceIds=chunk,
                ScalableDimension="ecs:service:DesiredCount",
            ):
                found_targets |= {t["ResourceId"] for t in page.get("ScalableTargets", [])}
        policies: dict[str, int] = {}
        if resources:
            for page in aas.get_paginator("describe_scaling_policies").paginate(
                ServiceNamespace="ecs"
            ):
                for policy in page.get("ScalingPolicies", []):
                    policies[policy["ResourceId"]] = policies.get(policy["ResourceId"], 0) + 1
        found_alarms: set[str] = set()
        if expected.alarms:
            cloudwatch = session.client("cloudwatch")
            for chunk in _chunks(sorted(expected.alarms), 100):
                for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNames=chunk):
                    found_alarms |= {a["AlarmName"] for a in page.get("MetricAlarms", [])}
    for resource in resources:
        if resource not in found_targets:
            missing.append(f"scalable target {resource}")
        want = expected.targets[resource]
        have = policies.get(resource, 0)
        if have < want:
            missing.append(f"scaling policies of {resource} ({have} of {want})")
    missing += [f"alarm {name}" for name in expected.alarms if name not in found_alarms]
    return missing


def render_template(fleet: Any, cluster: str) -> str:
    """The cluster's template text, exactly as `nixecs render` writes it (DESIGN §7); a
    group's userdata over 16 KB (E111), a stack over CloudFormation's quotas (E115) or a
    final template that fails nixecs.template_checks (E401-E407) is invalid input, reported
    at its place in the fleet file; that check's warnings go to stderr."""
    from ..diagnostics import Report
    from ..render import render_cluster

    rendered = render_cluster(fleet, fleet.clusters[cluster])
    Report(list(rendered.warnings)).print(sys.stderr)
    return rendered.stack_text
