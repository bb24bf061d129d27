"""Deploy a fleet to a moto server on loopback, show `nixecs status`, and destroy what was
deployed — no AWS account.

Used by `make demo` (`deploy_and_status(fleet, python)`), or on its own:

    .venv/bin/python tools/demo_aws.py examples/fleet.yml

A local copy of the fleet gets the moto account's subnets and a security group in place of
the real ones (moto makes up its own ids). Groups that give their root volume a size
(`root_volume: {size_gib: N}`) keep their capacity and moto launches their instances; the
others get `min: 0`, as moto cannot launch from a launch template whose root volume takes its
size from the AMI, as AWS does ("MissingParameter: The request must contain the parameter
size/snapshot", moto 5.2.5). The preflight is skipped (`--no-preflight`): the example's AMI ids and SSM
parameters stand for the reader's own and do not exist in moto (tests/test_aws_preflight.py
runs the preflight against moto).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


class DemoError(RuntimeError):
    """The local deploy did not work; the message says which step and shows its output."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_moto(python: str, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1):
                return process
        except OSError:
            if process.poll() is not None:
                error = process.stderr.read().decode(errors="replace") if process.stderr else ""
                raise DemoError(
                    f"moto server did not start (is moto[server] installed for {python}?)\n{error}"
                ) from None
            if time.monotonic() > deadline:
                process.kill()
                raise DemoError("moto server did not answer within 30 s") from None
            time.sleep(0.1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _network(python: str, url: str, region: str, env: dict[str, str]) -> tuple[list[str], str, str]:
    """Two subnets of moto's default VPC, a new security group in it, and the VPC."""
    script = (
        "import boto3, sys\n"
        "ec2 = boto3.client('ec2', endpoint_url=sys.argv[1], region_name=sys.argv[2])\n"
        "vpc = ec2.describe_vpcs(Filters=[{'Name': 'is-default', 'Values': ['true']}])['Vpcs'][0]['VpcId']\n"
        "subnets = [s['SubnetId'] for s in ec2.describe_subnets(Filters=[{'Name': 'vpc-id', 'Values': [vpc]}])['Subnets']][:2]\n"
        "sg = ec2.create_security_group(GroupName='nixecs-demo', Description='nixecs demo', VpcId=vpc)['GroupId']\n"
        "print(' '.join(subnets), sg, vpc)\n"
    )
    done = subprocess.run(
        [python, "-c", script, url, region], env=env, capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise DemoError(f"could not prepare the local network in moto:\n{done.stderr}")
    *subnets, group, vpc = done.stdout.split()
    return subnets, group, vpc


_CAPACITY_RE = re.compile(
    r"capacity:\s*\{\s*min:\s*\d+\s*,\s*max:\s*(\d+)\s*(?:,\s*desired:\s*\d+\s*)?\}"
)


def _sizeless_capacity_lines(text: str) -> set[int]:
    """Lines (1-based) of the `capacity:` of groups whose root volume has no size_gib. A file
    that does not parse gives none: `nixecs deploy` reports it."""
    from nixecs.fleet.yaml12 import YamlError, load

    try:
        document = load(text, "fleet.yml")
    except YamlError:
        return set()

    def mapping(value: object) -> dict[object, object]:
        return value if isinstance(value, dict) else {}

    lines: set[int] = set()
    for cluster_key, cluster in mapping(mapping(document.value).get("clusters")).items():
        for group_key, group in mapping(mapping(cluster).get("groups")).items():
            volume = mapping(group).get("root_volume")
            if isinstance(volume, dict) and "size_gib" in volume:
                continue
            where = ("clusters", cluster_key, "groups", group_key, "capacity")
            lines.add(document.locate(where, key=True).line)
    return lines


def local_fleet(text: str, subnets: list[str], security_group: str, vpc: str | None = None) -> str:
    """The fleet with moto's network ids (a load balancer's `vpc:` too), and no instances in
    groups moto cannot launch (flow-style lists and capacity, as in examples/)."""
    if vpc is not None:
        text = re.sub(r"(?m)^(\s*)vpc:\s*vpc-[0-9a-f]+", lambda m: f"{m.group(1)}vpc: {vpc}", text)
    text = re.sub(
        r"(?m)^(\s*)subnets:\s*\[[^\]]*\]",
        lambda m: f"{m.group(1)}subnets: [{', '.join(subnets)}]",
        text,
    )
    text = re.sub(
        r"(?m)^(\s*)security_groups:\s*\[[^\]]*\]",
        lambda m: f"{m.group(1)}security_groups: [{security_group}]",
        text,
    )
    sizeless = _sizeless_capacity_lines(text)
    return "\n".join(
        _CAPACITY_RE.sub(r"capacity: {min: 0, max: \1}", line) if number in sizeless else line
        for number, line in enumerate(text.split("\n"), 1)
    )


def _cluster_names(text: str) -> list[str]:
    """The cluster keys of a fleet file (the demo's own reading: two-space indented keys under
    `clusters:`, as in examples/)."""
    block = re.search(r"(?ms)^clusters:\s*\n(.*?)(?=^\S|\Z)", text)
    return re.findall(r"(?m)^  ([A-Za-z0-9][A-Za-z0-9_-]*):", block.group(1)) if block else []


def deploy_and_status(fleet: Path, python: str = sys.executable) -> str:
    """Start moto server, `nixecs deploy FLEET --wait --yes`, `nixecs status` and `nixecs
    destroy CLUSTER… --yes` against it, stop the server; returns what they printed (stdout
    and stderr, in order)."""
    text = Path(fleet).read_text(encoding="utf-8")
    match = re.search(r"(?m)^region:\s*([a-z0-9-]+)", text)
    region = match.group(1) if match else "us-east-1"
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, **FAKE_CREDENTIALS, "AWS_REGION": region, "NIXECS_POLL_INTERVAL": "0.2"}
    env.pop("AWS_PROFILE", None)
    process = _start_moto(python, port)
    output: list[str] = []
    try:
        subnets, group, vpc = _network(python, url, region, env)
        with tempfile.TemporaryDirectory(prefix="nixecs-demo-") as directory:
            local = Path(directory) / Path(fleet).name
            local.write_text(local_fleet(text, subnets, group, vpc), encoding="utf-8")
            clusters = _cluster_names(text)
            for argv in (
                ["deploy", str(local), "--wait", "--yes", "--no-preflight"],
                ["status"],
                ["destroy", *clusters, "--yes"],
            ):
                command = [python, "-m", "nixecs", "--endpoint-url", url, "--region", region, *argv]
                done = subprocess.run(
                    command,
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    timeout=300,
                )
                output.append(f"$ nixecs --endpoint-url {url} {' '.join(argv)}\n{done.stdout}")
                if done.returncode != 0:
                    raise DemoError(
                        f"`nixecs {' '.join(argv)}` exited {done.returncode}:\n{''.join(output)}"
                    )
    finally:
        _stop(process)
    return "".join(output)


def main(argv: list[str]) -> int:
    fleet = (
        Path(argv[0]) if argv else Path(__file__).resolve().parents[1] / "examples" / "fleet.yml"
    )
    try:
        print(deploy_and_status(fleet, sys.executable), end="")
    except DemoError as error:
        print(f"demo: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
