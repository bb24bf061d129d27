"""`placement.strategy` judged against the groups of the service's capacity provider strategy
(W191): a spread on a custom attribute the fleet sets on some groups but not on a group the
service's tasks go to (nixecs.fleet.strategy cites ECS's placement strategies)."""

from __future__ import annotations

from capacity_fixtures import HEAD, line_of
from nixecs.diagnostics import FIXES
from nixecs.fleet.checks import check_text


def fleet_text(group: str, strategy: str) -> str:
    return (
        HEAD
        + f"""\
    groups:
      od:
        ami: ami-0123456789abcdef0
        instance_types: [m6i.large]
        capacity: {{min: 1, max: 4}}
        ecs: {{attributes: {{rack: a}}}}
      spot:
        ami: ami-0123456789abcdef0
        instance_types: [m6i.large]
        capacity: {{min: 0, max: 8}}
        spot: true
    services:
      web:
        group: {group}
        image: nginx:1.27
        memory: 512
        placement: {{strategy: ["{strategy}"]}}
"""
    )


def warnings(text: str) -> list[tuple[int, str, str]]:
    _, report = check_text(text, "fleet.yml", nix=False)
    return [(d.location.line, d.code, d.message) for d in report.sorted() if d.code == "W191"]


def test_a_spread_on_an_attribute_a_group_of_the_strategy_lacks_is_w191() -> None:
    text = fleet_text("[{group: od, base: 1}, {group: spot, weight: 1}]", "spread:attribute:rack")
    ((line, code, message),) = warnings(text)
    assert line == line_of(text, "placement:") and "'spot'" in message and "'od'" not in message
    assert FIXES[code]


def test_no_warning_where_every_group_sets_it_or_the_attribute_is_ecs_own() -> None:
    # the od group alone sets rack: a service on od only is spread by it
    assert warnings(fleet_text("od", "spread:attribute:rack")) == []
    # the agent's own attributes are on every instance
    both = "[{group: od, base: 1}, {group: spot, weight: 1}]"
    assert warnings(fleet_text(both, "spread:attribute:ecs.availability-zone")) == []
    # an attribute no group of the fleet sets is not the fleet file's to judge (set elsewhere)
    assert warnings(fleet_text(both, "spread:attribute:zone-of-my-own")) == []
    assert warnings(fleet_text(both, "spread:instanceId")) == []
