"""Deterministic block-style YAML for templates: same data, same bytes.

A small emitter of its own rather than PyYAML's dumper: a 1,000-group fleet's templates
hold about a million nodes, and PyYAML's representer and resolver (Python even under
CSafeDumper) need ten seconds for them here, this emitter a third of a second, against a
render budget of one second for everything (DESIGN §10). The
input is JSON-shaped data only (dict, list, str, int, float, bool, None), which keeps the
emitter small enough to reason about:

- keys in insertion order; intrinsics are the plain keys `Ref`, `Fn::GetAtt`, … (no tags);
- a string is plain only when it cannot be read back as anything but that string, by a
  YAML 1.1 reader (CloudFormation, cfn-lint, PyYAML) or a YAML 1.2 one: anything starting
  with a digit, sign or dot, or spelled like a boolean or null, is quoted;
- quoted strings are single-quoted when printable ASCII on one line, otherwise
  double-quoted with escapes (JSON's escapes are valid YAML), escaping every character a
  YAML reader would not take literally (C1 controls, NEL, line/paragraph separators, BOM);
- multi-line text (userdata) is a literal block `|` when that represents it exactly.

The tests load the output back with PyYAML and require the same data.
"""

from __future__ import annotations

import json
import math
import re

from ..lazyre import lazy
from .intrinsics import Json

_PLAIN = lazy(r"[A-Za-z_/$][A-Za-z0-9 _./:@$(){}+=,*-]*")
_SINGLE = lazy(r"[\x20-\x7e]*")
# Characters a double-quoted scalar must escape beyond what JSON escapes: YAML's
# non-printable characters, YAML 1.1's extra line breaks (NEL, LS, PS), the BOM and lone
# surrogates.
_DOUBLE_ESCAPE = lazy("[\x7f-\x9f\u2028\u2029\ufeff\ufffe\uffff\ud800-\udfff]")
# Literal blocks: printable text only; no CR, NEL, LS or PS (a YAML reader normalises or
# breaks lines there) and no BOM.
_LITERAL_BAD = lazy(
    "[^\t\n\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]|[\u2028\u2029\ufeff]"
)
# The same for ASCII text (userdata nearly always is): this class compiles in a fraction of
# the time the one above takes (its ranges span all of Unicode), for the same answer.
_LITERAL_BAD_ASCII = lazy("[^\t\n\x20-\x7e]")
_WHITESPACE_ONLY_LINE = lazy(r"^[ \t]+$", re.MULTILINE)
# Spelled like a boolean or null by YAML 1.1 or 1.2 (compared in lower case).
_KEYWORDS = frozenset({"y", "n", "yes", "no", "true", "false", "on", "off", "null", "~"})


def _escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def _quote(text: str) -> str:
    if _SINGLE.fullmatch(text):
        return "'" + text.replace("'", "''") + "'"
    return _DOUBLE_ESCAPE.sub(_escape, json.dumps(text, ensure_ascii=False))


def _string(text: str) -> str:
    if (
        _PLAIN.fullmatch(text)
        and text[-1] not in " :"
        and ": " not in text
        and text.lower() not in _KEYWORDS
    ):
        return text
    return _quote(text)


def _float(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"CloudFormation has no number {value!r}")
    text = repr(value)
    if "e" in text and "." not in text:
        # YAML 1.1 (and so PyYAML) reads `1e+20` as a string; `1.0e+20` as a float.
        mantissa, exponent = text.split("e")
        text = f"{mantissa}.0e{exponent if exponent[0] in '+-' else '+' + exponent}"
    return text


def _literal_header(text: str) -> str | None:
    """`|`, `|-` or `|+` when a literal block holds `text` exactly, else None."""
    bad = _LITERAL_BAD_ASCII if text.isascii() else _LITERAL_BAD
    if text[0] in " \n" or bad.search(text) or _WHITESPACE_ONLY_LINE.search(text):
        return None
    if not text.endswith("\n"):
        return "|-"
    return "|+" if text.endswith("\n\n") else "|"


def _string_or_block(text: str) -> str:
    """A string's scalar text, or "" when it is to be a literal block (never empty text:
    the empty string is `''`)."""
    if "\n" in text and len(text) > 1 and _literal_header(text) is not None:
        return ""
    return _string(text)


def _other(value: object) -> str:
    """Scalars other than strings and ints (those are inlined in the hot loop)."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is float:
        return _float(value)
    if value is None:
        return "null"
    raise TypeError(f"cannot write {type(value).__name__} into a template")


def _key(key: object) -> str:
    if type(key) is not str:
        raise TypeError(f"template keys are strings, not {type(key).__name__}")
    return _string(key) + ":"


# Indentation by nesting level, built once: concatenating it per node was a third of the
# run time. Deeper levels (never in a template) are added on demand.
_PADS = [" " * (2 * level) for level in range(32)]
_DASHES = [pad + "- " for pad in _PADS]


def _deepen(level: int) -> None:
    while len(_PADS) <= level:
        _PADS.append(" " * (2 * len(_PADS)))
        _DASHES.append(_PADS[-1] + "- ")


# How each distinct string and key is written, decided once per process (issue 18, item 5):
# a fleet's templates repeat the same property names, types and values in every cluster, and
# re-deciding their quoting per template was a quarter of the render. Bounded, so a
# long-lived process (the tests) cannot grow it without end: past the bound it starts over.
_STRINGS: dict[str, str] = {}
_KEYS: dict[str, str] = {}
_CACHE_BOUND = 200_000


def dump_template(template: dict[str, Json]) -> str:
    """The template as YAML text; the same data always gives the same text.

    The loops below are the render's hot path (400,000 lines for a 1,000-group fleet):
    scalars are rendered once per distinct value (per process) through the two caches, indentation comes
    ready-made per level, and every line is one append."""
    if not template:
        return "{}\n"
    out: list[str] = []
    write = out.append
    if len(_STRINGS) > _CACHE_BOUND or len(_KEYS) > _CACHE_BOUND:
        _STRINGS.clear()
        _KEYS.clear()
    strings = _STRINGS
    keys = _KEYS
    pads = _PADS
    dashes = _DASHES

    def block(head: str, text: str, level: int) -> None:
        header = _literal_header(text)
        indent = pads[level]
        # The last line break is the chomping indicator's; the lines before it (empty
        # ones too, kept by `|+`) are written out.
        body = text[:-1] if text.endswith("\n") else text
        write(f"{head}{header}\n")
        for line in body.split("\n"):
            write(f"{indent}{line}\n" if line else "\n")

    def mapping(value: dict[str, Json], level: int, prefix: str) -> None:
        """A mapping whose keys are at `level`; its first line starts with `prefix` (its
        indentation, or a sequence's dash)."""
        inner = level + 1
        if inner >= len(pads):
            _deepen(inner)
        pad = pads[level]
        for key, item in value.items():
            k = keys.get(key)
            if k is None:
                k = keys[key] = _key(key)
            kind = type(item)
            if kind is str:
                text = strings.get(item)
                if text is None:
                    text = strings[item] = _string_or_block(item)
                if text:
                    write(f"{prefix}{k} {text}\n")
                else:
                    block(f"{prefix}{k} ", item, inner)
            elif kind is dict:
                if item:
                    write(f"{prefix}{k}\n")
                    mapping(item, inner, pads[inner])
                else:
                    write(f"{prefix}{k} {{}}\n")
            elif kind is list:
                if item:
                    write(f"{prefix}{k}\n")
                    sequence(item, inner, pads[inner])
                else:
                    write(f"{prefix}{k} []\n")
            elif kind is int:
                write(f"{prefix}{k} {item}\n")
            else:
                write(f"{prefix}{k} {_other(item)}\n")
            prefix = pad

    def sequence(value: list[Json], level: int, first: str) -> None:
        """A sequence whose dashes are at `level`; its first line starts with `first`."""
        inner = level + 1
        if inner >= len(pads):
            _deepen(inner)
        later = dashes[level]
        dash = first + "- "
        for item in value:
            kind = type(item)
            if kind is dict and item:
                mapping(item, inner, dash)
            elif kind is str:
                text = strings.get(item)
                if text is None:
                    text = strings[item] = _string_or_block(item)
                if text:
                    write(f"{dash}{text}\n")
                else:
                    block(dash, item, inner)
            elif kind is list and item:
                sequence(item, inner, dash)
            elif kind is dict:
                write(dash + "{}\n")
            elif kind is list:
                write(dash + "[]\n")
            elif kind is int:
                write(f"{dash}{item}\n")
            else:
                write(f"{dash}{_other(item)}\n")
            dash = later

    mapping(template, 0, "")
    return "".join(out)
