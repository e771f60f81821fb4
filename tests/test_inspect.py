"""inspect_package and `trustpolicy inspect` on the real corpus (issue 2 section 4)."""

from __future__ import annotations

import itertools
import json
import shutil
import struct
from pathlib import Path

import pytest
from asn1crypto import cms
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes
from datafiles import CERTS, NUGET, SIGNED, UNSIGNED, ZIP_EDGE

from trustpolicy._internal.archive import PackageArchive, insert_signature, strip_signature
from trustpolicy._internal.inspect import inspect_package, signature_failed
from trustpolicy._internal.signature import parse_signature
from trustpolicy.cli import main
from trustpolicy.errors import TrustPolicyError

VERSIONING = SIGNED / "nuget.versioning.5.0.0.nupkg"
REPOSIGNED = SIGNED / "Test.Reposigned.1.0.0.nupkg"
LOOSE = SIGNED / "loose-author-countersigned.signature.p7s"
FAKE_CONTENT = ZIP_EDGE / "SignatureFileWithFakeContent.zip"

NUGET_ORG = "https://api.nuget.org/v3/index.json"
TEST_REPO = "https://v3ServiceIndex.test/api/index"

# nupkg -> (id, kind, service index, primary timestamps, countersignature (url, owners, timestamps) or None)
PACKAGES = {
    "nuget.versioning.5.0.0.nupkg": ("NuGet.Versioning", "author", None, 1, (NUGET_ORG, ["Microsoft", "nuget"], 1)),
    "TestPackage.AuthorSigned.1.0.0.nupkg": ("TestPackage.AuthorSigned", "author", None, 1, None),
    "Test.Reposigned.1.0.0.nupkg": ("Test.Reposigned", "repository", TEST_REPO, 0, None),
    "Test.RepoCountersigned.1.0.0.nupkg": ("Test.RepoCountersigned", "repository", TEST_REPO, 0, None),
    "SignedPackage.1.0.0.nupkg": ("SignedPackage", "author", None, 0, None),
    "UnavailableCrlPackage.nupkg": ("TestSigned.leaf-1", "author", None, 1, None),
    "ExpiredPrimaryAndTimestampCertificatesWithUnavailableRevocationInfo.nupkg": ("packageA", "author", None, 1, None),
    "TimestampInvalidGenTimePackage.nupkg": ("packageA", "author", None, 1, None),
    "UntrustedTimestampPackage.nupkg": ("TestSigned.leaf-1", "author", None, 1, None),
}


def signature_bytes(path: Path) -> bytes:
    return PackageArchive.open(path).read_signature()


def codes(report: dict) -> list[str]:
    return [problem["code"] for problem in report["problems"]]


def run_json(capsys, *args: str) -> tuple[int, list[dict], str]:
    code = main(["inspect", "--format", "json", *args])
    out, err = capsys.readouterr()
    return code, json.loads(out), err


# ---------------------------------------------------------------------------------------------
# Library
# ---------------------------------------------------------------------------------------------


def test_table_covers_every_signed_package() -> None:
    assert sorted(p.name for p in SIGNED.glob("*.nupkg")) == sorted(PACKAGES)


@pytest.mark.parametrize("name", sorted(PACKAGES))
def test_signed_package(name: str) -> None:
    package_id, kind, service_index, timestamps, counter = PACKAGES[name]
    report = inspect_package(SIGNED / name)
    assert report["path"] == str(SIGNED / name)
    assert report["id"] == package_id and report["version"]
    assert report["signed"] is True
    assert report["contentHash"]["algorithm"] == "SHA256"
    assert report["contentHash"]["matches"] is True
    assert report["problems"] == []
    assert not signature_failed(report)
    primary = report["primary"]
    assert (primary["kind"], primary["placement"], primary["serviceIndex"]) == (kind, "primary", service_index)
    assert primary["owners"] == []
    assert primary["signingTime"].endswith("Z")
    assert len(primary["timestamps"]) == timestamps
    assert primary["certificates"][0] == primary["signer"]
    if counter is None:
        assert report["countersignatures"] == []
    else:
        (cs,) = report["countersignatures"]
        assert (cs["kind"], cs["placement"], cs["serviceIndex"], cs["owners"]) == ("repository", "countersignature", *counter[:2])
        assert len(cs["timestamps"]) == counter[2]
    json.dumps(report)  # JSON-ready as it is


def test_versioning_details() -> None:
    report = inspect_package(VERSIONING)
    assert report["version"] == "5.0.0+42a8779499c1d1ed2488c2e6b9e2ee6ff6107766"
    assert report["contentHash"]["value"] == "Pz1Pwq70/Wi/TK54HrteweLnyuQL88HF9lT8MTSwsCo="
    signer = report["primary"]["signer"]
    assert signer["subject"] == "CN=Microsoft Corporation, O=Microsoft Corporation, L=Redmond, S=Washington, C=US"
    assert signer["issuer"] == "CN=DigiCert SHA2 Assured ID Code Signing CA, OU=www.digicert.com, O=DigiCert Inc, C=US"
    assert signer["fingerprints"]["SHA256"] == "3F9001EA83C560D712C24CF213C3D312CB3BFF51EE89435D3430BD06B5D0EECE"
    assert set(signer["fingerprints"]) == {"SHA256", "SHA384", "SHA512"}
    assert (signer["notBefore"], signer["notAfter"]) == ("2018-02-26T00:00:00Z", "2021-01-27T12:00:00Z")
    assert signer["serialNumber"] == "05A4FC79509EF76A487DBDB170BF8D10"

    (ts,) = report["primary"]["timestamps"]
    assert ts["time"] == "2019-04-01T18:24:53Z" and ts["accuracy"] == 30.0
    assert ts["tsaSubject"].startswith("CN=Symantec SHA256 TimeStamping Signer - G2")
    assert ts["hashAlgorithm"] == "SHA256" and ts["problem"] is None

    chain = report["primary"]["certificates"]
    assert [c["subject"].split(",")[0] for c in chain] == [
        "CN=Microsoft Corporation", "CN=DigiCert SHA2 Assured ID Code Signing CA", "CN=DigiCert Assured ID Root CA",
    ]
    assert all(child["issuer"] == parent["subject"] for child, parent in itertools.pairwise(chain))
    assert chain[-1]["subject"] == chain[-1]["issuer"]

    (cs,) = report["countersignatures"]
    assert cs["signer"]["subject"].startswith("CN=NuGet.org Repository by Microsoft")
    assert cs["signer"]["fingerprints"]["SHA256"] == "0E5F38F57DC1BCC806D8494F4F90FBCEDD988B46760709CBEEC6F4219AA6157D"
    assert cs["signingTime"] == "2019-04-04T22:56:44Z"
    assert cs["timestamps"][0]["time"] == "2019-04-04T22:56:42Z"


def test_certificate_fields_match_cryptography() -> None:
    path = SIGNED / "UnavailableCrlPackage.nupkg"
    report = inspect_package(path)
    sig = parse_signature(signature_bytes(path))
    by_fingerprint = {}
    for c in sig.certificates:
        cert = cx509.load_der_x509_certificate(c.dump())
        by_fingerprint[cert.fingerprint(hashes.SHA256()).hex().upper()] = cert
    assert len(report["primary"]["certificates"]) == 3
    for entry in report["primary"]["certificates"]:
        cert = by_fingerprint[entry["fingerprints"]["SHA256"]]  # an independent parser agrees
        assert int(entry["serialNumber"], 16) == cert.serial_number
        assert entry["notAfter"] == cert.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert entry["notBefore"] == cert.not_valid_before_utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_loose_signature_file() -> None:
    report = inspect_package(LOOSE)
    assert report["signed"] is True and report["id"] is None
    assert "matches" not in report["contentHash"]
    assert report["contentHash"]["value"] == "3tXs750NdBgMWyg+x3nNfhlxqIRGc2xSKp5NvhaOAVo="
    assert report["primary"]["kind"] == "author"
    (cs,) = report["countersignatures"]
    assert cs["serviceIndex"] == "https://api.nuget.test/v3/index.json"
    assert cs["owners"] == ["owner1", "owner2"]
    timestamps = report["primary"]["timestamps"] + cs["timestamps"]
    assert len(timestamps) == 2
    assert all(t["accuracy"] == 1.0 for t in timestamps)  # ETSI baseline policy without accuracy


@pytest.mark.parametrize("path", sorted(UNSIGNED.glob("*.nupkg")), ids=lambda p: p.name)
def test_unsigned_packages(path: Path) -> None:
    report = inspect_package(path)
    assert report["signed"] is False
    assert report["primary"] is None and report["contentHash"] is None and report["countersignatures"] == []
    assert report["problems"] == [] and report["id"]
    assert not signature_failed(report)


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("SignatureFileWithFakeContent.zip", "NU3003"),
        ("SignatureFileEntry.zip", "NU3003"),
        ("SignatureFileWithDeflateCompressionMethodAndDefaultCompressionLevel.zip", "NU3005"),
    ],
)
def test_zip_edge_bad_signatures(name: str, code: str) -> None:
    report = inspect_package(ZIP_EDGE / name)
    assert report["signed"] is True and report["primary"] is None
    assert code in codes(report)
    assert signature_failed(report)


def test_uppercase_signature_name_is_unsigned() -> None:
    report = inspect_package(ZIP_EDGE / "SignatureFileWithUppercaseFileName.zip")
    assert report["signed"] is False and not signature_failed(report)


def test_unreadable_files_raise() -> None:
    with pytest.raises(TrustPolicyError) as caught:
        inspect_package(CERTS / "root.crt")
    assert "root.crt" in str(caught.value)
    with pytest.raises(TrustPolicyError):
        inspect_package(NUGET / "missing.nupkg")
    with pytest.raises(TrustPolicyError):
        inspect_package(NUGET / "missing.signature.p7s")


def _with_comment(source: Path, dest: Path, comment: bytes) -> Path:
    """Add a zip comment: the package hash covers it, so the content hash no longer matches."""
    data = source.read_bytes()
    eocd = data.rindex(b"PK\x05\x06")
    assert data[eocd + 20 : eocd + 22] == b"\x00\x00"
    dest.write_bytes(data[: eocd + 20] + struct.pack("<H", len(comment)) + comment)
    return dest


def test_tampered_package_does_not_match(tmp_path: Path) -> None:
    tampered = _with_comment(VERSIONING, tmp_path / "tampered.nupkg", b"changed after signing")
    report = inspect_package(tampered)
    assert report["contentHash"]["matches"] is False
    assert codes(report) == ["NU3008"]
    assert report["primary"]["kind"] == "author"  # everything else is still shown
    assert not signature_failed(report)


def _resigned(tmp_path: Path, source: Path, signature: bytes) -> Path:
    unsigned = tmp_path / "unsigned.nupkg"
    strip_signature(source, unsigned)
    dest = tmp_path / "resigned.nupkg"
    insert_signature(unsigned, signature, dest)
    return dest


def test_package_with_two_signers_nu3009(tmp_path: Path) -> None:
    info = cms.ContentInfo.load(signature_bytes(VERSIONING))
    signer = info["content"]["signer_infos"][0]
    info["content"]["signer_infos"] = cms.SignerInfos([signer, signer])
    report = inspect_package(_resigned(tmp_path, VERSIONING, info.dump()))
    assert codes(report) == ["NU3009"] and signature_failed(report)
    assert report["id"] == "NuGet.Versioning"


def test_timestamp_problem_is_listed(tmp_path: Path) -> None:
    # the primary token's eContentType (the first occurrence) id-ct-TSTInfo -> ...16.1.5: same length
    der = signature_bytes(VERSIONING)
    tst_oid = bytes.fromhex("060b2a864886f70d0109100104")
    assert der.count(tst_oid) == 4  # eContentType and content-type attribute, in each of the two tokens
    broken = der.replace(tst_oid, tst_oid[:-1] + b"\x05", 1)
    report = inspect_package(_resigned(tmp_path, VERSIONING, broken))
    assert codes(report) == ["NU3021"]
    assert report["problems"][0]["message"].startswith("primary signature timestamp 1:")
    assert report["primary"]["timestamps"][0]["problem"]["code"] == "NU3021"
    assert report["countersignatures"][0]["timestamps"][0]["problem"] is None
    assert not signature_failed(report)


# ---------------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------------


def test_cli_json(capsys) -> None:
    unsigned = UNSIGNED / "PackageWithTextFile.1.0.nupkg"
    code, reports, err = run_json(capsys, str(VERSIONING), str(REPOSIGNED), str(unsigned))
    assert code == 0 and err == ""
    assert [r["path"] for r in reports] == [str(VERSIONING), str(REPOSIGNED), str(unsigned)]
    versioning, reposigned, plain = reports
    assert versioning["contentHash"]["matches"] is True
    assert versioning["countersignatures"][0]["owners"] == ["Microsoft", "nuget"]
    assert reposigned["primary"]["kind"] == "repository"
    assert reposigned["primary"]["serviceIndex"] == TEST_REPO
    assert reposigned["primary"]["timestamps"] == []
    assert plain["signed"] is False and plain["primary"] is None


def test_cli_bare_signature_file(capsys) -> None:
    code, (report,), _ = run_json(capsys, str(LOOSE))
    assert code == 0
    assert "matches" not in report["contentHash"]
    assert report["countersignatures"][0]["serviceIndex"] == "https://api.nuget.test/v3/index.json"


def test_cli_unparsable_signature_exit_1(capsys) -> None:
    code, (report,), err = run_json(capsys, str(FAKE_CONTENT))
    assert code == 1 and err == ""
    assert "NU3003" in codes(report)


def test_cli_unreadable_file_exit_2_continues(capsys, tmp_path: Path) -> None:
    missing = tmp_path / "missing.nupkg"
    not_zip = tmp_path / "notazip.nupkg"
    not_zip.write_bytes(b"just text")
    code, reports, err = run_json(capsys, str(missing), str(REPOSIGNED), str(not_zip), str(FAKE_CONTENT))
    assert code == 2  # unreadable files win over the NU3003 one
    assert [r["path"] for r in reports] == [str(REPOSIGNED), str(FAKE_CONTENT)]
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert str(missing) in lines[0] and str(not_zip) in lines[1]
    assert "Traceback" not in err


def test_cli_tampered_package_exit_0(capsys, tmp_path: Path) -> None:
    tampered = _with_comment(VERSIONING, tmp_path / "tampered.nupkg", b"x")
    code, (report,), _ = run_json(capsys, str(tampered))
    assert code == 0 and report["contentHash"]["matches"] is False


def test_cli_text(capsys) -> None:
    code = main(["inspect", str(VERSIONING), str(REPOSIGNED), str(UNSIGNED / "PackageWithTextFile.1.0.nupkg")])
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert "\x1b[" not in out  # no colours when stdout is not a terminal
    for expected in (
        "Signed:         yes",
        "Signed:         no",
        "Content hash:   SHA256 Pz1Pwq70/Wi/TK54HrteweLnyuQL88HF9lT8MTSwsCo=",
        "Integrity:      matches the package",
        "Author signature (primary)",
        "Repository countersignature",
        "Repository signature (primary)",
        "Subject:        CN=Microsoft Corporation, O=Microsoft Corporation",
        "Serial number:  05A4FC79509EF76A487DBDB170BF8D10",
        "SHA256:         3F9001EA83C560D712C24CF213C3D312CB3BFF51EE89435D3430BD06B5D0EECE",
        "Signing time:   2019-04-01T18:24:54Z",
        f"Service index:  {NUGET_ORG}",
        "Owners:         Microsoft, nuget",
        "Timestamp:      2019-04-01T18:24:53Z (accuracy 30 s)",
        "TSA:            CN=Symantec SHA256 TimeStamping Signer - G2",
        "Timestamp:      none",
        "3. CN=DigiCert Assured ID Root CA",
    ):
        assert expected in out, expected
    # long values are never wrapped, whatever the console width
    assert all(len(line) < 400 for line in out.splitlines())


def test_cli_text_shows_problems(capsys) -> None:
    code = main(["inspect", str(FAKE_CONTENT)])
    out, _ = capsys.readouterr()
    assert code == 1
    assert "Problems" in out and "NU3003" in out


def test_cli_text_escapes_markup(capsys, tmp_path: Path) -> None:
    # rich markup in a path must be printed literally
    odd = tmp_path / "[bold]odd[red].nupkg"
    shutil.copy(REPOSIGNED, odd)
    assert main(["inspect", str(odd)]) == 0
    out, _ = capsys.readouterr()
    assert "[bold]odd[red].nupkg" in out


def test_cli_requires_a_package(capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["inspect"])
    assert caught.value.code == 2
