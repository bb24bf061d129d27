"""`make demo`, step 4: one simulated boot of an instance.

The IMDSv2 emulator serves the rendered userdata on loopback and `nixecs apply` runs exactly
as `nixecs-userdata.service` runs it on a host, re-rooted under ROOT so it needs no root.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from nixecs.testing.imds import ImdsEmulator


def simulate_boot(
    userdata_file: Path, root: Path, python: str, rebuild_command: str = "true"
) -> str:
    """Serve `userdata_file` from the emulator, run `python -m nixecs apply --imds URL
    --root ROOT`, and return the resulting run/nixecs/ecs.env text. `rebuild_command`
    stands in for `nixos-rebuild switch` should the userdata be of the nix format."""
    userdata = Path(userdata_file).read_bytes()
    with ImdsEmulator(userdata) as imds:
        process = subprocess.run(
            [
                python,
                "-m",
                "nixecs",
                "apply",
                "--imds",
                imds.url,
                "--root",
                str(root),
                "--rebuild-command",
                rebuild_command,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if process.returncode != 0:
        raise RuntimeError(
            f"simulated boot failed: nixecs apply exited {process.returncode}: "
            f"{process.stderr.strip() or '(no output)'}"
        )
    env_file = Path(root) / "run/nixecs/ecs.env"
    if not env_file.exists():
        raise RuntimeError(
            f"simulated boot wrote no {env_file}: {userdata_file} is not settings userdata "
            f"({process.stderr.strip()})"
        )
    return env_file.read_text()


if __name__ == "__main__":
    import sys

    if len(sys.argv) != 3:
        sys.exit("usage: python tools/demo_host.py USERDATA_FILE ROOT")
    print(simulate_boot(Path(sys.argv[1]), Path(sys.argv[2]), sys.executable), end="")
