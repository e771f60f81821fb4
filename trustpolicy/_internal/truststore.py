"""Trust anchors for code signing and for time stamping (docs/verification.md §8).

NuGet on Linux/macOS trusts exactly the roots of two PEM bundles shipped with the .NET SDK
(`codesignctl.pem`, `timestampctl.pem`) and ignores the OS store. `TrustStore.bundled()` is that
preset; `--trust-store` replaces both bundles, `--extra-roots` adds to both.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from asn1crypto import pem

from trustpolicy._internal.resources import DATA_DIR
from trustpolicy.errors import TrustPolicyError

if TYPE_CHECKING:
    from asn1crypto import x509

__all__ = ["PURPOSES", "TrustStore", "load_certificates"]

PURPOSES = ("code_signing", "time_stamping")


def load_certificates(path: str | Path) -> tuple[x509.Certificate, ...]:
    """Every certificate of a PEM bundle (or of a single DER certificate).

    Raises TrustPolicyError naming the file when it is missing, unreadable, holds a non-certificate
    PEM block, a certificate that does not parse, or no certificate at all.
    """
    name = str(path)
    try:
        return tuple(_parsed(der) for der in _der_blocks(path))
    except TrustPolicyError:
        raise
    except (ValueError, TypeError, KeyError) as exc:  # asn1crypto's ways of saying "not DER"
        raise TrustPolicyError(f"not a valid PEM/DER certificate file ({exc})", path=name) from exc


def _der_blocks(path: str | Path) -> list[bytes]:
    """The DER of each certificate block of a PEM bundle (or the file itself when it is not PEM), unparsed."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TrustPolicyError(f"cannot read certificate file: {exc.strerror or exc}", path=name) from exc
    if not data.strip():
        raise TrustPolicyError("holds no certificate", path=name)
    try:
        blocks = list(pem.unarmor(data, multiple=True)) if pem.detect(data) else [("CERTIFICATE", {}, data)]
    except ValueError as exc:
        raise TrustPolicyError(f"not a valid PEM/DER certificate file ({exc})", path=name) from exc
    for kind, _headers, _der in blocks:
        if kind not in ("CERTIFICATE", "X509 CERTIFICATE"):
            raise TrustPolicyError(f"holds a {kind!r} PEM block, expected only CERTIFICATE", path=name)
    if not blocks:
        raise TrustPolicyError("holds no certificate", path=name)
    return [der for _kind, _headers, der in blocks]


def _parsed(der: bytes) -> x509.Certificate:
    from asn1crypto import x509  # only when a root is parsed: a check answered from the cache parses none

    cert = x509.Certificate.load(der, strict=True)
    # asn1crypto parses lazily: touch what chain building uses so a broken file fails here, not later.
    # (Not the names' values: subject.hashable costs ~0.5 ms a root; the trust manager computes it
    # once per purpose, only for a purpose that is used.)
    cert.subject, cert.issuer, cert.public_key.dump(), cert.not_valid_after
    return cert


def _encoded(cert: x509.Certificate | bytes) -> bytes:
    return cert if isinstance(cert, bytes) else cert.dump()


class TrustStore:
    """Roots for code signing and for time stamping. Immutable; build it once per process.

    Roots are kept as DER and parsed the first time a purpose is asked for: a check whose verdicts
    all come from the cache never parses the ~630 bundled roots. Roots given as DER must come from
    a trusted source (the bundled files); user files go through `load_certificates` first, so a
    broken one is refused before any work.
    """

    def __init__(
        self,
        code_signing: Iterable[x509.Certificate | bytes],
        time_stamping: Iterable[x509.Certificate | bytes],
        description: str,
    ) -> None:
        code_signing, time_stamping = tuple(code_signing), tuple(time_stamping)
        # Certificates given parsed are kept (and shared by both purposes), never parsed again.
        self._certificates = {c.dump(): c for c in (*code_signing, *time_stamping) if not isinstance(c, bytes)}
        self._der = {
            "code_signing": tuple(dict.fromkeys(map(_encoded, code_signing))),
            "time_stamping": tuple(dict.fromkeys(map(_encoded, time_stamping))),
        }
        self.description = description
        # Identity for caches: two stores with the same roots answer the same.
        self.key: tuple[frozenset[bytes], frozenset[bytes]] = (
            frozenset(hashlib.sha256(der).digest() for der in self._der["code_signing"]),
            frozenset(hashlib.sha256(der).digest() for der in self._der["time_stamping"]),
        )

    def roots(self, purpose: str) -> tuple[x509.Certificate, ...]:
        if purpose not in PURPOSES:
            raise ValueError(f"unknown purpose {purpose!r}; expected one of {PURPOSES}")
        return tuple(self._certificate(der) for der in self._der[purpose])

    def _certificate(self, der: bytes) -> x509.Certificate:
        if der not in self._certificates:
            self._certificates[der] = _parsed(der)
        return self._certificates[der]

    @property
    def code_signing(self) -> tuple[x509.Certificate, ...]:
        return self.roots("code_signing")

    @property
    def time_stamping(self) -> tuple[x509.Certificate, ...]:
        return self.roots("time_stamping")

    @classmethod
    def bundled(cls) -> TrustStore:
        """The .NET SDK fallback bundles shipped in trustpolicy/data (loaded once per process)."""
        return _bundled()

    @classmethod
    def from_files(
        cls, pem_paths: Iterable[str | Path] = (), *, extra: Iterable[str | Path] = ()
    ) -> TrustStore:
        """`--trust-store` files replace both bundles (none given: keep the bundled ones);
        `--extra-roots` files add to both."""
        paths = [Path(p) for p in pem_paths]
        if paths:
            roots = tuple({c.dump(): c for p in paths for c in load_certificates(p)}.values())
            store = cls(roots, roots, f"trust store {', '.join(map(str, paths))} ({len(roots)} roots)")
        else:
            store = cls.bundled()
        extra_paths = [Path(p) for p in extra]
        if not extra_paths:
            return store
        certs = [c for p in extra_paths for c in load_certificates(p)]
        return store.with_extra_roots(certs, source=", ".join(map(str, extra_paths)))

    def with_extra_roots(self, certs: Iterable[x509.Certificate], *, source: str | None = None) -> TrustStore:
        """A new store trusting `certs` as well, for both purposes."""
        certs = tuple({c.dump(): c for c in certs}.values())
        where = f" from {source}" if source else ""
        store = TrustStore(
            self._der["code_signing"] + certs,
            self._der["time_stamping"] + certs,
            f"{self.description} + {len(certs)} extra root{'s' if len(certs) != 1 else ''}{where}",
        )
        # Roots already parsed stay parsed, under the DER they were read from (dump() could re-encode
        # a root whose extensions have been read since).
        store._certificates = {**self._certificates, **store._certificates}
        return store

    def __repr__(self) -> str:
        return f"TrustStore({self.description!r})"


@functools.cache
def _bundled() -> TrustStore:
    # Shipped with the package and covered by the tests: held unparsed until a chain needs them.
    code = tuple(dict.fromkeys(_der_blocks(DATA_DIR / "codesignctl.pem")))
    stamp = tuple(dict.fromkeys(_der_blocks(DATA_DIR / "timestampctl.pem")))
    return TrustStore(code, stamp, f"bundled .NET SDK roots ({len(code)} code signing, {len(stamp)} time stamping)")
