"""Network Load Balancers (`load_balancer: {type: network}`, issue 21 item 5) and services with
several `routing:` entries: the checks with their positions and codes, the templates, cfn-lint
in the fleet's region, and the rendered NLB resources applied to the moto server's ELBv2 API
(moto's CloudFormation cannot create an NLB: see the last test).

The AWS rules the checks mirror are cited where they are checked (fleet/loadbalancing.py):
CreateListener's protocols and one listener per port, CreateTargetGroup's health check
protocols, timeouts and matcher ranges, ECS's five target groups per service."""

from __future__ import annotations

import copy
import textwrap
from pathlib import Path
from typing import Any

import pytest

from aws_fixtures import alb_network, moto_client
from conftest import require
from nixecs.cloudformation import build_stack
from nixecs.diagnostics import FIXES, InvalidInput
from nixecs.fleet import parse
from nixecs.fleet.checks import check_text
from test_loadbalancing import cfn_lint_clean

CERT = "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f"
NLB = """\
    load_balancer:
      type: network
      scheme: internal
      vpc: vpc-0a1b2c3d
      security_groups: [sg-0b1b2c3d]
"""
# a DNS server: TCP 8053 (dynamic host port), and 53 over UDP and TCP on host port 53
DNS_PORTS = "[8053, {container_port: 53, protocol: udp, host_port: 53}, {container_port: 53, host_port: 53}]"


def fleet_text(
    routing: str, load_balancer: str = NLB, ports: str = DNS_PORTS, extra: str = ""
) -> str:
    return (
        "version: 1\n"
        "region: us-east-1\n"
        "clusters:\n"
        "  prod:\n"
        "    subnets: [subnet-0a1b2c3d]\n"
        "    security_groups: [sg-0a1b2c3d]\n" + load_balancer + "    groups:\n"
        "      web: {ami: ami-0123456789abcdef0, instance_types: [m6i.large], capacity: {min: 1, max: 4}}\n"
        "    services:\n"
        "      dns:\n"
        "        group: web\n"
        "        containers:\n"
        f"          server: {{image: coredns/coredns:1.11.1, memory: 128, ports: {ports}}}\n"
        + textwrap.indent(textwrap.dedent(routing).strip(), " " * 8)
        + "\n"
        + extra
    )


TWO_ROUTES = f"""\
routing:
  - {{listener: {{port: 853, protocol: TLS, certificate_arn: "{CERT}"}}, port: 8053,
     health_check: {{protocol: HTTP, path: /health, interval: 10}}}}
  - {{listener: {{port: 53, protocol: UDP}}, port: 53}}
"""


def errors(text: str) -> list[tuple[int, str, str]]:
    with pytest.raises(InvalidInput) as caught:
        check_text(text, "fleet.yml", nix=False)
    return [(d.location.line, d.code, d.message) for d in caught.value.report.sorted()]


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def template(text: str) -> dict[str, Any]:
    fleet = parse(text, "fleet.yml")
    return build_stack(fleet, "prod", {name: b"#x\n" for name in fleet.clusters["prod"].groups})  # type: ignore[no-any-return]


def test_a_network_load_balancer_with_two_routes_loads() -> None:
    fleet, _ = check_text(fleet_text(TWO_ROUTES), "fleet.yml", nix=False)
    cluster = fleet.clusters["prod"]
    assert cluster.load_balancer is not None and cluster.load_balancer.network
    dns = cluster.services["dns"]
    tls, udp = dns.routes
    assert tls.listener is not None and tls.listener.protocol == "TLS"
    assert tls.listener.target_protocol == "TCP" and tls.port == 8053 and tls.host_port == 0
    # an NLB's HTTP check times out after 6 s by default (CreateTargetGroup
    # HealthCheckTimeoutSeconds), its matcher is 200-399 (Matcher HttpCode)
    assert (tls.health_check.protocol, tls.health_check.timeout) == ("HTTP", 6)
    assert tls.health_check.matcher == "200-399"
    assert udp.listener is not None and udp.udp and udp.host_port == 53
    # a UDP target group is health checked over TCP (TCP's default timeout is 10 s)
    assert (udp.health_check.protocol, udp.health_check.timeout) == ("TCP", 10)
    # one subnet is enough for an NLB (an ALB needs two: E159)
    assert cluster.subnets == ("subnet-0a1b2c3d",)
    assert dns.routing is tls  # the first entry is the one scaling and alarms watch


def test_the_template_has_one_listener_and_target_group_per_route() -> None:
    resources = template(fleet_text(TWO_ROUTES))["Resources"]
    lb = resources["LoadBalancer"]["Properties"]
    assert lb["Type"] == "network" and lb["SecurityGroups"] == ["sg-0b1b2c3d"]
    # routing.http.drop_invalid_header_fields is an ALB's attribute: not on an NLB
    assert [a["Key"] for a in lb["LoadBalancerAttributes"]] == ["deletion_protection.enabled"]
    assert "HttpListener" not in resources and "HttpsListener" not in resources
    tls, udp = resources["DnsListener"]["Properties"], resources["DnsListener2"]["Properties"]
    assert (tls["Port"], tls["Protocol"], tls["SslPolicy"]) == (
        853,
        "TLS",
        "ELBSecurityPolicy-TLS13-1-2-2021-06",
    )
    assert tls["Certificates"] == [{"CertificateArn": CERT}]
    assert tls["DefaultActions"] == [
        {"Type": "forward", "TargetGroupArn": {"Ref": "DnsTargetGroup"}}
    ]
    assert (udp["Port"], udp["Protocol"]) == (53, "UDP") and "Certificates" not in udp
    first, second = (
        resources["DnsTargetGroup"]["Properties"],
        resources["DnsTargetGroup2"]["Properties"],
    )
    assert (first["Protocol"], first["HealthCheckProtocol"], first["HealthCheckPath"]) == (
        "TCP",
        "HTTP",
        "/health",
    )
    assert first["Matcher"] == {"HttpCode": "200-399"}
    assert (second["Protocol"], second["HealthCheckProtocol"]) == ("UDP", "TCP")
    assert "HealthCheckPath" not in second and "Matcher" not in second
    service = resources["DnsService"]
    assert service["Properties"]["LoadBalancers"] == [
        {
            "ContainerName": "server",
            "ContainerPort": 8053,
            "TargetGroupArn": {"Ref": "DnsTargetGroup"},
        },
        {
            "ContainerName": "server",
            "ContainerPort": 53,
            "TargetGroupArn": {"Ref": "DnsTargetGroup2"},
        },
    ]
    assert {"DnsListener", "DnsListener2"} <= set(service["DependsOn"])
    # host port 53 is below the dynamic range the shared rule admits: its own rules
    ingress = {
        (r["Properties"]["IpProtocol"], r["Properties"]["FromPort"], r["Properties"]["ToPort"])
        for r in resources.values()
        if r["Type"] == "AWS::EC2::SecurityGroupIngress"
    }
    assert ingress == {("tcp", 32768, 65535), ("tcp", 53, 53), ("udp", 53, 53)}


def test_an_alb_service_with_several_routes_gets_a_rule_and_target_group_each() -> None:
    alb = """\
    load_balancer: {vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d], subnets: [subnet-0a1b2c3d, subnet-0a1b2c3e]}
"""
    routing = """\
routing:
  - {priority: 10, path_patterns: [/api/*], port: 8053}
  - {priority: 11, host_headers: [admin.example.com], port: 8054}
"""
    resources = template(fleet_text(routing, alb, ports="[8053, 8054]"))["Resources"]
    rules = {k: v["Properties"] for k, v in resources.items() if v["Type"].endswith("ListenerRule")}
    assert set(rules) == {"DnsHttpListenerRule", "DnsHttpListenerRule2"}
    assert rules["DnsHttpListenerRule2"]["Priority"] == 11
    assert rules["DnsHttpListenerRule2"]["Actions"][0]["TargetGroupArn"] == {
        "Ref": "DnsTargetGroup2"
    }
    ports = [lb["ContainerPort"] for lb in resources["DnsService"]["Properties"]["LoadBalancers"]]
    assert ports == [8053, 8054]


@pytest.mark.parametrize(
    ("routing", "extra_lb", "code", "needle"),
    [
        # an ALB's keys on an NLB, and the other way round
        ("routing: {listener: {port: 53}, port: 8053, priority: 3}", "", "E184", "priority: 3"),
        ("routing: {port: 8053}", "", "E184", "routing: {port"),
        ("routing: {listener: {port: 53}, port: 8053}", "      http: true\n", "E184", "http: true"),
        # one listener per port (CreateListener: DuplicateListener)
        (
            "routing: [{listener: {port: 53}, port: 8053}, {listener: {port: 53, protocol: UDP}, port: 53}]",
            "",
            "E185",
            "routing: [",
        ),
        # a TLS listener needs its certificate; a certificate is a TLS listener's
        ("routing: {listener: {port: 853, protocol: TLS}, port: 8053}", "", "E186", "routing:"),
        (
            f"routing: {{listener: {{port: 53, certificate_arn: '{CERT}'}}, port: 8053}}",
            "",
            "E186",
            "routing:",
        ),
        # health checks an NLB refuses: a path on a TCP check, codes above 599
        (
            "routing: {listener: {port: 53}, port: 8053, health_check: {path: /x}}",
            "",
            "E187",
            "routing:",
        ),
        (
            "routing: {listener: {port: 53}, port: 8053, health_check: {protocol: HTTP, matcher: '200-600'}}",
            "",
            "E107",
            "routing:",
        ),
        # the default TCP timeout (10 s) is not below an interval of 10 s
        (
            "routing: {listener: {port: 53}, port: 8053, health_check: {interval: 10}}",
            "",
            "E154",
            "routing:",
        ),
        # more than five target groups on a service
        (
            "routing: ["
            + ", ".join(f"{{listener: {{port: {p}}}, port: 8053}}" for p in range(1, 7))
            + "]",
            "",
            "E107",
            "routing: [",
        ),
    ],
)
def test_network_load_balancer_errors_are_located(
    routing: str, extra_lb: str, code: str, needle: str
) -> None:
    text = fleet_text(routing, NLB + extra_lb)
    found = errors(text)
    assert [c for _, c, _ in found] == [code], found
    assert found[0][0] == line_of(text, needle), found
    assert FIXES[code]


def test_udp_needs_one_fixed_host_port_for_udp_and_tcp() -> None:
    """ECS registers one host port per task; a UDP target group is health checked over TCP on
    it (CreateTargetGroup HealthCheckProtocol: UDP is not a health check protocol), and Docker
    picks a dynamic host port per protocol: so both mappings, on one fixed host port."""
    routing = "routing: {listener: {port: 53, protocol: UDP}, port: 53}"
    dynamic = "[{container_port: 53, protocol: udp}, {container_port: 53}]"
    (found,) = errors(fleet_text(routing, ports=dynamic))
    assert found[1] == "E186" and "fixed host_port" in found[2]
    udp_only = "[{container_port: 53, protocol: udp, host_port: 53}]"
    (found,) = errors(fleet_text(routing, ports=udp_only))
    assert found[1] == "E186"
    (found,) = errors(fleet_text(routing, ports="[8053]"))
    assert found[1] == "E152" and "maps no UDP port" in found[2]


def test_alb_only_metrics_are_refused_on_an_nlb() -> None:
    """HTTPCode_Target_5XX_Count and ALBRequestCountPerTarget are AWS/ApplicationELB metrics;
    an NLB's UnHealthyHostCount is AWS/NetworkELB's ("CloudWatch metrics for your Network Load
    Balancer", https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-cloudwatch-metrics.html)."""
    routing = "routing: {listener: {port: 53}, port: 8053}"
    five = routing + "\ndeployment: {alarms: {http_5xx: 5}}"
    assert [c for _, c, _ in errors(fleet_text(five))] == ["E184"]
    requests = (
        routing + "\nscaling: {min: 1, max: 2, target_tracking: {metric: requests, target: 100}}"
    )
    assert [c for _, c, _ in errors(fleet_text(requests))] == ["E156"]
    unhealthy = routing + "\ndeployment: {alarms: {unhealthy_hosts: 1}}"
    alarm = template(fleet_text(unhealthy))["Resources"]["DnsUnhealthyHostsAlarm"]["Properties"]
    assert alarm["Namespace"] == "AWS/NetworkELB"


@pytest.mark.cfnlint
def test_cfn_lint_network_load_balanced_stacks(tmp_path: Path) -> None:
    tcp = "routing: {listener: {port: 5432}, port: 8053, health_check: {interval: 30}}"
    cfn_lint_clean(
        tmp_path, {"two": template(fleet_text(TWO_ROUTES)), "tcp": template(fleet_text(tcp))}
    )


@pytest.mark.moto
def test_the_rendered_nlb_resources_are_accepted_by_the_elbv2_api(moto) -> None:
    """moto's CloudFormation creates every AWS::ElasticLoadBalancingV2::LoadBalancer as an
    application one (moto 5.2.5, elbv2/models.py FakeLoadBalancer.create_from_cloudformation_json
    passes no Type), so an NLB stack cannot be deployed through it: its listeners fail with
    "Listener protocol 'TCP' must be one of 'HTTP, HTTPS'". The rendered load balancer, target
    groups and listeners are applied through the ELBv2 API instead, property for property."""
    network = alb_network(moto.url)
    text = (
        fleet_text(
            TWO_ROUTES.replace("853, protocol: TLS", "5353, protocol: TCP").replace(
                f', certificate_arn: "{CERT}"', ""
            )
        )
        .replace("vpc-0a1b2c3d", network["vpc"])
        .replace("sg-0b1b2c3d", network["alb"])
    )
    resources = template(text)["Resources"]
    elbv2 = moto_client(moto.url, "elbv2")
    lb = resources["LoadBalancer"]["Properties"]
    arn = elbv2.create_load_balancer(
        Name="nlb",
        Type=lb["Type"],
        Scheme=lb["Scheme"],
        Subnets=[network["subnet_a"]],
        SecurityGroups=lb["SecurityGroups"],
    )["LoadBalancers"][0]["LoadBalancerArn"]
    made: dict[str, str] = {}
    for logical, resource in sorted(resources.items()):
        if resource["Type"] != "AWS::ElasticLoadBalancingV2::TargetGroup":
            continue
        props = {
            k: v
            for k, v in resource["Properties"].items()
            if k not in ("Tags", "TargetGroupAttributes")
        }
        made[logical] = elbv2.create_target_group(Name=logical, **props)["TargetGroups"][0][
            "TargetGroupArn"
        ]
    for _, resource in sorted(resources.items()):
        if resource["Type"] != "AWS::ElasticLoadBalancingV2::Listener":
            continue
        props = dict(resource["Properties"])
        action = props.pop("DefaultActions")[0]
        elbv2.create_listener(
            LoadBalancerArn=arn,
            Port=props["Port"],
            Protocol=props["Protocol"],
            DefaultActions=[
                {"Type": "forward", "TargetGroupArn": made[action["TargetGroupArn"]["Ref"]]}
            ],
        )
    (balancer,) = elbv2.describe_load_balancers()["LoadBalancers"]
    assert balancer["Type"] == "network"
    listeners = elbv2.describe_listeners(LoadBalancerArn=arn)["Listeners"]
    assert sorted((x["Port"], x["Protocol"]) for x in listeners) == [(53, "UDP"), (5353, "TCP")]
    groups = {g["Protocol"]: g for g in elbv2.describe_target_groups()["TargetGroups"]}
    assert set(groups) == {"TCP", "UDP"} and groups["UDP"]["HealthCheckProtocol"] == "TCP"
    assert (
        groups["TCP"]["HealthCheckProtocol"] == "HTTP"
        and groups["TCP"]["HealthCheckPath"] == "/health"
    )


# -- deploy --plan: what an update of an NLB does ---------------------------------------------


@pytest.fixture
def registry() -> Any:
    import importlib.util

    from nixecs.cloudformation.registry import Registry

    require(importlib.util.find_spec("cfnlint") is not None, "cfn-lint is not installed")
    return Registry()


@pytest.mark.cfnlint
def test_changing_the_type_replaces_the_load_balancer_and_is_refused(registry: Any) -> None:
    """Type is create-only on AWS::ElasticLoadBalancingV2::LoadBalancer (cfn-lint's registry
    schema): application → network is a new load balancer, a new DNS name (H105)."""
    from nixecs.cloudformation import transition as t

    alb = (
        "    load_balancer: {vpc: vpc-0a1b2c3d, security_groups: [sg-0b1b2c3d],"
        " subnets: [subnet-0a1b2c3d, subnet-0a1b2c3e]}\n"
    )
    old = template(fleet_text("routing: {priority: 10, path_patterns: ['/*'], port: 8053}", alb))
    new = template(
        fleet_text("routing: {listener: {port: 80}, port: 8053, health_check: {interval: 30}}")
    )
    result = t.plan(old, new, registry)
    assert result.action("LoadBalancer") == t.REPLACE
    assert next(r for r in result.resources if r.logical_id == "LoadBalancer").reason == "Type"
    assert "H105" in [h.code for h in result.refused()]


@pytest.mark.cfnlint
def test_a_target_group_replaced_under_an_nlb_listener_is_refused(registry: Any) -> None:
    """Port is create-only on a target group: the listener's default action moves to the new,
    empty group before the tasks are registered in it (H103, as under a listener rule)."""
    from nixecs.cloudformation import transition as t

    routing = "routing: {listener: {port: 80}, port: %d, health_check: {interval: 30}}"
    old = template(fleet_text(routing % 8053, ports="[8053, 8054]"))
    new = template(fleet_text(routing % 8054, ports="[8053, 8054]"))
    result = t.plan(old, new, registry)
    assert result.action("DnsTargetGroup") == t.REPLACE
    (hazard,) = result.refused()
    assert hazard.code == "H103" and "DnsListener forwards to it" in hazard.message


@pytest.mark.cfnlint
def test_security_groups_on_an_nlb_created_without_them_are_refused(registry: Any) -> None:
    """An NLB created without security groups (by hand, or by an older template) can never
    get one; one created with them can never lose them all (H108)."""
    from nixecs.cloudformation import transition as t

    new = template(
        fleet_text("routing: {listener: {port: 80}, port: 8053, health_check: {interval: 30}}")
    )
    old = copy.deepcopy(new)
    del old["Resources"]["LoadBalancer"]["Properties"]["SecurityGroups"]
    result = t.plan(old, new, registry)
    assert result.action("LoadBalancer") == t.MODIFY  # SecurityGroups is not create-only
    (hazard,) = result.refused()
    assert hazard.code == "H108" and "without security groups" in hazard.message
    assert [h.code for h in t.plan(new, old, registry).refused()] == ["H108"]
    assert t.plan(new, new, registry).refused() == []
    assert FIXES["H108"]


def test_local_deploy_refuses_an_nlb_the_emulator_cannot_make(capsys) -> None:
    """Before starting the emulator: exit 1, saying why (moto's gap), naming the cluster."""
    from aws_fixtures import run_cli
    from conftest import EXAMPLES

    result = run_cli(capsys, ["local", "deploy", str(EXAMPLES / "network.yml"), "--plan"])
    assert result.code == 1
    assert "cannot create a Network Load Balancer (cluster edge)" in result.err
    assert "emulator http" not in result.out + result.err  # nothing was started


def test_a_listener_that_lost_its_indentation_is_named() -> None:
    """`routing:` left empty and `listener:` one level too far left: the hint says where it
    belongs (nixecs.fleet.hints), at both ends: the empty `routing:` (null, E103) and the
    key beside it (E101), as for any section whose keys lost their indentation."""
    text = fleet_text("routing:\nlistener: {port: 53}")
    found = {c: m for _, c, m in errors(text)}
    assert sorted(found) == ["E101", "E103"], found
    assert "'listener' is a key of `routing:`, which is empty here" in found["E101"]
    assert "`routing:` has nothing after it" in found["E103"]


def test_a_fixed_host_port_is_admitted_once_per_cluster() -> None:
    """Two routing entries on one fixed host port (here the same container port behind two
    listeners): one ingress rule per (port, protocol) in the stack, else EC2 refuses the
    second (InvalidPermission.Duplicate)."""
    routing = """\
routing:
  - {listener: {port: 53, protocol: UDP}, port: 53}
  - {listener: {port: 5353, protocol: UDP}, port: 53}
"""
    resources = template(fleet_text(routing))["Resources"]
    rules = sorted(
        (k, r["Properties"]["IpProtocol"], r["Properties"]["FromPort"])
        for k, r in resources.items()
        if r["Type"] == "AWS::EC2::SecurityGroupIngress" and r["Properties"]["FromPort"] == 53
    )
    assert rules == [("DnsTcpIngress", "tcp", 53), ("DnsUdpIngress", "udp", 53)]
