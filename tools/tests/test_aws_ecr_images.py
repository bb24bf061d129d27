"""ECR images by tag are pinned to digests at deploy (aws/images.py), against the moto server:
the task definition ECS receives names `ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO@sha256:…`,
a tag pushed again changes nothing until the next deploy, a missing tag, digest or
repository is a located error (E136-E138) before any change set, and `status` shows the
digest each service runs."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest

from aws_fixtures import FLEET, moto_client, no_preflight, run_cli, small_template, write_fleet
from nixecs.aws import deploy as deploy_module
from nixecs.aws.images import resolve
from nixecs.aws.session import Session
from nixecs.cloudformation.services import image_value
from nixecs.fleet.images import ImageRef

PLAIN = "image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/bananas:1.0"
REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"  # moto's default account


def manifest(marker: str) -> str:
    """A distinct image manifest per marker. ECR's digest is the manifest's SHA-256; moto's
    is over the layer digests (moto/ecr/models.py _create_digest), so the marker is a layer."""
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": {
                "mediaType": "application/vnd.docker.container.image.v1+json",
                "size": 7,
                "digest": "sha256:" + marker * 64,
            },
            "layers": [
                {
                    "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "size": 1,
                    "digest": "sha256:" + marker * 64,
                }
            ],
        }
    )


def push(url: str, repository: str, tag: str, marker: str) -> str:
    ecr = moto_client(url, "ecr")
    with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName=repository)
    image = ecr.put_image(repositoryName=repository, imageManifest=manifest(marker), imageTag=tag)
    return str(image["image"]["imageId"]["imageDigest"])


def with_task_definition(model: Any, cluster: str) -> str:
    """small_template (what moto can create) plus each service's task definition, its image
    exactly as the real template writes it (cloudformation/services.py image_value)."""
    template = json.loads(small_template(model, cluster))
    for service in model.clusters[cluster].services.values():
        template["Resources"][f"{service.name.capitalize()}TaskDefinition"] = {
            "Type": "AWS::ECS::TaskDefinition",
            "Properties": {
                "Family": f"{cluster}-{service.name}",
                "ContainerDefinitions": [
                    {"Name": service.name, "Image": image_value(service.image), "Memory": 128}
                ],
            },
        }
    return json.dumps(template)


@pytest.fixture
def ecr_fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(deploy_module, "render_template", with_task_definition)
    no_preflight(monkeypatch)
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")
    return write_fleet(tmp_path, FLEET.replace(PLAIN, 'image: {ecr: bananas, tag: "1.0"}', 1))


def deployed_image(url: str, family: str = "prod-bananas") -> str:
    ecs = moto_client(url, "ecs")
    definition = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    return str(definition["containerDefinitions"][0]["image"])


def stack_template(url: str) -> str:
    cfn = moto_client(url, "cloudformation")
    return json.dumps(cfn.get_template(StackName="nixecs-prod")["TemplateBody"])


@pytest.mark.moto
def test_resolve_names_what_is_missing(moto):
    first = push(moto.url, "bananas", "1.0", "1")
    second = push(moto.url, "bananas", "2.0", "2")
    session = Session(endpoint_url=moto.url, region="us-east-1")
    missing_digest = "sha256:" + "f" * 64
    result = resolve(
        session,
        [
            ImageRef(ecr="bananas", tag="1.0"),
            ImageRef(ecr="bananas", tag="2.0"),
            ImageRef(ecr="bananas", digest=second),
            ImageRef(ecr="bananas", tag="3.0"),
            ImageRef(ecr="bananas", digest=missing_digest),
            ImageRef(ecr="apples", tag="1.0"),
            ImageRef(reference="nginx:1.27"),
        ],
    )
    assert result.digests == {
        ("bananas", "1.0"): first,
        ("bananas", "2.0"): second,
        ("bananas", second): second,
    }
    assert sorted((p.code, p.message.split(" (")[0]) for p in result.problems) == [
        ("E136", "tag '3.0' is not in ECR repository 'bananas'"),
        ("E137", "no ECR repository 'apples' in this account and region"),
        ("E138", f"digest {missing_digest} is not in ECR repository 'bananas'"),
    ]


@pytest.mark.moto
def test_deploy_pins_the_digest_and_a_repushed_tag_changes_nothing(moto, ecr_fleet, capsys):
    first = push(moto.url, "bananas", "1.0", "1")
    base = ["--endpoint-url", moto.url, "deploy", str(ecr_fleet), "--yes"]
    created = run_cli(capsys, base)
    assert created.code == 0, created.err
    assert deployed_image(moto.url) == f"{REGISTRY}/bananas@{first}"

    # The tag moves (a mutable repository, or someone pushed again): the running task
    # definition still names the first image ...
    second = push(moto.url, "bananas", "1.0", "2")
    assert second != first
    assert deployed_image(moto.url) == f"{REGISTRY}/bananas@{first}"
    # ... until a deploy, which the change set shows as a change. (Checked in the stack's
    # template: moto's stack update re-registers the task definition without its container
    # definitions — TaskDefinition.update_from_cloudformation_json passes CloudFormation's
    # PascalCase keys where its create path remaps them to camelCase.)
    updated = run_cli(capsys, base)
    assert updated.code == 0, updated.err
    assert "BananasTaskDefinition" in updated.out
    template = stack_template(moto.url)
    assert f"/bananas@{second}" in template and first not in template


@pytest.mark.moto
@pytest.mark.parametrize("flag", ["--preflight", "--no-preflight"])
def test_a_missing_tag_stops_the_deploy_at_its_place(moto, ecr_fleet, capsys, flag):
    push(moto.url, "bananas", "0.9", "1")
    result = run_cli(capsys, ["--endpoint-url", moto.url, "deploy", str(ecr_fleet), "--yes", flag])
    assert result.code == 2, result.err
    assert (
        f"{ecr_fleet}:17:16: error[E136]: tag '1.0' is not in ECR repository 'bananas'"
        in result.err
    ), result.err
    assert "Traceback" not in result.err
    assert moto_client(moto.url, "cloudformation").describe_stacks()["Stacks"] == []


@pytest.mark.moto
def test_status_shows_the_digest_each_service_runs(moto, ecr_fleet, capsys):
    digest = push(moto.url, "bananas", "1.0", "1")
    assert (
        run_cli(capsys, ["--endpoint-url", moto.url, "deploy", str(ecr_fleet), "--yes"]).code == 0
    )
    moto_client(moto.url, "ecs").create_service(
        cluster="prod", serviceName="bananas", taskDefinition="prod-bananas", desiredCount=1
    )
    status = ["--endpoint-url", moto.url, "--region", "us-east-1"]
    data = json.loads(run_cli(capsys, [*status, "--output", "json", "status"]).out)
    (service,) = data["clusters"][0]["services"]
    assert service["images"] == [
        {"container": "bananas", "image": f"{REGISTRY}/bananas@{digest}", "digest": digest}
    ]
    text = run_cli(capsys, [*status, "status"]).out
    # The images table: service, container, image@digest (shortened as `docker images` does).
    row = next(line for line in text.splitlines() if line.split()[:2] == ["bananas", "bananas"])
    assert f"bananas@{digest[:19]}" in row, text


@pytest.mark.moto
def test_preflight_reports_each_missing_image_at_its_key(moto, tmp_path):
    """The preflight step itself (as `validate --aws` runs it), on a fleet with two ECR
    images: the missing repository (E137) at the second service's `image:`."""
    from nixecs.aws.images import check_fleet
    from nixecs.diagnostics import Report
    from nixecs.fleet.loader import load_fleet

    push(moto.url, "bananas", "1.0", "1")
    text = FLEET.replace(PLAIN, 'image: {ecr: bananas, tag: "1.0"}', 1).replace(
        "image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/apples:1.0",
        'image: {ecr: apples, digest: "sha256:' + "c" * 64 + '"}',
    )
    model = load_fleet(write_fleet(tmp_path, text))
    report = Report()
    resolution = check_fleet(Session(endpoint_url=moto.url, region="us-east-1"), model, report)
    (finding,) = report.items
    assert finding.code == "E137" and "no ECR repository 'apples'" in finding.message
    assert str(finding.location).endswith(":42:16"), finding.location
    assert resolution.digests[("bananas", "1.0")].startswith("sha256:")
