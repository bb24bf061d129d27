"""The fleet file's declaration language: a `Node` per value (type, required/default, allowed
values, bounds, pattern, the AWS limit it mirrors, example, description), and the per-value
checking derived from it.

Each section's nodes are declared once, next to the code that builds its model (the loader
and its modules), which checks a section's values with `keys`/`values`/`check` below;
fleet/schema.py assembles the nodes into the file's tree, from which the JSON Schema
(`nixecs schema`) and docs/fleet.md are generated. Rules relating several keys stay
imperative (they are not a value's).

The messages are settings.check_*'s, so a fleet file's diagnostics read the same whether a
section is declared here or checked by hand (the host's settings are).
"""

from __future__ import annotations

import math
import re
from typing import TypeVar

from .. import settings as s
from ..settings import Issue

Path = tuple[object, ...]
T = TypeVar("T")
SCALARS = frozenset(("string", "integer", "number", "boolean"))


class Node:
    """One value of the fleet file. `kind`: string, integer, number, boolean, object (fixed
    keys), map (free keys matching `names`, each a `values` node), list (of `values`), any.
    `rule` explains `pattern` in a message (the whole message when it holds `{value}`, which
    stands for the value; for an integer: for a value out of range or not allowed; for a map:
    for a name outside `names`, `{name}` standing for it), `code` is the one a value (a map's
    name) outside it gets; a map's `min_items` counts its entries. `what` is what a value of
    the wrong type is told was expected ("a list of ports"; default: its type's name).

    A plain class, not a dataclass: `validate` builds the declaration at import, and a
    dataclass's generated methods cost more than the few hundred nodes (`make bench`)."""

    __slots__ = (
        "_regex",
        "_shape",
        "any_of",
        "aws",
        "code",
        "default",
        "doc",
        "enum",
        "example",
        "keys",
        "kind",
        "max_items",
        "maximum",
        "min_items",
        "minimum",
        "names",
        "one_of",
        "only_one",
        "pattern",
        "required",
        "rule",
        "unique",
        "values",
        "what",
    )  # fmt: skip

    def __init__(
        self,
        kind: str,
        doc: str = "",
        *,
        required: bool = False,
        default: object = None,
        enum: tuple[object, ...] = (),
        minimum: int | None = None,
        maximum: int | None = None,
        pattern: str | None = None,  # full-match regex (Python; also ECMA 262 where given)
        aws: str = "",  # the AWS limit or rule the check mirrors
        example: object = None,
        keys: dict[str, Node] | None = None,  # object
        values: Node | None = None,  # map values, list items
        names: str | None = None,  # map: the keys' pattern
        any_of: tuple[Node, ...] = (),  # alternatives (e.g. a string or a mapping)
        rule: str = "",
        code: str = s.E_VALUE,
        min_items: int | None = None,  # list
        max_items: int | None = None,  # list
        what: str = "",
        unique: bool = False,  # list: each item once (the loader refuses a repeat itself)
        one_of: tuple[str, ...] = (),  # object: at least one of these keys (exactly one: only_one)
        only_one: bool = False,
    ) -> None:
        self.kind = kind
        self.doc = doc
        self.required = required
        self.default = default
        self.enum = enum
        self.minimum = minimum
        self.maximum = maximum
        self.pattern = pattern
        self.aws = aws
        self.example = example
        self.keys: dict[str, Node] = keys if keys is not None else {}
        self.values = values
        self.names = names
        self.any_of = any_of
        self.rule = rule
        self.code = code
        self.min_items = min_items
        self.max_items = max_items
        self.what = what
        self.unique = unique
        self.one_of = one_of
        self.only_one = only_one
        # Derived when first checked (validate pays for the sections a file uses only).
        self._shape: tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] | None = None
        self._regex: re.Pattern[str] | None = None

    def shape(self) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """An object's keys, its required keys, and the scalar keys the model needs (the
        required ones and those with a default)."""
        if self._shape is None:
            self._shape = (
                tuple(self.keys),
                tuple(k for k, v in self.keys.items() if v.required),
                tuple(
                    k
                    for k, v in self.keys.items()
                    if v.kind in SCALARS and (v.required or v.default is not None)
                ),
            )
        return self._shape

    def regex(self) -> re.Pattern[str]:
        """The compiled `pattern` (a map's: its `names`)."""
        if self._regex is None:
            pattern = self.pattern if self.pattern is not None else self.names
            assert pattern is not None
            self._regex = re.compile(pattern)
        return self._regex

    def __repr__(self) -> str:
        return f"Node({self.kind!r}, {self.doc!r})"


def obj(doc: str, /, *, order: tuple[str, ...] = (), example: object = None, **keys: Node) -> Node:
    """An object; `order` (the loader's own key tuple) orders the keys as the loader lists them."""
    ordered = {k: keys[k] for k in order if k in keys} | keys
    return Node("object", doc, keys=ordered, example=example)


def one_of(node: Node, keys: tuple[str, ...], *, only: bool = False) -> Node:
    """`node`, an object that needs at least one of `keys` (`only`: exactly one). The loader's
    rule reports it in its own words (E104, E102); the JSON Schema and the reference state it."""
    assert node.kind == "object" and all(k in node.keys for k in keys), keys
    node.one_of, node.only_one = keys, only
    return node


def req(node: Node) -> Node:
    copied = Node(node.kind)
    for name in Node.__slots__:
        setattr(copied, name, getattr(node, name))
    copied.required = True
    return copied


def string(doc: str, **kw: object) -> Node:
    return Node("string", doc, **kw)  # type: ignore[arg-type]


def integer(doc: str, low: int | None = None, high: int | None = None, **kw: object) -> Node:
    return Node("integer", doc, minimum=low, maximum=high, **kw)  # type: ignore[arg-type]


def number(doc: str, **kw: object) -> Node:
    return Node("number", doc, **kw)  # type: ignore[arg-type]


def boolean(doc: str, default: bool | None, **kw: object) -> Node:
    return Node("boolean", doc, default=default, **kw)  # type: ignore[arg-type]


def enum(doc: str, values: tuple[object, ...], **kw: object) -> Node:
    return Node("string", doc, enum=tuple(values), **kw)  # type: ignore[arg-type]


def strings(doc: str, item: Node, **kw: object) -> Node:
    return Node("list", doc, values=item, **kw)  # type: ignore[arg-type]


def mapping(doc: str, names: str | None, value: Node, **kw: object) -> Node:
    return Node("map", doc, names=names, values=value, **kw)  # type: ignore[arg-type]


def either(doc: str, *alternatives: Node, **kw: object) -> Node:
    return Node("any", doc, any_of=alternatives, **kw)  # type: ignore[arg-type]


# -- checking a value against its node -------------------------------------------------------


def check(node: Node, value: object, path: Path, issues: list[Issue]) -> object | None:
    """`value` against a scalar node: type, allowed values, bounds, pattern. Problems go to
    `issues`; None when there is one."""
    kind = node.kind
    if kind == "boolean":
        return s.check_bool(value, path, issues)
    if kind == "integer":
        if (
            node.rule
            and isinstance(value, int)
            and not isinstance(value, bool)
            and (
                (node.minimum is not None and value < node.minimum)
                or (node.maximum is not None and value > node.maximum)
                or (node.enum and value not in node.enum)
            )
        ):
            issues.append(Issue(path, s.E_VALUE, node.rule.format(value=value)))
            return None
        number = s.check_int(value, path, issues, node.minimum, node.maximum)
        if number is not None and node.enum and number not in node.enum:
            shown = ", ".join(map(str, node.enum))
            issues.append(Issue(path, s.E_VALUE, f"{number} is not one of: {shown}"))
            return None
        return number
    if kind == "number":
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
        ):
            issues.append(
                Issue(path, s.E_TYPE, f"expected a finite number, got {s.type_name(value)}")
            )
            return None
        return float(value)
    if kind == "string":
        if node.code == s.E_DURATION:
            # the host's own parser (settings.check_duration), whose messages a group's
            # durations must read the same in (tests/test_fleet_agreement.py)
            return s.check_duration(value, path, issues)
        if node.enum:
            return s.check_enum(value, path, issues, node.enum)  # type: ignore[arg-type]
        if node.pattern is not None and "{value" in node.rule:
            # The rule is the whole message: a number written for a text in another form (a
            # duration's `15` for `15m`) is told the form, not only the type.
            regex = node.regex()
            if isinstance(value, str) and regex.fullmatch(value):
                return value
            if isinstance(value, str) or (
                isinstance(value, (int, float))
                and not isinstance(value, bool)
                and not regex.fullmatch(str(value))
            ):
                issues.append(Issue(path, node.code, node.rule.format(value=value)))
                return None
            return s.check_str(value, path, issues)  # the right form, unquoted: its type
        if node.pattern is not None:
            return s.check_pattern(
                value, path, issues, node.regex(), node.rule or node.doc, node.code
            )
        return s.check_str(value, path, issues)
    raise TypeError(f"not a scalar node: {kind}")  # pragma: no cover - a declaration bug


def items(node: Node, value: object, path: Path, issues: list[Issue]) -> tuple[object, ...]:
    """A list node's value: a list (of at least `min_items`), each scalar item checked; the
    items that pass."""
    if not isinstance(value, list):
        issues.append(Issue(path, s.E_TYPE, f"expected a list, got {s.type_name(value)}"))
        return ()
    if node.min_items and not value:
        issues.append(Issue(path, s.E_VALUE, "must not be empty"))
    item = member(node)
    checked = [check(item, entry, (*path, i), issues) for i, entry in enumerate(value)]
    return tuple(entry for entry in checked if entry is not None)


def texts(
    parent: Node, m: dict[str, object], key: str, path: Path, issues: list[Issue]
) -> tuple[str, ...]:
    """A list of strings at `parent`'s `key` (none when left out): the items that pass.

    A key left out is no list to find empty: a required one is reported missing (E104), a
    refused null (`_without_nulls`) is its own one error."""
    if key not in m:
        return ()
    return tuple(map(as_str, items(parent.keys[key], m[key], (*path, key), issues)))


# The advice on a null value, which a hint on the likely cause replaces (fleet/loader.py).
NULL_ADVICE = ": write its value, or leave the key out"


def keys(
    node: Node, value: object, path: Path, issues: list[Issue], what: str = "a mapping"
) -> dict[str, object] | None:
    """An object node's mapping: its unknown and missing keys reported; None when `value` is
    not a mapping."""
    allowed, required, _ = node.shape()
    if value is None and path and isinstance(path[-1], str):
        # A named entry (a cluster, group, service...) written with nothing after it: told
        # as a key's null is (`_without_nulls`), which is what it is.
        issues.append(
            Issue(
                path,
                s.E_TYPE,
                f"expected {what}, got null (`{path[-1]}:` has nothing after it){NULL_ADVICE}",
            )
        )
        return None
    m = s.check_mapping(value, path, issues, allowed, required, what)
    if m is None or None not in m.values():
        return m
    return _without_nulls(node, m, path, issues)


def refused(issues: list[Issue], path: Path) -> bool:
    """Whether the key at `path` was refused: written null (`_without_nulls` drops it) or with
    a value its own rule refused, reported at the key. A rule that would find it missing (a
    required key, one of several, a non-empty list) or read it with others (a listener's
    protocol, an image's tag) says nothing more, one mistake being one error."""
    return any(i.path == path for i in issues)


def refused_below(issues: list[Issue], path: Path, names: tuple[str, ...]) -> bool:
    """Whether a key named one of `names` below `path` was refused (as `refused` says: null,
    or a value its own rule refused): a rule on what such keys say together (a service's
    ports) stays quiet about it."""
    depth = len(path)
    return any(
        len(i.path) > depth and i.path[:depth] == path and i.path[-1] in names for i in issues
    )


# What a key's null is refused as: `key:` with nothing after it is YAML's null.
_EXPECTED = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping",
    "map": "a mapping",
    "list": "a list",
    "any": "a value",
}


def expected(node: Node) -> str:
    """What a value of `node` is, as a message tells it: its `what`, else its type's name
    (each alternative's: "a string or a list")."""
    if node.what:
        return node.what
    if node.any_of:
        return " or ".join(dict.fromkeys(expected(a) for a in node.any_of))
    return _EXPECTED[node.kind]


def _without_nulls(
    node: Node, m: dict[str, object], path: Path, issues: list[Issue]
) -> dict[str, object]:
    """`m` without its null keys, each reported (E103) unless its node takes any value.

    A key written with nothing after it (`drain:`) is null in YAML, and almost always a value
    forgotten: taken as absent it would silently mean the default (no draining, no scaling,
    no health check), which is not what whoever wrote the key asked for. The JSON Schema
    refuses null for the same keys (their `type` has no "null"), so an editor and `validate`
    say the same (tests/test_fleet_agreement.py tries null at every optional key). Only a
    node of any value (an override's, an environment's `set:`) gives null a meaning."""
    kept: dict[str, object] = {}
    for key, item in m.items():
        child = node.keys.get(key)
        if item is None and child is not None and (child.kind != "any" or child.any_of):
            issues.append(
                Issue(
                    (*path, key),
                    s.E_TYPE,
                    f"expected {expected(child)}, got null (`{key}:` has nothing after it)"
                    f"{NULL_ADVICE}",
                )
            )
            continue
        kept[key] = item
    return kept


def entries(
    node: Node, value: object, path: Path, issues: list[Issue], what: str, code: str = s.E_TYPE
) -> dict[str, object] | None:
    """A map node's mapping, its entries whose name passes: a value that is not a mapping
    (`what` names it), one of fewer than `min_items` entries, reported with `code`; a name
    outside `names` with the node's `code` and `rule` (`{name}` standing for the name). None
    when `value` is not a mapping; its values are the caller's to check (`member`)."""
    if not isinstance(value, dict):
        issues.append(Issue(path, code, f"expected {what}, got {s.type_name(value)}"))
        return None
    if node.min_items and len(value) < node.min_items:
        issues.append(Issue(path, code, f"expected {what}, got an empty mapping"))
        return None
    if node.names is None:
        return value
    regex = node.regex()
    passed: dict[str, object] = {}
    for name, item in value.items():
        if isinstance(name, str) and regex.fullmatch(name):
            passed[name] = item
        else:
            issues.append(Issue((*path, name), node.code, node.rule.format(name=name)))
    return passed


def values(
    node: Node, m: dict[str, object], path: Path, issues: list[Issue], own: tuple[str, ...] = ()
) -> dict[str, object]:
    """Each scalar key's checked value, or its declared default when the key is left out. A
    scalar key whose value is refused, and one left out without a default, is not in the
    result (`complete` says whether one is missing); the other keys (objects, lists, maps),
    and the keys the caller checks itself (`own`: a name looked up, a value with its own
    diagnostic, a key of another module), are returned as written."""
    result: dict[str, object] = {}
    for key, child in node.keys.items():
        if key in own:
            if key in m:
                result[key] = m[key]
        elif key not in m:
            if child.default is not None:
                result[key] = child.default
        elif child.kind in SCALARS:
            checked = check(child, m[key], (*path, key), issues)
            if checked is not None:
                result[key] = checked
        else:
            result[key] = m[key]
    return result


def complete(node: Node, v: dict[str, object], own: tuple[str, ...] = ()) -> bool:
    """Whether `values` has every scalar key the model needs: the required ones and those
    with a default (a refused or missing one is reported already)."""
    return all(key in v for key in node.shape()[2] if key not in own)


def section(
    node: Node,
    value: object,
    path: Path,
    issues: list[Issue],
    what: str = "a mapping",
    own: tuple[str, ...] = (),
) -> dict[str, object] | None:
    """`keys` and `values` at once, for a caller that counts the mapping's own findings with
    its values'."""
    m = keys(node, value, path, issues, what)
    return None if m is None else values(node, m, path, issues, own)


def defaults(node: Node) -> dict[str, object]:
    """An object node's declared defaults (the model's defaults are read from here)."""
    return {k: v.default for k, v in node.keys.items() if v.default is not None}


def default_of(node: Node, key: str, kind: type[T]) -> T:
    """The declared default of an object node's key, as the model's type."""
    value = node.keys[key].default
    assert isinstance(value, kind), (key, value)
    return value


def member(node: Node) -> Node:
    """A list's item node, or a map's value node."""
    assert node.values is not None, node.doc
    return node.values


# `values` checks each value against its node; these narrow one to the model's type (a
# mismatch is a declaration bug, never an input error).
def as_int(value: object) -> int:
    assert isinstance(value, int) and not isinstance(value, bool), value
    return value


def as_float(value: object) -> float:
    assert isinstance(value, float), value
    return value


def as_str(value: object) -> str:
    assert isinstance(value, str), value
    return value
