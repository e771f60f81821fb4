"""trustpolicy._internal.sign and `trustpolicy sign`: the CMS profile of docs/format.md 5-7, checked against openssl,
NuGet's own reference signature, and every refusal NuGet makes at signing time."""

from __future__ import annotations

import base64
import hashlib
import shutil
import struct
import subprocess
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
from asn1crypto import cms, core, tsp
from conftest import identity_of, make_package
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding
from datafiles import SIGNED, ZIP_EDGE

from trustpolicy._internal import asn1 as oids
from trustpolicy._internal.archive import PackageArchive
from trustpolicy._internal.sign import (
    RepositoryOptions,
    SigningIdentity,
    countersign_signature,
    sign_package,
    signature_content,
)
from trustpolicy.cli import main
from trustpolicy.errors import SigningError
from trustpolicy.models import Issue
from trustpolicy.testing.pki import CLIENT_AUTH, CODE_SIGNING, LIFETIME_SIGNING, write_certificates
from trustpolicy.testing.tsa import OpenSSLTimestampServer

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl binary not installed")
REFERENCE = SIGNED / "loose-author-countersigned.signature.p7s"
SERVICE_INDEX = "https://api.example.test/v3/index.json"
REPO = RepositoryOptions(SERVICE_INDEX, ("alice", "bob"))


# --- helpers -------------------------------------------------------------------------------------


def read_signature(path: Path) -> bytes:
    return PackageArchive.open(path).read_signature()


def signed_data(der: bytes) -> cms.SignedData:
    info = cms.ContentInfo.load(der)
    assert info["content_type"].native == "signed_data"
    return info["content"]


def attrs(info: cms.SignerInfo, which: str = "signed_attrs") -> dict[str, cms.CMSAttribute]:
    return {a["type"].dotted: a for a in info[which]}


def openssl_cms_verify(tmp: Path, der: bytes, roots: list) -> tuple[subprocess.CompletedProcess, bytes]:
    (tmp / "sig.p7s").write_bytes(der)
    write_certificates(tmp / "roots.pem", roots)
    out = tmp / "content.txt"
    result = subprocess.run(
        [OPENSSL, "cms", "-verify", "-inform", "DER", "-in", str(tmp / "sig.p7s"), "-CAfile",
         str(tmp / "roots.pem"), "-purpose", "any", "-out", str(out)],
        capture_output=True, text=True, timeout=30,
    )
    return result, out.read_bytes() if out.exists() else b""


def verify_signer_info(info: cms.SignerInfo, cert) -> None:
    """Our own check that the RSA signature covers the DER SET OF the stored signed attributes."""
    contents = info["signed_attrs"].contents
    assert len(contents) < 0x10000
    header = b"\x31\x82" + struct.pack(">H", len(contents)) if len(contents) > 0xFF else (
        b"\x31\x81" + bytes([len(contents)]) if len(contents) > 0x7F else b"\x31" + bytes([len(contents)]))
    algorithm = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[
        info["digest_algorithm"]["algorithm"].native]
    cert.public_key().verify(info["signature"].native, header + contents, padding.PKCS1v15(), algorithm)


def token_of(info: cms.SignerInfo) -> cms.ContentInfo:
    (value,) = attrs(info, "unsigned_attrs")[oids.ATTR_TIMESTAMP_TOKEN]["values"]
    return value


def imprint_of(token: cms.ContentInfo) -> tuple[str, bytes]:
    tst = tsp.TSTInfo.load(bytes(token["content"]["encap_content_info"]["content"])).native
    return tst["message_imprint"]["hash_algorithm"]["algorithm"], tst["message_imprint"]["hashed_message"]


@pytest.fixture
def signed_package(unsigned_package, signing_identity, tsa_server, tmp_path) -> Path:
    return sign_package(unsigned_package, identity=signing_identity, output=tmp_path / "signed.nupkg",
                        timestamper=tsa_server.url)


@pytest.fixture
def repo_identity(pki) -> SigningIdentity:
    return identity_of(pki.issue_code_signing("Repository Signer", issuer=pki.intermediate))


# --- the author signature profile ----------------------------------------------------------------


@needs_openssl
@pytest.mark.parametrize("algorithm", ["sha256", "sha384", "sha512"])
def test_author_signature_verifies_with_openssl(pki, unsigned_package, signing_identity, tsa_server, tmp_path, algorithm):
    original = unsigned_package.read_bytes()
    (tmp_path / "out").mkdir()
    out = sign_package(unsigned_package, identity=signing_identity, output=tmp_path / "out",
                       hash_algorithm=algorithm, timestamper=tsa_server.url, timestamp_hash_algorithm=algorithm)
    assert out == tmp_path / "out" / unsigned_package.name  # a directory keeps the file name
    der = read_signature(out)
    result, content = openssl_cms_verify(tmp_path, der, [pki.root.certificate])
    assert result.returncode == 0, result.stderr
    expected = signature_content(algorithm, hashlib.new(algorithm, original).digest())
    assert content == expected
    oid = oids.HASH_OIDS[algorithm]
    assert expected == f"Version:1\n\n{oid}-Hash:{base64.b64encode(hashlib.new(algorithm, original).digest()).decode()}\n\n".encode()
    # the package hash a verifier recomputes from the signed file is the hash in the content
    assert PackageArchive.open(out).package_hash(algorithm) == hashlib.new(algorithm, original).digest()
    assert unsigned_package.read_bytes() == original  # input untouched when an output is given


@needs_openssl
def test_openssl_rejects_a_tampered_signature(pki, signed_package, tmp_path):
    der = bytearray(read_signature(signed_package))
    at = der.find(b"Version:1")
    der[at + 30] ^= 0x01  # one bit of the signed content
    result, _ = openssl_cms_verify(tmp_path, bytes(der), [pki.root.certificate])
    assert result.returncode != 0
    result, _ = openssl_cms_verify(tmp_path, read_signature(signed_package), [pki.tsa_root.certificate])
    assert result.returncode != 0  # and a root that did not issue the signer


def test_signed_package_is_an_ordinary_zip(signed_package, unsigned_package):
    with zipfile.ZipFile(signed_package) as z:
        assert z.testzip() is None
        names = z.namelist()
        assert names[-1] == ".signature.p7s"
        assert z.getinfo(".signature.p7s").compress_type == zipfile.ZIP_STORED
        with zipfile.ZipFile(unsigned_package) as u:
            assert names[:-1] == u.namelist()
            assert all(z.read(n) == u.read(n) for n in u.namelist())


def test_cms_structure_matches_format_profile(pki, signed_package, signing_identity):
    der = read_signature(signed_package)
    sd = signed_data(der)
    (info,) = sd["signer_infos"]
    # version 3 / SKI because the test certificate has a subject key identifier
    assert sd["version"].native == "v3" and info["version"].native == "v3"
    ski = pki.leaf.asn1.key_identifier
    assert info["sid"].name == "subject_key_identifier" and info["sid"].chosen.native == ski
    assert [a["algorithm"].native for a in sd["digest_algorithms"]] == ["sha256"]
    assert info["digest_algorithm"]["algorithm"].native == "sha256"
    assert info["signature_algorithm"]["algorithm"].dotted == oids.RSA_ENCRYPTION_OID
    assert sd["encap_content_info"]["content_type"].dotted == oids.ID_DATA
    # the whole chain including the root, as given
    assert {c.chosen.dump() for c in sd["certificates"]} == {pki.leaf.der, pki.intermediate.der, pki.root.der}

    signed = attrs(info)
    assert set(signed) == {oids.ATTR_CONTENT_TYPE, oids.ATTR_SIGNING_TIME, oids.ATTR_COMMITMENT_TYPE,
                           oids.ATTR_MESSAGE_DIGEST, oids.ATTR_SIGNING_CERTIFICATE_V2}
    assert all(len(a["values"]) == 1 for a in signed.values())
    assert signed[oids.ATTR_CONTENT_TYPE]["values"][0].dotted == oids.ID_DATA
    assert signed[oids.ATTR_COMMITMENT_TYPE]["values"][0]["commitment_type_id"].dotted == oids.COMMITMENT_AUTHOR
    content = bytes(sd["encap_content_info"]["content"])
    assert signed[oids.ATTR_MESSAGE_DIGEST]["values"][0].native == hashlib.sha256(content).digest()
    # DER SET OF: the stored attributes are in sorted order
    encodings = [a.dump() for a in info["signed_attrs"]]
    assert encodings == sorted(encodings)
    verify_signer_info(info, pki.leaf.certificate)


def test_signing_certificate_v2_is_written_like_nuget(pki, signed_package):
    info = signed_data(read_signature(signed_package))["signer_infos"][0]
    value = attrs(info)[oids.ATTR_SIGNING_CERTIFICATE_V2]["values"][0]
    (cert_id,) = value["certs"]
    # hashAlgorithm explicit (even for the SHA-256 default) and without NULL parameters
    assert cert_id["hash_algorithm"].dump() == bytes.fromhex("300b0609608648016503040201")
    assert cert_id["cert_hash"].native == hashlib.sha256(pki.leaf.der).digest()
    (name,) = cert_id["issuer_serial"]["issuer"]
    assert name.name == "directory_name" and name.chosen == pki.leaf.asn1.issuer
    assert cert_id["issuer_serial"]["serial_number"].native == pki.leaf.serial
    assert value["policies"].native is None


@pytest.mark.parametrize("algorithm", ["sha384", "sha512"])
def test_sha2_variants_use_the_same_hash_everywhere(pki, unsigned_package, signing_identity, tmp_path, algorithm):
    out = sign_package(unsigned_package, identity=signing_identity, output=tmp_path / "s.nupkg",
                       hash_algorithm=algorithm.upper(), on_warning=lambda w: None)
    sd = signed_data(read_signature(out))
    info = sd["signer_infos"][0]
    assert info["digest_algorithm"]["algorithm"].native == algorithm
    cert_id = attrs(info)[oids.ATTR_SIGNING_CERTIFICATE_V2]["values"][0]["certs"][0]
    assert cert_id["hash_algorithm"]["algorithm"].native == algorithm
    assert cert_id["cert_hash"].native == hashlib.new(algorithm, pki.leaf.der).digest()
    assert f"{oids.HASH_OIDS[algorithm]}-Hash:".encode() in bytes(sd["encap_content_info"]["content"])
    verify_signer_info(info, pki.leaf.certificate)


def test_issuer_and_serial_when_the_certificate_has_no_ski(pki, unsigned_package, tmp_path):
    leaf = pki.issue_code_signing("No SKI signer", ski=False)
    out = sign_package(unsigned_package, identity=identity_of(leaf), output=tmp_path / "s.nupkg",
                       on_warning=lambda w: None)
    sd = signed_data(read_signature(out))
    info = sd["signer_infos"][0]
    assert sd["version"].native == "v1" and info["version"].native == "v1"
    sid = info["sid"].chosen
    assert info["sid"].name == "issuer_and_serial_number"
    assert sid["issuer"] == leaf.asn1.issuer and sid["serial_number"].native == leaf.serial


def test_signing_time_attribute(unsigned_package, signing_identity, tmp_path, pki):
    moment = pki.now - timedelta(days=3, seconds=7)
    out = sign_package(unsigned_package, identity=signing_identity, output=tmp_path / "s.nupkg",
                       signing_time=moment, on_warning=lambda w: None)
    value = attrs(signed_data(read_signature(out))["signer_infos"][0])[oids.ATTR_SIGNING_TIME]["values"][0]
    assert value.name == "utc_time"  # RFC 5652: UTCTime before 2050
    assert value.native == moment


def test_timestamp_covers_the_signature_value(pki, unsigned_package, signing_identity, make_tsa, tmp_path):
    server = make_tsa()
    out = sign_package(unsigned_package, identity=signing_identity, output=tmp_path / "s.nupkg",
                       timestamper=server.url, timestamp_hash_algorithm="SHA512")
    info = signed_data(read_signature(out))["signer_infos"][0]
    assert set(attrs(info, "unsigned_attrs")) == {oids.ATTR_TIMESTAMP_TOKEN}
    algorithm, imprint = imprint_of(token_of(info))
    assert algorithm == "sha512"
    assert imprint == hashlib.sha512(info["signature"].native).digest()
    assert len(server.requests) == 1


@needs_openssl
def test_openssl_verifies_the_embedded_timestamp(pki, signed_package, tmp_path):
    info = signed_data(read_signature(signed_package))["signer_infos"][0]
    (tmp_path / "token.der").write_bytes(token_of(info).dump())
    write_certificates(tmp_path / "tsa.pem", [pki.tsa_root.certificate])
    digest = hashlib.sha256(info["signature"].native).hexdigest()
    result = subprocess.run(
        [OPENSSL, "ts", "-verify", "-digest", digest, "-token_in", "-in", str(tmp_path / "token.der"),
         "-CAfile", str(tmp_path / "tsa.pem")], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr


@needs_openssl
def test_sign_with_the_openssl_timestamp_server(pki, unsigned_package, signing_identity, tmp_path):
    with OpenSSLTimestampServer(pki.tsa, tmp_path / "tsa") as server:
        out = sign_package(unsigned_package, identity=signing_identity, output=tmp_path / "s.nupkg",
                           timestamper=server.url, timestamp_hash_algorithm="sha384")
    info = signed_data(read_signature(out))["signer_infos"][0]
    assert imprint_of(token_of(info)) == ("sha384", hashlib.sha384(info["signature"].native).digest())
    result, _ = openssl_cms_verify(tmp_path, read_signature(out), [pki.root.certificate])
    assert result.returncode == 0, result.stderr


def test_attribute_set_matches_nuget_reference(signed_package):
    reference = signed_data(REFERENCE.read_bytes())["signer_infos"][0]
    ours = signed_data(read_signature(signed_package))["signer_infos"][0]
    assert set(attrs(ours)) == set(attrs(reference))
    assert ours["signature_algorithm"].dump() == reference["signature_algorithm"].dump()
    assert ours["digest_algorithm"].dump() == reference["digest_algorithm"].dump()
    ref_id = attrs(reference)[oids.ATTR_SIGNING_CERTIFICATE_V2]["values"][0]["certs"][0]
    our_id = attrs(ours)[oids.ATTR_SIGNING_CERTIFICATE_V2]["values"][0]["certs"][0]
    assert our_id["hash_algorithm"].dump() == ref_id["hash_algorithm"].dump()


# --- repository signatures and countersignatures -------------------------------------------------


def test_repository_primary_signature(pki, unsigned_package, repo_identity, tmp_path):
    out = sign_package(unsigned_package, identity=repo_identity, output=tmp_path / "r.nupkg",
                       repository=REPO, on_warning=lambda w: None)
    info = signed_data(read_signature(out))["signer_infos"][0]
    signed = attrs(info)
    assert signed[oids.ATTR_COMMITMENT_TYPE]["values"][0]["commitment_type_id"].dotted == oids.COMMITMENT_REPOSITORY
    assert signed[oids.ATTR_NUGET_SERVICE_INDEX]["values"].native == [SERVICE_INDEX]
    assert signed[oids.ATTR_NUGET_OWNERS]["values"].native == [["alice", "bob"]]
    verify_signer_info(info, repo_identity.certificate)


def test_owners_attribute_is_omitted_when_empty(unsigned_package, repo_identity, tmp_path):
    out = sign_package(unsigned_package, identity=repo_identity, output=tmp_path / "r.nupkg",
                       repository=RepositoryOptions(SERVICE_INDEX), on_warning=lambda w: None)
    signed = attrs(signed_data(read_signature(out))["signer_infos"][0])
    assert oids.ATTR_NUGET_OWNERS not in signed and oids.ATTR_NUGET_SERVICE_INDEX in signed


@pytest.mark.parametrize("url", ["http://api.example.test/v3/index.json", "index.json", "https://", "ftp://x/y"])
def test_service_index_must_be_absolute_https(url):
    with pytest.raises(SigningError, match="https"):
        RepositoryOptions(url)


@pytest.mark.parametrize("owners", [("",), ("ok", "  ")])
def test_owners_must_not_be_blank(owners):
    with pytest.raises(SigningError, match="owner"):
        RepositoryOptions(SERVICE_INDEX, owners)


@needs_openssl
def test_repository_countersignature_keeps_the_primary(pki, signed_package, repo_identity, make_tsa, tmp_path):
    before_der = read_signature(signed_package)
    before = signed_data(before_der)
    primary_before = before["signer_infos"][0]
    server = make_tsa()
    out = sign_package(signed_package, identity=repo_identity, output=tmp_path / "c.nupkg",
                       repository=REPO, timestamper=server.url)
    after = signed_data(read_signature(out))
    (primary,) = after["signer_infos"]
    # every byte the primary signature and its timestamp cover is unchanged
    assert primary["signed_attrs"].dump() == primary_before["signed_attrs"].dump()
    assert primary["signature"].dump() == primary_before["signature"].dump()
    assert after["encap_content_info"].dump() == before["encap_content_info"].dump()
    assert token_of(primary).dump() == token_of(primary_before).dump()
    assert after["version"].native == before["version"].native
    # the countersignature
    (counter,) = attrs(primary, "unsigned_attrs")[oids.ATTR_COUNTERSIGNATURE]["values"]
    signed = attrs(counter)
    assert oids.ATTR_CONTENT_TYPE not in signed
    assert set(signed) == {oids.ATTR_SIGNING_TIME, oids.ATTR_COMMITMENT_TYPE, oids.ATTR_MESSAGE_DIGEST,
                           oids.ATTR_SIGNING_CERTIFICATE_V2, oids.ATTR_NUGET_SERVICE_INDEX, oids.ATTR_NUGET_OWNERS}
    assert signed[oids.ATTR_MESSAGE_DIGEST]["values"][0].native == hashlib.sha256(primary["signature"].native).digest()
    assert signed[oids.ATTR_COMMITMENT_TYPE]["values"][0]["commitment_type_id"].dotted == oids.COMMITMENT_REPOSITORY
    verify_signer_info(counter, repo_identity.certificate)
    algorithm, imprint = imprint_of(token_of(counter))
    assert imprint == hashlib.new(algorithm, counter["signature"].native).digest()
    # the repository certificate joins the outer certificate set
    assert repo_identity.certificate.public_bytes(Encoding.DER) in {
        c.chosen.dump() for c in after["certificates"]}
    # the package hash is unchanged and the primary still verifies
    assert PackageArchive.open(out).package_hash("sha256") == PackageArchive.open(signed_package).package_hash("sha256")
    result, _ = openssl_cms_verify(tmp_path, read_signature(out), [pki.root.certificate])
    assert result.returncode == 0, result.stderr


def test_only_one_repository_countersignature(signed_package, repo_identity, tmp_path):
    once = sign_package(signed_package, identity=repo_identity, output=tmp_path / "c.nupkg",
                        repository=REPO, on_warning=lambda w: None)
    with pytest.raises(SigningError) as caught:
        sign_package(once, identity=repo_identity, output=tmp_path / "cc.nupkg", repository=REPO)
    assert caught.value.code == "NU3032"
    assert not (tmp_path / "cc.nupkg").exists()


def test_no_countersignature_on_a_repository_primary(unsigned_package, repo_identity, tmp_path):
    primary = sign_package(unsigned_package, identity=repo_identity, output=tmp_path / "r.nupkg",
                           repository=REPO, on_warning=lambda w: None)
    with pytest.raises(SigningError) as caught:
        countersign_signature(read_signature(primary), identity=repo_identity, repository=REPO)
    assert caught.value.code == "NU3033"


def test_countersigning_the_nuget_reference_keeps_its_primary(repo_identity):
    # the reference already has a repository countersignature: NU3032
    with pytest.raises(SigningError) as caught:
        countersign_signature(REFERENCE.read_bytes(), identity=repo_identity, repository=REPO)
    assert caught.value.code == "NU3032"


# --- overwrite -----------------------------------------------------------------------------------


def test_already_signed_needs_overwrite(pki, signed_package, unsigned_package, tmp_path):
    other = identity_of(pki.issue_code_signing("Second Author"))
    with pytest.raises(SigningError) as caught:
        sign_package(signed_package, identity=other, output=tmp_path / "o.nupkg")
    assert caught.value.code == "NU3001" and str(signed_package) in str(caught.value)
    out = sign_package(signed_package, identity=other, output=tmp_path / "o.nupkg", overwrite=True,
                       on_warning=lambda w: None)
    sd = signed_data(read_signature(out))
    assert {c.chosen.dump() for c in sd["certificates"]} >= {other.certificate.public_bytes(
        Encoding.DER)}
    assert pki.leaf.der not in {c.chosen.dump() for c in sd["certificates"]}
    assert PackageArchive.open(out).package_hash("sha256") == hashlib.sha256(unsigned_package.read_bytes()).digest()
    with zipfile.ZipFile(out) as z:
        assert z.namelist().count(".signature.p7s") == 1


def test_sign_in_place_by_default(unsigned_package, signing_identity):
    original = unsigned_package.read_bytes()
    out = sign_package(unsigned_package, identity=signing_identity, on_warning=lambda w: None)
    assert out == unsigned_package
    assert PackageArchive.open(out).is_signed
    assert PackageArchive.open(out).package_hash("sha256") == hashlib.sha256(original).digest()


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("knobs", "code", "text"),
    [
        ({"key_size": 1024}, "NU3014", "1024-bit RSA"),
        ({"key_type": "ec", "key_size": 256}, "NU3014", "EllipticCurve"),
        ({"hash_algorithm": "sha1"}, "NU3013", "sha1WithRSAEncryption"),
        ({"eku": [LIFETIME_SIGNING, CODE_SIGNING]}, "NU3015", "lifetime"),
        ({"eku": [CLIENT_AUTH]}, "NU3012", "not valid for code signing"),
        ({"not_before": "future"}, "NU3017", "not valid before"),
        ({"not_after": "past"}, "NU3018", "expired"),
    ],
)
def test_certificate_refusals(pki, unsigned_package, tmp_path, tsa_server, knobs, code, text):
    knobs = dict(knobs)
    if knobs.get("not_before") == "future":
        knobs["not_before"] = pki.now + timedelta(days=1)
    if knobs.get("not_after") == "past":
        knobs["not_after"] = pki.now - timedelta(days=1)
    cert = pki.issue_code_signing(f"Refused {code} {text}", **knobs)
    requests_before = tsa_server.request_count
    with pytest.raises(SigningError, match=text) as caught:
        sign_package(unsigned_package, identity=identity_of(cert), output=tmp_path / "x.nupkg",
                     timestamper=tsa_server.url)
    assert caught.value.code == code
    assert not (tmp_path / "x.nupkg").exists()
    assert tsa_server.request_count == requests_before  # refused before contacting the TSA


def test_certificate_without_eku_is_any_purpose(pki, unsigned_package, tmp_path):
    cert = pki.issue_code_signing("No EKU signer", eku=None)
    sign_package(unsigned_package, identity=identity_of(cert), output=tmp_path / "x.nupkg", on_warning=lambda w: None)
    assert PackageArchive.open(tmp_path / "x.nupkg").is_signed


def test_expired_chain_certificate(pki, unsigned_package, tmp_path):
    old_ca = pki.issue_ca("Expired Intermediate", issuer=pki.root, not_after=pki.now - timedelta(days=1))
    leaf = pki.issue_code_signing("Leaf under expired CA", issuer=old_ca, not_after=pki.now + timedelta(days=30))
    with pytest.raises(SigningError, match="Expired Intermediate") as caught:
        sign_package(unsigned_package, identity=identity_of(leaf), output=tmp_path / "x.nupkg")
    assert caught.value.code == "NU3018"


def test_signing_time_in_the_past_allows_a_now_expired_certificate(pki, unsigned_package, tmp_path):
    cert = pki.issue_code_signing("Expired yesterday", not_before=pki.now - timedelta(days=10),
                                  not_after=pki.now - timedelta(days=1))
    out = sign_package(unsigned_package, identity=identity_of(cert), output=tmp_path / "x.nupkg",
                       signing_time=pki.now - timedelta(days=5), on_warning=lambda w: None)
    assert PackageArchive.open(out).is_signed


def test_key_must_match_the_certificate(pki, unsigned_package, tmp_path):
    identity = SigningIdentity(pki.leaf.certificate, pki.intermediate.private_key, ())
    with pytest.raises(SigningError, match="does not belong") as caught:
        sign_package(unsigned_package, identity=identity, output=tmp_path / "x.nupkg")
    assert caught.value.code == "NU3001"


@pytest.mark.parametrize("argument", ["hash_algorithm", "timestamp_hash_algorithm"])
@pytest.mark.parametrize("value", ["sha1", "md5", "SHA3-256"])
def test_weak_or_unknown_hash_algorithms(unsigned_package, signing_identity, tmp_path, argument, value):
    with pytest.raises(SigningError, match="not supported"):
        sign_package(unsigned_package, identity=signing_identity, output=tmp_path / "x.nupkg", **{argument: value})


def test_zip64_is_refused(unsigned_package, signing_identity, tmp_path):
    package = tmp_path / "zip64.nupkg"
    with zipfile.ZipFile(package, "w") as z:
        with z.open("big.bin", "w", force_zip64=True) as f:  # ZIP64 extra field in the local header
            f.write(b"data")
    with pytest.raises(SigningError) as caught:
        sign_package(package, identity=signing_identity, output=tmp_path / "x.nupkg")
    assert caught.value.code == "NU3006" and str(package) in str(caught.value)


@pytest.mark.parametrize("name", ["EmptyZip64.zip", "CentralDirectoryHeaderWithZip64ExtraField.zip",
                                  "LocalFileHeaderWithZip64ExtraField.zip"])
def test_zip64_corpus_files_are_refused(signing_identity, tmp_path, name):
    source = ZIP_EDGE / name
    with pytest.raises(SigningError) as caught:
        sign_package(source, identity=signing_identity, output=tmp_path / "x.nupkg")
    assert caught.value.code == "NU3006"


def _zip_with_entries(path: Path, count: int) -> Path:
    """A stored zip of `count` empty entries, written directly (zipfile is too slow for 65k)."""
    local, central = bytearray(), bytearray()
    for i in range(count):
        name = b"%d" % i
        offset = len(local)
        local += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 0, 0, 0x21, 0, 0, 0, len(name), 0) + name
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, 0, 0, 0x21, 0, 0, 0, len(name),
                               0, 0, 0, 0, 0, offset) + name
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(central), len(local), 0)
    path.write_bytes(bytes(local + central + eocd))
    return path


def test_too_many_entries_is_refused(signing_identity, tmp_path):
    ok = _zip_with_entries(tmp_path / "ok.nupkg", 65532)
    sign_package(ok, identity=signing_identity, output=tmp_path / "ok-signed.nupkg", on_warning=lambda w: None)
    with zipfile.ZipFile(tmp_path / "ok-signed.nupkg") as z:
        assert len(z.infolist()) == 65533
    package = _zip_with_entries(tmp_path / "many.nupkg", 65533)
    with pytest.raises(SigningError, match="Zip64") as caught:
        sign_package(package, identity=signing_identity, output=tmp_path / "x.nupkg")
    assert caught.value.code == "NU3039"


def test_not_a_zip(signing_identity, tmp_path):
    bogus = tmp_path / "bogus.nupkg"
    bogus.write_bytes(b"not a zip at all")
    with pytest.raises(Exception) as caught:
        sign_package(bogus, identity=signing_identity, output=tmp_path / "x.nupkg")
    assert str(bogus) in str(caught.value)


@pytest.mark.parametrize(
    ("knobs", "code"),
    [({"wrong_nonce": True}, "NU3026"), ({"wrong_imprint": True}, "NU3019"), ({"http_status": 500}, "NU3000")],
)
def test_timestamp_failure_writes_nothing(unsigned_package, signing_identity, make_tsa, tmp_path, knobs, code):
    original = unsigned_package.read_bytes()
    with pytest.raises(SigningError) as caught:
        sign_package(unsigned_package, identity=signing_identity, timestamper=make_tsa(**knobs).url)
    assert caught.value.code == code
    assert str(unsigned_package) in str(caught.value)  # names the package, not a temporary copy
    assert unsigned_package.read_bytes() == original
    assert sorted(p.name for p in unsigned_package.parent.iterdir()) == [unsigned_package.name]


def test_timestamp_timeout(unsigned_package, signing_identity, make_tsa, tmp_path):
    with pytest.raises(SigningError, match="did not answer within 0.3 s"):
        sign_package(unsigned_package, identity=signing_identity, output=tmp_path / "x.nupkg",
                     timestamper=make_tsa(hang=20).url, timestamp_timeout=0.3)


def test_tsa_without_timestamping_eku_is_refused(pki, unsigned_package, signing_identity, make_tsa, tmp_path):
    bad = pki.issue_tsa("Code signing cert used as TSA", eku=[CODE_SIGNING], eku_critical=False)
    with pytest.raises(SigningError, match="timeStamping") as caught:
        sign_package(unsigned_package, identity=signing_identity, output=tmp_path / "x.nupkg",
                     timestamper=make_tsa(bad).url)
    assert caught.value.code == "NU3028"


# --- warnings ------------------------------------------------------------------------------------


def test_no_timestamper_warns_nu3002(unsigned_package, signing_identity, tmp_path, tsa_server):
    seen: list[Issue] = []
    sign_package(unsigned_package, identity=signing_identity, output=tmp_path / "a.nupkg", on_warning=seen.append)
    assert [w.code for w in seen] == ["NU3002"]
    with pytest.warns(UserWarning, match="NU3002"):
        sign_package(unsigned_package, identity=signing_identity, output=tmp_path / "b.nupkg")
    seen.clear()
    sign_package(unsigned_package, identity=signing_identity, output=tmp_path / "c.nupkg",
                 timestamper=tsa_server.url, on_warning=seen.append)
    assert seen == []


# --- identities ----------------------------------------------------------------------------------


def test_identity_from_pkcs12(pki, tmp_path):
    pfx = pki.leaf.write_pfx(tmp_path / "leaf.pfx", "s3cret")
    identity = SigningIdentity.from_pkcs12(pfx, "s3cret")
    assert identity.certificate == pki.leaf.certificate
    assert set(identity.chain) == {pki.intermediate.certificate, pki.root.certificate}
    with pytest.raises(SigningError, match="wrong password") as caught:
        SigningIdentity.from_pkcs12(pfx, "wrong")
    assert caught.value.code == "NU3001" and str(pfx) in str(caught.value)
    with pytest.raises(SigningError, match="cannot read the file"):
        SigningIdentity.from_pkcs12(tmp_path / "missing.pfx", "x")


def test_identity_from_pem(pki, tmp_path):
    chain_pem, key_pem = pki.leaf.write_pem(tmp_path, chain=True)
    identity = SigningIdentity.from_pem(chain_pem, key_pem)
    assert identity.certificate == pki.leaf.certificate
    assert identity.chain == (pki.intermediate.certificate, pki.root.certificate)
    # key in the same file, chain certificates listed before the leaf
    combined = tmp_path / "combined.pem"
    combined.write_bytes(pki.root.pem + pki.leaf.pem + pki.leaf.key_pem)
    identity = SigningIdentity.from_pem(combined)
    assert identity.certificate == pki.leaf.certificate and identity.chain == (pki.root.certificate,)
    # an encrypted key needs its password
    _, encrypted = pki.leaf.write_pem(tmp_path / "enc", key_password="pw")
    assert SigningIdentity.from_pem(chain_pem, encrypted, "pw").certificate == pki.leaf.certificate
    with pytest.raises(SigningError, match="private key"):
        SigningIdentity.from_pem(chain_pem, encrypted)
    with pytest.raises(SigningError, match="no certificate matches"):
        SigningIdentity.from_pem(chain_pem, pki.tsa.write_pem(tmp_path / "t")[1])


# --- CLI -----------------------------------------------------------------------------------------


def test_cli_signs_with_pfx(pki, unsigned_package, tsa_server, tmp_path, capsys):
    pfx = pki.leaf.write_pfx(tmp_path / "leaf.pfx", "pw")
    second = make_package(tmp_path / "in" / "Second.2.0.0.nupkg", "Second", "2.0.0")
    code = main(["sign", str(unsigned_package), str(second), "--certificate-path", str(pfx),
                 "--certificate-password", "pw", "--timestamper", tsa_server.url,
                 "--hash-algorithm", "SHA384", "--timestamp-hash-algorithm", "SHA512", "-o", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.err == ""
    for name in (unsigned_package.name, second.name):
        out = tmp_path / "out" / name
        assert f"signed {out}" in captured.out
        info = signed_data(read_signature(out))["signer_infos"][0]
        assert info["digest_algorithm"]["algorithm"].native == "sha384"
        assert imprint_of(token_of(info))[0] == "sha512"
    assert not PackageArchive.open(unsigned_package).is_signed


def test_cli_pem_key_and_nu3002_warning(pki, unsigned_package, tmp_path, capsys):
    cert, key = pki.leaf.write_pem(tmp_path, chain=True)
    assert main(["sign", str(unsigned_package), "--certificate-path", str(cert), "--key", str(key)]) == 0
    captured = capsys.readouterr()
    assert "warning: NU3002" in captured.err
    sd = signed_data(read_signature(unsigned_package))
    assert len(sd["certificates"]) == 3  # chain certificates from the PEM file went into the CMS


def test_cli_repository_countersign_and_overwrite(pki, signed_package, tsa_server, tmp_path, capsys):
    repo = pki.issue_code_signing("CLI repository signer")
    pfx = repo.write_pfx(tmp_path / "repo.pfx", "pw")
    args = ["sign", str(signed_package), "--certificate-path", str(pfx), "--certificate-password", "pw",
            "--timestamper", tsa_server.url]
    assert main([*args, "--repository", "--service-index", SERVICE_INDEX, "--owners", "a; b;"]) == 0
    primary = signed_data(read_signature(signed_package))["signer_infos"][0]
    (counter,) = attrs(primary, "unsigned_attrs")[oids.ATTR_COUNTERSIGNATURE]["values"]
    assert attrs(counter)[oids.ATTR_NUGET_OWNERS]["values"].native == [["a", "b"]]
    # signing again without --overwrite: NU3001, exit 2, one line
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "NU3001" in err and err.count("\n") == 1
    # with --overwrite: one author signature by the new certificate
    assert main([*args, "--overwrite"]) == 0
    primary = signed_data(read_signature(signed_package))["signer_infos"][0]
    assert oids.ATTR_COUNTERSIGNATURE not in attrs(primary, "unsigned_attrs")
    assert attrs(primary)[oids.ATTR_SIGNING_CERTIFICATE_V2]["values"][0]["certs"][0]["cert_hash"].native == \
        hashlib.sha256(repo.der).digest()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--repository"], "--service-index"),
        (["--service-index", SERVICE_INDEX], "--repository"),
        (["--repository", "--service-index", "http://insecure.test/index.json"], "https"),
        (["--certificate-password", "wrong"], "wrong password"),
    ],
)
def test_cli_usage_errors(pki, unsigned_package, tmp_path, capsys, extra, message):
    pfx = pki.leaf.write_pfx(tmp_path / "leaf.pfx", "pw")
    args = ["sign", str(unsigned_package), "--certificate-path", str(pfx)]
    if "--certificate-password" not in extra:
        args += ["--certificate-password", "pw"]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not PackageArchive.open(unsigned_package).is_signed


def test_cli_rejects_sha1(pki, unsigned_package, tmp_path, capsys):
    pfx = pki.leaf.write_pfx(tmp_path / "leaf.pfx", "pw")
    with pytest.raises(SystemExit) as caught:
        main(["sign", str(unsigned_package), "--certificate-path", str(pfx), "--hash-algorithm", "SHA1"])
    assert caught.value.code == 2
    assert "SHA256, SHA384, SHA512" in capsys.readouterr().err


def test_cli_certificate_refusal_names_the_code(pki, unsigned_package, tmp_path, capsys):
    weak = pki.issue_code_signing("CLI weak key", key_size=1024)
    pfx = weak.write_pfx(tmp_path / "weak.pfx", "pw")
    assert main(["sign", str(unsigned_package), "--certificate-path", str(pfx), "--certificate-password", "pw"]) == 2
    err = capsys.readouterr().err
    assert "NU3014" in err and str(pfx) in err


# --- round trip through the parser ---------------------------------------------------------------


def test_round_trip_through_parse_signature(pki, unsigned_package, repo_identity, make_tsa, tmp_path):
    signature = pytest.importorskip("trustpolicy._internal.signature")
    gen_time = pki.now - timedelta(minutes=5)
    server = make_tsa(gen_time=gen_time)
    author = sign_package(unsigned_package, identity=identity_of(pki.leaf), output=tmp_path / "a.nupkg",
                          timestamper=server.url)
    both = sign_package(author, identity=repo_identity, output=tmp_path / "ar.nupkg", repository=REPO,
                        timestamper=server.url)
    parsed = signature.parse_signature(read_signature(both))
    assert parsed.kind == "author" and parsed.placement == "primary"
    assert parsed.signer_certificate.dump() == pki.leaf.der
    assert parsed.content.hash_algorithm == "sha256"
    assert parsed.content.hash_value == hashlib.sha256(unsigned_package.read_bytes()).digest()
    assert parsed.service_index is None and parsed.owners == ()
    assert [t.gen_time for t in parsed.timestamps] == [gen_time]
    assert parsed.timestamps[0].problem is None
    assert parsed.timestamps[0].tsa_certificate.dump() == pki.tsa.der
    counter = parsed.countersignature
    assert counter is not None
    assert counter.kind == "repository" and counter.placement == "countersignature"
    assert counter.service_index == SERVICE_INDEX and counter.owners == ("alice", "bob")
    assert counter.signer_certificate.dump() == repo_identity.certificate.public_bytes(
        Encoding.DER)
    assert [t.gen_time for t in counter.timestamps] == [gen_time]
    # a repository primary
    repo_only = sign_package(unsigned_package, identity=repo_identity, output=tmp_path / "r.nupkg",
                             repository=RepositoryOptions(SERVICE_INDEX), on_warning=lambda w: None)
    parsed = signature.parse_signature(read_signature(repo_only))
    assert parsed.kind == "repository" and parsed.service_index == SERVICE_INDEX and parsed.owners == ()
    assert parsed.timestamps == () and parsed.countersignature is None


def test_countersign_an_untimestamped_author_signature(pki, unsigned_package, signing_identity, repo_identity, tmp_path):
    author = sign_package(unsigned_package, identity=signing_identity, output=tmp_path / "a.nupkg",
                          on_warning=lambda w: None)
    before = signed_data(read_signature(author))["signer_infos"][0]
    assert isinstance(before["unsigned_attrs"], core.Void)
    out = sign_package(author, identity=repo_identity, output=tmp_path / "c.nupkg", repository=REPO,
                       on_warning=lambda w: None)
    primary = signed_data(read_signature(out))["signer_infos"][0]
    assert primary["signed_attrs"].dump() == before["signed_attrs"].dump()
    assert set(attrs(primary, "unsigned_attrs")) == {oids.ATTR_COUNTERSIGNATURE}
    verify_signer_info(primary, pki.leaf.certificate)
