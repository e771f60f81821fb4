"""The per-process shortcuts of trustpolicy._internal.signature and trustpolicy._internal.signerinfo, on real signatures.

Parsing and evaluating remember values derived from exact encodings that every package of a graph
repeats: issuer names in their RFC 5280 comparison form, signing-certificate checks that passed, the
certificates of a certificate set, algorithm names, public keys, DN texts and fingerprints. Each test
here fails if such a value answered for an encoding it was not computed from, or if a shortcut
changed which candidate wins. Every case is parsed more than once, so it runs both before and after
its values are remembered.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from asn1crypto import algos, cms, core, x509
from cryptography import x509 as cx509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from test_verify_support import (  # noqa: F401 - `world` is a fixture
    World,
    author_attributes,
    make_signer_info,
    read_signature,
    world,
)

from trustpolicy._internal import asn1 as oids
from trustpolicy._internal.archive import hash_file, insert_signature
from trustpolicy._internal.sign import signature_content
from trustpolicy._internal.signature import _algorithm_name, distinguished_name, fingerprint, parse_signature
from trustpolicy._internal.signerinfo import verify_signer_info
from trustpolicy._internal.verify import VERIFY
from trustpolicy.errors import SignatureFormatError
from trustpolicy.models import PackageVerdict
from trustpolicy.testing.pki import Issued, TestPKI


def _tlv(tag: int, body: bytes) -> bytes:
    size = len(body)
    if size < 0x80:
        return bytes([tag, size]) + body
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + body


def _content(world: World) -> tuple[Path, bytes]:
    package = world.unsigned("fastpath")
    return package, signature_content("sha256", hash_file(package, "sha256"))


def _ders(issued: Issued) -> list[bytes]:
    return [c.public_bytes(Encoding.DER) for c in issued.chain]


def _signature(content: bytes, info: cms.SignerInfo, certificates: list[bytes]) -> bytes:
    """A .signature.p7s whose certificate set holds `certificates` in exactly this order (not sorted)."""
    signed_data = cms.SignedData({
        "version": "v3",
        "digest_algorithms": [{"algorithm": "sha256"}],
        "encap_content_info": {"content_type": "data", "content": content},
        "certificates": cms.CertificateSet.load(_tlv(0x31, b"".join(certificates))),
        "signer_infos": [info],
    })
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


def _by_issuer_and_serial(
    content: bytes, signer: Issued, certificates: list[bytes], *,
    sid_issuer: x509.Name | None = None, commitment: str | None = oids.COMMITMENT_AUTHOR,
) -> bytes:
    """An author signature identifying `signer` by issuer and serial number. `sid_issuer` replaces the
    issuer name in the SignerIdentifier, which the signature does not cover (RFC 5652 5.4)."""
    attrs = author_attributes(signer.certificate, content, commitment=commitment)
    info = make_signer_info(signer.certificate, signer.private_key, "sha256", attrs, prefer_ski=False)
    if sid_issuer is not None:
        info["sid"] = cms.SignerIdentifier(
            {"issuer_and_serial_number": {"issuer": sid_issuer, "serial_number": signer.serial}}
        )
    return _signature(content, info, certificates)


def _capitals(name: x509.Name) -> x509.Name:
    """The same name in capital letters, as UTF8String: other bytes, equal under RFC 5280 7.1."""
    rdns = x509.RDNSequence([
        x509.RelativeDistinguishedName([
            x509.NameTypeAndValue({
                "type": ava["type"].native,
                "value": x509.DirectoryString(name="utf8_string", value=ava["value"].native.upper()),
            })
            for ava in rdn
        ])
        for rdn in name.chosen
    ])
    return x509.Name.load(x509.Name(name="", value=rdns).dump())


def _outcome(verdict: PackageVerdict) -> tuple:
    return (
        verdict.verdict,
        [(i.code, i.level, i.message) for i in verdict.issues],
        [(s.kind, s.subject, s.fingerprints, s.status) for s in verdict.signatures],
    )


# --- finding the signer certificate by issuer and serial number ----------------------------------


def test_signer_found_by_an_issuer_name_encoded_differently(world: World) -> None:
    """The sid's issuer need not repeat the certificate's issuer bytes: equal under RFC 5280 is enough,
    and the package is judged exactly as when the bytes are the same."""
    package, content = _content(world)
    leaf = world.pki.leaf
    variant = _capitals(leaf.asn1.issuer)
    assert variant.dump() != leaf.asn1.issuer.dump() and variant.hashable == leaf.asn1.issuer.hashable
    outcomes = []
    for sid_issuer in (None, variant, None, variant):
        der = _by_issuer_and_serial(content, leaf, _ders(leaf), sid_issuer=sid_issuer)
        signature = parse_signature(der)
        assert signature.signer_info["sid"].name == "issuer_and_serial_number"
        assert signature.signer_certificate is not None and signature.signer_certificate.dump() == leaf.der
        dest = world.path("fastpath-sid")
        insert_signature(package, der, dest)
        outcomes.append(_outcome(world.verifier(VERIFY).verify_package(dest)))
    assert outcomes[0][0] == "valid" and outcomes[0][2][0][2] == {"SHA256": fingerprint(leaf.asn1)}
    assert all(outcome == outcomes[0] for outcome in outcomes)


@pytest.fixture(scope="module")
def same_serial(world: World) -> tuple[Issued, Issued]:
    """Two code-signing certificates with the same subject and serial number under two different CAs."""
    pki = world.pki
    ca_a = pki.issue_ca("Fastpath CA A", issuer=pki.root)
    ca_b = pki.issue_ca("Fastpath CA B", issuer=pki.root)
    return (pki.issue_code_signing("Fastpath Signer", issuer=ca_a, serial=0x7A5E),
            pki.issue_code_signing("Fastpath Signer", issuer=ca_b, serial=0x7A5E))


def test_same_serial_under_two_issuers_is_told_apart_by_the_issuer(world: World, same_serial) -> None:
    package, content = _content(world)
    a, b = same_serial
    assert a.serial == b.serial and a.asn1.subject.dump() == b.asn1.subject.dump()
    certificates = [a.der, b.der, a.issuer.der, b.issuer.der, world.pki.root.der]
    for signer in (a, b, a, b):
        for order in (certificates, certificates[::-1]):
            signature = parse_signature(_by_issuer_and_serial(content, signer, order))
            assert signature.signer_certificate.dump() == signer.der
    dest = world.path("fastpath-serial")
    insert_signature(package, _by_issuer_and_serial(content, b, certificates), dest)
    verdict = world.verifier(VERIFY).verify_package(dest)
    assert verdict.verdict == "valid" and verdict.signatures[0].fingerprints == {"SHA256": fingerprint(b.asn1)}


def _capital_issuer_certificate(pki: TestPKI, label: str, serial: int) -> bytes:
    """A certificate issued by pki.intermediate whose issuer field spells the CA's name in capitals."""
    subject = pki.intermediate.certificate.subject
    issuer = cx509.Name([
        cx509.RelativeDistinguishedName([cx509.NameAttribute(a.oid, str(a.value).upper()) for a in rdn])
        for rdn in subject.rdns
    ])
    key = pki.key()
    certificate = (
        cx509.CertificateBuilder().subject_name(pki.name(label)).issuer_name(issuer).public_key(key.public_key())
        .serial_number(serial).not_valid_before(pki.now - timedelta(days=1))
        .not_valid_after(pki.now + timedelta(days=30)).sign(pki.intermediate.private_key, hashes.SHA256())
    )
    return certificate.public_bytes(Encoding.DER)


def test_first_equal_candidate_in_set_order_wins_even_over_a_byte_equal_one(world: World) -> None:
    """Two certificates with one serial whose issuer fields differ only in letter case both match the
    sid under RFC 5280: the first in the set is the signer certificate, even when the other one's
    issuer field is the sid's issuer byte for byte."""
    _, content = _content(world)
    plain = world.pki.issue_code_signing("Fastpath Plain", serial=0x7A5F)
    capital = _capital_issuer_certificate(world.pki, "Fastpath Capital", 0x7A5F)
    capital_issuer = x509.Certificate.load(capital).issuer
    assert capital_issuer.dump() != plain.asn1.issuer.dump() and capital_issuer.hashable == plain.asn1.issuer.hashable
    for _ in range(2):
        for first, second in ((plain.der, capital), (capital, plain.der)):
            # kind "unknown" (no commitment): no signing-certificate check, only the lookup decides
            der = _by_issuer_and_serial(content, plain, [first, second], commitment=None)
            assert parse_signature(der).signer_certificate.dump() == first


# --- signing-certificate checks ------------------------------------------------------------------


def test_a_signing_certificate_that_passed_vouches_for_no_other_certificate(world: World) -> None:
    """The same signing-certificate-v2 value with another certificate (same key, so the same subject key
    identifier, but other bytes) is checked again and refused, before and after the right pair passed."""
    _, content = _content(world)
    leaf = world.pki.leaf
    twin = world.pki.issue_code_signing("Test Code Signing", key=leaf.private_key)
    info = make_signer_info(leaf.certificate, leaf.private_key, "sha256", author_attributes(leaf.certificate, content))
    assert info["sid"].name == "subject_key_identifier"
    rest = _ders(leaf)[1:]
    good, bad = _signature(content, info, [leaf.der, *rest]), _signature(content, info, [twin.der, *rest])
    for der in (bad, good, bad, good):
        if der is good:
            assert parse_signature(der).signer_certificate.dump() == leaf.der
            continue
        with pytest.raises(SignatureFormatError) as error:
            parse_signature(der)
        assert error.value.code == "NU3011" and "certificate hash does not match" in error.value.message


# --- certificate sets ----------------------------------------------------------------------------


def _set_outcome(der: bytes) -> tuple | list[str]:
    """The signature's certificates (SHA-256 of their exact bytes), or the parse error."""
    try:
        return [fingerprint(c) for c in parse_signature(der).certificates]
    except SignatureFormatError as error:
        return (error.code, error.message)


def _full_read(der: bytes) -> list[str]:
    """The certificates as iterating asn1crypto's CertificateSet resolves them."""
    certificates = cms.ContentInfo.load(der)["content"]["certificates"]
    return [hashlib.sha256(c.chosen.dump()).hexdigest().upper() for c in certificates if c.name == "certificate"]


def test_certificate_set_read_from_known_encodings_matches_a_full_read(world: World) -> None:
    _, content = _content(world)
    leaf = world.pki.leaf
    chain = _ders(leaf)
    unknown = world.pki.issue_code_signing("Fastpath Not Seen Before").der
    other = cms.CertificateChoices(
        name="other", value={"other_cert_format": "1.2.3.4", "other_cert": core.Null()}
    ).dump()
    sets = {
        "chain": chain, "reversed": chain[::-1], "duplicate": [chain[0], *chain], "unknown": [*chain, unknown],
        "other format first": [other, *chain], "other format last": [*chain, other],
        "empty extended certificate": [b"\xa0\x00", *chain],  # skipped, as the full read skips it
        "empty certificate last": [*chain, b"\x30\x00"],  # kept: certificates are read lazily
        "empty certificate first": [b"\x30\x00", *chain],  # NU3003 when the lookup reads it
        "not a certificate choice": [*chain, b"\x04\x00"],  # NU3003 from asn1crypto
    }
    first = {}
    for _ in range(2):  # the first round meets some encodings for the first time, the second knows all
        for label, certificates in sets.items():
            der = _by_issuer_and_serial(content, leaf, certificates)
            outcome = _set_outcome(der)
            if isinstance(outcome, list):
                assert outcome == _full_read(der), label
            first.setdefault(label, outcome)
            assert outcome == first[label], label
    assert first["empty certificate last"] == _full_read(_by_issuer_and_serial(content, leaf, sets["chain"])) + [
        hashlib.sha256(b"\x30\x00").hexdigest().upper()
    ]
    assert [first[k][0] for k in ("empty certificate first", "not a certificate choice")] == ["NU3003", "NU3003"]
    again = [parse_signature(_by_issuer_and_serial(content, leaf, chain)).certificates for _ in range(2)]
    assert all(x is y for x, y in zip(*again, strict=True))  # each distinct encoding parsed once


# --- evaluation: public keys and message digests ------------------------------------------------


def test_a_remembered_public_key_only_serves_its_own_key_bytes(world: World) -> None:
    _, content = _content(world)
    mine, theirs = world.pki.leaf, world.other.leaf  # `other` has keys no `pki` certificate has
    same_key = world.pki.issue_code_signing("Fastpath Same Key", key=mine.private_key)
    cases = ((mine, (mine, same_key), theirs), (theirs, (theirs,), mine))
    for _ in range(2):
        for signer, right, wrong in cases:
            signature = parse_signature(_by_issuer_and_serial(content, signer, _ders(signer)))
            args = (signature.signer_info, signature.signed_attrs_der, signature.content_bytes, "sha256")
            for cert in right:
                assert verify_signer_info(cert.asn1, *args, signature.message_digest) is None
            why = verify_signer_info(wrong.asn1, *args, signature.message_digest)
            assert why == "the RSA signature does not verify"


def test_message_digest_from_the_parse_or_from_the_attributes_judges_alike(world: World) -> None:
    _, content = _content(world)
    leaf = world.pki.leaf
    signature = parse_signature(_by_issuer_and_serial(content, leaf, _ders(leaf)))
    assert signature.message_digest == hashlib.sha256(content).digest()
    for digest in (signature.message_digest, None):  # None: read from the signed attributes again
        args = (leaf.asn1, signature.signer_info, signature.signed_attrs_der)
        assert verify_signer_info(*args, content, "sha256", digest) is None
        assert verify_signer_info(*args, content + b"x", "sha256", digest) == (
            "the message-digest attribute does not match the signed content"
        )


# --- names, fingerprints, algorithms -------------------------------------------------------------


def test_distinguished_name_follows_the_name_not_a_remembered_encoding(world: World) -> None:
    subject = world.pki.leaf.asn1.subject
    text = distinguished_name(subject)
    assert text == distinguished_name(subject) and text.endswith("CN=Test Code Signing")
    assert distinguished_name(world.other.leaf.asn1.subject) != text
    edited = x509.Certificate.load(world.pki.leaf.der).subject
    assert distinguished_name(edited) == text
    edited.chosen[0][0]["value"] = x509.DirectoryString(name="utf8_string", value="Edited")  # the CN
    assert distinguished_name(edited) == text.replace("CN=Test Code Signing", "CN=Edited")
    assert distinguished_name(x509.Name.build({"common_name": "Built"})) == "CN=Built"


def test_fingerprints_belong_to_their_certificate_and_algorithm(world: World) -> None:
    for _ in range(2):
        for issued in (world.pki.leaf, world.other.leaf, world.pki.intermediate):
            for algorithm in ("sha256", "SHA-384", "sha512"):
                name = algorithm.lower().replace("-", "")
                assert fingerprint(issued.asn1, algorithm) == hashlib.new(name, issued.der).hexdigest().upper()


def test_digest_algorithm_names_per_encoding(world: World) -> None:
    for algorithm in ("sha256", "sha384", "sha512", "sha256"):
        package = world.forge(world.pki.leaf, hash_algorithm=algorithm, stem=f"fastpath-{algorithm}")
        assert parse_signature(read_signature(package)).digest_algorithm == algorithm
    identifiers = [
        ({"algorithm": "sha256"}, "sha256"),
        ({"algorithm": "sha256", "parameters": core.Null()}, "sha256"),  # other bytes, same name
        ({"algorithm": "sha384"}, "sha384"),
        ({"algorithm": "sha512"}, "sha512"),
        ({"algorithm": "sha1"}, "sha1"),
        ({"algorithm": "md5"}, "md5"),
        ({"algorithm": "1.2.3.4"}, "1.2.3.4"),
    ]
    for _ in range(2):
        for value, name in identifiers:
            parsed = algos.DigestAlgorithm.load(algos.DigestAlgorithm(value).dump())
            assert _algorithm_name(parsed) == name
