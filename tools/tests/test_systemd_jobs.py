"""systemd's job semantics that modules/userdata.nix relies on, under a real systemd.

Each test boots a throw-away systemd (this machine's /lib/systemd/systemd) as PID 1 of a
private PID and mount namespace, with tmpfs over /run and /etc/systemd/system holding
only the test's units, a boot target standing in for multi-user.target, and drives it with
`nsenter … systemctl`. Nothing leaves the namespaces; killing the namespace's init ends it.

- A unit added (and reloaded) while the boot target's start job is still waiting is not
  started, unless the target's start is queued again: the scripts
  modules/userdata-start-pending-targets.sh and userdata-check-applied.sh run here as the
  module runs them.
- Requires= propagates a restart of nixecs-userdata to the agent; Wants= + After= with
  the applied-marker gate does not, and the gate keeps the agent down on a boot without a
  successful apply.
Root, unshare and nsenter are prerequisites: a failure in CI when missing, not a skip.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conftest import REPO, require, require_tool

pytestmark = pytest.mark.system

SYSTEMD = Path("/lib/systemd/systemd")
START_PENDING = REPO / "modules/userdata-start-pending-targets.sh"
CHECK_APPLIED = REPO / "modules/userdata-check-applied.sh"

INIT = """#!/bin/sh
set -e
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /etc/systemd/system
cp {units}/* /etc/systemd/system/
exec env container=nixecs-test {systemd} --system --unit=boot.target \\
  --log-target=null --show-status=no
"""


class Pid1:
    """A systemd booted into boot.target in its own namespaces."""

    def __init__(self, directory: Path, units: dict[str, str]) -> None:
        unshare = require_tool("unshare")
        self.nsenter = require_tool("nsenter")
        unit_dir = directory / "units"
        unit_dir.mkdir()
        for name, text in units.items():
            (unit_dir / name).write_text(text)
        init = directory / "init.sh"
        init.write_text(INIT.format(units=unit_dir, systemd=SYSTEMD))
        init.chmod(0o755)
        self.process = subprocess.Popen(
            [
                unshare,
                "--pid",
                "--fork",
                "--mount",
                "--propagation",
                "private",
                "--mount-proc",
                str(init),
            ],
            start_new_session=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            self.pid = self._child()
        except BaseException:
            self.process.kill()
            raise

    def _child(self) -> int:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            text = children.read_text().split() if children.exists() else []
            if text:
                return int(text[0])
            time.sleep(0.05)
        raise AssertionError("the namespace's init did not start")

    def run(self, command: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [self.nsenter, "-t", str(self.pid), "-m", "-p", "sh", "-c", command],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if check:
            assert done.returncode == 0, (command, done.stdout, done.stderr)
        return done

    def wait_booted(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            done = self.run("systemctl list-jobs --no-legend --no-pager", check=False)
            state = self.run("systemctl is-active boot.target", check=False).stdout.strip()
            if done.returncode == 0 and not done.stdout.strip() and state == "active":
                return
            time.sleep(0.2)
        raise AssertionError(
            "boot.target was not reached: " + self.run("systemctl list-jobs", check=False).stdout
        )

    def stop(self) -> None:
        # SIGKILL to the namespace's init (systemd takes SIGTERM as "re-execute" and runs on,
        # and it is in a session of its own): the kernel then kills every process in it.
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        self.process.wait(timeout=10)


Boot = Callable[[dict[str, str]], Pid1]


@pytest.fixture
def boot(tmp_path: Path) -> Iterator[Boot]:
    require(os.geteuid() == 0, "needs root (namespaces, mounts)")
    require(SYSTEMD.is_file(), f"no systemd at {SYSTEMD}")
    started: list[Pid1] = []

    def start(units: dict[str, str]) -> Pid1:
        directory = tmp_path / f"ns{len(started)}"
        directory.mkdir()
        pid1 = Pid1(directory, units)
        started.append(pid1)
        pid1.wait_booted()
        return pid1

    yield start
    for pid1 in started:
        pid1.stop()


def scripts(tmp_path: Path) -> Path:
    """The module's two scripts, copied where the namespace can run them."""
    directory = tmp_path / "scripts"
    directory.mkdir(exist_ok=True)
    for source in (START_PENDING, CHECK_APPLIED):
        target = directory / source.name
        target.write_text("#!/bin/sh\n" + source.read_text())
        target.chmod(0o755)
    return directory


def apply_units(tmp_path: Path, start_pending: bool) -> dict[str, str]:
    """boot.target (multi-user.target) wants and is after apply.service (nixecs-userdata),
    which does what a boot-time switch does with a configuration that adds added.service."""
    bin_dir = scripts(tmp_path)
    switch = tmp_path / "switch.sh"
    switch.write_text(
        """#!/bin/sh
set -e
printf '[Unit]\\nDefaultDependencies=no\\n[Service]\\nType=oneshot\\nRemainAfterExit=yes\\nExecStart=/bin/true\\n' \\
  > /etc/systemd/system/added.service
mkdir -p /etc/systemd/system/boot.target.wants
ln -sf ../added.service /etc/systemd/system/boot.target.wants/added.service
systemctl daemon-reload
# switch-to-configuration then starts the targets that are active: boot.target is not.
active=$(systemctl list-units --type=target --state=active --no-legend --plain | cut -d' ' -f1)
[ -z "$active" ] || systemctl --no-block start $active
"""
    )
    switch.chmod(0o755)
    post = f"ExecStartPost={bin_dir / START_PENDING.name}\n" if start_pending else ""
    return {
        "boot.target": "[Unit]\nWants=apply.service\nAfter=apply.service\n",
        "apply.service": (
            "[Unit]\nDefaultDependencies=no\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
            f"ExecStart={switch}\n{post}"
        ),
    }


@pytest.mark.parametrize("start_pending", [True, False])
def test_units_added_by_a_boot_time_switch_start_on_that_boot(
    boot: Boot, tmp_path: Path, start_pending: bool
) -> None:
    """Without the step (the control) the added unit stays down: the defect is real."""
    pid1 = boot(apply_units(tmp_path, start_pending))
    state = pid1.run("systemctl is-active added.service", check=False).stdout.strip()
    assert state == ("active" if start_pending else "inactive"), state


def agent_units(tmp_path: Path, relation: str, apply_ok: bool) -> dict[str, str]:
    """apply.service (nixecs-userdata) and agent.service (ecs-agent) as the module relates
    them (relation="Wants": Wants=, After=, the gate) or as before (relation="Requires")."""
    bin_dir = scripts(tmp_path)
    marker = "/run/userdata-applied"
    gate = f"ExecStartPre={bin_dir / CHECK_APPLIED.name} {marker}\n" if relation == "Wants" else ""
    return {
        "boot.target": "[Unit]\nWants=apply.service agent.service\nAfter=apply.service agent.service\n",
        "apply.service": (
            "[Unit]\nDefaultDependencies=no\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
            # Fails once /run/fail exists (a bad re-apply), or always when apply_ok is false.
            f"ExecStart=/bin/sh -c '{'test ! -e /run/fail' if apply_ok else 'exit 1'}'\n"
            f"ExecStartPost=/bin/touch {marker}\n"
        ),
        "agent.service": (
            f"[Unit]\nDefaultDependencies=no\n{relation}=apply.service\nAfter=apply.service\n"
            f"[Service]\n{gate}ExecStart=/bin/sleep infinity\n"
        ),
    }


@pytest.mark.parametrize("relation", ["Wants", "Requires"])
def test_a_failed_reapply_leaves_the_agent_running(
    boot: Boot, tmp_path: Path, relation: str
) -> None:
    """Requires= (the control) takes the agent down with the failed restart."""
    pid1 = boot(agent_units(tmp_path, relation, apply_ok=True))
    before = pid1.run("systemctl show -p MainPID --value agent.service").stdout.strip()
    assert before != "0"
    pid1.run("touch /run/fail")
    assert pid1.run("systemctl restart apply.service", check=False).returncode != 0
    state = pid1.run("systemctl is-active agent.service", check=False).stdout.strip()
    after = pid1.run("systemctl show -p MainPID --value agent.service").stdout.strip()
    if relation == "Wants":
        assert (state, after) == ("active", before)
    else:
        assert (state, after) != ("active", before)


def test_the_agent_does_not_start_without_a_successful_apply(boot: Boot, tmp_path: Path) -> None:
    pid1 = boot(agent_units(tmp_path, "Wants", apply_ok=False))
    assert pid1.run("systemctl is-active agent.service", check=False).stdout.strip() != "active"
    result = pid1.run("systemctl show -p Result --value agent.service").stdout.strip()
    assert result == "exit-code", result


def test_the_scripts_are_posix_sh() -> None:
    """The scripts are plain POSIX sh (the module runs them with bash)."""
    sh = shutil.which("sh")
    assert sh
    for script in (START_PENDING, CHECK_APPLIED):
        subprocess.run([sh, "-n", str(script)], check=True, timeout=30)


def test_a_blocking_start_of_a_later_target_waits_on_the_calling_unit(
    boot: Boot, tmp_path: Path
) -> None:
    """Why the step uses --no-block, and why a re-apply through `systemctl restart
    nixecs-userdata` cannot run a switch that waits for multi-user.target (docs/host.md)."""
    probe = tmp_path / "probe.sh"
    probe.write_text(
        "#!/bin/sh\n[ -e /run/probe ] || exit 0\n"
        "timeout 5 systemctl start boot.target; echo $? > /run/probe-rc\n"
    )
    probe.chmod(0o755)
    pid1 = boot(
        {
            "boot.target": "[Unit]\nWants=apply.service\nAfter=apply.service\n",
            "apply.service": (
                "[Unit]\nDefaultDependencies=no\n[Service]\nType=oneshot\nRemainAfterExit=yes\n"
                f"ExecStart={probe}\n"
            ),
        }
    )
    pid1.run("touch /run/probe && systemctl restart apply.service")
    assert pid1.run("cat /run/probe-rc").stdout.strip() == "124"  # timeout(1): still waiting
