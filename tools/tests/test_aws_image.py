"""`nixecs image push` for real: Debian's docker-registry on loopback stands in for ECR's
registry endpoint (htpasswd auth with the password moto's GetAuthorizationToken hands out),
skopeo from Debian pushes, and the ECR control plane is the moto server (DESIGN §8)."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aws_fixtures import run_cli
from conftest import MotoServer, require_tool
from nixecs.testing.registry import LocalRegistry, image_archive, start_registry

pytestmark = pytest.mark.moto


def moto_token_password(moto: MotoServer) -> str:
    import boto3

    ecr = boto3.client("ecr", endpoint_url=moto.url, region_name="us-east-1")
    token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
    return base64.b64decode(token).decode().partition(":")[2]


@pytest.fixture
def registry(moto: MotoServer, tmp_path: Path) -> Iterator[LocalRegistry]:
    require_tool("skopeo")
    require_tool("docker-registry")
    server = start_registry(tmp_path / "registry", "AWS", moto_token_password(moto))
    try:
        yield server
    finally:
        server.stop()


def push(capsys: Any, moto: MotoServer, registry: LocalRegistry, archive: Path, *extra: str) -> Any:
    return run_cli(
        capsys,
        [
            "--endpoint-url", moto.url, "--region", "us-east-1", "--output", "json",
            "image", "push", str(archive), "--repository", "bananas",
            "--registry", registry.url, *extra,
        ],
    )  # fmt: skip


def registry_config_digest(registry: LocalRegistry, reference: str, password: str) -> str:
    """Read the pushed image back with skopeo (a separate client, its own auth)."""
    out = subprocess.run(
        [
            "skopeo", "inspect", "--raw", "--tls-verify=false",
            "--creds", f"AWS:{password}", f"docker://{reference}",
        ],
        capture_output=True, text=True, timeout=60, check=True,
    ).stdout  # fmt: skip
    return str(json.loads(out)["config"]["digest"])


def manifest_puts(registry_dir: Path) -> int:
    # The registry's access log: one line per request.
    return sum(
        1
        for line in (registry_dir / "registry.log").read_text(errors="replace").splitlines()
        if '"PUT /v2/bananas/manifests/' in line
    )


def test_push_creates_repository_pushes_and_prints_the_digest(
    capsys: Any, moto: MotoServer, registry: LocalRegistry, tmp_path: Path
) -> None:
    archive = tmp_path / "bananas.tar.gz"
    config = image_archive(archive, {"bin/app": b"#!/bin/sh\necho bananas\n"}, tag="bananas:1.0")
    result = push(capsys, moto, registry, archive, "--tag", "1.0")
    assert result.code == 0, result.err
    data = result.json()
    assert data["pushed"] is True and data["created_repository"] is True
    assert data["image"] == f"{registry.host}/bananas@{data['digest']}"
    # Read back by digest with an independent client: the same image (config digest).
    password = moto_token_password(moto)
    assert registry_config_digest(registry, data["image"], password) == config
    assert registry_config_digest(registry, f"{registry.host}/bananas:1.0", password) == config

    import boto3

    ecr = boto3.client("ecr", endpoint_url=moto.url, region_name="us-east-1")
    repo = ecr.describe_repositories(repositoryNames=["bananas"])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"] == {"scanOnPush": True}
    policy = json.loads(ecr.get_lifecycle_policy(repositoryName="bananas")["lifecyclePolicyText"])
    assert policy["rules"][0]["selection"]["tagStatus"] == "untagged"


def test_rerun_with_the_same_image_is_a_no_op(
    capsys: Any, moto: MotoServer, registry: LocalRegistry, tmp_path: Path
) -> None:
    archive = tmp_path / "bananas.tar"
    image_archive(archive, {"bin/app": b"v1"}, tag="bananas:1.0", compress=False)
    first = push(capsys, moto, registry, archive)  # the tag comes from the archive
    assert first.code == 0, first.err
    puts = manifest_puts(tmp_path / "registry")
    assert puts == 1
    again = push(capsys, moto, registry, archive)
    assert again.code == 0, again.err
    assert again.json()["pushed"] is False
    assert again.json()["created_repository"] is False
    assert again.json()["digest"] == first.json()["digest"]
    assert manifest_puts(tmp_path / "registry") == puts


def test_a_different_image_under_an_existing_tag_is_refused(
    capsys: Any, moto: MotoServer, registry: LocalRegistry, tmp_path: Path
) -> None:
    one, two = tmp_path / "one.tar.gz", tmp_path / "two.tar.gz"
    image_archive(one, {"bin/app": b"v1"})
    image_archive(two, {"bin/app": b"v2"})
    assert push(capsys, moto, registry, one, "--tag", "1.0").code == 0
    result = push(capsys, moto, registry, two, "--tag", "1.0")
    assert result.code == 1
    assert "already holds a different image" in result.err
    assert "Traceback" not in result.err


def test_the_token_travels_only_in_a_private_auth_file(
    capsys: Any,
    moto: MotoServer,
    registry: LocalRegistry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    password = moto_token_password(moto)
    seen: list[tuple[list[str], int | None]] = []
    real_popen = subprocess.Popen

    def spy(command: list[str], *args: Any, **kwargs: Any) -> Any:
        mode = None
        if "--authfile" in command or "--dest-authfile" in command:
            flag = "--authfile" if "--authfile" in command else "--dest-authfile"
            authfile = Path(command[command.index(flag) + 1])
            mode = stat.S_IMODE(authfile.stat().st_mode)
            assert stat.S_IMODE(authfile.parent.stat().st_mode) == 0o700
        seen.append((list(command), mode))
        return real_popen(command, *args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    archive = tmp_path / "a.tar.gz"
    image_archive(archive, {"x": b"y"})
    result = push(capsys, moto, registry, archive, "--tag", "1.0")
    assert result.code == 0, result.err
    skopeo_calls = [(c, m) for c, m in seen if c and c[0].endswith("skopeo")]
    assert skopeo_calls, "skopeo was not run"
    for command, mode in skopeo_calls:
        assert not any(password in arg for arg in command)
        if mode is not None:
            assert mode == 0o600
    # The private directory (auth file included) is gone afterwards.
    authfiles = [
        Path(c[c.index("--dest-authfile") + 1]) for c, _ in skopeo_calls if "--dest-authfile" in c
    ]
    assert authfiles and not authfiles[0].parent.exists()
    assert password not in result.out + result.err


def test_refused_credentials_fail_in_one_line_without_the_token(
    capsys: Any, moto: MotoServer, tmp_path: Path
) -> None:
    require_tool("skopeo")
    require_tool("docker-registry")
    server = start_registry(tmp_path / "other", "AWS", "not-the-token")
    try:
        archive = tmp_path / "a.tar.gz"
        image_archive(archive, {"x": b"y"})
        result = push(capsys, moto, server, archive, "--tag", "1.0")
    finally:
        server.stop()
    assert result.code == 1
    assert "unauthorized" in result.err.lower()
    assert moto_token_password(moto) not in result.err
    assert len(result.err.strip().splitlines()) <= 2  # the progress line and the error


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--repository", "Bananas"], "not an ECR repository name"),
        (["--repository", "bananas", "--tag", ".hidden"], "is not an image tag"),
        (
            ["--repository", "bananas", "--tag", "1", "--registry", "http://192.0.2.1:5000"],
            "only allowed to a loopback",
        ),
    ],
)
def test_bad_names_and_insecure_registries_are_usage_errors(
    capsys: Any, moto: MotoServer, tmp_path: Path, args: list[str], message: str
) -> None:
    archive = tmp_path / "a.tar.gz"
    image_archive(archive, {"x": b"y"})
    result = run_cli(capsys, ["--endpoint-url", moto.url, "image", "push", str(archive), *args])
    assert result.code == 2
    assert message in result.err
    assert "Traceback" not in result.err


def test_an_archive_that_is_not_an_image_is_an_operational_error(
    capsys: Any, moto: MotoServer, registry: LocalRegistry, tmp_path: Path
) -> None:
    archive = tmp_path / "junk.tar.gz"
    import gzip

    archive.write_bytes(gzip.compress(b"not a tar"))
    result = push(capsys, moto, registry, archive, "--tag", "1.0")
    assert result.code == 1
    assert "junk.tar.gz" in result.err and "Traceback" not in result.err
    assert os.path.exists(archive)
