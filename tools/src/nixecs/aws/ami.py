"""`nixecs ami publish`: the image builder's output → an EBS snapshot → register-image.

The snapshot is written block by block with the EBS direct APIs (`ebs.py`, the default), or,
with `--via s3`, uploaded to S3 and imported with ImportSnapshot (VM Import).

Reads `IMAGE_DIR/nix-support/image-info.json` as nixpkgs' amazon image writes it
(nixos/maintainers/scripts/ec2/amazon-image.nix: `label`, `system`, `boot_mode`, `file`,
`logical_bytes`, `disks.root.{file,logical_bytes}`, and in newer nixpkgs `registerImage`).

Every step can be rerun: the AMI name and the client tokens derive from the image's identity
(ebs.BlockMap: the SHA-256 of its non-zero 512 KiB blocks, holes never read), so a rerun after
any failure finds the AMI (done), the import task (waits for it), the snapshot (marked
uploaded only once every block was sent) or the uploaded object (skips the upload) it made
before, and never makes a second one. The identity is that of the bytes sent: the EBS upload
hashes each block as it reads it for sending and stops at the first one that is not the
hashed image's (ebs.upload); an image that changes size or is written to is refused.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from .. import naming
from ..diagnostics import OperationalFailure
from .ebs import BlockMap, EmptyImage, ImageChanged, allocated, fingerprint, scan
from .ownership import check_image
from .progress import Progress, sleep
from .session import Session, aws_errors, error_code

# Tags beyond naming's shared ones (host, flake): the NixOS label and the image's content hash.
ARCHITECTURES = {"x86_64-linux": "x86_64", "aarch64-linux": "arm64"}
BOOT_MODES = ("legacy-bios", "uefi", "uefi-preferred")
FORMATS = {".vhd": "VHD", ".vmdk": "VMDK", ".raw": "RAW", ".img": "RAW"}
ROOT_DEVICE = naming.ROOT_DEVICE
MIB = 1024 * 1024
DEFAULT_PART_SIZE = 64 * MIB
_AMI_NAME_BAD = re.compile(r"[^A-Za-z0-9()\[\] ./\-'@_]")


@dataclass(frozen=True)
class ImageInfo:
    label: str
    system: str
    architecture: str
    boot_mode: str
    file: Path
    format: str
    register: dict[str, Any]
    # The disk's size as the builder recorded it: `qemu-img info`'s virtual-size, which for a
    # raw image is its file size (nixpkgs nixos/maintainers/scripts/ec2/amazon-image.nix).
    logical_bytes: int | None = None


def read_image_info(image_dir: Path) -> ImageInfo:
    """Parse and check image-info.json; bad input is a usage error (exit 2)."""
    path = image_dir / "nix-support" / "image-info.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise click.BadParameter(
            f"{path} does not exist (is this `nix build .#ecs-node-ami`'s output?)"
        ) from None
    except (OSError, ValueError) as error:
        raise click.BadParameter(f"{path}: {error}") from None
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path}: not a JSON object")

    def text(key: str) -> str:
        value = data.get(key)
        if not isinstance(value, str) or not value:
            raise click.BadParameter(f"{path}: `{key}` is missing or not a string")
        return value

    label, system, boot_mode = text("label"), text("system"), text("boot_mode")
    if system not in ARCHITECTURES:
        raise click.BadParameter(
            f"{path}: system {system!r} has no AMI architecture (x86_64-linux, aarch64-linux)"
        )
    if boot_mode not in BOOT_MODES:
        raise click.BadParameter(
            f"{path}: boot_mode {boot_mode!r} is not one of {', '.join(BOOT_MODES)}"
        )
    if ARCHITECTURES[system] == "arm64" and boot_mode == "legacy-bios":
        # Graviton (arm64) instance types boot UEFI (DescribeInstanceTypes
        # SupportedBootModes; "uefi on Graviton instance types",
        # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-boot-mode.html):
        # such an AMI could never launch, and moto registers it anyway.
        raise click.BadParameter(f"{path}: an arm64 image must boot UEFI, not legacy-bios")
    disks = data.get("disks") if isinstance(data.get("disks"), dict) else {}
    if isinstance(disks, dict) and "boot" in disks:
        raise click.BadParameter(
            f"{path}: two-disk (ZFS) images are not supported; build the ext4 image"
        )
    root = disks.get("root") if isinstance(disks, dict) else None
    file_text = data.get("file") or (root.get("file") if isinstance(root, dict) else None)
    if not isinstance(file_text, str) or not file_text:
        raise click.BadParameter(
            f"{path}: neither `file` nor `disks.root.file` names the disk image"
        )
    file = Path(file_text)
    if not file.is_file() and (image_dir / file.name).is_file():
        file = image_dir / file.name  # the output was copied away from its store path
    if not file.is_file():
        # A FIFO or a device would block the reader or never end: refused unopened.
        what = "is not a regular file" if file.exists() else "does not exist"
        raise click.BadParameter(f"{path}: disk image {file_text} {what}")
    fmt = FORMATS.get(file.suffix.lower())
    if fmt is None:
        raise click.BadParameter(
            f"{file.name}: takes VHD, VMDK or RAW disks, not {file.suffix or 'this file'} "
            '(build with amazonImage.format = "raw")'
        )
    register = data.get("registerImage") if isinstance(data.get("registerImage"), dict) else {}
    # nixpkgs writes it as a JSON string (the shell substitutes qemu-img's number into
    # quotes); a number is taken too.
    logical = data.get(
        "logical_bytes", root.get("logical_bytes") if isinstance(root, dict) else None
    )
    if isinstance(logical, str) and logical.isascii() and logical.isdigit() and len(logical) < 20:
        logical = int(logical)
    if logical is not None and (
        not isinstance(logical, int) or isinstance(logical, bool) or logical < 0
    ):
        raise click.BadParameter(f"{path}: `logical_bytes` is not a whole number of bytes")
    return ImageInfo(
        label,
        system,
        ARCHITECTURES[system],
        boot_mode,
        file,
        fmt,
        dict(register or {}),
        logical,
    )


def hash_image(info: ImageInfo) -> BlockMap:
    """The image's block map and identity (ebs.scan: data blocks only, holes unread); its
    size must be the `logical_bytes` image-info.json states for a raw image."""
    size = info.file.stat().st_size
    if info.logical_bytes is not None and info.format == "RAW" and size != info.logical_bytes:
        raise click.BadParameter(
            f"{info.file} is {size} bytes, image-info.json says {info.logical_bytes} "
            "(`logical_bytes`): a truncated or replaced image; build it again"
        )
    with Progress(f"hash {info.file.name}", total=allocated(info.file), unit="bytes") as progress:
        try:
            return scan(info.file, progress.advance)
        except EmptyImage as error:
            raise click.BadParameter(f"{error}; build it again") from None


def default_name(host: str, info: ImageInfo, sha: str) -> str:
    name = f"nixecs-{host}-{info.label}-{info.architecture}-{sha[:12]}"
    return _AMI_NAME_BAD.sub("_", name)[:128]


def client_token(sha: str) -> str:
    """ImportSnapshot's idempotency token (at most 64 ASCII characters)."""
    return f"nixecs-{sha[:56]}"


@dataclass
class PublishResult:
    image_id: str
    name: str
    snapshot_id: str | None
    region: str
    reused: bool
    state: str
    # What copies into other regions carry (ami_copies.py): not read back from the AMI.
    description: str = ""
    tags: list[dict[str, str]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "image_id": self.image_id,
            "name": self.name,
            "snapshot_id": self.snapshot_id,
            "region": self.region,
            "reused": self.reused,
            "state": self.state,
        }


def _find_image(ec2: Any, name: str) -> dict[str, Any] | None:
    images = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": [name]}])[
        "Images"
    ]
    images = [
        i for i in images if i.get("State") not in ("deregistered", "failed", "invalid", "error")
    ]
    return dict(images[0]) if images else None


def _find_import(ec2: Any, description: str) -> dict[str, Any] | None:
    """An import task of ours for this content that is running or done (tasks stay listed for 7 days)."""
    for page in ec2.get_paginator("describe_import_snapshot_tasks").paginate():
        for task in page.get("ImportSnapshotTasks", []):
            detail = task.get("SnapshotTaskDetail", {})
            if task.get("Description") == description and detail.get("Status") in (
                "active",
                "completed",
            ):
                return dict(task)
    return None


def _uploaded(s3: Any, bucket: str, key: str, size: int, sha: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        head = s3.head_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error_code(error) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return (
        int(head.get("ContentLength", -1)) == size and head.get("Metadata", {}).get("sha256") == sha
    )


def upload(
    session: Session,
    path: Path,
    bucket: str,
    key: str,
    sha: str,
    part_size: int = DEFAULT_PART_SIZE,
) -> bool:
    """Multipart upload with a progress bar; False when the same object is already there."""
    from boto3.exceptions import S3UploadFailedError
    from boto3.s3.transfer import TransferConfig

    s3 = session.client("s3")
    size = path.stat().st_size
    with aws_errors(session, f"upload s3://{bucket}/{key}"):
        if _uploaded(s3, bucket, key, size, sha):
            return False
        config = TransferConfig(
            multipart_threshold=part_size, multipart_chunksize=part_size, max_concurrency=4
        )
        lock = threading.Lock()
        with Progress(f"upload {path.name}", total=size, unit="bytes") as progress:

            def advance(amount: int) -> None:
                with lock:
                    progress.advance(amount)

            try:
                s3.upload_file(
                    str(path),
                    bucket,
                    key,
                    ExtraArgs={"Metadata": {"sha256": sha}},
                    Config=config,
                    Callback=advance,
                )
            except S3UploadFailedError as error:
                # e.g. CompleteMultipartUpload went through but its answer was lost
                if not _uploaded(s3, bucket, key, size, sha):
                    raise OperationalFailure(
                        f"upload s3://{bucket}/{key} failed: {session.scrub(str(error))}"
                    ) from None
        _abort_leftovers(s3, bucket, key)
    return True


def _abort_leftovers(s3: Any, bucket: str, key: str) -> None:
    """Multipart uploads of this key left behind (a CreateMultipartUpload whose answer was
    lost, an interrupted run): they hold storage until aborted."""
    for page in s3.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=key):
        for upload in page.get("Uploads", []):
            if upload.get("Key") == key:
                s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload["UploadId"])


def publish(
    session: Session,
    image_dir: Path,
    bucket: str | None = None,
    *,
    via: str = "ebs",
    workers: int = 8,
    name: str | None = None,
    host: str = "ecs-node",
    flake_rev: str | None = None,
    import_role: str | None = None,
    poll: float = 15.0,
    part_size: int = DEFAULT_PART_SIZE,
    wait: bool = True,
    say: Any = None,
) -> PublishResult:
    info = read_image_info(image_dir)
    if via == "s3" and not bucket:
        raise click.UsageError("--via s3 needs --bucket")
    if via == "ebs" and info.format != "RAW":
        raise click.BadParameter(
            f"{info.file.name}: the EBS direct upload takes a raw disk image "
            '(build with amazonImage.format = "raw", as hosts/ecs-node does), or use --via s3'
        )
    image = hash_image(info)
    size, sha = image.size, image.identity
    ami_name = name or default_name(host, info, sha)
    key = f"nixecs/ami/{sha}{info.file.suffix}"
    description = f"nixecs {ami_name} sha256:{sha[:16]}"
    tags = [
        {"Key": "Name", "Value": ami_name},
        {"Key": naming.TAG_HOST, "Value": host},
        {"Key": naming.TAG_NIXOS_LABEL, "Value": info.label},
        {"Key": naming.TAG_IMAGE_SHA256, "Value": sha},
    ]
    if flake_rev:
        tags.append({"Key": naming.TAG_FLAKE, "Value": flake_rev})
    ec2 = session.client("ec2")

    def note(text: str) -> None:
        if say is not None:
            say(text)

    with aws_errors(session, "ami publish"):
        region = session.region_name()
        existing = _find_image(ec2, ami_name)
        snapshot_id: str | None = None
        if existing is not None:
            check_image(existing, ami_name, sha)  # never adopt (nor share) what is not ours
            note(f"{ami_name} is already registered as {existing['ImageId']}")
            result = PublishResult(
                existing["ImageId"], ami_name, None, region, True, str(existing.get("State"))
            )
        elif via == "ebs":
            from .ebs import upload as ebs_upload

            stats = ebs_upload(
                session, info.file, image, tags, description, workers=workers, poll=poll
            )
            snapshot_id = stats.snapshot_id
            if stats.reused:
                note(f"snapshot {snapshot_id} of this image already exists; not uploaded again")
            else:
                note(
                    f"snapshot {snapshot_id}: {stats.blocks_sent} of {stats.blocks_total} blocks "
                    f"sent ({stats.bytes_sent / MIB:.0f} MiB of {size / MIB:.0f} MiB)"
                )
            image_id = _register(ec2, ami_name, info, snapshot_id, tags, description)
            result = PublishResult(image_id, ami_name, snapshot_id, region, False, "pending")
        else:
            assert bucket is not None
            task = _find_import(ec2, description)
            if task is not None:
                note(f"resuming import task {task['ImportTaskId']}")
                task_id = str(task["ImportTaskId"])
            else:
                if not upload(session, info.file, bucket, key, sha, part_size):
                    note(f"s3://{bucket}/{key} is already uploaded")
                elif fingerprint(info.file) != image.fingerprint:
                    # S3 read the file itself: a write during the upload is caught here, and
                    # the object (named by the identity it no longer has) is removed.
                    _remove_object(session.client("s3"), bucket, key)
                    raise ImageChanged(
                        f"{info.file}: the disk image changed while it was uploaded; run again"
                    )
                request: dict[str, Any] = {
                    "ClientToken": client_token(sha),
                    "Description": description,
                    "DiskContainer": {
                        "Description": ami_name,
                        "Format": info.format,
                        "UserBucket": {"S3Bucket": bucket, "S3Key": key},
                    },
                    "TagSpecifications": [{"ResourceType": "import-snapshot-task", "Tags": tags}],
                }
                if import_role:
                    request["RoleName"] = import_role
                response = ec2.import_snapshot(**request)
                task_id = str(response["ImportTaskId"])
            snapshot_id = _wait_import(ec2, task_id, poll)
            ec2.create_tags(Resources=[snapshot_id], Tags=tags)
            image_id = _register(ec2, ami_name, info, snapshot_id, tags, description)
            result = PublishResult(image_id, ami_name, snapshot_id, region, False, "pending")
        if wait and result.state != "available":
            result.state = _wait_image(ec2, result.image_id, poll)
        if via == "s3":
            assert bucket is not None
            _remove_object(session.client("s3"), bucket, key)
    result.description, result.tags = description, tags
    return result


def _wait_import(ec2: Any, task_id: str, poll: float) -> str:
    with Progress(f"import-snapshot {task_id}", total=100) as progress:
        while True:
            tasks = ec2.describe_import_snapshot_tasks(ImportTaskIds=[task_id])[
                "ImportSnapshotTasks"
            ]
            if not tasks:
                raise OperationalFailure(f"import task {task_id} is gone")
            detail = tasks[0].get("SnapshotTaskDetail", {})
            status = str(detail.get("Status", ""))
            message = str(detail.get("StatusMessage", "") or "")
            percent = float(detail.get("Progress") or 0)
            if status == "completed":
                progress.update(100, status="completed")
                return str(detail["SnapshotId"])
            if status in ("deleting", "deleted"):
                raise OperationalFailure(f"import task {task_id} failed: {message or status}")
            progress.update(percent, status=message or status)
            sleep(poll)


def _register(
    ec2: Any,
    name: str,
    info: ImageInfo,
    snapshot_id: str,
    tags: list[dict[str, str]],
    description: str,
) -> str:
    from botocore.exceptions import ClientError

    register = info.register
    args: dict[str, Any] = {
        "Name": name,
        "Description": description,
        "Architecture": info.architecture,
        "BootMode": info.boot_mode,
        "VirtualizationType": "hvm",
        "RootDeviceName": ROOT_DEVICE,
        "EnaSupport": True,
        "SriovNetSupport": "simple",
        "ImdsSupport": "v2.0",
        "BlockDeviceMappings": [
            {
                "DeviceName": ROOT_DEVICE,
                "Ebs": {
                    "SnapshotId": snapshot_id,
                    "VolumeType": "gp3",
                    "DeleteOnTermination": True,
                },
            }
        ],
        "TagSpecifications": [{"ResourceType": "image", "Tags": tags}],
    }
    if register.get("TpmSupport") and info.boot_mode == "uefi":
        args["TpmSupport"] = register["TpmSupport"]
    try:
        return str(ec2.register_image(**args)["ImageId"])
    except ClientError as error:
        if error_code(error) != "InvalidAMIName.Duplicate":
            raise
        existing = _find_image(ec2, name)  # our own retried request registered it…
        if existing is None:
            raise
        # … or someone registered the name meanwhile: adopted only if it is this image
        check_image(existing, name, _tag(tags, naming.TAG_IMAGE_SHA256))
        return str(existing["ImageId"])


def _tag(tags: list[dict[str, str]], key: str) -> str:
    return next((t["Value"] for t in tags if t["Key"] == key), "")


def snapshots_of(session: Session, image_id: str) -> list[str]:
    """The snapshots the AMI's block devices are made from."""
    ec2 = session.client("ec2")
    with aws_errors(session, "ami publish"):
        image = ec2.describe_images(ImageIds=[image_id])["Images"][0]
    return [
        str(m["Ebs"]["SnapshotId"])
        for m in image.get("BlockDeviceMappings", [])
        if m.get("Ebs", {}).get("SnapshotId")
    ]


def _wait_image(ec2: Any, image_id: str, poll: float) -> str:
    with Progress(f"AMI {image_id}", total=None) as progress:
        while True:
            images = ec2.describe_images(ImageIds=[image_id])["Images"]
            state = str(images[0].get("State")) if images else "missing"
            progress.update(status=state)
            if state == "available":
                return state
            if state != "pending":
                reason = images[0].get("StateReason", {}).get("Message", "") if images else ""
                raise OperationalFailure(
                    f"AMI {image_id} is {state}{': ' + reason if reason else ''}"
                )
            sleep(poll)


def _remove_object(s3: Any, bucket: str, key: str) -> None:
    from botocore.exceptions import ClientError

    try:
        s3.delete_object(Bucket=bucket, Key=key)
    except ClientError as error:
        if error_code(error) not in ("NoSuchKey", "404"):
            raise
