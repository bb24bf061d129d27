"""Atomic file writes: a temporary file in the same directory, fsync, rename.

A reader (or the next boot) sees either the old file or the new one, never a torn one.
Kept to the standard library: it is on the boot path.
"""

from __future__ import annotations

import os


def write_atomic(
    path: str | os.PathLike[str],
    data: bytes | str,
    mode: int = 0o644,
    *,
    uid: int = -1,
    gid: int = -1,
    durable: bool = True,
) -> None:
    """Write `data` to `path` atomically, with `mode` (and owner) set before it appears.

    `durable=False` skips the fsyncs: the rename is still atomic for every reader, but a
    power cut may lose the new file. Right for build output (`render` writes a thousand
    files and is re-run at will), wrong for a host's state, which keeps the default.
    """
    target = os.fspath(path)
    directory = os.path.dirname(target) or "."
    os.makedirs(directory, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    temporary = os.path.join(directory, f".{os.path.basename(target)}.tmp-{os.getpid()}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    try:
        view = memoryview(payload)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if uid != -1 or gid != -1:
            os.fchown(fd, uid, gid)
        os.fchmod(fd, mode)
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(temporary)
        raise
    os.close(fd)
    try:
        os.replace(temporary, target)
    except BaseException:
        os.unlink(temporary)
        raise
    if not durable:
        return
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:  # pragma: no cover - some filesystems refuse
        return
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
