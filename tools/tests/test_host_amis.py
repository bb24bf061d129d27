"""`ami: {host: web}` (issue 19.5): the loader's mapping form, the choice among AMIs (hostile
lists: pending, deregistered, failed, foreign, equally new), and the resolution against AMIs
tagged in the moto server, per region, newest first, through `validate --aws` and
`deploy --plan`; a host with no AMI is a located E504 naming the `ami publish` command."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from aws_fixtures import no_preflight, run_cli, small_template, write_fleet
from nixecs import naming
from nixecs.aws.host_amis import choose
from nixecs.diagnostics import InvalidInput
from nixecs.fleet import load_fleet
from nixecs.fleet.host_ami import flake_rev

SHA_A = "a" * 64
SHA_B = "b" * 64
REV = "3f2a9c1e8d7b6a5f4e3d2c1b0a9f8e7d6c5b4a39"


def fleet_text(ami: str, host_line: str = "", flake: str = "github:acme/infra") -> str:
    return f"""\
version: 1
region: us-east-1
flake: {flake}
clusters:
  prod:
    subnets: [subnet-0a1b2c3d]
    security_groups: [sg-0a1b2c3d]
    groups:
      web:{host_line}
        ami: {ami}
        instance_types: [m6i.large]
        capacity: {{min: 1, max: 4}}
      batch:
        ami: {{host: batch}}
        instance_types: [m6i.large]
        capacity: {{min: 0, max: 2}}
    services:
      hello:
        group: web
        image: nginx:1.27
        cpu: 256
        memory: 512
"""


# -- the fleet file ------------------------------------------------------------------------


def test_mapping_form_names_the_host_and_the_group_takes_it(tmp_path: Path) -> None:
    fleet = load_fleet(write_fleet(tmp_path, fleet_text("{host: web, rev: 3f2a9c1}")))
    web = fleet.group("prod/web")
    assert web.host == "web"
    assert web.ami_host is not None and (web.ami_host.host, web.ami_host.rev) == ("web", "3f2a9c1")
    assert web.ami == "nixecs-host:web@3f2a9c1"  # what `render` shows until deploy resolves it
    assert fleet.group("prod/batch").host == "batch"


@pytest.mark.parametrize(
    ("ami", "host_line", "code", "where"),
    [
        ("{host: web}", "\n        host: api", "E503", (11, 21)),
        ("{host: web, rev: XYZ}", "", "E107", (10, 31)),
        ("{host: web, tag: x}", "", "E101", (10, 26)),
        ("{rev: 3f2a9c1}", "", "E104", (10, 14)),
        ("ami-nothex", "", "E107", (10, 14)),
    ],
)
def test_bad_mapping_forms_are_located(
    tmp_path: Path, ami: str, host_line: str, code: str, where: tuple[int, int]
) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_fleet(write_fleet(tmp_path, fleet_text(ami, host_line)))
    found = [d for d in caught.value.report.sorted() if d.code == code]
    assert found, caught.value.report.sorted()
    assert (found[0].location.line, found[0].location.column) == where


def test_flake_references_that_pin_a_revision() -> None:
    assert flake_rev(f"github:acme/infra/{REV}") == REV
    assert flake_rev(f"git+https://example.com/infra?ref=main&rev={REV}") == REV
    assert flake_rev("github:acme/infra") is None
    assert flake_rev("github:acme/infra/main") is None


# -- the choice ----------------------------------------------------------------------------


def image(
    ident: str,
    date: str,
    *,
    host: str = "web",
    sha: str | None = SHA_A,
    state: str = "available",
    rev: str | None = None,
) -> dict[str, Any]:
    tags = [{"Key": naming.TAG_HOST, "Value": host}]
    if sha:
        tags.append({"Key": naming.TAG_IMAGE_SHA256, "Value": sha})
    if rev:
        tags.append({"Key": naming.TAG_FLAKE, "Value": rev})
    return {"ImageId": ident, "CreationDate": date, "State": state, "Tags": tags}


def test_newest_available_of_ours_is_chosen() -> None:
    images = [
        image("ami-00000001", "2026-12-01T10:00:00.000Z"),
        image("ami-00000002", "2026-12-03T10:00:00.000Z", state="pending"),
        image("ami-00000003", "2026-12-04T10:00:00.000Z", state="deregistered"),
        image("ami-00000004", "2026-12-05T10:00:00.000Z", state="failed"),
        image("ami-00000005", "2026-12-06T10:00:00.000Z", sha=None),  # tagged by hand
        image("ami-00000006", "2026-12-06T11:00:00.000Z", host="api"),
        image("ami-00000007", "2026-12-02T10:00:00.000Z", sha=SHA_B),
    ]
    assert choose(images, "web", None).image_id == "ami-00000007"
    assert choose(images[:2], "web", None).image_id == "ami-00000001"
    assert choose(images[1:6], "web", None).problem == "none"


def test_a_pinned_revision_selects_by_the_flake_tag() -> None:
    images = [
        image("ami-00000001", "2026-12-01T10:00:00.000Z", rev=REV),
        image("ami-00000002", "2026-12-02T10:00:00.000Z", rev="0" * 40, sha=SHA_B),
        image("ami-00000003", "2026-12-03T10:00:00.000Z"),
    ]
    assert choose(images, "web", REV[:7]).image_id == "ami-00000001"
    assert choose(images, "web", REV).image_id == "ami-00000001"
    assert choose(images, "web", "1234567").image_id is None


def test_equally_new_amis_of_two_images_are_ambiguous_of_one_image_not() -> None:
    date = "2026-12-06T10:00:00.000Z"
    same = [image("ami-00000009", date), image("ami-00000003", date)]
    assert choose(same, "web", None).image_id == "ami-00000003"  # either: the same bytes
    two = [image("ami-00000009", date), image("ami-00000003", date, sha=SHA_B)]
    choice = choose(two, "web", None)
    assert choice.image_id is None
    assert "ami-00000003, ami-00000009 are equally new" in choice.problem


# -- against the moto server ---------------------------------------------------------------


def publish_like(url: str, region: str, host: str, sha: str, rev: str | None = None) -> str:
    """An AMI registered and tagged as `nixecs ami publish --host` leaves it."""
    ec2 = _regional(url, region)
    image_id = str(ec2.register_image(Name=f"nixecs-{host}-{sha[:12]}-{time.time_ns()}")["ImageId"])
    tags = [
        {"Key": naming.TAG_HOST, "Value": host},
        {"Key": naming.TAG_IMAGE_SHA256, "Value": sha},
    ]
    if rev:
        tags.append({"Key": naming.TAG_FLAKE, "Value": rev})
    ec2.create_tags(Resources=[image_id], Tags=tags)
    return image_id


def _regional(url: str, region: str) -> Any:
    import boto3

    return boto3.client(
        "ec2",
        region_name=region,
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_validate_aws_resolves_per_region_newest_first(moto: Any, tmp_path: Path, capsys) -> None:
    fleet = write_fleet(tmp_path, fleet_text("{host: web}"))
    old = publish_like(moto.url, "us-east-1", "web", SHA_A)
    publish_like(moto.url, "us-east-1", "batch", SHA_A)
    time.sleep(1.1)  # moto's CreationDate has whole seconds
    new = publish_like(moto.url, "us-east-1", "web", SHA_B)
    west = publish_like(moto.url, "us-west-2", "web", SHA_A)
    # Someone else's marks: the host tag without publish's image hash, newer still.
    time.sleep(1.1)
    foreign = _regional(moto.url, "us-east-1").register_image(Name="handmade")["ImageId"]
    _regional(moto.url, "us-east-1").create_tags(
        Resources=[foreign], Tags=[{"Key": naming.TAG_HOST, "Value": "web"}]
    )

    from nixecs.aws.host_amis import resolve
    from nixecs.aws.session import Session

    model = load_fleet(fleet)
    for region, expected in (("us-east-1", new), ("us-west-2", west)):
        session = Session(region=region, endpoint_url=moto.url)
        found, report = resolve(session, model, str(fleet))
        if region == "us-east-1":
            assert not report.has_errors
            assert found.group("prod/web").ami == expected != old
        else:  # batch was published in us-east-1 only
            assert found.group("prod/web").ami == expected
            [error] = report.errors
            assert error.code == "E504"
            assert (error.location.line, error.location.column) == (14, 14)
            assert "no available AMI of host 'batch'" in error.message
            assert f"nixecs --region us-west-2 ami publish --host batch --fleet {fleet}" in (
                error.message
            )


def test_validate_aws_without_an_ami_is_a_located_error(moto: Any, tmp_path: Path, capsys) -> None:
    fleet = write_fleet(tmp_path, fleet_text("{host: web}"))
    publish_like(moto.url, "us-east-1", "web", SHA_A, rev="0" * 40)  # batch has none
    result = run_cli(capsys, ["--endpoint-url", moto.url, "validate", str(fleet), "--aws"])
    assert result.code == 2
    assert f"{fleet}:14:14: error[E504]: no available AMI of host 'batch'" in result.err
    assert "Traceback" not in result.err


def test_deploy_plan_renders_the_resolved_ami(
    moto: Any, tmp_path: Path, capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nixecs.aws import deploy as deploy_module

    pinned = f"github:acme/infra/{REV}"
    fleet = write_fleet(tmp_path, fleet_text("{host: web}", flake=pinned))
    at_rev = publish_like(moto.url, "us-east-1", "web", SHA_A, rev=REV)
    batch = publish_like(moto.url, "us-east-1", "batch", SHA_A, rev=REV)
    time.sleep(1.1)
    publish_like(moto.url, "us-east-1", "web", SHA_B, rev="0" * 40)  # newer, another revision
    seen: dict[str, str] = {}

    def render(model: Any, cluster: str) -> str:
        seen.update({g.name: g.ami for g in model.clusters[cluster].groups.values()})
        return small_template(model, cluster)

    monkeypatch.setattr(deploy_module, "render_template", render)
    no_preflight(monkeypatch)
    result = run_cli(capsys, ["--endpoint-url", moto.url, "deploy", str(fleet), "--plan"])
    assert result.code == 0, result.err
    assert seen == {"web": at_rev, "batch": batch}


def test_roll_with_the_fleet_refuses_a_launch_template_behind_the_host(
    moto: Any, tmp_path: Path, capsys
) -> None:
    """A new AMI of the host was published after the last deploy: roll would replace the
    instances with the old image; it says to deploy first (exit 2) and touches nothing."""
    fleet = write_fleet(tmp_path, fleet_text("{host: web}"))
    old = publish_like(moto.url, "us-east-1", "web", SHA_A)
    ec2 = _regional(moto.url, "us-east-1")
    ec2.create_launch_template(
        LaunchTemplateName="nixecs-prod-web", LaunchTemplateData={"ImageId": old}
    )
    time.sleep(1.1)
    new = publish_like(moto.url, "us-east-1", "web", SHA_B)
    base = ["--endpoint-url", moto.url, "--region", "us-east-1"]
    behind = run_cli(capsys, [*base, "roll", "prod/web", "--fleet", str(fleet)])
    assert behind.code == 2
    assert f"the newest AMI of host 'web' in us-east-1 is {new}" in behind.err
    assert f"boots {old}: run `nixecs deploy {fleet}` first" in behind.err
    # After the deploy (a new launch template version with the new AMI) the check passes and
    # roll goes on to the group (none in this account: the refresh fails as before, exit 1).
    ec2.create_launch_template_version(
        LaunchTemplateName="nixecs-prod-web", LaunchTemplateData={"ImageId": new}
    )
    current = run_cli(capsys, [*base, "roll", "prod/web", "--fleet", str(fleet)])
    assert f"prod/web: rolling to {new}, the newest AMI of host 'web'" in current.err
    assert current.code == 1 and "no Auto Scaling group nixecs-prod-web" in current.err


def test_status_names_the_host_and_revision_each_ami_was_published_from(moto: Any) -> None:
    from nixecs.aws.session import Session
    from nixecs.aws.status import _ami_cell, _ami_hosts

    tagged = publish_like(moto.url, "us-east-1", "web", SHA_A, rev=REV)
    plain = _regional(moto.url, "us-east-1").register_image(Name="plain")["ImageId"]
    gone = "ami-0123456789abcdef0"  # deregistered or never there: absent, not an error
    session = Session(region="us-east-1", endpoint_url=moto.url)
    hosts = _ami_hosts(session, [tagged, plain, gone])
    assert hosts == {tagged: ("web", REV), plain: (None, None)}
    row = {"ami": tagged, "host": "web", "revision": REV}
    assert _ami_cell(row) == f"{tagged} (web@3f2a9c1)"
    assert _ami_cell({"ami": plain, "host": None, "revision": None}) == plain


def test_validate_lints_overridden_stacks_of_host_groups(
    capsys, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The maximal fleet has overrides (so cfn-lint runs) and a group with `ami: {host: …}`:
    its ImageId placeholder is stood in for by an id of AMI shape for the lint (cfn-lint
    checks AWS::EC2::Image.Id's pattern), and the fleet is valid."""
    from conftest import require
    from nixecs.cloudformation.lint import cfn_lint_command

    require(cfn_lint_command() is not None, "cfn-lint is not installed")
    monkeypatch.setenv("NIXECS_NIX", "/nonexistent")
    maximal = Path(__file__).parent / "fleets" / "maximal.yml"
    result = run_cli(capsys, ["validate", str(maximal)])
    assert result.code == 0, result.err
    assert "E164" not in result.err
