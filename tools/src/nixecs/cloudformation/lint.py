"""cfn-lint over the stacks of clusters with `overrides:` (E164, `nixecs validate`).

What nixecs generates is cfn-lint clean by construction (the test suite lints every example
with cfn-lint, no errors and no warnings); only `overrides:` can make a stack invalid. So
`validate` lints exactly the clusters that have overrides, with the `cfn-lint` command when
one is installed (it is not a dependency of nixecs: `pip install cfn-lint`), and reports each
cfn-lint error (level Error) at the override it comes from. Without cfn-lint it says that
the overrides were not linted. Output format: cfn-lint's `--format json` (a list of matches
with Level, Rule.Id, Message and Location.Path), cfn-lint 1.x.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

from ..fleet.infra import Override
from ..fleet.model import Cluster
from ..fleet.yaml12 import Path
from ..records import dataclass

E_LINT = "E164"
TIMEOUT = 300  # seconds for one stack; cfn-lint takes ~2 s for a cluster of a few services


@dataclass(frozen=True)
class LintError:
    message: str
    path: Path  # in the fleet file: the override it comes from, or the cluster's overrides


def cfn_lint_command() -> str | None:
    """`cfn-lint` on PATH, or beside this Python (a virtual environment not activated)."""
    found = shutil.which("cfn-lint")
    if found:
        return found
    beside = os.path.join(os.path.dirname(sys.executable), "cfn-lint")
    return beside if os.access(beside, os.X_OK) else None


def _origin(cluster: Cluster, resource_path: list[object]) -> Path:
    """The override a cfn-lint match is about: the one for the same resource whose path is
    the longest common prefix with the match's; else the `overrides:` key."""
    best: Override | None = None
    best_len = -1
    if len(resource_path) >= 2 and resource_path[0] == "Resources":
        where = [str(part) for part in resource_path[2:]]
        for override in cluster.overrides:
            if override.logical_id != resource_path[1]:
                continue
            common = 0
            for a, b in zip(override.segments, where, strict=False):
                if a != b:
                    break
                common += 1
            if common > best_len:
                best, best_len = override, common
    return best.path if best is not None else (*cluster.path, "overrides")


def lint_stack(command: str, cluster: Cluster, stack_text: str, region: str) -> list[LintError]:
    """cfn-lint's errors in one cluster's rendered stack; OSError/TimeoutExpired/ValueError
    when cfn-lint cannot run or its output does not parse."""
    with tempfile.TemporaryDirectory(prefix="nixecs-lint-") as directory:
        stack = os.path.join(directory, "stack.yaml")
        with open(stack, "w", encoding="utf-8") as handle:
            handle.write(stack_text)
        done = subprocess.run(
            [command, "--format", "json", "--regions", region, "--", stack],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            check=False,
        )
    # cfn-lint exits non-zero when it finds anything (a bit per level); its matches are on
    # stdout either way, and nothing there means it failed to run.
    if not done.stdout.strip():
        raise ValueError(f"cfn-lint exited {done.returncode}: {done.stderr.strip()[:500]}")
    matches = json.loads(done.stdout)
    if not isinstance(matches, list):
        raise ValueError("cfn-lint's JSON output is not a list")
    errors: list[LintError] = []
    for match in matches:
        if not isinstance(match, dict) or match.get("Level") != "Error":
            continue
        rule = match.get("Rule", {}).get("Id", "?")
        location = match.get("Location", {}).get("Path") or []
        dotted = ".".join(str(part) for part in location)
        errors.append(
            LintError(
                f"cfn-lint {rule} with the overrides applied: {match.get('Message', '')}"
                + (f" (at {dotted})" if dotted else ""),
                _origin(cluster, list(location)),
            )
        )
    return errors
