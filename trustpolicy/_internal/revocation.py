"""Revocation data: where CRLs and OCSP responses come from (docs/verification.md §7).

`RevocationFetcher` only *collects* revocation information; `chain.ChainValidator` hands it to
pyhanko-certvalidator, which checks signatures, freshness and revocation times. Sources, in order:

- the `data_dirs` (DER/PEM CRLs and OCSP responses the user supplies, e.g. `--revocation-data`);
- the on-disk cache (responses fetched by earlier runs);
- the network (mode "online" only): OCSP (AIA) first, then CRLs (CDP), plain HTTP(S).

A closed network must never hang verification: every request runs under a hard per-request
timeout and the run has a total network budget. Anything that fails is simply missing data, which
the validator reports as revocation "unknown" (soft fail), never as an error.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeAlias

from asn1crypto import algos, crl, ocsp, pem, x509

from trustpolicy._internal import clock
from trustpolicy._internal.net import with_deadline
from trustpolicy._internal.verify.settings import RevocationOptions
from trustpolicy.errors import TrustPolicyError

__all__ = [
    "RevocationFetcher",
    "RevocationOptions",
    "load_revocation_file",
    "ocsp_request",
    "revinfo_times",
]

_MAX_REDIRECTS = 5
_USER_AGENT = "trustpolicy-revocation/1"

RevInfo: TypeAlias = crl.CertificateList | ocsp.OCSPResponse


# --------------------------------------------------------------------------- parsing


def _crl_from_der(der: bytes) -> crl.CertificateList:
    value = crl.CertificateList.load(der, strict=True)
    # asn1crypto is lazy: touch what validation needs so garbage fails here.
    value.issuer.hashable, value["tbs_cert_list"]["this_update"].native, value["tbs_cert_list"]["next_update"].native
    value["signature"].native  # noqa: B018 - parsed for its error
    return value


def _ocsp_from_der(der: bytes) -> ocsp.OCSPResponse:
    value = ocsp.OCSPResponse.load(der, strict=True)
    status = value["response_status"].native
    if status != "successful":
        raise ValueError(f"OCSP response status is {status!r}")
    basic = value.basic_ocsp_response
    for single in basic["tbs_response_data"]["responses"]:
        single["cert_id"].native, single["cert_status"].name, single["this_update"].native
    basic["signature"].native  # noqa: B018 - parsed for its error
    return value


def _parse_one(der: bytes) -> RevInfo:
    errors = []
    for parse in (_crl_from_der, _ocsp_from_der):
        try:
            return parse(der)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            errors.append(str(exc) or type(exc).__name__)
    raise ValueError("neither a CRL nor a successful OCSP response (" + "; ".join(errors) + ")")


def load_revocation_file(path: str | Path) -> list[RevInfo]:
    """The CRLs / OCSP responses of one user-supplied file: one DER object, or PEM blocks.

    Raises TrustPolicyError naming the file when it is unreadable or holds anything else.
    """
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TrustPolicyError(f"cannot read revocation data: {exc.strerror or exc}", path=str(path)) from exc
    try:
        if pem.detect(data):
            items = [_parse_one(der) for _kind, _headers, der in pem.unarmor(data, multiple=True)]
        else:
            items = [_parse_one(data)]
    except ValueError as exc:
        raise TrustPolicyError(f"not usable revocation data: {exc}", path=str(path)) from exc
    if not items:
        raise TrustPolicyError("not usable revocation data: no CRL or OCSP response in it", path=str(path))
    return items


def revinfo_times(items: Iterable[RevInfo], certs: Iterable[x509.Certificate] = ()) -> set[datetime]:
    """Moments at which a validation answer based on `items` may change: thisUpdate/nextUpdate,
    and the revocation dates the data states for `certs` (a revocation after the moment is "good"
    before it and "revoked" after it)."""
    serials = {c["tbs_certificate"]["serial_number"].dump() for c in certs}
    times: set[datetime] = set()
    for item in items:
        if isinstance(item, crl.CertificateList):
            tbs = item["tbs_cert_list"]
            times.update(t for t in (tbs["this_update"].native, tbs["next_update"].native) if t)
            if serials:
                for entry in tbs["revoked_certificates"]:
                    if entry["user_certificate"].dump() in serials:
                        times.add(entry["revocation_date"].native)
        else:
            basic = item.basic_ocsp_response
            for single in basic["tbs_response_data"]["responses"]:
                times.update(t for t in (single["this_update"].native, single["next_update"].native) if t)
                if single["cert_status"].name == "revoked":
                    times.add(single["cert_status"].chosen["revocation_time"].native)
    return times


def _digest(item: RevInfo) -> bytes:
    return hashlib.sha256(item.dump()).digest()


def _next_update(item: RevInfo) -> datetime | None:
    if isinstance(item, crl.CertificateList):
        return item["tbs_cert_list"]["next_update"].native
    updates = [s["next_update"].native for s in item.basic_ocsp_response["tbs_response_data"]["responses"]]
    return min(updates) if updates and all(updates) else None


# --------------------------------------------------------------------------- OCSP requests


def _cert_id(cert: x509.Certificate, issuer: x509.Certificate) -> ocsp.CertId:
    return ocsp.CertId(
        {
            "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha1"}),
            "issuer_name_hash": hashlib.sha1(cert.issuer.dump()).digest(),
            "issuer_key_hash": issuer.public_key.sha1,
            "serial_number": cert.serial_number,
        }
    )


def ocsp_request(cert: x509.Certificate, issuer: x509.Certificate) -> bytes:
    """DER OCSPRequest for one certificate (no nonce, so responses can be cached)."""
    request = {"tbs_request": {"request_list": [{"req_cert": _cert_id(cert, issuer)}]}}
    return ocsp.OCSPRequest(request).dump()


def _ocsp_is_definitive(response: ocsp.OCSPResponse, cert: x509.Certificate) -> bool:
    """The response says good or revoked for this serial (so CRLs need not be fetched)."""
    for single in response.basic_ocsp_response["tbs_response_data"]["responses"]:
        if single["cert_id"]["serial_number"].native == cert.serial_number:
            return single["cert_status"].name in ("good", "revoked")
    return False


# --------------------------------------------------------------------------- URLs


def _http_urls(urls: Iterable[str]) -> list[str]:
    return [u for u in urls if u.lower().startswith(("http://", "https://"))]


def crl_urls(cert: x509.Certificate) -> list[str]:
    """HTTP(S) CRL distribution points of a certificate (LDAP and relative names are skipped)."""
    urls: list[str] = []
    try:
        points = cert.crl_distribution_points_value or []
        for point in points:
            name = point["distribution_point"]
            if name.name != "full_name":
                continue
            urls += [g.native for g in name.chosen if g.name == "uniform_resource_identifier"]
    except (ValueError, TypeError, KeyError):
        return []  # malformed extension: no usable URL, revocation stays unknown
    return _http_urls(urls)


def ocsp_urls(cert: x509.Certificate) -> list[str]:
    try:
        return _http_urls(cert.ocsp_urls)
    except (ValueError, TypeError, KeyError):
        return []


# --------------------------------------------------------------------------- HTTP


class _FetchError(Exception):
    pass


class _Unreachable(_FetchError):
    """No answer at all within the time limit."""


def _exchange(url: str, body: bytes | None, deadline: float, max_bytes: int) -> bytes:
    """GET (body None) or POST an OCSP request; follows a few redirects; enforces deadline and size."""
    seen: set[str] = set()
    for _ in range(_MAX_REDIRECTS + 1):
        if url in seen:
            raise _FetchError(f"redirect loop at {url}")
        seen.add(url)
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _FetchError(f"unsupported URL {url}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise _FetchError("timed out")
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname, parts.port, timeout=remaining)
        response: http.client.HTTPResponse | None = None
        try:
            target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
            headers = {"User-Agent": _USER_AGENT, "Connection": "close"}
            if body is not None:
                headers["Content-Type"] = "application/ocsp-request"
            conn.request("POST" if body is not None else "GET", target, body=body, headers=headers)
            response = conn.getresponse()
            if response.status in (301, 302, 303, 307, 308):
                location = response.getheader("Location")
                if not location:
                    raise _FetchError(f"HTTP {response.status} without Location")
                url = urllib.parse.urljoin(url, location)
                continue
            if response.status != 200:
                raise _FetchError(f"HTTP {response.status}")
            length = response.getheader("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise _FetchError(f"response of {length} bytes exceeds the {max_bytes}-byte cap")
            chunks: list[bytes] = []
            size = 0
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise _FetchError("timed out")
                if conn.sock is not None:
                    conn.sock.settimeout(remaining)
                chunk = response.read(65536)
                if not chunk:
                    return b"".join(chunks)
                size += len(chunk)
                if size > max_bytes:
                    raise _FetchError(f"response exceeds the {max_bytes}-byte cap")
                chunks.append(chunk)
        finally:
            if response is not None:
                response.close()  # owns the socket once the connection handed it over
            conn.close()
    raise _FetchError("too many redirects")


def _bounded(fn: Callable[[], bytes], timeout: float) -> bytes:
    try:
        return with_deadline(fn, timeout, name="trustpolicy-revocation-fetch")
    except TimeoutError as exc:
        raise _Unreachable(str(exc)) from None


# --------------------------------------------------------------------------- the fetcher


class RevocationFetcher:
    """Collects CRLs and OCSP responses for certificates; one per run (memoizes per URL).

    `requests` counts network requests actually made; `failures` maps a URL to why it gave nothing.
    """

    def __init__(self, options: RevocationOptions, *, now: Callable[[], datetime] = clock.now) -> None:
        self.options = options
        self._now = now
        self.requests = 0
        self.failures: dict[str, str] = {}
        self._spent = 0.0
        self._memo: dict[str, RevInfo | None] = {}
        self._dead_hosts: set[str] = set()
        self._data_crls: dict[Any, list[crl.CertificateList]] = {}
        self._data_ocsps: dict[int, list[ocsp.OCSPResponse]] = {}
        if options.mode != "off":
            self._load_data_dirs(options.data_dirs)

    # -- user data -----------------------------------------------------------------------

    def _load_data_dirs(self, dirs: tuple[Path, ...]) -> None:
        for directory in dirs:
            if not directory.is_dir():
                raise TrustPolicyError("revocation data directory does not exist", path=str(directory))
            for path in sorted(directory.rglob("*")):
                if path.name.startswith(".") or not path.is_file():
                    continue
                for item in load_revocation_file(path):
                    if isinstance(item, crl.CertificateList):
                        self._data_crls.setdefault(item.issuer.hashable, []).append(item)
                    else:
                        for single in item.basic_ocsp_response["tbs_response_data"]["responses"]:
                            serial = single["cert_id"]["serial_number"].native
                            self._data_ocsps.setdefault(serial, []).append(item)

    # -- public ----------------------------------------------------------------------------

    def collect(
        self, pairs: Iterable[tuple[x509.Certificate, x509.Certificate | None]]
    ) -> tuple[list[crl.CertificateList], list[ocsp.OCSPResponse]]:
        """Revocation data for each (certificate, issuer) of a path; the root is not asked (ExcludeRoot)."""
        crls: dict[bytes, crl.CertificateList] = {}
        ocsps: dict[bytes, ocsp.OCSPResponse] = {}
        if self.options.mode == "off":
            return [], []
        for cert, issuer in pairs:
            for item in self._data_crls.get(cert.issuer.hashable, ()):
                crls.setdefault(_digest(item), item)
            for response in self._data_ocsps.get(cert.serial_number, ()):
                ocsps.setdefault(_digest(response), response)
            definitive = False
            if issuer is not None:
                for url in ocsp_urls(cert):
                    response = self._get(url, issuer_cert=issuer, cert=cert)
                    if isinstance(response, ocsp.OCSPResponse):
                        ocsps.setdefault(_digest(response), response)
                        if _ocsp_is_definitive(response, cert):
                            definitive = True
                            break
            if definitive:
                continue
            for url in crl_urls(cert):
                item = self._get(url)
                if isinstance(item, crl.CertificateList):
                    crls.setdefault(_digest(item), item)
                    break  # one good CRL per certificate is enough (like the platform engines)
        return list(crls.values()), list(ocsps.values())

    # -- cache + network -----------------------------------------------------------------

    def _get(
        self, url: str, *, cert: x509.Certificate | None = None, issuer_cert: x509.Certificate | None = None
    ) -> RevInfo | None:
        body = ocsp_request(cert, issuer_cert) if cert is not None and issuer_cert is not None else None
        kind = "ocsp" if body is not None else "crl"
        key = hashlib.sha256(url.encode() + b"\0" + (body or b"")).hexdigest()
        if key in self._memo:
            return self._memo[key]
        cached = self._read_cache(kind, key)
        online = self.options.mode == "online"
        if cached is not None and (not online or self._fresh(cached)):
            self._memo[key] = cached
            return cached
        value: RevInfo | None = cached  # stale cache beats nothing if the network fails
        if online:
            fetched = self._fetch(url, body, kind)
            if fetched is not None:
                value = fetched
                self._write_cache(kind, key, fetched.dump())
        self._memo[key] = value
        return value

    def _fresh(self, item: RevInfo) -> bool:
        next_update = _next_update(item)
        return next_update is not None and self._now() < next_update

    def _fetch(self, url: str, body: bytes | None, kind: str) -> RevInfo | None:
        host = urllib.parse.urlsplit(url).netloc.lower()
        if host in self._dead_hosts:
            self.failures[url] = f"{host} did not answer earlier in this run"
            return None
        remaining = self.options.budget - self._spent
        if remaining <= 0:
            self.failures[url] = "revocation network budget exhausted"
            return None
        timeout = min(self.options.timeout, remaining)
        self.requests += 1
        start = time.monotonic()
        try:
            data = _bounded(
                lambda: _exchange(url, body, time.monotonic() + timeout, self.options.max_response_bytes),
                timeout,
            )
            item = _crl_from_der(data) if kind == "crl" else _ocsp_from_der(data)
        except Exception as exc:  # network, HTTP, TLS or parse failure: data is just missing
            if isinstance(exc, (OSError, _Unreachable)):
                # No connection (DNS, refused, reset, timeout): do not pay for this host again.
                self._dead_hosts.add(host)
            self.failures[url] = str(exc) if isinstance(exc, _FetchError) else f"{type(exc).__name__}: {exc}"
            return None
        finally:
            self._spent += time.monotonic() - start
        self.failures.pop(url, None)
        return item

    def _cache_path(self, kind: str, key: str) -> Path:
        return self.options.effective_cache_dir / kind / f"{key}.der"

    def _read_cache(self, kind: str, key: str) -> RevInfo | None:
        try:
            data = self._cache_path(kind, key).read_bytes()
        except OSError:
            return None
        try:
            return _crl_from_der(data) if kind == "crl" else _ocsp_from_der(data)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None  # a damaged entry is a miss; the next successful fetch replaces it

    def _write_cache(self, kind: str, key: str, data: bytes) -> None:
        """Atomic (temp file + rename in the same directory): concurrent runs never read a partial
        entry, and the last writer wins. A cache that cannot be written is not an error."""
        target = self._cache_path(kind, key)
        tmp: str | None = None
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{key[:16]}.", suffix=".tmp", dir=target.parent)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, target)
            tmp = None
        except OSError:
            pass
        finally:
            if tmp is not None:
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
