"""A real OCI registry on loopback for tests and `make demo`: Debian's `docker-registry`
(github.com/docker/distribution 2.8) with htpasswd basic auth, standing in for ECR's registry
endpoint, and a builder of small docker-archive image tarballs (no Docker, no network).

htpasswd is what distribution's basic auth reads, bcrypt hashes only (distribution
docs/configuration.md, `auth: htpasswd`); so the credentials a push carries are really checked.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path


@dataclass
class LocalRegistry:
    url: str  # http://127.0.0.1:PORT
    host: str  # 127.0.0.1:PORT
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_registry(directory: Path, user: str, password: str, timeout: float = 20) -> LocalRegistry:
    """Start docker-registry on a free loopback port, storing under `directory`."""
    import bcrypt

    binary = shutil.which("docker-registry")
    if binary is None:
        raise RuntimeError(
            "docker-registry is not installed (Debian: apt-get install docker-registry)"
        )
    directory.mkdir(parents=True, exist_ok=True)
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
    (directory / "htpasswd").write_text(f"{user}:{hashed}\n", encoding="utf-8")
    port = _free_port()
    # JSON is YAML: the configuration needs no YAML writer.
    config = {
        "version": 0.1,
        "log": {"level": "error"},
        "storage": {"filesystem": {"rootdirectory": str(directory / "store")}},
        "auth": {"htpasswd": {"realm": "nixecs-test", "path": str(directory / "htpasswd")}},
        "http": {"addr": f"127.0.0.1:{port}"},
    }
    (directory / "config.yml").write_text(json.dumps(config), encoding="utf-8")
    log = (directory / "registry.log").open("wb")
    process = subprocess.Popen(
        [binary, "serve", str(directory / "config.yml")],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"{url}/v2/", timeout=1).close()
            break
        except urllib.error.HTTPError as error:
            if error.code == 401:  # up, and asking for credentials
                break
            raise
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(
                    f"docker-registry did not start (see {directory}/registry.log)"
                ) from None
            time.sleep(0.1)
    return LocalRegistry(url=url, host=f"127.0.0.1:{port}", process=process)


def _tar(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def image_archive(
    path: Path, files: dict[str, bytes], tag: str = "demo:1.0", compress: bool = True
) -> str:
    """Write a docker-archive (the format of nixpkgs' dockerTools.buildLayeredImage: one
    manifest.json naming the config and layer tarballs) holding `files` in one layer; returns
    the config digest (the image id). Deterministic: the same files give the same bytes."""
    layer = _tar(files)
    diff_id = "sha256:" + hashlib.sha256(layer).hexdigest()
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/bin/app"], "User": "1000:1000"},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        },
        sort_keys=True,
    ).encode()
    config_hex = hashlib.sha256(config).hexdigest()
    manifest = json.dumps(
        [
            {
                "Config": f"{config_hex}.json",
                "RepoTags": [tag],
                "Layers": [f"{diff_id[7:]}/layer.tar"],
            }
        ]
    ).encode()
    archive = _tar(
        {f"{config_hex}.json": config, f"{diff_id[7:]}/layer.tar": layer, "manifest.json": manifest}
    )
    path.write_bytes(gzip.compress(archive, mtime=0) if compress else archive)
    return f"sha256:{config_hex}"
