"""`image:` in the fleet file: a plain reference, or {ecr, tag | digest} (fleet/images.py),
and what the task definition carries for each."""

from __future__ import annotations

from pathlib import Path

import pytest

from aws_fixtures import FLEET, run_cli, write_fleet
from nixecs.cloudformation.services import image_value
from nixecs.fleet.images import ImageRef, parse_image
from nixecs.fleet.loader import load_fleet

DIGEST = "sha256:" + "ab" * 32
PLAIN = "image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/bananas:1.0"


def fleet_with(tmp_path: Path, image: str) -> Path:
    assert PLAIN in FLEET
    return write_fleet(tmp_path, FLEET.replace(PLAIN, image, 1))


def test_the_three_forms_parse() -> None:
    issues: list = []
    assert parse_image("nginx:1.27", ("image",), issues) == ImageRef(reference="nginx:1.27")
    assert parse_image({"ecr": "team/bananas", "tag": "1.0"}, ("image",), issues) == ImageRef(
        ecr="team/bananas", tag="1.0"
    )
    assert parse_image({"ecr": "bananas", "digest": DIGEST}, ("image",), issues) == ImageRef(
        ecr="bananas", digest=DIGEST
    )
    assert issues == []


@pytest.mark.parametrize(
    ("image", "line_col", "message"),
    [
        ('image: {ecr: Bananas, tag: "1.0"}', "17:22", "an ECR repository name"),
        ("image: {ecr: bananas, tag: -x}", "17:36", "an image tag"),
        ("image: {ecr: bananas, digest: sha256:abc}", "17:39", "a digest: sha256:"),
        (f'image: {{ecr: bananas, tag: "1.0", digest: "{DIGEST}"}}', "17:16", "not both"),
        ("image: {ecr: bananas}", "17:16", "needs a tag or a digest"),
        ("image: {ecr: bananas, tags: x}", "17:31", "tags"),
        ("image: [bananas]", "17:16", "expected an image reference or a mapping"),
    ],
)
def test_bad_image_nodes_are_located(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], image: str, line_col: str, message: str
) -> None:
    fleet = fleet_with(tmp_path, image)
    result = run_cli(capsys, ["validate", str(fleet)])
    assert result.code == 2, result.err
    assert f"{fleet}:{line_col}: error[" in result.err, result.err
    assert message in result.err and "Traceback" not in result.err


def test_an_ecr_image_renders_under_the_stacks_account_and_region(tmp_path: Path) -> None:
    model = load_fleet(fleet_with(tmp_path, 'image: {ecr: bananas, tag: "1.0"}'))
    image = model.clusters["prod"].services["bananas"].image
    suffix = "${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/"
    assert image_value(image) == {"Fn::Sub": suffix + "bananas:1.0"}
    assert image_value(image.pinned(DIGEST)) == {"Fn::Sub": f"{suffix}bananas@{DIGEST}"}
    # plain references are kept as written
    plain = model.clusters["prod"].services["apples"].image
    assert image_value(plain) == "123456789012.dkr.ecr.us-east-1.amazonaws.com/apples:1.0"


def test_render_writes_the_ecr_image_into_the_task_definition(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fleet = fleet_with(tmp_path, f"image: {{ecr: bananas, digest: '{DIGEST}'}}")
    out = tmp_path / "out"
    result = run_cli(capsys, ["render", str(fleet), "--out", str(out)])
    assert result.code == 0, result.err
    stack = (out / "prod" / "stack.yaml").read_text()
    expected = "Fn::Sub: ${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}/bananas@"
    assert expected + DIGEST in stack


SIDECAR_FLEET = """\
version: 1
region: us-east-1
flake: github:acme/infra
clusters:
  prod:
    subnets: [subnet-0a1b2c3d]
    security_groups: [sg-0a1b2c3d]
    groups:
      web:
        ami: ami-0123456789abcdef0
        instance_types: [m6i.large]
        capacity: {min: 1, max: 4}
    services:
      shop:
        group: web
        containers:
          app: {image: {ecr: shop, tag: "2.1"}, memory: 256, ports: [8080]}
          proxy: {image: {ecr: envoy, tag: "1.31"}, memory: 128}
"""


def test_every_containers_ecr_image_is_pinned_and_located(tmp_path: Path) -> None:
    """Resolution and pinning cover sidecars, not only a service's first container; a
    missing tag is reported at the container's own `image:`."""
    from nixecs.aws.images import Problem, Resolution, pin_fleet
    from nixecs.cloudformation import build_stack
    from nixecs.diagnostics import InvalidInput

    fleet = load_fleet(write_fleet(tmp_path, SIDECAR_FLEET))
    shop, envoy = "sha256:" + "1" * 64, "sha256:" + "2" * 64
    pinned = pin_fleet(fleet, Resolution({("shop", "2.1"): shop, ("envoy", "1.31"): envoy}))
    template = build_stack(pinned, "prod", {"web": b"#x\n"})
    (definition,) = (
        r for r in template["Resources"].values() if r["Type"] == "AWS::ECS::TaskDefinition"
    )
    images = {c["Name"]: str(c["Image"]) for c in definition["Properties"]["ContainerDefinitions"]}
    assert f"/shop@{shop}" in images["app"] and f"/envoy@{envoy}" in images["proxy"]

    missing = Resolution(
        {("shop", "2.1"): shop},
        [
            Problem(
                ImageRef(ecr="envoy", tag="1.31"),
                "E136",
                "tag '1.31' is not in ECR repository 'envoy'",
            )
        ],
    )
    with pytest.raises(InvalidInput) as caught:
        pin_fleet(fleet, missing)
    (found,) = caught.value.report.sorted()
    assert (found.code, found.location.line) == ("E136", 18)  # the proxy's image, not app's
