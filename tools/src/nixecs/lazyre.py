"""Regular expressions compiled when first used (issue 18, item 4).

A module-level `re.compile` is paid by every process that imports the module, whether it
matches anything or not: the fleet loader's and the settings schema's few dozen patterns cost
`validate` and `apply` more than their whole run on a small fleet. `lazy(pattern)` stands in
for `re.compile(pattern)`: the `pattern` and `flags` attributes are there at once (the JSON
Schema reads `.pattern`), and the first use of any other attribute compiles the expression and
keeps the compiled pattern's methods on the object, so later calls cost what a compiled
pattern's do. Standard library only: the boot path imports it, and `re` itself is imported
only when a pattern is compiled (`import re` costs the boot path ~8 ms: it imports `enum`).

`lazy(pattern, test=function)`: a pattern on `nixecs apply`'s path also carries a plain-Python
`test(text) -> bool` that answers `fullmatch` without compiling anything. Such a pattern's
`fullmatch` returns True or None, never a Match: use it as a test only (every caller does;
tests/test_lazyre.py proves each test equal to its pattern's fullmatch on generated text).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    import re
    from collections.abc import Callable

_METHODS = ("match", "fullmatch", "search", "sub", "subn", "split", "findall", "finditer")


class _Lazy:
    def __init__(
        self, pattern: str | bytes, flags: int, test: Callable[[str], bool] | None = None
    ) -> None:
        self.pattern = pattern
        self.flags = flags
        if test is not None:
            self.fullmatch = lambda text: True if test(text) else None

    def __getattr__(self, name: str) -> object:  # only for what is not set yet
        import re

        compiled = re.compile(self.pattern, self.flags)
        for method in _METHODS:
            if method == "fullmatch" and "fullmatch" in self.__dict__:
                continue  # the plain-Python test stays
            setattr(self, method, getattr(compiled, method))
        self.groups = compiled.groups
        self.groupindex = compiled.groupindex
        return getattr(compiled, name)

    def __repr__(self) -> str:
        return f"lazy({self.pattern!r})"


def lazy(
    pattern: str, flags: int = 0, test: Callable[[str], bool] | None = None
) -> re.Pattern[str]:
    """`re.compile(pattern, flags)`, compiled on first use; `test`, when given, answers
    `fullmatch` (True or None) without `re`."""
    return _Lazy(pattern, flags, test)  # type: ignore[return-value]


def lazy_bytes(pattern: bytes, flags: int = 0) -> re.Pattern[bytes]:
    """`re.compile(pattern, flags)` for bytes, compiled on first use."""
    return _Lazy(pattern, flags)  # type: ignore[return-value]


def import_deferring_compiles(name: str) -> None:
    """Import module `name` with every `re.compile` its import runs deferred to first use.

    For PyYAML: importing it compiles some twenty patterns (its pure-Python reader's, resolver's
    and constructor's; ~20 ms, more than `validate` spends checking a small fleet), none of
    which the libyaml parser nixecs uses ever matches (fleet/yaml12.py resolves scalars
    itself). A module-level `re.compile` reads the attribute when it runs, so swapping it for
    the duration of the import is enough; what does get used later compiles then, the same.
    Nothing happens when the module is already imported.
    """
    import re
    import sys

    if name in sys.modules:
        return
    saved = re.compile
    re.compile = lazy  # type: ignore[assignment]
    try:
        __import__(name)
    finally:
        re.compile = saved
