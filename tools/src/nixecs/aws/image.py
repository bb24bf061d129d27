"""`nixecs image push`: an image archive built by the flake (nixpkgs' dockerTools) into ECR.

The ECR control plane (repository, lifecycle policy, the registry token) goes through boto3;
the registry itself through **skopeo**, the standard client for pushing Nix-built archives
without a Docker daemon. Facts relied on, from AWS's ECR API reference:

- GetAuthorizationToken returns `authorizationToken`, base64 of `user:password`, valid for 12
  hours, and `proxyEndpoint`, the registry URL `https://ACCOUNT.dkr.ecr.REGION.amazonaws.com`
  (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_AuthorizationData.html).
- Lifecycle policy rules (`rulePriority`, `tagStatus` tagged|untagged|any, `countType`
  sinceImagePushed with `countUnit: days`, action `expire`):
  https://docs.aws.amazon.com/AmazonECR/latest/userguide/lifecycle_policy_parameters.html
- A tag that is absent answers the OCI distribution error `MANIFEST_UNKNOWN`
  (opencontainers/distribution-spec, spec.md "Error Codes"; Docker's registry and ECR alike).

The token never reaches a command line: it goes into an auth file (mode 0600, in a private
temporary directory removed afterwards) that skopeo reads with `--authfile`. Rerunning with the
same image is a no-op: the tag is inspected first and, when it already holds an image with the
same config digest (the image's identity: skopeo copies the config blob verbatim), nothing is
pushed. Tags are immutable in the repositories this creates, so a different image under an
existing tag is refused before anything is sent.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..diagnostics import OperationalFailure
from ..signals import terminating
from .session import Session, aws_errors, error_code

# Untagged images (left behind by re-tagging or failed pushes) expire after two weeks; tagged
# images are never expired by us: a running task definition may pin any of them.
LIFECYCLE_POLICY = {
    "rules": [
        {
            "rulePriority": 1,
            "description": "nixecs: expire untagged images 14 days after their push",
            "selection": {
                "tagStatus": "untagged",
                "countType": "sinceImagePushed",
                "countUnit": "days",
                "countNumber": 14,
            },
            "action": {"type": "expire"},
        }
    ]
}

# ECR repository names (CreateRepository API reference: 2-256 characters, this pattern).
_REPOSITORY = re.compile(r"(?:[a-z0-9]+(?:[._-][a-z0-9]+)*/)*[a-z0-9]+(?:[._-][a-z0-9]+)*")
# Docker/OCI tag grammar (distribution/reference: `[\w][\w.-]{0,127}`).
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")

# What one push may take at most; skopeo retries its own requests within it.
PUSH_TIMEOUT_S = 1800
INSPECT_TIMEOUT_S = 120
# An image archive is decompressed (see _plain_archive) up to this size.
MAX_ARCHIVE_BYTES = 32 * 1024**3


@dataclass(frozen=True)
class Registry:
    host: str  # host[:port], as skopeo and auth files name it
    tls: bool


@dataclass(frozen=True)
class PushResult:
    repository: str
    tag: str
    digest: str
    reference: str  # REGISTRY/REPOSITORY@DIGEST: what a task definition pins
    pushed: bool
    created_repository: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "repository": self.repository,
            "tag": self.tag,
            "digest": self.digest,
            "image": self.reference,
            "pushed": self.pushed,
            "created_repository": self.created_repository,
        }


def check_names(repository: str, tag: str) -> None:
    """Refuse repository and tag names ECR or the registry would refuse (usage errors)."""
    import click

    if not (2 <= len(repository) <= 256 and _REPOSITORY.fullmatch(repository)):
        raise click.UsageError(
            f"--repository {repository!r} is not an ECR repository name (lower-case letters, "
            "digits, and . _ - / between them; 2 to 256 characters)"
        )
    if not _TAG.fullmatch(tag):
        raise click.UsageError(
            f"--tag {tag!r} is not an image tag (letters, digits, _ . -; at most 128, "
            "not starting with . or -)"
        )


def parse_registry(url: str) -> Registry:
    """`https://host[:port]` or `http://host[:port]`; plain HTTP only to a loopback address."""
    import click

    parts = urlsplit(url if "://" in url else f"https://{url}")
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise click.UsageError(f"--registry {url!r}: expected https://HOST[:PORT]")
    host = parts.netloc
    if parts.scheme == "http":
        try:
            loopback = ipaddress.ip_address(parts.hostname).is_loopback
        except ValueError:
            loopback = parts.hostname == "localhost"
        if not loopback:
            raise click.UsageError(
                f"--registry {url!r}: plain http is only allowed to a loopback address "
                "(the token would travel in clear text)"
            )
    return Registry(host=host, tls=parts.scheme == "https")


def ensure_repository(session: Session, name: str) -> bool:
    """Create the repository if missing (immutable tags, scan on push, the lifecycle policy);
    returns True when it was created. An existing repository's settings are left as they are,
    except that a missing lifecycle policy is added."""
    ecr = session.client("ecr")
    created = False
    with aws_errors(session, f"repository {name}"):
        try:
            ecr.describe_repositories(repositoryNames=[name])
        except Exception as error:
            if error_code(error) != "RepositoryNotFoundException":
                raise
            ecr.create_repository(
                repositoryName=name,
                imageTagMutability="IMMUTABLE",
                imageScanningConfiguration={"scanOnPush": True},
                encryptionConfiguration={"encryptionType": "AES256"},
                tags=[{"Key": "nixecs:managed", "Value": "true"}],
            )
            created = True
        try:
            ecr.get_lifecycle_policy(repositoryName=name)
        except Exception as error:
            if error_code(error) != "LifecyclePolicyNotFoundException":
                raise
            ecr.put_lifecycle_policy(
                repositoryName=name,
                lifecyclePolicyText=json.dumps(LIFECYCLE_POLICY, sort_keys=True),
            )
    return created


def registry_credentials(session: Session) -> tuple[str, str, Registry]:
    """(user, password, registry) from GetAuthorizationToken; the password is registered as a
    secret of the session, so no error message can quote it."""
    ecr = session.client("ecr")
    with aws_errors(session, "registry token"):
        data = ecr.get_authorization_token()["authorizationData"][0]
    try:
        user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise OperationalFailure(
            "ecr GetAuthorizationToken: the token is not base64 of user:password"
        ) from None
    if not user or not password:
        raise OperationalFailure("ecr GetAuthorizationToken: the token is not user:password")
    session.secret(password)
    session.secret(data["authorizationToken"])
    return user, password, parse_registry(str(data["proxyEndpoint"]))


class Skopeo:
    """skopeo with a private working directory: the auth file, a trust policy, temp files."""

    def __init__(self, session: Session, registry: Registry, user: str, password: str) -> None:
        self.session = session
        self.registry = registry
        self.binary = shutil.which("skopeo")
        if self.binary is None:
            raise OperationalFailure(
                "skopeo is not installed (Debian: apt-get install skopeo; Nix: nixpkgs#skopeo)"
            )
        # mkdtemp: mode 0700, an unpredictable name; the files in it are created 0600.
        self.dir = Path(tempfile.mkdtemp(prefix="nixecs-image-"))
        auth = {
            "auths": {
                registry.host: {"auth": base64.b64encode(f"{user}:{password}".encode()).decode()}
            }
        }
        self.authfile = self._private_file("auth.json", json.dumps(auth))
        # The policy governs which *source* images skopeo trusts; the source is the archive
        # the caller built, so any is accepted. Our own file: the machine's may reject all.
        self.policy = self._private_file(
            "policy.json", json.dumps({"default": [{"type": "insecureAcceptAnything"}]})
        )

    def _private_file(self, name: str, text: str) -> Path:
        path = self.dir / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        return path

    def close(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Skopeo:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _run(self, args: list[str], timeout: float) -> subprocess.CompletedProcess[bytes]:
        """skopeo in a process group of its own, bytes in and out (a manifest's digest is
        that of its exact bytes: no decoding, no newline translation). Whatever ends this
        call early — the timeout, SIGINT, SIGTERM, SIGHUP (see `signals`) — ends the whole
        group: skopeo's helpers too, not only skopeo."""
        assert self.binary is not None
        command = [
            self.binary,
            "--policy",
            str(self.policy),
            "--tmpdir",
            str(self.dir),
            "--command-timeout",
            f"{int(timeout)}s",
            *args,
        ]
        process = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, "XDG_RUNTIME_DIR": str(self.dir)},
            start_new_session=True,
        )
        try:
            out, err = process.communicate(timeout=timeout + 10)
        except subprocess.TimeoutExpired:
            _end_group(process)
            raise OperationalFailure(
                f"skopeo {args[0]} did not finish within {int(timeout)} s"
            ) from None
        except BaseException:
            _end_group(process)
            raise
        return subprocess.CompletedProcess(command, process.returncode, out, err)

    def _tls(self, flag: str) -> list[str]:
        return [] if self.registry.tls else [f"--{flag}=false"]

    def remote_manifest(self, repository: str, tag: str) -> bytes | None:
        """The raw manifest under the tag, or None when the tag does not exist."""
        result = self._run(
            [
                "inspect",
                "--raw",
                "--authfile",
                str(self.authfile),
                *self._tls("tls-verify"),
                f"docker://{self.registry.host}/{repository}:{tag}",
            ],
            INSPECT_TIMEOUT_S,
        )
        if result.returncode == 0:
            return result.stdout
        message = result.stderr.decode(errors="replace").lower()
        if "manifest unknown" in message or "name unknown" in message:
            return None
        raise OperationalFailure(f"skopeo inspect: {self._last_line(result.stderr)}")

    def archive_config_digest(self, archive: Path) -> str:
        result = self._run(["inspect", "--raw", f"docker-archive:{archive}"], INSPECT_TIMEOUT_S)
        if result.returncode != 0:
            raise OperationalFailure(
                f"{archive}: not an image archive skopeo can read: {self._last_line(result.stderr)}"
            )
        return config_digest(result.stdout, str(archive))

    def push(self, archive: Path, repository: str, tag: str) -> str:
        digestfile = self.dir / "digest"
        result = self._run(
            [
                "copy",
                "--quiet",
                "--retry-times",
                "3",
                "--dest-authfile",
                str(self.authfile),
                *self._tls("dest-tls-verify"),
                "--digestfile",
                str(digestfile),
                f"docker-archive:{archive}",
                f"docker://{self.registry.host}/{repository}:{tag}",
            ],
            PUSH_TIMEOUT_S,
        )
        if result.returncode != 0:
            raise OperationalFailure(f"skopeo copy: {self._last_line(result.stderr)}")
        digest = digestfile.read_text(encoding="ascii").strip()
        if not _DIGEST.fullmatch(digest):
            raise OperationalFailure(f"skopeo copy wrote no digest (got {digest[:80]!r})")
        return digest

    def _last_line(self, stderr: bytes) -> str:
        text = stderr.decode(errors="replace")
        lines = [line for line in text.strip().splitlines() if line.strip()]
        text = lines[-1] if lines else "failed without a message"
        # skopeo logs as `time=… level=fatal msg="…"`: keep the message.
        match = re.search(r'msg="((?:[^"\\]|\\.)*)"', text)
        if match:
            text = match.group(1).replace('\\"', '"')
        # Scrubbed first, then cut: a cut through a secret would leave its prefix unscrubbed.
        return self.session.scrub(text)[:500]


def _end_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to skopeo's process group, SIGKILL after a grace period, then reap."""
    for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, sig)
        try:
            process.wait(timeout=grace)
            return
        except subprocess.TimeoutExpired:
            continue


# SIGTERM/SIGHUP → Terminated while pushing (nixecs.signals, shared with other commands)
signals = terminating


def regular_file(path: Path) -> None:
    """Refuse anything but a regular file without blocking on it: a FIFO is opened with
    O_NONBLOCK (a plain open waits for a writer) and checked with fstat."""
    import click

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as error:
        raise click.BadParameter(f"{path}: {error.strerror or error}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise click.BadParameter(
                f"{path} is not a regular file (a FIFO, a device or a directory): "
                "give the image archive the flake built"
            )
    finally:
        os.close(fd)


def reference_tag(reference: str) -> str | None:
    """The tag of an image reference as a manifest.json `RepoTags` entry writes it
    (`[HOST[:PORT]/]NAME[:TAG][@DIGEST]`, distribution/reference's grammar): None for a
    digest reference or a name without a tag. The colon of a registry's port is not a tag's."""
    if "@" in reference:
        return None
    name = reference.rpartition("/")[2]  # the port can only be before the last slash
    if ":" not in name:
        return None
    tag = name.rpartition(":")[2]
    return tag or None


def config_digest(manifest: bytes, where: str) -> str:
    """The config blob's digest of an image manifest (Docker v2 schema 2 or OCI)."""
    try:
        data = json.loads(manifest)
        digest = data["config"]["digest"]
    except (ValueError, KeyError, TypeError):
        raise OperationalFailure(
            f"{where}: not a single-image manifest (an index or list cannot be compared)"
        ) from None
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise OperationalFailure(f"{where}: the manifest's config digest is malformed")
    return digest


def _plain_archive(archive: Path, workdir: Path) -> Path:
    """A gzip-compressed archive (dockerTools' default `.tar.gz`) decompressed into workdir.

    skopeo 1.9.3 (Debian 12) fails on gzip-compressed docker-archive input ("loading tar
    component manifest.json: unexpected EOF", observed here); an uncompressed tar is read by
    every version. Decompression is bounded by MAX_ARCHIVE_BYTES.
    """
    with archive.open("rb") as handle:
        if handle.read(2) != b"\x1f\x8b":
            return archive
    plain = workdir / "image.tar"
    written = 0
    fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with gzip.open(archive, "rb") as source, os.fdopen(fd, "wb") as target:
            while chunk := source.read(1 << 20):
                written += len(chunk)
                if written > MAX_ARCHIVE_BYTES:
                    raise OperationalFailure(
                        f"{archive}: larger than {MAX_ARCHIVE_BYTES >> 30} GiB once decompressed"
                    )
                target.write(chunk)
    except (OSError, EOFError) as error:
        raise OperationalFailure(f"{archive}: not a readable gzip archive ({error})") from None
    return plain


def archive_tag(archive: Path) -> str | None:
    """The tag the archive's manifest.json names (dockerTools' `tag`), when it names one."""
    import tarfile

    try:
        with tarfile.open(archive, "r:") as tar:
            for member in tar:
                if member.name.lstrip("./") != "manifest.json" or not member.isfile():
                    continue
                if member.size > 1 << 20:
                    return None
                handle = tar.extractfile(member)
                entries = json.loads(handle.read()) if handle else None
                tags = {
                    reference_tag(str(t))
                    for entry in entries or []
                    if isinstance(entry, dict)
                    for t in entry.get("RepoTags") or []
                }
                return tags.pop() if len(tags) == 1 else None
    except (OSError, tarfile.TarError, ValueError):
        return None
    return None


def push(
    session: Session,
    archive: Path,
    repository: str,
    tag: str | None,
    registry_override: str | None = None,
) -> PushResult:
    """Push `archive` to REPOSITORY:TAG; a no-op when the tag already holds this image.
    Without a tag, the one the archive itself names (dockerTools' `tag`) is used."""
    import click

    if tag is not None:
        check_names(repository, tag)
    override = parse_registry(registry_override) if registry_override else None
    regular_file(archive)
    with signals(), tempfile.TemporaryDirectory(prefix="nixecs-archive-") as workdir:
        plain = _plain_archive(archive, Path(workdir))
        if tag is None:
            tag = archive_tag(plain)
            if tag is None:
                raise click.UsageError(f"{archive} names no single tag: give --tag")
        check_names(repository, tag)
        return _push(session, plain, repository, tag, override)


def _push(
    session: Session, plain: Path, repository: str, tag: str, override: Registry | None
) -> PushResult:
    created = ensure_repository(session, repository)
    user, password, registry = registry_credentials(session)
    with Skopeo(session, override or registry, user, password) as skopeo:
        local = skopeo.archive_config_digest(plain)
        remote = skopeo.remote_manifest(repository, tag)
        if remote is not None:
            if config_digest(remote, f"{repository}:{tag}") != local:
                raise OperationalFailure(
                    f"{repository}:{tag} already holds a different image (tags are immutable): "
                    "push it under a new tag"
                )
            digest = "sha256:" + hashlib.sha256(remote).hexdigest()
            pushed = False
        else:
            digest = skopeo.push(plain, repository, tag)
            pushed = True
        host = skopeo.registry.host
    return PushResult(
        repository=repository,
        tag=tag,
        digest=digest,
        reference=f"{host}/{repository}@{digest}",
        pushed=pushed,
        created_repository=created,
    )
