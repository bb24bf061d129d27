"""The floor of a render, for `make bench` (issue 18, item 5): the least any renderer of
this fleet must do — load the same YAML with libyaml (PyYAML's C loader, no positions, no
checks) and write the same files the same way (nixecs.atomic, as `render` does).

Usage: python bench_floor.py FLEET BUNDLE OUT, where BUNDLE is a pickle of
{relative path: bytes} of a real render's files (read in one go: reading 1,101 files one by
one would charge the floor for work `render` does not do).
"""

from __future__ import annotations

import os
import pickle
import sys

import yaml

from nixecs.atomic import write_atomic


def main(fleet: str, bundle: str, out: str) -> None:
    with open(fleet, encoding="utf-8") as handle:
        yaml.load(handle.read(), Loader=yaml.CSafeLoader)
    with open(bundle, "rb") as handle:
        files: dict[str, bytes] = pickle.load(handle)
    for relative, text in files.items():
        target = os.path.join(out, relative)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        write_atomic(target, text, durable=False)


if __name__ == "__main__":
    main(*sys.argv[1:4])
