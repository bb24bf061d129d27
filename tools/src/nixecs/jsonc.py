"""`json.loads` and `json.dumps` for the boot path, on the C module `_json` alone.

`import json` costs `nixecs apply` ~10 ms, more than its whole run without it (issue 18,
item 4): json.decoder and json.encoder import `re`, which imports `enum`, to compile
patterns that only the pure-Python fallbacks use. CPython's C scanner and encoder need
none of it; they are what json itself runs when they exist (CPython Lib/json/decoder.py,
`scanner.make_scanner = c_make_scanner`; Lib/json/encoder.py, `c_make_encoder`, used when
there is no indent). So these functions call them the way json does, with json's defaults,
and give the same results and the same errors (tests/test_jsonc.py compares them with json
on generated documents):

- `loads(text)` is `json.loads(text, ...)` for a str: the same BOM check, whitespace,
  "Extra data" and "Expecting value" errors (json.JSONDecodeError, a ValueError; the
  error path imports json.decoder for the class, as the C scanner itself does).
- `dumps(value, ...)` is `json.dumps` without indent.
- `dumps_indented(value)` is `json.dumps(value, indent=2, sort_keys=True)`: json writes
  indented output with its pure-Python encoder (and `re`), so it is written here, for the
  JSON values nixecs writes (dicts with str keys, lists, str, int, float, bool, None).
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

_WHITESPACE = " \t\n\r"  # json.decoder.WHITESPACE, [ \t\n\r]*
_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class _Context:
    """The attributes the C scanner reads from a json.JSONDecoder (its defaults)."""

    def __init__(
        self,
        object_pairs_hook: Callable[[list[tuple[str, object]]], object] | None,
        parse_constant: Callable[[str], object] | None,
    ) -> None:
        self.strict = True
        self.object_hook = None
        self.object_pairs_hook = object_pairs_hook
        self.parse_float = float
        self.parse_int = int
        self.parse_constant = parse_constant or _CONSTANTS.__getitem__
        self.memo: dict[str, str] = {}


def _decode_error(message: str, text: str, position: int) -> ValueError:
    from json import JSONDecodeError  # only when there is an error to report

    return JSONDecodeError(message, text, position)


def _skip(text: str, position: int) -> int:
    end = len(text)
    while position < end and text[position] in _WHITESPACE:
        position += 1
    return position


def loads(
    text: str,
    *,
    object_pairs_hook: Callable[[list[tuple[str, object]]], object] | None = None,
    parse_constant: Callable[[str], object] | None = None,
) -> object:
    """json.loads(text, object_pairs_hook=..., parse_constant=...) for a str."""
    if text.startswith("\ufeff"):
        raise _decode_error("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    # typeshed types the argument as the scanner class itself; the C code reads attributes.
    scan = _json.make_scanner(_Context(object_pairs_hook, parse_constant))  # type: ignore[arg-type]
    start = _skip(text, 0)
    try:
        value, end = scan(text, start)
    except StopIteration as error:
        raise _decode_error("Expecting value", text, error.value) from None
    end = _skip(text, end)
    if end != len(text):
        raise _decode_error("Extra data", text, end)
    return value


def _refuse(value: object) -> object:  # json.JSONEncoder.default
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


def dumps(
    value: object,
    *,
    sort_keys: bool = False,
    separators: tuple[str, str] = (", ", ": "),
    ensure_ascii: bool = True,
) -> str:
    """json.dumps(value, sort_keys=..., separators=..., ensure_ascii=...) (no indent)."""
    if isinstance(value, str):  # as json.JSONEncoder.encode
        return (
            _json.encode_basestring_ascii(value) if ensure_ascii else _json.encode_basestring(value)
        )
    encode = _json.make_encoder(
        {},  # markers: circular references are refused, as json's check_circular=True
        _refuse,
        _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring,
        None,
        separators[1],
        separators[0],
        sort_keys,
        False,  # skipkeys
        True,  # allow_nan
    )
    return "".join(encode(value, 0))


def _scalar(value: object) -> str:
    if isinstance(value, str):
        return _json.encode_basestring_ascii(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        if value != value:
            return "NaN"
        if value in (float("inf"), float("-inf")):
            return "Infinity" if value > 0 else "-Infinity"
        return float.__repr__(value)
    return str(_refuse(value))


def _key(key: object) -> str:
    # json.encoder._make_iterencode's key rules: str as is; float, bool, None and int as JSON.
    if isinstance(key, str):
        return key
    if isinstance(key, (float, int)) or key is None:
        return _scalar(key)
    raise TypeError(f"keys must be str, int, float, bool or None, not {key.__class__.__name__}")


def _indented(value: object, level: int, out: list[str]) -> None:
    if isinstance(value, dict):
        if not value:
            out.append("{}")
            return
        inner = "\n" + "  " * (level + 1)
        out.append("{")
        # Sorted by the keys as given, then converted: json.encoder's order.
        for index, (key, item) in enumerate(sorted(value.items())):
            start = inner if index == 0 else "," + inner
            out.append(start + _json.encode_basestring_ascii(_key(key)) + ": ")
            _indented(item, level + 1, out)
        out.append("\n" + "  " * level + "}")
    elif isinstance(value, (list, tuple)):
        if not value:
            out.append("[]")
            return
        inner = "\n" + "  " * (level + 1)
        out.append("[")
        for index, item in enumerate(value):
            out.append(inner if index == 0 else "," + inner)
            _indented(item, level + 1, out)
        out.append("\n" + "  " * level + "]")
    else:
        out.append(_scalar(value))


def dumps_indented(value: object) -> str:
    """json.dumps(value, indent=2, sort_keys=True)."""
    out: list[str] = []
    _indented(value, 0, out)
    return "".join(out)
