"""`nixecs run CLUSTER/TASK` (issue 20, item 4; nixecs.aws.run_task) against an ECS client
that answers as ECS does: RunTask on the group's capacity provider (from the task
definition's nixecs:group tag), the command override, the wait, each container's exit code
and log stream, the essential container's code as the exit status, and failures as one-line
errors (exit 1)."""

from __future__ import annotations

from typing import Any

import pytest

from aws_fixtures import run_cli
from nixecs import naming
from nixecs.aws import progress
from nixecs.aws.session import Session
from nixecs.cloudformation import build_stack
from nixecs.fleet import parse
from test_scheduled import fleet_text

ARN = "arn:aws:ecs:eu-west-1:123456789012:task/nixecs-prod/0123456789abcdef"


class Ecs:
    def __init__(
        self, tags: list[dict[str, str]], stops_after: int = 1, failures: list | None = None
    ) -> None:
        self.tags = tags
        self.stops_after = stops_after
        self.failures = failures or []
        self.run_arguments: dict[str, Any] = {}
        self.described = 0
        self.containers: list[dict[str, Any]] = [
            {"name": "sidecar", "essential": False, "logConfiguration": AWSLOGS},
            {"name": "report", "essential": True, "logConfiguration": AWSLOGS},
        ]

    def describe_task_definition(self, taskDefinition: str, include: list[str]) -> dict[str, Any]:
        assert taskDefinition == "nixecs-prod-report" and include == ["TAGS"]
        return {
            "taskDefinition": {
                "taskDefinitionArn": "arn:aws:ecs:eu-west-1:123456789012:task-definition/nixecs-prod-report:3",
                "containerDefinitions": self.containers,
            },
            "tags": self.tags,
        }

    def run_task(self, **arguments: Any) -> dict[str, Any]:
        self.run_arguments = arguments
        if self.failures:
            return {"tasks": [], "failures": self.failures}
        return {"tasks": [{"taskArn": ARN}], "failures": []}

    def describe_tasks(self, cluster: str, tasks: list[str]) -> dict[str, Any]:
        assert tasks == [ARN]
        self.described += 1
        if self.described < self.stops_after:
            return {"tasks": [{"lastStatus": "RUNNING", "containers": []}]}
        return {
            "tasks": [
                {
                    "lastStatus": "STOPPED",
                    "stoppedReason": "Essential container in task exited",
                    "containers": [
                        {"name": "sidecar", "exitCode": 0},
                        {"name": "report", "exitCode": 3},
                    ],
                }
            ]
        }


# The logConfiguration ECS holds for the stack's awslogs containers (services.py).
AWSLOGS = {
    "logDriver": "awslogs",
    "options": {
        "awslogs-group": "/nixecs/prod/report",
        "awslogs-region": "eu-west-1",
        "awslogs-stream-prefix": "report",
    },
}
GROUP_TAG = [{"key": "nixecs:cluster", "value": "prod"}, {"key": "nixecs:group", "value": "web"}]


@pytest.fixture
def ecs(monkeypatch: pytest.MonkeyPatch) -> Ecs:
    fake = Ecs(GROUP_TAG, stops_after=2)
    monkeypatch.setattr(Session, "client", lambda self, name, **kw: fake)
    monkeypatch.setattr(progress.time, "sleep", lambda seconds: None)
    return fake


def test_run_starts_one_task_on_the_groups_capacity_provider(ecs: Ecs, capsys) -> None:
    done = run_cli(capsys, ["--region", "eu-west-1", "run", "prod/report"])
    assert done.code == 0, done.out + done.err
    arguments = ecs.run_arguments
    assert arguments["capacityProviderStrategy"] == [
        {"capacityProvider": naming.group_resource_name("prod", "web"), "weight": 1, "base": 0}
    ]
    assert arguments["count"] == 1 and arguments["cluster"] == naming.ecs_cluster_name("prod")
    assert "overrides" not in arguments and ecs.described == 0
    assert ARN in done.out + done.err


def test_wait_reports_every_container_and_exits_with_the_essential_ones_code(
    ecs: Ecs, capsys
) -> None:
    argv = ["--region", "eu-west-1", "run", "prod/report", "--command", "sh -c 'exit 3'", "--wait"]
    done = run_cli(capsys, argv)
    assert done.code == 3, done.out + done.err
    assert ecs.run_arguments["overrides"] == {
        "containerOverrides": [{"name": "report", "command": ["sh", "-c", "exit 3"]}]
    }
    assert ecs.described == 2
    text = done.out + done.err
    assert "sidecar: exit code 0; logs: /nixecs/prod/report report/sidecar/0123456789abcdef" in text
    assert "report: exit code 3; logs: /nixecs/prod/report report/report/0123456789abcdef" in text


def firelens(**options: str) -> dict[str, Any]:
    return {"logDriver": "awsfirelens", "options": options}


@pytest.mark.parametrize(
    ("log", "where"),
    [
        # the stack's FireLens output to the task's own group (cloudformation/services.py):
        # the agent tags records CONTAINER-firelens-TASK-ID, the plugin appends the tag
        (
            firelens(
                Name="cloudwatch_logs",
                log_group_name="/nixecs/prod/report",
                log_stream_prefix="report/",
                region="eu-west-1",
            ),
            "/nixecs/prod/report report/report-firelens-0123456789abcdef",
        ),
        (
            firelens(Name="cloudwatch", log_group_name="/other", log_stream_name="fixed"),
            "/other fixed",
        ),
        (
            firelens(Name="kinesis_firehose", delivery_stream="s"),
            "through FireLens to kinesis_firehose",
        ),
        ({"logDriver": "awslogs", "options": {"awslogs-group": "/g"}}, "/g (a stream named by"),
        (None, "none (no log configuration)"),
    ],
)
def test_wait_says_where_each_containers_logs_are_from_its_log_configuration(
    ecs: Ecs, log: dict[str, Any] | None, where: str, capsys
) -> None:
    """Not every container logs to PREFIX/CONTAINER/TASK-ID: a FireLens output's stream is
    named by its plugin, and a FireLens or unconfigured container's is not awslogs' at all."""
    ecs.containers[1] = {"name": "report", "essential": True, "logConfiguration": log}
    done = run_cli(capsys, ["--region", "eu-west-1", "run", "prod/report", "--wait"])
    assert done.code == 3, done.out + done.err
    assert f"report: exit code 3; logs: {where}" in done.out + done.err
    # the other container's awslogs stream, as before
    assert "sidecar: exit code 0; logs: /nixecs/prod/report report/sidecar/0123456789abcdef" in (
        done.out + done.err
    )


@pytest.mark.parametrize(
    ("fake", "says"),
    [
        (Ecs(GROUP_TAG[:1], 1), "has no nixecs:group tag"),
        (Ecs(GROUP_TAG, 1, [{"arn": "x", "reason": "RESOURCE:MEMORY"}]), "RESOURCE:MEMORY"),
        (Ecs(GROUP_TAG, 10**9), "still RUNNING after 1s"),
    ],
)
def test_failures_are_one_line_errors(
    fake: Ecs, says: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setattr(Session, "client", lambda self, name, **kw: fake)
    clock = iter(range(0, 10**6, 2))
    monkeypatch.setattr("nixecs.aws.run_task.time.monotonic", lambda: next(clock))
    monkeypatch.setattr(progress.time, "sleep", lambda seconds: None)
    done = run_cli(
        capsys, ["--region", "eu-west-1", "run", "prod/report", "--wait", "--timeout", "1"]
    )
    assert done.code == 1 and says in done.err and "Traceback" not in done.err, done.err


def test_a_bad_target_is_a_usage_error(capsys) -> None:
    assert run_cli(capsys, ["--region", "eu-west-1", "run", "report"]).code == 2


def test_the_task_definition_carries_its_group() -> None:
    template = build_stack(
        parse(fleet_text(), "fleet.yml"), "prod", {"web": b"#nixecs-settings v1\n{}\n"}
    )
    (report,) = [
        r
        for r in template["Resources"].values()
        if r["Type"] == "AWS::ECS::TaskDefinition"
        and r["Properties"]["Family"] == "nixecs-prod-report"
    ]
    assert {"Key": "nixecs:group", "Value": "web"} in report["Properties"]["Tags"]
