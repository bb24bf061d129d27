"""`nixecs destroy` end to end against the moto server: a stack with a cluster, a service,
a launch template and an Auto Scaling group whose instances are protected from scale-in (as
managed termination protection leaves them), and a capacity provider attached to the cluster.
moto never hangs on a stack deletion the way AWS does (aws-cdk#18179), so the unhanging steps
are checked one by one on moto's own APIs, and their exact order with the Stubber."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aws_fixtures import FLEET, make_services, moto_client, run_cli, stubbed_clients, write_fleet
from nixecs.aws import destroy as destroy_module
from nixecs.aws.session import Session

_stubbed = pytest.fixture(name="stubbed")(stubbed_clients)

ASG = "nixecs-prod-web"


def _template(subnet: str) -> str:
    resources: dict[str, Any] = {
        "Cluster": {"Type": "AWS::ECS::Cluster", "Properties": {"ClusterName": "prod"}},
        "Task": {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "Family": "nixecs-prod-bananas",
                "ContainerDefinitions": [{"Name": "app", "Image": "nginx", "Memory": 128}],
            },
        },
        "Service": {
            "Type": "AWS::ECS::Service",
            "Properties": {
                "Cluster": {"Ref": "Cluster"},
                "ServiceName": "bananas",
                "TaskDefinition": {"Ref": "Task"},
                "DesiredCount": 2,
            },
        },
        "LaunchTemplate": {
            "Type": "AWS::EC2::LaunchTemplate",
            "Properties": {
                "LaunchTemplateName": ASG,
                "LaunchTemplateData": {"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"},
            },
        },
        "Group": {
            "Type": "AWS::AutoScaling::AutoScalingGroup",
            "Properties": {
                "AutoScalingGroupName": ASG,
                "MinSize": "1",
                "MaxSize": "4",
                "DesiredCapacity": "2",
                "NewInstancesProtectedFromScaleIn": True,
                "VPCZoneIdentifier": [subnet],
                "LaunchTemplate": {
                    "LaunchTemplateId": {"Ref": "LaunchTemplate"},
                    "Version": {"Fn::GetAtt": ["LaunchTemplate", "LatestVersionNumber"]},
                },
            },
        },
    }
    return json.dumps({"AWSTemplateFormatVersion": "2010-09-09", "Resources": resources})


OURS = [{"Key": "nixecs:cluster", "Value": "prod"}, {"Key": "nixecs:fleet", "Value": "default"}]


def _deployed(url: str, tags: list[dict[str, str]] | None = None) -> None:
    """The stack as `deploy` leaves it (its tags: `tags`, by default the unprefixed fleet's)."""
    ec2 = moto_client(url, "ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    cfn = moto_client(url, "cloudformation")
    cfn.create_stack(
        StackName="nixecs-prod", TemplateBody=_template(subnet), Tags=OURS if tags is None else tags
    )
    assert cfn.describe_stacks(StackName="nixecs-prod")["Stacks"][0]["StackStatus"] == (
        "CREATE_COMPLETE"
    )
    autoscaling = moto_client(url, "autoscaling")
    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[ASG])[
        "AutoScalingGroups"
    ]
    assert len(group["Instances"]) == 2
    assert all(i["ProtectedFromScaleIn"] for i in group["Instances"])
    # moto's CloudFormation has no capacity providers: attach one through the API
    ecs = moto_client(url, "ecs")
    ecs.create_capacity_provider(
        name=ASG,
        autoScalingGroupProvider={
            "autoScalingGroupArn": group["AutoScalingGroupARN"],
            "managedTerminationProtection": "ENABLED",
            "managedScaling": {"status": "ENABLED", "targetCapacity": 100},
        },
    )
    ecs.put_cluster_capacity_providers(
        cluster="prod",
        capacityProviders=[ASG],
        defaultCapacityProviderStrategy=[{"capacityProvider": ASG, "weight": 1}],
    )


@pytest.mark.moto
def test_destroy_tears_down_a_busy_cluster_and_is_idempotent(moto, capsys, monkeypatch):
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    _deployed(moto.url)
    result = run_cli(capsys, ["--endpoint-url", moto.url, "destroy", "prod", "--yes"])
    assert result.code == 0, result.err
    assert result.out == "nixecs-prod: destroyed\n"
    assert "service bananas: scaled to 0 and deleted" in result.err
    assert f"group {ASG}: 2 instances unprotected, scaling to 0" in result.err
    assert f"cluster prod: detached {ASG}" in result.err
    cfn = moto_client(moto.url, "cloudformation")
    assert [s["StackName"] for s in cfn.describe_stacks()["Stacks"]] == []
    # a rerun (after a failure, or twice by mistake) finds nothing left to do
    again = run_cli(
        capsys, ["--endpoint-url", moto.url, "--output", "json", "destroy", "prod", "--yes"]
    )
    assert again.code == 0, again.err
    assert again.json()["clusters"][0]["outcome"] == "absent"


@pytest.mark.moto
def test_each_unhanging_step_on_moto(moto, monkeypatch):
    """Services gone, protection lifted, groups at zero, providers detached, before the stack
    is asked to go (the stack deletion itself is stopped here to look)."""
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    _deployed(moto.url)
    session = Session(endpoint_url=moto.url, region="us-east-1")

    def stop(**_: Any) -> None:
        raise RuntimeError("stack deletion reached")

    cfn = session.client("cloudformation")
    monkeypatch.setattr(cfn, "delete_stack", stop)
    with pytest.raises(RuntimeError, match="stack deletion reached"):
        destroy_module.destroy_cluster(session, "prod", say=lambda _: None, poll=0.01, timeout=10)
    ecs = moto_client(moto.url, "ecs")
    (service,) = ecs.describe_services(cluster="prod", services=["bananas"])["services"]
    assert service["desiredCount"] == 0 and service["status"] != "ACTIVE"
    (group,) = moto_client(moto.url, "autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[ASG]
    )["AutoScalingGroups"]
    assert group["MinSize"] == 0 and group["DesiredCapacity"] == 0
    assert group["Instances"] == []
    assert group["NewInstancesProtectedFromScaleIn"] is False
    assert ecs.describe_clusters(clusters=["prod"])["clusters"][0]["capacityProviders"] == []


def _in_review(url: str, stack: str, tags: list[dict[str, str]]) -> None:
    """A stack left in REVIEW_IN_PROGRESS by a CREATE change set (a declined first deploy)."""
    cfn = moto_client(url, "cloudformation")
    cfn.create_change_set(
        StackName=stack,
        ChangeSetName="nixecs-declined",
        ChangeSetType="CREATE",
        TemplateBody=json.dumps(
            {"Resources": {"C": {"Type": "AWS::ECS::Cluster", "Properties": {}}}}
        ),
        Tags=tags,
    )
    assert cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == (
        "REVIEW_IN_PROGRESS"
    )


@pytest.mark.moto
def test_destroy_with_the_fleet_cleans_its_review_in_progress_stacks(
    moto, capsys, monkeypatch, tmp_path
):
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    fleet = write_fleet(tmp_path, FLEET.replace("  prod:", "  staging:"))
    _in_review(moto.url, "nixecs-staging", [dict(OURS[0], Value="staging"), OURS[1]])
    cfn = moto_client(moto.url, "cloudformation")
    result = run_cli(
        capsys, ["--endpoint-url", moto.url, "destroy", "--fleet", str(fleet), "--yes"]
    )
    assert result.code == 0, result.err
    assert result.out == "nixecs-staging: destroyed\n"
    assert [s["StackName"] for s in cfn.describe_stacks()["Stacks"]] == []
    nothing = run_cli(
        capsys, ["--endpoint-url", moto.url, "destroy", "--fleet", str(fleet), "--yes"]
    )
    assert nothing.code == 0 and "nothing to destroy" in nothing.err


@pytest.mark.moto
def test_destroy_asks_and_refuses_without_a_terminal(moto, capsys):
    _deployed(moto.url)
    result = run_cli(capsys, ["--endpoint-url", moto.url, "destroy", "prod"], stdin="y\n")
    assert result.code == 2 and "--yes" in result.err
    cfn = moto_client(moto.url, "cloudformation")
    assert cfn.describe_stacks(StackName="nixecs-prod")["Stacks"][0]["StackStatus"] == (
        "CREATE_COMPLETE"
    )


def _group_of(states: list[str], *, protected: bool = False) -> dict[str, Any]:
    """A DescribeAutoScalingGroups group of ASG with one instance per lifecycle state."""
    return {
        "AutoScalingGroupName": ASG,
        "MinSize": 1,
        "MaxSize": 200,
        "DesiredCapacity": len(states),
        "DefaultCooldown": 300,
        "AvailabilityZones": ["us-east-1a"],
        "HealthCheckType": "EC2",
        "CreatedTime": "2026-01-01T00:00:00Z",
        "Instances": [
            {
                "InstanceId": f"i-{n:017x}",
                "AvailabilityZone": "us-east-1a",
                "LifecycleState": state,
                "HealthStatus": "Healthy",
                "ProtectedFromScaleIn": protected,
            }
            for n, state in enumerate(states)
        ],
    }


def _expect_scaling_to_zero(autoscaling: Any, group: dict[str, Any]) -> None:
    """The group step's calls up to min and desired 0: describe, new instances unprotected,
    every protected instance unprotected (50 a call), then the capacity to zero."""
    autoscaling.add_response(
        "describe_auto_scaling_groups",
        {"AutoScalingGroups": [group]},
        {"AutoScalingGroupNames": [ASG]},
    )
    autoscaling.add_response(
        "update_auto_scaling_group",
        {},
        {"AutoScalingGroupName": ASG, "NewInstancesProtectedFromScaleIn": False},
    )
    ids = [i["InstanceId"] for i in group["Instances"] if i["ProtectedFromScaleIn"]]
    for start in range(0, len(ids), 50):
        autoscaling.add_response(
            "set_instance_protection",
            {},
            {
                "AutoScalingGroupName": ASG,
                "InstanceIds": ids[start : start + 50],
                "ProtectedFromScaleIn": False,
            },
        )
    autoscaling.add_response(
        "update_auto_scaling_group",
        {},
        {"AutoScalingGroupName": ASG, "MinSize": 0, "DesiredCapacity": 0},
    )


def test_protection_is_lifted_before_the_stack_goes_exactly(stubbed):
    """The exact AWS calls of the group step (the order aws-cdk#18179 needs), 120 protected
    instances in batches of 50."""
    autoscaling = stubbed("autoscaling")
    group = _group_of(["InService"] * 120, protected=True)
    instances = group["Instances"]
    _expect_scaling_to_zero(autoscaling, group)
    autoscaling.add_response(
        "describe_auto_scaling_groups",
        {"AutoScalingGroups": [dict(group, Instances=instances[:3])]},
        {"AutoScalingGroupNames": [ASG]},
    )
    autoscaling.add_response(
        "describe_auto_scaling_groups",
        {"AutoScalingGroups": [dict(group, Instances=[])]},
        {"AutoScalingGroupNames": [ASG]},
    )
    session = Session(region="us-east-1")
    said: list[str] = []
    assert destroy_module._groups(session, [ASG], said.append, 0, 60) == [ASG]
    assert said == [f"  group {ASG}: 120 instances unprotected, scaling to 0"]
    autoscaling.assert_no_pending_responses()


# --- only what nixecs created: hostile cases and their outcomes ----------

ACME = FLEET.replace("region: us-east-1\n", "region: us-east-1\nname_prefix: acme\n")


def _stack_status(url: str, stack: str) -> str | None:
    cfn = moto_client(url, "cloudformation")
    live = [s for s in cfn.describe_stacks()["Stacks"] if s["StackName"] == stack]
    return str(live[0]["StackStatus"]) if live else None


def _untagged(url: str) -> None:
    _deployed(url, tags=[])


def _other_fleet(url: str) -> None:
    _deployed(url, tags=[OURS[0], {"Key": "nixecs:fleet", "Value": "acme"}])


def _earlier_nixecs(url: str) -> None:
    _deployed(url, tags=[OURS[0]])


def _other_clusters_tag(url: str) -> None:
    _deployed(url, tags=[{"Key": "nixecs:cluster", "Value": "staging"}, OURS[1]])


# (setup, extra arguments, exit code, message, stack left standing, service left running)
HOSTILE = {
    "foreign stack with the same name (no tags)": (
        _untagged, [], 2,
        "refusing: destroy prod: stack nixecs-prod has no nixecs tags: nixecs did not make it",
        True, True,
    ),
    "another fleet's stack": (
        _other_fleet, [], 2,
        "refusing: destroy prod: stack nixecs-prod belongs to fleet 'acme' "
        "(nixecs:cluster=prod, nixecs:fleet=acme), not to this fleet 'default'",
        True, True,
    ),
    "another fleet's stack, --adopt does not claim it": (
        _other_fleet, ["--adopt"], 2, "belongs to fleet 'acme'", True, True,
    ),
    "a stack tagged for another cluster": (
        _other_clusters_tag, [], 2, "is tagged for another cluster", True, True,
    ),
    "an earlier nixecs's stack without --adopt": (
        _earlier_nixecs, [], 2,
        "stack nixecs-prod was made by an earlier nixecs (nixecs:cluster=prod, no "
        "nixecs:fleet); pass --adopt to claim it for fleet 'default'",
        True, True,
    ),
    "an earlier nixecs's stack with --adopt": (
        _earlier_nixecs, ["--adopt"], 0, "nixecs-prod: destroying", False, False,
    ),
    "our stack": (_deployed, [], 0, "nixecs-prod: destroying", False, False),
}  # fmt: skip


@pytest.mark.moto
@pytest.mark.parametrize("case", list(HOSTILE))
def test_destroy_touches_only_this_fleets_stacks(moto, capsys, monkeypatch, case):
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    setup, extra, code, message, stack_left, service_left = HOSTILE[case]
    setup(moto.url)
    result = run_cli(capsys, ["--endpoint-url", moto.url, "destroy", "prod", "--yes", *extra])
    assert result.code == code, result.err
    assert message in result.err
    assert (_stack_status(moto.url, "nixecs-prod") is not None) == stack_left
    (service,) = moto_client(moto.url, "ecs").describe_services(
        cluster="prod", services=["bananas"]
    )["services"]
    assert (service["status"] == "ACTIVE" and service["desiredCount"] == 2) == service_left
    if code == 2:  # refused before anything was asked or touched
        assert "destroying" not in result.err and "This deletes" not in result.err


@pytest.mark.moto
def test_another_fleets_stack_is_destroyed_with_that_fleets_file(
    moto, capsys, tmp_path, monkeypatch
):
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    fleet = write_fleet(tmp_path, ACME)
    moto_client(moto.url, "cloudformation").create_stack(
        StackName="nixecs-acme-prod",
        TemplateBody=json.dumps({"Resources": {"L": {"Type": "AWS::Logs::LogGroup"}}}),
        Tags=[
            {"Key": "nixecs:cluster", "Value": "acme-prod"},
            {"Key": "nixecs:fleet", "Value": "acme"},
        ],
    )
    refused = run_cli(capsys, ["--endpoint-url", moto.url, "destroy", "acme-prod", "--yes"])
    assert refused.code == 2, refused.err
    assert "belongs to fleet 'acme'" in refused.err and "not to this fleet 'default'" in refused.err
    assert _stack_status(moto.url, "nixecs-acme-prod") == "CREATE_COMPLETE"
    # with acme's file, `prod` means acme-prod (as in deploy --cluster) and the stack is its own
    done = run_cli(
        capsys, ["--endpoint-url", moto.url, "destroy", "prod", "--fleet", str(fleet), "--yes"]
    )
    assert done.code == 0, done.err
    assert done.out == "nixecs-acme-prod: destroyed\n"
    assert _stack_status(moto.url, "nixecs-acme-prod") is None


@pytest.mark.moto
def test_a_hand_made_ecs_cluster_of_the_same_name_is_never_touched(moto, capsys, monkeypatch):
    """No stack: nothing to do. Our stack without an ECS cluster resource (a create that
    failed early): the stack goes, the hand-made cluster `prod` and its service stay."""
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    make_services(moto.url, "prod", ["handmade"], desired=1)
    absent = run_cli(capsys, ["--endpoint-url", moto.url, "destroy", "prod", "--yes"])
    assert absent.code == 0 and absent.out == "nixecs-prod: does not exist\n"
    cfn = moto_client(moto.url, "cloudformation")
    cfn.create_stack(
        StackName="nixecs-prod",
        TemplateBody=json.dumps(
            {"Resources": {"Log": {"Type": "AWS::Logs::LogGroup", "Properties": {}}}}
        ),
        Tags=OURS,
    )
    result = run_cli(capsys, ["--endpoint-url", moto.url, "destroy", "prod", "--yes"])
    assert result.code == 0, result.err
    assert result.out == "nixecs-prod: destroyed\n" and "handmade" not in result.err
    (service,) = moto_client(moto.url, "ecs").describe_services(
        cluster="prod", services=["handmade"]
    )["services"]
    assert service["status"] == "ACTIVE" and service["desiredCount"] == 1


# Stacks in review: (tags of the pending change set, swept by `destroy --fleet`)
REVIEWS = {
    "this fleet's declined first deploy": ([dict(OURS[0], Value="staging"), OURS[1]], True),
    "another fleet's pending change set": (
        [dict(OURS[0], Value="staging"), {"Key": "nixecs:fleet", "Value": "acme"}], False,
    ),
    "a pending change set without nixecs tags": ([], False),
}  # fmt: skip


@pytest.mark.moto
@pytest.mark.parametrize("case", list(REVIEWS))
def test_the_review_sweep_takes_only_this_fleets_reviews(moto, capsys, monkeypatch, tmp_path, case):
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    tags, swept = REVIEWS[case]
    _in_review(moto.url, "nixecs-staging", tags)
    _in_review(moto.url, "nixecs-other", [])  # a cluster this fleet does not declare
    fleet = write_fleet(tmp_path, FLEET.replace("  prod:", "  staging:"))
    # without --fleet there is no sweep at all: no nixecs-* review is assumed to be ours
    bare = run_cli(capsys, ["--endpoint-url", moto.url, "destroy", "--yes"])
    assert bare.code == 0 and "nothing to destroy" in bare.err
    result = run_cli(
        capsys, ["--endpoint-url", moto.url, "destroy", "--fleet", str(fleet), "--yes"]
    )
    assert result.code == 0, result.err
    assert _stack_status(moto.url, "nixecs-other") == "REVIEW_IN_PROGRESS"
    if swept:
        assert result.out == "nixecs-staging: destroyed\n"
        assert _stack_status(moto.url, "nixecs-staging") is None
    else:
        assert "left alone: stack nixecs-staging" in result.err and result.out == ""
        assert _stack_status(moto.url, "nixecs-staging") == "REVIEW_IN_PROGRESS"
        # and named explicitly, it is refused
        named = run_cli(
            capsys,
            ["--endpoint-url", moto.url, "destroy", "staging", "--fleet", str(fleet), "--yes"],
        )
        assert named.code == 2 and "refusing: destroy staging: stack nixecs-staging" in named.err
        assert _stack_status(moto.url, "nixecs-staging") == "REVIEW_IN_PROGRESS"


@pytest.mark.moto
def test_a_service_made_by_hand_in_our_cluster_is_refused_not_deleted(moto, capsys, monkeypatch):
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    _deployed(moto.url)
    ecs = moto_client(moto.url, "ecs")
    ecs.register_task_definition(
        family="theirs", containerDefinitions=[{"name": "a", "image": "nginx", "memory": 64}]
    )
    ecs.create_service(
        cluster="prod", serviceName="handmade", taskDefinition="theirs", desiredCount=1
    )
    result = run_cli(capsys, ["--endpoint-url", moto.url, "destroy", "prod", "--yes"])
    assert result.code == 2, result.err
    assert (
        "refusing: destroy prod: ECS cluster prod runs services that stack nixecs-prod did not "
        "create: handmade; delete or move them first"
    ) in result.err
    services = ecs.describe_services(cluster="prod", services=["bananas", "handmade"])["services"]
    assert [(s["serviceName"], s["status"], s["desiredCount"]) for s in services] == [
        ("bananas", "ACTIVE", 2),
        ("handmade", "ACTIVE", 1),
    ]
    assert _stack_status(moto.url, "nixecs-prod") == "CREATE_COMPLETE"


# -- destroy finishes, or says exactly what blocks it ----------------------


@pytest.mark.moto
def test_destroy_stops_standalone_tasks_and_removes_standby_instances(moto, capsys, monkeypatch):
    """A RunTask/StartTask task belongs to no service and a Standby instance is outside the
    desired capacity: scaling to zero alone would leave both, and destroy would time out."""
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    _deployed(moto.url)
    autoscaling = moto_client(moto.url, "autoscaling")
    ecs = moto_client(moto.url, "ecs")
    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[ASG])[
        "AutoScalingGroups"
    ]
    first, second = sorted(i["InstanceId"] for i in group["Instances"])
    document = json.dumps({"instanceId": first, "region": "us-east-1"})
    registered = ecs.register_container_instance(cluster="prod", instanceIdentityDocument=document)
    arn = registered["containerInstance"]["containerInstanceArn"]
    started = ecs.start_task(
        cluster="prod", taskDefinition="nixecs-prod-bananas", containerInstances=[arn]
    )
    task = started["tasks"][0]["taskArn"]
    autoscaling.enter_standby(
        AutoScalingGroupName=ASG, InstanceIds=[second], ShouldDecrementDesiredCapacity=True
    )
    (group,) = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[ASG])[
        "AutoScalingGroups"
    ]
    assert {i["InstanceId"]: i["LifecycleState"] for i in group["Instances"]}[second] == "Standby"

    result = run_cli(capsys, ["--endpoint-url", moto.url, "destroy", "prod", "--yes"])
    assert result.code == 0, result.err
    assert "cluster prod: 1 standalone task(s) stopped" in result.err
    assert f"group {ASG}: 1 standby instance(s) back in service" in result.err
    (stopped,) = ecs.describe_tasks(cluster="prod", tasks=[task])["tasks"]
    assert stopped["desiredStatus"] == "STOPPED"
    assert moto_client(moto.url, "cloudformation").describe_stacks()["Stacks"] == []


def test_pending_lifecycle_actions_are_completed_on_every_hook(stubbed):
    """Instances held in Terminating:Wait by nixecs-drain and by ECS's managed-draining hook
    (3600 s heartbeat) are released with CONTINUE on both; a Pending:Wait one is abandoned on
    the launching hook; an action no longer active is done (moto lacks the calls: Stubber)."""
    from nixecs.aws import teardown

    autoscaling = stubbed("autoscaling")
    group = _group_of(["Terminating:Wait", "InService", "Pending:Wait"])
    hooks = [
        {"LifecycleHookName": "nixecs-drain", "LifecycleTransition": teardown.TERMINATING},
        {
            "LifecycleHookName": "ecs-managed-draining-termination-hook",
            "LifecycleTransition": teardown.TERMINATING,
        },
        {"LifecycleHookName": "warm-up", "LifecycleTransition": teardown.LAUNCHING},
    ]
    autoscaling.add_response(
        "describe_lifecycle_hooks", {"LifecycleHooks": hooks}, {"AutoScalingGroupName": ASG}
    )

    def complete(hook: str, instance: int, result: str) -> dict[str, str]:
        return {
            "LifecycleHookName": hook,
            "AutoScalingGroupName": ASG,
            "LifecycleActionResult": result,
            "InstanceId": f"i-{instance:017x}",
        }

    autoscaling.add_response(
        "complete_lifecycle_action", {}, complete("nixecs-drain", 0, "CONTINUE")
    )
    autoscaling.add_client_error(
        "complete_lifecycle_action",
        service_error_code="ValidationError",
        service_message="No active Lifecycle Action found with instance ID i-00000000000000000",
        http_status_code=400,
        expected_params=complete("ecs-managed-draining-termination-hook", 0, "CONTINUE"),
    )
    autoscaling.add_response("complete_lifecycle_action", {}, complete("warm-up", 2, "ABANDON"))
    session = Session(region="us-east-1")
    said: list[str] = []
    client = session.client("autoscaling")
    assert teardown.complete_pending_actions(client, group, said.append) == 2
    autoscaling.assert_no_pending_responses()
    assert said == [
        f"  group {ASG}: i-{0:017x} released from nixecs-drain (CONTINUE)",
        f"  group {ASG}: i-{2:017x} released from warm-up (ABANDON)",
    ]
    # Nothing waiting: not even the hooks are asked for.
    assert teardown.complete_pending_actions(client, _group_of(["InService"]), said.append) == 0


def test_a_group_that_does_not_empty_names_its_instances(stubbed):
    autoscaling = stubbed("autoscaling")
    stuck = _group_of(["Terminating:Wait"], protected=True)
    _expect_scaling_to_zero(autoscaling, stuck)
    autoscaling.add_response(
        "describe_auto_scaling_groups",
        {"AutoScalingGroups": [stuck]},
        {"AutoScalingGroupNames": [ASG]},
    )
    autoscaling.add_response(
        "describe_lifecycle_hooks", {"LifecycleHooks": []}, {"AutoScalingGroupName": ASG}
    )
    session = Session(region="us-east-1")
    from nixecs.diagnostics import OperationalFailure

    with pytest.raises(OperationalFailure) as caught:
        destroy_module._groups(session, [ASG], lambda _: None, 0, 0)
    assert (
        f"1 instances still terminating after 0s: i-{0:017x} ({ASG}: Terminating:Wait, "
        "protected from scale-in)" in str(caught.value)
    )
    autoscaling.assert_no_pending_responses()


def test_tasks_that_do_not_stop_are_named():
    from nixecs.aws import teardown

    tasks = [
        {
            "taskArn": f"arn:aws:ecs:us-east-1:1:task/prod/{n}",
            "group": "service:web",
            "lastStatus": "RUNNING",
        }
        for n in range(6)
    ] + [
        {
            "taskArn": "arn:aws:ecs:us-east-1:1:task/prod/x",
            "startedBy": "me",
            "lastStatus": "STOPPING",
        }
    ]
    text = teardown.task_blockers(tasks)
    assert text.startswith("arn:aws:ecs:us-east-1:1:task/prod/0 (service:web, RUNNING); ")
    assert text.endswith(" and 2 more") and text.count("(service:web, RUNNING)") == 5
    assert (
        teardown.task_blockers(tasks[-1:]) == "arn:aws:ecs:us-east-1:1:task/prod/x (me, STOPPING)"
    )
