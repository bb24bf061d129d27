"""`nixecs ami publish`: S3 against moto server (multipart upload, skip when present,
object removed afterwards); EC2 (import-snapshot, register-image: moto has no
import-snapshot) with botocore's Stubber asserting every request exactly. Reruns after a
failure at each stage finish without duplicates."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from aws_fixtures import counting, image_identity, moto_client, run_cli, stubbed_clients
from nixecs.aws.ami import MIB, client_token, publish, read_image_info, upload
from nixecs.aws.session import Session

pytestmark = pytest.mark.moto
_stubbed = pytest.fixture(name="stubbed")(stubbed_clients)

LABEL = "25.11.20260510.8fd9daa"
BUCKET = "images"


def make_image(
    root: Path, size: int, system: str = "x86_64-linux", suffix: str = ".vhd", **extra: Any
) -> Path:
    """An image builder output as nixpkgs' amazon-image.nix writes it (ext4, one disk)."""
    image_dir = root / "result"
    (image_dir / "nix-support").mkdir(parents=True)
    name = f"nixos-amazon-image-{LABEL}-{system}{suffix}"
    block = hashlib.sha256(b"nixecs").digest() * 32768  # 1 MiB, deterministic
    with (image_dir / name).open("wb") as handle:
        for _ in range(size // len(block)):
            handle.write(block)
        handle.write(block[: size % len(block)])
    store = f"/nix/store/0000000000000000000000000000000-nixos-amazon-image-{LABEL}-{system}/{name}"
    info = {
        "label": LABEL,
        "boot_mode": "uefi" if system.startswith("aarch64") else "legacy-bios",
        "system": system,
        "logical_bytes": str(4 * 1024**3),
        "file": store,  # the store path; the copy next to image-info.json is used when it is gone
        "disks": {"root": {"logical_bytes": str(4 * 1024**3), "file": store}},
        **extra,
    }
    (image_dir / "nix-support" / "image-info.json").write_text(json.dumps(info))
    return image_dir


def sha_of(image_dir: Path) -> str:
    return image_identity(read_image_info(image_dir).file)


def names(sha: str, arch: str = "x86_64") -> tuple[str, str, list[dict[str, str]]]:
    name = f"nixecs-ecs-node-{LABEL}-{arch}-{sha[:12]}"
    tags = [
        {"Key": "Name", "Value": name},
        {"Key": "nixecs:host", "Value": "ecs-node"},
        {"Key": "nixecs:nixos-label", "Value": LABEL},
        {"Key": "nixecs:image-sha256", "Value": sha},
        {"Key": "nixecs:flake", "Value": "abc123"},
    ]
    return name, f"nixecs {name} sha256:{sha[:16]}", tags


def expect_no_image(ec2: Any, name: str) -> None:
    ec2.add_response(
        "describe_images",
        {"Images": []},
        {"Owners": ["self"], "Filters": [{"Name": "name", "Values": [name]}]},
    )


def expect_import_and_register(
    ec2: Any,
    sha: str,
    arch: str = "x86_64",
    boot: str = "legacy-bios",
    task: bool = True,
    lost_register: bool = False,
) -> None:
    name, description, tags = names(sha, arch)
    if task:
        ec2.add_response(
            "import_snapshot",
            {"ImportTaskId": "import-snap-1"},
            {
                "ClientToken": client_token(sha),
                "Description": description,
                "DiskContainer": {
                    "Description": name,
                    "Format": "VHD",
                    "UserBucket": {"S3Bucket": BUCKET, "S3Key": f"nixecs/ami/{sha}.vhd"},
                },
                "TagSpecifications": [{"ResourceType": "import-snapshot-task", "Tags": tags}],
            },
        )
    poll = {"ImportTaskIds": ["import-snap-1"]}
    ec2.add_response(
        "describe_import_snapshot_tasks",
        {
            "ImportSnapshotTasks": [
                {
                    "ImportTaskId": "import-snap-1",
                    "SnapshotTaskDetail": {
                        "Status": "active",
                        "Progress": "40",
                        "StatusMessage": "converting",
                    },
                }
            ]
        },
        poll,
    )
    ec2.add_response(
        "describe_import_snapshot_tasks",
        {
            "ImportSnapshotTasks": [
                {
                    "ImportTaskId": "import-snap-1",
                    "SnapshotTaskDetail": {"Status": "completed", "SnapshotId": "snap-1"},
                }
            ]
        },
        poll,
    )
    ec2.add_response("create_tags", {}, {"Resources": ["snap-1"], "Tags": tags})
    register = {
        "Name": name,
        "Description": description,
        "Architecture": arch,
        "BootMode": boot,
        "VirtualizationType": "hvm",
        "RootDeviceName": "/dev/xvda",
        "EnaSupport": True,
        "SriovNetSupport": "simple",
        "ImdsSupport": "v2.0",
        "BlockDeviceMappings": [
            {
                "DeviceName": "/dev/xvda",
                "Ebs": {
                    "SnapshotId": "snap-1",
                    "VolumeType": "gp3",
                    "DeleteOnTermination": True,
                },
            }
        ],
        "TagSpecifications": [{"ResourceType": "image", "Tags": tags}],
    }
    if lost_register:  # our retried request had registered the name: found by name
        ec2.add_client_error(
            "register_image",
            "InvalidAMIName.Duplicate",
            "AMI name is already in use",
            expected_params=register,
        )
        ec2.add_response(
            "describe_images",
            {"Images": [{"ImageId": "ami-1", "State": "pending", "Name": name, "Tags": tags}]},
            {"Owners": ["self"], "Filters": [{"Name": "name", "Values": [name]}]},
        )
    else:
        ec2.add_response("register_image", {"ImageId": "ami-1"}, register)
    ec2.add_response(
        "describe_images",
        {"Images": [{"ImageId": "ami-1", "State": "pending"}]},
        {"ImageIds": ["ami-1"]},
    )
    ec2.add_response(
        "describe_images",
        {"Images": [{"ImageId": "ami-1", "State": "available"}]},
        {"ImageIds": ["ami-1"]},
    )


@pytest.fixture
def bucket(moto: Any) -> str:
    moto_client(moto.url, "s3").create_bucket(Bucket=BUCKET)
    return BUCKET


def _objects(url: str) -> list[str]:
    return [
        o["Key"] for o in moto_client(url, "s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])
    ]


def test_publish_uploads_in_parts_imports_registers_and_cleans_up(moto, bucket, stubbed, tmp_path):
    image = make_image(tmp_path, 11 * MIB + 123)
    sha = sha_of(image)
    name, _, _ = names(sha)
    ec2 = stubbed("ec2")
    expect_no_image(ec2, name)
    ec2.add_response("describe_import_snapshot_tasks", {"ImportSnapshotTasks": []}, {})
    expect_import_and_register(ec2, sha)
    session = Session(region="us-east-1", endpoint_url=moto.url)
    seen: list[tuple[str, int]] = []

    def before_delete(params: dict[str, Any], **_: Any) -> None:  # the object as uploaded
        head = moto_client(moto.url, "s3").head_object(Bucket=BUCKET, Key=params["Key"])
        seen.append((head["Metadata"]["sha256"], head["ContentLength"]))

    session.client("s3").meta.events.register(
        "provide-client-params.s3.DeleteObject", before_delete
    )
    with counting(session, ("s3",)) as calls:
        result = publish(
            session, image, bucket, via="s3", flake_rev="abc123", poll=0, part_size=5 * MIB
        )
    assert (result.image_id, result.snapshot_id, result.state, result.reused) == (
        "ami-1",
        "snap-1",
        "available",
        False,
    )
    assert (
        calls.of("CreateMultipartUpload") == 1
        and calls.of("UploadPart") == 3
        and calls.of("PutObject") == 0
    )
    assert seen == [(sha, 11 * MIB + 123)]
    assert _objects(moto.url) == []  # removed afterwards
    ec2.assert_no_pending_responses()


def test_cli_prints_the_ami_id_and_json(moto, bucket, stubbed, tmp_path, capsys):
    image = make_image(tmp_path, 2 * MIB)
    sha = sha_of(image)
    name, _, tags = names(sha)
    ec2 = stubbed("ec2")
    for _ in range(2):
        ec2.add_response(
            "describe_images",
            {"Images": [{"ImageId": "ami-1", "State": "available", "Name": name, "Tags": tags}]},
            {"Owners": ["self"], "Filters": [{"Name": "name", "Values": [name]}]},
        )
    base = ["--endpoint-url", moto.url, "--region", "us-east-1"]
    text = run_cli(
        capsys,
        [
            *base,
            "ami",
            "publish",
            str(image),
            "--via",
            "s3",
            "--bucket",
            bucket,
            "--flake-rev",
            "abc123",
        ],
    )
    assert text.code == 0, text.err
    assert text.out == "ami-1\n" and "already registered as ami-1" in text.err
    document = run_cli(
        capsys,
        [
            *base,
            "--output",
            "json",
            "ami",
            "publish",
            str(image),
            "--via",
            "s3",
            "--bucket",
            bucket,
        ],
    ).json()
    assert document == {
        "image_id": "ami-1",
        "name": name,
        "snapshot_id": None,
        "region": "us-east-1",
        "reused": True,
        "state": "available",
    }
    ec2.assert_no_pending_responses()


def test_rerun_after_the_upload_skips_it(moto, bucket, stubbed, tmp_path):
    """A run that died after uploading: the object (same size, same sha256) is not sent again."""
    image = make_image(tmp_path, 3 * MIB, system="aarch64-linux")
    sha = sha_of(image)
    moto_client(moto.url, "s3").put_object(
        Bucket=BUCKET,
        Key=f"nixecs/ami/{sha}.vhd",
        Body=read_image_info(image).file.read_bytes(),
        Metadata={"sha256": sha},
    )
    name, _, _ = names(sha, "arm64")
    ec2 = stubbed("ec2")
    expect_no_image(ec2, name)
    ec2.add_response("describe_import_snapshot_tasks", {"ImportSnapshotTasks": []}, {})
    expect_import_and_register(ec2, sha, arch="arm64", boot="uefi")
    session = Session(region="us-east-1", endpoint_url=moto.url)
    with counting(session, ("s3",)) as calls:
        result = publish(session, image, bucket, via="s3", flake_rev="abc123", poll=0)
    assert result.image_id == "ami-1"
    assert calls.of("PutObject") == calls.of("UploadPart") == calls.of("CreateMultipartUpload") == 0
    assert _objects(moto.url) == []
    ec2.assert_no_pending_responses()


def test_rerun_after_the_import_started_follows_that_task(moto, bucket, stubbed, tmp_path):
    image = make_image(tmp_path, 1 * MIB)
    sha = sha_of(image)
    name, description, _ = names(sha)
    ec2 = stubbed("ec2")
    expect_no_image(ec2, name)
    ec2.add_response(
        "describe_import_snapshot_tasks",
        {
            "ImportSnapshotTasks": [
                {
                    "ImportTaskId": "import-snap-0",
                    "Description": "someone else's",
                    "SnapshotTaskDetail": {"Status": "active"},
                },
                {
                    "ImportTaskId": "import-snap-1",
                    "Description": description,
                    "SnapshotTaskDetail": {"Status": "active"},
                },
            ]
        },
        {},
    )
    expect_import_and_register(ec2, sha, task=False)
    session = Session(region="us-east-1", endpoint_url=moto.url)
    with counting(session, ("s3",)) as calls:
        result = publish(session, image, bucket, via="s3", flake_rev="abc123", poll=0)
    assert result.image_id == "ami-1" and result.snapshot_id == "snap-1"
    assert calls.of("PutObject") == 0 and calls.of("HeadObject") == 0
    ec2.assert_no_pending_responses()


def test_a_lost_register_answer_finds_the_image_by_name(moto, bucket, stubbed, tmp_path):
    image = make_image(tmp_path, 1 * MIB)
    sha = sha_of(image)
    name, _, _ = names(sha)
    ec2 = stubbed("ec2")
    expect_no_image(ec2, name)
    ec2.add_response("describe_import_snapshot_tasks", {"ImportSnapshotTasks": []}, {})
    expect_import_and_register(ec2, sha, lost_register=True)
    result = publish(
        Session(region="us-east-1", endpoint_url=moto.url),
        image,
        bucket,
        via="s3",
        flake_rev="abc123",
        poll=0,
    )
    assert result.image_id == "ami-1" and result.state == "available"
    ec2.assert_no_pending_responses()


def test_a_failed_import_is_one_line(moto, bucket, stubbed, tmp_path, capsys):
    image = make_image(tmp_path, 1 * MIB)
    sha = sha_of(image)
    name, _, _ = names(sha)
    ec2 = stubbed("ec2")
    expect_no_image(ec2, name)
    ec2.add_response("describe_import_snapshot_tasks", {"ImportSnapshotTasks": []}, {})
    name, description, tags = names(sha)
    tags = [t for t in tags if t["Key"] != "nixecs:flake"]
    ec2.add_response(
        "import_snapshot",
        {"ImportTaskId": "import-snap-9"},
        {
            "ClientToken": client_token(sha),
            "Description": description,
            "DiskContainer": {
                "Description": name,
                "Format": "VHD",
                "UserBucket": {"S3Bucket": BUCKET, "S3Key": f"nixecs/ami/{sha}.vhd"},
            },
            "TagSpecifications": [{"ResourceType": "import-snapshot-task", "Tags": tags}],
            "RoleName": "nixecs-vmimport",
        },
    )
    ec2.add_response(
        "describe_import_snapshot_tasks",
        {
            "ImportSnapshotTasks": [
                {
                    "ImportTaskId": "import-snap-9",
                    "SnapshotTaskDetail": {
                        "Status": "deleted",
                        "StatusMessage": "ClientError: Disk validation failed",
                    },
                }
            ]
        },
        {"ImportTaskIds": ["import-snap-9"]},
    )
    result = run_cli(
        capsys,
        [
            "--endpoint-url",
            moto.url,
            "--region",
            "us-east-1",
            "ami",
            "publish",
            str(image),
            "--via",
            "s3",
            "--bucket",
            bucket,
            "--import-role",
            "nixecs-vmimport",
        ],
    )
    assert result.code == 1
    assert (
        result.err.strip().splitlines()[-1]
        == "nixecs: error: import task import-snap-9 failed: ClientError: Disk validation failed"
    )
    assert _objects(moto.url) == [f"nixecs/ami/{sha}.vhd"]  # kept for the rerun


def test_a_name_taken_by_other_content_is_refused(moto, bucket, stubbed, tmp_path, capsys):
    image = make_image(tmp_path, 1 * MIB)
    ec2 = stubbed("ec2")
    ec2.add_response(
        "describe_images",
        {
            "Images": [
                {
                    "ImageId": "ami-9",
                    "State": "available",
                    "Tags": [{"Key": "nixecs:image-sha256", "Value": "f" * 64}],
                }
            ]
        },
    )
    result = run_cli(
        capsys,
        [
            "--endpoint-url",
            moto.url,
            "--region",
            "us-east-1",
            "ami",
            "publish",
            str(image),
            "--via",
            "s3",
            "--bucket",
            bucket,
            "--name",
            "mine",
        ],
    )
    assert result.code == 2 and "AMI name 'mine' is taken by ami-9" in result.err
    assert "built from a different image (nixecs:image-sha256 ffffffffffffffff…" in result.err


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(system="riscv64-linux"), "has no AMI architecture"),
        (lambda d: d.update(boot_mode="bios"), "boot_mode 'bios'"),
        # EC2's rule, which moto does not enforce: arm64 (Graviton) boots UEFI only.
        (
            lambda d: d.update(system="aarch64-linux", boot_mode="legacy-bios"),
            "an arm64 image must boot UEFI",
        ),
        (lambda d: d.pop("label"), "`label` is missing"),
        (lambda d: d["disks"].update(boot={"file": "x"}), "two-disk (ZFS)"),
        (lambda d: d.update(file="/nowhere/x.vhd", disks={}), "does not exist"),
    ],
)
def test_bad_image_info_is_a_usage_error(tmp_path, capsys, mutate, message):
    image = make_image(tmp_path, 1024)
    path = image / "nix-support" / "image-info.json"
    data = json.loads(path.read_text())
    mutate(data)
    path.write_text(json.dumps(data))
    result = run_cli(
        capsys,
        ["--region", "us-east-1", "ami", "publish", str(image), "--via", "s3", "--bucket", "b"],
    )
    assert result.code == 2 and message in result.err


def test_qcow2_is_refused(tmp_path, capsys):
    image = make_image(tmp_path, 1024, suffix=".qcow2")
    result = run_cli(
        capsys,
        ["--region", "us-east-1", "ami", "publish", str(image), "--via", "s3", "--bucket", "b"],
    )
    assert result.code == 2 and 'amazonImage.format = "raw"' in result.err


def test_image_info_with_register_image_section(tmp_path):
    """Newer nixpkgs adds `registerImage`; TpmSupport is honoured for UEFI images."""
    image = make_image(tmp_path, 1024, system="aarch64-linux", registerImage={"TpmSupport": "v2.0"})
    info = read_image_info(image)
    assert (info.architecture, info.boot_mode, info.format) == ("arm64", "uefi", "VHD")
    assert info.register == {"TpmSupport": "v2.0"}


def test_leftover_multipart_uploads_of_the_key_are_aborted(moto, bucket, tmp_path):
    """A CreateMultipartUpload whose answer was lost (or an interrupted run) leaves an upload
    that holds storage; after a successful upload, those of our key are aborted."""
    image = make_image(tmp_path, 6 * MIB)
    sha = sha_of(image)
    key = f"nixecs/ami/{sha}.vhd"
    s3 = moto_client(moto.url, "s3")
    s3.create_multipart_upload(Bucket=BUCKET, Key=key)
    s3.create_multipart_upload(Bucket=BUCKET, Key="someone/else")
    assert upload(
        Session(region="us-east-1", endpoint_url=moto.url),
        read_image_info(image).file,
        BUCKET,
        key,
        sha,
        5 * MIB,
    )
    assert [u["Key"] for u in s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads", [])] == [
        "someone/else"
    ]
    assert _objects(moto.url) == [key]
