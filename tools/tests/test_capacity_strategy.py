"""Capacity provider strategies across groups (issue 21, item 1): the `group:` list, the checks
AWS makes (E190; nixecs.fleet.strategy cites them), the task fitting every group (E125),
placement constraints satisfiable in each group (E191), the template and cfn-lint.

moto does not model strategies: its CloudFormation drops a service's CapacityProviderStrategy,
its CreateService keeps capacityProviderStrategy without checking it and DescribeServices does
not return it (moto/ecs/models.py, Service). The AWS rules are therefore tested here against
their documented text (the oracle), cited in nixecs.fleet.strategy."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from capacity_fixtures import HEAD, assert_cfn_lint_clean, checked, errors, line_of, load_text
from nixecs.cloudformation import build_stack
from nixecs.diagnostics import InvalidInput
from nixecs.fleet import aws_rules, parse
from nixecs.fleet.schema import json_schema
from nixecs.fleet.yaml12 import load


def fleet_text(group: str = "[{group: od, base: 2, weight: 1}, {group: spot, weight: 3}]",
               extra: str = "", spot_types: str = "[m6i.large, m5.large]") -> str:  # fmt: skip
    return (
        HEAD
        + f"""\
    groups:
      od:
        ami: ami-0123456789abcdef0
        instance_types: [m6i.large]
        capacity: {{min: 1, max: 4}}
        ecs: {{attributes: {{tier: web}}}}
      spot:
        ami: ami-0123456789abcdef0
        instance_types: {spot_types}
        capacity: {{min: 0, max: 8}}
        spot: true
        ecs: {{attributes: {{tier: batch}}}}
    services:
      web:
        group: {group}
        image: nginx:1.27
        memory: 512
{extra}"""
    )


def template(text: str) -> dict[str, Any]:
    fleet = load_text(text)
    return build_stack(fleet, "prod", {name: b"#x\n" for name in fleet.clusters["prod"].groups})  # type: ignore[no-any-return]


def strategy_of(text: str) -> list[dict[str, Any]]:
    resources = template(text)["Resources"]
    [service] = [r for r in resources.values() if r["Type"] == "AWS::ECS::Service"]
    return service["Properties"]["CapacityProviderStrategy"]  # type: ignore[no-any-return]


# -- the model and the template ----------------------------------------------------------------


def test_a_strategy_across_two_groups_renders_base_and_weight() -> None:
    service = load_text(fleet_text()).clusters["prod"].services["web"]
    assert service.groups == ("od", "spot") and service.group == "od"
    assert [(i.group, i.base, i.weight) for i in service.strategy] == [("od", 2, 1), ("spot", 0, 3)]
    rendered = strategy_of(fleet_text())
    assert [(i["CapacityProvider"]["Ref"], i["Base"], i["Weight"]) for i in rendered] == [
        ("OdCapacityProvider", 2, 1),
        ("SpotCapacityProvider", 0, 3),
    ]


def test_one_name_is_the_one_item_strategy_as_before() -> None:
    rendered = strategy_of(fleet_text(group="spot"))
    assert rendered == [
        {"CapacityProvider": {"Ref": "SpotCapacityProvider"}, "Base": 0, "Weight": 1}
    ]


def test_weight_defaults_to_zero_as_in_aws() -> None:
    # CapacityProviderStrategyItem: "If no value is specified, the default value of 0 is used."
    service = load_text(fleet_text(group="[{group: od, base: 1}, {group: spot, weight: 1}]"))
    assert [i.weight for i in service.clusters["prod"].services["web"].strategy] == [0, 1]


# -- AWS's rules (moto enforces none of them: these are the oracle) ----------------------------


@pytest.mark.parametrize(
    ("group", "needle", "code"),
    [
        # "Only one capacity provider in a capacity provider strategy can have a base defined"
        ("[{group: od, base: 2, weight: 1}, {group: spot, base: 1, weight: 3}]", "base: 1", "E190"),
        # several providers, every weight 0: CreateService fails (developer guide)
        ("[{group: od, base: 2}, {group: spot}]", "group: [", "E190"),
        ("[{group: od, weight: 1}, {group: od, weight: 2}]", "group: [", "E190"),
        ("[]", "group: [", "E190"),
        ("[{group: od, base: 100001, weight: 1}]", "group: [", "E107"),
        ("[{group: od, weight: 1001}]", "group: [", "E107"),
        ("[{group: od, weight: -1}]", "group: [", "E107"),
        ("[{group: od, weight: 1, colour: red}]", "group: [", "E101"),
        ("[{weight: 1}]", "group: [", "E104"),
        ("[{group: nope, weight: 1}]", "group: [", "E108"),
        ("[od]", "group: [", "E103"),
        ("nope", "group: nope", "E108"),
        ("{od: 1}", "group: {", "E103"),
    ],
)
def test_odd_strategies_are_located_errors(group: str, needle: str, code: str) -> None:
    text = fleet_text(group=group)
    found = errors(text)
    assert [c for _, c in found] == [code], found
    assert found[0][0] == line_of(text, needle)


def test_more_than_twenty_groups_is_e190() -> None:
    # CreateService: "A capacity provider strategy can contain a maximum of 20 capacity providers"
    items = ", ".join(["{group: od, weight: 1}"] * 21)
    assert [c for _, c in errors(fleet_text(group=f"[{items}]"))] == ["E190"]


def test_a_duplicate_base_names_the_group_that_has_it() -> None:
    text = fleet_text(group="[{group: od, base: 2, weight: 1}, {group: spot, base: 1, weight: 3}]")
    with pytest.raises(InvalidInput) as caught:
        parse(text, "fleet.yml")
    assert "'od' already has 2" in str(caught.value.report.sorted()[0].message)


@pytest.mark.parametrize(
    "group",
    [
        "[{group: od, base: 100001, weight: 1}]",
        "[{group: od, weight: 1001}]",
        "[{group: od, weight: 1, colour: red}]",
        "[{weight: 1}]",
        "[od]",
        "{od: 1}",
    ],
)
def test_the_json_schema_rejects_the_shapes_the_loader_rejects(group: str) -> None:
    text = fleet_text(group=group)
    document = load(text.encode(), "fleet.yml").value
    validator = jsonschema.Draft202012Validator(json_schema())
    assert list(validator.iter_errors(document)), f"{group} accepted by the JSON Schema"
    with pytest.raises(InvalidInput):
        parse(json.dumps(document), "fleet.json")
    good = load(fleet_text().encode(), "fleet.yml").value
    assert list(validator.iter_errors(good)) == []


# -- every group of the strategy ---------------------------------------------------------------


def test_the_task_must_fit_every_group_e125_per_group() -> None:
    text = fleet_text(spot_types="[t3.micro]").replace("memory: 512", "memory: 4096")
    found = aws_rules.check_fleet(load_text(text))
    assert [d.code for d in found] == ["E125"]
    assert "group 'spot'" in found[0].message and "t3.micro" in found[0].message
    assert (
        aws_rules.check_fleet(load_text(fleet_text().replace("memory: 512", "memory: 4096"))) == []
    )


@pytest.mark.parametrize(
    ("constraint", "refused"),
    [
        ("memberOf:attribute:ecs.instance-type == m6i.large", []),  # both groups have it
        ("memberOf:attribute:ecs.instance-type == m5.large", ["od"]),
        ("memberOf:attribute:ecs.instance-type in [m5.large, c6i.large]", ["od"]),
        ("memberOf:attribute:ecs.instance-type =~ m5.*", ["od"]),
        ("memberOf:attribute:tier == web", ["spot"]),
        ("memberOf:attribute:tier != web", ["od"]),
        ("memberOf:attribute:tier exists and attribute:tier == batch", ["od"]),
        # not judged: an attribute no group sets, an `or`, another subject
        ("memberOf:attribute:rack == a", []),
        ("memberOf:attribute:tier == nope or attribute:tier == web", []),
        ("memberOf:task:group == service:other", []),
    ],
)
def test_placement_constraints_must_be_satisfiable_in_each_group(
    constraint: str, refused: list[str]
) -> None:
    text = fleet_text(extra=f"        placement: {{constraints: ['{constraint}']}}\n")
    if not refused:
        checked(text)
        return
    with pytest.raises(InvalidInput) as caught:
        checked(text)
    report = caught.value.report.sorted()
    assert [d.code for d in report] == ["E191"] * len(refused)
    assert [d.location.line for d in report] == [line_of(text, "placement:")] * len(refused)
    for diagnostic, group in zip(report, refused, strict=True):
        assert f"group {group!r}" in diagnostic.message


def test_a_single_group_is_judged_too() -> None:
    text = fleet_text(
        group="od", extra="        placement: {constraints: ['memberOf:attribute:tier == batch']}\n"
    )
    assert [c for _, c in errors(text)] == ["E191"]


# -- cfn-lint -------------------------------------------------------------------------


@pytest.mark.cfnlint
def test_cfn_lint_accepts_the_strategy(tmp_path: Path) -> None:
    assert_cfn_lint_clean(template(fleet_text()), tmp_path)


def test_secrets_across_groups_of_different_keys_is_e192() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"
    text = fleet_text(extra="        secrets: {TOKEN: /prod/token}\n").replace(
        "        spot: true\n", f"        spot: true\n        kms_key: {key}\n"
    )
    found = errors(text)
    assert found == [(line_of(text, "group: ["), "E192")]
    # one key for both (none: aws/ssm), or no secrets: fine
    checked(fleet_text(extra="        secrets: {TOKEN: /prod/token}\n"))
    checked(text.replace("        secrets: {TOKEN: /prod/token}\n", ""))


# -- a fleet edit: the strategy of a deployed service changes -----------------------------------


def ecs_refuses_update(old: dict[str, Any], new: dict[str, Any]) -> str | None:
    """The oracle of ECS's UpdateService rule, which moto does not enforce: "When switching
    from launch type to capacity provider strategy on an existing service, or making a change
    to a capacity provider strategy on a service that is already using one, you must force a
    new deployment" (InvalidParameterException; CloudFormation rolls the stack update back,
    aws/aws-cdk#34631). CloudFormation asks for the forced deployment when the template's
    ForceNewDeployment is enabled and its nonce changed (AWS::ECS::Service
    ForceNewDeployment: "When you change the ForceNewDeploymentNonce value in your template,
    it signals ECS to start a new deployment")."""
    if old.get("CapacityProviderStrategy") == new.get("CapacityProviderStrategy"):
        return None
    before, after = old.get("ForceNewDeployment") or {}, new.get("ForceNewDeployment") or {}
    if after.get("EnableForceNewDeployment") is True and after.get(
        "ForceNewDeploymentNonce"
    ) != before.get("ForceNewDeploymentNonce"):
        return None
    return "InvalidParameterException: you must force a new deployment"


def service_properties(text: str) -> dict[str, Any]:
    resources = template(text)["Resources"]
    [service] = [r for r in resources.values() if r["Type"] == "AWS::ECS::Service"]
    return service["Properties"]  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("od", "[{group: od, base: 1}, {group: spot, weight: 1}]"),  # one group → a strategy
        ("od", "spot"),  # another group
        ("[{group: od, base: 2, weight: 1}, {group: spot, weight: 3}]",
         "[{group: od, base: 1, weight: 1}, {group: spot, weight: 3}]"),  # a base
        ("[{group: od, weight: 1}, {group: spot, weight: 3}]", "od"),  # back to one group
    ],
)  # fmt: skip
def test_a_changed_strategy_forces_a_new_deployment(before: str, after: str) -> None:
    old, new = service_properties(fleet_text(before)), service_properties(fleet_text(after))
    assert old["CapacityProviderStrategy"] != new["CapacityProviderStrategy"]
    assert ecs_refuses_update(old, new) is None
    # the oracle refuses the same edit without the forced deployment (as ECS does)
    bare = {k: v for k, v in new.items() if k != "ForceNewDeployment"}
    assert ecs_refuses_update(old, bare) is not None


def test_the_nonce_moves_only_with_the_strategy() -> None:
    """Another edit of the service leaves the nonce alone (no new property change of its
    own); the same strategy written as one name or as its one-item list is the same."""
    base = service_properties(fleet_text("od"))
    bigger = service_properties(fleet_text("od").replace("memory: 512", "memory: 1024"))
    listed = service_properties(fleet_text("[{group: od, weight: 1}]"))
    assert (
        base["ForceNewDeployment"] == bigger["ForceNewDeployment"] == listed["ForceNewDeployment"]
    )
    assert base["ForceNewDeployment"]["EnableForceNewDeployment"] is True


def test_a_daemon_has_no_strategy_and_no_forced_deployment() -> None:
    text = fleet_text("od", extra="        scheduling: daemon\n")
    properties = service_properties(text)
    assert "CapacityProviderStrategy" not in properties
    assert "ForceNewDeployment" not in properties
