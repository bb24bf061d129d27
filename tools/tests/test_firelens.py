"""FireLens credentials (issue 20, item 6; nixecs.fleet.firelens): an output to the
service's own log group gets its options and a task role allowed exactly the log actions on
that group; other outputs the task role does not allow draw W172."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from nixecs.cloudformation import build_stack
from nixecs.cloudformation.dump import dump_template
from nixecs.diagnostics import CODES, FIXES
from nixecs.fleet import parse
from nixecs.fleet.lints import lint_fleet
from stack_fixtures import assert_cfn_lint_clean
from test_services import HEAD

LOGS = textwrap.dedent(
    """\
    logs:
      group: web
      containers:
        app:
          image: nginx:1.27
          memory: 256
          log: {driver: awsfirelens, options: {Name: cloudwatch_logs}}
        router:
          image: public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.0
          memory: 64
          essential: false
          firelens: {type: fluentbit}
    """
)
ROLE = (
    "  task_role:\n"
    "    statements:\n"
    "      - {actions: [sqs:SendMessage], resources: [arn:aws:sqs:eu-west-1:123456789012:q]}\n"
)


def fleet_text(services: str = LOGS) -> str:
    return HEAD + textwrap.indent(services, "      ")


def resources(text: str) -> dict:
    return build_stack(parse(text, "fleet.yml"), "prod", {"web": b"#nixecs-settings v1\n{}\n"})[
        "Resources"
    ]


def one(found: dict, kind: str, suffix: str = "") -> dict:
    (resource,) = [r for n, r in found.items() if r["Type"] == kind and n.endswith(suffix)]
    return resource


GROUP_ARN = {
    "Fn::Sub": "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/nixecs/prod/logs:*"
}


def test_an_output_to_the_own_log_group_gets_its_options_and_a_task_role() -> None:
    found = resources(fleet_text())
    task = one(found, "AWS::ECS::TaskDefinition")["Properties"]
    app = task["ContainerDefinitions"][0]
    assert app["LogConfiguration"]["Options"] == {
        "Name": "cloudwatch_logs",
        "log_group_name": "/nixecs/prod/logs",
        "log_stream_prefix": "logs/",
        "region": {"Ref": "AWS::Region"},
    }
    assert "TaskRoleArn" in task
    role = one(found, "AWS::IAM::Role", "TaskRole")["Properties"]
    (policy,) = role["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Sid": "FireLensToOwnLogGroup",
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            "Resource": GROUP_ARN,
        }
    ]
    assert [d for d in lint_fleet(parse(fleet_text(), "fleet.yml")) if d.code == "W172"] == []


def test_an_existing_task_role_is_extended() -> None:
    text = fleet_text(LOGS.replace("  containers:\n", ROLE + "  containers:\n", 1))
    role = one(resources(text), "AWS::IAM::Role", "TaskRole")["Properties"]
    statements = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert [s.get("Sid") for s in statements] == [None, "FireLensToOwnLogGroup"]
    assert statements[0]["Action"] == ["sqs:SendMessage"]


def test_no_cloudwatch_output_no_role() -> None:
    text = fleet_text(LOGS.replace("Name: cloudwatch_logs", "Name: stdout"))
    found = resources(text)
    assert not [n for n, r in found.items() if n.endswith("TaskRole")]
    assert "TaskRoleArn" not in one(found, "AWS::ECS::TaskDefinition")["Properties"]
    assert [d for d in lint_fleet(parse(text, "fleet.yml")) if d.code == "W172"] == []


@pytest.mark.parametrize(
    ("options", "allowed"),
    [
        ("{Name: kinesis_firehose, delivery_stream: s}", "firehose:PutRecordBatch"),
        ("{Name: cloudwatch_logs, log_group_name: /other/group}", "logs:PutLogEvents"),
        ("{Name: s3, bucket: b}", "s3:Put*"),
    ],
)
def test_an_output_the_task_role_does_not_allow_is_w172(options: str, allowed: str) -> None:
    text = fleet_text(LOGS.replace("{Name: cloudwatch_logs}", options))
    (warning,) = [d for d in lint_fleet(parse(text, "fleet.yml")) if d.code == "W172"]
    line = text.split("\n")[warning.location.line - 1][warning.location.column - 1 :]
    assert line.startswith(options.split(",")[0][7:].rstrip("}")), line
    assert "W172" in CODES and "W172" in FIXES
    granted = ROLE.replace("sqs:SendMessage", allowed)
    with_role = fleet_text(
        LOGS.replace("{Name: cloudwatch_logs}", options).replace(
            "  containers:\n", granted + "  containers:\n", 1
        )
    )
    assert [d for d in lint_fleet(parse(with_role, "fleet.yml")) if d.code == "W172"] == []


@pytest.mark.cfnlint
def test_cfn_lint_clean_in_the_fleets_region(tmp_path: Path) -> None:
    out = tmp_path / "prod.yaml"
    out.write_text(
        dump_template(
            {"Resources": {}}
            | build_stack(
                parse(fleet_text(), "fleet.yml"), "prod", {"web": b"#nixecs-settings v1\n{}\n"}
            )
        )
    )
    assert_cfn_lint_clean([out], "eu-west-1")


S3_CONFIG = (
    "firelens: {type: fluentbit, options: {config-file-type: s3, "
    "config-file-value: arn:aws:s3:::acme-logging/fluent-bit/extra.conf}}"
)


def test_a_router_configured_from_s3_lets_the_execution_role_read_exactly_that_file() -> None:
    """The agent downloads the router's S3 configuration with the execution role's
    credentials (initializeFirelensResource: task.ExecutionCredentialsID), so that role reads
    the object and locates its bucket; nothing else."""
    text = fleet_text(LOGS.replace("firelens: {type: fluentbit}", S3_CONFIG))
    role = one(resources(text), "AWS::IAM::Role", "ExecutionRole")["Properties"]
    (policy,) = [p for p in role["Policies"] if p["PolicyName"] == "nixecs-firelens-config"]
    assert policy["PolicyDocument"]["Statement"] == [
        {
            "Sid": "ReadFireLensConfig",
            "Effect": "Allow",
            "Action": "s3:GetObject",
            "Resource": ["arn:aws:s3:::acme-logging/fluent-bit/extra.conf"],
        },
        {
            "Sid": "LocateTheirBuckets",
            "Effect": "Allow",
            "Action": "s3:GetBucketLocation",
            "Resource": ["arn:aws:s3:::acme-logging"],
        },
    ]


@pytest.mark.parametrize(
    "options",
    [
        "{type: fluentbit}",
        # a file inside the router's image: the agent reads nothing
        "{type: fluentbit, options: {config-file-type: file, config-file-value: /extra.conf}}",
    ],
)
def test_a_router_without_an_s3_configuration_gets_no_s3_grant(options: str) -> None:
    text = fleet_text(LOGS.replace("firelens: {type: fluentbit}", f"firelens: {options}"))
    role = one(resources(text), "AWS::IAM::Role", "ExecutionRole")["Properties"]
    assert [p["PolicyName"] for p in role.get("Policies", [])] == []


@pytest.mark.cfnlint
def test_an_s3_configured_router_is_cfn_lint_clean(tmp_path: Path) -> None:
    text = fleet_text(LOGS.replace("firelens: {type: fluentbit}", S3_CONFIG))
    template = build_stack(parse(text, "fleet.yml"), "prod", {"web": b"#nixecs-settings v1\n{}\n"})
    out = tmp_path / "prod.yaml"
    out.write_text(dump_template(template))
    assert_cfn_lint_clean([out], "eu-west-1")
