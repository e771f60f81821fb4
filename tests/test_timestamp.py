"""One RFC 3161 token check for the signer and the verifier (trustpolicy._internal.timestamp, docs/format.md 7,
docs/verification.md 4.2 Step A).

For every token defect a real TSA can produce, sign_package refuses with the code the verifier
reports for the same token embedded into a signature. The checks' order, the moment as a parameter
and the facts check_token returns are tested on real tokens from TimestampServer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import cms, core, tsp
from conftest import identity_of
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding
from test_verify_support import (  # noqa: F401 - `world` is a fixture
    World,
    add_unsigned,
    primary_info,
    raw_token,
    timestamp_attribute,
    with_signer_info,
    world,
)

from trustpolicy._internal import clock
from trustpolicy._internal.archive import hash_file, insert_signature
from trustpolicy._internal.sign import (
    TimeStampResp,
    attribute,
    build_signature,
    check_timestamp_response,
    der_set_of,
    signature_content,
    signing_certificate_v1,
)
from trustpolicy._internal.timestamp import check_token
from trustpolicy._internal.verify import VERIFY
from trustpolicy.errors import SigningError
from trustpolicy.models import PackageVerdict
from trustpolicy.testing.pki import CODE_SIGNING, Issued, generate_key
from trustpolicy.testing.tsa import TimestampServer

VALUE = b"a signature value"
NONCE = 12345  # the nonce raw_token asks for


def _tsa(world: World, label: str, **knobs: Any) -> Issued:
    return world.pki.issue_tsa(f"Agreement {label}", **knobs)


def _verdict(world: World, package: Path) -> PackageVerdict:
    return world.verifier(VERIFY).verify_package(package)


# --- the signer refuses with the code the verifier reports --------------------------------------

# case -> (TimestampServer arguments for the session's world, the code both report)
DEFECTS: dict[str, tuple[Callable[[World], dict[str, Any]], str]] = {
    "wrong imprint": (lambda w: {"tsa": w.pki.tsa, "wrong_imprint": True}, "NU3019"),
    "token signed with another key": (lambda w: {"tsa": w.pki.tsa, "signer_key": generate_key()}, "NU3021"),
    "no signing-certificate attribute": (lambda w: {"tsa": w.pki.tsa, "signing_certificate": "none"}, "NU3021"),
    "negative accuracy": (lambda w: {"tsa": w.pki.tsa, "accuracy": timedelta(seconds=-5)}, "NU3021"),
    "no certificates": (lambda w: {"tsa": w.pki.tsa, "include_certificates": False}, "NU3029"),
    "TSA certificate signed with SHA-1": (lambda w: {"tsa": _tsa(w, "SHA-1", hash_algorithm="sha1")}, "NU3022"),
    "1024-bit TSA key": (lambda w: {"tsa": _tsa(w, "1024", key_size=1024)}, "NU3023"),
    "TSA certificate not yet valid": (
        lambda w: {"tsa": _tsa(w, "Future", not_before=clock.now() + timedelta(days=5),
                               not_after=clock.now() + timedelta(days=50))}, "NU3025"),
    "genTime after the TSA certificate": (
        lambda w: {"tsa": w.pki.tsa, "gen_time": w.pki.tsa.certificate.not_valid_after_utc + timedelta(days=1)},
        "NU3036"),
    "expired TSA certificate": (
        lambda w: {"tsa": _tsa(w, "Expired", not_before=clock.now() - timedelta(days=60),
                               not_after=clock.now() - timedelta(days=1))}, "NU3036"),
    "TSA certificate for code signing": (lambda w: {"tsa": _tsa(w, "Code Signing", eku=[CODE_SIGNING])}, "NU3028"),
}


@pytest.mark.parametrize("case", list(DEFECTS))
def test_signer_and_verifier_report_the_same_code(world: World, case: str) -> None:
    knobs, code = DEFECTS[case]
    with TimestampServer(**knobs(world)) as server:
        with pytest.raises(SigningError) as refused:
            world.sign(timestamp=server)
        package = world.forge(world.pki.leaf, timestamp=server)  # the same kind of token, embedded
    verdict = _verdict(world, package)
    assert refused.value.code == code, refused.value
    assert verdict.verdict == "invalid" and verdict.codes("error")[:1] == [code], verdict.issues


def test_what_only_a_request_has_is_the_signers_alone(world: World) -> None:
    """A nonce is request state (NU3026 only at signing time); the signer also holds the TSA
    certificate to RFC 3161 2.3's timeStamping EKU, while the verifier's TSA chain reads a
    certificate without an EKU extension as valid for every purpose (as a Windows chain does)."""
    cases = [
        ({"tsa": world.pki.tsa, "wrong_nonce": True}, "NU3026"),
        ({"tsa": world.pki.tsa, "omit_nonce": True}, "NU3026"),
        ({"tsa": _tsa(world, "No EKU", eku=None)}, "NU3028"),
    ]
    for knobs, code in cases:
        with TimestampServer(**knobs) as server:
            with pytest.raises(SigningError) as refused:
                world.sign(timestamp=server)
            package = world.forge(world.pki.leaf, timestamp=server)
        assert refused.value.code == code
        verdict = _verdict(world, package)
        assert verdict.verdict == "valid" and verdict.signatures[0].timestamp is not None, verdict.issues


@pytest.mark.parametrize("knobs", [
    {"signing_certificate": "v1"},
    {"signing_certificate": "both"},
    {"include_chain": False},
    {"accuracy": timedelta(seconds=1, milliseconds=500)},
    {"hash_algorithm": "sha512"},
])
def test_good_tokens_pass_both(world: World, knobs: dict[str, Any]) -> None:
    with TimestampServer(world.pki.tsa, **knobs) as server:
        signed = world.sign(timestamp=server)
        forged = world.forge(world.pki.leaf, timestamp=server)
    for package in (signed, forged):
        verdict = _verdict(world, package)
        assert verdict.verdict == "valid" and verdict.signatures[0].timestamp is not None, verdict.issues


# --- tokens no TSA of ours writes: built by hand, judged by both ---------------------------------


def _embedded(world: World, make_token: Callable[[bytes], cms.ContentInfo]) -> tuple[bytes, cms.ContentInfo, Path]:
    """A package whose primary signature carries make_token(its signature value)."""
    source = world.unsigned("hand-token-unsigned")
    der = build_signature(signature_content("sha256", hash_file(source, "sha256")), identity=identity_of(world.pki.leaf))
    info = primary_info(der)
    value = info["signature"].native
    token = make_token(value)
    dest = world.path("hand-token")
    insert_signature(source, with_signer_info(der, add_unsigned(info, [timestamp_attribute(token)])), dest)
    return value, token, dest


def _signer_code(value: bytes, token: cms.ContentInfo) -> str | None:
    """What the signer's response check says about `token` answering our request for `value`."""
    body = TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": token}).dump()
    try:
        check_timestamp_response(body, signature_value=value, hash_algorithm="sha256", nonce=NONCE,
                                 url="http://tsa.test/", now=clock.now())
    except SigningError as error:
        return error.code
    return None


def _resigned(token: cms.ContentInfo, tsa: Issued, *, digest: str = "sha256",
              signature_algorithm: str = "rsassa_pkcs1v15", tst: bytes | None = None,
              tsa_der: bytes | None = None) -> cms.ContentInfo:
    """`token` and a new, valid SignerInfo: `digest` for message-digest and signature, labelled
    `signature_algorithm`, signing-certificate v1 (the only ESSCertID a SHA-1 digest can use).
    `tst` replaces the TSTInfo bytes, `tsa_der` the TSA certificate (in the set and the ESSCertID)."""
    signed_data = token["content"]
    tst = tst if tst is not None else bytes(signed_data["encap_content_info"]["content"])
    hash_class = {"sha1": hashes.SHA1, "sha256": hashes.SHA256}[digest]
    signed = der_set_of([
        attribute("content_type", "tst_info"),
        attribute("message_digest", hashlib.new(digest, tst).digest()),
        attribute("signing_certificate", signing_certificate_v1(tsa.certificate) if tsa_der is None
                  else tsp.SigningCertificate({"certs": [{"cert_hash": hashlib.sha1(tsa_der).digest()}]})),
    ])
    info = cms.SignerInfo({
        "version": "v1",
        "sid": cms.SignerIdentifier.load(signed_data["signer_infos"][0]["sid"].dump()),
        "digest_algorithm": {"algorithm": digest},
        "signed_attrs": cms.CMSAttributes.load(signed),
        "signature_algorithm": {"algorithm": signature_algorithm},
        "signature": tsa.private_key.sign(signed, padding.PKCS1v15(), hash_class()),
    })
    fields = {"version": signed_data["version"], "certificates": signed_data["certificates"]}
    if tsa_der is not None:
        others = [c.dump() for c in signed_data["certificates"] if c.chosen.dump() != tsa.der]
        fields["certificates"] = cms.CertificateSet.load(der_set_of([tsa_der, *others]))
    fields["encap_content_info"] = {"content_type": "tst_info", "content": core.ParsableOctetString(tst)}
    fields["digest_algorithms"] = [{"algorithm": digest}]
    fields["signer_infos"] = [info]
    return cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(fields)})


def test_sha1_token_digest_is_nu3024_after_the_certificate_checks(world: World) -> None:
    # docs/verification.md 4.2 table order: NU3022, NU3023, then NU3024 (the old verifier put NU3024 first).
    # A SHA-1 digest is not a failed signature (NU3021): the CMS check only runs for SHA-2.
    tsa = _tsa(world, "1024 for SHA-1", key_size=1024)
    with TimestampServer(tsa, signing_certificate="v1") as server:
        value, token, package = _embedded(world, lambda v: _resigned(raw_token(server, v), tsa, digest="sha1"))
    assert [p.code for p in check_token(token.dump(), value, clock.now()).problems] == ["NU3023", "NU3024"]
    assert _signer_code(value, token) == "NU3023"
    assert _verdict(world, package).codes("error")[:2] == ["NU3023", "NU3024"]


def test_token_signature_algorithm_outside_the_allow_list_is_nu3021_for_both(world: World) -> None:
    # The signer used to verify the RSA signature whatever the SignerInfo called its algorithm.
    with TimestampServer(world.pki.tsa) as server:
        value, token, package = _embedded(
            world, lambda v: _resigned(raw_token(server, v), world.pki.tsa, signature_algorithm="sha1_rsa"))
    assert [p.code for p in check_token(token.dump(), value, clock.now()).problems] == ["NU3021"]
    assert _signer_code(value, token) == "NU3021"
    assert _verdict(world, package).codes("error")[:1] == ["NU3021"]


def test_a_nonce_that_cannot_be_decoded_is_refused_not_raised(world: World) -> None:
    def constructed_nonce(token: cms.ContentInfo) -> bytes:  # INTEGER 12345 as a constructed value
        tst = bytes(token["content"]["encap_content_info"]["content"])
        body = tsp.TSTInfo.load(tst).contents
        assert body.count(b"\x02\x02\x30\x39") == 1
        body = body.replace(b"\x02\x02\x30\x39", b"\x22\x04\x02\x02\x30\x39")
        return tsp.TSTInfo.load(b"\x30\x82" + len(body).to_bytes(2, "big") + body).dump()

    with TimestampServer(world.pki.tsa) as server:
        def make(value: bytes) -> cms.ContentInfo:
            token = raw_token(server, value)
            return _resigned(token, world.pki.tsa, tst=constructed_nonce(token))

        value, token, package = _embedded(world, make)
    assert _signer_code(value, token) == "NU3021"
    assert _verdict(world, package).verdict == "valid"  # the verifier never reads the nonce


def _tlv(tag: int, body: bytes) -> bytes:
    length = len(body).to_bytes(2, "big")
    return bytes([tag, 0x82]) + length + body if len(body) > 0x7F else bytes([tag, len(body)]) + body


def test_a_tsa_certificate_field_that_cannot_be_decoded_is_nu3021_not_a_crash(world: World) -> None:
    # The certificate's own signatureAlgorithm OID encoded as constructed: the token parse never
    # reads it (the TSA is found by issuer and serial, the ESSCertID hashes the raw bytes), the
    # NU3022 check does.
    tsa = world.pki.tsa
    cert = tsa.asn1
    algorithm = cert["signature_algorithm"]["algorithm"].dump()
    broken = _tlv(0x30, cert["tbs_certificate"].dump() + _tlv(0x30, _tlv(0x26, algorithm) + b"\x05\x00")
                  + cert["signature_value"].dump())
    with TimestampServer(tsa, signing_certificate="v1") as server:
        value, token, package = _embedded(world, lambda v: _resigned(raw_token(server, v), tsa, tsa_der=broken))
    problems = check_token(token.dump(), value, clock.now()).problems
    assert [p.code for p in problems] == ["NU3021"] and "cannot be decoded" in problems[0].message
    assert _signer_code(value, token) == "NU3021"
    assert _verdict(world, package).codes("error")[:1] == ["NU3021"]


def test_a_hand_built_token_that_is_right_passes_both(world: World) -> None:
    with TimestampServer(world.pki.tsa) as server:
        value, token, package = _embedded(world, lambda v: _resigned(raw_token(server, v), world.pki.tsa))
    assert check_token(token.dump(), value, clock.now()).valid
    assert _signer_code(value, token) is None
    assert _verdict(world, package).verdict == "valid"


# --- check_token itself ----------------------------------------------------------------------------


def test_facts_of_a_good_token(world: World) -> None:
    moment = clock.now().replace(microsecond=0) - timedelta(hours=1)
    with TimestampServer(world.pki.tsa, gen_time=moment, accuracy=timedelta(seconds=2)) as server:
        der = raw_token(server, VALUE).dump()
    check = check_token(der, VALUE, clock.now())
    ts = check.timestamp
    assert check.valid and check.problems == ()
    assert ts.gen_time == moment and ts.lower_limit == moment - timedelta(seconds=2)
    assert ts.upper_limit == moment + timedelta(seconds=2)
    assert ts.tsa_certificate is not None and ts.tsa_certificate.dump() == world.pki.tsa.der
    assert {c.dump() for c in ts.certificates} == {c.public_bytes(Encoding.DER) for c in world.pki.tsa.chain}
    assert check_token(ts, VALUE, clock.now()).problems == ()  # the parsed token judges alike


def test_the_moment_is_a_parameter(world: World) -> None:
    with TimestampServer(world.pki.tsa) as server:
        der = raw_token(server, VALUE).dump()
    not_before = world.pki.tsa.certificate.not_valid_before_utc
    before = check_token(der, VALUE, not_before - timedelta(seconds=1))
    assert [p.code for p in before.problems] == ["NU3025"]
    # an expired TSA certificate does not matter once genTime lies in its validity (scenario 51)
    years_later = world.pki.tsa.certificate.not_valid_after_utc + timedelta(days=3650)
    assert check_token(der, VALUE, years_later).valid


def test_another_signature_value_is_nu3019(world: World) -> None:
    with TimestampServer(world.pki.tsa) as server:
        der = raw_token(server, VALUE).dump()
    assert [(p.code, "integrity" in p.message) for p in check_token(der, VALUE + b"!", clock.now()).problems] == [
        ("NU3019", True)
    ]


def test_every_problem_in_nugets_order(world: World) -> None:
    """docs/verification.md 4.2 Step A.3: all problems are reported, in the table's order."""
    tsa = _tsa(world, "Everything Wrong", hash_algorithm="sha1", key_size=1024)
    knobs = {"signer_key": generate_key(), "wrong_imprint": True,
             "gen_time": tsa.certificate.not_valid_after_utc + timedelta(days=1)}
    expected = ["NU3021", "NU3022", "NU3023", "NU3019", "NU3036"]
    with TimestampServer(tsa, **knobs) as server:
        der = raw_token(server, VALUE).dump()
        with pytest.raises(SigningError) as refused:
            world.sign(timestamp=server)
        package = world.forge(world.pki.leaf, timestamp=server)
    assert [p.code for p in check_token(der, VALUE, clock.now()).problems] == expected
    assert refused.value.code == "NU3019"  # the signer stops at the first, and checks its request first
    verdict = _verdict(world, package)
    assert verdict.codes("error")[:5] == expected
    assert all(m.startswith("The timestamp of the primary signature is invalid: ")
               for m in (i.message for i in verdict.issues[:5]))


def test_undecodable_token_is_one_problem() -> None:
    check = check_token(b"\x30\x03\x02\x01\x00", VALUE, datetime.now().astimezone())
    assert [p.code for p in check.problems] == ["NU3021"] and check.timestamp.gen_time is None
