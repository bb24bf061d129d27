"""`nixecs ami publish --regions R… --share ACCOUNT…`: the published AMI copied to further
regions and shared with other accounts. Every step finds what a previous run did first, so a
rerun after any failure completes only what is missing.

Facts relied on (EC2 API reference, and botocore's EC2 model, which has these members):
- CopyImage (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CopyImage.html) is
  called in the *destination* region, with SourceRegion and SourceImageId; Name and
  Description are the new AMI's; ClientToken makes a retried request idempotent;
  CopyImageTags copies the source AMI's user-defined tags. The copy starts `pending`.
- ModifyImageAttribute with `LaunchPermission={"Add": [{"UserId": …}]}` lets an account
  launch the AMI (API_ModifyImageAttribute.html); adding a permission that exists is not an
  error. DescribeImageAttribute(Attribute="launchPermission") lists them.
- ModifySnapshotAttribute with Attribute="createVolumePermission", OperationType="add",
  UserIds=[…] lets the account create volumes from the AMI's snapshot — and so copy the AMI
  into its own account (API_ModifySnapshotAttribute.html).

Each region is found again by the AMI's name (unique per image content: ami.default_name),
so a copy that was started by an earlier run is waited for, never started twice. The copies
are waited for in parallel (one thread per region, each with its own client).
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from .. import naming
from ..diagnostics import OperationalFailure
from .ownership import NotOurs, check_image
from .progress import sleep
from .session import Session, aws_errors

ACCOUNT_RE_TEXT = r"[0-9]{12}"


@dataclass
class RegionCopy:
    region: str
    image_id: str
    state: str
    reused: bool
    snapshot_ids: list[str] = field(default_factory=list)
    shared_with: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "region": self.region,
            "image_id": self.image_id,
            "state": self.state,
            "reused": self.reused,
            "snapshot_ids": self.snapshot_ids,
            "shared_with": self.shared_with,
        }


def copy_token(name: str, region: str) -> str:
    """CopyImage's ClientToken: the same for the same AMI into the same region (at most 64
    ASCII characters, as EC2's idempotency tokens)."""
    return "nixecs-" + hashlib.sha256(f"{name}\0{region}".encode()).hexdigest()[:56]


def _regional(session: Session, region: str) -> Session:
    return Session(
        region=region,
        profile=session.profile,
        endpoint_url=session.endpoint_url,
        max_attempts=session.max_attempts,
        budget=session.budget,
        deadline=session.deadline,
    )


def _find(ec2: Any, name: str) -> dict[str, Any] | None:
    from .ami import _find_image

    return _find_image(ec2, name)


def _snapshots(image: dict[str, Any]) -> list[str]:
    return [
        str(m["Ebs"]["SnapshotId"])
        for m in image.get("BlockDeviceMappings", [])
        if m.get("Ebs", {}).get("SnapshotId")
    ]


def _wait(ec2: Any, image_id: str, poll: float) -> dict[str, Any]:
    while True:
        images = ec2.describe_images(ImageIds=[image_id])["Images"]
        state = str(images[0].get("State")) if images else "missing"
        if state == "available":
            return dict(images[0])
        if state != "pending":
            reason = images[0].get("StateReason", {}).get("Message", "") if images else ""
            raise OperationalFailure(f"AMI {image_id} is {state}{': ' + reason if reason else ''}")
        sleep(poll)


def copy_one(
    session: Session,
    *,
    source_region: str,
    source_image_id: str,
    name: str,
    description: str,
    tags: list[dict[str, str]],
    region: str,
    wait: bool,
    poll: float,
) -> RegionCopy:
    regional = _regional(session, region)
    ec2 = regional.client("ec2")
    with aws_errors(regional, f"ami publish: copy to {region}"):
        existing = _find(ec2, name)
        if existing is not None:
            # never adopt, tag or share an AMI of that name that is not a copy of this image
            sha = next((t["Value"] for t in tags if t["Key"] == naming.TAG_IMAGE_SHA256), "")
            check_image(existing, name, sha, region=region)
            result = RegionCopy(region, str(existing["ImageId"]), str(existing.get("State")), True)
        else:
            response = ec2.copy_image(
                SourceRegion=source_region,
                SourceImageId=source_image_id,
                Name=name,
                Description=description,
                ClientToken=copy_token(name, region),
                CopyImageTags=True,
            )
            result = RegionCopy(region, str(response["ImageId"]), "pending", False)
        # Our tags on the copy whatever CopyImageTags did: they are how the image is recognised
        # (name, content hash), and CreateTags with the same tags is a no-op.
        ec2.create_tags(Resources=[result.image_id], Tags=tags)
        if wait and result.state != "available":
            image = _wait(ec2, result.image_id, poll)
            result.state = "available"
            result.snapshot_ids = _snapshots(image)
        elif result.state == "available" and existing is not None:
            result.snapshot_ids = _snapshots(existing)
    return result


def share(
    session: Session, region: str, image_id: str, snapshot_ids: list[str], accounts: list[str]
) -> list[str]:
    """Launch permission on the AMI and createVolumePermission on its snapshots for each
    account; returns the accounts that were added now (the others already had both)."""
    if not accounts:
        return []
    regional = _regional(session, region)
    ec2 = regional.client("ec2")
    added: list[str] = []
    with aws_errors(regional, f"ami publish: share in {region}"):
        have = {
            p.get("UserId")
            for p in ec2.describe_image_attribute(
                ImageId=image_id, Attribute="launchPermission"
            ).get("LaunchPermissions", [])
        }
        missing = [a for a in accounts if a not in have]
        if missing:
            ec2.modify_image_attribute(
                ImageId=image_id,
                LaunchPermission={"Add": [{"UserId": a} for a in missing]},
            )
            added += missing
        for snapshot in snapshot_ids:
            volume = {
                p.get("UserId")
                for p in ec2.describe_snapshot_attribute(
                    SnapshotId=snapshot, Attribute="createVolumePermission"
                ).get("CreateVolumePermissions", [])
            }
            lacking = [a for a in accounts if a not in volume]
            if lacking:
                ec2.modify_snapshot_attribute(
                    SnapshotId=snapshot,
                    Attribute="createVolumePermission",
                    OperationType="add",
                    UserIds=lacking,
                )
                added += [a for a in lacking if a not in added]
    return sorted(added)


def distribute(
    session: Session,
    *,
    source_region: str,
    source_image_id: str,
    source_snapshot_ids: list[str],
    name: str,
    description: str,
    tags: list[dict[str, str]],
    regions: list[str],
    accounts: list[str],
    wait: bool,
    poll: float,
    say: Any = None,
) -> list[RegionCopy]:
    """Copy into each of `regions` (in parallel), then share the source AMI and every copy
    with `accounts`. Sharing needs each copy available (its snapshot exists only then)."""
    targets = [r for r in dict.fromkeys(regions) if r != source_region]
    with ThreadPoolExecutor(max_workers=max(1, min(len(targets), 16))) as pool:
        futures = {
            region: pool.submit(
                copy_one,
                session,
                source_region=source_region,
                source_image_id=source_image_id,
                name=name,
                description=description,
                tags=tags,
                region=region,
                wait=wait or bool(accounts),
                poll=poll,
            )
            for region in targets
        }
        copies: list[RegionCopy] = []
        failures: list[str] = []
        refused: list[str] = []
        for region, future in futures.items():
            try:
                copies.append(future.result())
            except NotOurs as error:  # a foreign AMI under the name: refused, exit 2
                refused.append(error.message)
            except Exception as error:  # one region's failure must not hide the others'
                failures.append(f"{region}: {error}")
    for c in copies:
        if say is not None:
            say(f"{c.region}: {c.image_id} {'already there' if c.reused else 'copied'} ({c.state})")
    if accounts:
        source_added = share(session, source_region, source_image_id, source_snapshot_ids, accounts)
        if say is not None and source_added:
            say(f"{source_region}: {source_image_id} shared with {', '.join(source_added)}")
        for c in copies:
            c.shared_with = share(session, c.region, c.image_id, c.snapshot_ids, accounts)
            if say is not None and c.shared_with:
                say(f"{c.region}: {c.image_id} shared with {', '.join(c.shared_with)}")
    if refused:
        raise NotOurs("; ".join(refused + failures))
    if failures:
        raise OperationalFailure(
            "ami publish: " + "; ".join(failures) + " (rerun the same command to complete it)"
        )
    return copies
