"""The loader and the JSON Schema, both derived from the declaration (nixecs.fleet.schema),
agree on every value the declaration bounds, enumerates or patterns (issue 18, item 1).

For each such key, a valid fleet is mutated in that one key — to each bound and just past it,
to a value of the wrong type, to each allowed value and one outside the enumeration, to the
example and a text outside the pattern — and the loader and the JSON Schema must both accept
it or both refuse it, as the declaration says.

The loader accepts a value when it has no per-value finding (type, range, allowed values,
pattern, unknown or missing key) at the mutated key: a rule relating several keys (min > max,
a timeout below its interval, ...) is the checks stage's, not the declaration's, and a value
at a bound may break one. Where the declared range is the union of ranges another key selects
(a volume's IOPS by its type), CONTEXT sets that other key so the whole range is reachable.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest

from conftest import EXAMPLES
from nixecs import settings
from nixecs.diagnostics import InvalidInput
from nixecs.fleet import loader, parse
from nixecs.fleet.decl import member
from nixecs.fleet.schema import Node, json_schema, walk
from nixecs.fleet.yaml12 import load
from nixecs.settings import Issue
from nixecs.testing.fleetgen import generate_fleet

MAXIMAL = Path(__file__).parent / "fleets" / "maximal.yml"
FLEETS = [MAXIMAL, *sorted(EXAMPLES.glob("*.yml"))]
# The codes of a value judged alone (diagnostics.CODES): what the declaration decides.
# Issue 20's keys answer their own codes for a value alone: E172 a path that is not
# absolute, E175 a secret of neither form, E176 a Secrets Manager ARN's suffix, E181 an
# environment file, E183 a schedule expression.
PER_VALUE = frozenset(
    (
        *("E101", "E103", "E104", "E105", "E106", "E107", "E116", "E117", "E147"),
        *("E172", "E175", "E176", "E181", "E183"),
    )
)
# A name the loader looks up (a group, a container, an agent variable, a logical id): a name
# outside the declared pattern is refused by the look-up, with the look-up's code.
LOOKED_UP = frozenset(("E108", "E118", "E163"))
DELETE = object()
# Sibling keys set before mutating a key whose declared range is a union (see above).
CONTEXT: dict[str, dict[str, object]] = {
    # io2: 100-256000 IOPS, 1000 per GiB; throughput is gp3's only
    # (https://docs.aws.amazon.com/ebs/latest/userguide/provisioned-iops.html)
    "clusters.*.groups.*.root_volume.iops": {
        "type": "io2",
        "size_gib": 1000,
        "throughput": DELETE,
    },
    # gp3: at most 0.25 MiB/s per provisioned IOPS, 500 IOPS per GiB
    # (https://docs.aws.amazon.com/ebs/latest/userguide/general-purpose.html)
    "clusters.*.groups.*.root_volume.throughput": {"iops": 8000, "size_gib": 100},
}
# A different place than the first for a key whose declared range is that of one form: the
# service's cpu is the shorthand container's (0-196608); a task's own cpu (with
# `containers:`) is 128 or more, a rule between two keys.
PLACE: dict[str, Concrete] = {
    "clusters.*.services.*.cpu": ("clusters", "prod", "services", "api", "cpu"),
    "clusters.*.tasks.*.cpu": ("clusters", "prod", "tasks", "once", "cpu"),
}

Concrete = tuple[object, ...]


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def maximal() -> dict[str, object]:
    value = load(MAXIMAL.read_bytes(), str(MAXIMAL)).value
    assert isinstance(value, dict)
    return value


def instances(document: object, path: tuple[str, ...]) -> Iterator[Concrete]:
    """The concrete paths in `document` of schema path `path` (`*`: any key, `[]`: any item)."""
    if not path:
        yield ()
        return
    head, rest = path[0], path[1:]
    children: list[tuple[object, object]] = []
    if head == "*" and isinstance(document, dict):
        children = list(document.items())
    elif head == "[]" and isinstance(document, list):
        children = list(enumerate(document))
    elif head not in ("*", "[]") and isinstance(document, dict) and head in document:
        children = [(head, document[head])]
    for key, child in children:
        for tail in instances(child, rest):
            yield (key, *tail)


def get(document: object, where: Concrete) -> object:
    for part in where:
        document = document[part]  # type: ignore[index]
    return document


def with_value(document: object, where: Concrete, value: object) -> object:
    copied = copy.deepcopy(document)
    get(copied, where[:-1])[where[-1]] = value  # type: ignore[index]
    return copied


def without(document: object, where: Concrete) -> object:
    copied = copy.deepcopy(document)
    del get(copied, where[:-1])[where[-1]]  # type: ignore[attr-defined]
    return copied


# -- the mutations the declaration implies ------------------------------------------------

_PYTHON_KINDS: list[tuple[object, frozenset[str]]] = [
    ("7", frozenset(("string",))),
    (7, frozenset(("integer", "number"))),
    (7.5, frozenset(("number",))),
    (True, frozenset(("boolean",))),
    ([], frozenset(("list",))),
    ({}, frozenset(("object", "map"))),
]
_NOT_MATCHING = ["", " ", "a b", "-", "UPPER", "x" * 2100, "\u00e9", "1", "a"]


def place(document: object, path: tuple[str, ...]) -> Concrete | None:
    """Where to try a key: its first place in `document`, else (a key the fleet leaves out)
    where it would be written in its first parent."""
    found = PLACE.get(".".join(path)) or next(instances(document, path), None)
    if found is None and path[-1] not in ("*", "[]"):
        parent = next(instances(document, path[:-1]), None)
        if isinstance(get(document, parent or ()), dict) and parent is not None:
            found = (*parent, path[-1])
    return found


def alternatives(path: tuple[str, ...]) -> list[Node]:
    """Every node the declaration has at `path` (an `either` declares several)."""
    return [node for p, node in walk() if p == path and node.kind != "any"]


def wrong_type(nodes: list[Node]) -> object | None:
    kinds = {node.kind for node in nodes}
    for value, accepted_by in _PYTHON_KINDS:
        if not kinds & accepted_by:
            return value
    return None


def mutations(path: tuple[str, ...], node: Node) -> list[tuple[str, object, bool]]:
    """(what, value, valid by the declaration) for one declared node."""
    found: list[tuple[str, object, bool]] = []
    if node.kind in ("integer", "number"):
        if node.minimum is not None:
            found += [("the minimum", node.minimum, True)]
            found += [("below the minimum", node.minimum - 1, False)]
        if node.maximum is not None:
            found += [("the maximum", node.maximum, True)]
            found += [("above the maximum", node.maximum + 1, False)]
        if node.kind == "integer":
            found.append(("a fraction", 7.5, False))
    for value in node.enum:
        found.append((f"allowed value {value!r}", value, True))
    if node.enum:
        outside = (
            "not-an-allowed-value"
            if node.kind == "string"
            else next(n for n in (2, 4, -1, 999_999) if n not in node.enum)
        )
        found.append(("a value not allowed", outside, False))
    if node.pattern is not None:
        compiled = re.compile(node.pattern)
        if isinstance(node.example, str):
            found.append(("the example", node.example, True))
        bad = next((t for t in _NOT_MATCHING if not compiled.fullmatch(t)), None)
        assert bad is not None, f"no text outside {node.pattern}"
        found.append((f"text outside the pattern ({bad[:10]!r})", bad, False))
    if node.kind == "map":
        # declared not empty, or empty and accepted (a loader's own "non-empty" is declared)
        found.append(("an empty mapping", {}, not node.min_items))
    if node.kind == "map" and node.max_items is not None and isinstance(node.example, dict):
        # the example's first entry, numbered (the map's names must take the number)
        name, entry = next(iter(node.example.items()))
        most = {f"{name}{i}": entry for i in range(node.max_items)}
        found.append(("the most entries", most, True))
        found.append(("one entry too many", {**most, f"{name}x": entry}, False))
    if node.kind == "list":
        found.append(("an empty list", [], not node.min_items))
    if node.kind == "list" and node.max_items is not None and isinstance(node.example, list):
        # distinct items where the item's pattern allows (a list may refuse repeats): the
        # example's first, numbered; else the example's first repeated
        item = member(node)
        if item.kind == "object":
            # a list of mappings (target tracking policies): the example's first, repeated
            # (a repeat is a cross-field rule's, not the declaration's)
            most = [node.example[0]] * node.max_items
            found.append(("the most items", most, True))
            found.append(("one item too many", [*most, node.example[0]], False))
        else:
            # numbered at the end, or before an extension the pattern wants (app0.env)
            first = str(node.example[0])
            stem, dot, extension = first.rpartition(".")
            forms = [lambda i: f"{first}{i}"]
            if dot:
                forms.append(lambda i: f"{stem}{i}.{extension}")
            form = next(
                (f for f in forms if item.pattern is None or re.fullmatch(item.pattern, f(0))),
                None,
            )
            if form is None:
                most = [first] * node.max_items
                extra = f"{first}x"
            else:
                most = [form(i) for i in range(node.max_items)]
                extra = form(node.max_items)
            found.append(("the most items", most, True))
            found.append(("one item too many", [*most, extra], False))
    if found or node.kind == "boolean":
        wrong = wrong_type(alternatives(path))
        if wrong is not None:
            found.append((f"a wrong type ({type(wrong).__name__})", wrong, False))
    return found


NULL = "null (the key written with nothing after it)"


def takes_null(path: tuple[str, ...], node: Node) -> bool:
    """Whether `path` is an optional key to try null at: `key:` with nothing after it is null
    in YAML, which the declaration refuses wherever a key has a type (fleet/decl.py keys),
    as the JSON Schema does; a value of any type (an override's, null deleting) takes it."""
    return (
        path[-1] not in ("*", "[]")
        and not node.required
        and (node.kind != "any" or bool(node.any_of))
    )


def cases() -> Iterator[tuple[str, Concrete, str, object, bool]]:
    document = maximal()
    seen: set[tuple[tuple[str, ...], str]] = set()
    for path, node in walk():
        # `environments:` is taken out before the loader reads the file (environments.select
        # checks it): test_environments.py holds it against the JSON Schema
        if not path or path[0] == "environments":
            continue
        key = ".".join(path)
        where = place(document, path)
        if where is None:
            continue
        found = mutations(path, node)
        if takes_null(path, node):
            found.append((NULL, None, False))
        for what, value, valid in found:
            if (path, what) not in seen:
                seen.add((path, what))
                yield key, where, what, value, valid
        if node.kind == "map" and node.names is not None:
            entry = next(instances(document, (*path, "*")), None)
            if entry is not None:
                bad = next(t for t in _NOT_MATCHING if not re.fullmatch(node.names, t))
                renamed = copy.deepcopy(get(document, entry[:-1]))
                assert isinstance(renamed, dict)
                renamed[bad] = renamed.pop(entry[-1])
                yield key, entry[:-1], f"a name outside the pattern ({bad[:10]!r})", renamed, False


CASES = list(cases())


def loader_findings(document: object) -> list[Issue]:
    """Every finding of the loader on `document` (with its path, before positions)."""
    builder = loader._Builder(load(json.dumps(document), "mutated.yml"))
    builder.fleet()
    return builder.issues


def findings_at(findings: list[Issue], where: Concrete, codes: frozenset[str]) -> list[Issue]:
    return [i for i in findings if i.code in codes and tuple(i.path)[: len(where)] == where]


def mutate(key: str, where: Concrete, value: object) -> object:
    document: object = maximal()
    for sibling, setting in CONTEXT.get(key, {}).items():
        place = (*where[:-1], sibling)
        document = (
            without(document, place) if setting is DELETE else with_value(document, place, setting)
        )
    return with_value(document, where, value)


@pytest.mark.parametrize(
    ("key", "where", "what", "value", "valid"),
    CASES,
    ids=[f"{key}: {what}" for key, _, what, _, _ in CASES],
)
def test_loader_and_json_schema_agree(
    validator: jsonschema.protocols.Validator,
    key: str,
    where: Concrete,
    what: str,
    value: object,
    valid: bool,
) -> None:
    mutated = mutate(key, where, value)
    schema_errors = [
        f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(mutated)
    ]
    findings = loader_findings(mutated)
    if valid:
        loader_refuses = findings_at(findings, where, PER_VALUE)
    else:
        # a list's item may be refused at the list ("expected a list of strings")
        at = where[:-1] if isinstance(where[-1], int) else where
        loader_refuses = findings_at(findings, at, PER_VALUE | LOOKED_UP)
    verdict = "accept" if valid else "refuse"
    assert bool(schema_errors) != valid, (
        f"{key} = {value!r:.60}: the declaration says {verdict}, the JSON Schema does not "
        f"({schema_errors})"
    )
    assert bool(loader_refuses) != valid, (
        f"{key} = {value!r:.60}: the declaration says {verdict}, the loader does not ({findings})"
    )


# The sections the host reads back at boot with settings.py's own parser (fleet/host_sections.py).
HOST_SECTIONS = ("ecs", "secrets", "drain")
HOST_CASES = [
    case
    for case in CASES
    if case[0].split(".")[:4] == ["clusters", "*", "groups", "*"]
    and case[0].split(".")[4:5] in [[s] for s in HOST_SECTIONS]
    and case[2] != NULL  # the host's settings document has no YAML: null is not written
]


@pytest.mark.parametrize(
    ("key", "where", "what", "value", "valid"),
    HOST_CASES,
    ids=[f"{key}: {what}" for key, _, what, _, _ in HOST_CASES],
)
def test_the_host_agrees_at_every_bound_of_its_sections(
    key: str, where: Concrete, what: str, value: object, valid: bool
) -> None:
    """The section as written, in a settings document: the host's parser (settings.py, the
    boot path, which cannot build the declaration) accepts it exactly when the declaration
    does."""
    mutated = mutate(key, where, value)
    group = get(mutated, where[:4])
    assert isinstance(group, dict)
    section = where[4]
    document = {"version": 1, "cluster": "prod", "group": "web", section: group[section]}
    try:
        settings.parse_settings_object(document)
    except settings.SettingsError as error:
        assert not valid, (
            f"{key} = {value!r:.60}: the host refuses what the declaration accepts ({error})"
        )
    else:
        assert valid, f"{key} = {value!r:.60}: the host accepts what the declaration refuses"


def test_every_bounded_key_is_mutated() -> None:
    """Each declared bound, enumeration and pattern has a place in the maximal fleet to be
    tried in (else the agreement above says nothing about it)."""
    document = maximal()
    missing = [
        ".".join(path)
        for path, node in walk()
        if path
        and (
            node.minimum is not None
            or node.maximum is not None
            or node.enum
            or node.pattern
            or node.min_items is not None
            or node.max_items is not None
        )
        and place(document, path) is None
        # an environment's region and name prefix are the top level's, merged in before the
        # loader reads the file: test_environments.py tries them at the environment's place
        and path[0] != "environments"
    ]
    assert missing == []


REQUIRED = [
    (path, node)
    for path, node in walk()
    if node.required and next(instances(maximal(), path), None) is not None
]


@pytest.mark.parametrize(("path", "node"), REQUIRED, ids=[".".join(p) for p, _ in REQUIRED])
def test_a_missing_required_key_is_refused_by_both(
    validator: jsonschema.protocols.Validator, path: tuple[str, ...], node: Node
) -> None:
    document = maximal()
    where = next(instances(document, path))
    mutated = without(document, where)
    assert list(validator.iter_errors(mutated)), f"{'.'.join(path)}: the JSON Schema accepts"
    with pytest.raises(InvalidInput, match=r"E104"):
        parse(json.dumps(mutated), "mutated.yml")


def generated() -> list[tuple[str, str]]:
    return [
        ("small", generate_fleet(1, 8, 8)),
        ("no-nix", generate_fleet(2, 5, 7, nix_every=0)),
        *[(path.name, path.read_text(encoding="utf-8")) for path in FLEETS],
    ]


@pytest.mark.parametrize(("name", "text"), generated(), ids=[n for n, _ in generated()])
def test_every_example_and_generated_fleet_is_accepted_by_both(
    validator: jsonschema.protocols.Validator, name: str, text: str
) -> None:
    document = load(text, name).value
    for env in (document or {}).get("environments", {}) or [None]:  # type: ignore[union-attr]
        parse(text, name, env)
    assert [e.message for e in validator.iter_errors(document)] == []


MINIMAL = """
version: 1
region: us-east-1
clusters:
  prod:
    subnets: [subnet-0a1b2c3d]
    security_groups: [sg-0a1b2c3d]
    groups:
      web: {ami: ami-0123456789abcdef0, instance_types: [m6i.large], capacity: {min: 1, max: 2}}
    services:
      web:
        group: web
        containers: {app: {image: nginx:1.27, memory: 256, ports: [80]}}
        routing: {priority: 1, path_patterns: [/]}
    load_balancer:
      vpc: vpc-0a1b2c3d
      security_groups: [sg-0b1b2c3d]
      subnets: [subnet-0a1b2c3d, subnet-0a1b2c3e]
"""


def test_the_models_defaults_are_the_declarations() -> None:
    """A key left out takes the declared default (the model keeps no copy of its own)."""
    from nixecs.fleet.containers import CONTAINER
    from nixecs.fleet.infra import ROOT_VOLUME
    from nixecs.fleet.loadbalancing import ROUTING
    from nixecs.fleet.model import DEPLOYMENT
    from nixecs.fleet.schema import GROUP, SERVICE

    fleet = parse(MINIMAL, "minimal.yml")
    group = fleet.clusters["prod"].groups["web"]
    service = fleet.clusters["prod"].services["web"]
    container = service.containers[0]
    assert group.host == GROUP.keys["host"].default
    assert group.userdata == GROUP.keys["userdata"].default
    assert group.spot is GROUP.keys["spot"].default
    assert group.hop_limit == GROUP.keys["metadata"].keys["hop_limit"].default
    assert group.root_volume.type == ROOT_VOLUME.keys["type"].default
    assert service.desired == SERVICE.keys["desired"].default
    assert service.network_mode == SERVICE.keys["network_mode"].default
    deployment = service.deployment
    assert deployment.minimum_healthy_percent == DEPLOYMENT.keys["minimum_healthy_percent"].default
    assert deployment.maximum_percent == DEPLOYMENT.keys["maximum_percent"].default
    assert deployment.circuit_breaker is DEPLOYMENT.keys["circuit_breaker"].keys["enable"].default
    assert service.routing is not None
    health = service.routing.health_check
    declared = ROUTING.keys["health_check"].keys
    assert (health.path, health.matcher, health.interval, health.timeout) == tuple(
        declared[k].default for k in ("path", "matcher", "interval", "timeout")
    )
    assert service.routing.deregistration_delay == ROUTING.keys["deregistration_delay"].default
    assert container.essential is CONTAINER.keys["essential"].default
    assert container.cpu == CONTAINER.keys["cpu"].default
    assert (
        container.ports[0].protocol
        == "tcp"
        == member(CONTAINER.keys["ports"]).any_of[1].keys["protocol"].default
    )


def test_the_parameter_patterns_agree() -> None:
    """A secret's `parameter:` is checked with the host's settings.PARAMETER_RE; the JSON
    Schema carries its ECMA-262 spelling (host_sections.PARAMETER): both answer alike on names
    at each edge of the rule (length, levels, reserved prefixes, . and .. levels, newlines)."""
    import itertools

    from nixecs.fleet.host_sections import PARAMETER

    declared = re.compile(PARAMETER)
    levels = ["a", ".", "..", "...", "aws", "AwS", "ssm", "sSm", "awsx", "x.y", "-", "_", "é", ""]
    names = ["", "/", "a", "a/b", "/a\n", "/a\nb", "\n/a", "//a", "/a/", "/a//b"]
    names += ["/" + "/".join(p) for n in (1, 2) for p in itertools.product(levels, repeat=n)]
    names += ["/a" * 15, "/a" * 16, "/" + "a" * 1010, "/" + "a" * 1011, "/" + "a" * 1009 + "\n"]
    names += [f"/{'a' * 500}/{'b' * 509}", f"/{'a' * 500}/{'b' * 510}"]
    for name in names:
        host = settings.PARAMETER_RE.fullmatch(name) is not None
        assert (declared.fullmatch(name) is not None) == host, (name[:40], host)
    assert any(settings.PARAMETER_RE.fullmatch(n) for n in names)  # both answers are tried
    assert not all(settings.PARAMETER_RE.fullmatch(n) for n in names)


def one_of_cases() -> Iterator[tuple[str, Concrete, object]]:
    """For each object that needs one of several keys (decl `one_of`): the object without any
    of them, and (exactly one: `only_one`) with two of them, from two places of the fleet."""
    document = maximal()
    for path, node in walk():
        if node.kind != "object" or not node.one_of or path[:1] == ("environments",):
            continue
        places = list(instances(document, path))
        assert places, f"the maximal fleet has no {'.'.join(path)}"
        written = get(document, places[0])
        assert isinstance(written, dict)
        bare = {k: v for k, v in written.items() if k not in node.one_of}
        yield f"{'.'.join(path)}: none of {', '.join(node.one_of)}", places[0], bare
        if node.only_one:
            kinds: dict[str, object] = {}
            for where in places:
                value = get(document, where)
                assert isinstance(value, dict)
                kinds |= {k: value[k] for k in node.one_of if k in value and k not in kinds}
            assert len(kinds) >= 2, f"the maximal fleet has one kind of {'.'.join(path)}"
            two = dict(list(kinds.items())[:2])
            yield f"{'.'.join(path)}: both {' and '.join(two)}", places[0], {**written, **two}


ONE_OF = list(one_of_cases())


@pytest.mark.parametrize(("what", "where", "value"), ONE_OF, ids=[w for w, _, _ in ONE_OF])
def test_one_of_several_keys_is_refused_by_both(
    validator: jsonschema.protocols.Validator, what: str, where: Concrete, value: object
) -> None:
    mutated = with_value(maximal(), where, value)
    assert list(validator.iter_errors(mutated)), f"{what}: the JSON Schema accepts"
    refusals = findings_at(loader_findings(mutated), where, frozenset(("E102", "E104")))
    assert refusals, f"{what}: the loader accepts"


def test_one_of_is_declared_where_the_loader_needs_one() -> None:
    """The objects whose loader rule needs one of several keys say so in the declaration."""
    declared = {".".join(p): n.one_of for p, n in walk() if n.kind == "object" and n.one_of}
    assert set(declared) >= {
        "clusters.*.services.*.deployment.alarms",
        "clusters.*.services.*.task_role",
        "clusters.*.services.*.volumes.*",
    }
