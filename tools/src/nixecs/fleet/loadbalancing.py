"""Load balancing, placement and deployment keys of the fleet file (issue 10, items 3 and 4).

The loader calls in through two small hooks: `load_balancer` (a cluster's
`load_balancer:`) and `service_extras` (a service's `routing:`, `placement:`, `deployment:`,
`enable_execute_command:`); the checks stage (checks.py) through `check_cluster` and
`check_fleet` (what needs every service).

The bounds are AWS's own, so that what AWS would refuse is refused here first:

- Rules (ELBv2 CreateRule; "Listener rules for your Application Load Balancer",
  https://docs.aws.amazon.com/elasticloadbalancing/latest/application/listener-update-rules.html):
  a priority is 1-50000 and unique within a listener (PriorityInUse); "up to three comparison
  strings per condition and up to five per rule"; at most one host-header and one
  path-pattern condition per rule.
- Target groups (CreateTargetGroup; AWS::ElasticLoadBalancingV2::TargetGroup Matcher,
  https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-properties-elasticloadbalancingv2-targetgroup-matcher.html):
  health check interval 5-300 s, timeout 2-120 s, thresholds 2-10, HTTP matcher codes
  200-499 as "200", "200,202" or "200-299"; deregistration delay 0-3600 s
  (deregistration_delay.timeout_seconds).
- Placement (ECS PlacementStrategy,
  https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_PlacementStrategy.html):
  random | spread | binpack; spread on instanceId, host or attribute:NAME; binpack on cpu or
  memory; random takes no field. Constraints: distinctInstance, or memberOf with a cluster
  query expression.
- ECS Exec only on groups with `exec: true` (else E157): the native agent advertises
  `ecs.capability.execute-command` only when the SSM agent binaries, config and certs lie
  under /managed-agents/execute-command (aws/amazon-ecs-agent v1.105.0,
  agent/app/agent_capability.go `appendExecCapabilities`, agent_capability_unix.go
  `capabilityDepsRootDir`), which ecs-init provides on the ECS-optimized AMI and
  modules/ecs-exec.nix (`nixecs.ecs.exec.enable`) on a nixecs host; `exec: true` says the
  group's host has it (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/ecs-exec-run.html).
"""

from __future__ import annotations

import dataclasses
import re

from .. import settings as s
from ..lazyre import lazy
from ..settings import Issue
from . import deploy_alarms
from .decl import (
    as_int,
    as_str,
    boolean,
    check,
    complete,
    either,
    enum,
    integer,
    keys,
    member,
    obj,
    refused,
    refused_below,
    req,
    section,
    string,
    strings,
    texts,
    values,
)
from .model import (
    DEFAULT_PLACEMENT,
    DEPLOYMENT,
    Cluster,
    Deployment,
    HealthCheck,
    Listener,
    LoadBalancer,
    Placement,
    Routing,
    Service,
)
from .yaml12 import Path

SERVICE_KEYS = ("routing", "placement", "deployment", "enable_execute_command")
SCHEMES = ("internet-facing", "internal")
TYPES = ("application", "network")

SUBNET_RE = lazy(r"subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})")
SG_RE = lazy(r"sg-(?:[0-9a-f]{8}|[0-9a-f]{17})")
VPC_RE = lazy(r"vpc-(?:[0-9a-f]{8}|[0-9a-f]{17})")
# Access logs: an S3 bucket name ("General purpose bucket naming rules", S3 user guide) and a
# key prefix that neither starts nor ends with `/` and does not hold `AWSLogs`, which ELB
# appends itself ("Enable access logs for your Application Load Balancer", ELB user guide:
# the prefix "can't include AWSLogs").
LOG_BUCKET_RE = lazy(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
LOG_PREFIX_RE = lazy(r"(?!/)(?!.*AWSLogs)[!-~]{0,199}(?<!/)")
CERTIFICATE_RE = lazy(
    r"arn:aws(?:-[a-z]+)*:(?:acm|iam):[a-z0-9-]*:[0-9]{12}:(?:certificate/[0-9a-f-]{36}|server-certificate/[\w+=,.@/-]{1,128})"
)
# ELBSecurityPolicy-*, the names DescribeSSLPolicies lists
SSL_POLICY_RE = lazy(r"ELBSecurityPolicy-[A-Za-z0-9-]{1,100}")
# arn:...:listener/app/NAME/LB-ID/LISTENER-ID; "app/NAME/LB-ID" is the load balancer's full
# name, the first half of ALBRequestCountPerTarget's ResourceLabel.
LISTENER_ARN_RE = lazy(
    r"arn:aws(?:-[a-z]+)*:elasticloadbalancing:[a-z0-9-]+:[0-9]{12}:listener/"
    r"(app/[A-Za-z0-9](?:[A-Za-z0-9-]{0,30}[A-Za-z0-9])?/[0-9a-f]{16})/[0-9a-f]{16}"
)
# Path patterns and host headers: up to 128 characters of the characters AWS lists
# (A-Z a-z 0-9 _ - . $ / ~ " ' @ : + & ( ) ! , ; = * ?); hosts have no / or spaces.
PATH_PATTERN_RE = lazy(r"""[A-Za-z0-9_.$/~"'@:+&()!,;=*?-]{1,128}""")
HOST_HEADER_RE = lazy(r"[A-Za-z0-9_.*?-]{1,128}")
HEALTH_PATH_RE = lazy(r"/[!-~]{0,1023}")
MATCHER_RE = lazy(r"[0-9]{3}(?:-[0-9]{3})?(?:,[0-9]{3}(?:-[0-9]{3})?)*")
MEMBER_OF_MAX = 2000  # PlacementConstraint expression: "maximum length of 2000"

MAX_PRIORITY = 50000
MAX_VALUES_PER_CONDITION = 3
MAX_VALUES_PER_RULE = 5
DEFAULT_GRACE_PERIOD = 60  # s; ours: the first health checks of a starting task
MAX_STRATEGIES = 5
MAX_CONSTRAINTS = 10
# "You can't attach more than five target groups to a service" ("Use a Network Load Balancer
# for Amazon ECS", https://docs.aws.amazon.com/AmazonECS/latest/developerguide/nlb.html; the
# ALB page says the same): at most five routing entries.
MAX_TARGET_GROUPS = 5
# A Network Load Balancer's listener protocols (CreateListener Protocol: "For Network Load
# Balancers, the supported protocols are TCP, TLS, UDP, TCP_UDP, QUIC, and TCP_QUIC";
# the QUIC ones are for targets speaking QUIC, not offered here) and health check protocols
# (CreateTargetGroup HealthCheckProtocol: "The GENEVE, TLS, UDP, TCP_UDP, QUIC, and TCP_QUIC
# protocols are not supported for health checks"; "The TCP protocol is not supported for
# health checks if the protocol of the target group is HTTP or HTTPS"), both from botocore's
# elbv2 service model (botocore/data/elbv2/2015-12-01/service-2.json).
NLB_PROTOCOLS = ("TCP", "TLS", "UDP", "TCP_UDP")
HEALTH_PROTOCOLS = ("HTTP", "HTTPS", "TCP")
# CreateTargetGroup HealthCheckTimeoutSeconds: "For target groups with a protocol of HTTP,
# the default is 6 seconds. For target groups with a protocol of TCP, TLS or HTTPS, the
# default is 10 seconds"; Matcher: "For Network Load Balancers, you can specify values between
# 200 and 599, with the default value being 200-399" (botocore, as above).
NLB_TIMEOUT = {"HTTP": 6, "HTTPS": 10, "TCP": 10}
NLB_MATCHER = "200-399"
CERTIFICATE = string(
    "an ACM or IAM certificate ARN",
    pattern=CERTIFICATE_RE.pattern,
    rule="an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID)",
    example="arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f",
)
SSL_POLICY = string(
    "an ELBSecurityPolicy-* name (default ELBSecurityPolicy-TLS13-1-2-2021-06)",
    pattern=SSL_POLICY_RE.pattern,
    rule="an ELB security policy name such as ELBSecurityPolicy-TLS13-1-2-2021-06",
    example="ELBSecurityPolicy-TLS13-1-2-2021-06",
)


# The declaration of `routing:` (fleet/decl.py).
TG = "ELBv2 target group: interval 5-300 s, timeout 2-120 s, thresholds 2-10"
ROUTING = obj(
    "a listener rule and target group of the cluster's load balancer for this service",
    order=(
        "path_patterns",
        "host_headers",
        "priority",
        "listener",
        "container",
        "port",
        "health_check",
        "deregistration_delay",
    ),
    path_patterns=strings(
        "path patterns of the rule",
        string(
            "a path pattern",
            pattern=PATH_PATTERN_RE.pattern,
            rule="a path pattern of 1-128 characters such as /api/*",
        ),
        aws="3 values per condition, 5 per rule",
        example=["/api/*"],
    ),
    host_headers=strings(
        "host headers of the rule",
        string(
            "a host name pattern",
            pattern=HOST_HEADER_RE.pattern,
            rule="a host name pattern of 1-128 characters such as *.example.com",
        ),
        aws="3 values per condition, 5 per rule",
        example=["api.example.com"],
    ),
    priority=integer(
        "the rule's priority, unique on the listener (an Application Load Balancer's: required)",
        1,
        MAX_PRIORITY,
        aws="ELBv2 rule priority 1-50000",
        example=10,
    ),
    listener=obj(
        "the Network Load Balancer listener this entry owns (a Network Load Balancer's: "
        "required); it forwards to the entry's target group",
        order=("port", "protocol", "certificate_arn", "ssl_policy"),
        port=req(
            integer(
                "the listener's port, unique on the load balancer",
                1,
                65535,
                aws="CreateListener Port 1-65535",
                example=5432,
            )
        ),
        protocol=enum(
            "TCP, TLS (terminated at the load balancer), UDP or TCP_UDP (UDP and TCP_UDP: "
            "the container maps the port over TCP and UDP on one fixed host port, E186)",
            NLB_PROTOCOLS,
            default="TCP",
            aws="CreateListener Protocol (NLB): TCP, TLS, UDP, TCP_UDP",
            example="TLS",
        ),
        certificate_arn=CERTIFICATE,
        ssl_policy=SSL_POLICY,
    ),
    container=string("the container receiving the traffic; the first with a port by default"),
    port=integer("its container port; its first port by default", 1, 65535),
    health_check=obj(
        "the target group's health check",
        order=(
            "protocol",
            "path",
            "matcher",
            "interval",
            "timeout",
            "healthy_threshold",
            "unhealthy_threshold",
        ),
        protocol=enum(
            "HTTP or HTTPS; a Network Load Balancer's also TCP, its default (an "
            "Application Load Balancer's default: HTTP)",
            HEALTH_PROTOCOLS,
            aws="CreateTargetGroup HealthCheckProtocol (TCP: NLB only)",
            example="HTTP",
        ),
        path=string(
            "the HTTP path",
            default="/",
            pattern=HEALTH_PATH_RE.pattern,
            rule="a path starting with / of at most 1024 printable characters",
            example="/healthz",
        ),
        # `matcher: 200` reads as an integer in YAML, with the same meaning as "200"
        matcher=either(
            "HTTP codes of a healthy target",
            string(
                "HTTP codes",
                pattern=MATCHER_RE.pattern,
                rule='HTTP codes such as "200", "200,202" or "200-299"',
            ),
            integer("one HTTP code", 200, 599),
            default="200",
            example="200-299",
        ),
        interval=integer("seconds", 5, 300, default=30, aws=TG, example=10),
        timeout=integer(
            "seconds, below interval (a Network Load Balancer's default: 6 for HTTP, 10 "
            "for TCP and HTTPS)",
            2,
            120,
            default=5,
            aws=TG,
            example=4,
        ),
        healthy_threshold=integer("checks", 2, 10, default=5, aws=TG, example=3),
        unhealthy_threshold=integer("checks", 2, 10, default=2, aws=TG, example=3),
    ),
    deregistration_delay=integer(
        "seconds",
        0,
        3600,
        default=300,
        aws="target group deregistration_delay.timeout_seconds 0-3600",
        example=15,
    ),
)
TARGET_HEALTH = ROUTING.keys["health_check"]
LISTENER = ROUTING.keys["listener"]
# `routing:` one entry, or a list of up to five (one target group each)
ROUTES = either(
    "the service behind the cluster's load balancer: one entry, or a list of entries (one "
    "target group each, e.g. one per container port)",
    ROUTING,
    strings(
        "routing entries",
        ROUTING,
        min_items=1,
        max_items=MAX_TARGET_GROUPS,
        aws=f"at most {MAX_TARGET_GROUPS} target groups per ECS service",
    ),
)
# PlacementStrategy: random, spread by instanceId/host/attribute:NAME, binpack by cpu/memory
# (ECS API reference, API_PlacementStrategy); the attribute name as ECS attributes allow.
STRATEGY_RE = lazy(
    r"random|spread:(?:instanceId|host|attribute:[!-~]{1,245})|binpack:(?:cpu|memory)"
)
# PlacementConstraint: distinctInstance, or memberOf with a cluster query expression (its
# length, at most MEMBER_OF_MAX once trimmed, is checked by placement_of).
CONSTRAINT_RE = lazy(r"distinctInstance|memberOf:\s*\S[\s\S]*")
PLACEMENT = obj(
    "task placement",
    order=("strategy", "constraints"),
    strategy=strings(
        "random, spread:FIELD or binpack:cpu|memory",
        string("a strategy", pattern=STRATEGY_RE.pattern),
        max_items=MAX_STRATEGIES,
        aws=f"at most {MAX_STRATEGIES}",
        example=["spread:instanceId"],
    ),
    constraints=strings(
        "distinctInstance or memberOf:EXPRESSION",
        string("a constraint", pattern=CONSTRAINT_RE.pattern),
        max_items=MAX_CONSTRAINTS,
        aws=f"at most {MAX_CONSTRAINTS}; expressions of {MEMBER_OF_MAX} characters",
        example=["distinctInstance"],
    ),
)
_MATCHER_TEXT = TARGET_HEALTH.keys["matcher"].any_of[0]
# container: a name looked up (E108); port: one the container maps (E152)
_ROUTING_OWN = ("container", "port")


_STRATEGY = member(PLACEMENT.keys["strategy"])
_CONSTRAINT = member(PLACEMENT.keys["constraints"])


def _error(issues: list[Issue], path: Path, code: str, message: str) -> None:
    issues.append(Issue(path, code, message))


def _strings(
    value: object, path: Path, issues: list[Issue], pattern: re.Pattern[str], rule: str
) -> tuple[str, ...]:
    if not isinstance(value, list):
        _error(issues, path, s.E_TYPE, f"expected a list, got {s.type_name(value)}")
        return ()
    items = [s.check_pattern(v, (*path, i), issues, pattern, rule) for i, v in enumerate(value)]
    return tuple(i for i in items if i is not None)


# -- the cluster's `load_balancer:` ------------------------------------------------------

# ALB-only keys: the HTTP/HTTPS listeners and an existing listener. A Network Load
# Balancer's listeners are its routing entries' (`routing: {listener: ...}`).
ALB_KEYS = ("http", "https", "redirect_http_to_https", "listener_arn")
LOAD_BALANCER = obj(
    "the cluster's load balancer: an Application Load Balancer (created, or an existing "
    "listener) or a Network Load Balancer (`type: network`)",
    order=(
        "type",
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
    type=enum(
        "application (HTTP/HTTPS, listener rules) or network (TCP/TLS/UDP listeners, one per "
        "routing entry); changing it replaces the load balancer (H105)",
        TYPES,
        default="application",
        aws="ELBv2 LoadBalancer Type (create-only)",
        example="application",
    ),
    scheme=enum(
        "internet-facing or internal (changing it replaces the load balancer)",
        SCHEMES,
        default="internet-facing",
        example="internet-facing",
    ),
    vpc=string(
        "the VPC of the target groups (required)",
        pattern=VPC_RE.pattern,
        rule="a VPC id such as vpc-0a1b2c3d",
        example="vpc-0a1b2c3d",
    ),
    subnets=strings(
        "the load balancer's subnets (an ALB: two at least; an NLB: one or more); the "
        "cluster's by default",
        string(
            "a subnet id", pattern=SUBNET_RE.pattern, rule="a subnet id such as subnet-0a1b2c3d"
        ),
        example=["subnet-0a1b2c3d", "subnet-0a1b2c3e"],
    ),
    security_groups=req(
        strings(
            "the load balancer's security groups (an NLB's only at creation: docs/aws.md)",
            string(
                "a security group id",
                pattern=SG_RE.pattern,
                rule="a security group id such as sg-0a1b2c3d",
            ),
            min_items=1,
            aws="a Network Load Balancer created without security groups can never have any",
            example=["sg-0b1b2c3d"],
        )
    ),
    http=boolean("an HTTP listener on port 80 (ALB)", True, example=True),
    https=obj(
        "an HTTPS listener on port 443 (ALB)",
        order=("certificate_arn", "ssl_policy"),
        certificate_arn=req(CERTIFICATE),
        ssl_policy=SSL_POLICY,
    ),
    redirect_http_to_https=boolean("port 80 redirects to 443 (ALB)", False, example=True),
    listener_arn=string(
        "an existing ALB listener to add the rules to (instead of a new ALB)",
        pattern=LISTENER_ARN_RE.pattern,
        rule="an Application Load Balancer listener ARN "
        "(arn:aws:elasticloadbalancing:REGION:ACCOUNT:listener/app/NAME/ID/ID)",
    ),
    access_logs=obj(
        "access logs to S3 (the bucket's policy must let ELB write to it; an NLB logs its "
        "TLS listeners only)",
        order=("bucket", "prefix"),
        bucket=req(
            string(
                "the S3 bucket",
                pattern=LOG_BUCKET_RE.pattern,
                rule="an S3 bucket name (3-63 of a-z 0-9 . -)",
                example="acme-alb-logs",
            )
        ),
        prefix=string(
            "a key prefix (no leading or trailing /, no AWSLogs)",
            pattern=LOG_PREFIX_RE.pattern,
            rule="a key prefix without a leading or trailing / and without AWSLogs",
            example="prod",
        ),
    ),
    deletion_protection=boolean(
        "the load balancer refuses deletion (destroy then fails until it is turned off)",
        False,
        example=False,
    ),
)
_LB_OWN = ("vpc",)  # its absence has its own message


def load_balancer(value: object, path: Path, issues: list[Issue]) -> LoadBalancer | None:
    m = keys(LOAD_BALANCER, value, path, issues)
    if m is None:
        return None
    before = len(issues)
    v = values(LOAD_BALANCER, m, path, issues, own=_LB_OWN)
    groups = (
        texts(LOAD_BALANCER, m, "security_groups", path, issues) if "security_groups" in m else ()
    )
    # Target groups of instances need their VPC (cfn-lint E3681, CreateTargetGroup VpcId),
    # whoever owns the load balancer.
    if "vpc" not in m and not refused(issues, (*path, "vpc")):
        _error(
            issues,
            path,
            s.E_MISSING,
            "missing required key 'vpc' (the VPC of the instances: target groups need it)",
        )
    vpc = check(LOAD_BALANCER.keys["vpc"], m["vpc"], (*path, "vpc"), issues) if "vpc" in m else None
    subnets = texts(LOAD_BALANCER, m, "subnets", path, issues)
    https = (
        section(LOAD_BALANCER.keys["https"], m["https"], (*path, "https"), issues)
        if m.get("https") is not None
        else None
    )
    access_logs = (
        section(LOAD_BALANCER.keys["access_logs"], m["access_logs"], (*path, "access_logs"), issues)
        if "access_logs" in m
        else None
    )
    kind = v.get("type")
    if kind == "network":
        for key in ALB_KEYS:
            if key in m:
                _error(
                    issues,
                    (*path, key),
                    "E184",
                    f"{key} is an Application Load Balancer's; a Network Load Balancer's "
                    "listeners are its services' routing entries (routing: {listener: "
                    "{port, protocol}}): remove it, or use type: application",
                )
    if len(issues) != before or vpc is None or not complete(LOAD_BALANCER, v, _LB_OWN):
        return None
    logs = None
    if access_logs is not None:
        logs = (as_str(access_logs["bucket"]), str(access_logs.get("prefix", "")))
    if "listener_arn" in m:
        # An existing listener: the load balancer is someone else's; only its security
        # groups matter here (the instances admit the first one).
        for key in (
            "type",
            "scheme",
            "subnets",
            "http",
            "https",
            "redirect_http_to_https",
            "access_logs",
            "deletion_protection",
        ):
            if key in m:
                _error(
                    issues,
                    (*path, key),
                    "E112",
                    f"{key} describes a load balancer nixecs creates; with listener_arn the "
                    "load balancer exists already: remove one of the two",
                )
        if len(issues) != before:
            return None
        return LoadBalancer(
            security_groups=groups,
            path=path,
            vpc=as_str(vpc),
            listener_arn=as_str(m["listener_arn"]),
        )
    network = kind == "network"
    # CreateLoadBalancer: an Application Load Balancer needs subnets in at least two
    # Availability Zones (two distinct subnets is what can be checked offline); a Network
    # Load Balancer "can specify subnets from one or more Availability Zones" (the
    # AWS::ElasticLoadBalancingV2::LoadBalancer Subnets property, cfn-lint's registry schema).
    if "subnets" in m and len(set(subnets)) < 2 and not network:
        _error(
            issues,
            (*path, "subnets"),
            "E159",
            "an Application Load Balancer needs at least two subnets, in two Availability Zones",
        )
        return None
    certificate = as_str(https["certificate_arn"]) if https is not None else None
    ssl_policy = str(https["ssl_policy"]) if https is not None and "ssl_policy" in https else None
    http = v["http"] is True and not network
    redirect = v["redirect_http_to_https"] is True
    if not network and not http and certificate is None:
        _error(issues, path, "E159", "no listener: set http: true or https: {certificate_arn: ...}")
        return None
    if (
        redirect
        and (certificate is None or not http)
        and not refused(issues, (*path, "https"))
        and not refused(issues, (*path, "http"))
    ):
        _error(
            issues,
            (*path, "redirect_http_to_https"),
            "E159",
            "redirecting HTTP to HTTPS needs both listeners: http: true and https: {certificate_arn: ...}",
        )
        return None
    return LoadBalancer(
        security_groups=groups,
        path=path,
        type=as_str(kind),
        vpc=as_str(vpc),
        scheme=as_str(v["scheme"]),
        subnets=subnets,
        http=http,
        certificate_arn=certificate,
        ssl_policy=ssl_policy,
        redirect_http_to_https=redirect,
        access_logs=logs,
        deletion_protection=v["deletion_protection"] is True,
    )


def load_balancer_subnets(lb: LoadBalancer, cluster_subnets: tuple[str, ...]) -> tuple[str, ...]:
    """The ALB's subnets: its own, or the cluster's."""
    return lb.subnets or cluster_subnets


# -- a service's keys -------------------------------------------------------------------


def routed_targets(service: Service, protocol: str = "tcp") -> dict[str, tuple[int, ...]]:
    """Container name → the container ports it maps over `protocol`, in the order written:
    what a target group can forward to. The one place that knows the container model
    (nixecs.fleet.containers)."""
    return {
        c.name: tuple(p.container_port for p in c.ports if p.protocol == protocol)
        for c in service.containers
    }


def _host_ports(service: Service, container: str, port: int) -> dict[str, int]:
    """protocol → the host port (0: dynamic) `container` maps `port` to."""
    return {
        p.protocol: p.host_port
        for c in service.containers
        if c.name == container
        for p in c.ports
        if p.container_port == port
    }


def service_extras(
    m: dict[str, object], path: Path, service: Service, issues: list[Issue]
) -> Service | None:
    """`service` with its routing, placement and deployment; None after an error."""
    before = len(issues)
    routes = (
        routes_of(m["routing"], (*path, "routing"), service, issues)
        if m.get("routing") is not None
        else ()
    )
    placement = (
        placement_of(m["placement"], (*path, "placement"), issues)
        if m.get("placement") is not None
        else DEFAULT_PLACEMENT
    )
    written = m.get("deployment")
    deployment = deployment_of(
        written if written is not None else {},
        (*path, "deployment"),
        # Written counts, valid or not (refused as null too): a mistake in `routing:` is
        # reported there, once, not again as "add routing" on every key that needs it.
        "routing" in m or refused(issues, (*path, "routing")),
        issues,
    )
    if deployment is not None and routes and deployment.health_check_grace_period is None:
        deployment = dataclasses.replace(deployment, health_check_grace_period=DEFAULT_GRACE_PERIOD)
    enable_exec = (
        s.check_bool(m["enable_execute_command"], (*path, "enable_execute_command"), issues)
        if "enable_execute_command" in m
        else False
    )
    if len(issues) != before or routes is None or placement is None or deployment is None:
        return None
    return dataclasses.replace(
        service,
        routes=routes,
        placement=placement,
        deployment=deployment,
        enable_execute_command=bool(enable_exec),
    )


def routes_of(
    value: object, path: Path, service: Service, issues: list[Issue]
) -> tuple[Routing, ...] | None:
    """`routing:` as one entry or a list of entries (ROUTES)."""
    if not isinstance(value, list):
        one = routing_of(value, path, service, issues)
        return None if one is None else (one,)
    before = len(issues)
    if not value:
        _error(issues, path, s.E_VALUE, "must not be empty")
    elif len(value) > MAX_TARGET_GROUPS:
        _error(
            issues,
            path,
            s.E_VALUE,
            f"{len(value)} routing entries; an ECS service has at most {MAX_TARGET_GROUPS} "
            "target groups",
        )
    entries = [routing_of(item, (*path, i), service, issues) for i, item in enumerate(value)]
    if len(issues) != before:
        return None
    return tuple(e for e in entries if e is not None)


def _listener(m: dict[str, object], path: Path, issues: list[Issue]) -> Listener | None:
    where = (*path, "listener")
    v = section(LISTENER, m["listener"], where, issues)
    if v is None or not complete(LISTENER, v):
        return None
    protocol = as_str(v["protocol"])
    certificate = v.get("certificate_arn")
    if refused(issues, (*where, "protocol")):
        return None  # what the listener is was not said: its TLS keys cannot be judged
    if (
        protocol == "TLS"
        and certificate is None
        and not refused(issues, (*where, "certificate_arn"))
    ):
        _error(
            issues,
            where,
            "E186",
            "a TLS listener needs its certificate: certificate_arn (ACM or IAM)",
        )
        return None
    for key in ("certificate_arn", "ssl_policy"):
        if key in v and protocol != "TLS":
            _error(
                issues, (*where, key), "E186", f"{key} is a TLS listener's: protocol is {protocol}"
            )
            return None
    return Listener(
        as_int(v["port"]),
        protocol,
        None if certificate is None else as_str(certificate),
        None if v.get("ssl_policy") is None else as_str(v["ssl_policy"]),
    )


def routing_of(value: object, path: Path, service: Service, issues: list[Issue]) -> Routing | None:
    """One routing entry. Whether it is an ALB's (priority, conditions) or an NLB's
    (listener) is judged against the cluster's load balancer by `check_cluster`."""
    m = keys(ROUTING, value, path, issues)
    if m is None:
        return None
    before = len(issues)
    v = values(ROUTING, m, path, issues, own=_ROUTING_OWN)
    priority = v.get("priority")
    paths = texts(ROUTING, m, "path_patterns", path, issues)
    hosts = texts(ROUTING, m, "host_headers", path, issues)
    listener = _listener(m, path, issues) if m.get("listener") is not None else None
    if len(issues) == before:
        for key, given in (("path_patterns", paths), ("host_headers", hosts)):
            if len(given) > MAX_VALUES_PER_CONDITION:
                _error(
                    issues,
                    (*path, key),
                    "E155",
                    f"{len(given)} {key}; a rule condition takes at most {MAX_VALUES_PER_CONDITION} values",
                )
        if len(paths) + len(hosts) > MAX_VALUES_PER_RULE:
            _error(
                issues,
                path,
                "E155",
                f"{len(paths) + len(hosts)} path_patterns and host_headers together; a listener "
                f"rule takes at most {MAX_VALUES_PER_RULE} values",
            )
    udp = listener is not None and listener.protocol in ("UDP", "TCP_UDP")
    targets = routed_targets(service, "udp" if udp else "tcp")
    # Default: the first container that maps a port (over UDP for a UDP listener), and that
    # container's first such port.
    default = next((name for name, ports in targets.items() if ports), next(iter(targets), None))
    container = (
        s.check_str(m["container"], (*path, "container"), issues)
        if "container" in m
        else (default or service.name)
    )
    known = container is not None and container in targets
    if container is not None and not known:
        _error(
            issues,
            (*path, "container"),
            "E108",
            f"no container {container!r} in service {service.name!r} "
            f"(containers: {', '.join(targets) or 'none'})",
        )
    ports = targets.get(container or "", ())
    port = (
        check(ROUTING.keys["port"], m["port"], (*path, "port"), issues)
        if "port" in m
        else (ports[0] if ports else None)
    )
    kind = "UDP " if udp else ""
    if known and not ports and not refused_below(issues, service.path, ("port", "ports")):
        _error(
            issues,
            path,
            "E152",
            f"container {container!r} of service {service.name!r} maps no {'UDP' if udp else 'TCP'} port: give it "
            "one (`port:`, or `ports:` in `containers:`) for the load balancer to forward to",
        )
    elif known and port is not None and port not in ports:
        _error(
            issues,
            (*path, "port"),
            "E152",
            f"container {container!r} maps {kind}port{'s' if len(ports) > 1 else ''} "
            f"{', '.join(map(str, ports))}, not {port}",
        )
    host_port = 0
    if known and isinstance(port, int) and port in ports and container is not None:
        mapped = _host_ports(service, container, port)
        host_port = mapped.get("udp" if udp else "tcp", 0)
        if udp and (mapped.get("tcp") is None or not host_port or mapped["tcp"] != host_port):
            # ECS registers one host port per task; a UDP target group is health checked
            # over TCP (HTTP/HTTPS/TCP only: CreateTargetGroup HealthCheckProtocol) on that
            # port, and a dynamic host port is chosen per protocol.
            assert listener is not None
            _error(
                issues,
                (*path, "port"),
                "E186",
                f"a {listener.protocol} listener forwards to one host port that its target group "
                f"health checks over TCP: container {container!r} must map port {port} over "
                "both udp and tcp to one fixed host_port (e.g. ports: [{container_port: "
                f"{port}, protocol: udp, host_port: {port}}}, {{container_port: {port}, "
                f"host_port: {port}}}])",
            )
    written = m.get("health_check")
    health = health_check_of(
        written if written is not None else {},
        (*path, "health_check"),
        issues,
        network=listener is not None,
    )
    if (
        len(issues) != before
        or container is None
        or port is None
        or health is None
        or not complete(ROUTING, v, _ROUTING_OWN)
    ):
        return None
    return Routing(
        container,
        as_int(port),
        as_int(priority) if priority is not None else 0,
        paths,
        hosts,
        health,
        as_int(v["deregistration_delay"]),
        path,
        listener=listener,
        host_port=host_port,
        udp=udp,
    )


def health_check_of(
    value: object, path: Path, issues: list[Issue], *, network: bool = False
) -> HealthCheck | None:
    """`health_check:` (`{}` when left out: the declared defaults; a Network Load
    Balancer's protocol, timeout and matcher default to AWS's for it)."""
    written = keys(TARGET_HEALTH, value, path, issues)
    if written is None:
        return None
    before = len(issues)
    v = values(TARGET_HEALTH, written, path, issues)
    if refused(issues, (*path, "protocol")):
        return None  # the protocol the other keys depend on was not said (reported there)
    protocol = as_str(v.get("protocol", "TCP" if network else "HTTP"))
    if protocol == "TCP" and not network:
        _error(
            issues,
            (*path, "protocol"),
            "E187",
            "an Application Load Balancer health checks over HTTP or HTTPS (TCP is a Network "
            "Load Balancer's)",
        )
    if protocol == "TCP":
        for key in ("path", "matcher"):
            if key in written:
                _error(
                    issues,
                    (*path, key),
                    "E187",
                    f"{key} is an HTTP health check's: set protocol: HTTP (or HTTPS), or remove it",
                )
    raw = v["matcher"] if "matcher" in written or not network else NLB_MATCHER
    # the codes as text (an integer is one code: the range below is checked for both forms)
    matcher = check(
        _MATCHER_TEXT, str(raw) if type(raw) is int else raw, (*path, "matcher"), issues
    )
    if isinstance(matcher, str):
        codes = [int(c) for c in re.split(r"[,-]", matcher)]
        # Matcher HttpCode: an ALB's 200-499, an NLB's 200-599 (botocore elbv2 Matcher)
        high = 599 if network else 499
        if any(not 200 <= c <= 599 for c in codes):
            _error(issues, (*path, "matcher"), s.E_VALUE, f"{matcher!r}: HTTP codes are 200-599")
        elif any(not 200 <= c <= high for c in codes):
            _error(
                issues,
                (*path, "matcher"),
                "E187",
                f"{matcher!r}: an Application Load Balancer matches HTTP codes 200-{high}",
            )
    interval = v.get("interval")
    timeout = v.get("timeout")
    if network and "timeout" not in written:
        timeout = NLB_TIMEOUT[protocol]
    if isinstance(interval, int) and isinstance(timeout, int) and timeout >= interval:
        # CreateTargetGroup refuses it: a check must time out before the next one starts.
        _error(
            issues,
            (*path, "timeout"),
            "E154",
            f"timeout {timeout} s must be less than the interval {interval} s"
            + ("" if "timeout" in written else " (AWS's default timeout for this protocol)"),
        )
    if len(issues) != before or not complete(TARGET_HEALTH, v):
        return None
    return HealthCheck(
        as_str(v["path"]),
        as_str(matcher),
        as_int(v["interval"]),
        as_int(timeout),
        as_int(v["healthy_threshold"]),
        as_int(v["unhealthy_threshold"]),
        protocol,
    )


def _bounded_list(m: dict[str, object], key: str, path: Path, issues: list[Issue]) -> list[object]:
    """`m[key]` as a list (empty when absent or not a list: reported), its length checked
    against the limit ECS sets (PLACEMENT's)."""
    raw = m.get(key, [])
    if not isinstance(raw, list):
        _error(issues, (*path, key), s.E_TYPE, f"expected a list, got {s.type_name(raw)}")
        return []
    maximum, noun = PLACEMENT.keys[key].max_items, "strategies" if key == "strategy" else key
    if maximum is not None and len(raw) > maximum:
        _error(issues, (*path, key), s.E_VALUE, f"{len(raw)} {noun}; ECS allows at most {maximum}")
    return raw


def placement_of(value: object, path: Path, issues: list[Issue]) -> Placement | None:
    m = keys(PLACEMENT, value, path, issues)
    if m is None:
        return None
    before = len(issues)
    strategies: list[tuple[str, str | None]] = []
    raw = _bounded_list(m, "strategy", path, issues)
    for index, item in enumerate(raw):
        where = (*path, "strategy", index)
        text = s.check_str(item, where, issues)
        if text is None:
            continue
        if _STRATEGY.regex().fullmatch(text):
            kind, _, field = text.partition(":")
            strategies.append((kind, field or None))
        else:
            _error(
                issues,
                where,
                s.E_VALUE,
                f"{text!r} is not a placement strategy: random, spread:instanceId, "
                "spread:attribute:NAME (e.g. spread:attribute:ecs.availability-zone), "
                "binpack:cpu or binpack:memory",
            )
    constraints: list[tuple[str, str | None]] = []
    raw = _bounded_list(m, "constraints", path, issues)
    for index, item in enumerate(raw):
        where = (*path, "constraints", index)
        text = s.check_str(item, where, issues)
        if text is None:
            continue
        kind, _, expression = text.partition(":")
        if _CONSTRAINT.regex().fullmatch(text) and len(expression.strip()) <= MEMBER_OF_MAX:
            constraints.append((kind, expression.strip() or None))
        else:
            _error(
                issues,
                where,
                s.E_VALUE,
                f"{text!r} is not a placement constraint: distinctInstance or memberOf:EXPRESSION "
                "(a cluster query expression of at most 2000 characters)",
            )
    if len(issues) != before:
        return None
    return Placement(tuple(strategies), tuple(constraints))


def deployment_of(
    value: object, path: Path, routed: bool, issues: list[Issue]
) -> Deployment | None:
    """`deployment:` (`{}` when left out: the declared defaults)."""
    written_keys = keys(DEPLOYMENT, value, path, issues)
    if written_keys is None:
        return None
    before = len(issues)
    m = values(DEPLOYMENT, written_keys, path, issues)
    low, high = m.get("minimum_healthy_percent"), m.get("maximum_percent")
    if isinstance(low, int) and isinstance(high, int) and high <= low:
        _error(
            issues,
            (*path, "maximum_percent"),
            "E158",
            f"maximum_percent {high} must be above minimum_healthy_percent {low}: otherwise a "
            "deployment can neither start a new task nor stop an old one",
        )
    written = m.get("circuit_breaker")
    breaker = section(
        DEPLOYMENT.keys["circuit_breaker"],
        written if written is not None else {},
        (*path, "circuit_breaker"),
        issues,
    )
    if (
        breaker is not None
        and breaker.get("enable") is False
        and isinstance(written, dict)
        and written.get("rollback") is True
    ):
        _error(
            issues,
            (*path, "circuit_breaker", "rollback"),
            "E112",
            "rollback needs the circuit breaker: set enable: true or drop rollback",
        )
    grace = m.get("health_check_grace_period")
    if "health_check_grace_period" in m and not routed:
        _error(
            issues,
            (*path, "health_check_grace_period"),
            "E112",
            "a health check grace period is for load balanced services: add routing or remove it",
        )
    alarms = (
        deploy_alarms.parse(m["alarms"], (*path, "alarms"), issues, routed)
        if m.get("alarms") is not None
        else None
    )
    if len(issues) != before or breaker is None or not complete(DEPLOYMENT, m):
        return None
    assert isinstance(low, int) and isinstance(high, int)
    enable = breaker.get("enable") is True
    deployment = Deployment(
        low,
        high,
        enable,
        enable and breaker.get("rollback") is True,
        grace if isinstance(grace, int) else None,
    )
    return deploy_alarms.apply(deployment, alarms)


# -- checks across services -------------------------------------------------------------


def listener_keys(cluster: Cluster) -> tuple[str, ...]:
    """The listeners a cluster's rules attach to, as keys unique in the fleet: the existing
    listener's ARN, or this cluster's HTTPS and/or HTTP listener. (With
    redirect_http_to_https the HTTP listener only redirects: rules go on HTTPS.)"""
    lb = cluster.load_balancer
    if lb is None:
        return ()
    if lb.listener_arn is not None:
        return (lb.listener_arn,)
    if lb.network:
        return ()
    keys = []
    if lb.https:
        keys.append(f"{cluster.name}/https")
    if lb.http and not lb.redirect_http_to_https:
        keys.append(f"{cluster.name}/http")
    return tuple(keys)


def check_cluster(cluster: Cluster, issues: list[Issue]) -> None:
    lb = cluster.load_balancer
    if (
        lb is not None
        and lb.listener_arn is None
        and not lb.network
        and len(set(load_balancer_subnets(lb, cluster.subnets))) < 2
    ):
        _error(
            issues,
            lb.path,
            "E159",
            "an Application Load Balancer needs at least two subnets, in two Availability "
            "Zones: the cluster has one; give the load balancer its own `subnets:`",
        )
    for service in cluster.services.values():
        group = cluster.groups.get(service.group)
        if service.enable_execute_command and group is not None and not group.exec:
            _error(
                issues,
                (*service.path, "enable_execute_command"),
                "E157",
                f"ECS Exec needs a host that provides it, and group {group.name!r} does not say "
                "so: the ECS agent advertises ecs.capability.execute-command only when the SSM "
                "agent binaries lie under /managed-agents/execute-command; set "
                "nixecs.ecs.exec.enable = true in the host's configuration and `exec: true` on "
                "the group (or reach the host with Session Manager and use docker exec)",
            )
        for routing in service.routes:
            if lb is None:
                _error(
                    issues,
                    (*routing.path,),
                    "E150",
                    f"service {service.name!r} has routing but cluster {cluster.name!r} has no "
                    "load_balancer: add one (or listener_arn of an existing listener)",
                )
            else:
                check_routing_type(lb, routing, issues)
        if lb is not None and lb.network and service.deployment.alarm_http_5xx is not None:
            _error(
                issues,
                (*service.path, "deployment", "alarms", "http_5xx"),
                "E184",
                "http_5xx watches HTTPCode_Target_5XX_Count, an Application Load Balancer's "
                "metric: a Network Load Balancer counts no HTTP responses (use unhealthy_hosts)",
            )
        for tracking in service.scaling.target_tracking if service.scaling else ():
            if tracking.metric != "requests":
                continue
            if service.routing is None:
                _error(
                    issues,
                    (*tracking.path, "metric"),
                    "E156",
                    "target tracking on requests (ALBRequestCountPerTarget) needs the service's "
                    "target group: add routing",
                )
            elif lb is not None and lb.network:
                _error(
                    issues,
                    (*tracking.path, "metric"),
                    "E156",
                    "target tracking on requests is ALBRequestCountPerTarget, an Application "
                    "Load Balancer's metric: a Network Load Balancer's target group has none "
                    "(track cpu or memory, or a custom metric)",
                )


def check_routing_type(lb: LoadBalancer, routing: Routing, issues: list[Issue]) -> None:
    """A routing entry against its load balancer's type: an ALB's has a priority and
    conditions (a listener rule), an NLB's a listener of its own (E184 a key of the other
    type, E153 a rule without conditions)."""
    if lb.network:
        if routing.listener is None:
            _error(
                issues,
                routing.path,
                "E184",
                "a Network Load Balancer forwards by listener: give this entry "
                "`listener: {port, protocol}`",
            )
        for key, given in (
            ("priority", routing.priority),
            ("path_patterns", routing.path_patterns),
            ("host_headers", routing.host_headers),
        ):
            if given:
                _error(
                    issues,
                    (*routing.path, key),
                    "E184",
                    f"{key} describes an Application Load Balancer's listener rule; a Network "
                    "Load Balancer has no rules: remove it",
                )
        return
    if routing.listener is not None:
        _error(
            issues,
            (*routing.path, "listener"),
            "E184",
            "listener is a Network Load Balancer's (type: network); an Application Load "
            "Balancer routes by priority and path_patterns/host_headers",
        )
        return
    if routing.health_check.protocol == "TCP":
        return  # reported by the loader (E187)
    if not routing.priority:
        _error(issues, routing.path, s.E_MISSING, "missing required key 'priority'")
    if not routing.path_patterns and not routing.host_headers:
        _error(
            issues,
            routing.path,
            "E153",
            "a listener rule needs a condition: give path_patterns, host_headers or both",
        )


def check_fleet(clusters: dict[str, Cluster], issues: list[Issue]) -> None:
    """Listener rule priorities are unique within a listener (CreateRule: PriorityInUse),
    across clusters too when they attach to one existing listener; the load balancer's
    ingress to the instances has one owner (E168)."""
    check_ingress_owners(clusters, issues)
    seen: dict[tuple[str, int], str] = {}
    for cluster in clusters.values():
        ports: dict[int, str] = {}
        network = cluster.load_balancer is not None and cluster.load_balancer.network
        for name in sorted(cluster.services):
            for index, routing in enumerate(cluster.services[name].routes):
                me = f"{cluster.name}/{name}" + (f" (routing entry {index})" if index else "")
                if network and routing.listener is not None:
                    # CreateListener: DuplicateListener, one listener per port
                    owner = ports.setdefault(routing.listener.port, me)
                    if owner != me:
                        _error(
                            issues,
                            (*routing.path, "listener", "port"),
                            "E185",
                            f"listener port {routing.listener.port} is already service "
                            f"{owner}'s: a load balancer has one listener per port",
                        )
                    continue
                for listener in listener_keys(cluster):
                    owner = seen.setdefault((listener, routing.priority), me)
                    if owner != me:
                        _error(
                            issues,
                            (*routing.path, "priority"),
                            "E151",
                            f"priority {routing.priority} is already used by service {owner} "
                            "on the same listener: listener rule priorities must be unique",
                        )


def check_ingress_owners(clusters: dict[str, Cluster], issues: list[Issue]) -> None:
    """Each cluster with routed services renders the rule admitting its load balancer's first
    security group to its instances' first one (cloudformation/loadbalancer.py). Two clusters
    with the same pair would render the same rule twice: EC2 refuses the second,
    "InvalidPermission.Duplicate: the specified rule already exists" (AuthorizeSecurityGroupIngress,
    https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html), and deleting
    either stack would revoke the rule the other relies on. So the pair has one owner."""
    owners: dict[tuple[str, str], str] = {}
    for cluster in clusters.values():
        lb = cluster.load_balancer
        if lb is None or not cluster.security_groups or not lb.security_groups:
            continue
        if not any(service.routes for service in cluster.services.values()):
            continue
        pair = (cluster.security_groups[0], lb.security_groups[0])
        owner = owners.setdefault(pair, cluster.name)
        if owner != cluster.name:
            _error(
                issues,
                (*lb.path, "security_groups"),
                "E168",
                f"cluster {owner} already admits load balancer group {pair[1]} to instance "
                f"group {pair[0]}: both stacks would own the same ingress rule",
            )
