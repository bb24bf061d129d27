"""CloudFormation templates (DESIGN §7): structure from the examples, least-privilege IAM,
logical ids, deterministic YAML, and cfn-lint on every example."""

from __future__ import annotations

import base64
import gzip
import hashlib
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import EXAMPLES, example_fleets, require
from nixecs import naming
from nixecs.cloudformation import (
    LogicalIds,
    build_stack,
    dump_template,
    limit_problems,
    name_clashes,
)
from nixecs.cloudformation.compute import user_data
from nixecs.cloudformation.iam import STAR_ACTIONS
from nixecs.fleet import load_fleet
from nixecs.fleet.model import Fleet
from nixecs.fleet.task_role import scopable

Template = dict[str, Any]
PARAMETER_ARN = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter"
PSEUDO = {"AWS::Region", "AWS::AccountId", "AWS::Partition", "AWS::URLSuffix", "AWS::StackName"}


def templates(fleet: Fleet) -> dict[str, Template]:
    return {name: build_stack(fleet, cluster) for name, cluster in fleet.clusters.items()}


@pytest.fixture(scope="module")
def prod() -> Template:
    return templates(load_fleet(EXAMPLES / "fleet.yml"))["prod"]


@pytest.fixture(scope="module")
def blog() -> Template:
    return templates(load_fleet(EXAMPLES / "blog.yml"))["blog"]


def write_fleet(tmp_path: Path, text: str, name: str = "fleet.yml") -> Fleet:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return load_fleet(path)


def of_type(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == kind}


def one(template: Template, kind: str, **properties: Any) -> dict[str, Any]:
    """The one resource of `kind` whose properties include `properties`."""
    found: list[dict[str, Any]] = [
        r["Properties"]
        for r in of_type(template, kind).values()
        if all(r["Properties"].get(k) == v for k, v in properties.items())
    ]
    assert len(found) == 1, f"{len(found)} {kind} with {properties}"
    return found[0]


def resource(template: Template, logical_id: str) -> dict[str, Any]:
    return template["Resources"][logical_id]  # type: ignore[no-any-return]


def lt_data(template: Template, group: str, cluster: str = "prod") -> dict[str, Any]:
    name = naming.group_resource_name(cluster, group)
    return one(template, "AWS::EC2::LaunchTemplate", LaunchTemplateName=name)["LaunchTemplateData"]  # type: ignore[no-any-return]


def asg(template: Template, group: str, cluster: str = "prod") -> dict[str, Any]:
    name = naming.group_resource_name(cluster, group)
    return one(template, "AWS::AutoScaling::AutoScalingGroup", AutoScalingGroupName=name)


def walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk(item)


def instance_role(template: Template, group: str, cluster: str = "prod") -> dict[str, Any]:
    """The role behind a group's launch template (through its instance profile)."""
    profile_id = lt_data(template, group, cluster)["IamInstanceProfile"]["Arn"]["Fn::GetAtt"][0]
    role_ref = resource(template, profile_id)["Properties"]["Roles"]
    assert len(role_ref) == 1
    return resource(template, role_ref[0]["Ref"])["Properties"]  # type: ignore[no-any-return]


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for p in role.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def sub_text(value: Any) -> str:
    assert isinstance(value, dict) and set(value) == {"Fn::Sub"}, value
    return value["Fn::Sub"]  # type: ignore[no-any-return]


# --- launch templates, groups, capacity providers --------------------------------------


def test_imdsv2_required_with_the_groups_hop_limit(prod: Template) -> None:
    for group, hop_limit in (("web", 1), ("workers", 1)):
        options = lt_data(prod, group)["MetadataOptions"]
        assert options == {
            "HttpEndpoint": "enabled",
            "HttpTokens": "required",
            "HttpPutResponseHopLimit": hop_limit,
        }


def test_launch_template_image_profile_disk_and_userdata(prod: Template) -> None:
    fleet = load_fleet(EXAMPLES / "fleet.yml")
    from nixecs.userdata import render_userdata

    data = lt_data(prod, "web")
    assert data["ImageId"] == "ami-0123456789abcdef0"
    assert data["SecurityGroupIds"] == ["sg-0a1b2c3d"]
    assert data["BlockDeviceMappings"][0]["Ebs"] == {
        "VolumeType": "gp3",
        "VolumeSize": 30,  # the example's root_volume
        "Encrypted": True,
        "DeleteOnTermination": True,
    }
    expected = render_userdata(fleet, fleet.group("prod/web")).decode()
    assert data["UserData"] == {"Fn::Base64": expected}
    volume_tags = {t["Key"]: t["Value"] for t in data["TagSpecifications"][0]["Tags"]}
    assert volume_tags[naming.TAG_GROUP] == "web" and volume_tags[naming.TAG_CLUSTER] == "prod"


def test_userdata_text_goes_through_fn_base64_and_gzip_is_encoded_here() -> None:
    assert user_data(b"#nixecs-settings v1\n{}\n") == {"Fn::Base64": "#nixecs-settings v1\n{}\n"}
    packed = gzip.compress(b"#nixecs-settings v1\n" + b"x" * 40000, mtime=0)
    encoded = user_data(packed)
    assert isinstance(encoded, str) and base64.b64decode(encoded) == packed
    with pytest.raises(ValueError, match="16384"):
        user_data(b"#!" + b"x" * 16384)


def test_single_type_on_demand_group_uses_the_launch_template_directly(prod: Template) -> None:
    group = asg(prod, "web")
    assert "MixedInstancesPolicy" not in group
    lt_id = group["LaunchTemplate"]["LaunchTemplateId"]["Ref"]
    assert group["LaunchTemplate"]["Version"] == {"Fn::GetAtt": [lt_id, "LatestVersionNumber"]}
    assert lt_data(prod, "web")["InstanceType"] == "m6i.large"


def test_spot_multi_type_group_gets_a_mixed_instances_policy(prod: Template) -> None:
    group = asg(prod, "workers")
    assert "LaunchTemplate" not in group
    policy = group["MixedInstancesPolicy"]
    assert policy["InstancesDistribution"] == {
        "OnDemandBaseCapacity": 0,
        "OnDemandPercentageAboveBaseCapacity": 0,
        "SpotAllocationStrategy": "price-capacity-optimized",
    }
    assert [o["InstanceType"] for o in policy["LaunchTemplate"]["Overrides"]] == [
        "c6i.large",
        "c5.large",
        "c6a.large",
    ]
    assert "InstanceType" not in lt_data(prod, "workers")
    assert group["CapacityRebalance"] is True


def test_on_demand_multi_type_and_single_type_spot(tmp_path: Path) -> None:
    fleet = write_fleet(
        tmp_path,
        """\
        version: 1
        region: eu-west-1
        clusters:
          c:
            subnets: [subnet-0a1b2c3d]
            security_groups: [sg-0a1b2c3d]
            groups:
              od:
                ami: ami-0123456789abcdef0
                instance_types: [m6i.large, m5.large]
                capacity: {min: 0, max: 3, desired: 1}
              sp:
                ami: ami-0123456789abcdef0
                instance_types: [t3.small]
                capacity: {min: 0, max: 3, desired: 1}
                spot: true
        """,
    )
    template = templates(fleet)["c"]
    od = asg(template, "od", "c")["MixedInstancesPolicy"]
    assert od["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 100
    assert od["InstancesDistribution"]["OnDemandAllocationStrategy"] == "prioritized"
    assert [o["InstanceType"] for o in od["LaunchTemplate"]["Overrides"]] == [
        "m6i.large",
        "m5.large",
    ]
    sp = asg(template, "sp", "c")["MixedInstancesPolicy"]
    assert sp["InstancesDistribution"]["OnDemandPercentageAboveBaseCapacity"] == 0
    assert [o["InstanceType"] for o in sp["LaunchTemplate"]["Overrides"]] == ["t3.small"]


def test_auto_scaling_group_sizes_subnets_protection_and_tags(prod: Template) -> None:
    group = asg(prod, "web")
    assert (group["MinSize"], group["MaxSize"]) == ("2", "10")
    # No DesiredCapacity: it would reset the group's size on every update (aws-cdk PR 5507).
    assert "DesiredCapacity" not in group
    assert group["VPCZoneIdentifier"] == ["subnet-0a1b2c3d", "subnet-1b2c3d4e"]
    assert group["NewInstancesProtectedFromScaleIn"] is True
    tags = {t["Key"]: (t["Value"], t["PropagateAtLaunch"]) for t in group["Tags"]}
    assert tags["AmazonECSManaged"] == ("", True)
    assert tags[naming.TAG_GROUP] == ("web", True)
    assert tags[naming.TAG_HOST] == ("ecs-node", True)
    assert tags[naming.TAG_FLAKE] == ("github:acme/infra", True)
    assert tags["Name"] == ("nixecs-prod-web", True)
    assert "UpdatePolicy" not in resource(prod, "WebAutoScalingGroup")


def test_capacity_providers_are_managed_and_associated(prod: Template) -> None:
    for group in ("web", "workers"):
        provider = one(
            prod, "AWS::ECS::CapacityProvider", Name=naming.group_resource_name("prod", group)
        )
        settings_ = provider["AutoScalingGroupProvider"]
        # the example's workers set `capacity_provider: {target_capacity: 90, maximum_step: 4}`
        assert settings_["ManagedScaling"] == (
            {"Status": "ENABLED", "TargetCapacity": 100}
            if group == "web"
            else {"Status": "ENABLED", "TargetCapacity": 90, "MaximumScalingStepSize": 4}
        )
        assert settings_["ManagedTerminationProtection"] == "ENABLED"
        assert settings_["ManagedDraining"] == "ENABLED"
        asg_id = settings_["AutoScalingGroupArn"]["Ref"]
        assert resource(prod, asg_id)["Properties"][
            "AutoScalingGroupName"
        ] == naming.group_resource_name("prod", group)
    (association,) = of_type(prod, "AWS::ECS::ClusterCapacityProviderAssociations").values()
    properties = association["Properties"]
    assert properties["Cluster"] == {"Ref": "Cluster"}
    assert properties["CapacityProviders"] == [
        {"Ref": "WebCapacityProvider"},
        {"Ref": "WorkersCapacityProvider"},
    ]
    assert properties["DefaultCapacityProviderStrategy"] == [
        {"CapacityProvider": {"Ref": "WebCapacityProvider"}, "Base": 0, "Weight": 1}
    ]


def test_cluster_name_and_container_insights(prod: Template) -> None:
    cluster = one(prod, "AWS::ECS::Cluster")
    assert cluster["ClusterName"] == naming.ecs_cluster_name("prod")
    assert cluster["ClusterSettings"] == [{"Name": "containerInsights", "Value": "enabled"}]


def test_drain_hook_only_for_groups_with_drain(prod: Template) -> None:
    hooks = of_type(prod, "AWS::AutoScaling::LifecycleHook")
    assert len(hooks) == 1
    (hook,) = hooks.values()
    properties = hook["Properties"]
    assert properties["LifecycleHookName"] == naming.DRAIN_HOOK_NAME
    assert properties["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_TERMINATING"
    assert properties["DefaultResult"] == "CONTINUE"
    assert properties["HeartbeatTimeout"] == 15 * 60 + 300
    assert (
        resource(prod, properties["AutoScalingGroupName"]["Ref"])["Properties"][
            "AutoScalingGroupName"
        ]
        == "nixecs-prod-web"
    )


def test_drain_hook_heartbeat_is_the_timeout_plus_margin_up_to_aws_maximum(tmp_path: Path) -> None:
    # The schema refuses drains longer than 115m (E107), so the hook never cuts one short.
    fleet = write_fleet(
        tmp_path,
        """\
        version: 1
        region: us-east-1
        clusters:
          c:
            subnets: [subnet-0a1b2c3d]
            security_groups: [sg-0a1b2c3d]
            groups:
              long:
                ami: ami-0123456789abcdef0
                instance_types: [t3.small]
                capacity: {min: 0, max: 1, desired: 0}
                drain: {timeout: 115m}
        """,
    )
    (hook,) = of_type(templates(fleet)["c"], "AWS::AutoScaling::LifecycleHook").values()
    assert hook["Properties"]["HeartbeatTimeout"] == 7200


# --- IAM --------------------------------------------------------------------------------


def all_iam_statements(template: Template) -> Iterator[dict[str, Any]]:
    for r in of_type(template, "AWS::IAM::Role").values():
        yield from statements(r["Properties"])


@pytest.mark.parametrize("example", ["fleet.yml", "blog.yml"])
def test_no_wildcard_actions_and_no_star_resource_where_a_scoped_one_exists(example: str) -> None:
    for template in templates(load_fleet(EXAMPLES / example)).values():
        for statement in all_iam_statements(template):
            assert statement["Effect"] == "Allow"
            actions = as_list(statement["Action"])
            assert all("*" not in action for action in actions), statement
            if "*" in as_list(statement["Resource"]):
                # ours: the known list; a task role's (the user's): actions without a
                # resource type only, which is what W140 checks
                assert set(actions) <= STAR_ACTIONS or not any(map(scopable, actions)), statement
            for r in as_list(statement["Resource"]):
                # A wildcard inside an ARN only where a name or id is unknowable: the KMS
                # key of a parameter, the id of a container instance, task or ASG, the
                # streams of the cluster's logs.
                if isinstance(r, dict) and "Fn::Sub" in r and "*" in r["Fn::Sub"]:
                    assert re.search(
                        r":key/\*$|:(container-instance|task)/[^/*]+/\*$"
                        r"|:autoScalingGroup:\*:autoScalingGroupName/[^*]+$"
                        r"|:log-group:/nixecs/[^/*]+/\*$",
                        r["Fn::Sub"],
                    ), r


def test_each_group_role_reads_exactly_its_own_parameters(tmp_path: Path) -> None:
    fleet = write_fleet(
        tmp_path,
        """\
        version: 1
        region: us-east-1
        clusters:
          c:
            subnets: [subnet-0a1b2c3d]
            security_groups: [sg-0a1b2c3d]
            groups:
              a:
                ami: ami-0123456789abcdef0
                instance_types: [t3.small]
                capacity: {min: 0, max: 1, desired: 0}
                secrets:
                  one: {parameter: /c/a/one}
                  two: {parameter: /c/shared}
              b:
                ami: ami-0123456789abcdef0
                instance_types: [t3.small]
                capacity: {min: 0, max: 1, desired: 0}
                secrets:
                  three: {parameter: /c/b/three}
              none:
                ami: ami-0123456789abcdef0
                instance_types: [t3.small]
                capacity: {min: 0, max: 1, desired: 0}
        """,
    )
    template = templates(fleet)["c"]

    def read(group: str) -> set[str]:
        role = instance_role(template, group, "c")
        found: set[str] = set()
        for statement in statements(role):
            if statement.get("Sid") == "ReadGroupSecrets":
                # GetParameters only: what `nixecs secrets fetch` calls.
                assert as_list(statement["Action"]) == ["ssm:GetParameters"]
                found |= {sub_text(r) for r in as_list(statement["Resource"])}
            else:
                assert not {"ssm:GetParameter", "ssm:GetParameters"} & set(
                    as_list(statement["Action"])
                ), statement
        return found

    assert read("a") == {f"{PARAMETER_ARN}/c/a/one", f"{PARAMETER_ARN}/c/shared"}
    assert read("b") == {f"{PARAMETER_ARN}/c/b/three"}
    assert read("none") == set()
    sids = [s["Sid"] for s in statements(instance_role(template, "none", "c"))]
    assert "ReadGroupSecrets" not in sids and "DecryptThoseViaSsm" not in sids
    assert sids[-1] == "SsmAgent" and all(s.startswith(("Ecs", "Ecr", "Logs")) for s in sids[:-1])


def test_secrets_decrypt_only_via_ssm_for_those_parameters(prod: Template) -> None:
    role = instance_role(prod, "web")
    (kms,) = [s for s in statements(role) if s["Action"] == "kms:Decrypt"]
    condition = kms["Condition"]["StringEquals"]
    assert sub_text(condition["kms:ViaService"]) == "ssm.${AWS::Region}.${AWS::URLSuffix}"
    assert [sub_text(a) for a in condition["kms:EncryptionContext:PARAMETER_ARN"]] == [
        f"{PARAMETER_ARN}/prod/db/password"
    ]
    assert (
        sub_text(kms["Resource"])
        == "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*"
    )


def test_instance_role_managed_policies(prod: Template) -> None:
    for group in ("web", "workers"):
        # No AmazonSSMManagedInstanceCore (ssm:GetParameter(s) on `*`), no
        # AmazonEC2ContainerServiceforEC2Role (ecs:* on every cluster): inline statements only.
        assert "ManagedPolicyArns" not in instance_role(prod, group)


def test_drain_permissions_only_for_the_draining_group_and_scoped(prod: Template) -> None:
    web = {a: s for s in statements(instance_role(prod, "web")) for a in as_list(s["Action"])}
    complete = web["autoscaling:CompleteLifecycleAction"]
    assert sub_text(complete["Resource"]) == (
        "arn:${AWS::Partition}:autoscaling:${AWS::Region}:${AWS::AccountId}"
        ":autoScalingGroup:*:autoScalingGroupName/nixecs-prod-web"
    )
    assert web["ecs:ListContainerInstances"]["Resource"] == {"Fn::GetAtt": ["Cluster", "Arn"]}
    for action in ("ecs:UpdateContainerInstancesState", "ecs:DescribeContainerInstances"):
        statement = web[action]
        assert statement["Condition"] == {
            "ArnEquals": {"ecs:cluster": {"Fn::GetAtt": ["Cluster", "Arn"]}}
        }
        assert sub_text(statement["Resource"]).endswith(":container-instance/prod/*")
    assert web["autoscaling:DescribeAutoScalingInstances"]["Resource"] == "*"
    workers = [a for s in statements(instance_role(prod, "workers")) for a in as_list(s["Action"])]
    # Without `drain:` only the ECS agent's own calls (nixecs.cloudformation.iam.
    # ecs_agent_statements), no Auto Scaling and no listing or describing of instances.
    assert not [a for a in workers if a.startswith("autoscaling:")]
    assert "ecs:ListContainerInstances" not in workers
    assert "ecs:DescribeContainerInstances" not in workers


def test_execution_role_reads_exactly_the_services_secrets(prod: Template) -> None:
    roles = of_type(prod, "AWS::IAM::Role")
    bananas = roles["BananasExecutionRole"]["Properties"]
    assert [sub_text(a) for a in bananas["ManagedPolicyArns"]] == [
        "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
    ]
    assert bananas["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "ecs-tasks.amazonaws.com"
    }
    (ssm,) = [s for s in statements(bananas) if s["Action"] == ["ssm:GetParameters"]]
    assert [sub_text(r) for r in ssm["Resource"]] == [f"{PARAMETER_ARN}/prod/db/password"]
    assert "Policies" not in roles["ReportsExecutionRole"]["Properties"]


# --- services and scaling ---------------------------------------------------------------


def test_task_definition(prod: Template) -> None:
    task = one(prod, "AWS::ECS::TaskDefinition", Family=naming.task_family("prod", "bananas"))
    assert task["RequiresCompatibilities"] == ["EC2"] and task["NetworkMode"] == "bridge"
    assert task["ExecutionRoleArn"] == {"Fn::GetAtt": ["BananasExecutionRole", "Arn"]}
    assert task["TaskRoleArn"] == {"Fn::GetAtt": ["BananasTaskRole", "Arn"]}
    assert (task["Cpu"], task["Memory"]) == ("512", "1024")  # the task's, shared
    container, sidecar = task["ContainerDefinitions"]
    # {ecr: bananas, tag: "1.0"}: the stack's own registry; `deploy` pins the digest
    assert container["Image"] == {
        "Fn::Sub": "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/bananas:1.0"
    }
    assert (container["Memory"], container["MemoryReservation"], container["Essential"]) == (
        768,
        512,
        True,
    )
    assert container["DependsOn"] == [{"ContainerName": "otel-collector", "Condition": "START"}]
    assert (sidecar["Name"], sidecar["Essential"], sidecar["MemoryReservation"]) == (
        "otel-collector",
        False,
        128,
    )
    assert container["PortMappings"] == [{"ContainerPort": 8080, "HostPort": 0, "Protocol": "tcp"}]
    assert container["Environment"] == [{"Name": "SPRING_PROFILES_ACTIVE", "Value": "prod"}]
    assert [(s["Name"], sub_text(s["ValueFrom"])) for s in container["Secrets"]] == [
        ("DB_PASSWORD", f"{PARAMETER_ARN}/prod/db/password")
    ]
    logs = container["LogConfiguration"]
    assert logs["LogDriver"] == "awslogs"
    assert logs["Options"]["awslogs-group"] == {"Ref": "BananasLogGroup"}
    group = resource(prod, "BananasLogGroup")["Properties"]
    assert group == group | {
        "LogGroupName": naming.log_group_name("prod", "bananas"),
        "RetentionInDays": 30,
    }
    reports = one(prod, "AWS::ECS::TaskDefinition", Family=naming.task_family("prod", "reports"))
    assert "PortMappings" not in reports["ContainerDefinitions"][0]
    assert "Secrets" not in reports["ContainerDefinitions"][0]


def test_unscaled_service_count_and_sorted_environment(tmp_path: Path) -> None:
    fleet = write_fleet(
        tmp_path,
        """\
        version: 1
        region: us-east-1
        clusters:
          c:
            subnets: [subnet-0a1b2c3d]
            security_groups: [sg-0a1b2c3d]
            groups:
              g: {ami: ami-0123456789abcdef0, instance_types: [t3.small], capacity: {min: 0, max: 1, desired: 0}}
            services:
              s:
                group: g
                image: nginx
                cpu: 128
                memory: 128
                desired: 0
                environment: {ZED: "1", ALPHA: "yes", MID: "0755"}
        """,
    )
    template = templates(fleet)["c"]
    (service,) = of_type(template, "AWS::ECS::Service").values()
    assert service["Properties"]["DesiredCount"] == 0  # not scaled: the fleet's count
    (task,) = of_type(template, "AWS::ECS::TaskDefinition").values()
    env = task["Properties"]["ContainerDefinitions"][0]["Environment"]
    assert env == [
        {"Name": "ALPHA", "Value": "yes"},
        {"Name": "MID", "Value": "0755"},
        {"Name": "ZED", "Value": "1"},
    ]


def test_service(prod: Template) -> None:
    service_resource = resource(prod, "BananasService")
    # behind the ALB: the rule exists before ECS registers the first target
    assert service_resource["DependsOn"] == ["ClusterCapacityProviders", "BananasListenerRule"]
    service = service_resource["Properties"]
    assert service["ServiceName"] == "bananas"
    # Scaled: auto scaling owns the count, and a stack update must not reset it.
    assert "DesiredCount" not in service
    assert service["Cluster"] == {"Ref": "Cluster"}
    assert service["CapacityProviderStrategy"] == [
        {"CapacityProvider": {"Ref": "WebCapacityProvider"}, "Base": 0, "Weight": 1}
    ]
    assert service["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {
        "Enable": True,
        "Rollback": True,
    }
    assert service["PlacementStrategies"] == [
        {"Type": "spread", "Field": "attribute:ecs.availability-zone"},
        {"Type": "binpack", "Field": "memory"},
    ]
    reports = resource(prod, "ReportsService")["Properties"]
    assert reports["CapacityProviderStrategy"][0]["CapacityProvider"] == {
        "Ref": "WorkersCapacityProvider"
    }


def test_target_tracking(prod: Template) -> None:
    target = resource(prod, "BananasScalableTarget")
    assert target["DependsOn"] == ["BananasService"]
    assert target["Properties"] == {
        "ServiceNamespace": "ecs",
        "ScalableDimension": "ecs:service:DesiredCount",
        "ResourceId": "service/prod/bananas",
        "MinCapacity": 2,
        "MaxCapacity": 20,
    }
    policy = one(
        prod, "AWS::ApplicationAutoScaling::ScalingPolicy", PolicyType="TargetTrackingScaling"
    )
    assert policy["ScalingTargetId"] == {"Ref": "BananasScalableTarget"}
    assert policy["TargetTrackingScalingPolicyConfiguration"] == {
        "PredefinedMetricSpecification": {
            "PredefinedMetricType": "ALBRequestCountPerTarget",
            "ResourceLabel": {
                "Fn::Join": [
                    "/",
                    [
                        {"Fn::GetAtt": ["LoadBalancer", "LoadBalancerFullName"]},
                        {"Fn::GetAtt": ["BananasTargetGroup", "TargetGroupFullName"]},
                    ],
                ]
            },
        },
        "TargetValue": 500,
        "ScaleInCooldown": 300,
        "ScaleOutCooldown": 60,
        "DisableScaleIn": False,
    }


def test_blog_step_policy_is_the_articles(blog: Template) -> None:
    (target,) = of_type(blog, "AWS::ApplicationAutoScaling::ScalableTarget").values()
    properties = target["Properties"]
    assert "RoleARN" not in properties  # the service-linked role
    assert (properties["MinCapacity"], properties["MaxCapacity"]) == (1, 20)
    assert properties["ResourceId"] == "service/blog/app"
    assert properties["ScalableDimension"] == "ecs:service:DesiredCount"
    (policy_id,) = of_type(blog, "AWS::ApplicationAutoScaling::ScalingPolicy")
    policy = resource(blog, policy_id)["Properties"]
    assert policy["PolicyType"] == "StepScaling"
    assert policy["StepScalingPolicyConfiguration"] == {
        "AdjustmentType": "ChangeInCapacity",
        "Cooldown": 60,
        "MetricAggregationType": "Average",
        "StepAdjustments": [
            {"MetricIntervalLowerBound": 0, "ScalingAdjustment": 2},
            {"MetricIntervalUpperBound": 0, "ScalingAdjustment": -1},
        ],
    }
    (alarm,) = of_type(blog, "AWS::CloudWatch::Alarm").values()
    a = alarm["Properties"]
    assert a["AlarmName"] == naming.alarm_name("blog", "app", "cpu-alarm")
    assert (a["Namespace"], a["MetricName"], a["Statistic"]) == (
        "AWS/ECS",
        "CPUUtilization",
        "Average",
    )
    assert (a["Period"], a["EvaluationPeriods"], a["Threshold"]) == (300, 1, 80)
    assert a["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert a["Dimensions"] == [
        {"Name": "ClusterName", "Value": "blog"},
        {"Name": "ServiceName", "Value": "app"},
    ]
    assert a["AlarmActions"] == [{"Ref": policy_id}]
    assert a["TreatMissingData"] == "notBreaching"
    # Integers stay integers in the text too (80, not 80.0).
    assert "Threshold: 80\n" in dump_template(blog)


def test_step_policy_pair_gets_two_alarms(prod: Template) -> None:
    alarms = {
        a["Properties"]["AlarmName"]: a["Properties"]
        for a in of_type(prod, "AWS::CloudWatch::Alarm").values()
    }
    assert set(alarms) == {
        "nixecs-prod-reports-cpu-high",
        "nixecs-prod-reports-cpu-low",
        "nixecs-prod-orders-backlog-high",
        "nixecs-prod-orders-backlog-low",
        # bananas' deployment.alarms (http_5xx, unhealthy_hosts): no actions, ECS watches them
        "nixecs-prod-bananas-deployment-5xx",
        "nixecs-prod-bananas-deployment-unhealthy",
    }
    assert "AlarmActions" not in alarms["nixecs-prod-bananas-deployment-5xx"]
    bananas = of_type(prod, "AWS::ECS::Service")["BananasService"]["Properties"]
    watched = bananas["DeploymentConfiguration"]["Alarms"]
    assert watched["Enable"] is True and watched["Rollback"] is True
    assert watched["AlarmNames"] == [
        {"Ref": "BananasHttp5xxAlarm"},
        {"Ref": "BananasUnhealthyHostsAlarm"},
    ]
    # a queue metric: its dimensions as written, the namespace as given
    backlog = alarms["nixecs-prod-orders-backlog-high"]
    assert (backlog["Namespace"], backlog["Dimensions"]) == (
        "AWS/SQS",
        [{"Name": "QueueName", "Value": "orders"}],
    )
    assert (
        alarms["nixecs-prod-reports-cpu-low"]["ComparisonOperator"] == "LessThanOrEqualToThreshold"
    )
    low_policy = resource(prod, alarms["nixecs-prod-reports-cpu-low"]["AlarmActions"][0]["Ref"])[
        "Properties"
    ]
    assert low_policy["StepScalingPolicyConfiguration"]["StepAdjustments"] == [
        {"MetricIntervalUpperBound": 0, "ScalingAdjustment": -1}
    ]
    high_policy = resource(prod, alarms["nixecs-prod-reports-cpu-high"]["AlarmActions"][0]["Ref"])[
        "Properties"
    ]
    assert high_policy["StepScalingPolicyConfiguration"]["StepAdjustments"] == [
        {"MetricIntervalLowerBound": 0, "MetricIntervalUpperBound": 15, "ScalingAdjustment": 1},
        {"MetricIntervalLowerBound": 15, "ScalingAdjustment": 3},
    ]


# --- whole-template integrity -----------------------------------------------------------


def check_integrity(template: Template) -> None:
    """Every Ref, GetAtt and DependsOn names a resource of this template, every logical id
    is alphanumeric, and outputs name existing resources."""
    resources = template["Resources"]
    for lid in [*resources, *template["Outputs"]]:
        assert re.fullmatch(r"[A-Za-z0-9]{1,255}", lid), lid
    for node in walk(template):
        if isinstance(node, dict) and "Ref" in node:
            assert node["Ref"] in resources or node["Ref"] in PSEUDO, node
        if isinstance(node, dict) and "Fn::GetAtt" in node:
            assert node["Fn::GetAtt"][0] in resources, node
    for r in resources.values():
        for dependency in r.get("DependsOn", []):
            assert dependency in resources


def test_templates_are_whole(prod: Template, blog: Template) -> None:
    check_integrity(prod)
    check_integrity(blog)
    assert prod["Description"].startswith("nixecs") and "github:acme/infra" in prod["Description"]
    assert set(prod["Outputs"]) == {
        "ClusterName",
        "ClusterArn",
        "WebAutoScalingGroupName",
        "WebCapacityProviderName",
        "WorkersAutoScalingGroupName",
        "WorkersCapacityProviderName",
        "BananasServiceName",
        "ReportsServiceName",
        "OrdersServiceName",
        "ExportServiceName",
        "LoadBalancerDnsName",
    }


def test_userdata_is_rendered_when_not_given_and_must_cover_every_group() -> None:
    fleet = load_fleet(EXAMPLES / "fleet.yml")
    from nixecs.userdata import render_userdata

    given_data = {g.name: render_userdata(fleet, g) for g in fleet.clusters["prod"].groups.values()}
    assert build_stack(fleet, "prod", given_data) == build_stack(fleet, fleet.clusters["prod"])
    with pytest.raises(KeyError, match="workers"):
        build_stack(fleet, "prod", {"web": given_data["web"]})


def test_tag_values_are_sanitised_for_ecs_and_iam(tmp_path: Path) -> None:
    fleet = write_fleet(
        tmp_path,
        """\
        version: 1
        region: us-east-1
        flake: git+https://example.com/infra?ref=main&rev=1
        clusters:
          c:
            subnets: [subnet-0a1b2c3d]
            security_groups: [sg-0a1b2c3d]
        """,
    )
    template = templates(fleet)["c"]
    (cluster,) = of_type(template, "AWS::ECS::Cluster").values()
    flake = {t["Key"]: t["Value"] for t in cluster["Properties"]["Tags"]}[naming.TAG_FLAKE]
    assert flake == "git+https://example.com/infra_ref=main_rev=1"
    assert "?ref=main&rev=1" in template["Description"]
    check_integrity(template)


# --- logical ids ------------------------------------------------------------------------


def test_logical_ids_keep_readable_names_without_collisions() -> None:
    ids = LogicalIds([("group", "web"), ("group", "api-v2"), ("service", "web")])
    assert ids.group("web", "LaunchTemplate") == "WebLaunchTemplate"
    assert ids.group("api-v2", "AutoScalingGroup") == "ApiV2AutoScalingGroup"
    assert ids.service("web", "Service") == "WebService"
    with pytest.raises(ValueError):
        ids.group("web", "Service")


def test_colliding_names_get_distinct_stable_ids() -> None:
    names = ["web-1", "web_1", "Web1", "web--1", "web"]
    ids = LogicalIds([("group", n) for n in names])
    got = {n: ids.group(n, "LaunchTemplate") for n in names}
    assert len(set(got.values())) == len(names)
    assert got["web"] == "WebLaunchTemplate"  # no clash, no suffix
    for n in names[:-1]:
        assert re.fullmatch(r"Web1[0-9a-f]{6}LaunchTemplate", got[n]), got[n]
    # The same names in another order: the same ids.
    again = LogicalIds([("group", n) for n in reversed(names)])
    assert {n: again.group(n, "LaunchTemplate") for n in names} == got


def test_ids_do_not_collide_across_subjects() -> None:
    # service `a` + step policy `b-alarm` and service `a-b` + step policy `alarm` both
    # CamelCase to `ABAlarm…` (as do `a_b` + `alarm`, in the COLLIDING fleet below).
    subjects = [
        ("service", "a"),
        ("service", "a-b"),
        ("policy", "a", "b-alarm"),
        ("policy", "a-b", "alarm"),
    ]
    ids = LogicalIds(subjects)
    every = [
        ids.get(s, k)
        for s in subjects
        for k in ({"service": ["Service", "LogGroup"], "policy": ["StepPolicy", "Alarm"]}[s[0]])
    ]
    assert len(set(every)) == len(every)
    # Subjects not involved keep their readable ids.
    assert LogicalIds([*subjects, ("group", "x")]).group("x", "InstanceRole") == "XInstanceRole"


def test_template_with_colliding_names_is_whole(tmp_path: Path) -> None:
    fleet = write_fleet(tmp_path, COLLIDING)
    template = templates(fleet)["c"]
    check_integrity(template)
    assert len(of_type(template, "AWS::AutoScaling::AutoScalingGroup")) == 2
    assert len(of_type(template, "AWS::ECS::Service")) == 3
    assert len(of_type(template, "AWS::CloudWatch::Alarm")) == 2


COLLIDING = """\
version: 1
region: us-east-1
flake: github:acme/infra
clusters:
  c:
    subnets: [subnet-0a1b2c3d]
    security_groups: [sg-0a1b2c3d]
    groups:
      web-1:
        ami: ami-0123456789abcdef0
        instance_types: [t3.small]
        capacity: {min: 0, max: 2, desired: 0}
        drain: {timeout: 1m}
      web_1:
        ami: ami-0123456789abcdef0
        instance_types: [t3.small, t3a.small]
        capacity: {min: 0, max: 2, desired: 0}
    services:
      a:
        group: web-1
        image: nginx:1.27
        cpu: 128
        memory: 128
        desired: 1
        scaling:
          min: 1
          max: 2
          step:
            - name: b-alarm
              alarm: {metric: CPUUtilization, namespace: AWS/ECS, statistic: Average,
                      period: 60, evaluation_periods: 1, threshold: 80, comparison: ">="}
              adjustment_type: ChangeInCapacity
              cooldown: 60
              aggregation: Average
              steps: [{lower: 0, change: 1}]
      a_b:
        group: web_1
        image: nginx:1.27
        cpu: 128
        memory: 128
        desired: 1
        scaling:
          min: 1
          max: 2
          step:
            - name: alarm
              alarm: {metric: CPUUtilization, namespace: AWS/ECS, statistic: Average,
                      period: 60, evaluation_periods: 1, threshold: 20, comparison: "<="}
              adjustment_type: ChangeInCapacity
              cooldown: 60
              aggregation: Average
              steps: [{upper: 0, change: -1}]
      plain:
        group: web_1
        image: nginx:1.27
        cpu: 128
        memory: 128
        port: 80
        desired: 3
        environment: {MODE: "yes", PORT: "80"}
"""


def test_name_clashes_across_clusters_and_policies(tmp_path: Path) -> None:
    group = "{ami: ami-0123456789abcdef0, instance_types: [t3.small], capacity: {min: 0, max: 1, desired: 0}}"
    alarm = '{metric: CPUUtilization, period: 60, evaluation_periods: 1, threshold: 80, comparison: ">="}'
    fleet = write_fleet(
        tmp_path,
        f"""\
        version: 1
        region: us-east-1
        clusters:
          prod:
            subnets: [subnet-0a1b2c3d]
            security_groups: [sg-0a1b2c3d]
            groups:
              eu-web: {group}
            services:
              a:
                group: eu-web
                image: nginx
                cpu: 128
                memory: 128
                desired: 1
                scaling: {{min: 1, max: 2, step: [{{name: b-alarm, alarm: {alarm}, steps: [{{lower: 0, change: 1}}]}}]}}
              a-b:
                group: eu-web
                image: nginx
                cpu: 128
                memory: 128
                desired: 1
                scaling: {{min: 1, max: 2, step: [{{name: alarm, alarm: {alarm}, steps: [{{lower: 0, change: 1}}]}}]}}
          prod-eu:
            subnets: [subnet-0a1b2c3d]
            security_groups: [sg-0a1b2c3d]
            groups:
              web: {group}
        """,
    )
    clashes = {(c.what, c.name): c for c in name_clashes(fleet)}
    assert set(clashes) == {
        ("Auto Scaling group, launch template and capacity provider", "nixecs-prod-eu-web"),
        ("CloudWatch alarm", "nixecs-prod-a-b-alarm"),
    }
    groups = clashes[
        "Auto Scaling group, launch template and capacity provider", "nixecs-prod-eu-web"
    ]
    assert groups.owners == ("prod/eu-web", "prod-eu/web")
    assert groups.paths == (
        ("clusters", "prod", "groups", "eu-web"),
        ("clusters", "prod-eu", "groups", "web"),
    )
    assert "prod/eu-web and prod-eu/web" in groups.message
    assert clashes["CloudWatch alarm", "nixecs-prod-a-b-alarm"].owners == (
        "prod/a/b-alarm",
        "prod/a-b/alarm",
    )
    assert name_clashes(load_fleet(EXAMPLES / "fleet.yml")) == []
    assert name_clashes(write_fleet(tmp_path, COLLIDING, "colliding.yml")) == []


def test_quota_problems_of_a_big_cluster(tmp_path: Path) -> None:
    group = "{ami: ami-0123456789abcdef0, instance_types: [t3.small], capacity: {min: 0, max: 1, desired: 0}}"
    lines = [
        "version: 1",
        "region: us-east-1",
        "clusters:",
        "  big:",
        "    subnets: [subnet-0a1b2c3d]",
        "    security_groups: [sg-0a1b2c3d]",
        "    groups:",
        *(f"      g{i}: {group}" for i in range(100)),
    ]
    template = templates(write_fleet(tmp_path, "\n".join(lines) + "\n"))["big"]
    check_integrity(template)
    problems = limit_problems(template)
    assert len(template["Resources"]) > 500 and len(template["Outputs"]) > 200
    assert [p.split(",")[0] for p in problems] == [
        f"{len(template['Resources'])} resources",
        f"{len(template['Outputs'])} outputs",
    ]
    assert limit_problems(templates(load_fleet(EXAMPLES / "fleet.yml"))["prod"]) == []


# --- YAML text --------------------------------------------------------------------------


def test_dump_round_trips_and_uses_plain_intrinsics(prod: Template, blog: Template) -> None:
    for template in (prod, blog):
        text = dump_template(template)
        assert yaml.safe_load(text) == template
        assert "!" not in "".join(
            line.split(":", 1)[1][:2] for line in text.splitlines() if ":" in line
        )
        assert "Fn::GetAtt:\n" in text and "Ref: " in text
    text = dump_template(prod)
    assert "AWSTemplateFormatVersion: '2010-09-09'\n" in text
    assert "MinSize: '2'\n" in text


def test_dump_quotes_what_a_yaml_reader_would_retype() -> None:
    tricky = ["yes", "No", "on", "OFF", "y", "N", "null", "~", "true", "0755", "1e3", "0o17", "0x1F",
              "1_000", ".inf", "-1", "+1", "2010-09-09", "12:30", "", " lead", "trail ", "a: b", "a #b",
              "- x", "? x", "*x", "&x", "!x", "%x", "@x", "`x", "{x", "[x", "'x", '"x', "|x", ">x", "#x",
              "x:", "<<", "=", "é", "\t", "\x85", "\u2028", "\ufeff", "line\nbreak", "\n", "a\n\n", " a\nb"]  # fmt: skip
    data = {"k": tricky, "m": {t: t for t in tricky if t}}
    text = dump_template(data)
    assert yaml.safe_load(text) == data
    for value in ("yes", "0755", "1e3", "0o17", "2010-09-09", "null"):
        assert f"- {value}\n" not in text


def test_dump_nests_deeper_than_any_template() -> None:
    data: dict[str, Any] = {"leaf": "x\ny\n"}
    for depth in range(40):
        data = {f"k{depth}": [data, [depth]]} if depth % 2 else {f"k{depth}": data}
    assert yaml.safe_load(dump_template(data)) == data


json_scalars = st.one_of(
    st.text(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.text(), json_values, max_size=5))
def test_dump_round_trips_any_json_data(data: dict[str, Any]) -> None:
    # Lone surrogates cannot be written as UTF-8 at all; the fleet loader never yields them.
    text = dump_template(data)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return
    assert yaml.safe_load(text) == data


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab \t\n#:-'\"\\é\u2028\x85\r"), min_size=1))
def test_dump_round_trips_multiline_text(text: str) -> None:
    data = {"UserData": {"Fn::Base64": text}, "List": [text, [text]]}
    assert yaml.safe_load(dump_template(data)) == data


def test_dump_is_deterministic_across_processes() -> None:
    script = (
        "import hashlib, sys\n"
        "from nixecs.fleet import load_fleet\n"
        "from nixecs.cloudformation import build_stack, dump_template\n"
        "for path in sys.argv[1:]:\n"
        "    fleet = load_fleet(path)\n"
        "    for c in fleet.clusters.values():\n"
        "        print(hashlib.sha256(dump_template(build_stack(fleet, c)).encode()).hexdigest())\n"
    )
    paths = [str(EXAMPLES / "fleet.yml"), str(EXAMPLES / "blog.yml")]
    digests = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        result = subprocess.run(
            [sys.executable, "-c", script, *paths],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        digests.add(result.stdout)
    assert len(digests) == 1
    local = "".join(
        hashlib.sha256(dump_template(t).encode()).hexdigest() + "\n"
        for p in paths
        for t in templates(load_fleet(p)).values()
    )
    assert digests == {local}


def test_reordered_fleet_gives_the_same_template(tmp_path: Path) -> None:
    original = (EXAMPLES / "fleet.yml").read_text()
    # Services in the other order, and a group's keys shuffled.
    services_at = original.index("      bananas:")
    reports_at = original.index("      reports:")
    reordered = original[:services_at] + original[reports_at:] + original[services_at:reports_at]
    reordered = reordered.replace(
        "        host: ecs-node\n        ami: ami-0123456789abcdef0\n        instance_types: [m6i.large]\n",
        "        instance_types: [m6i.large]\n        ami: ami-0123456789abcdef0\n        host: ecs-node\n",
    )
    assert reordered != original
    a = dump_template(templates(load_fleet(EXAMPLES / "fleet.yml"))["prod"])
    b = dump_template(templates(write_fleet(tmp_path, reordered))["prod"])
    assert a == b


# --- cfn-lint ---------------------------------------------------------------------------


@pytest.mark.cfnlint
def test_cfn_lint_every_example_without_errors_or_warnings(tmp_path: Path) -> None:
    """Every example's templates, plus ones exercising the rarer paths (name collisions,
    on-demand mixed types, a drain group next to a plain one, gzip userdata), all in one
    cfn-lint run.
    Informational findings are checked too (`--include-checks I`): none are accepted."""
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    require(cfn_lint.exists(), "cfn-lint is not installed in this environment")
    fleets = example_fleets()
    assert len(fleets) >= 2
    extra = tmp_path / "colliding.yml"
    extra.write_text(COLLIDING)
    # `flake:` is optional: no empty tag value may come of it (ECS refuses those, E3033).
    no_flake = tmp_path / "no-flake.yml"
    no_flake.write_text(COLLIDING.replace("flake: github:acme/infra\n", ""))
    built = [
        (f"{path.stem}{'-' + env if env else ''}-{name}", t)
        for path, env in [*fleets, (extra, None), (no_flake, None)]
        for name, t in templates(load_fleet(path, env)).items()
    ]
    # And gzip userdata, which goes into the template as a base64 literal.
    fleet = load_fleet(extra)
    packed = gzip.compress(b"#nixecs-settings v1\n" + b" " * 30000 + b"{}\n", mtime=0)
    built.append(("gzip", build_stack(fleet, "c", {"web-1": packed, "web_1": packed})))
    files = []
    for stem, template in built:
        out = tmp_path / f"{stem}.yaml"
        out.write_text(dump_template(template))
        files.append(str(out))
    result = subprocess.run(
        [str(cfn_lint), "--format", "parseable", "--include-checks", "I", "--", *files],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr
