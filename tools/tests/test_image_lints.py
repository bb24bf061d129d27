"""Images without a tag or digest (W171) and the execution role's ECR pulls covering every
ECR repository a task names (issue 20, item 7; nixecs.fleet.image_lints)."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

import pytest

from nixecs.cloudformation import build_stack
from nixecs.diagnostics import CODES, FIXES
from nixecs.fleet import parse
from nixecs.fleet.image_lints import ecr_repositories, untagged
from nixecs.fleet.lints import lint_fleet
from test_services import HEAD

FACTS = json.loads((Path(__file__).parent / "facts" / "aws_managed_policies.json").read_text())

LOGS = textwrap.dedent(
    """\
    logs:
      group: web
      containers:
        app:
          image: {ecr: shop/app, tag: "1.4"}
          memory: 256
          log: {driver: awsfirelens, options: {Name: stdout}}
        router:
          image: 210987654321.dkr.ecr.eu-central-1.amazonaws.com/shared/fluent-bit:2.32.0
          memory: 64
          essential: false
          firelens: {type: fluentbit}
        sidecar:
          image: 123456789012.dkr.ecr.eu-west-1.amazonaws.com/shop/sidecar@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef
          memory: 64
          essential: false
        proxy:
          image: public.ecr.aws/nginx/nginx:1.27
          memory: 64
          essential: false
    """
)


def fleet_text(services: str = LOGS) -> str:
    return HEAD + textwrap.indent(services, "      ")


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("public.ecr.aws/aws-observability/aws-for-fluent-bit", True),
        ("nginx", True),
        ("registry.example.com:5000/app", True),  # a port, not a tag
        ("nginx:1.27", False),
        ("registry.example.com:5000/app:1", False),
        ("nginx@sha256:" + "0" * 64, False),
        ("nginx:latest", False),  # written on purpose: the author chose it
    ],
)
def test_untagged(reference: str, expected: bool) -> None:
    assert untagged(reference) is expected


def test_an_untagged_image_is_warned_at_its_value() -> None:
    text = fleet_text(
        LOGS.replace("fluent-bit:2.32.0", "fluent-bit")
        + "web:\n  group: web\n  image: nginx\n  memory: 64\n"
    )
    warnings = [d for d in lint_fleet(parse(text, "fleet.yml")) if d.code == "W171"]
    lines = text.split("\n")
    at = [lines[d.location.line - 1][d.location.column - 1 :] for d in warnings]
    assert at == [
        "210987654321.dkr.ecr.eu-central-1.amazonaws.com/shared/fluent-bit",
        "nginx",
    ]
    assert ":latest" in warnings[0].message
    assert "W171" in CODES and "W171" in FIXES


def test_tagged_and_pinned_images_are_not_warned() -> None:
    assert [d for d in lint_fleet(parse(fleet_text(), "fleet.yml")) if d.code == "W171"] == []


def _matches(pattern: str, value: str) -> bool:
    """IAM's wildcard matching (`*`, `?`), case-insensitive for actions."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE) is not None


def _allows(statements: list[dict], action: str, resource: str) -> bool:
    """An oracle of IAM's evaluation for Allow statements without conditions or Deny."""
    for statement in statements:
        actions = statement["Action"]
        resources = statement["Resource"]
        actions = [actions] if isinstance(actions, str) else actions
        resources = [resources] if isinstance(resources, (str, dict)) else resources
        if (
            statement["Effect"] == "Allow"
            and "Condition" not in statement
            and any(_matches(a, action) for a in actions)
            and any(isinstance(r, str) and _matches(r, resource) for r in resources)
        ):
            return True
    return False


def test_the_execution_role_pulls_from_every_ecr_repository_of_the_task() -> None:
    """Every repository: the own account's ({ecr:} and by host), and a sidecar's in another
    account and region (whose repository policy must also allow the role: docs/aws.md)."""
    fleet = parse(fleet_text(), "fleet.yml")
    service = fleet.clusters["prod"].services["logs"]
    repositories = ecr_repositories(service)
    assert repositories == [
        (None, None, "shop/app"),
        ("210987654321", "eu-central-1", "shared/fluent-bit"),
        ("123456789012", "eu-west-1", "shop/sidecar"),
    ]
    template = build_stack(fleet, "prod", {"web": b"#nixecs-settings v1\n{}\n"})
    (role,) = [
        r
        for name, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and name.endswith("ExecutionRole")
    ]
    statements: list[dict] = []
    for arn in role["Properties"]["ManagedPolicyArns"]:
        path = arn["Fn::Sub"].split(":policy/", 1)[1]
        statements += FACTS[path]["document"]["Statement"]
    for policy in role["Properties"].get("Policies", []):
        statements += policy["PolicyDocument"]["Statement"]
    # ECR's actions for a pull ("Private repository policies", ECR user guide: the image pull
    # actions; GetAuthorizationToken has no resource type).
    assert _allows(statements, "ecr:GetAuthorizationToken", "*")
    for account, region, repository in repositories:
        arn = f"arn:aws:ecr:{region or 'eu-west-1'}:{account or '123456789012'}:repository/{repository}"
        for action in (
            "ecr:BatchGetImage",
            "ecr:GetDownloadUrlForLayer",
            "ecr:BatchCheckLayerAvailability",
        ):
            assert _allows(statements, action, arn), (action, arn)
