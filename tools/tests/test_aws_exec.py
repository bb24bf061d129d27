"""`nixecs exec`: ECS Exec the way the AWS CLI does it (aws/aws-cli
awscli/customizations/ecs/executecommand.py). moto has no ExecuteCommand, so the ECS client
is botocore's Stubber: every request is validated against the real ECS API model."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from botocore.stub import Stubber

from aws_fixtures import run_cli
from nixecs.aws.ecs_exec import PLUGIN, execute
from nixecs.aws.session import Session
from nixecs.diagnostics import OperationalFailure

CLUSTER = "prod"
TASK = "arn:aws:ecs:us-east-1:123456789012:task/prod/0123456789abcdef0123456789abcdef"
TOKEN = "secret-session-token"


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Session:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return Session(region="us-east-1")


def stub_owner(stubber: Stubber, tags: list[dict[str, str]] | None = None) -> None:
    """DescribeServices with the service's tags (the fleet's `nixecs:cluster` by default)."""
    service = {
        "serviceName": "web",
        "status": "ACTIVE",
        "tags": [{"key": "nixecs:cluster", "value": CLUSTER}] if tags is None else tags,
    }
    stubber.add_response(
        "describe_services",
        {"services": [service], "failures": []},
        {"cluster": CLUSTER, "services": ["web"], "include": ["TAGS"]},
    )


def stub_calls(stubber: Stubber, container: str | None, tasks: list[str]) -> None:
    stub_owner(stubber)
    stubber.add_response(
        "list_tasks",
        {"taskArns": tasks},
        {"cluster": CLUSTER, "serviceName": "web", "desiredStatus": "RUNNING", "maxResults": 1},
    )
    if not tasks:
        return
    request: dict[str, Any] = {
        "cluster": CLUSTER,
        "task": TASK,
        "command": "sh -c 'echo hi'",
        "interactive": True,
    }
    if container is not None:
        request["container"] = container
    stubber.add_response(
        "execute_command",
        {
            "clusterArn": "arn:aws:ecs:us-east-1:123456789012:cluster/prod",
            "containerArn": "arn:aws:ecs:us-east-1:123456789012:container/prod/x",
            "containerName": container or "web",
            "interactive": True,
            "session": {"sessionId": "s-1", "streamUrl": "wss://x", "tokenValue": TOKEN},
            "taskArn": TASK,
        },
        request,
    )
    stubber.add_response(
        "describe_tasks",
        {
            "tasks": [
                {
                    "containers": [
                        {"name": "sidecar", "runtimeId": "0000-sidecar"},
                        {"name": container or "web", "runtimeId": "abcd-1234"},
                    ]
                }
            ]
        },
        {"cluster": CLUSTER, "tasks": [TASK]},
    )


@pytest.mark.parametrize("container", [None, "app"])
def test_exec_hands_the_session_to_the_plugin(session: Session, container: str | None) -> None:
    ecs = session.client("ecs")
    calls: list[list[str]] = []
    with Stubber(ecs) as stubber:
        stub_calls(stubber, container, [TASK])
        status = execute(
            session,
            CLUSTER,
            "web",
            ["sh", "-c", "echo hi"],
            container,
            which=lambda name: f"/opt/bin/{name}",
            call=lambda argv: calls.append(argv) or 7,
        )
        stubber.assert_no_pending_responses()
    assert status == 7  # the plugin's exit status is the command's
    [argv] = calls
    assert argv[0] == f"/opt/bin/{PLUGIN}" and argv[2:5] == ["us-east-1", "StartSession", ""]
    assert json.loads(argv[1])["tokenValue"] == TOKEN
    target = f"ecs:{CLUSTER}_0123456789abcdef0123456789abcdef_abcd-1234"
    assert json.loads(argv[5]) == {"Target": target}
    assert argv[6].startswith("https://ecs.us-east-1.amazonaws.com")


def test_no_plugin_is_a_clear_message_before_any_call(session: Session) -> None:
    ecs = session.client("ecs")
    with Stubber(ecs), pytest.raises(OperationalFailure) as caught:
        # No response stubbed: any AWS call would fail the test with a different error.
        execute(session, CLUSTER, "web", ["sh"], which=lambda name: None, call=lambda a: 0)
    assert "session-manager-plugin is not installed" in str(caught.value)
    assert "docker exec" in str(caught.value)


def test_a_service_without_running_tasks_says_so(session: Session) -> None:
    ecs = session.client("ecs")
    with Stubber(ecs) as stubber, pytest.raises(OperationalFailure) as caught:
        stub_calls(stubber, None, [])
        execute(session, CLUSTER, "web", ["sh"], which=lambda n: "/p", call=lambda a: 0)
    assert "prod/web has no running task" in str(caught.value)


def test_cli_without_the_plugin_exits_1_without_a_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no session-manager-plugin anywhere
    result = run_cli(capsys, ["--region", "us-east-1", "exec", "prod/web", "--", "sh", "-l"])
    assert result.code == 1 and "session-manager-plugin is not installed" in result.err
    assert "Traceback" not in result.err
    bad = run_cli(capsys, ["--region", "us-east-1", "exec", "prod", "--", "sh"])
    assert bad.code == 2 and "is not CLUSTER/SERVICE" in bad.err


def test_the_plugin_is_looked_up_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nixecs.aws.ecs_exec import find_plugin

    plugin = tmp_path / PLUGIN
    plugin.write_text("#!/bin/sh\n")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(OperationalFailure):
        find_plugin()  # not executable: not a plugin
    plugin.chmod(plugin.stat().st_mode | stat.S_IXUSR)
    assert find_plugin() == str(plugin)
