"""An import-snapshot stand-in for the local emulator: moto 5.2 has no ImportSnapshot or
DescribeImportSnapshotTasks (moto/ec2/responses implements neither), so `nixecs ami publish
--via s3` against `nixecs local` would end in "not implemented". The emulator's server
(local/server.py) adds the two actions to moto's EC2 responses, in its own process.

What is emulated, and what is not (docs/aws.md says the same):

- ImportSnapshot reads the uploaded object's size from moto's S3 (a missing object or bucket
  is refused, InvalidParameter) and records an `active` task tagged with its
  TagSpecifications; the same ClientToken returns the same task, as the API's idempotency
  token does (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ImportSnapshot.html).
- Each DescribeImportSnapshotTasks that names a task advances it: `active`/`pending` 0%,
  `active`/`converting` 40%, then `completed` with a snapshot moto's EC2 now holds (sized to
  the object, in whole GiB; the volume moto needs to make it is deleted, as AWS leaves none). Nothing is converted: the disk's contents, its
  format and the vmimport role are not checked.
- RegisterImage keeps its TagSpecifications: moto 5.2 (ec2/responses/amis.py register_image)
  reads only Name and Description, so an AMI `ami publish` registered carried none of the
  `nixecs:image-sha256` mark it recognises its own AMIs by, and a rerun refused it. AWS
  applies them ("The tags to apply to the AMI object, the snapshot, or both":
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_RegisterImage.html); here the
  `image` ones are applied (snapshots are tagged by their own CreateTags in ami publish).
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from typing import Any

GIB = 1024**3
STEPS = (("pending", "0"), ("converting", "40"))


@dataclass
class ImportTask:
    id: str
    token: str
    description: str
    disk: dict[str, Any]
    size: int
    tags: list[dict[str, str]]
    step: int = 0
    snapshot: str = ""
    status: str = "active"
    message: str = field(default=STEPS[0][0])
    progress: str = field(default=STEPS[0][1])

    def describe(self) -> dict[str, Any]:
        detail: dict[str, Any] = {
            "Status": self.status,
            "DiskImageSize": float(self.size),
            "Format": str(self.disk.get("Format", "")).upper(),
            "UserBucket": self.disk.get("UserBucket", {}),
        }
        if self.status == "active":
            detail |= {"StatusMessage": self.message, "Progress": self.progress}
        else:
            detail |= {"SnapshotId": self.snapshot}
        return {
            "ImportTaskId": self.id,
            "Description": self.description,
            "SnapshotTaskDetail": detail,
            "Tags": self.tags,
        }


_LOCK = threading.Lock()
_TASKS: dict[tuple[str, str], list[ImportTask]] = {}  # (account, region) → tasks


def _object_size(account: str, bucket: str, key: str) -> int | None:
    from moto.s3.exceptions import MissingBucket
    from moto.s3.models import s3_backends

    try:
        found = s3_backends[account]["global"].get_object(bucket, key)
    except MissingBucket:
        return None
    return None if found is None else int(found.size)


def _complete(task: ImportTask, ec2: Any, region: str) -> None:
    size_gib = max(1, -(-task.size // GIB))
    volume = ec2.create_volume(size=size_gib, zone_name=f"{region}a")
    snapshot = ec2.create_snapshot(volume.id, f"Created by the local emulator for {task.id}")
    # moto makes a snapshot only of a volume; AWS's import leaves none behind (the snapshot
    # keeps its size), so a publish leaves no stray volume in `describe-volumes`.
    ec2.delete_volume(volume.id)
    task.snapshot, task.status = snapshot.id, "completed"


def install() -> None:
    """Add ImportSnapshot and DescribeImportSnapshotTasks to moto's EC2 server."""
    from moto.core.responses import ActionResult
    from moto.ec2.exceptions import InvalidParameterValueError
    from moto.ec2.responses import EC2Response

    def import_snapshot(self: Any) -> Any:
        disk = dict(self._get_param("DiskContainer") or {})
        bucket = disk.get("UserBucket", {}).get("S3Bucket", "")
        key = disk.get("UserBucket", {}).get("S3Key", "")
        token = str(self._get_param("ClientToken") or "")
        tags = [
            {"Key": t["Key"], "Value": t["Value"]}
            for spec in self._get_param("TagSpecifications", [])
            for t in spec.get("Tags", [])
        ]
        with _LOCK:
            known = _TASKS.setdefault((self.current_account, self.region), [])
            same = next((t for t in known if token and t.token == token), None)
            if same is not None:
                return ActionResult({"ImportTaskId": same.id})
            size = _object_size(self.current_account, bucket, key)
            if size is None:
                raise InvalidParameterValueError(f"s3://{bucket}/{key} (no such object)")
            task = ImportTask(
                id=f"import-snap-{secrets.token_hex(9)[:17]}",
                token=token,
                description=str(self._get_param("Description") or ""),
                disk=disk,
                size=size,
                tags=tags,
            )
            known.append(task)
        return ActionResult({"ImportTaskId": task.id, "Description": task.description})

    def describe_import_snapshot_tasks(self: Any) -> Any:
        wanted = list(self._get_param("ImportTaskIds") or [])
        with _LOCK:
            known = _TASKS.get((self.current_account, self.region), [])
            shown = [t for t in known if not wanted or t.id in wanted]
            for task in shown:
                if wanted and task.status == "active":  # polled by id: time passes
                    task.step += 1
                    if task.step < len(STEPS):
                        task.message, task.progress = STEPS[task.step]
                    else:
                        _complete(task, self.ec2_backend, self.region)
            answer = [t.describe() for t in shown]
        return ActionResult({"ImportSnapshotTasks": answer})

    original_register = EC2Response.register_image

    def register_image(self: Any) -> Any:
        result = original_register(self)
        tags = {
            t["Key"]: t["Value"]
            for spec in self._get_param("TagSpecifications", [])
            if spec.get("ResourceType") == "image"
            for t in spec.get("Tags", [])
        }
        if tags:
            image_id = self.ec2_backend.describe_images(
                filters={"name": [self._get_param("Name")]}
            )[0].id
            self.ec2_backend.create_tags([image_id], tags)
        return result

    EC2Response.register_image = register_image  # type: ignore[method-assign]
    EC2Response.import_snapshot = import_snapshot  # type: ignore[attr-defined]
    EC2Response.describe_import_snapshot_tasks = describe_import_snapshot_tasks  # type: ignore[attr-defined]
