"""Issue 16 item 6: overrides cannot unmake the security and limit checks.

Each case overrides the rendered stack into something the fleet model would never produce,
and `render_fleet` (what `validate`, `render` and `deploy` all use) must report it with its
code at the override's line. Unit cases feed `check_template` templates directly, for what an
override cannot reach (AWS::EC2::Volume, inline security group rules)."""

from __future__ import annotations

import base64
import json
import textwrap
from typing import Any

import pytest

from nixecs.cli import run
from nixecs.diagnostics import CODES, FIXES, InvalidInput
from nixecs.fleet import parse
from nixecs.render import render_fleet
from nixecs.template_checks import check_template
from test_fleet_infra import fleet_text

BASE = fleet_text()


def with_overrides(overrides: str) -> str:
    return fleet_text("overrides:\n" + textwrap.indent(textwrap.dedent(overrides), "  "))


def diagnostics(text: str) -> list[tuple[int, str, str]]:
    """(line, code, message) of every error, or of every warning when there is no error."""
    fleet = parse(text, "fleet.yml")
    try:
        rendered = render_fleet(fleet)
    except InvalidInput as error:
        items = error.report.sorted()
    else:
        items = rendered.warnings()
    return [(d.location.line, d.code, d.message) for d in items]


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


CASES = [
    (
        "ApiExecutionRole:\n  Properties.Policies: [{PolicyName: x, PolicyDocument: {Statement: [{Effect: Allow, Action: '*', Resource: '*'}]}}]\n",
        "E401",
        "the '*' action",
    ),
    (
        "WebInstanceRole:\n  Properties.Policies.0.PolicyDocument.Statement.0: {Effect: Allow, NotAction: 'iam:*', Resource: '*'}\n",
        "E401",
        "NotAction",
    ),
    (
        "ApiExecutionRole:\n  Properties.ManagedPolicyArns.0: arn:aws:iam::aws:policy/AdministratorAccess\n",
        "E402",
        "AdministratorAccess",
    ),
    (
        "WebInstanceRole:\n  Properties.ManagedPolicyArns: [{'Fn::Sub': 'arn:${AWS::Partition}:iam::aws:policy/PowerUserAccess'}]\n",
        "E402",
        "PowerUserAccess",
    ),
    (
        "WebLaunchTemplate:\n  Properties.LaunchTemplateData.MetadataOptions.HttpTokens: optional\n",
        "E403",
        "IMDSv1",
    ),
    (
        "WebLaunchTemplate:\n  Properties.LaunchTemplateData.MetadataOptions: null\n",
        "E403",
        "'unset'",
    ),
    (
        "WebLaunchTemplate:\n  Properties.LaunchTemplateData.BlockDeviceMappings.0.Ebs.Encrypted: false\n",
        "E404",
        "/dev/xvda is not encrypted",
    ),
    (
        "WebLaunchTemplate:\n  Properties.LaunchTemplateData.BlockDeviceMappings.0.Ebs.Encrypted: null\n",
        "E404",
        "not encrypted",
    ),
    (
        "WebLaunchTemplate:\n  Properties.LaunchTemplateData.UserData: {'Fn::Base64': "
        + "x" * 16385
        + "}\n",
        "E406",
        "16385 bytes",
    ),
]


@pytest.mark.parametrize(("overrides", "code", "needle"), CASES, ids=[c[1] for c in CASES])
def test_an_override_cannot_undo_a_check(overrides: str, code: str, needle: str) -> None:
    text = with_overrides(overrides)
    found = diagnostics(text)
    assert [c for _, c, _ in found] == [code], found
    line, _, message = found[0]
    # Located at the resource's (first) override in the fleet file.
    logical_id = overrides.split(":", 1)[0]
    assert line == line_of(text, f"      {logical_id}:") + 1
    assert needle in message and logical_id in message


def test_hop_limit_and_retain_are_warnings_and_render_still_writes() -> None:
    text = with_overrides(
        """\
        WebLaunchTemplate:
          Properties.LaunchTemplateData.MetadataOptions.HttpPutResponseHopLimit: 2
        ApiLogGroup:
          DeletionPolicy: Retain
          UpdateReplacePolicy: Snapshot
        """
    )
    found = diagnostics(text)
    assert sorted(c for _, c, _ in found) == ["W401", "W402", "W402"], found
    assert any("HttpPutResponseHopLimit is 2" in m for _, _, m in found)


def test_the_models_own_hop_limit_warns_once_as_w101() -> None:
    from nixecs.fleet.lints import lint_fleet

    text = BASE.replace(
        "capacity: {min: 1, max: 3}\n",
        "capacity: {min: 1, max: 3}\n        metadata: {hop_limit: 2}\n",
    )
    fleet = parse(text, "fleet.yml")
    assert [d.code for d in lint_fleet(fleet)] == ["W101"]
    rendered = render_fleet(fleet)
    data = rendered.clusters["prod"].template["Resources"]["WebLaunchTemplate"]  # type: ignore[index]
    assert (
        data["Properties"]["LaunchTemplateData"]["MetadataOptions"]["HttpPutResponseHopLimit"] == 2
    )
    assert rendered.warnings() == []  # no second warning for the same value


def test_a_task_roles_administrator_policy_is_located_at_its_task_role() -> None:
    """Not only overrides: the fleet's own `task_role:` may attach an admin policy."""
    text = BASE.replace(
        "        memory: 256\n",
        "        memory: 256\n        task_role:\n          managed_policies:\n"
        "            - arn:aws:iam::aws:policy/AdministratorAccess\n",
    )
    assert diagnostics(text) == [
        (
            line_of(text, "task_role:"),
            "E402",
            "stack nixecs-prod, ApiTaskRole: the role attaches the AWS managed policy "
            "AdministratorAccess",
        )
    ]


def test_a_clean_fleet_has_no_findings() -> None:
    assert diagnostics(BASE) == []


def test_nan_and_inf_in_an_override_are_located_errors() -> None:
    for value in (".nan", ".inf", "-.Inf"):
        text = with_overrides(f"ApiLogGroup:\n  Properties.RetentionInDays: {value}\n")
        with pytest.raises(InvalidInput) as caught:
            parse(text, "fleet.yml")
        [error] = caught.value.report.errors
        assert error.code == "E120" and "CloudFormation template" in error.message
        assert error.location.line == line_of(text, "RetentionInDays")
    nested = with_overrides("ApiLogGroup:\n  Properties.Tags: [{Key: a, Value: [1, .nan]}]\n")
    with pytest.raises(InvalidInput) as caught:
        parse(nested, "fleet.yml")
    assert [e.code for e in caught.value.report.errors] == ["E120"]


def test_every_new_code_has_a_cause_and_a_fix() -> None:
    for code in ("E401", "E402", "E403", "E404", "E405", "E406", "W401", "W402"):
        assert CODES[code] and FIXES[code]


def test_validate_render_and_deploy_paths_all_refuse(tmp_path: Any, capsys: Any) -> None:
    text = with_overrides(
        "WebLaunchTemplate:\n  Properties.LaunchTemplateData.MetadataOptions.HttpTokens: optional\n"
    )
    source = tmp_path / "fleet.yml"
    source.write_text(text)
    for args in (["validate", str(source)], ["render", str(source), "-o", str(tmp_path / "out")]):
        code = run(args)
        err = capsys.readouterr().err
        assert code == 2, err
        assert f"fleet.yml:{line_of(text, 'HttpTokens')}:" in err
        assert "error[E403]" in err and "Traceback" not in err
    assert not (tmp_path / "out" / "manifest.json").exists()
    from nixecs.aws.deploy import render_template

    with pytest.raises(InvalidInput):
        render_template(parse(text, str(source)), "prod")


# -- check_template on templates an override cannot produce ----------------------------------


def template(resources: dict[str, Any]) -> dict[str, Any]:
    launch = {
        "Type": "AWS::EC2::LaunchTemplate",
        "Properties": {
            "LaunchTemplateData": {
                "SecurityGroupIds": ["sg-0a1b2c3d", {"Ref": "Extra"}],
                "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 1},
                "UserData": base64.b64encode(b"#!/bin/sh\n").decode(),
            }
        },
    }
    return {"Resources": {"Lt": launch, **resources}}


def codes(resources: dict[str, Any]) -> list[str]:
    return [f.code for f in check_template(template(resources))]


def ingress(group: str, **source: str) -> list[str]:
    """The findings for one SecurityGroupIngress (SSH) into `group` from `source`."""
    rule = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "GroupId": group, **source}
    return codes({"R": {"Type": "AWS::EC2::SecurityGroupIngress", "Properties": rule}})


def test_open_ingress_to_the_instances_only() -> None:
    rule = {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22}
    assert ingress("sg-0a1b2c3d", CidrIp="0.0.0.0/0") == ["E405"]
    assert ingress("sg-0a1b2c3d", CidrIpv6="::/0") == ["E405"]
    # Another group (the load balancer's), or a narrower source: not the instances' exposure.
    assert ingress("sg-0b1b2c3d", CidrIp="0.0.0.0/0") == []
    assert ingress("sg-0a1b2c3d", CidrIp="10.0.0.0/8") == []
    inline = {
        "Type": "AWS::EC2::SecurityGroup",
        "Properties": {"SecurityGroupIngress": [{**rule, "CidrIp": "0.0.0.0/0"}]},
    }
    assert codes({"Extra": inline}) == ["E405"]
    assert codes({"Unused": inline}) == []


def test_unencrypted_volume_resource_and_binary_userdata() -> None:
    assert codes({"V": {"Type": "AWS::EC2::Volume", "Properties": {"Size": 8}}}) == ["E404"]
    assert codes({"V": {"Type": "AWS::EC2::Volume", "Properties": {"Encrypted": True}}}) == []
    big = template({})
    big["Resources"]["Lt"]["Properties"]["LaunchTemplateData"]["UserData"] = base64.b64encode(
        b"\x1f\x8b" + b"\0" * 16384
    ).decode()
    assert [f.code for f in check_template(big)] == ["E406"]


def test_policies_attached_by_separate_resources() -> None:
    document = {
        "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject", "*:*"], "Resource": "*"}]
    }
    for kind in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
        assert codes({"P": {"Type": kind, "Properties": {"PolicyDocument": document}}}) == ["E401"]
    deny = {"Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*"}]}
    assert codes({"P": {"Type": "AWS::IAM::Policy", "Properties": {"PolicyDocument": deny}}}) == []


def test_deploy_renders_with_the_warnings_on_stderr(capsys: Any) -> None:
    from nixecs.aws.deploy import render_template

    text = with_overrides("ApiLogGroup:\n  DeletionPolicy: Retain\n")
    body = render_template(parse(text, "fleet.yml"), "prod")
    assert "DeletionPolicy: Retain" in body
    err = capsys.readouterr().err
    assert f"fleet.yml:{line_of(text, 'DeletionPolicy')}:" in err and "warning[W402]" in err


def role_of(size: int, resource: Any = None) -> dict[str, Any]:
    """A role whose one inline policy is `size` characters without whitespace."""
    statement = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/"}
    document = {"Statement": [statement]}
    statement["Resource"] += "x" * (size - len(json.dumps(document, separators=(",", ":"))))
    if resource is not None:
        statement["Resource"] = resource
    policies = [{"PolicyName": "p", "PolicyDocument": document}]
    return {"Type": "AWS::IAM::Role", "Properties": {"Policies": policies}}


def test_inline_policies_up_to_iams_10240_characters() -> None:
    assert codes({"Role": role_of(10_240)}) == []
    assert codes({"Role": role_of(10_241)}) == ["E407"]
    # Fn::Sub counts as resolved (what CloudFormation hands IAM): at the bound in
    # ap-southeast-4 exactly, under it in us-east-1, over it in us-gov-west-1 (aws-us-gov).
    empty = len(
        json.dumps(
            role_of(0, resource="")["Properties"]["Policies"][0]["PolicyDocument"],
            separators=(",", ":"),
        )
    )
    fill = 10_240 - empty - len("arn:aws:s3:::ap-southeast-4/")
    arn = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${AWS::Region}/" + "x" * fill}
    near = template({"Role": role_of(0, resource=arn)})
    sizes = {
        region: [f.code for f in check_template(near, region)]
        for region in ("us-east-1", "ap-southeast-4", "us-gov-west-1")
    }
    assert sizes == {"us-east-1": [], "ap-southeast-4": [], "us-gov-west-1": ["E407"]}
    # Without a region (render always passes the fleet's), the longest region name.
    assert [f.code for f in check_template(near)] == []


def test_many_secrets_overflow_the_instance_role_at_the_group() -> None:
    secrets = "".join(
        f"          s{n}: {{parameter: /prod/web/a-long-secret-name-{n:03d}}}\n" for n in range(60)
    )
    text = BASE.replace(
        "        capacity: {min: 1, max: 3}\n",
        "        capacity: {min: 1, max: 3}\n        secrets:\n" + secrets,
    )
    [(line, code, message)] = diagnostics(text)
    assert code == "E407" and "WebInstanceRole" in message
    assert line == line_of(text, "      web:")


@pytest.mark.parametrize(
    "resources",
    [
        {"Cluster": {"Type": "AWS::ECS::Cluster", "Properties": [0]}},
        {"Role": {"Type": "AWS::IAM::Role", "Properties": "x"}},
        {"Lt": {"Type": "AWS::EC2::LaunchTemplate", "Properties": {"LaunchTemplateData": [1]}}},
        {"Vol": {"Type": "AWS::EC2::Volume", "Properties": None}},
        {"Ingress": {"Type": "AWS::EC2::SecurityGroupIngress", "Properties": 7}},
    ],
    ids=["cluster list", "role string", "launch template data list", "volume null", "ingress int"],
)
def test_an_override_of_any_shape_is_judged_never_a_crash(resources: dict[str, Any]) -> None:
    """An override may put any value anywhere (the property test in test_fleet_infra found
    `Cluster: {Properties: [0]}` crashing the checks): what is not a mapping is judged as
    empty, and CloudFormation refuses the shape itself."""
    check_template({"Resources": resources}, "us-east-1")
