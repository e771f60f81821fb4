"""On-disk cache of per-package results, so re-checking an unchanged graph is near instant.

Entries are small JSON files named by a key that already holds everything that can change the
result (check.py builds it). Writes go to a temporary file renamed into place, so concurrent runs
see a whole entry or none; a damaged or unreadable entry is a miss, never an error. No fsync: a
lost entry after a power cut only costs a re-verification.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

FORMAT = 1  # bump when the entry shape changes
_MAX_ENTRY = 4 * 1024 * 1024  # a verdict is a few KB; a larger file is not ours


class VerdictCache:
    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            # O_NONBLOCK and a regular-file check: a FIFO planted in the cache must not block the run.
            fd = os.open(self._path(key), os.O_RDONLY | os.O_NONBLOCK)
            with os.fdopen(fd, "rb") as handle:
                if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                    return None
                data = handle.read(_MAX_ENTRY + 1)
            stored = json.loads(data) if len(data) <= _MAX_ENTRY else None
        except (OSError, ValueError):
            return None
        if not isinstance(stored, dict) or stored.get("format") != FORMAT or stored.get("key") != key:
            return None
        entry = stored.get("entry")
        return entry if isinstance(entry, dict) else None

    def put(self, key: str, entry: dict[str, Any]) -> None:
        target = self._path(key)
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=target.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    json.dump({"format": FORMAT, "key": key, "entry": entry}, handle)
                os.replace(tmp, target)
            except BaseException:
                os.unlink(tmp)
                raise
        except OSError:
            pass  # a read-only or full cache folder must not fail the check
