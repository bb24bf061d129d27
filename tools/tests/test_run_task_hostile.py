"""`nixecs run CLUSTER/TASK` against hostile input, peers and signals (docs/security.md). It
reads no file; its inputs are the target, `--command`, `--timeout`, the task definition it
is pointed at and ECS's answers. The table names each case and its outcome; the tests after
it prove each row.

| case                                            | outcome                                            |
|-------------------------------------------------|----------------------------------------------------|
| foreign owner: a family registered by hand      | exit 2 "refusing: … has no nixecs tags"; RunTask   |
|   under the name (no nixecs tags)               |   never called                                     |
| a task definition tagged for another cluster    | exit 2 "refusing: … its nixecs:cluster tag is …"   |
| a task never deployed                           | exit 1, one line (test_cluster_tasks_aws.py)       |
| `--command` with an unbalanced quote            | exit 2 "not shell words", before any AWS call      |
| `--command` over ECS's 8192 characters          | exit 2, before any AWS call                        |
| `--timeout` nan, inf, 0                         | exit 2                                             |
| stalled peer: the endpoint never answers        | exit 1 "out of time" at the command's deadline     |
| `--wait --timeout` beyond the default deadline  | the deadline is the timeout + 300 s                |
| throttling, twice in a row per request          | retried; one task started                          |
| lost answers (the peer acted, the reply lost)   | RunTask's retries carry the same clientToken: ECS  |
|                                                 |   starts one task (ECS_Idempotency)                |
| killed midway: SIGINT / SIGTERM during --wait   | exit 130 / 143, "keeps running" naming the task;   |
|                                                 |   the task is left to ECS                          |
| symlink/FIFO/device/empty/truncated/huge file   | not applicable: run reads no file                  |
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aws_fixtures import moto_client, run_cli
from conftest import MotoServer
from nixecs import naming
from nixecs.aws import progress, watchdog
from nixecs.aws.session import Session
from nixecs.testing.faultproxy import FaultPlan, FaultProxy
from test_run_task import GROUP_TAG, Ecs

SRC = Path(__file__).resolve().parents[1] / "src"
BASE = ["--region", "eu-west-1", "run"]


@pytest.mark.parametrize(
    ("tags", "says"),
    [
        ([{"key": "nixecs:group", "value": "web"}], "it has no nixecs tags"),
        (
            [{"key": "nixecs:cluster", "value": "staging"}, *GROUP_TAG[1:]],
            "its nixecs:cluster tag is 'staging'",
        ),
    ],
    ids=["made-by-hand", "another-cluster"],
)
def test_a_task_definition_nixecs_did_not_register_is_refused(
    tags: list[dict[str, str]], says: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    fake = Ecs(tags)
    monkeypatch.setattr(Session, "client", lambda self, name, **kw: fake)
    done = run_cli(capsys, [*BASE, "prod/report"])
    assert done.code == 2 and "refusing: task definition nixecs-prod-report" in done.err
    assert says in done.err and "Traceback" not in done.err, done.err
    assert fake.run_arguments == {}  # RunTask never called


@pytest.mark.parametrize(
    ("arguments", "says"),
    [
        (["--command", "sh -c 'echo"], "not shell words"),
        (["--command", "x" * 9000], "8192 characters"),
        (["--timeout", "nan"], "not a number"),
        (["--timeout", "inf"], "--timeout"),
        (["--timeout", "0"], "--timeout"),
    ],
    ids=["unbalanced-quote", "huge-command", "nan", "inf", "zero"],
)
def test_bad_arguments_are_usage_errors_before_any_call(
    arguments: list[str], says: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    def no_client(self: Session, name: str, **kw: Any) -> Any:
        raise AssertionError("no AWS call for a bad argument")

    monkeypatch.setattr(Session, "client", no_client)
    done = run_cli(capsys, [*BASE, "prod/report", "--wait", *arguments])
    assert done.code == 2 and says in done.err and "Traceback" not in done.err, done.err


def test_the_deadline_covers_the_wait(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.delenv(watchdog.ENV, raising=False)
    fake = Ecs(GROUP_TAG, stops_after=1)
    monkeypatch.setattr(Session, "client", lambda self, name, **kw: fake)
    monkeypatch.setattr(progress.time, "sleep", lambda seconds: None)
    armed: list[tuple[str, float]] = []
    real_arm = watchdog.arm

    def arm(command: str, seconds: float) -> None:
        armed.append((command, seconds))
        real_arm(command, seconds)

    monkeypatch.setattr(watchdog, "arm", arm)
    done = run_cli(capsys, [*BASE, "prod/report", "--wait", "--timeout", "20000"])
    assert done.code == 3, done.err  # the essential container's code (test_run_task.Ecs)
    assert armed[0] == ("nixecs run", 20300.0) and watchdog.BY_COMMAND.get("run") is None


def _registered(url: str) -> None:
    """A cluster task as `deploy` leaves it, and one container instance for moto to place on."""
    ecs = moto_client(url, "ecs")
    ecs.create_cluster(clusterName="prod")
    ecs.register_task_definition(
        family=naming.task_family("prod", "report"),
        containerDefinitions=[{"name": "report", "image": "busybox:1.36", "memory": 64}],
        tags=[{"key": t["key"], "value": t["value"]} for t in GROUP_TAG],
    )
    ec2 = moto_client(url, "ec2")
    image = ec2.describe_images()["Images"][0]["ImageId"]
    (instance,) = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1)["Instances"]
    document = json.dumps({"instanceId": instance["InstanceId"], "region": "us-east-1"})
    ecs.register_container_instance(cluster="prod", instanceIdentityDocument=document)


def nixecs(endpoint: str, *args: str, deadline: str = "3", poll: str = "0.01") -> Any:
    env = {
        **os.environ,
        "PYTHONPATH": str(SRC),
        watchdog.ENV: deadline,
        "NIXECS_POLL_INTERVAL": poll,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }
    argv = [sys.executable, "-m", "nixecs", "--endpoint-url", endpoint, "--region", "us-east-1"]
    return subprocess.Popen(
        [*argv, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL,
    )  # fmt: skip


@pytest.mark.moto
def test_a_stalled_peer_meets_the_deadline(moto: MotoServer) -> None:
    plan = FaultPlan(rate=1.0, kinds=("stall",), max_consecutive=10**6)
    with FaultProxy(moto.url, plan) as proxy:
        process = nixecs(proxy.url, "run", "prod/report", "--wait")
        _, err = process.communicate(timeout=60)
    assert process.returncode == 1 and "out of time" in err and "Traceback" not in err, err


@pytest.mark.moto
@pytest.mark.parametrize("kind", ["throttle", "lost"])
def test_faults_start_one_task_with_one_token(
    moto: MotoServer, kind: str, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.01)
    _registered(moto.url)
    tokens: list[str] = []
    real_client = Session.client

    def client(self: Session, name: str) -> Any:
        made = real_client(self, name)
        if name == "ecs" and not getattr(made, "_recorded", False):
            made._recorded = True
            made.meta.events.register(
                "before-send.ecs.RunTask",
                lambda request, **_: tokens.append(json.loads(request.body)["clientToken"]),
            )
        return made

    monkeypatch.setattr(Session, "client", client)
    plan = FaultPlan(rate=1.0, kinds=(kind,), max_consecutive=2)
    with FaultProxy(moto.url, plan) as proxy:
        done = run_cli(capsys, ["--endpoint-url", proxy.url, "--region", "us-east-1", "run", "prod/report"])  # fmt: skip
    assert done.code == 0, done.err
    # every attempt of the one RunTask call carried one token (ECS_Idempotency: a retry
    # of a lost answer is answered with the first task, not a second one)
    assert len(tokens) >= 2 and len(set(tokens)) == 1, tokens
    started = moto_client(moto.url, "ecs").list_tasks(cluster="prod")["taskArns"]
    # moto does not model the token: after lost answers it started one task per attempt
    # that reached it; throttled attempts never reach it
    assert len(started) == (1 if kind == "throttle" else len(tokens)), started


@pytest.mark.moto
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_killed_while_waiting_leaves_the_task_to_ecs(
    moto: MotoServer, signum: int, code: int
) -> None:
    _registered(moto.url)
    process = nixecs(moto.url, "run", "prod/report", "--wait", deadline="120", poll="30")
    assert process.stderr is not None
    first = process.stderr.readline()  # "prod/report: started ARN on …"
    assert "started" in first, first
    time.sleep(0.5)  # in the wait's sleep
    process.send_signal(signum)
    _, rest = process.communicate(timeout=60)
    assert process.returncode == code, first + rest
    arn = first.split("started ", 1)[1].split(" ", 1)[0]
    assert f"not waiting any more; {arn} keeps running" in rest and "Traceback" not in rest
    (task,) = moto_client(moto.url, "ecs").describe_tasks(cluster="prod", tasks=[arn])["tasks"]
    assert task["desiredStatus"] == "RUNNING"  # not stopped by nixecs
