"""The CloudFormation emitter decides how to write each distinct string once per process
(issue 18, item 5), and its ASCII shortcut for literal blocks decides as the full pattern."""

from __future__ import annotations

from typing import Any

import pytest

from nixecs.cloudformation import dump


def _template(cluster: str) -> dict[str, Any]:
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            f"{cluster}Role": {
                "Type": "AWS::IAM::Role",
                "Properties": {
                    "Tags": [{"Key": "nixecs:cluster", "Value": cluster}, "yes", "1.5", "a: b"],
                    "UserData": "#!/bin/sh\necho hi\n",
                    "Path": "/",
                },
            },
            f"{cluster}Queue": {"Type": "AWS::SQS::Queue", "Properties": {"Path": "/"}},
        },
    }


def test_each_distinct_string_is_decided_once(monkeypatch: pytest.MonkeyPatch) -> None:
    decided: list[str] = []
    keys: list[object] = []
    real_string, real_key = dump._string_or_block, dump._key
    monkeypatch.setattr(dump, "_string_or_block", lambda t: decided.append(t) or real_string(t))
    monkeypatch.setattr(dump, "_key", lambda k: keys.append(k) or real_key(k))
    monkeypatch.setattr(dump, "_STRINGS", {})
    monkeypatch.setattr(dump, "_KEYS", {})
    first = dump.dump_template(_template("web"))
    assert sorted(decided) == sorted(set(decided))  # each string once, though "/" is there twice
    assert "/" in decided and "yes" in decided
    assert sorted(keys) == sorted(set(keys))  # each key once ("Type" and "Properties" twice)
    decided.clear()
    keys.clear()
    second = dump.dump_template(_template("api"))
    # the second cluster's template: only its new strings and keys are decided
    assert sorted(decided) == ["api"]
    assert sorted(keys) == ["apiQueue", "apiRole"]
    # and the cache changes nothing in the text: a fresh process writes the same
    monkeypatch.setattr(dump, "_STRINGS", {})
    monkeypatch.setattr(dump, "_KEYS", {})
    assert dump.dump_template(_template("api")) == second
    assert "'yes'" in first and "'1.5'" in first and "'a: b'" in first


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
