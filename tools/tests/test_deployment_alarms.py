"""Deployment alarms (issue 21, item 4, first part): `deployment.alarms: {names, rollback}`
renders to the service's DeploymentConfiguration Alarms (nixecs.fleet.deploy_alarms cites
ECS's rule); odd values are located errors, the JSON Schema agrees, cfn-lint accepts it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from capacity_fixtures import GROUP_WEB, HEAD, assert_cfn_lint_clean, errors, line_of, load_text
from nixecs.cloudformation import build_stack
from nixecs.diagnostics import InvalidInput
from nixecs.fleet import parse
from nixecs.fleet.checks import check_text
from nixecs.fleet.schema import json_schema
from nixecs.fleet.yaml12 import load


def fleet_text(deployment: str) -> str:
    return (
        HEAD
        + GROUP_WEB
        + "    services:\n      web:\n        group: web\n        image: nginx:1.27\n"
        + f"        memory: 512\n        deployment: {deployment}\n"
    )


def configuration(text: str) -> dict[str, Any]:
    fleet = load_text(text)
    resources = build_stack(fleet, "prod", {"web": b"#x\n"})["Resources"]
    [service] = [r for r in resources.values() if r["Type"] == "AWS::ECS::Service"]
    return service["Properties"]["DeploymentConfiguration"]  # type: ignore[no-any-return]


def test_alarms_render_with_rollback_by_default() -> None:
    found = configuration(fleet_text("{alarms: {names: [web-5xx, web-latency]}}"))
    assert found["Alarms"] == {
        "AlarmNames": ["web-5xx", "web-latency"],
        "Enable": True,
        "Rollback": True,
    }
    assert found["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    off = configuration(fleet_text("{alarms: {names: [a], rollback: false}}"))
    assert off["Alarms"]["Rollback"] is False


def test_without_alarms_there_is_no_alarms_block() -> None:
    assert "Alarms" not in configuration(fleet_text("{minimum_healthy_percent: 50}"))


ODD = [
    ("{alarms: {names: []}}", "E107"),  # the declaration's min_items: "must not be empty"
    ("{alarms: {names: [a, a]}}", "E107"),
    ("{alarms: {names: ['a,b']}}", "E107"),
    ("{alarms: {names: [a], rollback: maybe}}", "E103"),
    ("{alarms: {names: [a], enable: true}}", "E101"),
    ("{alarms: {rollback: true}}", "E104"),
    ("{alarms: [a]}", "E103"),
]


@pytest.mark.parametrize(("deployment", "code"), ODD, ids=[d for d, _ in ODD])
def test_odd_values_are_located_errors(deployment: str, code: str) -> None:
    text = fleet_text(deployment)
    assert errors(text) == [(line_of(text, "deployment:"), code)]


# shapes only: an empty list (the schema has no minItems) and "names or a generated alarm"
# are the loader's rules
@pytest.mark.parametrize(
    "deployment",
    [d for d, code in ODD if (code in ("E101", "E103") or "a,b" in d) and "[]" not in d],
)
def test_the_json_schema_rejects_the_shapes_the_loader_rejects(deployment: str) -> None:
    validator = jsonschema.Draft202012Validator(json_schema())
    document = load(fleet_text(deployment).encode(), "fleet.yml").value
    assert list(validator.iter_errors(document)), deployment
    with pytest.raises(InvalidInput):
        parse(json.dumps(document), "fleet.json")


@pytest.mark.cfnlint
def test_cfn_lint_accepts_deployment_alarms(tmp_path: Path) -> None:
    fleet = load_text(fleet_text("{alarms: {names: [web-5xx], rollback: true}}"))
    assert_cfn_lint_clean(build_stack(fleet, "prod", {"web": b"#x\n"}), tmp_path)


ROUTED = (
    HEAD
    + "    load_balancer: {vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d]}\n"
    + GROUP_WEB
    + "    services:\n      web:\n        group: web\n        image: nginx:1.27\n"
    + "        memory: 512\n        port: 8080\n"
    + "        routing: {priority: 10, path_patterns: ['/*']}\n"
    + "        deployment: {alarms: {names: [mine], http_5xx: 10, unhealthy_hosts: 2, rollback: false}}\n"
)


def test_generated_alarms_watch_the_target_group_and_fail_the_deployment() -> None:
    fleet = load_text(ROUTED)
    resources = build_stack(fleet, "prod", {"web": b"#x\n"})["Resources"]
    alarms = {
        k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert sorted(alarms) == ["WebHttp5xxAlarm", "WebUnhealthyHostsAlarm"]
    five = alarms["WebHttp5xxAlarm"]
    assert (five["Namespace"], five["MetricName"], five["Statistic"], five["Threshold"]) == (
        "AWS/ApplicationELB", "HTTPCode_Target_5XX_Count", "Sum", 10,
    )  # fmt: skip
    assert five["Dimensions"] == [
        {"Name": "LoadBalancer", "Value": {"Fn::GetAtt": ["LoadBalancer", "LoadBalancerFullName"]}},
        {"Name": "TargetGroup", "Value": {"Fn::GetAtt": ["WebTargetGroup", "TargetGroupFullName"]}},
    ]
    assert five["TreatMissingData"] == "notBreaching"
    assert alarms["WebUnhealthyHostsAlarm"]["MetricName"] == "UnHealthyHostCount"
    [service] = [r for r in resources.values() if r["Type"] == "AWS::ECS::Service"]
    assert service["Properties"]["DeploymentConfiguration"]["Alarms"] == {
        "AlarmNames": ["mine", {"Ref": "WebHttp5xxAlarm"}, {"Ref": "WebUnhealthyHostsAlarm"}],
        "Enable": True,
        "Rollback": False,
    }


def test_generated_alarms_need_routing() -> None:
    text = fleet_text("{alarms: {http_5xx: 5}}")
    assert errors(text) == [(line_of(text, "deployment:"), "E112")]


@pytest.mark.cfnlint
def test_cfn_lint_accepts_generated_alarms(tmp_path: Path) -> None:
    assert_cfn_lint_clean(build_stack(load_text(ROUTED), "prod", {"web": b"#x\n"}), tmp_path)


TWO_ROUTES = ROUTED.replace(
    "        image: nginx:1.27\n        memory: 512\n        port: 8080\n",
    "        containers:\n          web: {image: nginx:1.27, memory: 512, ports: [8080, 9090]}\n",
).replace(
    "        routing: {priority: 10, path_patterns: ['/*']}\n",
    "        routing:\n"
    "          - {priority: 20, path_patterns: ['/admin/*'], port: 9090}\n"
    "          - {priority: 10, path_patterns: ['/*'], port: 8080}\n",
)


def test_every_target_group_of_several_routing_entries_is_watched() -> None:
    """With several `routing:` entries (a target group each, issue 21 item 5) the generated
    alarms watch each target group: unhealthy targets behind the second entry fail the
    deployment as those behind the first do. The first entry's keep their names."""
    assert TWO_ROUTES != ROUTED
    fleet = load_text(TWO_ROUTES)
    resources = build_stack(fleet, "prod", {"web": b"#x\n"})["Resources"]
    alarms = {
        k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"
    }
    assert sorted(alarms) == [
        "WebHttp5xxAlarm",
        "WebHttp5xxAlarm2",
        "WebUnhealthyHostsAlarm",
        "WebUnhealthyHostsAlarm2",
    ]
    watched = {
        alarms[k]["AlarmName"]: (alarms[k]["MetricName"], alarms[k]["Dimensions"][1]["Value"])
        for k in alarms
    }
    assert watched == {
        "nixecs-prod-web-deployment-5xx": (
            "HTTPCode_Target_5XX_Count",
            {"Fn::GetAtt": ["WebTargetGroup", "TargetGroupFullName"]},
        ),
        "nixecs-prod-web-deployment-5xx-2": (
            "HTTPCode_Target_5XX_Count",
            {"Fn::GetAtt": ["WebTargetGroup2", "TargetGroupFullName"]},
        ),
        "nixecs-prod-web-deployment-unhealthy": (
            "UnHealthyHostCount",
            {"Fn::GetAtt": ["WebTargetGroup", "TargetGroupFullName"]},
        ),
        "nixecs-prod-web-deployment-unhealthy-2": (
            "UnHealthyHostCount",
            {"Fn::GetAtt": ["WebTargetGroup2", "TargetGroupFullName"]},
        ),
    }
    assert "WebTargetGroup2" in resources
    [service] = [r for r in resources.values() if r["Type"] == "AWS::ECS::Service"]
    assert service["Properties"]["DeploymentConfiguration"]["Alarms"]["AlarmNames"] == [
        "mine",
        {"Ref": "WebHttp5xxAlarm"},
        {"Ref": "WebHttp5xxAlarm2"},
        {"Ref": "WebUnhealthyHostsAlarm"},
        {"Ref": "WebUnhealthyHostsAlarm2"},
    ]
    # deploy looks each of them up after a deploy (moto's CloudFormation skips alarms)
    from nixecs.aws.deploy import expected_scaling

    assert sorted(expected_scaling(fleet, "prod").alarms) == sorted(watched)


def test_a_step_policy_named_like_a_further_entrys_alarm_is_refused() -> None:
    step = (
        "        scaling:\n          min: 1\n          max: 4\n          step:\n"
        "            - name: deployment-unhealthy-2\n"
        "              alarm: {metric: CPUUtilization, namespace: AWS/ECS, statistic: Average,\n"
        "                      period: 60, evaluation_periods: 1, threshold: 80, comparison: '>='}\n"
        "              adjustment_type: ChangeInCapacity\n"
        "              steps: [{lower: 0, change: 1}]\n"
    )
    assert [code for _, code in errors(TWO_ROUTES + step) if code[0] == "E"] == ["E114"]
    check_text(ROUTED + step, "fleet.yml", nix=False)  # one target group: no -2 alarm


@pytest.mark.cfnlint
def test_cfn_lint_accepts_alarms_on_several_target_groups(tmp_path: Path) -> None:
    assert_cfn_lint_clean(build_stack(load_text(TWO_ROUTES), "prod", {"web": b"#x\n"}), tmp_path)
