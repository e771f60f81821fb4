"""trustpolicy._internal.signature on the real NuGet corpus, plus structural defects built from it.

Mutated signatures are made by editing the asn1crypto structures of a corpus signature and
re-encoding them. Their cryptographic signatures become invalid, which does not matter here: these
tests check the parse-time NU codes (docs/verification.md section 2), not validity.
"""

from __future__ import annotations

import base64
import hashlib
import zipfile
from collections.abc import Callable
from datetime import timedelta

import pytest
from asn1crypto import algos, cms, core, tsp, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from datafiles import SIGNED
from hypothesis import HealthCheck, given, settings, strategies as st

from trustpolicy._internal import asn1 as oids
from trustpolicy._internal.signature import (
    MAX_SIGNATURE_SIZE,
    PrimarySignature,
    Signature,
    SignatureContent,
    fingerprint,
    parse_signature,
)
from trustpolicy.errors import SignatureFormatError

NUGET_ORG = "https://api.nuget.org/v3/index.json"
TEST_REPO = "https://v3ServiceIndex.test/api/index"
LOOSE_REPO = "https://api.nuget.test/v3/index.json"
MICROSOFT_AUTHOR_SHA256 = "3F9001EA83C560D712C24CF213C3D312CB3BFF51EE89435D3430BD06B5D0EECE"  # NuGet docs
NUGET_ORG_REPOSITORY_SHA256 = "0E5F38F57DC1BCC806D8494F4F90FBCEDD988B46760709CBEEC6F4219AA6157D"

# file -> (kind, service index, owners, primary timestamps, countersignature (url, owners, timestamps) or None)
EXPECTED = {
    "nuget.versioning.5.0.0.nupkg": ("author", None, (), 1, (NUGET_ORG, ("Microsoft", "nuget"), 1)),
    "TestPackage.AuthorSigned.1.0.0.nupkg": ("author", None, (), 1, None),
    "Test.Reposigned.1.0.0.nupkg": ("repository", TEST_REPO, (), 0, None),
    "Test.RepoCountersigned.1.0.0.nupkg": ("repository", TEST_REPO, (), 0, None),
    "SignedPackage.1.0.0.nupkg": ("author", None, (), 0, None),
    "UnavailableCrlPackage.nupkg": ("author", None, (), 1, None),
    "ExpiredPrimaryAndTimestampCertificatesWithUnavailableRevocationInfo.nupkg": ("author", None, (), 1, None),
    "TimestampInvalidGenTimePackage.nupkg": ("author", None, (), 1, None),
    "UntrustedTimestampPackage.nupkg": ("author", None, (), 1, None),
    "loose-author-countersigned.signature.p7s": ("author", None, (), 1, (LOOSE_REPO, ("owner1", "owner2"), 1)),
}


def corpus_signature(name: str) -> bytes:
    path = SIGNED / name
    if path.suffix == ".p7s":
        return path.read_bytes()
    with zipfile.ZipFile(path) as z:  # independent of trustpolicy._internal.archive on purpose
        return z.read(".signature.p7s")


def _tlv(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(size)]) + size + content


def encode(value) -> bytes:
    """DER of an edited asn1crypto tree, re-encoding only the edited path.

    asn1crypto's own dump() takes any length whose last byte is 0x80 for an indefinite length and
    then re-encodes everything below it, which can take minutes on a signature. Here unchanged parsed
    values keep their exact bytes and only mutated SEQUENCEs / SETs are rebuilt.
    """
    if isinstance(value, core.Choice):
        return encode(value.chosen)
    mutated = isinstance(value, (core.Sequence, core.SequenceOf)) and value._is_mutated()
    if not mutated:
        if value._header is not None:  # parsed: _header includes any EXPLICIT wrapper
            contents = value._contents if hasattr(value, "_contents") else value.contents
            return value._header + contents + value._trailer
        return value.dump()  # a small value built in the test
    if isinstance(value, core.Sequence):
        parts = []
        for name, _, _ in value._fields:
            child = value[name]
            if isinstance(child, core.Void):
                continue
            parts.append(encode(child))
        body = b"".join(parts)
    else:
        body = b"".join(encode(child) for child in value)
    if value.implicit:
        out = _tlv(0xA0 | value.tag, body)
    else:
        out = _tlv(0x31 if isinstance(value, (core.SetOf, core.Set)) else 0x30, body)
    for _class, tag in value.explicit or ():
        out = _tlv(0xA0 | tag, out)
    return out


def fresh(value):
    """A detached copy decoded from bytes (of an untagged value)."""
    return type(value).load(encode(value))


def mutate(der: bytes, edit: Callable[[cms.SignedData], object]) -> bytes:
    """Edit the parsed SignedData in place (at any depth) and re-encode."""
    info = cms.ContentInfo.load(der)
    edit(info["content"])
    return encode(info)


def mutate_primary(der: bytes, edit: Callable[[cms.SignerInfo], object]) -> bytes:
    return mutate(der, lambda sd: edit(sd["signer_infos"][0]))


def unsigned_value(signer_info: cms.SignerInfo, oid: str):
    """The first value of the first `oid` unsigned attribute (edit it in place)."""
    for attr in signer_info["unsigned_attrs"]:
        if attr["type"].dotted == oid:
            return attr["values"][0]
    raise AssertionError(f"no {oid} attribute")


def mutate_counter(der: bytes, edit: Callable[[cms.SignerInfo], object]) -> bytes:
    return mutate_primary(der, lambda si: edit(unsigned_value(si, oids.ATTR_COUNTERSIGNATURE)))


def mutate_token(der: bytes, edit: Callable[[cms.ContentInfo], object]) -> bytes:
    """Edit the primary's first timestamp token in place."""
    return mutate_primary(der, lambda si: edit(unsigned_value(si, oids.ATTR_TIMESTAMP_TOKEN)))


def edit_token_signer(token: cms.ContentInfo, edit: Callable[[cms.SignerInfo], object]) -> None:
    edit(token["content"]["signer_infos"][0])


def attribute(name: str, values: list) -> cms.CMSAttribute:
    return cms.CMSAttribute({"type": name, "values": values})


def raw_attribute(oid: str, values: list[bytes]) -> cms.CMSAttribute:
    """An attribute assembled from value DER bytes."""
    return cms.CMSAttribute.load(_tlv(0x30, core.ObjectIdentifier(oid).dump() + _tlv(0x31, b"".join(values))))


def edit_attrs(signer_info: cms.SignerInfo, change: Callable[[list], list], field: str = "signed_attrs") -> None:
    # never touch `.native` here: it decodes the whole subtree
    current = [] if isinstance(signer_info[field], core.Void) else list(signer_info[field])
    tag = {"signed_attrs": 0, "unsigned_attrs": 1}[field]
    body = b"".join(encode(attr) for attr in change(current))
    signer_info[field] = cms.CMSAttributes.load(_tlv(0xA0 | tag, body), implicit=tag)


def without(oid: str) -> Callable[[list], list]:
    return lambda attrs: [a for a in attrs if a["type"].dotted != oid]


def replaced(oid: str, new: cms.CMSAttribute) -> Callable[[list], list]:
    return lambda attrs: [a for a in attrs if a["type"].dotted != oid] + [new]


def added(*new: cms.CMSAttribute) -> Callable[[list], list]:
    return lambda attrs: attrs + list(new)


def directory_name(name: dict) -> x509.GeneralName:
    return x509.GeneralName(name="directory_name", value=x509.Name.build(name))


def primary_info(sd: cms.SignedData) -> cms.SignerInfo:
    return sd["signer_infos"][0]


def code_of(der: bytes) -> str:
    with pytest.raises(SignatureFormatError) as caught:
        parse_signature(der)
    return caught.value.code


VERSIONING = corpus_signature("nuget.versioning.5.0.0.nupkg")
REPOSIGNED = corpus_signature("Test.Reposigned.1.0.0.nupkg")
LOOSE = corpus_signature("loose-author-countersigned.signature.p7s")


# ---------------------------------------------------------------------------------------------
# The real corpus
# ---------------------------------------------------------------------------------------------


def test_expected_table_covers_the_whole_signed_corpus() -> None:
    assert sorted(p.name for p in SIGNED.iterdir()) == sorted(EXPECTED)


def _verify_rsa(sig: Signature) -> None:
    """The RSA signature covers signed_attrs_der: proof that the ORIGINAL DER was kept."""
    assert sig.signer_certificate is not None
    key = cx509.load_der_x509_certificate(sig.signer_certificate.dump()).public_key()
    algorithm = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}[sig.digest_algorithm]
    key.verify(sig.signature_value, sig.signed_attrs_der, padding.PKCS1v15(), algorithm)  # raises if not


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_signature_parses(name: str) -> None:
    kind, service_index, owners, timestamp_count, counter = EXPECTED[name]
    der = corpus_signature(name)
    sig = parse_signature(der)

    assert isinstance(sig, PrimarySignature)
    assert (sig.kind, sig.placement, sig.service_index, sig.owners) == (kind, "primary", service_index, owners)
    assert sig.der == der
    assert sig.signing_time is not None and sig.signing_time.tzinfo is not None
    assert sig.digest_algorithm == "sha256"
    assert sig.signature_algorithm in {oids.RSA_ENCRYPTION_OID, *oids.RSA_SIGNATURE_OIDS}
    assert sig.signed_attrs_der[0] == 0x31 and sig.signed_attrs_der[1:] in der
    _verify_rsa(sig)
    assert sig.message_digest == hashlib.sha256(sig.content_bytes).digest()
    assert sig.content.to_bytes() == sig.content_bytes
    assert sig.signer_certificate in sig.certificates

    assert len(sig.timestamps) == timestamp_count
    for ts in sig.timestamps:
        assert ts.problem is None
        assert ts.message_imprint == hashlib.new(ts.hash_algorithm, sig.signature_value).digest()
        assert ts.tsa_certificate is not None and ts.tsa_certificate in ts.certificates
        assert ts.lower_limit == ts.gen_time - ts.accuracy and ts.upper_limit == ts.gen_time + ts.accuracy
        assert ts.signed_attrs_der is not None and ts.signed_attrs_der[0] == 0x31 and ts.signed_attrs_der[1:] in der

    if counter is None:
        assert sig.countersignature is None
        return
    url, counter_owners, counter_timestamps = counter
    cs = sig.countersignature
    assert cs is not None
    assert (cs.kind, cs.placement, cs.service_index, cs.owners) == ("repository", "countersignature", url, counter_owners)
    assert cs.signing_time is not None
    _verify_rsa(cs)
    # RFC 5652 11.4: the countersignature's message-digest covers the primary signature value
    assert cs.message_digest == hashlib.sha256(sig.signature_value).digest()
    assert len(cs.timestamps) == counter_timestamps
    for ts in cs.timestamps:
        assert ts.problem is None
        assert ts.message_imprint == hashlib.new(ts.hash_algorithm, cs.signature_value).digest()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parsing_leaves_exposed_objects_untouched(name: str) -> None:
    # reading DEFAULT fields marks asn1crypto values mutated; dump() would then re-encode them
    der = corpus_signature(name)
    sig = parse_signature(der)
    objects = [sig.signer_info, sig.signer_info["signed_attrs"], *sig.certificates]
    for signature in (sig, sig.countersignature):
        if signature is not None:
            objects += [signature.signer_info, *(ts.token for ts in signature.timestamps)]
    for obj in objects:
        assert not obj._is_mutated() if hasattr(obj, "_is_mutated") else True
        assert obj.dump() in der


def test_signer_identifier_forms() -> None:
    # UntrustedTimestampPackage uses issuerAndSerialNumber, the others subjectKeyIdentifier
    by_serial = parse_signature(corpus_signature("UntrustedTimestampPackage.nupkg"))
    assert by_serial.signer_info["sid"].name == "issuer_and_serial_number"
    assert by_serial.signer_certificate is not None
    assert VERSIONING and parse_signature(VERSIONING).signer_info["sid"].name == "subject_key_identifier"


def test_known_fingerprints() -> None:
    sig = parse_signature(VERSIONING)
    assert fingerprint(sig.signer_certificate) == MICROSOFT_AUTHOR_SHA256
    assert fingerprint(sig.countersignature.signer_certificate, "SHA256") == NUGET_ORG_REPOSITORY_SHA256
    cert = cx509.load_der_x509_certificate(sig.signer_certificate.dump())
    assert fingerprint(sig.signer_certificate, "sha384") == cert.fingerprint(hashes.SHA384()).hex().upper()
    assert fingerprint(sig.signer_certificate, "SHA-512") == cert.fingerprint(hashes.SHA512()).hex().upper()
    with pytest.raises(ValueError):
        fingerprint(sig.signer_certificate, "md5")


def test_timestamp_values() -> None:
    ts = parse_signature(VERSIONING).timestamps[0]
    assert ts.gen_time.isoformat() == "2019-04-01T18:24:53+00:00"
    assert ts.accuracy == timedelta(seconds=30)
    assert ts.policy == "2.16.840.1.113733.1.7.23.3"
    assert ts.hash_algorithm == "sha256"
    assert isinstance(ts.tst_info, tsp.TSTInfo)
    # the loose file's TSA uses the ETSI baseline policy without accuracy: 1 second (docs/format.md 7)
    loose = parse_signature(LOOSE)
    for t in (loose.timestamps[0], loose.countersignature.timestamps[0]):
        assert t.policy == oids.ETSI_BASELINE_TSA_POLICY and t.tst_info["accuracy"].native is None
        assert t.accuracy == timedelta(seconds=1)


# ---------------------------------------------------------------------------------------------
# CMS envelope
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("der", [b"", b"garbage", b"\x30\x03\x02\x01", core.OctetString(b"x").dump()])
def test_not_cms_is_nu3003(der: bytes) -> None:
    assert code_of(der) == "NU3003"


def test_content_info_of_other_type_is_nu3003() -> None:
    data = cms.ContentInfo({"content_type": "data", "content": core.OctetString(b"Version:1\n\n")}).dump()
    assert code_of(data) == "NU3003"


def test_trailing_bytes_and_oversize_are_nu3003() -> None:
    assert code_of(VERSIONING + b"\x00") == "NU3003"
    with pytest.raises(SignatureFormatError) as caught:
        parse_signature(VERSIONING + b"\x00" * MAX_SIGNATURE_SIZE)
    assert caught.value.code == "NU3003" and "limit" in caught.value.message


def test_identity_reencoding_still_parses() -> None:
    # guards the mutation helper itself: an untouched re-encode is byte-identical
    assert mutate(VERSIONING, lambda sd: None) == VERSIONING


def test_two_signers_nu3009() -> None:
    def edit(sd):
        sd["signer_infos"] = cms.SignerInfos([primary_info(sd), primary_info(sd)])

    assert code_of(mutate(VERSIONING, edit)) == "NU3009"


def test_zero_signers_nu3009() -> None:
    assert code_of(mutate(VERSIONING, lambda sd: sd.__setitem__("signer_infos", cms.SignerInfos([])))) == "NU3009"


def test_no_certificates_nu3010() -> None:
    assert code_of(mutate(VERSIONING, lambda sd: sd.__setitem__("certificates", None))) == "NU3010"


def test_signer_certificate_missing_from_set_nu3010() -> None:
    sig = parse_signature(VERSIONING)
    leaf = sig.signer_certificate.dump()

    def edit(sd):
        sd["certificates"] = cms.CertificateSet([c for c in sd["certificates"] if c.chosen.dump() != leaf])

    assert code_of(mutate(VERSIONING, edit)) == "NU3010"


def _with_content(content: bytes) -> bytes:
    def edit(sd):
        sd["encap_content_info"] = {"content_type": "data", "content": core.ParsableOctetString(content)}

    return mutate(VERSIONING, edit)


def test_content_version_2_nu3007() -> None:
    assert code_of(_with_content(b"Version:2\n\n2.16.840.1.101.3.4.2.1-Hash:AAAA\n\n")) == "NU3007"


def test_content_without_hash_nu3000() -> None:
    assert code_of(_with_content(b"Version:1\n\n")) == "NU3000"


def test_detached_content_nu3000() -> None:
    def edit(sd):
        sd["encap_content_info"] = {"content_type": "data"}

    assert code_of(mutate(VERSIONING, edit)) == "NU3000"


# ---------------------------------------------------------------------------------------------
# Primary signed attributes
# ---------------------------------------------------------------------------------------------


def _primary_attrs(der: bytes, change: Callable[[list], list]) -> bytes:
    return mutate_primary(der, lambda si: edit_attrs(si, change))


def _commitment(*oids_: str) -> cms.CMSAttribute:
    return attribute("commitment_type_indication", [{"commitment_type_id": o} for o in oids_])


def test_missing_signing_time_nu3011() -> None:
    assert code_of(_primary_attrs(VERSIONING, without(oids.ATTR_SIGNING_TIME))) == "NU3011"
    assert code_of(_primary_attrs(REPOSIGNED, without(oids.ATTR_SIGNING_TIME))) == "NU3011"


def test_duplicate_signing_time_nu3011() -> None:
    sig = parse_signature(VERSIONING)
    extra = attribute("signing_time", [cms.Time({"utc_time": sig.signing_time})])
    assert code_of(_primary_attrs(VERSIONING, added(extra))) == "NU3011"


def test_both_commitment_types_invalid() -> None:
    one_attribute = _commitment(oids.COMMITMENT_AUTHOR, oids.COMMITMENT_REPOSITORY)
    assert code_of(_primary_attrs(VERSIONING, replaced(oids.ATTR_COMMITMENT_TYPE, one_attribute))) == "NU3000"
    second_instance = _commitment(oids.COMMITMENT_REPOSITORY)
    assert code_of(_primary_attrs(VERSIONING, added(second_instance))) == "NU3000"


def test_unknown_commitment_is_kind_unknown() -> None:
    der = _primary_attrs(VERSIONING, replaced(oids.ATTR_COMMITMENT_TYPE, _commitment("1.2.3.4")))
    sig = parse_signature(der)
    assert sig.kind == "unknown"
    assert sig.signing_time is None  # not read for Unknown signatures
    assert len(sig.timestamps) == 1 and sig.countersignature is not None


def test_unknown_commitment_skips_attribute_checks() -> None:
    def change(attrs):
        attrs = without(oids.ATTR_COMMITMENT_TYPE)(attrs)
        attrs = without(oids.ATTR_SIGNING_TIME)(attrs)
        return without(oids.ATTR_SIGNING_CERTIFICATE_V2)(attrs)

    assert parse_signature(_primary_attrs(VERSIONING, change)).kind == "unknown"


def test_unknown_plus_author_commitment_is_author() -> None:
    der = _primary_attrs(VERSIONING, replaced(oids.ATTR_COMMITMENT_TYPE, _commitment("1.2.3.4", oids.COMMITMENT_AUTHOR)))
    assert parse_signature(der).kind == "author"


# signing-certificate-v2 (docs/format.md 5.2)


def _scv2(der: bytes, edit_value: Callable[[tsp.SigningCertificateV2], object], counter: bool = False) -> bytes:
    def edit(info):
        for attr in info["signed_attrs"]:
            if attr["type"].dotted == oids.ATTR_SIGNING_CERTIFICATE_V2:
                value = fresh(attr["values"][0])
                edit_value(value)
                attr["values"] = [fresh(value)]

    return (mutate_counter if counter else mutate_primary)(der, edit)


def test_scv2_hash_algorithm_omitted_means_sha256() -> None:
    def omit(value):
        first = value["certs"][0]
        without_algorithm = _tlv(0x30, encode(first["cert_hash"]) + encode(first["issuer_serial"]))
        value["certs"] = tsp.ESSCertIDv2s.load(_tlv(0x30, without_algorithm))

    der = _scv2(VERSIONING, omit)
    assert _first_ess_cert_id(der)[3] == 0x04  # the SEQUENCE (3-byte header) now starts with certHash
    assert parse_signature(der).kind == "author"


def _first_ess_cert_id(der: bytes) -> bytes:
    """Raw bytes of certs[0] of the primary signing-certificate-v2 attribute."""
    sig = parse_signature(der)
    attr = next(a for a in sig.signer_info["signed_attrs"] if a["type"].dotted == oids.ATTR_SIGNING_CERTIFICATE_V2)
    return encode(attr["values"][0]["certs"][0])


def test_scv2_hash_algorithm_parameters_null_or_absent() -> None:
    def null_params(value):
        value["certs"][0]["hash_algorithm"] = {"algorithm": "sha256", "parameters": core.Null()}

    def absent(value):
        # built from bytes: asn1crypto adds a NULL parameter to SHA-2 identifiers it constructs
        sha256 = core.ObjectIdentifier(oids.HASH_OIDS["sha256"]).dump()
        value["certs"][0]["hash_algorithm"] = algos.DigestAlgorithm.load(_tlv(0x30, sha256))

    with_null, without_params = _scv2(VERSIONING, null_params), _scv2(VERSIONING, absent)
    assert b"\x05\x00" in _first_ess_cert_id(with_null)[:20]
    assert b"\x05\x00" not in _first_ess_cert_id(without_params)[:20]
    assert parse_signature(with_null).kind == "author"
    assert parse_signature(without_params).kind == "author"


@pytest.mark.parametrize(
    "edit_value",
    [
        pytest.param(lambda v: v["certs"][0].__setitem__("cert_hash", b"\x00" * 32), id="wrong-hash"),
        pytest.param(lambda v: v["certs"][0].__setitem__("issuer_serial", None), id="no-issuer-serial"),
        pytest.param(lambda v: v["certs"][0]["issuer_serial"].__setitem__("serial_number", 12345), id="wrong-serial"),
        pytest.param(
            lambda v: v["certs"][0]["issuer_serial"].__setitem__(
                "issuer", [directory_name({"common_name": "Somebody Else"})]
            ),
            id="wrong-issuer",
        ),
        pytest.param(lambda v: v["certs"][0].__setitem__("hash_algorithm", {"algorithm": "sha1"}), id="sha1"),
        pytest.param(lambda v: v.__setitem__("certs", []), id="empty-certs"),
    ],
)
def test_scv2_violations_nu3011(edit_value) -> None:
    assert code_of(_scv2(VERSIONING, edit_value)) == "NU3011"


def test_scv2_issuer_compare_is_exact() -> None:
    # same DN but different letter case: .NET compares the DN strings ordinally
    def edit(value):
        names = value["certs"][0]["issuer_serial"]["issuer"]
        name = names[0].chosen.native
        name["common_name"] = name["common_name"].upper()
        value["certs"][0]["issuer_serial"]["issuer"] = [directory_name(name)]

    assert code_of(_scv2(VERSIONING, edit)) == "NU3011"


def test_scv2_missing_duplicated_or_v1_present_nu3011() -> None:
    assert code_of(_primary_attrs(VERSIONING, without(oids.ATTR_SIGNING_CERTIFICATE_V2))) == "NU3011"
    sig = parse_signature(VERSIONING)
    scv2 = next(a for a in sig.signer_info["signed_attrs"] if a["type"].dotted == oids.ATTR_SIGNING_CERTIFICATE_V2)
    copy = cms.CMSAttribute.load(scv2.dump())
    assert code_of(_primary_attrs(VERSIONING, added(copy))) == "NU3011"
    v1 = attribute(
        "signing_certificate",
        [{"certs": [{"cert_hash": hashlib.sha1(sig.signer_certificate.dump()).digest()}]}],
    )
    assert code_of(_primary_attrs(VERSIONING, added(v1))) == "NU3011"


# repository attributes (docs/verification.md 2.8: invalid -> generic NU3000)


def _service_index(*urls: str) -> cms.CMSAttribute:
    return attribute("nuget_v3_service_index_url", list(urls))


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(without(oids.ATTR_NUGET_SERVICE_INDEX), id="missing"),
        pytest.param(replaced(oids.ATTR_NUGET_SERVICE_INDEX, _service_index("http://x.test/index.json")), id="http"),
        pytest.param(replaced(oids.ATTR_NUGET_SERVICE_INDEX, _service_index("/v3/index.json")), id="relative"),
        pytest.param(replaced(oids.ATTR_NUGET_SERVICE_INDEX, _service_index(TEST_REPO, TEST_REPO + "2")), id="two-values"),
        pytest.param(added(_service_index(TEST_REPO)), id="two-instances"),
        pytest.param(added(attribute("nuget_package_owners", [[]])), id="owners-empty-list"),
        pytest.param(added(attribute("nuget_package_owners", [["ok", "  "]])), id="owners-blank"),
        pytest.param(added(attribute("nuget_package_owners", [["a"], ["b"]])), id="owners-two-values"),
    ],
)
def test_repository_attribute_violations(change) -> None:
    assert code_of(_primary_attrs(REPOSIGNED, change)) == "NU3000"


def test_repository_owners_and_uppercase_scheme() -> None:
    der = _primary_attrs(
        REPOSIGNED,
        lambda attrs: replaced(oids.ATTR_NUGET_SERVICE_INDEX, _service_index("HTTPS://Repo.test/index.json"))(attrs)
        + [attribute("nuget_package_owners", [["alice", "bob"]])],
    )
    sig = parse_signature(der)
    assert sig.service_index == "HTTPS://Repo.test/index.json"  # .NET lowercases the scheme: accepted
    assert sig.owners == ("alice", "bob")


def test_author_signature_ignores_repository_attributes() -> None:
    der = _primary_attrs(VERSIONING, added(_service_index("http://not-checked.test")))
    assert parse_signature(der).service_index is None


# ---------------------------------------------------------------------------------------------
# Countersignatures (docs/format.md 6)
# ---------------------------------------------------------------------------------------------


def _countersignature_attr(der: bytes) -> cms.CMSAttribute:
    info = cms.ContentInfo.load(der)
    attr = next(a for a in primary_info(info["content"])["unsigned_attrs"] if a["type"].dotted == oids.ATTR_COUNTERSIGNATURE)
    return cms.CMSAttribute.load(attr.dump())


def test_two_repository_countersignatures_nu3032() -> None:
    copy = _countersignature_attr(VERSIONING)
    der = mutate_primary(VERSIONING, lambda si: edit_attrs(si, added(copy), "unsigned_attrs"))
    assert code_of(der) == "NU3032"
    # two values in one attribute instance count too
    counter = copy["values"][0].dump()
    both = raw_attribute(oids.ATTR_COUNTERSIGNATURE, [counter, counter])
    der = mutate_primary(VERSIONING, lambda si: edit_attrs(si, replaced(oids.ATTR_COUNTERSIGNATURE, both), "unsigned_attrs"))
    assert code_of(der) == "NU3032"


def test_countersignature_on_repository_primary_nu3033() -> None:
    copy = _countersignature_attr(VERSIONING)
    der = mutate_primary(REPOSIGNED, lambda si: edit_attrs(si, added(copy), "unsigned_attrs"))
    assert code_of(der) == "NU3033"


def test_non_repository_countersignature_is_ignored() -> None:
    def edit(csi):
        edit_attrs(csi, replaced(oids.ATTR_COMMITMENT_TYPE, _commitment(oids.COMMITMENT_AUTHOR)))

    assert parse_signature(mutate_counter(VERSIONING, edit)).countersignature is None


def test_countersignature_with_both_commitments_invalid() -> None:
    both = _commitment(oids.COMMITMENT_AUTHOR, oids.COMMITMENT_REPOSITORY)
    der = mutate_counter(VERSIONING, lambda csi: edit_attrs(csi, replaced(oids.ATTR_COMMITMENT_TYPE, both)))
    assert code_of(der) == "NU3000"


def test_countersignature_missing_signing_time_nu3031() -> None:
    der = mutate_counter(VERSIONING, lambda csi: edit_attrs(csi, without(oids.ATTR_SIGNING_TIME)))
    assert code_of(der) == "NU3031"


def test_countersignature_scv2_violation_nu3031() -> None:
    der = _scv2(VERSIONING, lambda v: v["certs"][0].__setitem__("cert_hash", b"\x01" * 32), counter=True)
    assert code_of(der) == "NU3031"
    der = mutate_counter(VERSIONING, lambda csi: edit_attrs(csi, without(oids.ATTR_SIGNING_CERTIFICATE_V2)))
    assert code_of(der) == "NU3031"


def test_countersignature_without_certificate_nu3031() -> None:
    leaf = parse_signature(VERSIONING).countersignature.signer_certificate.dump()

    def edit(sd):
        sd["certificates"] = cms.CertificateSet([c for c in sd["certificates"] if c.chosen.dump() != leaf])

    assert code_of(mutate(VERSIONING, edit)) == "NU3031"


def test_countersignature_service_index_invalid_nu3000() -> None:
    der = mutate_counter(VERSIONING, lambda csi: edit_attrs(csi, without(oids.ATTR_NUGET_SERVICE_INDEX)))
    assert code_of(der) == "NU3000"
    http = replaced(oids.ATTR_NUGET_SERVICE_INDEX, _service_index("http://api.nuget.org/v3/index.json"))
    assert code_of(mutate_counter(VERSIONING, lambda csi: edit_attrs(csi, http))) == "NU3000"


# ---------------------------------------------------------------------------------------------
# Timestamps: defects are stored, never raised (docs/verification.md 2.9)
# ---------------------------------------------------------------------------------------------




def _edit_tst(der: bytes, edit: Callable[[tsp.TSTInfo], object]) -> bytes:
    def change(token):
        encap = token["content"]["encap_content_info"]
        tst = tsp.TSTInfo.load(bytes(encap["content"]))
        edit(tst)
        encap["content"] = core.ParsableOctetString(tst.dump())

    return mutate_token(der, change)


def _timestamp_problem(der: bytes) -> str | None:
    sig = parse_signature(der)  # must not raise
    problem = sig.timestamps[0].problem
    return problem.code if problem else None


def test_timestamp_without_certificates_nu3029() -> None:
    der = mutate_token(VERSIONING, lambda t: t["content"].__setitem__("certificates", None))
    assert _timestamp_problem(der) == "NU3029"
    ts = parse_signature(der).timestamps[0]
    assert ts.gen_time is not None and ts.tsa_certificate is None  # what could be read is kept


def test_timestamp_without_signer_certificate_nu3020() -> None:
    tsa = parse_signature(VERSIONING).timestamps[0].tsa_certificate.dump()

    def edit(token):
        sd = token["content"]
        sd["certificates"] = cms.CertificateSet([c for c in sd["certificates"] if c.chosen.dump() != tsa])

    assert _timestamp_problem(mutate_token(VERSIONING, edit)) == "NU3020"


def test_timestamp_wrong_content_type_nu3021() -> None:
    def edit(token):
        token["content"]["encap_content_info"]["content_type"] = "data"

    assert _timestamp_problem(mutate_token(VERSIONING, edit)) == "NU3021"


def test_timestamp_two_signers_nu3021() -> None:
    def edit(token):
        infos = token["content"]["signer_infos"]
        token["content"]["signer_infos"] = cms.SignerInfos([infos[0], cms.SignerInfo.load(infos[0].dump())])

    assert _timestamp_problem(mutate_token(VERSIONING, edit)) == "NU3021"


def _break_ess(signer_info: cms.SignerInfo, oid: str) -> None:
    """Give certs[0] of the signing-certificate(-v2) attribute a 32-byte hash of zeros."""
    for attr in signer_info["signed_attrs"]:
        if attr["type"].dotted == oid:
            value = fresh(attr["values"][0])
            value["certs"][0]["cert_hash"] = b"\x00" * 32
            attr["values"] = [fresh(value)]
            return
    raise AssertionError(f"no {oid} attribute")


def test_timestamp_signing_certificate_problems_nu3021() -> None:
    def drop(token):
        edit_token_signer(token, lambda tsi: edit_attrs(tsi, without(oids.ATTR_SIGNING_CERTIFICATE_V2)))

    assert _timestamp_problem(mutate_token(VERSIONING, drop)) == "NU3021"

    def wrong_hash(token):
        edit_token_signer(token, lambda info: _break_ess(info, oids.ATTR_SIGNING_CERTIFICATE_V2))

    assert _timestamp_problem(mutate_token(VERSIONING, wrong_hash)) == "NU3021"

    # a v1 ESSCertID must carry a 20-byte SHA-1 (the loose file's TSA uses v1)
    def short_v1(token):
        edit_token_signer(token, lambda info: _break_ess(info, oids.ATTR_SIGNING_CERTIFICATE))

    assert _timestamp_problem(mutate_token(LOOSE, short_v1)) == "NU3021"


def test_timestamp_sha1_imprint_nu3030() -> None:
    der = _edit_tst(VERSIONING, lambda tst: tst["message_imprint"].__setitem__("hash_algorithm", {"algorithm": "sha1"}))
    ts = parse_signature(der).timestamps[0]
    assert ts.problem is not None and ts.problem.code == "NU3030"
    assert ts.hash_algorithm == "sha1"


def test_timestamp_accuracy_variants() -> None:
    def millis(tst):
        tst["accuracy"] = {"seconds": 2, "millis": 5, "micros": 7}

    ts = parse_signature(_edit_tst(VERSIONING, millis)).timestamps[0]
    assert ts.accuracy == timedelta(seconds=2, milliseconds=5, microseconds=7) and ts.problem is None

    ts = parse_signature(_edit_tst(VERSIONING, lambda tst: tst.__setitem__("accuracy", None))).timestamps[0]
    assert ts.accuracy == timedelta(0)  # no accuracy and not the ETSI baseline policy

    def negative(tst):
        tst["accuracy"] = {"seconds": -5}

    ts = parse_signature(_edit_tst(VERSIONING, negative)).timestamps[0]
    assert ts.problem is not None and ts.problem.code == "NU3021" and ts.accuracy == timedelta(0)


def test_undecodable_timestamp_token_is_a_problem() -> None:
    def change(si):
        edit_attrs(si, replaced(oids.ATTR_TIMESTAMP_TOKEN, raw_attribute(oids.ATTR_TIMESTAMP_TOKEN, [b"\x30\x03\x06\x01\x2a"])), "unsigned_attrs")

    sig = parse_signature(mutate_primary(VERSIONING, change))
    assert len(sig.timestamps) == 1 and sig.timestamps[0].problem is not None


def test_all_values_of_all_timestamp_instances() -> None:
    token = parse_signature(VERSIONING).timestamps[0].der
    two = raw_attribute(oids.ATTR_TIMESTAMP_TOKEN, [token, token])

    def change(si):
        edit_attrs(si, added(two), "unsigned_attrs")

    assert len(parse_signature(mutate_primary(VERSIONING, change)).timestamps) == 3


# ---------------------------------------------------------------------------------------------
# SignatureContent (docs/format.md 3)
# ---------------------------------------------------------------------------------------------

SHA256_OID = oids.HASH_OIDS["sha256"]
DIGEST = hashlib.sha256(b"package").digest()
B64 = base64.b64encode(DIGEST).decode()


def content_code(text: str | bytes) -> str:
    with pytest.raises(SignatureFormatError) as caught:
        SignatureContent.parse(text.encode() if isinstance(text, str) else text)
    return caught.value.code


@pytest.mark.parametrize("eol", ["\n", "\r\n", "\r"])
def test_content_line_endings(eol: str) -> None:
    text = f"Version:1{eol}{eol}{SHA256_OID}-Hash:{B64}{eol}{eol}"
    assert SignatureContent.parse(text.encode()) == SignatureContent("sha256", DIGEST)


def test_content_round_trip_and_algorithms() -> None:
    for name, size in (("sha256", 32), ("sha384", 48), ("sha512", 64)):
        content = SignatureContent(name, bytes(range(size)))
        assert SignatureContent.parse(content.to_bytes()) == content
    assert SignatureContent("sha256", DIGEST).to_bytes() == f"Version:1\n\n{SHA256_OID}-Hash:{B64}\n\n".encode()


def test_content_missing_trailing_blank_line() -> None:
    assert content_code(f"Version:1\n\n{SHA256_OID}-Hash:{B64}\n") == "NU3000"
    assert content_code(f"Version:1\n\n{SHA256_OID}-Hash:{B64}") == "NU3000"
    assert content_code("Version:1\n") == "NU3000"


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(f"Version:1\nVersion:1\n\n{SHA256_OID}-Hash:{B64}\n\n", id="duplicate-header"),
        pytest.param(f"Version:1\n\n{SHA256_OID}-Hash:{B64}\n{SHA256_OID}-Hash:{B64}\n\n", id="duplicate-hash"),
        pytest.param(f"Version:1\nbad name:x\n\n{SHA256_OID}-Hash:{B64}\n\n", id="space-in-name"),
        pytest.param(f"Version:1\nbad_name:x\n\n{SHA256_OID}-Hash:{B64}\n\n", id="underscore-in-name"),
        pytest.param(f"Version:1\n:x\n\n{SHA256_OID}-Hash:{B64}\n\n", id="empty-name"),
        pytest.param(f"Version:1\nEmpty:\n\n{SHA256_OID}-Hash:{B64}\n\n", id="empty-value"),
        pytest.param(f"Version:1\nno-colon\n\n{SHA256_OID}-Hash:{B64}\n\n", id="no-colon"),
        pytest.param(f"\nVersion:1\n\n{SHA256_OID}-Hash:{B64}\n\n", id="empty-header"),
        pytest.param(f"Version:1\n\n\n{SHA256_OID}-Hash:{B64}\n\n", id="empty-section"),
        pytest.param("", id="empty-document"),
        pytest.param(f"Other:1\n\n{SHA256_OID}-Hash:{B64}\n\n", id="no-version"),
        pytest.param(f"Version:1\n\n1.2.3.4-Hash:{B64}\n\n", id="unsupported-oid"),
        pytest.param(f"Version:1\n\n{oids.SHA1_OID}-Hash:{B64}\n\n", id="sha1-oid"),
        pytest.param(f"Version:1\n\n{SHA256_OID}-Hash:not base64!\n\n", id="bad-base64"),
        pytest.param("Version:1\n\nOnly:other\n\n", id="no-hash"),
    ],
)
def test_content_invalid_nu3000(text: str) -> None:
    assert content_code(text) == "NU3000"


def test_content_version_not_1_nu3007() -> None:
    assert content_code(f"Version:2\n\n{SHA256_OID}-Hash:{B64}\n\n") == "NU3007"
    assert content_code("Version:1.0\n\n") == "NU3007"
    assert content_code("Version:2\n\nbroken section") == "NU3007"  # the version is checked first


def test_content_lenient_parts() -> None:
    # other properties, an unsupported hash before a supported one, later sections (even broken) ignored
    text = (
        f"Version:1\nX-Extra:whatever: with colon\n\n1.2.3.4-Hash:AAAA\n{SHA256_OID}-Hash:{B64}\nNote:x\n\n"
        "this section is never read\n"
    )
    assert SignatureContent.parse(text.encode()) == SignatureContent("sha256", DIGEST)
    assert SignatureContent.parse(b"\xef\xbb\xbf" + f"Version:1\n\n{SHA256_OID}-Hash:{B64}\n\n".encode()).hash_value == DIGEST


def test_content_names_are_case_sensitive() -> None:
    assert content_code(f"version:1\n\n{SHA256_OID}-Hash:{B64}\n\n") == "NU3000"
    assert content_code(f"Version:1\n\n{SHA256_OID}-hash:{B64}\n\n") == "NU3000"


# ---------------------------------------------------------------------------------------------
# Robustness: nothing but SignatureFormatError escapes
# ---------------------------------------------------------------------------------------------

ALL_SIGNATURES = [corpus_signature(name) for name in sorted(EXPECTED)]


def _parse_or_format_error(der: bytes) -> None:
    try:
        parse_signature(der)
    except SignatureFormatError as error:
        assert error.code.startswith("NU30")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=st.integers(0, len(ALL_SIGNATURES) - 1), data=st.data())
def test_truncations_never_crash(index: int, data: st.DataObject) -> None:
    der = ALL_SIGNATURES[index]
    cut = data.draw(st.integers(0, len(der)))
    _parse_or_format_error(der[:cut])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    index=st.integers(0, len(ALL_SIGNATURES) - 1),
    flips=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_byte_flips_never_crash(index: int, flips: list[tuple[float, int]]) -> None:
    der = bytearray(ALL_SIGNATURES[index])
    for where, value in flips:
        der[int(where * len(der))] = value
    _parse_or_format_error(bytes(der))


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=300))
def test_random_bytes_never_crash(data: bytes) -> None:
    _parse_or_format_error(b"\x30\x82" + data)
    _parse_or_format_error(data)


def test_deep_nesting_is_refused() -> None:
    # indefinite-length constructed OCTET STRINGs nested far beyond any real signature
    deep = b"\x30\x80" * 20000 + b"\x00\x00" * 20000
    assert code_of(deep) == "NU3003"


def test_content_type_must_be_data_and_match_the_signed_attribute() -> None:
    """The outer eContentType is not signed; the content-type attribute is (RFC 5652 11.1)."""

    def other_content_type(sd):
        sd["encap_content_info"]["content_type"] = "1.3.6.1.4.1.55555.1"  # not id-data

    def mismatched_attribute(sd):
        edit_attrs(primary_info(sd), lambda attrs: [
            attribute("content_type", ["signed_data"]) if a["type"].native == "content_type" else a for a in attrs
        ])

    assert code_of(mutate(VERSIONING, other_content_type)) == "NU3000"
    assert code_of(mutate(VERSIONING, mismatched_attribute)) == "NU3011"
