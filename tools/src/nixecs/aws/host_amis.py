"""`ami: {host: web}` → the AMI id, per region: the newest available AMI of this account that
`nixecs ami publish --host web` tagged (and, when the group or the fleet's `flake:` pins one,
with that flake revision).

An AMI counts only when it carries the marks publish writes: owned by this account
(DescribeImages Owners=self: a public or shared AMI someone else tagged `nixecs:host=web` is
never chosen), `nixecs:host` and `nixecs:image-sha256` (publish's ownership mark; an AMI
tagged by hand with just the host is not ours). Only `available` AMIs: a `pending` one cannot
launch yet, and deregistered or failed ones never again
(https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_Image.html, `imageState`).
Newest by CreationDate; two equally new AMIs of different images are ambiguous (E504), of the
same image (a publish repeated under another name) the same choice whichever is taken.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .. import naming
from ..diagnostics import InvalidInput, Report
from ..fleet.host_ami import AmiByHost, flake_rev
from ..fleet.model import Fleet, Group
from .session import Session, aws_errors

E_NO_AMI = "E504"


@dataclass(frozen=True)
class Choice:
    image_id: str | None
    problem: str = ""  # why there is none (no AMI; two equally new)


def _tags(image: dict[str, Any]) -> dict[str, str]:
    return {str(t.get("Key")): str(t.get("Value")) for t in image.get("Tags") or []}


def choose(images: list[dict[str, Any]], host: str, rev: str | None) -> Choice:
    """The newest of `images` (DescribeImages results) that is ours, of `host` and, when
    given, of a flake revision starting with `rev`."""
    ours = []
    for image in images:
        tags = _tags(image)
        if image.get("State") != "available" or tags.get(naming.TAG_HOST) != host:
            continue
        if not tags.get(naming.TAG_IMAGE_SHA256):
            continue
        if rev is not None and not tags.get(naming.TAG_FLAKE, "").startswith(rev):
            continue
        ours.append(image)
    if not ours:
        return Choice(None, "none")
    newest = max(str(i.get("CreationDate", "")) for i in ours)
    top = sorted(
        (i for i in ours if str(i.get("CreationDate", "")) == newest),
        key=lambda i: str(i["ImageId"]),
    )
    if len({_tags(i)[naming.TAG_IMAGE_SHA256] for i in top}) > 1:
        return Choice(
            None,
            f"{', '.join(str(i['ImageId']) for i in top)} are equally new ({newest}) and hold "
            "different images",
        )
    return Choice(str(top[0]["ImageId"]))


def _describe(ec2: Any, host: str) -> list[dict[str, Any]]:
    images: list[dict[str, Any]] = []
    for page in ec2.get_paginator("describe_images").paginate(
        Owners=["self"], Filters=[{"Name": f"tag:{naming.TAG_HOST}", "Values": [host]}]
    ):
        images.extend(page.get("Images", []))
    return images


def wanted_rev(fleet: Fleet, by_host: AmiByHost) -> str | None:
    return by_host.rev or flake_rev(fleet.flake)


def publish_command(fleet_file: str, host: str, region: str, rev: str | None) -> str:
    revision = f" from a checkout at revision {rev}" if rev else ""
    return f"`nixecs --region {region} ami publish --host {host} --fleet {fleet_file}`{revision}"


def resolved(
    session: Session, fleet: Fleet, fleet_file: str, what: str, only: str | None = None
) -> Fleet:
    """`resolve`, bounded and with AWS errors reported as `what`; InvalidInput (exit 2) with
    every group that has no AMI."""
    with aws_errors(session, what):
        found, report = resolve(session, fleet, fleet_file, only)
    if report.has_errors:
        raise InvalidInput(report)
    return found


def resolve(
    session: Session, fleet: Fleet, fleet_file: str, only: str | None = None
) -> tuple[Fleet, Report]:
    """The fleet with each `ami: {host: …}` group's `ami` (or only the group whose key is
    `only`) set to the AMI chosen in the session's region; a Report with E504 at each group
    that has none."""
    report = Report()
    groups = [
        g
        for c in fleet.clusters.values()
        for g in c.groups.values()
        if g.ami_host is not None and only in (None, g.key)
    ]
    if not groups:
        return fleet, report
    region = session.region_name()
    ec2 = session.client("ec2")
    found: dict[str, list[dict[str, Any]]] = {}
    chosen: dict[str, Group] = {}
    for group in groups:
        assert group.ami_host is not None
        host = group.ami_host.host
        if host not in found:
            found[host] = _describe(ec2, host)
        rev = wanted_rev(fleet, group.ami_host)
        choice = choose(found[host], host, rev)
        if choice.image_id is None:
            pinned = f" at flake revision {rev}" if rev else ""
            reason = (
                f"no available AMI of host {host!r}{pinned} published by this account in {region}"
                if choice.problem == "none"
                else f"host {host!r}{pinned} in {region}: {choice.problem}"
            )
            report.add(
                E_NO_AMI,
                f"{reason}: publish one with {publish_command(fleet_file, host, region, rev)}",
                fleet.document.locate(group.ami_host.path),
            )
            continue
        chosen[group.key] = replace(group, ami=choice.image_id)
    return with_groups(fleet, chosen), report


def with_groups(fleet: Fleet, groups: dict[str, Group]) -> Fleet:
    """`fleet` with these groups (by CLUSTER/GROUP key) replaced."""
    clusters = {
        name: replace(
            cluster,
            groups={
                key: groups.get(f"{name}/{key}", group) for key, group in cluster.groups.items()
            },
        )
        for name, cluster in fleet.clusters.items()
    }
    return replace(fleet, clusters=clusters)


def check_roll(session: Session, fleet: Fleet, key: str, fleet_file: str) -> str:
    """Before `roll --fleet` of an `ami: {host: …}` group: the AMI the group resolves to in
    this region must be the one its launch template's latest version boots, else the refresh
    would replace the instances with the same old image. `deploy` makes the new version (the
    stack owns the launch template: roll does not edit it behind CloudFormation's back).
    Returns a line saying what the instances will run; UsageError (exit 2) when they differ."""
    import click

    cluster, _, name = key.partition("/")
    if fleet.name_prefix and f"{fleet.name_prefix}-{cluster}" in fleet.clusters:
        cluster = f"{fleet.name_prefix}-{cluster}"
    try:
        group = fleet.group(f"{cluster}/{name}")
    except KeyError as error:
        raise click.BadParameter(
            f"{fleet_file}: {error.args[0]}", param_hint="CLUSTER/GROUP"
        ) from None
    if group.ami_host is None:
        return f"{key}: AMI {group.ami} (an id in the fleet file)"
    chosen = resolved(session, fleet, fleet_file, f"roll {key}", only=group.key)
    image = chosen.group(group.key).ami
    template = naming.group_resource_name(cluster, name)
    with aws_errors(session, f"roll {key}"):
        versions = session.client("ec2").describe_launch_template_versions(
            LaunchTemplateName=template, Versions=["$Latest"]
        )["LaunchTemplateVersions"]
    current = versions[0].get("LaunchTemplateData", {}).get("ImageId") if versions else None
    host = group.ami_host.host
    if current != image:
        raise click.UsageError(
            f"{key}: the newest AMI of host {host!r} in {session.region_name()} is {image}, and "
            f"launch template {template} boots {current or 'nothing'}: run `nixecs deploy "
            f"{fleet_file}` first (a new launch template version), then roll"
        )
    return f"{key}: rolling to {image}, the newest AMI of host {host!r}"
