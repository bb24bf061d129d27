"""The Nix literal emitter.

Every value that reaches Nix text goes through `to_nix`: strings become double-quoted Nix
strings with `\\`, `"`, `$` and control characters escaped, so no value can become code
(`${…}` cannot interpolate, `''` cannot end a string). Raw Nix enters only wrapped in
`NixCode`, an explicit decision at the call site (userdata.render_nix, the one place Nix
text is assembled, formats every value with `to_nix`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from .lazyre import lazy

# Nix identifiers that may stand unquoted as attribute names (lexer.l: ID).
_IDENTIFIER = lazy(r"[a-zA-Z_][a-zA-Z0-9_'-]*")
# Keywords cannot be bare attribute names; `or` is contextual but quoting it is always safe.
_KEYWORDS = frozenset({"if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or"})
_INT_MIN = -(2**63)
_INT_MAX = 2**63 - 1

_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "$": "\\$",  # `\$` is a literal dollar: no `${` can survive, whatever follows
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
_NEEDS_ESCAPE = lazy(r'[\\"$\n\r\t]')


class NixCode(str):
    """Nix source text that is deliberately inserted verbatim (never a user value)."""

    __slots__ = ()


class NixValueError(ValueError):
    """A value that has no faithful Nix literal (NUL, lone surrogates, NaN, huge ints...)."""


def nix_string(text: str) -> str:
    """A double-quoted Nix string literal whose value is exactly `text`."""
    if "\x00" in text:
        raise NixValueError("NUL (\\0) cannot be represented in a Nix string")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise NixValueError("text is not encodable as UTF-8 (lone surrogate)") from None
    return '"' + _NEEDS_ESCAPE.sub(lambda m: _ESCAPES[m.group()], text) + '"'


def nix_attr_name(name: str) -> str:
    """An attribute name, bare when it is an identifier, else quoted (keywords, dots, spaces, empty)."""
    if _IDENTIFIER.fullmatch(name) and name not in _KEYWORDS:
        return name
    return nix_string(name)


def _number(value: int | float) -> str:
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise NixValueError(f"integer {value} does not fit Nix's 64-bit integers")
        if value == _INT_MIN:
            return f"({_INT_MIN + 1} - 1)"
        return f"({value})" if value < 0 else str(value)
    if not math.isfinite(value):
        raise NixValueError(f"{value} has no Nix literal")
    text = repr(abs(value))
    mantissa, e, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    literal = mantissa + (f"e{exponent}" if e else "")
    return f"(-{literal})" if math.copysign(1.0, value) < 0 else literal


def to_nix(value: object, indent: str = "") -> str:
    """Any JSON-like value (or NixCode) → a Nix expression that evaluates to it."""
    if isinstance(value, NixCode):
        return str(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _number(value)
    if isinstance(value, str):
        return nix_string(value)
    inner = indent + "  "
    if isinstance(value, Mapping):
        if not value:
            return "{ }"
        items = []
        for key in value:
            if not isinstance(key, str):
                raise NixValueError(f"attribute names must be strings, got {type(key).__name__}")
            items.append(f"{inner}{nix_attr_name(key)} = {to_nix(value[key], inner)};")
        return "{\n" + "\n".join(items) + f"\n{indent}}}"
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        if not value:
            return "[ ]"
        return "[\n" + "\n".join(f"{inner}{to_nix(item, inner)}" for item in value) + f"\n{indent}]"
    raise NixValueError(f"no Nix literal for a {type(value).__name__}")
