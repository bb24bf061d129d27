"""`nixecs local deploy|env|stop`: a team's own fleet on an emulator on loopback, with
stand-ins for what it references, and the other commands pointed at it until `local stop`.

Hostile cases, each with its outcome:

| case                                             | outcome                                      |
|--------------------------------------------------|----------------------------------------------|
| invalid fleet                                    | exit 2 located in the user's file; no emulator started |
| --endpoint-url given to local deploy             | exit 2: local chooses its own endpoint       |
| state directory writable by others / a symlink   | refused (exit 1), nothing started            |
| state file naming a process that is not ours     | `stop` leaves that process alone             |
| state file truncated / not JSON                  | treated as no emulator                       |
| emulator killed behind our back                  | `local env` says none runs (exit 1)          |
| moto not installed                               | exit 1 naming `pip install 'nixecs[local]'`  |
| second deploy of the same fleet                  | stand-ins reused, "no changes"               |
| two environments of one file, a second fleet     | each its own stand-ins and copy; no overlap  |
| a shell `local env` pointed elsewhere            | not taken for --endpoint-url/--region; said  |
| an id inside a longer token                      | not replaced in the local copy               |
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import EXAMPLES, REPO, require

pytestmark = pytest.mark.moto


def _moto_installed() -> None:
    try:
        import moto.server  # noqa: F401
    except ImportError:
        require(False, "moto[server] is not installed")


def nixecs(
    state: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("AWS_") and k != "NIXECS_ENDPOINT_URL"
    }
    return subprocess.run(
        [sys.executable, "-m", "nixecs", *args],
        env={**base, "NIXECS_LOCAL_DIR": str(state), **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "local"
    yield directory
    nixecs(directory, "local", "stop")  # never leave a server behind


def _env_of(state: Path) -> dict[str, str]:
    done = nixecs(state, "--output", "json", "local", "env")
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


def test_the_loop_deploy_status_again_destroy_stop(state: Path, tmp_path: Path) -> None:
    _moto_installed()
    fleet = tmp_path / "fleet.yml"
    fleet.write_text((EXAMPLES / "fleet.yml").read_text())

    first = nixecs(state, "local", "deploy", str(fleet))
    assert first.returncode == 0, first.stderr
    # Everything the example references and does not create was stood in for ...
    for what in (
        "subnet",
        "security group",
        "certificate",
        "AMI",
        "SSM parameter",
        "ECR image",
        "service-linked role AWSServiceRoleForECS",
    ):
        assert f"stand-in: {what}" in first.stderr
    assert "the emulator cannot check: IAM policies are not evaluated" in first.stderr
    assert "CloudWatch records no metrics (nothing runs): `scaling replay` reads" in first.stderr
    assert "nixecs-prod: created (CREATE_COMPLETE)" in first.stdout + first.stderr

    env = _env_of(state)
    assert env["NIXECS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    assert env["AWS_REGION"] == "us-east-1"
    assert env["AWS_ACCESS_KEY_ID"] == "testing"  # never the user's own credentials

    status = nixecs(state, "--output", "json", "status", env=env)
    assert status.returncode == 0, status.stderr
    clusters = json.loads(status.stdout)["clusters"]
    assert [c["name"] for c in clusters] == ["prod"]
    assert {s["name"] for s in clusters[0]["services"]} >= {"bananas", "reports"}
    # The scaling the emulator's CloudFormation skips was made through its own APIs, so
    # status shows the template's bounds and policies (and deploy finds nothing missing).
    scaling = {s["name"]: s["scaling"] for s in clusters[0]["services"]}
    assert (scaling["reports"]["min"], scaling["reports"]["max"]) == (1, 12)
    assert sorted(p["name"] for p in scaling["reports"]["policies"]) == [
        "nixecs-prod-reports-cpu-high",
        "nixecs-prod-reports-cpu-low",
    ]
    assert "made through Application Auto Scaling and CloudWatch" in first.stderr

    _roll_in_the_emulator(state, env)

    again = nixecs(state, "local", "deploy", str(fleet))
    assert again.returncode == 0, again.stderr
    assert "stand-in:" not in again.stderr  # reused, not made twice
    assert "nixecs-prod: no changes" in again.stdout + again.stderr

    # An edit deploys as an update, as against AWS.
    fleet.write_text(fleet.read_text().replace("log_retention_days: 30", "log_retention_days: 60"))
    edited = nixecs(state, "local", "deploy", str(fleet))
    assert edited.returncode == 0, edited.stderr
    assert "nixecs-prod: updated" in edited.stdout + edited.stderr

    destroyed = nixecs(state, "destroy", "prod", "--yes", env=env)
    assert destroyed.returncode == 0, destroyed.stderr

    stopped = nixecs(state, "local", "stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    gone = nixecs(state, "local", "env")
    assert gone.returncode == 1 and "no emulator is running" in gone.stderr


def _roll_in_the_emulator(state: Path, env: dict[str, str]) -> None:
    """`roll` against the emulator's instance refresh stand-in (local/refresh.py): it
    succeeds step by step; an alarm of --rollback-alarm in ALARM makes it roll back (exit 1);
    a group that nixecs did not make is refused before any refresh (exit 2)."""
    import boto3

    done = nixecs(state, "roll", "prod/web", env={**env, "NIXECS_POLL_INTERVAL": "0.01"})
    assert done.returncode == 0, done.stderr
    assert re.fullmatch(
        r"nixecs-prod-web \(us-east-1\): instance refresh \S+ Successful \(100%\)\n", done.stdout
    )
    assert "(InProgress, 1 to update)" in done.stderr  # the web group's 2 instances, one a step

    def client(service: str) -> object:
        return boto3.client(
            service,
            endpoint_url=env["NIXECS_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    cloudwatch: object = client("cloudwatch")
    cloudwatch.put_metric_alarm(  # type: ignore[attr-defined]
        AlarmName="web-5xx", MetricName="HTTPCode_Target_5XX_Count", Namespace="AWS/ApplicationELB",
        Statistic="Sum", Period=60, EvaluationPeriods=1, Threshold=1,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )  # fmt: skip
    cloudwatch.set_alarm_state(AlarmName="web-5xx", StateValue="ALARM", StateReason="test")  # type: ignore[attr-defined]
    failed = nixecs(
        state, "roll", "prod/web", "--rollback-alarm", "web-5xx",
        env={**env, "NIXECS_POLL_INTERVAL": "0.01"},
    )  # fmt: skip
    assert failed.returncode == 1, failed.stderr
    assert "RollbackSuccessful" in failed.stdout and "alarm web-5xx is in ALARM" in failed.stdout

    autoscaling: object = client("autoscaling")
    autoscaling.create_auto_scaling_group(  # type: ignore[attr-defined]
        AutoScalingGroupName="nixecs-prod-byhand", MinSize=0, MaxSize=1,
        LaunchTemplate={"LaunchTemplateName": "nixecs-prod-web", "Version": "1"},
        AvailabilityZones=["us-east-1a"],
    )  # fmt: skip
    refused = nixecs(state, "roll", "prod/byhand", env=env)
    assert refused.returncode == 2, refused.stderr
    assert (
        "refusing: roll prod/byhand: Auto Scaling group nixecs-prod-byhand has no nixecs tags"
        in refused.stderr
    )


def test_an_invalid_fleet_is_located_in_the_users_file_and_starts_nothing(
    state: Path, tmp_path: Path
) -> None:
    fleet = tmp_path / "fleet.yml"
    fleet.write_text(
        (EXAMPLES / "fleet.yml").read_text().replace("log_level: info", "log_level: loud")
    )
    done = nixecs(state, "local", "deploy", str(fleet))
    assert done.returncode == 2
    assert f"{fleet}:" in done.stderr and "error[E107]" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (state / "emulator.json").exists()


def test_an_endpoint_url_is_refused(state: Path) -> None:
    done = nixecs(
        state, "local", "deploy", str(EXAMPLES / "fleet.yml"), "--endpoint-url", "http://x"
    )
    assert done.returncode == 2 and "drop --endpoint-url" in done.stderr


@pytest.mark.parametrize("hostile", ["group-writable", "symlink"])
def test_a_state_directory_others_control_is_refused(tmp_path: Path, hostile: str) -> None:
    _moto_installed()
    target = tmp_path / "real"
    target.mkdir(mode=0o700)
    if hostile == "group-writable":
        state = target
        state.chmod(0o770)
    else:
        state = tmp_path / "link"
        state.symlink_to(target)
    done = nixecs(state, "local", "deploy", str(EXAMPLES / "fleet.yml"))
    assert done.returncode == 1
    assert "not using it" in done.stderr
    assert not (target / "emulator.json").exists()


@pytest.mark.parametrize("content", ["", "{", '{"url": "http://127.0.0.1:1"}', "null"])
def test_a_broken_or_foreign_state_file_kills_nothing(tmp_path: Path, content: str) -> None:
    state = tmp_path / "local"
    state.mkdir(mode=0o700)
    # A live process that is not an emulator, named in the state file.
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        foreign = {"url": "http://127.0.0.1:9", "pid": sleeper.pid, "port": 9, "started": 0}
        (state / "emulator.json").write_text(json.dumps(foreign) if content == "null" else content)
        done = nixecs(state, "local", "stop")
        assert done.returncode == 0 and "no emulator was running" in done.stdout
        assert sleeper.poll() is None  # left alone
        assert not (state / "emulator.json").exists()  # the stale record is forgotten
    finally:
        sleeper.kill()
        sleeper.wait()


def test_an_emulator_killed_behind_our_back_is_noticed(state: Path) -> None:
    _moto_installed()
    from nixecs.local import emulator

    os.environ["NIXECS_LOCAL_DIR"] = str(state)
    try:
        running, started = emulator.start()
        assert started
        os.killpg(running.pid, 9)
        os.waitpid(running.pid, 0)
        assert emulator.current() is None
    finally:
        del os.environ["NIXECS_LOCAL_DIR"]
    done = nixecs(state, "local", "env")
    assert done.returncode == 1 and "no emulator is running" in done.stderr


def test_without_moto_the_message_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from nixecs.diagnostics import OperationalFailure
    from nixecs.local import emulator

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(OperationalFailure, match=r"pip install 'nixecs\[local\]'"):
        emulator.require_moto()


def test_the_local_copy_replaces_whole_tokens_at_their_places(tmp_path: Path) -> None:
    from nixecs.fleet import load_fleet
    from nixecs.local.standins import StandIns, local_copy

    fleet_file = tmp_path / "fleet.yml"
    fleet_file.write_text((EXAMPLES / "fleet.yml").read_text())
    model = load_fleet(str(fleet_file))
    web = model.clusters["prod"].groups["web"]
    made = StandIns(
        ids={
            "subnet-0a1b2c3d": "subnet-0fff0fff0fff0fff0",
            "ami-0123456789abcdef0": "ami-0fff0fff0fff0fff0",
        },
        edits={(*web.path, "capacity", "min"): "0"},
    )
    text = local_copy(model, made)
    assert "subnet-0a1b2c3d" not in text and "subnet-0fff0fff0fff0fff0" in text
    assert "ami-0123456789abcdef0" not in text
    copy = tmp_path / "copy.yml"
    copy.write_text(text)
    again = load_fleet(str(copy))
    assert again.clusters["prod"].groups["web"].capacity.min == 0
    assert again.clusters["prod"].groups["web"].ami == "ami-0fff0fff0fff0fff0"
    # An id inside a longer token is another id: left alone.
    longer = StandIns(ids={"subnet-0a1b": "subnet-0eee0eee0eee0eee0"})
    assert "subnet-0eee0eee0eee0eee0" not in local_copy(model, longer)


def test_groups_moto_cannot_launch_start_empty_in_the_copy(tmp_path: Path) -> None:
    from nixecs.fleet import load_fleet
    from nixecs.local.standins import StandIns, capacity_edits, local_copy

    text = (EXAMPLES / "fleet.yml").read_text()
    assert "root_volume: {size_gib: 30, type: gp3}" in text
    fleet_file = tmp_path / "fleet.yml"
    fleet_file.write_text(text)
    assert capacity_edits(load_fleet(str(fleet_file))) == {}  # sized: moto launches them
    fleet_file.write_text(
        text.replace("root_volume: {size_gib: 30, type: gp3}", "root_volume: {type: gp3}")
    )
    model = load_fleet(str(fleet_file))
    edits = capacity_edits(model)
    copy = tmp_path / "copy.yml"
    copy.write_text(local_copy(model, StandIns(edits=edits)))
    again = load_fleet(str(copy))
    assert [g.capacity.min for g in again.clusters["prod"].groups.values()] == [0, 0]
    assert [g.capacity.max for g in again.clusters["prod"].groups.values()] == [
        g.capacity.max for g in model.clusters["prod"].groups.values()
    ]


def test_environments_and_fleets_share_one_emulator(state: Path, tmp_path: Path) -> None:
    """`local deploy --env E` for each environment of one file, in a shell `local env` has
    pointed at the emulator, and a second fleet in the same region: each keeps its own
    stand-ins and copy (a redeploy is "no changes"), stand-in subnets never overlap, and the
    shell's endpoint and region from `local env` are not taken for flags."""
    _moto_installed()
    fleet = tmp_path / "fleet.yml"
    fleet.write_text((EXAMPLES / "environments.yml").read_text())
    staging = nixecs(state, "--env", "staging", "local", "deploy", str(fleet))
    assert staging.returncode == 0, staging.stderr
    assert "nixecs-staging-shop: created" in staging.stdout + staging.stderr
    shell = _env_of(state)
    assert shell["AWS_REGION"] == "eu-west-1"
    # In that shell: another environment, in another region (us-east-1).
    production = nixecs(
        state, "--output", "json", "local", "deploy", str(fleet), "--env", "production", env=shell
    )
    assert production.returncode == 0, production.stderr
    answer = json.loads(production.stdout)  # deploy's, with what local deploy adds
    assert [(c["stack"], c["outcome"]) for c in answer["clusters"]] == [
        ("nixecs-prod-shop", "created")
    ]
    assert answer["local"]["emulator"] == shell["NIXECS_ENDPOINT_URL"]
    assert any(s.startswith("subnet ") for s in answer["local"]["stand_ins"])
    assert answer["local"]["cannot_check"][0].startswith("IAM policies are not evaluated")
    assert "this shell's AWS_REGION=eu-west-1 is not this fleet's" in production.stderr
    assert _env_of(state)["AWS_REGION"] == "us-east-1"
    again = nixecs(state, "--env", "staging", "local", "deploy", str(fleet), env=shell)
    assert again.returncode == 0, again.stderr
    assert "stand-in:" not in again.stderr  # staging's, kept beside production's
    assert "nixecs-staging-shop: no changes" in again.stdout + again.stderr
    assert "this shell's" not in again.stderr
    # A second fleet in staging's region: subnets of its own, beside staging's.
    other = tmp_path / "other.yml"
    other.write_text(
        fleet.read_text().replace(
            "    region: eu-west-1\n", "    region: eu-west-1\n    name_prefix: other\n"
        )
    )
    second = nixecs(state, "--env", "staging", "local", "deploy", str(other))
    assert second.returncode == 0, second.stderr
    assert re.search(r"stand-in: subnet subnet-\S+ for subnet-2c3d4e5f", second.stderr)
    status = nixecs(state, "--output", "json", "status", env=shell)
    assert status.returncode == 0, status.stderr
    names = [c["name"] for c in json.loads(status.stdout)["clusters"]]
    assert sorted(names) == ["other-shop", "staging-shop"]
    # --endpoint-url written on the line is still refused.
    refused = nixecs(state, "local", "deploy", str(fleet), "--endpoint-url", "http://x", env=shell)
    assert refused.returncode == 2 and "drop --endpoint-url" in refused.stderr


def test_the_template_fleet_deploys_locally_with_its_host_ami(state: Path, tmp_path: Path) -> None:
    """`ami: {host: web}` locally: a stand-in AMI tagged as `ami publish --host web` tags
    one, which the deploy then resolves like any other; status names the host."""
    _moto_installed()
    team = tmp_path / "infra"
    shutil.copytree(REPO / "templates" / "fleet", team)
    first = nixecs(state, "local", "deploy", str(team / "fleet.yml"))
    assert first.returncode == 0, first.stderr
    assert re.search(r"stand-in: AMI ami-[0-9a-f]+ for host web", first.stderr), first.stderr
    status = nixecs(state, "--output", "json", "status", env=_env_of(state))
    assert status.returncode == 0, status.stderr
    [group] = json.loads(status.stdout)["clusters"][0]["groups"]
    assert group["host"] == "web" and group["ami"].startswith("ami-")
    again = nixecs(state, "local", "deploy", str(team / "fleet.yml"))
    assert again.returncode == 0, again.stderr
    assert "stand-in: AMI" not in again.stderr  # found by its tags, not made twice


def _emulator_clients(state: Path, *services: str) -> list[Any]:
    """An emulator started in this process (its state in `state`) and boto3 clients of it."""
    import boto3

    from nixecs.local import emulator

    os.environ["NIXECS_LOCAL_DIR"] = str(state)
    try:
        running, _ = emulator.start()
    finally:
        del os.environ["NIXECS_LOCAL_DIR"]
    keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    return [
        boto3.client(s, endpoint_url=running.url, region_name="us-east-1", **keys) for s in services
    ]


def test_the_emulators_import_snapshot_and_instance_refresh_stand_ins(state: Path) -> None:
    """What local/imports.py and local/refresh.py add to moto, as the API behaves: the same
    ClientToken is the same import task; a missing object is refused; a task steps to
    `completed` with a snapshot the emulator's EC2 holds; RegisterImage keeps its image tags;
    a second instance refresh while one is active is InstanceRefreshInProgress."""
    _moto_installed()
    from botocore.exceptions import ClientError

    ec2, s3, autoscaling = _emulator_clients(state, "ec2", "s3", "autoscaling")
    s3.create_bucket(Bucket="images")
    s3.put_object(Bucket="images", Key="disk.vhd", Body=b"x" * 4096)
    disk = {"Format": "VHD", "UserBucket": {"S3Bucket": "images", "S3Key": "disk.vhd"}}
    first = ec2.import_snapshot(ClientToken="t1", DiskContainer=disk)["ImportTaskId"]
    assert ec2.import_snapshot(ClientToken="t1", DiskContainer=disk)["ImportTaskId"] == first
    missing = {"Format": "VHD", "UserBucket": {"S3Bucket": "images", "S3Key": "nope"}}
    with pytest.raises(ClientError, match="InvalidParameterValue"):
        ec2.import_snapshot(ClientToken="t2", DiskContainer=missing)
    states = []
    for _ in range(2):  # each poll by id is a step
        [task] = ec2.describe_import_snapshot_tasks(ImportTaskIds=[first])["ImportSnapshotTasks"]
        detail = task["SnapshotTaskDetail"]
        states.append((detail["Status"], detail.get("StatusMessage"), detail.get("Progress")))
    assert states == [("active", "converting", "40"), ("completed", None, None)]
    snapshot = task["SnapshotTaskDetail"]["SnapshotId"]
    assert ec2.describe_snapshots(SnapshotIds=[snapshot])["Snapshots"][0]["VolumeSize"] == 1
    assert ec2.describe_volumes()["Volumes"] == []  # the import leaves no volume behind

    image = ec2.register_image(
        Name="tagged",
        RootDeviceName="/dev/xvda",
        TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "k", "Value": "v"}]}],
    )["ImageId"]
    [described] = ec2.describe_images(ImageIds=[image])["Images"]
    assert described["Tags"] == [{"Key": "k", "Value": "v"}]

    template = ec2.create_launch_template(
        LaunchTemplateName="lt", LaunchTemplateData={"ImageId": image}
    )["LaunchTemplate"]["LaunchTemplateId"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="g", MinSize=0, MaxSize=1,
        LaunchTemplate={"LaunchTemplateId": template, "Version": "1"},
        AvailabilityZones=["us-east-1a"],
    )  # fmt: skip
    autoscaling.start_instance_refresh(AutoScalingGroupName="g")
    with pytest.raises(ClientError, match="InstanceRefreshInProgress"):
        autoscaling.start_instance_refresh(AutoScalingGroupName="g")
    with pytest.raises(ClientError, match="ValidationError"):
        autoscaling.start_instance_refresh(AutoScalingGroupName="nope")


def test_a_fleet_with_tasks_and_secrets_manager_deploys_and_runs_locally(state: Path) -> None:
    """examples/workloads.yml reads a Secrets Manager secret (stood in, so its preflight
    passes) and declares a one-off task: `run` starts it (the task definition tagged as its
    template says, moto's CloudFormation leaving it untagged) and it stays PROVISIONING, as on
    AWS while no instance can take it (moto alone answers RunTask with HTTP 500)."""
    _moto_installed()
    fleet = str(EXAMPLES / "workloads.yml")
    done = nixecs(state, "local", "deploy", fleet)
    assert done.returncode == 0, done.stderr
    assert "stand-in: Secrets Manager secret prod/db" in done.stderr, done.stderr
    assert "tagged through ECS" in done.stderr, done.stderr
    env = _env_of(state)
    started = nixecs(state, "run", "jobs/migrate", env=env)
    assert started.returncode == 0, started.stderr
    assert re.search(
        r"jobs/migrate: started arn:aws:ecs:\S+:task/jobs/\S+ on nixecs-jobs-web",
        started.stdout + started.stderr,
    ), started
    waited = nixecs(state, "run", "jobs/migrate", "--wait", "--timeout", "2", env=env)
    assert waited.returncode == 1, waited
    assert "still PROVISIONING after 2s" in waited.stderr, waited.stderr
    status = nixecs(state, "--output", "json", "status", env=env)
    assert status.returncode == 0, status.stderr
    [cluster] = json.loads(status.stdout)["clusters"]
    [migrate] = [t for t in cluster["tasks"] if t["name"] == "migrate"]
    assert (migrate["running"], migrate["pending"]) == (0, 2), migrate
    # The scheduled task's schedule: made by the stack (local/schedules.py registers the type
    # moto's CloudFormation lacks), found by the name the stack gave it, as against AWS.
    scheduled = [t for t in cluster["tasks"] if t.get("schedule")]
    assert scheduled, cluster["tasks"]
    for task in scheduled:
        assert task["schedule"]["state"] == "ENABLED" and task["schedule"]["name"], task


def _schedule_template(name: str | None = None, expression: str = "rate(1 hour)") -> str:
    """A stack of one schedule in the shape cloudformation/cluster_tasks.py writes (a capacity
    provider strategy in CloudFormation's capitalised keys)."""
    properties: dict[str, object] = {
        "ScheduleExpression": expression,
        "ScheduleExpressionTimezone": "Europe/Paris",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Target": {
            "Arn": "arn:aws:ecs:us-east-1:123456789012:cluster/jobs",
            "RoleArn": "arn:aws:iam::123456789012:role/run",
            "EcsParameters": {
                "TaskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/t:1",
                "TaskCount": 1,
                "CapacityProviderStrategy": [{"CapacityProvider": "cp", "Base": 0, "Weight": 1}],
            },
        },
    }
    if name is not None:
        properties["Name"] = name
    return json.dumps(
        {
            "Resources": {
                "Nightly": {"Type": "AWS::Scheduler::Schedule", "Properties": properties}
            },
            "Outputs": {
                "Name": {"Value": {"Ref": "Nightly"}},
                "Arn": {"Value": {"Fn::GetAtt": ["Nightly", "Arn"]}},
            },
        }
    )


def test_the_emulators_cloudformation_keeps_schedules(state: Path) -> None:
    """local/schedules.py: a stack's AWS::Scheduler::Schedule lives in the emulator's
    Scheduler as on AWS, through the sequence a fleet's edits make — created (Ref is its
    name, GetAtt its ARN, the strategy in the API's keys), updated in place, replaced when
    renamed, gone with the stack — and a schedule deleted by hand does not fail the stack's
    delete. A long stack name still gives a name Scheduler takes (1-64 characters)."""
    _moto_installed()
    cfn, scheduler = _emulator_clients(state, "cloudformation", "scheduler")

    def names() -> list[str]:
        return sorted(s["Name"] for s in scheduler.list_schedules()["Schedules"])

    def outputs(stack: str) -> dict[str, str]:
        [described] = cfn.describe_stacks(StackName=stack)["Stacks"]
        return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}

    stack = "nixecs-" + "j" * 80  # CloudFormation's made-up name would pass 64 characters
    cfn.create_stack(StackName=stack, TemplateBody=_schedule_template())
    [made] = names()
    assert 1 <= len(made) <= 64 and made.startswith("nixecs-j"), made
    [resource] = cfn.describe_stack_resources(StackName=stack)["StackResources"]
    assert resource["PhysicalResourceId"] == made == outputs(stack)["Name"]
    got = scheduler.get_schedule(Name=made)
    assert outputs(stack)["Arn"] == got["Arn"]
    assert got["State"] == "ENABLED" and got["ScheduleExpressionTimezone"] == "Europe/Paris"
    assert got["Target"]["EcsParameters"]["CapacityProviderStrategy"] == [
        {"capacityProvider": "cp", "base": 0, "weight": 1}
    ]

    cfn.update_stack(StackName=stack, TemplateBody=_schedule_template(expression="rate(2 hours)"))
    assert names() == [made]
    assert scheduler.get_schedule(Name=made)["ScheduleExpression"] == "rate(2 hours)"

    cfn.update_stack(StackName=stack, TemplateBody=_schedule_template(name="nightly"))
    assert names() == ["nightly"]  # Name is createOnly: replaced, the old one gone

    scheduler.delete_schedule(Name="nightly")  # by hand, behind the stack's back
    cfn.delete_stack(StackName=stack)
    deleted = cfn.list_stacks(StackStatusFilter=["DELETE_COMPLETE"])["StackSummaries"]
    assert stack in {d["StackName"] for d in deleted}

    cfn.create_stack(StackName="short", TemplateBody=_schedule_template(name="kept"))
    cfn.delete_stack(StackName="short")
    assert names() == []
