"""Several target tracking policies, and customized metrics (issue 21, item 3).

`target_tracking:` is one policy (a mapping, as before) or a list of them. AWS: "You can have
multiple target tracking scaling policies for a scalable target, provided that each of them
uses a different metric. ... It will scale out the scalable target if any of the target
tracking policies are ready for scale out, but will scale in only if all of the target
tracking policies (with the scale-in portion enabled) are ready to scale in" (Application
Auto Scaling User Guide, "Target tracking scaling policies for Application Auto Scaling",
https://docs.aws.amazon.com/autoscaling/application/userguide/application-auto-scaling-target-tracking.html);
the engine (scaling/sim.py) models exactly that, and `scaling check` refuses two policies on
one metric (E195).

`metric:` is `cpu`, `memory`, `requests`, or a customized metric
`{namespace, name, dimensions, statistic}` (TargetTrackingScalingPolicyConfiguration
CustomizedMetricSpecification,
https://docs.aws.amazon.com/autoscaling/application/APIReference/API_CustomizedMetricSpecification.html:
Statistic Average | Minimum | Maximum | SampleCount | Sum; TargetValue
8.515920e-109 to 6.174271e+107). A policy count is bounded by Application Auto Scaling's
quota of 50 scaling policies per scalable target (Service Quotas, "Application Auto Scaling
quotas").
"""

from __future__ import annotations

from collections.abc import Callable

from .. import settings as s
from ..settings import Issue
from .decl import as_str, check, section
from .model import (
    CUSTOM_METRIC,
    MAX_TRACKING_POLICIES,
    TARGET_MAX,
    TRACKING,
    CustomMetric,
    TargetTracking,
)
from .yaml12 import Path


def policies(
    value: object,
    path: Path,
    issues: list[Issue],
    parse_one: Callable[[object, Path], TargetTracking | None],
) -> tuple[TargetTracking, ...]:
    """`target_tracking:` as one mapping or a list of them → the policies parsed."""
    if not isinstance(value, list):
        one = parse_one(value, path)
        return (one,) if one is not None else ()
    if not value or len(value) > MAX_TRACKING_POLICIES:
        issues.append(
            Issue(
                path,
                s.E_VALUE,
                f"expected 1 to {MAX_TRACKING_POLICIES} target tracking policies (Application Auto "
                f"Scaling's quota per scalable target), got {len(value)}",
            )
        )
        return ()
    found = [parse_one(item, (*path, index)) for index, item in enumerate(value)]
    return tuple(p for p in found if p is not None)


def metric(
    value: object,
    path: Path,
    issues: list[Issue],
    dimensions: Callable[[object, Path], tuple[tuple[str, str], ...]],
) -> tuple[str | None, CustomMetric | None]:
    """`metric:` → (cpu | memory | requests | custom, the customized metric or None)."""
    if not isinstance(value, dict):
        name = check(TRACKING.keys["metric"].any_of[0], value, path, issues)
        return (as_str(name) if name is not None else None), None
    before = len(issues)
    m = section(CUSTOM_METRIC, value, path, issues, own=("dimensions",))
    if m is None or "namespace" not in m or "name" not in m or "statistic" not in m:
        return None, None
    pairs = (
        dimensions(m["dimensions"], (*path, "dimensions"))
        if m.get("dimensions") is not None
        else ()
    )
    if len(issues) != before:
        return None, None
    return "custom", CustomMetric(
        as_str(m["namespace"]), as_str(m["name"]), as_str(m["statistic"]), pairs
    )


def check_target(metric_name: str, target: float, path: Path, issues: list[Issue]) -> None:
    """The target's range: a percentage for cpu and memory, a request count for requests,
    AWS's TargetValue range for a customized metric."""
    if metric_name == "requests" and not 0 < target <= 1_000_000:
        rule = "a request count per target in (0, 1000000]"
    elif metric_name == "custom" and not 0 < target <= TARGET_MAX:
        rule = "above 0 and at most 6.174271e+107 (TargetValue)"
    elif metric_name in ("cpu", "memory") and not 0 < target <= 100:
        rule = "a utilisation percentage in (0, 100]"
    else:
        return
    issues.append(Issue(path, s.E_VALUE, f"target {target:g} must be {rule}"))
