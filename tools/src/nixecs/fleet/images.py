"""A service's `image:` as a model object: a plain reference, or an ECR repository with a tag
or a digest (`image: {ecr: bananas, tag: "1.0"}` / `{ecr: bananas, digest: "sha256:…"}`).

The ECR form names a repository of the cluster's own account and region; `deploy` resolves a
tag to its digest (aws/images.py) and the task definition pins
`ACCOUNT.dkr.ecr.REGION.amazonaws.com/REPO@sha256:…`, so a tag pushed again later never
changes running tasks. `render` (offline) cannot resolve: there the task definition carries
`REPO:TAG` under the same registry, and `deploy` replaces it by the digest.

Self-contained on purpose (parse a node into an ImageRef): whoever parses a container's
`image:` calls `parse_image`.
"""

from __future__ import annotations

from dataclasses import replace

from .. import settings as s
from ..lazyre import lazy
from ..records import dataclass
from ..settings import Issue
from .decl import as_str, check, either, keys, obj, refused, req, string, values
from .yaml12 import Path

# Plain references: any non-blank string here; the Docker reference grammar is checked
# with the other offline AWS rules (E126, fleet/aws_rules.py).
PLAIN_RE = lazy(r"[^\s]{1,255}")
# botocore's ECR model (data/ecr/2015-09-21/service-2.json, botocore 1.44): RepositoryName
# is 2-256 characters of this pattern; ImageTag is 1-300 characters.
ECR_REPOSITORY_RE = lazy(
    r"(?=.{2,256}$)[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)
ECR_REPOSITORY_RULE = (
    "an ECR repository name: 2-256 lower-case letters and digits, separated by . _ - or /"
)
# A tag as the Docker reference grammar (distribution/reference) allows it; ECR takes these.
TAG_RE = lazy(r"[\w][\w.-]{0,127}")
TAG_RULE = "an image tag: up to 128 letters, digits, _ . -, not starting with . or -"
DIGEST_RE = lazy(r"sha256:[0-9a-f]{64}")
DIGEST_RULE = "a digest: sha256: and 64 lower-case hex digits"
# The declaration (fleet/decl.py).
PLAIN = string(
    "a Docker image reference",
    pattern=PLAIN_RE.pattern,
    rule="a container image reference",
    example="nginx:1.27",
)
ECR_IMAGE = obj(
    "an image in the account's ECR (deploy pins a tag to its digest)",
    order=("ecr", "tag", "digest"),
    ecr=req(
        string(
            ECR_REPOSITORY_RULE,
            pattern=ECR_REPOSITORY_RE.pattern,
            rule=ECR_REPOSITORY_RULE,
            example="bananas",
        )
    ),
    tag=string(TAG_RULE, pattern=TAG_RE.pattern, rule=TAG_RULE, example="1.0"),
    digest=string(DIGEST_RULE, pattern=DIGEST_RE.pattern, rule=DIGEST_RULE),
)
IMAGE = either(
    "a Docker image reference, or an ECR repository of the account with a tag or a digest",
    PLAIN,
    ECR_IMAGE,
    example={"ecr": "bananas", "tag": "1.0"},
    what="an image reference or a mapping {ecr, tag | digest}",
)


@dataclass(frozen=True)
class ImageRef:
    """Exactly one of `reference` (plain) or `ecr` (with `tag` or `digest`, or both once
    `deploy` has resolved the tag)."""

    reference: str | None = None
    ecr: str | None = None
    tag: str | None = None
    digest: str | None = None

    @property
    def is_ecr(self) -> bool:
        return self.ecr is not None

    @property
    def needs_resolution(self) -> bool:
        return self.ecr is not None and self.digest is None

    def pinned(self, digest: str) -> ImageRef:
        return replace(self, digest=digest)

    def repository_path(self) -> str:
        """What follows the registry host: `REPO@sha256:…`, else `REPO:TAG`."""
        assert self.ecr is not None
        return f"{self.ecr}@{self.digest}" if self.digest else f"{self.ecr}:{self.tag}"

    def describe(self) -> str:
        """For messages: how the fleet file wrote it."""
        if self.reference is not None:
            return self.reference
        return (
            f"ecr:{self.ecr}"
            + (f":{self.tag}" if self.tag else "")
            + (f"@{self.digest}" if self.digest else "")
        )


def ecr_registry(account: str, region: str, url_suffix: str = "amazonaws.com") -> str:
    """The account's private registry host. https://docs.aws.amazon.com/AmazonECR/latest/userguide/Registries.html:
    `aws_account_id.dkr.ecr.region.amazonaws.com`."""
    return f"{account}.dkr.ecr.{region}.{url_suffix}"


def parse_image(value: object, path: Path, issues: list[Issue]) -> ImageRef | None:
    """A fleet file's `image:` node: a string, or a mapping {ecr, tag | digest}. Problems go
    to `issues` at their key; None then."""
    if isinstance(value, str):
        reference = check(PLAIN, value, path, issues)
        return ImageRef(reference=as_str(reference)) if reference is not None else None
    if not isinstance(value, dict):
        issues.append(
            Issue(
                path,
                s.E_TYPE,
                f"expected {IMAGE.what}, got {s.type_name(value)}",
            )
        )
        return None
    m = keys(ECR_IMAGE, value, path, issues)
    if m is None or "ecr" not in m:
        return None
    before = len(issues)
    v = values(ECR_IMAGE, m, path, issues)
    repository, tag, digest = v.get("ecr"), v.get("tag"), v.get("digest")
    if "tag" in m and "digest" in m:
        issues.append(
            Issue(
                path, s.E_VALUE, "give a tag or a digest, not both: a digest already pins the image"
            )
        )
    elif (
        "tag" not in m
        and "digest" not in m
        and not refused(issues, (*path, "tag"))
        and not refused(issues, (*path, "digest"))
    ):
        issues.append(Issue(path, s.E_VALUE, "an ecr image needs a tag or a digest"))
    if len(issues) != before or repository is None:
        return None
    return ImageRef(
        ecr=as_str(repository),
        tag=as_str(tag) if tag is not None else None,
        digest=as_str(digest) if digest is not None else None,
    )
