"""Certificate chain building, trust and revocation (docs/verification.md §4.2 step A/B chain builds, §7, §8).

`ChainValidator.validate` answers, for one signer or TSA certificate at one moment: does it chain to
a root of the trust store for its purpose, is every certificate valid for that purpose, is anything
revoked? It mirrors what NuGet reads from the platform chain engine:

- application policy (EKU) id-kp-codeSigning / id-kp-timeStamping, checked on every certificate
  below the root; a certificate without an EKU extension is valid for all purposes (Windows);
- time validity is reported but never stops the other checks (NuGet builds with IgnoreNotTimeValid
  and judges validity itself, §4.2 B.5): the path is validated by pyhanko-certvalidator at the
  moment clamped into the certificates' common validity window, and "expired"/"not-yet-valid"
  are computed against the real moment;
- an untrusted root is still evaluated (revocation, EKU, signatures) with the chain's own
  self-signed root as a provisional anchor, as X509Chain reports UntrustedRoot next to the other
  flags; `trusted` is then False;
- revocation excludes the root (ExcludeRoot); missing or unusable data is "unknown" (soft fail);
  a revocation counts only if it happened before the moment.

Cost (measured by bench/chain_bench.py): the trust managers and the root registries are built once per validator; each
call layers the package's own certificates over them without re-registering the roots, and results
are cached per (leaf, intermediates, purpose, extra anchors) for the time window in which they hold.
The roots are indexed by cheap exact keys (`_Roots`, `_RootRegistry`) instead of pyhanko's normalised
names (~0.25 ms a root): RFC 4518 preparation runs only on the few roots a lookup can match.
"""

from __future__ import annotations

import asyncio
import bisect
import concurrent.futures
import enum
import re
from collections import ChainMap
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from asn1crypto import x509
from pyhanko_certvalidator.authority import Authority, AuthorityWithCert, CertTrustAnchor, TrustAnchor, TrustedServiceType
from pyhanko_certvalidator.context import ValidationContext
from pyhanko_certvalidator.errors import (
    ExpiredError,
    NotYetValidError,
    PathBuildingError,
    RevokedError,
    ValidationError,
)
from pyhanko_certvalidator.path import ValidationPath
from pyhanko_certvalidator.policy_decl import (
    CertRevTrustPolicy,
    DisallowWeakAlgorithmsPolicy,
    RevocationCheckingPolicy,
    RevocationCheckingRule,
)
from pyhanko_certvalidator.registry import CertificateRegistry, PathBuilder, SimpleTrustManager, TrustManager
from pyhanko_certvalidator.validate import async_validate_path

from trustpolicy._internal.asn1 import EKU_CODE_SIGNING, EKU_TIME_STAMPING
from trustpolicy._internal.revocation import RevocationFetcher, RevocationOptions, revinfo_times
from trustpolicy._internal.signature import distinguished_name
from trustpolicy._internal.truststore import PURPOSES, TrustStore

__all__ = ["ChainResult", "ChainStatus", "ChainValidator", "Revocation"]


class ChainStatus(enum.StrEnum):
    """A chain problem, worst first: `ChainResult.status` is the first that applies.

    revoked -> NU3012 Suspect; invalid / not-valid-for-usage -> NU3012 chain building issue;
    untrusted-root -> NU3018; expired / not-yet-valid -> NotTimeValid (NuGet judges B.5 itself).
    """

    REVOKED = "revoked"
    INVALID = "invalid"
    NOT_VALID_FOR_USAGE = "not-valid-for-usage"
    UNTRUSTED_ROOT = "untrusted-root"
    EXPIRED = "expired"
    NOT_YET_VALID = "not-yet-valid"
    VALID = "valid"

    @property
    def severity(self) -> int:
        """0 is the worst."""
        return _SEVERITY[self]


_SEVERITY = {status: index for index, status in enumerate(ChainStatus)}


class Revocation(enum.StrEnum):
    """What revocation checking found for the certificates below the root."""

    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"  # no usable CRL or OCSP answer: NuGet's soft fail
    NOT_CHECKED = "not-checked"  # mode off, or nothing below the root

_EKU = {"code_signing": EKU_CODE_SIGNING, "time_stamping": EKU_TIME_STAMPING}
_MAX_PATHS = 8  # candidate paths examined per chain (cross-signing gives a few, never many)
_EDGE = timedelta(seconds=2)  # results near a validity/revinfo boundary are not cached (pyhanko tolerance is 1 s)

# Chains may use SHA-1 and 1024-bit RSA issuers, as the Windows chain engine allows; the NuGet
# certificate rules (NU3013/NU3014/NU3022/NU3023) are the verifier's business, not the chain's.
_ALGORITHMS = DisallowWeakAlgorithmsPolicy(frozenset({"md2", "md5"}), rsa_key_size_threshold=1024)
_NO_CHECK = CertRevTrustPolicy(
    RevocationCheckingPolicy(RevocationCheckingRule.NO_CHECK, RevocationCheckingRule.NO_CHECK)
)
# Revocation is checked one certificate at a time: the certificate is the end of a truncated path
# and needs a CRL or an OCSP answer (InsufficientRevinfoError -> "unknown"); the CAs above it are
# not asked again. pyhanko would otherwise stop at the first certificate without an answer, and a
# revoked leaf behind an intermediate whose CRL is unreachable would go unnoticed.
# Data fetched today speaks about the past (retroactive): revoked after the moment = good then.
_REQUIRE = CertRevTrustPolicy(
    RevocationCheckingPolicy(RevocationCheckingRule.CRL_OR_OCSP_REQUIRED, RevocationCheckingRule.NO_CHECK),
    retroactive_revinfo=True,
)


@dataclass(frozen=True)
class ChainResult:
    """Outcome of one chain validation.

    trusted: the chain ends at a root of the store for the purpose (or at an extra trusted cert).
    revocation: what revocation checking found.
    revoked_at: when the revoked certificate was revoked (before the moment).
    path: the chain, leaf first, root last (the provisional self-signed root when untrusted).
    problems: every problem that applies, worst first.
    """

    trusted: bool
    revocation: Revocation
    revoked_at: datetime | None
    path: tuple[x509.Certificate, ...]
    message: str
    problems: tuple[ChainStatus, ...] = ()

    @classmethod
    def failed(cls, leaf: x509.Certificate, message: str) -> ChainResult:
        """A chain that could not be built or checked at all: invalid, fail closed."""
        return cls(False, Revocation.NOT_CHECKED, None, (leaf,), message, (ChainStatus.INVALID,))

    @property
    def status(self) -> ChainStatus:
        """The worst problem, VALID when there is none."""
        return self.problems[0] if self.problems else ChainStatus.VALID

    @property
    def valid(self) -> bool:
        return not self.problems

    @property
    def revoked(self) -> bool:
        return ChainStatus.REVOKED in self.problems or self.revocation is Revocation.REVOKED


# --------------------------------------------------------------------------- pyhanko plumbing


class _Anchors(TrustManager):
    """Union of trust managers. Not a SimpleTrustManager on purpose: ValidationContext re-registers
    every root of a SimpleTrustManager into the registry on each construction (83% of the cost)."""

    def __init__(self, *managers: TrustManager) -> None:
        self.managers = managers

    def is_root(self, cert: x509.Certificate) -> bool:
        return any(m.is_root(cert) for m in self.managers)

    def as_trust_anchor(self, authority: Authority) -> TrustAnchor | None:
        for manager in self.managers:
            anchor = manager.as_trust_anchor(authority)
            if anchor is not None:
                return anchor
        return None

    def find_potential_issuers(self, cert: x509.Certificate) -> Iterator[TrustAnchor]:
        for manager in self.managers:
            yield from manager.find_potential_issuers(cert)


# Names. pyhanko compares names by `Name.hashable` ("type: prepared value" per RDN, RFC 4518), which
# costs ~0.25 ms a root. The roots are bucketed by `_skeleton(hashable)`, the hashable's ASCII letters
# and digits in order: equal hashables have equal skeletons, so a lookup compares the real hashables
# of one bucket only. For a value that reads as printable ASCII, preparation only lowercases letters
# and changes spaces, so its skeleton is that of value.lower(): no preparation needed (a test checks
# this against asn1crypto for every printable character). Other values, and RDNs of several
# attributes, are prepared the exact way.

_NOT_ALNUM = re.compile("[^a-z0-9]+")


def _skeleton(text: str) -> str:
    return _NOT_ALNUM.sub("", text)


def _name_skeleton(name: x509.Name) -> str:
    """`_skeleton(name.hashable)`, preparing only what is not plain ASCII (raises as hashable would)."""
    parts = []
    for rdn in name.chosen:
        value = rdn[0]["value"].native if len(rdn) == 1 else None
        if isinstance(value, str) and value.isascii() and value.isprintable():
            parts.append(rdn[0]["type"].native + value.lower())
        else:
            parts.append(rdn.hashable)
    return _skeleton("".join(parts))


_ISSUING = (TrustedServiceType.UNSPECIFIED, TrustedServiceType.CERTIFICATE_AUTHORITY)


class _Roots(TrustManager):
    """The same answers as `SimpleTrustManager.build(roots)`, without normalising every root's name.

    pyhanko's anchor identity is (subject hashable, public key DER): the roots are indexed by their
    key bytes (is_root, as_trust_anchor) and by name skeleton (find_potential_issuers), and only the
    roots a lookup can match have their names compared, the pyhanko way. Of several roots with the
    same name and key, pyhanko keeps the first: so do these lookups.
    """

    def __init__(self, roots: Iterable[x509.Certificate]) -> None:
        self.anchors = tuple(CertTrustAnchor(cert) for cert in roots)
        self._by_key: dict[bytes, list[CertTrustAnchor]] = {}
        self._by_name: dict[str, list[CertTrustAnchor]] = {}
        for anchor in self.anchors:
            cert = anchor.certificate
            self._by_key.setdefault(cert.public_key.dump(), []).append(anchor)
            self._by_name.setdefault(_name_skeleton(cert.subject), []).append(anchor)

    def named(self, hashable: str) -> list[CertTrustAnchor]:
        """The roots whose subject's hashable is `hashable`, in the store's order."""
        return [a for a in self._by_name.get(_skeleton(hashable), ()) if a.certificate.subject.hashable == hashable]

    def is_root(self, cert: x509.Certificate) -> bool:
        subject = cert.subject.hashable
        return any(a.certificate.subject.hashable == subject for a in self._by_key.get(cert.public_key.dump(), ()))

    def as_trust_anchor(self, authority: Authority) -> TrustAnchor | None:
        authority.name.hashable  # noqa: B018 - pyhanko's lookup starts with it: a name it cannot prepare fails alike
        for anchor in self._by_key.get(authority.public_key.dump(), ()):
            if anchor.authority == authority:
                return anchor
        return None

    def find_potential_issuers(self, cert: x509.Certificate) -> Iterator[TrustAnchor]:
        seen: set[bytes] = set()
        for anchor in self.named(cert.issuer.hashable):
            key = anchor.certificate.public_key.dump()
            if key in seen:  # same name and key as an earlier root: one anchor
                continue
            seen.add(key)
            if anchor.trust_qualifiers.trusted_service_type in _ISSUING and anchor.authority.is_potential_issuer_of(cert):
                yield anchor

    def iter_certs(self) -> Iterator[x509.Certificate]:
        return (anchor.certificate for anchor in dict.fromkeys(self.anchors))  # one per identity


class _RootRegistry:
    """What `CertificateRegistry.build(roots)` holds, for `_CallRegistry` to read through.

    `certs` (issuer+serial -> root; the first of equal ones wins, and only it is indexed further) is
    built at once; names go through `_Roots`; key hashes and key identifiers, which only OCSP
    responder lookups ask for, are computed for every root on the first such lookup.
    """

    def __init__(self, roots: _Roots) -> None:
        self._roots = roots
        self.certs: dict[bytes, x509.Certificate] = {}
        for anchor in roots.anchors:
            self.certs.setdefault(anchor.certificate.issuer_serial, anchor.certificate)
        self._key_hashes: dict[bytes, list[x509.Certificate]] | None = None
        self._key_ids: dict[bytes, list[x509.Certificate]] | None = None

    def _registered(self) -> list[x509.Certificate]:
        return [a.certificate for a in self._roots.anchors if self.certs[a.certificate.issuer_serial] is a.certificate]

    def by_name(self, hashable: str) -> list[x509.Certificate]:
        return [a.certificate for a in self._roots.named(hashable) if self.certs[a.certificate.issuer_serial] is a.certificate]

    def by_key_hash(self, key_hash: bytes) -> list[x509.Certificate]:
        if self._key_hashes is None:
            index: dict[bytes, list[x509.Certificate]] = {}
            for cert in self._registered():
                index.setdefault(cert.public_key.sha1, []).append(cert)
            self._key_hashes = index
        return self._key_hashes.get(key_hash, [])

    def by_key_identifier(self, key_identifier: bytes) -> list[x509.Certificate]:
        if self._key_ids is None:
            index: dict[bytes, list[x509.Certificate]] = {}
            for cert in self._registered():  # pyhanko files a root without one under its key hash
                index.setdefault(cert.key_identifier or cert.public_key.sha1, []).append(cert)
            self._key_ids = index
        return self._key_ids.get(key_identifier, [])


class _Layer(dict):  # type: ignore[type-arg]
    """A per-call index over a shared one: reads fall through, writes stay local."""

    def __init__(self, base: Callable[[Any], list[x509.Certificate]]) -> None:
        super().__init__()
        self._base = base

    def __missing__(self, key: Any) -> list[x509.Certificate]:
        value = list(self._base(key))
        self[key] = value
        return value


class _CallRegistry(CertificateRegistry):
    """The shared root registry plus one package's certificates, without copying the roots.

    Each call sees only its own certificates (and whatever pyhanko registers from its OCSP
    responses), so one package's intermediates never complete another package's chain. Lookups
    answer the roots first, then the call's certificates, as a registry holding both would.
    """

    def __init__(self, base: _RootRegistry, certs: Iterable[x509.Certificate]) -> None:
        super().__init__()
        self._base = base
        self.certs = ChainMap({}, base.certs)  # type: ignore[assignment]
        self._subject_map = _Layer(base.by_name)
        # register() files every certificate under its key hash and key identifier too: keep those
        # maps local so that registering never makes the base hash all the roots' keys.
        for cert in certs:
            self.register(cert)

    def retrieve_many_by_key_identifier(self, key_identifier: bytes) -> list[x509.Certificate]:
        return [*self._base.by_key_identifier(key_identifier), *self._key_identifier_map.get(key_identifier, ())]

    def retrieve_many_by_key_hash(self, key_hash: bytes) -> list[x509.Certificate]:
        return [*self._base.by_key_hash(key_hash), *self._key_hash_map.get(key_hash, ())]


# --------------------------------------------------------------------------- validator


def _aware(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("moment must be a timezone-aware datetime")
    return moment


def _describe(cert: x509.Certificate) -> str:
    try:
        return distinguished_name(cert.subject)
    except Exception:  # a subject asn1crypto cannot render must not hide the real finding
        return f"serial {cert.serial_number}"


_INTERMEDIATE = re.compile(r"intermediate certificate (\d+)")


def _named(message: str, path: ValidationPath) -> str:
    """pyhanko says "intermediate certificate 1" / "end-entity certificate": name them."""
    below_root = list(path.iter_certs(include_root=False))

    def intermediate(match: re.Match[str]) -> str:
        index = int(match.group(1)) - 1
        return f"intermediate certificate {_describe(below_root[index])}" if 0 <= index < len(below_root) else match.group(0)

    message = _INTERMEDIATE.sub(intermediate, message)
    if below_root:
        message = message.replace("end-entity certificate", f"certificate {_describe(below_root[-1])}")
    return message


def _ekus(cert: x509.Certificate) -> set[str] | None:
    value = cert.extended_key_usage_value
    return None if value is None else {purpose.dotted for purpose in value}


@dataclass
class _Outcome:
    """A candidate path's findings while they are collected (ChainResult is the frozen answer)."""

    trusted: bool
    problems: list[ChainStatus]
    revocation: Revocation
    revoked_at: datetime | None
    path: tuple[x509.Certificate, ...]
    messages: list[str]

    def result(self) -> ChainResult:
        problems = tuple(sorted(set(self.problems), key=_SEVERITY.__getitem__))
        message = "; ".join(self.messages) if self.messages else "chain is valid"
        return ChainResult(self.trusted, self.revocation, self.revoked_at, self.path, message, problems)

    @property
    def score(self) -> int:  # higher is better: index of the worst problem
        return min((_SEVERITY[p] for p in self.problems), default=len(_SEVERITY))


class ChainValidator:
    """One per process (or per worker): shared trust managers, root registries and result cache.

    Not thread-safe. `stats` counts validations actually run and cache hits.
    """

    def __init__(
        self,
        trust_store: TrustStore,
        revocation: RevocationOptions | None = None,
        *,
        fetcher: RevocationFetcher | None = None,
    ) -> None:
        self.trust_store = trust_store
        self.revocation = revocation or RevocationOptions("off")
        self.fetcher = fetcher or RevocationFetcher(self.revocation)
        self._managers: dict[str, _Roots] = {}
        self._registries: dict[str, _RootRegistry] = {}
        self._cache: dict[tuple[Any, ...], list[tuple[datetime, datetime, ChainResult]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.stats = {"validations": 0, "cache_hits": 0}

    def clear_cache(self) -> None:
        """Forget cached results (e.g. between runs that must see fresh revocation data)."""
        self._cache.clear()

    def close(self) -> None:
        if self._loop is not None:
            self._loop.close()
            self._loop = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: nothing useful to do
            pass

    def __enter__(self) -> ChainValidator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- public ------------------------------------------------------------------------

    def validate(
        self,
        leaf: x509.Certificate,
        intermediates: Iterable[x509.Certificate],
        *,
        moment: datetime,
        purpose: str,
        extra_trusted: Iterable[x509.Certificate] = (),
    ) -> ChainResult:
        """Validate `leaf` for `purpose` ("code_signing" | "time_stamping") at `moment`.

        intermediates: certificates that may complete the chain (the signature's certificate set).
        extra_trusted: certificates to treat as trust anchors for this call only (test roots).
        When it holds the leaf itself (a trustedSigners entry with allowUntrustedRoot), an untrusted
        root is accepted but the chain is still built and checked: a partial chain stays "invalid",
        a wrong EKU or a revocation still count. Findings never raise; ValueError only for a naive
        moment or an unknown purpose.
        """
        if purpose not in PURPOSES:
            raise ValueError(f"unknown purpose {purpose!r}; expected one of {PURPOSES}")
        moment = _aware(moment)
        extra = tuple({c.sha256: c for c in extra_trusted}.values())
        others = tuple({c.sha256: c for c in intermediates if c.sha256 != leaf.sha256}.values())
        key = (
            leaf.sha256,
            frozenset(c.sha256 for c in others),
            purpose,
            frozenset(c.sha256 for c in extra),
        )
        for low, high, cached in self._cache.get(key, ()):
            if low < moment < high:
                self.stats["cache_hits"] += 1
                return cached
        self.stats["validations"] += 1
        boundaries: set[datetime] = set()
        try:
            result = self._run(self._validate(leaf, others, extra, moment, purpose, boundaries))
        except Exception as exc:  # fail closed: an unexpected library error is an invalid chain
            return ChainResult.failed(leaf, f"chain validation failed: {exc!r}")
        window = _window(moment, boundaries)
        if window is not None:
            self._cache.setdefault(key, []).append((*window, result))
        return result

    # -- internals -----------------------------------------------------------------------

    def _run(self, coroutine: Any) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:  # called from async code: this thread's loop is busy, use a private thread
            with concurrent.futures.ThreadPoolExecutor(1) as pool:
                return pool.submit(asyncio.run, coroutine).result()
        if self._loop is None:
            self._loop = asyncio.new_event_loop()
        return self._loop.run_until_complete(coroutine)

    def _manager(self, purpose: str) -> _Roots:
        if purpose not in self._managers:
            roots = _Roots(self.trust_store.roots(purpose))
            self._registries[purpose] = _RootRegistry(roots)
            self._managers[purpose] = roots
        return self._managers[purpose]

    async def _validate(
        self,
        leaf: x509.Certificate,
        others: tuple[x509.Certificate, ...],
        extra: tuple[x509.Certificate, ...],
        moment: datetime,
        purpose: str,
        boundaries: set[datetime],
    ) -> ChainResult:
        for cert in (leaf, *others, *extra):
            boundaries.update((cert.not_valid_before, cert.not_valid_after))
        # The leaf itself in extra_trusted is NuGet's allowUntrustedRoot: whatever root the chain
        # ends in is accepted, but the chain is still built and checked (a partial chain, a wrong
        # EKU or a revocation still count). Other extra certificates are plain trust anchors.
        trust_leaf = any(c.sha256 == leaf.sha256 for c in extra)
        anchor_certs = tuple(c for c in extra if c.sha256 != leaf.sha256)
        base = self._manager(purpose)
        anchors = _Anchors(base, SimpleTrustManager.build(anchor_certs)) if anchor_certs else _Anchors(base)
        registry = _CallRegistry(self._registries[purpose], (*others, *anchor_certs))
        trusted = True
        paths, missing = await _candidate_paths(leaf, anchors, registry)
        if not paths:
            # UntrustedRoot vs PartialChain: does the chain reach a self-signed certificate?
            provisional = [c for c in (leaf, *others) if c.self_signed in ("yes", "maybe")]
            if provisional:
                anchors = _Anchors(*anchors.managers, SimpleTrustManager.build(provisional))
                paths, missing = await _candidate_paths(leaf, anchors, registry)
                trusted = trust_leaf
        if not paths:
            message = f"no chain to a trusted root (partial chain): {missing}"
            return ChainResult.failed(leaf, message)
        best: _Outcome | None = None
        for path in paths:
            outcome = await self._check(path, trusted, anchors, registry, moment, purpose, boundaries)
            if best is None or outcome.score > best.score:
                best = outcome
            if not outcome.problems:
                break
        assert best is not None
        return best.result()

    def _context(
        self,
        anchors: _Anchors,
        registry: CertificateRegistry,
        moment: datetime,
        policy: CertRevTrustPolicy = _NO_CHECK,
        revinfo: tuple[list[Any], list[Any]] = ([], []),
    ) -> ValidationContext:
        return ValidationContext(
            trust_manager=anchors,
            certificate_registry=registry,
            moment=moment,
            algorithm_usage_policy=_ALGORITHMS,
            revinfo_policy=policy,
            crls=revinfo[0],
            ocsps=revinfo[1],
        )

    async def _revocation(
        self,
        path: ValidationPath,
        anchors: _Anchors,
        registry: CertificateRegistry,
        at: datetime,
        moment: datetime,
        revinfo: tuple[list[Any], list[Any]],
    ) -> tuple[Revocation, datetime | None, str]:
        """(GOOD | REVOKED | UNKNOWN, revocation time, message) of the certificates below the
        root at `moment` (`at` is the moment clamped into their validity), root side first."""
        certs = list(path.iter_certs(include_root=False))
        unknown = ""
        for index, cert in enumerate(certs):
            sub = ValidationPath(path.trust_anchor, certs[:index], cert)
            state, when, message = await self._cert_revocation(sub, cert, anchors, registry, at, moment, revinfo)
            if state is Revocation.REVOKED:
                return state, when, _named(message, sub)
            if state is Revocation.UNKNOWN:
                unknown = unknown or _named(message, sub)
        return (Revocation.UNKNOWN, None, unknown) if unknown else (Revocation.GOOD, None, "")

    async def _cert_revocation(
        self,
        sub: ValidationPath,
        cert: x509.Certificate,
        anchors: _Anchors,
        registry: CertificateRegistry,
        at: datetime,
        moment: datetime,
        revinfo: tuple[list[Any], list[Any]],
    ) -> tuple[Revocation, datetime | None, str]:
        try:
            await async_validate_path(self._context(anchors, registry, at, _REQUIRE, revinfo), sub)
            return Revocation.GOOD, None, ""
        except RevokedError as exc:
            if exc.revocation_dt > moment:  # `at` was clamped after the moment (not-yet-valid chain)
                return Revocation.GOOD, None, ""
            return Revocation.REVOKED, exc.revocation_dt, str(exc)
        except ValidationError as exc:
            message = str(exc)
        # pyhanko reads an OCSP "revoked at R" with R after the validation time as no answer at all.
        # Ask again at R: a RevokedError then proves the response authentic, and R tells the rest.
        later = _ocsp_revocation_time(revinfo[1], cert)
        if later is not None and later > at:
            start = max(c.not_valid_before for c in sub.iter_certs(include_root=False))
            end = min(c.not_valid_after for c in sub.iter_certs(include_root=False))
            if start <= later <= end:
                try:
                    await async_validate_path(self._context(anchors, registry, later, _REQUIRE, revinfo), sub)
                except RevokedError as exc:
                    if exc.revocation_dt == later:
                        return (Revocation.REVOKED, later, str(exc)) if later <= moment else (Revocation.GOOD, None, "")
                except ValidationError:
                    pass
        return Revocation.UNKNOWN, None, message

    async def _check(
        self,
        path: ValidationPath,
        trusted: bool,
        anchors: _Anchors,
        registry: CertificateRegistry,
        moment: datetime,
        purpose: str,
        boundaries: set[datetime],
    ) -> _Outcome:
        anchor_cert = path.trust_anchor.authority.certificate if isinstance(path.trust_anchor.authority, AuthorityWithCert) else None
        below_root = list(path.iter_certs(include_root=False))[::-1]  # leaf first
        chain = tuple(below_root) + ((anchor_cert,) if anchor_cert is not None else ())
        # The certificates whose validity and EKU count: all below the root, or the leaf itself
        # when the leaf is the anchor (self-signed or explicitly trusted).
        judged = below_root or list(chain[:1])
        if anchor_cert is not None:
            boundaries.update((anchor_cert.not_valid_before, anchor_cert.not_valid_after))
        out = _Outcome(trusted, [], Revocation.NOT_CHECKED, None, chain, [])
        if not trusted:
            out.problems.append(ChainStatus.UNTRUSTED_ROOT)
            out.messages.append(f"the root {_describe(chain[-1])} is not trusted for {purpose.replace('_', ' ')}")

        # Time validity against the real moment (reported, never blocking the rest).
        expired = [c for c in judged if moment > c.not_valid_after]
        early = [c for c in judged if moment < c.not_valid_before]
        if expired:
            out.problems.append(ChainStatus.EXPIRED)
            out.messages.append(f"{_describe(expired[0])} expired on {expired[0].not_valid_after:%Y-%m-%d %H:%M:%S}Z")
        if early:
            out.problems.append(ChainStatus.NOT_YET_VALID)
            out.messages.append(f"{_describe(early[0])} is not valid before {early[0].not_valid_before:%Y-%m-%d %H:%M:%S}Z")
        start = max(c.not_valid_before for c in judged)
        end = min(c.not_valid_after for c in judged)
        at = min(max(moment, start), end) if start <= end else moment

        # Signatures, constraints, policies (pyhanko), without revocation.
        try:
            await async_validate_path(self._context(anchors, registry, at), path)
        except (ExpiredError, NotYetValidError):
            out.messages.append("the certificates were never valid at the same time")
            out.problems.append(ChainStatus.INVALID)
            return out
        except ValidationError as exc:
            out.problems.append(ChainStatus.INVALID)
            out.messages.append(_named(str(exc), path))
            return out

        wanted = _EKU[purpose]
        for cert in judged:
            ekus = _ekus(cert)
            if ekus is not None and wanted not in ekus:
                out.problems.append(ChainStatus.NOT_VALID_FOR_USAGE)
                out.messages.append(f"{_describe(cert)} is not valid for {purpose.replace('_', ' ')} (EKU)")
                break

        if self.revocation.mode == "off":
            return out
        pairs = [(cert, chain[i + 1] if i + 1 < len(chain) else None) for i, cert in enumerate(below_root)]
        if not pairs:
            out.messages.append("revocation: nothing below the root to check")
            return out
        crls, ocsps = self.fetcher.collect(pairs)
        boundaries.update(revinfo_times([*crls, *ocsps], below_root))
        state, revoked_at, message = await self._revocation(path, anchors, registry, at, moment, (crls, ocsps))
        out.revocation = state
        if state is Revocation.REVOKED:
            out.revoked_at = revoked_at
            out.problems.append(ChainStatus.REVOKED)
            out.messages.append(message)
        elif state is Revocation.UNKNOWN:
            out.messages.append(f"revocation unknown: {message}")
        return out


async def _candidate_paths(
    leaf: x509.Certificate, anchors: _Anchors, registry: CertificateRegistry
) -> tuple[list[ValidationPath], str]:
    paths: list[ValidationPath] = []
    iterator = PathBuilder(anchors, registry).async_build_paths_lazy(leaf)
    try:
        async for path in iterator:
            paths.append(path)
            if len(paths) >= _MAX_PATHS:
                break
    except PathBuildingError as exc:
        return [], str(exc)
    finally:
        await iterator.cancel()
    return paths, ""


def _ocsp_revocation_time(responses: list[Any], cert: x509.Certificate) -> datetime | None:
    """The revocation time an OCSP response states for `cert` (by serial), if any."""
    for response in responses:
        for single in response.basic_ocsp_response["tbs_response_data"]["responses"]:
            status = single["cert_status"]
            if single["cert_id"]["serial_number"].native == cert.serial_number and status.name == "revoked":
                return status.chosen["revocation_time"].native
    return None


def _window(moment: datetime, boundaries: set[datetime]) -> tuple[datetime, datetime] | None:
    """The open interval around `moment` in which no boundary lies (shrunk by _EDGE), or None when
    `moment` is too close to one to reuse the result safely."""
    points = sorted(boundaries)
    i = bisect.bisect_right(points, moment)
    low = points[i - 1] + _EDGE if i > 0 else datetime.min.replace(tzinfo=moment.tzinfo)
    high = points[i] - _EDGE if i < len(points) else datetime.max.replace(tzinfo=moment.tzinfo)
    if not low < moment < high:
        return None
    return low, high
