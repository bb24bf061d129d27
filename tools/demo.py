"""`make demo`: the main job, end to end, on this machine and with no AWS account.

1. validate and render examples/fleet.yml into out/;
2. summarise what was rendered (userdata per group, resources per stack);
3. check the article's scaling example and show the W201 it deserves; simulate it, and replay a
   recorded trace through it next to the corrected pair of step policies;
4. boot one simulated instance: serve prod/web's userdata from the IMDSv2 emulator and run
   `nixecs apply --root out/sim` against it;
5. deploy the fleet to a local moto server — the load balancer, its HTTPS listener and the
   bananas service's target group included — show `nixecs status` (its targets column shows
   the target group's health) and destroy it.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# Tables read better wider than a pipe's default 80 columns; children (rich too) inherit it.
os.environ.setdefault("COLUMNS", "120")
console = Console(highlight=False)


def step(title: str) -> None:
    console.rule(f"[bold]{title}")


def nixecs(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would, echoing the command and its output."""
    console.print(f"[bold cyan]$ nixecs {shlex.join(args)}")
    result = subprocess.run(
        [sys.executable, "-m", "nixecs", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.stdout.strip():
        console.print(result.stdout.rstrip(), markup=False)
    if result.stderr.strip():
        console.print(result.stderr.rstrip(), style="yellow", markup=False)
    console.print(f"[dim](exit {result.returncode})")
    if check and result.returncode != 0:
        raise SystemExit(
            f"demo: `nixecs {shlex.join(args)}` failed with exit code {result.returncode}"
        )
    return result


def summary(out: Path) -> None:
    manifest = json.loads((out / "manifest.json").read_text())
    groups = Table(title="Userdata per group (bytes EC2 receives, limit 16384)")
    for column in ("cluster/group", "format", "bytes", "gzip", "file"):
        groups.add_column(column)
    stacks = Table(title="CloudFormation resources per stack")
    stacks.add_column("stack")
    stacks.add_column("resource type")
    stacks.add_column("count", justify="right")
    for cluster, info in manifest["clusters"].items():
        for name, group in info["groups"].items():
            groups.add_row(
                f"{cluster}/{name}",
                group["format"],
                str(group["bytes"]),
                "yes" if group["gzip"] else "no",
                f"out/{group['userdata']}",
            )
        for index, (kind, count) in enumerate(info["resources"].items()):
            stacks.add_row(info["stack"] if index == 0 else "", kind, str(count))
    console.print(groups)
    console.print(stacks)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", default="out", help="output directory (default: out)")
    parser.add_argument(
        "--skip-aws", action="store_true", help="skip the local deploy against moto"
    )
    options = parser.parse_args()
    out = (REPO / options.out).resolve()
    # shown relative to the repository (where the commands run); an --out elsewhere as given
    shown = out.relative_to(REPO) if out.is_relative_to(REPO) else out
    fleet = "examples/fleet.yml"

    step("1. Validate and render the example fleet")
    nixecs("validate", fleet)
    nixecs("render", fleet, "-o", str(shown))

    step("2. What was rendered")
    summary(out)

    step("3. The article's scaling policy, checked — and drawn")
    nixecs("scaling", "check", "examples/blog.yml")
    rel = shown
    nixecs(
        "scaling",
        "simulate",
        "examples/blog.yml",
        "blog/app",
        "--plot",
        f"{rel}/scaling-blog-app.png",
    )
    nixecs(
        "scaling", "simulate", fleet, "prod/reports", "--plot", f"{rel}/scaling-prod-reports.png"
    )
    console.print(
        "Three recorded days (examples/load-trace.csv) replayed through the corrected pair of "
        "step policies and, beside it, the article's policy:"
    )
    nixecs(
        "scaling",
        "replay",
        fleet,
        "prod/reports",
        "--trace",
        "examples/load-trace.csv",
        "--against",
        "examples/blog.yml:blog/app",
        "--plot",
        f"{rel}/scaling-replay.png",
    )

    step("4. A simulated boot of one prod/web instance")
    sys.path.insert(0, str(HERE))
    from demo_host import simulate_boot

    userdata = out / "prod" / "groups" / "web.userdata"
    console.print(
        f"[bold cyan]$ nixecs apply --imds <emulator> --root {shown / 'sim'}   # userdata: {shown / 'prod' / 'groups' / 'web.userdata'}"
    )
    env = simulate_boot(userdata, out / "sim", sys.executable)
    console.print("/run/nixecs/ecs.env (the ECS agent's EnvironmentFile):", style="bold")
    console.print(env.rstrip(), markup=False)

    if not options.skip_aws:
        step("5. Local AWS (moto on loopback): deploy, status with the ALB's target group, destroy")
        from demo_aws import deploy_and_status

        console.print(deploy_and_status(REPO / fleet, sys.executable).rstrip(), markup=False)

    step("Done")
    console.print(
        f"Rendered files are in {shown}/; see README.md for the next steps (nix build .#ecs-node-ami)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
