"""The one CMS SignerInfo check (RFC 5652 5.4, docs/format.md 5.2, 6 and 7), and the certificate rules
NuGet applies to every signer (docs/format.md 8: NU3013/NU3022, NU3014/NU3023).

Used for primary signatures, repository countersignatures and timestamp tokens, by the verifier
and by the signer (on the tokens it receives): message-digest over the content, RSA PKCS#1 v1.5
over the ORIGINAL signed-attribute DER re-tagged as SET, SHA-256/384/512 digests only.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from asn1crypto import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from trustpolicy._internal import asn1 as oids
from trustpolicy._internal.signature import remember

__all__ = ["certificate_algorithm_ok", "rsa_key_ok", "validity_of", "verify_signer_info"]

_HASHES: dict[str, type[hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}  # SHA-1: never
# rsaEncryption (what .NET writes) or sha256/384/512WithRSAEncryption; no PSS, no ECDSA.
_SIGNATURE_ALGORITHMS = oids.RSA_SIGNATURE_OIDS | {oids.RSA_ENCRYPTION_OID}

# Keys loaded once per exact SubjectPublicKeyInfo encoding: every package of a graph repeats the
# same few signer and TSA keys (bounded like trustpolicy._internal.signature's caches).
_PUBLIC_KEYS: dict[bytes, Any] = {}


def certificate_algorithm_ok(cert: x509.Certificate) -> bool:
    """The certificate is signed with SHA-256/384/512 and RSA (NU3013 for a signer, NU3022 for a TSA)."""
    return cert["signature_algorithm"]["algorithm"].dotted in oids.RSA_SIGNATURE_OIDS


def rsa_key_ok(cert: x509.Certificate) -> bool:
    """The certificate's key is RSA of at least 2048 bits (NU3014 for a signer, NU3023 for a TSA)."""
    key = cert.public_key
    return key.algorithm == "rsa" and key.bit_size >= 2048


def validity_of(cert: x509.Certificate) -> tuple[datetime, datetime]:
    """(notBefore, notAfter) as aware datetimes."""
    validity = cert["tbs_certificate"]["validity"]
    return validity["not_before"].native, validity["not_after"].native


def _public_key(cert: x509.Certificate) -> Any:
    """The certificate's key for `cryptography` (only a certificate with the very same key bytes
    ever gets a remembered key). Load errors are not remembered."""
    der = cert.public_key.dump()
    key = _PUBLIC_KEYS.get(der)
    if key is None:
        key = remember(_PUBLIC_KEYS, der, serialization.load_der_public_key(der))
    return key


def verify_signer_info(
    cert: x509.Certificate,
    signer_info: Any,
    signed_attrs_der: bytes,
    content: bytes,
    digest_algorithm: str,
    message_digest: bytes | None = None,
) -> str | None:
    """Check one CMS SignerInfo signed by `cert` over `content`. Returns None when it verifies,
    else why not.

    `signed_attrs_der` is the ORIGINAL signed-attribute DER re-tagged SET (b"" when there are none:
    then the content itself is signed). `digest_algorithm` is the SignerInfo's, as hashlib spells it.
    `message_digest`, when given, is the message-digest value the parse already read from these
    very attributes (walking them again would find the same value)."""
    if digest_algorithm not in _HASHES:
        return f"unsupported digest algorithm {digest_algorithm}"
    signature_oid = signer_info["signature_algorithm"]["algorithm"].dotted
    if signature_oid not in _SIGNATURE_ALGORITHMS:
        return f"unsupported signature algorithm {signature_oid} (only RSA PKCS#1 v1.5 is allowed)"
    if signed_attrs_der:
        digest = message_digest if message_digest is not None else _message_digest(signer_info)
        if digest is None:
            return "the message-digest attribute is missing or malformed"
        if digest != hashlib.new(digest_algorithm, content).digest():
            return "the message-digest attribute does not match the signed content"
        data = signed_attrs_der
    else:
        data = content
    try:
        key = _public_key(cert)
    except (ValueError, TypeError) as error:
        return f"the signer's public key cannot be read ({error})"
    if not isinstance(key, rsa.RSAPublicKey):
        return "the signer's key is not RSA"
    try:
        key.verify(signer_info["signature"].native, data, padding.PKCS1v15(), _HASHES[digest_algorithm]())
    except InvalidSignature:
        return "the RSA signature does not verify"
    except (ValueError, TypeError) as error:
        return f"the RSA signature cannot be checked ({error})"
    return None


def _message_digest(signer_info: Any) -> bytes | None:
    """The single message-digest value of the signed attributes; None when missing or repeated."""
    values = [
        attr["values"] for attr in signer_info["signed_attrs"] if attr["type"].dotted == oids.ATTR_MESSAGE_DIGEST
    ]
    if len(values) != 1 or len(values[0]) != 1:
        return None
    value = values[0][0].native
    return value if isinstance(value, bytes) else None
