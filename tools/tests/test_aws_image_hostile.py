"""`nixecs image push` against hostile inputs and endings (issue 16 items 5 and 9). The ECR
control plane is the moto server; skopeo is a stand-in script (`fake_skopeo`) where the test
needs an exact answer (a manifest with CRLF line ends) or a hang (to be signalled).

| input / event                                | outcome                                              |
|----------------------------------------------|------------------------------------------------------|
| FIFO as the archive (no writer)              | exit 2 "not a regular file", at once                 |
| device (/dev/zero)                           | exit 2 "not a regular file"                          |
| symlink to an archive (a Nix `result`)       | followed: pushed                                     |
| empty archive                                | exit 2 "names no single tag"                         |
| truncated gzip                               | exit 1 "not a readable gzip archive", temp removed   |
| huge once decompressed                       | exit 1 "larger than", the partial copy removed       |
| RepoTags `name@sha256:…` (a digest reference)| no tag read from it: exit 2 "give --tag"             |
| RepoTags `host:5000/name:2.0`, `host:5000/x` | tag 2.0; none (the port is not a tag)                |
| remote manifest with CRLF line ends          | digest of the exact bytes                            |
| SIGTERM / SIGHUP while skopeo runs           | exit 143 / 129; auth file, temp archive removed;     |
|                                              | skopeo's process group (its children too) ended      |
| SIGINT while skopeo runs                     | exit 130, the same clean-up                          |
| a secret across the 500-character cut        | scrubbed before the cut: no prefix of it shown       |
| lost answer / a rerun                        | test_aws_image: a no-op by config digest             |
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aws_fixtures import run_cli
from conftest import MotoServer, require_tool
from nixecs.aws.image import Skopeo, archive_tag, reference_tag
from nixecs.aws.session import Session
from nixecs.testing.registry import image_archive

pytestmark = pytest.mark.moto

SRC = Path(__file__).resolve().parents[1] / "src"

FAKE_SKOPEO = r"""#!/bin/sh
# A stand-in for skopeo: `inspect --raw docker-archive:` answers the archive's manifest (config
# digest from $FAKE_CONFIG); `inspect --raw docker://` answers $FAKE_REMOTE's bytes exactly;
# with $FAKE_HANG it starts a child in its group, records both pids, and waits.
if [ -n "$FAKE_HANG" ]; then
  sleep 300 &
  echo "$$ $!" > "$FAKE_HANG"
  wait
fi
for last; do :; done
case "$last" in
  docker-archive:*) printf '{"config":{"digest":"%s"}}' "$FAKE_CONFIG" ;;
  docker://*) cat "$FAKE_REMOTE" ;;
esac
"""


@pytest.fixture
def fake_skopeo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "skopeo"
    script.write_text(FAKE_SKOPEO)
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return bin_dir


def push(capsys: Any, moto: MotoServer, archive: Path, *extra: str) -> Any:
    return run_cli(
        capsys,
        [
            "--endpoint-url", moto.url, "--region", "us-east-1", "--output", "json",
            "image", "push", str(archive), "--repository", "bananas",
            "--registry", "http://127.0.0.1:9", *extra,
        ],
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_device_is_refused_without_blocking(
    capsys: Any, moto: MotoServer, tmp_path: Path, kind: str
) -> None:
    archive = tmp_path / "image.tar"
    if kind == "fifo":
        os.mkfifo(archive)
    else:
        archive.symlink_to("/dev/zero")
    start = time.monotonic()
    result = push(capsys, moto, archive, "--tag", "1.0")
    assert result.code == 2 and "not a regular file" in result.err, result.err
    assert time.monotonic() - start < 20


def test_a_symlinked_archive_is_pushed(
    capsys: Any, moto: MotoServer, fake_skopeo: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    real = tmp_path / "store-image.tar.gz"
    config = image_archive(real, {"x": b"y"}, tag="bananas:1.0")
    link = tmp_path / "result"
    link.symlink_to(real)
    remote = tmp_path / "remote.json"
    remote.write_bytes(json.dumps({"config": {"digest": config}}).encode())
    monkeypatch.setenv("FAKE_CONFIG", config)
    monkeypatch.setenv("FAKE_REMOTE", str(remote))
    result = push(capsys, moto, link)
    assert result.code == 0, result.err
    assert result.json()["tag"] == "1.0" and result.json()["pushed"] is False


def test_an_empty_archive_names_no_tag(capsys: Any, moto: MotoServer, tmp_path: Path) -> None:
    archive = tmp_path / "empty.tar"
    archive.write_bytes(b"")
    result = push(capsys, moto, archive)
    assert result.code == 2 and "names no single tag" in result.err


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("nixecs-"))


def _truncated_gzip(archive: Path, monkeypatch: Any) -> None:
    image_archive(archive, {"x": os.urandom(100_000)})
    archive.write_bytes(archive.read_bytes()[:5000])


def _huge_gzip(archive: Path, monkeypatch: Any) -> None:
    from nixecs.aws import image

    archive.write_bytes(gzip.compress(bytes(8 << 20)))  # 8 MiB of zeros, 8 KiB compressed
    monkeypatch.setattr(image, "MAX_ARCHIVE_BYTES", 1 << 20)


@pytest.mark.parametrize(
    ("make", "message"),
    [(_truncated_gzip, "not a readable gzip archive"), (_huge_gzip, "once decompressed")],
    ids=["truncated", "huge"],
)
def test_a_bad_gzip_fails_and_leaves_nothing(
    capsys: Any, moto: MotoServer, tmp_path: Path, monkeypatch: Any, make: Any, message: str
) -> None:
    import tempfile

    archive = tmp_path / "image.tar.gz"
    make(archive, monkeypatch)
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    result = push(capsys, moto, archive, "--tag", "1.0")
    assert result.code == 1 and message in result.err
    assert _leftovers(temp) == []


@pytest.mark.parametrize(
    ("reference", "tag"),
    [
        ("bananas:1.0", "1.0"),
        ("localhost:5000/bananas:2.0", "2.0"),
        ("localhost:5000/bananas", None),
        ("registry.example:443/team/bananas", None),
        ("bananas@sha256:" + "a" * 64, None),
        ("localhost:5000/bananas:1.0@sha256:" + "a" * 64, None),
        ("bananas", None),
        ("bananas:", None),
    ],
)
def test_reference_tags(reference: str, tag: str | None) -> None:
    assert reference_tag(reference) == tag


def test_an_archive_tagged_by_digest_needs_a_tag(
    capsys: Any, moto: MotoServer, tmp_path: Path
) -> None:
    archive = tmp_path / "image.tar"
    image_archive(archive, {"x": b"y"}, tag="bananas@sha256:" + "b" * 64, compress=False)
    assert archive_tag(archive) is None
    result = push(capsys, moto, archive)
    assert result.code == 2 and "give --tag" in result.err
    ported = tmp_path / "ported.tar"
    image_archive(ported, {"x": b"y"}, tag="localhost:5000/bananas:3.1", compress=False)
    assert archive_tag(ported) == "3.1"


def test_the_digest_is_of_the_exact_manifest_bytes(
    capsys: Any, moto: MotoServer, fake_skopeo: Path, tmp_path: Path, monkeypatch: Any
) -> None:
    archive = tmp_path / "image.tar"
    config = image_archive(archive, {"x": b"y"}, compress=False)
    remote = tmp_path / "remote.json"
    exact = (
        b'{\r\n  "schemaVersion": 2,\r\n  "config": {"digest": "' + config.encode() + b'"}\r\n}\r\n'
    )
    remote.write_bytes(exact)
    monkeypatch.setenv("FAKE_CONFIG", config)
    monkeypatch.setenv("FAKE_REMOTE", str(remote))
    result = push(capsys, moto, archive, "--tag", "1.0")
    assert result.code == 0, result.err
    assert result.json()["digest"] == "sha256:" + hashlib.sha256(exact).hexdigest()
    normalised = exact.replace(b"\r\n", b"\n")
    assert result.json()["digest"] != "sha256:" + hashlib.sha256(normalised).hexdigest()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    with open(f"/proc/{pid}/stat") as handle:
        return handle.read().split(")")[-1].split()[0] != "Z"


@pytest.mark.parametrize(
    ("signum", "code"),
    [(signal.SIGTERM, 143), (signal.SIGHUP, 129), (signal.SIGINT, 130)],
    ids=["SIGTERM", "SIGHUP", "SIGINT"],
)
def test_a_signal_mid_push_cleans_up_and_ends_skopeos_group(
    moto: MotoServer, fake_skopeo: Path, tmp_path: Path, signum: int, code: int
) -> None:
    archive = tmp_path / "image.tar.gz"  # compressed: a decompressed copy sits in a temp dir
    image_archive(archive, {"x": b"y"})
    temp = tmp_path / "tmp"
    temp.mkdir()
    pids = tmp_path / "pids"
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "TMPDIR": str(temp),
        "FAKE_HANG": str(pids),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "PATH": f"{fake_skopeo}:{os.environ['PATH']}",
    }
    process = subprocess.Popen(
        [
            sys.executable, "-m", "nixecs", "--endpoint-url", moto.url, "--region", "us-east-1",
            "image", "push", str(archive), "--repository", "bananas", "--tag", "1.0",
            "--registry", "http://127.0.0.1:9",
        ],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not (pids.exists() and pids.read_text().strip()):
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "skopeo never started"
            time.sleep(0.05)
        skopeo_pid, child_pid = map(int, pids.read_text().split())
        # While skopeo runs: the auth file (the token) and the decompressed archive exist.
        held = _leftovers(temp)
        assert any(n.startswith("nixecs-image-") for n in held)
        assert any(n.startswith("nixecs-archive-") for n in held)
        process.send_signal(signum)
        assert process.wait(timeout=30) == code
    finally:
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in (process.stderr.read() if process.stderr else "")
    assert _leftovers(temp) == []
    # SIGTERM to the group is asynchronous: on a loaded machine the group may take a moment
    # to go (the command waits for skopeo itself, not for its children)
    gone = time.monotonic() + 10
    while (_alive(skopeo_pid) or _alive(child_pid)) and time.monotonic() < gone:
        time.sleep(0.05)
    assert not _alive(skopeo_pid) and not _alive(child_pid)


def test_secrets_are_scrubbed_before_a_message_is_cut(tmp_path: Path, monkeypatch: Any) -> None:
    secret = "SECRETTOKENVALUE" * 4
    session = Session(region="us-east-1")
    session.secret(secret)
    skopeo = object.__new__(Skopeo)
    skopeo.session = session
    for offset in (470, 490, 499):  # the secret straddles character 500
        stderr = f'time="x" level=fatal msg="{"e" * offset}{secret} tail"'.encode()
        line = skopeo._last_line(stderr)
        assert len(line) <= 500
        assert not any(secret[:n] in line for n in range(8, len(secret) + 1)), line


def test_auth_file_holds_the_token_only_while_pushing(tmp_path: Path) -> None:
    """The token's file is mode 0600 in a 0700 directory and gone after close()."""
    require_tool("skopeo")
    session = Session(region="us-east-1")
    from nixecs.aws.image import Registry

    with Skopeo(session, Registry("127.0.0.1:9", tls=False), "AWS", "pw") as skopeo:
        auth = skopeo.authfile
        assert oct(auth.stat().st_mode & 0o777) == "0o600"
        assert oct(auth.parent.stat().st_mode & 0o777) == "0o700"
        decoded = json.loads(auth.read_text())["auths"]["127.0.0.1:9"]["auth"]
        assert base64.b64decode(decoded) == b"AWS:pw"
    assert not auth.parent.exists()
