"""The scaling engine: a service's scaling policies replayed minute by minute against a load.

One engine serves `scaling simulate` (a synthetic wave) and `scaling replay` (a recorded or
CloudWatch history). Each rule below is AWS's, as its documentation states it; where the
documentation is silent the engine says what it assumes (docs/scaling.md lists both).

Sources (read, not remembered):

[CW-EVAL] CloudWatch User Guide, "Alarm evaluation",
  https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/alarm-evaluation.html —
  Period (the length of one datapoint), Evaluation Periods (the N most recent datapoints),
  Datapoints to Alarm (M of those N must breach for ALARM); missing data treated as
  `missing` (the default), `notBreaching`, `breaching` or `ignore` (keep the state),
  "Configuring how CloudWatch alarms treat missing data" (alarms-and-missing-data.html).
[AAS-STEP] Application Auto Scaling User Guide, "How step scaling for Application Auto Scaling
  works", https://docs.aws.amazon.com/autoscaling/application/userguide/step-scaling-policy-overview.html
  — "When the alarm threshold is breached for the specified number of evaluation periods,
  Application Auto Scaling will apply the step adjustments ... The adjustments can continue for
  additional alarm breaches until the alarm state returns to OK"; step bounds are offsets from
  the threshold, lower bound inclusive above the threshold, upper bound inclusive below it.
[AAS-CFG] Application Auto Scaling API Reference, StepScalingPolicyConfiguration,
  https://docs.aws.amazon.com/autoscaling/application/APIReference/API_StepScalingPolicyConfiguration.html
  — Cooldown: "The scaling policy won't increase the desired capacity again unless either a
  larger scale out is triggered or the cooldown period ends. While the cooldown period is in
  effect, capacity added by the initiating scale-out activity is calculated as part of the
  desired capacity for the next scale-out activity" (+2, then +3 during the cooldown adds 1);
  "scale-in activities are blocked until the cooldown period has expired. However, if another
  alarm triggers a scale-out activity during the cooldown period after a scale-in activity,
  Application Auto Scaling scales out the target immediately. In this case, the cooldown period
  for the scale-in activity stops"; MinAdjustmentMagnitude: "25 percent of 4 is 1. However,
  because you specified a MinAdjustmentMagnitude of 2, Application Auto Scaling scales out the
  service by 2 tasks"; MetricAggregationType Average | Minimum | Maximum.
[AAS-TT] API Reference, TargetTrackingScalingPolicyConfiguration (same site, same cooldown
  words for ScaleOutCooldown / ScaleInCooldown; DisableScaleIn: "the target tracking scaling
  policy won't remove capacity"), and User Guide "Target tracking scaling policies for
  Application Auto Scaling": Application Auto Scaling creates and manages the alarms;
  "scales out proportionally to the metric as fast as it can, but scales in more gradually";
  missing data puts the alarms in INSUFFICIENT_DATA and then it "cannot scale"; with several
  policies it "scales based on the policy that provides the largest capacity for both scale in
  and scale out".
[AAS-MULTI] User Guide, "Target tracking scaling policies for Application Auto Scaling"
  (application-auto-scaling-target-tracking.html), several policies: "It will scale out the
  scalable target if any of the target tracking policies are ready for scale out, but will
  scale in only if all of the target tracking policies (with the scale-in portion enabled)
  are ready to scale in." A scale-out of any policy wins (the largest capacity); a
  target-tracking scale-in waits until every policy that may scale in asks for one, and then
  goes to the largest capacity they ask for.
[AAS-SCHED] User Guide, "Scheduled scaling for Application Auto Scaling": a scheduled action
  sets the target's minimum and/or maximum at its time; "If the current capacity is below the
  new minimum, Application Auto Scaling scales out to the new minimum"; above the new maximum
  it scales in to it. The schedule (at, rate, cron; a time zone) is read by
  nixecs.fleet.scheduled.fires.
[AAS-REG] API Reference, RegisterScalableTarget,
  https://docs.aws.amazon.com/autoscaling/application/APIReference/API_RegisterScalableTarget.html
  — "Application Auto Scaling scaling policies will not scale capacity to values that are
  outside of the minimum and maximum range."
[TT-ALARMS] The alarms target tracking creates for an ECS service are not specified in AWS's
  documentation; as they appear in accounts: "CPUUtilization > 30 for 3 datapoints within 3
  minutes" and "CPUUtilization < 27 for 15 datapoints within 15 minutes" (a 30 % target;
  aws-samples Fargate workshop text, and the same pattern in many public write-ups), i.e.
  scale-out on 3 of 3 one-minute points above the target, scale-in on 15 of 15 below 90 % of it.

Assumptions where the documentation is silent (kept visible in docs/scaling.md):
- an alarm is evaluated once per completed period, and a step policy is invoked at each
  evaluation that finds its alarm in ALARM;
- PercentChangeInCapacity truncates toward zero before MinAdjustmentMagnitude applies;
- target tracking's scale-in goes to ceil(capacity × metric / target), like its scale-out;
- a scale-in removes tasks that are still starting before tasks that carry load.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from ..atomic import write_atomic
from ..fleet import scheduled as schedules
from ..fleet.model import Alarm, Scaling, ScheduledAction, Service

MINUTE = 60
TT_OUT_POINTS = 3  # [TT-ALARMS]
TT_IN_POINTS = 15  # [TT-ALARMS]
TT_IN_FRACTION = 0.9  # [TT-ALARMS]
MISSING_TREATMENTS = ("missing", "notBreaching", "breaching", "ignore")  # [CW-EVAL]

# Metrics that are an average per task of the service: replayed capacity changes what the
# policies see (demand = value × running tasks). Any other metric is replayed as recorded.
# ALBRequestCountPerTarget tracks AWS/ApplicationELB RequestCountPerTarget, "the average number
# of requests received by each target in a target group" (Sum statistic) — one target per
# task in bridge mode, so it too is demand over running tasks
# (https://docs.aws.amazon.com/elasticloadbalancing/latest/application/load-balancer-cloudwatch-metrics.html,
# https://docs.aws.amazon.com/autoscaling/application/APIReference/API_PredefinedMetricSpecification.html).
REQUESTS_PER_TARGET = "AWS/ApplicationELB/RequestCountPerTarget"
SCALES_WITH_TASKS = frozenset(
    {"AWS/ECS/CPUUtilization", "AWS/ECS/MemoryUtilization", REQUESTS_PER_TARGET}
)
TRACKING_METRICS = {
    "cpu": "AWS/ECS/CPUUtilization",
    "memory": "AWS/ECS/MemoryUtilization",
    "requests": REQUESTS_PER_TARGET,
}


# -- policy sets --------------------------------------------------------------------------


@dataclass(frozen=True)
class AlarmRule:
    """A CloudWatch metric alarm, as the engine evaluates it [CW-EVAL]."""

    metric: str  # "Namespace/MetricName"
    statistic: str
    period: int  # seconds
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str  # >= > <= <
    missing: str = "missing"
    dimensions: tuple[tuple[str, str], ...] = ()  # as CloudWatch publishes the metric

    @property
    def is_upper(self) -> bool:
        return self.comparison in (">=", ">")

    def breaches(self, value: float) -> bool:
        return {
            ">=": value >= self.threshold,
            ">": value > self.threshold,
            "<=": value <= self.threshold,
            "<": value < self.threshold,
        }[self.comparison]


@dataclass(frozen=True)
class StepRule:
    name: str
    alarm: AlarmRule
    adjustment_type: str
    cooldown: int
    aggregation: str
    min_adjustment_magnitude: int | None
    steps: tuple[tuple[float | None, float | None, int], ...]  # (lower, upper, change)


@dataclass(frozen=True)
class TrackingRule:
    metric: str  # "Namespace/MetricName"
    target: float
    scale_in_cooldown: int
    scale_out_cooldown: int
    disable_scale_in: bool
    # A customized metric's dimensions and statistic, as CloudWatch publishes it (None: the
    # predefined metric's ClusterName and ServiceName)
    dimensions: tuple[tuple[str, str], ...] | None = None
    statistic: str = "Average"


@dataclass(frozen=True)
class PolicySet:
    """One service's scaling: the bounds of its scalable target and its policies."""

    label: str
    min: int
    max: int
    steps: tuple[StepRule, ...] = ()
    tracking: tuple[TrackingRule, ...] = ()
    scheduled: tuple[ScheduledAction, ...] = ()

    @classmethod
    def from_scaling(
        cls, label: str, scaling: Scaling, cluster: str = "", service: str = ""
    ) -> PolicySet:
        """The fleet's policies as nixecs renders them: alarms without DatapointsToAlarm
        (so N of N: PutMetricAlarm uses it "only if you are setting an 'M out of N' alarm") and with TreatMissingData notBreaching (cloudformation/scaling.py);
        `cluster` and `service` (AWS names) fill the alarms' dimension placeholders."""
        from ..fleet import metrics

        def dimensions(alarm: Alarm) -> tuple[tuple[str, str], ...]:
            pairs = alarm.dimensions or metrics.default_dimensions(alarm.namespace, alarm.metric)
            return tuple((n, metrics.resolve(v, cluster, service)) for n, v in pairs or ())

        steps = tuple(
            StepRule(
                name=p.name,
                alarm=AlarmRule(
                    metric=f"{p.alarm.namespace}/{p.alarm.metric}",
                    statistic=p.alarm.statistic,
                    period=p.alarm.period,
                    evaluation_periods=p.alarm.evaluation_periods,
                    datapoints_to_alarm=p.alarm.evaluation_periods,
                    threshold=p.alarm.threshold,
                    comparison=p.alarm.comparison,
                    missing="notBreaching",
                    dimensions=dimensions(p.alarm),
                ),
                adjustment_type=p.adjustment_type,
                cooldown=p.cooldown,
                aggregation=p.aggregation,
                min_adjustment_magnitude=p.min_adjustment_magnitude,
                steps=tuple((s.lower, s.upper, s.change) for s in p.steps),
            )
            for p in scaling.step
        )
        tracking = tuple(
            TrackingRule(
                metric=t.custom.key if t.custom is not None else TRACKING_METRICS[t.metric],
                target=t.target,
                scale_in_cooldown=t.scale_in_cooldown,
                scale_out_cooldown=t.scale_out_cooldown,
                disable_scale_in=t.disable_scale_in,
                dimensions=tuple(
                    (n, metrics.resolve(v, cluster, service)) for n, v in t.custom.dimensions
                )
                if t.custom is not None
                else None,
                statistic=t.custom.statistic if t.custom is not None else "Average",
            )
            for t in scaling.target_tracking
        )
        return cls(label, scaling.min, scaling.max, steps, tracking, scaling.scheduled)

    @property
    def metrics(self) -> list[str]:
        names = [s.alarm.metric for s in self.steps] + [t.metric for t in self.tracking]
        return list(dict.fromkeys(names))

    def reference(self, metric: str) -> float | None:
        """The value above which the policies want more capacity: the target, else the
        lowest threshold of a scale-out alarm on this metric."""
        for t in self.tracking:
            if t.metric == metric:
                return t.target
        uppers = [
            s.alarm.threshold for s in self.steps if s.alarm.metric == metric and s.alarm.is_upper
        ]
        return min(uppers) if uppers else None


# -- load ---------------------------------------------------------------------------------


@dataclass
class Load:
    """Per-minute history: each metric's recorded value (None: no data) and running tasks."""

    metrics: dict[str, list[float | None]]
    tasks: list[int | None]
    start: float = 0.0  # epoch seconds of minute 0 (0 for a synthetic load)

    @property
    def minutes(self) -> int:
        return len(self.tasks)

    def work(self, metric: str, minute: int) -> float | None:
        """Demand in task units × metric units: the recorded per-task average × the tasks
        that produced it. None when either is missing."""
        value = self.metrics[metric][minute]
        tasks = self.tasks[minute]
        if value is None or tasks is None:
            return None
        return value * tasks

    def first_tasks(self) -> int | None:
        return next((t for t in self.tasks if t is not None), None)


# -- the replay ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    minute: int
    policy: str
    before: int
    after: int


@dataclass(frozen=True)
class BoundsChange:
    """A scheduled action that ran: the scalable target's min/max before and after."""

    minute: int
    action: str
    before: tuple[int, int]
    after: tuple[int, int]


@dataclass
class Outcome:
    """What one policy set did over the load."""

    policies: PolicySet
    desired: list[int] = field(default_factory=list)
    maxima: list[int] = field(default_factory=list)  # the max capacity in force each minute
    bounds: list[BoundsChange] = field(default_factory=list)
    carrying: list[int] = field(default_factory=list)  # tasks past the start delay
    seen: dict[str, list[float | None]] = field(default_factory=dict)  # metric as replayed
    events: list[Event] = field(default_factory=list)
    alarm_states: dict[str, list[str]] = field(default_factory=dict)

    @property
    def scale_outs(self) -> list[Event]:
        return [e for e in self.events if e.after > e.before]

    @property
    def scale_ins(self) -> list[Event]:
        return [e for e in self.events if e.after < e.before]


class _Alarm:
    """One alarm's datapoints and state [CW-EVAL]."""

    def __init__(self, rule: AlarmRule) -> None:
        self.rule = rule
        self.points: list[float | None] = []
        self.state = "INSUFFICIENT_DATA"

    def add(self, value: float | None) -> str:
        self.points.append(value)
        window = self.points[-self.rule.evaluation_periods :]
        treatment = self.rule.missing
        if treatment == "breaching":
            flags: list[bool | None] = [
                True if v is None else self.rule.breaches(v) for v in window
            ]
        elif treatment == "notBreaching":
            flags = [False if v is None else self.rule.breaches(v) for v in window]
        else:
            flags = [None if v is None else self.rule.breaches(v) for v in window]
        present = [f for f in flags if f is not None]
        if not present:
            if treatment != "ignore":  # `ignore` keeps the current state
                self.state = "INSUFFICIENT_DATA"
        elif sum(present) >= self.rule.datapoints_to_alarm:
            self.state = "ALARM"
        else:
            self.state = "OK"
        return self.state


def _aggregate(values: Sequence[float], statistic: str) -> float:
    if statistic == "Maximum":
        return max(values)
    if statistic == "Minimum":
        return min(values)
    if statistic == "Sum":
        return sum(values)
    if statistic == "SampleCount":
        return float(len(values))
    return sum(values) / len(values)


def step_target(rule: StepRule, value: float, capacity: int) -> int | None:
    """The capacity a step policy asks for when its alarm's metric is `value` [AAS-STEP],
    [AAS-CFG]; None when no step contains the offset from the threshold."""
    offset = value - rule.alarm.threshold
    for lower, upper, change in rule.steps:
        lo = -math.inf if lower is None else lower
        hi = math.inf if upper is None else upper
        inside = lo <= offset < hi if rule.alarm.is_upper else lo < offset <= hi
        if not inside:
            continue
        if rule.adjustment_type == "ExactCapacity":
            return change
        if rule.adjustment_type == "PercentChangeInCapacity":
            delta = int(capacity * change / 100)  # toward zero (assumption, see module doc)
            magnitude = rule.min_adjustment_magnitude
            if change and magnitude is not None and abs(delta) < magnitude:
                delta = magnitude if change > 0 else -magnitude
            return capacity + delta
        return capacity + change
    return None


class _Cooldown:
    """A policy's cooldowns [AAS-CFG]: after a scale-out, a further scale-out counts the
    capacity that scale-out added (only a larger one acts); after a scale-in, scale-ins wait."""

    def __init__(self) -> None:
        self.out_until = -1
        self.out_base = 0  # the capacity before the scale-out that started the cooldown
        self.in_until = -1


def replay(
    policies: PolicySet,
    load: Load,
    *,
    start_capacity: int | None = None,
    start_delay: int = 0,
) -> Outcome:
    """Replay `policies` over `load`. `start_delay`: minutes before a new task carries load."""
    low, high = policies.min, policies.max
    first = start_capacity if start_capacity is not None else load.first_tasks()
    desired = min(max(first if first is not None else low, low), high)
    ready_at = [0] * desired  # the minute each task starts carrying load
    outcome = Outcome(policies)
    alarms = {rule.name: _Alarm(rule.alarm) for rule in policies.steps}
    tracking_alarms = [
        (
            t,
            _Alarm(
                AlarmRule(t.metric, "Average", MINUTE, TT_OUT_POINTS, TT_OUT_POINTS, t.target, ">")
            ),
            _Alarm(
                AlarmRule(
                    t.metric,
                    "Average",
                    MINUTE,
                    TT_IN_POINTS,
                    TT_IN_POINTS,
                    TT_IN_FRACTION * t.target,
                    "<",
                )
            ),
        )
        for t in policies.tracking
    ]
    cooldowns: dict[str, _Cooldown] = {
        name: _Cooldown()
        for name in [r.name for r in policies.steps]
        + [f"target-tracking:{t.metric}" for t in policies.tracking]
    }
    for name in alarms:
        outcome.alarm_states[name] = []
    for metric in [*load.metrics, *policies.metrics]:
        outcome.seen[metric] = []
    absent = [m for m in policies.metrics if m not in load.metrics]  # no data: missing

    for minute in range(load.minutes):
        # Scheduled actions first: they move min/max, and the capacity into them [AAS-SCHED].
        for action in policies.scheduled:
            if not schedules.fires(action, load.start + minute * MINUTE, minute):
                continue
            before = (low, high)
            low = action.min if action.min is not None else low
            high = action.max if action.max is not None else high
            outcome.bounds.append(BoundsChange(minute, action.name, before, (low, high)))
            moved = min(max(desired, low), high)
            if moved != desired:
                outcome.events.append(Event(minute, f"scheduled:{action.name}", desired, moved))
                if moved > desired:
                    ready_at.extend([minute + 1 + start_delay] * (moved - desired))
                else:
                    ready_at.sort()
                    del ready_at[moved:]
                desired = moved
        carrying = sum(1 for r in ready_at if r <= minute)
        for metric, series in load.metrics.items():
            if metric in SCALES_WITH_TASKS:
                work = load.work(metric, minute)
                value = None if work is None or carrying == 0 else work / carrying
            else:
                value = series[minute]
            outcome.seen[metric].append(value)
        for metric in absent:
            outcome.seen[metric].append(None)

        wanted: list[tuple[str, int]] = []
        for rule in policies.steps:
            alarm = alarms[rule.name]
            per = max(rule.alarm.period // MINUTE, 1)
            if (minute + 1) % per == 0:
                window = [v for v in outcome.seen[rule.alarm.metric][-per:] if v is not None]
                alarm.add(_aggregate(window, rule.alarm.statistic) if window else None)
                if alarm.state == "ALARM":
                    recent = [
                        v for v in alarm.points[-rule.alarm.evaluation_periods :] if v is not None
                    ]
                    if recent:
                        value = _aggregate(recent, rule.aggregation)
                        cool = cooldowns[rule.name]
                        base = cool.out_base if minute < cool.out_until else desired
                        target = step_target(rule, value, base)
                        if target is not None:
                            wanted.append((rule.name, target))
            outcome.alarm_states[rule.name].append(alarm.state)
        for t, out_alarm, in_alarm in tracking_alarms:
            value = outcome.seen[t.metric][-1]
            out_alarm.add(value)
            in_alarm.add(value)
            name = f"target-tracking:{t.metric}"
            outcome.alarm_states.setdefault(f"{name}:high", []).append(out_alarm.state)
            outcome.alarm_states.setdefault(f"{name}:low", []).append(in_alarm.state)
            if value is None:
                continue  # INSUFFICIENT_DATA: target tracking cannot scale [AAS-TT]
            proportional = math.ceil(round(desired * value / t.target, 9))
            if out_alarm.state == "ALARM":
                wanted.append((name, max(proportional, desired)))
            elif in_alarm.state == "ALARM" and not t.disable_scale_in:
                wanted.append((name, min(proportional, desired)))

        new, name = desired, ""
        outs = [(n, c) for n, c in wanted if c > desired]
        if outs:
            # The largest capacity wins [AAS-TT]; a scale-out ends every scale-in cooldown.
            name, capacity = max(outs, key=lambda item: item[1])
            new = min(capacity, high)
            if new > desired:
                cool = cooldowns[name]
                if minute >= cool.out_until:
                    cool.out_base = desired
                cool.out_until = minute + _cooldown_minutes(policies, name, out=True)
                for other in cooldowns.values():
                    other.in_until = -1
        else:
            ins = [(n, c) for n, c in wanted if c < desired and minute >= cooldowns[n].in_until]
            # Several target tracking policies scale in "only if all of the target tracking
            # policies (with the scale-in portion enabled) are ready to scale in" [AAS-MULTI].
            tracking_in = {
                f"target-tracking:{t.metric}" for t in policies.tracking if not t.disable_scale_in
            }
            if not tracking_in <= {n for n, _ in ins}:
                ins = [(n, c) for n, c in ins if n not in tracking_in]
            if ins:
                name, capacity = max(ins, key=lambda item: item[1])
                new = max(capacity, low)
                if new < desired:
                    cooldowns[name].in_until = minute + _cooldown_minutes(policies, name, out=False)
        new = min(max(new, low), high)  # [AAS-REG]
        if new != desired:
            outcome.events.append(Event(minute, name, desired, new))
            if new > desired:
                ready_at.extend([minute + 1 + start_delay] * (new - desired))
            else:
                ready_at.sort()
                del ready_at[new:]  # the youngest (still starting) go first
            desired = new
        outcome.desired.append(desired)
        outcome.maxima.append(high)
        outcome.carrying.append(carrying)
    return outcome


def _cooldown_minutes(policies: PolicySet, name: str, *, out: bool) -> int:
    for rule in policies.steps:
        if rule.name == name:
            return max(math.ceil(rule.cooldown / MINUTE), 0)
    for t in policies.tracking:
        if name == f"target-tracking:{t.metric}":
            return max(
                math.ceil((t.scale_out_cooldown if out else t.scale_in_cooldown) / MINUTE), 0
            )
    return 0


# -- summary ------------------------------------------------------------------------------


def summary(outcome: Outcome, load: Load) -> dict[str, object]:
    """The figures `scaling replay` prints per policy set."""
    policies = outcome.policies
    minutes = len(outcome.desired)
    above: dict[str, int] = {}
    gap, gap_minute = 0, None
    for metric in policies.metrics:
        reference = policies.reference(metric)
        if reference is None or metric not in outcome.seen:
            continue
        seen = outcome.seen[metric]
        above[metric] = sum(1 for v in seen if v is not None and v > reference)
        if metric in SCALES_WITH_TASKS:
            for minute in range(minutes):
                work = load.work(metric, minute)
                if work is None:
                    continue
                short = math.ceil(round(work / reference, 9)) - outcome.carrying[minute]
                if short > gap:
                    gap, gap_minute = short, minute
    return {
        "policies": policies.label,
        "scale_outs": len(outcome.scale_outs),
        "scale_ins": len(outcome.scale_ins),
        "minutes_above": above,
        "minutes_at_max": sum(
            1
            for d, m in zip(
                outcome.desired, outcome.maxima or [policies.max] * minutes, strict=True
            )
            if d >= m
        ),
        "task_hours": round(sum(outcome.desired) / 60, 2),
        "largest_gap": {"tasks": gap, "minute": gap_minute},
        "start": outcome.desired[0] if outcome.desired else None,
        "peak": max(outcome.desired) if outcome.desired else None,
        "end": outcome.desired[-1] if outcome.desired else None,
        "events": [
            {"minute": e.minute, "policy": e.policy, "from": e.before, "to": e.after}
            for e in outcome.events
        ],
        "scheduled": [
            {
                "minute": b.minute,
                "action": b.action,
                "min": {"from": b.before[0], "to": b.after[0]},
                "max": {"from": b.before[1], "to": b.after[1]},
            }
            for b in outcome.bounds
        ],
        "not_modelled": [a.name for a in policies.scheduled if not schedules.modelled(a)],
    }


# -- the synthetic wave (`scaling simulate`) ----------------------------------------------


@dataclass
class Timeline:
    """Per-minute series of one simulation."""

    minutes: list[int] = field(default_factory=list)
    demand: list[float] = field(default_factory=list)  # CPU % of one task, summed over tasks
    cpu: list[float] = field(default_factory=list)  # average CPU % per task
    desired: list[int] = field(default_factory=list)
    actions: list[tuple[int, str, int]] = field(default_factory=list)  # (minute, policy, change)


def wave(hours: float, base: float = 60.0, peak: float = 400.0) -> Callable[[int], float]:
    """Demand that rises from `base` to `peak` and falls back once over `hours`."""
    span = hours * 60

    def demand(minute: int) -> float:
        phase = min(max(minute / span, 0.0), 1.0)
        return base + (peak - base) * math.sin(math.pi * phase) ** 2

    return demand


def simulate(service: Service, demand: Callable[[int], float], minutes: int) -> Timeline:
    """Run the service's scaling policies over `minutes` of `demand` (CPU % of one task,
    summed over the service), through the same engine as `scaling replay`."""
    scaling = service.scaling
    if scaling is None:
        raise ValueError(f"service {service.name!r} has no scaling")
    policies = PolicySet.from_scaling(f"{service.cluster}/{service.name}", scaling)
    cpu = "AWS/ECS/CPUUtilization"
    work = [demand(m) for m in range(minutes)]
    metrics: dict[str, list[float | None]] = {name: [None] * minutes for name in policies.metrics}
    metrics[cpu] = list(work)  # per task at one task: the work itself
    load = Load(metrics, [1] * minutes)
    outcome = replay(policies, load, start_capacity=service.start_count)
    timeline = Timeline()
    for minute in range(minutes):
        timeline.minutes.append(minute)
        timeline.demand.append(work[minute])
        value = outcome.seen[cpu][minute]
        timeline.cpu.append(value if value is not None else 0.0)
        timeline.desired.append(outcome.desired[minute])
    timeline.actions = [(e.minute, e.policy, e.after - e.before) for e in outcome.events]
    return timeline


def unsimulated(service: Service) -> list[str]:
    """The metrics the service's policies use that `simulate`'s wave (CPU only) does not
    drive: they read as missing data, so target tracking on them cannot scale, and with
    several policies it never agrees to a scale-in [AAS-TT], [AAS-MULTI]."""
    if service.scaling is None:
        return []
    used = PolicySet.from_scaling("", service.scaling).metrics
    return [m for m in used if m != "AWS/ECS/CPUUtilization"]


def plot(service: Service, timeline: Timeline, path: str, title: str) -> None:
    """A PNG: CPU per task with the alarm thresholds or target above, tasks below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    scaling = service.scaling
    assert scaling is not None
    hours = [m / 60 for m in timeline.minutes]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=[3, 2])
    top.plot(hours, timeline.cpu, color="tab:blue", label="CPU per task (%)")
    for policy in scaling.step:
        colour = "tab:red" if policy.alarm.is_upper else "tab:green"
        top.axhline(
            policy.alarm.threshold,
            color=colour,
            linestyle="--",
            label=f"{policy.name}: {policy.alarm.comparison} {policy.alarm.threshold:g}",
        )
    for tracking in scaling.target_tracking:
        top.axhline(
            tracking.target,
            color="tab:purple",
            linestyle="--",
            label=f"target {tracking.metric_key} {tracking.target:g}",
        )
    top.set_ylabel("CPU %")
    top.legend(loc="upper right", fontsize="small")
    top.set_title(title)
    bottom.step(hours, timeline.desired, where="post", color="tab:orange", label="desired tasks")
    bottom.axhline(scaling.max, color="grey", linestyle=":", label=f"max {scaling.max}")
    bottom.axhline(scaling.min, color="grey", linestyle="-.", label=f"min {scaling.min}")
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_ylabel("tasks")
    bottom.set_xlabel("hours")
    bottom.legend(loc="upper right", fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    write_atomic(path, buffer.getvalue())
