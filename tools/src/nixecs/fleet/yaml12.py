"""YAML 1.2 loading with a position for every key and value.

Why not ruamel.yaml (DESIGN §4 names it): since 0.18 its loader is pure Python, ~2.5 s for
a 380 KB fleet here, which misses the render target (DESIGN §10) by itself. PyYAML's libyaml
parser is C; we use it only to *compose* nodes (which carry their marks) and resolve plain
scalars with the YAML 1.2 core schema ourselves, so `no` stays a string and `0755` is 755.
One pass yields values and positions, so there is no fast path that could disagree with a
slow one. (A rapidyaml fast path was tried: 30x faster to parse, but a differential fuzz
test showed at once that it accepts malformed YAML libyaml rejects, e.g. an empty key.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING

import yaml

from ..collector import paused
from ..diagnostics import Location
from ..lazyre import lazy

if TYPE_CHECKING:
    pass

# Keys in a raw YAML document can be any scalar, so a path holds objects.
Path = tuple[object, ...]

try:
    from yaml._yaml import CParser as _Parser

    HAVE_LIBYAML = True
except ImportError:  # pragma: no cover - PyYAML without libyaml
    from yaml.parser import Parser as _Parser  # type: ignore[assignment]

    HAVE_LIBYAML = False

STR = "tag:yaml.org,2002:str"
INT = "tag:yaml.org,2002:int"
FLOAT = "tag:yaml.org,2002:float"
BOOL = "tag:yaml.org,2002:bool"
NULL = "tag:yaml.org,2002:null"
MAP = "tag:yaml.org,2002:map"
SEQ = "tag:yaml.org,2002:seq"

# Documents bigger than this in nodes are refused: aliases can make a small file expand
# exponentially ("billion laughs").
MAX_NODES = 2_000_000


PLAIN = "nixecs:plain"  # an untagged plain scalar, resolved by resolve_plain()

_INT_RE = lazy(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT_RE = lazy(
    r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?|[-+]?\.(inf|Inf|INF)|\.nan|\.NaN|\.NAN"
)
NULLS = frozenset({"~", "null", "Null", "NULL"})
_TRUE = frozenset({"true", "True", "TRUE"})
_FALSE = frozenset({"false", "False", "FALSE"})


# Every number of a fleet ends up in Nix (64-bit signed integers, IEEE doubles), JSON or a
# CloudFormation template: an integer beyond 64 bits or a float beyond a double is E120, found
# before Python converts it (int() refuses more than 4300 decimal digits with a ValueError).
INT_MAX = 2**63 - 1
_MAX_DIGITS = {10: 19, 16: 16, 8: 21}


class NumberOutOfRange(ValueError):
    """A well-formed number that no consumer of the fleet can represent (E120)."""


def parse_int(text: str) -> int:
    """A YAML 1.2 core-schema integer (decimal, 0o, 0x), bounded to 64 bits."""
    if text.startswith(("0o", "0x")):
        base, digits, sign = (8 if text[1] == "o" else 16), text[2:], 1
    else:
        base, sign = 10, -1 if text.startswith("-") else 1
        digits = text.lstrip("+-")
    significant = digits.lstrip("0")
    if len(significant) > _MAX_DIGITS[base]:
        raise NumberOutOfRange(f"integer {_preview(text)} is out of range (at most {INT_MAX})")
    value = sign * int(significant or "0", base)
    if not -INT_MAX - 1 <= value <= INT_MAX:
        raise NumberOutOfRange(f"integer {_preview(text)} is out of range (at most {INT_MAX})")
    return value


def parse_float(text: str) -> float:
    """A finite float literal must stay finite: `1e400` would silently become infinity."""
    value = float(text)
    if math.isinf(value):
        raise NumberOutOfRange(f"number {_preview(text)} is out of range (beyond a double)")
    return value


def _preview(text: str) -> str:
    return text if len(text) <= 24 else f"{text[:12]}…({len(text)} characters)"


def resolve_plain(text: str) -> object:
    """An untagged plain scalar under the YAML 1.2 core schema
    (https://yaml.org/spec/1.2.2/#1032-tag-resolution): `no` and `yes` stay strings,
    `0755` is the integer 755, `0o17` is 15."""
    if not text or text in NULLS:
        return None
    first = text[0]
    if first in "tTfF":
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        return text
    if first in "-+.0123456789":
        if _INT_RE.fullmatch(text):
            return parse_int(text)
        if _FLOAT_RE.fullmatch(text):
            lowered = text.lower().lstrip("+")
            if lowered == ".inf":
                return math.inf
            if lowered == "-.inf":
                return -math.inf
            if lowered == ".nan":
                return math.nan
            return parse_float(text)
    return text


class _Yaml12Resolver(yaml.resolver.BaseResolver):
    """Tags plain scalars PLAIN and leaves their resolution to resolve_plain(), one
    function for the whole core schema; quoted scalars are strings; collections are maps and sequences."""

    def resolve(self, kind: type, value: object, implicit: tuple[bool, bool]) -> str:
        if kind is yaml.ScalarNode:
            return PLAIN if implicit[0] else STR
        if kind is yaml.SequenceNode:
            return SEQ
        return MAP


class _Composer(_Parser, _Yaml12Resolver):
    def __init__(self, text: str) -> None:
        _Parser.__init__(self, text)
        _Yaml12Resolver.__init__(self)


if not HAVE_LIBYAML:  # pragma: no cover

    class _PureComposer(
        yaml.reader.Reader,
        yaml.scanner.Scanner,
        yaml.parser.Parser,
        yaml.composer.Composer,
        _Yaml12Resolver,
    ):
        def __init__(self, text: str) -> None:
            yaml.reader.Reader.__init__(self, text)
            yaml.scanner.Scanner.__init__(self)
            yaml.parser.Parser.__init__(self)
            yaml.composer.Composer.__init__(self)
            _Yaml12Resolver.__init__(self)

    _Composer = _PureComposer  # type: ignore[misc,assignment]


class YamlError(Exception):
    """A document that is not valid YAML or uses what a fleet file may not."""

    def __init__(self, message: str, line: int, column: int, code: str = "E100") -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.column = column
        self.code = code


_UNREPRESENTABLE = lazy("[\x00\ud800-\udfff]")


def _representable(value: object, node: yaml.Node) -> object:
    """Strings must survive every place a value goes (Nix, JSON, systemd files): escapes such
    as "\\0" or "\\ud800" in a quoted YAML string would make NUL or a lone surrogate."""
    if isinstance(value, str):
        found = _UNREPRESENTABLE.search(value)
        if found is not None:
            what = "NUL" if found.group() == "\x00" else "a lone surrogate"
            mark = node.start_mark
            raise YamlError(
                f"this string contains {what}, which cannot be represented",
                mark.line + 1,
                mark.column + 1,
                "E110",
            )
    return value


class Document:
    """Plain Python values of a YAML file, and where each key and value was written.

    Positions are looked up in the composed nodes only when asked for: building a table of
    them for every node cost ten times the walk that builds the values, and positions are
    only needed when something is to be reported.
    """

    def __init__(
        self,
        path: str,
        value: object,
        root: yaml.Node | None,
        duplicates: list[YamlError] | None = None,
        text: str = "",
    ) -> None:
        self.path = path
        self.value = value
        self.text = text
        self._root = root
        # Duplicate keys are reported with the schema errors, not instead of them.
        self.duplicates = duplicates or []

    def locate(self, at: Path, *, key: bool = False) -> Location:
        """Where the value (or with key=True, the key) at `at` was written; the nearest
        enclosing node when that exact path has no position (e.g. a missing key)."""
        node = self._root
        if node is None:
            return Location(self.path, 1, 1)
        key_node: yaml.Node | None = None
        for part in at:
            child: yaml.Node | None = None
            child_key: yaml.Node | None = None
            if isinstance(node, yaml.MappingNode):
                for candidate_key, candidate in node.value:
                    if isinstance(candidate_key, yaml.ScalarNode) and _same_key(
                        _construct_scalar(candidate_key), part
                    ):
                        child, child_key = candidate, candidate_key
                        break
            elif (
                isinstance(node, yaml.SequenceNode)
                and type(part) is int
                and 0 <= part < len(node.value)
            ):
                child = node.value[part]
            if child is None:
                break
            node, key_node = child, child_key
        mark = key_node.start_mark if key and key_node is not None else node.start_mark
        return Location(self.path, mark.line + 1, mark.column + 1)

    def locate_in_block(self, at: Path, line: int, column: int) -> Location:
        """Where (line, column) of the text of the literal block scalar at `at` (`key: |`)
        is in the file; the scalar's own position when it is not a literal block."""
        start = self.locate(at)
        lines = self.text.split("\n")
        header = lines[start.line - 1][start.column - 1 :] if start.line <= len(lines) else ""
        if not header.startswith("|"):
            return start
        target = start.line + line  # block content starts on the line after the indicator
        if target > len(lines):
            return start
        content = lines[target - 1]
        indent = len(content) - len(content.lstrip(" "))
        # The block's indentation is that of its first non-empty line.
        for candidate in lines[start.line : target]:
            if candidate.strip():
                indent = len(candidate) - len(candidate.lstrip(" "))
                break
        return Location(self.path, target, indent + column)


def _construct_scalar(node: yaml.ScalarNode) -> object:
    try:
        return _construct_scalar_unchecked(node)
    except NumberOutOfRange as error:
        mark = node.start_mark
        raise YamlError(str(error), mark.line + 1, mark.column + 1, "E120") from None


def _construct_scalar_unchecked(node: yaml.ScalarNode) -> object:
    tag, text = node.tag, node.value
    if tag == PLAIN:
        return resolve_plain(text)
    if tag == STR:
        return text
    if tag == NULL:
        return None
    if tag == BOOL:
        if text.lower() in ("true", "false") and text in (
            "true",
            "True",
            "TRUE",
            "false",
            "False",
            "FALSE",
        ):
            return text.lower() == "true"
        raise YamlError(
            f"{text!r} is not a boolean", node.start_mark.line + 1, node.start_mark.column + 1
        )
    if tag == INT:
        try:
            if _INT_RE.fullmatch(text) is None:
                raise ValueError(text)
            return parse_int(text)
        except NumberOutOfRange:
            raise
        except ValueError:
            raise YamlError(
                f"{text!r} is not an integer", node.start_mark.line + 1, node.start_mark.column + 1
            ) from None
    if tag == FLOAT:
        lowered = text.lower()
        if lowered in (".inf", "+.inf"):
            return math.inf
        if lowered == "-.inf":
            return -math.inf
        if lowered == ".nan":
            return math.nan
        try:
            return parse_float(text)
        except NumberOutOfRange:
            raise
        except ValueError:
            raise YamlError(
                f"{text!r} is not a number", node.start_mark.line + 1, node.start_mark.column + 1
            ) from None
    raise YamlError(
        f"tag {tag!r} is not supported in a fleet file (write plain values)",
        node.start_mark.line + 1,
        node.start_mark.column + 1,
    )


def _same_key(a: object, b: object) -> bool:
    return type(a) is type(b) and a == b


def _walk(root: yaml.Node) -> tuple[object, list[YamlError]]:
    """The values of a composed document, and its duplicate keys."""
    duplicates: list[YamlError] = []
    budget = [MAX_NODES]
    # An alias is the anchored node itself: build each collection once and share the value,
    # so aliases cannot make construction exponential ("billion laughs").
    built: dict[int, object] = {}
    aliased = [False]
    scalar_node, sequence_node, mapping_node = yaml.ScalarNode, yaml.SequenceNode, yaml.MappingNode

    def fail(message: str, node: yaml.Node) -> YamlError:
        return YamlError(message, node.start_mark.line + 1, node.start_mark.column + 1)

    def build(node: yaml.Node, depth: int) -> object:
        kind = node.__class__
        if kind is scalar_node:  # an exact class test: isinstance() is slower on this path
            return _representable(_construct_scalar(node), node)  # type: ignore[arg-type]
        ident = id(node)
        if ident in built:
            aliased[0] = True
            return built[ident]
        budget[0] -= 1
        if budget[0] < 0:
            raise fail("document has too many nodes", node)
        if depth > 200:
            raise fail("document is nested too deeply", node)
        if kind is sequence_node:
            if node.tag != SEQ:
                raise fail(f"tag {node.tag!r} is not supported in a fleet file", node)
            items = [build(item, depth + 1) for item in node.value]
            built[ident] = items
            return items
        if kind is not mapping_node:  # pragma: no cover
            raise fail("unsupported node", node)
        if node.tag != MAP:
            raise fail(f"tag {node.tag!r} is not supported in a fleet file", node)
        result: dict[object, object] = {}
        first_lines: dict[object, int] = {}
        for key_node, value_node in node.value:
            if key_node.__class__ is not scalar_node:
                raise fail("mapping keys must be plain scalars", key_node)
            if key_node.tag == PLAIN and key_node.value == "<<":
                raise fail("merge keys (<<) are YAML 1.1, not 1.2: write the keys out", key_node)
            key = _representable(_construct_scalar(key_node), key_node)
            if isinstance(key, float) and math.isnan(key):
                raise fail("NaN cannot be a key", key_node)
            if key in result:
                first = first_lines[key]
                duplicates.append(
                    fail(f"duplicate key {key!r} (first written at line {first})", key_node)
                )
                continue
            first_lines[key] = key_node.start_mark.line + 1
            result[key] = build(value_node, depth + 1)
        built[ident] = result
        return result

    value = build(root, 0)
    if aliased[0]:
        _check_expanded(root)
    return value, duplicates


def _check_expanded(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand beyond MAX_NODES. Construction shares an
    anchored value, but everything after it (overrides, the template, JSON) walks the value as
    a tree: an alias-built tree of 10^9 nodes from 2 KB would take that walk hours ("billion
    laughs"). Sizes are memoised per node, so this costs one pass over the distinct nodes."""
    sizes: dict[int, int] = {}
    scalar_node = yaml.ScalarNode

    def size(node: yaml.Node) -> int:
        if node.__class__ is scalar_node:
            return 1
        ident = id(node)
        known = sizes.get(ident)
        if known is not None:
            return known
        total = 1
        for item in node.value:
            if isinstance(item, tuple):  # a mapping's (key, value)
                total += size(item[0]) + size(item[1])
            else:
                total += size(item)
            if total > MAX_NODES:
                raise YamlError(
                    f"aliases expand the document beyond {MAX_NODES:,} nodes",
                    node.start_mark.line + 1,
                    node.start_mark.column + 1,
                )
        sizes[ident] = total
        return total

    size(root)


def _decode(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        before = data[: error.start]
        line = before.count(b"\n") + 1
        column = error.start - (before.rfind(b"\n") + 1) + 1
        raise YamlError(f"not UTF-8 text (byte 0x{data[error.start]:02x})", line, column) from None


def _first_document(composer: _Composer) -> yaml.Node | None:
    node: yaml.Node | None = composer.get_single_node()
    return node


def load(
    data: bytes | str, path: str, transform: Callable[[yaml.Node], yaml.Node] | None = None
) -> Document:
    """Parse one YAML 1.2 document; raise YamlError (with a 1-based position) when it is not one.
    `transform` rewrites the composed nodes before values are built (an environment's merge,
    fleet/environments.py): the values keep the positions they were written at."""
    text = _decode(data) if isinstance(data, bytes) else data
    if "\x00" in text:
        offset = text.index("\x00")
        line = text.count("\n", 0, offset) + 1
        raise YamlError(
            "NUL character in the file", line, offset - (text.rfind("\n", 0, offset) + 1) + 1
        )
    composer = None
    # Composing creates hundreds of thousands of objects and no reference cycles; with the
    # cyclic garbage collector running through them all the time it takes five times as long
    # (nixecs.collector).
    with paused():
        try:
            composer = _Composer(text)
            node = _first_document(composer)
        except yaml.MarkedYAMLError as error:
            mark = error.problem_mark or error.context_mark
            message = (
                " ".join(part for part in (error.context, error.problem) if part) or "invalid YAML"
            )
            if mark is None:
                raise YamlError(message, 1, 1) from None
            raise YamlError(message, mark.line + 1, mark.column + 1) from None
        except yaml.reader.ReaderError as error:
            offset = max(0, min(int(error.position), len(text)))
            line = text.count("\n", 0, offset) + 1
            column = offset - (text.rfind("\n", 0, offset) + 1) + 1
            raise YamlError(
                f"character #x{error.character:04x} is not allowed in YAML", line, column
            ) from None
        except yaml.YAMLError as error:
            raise YamlError(
                str(error).splitlines()[0] if str(error) else "invalid YAML", 1, 1
            ) from None
        finally:
            dispose = getattr(composer, "dispose", None) if composer is not None else None
            if dispose is not None:
                dispose()
    if node is None:
        return Document(path, None, None, [], text)
    if transform is not None:
        node = transform(node)
    with paused():
        try:
            value, duplicates = _walk(node)
        except RecursionError:
            raise YamlError("document is nested too deeply", 1, 1) from None
    return Document(path, value, node, duplicates, text)
