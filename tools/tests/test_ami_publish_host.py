"""`nixecs ami publish --host web --flake PATH | --fleet FLEET` (issue 19.4): the host's image
built with `nix build FLAKE#web-ami` (a fake `nix`: this machine's Nix 2.8 cannot fetch the
flake's inputs), published into the moto server by the EBS direct upload, the AMI and its
snapshot tagged with the host, the flake's locked revision (only when clean) and the image
hash; and then found by a fleet's `ami: {host: web}`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from aws_fixtures import image_identity, moto_client, run_cli
from fake_nix import install
from nixecs import naming

REV = "3f2a9c1e8d7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"
LABEL = "25.11.20260510.8fd9daa"


def raw_image(root: Path) -> Path:
    """A small `nix build .#web-ami` output: image-info.json and a sparse raw disk."""
    image_dir = root / "store" / "nixos-amazon-image"
    (image_dir / "nix-support").mkdir(parents=True)
    disk = image_dir / "nixecs-web.raw"  # lib.mkHost's image.baseName
    with disk.open("wb") as handle:
        handle.truncate(4 * 1024 * 1024)
        handle.write(b"web host" * 70000)
    info = {"label": LABEL, "boot_mode": "legacy-bios", "system": "x86_64-linux", "file": str(disk)}
    (image_dir / "nix-support" / "image-info.json").write_text(json.dumps(info))
    return image_dir


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    """No polling delay; and RegisterImage's TagSpecifications applied to the AMI as AWS
    applies them (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RegisterImage.html,
    TagSpecification.N), which this moto ignores: the tags are still publish's own."""
    from nixecs.aws import ami as ami_module

    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0")
    original = ami_module._register

    def register(ec2: Any, name: str, info: Any, snapshot: str, tags: Any, description: str) -> str:
        image_id = original(ec2, name, info, snapshot, tags, description)
        ec2.create_tags(Resources=[image_id], Tags=tags)
        return image_id

    monkeypatch.setattr(ami_module, "_register", register)


def tags_of(resource: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def test_builds_publishes_and_tags_with_host_revision_and_hash(
    moto: Any, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch, fast: None
) -> None:
    image = raw_image(tmp_path)
    flake = tmp_path / "infra"
    flake.mkdir()
    fake = install(
        tmp_path,
        monkeypatch,
        {"build": f"{image}\n", "flake metadata": json.dumps({"revision": REV, "locked": {}})},
    )
    monkeypatch.chdir(tmp_path)
    base = ["--endpoint-url", moto.url, "--region", "us-east-1", "--output", "json"]
    result = run_cli(capsys, [*base, "ami", "publish", "--host", "web", "--flake", "./infra"])
    assert result.code == 0, result.err
    features = ["--extra-experimental-features", "nix-command flakes"]
    assert [*features, "build", "--no-link", "--print-out-paths", f"{flake}#web-ami"] in fake.calls
    assert [*features, "flake", "metadata", "--json", str(flake)] in fake.calls

    ec2 = moto_client(moto.url, "ec2")
    [ami] = ec2.describe_images(ImageIds=[result.json()["image_id"]])["Images"]
    sha = image_identity(next(image.glob("*.raw")))
    expected = {
        naming.TAG_HOST: "web",
        naming.TAG_FLAKE: REV,
        naming.TAG_IMAGE_SHA256: sha,
    }
    assert expected.items() <= tags_of(ami).items()
    [snapshot] = ec2.describe_snapshots(SnapshotIds=[result.json()["snapshot_id"]])["Snapshots"]
    assert expected.items() <= tags_of(snapshot).items()

    # The fleet's `ami: {host: web}` now finds it (and `--fleet` reads the same flake).
    fleet = tmp_path / "fleet.yml"
    fleet.write_text(
        "version: 1\nregion: us-east-1\nflake: ./infra\nclusters:\n  prod:\n"
        "    subnets: [subnet-0a1b2c3d]\n    security_groups: [sg-0a1b2c3d]\n    groups:\n"
        "      web:\n        ami: {host: web}\n        instance_types: [m6i.large]\n"
        "        capacity: {min: 0, max: 2}\n"
    )
    from nixecs.aws.host_amis import resolve
    from nixecs.aws.session import Session
    from nixecs.fleet import load_fleet

    found, report = resolve(
        Session(region="us-east-1", endpoint_url=moto.url), load_fleet(fleet), str(fleet)
    )
    assert not report.has_errors
    assert found.group("prod/web").ami == ami["ImageId"]


def test_a_dirty_flake_gets_no_revision_tag(
    moto: Any, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch, fast: None
) -> None:
    image = raw_image(tmp_path)
    (tmp_path / "infra").mkdir()
    # `nix flake metadata` of a tree with uncommitted changes: no `revision`.
    install(tmp_path, monkeypatch, {"flake metadata": json.dumps({"locked": {}})})
    fleet = tmp_path / "fleet.yml"
    fleet.write_text(
        "version: 1\nregion: us-east-1\nflake: ./infra\nclusters:\n  p:\n    subnets: [subnet-0a1b2c3d]\n"
        "    security_groups: [sg-0a1b2c3d]\n"
    )
    base = ["--endpoint-url", moto.url, "--region", "us-east-1", "--output", "json"]
    result = run_cli(
        capsys,
        [*base, "ami", "publish", "--host", "web", "--fleet", str(fleet), "--image", str(image)],
    )
    assert result.code == 0, result.err
    assert "uncommitted changes or no git revision" in result.err
    [ami] = moto_client(moto.url, "ec2").describe_images(ImageIds=[result.json()["image_id"]])[
        "Images"
    ]
    assert naming.TAG_FLAKE not in tags_of(ami)
    assert tags_of(ami)[naming.TAG_HOST] == "web"


def test_without_nix_flakes_building_is_a_usage_error_naming_the_command(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = install(tmp_path, monkeypatch, {})
    fake.answer({"--version": "nix (Nix) 2.3.16\n"})  # before flakes
    result = run_cli(
        capsys,
        ["--region", "us-east-1", "ami", "publish", "--host", "web", "--flake", "/srv/infra"],
    )
    assert result.code == 2
    assert "nix build /srv/infra#web-ami" in result.err
    assert [c for c in fake.calls if c != ["--version"]] == []
    nothing = run_cli(capsys, ["--region", "us-east-1", "ami", "publish", "--host", "web"])
    assert nothing.code == 2 and "--flake PATH / --fleet FLEET" in nothing.err


def test_a_failed_build_is_one_operational_error(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    install(
        tmp_path,
        monkeypatch,
        {
            "build": {
                "err": "error: flake 'path:/srv/infra' does not provide attribute 'packages.x86_64-linux.api-ami'\n",
                "code": 1,
            }
        },
    )
    result = run_cli(
        capsys,
        ["--region", "us-east-1", "ami", "publish", "--host", "api", "--flake", "/srv/infra"],
    )
    assert result.code == 1
    assert "does not provide attribute 'packages.x86_64-linux.api-ami'" in result.err
    assert "Traceback" not in result.err


def test_an_image_of_another_host_is_refused(
    tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    image = raw_image(tmp_path)  # nixecs-web.raw: mkHost built it for host web
    result = run_cli(
        capsys, ["--region", "us-east-1", "ami", "publish", str(image), "--host", "api"]
    )
    assert result.code == 2
    assert "holds host 'web''s image, not 'api': pass --host web" in result.err
