"""The fleet loader: YAML 1.2 semantics, and every error of a file with its position."""

from __future__ import annotations

import textwrap

import pytest

from conftest import EXAMPLES
from nixecs.diagnostics import InvalidInput
from nixecs.fleet import load_fleet, parse
from nixecs.fleet.yaml12 import YamlError, load

VALID = textwrap.dedent(
    """\
    version: 1
    region: us-east-1
    clusters:
      prod:
        subnets: [subnet-0a1b2c3d]
        security_groups: [sg-0a1b2c3d]
        groups:
          web:
            ami: ami-0123456789abcdef0
            instance_types: [m6i.large]
            capacity: {min: 1, max: 3}
        services:
          api:
            group: web
            image: nginx:1.27
            memory: 256
    """
)


def errors(text: str) -> list[tuple[int, int, str]]:
    """(line, column, code) of every error, in order."""
    with pytest.raises(InvalidInput) as caught:
        parse(text, "fleet.yml")
    return [(d.location.line, d.location.column, d.code) for d in caught.value.report.sorted()]


def messages(text: str) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        parse(text, "fleet.yml")
    return [d.format() for d in caught.value.report.sorted()]


def test_examples_load() -> None:
    fleet = load_fleet(EXAMPLES / "fleet.yml")
    web = fleet.group("prod/web")
    assert web.capacity.desired == 2 and web.drain is not None and web.drain.timeout == "15m"
    assert web.secrets["db-password"].parameter == "/prod/db/password"
    workers = fleet.group("prod/workers")
    assert workers.spot and workers.userdata == "nix" and workers.ecs.spot_draining
    assert workers.instance_types == ("c6i.large", "c5.large", "c6a.large")
    blog = load_fleet(EXAMPLES / "blog.yml")
    policy = blog.clusters["blog"].services["app"].scaling.step[0]  # type: ignore[union-attr]
    assert (policy.alarm.threshold, policy.alarm.comparison, policy.alarm.period) == (80, ">=", 300)
    assert [(s.lower, s.upper, s.change) for s in policy.steps] == [(0, None, 2), (None, 0, -1)]


def test_valid_minimal_fleet_defaults() -> None:
    fleet = parse(VALID, "fleet.yml")
    web = fleet.group("prod/web")
    assert web.capacity.desired == 1  # desired defaults to min
    assert web.userdata == "settings" and web.host == "ecs-node" and web.hop_limit == 1
    assert web.ecs.log_level == "info" and web.ecs.spot_draining is False


def test_yaml_1_2_semantics() -> None:
    document = load(
        "a: no\nb: 0755\nc: 0o17\nd: yes\ne: ~\nf: 1e3\ng: on\nh: 0x1F\ni: !!str 12\n", "x.yml"
    )
    assert document.value == {
        "a": "no",
        "b": 755,
        "c": 15,
        "d": "yes",
        "e": None,
        "f": 1000.0,
        "g": "on",
        "h": 31,
        "i": "12",
    }


def test_positions_are_one_based_line_and_column() -> None:
    document = load("a:\n  b: [1, 2]\n", "x.yml")
    assert str(document.locate(("a", "b", 1))) == "x.yml:2:10"
    assert str(document.locate(("a", "b"), key=True)) == "x.yml:2:3"
    assert str(document.locate(("a", "missing"))) == "x.yml:2:3"  # nearest enclosing value


def test_all_errors_of_a_file_are_reported_at_once_with_positions() -> None:
    text = (
        VALID.replace("region: us-east-1", "region: us-east-1\nbogus: 1")
        .replace("capacity: {min: 1, max: 3}", "capacity: {min: 4, max: 3}\n        spot: maybe")
        .replace("memory: 256", "memory: '256'\n        cpu: -1")
    )
    assert errors(text) == [
        (3, 1, "E101"),
        (12, 25, "E109"),
        (13, 15, "E103"),
        (18, 17, "E103"),
        (19, 14, "E107"),
    ]


def test_unknown_key_lists_allowed_keys() -> None:
    text = VALID.replace("ami:", "amii: x\n        ami:")
    (line,) = messages(text)
    assert line.startswith("fleet.yml:9:9: error[E101]: unknown key 'amii' (allowed: host, ami,")


def test_duplicate_keys_are_errors_with_both_positions() -> None:
    text = VALID.replace("    version: 1", "").replace(
        "region: us-east-1", "region: us-east-1\nregion: eu-west-1"
    )
    assert messages(text) == [
        "fleet.yml:3:1: error[E102]: duplicate key 'region' (first written at line 2)"
    ]


def test_missing_fields_point_at_the_enclosing_mapping() -> None:
    text = VALID.replace("        image: nginx:1.27\n", "")
    assert messages(text) == ["fleet.yml:14:9: error[E104]: missing required key 'image'"]


@pytest.mark.parametrize(
    ("old", "new", "code"),
    [
        ("  prod:", "  prod cluster:", "E105"),
        ("group: web", "group: '-web'", "E108"),  # the reference alone is wrong
        ("      web:", "      -web:\n", "E105"),  # the name alone is wrong (no follow-on E108)
        (
            "capacity: {min: 1, max: 3}",
            "capacity: {min: 1, max: 3}\n        drain: {timeout: 15 minutes}",
            "E106",
        ),
        (
            "capacity: {min: 1, max: 3}",
            "capacity: {min: 1, max: 3}\n        drain: {timeout: 15}",
            "E106",
        ),
        (
            "capacity: {min: 1, max: 3}",
            "capacity: {min: 1, max: 3}\n        ecs: {task_cleanup_wait: 3d}",
            "E106",
        ),
        ("group: web", "group: db", "E108"),
        ("capacity: {min: 1, max: 3}", "capacity: {min: 1, max: 3, desired: 5}", "E109"),
        ("capacity: {min: 1, max: 3}", "capacity: {min: 1, max: 3}\n        nixos: '{ }'", "E112"),
        (
            "capacity: {min: 1, max: 3}",
            "capacity: {min: 1, max: 3}\n        userdata: cloud-init",
            "E107",
        ),
        ("version: 1", "version: 2", "E107"),
        ("instance_types: [m6i.large]", "instance_types: []", "E107"),
        (
            "capacity: {min: 1, max: 3}",
            "capacity: {min: 1, max: 3}\n        secrets: {x: {parameter: /a, mode: 0400}}",
            "E103",
        ),
        (
            "capacity: {min: 1, max: 3}",
            "capacity: {min: 1, max: 3}\n        secrets: {../x: {parameter: /a}}",
            "E105",
        ),
    ],
)
def test_each_kind_of_error_has_its_code(old: str, new: str, code: str) -> None:
    assert old in VALID
    text = VALID.replace(old, new.rstrip("\n"))
    if new.endswith("\n"):
        text = text.replace("group: web", "group: '-web'")
    found = errors(text)
    assert [c for _, _, c in found] == [code], found


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: [1, 2\n", (2, 1)),
        ("a: b: c\n", (1, 5)),
        ("\tx: 1\n", (1, 1)),
        ("a: &x 1\nb: *y\n", (2, 4)),
        ("a: !Ref x\n", (1, 4)),
        ("<<: {a: 1}\n", (1, 1)),
        ("--- 1\n--- 2\n", (2, 1)),
    ],
)
def test_yaml_syntax_errors_carry_a_position(text: str, expected: tuple[int, int]) -> None:
    with pytest.raises(YamlError) as caught:
        load(text, "x.yml")
    assert (caught.value.line, caught.value.column) == expected


def test_non_utf8_and_nul_are_located() -> None:
    with pytest.raises(YamlError) as caught:
        load(b"a: 1\nb: \xff\n", "x.yml")
    assert (caught.value.line, caught.value.column) == (2, 4)
    with pytest.raises(YamlError) as caught:
        load("a: 1\nbb: \x00\n", "x.yml")
    assert (caught.value.line, caught.value.column) == (2, 5)


def test_alias_bombs_do_not_expand() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [
        f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]"
        for i in range(1, 30)
    ]
    # 8**29 leaves if expanded: construction shares the anchored values, and the expanded
    # size is measured (memoised), so the refusal is immediate, at the first anchor past the
    # budget (issue 16 item 7: whatever walks the value later would expand it).
    with pytest.raises(YamlError, match="aliases expand the document beyond") as caught:
        load("\n".join(lines) + "\n", "bomb.yml")
    assert caught.value.line == 7  # a6 (1 + 8 × 365,129 nodes) is the first past the budget
    assert errors("\n".join(lines) + "\n")[0][2] == "E100"
    # Aliases within the budget are fine, and shared.
    document = load("a: &a [1, 2]\nb: [*a, *a]\n", "ok.yml")
    assert document.value == {"a": [1, 2], "b": [[1, 2], [1, 2]]}


def test_unreadable_file_is_e100(tmp_path: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        load_fleet("/nonexistent/fleet.yml")
    assert caught.value.report.errors[0].code == "E100"


def test_fleet_not_a_mapping() -> None:
    assert errors("- 1\n- 2\n") == [(1, 1, "E103")]
    assert errors("") == [(1, 1, "E103")]


@pytest.mark.parametrize(
    ("escape", "expected"),
    [
        ("\\0", (12, 28, "E110")),
        ("\\x00", (12, 28, "E110")),
        ("\\ud800", (12, 32, "E100")),
    ],  # libyaml refuses a lone surrogate itself
)
def test_strings_that_cannot_be_represented_are_refused(
    escape: str, expected: tuple[int, int, str]
) -> None:
    text = VALID.replace("region: us-east-1", "region: us-east-1").replace(
        "capacity: {min: 1, max: 3}",
        f'capacity: {{min: 1, max: 3}}\n        ecs: {{tags: {{team: "a{escape}b"}}}}',
    )
    assert errors(text) == [expected]
