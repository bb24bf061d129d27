"""The docs' command transcripts are what the tool prints now: tools/gen_transcripts.py runs
each scenario against a moto server and compares, masking only what differs between two runs
(ids moto makes up, times, digests, ports). A transcript that went stale (the deploy one
showed 28 resources where the example makes 50) fails here; the fix is to run the generator."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import REPO, require

pytestmark = [pytest.mark.moto, pytest.mark.repo]

GENERATOR = REPO / "tools" / "gen_transcripts.py"


def _generator() -> object:
    sys.path.insert(0, str(GENERATOR.parent))
    import gen_transcripts

    return gen_transcripts


def test_masking_keeps_what_the_tool_decides() -> None:
    """The mask hides run-to-run noise only: a changed count, word or exit code still shows."""
    gen: object = _generator()
    masked = gen.masked  # type: ignore[attr-defined]
    one = "  14:12:40 CREATE_COMPLETE nixecs-prod\nchange set nixecs-f4e82c5933c6437bfc1d0eb3\n"
    two = "  09:01:02 CREATE_COMPLETE nixecs-prod\nchange set nixecs-0123456789abcdef01234567\n"
    assert masked(one) == masked(two)
    assert masked("50 to add\n[exit 0]") != masked("28 to add\n[exit 0]")
    assert masked("[exit 0]") != masked("[exit 1]")
    assert masked("created (version 1)") != masked("updated (version 1)")


def test_every_transcript_is_what_the_tool_prints() -> None:
    try:
        import moto.server  # noqa: F401
    except ImportError:
        require(False, "moto[server] is not installed")
    done = subprocess.run(
        [sys.executable, str(GENERATOR), "--check"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
