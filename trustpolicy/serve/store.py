"""The gate's cache: package files by content, which file a feed gave for an id and version, and
verdicts by package and policy.

    {root}/packages/ab/abcdef...nupkg          every judged package, named by its SHA-512 (read-only)
    {root}/index/{feed}/{id}/{version}         the SHA-512 of the file that feed gave for id/version
    {root}/verdicts/{policy}/{sha512}.json     the verdict on that file under that policy (per UTC day)
    {root}/tmp/                                downloads in progress (emptied at start)

Files appear only by rename, so a reader (or a server killed at any moment) sees nothing or a whole
file. Index and verdict files are written by one background thread, after the answer: the memory copy
serves at once, and a write lost to a kill only costs a download or a verification later.

Nothing is trusted blindly: a package file is hashed again the first time this process serves it (and
whenever its inode, size or ctime change), a file that no longer matches its name is deleted and
fetched again; an index or verdict file that does not parse is a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import tempfile
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from trustpolicy._internal.cache import decode, encode
from trustpolicy.errors import UsageError
from trustpolicy.models import PackageVerdict

_HEX = re.compile(r"[0-9a-f]{128}\Z")
_CHUNK = 1 << 20
_MAX_VERDICT_FILE = 4 << 20
_STALE_POLICY_AGE = 7 * 24 * 3600  # verdict folders of other policies or days go after a week


class PackageStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.packages = root / "packages"
        self.index_dir = root / "index"
        self.verdict_dir = root / "verdicts"
        self.tmp = root / "tmp"
        try:
            for folder in (self.packages, self.index_dir, self.verdict_dir, self.tmp):
                folder.mkdir(parents=True, exist_ok=True)
            _empty(self.tmp)  # partial downloads of a previous run
        except OSError as error:
            raise UsageError(f"cannot use the cache folder: {error.strerror or error}", path=str(root)) from None
        _remove_stale_policies(self.verdict_dir)
        self._index: dict[tuple[str, str, str], str] = {}
        self._verdicts: dict[tuple[str, str], PackageVerdict] = {}
        self._checked: dict[str, tuple[int, int, int, int]] = {}  # sha512 -> identity of the file found intact
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="trustpolicy-cache")

    def close(self) -> None:
        """Finish the pending index and verdict writes."""
        self._writer.shutdown(wait=True)

    # -- package files ---------------------------------------------------------------------------

    def temp_file(self) -> Path:
        fd, name = tempfile.mkstemp(prefix="download-", suffix=".nupkg", dir=self.tmp)
        os.close(fd)
        return Path(name)

    def path(self, sha512: str) -> Path:
        return self.packages / sha512[:2] / f"{sha512}.nupkg"

    def admit(self, temp: Path, sha512: str) -> Path:
        """Move a judged download to its content address (read-only); returns that path."""
        target = self.path(sha512)
        target.parent.mkdir(exist_ok=True)
        os.chmod(temp, 0o444)
        os.replace(temp, target)
        self._checked[sha512] = _identity(os.stat(target))
        return target

    def intact(self, sha512: str) -> Path | None:
        """The stored file for sha512 if it still has that hash, else None (a damaged file is deleted).
        Hashes only when the file is new to this process or changed since it was checked."""
        target = self.path(sha512)
        try:
            info = os.stat(target)
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        if self._checked.get(sha512) == _identity(info):
            return target
        if _sha512(target) != sha512:
            self._checked.pop(sha512, None)
            _unlink(target)
            return None
        self._checked[sha512] = _identity(info)
        return target

    def needs_check(self, sha512: str) -> bool:
        """Whether `intact` would hash the file (the caller may run it in a thread then)."""
        try:
            return self._checked.get(sha512) != _identity(os.stat(self.path(sha512)))
        except OSError:
            return False

    # -- which file a feed gave for a package ----------------------------------------------------------

    def _index_path(self, feed: str, package_id: str, version: str) -> Path:
        return self.index_dir / urllib.parse.quote(feed, safe="") / package_id / version

    def lookup(self, feed: str, package_id: str, version: str) -> str | None:
        key = (feed, package_id, version)
        if key not in self._index:
            try:
                text = self._index_path(*key).read_text(encoding="ascii").strip()
            except (OSError, UnicodeDecodeError):
                return None
            if not _HEX.match(text):
                return None
            self._index[key] = text
        return self._index[key]

    def remember(self, feed: str, package_id: str, version: str, sha512: str) -> None:
        self._index[(feed, package_id, version)] = sha512
        self._writer.submit(_write, self._index_path(feed, package_id, version), sha512.encode())

    def forget(self, feed: str, package_id: str, version: str) -> None:
        self._index.pop((feed, package_id, version), None)
        self._writer.submit(_unlink, self._index_path(feed, package_id, version))

    # -- verdicts ----------------------------------------------------------------------------------

    def verdict(self, sha512: str, policy: str) -> PackageVerdict | None:
        key = (sha512, policy)
        if key not in self._verdicts:
            path = self.verdict_dir / policy / f"{sha512}.json"
            try:
                with open(path, "rb") as handle:
                    verdict = decode(json.loads(handle.read(_MAX_VERDICT_FILE)))
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                return None  # missing, damaged or of another shape: a miss
            self._verdicts[key] = verdict
        return self._verdicts[key]

    def remember_verdict(self, sha512: str, policy: str, verdict: PackageVerdict) -> None:
        self._verdicts[(sha512, policy)] = verdict
        if len(self._verdicts) > 100_000:  # memory stays bounded; the files remain
            self._verdicts.pop(next(iter(self._verdicts)))
        self._writer.submit(_write, self.verdict_dir / policy / f"{sha512}.json",
                            json.dumps(encode(verdict), separators=(",", ":")).encode())


def _identity(info: os.stat_result) -> tuple[int, int, int, int]:
    # ctime changes on every write and cannot be set back by a user: a changed file is noticed.
    return (info.st_dev, info.st_ino, info.st_size, info.st_ctime_ns)


def _sha512(path: Path) -> str:
    digest = hashlib.sha512()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    except OSError:
        return ""
    return digest.hexdigest()


def _write(path: Path, data: bytes) -> None:
    """Atomic (rename) and best effort: a cache that cannot be written only costs work later."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
        except BaseException:
            _unlink(Path(tmp))
            raise
    except OSError:
        pass


def _unlink(path: Path) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _empty(folder: Path) -> None:
    for item in folder.iterdir():
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item, ignore_errors=True)
        else:
            _unlink(item)


def _remove_stale_policies(folder: Path) -> None:
    limit = time.time() - _STALE_POLICY_AGE
    try:
        for item in folder.iterdir():
            if item.is_dir() and not item.is_symlink() and item.stat().st_mtime < limit:
                shutil.rmtree(item, ignore_errors=True)
    except OSError:
        pass

