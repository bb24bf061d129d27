"""The one place boto3 clients are made: global options on every client, adaptive retries,
our user agent, and AWS trouble as one line naming service, operation and error code."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from aws_fixtures import run_cli, stubbed_clients
from conftest import free_port
from nixecs.aws.session import Session, aws_errors
from nixecs.diagnostics import OperationalFailure

_stubbed = pytest.fixture(name="stubbed")(stubbed_clients)

SERVICES = (
    "s3",
    "ec2",
    "ssm",
    "ecs",
    "cloudformation",
    "autoscaling",
    "application-autoscaling",
    "cloudwatch",
)


def test_every_client_gets_endpoint_region_retries_and_user_agent(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    session = Session(region="eu-west-1", endpoint_url="http://127.0.0.1:9")
    for service in SERVICES:
        client = session.client(service)
        assert client.meta.endpoint_url == "http://127.0.0.1:9", service
        assert client.meta.region_name == "eu-west-1"
        config = client.meta.config
        assert config.retries == {"mode": "adaptive", "total_max_attempts": 11}  # 10 retries
        assert (config.connect_timeout, config.read_timeout) == (5, 60)
        assert config.user_agent_extra.startswith("nixecs/")
        assert session.client(service) is client  # one per session
    assert session.client("s3").meta.config.s3 == {"addressing_style": "path"}
    assert (
        Session(region="eu-west-1").client("ssm").meta.endpoint_url
        == "https://ssm.eu-west-1.amazonaws.com"
    )


def test_a_client_error_names_service_operation_and_code(stubbed):
    stubbed("ecs").add_client_error(
        "describe_clusters", "AccessDeniedException", "User is not authorized", 400
    )
    session = Session(region="us-east-1")
    with pytest.raises(OperationalFailure) as failure, aws_errors(session, "status"):
        session.client("ecs").describe_clusters(clusters=["prod"])
    assert (
        str(failure.value)
        == "status: ecs DescribeClusters failed: AccessDeniedException: User is not authorized"
    )


def test_unreachable_endpoint_is_one_line(capsys, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setattr("nixecs.aws.session.MAX_ATTEMPTS", 0)
    url = f"http://127.0.0.1:{free_port()}"
    result = run_cli(
        capsys, ["--endpoint-url", url, "--region", "us-east-1", "secret", "get", "/x"]
    )
    assert result.code == 1
    assert result.err == f"nixecs: error: cannot reach --endpoint-url {url}: Connection refused\n"


def test_missing_credentials_and_region_are_explained(capsys, monkeypatch, tmp_path: Path):
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    no_region = run_cli(capsys, ["secret", "get", "/x"])
    assert no_region.code == 2 and "no AWS region" in no_region.err
    no_credentials = run_cli(
        capsys,
        ["--region", "us-east-1", "--endpoint-url", "http://127.0.0.1:9", "secret", "get", "/x"],
    )
    assert no_credentials.code == 1 and "no AWS credentials" in no_credentials.err
    assert "Traceback" not in no_region.err + no_credentials.err
    unknown = run_cli(capsys, ["--profile", "nope", "--region", "us-east-1", "secret", "get", "/x"])
    assert unknown.code == 2 and "nope" in unknown.err


def test_help_does_not_import_boto3():
    import subprocess

    code = "import sys; from nixecs.cli import run; run(['--help']); print('boto3' in sys.modules, 'rich' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "False False"
