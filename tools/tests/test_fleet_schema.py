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
from nixecs.cli import cli
from nixecs.diagnostics import CODES, FIXES, InvalidInput
from nixecs.fleet import load_fleet, parse
from nixecs.fleet.environments import ENV_KEYS
from nixecs.fleet.schema import KEYWORDS, Node, json_schema, objects, walk
from nixecs.fleet.yaml12 import load

MAXIMAL = Path(__file__).parent / "fleets" / "maximal.yml"
FLEETS = [MAXIMAL, *sorted(EXAMPLES.glob("*.yml"))]


# `environments:` is taken out of the document before the loader reads it (an environment is
# merged in first: fleet/environments.py checks its own keys), so the loader never sees it;
# test_environment_keys_are_the_declared_ones holds the two together instead.
BEFORE_THE_LOADER = ("environments",)


def test_environment_keys_are_the_declared_ones() -> None:
    environment = objects()[("environments", "*")]
    assert tuple(environment.keys) == ENV_KEYS


def test_the_maximal_fleet_is_valid() -> None:
    load_fleet(MAXIMAL)


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
