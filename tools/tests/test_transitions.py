"""Transitions: pairs and sequences of fleet files, each step's plan asserted, each checked
against an oracle for what moto does not enforce, and deployed one after another on moto.

The oracles are written here independently of cloudformation/transition.py:

- replacement: a property is create-only when cfn-lint's copy of the resource type's registry
  schema lists it (read straight from the JSON files, not through nixecs);
- listener rule priorities: CloudFormation creates and updates resources first — replacements
  created before their old copy goes — in an order nothing fixes between independent
  resources, and deletes removed resources and old copies last, in
  UPDATE_COMPLETE_CLEANUP_IN_PROGRESS (Update behaviors of stack resources,
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/using-cfn-updating-stacks-update-behaviors.html;
  stack status codes, https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/view-stack-events.html).
  Every order of the rule operations is played and every intermediate state must have each
  (listener, priority) once: ELBv2's CreateRule/SetRulePriorities refuse a priority in use
  (PriorityInUse, https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_CreateRule.html),
  which moto's CloudFormation does not model (moto 5's FakeListenerRule update ignores Priority);
- duplicate ingress: EC2 refuses a rule the group already has (InvalidPermission.Duplicate);
- protected instances at deletion: moto deletes a group whatever its instances, AWS's cleanup
  waits on protected ones, so when a change set removing a group executes, the group must be
  empty and unprotected already (`_watch_group_deletions`).
"""

from __future__ import annotations

import importlib.util
import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from aws_fixtures import alb_network, moto_client, run_cli, write_fleet
from conftest import require
from nixecs.aws.deploy import _parse_template
from nixecs.cloudformation import ids
from nixecs.cloudformation import transition as t
from nixecs.cloudformation.registry import Registry
from nixecs.diagnostics import InvalidInput
from nixecs.fleet.checks import check_fleet_file
from nixecs.render import render_cluster

# Every test here reads cfn-lint's schemas (the autouse fixture below): not in the package's
# check phase, which has no cfn-lint (pkgs/nixecs/package.nix disabledTestMarks).
pytestmark = pytest.mark.cfnlint

NETWORK = {
    "vpc": "vpc-0a1b2c3d",
    "subnet_a": "subnet-0a1b2c3d",
    "subnet_b": "subnet-0a1b2c3e",
    "instances": "sg-0a1b2c3d",
    "alb": "sg-0b1b2c3d",
}
CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b"


def fleet(
    services: dict[str, tuple[int, int]] | None = None,
    *,
    https: bool = False,
    groups: tuple[str, ...] = ("web",),
    instance_type: str = "m6i.large",
    second_cluster: bool = False,
    network: dict[str, str] | None = None,
) -> str:
    """A fleet text: services name → (priority, port), all on the first group."""
    net = network or NETWORK
    services = services if services is not None else {"web": (10, 8080)}
    listeners = "      http: true\n"
    if https:
        listeners += f"      https: {{certificate_arn: '{CERT}'}}\n"
    group_text = "".join(
        f"      {g}: {{ami: ami-0123456789abcdef0, instance_types: [{instance_type}], "
        "capacity: {min: 0, max: 2}}\n"
        for g in groups
    )
    service_text = "".join(
        f"""\
      {name}:
        group: {groups[0]}
        image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.0
        memory: 512
        port: {port}
        routing: {{priority: {priority}, path_patterns: ["/{name}/*"]}}
"""
        for name, (priority, port) in services.items()
    )
    cluster = f"""\
    subnets: [{net["subnet_a"]}, {net["subnet_b"]}]
    security_groups: [{net["instances"]}]
    load_balancer:
      vpc: {net["vpc"]}
      security_groups: [{net["alb"]}]
{listeners}    groups:
{group_text}    services:
{service_text}"""
    text = f"version: 1\nregion: us-east-1\nclusters:\n  prod:\n{cluster}"
    if second_cluster:
        text += "  stage:\n" + cluster.replace("      web:\n", "      web2:\n", 1)
    return text


def template(tmp_path: Path, text: str, cluster: str = "prod") -> dict[str, Any]:
    model, _ = check_fleet_file(str(write_fleet(tmp_path, text)))
    return _parse_template(render_cluster(model, model.clusters[cluster]).stack_text)


# -- oracles ---------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def cfn_lint() -> None:
    """The plans and the oracle read cfn-lint's schemas (a test dependency; optional for
    users, whose plans then say so — tested by monkeypatching it away)."""
    require(importlib.util.find_spec("cfnlint") is not None, "cfn-lint is not installed")


def create_only(resource_type: str) -> set[str]:
    """createOnlyProperties (top-level names) from cfn-lint's schema files themselves."""
    spec = importlib.util.find_spec("cfnlint")
    assert spec is not None and spec.origin is not None
    schemas = Path(spec.origin).parent / "data" / "schemas"
    hashes = json.loads((schemas / "providers" / "us-east-1.json").read_text())
    schema = json.loads((schemas / "resources" / f"{hashes[resource_type]}.json").read_text())
    return {p.split("/")[2] for p in schema.get("createOnlyProperties", [])}


def oracle_replaced(old: dict[str, Any], new: dict[str, Any]) -> set[str]:
    """Resources a create-only property change replaces (literal changes; a reference to a
    replaced resource replaces too — iterated)."""
    old_res, new_res = old["Resources"], new["Resources"]
    replaced: set[str] = set()
    while True:
        found = set(replaced)
        for logical, resource in new_res.items():
            if logical not in old_res:
                continue
            before = old_res[logical].get("Properties", {})
            after = resource.get("Properties", {})
            for name in create_only(resource["Type"]):
                text = json.dumps(after.get(name))
                if before.get(name) != after.get(name) or any(f'"{r}"' in text for r in replaced):
                    found.add(logical)
        if found == replaced:
            return replaced
        replaced = found


def collisions(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Every PriorityInUse an order of CloudFormation's update could meet."""
    rule = "AWS::ElasticLoadBalancingV2::ListenerRule"
    assert "ListenerArn" in create_only(rule)  # a rule moved to another listener is replaced

    def rules(template: dict[str, Any]) -> dict[str, tuple[str, int]]:
        return {
            k: (json.dumps(v["Properties"]["ListenerArn"]), v["Properties"]["Priority"])
            for k, v in template["Resources"].items()
            if v["Type"] == rule
        }

    before, after = rules(old), rules(new)
    operations = []
    for logical, slot in after.items():
        if logical not in before or before[logical][0] != slot[0]:
            operations.append(("create", logical, slot))
        elif before[logical] != slot:
            operations.append(("update", logical, slot))
    found = []
    for order in itertools.permutations(operations):
        state = {k: v for k, v in before.items()}  # physical rule → slot
        for kind, logical, slot in order:
            state[logical + ("#new" if kind == "create" else "")] = slot
            slots = list(state.values())
            if len(slots) != len(set(slots)):
                found.append(f"{kind} {logical} at {slot[1]}")
                break
        # cleanup: only deletions, which free priorities
    return sorted(set(found))


def duplicate_ingress(*templates: dict[str, Any]) -> list[tuple[Any, ...]]:
    seen: dict[tuple[Any, ...], int] = {}
    for template in templates:
        for resource in template["Resources"].values():
            if resource["Type"] == "AWS::EC2::SecurityGroupIngress":
                p = resource["Properties"]
                key = (p["GroupId"], p["SourceSecurityGroupId"], p["FromPort"], p["ToPort"])
                seen[key] = seen.get(key, 0) + 1
    return [k for k, n in seen.items() if n > 1]


# -- the table --------------------------------------------------------------------------------

SERVICE_KINDS = (
    "LogGroup",
    "ExecutionRole",
    "TaskDefinition",
    "TargetGroup",
    "HttpListenerRule",
    "Service",
)
# a group's resources (ids.GROUP_KINDS less its outputs, and the drain hook it has not)
GROUP_KINDS = tuple(k for k in ids.GROUP_KINDS if not k.endswith("Name") and k != "DrainHook")

# name: (before, after, hazard code → count, the plan: logical id → action, in plan order)
TRANSITIONS: dict[str, tuple[str, str, dict[str, int], dict[str, str]]] = {
    "rename a service": (
        fleet({"web": (10, 8080)}),
        fleet({"api": (10, 8080)}),
        {"H101": 0, "H102": 1, "H103": 0},
        {f"Api{k}": "add" for k in SERVICE_KINDS} | {f"Web{k}": "remove" for k in SERVICE_KINDS},
    ),
    "swap priorities": (
        fleet({"a": (10, 8080), "b": (20, 8080)}),
        fleet({"a": (20, 8080), "b": (10, 8080)}),
        {"H102": 2},
        {"AHttpListenerRule": "modify", "BHttpListenerRule": "modify"},
    ),
    "add HTTPS": (
        fleet(),
        fleet(https=True),
        {"H102": 0, "H103": 0},
        {"HttpsListener": "add", "WebListenerRule": "add"},  # the HTTP rule stays as it is
    ),
    "change a routed port": (
        fleet(),
        fleet({"web": (10, 9090)}),
        {"H103": 1, "H102": 0},
        {
            "WebTaskDefinition": "replace",  # ContainerDefinitions is create-only
            "WebTargetGroup": "replace",  # Port is create-only
            "WebHttpListenerRule": "modify",  # forwards to the new group
            "WebService": "modify",
        },
    ),
    "change the VPC": (
        fleet(),
        fleet(network=NETWORK | {"vpc": "vpc-0f0e0d0c"}),
        {"H103": 1},
        {"WebTargetGroup": "replace", "WebHttpListenerRule": "modify", "WebService": "modify"},
    ),
    "remove a group": (
        fleet(groups=("web", "spare")),
        fleet(groups=("web",)),
        {"H101": 1, "H102": 0},
        {"ClusterCapacityProviders": "modify"} | {f"Spare{k}": "remove" for k in GROUP_KINDS},
    ),
    "change the instance type": (
        fleet(),
        fleet(instance_type="m6i.xlarge"),
        {},
        # the group reads the template's LatestVersionNumber
        {"WebLaunchTemplate": "modify", "WebAutoScalingGroup": "modify"},
    ),
}


@pytest.mark.parametrize("name", sorted(TRANSITIONS))
def test_transition_plan_and_oracles(name: str, tmp_path: Path) -> None:
    before_text, after_text, expected, actions = TRANSITIONS[name]
    old = template(tmp_path, before_text)
    new = template(tmp_path, after_text)
    result = t.plan(old, new, Registry())
    assert {r.logical_id: r.action for r in result.resources} == actions
    codes = [h.code for h in result.hazards]
    for code, count in expected.items():
        assert codes.count(code) == count, (name, result.hazards)
    assert {r.logical_id for r in result.resources if r.action == t.REPLACE} == oracle_replaced(
        old, new
    )
    naive = collisions(old, new)
    assert bool(naive) == ("H102" in codes), naive
    if result.priority_moves:
        first = t.phase_one(old, result.priority_moves)
        # phase one changes only priorities, and neither phase can meet PriorityInUse
        assert {r.action for r in t.plan(old, first, Registry()).resources} == {t.MODIFY}
        assert collisions(old, first) == [] and collisions(first, new) == []
        assert t.plan(first, new, Registry()).priority_moves == {}
    assert all(line.startswith("  ") for line in t.summary(result))


def test_rename_plan_text(tmp_path: Path) -> None:
    old = template(tmp_path, fleet({"web": (10, 8080)}))
    new = template(tmp_path, fleet({"api": (10, 8080)}))
    lines = t.summary(t.plan(old, new, Registry()))
    assert "  + add      ApiHttpListenerRule" in "\n".join(lines)
    assert any(line.startswith("  - remove   WebHttpListenerRule") for line in lines)
    # the log group, roles, task definition, target group, rule and service of each name
    assert lines[-2] == "  6 to add, 0 to modify, 0 to replace, 6 to remove"
    assert lines[-1].startswith("  hazard H102 (handled): ApiHttpListenerRule takes priority 10")
    assert "moves WebHttpListenerRule to priority 50000" in lines[-1]


def test_port_change_is_a_target_group_replacement_refused(tmp_path: Path) -> None:
    old = template(tmp_path, fleet())
    new = template(tmp_path, fleet({"web": (10, 9090)}))
    result = t.plan(old, new, Registry())
    assert result.action("WebTargetGroup") == t.REPLACE
    (hazard,) = result.refused()
    assert hazard.code == "H103" and "WebHttpListenerRule forwards to it" in hazard.message
    assert result.refused(["H103"]) == []
    assert "(Port changes)" in "\n".join(t.summary(result))


def test_old_first_listener_naming_would_collide(tmp_path: Path) -> None:
    """Why rules are keyed by listener: with the id of an HTTP-only rule moving to the HTTPS
    listener (the former naming) adding HTTPS meets PriorityInUse; the plan sees it too."""
    old = template(tmp_path, fleet())
    resources = old["Resources"]
    resources["WebListenerRule"] = resources.pop("WebHttpListenerRule")  # the former naming
    new = template(tmp_path, fleet(https=True))
    assert collisions(old, new) != []
    result = t.plan(old, new, Registry())
    assert [h.code for h in result.hazards] == ["H102"]
    first = t.phase_one(old, result.priority_moves)
    assert collisions(first, new) == []


def test_second_cluster_sharing_security_groups_is_refused(tmp_path: Path) -> None:
    text = fleet(second_cluster=True)
    with pytest.raises(InvalidInput) as caught:
        check_fleet_file(str(write_fleet(tmp_path, text)))
    (error,) = [d for d in caught.value.report.errors if d.code == "E168"]
    assert "cluster prod already admits load balancer group sg-0b1b2c3d" in error.message
    assert error.location.line == text.splitlines().index("  stage:") + 6
    # the fix: its own instance security group; then no rule is rendered twice
    fixed = text.replace(
        "  stage:\n    subnets: [subnet-0a1b2c3d, subnet-0a1b2c3e]\n    security_groups: [sg-0a1b2c3d]",
        "  stage:\n    subnets: [subnet-0a1b2c3d, subnet-0a1b2c3e]\n    security_groups: [sg-0c1b2c3d]",
    )
    both = [template(tmp_path, fixed, c) for c in ("prod", "stage")]
    assert duplicate_ingress(*both) == []
    assert duplicate_ingress(both[0], template(tmp_path, fixed, "prod")) != []  # the oracle bites


def test_without_cfn_lint_the_plan_says_so(tmp_path: Path, monkeypatch) -> None:
    from nixecs.cloudformation import registry

    monkeypatch.setattr(registry, "_manager", lambda: None)
    result = t.plan(template(tmp_path, fleet()), template(tmp_path, fleet({"web": (10, 9090)})))
    assert not result.replacement_known and result.action("WebTargetGroup") == t.MODIFY


# -- the same transitions deployed one after another on the moto server ----------------------


def _priorities(url: str) -> dict[int, set[str]]:
    """Listener port → the priorities of its rules, as ELBv2 holds them."""
    elbv2 = moto_client(url, "elbv2")
    found: dict[int, set[str]] = {}
    for balancer in elbv2.describe_load_balancers()["LoadBalancers"]:
        arn = balancer["LoadBalancerArn"]
        for listener in elbv2.describe_listeners(LoadBalancerArn=arn)["Listeners"]:
            rules = elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
            found[listener["Port"]] = {r["Priority"] for r in rules if not r["IsDefault"]}
    return found


def _apply_priorities(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """moto's CloudFormation ignores a listener rule's Priority on update (moto 5
    FakeListenerRule.update_from_cloudformation_json calls modify_rule without it), and its
    cleanup does not delete removed rules; AWS's handler does both (SetRulePriorities,
    DeleteRule). After each stack update the test does what AWS would
    have done, through moto's ELBv2 API, which does refuse a priority in use."""
    from nixecs.aws import deploy as deploy_module

    original = deploy_module.deploy_cluster

    def deploy_cluster(session: Any, cluster: str, body: str, **kwargs: Any) -> Any:
        result = original(session, cluster, body, **kwargs)
        if result.outcome != "updated":
            return result
        cfn, elbv2 = moto_client(url, "cloudformation"), moto_client(url, "elbv2")
        physical = {
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cfn.list_stack_resources(StackName=result.stack)["StackResourceSummaries"]
        }
        # moto's cleanup leaves removed listener rules in place; AWS's deletes them
        for listener in elbv2.describe_listeners(LoadBalancerArn=physical["LoadBalancer"])[
            "Listeners"
        ]:
            for rule in elbv2.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]:
                if not rule["IsDefault"] and rule["RuleArn"] not in physical.values():
                    elbv2.delete_rule(RuleArn=rule["RuleArn"])
        for logical, resource in _parse_template(body)["Resources"].items():
            if resource["Type"] != "AWS::ElasticLoadBalancingV2::ListenerRule":
                continue
            (rule,) = elbv2.describe_rules(RuleArns=[physical[logical]])["Rules"]
            if rule["Priority"] != str(resource["Properties"]["Priority"]):
                elbv2.set_rule_priorities(
                    RulePriorities=[
                        {
                            "RuleArn": physical[logical],
                            "Priority": resource["Properties"]["Priority"],
                        }
                    ]
                )
        return result

    monkeypatch.setattr(deploy_module, "deploy_cluster", deploy_cluster)


def _watch_group_deletions(monkeypatch: pytest.MonkeyPatch, url: str) -> list[str]:
    """The oracle for protected instances at deletion: moto deletes an Auto Scaling group
    whatever its instances; AWS's cleanup waits on instances protected from scale-in
    (aws/aws-cdk#18179). So when a change set that removes a group executes, the group
    must already be empty and unprotected. Returns the groups checked."""
    from nixecs.aws import deploy as deploy_module

    original = deploy_module._execute
    checked: list[str] = []

    def execute(cfn: Any, stack: str, name: str) -> None:
        changes = moto_client(url, "cloudformation").describe_change_set(
            StackName=stack, ChangeSetName=name
        )["Changes"]
        removed = [
            c["ResourceChange"]["LogicalResourceId"]
            for c in changes
            if c["ResourceChange"]["Action"] == "Remove"
            and c["ResourceChange"]["ResourceType"] == "AWS::AutoScaling::AutoScalingGroup"
        ]
        if removed:
            resources = moto_client(url, "cloudformation").list_stack_resources(StackName=stack)
            names = [
                r["PhysicalResourceId"]
                for r in resources["StackResourceSummaries"]
                if r["LogicalResourceId"] in removed
            ]
            groups = moto_client(url, "autoscaling").describe_auto_scaling_groups(
                AutoScalingGroupNames=names
            )["AutoScalingGroups"]
            for group in groups:
                assert group["Instances"] == [], group["Instances"]
                assert group["DesiredCapacity"] == 0 and group["MinSize"] == 0
                assert not group["NewInstancesProtectedFromScaleIn"]
                checked.append(group["AutoScalingGroupName"])
        original(cfn, stack, name)

    monkeypatch.setattr(deploy_module, "_execute", execute)
    return checked


@pytest.mark.moto
def test_a_sequence_of_fleets_deploys_on_moto(moto, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    _apply_priorities(monkeypatch, moto.url)
    emptied = _watch_group_deletions(monkeypatch, moto.url)
    net = alb_network(moto.url)
    base = ["--endpoint-url", moto.url]
    path = tmp_path / "fleet.yml"

    def step(text: str, *extra: str) -> tuple[str, str]:
        """--plan, then deploy; each step's template checked by the oracles first."""
        path.write_text(text)
        planned = run_cli(capsys, [*base, "deploy", str(path), "--plan", "--no-preflight"])
        assert planned.code == 0, planned.err
        done = run_cli(capsys, [*base, "deploy", str(path), "--yes", "--no-preflight", *extra])
        return planned.out, done.out + done.err + f"\nexit {done.code}"

    spare = "spare: {ami: ami-0123456789abcdef0, instance_types: [m6i.large], capacity: {min: 0, max: 2}}"
    first = fleet(groups=("web", "spare"), network=net)
    _, out = step(first)
    assert out.endswith("exit 0"), out
    assert _priorities(moto.url) == {80: {"10"}}

    # rename: the old rule is moved out of the way in a first update
    plan, out = step(first.replace("      web:\n        group", "      api:\n        group"))
    assert "hazard H102 (handled): ApiHttpListenerRule takes priority 10" in plan
    assert "phase 1 of 2" in out and "phase 2 of 2" in out and out.endswith("exit 0"), out
    assert _priorities(moto.url) == {80: {"10"}}

    # swap two services' priorities
    two = first.replace("      web:\n        group", "      api:\n        group")
    two = two.replace("/web/*", "/api/*")
    extra = (
        two.split("    services:\n")[1].replace("api", "b").replace("priority: 10", "priority: 20")
    )
    two += extra
    _, out = step(two)
    assert out.endswith("exit 0"), out
    swapped = two.replace("priority: 10", "priority: 30").replace("priority: 20", "priority: 10")
    swapped = swapped.replace("priority: 30", "priority: 20")
    plan, out = step(swapped)
    assert plan.count("hazard H102 (handled)") == 2, plan
    assert "phase 1 of 2" in out and out.endswith("exit 0"), out

    # HTTPS added to the HTTP-only load balancer: the HTTP rules stay, HTTPS ones are added
    certificate = moto_client(moto.url, "acm").request_certificate(DomainName="example.com")
    https = swapped.replace(
        "      http: true\n",
        f"      http: true\n      https: {{certificate_arn: '{certificate['CertificateArn']}'}}\n",
    )
    plan, out = step(https)
    assert "  + add      HttpsListener " in plan and "  + add      ApiListenerRule " in plan
    assert "hazard" not in plan and "0 to replace, 0 to remove" in plan, plan
    assert out.endswith("exit 0"), out
    assert _priorities(moto.url) == {80: {"10", "20"}, 443: {"10", "20"}}

    # a routed port changed: refused, then accepted
    ported = https.replace("port: 8080", "port: 9090", 1)
    plan, out = step(ported)
    assert "hazard H103 (refused unless --accept-hazard H103)" in plan
    assert out.endswith("exit 2") and "--accept-hazard H103" in out, out
    _, out = step(ported, "--accept-hazard", "H103")
    assert out.endswith("exit 0"), out

    # the spare group removed: its protected instance is unprotected and gone first
    # (moto cannot launch from the launch template, so an instance is attached and protected
    # as ECS's managed termination protection would)
    autoscaling = moto_client(moto.url, "autoscaling")
    instance = moto_client(moto.url, "ec2").run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=net["subnet_a"]
    )["Instances"][0]["InstanceId"]
    autoscaling.attach_instances(AutoScalingGroupName="nixecs-prod-spare", InstanceIds=[instance])
    autoscaling.set_instance_protection(
        AutoScalingGroupName="nixecs-prod-spare", InstanceIds=[instance], ProtectedFromScaleIn=True
    )
    (group,) = autoscaling.describe_auto_scaling_groups(
        AutoScalingGroupNames=["nixecs-prod-spare"]
    )["AutoScalingGroups"]
    assert [i["ProtectedFromScaleIn"] for i in group["Instances"]] == [True]
    removed = ported.replace("      " + spare + "\n", "")
    plan, out = step(removed)
    assert "hazard H101 (handled): SpareAutoScalingGroup is deleted" in plan
    assert "group nixecs-prod-spare: 1 instances unprotected, scaling to 0" in out, out
    assert emptied == ["nixecs-prod-spare"]  # empty and unprotected when the update ran
    assert out.endswith("exit 0"), out
    assert (
        autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["nixecs-prod-spare"])[
            "AutoScalingGroups"
        ]
        == []
    )

    # the instance type changed: the launch template is modified, nothing replaced
    plan, out = step(removed.replace("[m6i.large]", "[m6i.xlarge]"))
    assert "  ~ modify   WebLaunchTemplate" in plan and "to replace" in plan
    assert "hazard" not in plan and out.endswith("exit 0"), out

    # a second cluster sharing the security groups: refused before AWS is asked anything
    second = removed.replace("clusters:\n  prod:\n", "clusters:\n  prod:\n", 1)
    cluster = second.split("  prod:\n", 1)[1]
    path.write_text(second + "  stage:\n" + cluster.replace("      api:\n", "      api2:\n"))
    refused = run_cli(capsys, [*base, "deploy", str(path), "--yes", "--no-preflight"])
    assert refused.code == 2 and "error[E168]" in refused.err, refused.err
    assert "cluster prod already admits load balancer group" in refused.err


@pytest.mark.moto
def test_an_ingress_rule_another_stack_owns_is_refused(moto, tmp_path: Path, capsys, monkeypatch):
    """H106: the pair's rule already in the security group (another fleet's stack, or by
    hand). EC2 refuses the duplicate; so does moto, which is what accepting the hazard shows."""
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    net = alb_network(moto.url)
    moto_client(moto.url, "ec2").authorize_security_group_ingress(
        GroupId=net["instances"],
        IpPermissions=[
            {
                "IpProtocol": "tcp",
                "FromPort": 32768,
                "ToPort": 65535,
                "UserIdGroupPairs": [{"GroupId": net["alb"]}],
            }
        ],
    )
    path = write_fleet(tmp_path, fleet(network=net))
    base = ["--endpoint-url", moto.url, "deploy", str(path), "--no-preflight"]
    plan = run_cli(capsys, [*base, "--plan"])
    assert plan.code == 0, plan.err
    assert (
        "hazard H106 (refused unless --accept-hazard H106): LoadBalancerIngress: security group "
        f"{net['instances']} already admits {net['alb']} on tcp 32768-65535"
    ) in plan.out
    refused = run_cli(capsys, [*base, "--yes"])
    assert refused.code == 2 and "H106" in refused.err and "fix: give this cluster" in refused.err
    assert moto_client(moto.url, "cloudformation").describe_stacks()["Stacks"] == []
    accepted = run_cli(capsys, [*base, "--yes", "--accept-hazard", "H106"])
    assert accepted.code == 1 and "InvalidPermission.Duplicate" in accepted.err, accepted.err


def existing_listener_fleet(listener: str, net: dict[str, str], services: dict[str, int]) -> str:
    text = fleet({name: (priority, 8080) for name, priority in services.items()}, network=net)
    return text.replace(
        "    load_balancer:\n      vpc:",
        f"    load_balancer:\n      listener_arn: '{listener}'\n      vpc:",
    ).replace("      http: true\n", "")


def test_temporary_priorities_avoid_other_owners_rules(tmp_path: Path) -> None:
    listener = (
        "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shared/"
        "0123456789abcdef/0123456789abcdef"
    )
    old = template(tmp_path, existing_listener_fleet(listener, NETWORK, {"web": 10}))
    new = template(tmp_path, existing_listener_fleet(listener, NETWORK, {"api": 10}))
    result = t.plan(old, new, Registry(), foreign={listener: {50000, 20}})
    assert result.priority_moves == {"WebListenerRule": 49999}
    assert [h.code for h in result.hazards] == ["H102"]
    clash = t.plan(old, new, Registry(), foreign={listener: {10}})
    assert "H107" in [h.code for h in clash.refused()]


@pytest.mark.moto
def test_a_priority_another_owner_holds_on_an_existing_listener_is_refused(
    moto, tmp_path: Path, capsys, monkeypatch
) -> None:
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    net = alb_network(moto.url)
    elbv2 = moto_client(moto.url, "elbv2")
    balancer = elbv2.create_load_balancer(
        Name="shared", Subnets=[net["subnet_a"], net["subnet_b"]], SecurityGroups=[net["alb"]]
    )["LoadBalancers"][0]["LoadBalancerArn"]
    listener = elbv2.create_listener(
        LoadBalancerArn=balancer,
        Protocol="HTTP",
        Port=80,
        DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
    )["Listeners"][0]["ListenerArn"]
    elbv2.create_rule(  # another team's rule
        ListenerArn=listener,
        Priority=10,
        Conditions=[{"Field": "path-pattern", "Values": ["/theirs/*"]}],
        Actions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200"}}],
    )
    path = write_fleet(tmp_path, existing_listener_fleet(listener, net, {"web": 10}))
    base = ["--endpoint-url", moto.url, "deploy", str(path), "--no-preflight"]
    plan = run_cli(capsys, [*base, "--plan"])
    assert plan.code == 0, plan.err
    assert (
        "hazard H107 (refused unless --accept-hazard H107): WebListenerRule takes priority 10"
        in (plan.out)
    )
    refused = run_cli(capsys, [*base, "--yes"])
    assert refused.code == 2 and "H107" in refused.err, refused.err
    # another priority deploys; the stack's own rule is then not foreign to a later plan
    path.write_text(existing_listener_fleet(listener, net, {"web": 20}))
    assert run_cli(capsys, [*base, "--yes"]).code == 0
    again = run_cli(capsys, [*base, "--plan"])
    assert again.code == 0 and "hazard" not in again.out, again.out


def test_without_cfn_lint_replacement_comes_from_the_change_set(tmp_path: Path, monkeypatch):
    from nixecs.aws.deploy import Change
    from nixecs.aws.transitions import Planned, lines, refusal, with_change_set
    from nixecs.cloudformation import registry

    monkeypatch.setattr(registry, "_manager", lambda: None)
    old = template(tmp_path, fleet())
    planned = Planned("prod", old, t.plan(old, template(tmp_path, fleet({"web": (10, 9090)}))))
    with_change_set(
        planned.transition,
        [
            Change("Modify", "WebTargetGroup", t.TARGET_GROUP, "True"),
            Change("Modify", "WebService", "AWS::ECS::Service", "False"),
        ],
    )
    assert planned.transition.action("WebTargetGroup") == t.REPLACE
    assert planned.transition.action("WebService") == t.MODIFY
    text = lines(planned)
    assert text[-1] == "  note: " + registry.INSTALL_HINT
    # the hazards that need the schemas are not claimed: nothing is refused
    assert refusal(planned, ()) is None


def test_refusal_names_each_hazard_its_fix_and_the_flag(tmp_path: Path) -> None:
    from nixecs.aws.transitions import Planned, refusal

    old = template(tmp_path, fleet())
    planned = Planned("prod", old, t.plan(old, template(tmp_path, fleet({"web": (10, 9090)}))))
    message = refusal(planned, ())
    assert message is not None and message.startswith("nixecs-prod: refused: H103: ")
    assert "fix: add a copy of the service" in message
    assert message.endswith("(to go ahead regardless, pass --accept-hazard H103)")
    assert refusal(planned, ("H103",)) is None


def test_a_load_balancer_scheme_change_replaces_it_and_is_refused(tmp_path: Path) -> None:
    old = template(tmp_path, fleet())
    internal = fleet().replace("      http: true\n", "      scheme: internal\n      http: true\n")
    new = template(tmp_path, internal)
    result = t.plan(old, new, Registry())
    assert result.action("LoadBalancer") == t.REPLACE
    # its listeners follow (LoadBalancerArn is create-only); their rules follow the listeners
    assert result.action("HttpListener") == t.REPLACE
    assert result.action("WebHttpListenerRule") == t.REPLACE
    assert oracle_replaced(old, new) >= {"LoadBalancer", "HttpListener", "WebHttpListenerRule"}
    assert [h.code for h in result.refused()] == ["H105"]
    # the rule's new copy goes on the new listener: no PriorityInUse with the old one
    assert collisions(old, new) == [] and result.priority_moves == {}


def test_a_custom_named_resource_replaced_is_refused(tmp_path: Path) -> None:
    """SchedulingStrategy is create-only on AWS::ECS::Service; the service keeps its
    ServiceName, and CloudFormation cannot create the new copy under the old's name."""
    old = template(tmp_path, fleet())
    new = json.loads(json.dumps(old))
    new["Resources"]["WebService"]["Properties"]["SchedulingStrategy"] = "DAEMON"
    result = t.plan(old, new, Registry())
    assert result.action("WebService") == t.REPLACE
    (hazard,) = result.refused()
    assert hazard.code == "H104" and 'ServiceName = "web"' in hazard.message
    assert oracle_replaced(old, new) == {"WebService"}
