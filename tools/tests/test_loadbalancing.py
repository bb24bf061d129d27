"""Load balancing, placement and deployment (issue 10 items 3 and 4): every key and check of
nixecs.fleet.loadbalancing with its position, the templates they render to, and cfn-lint."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from aws_fixtures import run_cli
from conftest import require
from nixecs.cloudformation import build_stack
from nixecs.cloudformation.dump import dump_template
from nixecs.cloudformation.loadbalancer import EPHEMERAL_PORTS
from nixecs.diagnostics import CODES, InvalidInput
from nixecs.fleet import parse
from nixecs.fleet.checks import check_text
from nixecs.fleet.model import DEFAULT_PLACEMENT, Fleet

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"
LISTENER = (
    "arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/app/shared/"
    "0123456789abcdef/fedcba9876543210"
)

CREATED_LB = f"""\
    load_balancer:
      vpc: vpc-0a1b2c3d
      security_groups: [sg-0b1b2c3d]
      https: {{certificate_arn: "{CERT}"}}
      redirect_http_to_https: true
"""


def fleet_text(
    load_balancer: str = CREATED_LB,
    web: str = "routing: {priority: 10, path_patterns: ['/*']}",
    api: str = "",
    clusters: str = "",
) -> str:
    """A fleet whose `prod` cluster has `load_balancer` (indented 4) and services web (port
    8080) and api (port 9000) with the given extra keys (flow-style lines, indented 8)."""

    def extra(text: str) -> str:
        return textwrap.indent(textwrap.dedent(text).strip(), " " * 8) + "\n" if text else ""

    return (
        "version: 1\n"
        "region: us-east-1\n"
        "flake: github:acme/infra\n"
        "clusters:\n"
        "  prod:\n"
        "    subnets: [subnet-0a1b2c3d, subnet-0a1b2c3e]\n"
        "    security_groups: [sg-0a1b2c3d]\n" + load_balancer + "    groups:\n"
        "      web:\n"
        "        ami: ami-0123456789abcdef0\n"
        "        instance_types: [m6i.large]\n"
        "        capacity: {min: 1, max: 4}\n"
        "    services:\n"
        "      web:\n"
        "        group: web\n"
        "        image: nginx:1.27\n"
        "        memory: 256\n"
        "        port: 8080\n" + extra(web) + "      api:\n"
        "        group: web\n"
        "        image: nginx:1.27\n"
        "        memory: 256\n"
        "        port: 9000\n" + extra(api) + clusters
    )


def load(text: str) -> Fleet:
    return parse(text, "fleet.yml")


def errors(text: str) -> list[tuple[int, int, str]]:
    """Loader and checks stage: what `nixecs validate` reports."""
    with pytest.raises(InvalidInput) as caught:
        check_text(text, "fleet.yml", nix=False)
    return [(d.location.line, d.location.column, d.code) for d in caught.value.report.sorted()]


def messages(text: str) -> str:
    with pytest.raises(InvalidInput) as caught:
        check_text(text, "fleet.yml", nix=False)
    return "\n".join(d.format() for d in caught.value.report.sorted())


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def template(text: str) -> dict[str, Any]:
    fleet = load(text)
    return build_stack(fleet, "prod", {name: b"#x\n" for name in fleet.clusters["prod"].groups})  # type: ignore[no-any-return]


# -- the model -----------------------------------------------------------------------------


def test_defaults_of_a_routed_service() -> None:
    fleet = load(fleet_text())
    cluster = fleet.clusters["prod"]
    lb = cluster.load_balancer
    assert lb is not None and lb.scheme == "internet-facing" and lb.https and lb.http
    assert lb.redirect_http_to_https and lb.subnets == () and lb.vpc == "vpc-0a1b2c3d"
    web = cluster.services["web"]
    routing = web.routing
    assert routing is not None
    assert (routing.container, routing.port, routing.priority) == ("web", 8080, 10)
    assert routing.path_patterns == ("/*",) and routing.host_headers == ()
    health = routing.health_check
    assert (health.path, health.matcher, health.interval, health.timeout) == ("/", "200", 30, 5)
    assert (health.healthy_threshold, health.unhealthy_threshold) == (5, 2)
    assert routing.deregistration_delay == 300
    assert web.deployment.health_check_grace_period == 60  # load balanced: a default
    assert web.placement == DEFAULT_PLACEMENT
    api = cluster.services["api"]
    assert api.routing is None and api.deployment.health_check_grace_period is None
    assert (api.deployment.minimum_healthy_percent, api.deployment.maximum_percent) == (100, 200)
    assert api.deployment.circuit_breaker and api.deployment.rollback


def test_every_key_written() -> None:
    text = fleet_text(
        load_balancer=f"""\
    load_balancer:
      scheme: internal
      vpc: vpc-0a1b2c3d
      subnets: [subnet-0a1b2c3f, subnet-0a1b2c40]
      security_groups: [sg-0b1b2c3d, sg-0c1b2c3d]
      http: false
      https: {{certificate_arn: "{CERT}", ssl_policy: ELBSecurityPolicy-TLS13-1-2-2021-06}}
""",
        web="""\
        routing:
          container: web
          port: 8080
          priority: 7
          path_patterns: [/api/*, /v2/*]
          host_headers: [api.example.com]
          health_check: {path: /healthz, matcher: "200-299", interval: 10, timeout: 4,
                         healthy_threshold: 3, unhealthy_threshold: 4}
          deregistration_delay: 15
        placement:
          strategy: [random, "spread:instanceId", "binpack:cpu"]
          constraints: [distinctInstance, "memberOf:attribute:ecs.instance-type =~ m6i.*"]
        deployment:
          minimum_healthy_percent: 50
          maximum_percent: 150
          circuit_breaker: {enable: true, rollback: false}
          health_check_grace_period: 120
        enable_execute_command: false
        scaling:
          min: 1
          max: 4
          target_tracking: {metric: requests, target: 1000}
""",
    )
    cluster = load(text).clusters["prod"]
    lb = cluster.load_balancer
    assert lb is not None and lb.scheme == "internal" and not lb.http
    assert lb.subnets == ("subnet-0a1b2c3f", "subnet-0a1b2c40")
    assert lb.ssl_policy == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    web = cluster.services["web"]
    assert web.routing is not None and web.routing.health_check.matcher == "200-299"
    assert web.placement.strategies == (
        ("random", None),
        ("spread", "instanceId"),
        ("binpack", "cpu"),
    )
    assert web.placement.constraints == (
        ("distinctInstance", None),
        ("memberOf", "attribute:ecs.instance-type =~ m6i.*"),
    )
    d = web.deployment
    assert (d.minimum_healthy_percent, d.maximum_percent, d.circuit_breaker, d.rollback) == (
        50,
        150,
        True,
        False,
    )
    assert d.health_check_grace_period == 120

    t = template(text)["Resources"]
    assert t["LoadBalancer"]["Properties"]["Subnets"] == ["subnet-0a1b2c3f", "subnet-0a1b2c40"]
    assert t["LoadBalancer"]["Properties"]["Scheme"] == "internal"
    assert "HttpListener" not in t and t["HttpsListener"]["Properties"]["SslPolicy"].startswith(
        "ELB"
    )
    group = t["WebTargetGroup"]["Properties"]
    assert (group["HealthCheckPath"], group["HealthCheckIntervalSeconds"]) == ("/healthz", 10)
    assert (group["HealthyThresholdCount"], group["UnhealthyThresholdCount"]) == (3, 4)
    assert group["TargetGroupAttributes"] == [
        {"Key": "deregistration_delay.timeout_seconds", "Value": "15"}
    ]
    rule = t["WebListenerRule"]["Properties"]
    assert rule["Priority"] == 7 and rule["ListenerArn"] == {"Ref": "HttpsListener"}
    assert rule["Conditions"] == [
        {"Field": "host-header", "HostHeaderConfig": {"Values": ["api.example.com"]}},
        {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/api/*", "/v2/*"]}},
    ]
    service = t["WebService"]
    assert service["DependsOn"] == ["ClusterCapacityProviders", "WebListenerRule"]
    props = service["Properties"]
    assert props["LoadBalancers"] == [
        {"ContainerName": "web", "ContainerPort": 8080, "TargetGroupArn": {"Ref": "WebTargetGroup"}}
    ]
    assert props["HealthCheckGracePeriodSeconds"] == 120
    assert props["PlacementStrategies"] == [
        {"Type": "random"},
        {"Type": "spread", "Field": "instanceId"},
        {"Type": "binpack", "Field": "cpu"},
    ]
    assert props["PlacementConstraints"] == [
        {"Type": "distinctInstance"},
        {"Type": "memberOf", "Expression": "attribute:ecs.instance-type =~ m6i.*"},
    ]
    assert props["DeploymentConfiguration"] == {
        "DeploymentCircuitBreaker": {"Enable": True, "Rollback": False},
        "MaximumPercent": 150,
        "MinimumHealthyPercent": 50,
    }
    metric = t["WebTargetTrackingPolicy"]["Properties"]["TargetTrackingScalingPolicyConfiguration"][
        "PredefinedMetricSpecification"
    ]
    assert metric == {
        "PredefinedMetricType": "ALBRequestCountPerTarget",
        "ResourceLabel": {
            "Fn::Join": [
                "/",
                [
                    {"Fn::GetAtt": ["LoadBalancer", "LoadBalancerFullName"]},
                    {"Fn::GetAtt": ["WebTargetGroup", "TargetGroupFullName"]},
                ],
            ]
        },
    }


def test_template_of_the_default_alb() -> None:
    t = template(fleet_text())
    resources = t["Resources"]
    http = resources["HttpListener"]["Properties"]
    assert http["Port"] == 80 and http["DefaultActions"][0]["Type"] == "redirect"
    https = resources["HttpsListener"]["Properties"]
    assert https["Certificates"] == [{"CertificateArn": CERT}]
    # Not the API's default ELBSecurityPolicy-2016-08 (TLS 1.0): AWS's recommended policy.
    assert https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    assert resources["LoadBalancer"]["Properties"]["LoadBalancerAttributes"] == [
        {"Key": "routing.http.drop_invalid_header_fields.enabled", "Value": "true"},
        {"Key": "deletion_protection.enabled", "Value": "false"},
    ]
    assert https["DefaultActions"][0]["FixedResponseConfig"]["StatusCode"] == "404"
    ingress = resources["LoadBalancerIngress"]["Properties"]
    assert (ingress["GroupId"], ingress["SourceSecurityGroupId"]) == ("sg-0a1b2c3d", "sg-0b1b2c3d")
    assert (ingress["FromPort"], ingress["ToPort"]) == EPHEMERAL_PORTS == (32768, 65535)
    group = resources["WebTargetGroup"]["Properties"]
    assert group["TargetType"] == "instance" and group["VpcId"] == "vpc-0a1b2c3d"
    assert group["HealthCheckPort"] == "traffic-port" and group["Matcher"] == {"HttpCode": "200"}
    assert resources["WebService"]["Properties"]["HealthCheckGracePeriodSeconds"] == 60
    # the unrouted service is as before
    api = resources["ApiService"]
    assert api["DependsOn"] == ["ClusterCapacityProviders"]
    assert "LoadBalancers" not in api["Properties"]
    assert "HealthCheckGracePeriodSeconds" not in api["Properties"]
    assert api["Properties"]["PlacementStrategies"] == [
        {"Type": "spread", "Field": "attribute:ecs.availability-zone"},
        {"Type": "binpack", "Field": "memory"},
    ]
    assert t["Outputs"]["LoadBalancerDnsName"]["Value"] == {
        "Fn::GetAtt": ["LoadBalancer", "DNSName"]
    }


def test_access_logs_and_deletion_protection() -> None:
    lb = (
        CREATED_LB
        + "      access_logs: {bucket: acme-alb-logs, prefix: prod/web}\n"
        + ("      deletion_protection: true\n")
    )
    fleet = load(fleet_text(load_balancer=lb))
    assert fleet.clusters["prod"].load_balancer is not None
    assert fleet.clusters["prod"].load_balancer.access_logs == ("acme-alb-logs", "prod/web")
    attributes = template(fleet_text(load_balancer=lb))["Resources"]["LoadBalancer"]["Properties"][
        "LoadBalancerAttributes"
    ]
    assert {a["Key"]: a["Value"] for a in attributes} == {
        "routing.http.drop_invalid_header_fields.enabled": "true",
        "deletion_protection.enabled": "true",
        "access_logs.s3.enabled": "true",
        "access_logs.s3.bucket": "acme-alb-logs",
        "access_logs.s3.prefix": "prod/web",
    }
    # Without a prefix ELB writes at the bucket's root: no empty prefix attribute.
    bare = CREATED_LB + "      access_logs: {bucket: acme-alb-logs}\n"
    keys = [
        a["Key"]
        for a in template(fleet_text(load_balancer=bare))["Resources"]["LoadBalancer"][
            "Properties"
        ]["LoadBalancerAttributes"]
    ]
    assert "access_logs.s3.prefix" not in keys and "access_logs.s3.bucket" in keys


def test_http_and_https_without_redirect_put_a_rule_on_each_listener() -> None:
    lb = CREATED_LB.replace("      redirect_http_to_https: true\n", "")
    resources = template(fleet_text(load_balancer=lb))["Resources"]
    assert resources["WebListenerRule"]["Properties"]["ListenerArn"] == {"Ref": "HttpsListener"}
    assert resources["WebHttpListenerRule"]["Properties"]["ListenerArn"] == {"Ref": "HttpListener"}
    assert resources["WebService"]["DependsOn"] == [
        "ClusterCapacityProviders",
        "WebListenerRule",
        "WebHttpListenerRule",
    ]
    assert resources["HttpListener"]["Properties"]["DefaultActions"][0]["Type"] == "fixed-response"


def test_existing_listener() -> None:
    text = fleet_text(
        load_balancer=f"    load_balancer: {{listener_arn: '{LISTENER}', vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d]}}\n",
        web="""\
        routing: {priority: 10, host_headers: [www.example.com]}
        scaling: {min: 1, max: 3, target_tracking: {metric: requests, target: 100}}
""",
    )
    t = template(text)
    resources = t["Resources"]
    assert not {"LoadBalancer", "HttpListener", "HttpsListener"} & set(resources)
    assert "LoadBalancerDnsName" not in t["Outputs"]
    assert resources["WebListenerRule"]["Properties"]["ListenerArn"] == LISTENER
    assert resources["WebTargetGroup"]["Properties"]["VpcId"] == "vpc-0a1b2c3d"
    label = resources["WebTargetTrackingPolicy"]["Properties"][
        "TargetTrackingScalingPolicyConfiguration"
    ]["PredefinedMetricSpecification"]["ResourceLabel"]
    assert label["Fn::Join"][1][0] == "app/shared/0123456789abcdef"
    assert resources["LoadBalancerIngress"]["Properties"]["SourceSecurityGroupId"] == "sg-0b1b2c3d"


def test_a_load_balancer_without_routed_services_admits_nothing() -> None:
    resources = template(fleet_text(web=""))["Resources"]
    assert "LoadBalancer" in resources and "LoadBalancerIngress" not in resources


# -- every check, located -------------------------------------------------------------------


def test_routing_without_a_load_balancer_is_e150() -> None:
    text = fleet_text(load_balancer="")
    assert errors(text) == [(line_of(text, "routing:"), 18, "E150")]


def test_duplicate_priority_on_one_listener_is_e151() -> None:
    text = fleet_text(api="routing: {priority: 10, path_patterns: [/api/*]}")
    # services in name order: api keeps 10, web's rule is the second one
    row = line_of(text, "routing: {priority: 10, path_patterns: ['/*']}")
    assert errors(text) == [(row, 29, "E151")]
    assert "priority 10 is already used by service prod/api" in messages(text)


def test_priorities_on_one_existing_listener_are_checked_across_clusters() -> None:
    existing = f"    load_balancer: {{listener_arn: '{LISTENER}', vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d]}}\n"
    other = (
        "  staging:\n"
        "    subnets: [subnet-0a1b2c3d, subnet-0a1b2c3e]\n"
        # its own instance group: sharing prod's would be E168 (one ingress rule, two owners)
        "    security_groups: [sg-0c1b2c3d]\n"
        + existing
        + "    groups: {web: {ami: ami-0123456789abcdef0, instance_types: [m6i.large], capacity: {min: 0, max: 1}}}\n"
        "    services:\n"
        "      web: {group: web, image: nginx, memory: 256, port: 80,\n"
        "            routing: {priority: 10, path_patterns: ['/*']}}\n"
    )
    text = fleet_text(load_balancer=existing, clusters=other)
    assert [code for *_, code in errors(text)] == ["E151"]
    # different listeners (two created load balancers): the same priority is fine
    load(fleet_text(clusters=other.replace(existing, CREATED_LB)))


@pytest.mark.parametrize(
    ("web", "code", "needle"),
    [
        ("routing: {priority: 1, path_patterns: ['/*'], port: 8081}", "E152", "port: 8081"),
        (
            "routing: {priority: 1, path_patterns: ['/*'], container: sidecar}",
            "E108",
            "container: sidecar",
        ),
        ("routing: {priority: 1}", "E153", "routing: {priority: 1}"),
        (
            "routing: {priority: 1, path_patterns: [/a, /b, /c, /d]}",
            "E155",
            "path_patterns: [/a",
        ),
        (
            "routing: {priority: 1, path_patterns: [/a, /b, /c], host_headers: [a.com, b.com, c.com]}",
            "E155",
            "host_headers: [a.com",
        ),
        (
            "routing: {priority: 1, path_patterns: ['/*'], health_check: {interval: 5, timeout: 5}}",
            "E154",
            "timeout: 5",
        ),
        ("routing: {priority: 0, path_patterns: ['/*']}", "E107", "priority: 0"),
        ("routing: {priority: 50001, path_patterns: ['/*']}", "E107", "priority: 50001"),
        ("routing: {priority: one, path_patterns: ['/*']}", "E103", "priority: one"),
        ("routing: {path_patterns: ['/*']}", "E104", "routing: {path_patterns"),
        ("routing: {priority: 1, path_patterns: ['/*'], weight: 2}", "E101", "weight"),
        ("routing: {priority: 1, path_patterns: [/a b]}", "E107", "/a b"),
        ("routing: {priority: 1, host_headers: [a/b]}", "E107", "a/b"),
        ("routing: {priority: 1, path_patterns: /a}", "E103", "/a"),
        (
            "routing: {priority: 1, path_patterns: ['/*'], deregistration_delay: 3601}",
            "E107",
            "3601",
        ),
        (
            "routing: {priority: 1, path_patterns: ['/*'], health_check: {path: healthz}}",
            "E107",
            "healthz",
        ),
        (
            # 500 is in an NLB's matcher range, not an ALB's: the rule of the type (E187)
            "routing: {priority: 1, path_patterns: ['/*'], health_check: {matcher: '500'}}",
            "E187",
            "'500'",
        ),
        (
            "routing: {priority: 1, path_patterns: ['/*'], health_check: {matcher: ok}}",
            "E107",
            "matcher: ok",
        ),
        (
            "routing: {priority: 1, path_patterns: ['/*'], health_check: {interval: 301}}",
            "E107",
            "301",
        ),
        (
            "routing: {priority: 1, path_patterns: ['/*'], health_check: {timeout: 1}}",
            "E107",
            "timeout: 1",
        ),
        (
            "routing: {priority: 1, path_patterns: ['/*'], health_check: {healthy_threshold: 11}}",
            "E107",
            "11",
        ),
        (
            "routing: {priority: 1, path_patterns: ['/*'], health_check: {unhealthy_threshold: 1}}",
            "E107",
            "unhealthy_threshold: 1",
        ),
        ("routing: [1]", "E103", "routing: [1]"),
        ("placement: {strategy: ['binpack:disk']}", "E107", "binpack:disk"),
        ("placement: {strategy: ['spread']}", "E107", "'spread'"),
        ("placement: {strategy: ['random:x']}", "E107", "random:x"),
        (
            "placement: {strategy: [random, random, random, random, random, random]}",
            "E107",
            "strategy",
        ),
        ("placement: {strategy: spread}", "E103", "strategy: spread"),
        ("placement: {constraints: ['memberOf:']}", "E107", "memberOf:"),
        ("placement: {constraints: [distinctInstance:x]}", "E107", "distinctInstance:x"),
        ("placement: {constraints: [{type: distinctInstance}]}", "E103", "type: distinctInstance"),
        ("placement: {spread: true}", "E101", "spread: true"),
        ("deployment: {minimum_healthy_percent: 101}", "E107", "101"),
        ("deployment: {maximum_percent: 99}", "E107", "99"),
        (
            "deployment: {minimum_healthy_percent: 100, maximum_percent: 100}",
            "E158",
            "maximum_percent: 100",
        ),
        (
            "deployment: {circuit_breaker: {enable: false, rollback: true}}",
            "E112",
            "rollback: true",
        ),
        ("deployment: {circuit_breaker: {enable: 'no'}}", "E103", "'no'"),
        ("deployment: {health_check_grace_period: 30}", "E112", "health_check_grace_period"),
        ("enable_execute_command: true", "E157", "enable_execute_command"),
        ("enable_execute_command: 1", "E103", "enable_execute_command"),
        (
            "scaling: {min: 1, max: 2, target_tracking: {metric: requests, target: 100}}",
            "E156",
            "metric: requests",
        ),
        (
            "scaling: {min: 1, max: 2, target_tracking: {metric: requests, target: 0}}",
            "E107",
            "target: 0",
        ),
    ],
)
def test_service_key_errors_are_located(web: str, code: str, needle: str) -> None:
    # `api` carries the key (web keeps its valid routing), so each case has exactly one error
    text = fleet_text(api=web)
    found = errors(text)
    assert [c for *_, c in found] == [code], messages(text)
    assert found[0][0] == line_of(text, needle), messages(text)
    assert CODES[code]


@pytest.mark.parametrize(
    ("lb", "code", "needle"),
    [
        (
            "    load_balancer: {vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d], http: false}\n",
            "E159",
            "load_balancer",
        ),
        (
            "    load_balancer: {vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d], redirect_http_to_https: true}\n",
            "E159",
            "load_balancer",
        ),
        (
            "    load_balancer: {vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d], subnets: [subnet-0a1b2c3d]}\n",
            "E159",
            "load_balancer",
        ),
        ("    load_balancer: {security_groups: [sg-0b1b2c3d]}\n", "E104", "load_balancer"),
        ("    load_balancer: {vpc: vpc-0a1b2c3d}\n", "E104", "load_balancer"),
        ("    load_balancer: {vpc: vpc-0a1b2c3d, security_groups: []}\n", "E107", "load_balancer"),
        (
            "    load_balancer: {vpc: vpc-x, security_groups: [sg-0b1b2c3d]}\n",
            "E107",
            "load_balancer",
        ),
        (
            "    load_balancer: {vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d], scheme: public}\n",
            "E107",
            "load_balancer",
        ),
        (
            "    load_balancer: {vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d], https: {certificate_arn: nope}}\n",
            "E107",
            "load_balancer",
        ),
        (
            f"    load_balancer: {{vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d], https: {{certificate_arn: '{CERT}', ssl_policy: TLS}}}}\n",
            "E107",
            "load_balancer",
        ),
        (
            "    load_balancer: {vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d], https: {}}\n",
            "E104",
            "load_balancer",
        ),
        (
            f"    load_balancer: {{listener_arn: '{LISTENER}', vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d], scheme: internal}}\n",
            "E112",
            "load_balancer",
        ),
        (
            "    load_balancer: {listener_arn: 'arn:aws:elasticloadbalancing:us-east-1:123456789012:listener/net/x/0123456789abcdef/0123456789abcdef', vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d]}\n",
            "E107",
            "load_balancer",
        ),
        (
            "    load_balancer: {vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d], listeners: 2}\n",
            "E101",
            "load_balancer",
        ),
        ("    load_balancer: true\n", "E103", "load_balancer"),
        (
            "    load_balancer: {vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d], access_logs: {prefix: p}}\n",
            "E104",
            "load_balancer",
        ),
        (
            "    load_balancer: {vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d], access_logs: {bucket: Logs_Bucket}}\n",
            "E107",
            "load_balancer",
        ),
        (
            "    load_balancer: {vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d], access_logs: {bucket: logs, prefix: /p}}\n",
            "E107",
            "load_balancer",
        ),
        (
            "    load_balancer: {vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d], access_logs: {bucket: logs, prefix: a/AWSLogs/b}}\n",
            "E107",
            "load_balancer",
        ),
        (
            "    load_balancer: {vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d], deletion_protection: yes}\n",
            "E103",
            "load_balancer",
        ),
        (
            f"    load_balancer: {{listener_arn: '{LISTENER}', vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d], deletion_protection: true}}\n",
            "E112",
            "load_balancer",
        ),
    ],
)
def test_load_balancer_errors_are_located(lb: str, code: str, needle: str) -> None:
    text = fleet_text(load_balancer=lb, web="")
    found = errors(text)
    assert [c for *_, c in found] == [code], messages(text)
    assert found[0][0] == line_of(text, needle)


def test_a_created_alb_on_the_clusters_single_subnet_is_e159() -> None:
    text = fleet_text(web="").replace(
        "subnets: [subnet-0a1b2c3d, subnet-0a1b2c3e]", "subnets: [subnet-0a1b2c3d]"
    )
    # a mapping's problems point at its first key
    assert errors(text) == [(line_of(text, "vpc: vpc-0a1b2c3d"), 7, "E159")]
    # its own subnets, or an existing listener, are fine
    load(
        text.replace(
            "      vpc: vpc-0a1b2c3d\n",
            "      vpc: vpc-0a1b2c3d\n      subnets: [subnet-0a1b2c3e, subnet-0a1b2c3f]\n",
        )
    )


def test_cli_exit_2_with_file_line_col_and_no_traceback(tmp_path: Path, capsys) -> None:
    fleet = tmp_path / "fleet.yml"
    text = fleet_text(api="routing: {priority: 10, path_patterns: [/api/*]}")
    fleet.write_text(text)
    result = run_cli(capsys, ["validate", str(fleet)])
    assert result.code == 2
    row = line_of(text, "routing: {priority: 10, path_patterns: ['/*']}")
    assert f"{fleet}:{row}:29: error[E151]: priority 10" in result.err
    assert "Traceback" not in result.err


# -- facts the design relies on -------------------------------------------------------------


@pytest.mark.system
def test_the_kernels_ephemeral_range_is_inside_the_admitted_ports() -> None:
    """The agent takes dynamic host ports from ip_local_port_range (agent/utils/
    ephemeral_ports_linux.go); the running kernel's range must lie inside the ingress rule's."""
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    assert EPHEMERAL_PORTS[0] <= low and high <= EPHEMERAL_PORTS[1]
    # and the agent's own fallback, 49153-65535, too
    assert EPHEMERAL_PORTS[0] <= 49153 and EPHEMERAL_PORTS[1] >= 65535


def cfn_lint_clean(tmp_path: Path, templates: dict[str, dict[str, Any]]) -> None:
    """Each template lints clean under cfn-lint in us-east-1 (informational checks included)."""
    cfn_lint = Path(sys.executable).with_name("cfn-lint")
    require(cfn_lint.exists(), "cfn-lint is not installed in this environment")
    files = []
    for name, rendered in templates.items():
        out = tmp_path / f"{name}.yaml"
        out.write_text(dump_template(rendered))
        files.append(str(out))
    result = subprocess.run(
        [
            str(cfn_lint),
            "--format",
            "parseable",
            "--include-checks",
            "I",
            "--regions",
            "us-east-1",
            "--",
            *files,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0 and result.stdout == "", result.stdout + result.stderr


@pytest.mark.cfnlint
def test_cfn_lint_load_balanced_stacks(tmp_path: Path) -> None:
    variants = {
        "redirect": fleet_text(
            web="""\
        routing: {priority: 10, path_patterns: ['/*'], host_headers: [www.example.com]}
        placement: {strategy: ["spread:instanceId"], constraints: [distinctInstance]}
        scaling: {min: 1, max: 4, target_tracking: {metric: requests, target: 500}}
"""
        ),
        "both": fleet_text(
            load_balancer=CREATED_LB.replace("      redirect_http_to_https: true\n", ""),
            api="routing: {priority: 20, path_patterns: [/api/*]}",
        ),
        "http": fleet_text(
            load_balancer="    load_balancer: {vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d], scheme: internal}\n"
        ),
        "existing": fleet_text(
            load_balancer=f"    load_balancer: {{listener_arn: '{LISTENER}', vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d]}}\n",
            web="""\
        routing: {priority: 10, path_patterns: ['/*']}
        scaling: {min: 1, max: 4, target_tracking: {metric: requests, target: 500}}
""",
        ),
    }
    cfn_lint_clean(tmp_path, {name: template(text) for name, text in variants.items()})


def test_an_unquoted_matcher_is_the_same_code() -> None:
    text = fleet_text(
        web="routing: {priority: 1, path_patterns: ['/*'], health_check: {matcher: 204}}"
    )
    routing = load(text).clusters["prod"].services["web"].routing
    assert routing is not None and routing.health_check.matcher == "204"


ODD_VALUES = (
    "null",
    "[]",
    "{}",
    "x",
    "1.5",
    "true",
    "-1",
    "99999999999999999999",
    "[[1]]",
    "{a: 1}",
)
SERVICE_KEYS = (
    "routing",
    "routing.priority",
    "routing.path_patterns",
    "routing.host_headers",
    "routing.container",
    "routing.port",
    "routing.deregistration_delay",
    "routing.health_check",
    "routing.health_check.path",
    "routing.health_check.matcher",
    "routing.health_check.interval",
    "routing.health_check.timeout",
    "routing.health_check.healthy_threshold",
    "routing.health_check.unhealthy_threshold",
    "placement",
    "placement.strategy",
    "placement.constraints",
    "deployment",
    "deployment.minimum_healthy_percent",
    "deployment.maximum_percent",
    "deployment.circuit_breaker",
    "deployment.circuit_breaker.enable",
    "deployment.circuit_breaker.rollback",
    "deployment.health_check_grace_period",
    "enable_execute_command",
)


def _nested(key: str, value: str) -> str:
    """`a.b.c` = value as flow YAML, inside a valid routing where the key is under routing."""
    parts = key.split(".")
    text = value
    for part in reversed(parts[1:]):
        text = f"{{{part}: {text}}}"
    if parts[0] == "routing" and len(parts) > 1 and parts[1] != "priority":
        inner = text[1:-1]
        text = f"{{priority: 5, path_patterns: [/x], {inner}}}"
    return f"{parts[0]}: {text}"


@pytest.mark.parametrize("key", SERVICE_KEYS)
def test_odd_values_are_located_errors_never_tracebacks(key: str) -> None:
    for value in ODD_VALUES:
        text = fleet_text(api=_nested(key, value))
        try:
            load(text)
        except InvalidInput as error:
            assert error.report.errors, text
            for diagnostic in error.report.errors:
                assert diagnostic.location.line >= 1 and diagnostic.code in CODES, text


@pytest.mark.parametrize(
    "key",
    (
        "scheme",
        "vpc",
        "subnets",
        "security_groups",
        "http",
        "https",
        "redirect_http_to_https",
        "listener_arn",
        "access_logs",
        "deletion_protection",
    ),
)
def test_odd_load_balancer_values_are_located_errors(key: str) -> None:
    for value in ODD_VALUES:
        keys = {"vpc": "vpc-0a1b2c3d", "security_groups": "[sg-0b1b2c3d]", key: value}
        flow = ", ".join(f"{k}: {v}" for k, v in keys.items())
        text = fleet_text(load_balancer=f"    load_balancer: {{{flow}}}\n", web="")
        try:
            load(text)
        except InvalidInput as error:
            assert all(d.code in CODES for d in error.report.errors), text


# -- routing into the containers: form (nixecs.fleet.containers) ---------------------------

SIDECAR_WEB = """\
routing: {priority: 10, path_patterns: ['/*'], ROUTE}
containers:
  app: {image: "nginx:1.27", memory: 256, ports: [8080, 8081]}
  proxy: {image: "envoyproxy/envoy:v1.31", memory: 128, ports: [9901]}
  logs: {image: "fluent/fluent-bit:3.1", memory: 64, essential: false}
"""


def sidecar_fleet(route: str) -> str:
    text = fleet_text(web=SIDECAR_WEB.replace(", ROUTE", route))
    # The web service's shorthand keys give way to its containers.
    return text.replace(
        "      web:\n        group: web\n        image: nginx:1.27\n        memory: 256\n        port: 8080\n",
        "      web:\n        group: web\n",
    )


def test_routing_defaults_to_the_first_container_mapping_a_port() -> None:
    routing = load(sidecar_fleet("")).clusters["prod"].services["web"].routing
    assert routing is not None and (routing.container, routing.port) == ("app", 8080)


def test_routing_to_a_named_sidecar_port_renders_that_container() -> None:
    text = sidecar_fleet(", container: proxy, port: 9901")
    routing = load(text).clusters["prod"].services["web"].routing
    assert routing is not None and (routing.container, routing.port) == ("proxy", 9901)
    service = next(
        r
        for r in template(text)["Resources"].values()
        if r["Type"] == "AWS::ECS::Service" and r["Properties"].get("LoadBalancers")
    )
    (balanced,) = service["Properties"]["LoadBalancers"]
    assert (balanced["ContainerName"], balanced["ContainerPort"]) == ("proxy", 9901)


@pytest.mark.parametrize(
    ("route", "code", "needle"),
    [
        (", container: nope", "E108", "(containers: app, proxy, logs)"),
        (", container: logs", "E152", "container 'logs' of service 'web' maps no TCP port"),
        (", container: app, port: 9901", "E152", "maps ports 8080, 8081, not 9901"),
    ],
)
def test_routing_into_containers_is_checked(route: str, code: str, needle: str) -> None:
    text = sidecar_fleet(route)
    assert code in {c for _, _, c in errors(text)}
    assert needle in messages(text)


# -- ECS Exec (issue 22, item 3) ---------------------------------------------------------------

EXEC_ACTIONS = [
    "ssmmessages:CreateControlChannel",
    "ssmmessages:CreateDataChannel",
    "ssmmessages:OpenControlChannel",
    "ssmmessages:OpenDataChannel",
]


def exec_fleet(group_exec: bool) -> str:
    text = fleet_text(api="enable_execute_command: true")
    if group_exec:
        text = text.replace(
            "        capacity: {min: 1, max: 4}\n",
            "        capacity: {min: 1, max: 4}\n        exec: true\n",
        )
    return text


def test_exec_is_refused_on_a_group_whose_host_does_not_provide_it() -> None:
    text = exec_fleet(group_exec=False)
    line = line_of(text, "enable_execute_command")
    # Located at the value, as before.
    column = text.splitlines()[line - 1].index("true") + 1
    assert errors(text) == [(line, column, "E157")]
    assert "nixecs.ecs.exec.enable" in messages(text) and "exec: true" in messages(text)


def test_exec_on_an_exec_group_enables_it_and_grants_the_task_role_ssmmessages() -> None:
    text = exec_fleet(group_exec=True)
    fleet = load(text)
    cluster = fleet.clusters["prod"]
    assert cluster.groups["web"].exec
    assert cluster.services["api"].enable_execute_command
    assert not cluster.services["web"].enable_execute_command
    resources = template(text)["Resources"]
    service = next(
        r["Properties"]
        for r in resources.values()
        if r["Type"] == "AWS::ECS::Service" and r["Properties"]["ServiceName"].endswith("api")
    )
    assert service["EnableExecuteCommand"] is True
    roles = {
        k: r for k, r in resources.items() if r["Type"] == "AWS::IAM::Role" and "TaskRole" in k
    }
    # Only the exec service gets a task role (web has no task_role: and no exec).
    [(role_id, role)] = roles.items()
    [policy] = role["Properties"]["Policies"]
    assert policy["PolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Action": EXEC_ACTIONS, "Resource": "*"}
    ]
    definitions = [
        r["Properties"] for r in resources.values() if r["Type"] == "AWS::ECS::TaskDefinition"
    ]
    arns = [d.get("TaskRoleArn") for d in definitions]
    assert arns.count(None) == 1 and {"Fn::GetAtt": [role_id, "Arn"]} in arns
