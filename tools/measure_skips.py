"""`make skips`: how many tests skip on a machine without the system tools the README lists.

The suite runs in a private mount namespace where the programs and systemd's files of the
README's Debian packages (nix-bin, skopeo, docker-registry, iptables, nftables, iproute2,
conntrack, systemd) are absent: /usr/bin, /usr/sbin, /usr/libexec and /usr/lib/systemd are
replaced by views (tmpfs) holding a symlink to every other entry. Tests look the tools up on
PATH (`shutil.which`) or at fixed paths (/lib/systemd/systemd), so both see a machine that
never installed the packages; nothing changes outside the namespace. CI is unset: with
`CI=true` a missing prerequisite fails instead of skipping. The run ends with the suite's
own count (`skipped for a missing system prerequisite: N`, then each reason); the README
quotes it. Needs root (mount namespaces) and dpkg (which files a package owns).

    sudo .venv/bin/python tools/measure_skips.py [PYTEST ARGS...]   # default: -n 2 -q
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
# The README's table of system tools, by Debian package.
PACKAGES = (
    "nix-bin",
    "skopeo",
    "docker-registry",
    "iptables",
    "nftables",
    "iproute2",
    "conntrack",
    "systemd",
)
# Where a package's programs and systemd's own files live (merged /usr: /bin, /sbin and /lib
# are symlinks into /usr). A view replaces each; documentation and /etc stay as they are.
VIEWED = (Path("/usr/bin"), Path("/usr/sbin"), Path("/usr/libexec"), Path("/usr/lib/systemd"))
INSIDE = "NIXECS_MEASURE_SKIPS_INSIDE"


def owned_files(packages: tuple[str, ...]) -> set[Path]:
    """The files (not directories) the installed packages own, under a viewed directory."""
    hidden: set[Path] = set()
    for package in packages:
        listed = subprocess.run(
            ["dpkg-query", "-L", package], capture_output=True, text=True, timeout=60
        )
        if listed.returncode != 0:
            continue  # not installed: already absent
        for line in listed.stdout.splitlines():
            path = Path(line)
            if not line.startswith("/") or path.is_dir() or not os.path.lexists(path):
                continue
            # dpkg lists /bin/ip and /sbin/ip: the directory's real path, the file's own name.
            real = Path(os.path.realpath(path.parent)) / path.name
            if any(real.is_relative_to(top) for top in VIEWED):
                hidden.add(real)
    return hidden


def build_view(original: Path, view: Path, hidden: set[Path]) -> None:
    """VIEW: a symlink to each entry of ORIGINAL (a stash of the real directory) except the
    hidden ones; a directory with hidden files below it becomes a view of its own."""
    for entry in sorted(original.iterdir()):
        target = view / entry.name
        if target in hidden:
            continue
        if (
            entry.is_dir()
            and not entry.is_symlink()
            and any(h.is_relative_to(target) for h in hidden)
        ):
            target.mkdir()
            build_view(entry, target, hidden)
        else:
            target.symlink_to(entry)


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, timeout=60)


def hide(hidden: set[Path]) -> list[str]:
    """Inside the private mount namespace: replace each viewed directory by its view."""
    stash = Path(tempfile.mkdtemp(prefix="nixecs-skips-"))
    mount("-t", "tmpfs", "tmpfs", str(stash))  # the stash is this namespace's alone
    shown = []
    for index, top in enumerate(VIEWED):
        if not top.is_dir() or not any(h.is_relative_to(top) for h in hidden):
            continue
        original = stash / str(index)
        original.mkdir()
        mount("--bind", str(top), str(original))
        mount("-t", "tmpfs", "-o", "mode=0755", "tmpfs", str(top))
        build_view(original, top, hidden)
        shown.append(str(top))
    return shown


def main() -> int:
    if os.geteuid() != 0:
        print(
            "measure_skips.py needs root: it hides the tools in a mount namespace", file=sys.stderr
        )
        return 2
    if not os.environ.get(INSIDE):
        command = ["unshare", "--mount", "--propagation", "private", "--"]
        command += [sys.executable, __file__, *sys.argv[1:]]
        return subprocess.run(command, env={**os.environ, INSIDE: "1"}, check=False).returncode
    hidden = owned_files(PACKAGES)
    viewed = hide(hidden)
    print(
        f"hidden: {len(hidden)} files of {', '.join(PACKAGES)} (views of {', '.join(viewed)})",
        flush=True,
    )
    env = {k: v for k, v in os.environ.items() if k not in ("CI", INSIDE)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(TOOLS / "src"), env.get("PYTHONPATH")]))
    args = sys.argv[1:] or ["-n", "2", "-q"]
    pytest = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args]
    return subprocess.run(pytest, cwd=TOOLS, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
