"""Every module, host and VM-test node of this checkout evaluates under the team's nixeval
harness (the real nixpkgs 25.11 lib, upstream options at their declared types; see its
README): `check.sh` passes on every target. A failing target names itself."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import REPO, Nixeval

pytestmark = pytest.mark.nix


def test_every_nixeval_target_passes(nixeval_harness: Nixeval) -> None:
    done = subprocess.run(
        ["bash", str(nixeval_harness.dir / "check.sh"), str(REPO)],
        env={**os.environ, "NIXEVAL_LIB": str(nixeval_harness.lib)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    failed = [line for line in done.stdout.splitlines() if line.startswith("FAIL")]
    assert done.returncode == 0 and not failed, "\n".join(failed) or done.stderr[-2000:]
