"""AWS's rules for step scaling (errors) and semantic lints (warnings).

Step bounds are offsets from the alarm threshold, as AWS's MetricIntervalLowerBound and
MetricIntervalUpperBound; a missing bound is infinite. The rules are Application Auto
Scaling's (StepAdjustment, "Step adjustments" in the user guide):

- intervals may neither overlap (E201) nor leave a gap (E202);
- at most one step has an open lower bound and at most one an open upper bound, no step has
  both open, and a negative lower bound (positive upper bound) needs a step with an open
  lower (upper) bound (E203);
- at most 20 step adjustments per policy (E204);
- min ≤ max (E205);
- ExactCapacity cannot set a negative capacity (E206).

The lints catch policies that AWS accepts but that cannot work: a step its alarm can never
reach (W201 — the article's −1 step under a `>=` alarm), a service that can scale out
but never in (W202), a step scale-in beside target tracking's own (W203), and a `desired:`
that a scaled service cannot honour (W204).

Alarms must watch a metric that exists: the ECS namespaces' metric names are checked against
their catalogue (E122, with a "did you mean"), and an alarm needs dimensions that AWS
publishes the metric with — defaulted for the ECS namespaces, required elsewhere (E121).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

from ..diagnostics import Diagnostic, Location
from ..fleet import metrics
from ..fleet.model import Alarm, Scaling, Service, Step, StepPolicy
from ..fleet.yaml12 import Path
from . import capacity as scaling_capacity

MAX_STEPS = 20
# Metrics that can never be negative: a scale-in step below -threshold is unreachable.
NON_NEGATIVE_METRICS = frozenset(
    {"CPUUtilization", "MemoryUtilization", "CPUReservation", "MemoryReservation", "GPUReservation"}
)

Locate = Callable[[Path], Location]


def _bound(value: float | None, open_as: float) -> float:
    return open_as if value is None else value


def _show(value: float) -> str:
    if value == math.inf:
        return "+∞"
    if value == -math.inf:
        return "-∞"
    return f"{value:g}"


def interval_text(step: Step, alarm: Alarm | None = None) -> str:
    """`[0, 10)` above the threshold, `(-10, 0]` below it (AWS's inclusivity)."""
    below = alarm is not None and not alarm.is_upper
    lower = _bound(step.lower, -math.inf)
    upper = _bound(step.upper, math.inf)
    opening = "(" if below or not math.isfinite(lower) else "["
    closing = "]" if below and math.isfinite(upper) else ")"
    return f"{opening}{_show(lower)}, {_show(upper)}{closing}"


def check_step_rules(policy: StepPolicy, locate: Locate) -> list[Diagnostic]:
    """AWS's validation of one step policy's adjustments (errors only)."""
    found: list[Diagnostic] = []

    def error(code: str, message: str, at: Path) -> None:
        found.append(Diagnostic(code, message, locate(at)))

    steps = policy.steps
    if len(steps) > MAX_STEPS:
        error(
            "E204",
            f"policy {policy.name!r} has {len(steps)} step adjustments; AWS allows at most {MAX_STEPS}",
            (*policy.path, "steps"),
        )
    for step in steps:
        if step.lower is None and step.upper is None:
            error("E203", "a step needs a lower or an upper bound: both are open", step.path)
        elif step.lower is not None and step.upper is not None and step.lower >= step.upper:
            error(
                "E201",
                f"empty interval: lower {step.lower:g} must be below upper {step.upper:g}",
                step.path,
            )
        if policy.adjustment_type == "ExactCapacity" and step.change < 0:
            error(
                "E206",
                f"ExactCapacity cannot set a negative capacity ({step.change})",
                (*step.path, "change"),
            )
    open_lower = [s for s in steps if s.lower is None]
    open_upper = [s for s in steps if s.upper is None]
    if len(open_lower) > 1:
        error("E203", "only one step may have an open (missing) lower bound", open_lower[1].path)
    if len(open_upper) > 1:
        error("E203", "only one step may have an open (missing) upper bound", open_upper[1].path)
    negative_lower = [s for s in steps if s.lower is not None and s.lower < 0]
    if negative_lower and not open_lower:
        error(
            "E203",
            f"a negative lower bound ({negative_lower[0].lower:g}) needs a step with an open lower bound below it",
            (*negative_lower[0].path, "lower"),
        )
    positive_upper = [s for s in steps if s.upper is not None and s.upper > 0]
    if positive_upper and not open_upper:
        error(
            "E203",
            f"a positive upper bound ({positive_upper[-1].upper:g}) needs a step with an open upper bound above it",
            (*positive_upper[-1].path, "upper"),
        )
    ordered = sorted(
        (s for s in steps if not (s.lower is None and s.upper is None)),
        key=lambda s: (_bound(s.lower, -math.inf), _bound(s.upper, math.inf)),
    )
    for before, after in itertools.pairwise(ordered):
        end = _bound(before.upper, math.inf)
        start = _bound(after.lower, -math.inf)
        if end > start:
            error(
                "E201",
                f"step {interval_text(after)} overlaps step {interval_text(before)}",
                after.path,
            )
        elif end < start:
            error(
                "E202",
                f"gap between steps: no adjustment for offsets in [{_show(end)}, {_show(start)})",
                after.path,
            )
    return found


Bound = tuple[float, bool]  # (value, inclusive)


def _intersects(a: tuple[Bound, Bound], b: tuple[Bound, Bound]) -> bool:
    (a_lo, a_lo_in), (a_hi, a_hi_in) = a
    (b_lo, b_lo_in), (b_hi, b_hi_in) = b
    if a_lo == b_lo:
        lo, lo_in = a_lo, a_lo_in and b_lo_in
    else:
        lo, lo_in = (a_lo, a_lo_in) if a_lo > b_lo else (b_lo, b_lo_in)
    if a_hi == b_hi:
        hi, hi_in = a_hi, a_hi_in and b_hi_in
    else:
        hi, hi_in = (a_hi, a_hi_in) if a_hi < b_hi else (b_hi, b_hi_in)
    return lo < hi or (lo == hi and lo_in and hi_in and math.isfinite(lo))


def alarm_region(alarm: Alarm) -> tuple[Bound, Bound]:
    """The metric's offset from the threshold while the alarm is in ALARM. Metrics that
    cannot be negative bound the offset below by -threshold."""
    if alarm.is_upper:
        return (0.0, alarm.comparison == ">="), (math.inf, False)
    floor = (
        -alarm.threshold
        if alarm.metric in NON_NEGATIVE_METRICS and alarm.namespace.startswith("AWS/")
        else -math.inf
    )
    return (floor, math.isfinite(floor)), (0.0, alarm.comparison == "<=")


def step_interval(step: Step, alarm: Alarm) -> tuple[Bound, Bound]:
    """AWS takes intervals above the threshold as [lower, upper) and below it as (lower, upper]."""
    lower = _bound(step.lower, -math.inf)
    upper = _bound(step.upper, math.inf)
    if alarm.is_upper:
        return (lower, math.isfinite(lower)), (upper, False)
    return (lower, False), (upper, math.isfinite(upper))


def step_is_reachable(step: Step, alarm: Alarm) -> bool:
    """Whether some metric value in the alarm's ALARM range falls into this step."""
    return _intersects(step_interval(step, alarm), alarm_region(alarm))


def _alarm_region_text(alarm: Alarm) -> str:
    return f"{alarm.metric} {alarm.comparison} {alarm.threshold:g}"


def lint_policy(policy: StepPolicy, locate: Locate) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for step in policy.steps:
        if (step.lower is None and step.upper is None) or (
            step.lower is not None and step.upper is not None and step.lower >= step.upper
        ):
            continue  # already an error (E203/E201); no point in also calling it unreachable
        if not step_is_reachable(step, policy.alarm):
            if policy.alarm.is_upper:
                why = "the metric is never below the threshold while the alarm is in ALARM"
            elif step.lower is not None and step.lower >= 0:
                why = "the metric is never above the threshold while the alarm is in ALARM"
            else:
                why = f"{policy.alarm.metric} cannot be negative"
            found.append(
                Diagnostic(
                    "W201",
                    f"step {step.change:+d} for offsets {interval_text(step, policy.alarm)} can never run: "
                    f"policy {policy.name!r} is triggered only by its alarm {_alarm_region_text(policy.alarm)}, and {why}",
                    locate(step.path),
                )
            )
    return found


def _directions(scaling: Scaling) -> tuple[list[str], list[str]]:
    """Names of the policies that can scale out, and of those that can scale in."""
    out: list[str] = []
    into: list[str] = []
    if scaling.target_tracking:
        out.append("target_tracking")
        if any(not t.disable_scale_in for t in scaling.target_tracking):
            into.append("target_tracking")
    for policy in scaling.step:
        reachable = [s for s in policy.steps if step_is_reachable(s, policy.alarm)]
        if policy.adjustment_type == "ExactCapacity":
            # Setting an exact count can move either way.
            if reachable:
                out.append(policy.name)
                into.append(policy.name)
            continue
        if any(s.change > 0 for s in reachable):
            out.append(policy.name)
        if any(s.change < 0 for s in reachable):
            into.append(policy.name)
    return out, into


def check_alarm(alarm: Alarm, locate: Locate) -> list[Diagnostic]:
    """The alarm's metric exists in the ECS namespaces (E122) and its dimensions are a set
    AWS publishes it with, or can be defaulted (E121). See nixecs.fleet.metrics."""
    found: list[Diagnostic] = []
    known = metrics.known_namespace(alarm.namespace)
    sets = metrics.dimension_sets(alarm.namespace, alarm.metric)
    if known and sets is None:
        close = metrics.suggestion(alarm.namespace, alarm.metric)
        hint = (
            f"did you mean {close!r}?"
            if close
            else f"its metrics are {', '.join(sorted(metrics.CATALOGUE[alarm.namespace]))}"
        )
        found.append(
            Diagnostic(
                "E122",
                f"{alarm.namespace} has no metric {alarm.metric!r}: {hint}",
                locate((*alarm.path, "metric")),
            )
        )
        return found
    if alarm.dimensions is None:
        if not known:
            found.append(
                Diagnostic(
                    "E121",
                    f"alarm on {alarm.namespace} {alarm.metric} needs `dimensions:` (e.g. QueueName for AWS/SQS): "
                    "a metric without the dimensions it is published with does not exist, and the alarm would "
                    "never leave OK",
                    locate(alarm.path),
                )
            )
        return found
    if sets is not None:
        written = tuple(sorted(name for name, _ in alarm.dimensions))
        if written not in sets:
            choices = " or ".join("{" + ", ".join(s) + "}" for s in sets)
            found.append(
                Diagnostic(
                    "E121",
                    f"{alarm.namespace} publishes {alarm.metric} with dimensions {choices}, "
                    f"not {{{', '.join(written)}}}",
                    locate((*alarm.path, "dimensions")),
                )
            )
    return found


def lint_tracking_with_steps(scaling: Scaling, locate: Locate) -> list[Diagnostic]:
    """W203: a step policy that scales in beside a target-tracking policy that also scales
    in. Application Auto Scaling runs both, gives precedence to the larger capacity, and does
    not block a step scale-in that comes before target tracking is ready to scale in; target
    tracking then scales out again (PutScalingPolicy, Application Auto Scaling API Reference:
    "We recommend caution ... when using target tracking scaling policies with step scaling
    policies because conflicts between these policies can cause undesirable behavior").
    With `disable_scale_in: true` the step policies are the only scale-in, which is the
    combination AWS documents for a custom scale-in, so no warning."""
    if all(t.disable_scale_in for t in scaling.target_tracking):  # none, or none scales in
        return []
    found: list[Diagnostic] = []
    for policy in scaling.step:
        reachable = [s for s in policy.steps if step_is_reachable(s, policy.alarm)]
        scales_in = policy.adjustment_type == "ExactCapacity" or any(
            s.change < 0 for s in reachable
        )
        if reachable and scales_in:
            found.append(
                Diagnostic(
                    "W203",
                    f"step policy {policy.name!r} scales in while target_tracking also scales in: AWS does not "
                    "hold a step scale-in back until target tracking agrees, so the two can flap (scale in, "
                    "then target tracking scales out again); set target_tracking.disable_scale_in: true to let "
                    "the step policies alone scale in, or drop the scale-in steps",
                    locate(policy.path),
                )
            )
    return found


def check_service(service: Service, locate: Locate) -> list[Diagnostic]:
    scaling = service.scaling
    if scaling is None:
        return scaling_capacity.check(service, locate)
    found: list[Diagnostic] = scaling_capacity.check(service, locate)
    if scaling.min > scaling.max:
        found.append(
            Diagnostic(
                "E205",
                f"scaling min {scaling.min} is greater than max {scaling.max}",
                locate((*scaling.path, "min")),
            )
        )
    elif service.desired_given:
        found.append(
            Diagnostic(
                "W204",
                f"desired {service.desired} is not used for a scaled service: auto scaling owns the count "
                f"(a DesiredCount in the template would reset it on every deploy). The service starts with "
                f"{service.start_count} task(s) (CloudFormation creates it with 1, the scalable target moves "
                f"that into [{scaling.min}, {scaling.max}]); remove desired, or set scaling.min",
                locate((*service.path, "desired")),
            )
        )
    for policy in scaling.step:
        found.extend(check_alarm(policy.alarm, locate))
        found.extend(check_step_rules(policy, locate))
        found.extend(lint_policy(policy, locate))
    found.extend(lint_tracking_with_steps(scaling, locate))
    out, into = _directions(scaling)
    if out and not into:
        found.append(
            Diagnostic(
                "W202",
                f"service {service.name!r} can scale out ({', '.join(out)}) but never in: add a scale-in step policy "
                "with its own alarm (e.g. comparison '<=' and a negative change), or use target_tracking",
                locate(scaling.path),
            )
        )
    return found
