"""The tests on a clone of the public repository with nothing beside it (CI=true, no
../shared): the tests that need the nixeval harness are skipped, with the reason, not
failed; named by NIXEVAL_DIR (as .ci/run does) and missing, they fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_tool

# The harness fixture asks for nix-instantiate first (not in the package's build sandbox).
pytestmark = pytest.mark.nix

TESTS = Path(__file__).resolve().parent

PROBE = """
from conftest import Nixeval

def test_uses_the_harness(nixeval_harness: Nixeval) -> None:
    assert (nixeval_harness.dir / "eval.nix").is_file()
"""


def run_clone(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """conftest.py in a checkout laid out as a clone is (tools/tests), in a directory with no
    shared/ anywhere above it, and one test that asks for the harness."""
    tests = tmp_path / "clone" / "tools" / "tests"
    tests.mkdir(parents=True)
    shutil.copy(TESTS / "conftest.py", tests)
    (tests / "test_probe.py").write_text(PROBE, encoding="utf-8")
    base = {k: v for k, v in os.environ.items() if not k.startswith("NIXEVAL")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", str(tests)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tests,
        env={**base, "CI": "true", **env},
    )


def test_without_shared_the_nixeval_tests_are_skipped_with_the_reason(tmp_path: Path) -> None:
    # The clone runs with CI=true, where the harness's missing nix-instantiate is a failure.
    require_tool("nix-instantiate")
    assert not any((p / "shared").exists() for p in tmp_path.parents)
    done = run_clone(tmp_path)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "1 skipped" in done.stdout
    assert "nixeval harness is not beside this checkout" in done.stdout


def test_a_named_harness_that_is_missing_fails_in_ci(tmp_path: Path) -> None:
    require_tool("nix-instantiate")  # else the clone fails on it before the harness
    done = run_clone(tmp_path, NIXEVAL_DIR=str(tmp_path / "nowhere"))
    assert done.returncode == 1
    assert "prerequisite missing in CI: nixeval not found" in done.stdout


@pytest.mark.repo
def test_ci_run_names_the_harness_beside_the_checkout() -> None:
    script = (TESTS.parents[1] / ".ci" / "run").read_text()
    assert "NIXEVAL_DIR=$(cd .. && pwd)/shared/tools/nixeval" in script
    assert "export NIXEVAL_DIR" in script
