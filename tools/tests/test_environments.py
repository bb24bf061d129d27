"""Environments in one fleet file: `--env NAME` reads the file as that environment, errors
in what an environment sets are located at that value, `validate` without `--env` checks
them all, and two environments deployed into one account never touch each other.

Hostile cases and their outcomes:

| case                                              | outcome                                        |
|---------------------------------------------------|------------------------------------------------|
| a command without --env on a file with them       | E169 at `environments:`, naming them (exit 2)  |
| --env naming no environment                       | E169 listing the declared ones                 |
| --env on a file without environments              | E169                                           |
| an unknown key in an environment                  | E101 at that key (other keys go under set:)    |
| an environment setting `version` / `environments` | E101 at that key                               |
| a bad value an environment sets                   | the usual code, at the environment's line      |
| an environment name outside [a-z][a-z0-9-]{0,31}  | E107 at the name                               |
| `set:` that is not a mapping                      | E103                                           |
| `environments:` empty or not a mapping            | E103 at it, with or without --env; the JSON    |
|                                                   | Schema refuses it too                          |
| one environment invalid, the other valid          | validate: exit 2, the error once, located      |
| destroy of one environment                        | the other's stacks stand (ownership by env)    |
"""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from aws_fixtures import FLEET, deployable_fleet, moto_client, run_cli
from conftest import EXAMPLES, MotoServer
from nixecs.diagnostics import InvalidInput
from nixecs.fleet import environments_of, load_fleet
from nixecs.fleet.schema import json_schema

ENVIRONMENTS = """\
environments:
  staging:
    region: eu-west-1
    set:
      clusters:
        prod:
          groups:
            web: {capacity: {min: 0, max: 2}}
  production:
    name_prefix: live
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "fleet.yml"
    path.write_text(text)
    return path


def _line_of(text: str, needle: str) -> int:
    return next(n for n, line in enumerate(text.splitlines(), 1) if needle in line)


def _errors(path: Path, env: str | None) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        load_fleet(path, env)
    return [f"{d.location.line}:{d.code}:{d.message}" for d in caught.value.report.items]


def test_each_environment_is_the_file_with_its_changes(tmp_path: Path) -> None:
    path = _write(tmp_path, FLEET + ENVIRONMENTS)
    assert environments_of(path) == ["staging", "production"]
    staging = load_fleet(path, "staging")
    assert staging.region == "eu-west-1" and staging.environment == "staging"
    assert list(staging.clusters) == ["staging-prod"]  # name_prefix defaults to the env's name
    web = staging.clusters["staging-prod"].groups["web"]
    assert (web.capacity.min, web.capacity.max) == (0, 2)
    assert web.instance_types == ("m6i.large",)  # merged key by key: the rest is the fleet's
    production = load_fleet(path, "production")
    assert production.region == "us-east-1" and list(production.clusters) == ["live-prod"]
    assert production.clusters["live-prod"].groups["web"].capacity.max == 4
    # The identity every destructive call checks includes the environment.
    assert (staging.identity, production.identity) == ("staging/staging", "live/production")


def test_null_deletes_and_lists_are_replaced(tmp_path: Path) -> None:
    text = (
        (FLEET + ENVIRONMENTS)
        .replace(
            "            web: {capacity: {min: 0, max: 2}}",
            "            web: {capacity: {min: 0, max: 2}, instance_types: [t3.large]}",
        )
        .replace(
            "  production:\n",
            "  production:\n"
            "    set: {clusters: {prod: {services: {bananas: {scaling: ~, desired: 2}}}}}\n",
        )
    )
    path = _write(tmp_path, text)
    assert load_fleet(path, "staging").clusters["staging-prod"].groups["web"].instance_types == (
        "t3.large",
    )
    bananas = load_fleet(path, "production").clusters["live-prod"].services["bananas"]
    assert bananas.scaling is None and bananas.desired == 2


@pytest.mark.parametrize(
    ("env", "change", "needle", "code", "message"),
    [
        (None, None, "environments:", "E169", "declares environments (staging, production)"),
        (
            "nope",
            None,
            "environments:",
            "E169",
            "no such environment (declared: staging, production)",
        ),
        (
            "staging",
            ("    region: eu-west-1", "    region: eu-west-1\n    capacity: 3"),
            "capacity: 3",
            "E101",
            "other keys go under set:",
        ),
        (
            "staging",
            ("      clusters:", "      version: 2\n      clusters:"),
            "version: 2",
            "E101",
            "cannot set 'version'",
        ),
        ("staging", ("{min: 0, max: 2}", "{min: 0, max: -2}"), "max: -2}", "E107", ""),
        ("staging", ("  staging:", "  Staging:"), "Staging:", "E107", "must match"),
        ("staging", ("region: eu-west-1", "region: Europe"), "region: Europe", "E107", ""),
        (
            "production",
            ("name_prefix: live", "name_prefix: Live!"),
            "name_prefix: Live!",
            "E107",
            "",
        ),
        (
            "staging",
            ("    set:\n", "    set: [1]\n    other:\n"),
            "set: [1]",
            "E103",
            "set: must be a mapping",
        ),
    ],
    ids=[
        "no --env",
        "unknown env",
        "unknown key",
        "sets version",
        "bad value",
        "bad name",
        "bad region",
        "bad name prefix",
        "set not a mapping",
    ],
)
def test_hostile_environments_are_located(
    tmp_path: Path,
    env: str | None,
    change: tuple[str, str] | None,
    needle: str,
    code: str,
    message: str,
) -> None:
    text = FLEET + ENVIRONMENTS
    if change is not None:
        assert change[0] in text
        text = text.replace(change[0], change[1], 1)
    path = _write(tmp_path, text)
    errors = _errors(path, env)
    assert any(
        e.startswith(f"{_line_of(text, needle)}:{code}:") and message in e for e in errors
    ), errors


def test_env_on_a_file_without_environments(tmp_path: Path) -> None:
    errors = _errors(_write(tmp_path, FLEET), "staging")
    assert errors == ["1:E169:--env staging: this fleet file declares no environments"]


def test_validate_checks_every_environment_and_reports_each_error_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, FLEET + ENVIRONMENTS)
    ok = run_cli(capsys, ["validate", str(path)])
    assert ok.code == 0, ok.err
    assert "valid in environments staging, production" in ok.err + ok.out
    broken = tmp_path / "broken.yml"
    broken.write_text((FLEET + ENVIRONMENTS).replace("{min: 0, max: 2}", "{min: 0, max: -2}"))
    bad = run_cli(capsys, ["validate", str(broken)])
    assert bad.code == 2
    lines = [line for line in bad.err.splitlines() if "error[" in line]
    line = _line_of(broken.read_text(), "max: -2}")  # in staging's block
    assert len(lines) == 1 and lines[0].startswith(f"{broken}:{line}:"), bad.err
    # --env picks one: production is valid on its own.
    assert run_cli(capsys, ["--env", "production", "validate", str(broken)]).code == 0
    # ... and so do the other commands, which without it refuse.
    out = tmp_path / "out"
    assert run_cli(capsys, ["render", str(path), "-o", str(out)]).code == 2
    rendered = run_cli(capsys, ["render", str(path), "-o", str(out), "--env", "staging"])
    assert rendered.code == 0, rendered.err
    assert (out / "staging-prod" / "stack.yaml").is_file()


def test_the_example_and_the_json_schema(tmp_path: Path) -> None:
    example = EXAMPLES / "environments.yml"
    assert environments_of(example) == ["staging", "production"]
    assert load_fleet(example, "staging").region == "eu-west-1"
    assert list(load_fleet(example, "production").clusters) == ["prod-shop"]
    import yaml

    schema = json_schema()
    jsonschema.Draft202012Validator(schema).validate(yaml.safe_load(example.read_text()))
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate(
            {**yaml.safe_load(example.read_text()), "environments": {"Bad Name": {}}}
        )


@pytest.mark.parametrize(
    ("block", "code"),
    [("environments: {}\n", "E103"), ("environments: [staging]\n", "E103")],
    ids=["empty", "a list"],
)
def test_what_the_merge_refuses_the_json_schema_refuses(
    tmp_path: Path, block: str, code: str
) -> None:
    """`environments:` never reaches the loader (environments.select takes it out first), so
    tests/test_fleet_agreement.py does not try it: an empty or mistyped block, here."""
    import yaml

    text = FLEET + block
    errors = _errors(_write(tmp_path, text), None)
    assert errors[0].startswith(f"{_line_of(text, block.strip())}:{code}:"), errors
    refused = jsonschema.Draft202012Validator(json_schema()).iter_errors(yaml.safe_load(text))
    assert [list(e.absolute_path) for e in refused] == [["environments"]]


@pytest.mark.moto
def test_two_environments_share_an_account_without_touching_each_other(
    moto: MotoServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = deployable_fleet(
        tmp_path, monkeypatch, FLEET + ENVIRONMENTS.replace("    region: eu-west-1\n", "")
    )
    for env in ("staging", "production"):
        done = run_cli(
            capsys, ["--endpoint-url", moto.url, "--env", env, "deploy", str(path), "--yes"]
        )
        assert done.code == 0, done.err
    cfn = moto_client(moto.url, "cloudformation")
    tags = {
        s["StackName"]: {t["Key"]: t["Value"] for t in s.get("Tags", [])}
        for s in cfn.describe_stacks()["Stacks"]
    }
    assert tags["nixecs-staging-prod"]["nixecs:fleet"] == "staging/staging"
    assert tags["nixecs-live-prod"]["nixecs:fleet"] == "live/production"
    # Production's fleet cannot destroy staging's stack, nor the other way round ...
    refused = run_cli(
        capsys,
        [
            "--endpoint-url",
            moto.url,
            "--env",
            "production",
            "destroy",
            "staging-prod",
            "--fleet",
            str(path),
            "--yes",
        ],
    )
    assert refused.code == 2 and "staging/staging" in refused.err, refused.err
    # ... and destroying staging leaves production standing.
    gone = run_cli(
        capsys,
        [
            "--endpoint-url",
            moto.url,
            "--env",
            "staging",
            "destroy",
            "prod",
            "--fleet",
            str(path),
            "--yes",
        ],
    )
    assert gone.code == 0, gone.err
    live = {s["StackName"]: s["StackStatus"] for s in cfn.describe_stacks()["Stacks"]}
    assert live.get("nixecs-live-prod") == "CREATE_COMPLETE"
    assert live.get("nixecs-staging-prod", "DELETE_COMPLETE") == "DELETE_COMPLETE"
