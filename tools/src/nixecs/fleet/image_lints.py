"""W171: a plain image reference without a tag or digest (issue 20, item 7), e.g.
`public.ecr.aws/aws-observability/aws-for-fluent-bit`. Docker reads it as `:latest`
("If you don't specify a tag, Docker uses `latest`", docs.docker.com `docker image pull`),
which moves: instances that pull at different times run different images, and a task started
after a push is not the one that was deployed. The ECR form always has a tag or digest (and
`deploy` pins the digest: fleet/images.py).

Also `ecr_repositories`: the ECR repositories a service's containers name, for the
execution role's pull permissions (docs/aws.md "Images").
"""

from __future__ import annotations

from ..diagnostics import Diagnostic
from ..lazyre import lazy
from .model import Fleet, Service

# A private registry host (https://docs.aws.amazon.com/AmazonECR/latest/userguide/Registries.html)
# and the repository after it.
ECR_HOST_RE = lazy(
    r"(?P<account>[0-9]{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/"
    r"(?P<repository>[^:@]+)"
)


def untagged(reference: str) -> bool:
    """No `@digest`, and no `:tag` in the last path component (a colon before a slash is a
    registry's port: `registry:5000/app` has no tag)."""
    return "@" not in reference and ":" not in reference.rsplit("/", 1)[-1]


def lint_images(fleet: Fleet) -> list[Diagnostic]:
    return [
        Diagnostic(
            "W171",
            f"image {c.image.reference} has no tag or digest: it is read as :latest and drifts "
            "(instances pull it at different times); give a tag, or better a digest",
            fleet.document.locate((*c.path, "image")),
        )
        for cluster in fleet.clusters.values()
        for service in cluster.task_definitions
        for c in service.containers
        if c.image.reference is not None and untagged(c.image.reference)
    ]


def ecr_repositories(service: Service) -> list[tuple[str | None, str | None, str]]:
    """(account, region, repository) of every ECR image of the service's containers; None
    for the stack's own account and region (the `{ecr: REPO}` form)."""
    found: list[tuple[str | None, str | None, str]] = []
    for c in service.containers:
        if c.image.ecr is not None:
            item: tuple[str | None, str | None, str] = (None, None, c.image.ecr)
        elif c.image.reference and (m := ECR_HOST_RE.match(c.image.reference)):
            item = (m["account"], m["region"], m["repository"])
        else:
            continue
        if item not in found:
            found.append(item)
    return found
