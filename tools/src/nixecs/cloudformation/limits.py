"""CloudFormation's per-template quotas that a big cluster can exceed.

A group brings five to six resources and a service four to eight, so a cluster of more than
about forty groups and services together passes the 500-resource quota, and a hundred
passes the 200-output one: such a stack fails when it is created, long after `render`.
`nixecs render` or `validate` can report these instead. (The template size quota depends
on how it is sent, inline or through S3, and is checked by `nixecs deploy`.)
"""

from __future__ import annotations

from collections.abc import Mapping

RESOURCES_MAX = 500
OUTPUTS_MAX = 200


def limit_problems(template: Mapping[str, object]) -> list[str]:
    """What in this template is over CloudFormation's quotas (empty when nothing is)."""
    problems = []
    for section, quota in (("Resources", RESOURCES_MAX), ("Outputs", OUTPUTS_MAX)):
        entries = template.get(section)
        count = len(entries) if isinstance(entries, Mapping) else 0
        if count > quota:
            problems.append(
                f"{count} {section.lower()}, over CloudFormation's quota of {quota} per stack: "
                "split the cluster's groups and services into more clusters"
            )
    return problems
