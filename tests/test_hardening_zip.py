"""Issue 6.3: ZIP ambiguity. Hand-built zips, signed by our signer when it accepts them (else the
signature entry is placed by hand around a real CMS signature over the unsigned bytes), judged by the
engine in every mode.

The rule behind every assertion: a `valid` verdict only for a package whose files, as a central-
directory unzip (ZipArchive, zipfile) and as a streaming unzip (walking local headers) extract them,
are the files of the unsigned package the signature commits to. Where NuGet's verdict is known
(docs/format.md 2, 4) it is asserted; where we are stricter or differ, the test says why.
"""

from __future__ import annotations

import hashlib
import struct
from pathlib import Path

import pytest
from fuzz import signed, zipkit
from fuzz.zipkit import Entry

from trustpolicy._internal.archive import PackageArchive
from trustpolicy._internal.sign import build_signature, signature_content
from trustpolicy.errors import SigningError
from trustpolicy.models import PackageVerdict

PRESETS = tuple(signed.PRESETS)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> signed.World:
    return signed.world(tmp_path_factory.mktemp("hardening"))


def entries() -> list[Entry]:
    return [
        Entry(b"Zip.Test.nuspec", zipkit.nuspec("Zip.Test"), method=8),
        Entry(b"lib/a.dll", b"A" * 120),
        Entry(b"lib/b.dll", b"B" * 80, method=8),
    ]


def hand_signed(world: signed.World, items: list[Entry], *, local_at: int | None = None, cd_at: int | None = None,
                der: bytes | None = None, **options: object) -> tuple[bytes, bytes]:
    """(unsigned, signed): the signature entry inserted at any local / central position by rebuilding the
    zip, so every offset is right; `der` defaults to a real signature over the unsigned bytes."""
    unsigned = zipkit.build_zip(zipkit.copy_entries(items), **options)  # type: ignore[arg-type]
    der = der if der is not None else world.signature_for(unsigned)
    n = len(items)
    local, cd = list(range(n)), list(range(n))
    local.insert(n if local_at is None else local_at, n)
    cd.insert(n if cd_at is None else cd_at, n)
    signed_bytes = zipkit.build_zip(zipkit.copy_entries(items) + [zipkit.signature_entry(der)],
                                    local_order=local, cd_order=cd, **options)  # type: ignore[arg-type]
    return unsigned, signed_bytes


def judge_all(world: signed.World, name: str, data: bytes) -> dict[str, PackageVerdict]:
    path = world.write(name, data)
    return {preset: world.verify(path, preset) for preset in PRESETS}


def errors(verdict: PackageVerdict) -> set[str]:
    return set(verdict.codes("error"))


def assert_valid_and_faithful(verdicts: dict[str, PackageVerdict], unsigned: bytes, signed_bytes: bytes) -> None:
    for preset, verdict in verdicts.items():
        assert verdict.verdict == "valid" and verdict.signatures, (preset, verdict.issues)
    assert zipkit.without_signature(zipkit.cd_extract(signed_bytes)) == zipkit.cd_extract(unsigned)
    assert zipkit.without_signature(zipkit.stream_extract(signed_bytes)) == zipkit.stream_extract(unsigned)


def assert_invalid_everywhere(verdicts: dict[str, PackageVerdict], *allowed: str) -> None:
    for preset, verdict in verdicts.items():
        assert verdict.verdict == "invalid", (preset, verdict.issues)
        assert errors(verdict) and errors(verdict) <= set(allowed), (preset, verdict.issues)


def assert_not_vouched(verdicts: dict[str, PackageVerdict], *codes: str) -> None:
    """An illegal signature (format problems NuGet reports at load time): an error in REQUIRE and
    VERIFY; ACCEPT lets the package through with a warning and vouches for no signature (docs/verification.md 6)."""
    for preset in ("require", "verify"):
        assert verdicts[preset].verdict == "invalid" and errors(verdicts[preset]) <= set(codes), verdicts[preset].issues
    accept = verdicts["accept"]
    assert accept.verdict == "valid" and not accept.signatures and set(accept.codes("warning")) <= set(codes)


# --- control and position --------------------------------------------------------------------------------


def test_our_signer_on_a_plain_package_is_valid_and_faithful(world: signed.World) -> None:
    unsigned = zipkit.build_zip(entries())
    path = world.sign_bytes("plain", unsigned)
    assert zipkit.nuget_hash(path.read_bytes()) == hashlib.sha256(unsigned).digest()
    assert_valid_and_faithful(judge_all(world, "plain-check.nupkg", path.read_bytes()), unsigned, path.read_bytes())


@pytest.mark.parametrize("local_at", [0, 1, 3])
@pytest.mark.parametrize("cd_at", [0, 2, 3])
def test_signature_entry_anywhere_is_valid(world: signed.World, local_at: int, cd_at: int) -> None:
    """docs/format.md 2.3: the verifier accepts the entry at any position (the writer puts it last)."""
    unsigned, signed_bytes = hand_signed(world, entries(), local_at=local_at, cd_at=cd_at, comment=b"c")
    assert zipkit.nuget_hash(signed_bytes) == hashlib.sha256(unsigned).digest()
    assert_valid_and_faithful(judge_all(world, f"pos{local_at}{cd_at}.nupkg", signed_bytes), unsigned, signed_bytes)


# --- names, headers, overlaps -----------------------------------------------------------------------------


def test_duplicate_names_are_signed_as_they_are(world: signed.World) -> None:
    """Two records named lib/a.dll: extractors disagree on which wins, but every byte is hashed, so the
    ambiguity is the signer's own: NuGet's verdict is valid, and signing changes no extraction."""
    items = entries() + [Entry(b"lib/a.dll", b"second a")]
    unsigned = zipkit.build_zip(items)
    signed_bytes = world.sign_bytes("dup", unsigned).read_bytes()
    assert_valid_and_faithful(judge_all(world, "dup-check.nupkg", signed_bytes), unsigned, signed_bytes)


def test_two_signature_entries_are_nu3005(world: signed.World) -> None:
    items = entries() + [zipkit.signature_entry(b"\x30\x00")]
    with pytest.raises(SigningError):  # our signer refuses a package that already has one
        world.sign_bytes("twosig", zipkit.build_zip(items))
    _, signed_bytes = hand_signed(world, items)
    assert_not_vouched(judge_all(world, "twosig.nupkg", signed_bytes), "NU3005")


@pytest.mark.parametrize("disagreement", [
    {"lfh_name": b"lib/z.dll"},
    {"lfh_sizes": (7, 7)},
    {"cd_sizes": (119, 119)},
    {"lfh_method": 8},
    {"cd_method": 8},
])
def test_local_and_central_headers_that_disagree_are_hashed(world: signed.World, disagreement: dict) -> None:
    """For an ordinary entry both headers are covered byte for byte: the package means the same signed
    or not (NuGet: valid). What matters is that signing changes nothing an extractor sees."""
    items = entries()
    for key, value in disagreement.items():
        setattr(items[1], key, value)
    unsigned = zipkit.build_zip(items)
    signed_bytes = world.sign_bytes("disagree", unsigned).read_bytes()
    assert_valid_and_faithful(judge_all(world, "disagree-check.nupkg", signed_bytes), unsigned, signed_bytes)


@pytest.mark.parametrize(("change", "codes"), [
    ({"lfh_name": b".signature.p7x"}, ("NU3004", "NU3005")),  # not a signature entry any more
    ({"lfh_method": 8}, ("NU3005",)),
    ({"cd_method": 8}, ("NU3005",)),
    ({"flags": 0x0008}, ("NU3005",)),
    ({"descriptor": True}, ("NU3005",)),
    ({"external": 0x81A40000}, ("NU3005",)),
    ({"lfh_sizes": (100, 100)}, ("NU3003", "NU3005", "NU3008")),
])
def test_signature_entry_header_problems(world: signed.World, change: dict, codes: tuple[str, ...]) -> None:
    unsigned = zipkit.build_zip(entries())
    der = world.signature_for(unsigned)
    sig = zipkit.signature_entry(der)
    for key, value in change.items():
        setattr(sig, key, value)
    data = zipkit.build_zip(entries() + [sig])
    verdicts = judge_all(world, "sighdr.nupkg", data)
    for preset in ("require", "verify"):
        assert verdicts[preset].verdict == "invalid" and errors(verdicts[preset]) <= set(codes), verdicts[preset].issues
    assert verdicts["accept"].verdict == "invalid" or not verdicts["accept"].signatures


def test_signature_central_sizes_are_not_read(world: signed.World) -> None:
    """NuGet reads the signature by its local header; the central record's (equal) sizes are only checked
    against each other, so a record claiming 5 bytes changes nothing (and hides nothing: an unzip
    reading 5 bytes of the signature gets signature bytes)."""
    unsigned = zipkit.build_zip(entries())
    sig = zipkit.signature_entry(world.signature_for(unsigned))
    sig.cd_sizes = (5, 5)
    data = zipkit.build_zip(entries() + [sig])
    assert_valid_and_faithful(judge_all(world, "sig-cd-size.nupkg", data), unsigned, data)


def test_entries_sharing_a_local_header_are_hashed(world: signed.World) -> None:
    """Two central records point at one local header (an overlap the signer signed): NuGet valid."""
    items = entries() + [Entry(b"lib/alias.dll", b"A" * 120, cd_offset_of="lib/a.dll")]
    unsigned = zipkit.build_zip(items, local_order=[0, 1, 2])
    signed_bytes = world.sign_bytes("alias", unsigned).read_bytes()
    assert_valid_and_faithful(judge_all(world, "alias-check.nupkg", signed_bytes), unsigned, signed_bytes)


def test_entry_pointing_at_the_signature_header_is_refused(world: signed.World) -> None:
    """A record whose LFH offset is the signature's: NuGet's sizes make it empty in the hash, yet an
    unzip reads the signature bytes for it (content the signer never saw). Ours: NU3008."""
    items = entries() + [Entry(b"lib/x.dll", b"", cd_offset_of=".signature.p7s")]
    unsigned = zipkit.build_zip(zipkit.copy_entries(entries()) + [Entry(b"lib/x.dll", b"", cd_offset_of="lib/b.dll")],
                                local_order=[0, 1, 2])
    der = world.signature_for(unsigned)
    data = zipkit.build_zip(zipkit.copy_entries(items) + [zipkit.signature_entry(der)], local_order=[0, 1, 2, 4],
                            cd_order=[0, 1, 2, 3, 4])
    assert zipkit.cd_raw(data)[b"lib/x.dll"] != zipkit.cd_raw(unsigned)[b"lib/x.dll"]
    assert_invalid_everywhere(judge_all(world, "at-sig.nupkg", data), "NU3008")


def test_entry_data_running_into_the_signature_is_refused(world: signed.World) -> None:
    """The attack: lib/a.dll's record claims 16 bytes more than its data, so in the unsigned package it
    reads into lib/b.dll's header. Moved next to the signature entry, it reads signature bytes instead,
    and NuGet's hash still matches (the signature region is skipped). Ours: NU3008 in every mode."""
    items = entries()
    items[1].cd_sizes = (136, 136)
    unsigned = zipkit.build_zip(zipkit.copy_entries(items))
    der = world.signature_for(unsigned)
    data = zipkit.build_zip(zipkit.copy_entries(items) + [zipkit.signature_entry(der)], local_order=[0, 1, 3, 2])
    assert zipkit.nuget_hash(data) == hashlib.sha256(unsigned).digest()  # NuGet would say valid
    assert zipkit.cd_raw(data)[b"lib/a.dll"] != zipkit.cd_raw(unsigned)[b"lib/a.dll"]  # but a.dll differs
    assert_invalid_everywhere(judge_all(world, "runs-into-sig.nupkg", data), "NU3008")
    # Signed the ordinary way (signature last) a.dll still reads lib/b.dll's bytes: nothing changed, valid.
    as_signed = world.sign_bytes("runs-into-b", unsigned).read_bytes()
    assert_valid_and_faithful(judge_all(world, "runs-into-b.nupkg", as_signed), unsigned, as_signed)
    assert zipkit.cd_raw(as_signed)[b"lib/a.dll"] == zipkit.cd_raw(unsigned)[b"lib/a.dll"]
    # But the last entry claiming more than its data reads the central directory when unsigned and
    # the signature entry once signed (even by our own signer, signature last): NU3008.
    items = entries()
    items[2].cd_sizes = (len(items[2].payload) + 16, len(items[2].data))
    unsigned = zipkit.build_zip(zipkit.copy_entries(items))
    as_signed = world.sign_bytes("runs-into-sig-last", unsigned).read_bytes()
    assert zipkit.nuget_hash(as_signed) == hashlib.sha256(unsigned).digest()
    assert zipkit.cd_raw(as_signed)[b"lib/b.dll"] != zipkit.cd_raw(unsigned)[b"lib/b.dll"]
    assert_invalid_everywhere(judge_all(world, "runs-last.nupkg", as_signed), "NU3008")


def test_hidden_entry_after_the_signature_data_is_refused(world: signed.World) -> None:
    """Bytes between the signature data and the next header are in NuGet's skipped region: a local
    header hidden there is extracted by a streaming unzip and signed by nobody. NuGet: valid. Ours: NU3008."""
    unsigned = zipkit.build_zip(entries())
    der = world.signature_for(unsigned)
    hidden = zipkit.build_zip([Entry(b"lib/evil.dll", b"EVIL" * 10)])
    hidden = hidden[: hidden.index(zipkit.CD)]  # its local header and data only
    n = len(entries())
    data = zipkit.build_zip(entries() + [zipkit.signature_entry(der)], gaps={n: hidden})
    assert zipkit.nuget_hash(data) == hashlib.sha256(unsigned).digest()
    assert b"lib/evil.dll" in zipkit.stream_extract(data)
    assert_invalid_everywhere(judge_all(world, "hidden.nupkg", data), "NU3008")
    # A gap between two ordinary entries is hashed like their data: the signer sees it, nothing to hide.
    unsigned_gap = zipkit.build_zip(entries(), gaps={1: hidden})
    signed_gap = world.sign_bytes("gap", unsigned_gap).read_bytes()
    for verdict in judge_all(world, "gap-check.nupkg", signed_gap).values():
        assert verdict.verdict == "valid"


def test_entry_inside_the_signature_region_is_refused(world: signed.World) -> None:
    """A record pointing into the signature data splits NuGet's region; either way ours refuses."""
    unsigned = zipkit.build_zip(entries())
    der = world.signature_for(unsigned)
    data = bytearray(zipkit.build_zip(entries() + [zipkit.signature_entry(der)]))
    sig_lfh = PackageArchive.open(world.write("tmp-inside.nupkg", bytes(data))).entries[-1].lfh_offset
    cd = data.index(zipkit.CD)  # the first record (the nuspec) now points into the signature data
    data[cd + 42 : cd + 46] = struct.pack("<I", sig_lfh + 100)
    verdicts = judge_all(world, "inside.nupkg", bytes(data))
    for verdict in verdicts.values():
        assert verdict.verdict == "invalid" and errors(verdict) <= {"NU3008", "TP0003"}, verdict.issues


# --- bytes around the archive ----------------------------------------------------------------------------


def test_bytes_before_the_first_entry(world: signed.World) -> None:
    """A prefix (self-extracting stub): our signer refuses; NuGet's offset arithmetic assumes the first
    header at 0, so a signature over the file as it is fails the integrity check (docs/format.md 2.4)."""
    unsigned = zipkit.build_zip(entries(), prefix=b"MZ stub " * 8)
    with pytest.raises(SigningError, match="before the first entry"):
        world.sign_bytes("prefix", unsigned)
    _, data = hand_signed(world, entries(), prefix=b"MZ stub " * 8)
    assert zipkit.nuget_hash(data) != hashlib.sha256(unsigned).digest()
    assert_invalid_everywhere(judge_all(world, "prefix.nupkg", data), "NU3008")
    # Signed over NuGet's own reconstruction instead, it verifies: the stub is hashed, files are the same.
    _, probe = hand_signed(world, entries(), prefix=b"MZ stub " * 8, der=b"\x30\x00")
    content = zipkit.nuget_hash(probe)
    der = build_signature(signature_content("sha256", content), identity=signed.identity_of(world.pki.leaf))
    _, data = hand_signed(world, entries(), prefix=b"MZ stub " * 8, der=der)
    assert_valid_and_faithful(judge_all(world, "prefix-nuget.nupkg", data), unsigned, data)


def test_bytes_after_the_end_record_are_hashed(world: signed.World) -> None:
    unsigned = zipkit.build_zip(entries(), comment=b"comment", trailing=b"TRAILING BYTES")
    signed_bytes = world.sign_bytes("trailing", unsigned).read_bytes()
    assert_valid_and_faithful(judge_all(world, "trailing-check.nupkg", signed_bytes), unsigned, signed_bytes)
    tampered = signed_bytes[:-1] + b"?"
    assert_invalid_everywhere(judge_all(world, "trailing-bad.nupkg", tampered), "NU3008")


def test_bytes_between_central_directory_and_end_record(world: signed.World) -> None:
    """Our signer refuses the layout. Placed by hand, the gap is hashed verbatim (our verdict: valid,
    files unchanged). NuGet reads the end record where the gap starts, so it would say NU3008: a
    documented difference, never a false `valid`."""
    unsigned = zipkit.build_zip(entries(), between_cd_and_eocd=b"GAP!")
    with pytest.raises(SigningError):
        world.sign_bytes("cdgap", unsigned)
    _, data = hand_signed(world, entries(), between_cd_and_eocd=b"GAP!")
    assert zipkit.nuget_hash(data) != hashlib.sha256(unsigned).digest()
    assert_valid_and_faithful(judge_all(world, "cdgap.nupkg", data), unsigned, data)


def test_data_descriptors(world: signed.World) -> None:
    items = entries()
    items[2].descriptor = True
    items[1].descriptor = True  # stored with a descriptor: streaming unzips cannot read it; hashed anyway
    unsigned = zipkit.build_zip(items)
    signed_bytes = world.sign_bytes("dd", unsigned).read_bytes()
    assert_valid_and_faithful(judge_all(world, "dd-check.nupkg", signed_bytes), unsigned, signed_bytes)


@pytest.mark.parametrize(("counts", "what"), [((4, 4), "one too many"), ((2, 2), "one too few"),
                                              ((3, 4), "disks disagree"), ((0xFFFF, 0xFFFF), "ZIP64 marker")])
def test_entry_count_mismatch_is_unreadable(world: signed.World, counts: tuple[int, int], what: str) -> None:
    """.NET's ZipArchive refuses these archives, so no NuGet verdict exists: ours is TP0003 everywhere."""
    _, data = hand_signed(world, entries(), eocd_counts=(min(counts[0] + 1, 0xFFFF), min(counts[1] + 1, 0xFFFF)))
    assert_invalid_everywhere(judge_all(world, "count.nupkg", data), "TP0003")
    unsigned = zipkit.build_zip(entries(), eocd_counts=counts)
    assert_invalid_everywhere(judge_all(world, "count-unsigned.nupkg", unsigned), "TP0003")


@pytest.mark.parametrize("where", ["cd extra", "lfh extra", "locator"])
def test_zip64_is_refused(world: signed.World, where: str) -> None:
    """docs/format.md 2.4: the signer refuses (NU3006); placed by hand, verification fails in every mode."""
    items = entries()
    options: dict = {}
    zip64_extra = struct.pack("<HHQQ", 0x0001, 16, 120, 120)
    if where == "cd extra":
        items[1].extra, items[1].lfh_extra = zip64_extra, b""
    elif where == "lfh extra":
        items[1].lfh_extra = zip64_extra
    else:
        options["zip64_locator"] = True
    unsigned = zipkit.build_zip(zipkit.copy_entries(items), **options)
    with pytest.raises(SigningError) as refused:
        world.sign_bytes("zip64", unsigned)
    assert refused.value.code == "NU3006"
    _, data = hand_signed(world, items, **options)
    assert_invalid_everywhere(judge_all(world, "zip64.nupkg", data), "NU3006", "NU3008")


def test_oracles_can_fail(world: signed.World) -> None:
    """The extraction oracles see a changed file, a hidden entry and a moved record."""
    unsigned = zipkit.build_zip(entries())
    other = entries()
    other[1].data = b"a" * 120
    assert zipkit.cd_extract(zipkit.build_zip(other)) != zipkit.cd_extract(unsigned)
    assert zipkit.stream_extract(zipkit.build_zip(other)) != zipkit.stream_extract(unsigned)
    with pytest.raises(AssertionError):
        assert_valid_and_faithful({}, unsigned, zipkit.build_zip(other))
    assert zipkit.nuget_hash(zipkit.build_zip(entries() + [zipkit.signature_entry(b"x")])) == \
        hashlib.sha256(unsigned).digest()
    assert Path(world.unsigned).exists()
