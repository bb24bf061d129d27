"""Daemon services (issue 20, item 3; nixecs.fleet.daemon): one task on every instance of the
group, through the attribute every host registers; the checks (E178); the JSON Schema
agreeing; cfn-lint; the moto server; and destroy, which must not give a daemon a desired
count."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from aws_fixtures import moto_client, run_cli
from nixecs import settings
from nixecs.aws import destroy
from nixecs.aws.session import Session
from nixecs.cloudformation import build_stack
from nixecs.cloudformation.dump import dump_template
from nixecs.diagnostics import CODES, FIXES, InvalidInput
from nixecs.fleet import parse
from nixecs.fleet.checks import check_text
from nixecs.fleet.schema import json_schema
from nixecs.fleet.yaml12 import load
from nixecs.userdata import render_text
from stack_fixtures import assert_cfn_lint_clean, deploy_on_moto
from test_services import HEAD

AGENT = textwrap.dedent(
    """\
    node-exporter:
      group: web
      scheduling: daemon
      network_mode: host
      image: quay.io/prometheus/node-exporter:v1.8.2
      memory: 64
      port: 9100
      placement: {constraints: ["memberOf:attribute:ecs.instance-type =~ m6i.*"]}
    """
)


def fleet_text(services: str = AGENT) -> str:
    return HEAD + textwrap.indent(services, "      ")


def agent_with(old: str, new: str) -> str:
    assert old in AGENT, old
    return fleet_text(AGENT.replace(old, new, 1))


def ecs_service(text: str) -> dict:
    template = build_stack(parse(text, "fleet.yml"), "prod", {"web": b"#nixecs-settings v1\n{}\n"})
    (found,) = [r for r in template["Resources"].values() if r["Type"] == "AWS::ECS::Service"]
    return found["Properties"]


def test_a_daemon_runs_on_its_groups_instances_only() -> None:
    properties = ecs_service(fleet_text())
    assert properties["SchedulingStrategy"] == "DAEMON"
    assert properties["LaunchType"] == "EC2"
    for absent in ("DesiredCount", "CapacityProviderStrategy", "PlacementStrategies"):
        assert absent not in properties, absent
    assert properties["PlacementConstraints"] == [
        {"Type": "memberOf", "Expression": "attribute:nixecs.group == web"},
        {"Type": "memberOf", "Expression": "attribute:ecs.instance-type =~ m6i.*"},
    ]
    # ECS's daemon defaults: replace the task on each instance in turn.
    deployment = properties["DeploymentConfiguration"]
    assert (deployment["MinimumHealthyPercent"], deployment["MaximumPercent"]) == (0, 100)


def test_a_daemon_deployment_without_maximum_percent_gets_100() -> None:
    """A daemon's `deployment:` that leaves maximum_percent out renders 100 (ECS's default for
    daemons), not a replica's default, and passes the checks stage (no E178)."""
    text = agent_with(
        "  scheduling: daemon\n",
        "  scheduling: daemon\n  deployment: {minimum_healthy_percent: 50}\n",
    )
    check_text(text, "fleet.yml", nix=False)
    deployment = ecs_service(text)["DeploymentConfiguration"]
    assert deployment["MaximumPercent"] == 100 and deployment["MinimumHealthyPercent"] == 50


def test_a_replica_service_is_unchanged() -> None:
    properties = ecs_service(agent_with("scheduling: daemon", "scheduling: replica"))
    assert "SchedulingStrategy" not in properties and "LaunchType" not in properties
    assert properties["DesiredCount"] == 1 and properties["CapacityProviderStrategy"]


def test_every_host_registers_its_group_attribute() -> None:
    """The settings userdata's agent environment and the nix userdata both carry nixecs.group,
    over an attribute of that name written by hand."""
    fleet = parse(
        fleet_text().replace(
            "capacity: {min: 1, max: 3}",
            "capacity: {min: 1, max: 3}\n        ecs: {attributes: {tier: front, nixecs.group: other}}",
        ),
        "fleet.yml",
    )
    group = fleet.clusters["prod"].groups["web"]
    env = settings.agent_environment(fleet.host_settings(group))
    assert json.loads(env["ECS_INSTANCE_ATTRIBUTES"]) == {"nixecs.group": "web", "tier": "front"}
    nix = render_text(fleet, group, "nix")
    assert '"nixecs.group" = "web";' in nix and '"other"' not in nix


CASES = [
    ("  scheduling: daemon\n", "  scheduling: daemon\n  desired: 2\n", "E178", "2"),
    (
        "  scheduling: daemon\n",
        "  scheduling: daemon\n  scaling: {min: 1, max: 2}\n",
        "E178",
        "{min",
    ),
    (
        "placement: {constraints:",
        "placement: {strategy: [binpack:memory], constraints:",
        "E178",
        "[binpack",
    ),
    (
        "  scheduling: daemon\n",
        "  scheduling: daemon\n  deployment: {maximum_percent: 200}\n",
        "E178",
        "200",
    ),
    ("scheduling: daemon", "scheduling: everywhere", "E107", "everywhere"),
    ("scheduling: daemon", "scheduling: 3", "E103", "3"),
]


@pytest.mark.parametrize(("old", "new", "code", "where"), CASES, ids=[c[1].strip() for c in CASES])
def test_each_check_is_located(old: str, new: str, code: str, where: str) -> None:
    with pytest.raises(InvalidInput) as caught:  # the loader's findings, or the checks stage's
        check_text(agent_with(old, new), "fleet.yml", nix=False)
    lines = agent_with(old, new).split("\n")
    found = [
        (d.code, lines[d.location.line - 1][d.location.column - 1 :])
        for d in caught.value.report.sorted()
    ]
    assert [f[0] for f in found] == [code], found
    assert found[0][1].startswith(where), found
    assert code in CODES and code in FIXES


@pytest.mark.parametrize("value", ["everywhere", 3, True, None])
def test_the_json_schema_and_the_loader_both_refuse(value: object) -> None:
    document = load(fleet_text().encode(), "fleet.yml").value
    document["clusters"]["prod"]["services"]["node-exporter"]["scheduling"] = value  # type: ignore[index]
    assert list(jsonschema.Draft202012Validator(json_schema()).iter_errors(document))
    with pytest.raises(InvalidInput):
        parse(json.dumps(document), "fleet.json")


@pytest.mark.cfnlint
def test_cfn_lint_clean_in_the_fleets_region(tmp_path: Path) -> None:
    template = build_stack(
        parse(fleet_text(), "fleet.yml"), "prod", {"web": b"#nixecs-settings v1\n{}\n"}
    )
    out = tmp_path / "prod.yaml"
    out.write_text(dump_template(template))
    assert_cfn_lint_clean([out], "eu-west-1")


@pytest.mark.moto
def test_a_daemon_deploys(moto, tmp_path: Path, capsys) -> None:
    """moto's CloudFormation creates the service (it drops SchedulingStrategy: moto 5.2.6
    moto/ecs/models.py Service.create_from_cloudformation_json passes on only the count and
    task definition), so the strategy itself is asserted in the template above."""
    deploy_on_moto(fleet_text(), moto.url, tmp_path, capsys)
    ecs = moto_client(moto.url, "ecs")
    (service,) = ecs.describe_services(cluster="prod", services=["node-exporter"])["services"]
    assert service["status"] == "ACTIVE"
    # status tells a daemon (made through the ECS API, which keeps the strategy) apart.
    ecs.create_service(
        cluster="prod",
        serviceName="via-api",
        taskDefinition=service["taskDefinition"],
        schedulingStrategy="DAEMON",
    )
    argv = ["--endpoint-url", moto.url, "--region", "us-east-1", "--output", "json", "status"]
    (cluster,) = json.loads(run_cli(capsys, argv).out)["clusters"]
    kinds = {s["name"]: s["scheduling"] for s in cluster["services"]}
    assert kinds == {"node-exporter": "replica", "via-api": "daemon"}
    table = run_cli(capsys, [*argv[:4], "status"]).out
    services = table.split("\nservices\n")[1].split("\nimages\n")[0]
    rows = {line.split()[0]: line for line in services.splitlines()[2:] if line.strip()}
    assert "daemon" in rows["via-api"] and "daemon" not in rows["node-exporter"], table


class DaemonAwareEcs:
    """The ECS calls destroy makes, with AWS's rule moto does not enforce: UpdateService with
    a desired count on a DAEMON service fails ("The daemon scheduling strategy does not support
    a desired count for services", InvalidParameterException)."""

    def __init__(self, services: list[dict[str, Any]]) -> None:
        self.services = services
        self.deleted: list[str] = []

    def get_paginator(self, name: str) -> Any:
        pages = {
            "list_services": [{"serviceArns": [s["serviceName"] for s in self.services]}],
            "list_tasks": [{"taskArns": []}],
        }[name]
        return type("P", (), {"paginate": lambda _self, **_: pages})()

    def describe_services(self, cluster: str, services: list[str]) -> dict[str, Any]:
        return {"services": [s for s in self.services if s["serviceName"] in services]}

    def update_service(self, cluster: str, service: str, desiredCount: int) -> None:
        (found,) = [s for s in self.services if s["serviceName"] == service]
        if found.get("schedulingStrategy") == "DAEMON":
            raise AssertionError("InvalidParameterException: daemon services take no desired count")

    def delete_service(self, cluster: str, service: str, force: bool) -> None:
        self.deleted.append(service)


def test_destroy_deletes_a_daemon_without_a_desired_count(monkeypatch: pytest.MonkeyPatch) -> None:
    ecs = DaemonAwareEcs(
        [
            {
                "serviceName": "agent",
                "status": "ACTIVE",
                "desiredCount": 3,
                "schedulingStrategy": "DAEMON",
            },
            {
                "serviceName": "web",
                "status": "ACTIVE",
                "desiredCount": 2,
                "schedulingStrategy": "REPLICA",
            },
        ]
    )
    session = Session(region="us-east-1")
    monkeypatch.setattr(session, "client", lambda name: ecs)
    said: list[str] = []
    assert destroy._services(session, "prod", said.append, 0.0, 5.0) == 2
    assert ecs.deleted == ["agent", "web"]
