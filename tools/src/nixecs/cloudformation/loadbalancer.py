"""A cluster's load balancer: the load balancer, its listeners, the instances' ingress from
it, and per routing entry of a service a target group and its listener rule(s) (an
Application Load Balancer) or its own listener (a Network Load Balancer: TCP, TLS, UDP,
TCP_UDP; an NLB listener has no rules, its default action forwards to one target group).

Target groups have `TargetType: instance`: tasks run in bridge mode with host port 0, so ECS
registers each task as (instance, dynamic host port) — "Use an Application Load Balancer for
Amazon ECS", https://docs.aws.amazon.com/AmazonECS/latest/developerguide/alb.html. The host
port comes from the instance's ephemeral range: the agent reads
/proc/sys/net/ipv4/ip_local_port_range and falls back to 49153-65535 (amazon-ecs-agent
8dfceca6, agent/utils/ephemeral_ports_linux.go); Linux's default range is 32768-60999
(tools/tests/test_loadbalancing.py reads it from the running kernel). So the instances'
security group admits the load balancer on 32768-65535, which covers both.

That ingress goes into the cluster's first `security_groups:` entry (the instances' group),
from the load balancer's first security group: the ALB's network interfaces carry all its
groups, so one source group admits it. A dedicated instance group would need the VPC and a
second group on every launch template for no gain; the rule is the stack's own and goes
with it. docs/aws.md "Load balancing" says the same for users. A Network Load Balancer has
security groups too (since August 2023, and only when created with them: "If you create a
Network Load Balancer without associating any security groups, you can't associate them
with the load balancer later", "Update the security groups for your Network Load Balancer",
https://docs.aws.amazon.com/elasticloadbalancing/latest/network/load-balancer-security-groups.html),
so the same source group admits it; nixecs always creates an NLB with them. A routing entry
whose container port has a fixed host port outside that range (a UDP listener's) gets its
own rules for that port: TCP (the health checks), and UDP for a UDP listener.
"""

from __future__ import annotations

from ..fleet import loadbalancing
from ..fleet.model import Cluster, LoadBalancer, Routing, Service
from .context import Context, Resources
from .ids import (
    HTTP_LISTENER,
    HTTPS_LISTENER,
    LOAD_BALANCER,
    LOAD_BALANCER_INGRESS,
)
from .intrinsics import Json, get_att, ref, tags

EPHEMERAL_PORTS = (32768, 65535)
# The API's default for an HTTPS listener is ELBSecurityPolicy-2016-08 (TLS 1.0 and up); AWS
# recommends ELBSecurityPolicy-TLS13-1-2-2021-06, TLS 1.3 and 1.2 only, its console default
# ("Security policies for your Application Load Balancer",
# https://docs.aws.amazon.com/elasticloadbalancing/latest/application/describe-ssl-policies.html).
DEFAULT_SSL_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"
NOT_FOUND: dict[str, Json] = {
    "Type": "fixed-response",
    "FixedResponseConfig": {
        "StatusCode": "404",
        "ContentType": "text/plain",
        "MessageBody": "not found",
    },
}


def route_kind(kind: str, index: int) -> str:
    """The logical id kind of a routing entry's resource: the first entry's is the kind
    itself (the ids a single `routing:` always had), the others' numbered from 2."""
    return kind if index == 0 else f"{kind}{index + 1}"


def created(cluster: Cluster) -> LoadBalancer | None:
    """The cluster's load balancer when nixecs creates it (not an existing listener)."""
    lb = cluster.load_balancer
    return lb if lb is not None and lb.listener_arn is None else None


def load_balancer(ctx: Context) -> Resources:
    cluster = ctx.cluster
    lb = cluster.load_balancer
    if lb is None:
        return {}
    resources: Resources = {}
    if lb.listener_arn is None:
        resources[LOAD_BALANCER] = {
            "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
            "Properties": {
                # No Name: CloudFormation generates one within the 32 characters allowed.
                "Type": lb.type,
                "Scheme": lb.scheme,
                "Subnets": list(loadbalancing.load_balancer_subnets(lb, cluster.subnets)),
                "SecurityGroups": list(lb.security_groups),
                "LoadBalancerAttributes": attributes(lb),
                "Tags": tags(ctx.cluster_tags),
            },
        }
        if lb.https and not lb.network:
            https: dict[str, Json] = {
                "LoadBalancerArn": ref(LOAD_BALANCER),
                "Port": 443,
                "Protocol": "HTTPS",
                "Certificates": [{"CertificateArn": lb.certificate_arn}],
                "SslPolicy": lb.ssl_policy or DEFAULT_SSL_POLICY,
                "DefaultActions": [NOT_FOUND],
            }
            resources[HTTPS_LISTENER] = {
                "Type": "AWS::ElasticLoadBalancingV2::Listener",
                "Properties": https,
            }
        if lb.http and not lb.network:
            action: dict[str, Json] = (
                {
                    "Type": "redirect",
                    "RedirectConfig": {
                        "Protocol": "HTTPS",
                        "Port": "443",
                        "StatusCode": "HTTP_301",
                    },
                }
                if lb.redirect_http_to_https
                else NOT_FOUND
            )
            resources[HTTP_LISTENER] = {
                "Type": "AWS::ElasticLoadBalancingV2::Listener",
                "Properties": {
                    "LoadBalancerArn": ref(LOAD_BALANCER),
                    "Port": 80,
                    "Protocol": "HTTP",
                    "DefaultActions": [action],
                },
            }
    if any(s.routes for s in cluster.services.values()):
        resources[LOAD_BALANCER_INGRESS] = {
            "Type": "AWS::EC2::SecurityGroupIngress",
            "Properties": {
                "GroupId": cluster.security_groups[0],
                "SourceSecurityGroupId": lb.security_groups[0],
                "IpProtocol": "tcp",
                "FromPort": EPHEMERAL_PORTS[0],
                "ToPort": EPHEMERAL_PORTS[1],
                "Description": f"nixecs {cluster.name}: load balancer to dynamic host ports",
            },
        }
    return resources


def attributes(lb: LoadBalancer) -> list[dict[str, Json]]:
    """LoadBalancerAttributes (ELBv2 "Load balancer attributes", application-load-balancers):
    invalid header fields dropped — AWS Security Hub's ELB.4 asks for it, against request
    smuggling through malformed headers; access logs and deletion protection as the fleet
    file says (both off by default, as in the API)."""
    pairs = [] if lb.network else [("routing.http.drop_invalid_header_fields.enabled", "true")]
    pairs.append(("deletion_protection.enabled", "true" if lb.deletion_protection else "false"))
    if lb.access_logs is not None:
        bucket, prefix = lb.access_logs
        pairs += [("access_logs.s3.enabled", "true"), ("access_logs.s3.bucket", bucket)]
        if prefix:
            pairs.append(("access_logs.s3.prefix", prefix))
    return [{"Key": key, "Value": value} for key, value in pairs]


def listeners(ctx: Context) -> list[tuple[str, Json]]:
    """(rule kind, listener ARN) for each listener a service's rule goes on.

    The kind is keyed by the listener, never by which listeners exist: were it "the first
    listener's rule", adding HTTPS to an HTTP-only load balancer would move that logical id
    to the HTTPS listener (a replacement, ListenerArn being create-only) while a new HTTP
    rule took its priority before the cleanup deleted the old one: PriorityInUse. The same
    kind of defect — a rule of one listener derived from the other — was fixed in
    aws/copilot-cli PR 3769 ("determine http listener rule priority base on http listener":
    the HTTP rule's priority came from the HTTPS listener and was invalid when a service
    moved from HTTP to HTTPS). Upgrading a deployed HTTP-only stack from the former naming
    is itself such a transition; `deploy` makes it in two phases (transition.py, H102)."""
    lb = ctx.cluster.load_balancer
    if lb is None or lb.network:
        return []
    if lb.listener_arn is not None:
        return [("ListenerRule", lb.listener_arn)]
    found: list[tuple[str, Json]] = []
    if lb.https:
        found.append(("ListenerRule", ref(HTTPS_LISTENER)))
    if lb.http and not lb.redirect_http_to_https:
        found.append(("HttpListenerRule", ref(HTTP_LISTENER)))
    return found


def rule_ids(ctx: Context, service: Service) -> list[str]:
    """The logical ids of a service's listener rules, or its NLB listeners (the ECS service
    waits for them: they attach its target groups to the load balancer)."""
    ids = []
    for index, routing in enumerate(service.routes):
        if routing.listener is not None:
            ids.append(ctx.ids.service(service.name, route_kind("Listener", index)))
        else:
            ids += [
                ctx.ids.service(service.name, route_kind(kind, index)) for kind, _ in listeners(ctx)
            ]
    return ids


def resource_label(ctx: Context, service: Service) -> Json:
    """ALBRequestCountPerTarget's ResourceLabel: `app/NAME/ID/targetgroup/NAME/ID`, the final
    portions of the load balancer's and the target group's ARNs (Application Auto Scaling
    PredefinedMetricSpecification, https://docs.aws.amazon.com/autoscaling/application/APIReference/API_PredefinedMetricSpecification.html)."""
    assert service.routing is not None
    target_group = get_att(ctx.ids.service(service.name, "TargetGroup"), "TargetGroupFullName")
    return {"Fn::Join": ["/", [load_balancer_full_name(ctx), target_group]]}


def load_balancer_full_name(ctx: Context) -> Json:
    """`app/NAME/ID`: the created load balancer's LoadBalancerFullName, or that part of the
    existing listener's ARN (also the CloudWatch LoadBalancer dimension)."""
    lb = ctx.cluster.load_balancer
    assert lb is not None
    if lb.listener_arn is not None:
        match = loadbalancing.LISTENER_ARN_RE.fullmatch(lb.listener_arn)
        assert match is not None  # checked by the loader
        first: Json = match.group(1)
        return first
    return get_att(LOAD_BALANCER, "LoadBalancerFullName")


def service_routing(ctx: Context, service: Service) -> Resources:
    resources: Resources = {}
    if ctx.cluster.load_balancer is None:
        return resources
    for index, routing in enumerate(service.routes):
        resources.update(_route(ctx, service, index, routing))
    return resources


def _health_check(routing: Routing) -> dict[str, Json]:
    health = routing.health_check
    properties: dict[str, Json] = {
        "HealthCheckProtocol": health.protocol,
        # each task's own dynamic port (cfn-lint E3049: host port 0 needs traffic-port)
        "HealthCheckPort": "traffic-port",
        "HealthCheckIntervalSeconds": health.interval,
        "HealthCheckTimeoutSeconds": health.timeout,
        "HealthyThresholdCount": health.healthy_threshold,
        "UnhealthyThresholdCount": health.unhealthy_threshold,
    }
    if health.protocol != "TCP":
        properties["HealthCheckPath"] = health.path
        properties["Matcher"] = {"HttpCode": health.matcher}
    return properties


def _route(ctx: Context, service: Service, index: int, routing: Routing) -> Resources:
    lb = ctx.cluster.load_balancer
    assert lb is not None
    ids = ctx.ids
    target_group_id = ids.service(service.name, route_kind("TargetGroup", index))
    listener = routing.listener
    properties: dict[str, Json] = {
        "TargetType": "instance",
        "Protocol": "HTTP" if listener is None else listener.target_protocol,
        # ECS registers each task with its (dynamic) host port; this port is only the default.
        "Port": routing.port,
        **_health_check(routing),
        "TargetGroupAttributes": [
            {
                "Key": "deregistration_delay.timeout_seconds",
                "Value": str(routing.deregistration_delay),
            }
        ],
        "Tags": tags(ctx.service_tags(service)),
    }
    if lb.vpc is not None:
        properties["VpcId"] = lb.vpc
    resources: Resources = {
        target_group_id: {
            "Type": "AWS::ElasticLoadBalancingV2::TargetGroup",
            "Properties": properties,
        }
    }
    resources.update(_fixed_port_ingress(ctx, service, index, routing))
    forward: dict[str, Json] = {"Type": "forward", "TargetGroupArn": ref(target_group_id)}
    if listener is not None:
        spec: dict[str, Json] = {
            "LoadBalancerArn": ref(LOAD_BALANCER),
            "Port": listener.port,
            "Protocol": listener.protocol,
            "DefaultActions": [forward],
        }
        if listener.protocol == "TLS":
            spec["Certificates"] = [{"CertificateArn": listener.certificate_arn}]
            spec["SslPolicy"] = listener.ssl_policy or DEFAULT_SSL_POLICY
        resources[ids.service(service.name, route_kind("Listener", index))] = {
            "Type": "AWS::ElasticLoadBalancingV2::Listener",
            "Properties": spec,
        }
        return resources
    conditions: list[Json] = []
    if routing.host_headers:
        conditions.append(
            {"Field": "host-header", "HostHeaderConfig": {"Values": list(routing.host_headers)}}
        )
    if routing.path_patterns:
        conditions.append(
            {"Field": "path-pattern", "PathPatternConfig": {"Values": list(routing.path_patterns)}}
        )
    for kind, arn in listeners(ctx):
        resources[ids.service(service.name, route_kind(kind, index))] = {
            "Type": "AWS::ElasticLoadBalancingV2::ListenerRule",
            "Properties": {
                "ListenerArn": arn,
                "Priority": routing.priority,
                "Conditions": conditions,
                "Actions": [forward],
            },
        }
    return resources


def _fixed_port_protocols(routing: Routing) -> list[str]:
    """The protocols a routing entry's fixed host port needs its own ingress rule for: TCP
    below the dynamic range (the health checks, a TCP listener's traffic), UDP for a UDP
    listener."""
    port = routing.host_port
    protocols = []
    if port and port < EPHEMERAL_PORTS[0]:
        protocols.append("tcp")
    if port and routing.udp:
        protocols.append("udp")
    return protocols


def _ingress_owner(cluster: Cluster, port: int, protocol: str) -> tuple[str, int]:
    """The first (service, entry index), in name order, whose fixed host port needs the rule:
    the one that renders it. Two identical rules in one stack would be refused by EC2
    (InvalidPermission.Duplicate), as two stacks' are (E168, H106)."""
    return min(
        (name, index)
        for name, service in cluster.services.items()
        for index, routing in enumerate(service.routes)
        if routing.host_port == port and protocol in _fixed_port_protocols(routing)
    )


def _fixed_port_ingress(ctx: Context, service: Service, index: int, routing: Routing) -> Resources:
    """A fixed host port outside the rule for dynamic ports is admitted on its own, once per
    cluster (port, protocol)."""
    lb = ctx.cluster.load_balancer
    assert lb is not None
    port = routing.host_port
    resources: Resources = {}
    for protocol in _fixed_port_protocols(routing):
        if _ingress_owner(ctx.cluster, port, protocol) != (service.name, index):
            continue
        kind = route_kind(f"{protocol.capitalize()}Ingress", index)
        resources[ctx.ids.service(service.name, kind)] = {
            "Type": "AWS::EC2::SecurityGroupIngress",
            "Properties": {
                "GroupId": ctx.cluster.security_groups[0],
                "SourceSecurityGroupId": lb.security_groups[0],
                "IpProtocol": protocol,
                "FromPort": port,
                "ToPort": port,
                "Description": f"nixecs {ctx.cluster.name}: load balancer to {service.name} "
                f"port {port}/{protocol}",
            },
        }
    return resources


def ecs_service_properties(ctx: Context, service: Service) -> dict[str, Json]:
    """The ECS service's LoadBalancers (one per routing entry) and
    HealthCheckGracePeriodSeconds."""
    if not service.routes:
        return {}
    properties: dict[str, Json] = {
        "LoadBalancers": [
            {
                "ContainerName": routing.container,
                "ContainerPort": routing.port,
                "TargetGroupArn": ref(
                    ctx.ids.service(service.name, route_kind("TargetGroup", index))
                ),
            }
            for index, routing in enumerate(service.routes)
        ]
    }
    if service.deployment.health_check_grace_period is not None:
        properties["HealthCheckGracePeriodSeconds"] = service.deployment.health_check_grace_period
    return properties
