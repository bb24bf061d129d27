"""A group's capacity provider settings and on-demand/spot split, and a cluster's default
capacity provider strategy (issue 21, item 2).

The bounds are AWS's (the loader refuses what AWS would):

- `capacity_provider:` is the capacity provider's ManagedScaling (ECS API reference,
  https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_ManagedScaling.html):
  targetCapacity 1-100 (percent of the group's capacity the tasks should use; below 100
  keeps spare instances), minimumScalingStepSize and maximumScalingStepSize 1-10000
  (instances a scale-out adds at least / at most; AWS defaults 1 and 10000),
  instanceWarmupPeriod 0-10000 s (default 300). A minimum step above the maximum step
  contradicts itself: refused (E193).
- `on_demand_base`, `on_demand_percent`, `spot_allocation`, `on_demand_allocation` are the
  Auto Scaling group's InstancesDistribution (EC2 Auto Scaling API reference,
  https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_InstancesDistribution.html):
  OnDemandBaseCapacity (instances launched on-demand first), OnDemandPercentageAboveBaseCapacity
  0-100; SpotAllocationStrategy lowest-price | capacity-optimized |
  capacity-optimized-prioritized | price-capacity-optimized (AWS recommends the last);
  OnDemandAllocationStrategy lowest-price | prioritized. The on-demand split is a spot
  group's (`spot: true`): elsewhere E193.
- `default_strategy:` has the form and rules of a service's `group:` (nixecs.fleet.strategy).
"""

from __future__ import annotations

from typing import TypedDict

from .. import settings as s
from ..settings import Issue
from .model import Distribution, ManagedScaling, StrategyItem
from .strategy import parse_strategy
from .yaml12 import Path

GROUP_KEYS = (
    "capacity_provider",
    "on_demand_base",
    "on_demand_percent",
    "spot_allocation",
    "on_demand_allocation",
)
CLUSTER_KEYS = ("default_strategy",)
PROVIDER_KEYS = ("target_capacity", "minimum_step", "maximum_step", "instance_warmup")
STEP_MAX = 10000
WARMUP_MAX = 10000
ON_DEMAND_BASE_MAX = 10000  # the group's own capacity bound (loader: capacity max 10000)
SPOT_ALLOCATIONS = (
    "price-capacity-optimized",
    "capacity-optimized",
    "capacity-optimized-prioritized",
    "lowest-price",
)
ON_DEMAND_ALLOCATIONS = ("prioritized", "lowest-price")
SPOT_ONLY = ("on_demand_base", "on_demand_percent", "spot_allocation")


class GroupKeys(TypedDict, total=False):
    managed_scaling: ManagedScaling
    distribution: Distribution


class ClusterKeys(TypedDict, total=False):
    default_strategy: tuple[StrategyItem, ...]


def group_keys(m: dict[str, object], path: Path, issues: list[Issue]) -> GroupKeys:
    """Group(**…) arguments for the keys written; errors go to `issues`."""
    extra: GroupKeys = {}
    if m.get("capacity_provider") is not None:
        scaling = managed_scaling(m["capacity_provider"], (*path, "capacity_provider"), issues)
        if scaling is not None:
            extra["managed_scaling"] = scaling
    if any(key in m for key in GROUP_KEYS[1:]):
        distribution = _distribution(m, path, issues)
        if distribution is not None:
            extra["distribution"] = distribution
    return extra


def managed_scaling(value: object, path: Path, issues: list[Issue]) -> ManagedScaling | None:
    m = s.check_mapping(value, path, issues, PROVIDER_KEYS)
    if m is None:
        return None
    before = len(issues)
    target = s.check_int(m.get("target_capacity", 100), (*path, "target_capacity"), issues, 1, 100)
    low, high, warmup = (
        s.check_int(m[key], (*path, key), issues, bound_low, bound_high) if key in m else None
        for key, bound_low, bound_high in (
            ("minimum_step", 1, STEP_MAX),
            ("maximum_step", 1, STEP_MAX),
            ("instance_warmup", 0, WARMUP_MAX),
        )
    )
    if len(issues) != before or target is None:
        return None
    if low is not None and high is not None and low > high:
        issues.append(
            Issue(
                (*path, "minimum_step"),
                "E193",
                f"minimum_step {low} is above maximum_step {high}: a scale-out cannot add at "
                "least the one and at most the other",
            )
        )
        return None
    return ManagedScaling(target, low, high, warmup)


def _distribution(m: dict[str, object], path: Path, issues: list[Issue]) -> Distribution | None:
    before = len(issues)
    default = Distribution()
    if m.get("spot") is not True:
        for key in SPOT_ONLY:
            if key in m:
                issues.append(
                    Issue(
                        (*path, key),
                        "E193",
                        f"`{key}` splits a spot group between on-demand and spot instances; "
                        "this group is on-demand: set `spot: true` or remove it",
                    )
                )
    base = s.check_int(
        m.get("on_demand_base", 0), (*path, "on_demand_base"), issues, 0, ON_DEMAND_BASE_MAX
    )
    percent = s.check_int(
        m.get("on_demand_percent", 0), (*path, "on_demand_percent"), issues, 0, 100
    )
    spot = s.check_enum(
        m.get("spot_allocation", default.spot_allocation),
        (*path, "spot_allocation"),
        issues,
        SPOT_ALLOCATIONS,
    )
    on_demand = s.check_enum(
        m.get("on_demand_allocation", default.on_demand_allocation),
        (*path, "on_demand_allocation"),
        issues,
        ON_DEMAND_ALLOCATIONS,
    )
    if len(issues) != before or None in (base, percent, spot, on_demand):
        return None
    assert base is not None and percent is not None and spot and on_demand
    return Distribution(base, percent, spot, on_demand)


def cluster_keys(
    m: dict[str, object], path: Path, issues: list[Issue], cluster: str
) -> ClusterKeys:
    """Cluster(**…) arguments for the keys written; errors go to `issues`."""
    if m.get("default_strategy") is None:
        return {}
    declared = m.get("groups")
    groups: dict[str, object] = declared if isinstance(declared, dict) else {}
    items = parse_strategy(
        m["default_strategy"], (*path, "default_strategy"), issues, cluster, groups
    )
    return {"default_strategy": items} if items is not None else {}
