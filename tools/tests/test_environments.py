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
| a finding of one environment at the fleet's text  | validate names the environment it is in        |
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


def test_a_misspelt_name_in_set_is_told_it_adds_an_entry(tmp_path: Path) -> None:
    """`set:` adds what the fleet does not have: `webb:` for `web:` is a new group missing its
    required keys, said so at the misspelt name; a new entry unlike any is left as it is."""
    text = (FLEET + ENVIRONMENTS).replace(
        "            web: {capacity: {min: 0, max: 2}}",
        "            webb: {capacity: {min: 0, max: 2}}",
    )
    errors = _errors(_write(tmp_path, text), "staging")
    line = _line_of(text, "webb:")
    assert errors == [
        f"{line}:E104:missing required key {key!r}; the environment adds 'webb' as a new entry "
        "beside 'web' of the fleet: to change that one, write its name ('web') under set:"
        for key in ("ami", "instance_types")
    ], errors
    other = text.replace("webb:", "batch:")
    assert all("adds 'batch'" not in e for e in _errors(_write(tmp_path, other), "staging"))


def test_env_on_a_file_without_environments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NIXECS_ENV", raising=False)
    errors = _errors(_write(tmp_path, FLEET), "staging")
    assert errors == ["1:E169:--env staging: this fleet file declares no environments: drop --env"]
    # Chosen by NIXECS_ENV (easily left set in a shell): the message says so.
    monkeypatch.setenv("NIXECS_ENV", "staging")
    errors = _errors(_write(tmp_path, FLEET), "staging")
    assert errors == [
        "1:E169:NIXECS_ENV=staging: this fleet file declares no environments: unset NIXECS_ENV"
    ]


def test_validate_checks_every_environment_and_reports_each_error_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _write(tmp_path, FLEET + ENVIRONMENTS)
    ok = run_cli(capsys, ["validate", str(path)])
    assert ok.code == 0, ok.err
    assert "valid in environments staging, production" in ok.err + ok.out
    answer = run_cli(capsys, ["--output", "json", "validate", str(path)]).json()
    assert answer["valid"] and answer["environments"] == ["staging", "production"]
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


def test_a_finding_of_some_environments_names_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A rule between a key an environment sets and one it does not is located at the
    fleet's own text (here the load balancer, given the one subnet staging sets): without
    --env, the finding says which environment has it; one every environment has does not."""
    text = (
        (FLEET + ENVIRONMENTS)
        .replace(
            "    subnets: [subnet-0a1b2c3d]\n    security_groups: [sg-0a1b2c3d]\n",
            "    subnets: [subnet-0a1b2c3d, subnet-1b2c3d4e]\n    security_groups: [sg-0a1b2c3d]\n"
            "    load_balancer: {vpc: vpc-0a1b2c3d, security_groups: [sg-1b2c3d4e], http: true}\n",
        )
        .replace(
            "      clusters:\n        prod:\n",
            "      clusters:\n        prod:\n          subnets: [subnet-0a1b2c3d]\n",
        )
    )
    assert "load_balancer:" in text and "          subnets: [subnet-0a1b2c3d]" in text
    text = text.replace(
        "        memory: 512\n        scaling:",
        "        memory: 512\n        desired: 3\n        scaling:",
    )
    path = _write(tmp_path, text)
    every = run_cli(capsys, ["validate", str(path)])
    assert every.code == 2
    lines = [line for line in every.err.splitlines() if "[E159]" in line or "[W204]" in line]
    balancer = _line_of(text, "load_balancer:")
    assert lines == [
        f"{path}:{balancer}:20: error[E159]: an Application Load Balancer needs at least two "
        "subnets, in two Availability Zones: the cluster has one; give the load balancer its "
        "own `subnets:` (in environment staging)",
        *[line for line in lines if "[W204]" in line],
    ], every.err
    # W204 (a desired beside scaling) is in both environments: not told apart.
    assert len(lines) == 2 and "(in environment" not in lines[1], every.err
    alone = run_cli(capsys, ["--env", "staging", "validate", str(path)])
    assert alone.code == 2 and "[E159]" in alone.err and "(in environment" not in alone.err


def test_a_service_named_as_the_file_writes_it_is_told_its_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --env, a cluster's name carries the environment's prefix (`staging-prod`), which
    the file does not show: CLUSTER/SERVICE as written there is refused naming the names.
    And `replay --against` a fleet without environments reads that one as it is."""
    path = _write(tmp_path, FLEET + ENVIRONMENTS)
    for command in ("simulate", "replay"):
        wrong = run_cli(capsys, ["--env", "staging", "scaling", command, str(path), "prod/bananas"])
        assert wrong.code == 2
        assert (
            f"no service with scaling named 'prod/bananas' in {path} (its scaled services: "
            "staging-prod/bananas)" in " ".join(wrong.err.split())
        ), wrong.err
    right = run_cli(
        capsys, ["--env", "staging", "scaling", "simulate", str(path), "staging-prod/bananas"]
    )
    assert right.code == 0, right.err
    # --env is the replayed fleet's: one to compare with that has no environments is read as is.
    compared = run_cli(
        capsys,
        [
            "--env", "staging", "scaling", "replay", str(path), "staging-prod/bananas",
            "--trace", str(EXAMPLES / "load-trace.csv"),
            "--against", f"{EXAMPLES / 'blog.yml'}:blog/app",
        ],
    )  # fmt: skip
    assert compared.code == 0, compared.err
    assert "blog.yml blog/app:" in compared.out


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
    url = ["--endpoint-url", moto.url]
    # status --fleet acts in the environment's region, never silently in AWS_REGION's.
    with monkeypatch.context() as shell:
        shell.setenv("AWS_REGION", "eu-west-1")
        elsewhere = run_cli(capsys, [*url, "--env", "production", "status", "--fleet", str(path)])
    assert elsewhere.code == 2 and "AWS_REGION is eu-west-1" in elsewhere.err, elsewhere.err
    # --fleet alone destroys no deployed cluster, and says how to name them.
    nothing = run_cli(capsys, [*url, "--env", "staging", "destroy", "--fleet", str(path), "--yes"])
    assert nothing.code == 0
    assert (
        f"nothing to destroy (name the clusters to destroy: nixecs --env staging destroy prod "
        f"--fleet {path})" in nothing.err
    ), nothing.err
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
