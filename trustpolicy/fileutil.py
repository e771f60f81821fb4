"""Small file helpers shared by commands that write files (--output, config edits)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from trustpolicy.errors import TrustPolicyError


def write_atomic(path: str | os.PathLike[str], data: str | bytes, *, encoding: str = "utf-8") -> None:
    """Write `data` to `path` so that readers see the old file or the whole new one, never a part.

    The temporary file sits in the same directory, so os.replace is a rename within one file system.
    An existing file keeps its permission bits (a read-only one is refused); a new one gets the usual
    0o666 minus the umask.
    Text is written as given (no newline translation). Failures raise TrustPolicyError naming the file.
    """
    target = Path(path)
    payload = data.encode(encoding) if isinstance(data, str) else data
    directory = target.parent if str(target.parent) else Path(".")
    try:
        mode = target.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = 0o666 & ~_umask()
    except OSError as exc:
        raise TrustPolicyError(f"cannot write: {exc.strerror or exc}", path=str(target)) from exc
    else:
        # An in-place write (NuGet's, a shell redirection) fails on a read-only file; so does this,
        # instead of replacing the file through its writable directory.
        if not os.access(target, os.W_OK):
            raise TrustPolicyError("cannot write: the file is read-only", path=str(target))
    tmp_name: str | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())  # the rename must not publish a file whose data is still in cache
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
        tmp_name = None
    except OSError as exc:
        raise TrustPolicyError(f"cannot write: {exc.strerror or exc}", path=str(target)) from exc
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
