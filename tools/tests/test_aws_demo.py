"""The local mode end to end, as `make demo` runs it: moto server on loopback, the example
fleet deployed with the real templates, `nixecs status` showing it (subprocesses)."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from conftest import EXAMPLES, REPO

pytestmark = pytest.mark.moto


def _demo():
    spec = importlib.util.spec_from_file_location("demo_aws", REPO / "tools" / "demo_aws.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_deploy_and_status_of_the_example_fleet():
    output = _demo().deploy_and_status(EXAMPLES / "fleet.yml", sys.executable)
    # `nixecs local deploy`: stand-ins for what the example references, then the preflight
    for what in (
        "subnet",
        "security group",
        "certificate",
        "AMI",
        "SSM parameter",
        "service-linked",
    ):
        assert f"stand-in: {what}" in output, what
    assert "  + add      Cluster " in output
    assert "nixecs-prod: created (CREATE_COMPLETE)" in output
    assert (
        "warning: nixecs-prod: not found through their own APIs" in output
    )  # moto's gap, said plainly
    assert "cluster prod  stack nixecs-prod: CREATE_COMPLETE  ECS: ACTIVE" in output
    # the load-balanced service: the ALB, its HTTPS listener (a certificate moto's ACM holds)
    # and the service's target group are deployed; status has the targets column
    for resource in (
        "LoadBalancer ",
        "HttpsListener ",
        "BananasTargetGroup ",
        "BananasListenerRule ",
    ):
        assert f"  + add      {resource}" in output, resource
    assert any(line.split()[-1:] == ["targets"] for line in output.splitlines())
    rows: dict[str, list[str]] = {}
    for line in output.splitlines():  # the first table that names a subject: groups, services
        if line.startswith(" ") and line.split():
            rows.setdefault(line.split()[0], line.split())
    assert rows["web"][4] == "nixecs-prod-web" and rows["workers"][4] == "nixecs-prod-workers"
    # real capacity: the web group gives its root volume a size, so moto launches its
    # instances from the launch template (desired, in service, min..max)
    assert rows["web"][1:4] == ["2", "2", "2..10"], rows["web"]
    assert "group nixecs-prod-web: 2 instances unprotected, scaling to 0" in output
    assert (
        rows["bananas"][4] == "nixecs-prod-bananas:1"
        and rows["reports"][4] == "nixecs-prod-reports:1"
    )
    assert all(value.isdigit() for value in rows["bananas"][1:4])  # desired, running, pending
    # the example application's image was pushed, and the service runs it by digest
    assert "recorded in moto's ECR" in output or "recorded in moto's ECR as" in output
    # the images table (service, container, image): the app container runs by digest
    assert any(
        line.split()[:1] == ["bananas"] and line.split()[-1].startswith("bananas@sha256:")
        for line in output.splitlines()
    ), output
    # its target group answers: moto starts no tasks, so no target is registered
    assert "prod/bananas: target group targetgroup/nixecs-prod-" in output
    assert rows["bananas"][-2:] == ["0/0", "healthy"], rows["bananas"]
    assert rows["reports"][-1] == "-"  # no load balancer
    # and it ends by destroying what it deployed
    assert "destroy prod --yes" in output and output.rstrip().endswith("nixecs-prod: destroyed")


def test_a_failing_step_raises_with_its_output(tmp_path):
    demo = _demo()
    bad = tmp_path / "fleet.yml"
    bad.write_text("version: 1\nregion: us-east-1\nclusters: {prod: {nope: 1}}\n")
    with pytest.raises(demo.DemoError) as error:
        demo.deploy_and_status(bad, sys.executable)
    assert "`nixecs local deploy" in str(error.value) and "exited 2" in str(error.value)


def test_without_skopeo_or_the_registry_the_demo_says_what_it_skipped(moto, monkeypatch):
    """`make demo` on a machine without skopeo and docker-registry: the example's image is not
    pushed, its tag is recorded in the emulator's ECR directly (so the deploy's preflight
    finds it), and the output says which tools are missing and what was skipped."""
    import shutil

    from aws_fixtures import moto_client

    real = shutil.which
    monkeypatch.setattr(
        shutil, "which", lambda name, *a, **k: None if name == "skopeo" else real(name, *a, **k)
    )
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    output = _demo().push_example_image(moto.url, "us-east-1", env, sys.executable)
    assert (
        "skopeo or docker-registry is not installed (Debian: apt-get install skopeo "
        "docker-registry): not pushed; bananas:1.0 recorded in moto's ECR as sha256:"
    ) in output
    images = moto_client(moto.url, "ecr").describe_images(repositoryName="bananas")
    assert [i["imageTags"] for i in images["imageDetails"]] == [["1.0"]]
