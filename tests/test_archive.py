"""trustpolicy._internal.archive against real NuGet packages, hand-built zips and random zips (docs/format.md 2 and 4)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import shutil
import struct
import subprocess
import tempfile
import tracemalloc
import zipfile
import zlib
from datetime import datetime
from pathlib import Path

import pytest
from asn1crypto import cms
from datafiles import NUGET, SIGNED as SIGNED_DIR, UNSIGNED as UNSIGNED_DIR, ZIP_EDGE
from hypothesis import HealthCheck, given, settings, strategies as st

from trustpolicy._internal.archive import (
    ALGORITHMS,
    MAX_SIGNATURE_SIZE,
    PackageArchive,
    hash_file,
    insert_signature,
    strip_signature,
)
from trustpolicy.errors import SignatureFormatError, SigningError, TrustPolicyError

SIGNED = sorted(SIGNED_DIR.glob("*.nupkg"))
UNSIGNED = sorted(UNSIGNED_DIR.glob("*.nupkg"))
SIG = b".signature.p7s"
WHEN = datetime(2024, 5, 17, 13, 45, 31)
HASH_OIDS = {"2.16.840.1.101.3.4.2.1": "sha256", "2.16.840.1.101.3.4.2.2": "sha384", "2.16.840.1.101.3.4.2.3": "sha512"}


def test_corpus_is_present() -> None:
    assert len(SIGNED) == 9 and len(UNSIGNED) == 3, f"test data missing under {NUGET}"


def expected_hash(package: Path) -> tuple[str, bytes]:
    """The hash the signer committed to, read with zipfile + asn1crypto only (independent of archive.py)."""
    der = zipfile.ZipFile(package).read(".signature.p7s")
    content = cms.ContentInfo.load(der)["content"]["encap_content_info"]["content"].native
    header, section, rest = content.decode("utf-8").split("\n\n", 2)
    assert header == "Version:1" and rest == ""
    oid, value = section.split("-Hash:")
    return HASH_OIDS[oid], base64.b64decode(value)


# --- hand-made zips: every offset under the test's control --------------------------------------------


def make_zip(
    files: list[tuple[bytes, bytes]],
    *,
    signature: bytes | None = None,
    sig_local_at: int | None = None,
    sig_cd_at: int | None = None,
    comment: bytes = b"",
    descriptors: bool = False,
    extra: bytes = b"",
    sig_fields: dict[str, int] | None = None,
) -> bytes:
    """Stored entries; optionally a .signature.p7s entry at any local / CD position (as NuGet writes it)."""
    items = [dict(name=n, data=d, flags=8 if descriptors else 0, extra=extra, ext=0) for n, d in files]
    local_order, cd_order = list(items), list(items)
    if signature is not None:
        sig = {"name": SIG, "data": signature, "flags": 0, "extra": b"", "ext": 0, **(sig_fields or {})}
        local_order.insert(len(items) if sig_local_at is None else sig_local_at, sig)
        cd_order.insert(len(items) if sig_cd_at is None else sig_cd_at, sig)
    out = bytearray()
    for it in local_order:
        it["offset"], crc, n = len(out), zlib.crc32(it["data"]), len(it["data"])
        hidden = it["flags"] & 8  # data descriptor: sizes and CRC follow the data
        out += struct.pack("<4sHHHIIIIHH", b"PK\x03\x04", 20, it["flags"], it.get("method", 0), 0x58B16D00,
                           0 if hidden else crc, 0 if hidden else n, 0 if hidden else it.get("usize", n),
                           len(it["name"]), len(it["extra"]))
        out += it["name"] + it["extra"] + it["data"]
        if hidden:
            out += struct.pack("<4sIII", b"PK\x07\x08", crc, n, n)
    cd_start = len(out)
    for it in cd_order:
        n = len(it["data"])
        out += struct.pack("<4sHHHHIIIIHHHHHII", b"PK\x01\x02", 20, 20, it.get("cd_flags", it["flags"]),
                           it.get("method", 0), 0x58B16D00, zlib.crc32(it["data"]), n, it.get("usize", n),
                           len(it["name"]), len(it["extra"]), 0, 0, 0, it["ext"], it["offset"])
        out += it["name"] + it["extra"]
    count = len(cd_order)
    out += struct.pack("<4sHHHHIIH", b"PK\x05\x06", 0, 0, count, count, len(out) - cd_start, cd_start, len(comment))
    return bytes(out + comment)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


FILES = [(b"a.nuspec", b"<package/>"), (b"lib/x.dll", b"x" * 300), (b"readme.txt", b"hello")]


# --- the corpus ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("package", SIGNED, ids=lambda p: p.name)
def test_corpus_package_hash_matches_signed_hash(package: Path) -> None:
    algorithm, expected = expected_hash(package)
    archive = PackageArchive.open(package)
    assert archive.is_signed and not archive.is_zip64()
    assert archive.read_signature() == zipfile.ZipFile(package).read(".signature.p7s")
    assert archive.package_hash(algorithm) == expected
    other = next(a for a in ALGORITHMS if a != algorithm)
    assert len(archive.package_hash(other)) == hashlib.new(other).digest_size


@pytest.mark.parametrize("package", SIGNED, ids=lambda p: p.name)
def test_corpus_strip_gives_the_signed_bytes_and_reinsert_is_byte_identical(package: Path, tmp_path: Path) -> None:
    algorithm, expected = expected_hash(package)
    unsigned = tmp_path / "unsigned.nupkg"
    strip_signature(package, unsigned)
    assert hash_file(unsigned, algorithm) == expected
    assert not PackageArchive.open(unsigned).is_signed
    # Re-inserting with the entry's own DOS time reproduces NuGet's (and nuget.org's) bytes exactly.
    when = datetime(*zipfile.ZipFile(package).getinfo(".signature.p7s").date_time)
    again = tmp_path / "again.nupkg"
    insert_signature(unsigned, PackageArchive.open(package).read_signature(), again, modified=when)
    assert again.read_bytes() == package.read_bytes()


def test_corpus_nuspec() -> None:
    assert PackageArchive.open(NUGET / "signed" / "nuget.versioning.5.0.0.nupkg").read_nuspec() == (
        "NuGet.Versioning", "5.0.0+42a8779499c1d1ed2488c2e6b9e2ee6ff6107766")
    assert PackageArchive.open(NUGET / "unsigned" / "PreReleaseTestPackage.A.1.0.0-a.nupkg").read_nuspec() == (
        "PreReleaseTestPackage.A", "1.0.0-a")


@pytest.mark.parametrize("package", UNSIGNED, ids=lambda p: p.name)
def test_corpus_unsigned(package: Path, tmp_path: Path) -> None:
    archive = PackageArchive.open(package)
    assert not archive.is_signed and not archive.is_zip64()
    for call in (archive.read_signature, lambda: archive.package_hash("sha256"),
                 lambda: strip_signature(package, tmp_path / "x.nupkg")):
        with pytest.raises(SignatureFormatError) as info:
            call()
        assert info.value.code == "NU3003" and info.value.path == str(package)
    assert not (tmp_path / "x.nupkg").exists()


@pytest.mark.parametrize("package", UNSIGNED, ids=lambda p: p.name)
def test_insert_then_strip_round_trips_and_other_readers_agree(package: Path, tmp_path: Path) -> None:
    signed, back = tmp_path / "signed.nupkg", tmp_path / "back.nupkg"
    signature = os.urandom(1500)
    insert_signature(package, signature, signed, modified=WHEN)
    archive = PackageArchive.open(signed)
    assert archive.is_signed and archive.read_signature() == signature
    for algorithm in ALGORITHMS:
        assert archive.package_hash(algorithm) == hash_file(package, algorithm)
    with zipfile.ZipFile(signed) as z:
        assert z.testzip() is None
        assert z.read(".signature.p7s") == signature
        info = z.getinfo(".signature.p7s")
        assert info.date_time == (2024, 5, 17, 13, 45, 30) and info.compress_type == zipfile.ZIP_STORED
        assert z.infolist()[-1] is info
    if shutil.which("unzip"):
        subprocess.run(["unzip", "-tq", str(signed)], check=True, capture_output=True)
    strip_signature(signed, back)
    assert back.read_bytes() == package.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] and not list(tmp_path.glob(".*.tmp"))


# --- zip-edge files -----------------------------------------------------------------------------------


def test_zip_edge_valid_entry() -> None:
    archive = PackageArchive.open(ZIP_EDGE / "SignatureFileEntry.zip")
    assert archive.is_signed and len(archive.read_signature()) == 7


def test_zip_edge_uppercase_name_is_unsigned() -> None:
    archive = PackageArchive.open(ZIP_EDGE / "SignatureFileWithUppercaseFileName.zip")
    assert not archive.is_signed and archive.entries[0].name == b".SIGNATURE.P7S"


def test_zip_edge_deflated_signature_is_nu3005() -> None:
    archive = PackageArchive.open(ZIP_EDGE / "SignatureFileWithDeflateCompressionMethodAndDefaultCompressionLevel.zip")
    for call in (archive.read_signature, lambda: archive.package_hash("sha256")):
        with pytest.raises(SignatureFormatError, match="compression method") as info:
            call()
        assert info.value.code == "NU3005"


def test_zip_edge_fake_content_is_readable() -> None:
    assert PackageArchive.open(ZIP_EDGE / "SignatureFileWithFakeContent.zip").read_signature() == b"content"


@pytest.mark.parametrize("name", ["EmptyZip64.zip", "CentralDirectoryHeaderWithZip64ExtraField.zip",
                                  "LocalFileHeaderWithZip64ExtraField.zip"])
def test_zip_edge_zip64_detected_and_refused(name: str, tmp_path: Path) -> None:
    assert PackageArchive.open(ZIP_EDGE / name).is_zip64()
    with pytest.raises(SigningError) as info:
        insert_signature(ZIP_EDGE / name, b"sig", tmp_path / "out.zip")
    assert info.value.code == "NU3006" and not (tmp_path / "out.zip").exists()


def test_zip64_detection_is_exact(tmp_path: Path) -> None:
    # Another extra field (and a 0x0001 id inside its *data*) is not ZIP64.
    extra = struct.pack("<HH", 0xCAFE, 4) + struct.pack("<HH", 0x0001, 0)
    assert not PackageArchive.open(write(tmp_path / "a.zip", make_zip(FILES, extra=extra))).is_zip64()
    assert PackageArchive.open(write(tmp_path / "b.zip", make_zip(FILES, extra=struct.pack("<HH", 1, 0)))).is_zip64()


def test_eocd_is_the_last_signature_within_the_longest_comment(tmp_path: Path) -> None:
    longest = make_zip(FILES, signature=b"sig", comment=b"c" * 0xFFFF)
    archive = PackageArchive.open(write(tmp_path / "long.zip", longest))
    assert archive.package_hash("sha256") == hashlib.sha256(make_zip(FILES, comment=b"c" * 0xFFFF)).digest()
    # NuGet takes the LAST PK\x05\x06: one inside the comment hides the real record, so the file is refused.
    fake = make_zip(FILES, signature=b"sig", comment=b"see PK\x05\x06 here")
    with pytest.raises(SignatureFormatError) as info:
        PackageArchive.open(write(tmp_path / "fake.zip", fake))
    assert info.value.code == "TP0003"  # cannot be read: the same code verify, inspect and check give


# --- signature entry rules (docs/format.md 2.1 / 2.2) ---------------------------------------------------


def test_signature_not_last_hashes_to_the_unsigned_layout(tmp_path: Path) -> None:
    unsigned = make_zip(FILES, comment=b"a comment")
    digests = {a: hashlib.new(a, unsigned).digest() for a in ALGORITHMS}
    for local_at in range(len(FILES) + 1):
        for cd_at in range(len(FILES) + 1):
            signed = make_zip(FILES, signature=b"SIG" * 50, sig_local_at=local_at, sig_cd_at=cd_at,
                              comment=b"a comment")
            path = write(tmp_path / f"s{local_at}{cd_at}.zip", signed)
            archive = PackageArchive.open(path)
            assert archive.read_signature() == b"SIG" * 50
            assert {a: archive.package_hash(a) for a in ALGORITHMS} == digests
            if (local_at, cd_at) != (len(FILES), len(FILES)):
                with pytest.raises(TrustPolicyError, match="not the last entry"):
                    strip_signature(path, tmp_path / "x.zip")


def test_one_read_gives_package_and_whole_file_hashes_wherever_the_signature_sits(tmp_path: Path) -> None:
    unsigned = make_zip(FILES, comment=b"a comment")
    for local_at in range(len(FILES) + 1):
        for cd_at in range(len(FILES) + 1):
            signed = make_zip(FILES, signature=b"SIG" * 50, sig_local_at=local_at, sig_cd_at=cd_at,
                              comment=b"a comment")
            archive = PackageArchive.open(write(tmp_path / f"s{local_at}{cd_at}.zip", signed))
            content = archive.package_hashes(("sha256", "sha512"), file_algorithms=("sha512", "sha384"))
            assert content == {a: hashlib.new(a, unsigned).digest() for a in ("sha256", "sha512")}
            for algorithm in ("sha512", "sha384"):
                assert archive.file_hash(algorithm) == hashlib.new(algorithm, signed).digest()
            assert archive.file_hash("sha256") == hashlib.sha256(signed).digest()  # not taken: read on demand


@pytest.mark.parametrize("package", SIGNED, ids=lambda p: p.name)
def test_corpus_whole_file_hash_taken_with_the_package_hash(package: Path) -> None:
    algorithm, expected = expected_hash(package)
    archive = PackageArchive.open(package)
    assert archive.package_hashes((algorithm,), file_algorithms=("sha512",)) == {algorithm: expected}
    assert archive.file_hash("sha512") == hashlib.sha512(package.read_bytes()).digest()


def test_bytes_between_central_directory_and_eocd_are_hashed(tmp_path: Path) -> None:
    def with_gap(data: bytes) -> bytes:  # NuGet hashes from the end of the last CD header, gap included
        eocd = data.rindex(b"PK\x05\x06")
        return data[:eocd] + b"GAP!" + data[eocd:]

    archive = PackageArchive.open(write(tmp_path / "g.zip", with_gap(make_zip(FILES, signature=b"s"))))
    assert archive.package_hash("sha256") == hashlib.sha256(with_gap(make_zip(FILES))).digest()


def test_tampering_changes_the_hash(tmp_path: Path) -> None:
    good = make_zip(FILES, signature=b"S")
    unsigned = make_zip(FILES)
    for pos in (0, 40, len(good) - 1):  # an LFH byte, entry data, the EOCD comment length
        bad = bytearray(good)
        bad[pos] ^= 0x20
        archive = PackageArchive.open(write(tmp_path / "t.zip", bytes(bad)))
        assert archive.package_hash("sha256") != hashlib.sha256(unsigned).digest()


def test_multiple_signature_entries_are_nu3005(tmp_path: Path) -> None:
    data = make_zip([(SIG, b"one")], signature=b"two")
    archive = PackageArchive.open(write(tmp_path / "m.zip", data))
    assert archive.is_signed
    with pytest.raises(SignatureFormatError, match="multiple") as info:
        archive.read_signature()
    assert info.value.code == "NU3005"


def test_utf8_flagged_name_is_not_the_signature(tmp_path: Path) -> None:
    data = make_zip(FILES, signature=b"x", sig_fields={"flags": 0x0800})
    assert not PackageArchive.open(write(tmp_path / "u.zip", data)).is_signed


def test_name_only_in_central_directory_is_not_signed(tmp_path: Path) -> None:
    data = bytearray(make_zip(FILES, signature=b"x"))
    name_in_lfh = data.index(SIG)  # local entries come first
    data[name_in_lfh : name_in_lfh + 14] = b".signature.p7x"
    assert not PackageArchive.open(write(tmp_path / "c.zip", bytes(data))).is_signed


@pytest.mark.parametrize(("fields", "message"), [
    ({"flags": 8}, "general purpose bit flag"),
    ({"cd_flags": 0, "flags": 2}, "local file header general purpose"),
    ({"flags": 0, "cd_flags": 2}, "central directory header general purpose"),
    ({"method": 8}, "compression method"),
    ({"usize": 99}, "compressed size"),
    ({"ext": 0x81A40000}, "external file attributes"),
])
def test_signature_header_violations_are_nu3005(fields: dict[str, int], message: str, tmp_path: Path) -> None:
    archive = PackageArchive.open(write(tmp_path / "h.zip", make_zip(FILES, signature=b"abc", sig_fields=fields)))
    assert archive.is_signed
    for call in (archive.read_signature, lambda: archive.package_hash("sha512")):
        with pytest.raises(SignatureFormatError, match=message) as info:
            call()
        assert info.value.code == "NU3005"


def test_signature_size_cap(tmp_path: Path) -> None:
    big = b"\x30" * (MAX_SIGNATURE_SIZE + 1)
    archive = PackageArchive.open(write(tmp_path / "big.zip", make_zip(FILES, signature=big)))
    with pytest.raises(SignatureFormatError, match="limit") as info:
        archive.read_signature()
    assert info.value.code == "NU3005"
    with pytest.raises(SigningError, match="limit"):
        insert_signature(write(tmp_path / "u.zip", make_zip(FILES)), big, tmp_path / "s.zip")
    insert_signature(tmp_path / "u.zip", big[:-1], tmp_path / "s.zip")
    assert PackageArchive.open(tmp_path / "s.zip").read_signature() == big[:-1]


# --- writing ----------------------------------------------------------------------------------------


def test_insert_refusals(tmp_path: Path) -> None:
    signed = write(tmp_path / "signed.zip", make_zip(FILES, signature=b"s"))
    with pytest.raises(SigningError) as info:
        insert_signature(signed, b"t", tmp_path / "o.zip")
    assert info.value.code == "NU3001"
    prefixed = write(tmp_path / "prefixed.zip", b"MZ stub")  # a self-extractor: absolute offsets after a stub
    with zipfile.ZipFile(prefixed, "a") as z:
        z.writestr("a.txt", b"a")
    zipped = make_zip(FILES)
    eocd = zipped.rindex(b"PK\x05\x06")
    gap = write(tmp_path / "gap.zip", zipped[:eocd] + b"JUNK" + zipped[eocd:])  # bytes between CD and EOCD
    with zipfile.ZipFile(prefixed) as z:
        assert z.testzip() is None  # zipfile accepts it, but NuGet's offset arithmetic would break
    for package in (prefixed, gap):
        with pytest.raises(SigningError, match="layout") as info:
            insert_signature(package, b"t", tmp_path / "o.zip")
        assert info.value.code == "NU3001"
    assert not (tmp_path / "o.zip").exists() and not list(tmp_path.glob(".*.tmp"))


def test_entry_count_limit(tmp_path: Path) -> None:
    names = [(b"%05d" % i, b"") for i in range(65533)]
    too_many = write(tmp_path / "many.zip", make_zip(names))
    with pytest.raises(SigningError) as info:
        insert_signature(too_many, b"s", tmp_path / "o.zip")
    assert info.value.code == "NU3039"
    just_fits = write(tmp_path / "fits.zip", make_zip(names[:-1]))
    insert_signature(just_fits, b"s", tmp_path / "o.zip")
    assert PackageArchive.open(tmp_path / "o.zip").package_hash("sha256") == hash_file(just_fits, "sha256")


def test_insert_in_place_and_unwritable_destination(tmp_path: Path) -> None:
    package = write(tmp_path / "p.nupkg", make_zip(FILES))
    before = hash_file(package, "sha384")
    insert_signature(package, b"sig", package)  # atomic replace of the source itself
    assert PackageArchive.open(package).package_hash("sha384") == before
    with pytest.raises(TrustPolicyError, match="cannot write") as info:
        insert_signature(write(tmp_path / "u.zip", make_zip(FILES)), b"s", tmp_path / "missing" / "o.zip")
    assert "missing" in str(info.value)


def test_dos_time_clamped_to_zip_range(tmp_path: Path) -> None:
    package = write(tmp_path / "p.zip", make_zip(FILES))
    insert_signature(package, b"s", tmp_path / "old.zip", modified=datetime(1970, 1, 1))
    insert_signature(package, b"s", tmp_path / "new.zip", modified=datetime(2200, 1, 1))
    assert zipfile.ZipFile(tmp_path / "old.zip").getinfo(".signature.p7s").date_time == (1980, 1, 1, 0, 0, 0)
    assert zipfile.ZipFile(tmp_path / "new.zip").getinfo(".signature.p7s").date_time == (2107, 12, 31, 23, 59, 58)
    insert_signature(package, b"s", tmp_path / "now.zip")  # default: trustpolicy._internal.clock
    assert zipfile.ZipFile(tmp_path / "now.zip").getinfo(".signature.p7s").date_time[0] >= 2024


def test_hashing_is_streamed(tmp_path: Path) -> None:
    unsigned, signed = tmp_path / "big.nupkg", tmp_path / "big-signed.nupkg"
    with zipfile.ZipFile(unsigned, "w") as z:
        with z.open("content/blob.bin", "w") as out:
            for _ in range(48):
                out.write(os.urandom(1 << 20))
    insert_signature(unsigned, b"s" * 4000, signed)
    tracemalloc.start()
    try:
        digest = PackageArchive.open(signed).package_hash("sha512")
        hash_file(unsigned, "sha512")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert digest == hash_file(unsigned, "sha512")
    assert peak < 4 << 20, f"peak {peak} bytes for a 48 MiB package"


# --- hostile input ---------------------------------------------------------------------------------


def every_operation(path: Path) -> None:
    """Run everything a verifier would; any failure must be a TrustPolicyError naming the file."""
    archive = PackageArchive.open(path)
    archive.is_zip64()
    with pytest.raises(TrustPolicyError) if not archive.is_signed else _maybe_raises():
        archive.read_signature()
        for algorithm in ALGORITHMS:
            archive.package_hash(algorithm)
    try:
        archive.read_nuspec()
    except TrustPolicyError as exc:
        assert exc.path == str(path)


class _maybe_raises:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type | None, value: BaseException | None, tb: object) -> bool:
        return kind is not None and issubclass(kind, SignatureFormatError)


def test_not_a_zip_and_missing_file(tmp_path: Path) -> None:
    for data in (b"", b"hello world", b"PK\x05\x06"):
        path = write(tmp_path / "n.nupkg", data)
        with pytest.raises(SignatureFormatError) as info:
            PackageArchive.open(path)
        assert info.value.code == "TP0003" and info.value.path == str(path)
    with pytest.raises(SignatureFormatError, match="cannot open") as info:
        PackageArchive.open(tmp_path / "absent.nupkg")
    assert info.value.code == "TP0003"
    with pytest.raises(TrustPolicyError, match="cannot read"):
        hash_file(tmp_path / "absent.nupkg", "sha256")
    with pytest.raises(SignatureFormatError) as info:
        hash_file(write(tmp_path / "f", b"x"), "md5")
    assert info.value.code == "NU3016"


def test_every_truncation_of_a_signed_package_is_refused(tmp_path: Path) -> None:
    data = (NUGET / "signed" / "Test.Reposigned.1.0.0.nupkg").read_bytes()
    path = tmp_path / "t.nupkg"
    for size in range(len(data)):
        path.write_bytes(data[:size])
        with pytest.raises(SignatureFormatError) as info:
            every_operation(path)
        assert info.value.path == str(path)


def test_corrupted_offsets(tmp_path: Path) -> None:
    good = make_zip(FILES, signature=b"sig")
    eocd = good.rindex(b"PK\x05\x06")
    cases = {
        "cd offset past the end": (eocd + 16, struct.pack("<I", len(good) + 100)),
        "cd offset inside a header": (eocd + 16, struct.pack("<I", 3)),
        "entry count": (eocd + 10, struct.pack("<H", 9)),
        "disk number": (eocd + 4, struct.pack("<H", 1)),
    }
    for name, (pos, value) in cases.items():
        bad = bytearray(good)
        bad[pos : pos + len(value)] = value
        with pytest.raises(SignatureFormatError) as info:
            PackageArchive.open(write(tmp_path / "c.zip", bytes(bad)))
        assert info.value.code == "TP0003", name  # unreadable, not an integrity failure: nothing was hashed
    for header in [m.start() for m in re.finditer(b"PK\x01\x02", good)]:  # each LFH offset out of range
        bad = bytearray(good)
        bad[header + 42 : header + 46] = struct.pack("<I", 0xFFFFFFF0)
        with pytest.raises(SignatureFormatError) as info:
            PackageArchive.open(write(tmp_path / "c.zip", bytes(bad))).package_hash("sha256")
        # The signature entry's local header is read when the file is opened (is it signed?): unreadable.
        opening = good[header + 46 : header + 60] == b".signature.p7s"
        assert info.value.code == ("TP0003" if opening else "NU3008")


@settings(max_examples=150, deadline=None)
@given(flips=st.lists(st.tuples(st.floats(0.0, 1.0), st.integers(1, 255)), min_size=1, max_size=4),
       tail_bias=st.booleans())
def test_byte_flips_never_escape_as_other_exceptions(flips: list[tuple[float, int]], tail_bias: bool) -> None:
    data = bytearray((NUGET / "signed" / "SignedPackage.1.0.0.nupkg").read_bytes())
    cd = data.index(b"PK\x01\x02")
    for where, mask in flips:  # mostly hit the headers that drive the parser
        lo = cd if tail_bias else 0
        data[lo + int(where * (len(data) - lo - 1))] ^= mask
    with tempfile.TemporaryDirectory() as tmp:
        path = write(Path(tmp) / "f.nupkg", bytes(data))
        try:
            every_operation(path)
        except SignatureFormatError as exc:
            assert exc.path == str(path)


# --- read_nuspec hardening ------------------------------------------------------------------------


def zip_with(tmp_path: Path, files: dict[str, bytes]) -> PackageArchive:
    path = tmp_path / "n.nupkg"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return PackageArchive.open(path)


NUSPEC = b"""<?xml version="1.0"?>
<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">
  <metadata><id> Foo.Bar </id><version>1.2.3-beta</version><authors>me</authors></metadata>
</package>"""


def test_read_nuspec(tmp_path: Path) -> None:
    archive = zip_with(tmp_path, {"Foo.Bar.nuspec": NUSPEC, "lib/other.nuspec": b"x"})
    assert archive.read_nuspec() == ("Foo.Bar", "1.2.3-beta")
    plain = b"<package><metadata><version>2.0</version><id>P</id></metadata></package>"
    assert zip_with(tmp_path, {"P.NUSPEC": plain}).read_nuspec() == ("P", "2.0")


@pytest.mark.parametrize(("files", "message"), [
    ({"a.txt": b"x"}, "found 0"),
    ({"a.nuspec": NUSPEC, "b.nuspec": NUSPEC}, "found 2"),
    ({"a.nuspec": b"<package><metadata>"}, "well-formed"),
    ({"a.nuspec": b"<package><metadata><id>x</id></metadata></package>"}, "version"),
    ({"a.nuspec": b"<other><metadata><id>x</id><version>1</version></metadata></other>"}, "package/metadata"),
    ({"a.nuspec": b'<!DOCTYPE p [<!ENTITY e "x">]><package><metadata><id>&e;</id><version>1</version>'
                  b'</metadata></package>'}, "DOCTYPE"),
    ({"a.nuspec": b'<!DOCTYPE p SYSTEM "http://127.0.0.1:9/x.dtd"><package/>'}, "DOCTYPE"),
    ({"a.nuspec": b"<package>" + b" " * (5 << 20) + b"</package>"}, "larger than"),
])
def test_read_nuspec_refusals(files: dict[str, bytes], message: str, tmp_path: Path) -> None:
    archive = zip_with(tmp_path, files)
    with pytest.raises(TrustPolicyError, match=message) as info:
        archive.read_nuspec()
    assert info.value.path == str(archive.path)


def test_read_nuspec_lying_size_and_bad_data(tmp_path: Path) -> None:
    data = bytearray(make_zip([(b"a.nuspec", b"<package>" + b" " * 100 + b"</package>")]))
    data[data.index(b"PK\x01\x02") + 24 : data.index(b"PK\x01\x02") + 28] = struct.pack("<I", 10)  # usize lies
    with pytest.raises(TrustPolicyError) as info:
        PackageArchive.open(write(tmp_path / "l.zip", bytes(data))).read_nuspec()
    assert info.value.path == str(tmp_path / "l.zip")


# --- property: random valid zips ------------------------------------------------------------------


class Unseekable(io.RawIOBase):
    """zipfile writes data descriptors (flag bit 3) when it cannot seek back."""

    def __init__(self) -> None:
        self.buffer = io.BytesIO()

    def writable(self) -> bool:
        return True

    def write(self, b: bytes) -> int:  # type: ignore[override]
        return self.buffer.write(b)


names = st.text(alphabet="abcXYZ019._-/é ", min_size=1, max_size=12).filter(
    lambda n: n != ".signature.p7s" and not n.endswith("/"))
entries = st.lists(st.tuples(names, st.binary(max_size=3000), st.booleans(), st.binary(max_size=12)),
                   min_size=1, max_size=8, unique_by=lambda e: e[0])


@st.composite
def random_zips(draw: st.DrawFn) -> bytes:
    files = draw(entries)
    comment = draw(st.binary(max_size=200).filter(lambda c: b"PK\x05\x06" not in c))
    kind = draw(st.sampled_from(["zipfile", "zipfile-stream", "handmade"]))
    if kind == "handmade":
        return make_zip([(n.encode(), d) for n, d, _, _ in files], comment=comment,
                        descriptors=draw(st.booleans()), extra=struct.pack("<HH", 0xCAFE, 2) + b"ok")
    target = Unseekable() if kind == "zipfile-stream" else io.BytesIO()
    with zipfile.ZipFile(target, "w") as z:  # type: ignore[arg-type]
        z.comment = comment
        for name, data, deflate, extra in files:
            info = zipfile.ZipInfo(name, date_time=(2020, 2, 29, 12, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
            info.extra = struct.pack("<HH", 0xCAFE, len(extra)) + extra
            z.writestr(info, data)
    buffer = target.buffer if isinstance(target, Unseekable) else target
    return buffer.getvalue()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(unsigned=random_zips(), signature=st.binary(max_size=4000))
def test_random_zips_hash_to_the_unsigned_file(unsigned: bytes, signature: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        source, signed, back = Path(tmp) / "u.zip", Path(tmp) / "s.zip", Path(tmp) / "b.zip"
        source.write_bytes(unsigned)
        insert_signature(source, signature, signed, modified=WHEN)
        archive = PackageArchive.open(signed)
        assert archive.is_signed and not archive.is_zip64()
        assert archive.read_signature() == signature
        for algorithm in ALGORITHMS:
            assert archive.package_hash(algorithm) == hash_file(source, algorithm)
        with zipfile.ZipFile(signed) as z:
            assert z.testzip() is None and z.read(".signature.p7s") == signature
            assert z.comment == zipfile.ZipFile(source).comment
        strip_signature(signed, back)
        assert back.read_bytes() == unsigned
