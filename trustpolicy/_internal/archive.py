"""The ZIP container of a .nupkg at byte level (docs/format.md sections 2 and 4).

Everything goes through the central directory and explicit offsets, not zipfile, because the
package hash (4.2) and signature insertion (2.3) depend on exact header positions. Files are
streamed in chunks: no entry data is held in memory except the (capped) signature.

Limits (hostile input is refused quickly, with a message naming the file):
- MAX_SIGNATURE_SIZE (1 MiB): the .signature.p7s entry; NuGet has none, jsign uses the same cap (NU3005).
- MAX_ENTRIES (1,000,000): central-directory records read (about 3 s and 150 MB at the cap). Before
  any record is read, the end record's claims must fit the file: the central directory between its
  offset and the end record, at least 46 bytes per announced entry, equal per-disk and total counts.
- MAX_NUSPEC_SIZE (4 MiB): the inflated .nuspec, enforced while inflating (decompression bombs).
Integrity (docs/format.md 4.2, plus rules of ours, NU3008): the signature entry must be exactly its local
header and data, no other record may point at it, and no entry's header + data may run into it or
into the central directory. NuGet's hash skips the whole region up to the next local header, so
anything there (an entry a streaming unzip would extract, bytes another entry's data runs into)
would otherwise be unsigned, and NuGet would call the package intact.

ZIP64 (APPNOTE 4.3.14-4.3.15, 4.4.1.4, 4.5.3): a field of the end record holding 0xFFFF / 0xFFFFFFFF
takes its value from the ZIP64 end record when a ZIP64 locator precedes the end record (as .NET's
ZipArchive reads it; without a locator the markers are plain numbers, also as .NET). A field holding
a plain value must equal the ZIP64 record's, else readers would disagree on which to use: refused.
Central-directory sizes and offsets of 0xFFFFFFFF likewise come from the entry's ZIP64 extra field.
Whether a package is ZIP64 (NU3006 when signed) is a separate question: `is_zip64`.

Opening: only a regular file is opened (a FIFO or device named *.nupkg would block or never end). A
file that cannot be opened or read as a zip is SignatureFormatError TP0003 ("cannot be read", the
same code in verify, inspect and check); later read failures are integrity failures (NU3008).
"""

from __future__ import annotations

import hashlib
import os
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

from lxml import etree

from trustpolicy._internal import clock
from trustpolicy._internal.fileutil import open_regular, replace_file
from trustpolicy.codes import Code
from trustpolicy.errors import SignatureFormatError, SigningError, TrustPolicyError

__all__ = [
    "ALGORITHMS",
    "MAX_ENTRIES",
    "MAX_NUSPEC_SIZE",
    "MAX_SIGNATURE_SIZE",
    "PackageArchive",
    "ZipEntry",
    "hash_file",
    "insert_signature",
    "strip_signature",
]

ALGORITHMS = ("sha256", "sha384", "sha512")
SIGNATURE_NAME = b".signature.p7s"
MAX_SIGNATURE_SIZE = 1 << 20  # NuGet has no cap; 1 MiB (as jsign) keeps a hostile entry out of memory
MAX_NUSPEC_SIZE = 4 << 20  # inflated; a real .nuspec is a few KB
MAX_ENTRIES = 1_000_000  # central-directory records; ~150 bytes of memory each
MAX_ENTRIES_TO_SIGN = 0xFFFE - 1  # NU3039: one more entry would need ZIP64 counts

_LFH_SIG, _CD_SIG, _EOCD_SIG, _ZIP64_LOCATOR_SIG = b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"PK\x06\x07"
_ZIP64_END_SIG = b"PK\x06\x06"
_ZIP64_LOCATOR = struct.Struct("<4sIQI")  # signature, disk of the ZIP64 end record, its offset, disks (20 bytes)
_ZIP64_END = struct.Struct("<4sQ4xIIQQQQ")  # signature, size of the rest, disk, CD disk, counts, CD size, CD offset
_LFH = struct.Struct("<4x2xHH4x4xIIHH")  # flags, method, csize, usize, name len, extra len (30 bytes)
_CD = struct.Struct("<4x4xHH4xIIIHHH4xII")  # flags .. lfh offset (46 bytes)
_CD_MIN, _LFH_MIN = 46, 30
_EOCD_SCAN = 22 + 0xFFFF  # EOCD + the longest possible comment
_CHUNK = 1 << 20
_M16, _M32 = 0xFFFF, 0xFFFFFFFF
_CORRUPT = Code.NU3008  # NuGet reports any read failure of its integrity check as NU3008
_UNREADABLE = Code.TP0003  # codes.py: the package file cannot be read (opening it, its end record, its CD)


@dataclass(frozen=True, slots=True)
class ZipEntry:
    """One central-directory record."""

    name: bytes
    flags: int
    method: int
    crc32: int
    compressed_size: int
    uncompressed_size: int
    external_attributes: int
    lfh_offset: int
    cd_offset: int  # position of this header in the file
    cd_size: int  # header length: 46 + name + extra + comment

    @property
    def names_signature(self) -> bool:
        # docs/format.md 2.1: raw bytes, only when the UTF-8 flag (bit 11) is clear
        return self.name == SIGNATURE_NAME and not self.flags & 0x0800


@dataclass(frozen=True, slots=True)
class _EndRecord:
    """The end of central directory fields (APPNOTE 4.3.16), or the ZIP64 end record's (4.3.14)."""

    limit: int  # where the central directory must end: this record's position
    disk: int
    cd_disk: int
    on_disk: int
    total: int
    cd_size: int
    cd_offset: int

    # (field, how messages name it, the ZIP64 marker of the 32-bit record's field)
    FIELDS: ClassVar[tuple[tuple[str, str, int], ...]] = (
        ("disk", "the disk number", _M16), ("cd_disk", "the central directory's disk", _M16),
        ("on_disk", "the entry count on this disk", _M16), ("total", "the entry count", _M16),
        ("cd_size", "the central directory size", _M32), ("cd_offset", "the central directory offset", _M32))

    def marked(self) -> list[str]:
        return [label for name, label, marker in self.FIELDS if getattr(self, name) == marker]


@contextmanager
def _guard(path: Path, code: Code) -> Iterator[None]:
    """Turn low-level read failures on hostile input into one error naming the file."""
    try:
        yield
    except TrustPolicyError:
        raise
    except (OSError, ValueError, EOFError, OverflowError, struct.error, zlib.error) as exc:
        raise SignatureFormatError(code, f"the package archive cannot be read: {exc}", path=str(path)) from exc


def _read(f: BinaryIO, offset: int, n: int, size: int) -> bytes:
    if offset < 0 or n < 0 or offset + n > size:
        raise ValueError(f"{n} bytes at offset {offset} lie outside the file ({size} bytes)")
    f.seek(offset)
    data = f.read(n)
    if len(data) != n:
        raise ValueError("the file shrank while it was read")
    return data


def _feed(f: BinaryIO, start: int, end: int, size: int, sink: Callable[[bytes], object]) -> None:
    """Stream bytes [start, end) into sink in chunks (never the whole file at once)."""
    if not 0 <= start <= end <= size:
        raise ValueError(f"byte range {start}..{end} lies outside the file ({size} bytes)")
    while start < end:
        chunk = _read(f, start, min(_CHUNK, end - start), size)
        sink(chunk)
        start += len(chunk)


def _fan_out(hashers: list[Any]) -> Callable[[bytes], None]:
    def update(data: bytes) -> None:
        for hasher in hashers:
            hasher.update(data)

    return update


def _extra_block(extra: bytes, wanted: int) -> bytes | None:
    """The data of the first extra block with this id, walking (id, length, data) blocks up to the
    first malformed one; a block whose length runs past the field gives what there is."""
    pos = 0
    while pos + 4 <= len(extra):
        header_id, length = struct.unpack_from("<HH", extra, pos)
        if header_id == wanted:
            return extra[pos + 4 : pos + 4 + length]
        pos += 4 + length
    return None


def _has_zip64_extra(extra: bytes) -> bool:
    return _extra_block(extra, 0x0001) is not None


def _zip64_values(extra: bytes, *fields: int) -> list[int]:
    """APPNOTE 4.5.3: the ZIP64 extra block holds, in order, 8 bytes for each of uncompressed size,
    compressed size and local header offset that is 0xFFFFFFFF in the record. A missing or short
    block leaves the marker, which then fails as an offset or size outside the file."""
    block, values, pos = _extra_block(extra, 0x0001) or b"", list(fields), 0
    for k, value in enumerate(values):
        if value == _M32 and pos + 8 <= len(block):
            values[k] = struct.unpack_from("<Q", block, pos)[0]
            pos += 8
    return values


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in ALGORITHMS:
        raise SignatureFormatError(Code.NU3016, f"unsupported hash algorithm {algorithm!r}, use one of {ALGORITHMS}")


class PackageArchive:
    """A .nupkg read by its central directory; holds offsets, never file contents."""

    def __init__(self, path: Path, entries: list[ZipEntry], size: int, eocd_pos: int, eocd: bytes) -> None:
        self.path = path
        self.entries = entries
        self.is_signed = False
        self._size = size
        self._eocd_pos = eocd_pos
        self._eocd = eocd  # the 22 fixed bytes
        self._digests: dict[str, bytes] = {}  # package hashes already computed through this object
        self._file_digests: dict[str, bytes] = {}  # whole-file hashes taken in the same read

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> PackageArchive:
        """Read the end record and the central directory; SignatureFormatError TP0003 naming the file
        when that is not possible (not a regular file, not a zip, claims that do not fit the file)."""
        archive = cls(Path(path), [], 0, 0, b"")
        with archive._reading(opening=True) as f:
            size = archive._size = os.fstat(f.fileno()).st_size
            tail_start = max(0, size - _EOCD_SCAN)
            tail = _read(f, tail_start, size - tail_start, size)
            at = tail.rfind(_EOCD_SIG)  # the LAST occurrence, as NuGet scans backwards
            if at < 0:
                raise archive._error(_UNREADABLE, "not a zip archive: no end of central directory record")
            eocd_pos = tail_start + at
            archive._eocd_pos, archive._eocd = eocd_pos, _read(f, eocd_pos, 22, size)
            end = archive._end_record(f)
            if end.disk or end.cd_disk or end.on_disk != end.total:
                raise archive._error(_UNREADABLE, "multi-disk zip archives are not supported")
            room = end.limit - end.cd_offset  # the central directory lies between its offset and the end records
            if room < 0:
                raise archive._error(_UNREADABLE, f"the central directory offset {end.cd_offset} lies past its end "
                                                  f"record at {end.limit}")
            if end.cd_size > room:
                raise archive._error(_UNREADABLE, f"the end of central directory record announces a {end.cd_size}-"
                                                  f"byte central directory, but only {room} bytes precede it")
            if end.total > MAX_ENTRIES:
                raise archive._error(_UNREADABLE, f"the central directory has {end.total} entries, more than "
                                                  f"{MAX_ENTRIES}, more than this tool reads")
            if end.total * _CD_MIN > room:  # refuse a huge count before reading any record
                raise archive._error(_UNREADABLE, f"the end of central directory record announces {end.total} "
                                                  f"entries, which cannot fit in the {room} bytes before it")
            archive.entries = _walk_central_directory(f, end.cd_offset, size, archive.path)
            if end.total != len(archive.entries):
                raise archive._error(_UNREADABLE, f"the end of central directory record announces {end.total} "
                                                  f"entries, the central directory has {len(archive.entries)}")
            archive.is_signed = archive._lfh_confirms_signature(f)
        return archive

    def _end_record(self, f: BinaryIO) -> _EndRecord:
        """The end record's fields, each 0xFFFF / 0xFFFFFFFF marker replaced from the ZIP64 end record."""
        plain = _EndRecord(self._eocd_pos, *struct.unpack_from("<HHHHII", self._eocd, 4))
        locator_at = self._eocd_pos - _ZIP64_LOCATOR.size
        if locator_at < 0 or _read(f, locator_at, 4, self._size) != _ZIP64_LOCATOR_SIG:
            return plain  # markers without a locator are plain numbers (.NET reads them so)
        marked = plain.marked()
        _, record_disk, record_at, disks = _ZIP64_LOCATOR.unpack(_read(f, locator_at, _ZIP64_LOCATOR.size, self._size))
        record = None
        if record_disk == 0 and disks <= 1 and record_at + _ZIP64_END.size <= locator_at:
            header = _read(f, record_at, _ZIP64_END.size, self._size)
            signature, rest, *values = _ZIP64_END.unpack(header)
            if signature == _ZIP64_END_SIG and record_at + 12 + rest == locator_at:  # right before its locator
                record = _EndRecord(record_at, *values)
        if record is None:
            if marked:
                raise self._error(_UNREADABLE, f"the end of central directory record marks {', '.join(marked)} as "
                                               "ZIP64, but its ZIP64 locator points at no ZIP64 end record")
            return plain  # a stray locator; the end record says everything (.NET ignores it then)
        for name, label, _ in _EndRecord.FIELDS:
            if label not in marked and getattr(plain, name) != getattr(record, name):
                raise self._error(_UNREADABLE, f"the end of central directory record gives {label} as "
                                               f"{getattr(plain, name)}, its ZIP64 end record as {getattr(record, name)}"
                                               ": readers would disagree on which to use")
        return record

    def _error(self, code: Code, message: str) -> SignatureFormatError:
        return SignatureFormatError(code, message, path=str(self.path))

    @contextmanager
    def _reading(self, *, opening: bool = False) -> Iterator[BinaryIO]:
        """The file, open. Read failures inside are SignatureFormatError naming the file: TP0003 while
        opening (the package cannot be read), NU3008 later (the integrity check cannot complete)."""
        try:
            f = open_regular(self.path)  # never a FIFO or device: it would block, or never end
        except OSError as exc:
            raise self._error(_UNREADABLE, f"cannot open the package: {exc.strerror or exc}") from None
        with f, _guard(self.path, _UNREADABLE if opening else _CORRUPT):
            if not opening and os.fstat(f.fileno()).st_size != self._size:
                raise self._error(_CORRUPT, "the file changed since it was opened")
            yield f

    def _lfh_confirms_signature(self, f: BinaryIO) -> bool:
        """docs/format.md 2.1: the first CD record naming the signature must be named so by its LFH too."""
        entry = next((e for e in self.entries if e.names_signature), None)
        if entry is None:
            return False
        header = _read(f, entry.lfh_offset, 30, self._size)
        if header[:4] != _LFH_SIG:
            raise self._error(_CORRUPT, f"no local file header at offset {entry.lfh_offset} for .signature.p7s")
        flags, _, _, _, name_len, _ = _LFH.unpack(header)
        name = _read(f, entry.lfh_offset + 30, name_len, self._size)
        return name == SIGNATURE_NAME and not flags & 0x0800

    def _signature_entry(self, f: BinaryIO) -> tuple[ZipEntry, int, int]:
        """The validated signature entry (docs/format.md 2.2), its data offset and length."""
        if not self.is_signed:
            raise self._error(Code.NU3003, "the package is not signed: it has no .signature.p7s entry")
        found = [e for e in self.entries if e.names_signature]
        if len(found) > 1:
            raise self._error(Code.NU3005, "the package contains multiple package signature files")
        entry = found[0]
        self._check_headers("central directory header", entry.flags, entry.method,
                            entry.compressed_size, entry.uncompressed_size)
        if entry.external_attributes:
            raise self._error(Code.NU3005, "the package signature file entry is invalid: central directory header has "
                                        f"external file attributes {entry.external_attributes:#x}, expected 0")
        flags, method, csize, usize, name_len, extra_len = _LFH.unpack(_read(f, entry.lfh_offset, 30, self._size))
        self._check_headers("local file header", flags, method, csize, usize)
        if usize > MAX_SIGNATURE_SIZE:
            raise self._error(Code.NU3005, f"the package signature file is {usize} bytes, over the {MAX_SIGNATURE_SIZE} "
                                        "bytes limit")
        start = entry.lfh_offset + 30 + name_len + extra_len
        if start + usize > self._size:
            raise self._error(Code.NU3005, "the package signature file data lies outside the archive")
        return entry, start, usize

    def _check_headers(self, where: str, flags: int, method: int, csize: int, usize: int) -> None:
        problem = (f"general purpose bit flag is {flags:#x}, expected 0" if flags else
                   f"compression method is {method}, expected 0 (stored)" if method else
                   f"compressed size {csize} differs from uncompressed size {usize}" if csize != usize else "")
        if problem:
            raise self._error(Code.NU3005, f"the package signature file entry is invalid: {where} {problem}")

    def read_signature(self) -> bytes:
        """The .signature.p7s bytes; SignatureFormatError NU3003/NU3005 when absent or invalid."""
        with self._reading() as f:
            _, start, length = self._signature_entry(f)
            return _read(f, start, length, self._size)

    def is_zip64(self) -> bool:
        """Exactly NuGet's three checks (docs/format.md 2.4): locator, CD extra 0x0001, LFH extra 0x0001."""
        with self._reading() as f:
            pos = self._eocd_pos - 20
            if pos >= 0 and _read(f, pos, 4, self._size) == _ZIP64_LOCATOR_SIG:
                return True
            for e in self.entries:
                header = _read(f, e.cd_offset, e.cd_size, self._size)
                name_len, extra_len, _, disk_start = struct.unpack_from("<HHHH", header, 28)
                if _has_zip64_extra(header[46 + name_len : 46 + name_len + extra_len]):
                    return True
                if disk_start != 0 or e.lfh_offset + 30 > self._size:
                    continue  # NuGet skips local headers it cannot read
                local = _read(f, e.lfh_offset, 30, self._size)
                name_len, extra_len = struct.unpack_from("<HH", local, 26)
                extra_at = e.lfh_offset + 30 + name_len
                if local[:4] == _LFH_SIG and extra_at + extra_len <= self._size:
                    if _has_zip64_extra(_read(f, extra_at, extra_len, self._size)):
                        return True
        return False

    def _entry_sizes(self) -> tuple[int, list[int]]:
        """CD start and, per entry, the distance from its LFH to the next LFH (or to the CD)."""
        cd_start = min(e.cd_offset for e in self.entries)
        order = sorted(range(len(self.entries)), key=lambda i: self.entries[i].lfh_offset)
        sizes = [0] * len(self.entries)
        for rank, i in enumerate(order):
            end = self.entries[order[rank + 1]].lfh_offset if rank + 1 < len(order) else cd_start
            sizes[i] = end - self.entries[i].lfh_offset
        return cd_start, sizes

    def package_hash(self, algorithm: str) -> bytes:
        """H of the unsigned package rebuilt virtually from this signed one (docs/format.md 4.2), streamed."""
        return self.package_hashes((algorithm,))[algorithm]

    def package_hashes(self, algorithms: tuple[str, ...], *, file_algorithms: tuple[str, ...] = ()) -> dict[str, bytes]:
        """Several package hashes from one read of the file (the signature's SHA-256 and restore's
        SHA-512 records cover the same bytes); remembered by this object for later calls.

        `file_algorithms`: whole-file hashes (what `.nupkg.sha512` records) to take in the same read,
        for `file_hash`. The unsigned content starts with every byte before the signature entry, so
        the two streams share that prefix: one pass over the bulk of the file serves both.
        """
        for algorithm in (*algorithms, *file_algorithms):
            _check_algorithm(algorithm)
        missing = [a for a in dict.fromkeys(algorithms) if a not in self._digests]
        missing_file = [a for a in dict.fromkeys(file_algorithms) if a not in self._file_digests]
        if missing or missing_file:
            content, whole = self._hash_unsigned(missing, missing_file)
            self._digests.update(content)
            self._file_digests.update(whole)
        return {a: self._digests[a] for a in algorithms}

    def file_hash(self, algorithm: str) -> bytes:
        """H of the whole file as it is on disk; reuses a digest taken with `package_hashes`."""
        if algorithm not in self._file_digests:
            self._file_digests[algorithm] = hash_file(self.path, algorithm)
        return self._file_digests[algorithm]

    def _hash_unsigned(self, algorithms: list[str], file_algorithms: list[str]) -> tuple[dict[str, bytes], dict[str, bytes]]:
        shared = {a: hashlib.new(a) for a in dict.fromkeys([*algorithms, *file_algorithms])}
        hashers = [shared[a] for a in algorithms]
        update = _fan_out(hashers)
        with self._reading() as f:
            sig, data_start, length = self._signature_entry(f)
            entries = self.entries
            cd_start, sizes = self._entry_sizes()
            s = entries.index(sig)
            self._check_signature_region(f, s, sizes, data_start + length, cd_start)
            others = sorted((i for i in range(len(entries)) if i != s), key=lambda i: entries[i].lfh_offset)

            def feed(start: int, end: int) -> None:
                _feed(f, start, end, self._size, update)

            # Bytes before the signature entry: the entries before it tile them, so one read of the
            # prefix is the same stream the per-entry walk below gives, and the whole-file hashes share it.
            _feed(f, 0, sig.lfh_offset, self._size, _fan_out(list(shared.values())))
            files = {a: shared[a].copy() if a in algorithms else shared[a] for a in file_algorithms}
            change, new_offset = {}, 0
            for i in others:  # local entries by offset, closing the gap the signature leaves
                change[i] = new_offset - entries[i].lfh_offset
                new_offset += sizes[i]
                if entries[i].lfh_offset > sig.lfh_offset:
                    feed(entries[i].lfh_offset, entries[i].lfh_offset + sizes[i])
            for i in sorted(others):  # CD headers in CD order, relative offset rewritten
                e = entries[i]
                feed(e.cd_offset, e.cd_offset + 42)
                update(struct.pack("<I", (e.lfh_offset + change[i]) & _M32))
                feed(e.cd_offset + 46, e.cd_offset + e.cd_size)
            last = entries[-1]
            feed(last.cd_offset + last.cd_size, self._eocd_pos + 8)  # NuGet assumes the EOCD follows the CD
            on_disk, total, cd_size, cd_offset = struct.unpack_from("<HHII", self._eocd, 8)
            update(struct.pack("<HHII", (on_disk - 1) & _M16, (total - 1) & _M16,
                                 (cd_size - sig.cd_size) & _M32, (cd_offset - sizes[s]) & _M32))
            feed(self._eocd_pos + 20, self._size)  # comment and any trailing bytes
            _feed(f, sig.lfh_offset, self._size, self._size, _fan_out(list(files.values())))
        return ({a: hasher.digest() for a, hasher in zip(algorithms, hashers)},
                {a: hasher.digest() for a, hasher in files.items()})

    def _check_signature_region(self, f: BinaryIO, s: int, sizes: list[int], sig_end: int, cd_start: int) -> None:
        """Our rule on top of docs/format.md 4.2: nothing unsigned can hide in, or leak into, what a reader extracts.

        NuGet's hash skips the signature's whole region (its LFH up to the next LFH or the central
        directory). So the region must be exactly the signature's header and data, no other record may
        point at it, and no entry's header + data may run into it or into the central directory (whose
        offsets the hash rewrites). Otherwise an entry could extract differently from what was signed.
        """
        sig = self.entries[s]
        region_end = sig.lfh_offset + sizes[s]
        if sig_end != region_end:
            what = (f"{region_end - sig_end} bytes that belong to no entry follow it" if sig_end < region_end
                    else "its data runs into the next entry")
            raise self._error(_CORRUPT, f"the signature entry's region is not just its header and data: {what}; "
                                        "the signature would not cover them")
        for i, e in enumerate(self.entries):
            if i == s:
                continue
            label = e.name.decode("utf-8", "replace")[:80]
            if e.lfh_offset == sig.lfh_offset:
                raise self._error(_CORRUPT, f"entry {label!r} points at the signature entry's local header")
            limit = sig.lfh_offset if e.lfh_offset < sig.lfh_offset else cd_start
            end = self._local_end(f, e)
            if end > limit:
                into = "the signature entry" if limit == sig.lfh_offset else "the central directory"
                raise self._error(_CORRUPT, f"entry {label!r} (local header at {e.lfh_offset}) runs {end - limit} "
                                            f"bytes into {into}, which the signature does not cover as such")

    def _local_end(self, f: BinaryIO, e: ZipEntry) -> int:
        """Where an extractor stops reading entry e: LFH, name, extra, data (larger size claim), descriptor."""
        flags, _, csize, _, name_len, extra_len = _LFH.unpack(_read(f, e.lfh_offset, _LFH_MIN, self._size))
        end = e.lfh_offset + _LFH_MIN + name_len + extra_len + max(csize, e.compressed_size)
        if flags & 0x0008 or e.flags & 0x0008:  # data descriptor, with or without its signature
            end += 16 if end + 4 <= self._size and _read(f, end, 4, self._size) == b"PK\x07\x08" else 12
        return end

    def read_nuspec(self) -> tuple[str, str]:
        """(id, version) from the single root *.nuspec; TrustPolicyError naming the file otherwise."""
        where = str(self.path)
        found = [e for e in self.entries if b"/" not in e.name and b"\\" not in e.name
                 and e.name.lower().endswith(b".nuspec")]
        if len(found) != 1:
            raise TrustPolicyError(f"expected one .nuspec at the package root, found {len(found)}", path=where)
        try:
            data = self._read_entry(found[0], MAX_NUSPEC_SIZE)
        except SignatureFormatError as exc:
            raise TrustPolicyError(f"cannot read the .nuspec: {exc.message}", path=where) from None
        return _parse_nuspec(data, where)

    def _read_entry(self, e: ZipEntry, limit: int) -> bytes:
        """An entry's data, stored or deflated, refused once it passes `limit` bytes (decompression bombs).

        Our own central directory, not zipfile's (a second full parse of a huge one); inflated in
        chunks with zlib's max_length, so a bomb costs at most `limit` bytes and a few chunks of input.
        """
        too_big = f"the entry is larger than {limit} bytes"
        with self._reading() as f:
            header = _read(f, e.lfh_offset, _LFH_MIN, self._size)
            flags, method, _, _, name_len, extra_len = _LFH.unpack(header)
            if header[:4] != _LFH_SIG:
                raise self._error(_CORRUPT, f"no local file header at offset {e.lfh_offset}")
            if flags & 0x0001 or e.flags & 0x0001:
                raise self._error(_CORRUPT, "the entry is encrypted")
            if e.uncompressed_size > limit:
                raise self._error(_CORRUPT, too_big)
            start = e.lfh_offset + _LFH_MIN + name_len + extra_len
            end = start + e.compressed_size
            if method == 0:
                if e.compressed_size != e.uncompressed_size:
                    raise self._error(_CORRUPT, "a stored entry whose compressed and uncompressed sizes differ")
                data = _read(f, start, e.compressed_size, self._size)
            elif method == 8:
                inflater, out, budget = zlib.decompressobj(-15), bytearray(), limit + 1
                while start < end and len(out) < budget and not inflater.eof:
                    pending = _read(f, start, min(_CHUNK, end - start), self._size)
                    start += len(pending)
                    while pending and len(out) < budget:  # max_length 0 would mean "no limit": never pass it
                        out += inflater.decompress(pending, budget - len(out))
                        pending = inflater.unconsumed_tail
                if len(out) > limit:
                    raise self._error(_CORRUPT, too_big)
                if not inflater.eof:
                    raise self._error(_CORRUPT, "the compressed data ends early")
                data = bytes(out)
            else:
                raise self._error(_CORRUPT, f"unsupported compression method {method}")
        if len(data) != e.uncompressed_size or zlib.crc32(data) != e.crc32:
            raise self._error(_CORRUPT, "the data does not match the size and CRC-32 of its central directory record")
        return data


def _walk_central_directory(f: BinaryIO, pos: int, size: int, path: Path) -> list[ZipEntry]:
    """CD records from pos while the signature matches (as NuGet reads them), at most MAX_ENTRIES.

    Reads forward through a window of at least 1 MiB: one system call per window, not per record.
    """
    entries: list[ZipEntry] = []
    window, at = b"", pos  # window holds the file from offset `at`
    while pos + 4 <= size:
        i = pos - at
        if i + _CD_MIN > len(window) and len(window) < size - at:  # refill: the next fixed header is not inside
            window, at, i = _read(f, pos, min(_CHUNK, size - pos), size), pos, 0
        if window[i : i + 4] != _CD_SIG:
            break
        if len(entries) == MAX_ENTRIES:
            raise SignatureFormatError(_CORRUPT, f"the central directory has more than {MAX_ENTRIES} entries, "
                                                 "more than this tool reads", path=str(path))
        if i + _CD_MIN > len(window):
            raise ValueError(f"the central directory header at offset {pos} is truncated")
        flags, method, crc, csize, usize, n, m, k, ext, lfh = _CD.unpack_from(window, i)
        header_size = _CD_MIN + n + m + k
        if pos + header_size > size:
            raise ValueError(f"the central directory header at offset {pos} is truncated")
        zip64 = _M32 in (usize, csize, lfh)
        needed = _CD_MIN + n + (m if zip64 else 0)  # the name, and the extra field when it holds values
        if i + needed > len(window):  # a long name (or extra field) across the window's end
            window, at, i = _read(f, pos, min(max(_CHUNK, needed), size - pos), size), pos, 0
        if zip64:
            usize, csize, lfh = _zip64_values(window[i + _CD_MIN + n : i + needed], usize, csize, lfh)
        entries.append(ZipEntry(window[i + _CD_MIN : i + _CD_MIN + n], flags, method, crc, csize, usize, ext, lfh,
                                pos, header_size))
        pos += header_size
    return entries


def _parse_nuspec(data: bytes, path: str) -> tuple[str, str]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    try:
        root = etree.fromstring(data, parser)
    except etree.LxmlError as exc:
        raise TrustPolicyError(f"the .nuspec is not well-formed XML: {exc}", path=path) from exc
    if root.getroottree().docinfo.doctype:  # no DTDs in a nuspec: refuse rather than risk entity tricks
        raise TrustPolicyError("the .nuspec has a DOCTYPE, which is not allowed", path=path)

    def local(el: etree._Element) -> str:
        return etree.QName(el).localname if isinstance(el.tag, str) else ""

    metadata = next((c for c in root if local(c) == "metadata"), None) if local(root) == "package" else None
    values = {}
    for child in metadata if metadata is not None else ():
        if local(child) in ("id", "version") and local(child) not in values:
            values[local(child)] = (child.text or "").strip()
    if not values.get("id") or not values.get("version"):
        raise TrustPolicyError("the .nuspec has no package/metadata/id and version", path=path)
    return values["id"], values["version"]


def hash_file(path: str | os.PathLike[str], algorithm: str) -> bytes:
    """Plain streamed digest of a whole file."""
    _check_algorithm(algorithm)
    h = hashlib.new(algorithm)
    try:
        with open_regular(path) as f:
            while chunk := f.read(_CHUNK):
                h.update(chunk)
    except OSError as exc:
        raise TrustPolicyError(f"cannot read the file: {exc.strerror or exc}", path=str(path)) from exc
    return h.digest()


def _dos_datetime(moment: datetime) -> int:
    """MS-DOS date (high 16 bits) and time (low 16 bits), clamped to the representable years."""
    if moment.year < 1980:
        moment = datetime(1980, 1, 1)
    elif moment.year > 2107:
        moment = datetime(2107, 12, 31, 23, 59, 58)
    date = (moment.year - 1980) << 9 | moment.month << 5 | moment.day
    time = moment.hour << 11 | moment.minute << 5 | moment.second // 2
    return date << 16 | time


def _atomic_write(dest: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write to a temp file beside dest, then os.replace: readers never see half a package."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    except OSError as exc:
        raise TrustPolicyError(f"cannot write the package: {exc.strerror or exc}", path=str(dest)) from exc
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, os.stat(dest).st_mode & 0o777 if dest.exists() else 0o644)
        replace_file(tmp, dest)  # retried while another process holds dest open (Windows)
    except OSError as exc:
        with suppress(OSError):
            os.unlink(tmp)
        raise TrustPolicyError(f"cannot write the package: {exc.strerror or exc}", path=str(dest)) from exc
    except BaseException:
        with suppress(OSError):
            os.unlink(tmp)
        raise


def insert_signature(unsigned_path: str | os.PathLike[str], signature: bytes, dest_path: str | os.PathLike[str],
                     *, modified: datetime | None = None) -> None:
    """Add .signature.p7s exactly as NuGet does (docs/format.md 2.3); atomic write of dest_path.

    `modified` gives the entry's DOS time (its wall-clock fields as given); default local now, like NuGet.
    """
    src = PackageArchive.open(unsigned_path)
    where = str(src.path)
    if src.is_zip64():
        raise SigningError(Code.NU3006, "Signed Zip64 packages are not supported", path=where)
    if any(e.names_signature for e in src.entries):
        raise SigningError(Code.NU3001, "the package already contains a signature", path=where)
    on_disk, total, cd_size, cd_offset = struct.unpack_from("<HHII", src._eocd, 8)
    if total == _M16:  # the ZIP64 "see the ZIP64 record" marker, without a locator
        raise SigningError(Code.NU3006, "Signed Zip64 packages are not supported", path=where)
    if len(src.entries) >= MAX_ENTRIES_TO_SIGN:
        raise SigningError(Code.NU3039, f"the package has {len(src.entries)} entries; signing it would require ZIP64",
                           path=where)
    if not src.entries:
        raise SigningError(Code.NU3001, "the package has no entries", path=where)
    if len(signature) > MAX_SIGNATURE_SIZE:
        raise SigningError(Code.NU3001, f"the signature is {len(signature)} bytes, over the {MAX_SIGNATURE_SIZE} "
                                     "bytes limit", path=where)
    # NuGet's offset arithmetic needs the first LFH at 0 and the EOCD right after the CD (docs/format.md 2.4).
    cd_start, _ = src._entry_sizes()
    end_of_cd = src.entries[-1].cd_offset + src.entries[-1].cd_size
    if min(e.lfh_offset for e in src.entries) != 0 or end_of_cd != src._eocd_pos:
        raise SigningError(Code.NU3001, "unsupported zip layout: data before the first entry or between the "
                                     "central directory and its end record", path=where)

    dos = _dos_datetime(modified or clock.now().astimezone())
    crc, n = zlib.crc32(signature), len(signature)
    local = struct.pack("<4sHHHIIIIHH", _LFH_SIG, 20, 0, 0, dos, crc, n, n, 14, 0) + SIGNATURE_NAME
    central = struct.pack("<4sHHHHIIIIHHHHHII", _CD_SIG, 20, 20, 0, 0, dos, crc, n, n, 14, 0, 0, 0, 0, 0,
                          cd_start) + SIGNATURE_NAME
    if cd_offset + len(local) + n > _M32 or cd_size + len(central) > _M32:
        raise SigningError(Code.NU3006, "the signed package would require ZIP64", path=where)
    eocd = src._eocd[:8] + struct.pack("<HHII", (on_disk + 1) & _M16, total + 1, cd_size + len(central),
                                       cd_offset + len(local) + n)

    with src._reading() as f:
        def write(out: BinaryIO) -> None:
            _feed(f, 0, cd_start, src._size, out.write)  # every local entry
            out.write(local + signature)
            _feed(f, cd_start, end_of_cd, src._size, out.write)  # every CD header
            out.write(central + eocd)
            _feed(f, src._eocd_pos + 20, src._size, src._size, out.write)  # comment and trailing bytes

        _atomic_write(Path(dest_path), write)


def strip_signature(signed_path: str | os.PathLike[str], dest_path: str | os.PathLike[str]) -> None:
    """Exact inverse of insert_signature; refuses a signature entry that is not last (offsets would move)."""
    src = PackageArchive.open(signed_path)
    with src._reading() as f:
        sig, _, _ = src._signature_entry(f)
        cd_start, _ = src._entry_sizes()
        end_of_cd = src.entries[-1].cd_offset + src.entries[-1].cd_size
        later = any(e.lfh_offset >= sig.lfh_offset for e in src.entries if e is not sig)
        if src.entries[-1] is not sig or later or end_of_cd != src._eocd_pos:
            raise TrustPolicyError("the signature entry is not the last entry; removing it would move other "
                                   "entries, so it is refused", path=str(src.path))
        on_disk, total, cd_size, cd_offset = struct.unpack_from("<HHII", src._eocd, 8)
        removed = cd_start - sig.lfh_offset  # its LFH and data
        eocd = src._eocd[:8] + struct.pack("<HHII", (on_disk - 1) & _M16, (total - 1) & _M16,
                                           (cd_size - sig.cd_size) & _M32, (cd_offset - removed) & _M32)

        def write(out: BinaryIO) -> None:
            _feed(f, 0, sig.lfh_offset, src._size, out.write)
            _feed(f, cd_start, sig.cd_offset, src._size, out.write)
            out.write(eocd)
            _feed(f, src._eocd_pos + 20, src._size, src._size, out.write)

        _atomic_write(Path(dest_path), write)
