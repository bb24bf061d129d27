"""hosts/ci/nixops.nix: NixOps cannot deploy without an EC2 key pair and an AMI (nixops-aws
has no usable default for either, see the file's header), so the network takes both from the
deployer and stops with a message naming the option when one is missing. Evaluated with real
Nix and the stub lib (no nixpkgs, no NixOps here); nixeval does not evaluate this file."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import REPO

pytestmark = pytest.mark.nix

STUB_LIB = Path(__file__).resolve().parent / "nix" / "stub-lib.nix"
NIXOPS = REPO / "hosts" / "ci" / "nixops.nix"


def deployment(
    nix_instantiate: str, key_pair: str | None, ami: str | None, attr: str
) -> subprocess.CompletedProcess[str]:
    settings = json.dumps({"keyPair": key_pair, "ami": ami})
    expr = (
        f"let lib = import {STUB_LIB}; m = import {NIXOPS} {{ inherit lib; "
        f"config.nixecs.ci.ec2 = builtins.fromJSON ''{settings}''; }}; "
        f"in m.config.deployment.{attr}"
    )
    return subprocess.run(
        [nix_instantiate, "--eval", "--strict", "--json", "--readonly-mode", "-E", expr],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("missing", ["keyPair", "ami"])
def test_a_missing_key_pair_or_ami_stops_with_the_option_to_set(
    nix_instantiate: str, missing: str
) -> None:
    given: dict[str, str | None] = {"keyPair": "ci-admin", "ami": "ami-0123456789abcdef0"}
    given[missing] = None
    process = deployment(nix_instantiate, given["keyPair"], given["ami"], f"ec2.{missing}")
    assert process.returncode != 0
    assert f"set nixecs.ci.ec2.{missing} " in process.stderr


def test_the_deployer_s_key_pair_and_ami_reach_nixops_aws(nix_instantiate: str) -> None:
    for attr, want in (
        ("ec2.keyPair", "ci-admin"),
        ("ec2.ami", "ami-0123456789abcdef0"),
        ("targetEnv", "ec2"),
    ):
        process = deployment(nix_instantiate, "ci-admin", "ami-0123456789abcdef0", attr)
        assert process.returncode == 0, process.stderr
        assert json.loads(process.stdout) == want
