"""The emitter's ASCII shortcut for literal blocks decides as the full pattern does."""

from __future__ import annotations

from nixecs.cloudformation import dump


def test_the_ascii_pattern_agrees_with_the_full_one_on_every_ascii_character() -> None:
    for code in range(128):
        text = f"a{chr(code)}b\n"
        assert text.isascii()
        full = dump._LITERAL_BAD.search(text) is not None
        short = dump._LITERAL_BAD_ASCII.search(text) is not None
        assert short == full, repr(chr(code))
    assert dump._literal_header("echo hi\nexit 0\n") == "|"
    assert dump._literal_header("bell \x07\n") is None
    assert dump._literal_header("caf\xe9\n") == "|"  # not ASCII: the full pattern
    assert dump._literal_header("nel \x85\n") is None
