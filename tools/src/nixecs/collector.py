"""The cyclic garbage collector paused around work that allocates much and frees no cycle.

`nixecs render` builds a fleet's model, its templates and their text: hundreds of thousands
of small dicts, lists and strings, none in a reference cycle (reference counting frees what
is dropped). Left on, the cyclic collector walks the whole live heap again and again and
finds nothing (issue 18, item 5: render within 1.5x its floor). Paused, the heap grows only by
what the collector would not have found anyway (measured: +28 MB on a 1,000-group render,
far inside the 500 MB `make bench` holds it to). A `render` process (nixecs.__main__) keeps
it off until it exits: re-enabled at the end, its first collection would walk everything the
render built once more, just before the exit.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def paused() -> Iterator[None]:
    """The collector off for the block, and back as it was after (also on an exception)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
