"""Issue 6.4: documented limits, each refused quickly with a clear message (and a bounded cost).

- archive.MAX_SIGNATURE_SIZE (1 MiB): a bigger .signature.p7s entry is NU3005 before it is read.
- signature.MAX_CERTIFICATES (100), MAX_ATTRIBUTES (64 values per attribute set), MAX_TIMESTAMPS (16):
  NU3003, counted from DER headers before asn1crypto builds anything. Floods of 100,000+ empty
  elements (which took 20-30 s each before the limits) now take milliseconds.
- archive.MAX_ENTRIES (1,000,000) central-directory records, and counts or sizes the end record
  claims that the file has no room for: refused before any record is read.
- archive.MAX_NUSPEC_SIZE (4 MiB): a .nuspec that inflates to gigabytes stops at 4 MiB.
"""

from __future__ import annotations

import struct
import time
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms
from fuzz import signed, zipkit
from fuzz.zipkit import Entry

from trustpolicy._internal import archive, signature
from trustpolicy._internal.archive import PackageArchive
from trustpolicy._internal.signature import parse_signature
from trustpolicy.errors import SignatureFormatError, TrustPolicyError

ID_SIGNED_DATA = bytes.fromhex("2a864886f70d010702")
ID_TIMESTAMP = bytes.fromhex("2a864886f70d010910020e")
ID_COUNTERSIGNATURE = bytes.fromhex("2a864886f70d010906")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> signed.World:
    return signed.world(tmp_path_factory.mktemp("hardening"))


@pytest.fixture(scope="module")
def der(world: signed.World) -> bytes:
    return PackageArchive.open(world.author).read_signature()


@contextmanager
def bounded(seconds: float, megabytes: float) -> Iterator[None]:
    """The block must finish within `seconds` and allocate at most `megabytes` at its peak."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    assert elapsed < seconds, f"took {elapsed:.2f}s (bound {seconds}s)"
    assert peak < megabytes, f"peak allocation {peak:.1f} MB (bound {megabytes} MB)"


# --- DER surgery --------------------------------------------------------------------------------------


def tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    length = bytes([n]) if n < 0x80 else bytes([0x80 | ((n.bit_length() + 7) // 8)]) + n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([tag]) + length + value


def rebuild(der: bytes, *, certificates: bytes | None = None, signed_attrs: bytes | None = None,
            unsigned_attrs: bytes | None = None, signer_infos: bytes | None = None) -> bytes:
    """The package signature with one part's *contents* replaced (original bytes elsewhere)."""
    sd = cms.ContentInfo.load(der)["content"]
    si = sd["signer_infos"][0]
    inner = [si[n].dump() for n in ("version", "sid", "digest_algorithm")]
    inner.append(tlv(0xA0, signed_attrs) if signed_attrs is not None else si["signed_attrs"].dump())
    inner += [si[n].dump() for n in ("signature_algorithm", "signature")]
    inner.append(tlv(0xA1, unsigned_attrs) if unsigned_attrs is not None else si["unsigned_attrs"].dump())
    infos = signer_infos if signer_infos is not None else tlv(0x30, b"".join(inner))
    parts = [sd[n].dump() for n in ("version", "digest_algorithms", "encap_content_info")]
    parts.append(tlv(0xA0, certificates) if certificates is not None else sd["certificates"].dump())
    parts.append(tlv(0x31, infos))
    return tlv(0x30, tlv(0x06, ID_SIGNED_DATA) + tlv(0xA0, tlv(0x30, b"".join(parts))))


def attribute(oid: bytes, values: bytes) -> bytes:
    return tlv(0x30, tlv(0x06, oid) + tlv(0x31, values))


def original(der: bytes, part: str) -> bytes:
    """The contents (no header) of the certificate set / signed / unsigned attributes."""
    sd = cms.ContentInfo.load(der)["content"]
    value = sd["certificates"] if part == "certificates" else sd["signer_infos"][0][part]
    return value.contents


def refused(call: Callable[[], Any], code: str, match: str) -> SignatureFormatError:
    with pytest.raises(SignatureFormatError) as info:
        call()
    assert info.value.code == code and match in info.value.message, info.value
    return info.value


# --- the signature entry and the CMS --------------------------------------------------------------------


def test_signature_entry_over_1_mib(world: signed.World, der: bytes) -> None:
    big = der + b"\0" * (archive.MAX_SIGNATURE_SIZE + 1 - len(der))
    path = world.write("bigsig.nupkg", zipkit.build_zip([Entry(b"a.nuspec", zipkit.nuspec()), zipkit.signature_entry(big)]))
    with bounded(1.0, 2.0):
        refused(PackageArchive.open(path).read_signature, "NU3005", f"over the {archive.MAX_SIGNATURE_SIZE} bytes limit")
    verdict = world.verify(path, "verify")
    assert verdict.verdict == "invalid" and verdict.codes("error") == ["NU3005"]
    refused(lambda: parse_signature(big), "NU3003", "more than the 1048576-byte limit")
    exactly = zipkit.build_zip([Entry(b"a.nuspec", zipkit.nuspec()), zipkit.signature_entry(big[:-1])])
    assert len(PackageArchive.open(world.write("limit.nupkg", exactly)).read_signature()) == archive.MAX_SIGNATURE_SIZE


def test_certificate_limit(der: bytes) -> None:
    certs = original(der, "certificates")
    intermediate = cms.ContentInfo.load(der)["content"]["certificates"][1].dump()
    fill = signature.MAX_CERTIFICATES - 3  # the signature carries root, intermediate and leaf
    assert len(parse_signature(rebuild(der, certificates=certs + intermediate * fill)).certificates) == 100
    too_many = rebuild(der, certificates=certs + intermediate * (fill + 1))
    refused(lambda: parse_signature(too_many), "NU3003", "more than 100 certificates")


def test_attribute_limits(der: bytes) -> None:
    signed_attrs, unsigned_attrs = original(der, "signed_attrs"), original(der, "unsigned_attrs")
    junk = attribute(b"\x2a\x03\x04", tlv(0x05, b""))  # 1.2.3.4 with one NULL value
    present = len(cms.ContentInfo.load(der)["content"]["signer_infos"][0]["unsigned_attrs"])
    fits = rebuild(der, unsigned_attrs=unsigned_attrs + junk * (signature.MAX_ATTRIBUTES - present))
    assert len(parse_signature(fits).timestamps) == 1
    refused(lambda: parse_signature(rebuild(der, unsigned_attrs=unsigned_attrs + junk * signature.MAX_ATTRIBUTES)),
            "NU3003", "more than 64 attributes")
    refused(lambda: parse_signature(rebuild(der, signed_attrs=signed_attrs + junk * signature.MAX_ATTRIBUTES)),
            "NU3003", "more than 64 attributes")
    many_values = attribute(b"\x2a\x03\x04", tlv(0x05, b"") * (signature.MAX_ATTRIBUTES + 1))
    refused(lambda: parse_signature(rebuild(der, unsigned_attrs=unsigned_attrs + many_values)),
            "NU3003", "more than 64 attribute values")


def test_timestamp_limit(der: bytes) -> None:
    token = cms.ContentInfo.load(der)["content"]["signer_infos"][0]["unsigned_attrs"][0]["values"][0].dump()
    sixteen = rebuild(der, unsigned_attrs=attribute(ID_TIMESTAMP, token * signature.MAX_TIMESTAMPS))
    assert len(parse_signature(sixteen).timestamps) == 16
    seventeen = rebuild(der, unsigned_attrs=attribute(ID_TIMESTAMP, token * (signature.MAX_TIMESTAMPS + 1)))
    refused(lambda: parse_signature(seventeen), "NU3003", "more than 16 timestamps")


FLOODS = {
    "certificates": lambda d: rebuild(d, certificates=tlv(0x30, b"") * 200_000),
    "signed attributes": lambda d: rebuild(d, signed_attrs=attribute(b"\x2a\x03", b"") * 100_000),
    "unsigned attributes": lambda d: rebuild(d, unsigned_attrs=attribute(b"\x2a\x03", b"") * 100_000),
    "timestamp values": lambda d: rebuild(d, unsigned_attrs=attribute(ID_TIMESTAMP, tlv(0x30, b"") * 300_000)),
    "countersignatures": lambda d: rebuild(d, unsigned_attrs=attribute(ID_COUNTERSIGNATURE, tlv(0x30, b"") * 300_000)),
    "signer infos": lambda d: rebuild(d, signer_infos=tlv(0x30, b"") * 300_000),
    "deep nesting": lambda d: rebuild(d, certificates=b"\x30\x80" * 400_000),
}


@pytest.mark.parametrize("name", sorted(FLOODS))
def test_floods_of_empty_elements_are_refused_fast(der: bytes, name: str) -> None:
    hostile = FLOODS[name](der)
    assert len(hostile) <= signature.MAX_SIGNATURE_SIZE
    with bounded(1.5, 40.0):
        with pytest.raises(SignatureFormatError) as info:
            parse_signature(hostile)
    assert info.value.code in {"NU3003", "NU3009"}, info.value


def test_flood_inside_a_timestamp_token_is_a_timestamp_problem(der: bytes) -> None:
    token = cms.ContentInfo.load(der)["content"]["signer_infos"][0]["unsigned_attrs"][0]["values"][0]
    inner = token["content"]
    flooded = tlv(0x30, tlv(0x06, ID_SIGNED_DATA) + tlv(0xA0, tlv(0x30, b"".join([
        inner["version"].dump(), inner["digest_algorithms"].dump(), inner["encap_content_info"].dump(),
        tlv(0xA0, tlv(0x30, b"") * 150_000), inner["signer_infos"].dump()]))))
    with bounded(1.5, 40.0):
        parsed = parse_signature(rebuild(der, unsigned_attrs=attribute(ID_TIMESTAMP, flooded)))
    problem = parsed.timestamps[0].problem
    assert problem is not None and problem.code == "NU3021" and "more than 100 certificates" in problem.message


# --- the archive ------------------------------------------------------------------------------------------


def eocd_only(total: int, cd_size: int, cd_offset: int, *, locator: bool = False, body: bytes = b"",
              zip64: tuple[int, int, int] | None = None, at: int | None = None) -> bytes:
    """An end record after `body`; `locator`: a ZIP64 locator pointing at offset 0 (no record there);
    `zip64`: (count, CD size, CD offset) of a ZIP64 end record (at file offset `at`, default right
    after `body`) and its locator before the end record."""
    tail = struct.pack("<4sIQI", zipkit.ZIP64_LOCATOR, 0, 0, 1) if locator else b""
    if zip64 is not None:
        count, size, offset = zip64
        tail = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count, size, offset)
        tail += struct.pack("<4sIQI", zipkit.ZIP64_LOCATOR, 0, len(body) if at is None else at, 1)
    return body + tail + struct.pack("<4sHHHHIIH", zipkit.EOCD, 0, 0, total, total, cd_size, cd_offset, 0)


@pytest.mark.parametrize(("data", "match"), [
    (eocd_only(0xFFFE, 0xFFFFFFF0, 0), "announces a 4294967280-byte central directory"),
    (eocd_only(0xFFFE, 100, 0, body=b"\0" * 100), "announces 65534 entries, which cannot fit"),
    (eocd_only(0xFFFF, 0x100000, 0, body=b"\0" * 64), "announces a 1048576-byte central directory"),
    (eocd_only(5, 0, 0xFFFFFF00, body=b"\0" * 64), "lies past its end record"),
    (eocd_only(0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, locator=True), "its ZIP64 locator points at no ZIP64 end record"),
    (eocd_only(0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, zip64=(0, 0, 0)), ""),  # a real empty ZIP64 archive
    (eocd_only(0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, zip64=(1 << 62, 0, 0)), "more than this tool reads"),
    (eocd_only(0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, zip64=(1, 1 << 62, 0)), "announces a 4611686018427387904-byte"),
    (eocd_only(0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, zip64=(1, 46, 1 << 63)), "lies past its end record"),
    (eocd_only(0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, zip64=(1000, 64, 0), body=b"\0" * 64), "cannot fit"),
])
def test_sparse_claims_of_huge_central_directories(tmp_path: Path, data: bytes, match: str) -> None:
    path = tmp_path / "claims.nupkg"
    path.write_bytes(data)
    with bounded(0.5, 5.0):
        try:
            opened = PackageArchive.open(path)
        except SignatureFormatError as error:
            assert match and match in error.message and error.path == str(path)
        else:
            assert not match and opened.entries == [] and not opened.is_signed


@pytest.mark.slow
def test_central_directory_entry_cap(tmp_path: Path) -> None:
    """A real central directory of MAX_ENTRIES + 1 records (a 46 MB file, ZIP64-marked, with a ZIP64 end
    record announcing one record fewer than there are, so no early refusal applies) is refused once the
    cap is passed; the cost is bounded by the cap (~3 s, ~150 MB)."""
    record = struct.pack("<4sHHHHHHIIIHHHHHII", zipkit.CD, 20, 20, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0) + b"a"
    local = struct.pack("<4sHHHHHIIIHH", zipkit.LFH, 20, 0, 0, 0, 0, 0, 0, 0, 1, 0) + b"a"
    path = tmp_path / "million.nupkg"
    with path.open("wb") as f:
        f.write(local)
        count = (archive.MAX_ENTRIES // 100_000 + 1) * 100_000
        for _ in range(count // 100_000):
            f.write(record * 100_000)
        f.write(eocd_only(0xFFFF, 0xFFFFFFFF, len(local), zip64=(archive.MAX_ENTRIES, len(record) * count, len(local)),
                          at=f.tell()))
    start = time.perf_counter()
    with pytest.raises(SignatureFormatError, match="more than 1000000 entries"):
        PackageArchive.open(path)
    assert time.perf_counter() - start < 15


def deflate_bomb(gigabytes: int) -> bytes:
    """Raw deflate of `gigabytes` GiB of zeros in about 1 KB per MiB: one block repeated (full flushes
    reset the window, so every flushed MiB compresses to the same bytes)."""
    zeros = bytes(1 << 20)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    return first + block * ((gigabytes << 10) - 1) + c.flush()


@pytest.mark.parametrize("declared", ["honest", "lying"])
def test_nuspec_decompression_bomb(world: signed.World, declared: str) -> None:
    bomb = deflate_bomb(2)
    size = 2 << 30 if declared == "honest" else 1000
    # Assembled by hand: build_zip would need the 2 GiB of inflated data in memory.
    local = struct.pack("<4sHHHIIIIHH", zipkit.LFH, 20, 0, 8, zipkit.DOS_TIME, 0, len(bomb), size % (1 << 32),
                        11, 0) + b"Bomb.nuspec" + bomb
    central = struct.pack("<4sHHHHIIIIHHHHHII", zipkit.CD, 20, 20, 0, 8, zipkit.DOS_TIME, 0, len(bomb),
                          min(size, 0xFFFFFFFE), 11, 0, 0, 0, 0, 0, 0) + b"Bomb.nuspec"
    data = local + central + struct.pack("<4sHHHHIIH", zipkit.EOCD, 0, 0, 1, 1, len(central), len(local), 0)
    path = world.write(f"bomb-{declared}.nupkg", data)
    with bounded(1.0, 30.0):
        with pytest.raises(TrustPolicyError, match=f"larger than {archive.MAX_NUSPEC_SIZE} bytes") as info:
            PackageArchive.open(path).read_nuspec()
    assert info.value.path == str(path)
    with bounded(2.0, 60.0):
        verdict = world.verify(path, "accept")
    assert verdict.id is None and verdict.verdict == "valid"  # unsigned in accept mode: the bomb is never inflated


def test_nuspec_just_under_the_limit_is_read(world: signed.World) -> None:
    meta = zipkit.nuspec("Big.Nuspec")
    padded = meta.replace(b"</package>", b"<!--" + b" " * (archive.MAX_NUSPEC_SIZE - len(meta) - 20) + b"--></package>")
    assert len(padded) <= archive.MAX_NUSPEC_SIZE
    path = world.write("bignuspec.nupkg", zipkit.build_zip([Entry(b"Big.Nuspec.nuspec", padded, method=8)]))
    assert PackageArchive.open(path).read_nuspec() == ("Big.Nuspec", "1.0.0")
