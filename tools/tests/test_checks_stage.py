"""The checks stage (issue 18, item 2): every cross-field rule a named function with its
codes, run after the loader; structural findings all reported, then the stage stops."""

from __future__ import annotations

import re

import pytest

from aws_fixtures import FLEET
from nixecs.diagnostics import FIXES, InvalidInput
from nixecs.fleet.checks import RULES, SCALING_RULES, check_text


def _codes(spec: str) -> set[str]:
    found: set[str] = set()
    for part in spec.split():
        first, _, last = part.partition("-")
        if not last:
            found.add(first)
            continue
        prefix = first[0]
        found |= {f"{prefix}{n}" for n in range(int(first[1:]), int(last[1:]) + 1)}
    return found


def test_every_rule_is_named_once_with_codes_that_have_a_fix() -> None:
    names = [rule.name for rule in RULES]
    assert len(names) == len(set(names)) and set(SCALING_RULES) <= set(names)
    for rule in RULES:
        codes = _codes(rule.codes)
        assert codes and all(re.fullmatch(r"[EW][0-9]{3}", c) for c in codes), rule.name
        assert codes <= set(FIXES), (rule.name, sorted(codes - set(FIXES)))
        assert rule.run.__name__ == rule.name
    structural = [rule.structural for rule in RULES]
    assert structural == sorted(structural, reverse=True)  # the structural ones first


def test_structural_findings_are_all_reported_then_the_stage_stops() -> None:
    long_group = "g" * 64  # with cluster c*64: a launch template name over 128 characters
    text = (
        FLEET.replace("  prod:\n", f"  {'c' * 64}:\n")
        .replace("      web:\n", f"      {long_group}:\n")
        .replace("group: web", f"group: {long_group}")
        .replace(
            "        cpu: 256\n        memory: 512\n",
            "        cpu: 256\n        memory: 512\n        desired: 2\n",
            1,
        )
    )
    text = text.replace(
        "        image: 123456789012.dkr.ecr.us-east-1.amazonaws.com/bananas:1.0\n"
        "        cpu: 256\n        memory: 512\n",
        "        cpu: 256\n        memory: 512\n        containers:\n"
        "          app: {image: nginx:1.27, memory: 64, essential: false}\n",
        1,
    )
    with pytest.raises(InvalidInput) as caught:
        check_text(text, "fleet.yml", nix=False)
    codes = sorted({d.code for d in caught.value.report.items})
    # E105 (group_name_lengths) and E140 (task_fit) at once; W204 (desired on a scaled
    # service, a later rule) not reached
    assert codes == ["E105", "E140"]
