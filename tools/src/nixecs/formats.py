"""Userdata formats: headers and detection, shared by the renderer and the host applier.

On the boot path: standard library only (`zlib` is imported only for gzip userdata).
"""

from __future__ import annotations

from .settings import SETTINGS_HEADER

NIX_HEADER_PREFIX = "# nixecs-userdata v1"
GZIP_MAGIC = b"\x1f\x8b"
EC2_USERDATA_LIMIT = 16 * 1024  # bytes EC2 accepts, before base64
# Refuse to inflate userdata beyond this: a small gzip bomb must not eat a small instance.
MAX_INFLATED = 1024 * 1024


class FormatError(ValueError):
    """Userdata that cannot be decoded or whose format is unknown."""


def gunzip(data: bytes) -> bytes:
    """Inflate gzip userdata, bounded by MAX_INFLATED; FormatError when corrupt or truncated."""
    import zlib

    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        result = inflater.decompress(data, MAX_INFLATED + 1)
    except zlib.error as error:
        raise FormatError(f"userdata is not valid gzip: {error}") from None
    if len(result) > MAX_INFLATED:
        raise FormatError(f"userdata inflates to more than {MAX_INFLATED} bytes")
    if not inflater.eof:
        raise FormatError("userdata gzip stream is truncated")
    if inflater.unused_data:
        # Bytes after the end of the gzip member (another member, or anything appended):
        # the renderer writes one member, so extra data is not ours to ignore.
        raise FormatError(
            f"userdata has {len(inflater.unused_data)} byte(s) of trailing data after the gzip stream"
        )
    return result


def detect(text: str) -> str:
    """'settings', 'nix' or 'script' from the first line; FormatError otherwise."""
    first = text.split("\n", 1)[0].rstrip("\r")
    if first == SETTINGS_HEADER:
        return "settings"
    if first.startswith(NIX_HEADER_PREFIX):
        return "nix"
    if first.startswith("#!"):
        return "script"
    shown = first[:60]
    raise FormatError(
        f"unknown userdata format (first line {shown!r}): expected {SETTINGS_HEADER!r}, {NIX_HEADER_PREFIX!r} or a '#!' script"
    )


def decode(data: bytes) -> tuple[str, str]:
    """Raw userdata bytes → (format, text); gzip is inflated first."""
    if data.startswith(GZIP_MAGIC):
        data = gunzip(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise FormatError(f"userdata is not UTF-8 text (byte {error.start})") from None
    return detect(text), text


def nix_header(cluster: str, group: str) -> str:
    return f"{NIX_HEADER_PREFIX} cluster={cluster} group={group}"


def parse_nix_header(text: str) -> dict[str, str]:
    """`# nixecs-userdata v1 cluster=prod group=web` → {'cluster': 'prod', 'group': 'web'}."""
    first = text.split("\n", 1)[0].rstrip("\r")
    if not first.startswith(NIX_HEADER_PREFIX):
        raise FormatError("not nix userdata")
    fields: dict[str, str] = {}
    for word in first[len(NIX_HEADER_PREFIX) :].split():
        key, sep, value = word.partition("=")
        if not sep:
            raise FormatError(f"bad nix userdata header field {word!r}")
        fields[key] = value
    return fields
