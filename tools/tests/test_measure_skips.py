"""`make skips` (tools/measure_skips.py): the suite without the README's system tools. Tests
that need them skip with the tool as the reason, though the tools are installed here, and
the run ends with their count; outside its mount namespace nothing is hidden."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import pytest

from conftest import REPO, require, require_tool

pytestmark = pytest.mark.repo


def test_the_tools_are_hidden_and_the_skips_counted_last() -> None:
    require(os.geteuid() == 0, "a mount namespace needs root")
    require_tool("unshare")
    require_tool("dpkg-query")
    # Installed, so a skip for them proves the hiding (during `make skips` itself, they skip).
    require_tool("skopeo")
    require_tool("nix-instantiate")
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "tools/measure_skips.py"),
            "-p",
            "no:xdist",
            "-q",
            "tests/test_aws_image.py",
            "tests/test_nix_static.py",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={k: v for k, v in os.environ.items() if k != "CI"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    lines = done.stdout.splitlines()
    stats = re.search(
        r"(\d+) skipped", next(line for line in lines if " in " in line and "skipped" in line)
    )
    assert stats is not None
    # The count comes after pytest's last line, then one line per reason.
    count = next(i for i, line in enumerate(lines) if line.startswith("skipped for a missing"))
    assert "passed" in lines[count - 1] or "skipped" in lines[count - 1], lines[count - 1]
    assert lines[count] == f"skipped for a missing system prerequisite: {stats.group(1)}"
    reasons = {line.split(None, 1)[1]: int(line.split()[0]) for line in lines[count + 1 :]}
    assert set(reasons) == {"skopeo is not installed", "nix-instantiate is not installed"}
    assert sum(reasons.values()) == int(stats.group(1))
    assert shutil.which("skopeo") is not None  # still there outside the namespace
