"""`nixecs status`: clusters, groups, services, a cluster's tasks (scheduled and one-off),
scaling policies and alarms at a glance.

Every list call pages and every describe call is batched (DescribeServices 10 names a call,
DescribeClusters and DescribeAlarms 100, DescribeScalableTargets 50, Auto Scaling groups and
launch template versions account-wide): the number of calls grows with pages, never with
the number of resources.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .. import naming
from .session import Session, aws_errors, error_code

STACK_PREFIX = naming.stack_name("")


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _iso(value: Any) -> str | None:
    isoformat = getattr(value, "isoformat", None)
    return (
        str(isoformat(timespec="seconds")) if isoformat else (None if value is None else str(value))
    )


def discover_clusters(session: Session) -> dict[str, str]:
    """nixecs clusters in this region → their stack status (one paginated call)."""
    cfn = session.client("cloudformation")
    found: dict[str, str] = {}
    for page in cfn.get_paginator("describe_stacks").paginate():
        for stack in page.get("Stacks", []):
            name = stack["StackName"]
            if name.startswith(STACK_PREFIX) and stack["StackStatus"] != "DELETE_COMPLETE":
                found[name[len(STACK_PREFIX) :]] = stack["StackStatus"]
    return found


def _stack_status(session: Session, cluster: str) -> str | None:
    from botocore.exceptions import ClientError

    try:
        stacks = session.client("cloudformation").describe_stacks(
            StackName=naming.stack_name(cluster)
        )["Stacks"]
    except ClientError as error:
        if error_code(error) == "ValidationError" and "does not exist" in str(error):
            return None
        raise
    return str(stacks[0]["StackStatus"]) if stacks else None


def _group_launch_template(group: dict[str, Any]) -> dict[str, Any]:
    spec = group.get("LaunchTemplate")
    if not spec:
        spec = (
            group.get("MixedInstancesPolicy", {})
            .get("LaunchTemplate", {})
            .get("LaunchTemplateSpecification", {})
        )
    return dict(spec or {})


def _groups(session: Session, clusters: list[str]) -> dict[str, list[dict[str, Any]]]:
    autoscaling = session.client("autoscaling")
    by_cluster: dict[str, list[dict[str, Any]]] = {c: [] for c in clusters}
    # longest prefix first, so cluster "a-b" wins over cluster "a" for "nixecs-a-b-web"
    prefixes = sorted(
        ((naming.group_resource_name(c, ""), c) for c in clusters), key=lambda p: -len(p[0])
    )
    raw: list[tuple[str, dict[str, Any]]] = []
    for page in autoscaling.get_paginator("describe_auto_scaling_groups").paginate(
        PaginationConfig={"PageSize": 100}
    ):
        for group in page.get("AutoScalingGroups", []):
            tags = {t["Key"]: t["Value"] for t in group.get("Tags", [])}
            cluster = tags.get(naming.TAG_CLUSTER)
            name = group["AutoScalingGroupName"]
            if cluster not in by_cluster:
                cluster = next((c for prefix, c in prefixes if name.startswith(prefix)), None)
            if cluster is None:
                continue
            short = (
                tags.get(naming.TAG_GROUP) or name[len(naming.group_resource_name(cluster, "")) :]
            )
            raw.append((cluster, {"group": group, "name": short}))

    images = _template_images(session, [_group_launch_template(item["group"]) for _, item in raw])
    for cluster, item in raw:
        group = item["group"]
        spec = _group_launch_template(group)
        template = spec.get("LaunchTemplateName") or spec.get("LaunchTemplateId") or ""
        version = str(spec.get("Version", "$Default"))
        resolved, ami = images.get((template, version), (version, None))
        by_cluster[cluster].append(
            {
                "name": item["name"],
                "auto_scaling_group": group["AutoScalingGroupName"],
                "min": group.get("MinSize"),
                "max": group.get("MaxSize"),
                "desired": group.get("DesiredCapacity"),
                "in_service": sum(
                    1 for i in group.get("Instances", []) if i.get("LifecycleState") == "InService"
                ),
                "instances": len(group.get("Instances", [])),
                "launch_template": template or None,
                "launch_template_version": resolved,
                "ami": ami,
            }
        )
    hosts = _ami_hosts(
        session, sorted({g["ami"] for gs in by_cluster.values() for g in gs if g["ami"]})
    )
    for groups in by_cluster.values():
        for g in groups:
            g["host"], g["revision"] = hosts.get(g["ami"] or "", (None, None))
        groups.sort(key=lambda g: str(g["name"]))
    return by_cluster


def _ami_hosts(session: Session, amis: list[str]) -> dict[str, tuple[str | None, str | None]]:
    """AMI → (host, flake revision) from the tags `ami publish` wrote: which host
    configuration, at which commit, each group's launch template boots. A filter, not
    ImageIds: a deregistered AMI is absent rather than an error."""
    ec2 = session.client("ec2")
    found: dict[str, tuple[str | None, str | None]] = {}
    for chunk in _chunks(amis, 200):
        for page in ec2.get_paginator("describe_images").paginate(
            Filters=[{"Name": "image-id", "Values": chunk}], IncludeDeprecated=True
        ):
            for image in page.get("Images", []):
                tags = {t.get("Key"): t.get("Value") for t in image.get("Tags") or []}
                found[str(image["ImageId"])] = (
                    tags.get(naming.TAG_HOST),
                    tags.get(naming.TAG_FLAKE),
                )
    return found


def _template_images(
    session: Session, specs: list[dict[str, Any]]
) -> dict[tuple[str, str], tuple[str, str | None]]:
    """(template, version as the group says) → (version number, AMI): $Latest and $Default of
    every template in one paginated call; pinned older versions in one call per template."""
    if not specs:
        return {}
    ec2 = session.client("ec2")
    latest: dict[str, tuple[str, str | None]] = {}
    default: dict[str, tuple[str, str | None]] = {}
    known: dict[tuple[str, str], tuple[str, str | None]] = {}
    for page in ec2.get_paginator("describe_launch_template_versions").paginate(
        Versions=["$Latest", "$Default"]
    ):
        for v in page.get("LaunchTemplateVersions", []):
            entry = (str(v["VersionNumber"]), v.get("LaunchTemplateData", {}).get("ImageId"))
            for key in (v.get("LaunchTemplateName"), v.get("LaunchTemplateId")):
                if not key:
                    continue
                known[(key, entry[0])] = entry
                if v.get("DefaultVersion"):
                    default[key] = entry
                if key not in latest or int(entry[0]) > int(latest[key][0]):
                    latest[key] = entry
    result: dict[tuple[str, str], tuple[str, str | None]] = {}
    wanted: dict[str, set[str]] = {}
    for spec in specs:
        template = spec.get("LaunchTemplateName") or spec.get("LaunchTemplateId") or ""
        version = str(spec.get("Version", "$Default"))
        if version == "$Latest" and template in latest:
            result[(template, version)] = latest[template]
        elif version == "$Default" and template in default:
            result[(template, version)] = default[template]
        elif (template, version) in known:
            result[(template, version)] = known[(template, version)]
        elif template and version.isdigit():
            wanted.setdefault(template, set()).add(version)
    for template, versions in wanted.items():  # only groups pinned to an old version
        key = "LaunchTemplateId" if template.startswith("lt-") else "LaunchTemplateName"
        response = ec2.describe_launch_template_versions(
            **{key: template, "Versions": sorted(versions)}
        )
        for v in response.get("LaunchTemplateVersions", []):
            result[(template, str(v["VersionNumber"]))] = (
                str(v["VersionNumber"]),
                v.get("LaunchTemplateData", {}).get("ImageId"),
            )
    return result


def _services(session: Session, cluster: str) -> list[dict[str, Any]]:
    from botocore.exceptions import ClientError

    ecs = session.client("ecs")
    arns: list[str] = []
    try:
        for page in ecs.get_paginator("list_services").paginate(
            cluster=naming.ecs_cluster_name(cluster), maxResults=100
        ):
            arns += page.get("serviceArns", [])
    except ClientError as error:
        if "ClusterNotFound" in str(error):
            return []
        raise
    services: list[dict[str, Any]] = []
    definitions: dict[str, list[dict[str, str | None]]] = {}
    for chunk in _chunks(arns, 10):
        response = ecs.describe_services(cluster=naming.ecs_cluster_name(cluster), services=chunk)
        for s in response.get("services", []):
            primary: dict[str, Any] = next(
                (d for d in s.get("deployments", []) if d.get("status") == "PRIMARY"), {}
            )
            services.append(
                {
                    "name": s["serviceName"],
                    "status": s.get("status"),
                    "desired": s.get("desiredCount", 0),
                    # daemon: desired is ECS's count of the group's instances (fleet/daemon.py)
                    "scheduling": str(s.get("schedulingStrategy", "REPLICA")).lower(),
                    "running": s.get("runningCount", 0),
                    "pending": s.get("pendingCount", 0),
                    "task_definition": str(s.get("taskDefinition", "")).rsplit("/", 1)[-1] or None,
                    "images": _task_images(ecs, s.get("taskDefinition"), definitions),
                    "deployments": len(s.get("deployments", [])),
                    "rollout": primary.get("rolloutState"),
                    "scaling": None,
                    # filled by _target_health
                    "target_groups": [
                        {"arn": lb["targetGroupArn"]}
                        for lb in s.get("loadBalancers", [])
                        if lb.get("targetGroupArn")
                    ],
                }
            )
    services.sort(key=lambda s: str(s["name"]))
    return services


def _stack_resources(session: Session, cluster: str) -> dict[str, tuple[str, str]]:
    """The cluster stack's resources: logical id → (type, physical id); none without a stack."""
    from botocore.exceptions import ClientError

    found: dict[str, tuple[str, str]] = {}
    try:
        for page in (
            session.client("cloudformation")
            .get_paginator("list_stack_resources")
            .paginate(StackName=naming.stack_name(cluster))
        ):
            for r in page.get("StackResourceSummaries", []):
                found[r["LogicalResourceId"]] = (
                    str(r.get("ResourceType", "")),
                    str(r.get("PhysicalResourceId", "")),
                )
    except ClientError as error:
        if error_code(error) == "ValidationError" and "does not exist" in str(error):
            return {}
        raise
    return found


def _cluster_tasks(
    session: Session, cluster: str, services: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """A cluster's `tasks:` (scheduled and one-off; fleet/cluster_tasks.py): the stack's task
    definitions no service runs, each with its schedule (expression and time zone from the
    stack's template, state from EventBridge Scheduler), the number of its tasks running and
    its images. Calls: the stack's resources and template (one each, paged), ListSchedules
    (paged) and ListTasks/DescribeTasks (100 a call) only when there are such tasks, and one
    DescribeTaskDefinition per task definition, as for services."""
    resources = _stack_resources(session, cluster)
    service_families = {str(s["task_definition"] or "").rsplit(":", 1)[0] for s in services}
    prefix = naming.task_family(cluster, "")
    tasks: dict[str, dict[str, Any]] = {}  # logical id of the task definition → row
    for logical, (kind, physical) in resources.items():
        if kind != "AWS::ECS::TaskDefinition" or not physical:
            continue
        revision = physical.rsplit("/", 1)[-1]
        family = revision.rsplit(":", 1)[0]
        if family in service_families or not family.startswith(prefix):
            continue
        tasks[logical] = {
            "name": family[len(prefix) :],
            "task_definition": revision,
            "arn": physical,
            "schedule": None,
            "running": 0,
            "pending": 0,
        }
    if not tasks:
        return []
    ecs = session.client("ecs")
    _schedules(session, cluster, resources, tasks)
    # ListTasks' desiredStatus RUNNING lists the tasks ECS wants running, those still on their
    # way too (only a task's lastStatus says where it is): API_ListTasks.html, desiredStatus,
    # https://docs.aws.amazon.com/AmazonECS/latest/APIReference/
    counts: dict[tuple[str, bool], int] = {}
    arns: list[str] = []
    for page in ecs.get_paginator("list_tasks").paginate(
        cluster=naming.ecs_cluster_name(cluster), desiredStatus="RUNNING"
    ):
        arns += page.get("taskArns", [])
    for chunk in _chunks(arns, 100):
        described = ecs.describe_tasks(cluster=naming.ecs_cluster_name(cluster), tasks=chunk)
        for task in described.get("tasks", []):
            family = str(task.get("taskDefinitionArn", "")).rsplit("/", 1)[-1].rsplit(":", 1)[0]
            key = (family, task.get("lastStatus") not in _ON_THE_WAY)
            counts[key] = counts.get(key, 0) + 1
    definitions: dict[str, list[dict[str, str | None]]] = {}
    rows = []
    for row in tasks.values():
        row["running"] = counts.get((prefix + row["name"], True), 0)
        row["pending"] = counts.get((prefix + row["name"], False), 0)
        row["images"] = _task_images(ecs, row.pop("arn"), definitions)
        rows.append(row)
    rows.sort(key=lambda r: str(r["name"]))
    return rows


def _schedules(
    session: Session,
    cluster: str,
    resources: dict[str, tuple[str, str]],
    tasks: dict[str, dict[str, Any]],
) -> None:
    """Each schedule as the stack's template declares it (its expression, time zone and the
    task definition it runs: GetTemplate, one call) and its state in EventBridge Scheduler
    (ListSchedules, paged), found by the name the stack gave it; a schedule the stack or
    Scheduler does not have is `missing`."""
    from .deploy import _parse_template, _template_text

    cfn = session.client("cloudformation")
    template = _parse_template(_template_text(cfn, naming.stack_name(cluster)))
    declared = {
        logical: r.get("Properties", {})
        for logical, r in template.get("Resources", {}).items()
        if isinstance(r, dict) and r.get("Type") == "AWS::Scheduler::Schedule"
    }
    if not declared:
        return
    states: dict[str, str] = {}
    for page in session.client("scheduler").get_paginator("list_schedules").paginate():
        states |= {str(s["Name"]): str(s.get("State", "")) for s in page.get("Schedules", [])}
    for logical, properties in declared.items():
        target = properties.get("Target", {}).get("EcsParameters", {}).get("TaskDefinitionArn")
        runs = target.get("Ref") if isinstance(target, dict) else None
        if runs not in tasks:
            continue
        name = resources.get(logical, ("", ""))[1]
        tasks[runs]["schedule"] = {
            "name": name or None,
            "expression": properties.get("ScheduleExpression"),
            "timezone": properties.get("ScheduleExpressionTimezone"),
            "state": states.get(name, "missing"),
        }


def _task_images(
    ecs: Any, task_definition: str | None, seen: dict[str, list[dict[str, str | None]]]
) -> list[dict[str, str | None]]:
    """The image of each container of the service's task definition, with its digest when
    the reference pins one (`deploy` pins ECR images: `REPO@sha256:…`). ECS has no batch
    form of DescribeTaskDefinition (one `taskDefinition` a call, API_DescribeTaskDefinition):
    one call per distinct task definition, remembered in `seen`."""
    if not task_definition:
        return []
    if task_definition in seen:
        return seen[task_definition]
    definition = ecs.describe_task_definition(taskDefinition=task_definition)["taskDefinition"]
    images: list[dict[str, str | None]] = []
    for container in definition.get("containerDefinitions", []):
        image = str(container.get("image", ""))
        _, at, digest = image.partition("@")
        images.append(
            {"container": container.get("name"), "image": image, "digest": digest if at else None}
        )
    seen[task_definition] = images
    return images


def _ami_cell(group: dict[str, Any]) -> str:
    """`ami-… (web@3f2a9c1)`: the AMI and the host (and revision) it was published from."""
    if not group["ami"]:
        return "-"
    host, revision = group.get("host"), group.get("revision")
    if not host:
        return str(group["ami"])
    return f"{group['ami']} ({host}{'@' + str(revision)[:7] if revision else ''})"


def _image_cell(image: dict[str, str | None]) -> str:
    """`name@sha256:0123456789ab` (12 hex digits, as `docker images` shortens them), else
    the reference as written (a tag: not pinned)."""
    reference = str(image["image"])
    repository = reference.split("@", 1)[0].rsplit("/", 1)[-1]
    return f"{repository}@{str(image['digest'])[:19]}" if image["digest"] else reference


def _scaling(session: Session, clusters: dict[str, dict[str, Any]]) -> None:
    """Fill each service's `scaling`: target bounds, policies, and their alarms' states."""
    by_resource: dict[str, dict[str, Any]] = {}
    for name, cluster in clusters.items():
        for service in cluster["services"]:
            by_resource[f"service/{naming.ecs_cluster_name(name)}/{service['name']}"] = service
    if not by_resource:
        return
    aas = session.client("application-autoscaling")
    for chunk in _chunks(sorted(by_resource), 50):
        for page in aas.get_paginator("describe_scalable_targets").paginate(
            ServiceNamespace="ecs", ResourceIds=chunk
        ):
            for target in page.get("ScalableTargets", []):
                service = by_resource.get(target["ResourceId"])
                if service is not None:
                    service["scaling"] = {
                        "min": target.get("MinCapacity"),
                        "max": target.get("MaxCapacity"),
                        "policies": [],
                    }
    policies: list[dict[str, Any]] = []
    for page in aas.get_paginator("describe_scaling_policies").paginate(ServiceNamespace="ecs"):
        policies += [
            p for p in page.get("ScalingPolicies", []) if p.get("ResourceId") in by_resource
        ]

    cloudwatch = session.client("cloudwatch")
    alarms: dict[str, dict[str, Any]] = {}
    for name in clusters:
        prefix = naming.alarm_name(name, "", "").rstrip("-") + "-"
        for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNamePrefix=prefix):
            alarms.update({a["AlarmName"]: a for a in page.get("MetricAlarms", [])})
    referenced = sorted(
        {a["AlarmName"] for p in policies for a in p.get("Alarms", [])} - set(alarms)
    )
    for chunk in _chunks(referenced, 100):
        for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNames=chunk):
            alarms.update({a["AlarmName"]: a for a in page.get("MetricAlarms", [])})

    policy_arns: dict[str, dict[str, Any]] = {}
    for policy in policies:
        service = by_resource[policy["ResourceId"]]
        if service["scaling"] is None:
            service["scaling"] = {"min": None, "max": None, "policies": []}
        entry = {
            "name": policy["PolicyName"],
            "type": policy.get("PolicyType"),
            "alarms": [
                {"name": a["AlarmName"], "state": alarms.get(a["AlarmName"], {}).get("StateValue")}
                for a in policy.get("Alarms", [])
            ],
        }
        service["scaling"]["policies"].append(entry)
        policy_arns[policy.get("PolicyARN", "")] = entry
    # alarms whose actions name a policy (moto does not fill a policy's Alarms)
    for alarm in alarms.values():
        for action in alarm.get("AlarmActions", []):
            owner = policy_arns.get(action)
            if owner is not None and alarm["AlarmName"] not in {a["name"] for a in owner["alarms"]}:
                owner["alarms"].append(
                    {"name": alarm["AlarmName"], "state": alarm.get("StateValue")}
                )
    # alarms named for a service by nixecs but attached to nothing we found
    for name, cluster in clusters.items():
        for service in cluster["services"]:
            prefix = naming.alarm_name(name, service["name"], "")
            attached = {
                a["name"]
                for p in (service["scaling"] or {}).get("policies", [])
                for a in p["alarms"]
            }
            loose = [
                {"name": a["AlarmName"], "state": a.get("StateValue")}
                for a in alarms.values()
                if a["AlarmName"].startswith(prefix) and a["AlarmName"] not in attached
            ]
            if loose:
                if service["scaling"] is None:
                    service["scaling"] = {"min": None, "max": None, "policies": []}
                service["scaling"]["unattached_alarms"] = sorted(
                    loose, key=lambda a: str(a["name"])
                )


def _target_health(session: Session, clusters: dict[str, dict[str, Any]]) -> None:
    """Each load balanced service's target groups: targets by health state
    (DescribeTargetHealth, one call per target group: the API takes one). A target group
    the API does not answer for (gone, no permission) shows its error code instead."""
    from botocore.exceptions import ClientError

    entries = [
        target
        for cluster in clusters.values()
        for service in cluster["services"]
        for target in service["target_groups"]
    ]
    if not entries:
        return
    elbv2 = session.client("elbv2")
    for target in entries:
        arn = target["arn"]
        # arn:...:targetgroup/NAME/ID
        target["name"] = arn.rsplit(":", 1)[-1].split("/")[1] if "/" in arn else arn
        states: dict[str, int] = {}
        try:
            response = elbv2.describe_target_health(TargetGroupArn=arn)
        except ClientError as error:
            target.update(error=error_code(error) or "error", healthy=None, total=None, states={})
            continue
        for description in response.get("TargetHealthDescriptions", []):
            state = str(description.get("TargetHealth", {}).get("State", "unknown"))
            states[state] = states.get(state, 0) + 1
        target.update(
            error=None,
            healthy=states.get("healthy", 0),
            total=sum(states.values()),
            states=dict(sorted(states.items())),
        )


def collect(session: Session, cluster: str | None = None) -> dict[str, Any]:
    """Everything `status` shows, as plain data (the --output json document)."""
    with aws_errors(session, "status"):
        if cluster is None:
            stacks = discover_clusters(session)
        else:
            stacks = {cluster: _stack_status(session, cluster) or "NOT_DEPLOYED"}
        names = sorted(stacks)
        ecs = session.client("ecs")
        described: dict[str, dict[str, Any]] = {}
        for chunk in _chunks([naming.ecs_cluster_name(n) for n in names], 100):
            for c in ecs.describe_clusters(clusters=chunk).get("clusters", []):
                described[c["clusterName"]] = c
        groups = _groups(session, names) if names else {}
        clusters: dict[str, dict[str, Any]] = {}
        for name in names:
            ecs_cluster = described.get(naming.ecs_cluster_name(name), {})
            clusters[name] = {
                "name": name,
                "stack": naming.stack_name(name),
                "stack_status": stacks[name],
                "ecs_status": ecs_cluster.get("status"),
                "container_instances": ecs_cluster.get("registeredContainerInstancesCount"),
                "running_tasks": ecs_cluster.get("runningTasksCount"),
                "pending_tasks": ecs_cluster.get("pendingTasksCount"),
                "groups": groups.get(name, []),
                "services": _services(session, name)
                if ecs_cluster.get("status") == "ACTIVE"
                else [],
            }
            clusters[name]["tasks"] = (
                _cluster_tasks(session, name, clusters[name]["services"])
                if ecs_cluster.get("status") == "ACTIVE"
                else []
            )
        _scaling(session, clusters)
        _target_health(session, clusters)
    return {"region": session.region_name(), "clusters": list(clusters.values())}


def render(data: dict[str, Any], *, width: int | None = None) -> str:
    """The readable form: one block of tables per cluster."""
    import io

    from rich import box
    from rich.console import Console
    from rich.table import Table

    buffer = io.StringIO()
    console = Console(file=buffer, width=width or 120, force_terminal=False, color_system=None)
    if not data["clusters"]:
        console.print("no nixecs clusters in this region (stacks named nixecs-*)")
    for cluster in data["clusters"]:
        console.print(
            f"[bold]cluster {cluster['name']}[/bold]  stack {cluster['stack']}: {cluster['stack_status']}"
            f"  ECS: {cluster['ecs_status'] or 'missing'}"
            f"  instances {_n(cluster['container_instances'])}"
            f"  tasks running {_n(cluster['running_tasks'])} pending {_n(cluster['pending_tasks'])}",
            highlight=False,
        )
        groups = Table(title="groups", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
        for column in (
            "group",
            "desired",
            "in service",
            "min..max",
            "launch template",
            "version",
            "AMI",
        ):
            groups.add_column(
                column, justify="right" if column in ("desired", "in service") else "left"
            )
        for g in cluster["groups"]:
            groups.add_row(
                str(g["name"]),
                _n(g["desired"]),
                _n(g["in_service"]),
                f"{_n(g['min'])}..{_n(g['max'])}",
                g["launch_template"] or "-",
                str(g["launch_template_version"] or "-"),
                _ami_cell(g),
            )
        if cluster["groups"]:
            console.print(groups)
        else:
            console.print("  no Auto Scaling groups")
        services = Table(
            title="services", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False
        )
        for column in (
            "service",
            "desired",
            "running",
            "pending",
            "task definition",
            "scaling",
            "alarms",
            "targets",
        ):
            # The task definition (family:revision) is what a reader looks up: kept whole, so
            # the narrower table wraps the scaling and alarm cells instead of cutting it short.
            whole = column == "task definition"
            services.add_column(
                column,
                justify="right" if column in ("desired", "running", "pending") else "left",
                no_wrap=whole,
                min_width=max(
                    [len(s["task_definition"] or "-") for s in cluster["services"]], default=1
                )
                if whole
                else None,
            )
        for s in cluster["services"]:
            scaling = s["scaling"] or {}
            policies = scaling.get("policies", [])
            bounds = f"{_n(scaling.get('min'))}..{_n(scaling.get('max'))}" if scaling else "-"
            kinds = ", ".join(
                f"{_alarm_short(p['name'], cluster['name'], s['name'])} ({_short(p['type'])})"
                for p in policies
            )
            alarm_list = [a for p in policies for a in p["alarms"]] + scaling.get(
                "unattached_alarms", []
            )
            alarms = ", ".join(
                f"{_alarm_short(a['name'], cluster['name'], s['name'])}={a['state'] or '?'}"
                for a in alarm_list
            )
            services.add_row(
                str(s["name"]),
                _n(s["desired"]),
                _n(s["running"]),
                _n(s["pending"]),
                s["task_definition"] or "-",
                f"{bounds} {kinds}".strip()
                if scaling
                else ("daemon" if s.get("scheduling") == "daemon" else "-"),
                alarms or "-",
                _targets(s.get("target_groups", [])),
            )
        if cluster["services"]:
            console.print(services)
        else:
            console.print("  no services")
        if cluster.get("tasks"):
            console.print(_tasks_table(cluster["tasks"]))
        # Image references are long (registry/repository@digest): a table of their own keeps
        # the services table within the width instead of cutting its cells short.
        images = Table(title="images", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
        for column in ("service", "container", "image"):
            images.add_column(column, overflow="fold")
        for s in [*cluster["services"], *cluster.get("tasks", [])]:
            for i in s.get("images", []):
                images.add_row(str(s["name"]), str(i.get("container") or "-"), _image_cell(i))
        if images.row_count:
            console.print(images)
        console.print()
    return "\n".join(line.rstrip() for line in buffer.getvalue().rstrip().splitlines()) + "\n"


# A task's states before RUNNING (the task lifecycle: PROVISIONING, PENDING, ACTIVATING;
# https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-lifecycle-explanation.html).
_ON_THE_WAY = ("PROVISIONING", "PENDING", "ACTIVATING")


def _tasks_table(tasks: list[dict[str, Any]]) -> Any:
    """A cluster's `tasks:`: task definition, schedule (expression, time zone, state) and
    how many of its tasks run now and how many are on their way (PROVISIONING, PENDING)."""
    from rich import box
    from rich.table import Table

    table = Table(title="tasks", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False)
    for column in ("task", "task definition", "schedule", "running", "pending"):
        table.add_column(column, justify="right" if column in ("running", "pending") else "left")
    for t in tasks:
        schedule = t.get("schedule")
        cell = (
            f"{schedule['expression']}"
            + (f" {schedule['timezone']}" if schedule.get("timezone") else "")
            + f" ({str(schedule['state']).lower()})"
            if schedule
            else "run by hand"
        )
        table.add_row(
            str(t["name"]),
            str(t["task_definition"]),
            cell,
            _n(t["running"]),
            _n(t.get("pending", 0)),
        )
    return table


def _targets(groups: list[dict[str, Any]]) -> str:
    """`2/3 healthy (unhealthy=1)` per target group; the error code where the API did not answer."""
    shown = []
    for group in groups:
        if group.get("error"):
            shown.append(f"{group['error']}")
            continue
        others = ", ".join(
            f"{state}={count}" for state, count in group["states"].items() if state != "healthy"
        )
        shown.append(
            f"{group['healthy']}/{group['total']} healthy" + (f" ({others})" if others else "")
        )
    return "; ".join(shown) or "-"


def _n(value: Any) -> str:
    return "-" if value is None else str(value)


def _short(policy_type: str | None) -> str:
    return {"StepScaling": "step", "TargetTrackingScaling": "target"}.get(
        policy_type or "", policy_type or "?"
    )


def _alarm_short(alarm: str, cluster: str, service: str) -> str:
    """`nixecs-prod-web-cpu-high` → `cpu-high`; AWS's target tracking alarms → `tracking-high`."""
    prefix = naming.alarm_name(cluster, service, "")
    if alarm.startswith(prefix):
        return alarm[len(prefix) :]
    if alarm.startswith("TargetTracking-"):
        for side in ("High", "Low"):
            if f"-Alarm{side}-" in alarm or alarm.endswith(f"-Alarm{side}"):
                return f"tracking-{side.lower()}"
    return alarm
