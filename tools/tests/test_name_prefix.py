"""`name_prefix:` — two fleets' `prod` clusters side by side in one account and region: every
AWS name the templates, the userdata and the lifecycle commands use carries the prefix;
lengths are checked with it; the stack tag says which fleet owns the stack."""

from __future__ import annotations

import json
from pathlib import Path

from aws_fixtures import FLEET, write_fleet
from nixecs.fleet.checks import check_fleet_file
from nixecs.render import render_fleet
from test_cli_render import nixecs

PREFIXED = FLEET.replace("region: us-east-1\n", "region: us-east-1\nname_prefix: acme\n")


def test_every_aws_name_carries_the_prefix(tmp_path: Path) -> None:
    plain, _ = check_fleet_file(str(write_fleet(tmp_path, FLEET)))
    (tmp_path / "b").mkdir()
    model, _ = check_fleet_file(str(write_fleet(tmp_path / "b", PREFIXED)))
    assert list(model.clusters) == ["acme-prod"] and model.name_prefix == "acme"
    text = render_fleet(model).clusters["acme-prod"].stack_text
    for name in (
        "ClusterName: acme-prod",
        "nixecs-acme-prod-web",  # group, launch template, capacity provider
        "/nixecs/acme-prod/bananas",  # log group
        "nixecs-acme-prod-bananas",  # task family
        "nixecs-acme-prod-bananas-cpu-high",  # alarm / policy
    ):
        assert name in text, name
    # nothing of the unprefixed fleet's names is left: the two can live side by side
    other = render_fleet(plain).clusters["prod"].stack_text
    assert "nixecs-prod-web" in other and "nixecs-prod-web" not in text
    assert "ClusterName: prod\n" not in text


def test_the_host_gets_the_prefixed_cluster(tmp_path: Path) -> None:
    fleet = write_fleet(tmp_path, PREFIXED)
    result = nixecs("userdata", str(fleet), "acme-prod/web")
    assert result.returncode == 0, result.stderr.decode()
    first, body = result.stdout.decode().split("\n", 1)
    assert first == "#nixecs-settings v1" and json.loads(body)["cluster"] == "acme-prod"


def test_prefix_and_lengths_are_validated(tmp_path: Path) -> None:
    bad = write_fleet(tmp_path, PREFIXED.replace("name_prefix: acme", "name_prefix: Acme_1"))
    result = nixecs("validate", str(bad))
    assert result.returncode == 2 and f"{bad}:3:14: error[E107]" in result.stderr.decode()
    long_prefix = "p" * 16
    long_cluster = "c" * 60
    text = PREFIXED.replace("name_prefix: acme", f"name_prefix: {long_prefix}").replace(
        "  prod:\n", f"  {long_cluster}:\n"
    )
    too_long = write_fleet(tmp_path, text)
    result = nixecs("validate", str(too_long))
    err = result.stderr.decode()
    assert result.returncode == 2, err
    assert f"{too_long}:6:3: error[E105]: with name_prefix '{long_prefix}'" in err
    # a group whose launch template name would pass LaunchTemplateName's 128 characters
    group = "g" * 64
    text = (
        PREFIXED.replace("  prod:\n", f"  {'c' * 59}:\n")
        .replace("      web:\n", f"      {group}:\n")
        .replace("group: web", f"group: {group}")
    )
    result = nixecs("validate", str(write_fleet(tmp_path, text)))
    assert result.returncode == 2
    assert "characters, over the 128 a launch template name may have" in result.stderr.decode()
