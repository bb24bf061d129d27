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

from ..settings import Issue
from .decl import as_int, as_str, check, either, enum, integer, obj, section, string
from .model import Distribution, ManagedScaling, StrategyItem
from .strategy import NAME, STRATEGY, parse_strategy
from .yaml12 import Path

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
PROVIDER = obj(
    "the group's capacity provider's managed scaling (ECS ManagedScaling)",
    target_capacity=integer(
        "percent of the group's capacity the tasks should use (below 100 keeps spare instances)",
        1,
        100,
        default=100,
        aws="ManagedScaling targetCapacity 1-100",
        example=90,
    ),
    minimum_step=integer(
        "instances a scale-out adds at least (AWS's default 1)",
        1,
        STEP_MAX,
        aws="minimumScalingStepSize 1-10000",
        example=1,
    ),
    maximum_step=integer(
        "instances a scale-out adds at most (AWS's default 10000); not below minimum_step (E193)",
        1,
        STEP_MAX,
        aws="maximumScalingStepSize 1-10000",
        example=4,
    ),
    instance_warmup=integer(
        "seconds before a new instance counts in the capacity metric (AWS's default 300)",
        0,
        WARMUP_MAX,
        aws="instanceWarmupPeriod 0-10000 s",
        example=120,
    ),
)
# The group's keys this module reads (the loader passes them as its own: `values` leaves
# them alone, and the on-demand split is refused on an on-demand group only when written).
GROUP_NODES = {
    "capacity_provider": PROVIDER,
    "on_demand_base": integer(
        "a spot group's instances launched on-demand first (else E193)",
        0,
        ON_DEMAND_BASE_MAX,
        default=0,
        aws="InstancesDistribution OnDemandBaseCapacity",
        example=1,
    ),
    "on_demand_percent": integer(
        "a spot group's percent of on-demand instances beyond the base (else E193)",
        0,
        100,
        default=0,
        aws="InstancesDistribution OnDemandPercentageAboveBaseCapacity 0-100",
        example=20,
    ),
    "spot_allocation": enum(
        "how a spot group picks spot pools (else E193)",
        SPOT_ALLOCATIONS,
        default="price-capacity-optimized",
        aws="InstancesDistribution SpotAllocationStrategy",
        example="capacity-optimized",
    ),
    "on_demand_allocation": enum(
        "how on-demand instance types are picked: in the order written, or the cheapest",
        ON_DEMAND_ALLOCATIONS,
        default="prioritized",
        aws="InstancesDistribution OnDemandAllocationStrategy",
        example="lowest-price",
    ),
}
GROUP_KEYS = tuple(GROUP_NODES)
CLUSTER_NODES = {
    "default_strategy": either(
        "the capacity provider strategy of tasks that name none (default: the first group)",
        string("one group", pattern=NAME),
        STRATEGY,
    ),
}
CLUSTER_KEYS = tuple(CLUSTER_NODES)


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
    before = len(issues)
    m = section(PROVIDER, value, path, issues)
    if m is None or len(issues) != before:
        return None
    target = as_int(m["target_capacity"])
    low, high, warmup = (
        as_int(m[key]) if key in m else None
        for key in ("minimum_step", "maximum_step", "instance_warmup")
    )
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
    checked = {
        key: check(GROUP_NODES[key], m.get(key, GROUP_NODES[key].default), (*path, key), issues)
        for key in GROUP_KEYS[1:]
    }
    if len(issues) != before:
        return None
    return Distribution(
        as_int(checked["on_demand_base"]),
        as_int(checked["on_demand_percent"]),
        as_str(checked["spot_allocation"]),
        as_str(checked["on_demand_allocation"]),
    )


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
