"""A throw-away test PKI: CAs, code-signing and timestamping certificates, CRLs and OCSP responses.

Everything is real X.509 made with `cryptography`; nothing is mocked. Typical use:

    pki = TestPKI(tmp_path)
    pki.leaf                       # code-signing leaf <- pki.intermediate <- pki.root
    pki.tsa                        # timestamping leaf <- pki.tsa_root
    bad = pki.issue_code_signing("Expired", not_after=pki.now - timedelta(days=1))
    crl = pki.make_crl(pki.intermediate, revoked=[bad.serial])

Keys come from a per-process pool (RSA key generation is the slow part). Inside one TestPKI every
certificate gets its own key; two TestPKI objects reuse the same pool keys in the same order but
have different subject names (the `tag`), so their chains never link. Pass `fresh_keys=True` when a
test needs keys no other PKI in the process has.
"""

from __future__ import annotations

import itertools
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeAlias

from asn1crypto import core, x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trustpolicy._internal import clock

PrivateKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

CODE_SIGNING = ExtendedKeyUsageOID.CODE_SIGNING
TIME_STAMPING = ExtendedKeyUsageOID.TIME_STAMPING
OCSP_SIGNING = ExtendedKeyUsageOID.OCSP_SIGNING
LIFETIME_SIGNING = x509.ObjectIdentifier("1.3.6.1.4.1.311.10.3.13")
CLIENT_AUTH = ExtendedKeyUsageOID.CLIENT_AUTH

HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def _signing_hash(name: str) -> hashes.SHA256 | hashes.SHA384 | hashes.SHA512:
    """A hash cryptography signs certificates and CRLs with (SHA-1 test certificates are made by hand)."""
    algorithm = HASHES[name]()
    if not isinstance(algorithm, (hashes.SHA256, hashes.SHA384, hashes.SHA512)):
        raise ValueError(f"cannot sign with {name}")
    return algorithm


# asn1crypto names of "<hash> with RSA" for certificates cryptography refuses to sign (SHA-1).
_RSA_SIGNATURE_NAMES = {"sha1": "sha1_rsa", "sha256": "sha256_rsa", "sha384": "sha384_rsa", "sha512": "sha512_rsa"}

_DEFAULT = object()  # "use the default EKU for this kind of certificate"

# --- key pool ----------------------------------------------------------------------------------

_POOL: dict[tuple[str, int], list[PrivateKey]] = {}
_POOL_LOCK = threading.Lock()
_TAGS = itertools.count(1)


def generate_key(key_type: str = "rsa", key_size: int = 2048) -> PrivateKey:
    """A new key: RSA of `key_size` bits, or EC on P-256/P-384/P-521 when key_type is "ec"."""
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    if key_type == "ec":
        curves = {256: ec.SECP256R1(), 384: ec.SECP384R1(), 521: ec.SECP521R1()}
        return ec.generate_private_key(curves[key_size])
    raise ValueError(f"unknown key type {key_type!r}")


def pooled_key(index: int, key_type: str = "rsa", key_size: int = 2048) -> PrivateKey:
    """The index-th key of the process-wide pool for (key_type, key_size), generated on first use."""
    with _POOL_LOCK:
        keys = _POOL.setdefault((key_type, key_size), [])
        while len(keys) <= index:
            keys.append(generate_key(key_type, key_size))
        return keys[index]


# --- issued certificates -----------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Issued:
    """A certificate with its private key and the certificate that issued it."""

    label: str
    certificate: x509.Certificate
    private_key: PrivateKey
    issuer: Issued | None  # None when self-signed
    directory: Path | None = field(default=None, repr=False)

    @property
    def serial(self) -> int:
        return self.certificate.serial_number

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @property
    def asn1(self) -> asn1_x509.Certificate:
        """The same certificate as an asn1crypto object (what trustpolicy._internal.signature returns)."""
        return asn1_x509.Certificate.load(self.der)

    @property
    def chain(self) -> tuple[x509.Certificate, ...]:
        """This certificate, then its issuers up to and including the root."""
        out: list[x509.Certificate] = []
        node: Issued | None = self
        while node is not None:
            out.append(node.certificate)
            node = node.issuer
        return tuple(out)

    @property
    def root(self) -> Issued:
        node = self
        while node.issuer is not None:
            node = node.issuer
        return node

    def _dir(self, directory: str | Path | None) -> Path:
        target = Path(directory) if directory is not None else self.directory
        if target is None:
            raise ValueError("no directory: pass one or create the TestPKI with a directory")
        target.mkdir(parents=True, exist_ok=True)
        return target

    def write_pem(
        self,
        directory: str | Path | None = None,
        *,
        chain: bool = False,
        key_password: str | None = None,
    ) -> tuple[Path, Path]:
        """Write `<label>.pem` (the certificate, then its issuers when chain=True) and `<label>.key.pem`."""
        target = self._dir(directory)
        stem = _file_stem(self.label)
        cert_path = target / (f"{stem}.chain.pem" if chain else f"{stem}.pem")
        certs = self.chain if chain else (self.certificate,)
        cert_path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(key_password.encode())
            if key_password
            else serialization.NoEncryption()
        )
        key_path = target / f"{stem}.key.pem"
        key_path.write_bytes(
            self.private_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
            )
        )
        return cert_path, key_path

    def write_pfx(
        self,
        path: str | Path | None = None,
        password: str | None = "password",
        *,
        chain: bool = True,
    ) -> Path:
        """Write a PKCS#12 file with the key, the certificate and (chain=True) its issuers."""
        target = Path(path) if path is not None else self._dir(None) / f"{_file_stem(self.label)}.pfx"
        encryption: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password.encode())
            if password
            else serialization.NoEncryption()
        )
        extra = list(self.chain[1:]) if chain else None
        target.write_bytes(
            pkcs12.serialize_key_and_certificates(
                self.label.encode(), self.private_key, self.certificate, extra, encryption
            )
        )
        return target


def _file_stem(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-").lower() or "cert"


def write_certificates(path: str | Path, certificates: Iterable[x509.Certificate]) -> Path:
    """Write certificates as one PEM bundle (e.g. a CAfile for openssl)."""
    target = Path(path)
    target.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certificates))
    return target


# --- the PKI -----------------------------------------------------------------------------------


class TestPKI:
    """Builds certificates on demand. The standard ones are created lazily on first access:

    root -> intermediate -> leaf (code signing); tsa_root -> tsa (timestamping).
    """

    __test__ = False  # not a pytest test class, despite the name

    def __init__(
        self,
        directory: str | Path | None = None,
        *,
        now: datetime | None = None,
        tag: str | None = None,
        fresh_keys: bool = False,
    ) -> None:
        moment = now if now is not None else clock.now()
        if moment.tzinfo is None:
            raise ValueError("TestPKI needs an aware datetime")
        self.now = moment.astimezone(UTC).replace(microsecond=0)
        self.directory = Path(directory) if directory is not None else None
        self.tag = tag or f"pki-{next(_TAGS)}"
        self.fresh_keys = fresh_keys
        self._key_counters: dict[tuple[str, int], int] = {}
        self._serials = itertools.count(0x1001)
        self._lock = threading.Lock()
        self._standard: dict[str, Issued] = {}

    # -- keys and names --

    def key(self, key_type: str = "rsa", key_size: int = 2048) -> PrivateKey:
        """A key not yet used by this PKI."""
        if self.fresh_keys:
            return generate_key(key_type, key_size)
        with self._lock:
            index = self._key_counters.get((key_type, key_size), 0)
            self._key_counters[(key_type, key_size)] = index + 1
        return pooled_key(index, key_type, key_size)

    def name(self, common_name: str) -> x509.Name:
        return x509.Name(
            [
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, self.tag),
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "trustpolicy tests"),
            ]
        )

    # -- the standard chain --

    def _lazy(self, key: str, make) -> Issued:  # type: ignore[no-untyped-def]
        if key not in self._standard:
            self._standard[key] = make()
        return self._standard[key]

    @property
    def root(self) -> Issued:
        return self._lazy("root", lambda: self.issue_ca("Test Root CA"))

    @property
    def intermediate(self) -> Issued:
        return self._lazy(
            "intermediate", lambda: self.issue_ca("Test Intermediate CA", issuer=self.root)
        )

    @property
    def leaf(self) -> Issued:
        return self._lazy("leaf", lambda: self.issue_code_signing("Test Code Signing"))

    @property
    def tsa_root(self) -> Issued:
        return self._lazy("tsa_root", lambda: self.issue_ca("Test TSA Root CA"))

    @property
    def tsa(self) -> Issued:
        return self._lazy("tsa", lambda: self.issue_tsa("Test Timestamping"))

    # -- builders --

    def issue(
        self,
        label: str,
        *,
        issuer: Issued | None = None,
        ca: bool = False,
        path_length: int | None = None,
        eku: Sequence[x509.ObjectIdentifier] | None = None,
        eku_critical: bool = False,
        key_usage: Sequence[str] | None = None,
        not_before: datetime | None = None,
        not_after: datetime | None = None,
        key: PrivateKey | None = None,
        key_type: str = "rsa",
        key_size: int = 2048,
        hash_algorithm: str = "sha256",
        ski: bool = True,
        aki: bool = True,
        crl_urls: Sequence[str] = (),
        ocsp_urls: Sequence[str] = (),
        ca_issuers_urls: Sequence[str] = (),
        serial: int | None = None,
        subject: x509.Name | None = None,
        extensions: Sequence[tuple[x509.ExtensionType, bool]] = (),
    ) -> Issued:
        """Issue one certificate. Every knob a test needs is a keyword:

        issuer=None makes it self-signed; eku=None leaves the EKU extension out (Windows reads that
        as "any purpose"); key_usage names KeyUsage flags ("digital_signature", "key_cert_sign"...;
        None = default for CA/leaf, () = no extension); hash_algorithm "sha1" makes a SHA-1 RSA
        certificate (NU3013); crl_urls / ocsp_urls / ca_issuers_urls become CDP and AIA.
        """
        if ca:
            default_nb, default_na = self.now - timedelta(days=365), self.now + timedelta(days=3650)
        else:
            default_nb, default_na = self.now - timedelta(days=30), self.now + timedelta(days=365)
        private_key = key if key is not None else self.key(key_type, key_size)
        subject_name = subject if subject is not None else self.name(label)
        issuer_name = issuer.certificate.subject if issuer else subject_name
        signing_key = issuer.private_key if issuer else private_key
        public_key = private_key.public_key()

        builder = (
            x509.CertificateBuilder()
            .subject_name(subject_name)
            .issuer_name(issuer_name)
            .public_key(public_key)
            .serial_number(serial if serial is not None else next(self._serials))
            .not_valid_before(not_before or default_nb)
            .not_valid_after(not_after or default_na)
            .add_extension(x509.BasicConstraints(ca=ca, path_length=path_length if ca else None), critical=True)
        )
        usage = key_usage if key_usage is not None else (
            ("key_cert_sign", "crl_sign", "digital_signature") if ca else ("digital_signature",)
        )
        if usage:
            flags = {name: name in usage for name in _KEY_USAGE_FLAGS}
            builder = builder.add_extension(x509.KeyUsage(**flags), critical=True)
        if eku:
            builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=eku_critical)
        if ski:
            builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        if aki and issuer is not None:
            builder = builder.add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.private_key.public_key()),
                critical=False,
            )
        if crl_urls:
            points = [
                x509.DistributionPoint([x509.UniformResourceIdentifier(u)], None, None, None) for u in crl_urls
            ]
            builder = builder.add_extension(x509.CRLDistributionPoints(points), critical=False)
        access = [
            x509.AccessDescription(x509.AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(u))
            for u in ocsp_urls
        ] + [
            x509.AccessDescription(x509.AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(u))
            for u in ca_issuers_urls
        ]
        if access:
            builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)

        certificate = _sign_certificate(builder, signing_key, hash_algorithm)
        return Issued(label, certificate, private_key, issuer, self.directory)

    def issue_ca(self, label: str, *, issuer: Issued | None = None, **knobs) -> Issued:  # type: ignore[no-untyped-def]
        """A CA certificate: self-signed root when issuer is None, else an intermediate."""
        return self.issue(label, issuer=issuer, ca=True, **knobs)

    def issue_code_signing(self, label: str, *, issuer: Issued | None = None, eku=_DEFAULT, **knobs) -> Issued:  # type: ignore[no-untyped-def]
        """A code-signing leaf, by default under `intermediate`. eku=None: no EKU extension;
        eku=[LIFETIME_SIGNING, CODE_SIGNING]: NU3015; eku=[CLIENT_AUTH]: wrong purpose."""
        return self.issue(
            label,
            issuer=issuer if issuer is not None else self.intermediate,
            eku=[CODE_SIGNING] if eku is _DEFAULT else eku,
            **knobs,
        )

    def issue_tsa(self, label: str, *, issuer: Issued | None = None, eku=_DEFAULT, **knobs) -> Issued:  # type: ignore[no-untyped-def]
        """A timestamping leaf (critical EKU timeStamping only, as RFC 3161 and openssl require),
        by default under `tsa_root`."""
        knobs.setdefault("eku_critical", True)
        knobs.setdefault("key_usage", ("digital_signature", "content_commitment"))
        return self.issue(
            label,
            issuer=issuer if issuer is not None else self.tsa_root,
            eku=[TIME_STAMPING] if eku is _DEFAULT else eku,
            **knobs,
        )

    def issue_ocsp_responder(self, label: str, *, issuer: Issued, **knobs) -> Issued:  # type: ignore[no-untyped-def]
        """A delegated OCSP responder certificate for `issuer` (EKU OCSPSigning)."""
        return self.issue(label, issuer=issuer, eku=[OCSP_SIGNING], **knobs)

    # -- revocation data --

    def make_crl(self, ca: Issued, revoked: Iterable[int | tuple[int, datetime]] = (), this_update: datetime | None = None, next_update: datetime | None = None, **kw) -> bytes:  # type: ignore[no-untyped-def]
        """make_crl() with this PKI's `now` as the default clock."""
        this_update = this_update or self.now - timedelta(hours=1)
        return make_crl(ca, revoked, this_update, next_update or this_update + timedelta(days=7), **kw)

    def make_ocsp_response(self, ca: Issued, cert: Issued | x509.Certificate, status: str = "good", **kw) -> bytes:  # type: ignore[no-untyped-def]
        """make_ocsp_response() with this PKI's `now` as the default clock."""
        kw.setdefault("this_update", self.now - timedelta(hours=1))
        return make_ocsp_response(ca, cert, status, **kw)


_KEY_USAGE_FLAGS = (
    "digital_signature",
    "content_commitment",
    "key_encipherment",
    "data_encipherment",
    "key_agreement",
    "key_cert_sign",
    "crl_sign",
    "encipher_only",
    "decipher_only",
)


def _sign_certificate(builder: x509.CertificateBuilder, key: PrivateKey, hash_algorithm: str) -> x509.Certificate:
    if hash_algorithm != "sha1":
        return builder.sign(key, _signing_hash(hash_algorithm))
    # cryptography refuses to sign with SHA-1: sign with SHA-256, then re-sign the TBS by hand.
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("SHA-1 test certificates need an RSA issuer key")
    draft = asn1_x509.Certificate.load(
        builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    )
    algorithm = {"algorithm": _RSA_SIGNATURE_NAMES["sha1"], "parameters": core.Null()}
    tbs = draft["tbs_certificate"].copy()
    tbs["signature"] = algorithm
    tbs_der = tbs.dump(force=True)
    signature = key.sign(tbs_der, padding.PKCS1v15(), hashes.SHA1())
    cert = asn1_x509.Certificate(
        {"tbs_certificate": asn1_x509.TbsCertificate.load(tbs_der), "signature_algorithm": algorithm, "signature_value": signature}
    )
    return x509.load_der_x509_certificate(cert.dump())


# --- CRL and OCSP ------------------------------------------------------------------------------


def make_crl(
    ca: Issued,
    revoked: Iterable[int | tuple[int, datetime]] = (),
    this_update: datetime | None = None,
    next_update: datetime | None = None,
    *,
    hash_algorithm: str = "sha256",
    crl_number: int = 1,
    signer: Issued | None = None,
) -> bytes:
    """A DER CRL issued by `ca` listing `revoked` serials (int, or (serial, revocation date)).

    Defaults: thisUpdate = now - 1 h, nextUpdate = thisUpdate + 7 days. `signer` signs with another
    key while keeping ca's name as issuer (a forged CRL, for negative tests).
    """
    this_update = this_update or clock.now() - timedelta(hours=1)
    next_update = next_update or this_update + timedelta(days=7)
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca.certificate.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key((signer or ca).private_key.public_key()),
            critical=False,
        )
    )
    for item in revoked:
        serial, when = item if isinstance(item, tuple) else (item, this_update)
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    crl = builder.sign((signer or ca).private_key, _signing_hash(hash_algorithm))
    return crl.public_bytes(serialization.Encoding.DER)


_OCSP_STATUS = {
    "good": ocsp.OCSPCertStatus.GOOD,
    "revoked": ocsp.OCSPCertStatus.REVOKED,
    "unknown": ocsp.OCSPCertStatus.UNKNOWN,
}


def make_ocsp_response(
    ca: Issued,
    cert: Issued | x509.Certificate,
    status: str = "good",
    *,
    this_update: datetime | None = None,
    next_update: datetime | None = None,
    revocation_time: datetime | None = None,
    revocation_reason: x509.ReasonFlags | None = None,
    responder: Issued | None = None,
    request: ocsp.OCSPRequest | None = None,
    cert_id_hash: str = "sha1",
    hash_algorithm: str = "sha256",
) -> bytes:
    """A DER OCSPResponse (successful) about `cert`, issued by `ca`.

    status: "good" | "revoked" | "unknown". responder: a delegated responder certificate
    (issue_ocsp_responder) that signs instead of the CA and is included in the response.
    request: echo its CertID hash algorithm and nonce. Defaults: thisUpdate = now - 1 h,
    nextUpdate = thisUpdate + 1 day, revocationTime = thisUpdate - 1 day.
    """
    target = cert.certificate if isinstance(cert, Issued) else cert
    this_update = this_update or clock.now() - timedelta(hours=1)
    next_update = next_update or this_update + timedelta(days=1)
    if status == "revoked" and revocation_time is None:
        revocation_time = this_update - timedelta(days=1)
    id_hash: hashes.HashAlgorithm = HASHES[cert_id_hash]()
    if request is not None:
        id_hash = request.hash_algorithm
    builder = ocsp.OCSPResponseBuilder().add_response(
        cert=target,
        issuer=ca.certificate,
        algorithm=id_hash,
        cert_status=_OCSP_STATUS[status],
        this_update=this_update,
        next_update=next_update,
        revocation_time=revocation_time if status == "revoked" else None,
        revocation_reason=revocation_reason if status == "revoked" else None,
    )
    signer = responder or ca
    builder = builder.responder_id(ocsp.OCSPResponderEncoding.HASH, signer.certificate)
    if responder is not None:
        builder = builder.certificates([responder.certificate])
    if request is not None:
        for extension in request.extensions:
            if isinstance(extension.value, x509.OCSPNonce):
                builder = builder.add_extension(extension.value, critical=False)
    response = builder.sign(signer.private_key, HASHES[hash_algorithm]())
    return response.public_bytes(serialization.Encoding.DER)


def make_ocsp_error(status: str = "try_later") -> bytes:
    """An unsuccessful OCSPResponse: "malformed_request", "internal_error", "try_later",
    "sig_required" or "unauthorized"."""
    return ocsp.OCSPResponseBuilder.build_unsuccessful(
        ocsp.OCSPResponseStatus[status.upper()]
    ).public_bytes(serialization.Encoding.DER)


__all__ = [
    "CLIENT_AUTH",
    "CODE_SIGNING",
    "HASHES",
    "LIFETIME_SIGNING",
    "OCSP_SIGNING",
    "TIME_STAMPING",
    "Issued",
    "TestPKI",
    "generate_key",
    "make_crl",
    "make_ocsp_error",
    "make_ocsp_response",
    "pooled_key",
    "write_certificates",
]
