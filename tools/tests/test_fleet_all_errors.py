"""Every error of a fleet file at once, and each once: the checks stage's rules on one service
or task (E171, E174, E182) are reported beside a loader error elsewhere in the file, not
hidden by it; a refused null (E103) is the one error of its key, not followed by the key
found missing or empty."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import pytest

from aws_fixtures import FLEET
from conftest import EXAMPLES
from nixecs.diagnostics import Diagnostic, InvalidInput
from nixecs.fleet.checks import check_fleet_file

WORKLOADS = (EXAMPLES / "workloads.yml").read_text()
# A loader error (E101) in another service than the rule's finding.
TYPO = ("        port: 9100\n", "        prot: 9100\n")


def _refused(tmp_path: Path, text: str, env: str | None = None) -> list[Diagnostic]:
    """The findings of `text` as a fleet file, which is refused."""
    path = tmp_path / "fleet.yml"
    path.write_text(text)
    with pytest.raises(InvalidInput) as caught:
        check_fleet_file(str(path), nix=False, env=env)
    return caught.value.report.sorted()


def _codes(tmp_path: Path, text: str, env: str | None = None) -> list[tuple[str, int]]:
    return [(d.code, d.location.line) for d in _refused(tmp_path, text, env)]


def _line(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.mark.parametrize(
    ("old", "new", "code", "below"),
    [
        ("{volume: cache, path: /var/cache/nginx}", "{volume: cache, path: /srv/media}", "E171", 0),
        ("cache: {docker: {}}", "cache: {docker: {autoprovision: true}}", "E174", 0),
        # located at the task's mapping, the line below its name
        ("      migrate:  #", "      files:  #", "E182", 1),
    ],
)
def test_a_rule_on_one_service_is_reported_with_a_loader_error(
    tmp_path: Path, old: str, new: str, code: str, below: int
) -> None:
    assert old in WORKLOADS and TYPO[0] in WORKLOADS
    text = WORKLOADS.replace(old, new, 1).replace(*TYPO, 1)
    at = _line(text, new) + below
    assert sorted(_codes(tmp_path, text)) == sorted([(code, at), ("E101", _line(text, "prot:"))])
    # alone, each is the one finding (the rule is the checks stage's)
    assert _codes(tmp_path, WORKLOADS.replace(old, new, 1)) == [(code, at)]


APPLES_IMAGE = "        image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/apples:1.0\n"
NULLS = [
    (FLEET, APPLES_IMAGE, "        image:\n"),
    (FLEET, "        memory: 512\n        desired: 1\n", "        memory:\n        desired: 1\n"),
    (FLEET, APPLES_IMAGE, "        containers:\n"),
    (FLEET, "        desired: 1\n", "        desired: 1\n        task_role: {statements: null}\n"),
    (FLEET, "    subnets: [subnet-0a1b2c3d]\n", "    subnets:\n"),
    (FLEET, "        instance_types: [m6i.large]\n", "        instance_types:\n"),
    (
        (EXAMPLES / "fleet.yml").read_text(),
        '          path_patterns: ["/*"]\n',
        "          path_patterns:\n",
    ),
]


@pytest.mark.parametrize(("base", "old", "new"), NULLS, ids=[n[2].strip() for n in NULLS])
def test_a_refused_null_is_one_error(tmp_path: Path, base: str, old: str, new: str) -> None:
    assert base.count(old) >= 1
    text = base.replace(old, new, 1)
    # the line written null: the one of `new` with nothing after its key, else its last
    lines = new.rstrip("\n").split("\n")
    null = next((line for line in lines if line.endswith(":")), lines[-1])
    at = next(n for n, line in enumerate(text.splitlines(), 1) if line == null)
    assert _codes(tmp_path, text) == [("E103", at)]


def test_a_required_key_deleted_by_an_environment_is_located_at_its_set_entry(
    tmp_path: Path,
) -> None:
    base = (EXAMPLES / "environments.yml").read_text()
    old = "          subnets: [subnet-2c3d4e5f, subnet-3d4e5f6a]\n"
    assert old in base
    text = base.replace(old, "          subnets:\n", 1)
    assert _codes(tmp_path, text, "staging") == [("E104", _line(text, "          subnets:"))]
    # an optional key a null deletes is simply gone (the group's `spot:` default)
    optional = base.replace(old, old + "          kms_key: null\n", 1)
    path = tmp_path / "optional.yml"
    path.write_text(optional)
    fleet, _ = check_fleet_file(str(path), nix=False, env="staging")
    assert fleet.clusters["staging-shop"].kms_key is None


APP = "        containers:\n          app:\n            image: nginx:1.27\n            memory: 64\n"
NULL_SAYS = [
    (APPLES_IMAGE, "        containers:\n", "a non-empty mapping of container names to containers"),
    (
        "        capacity: {min: 1, max: 4}\n",
        "        capacity: {min: 1, max: 4}\n        drain: {timeout: null}\n",
        "a duration such as 30s, 15m or 3h",
    ),
    (
        "        desired: 1\n",
        "        desired: 1\n        task_role: {statements: null}\n",
        "a non-empty list of statements",
    ),
    (APPLES_IMAGE, "        image:\n", "an image reference or a mapping {ecr, tag | digest}"),
    (
        "        ami: ami-0123456789abcdef0\n",
        "        ami:\n",
        "an AMI id or a mapping {host, rev}",
    ),
    (
        "        group: web\n        image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/apples",
        "        group:\n        image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/apples",
        "a group name or a list of {group, base, weight}",
    ),
    ("          min: 1\n", "          min: 1\n          target_tracking:\n", "a target"),
    ("        desired: 1\n", "        desired: 1\n        environment:\n", "a mapping of strings"),
    (
        "        desired: 1\n",
        "        desired: 1\n        task_role: {statements: [{resources: '*', actions: null}]}\n",
        "an action or a non-empty list of them",
    ),
    (APPLES_IMAGE, APP + "            ports:\n", "a list of ports"),
    (
        APPLES_IMAGE,
        APP + "            linux: {capabilities: {add: null}}\n",
        "a list of capabilities",
    ),
    (
        APPLES_IMAGE,
        APP + "            depends_on:\n",
        "a mapping of container names to conditions (START, COMPLETE, SUCCESS, HEALTHY)",
    ),
]


@pytest.mark.parametrize(("old", "new", "says"), NULL_SAYS, ids=[n[2] for n in NULL_SAYS])
def test_a_null_is_told_what_its_key_takes(tmp_path: Path, old: str, new: str, says: str) -> None:
    assert old in FLEET
    found = _refused(tmp_path, FLEET.replace(old, new, 1))
    nulls = [d.message for d in found if "got null" in d.message]
    assert len(nulls) == 1 and nulls[0].startswith(f"expected {says}"), nulls


@pytest.mark.parametrize(
    ("old", "new", "says"),
    [
        (
            "capacity: {min: 1, max: 4}",
            "capacity: {min: 1, max: 4}\n        drain: {timeout: true}",
            "bad duration True: write",
        ),
        (
            "capacity: {min: 1, max: 4}",
            "capacity: {min: 1, max: 4}\n        ecs: {task_cleanup_wait: [1h]}",
            "bad duration list: write",
        ),
    ],
)
def test_a_duration_of_another_type_is_a_bad_duration(
    tmp_path: Path, old: str, new: str, says: str
) -> None:
    """E106 as the host's own settings parser says it (settings.check_duration)."""
    found = _refused(tmp_path, FLEET.replace(old, new, 1))
    assert [(d.code, d.message[: len(says)]) for d in found] == [("E106", says)]


def _keys_of(value: object, path: tuple[object, ...] = ()) -> Iterator[tuple[object, ...]]:
    """The path of every mapping key in `value`, depth first."""
    if isinstance(value, dict):
        for key, child in value.items():
            yield (*path, key)
            yield from _keys_of(child, (*path, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            yield from _keys_of(child, (*path, index))


# Fleets with `environments:` are left out: there a key's null in an override deletes it
# (tests/test_environments.py), and a base key an environment sets is not the file's value.
VALID_EXAMPLES = sorted(
    p
    for p in EXAMPLES.glob("*.yml")
    if "clusters:" in (text := p.read_text(encoding="utf-8")) and "\nenvironments:" not in text
)


@pytest.mark.parametrize("wrong", [None, [[7]]], ids=["null", "a list of a list"])
@pytest.mark.parametrize("example", VALID_EXAMPLES, ids=[p.name for p in VALID_EXAMPLES])
def test_every_key_written_wrong_is_its_one_error(
    tmp_path: Path, example: Path, wrong: object
) -> None:
    """Each key of each example, written null (what `key:` with nothing after it is) or as
    a value no key takes, in turn: exactly one finding (for a null, E103 naming the key) —
    not also the rules that read it with others (a redirect without `https:`, a
    volume of no kind, an alarm section with nothing to watch, references to a refused
    `groups:`, a port's protocol defaulted and found twice, a listener's TLS keys without
    its protocol, ...), which this sweep found before."""
    import yaml

    base = yaml.safe_load(example.read_text(encoding="utf-8"))
    env = None
    check_fleet_file(str(example), nix=False)  # valid as written
    extra: list[str] = []
    count = 0
    for path in _keys_of(base):
        edited = copy.deepcopy(base)
        parent = edited
        for step in path[:-1]:
            parent = parent[step]
        if parent[path[-1]] is None:
            continue
        parent[path[-1]] = copy.deepcopy(wrong)
        count += 1
        target = tmp_path / "fleet.yml"
        target.write_text(yaml.safe_dump(edited, sort_keys=False), encoding="utf-8")
        try:
            check_fleet_file(str(target), nix=False, env=env)
        except InvalidInput as refused:
            found = [(d.code, d.message) for d in refused.report.sorted()]
            null_told = found and found[0][0] == "E103" and f"`{path[-1]}:`" in found[0][1]
            if len(found) == 1 and (wrong is not None or null_told):
                continue
            extra.append(f"{'.'.join(map(str, path))}: {found}")
        else:
            extra.append(f"{'.'.join(map(str, path))}: accepted")
    assert count > 20 and not extra, "\n".join(extra)
