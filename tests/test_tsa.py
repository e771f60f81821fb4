"""RFC 3161: our TimestampServer and client against each other and against openssl (docs/format.md 7),
and the test PKI they run on (trustpolicy.testing)."""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
from asn1crypto import cms, tsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.x509 import ocsp

from trustpolicy._internal.sign import TimeStampResp, make_nonce, request_timestamp
from trustpolicy.errors import SigningError
from trustpolicy.testing.pki import (
    CODE_SIGNING,
    LIFETIME_SIGNING,
    TestPKI,
    generate_key,
    make_crl,
    make_ocsp_error,
    make_ocsp_response,
    write_certificates,
)
from trustpolicy.testing.tsa import DEFAULT_POLICY, OpenSSLTimestampServer

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="openssl binary not installed")
DATA = b"the signature value being timestamped"


def tst_info(token_der: bytes) -> dict:
    signed_data = cms.ContentInfo.load(token_der)["content"]
    return tsp.TSTInfo.load(bytes(signed_data["encap_content_info"]["content"])).native


def openssl_ts_verify(tmp: Path, token: bytes, digest_hex: str, ca: list) -> subprocess.CompletedProcess:
    (tmp / "token.der").write_bytes(token)
    write_certificates(tmp / "ca.pem", ca)
    return subprocess.run(
        [OPENSSL, "ts", "-verify", "-digest", digest_hex, "-token_in", "-in", str(tmp / "token.der"),
         "-CAfile", str(tmp / "ca.pem")],
        capture_output=True, text=True, timeout=30,
    )


# --- our server, checked by openssl -------------------------------------------------------------


@needs_openssl
@pytest.mark.parametrize("algorithm", ["sha256", "sha384", "sha512"])
@pytest.mark.parametrize("signing_certificate", ["v2", "v1"])
def test_openssl_verifies_our_tokens(pki, make_tsa, tmp_path, algorithm, signing_certificate):
    server = make_tsa(signing_certificate=signing_certificate, hash_algorithm=algorithm)
    token = request_timestamp(server.url, DATA, algorithm)
    digest = hashlib.new(algorithm, DATA).hexdigest()
    result = openssl_ts_verify(tmp_path, token, digest, [pki.tsa_root.certificate])
    assert result.returncode == 0, result.stderr
    assert "Verification: OK" in result.stdout


@needs_openssl
def test_openssl_rejects_our_token_for_other_data(pki, tsa_server, tmp_path):
    token = request_timestamp(tsa_server.url, DATA, "sha256")
    other = hashlib.sha256(DATA + b"!").hexdigest()
    assert openssl_ts_verify(tmp_path, token, other, [pki.tsa_root.certificate]).returncode != 0
    # and against a root that did not issue the TSA certificate
    good = hashlib.sha256(DATA).hexdigest()
    assert openssl_ts_verify(tmp_path, token, good, [pki.root.certificate]).returncode != 0


# --- openssl's server, checked by our client -----------------------------------------------------


@needs_openssl
@pytest.mark.parametrize(
    ("algorithm", "ess"), [("sha256", "sha256"), ("sha384", "sha1"), ("sha512", "sha512")]
)
def test_our_client_accepts_openssl_tokens(pki, tmp_path, algorithm, ess):
    with OpenSSLTimestampServer(pki.tsa, tmp_path / "ossl", ess_cert_id_alg=ess, accuracy="secs:1, millisecs:500") as server:
        token = request_timestamp(server.url, DATA, algorithm)
    info = tst_info(token)
    assert info["message_imprint"]["hashed_message"] == hashlib.new(algorithm, DATA).digest()
    assert info["policy"] == DEFAULT_POLICY
    assert info["accuracy"] == {"seconds": 1, "millis": 500, "micros": None}


@needs_openssl
def test_openssl_server_reports_its_failures_as_http_errors(pki, tmp_path):
    with OpenSSLTimestampServer(pki.tsa, tmp_path / "ossl") as server:
        server.config.write_text("this is not an openssl config")
        with pytest.raises(SigningError, match="HTTP 500") as caught:
            request_timestamp(server.url, DATA)
    assert caught.value.code == "NU3000"


# --- the request we send -------------------------------------------------------------------------


def test_request_carries_nonce_and_cert_req(make_tsa):
    server = make_tsa()
    token = request_timestamp(server.url, DATA, "sha384")
    (request,) = server.requests
    assert request["cert_req"].native is True
    imprint = request["message_imprint"]
    assert imprint["hash_algorithm"]["algorithm"].native == "sha384"
    assert imprint["hashed_message"].native == hashlib.sha384(DATA).digest()
    nonce = request["nonce"].native
    assert tst_info(token)["nonce"] == nonce
    raw = nonce.to_bytes(32, "big")
    assert raw[0] != 0 and raw[0] < 0x80 and raw[-1] != 0


def test_nonces_are_positive_32_bytes_with_nonzero_ends():
    seen = set()
    for _ in range(300):
        nonce = make_nonce()
        raw = nonce.to_bytes(32, "big")  # raises if it needed more than 32 bytes
        assert 0 < raw[0] < 0x80 and raw[-1] != 0
        seen.add(nonce)
    assert len(seen) == 300


def test_cert_req_is_honoured(make_tsa):
    token = request_timestamp(make_tsa().url, DATA)
    certs = cms.ContentInfo.load(token)["content"]["certificates"]
    subjects = {c.chosen.subject.native["common_name"] for c in certs}
    assert subjects == {"Test Timestamping", "Test TSA Root CA"}


def test_policy_accuracy_and_gen_time_knobs(pki, make_tsa):
    moment = pki.now - timedelta(hours=2)
    server = make_tsa(policy="1.2.3.4.5", accuracy=timedelta(seconds=2, milliseconds=5), gen_time=moment)
    info = tst_info(request_timestamp(server.url, DATA))
    assert info["policy"] == "1.2.3.4.5"
    assert info["gen_time"] == moment
    assert info["accuracy"] == {"seconds": 2, "millis": 5, "micros": None}


# --- refusals: every way a TSA can go wrong ------------------------------------------------------


@pytest.mark.parametrize(
    ("knobs", "code", "text"),
    [
        ({"wrong_imprint": True}, "NU3019", "imprint"),
        ({"wrong_nonce": True}, "NU3026", "nonce"),
        ({"omit_nonce": True}, "NU3026", "nonce"),
        ({"garbage": True}, "NU3000", "not RFC 3161"),
        ({"garbage": b"\x30\x03\x02\x01\x00trailing"}, "NU3000", "not RFC 3161"),
        ({"status": "rejection"}, "NU3000", "refused"),
        ({"http_status": 503}, "NU3000", "HTTP 503"),
        ({"include_certificates": False}, "NU3029", "no certificates"),  # docs/verification.md 2.9, as the verifier
        ({"signing_certificate": "none"}, "NU3021", "signing-certificate"),  # docs/verification.md 2.9: NU3021, not NU3020
        ({"signer_key": generate_key()}, "NU3021", "does not verify"),
    ],
)
def test_client_refuses_bad_responses(make_tsa, knobs, code, text):
    server = make_tsa(**knobs)
    with pytest.raises(SigningError, match=text) as caught:
        request_timestamp(server.url, DATA)
    assert caught.value.code == code
    assert server.url in str(caught.value)


def test_client_caps_the_response_size(make_tsa):
    server = make_tsa(garbage=b"\x00" * ((1 << 20) + 10))
    with pytest.raises(SigningError, match="exceeds"):
        request_timestamp(server.url, DATA)


def test_hanging_server_times_out(make_tsa):
    server = make_tsa(hang=30)
    started = time.monotonic()
    with pytest.raises(SigningError, match="did not answer within 0.5 s") as caught:
        request_timestamp(server.url, DATA, timeout=0.5)
    assert caught.value.code == "NU3000"
    assert time.monotonic() - started < 5
    server.stop()  # must not wait for the sleeping handler
    assert time.monotonic() - started < 8


def test_unreachable_server():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SigningError, match="cannot reach"):
        request_timestamp(f"http://127.0.0.1:{port}/", DATA, timeout=2)


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/tsa", "file:///etc/passwd", "127.0.0.1:80", "http://"])
def test_only_http_urls(url):
    with pytest.raises(SigningError, match="http or https URL"):
        request_timestamp(url, DATA)


def test_unsupported_imprint_hash_is_refused(tsa_server):
    with pytest.raises(SigningError, match="not supported"):
        request_timestamp(tsa_server.url, DATA, "sha1")


@pytest.mark.parametrize(
    ("tsa_knobs", "code", "text"),
    [
        ({"eku": [CODE_SIGNING]}, "NU3028", "timeStamping"),
        ({"eku": None}, "NU3028", "timeStamping"),
        ({"key_size": 1024}, "NU3023", "2048"),
        ({"hash_algorithm": "sha1"}, "NU3022", "SHA-2"),
    ],
)
def test_client_checks_the_tsa_certificate(pki, make_tsa, tsa_knobs, code, text):
    bad = pki.issue_tsa(f"Bad TSA {code} {text}", **tsa_knobs)
    with pytest.raises(SigningError, match=text) as caught:
        request_timestamp(make_tsa(bad).url, DATA)
    assert caught.value.code == code


def test_tsa_certificate_not_yet_valid(pki, make_tsa):
    future = pki.issue_tsa("Future TSA", not_before=pki.now + timedelta(days=1))
    with pytest.raises(SigningError) as caught:
        request_timestamp(make_tsa(future, gen_time=pki.now + timedelta(days=2)).url, DATA, now=pki.now)
    assert caught.value.code == "NU3025"


def test_gen_time_outside_tsa_validity(pki, make_tsa):
    server = make_tsa(gen_time=pki.tsa.certificate.not_valid_after_utc + timedelta(days=1))
    with pytest.raises(SigningError, match="genTime") as caught:
        request_timestamp(server.url, DATA, now=pki.now)
    assert caught.value.code == "NU3036"


def test_server_rejects_a_malformed_request(tsa_server):
    import urllib.request

    request = urllib.request.Request(tsa_server.url, data=b"not a request", method="POST",
                                     headers={"Content-Type": "application/timestamp-query"})
    with urllib.request.urlopen(request, timeout=5) as response:
        answer = TimeStampResp.load(response.read())
    assert answer["status"]["status"].native == "rejection"
    assert answer["status"]["fail_info"].native == {"bad_data_format"}


def test_pki_is_independent_per_instance(tmp_path):
    a, b = TestPKI(), TestPKI()
    assert a.tsa.certificate.subject != b.tsa.certificate.subject
    fresh = TestPKI(fresh_keys=True)
    assert fresh.root.certificate.public_key() != a.root.certificate.public_key()


# --- the test PKI itself (trustpolicy.testing.pki) ------------------------------------------------

@needs_openssl
def test_standard_chain_verifies_with_openssl(pki, tmp_path):
    root = write_certificates(tmp_path / "root.pem", [pki.root.certificate])
    inter = write_certificates(tmp_path / "inter.pem", [pki.intermediate.certificate])
    leaf = write_certificates(tmp_path / "leaf.pem", [pki.leaf.certificate])
    ok = subprocess.run([OPENSSL, "verify", "-CAfile", str(root), "-untrusted", str(inter), str(leaf)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    tsa = write_certificates(tmp_path / "tsa.pem", [pki.tsa.certificate])
    tsa_root = write_certificates(tmp_path / "tsaroot.pem", [pki.tsa_root.certificate])
    ok = subprocess.run([OPENSSL, "verify", "-CAfile", str(tsa_root), "-purpose", "timestampsign", str(tsa)],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    wrong = subprocess.run([OPENSSL, "verify", "-CAfile", str(tsa_root), "-untrusted", str(inter), str(leaf)],
                           capture_output=True, text=True)
    assert wrong.returncode != 0


def test_certificate_knobs(pki):
    cert = pki.issue_code_signing(
        "Knobs", key_size=1024, hash_algorithm="sha1", eku=[LIFETIME_SIGNING], ski=False,
        crl_urls=["http://127.0.0.1:1/ca.crl"], ocsp_urls=["http://127.0.0.1:2/ocsp"],
        not_before=pki.now + timedelta(days=1), not_after=pki.now + timedelta(days=2),
    ).certificate
    assert cert.public_key().key_size == 1024
    assert cert.signature_algorithm_oid == x509.SignatureAlgorithmOID.RSA_WITH_SHA1
    pki.intermediate.certificate.public_key().verify(  # a real SHA-1 signature by the issuer
        cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), hashes.SHA1())
    assert list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [LIFETIME_SIGNING]
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value == "http://127.0.0.1:1/ca.crl"
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert [(a.access_method, a.access_location.value) for a in aia] == [
        (x509.AuthorityInformationAccessOID.OCSP, "http://127.0.0.1:2/ocsp")]
    assert cert.not_valid_before_utc == pki.now + timedelta(days=1)
    ec_cert = pki.issue_code_signing("EC", key_type="ec", key_size=256).certificate
    assert ec_cert.public_key().curve.name == "secp256r1"
    without = pki.issue_code_signing("No EKU", eku=None).certificate
    with pytest.raises(x509.ExtensionNotFound):
        without.extensions.get_extension_for_class(x509.ExtendedKeyUsage)


def test_keys_are_distinct_within_a_pki(pki):
    keys = {i.certificate.public_key().public_numbers().n for i in
            (pki.root, pki.intermediate, pki.leaf, pki.tsa_root, pki.tsa)}
    assert len(keys) == 5


def test_crl(pki):
    revoked = pki.issue_code_signing("Revoked")
    when = pki.now - timedelta(days=2)
    crl = x509.load_der_x509_crl(make_crl(pki.intermediate, [revoked.serial, (77, when)], pki.now,
                                          pki.now + timedelta(days=1)))
    assert crl.is_signature_valid(pki.intermediate.certificate.public_key())
    assert crl.issuer == pki.intermediate.certificate.subject
    assert crl.get_revoked_certificate_by_serial_number(revoked.serial) is not None
    assert crl.get_revoked_certificate_by_serial_number(77).revocation_date_utc == when
    assert crl.get_revoked_certificate_by_serial_number(pki.leaf.serial) is None
    assert crl.next_update_utc == pki.now + timedelta(days=1)
    forged = x509.load_der_x509_crl(pki.make_crl(pki.intermediate, [], signer=pki.root))
    assert not forged.is_signature_valid(pki.intermediate.certificate.public_key())


@pytest.mark.parametrize("status", ["good", "revoked", "unknown"])
def test_ocsp_response(pki, status):
    request = (ocsp.OCSPRequestBuilder()
               .add_certificate(pki.leaf.certificate, pki.intermediate.certificate, hashes.SHA256())
               .add_extension(x509.OCSPNonce(b"0123456789abcdef"), critical=False).build())
    response = ocsp.load_der_ocsp_response(pki.make_ocsp_response(pki.intermediate, pki.leaf, status, request=request))
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert response.certificate_status.name == status.upper()
    assert response.serial_number == pki.leaf.serial
    assert isinstance(response.hash_algorithm, hashes.SHA256)  # echoes the request's CertID hash
    assert response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"0123456789abcdef"
    pki.intermediate.certificate.public_key().verify(
        response.signature, response.tbs_response_bytes, padding.PKCS1v15(), response.signature_hash_algorithm)
    if status == "revoked":
        assert response.revocation_time_utc < response.this_update_utc


def test_ocsp_delegated_responder_and_errors(pki):
    responder = pki.issue_ocsp_responder("OCSP Responder", issuer=pki.intermediate)
    response = ocsp.load_der_ocsp_response(make_ocsp_response(pki.intermediate, pki.leaf, "good", responder=responder))
    assert response.certificates == [responder.certificate]
    responder.certificate.public_key().verify(
        response.signature, response.tbs_response_bytes, padding.PKCS1v15(), response.signature_hash_algorithm)
    assert isinstance(response.hash_algorithm, hashes.SHA1)  # the default CertID hash
    error = ocsp.load_der_ocsp_response(make_ocsp_error("try_later"))
    assert error.response_status == ocsp.OCSPResponseStatus.TRY_LATER


def test_pem_and_pfx_files(pki, tmp_path):
    from cryptography.hazmat.primitives.serialization import load_pem_private_key, pkcs12

    cert_path, key_path = pki.leaf.write_pem(tmp_path, key_password="pw")
    assert x509.load_pem_x509_certificate(cert_path.read_bytes()) == pki.leaf.certificate
    assert load_pem_private_key(key_path.read_bytes(), b"pw").public_key() == pki.leaf.private_key.public_key()
    loaded = pkcs12.load_key_and_certificates(pki.leaf.write_pfx(tmp_path / "l.pfx", "pw").read_bytes(), b"pw")
    assert loaded[1] == pki.leaf.certificate and list(loaded[2]) == list(pki.leaf.chain[1:])
    assert pki.leaf.write_pfx().parent == pki.directory  # default location: the PKI directory
