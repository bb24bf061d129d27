"""Atomic file writes: a temporary file in the same directory, fsync, rename.

A reader (or the next boot) sees either the old file or the new one, never a torn one.
Kept to the standard library: it is on the boot path.

Safe in a directory someone else can write (issue 12, item 6):

- The temporary is created with O_CREAT|O_EXCL|O_NOFOLLOW under an unpredictable name
  (`.NAME.nixecs-tmp-` + 16 hex digits from os.urandom), mode 0600 — or the target mode if
  that is stricter — from its first byte. A name planted in advance (a file, a hard link, a
  symlink) makes the open fail with EEXIST and another name is drawn; nothing is ever
  written through someone else's inode.
- Why not O_TMPFILE + linkat: open(2) and link(2) (Linux man-pages 6.03) — linking an
  O_TMPFILE file by descriptor needs linkat(..., AT_EMPTY_PATH) and CAP_DAC_READ_SEARCH,
  or /proc mounted for the /proc/self/fd/N form, not every filesystem supports O_TMPFILE,
  and link(2) "If newpath exists, it will not be overwritten": replacing the target still
  needs a named temporary and rename(2). So O_TMPFILE would add requirements and save
  nothing; O_EXCL with a random name is the whole protection.
- With `root` (the host's `--root`, "/" on a real host), the directory is reached by
  opening each component below `root` with O_DIRECTORY|O_NOFOLLOW relative to its parent
  (openat): a symlinked directory is refused (UnsafePath), never followed. Temporaries a
  killed run left in that directory for the same target are removed (only our own name
  patterns, only regular files owned by us).
"""

from __future__ import annotations

import errno
import os
import stat  # already imported by os: free

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

TEMP_MARK = ".nixecs-tmp-"
_TEMP_HEX = 16
_NAME_KEEP = 200
STALE_SECONDS = 300  # NAME_MAX is 255: leave room for the marker and the random part
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
_NO_FOLLOW_DIRECTORY = _DIRECTORY | os.O_NOFOLLOW


class UnsafePath(OSError):
    """A path component that is a symlink (or not a directory) where we must not follow one."""


def open_directory(
    path: str, root: str | None = None, mode: int = 0o755, last_mode: int | None = None
) -> int:
    """A descriptor of directory `path`, creating what is missing (`mode`; the last component
    `last_mode`, default `mode`). With `root`, every component below `root` is opened with
    O_NOFOLLOW relative to its parent: a symlink anywhere under `root` raises UnsafePath."""
    if root is None:  # build output and the like: the caller's own tree, followed
        if not os.path.isdir(path):
            os.makedirs(path, exist_ok=True)
        return os.open(path, _DIRECTORY)
    relative = os.path.relpath(path, root)
    # The root itself is the caller's choice ("/" on a host, a test directory): followed.
    os.makedirs(root, mode=mode, exist_ok=True)
    if relative == ".":
        return os.open(root, _DIRECTORY)
    parts = relative.split(os.sep)
    if parts[0] == "..":
        raise UnsafePath(errno.EXDEV, "is outside the root directory", path)

    def make(part: str, parent: int, last: bool) -> None:
        try:  # noqa: SIM105 - contextlib is not on the boot path's import list
            os.mkdir(part, last_mode if last and last_mode is not None else mode, dir_fd=parent)
        except FileExistsError:  # created meanwhile: opened (and checked) after
            pass

    return _descend(root, parts, make)


def open_existing_directory(root: str, parts: list[str]) -> int:
    """A descriptor of the existing directory root/parts…, every component opened with
    O_NOFOLLOW relative to its parent: UnsafePath for a symlink or a non-directory on the way,
    FileNotFoundError for a missing one (nothing is created)."""
    return _descend(root, parts, None)


def _descend(root: str, parts: list[str], make: Callable[[str, int, bool], None] | None) -> int:
    """Open root, then each of `parts` below it with O_NOFOLLOW relative to its parent;
    `make` creates a missing component (None: FileNotFoundError)."""
    fd = os.open(root, _DIRECTORY)
    try:
        for index, part in enumerate(parts):
            try:
                child = os.open(part, _NO_FOLLOW_DIRECTORY, dir_fd=fd)
            except FileNotFoundError:
                if make is None:
                    raise
                make(part, fd, index == len(parts) - 1)
                child = _open_component(part, fd, root, parts[: index + 1])
            except OSError as error:
                if error.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise _unsafe(root, parts[: index + 1]) from None
                raise
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _open_component(part: str, parent: int, root: str, parts: list[str]) -> int:
    try:
        return os.open(part, _NO_FOLLOW_DIRECTORY, dir_fd=parent)
    except OSError as error:
        if error.errno in (errno.ELOOP, errno.ENOTDIR):
            raise _unsafe(root, parts) from None
        raise


def _unsafe(root: str, parts: list[str]) -> UnsafePath:
    return UnsafePath(
        errno.ELOOP,
        "is a symbolic link or not a directory: refusing to follow it",
        os.path.join(root, *parts),
    )


def _temporary_prefix(name: str) -> str:
    return f".{name[:_NAME_KEEP]}{TEMP_MARK}"


def _is_our_temporary(entry: str, name: str) -> bool:
    prefix = _temporary_prefix(name)
    if entry.startswith(prefix):
        tail = entry[len(prefix) :]
        return len(tail) == _TEMP_HEX and all(c in "0123456789abcdef" for c in tail)
    # The pattern of nixecs before this module drew random names: `.NAME.tmp-PID`.
    legacy = f".{name}.tmp-"
    return entry.startswith(legacy) and entry[len(legacy) :].isdigit()


def remove_stale_temporaries(directory: int, *names: str) -> list[str]:
    """Remove what a killed run left for the targets `names` in the directory open as
    `directory` (one scan of it): only our own temporary names, only regular files owned by
    this user, only when older than STALE_SECONDS (a concurrent writer's temporary is seconds
    old; removing it would fail that writer's rename). Returns the names removed."""
    import time

    removed = []
    euid = os.geteuid()
    cutoff = time.time() - STALE_SECONDS
    with os.scandir(directory) as entries:
        candidates = [
            e.name for e in entries if any(_is_our_temporary(e.name, name) for name in names)
        ]
    for entry in candidates:
        try:
            info = os.stat(entry, dir_fd=directory, follow_symlinks=False)
            if stat.S_ISREG(info.st_mode) and info.st_uid == euid and info.st_mtime < cutoff:
                os.unlink(entry, dir_fd=directory)
                removed.append(entry)
        except FileNotFoundError:  # another run cleaned it up first
            continue
    return removed


def _create_temporary(directory: int, name: str, mode: int) -> tuple[str, int]:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    # 0600, or the target mode where it is stricter (a 0400 secret is never 0600 on disk).
    initial = mode & 0o600
    for _ in range(16):
        temporary = _temporary_prefix(name) + os.urandom(_TEMP_HEX // 2).hex()
        try:
            return temporary, os.open(temporary, flags, initial, dir_fd=directory)
        except FileExistsError:
            continue  # planted, or (2^-64) a collision: draw again
    raise FileExistsError(errno.EEXIST, "no free temporary name after 16 tries", name)


def write_atomic(
    path: str | os.PathLike[str],
    data: bytes | str,
    mode: int = 0o644,
    *,
    uid: int = -1,
    gid: int = -1,
    durable: bool = True,
    root: str | None = None,
) -> None:
    """Write `data` to `path` atomically, with `mode` (and owner) set before it appears.

    `durable=False` skips the fsyncs: the rename is still atomic for every reader, but a
    power cut may lose the new file. Right for build output (`render` writes a thousand
    files and is re-run at will), wrong for a host's state, which keeps the default.
    `root`: never follow a symlinked directory below it, and clean up stale temporaries.
    """
    target = os.fspath(path)
    directory_path, name = os.path.split(target)
    directory = open_directory(directory_path or ".", root)
    try:
        if root is not None:
            remove_stale_temporaries(directory, name)
        write_in(directory, name, data, mode, uid=uid, gid=gid, durable=durable)
    finally:
        os.close(directory)


def write_in(
    directory: int,
    name: str,
    data: bytes | str,
    mode: int = 0o644,
    *,
    uid: int = -1,
    gid: int = -1,
    durable: bool = True,
) -> None:
    """`write_atomic` of file `name` in the directory open as `directory` (the caller's
    descriptor, opened as open_directory opens it, kept open): for a writer of many files in
    one directory, which opens it once (render: a thousand files)."""
    payload = data.encode("utf-8") if isinstance(data, str) else data
    temporary, fd = _create_temporary(directory, name, mode)
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
        os.unlink(temporary, dir_fd=directory)
        raise
    os.close(fd)
    try:
        # rename(2) replaces the name itself: a symlink planted at the target is replaced,
        # never followed.
        os.replace(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
    except BaseException:
        os.unlink(temporary, dir_fd=directory)
        raise
    if durable:
        try:  # noqa: SIM105 - as above
            os.fsync(directory)
        except OSError:  # pragma: no cover - some filesystems refuse
            pass


def read_regular(path: str, limit: int, *, follow: bool = True) -> bytes:
    """At most `limit + 1` bytes of a regular file (the caller tells "too big" by the extra
    byte). Opened with O_NONBLOCK, so a FIFO cannot block the open, and checked with fstat
    before any read: a FIFO, a device or a directory raises OSError (EINVAL, "not a regular
    file") instead of blocking or reading forever. `follow=False`: a symlink raises ELOOP."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    fd = os.open(path, flags)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0 and (chunk := os.read(fd, min(left, 1 << 20))):
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
