"""Apply EC2 userdata on the host (DESIGN §5): one applier for the three formats.

- settings: `/run/nixecs/ecs.env` (the ECS agent's EnvironmentFile) and
  `/run/nixecs/settings.json`. /run is a tmpfs, so these converge to the content the
  userdata asks for on every run: a file already holding the right bytes is left alone
  (same inode, same mtime); a missing or different one is replaced atomically.
- nix: `/etc/nixos/configuration.nix` and the rebuild command, only when the content hash
  differs from the one recorded after the last *successful* rebuild. A failed rebuild (or a
  run killed before it finished) records nothing, so the next boot retries.
- script: run once per content hash, recorded only when it exits 0.

State: `/var/lib/nixecs/applied.json` records the last applied userdata (format, sha256,
time) and the hashes of the applied nix configuration and scripts. It is written last and
atomically; every file before it is written atomically too, so a run killed at any point
leaves either old or new files, never torn ones, and the next run converges.

Boot path: standard library and nixecs.settings/formats/atomic only (see boot.py).
"""

from __future__ import annotations

import os
import stat  # already imported by os
import time

from .. import formats, jsonc
from ..atomic import open_directory, write_atomic
from ..settings import NAME_RE, SettingsError, agent_environment, format_env_file, loads
from ..sha import sha256_hex as _sha256_hex

TYPE_CHECKING = False
if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable

    from ..settings import HostSettings
    from .deadline import Deadline

DEFAULT_REBUILD_COMMAND = "nixos-rebuild switch"
STATE_VERSION = 1
# How many applied script hashes to remember ("once per content" for recent scripts).
SCRIPT_HISTORY = 50
MAX_STATE = 1024 * 1024  # our own state file is a few hundred bytes
# How long an apply waits for another one to finish (a nix rebuild may take this long).
LOCK_WAIT_SECONDS = 1800.0


class ApplyInvalid(Exception):
    """The userdata cannot be applied as written: exit 2, nothing written."""


class ApplyFailed(Exception):
    """An operational failure (rebuild, script, file system): exit 1."""


class Layout:
    """Every path the applier touches, re-rooted under `root` (`--root`)."""

    def __init__(self, root: str = "/", state_dir: str | None = None) -> None:
        self.root = root

        def at(path: str) -> str:
            return os.path.join(root, path.lstrip("/"))

        self.run_dir = at("/run/nixecs")
        self.ecs_env = at("/run/nixecs/ecs.env")
        self.settings_json = at("/run/nixecs/settings.json")
        self.configuration_nix = at("/etc/nixos/configuration.nix")
        self.state_dir = at(state_dir) if state_dir else at("/var/lib/nixecs")
        self.state_file = os.path.join(self.state_dir, "applied.json")
        self.lock_file = os.path.join(self.state_dir, "lock")
        self.script_file = os.path.join(self.state_dir, "userdata-script")


def _open_no_follow(path: str) -> int:
    # A symlink planted at one of our files must not make us read (or keep) someone else's.
    return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)


def read_state(layout: Layout) -> dict[str, object]:
    """The recorded state; an unreadable or corrupt file counts as none (apply again)."""
    try:
        with open(_open_no_follow(layout.state_file), "rb") as handle:
            # Our own file, written as ASCII JSON: UTF-8 only (json.loads(bytes) would also
            # guess UTF-16/32, which no nixecs ever wrote; such a file counts as none).
            value = jsonc.loads(handle.read(MAX_STATE + 1).decode("utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _converge(path: str, data: bytes, mode: int, root: str) -> bool:
    """Write `data` to `path` atomically unless it already holds exactly that; True if written."""
    try:
        with open(_open_no_follow(path), "rb") as handle:
            info = os.fstat(handle.fileno())
            if (
                handle.read(len(data) + 1) == data
                and (info.st_mode & 0o7777) == mode
                and info.st_uid == os.geteuid()
                and info.st_nlink == 1  # not a hard link someone else can also reach
            ):
                return False
    except OSError:
        pass
    write_atomic(path, data, mode, root=root)
    return True


class StateLock:
    """An exclusive flock(2) on STATE_DIR/lock for a whole apply (issue 12, item 7).

    Two applies at once (the boot unit and an admin, or a retry) would both run a script,
    or one would record its hash over the other's. flock locks belong to the open file
    description and are released when the process dies, so a killed apply never leaves a
    stale lock behind (flock(2), Linux man-pages 6.03). The lock file is opened with
    O_NOFOLLOW in a directory reached without following symlinks, and must be ours.
    """

    def __init__(self, layout: Layout, wait: float, log: Callable[[str], None]) -> None:
        self.layout = layout
        self.wait = wait
        self.log = log
        self.fd = -1

    def __enter__(self) -> StateLock:
        import fcntl  # a small C module; only the lock needs it

        directory = open_directory(self.layout.state_dir, self.layout.root, 0o755, 0o700)
        try:
            fd = os.open(
                "lock",
                os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                0o600,
                dir_fd=directory,
            )
        finally:
            os.close(directory)
        info = os.fstat(fd)
        if info.st_uid != os.geteuid() or not stat.S_ISREG(info.st_mode):
            os.close(fd)
            raise ApplyFailed(
                f"{self.layout.lock_file} is not a regular file of ours: not using it"
            )
        deadline = time.monotonic() + self.wait
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    raise ApplyFailed(
                        f"another nixecs apply still holds {self.layout.lock_file} after "
                        f"{self.wait:g}s; nothing changed"
                    ) from None
                if not waited:
                    self.log(f"waiting for another nixecs apply ({self.layout.lock_file})")
                    waited = True
                time.sleep(0.05)
        self.fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing the last descriptor releases the lock
        self.fd = -1


class Applier:
    """Applies one userdata document; `log` receives journal lines (never secret values)."""

    def __init__(
        self,
        layout: Layout,
        *,
        rebuild_command: str | None = DEFAULT_REBUILD_COMMAND,
        run_scripts: bool = True,
        log: Callable[[str], None] = lambda line: None,
        clock: Callable[[], float] = time.time,
        lock_wait: float = LOCK_WAIT_SECONDS,
        deadline: Deadline | None = None,
        rebuild_timeout: float | None = None,
    ) -> None:
        # A script runs within what remains of `deadline`; a rebuild within rebuild_timeout,
        # and its time is not counted against `deadline` (docs/host.md, "Bounds").
        self.deadline = deadline
        self.rebuild_timeout = rebuild_timeout
        self.layout = layout
        # None: nix userdata is refused (a re-rooted run must not switch the real system).
        self.rebuild_command = rebuild_command
        self.run_scripts = run_scripts
        self.log = log
        self.clock = clock
        self.lock_wait = lock_wait

    def apply(self, data: bytes | None, source: str) -> str:
        """Apply raw userdata bytes; returns a one-line summary. Raises ApplyInvalid/ApplyFailed."""
        if not data:
            return f"no userdata in {source}: nothing to do"
        try:
            kind, text = formats.decode(data)
        except formats.FormatError as error:
            raise ApplyInvalid(f"{source}: {error}") from None
        digest = _sha256_hex(text.encode("utf-8"))
        self.log(f"{source}: {kind} userdata, sha256 {digest[:12]}")
        # Everything that can make the userdata invalid is checked before anything is
        # written (the lock file included): an invalid userdata changes nothing.
        settings = self._check_settings(text, source) if kind == "settings" else None
        header = self._check_nix(text, source) if kind == "nix" else {}
        if kind == "script" and not self.run_scripts:
            raise ApplyInvalid(
                "script userdata with --root: pass --run-scripts to run it on this machine"
            )
        # The whole read-modify-write of the state, and what it records, under one lock.
        with StateLock(self.layout, self.lock_wait, self.log):
            state = read_state(self.layout)
            recorded = jsonc.dumps(state, sort_keys=True)
            if settings is not None:
                summary = self._apply_settings(settings)
            elif kind == "nix":
                summary = self._apply_nix(text, digest, state, header)
            else:
                summary = self._apply_script(text, digest, state)
            unchanged = jsonc.dumps(state, sort_keys=True) == recorded
            if not (unchanged and (state.get("format"), state.get("sha256")) == (kind, digest)):
                self._record(state, kind, digest)
        return summary

    # --- settings ------------------------------------------------------------------------

    def _check_settings(self, text: str, source: str) -> HostSettings:
        try:
            return loads(text)
        except SettingsError as error:
            raise ApplyInvalid(f"{source}: invalid settings userdata: {error}") from None

    def _apply_settings(self, settings: HostSettings) -> str:
        env_text = format_env_file(agent_environment(settings))
        settings_text = jsonc.dumps_indented(settings.to_json()) + "\n"
        written = []
        # ecs.env first: it is what the agent reads; settings.json (secrets, drain) follows.
        # A run killed between the two is repaired by the next one, which compares contents.
        root = self.layout.root
        if _converge(self.layout.ecs_env, env_text.encode("utf-8"), 0o644, root):
            written.append("ecs.env")
        if _converge(self.layout.settings_json, settings_text.encode("utf-8"), 0o644, root):
            written.append("settings.json")
        where = f"cluster {settings.cluster}, group {settings.group}"
        if written:
            return f"settings applied ({where}): wrote {', '.join(written)}"
        return f"settings already applied ({where}): nothing changed"

    # --- nix -----------------------------------------------------------------------------

    def _check_nix(self, text: str, source: str) -> dict[str, str]:
        try:
            header = formats.parse_nix_header(text)
        except formats.FormatError as error:
            raise ApplyInvalid(f"{source}: {error}") from None
        for key in ("cluster", "group"):
            value = header.get(key)
            if value is None or not NAME_RE.fullmatch(value):
                shown = "missing" if value is None else f"{value!r} is not a valid name"
                raise ApplyInvalid(f"{source}: nix userdata header: {key} {shown}")
        if "\x00" in text:
            raise ApplyInvalid(f"{source}: nix userdata contains NUL, which Nix cannot read")
        if self.rebuild_command is None:
            raise ApplyInvalid(
                f"{source}: nix userdata with --root: pass --rebuild-command CMD "
                "(the default, nixos-rebuild switch, would switch this machine)"
            )
        return header

    def _apply_nix(
        self, text: str, digest: str, state: dict[str, object], header: dict[str, str]
    ) -> str:
        nix_state = state.get("nix")
        if isinstance(nix_state, dict) and nix_state.get("sha256") == digest:
            return f"nix configuration {digest[:12]} already applied: no rebuild"
        where = " ".join(f"{k}={v}" for k, v in sorted(header.items()))
        assert self.rebuild_command is not None  # _check_nix refused None
        self.log(f"nix configuration changed ({where}): writing {self.layout.configuration_nix}")
        previous = _read_or_none(self.layout.configuration_nix)
        _converge(self.layout.configuration_nix, text.encode("utf-8"), 0o644, self.layout.root)
        try:
            self._run(
                self.rebuild_command, "rebuild", {"NIXOS_CONFIG": self.layout.configuration_nix}
            )
        except ApplyFailed:
            # The running system is still the old one: so is its configuration file.
            if previous is None:
                os.unlink(self.layout.configuration_nix)
            else:
                write_atomic(self.layout.configuration_nix, previous, 0o644, root=self.layout.root)
            raise
        state["nix"] = {"sha256": digest, "time": self._now()}
        return f"nix configuration {digest[:12]} applied with `{self.rebuild_command}`"

    # --- script --------------------------------------------------------------------------

    def _apply_script(self, text: str, digest: str, state: dict[str, object]) -> str:
        history = state.get("scripts")
        done = [h for h in history if isinstance(h, str)] if isinstance(history, list) else []
        if digest in done:
            return f"script {digest[:12]} already ran: not running it again"
        write_atomic(self.layout.script_file, text.encode("utf-8"), 0o700, root=self.layout.root)
        self._run(None, "script", {})
        state["scripts"] = [*done, digest][-SCRIPT_HISTORY:]
        return f"script {digest[:12]} ran successfully"

    # --- helpers -------------------------------------------------------------------------

    def _run(self, command: str | None, what: str, extra_env: dict[str, str]) -> None:
        import shlex
        import subprocess

        argv = shlex.split(command) if command is not None else [self.layout.script_file]
        if not argv:
            raise ApplyFailed(f"empty {what} command")
        env = {**os.environ, **extra_env}
        self.log(f"running {what}: {argv[0] if command is None else command}")
        if what == "rebuild":
            timeout = self.rebuild_timeout
        elif self.deadline is not None:
            left = self.deadline.remaining()
            if left <= 0:
                raise ApplyFailed(str(self.deadline.expired(f"about to run the {what}")))
            timeout = left
        else:
            timeout = None
        started = time.monotonic()
        try:
            # Output goes straight to our stderr, i.e. the journal; nothing is captured. A
            # session of its own, so that a timeout kills the whole process group.
            process = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=2, env=env, start_new_session=True
            )
        except OSError as error:
            raise ApplyFailed(f"cannot run {what} command {argv[0]!r}: {error.strerror}") from None
        try:
            returncode = process.wait(timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process)
            if what != "rebuild" and self.deadline is not None:
                raise ApplyFailed(
                    f"{self.deadline.expired(f'running the {what}')} (killed; not recorded, the next run retries)"
                ) from None
            raise ApplyFailed(
                f"{what} did not finish within {timeout:g}s (killed; not recorded, the next run retries)"
            ) from None
        finally:
            if what == "rebuild" and self.deadline is not None:
                self.deadline.exclude(time.monotonic() - started)
        if returncode != 0:
            raise ApplyFailed(
                f"{what} failed with exit status {returncode}; not recorded, the next run retries"
            )

    def _now(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.clock()))

    def _record(self, state: dict[str, object], kind: str, digest: str) -> None:
        state.update(
            {"version": STATE_VERSION, "format": kind, "sha256": digest, "time": self._now()}
        )
        write_atomic(
            self.layout.state_file,
            jsonc.dumps_indented(state) + "\n",
            0o600,
            root=self.layout.root,
        )


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the step's process group, SIGKILL after 10 s; then reap it."""
    import contextlib
    import signal
    import subprocess

    for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, None)):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            process.wait(grace)
            return
        except subprocess.TimeoutExpired:
            continue


def _read_or_none(path: str) -> bytes | None:
    try:
        with open(_open_no_follow(path), "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
