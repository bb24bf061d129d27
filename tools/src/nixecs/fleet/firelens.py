"""FireLens credentials (issue 20, item 6). The log router sends the task's logs with the task
role's credentials, so a FireLens output to CloudWatch Logs needs that role to write there.

- An `awsfirelens` container whose output is CloudWatch Logs (`Name: cloudwatch_logs`, or the
  older `cloudwatch` plugin) without `log_group_name` writes to the service's own log group:
  the router gets `log_group_name`, `region` and `log_stream_prefix` for it, and the task role
  (created for it, or the service's own extended) may logs:CreateLogStream,
  logs:DescribeLogStreams and logs:PutLogEvents on that group only — what the two plugins
  call ("Permissions": fluent-bit docs, pipeline/outputs/cloudwatch; aws/amazon-cloudwatch-logs-for-fluent-bit
  README, "Permissions"). The group exists (the stack makes it), so no logs:CreateLogGroup.
- W172: any other output (another log group, Firehose, Kinesis, S3, OpenSearch) needs an
  action the task role's own statements do not allow.
"""

from __future__ import annotations

import re

from .. import naming
from ..diagnostics import Diagnostic
from .containers import Container
from .model import Fleet, Service

CLOUDWATCH = ("cloudwatch_logs", "cloudwatch")
LOG_ACTIONS = ("logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents")
# The action each Fluent Bit AWS output calls to deliver (the plugins' documented
# permissions: fluent-bit docs pipeline/outputs/{firehose,kinesis,s3,opensearch}).
OUTPUT_ACTIONS = {
    "cloudwatch_logs": "logs:PutLogEvents",
    "cloudwatch": "logs:PutLogEvents",
    "kinesis_firehose": "firehose:PutRecordBatch",
    "firehose": "firehose:PutRecordBatch",
    "kinesis_streams": "kinesis:PutRecords",
    "kinesis": "kinesis:PutRecords",
    "s3": "s3:PutObject",
    "opensearch": "es:ESHttpPost",
    "es": "es:ESHttpPost",
}


def _output(c: Container) -> str:
    return dict(c.log.options).get("Name", "") if c.log.driver == "awsfirelens" else ""


def to_own_group(c: Container) -> bool:
    """The container's FireLens output is the service's own log group (nixecs fills it in)."""
    return _output(c) in CLOUDWATCH and "log_group_name" not in dict(c.log.options)


def writes_own_log_group(service: Service) -> bool:
    return any(to_own_group(c) for c in service.containers)


def own_group_options(cluster: str, service: Service) -> dict[str, str]:
    """The options nixecs adds for an output to the service's own log group (the region is
    the stack's: services.py renders it as a Ref)."""
    return {
        "log_group_name": naming.log_group_name(cluster, service.name),
        "log_stream_prefix": f"{service.name}/",
    }


def _matches(pattern: str, action: str) -> bool:
    regex = "".join(".*" if ch == "*" else "." if ch == "?" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, action, re.IGNORECASE) is not None


def _allowed(service: Service, action: str) -> bool:
    role = service.task_role
    if role is None:
        return False
    if role.managed_policies:
        return True  # a managed policy's document is not known offline: assume it does
    return any(
        statement.effect == "Allow" and any(_matches(a, action) for a in statement.actions)
        for statement in role.statements
    )


def lint_firelens(fleet: Fleet) -> list[Diagnostic]:
    found: list[Diagnostic] = []
    for cluster in fleet.clusters.values():
        for service in cluster.task_definitions:
            for c in service.containers:
                output = _output(c)
                action = OUTPUT_ACTIONS.get(output)
                if action is None or to_own_group(c) or _allowed(service, action):
                    continue
                found.append(
                    Diagnostic(
                        "W172",
                        f"FireLens output {output!r} of container {c.name!r} needs {action}, "
                        "which the task role does not allow: the router sends with the task "
                        "role's credentials; add a task_role statement for it",
                        fleet.document.locate((*c.path, "log", "options", "Name")),
                    )
                )
    return found
