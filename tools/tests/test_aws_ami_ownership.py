"""`ami publish --name N` never adopts, tags or shares an AMI this project did not register
(issue 16, item 2), against the moto server: an AMI under the name without nixecs's
`nixecs:image-sha256` tag, or with another image's, is refused (exit 2) with the reason,
before anything is uploaded, and is left exactly as it was — in the publishing region and in
a `--regions` copy region alike. moto lets two AMIs share a name (EC2 refuses with
InvalidAMIName.Duplicate — RegisterImage,
https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RegisterImage.html), so the race in
which someone registers the name between our lookup and our RegisterImage is played with the
Stubber."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import Stubber

from aws_fixtures import moto_client, plain_client
from nixecs.aws import ami
from nixecs.aws.ownership import NotOurs
from test_aws_ami_copies import ACCOUNTS, images_named, launch_accounts, publish, small_image

pytestmark = pytest.mark.moto

NAME = "golden"


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0")


def _foreign(url: str, region: str, tags: list[dict[str, str]]) -> str:
    """An AMI registered by someone else under NAME (by hand, another tool)."""
    import boto3

    ec2 = boto3.client(
        "ec2",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id="t",
        aws_secret_access_key="t",
    )
    volume = ec2.create_volume(Size=1, AvailabilityZone=f"{region}a")
    snapshot = ec2.create_snapshot(VolumeId=volume["VolumeId"])["SnapshotId"]
    image = ec2.register_image(
        Name=NAME,
        RootDeviceName="/dev/xvda",
        VirtualizationType="hvm",
        Architecture="x86_64",
        BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snapshot}}],
    )["ImageId"]
    if tags:
        ec2.create_tags(Resources=[image], Tags=tags)
    return str(image)


def _snapshots(url: str) -> int:
    return len(moto_client(url, "ec2").describe_snapshots(OwnerIds=["self"])["Snapshots"])


OTHER_SHA = [{"Key": "nixecs:image-sha256", "Value": "e" * 64}]

# (region of the foreign AMI, its tags, extra arguments, message)
HOSTILE: dict[str, tuple[str, list[dict[str, str]], list[str], str]] = {
    "AMI without tags": (
        "us-east-1", [], [],
        "nixecs did not register (no nixecs:image-sha256 tag); pick another --name",
    ),
    "AMI with only a Name tag, --share": (
        "us-east-1", [{"Key": "Name", "Value": NAME}], ["--share", ACCOUNTS[0]],
        "nixecs did not register (no nixecs:image-sha256 tag)",
    ),
    "AMI of another image": (
        "us-east-1", OTHER_SHA, ["--share", ACCOUNTS[0]],
        "built from a different image (nixecs:image-sha256 eeeeeeeeeeeeeeee…",
    ),
    "AMI without tags in a copy region": (
        "eu-west-1", [], ["--regions", "eu-west-1", "--share", ACCOUNTS[0]],
        "AMI name 'golden' in eu-west-1 is taken by",
    ),
    "AMI of another image in a copy region": (
        "eu-west-1", OTHER_SHA, ["--regions", "eu-west-1"],
        "in eu-west-1 is taken by",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(HOSTILE))
def test_a_foreign_ami_under_the_name_is_refused_and_left_alone(moto, tmp_path, capsys, case):
    region, tags, extra, message = HOSTILE[case]
    theirs = _foreign(moto.url, region, tags)
    before = images_named(moto.url, region, NAME)
    snapshots = _snapshots(moto.url)
    result = publish(capsys, moto.url, small_image(tmp_path), "--name", NAME, *extra)
    assert result.code == 2, result.err
    assert f"refusing: ami publish: AMI name {NAME!r}" in result.err and message in result.err
    assert theirs in result.err
    # their AMI: the only one of the name there, its tags as they were, shared with nobody
    assert images_named(moto.url, region, NAME) == before
    assert launch_accounts(moto.url, region, theirs) == set()
    if region == "us-east-1":  # refused before any upload
        assert _snapshots(moto.url) == snapshots
    else:  # ours published in us-east-1 (and shared there); the foreign copy never touched
        assert len(images_named(moto.url, "us-east-1", NAME)) == 1


def test_our_own_ami_under_the_name_is_found_again(moto, tmp_path, capsys):
    image = small_image(tmp_path)
    first = publish(capsys, moto.url, image, "--name", NAME)
    assert first.code == 0, first.err
    again = publish(capsys, moto.url, image, "--name", NAME, "--share", ACCOUNTS[0])
    assert again.code == 0, again.err
    data = json.loads(again.out)
    assert data["reused"] and data["image_id"] == json.loads(first.out)["image_id"]
    assert launch_accounts(moto.url, "us-east-1", data["image_id"]) == {ACCOUNTS[0]}


def _register_race(found: dict[str, Any]) -> Stubber:
    """RegisterImage refused as a duplicate name; the lookup then finds `found`."""
    client = plain_client("ec2")
    stubber = Stubber(client)
    stubber.add_client_error("register_image", "InvalidAMIName.Duplicate", "AMI name in use")
    stubber.add_response("describe_images", {"Images": [found]})
    stubber.activate()
    return stubber


@pytest.mark.parametrize(
    ("found_tags", "outcome"),
    [
        ([{"Key": "nixecs:image-sha256", "Value": "a" * 64}], "ami-ours"),  # our lost answer
        ([], "no nixecs:image-sha256 tag"),  # someone else was quicker
        (OTHER_SHA, "built from a different image"),
    ],
)
def test_a_duplicate_name_at_register_is_adopted_only_if_ours(tmp_path, found_tags, outcome):
    info = ami.read_image_info(small_image(tmp_path))
    tags = [{"Key": "Name", "Value": NAME}, {"Key": "nixecs:image-sha256", "Value": "a" * 64}]
    found = {"ImageId": "ami-ours", "State": "pending", "Name": NAME, "Tags": found_tags}
    stubber = _register_race(found)
    if outcome.startswith("ami-"):
        assert ami._register(stubber.client, NAME, info, "snap-1", tags, "d") == outcome
    else:
        with pytest.raises(NotOurs, match=outcome):
            ami._register(stubber.client, NAME, info, "snap-1", tags, "d")
    stubber.assert_no_pending_responses()
