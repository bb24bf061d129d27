#!/usr/bin/env python3
"""Generate src/nixecs/fleet/iam_actions.json: every IAM action of every AWS service, split into
the actions that have resource types (they can be scoped to ARNs) and those that have none
(`Resource: "*"` is their only form). `nixecs validate` reads it to warn (W140) when a task
role grants an action with a resource type on `*`.

Source, maintained by others and installed in the development venv (its version is recorded
in the table): cfn-lint's `cfnlint/data/AdditionalSpecs/Policies.json`, which cfn-lint's
`cfnlint.maintenance.update_iam_policies` builds from the AWS Service Authorization Reference
in machine-readable form (https://servicereference.us-east-1.amazonaws.com): an action is
listed with `"Resources": [...]` when the reference names resource types for it, and with `{}`
when it names none.

Run: `../.venv/bin/python gen_iam_actions.py` from tools/. Output is deterministic.
"""

from __future__ import annotations

import json
import sys
from importlib import metadata
from pathlib import Path

OUT = Path(__file__).parent / "src" / "nixecs" / "fleet" / "iam_actions.json"


def build() -> dict[str, object]:
    import cfnlint.data.AdditionalSpecs

    source = Path(cfnlint.data.AdditionalSpecs.__file__).parent / "Policies.json"
    policies = json.loads(source.read_text(encoding="utf-8"))
    services: dict[str, dict[str, str]] = {}
    for prefix, data in sorted(policies.items()):
        actions = data.get("Actions", {})
        # Action names are case-insensitive in IAM; cfn-lint stores them lower-cased.
        scoped = sorted(a for a, v in actions.items() if v.get("Resources"))
        unscoped = sorted(a for a, v in actions.items() if not v.get("Resources"))
        services[prefix.lower()] = {"scoped": " ".join(scoped), "unscoped": " ".join(unscoped)}
    return {
        "source": f"cfn-lint {metadata.version('cfn-lint')} cfnlint/data/AdditionalSpecs/Policies.json",
        "services": services,
    }


def main() -> int:
    text = json.dumps(build(), indent=0, sort_keys=True) + "\n"
    tmp = OUT.with_suffix(".json.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(OUT)
    print(f"wrote {OUT} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
