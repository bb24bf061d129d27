"""Render a fleet: every group's userdata and one CloudFormation stack per cluster, written
atomically under an output directory with a manifest (DESIGN §6)."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping
from typing import TYPE_CHECKING

from .atomic import (
    open_directory,
    open_existing_directory,
    read_regular,
    remove_stale_temporaries,
    write_atomic,
    write_in,
)
from .diagnostics import Diagnostic, InvalidInput, OperationalFailure, Report
from .fleet.model import Cluster, Fleet
from .fleet.yaml12 import Path as FleetPath
from .naming import stack_name
from .records import dataclass, field
from .userdata import UserdataTooLarge, render_userdata

if TYPE_CHECKING:
    from pathlib import Path


@dataclass
class RenderedGroup:
    cluster: str
    group: str
    format: str
    data: bytes

    @property
    def gzipped(self) -> bool:
        return self.data[:2] == b"\x1f\x8b"


@dataclass
class RenderedCluster:
    name: str
    groups: dict[str, RenderedGroup]
    template: dict[str, object]
    stack_text: str
    # The final template's warnings (nixecs.template_checks); its errors stop rendering.
    warnings: list[Diagnostic] = field(default_factory=list)

    def resources_by_type(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        resources = self.template.get("Resources", {})
        assert isinstance(resources, Mapping)
        for resource in resources.values():
            kind = str(resource["Type"])
            counts[kind] = counts.get(kind, 0) + 1
        return dict(sorted(counts.items()))


@dataclass
class Rendered:
    fleet: Fleet
    clusters: dict[str, RenderedCluster] = field(default_factory=dict)

    def warnings(self) -> list[Diagnostic]:
        return [w for cluster in self.clusters.values() for w in cluster.warnings]

    def manifest(self, source: str) -> dict[str, object]:
        # hashlib (OpenSSL) here, not nixecs.sha: megabytes of templates hash several times
        # faster there, and only writing a render needs the digests (`validate` does not).
        import hashlib

        def sha(data: bytes) -> str:
            return hashlib.sha256(data).hexdigest()

        return {
            "version": 1,
            "fleet": source,
            "region": self.fleet.region,
            "flake": self.fleet.flake,
            "clusters": {
                name: {
                    "stack": f"{name}/stack.yaml",
                    "stack_sha256": sha(cluster.stack_text.encode()),
                    "resources": cluster.resources_by_type(),
                    "groups": {
                        group.group: {
                            "userdata": f"{name}/groups/{group.group}.userdata",
                            "format": group.format,
                            "bytes": len(group.data),
                            "gzip": group.gzipped,
                            "sha256": sha(group.data),
                        }
                        for group in cluster.groups.values()
                    },
                }
                for name, cluster in self.clusters.items()
            },
        }


def render_cluster(fleet: Fleet, cluster: Cluster) -> RenderedCluster:
    from .cloudformation import build_stack, dump_template, limit_problems
    from .cloudformation.overrides import OverrideError

    groups: dict[str, RenderedGroup] = {}
    report = Report()
    for group in cluster.groups.values():
        try:
            groups[group.name] = RenderedGroup(
                cluster.name, group.name, group.userdata, render_userdata(fleet, group)
            )
        except UserdataTooLarge as error:
            report.items.append(
                Diagnostic(
                    "E111", str(error), fleet.document.locate((*group.path, "userdata"), key=True)
                )
            )
    if report.has_errors:
        raise InvalidInput(report)
    try:
        template = build_stack(fleet, cluster, {name: g.data for name, g in groups.items()})
    except OverrideError as error:  # E160-E162: the cluster's `overrides:` do not fit
        for misfit in error.problems:
            report.add(misfit.code, misfit.message, fleet.document.locate(misfit.path, key=True))
        raise InvalidInput(report) from None
    for problem in limit_problems(template):
        report.add(
            "E115",
            f"stack {stack_name(cluster.name)}: {problem}",
            fleet.document.locate(cluster.path, key=True),
        )
    report.extend(final_template_problems(fleet, cluster, template))
    if report.has_errors:
        raise InvalidInput(report)
    return RenderedCluster(cluster.name, groups, template, dump_template(template), report.warnings)


def final_template_problems(
    fleet: Fleet, cluster: Cluster, template: Mapping[str, object]
) -> list[Diagnostic]:
    """nixecs.template_checks on the overridden template, each located at the first override
    of its resource, else where the fleet file made it (group, service, `task_role:`), else
    at the cluster. A hop limit no override set is the model's own
    value, which W101 reported already at the group's key."""
    from .cloudformation.ids import LogicalIds
    from .template_checks import check_template

    def made() -> dict[str, FleetPath]:
        """Where the fleet file made each role and launch template (a task role's managed
        policies come from `task_role:`); only computed when a finding needs it."""
        ids = LogicalIds.for_cluster(cluster)
        found: dict[str, FleetPath] = {}
        for group in cluster.groups.values():
            for kind in ("InstanceRole", "LaunchTemplate"):
                found[ids.group(group.name, kind)] = group.path
        for service in cluster.task_definitions:
            found[ids.service(service.name, "ExecutionRole")] = service.path
            found[ids.service(service.name, "TaskRole")] = (*service.path, "task_role")
        return found

    overridden: dict[str, FleetPath] = {}
    for override in reversed(cluster.overrides):
        overridden[override.logical_id] = override.path
    found = []
    origins: dict[str, FleetPath] | None = None
    for finding in check_template(template, fleet.region):
        path = overridden.get(finding.logical_id)
        if path is None and finding.code == "W401":
            continue
        if path is None:
            origins = made() if origins is None else origins
            path = origins.get(finding.logical_id, cluster.path)
        where = fleet.document.locate(path, key=True)
        message = f"stack {stack_name(cluster.name)}, {finding.logical_id}: {finding.message}"
        found.append(Diagnostic(finding.code, message, where))
    return found


def render_fleet(fleet: Fleet, clusters: list[str] | None = None) -> Rendered:
    """Everything for the named clusters (default: all); InvalidInput when a group's userdata
    does not fit, with every such group reported."""
    rendered = Rendered(fleet)
    report = Report()
    for name, cluster in fleet.clusters.items():
        if clusters is not None and name not in clusters:
            continue
        try:
            rendered.clusters[name] = render_cluster(fleet, cluster)
        except InvalidInput as error:
            report.extend(error.report.items)
    if report.has_errors:
        raise InvalidInput(report)
    return rendered


# CreateChangeSet's TemplateBody: "A structure that contains the body of the revised template,
# with a minimum length of 1 byte and a maximum length of 51,200 bytes" (botocore 1.44.8's
# cloudformation model; https://docs.aws.amazon.com/AWSCloudFormation/latest/APIReference/API_CreateChangeSet.html);
# a larger template goes as a TemplateURL in S3 (deploy.upload_template).
INLINE_TEMPLATE_LIMIT = 51_200
# A file bigger than anything render writes is not ours (and is not read to find out).
MAX_OWNED_BYTES = 64 * 1024 * 1024


def inline_limit_problems(rendered: Rendered, *, bucket: str = "") -> Report:
    """E130 for every stack `deploy` could not send inline, unless a bucket is configured."""
    report = Report()
    if bucket or rendered.fleet.template_bucket:
        return report
    for name, cluster in rendered.clusters.items():
        size = len(cluster.stack_text.encode())
        if size > INLINE_TEMPLATE_LIMIT:
            report.add(
                "E130",
                f"stack {stack_name(name)} is {size} bytes, over CloudFormation's "
                f"{INLINE_TEMPLATE_LIMIT}-byte inline limit: set `template_bucket:` in the fleet "
                "(or `deploy --template-bucket`) so that deploy sends it through S3",
                rendered.fleet.document.locate(rendered.fleet.clusters[name].path, key=True),
            )
    return report


def write_rendered(rendered: Rendered, out: str | os.PathLike[str], source: str) -> Path:
    """Write every file atomically; the manifest last, so a complete manifest means a complete
    render. OperationalFailure naming the file when one cannot be written."""
    try:
        from pathlib import Path  # writing only: validate renders in memory

        return _write_all(rendered, Path(out), source)
    except OSError as error:
        where = error.filename or out
        raise OperationalFailure(f"cannot write {where}: {error.strerror or error}") from None


def _write_all(rendered: Rendered, root: Path, source: str) -> Path:
    # `root=`: below the output directory no symlink is followed (atomic.open_directory) — a
    # cluster directory planted as a link to /etc is refused, never written through. The
    # output directory itself is the caller's choice, and followed.
    # Each directory is opened (and checked) once for all its files, not once per file: a
    # thousand-group render opened it a few thousand times (issue 18, item 5).
    top = str(root)
    for name, cluster in rendered.clusters.items():
        _write_files(top, str(root / name), {"stack.yaml": cluster.stack_text})
        _write_files(
            top,
            str(root / name / "groups"),
            {f"{group.group}.userdata": group.data for group in cluster.groups.values()},
        )
    manifest = root / "manifest.json"
    _remove_stale(rendered, root, manifest)
    write_atomic(
        manifest,
        json.dumps(rendered.manifest(source), indent=2, sort_keys=True) + "\n",
        durable=False,
        root=top,
    )
    return manifest


def _write_files(top: str, directory: str, files: dict[str, bytes | str]) -> None:
    """Write `files` (name → content) atomically into `directory` below `top`, which is
    opened once, with no symlink followed below `top`; our temporaries a killed render left
    there are removed first (atomic.write_atomic's `root=` behaviour)."""
    if not files:
        return
    fd = open_directory(directory, top)
    try:
        remove_stale_temporaries(fd, *files)
        for name, data in files.items():
            try:
                write_in(fd, name, data, durable=False)
            except OSError as error:
                if error.filename is None:  # name the file, as write_atomic's errors do
                    error.filename = os.path.join(directory, name)
                raise
    finally:
        os.close(fd)


def _owned_files(manifest: Path) -> dict[str, dict[str, str]]:
    """cluster → {file (relative path) → the SHA-256 a previous render recorded for it} from
    its manifest.json; nothing when there is no readable manifest (then nothing is ours to
    remove). A file listed without a well-formed hash is not ours either."""
    try:
        # read_regular: a FIFO planted as manifest.json must not hang the render
        previous = json.loads(
            read_regular(str(manifest), MAX_OWNED_BYTES, follow=False).decode("utf-8")
        )
        clusters = previous["clusters"]
        owned: dict[str, dict[str, str]] = {}
        for name, entry in clusters.items():
            files = {str(entry["stack"]): str(entry.get("stack_sha256", ""))}
            files |= {
                str(g["userdata"]): str(g.get("sha256", ""))
                for g in entry.get("groups", {}).values()
            }
            owned[str(name)] = {f: h for f, h in files.items() if _SHA256.fullmatch(h)}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}
    return owned


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _remove_stale(rendered: Rendered, root: Path, manifest: Path) -> None:
    """Remove what the previous render wrote and this one no longer produces: files listed in
    the previous manifest.json only (never anything else in the directory), of clusters
    rendered now or no longer in the fleet (a `--cluster` render leaves the others alone),
    and only while they hold exactly what that render wrote (the SHA-256 it recorded): a file
    edited or replaced since is someone's, and stays. Then the directories that emptied.
    A listed path outside the directory, or reached through a symlink, is left alone."""
    produced = {f"{name}/stack.yaml" for name in rendered.clusters} | {
        f"{name}/groups/{group}.userdata"
        for name, cluster in rendered.clusters.items()
        for group in cluster.groups
    }
    for cluster, files in _owned_files(manifest).items():
        if cluster not in rendered.clusters and cluster in rendered.fleet.clusters:
            continue
        for relative in sorted(set(files) - produced):
            parts = relative.split("/")
            if any(part in ("", ".", "..") for part in parts):
                continue
            if _remove_if_unchanged(str(root), parts, files[relative]):
                _remove_empty_parents(str(root), parts[:-1])


def _remove_if_unchanged(root: str, parts: list[str], sha256: str) -> bool:
    """Unlink root/parts… when it is a regular file with this content, reached without
    following a symlink; False (and nothing removed) otherwise."""
    try:
        directory = open_existing_directory(root, parts[:-1])
    except OSError:  # missing, or a symlink on the way
        return False
    try:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(parts[-1], flags, dir_fd=directory)
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_OWNED_BYTES:
                return False
            import hashlib  # as in Rendered.manifest

            digest = hashlib.sha256()
            while chunk := os.read(fd, 1 << 20):
                digest.update(chunk)
        finally:
            os.close(fd)
        if digest.hexdigest() != sha256:
            return False
        now = os.stat(parts[-1], dir_fd=directory, follow_symlinks=False)
        if (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino):
            return False  # replaced while it was read
        os.unlink(parts[-1], dir_fd=directory)
        return True
    except OSError:
        return False
    finally:
        os.close(directory)


def _remove_empty_parents(root: str, parts: list[str]) -> None:
    while parts:
        try:
            parent = open_existing_directory(root, parts[:-1])
        except OSError:
            return
        try:
            os.rmdir(parts[-1], dir_fd=parent)  # only when empty; never follows a symlink
        except OSError:
            return
        finally:
            os.close(parent)
        parts = parts[:-1]
