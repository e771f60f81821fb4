"""Sign .nupkg files: author and repository primary signatures, repository countersignatures.

Builds exactly the CMS profile of docs/format.md sections 5-7 (what NuGet's signer writes):

- content: "Version:1\\n\\n<hash-oid>-Hash:<base64>\\n\\n" over the hash of the whole unsigned file;
- SignedData v1 (issuer+serial) or v3 (subject key identifier), attached id-data content;
- signed attributes content-type, signing-time, commitment-type-indication, message-digest,
  signing-certificate-v2 (+ nuget-v3-service-index-url and nuget-package-owners for repositories);
- RSA PKCS#1 v1.5 over the DER of the signed attributes as a SET OF (sorted when built; the exact
  bytes signed are the bytes written);
- an RFC 3161 timestamp of the signature value in the signature-time-stamp unsigned attribute.

A repository countersignature goes in the primary SignerInfo's countersignature unsigned attribute;
everything the primary signature covers stays byte for byte.

Refusals raise SigningError with the NU code NuGet uses. Warnings (NU3002) go to `on_warning`.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import secrets
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import urlsplit

from asn1crypto import cms, core, tsp, x509 as asn1_x509
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from trustpolicy._internal import (
    asn1 as oids,  # importing registers the NuGet attribute types
    clock,
)
from trustpolicy._internal.archive import PackageArchive, hash_file, insert_signature, strip_signature
from trustpolicy._internal.net import with_deadline
from trustpolicy._internal.signature import distinguished_name
from trustpolicy._internal.timestamp import check_token
from trustpolicy.codes import Code
from trustpolicy.errors import SigningError, TrustPolicyError
from trustpolicy.models import Issue, Level, Location

__all__ = [
    "DEFAULT_TIMESTAMP_TIMEOUT",
    "HASH_ALGORITHMS",
    "RepositoryOptions",
    "SigningIdentity",
    "TimeStampResp",
    "attribute",
    "build_signature",
    "check_signing_certificate",
    "check_timestamp_response",
    "countersign_signature",
    "der_set_of",
    "hash_algorithm_name",
    "make_nonce",
    "make_signer_info",
    "request_timestamp",
    "sign_package",
    "signature_content",
    "signing_certificate_v1",
    "signing_certificate_v2",
]

HASH_ALGORITHMS = ("sha256", "sha384", "sha512")
DEFAULT_TIMESTAMP_TIMEOUT = 10.0  # seconds, as NuGet
MAX_TIMESTAMP_RESPONSE = 1 << 20  # a timestamp response is a few KiB; refuse to buffer more
MAX_ENTRIES_TO_SIGN = 0xFFFE - 1  # NU3039
ANY_EKU = "2.5.29.37.0"

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}
_ECDSA_NAMES = {"sha256": "sha256_ecdsa", "sha384": "sha384_ecdsa", "sha512": "sha512_ecdsa"}
_WARN = Callable[[Issue], None]


def hash_algorithm_name(value: str) -> str:
    """'SHA256', 'sha-256', 'sha256' -> 'sha256'; anything but SHA-256/384/512 is refused."""
    name = value.strip().lower().replace("-", "")
    if name not in HASH_ALGORITHMS:
        raise SigningError(Code.NU3001, f"hash algorithm {value!r} is not supported; use SHA256, SHA384 or SHA512")
    return name


# ---------------------------------------------------------------------------------------------
# Inputs: identity and repository options
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RepositoryOptions:
    """Makes the signature a repository signature (proofOfReceipt) for this service index."""

    service_index: str
    owners: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        parts = urlsplit(self.service_index)
        if parts.scheme != "https" or not parts.netloc or not self.service_index.isascii():
            raise SigningError(
                Code.NU3001, f"the service index URL must be an absolute https URL, got {self.service_index!r}"
            )
        object.__setattr__(self, "owners", tuple(self.owners))
        for owner in self.owners:
            if not owner.strip():
                raise SigningError(Code.NU3001, "a package owner must not be empty or whitespace")


@dataclass(frozen=True)
class SigningIdentity:
    """The signing certificate, its private key and the rest of its chain (for the CMS)."""

    certificate: x509.Certificate
    private_key: PrivateKey
    chain: tuple[x509.Certificate, ...] = ()  # intermediates and root, in the order given
    source: str | None = None  # file it came from, for messages

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        return (self.certificate, *self.chain)

    @classmethod
    def from_pkcs12(cls, path: str | Path, password: str | None = None) -> SigningIdentity:
        data = _read_input(path)
        try:
            key, cert, extra = pkcs12.load_key_and_certificates(data, password.encode() if password else None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            hint = "wrong password, or" if password else "no password given, or"
            raise SigningError(Code.NU3001, f"cannot read the PKCS#12 file ({hint} not PKCS#12): {exc}", path=str(path)) from exc
        if cert is None or key is None:
            raise SigningError(Code.NU3001, "the PKCS#12 file must hold a certificate and its private key", path=str(path))
        return cls(cert, key, tuple(extra), str(path))  # type: ignore[arg-type]

    @classmethod
    def from_pem(cls, cert_path: str | Path, key_path: str | Path | None = None, password: str | None = None) -> SigningIdentity:
        """PEM certificates (the signer, then any chain certificates) and a PEM private key
        (from key_path, else from the certificate file itself)."""
        cert_data = _read_input(cert_path)
        try:
            certs = x509.load_pem_x509_certificates(cert_data)
        except ValueError as exc:
            raise SigningError(Code.NU3001, f"no PEM certificate could be read: {exc}", path=str(cert_path)) from exc
        key_source = key_path if key_path is not None else cert_path
        key_data = _read_input(key_source) if key_path is not None else cert_data
        try:
            key = serialization.load_pem_private_key(key_data, password.encode() if password else None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise SigningError(Code.NU3001, f"cannot read the PEM private key: {exc}", path=str(key_source)) from exc
        if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
            raise SigningError(Code.NU3014, "the private key is neither RSA nor EC", path=str(key_source))
        wanted = _spki(key.public_key())
        matching = [c for c in certs if _spki(c.public_key()) == wanted]
        if not matching:
            raise SigningError(Code.NU3001, f"no certificate matches the private key in {key_source}", path=str(cert_path))
        leaf = matching[0]
        return cls(leaf, key, tuple(c for c in certs if c is not leaf), str(cert_path))


def _read_input(path: str | Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SigningError(Code.NU3001, f"cannot read the file: {exc.strerror or exc}", path=str(path)) from exc


def _spki(public_key: object) -> bytes:
    return public_key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _eku(cert: x509.Certificate) -> list[str] | None:
    try:
        return [o.dotted_string for o in cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value]
    except x509.ExtensionNotFound:
        return None


def _describe(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or f"serial {cert.serial_number:x}"


def check_signing_certificate(identity: SigningIdentity, moment: datetime) -> None:
    """NuGet's sign-time certificate checks (docs/format.md 5.3, docs/policy.md 6), in NuGet's order."""
    cert, where = identity.certificate, identity.source
    subject = _describe(cert)
    if _spki(identity.private_key.public_key()) != _spki(cert.public_key()):
        raise SigningError(Code.NU3001, f"the private key does not belong to the certificate {subject}", path=where)
    if cert.signature_algorithm_oid.dotted_string not in oids.RSA_SIGNATURE_OIDS:
        name = getattr(cert.signature_algorithm_oid, "_name", cert.signature_algorithm_oid.dotted_string)
        raise SigningError(
            Code.NU3013, f"the signing certificate {subject} is signed with {name}; "
                      "only SHA-256/384/512 with RSA are supported", path=where)
    key = cert.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < 2048:
        kind = f"a {key.key_size}-bit RSA key" if isinstance(key, rsa.RSAPublicKey) else f"a {type(key).__name__} key"
        raise SigningError(Code.NU3014, f"the signing certificate {subject} has {kind}; an RSA key of at least 2048 bits is required", path=where)
    usages = _eku(cert)
    if usages is not None and oids.EKU_LIFETIME_SIGNING in usages:
        raise SigningError(Code.NU3015, f"the signing certificate {subject} has the lifetime-signing EKU", path=where)
    if cert.not_valid_before_utc > moment:
        raise SigningError(Code.NU3017, f"the signing certificate {subject} is not valid before {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%SZ}", path=where)
    if cert.not_valid_after_utc < moment:
        raise SigningError(Code.NU3018, f"the signing certificate {subject} expired on {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%SZ}", path=where)
    # Windows semantics: no EKU extension means "any purpose"; an EKU list must allow code signing.
    if usages is not None and oids.EKU_CODE_SIGNING not in usages and ANY_EKU not in usages:
        raise SigningError(Code.NU3012, f"the signing certificate {subject} is not valid for code signing (EKU {', '.join(usages)})", path=where)
    for other in identity.chain:
        if not other.not_valid_before_utc <= moment <= other.not_valid_after_utc:
            raise SigningError(Code.NU3018, f"the chain certificate {_describe(other)} is outside its validity period", path=where)


# ---------------------------------------------------------------------------------------------
# DER building blocks
# ---------------------------------------------------------------------------------------------


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def der_set_of(encodings: Iterable[bytes]) -> bytes:
    """DER SET OF: elements sorted as octet strings (X.690 11.6)."""
    body = b"".join(sorted(encodings))
    return b"\x31" + _der_length(len(body)) + body


class _AlgorithmIdentifier(core.Sequence):
    # asn1crypto's DigestAlgorithm adds NULL parameters; NuGet writes none inside ESSCertIDv2.
    _fields = [("algorithm", core.ObjectIdentifier), ("parameters", core.Any, {"optional": True})]


class _ESSCertIDv2(core.Sequence):
    # hashAlgorithm has no DEFAULT here so it is always written, even for SHA-256 (as NuGet).
    _fields = [
        ("hash_algorithm", _AlgorithmIdentifier),
        ("cert_hash", core.OctetString),
        ("issuer_serial", tsp.IssuerSerial),
    ]


class _ESSCertIDv2s(core.SequenceOf):
    _child_spec = _ESSCertIDv2


class _SigningCertificateV2(core.Sequence):
    _fields = [("certs", _ESSCertIDv2s)]


class TimeStampResp(core.Sequence):
    """RFC 3161 2.4.2; asn1crypto's version wrongly makes the token mandatory (rejections have none)."""

    _fields = [
        ("status", tsp.PKIStatusInfo),
        ("time_stamp_token", cms.ContentInfo, {"optional": True}),
    ]


def _asn1_certificate(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def signing_certificate_v2(cert: x509.Certificate, hash_algorithm: str) -> tsp.SigningCertificateV2:
    """ESSCertIDv2 {hashAlgorithm (explicit, no NULL), H(cert), issuerSerial {directoryName, serial}}."""
    der = cert.public_bytes(serialization.Encoding.DER)
    value = _SigningCertificateV2(
        {
            "certs": [
                {
                    "hash_algorithm": {"algorithm": oids.HASH_OIDS[hash_algorithm]},
                    "cert_hash": hashlib.new(hash_algorithm, der).digest(),
                    "issuer_serial": {
                        "issuer": [asn1_x509.GeneralName({"directory_name": _asn1_certificate(cert).issuer})],
                        "serial_number": cert.serial_number,
                    },
                }
            ]
        }
    )
    return tsp.SigningCertificateV2.load(value.dump())


def signing_certificate_v1(cert: x509.Certificate) -> tsp.SigningCertificate:
    """ESSCertID {SHA-1(cert), issuerSerial} (RFC 2634); what many TSAs still write."""
    der = cert.public_bytes(serialization.Encoding.DER)
    return tsp.SigningCertificate(
        {
            "certs": [
                {
                    "cert_hash": hashlib.sha1(der).digest(),
                    "issuer_serial": {
                        "issuer": [asn1_x509.GeneralName({"directory_name": _asn1_certificate(cert).issuer})],
                        "serial_number": cert.serial_number,
                    },
                }
            ]
        }
    )


def attribute(name: str, value: object) -> bytes:
    """DER of one single-valued CMS attribute (name as asn1crypto or trustpolicy._internal.asn1 registers it)."""
    return cms.CMSAttribute({"type": name, "values": [value]}).dump()


def signing_time_value(moment: datetime) -> cms.Time:
    # RFC 5652 11.3: UTCTime for 1950-2049, GeneralizedTime otherwise.
    kind = "utc_time" if 1950 <= moment.year <= 2049 else "generalized_time"
    return cms.Time({kind: moment.astimezone(UTC).replace(microsecond=0)})


def _sid(cert: x509.Certificate, prefer_ski: bool = True) -> tuple[str, cms.SignerIdentifier]:
    """NuGet: subject key identifier when the certificate has one, else issuer and serial."""
    try:
        ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
        if not prefer_ski:
            raise x509.ExtensionNotFound("not wanted", x509.SubjectKeyIdentifier.oid)
        return "v3", cms.SignerIdentifier({"subject_key_identifier": ski})
    except x509.ExtensionNotFound:
        issuer = _asn1_certificate(cert).issuer
        return "v1", cms.SignerIdentifier(
            {"issuer_and_serial_number": {"issuer": issuer, "serial_number": cert.serial_number}}
        )


def make_signer_info(
    cert: x509.Certificate,
    key: PrivateKey,
    hash_algorithm: str,
    signed_attributes: Sequence[bytes],
    unsigned_attributes: Sequence[bytes] = (),
    *,
    prefer_ski: bool = True,
) -> cms.SignerInfo:
    """A SignerInfo whose signature covers exactly the DER SET OF `signed_attributes` it carries.

    prefer_ski=False forces issuerAndSerialNumber (PKCS#7 readers such as openssl ts need it)."""
    body = b"".join(sorted(signed_attributes))
    signed_set = b"\x31" + _der_length(len(body)) + body  # what the signature covers (RFC 5652 5.4)
    signature, algorithm = _sign(key, hash_algorithm, signed_set)
    version, sid = _sid(cert, prefer_ski)
    fields: dict[str, object] = {
        "version": version,
        "sid": sid,
        "digest_algorithm": {"algorithm": hash_algorithm},
        "signed_attrs": cms.CMSAttributes.load(signed_set),
        "signature_algorithm": algorithm,
        "signature": signature,
    }
    if unsigned_attributes:
        fields["unsigned_attrs"] = cms.CMSAttributes.load(der_set_of(unsigned_attributes))
    info = cms.SignerInfo(fields)
    # Guard the one invariant everything rests on: the bytes written are the bytes signed.
    if info["signed_attrs"].contents != body:
        raise AssertionError("signed attributes were re-encoded")
    return info


def _sign(key: PrivateKey, hash_algorithm: str, data: bytes) -> tuple[bytes, dict[str, object]]:
    algorithm = _HASHES[hash_algorithm]()
    if isinstance(key, rsa.RSAPrivateKey):
        # rsaEncryption with NULL, as .NET writes it (verifiers accept it and shaNWithRSA).
        return key.sign(data, padding.PKCS1v15(), algorithm), {"algorithm": "rsassa_pkcs1v15", "parameters": core.Null()}
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(algorithm)), {"algorithm": _ECDSA_NAMES[hash_algorithm]}
    raise SigningError(Code.NU3014, f"unsupported private key type {type(key).__name__}")


def signature_content(hash_algorithm: str, digest: bytes) -> bytes:
    """The properties document NuGet writes (docs/format.md 3.1), byte for byte."""
    oid = oids.HASH_OIDS[hash_algorithm]
    return f"Version:1\n\n{oid}-Hash:{base64.b64encode(digest).decode('ascii')}\n\n".encode("ascii")


def _repository_attributes(repository: RepositoryOptions) -> list[bytes]:
    attrs = [attribute("nuget_v3_service_index_url", repository.service_index)]
    if repository.owners:  # omitted, never empty (docs/format.md 5.2)
        attrs.append(attribute("nuget_package_owners", list(repository.owners)))
    return attrs


def _timestamp_attributes(signature_value: bytes, timestamper: str | None, hash_algorithm: str, timeout: float) -> list[bytes]:
    if not timestamper:
        return []
    # The TSA certificate is checked at the real moment of the request, whatever signing_time says.
    token = request_timestamp(timestamper, signature_value, hash_algorithm, timeout)
    return [attribute("signature_time_stamp_token", cms.ContentInfo.load(token))]


def build_signature(
    content: bytes,
    *,
    identity: SigningIdentity,
    hash_algorithm: str = "sha256",
    repository: RepositoryOptions | None = None,
    signing_time: datetime | None = None,
    timestamper: str | None = None,
    timestamp_hash_algorithm: str = "sha256",
    timestamp_timeout: float = DEFAULT_TIMESTAMP_TIMEOUT,
) -> bytes:
    """The DER `.signature.p7s` of a primary signature over `content` (docs/format.md 5)."""
    hash_algorithm = hash_algorithm_name(hash_algorithm)
    moment = _moment(signing_time)
    cert = identity.certificate
    commitment = oids.COMMITMENT_REPOSITORY if repository else oids.COMMITMENT_AUTHOR
    signed = [
        attribute("content_type", "data"),
        attribute("signing_time", signing_time_value(moment)),
        attribute("commitment_type_indication", {"commitment_type_id": commitment}),
        attribute("message_digest", hashlib.new(hash_algorithm, content).digest()),
        attribute("signing_certificate_v2", signing_certificate_v2(cert, hash_algorithm)),
    ]
    if repository:
        signed += _repository_attributes(repository)
    info = make_signer_info(cert, identity.private_key, hash_algorithm, signed)
    unsigned = _timestamp_attributes(
        info["signature"].native, timestamper, hash_algorithm_name(timestamp_hash_algorithm), timestamp_timeout
    )
    if unsigned:
        info = _with_unsigned(info, unsigned)
    version = info["version"].native
    signed_data = cms.SignedData(
        {
            "version": version,
            "digest_algorithms": [{"algorithm": hash_algorithm}],
            "encap_content_info": {"content_type": "data", "content": content},
            "certificates": [_asn1_certificate(c) for c in _unique(identity.certificates)],
            "signer_infos": [info],
        }
    )
    return cms.ContentInfo({"content_type": "signed_data", "content": signed_data}).dump()


def _with_unsigned(info: cms.SignerInfo, extra: Sequence[bytes]) -> cms.SignerInfo:
    """A copy of `info` with unsigned attributes added; every other field keeps its original bytes."""
    existing = [a.dump() for a in _items(info["unsigned_attrs"])]
    fields = _present_fields(info, skip="unsigned_attrs")
    fields["unsigned_attrs"] = cms.CMSAttributes.load(der_set_of([*existing, *extra]))
    return cms.SignerInfo(fields)


def _items(value: object) -> list:  # type: ignore[type-arg]
    """The elements of an optional SET/SEQUENCE OF field; [] when the field is absent."""
    return [] if isinstance(value, core.Void) else list(value)  # type: ignore[call-overload]


def _present_fields(value: core.Sequence, skip: str) -> dict[str, object]:
    """The fields of a parsed Sequence that are present, as their parsed objects (original bytes)."""
    out = {}
    for name, *_ in value._fields:
        child = value[name]
        if name != skip and not isinstance(child, core.Void):
            out[name] = child
    return out


def _unique(certs: Iterable[x509.Certificate]) -> list[x509.Certificate]:
    seen, out = set(), []
    for c in certs:
        der = c.public_bytes(serialization.Encoding.DER)
        if der not in seen:
            seen.add(der)
            out.append(c)
    return out


def _moment(value: datetime | None) -> datetime:
    moment = value if value is not None else clock.now()
    if moment.tzinfo is None:
        raise SigningError(Code.NU3001, "the signing time must carry a time zone")
    return moment.astimezone(UTC).replace(microsecond=0)


# ---------------------------------------------------------------------------------------------
# Repository countersignature (docs/format.md 6)
# ---------------------------------------------------------------------------------------------


def _commitments(info: cms.SignerInfo) -> set[str]:
    found: set[str] = set()
    for attr in _items(info["signed_attrs"]):
        if attr["type"].dotted == oids.ATTR_COMMITMENT_TYPE:
            found.update(v["commitment_type_id"].dotted for v in attr["values"])
    return found


def countersign_signature(
    signature: bytes,
    *,
    identity: SigningIdentity,
    repository: RepositoryOptions,
    hash_algorithm: str = "sha256",
    signing_time: datetime | None = None,
    timestamper: str | None = None,
    timestamp_hash_algorithm: str = "sha256",
    timestamp_timeout: float = DEFAULT_TIMESTAMP_TIMEOUT,
    path: str | None = None,
) -> bytes:
    """Add a repository countersignature to an author primary signature (DER in, DER out).

    The primary's content, signed attributes and signature value are kept byte for byte; the
    repository chain joins the outer certificates.
    """
    hash_algorithm = hash_algorithm_name(hash_algorithm)
    try:
        info_ = cms.ContentInfo.load(signature)
        signed_data = info_["content"]
        if info_["content_type"].native != "signed_data" or len(signed_data["signer_infos"]) != 1:
            raise ValueError("not a SignedData with exactly one signer")
        primary = signed_data["signer_infos"][0]
        kinds = _commitments(primary)
        existing = [
            cs for a in _items(primary["unsigned_attrs"])
            if a["type"].dotted == oids.ATTR_COUNTERSIGNATURE for cs in a["values"]
        ]
        repo_counters = [cs for cs in existing if oids.COMMITMENT_REPOSITORY in _commitments(cs)]
        primary_value = primary["signature"].native
    except (ValueError, TypeError, KeyError, IndexError) as exc:
        raise SigningError(Code.NU3003, f"the existing signature cannot be read: {exc}", path=path) from exc
    if oids.COMMITMENT_REPOSITORY in kinds:
        raise SigningError(Code.NU3033, "a repository primary signature cannot be countersigned", path=path)
    if oids.COMMITMENT_AUTHOR not in kinds:
        raise SigningError(Code.NU3001, "only an author primary signature can be repository-countersigned", path=path)
    if repo_counters:
        raise SigningError(Code.NU3032, "the signature already has a repository countersignature", path=path)

    moment = _moment(signing_time)
    cert = identity.certificate
    signed = [
        attribute("signing_time", signing_time_value(moment)),
        attribute("commitment_type_indication", {"commitment_type_id": oids.COMMITMENT_REPOSITORY}),
        attribute("message_digest", hashlib.new(hash_algorithm, primary_value).digest()),
        attribute("signing_certificate_v2", signing_certificate_v2(cert, hash_algorithm)),
        *_repository_attributes(repository),
    ]
    counter = make_signer_info(cert, identity.private_key, hash_algorithm, signed)
    unsigned = _timestamp_attributes(
        counter["signature"].native, timestamper, hash_algorithm_name(timestamp_hash_algorithm), timestamp_timeout
    )
    if unsigned:
        counter = _with_unsigned(counter, unsigned)
    new_primary = _with_unsigned(primary, [attribute("counter_signature", counter)])

    old_certs = [c.dump() for c in _items(signed_data["certificates"])]
    new_certs = [c.public_bytes(serialization.Encoding.DER) for c in identity.certificates]
    certificates = cms.CertificateSet.load(der_set_of(dict.fromkeys([*old_certs, *new_certs])))
    fields = _present_fields(signed_data, skip="certificates")
    fields["certificates"] = certificates
    fields["signer_infos"] = cms.SignerInfos([new_primary])
    out = cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(fields)}).dump()
    _check_primary_untouched(signed_data, out)
    return out


def _check_primary_untouched(before: cms.SignedData, after_der: bytes) -> None:
    after = cms.ContentInfo.load(after_der)["content"]
    old, new = before["signer_infos"][0], after["signer_infos"][0]
    same = (
        old["signed_attrs"].contents == new["signed_attrs"].contents
        and old["signature"].contents == new["signature"].contents
        and before["encap_content_info"].dump() == after["encap_content_info"].dump()
    )
    if not same:
        raise AssertionError("countersigning changed bytes the primary signature covers")


# ---------------------------------------------------------------------------------------------
# RFC 3161 client (docs/format.md 7)
# ---------------------------------------------------------------------------------------------


def make_nonce() -> int:
    """32 random bytes read as a positive integer with non-zero top and bottom bytes (as NuGet)."""
    raw = bytearray(secrets.token_bytes(32))
    raw[0] = (raw[0] & 0x7F) or 0x01
    raw[-1] = raw[-1] or 0x01
    return int.from_bytes(raw, "big")


def request_timestamp(
    url: str,
    signature_value: bytes,
    hash_algorithm: str = "sha256",
    timeout: float = DEFAULT_TIMESTAMP_TIMEOUT,
    *,
    now: datetime | None = None,
) -> bytes:
    """Timestamp `signature_value` at the RFC 3161 server `url`; returns the TimeStampToken DER.

    Refuses (SigningError) on a failed request or response (NU3000), a nonce (NU3026) or imprint
    (NU3019) other than requested, the first problem the verifier's own token checks find
    (trustpolicy._internal.timestamp), and a TSA certificate without the timeStamping EKU (NU3028). `now`
    (default: the clock) is the moment the TSA certificate must be valid at.
    """
    hash_algorithm = hash_algorithm_name(hash_algorithm)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SigningError(Code.NU3001, f"the timestamper must be an http or https URL, got {url!r}")
    nonce = make_nonce()
    request = tsp.TimeStampReq(
        {
            "version": "v1",
            "message_imprint": {
                "hash_algorithm": {"algorithm": hash_algorithm},
                "hashed_message": hashlib.new(hash_algorithm, signature_value).digest(),
            },
            "nonce": nonce,
            "cert_req": True,
        }
    )
    body = _post(url, request.dump(), timeout)
    return check_timestamp_response(body, signature_value=signature_value, hash_algorithm=hash_algorithm,
                                    nonce=nonce, url=url, now=_moment(now))


def _post(url: str, body: bytes, timeout: float) -> bytes:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/timestamp-query", "Accept": "application/timestamp-reply"},
    )

    def exchange() -> bytes:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            chunks, size = [], 0
            # read1: whatever has arrived (read() would wait for 64 KiB from a trickling server)
            while chunk := response.read1(65536):
                size += len(chunk)
                if size > MAX_TIMESTAMP_RESPONSE:
                    raise SigningError(Code.NU3000, f"the timestamp response from {url} exceeds {MAX_TIMESTAMP_RESPONSE} bytes")
                chunks.append(chunk)
            return b"".join(chunks)

    try:
        return with_deadline(exchange, timeout, name="trustpolicy-timestamp")
    except urllib.error.HTTPError as exc:
        reason = " ".join(str(exc.reason).split())  # urllib's redirect-loop reason spans lines; errors are one
        raise SigningError(Code.NU3000, f"the timestamp server {url} answered HTTP {exc.code} {reason}") from exc
    except TimeoutError as exc:  # socket.timeout is TimeoutError since 3.10
        raise SigningError(Code.NU3000, f"the timestamp server {url} did not answer within {timeout:g} s") from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise SigningError(Code.NU3000, f"the timestamp server {url} did not answer within {timeout:g} s") from exc
        raise SigningError(Code.NU3000, f"cannot reach the timestamp server {url}: {exc.reason}") from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise SigningError(Code.NU3000, f"the timestamp request to {url} failed: {exc or type(exc).__name__}") from exc


def check_timestamp_response(
    body: bytes, *, signature_value: bytes, hash_algorithm: str, nonce: int | None, url: str, now: datetime
) -> bytes:
    """Validate the TimeStampResp to our request for `signature_value`; return the token DER.

    docs/format.md 7, in order: the response (NU3000), our request's nonce (NU3026) and imprint (NU3019),
    the token checks the verifier runs too (the first problem refuses), then the timeStamping EKU
    (NU3028; the verifier judges it with the TSA chain, which signing does not build).
    """
    try:
        response = TimeStampResp.load(body, strict=True)
        status = response["status"]["status"].native
        token = response["time_stamp_token"]
        token_der = None if isinstance(token, core.Void) else token.dump()
    except (ValueError, TypeError, KeyError) as exc:
        raise SigningError(Code.NU3000, f"the timestamp server {url} sent a response that is not RFC 3161: {exc}") from exc
    if status not in ("granted", "granted_with_mods"):
        text = response["status"]["status_string"].native
        raise SigningError(Code.NU3000, f"the timestamp server {url} refused the request: {status}"
                                     + (f" ({'; '.join(text)})" if text else ""))
    if token_der is None:
        raise SigningError(Code.NU3000, f"the timestamp server {url} granted the request but sent no token")

    def fail(code: Code, message: str) -> SigningError:
        return SigningError(code, f"timestamp from {url}: {message}")

    check = check_token(token_der, signature_value, now)
    ts = check.timestamp
    if ts.tst_info is not None:  # readable enough to compare with our request
        try:
            response_nonce = ts.tst_info["nonce"].native  # parsed lazily: the first read may fail
        except (ValueError, TypeError) as exc:
            raise fail(Code.NU3021, f"the TSTInfo nonce cannot be decoded: {exc}") from exc
        if nonce is not None and response_nonce != nonce:
            raise fail(Code.NU3026, "the response nonce does not match the request nonce")
        imprint = hashlib.new(hash_algorithm, signature_value).digest()
        if ts.hash_algorithm != hash_algorithm or ts.message_imprint != imprint:
            raise fail(Code.NU3019, "the message imprint does not match the request")
    if check.problems:
        first = check.problems[0]
        raise fail(first.code, first.message)
    assert ts.tsa_certificate is not None  # check_token reports a token without one
    usages = ts.tsa_certificate.extended_key_usage_value
    if usages is None or oids.EKU_TIME_STAMPING not in {usage.dotted for usage in usages}:
        subject = distinguished_name(ts.tsa_certificate.subject)
        raise fail(Code.NU3028, f"the TSA certificate {subject} is not valid for timestamping (no timeStamping EKU)")
    return token_der


# ---------------------------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------------------------


def _destination(source: Path, output: str | Path | None) -> Path:
    if output is None:
        return source
    target = Path(output)
    return target / source.name if target.is_dir() else target


def _check_unsigned_archive(archive: PackageArchive) -> None:
    if archive.is_zip64():
        raise SigningError(Code.NU3006, "Signed Zip64 packages are not supported")
    if len(archive.entries) >= MAX_ENTRIES_TO_SIGN:
        raise SigningError(Code.NU3039, f"the package has {len(archive.entries)} entries; "
                                     "signing it would require the Zip64 format")


def sign_package(
    package: str | Path,
    *,
    identity: SigningIdentity,
    output: str | Path | None = None,
    hash_algorithm: str = "sha256",
    timestamper: str | None = None,
    timestamp_hash_algorithm: str = "sha256",
    overwrite: bool = False,
    repository: RepositoryOptions | None = None,
    signing_time: datetime | None = None,
    timestamp_timeout: float = DEFAULT_TIMESTAMP_TIMEOUT,
    on_warning: _WARN | None = None,
) -> Path:
    """Sign `package`; write to `output` (a file, or a directory to keep the name; default: in place).

    - unsigned package: author signature, or repository primary signature when `repository` is set;
    - signed package with overwrite=True: the old signature is removed first;
    - author-signed package with `repository` and overwrite=False: a repository countersignature is
      added (NU3032 if one exists, NU3033 on a repository primary); without `repository`: NU3001.

    `signing_time` (default: the clock) is written in signing-time and is the moment the signing
    certificate must be valid at. Without a timestamper, NU3002 goes to `on_warning` (default:
    Python's warnings module). Returns the path written. Refusals: SigningError naming the package.
    """
    source = Path(package)
    where = str(source)
    hash_algorithm = hash_algorithm_name(hash_algorithm)
    timestamp_hash_algorithm = hash_algorithm_name(timestamp_hash_algorithm)
    dest = _destination(source, output)
    check_signing_certificate(identity, _moment(signing_time))
    archive = PackageArchive.open(source)
    common: dict[str, Any] = dict(
        identity=identity, hash_algorithm=hash_algorithm, signing_time=signing_time, timestamper=timestamper,
        timestamp_hash_algorithm=timestamp_hash_algorithm, timestamp_timeout=timestamp_timeout,
    )
    try:
        with tempfile.TemporaryDirectory(prefix="trustpolicy-sign-") as tmp:
            unsigned = Path(tmp) / "unsigned.nupkg"
            if archive.is_signed and not overwrite:
                if repository is None:
                    raise SigningError(Code.NU3001, "the package already contains a signature "
                                                 "(overwrite=True / --overwrite replaces it)")
                old = archive.read_signature()
                strip_signature(source, unsigned)
                _check_unsigned_archive(PackageArchive.open(unsigned))
                der = countersign_signature(old, repository=repository, **common)
            else:
                if archive.is_signed:
                    strip_signature(source, unsigned)
                else:  # a private copy: the bytes hashed are the bytes the signature is inserted into
                    _copy(source, unsigned)
                _check_unsigned_archive(PackageArchive.open(unsigned))
                content = signature_content(hash_algorithm, hash_file(unsigned, hash_algorithm))
                der = build_signature(content, repository=repository, **common)
            insert_signature(unsigned, der, dest)
    except TrustPolicyError as error:
        if error.path is None or Path(error.path).parent == Path(tmp):  # name the package, not our temp copy
            error.path = where
        raise
    if not timestamper:
        _warn(on_warning, Issue(Code.NU3002, Level.WARNING, "the signature is not timestamped (no timestamper "
                                "given); it becomes invalid when the certificate expires", where=Location(str(dest))))
    return dest


def _copy(source: Path, target: Path) -> None:
    try:
        shutil.copyfile(source, target)
    except OSError as exc:
        raise SigningError(Code.NU3001, f"cannot read the package: {exc.strerror or exc}", path=str(source)) from exc


def _warn(on_warning: _WARN | None, warning: Issue) -> None:
    if on_warning is not None:
        on_warning(warning)
    else:
        import warnings

        warnings.warn(f"{warning.code}: {warning.where}: {warning.message}", UserWarning, stacklevel=3)
