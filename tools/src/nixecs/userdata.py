"""Userdata for a group in the `settings` or `nix` format (DESIGN §5), within EC2's 16 KB.

The bytes returned are exactly what EC2 receives: UTF-8 text, or gzip when the text is
larger than 16 KB (the host applier inflates it). Gzip output is deterministic (mtime 0).
"""

from __future__ import annotations

from . import formats, settings
from .fleet.model import Fleet, Group
from .nix import NixCode, to_nix

LIMIT = formats.EC2_USERDATA_LIMIT


class UserdataTooLarge(ValueError):
    """Userdata over 16 KB even after gzip."""

    def __init__(self, group: Group, raw: int, compressed: int) -> None:
        self.group = group
        self.raw = raw
        self.compressed = compressed
        super().__init__(
            f"userdata of {group.key} is {raw} bytes, {compressed} after gzip: EC2 accepts at most {LIMIT}; "
            "move configuration into the host (nixosConfigurations) or use `userdata: settings`"
        )


def render_settings(fleet: Fleet, group: Group) -> str:
    return settings.dumps(fleet.host_settings(group))


def _header(fleet: Fleet, group: Group) -> str:
    header = formats.nix_header(group.cluster, group.name)
    # The flake reference is informational; the loader guarantees it has no whitespace,
    # so it cannot end the comment line.
    return f"{header} flake={fleet.flake}" if fleet.flake else header


def render_nix(fleet: Fleet, group: Group) -> str:
    """A NixOS module that imports the host the image was built from and sets the group's
    options.

    Every value goes through `to_nix` (a Nix literal, never code); raw Nix enters only as
    `NixCode`: the header and the group's own `nixos:` text. Built with plain string
    formatting rather than a template engine: `validate` renders every group's userdata to
    check its size, and Jinja2's import and compile were a third of validate's time (issue 18).
    """
    ecs = group.ecs
    lines = [
        _header(fleet, group),
        "# Rendered by nixecs from the fleet file; switched to at boot by nixecs-userdata.service.",
        "# Edit the fleet file, not this text.",
        "{ ... }:",
        "{",
        "  imports = [",
        "    # the host the image was built from (its recorded <nixecs-host>); images from before",
        "    # hosts were recorded: nixecs' ECS node",
        '    (if builtins.any (e: e.prefix == "nixecs-host") builtins.nixPath then <nixecs-host> else <nixecs/hosts/ecs-node>)',
    ]
    if group.nixos and group.nixos.strip():
        # Raw Nix by design: the fleet author's own module text, verbatim (re-indenting it
        # would change multi-line strings); `nixecs validate` parses it with real Nix.
        lines += [
            "    # the group's `nixos:` text from the fleet file",
            "    (",
            to_nix(NixCode(group.nixos.rstrip("\n"))),
            "    )",
        ]
    drain = group.drain
    secrets = {name: spec.to_json() for name, spec in sorted(group.secrets.items())}
    lines += [
        "  ];",
        "  nixecs.ecs = {",
        f"    cluster = {to_nix(group.cluster)};",
        f"    attributes = {to_nix(settings.instance_attributes(group.name, ecs), '    ')};",
        f"    tags = {to_nix(ecs.tags, '    ')};",
        f"    spotDraining = {to_nix(ecs.spot_draining)};",
        f"    reservedMemoryMiB = {to_nix(ecs.reserved_memory_mib)};",
        f"    logLevel = {to_nix(ecs.log_level)};",
        f"    imagePullBehavior = {to_nix(ecs.image_pull_behavior)};",
        f"    taskCleanupWait = {to_nix(ecs.task_cleanup_wait)};",
        f"    containerStopTimeout = {to_nix(ecs.container_stop_timeout)};",
        f"    privileged = {to_nix(ecs.privileged)};",
        f"    extraEnvironment = {to_nix(ecs.extra, '    ')};",
        "  };",
        f"  nixecs.secrets = {to_nix(secrets, '  ')};",
        "  nixecs.drain = {",
        f"    enable = {to_nix(drain is not None)};",
        f"    timeout = {to_nix(drain.timeout if drain is not None else None)};",
        "  };",
        "}",
    ]
    return "\n".join(lines) + "\n"


def render_text(fleet: Fleet, group: Group, fmt: str | None = None) -> str:
    chosen = fmt or group.userdata
    if chosen == "settings":
        return render_settings(fleet, group)
    if chosen == "nix":
        return render_nix(fleet, group)
    raise ValueError(f"unknown userdata format {chosen!r}")


def fit(text: str, group: Group) -> bytes:
    """Text → the bytes EC2 gets: as is within 16 KB, else gzip; UserdataTooLarge beyond."""
    raw = text.encode("utf-8")
    if len(raw) <= LIMIT:
        return raw
    import gzip  # only for userdata over 16 KB

    compressed = gzip.compress(raw, compresslevel=9, mtime=0)
    if len(compressed) > LIMIT:
        raise UserdataTooLarge(group, len(raw), len(compressed))
    return compressed


def render_userdata(fleet: Fleet, group: Group, fmt: str | None = None) -> bytes:
    return fit(render_text(fleet, group, fmt), group)


__all__ = [
    "LIMIT",
    "UserdataTooLarge",
    "fit",
    "render_nix",
    "render_settings",
    "render_text",
    "render_userdata",
]
