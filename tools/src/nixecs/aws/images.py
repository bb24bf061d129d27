"""Resolve ECR image references to digests: what `deploy` pins task definitions to.

Works on a list of ImageRef (fleet/images.py), whatever holds them; `pin_fleet` applies it
to the services of a fleet. ecr:DescribeImages (https://docs.aws.amazon.com/AmazonECR/latest/APIReference/API_DescribeImages.html)
takes up to 100 imageIds a call (botocore's ECR model: ImageIdentifierList max 100) and
answers each image's `imageDigest` and `imageTags`; it fails the whole call with
RepositoryNotFoundException or ImageNotFoundException (as moto does too), so after an
ImageNotFoundException each id of that chunk is asked alone to name the missing ones.

Codes (preflight): E136 a tag that is not in its repository, E137 a repository that does
not exist, E138 a digest that is not in its repository.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from ..diagnostics import InvalidInput, Report
from ..fleet.containers import Container
from ..fleet.images import ImageRef
from ..fleet.model import Fleet, Service
from .session import Session, error_code

MAX_IDS = 100


@dataclass(frozen=True)
class Problem:
    image: ImageRef
    code: str
    message: str


@dataclass
class Resolution:
    # (repository, tag or digest) → digest
    digests: dict[tuple[str, str], str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def digest_of(self, image: ImageRef) -> str | None:
        if image.ecr is None:
            return None
        key = image.digest or image.tag
        assert key is not None
        return self.digests.get((image.ecr, key))


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _image_id(key: str) -> dict[str, str]:
    return {"imageDigest": key} if key.startswith("sha256:") else {"imageTag": key}


def _describe(ecr: Any, repository: str, keys: list[str]) -> dict[str, str] | None:
    """key → digest for the keys found; None when one of them is missing."""
    from botocore.exceptions import ClientError

    try:
        response = ecr.describe_images(
            repositoryName=repository, imageIds=[_image_id(k) for k in keys]
        )
    except ClientError as error:
        if error_code(error) == "ImageNotFoundException":
            return None
        raise
    found: dict[str, str] = {}
    for detail in response.get("imageDetails", []):
        digest = detail["imageDigest"]
        found[digest] = digest
        for tag in detail.get("imageTags", []):
            found[tag] = digest
    return {k: found[k] for k in keys if k in found}


def resolve(session: Session, images: Iterable[ImageRef]) -> Resolution:
    """Every ECR image of `images` looked up in the session's account and region."""
    from botocore.exceptions import ClientError

    wanted: dict[str, set[str]] = {}
    for image in images:
        if image.ecr is not None:
            key = image.digest or image.tag
            assert key is not None
            wanted.setdefault(image.ecr, set()).add(key)
    result = Resolution()
    if not wanted:
        return result
    ecr = session.client("ecr")
    for repository, keys in sorted(wanted.items()):
        found: dict[str, str] = {}
        try:
            for chunk in _chunks(sorted(keys), MAX_IDS):
                some = _describe(ecr, repository, chunk)
                if some is None:  # name the missing ones
                    some = {}
                    for key in chunk:
                        some |= _describe(ecr, repository, [key]) or {}
                found |= some
        except ClientError as error:
            if error_code(error) != "RepositoryNotFoundException":
                raise
            for key in sorted(keys):
                result.problems.append(
                    Problem(
                        ImageRef(ecr=repository, **{_field(key): key}),
                        "E137",
                        f"no ECR repository {repository!r} in this account and region "
                        "(`nixecs image push ARCHIVE --repository "
                        f"{repository}` creates it)",
                    )
                )
            continue
        for key in sorted(keys):
            if key in found:
                result.digests[repository, key] = found[key]
            elif key.startswith("sha256:"):
                result.problems.append(
                    Problem(
                        ImageRef(ecr=repository, digest=key),
                        "E138",
                        f"digest {key} is not in ECR repository {repository!r}",
                    )
                )
            else:
                result.problems.append(
                    Problem(
                        ImageRef(ecr=repository, tag=key),
                        "E136",
                        f"tag {key!r} is not in ECR repository {repository!r} (push it first)",
                    )
                )
    return result


def _field(key: str) -> str:
    return "digest" if key.startswith("sha256:") else "tag"


def _containers(fleet: Fleet) -> list[Container]:
    return [
        container
        for cluster in fleet.clusters.values()
        for service in cluster.task_definitions
        for container in service.containers
    ]


def report_problems(fleet: Fleet, resolution: Resolution, report: Report) -> None:
    """Each problem at every container's `image:` that names the image (the shorthand's one
    container is the service itself: its path is the service's)."""
    for problem in resolution.problems:
        for container in _containers(fleet):
            image = container.image
            if (image.ecr, image.digest or image.tag) == (
                problem.image.ecr,
                problem.image.digest or problem.image.tag,
            ):
                report.add(
                    problem.code, problem.message, fleet.document.locate((*container.path, "image"))
                )


def check_fleet(session: Session, fleet: Fleet, report: Report) -> Resolution:
    """Preflight: E136-E138 into `report`; the resolution for pinning."""
    resolution = resolve(session, (c.image for c in _containers(fleet)))
    report_problems(fleet, resolution, report)
    return resolution


def pin_fleet(fleet: Fleet, resolution: Resolution) -> Fleet:
    """The fleet with every ECR image of every container pinned to its digest (InvalidInput
    if one is not resolved: every problem at its container's `image:`)."""
    report = Report()
    report_problems(fleet, resolution, report)
    if report.has_errors:
        raise InvalidInput(report)

    def pinned(container: Container) -> Container:
        digest = resolution.digest_of(container.image)
        return replace(container, image=container.image.pinned(digest)) if digest else container

    def pinned_task(service: Service) -> Service:
        containers = tuple(pinned(c) for c in service.containers)
        # Service.image is the first container's (nixecs.fleet.model).
        return replace(service, containers=containers, image=containers[0].image)

    clusters = {}
    for name, cluster in fleet.clusters.items():
        services = {key: pinned_task(service) for key, service in cluster.services.items()}
        # a cluster's `tasks:` (scheduled and one-off) run pinned images as its services do
        tasks = {
            key: replace(scheduled, task=pinned_task(scheduled.task))
            for key, scheduled in cluster.tasks.items()
        }
        clusters[name] = replace(cluster, services=services, tasks=tasks)
    return replace(fleet, clusters=clusters)
