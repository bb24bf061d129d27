"""`scaling check` for issue 21: scheduled actions, several target tracking policies, and a
capacity provider strategy's base against the service's task count.

- E194: a scheduled action whose `min` is above its `max`: the scalable target cannot hold
  that range (RegisterScalableTarget and PutScheduledAction take MinCapacity ≤ MaxCapacity;
  "Application Auto Scaling scaling policies will not scale capacity to values that are
  outside of the minimum and maximum range"). Also an action that sets one bound only,
  beyond every other bound the target can then have: its `min` above the scaling `max` and
  every scheduled `max`, or its `max` below the scaling `min` and every scheduled `min`.
  AWS: "The request can optionally include only one of these sizes. ... In some cases,
  however, you must include both sizes to ensure that the new minimum capacity is not
  greater than the maximum capacity, or the new maximum capacity is not less than the
  minimum capacity" (User Guide, "How scheduled scaling for Application Auto Scaling works",
  https://docs.aws.amazon.com/autoscaling/application/userguide/scheduled-scaling-policy-overview.html).
- E195: two target tracking policies on one metric: AWS allows several "provided that each of
  them uses a different metric" (User Guide, "Target tracking scaling policies for
  Application Auto Scaling").
- W205: a strategy base above the most tasks the service ever runs (scaling `max`, else
  `desired`): the base group takes every task and the weights never apply
  (CapacityProviderStrategyItem: "The weight value is taken into consideration after the base
  value, if defined, is satisfied").
"""

from __future__ import annotations

from collections.abc import Callable

from ..diagnostics import Diagnostic, Location
from ..fleet.model import Service
from ..fleet.yaml12 import Path

Locate = Callable[[Path], Location]


def check(service: Service, locate: Locate) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    scaling = service.scaling
    if scaling is not None:
        # the bounds in effect when a one-sided action runs: the target's own, or what
        # another action set (the loosest of them, so that only a sure conflict is refused)
        highest = max([scaling.max, *(a.max for a in scaling.scheduled if a.max is not None)])
        lowest = min([scaling.min, *(a.min for a in scaling.scheduled if a.min is not None)])
        for action in scaling.scheduled:
            if action.min is not None and action.max is not None and action.min > action.max:
                found.append(
                    Diagnostic(
                        "E194",
                        f"scheduled action {action.name!r} sets min {action.min} above max "
                        f"{action.max}",
                        locate((*action.path, "min")),
                    )
                )
            elif action.max is None and action.min is not None and action.min > highest:
                found.append(
                    Diagnostic(
                        "E194",
                        f"scheduled action {action.name!r} sets min {action.min} and no max, "
                        f"above any max the target can then have (at most {highest}: the "
                        "scaling max or a scheduled max): set a max too",
                        locate((*action.path, "min")),
                    )
                )
            elif action.min is None and action.max is not None and action.max < lowest:
                found.append(
                    Diagnostic(
                        "E194",
                        f"scheduled action {action.name!r} sets max {action.max} and no min, "
                        f"below any min the target can then have (at least {lowest}: the "
                        "scaling min or a scheduled min): set a min too",
                        locate((*action.path, "max")),
                    )
                )
        seen: dict[str, str] = {}
        for index, tracking in enumerate(scaling.target_tracking, 1):
            key = tracking.metric_key
            if key in seen:
                found.append(
                    Diagnostic(
                        "E195",
                        f"target tracking policy {index} tracks {key}, as policy {seen[key]} "
                        "does: AWS allows several target tracking policies only on different "
                        "metrics",
                        locate((*tracking.path, "metric")),
                    )
                )
            seen.setdefault(key, str(index))
    most = scaling.max if scaling is not None else service.desired
    for item in service.strategy:
        if item.base > most:
            found.append(
                Diagnostic(
                    "W205",
                    f"base {item.base} on group {item.group!r} is above the {most} task(s) "
                    f"service {service.name!r} runs at most: every task goes to "
                    f"{item.group!r} and the weights never apply",
                    locate((*item.path, "base")),
                )
            )
    return found
