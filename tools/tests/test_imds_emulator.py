"""The IMDSv2 emulator speaks the protocol the way EC2 does, for our client and for boto3."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import MotoServer
from host_fixtures import imds_fixture  # noqa: F401  (the `imds` fixture)
from nixecs.testing.imds import ImdsEmulator


def request(
    emulator: ImdsEmulator, method: str, path: str, headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", emulator.port, timeout=5)
    try:
        connection.request(method, path, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def token(emulator: ImdsEmulator, ttl: str = "60") -> str:
    status, body = request(
        emulator, "PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": ttl}
    )
    assert status == 200
    return body.decode()


def get(emulator: ImdsEmulator, path: str, with_token: str | None = None) -> tuple[int, bytes]:
    value = with_token if with_token is not None else token(emulator)
    return request(emulator, "GET", path, {"X-aws-ec2-metadata-token": value})


@pytest.mark.parametrize("ttl", [None, "0", "21601", "soon"])
def test_token_put_needs_a_valid_ttl(imds: ImdsEmulator, ttl: str | None) -> None:
    headers = {} if ttl is None else {"X-aws-ec2-metadata-token-ttl-seconds": ttl}
    status, _ = request(imds, "PUT", "/latest/api/token", headers)
    assert status == 400


def test_get_needs_a_live_token(imds: ImdsEmulator) -> None:
    assert request(imds, "GET", "/latest/meta-data/instance-id")[0] == 401
    assert get(imds, "/latest/meta-data/instance-id", with_token="forged")[0] == 401
    live = token(imds)
    assert get(imds, "/latest/meta-data/instance-id", with_token=live) == (
        200,
        b"i-0123456789abcdef0",
    )
    imds.expire_tokens()
    assert get(imds, "/latest/meta-data/instance-id", with_token=live)[0] == 401


def test_token_expires_after_its_ttl(imds: ImdsEmulator) -> None:
    short = token(imds, ttl="1")
    assert get(imds, "/latest/meta-data/placement/region", with_token=short)[0] == 200
    time.sleep(1.1)
    assert get(imds, "/latest/meta-data/placement/region", with_token=short)[0] == 401


def test_metadata_paths() -> None:
    with ImdsEmulator(
        b"\x1f\x8bbytes", instance_id="i-0abc", region="eu-west-1", account_id="111122223333"
    ) as imds:
        assert get(imds, "/latest/user-data") == (200, b"\x1f\x8bbytes")
        assert get(imds, "/latest/meta-data/instance-id") == (200, b"i-0abc")
        assert get(imds, "/latest/meta-data/placement/region") == (200, b"eu-west-1")
        status, body = get(imds, "/latest/dynamic/instance-identity/document")
        document = json.loads(body)
        assert status == 200
        assert (document["instanceId"], document["region"], document["accountId"]) == (
            "i-0abc",
            "eu-west-1",
            "111122223333",
        )
        assert get(imds, "/latest/meta-data/no-such-thing")[0] == 404
        imds.userdata = None
        assert get(imds, "/latest/user-data")[0] == 404


def test_lifecycle_state_is_settable(imds: ImdsEmulator) -> None:
    path = "/latest/meta-data/autoscaling/target-lifecycle-state"
    assert get(imds, path) == (200, b"InService")
    imds.set_lifecycle_state("Terminated")
    assert get(imds, path) == (200, b"Terminated")
    imds.set_lifecycle_state(None)  # not in an Auto Scaling group
    assert get(imds, path)[0] == 404


def test_lifecycle_state_from_a_file(tmp_path: Path) -> None:
    """Another process (a NixOS VM test script) scales the instance in by writing a file."""
    state = tmp_path / "lifecycle-state"
    path = "/latest/meta-data/autoscaling/target-lifecycle-state"
    with ImdsEmulator(lifecycle_state_file=str(state)) as imds:
        assert get(imds, path) == (200, b"InService")  # no file yet: the default
        state.write_text("Terminated\n")
        assert get(imds, path) == (200, b"Terminated")


def test_instance_profile_credentials(imds: ImdsEmulator) -> None:
    status, role = get(imds, "/latest/meta-data/iam/security-credentials/")
    assert status == 200
    status, body = get(imds, f"/latest/meta-data/iam/security-credentials/{role.decode()}")
    document = json.loads(body)
    assert status == 200
    assert {"AccessKeyId", "SecretAccessKey", "Token", "Expiration"} <= set(document)


def test_scripted_faults(imds: ImdsEmulator) -> None:
    imds.fail_next(2)
    headers = {"X-aws-ec2-metadata-token-ttl-seconds": "60"}
    assert request(imds, "PUT", "/latest/api/token", headers)[0] == 500
    assert request(imds, "PUT", "/latest/api/token", headers)[0] == 500
    assert request(imds, "PUT", "/latest/api/token", headers)[0] == 200

    imds.drop_next(1)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        request(imds, "PUT", "/latest/api/token", headers)
    assert request(imds, "PUT", "/latest/api/token", headers)[0] == 200

    imds.refuse_tokens = True
    assert request(imds, "PUT", "/latest/api/token", headers)[0] == 403
    imds.refuse_tokens = False

    imds.delay = 0.3
    started = time.monotonic()
    assert request(imds, "PUT", "/latest/api/token", headers)[0] == 200
    assert time.monotonic() - started >= 0.3


@pytest.mark.moto
def test_boto3_default_credential_chain_uses_the_emulator(
    moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the "host" there are no credentials but the instance profile's, served by IMDS."""
    import boto3

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED", raising=False)
    with ImdsEmulator(credentials=("ASIAEMULATED", "emulated-secret", "emulated-token")) as imds:
        monkeypatch.setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url)
        session = boto3.Session(region_name="us-east-1")
        credentials = session.get_credentials()
        assert credentials is not None
        assert credentials.method == "iam-role"
        assert credentials.get_frozen_credentials().access_key == "ASIAEMULATED"
        ssm = session.client("ssm", endpoint_url=moto.url)
        ssm.put_parameter(Name="/emulated/check", Value="ok", Type="String")
        assert ssm.get_parameter(Name="/emulated/check")["Parameter"]["Value"] == "ok"
        assert imds.count("PUT", "/latest/api/token") >= 1  # botocore used IMDSv2


def test_command_line_serves_until_killed(tmp_path: Path) -> None:
    userdata = tmp_path / "userdata"
    userdata.write_bytes(b"#!/bin/sh\necho hi\n")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nixecs.testing.imds",
            "--port",
            "0",
            "--userdata",
            str(userdata),
            "--region",
            "ap-south-1",
            "--instance-id",
            "i-0cli",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        port = int(url.rsplit(":", 1)[1])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request(
            "PUT", "/latest/api/token", headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}
        )
        live = connection.getresponse().read().decode()
        connection.close()
        for path, expected in (
            ("/latest/user-data", b"#!/bin/sh\necho hi\n"),
            ("/latest/meta-data/placement/region", b"ap-south-1"),
            ("/latest/meta-data/instance-id", b"i-0cli"),
        ):
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", path, headers={"X-aws-ec2-metadata-token": live})
            assert connection.getresponse().read() == expected
            connection.close()
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
