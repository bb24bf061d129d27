"""`nixecs deploy` against moto server: change sets (create, update, no changes, reuse after
an interrupted run), stack events, failures, and verification of the scaling resources that
moto's CloudFormation skips; the failed-stack path (which moto cannot produce) with Stubber."""

from __future__ import annotations

import datetime
import json
from pathlib import Path

import pytest

from aws_fixtures import (
    make_services,
    moto_client,
    no_preflight,
    run_cli,
    small_template,
    stubbed_clients,
    write_fleet,
)
from conftest import EXAMPLES, oversized_example_fleet
from nixecs.aws import deploy as deploy_module
from nixecs.aws.deploy import Expected, change_set_name, deploy_cluster, summarize, verify_scaling
from nixecs.aws.session import Session
from nixecs.diagnostics import OperationalFailure

_stubbed = pytest.fixture(name="stubbed")(stubbed_clients)


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(
        deploy_module, "render_template", lambda model, cluster: small_template(model, cluster)
    )
    no_preflight(monkeypatch)
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    return write_fleet(tmp_path)


def _change_sets(url: str, stack: str = "nixecs-prod") -> list[dict]:
    return moto_client(url, "cloudformation").list_change_sets(StackName=stack)["Summaries"]


@pytest.mark.moto
def test_create_then_no_changes_then_modify(moto, fleet, capsys, monkeypatch):
    base = ["--endpoint-url", moto.url, "deploy", str(fleet), "--yes"]
    first = run_cli(capsys, base)
    assert first.code == 0, first.err
    assert "  + add      Cluster " in first.out and "AWS::ECS::Cluster" in first.out
    assert "BananasTarget" in first.out  # the summary lists what the template asks for ...
    assert "nixecs-prod: created (CREATE_COMPLETE)" in first.out
    # ... but moto never made the scaling resources: a warning in local mode, naming each
    assert "warning: nixecs-prod: not found through their own APIs" in first.err
    assert "scalable target service/prod/bananas" in first.err
    assert "alarm nixecs-prod-bananas-cpu-high" in first.err
    assert "CREATE_COMPLETE" in first.err  # stack events streamed
    cfn = moto_client(moto.url, "cloudformation")
    assert (
        cfn.describe_stacks(StackName="nixecs-prod")["Stacks"][0]["StackStatus"]
        == "CREATE_COMPLETE"
    )
    assert (
        moto_client(moto.url, "ecs").describe_clusters(clusters=["prod"])["clusters"][0]["status"]
        == "ACTIVE"
    )

    second = run_cli(capsys, base)
    assert second.code == 0, second.err
    assert second.out.strip().endswith("nixecs-prod: no changes")
    # the FAILED "no changes" change set is cleaned up (as is the stale executed one of the
    # same name, which AWS itself drops after execution)
    assert _change_sets(moto.url) == []

    monkeypatch.setattr(
        deploy_module, "render_template", lambda m, c: small_template(m, c, marker="2")
    )
    third = run_cli(capsys, ["--output", "json", *base])
    assert third.code == 0, third.err
    document = third.json()
    (cluster,) = document["clusters"]
    assert cluster["outcome"] == "updated" and cluster["stack_status"] == "UPDATE_COMPLETE"
    actions = {c["logical_id"]: c["action"] for c in cluster["changes"]}
    assert actions == {"Marker": "Modify"}
    assert cluster["missing"]  # reported in the JSON too
    marker = moto_client(moto.url, "ssm").get_parameter(Name="/nixecs/prod/marker")["Parameter"]
    assert marker["Value"] == "v2"


@pytest.mark.moto
def test_declined_change_set_is_reused_by_the_next_run(moto, fleet, capsys):
    declined = run_cli(capsys, ["--endpoint-url", moto.url, "deploy", str(fleet)], stdin="n\n")
    assert declined.code == 1 and "aborted" in declined.err
    (pending,) = _change_sets(moto.url)
    assert pending["ExecutionStatus"] == "AVAILABLE"
    accepted = run_cli(capsys, ["--endpoint-url", moto.url, "deploy", str(fleet)], stdin="y\n")
    assert accepted.code == 0, accepted.err
    (executed,) = _change_sets(moto.url)  # the same change set, not a second one
    assert executed["ChangeSetName"] == pending["ChangeSetName"]
    assert executed["ExecutionStatus"] == "EXECUTE_COMPLETE"


@pytest.mark.moto
def test_no_wait_returns_after_executing(moto, fleet, capsys):
    result = run_cli(
        capsys, ["--endpoint-url", moto.url, "deploy", str(fleet), "--yes", "--no-wait"]
    )
    assert result.code == 0, result.err
    assert "change set executing (not waiting)" in result.out
    assert "warning" not in result.err  # nothing verified without waiting


@pytest.mark.moto
def test_unknown_cluster_is_a_usage_error(moto, fleet, capsys):
    result = run_cli(
        capsys, ["--endpoint-url", moto.url, "deploy", str(fleet), "--cluster", "nope", "--yes"]
    )
    assert result.code == 2 and "no cluster nope" in result.err


@pytest.mark.moto
def test_a_rejected_template_is_one_line_exit_1(moto, fleet, capsys, monkeypatch):
    bad = '{"Resources": {"P": {"Type": "AWS::SSM::Parameter", "Properties": {"Type": "String", "Value": {"Fn::GetAtt": ["Nope", "Arn"]}}}}}'
    monkeypatch.setattr(deploy_module, "render_template", lambda m, c: bad)
    result = run_cli(capsys, ["--endpoint-url", moto.url, "deploy", str(fleet), "--yes"])
    assert result.code == 1
    assert "cloudformation ExecuteChangeSet failed: ValidationError" in result.err
    assert "Traceback" not in result.err


@pytest.mark.moto
def test_verify_finds_scaling_resources_through_their_apis(moto):
    session = Session(region="us-east-1", endpoint_url=moto.url)
    expected = Expected(
        targets={"service/prod/bananas": 2, "service/prod/apples": 1},
        alarms=["nixecs-prod-bananas-cpu-high", "nixecs-prod-bananas-cpu-low"],
    )
    assert verify_scaling(session, expected) == [
        "scalable target service/prod/apples",
        "scaling policies of service/prod/apples (0 of 1)",
        "scalable target service/prod/bananas",
        "scaling policies of service/prod/bananas (0 of 2)",
        "alarm nixecs-prod-bananas-cpu-high",
        "alarm nixecs-prod-bananas-cpu-low",
    ]
    make_services(moto.url, "prod", ["bananas", "apples"])
    aas = moto_client(moto.url, "application-autoscaling")
    cloudwatch = moto_client(moto.url, "cloudwatch")
    for resource in ("service/prod/bananas", "service/prod/apples"):
        aas.register_scalable_target(
            ServiceNamespace="ecs",
            ResourceId=resource,
            ScalableDimension="ecs:service:DesiredCount",
            MinCapacity=1,
            MaxCapacity=4,
        )
    for name in ("cpu-high", "cpu-low"):
        aas.put_scaling_policy(
            PolicyName=name,
            ServiceNamespace="ecs",
            ResourceId="service/prod/bananas",
            ScalableDimension="ecs:service:DesiredCount",
            PolicyType="StepScaling",
            StepScalingPolicyConfiguration={
                "AdjustmentType": "ChangeInCapacity",
                "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
            },
        )
        cloudwatch.put_metric_alarm(
            AlarmName=f"nixecs-prod-bananas-{name}",
            MetricName="CPUUtilization",
            Namespace="AWS/ECS",
            Statistic="Average",
            Period=300,
            EvaluationPeriods=1,
            Threshold=80,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
        )
    assert verify_scaling(session, expected) == ["scaling policies of service/prod/apples (0 of 1)"]


@pytest.mark.moto
def test_missing_scaling_resources_fail_against_real_aws(moto, fleet, capsys, monkeypatch):
    monkeypatch.setattr(Session, "local", property(lambda self: False))
    result = run_cli(capsys, ["--endpoint-url", moto.url, "deploy", str(fleet), "--yes"])
    assert result.code == 1
    assert (
        "nixecs: error: nixecs-prod: missing after deploy: scalable target service/prod/bananas"
        in result.err
    )


def test_change_set_name_is_stable_and_content_derived():
    assert change_set_name("a") == change_set_name("a") != change_set_name("b")
    assert len(change_set_name("a")) <= 128


def test_summary_lines():
    from nixecs.aws.deploy import Change

    lines = summarize(
        [
            Change("Add", "Cluster", "AWS::ECS::Cluster", ""),
            Change("Modify", "WebTemplate", "AWS::EC2::LaunchTemplate", "False"),
            Change("Modify", "WebGroup", "AWS::AutoScaling::AutoScalingGroup", "True"),
            Change("Remove", "Old", "AWS::IAM::Role", ""),
        ]
    )
    assert lines[0].split() == ["+", "Add", "Cluster", "AWS::ECS::Cluster"]
    assert lines[2].split()[-2:] == ["replacement:", "True"]
    assert lines[3].split()[:2] == ["-", "Remove"]
    assert lines[-1].strip() == "1 to add, 2 to modify, 1 to remove"


def _stack(status: str) -> dict:
    return {
        "StackName": "nixecs-prod",
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/nixecs-prod/1",
        "StackStatus": status,
        "CreationTime": datetime.datetime(2026, 1, 1),
        "Tags": [
            {"Key": "nixecs:cluster", "Value": "prod"},
            {"Key": "nixecs:fleet", "Value": "default"},
        ],
    }


def _event(n: int, logical: str, kind: str, status: str, reason: str = "") -> dict:
    event = {
        "StackId": "s",
        "EventId": f"e{n}",
        "StackName": "nixecs-prod",
        "LogicalResourceId": logical,
        "ResourceType": kind,
        "ResourceStatus": status,
        "Timestamp": datetime.datetime(2026, 1, 1, 12, 0, n),
    }
    if reason:
        event["ResourceStatusReason"] = reason
    return event


def test_failed_stack_names_the_failing_resource_and_reason(stubbed):
    """moto never leaves a stack ROLLBACK_COMPLETE, so the failure path runs on a Stubber with
    the exact requests deploy makes."""
    body = '{"Resources": {}}'
    name = change_set_name(body)
    cfn = stubbed("cloudformation")
    missing = {"StackName": "nixecs-prod"}
    cfn.add_client_error(
        "describe_stacks",
        "ValidationError",
        "Stack with id nixecs-prod does not exist",
        400,
        expected_params=missing,
    )
    cfn.add_response(
        "create_change_set",
        {"Id": "cs", "StackId": "s"},
        {
            "StackName": "nixecs-prod",
            "ChangeSetName": name,
            "ChangeSetType": "CREATE",
            "TemplateBody": body,
            "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
            "ClientToken": name,
            "Description": "nixecs deploy of cluster prod",
            "Tags": [
                {"Key": "nixecs:cluster", "Value": "prod"},
                {"Key": "nixecs:fleet", "Value": "default"},
            ],
        },
    )
    change = {
        "Type": "Resource",
        "ResourceChange": {
            "Action": "Add",
            "LogicalResourceId": "WebGroup",
            "ResourceType": "AWS::AutoScaling::AutoScalingGroup",
        },
    }
    cs = {"StackName": "nixecs-prod", "ChangeSetName": name}
    cfn.add_response(
        "describe_change_set", {"Status": "CREATE_PENDING", "ExecutionStatus": "UNAVAILABLE"}, cs
    )
    cfn.add_response(
        "describe_change_set",
        {"Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE", "Changes": [change]},
        cs,
    )
    cfn.add_response("execute_change_set", {}, {**cs, "ClientRequestToken": name})
    cfn.add_response("describe_stacks", {"Stacks": [_stack("CREATE_IN_PROGRESS")]}, missing)
    started = [
        _event(
            1, "nixecs-prod", "AWS::CloudFormation::Stack", "CREATE_IN_PROGRESS", "User Initiated"
        )
    ]
    cfn.add_response("describe_stack_events", {"StackEvents": started}, missing)
    cfn.add_response("describe_stacks", {"Stacks": [_stack("ROLLBACK_COMPLETE")]}, missing)
    later = [
        _event(6, "nixecs-prod", "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE"),
        _event(5, "WebGroup", "AWS::AutoScaling::AutoScalingGroup", "DELETE_COMPLETE"),
        _event(
            4,
            "nixecs-prod",
            "AWS::CloudFormation::Stack",
            "ROLLBACK_IN_PROGRESS",
            "The following resource(s) failed to create: [WebGroup].",
        ),
        _event(
            3,
            "WebGroup",
            "AWS::AutoScaling::AutoScalingGroup",
            "CREATE_FAILED",
            "You must use a valid fully-formed launch template.",
        ),
        _event(2, "WebGroup", "AWS::AutoScaling::AutoScalingGroup", "CREATE_IN_PROGRESS"),
        *started,
    ]
    cfn.add_response("describe_stack_events", {"StackEvents": later}, missing)

    lines: list[str] = []
    with pytest.raises(OperationalFailure) as failure:
        deploy_cluster(
            Session(region="us-east-1"),
            "prod",
            body,
            confirm=lambda r: True,
            say=lines.append,
            poll=0,
        )
    assert str(failure.value) == (
        "deploy prod: stack nixecs-prod ended ROLLBACK_COMPLETE: WebGroup (AWS::AutoScaling::AutoScalingGroup) "
        "CREATE_FAILED: You must use a valid fully-formed launch template."
    )
    cfn.assert_no_pending_responses()


def test_a_stack_left_rolled_back_is_deleted_and_created_again(stubbed):
    """A failed create leaves ROLLBACK_COMPLETE, which cannot be updated: deploy deletes the
    stack (saying so) and creates it again. moto cannot put a stack in that state: Stubber."""
    body = '{"Resources": {}}'
    name = change_set_name(body)
    cfn = stubbed("cloudformation")
    stack = {"StackName": "nixecs-prod"}
    old = [_event(1, "nixecs-prod", "AWS::CloudFormation::Stack", "ROLLBACK_COMPLETE")]
    cfn.add_response("describe_stacks", {"Stacks": [_stack("ROLLBACK_COMPLETE")]}, stack)
    cfn.add_response("describe_stack_events", {"StackEvents": old}, stack)
    cfn.add_response("delete_stack", {}, {**stack, "ClientRequestToken": f"{name}-delete"})
    cfn.add_response("describe_stacks", {"Stacks": [_stack("DELETE_IN_PROGRESS")]}, stack)
    cfn.add_response("describe_stack_events", {"StackEvents": old}, stack)
    cfn.add_client_error(
        "describe_stacks",
        "ValidationError",
        "Stack with id nixecs-prod does not exist",
        400,
        expected_params=stack,
    )
    cfn.add_response(
        "create_change_set",
        {"Id": "cs", "StackId": "s"},
        {
            "StackName": "nixecs-prod",
            "ChangeSetName": name,
            "ChangeSetType": "CREATE",
            "TemplateBody": body,
            "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
            "ClientToken": name,
            "Description": "nixecs deploy of cluster prod",
            "Tags": [
                {"Key": "nixecs:cluster", "Value": "prod"},
                {"Key": "nixecs:fleet", "Value": "default"},
            ],
        },
    )
    cs = {"StackName": "nixecs-prod", "ChangeSetName": name}
    cfn.add_response(
        "describe_change_set",
        {"Status": "CREATE_COMPLETE", "ExecutionStatus": "AVAILABLE", "Changes": []},
        cs,
    )
    cfn.add_response("execute_change_set", {}, {**cs, "ClientRequestToken": name})
    cfn.add_response("describe_stacks", {"Stacks": [_stack("CREATE_COMPLETE")]}, stack)
    new = [_event(3, "nixecs-prod", "AWS::CloudFormation::Stack", "CREATE_COMPLETE")]
    cfn.add_response("describe_stack_events", {"StackEvents": new}, stack)

    lines: list[str] = []
    result = deploy_cluster(
        Session(region="us-east-1"), "prod", body, confirm=lambda r: True, say=lines.append, poll=0
    )
    assert (result.outcome, result.status) == ("created", "CREATE_COMPLETE")
    assert lines == [
        "nixecs-prod: ROLLBACK_COMPLETE after a failed create; deleting it before creating it again"
    ]
    cfn.assert_no_pending_responses()


@pytest.mark.moto
def test_templates_over_the_inline_limit_go_through_s3(moto, fleet, capsys, monkeypatch):
    def big(model, cluster):
        template = json.loads(small_template(model, cluster))
        template["Metadata"] = {"Padding": "x" * 60_000}  # a cluster with many services
        return json.dumps(template)

    monkeypatch.setattr(deploy_module, "render_template", big)
    refused = run_cli(capsys, ["--endpoint-url", moto.url, "deploy", str(fleet), "--yes"])
    assert refused.code == 2 and "pass --template-bucket BUCKET" in refused.err
    s3 = moto_client(moto.url, "s3")
    s3.create_bucket(Bucket="templates")
    argv = [
        "--endpoint-url",
        moto.url,
        "deploy",
        str(fleet),
        "--yes",
        "--template-bucket",
        "templates",
    ]
    done = run_cli(capsys, argv)
    assert done.code == 0, done.err
    assert "nixecs-prod: created (CREATE_COMPLETE)" in done.out
    (stored,) = s3.list_objects_v2(Bucket="templates")["Contents"]
    assert stored["Key"].startswith("nixecs/templates/nixecs-prod/") and stored["Size"] > 60_000
    again = run_cli(capsys, argv)
    assert again.code == 0 and again.out.strip().endswith("nixecs-prod: no changes")
    assert (
        len(s3.list_objects_v2(Bucket="templates")["Contents"]) == 1
    )  # content-addressed, not copied again


@pytest.mark.moto
def test_scaling_rule_errors_stop_the_deploy_and_warnings_do_not(moto, fleet, capsys):
    text = fleet.read_text()
    overlapping = text.replace(
        "- {lower: 0, change: 2}",
        "- {lower: 0, change: 2}\n                - {lower: 5, change: 3}",
    )
    fleet.write_text(overlapping)
    refused = run_cli(capsys, ["--endpoint-url", moto.url, "deploy", str(fleet), "--yes"])
    assert refused.code == 2 and "error[E201]" in refused.err
    assert moto_client(moto.url, "cloudformation").describe_stacks()["Stacks"] == []
    # the article's mistake: a -1 step under a ">=" alarm can never run (a warning, deployed anyway)
    unreachable = text.replace(
        "- {lower: 0, change: 2}",
        "- {lower: 0, change: 2}\n                - {upper: 0, change: -1}",
    )
    fleet.write_text(unreachable)
    warned = run_cli(capsys, ["--endpoint-url", moto.url, "deploy", str(fleet), "--yes"])
    assert warned.code == 0, warned.err
    assert "warning[W201]" in warned.err and "nixecs-prod: created" in warned.out


def test_the_real_template_is_rendered_and_checked_against_quotas(tmp_path, monkeypatch):
    import nixecs.cloudformation
    from nixecs.diagnostics import InvalidInput
    from nixecs.fleet import load_fleet

    model = load_fleet(write_fleet(tmp_path))
    body = deploy_module.render_template(model, "prod")
    assert "AWS::ECS::Cluster" in body and body == deploy_module.render_template(model, "prod")
    monkeypatch.setattr(
        nixecs.cloudformation, "limit_problems", lambda template: ["600 resources, over the quota"]
    )
    with pytest.raises(InvalidInput) as caught:
        deploy_module.render_template(model, "prod")
    (diagnostic,) = caught.value.report.errors
    assert (
        diagnostic.code == "E115"
        and "nixecs-prod: 600 resources, over the quota" in diagnostic.message
    )
    assert diagnostic.location.line == 5  # the cluster's key in the fleet file


def test_deploy_refuses_what_validate_refuses_before_asking_aws(tmp_path, capsys):
    """Oversized userdata (E111) stops a deploy with the located error and exit 2, before
    any AWS call: the endpoint given here does not exist."""
    from nixecs.cli import run

    fleet = oversized_example_fleet(tmp_path)
    code = run(["--endpoint-url", "http://127.0.0.1:9", "deploy", str(fleet), "--yes"])
    err = capsys.readouterr().err
    assert code == 2, err
    # at the workers group's `userdata:` key, wherever the example has it
    lines = (EXAMPLES / "fleet.yml").read_text().splitlines()
    at = next(n for n, x in enumerate(lines, 1) if x == "        userdata: nix")
    assert f"{fleet}:{at}:9: error[E111]: userdata of prod/workers" in err
    assert "internal error" not in err
