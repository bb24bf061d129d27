"""Issue 9, items 4 and 5: no instance role can read a parameter that is not its group's.

A small evaluator of IAM Allow statements (action and resource wildcards, the condition
operators the templates use) reads every generated policy and every managed policy we attach
— their documents recorded as facts in tests/facts/aws_managed_policies.json — and checks,
for every parameter of the fleet and one foreign to it, which roles may call
ssm:GetParameter, ssm:GetParameters or ssm:GetParametersByPath on it, and kms:Decrypt for it.
The evaluator over-approximates (an unknown condition or intrinsic counts as allowing), so
"not allowed" is a proof. Deny statements are ignored for the same reason.

With the AWS managed key aws/ssm, whose key policy lets every principal of the account
decrypt through SSM ("Restricting decryption of SecureString parameter values", Systems
Manager user guide), the ssm: grant alone decides; with the fleet's `kms_key:` the
kms:Decrypt grant must also be scoped to the key and to the group's own parameters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import EXAMPLES
from nixecs.cloudformation import build_stack
from nixecs.diagnostics import InvalidInput
from nixecs.fleet import load_fleet, parse
from nixecs.fleet.model import Fleet
from nixecs.fleet.task_role import action_table

FACTS = json.loads((Path(__file__).parent / "facts" / "aws_managed_policies.json").read_text())
PSEUDO = {
    "AWS::Partition": "aws",
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "111122223333",
    "AWS::URLSuffix": "amazonaws.com",
}
SSM_READS = ("ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath")
FOREIGN = "/elsewhere/db/password"
KEY_A = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"
KEY_B = "arn:aws:kms:us-east-1:111122223333:key/11111111-2222-3333-4444-555555555555"
OTHER_KEY = "arn:aws:kms:us-east-1:111122223333:key/99999999-8888-7777-6666-555555555555"

FLEET = f"""\
version: 1
region: us-east-1
flake: github:acme/infra
clusters:
  c:
    subnets: [subnet-0a1b2c3d]
    security_groups: [sg-0a1b2c3d]
    kms_key: {KEY_A}
    groups:
      a:
        ami: ami-0123456789abcdef0
        instance_types: [t3.small]
        capacity: {{min: 0, max: 1}}
        secrets:
          one: {{parameter: /c/a/one}}
          shared: {{parameter: /c/shared}}
        drain: {{timeout: 5m}}
      b:
        ami: ami-0123456789abcdef0
        instance_types: [t3.small]
        capacity: {{min: 0, max: 1}}
        kms_key: {KEY_B}
        secrets:
          three: {{parameter: /c/b/three}}
      none:
        ami: ami-0123456789abcdef0
        instance_types: [t3.small]
        capacity: {{min: 0, max: 1}}
    services:
      api:
        group: b
        image: nginx
        memory: 256
        secrets: {{TOKEN: /c/api/token}}
"""


# --- the evaluator ------------------------------------------------------------------------


def resolve(value: Any, template: dict[str, Any]) -> str:
    """A policy value as the concrete string AWS would see; `*` when it cannot be known."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        text = value["Fn::Sub"]
        text = re.sub(r"\$\{([^}!]+)\}", lambda m: PSEUDO.get(m.group(1), "*"), text)
        return text.replace("${!", "${")
    if isinstance(value, dict) and value.get("Fn::GetAtt", [None])[0] == "Cluster":
        name = template["Resources"]["Cluster"]["Properties"]["ClusterName"]
        return f"arn:aws:ecs:{PSEUDO['AWS::Region']}:{PSEUDO['AWS::AccountId']}:cluster/{name}"
    return "*"


def wildcard(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def condition_holds(condition: dict[str, Any], context: dict[str, str], template: Any) -> bool:
    for operator, tests in condition.items():
        for key, expected in tests.items():
            values = [resolve(v, template) for v in as_list(expected)]
            actual = context.get(key)
            # Any operator but these four: assume it holds (over-approximation).
            if operator in ("StringEquals", "ArnEquals"):
                holds = actual is not None and actual in values
            elif operator in ("StringLike", "ArnLike"):
                holds = actual is not None and any(wildcard(v, actual) for v in values)
            else:
                holds = True
            if not holds:
                return False
    return True


def allows(
    statements: list[dict[str, Any]],
    action: str,
    resource: str,
    context: dict[str, str],
    template: Any,
) -> bool:
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        if "Action" in statement:
            if not any(wildcard(a, action, ignore_case=True) for a in as_list(statement["Action"])):
                continue
        elif any(wildcard(a, action, ignore_case=True) for a in as_list(statement["NotAction"])):
            continue
        resources = [resolve(r, template) for r in as_list(statement.get("Resource", "*"))]
        if "NotResource" not in statement and not any(wildcard(r, resource) for r in resources):
            continue
        if condition_holds(statement.get("Condition", {}), context, template):
            return True
    return False


def role_statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    """Inline and managed statements of a role (managed ones from the recorded facts)."""
    found: list[dict[str, Any]] = []
    for policy in role.get("Policies", []):
        found += as_list(policy["PolicyDocument"]["Statement"])
    for arn in role.get("ManagedPolicyArns", []):
        name = resolve(arn, {}).split(":policy/", 1)[1]
        assert name in FACTS, f"managed policy {name} is attached but its document is not recorded"
        found += as_list(FACTS[name]["document"]["Statement"])
    return found


def parameter_arn(name: str) -> str:
    return f"arn:aws:ssm:{PSEUDO['AWS::Region']}:{PSEUDO['AWS::AccountId']}:parameter{name}"


def ancestors(name: str) -> Iterator[str]:
    """The paths GetParametersByPath could be called with to return `name`."""
    parts = name.strip("/").split("/")
    for end in range(1, len(parts)):
        yield "/" + "/".join(parts[:end])


def readable(
    statements: list[dict[str, Any]], name: str, template: Any, key: str | None
) -> set[str]:
    """How a role could read parameter `name` under KMS key `key` (None: aws/ssm)."""
    ways: set[str] = set()
    for action in SSM_READS:
        targets = [name] if action != "ssm:GetParametersByPath" else list(ancestors(name))
        if any(allows(statements, action, parameter_arn(t), {}, template) for t in targets):
            ways.add(action)
    if ways and key is not None:
        context = {
            "kms:ViaService": f"ssm.{PSEUDO['AWS::Region']}.{PSEUDO['AWS::URLSuffix']}",
            "kms:EncryptionContext:PARAMETER_ARN": parameter_arn(name),
        }
        if not allows(statements, "kms:Decrypt", key, context, template):
            return set()  # the value stays encrypted: not readable
    return ways


def key_arn(key: str | None) -> str | None:
    if key is None or key.startswith("arn:"):
        return key
    return f"arn:aws:kms:{PSEUDO['AWS::Region']}:{PSEUDO['AWS::AccountId']}:key/{key}"


def everything(fleet: Fleet) -> set[str]:
    names = {FOREIGN}
    for cluster in fleet.clusters.values():
        for group in cluster.groups.values():
            names |= {spec.parameter for spec in group.secrets.values()}
        for service in cluster.services.values():
            names |= set(service.secrets.values())
    return names


def instance_roles(fleet: Fleet) -> Iterator[tuple[str, set[str], str | None, Any, Any]]:
    for cluster_name, cluster in fleet.clusters.items():
        template = build_stack(fleet, cluster_name)
        for lid, resource in template["Resources"].items():
            if resource["Type"] != "AWS::IAM::Role" or not lid.endswith("InstanceRole"):
                continue
            [group] = [
                g
                for g in cluster.groups.values()
                if {"Key": "nixecs:group", "Value": g.name} in resource["Properties"]["Tags"]
            ]
            own = {spec.parameter for spec in group.secrets.values()}
            yield (
                f"{cluster_name}/{group.name}",
                own,
                group.kms_key,
                resource["Properties"],
                template,
            )


# --- the proofs -----------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["inline", "fleet.yml", "blog.yml"])
def test_no_instance_role_reads_a_parameter_of_another_group(source: str) -> None:
    fleet = parse(FLEET, "fleet.yml") if source == "inline" else load_fleet(EXAMPLES / source)
    universe = everything(fleet)
    roles = list(instance_roles(fleet))
    assert roles
    for who, own, key, role, template in roles:
        statements = role_statements(role)
        for name in sorted(universe):
            # Under the group's key, or under aws/ssm (which any principal may decrypt with):
            # either way only the group's own parameters may be readable.
            for under in {key_arn(key), None}:
                ways = readable(statements, name, template, under)
                if name in own:
                    assert ways == {"ssm:GetParameters"}, (who, name, under)
                else:
                    assert ways == set(), (who, name, under, ways)


def test_decrypt_is_scoped_to_the_groups_key_and_its_own_parameters() -> None:
    fleet = parse(FLEET, "fleet.yml")
    roles = {who: (own, key, role, t) for who, own, key, role, t in instance_roles(fleet)}
    assert roles["c/a"][1] == KEY_A and roles["c/b"][1] == KEY_B  # cluster key, group key
    for who, (own, key, role, template) in roles.items():
        statements = role_statements(role)
        for name in everything(fleet):
            context = {
                "kms:ViaService": "ssm.us-east-1.amazonaws.com",
                "kms:EncryptionContext:PARAMETER_ARN": parameter_arn(name),
            }
            for candidate in (KEY_A, KEY_B, OTHER_KEY):
                arn = key_arn(candidate)
                assert arn is not None
                allowed = allows(statements, "kms:Decrypt", arn, context, template)
                assert allowed == (name in own and arn == key_arn(key)), (who, name, candidate)
            # Never outside SSM.
            direct = {"kms:EncryptionContext:PARAMETER_ARN": parameter_arn(name)}
            assert not allows(statements, "kms:Decrypt", key_arn(key) or "*", direct, template)


def test_execution_roles_read_only_their_services_secrets() -> None:
    fleet = parse(FLEET, "fleet.yml")
    template = build_stack(fleet, "c")
    role = template["Resources"]["ApiExecutionRole"]["Properties"]
    statements = role_statements(role)
    for name in everything(fleet):
        ways = readable(statements, name, template, KEY_B)
        assert ways == ({"ssm:GetParameters"} if name == "/c/api/token" else set()), name


def test_the_evaluator_catches_the_managed_ssm_core_policy() -> None:
    """The proof would fail on the old roles: AmazonSSMManagedInstanceCore reads everything."""
    fleet = parse(FLEET, "fleet.yml")
    _, _, _, role, template = next(instance_roles(fleet))
    role = dict(
        role,
        ManagedPolicyArns=[
            *role.get("ManagedPolicyArns", []),
            "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
        ],
    )
    assert readable(role_statements(role), FOREIGN, template, None) == {
        "ssm:GetParameter",
        "ssm:GetParameters",
    }


def test_no_grant_nothing_calls() -> None:
    """Item 5: no RecordLifecycleActionHeartbeat (drain never records one), no
    ssm:GetParameter (secrets fetch calls GetParameters only)."""
    fleet = parse(FLEET, "fleet.yml")
    for _, _, _, role, _ in instance_roles(fleet):
        actions = {a for s in role_statements(role) for a in as_list(s.get("Action", []))}
        assert "autoscaling:RecordLifecycleActionHeartbeat" not in actions
        assert "ssm:GetParameter" not in actions
    host = Path(__file__).parents[1] / "src" / "nixecs" / "host"
    code = "\n".join(p.read_text() for p in host.glob("*.py"))
    assert "record_lifecycle_action_heartbeat" not in code
    assert re.search(r"\.get_parameter\(", code) is None and ".get_parameters(" in code


@pytest.mark.parametrize(
    "key",
    ["alias/aws/ssm", "alias/mine", "arn:aws:kms:us-east-1:111122223333:alias/mine", "nope"],
)
def test_kms_key_must_be_a_key_not_an_alias(key: str) -> None:
    text = FLEET.replace(f"kms_key: {KEY_A}", f"kms_key: {key}")
    with pytest.raises(InvalidInput) as caught:
        parse(text, "fleet.yml")
    [error] = caught.value.report.errors
    assert error.code == "E107" and "not an alias" in error.message
    assert error.location.line == 8


def test_secret_put_takes_kms_key() -> None:
    from click.testing import CliRunner

    from nixecs.cli import cli

    result = CliRunner().invoke(cli, ["secret", "put", "--help"])
    assert "--kms-key" in result.output


@pytest.mark.cfnlint
def test_roles_with_kms_keys_are_cfn_lint_clean(tmp_path: Path) -> None:
    import subprocess
    import sys

    from conftest import require
    from nixecs.cloudformation import dump_template

    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    require(cfn_lint.exists(), "cfn-lint is not installed in this environment")
    out = tmp_path / "stack.yaml"
    out.write_text(dump_template(build_stack(parse(FLEET, "fleet.yml"), "c")))
    result = subprocess.run(
        [str(cfn_lint), "--format", "parseable", "--include-checks", "I", "--", str(out)],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


# --- issue 17 item 3: no host acts on another cluster ---------------------------------------

ACCOUNT_ARN = f"arn:aws:ecs:{PSEUDO['AWS::Region']}:{PSEUDO['AWS::AccountId']}"
TWO_CLUSTERS = (
    FLEET
    + """\
  d:
    subnets: [subnet-0a1b2c3d]
    security_groups: [sg-0a1b2c3d]
    groups:
      spot:
        ami: ami-0123456789abcdef0
        instance_types: [t3.small, t3a.small]
        spot: true
        capacity: {min: 0, max: 2}
        drain: {timeout: 5m}
    services:
      web:
        group: spot
        image: nginx
        memory: 256
"""
)


# Every ECS resource type of the Service Authorization Reference (cfn-lint's Policies.json).
ECS_RESOURCE_TYPES = (
    "cluster",
    "container-instance",
    "task",
    "service",
    "task-set",
    "capacity-provider",
    "task-definition",
)


def ecs_actions() -> dict[str, list[str]]:
    """Every ECS action (lower case; IAM compares actions case-insensitively) with the
    resource types to try it on: each action that has a resource type is tried on every
    ECS resource type (a superset of its own), one without on none. From
    nixecs/fleet/iam_actions.json, generated from cfn-lint's copy of the Service
    Authorization Reference (no cfn-lint needed here: the Nix build's check phase has none)."""
    scoped, unscoped = action_table()["ecs"]
    return {**{a: list(ECS_RESOURCE_TYPES) for a in scoped}, **{a: [] for a in unscoped}}


def ecs_resource(kind: str, cluster: str) -> str:
    """An ARN of resource type `kind` that belongs to `cluster`."""
    return {
        "cluster": f"{ACCOUNT_ARN}:cluster/{cluster}",
        "container-instance": f"{ACCOUNT_ARN}:container-instance/{cluster}/0123abcd",
        "task": f"{ACCOUNT_ARN}:task/{cluster}/0123abcd",
        "service": f"{ACCOUNT_ARN}:service/{cluster}/api",
        "task-set": f"{ACCOUNT_ARN}:task-set/{cluster}/api/ecs-svc-1",
        "capacity-provider": f"{ACCOUNT_ARN}:capacity-provider/nixecs-{cluster}-a",
        "task-definition": f"{ACCOUNT_ARN}:task-definition/nixecs-{cluster}-api:1",
    }.get(kind, f"{ACCOUNT_ARN}:{kind}/{cluster}/x")


def cross_cluster_grants(statements: list[dict[str, Any]], template: Any, other: str) -> set[str]:
    """The ECS actions `statements` allow on a resource of cluster `other`, with every
    condition key an attacker could set in the request (ecs:cluster is the resource's)."""
    context = {
        "ecs:cluster": ecs_resource("cluster", other),
        "ecs:CreateAction": "RegisterContainerInstance",
    }
    found = set()
    for action, kinds in ecs_actions().items():
        for kind in kinds:
            if allows(statements, f"ecs:{action}", ecs_resource(kind, other), context, template):
                found.add(f"ecs:{action}")
    return found


def all_instance_roles(fleet: Fleet) -> Iterator[tuple[str, Any, Any]]:
    for cluster_name in fleet.clusters:
        template = build_stack(fleet, cluster_name)
        for lid, resource in template["Resources"].items():
            if resource["Type"] == "AWS::IAM::Role" and lid.endswith("InstanceRole"):
                yield cluster_name, resource["Properties"], template


@pytest.mark.parametrize("source", ["inline", "fleet.yml", "blog.yml"])
def test_no_host_acts_on_another_cluster(source: str) -> None:
    fleet = (
        parse(TWO_CLUSTERS, "fleet.yml") if source == "inline" else load_fleet(EXAMPLES / source)
    )
    roles = list(all_instance_roles(fleet))
    assert roles
    for cluster, role, template in roles:
        statements = role_statements(role)
        for other in sorted({*fleet.clusters, "elsewhere", "default"} - {cluster}):
            assert cross_cluster_grants(statements, template, other) == set(), (cluster, other)
            # Nor its Auto Scaling groups' lifecycle actions, nor its services' logs.
            region_account = f"{PSEUDO['AWS::Region']}:{PSEUDO['AWS::AccountId']}"
            for action, resource in (
                (
                    "autoscaling:CompleteLifecycleAction",
                    f"arn:aws:autoscaling:{region_account}:autoScalingGroup:0a1b:"
                    f"autoScalingGroupName/nixecs-{other}-a",
                ),
                (
                    "logs:PutLogEvents",
                    f"arn:aws:logs:{region_account}:log-group:/nixecs/{other}/api:log-stream:x",
                ),
            ):
                assert not allows(statements, action, resource, {}, template), (cluster, action)
        # Actions without a resource type cannot be scoped: only the endpoint lookup.
        unscoped = {
            f"ecs:{a}"
            for a, kinds in ecs_actions().items()
            if not kinds and allows(statements, f"ecs:{a}", "*", {}, template)
        }
        assert unscoped == {"ecs:discoverpollendpoint"}, cluster


def test_the_evaluator_catches_the_managed_ecs_instance_policy() -> None:
    """The proof fails on the old role: AmazonEC2ContainerServiceforEC2Role acts anywhere."""
    fleet = parse(TWO_CLUSTERS, "fleet.yml")
    _, role, template = next(all_instance_roles(fleet))
    managed = dict(
        role,
        ManagedPolicyArns=[
            "arn:aws:iam::aws:policy/service-role/AmazonEC2ContainerServiceforEC2Role"
        ],
    )
    found = cross_cluster_grants(role_statements(managed), template, "d")
    assert {
        "ecs:deregistercontainerinstance",
        "ecs:updatecontainerinstancesstate",
        "ecs:createcluster",
        "ecs:submittaskstatechange",
    } <= found


# Every call the ECS agent makes (aws/amazon-ecs-agent ecs-agent/api/ecs/client/
# ecs_client.go, plus the ACS/TCS websocket sessions), on its own cluster's resources.
AGENT_CALLS = (
    ("ecs:RegisterContainerInstance", "cluster", {}),
    ("ecs:SubmitTaskStateChange", "cluster", {}),
    ("ecs:SubmitContainerStateChange", "cluster", {}),
    ("ecs:SubmitAttachmentStateChanges", "cluster", {}),
    ("ecs:Poll", "container-instance", {"ecs:cluster": "OWN"}),
    ("ecs:StartTelemetrySession", "container-instance", {"ecs:cluster": "OWN"}),
    (
        "ecs:TagResource",
        "container-instance",
        {"ecs:cluster": "OWN", "ecs:CreateAction": "RegisterContainerInstance"},
    ),
    ("ecs:ListTagsForResource", "task", {}),
    ("ecs:ListTagsForResource", "container-instance", {}),
)


@pytest.mark.parametrize("source", ["inline", "fleet.yml", "blog.yml"])
def test_every_agent_call_on_its_own_cluster_is_allowed(source: str) -> None:
    fleet = (
        parse(TWO_CLUSTERS, "fleet.yml") if source == "inline" else load_fleet(EXAMPLES / source)
    )
    region_account = f"{PSEUDO['AWS::Region']}:{PSEUDO['AWS::AccountId']}"
    for cluster, role, template in all_instance_roles(fleet):
        statements = role_statements(role)
        for action, kind, context in AGENT_CALLS:
            filled = {
                k: ecs_resource("cluster", cluster) if v == "OWN" else v for k, v in context.items()
            }
            assert allows(statements, action, ecs_resource(kind, cluster), filled, template), (
                cluster,
                action,
            )
        for action, resource in (
            ("ecs:DiscoverPollEndpoint", "*"),
            ("ecr:GetAuthorizationToken", "*"),
            (
                "logs:CreateLogStream",
                f"arn:aws:logs:{region_account}:log-group:/nixecs/{cluster}/api",
            ),
            (
                "logs:PutLogEvents",
                f"arn:aws:logs:{region_account}:log-group:/nixecs/{cluster}/api:log-stream:api/x",
            ),
        ):
            assert allows(statements, action, resource, {}, template), (cluster, action)
        # Draining (the agent's Spot draining, `nixecs drain`) only where a group needs it.
        [group] = [
            g
            for g in fleet.clusters[cluster].groups.values()
            if {"Key": "nixecs:group", "Value": g.name} in role["Tags"]
        ]
        drains = allows(
            statements,
            "ecs:UpdateContainerInstancesState",
            ecs_resource("container-instance", cluster),
            {"ecs:cluster": ecs_resource("cluster", cluster)},
            template,
        )
        assert drains == (group.drain is not None or group.ecs.spot_draining), group.key
        # Tagging outside registration, and logs of another cluster, are not.
        own = {"ecs:cluster": ecs_resource("cluster", cluster)}
        assert not allows(
            statements,
            "ecs:TagResource",
            ecs_resource("container-instance", cluster),
            own,
            template,
        )
        assert not allows(
            statements,
            "logs:PutLogEvents",
            f"arn:aws:logs:{region_account}:log-group:/nixecs/elsewhere/api:log-stream:x",
            {},
            template,
        )


def test_ecs_trust_policies_carry_source_account_and_arn() -> None:
    """Against the confused deputy: ECS assumes these roles only for this account's tasks."""
    fleet = parse(
        TWO_CLUSTERS.replace(
            "        memory: 256\n",
            '        memory: 256\n        task_role:\n          statements:\n            - {actions: [s3:GetObject], resources: ["arn:aws:s3:::b/*"]}\n',
            1,
        ),
        "fleet.yml",
    )
    template = build_stack(fleet, "c")
    roles = {
        lid: r["Properties"]["AssumeRolePolicyDocument"]["Statement"]
        for lid, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role"
    }
    assert "ApiTaskRole" in roles and "ApiExecutionRole" in roles
    for lid, trust in roles.items():
        [statement] = trust
        principal = statement["Principal"]["Service"]
        if principal == "ec2.amazonaws.com":
            continue
        assert principal == "ecs-tasks.amazonaws.com"
        source_account = statement["Condition"]["StringEquals"]["aws:SourceAccount"]
        assert source_account == {"Ref": "AWS::AccountId"}, lid
        if lid.endswith("TaskRole"):
            arn = resolve(statement["Condition"]["ArnLike"]["aws:SourceArn"], template)
            assert arn == f"{ACCOUNT_ARN}:*"
            assert wildcard(arn, ecs_resource("task", "c"))
            assert not wildcard(arn, "arn:aws:ecs:us-east-1:444455556666:task/c/x")


def test_ecr_pulls_only_from_the_groups_own_images() -> None:
    """An instance may pull exactly the private repositories its group's services name:
    `{ecr: REPO}` in this account and region, a plain ECR reference in another account."""
    other = "444455556666.dkr.ecr.eu-west-1.amazonaws.com/shared/base:2.1"
    text = TWO_CLUSTERS.replace(
        "        image: nginx\n        memory: 256\n        secrets:",
        '        image: {ecr: app, tag: "1.0"}\n        memory: 256\n        secrets:',
    ).replace(
        "    services:\n      api:\n",
        f"    services:\n      worker:\n        group: b\n        image: {other}\n"
        "        memory: 128\n      api:\n",
    )
    fleet = parse(text, "fleet.yml")
    assert fleet.clusters["c"].services["api"].containers[0].image.ecr == "app"
    template = build_stack(fleet, "c")
    roles = {
        lid: role_statements(r["Properties"])
        for lid, r in template["Resources"].items()
        if lid.endswith("InstanceRole")
    }
    own = "arn:aws:ecr:us-east-1:111122223333:repository/app"
    shared = "arn:aws:ecr:eu-west-1:444455556666:repository/shared/base"
    for repository in (own, shared):
        for action in ("ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"):
            assert allows(roles["BInstanceRole"], action, repository, {}, template)
            assert not allows(roles["AInstanceRole"], action, repository, {}, template)
    for elsewhere in (
        "arn:aws:ecr:us-east-1:111122223333:repository/other",
        "arn:aws:ecr:eu-west-1:444455556666:repository/shared/base2",
        "arn:aws:ecr:us-east-1:444455556666:repository/app",
    ):
        assert not allows(roles["BInstanceRole"], "ecr:BatchGetImage", elsewhere, {}, template)
    # A group whose services all use public images reads no ECR repository at all.
    assert not any(
        a.startswith("ecr:") and a != "ecr:GetAuthorizationToken"
        for statement in roles["NoneInstanceRole"]
        for a in as_list(statement.get("Action", []))
    )
