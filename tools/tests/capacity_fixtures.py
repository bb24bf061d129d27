"""Helpers shared by the issue 21 tests (capacity strategies, capacity providers, scaling
policies, scheduled actions): a fleet's head, located errors, and cfn-lint on a template."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from conftest import require
from nixecs.cloudformation.dump import dump_template
from nixecs.diagnostics import InvalidInput
from nixecs.fleet import parse
from nixecs.fleet.checks import check_text
from nixecs.fleet.model import Fleet

# A fleet up to its cluster `prod`'s keys (indented 4), subnets and security groups written.
HEAD = """\
version: 1
region: us-east-1
flake: github:acme/infra
clusters:
  prod:
    subnets: [subnet-0a1b2c3d, subnet-0a1b2c3e]
    security_groups: [sg-0a1b2c3d]
"""
# Its group `web` (one m6i.large type), the `groups:` line included.
GROUP_WEB = """\
    groups:
      web:
        ami: ami-0123456789abcdef0
        instance_types: [m6i.large]
        capacity: {min: 1, max: 4}
"""


def scaled_fleet(scaling: str) -> str:
    """Service `web` on group `web`, scaled 1-10, with `scaling` (YAML lines) added."""
    body = "\n".join("          " + line for line in scaling.strip("\n").splitlines())
    return (
        HEAD
        + GROUP_WEB
        + "    services:\n      web:\n        group: web\n        image: nginx:1.27\n"
        + "        memory: 512\n        scaling:\n          min: 1\n          max: 10\n"
        + body
        + "\n"
    )


def load_text(text: str) -> Fleet:
    return parse(text, "fleet.yml")


def checked(text: str) -> Fleet:
    """The fleet loaded and through the checks stage (nixecs.fleet.checks), as `validate`
    runs it (without Nix); InvalidInput on errors."""
    return check_text(text, "fleet.yml", nix=False)[0]


def errors(text: str) -> list[tuple[int, str]]:
    """(line, code) of every error the loader, then the checks stage, reports, in order."""
    with pytest.raises(InvalidInput) as caught:
        checked(text)
    return [(d.location.line, d.code) for d in caught.value.report.sorted()]


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def assert_cfn_lint_clean(template: dict[str, Any], tmp_path: Path) -> None:
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    require(cfn_lint.exists(), "cfn-lint is not installed in this environment")
    out = tmp_path / "prod.yaml"
    out.write_text(dump_template(template))
    result = subprocess.run(
        [str(cfn_lint), "--format", "parseable", "--include-checks", "I", "--regions",
         "us-east-1", "--", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr
