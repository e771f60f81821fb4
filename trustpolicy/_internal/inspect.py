"""Describe a package's signatures as plain data (issue 2 section 4), without judging trust.

`inspect_package` returns a JSON-ready dict: the signed/unsigned state, the content hash and
whether it matches the package, the primary signature, the repository countersignature, their
timestamps and certificates, and `problems` (NU code + message) for defects met on the way.
A signed package whose signature cannot be parsed has `"primary": None` and the NU code in
`problems`. Only a file that cannot be read at all raises: SignatureFormatError TP0003 naming the
file (the code `verify` and `check` report for it).
"""

from __future__ import annotations

import base64
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asn1crypto import x509

from trustpolicy._internal.archive import PackageArchive
from trustpolicy._internal.fileutil import open_regular
from trustpolicy._internal.signature import (
    MAX_SIGNATURE_SIZE,
    PrimarySignature,
    Signature,
    Timestamp,
    distinguished_name,
    fingerprint,
    parse_signature,
)
from trustpolicy.codes import Code
from trustpolicy.errors import SignatureFormatError, TrustPolicyError

__all__ = ["inspect_package", "signature_failed"]

FINGERPRINT_ALGORITHMS = ("sha256", "sha384", "sha512")
UNREADABLE = Code.TP0003  # a file that cannot be read at all: the code verify and check give it too

def _time(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _algorithm(name: str | None) -> str | None:
    """NuGet's display spelling: "SHA256"."""
    return None if name is None else name.upper().replace("_", "-")


def _problem(error: SignatureFormatError | TrustPolicyError, where: str | None = None) -> dict[str, str]:
    code = getattr(error, "code", Code.TP0003)
    message = f"{where}: {error.message}" if where else error.message
    return {"code": code, "message": message}


def _certificate(cert: x509.Certificate) -> dict[str, Any]:
    validity = cert["tbs_certificate"]["validity"]
    return {
        "subject": distinguished_name(cert.subject),
        "issuer": distinguished_name(cert.issuer),
        # the serial's own big-endian bytes, as .NET shows X509Certificate2.SerialNumber
        "serialNumber": cert["tbs_certificate"]["serial_number"].contents.hex().upper(),
        "notBefore": _time(validity["not_before"].native),
        "notAfter": _time(validity["not_after"].native),
        "fingerprints": {_algorithm(alg): fingerprint(cert, alg) for alg in FINGERPRINT_ALGORITHMS},
    }


def _chain(leaf: x509.Certificate | None, pool: tuple[x509.Certificate, ...]) -> list[x509.Certificate]:
    """Leaf first, then issuers found by name in the signature's certificate set (display only)."""
    chain: list[x509.Certificate] = []
    seen: set[str] = set()
    current = leaf
    while current is not None and fingerprint(current) not in seen:
        chain.append(current)
        seen.add(fingerprint(current))
        if current.self_issued:
            break
        issuer = current.issuer.hashable
        current = next((c for c in pool if c.subject.hashable == issuer and fingerprint(c) not in seen), None)
    return chain


def _timestamp(ts: Timestamp) -> dict[str, Any]:
    tsa = ts.tsa_certificate
    return {
        "time": _time(ts.gen_time),
        "accuracy": ts.accuracy.total_seconds(),
        "tsaSubject": distinguished_name(tsa.subject) if tsa is not None else None,
        "tsaFingerprint": fingerprint(tsa) if tsa is not None else None,
        "hashAlgorithm": _algorithm(ts.hash_algorithm),
        "policy": ts.policy,
        "problem": {"code": ts.problem.code, "message": ts.problem.message} if ts.problem else None,
    }


def _signature(sig: Signature, pool: tuple[x509.Certificate, ...], problems: list[dict[str, str]]) -> dict[str, Any]:
    label = "primary signature" if sig.placement == "primary" else "repository countersignature"
    for index, ts in enumerate(sig.timestamps, 1):
        if ts.problem is not None:
            problems.append(_problem(ts.problem, f"{label} timestamp {index}"))
    cert = sig.signer_certificate
    return {
        "kind": sig.kind,
        "placement": sig.placement,
        "signer": _certificate(cert) if cert is not None else None,
        "digestAlgorithm": _algorithm(sig.digest_algorithm),
        "signingTime": _time(sig.signing_time),
        "serviceIndex": sig.service_index,
        "owners": list(sig.owners),
        "timestamps": [_timestamp(ts) for ts in sig.timestamps],
        "certificates": [_certificate(c) for c in _chain(cert, pool)],
    }


def _describe(report: dict[str, Any], signature: PrimarySignature) -> None:
    problems = report["problems"]
    report["contentHash"] = {
        "algorithm": _algorithm(signature.content.hash_algorithm),
        "value": base64.b64encode(signature.content.hash_value).decode("ascii"),
    }
    report["primary"] = _signature(signature, signature.certificates, problems)
    counter = signature.countersignature
    if counter is not None:
        report["countersignatures"] = [_signature(counter, signature.certificates, problems)]


def _new_report(path: Path, signed: bool) -> dict[str, Any]:
    return {
        "path": str(path), "id": None, "version": None, "signed": signed,
        "contentHash": None, "primary": None, "countersignatures": [], "problems": [],
    }


def signature_failed(report: dict[str, Any]) -> bool:
    """True when the package is signed but its signature could not be parsed (exit code 1)."""
    return bool(report["signed"]) and report["primary"] is None


def inspect_package(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Describe a .nupkg, or a bare `.signature.p7s` (then contentHash has no `matches`).

    Raises SignatureFormatError TP0003 (naming the file) only when the file cannot be read at all.
    """
    path = Path(path)
    if path.suffix.lower() == ".p7s":
        return _inspect_signature_file(path)
    archive = PackageArchive.open(path)
    report = _new_report(path, archive.is_signed)
    try:
        report["id"], report["version"] = archive.read_nuspec()
    except TrustPolicyError as error:
        report["problems"].append(_problem(error))
    if not archive.is_signed:
        return report
    try:
        signature = parse_signature(archive.read_signature())
    except SignatureFormatError as error:
        report["problems"].append(_problem(error))
        return report
    _describe(report, signature)
    content = signature.content
    try:
        matches = archive.package_hash(content.hash_algorithm) == content.hash_value
    except SignatureFormatError as error:
        matches = False
        report["problems"].append(_problem(error))
    else:
        if not matches:
            report["problems"].append({
                "code": Code.NU3008,
                "message": "The package integrity check failed: the package has changed since it was signed",
            })
    report["contentHash"]["matches"] = matches
    return report


def _inspect_signature_file(path: Path) -> dict[str, Any]:
    try:
        with open_regular(path) as f:  # a FIFO or device would block, or never end
            der = f.read(MAX_SIGNATURE_SIZE + 1)  # parse_signature refuses anything longer
    except OSError as error:
        raise SignatureFormatError(UNREADABLE, f"cannot read the signature file: {error.strerror or error}",
                                   path=str(path)) from None
    report = _new_report(path, True)
    try:
        signature = parse_signature(der)
    except SignatureFormatError as error:
        report["problems"].append(_problem(error))
        return report
    _describe(report, signature)
    return report
