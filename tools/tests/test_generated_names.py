"""Names nixecs generates against the names a user chooses (E114): a step policy named like a
generated deployment alarm shares its CloudWatch alarm name, and one named like a generated
target tracking policy shares its Application Auto Scaling policy name (unique per scalable
target: PutScalingPolicy with an existing name replaces that policy,
https://docs.aws.amazon.com/autoscaling/application/APIReference/API_PutScalingPolicy.html)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nixecs.diagnostics import FIXES, InvalidInput
from nixecs.fleet.checks import check_text

MAXIMAL = (Path(__file__).parent / "fleets" / "maximal.yml").read_text(encoding="utf-8")
# the web service of prod: target_tracking on cpu, step policy cpu-high, and the generated
# deployment alarms http_5xx and unhealthy_hosts
STEP = "            - name: cpu-high\n"


def e114(text: str) -> list[tuple[int, str]]:
    with pytest.raises(InvalidInput) as caught:
        check_text(text, "fleet.yml", nix=False)
    errors = [d for d in caught.value.report.sorted() if d.code.startswith("E")]
    found = [(d.location.line, d.message) for d in errors]
    assert {d.code for d in errors} == {"E114"}, found
    return found


@pytest.mark.parametrize(
    ("name", "what", "clashing"),
    [
        ("deployment-5xx", "CloudWatch alarm", "nixecs-acme-prod-web-deployment-5xx"),
        ("deployment-unhealthy", "CloudWatch alarm", "nixecs-acme-prod-web-deployment-unhealthy"),
        (
            "target-tracking",
            "Application Auto Scaling policy",
            "nixecs-acme-prod-web-target-tracking",
        ),
    ],
)
def test_a_step_policy_named_like_a_generated_name_is_refused(
    name: str, what: str, clashing: str
) -> None:
    assert STEP in MAXIMAL
    text = MAXIMAL.replace(STEP, f"            - name: {name}\n")
    ((line, message),) = e114(text)
    # located at the name the user chose, not at the generated one
    assert line == text.splitlines().index(f"            - name: {name}") + 1
    assert message.startswith(f"{what} name {clashing!r}")
    assert FIXES["E114"]


def test_the_same_step_name_in_another_service_is_no_clash() -> None:
    """Policy names are per scalable target: `target-tracking` of one service does not clash
    with another service's generated one (nor would it in AWS)."""
    check_text(MAXIMAL, "fleet.yml", nix=False)  # cpu-high: no clash
    text = MAXIMAL.replace(STEP, "            - name: target-tracking-2\n")
    check_text(text, "fleet.yml", nix=False)  # web has one tracking policy: no -2


def test_deploy_looks_up_the_generated_deployment_alarms() -> None:
    """moto's CloudFormation skips AWS::CloudWatch::Alarm (DESIGN §8): after a deploy,
    `deploy` looks the generated deployment alarms up through CloudWatch, as it does the step
    policies' alarms, and warns about those it cannot find (the demo's transcript in
    docs/aws.md shows the warning on the emulator)."""
    from conftest import EXAMPLES
    from nixecs.aws.deploy import expected_scaling
    from nixecs.fleet import load_fleet

    fleet = load_fleet(EXAMPLES / "fleet.yml")
    alarms = expected_scaling(fleet, "prod").alarms
    assert {
        "nixecs-prod-bananas-deployment-5xx",
        "nixecs-prod-bananas-deployment-unhealthy",
    } <= set(alarms)
    assert "nixecs-prod-reports-cpu-high" in alarms
