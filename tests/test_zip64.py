"""Issue 12 part 3: ZIP64 end records in which only some fields hold the ZIP64 marker.

APPNOTE 4.4.1.4: a field too small for its value holds 0xFFFF / 0xFFFFFFFF and the ZIP64 end record
holds the value; .NET's ZipArchive reads them so. Python's zipfile is the independent reader every
combination of marked fields is checked against. Signing rules stay (format.md 2.4): a signed ZIP64
package is NU3006 once it can be read.
"""

from __future__ import annotations

import io
import itertools
import struct
import zipfile
from pathlib import Path

import pytest
from datafiles import ZIP_EDGE
from fuzz import signed

from trustpolicy._internal.archive import PackageArchive
from trustpolicy._internal.inspect import inspect_package
from trustpolicy.errors import SignatureFormatError

FIELDS = ("disk", "cd_disk", "on_disk", "total", "cd_size", "cd_offset")  # the end record's, in order
MARKERS = (0xFFFF, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF)
EOCD = struct.Struct("<4sHHHHIIH")


def plain_zip() -> bytes:
    """A small package as Python's zipfile writes it: deflated nuspec, a stored and a deflated file."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(zipfile.ZipInfo("Zip64.Test.nuspec", (2024, 1, 1, 0, 0, 0)),
                   '<?xml version="1.0"?><package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">'
                   "<metadata><id>Zip64.Test</id><version>1.2.3</version></metadata></package>",
                   compress_type=zipfile.ZIP_DEFLATED)
        z.writestr("lib/net8.0/a.dll", b"MZ" + bytes(range(256)) * 4)
        z.writestr("content/readme.txt", b"hello " * 500, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def with_zip64_end(data: bytes, marked: tuple[str, ...], *, record: dict[str, int] | None = None) -> bytes:
    """`data` with a ZIP64 end record and locator before its end record, whose `marked` fields now hold
    the ZIP64 marker. `record` overrides values of the ZIP64 record (a record that disagrees)."""
    at = data.rindex(b"PK\x05\x06")
    signature, *values, comment = EOCD.unpack_from(data, at)
    true = dict(zip(FIELDS, values)) | (record or {})
    zip64_end = struct.pack("<4sQHHIIQQQQ", b"PK\x06\x06", 44, 45, 45, true["disk"], true["cd_disk"],
                            true["on_disk"], true["total"], true["cd_size"], true["cd_offset"])
    locator = struct.pack("<4sIQI", b"PK\x06\x07", 0, at, 1)
    end = [marker if name in marked else value for name, value, marker in zip(FIELDS, values, MARKERS)]
    return data[:at] + zip64_end + locator + EOCD.pack(signature, *end, comment) + data[at + EOCD.size:]


def central_directory(data: bytes) -> list[tuple]:
    """What zipfile reads: name, local header offset, CRC, sizes."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert z.testzip() is None
        return [(i.filename.encode(), i.header_offset, i.CRC, i.compress_size, i.file_size) for i in z.infolist()]


def ours(archive: PackageArchive) -> list[tuple]:
    return [(e.name, e.lfh_offset, e.crc32, e.compressed_size, e.uncompressed_size) for e in archive.entries]


COMBINATIONS = [c for n in range(len(FIELDS) + 1) for c in itertools.combinations(FIELDS, n)]


@pytest.mark.parametrize("marked", COMBINATIONS, ids=lambda c: "+".join(c) or "none")
def test_every_combination_of_marked_fields_reads_as_zipfile_reads_it(tmp_path: Path, marked: tuple[str, ...]) -> None:
    data = with_zip64_end(plain_zip(), marked)
    path = tmp_path / "zip64.nupkg"
    path.write_bytes(data)
    archive = PackageArchive.open(path)
    assert ours(archive) == central_directory(data) and len(archive.entries) == 3
    assert archive.read_nuspec() == ("Zip64.Test", "1.2.3")
    assert archive.is_zip64() and not archive.is_signed
    report = inspect_package(path)
    assert (report["id"], report["signed"], report["problems"]) == ("Zip64.Test", False, [])


def test_64_bit_values_are_read_from_the_zip64_record(tmp_path: Path) -> None:
    """Data before the first entry pushes every offset up; the ZIP64 record holds the central directory
    offset in its 8 bytes, the end record only the marker. (Offsets above 4 GiB take the same path.)"""
    data = b"\0" * 4096 + plain_zip()  # zipfile reads prepended data as zip "concatenation"
    shifted = bytearray(data)
    at = data.rindex(b"PK\x05\x06")
    cd = struct.unpack_from("<I", data, at + 16)[0] + 4096
    struct.pack_into("<I", shifted, at + 16, cd)
    for header in range(cd, at):  # each central record's local header offset moves too
        if shifted[header : header + 4] == b"PK\x01\x02":
            struct.pack_into("<I", shifted, header + 42, struct.unpack_from("<I", shifted, header + 42)[0] + 4096)
    rebuilt = with_zip64_end(bytes(shifted), ("cd_offset",))
    path = tmp_path / "shifted.nupkg"
    path.write_bytes(rebuilt)
    archive = PackageArchive.open(path)
    assert ours(archive) == central_directory(rebuilt) and archive.entries[0].lfh_offset == 4096


def test_central_directory_zip64_extra_fields_are_read(tmp_path: Path) -> None:
    """APPNOTE 4.5.3: sizes and offsets of 0xFFFFFFFF in a central record come from its ZIP64 extra field."""
    data = bytearray(plain_zip())
    at = data.rindex(b"PK\x05\x06")
    cd = struct.unpack_from("<I", data, at + 16)[0]
    out, pos = bytearray(data[:cd]), cd
    while data[pos : pos + 4] == b"PK\x01\x02":
        csize, usize = struct.unpack_from("<II", data, pos + 20)
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        offset = struct.unpack_from("<I", data, pos + 42)[0]
        header = bytearray(data[pos : pos + 46])
        struct.pack_into("<IIHHH", header, 20, 0xFFFFFFFF, 0xFFFFFFFF, name_len, extra_len + 28, comment_len)
        struct.pack_into("<I", header, 42, 0xFFFFFFFF)
        name = data[pos + 46 : pos + 46 + name_len]
        zip64 = struct.pack("<HHQQQ", 0x0001, 24, usize, csize, offset)
        out += header + name + data[pos + 46 + name_len : pos + 46 + name_len + extra_len] + zip64
        out += data[pos + 46 + name_len + extra_len : pos + 46 + name_len + extra_len + comment_len]
        pos += 46 + name_len + extra_len + comment_len
    count = struct.unpack_from("<H", data, at + 10)[0]
    out += EOCD.pack(b"PK\x05\x06", 0, 0, count, count, len(out) - cd, cd, 0)
    path = tmp_path / "extra.nupkg"
    path.write_bytes(bytes(out))
    archive = PackageArchive.open(path)
    assert ours(archive) == central_directory(bytes(out))
    assert archive.read_nuspec() == ("Zip64.Test", "1.2.3") and archive.is_zip64()


def test_corpus_zip64_files_read_as_zipfile_reads_them() -> None:
    corpus = ZIP_EDGE
    for name in ("EmptyZip64.zip", "CentralDirectoryHeaderWithZip64ExtraField.zip"):
        data = (corpus / name).read_bytes()
        assert ours(PackageArchive.open(corpus / name)) == central_directory(data), name


@pytest.mark.parametrize(("marked", "record", "why"), [
    (("disk",), {"cd_offset": 0}, "the central directory offset"),  # two central directories: which one?
    ((), {"total": 2, "on_disk": 2}, "the entry count"),  # no marker: .NET reads 3, zipfile reads the record
    (("disk", "cd_disk"), {"disk": 1}, "multi-disk"),  # the record says what the marker hid
])
def test_a_zip64_record_that_disagrees_is_refused(tmp_path: Path, marked: tuple[str, ...], record: dict[str, int],
                                                  why: str) -> None:
    path = tmp_path / "disagree.nupkg"
    path.write_bytes(with_zip64_end(plain_zip(), marked, record=record))
    with pytest.raises(SignatureFormatError) as refused:
        PackageArchive.open(path)
    assert refused.value.code == "TP0003" and why in refused.value.message


def test_a_marker_whose_zip64_record_is_missing_is_refused(tmp_path: Path) -> None:
    data = with_zip64_end(plain_zip(), ("cd_offset",))
    at = data.rindex(b"PK\x06\x06")
    path = tmp_path / "norecord.nupkg"
    path.write_bytes(data[:at] + b"XX\x06\x06" + data[at + 4:])
    with pytest.raises(SignatureFormatError, match="points at no ZIP64 end record") as refused:
        PackageArchive.open(path)
    assert refused.value.code == "TP0003"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> signed.World:
    return signed.world(tmp_path_factory.mktemp("zip64"))


@pytest.mark.parametrize("marked", [("cd_offset",), ("total", "on_disk"), ("cd_size",), FIELDS])
def test_signed_zip64_package_reads_and_is_nu3006(world: signed.World, marked: tuple[str, ...]) -> None:
    """Before: "cannot be read" (TP0003) when the offset was marked. Now read, and the signing rules
    decide: a signed ZIP64 package is NU3006 in every mode (format.md 2.4)."""
    path = world.write(f"signed-zip64-{'-'.join(marked)}.nupkg", with_zip64_end(world.author.read_bytes(), marked))
    archive = PackageArchive.open(path)
    assert archive.is_signed and archive.is_zip64()
    for preset in signed.PRESETS:
        verdict = world.verify(path, preset)
        assert verdict.verdict == "invalid" and set(verdict.codes("error")) == {"NU3006"}, (preset, verdict.issues)
        assert verdict.id == "Hardening.Test"


def test_unsigned_zip64_package_is_judged_as_unsigned(world: signed.World) -> None:
    path = world.write("unsigned-zip64.nupkg", with_zip64_end(world.unsigned.read_bytes(), ("cd_offset", "total", "on_disk")))
    accept = world.verify(path, "accept")
    assert accept.verdict == "valid" and accept.id == "Hardening.Test" and not accept.signatures
    assert world.verify(path, "require").codes("error") == ["NU3004"]
