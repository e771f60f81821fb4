"""Allow lists: trustedSigners, --certificate-fingerprint, a repository's announced certificates.

docs/verification.md section 5 and docs/policy.md 2.2-2.3. trustedSigners compiles to a flat list of certificate
entries; the same "{algorithm}-{fingerprint}" key seen twice merges (targets and placements OR-ed,
owners unioned, allowUntrustedRoot false on conflict). A list allows a package when any entry matches.

Every list is an `AllowPolicy`; the verifier runs an `AllOf` of them, and a package must pass each
one (NuGet runs one allow-list provider per list). An empty composition allows nothing.

The client's list also holds the `<trustPolicy>` identity rules (a signer trusted by what its
certificate says; verify/identity.py) and applies its signer scopes. An identity rule needs the
signature's own evaluation, chain included: the verifier passes it as `Evidence`, computed once per
signature and shared with the trust step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from trustpolicy._internal.signature import PrimarySignature, Signature, fingerprint
from trustpolicy._internal.verify.identity import IdentityEntry, Scopes
from trustpolicy._internal.verify.settings import VerificationSettings
from trustpolicy.codes import Code
from trustpolicy.models import Issue, Level, MatchedSigner, Status, StepResult

if TYPE_CHECKING:
    from trustpolicy._internal.config.rules import TrustRules
    from trustpolicy._internal.verify.validity import Summary

__all__ = [
    "AllOf",
    "AllowList",
    "AllowListEntry",
    "AllowPolicy",
    "AllowResult",
    "Evidence",
    "RepositorySignatures",
    "compile_trusted_signers",
    "compose",
    "fingerprint_allow_list",
    "trusted_signers_allow_list",
    "untrusted_root_allowed",
]

_HASHES = ("sha256", "sha384", "sha512")


def _hash_name(value: str) -> str | None:
    """The hash of a trustedSigners certificate, or None for one NuGet cannot use (SHA-1, unknown).
    TrustContext refuses such a config with file:line; a list built anyway skips the entry, which
    trusts less and never raises in a verification worker."""
    name = value.lower().replace("-", "")
    return name if name in _HASHES else None


@dataclass(frozen=True)
class AllowListEntry:
    """One trusted certificate (NuGet's TrustedSignerAllowListEntry / CertificateHashAllowListEntry)."""

    fingerprint: str  # as configured (case kept: allowUntrustedRoot compares it case-sensitively)
    hash_algorithm: str  # "sha256" | "sha384" | "sha512"
    targets: frozenset[str]  # {"author", "repository"}
    placements: frozenset[str]  # {"primary", "countersignature"}
    owners: tuple[str, ...] = ()  # repository owners; empty = no owner restriction
    allow_untrusted_root: bool = False  # the value honoured
    signers: tuple[tuple[str, str], ...] = ()  # (name, kind) of the trustedSigners entries behind it
    allow_untrusted_root_written: bool = False  # what the config file says (for a hint when not honoured)

    def certificate_matches(self, signature: Signature) -> bool:
        cert = signature.signer_certificate
        return cert is not None and fingerprint(cert, self.hash_algorithm) == self.fingerprint.upper()


def compile_trusted_signers(signers: Iterable[Any]) -> tuple[AllowListEntry, ...]:
    """Flatten config TrustedSigner objects into merged entries (docs/policy.md 2.3)."""
    merged: dict[str, AllowListEntry] = {}
    for signer in signers:
        kind = signer.kind
        targets = frozenset({kind})
        placements = frozenset({"primary"} if kind == "author" else {"primary", "countersignature"})
        owners = tuple(signer.owners) if kind == "repository" else ()
        for cert in signer.certificates:
            algorithm = _hash_name(cert.hash_algorithm)
            if algorithm is None:
                continue
            key = f"{algorithm}-{cert.fingerprint}"  # the fingerprint part is case-sensitive, as NuGet's key
            entry = AllowListEntry(
                fingerprint=cert.fingerprint,
                hash_algorithm=algorithm,
                targets=targets,
                placements=placements,
                owners=owners,
                allow_untrusted_root=bool(cert.allow_untrusted_root),
                signers=((signer.name, kind),),
                allow_untrusted_root_written=bool(
                    getattr(cert, "written_allow_untrusted_root", False) or cert.allow_untrusted_root
                ),
            )
            old = merged.get(key)
            if old is not None:
                entry = AllowListEntry(
                    fingerprint=old.fingerprint,
                    hash_algorithm=algorithm,
                    targets=old.targets | targets,
                    placements=old.placements | placements,
                    owners=old.owners + tuple(owner for owner in owners if owner not in old.owners),
                    # a conflict makes it false (NU3040 is the config loader's warning)
                    allow_untrusted_root=old.allow_untrusted_root and entry.allow_untrusted_root,
                    signers=old.signers + entry.signers,
                    allow_untrusted_root_written=old.allow_untrusted_root_written and entry.allow_untrusted_root_written,
                )
            merged[key] = entry
    return tuple(merged.values())


def untrusted_root_allowed(signature: Signature, entries: Sequence[AllowListEntry]) -> bool:
    """docs/verification.md 4.1: the leaf fingerprint equals an allowUntrustedRoot entry, ordinal comparison.

    NuGet compares the configured text against its uppercase hex case-sensitively, so an entry
    written in lowercase trusts the signer for the allow list but does not allow an untrusted root.
    """
    cert = signature.signer_certificate
    if cert is None:
        return False
    return any(
        entry.allow_untrusted_root and entry.fingerprint == fingerprint(cert, entry.hash_algorithm)
        for entry in entries
    )


def untrusted_root_case_only(signature: Signature, entries: Sequence[AllowListEntry]) -> bool:
    """True when the config asks for allowUntrustedRoot on this certificate but NuGet's
    case-sensitive fingerprint comparison keeps it from applying."""
    cert = signature.signer_certificate
    if cert is None or untrusted_root_allowed(signature, entries):
        return False
    return any(
        entry.allow_untrusted_root_written and entry.fingerprint.upper() == fingerprint(cert, entry.hash_algorithm)
        for entry in entries
    )


@dataclass(frozen=True)
class Evidence:
    """What an allow list may know about a package besides its signatures: its id (from its own
    manifest; None when unreadable) for scopes, and `evaluate`, the signature's own evaluation with
    its validated chain (computed once per signature), for identity rules. Without `evaluate` no
    identity rule can match."""

    package_id: str | None = None
    evaluate: Callable[[Signature], Summary] | None = None


@dataclass(frozen=True)
class AllowResult:
    """One list's answer: its step, the signer it matched, or (no match) why not."""

    step: StepResult
    matched: MatchedSigner | None = None
    reason: str | None = None


class AllowPolicy(Protocol):
    """What the verifier needs of an allow list."""

    @property
    def entries(self) -> tuple[AllowListEntry, ...]: ...

    @property
    def unsigned_message(self) -> str | None:
        """The NU3004 message when this list demands signed packages, else None."""
        ...

    def check(
        self, primary: PrimarySignature, settings: VerificationSettings, evidence: Evidence | None = None
    ) -> AllowResult: ...


@dataclass(frozen=True)
class AllOf:
    """A package is allowed only if every policy allows it. With no policy, nothing is allowed."""

    policies: tuple[AllowPolicy, ...]

    @property
    def entries(self) -> tuple[AllowListEntry, ...]:
        return tuple(entry for policy in self.policies for entry in policy.entries)

    @property
    def unsigned_message(self) -> str | None:
        # The last list that demands signatures speaks: a repository's announcement comes after the
        # client's own trustedSigners, and NuGet names the repository's rule for an unsigned package.
        return next((p.unsigned_message for p in reversed(self.policies) if p.unsigned_message), None)

    def check(
        self, primary: PrimarySignature, settings: VerificationSettings, evidence: Evidence | None = None
    ) -> tuple[AllowResult, ...]:
        if not self.policies:
            issue = Issue(Code.NU3034, Level.ERROR, "No allow list is configured, so no signer can be trusted.")
            return (AllowResult(StepResult("allow-lists", Status.DISALLOWED, (issue,)), None, "no allow list"),)
        return tuple(policy.check(primary, settings, evidence) for policy in self.policies)


@dataclass(frozen=True)
class _Match:
    entry: AllowListEntry | IdentityEntry
    signature: Signature


@dataclass
class _Misses:
    """Why entries that matched a certificate still did not allow the package, by kind."""

    owners: list[str] = field(default_factory=list)
    identities: list[str] = field(default_factory=list)
    scopes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AllowList:
    """One allow-list step (NuGet's AllowListVerificationProvider), plus, for the client's list, the
    identity rules and signer scopes of `<trustPolicy>`."""

    step: str
    entries: tuple[AllowListEntry, ...]
    require_non_empty: bool
    empty_message: str
    no_match_message: str
    source_name: str | None = None  # name reported for entries without trustedSigners names
    unsigned_message: str | None = None
    identities: tuple[IdentityEntry, ...] = ()
    scopes: Scopes = field(default_factory=Scopes)

    def check(
        self, primary: PrimarySignature, settings: VerificationSettings, evidence: Evidence | None = None
    ) -> AllowResult:
        """Status, the matched signer (or None) and, when none matched, why."""
        if not self.entries and not self.identities:
            if self.require_non_empty:
                issue = Issue(Code.NU3034, Level.ERROR, self.empty_message)
                return AllowResult(StepResult(self.step, Status.DISALLOWED, (issue,)), None, self.empty_message)
            return AllowResult(StepResult(self.step, Status.VALID), None, f"the {self.step} allow list is empty")
        found = self._find(primary, evidence or Evidence())
        if isinstance(found, _Match):
            return AllowResult(StepResult(self.step, Status.VALID), self._matched(found))
        why, out_of_scope = found
        fatal = not settings.allow_untrusted
        level = Level.ERROR if fatal else Level.WARNING
        if out_of_scope:
            issue = Issue(Code.TP2001, level,
                          f"This package is signed by a trusted signer, but outside the signer's scope: {why}.", "primary")
        else:
            issue = Issue(Code.NU3034, level, self.no_match_message, "primary")
        status = Status.DISALLOWED if fatal else Status.VALID
        return AllowResult(StepResult(self.step, status, (issue,)), None, why)

    def _find(self, primary: PrimarySignature, evidence: Evidence) -> _Match | tuple[str, bool]:
        """The first entry that allows the package, or (why nothing did, whether only scopes stood in the way)."""
        misses = _Misses()
        counter = primary.countersignature
        for entry in self.entries:
            candidates: list[Signature] = []
            if "primary" in entry.placements and primary.kind in entry.targets:
                candidates.append(primary)
            if "countersignature" in entry.placements and "repository" in entry.targets and counter is not None:
                candidates.append(counter)
            for signature in candidates:
                if not entry.certificate_matches(signature):
                    continue
                if signature.kind == "repository" and entry.owners:
                    # ordinal, case-sensitive intersection (docs/policy.md 2.2)
                    if not set(entry.owners) & set(signature.owners):
                        misses.owners.append(
                            f"{_describe(entry)} matches the {_placement(signature)} certificate but none of its "
                            f"owners ({';'.join(entry.owners)}) is a package owner "
                            f"({';'.join(signature.owners) or 'the signature lists no owners'})"
                        )
                        continue
                if self._in_scope(_names(entry, signature), evidence, misses):
                    return _Match(entry, signature)
        for identity in self.identities:
            for signature in identity.candidates(primary):
                if not identity.describes(signature):
                    continue
                why = identity.unproven(evidence.evaluate(signature)) if evidence.evaluate else "no chain evidence"
                if why is not None:
                    misses.identities.append(f"{identity.describe()} describes the {_placement(signature)} "
                                             f"certificate, but {why}")
                    continue
                if self._in_scope((identity.name,), evidence, misses):
                    return _Match(identity, signature)
        if misses.scopes:
            return "; ".join(misses.scopes), True
        if misses.owners or misses.identities:
            return "; ".join(misses.owners + misses.identities), False
        parts = [f"the primary {primary.kind} signature certificate {_fp(primary)}"]
        if counter is not None:
            parts.append(f"the repository countersignature certificate {_fp(counter)}")
        return "no allow-list entry matches " + " or ".join(parts), False

    def _in_scope(self, names: Sequence[str], evidence: Evidence, misses: _Misses) -> bool:
        if self.scopes.allows(names, evidence.package_id):
            return True
        misses.scopes.append(self.scopes.refusal(names, evidence.package_id))
        return False

    def _matched(self, match: _Match) -> MatchedSigner:
        kind = match.signature.kind
        kind = kind if kind in ("author", "repository") else "author"
        cert = match.signature.signer_certificate
        entry = match.entry
        if isinstance(entry, IdentityEntry):
            return MatchedSigner(entry.name, kind, fingerprint(cert) if cert is not None else None,
                                 match.signature.placement, rule="identity", source=entry.source)
        names = _names(entry, match.signature)
        return MatchedSigner(
            name=names[0] if names else (self.source_name or self.step),
            kind=kind,
            fingerprint=entry.fingerprint.upper(),
            placement=match.signature.placement,
        )


def _names(entry: AllowListEntry, signature: Signature) -> list[str]:
    """The trustedSigners names behind an entry, those of the signature's kind first choice."""
    return [name for name, kind in entry.signers if kind == signature.kind] or [name for name, _ in entry.signers]


def _fp(signature: Signature) -> str:
    cert = signature.signer_certificate
    return f"(SHA256 {fingerprint(cert)})" if cert is not None else "(none)"


def _placement(signature: Signature) -> str:
    return "primary signature" if signature.placement == "primary" else "repository countersignature"


def _describe(entry: AllowListEntry) -> str:
    if entry.signers:
        return " / ".join(f"{kind} '{name}'" for name, kind in entry.signers)
    return f"entry {entry.fingerprint}"


# --- the three lists the engine uses ---------------------------------------------------------------

NO_CLIENT_ALLOW_LIST = (
    "signatureValidationMode is set to require, so packages are allowed only if signed by trusted signers; "
    "however, no trusted signers were specified."
)
NO_MATCHING_CLIENT_CERTIFICATE = "This package is signed but not by a trusted signer."
NO_MATCHING_CERTIFICATE = (
    "The package signature certificate fingerprint does not match any certificate fingerprint in the allow list."
)
NO_REPOSITORY_ALLOW_LIST = (
    "This repository indicated that all its packages are repository signed; however, it listed no signing certificates."
)
NO_MATCHING_REPOSITORY_CERTIFICATE = "This package was not repository signed with a certificate listed by this repository."


UNSIGNED_REQUIRE = (
    "signatureValidationMode is set to require, so packages are allowed only if signed by trusted signers; "
    "however, this package is unsigned."
)
UNSIGNED_REPOSITORY = (
    "This repository indicated that all its packages are repository signed; however, this package is unsigned."
)


def trusted_signers_allow_list(
    signers: Iterable[Any], *, require_non_empty: bool, rules: TrustRules | None = None
) -> AllowList:
    """trustedSigners from config (docs/verification.md 5.1), with the identity rules and scopes of `<trustPolicy>`."""
    return AllowList(
        step="trusted-signers",
        entries=compile_trusted_signers(signers),
        require_non_empty=require_non_empty,
        empty_message=NO_CLIENT_ALLOW_LIST,
        no_match_message=NO_MATCHING_CLIENT_CERTIFICATE,
        unsigned_message=UNSIGNED_REQUIRE if require_non_empty else None,
        identities=tuple(IdentityEntry.of(rule) for rule in rules.identities) if rules else (),
        scopes=Scopes.of(rules.scopes) if rules else Scopes(),
    )


def normalize_sha256(value: str) -> str:
    """A SHA-256 fingerprint in any case, colons/spaces allowed; ValueError if it is not 64 hex digits."""
    text = value.strip().replace(":", "").replace(" ", "")
    if len(text) != 64 or any(ch not in "0123456789abcdefABCDEF" for ch in text):
        hint = " (that is a SHA-1 fingerprint; use SHA-256)" if len(text) == 40 else ""
        raise ValueError(f"{value!r} is not a SHA-256 certificate fingerprint (64 hex digits){hint}")
    return text.upper()


def fingerprint_allow_list(fingerprints: Iterable[str]) -> AllowList:
    """--certificate-fingerprint: SHA-256, author or repository, primary only (docs/verification.md 5.2)."""
    entries = tuple(
        AllowListEntry(
            fingerprint=normalize_sha256(value),
            hash_algorithm="sha256",
            targets=frozenset({"author", "repository"}),
            placements=frozenset({"primary"}),
        )
        for value in fingerprints
    )
    return AllowList(
        step="certificate-fingerprints",
        entries=entries,
        require_non_empty=False,
        empty_message="",
        no_match_message=NO_MATCHING_CERTIFICATE,
        source_name="--certificate-fingerprint",
    )


@dataclass(frozen=True)
class RepositorySignatures:
    """A source's announced RepositorySignatures resource (docs/verification.md 5.3-5.4)."""

    all_repository_signed: bool
    fingerprints: tuple[str, ...] = ()  # SHA-256 hex, any case
    source: str = "repository"

    def restrict(self, settings: VerificationSettings) -> VerificationSettings:
        """docs/verification.md 5.4: a source that says all its packages are repository signed forbids unsigned and
        untrusted packages even in accept mode."""
        if not self.all_repository_signed:
            return settings
        return settings.replace(allow_unsigned=False, allow_untrusted=False)

    def allow_list(self) -> AllowList:
        """Its certificates: SHA-256, repository, any placement (docs/verification.md 5.3)."""
        entries = tuple(
            AllowListEntry(
                fingerprint=value,
                hash_algorithm="sha256",
                targets=frozenset({"repository"}),
                placements=frozenset({"primary", "countersignature"}),
            )
            for value in self.fingerprints
        )
        return AllowList(
            step="repository-certificates",
            entries=entries,
            require_non_empty=self.all_repository_signed,
            empty_message=NO_REPOSITORY_ALLOW_LIST,
            no_match_message=NO_MATCHING_REPOSITORY_CERTIFICATE,
            source_name=self.source,
            unsigned_message=UNSIGNED_REPOSITORY if self.all_repository_signed else None,
        )


def compose(
    signers: Iterable[Any],
    *,
    require_non_empty: bool,
    fingerprints: Iterable[str] = (),
    repository: RepositorySignatures | None = None,
    rules: TrustRules | None = None,
) -> AllOf:
    """The lists a package must pass, in NuGet's order: trustedSigners (with the identity rules and
    scopes of `rules`), --certificate-fingerprint values (when given), a source's announced
    certificates (when it announced any)."""
    lists = [trusted_signers_allow_list(signers, require_non_empty=require_non_empty, rules=rules)]
    fingerprints = tuple(fingerprints)
    if fingerprints:
        lists.append(fingerprint_allow_list(fingerprints))
    if repository is not None:
        lists.append(repository.allow_list())
    return AllOf(tuple(lists))
