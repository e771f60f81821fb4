"""Trust anchors for code signing and for time stamping (verify.md §8).

NuGet on Linux/macOS trusts exactly the roots of two PEM bundles shipped with the .NET SDK
(`codesignctl.pem`, `timestampctl.pem`) and ignores the OS store. `TrustStore.bundled()` is that
preset; `--trust-store` replaces both bundles, `--extra-roots` adds to both.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from pathlib import Path

from asn1crypto import pem, x509

from trustpolicy.errors import TrustPolicyError
from trustpolicy.resources import DATA_DIR

__all__ = ["PURPOSES", "TrustStore", "load_certificates"]

PURPOSES = ("code_signing", "time_stamping")


def load_certificates(path: str | Path) -> tuple[x509.Certificate, ...]:
    """Every certificate of a PEM bundle (or of a single DER certificate).

    Raises TrustPolicyError naming the file when it is missing, unreadable, holds a non-certificate
    PEM block, a certificate that does not parse, or no certificate at all.
    """
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise TrustPolicyError(f"cannot read certificate file: {exc.strerror or exc}", path=name) from exc
    if not data.strip():
        raise TrustPolicyError("holds no certificate", path=name)
    try:
        if pem.detect(data):
            blocks = list(pem.unarmor(data, multiple=True))
        else:
            blocks = [("CERTIFICATE", {}, data)]
        certs = []
        for kind, _headers, der in blocks:
            if kind not in ("CERTIFICATE", "X509 CERTIFICATE"):
                raise TrustPolicyError(f"holds a {kind!r} PEM block, expected only CERTIFICATE", path=name)
            certs.append(_parsed(der))
    except TrustPolicyError:
        raise
    except (ValueError, TypeError, KeyError) as exc:  # asn1crypto's ways of saying "not DER"
        raise TrustPolicyError(f"not a valid PEM/DER certificate file ({exc})", path=name) from exc
    if not certs:
        raise TrustPolicyError("holds no certificate", path=name)
    return tuple(certs)


def _parsed(der: bytes) -> x509.Certificate:
    cert = x509.Certificate.load(der, strict=True)
    # asn1crypto parses lazily: touch what chain building uses so a broken file fails here, not later.
    # (Not the names' values: subject.hashable costs ~0.5 ms a root; the trust manager computes it
    # once per purpose, only for a purpose that is used.)
    cert.subject, cert.issuer, cert.public_key.dump(), cert.not_valid_after
    return cert


def _dedup(certs: Iterable[x509.Certificate]) -> tuple[x509.Certificate, ...]:
    seen: dict[bytes, x509.Certificate] = {}
    for cert in certs:
        seen.setdefault(cert.sha256, cert)
    return tuple(seen.values())


class TrustStore:
    """Roots for code signing and for time stamping. Immutable; build it once per process."""

    def __init__(
        self,
        code_signing: Iterable[x509.Certificate],
        time_stamping: Iterable[x509.Certificate],
        description: str,
    ) -> None:
        self.code_signing: tuple[x509.Certificate, ...] = _dedup(code_signing)
        self.time_stamping: tuple[x509.Certificate, ...] = _dedup(time_stamping)
        self.description = description
        # Identity for caches: two stores with the same roots answer the same.
        self.key: tuple[frozenset[bytes], frozenset[bytes]] = (
            frozenset(c.sha256 for c in self.code_signing),
            frozenset(c.sha256 for c in self.time_stamping),
        )

    def roots(self, purpose: str) -> tuple[x509.Certificate, ...]:
        if purpose == "code_signing":
            return self.code_signing
        if purpose == "time_stamping":
            return self.time_stamping
        raise ValueError(f"unknown purpose {purpose!r}; expected one of {PURPOSES}")

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
            roots = [c for p in paths for c in load_certificates(p)]
            store = cls(roots, roots, f"trust store {', '.join(map(str, paths))} ({len(_dedup(roots))} roots)")
        else:
            store = cls.bundled()
        extra_paths = [Path(p) for p in extra]
        if not extra_paths:
            return store
        certs = [c for p in extra_paths for c in load_certificates(p)]
        return store.with_extra_roots(certs, source=", ".join(map(str, extra_paths)))

    def with_extra_roots(self, certs: Iterable[x509.Certificate], *, source: str | None = None) -> TrustStore:
        """A new store trusting `certs` as well, for both purposes."""
        certs = _dedup(certs)
        where = f" from {source}" if source else ""
        return TrustStore(
            self.code_signing + certs,
            self.time_stamping + certs,
            f"{self.description} + {len(certs)} extra root{'s' if len(certs) != 1 else ''}{where}",
        )

    def __repr__(self) -> str:
        return f"TrustStore({self.description!r})"


@functools.cache
def _bundled() -> TrustStore:
    code = load_certificates(DATA_DIR / "codesignctl.pem")
    stamp = load_certificates(DATA_DIR / "timestampctl.pem")
    return TrustStore(
        code,
        stamp,
        f"bundled .NET SDK roots ({len(_dedup(code))} code signing, {len(_dedup(stamp))} time stamping)",
    )
