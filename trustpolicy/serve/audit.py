"""The audit log: one JSON line per decision about a package, appended to a file.

    {"time": "...Z", "client": "127.0.0.1", "feed": "nuget.org", "id": "Contoso.Lib", "version": "1.2.0",
     "sha512": "...", "decision": "refused", "status": 403, "verdict": "invalid", "codes": ["NU3034"],
     "trustedSigner": null, "reason": "NU3034 ...", "mode": "require", "cached": true}

Each line is one write() on a file opened with O_APPEND, so lines from concurrent writers (another
server on the same file, logrotate's copytruncate) never interleave. `reopen` (on SIGHUP) follows a
rotated file.
"""

from __future__ import annotations

import json
import os
from typing import Any

from trustpolicy._internal import clock
from trustpolicy._internal.clock import format_moment
from trustpolicy.errors import UsageError


class AuditLog:
    def __init__(self, path: str | None) -> None:
        self.path = path
        self._fd: int | None = None
        self.reopen()

    def reopen(self) -> None:
        if self.path is None:
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
        except OSError as error:
            raise UsageError(f"cannot open the audit log: {error.strerror or error}") from None
        old, self._fd = self._fd, fd
        if old is not None:
            os.close(old)

    def write(self, record: dict[str, Any]) -> None:
        if self._fd is None:
            return
        line = json.dumps({"time": format_moment(clock.now()), **record}, separators=(",", ":"), ensure_ascii=True)
        os.write(self._fd, line.encode() + b"\n")

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
