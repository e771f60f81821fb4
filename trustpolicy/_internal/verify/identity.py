"""Identity rules and signer scopes as the allow lists apply them (docs/identity.md).

An identity rule trusts a signer by what its certificate says rather than by the certificate itself,
so a renewed or short-lived certificate keeps matching: the subject attributes and EKU OIDs the rule
names must be in the signing certificate, and one of the CA certificates it pins must be in the chain
that validated at the signing time. That evidence comes from the signature's own evaluation (the
trust step's Summary, chain included), so a rule never matches a signature that does not verify, whose
chain ends in an untrusted root (allowUntrustedRoot does not help), or whose certificate had expired
at the time its timestamp proves (or now, without a timestamp).

Scopes restrict what a trusted signer may sign, with packageSourceMapping's pattern rules
(trustpolicy._internal.patterns): of all scoped signers, those holding the most specific pattern that matches a
package id are the ones that may sign it. A signer without a scope may sign anything, as before.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from asn1crypto import x509

from trustpolicy._internal.config.rules import SUBJECT_ATTRIBUTES, IdentityRule, SignerScope
from trustpolicy._internal.patterns import best_match
from trustpolicy._internal.signature import PrimarySignature, Signature, fingerprint
from trustpolicy.models import Location

if TYPE_CHECKING:
    from trustpolicy._internal.verify.validity import Summary

__all__ = ["IdentityEntry", "Scopes", "certificate_ekus", "subject_values"]


def _prepare(value: str) -> str:
    """A subject value as X.500 compares it, closely enough: compatibility forms folded, case and
    insignificant white space ignored. Both sides of a comparison go through it."""
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


def subject_values(cert: x509.Certificate) -> dict[str, set[str]]:
    """Every subject attribute of the certificate: OID -> its prepared values."""
    values: dict[str, set[str]] = {}
    for rdn in cert.subject.chosen:
        for ava in rdn:
            native = ava["value"].native
            if isinstance(native, str):
                values.setdefault(ava["type"].dotted, set()).add(_prepare(native))
    return values


def certificate_ekus(cert: x509.Certificate) -> set[str]:
    value = cert.extended_key_usage_value
    return {purpose.dotted for purpose in value} if value is not None else set()


@dataclass(frozen=True)
class IdentityEntry:
    """One identity rule, compiled: what the certificate must say and which CAs may vouch for it."""

    name: str
    kind: str  # "author" | "repository"
    subject: tuple[tuple[str, str, str, str], ...]  # (attribute as written, value as written, OID, prepared value)
    issuers: frozenset[str]  # SHA-256 of CA certificates, upper-case hex
    ekus: frozenset[str]
    source: Location

    @classmethod
    def of(cls, rule: IdentityRule) -> IdentityEntry:
        subject = tuple((name, value, SUBJECT_ATTRIBUTES[name], _prepare(value)) for name, value in rule.subject)
        return cls(rule.name, rule.kind, subject, frozenset(p.fingerprint for p in rule.issuers), frozenset(rule.ekus),
                   rule.source)

    def candidates(self, primary: PrimarySignature) -> list[Signature]:
        """The signatures this rule may vouch for: as a trustedSigners entry of its kind would."""
        found: list[Signature] = []
        if primary.kind == self.kind:
            found.append(primary)
        counter = primary.countersignature
        if self.kind == "repository" and counter is not None:
            found.append(counter)
        return found

    def describes(self, signature: Signature) -> bool:
        """Whether the signing certificate carries the subject attributes and EKUs the rule names."""
        cert = signature.signer_certificate
        if cert is None or not self.issuers:  # without a pinned CA a subject is no identity: never a match
            return False
        values = subject_values(cert)
        if any(prepared not in values.get(oid, ()) for _, _, oid, prepared in self.subject):
            return False
        return self.ekus <= certificate_ekus(cert)

    def unproven(self, summary: Summary) -> str | None:
        """Why the signature's own evaluation does not back this rule, or None when it does."""
        if summary.untrusted_root:
            return "its certificate chain ends in an untrusted root, which an identity rule never accepts"
        if summary.expired:
            return ("its certificate was not valid at the signing time (no valid timestamp proves when it signed, "
                    "or the certificate did not cover that time)")
        if not summary.intact_and_valid:
            return "the signature does not verify (see the trust step)"
        chain = summary.chain
        if chain is None or not chain.trusted or not chain.valid:
            problems = ", ".join(p.value for p in chain.problems) if chain is not None else "no chain"
            return f"its certificate chain did not validate at the signing time ({problems})"
        if not any(fingerprint(cert) in self.issuers for cert in chain.path[1:]):
            return "none of the CAs it pins is in the certificate's validated chain"
        return None

    def describe(self) -> str:
        parts = [f'{name}="{value}"' for name, value, _, _ in self.subject]
        parts += [f"EKU {oid}" for oid in sorted(self.ekus)]
        return f"identity {self.name!r} ({', '.join(parts) or 'any subject'}; {self.source})"


@dataclass(frozen=True)
class Scopes:
    """Which package ids each scoped signer may sign (signer name -> patterns)."""

    patterns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    sources: Mapping[str, Location] = field(default_factory=dict)

    @classmethod
    def of(cls, scopes: Iterable[SignerScope]) -> Scopes:
        scopes = list(scopes)
        return cls({s.signer: s.patterns for s in scopes}, {s.signer: s.source for s in scopes})

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def allows(self, names: Sequence[str], package_id: str | None) -> bool:
        """Whether a trusted signer known by `names` may sign `package_id`: yes when one of the names
        has no scope; else when one of them holds the most specific pattern that matches the id."""
        if not names or any(name not in self.patterns for name in names):
            return True
        if package_id is None:  # the id could not be read: a scoped signer cannot be shown to cover it
            return False
        _, holders = best_match(self.patterns, package_id)
        return bool(holders & set(names))

    def refusal(self, names: Sequence[str], package_id: str | None) -> str:
        """Why `allows` said no, in words."""
        name = names[0]
        own = ", ".join(self.patterns[name])
        if package_id is None:
            return f"its manifest cannot be read, so it cannot be shown to be in the scope of {name!r} ({own})"
        best, holders = best_match(self.patterns, package_id)
        if best is None:
            return f"{package_id} is outside the scope of {name!r} ({own}; {self.sources[name]})"
        others = ", ".join(repr(h) for h in sorted(holders))
        return (f"{package_id} is outside the scope of {name!r} ({own}; {self.sources[name]}): the more specific "
                f"pattern {best} belongs to {others}")
