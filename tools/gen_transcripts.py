#!/usr/bin/env python3
"""Write the command transcripts of the docs by running the commands: each fenced block that
follows a `<!-- transcript: NAME -->` line in README.md or docs/*.md is replaced by what
scenario NAME prints against a moto server on loopback (stdout and stderr in order, then
`[exit N]`), so a transcript cannot show what the tool no longer prints.

Usage: gen_transcripts.py [--check] [NAME ...]
  --check  runs the scenarios and compares instead of writing; exits 1 naming each block that
           differs. What changes from run to run (ids moto makes up, times, digests, ports) is
           masked on both sides first (tests/test_docs_transcripts.py runs it in `make test`).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE / "src"))
sys.path.insert(0, str(HERE))

from demo_aws import push_example_image  # noqa: E402  (after the path set-up above)

from nixecs.atomic import write_atomic  # noqa: E402

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MARK = re.compile(r"(?m)^<!-- transcript: ([a-z0-9-]+) -->\n```[a-z]*\n(.*?)^```\n", re.S)
REGION = "us-east-1"


@dataclass
class Account:
    """A moto server and the directory the commands run in (holding `fleet.yml`)."""

    url: str
    env: dict[str, str]
    cwd: Path
    out: list[str]
    # pictures for the docs: where each goes → the `nixecs` arguments that draw it into the
    # path given last (drawn only when writing: a PNG is not compared, and matplotlib, the
    # `plot` extra, is not needed to check the transcripts)
    pictures: dict[Path, list[str]] = field(default_factory=dict)

    def run(self, *argv: str, stdin: str | None = None, shown: str | None = None) -> int:
        """`nixecs ARGV` as a user types it (the endpoint comes from the environment, so the
        transcript shows the command without it)."""
        done = subprocess.run(
            [sys.executable, "-m", "nixecs", *argv],
            env=self.env,
            cwd=self.cwd,
            input=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=300,
        )
        self.out.append(f"$ {shown or 'nixecs ' + ' '.join(argv)}\n{done.stdout}")
        self.out.append(f"[exit {done.returncode}]\n")
        return done.returncode


@contextmanager
def account(fleet: Path | None) -> Iterator[Account]:
    """A fresh emulator (`nixecs local`, its state in a temporary directory); with `fleet`,
    the stand-ins `local deploy --plan` makes for what it references, its local copy as
    `fleet.yml`, and the example application's image in the emulator's ECR."""
    with tempfile.TemporaryDirectory(prefix="nixecs-transcript-") as directory:
        cwd = Path(directory)
        base = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        base |= {"NIXECS_LOCAL_DIR": str(cwd / ".local"), "COLUMNS": "120"}
        base |= {"NIXECS_POLL_INTERVAL": "0.2"}
        base.pop("NIXECS_ENDPOINT_URL", None)

        def nixecs(*argv: str) -> str:
            done = subprocess.run(
                [sys.executable, "-m", "nixecs", *argv],
                env=base,
                capture_output=True,
                text=True,
                timeout=300,
            )
            if done.returncode != 0:
                raise SystemExit(f"nixecs {' '.join(argv)}: {done.stderr}")
            return done.stdout

        try:
            if fleet is None:
                empty = cwd / "empty.yml"
                empty.write_text(f"version: 1\nregion: {REGION}\nclusters: {{}}\n")
                nixecs("local", "deploy", str(empty), "--plan")
            else:
                nixecs("local", "deploy", str(fleet), "--plan")
            env = {**base, **json.loads(nixecs("--output", "json", "local", "env"))}
            if fleet is not None:
                state = json.loads((cwd / ".local" / "standins.json").read_text())
                copy = Path(state[str(fleet.resolve())]["copy"])
                (cwd / "fleet.yml").write_text(copy.read_text(encoding="utf-8"))
                if "ecr: bananas" in fleet.read_text(encoding="utf-8"):
                    push_example_image(env["NIXECS_ENDPOINT_URL"], REGION, env, sys.executable)
            yield Account(env["NIXECS_ENDPOINT_URL"], env, cwd, [])
        finally:
            subprocess.run(
                [sys.executable, "-m", "nixecs", "local", "stop"],
                env=base,
                capture_output=True,
                timeout=60,
            )


def deploy_first(a: Account) -> None:
    a.run("deploy", "fleet.yml", "--yes")


def deploy_again(a: Account) -> None:
    a.run("deploy", "fleet.yml", "--yes")
    a.out.clear()  # the first deploy is the scenario's set-up; the second is shown
    a.run("deploy", "fleet.yml", "--yes")


# One cluster's opening, shared by the small fleets the scenarios write.
PROD = """\
version: 1
region: us-east-1
clusters:
  prod:
    subnets: [subnet-0a1b2c3d]
    security_groups: [sg-0a1b2c3d]
    groups:
"""
# The fleet `secret put/rm --fleet` reads: the parameters its service uses are its own.
SECRETS_FLEET = (
    PROD
    + """\
      web: {ami: ami-0123456789abcdef0, instance_types: [m6i.large], capacity: {min: 1, max: 2}}
    services:
      api:
        group: web
        image: nginx:1.27
        cpu: 256
        memory: 512
        desired: 1
        secrets: {DB_PASSWORD: /prod/db/password, API_TOKEN: /prod/api/token}
"""
)


def secrets(a: Account) -> None:
    (a.cwd / "fleet.yml").write_text(SECRETS_FLEET, encoding="utf-8")
    put, mine = ("secret", "put"), ("--fleet", "fleet.yml")
    a.run(*put, "/prod/db/password", *mine, "--value-stdin", stdin="s3cr3t-db-password\n")
    a.run("secret", "get", "/prod/db/password")
    a.run("secret", "get", "/prod/db/password", "--reveal")
    a.run(*put, "/prod/api/token", *mine, "--generate")
    a.run(*put, "/prod/api/token", *mine, "--generate")
    a.run("--output", "json", "secret", "get", "/prod/api/token")
    a.run(*put, "/billing/api-key", *mine, "--generate")
    a.run("secret", "rm", "/prod/api/token", *mine, "--yes")
    a.run("secret", "rm", "/prod/api/token", *mine)


def _client(a: Account, service: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=a.url,
        region_name=REGION,
        aws_access_key_id=a.env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=a.env["AWS_SECRET_ACCESS_KEY"],
    )


def ownership(a: Account) -> None:
    """What deploy and destroy say of a stack nixecs did not make (docs/aws.md, ownership)."""
    cfn = _client(a, "cloudformation")
    theirs = '{"Resources": {"Theirs": {"Type": "AWS::Logs::LogGroup"}}}'
    acme = [{"Key": "nixecs:cluster", "Value": "prod"}, {"Key": "nixecs:fleet", "Value": "acme"}]
    cfn.create_stack(StackName="nixecs-prod", TemplateBody=theirs, Tags=acme)
    a.run("deploy", "fleet.yml", "--yes")
    cfn.delete_stack(StackName="nixecs-prod")
    cfn.create_stack(StackName="nixecs-prod", TemplateBody=theirs)
    a.run("destroy", "prod", "--yes")


def local_deploy(a: Account) -> None:
    """Set-up: `nixecs local deploy` of the example, so the scaling resources the emulator's
    CloudFormation skips are made through their APIs (local/gaps.py), as docs/aws.md says."""
    done = subprocess.run(
        [sys.executable, "-m", "nixecs", "local", "deploy", str(EXAMPLE)],
        env={k: v for k, v in a.env.items() if k != "NIXECS_ENDPOINT_URL"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise SystemExit(f"nixecs local deploy: {done.stderr}")


def roll(a: Account) -> None:
    """`roll` against the emulator's instance refresh stand-in (local/refresh.py): a refresh
    that succeeds, then one that an alarm in ALARM rolls back."""
    local_deploy(a)
    a.run("roll", "prod/web", "--checkpoints", "50,100")
    cloudwatch = _client(a, "cloudwatch")
    cloudwatch.put_metric_alarm(
        AlarmName="web-5xx", MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB",
        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )  # fmt: skip
    cloudwatch.set_alarm_state(AlarmName="web-5xx", StateValue="ALARM", StateReason="5xx")
    a.run("roll", "prod/web", "--rollback-alarm", "web-5xx")


def status_scaling(a: Account) -> None:
    """`deploy` again and `status` after `local deploy` made the scaling resources."""
    local_deploy(a)
    a.run("deploy", "fleet.yml", "--yes")
    a.run("status")
    a.pictures[REPO / "docs" / "aws-status.png"] = ["status", "--plot"]


def _image_dir(a: Account) -> None:
    """`./result` as nixpkgs' amazon-image.nix writes it (the tests' fake image: 1 MiB and a
    little of deterministic bytes, no NixOS inside), and the bucket it is uploaded to."""
    sys.path.insert(0, str(HERE / "tests"))
    from test_aws_ami import make_image

    make_image(a.cwd, 1024 * 1024 + 512)
    _client(a, "s3").create_bucket(Bucket="images")


def ami_publish_s3(a: Account) -> None:
    """`ami publish --via s3` against the emulator's import-snapshot stand-in (local/imports.py),
    then again: the AMI of this image is found by name and reused."""
    _image_dir(a)
    a.run(
        "ami", "publish", "./result", "--via", "s3", "--bucket", "images", "--flake-rev", "abc123"
    )
    a.run(
        "--output", "json", "ami", "publish", "./result", "--via", "s3", "--bucket", "images",
        "--flake-rev", "abc123",
    )  # fmt: skip


def ami_publish_taken(a: Account) -> None:
    """The name asked for is an AMI nixecs did not register (made here by hand)."""
    _image_dir(a)
    _client(a, "ec2").register_image(
        Name="golden", RootDeviceName="/dev/xvda", VirtualizationType="hvm"
    )
    a.run("ami", "publish", "./result", "--via", "s3", "--bucket", "images", "--name", "golden")


def host_half(a: Account) -> None:
    """The instance's side, against the emulator: the userdata EC2 would hand the example's
    web instances (`nixecs userdata`), served by the package's IMDSv2 emulator
    (nixecs.testing.imds); `apply` and `secrets fetch` re-rooted in ./host, the parameter
    read from the emulator's SSM (the stand-in `local deploy --plan` made: a random value)."""
    from nixecs.testing.imds import ImdsEmulator

    userdata = subprocess.run(
        [sys.executable, "-m", "nixecs", "userdata", "fleet.yml", "prod/web"],
        env=a.env,
        cwd=a.cwd,
        capture_output=True,
        check=True,
        timeout=120,
    ).stdout
    with ImdsEmulator(userdata=userdata) as imds:
        a.run("apply", "--imds", imds.url, "--root", "host")
        a.run("secrets", "fetch", "--root", "host", "--imds", imds.url)


# Mistakes newcomers make (README): keys that lost their indentation under `capacity:`, a
# vCPU count as `cpu:`, a unit on `memory:`.
BROKEN_FLEET = (
    PROD
    + """\
      web:
        ami: ami-0123456789abcdef0
        instance_types: [m6i.large]
        capacity:
        min: 1
        max: 4
    services:
      api:
        group: web
        image: nginx:1.27
        cpu: 0.5
        memory: 512MB
"""
)


def validate_errors(a: Account) -> None:
    """Offline: every error of a file at once, each located (README)."""
    (a.cwd / "fleet.yml").write_text(BROKEN_FLEET, encoding="utf-8")
    a.run("validate", "fleet.yml")


def validate_environments(a: Account) -> None:
    """Offline: one file, two environments (README)."""
    (a.cwd / "examples").mkdir()
    (a.cwd / "examples" / "environments.yml").write_bytes(
        (REPO / "examples" / "environments.yml").read_bytes()
    )
    a.run("validate", "examples/environments.yml")


def replay_readme(a: Account) -> None:
    """Offline: the README's replay of three recorded days (its picture is docs/scaling-replay.png)."""
    (a.cwd / "examples").mkdir(exist_ok=True)
    for name in ("fleet.yml", "blog.yml", "load-trace.csv"):
        (a.cwd / "examples" / name).write_bytes((REPO / "examples" / name).read_bytes())
    a.run(
        "scaling", "replay", "examples/fleet.yml", "prod/reports",
        "--trace", "examples/load-trace.csv", "--against", "examples/blog.yml:blog/app",
    )  # fmt: skip


def replay_scheduled(a: Account) -> None:
    """Offline: docs/scaling.md's replay of two policies and a schedule over a recorded Monday."""
    (a.cwd / "examples").mkdir(exist_ok=True)
    for name in ("scheduled.yml", "load-trace-api.csv"):
        (a.cwd / "examples" / name).write_bytes((REPO / "examples" / name).read_bytes())
    a.run(
        "scaling", "replay", "examples/scheduled.yml", "prod/api",
        "--trace", "examples/load-trace-api.csv", "--no-deployed",
    )  # fmt: skip


EXAMPLE = REPO / "examples" / "fleet.yml"
SCENARIOS: dict[str, tuple[Path | None, Callable[[Account], None]]] = {
    "deploy-first": (EXAMPLE, deploy_first),
    "deploy-again": (EXAMPLE, deploy_again),
    "secrets": (None, secrets),
    "ami-publish-s3": (None, ami_publish_s3),
    "ami-publish-taken": (None, ami_publish_taken),
    "ownership": (EXAMPLE, ownership),
    "roll": (EXAMPLE, roll),
    "host-half": (EXAMPLE, host_half),
    "status-scaling": (EXAMPLE, status_scaling),
    "validate-environments": (None, validate_environments),
    "validate-errors": (None, validate_errors),
    "replay": (None, replay_readme),
    "replay-scheduled": (None, replay_scheduled),
}


def produce(name: str, *, draw: bool = False) -> str:
    """The scenario's transcript; with `draw`, its pictures are drawn into the docs too."""
    fleet, scenario = SCENARIOS[name]
    with account(fleet) as a:
        scenario(a)
        if draw:
            for target, argv in a.pictures.items():
                drawn = a.cwd / target.name
                subprocess.run(
                    [sys.executable, "-m", "nixecs", *argv, str(drawn)],
                    env=a.env,
                    cwd=a.cwd,
                    capture_output=True,
                    check=True,
                    timeout=120,
                )
                write_atomic(target, drawn.read_bytes(), durable=False)
                print(f"wrote {target.relative_to(REPO)}")
        return "".join(a.out)


# What differs between two runs of the same scenario, masked before comparing.
VOLATILE = [
    (re.compile(r"\b\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:[+-]\d\d:\d\d|Z)?"), "<time>"),
    (re.compile(r"\b\d\d:\d\d:\d\d\b"), "<time>"),
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<uuid>"),
    (re.compile(r"(?<![0-9A-Za-z])[0-9a-f]{8,}(?![0-9A-Za-z])"), "<hex>"),
    (re.compile(r"(?<=-)[0-9a-f]{8,}\b"), "<hex>"),
    (
        re.compile(r"[A-Za-z0-9]{12,}(?=\b)"),
        lambda m: m.group(0) if m.group(0).isalpha() else "<id>",
    ),
    (re.compile(r"127\.0\.0\.1:\d+"), "127.0.0.1:<port>"),
    # Not root (a developer's machine), `secrets fetch` cannot give a file to root and says
    # so in one more line; as root (CI, the docs' run) it does not. The rest is the same.
    (re.compile(r"(?m)^nixecs secrets: warning: not root: .*\n"), ""),
    (re.compile(r"─+"), "─"),
    (re.compile(r"[ \t]+"), " "),
]


def masked(text: str) -> str:
    for pattern, replacement in VOLATILE:
        text = pattern.sub(replacement, text)  # type: ignore[arg-type]
    return "\n".join(line.rstrip() for line in text.splitlines())


def blocks() -> Iterator[tuple[Path, re.Match[str]]]:
    for path in DOCS:
        for match in MARK.finditer(path.read_text(encoding="utf-8")):
            yield path, match


def main(argv: list[str]) -> int:
    check = "--check" in argv
    wanted = [a for a in argv if not a.startswith("--")]
    unknown = sorted(set(wanted) - set(SCENARIOS))
    found = {match.group(1) for _, match in blocks()}
    if unknown or found - set(SCENARIOS):
        print(f"unknown transcript(s): {', '.join(unknown or sorted(found - set(SCENARIOS)))}")
        return 2
    produced = {
        name: produce(name, draw=not check)
        for name in sorted(found)
        if not wanted or name in wanted
    }
    stale = 0
    for path in DOCS:
        text = path.read_text(encoding="utf-8")

        def replace(match: re.Match[str], path: Path = path) -> str:
            nonlocal stale
            name = match.group(1)
            if name not in produced:
                return match.group(0)
            if check:
                if masked(match.group(2)) != masked(produced[name]):
                    stale += 1
                    diff = difflib.unified_diff(
                        masked(match.group(2)).splitlines(),
                        masked(produced[name]).splitlines(),
                        f"{path.relative_to(REPO)} ({name})",
                        "the tool now",
                        lineterm="",
                    )
                    print("\n".join(diff))
                return match.group(0)
            return f"<!-- transcript: {name} -->\n```\n{produced[name]}```\n"

        new = MARK.sub(replace, text)
        if not check and new != text:
            write_atomic(path, new, durable=False)
            print(f"wrote {path.relative_to(REPO)}")
    if stale:
        print(f"{stale} transcript(s) out of date: run tools/gen_transcripts.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
