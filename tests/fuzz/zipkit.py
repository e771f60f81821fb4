"""Zip and DER tools for the hardening tests and the atheris harnesses (no trustpolicy imports).

- `Entry` + `build_zip`: a zip byte by byte, every header field under the caller's control (names
  and sizes that differ between local and central headers, data descriptors, extra fields, prefix
  and trailing bytes, a signature entry anywhere).
- `layout`: label every byte of a well-formed zip with the field it belongs to.
- `der_nodes`: the DER node (path of tags) every byte of a signature belongs to.
- `cd_extract` / `stream_extract`: what two kinds of unzip would extract (by the central
  directory, like .NET's ZipArchive and zipfile; by walking local headers, like a streaming unzip).
- `mutate_zip`: structure-aware single mutations (truncations, wrong lengths, tags, offsets, counts).
"""

from __future__ import annotations

import random
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field, replace

SIG_NAME = b".signature.p7s"
LFH, CD, EOCD, DD, ZIP64_LOCATOR = b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06", b"PK\x07\x08", b"PK\x06\x07"
DOS_TIME = 0x58B16D00  # 2024-05-17 13:40:00, any fixed value


# --- building --------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One zip entry. `cd_*` / `lfh_*` fields override what each header says (None: the truth)."""

    name: bytes
    data: bytes  # uncompressed
    method: int = 0  # 0 stored, 8 deflated
    flags: int = 0
    extra: bytes = b""
    comment: bytes = b""  # central directory file comment
    external: int = 0
    descriptor: bool = False  # flag bit 3 + a data descriptor after the data (sizes/CRC 0 in the LFH)
    lfh_name: bytes | None = None
    lfh_method: int | None = None
    lfh_sizes: tuple[int, int] | None = None  # (compressed, uncompressed) in the LFH
    cd_sizes: tuple[int, int] | None = None
    cd_method: int | None = None
    cd_flags: int | None = None
    cd_offset: int | None = None  # absolute LFH offset the CD record claims (default: the real one)
    cd_offset_of: str | None = None  # ... or: the LFH offset of the entry with this name
    cd_name: bytes | None = None
    lfh_extra: bytes | None = None
    # filled by build_zip
    offset: int = field(default=0, compare=False)

    @property
    def payload(self) -> bytes:
        if self.method == 8:
            c = zlib.compressobj(6, zlib.DEFLATED, -15)
            return c.compress(self.data) + c.flush()
        return self.data


def signature_entry(der: bytes) -> Entry:
    """The .signature.p7s entry exactly as NuGet writes it (docs/format.md 2.3)."""
    return Entry(SIG_NAME, der)


def build_zip(
    entries: list[Entry],
    *,
    local_order: Iterable[int] | None = None,
    cd_order: Iterable[int] | None = None,
    prefix: bytes = b"",
    gaps: dict[int, bytes] | None = None,
    comment: bytes = b"",
    trailing: bytes = b"",
    between_cd_and_eocd: bytes = b"",
    eocd_counts: tuple[int, int] | None = None,
    eocd_cd_size: int | None = None,
    eocd_cd_offset: int | None = None,
    zip64_locator: bool = False,
) -> bytes:
    """Assemble a zip. `local_order`/`cd_order` are index orders; `gaps[i]` = bytes after entry i's local data."""
    local_order = list(range(len(entries))) if local_order is None else list(local_order)
    cd_order = list(range(len(entries))) if cd_order is None else list(cd_order)
    gaps = gaps or {}
    out = bytearray(prefix)
    for i in local_order:
        e = entries[i]
        e.offset = len(out)
        payload, crc = e.payload, zlib.crc32(e.data)
        flags = e.flags | (0x0008 if e.descriptor else 0)
        csize, usize = e.lfh_sizes or (len(payload), len(e.data))
        name = e.name if e.lfh_name is None else e.lfh_name
        extra = e.extra if e.lfh_extra is None else e.lfh_extra
        out += struct.pack("<4sHHHIIIIHH", LFH, 20, flags, e.method if e.lfh_method is None else e.lfh_method,
                           DOS_TIME, 0 if e.descriptor else crc, 0 if e.descriptor else csize,
                           0 if e.descriptor else usize, len(name), len(extra))
        out += name + extra + payload
        if e.descriptor:
            out += struct.pack("<4sIII", DD, crc, len(payload), len(e.data))
        out += gaps.get(i, b"")
    by_name = {e.name.decode("latin-1"): e for e in entries}
    cd_start = len(out)
    for i in cd_order:
        e = entries[i]
        payload = e.payload
        csize, usize = e.cd_sizes or (len(payload), len(e.data))
        offset = e.offset if e.cd_offset is None else e.cd_offset
        if e.cd_offset_of is not None:
            offset = by_name[e.cd_offset_of].offset
        flags = e.flags | (0x0008 if e.descriptor else 0) if e.cd_flags is None else e.cd_flags
        name = e.name if e.cd_name is None else e.cd_name
        out += struct.pack("<4sHHHHIIIIHHHHHII", CD, 20, 20, flags, e.method if e.cd_method is None else e.cd_method,
                           DOS_TIME, zlib.crc32(e.data), csize, usize, len(name), len(e.extra), len(e.comment),
                           0, 0, e.external, offset)
        out += name + e.extra + e.comment
    cd_size = len(out) - cd_start
    out += between_cd_and_eocd
    if zip64_locator:
        out += struct.pack("<4sIQI", ZIP64_LOCATOR, 0, 0, 1)
    on_disk, total = eocd_counts or (len(cd_order), len(cd_order))
    out += struct.pack("<4sHHHHIIH", EOCD, 0, 0, on_disk, total,
                       cd_size if eocd_cd_size is None else eocd_cd_size,
                       cd_start if eocd_cd_offset is None else eocd_cd_offset, len(comment))
    return bytes(out + comment + trailing)


def nuspec(package_id: str = "Hardening.Test", version: str = "1.0.0") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd"><metadata>'
        f"<id>{package_id}</id><version>{version}</version><authors>trustpolicy</authors>"
        "<description>hardening</description></metadata></package>"
    ).encode()


def small_package_entries() -> list[Entry]:
    """About 1 KB of zip with every layout feature the hash must cover: deflate and store, an extra
    field, a CD file comment, a data descriptor, a directory entry."""
    return [
        Entry(b"Hardening.Test.nuspec", nuspec(), method=8),
        Entry(b"lib/", b"", external=0x10),
        Entry(b"lib/net8.0/Hardening.dll", b"MZ" + bytes(range(256)) + b"payload", method=0,
              extra=struct.pack("<HH", 0xCAFE, 4) + b"xtra"),
        Entry(b"content/readme.txt", b"read me " * 24, method=8, descriptor=True, comment=b"a file comment"),
    ]


def small_package() -> bytes:
    return build_zip(small_package_entries(), comment=b"archive comment")


def large_package(size: int = 256 * 1024, seed: int = 7) -> bytes:
    """A bigger package: several files of random (incompressible) and repetitive data."""
    rng = random.Random(seed)
    entries = [Entry(b"Hardening.Large.nuspec", nuspec("Hardening.Large"), method=8)]
    for n in range(8):
        blob = rng.randbytes(size // 16) + bytes(rng.randrange(4) for _ in range(size // 16))
        entries.append(Entry(f"lib/net8.0/part{n}.bin".encode(), blob, method=8 if n % 2 else 0))
    return build_zip(entries)


# --- reading what is there ---------------------------------------------------------------------------

_LFH_FIELDS = [(0, 4, "signature"), (4, 2, "version"), (6, 2, "flags"), (8, 2, "method"), (10, 2, "time"),
               (12, 2, "date"), (14, 4, "crc"), (18, 4, "csize"), (22, 4, "usize"), (26, 2, "name_len"),
               (28, 2, "extra_len")]
_CD_FIELDS = [(0, 4, "signature"), (4, 2, "made_by"), (6, 2, "version"), (8, 2, "flags"), (10, 2, "method"),
              (12, 2, "time"), (14, 2, "date"), (16, 4, "crc"), (20, 4, "csize"), (24, 4, "usize"),
              (28, 2, "name_len"), (30, 2, "extra_len"), (32, 2, "comment_len"), (34, 2, "disk"),
              (36, 2, "internal"), (38, 4, "external"), (42, 4, "lfh_offset")]
_EOCD_FIELDS = [(0, 4, "signature"), (4, 2, "disk"), (6, 2, "cd_disk"), (8, 2, "on_disk"), (10, 2, "total"),
                (12, 4, "cd_size"), (16, 4, "cd_offset"), (20, 2, "comment_len")]


def layout(data: bytes) -> list[str]:
    """A label per byte of a well-formed zip: "<who>.<lfh|cd>.<field>", "<who>.data", "eocd.<field>",
    "gap"; <who> is "sig" for the .signature.p7s entry, "entry" otherwise."""
    labels = ["gap"] * len(data)
    eocd = data.rindex(EOCD)
    cd_offset = struct.unpack_from("<I", data, eocd + 16)[0]
    pos, records = cd_offset, []
    while data[pos : pos + 4] == CD:
        n, m, k = struct.unpack_from("<HHH", data, pos + 28)
        name = data[pos + 46 : pos + 46 + n]
        who = "sig" if name == SIG_NAME else "entry"
        for off, size, what in _CD_FIELDS:
            labels[pos + off : pos + off + size] = [f"{who}.cd.{what}"] * size
        for i in range(46, 46 + n + m + k):
            labels[pos + i] = f"{who}.cd." + ("name" if i < 46 + n else "extra" if i < 46 + n + m else "comment")
        records.append((struct.unpack_from("<I", data, pos + 42)[0], who, struct.unpack_from("<I", data, pos + 20)[0]))
        pos += 46 + n + m + k
    for lfh, who, csize in records:
        n, m = struct.unpack_from("<HH", data, lfh + 26)
        for off, size, what in _LFH_FIELDS:
            labels[lfh + off : lfh + off + size] = [f"{who}.lfh.{what}"] * size
        for i in range(30, 30 + n + m):
            labels[lfh + i] = f"{who}.lfh." + ("name" if i < 30 + n else "extra")
        start = lfh + 30 + n + m
        labels[start : start + csize] = [f"{who}.data"] * csize
        if struct.unpack_from("<H", data, lfh + 6)[0] & 8 and data[start + csize : start + csize + 4] == DD:
            labels[start + csize : start + csize + 16] = [f"{who}.descriptor"] * 16
    for off, size, what in _EOCD_FIELDS:
        labels[eocd + off : eocd + off + size] = [f"eocd.{what}"] * size
    labels[eocd + 22 :] = ["eocd.comment"] * (len(data) - eocd - 22)
    return labels


def der_nodes(data: bytes) -> list[tuple[tuple[int, ...], bool]]:
    """For each byte: (path of child indexes from the root, is-header). Well-formed DER only."""
    out: list[tuple[tuple[int, ...], bool]] = [((), True)] * len(data)

    def walk(start: int, end: int, path: tuple[int, ...]) -> None:
        pos, index = start, 0
        while pos < end:
            tag, p = data[pos], pos + 1
            if tag & 0x1F == 0x1F:
                while data[p] & 0x80:
                    p += 1
                p += 1
            length = data[p]
            p += 1
            if length & 0x80:
                n = length & 0x7F
                length, p = int.from_bytes(data[p : p + n], "big"), p + n
            if p + length > end:
                raise ValueError(f"element at {pos} overruns its parent")
            node = path + (index,)
            out[pos:p] = [(node, True)] * (p - pos)
            if tag & 0x20:
                walk(p, p + length, node)
            else:
                out[p : p + length] = [(node, False)] * length
            pos, index = p + length, index + 1

    walk(0, len(data), ())
    return out


def der_spans(data: bytes, path: tuple[int, ...]) -> tuple[int, int]:
    """(start, end) of the DER node at `path` (header included)."""
    nodes = der_nodes(data)
    hits = [i for i, (node, _) in enumerate(nodes) if node[: len(path)] == path]
    return (hits[0], hits[-1] + 1) if hits else (0, 0)


# --- extraction, two ways ----------------------------------------------------------------------------


def _inflate(payload: bytes, method: int) -> bytes | None:
    if method == 0:
        return payload
    if method == 8:
        try:
            d = zlib.decompressobj(-15)
            out = d.decompress(payload, 64 << 20)
            return out if d.eof else None
        except zlib.error:
            return None
    return None


def cd_extract(data: bytes) -> dict[bytes, bytes | None] | None:
    """Files by the central directory, reading each entry where its record points (ZipArchive-like:
    the LFH only gives the name/extra lengths). None when there is no walkable central directory.
    A name seen twice keeps its last content; None content = the entry cannot be read."""
    eocd = data.rfind(EOCD)
    if eocd < 0:
        return None
    pos = struct.unpack_from("<I", data, eocd + 16)[0]
    files: dict[bytes, bytes | None] = {}
    while data[pos : pos + 4] == CD and pos + 46 <= len(data):
        _, method, _, _, crc, csize, usize, n, m, k = struct.unpack_from("<HHHHHIIIHHH", data, pos + 6)[1:]
        lfh = struct.unpack_from("<I", data, pos + 42)[0]
        name = data[pos + 46 : pos + 46 + n]
        content: bytes | None = None
        if data[lfh : lfh + 4] == LFH:
            ln, lm = struct.unpack_from("<HH", data, lfh + 26)
            start = lfh + 30 + ln + lm
            raw = data[start : start + csize]
            content = _inflate(raw, method) if len(raw) == csize else None
            if content is not None and (len(content) != usize or zlib.crc32(content) != crc):
                content = None
        files[name] = content
        pos += 46 + n + m + k
    return files


def stream_extract(data: bytes) -> dict[bytes, bytes | None]:
    """Files by walking local headers from offset 0, ignoring the central directory (a streaming
    unzip). Deflated entries with a data descriptor end where their deflate stream ends."""
    files: dict[bytes, bytes | None] = {}
    pos = 0
    while data[pos : pos + 4] == LFH and pos + 30 <= len(data):
        flags, method, _, crc, csize, usize, n, m = struct.unpack_from("<HHIIIIHH", data, pos + 6)
        name = data[pos + 30 : pos + 30 + n]
        start = pos + 30 + n + m
        if flags & 8 and method == 8:
            d = zlib.decompressobj(-15)
            try:
                content: bytes | None = d.decompress(data[start:], 64 << 20)
            except zlib.error:
                files[name] = None
                break
            end = len(data) - len(d.unused_data)
            end += 16 if data[end : end + 4] == DD else 12
        elif flags & 8:
            files[name] = None  # a stored entry with a descriptor cannot be streamed
            break
        else:
            content, end = _inflate(data[start : start + csize], method), start + csize
        files[name] = content
        pos = end
    return files


def without_signature(files: dict[bytes, bytes | None] | None) -> dict[bytes, bytes | None] | None:
    return None if files is None else {k: v for k, v in files.items() if k != SIG_NAME}


# --- structure-aware mutation ------------------------------------------------------------------------


def _fields(data: bytes) -> list[tuple[int, int]]:
    """(offset, width) of every integer field of every header found by signature scanning."""
    spots = []
    for sig, table in ((LFH, _LFH_FIELDS), (CD, _CD_FIELDS), (EOCD, _EOCD_FIELDS)):
        start = data.find(sig)
        while start >= 0:
            spots += [(start + off, size) for off, size, _ in table if off >= 4 and start + off + size <= len(data)]
            start = data.find(sig, start + 1)
    return spots


INTERESTING = [0, 1, 2, 0x7F, 0x80, 0xFF, 0xFFFE, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFF0, 0xFFFFFFFF]


def mutate_zip(data: bytes, rng: random.Random) -> bytes:
    """One structure-aware mutation: a header integer set to an edge value, shifted or zeroed; a
    truncation; a duplicated or deleted span; a header signature planted or broken."""
    b = bytearray(data)
    fields = _fields(data)
    kind = rng.randrange(8)
    if kind <= 2 and fields:  # an integer field: edge value, +-delta, or copied from another field
        pos, width = rng.choice(fields)
        current = int.from_bytes(b[pos : pos + width], "little")
        value = rng.choice([rng.choice(INTERESTING), current + rng.randint(-64, 64), current * 2, len(data),
                            len(data) - pos, rng.getrandbits(8 * width)])
        b[pos : pos + width] = (value % (1 << (8 * width))).to_bytes(width, "little")
    elif kind == 3:  # truncate
        del b[rng.randrange(len(b) + 1) :]
    elif kind == 4 and b:  # delete or duplicate a span
        start = rng.randrange(len(b))
        end = min(len(b), start + rng.choice([1, 4, 30, 46, rng.randrange(1, 4096)]))
        if rng.random() < 0.5:
            del b[start:end]
        else:
            b[start:start] = b[start:end] * rng.choice([1, 2, 100])
    elif kind == 5:  # plant a header signature somewhere
        at = rng.randrange(len(b) + 1)
        b[at:at] = rng.choice([LFH, CD, EOCD, DD, ZIP64_LOCATOR]) + bytes(rng.randrange(48))
    elif kind == 6 and b:  # break or flip bytes
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    else:  # append junk or a second end record
        b += rng.choice([EOCD + bytes(18), bytes(rng.randrange(100)), rng.randbytes(rng.randrange(64))])
    return bytes(b)


def mutate_der(data: bytes, rng: random.Random) -> bytes:
    """One structure-aware DER mutation: a tag, a length (short/long/indefinite/huge), a truncation,
    a duplicated element, or deep nesting wrapped around an element."""
    b = bytearray(data)
    if not b:
        return bytes([0x30, 0x80])
    nodes = der_nodes(data) if _looks_der(data) else [((), True)] * len(data)
    headers = [i for i, (_, is_header) in enumerate(nodes) if is_header] or list(range(len(b)))
    kind = rng.randrange(7)
    at = rng.choice(headers)
    if kind == 0:  # wrong tag
        b[at] = rng.choice([0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x0C, 0x13, 0x17, 0x18, 0x1F, 0x30, 0x31,
                            0x80, 0xA0, 0xA1, 0xA3, 0xFF, b[at] ^ 0x20])
    elif kind == 1 and at + 1 < len(b):  # wrong length
        b[at + 1] = rng.choice([0x00, 0x7F, 0x80, 0x81, 0x82, 0x84, 0x88, 0xFF, b[at + 1] ^ 1])
    elif kind == 2:  # truncate
        del b[rng.randrange(len(b) + 1) :]
    elif kind == 3:  # duplicate an element-sized span in place
        end = min(len(b), at + rng.choice([2, 16, 64, 512]))
        b[at:at] = b[at:end] * rng.choice([1, 2, 50])
    elif kind == 4:  # deep nesting: wrap the tail in many SEQUENCE headers of indefinite length
        depth = rng.choice([10, 100, 1000, 5000])
        b[at:at] = b"\x30\x80" * depth
    elif kind == 5:  # a huge definite length
        b[at + 1 : at + 1] = b"\x84\xff\xff\xff\xf0"
    else:
        b[rng.randrange(len(b))] = rng.randrange(256)
    return bytes(b)


def _looks_der(data: bytes) -> bool:
    try:
        der_nodes(data)
        return True
    except (IndexError, ValueError, OverflowError, RecursionError):
        return False


def entry_named(entries: list[Entry], name: bytes) -> Entry:
    return next(e for e in entries if e.name == name)


def copy_entries(entries: list[Entry]) -> list[Entry]:
    return [replace(e) for e in entries]


def cd_raw(data: bytes) -> dict[bytes, bytes]:
    """Per central record: the raw bytes an extractor reads for it (LFH..data end), no checks at all."""
    eocd = data.rfind(EOCD)
    pos = struct.unpack_from("<I", data, eocd + 16)[0]
    out = {}
    while data[pos : pos + 4] == CD:
        csize = struct.unpack_from("<I", data, pos + 20)[0]
        n, m, k = struct.unpack_from("<HHH", data, pos + 28)
        lfh = struct.unpack_from("<I", data, pos + 42)[0]
        ln, lm = struct.unpack_from("<HH", data, lfh + 26)
        out[data[pos + 46 : pos + 46 + n]] = data[lfh : lfh + 30 + ln + lm + csize]
        pos += 46 + n + m + k
    return out


def nuget_hash(data: bytes, algorithm: str = "sha256") -> bytes:
    """NuGet's integrity hash, a literal port of docs/format.md 4.2 (independent of trustpolicy._internal.archive)."""
    import hashlib

    u16 = lambda p: struct.unpack_from("<H", data, p)[0]  # noqa: E731
    u32 = lambda p: struct.unpack_from("<I", data, p)[0]  # noqa: E731
    eocd = data.rindex(EOCD)
    p, records = u32(eocd + 16), []
    while u32(p) == 0x02014B50:
        n, m, k = u16(p + 28), u16(p + 30), u16(p + 32)
        records.append({"pos": p, "hdr": 46 + n + m + k, "lfh": u32(p + 42), "flags": u16(p + 8),
                        "name": data[p + 46 : p + 46 + n]})
        p += 46 + n + m + k
    sigs = [r for r in records if r["name"] == SIG_NAME and not r["flags"] & 0x800]
    if len(sigs) != 1:
        raise ValueError("NU3005")
    sig = sigs[0]
    end_of_cd = records[-1]["pos"] + records[-1]["hdr"]
    cd_start = min(r["pos"] for r in records)
    by_off = sorted(records, key=lambda r: r["lfh"])
    for i, r in enumerate(by_off):
        r["size"] = (by_off[i + 1]["lfh"] if i + 1 < len(by_off) else cd_start) - r["lfh"]
    others, prev_end = [r for r in by_off if r is not sig], 0
    for r in others:
        r["change"] = prev_end - r["lfh"]
        prev_end = r["lfh"] + r["size"] + r["change"]
    h = hashlib.new(algorithm)
    h.update(data[0 : min(r["lfh"] for r in records)])
    for r in others:
        h.update(data[r["lfh"] : r["lfh"] + r["size"]])
    for r in sorted(others, key=lambda r: r["pos"]):
        h.update(data[r["pos"] : r["pos"] + 42])
        h.update(struct.pack("<I", (u32(r["pos"] + 42) + r["change"]) & 0xFFFFFFFF))
        h.update(data[r["pos"] + 46 : r["pos"] + r["hdr"]])
    h.update(data[end_of_cd : end_of_cd + 8])
    h.update(struct.pack("<H", (u16(end_of_cd + 8) - 1) & 0xFFFF))
    h.update(struct.pack("<H", (u16(end_of_cd + 10) - 1) & 0xFFFF))
    h.update(struct.pack("<I", (u32(end_of_cd + 12) - sig["hdr"]) & 0xFFFFFFFF))
    h.update(struct.pack("<I", (u32(end_of_cd + 16) - sig["size"]) & 0xFFFFFFFF))
    h.update(data[end_of_cd + 20 :])
    return h.digest()
