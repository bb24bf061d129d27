"""`nixecs exec` against hostile peers and signals (docs/security.md). It reads no file; its
inputs are the ECS answers, the service it is pointed at, and the session it hands over. The
table names each case and its outcome; the tests after it prove each row.

| case                                          | outcome                                              |
|-----------------------------------------------|------------------------------------------------------|
| foreign owner: a service made by hand in the  | exit 2 "refusing: … has no nixecs tags" before any   |
|   cluster (no nixecs tags)                    |   task is looked up or session opened                |
| a service tagged for another cluster          | exit 2 "refusing: … its nixecs:cluster tag is …"     |
| no such service                               | exit 1 "no service CLUSTER/SERVICE"                  |
| session-manager-plugin missing                | exit 1 before any AWS call (test_aws_exec.py)        |
| stalled peer: the endpoint never answers      | exit 1 "out of time" at the command's deadline       |
| throttling on every request, twice in a row   | retried (adaptive retries); the command goes on:     |
|                                               |   exit 1 "has no running task" (moto runs none)      |
| lost answers (the peer acted, the reply lost) | the reads are retried; the same outcome              |
| a session longer than the command's deadline  | the plugin's exit status: the deadline bounds the    |
|                                               |   AWS calls, not the interactive session             |
| Ctrl-C, Ctrl-\\, Ctrl-Z during the session     | ignored by nixecs (the remote shell's), as the AWS   |
|                                               |   CLI does: the plugin's exit status                 |
| killed midway: SIGTERM during the session     | the plugin terminated, exit 143, no traceback        |
| symlink/FIFO/device/empty/truncated/huge file | not applicable: exec reads no file                   |
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from botocore.stub import Stubber

from aws_fixtures import moto_client
from conftest import MotoServer
from nixecs.aws.ecs_exec import PLUGIN, execute
from nixecs.aws.session import Session
from nixecs.testing.faultproxy import FaultPlan, FaultProxy
from test_aws_exec import CLUSTER, stub_owner

SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(name="session")
def _session(monkeypatch: pytest.MonkeyPatch) -> Session:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return Session(region="us-east-1")


@pytest.mark.parametrize(
    ("tags", "says"),
    [
        ([], "it has no nixecs tags"),
        ([{"key": "nixecs:cluster", "value": "staging"}], "its nixecs:cluster tag is 'staging'"),
    ],
    ids=["made-by-hand", "another-cluster"],
)
def test_a_service_nixecs_did_not_deploy_is_refused(
    session: Session, tags: list[dict[str, str]], says: str
) -> None:
    import click

    ecs = session.client("ecs")
    with Stubber(ecs) as stubber, pytest.raises(click.ClickException) as caught:
        stub_owner(stubber, tags)  # nothing else stubbed: a ListTasks would fail differently
        execute(session, CLUSTER, "web", ["sh"], which=lambda n: "/p", call=lambda a: 0)
    assert caught.value.exit_code == 2
    assert caught.value.format_message().startswith("refusing: service prod/web")
    assert says in caught.value.format_message()


def test_no_such_service(session: Session) -> None:
    from nixecs.diagnostics import OperationalFailure

    ecs = session.client("ecs")
    with Stubber(ecs) as stubber, pytest.raises(OperationalFailure) as caught:
        stubber.add_response(
            "describe_services",
            {"services": [], "failures": [{"arn": "web", "reason": "MISSING"}]},
            {"cluster": CLUSTER, "services": ["web"], "include": ["TAGS"]},
        )
        execute(session, CLUSTER, "web", ["sh"], which=lambda n: "/p", call=lambda a: 0)
    assert "no service prod/web" in str(caught.value)


def fake_plugin(directory: Path, body: str) -> Path:
    directory.mkdir(exist_ok=True)
    plugin = directory / PLUGIN
    plugin.write_text("#!/bin/sh\n" + body)
    plugin.chmod(0o755)
    return plugin


def nixecs(
    endpoint: str, path: Path, *args: str, deadline: str = "3"
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        "PATH": f"{path}:{os.environ['PATH']}",
        "NIXECS_DEADLINE": deadline,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    argv = [sys.executable, "-m", "nixecs", "--endpoint-url", endpoint, "--region", "us-east-1"]
    return subprocess.run(
        [*argv, *args], env=env, capture_output=True, text=True, timeout=120,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.moto
def test_a_stalled_peer_meets_the_deadline(moto: MotoServer, tmp_path: Path) -> None:
    plugin_dir = tmp_path / "bin"
    fake_plugin(plugin_dir, "exit 0\n")
    plan = FaultPlan(rate=1.0, kinds=("stall",), max_consecutive=10**6)
    start = time.monotonic()
    with FaultProxy(moto.url, plan) as proxy:
        done = nixecs(proxy.url, plugin_dir, "exec", "prod/web", "--", "sh")
    assert done.returncode == 1, done.stderr
    assert "out of time" in done.stderr and "Traceback" not in done.stderr
    assert time.monotonic() - start < 3 + 20


@pytest.mark.moto
@pytest.mark.parametrize("kind", ["throttle", "lost"])
def test_throttling_and_lost_answers_are_retried(
    moto: MotoServer, tmp_path: Path, kind: str
) -> None:
    ecs = moto_client(moto.url, "ecs")
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(
        family="web", containerDefinitions=[{"name": "web", "image": "nginx", "memory": 64}]
    )
    ecs.create_service(
        cluster="prod",
        serviceName="web",
        taskDefinition="web",
        desiredCount=0,
        tags=[{"key": "nixecs:cluster", "value": "prod"}],
    )
    plugin_dir = tmp_path / "bin"
    fake_plugin(plugin_dir, "exit 0\n")
    plan = FaultPlan(rate=1.0, kinds=(kind,), max_consecutive=2)
    with FaultProxy(moto.url, plan) as proxy:
        # (adaptive retries back off for seconds: a deadline well above the stall test's)
        done = nixecs(proxy.url, plugin_dir, "exec", "prod/web", "--", "sh", deadline="90")
        faults = proxy.stats.total_faults
    assert done.returncode == 1 and "prod/web has no running task" in done.stderr, done.stderr
    assert faults >= 2  # both reads met the fault before they got through


def _hand_over(tmp_path: Path, body: str, deadline: float | None = None) -> tuple[int, str]:
    """hand_over in its own process (signals reach it there, not pytest)."""
    plugin = fake_plugin(tmp_path / "bin", body)
    script = textwrap.dedent(
        f"""
        import sys
        from nixecs.aws import ecs_exec, watchdog
        from nixecs.diagnostics import Terminated
        if {deadline!r} is not None:
            watchdog.arm("nixecs exec", {deadline!r})
        try:
            code = ecs_exec.hand_over([{str(plugin)!r}])
        except Terminated as ended:
            print("terminated", ended.name, file=sys.stderr)
            code = 128 + ended.signum
        sys.exit(code)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return done.returncode, done.stderr


def test_a_session_outlives_the_commands_deadline(tmp_path: Path) -> None:
    code, err = _hand_over(tmp_path, "sleep 2\nexit 7\n", deadline=0.5)
    assert code == 7 and "out of time" not in err, err


def test_keyboard_signals_belong_to_the_remote_shell(tmp_path: Path) -> None:
    # The plugin sends its parent (nixecs) what a terminal sends on Ctrl-C, Ctrl-\ and Ctrl-Z.
    code, err = _hand_over(
        tmp_path, "kill -INT $PPID; kill -QUIT $PPID; kill -TSTP $PPID\nsleep 0.5\nexit 5\n"
    )
    assert code == 5 and "Traceback" not in err, err


def test_sigterm_ends_the_plugin_too(tmp_path: Path) -> None:
    pid_file = tmp_path / "plugin.pid"
    start = time.monotonic()
    code, err = _hand_over(tmp_path, f"echo $$ > {pid_file}\nkill -TERM $PPID\nexec sleep 30\n")
    assert code == 143 and "terminated SIGTERM" in err, err
    assert time.monotonic() - start < 20
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)
