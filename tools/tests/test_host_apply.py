"""`nixecs apply` against the IMDSv2 emulator on loopback: formats, idempotence and faults."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import free_port
from host_fixtures import (
    FAST_RETRIES,
    imds_fixture,  # noqa: F401  (the `imds` fixture)
    no_tmp_files,
    rebuild_calls,
    run_apply,
    sample_settings,
    settings_userdata,
    snapshot,
    write_rebuild_command,
)
from nixecs.settings import agent_environment, format_env_file, loads_json
from nixecs.testing.imds import ImdsEmulator

NIX_USERDATA = (
    "# nixecs-userdata v1 cluster=prod group=web\n"
    '{ ... }: { imports = [ <nixecs/hosts/ecs-node> ]; nixecs.ecs.cluster = "prod"; }\n'
)


def apply_from(emulator: ImdsEmulator, root: Path, *extra: str) -> tuple[int, str]:
    return run_apply("--imds", emulator.url, "--root", str(root), *FAST_RETRIES, *extra)


# --- settings ----------------------------------------------------------------------------


def test_settings_userdata_writes_agent_environment_and_settings(
    imds: ImdsEmulator, tmp_path: Path
) -> None:
    imds.userdata = settings_userdata()
    code, err = apply_from(imds, tmp_path)
    assert code == 0, err
    expected = sample_settings()
    env_text = (tmp_path / "run/nixecs/ecs.env").read_text()
    assert env_text == format_env_file(agent_environment(expected))
    assert "ECS_CLUSTER=prod\n" in env_text
    assert loads_json((tmp_path / "run/nixecs/settings.json").read_text()) == expected
    state = json.loads((tmp_path / "var/lib/nixecs/applied.json").read_text())
    assert state["format"] == "settings" and len(state["sha256"]) == 64
    assert imds.count("PUT", "/latest/api/token") == 1
    assert "Traceback" not in err
    assert no_tmp_files(tmp_path)


def test_gzipped_settings_userdata_is_inflated(imds: ImdsEmulator, tmp_path: Path) -> None:
    imds.userdata = gzip.compress(settings_userdata(cluster="blue"))
    code, err = apply_from(imds, tmp_path)
    assert code == 0, err
    assert "ECS_CLUSTER=blue\n" in (tmp_path / "run/nixecs/ecs.env").read_text()


def test_second_apply_of_the_same_settings_changes_nothing(
    imds: ImdsEmulator, tmp_path: Path
) -> None:
    imds.userdata = settings_userdata()
    assert apply_from(imds, tmp_path)[0] == 0
    before = snapshot(tmp_path)
    time.sleep(0.01)  # a rewrite would show in mtime_ns
    code, err = apply_from(imds, tmp_path)
    assert code == 0, err
    assert snapshot(tmp_path) == before
    assert "nothing changed" in err


def test_changed_settings_are_applied_over_the_old_ones(imds: ImdsEmulator, tmp_path: Path) -> None:
    imds.userdata = settings_userdata(log_level="info")
    assert apply_from(imds, tmp_path)[0] == 0
    imds.userdata = settings_userdata(log_level="debug")
    code, err = apply_from(imds, tmp_path)
    assert code == 0, err
    assert "ECS_LOGLEVEL=debug\n" in (tmp_path / "run/nixecs/ecs.env").read_text()
    assert loads_json((tmp_path / "run/nixecs/settings.json").read_text()).ecs.log_level == "debug"


def test_userdata_from_a_file_needs_no_imds(tmp_path: Path) -> None:
    userdata = tmp_path / "userdata"
    userdata.write_bytes(settings_userdata(cluster="filed"))
    code, err = run_apply("--userdata", str(userdata), "--root", str(tmp_path / "root"))
    assert code == 0, err
    assert "ECS_CLUSTER=filed\n" in (tmp_path / "root/run/nixecs/ecs.env").read_text()


# --- empty and invalid userdata ----------------------------------------------------------


@pytest.mark.parametrize("userdata", [None, b""], ids=["404", "zero-bytes"])
def test_no_userdata_is_nothing_to_do(
    imds: ImdsEmulator, tmp_path: Path, userdata: bytes | None
) -> None:
    imds.userdata = userdata
    code, err = apply_from(imds, tmp_path)
    assert code == 0, err
    assert "nothing to do" in err
    assert snapshot(tmp_path) == {}


@pytest.mark.parametrize(
    ("userdata", "message"),
    [
        (b"hello world\n", "unknown userdata format"),
        (gzip.compress(b"#nixecs-settings v1\n{}" * 50)[:40], "truncated"),
        (b"\x1f\x8bnot really gzip", "not valid gzip"),
        (b"#nixecs-settings v1\n{not json", "not JSON"),
        (
            b'#nixecs-settings v1\n{"version":1,"cluster":"prod","group":"web","ecs":{"log_level":"loud"}}',
            "ecs.log_level",
        ),
        (b"#nixecs-settings v1\n\xff\xfe", "not UTF-8"),
        (b"# nixecs-userdata v1 cluster=prod\n{ ... }: { }\n", "group missing"),
        (b"# nixecs-userdata v1 cluster=prod group=we;b\n{ ... }: { }\n", "not a valid name"),
    ],
    ids=[
        "garbage",
        "truncated-gzip",
        "bad-gzip",
        "not-json",
        "invalid-settings",
        "not-utf8",
        "nix-no-group",
        "nix-bad-group",
    ],
)
def test_invalid_userdata_exits_2_and_writes_nothing(
    imds: ImdsEmulator, tmp_path: Path, userdata: bytes, message: str
) -> None:
    imds.userdata = settings_userdata()
    assert apply_from(imds, tmp_path)[0] == 0
    before = snapshot(tmp_path)
    imds.userdata = userdata
    code, err = apply_from(imds, tmp_path)
    assert code == 2
    assert message in err
    lines = err.strip().splitlines()
    assert lines[-1].startswith("nixecs apply: error:") and "nothing changed" in lines[-1]
    assert "Traceback" not in err
    assert snapshot(tmp_path) == before  # the previous, valid state is intact


# --- IMDS faults -------------------------------------------------------------------------


def test_imds_unreachable_fails_after_bounded_retries_and_keeps_state(
    imds: ImdsEmulator, tmp_path: Path
) -> None:
    imds.userdata = settings_userdata()
    assert apply_from(imds, tmp_path)[0] == 0
    before = snapshot(tmp_path)
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    code, err = run_apply("--imds", closed, "--root", str(tmp_path), *FAST_RETRIES)
    assert code == 1
    assert time.monotonic() - started < 5
    assert "gave up after 3 attempts" in err
    assert err.count("retrying in") == 2  # attempts 1 and 2 are retried, 3 is the last
    assert snapshot(tmp_path) == before
    assert "Traceback" not in err


def test_transient_500s_and_dropped_connections_are_retried(
    imds: ImdsEmulator, tmp_path: Path
) -> None:
    imds.userdata = settings_userdata()
    imds.fail_next(2)
    imds.drop_next(1)
    code, err = run_apply(
        "--imds", imds.url, "--root", str(tmp_path), "--attempts", "5", "--backoff", "0.01"
    )
    assert code == 0, err
    assert err.count("retrying in") == 3
    assert [status for _, _, status in imds.requests] == [0, 500, 500, 200, 200]
    assert (tmp_path / "run/nixecs/ecs.env").exists()


def test_persistent_500s_exhaust_the_retries(imds: ImdsEmulator, tmp_path: Path) -> None:
    imds.userdata = settings_userdata()
    imds.fail_next(100)
    code, err = apply_from(imds, tmp_path)
    assert code == 1
    assert "HTTP 500" in err and "gave up after 3 attempts" in err
    assert len(imds.requests) == 3
    assert snapshot(tmp_path) == {}


def test_slow_imds_times_out_and_is_retried(imds: ImdsEmulator, tmp_path: Path) -> None:
    imds.userdata = settings_userdata()
    imds.delay = 0.5
    code, err = run_apply(
        "--imds",
        imds.url,
        "--root",
        str(tmp_path),
        "--attempts",
        "2",
        "--backoff",
        "0.01",
        "--timeout",
        "0.1",
    )
    assert code == 1
    assert "no answer from IMDS" in err


def test_token_refused_fails_without_writing(imds: ImdsEmulator, tmp_path: Path) -> None:
    imds.userdata = settings_userdata()
    imds.refuse_tokens = True
    code, err = apply_from(imds, tmp_path)
    assert code == 1
    assert "refused a session token (HTTP 403)" in err
    assert imds.count("GET", "/latest/user-data") == 0  # never asked without a token
    assert imds.count("PUT", "/latest/api/token") == 1  # a refusal is final, not retried
    assert snapshot(tmp_path) == {}


# --- nix ---------------------------------------------------------------------------------


def test_nix_userdata_rebuilds_only_when_its_hash_changes(
    imds: ImdsEmulator, tmp_path: Path
) -> None:
    command, log, _ = write_rebuild_command(tmp_path)
    root = tmp_path / "root"
    imds.userdata = NIX_USERDATA.encode()
    code, err = apply_from(imds, root, "--rebuild-command", command)
    assert code == 0, err
    configuration = root / "etc/nixos/configuration.nix"
    assert configuration.read_text() == NIX_USERDATA
    calls = rebuild_calls(log)
    assert len(calls) == 1 and calls[0].startswith("switch ")
    state = json.loads((root / "var/lib/nixecs/applied.json").read_text())
    assert state["nix"]["sha256"] == calls[0].split()[1]  # the hash of what was rebuilt

    before = snapshot(root)
    code, err = apply_from(imds, root, "--rebuild-command", command)
    assert code == 0, err
    assert len(rebuild_calls(log)) == 1  # unchanged: no rebuild
    assert snapshot(root) == before

    imds.userdata = gzip.compress((NIX_USERDATA + "# changed\n").encode())
    code, err = apply_from(imds, root, "--rebuild-command", command)
    assert code == 0, err
    assert len(rebuild_calls(log)) == 2
    assert configuration.read_text().endswith("# changed\n")


def test_failed_rebuild_is_not_recorded_and_the_next_run_retries(
    imds: ImdsEmulator, tmp_path: Path
) -> None:
    command, log, status = write_rebuild_command(tmp_path, status=1)
    root = tmp_path / "root"
    configuration = root / "etc/nixos/configuration.nix"
    configuration.parent.mkdir(parents=True)
    configuration.write_text("# the configuration this machine runs\n")
    imds.userdata = NIX_USERDATA.encode()
    code, err = apply_from(imds, root, "--rebuild-command", command)
    assert code == 1
    assert "rebuild failed with exit status 1" in err
    assert not (root / "var/lib/nixecs/applied.json").exists()
    # the running system is the old one, and so is its configuration file
    assert configuration.read_text() == "# the configuration this machine runs\n"
    status.write_text("0")
    code, err = apply_from(imds, root, "--rebuild-command", command)
    assert code == 0, err
    assert len(rebuild_calls(log)) == 2
    assert json.loads((root / "var/lib/nixecs/applied.json").read_text())["format"] == "nix"


def test_missing_rebuild_command_is_an_operational_failure(
    imds: ImdsEmulator, tmp_path: Path
) -> None:
    imds.userdata = NIX_USERDATA.encode()
    code, err = apply_from(imds, tmp_path, "--rebuild-command", str(tmp_path / "no-such-rebuild"))
    assert code == 1
    assert "cannot run rebuild command" in err
    assert not (tmp_path / "var/lib/nixecs/applied.json").exists()


def test_nix_run_killed_during_rebuild_rebuilds_on_the_next_run(
    imds: ImdsEmulator, tmp_path: Path
) -> None:
    """The rebuild kills its parent (`nixecs apply`) with SIGKILL: a power cut mid-switch."""
    command, log, _ = write_rebuild_command(tmp_path)
    killer = tmp_path / "killing-rebuild"
    killer.write_text("#!/bin/sh\nexec >/dev/null 2>&1\nkill -9 $PPID\n")
    killer.chmod(0o755)
    userdata = tmp_path / "userdata.nix"
    userdata.write_text(NIX_USERDATA)
    root = tmp_path / "root"
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "nixecs",
            "apply",
            "--userdata",
            str(userdata),
            "--root",
            str(root),
            "--rebuild-command",
            str(killer),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert process.returncode == -9
    assert (root / "etc/nixos/configuration.nix").read_text() == NIX_USERDATA
    assert not (root / "var/lib/nixecs/applied.json").exists()
    code, err = run_apply(
        "--userdata", str(userdata), "--root", str(root), "--rebuild-command", command
    )
    assert code == 0, err
    assert len(rebuild_calls(log)) == 1


# --- script ------------------------------------------------------------------------------


def test_script_userdata_runs_once_per_content(imds: ImdsEmulator, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    root = tmp_path / "root"
    imds.userdata = f"#!/bin/sh\necho run >> {marker}\n".encode()
    assert apply_from(imds, root, "--run-scripts")[0] == 0
    assert apply_from(imds, root, "--run-scripts")[0] == 0
    assert marker.read_text() == "run\n"
    imds.userdata = f"#!/bin/sh\necho second >> {marker}\n".encode()
    assert apply_from(imds, root, "--run-scripts")[0] == 0
    assert marker.read_text() == "run\nsecond\n"


def test_failing_script_is_retried_on_the_next_run(imds: ImdsEmulator, tmp_path: Path) -> None:
    counter = tmp_path / "count"
    root = tmp_path / "root"
    # Fails the first time, succeeds the second.
    imds.userdata = f'#!/bin/sh\necho x >> {counter}\n[ "$(wc -l < {counter})" -ge 2 ]\n'.encode()
    code, err = apply_from(imds, root, "--run-scripts")
    assert code == 1 and "script failed with exit status 1" in err
    code, err = apply_from(imds, root, "--run-scripts")
    assert code == 0, err
    code, err = apply_from(imds, root, "--run-scripts")
    assert code == 0 and "already ran" in err
    assert counter.read_text() == "x\nx\n"


def test_rerooted_runs_never_switch_or_script_this_machine(
    imds: ImdsEmulator, tmp_path: Path
) -> None:
    """With --root, nix userdata needs an explicit --rebuild-command (the default would
    switch the real system) and script userdata --run-scripts: exit 2, nothing written."""
    marker = tmp_path / "ran"
    root = tmp_path / "root"
    imds.userdata = NIX_USERDATA.encode()
    code, err = apply_from(imds, root)
    assert code == 2 and "pass --rebuild-command" in err
    imds.userdata = f"#!/bin/sh\necho run >> {marker}\n".encode()
    code, err = apply_from(imds, root)
    assert code == 2 and "pass --run-scripts" in err
    assert not marker.exists()
    assert snapshot(root) == {}


@pytest.mark.parametrize("option", ["--timeout", "--backoff"])
@pytest.mark.parametrize("value", ["nan", "inf", "-1"])
def test_non_finite_numbers_are_usage_errors(option: str, value: str, tmp_path: Path) -> None:
    code, err = run_apply(
        "--userdata", str(tmp_path / "none"), "--root", str(tmp_path), option, value
    )
    assert code == 2 and "out of range" in err and "internal error" not in err


# --- killed between writes -----------------------------------------------------------------

KILL_AFTER_FIRST_WRITE = """
import os, sys
import nixecs.host.apply as apply
real = apply.write_atomic
def write_then_die(path, *args, **kwargs):
    real(path, *args, **kwargs)
    if path.endswith(sys.argv[1]):
        os._exit(137)  # no cleanup, no finally: as abrupt as SIGKILL
apply.write_atomic = write_then_die
from nixecs.host.boot import main
sys.exit(main(["apply", "--userdata", sys.argv[2], "--root", sys.argv[3]]))
"""


def test_killed_between_writes_converges_on_the_next_run(tmp_path: Path) -> None:
    root = tmp_path / "root"
    old, new = tmp_path / "old", tmp_path / "new"
    old.write_bytes(settings_userdata(cluster="old"))
    new.write_bytes(settings_userdata(cluster="new"))
    assert run_apply("--userdata", str(old), "--root", str(root))[0] == 0
    died = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_FIRST_WRITE, "ecs.env", str(new), str(root)],
        capture_output=True,
        timeout=30,
    )
    assert died.returncode == 137
    # Torn between two complete states: ecs.env is new, settings.json and the state are old.
    assert "ECS_CLUSTER=new\n" in (root / "run/nixecs/ecs.env").read_text()
    assert loads_json((root / "run/nixecs/settings.json").read_text()).cluster == "old"
    assert no_tmp_files(root)

    code, err = run_apply("--userdata", str(new), "--root", str(root))
    assert code == 0, err
    assert "settings.json" in err
    expected = {}
    fresh = tmp_path / "fresh"
    assert run_apply("--userdata", str(new), "--root", str(fresh))[0] == 0
    for name in ("run/nixecs/ecs.env", "run/nixecs/settings.json"):
        expected[name] = (fresh / name).read_bytes()
        assert (root / name).read_bytes() == expected[name]
    state = json.loads((root / "var/lib/nixecs/applied.json").read_text())
    assert (
        state["sha256"] == json.loads((fresh / "var/lib/nixecs/applied.json").read_text())["sha256"]
    )


# --- command line --------------------------------------------------------------------------


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    code, err = run_apply("--bogus")
    assert code == 2 and "unknown option" in err
    code, err = run_apply("--imds")
    assert code == 2 and "--imds needs a value" in err
    code, err = run_apply("--imds", "https://169.254.169.254", "--root", str(tmp_path))
    assert code == 2 and "http://" in err
    code, err = run_apply("--userdata", str(tmp_path / "missing"), "--root", str(tmp_path))
    assert code == 2 and "cannot read" in err


def test_console_entry_dispatches_apply_with_global_options(tmp_path: Path) -> None:
    userdata = tmp_path / "userdata"
    userdata.write_bytes(settings_userdata(cluster="viamain"))
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "nixecs",
            "--region",
            "eu-west-1",
            "-v",
            "apply",
            "--userdata",
            str(userdata),
            "--root",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert process.returncode == 0, process.stderr
    assert "ECS_CLUSTER=viamain" in (tmp_path / "r/run/nixecs/ecs.env").read_text()


FORBIDDEN = (
    "click",
    "yaml",
    "jinja2",
    "boto3",
    "botocore",
    "nixecs.cli",
    "nixecs.fleet",
    "dataclasses",
    "typing",
    "http.client",
    "urllib.request",
    "email",
    # Not forbidden by the design, but each costs milliseconds the settings path never needs:
    "argparse",
    "subprocess",
    "hashlib",
    "socket",
    "encodings.idna",
    "nixecs.diagnostics",
    # json.decoder/json.encoder import re, re imports enum: ~10 ms of a 26 ms budget (issue 18
    # item 4); nixecs.jsonc uses json's C module directly, the checks use no regex.
    "json",
    "re",
    "enum",
)


def imported_modules(stderr: str) -> set[str]:
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1].strip()
            if name != "package":  # the header line
                names.add(name)
    return names


@pytest.mark.parametrize("source", ["file", "imds"])
def test_apply_imports_nothing_heavy(imds: ImdsEmulator, tmp_path: Path, source: str) -> None:
    userdata = tmp_path / "userdata"
    userdata.write_bytes(settings_userdata())
    imds.userdata = userdata.read_bytes()
    where = ["--userdata", str(userdata)] if source == "file" else ["--imds", imds.url]
    env = {**os.environ, "PYTHONPYCACHEPREFIX": str(tmp_path / "pycache")}
    process = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "nixecs",
            "apply",
            *where,
            "--root",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert process.returncode == 0, process.stderr
    modules = imported_modules(process.stderr)
    assert {"nixecs.settings", "nixecs.host.apply", "_json"} <= modules  # the list is real
    heavy = sorted(
        m
        for m in modules
        if m.split(".")[0] in FORBIDDEN
        or m in FORBIDDEN
        or any(m.startswith(f + ".") for f in FORBIDDEN)
    )
    assert heavy == []
    assert ("nixecs.host.imds" in modules) == (source == "imds")


def test_click_cli_forwards_apply_to_the_same_code(tmp_path: Path) -> None:
    """`nixecs --help` lists apply; entering through click runs the boot code unchanged."""
    from nixecs.cli import run

    good, bad = tmp_path / "good", tmp_path / "bad"
    good.write_bytes(settings_userdata(cluster="viaclick"))
    bad.write_bytes(b"garbage\n")
    assert run(["apply", "--userdata", str(good), "--root", str(tmp_path / "r")]) == 0
    assert "ECS_CLUSTER=viaclick" in (tmp_path / "r/run/nixecs/ecs.env").read_text()
    assert run(["apply", "--userdata", str(bad), "--root", str(tmp_path / "r")]) == 2
