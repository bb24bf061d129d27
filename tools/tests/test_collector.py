"""nixecs.collector and the `render` process: the cyclic collector is paused for one-shot
builds of acyclic data, and a `render` process keeps it off until it exits (re-enabled after
the render, its first collection would walk everything the render built once more, just
before the exit: `make bench` measures the render against its floor)."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

from conftest import EXAMPLES
from nixecs.collector import paused

PROBE = (
    "import gc, sys\n"
    "from nixecs.__main__ import main\n"
    "sys.argv = ['nixecs', *sys.argv[1:]]\n"
    "code = main()\n"
    "print('enabled' if gc.isenabled() else 'disabled', code)\n"
)


def _after(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=120
    )
    return done.stdout.strip().splitlines()[-1]


def test_a_render_process_keeps_the_collector_off(tmp_path: Path) -> None:
    fleet = str(EXAMPLES / "blog.yml")
    assert _after("render", fleet, "-o", str(tmp_path / "out")) == "disabled 0"
    assert (tmp_path / "out" / "manifest.json").is_file()
    # other commands, and the render called in-process (tests, embedders), keep theirs
    assert _after("validate", fleet) == "enabled 0"


def test_paused_restores_the_collector_as_it_was() -> None:
    assert gc.isenabled()
    try:
        with paused():
            assert not gc.isenabled()
            raise RuntimeError("inside")
    except RuntimeError:
        pass
    assert gc.isenabled()
    gc.disable()
    try:
        with paused():
            pass
        assert not gc.isenabled()  # was off: stays off
    finally:
        gc.enable()
