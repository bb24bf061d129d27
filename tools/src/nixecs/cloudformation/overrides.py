"""A cluster's `overrides:` applied to its rendered resources, last (issue 10 item 8).

The model is CDK's escape hatch (aws-cdk-lib CfnResource.addOverride /
addPropertyOverride / addDeletionOverride,
https://docs.aws.amazon.com/cdk/v2/guide/cfn-layer.html; applied after everything else is
rendered, as aws/aws-cdk commit f2636e5 "apply overrides after rendering properties"): a
dotted path into one resource
(`Properties.Path.To.Key`, `\\.` for a literal dot, a number indexes a list), whose missing
objects are created on the way. Unlike CDK, a mistake is an error here instead of a silently
different template:

- E160 the logical id is not a resource of this cluster's stack
- E161 a deletion (`null`) of something that does not exist
- E162 the path walks through a value that is not an object (a string, a number, or a list
  with an index that is not a number or not in it)
- E164 (`validate`, commands.py) cfn-lint finds an error in the overridden template
(E163, the path's own syntax, is checked by the loader: fleet/infra.py.)
"""

from __future__ import annotations

import copy
from collections.abc import Iterable

from ..fleet.infra import Override
from ..fleet.yaml12 import Path
from ..records import dataclass
from .context import Resources
from .intrinsics import Json

E_UNKNOWN_ID = "E160"
E_NOTHING_TO_DELETE = "E161"
E_NOT_AN_OBJECT = "E162"


@dataclass(frozen=True)
class Problem:
    code: str
    message: str
    path: Path  # in the fleet file


class OverrideError(Exception):
    """Overrides that do not fit the template; carries every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(p.message for p in problems))


def apply(resources: Resources, overrides: Iterable[Override]) -> None:
    """Apply `overrides` in order to `resources` (in place); OverrideError with every
    problem when any does not fit (then `resources` is partly changed and must not be used)."""
    problems: list[Problem] = []
    for override in overrides:
        problem = _apply_one(resources, override)
        if problem is not None:
            problems.append(problem)
    if problems:
        raise OverrideError(problems)


def _index(node: list[Json], segment: str) -> int | None:
    if segment.isdigit() and int(segment) < len(node):
        return int(segment)
    return None


def _apply_one(resources: Resources, override: Override) -> Problem | None:
    if override.logical_id not in resources:
        import difflib  # only for a mistake (`validate` imports this module; issue 18)

        close = difflib.get_close_matches(override.logical_id, list(resources), n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else ""
        return Problem(
            E_UNKNOWN_ID,
            f"no resource {override.logical_id!r} in this cluster's stack{hint}; the logical ids "
            "are the keys under Resources in `nixecs render`'s stack.yaml",
            override.path[:-1],
        )
    node: Json = resources[override.logical_id]
    walked: list[str] = []
    *parents, last = override.segments

    def not_an_object(segment: str, value: Json) -> Problem:
        where = ".".join(walked) or override.logical_id
        if isinstance(value, list):
            why = f"a list of {len(value)}, and {segment!r} is not an index in it"
        else:
            why = f"{type(value).__name__} {value!r}"
        return Problem(
            E_NOT_AN_OBJECT,
            f"{override.logical_id}: {override.dotted} walks through {where}, which is {why}",
            override.path,
        )

    def nothing_to_delete() -> Problem:
        return Problem(
            E_NOTHING_TO_DELETE,
            f"{override.logical_id}: nothing to delete at {override.dotted} "
            f"({'.'.join(walked) or 'the resource'} has no {walked_next!r})",
            override.path,
        )

    for segment in parents:
        walked_next = segment
        if isinstance(node, dict):
            if segment not in node:
                if override.delete:
                    return nothing_to_delete()
                node[segment] = {}
            node = node[segment]
        elif isinstance(node, list):
            index = _index(node, segment)
            if index is None:
                return nothing_to_delete() if override.delete else not_an_object(segment, node)
            node = node[index]
        else:
            return not_an_object(segment, node)
        walked.append(segment)
    walked_next = last
    if isinstance(node, dict):
        if override.delete:
            if last not in node:
                return nothing_to_delete()
            del node[last]
        else:
            node[last] = copy.deepcopy(override.value)
    elif isinstance(node, list):
        index = _index(node, last)
        if index is None:
            return nothing_to_delete() if override.delete else not_an_object(last, node)
        if override.delete:
            del node[index]
        else:
            node[index] = copy.deepcopy(override.value)
    else:
        return not_an_object(last, node)
    return None
