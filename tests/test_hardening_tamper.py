"""Issue 6.1: tamper detection is total.

Real signed packages (author, repository, author + repository countersignature; TestPKI, a timestamp
server on 127.0.0.1, trustpolicy._internal.sign) verified by the engine in ACCEPT, REQUIRE and VERIFY with the
test roots trusted and revocation off, after every single-byte change:

- outside `.signature.p7s` (every byte of a ~1 KB package, and a sample of a 220 KB one): the
  package hash covers every byte except the signature entry's own local header and central record,
  and the EOCD fields it patches (docs/format.md 4.2), so the package is invalid in every mode: NU3008, or
  TP0003 when the change breaks the zip so no reader opens it (.NET's ZipArchive refuses those too).
- the signature entry's own headers: fields NuGet checks (name, flags, method, sizes, external
  attributes, lengths, offset) give NU3005 / NU3003 / NU3004 (no longer signed): invalid in REQUIRE and
  VERIFY, and in ACCEPT at most a warning with no signature vouched for (accept mode lets an
  "illegal" or missing signature through, docs/verification.md 6). Fields nothing reads (versions, DOS time,
  CRC-32, disk number, internal attributes) change nothing at all: they are listed below.
- inside the signature: never `valid` with another signer, another signed hash, or another timestamp
  time. Either invalid with a code, the same verdict (the bytes nothing signs or checks: listed in
  HARMLESS), a timestamp dropped (an unsigned attribute; NU3027 then), or (ACCEPT only) an illegal
  signature reduced to a warning.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from pathlib import Path

import pytest
from asn1crypto import cms
from fuzz import signed, zipkit
from fuzz.signed import judge

from trustpolicy._internal.archive import PackageArchive
from trustpolicy.models import PackageVerdict, Status, StepResult

PRESETS = tuple(signed.PRESETS)

# Signature-entry header fields NuGet never reads when verifying (docs/format.md 2.2: the CRC is not checked).
UNCHECKED = {"sig.lfh.version", "sig.lfh.time", "sig.lfh.date", "sig.lfh.crc", "sig.cd.made_by", "sig.cd.version",
             "sig.cd.time", "sig.cd.date", "sig.cd.crc", "sig.cd.disk", "sig.cd.internal"}
HEADER = re.compile(r"(entry|sig)\.(lfh|cd)\.(?!name|extra|comment)|eocd\.(?!comment$)")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> signed.World:
    return signed.world(tmp_path_factory.mktemp("hardening"))


def mutated(world: signed.World, data: bytes, pos: int, delta: int) -> Path:
    b = bytearray(data)
    b[pos] ^= delta
    return world.write("tampered.nupkg", bytes(b))


def codes(verdict: PackageVerdict, level: str = "error") -> set[str]:
    return set(verdict.codes(level))


# --- outside the signature data: every byte ---------------------------------------------------------


def check_outside(world: signed.World, package: Path, positions: list[int] | None = None) -> Counter[str]:
    data = package.read_bytes()
    labels = zipkit.layout(data)
    originals = {p: world.verify(package, p) for p in PRESETS}
    assert all(v.verdict == "valid" for v in originals.values()), originals
    tally: Counter[str] = Counter()
    for pos in positions if positions is not None else range(len(data)):
        label = labels[pos]
        if label == "sig.data":
            continue
        for delta in (0x01, 0xFF) if HEADER.match(label) else (0x01,):
            path = mutated(world, data, pos, delta)
            for preset in PRESETS:
                verdict = world.verify(path, preset)
                where = f"{package.name} byte {pos} ({label}) ^{delta:#x} {preset}: {verdict.verdict} {verdict.issues}"
                tally["verifications"] += 1
                if not label.startswith("sig."):  # hashed: invalid everywhere
                    assert verdict.verdict == "invalid", where
                    assert codes(verdict) and codes(verdict) <= {"NU3008", "TP0003"}, where
                    if label.endswith(("data", "descriptor", "comment")):
                        assert "NU3008" in codes(verdict), where
                    tally[f"hashed:{min(codes(verdict))}"] += 1
                elif label in UNCHECKED:  # nothing reads it: nothing changes
                    assert (verdict.verdict, verdict.signatures, verdict.issues) == (
                        "valid", originals[preset].signatures, originals[preset].issues), where
                    tally["unchecked:same"] += 1
                elif verdict.verdict == "invalid":
                    assert codes(verdict) and codes(verdict) <= {"NU3003", "NU3004", "NU3005", "NU3008", "TP0003"}, where
                    tally[f"sig-header:{min(codes(verdict))}"] += 1
                else:  # accept mode only: an illegal or missing signature is a warning, and nothing is vouched for
                    assert preset == "accept" and not verdict.signatures, where
                    assert codes(verdict, "warning") <= {"NU3003", "NU3005"} and not verdict.errors, where
                    tally["sig-header:accept-without-signature"] += 1
            tally["mutations"] += 1
    return tally


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["author", "repository", "countersigned"])
def test_every_byte_outside_the_signature_is_covered(world: signed.World, kind: str) -> None:
    tally = check_outside(world, getattr(world, kind))
    print(f"\n[tamper] {kind}: {dict(tally)}")
    assert tally["mutations"] > 1000 and tally["hashed:NU3008"] > 900


@pytest.mark.slow
def test_random_bytes_of_a_larger_package_are_covered(world: signed.World) -> None:
    data = world.large.read_bytes()
    labels = zipkit.layout(data)
    rng = random.Random(20240517)
    outside = [i for i, label in enumerate(labels) if label != "sig.data"]
    headers = [i for i in outside if not labels[i].endswith("data")]
    positions = sorted(set(rng.sample(outside, 300) + rng.sample(headers, 100)))
    tally = check_outside(world, world.large, positions)
    print(f"\n[tamper] large ({len(data)} bytes): {dict(tally)}")
    assert tally["mutations"] >= 350


# --- inside the signature -------------------------------------------------------------------------------


def harmless_fields(der: bytes) -> dict[tuple[int, ...], str]:
    """DER nodes of a signature that nothing signs or checks, so any change inside them keeps the verdict.

    Per SignedData (the package's and the timestamp token's): its version, the digestAlgorithms set
    (NuGet ignores it), the SignerInfo version, the NULL parameters of its algorithm identifiers, a
    trust anchor's own copy (chains end at the trust store's root), and the eContentType OID of the
    package signature (see the report: RFC 5652 11.1 wants it compared with content-type).
    """
    info = cms.ContentInfo.load(der)
    token_at = (0, 1, 0, 4, 0, 6, 0, 1, 0)  # unsigned attribute 0 (the timestamp), its first value
    token = info["content"]["signer_infos"][0]["unsigned_attrs"][0]["values"][0]
    nodes: dict[tuple[int, ...], str] = {}
    for name, at, content in (("package", (0,), info), ("token", token_at, token)):
        sd = at + (1, 0)  # ContentInfo [0] -> SignedData
        nodes[sd + (0,)] = f"{name} SignedData version"
        nodes[sd + (1,)] = f"{name} digestAlgorithms"
        nodes[sd + (4, 0, 0)] = f"{name} SignerInfo version"
        nodes[sd + (4, 0, 2, 1)] = f"{name} digest algorithm parameters"
        nodes[sd + (4, 0, 4, 1)] = f"{name} signature algorithm parameters"
        for index, choice in enumerate(content["content"]["certificates"]):
            if choice.chosen.self_signed:
                nodes[sd + (3, index)] = f"{name} trust anchor copy"
    nodes[(0, 1, 0, 2, 0)] = "package eContentType"
    return nodes


def harmless_at(der: bytes) -> list[str | None]:
    """Per byte: the harmless field it lies in, or None."""
    fields = harmless_fields(der)
    out: list[str | None] = []
    for path, _ in zipkit.der_nodes(der):
        out.append(next((what for at, what in fields.items() if path[: len(at)] == at), None))
    return out


@pytest.mark.slow
def test_every_byte_of_the_signature(world: signed.World) -> None:
    """VERIFY sees every byte; ACCEPT and REQUIRE every third byte each (together: every byte twice)."""
    data = world.author.read_bytes()
    der = PackageArchive.open(world.author).read_signature()
    start = data.index(der)
    harmless = harmless_at(der)
    originals = {p: world.verify(world.author, p) for p in PRESETS}
    tally: Counter[str] = Counter()
    unexplained = []
    for i in range(len(der)):
        path = mutated(world, data, start + i, 0x01)
        for preset in ("verify", "accept" if i % 3 == 1 else "require" if i % 3 == 2 else None):
            if preset is None:
                continue
            verdict = world.verify(path, preset)
            outcome = judge(originals[preset], verdict, preset)
            assert not outcome.startswith("BAD"), f"signature byte {i} {preset}: {outcome}"
            tally[f"{preset}:{outcome}"] += 1
            if outcome == "same":
                tally[f"same-in:{harmless[i]}"] += 1
                if harmless[i] is None:
                    unexplained.append((i, preset))
    print(f"\n[tamper] signature of {len(der)} bytes: {dict(tally)}")
    assert not unexplained, f"bytes whose change nothing notices, outside the known harmless fields: {unexplained}"
    assert tally["verify:invalid"] > len(der) // 2


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["repository", "countersigned"])
def test_sampled_bytes_of_other_signatures(world: signed.World, kind: str) -> None:
    package = getattr(world, kind)
    data = package.read_bytes()
    der = PackageArchive.open(package).read_signature()
    start = data.index(der)
    originals = {p: world.verify(package, p) for p in PRESETS}
    rng = random.Random(kind)
    tally: Counter[str] = Counter()
    for i in sorted(rng.sample(range(len(der)), 400)):
        path = mutated(world, data, start + i, rng.choice([0x01, 0x80, 0xFF]))
        preset = PRESETS[i % 3]
        outcome = judge(originals[preset], world.verify(path, preset), preset)
        assert not outcome.startswith("BAD"), f"{kind} signature byte {i} {preset}: {outcome}"
        tally[f"{preset}:{outcome}"] += 1
    print(f"\n[tamper] {kind} signature sample: {dict(tally)}")


def test_the_judge_can_fail(world: signed.World) -> None:
    """The oracle itself catches another signer, a lost signature in REQUIRE, and a coded error missing."""
    original = world.verify(world.no_timestamp, "accept")
    assert judge(original, world.verify(world.no_timestamp, "accept"), "accept") == "same"
    assert judge(original, world.verify(world.other_signer, "accept"), "accept").startswith("BAD: another signer")
    stripped = PackageVerdict(original.path, None, None, True, original.steps)  # valid, no signatures
    assert stripped.passed and judge(original, stripped, "require").startswith("BAD: valid without signatures")
    # An invalid verdict without a coded error cannot be built: the model adds one (PackageVerdict.issues).
    silent = PackageVerdict(original.path, None, None, True, (StepResult("trust", Status.DISALLOWED),))
    assert silent.codes("error") == ["TP0004"] and judge(original, silent, "verify") == "invalid"
