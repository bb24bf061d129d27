"""The scaling engine, rule by rule: each scenario is the smallest one whose outcome AWS's
documentation states (the sources are cited in nixecs/scaling/sim.py, [CW-EVAL] etc.)."""

from __future__ import annotations

import itertools
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from nixecs.fleet import load_fleet
from nixecs.scaling.sim import (
    AlarmRule,
    Load,
    PolicySet,
    StepRule,
    TrackingRule,
    replay,
    step_target,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CPU = "AWS/ECS/CPUUtilization"
QUEUE = "AWS/SQS/ApproximateNumberOfMessagesVisible"


def alarm(
    threshold: float = 80,
    comparison: str = ">=",
    *,
    n: int = 1,
    m: int | None = None,
    period: int = 60,
    missing: str = "missing",
    metric: str = CPU,
) -> AlarmRule:
    return AlarmRule(metric, "Average", period, n, m or n, threshold, comparison, missing)


def rule(
    name: str = "out",
    watch: AlarmRule | None = None,
    steps: tuple[tuple[float | None, float | None, int], ...] = ((0, None, 2),),
    *,
    kind: str = "ChangeInCapacity",
    cooldown: int = 0,
    magnitude: int | None = None,
) -> StepRule:
    return StepRule(name, watch or alarm(), kind, cooldown, "Average", magnitude, steps)


def flat(values: list[float | None], tasks: int | None = 1, metric: str = CPU) -> Load:
    """A load whose metric, at `tasks` running tasks, reads `values`."""
    return Load({metric: list(values)}, [tasks] * len(values))


def as_given(values: list[float | None]) -> Load:
    return flat(values, metric=QUEUE)


# -- CloudWatch alarm evaluation [CW-EVAL] --------------------------------------------------


def test_m_of_n_alarm_needs_m_breaching_points_of_the_last_n() -> None:
    policies = PolicySet("p", 1, 10, (rule(watch=alarm(10, ">=", n=3, m=2, metric=QUEUE)),))
    outcome = replay(policies, as_given([50, 0, 50, 0, 0, 0]), start_capacity=1)
    assert outcome.alarm_states["out"][:4] == ["OK", "OK", "ALARM", "OK"]
    strict = PolicySet("p", 1, 10, (rule(watch=alarm(10, ">=", n=3, m=3, metric=QUEUE)),))
    outcome = replay(strict, as_given([50, 0, 50, 0, 0, 0]), start_capacity=1)
    assert "ALARM" not in outcome.alarm_states["out"]
    assert outcome.desired[-1] == 1


def test_a_five_minute_alarm_evaluates_once_per_period_on_the_period_average() -> None:
    policies = PolicySet("p", 1, 10, (rule(watch=alarm(10, ">=", period=300, metric=QUEUE)),))
    # Average of 0,0,0,0,60 = 12 >= 10: ALARM at the end of the first period, not before.
    outcome = replay(policies, as_given([0, 0, 0, 0, 60]), start_capacity=1)
    assert [e.minute for e in outcome.events] == [4]


def test_missing_data_treatments() -> None:
    values: list[float | None] = [None, None, None]

    def states(missing: str, first: float | None = None) -> list[str]:
        policies = PolicySet(
            "p", 1, 10, (rule(watch=alarm(10, ">=", missing=missing, metric=QUEUE)),)
        )
        load = as_given([first, *values] if first is not None else values)
        return replay(policies, load, start_capacity=1).alarm_states["out"]

    assert states("missing") == ["INSUFFICIENT_DATA"] * 3
    assert states("notBreaching") == ["OK"] * 3
    assert states("breaching") == ["ALARM"] * 3
    assert states("ignore", first=50) == ["ALARM"] * 4  # keeps the state it had


# -- step adjustments [AAS-STEP] [AAS-CFG] --------------------------------------------------


def test_step_bounds_are_offsets_from_the_threshold_with_aws_inclusivity() -> None:
    upper = rule(watch=alarm(70, ">="), steps=((0, 15, 1), (15, None, 3)))
    assert step_target(upper, 70, 4) == 5  # offset 0: lower bound inclusive
    assert step_target(upper, 84.9, 4) == 5
    assert step_target(upper, 85, 4) == 7  # offset 15 belongs to the upper step
    lower = rule(watch=alarm(30, "<="), steps=((None, -10, -2), (-10, 0, -1)))
    assert step_target(lower, 30, 4) == 3  # offset 0: upper bound inclusive below
    assert step_target(lower, 20, 4) == 2  # offset -10: upper bound of (-inf, -10]
    assert step_target(lower, 20.1, 4) == 3


def test_the_article_step_can_never_run_under_its_alarm() -> None:
    article = rule(watch=alarm(80, ">="), steps=((0, None, 2), (None, 0, -1)))
    assert step_target(article, 10, 5) is None or step_target(article, 10, 5) == 4
    policies = PolicySet("article", 1, 20, (article,))
    outcome = replay(policies, flat([10.0] * 60, tasks=5), start_capacity=5)
    assert outcome.events == []  # the alarm never leaves OK, so -1 never runs


def test_adjustment_types() -> None:
    exact = rule(kind="ExactCapacity", steps=((0, None, 7),))
    assert step_target(exact, 90, 3) == 7
    percent = rule(kind="PercentChangeInCapacity", steps=((0, None, 25),), magnitude=2)
    # AWS's example: 25 % of 4 is 1, MinAdjustmentMagnitude 2 scales out by 2.
    assert step_target(percent, 90, 4) == 6
    assert step_target(percent, 90, 20) == 25
    change = rule(steps=((0, None, 3),))
    assert step_target(change, 90, 4) == 7


def test_capacity_is_clamped_to_min_and_max() -> None:
    policies = PolicySet("p", 2, 5, (rule(watch=alarm(metric=QUEUE), steps=((0, None, 10),)),))
    outcome = replay(policies, as_given([99] * 3), start_capacity=3)
    assert outcome.desired == [5, 5, 5]
    down = PolicySet(
        "p", 2, 5, (rule("in", alarm(10, "<=", metric=QUEUE), steps=((None, 0, -10),)),)
    )
    assert replay(down, as_given([0] * 3), start_capacity=4).desired == [2, 2, 2]


def test_a_scale_out_during_its_cooldown_counts_what_the_last_one_added() -> None:
    # AWS's example: +2, then during the cooldown a more aggressive +3 adds only 1.
    watch = alarm(50, ">=", metric=QUEUE)
    policy = rule(watch=watch, steps=((0, 50, 2), (50, None, 3)), cooldown=300)
    policies = PolicySet("p", 1, 50, (policy,))
    outcome = replay(policies, as_given([60, 60, 120, 120]), start_capacity=4)
    assert [(e.before, e.after) for e in outcome.events] == [(4, 6), (6, 7)]
    # The same +2 again during the cooldown is not larger: nothing happens.
    outcome = replay(policies, as_given([60] * 5), start_capacity=4)
    assert [(e.before, e.after) for e in outcome.events] == [(4, 6)]
    # After the cooldown (5 minutes), +2 applies to the capacity then.
    outcome = replay(policies, as_given([60] * 6), start_capacity=4)
    assert [(e.before, e.after) for e in outcome.events] == [(4, 6), (6, 8)]


def test_scale_in_waits_for_its_cooldown_but_a_scale_out_does_not() -> None:
    scale_in = rule("in", alarm(10, "<=", metric=QUEUE), steps=((None, 0, -1),), cooldown=180)
    scale_out = rule("out", alarm(50, ">=", metric=QUEUE), steps=((0, None, 1),), cooldown=0)
    policies = PolicySet("p", 1, 10, (scale_out, scale_in))
    outcome = replay(policies, as_given([0, 0, 0, 0, 0, 0]), start_capacity=5)
    assert [e.minute for e in outcome.events] == [0, 3]  # blocked for 3 minutes after a scale-in
    outcome = replay(policies, as_given([0, 90, 0, 0]), start_capacity=5)
    # The scale-out at minute 1 runs at once and ends the scale-in cooldown: minute 2 scales in.
    assert [(e.minute, e.after) for e in outcome.events] == [(0, 4), (1, 5), (2, 4)]


# -- target tracking [AAS-TT] [TT-ALARMS] ---------------------------------------------------


def tracking(target: float = 50, *, disable_in: bool = False, cooldown: int = 0) -> PolicySet:
    return PolicySet(
        "tt", 1, 20, tracking=(TrackingRule(CPU, target, cooldown, cooldown, disable_in),)
    )


def test_target_tracking_scales_out_on_three_of_three_minutes_above_the_target() -> None:
    outcome = replay(tracking(50), flat([100, 100, 100, 100], tasks=2), start_capacity=2)
    first = outcome.events[0]
    assert first.minute == 2 and first.after == 4  # proportional: ceil(2 × 100 / 50)
    two_minutes = replay(tracking(50), flat([100, 100, 40, 40], tasks=2), start_capacity=2)
    assert two_minutes.events == []


def test_target_tracking_scales_in_on_fifteen_minutes_below_ninety_percent() -> None:
    low = [20.0] * 20  # 40 % of the target at 4 tasks
    outcome = replay(tracking(50), flat(low, tasks=4), start_capacity=4)
    assert outcome.events[0].minute == 14 and outcome.events[0].after == 2  # ceil(4 × 20 / 50)
    near = [46.0] * 30  # 92 % of the target: not below 90 % (at 19 tasks it would read 48.4)
    assert replay(tracking(50), flat(near, tasks=20), start_capacity=20).events == []
    disabled = replay(tracking(50, disable_in=True), flat(low, tasks=4), start_capacity=4)
    assert disabled.events == []


def test_replayed_capacity_changes_what_utilization_policies_see() -> None:
    # Work of 400 (CPU % of one task) on 4 recorded tasks reads 100 %; at 8 tasks it is 50 %.
    outcome = replay(tracking(50), flat([100.0] * 10, tasks=4), start_capacity=4)
    assert outcome.desired[-1] == 8
    assert outcome.seen[CPU][-1] == 50.0


def test_metrics_that_do_not_scale_with_tasks_are_replayed_as_given() -> None:
    policies = PolicySet("p", 1, 10, (rule(watch=alarm(10, ">=", metric=QUEUE)),))
    outcome = replay(policies, as_given([50.0] * 5), start_capacity=1)
    assert outcome.seen[QUEUE] == [50.0] * 5


def test_new_tasks_carry_load_only_after_the_start_delay() -> None:
    load = flat([100.0] * 12, tasks=2)
    outcome = replay(tracking(50), load, start_capacity=2, start_delay=5)
    assert outcome.events[0].minute == 2
    # Minutes 3..7: 4 desired, 2 carrying: the metric still reads 100.
    assert outcome.seen[CPU][3:8] == [100.0] * 5
    assert outcome.seen[CPU][8] == 50.0


# -- the article on a recorded wave ---------------------------------------------------------


def test_the_article_policy_never_scales_in_on_the_recorded_trace() -> None:
    from nixecs.scaling.trace import read_trace

    load = read_trace(EXAMPLES / "load-trace.csv")
    blog = load_fleet(EXAMPLES / "blog.yml").clusters["blog"].services["app"]
    assert blog.scaling is not None
    outcome = replay(PolicySet.from_scaling("article", blog.scaling), load)
    assert outcome.scale_outs and not outcome.scale_ins
    assert all(b >= a for a, b in itertools.pairwise(outcome.desired))
    reports = load_fleet(EXAMPLES / "fleet.yml").clusters["prod"].services["reports"]
    assert reports.scaling is not None
    pair = replay(PolicySet.from_scaling("pair", reports.scaling), load)
    assert pair.scale_outs and pair.scale_ins


# -- properties -----------------------------------------------------------------------------

values = st.lists(
    st.one_of(st.none(), st.floats(0, 300, allow_nan=False)), min_size=1, max_size=120
)


@st.composite
def policy_sets(draw: st.DrawFn) -> PolicySet:
    low = draw(st.integers(0, 5))
    high = draw(st.integers(max(low, 1), 12))
    steps = []
    for index in range(draw(st.integers(0, 3))):
        upper = draw(st.booleans())
        threshold = draw(st.floats(1, 150, allow_nan=False))
        n = draw(st.integers(1, 4))
        change = draw(st.integers(1, 5)) * (1 if upper else -1)
        kind = draw(
            st.sampled_from(["ChangeInCapacity", "PercentChangeInCapacity", "ExactCapacity"])
        )
        if kind == "ExactCapacity":
            change = abs(change)
        steps.append(
            StepRule(
                f"p{index}",
                AlarmRule(
                    CPU,
                    "Average",
                    60 * draw(st.sampled_from([1, 5])),
                    n,
                    draw(st.integers(1, n)),
                    threshold,
                    ">=" if upper else "<=",
                    draw(st.sampled_from(["missing", "notBreaching", "breaching", "ignore"])),
                ),
                kind,
                60 * draw(st.integers(0, 5)),
                "Average",
                draw(st.one_of(st.none(), st.integers(1, 3))),
                ((0, None, change),) if upper else ((None, 0, change),),
            )
        )
    tracks: tuple[TrackingRule, ...] = ()
    if draw(st.booleans()):
        tracks = (
            TrackingRule(
                CPU,
                draw(st.floats(10, 90, allow_nan=False)),
                60 * draw(st.integers(0, 5)),
                60 * draw(st.integers(0, 5)),
                draw(st.booleans()),
            ),
        )
    return PolicySet("any", low, high, tuple(steps), tracks)


@settings(max_examples=150, deadline=None)
@given(policy_sets(), values, st.integers(0, 30), st.integers(0, 5))
def test_capacity_stays_within_min_and_max(
    policies: PolicySet, series: list[float | None], tasks: int, delay: int
) -> None:
    outcome = replay(policies, flat(series, tasks=tasks or None), start_delay=delay)
    assert all(policies.min <= d <= policies.max for d in outcome.desired)


@settings(max_examples=150, deadline=None)
@given(policy_sets(), values, st.integers(1, 30))
def test_a_scale_in_happens_only_while_the_alarm_that_drives_it_is_in_alarm(
    policies: PolicySet, series: list[float | None], tasks: int
) -> None:
    outcome = replay(policies, flat(series, tasks=tasks))
    by_name = {r.name for r in policies.steps}
    for event in outcome.scale_ins:
        if event.policy in by_name:
            assert outcome.alarm_states[event.policy][event.minute] == "ALARM"
        else:  # target tracking scales in on its own low alarm only
            assert event.policy.startswith("target-tracking:")
            assert not policies.tracking[0].disable_scale_in
            assert outcome.alarm_states[f"{event.policy}:low"][event.minute] == "ALARM"


def test_simulate_runs_on_the_replay_engine() -> None:
    from nixecs.scaling.sim import simulate, wave

    reports = load_fleet(EXAMPLES / "fleet.yml").clusters["prod"].services["reports"]
    assert reports.scaling is not None
    demand = wave(6, 40, 400)
    timeline = simulate(reports, demand, 480)
    load = Load({CPU: [demand(m) for m in range(480)]}, [1] * 480)
    outcome = replay(
        PolicySet.from_scaling("x", reports.scaling), load, start_capacity=reports.start_count
    )
    assert timeline.desired == outcome.desired
