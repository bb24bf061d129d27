"""pkgs/ssm-agent-static undoes every store path nixpkgs' amazon-ssm-agent puts in its sources.

ECS Exec bind-mounts these binaries into arbitrary task containers (modules/ecs-exec.nix),
where no /nix/store exists, and the package's `allowedReferences = [ ]` fails the build if any
store path is left. nixpkgs' postPatch (pkgs/by-name/am/amazon-ssm-agent/package.nix, read
in the 2025-26 `buildGoModule (finalAttrs: ...)` form) substitutes store paths into four files;
the override's own postPatch, evaluated from the package expression and run here with bash on
sources as nixpkgs leaves them, must bring back the upstream strings
(aws/amazon-ssm-agent agent/platform/platform_unix.go, agent/session/shell/shell_unix.go,
agent/managedInstances/fingerprint/hardwareInfo_unix.go).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from conftest import REPO, nix_eval_readonly, require_tool

PACKAGE = REPO / "pkgs" / "ssm-agent-static" / "package.nix"
STORE = "/nix/store"
HASH = "0123456789abcdfghijklmnpqrsvwxyz"

# file -> [(upstream text, what nixpkgs' postPatch makes of it)], the --replace-fail pairs.
NIXPKGS_SUBSTITUTIONS: dict[str, list[tuple[str, str]]] = {
    "agent/platform/platform_unix.go": [
        ('"/usr/bin/uname"', f'"{STORE}/{HASH}-coreutils-9.7/bin/uname"'),
        ('"/bin", "hostname"', f'"{STORE}/{HASH}-hostname-debian-3.25/bin/hostname"'),
        ('"lsb_release"', f'"{STORE}/{HASH}-lsb_release/bin/lsb_release"'),
    ],
    "agent/session/shell/shell_unix.go": [
        ('"script"', f'"{STORE}/{HASH}-util-linux-2.41-bin/bin/script"'),
    ],
    "agent/managedInstances/fingerprint/hardwareInfo_unix.go": [
        ('"/usr/sbin/dmidecode"', f'"{STORE}/{HASH}-dmidecode-3.6/bin/dmidecode"'),
    ],
    # Not a store path: nixpkgs' own change stays.
    "agent/rebooter/rebooter_unix.go": [('"/sbin/shutdown"', '"shutdown"')],
}


def override() -> dict[str, object]:
    """The override's attributes over a stub of nixpkgs' package (its postPatch empty)."""
    got: dict[str, object] = nix_eval_readonly(
        "-E",
        f"let p = import {PACKAGE} {{ amazon-ssm-agent = {{ overrideAttrs = f: f {{ }}; }}; }}; "
        "in { inherit (p) postPatch postFixup allowedReferences; cgo = p.env.CGO_ENABLED; }",
    )
    return got


def run_post_patch(attrs: dict[str, object], tree: Path) -> subprocess.CompletedProcess[str]:
    """The override's postPatch in `tree`, as the build's bash runs it."""
    return subprocess.run(
        [require_tool("bash"), "-euo", "pipefail", "-c", str(attrs["postPatch"])],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


@pytest.mark.nix
def test_no_store_path_is_left_in_the_sources(tmp_path: Path) -> None:
    attrs = override()
    assert attrs["allowedReferences"] == [] and attrs["postFixup"] == "", attrs
    assert attrs["cgo"] == "0", attrs  # static: the containers have no loader of ours
    for path, pairs in NIXPKGS_SUBSTITUTIONS.items():
        file = tmp_path / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text("".join(f"\tx := []string{{{nixpkgs}}}\n" for _, nixpkgs in pairs))
    done = run_post_patch(attrs, tmp_path)
    assert done.returncode == 0, done.stderr
    for path, pairs in NIXPKGS_SUBSTITUTIONS.items():
        text = (tmp_path / path).read_text()
        assert STORE not in text, (path, text)
        for upstream, nixpkgs in pairs:
            # A store path goes back to upstream's string; nixpkgs' other changes stay.
            want = upstream if nixpkgs.startswith(f'"{STORE}') else nixpkgs
            assert f"{{{want}}}" in text, (path, text)


@pytest.mark.nix
def test_a_store_path_left_fails_the_patch_phase(tmp_path: Path) -> None:
    # A substitution the override does not know (a new nixpkgs one) stops the build there,
    # naming the file, rather than at allowedReferences with only a store path.
    attrs = override()
    for path in NIXPKGS_SUBSTITUTIONS:
        file = tmp_path / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text("")
    unknown = tmp_path / "agent/managedInstances/fingerprint/hardwareInfo_unix.go"
    unknown.write_text(f'\tcmd := "{STORE}/{HASH}-pciutils-3.13/bin/lspci"\n')
    done = run_post_patch(attrs, tmp_path)
    assert done.returncode != 0
    assert "hardwareInfo_unix.go" in done.stdout + done.stderr
