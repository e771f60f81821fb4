"""On-disk cache of per-package verdicts, so re-checking an unchanged graph is near instant.

One file per policy: `check` names the file after a digest of everything besides the package that
can change a verdict (settings, trusted signers, roots, revocation, the day), and keys each entry by
the package file's identity and the graph's records of it. A warm run reads that one file; a run
that verified something rewrites it whole through a temporary file renamed into place, so
concurrent runs see an old or a new file, never a torn one (the last writer wins: the other run's
new entries only cost a re-verification next time). A damaged, unreadable or foreign file is an
empty cache, never an error; no fsync, since a lost file only costs a re-verification. Files not
written for a week are removed.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from trustpolicy._internal.fileutil import read_regular, replace_file
from trustpolicy.codes import Code, Level
from trustpolicy.errors import TrustPolicyError
from trustpolicy.models import (
    ExceptionUse,
    Issue,
    Location,
    MatchedSigner,
    PackageVerdict,
    SignatureReport,
    Status,
    StepResult,
)

FORMAT = 4  # bump when the file or entry shape changes (4: issues carry a detail; one-line messages)
MAX_ENTRIES = 100_000  # per policy file; the oldest entries go first
_MAX_FILE = 256 * 1024 * 1024  # a larger file is not ours
_MAX_AGE = 7 * 24 * 3600  # seconds since a policy file was last written


class VerdictCache:
    """The entries of one policy: `get` during the run, `put` new results, `save` once at the end."""

    def __init__(self, directory: str | os.PathLike[str], policy: str) -> None:
        self.directory = Path(directory)
        self.policy = policy
        self.path = self.directory / f"{policy}.json"
        self._entries: dict[str, dict[str, Any]] | None = None
        self._dirty = False

    def get(self, key: str) -> PackageVerdict | None:
        """The cached verdict, or None (also for an entry that does not read back: a miss, never an error)."""
        if self._entries is None:
            self._entries = self._load()
        entry = self._entries.get(key)
        if entry is None:
            return None
        try:
            return decode(entry)
        except (KeyError, ValueError, TypeError, AttributeError):
            return None

    def put(self, key: str, verdict: PackageVerdict) -> None:
        if self._entries is None:
            self._entries = self._load()
        self._entries.pop(key, None)  # re-inserted last: the newest entries survive the cap
        self._entries[key] = encode(verdict)
        self._dirty = True

    def save(self) -> None:
        """Write the entries if anything changed; a read-only or full cache folder is not an error."""
        if not self._dirty or self._entries is None:
            return
        entries = self._entries
        if len(entries) > MAX_ENTRIES:
            entries = dict(list(entries.items())[-MAX_ENTRIES:])
        data = json.dumps({"format": FORMAT, "policy": self.policy, "entries": entries}, separators=(",", ":"))
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(data)
                replace_file(tmp, self.path)  # retried while another run reads it (Windows)
            except BaseException:
                os.unlink(tmp)
                raise
        except (OSError, TrustPolicyError):
            return
        self._dirty = False
        self._remove_stale()

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = read_regular(self.path, _MAX_FILE)  # a FIFO planted in the cache must not block the run
            stored = json.loads(data) if len(data) <= _MAX_FILE else None
        except (OSError, ValueError):
            return {}
        if not isinstance(stored, dict) or stored.get("format") != FORMAT or stored.get("policy") != self.policy:
            return {}
        entries = stored.get("entries")
        if not isinstance(entries, dict):
            return {}
        return {key: entry for key, entry in entries.items() if isinstance(entry, dict)}

    def _remove_stale(self) -> None:
        """Policy files of other days or settings, unused for a week (best effort)."""
        limit = time.time() - _MAX_AGE
        try:
            with os.scandir(self.directory) as listing:
                for item in listing:
                    if item.name.endswith(".json") and item.is_file(follow_symlinks=False) and item.stat().st_mtime < limit:
                        os.unlink(item.path)
        except OSError:
            pass



# -- the entry format: everything needed to rebuild a verdict (the report's JSON leaves out the steps) ------

_STATUS = {status.label: status for status in Status}


def encode(verdict: PackageVerdict) -> dict[str, object]:
    """A verdict as JSON types; `decode` gives it back equal."""
    signer = verdict.trusted_signer
    return {
        "path": verdict.path,
        "id": verdict.id,
        "version": verdict.version,
        "signed": verdict.signed,
        "steps": [{"step": step.step, "status": step.status.label, "issues": [i.to_json() for i in step.issues]}
                  for step in verdict.steps],
        "signatures": [signature.to_json() for signature in verdict.signatures],
        "trustedSigner": signer.to_json() | {"placement": signer.placement} if signer else None,
        "trustedSignerReason": verdict.trusted_signer_reason,
        "errorsFail": verdict.errors_fail,
        "exception": verdict.exception.to_json() if verdict.exception else None,
    }


def decode(data: Mapping[str, Any]) -> PackageVerdict:
    """The inverse of `encode`; KeyError, ValueError, TypeError or AttributeError for a damaged entry."""
    signer, exception = data["trustedSigner"], data.get("exception")
    return PackageVerdict(
        path=data["path"],
        id=data["id"],
        version=data["version"],
        signed=data["signed"],
        steps=tuple(StepResult(s["step"], _STATUS[s["status"]], tuple(_issue(i) for i in s["issues"]))
                    for s in data["steps"]),
        signatures=tuple(_signature(s) for s in data["signatures"]),
        trusted_signer=MatchedSigner(signer["name"], signer["kind"], signer["fingerprint"], signer["placement"],
                                     signer.get("rule", "fingerprint"), _location(signer.get("source")))
        if signer else None,
        trusted_signer_reason=data["trustedSignerReason"],
        errors_fail=bool(data["errorsFail"]),
        exception=ExceptionUse(exception["id"], exception["versions"], exception["expires"], exception["reason"],
                               _location(exception["source"])) if exception else None,
    )


def _issue(data: Mapping[str, Any]) -> Issue:
    return Issue(Code(data["code"]), Level(data["level"]), data["message"], data["signature"], detail=data.get("detail"))


def _signature(data: Mapping[str, Any]) -> SignatureReport:
    status, timestamp = data["status"], data["timestamp"]
    return SignatureReport(
        kind=data["kind"],
        placement=data["placement"],
        subject=data["subject"],
        fingerprints=dict(data["fingerprints"]),
        timestamp=datetime.fromisoformat(timestamp) if timestamp else None,  # RFC 3339 as to_json writes it
        service_index=data["serviceIndex"],
        owners=tuple(data["owners"]),
        status=None if status == "not-evaluated" else _STATUS[status],
        identities=tuple(data.get("identities", ())),
    )


def _location(data: Mapping[str, Any] | None) -> Location | None:
    return Location(data["path"], data.get("line")) if data else None
