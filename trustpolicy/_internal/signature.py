"""Parse a `.signature.p7s` (docs/format.md sections 3, 5, 6, 7; docs/verification.md section 2).

`parse_signature` turns the CMS bytes into frozen data: the primary signature, its single repository
countersignature and every RFC 3161 timestamp. Every structure a hash or an RSA signature covers is
kept as the ORIGINAL bytes (never re-encoded), so the verifier checks exactly what was signed.

Defects NuGet reports while loading a signature raise `SignatureFormatError` with NuGet's code.
Timestamp defects NuGet only reports at verification (NU3020, NU3021, NU3029, NU3030) are stored
in `Timestamp.problem` instead, so a package with a broken timestamp can still be inspected.
No other exception type ever escapes `parse_signature`.

Limits (NuGet has none; a 1 MiB signature could otherwise hold hundreds of thousands of empty
elements, each costing an asn1crypto object): at most MAX_CERTIFICATES certificates per certificate
set, MAX_ATTRIBUTES attribute values per attribute set, MAX_TIMESTAMPS timestamps per signer.
They are counted from the DER headers before anything is parsed. Over a limit: NU3003 for the
signature, NU3021 (Timestamp.problem) inside a timestamp token.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from asn1crypto import cms, core, parser as der_parser, tsp, x509

from trustpolicy._internal import asn1 as oids  # importing registers the NuGet attribute types
from trustpolicy.codes import Code
from trustpolicy.errors import SignatureFormatError

__all__ = [
    "MAX_ATTRIBUTES",
    "MAX_CERTIFICATES",
    "MAX_SIGNATURE_SIZE",
    "MAX_TIMESTAMPS",
    "PrimarySignature",
    "Signature",
    "SignatureContent",
    "Timestamp",
    "distinguished_name",
    "fingerprint",
    "parse_signature",
    "parse_timestamp",
]

MAX_SIGNATURE_SIZE = 1024 * 1024  # docs/format.md 2.4: NuGet has no cap; 1 MiB is our defensive limit
MAX_CERTIFICATES = 100  # per certificate set (real chains hold a handful)
MAX_ATTRIBUTES = 64  # attribute values per signed or unsigned attribute set (NuGet writes about 6)
MAX_TIMESTAMPS = 16  # signature-time-stamp tokens on one signer (NuGet writes 1)

# What asn1crypto raises on malformed input (parsing is lazy: any attribute access may raise).
_DECODE_ERRORS = (ValueError, TypeError, KeyError, IndexError, OverflowError, AttributeError, UnicodeError)

_PRIMARY = "primary"
_COUNTER = "countersignature"


# ---------------------------------------------------------------------------------------------
# Signature content (docs/format.md section 3)
# ---------------------------------------------------------------------------------------------

_NAME_RE = re.compile(r"[a-zA-Z0-9./-]+")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")  # .NET ReadLine: CRLF, lone CR or LF end a line


def _content_error(message: str) -> SignatureFormatError:
    return SignatureFormatError(Code.NU3000, f"The package signature content is invalid: {message}")


def _read_section(lines: Iterator[str]) -> dict[str, str] | None:
    """One section: properties up to an empty line. None at a clean end of the document."""
    properties: dict[str, str] = {}
    for line in lines:
        if line == "":
            if not properties:
                raise _content_error("empty section")
            return properties
        name, colon, value = line.partition(":")
        if not colon or not _NAME_RE.fullmatch(name) or not value:
            raise _content_error(f"malformed property line {line[:60]!r}")
        if name in properties:
            raise _content_error(f"duplicate property {name!r}")
        properties[name] = value
    if properties:  # EOF instead of the empty line that ends every section
        raise _content_error("a section is not terminated by an empty line")
    return None


@dataclass(frozen=True)
class SignatureContent:
    """The signed properties document: which hash of the unsigned package the signature commits to."""

    hash_algorithm: str  # "sha256" | "sha384" | "sha512"
    hash_value: bytes

    @classmethod
    def parse(cls, data: bytes) -> SignatureContent:
        """Read the content as NuGet's reader does (docs/format.md 3.2).

        Raises SignatureFormatError: NU3007 for a Version other than 1, NU3000 for anything else.
        """
        # .NET's StreamReader drops a UTF-8 BOM and replaces undecodable bytes; do the same.
        text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
        pieces = _LINE_BREAK.split(text)
        if pieces and pieces[-1] == "":
            pieces.pop()  # a final line break ends the last line; it does not start another
        lines = iter(pieces)
        header = _read_section(lines)
        if header is None:
            raise _content_error("the document is empty")
        if "Version" not in header:
            raise _content_error("the header has no Version property")
        if header["Version"] != "1":
            raise SignatureFormatError(
                Code.NU3007,
                f"The package signature format version is not supported (Version:{header['Version'][:20]})",
            )
        section = _read_section(lines)  # only the first section after the header is read
        for name, value in (section or {}).items():
            oid, _, suffix = name.rpartition("-")
            if suffix == "Hash" and oid in oids.HASH_NAMES:
                try:
                    digest = base64.b64decode(value, validate=True)
                except ValueError:
                    raise _content_error(f"{name} is not valid Base64") from None
                return cls(oids.HASH_NAMES[oid], digest)
        raise SignatureFormatError(
            Code.NU3000,
            "Package hash information could not be read from the package signature "
            "(no SHA-256/384/512 <oid>-Hash property)",
        )

    def to_bytes(self) -> bytes:
        """The exact bytes NuGet writes (docs/format.md 3.1)."""
        oid = oids.HASH_OIDS[self.hash_algorithm]
        value = base64.b64encode(self.hash_value).decode("ascii")
        return f"Version:1\n\n{oid}-Hash:{value}\n\n".encode("ascii")


# ---------------------------------------------------------------------------------------------
# Data model
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Timestamp:
    """One RFC 3161 token from a signature-time-stamp attribute (docs/format.md section 7)."""

    der: bytes
    token: cms.ContentInfo
    signer_info: cms.SignerInfo | None
    tst_info: tsp.TSTInfo | None
    gen_time: datetime | None
    accuracy: timedelta
    policy: str | None
    hash_algorithm: str | None  # messageImprint algorithm name (may be unsupported, e.g. "sha1")
    message_imprint: bytes | None
    tsa_certificate: x509.Certificate | None
    certificates: tuple[x509.Certificate, ...]
    signed_attrs_der: bytes | None  # original DER re-tagged as SET (0x31) for hashing
    problem: SignatureFormatError | None  # reported by the verifier (NU3020/3021/3029/3030...)

    @property
    def lower_limit(self) -> datetime | None:
        return None if self.gen_time is None else self.gen_time - self.accuracy

    @property
    def upper_limit(self) -> datetime | None:
        return None if self.gen_time is None else self.gen_time + self.accuracy


@dataclass(frozen=True)
class Signature:
    """A primary signature or a repository countersignature."""

    kind: str  # "author" | "repository" | "unknown"
    placement: str  # "primary" | "countersignature"
    signer_info: cms.SignerInfo
    signer_certificate: x509.Certificate | None
    digest_algorithm: str  # hashlib name ("sha256"), or the dotted OID when asn1crypto has no name
    signature_algorithm: str  # OID dotted
    signed_attrs_der: bytes  # ORIGINAL signed attributes re-tagged 0x31 (b"" when there are none)
    signature_value: bytes
    message_digest: bytes | None
    signing_time: datetime | None
    service_index: str | None
    owners: tuple[str, ...]
    timestamps: tuple[Timestamp, ...]


@dataclass(frozen=True)
class PrimarySignature(Signature):
    der: bytes  # the whole .signature.p7s
    content: SignatureContent
    content_bytes: bytes  # eContent as stored (what message-digest covers)
    certificates: tuple[x509.Certificate, ...]  # outer SignedData certificates
    countersignature: Signature | None  # the single repository countersignature


# ---------------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------------


# Short attribute names as .NET's X500DistinguishedName.Name prints them.
_DN_NAMES = {
    "2.5.4.3": "CN", "2.5.4.10": "O", "2.5.4.11": "OU", "2.5.4.7": "L", "2.5.4.8": "S",
    "2.5.4.6": "C", "2.5.4.9": "STREET", "2.5.4.5": "SERIALNUMBER", "2.5.4.12": "T",
    "2.5.4.42": "G", "2.5.4.4": "SN", "2.5.4.43": "I", "1.2.840.113549.1.9.1": "E",
    "0.9.2342.19200300.100.1.25": "DC", "0.9.2342.19200300.100.1.1": "UID",
}


_DN_TEXTS: dict[bytes, str] = {}
_FINGERPRINTS: dict[tuple[bytes, str], str] = {}


def distinguished_name(name: x509.Name) -> str:
    """"CN=..., O=..., C=US": most specific first, values quoted when they hold separators."""
    if name._header is None or name.chosen._is_mutated():  # built or edited in memory: its bytes say nothing
        return _format_name(name)
    der = _raw(name)  # reports name the same few certificates in every package: format each once
    text = _DN_TEXTS.get(der)
    if text is None:
        text = remember(_DN_TEXTS, der, _format_name(name))
    return text


def _format_name(name: x509.Name) -> str:
    parts = []
    for rdn in reversed(list(name.chosen)):
        avas = []
        for ava in rdn:
            oid = ava["type"].dotted
            value = ava["value"].native
            text = value if isinstance(value, str) else repr(value)
            if any(ch in text for ch in ',+=<>#;"\n') or text != text.strip():
                text = '"' + text.replace('"', '""') + '"'
            avas.append(f"{_DN_NAMES.get(oid, 'OID.' + oid)}={text}")
        parts.append(" + ".join(avas))
    return ", ".join(parts)


def fingerprint(cert: x509.Certificate, algorithm: str = "sha256") -> str:
    """Uppercase hex hash of the certificate DER; algorithm is sha256/sha384/sha512 (any case, '-' ok)."""
    name = algorithm.lower().replace("-", "")
    if name not in oids.HASH_OIDS:
        raise ValueError(f"unsupported fingerprint algorithm {algorithm!r}")
    key = (_raw(cert), name)  # allow lists ask for the same few certificates' fingerprints per package
    value = _FINGERPRINTS.get(key)
    if value is None:
        value = remember(_FINGERPRINTS, key, hashlib.new(name, key[0]).hexdigest().upper())
    return value


def _raw(value: Any) -> bytes:
    """The value's encoding exactly as parsed.

    asn1crypto marks a value mutated as soon as a DEFAULT field below it is read (ESSCertIDv2
    hashAlgorithm, Extension critical...); `dump()` then re-encodes the whole subtree, which is slow
    and may drop explicitly encoded defaults, changing what a hash or a signature covers. The parsed
    header, contents and trailer are the original bytes whatever happened since.
    """
    if value._header is None:  # built in memory, never parsed
        return value.dump()
    contents = value._contents if hasattr(value, "_contents") else value.contents  # primitives: plain attribute
    return value._header + contents + value._trailer


# Per-process caches (_SHARED and the ones next to their users) hold values derived from exact
# encodings that every package of a graph repeats: each is keyed by all the bytes its value is computed
# from, so it never answers for anything else. Failures are never stored: they happen again.
_SHARED_LIMIT = 4096


def remember(cache: dict[Any, Any], key: Any, value: Any) -> Any:
    """Store in a per-process cache, bounded (cleared when full); returns the value."""
    if len(cache) >= _SHARED_LIMIT:
        cache.clear()
    cache[key] = value
    return value


def _detached(value: Any) -> Any:
    """A private re-parse of `value`, to read DEFAULT fields without marking the shared tree mutated."""
    return type(value).load(_raw(value))


def _present(value: Any) -> bool:
    return value is not None and not isinstance(value, core.Void)


class LimitExceeded(ValueError):
    """More elements than a documented limit (module docstring)."""


def _count(value: Any, limit: int) -> int:
    """Elements of a SET OF / SEQUENCE OF, from their DER headers only, counting no further than limit + 1."""
    data = value._contents or b""  # the parsed bytes: `.contents` may re-encode (see _raw)
    pointer = count = 0
    while pointer < len(data) and count <= limit:
        _, pointer = der_parser._parse(data, len(data), pointer, lengths_only=True)
        count += 1
    return count


def _bounded(value: Any, limit: int, what: str) -> Any:
    if _count(value, limit) > limit:
        raise LimitExceeded(f"more than {limit} {what}")
    return value


def _attributes(attrs: Any) -> list[tuple[str, Any]]:
    """(dotted OID, values SetOf) for every attribute instance, in order."""
    if not _present(attrs):
        return []
    result = [(attr["type"].dotted, attr["values"]) for attr in _bounded(attrs, MAX_ATTRIBUTES, "attributes")]
    if sum(_count(values, MAX_ATTRIBUTES) for _, values in result) > MAX_ATTRIBUTES:
        raise LimitExceeded(f"more than {MAX_ATTRIBUTES} attribute values")
    return result


def _instances(attrs: list[tuple[str, Any]], oid: str) -> list[Any]:
    return [values for type_oid, values in attrs if type_oid == oid]


def _retagged_set(attrs: Any) -> bytes:
    """Original DER of `[0] IMPLICIT SignedAttributes` with its first byte set to SET (0x31).

    RFC 5652 5.4 hashes the SET form of exactly the bytes that were signed.
    """
    if not _present(attrs):
        return b""
    raw = _raw(attrs)
    return b"\x31" + raw[1:]


_ALGORITHM_NAMES: dict[bytes, str] = {}


def _algorithm_name(algorithm: Any) -> str:
    """hashlib-style name ("sha256", "sha1"...), or the dotted OID when asn1crypto knows no name.

    Remembered per exact encoding (every caller passes a DigestAlgorithm; a graph has a handful of
    encodings): parsing the identifier costs more than everything else done with it."""
    der = _raw(algorithm)
    name = _ALGORITHM_NAMES.get(der)
    if name is None:
        name = remember(_ALGORITHM_NAMES, der, str(algorithm["algorithm"].native))
    return name


def _certificates(signed_data: cms.SignedData) -> tuple[x509.Certificate, ...]:
    certs = signed_data["certificates"]
    if not _present(certs):
        return ()
    _bounded(certs, MAX_CERTIFICATES, "certificates")
    known = _known_certificates(certs)
    if known is not None:
        return known
    return tuple(_shared(choice.chosen) for choice in certs if choice.name == "certificate")


def _known_certificates(certs: cms.CertificateSet) -> tuple[x509.Certificate, ...] | None:
    """The set's certificates when every element's exact bytes are already in _SHARED, else None.

    Found from the DER headers alone, without building a CertificateChoices per element. Exact: each
    _SHARED key is the whole encoding of an element that iterating a set resolved to a certificate,
    and that resolution depends on the element's bytes only.
    """
    data = certs._contents or b""  # the parsed bytes (see _raw); _bounded has walked these headers
    found = []
    pointer = 0
    while pointer < len(data):
        start = pointer
        _, pointer = der_parser._parse(data, len(data), pointer, lengths_only=True)
        cert = _SHARED.get(data[start:pointer])
        if cert is None:
            return None
        found.append(cert)
    return tuple(found)


# A graph repeats the same few signer, intermediate and root certificates in every package: parse each
# distinct encoding once per process, so its derived values (names, key identifiers) and the chain
# validator's per-certificate caches are computed once. Keyed by the exact bytes, so never confused.
_SHARED: dict[bytes, x509.Certificate] = {}


def _shared(cert: x509.Certificate) -> x509.Certificate:
    der = _raw(cert)
    known = _SHARED.get(der)
    if known is None:
        known = remember(_SHARED, der, x509.Certificate.load(der))
    return known


_NAME_KEYS: dict[bytes, str] = {}


def _name_key(name: x509.Name) -> str:
    """`name.hashable` (RFC 5280 7.1 comparison form: RFC 4518 string preparation), remembered per exact
    encoding: a graph names the same few issuers in every package, and the preparation is costly."""
    der = _raw(name)
    key = _NAME_KEYS.get(der)
    if key is None:
        key = remember(_NAME_KEYS, der, name.hashable)
    return key


def _find_certificate(sid: cms.SignerIdentifier, certs: tuple[x509.Certificate, ...]) -> x509.Certificate | None:
    """Resolve either sid form against the certificate set (docs/format.md 5.2).

    The first certificate in set order whose issuer equals the sid's under RFC 5280 wins. (No "same
    bytes first" pass: it could pick a later candidate, or match a name whose preparation fails.)"""
    if sid.name == "issuer_and_serial_number":
        issuer = sid.chosen["issuer"]
        serial = sid.chosen["serial_number"].native
        for cert in certs:
            if cert.serial_number == serial and _name_key(cert.issuer) == _name_key(issuer):
                return cert
        return None
    key_id = sid.chosen.native
    return next((cert for cert in certs if _key_identifier(cert) == key_id), None)


_KEY_IDS: dict[bytes, bytes] = {}


def _key_identifier(cert: x509.Certificate) -> bytes:
    """The SKI, or as .NET does without one, the SHA-1 of the public key (remembered per encoding)."""
    der = _raw(cert)
    key_id = _KEY_IDS.get(der)
    if key_id is None:
        copy = _detached(cert)  # reading extensions touches DEFAULT fields (see _raw)
        key_id = copy.key_identifier if copy.key_identifier is not None else copy.public_key.sha1
        remember(_KEY_IDS, der, key_id)
    return key_id


def _dn_key(name: x509.Name) -> tuple[tuple[tuple[str, str], ...], ...]:
    """Exact (case-sensitive) comparison key, close to .NET's ordinal compare of the DN string."""
    return tuple(
        tuple((ava["type"].dotted, str(ava["value"].native)) for ava in rdn) for rdn in name.chosen
    )


def _single_value(instances: list[Any], what: str) -> Any:
    if len(instances) != 1:
        raise ValueError(f"{what}: exactly one attribute is required, found {len(instances)}")
    if len(instances[0]) != 1:
        raise ValueError(f"{what}: exactly one attribute value is required")
    return instances[0][0]


def _check_cert_id(cert_id: Any, cert: x509.Certificate, hash_name: str, *, issuer_serial_required: bool) -> None:
    """ESSCertID(v2) certs[0] must name `cert`: hash, then serial and issuer (docs/format.md 5.2, 7)."""
    if cert_id["cert_hash"].native != hashlib.new(hash_name, _raw(cert)).digest():
        raise ValueError("the certificate hash does not match the signer certificate")
    issuer_serial = cert_id["issuer_serial"]
    if not _present(issuer_serial) or issuer_serial.native is None:
        if issuer_serial_required:
            raise ValueError("issuerSerial is missing")
        return
    names = issuer_serial["issuer"]
    if len(names) == 0:
        raise ValueError("issuerSerial has no issuer name")
    if issuer_serial["serial_number"].native != cert.serial_number:
        raise ValueError("issuerSerial serial number does not match the signer certificate")
    first = names[0]
    if first.name == "directory_name" and _dn_key(first.chosen) != _dn_key(cert.issuer):
        raise ValueError("issuerSerial issuer does not match the signer certificate")


# A signing-certificate value names one certificate and nothing else, so a graph repeats the same
# (value, certificate) pair in every package signed by that certificate. The checks below read nothing
# but these two encodings: remember the pairs that passed.
_CERT_IDS_OK: dict[tuple[Any, ...], bool] = {}


def _check_signing_certificate_v2(value: Any, cert: x509.Certificate, *, issuer_serial_required: bool) -> None:
    known = ("v2", _raw(value), _raw(cert), issuer_serial_required)
    if known in _CERT_IDS_OK:
        return
    certs = _detached(value)["certs"]  # hashAlgorithm is a DEFAULT field (see _raw)
    if len(certs) == 0:
        raise ValueError("signing-certificate-v2 lists no certificate")
    for cert_id in certs:
        if cert_id["hash_algorithm"]["algorithm"].dotted not in oids.HASH_NAMES:
            raise ValueError("signing-certificate-v2 uses an unsupported hash algorithm")
    first = certs[0]
    hash_name = oids.HASH_NAMES[first["hash_algorithm"]["algorithm"].dotted]  # absent -> SHA-256
    _check_cert_id(first, cert, hash_name, issuer_serial_required=issuer_serial_required)
    remember(_CERT_IDS_OK, known, True)


def _check_signing_certificate_v1(value: Any, cert: x509.Certificate) -> None:
    known = ("v1", _raw(value), _raw(cert))
    if known in _CERT_IDS_OK:
        return
    certs = _detached(value)["certs"]
    if len(certs) == 0:
        raise ValueError("signing-certificate lists no certificate")
    if len(certs[0]["cert_hash"].native) != 20:
        raise ValueError("signing-certificate hash is not a 20-byte SHA-1")
    _check_cert_id(certs[0], cert, "sha1", issuer_serial_required=False)
    remember(_CERT_IDS_OK, known, True)


def _commitment_kind(attrs: list[tuple[str, Any]]) -> str:
    """Kind from every value of every commitment-type-indication instance (docs/format.md 5.2)."""
    found: set[str] = set()
    try:
        for values in _instances(attrs, oids.ATTR_COMMITMENT_TYPE):
            for value in values:
                found.add(value["commitment_type_id"].dotted)
    except _DECODE_ERRORS as error:
        raise SignatureFormatError(Code.NU3000, f"The commitment-type-indication attribute is invalid ({error})") from None
    author, repository = oids.COMMITMENT_AUTHOR in found, oids.COMMITMENT_REPOSITORY in found
    if author and repository:
        raise SignatureFormatError(
            Code.NU3000, "The commitment-type-indication attribute contains an invalid combination of values"
        )
    return "author" if author else "repository" if repository else "unknown"


def _signing_time(attrs: list[tuple[str, Any]], code: Code, name: str) -> datetime:
    try:
        value = _single_value(_instances(attrs, oids.ATTR_SIGNING_TIME), "signing-time")
        moment = value.native
        if not isinstance(moment, datetime):
            raise ValueError("signing-time is not a time")
        return moment
    except _DECODE_ERRORS as error:
        raise SignatureFormatError(code, f"The {name} is invalid: {error}") from None


def _message_digest(attrs: list[tuple[str, Any]]) -> bytes | None:
    """The message-digest value; None when missing or duplicated (the CMS check then fails)."""
    try:
        value = _single_value(_instances(attrs, oids.ATTR_MESSAGE_DIGEST), "message-digest")
        digest = value.native
        return digest if isinstance(digest, bytes) else None
    except _DECODE_ERRORS:
        return None


def _repository_attributes(attrs: list[tuple[str, Any]]) -> tuple[str, tuple[str, ...]]:
    """nuget-v3-service-index-url (required) and nuget-package-owners (optional); NU3000 if invalid."""
    try:
        url = _single_value(_instances(attrs, oids.ATTR_NUGET_SERVICE_INDEX), "nuget-v3-service-index-url").native
        parts = urlsplit(url)
        # .NET Uri lowercases the scheme before NuGet's ordinal compare with "https".
        if parts.scheme.lower() != "https" or not parts.hostname:
            raise ValueError(f"{url!r} is not an absolute https URL")
    except _DECODE_ERRORS as error:
        raise SignatureFormatError(Code.NU3000, f"The nuget-v3-service-index-url attribute is invalid: {error}") from None
    owners: tuple[str, ...] = ()
    try:
        instances = _instances(attrs, oids.ATTR_NUGET_OWNERS)
        if instances:
            owners = tuple(_single_value(instances, "nuget-package-owners").native)
            if not owners or any(not owner or not owner.strip() for owner in owners):
                raise ValueError("an owner is empty or the list is empty")
    except _DECODE_ERRORS as error:
        raise SignatureFormatError(Code.NU3000, f"The nuget-package-owners attribute is invalid: {error}") from None
    return url, owners


# ---------------------------------------------------------------------------------------------
# Timestamps (docs/format.md section 7): defects go into Timestamp.problem, never raised
# ---------------------------------------------------------------------------------------------


def _timestamp_problem(code: Code, message: str) -> SignatureFormatError:
    return SignatureFormatError(code, f"The timestamp is invalid: {message}")


def parse_timestamp(der: bytes) -> Timestamp:
    """One TimeStampToken from its DER (what a TSA answers), read as parse_signature reads the
    tokens of a signature: never raises, defects go into `Timestamp.problem`."""
    try:
        token = cms.ContentInfo.load(der, strict=True)
    except Exception as error:
        return _broken_timestamp(der, error)
    return _parse_timestamp(token)


def _parse_timestamp(token: cms.ContentInfo) -> Timestamp:
    fields: dict[str, Any] = dict(
        der=b"", token=token, signer_info=None, tst_info=None, gen_time=None, accuracy=timedelta(0),
        policy=None, hash_algorithm=None, message_imprint=None, tsa_certificate=None, certificates=(),
        signed_attrs_der=None, problem=None,
    )
    try:
        fields["der"] = _raw(token)
        _fill_timestamp(token, fields)
    except SignatureFormatError as problem:
        fields["problem"] = problem
    except Exception as error:
        fields["problem"] = _timestamp_problem(Code.NU3021, f"the token cannot be decoded ({type(error).__name__}: {error})")
    return Timestamp(**fields)


def _fill_timestamp(token: cms.ContentInfo, fields: dict[str, Any]) -> None:
    """Fill `fields` step by step so whatever was readable before a defect is kept."""
    if token["content_type"].dotted != oids.ID_SIGNED_DATA:
        raise _timestamp_problem(Code.NU3021, "the token is not CMS SignedData")
    signed_data = token["content"]
    encap = signed_data["encap_content_info"]
    if encap["content_type"].dotted != oids.ID_CT_TSTINFO or not _present(encap["content"]):
        raise _timestamp_problem(Code.NU3021, "the token content is not TSTInfo")
    tst_info = tsp.TSTInfo.load(bytes(encap["content"]), strict=True)
    fields["tst_info"] = tst_info
    fields["gen_time"] = tst_info["gen_time"].native
    fields["policy"] = tst_info["policy"].dotted
    imprint = tst_info["message_imprint"]
    fields["hash_algorithm"] = _algorithm_name(imprint["hash_algorithm"])
    fields["message_imprint"] = imprint["hashed_message"].native
    fields["accuracy"] = accuracy = _accuracy(tst_info)
    if accuracy < timedelta(0):
        fields["accuracy"] = timedelta(0)
        raise _timestamp_problem(Code.NU3021, "the TSTInfo accuracy is negative")

    signer_infos = signed_data["signer_infos"]
    if _count(signer_infos, 1) != 1:  # counted from the headers: a flood of signers is never parsed
        raise _timestamp_problem(Code.NU3021, "the token does not have exactly one signer")
    signer_info = signer_infos[0]
    fields["signer_info"] = signer_info
    fields["signed_attrs_der"] = _retagged_set(signer_info["signed_attrs"])
    certs = _certificates(signed_data)
    fields["certificates"] = certs
    if not certs:
        raise _timestamp_problem(Code.NU3029, "the token carries no certificates")
    tsa = _find_certificate(signer_info["sid"], certs)
    fields["tsa_certificate"] = tsa
    if tsa is None:
        raise _timestamp_problem(Code.NU3020, "the timestamp signer certificate is not in the token")
    _check_timestamp_signing_certificate(signer_info, tsa)
    if fields["hash_algorithm"] not in oids.HASH_OIDS:
        raise _timestamp_problem(
            Code.NU3030, f"the message imprint uses an unsupported hash algorithm ({fields['hash_algorithm']})"
        )


def _accuracy(tst_info: tsp.TSTInfo) -> timedelta:
    """TSTInfo accuracy; absent -> 1 s under the ETSI baseline policy, else 0 (docs/format.md 7)."""
    accuracy = tst_info["accuracy"]
    if not _present(accuracy):
        baseline = tst_info["policy"].dotted == oids.ETSI_BASELINE_TSA_POLICY
        return timedelta(seconds=1) if baseline else timedelta(0)
    parts = [accuracy[name].native if _present(accuracy[name]) else None for name in ("seconds", "millis", "micros")]
    seconds, millis, micros = (part or 0 for part in parts)
    return timedelta(seconds=seconds, milliseconds=millis, microseconds=micros)


def _check_timestamp_signing_certificate(signer_info: cms.SignerInfo, tsa: x509.Certificate) -> None:
    """signing-certificate and/or -v2 on the token signer; issuerSerial optional (docs/format.md 7)."""
    attrs = _attributes(signer_info["signed_attrs"])
    v1 = _instances(attrs, oids.ATTR_SIGNING_CERTIFICATE)
    v2 = _instances(attrs, oids.ATTR_SIGNING_CERTIFICATE_V2)
    try:
        if not v1 and not v2:
            raise ValueError("neither signing-certificate nor signing-certificate-v2 is present")
        if v1:
            _check_signing_certificate_v1(_single_value(v1, "signing-certificate"), tsa)
        if v2:
            value = _single_value(v2, "signing-certificate-v2")
            _check_signing_certificate_v2(value, tsa, issuer_serial_required=False)
    except _DECODE_ERRORS as error:
        raise _timestamp_problem(Code.NU3021, str(error)) from None


def _timestamps(signer_info: cms.SignerInfo) -> tuple[Timestamp, ...]:
    """Every value of every signature-time-stamp instance, in order."""
    unsigned = _attributes(signer_info["unsigned_attrs"])
    instances = _instances(unsigned, oids.ATTR_TIMESTAMP_TOKEN)
    if sum(len(values) for values in instances) > MAX_TIMESTAMPS:
        raise LimitExceeded(f"more than {MAX_TIMESTAMPS} timestamps")
    result = []
    for values in instances:
        for index in range(len(values)):
            try:
                token = values[index]
            except Exception as error:
                raw = getattr(values, "_contents", None) or b""  # never .contents: it may re-encode
                result.append(_broken_timestamp(raw, error))
                continue
            result.append(_parse_timestamp(token))
    return tuple(result)


def _broken_timestamp(raw: bytes, error: Exception) -> Timestamp:
    return Timestamp(
        der=raw, token=cms.ContentInfo(), signer_info=None, tst_info=None, gen_time=None,
        accuracy=timedelta(0), policy=None, hash_algorithm=None, message_imprint=None,
        tsa_certificate=None, certificates=(), signed_attrs_der=None,
        problem=_timestamp_problem(Code.NU3021, f"the token cannot be decoded ({type(error).__name__})"),
    )


# ---------------------------------------------------------------------------------------------
# Signatures
# ---------------------------------------------------------------------------------------------


def _check_signer_certificate(
    attrs: list[tuple[str, Any]], cert: x509.Certificate | None, code: Code, name: str
) -> None:
    """signing-certificate-v2 rules for author and repository signatures (docs/format.md 5.2)."""
    try:
        if cert is None:
            raise ValueError("its signing certificate is not in the certificate set")
        if _instances(attrs, oids.ATTR_SIGNING_CERTIFICATE):
            raise ValueError("the signing-certificate (v1) attribute is not allowed")
        value = _single_value(_instances(attrs, oids.ATTR_SIGNING_CERTIFICATE_V2), "signing-certificate-v2")
        _check_signing_certificate_v2(value, cert, issuer_serial_required=True)
    except _DECODE_ERRORS as error:
        raise SignatureFormatError(code, f"The {name} is invalid: {error}") from None


def _check_content_type(e_content_type: str, attrs: list[tuple[str, Any]]) -> None:
    """The content is a properties document (id-data), and a signed content-type attribute must name
    the same type (RFC 5652 11.1): the outer eContentType is not signed, the attribute is."""
    if e_content_type != oids.ID_DATA:
        raise SignatureFormatError(Code.NU3000, f"The package signature content type is {e_content_type}, not id-data")
    for values in _instances(attrs, oids.ATTR_CONTENT_TYPE):
        if len(values) != 1 or values[0].dotted != e_content_type:
            raise SignatureFormatError(Code.NU3011, "The primary signature is invalid: its signed content-type "
                                       "attribute does not match the content")


def _signature_fields(
    signer_info: cms.SignerInfo,
    attrs: list[tuple[str, Any]],
    kind: str,
    placement: str,
    certs: tuple[x509.Certificate, ...],
) -> dict[str, Any]:
    """Fields shared by the primary signature and the countersignature, with their checks.

    `attrs` are the signer's signed attributes (`_attributes`), read once per signer."""
    primary = placement == _PRIMARY
    code, name = (Code.NU3011, "primary signature") if primary else (Code.NU3031, "repository countersignature")
    cert = _find_certificate(signer_info["sid"], certs)
    signing_time = None
    if kind != "unknown":  # docs/verification.md 2.4-2.6: Unknown signatures skip the attribute checks
        if cert is None and primary:
            raise SignatureFormatError(Code.NU3010, "The primary signature does not have a signing certificate")
        _check_signer_certificate(attrs, cert, code, name)
        signing_time = _signing_time(attrs, code, name)
    return dict(
        kind=kind,
        placement=placement,
        signer_info=signer_info,
        signer_certificate=cert,
        digest_algorithm=_algorithm_name(signer_info["digest_algorithm"]),
        signature_algorithm=signer_info["signature_algorithm"]["algorithm"].dotted,
        signed_attrs_der=_retagged_set(signer_info["signed_attrs"]),
        signature_value=signer_info["signature"].native,
        message_digest=_message_digest(attrs),
        signing_time=signing_time,
        service_index=None,  # filled by _with_repository_attributes for repository signatures
        owners=(),
        timestamps=_timestamps(signer_info),
    )


def _countersignature(primary_info: cms.SignerInfo, primary_kind: str, certs: tuple[x509.Certificate, ...]) -> Signature | None:
    """The single proofOfReceipt countersignature (docs/format.md 6); others are ignored."""
    unsigned = _attributes(primary_info["unsigned_attrs"])
    repository = []
    for values in _instances(unsigned, oids.ATTR_COUNTERSIGNATURE):
        for signer_info in values:
            attrs = _attributes(signer_info["signed_attrs"])
            if _commitment_kind(attrs) == "repository":
                repository.append((signer_info, attrs))
    if not repository:
        return None
    if primary_kind == "repository":
        raise SignatureFormatError(
            Code.NU3033, "A repository primary signature must not have a repository countersignature"
        )
    if len(repository) > 1:
        raise SignatureFormatError(Code.NU3032, "The package signature contains multiple repository countersignatures")
    signer_info, attrs = repository[0]
    fields = _signature_fields(signer_info, attrs, "repository", _COUNTER, certs)
    return Signature(**_with_repository_attributes(fields, attrs))


def _with_repository_attributes(fields: dict[str, Any], attrs: list[tuple[str, Any]]) -> dict[str, Any]:
    if fields["kind"] == "repository":
        fields["service_index"], fields["owners"] = _repository_attributes(attrs)
    return fields


def parse_signature(der: bytes) -> PrimarySignature:
    """Parse `.signature.p7s` bytes (docs/verification.md section 2 order).

    Raises SignatureFormatError with NuGet's code: NU3003 (not CMS SignedData / too large),
    NU3009 (signer count), NU3000 (commitment types, content, repository attributes),
    NU3010 (no signer certificate), NU3011 (primary attributes), NU3007 (content version),
    NU3031/NU3032/NU3033 (countersignature). Nothing else escapes.
    """
    if len(der) > MAX_SIGNATURE_SIZE:
        raise SignatureFormatError(
            Code.NU3003, f"The package signature is {len(der)} bytes, more than the {MAX_SIGNATURE_SIZE}-byte limit"
        )
    try:
        return _parse(bytes(der))
    except SignatureFormatError:
        raise
    except RecursionError:
        raise SignatureFormatError(Code.NU3003, "The package signature is nested too deeply to decode") from None
    except LimitExceeded as error:
        raise SignatureFormatError(Code.NU3003, f"The package signature is refused: it has {error}") from None
    except Exception as error:
        raise SignatureFormatError(
            Code.NU3003, f"The package signature is invalid or cannot be decoded ({type(error).__name__}: {error})"
        ) from None


def _parse(der: bytes) -> PrimarySignature:
    info = cms.ContentInfo.load(der, strict=True)
    if info["content_type"].dotted != oids.ID_SIGNED_DATA:
        raise SignatureFormatError(Code.NU3003, "The package signature is not CMS SignedData")
    signed_data = info["content"]
    signer_infos = signed_data["signer_infos"]
    found = _count(signer_infos, 1)  # counted from the headers: a flood of signers is never parsed
    if found != 1:
        raise SignatureFormatError(
            Code.NU3009,
            "The package signature file does not contain exactly one primary signature "
            f"(found {'more than one' if found > 1 else 'none'})",
        )
    signer_info = signer_infos[0]
    certs = _certificates(signed_data)
    attrs = _attributes(signer_info["signed_attrs"])
    kind = _commitment_kind(attrs)
    fields = _signature_fields(signer_info, attrs, kind, _PRIMARY, certs)

    encap = signed_data["encap_content_info"]
    if not _present(encap["content"]):
        raise SignatureFormatError(Code.NU3000, "The package signature has no content (detached signature)")
    _check_content_type(encap["content_type"].dotted, attrs)
    content_bytes = bytes(encap["content"])
    content = SignatureContent.parse(content_bytes)
    fields = _with_repository_attributes(fields, attrs)  # docs/verification.md 2.8: after the content

    return PrimarySignature(
        **fields,
        der=der,
        content=content,
        content_bytes=content_bytes,
        certificates=certs,
        countersignature=_countersignature(signer_info, kind, certs),
    )
