"""Environments in one fleet file: `environments: {NAME: {region, name_prefix, set}}`.

`--env NAME` selects one before anything else reads the file: its `region` and `name_prefix`
replace the top level's, and `set:` is merged into the document (mappings key by key, any
other value replaced, `null` deleting the key). The merge is done on the composed YAML
nodes, so every value keeps the position it was written at: an error in a value an
environment sets is located at that value, in the environment's block.

An environment's `name_prefix` defaults to its name, so that two environments of one fleet
never name the same stacks; the fleet's identity (the `nixecs:fleet` tag every destructive
call checks) includes the environment too (Fleet.identity), so the two can share an account
without touching each other.
"""

from __future__ import annotations

import yaml

from .environment_keys import ENV_KEYS, KEY, NAME_RE
from .yaml12 import NULL, NULLS, PLAIN, YamlError

__all__ = ["ENV_KEYS", "KEY", "NAME_RE", "merge", "names", "need_one", "select"]
# What an environment may not change with `set:` (they are not per environment).
FIXED = ("version", KEY)


def _scalar(node: yaml.Node) -> str | None:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else None


def _null(node: yaml.Node) -> bool:
    """A null as written: `~`, `null` or nothing, untagged (yaml12 resolves plain scalars
    late, so their tag is PLAIN here), or tagged `!!null`."""
    if not isinstance(node, yaml.ScalarNode):
        return False
    if node.tag == PLAIN:
        return not node.value or node.value in NULLS
    return bool(node.tag == NULL)


def _given(env: str) -> str:
    """How the user chose `env`, for a message: NIXECS_ENV in the shell is easy to forget."""
    import os

    return f"NIXECS_ENV={env}" if os.environ.get("NIXECS_ENV") == env else f"--env {env}"


def _error(message: str, node: yaml.Node, code: str) -> YamlError:
    return YamlError(message, node.start_mark.line + 1, node.start_mark.column + 1, code)


def _block(root: yaml.Node) -> tuple[yaml.Node, yaml.Node] | None:
    """(key node, value node) of `environments:`, or None."""
    if not isinstance(root, yaml.MappingNode):
        return None
    for key, value in root.value:
        if _scalar(key) == KEY:
            return key, value
    return None


def _not_a_mapping(block: yaml.Node) -> bool:
    return not isinstance(block, yaml.MappingNode) or not block.value


def _shape_error(block: yaml.Node) -> YamlError:
    return _error(
        "environments must be a mapping of NAME: {region, name_prefix, set}", block, "E103"
    )


def need_one(root: yaml.Node) -> YamlError | None:
    """The error for reading a file that declares environments as none of them."""
    found = _block(root)
    if found is None:
        return None
    if _not_a_mapping(found[1]):  # no names to list: what is wrong is the block itself
        return _shape_error(found[1])
    return _error(
        f"this fleet file declares environments ({', '.join(names(root))}): pass --env NAME",
        found[0],
        "E169",
    )


def names(root: yaml.Node | None) -> list[str]:
    """The environments a document declares, in file order (none: [])."""
    found = _block(root) if root is not None else None
    if found is None or not isinstance(found[1], yaml.MappingNode):
        return []
    return [name for key, _ in found[1].value if (name := _scalar(key)) is not None]


def merge(base: yaml.Node, patch: yaml.Node, path: tuple[str | None, ...] = ()) -> yaml.Node | None:
    """`patch` over `base` (at `path` of the document): mappings merged key by key, anything
    else replaced; a null in the patch deletes (None), but not a required key (E104 at the
    null: the fleet would miss the key, reported where it was deleted)."""
    if _null(patch):
        return None
    if not (isinstance(base, yaml.MappingNode) and isinstance(patch, yaml.MappingNode)):
        return patch
    merged: list[tuple[yaml.Node, yaml.Node]] = []
    patches = {_scalar(k): (k, v) for k, v in patch.value}
    for key, value in base.value:
        name = _scalar(key)
        if name in patches:
            given = patches.pop(name)[1]
            if _null(given) and _required((*path, name)):
                raise _error(
                    f"this null deletes {name!r}, a key the fleet requires: give it a value instead",
                    given,
                    "E104",
                )
            new = merge(value, given, (*path, name))
            if new is not None:
                merged.append((key, new))
        else:
            merged.append((key, value))
    merged += [(key, value) for key, value in patches.values() if not _null(value)]
    return yaml.MappingNode(base.tag, merged, base.start_mark, base.end_mark, base.flow_style)


def _required(path: tuple[str | None, ...]) -> bool:
    """Whether the declaration (fleet/schema.py) requires the key at `path`; asked only for
    a key a null deletes."""
    from .schema import node_at

    node = node_at(tuple("" if part is None else part for part in path))
    return node is not None and node.required


def select(root: yaml.Node, env: str | None) -> yaml.Node:
    """The document as environment `env` sees it (`environments:` removed); with `env` None,
    the document without its environments."""
    found = _block(root)
    if found is None:
        if env is not None:
            raise _error(
                f"{_given(env)}: this fleet file declares no environments: "
                + ("unset NIXECS_ENV" if _given(env) != f"--env {env}" else "drop --env"),
                root,
                "E169",
            )
        return root
    key_node, block = found
    assert isinstance(root, yaml.MappingNode)
    rest = [(k, v) for k, v in root.value if k is not key_node]
    if _not_a_mapping(block):
        raise _shape_error(block)
    for name_node, spec in block.value:
        name = _scalar(name_node)
        if name is None or not NAME_RE.fullmatch(name):
            raise _error(
                f"environment name {name!r} must match [a-z][a-z0-9-]{{0,31}}", name_node, "E107"
            )
        if not isinstance(spec, yaml.MappingNode):
            raise _error(
                f"environment {name} must be a mapping of region, name_prefix, set", spec, "E103"
            )
        for spec_key, spec_value in spec.value:
            if _scalar(spec_key) not in ENV_KEYS:
                raise _error(
                    f"unknown key {_scalar(spec_key)!r} in environment {name} "
                    f"(allowed: {', '.join(ENV_KEYS)}; other keys go under set:)",
                    spec_key,
                    "E101",
                )
            if _scalar(spec_key) == "set":
                if not isinstance(spec_value, yaml.MappingNode):
                    raise _error("set: must be a mapping merged into the fleet", spec_value, "E103")
                for fixed_key, _ in spec_value.value:
                    if _scalar(fixed_key) in FIXED:
                        raise _error(
                            f"an environment cannot set {_scalar(fixed_key)!r}", fixed_key, "E101"
                        )
    document = yaml.MappingNode(root.tag, rest, root.start_mark, root.end_mark, root.flow_style)
    if env is None:
        return document
    chosen = next((spec for n, spec in block.value if _scalar(n) == env), None)
    if chosen is None:
        declared = ", ".join(names(root))
        raise _error(f"{_given(env)}: no such environment (declared: {declared})", key_node, "E169")
    assert isinstance(chosen, yaml.MappingNode)
    patch_items = []
    given = {_scalar(k): v for k, v in chosen.value}
    for key in ("region", "name_prefix"):
        if key in given:
            patch_items.append((next(k for k, _ in chosen.value if _scalar(k) == key), given[key]))
    if "name_prefix" not in given:  # two environments never name the same stacks
        mark = chosen.start_mark
        patch_items.append(
            (
                yaml.ScalarNode("tag:yaml.org,2002:str", "name_prefix", mark, mark),
                yaml.ScalarNode("tag:yaml.org,2002:str", env, mark, mark),
            )
        )
    patch = yaml.MappingNode(
        "tag:yaml.org,2002:map", patch_items, chosen.start_mark, chosen.end_mark
    )
    merged = merge(document, patch)
    if "set" in given:
        merged = merge(merged, given["set"]) if merged is not None else None
    assert merged is not None
    return merged
