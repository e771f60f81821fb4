"""A V3 package source's RepositorySignatures resource (NuGet's server API, RepositorySignatures/5.0.0).

The service index lists resources; `RepositorySignatures/5.0.0` (or /4.9.0, /4.7.0) points to a
JSON document naming the certificates the repository signs with:

    {"allRepositorySigned": true,
     "signingCertificates": [{"fingerprints": {"2.16.840.1.101.3.4.2.1": "<sha-256 hex>"},
                              "subject": "...", "issuer": "...", "notBefore": "...", "notAfter": "...",
                              "contentUrl": "https://..."}]}

Every URL must be https (plain http is accepted only for loopback hosts, for local test servers);
responses are bounded in size and time; anything malformed is refused with a message naming the URL.
"""

from __future__ import annotations

import ipaddress
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from trustpolicy._internal.net import with_deadline
from trustpolicy.errors import TrustPolicyError

SHA256_OID = "2.16.840.1.101.3.4.2.1"
RESOURCE_TYPES = ("RepositorySignatures/5.0.0", "RepositorySignatures/4.9.0", "RepositorySignatures/4.7.0")
MAX_RESPONSE_BYTES = 1024 * 1024
DEFAULT_TIMEOUT = 15.0


@dataclass(frozen=True)
class RepositoryCertificate:
    fingerprint: str  # SHA-256, upper-case hex
    subject: str | None
    issuer: str | None
    not_before: str | None
    not_after: str | None
    content_url: str


@dataclass(frozen=True)
class RepositorySignatures:
    service_index: str
    resource_url: str
    resource_type: str
    all_repository_signed: bool
    certificates: tuple[RepositoryCertificate, ...]


class SourceError(TrustPolicyError):
    """A package source that cannot be used: unreachable, not https, malformed documents."""


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_url(url: str, what: str, where: str | None = None) -> str:
    """Refuse anything but an absolute https URL (http only for loopback hosts).
    `where` is the document that named the URL (the error names it); None: the URL itself."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:
        raise SourceError(f"{what} is not a valid URL: {exc}", path=where or url) from None
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return url
    raise SourceError(f"{what} must be an https URL" + (f" (it is {url})" if where else ""), path=where or url)


class _CheckedRedirects(urllib.request.HTTPRedirectHandler):
    max_redirections = 5

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        check_url(newurl, "redirect target", req.full_url)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def fetch_json(url: str, what: str, *, timeout: float = DEFAULT_TIMEOUT, max_bytes: int = MAX_RESPONSE_BYTES) -> Any:
    """GET a JSON document with a size cap and an overall deadline."""
    check_url(url, what)
    host = urllib.parse.urlsplit(url).hostname
    proxies = urllib.request.ProxyHandler({} if is_loopback(host) else None)
    opener = urllib.request.build_opener(proxies, _CheckedRedirects())
    request = urllib.request.Request(url, headers={"Accept": "application/json", "User-Agent": "trustpolicy"})

    def exchange() -> list[bytes]:
        with opener.open(request, timeout=timeout) as response:
            length = response.headers.get("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise SourceError(f"{what} is larger than {max_bytes} bytes", path=url)
            chunks, size = [], 0
            # read1: whatever has arrived (read() would wait for 64 KiB from a trickling server)
            while chunk := response.read1(65536):
                size += len(chunk)
                if size > max_bytes:
                    raise SourceError(f"{what} is larger than {max_bytes} bytes", path=url)
                chunks.append(chunk)
            return chunks

    try:
        chunks = with_deadline(exchange, timeout, name="trustpolicy-service-index")
    except SourceError:
        raise
    except TimeoutError:
        raise SourceError(f"{what} could not be fetched: no answer within {timeout:g} s", path=url) from None
    except urllib.error.HTTPError as exc:
        reason = " ".join(str(exc.reason).split())  # urllib's redirect-loop reason spans lines; errors are one
        raise SourceError(f"{what} could not be fetched: HTTP {exc.code} {reason}", path=url) from None
    except urllib.error.URLError as exc:
        raise SourceError(f"{what} could not be fetched: {exc.reason}", path=url) from None
    except OSError as exc:
        raise SourceError(f"{what} could not be fetched: {exc}", path=url) from None
    try:
        return json.loads(b"".join(chunks).decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SourceError(f"{what} is not valid JSON: {exc}", path=url) from None


def find_resource(index: Any, service_index: str) -> tuple[str, str]:
    """The RepositorySignatures resource of a service index: (@id, @type), newest version first."""
    if not isinstance(index, dict) or not isinstance(index.get("resources"), list):
        raise SourceError("is not a NuGet V3 service index (no resources list)", path=service_index)
    offered: dict[str, str] = {}
    for resource in index["resources"]:
        if not isinstance(resource, dict):
            continue
        types = resource.get("@type")
        for type_name in types if isinstance(types, list) else [types]:
            if isinstance(type_name, str) and isinstance(resource.get("@id"), str):
                offered.setdefault(type_name, resource["@id"])
    for type_name in RESOURCE_TYPES:
        if type_name in offered:
            return check_url(offered[type_name], f"the {type_name} resource", service_index), type_name
    raise SourceError("the service index has no RepositorySignatures resource; this source does not announce its certificates", path=service_index)


def parse_repository_signatures(document: Any, resource_url: str, resource_type: str, service_index: str) -> RepositorySignatures:
    where = resource_url
    if not isinstance(document, dict):
        raise SourceError("the repository signatures document is not a JSON object", path=where)
    if "allRepositorySigned" not in document:
        raise SourceError("the repository signatures document has no allRepositorySigned", path=where)
    all_signed = document["allRepositorySigned"]
    if not isinstance(all_signed, bool):
        raise SourceError("allRepositorySigned must be true or false", path=where)
    if all_signed and resource_type != "RepositorySignatures/5.0.0":
        raise SourceError(f"allRepositorySigned must be false in {resource_type}", path=where)
    entries = document.get("signingCertificates")
    if not isinstance(entries, list):
        raise SourceError("the repository signatures document has no signingCertificates list", path=where)
    if not entries:
        raise SourceError("the repository lists no signing certificates; there is nothing to trust", path=where)
    certificates = []
    for number, entry in enumerate(entries, 1):
        label = f"signingCertificates[{number}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("fingerprints"), dict):
            raise SourceError(f"{label} has no fingerprints object", path=where)
        fingerprint = entry["fingerprints"].get(SHA256_OID)
        if not isinstance(fingerprint, str) or not re.fullmatch(r"[0-9A-Fa-f]{64}", fingerprint):
            raise SourceError(f"{label} has no SHA-256 fingerprint ({SHA256_OID}) of 64 hex digits", path=where)
        content_url = entry.get("contentUrl")
        if not isinstance(content_url, str):
            raise SourceError(f"{label} has no contentUrl", path=where)
        check_url(content_url, f"{label} contentUrl", where)
        certificates.append(
            RepositoryCertificate(
                fingerprint=fingerprint.upper(),
                subject=_text(entry.get("subject")),
                issuer=_text(entry.get("issuer")),
                not_before=_text(entry.get("notBefore")),
                not_after=_text(entry.get("notAfter")),
                content_url=content_url,
            )
        )
    return RepositorySignatures(service_index, resource_url, resource_type, all_signed, tuple(certificates))


def fetch_repository_signatures(service_index: str, *, timeout: float = DEFAULT_TIMEOUT) -> RepositorySignatures:
    """Read the source's service index, then its RepositorySignatures document."""
    index = fetch_json(service_index, "the service index", timeout=timeout)
    resource_url, resource_type = find_resource(index, service_index)
    document = fetch_json(resource_url, "the repository signatures document", timeout=timeout)
    return parse_repository_signatures(document, resource_url, resource_type, service_index)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
