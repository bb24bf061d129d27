"""The declared fleet schema (nixecs.fleet.schema) against the loader that checks fleet files,
the JSON Schema `nixecs schema` prints against a standard validator, and docs/fleet.md against
its generator (issue 10, item 9)."""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
from click.testing import CliRunner

from conftest import EXAMPLES, REPO
from nixecs import settings
from nixecs.cli import cli
from nixecs.diagnostics import CODES, FIXES, InvalidInput
from nixecs.fleet import decl, environments_of, load_fleet, parse
from nixecs.fleet.containers import CONTAINER_KEYS
from nixecs.fleet.environments import ENV_KEYS
from nixecs.fleet.loader import SHORTHAND_KEYS
from nixecs.fleet.schema import KEYWORDS, Node, json_schema, objects, schema_path, walk
from nixecs.fleet.yaml12 import load

MAXIMAL = Path(__file__).parent / "fleets" / "maximal.yml"
FLEETS = [MAXIMAL, *sorted(EXAMPLES.glob("*.yml"))]


def record_mappings(
    monkeypatch: pytest.MonkeyPatch, files: list[Path]
) -> dict[tuple[str, ...], set[tuple[tuple[str, ...], tuple[str, ...]]]]:
    """The keys the loader allows and requires at every mapping it checks, by schema path.
    Every mapping check of the loader and its modules goes through settings.check_mapping
    (they call it as `s.check_mapping` or, in settings, by its global name)."""
    seen: dict[tuple[str, ...], set[tuple[tuple[str, ...], tuple[str, ...]]]] = {}
    original = settings.check_mapping

    def spy(
        value: object,
        path: tuple[object, ...],
        issues: list[settings.Issue],
        allowed: tuple[str, ...],
        required: tuple[str, ...] = (),
        what: str = "a mapping",
    ) -> dict[str, object] | None:
        seen.setdefault(schema_path(tuple(path)), set()).add((allowed, required))
        return original(value, path, issues, allowed, required, what)

    monkeypatch.setattr(settings, "check_mapping", spy)
    for file in files:
        for env in environments_of(file) or [None]:
            load_fleet(file, env)
    return seen


# `environments:` is taken out of the document before the loader reads it (an environment is
# merged in first: fleet/environments.py checks its own keys), so the loader never sees it;
# test_environment_keys_are_the_declared_ones holds the two together instead.
BEFORE_THE_LOADER = ("environments",)


def test_environment_keys_are_the_declared_ones() -> None:
    environment = objects()[("environments", "*")]
    assert tuple(environment.keys) == ENV_KEYS


def test_the_maximal_fleet_is_valid() -> None:
    load_fleet(MAXIMAL)


def disagreements(
    seen: dict[tuple[str, ...], set[tuple[tuple[str, ...], tuple[str, ...]]]],
) -> list[str]:
    """Where the recorded loader and the declared schema differ, in both directions."""
    declared = objects()
    found: list[str] = []
    for path, variants in seen.items():
        where = ".".join(path) or "(top level)"
        node = declared.get(path)
        if node is None:
            found.append(f"the loader checks a mapping at {where}, the schema declares none")
            continue
        for allowed, required in variants:
            if path[-2:-1] in (("services",), ("tasks",)) and allowed == CONTAINER_KEYS:
                # The shorthand is checked once more as a container at the service's own
                # path (loader._Builder.shorthand), from an item of the shorthand's keys.
                # (a cluster task maps no port: fleet/cluster_tasks.py TASK_KEYS)
                shorthand = set(SHORTHAND_KEYS) - ({"port"} if path[-2:-1] == ("tasks",) else set())
                if not shorthand <= set(node.keys):
                    found.append(f"{where}: the shorthand's keys are not all declared")
                continue
            if list(node.keys) != list(allowed):
                found.append(
                    f"{where}: the loader allows {allowed}, the schema declares {tuple(node.keys)}"
                )
            declared_required = {k for k, v in node.keys.items() if v.required}
            if declared_required != set(required):
                found.append(
                    f"{where}: the loader requires {required}, the schema {declared_required}"
                )
    found += [
        f"{'.'.join(path)} is declared, and the loader never checked it"
        for path in declared
        if path not in seen and path[:1] not in [(k,) for k in BEFORE_THE_LOADER]
    ]
    return found


def test_loader_and_schema_agree_on_every_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both directions: every mapping the loader checks is declared with the same keys (and
    required keys) in the schema, and every mapping declared is checked by the loader while
    loading the maximal fleet (so a key declared but not accepted, or accepted but not
    declared, fails here)."""
    assert disagreements(record_mappings(monkeypatch, FLEETS)) == []


def test_drift_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison is not vacuous: a key the loader's check of a mapping grew (here the
    load balancer's, through fleet/decl.py's `keys`) is reported."""

    class Grown:
        """The settings module as fleet/decl.py sees it, its load balancer check one key larger."""

        def __getattr__(self, name: str) -> object:
            return getattr(settings, name)

        def check_mapping(
            self,
            value: object,
            path: tuple[object, ...],
            issues: list[settings.Issue],
            allowed: tuple[str, ...],
            required: tuple[str, ...] = (),
            what: str = "a mapping",
        ) -> dict[str, object] | None:
            if path[-1:] == ("load_balancer",):
                allowed = (*allowed, "new_key")
            return settings.check_mapping(value, path, issues, allowed, required, what)

    monkeypatch.setattr(decl, "s", Grown())
    found = disagreements(record_mappings(monkeypatch, [MAXIMAL]))
    assert len(found) == 1 and "clusters.*.load_balancer: the loader allows" in found[0], found


def _instances(document: object, path: tuple[str, ...]) -> Iterator[tuple[object, ...]]:
    """The concrete parents in `document` of schema path `path` (its last part is the key)."""
    if len(path) == 1:
        if isinstance(document, dict):
            yield ()
        return
    head, rest = path[0], path[1:]
    if head == "*" and isinstance(document, dict):
        children: list[tuple[object, object]] = list(document.items())
    elif head == "[]" and isinstance(document, list):
        children = list(enumerate(document))
    elif isinstance(document, dict) and head in document:
        children = [(head, document[head])]
    else:
        children = []
    for key, child in children:
        for tail in _instances(child, rest):
            yield (key, *tail)


def _with(document: object, parent: tuple[object, ...], key: str, value: object) -> object:
    copied = copy.deepcopy(document)
    target = copied
    for part in parent:
        target = target[part]  # type: ignore[index]
    target[key] = value  # type: ignore[index]
    return copied


EXAMPLES_DECLARED = [
    (path, node)
    for path, node in walk()
    if node.example is not None
    and path
    and path[-1] not in ("*", "[]")
    and path[0] not in BEFORE_THE_LOADER  # test_environments.py tries those
]


@pytest.mark.parametrize(
    ("path", "node"), EXAMPLES_DECLARED, ids=[".".join(p) for p, _ in EXAMPLES_DECLARED]
)
def test_every_example_loads(path: tuple[str, ...], node: Node) -> None:
    """Each example value of the schema, written in place of the maximal fleet's value, gives
    a valid fleet (in at least one of the places the path names)."""
    document = load(MAXIMAL.read_bytes(), str(MAXIMAL)).value
    places = list(_instances(document, path))
    assert places, f"the maximal fleet has no {'.'.join(path[:-1])} to try {path[-1]} in"
    problems = []
    for parent in places:
        text = json.dumps(_with(document, parent, path[-1], node.example))
        try:
            parse(text, "example.yml")
        except InvalidInput as error:
            problems.append(str(error))
        else:
            return
    pytest.fail(f"example {node.example!r} of {'.'.join(path)} does not load: {problems}")


def test_every_key_is_described() -> None:
    for path, node in walk():
        assert node.doc, f"{'.'.join(path)} has no description"


# -- JSON Schema ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def validator() -> jsonschema.protocols.Validator:
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_nixecs_schema_prints_the_json_schema() -> None:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed == json_schema()
    assert printed["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("fleet", FLEETS, ids=lambda p: p.name)
def test_the_json_schema_accepts_every_example(
    validator: jsonschema.protocols.Validator, fleet: Path
) -> None:
    document = load(fleet.read_bytes(), str(fleet)).value
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document)]
    assert errors == []


def _keywords(schema: object) -> set[str]:
    """The keywords of a schema (not property names: those are under `properties`)."""
    if not isinstance(schema, dict):
        return set()
    found = set(schema)
    for key, value in schema.items():
        if key == "properties":
            for child in value.values():
                found |= _keywords(child)
        elif key in ("additionalProperties", "items", "propertyNames"):
            found |= _keywords(value)
        elif key == "anyOf":
            for child in value:
                found |= _keywords(child)
    return found


def test_the_json_schema_also_works_as_draft_07() -> None:
    """yaml-language-server reads draft-07 and below: only keywords common to both are
    written, and a draft-07 validator accepts the examples as the 2020-12 one does."""
    schema = json_schema()
    assert _keywords(schema) <= KEYWORDS
    draft7 = {**schema, "$schema": "http://json-schema.org/draft-07/schema#"}
    jsonschema.Draft7Validator.check_schema(draft7)
    for fleet in FLEETS:
        document = load(fleet.read_bytes(), str(fleet)).value
        assert list(jsonschema.Draft7Validator(draft7).iter_errors(document)) == [], fleet


INVALID = [
    ("an unknown key", ("clusters", "prod", "groups", "web", "colour"), "blue"),
    ("a wrong type", ("clusters", "prod", "groups", "web", "spot"), "yes"),
    ("out of range", ("clusters", "prod", "groups", "web", "metadata", "hop_limit"), 65),
    ("not an allowed value", ("clusters", "prod", "services", "web", "network_mode"), "awsvpc"),
    ("a bad id", ("clusters", "prod", "groups", "web", "ami"), "ami-nope"),
    ("a bad name", ("clusters", "prod", "services", "web", "containers", "a b"), {"image": "x"}),
    ("a bad port item", ("clusters", "prod", "services", "web", "containers", "app", "ports"), [0]),
    (
        "a bad ulimit",
        ("clusters", "prod", "services", "web", "containers", "app", "ulimits"),
        {"files": 1},
    ),
]


@pytest.mark.parametrize(("what", "path", "value"), INVALID, ids=[w for w, _, _ in INVALID])
def test_the_json_schema_rejects_what_the_loader_rejects(
    validator: jsonschema.protocols.Validator, what: str, path: tuple[str, ...], value: object
) -> None:
    document = load(MAXIMAL.read_bytes(), str(MAXIMAL)).value
    broken = _with(document, path[:-1], path[-1], value)
    assert list(validator.iter_errors(broken)), f"{what} is accepted by the JSON Schema"
    with pytest.raises(InvalidInput):
        parse(json.dumps(broken), "broken.yml")


def test_the_json_schema_requires_the_required_keys(
    validator: jsonschema.protocols.Validator,
) -> None:
    document = load(MAXIMAL.read_bytes(), str(MAXIMAL)).value
    del document["clusters"]["prod"]["groups"]["web"]["ami"]  # type: ignore[index]
    messages = [e.message for e in validator.iter_errors(document)]
    assert any("'ami' is a required property" in m for m in messages), messages


# -- docs/fleet.md and the diagnostic codes ----------------------------------------------------


def test_every_code_has_a_fix() -> None:
    assert set(FIXES) == set(CODES)
    for code, fix in FIXES.items():
        assert fix.strip() and "\n" not in fix, code


@pytest.mark.repo
def test_docs_fleet_md_is_generated() -> None:
    """docs/fleet.md is what tools/gen_fleet_docs.py writes today (run it after a change)."""
    from nixecs.fleet.schema_docs import render_markdown

    committed = (REPO / "docs" / "fleet.md").read_text(encoding="utf-8")
    assert committed == render_markdown(), (
        "docs/fleet.md is out of date: run tools/gen_fleet_docs.py"
    )


def test_the_reference_names_every_key_and_code() -> None:
    from nixecs.fleet.schema_docs import render_markdown

    text = render_markdown()
    for path, node in objects().items():
        for key in node.keys:
            assert f"| `{key}` |" in text, ".".join((*path, key))
    for code in CODES:
        assert f"| {code} |" in text
