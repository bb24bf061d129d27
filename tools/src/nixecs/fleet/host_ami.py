"""A group's `ami:`: an AMI id, or `{host: web, rev: …}` — the newest AMI `nixecs ami publish
--host web` tagged in the account, found per region at deploy time (aws/host_amis.py).

`ami:` stays required: a group that omits it does not silently pick up whatever was published
last for its `host:` (docs/fleet.md). With the mapping form the group's `host:` may be left
out (it is the mapping's host); when both are written they must agree (E503).
"""

from __future__ import annotations

from .. import settings as s
from ..lazyre import lazy
from ..records import dataclass
from ..settings import Issue
from .decl import obj, req, section, string
from .yaml12 import Path

AMI_RE = lazy(r"ami-(?:[0-9a-f]{8}|[0-9a-f]{17})")
HOST_RE = lazy(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# A git commit, abbreviated (7+) or whole; matched as a prefix of the AMI's nixecs:flake tag.
REV_RE = lazy(r"[0-9a-f]{7,40}")
AMI_KEYS = ("host", "rev")
E_HOST_MISMATCH = "E503"
# A flake reference that pins a revision: `…?rev=<sha>` / `&rev=`, or github:owner/repo/<sha>.
_FLAKE_REV = lazy(r"(?:[?&]rev=|^(?:github|gitlab|sourcehut):[^/]+/[^/?]+/)([0-9a-f]{40})")


BY_HOST = obj(
    "the newest available AMI of this account tagged by `nixecs ami publish --host "
    "HOST` (and the flake revision: `rev:`, else the one `flake:` pins), found in "
    "the deploy's region by deploy, deploy --plan, roll --fleet and validate --aws "
    "(E504 when there is none); `host:` of the group defaults to it (E503 when "
    "they differ)",
    order=AMI_KEYS,
    host=req(
        string(
            "the host's nixosConfigurations name",
            pattern=HOST_RE.pattern,
            rule="a nixosConfigurations name such as web",
        )
    ),
    rev=string(
        "a git commit of the fleet's flake: only AMIs tagged with it",
        pattern=REV_RE.pattern,
        rule="a git commit of the fleet's flake (7 to 40 lowercase hex digits)",
        example="3f2a9c1",
    ),
)


@dataclass(frozen=True)
class AmiByHost:
    """`ami: {host: web, rev: …}`: resolved per region to an AMI id before deploy."""

    host: str
    rev: str | None
    path: Path  # the `ami:` value's path (errors point at it)

    @property
    def placeholder(self) -> str:
        """What an unresolved group's ImageId reads in `render` output: deploy resolves it."""
        return f"nixecs-host:{self.host}" + (f"@{self.rev}" if self.rev else "")


def flake_rev(flake: str) -> str | None:
    """The revision a fleet's `flake:` reference pins, if it pins one."""
    found = _FLAKE_REV.search(flake)
    return found.group(1) if found else None


def parse_group_ami(
    m: dict[str, object], path: Path, issues: list[Issue], host: str | None
) -> tuple[str | None, str | None, AmiByHost | None]:
    """The group's (host, ami, by_host) from its mapping `m`; `host` as the loader read it
    (its default when `host:` is not written). None values: an issue was recorded."""
    if "ami" not in m:
        return host, None, None  # the loader reports the missing required key
    value = m["ami"]
    if not isinstance(value, dict):
        ami = s.check_pattern(
            value,
            (*path, "ami"),
            issues,
            AMI_RE,
            "an AMI id such as ami-0123456789abcdef0, or {host: NAME} for the newest AMI "
            "`nixecs ami publish --host NAME` made",
        )
        return host, ami, None
    ami_path = (*path, "ami")
    before = len(issues)
    spec = section(BY_HOST, value, ami_path, issues)
    if spec is None or len(issues) != before or "host" not in spec:
        return host, None, None
    named = str(spec["host"])
    given = spec.get("rev")
    rev = str(given) if given is not None else None
    if "host" in m and host is not None and host != named:
        issues.append(
            Issue(
                (*ami_path, "host"),
                E_HOST_MISMATCH,
                f"ami.host {named!r} is not the group's host {host!r}: the instances would boot "
                "another host's image",
            )
        )
        return host, None, None
    by_host = AmiByHost(named, rev, ami_path)
    return named, by_host.placeholder, by_host
