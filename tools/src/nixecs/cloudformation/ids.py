"""Logical IDs: alphanumeric, derived from fleet names, deterministic and collision-free.

A logical ID is `<Token><Kind>`: the CamelCase of the subject's names (`web-api` → `WebApi`)
followed by a fixed kind (`LaunchTemplate`, `TaskDefinition`, …). CamelCase loses
information — `web-1`, `web_1` and `Web1` all become `Web1`, and two subjects' tokens can
run into each other's kinds (service `a` + policy `b-alarm` vs service `a-b` + policy
`alarm`) — so every ID a cluster's template will use is computed up front, and every
subject involved in a clash gets a short hash of its exact names appended to its token.
The decision depends only on the set of names, never on their order, so the same fleet
always gets the same IDs, and a subject without a clash keeps its readable ID.
"""

from __future__ import annotations

from collections.abc import Iterable

from ..fleet.model import Cluster
from ..lazyre import lazy
from ..sha import sha256

# Every kind a builder may ask for, per subject type. `LogicalIds.get` refuses any other
# kind, so the clash analysis below always covers every ID the template contains.
GROUP_KINDS = (
    "InstanceRole",
    "InstanceProfile",
    "LaunchTemplate",
    "AutoScalingGroup",
    "CapacityProvider",
    "DrainHook",
    "AutoScalingGroupName",  # output
    "CapacityProviderName",  # output
)
# Per routing entry (loadbalancer.py): a Network Load Balancer's listener, and the rules
# admitting the load balancer to a fixed host port (TCP; UDP for a UDP listener).
ROUTE_KINDS = ("Listener", "TcpIngress", "UdpIngress")
MAX_ROUTES = 5  # loadbalancing.MAX_TARGET_GROUPS
SERVICE_KINDS = (
    "LogGroup",
    "ExecutionRole",
    "TaskRole",
    "TaskDefinition",
    "Service",
    "ScalableTarget",
    "TargetTrackingPolicy",
    "ServiceName",  # output
    "TargetGroup",  # loadbalancer.py
    # one rule per listener, keyed by the listener (loadbalancer.listeners): adding or
    # removing the other listener never moves a rule's logical id to another listener
    "ListenerRule",  # on the HTTPS listener, or on the existing listener_arn
    "HttpListenerRule",  # on the HTTP listener
    "Http5xxAlarm",  # deploy_alarms.py: deployment.alarms.http_5xx
    "UnhealthyHostsAlarm",  # deploy_alarms.py: deployment.alarms.unhealthy_hosts
    "Schedule",  # a cluster task's schedule (cluster_tasks.py)
    "SchedulerRole",
    *ROUTE_KINDS,
    # the second to fifth routing entries' (loadbalancer.route_kind)
    *(
        f"{kind}{n}"
        for kind in (
            "TargetGroup",
            "ListenerRule",
            "HttpListenerRule",
            "Http5xxAlarm",
            "UnhealthyHostsAlarm",
            *ROUTE_KINDS,
        )
        for n in range(2, MAX_ROUTES + 1)
    ),
)
# TargetTrackingPolicy: the second and later `target_tracking:` policies (scaling.py)
POLICY_KINDS = ("StepPolicy", "Alarm", "TargetTrackingPolicy")

# Cluster-level resources and outputs: one each per template.
CLUSTER = "Cluster"
CAPACITY_PROVIDER_ASSOCIATIONS = "ClusterCapacityProviders"
OUTPUT_CLUSTER_NAME = "ClusterName"
OUTPUT_CLUSTER_ARN = "ClusterArn"
# The cluster's Application Load Balancer (loadbalancer.py)
LOAD_BALANCER = "LoadBalancer"
HTTP_LISTENER = "HttpListener"
HTTPS_LISTENER = "HttpsListener"
LOAD_BALANCER_INGRESS = "LoadBalancerIngress"
OUTPUT_LOAD_BALANCER_DNS = "LoadBalancerDnsName"
# `notifications:` (notifications.py)
DEPLOYMENT_FAILED_RULE = "DeploymentFailedRule"
STOPPED_TASK_RULE = "StoppedTaskRule"
NOTIFICATION_TOPIC_POLICY = "NotificationTopicPolicy"
FIXED = (
    CLUSTER,
    CAPACITY_PROVIDER_ASSOCIATIONS,
    OUTPUT_CLUSTER_NAME,
    OUTPUT_CLUSTER_ARN,
    LOAD_BALANCER,
    HTTP_LISTENER,
    HTTPS_LISTENER,
    LOAD_BALANCER_INGRESS,
    OUTPUT_LOAD_BALANCER_DNS,
    DEPLOYMENT_FAILED_RULE,
    STOPPED_TASK_RULE,
    NOTIFICATION_TOPIC_POLICY,
)

_KINDS = {"group": GROUP_KINDS, "service": SERVICE_KINDS, "policy": POLICY_KINDS}
_SEPARATORS = lazy(r"[^A-Za-z0-9]+")
_HASH_START = 6

Subject = tuple[str, ...]  # ("group", name) | ("service", name) | ("policy", service, policy)


def camel(name: str) -> str:
    """`web-api_v2` → `WebApiV2`: the readable part of a logical ID (not injective)."""
    return "".join(part[:1].upper() + part[1:] for part in _SEPARATORS.split(name) if part)


def _digest(subject: Subject) -> str:
    # NUL cannot occur in a name, so the joined text identifies the subject exactly.
    return sha256("\0".join(subject).encode()).hexdigest()


class LogicalIds:
    """The logical IDs of one cluster's template."""

    def __init__(self, subjects: Iterable[Subject]) -> None:
        subjects = sorted(set(subjects))
        base = {s: "".join(camel(n) for n in s[1:]) or "X" for s in subjects}
        tokens = dict(base)
        length = dict.fromkeys(subjects, 0)
        while True:
            owners: dict[str, set[Subject | None]] = {fixed: {None} for fixed in FIXED}
            for subject in subjects:
                token = tokens[subject]
                for kind in _KINDS[subject[0]]:
                    owners.setdefault(token + kind, set()).add(subject)
            clashing = {
                s for users in owners.values() if len(users) > 1 for s in users if s is not None
            }
            if not clashing:
                break
            for subject in sorted(clashing):
                # Lengthen the hash of every subject still clashing; a clash between two
                # full digests would need a SHA-256 collision, so this terminates.
                length[subject] = _HASH_START if length[subject] == 0 else length[subject] + 4
                if length[subject] > 64:
                    raise ValueError(f"cannot give {subject!r} a unique logical id")
                tokens[subject] = base[subject] + _digest(subject)[: length[subject]]
        # Every id, ready: the builders ask tens of thousands of times for a big fleet.
        self._ids = {
            (subject, kind): tokens[subject] + kind
            for subject in subjects
            for kind in _KINDS[subject[0]]
        }

    @classmethod
    def for_cluster(cls, cluster: Cluster) -> LogicalIds:
        subjects: list[Subject] = [("group", name) for name in cluster.groups]
        for service in cluster.services.values():
            subjects.append(("service", service.name))
            if service.scaling is not None:
                subjects.extend(("policy", service.name, p.name) for p in service.scaling.step)
                subjects.extend(
                    ("policy", service.name, f"target-tracking-{index}")
                    for index in range(2, len(service.scaling.target_tracking) + 1)
                )
        # a cluster's tasks share the services' names (fleet/cluster_tasks.py refuses a clash)
        subjects.extend(("service", name) for name in cluster.tasks)
        return cls(subjects)

    def get(self, subject: Subject, kind: str) -> str:
        try:
            return self._ids[subject, kind]
        except KeyError:
            if kind not in _KINDS.get(subject[0], ()):
                raise ValueError(f"unknown logical id kind {kind!r} for {subject[0]}") from None
            raise KeyError(f"no {subject[0]} {'/'.join(subject[1:])!r} in this cluster") from None

    def group(self, name: str, kind: str) -> str:
        return self.get(("group", name), kind)

    def service(self, name: str, kind: str) -> str:
        return self.get(("service", name), kind)

    def policy(self, service: str, policy: str, kind: str) -> str:
        return self.get(("policy", service, policy), kind)
