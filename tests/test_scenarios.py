"""Conformance scenarios 1-88 of docs/scenarios.md, one test each, on packages built here.

Every package is signed for real by trustpolicy._internal.sign with the session's test PKI, timestamped by a
TimestampServer on 127.0.0.1, and (for revocation) checked against CRLs served on 127.0.0.1.
Scenarios NuGet expresses with restore-only machinery are noted where they would be, with why.
Scenarios 89-104 (configuration parsing, trust command) belong to the config and trust tests.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import warnings
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from datafiles import ZIP_EDGE
from test_verify_support import (  # noqa: F401 - `world` is a fixture
    SERVICE_INDEX,
    World,
    add_unsigned,
    assemble,
    author_attributes,
    entry,
    later,
    map_countersignature,
    patch,
    primary_info,
    raw_token,
    read_signature,
    replace_signature,
    timestamp_attribute,
    with_bad_signature,
    with_signer_info,
    world,
)

from trustpolicy._internal import clock
from trustpolicy._internal.archive import PackageArchive, hash_file, insert_signature, strip_signature
from trustpolicy._internal.config import load_trust_settings
from trustpolicy._internal.sign import (
    RepositoryOptions,
    attribute,
    make_signer_info,
    sign_package,
    signature_content,
    signing_certificate_v2,
    signing_time_value,
)
from trustpolicy._internal.signature import fingerprint, parse_signature
from trustpolicy._internal.verify import (
    ACCEPT,
    REQUIRE,
    VERIFY,
    AllowList,
    AllowListEntry,
    CountersignatureBehavior,
    RepositorySignatures,
    SignaturePlacement,
    VerificationTarget,
)
from trustpolicy.errors import SigningError
from trustpolicy.models import PackageVerdict, Status
from trustpolicy.testing.pki import CODE_SIGNING, LIFETIME_SIGNING, Issued
from trustpolicy.testing.tsa import TimestampServer

NG = ACCEPT.replace(allow_unsigned=False, allow_untrusted=False)  # nuget.org-like (docs/scenarios.md legend)
REPO = RepositoryOptions(SERVICE_INDEX)
COUNTERSIGNATURE_ONLY = dict(
    verification_target=VerificationTarget.REPOSITORY,
    signature_placement=SignaturePlacement.COUNTERSIGNATURE,
)


def pairs(verdict: PackageVerdict) -> list[tuple[str, str]]:
    return [(issue.code, issue.level) for issue in verdict.issues]


def errors(verdict: PackageVerdict) -> list[str]:
    return verdict.codes("error")


def step(verdict: PackageVerdict, name: str) -> Status:
    return next(s.status for s in verdict.steps if s.step == name)


def fp(issued: Issued) -> str:
    return fingerprint(issued.asn1)


def config(tmp_path: Path, signers: str, mode: str | None = None, name: str = "NuGet.Config"):  # type: ignore[no-untyped-def]
    """TrustSettings of a NuGet.Config holding `signers` (and signatureValidationMode)."""
    mode_xml = f'<config><add key="signatureValidationMode" value="{mode}" /></config>' if mode else ""
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'<?xml version="1.0" encoding="utf-8"?>\n<configuration>{mode_xml}'
                    f"<trustedSigners>{signers}</trustedSigners></configuration>\n", encoding="utf-8")
    return load_trust_settings(configfile=str(path))


def cert_xml(fingerprint_hex: str, allow_untrusted_root: bool = False) -> str:
    return (f'<certificate fingerprint="{fingerprint_hex}" hashAlgorithm="SHA256" '
            f'allowUntrustedRoot="{str(allow_untrusted_root).lower()}" />')


def author_xml(name: str, fingerprint_hex: str, allow_untrusted_root: bool = False) -> str:
    return f'<author name="{name}">{cert_xml(fingerprint_hex, allow_untrusted_root)}</author>'


def repository_xml(name: str, fingerprint_hex: str, owners: str | None = None, allow_untrusted_root: bool = False) -> str:
    owners_xml = f"<owners>{owners}</owners>" if owners is not None else ""
    return (f'<repository name="{name}" serviceIndex="{SERVICE_INDEX}">'
            f"{cert_xml(fingerprint_hex, allow_untrusted_root)}{owners_xml}</repository>")


def rebuild(source: Path, dest: Path, change) -> Path:  # type: ignore[no-untyped-def]
    """Copy a zip entry by entry (the signature entry stays stored and intact); change(name, data)
    returns the new data, or None to drop the entry."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            data = change(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info, data)
    # zipfile gives every entry it writes non-zero external attributes; NuGet's signature entry has 0
    patch(dest, entry(dest, b".signature.p7s").cd_offset + 38, b"\0\0\0\0")
    return dest


DLL = "lib/net8.0/Test.dll"


# =================================================================================================
# Unsigned, archive and format
# =================================================================================================


def test_scenario_01_unsigned_accept(world: World) -> None:
    verdict = world.verifier(ACCEPT).verify_package(world.unsigned())
    assert verdict.verdict == "valid" and verdict.signed is False and verdict.issues == ()


def test_scenario_02_unsigned_require(world: World) -> None:
    verdict = world.verifier(REQUIRE, require_non_empty=True).verify_package(world.unsigned())
    assert verdict.verdict == "invalid" and pairs(verdict) == [("NU3004", "error")]
    assert verdict.issues[0].message.startswith("signatureValidationMode is set to require")


def test_scenario_03_unsigned_verify(world: World) -> None:
    verdict = world.verifier(VERIFY).verify_package(world.unsigned())
    assert verdict.verdict == "invalid" and pairs(verdict) == [("NU3004", "error")]


def test_scenario_04_unsigned_from_all_repository_signed_source(world: World) -> None:
    source = RepositorySignatures(all_repository_signed=True, fingerprints=(fp(world.repository_leaf),))
    verdict = world.verifier(ACCEPT, repository=source).verify_package(world.unsigned())
    assert verdict.verdict == "invalid" and pairs(verdict) == [("NU3004", "error")]
    assert "all its packages are repository signed" in verdict.issues[0].message


def deflated_signature(world: World) -> Path:
    """A signed package whose .signature.p7s entry is deflated (as restore met it in scenario 5)."""
    signed = world.sign()
    dest = world.path("deflated")
    with zipfile.ZipFile(signed) as zin, zipfile.ZipFile(dest, "w") as zout:
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename == ".signature.p7s":
                info.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(info, data)
    return dest


def test_scenario_05_deflated_signature_entry_accept_warns(world: World) -> None:
    for package in (deflated_signature(world), ZIP_EDGE / "SignatureFileWithDeflateCompressionMethodAndDefaultCompressionLevel.zip"):
        verdict = world.verifier(ACCEPT).verify_package(package)
        assert verdict.verdict == "valid" and pairs(verdict) == [("NU3005", "warning")]
        assert "compression method is 8" in verdict.issues[0].message


# Scenario 6 (the same with TreatWarningsAsErrors): an MSBuild/restore switch that turns every
# warning into an error. trustpolicy has no such switch; its callers can read the warning levels.


def test_scenario_07_deflated_signature_entry_require_fails(world: World) -> None:
    verdict = world.verifier(REQUIRE).verify_package(deflated_signature(world))
    assert verdict.verdict == "invalid" and pairs(verdict) == [("NU3005", "error")]


@pytest.mark.parametrize("field", ["external attributes", "flags", "sizes"])
def test_scenario_08_signature_entry_header_fields(world: World, field: str) -> None:
    package = world.sign()
    sig = entry(package, b".signature.p7s")
    if field == "external attributes":
        patch(package, sig.cd_offset + 38, struct.pack("<I", 0x20))
    elif field == "flags":
        patch(package, sig.cd_offset + 8, struct.pack("<H", 0x0002))
    else:
        patch(package, sig.cd_offset + 20, struct.pack("<I", sig.compressed_size + 1))
    for settings, level, verdict_expected in ((ACCEPT, "warning", "valid"), (REQUIRE, "error", "invalid"),
                                              (VERIFY, "error", "invalid")):
        verdict = world.verifier(settings).verify_package(package)
        assert pairs(verdict) == [("NU3005", level)] and verdict.verdict == verdict_expected


def test_scenario_09_two_signature_entries(world: World) -> None:
    package = world.sign()
    data = read_signature(package)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about the duplicate name: that is the point
        with zipfile.ZipFile(package, "a") as z:
            z.writestr(zipfile.ZipInfo(".signature.p7s"), data)
    verdict = world.verifier(VERIFY).verify_package(package)
    assert verdict.verdict == "invalid" and pairs(verdict) == [("NU3005", "error")]
    assert "multiple" in verdict.issues[0].message


def test_scenario_10_uppercase_signature_name_is_unsigned(world: World) -> None:
    package = ZIP_EDGE / "SignatureFileWithUppercaseFileName.zip"
    accepted = world.verifier(ACCEPT).verify_package(package)
    assert accepted.verdict == "valid" and accepted.signed is False and accepted.issues == ()
    assert pairs(world.verifier(VERIFY).verify_package(package)) == [("NU3004", "error")]


def test_scenario_11_utf8_flagged_signature_name(world: World) -> None:
    package = world.sign()
    sig = entry(package, b".signature.p7s")
    patch(package, sig.cd_offset + 8, struct.pack("<H", 0x0800))
    patch(package, sig.lfh_offset + 6, struct.pack("<H", 0x0800))
    assert not PackageArchive.open(package).is_signed  # not the signature entry for the reader...
    verdict = world.verifier(VERIFY).verify_package(package)
    assert verdict.signed is True and pairs(verdict) == [("NU3005", "error")]  # ...yet the package is signed
    assert pairs(world.verifier(ACCEPT).verify_package(package)) == [("NU3005", "warning")]


def test_scenario_12_signature_not_cms(world: World) -> None:
    ours = replace_signature(world.sign(), b"this is not a CMS signature", world.path("fake"))
    for package in (ZIP_EDGE / "SignatureFileWithFakeContent.zip", ours):
        for settings in (REQUIRE, VERIFY):
            verdict = world.verifier(settings).verify_package(package)
            assert verdict.verdict == "invalid" and pairs(verdict) == [("NU3003", "error")]
        accepted = world.verifier(ACCEPT).verify_package(package)
        assert accepted.verdict == "valid" and pairs(accepted) == [("NU3003", "warning")]


def test_scenario_13_two_signer_infos(world: World) -> None:
    package = world.unsigned()
    content = signature_content("sha256", hash_file(package, "sha256"))
    leaf = world.pki.leaf
    infos = [make_signer_info(leaf.certificate, leaf.private_key, "sha256", author_attributes(leaf.certificate, content))
             for _ in range(2)]
    dest = world.path("two-signers")
    insert_signature(package, assemble(content, infos, leaf.chain), dest)
    verdict = world.verifier(VERIFY).verify_package(dest)
    assert verdict.verdict == "invalid" and pairs(verdict) == [("NU3009", "error")]


def _content_with(package: Path, text: str) -> bytes:
    digest = base64.b64encode(hash_file(package, "sha256")).decode()
    return text.format(hash=digest).encode()


def test_scenario_14_content_version_2(world: World) -> None:
    package = world.unsigned()
    signed = world.forge(world.pki.leaf, package=package,
                         content=_content_with(package, "Version:2\n\n2.16.840.1.101.3.4.2.1-Hash:{hash}\n\n"))
    assert pairs(world.verifier(VERIFY).verify_package(signed)) == [("NU3007", "error")]
    assert world.verifier(ACCEPT).verify_package(signed).verdict == "valid"


def test_scenario_15_sha1_content_hash(world: World) -> None:
    package = world.unsigned()
    signed = world.forge(world.pki.leaf, package=package,
                         content=_content_with(package, "Version:1\n\n1.3.14.3.2.26-Hash:{hash}\n\n"))
    verdict = world.verifier(VERIFY).verify_package(signed)
    assert verdict.verdict == "invalid" and pairs(verdict) == [("NU3000", "error")]


def test_scenario_16_zip64(world: World, tmp_path: Path) -> None:
    from test_verify_support import identity_of

    for name in ("EmptyZip64.zip", "CentralDirectoryHeaderWithZip64ExtraField.zip", "LocalFileHeaderWithZip64ExtraField.zip"):
        assert PackageArchive.open(ZIP_EDGE / name).is_zip64()
        with pytest.raises(SigningError) as refused:
            sign_package(ZIP_EDGE / name, identity=identity_of(world.pki.leaf), output=tmp_path / name,
                         on_warning=lambda w: None)
        assert refused.value.code == "NU3006"
    # A signed package that became ZIP64 (an entry's extra field now says so): the verifier refuses it.
    source = world.unsigned()
    with zipfile.ZipFile(source, "a") as z:
        info = zipfile.ZipInfo("extra.txt")
        info.extra = struct.pack("<HH", 0x5455, 5) + b"\x01\x00\x00\x00\x00"  # extended timestamp
        z.writestr(info, b"payload")
    package = world.sign(package=source)
    extra_at = entry(package, b"extra.txt").lfh_offset + 30 + len(b"extra.txt")
    patch(package, extra_at, struct.pack("<H", 0x0001))  # the LFH extra block now has the ZIP64 id
    assert PackageArchive.open(package).is_zip64()
    for settings in (ACCEPT, VERIFY):
        verdict = world.verifier(settings).verify_package(package)
        assert verdict.verdict == "invalid" and "NU3006" in errors(verdict)


# =================================================================================================
# Integrity
# =================================================================================================


def test_scenario_17_valid_signed_package(world: World) -> None:
    verdict = world.verifier(VERIFY).verify_package(world.sign())
    assert verdict.verdict == "valid" and verdict.issues == ()
    assert [s.status for s in verdict.steps] == [Status.VALID] * len(verdict.steps)


def assert_tampered(world: World, package: Path) -> None:
    for settings in (ACCEPT, REQUIRE, VERIFY):
        verdict = world.verifier(settings).verify_package(package)
        assert verdict.verdict == "invalid"
        assert ("NU3008", "error") in pairs(verdict)
        assert step(verdict, "integrity") == Status.SUSPECT


def test_scenario_18_file_added_after_signing(world: World) -> None:
    package = world.sign()
    with zipfile.ZipFile(package, "a") as z:
        z.writestr("added.txt", b"added after signing")
    assert_tampered(world, package)


def test_scenario_19_file_deleted(world: World) -> None:
    package = world.sign()
    assert_tampered(world, rebuild(package, world.path("deleted"), lambda name, data: None if name == DLL else data))


def test_scenario_20_bytes_appended_to_a_file(world: World) -> None:
    package = world.sign()
    assert_tampered(world, rebuild(package, world.path("appended"), lambda n, d: d + b"more" if n == DLL else d))


def test_scenario_21_file_truncated(world: World) -> None:
    package = world.sign()
    assert_tampered(world, rebuild(package, world.path("truncated"), lambda n, d: d[:-16] if n == DLL else d))


def test_scenario_22_file_metadata_modified(world: World) -> None:
    package = world.sign()
    dll = entry(package, DLL.encode())
    patch(package, dll.lfh_offset + 10, struct.pack("<H", 0x1234))  # the local header's DOS time
    assert_tampered(world, package)


def test_scenario_23_signature_entry_removed_is_unsigned(world: World) -> None:
    bare = world.path("stripped")
    strip_signature(world.sign(), bare)
    assert world.verifier(ACCEPT).verify_package(bare).issues == ()
    assert pairs(world.verifier(REQUIRE).verify_package(bare)) == [("NU3004", "error")]
    assert pairs(world.verifier(VERIFY).verify_package(bare)) == [("NU3004", "error")]


def test_scenario_24_signature_bytes_tampered(world: World) -> None:
    from trustpolicy._internal.sign import SigningIdentity

    leaf = world.pki.leaf  # no root in the certificate set: every byte left there is used
    identity = SigningIdentity(leaf.certificate, leaf.private_key, (world.pki.intermediate.certificate,))
    package = sign_package(world.unsigned(), identity=identity, output=world.path("to-tamper"), on_warning=lambda w: None)
    der = read_signature(package)
    info = primary_info(der)
    targets = {
        "signature value": der.rindex(info["signature"].contents) + 7,
        "signed attributes": der.index(info["signed_attrs"].contents) + 20,
        "signer certificate": der.index(leaf.der) + 200,
        "content": der.index(b"Version:1") + 40,
        "outer length": 3,
    }
    for where, offset in targets.items():
        tampered = bytearray(der)
        tampered[offset] ^= 0x01
        dest = replace_signature(package, bytes(tampered), world.path("tampered"))
        for settings in (REQUIRE, VERIFY):
            verdict = world.verifier(settings).verify_package(dest)
            assert verdict.verdict == "invalid", where
            assert set(errors(verdict)) & {"NU3003", "NU3011", "NU3012", "NU3008", "NU3000"}, (where, pairs(verdict))


def test_scenario_25_tampered_package_accept(world: World) -> None:
    package = world.sign(timestamp=False)
    tampered = rebuild(package, world.path("tampered"), lambda n, d: d + b"!" if n == DLL else d)
    verdict = world.verifier(ACCEPT).verify_package(tampered)
    assert verdict.verdict == "invalid"
    assert pairs(verdict) == [("NU3008", "error"), ("NU3027", "warning")]


def test_scenario_26_tampered_repository_package_trust_step_alone_is_valid(world: World) -> None:
    package = world.sign(world.repository_leaf, repository=REPO)
    tampered = rebuild(package, world.path("tampered-repo"), lambda n, d: d + b"!" if n == DLL else d)
    verdict = world.verifier(VERIFY).verify_package(tampered)
    assert step(verdict, "trust") == Status.VALID  # the trust step does not look at the content
    assert step(verdict, "integrity") == Status.SUSPECT and verdict.verdict == "invalid"


# =================================================================================================
# Certificate rules (NuGet's signer refuses these certificates, so the signature is built directly)
# =================================================================================================


def assert_certificate_rule(world: World, signer: Issued, code: str) -> None:
    package = world.forge(signer, timestamp=world.tsa)
    for settings in (REQUIRE, VERIFY):
        verdict = world.verifier(settings).verify_package(package)
        assert verdict.verdict == "invalid" and (code, "error") in pairs(verdict)
        assert step(verdict, "trust") == Status.DISALLOWED
    accepted = world.verifier(ACCEPT).verify_package(package)
    # accept mode: the message is a warning, but the status still rejects the package
    assert (code, "warning") in pairs(accepted)
    assert step(accepted, "trust") == Status.DISALLOWED and accepted.verdict == "invalid"


def test_scenario_27_short_rsa_key(world: World) -> None:
    assert_certificate_rule(world, world.pki.issue_code_signing("Short Key", key_size=1024), "NU3014")


def test_scenario_28_sha1_certificate(world: World) -> None:
    assert_certificate_rule(world, world.pki.issue_code_signing("SHA-1 Signed", hash_algorithm="sha1"), "NU3013")


def test_scenario_29_lifetime_signing_eku(world: World) -> None:
    signer = world.pki.issue_code_signing("Lifetime", eku=[LIFETIME_SIGNING, CODE_SIGNING])
    assert_certificate_rule(world, signer, "NU3015")


def test_scenario_30_certificate_not_yet_valid(world: World) -> None:
    now = clock.now()
    signer = world.pki.issue_code_signing("Future", not_before=now + timedelta(days=10), not_after=now + timedelta(days=100))
    package = world.forge(signer, signing_time=now + timedelta(days=11))
    verdict = world.verifier(VERIFY).verify_package(package)
    assert ("NU3017", "error") in pairs(verdict) and step(verdict, "trust") == Status.DISALLOWED


@pytest.mark.parametrize("variant", ["v2 missing", "v1 present"])
def test_scenario_31_signing_certificate_attribute(world: World, variant: str) -> None:
    package = world.unsigned()
    content = signature_content("sha256", hash_file(package, "sha256"))
    leaf = world.pki.leaf
    attrs = author_attributes(leaf.certificate, content, signing_certificate="none" if variant == "v2 missing" else "both")
    info = make_signer_info(leaf.certificate, leaf.private_key, "sha256", attrs)
    dest = world.path("signing-certificate")
    insert_signature(package, assemble(content, [info], leaf.chain), dest)
    verdict = world.verifier(VERIFY).verify_package(dest)
    assert verdict.verdict == "invalid" and pairs(verdict) == [("NU3011", "error")]


def test_scenario_32_signature_value_does_not_verify(world: World) -> None:
    package = world.sign()
    der = read_signature(package)
    broken = replace_signature(package, with_signer_info(der, with_bad_signature(primary_info(der))), world.path("bad-sig"))
    verdict = world.verifier(VERIFY).verify_package(broken)
    assert ("NU3012", "error") in pairs(verdict) and step(verdict, "trust") == Status.DISALLOWED
    assert "validation failed" in next(i.message for i in verdict.issues if i.code == "NU3012")


# =================================================================================================
# Trust, expiry and timestamps
# =================================================================================================


def test_scenario_33_no_timestamp_verify_warns(world: World) -> None:
    verdict = world.verifier(VERIFY).verify_package(world.sign(timestamp=False))
    assert verdict.verdict == "valid" and pairs(verdict) == [("NU3027", "warning")]


def test_scenario_34_trusted_timestamp(world: World) -> None:
    verdict = world.verifier(VERIFY).verify_package(world.sign())
    assert verdict.verdict == "valid" and verdict.issues == ()
    assert verdict.signatures[0].timestamp is not None


@pytest.mark.parametrize(("signature_hash", "timestamp_hash"), [("sha256", "sha512"), ("sha384", "sha256")])
def test_scenario_35_timestamp_with_another_hash_algorithm(world: World, signature_hash: str, timestamp_hash: str) -> None:
    package = world.sign(hash_algorithm=signature_hash, timestamp_hash_algorithm=timestamp_hash)
    verdict = world.verifier(VERIFY).verify_package(package)
    assert verdict.verdict == "valid" and verdict.issues == ()


def test_scenario_36_no_timestamp_when_required(world: World) -> None:
    package = world.sign(timestamp=False)
    strict = world.verifier(REQUIRE.replace(allow_no_timestamp=False)).verify_package(package)
    assert ("NU3027", "error") in pairs(strict) and step(strict, "trust") == Status.DISALLOWED
    relaxed = world.verifier(REQUIRE).verify_package(package)
    assert pairs(relaxed) == [("NU3027", "warning")] and step(relaxed, "trust") == Status.VALID


def two_timestamps(world: World) -> Path:
    package = world.forge(world.pki.leaf)
    der = read_signature(package)
    info = primary_info(der)
    value = info["signature"].native
    tokens = [raw_token(world.tsa, value), raw_token(world.tsa, value, "sha384")]
    return replace_signature(package, with_signer_info(der, add_unsigned(info, [timestamp_attribute(*tokens)])),
                             world.path("two-timestamps"))


def test_scenario_37_two_timestamps_not_allowed(world: World) -> None:
    package = two_timestamps(world)
    assert len(parse_signature(read_signature(package)).timestamps) == 2
    verdict = world.verifier(VERIFY.replace(allow_multiple_timestamps=False)).verify_package(package)
    assert ("NU3000", "error") in pairs(verdict) and step(verdict, "trust") == Status.DISALLOWED
    assert "multiple timestamps" in next(i.message for i in verdict.issues if i.code == "NU3000")


def test_scenario_38_two_timestamps_in_every_preset(world: World) -> None:
    package = two_timestamps(world)
    for settings in (ACCEPT, REQUIRE, VERIFY):
        verdict = world.verifier(settings).verify_package(package)
        assert verdict.verdict == "valid" and verdict.issues == ()


def expiring(world: World, label: str, days: float = 2, **knobs) -> Issued:  # type: ignore[no-untyped-def]
    """A trusted code-signing certificate that expires `days` from now."""
    return world.pki.issue_code_signing(label, not_after=clock.now() + timedelta(days=days), **knobs)


def test_scenario_39_expired_certificate_timestamp_inside_validity(world: World) -> None:
    package = world.sign(expiring(world, "Expires Soon"))
    verdict = world.verifier(VERIFY, at=later(30)).verify_package(package)
    assert verdict.verdict == "valid" and verdict.issues == ()


def test_scenario_40_timestamp_accuracy_straddles_expiry(world: World) -> None:
    signer = world.pki.issue_code_signing("Expires In Seconds", not_after=clock.now() + timedelta(seconds=20))
    with TimestampServer(world.pki.tsa, accuracy=timedelta(seconds=30)) as tsa:
        package = world.sign(signer, timestamp=tsa)
    verdict = world.verifier(VERIFY, at=later(1)).verify_package(package)
    assert verdict.verdict == "invalid" and errors(verdict) == ["NU3037"]


def test_scenario_41_expired_without_timestamp_require(world: World) -> None:
    package = world.sign(expiring(world, "Expires, no timestamp (R)"), timestamp=False)
    verdict = world.verifier(REQUIRE, at=later(3)).verify_package(package)
    assert verdict.verdict == "invalid" and ("NU3037", "error") in pairs(verdict)
    assert step(verdict, "trust") == Status.DISALLOWED


def test_scenario_42_expired_without_timestamp_accept(world: World) -> None:
    package = world.sign(expiring(world, "Expires, no timestamp (A)"), timestamp=False)
    verdict = world.verifier(ACCEPT, at=later(3)).verify_package(package)
    assert verdict.verdict == "valid" and ("NU3037", "warning") in pairs(verdict)


def test_scenario_43_untrusted_root_not_allowed(world: World) -> None:
    verdict = world.verifier(REQUIRE).verify_package(world.sign(world.other.leaf))
    assert verdict.verdict == "invalid" and ("NU3018", "error") in pairs(verdict)
    assert "not trusted" in next(i.message for i in verdict.issues if i.code == "NU3018")
    assert step(verdict, "trust") == Status.DISALLOWED


def test_scenario_44_untrusted_root_allowed(world: World) -> None:
    verdict = world.verifier(ACCEPT).verify_package(world.sign(world.other.leaf))
    assert verdict.verdict == "valid" and ("NU3018", "warning") in pairs(verdict)
    assert not errors(verdict)


def test_scenario_45_untrusted_root_in_allow_untrusted_root_list(world: World, tmp_path: Path) -> None:
    trust = config(tmp_path, author_xml("other", fp(world.other.leaf), allow_untrusted_root=True), mode="require")
    verifier = world.verifier(REQUIRE, trusted_signers=trust.signers, require_non_empty=True)
    verdict = verifier.verify_package(world.sign(world.other.leaf))
    assert verdict.verdict == "valid" and verdict.issues == ()
    assert verdict.trusted_signer is not None and verdict.trusted_signer.name == "other"


def test_scenario_46_untrusted_root_list_empty_or_not_matching(world: World, tmp_path: Path) -> None:
    package = world.sign(world.other.leaf)
    empty = world.verifier(REQUIRE).verify_package(package)
    trust = config(tmp_path, author_xml("someone else", fp(world.pki.leaf), allow_untrusted_root=True))
    mismatch = world.verifier(REQUIRE, trusted_signers=trust.signers).verify_package(package)
    for verdict in (empty, mismatch):
        assert step(verdict, "trust") == Status.DISALLOWED and ("NU3018", "error") in pairs(verdict)


def test_scenario_47_untrusted_countersignature_with_behavior_always(world: World, tmp_path: Path) -> None:
    package = world.countersign(world.sign(), world.other.leaf)
    settings = REQUIRE.replace(repository_countersignature_verification_behavior=CountersignatureBehavior.ALWAYS,
                               **COUNTERSIGNATURE_ONLY)
    trust = config(tmp_path, repository_xml("other repo", fp(world.other.leaf), allow_untrusted_root=True))
    allowed = world.verifier(settings, trusted_signers=trust.signers).verify_package(package)
    assert step(allowed, "trust") == Status.VALID and allowed.verdict == "valid"
    refused = world.verifier(settings).verify_package(package)
    assert step(refused, "trust") == Status.DISALLOWED and ("NU3018", "error") in pairs(refused)
    assert all(i.signature == "countersignature" for i in refused.issues if i.code == "NU3018")


def test_scenario_48_revoked_signing_certificate(world: World) -> None:
    package = world.sign(world.revoked)
    loose = ACCEPT.replace(allow_illegal=True, allow_untrusted=True, allow_unknown_revocation=True)
    for settings in (loose, REQUIRE, VERIFY):
        verdict = world.verifier(settings, chains=world.online).verify_package(package)
        assert verdict.verdict == "invalid" and step(verdict, "trust") == Status.SUSPECT
        assert ("NU3012", "error") in pairs(verdict)
        assert "revoked" in next(i.message for i in verdict.issues if i.code == "NU3012")
    good = world.verifier(VERIFY, chains=world.online).verify_package(world.sign(world.revocable))
    assert step(good, "trust") == Status.VALID and "NU3012" not in good.codes()


def test_scenario_49_revoked_timestamping_certificate(world: World) -> None:
    with TimestampServer(world.revoked_tsa) as tsa:
        package = world.sign(world.revocable, timestamp=tsa)
    ignorable = world.verifier(ACCEPT, chains=world.online).verify_package(package)
    assert ("NU3028", "error") in pairs(ignorable)
    assert step(ignorable, "trust") == Status.VALID and ignorable.verdict == "valid"
    strict = world.verifier(VERIFY, chains=world.online).verify_package(package)
    assert ("NU3028", "error") in pairs(strict) and step(strict, "trust") == Status.DISALLOWED


def test_scenario_50_timestamp_from_untrusted_root(world: World) -> None:
    with TimestampServer(world.other.tsa) as tsa:
        package = world.sign(timestamp=tsa)
    verdict = world.verifier(VERIFY).verify_package(package)
    assert verdict.verdict == "invalid" and ("NU3028", "error") in pairs(verdict)
    assert "not trusted" in next(i.message for i in verdict.issues if i.code == "NU3028")
    # restore (timestamp ignorable): the error is logged but the status stays valid
    assert step(world.verifier(REQUIRE).verify_package(package), "trust") == Status.VALID


def test_scenario_51_expired_tsa_certificate_is_ignored(world: World) -> None:
    tsa_cert = world.pki.issue_tsa("Short-lived TSA", not_after=clock.now() + timedelta(days=2))
    with TimestampServer(tsa_cert) as tsa:
        package = world.sign(timestamp=tsa)
    verdict = world.verifier(VERIFY, at=later(10)).verify_package(package)
    assert verdict.verdict == "valid" and verdict.issues == ()


def test_scenario_52_gen_time_outside_tsa_validity(world: World) -> None:
    tsa_cert = world.pki.tsa
    with TimestampServer(tsa_cert, gen_time=tsa_cert.certificate.not_valid_before_utc - timedelta(days=1)) as tsa:
        package = world.forge(world.pki.leaf, timestamp=tsa)
    verdict = world.verifier(VERIFY).verify_package(package)
    assert verdict.verdict == "invalid" and ("NU3036", "error") in pairs(verdict)
    assert step(verdict, "trust") == Status.DISALLOWED


def unavailable_crl_package(world: World) -> Path:
    with TimestampServer(world.pki.tsa) as tsa:
        return world.sign(world.unreachable, timestamp=tsa)


def test_scenario_53_unavailable_crl_accept_is_silent(world: World) -> None:
    verdict = world.verifier(ACCEPT, chains=world.online).verify_package(unavailable_crl_package(world))
    assert verdict.verdict == "valid" and verdict.issues == ()


def test_scenario_54_unavailable_crl_require_warns(world: World) -> None:
    verdict = world.verifier(REQUIRE, chains=world.online).verify_package(unavailable_crl_package(world))
    assert verdict.verdict == "valid" and pairs(verdict) == [("NU3018", "warning")]
    assert "revocation" in verdict.issues[0].message


def test_scenario_55_unavailable_crl_verify_warns(world: World) -> None:
    verdict = world.verifier(VERIFY, chains=world.online).verify_package(unavailable_crl_package(world))
    assert verdict.verdict == "valid" and ("NU3018", "warning") in pairs(verdict) and not errors(verdict)


def test_scenario_56_unavailable_crl_not_reported(world: World) -> None:
    settings = REQUIRE.replace(report_unknown_revocation=False)
    verdict = world.verifier(settings, chains=world.online).verify_package(unavailable_crl_package(world))
    assert verdict.verdict == "valid" and "NU3018" not in verdict.codes()


def test_scenario_57_unavailable_crl_allowed_online(world: World) -> None:
    settings = VERIFY.replace(allow_unknown_revocation=True, report_unknown_revocation=True)
    verifier = world.verifier(settings, chains=world.online)
    assert verifier.settings.revocation_mode == "online"  # taken from the chain validator
    verdict = verifier.verify_package(unavailable_crl_package(world))
    assert ("NU3018", "warning") in pairs(verdict) and verdict.verdict == "valid"


def test_scenario_58_unavailable_crl_offline_is_information(world: World) -> None:
    for settings in (REQUIRE, VERIFY):
        verdict = world.verifier(settings, chains=world.offline).verify_package(unavailable_crl_package(world))
        assert verdict.verdict == "valid"
        assert {level for _, level in pairs(verdict)} == {"info"}
        assert ("NU3018", "info") in pairs(verdict)


def test_scenario_59_expired_primary_and_tsa_with_unavailable_revocation(world: World) -> None:
    with TimestampServer(world.unreachable_tsa) as tsa:
        package = world.sign(world.unreachable, timestamp=tsa)
    verdict = world.verifier(REQUIRE, chains=world.online, at=later(5)).verify_package(package)
    assert verdict.verdict == "valid"  # valid on its timestamp
    assert set(pairs(verdict)) == {("NU3018", "warning")}


def test_scenario_60_signature_type_filter(world: World) -> None:
    never = CountersignatureBehavior.NEVER
    repository_signed = world.sign(world.repository_leaf, repository=REPO)
    author_only = VERIFY.replace(verification_target=VerificationTarget.AUTHOR,
                                 repository_countersignature_verification_behavior=never)
    verdict = world.verifier(author_only).verify_package(repository_signed)
    assert step(verdict, "trust") == Status.UNKNOWN and verdict.signatures[0].status is None
    repository_only = VERIFY.replace(verification_target=VerificationTarget.REPOSITORY,
                                     signature_placement=SignaturePlacement.PRIMARY,
                                     repository_countersignature_verification_behavior=never)
    assert step(world.verifier(repository_only).verify_package(world.sign()), "trust") == Status.UNKNOWN


# =================================================================================================
# Repository signatures and countersignatures
# =================================================================================================


def test_scenario_61_repository_primary_signature(world: World) -> None:
    verdict = world.verifier(VERIFY).verify_package(world.sign(world.repository_leaf, repository=REPO))
    assert verdict.verdict == "valid" and verdict.issues == ()
    assert verdict.signatures[0].kind == "repository" and verdict.signatures[0].service_index == SERVICE_INDEX


def test_scenario_62_repository_primary_with_behavior_always(world: World) -> None:
    settings = VERIFY.replace(repository_countersignature_verification_behavior=CountersignatureBehavior.ALWAYS)
    verdict = world.verifier(settings).verify_package(world.sign(world.repository_leaf, repository=REPO))
    assert step(verdict, "trust") == Status.DISALLOWED and pairs(verdict) == [("NU3038", "error")]


def test_scenario_63_repository_primary_expired_with_timestamp(world: World) -> None:
    package = world.sign(expiring(world, "Expiring Repository"), repository=REPO)
    verdict = world.verifier(VERIFY, at=later(10)).verify_package(package)
    assert verdict.verdict == "valid" and verdict.issues == ()


def test_scenario_64_valid_countersignature_repository_target(world: World) -> None:
    package = world.countersign(world.sign())
    verdict = world.verifier(VERIFY.replace(**COUNTERSIGNATURE_ONLY)).verify_package(package)
    assert verdict.verdict == "valid" and verdict.issues == ()
    assert verdict.signatures[0].status is None and verdict.signatures[1].status == Status.VALID


def test_scenario_65_valid_countersignature_untrusted_primary(world: World) -> None:
    package = world.countersign(world.sign(world.other.leaf))
    verdict = world.verifier(VERIFY.replace(**COUNTERSIGNATURE_ONLY)).verify_package(package)
    assert verdict.verdict == "valid" and verdict.issues == ()


def test_scenario_66_countersignature_without_timestamp(world: World) -> None:
    package = world.countersign(world.sign(), timestamp=False)
    allowed = world.verifier(VERIFY.replace(**COUNTERSIGNATURE_ONLY)).verify_package(package)
    assert step(allowed, "trust") == Status.VALID and pairs(allowed) == [("NU3027", "warning")]
    required = world.verifier(VERIFY.replace(allow_no_timestamp=False, **COUNTERSIGNATURE_ONLY)).verify_package(package)
    assert step(required, "trust") == Status.DISALLOWED and ("NU3027", "error") in pairs(required)


def test_scenario_67_untrusted_countersignature(world: World) -> None:
    package = world.countersign(world.sign(), world.other.leaf)
    allowed = world.verifier(VERIFY.replace(allow_untrusted=True, **COUNTERSIGNATURE_ONLY)).verify_package(package)
    assert step(allowed, "trust") == Status.VALID
    refused = world.verifier(VERIFY.replace(**COUNTERSIGNATURE_ONLY)).verify_package(package)
    assert step(refused, "trust") == Status.DISALLOWED and ("NU3018", "error") in pairs(refused)


def test_scenario_68_revoked_countersignature_certificate(world: World) -> None:
    package = world.countersign(world.sign(world.revocable), world.revoked)
    verdict = world.verifier(VERIFY, chains=world.online).verify_package(package)
    assert step(verdict, "trust") == Status.SUSPECT
    assert next(i for i in verdict.issues if i.code == "NU3012").signature == "countersignature"


def test_scenario_69_expired_primary_and_repository_both_timestamped(world: World) -> None:
    package = world.countersign(world.sign(expiring(world, "Expiring Author")), expiring(world, "Expiring Repo"))
    for settings in (REQUIRE, VERIFY):
        verdict = world.verifier(settings, at=later(10)).verify_package(package)
        assert verdict.verdict == "valid" and verdict.issues == ()


def test_scenario_70_expired_repository_certificate_not_needed(world: World) -> None:
    package = world.countersign(world.sign(), expiring(world, "Expiring Repo, no timestamp"), timestamp=False)
    verdict = world.verifier(REQUIRE, at=later(10)).verify_package(package)
    assert verdict.verdict == "valid" and verdict.issues == ()
    assert verdict.signatures[1].status is None  # the countersignature was not evaluated


def primary_expired_before_countersigning(world: World, signer_pki=None) -> Path:  # type: ignore[no-untyped-def]
    """Primary certificate valid [now-10d, now-1d], signed (no timestamp) inside it, countersigned now."""
    pki = signer_pki or world.pki
    now = clock.now()
    signer = pki.issue_code_signing("Expired Before Countersigning", not_before=now - timedelta(days=10),
                                    not_after=now - timedelta(days=1))
    primary = world.sign(signer, timestamp=False, signing_time=now - timedelta(days=5))
    return world.countersign(primary)


@pytest.mark.parametrize("case", ["untrusted root", "expired", "expired and untrusted root",
                                  "expired before countersigning", "countersignature untrusted"])
def test_scenario_71_countersignature_fallback(world: World, case: str) -> None:
    # NuGet's "section 3.4" table of ten cases is not in our spec; these are the rows of docs/verification.md 4.3
    # (and their negative cases) under the nuget.org-like preset.
    if case == "untrusted root":
        package, at, valid = world.countersign(world.sign(world.other.leaf)), None, True
    elif case == "expired":
        package = world.countersign(world.sign(expiring(world, "Fallback Expired"), timestamp=False))
        at, valid = later(5), True
    elif case == "expired and untrusted root":
        signer = world.other.issue_code_signing("Fallback Both", not_after=clock.now() + timedelta(days=2))
        package, at, valid = world.countersign(world.sign(signer, timestamp=False)), later(5), True
    elif case == "expired before countersigning":
        package, at, valid = primary_expired_before_countersigning(world, world.other), None, False
    else:
        package, at, valid = world.countersign(world.sign(world.other.leaf), world.other.issue_code_signing("Untrusted Repo")), None, False
    verdict = world.verifier(NG, at=at).verify_package(package)
    assert (step(verdict, "trust") == Status.VALID) is valid, pairs(verdict)
    if valid:
        assert not errors(verdict) and "NU3018" not in verdict.codes() and "NU3037" not in verdict.codes()
    elif case == "expired before countersigning":
        assert "NU3037" in errors(verdict) and "NU3018" not in verdict.codes()  # trust anchor yes, timestamp no


def test_scenario_72_expired_primary_rescued_by_countersignature_timestamp(world: World) -> None:
    rescued = world.countersign(world.sign(expiring(world, "Rescued"), timestamp=False))
    verdict = world.verifier(VERIFY, at=later(5)).verify_package(rescued)
    assert verdict.verdict == "valid" and not errors(verdict) and "NU3037" not in verdict.codes()
    too_late = world.verifier(VERIFY).verify_package(primary_expired_before_countersigning(world))
    assert too_late.verdict == "invalid" and errors(too_late) == ["NU3037"]


def test_scenario_73_invalid_countersignature(world: World) -> None:
    package = world.countersign(world.sign(), timestamp=False)  # a timestamp would also fail (NU3019)
    broken = replace_signature(package, map_countersignature(read_signature(package), with_bad_signature),
                               world.path("bad-countersignature"))
    not_needed = world.verifier(REQUIRE).verify_package(broken)
    assert not_needed.verdict == "valid" and not_needed.issues == ()
    evaluated = world.verifier(VERIFY).verify_package(broken)
    assert evaluated.verdict == "invalid" and errors(evaluated) == ["NU3012"]
    assert evaluated.issues[0].signature == "countersignature"


def test_scenario_73_broken_countersignature_cannot_be_the_trusted_signer(world: World, tmp_path: Path) -> None:
    """Trusting only the repository: a countersignature that does not verify must not make the
    package trusted, even where the settings would not evaluate it for its own sake (found by fuzzing)."""
    package = world.countersign(world.sign(), timestamp=False)
    broken = replace_signature(package, map_countersignature(read_signature(package), with_bad_signature),
                               world.path("bad-countersignature-trusted"))
    trust = config(tmp_path, repository_xml("repo", fp(world.repository_leaf)), mode="require")
    for settings in (ACCEPT, REQUIRE):
        intact = world.verifier(settings, trusted_signers=trust.signers, require_non_empty=True).verify_package(package)
        assert intact.verdict == "valid" and intact.trusted_signer is not None
        assert intact.trusted_signer.placement == "countersignature"
        verdict = world.verifier(settings, trusted_signers=trust.signers, require_non_empty=True).verify_package(broken)
        assert verdict.trusted_signer is None  # never reported as trusted through the broken signature
        assert {"NU3034", "NU3012"} <= {i.code for i in verdict.issues}
    # accept mode allows untrusted signers (a warning); require mode rejects the package
    assert verdict.verdict == "invalid" and "NU3034" in errors(verdict)


def repository_countersigner_info(world: World, primary_value: bytes, signer: Issued) -> object:
    attrs = [
        attribute("signing_time", signing_time_value(clock.now())),
        attribute("commitment_type_indication", {"commitment_type_id": "1.2.840.113549.1.9.16.6.2"}),
        attribute("message_digest", hashlib.sha256(primary_value).digest()),
        attribute("signing_certificate_v2", signing_certificate_v2(signer.certificate, "sha256")),
        attribute("nuget_v3_service_index_url", SERVICE_INDEX),
    ]
    return make_signer_info(signer.certificate, signer.private_key, "sha256", attrs)


def test_scenario_74_two_repository_countersignatures(world: World) -> None:
    package = world.countersign(world.sign())
    der = read_signature(package)
    info = primary_info(der)
    second = repository_countersigner_info(world, info["signature"].native, world.pki.leaf)
    der = with_signer_info(der, add_unsigned(info, [attribute("counter_signature", second)]))
    two = replace_signature(package, der, world.path("two-countersignatures"))
    for settings, level in ((ACCEPT, "warning"), (REQUIRE, "error"), (VERIFY, "error")):
        assert pairs(world.verifier(settings).verify_package(two)) == [("NU3032", level)]


def test_scenario_75_countersignature_on_repository_primary(world: World) -> None:
    package = world.sign(world.repository_leaf, repository=REPO)
    der = read_signature(package)
    info = primary_info(der)
    counter = repository_countersigner_info(world, info["signature"].native, world.pki.leaf)
    der = with_signer_info(der, add_unsigned(info, [attribute("counter_signature", counter)]))
    verdict = world.verifier(VERIFY).verify_package(replace_signature(package, der, world.path("repo-on-repo")))
    assert verdict.verdict == "invalid" and pairs(verdict) == [("NU3033", "error")]


# =================================================================================================
# trustedSigners and allow lists
# =================================================================================================


@pytest.fixture(scope="module")
def signed_kinds(world: World) -> dict[str, Path]:
    author = world.sign()
    return {
        "author": author,
        "repository": world.sign(world.repository_leaf, repository=REPO),
        "countersigned": world.countersign(author, owners=("nuget", "Contoso")),
    }


def trusted_signers_step(verdict: PackageVerdict):  # type: ignore[no-untyped-def]
    return next(s for s in verdict.steps if s.step == "trusted-signers")


@pytest.mark.parametrize("kind", ["author", "repository", "countersigned"])
def test_scenario_76_no_trusted_signers(world: World, signed_kinds: dict[str, Path], kind: str) -> None:
    accepted = world.verifier(ACCEPT).verify_package(signed_kinds[kind])
    assert accepted.verdict == "valid" and accepted.issues == ()
    required = world.verifier(REQUIRE, require_non_empty=True).verify_package(signed_kinds[kind])
    result = trusted_signers_step(required)
    assert required.verdict == "invalid" and result.status == Status.DISALLOWED
    assert [(i.code, i.level) for i in result.issues] == [("NU3034", "error")] and errors(required) == ["NU3034"]
    assert "no trusted signers were specified" in result.issues[0].message


def test_scenario_77_trusted_signers_without_a_match(world: World, signed_kinds: dict[str, Path], tmp_path: Path) -> None:
    trust = config(tmp_path, author_xml("stranger", fp(world.other.leaf)))
    accepted = world.verifier(ACCEPT, trusted_signers=trust.signers).verify_package(signed_kinds["author"])
    assert accepted.verdict == "valid" and pairs(accepted) == [("NU3034", "warning")]
    assert accepted.trusted_signer is None and accepted.trusted_signer_reason
    required = world.verifier(REQUIRE, trusted_signers=trust.signers, require_non_empty=True)
    verdict = required.verify_package(signed_kinds["author"])
    assert verdict.verdict == "invalid" and pairs(verdict) == [("NU3034", "error")]


@pytest.mark.parametrize(("kind", "entry_kind"), [("author", "author"), ("repository", "repository"),
                                                  ("countersigned", "repository")])
def test_scenario_78_signer_in_the_list(world: World, signed_kinds: dict[str, Path], tmp_path: Path,
                                         kind: str, entry_kind: str) -> None:
    signer = world.pki.leaf if entry_kind == "author" else world.repository_leaf
    xml = author_xml("me", fp(signer)) if entry_kind == "author" else repository_xml("repo", fp(signer))
    trust = config(tmp_path, xml)
    for settings in (ACCEPT, REQUIRE):
        verdict = world.verifier(settings, trusted_signers=trust.signers, require_non_empty=True).verify_package(signed_kinds[kind])
        assert verdict.verdict == "valid" and verdict.issues == ()
        assert verdict.trusted_signer is not None and verdict.trusted_signer.kind == entry_kind


def test_scenario_79_author_fingerprint_under_author_or_repository(world: World, signed_kinds: dict[str, Path], tmp_path: Path) -> None:
    as_author = config(tmp_path / "a", author_xml("author", fp(world.pki.leaf)))
    verdict = world.verifier(REQUIRE, trusted_signers=as_author.signers).verify_package(signed_kinds["author"])
    assert verdict.verdict == "valid"
    as_repository = config(tmp_path / "r", repository_xml("repo", fp(world.pki.leaf)))
    verdict = world.verifier(REQUIRE, trusted_signers=as_repository.signers).verify_package(signed_kinds["author"])
    assert pairs(verdict) == [("NU3034", "error")]
    assert verdict.issues[0].message == "This package is signed but not by a trusted signer."


def allow_list(cert_fp: str, targets: set[str], placements: set[str], owners: tuple[str, ...] = ()) -> AllowList:
    entry_ = AllowListEntry(cert_fp, "sha256", frozenset(targets), frozenset(placements), owners, signers=(("e", "repository"),))
    return AllowList("trusted-signers", (entry_,), False, "", "This package is signed but not by a trusted signer.")


def allowed(package: Path, the_list: AllowList) -> bool:
    primary = parse_signature(read_signature(package))
    return the_list.check(primary, REQUIRE).step.status == Status.VALID


def test_scenario_80_repository_signed_entry_targets(world: World, signed_kinds: dict[str, Path]) -> None:
    package, repo_fp = signed_kinds["repository"], fp(world.repository_leaf)
    assert not allowed(package, allow_list(repo_fp, {"author"}, {"primary"}))
    assert not allowed(package, allow_list(repo_fp, {"repository"}, {"countersignature"}))
    assert allowed(package, allow_list(repo_fp, {"repository"}, {"primary"}))


def test_scenario_81_countersigned_entry_targets(world: World, signed_kinds: dict[str, Path]) -> None:
    package, repo_fp = signed_kinds["countersigned"], fp(world.repository_leaf)
    assert not allowed(package, allow_list(repo_fp, {"author"}, {"primary", "countersignature"}))
    assert not allowed(package, allow_list(repo_fp, {"repository"}, {"primary"}))
    assert allowed(package, allow_list(repo_fp, {"repository"}, {"countersignature"}))


def test_scenario_82_owners_on_repository_primary(world: World, tmp_path: Path) -> None:
    with_owners = world.sign(world.repository_leaf, repository=RepositoryOptions(SERVICE_INDEX, ("nuget", "Microsoft")))
    without_owners = world.sign(world.repository_leaf, repository=REPO)
    repo_fp = fp(world.repository_leaf)

    def judge(owners: str | None, package: Path, where: str) -> PackageVerdict:
        trust = config(tmp_path / where, repository_xml("repo", repo_fp, owners))
        return world.verifier(REQUIRE, trusted_signers=trust.signers, require_non_empty=True).verify_package(package)

    assert judge("Microsoft;someone", with_owners, "in").verdict == "valid"
    outside = judge("someone;else", with_owners, "out")
    assert outside.verdict == "invalid" and pairs(outside) == [("NU3034", "error")]
    assert "owners" in (outside.trusted_signer_reason or "")
    assert judge("nuget", without_owners, "none").verdict == "invalid"
    assert judge(None, with_owners, "unrestricted").verdict == "valid"


def test_scenario_83_owners_on_countersigned_package(world: World, signed_kinds: dict[str, Path], tmp_path: Path) -> None:
    xml = repository_xml("repo", fp(world.repository_leaf), "someone") + author_xml("author", fp(world.pki.leaf))
    trust = config(tmp_path, xml)
    verdict = world.verifier(REQUIRE, trusted_signers=trust.signers).verify_package(signed_kinds["countersigned"])
    assert verdict.verdict == "valid" and verdict.trusted_signer.kind == "author"  # type: ignore[union-attr]


def test_scenario_84_owner_matching_is_case_sensitive(world: World, signed_kinds: dict[str, Path], tmp_path: Path) -> None:
    package = world.countersign(world.sign(), owners=("nuget",))
    repo_fp = fp(world.repository_leaf)
    wrong_case = config(tmp_path / "a", repository_xml("repo", repo_fp, "Nuget;Contoso"))
    assert world.verifier(REQUIRE, trusted_signers=wrong_case.signers).verify_package(package).verdict == "invalid"
    right_case = config(tmp_path / "b", repository_xml("repo", repo_fp, "nuget;Contoso"))
    assert world.verifier(REQUIRE, trusted_signers=right_case.signers).verify_package(package).verdict == "valid"


def test_scenario_85_repository_allow_untrusted_root(world: World, tmp_path: Path) -> None:
    package = world.sign(world.other.leaf, repository=REPO, timestamp=False)
    trusting = config(tmp_path / "t", repository_xml("repo", fp(world.other.leaf), allow_untrusted_root=True))
    verdict = world.verifier(VERIFY, trusted_signers=trusting.signers).verify_package(package)
    assert verdict.verdict == "valid" and pairs(verdict) == [("NU3027", "warning")]
    strict = config(tmp_path / "s", repository_xml("repo", fp(world.other.leaf), allow_untrusted_root=False))
    verdict = world.verifier(VERIFY, trusted_signers=strict.signers).verify_package(package)
    assert verdict.verdict == "invalid" and ("NU3018", "error") in pairs(verdict)


def test_scenario_86_allow_untrusted_root_in_a_config_not_used(world: World, tmp_path: Path) -> None:
    config(tmp_path / "unused", author_xml("other", fp(world.other.leaf), allow_untrusted_root=True))
    used = config(tmp_path / "used", author_xml("other", fp(world.other.leaf), allow_untrusted_root=False))
    verdict = world.verifier(VERIFY, trusted_signers=used.signers).verify_package(world.sign(world.other.leaf))
    assert verdict.verdict == "invalid" and ("NU3018", "error") in pairs(verdict)


def test_scenario_87_certificate_fingerprint_option(world: World) -> None:
    package = world.sign()
    match = world.verifier(VERIFY, certificate_fingerprints=[fp(world.pki.leaf).lower()]).verify_package(package)
    assert match.verdict == "valid" and match.issues == ()
    assert match.trusted_signer is not None and match.trusted_signer.name == "--certificate-fingerprint"
    miss = world.verifier(VERIFY, certificate_fingerprints=[fp(world.other.leaf)]).verify_package(package)
    assert miss.verdict == "invalid" and pairs(miss) == [("NU3034", "error")]
    assert "does not match" in miss.issues[0].message


def test_scenario_88_repository_announced_certificates(world: World, signed_kinds: dict[str, Path]) -> None:
    listed = RepositorySignatures(all_repository_signed=True, fingerprints=(fp(world.repository_leaf).lower(),))
    assert world.verifier(ACCEPT, repository=listed).verify_package(signed_kinds["countersigned"]).verdict == "valid"
    not_listed = world.verifier(ACCEPT, repository=listed).verify_package(signed_kinds["author"])
    assert not_listed.verdict == "invalid" and pairs(not_listed) == [("NU3034", "error")]
    assert "not repository signed with a certificate listed" in not_listed.issues[0].message
    empty = RepositorySignatures(all_repository_signed=True, fingerprints=())
    verdict = world.verifier(ACCEPT, repository=empty).verify_package(signed_kinds["countersigned"])
    assert verdict.verdict == "invalid" and pairs(verdict) == [("NU3034", "error")]
    assert "listed no signing certificates" in verdict.issues[0].message
