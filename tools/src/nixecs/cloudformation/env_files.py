"""Containers' EnvironmentFiles and the execution role reading exactly those objects
(fleet/env_files.py)."""

from __future__ import annotations

from ..fleet.containers import Container
from ..fleet.env_files import bucket_arn
from ..fleet.model import Service
from .intrinsics import IAM_POLICY_VERSION, Json


def container_env_files(c: Container) -> dict[str, Json]:
    if not c.environment_files:
        return {}
    return {"EnvironmentFiles": [{"Type": "s3", "Value": arn} for arn in c.environment_files]}


def extend_execution_role(properties: dict[str, Json], service: Service) -> None:
    """`nixecs-task-environment-files`: s3:GetObject on each file, s3:GetBucketLocation on
    their buckets ("Required IAM permissions for Amazon ECS environment files", ECS developer
    guide, taskdef-envfiles)."""
    files = sorted({arn for c in service.containers for arn in c.environment_files})
    if not files:
        return
    buckets = sorted({bucket_arn(arn) for arn in files})
    policies = properties.setdefault("Policies", [])
    assert isinstance(policies, list)
    policies.append(
        {
            "PolicyName": "nixecs-task-environment-files",
            "PolicyDocument": {
                "Version": IAM_POLICY_VERSION,
                "Statement": [
                    {
                        "Sid": "ReadEnvironmentFiles",
                        "Effect": "Allow",
                        "Action": "s3:GetObject",
                        "Resource": list(files),
                    },
                    {
                        "Sid": "LocateTheirBuckets",
                        "Effect": "Allow",
                        "Action": "s3:GetBucketLocation",
                        "Resource": list(buckets),
                    },
                ],
            },
        }
    )
