"""The plan of a stack update: per resource add / modify / replace / remove, and the hazards
of the transition by name, decided from the deployed template and the new one alone.

Replacement: a change to one of a type's `createOnlyProperties` (registry.py), or to a
reference to a resource that is itself replaced (its physical id changes), replaces the
resource.

The order CloudFormation updates in, which the hazards depend on: resources are created and
updated first, in dependency order and in parallel where nothing orders them; "CloudFormation
usually creates the replacement resource first, changes references from other dependent
resources to point to the replacement resource, and then deletes the old resource" (Update
behaviors of stack resources,
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-update-behaviors.html);
resources removed from the template and the old copies of replaced ones are deleted only
afterwards, in UPDATE_COMPLETE_CLEANUP_IN_PROGRESS — "Ongoing removal of old resources for
one or more stacks after a successful stack update" (Stack status codes,
https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html).
So a new listener rule is created while the rule it supersedes still holds its priority, and
two rules updated in the same stack update may take each other's priority in either order.

Hazards (codes and fixes in diagnostics.FIXES, docs/aws.md "Plans and hazards"):

- H101 an Auto Scaling group deleted — handled: `deploy` lifts scale-in protection, scales
  it to zero and waits, exactly as `destroy` does, before the update deletes it.
- H102 listener rule priorities colliding (PriorityInUse) — handled: `deploy` first moves
  the rules in the way to free priorities in an update of their own (`phase_one`).
- H103 a target group replaced while a listener rule forwards to it — refused.
- H104 a custom-named resource replaced: CloudFormation cannot do it — refused.
- H105 the load balancer replaced: a new DNS name, every listener, rule and target group
  recreated — refused.
- H106 an ingress rule the security group already has, from another stack or made by hand
  (EC2: InvalidPermission.Duplicate) — refused; found by aws/transitions.py, which asks EC2.
- H107 a rule taking a priority that a rule of another owner holds on an existing listener
  (`listener_arn:`; PriorityInUse) — refused; aws/transitions.py asks ELBv2 which
  priorities are foreign, and temporary priorities avoid them too.
- H108 a Network Load Balancer's security groups going from none to some or from some to
  none in an update: AWS cannot do either ("If you create a Network Load Balancer without
  associating any security groups, you can't associate them with the load balancer later";
  SetSecurityGroups: "You can't perform this operation on a Network Load Balancer unless you
  specified a security group for the load balancer when you created it",
  https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-security-groups.html),
  and SecurityGroups is not create-only in the registry schema, so CloudFormation tries an
  update that fails — refused. (Changing `type:` or `scheme:` replaces the load balancer,
  both create-only: H105.)
- H109 a shared Docker volume (DockerVolumeConfiguration scope `shared`) given another driver,
  driver options or labels than a deployed task definition gives that name: a shared volume
  is one Docker volume per instance, and the agent uses one that exists as it is, matching by
  name only (ECS_SHARED_VOLUME_MATCH_FULL_CONFIG defaults to false: aws/amazon-ecs-agent
  agent/api/task/task.go addSharedVolumes, agent/config/config_unix.go), so the change
  reaches new instances only — refused, until the group is rolled or the volume renamed.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping
from typing import Any

from ..records import dataclass, field
from .registry import Pointer, Registry

ADD, MODIFY, REPLACE, REMOVE = "add", "modify", "replace", "remove"
LISTENER_RULE = "AWS::ElasticLoadBalancingV2::ListenerRule"
TARGET_GROUP = "AWS::ElasticLoadBalancingV2::TargetGroup"
LOAD_BALANCER = "AWS::ElasticLoadBalancingV2::LoadBalancer"
AUTO_SCALING_GROUP = "AWS::AutoScaling::AutoScalingGroup"
MAX_PRIORITY = 50_000  # ELBv2 rule priorities are 1-50000 (CreateRule, Priority)

H_GROUP_REMOVED = "H101"
H_PRIORITY = "H102"
H_TARGET_GROUP = "H103"
H_NAMED = "H104"
H_LOAD_BALANCER = "H105"
H_INGRESS = "H106"
H_FOREIGN_PRIORITY = "H107"
H_NLB_SECURITY_GROUPS = "H108"
H_SHARED_VOLUME = "H109"
TASK_DEFINITION = "AWS::ECS::TaskDefinition"
LISTENER = "AWS::ElasticLoadBalancingV2::Listener"
INGRESS = "AWS::EC2::SecurityGroupIngress"
HANDLED = {H_GROUP_REMOVED, H_PRIORITY}  # made safe by `deploy` itself


@dataclass(frozen=True)
class ResourcePlan:
    logical_id: str
    resource_type: str
    action: str  # add | modify | replace | remove
    reason: str = ""  # the property that forces a replacement

    def to_json(self) -> dict[str, str]:
        return {
            "logical_id": self.logical_id,
            "type": self.resource_type,
            "action": self.action,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Hazard:
    code: str
    subject: str  # the logical id(s) concerned
    message: str

    @property
    def handled(self) -> bool:
        return self.code in HANDLED

    def to_json(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "subject": self.subject,
            "message": self.message,
            "handled": self.handled,
        }


@dataclass
class Transition:
    resources: list[ResourcePlan] = field(default_factory=list)
    hazards: list[Hazard] = field(default_factory=list)
    # phase one of a two-phase update: deployed listener rule → its temporary priority
    priority_moves: dict[str, int] = field(default_factory=dict)
    replacement_known: bool = True

    def action(self, logical_id: str) -> str | None:
        return next((r.action for r in self.resources if r.logical_id == logical_id), None)

    def refused(self, accepted: Iterable[str] = ()) -> list[Hazard]:
        allowed = set(accepted)
        return [h for h in self.hazards if not h.handled and h.code not in allowed]

    def created(self, resource_type: str) -> list[str]:
        """Resources of this type the update creates (added, or the new copy of a replaced one)."""
        return [
            r.logical_id
            for r in self.resources
            if r.resource_type == resource_type and r.action in (ADD, REPLACE)
        ]

    def removed_groups(self) -> list[str]:
        """Auto Scaling groups the update deletes. Not a replaced one: emptying it first
        would take its capacity away before the new copy has any (and a group keeps its
        name, AutoScalingGroupName, so its replacement is refused as H104 anyway)."""
        return [
            r.logical_id
            for r in self.resources
            if r.resource_type == AUTO_SCALING_GROUP and r.action == REMOVE
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "resources": [r.to_json() for r in self.resources],
            "hazards": [h.to_json() for h in self.hazards],
            "priority_moves": dict(sorted(self.priority_moves.items())),
            "replacement_known": self.replacement_known,
        }


def _resources(template: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    found = (template or {}).get("Resources") or {}
    return {k: v for k, v in found.items() if isinstance(v, dict)}


def _properties(resource: dict[str, Any]) -> dict[str, Any]:
    props = resource.get("Properties") or {}
    return props if isinstance(props, dict) else {}


def _at(value: Any, path: Pointer) -> Any:
    for part in path:
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _references(value: Any) -> set[str]:
    """Logical ids a value refers to (Ref, Fn::GetAtt, Fn::Sub's ${Name})."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) and inner else inner
                if isinstance(target, str):
                    found.add(target.split(".")[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) and inner else inner
                if isinstance(text, str):
                    found |= {part.split("}")[0].split(".")[0] for part in text.split("${")[1:]}
                found |= _references(inner)
            else:
                found |= _references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _references(inner)
    return found


def _attributes_read(value: Any) -> set[str]:
    """Logical ids whose attributes (Fn::GetAtt) a value reads."""
    if isinstance(value, dict):
        found: set[str] = set()
        for key, inner in value.items():
            if key == "Fn::GetAtt":
                target = inner[0] if isinstance(inner, list) and inner else inner
                if isinstance(target, str):
                    found.add(target.split(".")[0])
            else:
                found |= _attributes_read(inner)
        return found
    if isinstance(value, list):
        return set().union(*(_attributes_read(inner) for inner in value)) if value else set()
    return set()


def plan(
    deployed: dict[str, Any] | None,
    new: dict[str, Any],
    registry: Registry | None = None,
    *,
    foreign: Mapping[str, set[int]] | None = None,
) -> Transition:
    """What updating a stack from `deployed` (None: no stack yet) to `new` does. `foreign`:
    per existing listener ARN, the priorities rules this stack does not own hold there."""
    registry = registry if registry is not None else Registry()
    old_res, new_res = _resources(deployed), _resources(new)
    result = Transition(replacement_known=registry.available)
    actions: dict[str, str] = {}
    reasons: dict[str, str] = {}
    for logical, resource in new_res.items():
        before = old_res.get(logical)
        if before is None:
            actions[logical] = ADD
        elif before.get("Type") != resource.get("Type"):
            actions[logical], reasons[logical] = REPLACE, "Type"
        elif _properties(before) != _properties(resource):
            actions[logical] = MODIFY
    # replacement: a create-only property changed, or refers to a replaced resource
    changed = True
    while changed:
        changed = False
        for logical, resource in new_res.items():
            if actions.get(logical) == REPLACE or logical not in old_res:
                continue
            pointers = registry.create_only(str(resource.get("Type", ""))) or ()
            replaced = {k for k, a in actions.items() if a == REPLACE}
            for pointer in pointers:
                old_value = _at(_properties(old_res[logical]), pointer)
                new_value = _at(_properties(resource), pointer)
                if old_value != new_value or _references(new_value) & replaced:
                    actions[logical], reasons[logical] = REPLACE, "/".join(pointer)
                    changed = True
                    break
            if actions.get(logical) != REPLACE and _references(_properties(resource)) & replaced:
                actions[logical] = MODIFY
    # an attribute of a changed resource may change with it (LatestVersionNumber of a
    # modified launch template): what reads it is modified too (the change set's "Dynamic")
    changed = True
    while changed:
        changed = False
        for logical, resource in new_res.items():
            if logical not in actions and _attributes_read(_properties(resource)) & set(actions):
                actions[logical] = MODIFY
                changed = True
    for logical, resource in new_res.items():
        if logical in actions:
            result.resources.append(
                ResourcePlan(
                    logical,
                    str(resource.get("Type", "")),
                    actions[logical],
                    reasons.get(logical, ""),
                )
            )
    for logical, resource in old_res.items():
        if logical not in new_res:
            actions[logical] = REMOVE
            result.resources.append(ResourcePlan(logical, str(resource.get("Type", "")), REMOVE))
    result.hazards += _group_hazards(result)
    moves, collisions = priority_collisions(old_res, new_res, actions, foreign or {})
    result.priority_moves = moves
    result.hazards += collisions
    result.hazards += _replacement_hazards(old_res, new_res, result, registry)
    result.hazards += _shared_volume_hazards(old_res, new_res)
    return result


def _shared_volumes(
    resources: dict[str, dict[str, Any]],
) -> dict[str, list[tuple[str, str]]]:
    """Per shared Docker volume name, the task definitions declaring it and how (driver,
    options and labels as one comparable string; no driver is Docker's `local`)."""
    found: dict[str, list[tuple[str, str]]] = {}
    for logical, resource in resources.items():
        if resource.get("Type") != TASK_DEFINITION:
            continue
        for volume in _properties(resource).get("Volumes") or []:
            config = isinstance(volume, dict) and volume.get("DockerVolumeConfiguration")
            if not isinstance(config, dict) or config.get("Scope") != "shared":
                continue
            how = json.dumps(
                [
                    config.get("Driver") or "local",
                    config.get("DriverOpts") or {},
                    config.get("Labels") or {},
                ],
                sort_keys=True,
            )
            found.setdefault(str(volume.get("Name")), []).append((logical, how))
    return found


def _shared_volume_hazards(
    old_res: dict[str, dict[str, Any]], new_res: dict[str, dict[str, Any]]
) -> list[Hazard]:
    """H109: a shared volume name the deployed stack declares, declared another way now."""
    deployed = _shared_volumes(old_res)
    hazards = []
    for name, declared in sorted(_shared_volumes(new_res).items()):
        before = {how for _, how in deployed.get(name, [])}
        changed = sorted({logical for logical, how in declared if before and how not in before})
        if changed:
            hazards.append(
                Hazard(
                    H_SHARED_VOLUME,
                    ", ".join(changed),
                    f"shared Docker volume {name!r} gets another driver, options or labels "
                    f"({', '.join(changed)}): instances that already have it keep it as it is "
                    "(the agent finds a shared volume by name), so only new instances get the "
                    "change; roll the group after the deploy, or give the volume a new name",
                )
            )
    return hazards


def _group_hazards(transition: Transition) -> list[Hazard]:
    return [
        Hazard(
            H_GROUP_REMOVED,
            logical,
            f"{logical} is deleted: instances protected from scale-in would hold the update in "
            "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS; deploy first lifts their protection, scales "
            "the group to 0 and waits for its instances to terminate (as destroy does)",
        )
        for logical in transition.removed_groups()
    ]


def _slot(props: dict[str, Any], replaced: set[str], *, new: bool) -> tuple[str, int] | None:
    priority = props.get("Priority")
    if not isinstance(priority, int):
        return None
    listener = props.get("ListenerArn")
    key = json.dumps(listener, sort_keys=True)
    if new and _references(listener) & replaced:
        key += "#replacement"  # a new listener: its rules collide with nothing old
    return key, priority


def rule_slots(
    resources: dict[str, dict[str, Any]], replaced: set[str] | None = None, *, new: bool = False
) -> dict[str, tuple[str, int]]:
    """Listener rule → (listener, priority)."""
    slots = {}
    for logical, resource in resources.items():
        if resource.get("Type") == LISTENER_RULE:
            slot = _slot(_properties(resource), replaced or set(), new=new)
            if slot is not None:
                slots[logical] = slot
    return slots


def priority_collisions(
    old_res: dict[str, dict[str, Any]],
    new_res: dict[str, dict[str, Any]],
    actions: dict[str, str],
    foreign: Mapping[str, set[int]] | None = None,
) -> tuple[dict[str, int], list[Hazard]]:
    """The deployed rules in the way of the update (each moved to a free priority in a first
    update), and a hazard for each rule that would collide.

    During the update a rule takes its new slot (listener, priority) — created, replaced or
    updated in place — while every deployed rule still holds its old slot: removed and
    replaced ones until the cleanup, updated ones until CloudFormation gets to them, in an
    order nothing fixes. So a rule collides when any other deployed rule holds its new slot."""
    replaced = {k for k, a in actions.items() if a == REPLACE}
    before = rule_slots(old_res)
    after = rule_slots(new_res, replaced, new=True)
    holders = {slot: logical for logical, slot in before.items()}
    in_the_way: dict[str, str] = {}  # deployed rule → the rule that needs its slot
    for logical, slot in sorted(after.items()):
        moving = actions.get(logical) in (ADD, REPLACE) or before.get(logical) != slot
        holder = holders.get(slot)
        if not moving or holder is None:
            continue
        if holder == logical and actions.get(logical) != REPLACE:
            continue
        in_the_way.setdefault(holder, logical)
    # a listener given as an ARN is shared: priorities other owners hold there are taken
    taken = {json.dumps(arn): set(priorities) for arn, priorities in (foreign or {}).items()}
    hazards = []
    for logical, slot in sorted(after.items()):
        moving = actions.get(logical) in (ADD, REPLACE) or before.get(logical) != slot
        if moving and slot[1] in taken.get(slot[0], set()):
            hazards.append(
                Hazard(
                    H_FOREIGN_PRIORITY,
                    logical,
                    f"{logical} takes priority {slot[1]} on listener {json.loads(slot[0])}, "
                    "which a rule this stack does not own holds (PriorityInUse)",
                )
            )
    moves: dict[str, int] = {}
    used: dict[str, set[int]] = {k: set(v) for k, v in taken.items()}
    for listener, priority in [*before.values(), *after.values()]:
        used.setdefault(listener.removesuffix("#replacement"), set()).add(priority)
    for holder in sorted(in_the_way, key=lambda k: (before[k][0], -before[k][1])):
        listener = before[holder][0]
        free = MAX_PRIORITY
        while free in used[listener]:
            free -= 1
        used[listener].add(free)
        moves[holder] = free
    hazards += [
        Hazard(
            H_PRIORITY,
            f"{rule}, {holder}",
            f"{rule} takes priority {after[rule][1]}, which {holder} holds until "
            + ("the cleanup" if actions.get(holder) in (REMOVE, REPLACE) else "it is updated")
            + f" (PriorityInUse); deploy first moves {holder} to priority {moves[holder]} "
            "in an update of its own",
        )
        for holder, rule in sorted(in_the_way.items(), key=lambda item: item[1])
    ]
    return moves, hazards


def phase_one(deployed: dict[str, Any], moves: dict[str, int]) -> dict[str, Any]:
    """The deployed template with the rules in the way moved to their temporary priorities:
    an update that changes nothing else. While it stands, a moved rule is evaluated after the
    others (its conditions are unchanged)."""
    template = copy.deepcopy(deployed)
    for logical, priority in moves.items():
        template["Resources"][logical]["Properties"]["Priority"] = priority
    return template


def _replacement_hazards(
    old_res: dict[str, dict[str, Any]],
    new_res: dict[str, dict[str, Any]],
    transition: Transition,
    registry: Registry,
) -> list[Hazard]:
    hazards = _nlb_security_group_hazards(old_res, new_res)
    for item in transition.resources:
        if item.action != REPLACE:
            continue
        logical, kind = item.logical_id, item.resource_type
        if kind == TARGET_GROUP:
            # a listener rule's forward action, or an NLB listener's default action
            rules = sorted(
                rule
                for rule, resource in old_res.items()
                if (
                    (
                        resource.get("Type") == LISTENER_RULE
                        and logical in _references(_properties(resource).get("Actions"))
                    )
                    or (
                        resource.get("Type") == LISTENER
                        and logical in _references(_properties(resource).get("DefaultActions"))
                    )
                )
                and rule in new_res
            )
            if rules:
                hazards.append(
                    Hazard(
                        H_TARGET_GROUP,
                        logical,
                        f"{logical} is replaced ({item.reason} changes) while "
                        f"{', '.join(rules)} forwards to it: the rule moves to the new, empty "
                        "group before the service's tasks are registered and healthy in it "
                        "(503s until they are)",
                    )
                )
        if kind == LOAD_BALANCER:
            hazards.append(
                Hazard(
                    H_LOAD_BALANCER,
                    logical,
                    f"{logical} is replaced ({item.reason} changes): a new DNS name, and its "
                    "listeners, rules and target groups are recreated",
                )
            )
        for pointer in registry.create_only(kind) or ():
            if not pointer[-1].endswith("Name"):
                continue
            value = _at(_properties(new_res[logical]), pointer)
            if value is not None and value == _at(_properties(old_res[logical]), pointer):
                hazards.append(
                    Hazard(
                        H_NAMED,
                        logical,
                        f"{logical} is replaced ({item.reason} changes) but keeps its name "
                        f"{'/'.join(pointer)} = {json.dumps(value)}: CloudFormation cannot "
                        "replace a custom-named resource",
                    )
                )
                break
    return hazards


def _nlb_security_group_hazards(
    old_res: dict[str, dict[str, Any]], new_res: dict[str, dict[str, Any]]
) -> list[Hazard]:
    """H108: an NLB kept (same logical id, still `network`, not replaced) whose security
    groups go from none to some, or from some to none."""
    hazards = []
    for logical, resource in new_res.items():
        before = old_res.get(logical)
        if resource.get("Type") != LOAD_BALANCER or before is None:
            continue
        old_props, new_props = _properties(before), _properties(resource)
        if old_props.get("Type") != "network" or new_props.get("Type") != "network":
            continue  # a type change replaces it (H105)
        had, has = bool(old_props.get("SecurityGroups")), bool(new_props.get("SecurityGroups"))
        if had != has:
            hazards.append(
                Hazard(
                    H_NLB_SECURITY_GROUPS,
                    logical,
                    f"{logical} is a Network Load Balancer created "
                    + (
                        "with security groups: they can be changed but never all removed"
                        if had
                        else "without security groups: none can be added to it later"
                    ),
                )
            )
    return hazards


def summary(transition: Transition) -> list[str]:
    """Readable lines: `  ~ replace  Logical  AWS::Type  (Port)`, then the hazards."""
    marks = {ADD: "+", MODIFY: "~", REPLACE: "!", REMOVE: "-"}
    rows = transition.resources
    lines = []
    if not rows:
        lines.append("  (no resource changes)")
    else:
        width_id = max(len(r.logical_id) for r in rows)
        width_type = max(len(r.resource_type) for r in rows)
        for r in rows:
            line = f"  {marks[r.action]} {r.action:<8} {r.logical_id:<{width_id}}  {r.resource_type:<{width_type}}"
            if r.reason:
                line += f"  ({r.reason} changes)"
            lines.append(line.rstrip())
        counts = {a: sum(1 for r in rows if r.action == a) for a in (ADD, MODIFY, REPLACE, REMOVE)}
        lines.append(
            f"  {counts[ADD]} to add, {counts[MODIFY]} to modify, {counts[REPLACE]} to replace, "
            f"{counts[REMOVE]} to remove"
        )
    for hazard in transition.hazards:
        state = "handled" if hazard.handled else "refused unless --accept-hazard " + hazard.code
        lines.append(f"  hazard {hazard.code} ({state}): {hazard.message}")
    return lines
