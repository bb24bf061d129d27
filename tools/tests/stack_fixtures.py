"""Helpers for tests of new fleet keys: cfn-lint over rendered stacks (no errors, warnings or
informational matches), and a fleet text made deployable on the moto server (its default
VPC's subnets, a security group, groups starting empty)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from aws_fixtures import moto_client
from conftest import require


def assert_cfn_lint_clean(files: list[Path], region: str) -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    require(cfn_lint.exists(), "cfn-lint is not installed in this environment")
    argv = [str(cfn_lint), "--format", "parseable", "--include-checks", "I", "--regions", region]
    result = subprocess.run(
        [*argv, "--", *map(str, files)], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


def on_moto(text: str, url: str) -> str:
    """A fleet text of tests' usual HEAD (region eu-west-1, subnet-0a1b2c3d, sg-0a1b2c3d,
    capacity 1-3) in us-east-1 on moto's default VPC."""
    ec2 = moto_client(url, "ec2")
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]
    found = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    subnets = [s["SubnetId"] for s in found["Subnets"]][:2]
    group = ec2.create_security_group(
        GroupName=f"nixecs-test-{len(text)}", Description="nixecs test", VpcId=vpc["VpcId"]
    )["GroupId"]
    return (
        text.replace("region: eu-west-1", "region: us-east-1")
        .replace("subnets: [subnet-0a1b2c3d]", f"subnets: [{', '.join(subnets)}]")
        .replace("security_groups: [sg-0a1b2c3d]", f"security_groups: [{group}]")
        .replace("capacity: {min: 1, max: 3}", "capacity: {min: 0, max: 3}")
    )


def deploy_on_moto(text: str, url: str, tmp_path: Path, capsys: Any) -> None:
    """`nixecs deploy` of the fleet text (made deployable by on_moto) against the moto server,
    without preflight; fails the test unless it succeeds."""
    from aws_fixtures import run_cli

    fleet = tmp_path / "fleet.yml"
    fleet.write_text(on_moto(text, url), encoding="utf-8")
    argv = ["--endpoint-url", url, "deploy", str(fleet), "--yes", "--no-preflight"]
    done = run_cli(capsys, argv)
    assert done.code == 0, done.out + done.err
