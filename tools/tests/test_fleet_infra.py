"""Groups' root volume and key pair, clusters' Container Insights, log retention and log key,
and the `overrides:` escape hatch (issue 10 items 6-8): loader checks with their positions,
the rendered CloudFormation, E160-E164, and `nixecs validate` on them."""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import require
from nixecs.cloudformation import build_stack
from nixecs.cloudformation.overrides import OverrideError
from nixecs.diagnostics import InvalidInput
from nixecs.fleet import parse
from nixecs.fleet.infra import LOG_RETENTION_DAYS, OVERRIDE_ROOTS, PROPERTY_PATH, split_path
from nixecs.render import render_fleet

GROUP = """\
      web:
        ami: ami-0123456789abcdef0
        instance_types: [m6i.large]
        capacity: {min: 1, max: 3}
"""


def fleet_text(cluster_extra: str = "", group_extra: str = "") -> str:
    """A one-cluster fleet; `cluster_extra` and `group_extra` are indented by the caller's
    dedent level (4 and 8 spaces)."""
    return (
        textwrap.dedent(
            """\
            version: 1
            region: us-east-1
            flake: github:acme/infra
            clusters:
              prod:
                subnets: [subnet-0a1b2c3d]
                security_groups: [sg-0a1b2c3d]
            """
        )
        + textwrap.indent(textwrap.dedent(cluster_extra), "    ")
        + "    groups:\n"
        + GROUP
        + textwrap.indent(textwrap.dedent(group_extra), "        ")
        + "    services:\n      api:\n        group: web\n        image: nginx:1.27\n"
        + "        memory: 256\n"
    )


def errors(text: str) -> list[tuple[int, int, str]]:
    with pytest.raises(InvalidInput) as caught:
        parse(text, "fleet.yml")
    return [(d.location.line, d.location.column, d.code) for d in caught.value.report.sorted()]


def render_errors(text: str) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        render_fleet(parse(text, "fleet.yml"))
    return [d.format() for d in caught.value.report.sorted()]


def stack(text: str) -> dict[str, Any]:
    fleet = parse(text, "fleet.yml")
    return build_stack(fleet, "prod", {"web": b"#!/bin/sh\n"})


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


# -- item 6: root volume and key pair --------------------------------------------------------


def test_root_volume_defaults_to_encrypted_gp3_of_the_ami_size() -> None:
    resources = stack(fleet_text())["Resources"]
    data = resources["WebLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["BlockDeviceMappings"] == [
        {
            "DeviceName": "/dev/xvda",
            "Ebs": {"VolumeType": "gp3", "Encrypted": True, "DeleteOnTermination": True},
        }
    ]
    assert "KeyName" not in data


def test_root_volume_and_key_pair_render_into_the_launch_template() -> None:
    text = fleet_text(
        group_extra="""\
        root_volume:
          size_gib: 50
          type: gp3
          iops: 6000
          throughput: 1500
          kms_key: alias/ebs-prod
        key_pair: ops-2026
        """
    )
    data = stack(text)["Resources"]["WebLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["BlockDeviceMappings"][0]["Ebs"] == {
        "VolumeType": "gp3",
        "VolumeSize": 50,
        "Iops": 6000,
        "Throughput": 1500,
        "Encrypted": True,
        "KmsKeyId": "alias/ebs-prod",
        "DeleteOnTermination": True,
    }
    assert data["KeyName"] == "ops-2026"


def test_root_device_is_one_constant_shared_with_ami_publish() -> None:
    from nixecs import naming
    from nixecs.aws import ami
    from nixecs.cloudformation import compute

    assert ami.ROOT_DEVICE is naming.ROOT_DEVICE is compute.ROOT_DEVICE


@pytest.mark.parametrize(
    ("volume", "column_key", "code"),
    [
        ("{type: gp2, size_gib: 16385}", "size_gib", "E107"),  # gp2: 1-16,384 GiB
        ("{type: gp3, size_gib: 65537}", "size_gib", "E107"),  # gp3: 1-65,536 GiB
        ("{type: io1, size_gib: 3, iops: 100}", "size_gib", "E107"),  # io1: 4-16,384 GiB
        ("{type: gp3, iops: 2999}", "iops", "E107"),  # gp3: 3,000-80,000 IOPS
        ("{type: gp3, iops: 80001}", "iops", "E107"),
        ("{type: io2, size_gib: 8, iops: 256001}", "iops", "E107"),  # io2: 100-256,000
        ("{type: gp2, iops: 3000}", "iops", "E112"),  # gp2 takes no IOPS
        ("{type: io2, size_gib: 8, iops: 100, throughput: 200}", "throughput", "E112"),
        ("{type: gp3, throughput: 124}", "throughput", "E107"),  # 125-2,000 MiB/s
        ("{type: gp3, iops: 80000, throughput: 2001}", "throughput", "E107"),
        ("{type: gp3, size_gib: 8, iops: 4001}", "iops", "E107"),  # 500 IOPS per GiB
        ("{type: gp3, throughput: 751}", "throughput", "E107"),  # 0.25 MiB/s × 3,000 IOPS
        ("{type: gp3, iops: 4000, throughput: 1001}", "throughput", "E107"),
        ("{type: st1}", "type", "E107"),  # cannot boot
        ("{kms_key: my-key}", "kms_key", "E107"),
        ("{size: 30}", "size", "E101"),
        ("{size_gib: '30'}", "size_gib", "E103"),
    ],
)
def test_root_volume_bounds_per_type(volume: str, column_key: str, code: str) -> None:
    text = fleet_text(group_extra=f"root_volume: {volume}\n")
    line = line_of(text, "root_volume:")
    found = errors(text)
    assert len(found) == 1 and found[0][0] == line and found[0][2] == code, found
    # located at the key's value (or, for an unknown key, the key itself)
    assert text.splitlines()[line - 1][found[0][1] - 1 :].startswith(
        column_key
        if code == "E101"
        else text.splitlines()[line - 1].split(f"{column_key}: ")[1][:2]
    )


def test_io_volumes_need_iops() -> None:
    text = fleet_text(group_extra="root_volume: {type: io1, size_gib: 20}\n")
    assert [code for _, _, code in errors(text)] == ["E104"]
    ok = stack(fleet_text(group_extra="root_volume: {type: io2, size_gib: 20, iops: 4000}\n"))
    ebs = ok["Resources"]["WebLaunchTemplate"]["Properties"]["LaunchTemplateData"][
        "BlockDeviceMappings"
    ][0]["Ebs"]
    assert (ebs["VolumeType"], ebs["Iops"], ebs["Encrypted"]) == ("io2", 4000, True)


@pytest.mark.parametrize("value", ['""', '"clé"', "7", "[a]", "'" + "k" * 256 + "'"])
def test_key_pair_names(value: str) -> None:
    text = fleet_text(group_extra=f"key_pair: {value}\n")
    assert [(line, code) for line, _, code in errors(text)] == [
        (line_of(text, "key_pair:"), "E103" if value in ("7", "[a]") else "E107")
    ]


# -- item 7: Container Insights, log retention, log key --------------------------------------


@pytest.mark.parametrize("value", ["enabled", "enhanced", "disabled"])
def test_container_insights_values(value: str) -> None:
    cluster = stack(fleet_text(f"container_insights: {value}\n"))["Resources"]["Cluster"]
    assert cluster["Properties"]["ClusterSettings"] == [
        {"Name": "containerInsights", "Value": value}
    ]


def test_container_insights_default_and_bad_value() -> None:
    cluster = stack(fleet_text())["Resources"]["Cluster"]
    assert cluster["Properties"]["ClusterSettings"][0]["Value"] == "enabled"
    text = fleet_text("container_insights: on\n")
    assert errors(text) == [(line_of(text, "container_insights"), 25, "E107")]


def test_log_retention_and_key() -> None:
    key = "arn:aws:kms:us-east-1:123456789012:key/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"
    log_group = stack(fleet_text(f"log_retention_days: 3653\nlog_kms_key: {key}\n"))["Resources"][
        "ApiLogGroup"
    ]["Properties"]
    assert log_group["RetentionInDays"] == 3653 and log_group["KmsKeyId"] == key
    default = stack(fleet_text())["Resources"]["ApiLogGroup"]["Properties"]
    assert default["RetentionInDays"] == 30 and "KmsKeyId" not in default


@pytest.mark.parametrize("days", [0, 2, 13, 366, 3654, 10000])
def test_log_retention_only_what_cloudwatch_logs_accepts(days: int) -> None:
    assert days not in LOG_RETENTION_DAYS
    text = fleet_text(f"log_retention_days: {days}\n")
    assert errors(text) == [(line_of(text, "log_retention_days"), 25, "E107")]


@pytest.mark.parametrize(
    "key", ["alias/logs", "0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f", "arn:aws:kms:us-east-1:1:key/x"]
)
def test_log_kms_key_must_be_a_key_arn(key: str) -> None:
    text = fleet_text(f"log_kms_key: {key}\n")
    assert errors(text) == [(line_of(text, "log_kms_key"), 18, "E107")]


# -- item 8: overrides ------------------------------------------------------------------------


def test_split_path_escapes_dots() -> None:
    assert split_path("Properties.Tags.0.Value") == ["Properties", "Tags", "0", "Value"]
    assert split_path("Metadata.a\\.b.c") == ["Metadata", "a.b", "c"]


def test_overrides_set_create_replace_and_delete_last() -> None:
    text = fleet_text(
        """\
        log_retention_days: 7
        overrides:
          ApiLogGroup:
            Properties.RetentionInDays: 90          # replaces what log_retention_days made
            Properties.Tags: ~                     # delete
          WebLaunchTemplate:
            Properties.LaunchTemplateData.Monitoring.Enabled: true            # created
            Properties.LaunchTemplateData.BlockDeviceMappings.0.Ebs.VolumeSize: 40
            Properties.LaunchTemplateData.Metadata\\.Weird: {Ref: AWS::Region}
          Cluster:
            Properties.ClusterSettings.0: {Name: containerInsights, Value: disabled}
            DependsOn: [WebLaunchTemplate]
        """
    )
    resources = stack(text)["Resources"]
    log_group = resources["ApiLogGroup"]["Properties"]
    assert log_group["RetentionInDays"] == 90 and "Tags" not in log_group
    data = resources["WebLaunchTemplate"]["Properties"]["LaunchTemplateData"]
    assert data["Monitoring"] == {"Enabled": True}
    assert data["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"] == 40
    assert data["Metadata.Weird"] == {"Ref": "AWS::Region"}
    cluster = resources["Cluster"]
    assert cluster["Properties"]["ClusterSettings"] == [
        {"Name": "containerInsights", "Value": "disabled"}
    ]
    assert cluster["DependsOn"] == ["WebLaunchTemplate"]


def test_overrides_delete_a_list_element() -> None:
    text = fleet_text(
        """\
        overrides:
          WebAutoScalingGroup:
            Properties.Tags.1: null
        """
    )
    plain = stack(fleet_text())["Resources"]["WebAutoScalingGroup"]["Properties"]["Tags"]
    tags = stack(text)["Resources"]["WebAutoScalingGroup"]["Properties"]["Tags"]
    assert tags == plain[:1] + plain[2:]


@pytest.mark.parametrize(
    ("overrides", "needle", "code", "message"),
    [
        (
            "ApiLogGrup: {Properties.RetentionInDays: 7}",
            "ApiLogGrup",
            "E160",
            "no resource 'ApiLogGrup' in this cluster's stack (did you mean ApiLogGroup?)",
        ),
        (
            "ApiLogGroup: {Properties.Nope: null}",
            "Properties.Nope",
            "E161",
            "ApiLogGroup: nothing to delete at Properties.Nope (Properties has no 'Nope')",
        ),
        (
            "ApiLogGroup: {Properties.Missing.Deeper: ~}",
            "Properties.Missing",
            "E161",
            "nothing to delete at Properties.Missing.Deeper (Properties has no 'Missing')",
        ),
        (
            "ApiLogGroup: {Properties.Tags.9: null}",
            "Properties.Tags.9",
            "E161",
            "(Properties.Tags has no '9')",
        ),
        (
            "ApiLogGroup: {Properties.LogGroupName.Sub: x}",
            "Properties.LogGroupName.Sub",
            "E162",
            "walks through Properties.LogGroupName, which is str '/nixecs/prod/api'",
        ),
        (
            "ApiLogGroup: {Properties.Tags.Key: x}",
            "Properties.Tags.Key",
            "E162",
            "which is a list of 3, and 'Key' is not an index in it",
        ),
        (
            "ApiLogGroup: {Properties.RetentionInDays.x.y: 1}",
            "Properties.RetentionInDays",
            "E162",
            "which is int 30",
        ),
    ],
)
def test_override_problems_are_located(
    overrides: str, needle: str, code: str, message: str
) -> None:
    text = fleet_text(f"overrides:\n  {overrides}\n")
    (found,) = render_errors(text)
    line = line_of(text, needle)
    column = text.splitlines()[line - 1].index(needle) + 1
    assert found.startswith(f"fleet.yml:{line}:{column}: error[{code}]: "), found
    assert message in found


def test_every_misfit_is_reported_and_build_stack_raises() -> None:
    text = fleet_text(
        "overrides:\n  Nope: {Properties.A: 1}\n  ApiLogGroup: {Properties.B: null}\n"
    )
    with pytest.raises(OverrideError) as caught:
        stack(text)
    assert [p.code for p in caught.value.problems] == ["E160", "E161"]


@pytest.mark.parametrize(
    ("overrides", "needle", "code"),
    [
        ("Api-Log: {Properties.A: 1}", "Api-Log", "E163"),
        ("ApiLogGroup: {Type: AWS::SNS::Topic}", "Type", "E163"),
        ("ApiLogGroup: {Properties..A: 1}", "Properties..A", "E163"),
        ("ApiLogGroup: {Tags.A: 1}", "Tags.A", "E163"),
        ("ApiLogGroup: {Properties.A.: 1}", "Properties.A.", "E163"),
        ("ApiLogGroup: {}", "ApiLogGroup", "E163"),
        ("ApiLogGroup: [Properties.A]", "ApiLogGroup", "E163"),
        ("ApiLogGroup: {Properties.A: {1: x}}", "x}}", "E103"),
    ],
)
def test_override_syntax_errors(overrides: str, needle: str, code: str) -> None:
    text = fleet_text(f"overrides:\n  {overrides}\n")
    ((line, column, found),) = errors(text)
    assert (line, found) == (line_of(text, needle), code)
    assert text.splitlines()[line - 1][column - 1 :].startswith(needle.split(":")[0])


def test_the_declared_property_path_is_what_split_path_accepts() -> None:
    """The declaration's pattern (the JSON Schema's too) accepts a property path exactly when
    split_path gives a root and no empty segment: every text of up to six of `.`, `\\`, `a`
    after a root, another word and nothing."""
    tried = 0
    for head in ("Properties", "Type", ""):
        for size in range(7):
            for tail in itertools.product(".\\a", repeat=size):
                text = head + "".join(tail)
                segments = split_path(text)
                expected = segments[0] in OVERRIDE_ROOTS and all(segments)
                assert bool(re.fullmatch(PROPERTY_PATH, text)) == expected, text
                tried += 1
    assert tried == 3 * sum(3**n for n in range(7))


def test_overrides_not_a_mapping() -> None:
    text = fleet_text("overrides: [ApiLogGroup]\n")
    assert errors(text) == [(line_of(text, "overrides"), 16, "E103")]


# -- the command line --------------------------------------------------------------------------


def nixecs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nixecs", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_validate_reports_override_misfits_exit_2_without_traceback(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yml"
    text = fleet_text("overrides:\n  ApiLogGrup: {Properties.RetentionInDays: 7}\n")
    path.write_text(text)
    done = nixecs("validate", str(path))
    assert done.returncode == 2, done
    assert "Traceback" not in done.stderr
    line = line_of(text, "ApiLogGrup")
    column = text.splitlines()[line - 1].index("ApiLogGrup") + 1
    assert done.stderr.startswith(f"{path}:{line}:{column}: error[E160]: ")
    render = nixecs("render", str(path), "-o", str(tmp_path / "out"))
    assert render.returncode == 2 and f"{path}:{line}:{column}: error[E160]" in render.stderr
    assert not (tmp_path / "out" / "prod").exists()


def test_validate_reports_infra_key_errors_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yml"
    text = fleet_text("log_retention_days: 2\n", "root_volume: {type: gp3, iops: 100}\n")
    path.write_text(text)
    done = nixecs("validate", str(path))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert f"{path}:{line_of(text, 'log_retention_days')}:25: error[E107]" in done.stderr
    assert f"{path}:{line_of(text, 'root_volume')}:40: error[E107]" in done.stderr


@pytest.mark.cfnlint
def test_validate_lints_overridden_stacks_with_cfn_lint(tmp_path: Path) -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    require(cfn_lint.exists(), "cfn-lint is not installed in this environment")
    path = tmp_path / "fleet.yml"
    text = fleet_text(
        """\
        overrides:
          ApiLogGroup:
            Properties.RetentionInDays: 12
          WebLaunchTemplate:
            Properties.LaunchTemplateData.Monitoring.Enabled: true
        """
    )
    path.write_text(text)
    done = nixecs("validate", str(path))
    assert done.returncode == 2, done
    line = line_of(text, "Properties.RetentionInDays")
    column = text.splitlines()[line - 1].index("Properties.RetentionInDays") + 1
    assert done.stderr.startswith(f"{path}:{line}:{column}: error[E164]: cfn-lint E3030 "), (
        done.stderr
    )
    assert "(at Resources.ApiLogGroup.Properties.RetentionInDays)" in done.stderr
    # a valid override lints clean and validates
    path.write_text(text.replace("RetentionInDays: 12", "RetentionInDays: 14"))
    done = nixecs("validate", str(path))
    assert done.returncode == 0, done.stderr


@pytest.mark.cfnlint
def test_every_new_key_is_cfn_lint_clean(tmp_path: Path) -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    require(cfn_lint.exists(), "cfn-lint is not installed in this environment")
    key = "arn:aws:kms:eu-west-1:123456789012:key/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"
    text = fleet_text(
        f"container_insights: enhanced\nlog_retention_days: 545\nlog_kms_key: {key}\n",
        "root_volume: {size_gib: 100, type: io2, iops: 20000, kms_key: " + key + "}\n"
        "key_pair: ops\n",
    ).replace("us-east-1", "eu-west-1")
    path = tmp_path / "fleet.yml"
    path.write_text(text)
    out = tmp_path / "out"
    assert nixecs("render", str(path), "-o", str(out)).returncode == 0
    done = subprocess.run(
        [
            str(cfn_lint),
            "--format",
            "parseable",
            "--regions",
            "eu-west-1",
            "--include-checks",
            "I",
            "--",
            str(out / "prod" / "stack.yaml"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0 and done.stdout == "", done.stdout


SEGMENTS = ["Properties", "Tags", "0", "1", "7", "Key", "LogGroupName", "X", "DependsOn"]
VALUES = st.one_of(
    st.none(),
    st.integers(-5, 5),
    st.text(max_size=5),
    st.lists(st.integers(0, 3), max_size=2),
    st.dictionaries(st.sampled_from(["A", "Ref"]), st.integers(0, 3), max_size=2),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["ApiLogGroup", "Cluster", "WebLaunchTemplate", "Nope"]),
            st.lists(st.sampled_from(SEGMENTS), min_size=1, max_size=4),
            VALUES,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_random_overrides_end_in_a_stack_or_located_errors(
    entries: list[tuple[str, list[str], object]],
) -> None:
    """No override, however wrong, gives a traceback: a stack, or E1xx/E16x with positions."""
    overrides: dict[str, dict[str, object]] = {}
    for logical_id, segments, value in entries:
        overrides.setdefault(logical_id, {})[".".join(segments)] = value
    text = fleet_text("overrides: " + json.dumps(overrides) + "\n")
    try:
        render_fleet(parse(text, "fleet.yml"))
    except InvalidInput as error:
        for diagnostic in error.report.errors:
            assert diagnostic.code.startswith("E1") and diagnostic.location.line >= 1


def test_without_cfn_lint_validate_says_the_overrides_were_not_linted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aws_fixtures import run_cli
    from nixecs.cloudformation import lint

    monkeypatch.setattr(lint, "cfn_lint_command", lambda: None)
    path = tmp_path / "fleet.yml"
    path.write_text(fleet_text("overrides:\n  ApiLogGroup: {Properties.RetentionInDays: 12}\n"))
    result = run_cli(capsys, ["validate", str(path)])
    assert result.code == 0  # nothing else can judge the value then
    assert "overrides were applied but not linted: install cfn-lint" in result.err
    # and a fleet without overrides never mentions it
    path.write_text(fleet_text())
    assert "cfn-lint" not in run_cli(capsys, ["validate", str(path)]).err


def test_an_alias_bomb_inside_overrides_fails_at_once() -> None:
    """Issue 16 item 7: `overrides:` values are walked as trees (checked, copied into the
    template, dumped); a 2 KB document of nested aliases is refused by the same expanded-size
    budget as the rest of the file, in well under a second, with its position."""
    import time

    anchors = "".join(
        f"x{i}: &x{i} [" + ", ".join([f"*x{i - 1}"] * 9) + "]\n" for i in range(1, 12)
    )
    text = (
        "x0: &x0 [a, b, c, d, e, f, g, h, i]\n"
        + anchors
        + fleet_text(
            """\
        overrides:
          Cluster:
            Metadata.Bomb: *x11
        """
        )
    )
    assert len(text.encode()) < 2048
    start = time.process_time()
    found = errors(text)
    assert time.process_time() - start < 1.0
    assert found[0][2] == "E100"
