"""The local emulator: a moto server on loopback that outlives one command, so `deploy`,
`status`, `scaling`, `plan` and `destroy` can all be pointed at it until `nixecs local stop`.

Its state (URL, process id, what was stood in for each fleet) lives in one directory:
$NIXECS_LOCAL_DIR, else $XDG_STATE_HOME/nixecs/local, else ~/.local/state/nixecs/local —
created 0700 and owned by the user, every file in it written atomically. `stop` ends only a
process that is still the emulator's server (local/server.py) this state started (its command line is checked), never
another that reused the pid.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from ..atomic import write_atomic
from ..diagnostics import OperationalFailure

# The credentials every call to the emulator is signed with: never the user's own, so a
# mistyped endpoint can never act on a real account with them.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
SERVER = "nixecs.local.server"
START_SECONDS = 60.0
STOP_SECONDS = 10.0


@dataclass(frozen=True)
class Emulator:
    url: str
    pid: int
    port: int
    started: float
    region: str = ""  # of the last fleet deployed to it: where `status` and `destroy` look

    def env(self) -> dict[str, str]:
        """The environment that points every nixecs command at the emulator."""
        region = {"AWS_REGION": self.region} if self.region else {}
        return {**FAKE_CREDENTIALS, **region, "NIXECS_ENDPOINT_URL": self.url}


def state_dir() -> Path:
    given = os.environ.get("NIXECS_LOCAL_DIR")
    if given:
        return Path(given)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "nixecs" / "local"


def _own_directory(directory: Path) -> Path:
    """The state directory, made 0700 when new; refused when someone else can write it or
    it is not ours (its files decide which process `stop` kills)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = directory.lstat()
    import stat

    if not stat.S_ISDIR(info.st_mode):
        raise OperationalFailure(f"{directory} is not a directory (a symlink?): not using it")
    if info.st_uid != os.getuid() or info.st_mode & 0o022:
        raise OperationalFailure(
            f"{directory} is not yours alone (owner uid {info.st_uid}, mode "
            f"{stat.S_IMODE(info.st_mode):04o}): not using it; set NIXECS_LOCAL_DIR"
        )
    return directory


def _state_file() -> Path:
    return state_dir() / "emulator.json"


def _answers(url: str, seconds: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/moto-api/", timeout=seconds):
            return True
    except OSError:
        return False


def _is_ours(emulator: Emulator) -> bool:
    """The recorded process is still a moto server on the recorded port."""
    try:
        cmdline = Path(f"/proc/{emulator.pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return SERVER.encode() in cmdline and str(emulator.port).encode() in cmdline


def current() -> Emulator | None:
    """The running emulator this state started, or None (a stale state file is removed)."""
    path = _state_file()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        emulator = Emulator(
            str(data["url"]),
            int(data["pid"]),
            int(data["port"]),
            float(data["started"]),
            str(data.get("region", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if _is_ours(emulator) and _answers(emulator.url):
        return emulator
    with contextlib.suppress(OSError):
        path.unlink()
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_moto() -> None:
    if importlib.util.find_spec("moto") is None or importlib.util.find_spec("flask") is None:
        raise OperationalFailure(
            "the local emulator is moto's server, which is not installed: "
            "pip install 'nixecs[local]' (or 'moto[server]')"
        )


def start(say: object = None) -> tuple[Emulator, bool]:
    """The running emulator, or a new one; (emulator, started now)."""
    running = current()
    if running is not None:
        return running, False
    require_moto()
    directory = _own_directory(state_dir())
    port = _free_port()
    log = (directory / "emulator.log").open("ab")
    try:
        process = subprocess.Popen(
            # moto's server with the emulator's stand-ins installed (local/server.py)
            [sys.executable, "-m", SERVER, "-H", "127.0.0.1", "-p", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,  # not ended with the command that started it
        )
    finally:
        log.close()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + START_SECONDS
    while not _answers(url, 1.0):
        if process.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            raise OperationalFailure(
                f"the emulator did not start within {START_SECONDS:g}s; see {directory / 'emulator.log'}"
            )
        time.sleep(0.1)
    emulator = Emulator(url, process.pid, port, time.time())
    remember(emulator)
    return emulator, True


def remember(emulator: Emulator) -> None:
    write_atomic(_state_file(), json.dumps(asdict(emulator), indent=2) + "\n", durable=False)


def stop() -> Emulator | None:
    """End the emulator this state started (None: none was running) and forget its state."""
    emulator = current()
    directory = state_dir()
    if emulator is not None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(emulator.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while _is_ours(emulator) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _is_ours(emulator):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(emulator.pid, signal.SIGKILL)
    for name in ("emulator.json", "standins.json"):
        with contextlib.suppress(FileNotFoundError):
            (directory / name).unlink()
    fleets = directory / "fleets"
    if fleets.is_dir() and not fleets.is_symlink():
        for copy in fleets.glob("*.yml"):
            with contextlib.suppress(FileNotFoundError):
                copy.unlink()
    return emulator
