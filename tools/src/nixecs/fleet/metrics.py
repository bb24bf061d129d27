"""The metrics of the two ECS namespaces and their dimension sets, for alarm defaults (the
template) and for checks (E121 dimensions missing or wrong, E122 no such metric).

A CloudWatch metric is identified by namespace, name *and* its full set of dimensions: an
alarm on a combination that is never published watches nothing, and with
`TreatMissingData: notBreaching` sits in OK forever. Hence the exact sets below.

Sources (read, not remembered):
- AWS/ECS: "Amazon ECS CloudWatch metrics",
  https://docs.aws.amazon.com/AmazonECS/latest/developerguide/available-metrics.html and its
  earlier text in awsdocs/amazon-ecs-developer-guide doc_source/cloudwatch-metrics.md
  (commit 02824f06): CPUReservation, MemoryReservation, GPUReservation "can only be filtered
  by ClusterName"; CPUUtilization and MemoryUtilization exist per cluster (ClusterName) and
  per service (ClusterName, ServiceName).
- ECS/ContainerInsights: "Amazon ECS Container Insights metrics",
  awsdocs/amazon-cloudwatch-user-guide doc_source/Container-Insights-metrics-ECS.md (commit
  20a560c1), the table "Metric name | Dimensions".
"""

from __future__ import annotations

CLUSTER = ("ClusterName",)
SERVICE = ("ClusterName", "ServiceName")
FAMILY = ("ClusterName", "TaskDefinitionFamily")
INSTANCE = ("ClusterName", "ContainerInstanceId", "InstanceId")

# Placeholders a dimension value may hold; replaced when the template is written.
CLUSTER_PLACEHOLDER = "${cluster}"
SERVICE_PLACEHOLDER = "${service}"
PLACEHOLDERS = (CLUSTER_PLACEHOLDER, SERVICE_PLACEHOLDER)

_PER_TASK = (FAMILY, SERVICE, CLUSTER)
_PER_INSTANCE = (CLUSTER, INSTANCE)

# namespace → metric → the dimension sets it is published with (as sorted name tuples).
CATALOGUE: dict[str, dict[str, tuple[tuple[str, ...], ...]]] = {
    "AWS/ECS": {
        "CPUReservation": (CLUSTER,),
        "CPUUtilization": (SERVICE, CLUSTER),
        "MemoryReservation": (CLUSTER,),
        "MemoryUtilization": (SERVICE, CLUSTER),
        "GPUReservation": (CLUSTER,),
    },
    "ECS/ContainerInsights": {
        "ContainerInstanceCount": (CLUSTER,),
        "CpuUtilized": _PER_TASK,
        "CpuReserved": _PER_TASK,
        "DeploymentCount": (SERVICE,),
        "DesiredTaskCount": (SERVICE,),
        "MemoryUtilized": _PER_TASK,
        "MemoryReserved": _PER_TASK,
        "NetworkRxBytes": _PER_TASK,
        "NetworkTxBytes": _PER_TASK,
        "PendingTaskCount": (SERVICE,),
        "RunningTaskCount": (SERVICE,),
        "ServiceCount": (CLUSTER,),
        "StorageReadBytes": _PER_TASK,
        "StorageWriteBytes": _PER_TASK,
        "TaskCount": (CLUSTER,),
        "TaskSetCount": (SERVICE,),
        "instance_cpu_limit": (CLUSTER,),
        "instance_cpu_reserved_capacity": _PER_INSTANCE,
        "instance_cpu_usage_total": (CLUSTER,),
        "instance_cpu_utilization": _PER_INSTANCE,
        "instance_filesystem_utilization": _PER_INSTANCE,
        "instance_memory_limit": (CLUSTER,),
        "instance_memory_reserved_capacity": _PER_INSTANCE,
        "instance_memory_utilization": _PER_INSTANCE,
        "instance_memory_working_set": (CLUSTER,),
        "instance_network_total_bytes": (CLUSTER,),
        "instance_number_of_running_tasks": (CLUSTER,),
    },
}


def known_namespace(namespace: str) -> bool:
    return namespace in CATALOGUE


def dimension_sets(namespace: str, metric: str) -> tuple[tuple[str, ...], ...] | None:
    """The dimension sets of a catalogued metric; None when the metric is not catalogued."""
    return CATALOGUE.get(namespace, {}).get(metric)


def default_dimensions(namespace: str, metric: str) -> tuple[tuple[str, str], ...] | None:
    """What a service's alarm gets without `dimensions:`: the service's own series when the
    metric has one, else the cluster's; None when there is no default (E121)."""
    sets = dimension_sets(namespace, metric)
    if sets is None:
        return None
    if SERVICE in sets:
        return (("ClusterName", CLUSTER_PLACEHOLDER), ("ServiceName", SERVICE_PLACEHOLDER))
    if CLUSTER in sets:
        return (("ClusterName", CLUSTER_PLACEHOLDER),)
    return None


def suggestion(namespace: str, metric: str) -> str | None:
    """The catalogued metric name closest to `metric` (CPUUtilisation → CPUUtilization)."""
    names = list(CATALOGUE.get(namespace, {}))
    import difflib  # only when a finding wants a "did you mean"

    close = difflib.get_close_matches(metric, names, n=1, cutoff=0.6)
    if not close:
        lowered = {name.lower(): name for name in names}
        close = difflib.get_close_matches(metric.lower(), list(lowered), n=1, cutoff=0.6)
        return lowered[close[0]] if close else None
    return close[0]


def resolve(value: str, cluster: str, service: str) -> str:
    """A dimension value with its placeholders replaced by the AWS names."""
    return value.replace(CLUSTER_PLACEHOLDER, cluster).replace(SERVICE_PLACEHOLDER, service)
