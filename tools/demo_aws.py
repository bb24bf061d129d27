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

Before the deploy, the example application's image goes to ECR as `bananas:1.0`
(`push_example_image`), since the fleet names it `{ecr: bananas, tag: "1.0"}` and `deploy`
pins that tag's digest. Nix cannot build here, so the archive is not
`nix build .#bananas-image` but an equivalent docker-archive of the application's files made
by nixecs.testing.registry.image_archive. `nixecs image push` sends it with skopeo to a
Docker registry on loopback (Debian's docker-registry) standing in for ECR's registry
endpoint, with moto as the ECR control plane; moto's ECR never sees that registry, so the
demo then records the pushed manifest in moto with ecr:PutImage, as ECR's registry does on
a push. Without docker-registry and skopeo, the manifest is recorded directly and the demo
says so.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

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


def _network(
    python: str, url: str, region: str, env: dict[str, str]
) -> tuple[list[str], str, str, str]:
    """Two subnets of moto's default VPC, a new security group in it, the VPC, and an ACM
    certificate for an HTTPS listener (moto's ELBv2 refuses a certificate ARN its ACM does
    not hold: "CertificateNotFound", moto 5.2.5)."""
    script = (
        "import boto3, sys\n"
        "ec2 = boto3.client('ec2', endpoint_url=sys.argv[1], region_name=sys.argv[2])\n"
        "vpc = ec2.describe_vpcs(Filters=[{'Name': 'is-default', 'Values': ['true']}])['Vpcs'][0]['VpcId']\n"
        "subnets = [s['SubnetId'] for s in ec2.describe_subnets(Filters=[{'Name': 'vpc-id', 'Values': [vpc]}])['Subnets']][:2]\n"
        "sg = ec2.create_security_group(GroupName='nixecs-demo', Description='nixecs demo', VpcId=vpc)['GroupId']\n"
        "acm = boto3.client('acm', endpoint_url=sys.argv[1], region_name=sys.argv[2])\n"
        "cert = acm.request_certificate(DomainName='bananas.example.com')['CertificateArn']\n"
        "print(' '.join(subnets), sg, vpc, cert)\n"
    )
    done = subprocess.run(
        [python, "-c", script, url, region], env=env, capture_output=True, text=True, timeout=60
    )
    if done.returncode != 0:
        raise DemoError(f"could not prepare the local network in moto:\n{done.stderr}")
    *subnets, group, vpc, certificate = done.stdout.split()
    return subnets, group, vpc, certificate


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


def local_fleet(
    text: str,
    subnets: list[str],
    security_group: str,
    vpc: str | None = None,
    certificate: str | None = None,
) -> str:
    """The fleet with moto's network ids (a load balancer's `vpc:` and certificate too), and
    no instances in groups moto cannot launch (flow-style lists and capacity, as in
    examples/)."""
    if vpc is not None:
        text = re.sub(r"(?m)^(\s*)vpc:\s*vpc-[0-9a-f]+", lambda m: f"{m.group(1)}vpc: {vpc}", text)
    if certificate is not None:
        text = re.sub(
            r"certificate_arn:\s*\"?arn:aws:acm:[^\s\"}]+\"?",
            f'certificate_arn: "{certificate}"',
            text,
        )
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


def _example_archive(path: Path) -> None:
    """The example application's files in one layer (apps/bananas/src), as a docker-archive."""
    from nixecs.testing.registry import image_archive

    source = Path(__file__).resolve().parents[1] / "apps" / "bananas" / "src"
    files = {
        f"app/{f.relative_to(source)}": f.read_bytes()
        for f in sorted(source.rglob("*.py"))
        if "__pycache__" not in f.parts
    }
    image_archive(path, files, tag="bananas:1.0")


def _ecr(url: str, region: str) -> object:
    """An ECR client of the moto server, with the demo's fake credentials (never a real
    account's: the environment's are not read)."""
    import boto3

    return boto3.client(
        "ecr",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
    )


def _record_in_ecr(url: str, region: str, manifest: str) -> str:
    """What ECR's registry does on a push, for moto: the manifest under bananas:1.0."""
    ecr: Any = _ecr(url, region)
    with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):
        ecr.create_repository(repositoryName="bananas")
    image = ecr.put_image(repositoryName="bananas", imageManifest=manifest, imageTag="1.0")
    return str(image["image"]["imageId"]["imageDigest"])


def push_example_image(url: str, region: str, env: dict[str, str], python: str) -> str:
    """`nixecs image push` of the example application to a loopback registry, recorded in
    moto's ECR; returns what was printed."""
    import base64
    import shutil

    from nixecs.testing.registry import start_registry

    output = [
        "(Nix cannot build here: an equivalent archive of apps/bananas stands in for "
        "`nix build .#bananas-image`)\n"
    ]
    with tempfile.TemporaryDirectory(prefix="nixecs-demo-image-") as directory:
        archive = Path(directory) / "bananas.tar.gz"
        _example_archive(archive)
        if not (shutil.which("skopeo") and shutil.which("docker-registry")):
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                    "config": {
                        "mediaType": "application/vnd.docker.container.image.v1+json",
                        "size": 0,
                        "digest": "sha256:" + "0" * 64,
                    },
                    "layers": [],
                }
            )
            digest = _record_in_ecr(url, region, manifest)
            output.append(
                "skopeo or docker-registry is not installed (Debian: apt-get install skopeo "
                f"docker-registry): not pushed; bananas:1.0 recorded in moto's ECR as {digest}\n"
            )
            return "".join(output)
        ecr: Any = _ecr(url, region)
        token = ecr.get_authorization_token()["authorizationData"][0]["authorizationToken"]
        password = base64.b64decode(token).decode().partition(":")[2]
        registry = start_registry(Path(directory) / "registry", "AWS", password)
        try:
            argv = [
                "image",
                "push",
                str(archive),
                "--repository",
                "bananas",
                "--tag",
                "1.0",
                "--registry",
                registry.url,
            ]
            done = subprocess.run(
                [python, "-m", "nixecs", "--endpoint-url", url, "--region", region, *argv],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=300,
            )
            output.append(
                f"$ nixecs --endpoint-url {url} image push bananas.tar.gz --repository bananas "
                f"--tag 1.0 --registry {registry.url}\n{done.stdout}"
            )
            if done.returncode != 0:
                raise DemoError(f"`nixecs image push` exited {done.returncode}:\n{''.join(output)}")
            auth = Path(directory) / "auth.json"
            auth.write_text(
                json.dumps(
                    {
                        "auths": {
                            registry.host: {
                                "auth": base64.b64encode(f"AWS:{password}".encode()).decode()
                            }
                        }
                    }
                ),
                encoding="utf-8",
            )
            auth.chmod(0o600)
            inspected = subprocess.run(
                [
                    "skopeo",
                    "inspect",
                    "--raw",
                    "--tls-verify=false",
                    "--authfile",
                    str(auth),
                    f"docker://{registry.host}/bananas:1.0",
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if inspected.returncode != 0:
                raise DemoError(f"skopeo inspect failed:\n{inspected.stderr}")
        finally:
            registry.stop()
        digest = _record_in_ecr(url, region, inspected.stdout)
        output.append(
            f"recorded in moto's ECR (as ECR's registry would): bananas:1.0 is {digest} (moto's digest: over the layer digests, not the manifest's SHA-256 as in ECR)\n"
        )
    return "".join(output)


def attach_load_balancers(url: str, region: str, fleet: Path) -> str:
    """Give each deployed ECS service the LoadBalancers of its template, through ECS
    UpdateService (an API parameter of ECS too), since moto's CloudFormation drops them (moto
    5.2.5, ecs/models.py Service.create_from_cloudformation_json: "TODO: LoadBalancers"):
    without them `nixecs status` has no target group to show. Returns what was done."""
    import boto3

    from nixecs import naming
    from nixecs.cloudformation import build_stack
    from nixecs.fleet import load_fleet

    def client(name: str) -> Any:
        return boto3.client(
            name,
            endpoint_url=url,
            region_name=region,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
        )

    cloudformation, ecs = client("cloudformation"), client("ecs")
    loaded = load_fleet(fleet)
    done: list[str] = []
    for name in loaded.clusters:
        template: Any = build_stack(loaded, name)
        physical = {  # moto lists some resources without their ids: those are skipped
            r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in cloudformation.describe_stack_resources(StackName=naming.stack_name(name))[
                "StackResources"
            ]
            if "LogicalResourceId" in r and "PhysicalResourceId" in r
        }
        for resource in template["Resources"].values():
            properties = resource["Properties"]
            if resource["Type"] != "AWS::ECS::Service" or "LoadBalancers" not in properties:
                continue
            balancers = [
                {
                    "targetGroupArn": physical[lb["TargetGroupArn"]["Ref"]],
                    "containerName": lb["ContainerName"],
                    "containerPort": lb["ContainerPort"],
                }
                for lb in properties["LoadBalancers"]
            ]
            ecs.update_service(
                cluster=name, service=properties["ServiceName"], loadBalancers=balancers
            )
            done.append(
                f"{name}/{properties['ServiceName']}: target group "
                + ", ".join(b["targetGroupArn"].rsplit(":", 1)[-1] for b in balancers)
            )
    if not done:
        return ""
    return (
        "(moto's CloudFormation drops an ECS service's LoadBalancers: the demo sets the "
        "template's through ECS UpdateService; moto starts no tasks, so no targets register)\n"
        + "".join(f"  {line}\n" for line in done)
    )


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
        subnets, group, vpc, certificate = _network(python, url, region, env)
        if re.search(r"(?m)^\s*image:\s*\{\s*ecr:\s*bananas\b", text):
            output.append(push_example_image(url, region, env, python))
        with tempfile.TemporaryDirectory(prefix="nixecs-demo-") as directory:
            local = Path(directory) / Path(fleet).name
            local.write_text(local_fleet(text, subnets, group, vpc, certificate), encoding="utf-8")
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
                if argv[0] == "deploy":
                    output.append(attach_load_balancers(url, region, local))
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
