"""The likely cause of a finding, for the mistakes people new to ECS or to YAML make: a value
in the wrong unit (`cpu: 0.5` for half a vCPU, `memory: 512MB`, a target of 0.6 for 60 %), a
quoted version, a section whose keys lost their indentation, a named entry (a group, a
service) written one level too far left beside the section it belongs to, a cluster's own
`region:`, and a misspelt name under an environment's `set:` (which adds an entry). Added to
the message the loader already wrote (the code and position stay), from what was written at
that place.

Looked up only for findings (a valid fleet never reaches here), so validate pays nothing.
"""

from __future__ import annotations

import re

from ..lazyre import lazy
from ..settings import Issue
from .yaml12 import Document, Path

# ECS: "1024 CPU units is the equivalent of 1 vCPU" (TaskDefinition cpu / ContainerDefinition
# cpu, Amazon ECS Developer Guide); memory is "the amount (in MiB)".
_MEMORY_UNIT = lazy(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([KMGT]i?B?|[kmgt]i?b?)\s*", re.I)
_TO_MIB = {"k": 1 / 1024, "m": 1, "g": 1024, "t": 1024 * 1024}
# The mappings whose keys are often written one level too far left, with their own keys.
_SECTIONS = {
    "capacity": ("min", "max", "desired"),
    "scaling": ("min", "max", "target_tracking", "step", "scheduled"),
    "metadata": ("hop_limit",),
    "drain": ("timeout",),
    "deployment": ("minimum_healthy_percent", "maximum_percent", "circuit_breaker"),
    "routing": ("priority", "path_patterns", "host_headers", "listener", "health_check"),
    "target_tracking": ("metric", "target", "scale_in_cooldown", "scale_out_cooldown"),
    "root_volume": ("size_gib", "type", "iops", "throughput", "kms_key"),
    "load_balancer": ("type", "vpc", "security_groups", "scheme", "https", "http"),
}


def _value_at(document: Document, path: Path) -> tuple[bool, object]:
    node: object = document.value
    for part in path:
        if isinstance(node, dict):
            if part not in node:
                return False, None
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            return False, None
    return True, node


def _units(key: object, value: object) -> str | None:
    if key == "cpu" and isinstance(value, float) and 0 < value <= 192:
        return (
            f"cpu is in CPU units, 1024 to a vCPU: {value:g} vCPU is `cpu: {round(value * 1024)}`"
        )
    if key in ("memory", "memory_reservation") and isinstance(value, str):
        found = _MEMORY_UNIT.fullmatch(value)
        if found is not None:
            mib = float(found.group(1)) * _TO_MIB[found.group(2)[0].lower()]
            if mib >= 1 and mib == int(mib):
                return f"memory is a number of MiB without a unit: `{key}: {int(mib)}`"
        return f"memory is a number of MiB without a unit, e.g. `{key}: 512`"
    if key == "version" and isinstance(value, str) and value.strip() == "1":
        return 'write it as a number, `version: 1` (quoted, it is the string "1")'
    return None


def _indentation(document: Document, path: Path) -> str | None:
    """`capacity:` followed by `min:` at its own level: the section is null, its keys unknown
    in the parent. Names the section the key belongs to."""
    key = path[-1] if path else None
    found, parent = _value_at(document, path[:-1])
    if not found or not isinstance(parent, dict):
        return None
    for section, keys in _SECTIONS.items():
        if key in keys and section in parent and parent[section] is None:
            return (
                f"{key!r} is a key of `{section}:`, which is empty here: indent it under "
                f"`{section}:` (YAML nests by indentation)"
            )
    if key == "region" and len(path) > 1:
        # one fleet is one region; a cluster elsewhere is the fleet in another environment
        return (
            "a region is the fleet's (top level), or an environment's: for clusters in "
            "another region, declare `environments: {NAME: {region: ...}}` and deploy with "
            "--env NAME"
        )
    return _dedented_entry(path, parent.get(key))


def _dedented_entry(path: Path, value: object) -> str | None:
    """A named entry one level too far left (`web:` of a cluster's `groups:` written at the
    cluster's own keys): an unknown key whose mapping has only keys an entry of one of the
    parent's named sections takes, and all its required ones. Names that section."""
    if not isinstance(value, dict) or not value:
        return None
    from .schema import node_at

    own = node_at(tuple(path[:-1]))
    if own is None or own.kind != "object":
        return None
    for section, node in own.keys.items():
        entry = node.values if node.kind == "map" else None
        if entry is None or entry.kind != "object":
            continue
        required = {name for name, child in entry.keys.items() if child.required}
        if set(value) <= set(entry.keys) and required <= set(value):
            return (
                f"its keys are those of an entry of `{section}:`: indent {path[-1]!r} under "
                f"`{section}:` (YAML nests by indentation)"
            )
    return None


def _environments_lines(text: str) -> range:
    """The lines (1-based) of the top-level `environments:` block as written, or none."""
    lines = text.splitlines()
    start = next((n for n, line in enumerate(lines, 1) if line.startswith("environments:")), 0)
    if not start:
        return range(0)
    end = next(
        (
            n
            for n, line in enumerate(lines[start:], start + 1)
            if line[:1] not in ("", " ", "\t", "#", "-")
        ),
        len(lines) + 1,
    )
    return range(start, end)


def _misspelt_in_environment(document: Document, path: Path) -> str | None:
    """A named entry an environment's `set:` adds that misses required keys, named like one
    the fleet has (`apii:` for `api:`): set: added it instead of changing the other."""
    if len(path) < 2 or not isinstance(path[-1], str):
        return None
    inside = _environments_lines(document.text)
    found, siblings = _value_at(document, path[:-1])
    if not inside or not found or not isinstance(siblings, dict):
        return None
    if document.locate(path).line not in inside:
        return None
    own = [
        name
        for name in siblings
        if isinstance(name, str)
        and name != path[-1]
        and document.locate((*path[:-1], name)).line not in inside
    ]
    import difflib

    close = difflib.get_close_matches(path[-1], own, n=1, cutoff=0.6)
    if not close:
        return None
    return (
        f"the environment adds {path[-1]!r} as a new entry beside {close[0]!r} of the fleet: "
        f"to change that one, write its name ({close[0]!r}) under set:"
    )


def hint(document: Document, issue: Issue) -> str | None:
    """One sentence on the likely cause of `issue`, or None."""
    if issue.code == "E101":
        return _indentation(document, tuple(issue.path))
    if issue.code == "E104":
        return _misspelt_in_environment(document, tuple(issue.path))
    if issue.code in ("E103", "E107") and issue.path:
        found, value = _value_at(document, tuple(issue.path))
        units = _units(issue.path[-1], value) if found else None
        if units is not None:
            return units
    if issue.code == "E103" and len(issue.path) >= 2:
        # `capacity:` with nothing under it (its keys one level too far left)
        section = issue.path[-1]
        found, parent = _value_at(document, tuple(issue.path[:-1]))
        if found and isinstance(parent, dict) and parent.get(section, 0) is None:
            # the section's keys written beside it, unknown there (E101): a key the parent
            # has of its own (a cluster's `security_groups`) is not the section's
            from .schema import node_at

            own = node_at(tuple(issue.path[:-1]))
            allowed = own.keys if own is not None and own.kind == "object" else {}
            stray = [k for k in _SECTIONS.get(str(section), ()) if k in parent and k not in allowed]
            if stray:
                return f"its keys ({', '.join(stray)}) are written beside it: indent them under it"
    return None
