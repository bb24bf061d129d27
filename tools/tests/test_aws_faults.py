"""Retries and idempotency: the fault-injecting proxy between nixecs and moto server answers a
fifth of all requests with throttling or 5xx errors — some after the request took effect —
and every command still completes without creating anything twice."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from aws_fixtures import moto_client, no_preflight, run_cli, small_template, write_fleet
from nixecs.aws import deploy as deploy_module
from nixecs.aws.ami import upload
from nixecs.aws.session import Session
from nixecs.testing.faultproxy import FaultPlan, FaultProxy

pytestmark = pytest.mark.moto

THROTTLING = {"ThrottlingException", "Throttling", "SlowDown", "RequestLimitExceeded"}


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep botocore's retry sleeps short (their length is not what this test is about)."""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.01)
    monkeypatch.setenv("NIXECS_POLL_INTERVAL", "0.01")


def test_each_protocol_gets_a_throttling_error_botocore_understands(moto, fast_backoff):
    plan = FaultPlan(rate=1.0, kinds=("throttle",), max_consecutive=100)
    with FaultProxy(moto.url, plan) as proxy:
        session = Session(region="us-east-1", endpoint_url=proxy.url, max_attempts=0)
        calls = {
            "ssm": lambda: session.client("ssm").describe_parameters(),  # JSON
            "cloudformation": lambda: session.client("cloudformation").list_stacks(),  # query
            "cloudwatch": lambda: session.client("cloudwatch").describe_alarms(),  # rpc-v2-cbor
            "s3": lambda: session.client("s3").list_buckets(),  # REST-XML
            "ec2": lambda: session.client("ec2").describe_images(Owners=["self"]),  # EC2
        }
        for service, call in calls.items():
            with pytest.raises(ClientError) as error:
                call()
            assert error.value.response["Error"]["Code"] in THROTTLING, service
        assert proxy.stats.total_faults == 5 and proxy.stats.forwarded == 0


def test_faults_are_seeded_and_bounded(moto, fast_backoff):
    def run(seed: int) -> list[int]:
        plan = FaultPlan(rate=0.5, seed=seed, kinds=("5xx",), max_consecutive=2)
        with FaultProxy(moto.url, plan) as proxy:
            session = Session(region="us-east-1", endpoint_url=proxy.url, max_attempts=0)
            outcomes = []
            for _ in range(30):
                try:
                    session.client("ssm").describe_parameters()
                    outcomes.append(0)
                except ClientError as error:
                    outcomes.append(error.response["ResponseMetadata"]["HTTPStatusCode"])
        return outcomes

    first, again, other = run(7), run(7), run(8)
    assert first == again != other
    assert any(first) and not all(first)
    streaks = "".join("x" if code else "." for code in first).split(".")
    assert max(len(s) for s in streaks) <= 2  # never more than max_consecutive in a row


def test_lost_answers_happen_after_the_upstream_acted(moto, fast_backoff):
    plan = FaultPlan(rate=1.0, kinds=("lost",), max_consecutive=1)
    with FaultProxy(moto.url, plan) as proxy:
        session = Session(region="us-east-1", endpoint_url=proxy.url, max_attempts=0)
        with pytest.raises(ClientError):
            session.client("ssm").put_parameter(Name="/lost", Value="v", Type="String")
    assert moto_client(moto.url, "ssm").get_parameter(Name="/lost")["Parameter"]["Value"] == "v"


def test_every_command_completes_through_faults_and_nothing_is_created_twice(
    moto, fast_backoff, tmp_path: Path, capsys, monkeypatch
):
    fleet = write_fleet(tmp_path)
    monkeypatch.setattr(
        deploy_module, "render_template", lambda model, cluster: small_template(model, cluster)
    )
    no_preflight(monkeypatch)
    s3 = moto_client(moto.url, "s3")
    s3.create_bucket(Bucket="images")
    image = tmp_path / "disk.vhd"
    image.write_bytes(hashlib.sha256(b"x").digest() * (11 * 1024 * 1024 // 32))
    sha = hashlib.sha256(image.read_bytes()).hexdigest()

    plan = FaultPlan(rate=0.2, seed=20261128, kinds=("throttle", "5xx", "lost"))
    with FaultProxy(moto.url, plan) as proxy:
        base = ["--endpoint-url", proxy.url, "--region", "us-east-1"]

        def ok(argv: list[str], stdin: str | None = None) -> Any:
            result = run_cli(capsys, [*base, *argv], stdin=stdin)
            assert result.code == 0, f"{argv}: {result.err}"
            return result

        for _ in range(2):
            ok(["deploy", str(fleet), "--yes"])
            ok(
                ["secret", "put", "/prod/db/password", "--value-stdin", "--outside-fleet"],
                stdin="s3cr3t\n",
            )
            ok(["secret", "put", "/prod/api/key", "--generate", "--outside-fleet"])
            assert ok(["secret", "get", "/prod/db/password", "--reveal"]).out == "s3cr3t\n"
            status = ok(["--output", "json", "status"]).json()
            assert [c["name"] for c in status["clusters"]] == ["prod"]
        session = Session(region="us-east-1", endpoint_url=proxy.url)
        upload(session, image, "images", f"nixecs/ami/{sha}.vhd", sha, part_size=5 * 1024 * 1024)
        assert (
            upload(
                session, image, "images", f"nixecs/ami/{sha}.vhd", sha, part_size=5 * 1024 * 1024
            )
            is False
        )

    faults = proxy.stats.faults
    requests = sum(proxy.stats.operations.values())
    assert proxy.stats.total_faults >= 0.08 * requests and set(faults) == {
        "throttle",
        "5xx",
        "lost",
    }, faults

    cfn = moto_client(moto.url, "cloudformation")
    assert [s["StackName"] for s in cfn.describe_stacks()["Stacks"]] == ["nixecs-prod"]
    assert (
        cfn.describe_stacks(StackName="nixecs-prod")["Stacks"][0]["StackStatus"]
        == "CREATE_COMPLETE"
    )
    assert len(cfn.list_change_sets(StackName="nixecs-prod")["Summaries"]) <= 1
    assert len(moto_client(moto.url, "ecs").list_clusters()["clusterArns"]) == 1
    ssm = moto_client(moto.url, "ssm")
    parameters = sorted(p["Name"] for p in ssm.describe_parameters()["Parameters"])
    assert parameters == ["/nixecs/prod/marker", "/prod/api/key", "/prod/db/password"]
    assert (
        ssm.get_parameter(Name="/prod/db/password", WithDecryption=True)["Parameter"]["Value"]
        == "s3cr3t"
    )
    assert len(ssm.get_parameter_history(Name="/prod/api/key")["Parameters"]) == 1  # generated once
    objects = s3.list_objects_v2(Bucket="images").get("Contents", [])
    assert [(o["Key"], o["Size"]) for o in objects] == [
        (f"nixecs/ami/{sha}.vhd", image.stat().st_size)
    ]
    assert s3.head_object(Bucket="images", Key=f"nixecs/ami/{sha}.vhd")["Metadata"] == {
        "sha256": sha
    }
    assert s3.list_multipart_uploads(Bucket="images").get("Uploads", []) == []


@pytest.mark.parametrize("existing", [None, "old value"])
def test_secret_put_under_lost_answers_writes_one_version(
    moto, fast_backoff, capsys, monkeypatch, existing
):
    """Every PutParameter acts but its answer is lost (twice in a row per request): the
    value is written once — a new parameter has one version, an update adds exactly one."""
    monkeypatch.setattr("nixecs.aws.secret.RETRY_BASE_SECONDS", 0.001, raising=False)
    ssm = moto_client(moto.url, "ssm")
    if existing is not None:
        ssm.put_parameter(Name="/prod/db/password", Value=existing, Type="SecureString")
    plan = FaultPlan(rate=1.0, kinds=("lost",), max_consecutive=2)
    with FaultProxy(moto.url, plan) as proxy:
        base = ["--endpoint-url", proxy.url, "--region", "us-east-1"]
        for round in range(2):  # and the second put of the same value writes nothing
            result = run_cli(
                capsys,
                [*base, "secret", "put", "/prod/db/password", "--value-stdin", "--outside-fleet"],
                stdin="s3cr3t\n",
            )
            assert result.code == 0, result.err
            expected = "unchanged" if round else ("updated" if existing else "created")
            assert f"/prod/db/password: {expected}" in result.out, result.out
    assert proxy.stats.faults["lost"] >= 2
    history = ssm.get_parameter_history(Name="/prod/db/password", WithDecryption=True)
    values = [p["Value"] for p in history["Parameters"]]
    assert values == ([existing] if existing else []) + ["s3cr3t"]
