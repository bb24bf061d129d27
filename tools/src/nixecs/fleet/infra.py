"""The infrastructure keys of groups and clusters (issue 10, items 6-8): a group's root
volume and key pair, a cluster's Container Insights, log retention and log key, and its
`overrides:` escape hatch. The loader calls these with its issue list; each check reports
at the key it is about.

Bounds come from the AWS API models shipped in botocore 1.44.8 (the version pinned in the
test environment), whose text is the EC2 and CloudWatch Logs API references:
- botocore/data/ec2/2016-11-15/service-2.json, CreateVolumeRequest and
  LaunchTemplateEbsBlockDeviceRequest (Size/VolumeSize, Iops, Throughput), the same text as
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateVolume.html
- botocore/data/logs/2014-03-28/service-2.json, shape `Days` (PutRetentionPolicy)
- botocore/data/ecs/2014-11-13/service-2.json, ClusterSetting.value
- botocore/data/ec2/2016-11-15/service-2.json, CreateKeyPairRequest.KeyName
"""

from __future__ import annotations

import math
from typing import TypedDict

from .. import settings as s
from ..lazyre import lazy
from ..records import dataclass
from ..settings import Issue
from .decl import (
    Node,
    as_int,
    as_str,
    check,
    default_of,
    entries,
    enum,
    integer,
    keys,
    mapping,
    member,
    obj,
    string,
    values,
)
from .yaml12 import Path

# -- groups: root volume --------------------------------------------------------------------

# Volume types a root volume may have here. st1/sc1 cannot boot (EC2 User Guide: HDD volumes
# "cannot be a boot volume"); `standard` is previous generation.
VOLUME_TYPES = ("gp3", "gp2", "io1", "io2")
# (low, high) GiB per type: CreateVolume `Size` (botocore 1.44.8).
VOLUME_SIZE_GIB = {"gp2": (1, 16384), "gp3": (1, 65536), "io1": (4, 16384), "io2": (4, 65536)}
# Provisioned IOPS per type: CreateVolume `Iops` — "Required for io1 and io2 volumes. Optional
# for gp3 volumes. Omit for all other volume types." gp3: 3,000 (default) - 80,000.
VOLUME_IOPS = {"gp3": (3000, 80000), "io1": (100, 64000), "io2": (100, 256000)}
IOPS_REQUIRED = ("io1", "io2")
# CreateVolume `Throughput`: "Supported for gp3 volumes only ... Valid Range: 125 - 2000 MiB/s".
THROUGHPUT_TYPES = ("gp3",)
THROUGHPUT_MIBS = (125, 2000)
# LaunchTemplate EbsBlockDevice KmsKeyId: "key ID, key alias, key ARN, or alias ARN".
_KEY_ID = r"(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})"
_ALIAS = r"alias/[A-Za-z0-9/_-]{1,250}"
_ARN = r"arn:aws(?:-[a-z]+)*:kms:[a-z0-9-]+:[0-9]{12}:"
VOLUME_KMS_KEY_RE = lazy(rf"{_KEY_ID}|{_ALIAS}|{_ARN}(?:key/{_KEY_ID}|{_ALIAS})")
VOLUME_KMS_RULE = "a KMS key id, key ARN, alias/NAME or alias ARN"
# CreateKeyPair KeyName: "Constraints: Up to 255 ASCII characters".
KEY_PAIR_RE = lazy(r"[ -~]{1,255}")

# The declaration (fleet/decl.py). The size, IOPS and throughput ranges are the union over the
# volume types (what an editor can check); root_volume checks each against its type's.
ROOT_VOLUME = obj(
    "the root EBS volume (always encrypted)",
    order=("size_gib", "type", "iops", "throughput", "kms_key"),
    size_gib=integer(
        "size in GiB; the AMI's snapshot size when omitted",
        1,
        65536,
        aws="CreateVolume Size: gp2/io1 up to 16384, gp3/io2 up to 65536",
        example=30,
    ),
    type=enum("the volume type", VOLUME_TYPES, default="gp3", example="gp3"),
    iops=integer(
        "provisioned IOPS (gp3, io1, io2; required for io1/io2)",
        100,
        256000,
        aws="CreateVolume Iops; gp3 3000-80000 and at most 500 per GiB",
        example=3000,
    ),
    throughput=integer(
        "throughput in MiB/s (gp3 only)",
        *THROUGHPUT_MIBS,
        aws="CreateVolume Throughput 125-2000, at most 0.25 MiB/s per IOPS",
        example=125,
    ),
    kms_key=string(
        "KMS key of the volume (key id, ARN, alias/NAME or alias ARN); the account's EBS default when omitted",
        pattern=VOLUME_KMS_KEY_RE.pattern,
        rule=VOLUME_KMS_RULE,
        example="alias/ebs",
    ),
)
# The size, IOPS and throughput: checked against the volume type's own range (below).
_BY_TYPE = ("size_gib", "iops", "throughput")
KEY_PAIR = string(
    "an EC2 key pair for SSH",
    pattern=KEY_PAIR_RE.pattern,
    rule="an EC2 key pair name (1-255 ASCII)",
    aws="CreateKeyPair KeyName: up to 255 ASCII characters",
    example="ops",
)


@dataclass(frozen=True)
class RootVolume:
    """The group's root EBS volume (always encrypted). size_gib None: the AMI's snapshot
    size; kms_key None: the account's default EBS key (aws/ebs unless changed)."""

    type: str = default_of(ROOT_VOLUME, "type", str)
    size_gib: int | None = None
    iops: int | None = None
    throughput: int | None = None
    kms_key: str | None = None


def root_volume(value: object, path: Path, issues: list[Issue]) -> RootVolume | None:
    m = keys(ROOT_VOLUME, value, path, issues)
    if m is None:
        return None
    before = len(issues)
    v = values(ROOT_VOLUME, m, path, issues, own=_BY_TYPE)
    kind = v.get("type")
    assert kind is None or isinstance(kind, str)
    size = iops = throughput = None
    if "size_gib" in m:
        low, high = VOLUME_SIZE_GIB.get(kind or "gp3", (1, 65536))
        size = s.check_int(m["size_gib"], (*path, "size_gib"), issues, low, high)
    if "iops" in m:
        if kind is not None and kind not in VOLUME_IOPS:
            issues.append(
                Issue(
                    (*path, "iops"),
                    "E112",
                    f"a {kind} volume takes no provisioned IOPS (only {', '.join(VOLUME_IOPS)})",
                )
            )
        else:
            low, high = VOLUME_IOPS.get(kind or "gp3", (100, 256000))
            iops = s.check_int(m["iops"], (*path, "iops"), issues, low, high)
    elif kind in IOPS_REQUIRED:
        issues.append(Issue(path, s.E_MISSING, f"a {kind} volume needs `iops:`"))
    if "throughput" in m:
        if kind is not None and kind not in THROUGHPUT_TYPES:
            issues.append(
                Issue((*path, "throughput"), "E112", "only a gp3 volume takes `throughput:`")
            )
        else:
            throughput = s.check_int(
                m["throughput"], (*path, "throughput"), issues, *THROUGHPUT_MIBS
            )
    if kind == "gp3":
        _gp3_ratios(size, iops, throughput, path, issues)
    kms_key = v.get("kms_key")
    if len(issues) != before or kind is None:
        return None
    return RootVolume(kind, size, iops, throughput, as_str(kms_key) if kms_key else None)


# gp3: "the maximum ratio of provisioned IOPS to provisioned volume size is 500 IOPS per GiB"
# and "of provisioned throughput to provisioned IOPS is .25 MiB/s per IOPS" (EBS User Guide,
# General Purpose SSD volumes, https://docs.aws.amazon.com/ebs/latest/userguide/general-purpose.html,
# as quoted in the pages corpus; the 3,000 IOPS baseline is CreateVolume's gp3 default).
GP3_IOPS_PER_GIB = 500
GP3_MIBS_PER_IOPS = 0.25
GP3_DEFAULT_IOPS = 3000


def _gp3_ratios(
    size: int | None, iops: int | None, throughput: int | None, path: Path, issues: list[Issue]
) -> None:
    if size is not None and iops is not None and iops > size * GP3_IOPS_PER_GIB:
        issues.append(
            Issue(
                (*path, "iops"),
                s.E_VALUE,
                f"{iops} IOPS on {size} GiB: gp3 allows at most {GP3_IOPS_PER_GIB} IOPS per GiB "
                f"({size * GP3_IOPS_PER_GIB}); raise size_gib or lower iops",
            )
        )
    effective = iops if iops is not None else GP3_DEFAULT_IOPS
    if throughput is not None and throughput > effective * GP3_MIBS_PER_IOPS:
        issues.append(
            Issue(
                (*path, "throughput"),
                s.E_VALUE,
                f"{throughput} MiB/s with {effective} IOPS: gp3 allows at most "
                f"{GP3_MIBS_PER_IOPS} MiB/s per IOPS ({effective * GP3_MIBS_PER_IOPS:g}); "
                "raise iops or lower throughput",
            )
        )


def key_pair(value: object, path: Path, issues: list[Issue]) -> str | None:
    checked = check(KEY_PAIR, value, path, issues)
    return as_str(checked) if checked is not None else None


# -- clusters: insights and logs -----------------------------------------------------------

# ClusterSetting.value: "The supported values are enhanced, enabled, and disabled."
CONTAINER_INSIGHTS = ("enabled", "enhanced", "disabled")
# CloudWatch Logs `Days` (PutRetentionPolicy; AWS::Logs::LogGroup RetentionInDays).
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545,
    731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip
DEFAULT_LOG_RETENTION_DAYS = 30
# AWS::Logs::LogGroup KmsKeyId is "the Amazon Resource Name (ARN) of the KMS key": an ARN only.
LOG_KMS_KEY_RE = lazy(rf"{_ARN}key/{_KEY_ID}")
KMS_ARN_EXAMPLE = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"
INSIGHTS = enum("CloudWatch Container Insights", CONTAINER_INSIGHTS, example="enabled")
LOG_RETENTION = integer(
    "days the services' log groups keep events",
    default=DEFAULT_LOG_RETENTION_DAYS,
    enum=LOG_RETENTION_DAYS,
    rule=f"CloudWatch Logs keeps events for one of {', '.join(map(str, LOG_RETENTION_DAYS))} "
    "days, not {value}",
    aws="CloudWatch Logs RetentionInDays values",
    example=30,
)
LOG_KMS_KEY = string(
    "KMS key ARN the log groups are encrypted with",
    pattern=LOG_KMS_KEY_RE.pattern,
    rule="a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)",
    example=KMS_ARN_EXAMPLE,
)


def container_insights(value: object, path: Path, issues: list[Issue]) -> str | None:
    checked = check(INSIGHTS, value, path, issues)
    return as_str(checked) if checked is not None else None


def log_retention_days(value: object, path: Path, issues: list[Issue]) -> int | None:
    checked = check(LOG_RETENTION, value, path, issues)
    return as_int(checked) if checked is not None else None


def log_kms_key(value: object, path: Path, issues: list[Issue]) -> str | None:
    checked = check(LOG_KMS_KEY, value, path, issues)
    return as_str(checked) if checked is not None else None


# -- clusters: overrides --------------------------------------------------------------------

E_OVERRIDE_SYNTAX = "E163"
# A CloudFormation logical id: "alphanumeric (A-Za-z0-9)" (template resources section).
LOGICAL_ID_RE = lazy(r"[A-Za-z0-9]{1,255}")
# The resource attributes an override may address; `Type` is ours (changing it would make
# every other generated property meaningless).
OVERRIDE_ROOTS = (
    "Properties",
    "DependsOn",
    "DeletionPolicy",
    "UpdateReplacePolicy",
    "UpdatePolicy",
    "CreationPolicy",
    "Metadata",
)
# A property path: a root, then `.`-separated segments, none empty, `\.` a literal dot in one
# (split_path); a backslash before anything else is itself.
PROPERTY_PATH = rf"(?:{'|'.join(OVERRIDE_ROOTS)})(?:\.(?:[^.\\]|\\\.|\\(?!\.))+)*"
OVERRIDES = mapping(
    "CloudFormation patches: logical id → {Properties.Path: value, or null to delete}",
    LOGICAL_ID_RE.pattern,
    mapping(
        "property paths",
        PROPERTY_PATH,
        Node("any", "a JSON value, or null to delete"),
        rule="{name!r} is not a property path: one of "
        + ", ".join(OVERRIDE_ROOTS)
        + ", then .Path.To.Key without an empty segment (`\\.` for a literal dot); a "
        "resource's Type cannot be overridden",
        code=E_OVERRIDE_SYNTAX,
        min_items=1,
    ),
    rule="{name!r} is not a CloudFormation logical id (letters and digits; see the ids in "
    "`nixecs render`'s stack.yaml)",
    code=E_OVERRIDE_SYNTAX,
    example={"Cluster": {"Properties.Tags": [{"Key": "cost-centre", "Value": "42"}]}},
)


@dataclass(frozen=True)
class Override:
    """One `Path.To.Key: value` of `overrides: {LogicalId: {...}}`. `delete` when the value
    is null (YAML `null` or `~`)."""

    logical_id: str
    segments: tuple[str, ...]
    value: object
    delete: bool
    path: Path  # the fleet-file path of the `Path.To.Key` entry

    @property
    def dotted(self) -> str:
        return ".".join(seg.replace(".", "\\.") for seg in self.segments)


def split_path(text: str) -> list[str]:
    """`A.B\\.c.0` → ["A", "B.c", "0"]: dots separate, `\\.` is a literal dot (as CDK's
    addOverride)."""
    segments: list[str] = []
    current: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text) and text[i + 1] == ".":
            current.append(".")
            i += 2
            continue
        if char == ".":
            segments.append("".join(current))
            current = []
        else:
            current.append(char)
        i += 1
    segments.append("".join(current))
    return segments


def _json_value(value: object, path: Path, issues: list[Issue]) -> bool:
    """YAML 1.2 core gives JSON's types already; keys of nested mappings must be strings."""
    if isinstance(value, dict):
        ok = True
        for key, item in value.items():
            if not isinstance(key, str):
                issues.append(
                    Issue((*path, key), s.E_TYPE, f"a template key must be a string, not {key!r}")
                )
                ok = False
            elif not _json_value(item, (*path, key), issues):
                ok = False
        return ok
    if isinstance(value, list):
        return all([_json_value(item, (*path, i), issues) for i, item in enumerate(value)])
    if isinstance(value, float) and not math.isfinite(value):
        # YAML 1.2's .nan and .inf: JSON (RFC 8259 §6) and so a CloudFormation template have
        # no such number.
        issues.append(
            Issue(path, "E120", f"{value!r} is not a number a CloudFormation template can hold")
        )
        return False
    return True


def overrides(value: object, path: Path, issues: list[Issue]) -> tuple[Override, ...]:
    """`overrides:` checked against its declaration (OVERRIDES): logical ids, non-empty
    mappings of property paths; each value one a template can hold."""
    ids = entries(
        OVERRIDES, value, path, issues, "a mapping of logical ids to {Path.To.Key: value}"
    )
    by_path = member(OVERRIDES)
    result: list[Override] = []
    for logical_id, written in (ids or {}).items():
        where = (*path, logical_id)
        paths = entries(
            by_path,
            written,
            where,
            issues,
            "a non-empty mapping of property paths to values",
            E_OVERRIDE_SYNTAX,
        )
        for key, item in (paths or {}).items():
            at = (*where, key)
            if _json_value(item, at, issues):
                result.append(Override(logical_id, tuple(split_path(key)), item, item is None, at))
    return tuple(result)


# -- the loader's hooks ----------------------------------------------------------------------

GROUP_KEYS = ("root_volume", "key_pair")
CLUSTER_KEYS = ("container_insights", "log_retention_days", "log_kms_key", "overrides")


class GroupKeys(TypedDict, total=False):
    root_volume: RootVolume
    key_pair: str | None


class ClusterKeys(TypedDict, total=False):
    container_insights: str
    log_retention_days: int
    log_kms_key: str | None
    overrides: tuple[Override, ...]


def group_keys(m: dict[str, object], path: Path, issues: list[Issue]) -> GroupKeys:
    """Group(**…) arguments for the keys written; errors go to `issues` (and the loader
    then builds no fleet)."""
    extra: GroupKeys = {}
    if m.get("root_volume") is not None:
        volume = root_volume(m["root_volume"], (*path, "root_volume"), issues)
        if volume is not None:
            extra["root_volume"] = volume
    if m.get("key_pair") is not None:
        extra["key_pair"] = key_pair(m["key_pair"], (*path, "key_pair"), issues)
    return extra


def cluster_keys(m: dict[str, object], path: Path, issues: list[Issue]) -> ClusterKeys:
    """Cluster(**…) arguments for the keys written; errors go to `issues` (and the loader
    then builds no fleet)."""
    extra: ClusterKeys = {}
    if "container_insights" in m:
        insights = container_insights(
            m["container_insights"], (*path, "container_insights"), issues
        )
        if insights is not None:
            extra["container_insights"] = insights
    if "log_retention_days" in m:
        days = log_retention_days(m["log_retention_days"], (*path, "log_retention_days"), issues)
        if days is not None:
            extra["log_retention_days"] = days
    if m.get("log_kms_key") is not None:
        extra["log_kms_key"] = log_kms_key(m["log_kms_key"], (*path, "log_kms_key"), issues)
    if m.get("overrides") is not None:
        extra["overrides"] = overrides(m["overrides"], (*path, "overrides"), issues)
    return extra
