"""Group capacity provider settings (issue 21, item 2): `capacity_provider:` (managed
scaling), a spot group's on-demand split and allocation strategies, a cluster's
`default_strategy:`; bounds as AWS's (nixecs.fleet.capacity cites them), located errors, the
JSON Schema agreeing, the template, cfn-lint, and moto where it models the settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from capacity_fixtures import HEAD, assert_cfn_lint_clean, errors, line_of, load_text
from conftest import MotoServer
from nixecs.cloudformation import build_stack
from nixecs.cloudformation.ids import CAPACITY_PROVIDER_ASSOCIATIONS
from nixecs.diagnostics import InvalidInput
from nixecs.fleet import parse
from nixecs.fleet.schema import json_schema
from nixecs.fleet.yaml12 import load


def fleet_text(od: str = "", spot: str = "", cluster: str = "") -> str:
    """Cluster `prod` with groups od (on-demand, two types) and spot, each with extra
    flow-style lines (indented 8), and extra cluster lines (indented 4)."""
    return (
        HEAD
        + f"""\
{cluster}    groups:
      od:
        ami: ami-0123456789abcdef0
        instance_types: [m6i.large, m5.large]
        capacity: {{min: 1, max: 4}}
{od}      spot:
        ami: ami-0123456789abcdef0
        instance_types: [m6i.large, m5.large]
        capacity: {{min: 0, max: 8}}
        spot: true
{spot}    services:
      web:
        group: od
        image: nginx:1.27
        memory: 512
"""
    )


def line(text: str) -> str:
    return f"        {text}\n"


def resources(text: str) -> dict[str, Any]:
    fleet = load_text(text)
    stack = build_stack(fleet, "prod", {name: b"#x\n" for name in fleet.clusters["prod"].groups})
    return stack["Resources"]  # type: ignore[no-any-return]


# -- the template ------------------------------------------------------------------------------


def test_without_settings_the_template_is_as_before() -> None:
    found = resources(fleet_text())
    assert found["OdCapacityProvider"]["Properties"]["AutoScalingGroupProvider"][
        "ManagedScaling"
    ] == {"Status": "ENABLED", "TargetCapacity": 100}
    spot = found["SpotAutoScalingGroup"]["Properties"]["MixedInstancesPolicy"]
    assert spot["InstancesDistribution"] == {
        "OnDemandBaseCapacity": 0,
        "OnDemandPercentageAboveBaseCapacity": 0,
        "SpotAllocationStrategy": "price-capacity-optimized",
    }
    od = found["OdAutoScalingGroup"]["Properties"]["MixedInstancesPolicy"]
    assert od["InstancesDistribution"]["OnDemandAllocationStrategy"] == "prioritized"
    assert found[CAPACITY_PROVIDER_ASSOCIATIONS]["Properties"][
        "DefaultCapacityProviderStrategy"
    ] == [{"CapacityProvider": {"Ref": "OdCapacityProvider"}, "Base": 0, "Weight": 1}]


def test_capacity_provider_renders_managed_scaling() -> None:
    text = fleet_text(
        od=line(
            "capacity_provider: {target_capacity: 80, minimum_step: 2, maximum_step: 6, instance_warmup: 90}"
        ),
        spot=line("capacity_provider: {target_capacity: 95}"),
    )
    found = resources(text)
    provider = found["OdCapacityProvider"]["Properties"]["AutoScalingGroupProvider"]
    assert provider["ManagedScaling"] == {
        "Status": "ENABLED",
        "TargetCapacity": 80,
        "MinimumScalingStepSize": 2,
        "MaximumScalingStepSize": 6,
        "InstanceWarmupPeriod": 90,
    }
    spot = found["SpotCapacityProvider"]["Properties"]["AutoScalingGroupProvider"]
    assert spot["ManagedScaling"] == {"Status": "ENABLED", "TargetCapacity": 95}


def test_a_mixed_spot_group_renders_its_split() -> None:
    text = fleet_text(
        spot=line("on_demand_base: 1")
        + line("on_demand_percent: 25")
        + line("spot_allocation: capacity-optimized-prioritized")
        + line("on_demand_allocation: lowest-price"),
        od=line("on_demand_allocation: lowest-price"),
    )
    found = resources(text)
    spot = found["SpotAutoScalingGroup"]["Properties"]
    assert spot["MixedInstancesPolicy"]["InstancesDistribution"] == {
        "OnDemandBaseCapacity": 1,
        "OnDemandPercentageAboveBaseCapacity": 25,
        "SpotAllocationStrategy": "capacity-optimized-prioritized",
        "OnDemandAllocationStrategy": "lowest-price",
    }
    assert spot["CapacityRebalance"] is True
    od = found["OdAutoScalingGroup"]["Properties"]["MixedInstancesPolicy"]
    assert od["InstancesDistribution"]["OnDemandAllocationStrategy"] == "lowest-price"


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("default_strategy: spot", [("SpotCapacityProvider", 0, 1)]),
        (
            "default_strategy: [{group: od, base: 1, weight: 1}, {group: spot, weight: 4}]",
            [("OdCapacityProvider", 1, 1), ("SpotCapacityProvider", 0, 4)],
        ),
    ],
)
def test_default_strategy(written: str, expected: list[tuple[str, int, int]]) -> None:
    found = resources(fleet_text(cluster=f"    {written}\n"))
    items = found[CAPACITY_PROVIDER_ASSOCIATIONS]["Properties"]["DefaultCapacityProviderStrategy"]
    assert [(i["CapacityProvider"]["Ref"], i["Base"], i["Weight"]) for i in items] == expected


# -- odd values: located errors, and the JSON Schema agrees ------------------------------------

ODD = [
    ("od", "capacity_provider: {target_capacity: 0}", "E107"),
    ("od", "capacity_provider: {target_capacity: 101}", "E107"),
    ("od", "capacity_provider: {minimum_step: 0}", "E107"),
    ("od", "capacity_provider: {maximum_step: 10001}", "E107"),
    ("od", "capacity_provider: {instance_warmup: -1}", "E107"),
    ("od", "capacity_provider: {instance_warmup: 10001}", "E107"),
    ("od", "capacity_provider: {target_capacity: 1.5}", "E103"),
    ("od", "capacity_provider: {status: DISABLED}", "E101"),
    ("od", "capacity_provider: 90", "E103"),
    ("spot", "on_demand_percent: 101", "E107"),
    ("spot", "on_demand_base: -1", "E107"),
    ("spot", "spot_allocation: cheapest", "E107"),
    ("spot", "on_demand_allocation: capacity-optimized", "E107"),
]


@pytest.mark.parametrize(("where", "written", "code"), ODD, ids=[w for _, w, _ in ODD])
def test_odd_values_are_located_errors(where: str, written: str, code: str) -> None:
    text = fleet_text(**{where: line(written)})
    assert errors(text) == [(line_of(text, written), code)]


@pytest.mark.parametrize(("where", "written", "code"), ODD, ids=[w for _, w, _ in ODD])
def test_the_json_schema_rejects_them_too(where: str, written: str, code: str) -> None:
    document = load(fleet_text(**{where: line(written)}).encode(), "fleet.yml").value
    validator = jsonschema.Draft202012Validator(json_schema())
    assert list(validator.iter_errors(document)), written
    with pytest.raises(InvalidInput):
        parse(json.dumps(document), "fleet.json")
    good = load(fleet_text().encode(), "fleet.yml").value
    assert list(validator.iter_errors(good)) == []


@pytest.mark.parametrize(
    ("where", "written"),
    [
        ("od", "capacity_provider: {minimum_step: 5, maximum_step: 4}"),
        ("od", "on_demand_base: 1"),
        ("od", "on_demand_percent: 20"),
        ("od", "spot_allocation: lowest-price"),
    ],
)
def test_contradictions_are_e193(where: str, written: str) -> None:
    text = fleet_text(**{where: line(written)})
    assert errors(text) == [(line_of(text, written), "E193")]


@pytest.mark.parametrize(
    ("written", "code"),
    [
        ("default_strategy: nope", "E108"),
        ("default_strategy: [{group: od, base: 1, weight: 1}, {group: spot, base: 2}]", "E190"),
        ("default_strategy: [{group: od}, {group: spot}]", "E190"),
    ],
)
def test_default_strategy_errors(written: str, code: str) -> None:
    text = fleet_text(cluster=f"    {written}\n")
    assert [c for _, c in errors(text)] == [code]
    assert errors(text)[0][0] == line_of(text, "default_strategy")


# -- cfn-lint and moto -------------------------------------------------------------------------


FULL = fleet_text(
    od=line("capacity_provider: {target_capacity: 80, minimum_step: 2, maximum_step: 6, instance_warmup: 90}"),
    spot=line("on_demand_base: 1") + line("on_demand_percent: 25") + line("spot_allocation: lowest-price"),
    cluster="    default_strategy: [{group: od, base: 1, weight: 1}, {group: spot, weight: 4}]\n",
)  # fmt: skip


@pytest.mark.cfnlint
def test_cfn_lint_accepts_the_settings(tmp_path: Path) -> None:
    fleet = load_text(FULL)
    assert_cfn_lint_clean(
        build_stack(fleet, "prod", {n: b"#x\n" for n in ("od", "spot")}), tmp_path
    )


def _camel(value: Any) -> Any:
    if isinstance(value, dict):
        return {k[0].lower() + k[1:]: _camel(v) for k, v in value.items()}
    return value


def test_moto_keeps_managed_scaling_and_fills_awss_defaults(moto: MotoServer) -> None:
    """moto's CloudFormation has no AWS::ECS::CapacityProvider; its ECS API stores
    ManagedScaling and fills what is left out with AWS's documented defaults (300 s warm-up,
    steps 1 and 10000), which docs/fleet.md names as the defaults of `capacity_provider:`."""
    import boto3

    found = resources(FULL)
    session = boto3.Session(region_name="us-east-1")
    autoscaling = session.client("autoscaling", endpoint_url=moto.url)
    ec2 = session.client("ec2", endpoint_url=moto.url)
    ecs = session.client("ecs", endpoint_url=moto.url)
    template_id = ec2.create_launch_template(
        LaunchTemplateName="lt", LaunchTemplateData={"ImageId": "ami-12c6146b"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    policy = found["SpotAutoScalingGroup"]["Properties"]["MixedInstancesPolicy"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="spot", MinSize=0, MaxSize=1, AvailabilityZones=["us-east-1a"],
        MixedInstancesPolicy={
            "InstancesDistribution": policy["InstancesDistribution"],
            "LaunchTemplate": {
                "LaunchTemplateSpecification": {"LaunchTemplateId": template_id},
                "Overrides": policy["LaunchTemplate"]["Overrides"],
            },
        },
    )  # fmt: skip
    [group] = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["spot"])[
        "AutoScalingGroups"
    ]
    distribution = group["MixedInstancesPolicy"]["InstancesDistribution"]
    for key, value in policy["InstancesDistribution"].items():
        assert distribution[key] == value, key
    for name in ("Od", "Spot"):
        scaling = found[f"{name}CapacityProvider"]["Properties"]["AutoScalingGroupProvider"][
            "ManagedScaling"
        ]
        ecs.create_capacity_provider(
            name=name,
            autoScalingGroupProvider={
                "autoScalingGroupArn": group["AutoScalingGroupARN"],
                "managedScaling": _camel(scaling),
            },
        )
    described = {
        p["name"]: p["autoScalingGroupProvider"]["managedScaling"]
        for p in ecs.describe_capacity_providers(capacityProviders=["Od", "Spot"])[
            "capacityProviders"
        ]
    }
    assert described["Od"] == {
        "status": "ENABLED",
        "targetCapacity": 80,
        "minimumScalingStepSize": 2,
        "maximumScalingStepSize": 6,
        "instanceWarmupPeriod": 90,
    }
    assert described["Spot"] == {
        "status": "ENABLED",
        "targetCapacity": 100,
        "minimumScalingStepSize": 1,
        "maximumScalingStepSize": 10000,
        "instanceWarmupPeriod": 300,
    }


def test_the_models_capacity_defaults_are_the_declarations() -> None:
    """Distribution and ManagedScaling keep defaults of their own (Group's default_factory;
    the model cannot import fleet/capacity.py, which builds them): they must be the declared
    ones, which the JSON Schema and docs/fleet.md show."""
    from nixecs.fleet import capacity
    from nixecs.fleet.model import Distribution, ManagedScaling

    declared = {
        key: node.default
        for key, node in capacity.GROUP_NODES.items()
        if key in ("on_demand_base", "on_demand_percent", "spot_allocation", "on_demand_allocation")
    }
    assert Distribution(**declared) == Distribution()  # type: ignore[arg-type]
    assert ManagedScaling().target_capacity == capacity.PROVIDER.keys["target_capacity"].default
    assert all(
        getattr(ManagedScaling(), key) is None and node.default is None
        for key, node in capacity.PROVIDER.keys.items()
        if key != "target_capacity"
    )


def _warnings(text: str) -> list[tuple[str, int]]:
    from nixecs.fleet.checks import check_text

    _, report = check_text(text, "fleet.yml", nix=False)
    return [(d.code, d.location.line) for d in report.sorted() if d.code == "W193"]


@pytest.mark.parametrize(
    ("od", "spot", "warned"),
    [
        # a spot group without an on-demand split launches no on-demand instance
        ("", line("on_demand_allocation: lowest-price"), "spot"),
        # an on-demand group of one instance type has no mixed instances policy
        (line("on_demand_allocation: lowest-price"), "", "od"),
        # used: a split on the spot group, several types on the on-demand group
        ("", line("on_demand_percent: 20") + line("on_demand_allocation: lowest-price"), None),
        ("", line("on_demand_base: 1") + line("on_demand_allocation: lowest-price"), None),
        # the default written out is not told
        ("", line("on_demand_allocation: prioritized"), None),
    ],
)
def test_an_on_demand_allocation_nothing_uses_is_w193(
    od: str, spot: str, warned: str | None
) -> None:
    text = fleet_text(od=od, spot=spot)
    if warned == "od":  # one instance type on the on-demand group
        text = text.replace(
            "instance_types: [m6i.large, m5.large]\n        capacity: {min: 1",
            "instance_types: [m6i.large]\n        capacity: {min: 1",
        )
    template_has = [
        r["Properties"].get("MixedInstancesPolicy", {}).get("InstancesDistribution", {})
        for r in resources(text).values()
        if r["Type"] == "AWS::AutoScaling::AutoScalingGroup"
    ]
    found = _warnings(text)
    if warned is None:
        assert found == []
        return
    assert found == [("W193", line_of(text, "on_demand_allocation"))]
    # … and indeed the template carries no on-demand allocation strategy for it
    assert not any(d.get("OnDemandAllocationStrategy") == "lowest-price" for d in template_has)
