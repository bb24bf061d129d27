"""Containers' EnvironmentFiles and the execution role reading exactly those objects
(fleet/env_files.py)."""

from __future__ import annotations

from ..fleet.containers import Container
from ..fleet.env_files import OBJECT_ARN_RE, bucket_arn
from ..fleet.model import Service
from .intrinsics import IAM_POLICY_VERSION, Json


def container_env_files(c: Container) -> dict[str, Json]:
    if not c.environment_files:
        return {}
    return {"EnvironmentFiles": [{"Type": "s3", "Value": arn} for arn in c.environment_files]}


def _reading(name: str, sid: str, objects: list[str]) -> dict[str, Json]:
    """A policy reading exactly `objects`: s3:GetObject on each, s3:GetBucketLocation on
    their buckets."""
    return {
        "PolicyName": name,
        "PolicyDocument": {
            "Version": IAM_POLICY_VERSION,
            "Statement": [
                {"Sid": sid, "Effect": "Allow", "Action": "s3:GetObject", "Resource": objects},
                {
                    "Sid": "LocateTheirBuckets",
                    "Effect": "Allow",
                    "Action": "s3:GetBucketLocation",
                    "Resource": sorted({bucket_arn(arn) for arn in objects}),
                },
            ],
        },
    }


def firelens_config_objects(service: Service) -> list[str]:
    """The S3 objects the task's FireLens router is configured from (`firelens: {options:
    {config-file-type: s3, config-file-value: arn:aws:s3:::BUCKET/KEY}}`). The agent
    downloads that file before the router starts, with the task **execution** role's
    credentials (aws/amazon-ecs-agent agent/api/task/task.go initializeFirelensResource passes
    task.ExecutionCredentialsID to the firelens resource), which therefore needs
    s3:GetObject and s3:GetBucketLocation on it ("You also need to give it S3 permissions if
    you are pulling an external Fluent Bit or Fluentd configuration file from S3",
    aws-samples/amazon-ecs-firelens-examples README; ECS developer guide,
    firelens-taskdef-customconfig)."""
    found = set()
    for c in service.containers:
        options = dict(c.firelens[1]) if c.firelens is not None else {}
        value = options.get("config-file-value", "")
        if options.get("config-file-type") == "s3" and OBJECT_ARN_RE.fullmatch(value):
            found.add(value)
    return sorted(found)


def extend_execution_role(properties: dict[str, Json], service: Service) -> None:
    """`nixecs-task-environment-files`: s3:GetObject on each file, s3:GetBucketLocation on
    their buckets ("Required IAM permissions for Amazon ECS environment files", ECS developer
    guide, taskdef-envfiles); `nixecs-firelens-config` the same on the FireLens router's
    configuration file from S3 (firelens_config_objects)."""
    files = sorted({arn for c in service.containers for arn in c.environment_files})
    config = firelens_config_objects(service)
    if not files and not config:
        return
    policies = properties.setdefault("Policies", [])
    assert isinstance(policies, list)
    if files:
        policies.append(_reading("nixecs-task-environment-files", "ReadEnvironmentFiles", files))
    if config:
        policies.append(_reading("nixecs-firelens-config", "ReadFireLensConfig", config))
