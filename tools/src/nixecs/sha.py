"""SHA-256 without hashlib's import.

`hashlib` loads OpenSSL (~6 ms here), more than `nixecs apply` or `validate` may spend on
what they hash (a userdata, a few `nixos:` texts, a manifest). The interpreter's builtin
module gives the same digests. Standard library only: the boot path imports it.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not `typing`: the boot path must not import it (host/apply.py)

if TYPE_CHECKING:
    from hashlib import _Hash

try:
    from _sha256 import sha256 as _sha256  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - Python 3.12+ (_sha2), or a build without it
    try:
        from _sha2 import sha256 as _sha256  # type: ignore[import-not-found,no-redef,unused-ignore]
    except ImportError:
        from hashlib import sha256 as _sha256  # type: ignore[assignment,unused-ignore]


def sha256(data: bytes = b"") -> _Hash:
    """`hashlib.sha256(data)`."""
    return _sha256(data)  # type: ignore[no-any-return,unused-ignore]


def sha256_hex(data: bytes) -> str:
    return str(_sha256(data).hexdigest())
