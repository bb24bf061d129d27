"""A cluster's tasks and their schedules (issue 20, item 4; nixecs.fleet.cluster_tasks): the task
definition and roles as a service's, an EventBridge Scheduler schedule on the group's
capacity provider with a role allowed exactly that, the expression grammar (E183), names apart
from the services' (E182), the JSON Schema agreeing, and cfn-lint."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import jsonschema
import pytest

from nixecs.cloudformation import build_stack
from nixecs.cloudformation.dump import dump_template
from nixecs.diagnostics import CODES, FIXES, InvalidInput
from nixecs.fleet import parse
from nixecs.fleet.checks import check_text
from nixecs.fleet.schema import json_schema
from nixecs.fleet.yaml12 import load
from stack_fixtures import assert_cfn_lint_clean
from test_services import HEAD

SERVICES = "web:\n  group: web\n  image: nginx:1.27\n  memory: 64\n"
TASKS = textwrap.dedent(
    """\
    tasks:
      report:
        group: web
        task_role:
          statements: [{actions: [s3:PutObject], resources: ["arn:aws:s3:::acme-reports/*"]}]
        containers:
          report: {image: "busybox:1.36", memory: 64, command: [sh, -c, "echo done"]}
        schedule: {expression: "cron(15 3 ? * MON-FRI *)", timezone: Europe/Paris}
      migrate:
        group: web
        image: busybox:1.36
        memory: 64
    """
)


def fleet_text(tasks: str = TASKS) -> str:
    return HEAD + textwrap.indent(SERVICES, "      ") + textwrap.indent(tasks, "    ")


def tasks_with(old: str, new: str) -> str:
    assert old in TASKS, old
    return fleet_text(TASKS.replace(old, new, 1))


def stack(text: str) -> dict:
    return build_stack(parse(text, "fleet.yml"), "prod", {"web": b"#nixecs-settings v1\n{}\n"})


def located(text: str) -> list[tuple[str, str, str]]:
    """The loader's findings, or the checks stage's (E182) when it loads."""
    with pytest.raises(InvalidInput) as caught:
        check_text(text, "fleet.yml", nix=False)
    lines = text.split("\n")
    return [
        (d.code, lines[d.location.line - 1][d.location.column - 1 :], d.message)
        for d in caught.value.report.sorted()
    ]


def test_tasks_get_task_definitions_and_no_service() -> None:
    resources = stack(fleet_text())["Resources"]
    families = sorted(
        r["Properties"]["Family"]
        for r in resources.values()
        if r["Type"] == "AWS::ECS::TaskDefinition"
    )
    assert families == ["nixecs-prod-migrate", "nixecs-prod-report", "nixecs-prod-web"]
    services = [r for r in resources.values() if r["Type"] == "AWS::ECS::Service"]
    assert [s["Properties"]["ServiceName"] for s in services] == ["web"]
    # one schedule: the unscheduled task (migrate) has none
    (schedule,) = [r for r in resources.values() if r["Type"] == "AWS::Scheduler::Schedule"]
    properties = schedule["Properties"]
    assert properties["ScheduleExpression"] == "cron(15 3 ? * MON-FRI *)"
    assert properties["ScheduleExpressionTimezone"] == "Europe/Paris"
    target = properties["Target"]
    assert target["Arn"] == {"Fn::GetAtt": ["Cluster", "Arn"]}
    ecs = target["EcsParameters"]
    assert ecs["TaskCount"] == 1 and ecs["CapacityProviderStrategy"][0]["CapacityProvider"][
        "Ref"
    ].endswith("CapacityProvider")
    role_id = target["RoleArn"]["Fn::GetAtt"][0]
    role = resources[role_id]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    statements = {s["Sid"]: s for s in role["Policies"][0]["PolicyDocument"]["Statement"]}
    assert statements["RunThisTask"]["Resource"] == {
        "Fn::Sub": "arn:${AWS::Partition}:ecs:${AWS::Region}:${AWS::AccountId}:task-definition/nixecs-prod-report:*"
    }
    passed = [r["Fn::GetAtt"][0] for r in statements["PassItsRoles"]["Resource"]]
    assert all(resources[p]["Type"] == "AWS::IAM::Role" for p in passed)
    assert {p.endswith("ExecutionRole") for p in passed} == {True, False}  # execution + task role
    assert statements["PassItsRoles"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}
    }


CASES = [
    ('"cron(15 3 ? * MON-FRI *)"', '"cron(15 3 * * MON-FRI *)"', "E183", "one of day-of-month"),
    ('"cron(15 3 ? * MON-FRI *)"', '"cron(15 3 ? * MON-FRI)"', "E183", "six fields"),
    ('"cron(15 3 ? * MON-FRI *)"', '"cron(61 3 ? * MON-FRI *)"', "E183", "minutes"),
    ('"cron(15 3 ? * MON-FRI *)"', '"cron(15 3 ? 13 * *)"', "E183", "month"),
    ('"cron(15 3 ? * MON-FRI *)"', '"rate(1 hours)"', "E183", "singular"),
    ('"cron(15 3 ? * MON-FRI *)"', '"rate(5 minute)"', "E183", "singular"),
    # not one of the three forms: the declared pattern's message (the JSON Schema refuses it too)
    ('"cron(15 3 ? * MON-FRI *)"', '"rate(0 minutes)"', "E183", "a schedule expression is at("),
    ('"cron(15 3 ? * MON-FRI *)"', '"at(2027-02-30T00:00:00)"', "E183", "not a date"),
    ('"cron(15 3 ? * MON-FRI *)"', '"every day"', "E183", "a schedule expression is at("),
    (
        '"cron(15 3 ? * MON-FRI *)"',
        '"at(２０２７-02-01T00:00:00)"',
        "E183",
        "a schedule expression is",
    ),
    ("timezone: Europe/Paris", "timezone: Mars/Olympus", "E107", "IANA"),
    ("timezone: Europe/Paris", "tz: Europe/Paris", "E101", "unknown key"),
    ("  migrate:\n", "  web:\n", "E182", "also a service"),
    ("  migrate:\n    group: web\n", "  migrate:\n    group: api\n", "E108", "no group"),
    ("    memory: 64\n", "    memory: 64\n    port: 80\n", "E101", "unknown key"),
]


@pytest.mark.parametrize(("old", "new", "code", "says"), CASES, ids=[c[1].strip() for c in CASES])
def test_each_check_is_located(old: str, new: str, code: str, says: str) -> None:
    found = located(tasks_with(old, new))
    assert [f[0] for f in found] == [code], found
    assert says in found[0][2], found
    assert code in CODES and code in FIXES


@pytest.mark.parametrize(
    "expression",
    ["rate(1 day)", "rate(15 minutes)", "at(2027-01-01T00:00:00)", "cron(0/15 * * * ? *)",
     "cron(0 18 ? * MON-FRI *)", "cron(0 8 1 * ? *)", "cron(0 10 L * ? 2027)", "cron(0 0 ? * 6#3 *)"],
)  # fmt: skip
def test_valid_expressions_load(expression: str) -> None:
    parse(tasks_with('"cron(15 3 ? * MON-FRI *)"', f'"{expression}"'), "fleet.yml")
    # and the JSON Schema takes them, in either form
    document = load(fleet_text().encode(), "fleet.yml").value
    report = document["clusters"]["prod"]["tasks"]["report"]  # type: ignore[index]
    for written in (expression, {"expression": expression}):
        report["schedule"] = written
        assert not list(jsonschema.Draft202012Validator(json_schema()).iter_errors(document))


@pytest.mark.parametrize(
    ("where", "value"),
    [(("schedule",), 5), (("schedule",), {"timezone": "UTC"}), (("schedule", "every"), 1), (("colour",), "x"), (("group",), 3),
     # none of the three forms, as the string or the mapping's expression (the declared pattern)
     (("schedule",), "every day"), (("schedule",), "rate(0 minutes)"), (("schedule", "expression"), "rate(0 hours)"),
     (("schedule", "expression"), "at(2027-01-01 00:00:00)"), (("schedule",), "cron(0 (1) * * ? *)"),
     (("schedule",), "at(\uff12027-01-01T00:00:00)")],
)  # fmt: skip
def test_the_json_schema_and_the_loader_both_refuse(where: tuple, value: object) -> None:
    document = load(fleet_text().encode(), "fleet.yml").value
    parent = document["clusters"]["prod"]["tasks"]["report"]  # type: ignore[index]
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = value
    assert list(jsonschema.Draft202012Validator(json_schema()).iter_errors(document))
    with pytest.raises(InvalidInput):
        parse(json.dumps(document), "fleet.json")


@pytest.mark.cfnlint
def test_cfn_lint_clean_in_the_fleets_region(tmp_path: Path) -> None:
    out = tmp_path / "prod.yaml"
    out.write_text(dump_template(stack(fleet_text())))
    assert_cfn_lint_clean([out], "eu-west-1")
