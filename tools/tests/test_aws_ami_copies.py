"""`nixecs ami publish --regions … --share …` against the moto server: the AMI is copied into
each region (once, found again by name), shared with the accounts (launch permission, and
createVolumePermission on the snapshots) in every region, and a rerun after a failure in one
region completes only what is missing. moto ignores CopyImage's ClientToken (DESIGN §8): the
"exactly one AMI per region" property rests on the lookup by name, which is what is tested."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from aws_fixtures import run_cli
from nixecs.aws import ami_copies
from nixecs.aws.ami import MIB
from nixecs.aws.ebs import BLOCK

pytestmark = pytest.mark.moto

LABEL = "25.11.20260510.8fd9daa"
REGIONS = ["eu-west-1", "ap-southeast-2"]
ACCOUNTS = ["111122223333", "444455556666"]


def small_image(root: Path) -> Path:
    image_dir = root / "result"
    (image_dir / "nix-support").mkdir(parents=True)
    disk = image_dir / f"nixos-amazon-image-{LABEL}-x86_64-linux.raw"
    with disk.open("wb") as handle:
        handle.truncate(8 * MIB)
        handle.write(random.Random(3).randbytes(2 * BLOCK))
    info = {
        "label": LABEL,
        "boot_mode": "legacy-bios",
        "system": "x86_64-linux",
        "file": str(disk),
        "disks": {"root": {"file": str(disk)}},
    }
    (image_dir / "nix-support" / "image-info.json").write_text(json.dumps(info))
    return image_dir


def images_named(url: str, region: str, name: str) -> list[dict]:
    import boto3

    client = boto3.client("ec2", endpoint_url=url, region_name=region)
    found = client.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])
    return [i for i in found["Images"] if i.get("State") != "deregistered"]


def launch_accounts(url: str, region: str, image_id: str) -> set[str]:
    import boto3

    client = boto3.client("ec2", endpoint_url=url, region_name=region)
    answer = client.describe_image_attribute(ImageId=image_id, Attribute="launchPermission")
    return {p["UserId"] for p in answer["LaunchPermissions"] if "UserId" in p}


def volume_accounts(url: str, region: str, snapshot_id: str) -> set[str]:
    import boto3

    client = boto3.client("ec2", endpoint_url=url, region_name=region)
    answer = client.describe_snapshot_attribute(
        SnapshotId=snapshot_id, Attribute="createVolumePermission"
    )
    return {p["UserId"] for p in answer["CreateVolumePermissions"] if "UserId" in p}


def publish(capsys, url: str, image: Path, *extra: str):
    return run_cli(
        capsys,
        ["--endpoint-url", url, "--region", "us-east-1", "--output", "json", "ami", "publish",
         str(image), *extra],
    )  # fmt: skip


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0")


def test_copies_and_shares_in_every_region(moto, tmp_path, capsys):
    image = small_image(tmp_path)
    result = publish(
        capsys, moto.url, image, "--regions", ",".join(REGIONS), "--share", ACCOUNTS[0],
        "--share", ACCOUNTS[1],
    )  # fmt: skip
    assert result.code == 0, result.err
    data = json.loads(result.out)
    name = data["name"]
    assert [c["region"] for c in data["copies"]] == REGIONS
    source_snapshots = [
        m["Ebs"]["SnapshotId"]
        for m in images_named(moto.url, "us-east-1", name)[0]["BlockDeviceMappings"]
        if "Ebs" in m
    ]
    assert launch_accounts(moto.url, "us-east-1", data["image_id"]) == set(ACCOUNTS)
    for snapshot in source_snapshots:
        assert volume_accounts(moto.url, "us-east-1", snapshot) == set(ACCOUNTS)
    for copy in data["copies"]:
        (found,) = images_named(moto.url, copy["region"], name)
        assert found["ImageId"] == copy["image_id"] and found["State"] == "available"
        tags = {t["Key"]: t["Value"] for t in found.get("Tags", [])}
        assert tags["nixecs:image-sha256"] and tags["Name"] == name
        assert launch_accounts(moto.url, copy["region"], copy["image_id"]) == set(ACCOUNTS)
        assert copy["snapshot_ids"], copy
        for snapshot in copy["snapshot_ids"]:
            assert volume_accounts(moto.url, copy["region"], snapshot) == set(ACCOUNTS)

    again = publish(capsys, moto.url, image, "--regions", ",".join(REGIONS), "--share", ACCOUNTS[0])
    assert again.code == 0, again.err
    rerun = json.loads(again.out)
    assert rerun["reused"] and all(c["reused"] for c in rerun["copies"])
    assert all(c["shared_with"] == [] for c in rerun["copies"])  # nothing left to add
    for region in ["us-east-1", *REGIONS]:
        assert len(images_named(moto.url, region, name)) == 1


def test_a_failed_region_is_completed_by_a_rerun(moto, tmp_path, capsys, monkeypatch):
    image = small_image(tmp_path)
    real = ami_copies.copy_one

    def flaky(session, **kwargs):
        if kwargs["region"] == REGIONS[1]:
            raise RuntimeError("simulated outage")
        return real(session, **kwargs)

    monkeypatch.setattr(ami_copies, "copy_one", flaky)
    failed = publish(
        capsys, moto.url, image, "--regions", ",".join(REGIONS), "--share", ACCOUNTS[0]
    )
    assert failed.code != 0
    assert f"{REGIONS[1]}: simulated outage" in failed.err and "rerun" in failed.err
    assert "Traceback" not in failed.err
    monkeypatch.setattr(ami_copies, "copy_one", real)

    done = publish(capsys, moto.url, image, "--regions", ",".join(REGIONS), "--share", ACCOUNTS[0])
    assert done.code == 0, done.err
    data = json.loads(done.out)
    by_region = {c["region"]: c for c in data["copies"]}
    assert by_region[REGIONS[0]]["reused"] and not by_region[REGIONS[1]]["reused"]
    for region in ["us-east-1", *REGIONS]:
        (found,) = images_named(moto.url, region, data["name"])
        assert launch_accounts(moto.url, region, found["ImageId"]) == {ACCOUNTS[0]}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--share", "12345"], "12345: not a 12-digit AWS account id"),
        (["--regions", "Mars-1"], "Mars-1: not a region"),
        (["--regions", "eu-west-1", "--no-wait"], "--regions and --share wait for the AMI"),
    ],
)
def test_bad_values_are_usage_errors(moto, tmp_path, capsys, extra, message):
    result = publish(capsys, moto.url, small_image(tmp_path), *extra)
    assert result.code == 2 and message in result.err, result.err
