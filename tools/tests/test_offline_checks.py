"""Issue 9, items 14-16: offline checks in `validate` (E123-E129, from the generated table),
regions that differ from the fleet's (refused unless --region is written), and global
options after the subcommand."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aws_fixtures import FLEET, run_cli, write_fleet
from conftest import EXAMPLES, example_fleets
from nixecs.diagnostics import OperationalFailure
from nixecs.fleet import aws_rules, parse
from nixecs.fleet.aws_rules import REFERENCE_RE, tables

TOOLS = Path(__file__).parents[1]

BASE = """\
version: 1
region: {region}
flake: github:acme/infra
clusters:
  c:
    subnets: [subnet-0a1b2c3d]
    security_groups: [sg-0a1b2c3d]
    groups:
      g:
        ami: ami-0123456789abcdef0
        instance_types: {types}
        capacity: {{min: 0, max: 2}}
        ecs: {{reserved_memory_mib: 256}}
        drain: {{timeout: {drain}}}
    services:
      s:
        group: g
        image: {image}
        cpu: {cpu}
        memory: {memory}
"""


def found(
    *,
    region: str = "us-east-1",
    types: str = "[m6i.large]",
    drain: str = "5m",
    image: str = "nginx:1.27",
    cpu: int = 256,
    memory: int = 512,
) -> list[tuple[str, int, str]]:
    text = BASE.format(region=region, types=types, drain=drain, image=image, cpu=cpu, memory=memory)
    fleet = parse(text, "f.yml")
    return sorted((d.code, d.location.line, d.message) for d in aws_rules.check_fleet(fleet))


def codes(**kwargs: object) -> list[str]:
    return [code for code, _, _ in found(**kwargs)]  # type: ignore[arg-type]


def test_the_defaults_and_the_examples_pass() -> None:
    assert found() == []
    for path, env in example_fleets():
        fleet = parse(path.read_text(), str(path), env)
        assert aws_rules.check_fleet(fleet) == [], path


def test_unknown_instance_type_with_did_you_mean() -> None:
    [(code, line, message)] = found(types="[m6i.lage]")
    assert code == "E123" and line == 11 and "did you mean 'm6i.large'?" in message


def test_instance_type_not_offered_in_the_region() -> None:
    data = tables()
    # A type that exists but that one region of the table does not offer.
    region, missing = next(
        (r, t)
        for r in sorted(data.offered)
        if r in data.regions
        for t in ("u-12tb1.112xlarge", "p5.48xlarge", "trn1.32xlarge", "mac2.metal")
        if t in data.types and t not in data.offered[r]
    )
    [(code, _, message)] = found(region=region, types=f"[{missing}]", memory=256)
    assert code == "E124" and region in message


def test_mixed_architectures_in_one_group() -> None:
    [(code, _, message)] = found(types="[m6i.large, m7g.large]")
    assert code == "E129" and "arm64" in message


@pytest.mark.parametrize(
    ("cpu", "memory", "where"),
    [(256, 8192 - 256 + 1, "memory"), (4096, 512, "cpu")],
)
def test_task_that_fits_no_instance_type(cpu: int, memory: int, where: str) -> None:
    [(code, line, message)] = found(cpu=cpu, memory=memory)
    assert code == "E125" and "m6i.large: 2048 cpu units, 7936 MiB" in message
    text = BASE.format(
        region="us-east-1", types="[m6i.large]", drain="5m", image="x", cpu=cpu, memory=memory
    )
    assert text.splitlines()[line - 1].strip().startswith(f"{where}:")
    # One larger type in the group is enough.
    assert codes(cpu=cpu, memory=memory, types="[m6i.large, m6i.2xlarge]") == []
    # The boundary: exactly the nominal memory less the reservation fits.
    assert codes(memory=8192 - 256) == []


@pytest.mark.parametrize(
    "image",
    [
        "nginx",
        "nginx:1.27",
        "library/nginx:latest",
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/bananas:1.0",
        "localhost:5000/app",
        "[::1]:5000/app:tag",
        "registry.example.com/a/b/c@sha256:" + "a" * 64,
        "ghcr.io/o/r:v1@sha256:" + "0" * 64,
    ],
)
def test_valid_image_references(image: str) -> None:
    assert REFERENCE_RE.fullmatch(image), image
    assert codes(image=f'"{image}"') == []


@pytest.mark.parametrize(
    "image",
    [
        "Nginx",  # upper case in the repository
        "nginx:",  # empty tag
        "nginx:-bad",  # a tag must start with a word character
        "nginx@sha256:abc",  # digest too short
        "a//b",
        "registry:5000:1.0/app",
    ],
)
def test_invalid_image_references(image: str) -> None:
    [(code, line, message)] = found(image=f'"{image}"')
    assert code == "E126" and line == 18, message


def test_region_must_exist() -> None:
    [(code, line, message)] = found(region="us-east-7")
    assert code == "E127" and line == 2
    [(code, _, message)] = found(region="eu-wset-1")
    assert "did you mean 'eu-west-1'?" in message
    assert codes(region="cn-north-1", types="[m5.large]") == []  # other partitions are known


def test_drain_timeout_must_be_above_zero() -> None:
    [(code, line, _)] = found(drain="0s")
    assert code == "E128" and line == 14
    assert codes(drain="1s") == []


def test_validate_reports_them_located(tmp_path: Path) -> None:
    path = tmp_path / "f.yml"
    path.write_text(
        BASE.format(
            region="us-east-1", types="[m6i.lage]", drain="0m", image="Bad", cpu=256, memory=512
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "nixecs", "validate", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert re.findall(r"error\[(E\d+)\]", result.stderr) == ["E123", "E128", "E126"]
    assert f"{path}:11:" in result.stderr


# The generator (beside the package, not in it) reads cfn-lint's and moto's data.
@pytest.mark.cfnlint
@pytest.mark.moto
def test_the_table_is_what_the_generator_writes(tmp_path: Path) -> None:
    """The committed table comes from gen_aws_tables.py; with the same source versions
    installed, regenerating gives the same bytes."""
    committed = json.loads((TOOLS / "src/nixecs/fleet/aws_tables.json").read_text())
    from importlib import metadata

    installed = {name: metadata.version(name) for name in committed["sources"]}
    out = tmp_path / "aws_tables.json"
    subprocess.run([sys.executable, str(TOOLS / "gen_aws_tables.py"), str(out)], check=True)
    fresh = json.loads(out.read_text())
    assert fresh["sources"] == installed
    if installed == committed["sources"]:
        assert out.read_bytes() == (TOOLS / "src/nixecs/fleet/aws_tables.json").read_bytes()
    else:  # newer sources: regions and types may only have been added
        assert set(committed["regions"]["aws"]) <= set(fresh["regions"]["aws"])


# --- item 16: global options after the subcommand -----------------------------------------


def test_global_options_after_the_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    fleet = str(EXAMPLES / "fleet.yml")
    before = run_cli(capsys, ["--output", "json", "validate", fleet])
    after = run_cli(capsys, ["validate", fleet, "--output", "json"])
    assert before.code == after.code == 0
    assert json.loads(after.out) == json.loads(before.out)
    assert json.loads(after.out)["valid"] is True
    # After the subcommand wins over before it.
    both = run_cli(capsys, ["--output", "json", "validate", "--output", "text", fleet])
    assert both.out.startswith(f"{fleet}: valid")
    # Nested groups too, and a bad value is a usage error (exit 2).
    bad = run_cli(capsys, ["scaling", "check", fleet, "--output", "yaml"])
    assert bad.code == 2 and "yaml" in bad.err


def test_global_options_reach_the_session(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from nixecs.aws import session as session_module

    seen: list[tuple[str | None, str | None, str | None]] = []

    def record(cls: type, g: object, region: str | None = None) -> object:
        seen.append((g.region, g.endpoint_url, g.profile))  # type: ignore[attr-defined]
        raise OperationalFailure("stop here")

    monkeypatch.setattr(session_module.Session, "from_globals", classmethod(record))
    monkeypatch.delenv("AWS_REGION", raising=False)
    run_cli(
        capsys,
        [
            "status",
            "prod",
            "--region",
            "eu-west-1",
            "--endpoint-url",
            "http://127.0.0.1:1",
            "--profile",
            "p",
            "-v",
        ],
    )
    assert seen == [("eu-west-1", "http://127.0.0.1:1", "p")]


# --- item 15: regions -----------------------------------------------------------------------


@pytest.mark.moto
def test_deploy_refuses_a_region_from_the_environment_that_differs(
    moto: object,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from aws_fixtures import no_preflight

    no_preflight(monkeypatch)  # the made-up subnets and AMI would stop deploy before the region
    fleet = write_fleet(tmp_path, FLEET)  # region: us-east-1
    url = moto.url  # type: ignore[attr-defined]
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    refused = run_cli(capsys, ["--endpoint-url", url, "deploy", str(fleet), "--yes"])
    assert refused.code == 2
    assert "AWS_REGION is eu-west-1" in refused.err and "--region eu-west-1" in refused.err
    assert "Traceback" not in refused.err
    # Written on the command line (before or after the subcommand) it is a choice.
    from nixecs.aws import commands as aws_commands
    from nixecs.aws import deploy as deploy_module

    regions: list[str] = []

    def fake_deploy(session: object, *args: object, **kwargs: object) -> object:
        regions.append(session.region_name())  # type: ignore[attr-defined]
        raise OperationalFailure("stop here")

    monkeypatch.setattr(deploy_module, "deploy_cluster", fake_deploy)
    ok = run_cli(
        capsys, ["--endpoint-url", url, "deploy", str(fleet), "--yes", "--region", "eu-west-1"]
    )
    assert regions == ["eu-west-1"] and "region eu-west-1" in ok.err
    # The same region as the fleet's: no question.
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    run_cli(capsys, ["--endpoint-url", url, "deploy", str(fleet), "--yes"])
    assert regions == ["eu-west-1", "us-east-1"]
    assert aws_commands is not None


@pytest.mark.moto
def test_status_names_its_region(
    moto: object, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    url = moto.url  # type: ignore[attr-defined]
    result = run_cli(capsys, ["status", "--endpoint-url", url, "--region", "eu-west-1"])
    assert result.code == 0 and result.out.splitlines()[0] == "region eu-west-1"


# --- issue 22, item 4: GPU groups and containers ------------------------------------------


def gpu_fleet(types: str, gpu: int, group_gpu: bool) -> str:
    """BASE with its container asking for `gpu` GPUs (the `containers:` form), on a group
    with or without `gpu: true`."""
    text = BASE.format(
        region="us-east-1", types=types, drain="5m", image="nginx:1.27", cpu=256, memory=1024
    )
    text = text.replace(
        "        image: nginx:1.27\n",
        f"        containers:\n          main:\n            image: nginx:1.27\n            gpu: {gpu}\n",
    )
    if group_gpu:
        text = text.replace(
            "        drain: {timeout: 5m}\n", "        drain: {timeout: 5m}\n        gpu: true\n"
        )
    return text


def gpu_found(types: str, gpu: int, group_gpu: bool) -> list[tuple[str, str]]:
    fleet = parse(gpu_fleet(types, gpu, group_gpu), "f.yml")
    return [(d.code, d.message) for d in aws_rules.check_fleet(fleet)]


def test_the_table_counts_nvidia_gpus() -> None:
    # DescribeInstanceTypes as moto recorded it: g4dn.xlarge one T4, p4d.24xlarge eight A100.
    data = tables()
    assert data.types["g4dn.xlarge"].gpus == 1 and data.types["p4d.24xlarge"].gpus == 8
    assert data.types["m6i.large"].gpus == 0


def test_a_gpu_task_on_a_gpu_group_passes_and_reserves_gpus() -> None:
    assert gpu_found("[g4dn.xlarge, g6.xlarge]", 1, group_gpu=True) == []
    from nixecs.cloudformation import build_stack

    fleet = parse(gpu_fleet("[g4dn.12xlarge]", 2, group_gpu=True), "f.yml")
    resources = build_stack(fleet, "c", {"g": b"#x\n"})["Resources"]
    [definition] = [r for r in resources.values() if r["Type"] == "AWS::ECS::TaskDefinition"]
    [container] = definition["Properties"]["ContainerDefinitions"]
    assert container["ResourceRequirements"] == [{"Type": "GPU", "Value": "2"}]


def test_gpu_groups_need_gpu_instance_types() -> None:
    [(code, message)] = gpu_found("[g4dn.xlarge, m6i.large]", 1, group_gpu=True)
    assert code == "E166" and "'m6i.large' has no NVIDIA GPU" in message


def test_gpu_containers_need_a_gpu_group_with_enough_gpus() -> None:
    [(code, message)] = gpu_found("[g4dn.xlarge]", 1, group_gpu=False)
    assert code == "E167" and "no `gpu: true`" in message
    [(code, message)] = gpu_found("[g4dn.xlarge, g4dn.12xlarge]", 5, group_gpu=True)
    assert code == "E167" and "asks for 5 GPUs" in message and "at most 4" in message


@pytest.mark.parametrize("name", ["ECS_ENABLE_GPU_SUPPORT", "ECS_NVIDIA_RUNTIME"])
def test_gpu_agent_variables_belong_to_the_gpu_host(name: str) -> None:
    """On a `gpu: true` group the host's nixecs.ecs.gpu.enable sets them (E119, as every
    variable the host sets); elsewhere the host has no GPU support (E165), and the message
    names the supported way."""
    from nixecs.diagnostics import InvalidInput

    def codes(group_gpu: bool) -> list[tuple[str, str]]:
        text = gpu_fleet("[g4dn.xlarge]", 1, group_gpu).replace(
            "ecs: {reserved_memory_mib: 256}",
            f"ecs: {{reserved_memory_mib: 256, extra: {{{name}: 'true'}}}}",
        )
        with pytest.raises(InvalidInput) as caught:
            parse(text, "f.yml")
        return [(d.code, d.message) for d in caught.value.report.sorted()]

    [(code, message)] = codes(group_gpu=True)
    assert code == "E119" and "nixecs.ecs.gpu.enable" in message, message
    [(code, message)] = codes(group_gpu=False)
    assert code == "E165" and "`gpu: true`" in message and "nixecs.ecs.gpu.enable" in message
