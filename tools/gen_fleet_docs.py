#!/usr/bin/env python3
"""Write docs/fleet.md from the fleet schema (nixecs.fleet.schema) and the diagnostic codes.

Usage: gen_fleet_docs.py [--check]
  --check compares instead of writing and exits 1 when the committed file differs
  (tests/test_fleet_schema.py does the same in `make test`).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from nixecs.atomic import write_atomic
from nixecs.fleet.schema_docs import render_markdown

TARGET = Path(__file__).resolve().parents[1] / "docs" / "fleet.md"


def main(argv: list[str]) -> int:
    text = render_markdown()
    if "--check" in argv:
        if not TARGET.is_file() or TARGET.read_text(encoding="utf-8") != text:
            print(f"{TARGET} is out of date: run tools/gen_fleet_docs.py", file=sys.stderr)
            return 1
        return 0
    write_atomic(TARGET, text, durable=False)
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
