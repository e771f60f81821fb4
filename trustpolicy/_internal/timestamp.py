"""RFC 3161 timestamp tokens: the checks the signer and the verifier share (docs/format.md 7,
docs/verification.md 4.2 Step A).

`check_token` judges one TimeStampToken against the signature value it should cover, at a given
moment, and returns every problem in NuGet's order:

0. what reading the token found (trustpolicy._internal.signature: NU3021 not a TSTInfo SignedData, not one
   signer, bad signing-certificate attribute; NU3029 no certificates; NU3020 no TSA certificate;
   NU3030 unsupported imprint hash). NuGet throws while loading: this problem is the only one.
1. NU3021 the token's CMS signature (trustpolicy._internal.signerinfo), when its digest is SHA-2
2. NU3022 TSA certificate not signed with SHA-256/384/512 and RSA
3. NU3023 TSA key not RSA of at least 2048 bits
4. NU3024 token digest algorithm not SHA-256/384/512
5. NU3019 messageImprint is not the hash of the signature value
6. NU3025 TSA certificate not yet valid at `now`, else NU3036 genTime outside its validity

The verifier reports each at its mode's level and builds the TSA chain only when there is none;
the signer refuses on the first. What only a live request has (PKIStatus, nonce, the imprint
echo) and the timeStamping EKU the verifier judges with the chain stay in trustpolicy._internal.sign.
No I/O, no clock: `now` is a parameter.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from asn1crypto import x509

from trustpolicy._internal import asn1 as oids
from trustpolicy._internal.clock import format_moment
from trustpolicy._internal.signature import _DECODE_ERRORS, Timestamp, _algorithm_name, distinguished_name, parse_timestamp
from trustpolicy._internal.signerinfo import certificate_algorithm_ok, rsa_key_ok, validity_of, verify_signer_info
from trustpolicy.codes import Code

__all__ = ["Problem", "TokenCheck", "check_token"]

_PARSE_PREFIX = "The timestamp is invalid: "  # how trustpolicy._internal.signature words a token defect


@dataclass(frozen=True)
class Problem:
    """One failed check: the NU code and what failed, as a clause ("the TSA certificate ...")."""

    code: Code
    message: str


@dataclass(frozen=True)
class TokenCheck:
    """The parsed token (gen time, accuracy limits, TSA certificate, certificates) and its problems."""

    timestamp: Timestamp
    problems: tuple[Problem, ...]

    @property
    def valid(self) -> bool:
        return not self.problems


def check_token(token: bytes | Timestamp, signature_value: bytes, now: datetime) -> TokenCheck:
    """Check a TimeStampToken (its DER, or as parse_signature read it) against the signature value
    it timestamps, with TSA certificate validity judged at `now`."""
    ts = token if isinstance(token, Timestamp) else parse_timestamp(token)
    try:
        problems = _problems(ts, signature_value, now)
    except _DECODE_ERRORS as error:  # parsing is lazy: a field read here for the first time may not decode
        problems = [Problem(Code.NU3021, f"the token cannot be decoded ({type(error).__name__}: {error})")]
    return TokenCheck(ts, tuple(problems))


def _problems(ts: Timestamp, signature_value: bytes, now: datetime) -> list[Problem]:
    if ts.problem is not None:
        return [Problem(ts.problem.code, ts.problem.message.removeprefix(_PARSE_PREFIX))]
    tsa, signer_info = ts.tsa_certificate, ts.signer_info
    if tsa is None or signer_info is None or ts.tst_info is None or ts.gen_time is None:
        return [Problem(Code.NU3020, "the token has no TSA signing certificate")]
    problems = []
    digest = _algorithm_name(signer_info["digest_algorithm"])
    if digest in oids.HASH_OIDS:  # an unsupported digest is NU3024 below, not a failed signature
        content = bytes(ts.token["content"]["encap_content_info"]["content"])
        why = verify_signer_info(tsa, signer_info, ts.signed_attrs_der or b"", content, digest)
        if why is not None:
            problems.append(Problem(Code.NU3021, f"the token signature does not verify: {why}"))
    if not certificate_algorithm_ok(tsa):
        problems.append(Problem(Code.NU3022, f"the TSA certificate {_subject(tsa)} is signed with "
                                          f"{tsa['signature_algorithm']['algorithm'].native}, not SHA-2 with RSA"))
    if not rsa_key_ok(tsa):
        key = tsa.public_key
        problems.append(Problem(Code.NU3023, f"the TSA certificate {_subject(tsa)} has a {key.bit_size}-bit "
                                          f"{key.algorithm.upper()} key; RSA of at least 2048 bits is required"))
    if digest not in oids.HASH_OIDS:
        problems.append(Problem(Code.NU3024, f"the token digest algorithm {digest} is not SHA-256/384/512"))
    if ts.hash_algorithm not in oids.HASH_OIDS:
        problems.append(Problem(Code.NU3030, f"the message imprint uses an unsupported hash algorithm "
                                          f"({ts.hash_algorithm})"))
    elif ts.message_imprint != hashlib.new(ts.hash_algorithm, signature_value).digest():
        problems.append(Problem(Code.NU3019, "the message imprint does not match the signature value "
                                          "(timestamp integrity check failed)"))
    not_before, not_after = validity_of(tsa)
    if not_before > now:
        problems.append(Problem(Code.NU3025, f"the TSA certificate {_subject(tsa)} is not yet valid "
                                          f"(notBefore {_t(not_before)})"))
    elif not not_before <= ts.gen_time < not_after:
        problems.append(Problem(Code.NU3036, f"genTime {_t(ts.gen_time)} is outside the validity period of the "
                                          f"TSA certificate {_subject(tsa)} ({_t(not_before)} to {_t(not_after)})"))
    return problems


def _subject(cert: x509.Certificate) -> str:
    return distinguished_name(cert.subject) or f"serial {cert.serial_number:x}"


def _t(moment: datetime) -> str:
    return format_moment(moment, seconds=True)
