"""What `nixecs ami publish` publishes: IMAGE_DIR (or --image) as given, or HOST's image built
from a flake (`--flake PATH`, or the `flake:` of `--fleet FLEET`) with `nix build
FLAKE#HOST-ami` (lib.mkHosts' `packages.<system>.<host>-ami`); and the flake revision the AMI
is tagged with: --flake-rev, else the flake's locked revision when its tree is clean."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from .. import flakes
from ..diagnostics import OperationalFailure


@dataclass(frozen=True)
class Source:
    image_dir: Path
    flake_rev: str | None


def _flake_of(flake: str | None, fleet_file: Path | None) -> tuple[str, Path] | None:
    """(reference, the directory a relative path is relative to), or None."""
    if flake:
        return flake, Path.cwd()
    if fleet_file is None:
        return None
    from ..fleet import load_fleet
    from ..globals import current_env

    model = load_fleet(str(fleet_file), current_env())
    if not model.flake:
        raise click.UsageError(f"{fleet_file} has no `flake:`: pass --flake PATH")
    return model.flake, fleet_file.resolve().parent


def _check_host(image_dir: Path, host: str) -> None:
    """An image lib.mkHost built is named after its host (`image.baseName = "nixecs-<host>"`,
    lib/default.nix): publishing web's image as `--host api` would make `ami: {host: api}`
    boot web. Images not named so (built otherwise) are taken as they are."""
    from .ami import read_image_info

    stem = read_image_info(image_dir).file.stem
    if stem.startswith("nixecs-") and stem != f"nixecs-{host}":
        raise click.UsageError(
            f"{image_dir} holds host {stem.removeprefix('nixecs-')!r}'s image, not {host!r}: "
            f"pass --host {stem.removeprefix('nixecs-')}"
        )


def source(
    host: str,
    image_dir: Path | None,
    flake: str | None,
    fleet_file: Path | None,
    flake_rev: str | None,
    say: Any,
) -> Source:
    found = _flake_of(flake, fleet_file)
    ref = flakes.flake_ref(*found) if found else None
    nix = flakes.nix_flakes() if ref else None
    if image_dir is None:
        if ref is None:
            raise click.UsageError(
                "give IMAGE_DIR (or --image), or --flake PATH / --fleet FLEET to build the host's image"
            )
        if nix is None:
            raise click.UsageError(
                f"building {ref}#{host}-ami needs Nix 2.4 or newer (flakes): run "
                f"`nix build {ref}#{host}-ami` where it is installed and pass the output as IMAGE_DIR"
            )
        say(f"nix build {ref}#{host}-ami")
        try:
            image_dir = flakes.build(nix, ref, f"{host}-ami")
        except flakes.FlakeError as error:
            raise OperationalFailure(f"nix build {ref}#{host}-ami failed:\n{error}") from None
    _check_host(image_dir, host)
    if flake_rev is None and ref is not None and nix is not None:
        try:
            flake_rev = flakes.revision(nix, ref)
        except (flakes.FlakeError, ValueError) as error:
            say(f"note: no revision of {ref}: {error}")
        if flake_rev is None:
            say(
                f"note: {ref} has uncommitted changes or no git revision: the AMI gets no revision tag"
            )
    return Source(image_dir, flake_rev)
