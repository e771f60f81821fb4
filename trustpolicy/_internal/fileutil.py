"""The few file operations every reader and writer shares, the same on Linux, macOS and Windows.

- `open_regular`: open a file for reading only if it is a regular file. A FIFO, device, folder or
  socket is refused before it is opened (opening a FIFO waits for a writer; opening some devices has
  effects), and once more after, from the open handle, in case the path was swapped in between.
  Where O_NONBLOCK exists (POSIX) the open itself cannot block either.
- `replace_file`: the rename that publishes a temporary file. On Windows a file another process has
  open cannot be replaced (PermissionError) until it is closed: retried briefly, then a clear error.
- `write_atomic`: temporary file beside the target, fsync, `replace_file`.
"""

from __future__ import annotations

import os
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

from trustpolicy.errors import TrustPolicyError

if sys.platform == "win32":
    # No FIFOs to block on; devices (CON, NUL) and named pipes are refused by the stat before the
    # open. O_BINARY: without it the C runtime translates line endings.
    _READ_FLAGS = os.O_RDONLY | os.O_BINARY | os.O_NOINHERIT
else:
    # O_NONBLOCK: a FIFO swapped in after the stat still cannot make the open wait for a writer.
    _READ_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY

REPLACE_RETRY_SECONDS = 1.0  # how long a held-open target is waited for before giving up

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


class NotRegularFile(OSError):
    """The path exists but is not a regular file, so it was not opened (or was closed at once)."""

    def __init__(self, path: str, kind: str) -> None:
        super().__init__(f"{path}: is {kind}, not a regular file")
        self.kind = kind
        self.strerror = f"it is {kind}, not a regular file"
        self.filename = path


def not_regular(mode: int) -> str | None:
    """What a file of this st_mode is when it is not a regular file ("a FIFO (named pipe)"), else None."""
    if stat.S_ISREG(mode):
        return None
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """Open a regular file for binary reading; never blocks on a FIFO or device.

    Symbolic links are followed to a regular file; a link loop raises OSError (ELOOP).
    Raises NotRegularFile (an OSError) for anything else, or the OSError of stat/open.
    """
    return _open_checked(path)[0]


def read_regular(path: str | os.PathLike[str], limit: int) -> bytes:
    """Up to `limit` + 1 bytes of a regular file (one more than allowed tells the caller it is too large);
    refuses what open_regular refuses."""
    handle, size = _open_checked(path)
    with handle:
        return handle.read(min(size, limit) + 1)  # not limit + 1: read() allocates what it is asked for


def _open_checked(path: str | os.PathLike[str]) -> tuple[BinaryIO, int]:
    """The open file and its size."""
    name = os.fspath(path)
    kind = not_regular(os.stat(name).st_mode)  # before opening: never open a device or FIFO
    if kind:
        raise NotRegularFile(name, kind)
    fd = os.open(name, _READ_FLAGS)
    try:
        info = os.fstat(fd)
        kind = not_regular(info.st_mode)  # the path may have been swapped since the stat
        if kind:
            raise NotRegularFile(name, kind)
        return os.fdopen(fd, "rb"), info.st_size  # O_NONBLOCK changes nothing for a regular file's reads
    except BaseException:
        os.close(fd)
        raise


def replace_file(tmp: str | os.PathLike[str], dest: str | os.PathLike[str], *,
                 wait: float = REPLACE_RETRY_SECONDS) -> None:
    """os.replace(tmp, dest), retried for `wait` seconds while it raises PermissionError.

    Windows refuses to replace a file another process holds open (an editor, a virus scanner, a
    concurrent reader); it is usually closed within milliseconds. After `wait`: TrustPolicyError
    naming `dest` ("cannot write: ..."). Other OSErrors are raised at once, unchanged; `tmp` is left
    for the caller to remove.
    """
    deadline = time.monotonic() + wait
    delay = 0.01
    while True:
        try:
            os.replace(tmp, dest)
            return
        except PermissionError as exc:
            if time.monotonic() >= deadline:
                raise TrustPolicyError(
                    f"cannot write: {exc.strerror or exc} (the file could not be replaced for {wait:g} s; "
                    "another program may have it open)",
                    path=os.fspath(dest),
                ) from None
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, encoding: str = "utf-8") -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never a part.

    The temporary file sits beside the file written, so the rename stays within one file system.
    A symbolic link is kept: the file it points to is the one replaced (as an in-place write
    through the link would change it). An existing file keeps its permission bits (a read-only one
    is refused); a new one gets the usual 0o666 minus the umask.
    Text is written as given (no newline translation). Failures raise TrustPolicyError naming the file.
    """
    target = Path(path)
    if target.is_symlink():
        target = Path(os.path.realpath(target))  # a loop stays a loop, and fails below with its own error
    payload = data.encode(encoding) if isinstance(data, str) else data
    directory = target.parent if str(target.parent) else Path(".")
    try:
        existing = target.stat().st_mode
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    except OSError as exc:
        raise TrustPolicyError(f"cannot write: {exc.strerror or exc}", path=str(path)) from exc
    else:
        mode = existing & 0o7777
        kind = not_regular(existing)
        if kind:  # replacing /dev/null or a FIFO with a regular file is never what was meant
            raise TrustPolicyError(f"cannot write: it is {kind}, not a regular file", path=str(path))
        # An in-place write (NuGet's, a shell redirection) fails on a read-only file; so does this,
        # instead of replacing the file through its writable directory.
        if not os.access(target, os.W_OK):
            raise TrustPolicyError("cannot write: the file is read-only", path=str(path))
    tmp_name: str | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())  # the rename must not publish a file whose data is still in cache
        os.chmod(tmp_name, mode)  # on Windows only the read-only bit exists; it is what this keeps there
        replace_file(tmp_name, target)
        tmp_name = None
    except OSError as exc:
        raise TrustPolicyError(f"cannot write: {exc.strerror or exc}", path=str(path)) from exc
    finally:
        if tmp_name is not None:
            try:
                os.unlink(tmp_name)
            except OSError:
                pass


def _umask() -> int:
    # os.umask can only be read by setting it; restore it at once.
    current = os.umask(0o022)
    os.umask(current)
    return current
