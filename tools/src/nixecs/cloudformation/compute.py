"""The ECS cluster and, per group, its launch template, Auto Scaling group, capacity provider
and (only for `drain:`) termination lifecycle hook."""

from __future__ import annotations

import base64

from .. import formats, naming
from ..fleet.model import Group, StrategyItem
from ..settings import duration_seconds
from .context import Context, Resources
from .ids import CAPACITY_PROVIDER_ASSOCIATIONS, CLUSTER
from .intrinsics import Json, get_att, ref, tags

ROOT_DEVICE = naming.ROOT_DEVICE
# Time on top of the drain timeout for the host to notice the Terminating:Wait state,
# deregister and complete the hook. If the host never completes it, DefaultResult CONTINUE
# lets the termination go on when the heartbeat times out.
DRAIN_HOOK_MARGIN = 300
HEARTBEAT_MIN, HEARTBEAT_MAX = 30, 7200


def cluster(ctx: Context) -> Resources:
    return {
        CLUSTER: {
            "Type": "AWS::ECS::Cluster",
            "Properties": {
                "ClusterName": ctx.ecs_cluster_name,
                # enabled | enhanced | disabled (fleet/infra.py); written even when disabled,
                # since a cluster without the setting follows the account's default.
                "ClusterSettings": [
                    {"Name": "containerInsights", "Value": ctx.cluster.container_insights}
                ],
                "Tags": tags(ctx.cluster_tags),
            },
        }
    }


def user_data(data: bytes) -> Json:
    """LaunchTemplate UserData from the bytes EC2 must receive. Text goes through
    Fn::Base64 (readable in the template); gzip is binary, which Fn::Base64 cannot carry,
    so it is base64-encoded here."""
    if len(data) > formats.EC2_USERDATA_LIMIT:
        raise ValueError(f"userdata is {len(data)} bytes; EC2 accepts {formats.EC2_USERDATA_LIMIT}")
    if data[:2] == formats.GZIP_MAGIC:
        return base64.b64encode(data).decode("ascii")
    return {"Fn::Base64": data.decode("utf-8")}


def _mixed(group: Group) -> bool:
    return group.spot or len(group.instance_types) > 1


def root_volume(group: Group) -> dict[str, Json]:
    """The launch template's Ebs block of the root volume: always encrypted; without a size
    EC2 takes the AMI snapshot's; without a key, the account's default EBS key."""
    volume = group.root_volume
    ebs: dict[str, Json] = {"VolumeType": volume.type}
    if volume.size_gib is not None:
        ebs["VolumeSize"] = volume.size_gib
    if volume.iops is not None:
        ebs["Iops"] = volume.iops
    if volume.throughput is not None:
        ebs["Throughput"] = volume.throughput
    ebs["Encrypted"] = True
    if volume.kms_key is not None:
        ebs["KmsKeyId"] = volume.kms_key
    ebs["DeleteOnTermination"] = True
    return ebs


def launch_template(ctx: Context, group: Group, data: bytes) -> Resources:
    name = naming.group_resource_name(ctx.cluster.name, group.name)
    pairs = ctx.group_tags(group)
    template_data: dict[str, Json] = {"ImageId": group.ami}
    if not _mixed(group):
        # With a mixed instances policy the types come from its overrides instead.
        template_data["InstanceType"] = group.instance_types[0]
    template_data |= {
        "IamInstanceProfile": {"Arn": get_att(ctx.ids.group(group.name, "InstanceProfile"), "Arn")},
        "SecurityGroupIds": list(ctx.cluster.security_groups),
        "UserData": user_data(data),
        # IMDSv2 only. Instance tags stay out of IMDS: the host learns its cluster and group
        # from its userdata and needs nothing else there.
        "MetadataOptions": {
            "HttpEndpoint": "enabled",
            "HttpTokens": "required",
            "HttpPutResponseHopLimit": group.hop_limit,
        },
        "BlockDeviceMappings": [{"DeviceName": ROOT_DEVICE, "Ebs": root_volume(group)}],
        # Instances get their tags from the Auto Scaling group (PropagateAtLaunch); volumes
        # only from here.
        "TagSpecifications": [{"ResourceType": "volume", "Tags": tags(pairs)}],
    }
    if group.key_pair is not None:
        template_data["KeyName"] = group.key_pair
    return {
        ctx.ids.group(group.name, "LaunchTemplate"): {
            "Type": "AWS::EC2::LaunchTemplate",
            "Properties": {
                "LaunchTemplateName": name,
                "LaunchTemplateData": template_data,
                "TagSpecifications": [{"ResourceType": "launch-template", "Tags": tags(pairs)}],
            },
        }
    }


def auto_scaling_group(ctx: Context, group: Group) -> Resources:
    lt_id = ctx.ids.group(group.name, "LaunchTemplate")
    name = naming.group_resource_name(ctx.cluster.name, group.name)
    launch_template = {
        "LaunchTemplateId": ref(lt_id),
        "Version": get_att(lt_id, "LatestVersionNumber"),
    }
    properties: dict[str, Json] = {
        "AutoScalingGroupName": name,
        # CloudFormation types these as strings.
        "MinSize": str(group.capacity.min),
        "MaxSize": str(group.capacity.max),
        # No DesiredCapacity: with it, every stack update that touches the group (each new
        # launch template version) sets the capacity back to it, undoing what the capacity
        # provider's managed scaling had set (aws/aws-cdk PR 5507, "every deployment resets
        # capacity"; issue 5215). Without it the group starts at MinSize and updates leave
        # the capacity alone. `capacity.desired` therefore draws W204.
        "VPCZoneIdentifier": list(ctx.cluster.subnets),
    }
    if _mixed(group):
        split = group.distribution  # nixecs.fleet.capacity
        if group.spot:
            distribution: dict[str, Json] = {
                "OnDemandBaseCapacity": split.on_demand_base,
                "OnDemandPercentageAboveBaseCapacity": split.on_demand_percent,
                "SpotAllocationStrategy": split.spot_allocation,
            }
            if split.on_demand_base or split.on_demand_percent:
                distribution["OnDemandAllocationStrategy"] = split.on_demand_allocation
            # Replace spot instances at elevated interruption risk ahead of time; the
            # capacity provider's managed draining moves their tasks first.
            properties["CapacityRebalance"] = True
        else:
            distribution = {
                "OnDemandBaseCapacity": 0,
                "OnDemandPercentageAboveBaseCapacity": 100,
                # By default the fleet lists instance types in order of preference.
                "OnDemandAllocationStrategy": split.on_demand_allocation,
            }
        properties["MixedInstancesPolicy"] = {
            "InstancesDistribution": distribution,
            "LaunchTemplate": {
                "LaunchTemplateSpecification": launch_template,
                "Overrides": [{"InstanceType": t} for t in group.instance_types],
            },
        }
    else:
        properties["LaunchTemplate"] = launch_template
    # Managed termination protection needs it: ECS removes the protection from an instance
    # once it runs no tasks, and only then may scale-in pick it.
    properties["NewInstancesProtectedFromScaleIn"] = True
    properties["Tags"] = [
        {"Key": "Name", "Value": name, "PropagateAtLaunch": True},
        # ECS adds this tag to the group of a capacity provider with managed scaling;
        # declaring it keeps stack updates from removing it (and from drifting).
        {"Key": "AmazonECSManaged", "Value": "", "PropagateAtLaunch": True},
        *(
            {"Key": key, "Value": value, "PropagateAtLaunch": True}
            for key, value in ctx.group_tags(group)
        ),
    ]
    # No UpdatePolicy on purpose: a new launch template version reaches instances through
    # `nixecs roll`, which replaces them group by group while ECS drains them, instead of a
    # CloudFormation rolling update that knows nothing about tasks.
    return {
        ctx.ids.group(group.name, "AutoScalingGroup"): {
            "Type": "AWS::AutoScaling::AutoScalingGroup",
            # Instances register with the cluster at boot, so it must exist first; and on
            # delete the instances must be gone before ECS lets the cluster go.
            "DependsOn": [CLUSTER],
            "Properties": properties,
        }
    }


def capacity_provider(ctx: Context, group: Group) -> Resources:
    return {
        ctx.ids.group(group.name, "CapacityProvider"): {
            "Type": "AWS::ECS::CapacityProvider",
            "Properties": {
                "Name": naming.group_resource_name(ctx.cluster.name, group.name),
                "AutoScalingGroupProvider": {
                    # Ref of an Auto Scaling group is its name, which this property accepts.
                    "AutoScalingGroupArn": ref(ctx.ids.group(group.name, "AutoScalingGroup")),
                    "ManagedScaling": managed_scaling(group),
                    "ManagedTerminationProtection": "ENABLED",
                    "ManagedDraining": "ENABLED",
                },
                "Tags": tags(ctx.group_tags(group)),
            },
        }
    }


def managed_scaling(group: Group) -> dict[str, Json]:
    """The capacity provider's ManagedScaling: `capacity_provider:` of the group (AWS's
    defaults for what it leaves out: nixecs.fleet.capacity)."""
    settings = group.managed_scaling
    scaling: dict[str, Json] = {"Status": "ENABLED", "TargetCapacity": settings.target_capacity}
    for key, value in (
        ("MinimumScalingStepSize", settings.minimum_step),
        ("MaximumScalingStepSize", settings.maximum_step),
        ("InstanceWarmupPeriod", settings.instance_warmup),
    ):
        if value is not None:
            scaling[key] = value
    return scaling


def drain_hook_timeout(group: Group) -> int:
    assert group.drain is not None
    seconds = duration_seconds(group.drain.timeout) + DRAIN_HOOK_MARGIN
    return max(HEARTBEAT_MIN, min(HEARTBEAT_MAX, seconds))


def drain_hook(ctx: Context, group: Group) -> Resources:
    """The termination hook `nixecs drain` completes on the host (only for `drain:`; other
    groups rely on the capacity provider's managed draining alone)."""
    if group.drain is None:
        return {}
    return {
        ctx.ids.group(group.name, "DrainHook"): {
            "Type": "AWS::AutoScaling::LifecycleHook",
            "Properties": {
                "AutoScalingGroupName": ref(ctx.ids.group(group.name, "AutoScalingGroup")),
                "LifecycleHookName": naming.DRAIN_HOOK_NAME,
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                "HeartbeatTimeout": drain_hook_timeout(group),
                "DefaultResult": "CONTINUE",
            },
        }
    }


def capacity_provider_associations(ctx: Context, first_group: str | None) -> Resources:
    """Every group's capacity provider on the cluster; the default strategy for tasks that
    name none is the cluster's `default_strategy:`, else the first group of the fleet file."""
    if first_group is None:
        return {}
    return {
        CAPACITY_PROVIDER_ASSOCIATIONS: {
            "Type": "AWS::ECS::ClusterCapacityProviderAssociations",
            "Properties": {
                "Cluster": ctx.cluster_ref(),
                "CapacityProviders": [
                    ref(ctx.ids.group(name, "CapacityProvider"))
                    for name in sorted(ctx.cluster.groups)
                ],
                "DefaultCapacityProviderStrategy": [
                    {
                        "CapacityProvider": ref(ctx.ids.group(item.group, "CapacityProvider")),
                        "Base": item.base,
                        "Weight": item.weight,
                    }
                    for item in ctx.cluster.default_strategy
                    or (StrategyItem(first_group, 0, 1, ctx.cluster.path),)
                ],
            },
        }
    }
