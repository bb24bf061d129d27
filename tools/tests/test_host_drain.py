"""`nixecs drain`: lifecycle state from the IMDS emulator, ECS and Auto Scaling from moto server,
CompleteLifecycleAction (which moto lacks) through botocore's Stubber with exact parameters."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber

from conftest import MotoServer
from host_fixtures import sample_settings
from nixecs.cli import run
from nixecs.host.drain import Drainer, cluster_from_settings
from nixecs.host.imds import ImdsClient
from nixecs.naming import DRAIN_HOOK_NAME, ECS_MANAGED_DRAIN_HOOK_NAME
from nixecs.settings import DrainSpec, HostSettings, Issue, parse_drain
from nixecs.testing.imds import ImdsEmulator

pytestmark = pytest.mark.moto

CLUSTER = "prod"
GROUP = "nixecs-prod-web"


class Fleet:
    """A moto world: an Auto Scaling group of two instances, both ECS container instances."""

    def __init__(self, moto: MotoServer) -> None:
        def client(service: str) -> Any:
            return boto3.client(service, endpoint_url=moto.url, region_name="us-east-1")  # type: ignore[call-overload]

        self.ecs = client("ecs")
        self.autoscaling = client("autoscaling")
        ec2 = client("ec2")
        image = "ami-0123456789abcdef0"  # moto does not check that it exists
        subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
        ec2.create_launch_template(
            LaunchTemplateName="nixecs-lt",
            LaunchTemplateData={"ImageId": image, "InstanceType": "t3.micro"},
        )
        self.autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=GROUP,
            LaunchTemplate={"LaunchTemplateName": "nixecs-lt"},
            MinSize=2,
            MaxSize=2,
            DesiredCapacity=2,
            VPCZoneIdentifier=subnet,
        )
        instances = self.autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])[
            "AutoScalingGroups"
        ][0]["Instances"]
        self.instance_id, self.neighbour_id = sorted(i["InstanceId"] for i in instances)
        self.ecs.create_cluster(clusterName=CLUSTER)
        self.arns = {}
        for instance_id in (self.instance_id, self.neighbour_id):
            document = json.dumps({"instanceId": instance_id, "region": "us-east-1"})
            registered = self.ecs.register_container_instance(
                cluster=CLUSTER, instanceIdentityDocument=document
            )
            self.arns[instance_id] = registered["containerInstance"]["containerInstanceArn"]
        self.ecs.register_task_definition(
            family="bananas",
            containerDefinitions=[{"name": "app", "image": "bananas:1.0", "memory": 128}],
        )

    def start_task(self, instance_id: str) -> str:
        started = self.ecs.start_task(
            cluster=CLUSTER, taskDefinition="bananas", containerInstances=[self.arns[instance_id]]
        )
        return str(started["tasks"][0]["taskArn"])

    def status(self, instance_id: str) -> tuple[str, int]:
        described = self.ecs.describe_container_instances(
            cluster=CLUSTER, containerInstances=[self.arns[instance_id]]
        )["containerInstances"][0]
        return described["status"], described["runningTasksCount"]


def completion(instance_id: str, hook: str = DRAIN_HOOK_NAME) -> dict[str, str]:
    """CompleteLifecycleAction's parameters for `hook` and this instance."""
    return {
        "LifecycleHookName": hook,
        "AutoScalingGroupName": GROUP,
        "LifecycleActionResult": "CONTINUE",
        "InstanceId": instance_id,
    }


def stubbed_lifecycle(instance_id: str) -> tuple[Any, Stubber]:
    client = boto3.client("autoscaling", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_response("complete_lifecycle_action", {}, completion(instance_id))
    stubber.activate()
    return client, stubber


def drainer(
    fleet: Fleet, imds: ImdsEmulator, lifecycle: Any, lines: list[str], timeout: float = 10
) -> Drainer:
    return Drainer(
        ImdsClient(imds.url, attempts=2, backoff=0.01),
        fleet.ecs,
        fleet.autoscaling,
        cluster=CLUSTER,
        timeout=timeout,
        poll=0.05,
        log=lines.append,
        lifecycle=lifecycle,
    )


def later(seconds: float, action: Any) -> threading.Timer:
    timer = threading.Timer(seconds, action)
    timer.start()
    return timer


def test_drains_on_termination_then_completes_the_lifecycle_action(moto: MotoServer) -> None:
    fleet = Fleet(moto)
    task = fleet.start_task(fleet.instance_id)
    fleet.start_task(fleet.neighbour_id)
    assert fleet.status(fleet.instance_id) == ("ACTIVE", 1)
    lifecycle, stubber = stubbed_lifecycle(fleet.instance_id)
    lines: list[str] = []
    with ImdsEmulator(instance_id=fleet.instance_id) as imds:
        # Scale-in arrives a little later; the task stops (ECS moves it away) later still.
        timers = [
            later(0.3, lambda: imds.set_lifecycle_state("Terminated")),
            later(0.8, lambda: fleet.ecs.stop_task(cluster=CLUSTER, task=task)),
        ]
        outcome = drainer(fleet, imds, lifecycle, lines).run()
        for timer in timers:
            timer.join()
    assert outcome == "drained"
    stubber.assert_no_pending_responses()  # CompleteLifecycleAction called, exactly as expected
    assert fleet.status(fleet.instance_id) == ("DRAINING", 0)
    assert fleet.status(fleet.neighbour_id) == ("ACTIVE", 1)  # the right instance, not "all"
    assert "target lifecycle state: InService" in lines
    assert "target lifecycle state: Terminated" in lines
    assert any(line.startswith("waiting for 1 task(s) to stop") for line in lines)
    # The order is the contract: drain before completing (which lets the instance die).
    draining = next(i for i, line in enumerate(lines) if "to DRAINING" in line)
    completed = next(
        i for i, line in enumerate(lines) if line.startswith("completed lifecycle action")
    )
    assert draining < completed


def test_timeout_completes_both_hooks_so_the_timeout_bounds_termination(moto: MotoServer) -> None:
    """Issue 17 item 5: ECS's managed-draining hook would hold the instance for the task that
    did not leave; after the drain timeout both hooks are completed, ours first."""
    fleet = Fleet(moto)
    fleet.start_task(fleet.instance_id)
    lifecycle, stubber = stubbed_lifecycle(fleet.instance_id)
    stubber.add_response(
        "complete_lifecycle_action",
        {},
        completion(fleet.instance_id, ECS_MANAGED_DRAIN_HOOK_NAME),
    )
    lines: list[str] = []
    with ImdsEmulator(instance_id=fleet.instance_id, lifecycle_state="Terminated") as imds:
        outcome = drainer(fleet, imds, lifecycle, lines, timeout=0.3).run()
    assert outcome == "timed out with 1 task(s) running"
    stubber.assert_no_pending_responses()
    assert fleet.status(fleet.instance_id) == ("DRAINING", 1)
    assert any("timed out with 1 task(s) still running" in line for line in lines)
    assert [line.split(" of ")[0] for line in lines if line.startswith("completed")] == [
        f"completed lifecycle action {DRAIN_HOOK_NAME}",
        f"completed lifecycle action {ECS_MANAGED_DRAIN_HOOK_NAME}",
    ]


def test_timeout_with_ecs_hook_already_done_is_fine(moto: MotoServer) -> None:
    """ECS may have completed (or never installed) its hook: Auto Scaling's refusal is success."""
    fleet = Fleet(moto)
    fleet.start_task(fleet.instance_id)
    lifecycle, stubber = stubbed_lifecycle(fleet.instance_id)
    stubber.add_client_error(
        "complete_lifecycle_action",
        service_error_code="ValidationError",
        service_message=f"No active Lifecycle Action found with instance ID {fleet.instance_id}",
        http_status_code=400,
        expected_params=completion(fleet.instance_id, ECS_MANAGED_DRAIN_HOOK_NAME),
    )
    lines: list[str] = []
    with ImdsEmulator(instance_id=fleet.instance_id, lifecycle_state="Terminated") as imds:
        outcome = drainer(fleet, imds, lifecycle, lines, timeout=0.2).run()
    assert outcome.startswith("timed out")
    stubber.assert_no_pending_responses()
    assert any(
        line.startswith(f"lifecycle action {ECS_MANAGED_DRAIN_HOOK_NAME}")
        and "no longer active" in line
        for line in lines
    )


def test_unregistered_instance_completes_at_once(moto: MotoServer) -> None:
    fleet = Fleet(moto)
    fleet.ecs.deregister_container_instance(
        cluster=CLUSTER, containerInstance=fleet.arns[fleet.instance_id]
    )
    lifecycle, stubber = stubbed_lifecycle(fleet.instance_id)
    lines: list[str] = []
    with ImdsEmulator(instance_id=fleet.instance_id, lifecycle_state="Terminated") as imds:
        outcome = drainer(fleet, imds, lifecycle, lines).run()
    assert outcome == "not registered with ECS: nothing to drain"
    stubber.assert_no_pending_responses()
    assert fleet.status(fleet.neighbour_id)[0] == "ACTIVE"


def test_nothing_happens_while_in_service(moto: MotoServer) -> None:
    fleet = Fleet(moto)
    lifecycle, stubber = stubbed_lifecycle(fleet.instance_id)
    lines: list[str] = []
    with ImdsEmulator(instance_id=fleet.instance_id) as imds:
        worker = drainer(fleet, imds, lifecycle, lines)
        thread = threading.Thread(target=worker.wait_for_termination, daemon=True)
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive()  # still watching
        assert imds.count("GET", "/latest/meta-data/autoscaling/target-lifecycle-state") >= 3
        imds.set_lifecycle_state("Terminated")
        thread.join(timeout=5)
        assert not thread.is_alive()
    assert fleet.status(fleet.instance_id)[0] == "ACTIVE"  # watching drains nothing
    with pytest.raises(AssertionError):
        stubber.assert_no_pending_responses()  # and completes nothing


def test_command_line_reports_a_failed_completion_in_one_line(
    moto: MotoServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end through `nixecs drain` against moto, which cannot complete lifecycle
    actions: everything up to that call happens, and the failure is one clean line."""
    fleet = Fleet(moto)
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(sample_settings().to_json()))
    with ImdsEmulator(instance_id=fleet.instance_id, lifecycle_state="Terminated") as imds:
        code = run(
            [
                "--endpoint-url",
                moto.url,
                "--region",
                "us-east-1",
                "drain",
                "--imds",
                imds.url,
                "--poll",
                "0.05",
                "--timeout",
                "5s",
                "--settings",
                str(settings),
            ]
        )
    err = capsys.readouterr().err
    assert code == 1, err
    assert fleet.status(fleet.instance_id)[0] == "DRAINING"
    errors = [line for line in err.splitlines() if line.startswith("nixecs: error:")]
    assert len(errors) == 1 and "CompleteLifecycleAction" in errors[0], err
    assert "Traceback" not in err


def test_cluster_and_timeout_from_settings(tmp_path: Path) -> None:
    settings = tmp_path / "settings.json"
    assert cluster_from_settings(str(settings)) == (None, None)
    settings.write_text(json.dumps(sample_settings(cluster="blue").to_json()))
    assert cluster_from_settings(str(settings)) == ("blue", "15m")


def test_bad_timeout_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(["drain", "--timeout", "soon"]) == 2
    assert "--timeout" in capsys.readouterr().err


def test_cluster_from_the_local_agent_when_no_settings() -> None:
    import http.server

    from nixecs.host.drain import DrainFailed, cluster_from_agent

    answers = [b'{"Cluster": "from-agent", "ContainerInstanceArn": "arn:x"}', b"{}"]

    class Agent(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = answers.pop(0)
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            return

    server = http.server.HTTPServer(("127.0.0.1", 0), Agent)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/v1/metadata"
    try:
        assert cluster_from_agent(url) == "from-agent"
        with pytest.raises(DrainFailed, match="reports no cluster"):
            cluster_from_agent(url)
    finally:
        server.shutdown()
        server.server_close()


def test_a_group_without_drain_has_nothing_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The unit runs on every userdata host; without `drain:` in the settings (and no
    --timeout) it exits 0 at once, asking neither IMDS nor AWS anything."""
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(HostSettings(cluster="prod", group="web").to_json()))
    with ImdsEmulator(lifecycle_state="Terminated") as imds:
        code = run(["drain", "--imds", imds.url, "--settings", str(settings)])
        asked = list(imds.requests)
    assert code == 0
    assert asked == []
    assert "nothing to do" in capsys.readouterr().err


def test_drain_timeouts_beyond_the_hook_heartbeat_are_refused(tmp_path: Path) -> None:
    issues: list[Issue] = []
    assert parse_drain({"timeout": "3h"}, ("drain",), issues) is None
    assert [i.code for i in issues] == ["E107"] and "at most 115m" in issues[0].message
    assert parse_drain({"timeout": "115m"}, ("drain",), []) == DrainSpec("115m")
    assert run(["drain", "--timeout", "3h", "--settings", str(tmp_path / "none.json")]) == 2


class LifecycleActions:
    """Auto Scaling's CompleteLifecycleAction over the query protocol, on loopback.

    A stand-in because moto lacks the call (DESIGN §8); it behaves as the real service is
    reported to: an action completes once, and completing it again is refused with
    ValidationError "No active Lifecycle Action found with instance ID …" (see
    Drainer._complete for the sources)."""

    def __init__(self, waiting: set[str]) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        from urllib.parse import parse_qs

        self.waiting = set(waiting)
        self.calls: list[str] = []
        actions = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                form = {k: v[0] for k, v in parse_qs(body).items()}
                assert form["Action"] == "CompleteLifecycleAction", form
                instance = form["InstanceId"]
                actions.calls.append(instance)
                ns = "http://autoscaling.amazonaws.com/doc/2011-01-01/"
                if instance in actions.waiting:
                    actions.waiting.discard(instance)
                    status, payload = (
                        200,
                        (
                            f'<CompleteLifecycleActionResponse xmlns="{ns}"><CompleteLifecycleActionResult/>'
                            "<ResponseMetadata><RequestId>1</RequestId></ResponseMetadata>"
                            "</CompleteLifecycleActionResponse>"
                        ),
                    )
                else:
                    status, payload = (
                        400,
                        (
                            f'<ErrorResponse xmlns="{ns}"><Error><Type>Sender</Type>'
                            "<Code>ValidationError</Code><Message>No active Lifecycle Action found "
                            f"with instance ID {instance}</Message></Error><RequestId>2</RequestId>"
                            "</ErrorResponse>"
                        ),
                    )
                data = payload.encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LifecycleActions:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_lost_completion_answer_is_success_not_a_loop(
    moto: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first CompleteLifecycleAction acts but its answer is lost (fault proxy: `lost`);
    botocore's retry is refused with "No active Lifecycle Action found": that is success."""
    from botocore.retries import standard

    from nixecs.aws.session import Session
    from nixecs.testing.faultproxy import FaultPlan, FaultProxy

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.01)
    fleet = Fleet(moto)
    lines: list[str] = []
    plan = FaultPlan(rate=1.0, kinds=("lost",), max_consecutive=1)
    with (
        LifecycleActions({fleet.instance_id}) as actions,
        FaultProxy(actions.url, plan) as proxy,
        ImdsEmulator(instance_id=fleet.instance_id, lifecycle_state="Terminated") as imds,
    ):
        lifecycle = Session(region="us-east-1", endpoint_url=proxy.url).client("autoscaling")
        outcome = drainer(fleet, imds, lifecycle, lines).run()
    assert outcome == "drained"
    assert proxy.stats.faults["lost"] == 1
    assert actions.calls == [fleet.instance_id, fleet.instance_id]  # acted once, refused once
    assert not actions.waiting
    assert any("earlier attempt whose answer was lost completed it" in line for line in lines)


def test_other_completion_errors_still_fail(moto: MotoServer) -> None:
    fleet = Fleet(moto)
    client = boto3.client("autoscaling", region_name="us-east-1")
    stubber = Stubber(client)
    stubber.add_client_error(
        "complete_lifecycle_action", "ValidationError", "No Auto Scaling group named x"
    )
    stubber.activate()
    with (
        ImdsEmulator(instance_id=fleet.instance_id, lifecycle_state="Terminated") as imds,
        pytest.raises(ClientError),
    ):
        drainer(fleet, imds, client, []).run()
