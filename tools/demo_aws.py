"""Deploy a fleet to a moto server on loopback, show `nixecs status`, and destroy what was
deployed — no AWS account.

Used by `make demo` (`deploy_and_status(fleet, python)`), or on its own:

    .venv/bin/python tools/demo_aws.py examples/fleet.yml

It is `nixecs local deploy` (nixecs.local), as a team would run it on its own fleet: the
emulator, stand-ins for what the fleet references (subnets, security groups, AMIs, the
certificate, SSM parameters), the preflight and the deploy; then `status` and `destroy`
against the emulator, and `local stop`.

Before the deploy, the example application's image goes to the emulator's ECR as `bananas:1.0`
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

from nixecs.local.emulator import FAKE_CREDENTIALS  # the emulator's, never a real account's


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


def deploy_and_status(fleet: Path, python: str = sys.executable) -> str:
    """`nixecs local deploy FLEET` (the emulator, stand-ins, preflight, deploy), `nixecs
    status` and `nixecs destroy CLUSTER… --yes` against it, then `nixecs local stop`;
    returns what they printed (stdout and stderr, in order). The emulator's state lives in a
    temporary directory, so the user's own local emulator is never touched."""
    text = Path(fleet).read_text(encoding="utf-8")
    output: list[str] = []
    with tempfile.TemporaryDirectory(prefix="nixecs-demo-") as directory:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "NIXECS_LOCAL_DIR": str(Path(directory) / "local"),
            "NIXECS_POLL_INTERVAL": "0.2",
        }
        env.pop("NIXECS_ENDPOINT_URL", None)

        def run(argv: list[str], extra: dict[str, str] | None = None) -> str:
            done = subprocess.run(
                [python, "-m", "nixecs", *argv],
                env={**env, **(extra or {})},
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                timeout=300,
            )
            output.append(f"$ nixecs {' '.join(argv)}\n{done.stdout}")
            if done.returncode != 0:
                raise DemoError(
                    f"`nixecs {' '.join(argv)}` exited {done.returncode}:\n{''.join(output)}"
                )
            return done.stdout

        try:
            # The emulator first (a plan changes nothing), so the image can be pushed to it.
            run(["local", "deploy", str(fleet), "--plan"])
            made = [line for line in output[-1].splitlines() if line.startswith("stand-in:")]
            local = json.loads(run(["--output", "json", "local", "env"]))
            output[:] = [f"$ nixecs local deploy {fleet} --plan   # the plan itself not shown\n"]
            output.extend(f"{line}\n" for line in made)
            if re.search(r"(?m)^\s*image:\s*\{\s*ecr:\s*bananas\b", text):
                url, region = local["NIXECS_ENDPOINT_URL"], local.get("AWS_REGION", "us-east-1")
                output.append(push_example_image(url, region, {**env, **local}, python))
            run(["local", "deploy", str(fleet)])
            run(["status"], local)
            run(["destroy", *_cluster_names(text), "--yes"], local)
        finally:
            subprocess.run(
                [python, "-m", "nixecs", "local", "stop"], env=env, capture_output=True, timeout=60
            )
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
