"""Files that cannot be stolen or torn (issue 12, items 6 and 7), attacked for real.

An unprivileged user (`nobody`, in a forked child after setgid/setuid) plants temporary
names, symlinks and directories where the host writes; `nixecs apply` runs as concurrent
processes. Needs root to switch users (in CI a missing prerequisite fails, never skips); marked
`system`, so the package's check phase (no root, no `nobody` reachable) leaves it out.
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import shutil
import stat
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import require
from host_fixtures import run_apply, settings_userdata
from nixecs import atomic
from nixecs.atomic import UnsafePath, write_atomic
from nixecs.host.apply import Applier, ApplyFailed, Layout
from nixecs.host.secrets import SecretsFailed, SecretWriter, fetch_secrets
from nixecs.settings import SecretSpec

pytestmark = pytest.mark.system

SECRET = "s3cr3t-Value-that-must-not-leak-9f1c"


@pytest.fixture
def nobody() -> pwd.struct_passwd:
    require(os.geteuid() == 0, "switching to an unprivileged user needs root")
    return pwd.getpwnam("nobody")


@pytest.fixture
def shared() -> Iterator[Path]:
    """A directory tree under /tmp that `nobody` can reach (pytest's tmp_path is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="nixecs-files-"))
    base.chmod(0o755)
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def as_user(user: pwd.struct_passwd, action: Callable[[], object]) -> int:
    """Run `action` in a forked child as `user`; returns the child's pid (see `join`)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 0
        try:
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            action()
        except BaseException:
            traceback.print_exc()
            code = 1
        os._exit(code)
    return pid


def join(pid: int) -> None:
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the unprivileged child failed"


def run_as(user: pwd.struct_passwd, action: Callable[[], object]) -> None:
    join(as_user(user, action))


def world_writable(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(0o777)  # not sticky: fs.protected_regular does not apply
    return path


# --- item 6: temporaries ---------------------------------------------------------------


def test_a_precreated_temporary_name_never_receives_the_secret(
    nobody: pwd.struct_passwd, shared: Path
) -> None:
    """The attack on `.NAME.tmp-PID`: nobody creates the name the writer will use, keeps it
    open, and reads the secret after the writer wrote into (and renamed) that inode."""
    directory = world_writable(shared / "dir")
    predicted = directory / f".secret.tmp-{os.getpid()}"  # the old, predictable name
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    out_r, out_w = os.pipe()

    def attacker() -> None:
        fd = os.open(predicted, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        os.write(ready_w, b"1")
        os.read(go_r, 1)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(out_w, os.read(fd, 4096) or b"<empty>")

    pid = as_user(nobody, attacker)
    # The child's ends, closed here: should the child fail, reads see EOF instead of hanging.
    for fd in (ready_w, go_r, out_w):
        os.close(fd)
    assert os.read(ready_r, 1) == b"1", "the unprivileged child failed before planting"
    planted = predicted.stat()
    write_atomic(directory / "secret", SECRET, 0o400)
    os.write(go_w, b"1")
    stolen = os.read(out_r, 4096)
    join(pid)
    assert SECRET.encode() not in stolen
    target = (directory / "secret").stat()
    assert target.st_ino != planted.st_ino  # not the attacker's inode
    assert (target.st_uid, stat.S_IMODE(target.st_mode)) == (0, 0o400)
    assert (directory / "secret").read_text() == SECRET
    assert predicted.read_bytes() == b""  # the planted file is left alone, untouched


def test_a_planted_random_name_is_skipped_not_opened(
    nobody: pwd.struct_passwd, shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Even a name guessed right (here: forced) is never opened: O_EXCL, then a new name."""
    directory = world_writable(shared / "dir")
    draws = iter([b"\x00" * 8, b"\x11" * 8])
    monkeypatch.setattr(atomic.os, "urandom", lambda n: next(draws))
    guessed = directory / f".secret{atomic.TEMP_MARK}{'00' * 8}"
    run_as(nobody, lambda: os.symlink("/etc/shadow-victim", guessed))
    write_atomic(directory / "secret", SECRET, 0o400)
    assert guessed.is_symlink() and os.readlink(guessed) == "/etc/shadow-victim"
    assert (directory / "secret").read_text() == SECRET
    assert not Path("/etc/shadow-victim").exists()


def test_temporaries_are_private_from_the_first_byte(
    nobody: pwd.struct_passwd, shared: Path
) -> None:
    """nobody races the writer, opening every name in the directory as it appears."""
    directory = world_writable(shared / "dir")
    stop = directory / "stop"
    seen_r, seen_w = os.pipe()

    def racer() -> None:
        leaked = b""
        tries = 0
        while not os.path.exists(stop):
            for entry in os.listdir(directory):
                try:
                    with open(directory / entry, "rb") as handle:
                        tries += 1
                        leaked += handle.read()
                except OSError:
                    pass
        os.write(seen_w, b"LEAK" if SECRET.encode() in leaked else b"none")

    pid = as_user(nobody, racer)
    os.close(seen_w)  # the child's end: a failed child reads as EOF, never a hang
    for _ in range(300):
        write_atomic(directory / "secret", SECRET, 0o400, durable=False)
    stop.touch()
    assert os.read(seen_r, 4) == b"none"
    join(pid)


def test_stale_temporaries_of_ours_are_removed_and_nothing_else(
    nobody: pwd.struct_passwd, shared: Path
) -> None:
    directory = world_writable(shared / "root/run/nixecs")
    ours = [directory / f".ecs.env{atomic.TEMP_MARK}{'ab' * 8}", directory / ".ecs.env.tmp-4242"]
    for path in ours:
        path.write_text("half a secret")
        os.utime(path, (time.time() - 3600, time.time() - 3600))  # left by a run killed an hour ago
    in_flight = directory / f".ecs.env{atomic.TEMP_MARK}{'ef' * 8}"
    in_flight.write_text("a concurrent writer's, seconds old")
    theirs = directory / f".ecs.env{atomic.TEMP_MARK}{'cd' * 8}"
    run_as(nobody, lambda: theirs.write_text("not ours to delete"))
    os.utime(theirs, (time.time() - 3600, time.time() - 3600))
    unrelated = [directory / ".other.tmp-1", directory / f".ecs.env{atomic.TEMP_MARK}xyz"]
    for path in unrelated:
        path.write_text("keep")
    write_atomic(directory / "ecs.env", "A=1\n", 0o644, root=str(shared / "root"))
    assert not any(path.exists() for path in ours)
    assert theirs.exists() and in_flight.exists() and all(path.exists() for path in unrelated)
    leftovers = [p.name for p in directory.iterdir() if p.name.startswith(".ecs.env.nixecs")]
    assert sorted(leftovers) == sorted([theirs.name, in_flight.name, unrelated[1].name])


# --- item 6: directories ----------------------------------------------------------------


def test_a_symlinked_directory_under_the_root_is_never_followed(
    nobody: pwd.struct_passwd, shared: Path, tmp_path: Path
) -> None:
    root = shared / "root"
    world_writable(root / "run")
    victim = shared / "victim"
    victim.mkdir()
    run_as(nobody, lambda: os.symlink(victim, root / "run/nixecs"))
    userdata = tmp_path / "userdata"
    userdata.write_bytes(settings_userdata())
    code, err = run_apply("--userdata", str(userdata), "--root", str(root))
    assert code == 1, err
    assert "run/nixecs: is a symbolic link or not a directory: refusing to follow it" in err
    assert list(victim.iterdir()) == []  # nothing written outside
    assert "Traceback" not in err


def test_a_symlink_planted_at_a_file_is_replaced_not_kept(tmp_path: Path) -> None:
    """A symlink at ecs.env to a file that happens to hold the right bytes is not "already
    applied": the file is replaced by our own, and the link's target is untouched."""
    userdata = tmp_path / "userdata"
    userdata.write_bytes(settings_userdata())
    root = tmp_path / "root"
    assert run_apply("--userdata", str(userdata), "--root", str(root))[0] == 0
    env = root / "run/nixecs/ecs.env"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_bytes(env.read_bytes())
    env.unlink()
    env.symlink_to(elsewhere)
    code, err = run_apply("--userdata", str(userdata), "--root", str(root))
    assert code == 0 and "wrote ecs.env" in err, err
    assert not env.is_symlink() and env.read_bytes() == elsewhere.read_bytes()


def test_write_atomic_refuses_a_path_outside_the_root(tmp_path: Path) -> None:
    with pytest.raises(UnsafePath):
        write_atomic(tmp_path / "a/../../x", "x", root=str(tmp_path / "a"))


class OneSecureString:
    def get_parameters(self, Names: list[str], WithDecryption: bool) -> dict[str, Any]:
        return {"Parameters": [{"Name": n, "Value": SECRET, "Type": "SecureString"} for n in Names]}


@pytest.mark.parametrize("planted_by", ["nobody", "root-0777"])
def test_a_secrets_directory_someone_else_can_write_is_refused(
    nobody: pwd.struct_passwd, shared: Path, planted_by: str
) -> None:
    root = shared / "root"
    world_writable(root / "run")
    world_writable(root / "run/nixecs")
    secrets = root / "run/nixecs/secrets"
    if planted_by == "nobody":
        run_as(nobody, lambda: (secrets.mkdir(), secrets.chmod(0o755)))
    else:
        secrets.mkdir()
        secrets.chmod(0o777)
    specs = {"db": SecretSpec("/prod/db")}
    with pytest.raises(SecretsFailed, match="writable by no one else; not writing secrets"):
        fetch_secrets(specs, OneSecureString(), SecretWriter(str(root), print), print)
    assert list(secrets.iterdir()) == []


def test_the_secrets_directory_is_created_private(shared: Path) -> None:
    root = shared / "root"
    specs = {"db": SecretSpec("/prod/db")}
    fetch_secrets(specs, OneSecureString(), SecretWriter(str(root), print), print)
    directory = (root / "run/nixecs/secrets").stat()
    assert stat.S_IMODE(directory.st_mode) & 0o022 == 0
    assert stat.S_IMODE((root / "run/nixecs/secrets/db").stat().st_mode) == 0o400


# --- item 7: one apply at a time -----------------------------------------------------------


def apply_process(root: Path, userdata: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nixecs",
            "apply",
            "--userdata",
            str(userdata),
            "--root",
            str(root),
            *extra,
        ],
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen[str]) -> str:
    _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    return err


def test_concurrent_applies_run_a_script_exactly_once(tmp_path: Path) -> None:
    counter = tmp_path / "counter"
    userdata = tmp_path / "userdata"
    userdata.write_text(f"#!/bin/sh\necho ran >> {counter}\nsleep 0.3\n")
    root = tmp_path / "root"
    processes = [apply_process(root, userdata, "--run-scripts") for _ in range(4)]
    errors = [finish(p) for p in processes]
    assert counter.read_text() == "ran\n", errors
    assert sum("already ran" in err for err in errors) == 3
    state = json.loads((root / "var/lib/nixecs/applied.json").read_text())
    assert len(state["scripts"]) == 1


def test_a_nix_apply_beside_a_script_apply_keeps_both_hashes(tmp_path: Path) -> None:
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\nsleep 0.5\n")
    nix = tmp_path / "nix"
    nix.write_text("# nixecs-userdata v1 cluster=prod group=web\n{ ... }: { }\n")
    root = tmp_path / "root"
    first = apply_process(root, script, "--run-scripts")
    second = apply_process(root, nix, "--rebuild-command", "sleep 0.5")
    finish(first)
    finish(second)
    state = json.loads((root / "var/lib/nixecs/applied.json").read_text())
    assert len(state.get("scripts", [])) == 1, state
    assert isinstance(state.get("nix"), dict) and len(state["nix"]["sha256"]) == 64, state


def test_a_held_lock_is_waited_for_within_a_bound(tmp_path: Path) -> None:
    layout = Layout(str(tmp_path / "root"))
    os.makedirs(layout.state_dir)
    with open(layout.lock_file, "w") as holder:
        fcntl.flock(holder, fcntl.LOCK_EX)
        lines: list[str] = []
        applier = Applier(layout, rebuild_command=None, log=lines.append, lock_wait=0.3)
        started = time.monotonic()
        with pytest.raises(ApplyFailed, match="another nixecs apply still holds"):
            applier.apply(settings_userdata(), "test")
        assert 0.3 <= time.monotonic() - started < 5
    assert not os.path.exists(layout.ecs_env)  # nothing written without the lock
    assert any("waiting for another nixecs apply" in line for line in lines)
    assert "wrote ecs.env" in applier.apply(settings_userdata(), "test")  # released: proceeds
