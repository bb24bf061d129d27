"""Preflight of the Secrets Manager secrets a fleet's containers read (E177;
fleet/secret_refs.py): DescribeSecret on each, which returns metadata only — no value leaves
Secrets Manager (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_DescribeSecret.html).

A secret of another account may not be describable with the deploying credentials (its
resource policy grants the task's execution role, not them): AccessDenied is not reported,
only a secret that certainly does not exist (ResourceNotFoundException).
"""

from __future__ import annotations

from typing import Any

from ..diagnostics import Report
from .session import Session, error_code


def check_fleet(session: Session, fleet: Any, report: Report) -> None:
    uses: dict[str, list[tuple[object, ...]]] = {}
    for cluster in fleet.clusters.values():
        for service in cluster.task_definitions:
            for c in service.containers:
                for ref in c.secret_refs:
                    if ref.service == "secretsmanager":
                        uses.setdefault(ref.arn or ref.name, []).append(ref.path)
    if not uses:
        return
    from botocore.exceptions import ClientError

    client = session.client("secretsmanager")
    for secret, paths in sorted(uses.items()):
        try:
            client.describe_secret(SecretId=secret)
        except ClientError as error:
            if error_code(error) != "ResourceNotFoundException":
                continue
            for path in paths:
                report.add(
                    "E177",
                    f"Secrets Manager has no secret {secret} (in this region: create it, or "
                    "write the ARN of the secret)",
                    fleet.document.locate(path),
                )
