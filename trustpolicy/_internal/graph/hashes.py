"""Re-hash the .nupkg on disk and compare it with every integrity record the graph holds.

What each record means (docs/graph.md sections 3.3, 3.5, 4.1, 4.2):
- assets `sha512`, lock `contentHash`, `.nupkg.metadata` `contentHash`: base64 SHA-512 of the package
  *without its signature* (the docs/format.md 4.2 walk with SHA-512); for an unsigned package that is the
  whole file. An assets file written by NuGet 4.6-4.8 may hold the whole-file hash of a signed
  package instead, so `sha512` is also accepted when it equals the whole-file hash.
- `.nupkg.sha512`: base64 SHA-512 of the whole file as downloaded, signature included.

Each file is hashed at most once per digest kind (cached by device, inode, size and mtime): an
unsigned package needs one pass; so does a signed one whose archive was opened with the whole-file
hash requested (`PackageArchive.package_hashes(..., file_algorithms=...)`), else a `.sha512` file or
an old assets record costs a second pass.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path

from trustpolicy._internal.archive import PackageArchive, hash_file
from trustpolicy._internal.graph.model import RECORDS, Claim, GraphPackage, finding
from trustpolicy.codes import Code
from trustpolicy.errors import SignatureFormatError, TrustPolicyError
from trustpolicy.models import Issue

_CACHE_LIMIT = 65536


@dataclass
class _Digests:
    signed: bool | None = None
    content: bytes | None = None
    whole: bytes | None = None


class HashCache:
    """Digests of package files keyed by (device, inode, size, mtime): a changed file is re-hashed."""

    def __init__(self) -> None:
        self._items: dict[tuple[int, int, int, int], _Digests] = {}

    def _slot(self, path: Path) -> _Digests:
        st = os.stat(path)
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        if key not in self._items:
            if len(self._items) >= _CACHE_LIMIT:
                self._items.pop(next(iter(self._items)))
            self._items[key] = _Digests()
        return self._items[key]

    def whole(self, path: Path, archive: PackageArchive | None = None) -> bytes:
        """SHA-512 of the whole file (what `.nupkg.sha512` records). Raises TrustPolicyError/OSError.
        `archive`: the file already opened by the caller (a digest it took is reused)."""
        slot = self._slot(path)
        if slot.whole is None:
            slot.whole = archive.file_hash("sha512") if archive is not None else hash_file(path, "sha512")
            if slot.signed is False:
                slot.content = slot.whole
        return slot.whole

    def content(self, path: Path, archive: PackageArchive | None = None) -> tuple[bool, bytes]:
        """(signed, contentHash digest). Raises TrustPolicyError (SignatureFormatError when the walk fails).
        `archive`: the file already opened by the caller (its remembered package hashes are reused)."""
        slot = self._slot(path)
        if slot.content is None:
            archive = archive or PackageArchive.open(path)
            slot.signed = archive.is_signed
            if archive.is_signed:
                slot.content = archive.package_hash("sha512")
            else:  # no signature entry: contentHash is the whole-file hash (one pass gives both)
                slot.content = slot.whole = slot.whole or archive.file_hash("sha512")
        return bool(slot.signed), slot.content


DEFAULT_CACHE = HashCache()


def b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode("ascii")


def _decode(value: str) -> bytes | None:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == 64 else None


def _describe(claim: Claim) -> str:
    return f"{RECORDS.get(claim.record, claim.record)} in {claim.source}"


def verify_graph_hashes(
    pkg: GraphPackage, *, cache: HashCache | None = None, archive: PackageArchive | None = None
) -> tuple[Issue, ...]:
    """Re-hash `pkg.nupkg` and compare with each claim; one TP0002 per disagreeing record.

    Returns TP0003 when the file cannot be read, TP0002 when the unsigned-content walk fails
    (NuGet's extraction would fail: an integrity failure). Without a file, records are only
    compared with each other (NuGet's NU1403 rule). Never raises for findings.
    """
    cache = cache or DEFAULT_CACHE
    if pkg.nupkg is None:
        return _claims_disagree(pkg)
    findings: list[Issue] = []
    try:
        signed, content = cache.content(pkg.nupkg, archive)
    except SignatureFormatError as error:
        if pkg.claims:
            return (finding(Code.TP0002, f"{pkg.nupkg}: cannot compute the package content hash (integrity failure): {error.message}"),)
        return (finding(Code.TP0003, f"{pkg.nupkg}: cannot be read as a package: {error.message}"),)
    except (TrustPolicyError, OSError) as error:
        return (finding(Code.TP0003, f"{pkg.nupkg}: cannot be read: {error}"),)

    for claim in pkg.claims:
        expected = _decode(claim.value)
        if expected is None:
            findings.append(finding(Code.TP0002, f"{_describe(claim)} is not a base64 SHA-512 value: {claim.value!r}"))
            continue
        if claim.record == "sha512file":
            actual = content if not signed else _whole(cache, pkg.nupkg, archive, findings)
            if actual is None:
                continue
            what = "whole-file SHA-512"
        else:
            actual, what = content, "content hash (SHA-512 without the signature)" if signed else "SHA-512"
            if expected != actual and claim.record == "sha512" and signed:
                # An assets file from NuGet 4.6-4.8 recorded the whole-file hash (section 3.5).
                whole = _whole(cache, pkg.nupkg, archive, findings)
                if whole is not None and expected == whole:
                    continue
        if expected != actual:
            findings.append(
                finding(Code.TP0002, f"{pkg.id} {pkg.version}: {_describe(claim)} records {claim.value} but the {what} "
                                  f"of {pkg.nupkg} is {b64(actual)}")
            )
    return tuple(dict.fromkeys(findings))  # one TP0003 even when several records needed the file


def _whole(cache: HashCache, path: Path, archive: PackageArchive | None, findings: list[Issue]) -> bytes | None:
    try:
        return cache.whole(path, archive)
    except (TrustPolicyError, OSError) as error:
        findings.append(finding(Code.TP0003, f"{path}: cannot be read: {error}"))
        return None


def _claims_disagree(pkg: GraphPackage) -> tuple[Issue, ...]:
    """No file to hash: content-hash records must at least agree with each other."""
    content = [c for c in pkg.claims if c.record != "sha512file"]
    values = {(_decode(c.value) or c.value) for c in content}
    if len(values) <= 1:
        return ()
    listed = "; ".join(f"{_describe(c)}: {c.value}" for c in content)
    return (finding(Code.TP0002, f"{pkg.id} {pkg.version}: the graph's records disagree with each other: {listed}"),)
