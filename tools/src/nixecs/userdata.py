"""Userdata for a group in the `settings` or `nix` format (DESIGN §5), within EC2's 16 KB.

The bytes returned are exactly what EC2 receives: UTF-8 text, or gzip when the text is
larger than 16 KB (the host applier inflates it). Gzip output is deterministic (mtime 0).
"""

from __future__ import annotations

import gzip

from . import formats, settings
from .fleet.model import Fleet, Group
from .nix import NixCode, environment

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
    """A NixOS module that imports the baked host and sets the group's options."""
    template = environment().get_template("userdata.nix.j2")
    extra = None
    if group.nixos and group.nixos.strip():
        # Raw Nix by design: the fleet author's own module text, verbatim (re-indenting it
        # would change multi-line strings); `nixecs validate` parses it with real Nix.
        extra = NixCode(group.nixos.rstrip("\n"))
    return template.render(
        header=NixCode(_header(fleet, group)),
        cluster=group.cluster,
        ecs=group.ecs,
        attributes=settings.instance_attributes(group.name, group.ecs),
        secrets={name: spec.to_json() for name, spec in sorted(group.secrets.items())},
        drain=group.drain,
        extra_module=extra,
    )


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
