"""`nixecs roll` with botocore's Stubber (moto has no instance refresh): the exact
StartInstanceRefresh request, progress until the end, exit codes by outcome, following a
refresh already running, and auto rollback only where AWS allows it."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from aws_fixtures import run_cli, stubbed_clients
from nixecs.aws.roll import parse_checkpoints

_stubbed = pytest.fixture(name="stubbed")(stubbed_clients)

ASG = "nixecs-prod-web"


def _tag(key: str, value: str) -> dict[str, Any]:
    return {
        "ResourceId": ASG,
        "ResourceType": "auto-scaling-group",
        "Key": key,
        "Value": value,
        "PropagateAtLaunch": True,
    }


def _expect_stack(stubbed: Any, tags: dict[str, str] | None = None) -> None:
    """The cluster's stack, as `deploy` tags it (the ownership check reads it first)."""
    if tags is None:
        tags = {"nixecs:cluster": "prod", "nixecs:fleet": "default"}
    stubbed("cloudformation").add_response(
        "describe_stacks",
        {
            "Stacks": [
                {
                    "StackName": "nixecs-prod",
                    "CreationTime": datetime.datetime(2026, 1, 1),
                    "StackStatus": "UPDATE_COMPLETE",
                    "Tags": [{"Key": k, "Value": v} for k, v in tags.items()],
                }
            ]
        },
        {"StackName": "nixecs-prod"},
    )


def _group(version: str = "3", mixed: bool = False) -> dict[str, Any]:
    group: dict[str, Any] = {
        "AutoScalingGroupName": ASG,
        "MinSize": 1,
        "MaxSize": 4,
        "DesiredCapacity": 2,
        "DefaultCooldown": 300,
        "AvailabilityZones": ["us-east-1a"],
        "HealthCheckType": "EC2",
        "CreatedTime": datetime.datetime(2026, 1, 1),
        "Tags": [_tag("nixecs:cluster", "prod"), _tag("nixecs:group", "web")],
    }
    spec = {"LaunchTemplateId": "lt-0abc", "LaunchTemplateName": ASG, "Version": version}
    if mixed:
        group["MixedInstancesPolicy"] = {
            "LaunchTemplate": {
                "LaunchTemplateSpecification": spec,
                "Overrides": [{"InstanceType": "c6i.large"}, {"InstanceType": "c5.large"}],
            },
            "InstancesDistribution": {"OnDemandPercentageAboveBaseCapacity": 0},
        }
    else:
        group["LaunchTemplate"] = spec
    return group


def _refresh(status: str, percent: int, reason: str = "") -> dict[str, Any]:
    refresh: dict[str, Any] = {
        "InstanceRefreshId": "r-1",
        "AutoScalingGroupName": ASG,
        "Status": status,
        "PercentageComplete": percent,
        "InstancesToUpdate": (100 - percent) // 50,
    }
    if reason:
        refresh["StatusReason"] = reason
    return refresh


def _expect_start(
    stubbed: Any,
    group: dict[str, Any],
    preferences: dict[str, Any],
    desired: dict[str, Any],
    stack_tags: dict[str, str] | None = None,
) -> Any:
    autoscaling = stubbed("autoscaling")
    ec2 = stubbed("ec2")
    autoscaling.add_response(
        "describe_auto_scaling_groups",
        {"AutoScalingGroups": [group]},
        {"AutoScalingGroupNames": [ASG]},
    )
    _expect_stack(stubbed, stack_tags)
    autoscaling.add_response(
        "describe_instance_refreshes", {"InstanceRefreshes": []}, {"AutoScalingGroupName": ASG}
    )
    ec2.add_response(
        "describe_launch_templates",
        {
            "LaunchTemplates": [
                {"LaunchTemplateId": "lt-0abc", "LaunchTemplateName": ASG, "LatestVersionNumber": 4}
            ]
        },
        {"LaunchTemplateIds": ["lt-0abc"]},
    )
    autoscaling.add_response(
        "start_instance_refresh",
        {"InstanceRefreshId": "r-1"},
        {
            "AutoScalingGroupName": ASG,
            "Strategy": "Rolling",
            "DesiredConfiguration": desired,
            "Preferences": preferences,
        },
    )
    return autoscaling


def _expect_progress(autoscaling: Any, *states: dict[str, Any]) -> None:
    for state in states:
        autoscaling.add_response(
            "describe_instance_refreshes",
            {"InstanceRefreshes": [state]},
            {"AutoScalingGroupName": ASG, "InstanceRefreshIds": ["r-1"]},
        )


# the defaults: protected instances (running tasks) are replaced, standby ones left alone
BUSY = {"ScaleInProtectedInstances": "Refresh", "StandbyInstances": "Ignore"}

LT4 = {"LaunchTemplate": {"LaunchTemplateId": "lt-0abc", "Version": "4"}}


def test_roll_starts_a_refresh_with_exact_preferences_and_succeeds(stubbed, capsys):
    preferences = {
        "MinHealthyPercentage": 90,
        "SkipMatching": True,
        "AutoRollback": True,
        **BUSY,
        "CheckpointPercentages": [50, 100],
        "CheckpointDelay": 600,
    }
    autoscaling = _expect_start(stubbed, _group("3"), preferences, LT4)
    _expect_progress(
        autoscaling, _refresh("Pending", 0), _refresh("InProgress", 50), _refresh("Successful", 100)
    )
    result = run_cli(
        capsys, ["--region", "us-east-1", "roll", "prod/web", "--checkpoints", "50,100"]
    )
    assert result.code == 0, result.err
    assert result.out == f"{ASG} (us-east-1): instance refresh r-1 Successful (100%)\n"
    assert "instance refresh" in result.err and "InProgress" in result.err  # progress on stderr
    autoscaling.assert_no_pending_responses()
    stubbed("ec2").assert_no_pending_responses()


@pytest.mark.parametrize("outcome", ["Failed", "Cancelled", "RollbackSuccessful"])
def test_roll_exits_1_unless_successful(stubbed, capsys, outcome):
    preferences = {"MinHealthyPercentage": 75, "SkipMatching": True, "AutoRollback": False, **BUSY}
    autoscaling = _expect_start(stubbed, _group("3"), preferences, LT4)
    _expect_progress(
        autoscaling,
        _refresh("InProgress", 50),
        _refresh(outcome, 50, "instances failed health checks"),
    )
    result = run_cli(
        capsys,
        [
            "--region",
            "us-east-1",
            "--output",
            "json",
            "roll",
            "prod/web",
            "--min-healthy",
            "75",
            "--no-rollback",
        ],
    )
    assert result.code == 1
    document = result.json()
    assert document["region"] == "us-east-1"
    assert (
        document["status"] == outcome
        and document["status_reason"] == "instances failed health checks"
    )
    autoscaling.assert_no_pending_responses()


def test_no_auto_rollback_while_the_group_follows_latest(stubbed, capsys):
    preferences = {"MinHealthyPercentage": 90, "SkipMatching": True, "AutoRollback": False, **BUSY}
    autoscaling = _expect_start(stubbed, _group("$Latest"), preferences, LT4)
    _expect_progress(autoscaling, _refresh("Successful", 100))
    result = run_cli(capsys, ["--region", "us-east-1", "roll", "prod/web"])
    assert result.code == 0, result.err
    assert "auto rollback is not available" in result.err
    autoscaling.assert_no_pending_responses()


def test_mixed_instances_groups_keep_their_overrides(stubbed, capsys):
    preferences = {"MinHealthyPercentage": 90, "SkipMatching": True, "AutoRollback": True, **BUSY}
    desired = {
        "MixedInstancesPolicy": {
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateId": "lt-0abc", "Version": "4"},
                "Overrides": [{"InstanceType": "c6i.large"}, {"InstanceType": "c5.large"}],
            },
            "InstancesDistribution": {"OnDemandPercentageAboveBaseCapacity": 0},
        }
    }
    autoscaling = _expect_start(stubbed, _group("2", mixed=True), preferences, desired)
    result = run_cli(capsys, ["--region", "us-east-1", "roll", "prod/web", "--no-wait"])
    assert result.code == 0, result.err
    assert "r-1" in result.out
    autoscaling.assert_no_pending_responses()


def test_a_refresh_already_running_is_followed_not_duplicated(stubbed, capsys):
    autoscaling = stubbed("autoscaling")
    autoscaling.add_response(
        "describe_auto_scaling_groups",
        {"AutoScalingGroups": [_group()]},
        {"AutoScalingGroupNames": [ASG]},
    )
    _expect_stack(stubbed)
    autoscaling.add_response(
        "describe_instance_refreshes",
        {
            "InstanceRefreshes": [
                _refresh("Successful", 100) | {"InstanceRefreshId": "r-0"},
                _refresh("InProgress", 30),
            ]
        },
        {"AutoScalingGroupName": ASG},
    )
    _expect_progress(autoscaling, _refresh("Successful", 100))  # no StartInstanceRefresh stubbed
    result = run_cli(capsys, ["--region", "us-east-1", "roll", "prod/web"])
    assert result.code == 0, result.err
    assert "following instance refresh r-1 already in progress" in result.err
    autoscaling.assert_no_pending_responses()


def test_missing_group_and_bad_arguments(stubbed, capsys):
    autoscaling = stubbed("autoscaling")
    autoscaling.add_response(
        "describe_auto_scaling_groups", {"AutoScalingGroups": []}, {"AutoScalingGroupNames": [ASG]}
    )
    missing = run_cli(capsys, ["--region", "us-east-1", "roll", "prod/web"])
    assert (
        missing.code == 1
        and "no Auto Scaling group nixecs-prod-web (deploy the cluster first)" in missing.err
    )
    assert run_cli(capsys, ["--region", "us-east-1", "roll", "prod"]).code == 2
    assert (
        run_cli(
            capsys, ["--region", "us-east-1", "roll", "prod/web", "--checkpoints", "100,50"]
        ).code
        == 2
    )
    assert (
        run_cli(capsys, ["--region", "us-east-1", "roll", "prod/web", "--min-healthy", "101"]).code
        == 2
    )


def test_parse_checkpoints():
    assert parse_checkpoints("50,100") == (50, 100)
    assert parse_checkpoints("") == ()
    for bad in ("0,50", "50,50", "a", "20,101"):
        with pytest.raises(ValueError):
            parse_checkpoints(bad)


def test_busy_groups_options_and_rollback_alarms_are_sent_exactly(stubbed, capsys):
    """`--protected wait` is allowed but warned about; alarms become an AlarmSpecification."""
    preferences = {
        "MinHealthyPercentage": 90,
        "SkipMatching": True,
        "AutoRollback": True,
        "ScaleInProtectedInstances": "Wait",
        "StandbyInstances": "Terminate",
        "AlarmSpecification": {"Alarms": ["nixecs-prod-5xx", "nixecs-prod-latency"]},
    }
    autoscaling = _expect_start(stubbed, _group("3"), preferences, LT4)
    _expect_progress(autoscaling, _refresh("Successful", 100))
    result = run_cli(
        capsys,
        [
            "--region",
            "us-east-1",
            "roll",
            "prod/web",
            "--protected",
            "wait",
            "--standby",
            "terminate",
            "--rollback-alarm",
            "nixecs-prod-5xx",
            "--rollback-alarm",
            "nixecs-prod-latency",
        ],
    )
    assert result.code == 0, result.err
    assert "fails the refresh after an hour" in result.err
    autoscaling.assert_no_pending_responses()


def test_bad_protected_choice_is_a_usage_error(stubbed, capsys):
    result = run_cli(capsys, ["--region", "us-east-1", "roll", "prod/web", "--protected", "later"])
    assert result.code == 2 and "later" in result.err


def _expect_group(stubbed: Any, group: dict[str, Any]) -> Any:
    autoscaling = stubbed("autoscaling")
    autoscaling.add_response(
        "describe_auto_scaling_groups",
        {"AutoScalingGroups": [group]},
        {"AutoScalingGroupNames": [ASG]},
    )
    return autoscaling


@pytest.mark.parametrize(
    ("group_tags", "stack_tags", "adopt", "refusal"),
    [
        # a group someone made by hand with our name: no nixecs tags, no stack is asked
        ({}, None, False, "nixecs-prod-web has no nixecs tags: nixecs did not make it"),
        # another fleet's group (its stack's tags propagated to it)
        (
            {"nixecs:cluster": "prod", "nixecs:fleet": "acme"},
            None,
            False,
            "nixecs-prod-web belongs to fleet 'acme' (nixecs:cluster=prod, nixecs:fleet=acme), "
            "not to this fleet 'default'; if it is yours, name its fleet file with --fleet",
        ),
        # made by another stack
        (
            {"nixecs:cluster": "prod", "aws:cloudformation:stack-name": "theirs"},
            None,
            False,
            "was made by stack theirs, not by nixecs-prod",
        ),
        # the group's tags look right, but its stack is another fleet's
        (
            {"nixecs:cluster": "prod"},
            {"nixecs:cluster": "prod", "nixecs:fleet": "acme"},
            False,
            "stack nixecs-prod belongs to fleet 'acme'",
        ),
        # an earlier nixecs's stack: only with --adopt
        (
            {"nixecs:cluster": "prod"},
            {"nixecs:cluster": "prod"},
            False,
            "made by an earlier nixecs (nixecs:cluster=prod, no nixecs:fleet); pass --adopt",
        ),
    ],
)
def test_roll_refuses_a_group_that_is_not_this_fleets(
    stubbed, capsys, group_tags, stack_tags, adopt, refusal
):
    """Like deploy and destroy: nothing is started on a group this fleet's stack did not make;
    the refusal (exit 2) names what was found. No StartInstanceRefresh is stubbed, so any
    refresh call would fail the test."""
    group = _group() | {"Tags": [_tag(k, v) for k, v in group_tags.items()]}
    autoscaling = _expect_group(stubbed, group)
    if stack_tags is not None:
        _expect_stack(stubbed, stack_tags)
    result = run_cli(capsys, ["--region", "us-east-1", "roll", "prod/web"])
    assert result.code == 2, result.err
    assert "refusing: roll prod/web: " in result.err and refusal in result.err
    assert "Traceback" not in result.err
    autoscaling.assert_no_pending_responses()
    if stack_tags is not None:
        stubbed("cloudformation").assert_no_pending_responses()


def test_roll_refuses_a_group_without_its_stack(stubbed, capsys):
    _expect_group(stubbed, _group())
    stubbed("cloudformation").add_client_error(
        "describe_stacks",
        service_error_code="ValidationError",
        service_message="Stack with id nixecs-prod does not exist",
        http_status_code=400,
        expected_params={"StackName": "nixecs-prod"},
    )
    result = run_cli(capsys, ["--region", "us-east-1", "roll", "prod/web"])
    assert result.code == 2, result.err
    assert "nixecs-prod-web has no stack nixecs-prod" in result.err


def test_roll_adopts_an_earlier_nixecs_stack_only_when_asked(stubbed, capsys):
    preferences = {"MinHealthyPercentage": 90, "SkipMatching": True, "AutoRollback": True, **BUSY}
    earlier = {"nixecs:cluster": "prod"}  # no nixecs:fleet: refused above without --adopt
    autoscaling = _expect_start(stubbed, _group("3"), preferences, LT4, stack_tags=earlier)
    result = run_cli(capsys, ["--region", "us-east-1", "roll", "prod/web", "--adopt", "--no-wait"])
    assert result.code == 0, result.err
    autoscaling.assert_no_pending_responses()
