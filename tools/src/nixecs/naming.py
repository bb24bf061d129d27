"""AWS resource names derived from fleet names: one place, so that the templates, the host
(drain), `roll`, `deploy` and `status` all find the same resources."""

from __future__ import annotations

DRAIN_HOOK_NAME = "nixecs-drain"
# The termination hook ECS adds to a capacity provider's Auto Scaling group for managed
# draining ("Configuring Amazon ECS capacity providers to safely shut down instances",
# enable-managed-instance-draining: the attachment's autoScalingLifecycleHookName).
ECS_MANAGED_DRAIN_HOOK_NAME = "ecs-managed-draining-termination-hook"
# The root device of the AMIs `nixecs ami publish` registers (RootDeviceName), and so the
# DeviceName a launch template must give the root volume's settings to.
ROOT_DEVICE = "/dev/xvda"
TAG_CLUSTER = "nixecs:cluster"
# On every stack `deploy` makes (change set tags): which fleet owns it (Fleet.identity).
# `deploy`, `deploy --prune` and `destroy` act only on stacks that carry this fleet's value
# (aws/ownership.py); a stack with TAG_CLUSTER but without it was made by an earlier nixecs
# and is claimed only with `--adopt`. DEFAULT_FLEET is the identity every fleet file without
# `name_prefix` shares: it cannot tell two such fleets apart, so `--prune` refuses it.
TAG_FLEET = "nixecs:fleet"
DEFAULT_FLEET = "default"
TAG_GROUP = "nixecs:group"
TAG_FLAKE = "nixecs:flake"
TAG_HOST = "nixecs:host"
TAG_SERVICE = "nixecs:service"
TAG_NIXOS_LABEL = "nixecs:nixos-label"
TAG_IMAGE_SHA256 = "nixecs:image-sha256"


def fleet_id(name_prefix: str = "", environment: str = "") -> str:
    """The value of TAG_FLEET: the fleet's name prefix, or DEFAULT_FLEET without one, and
    `/ENVIRONMENT` for a fleet deployed as one of its environments (read it through
    Fleet.identity, the one derivation the commands use)."""
    base = name_prefix or DEFAULT_FLEET
    return f"{base}/{environment}" if environment else base


def stack_name(cluster: str) -> str:
    return f"nixecs-{cluster}"


def ecs_cluster_name(cluster: str) -> str:
    return cluster


def group_resource_name(cluster: str, group: str) -> str:
    """Auto Scaling group, launch template and capacity provider of a fleet group."""
    return f"nixecs-{cluster}-{group}"


def service_name(service: str) -> str:
    return service


def log_group_name(cluster: str, service: str) -> str:
    return f"/nixecs/{cluster}/{service}"


def alarm_name(cluster: str, service: str, policy: str) -> str:
    return f"nixecs-{cluster}-{service}-{policy}"


def task_family(cluster: str, service: str) -> str:
    """ECS task definition family of a service."""
    return f"nixecs-{cluster}-{service}"


def scaling_policy_name(cluster: str, service: str, policy: str) -> str:
    """Application Auto Scaling policy of a service (step policies: the policy's name)."""
    return f"nixecs-{cluster}-{service}-{policy}"


# The target-tracking policy's name part. No step policy can share a service with it: the
# loader refuses target tracking next to step policies (their scale-in would fight).
TARGET_TRACKING_POLICY = "target-tracking"
