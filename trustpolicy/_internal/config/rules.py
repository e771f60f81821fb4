"""The `<trustPolicy>` section of a NuGet.Config: identity rules, signer scopes, package exceptions.

NuGet reads every section of the file but uses none of this one, so the file stays valid for NuGet as
long as the section avoids the item names NuGet parses wherever they appear (add, author,
certificate, owners, repository, fileCert, storeCert): a `<certificate>` in here would make NuGet
refuse the whole file. The elements (docs/identity.md):

    <trustPolicy>
      <clear />                                   drops the rules of farther files
      <identity name="Contoso" kind="author">     a trusted signer known by its certificate's identity
        <subject CN="Contoso Ltd" O="Contoso Ltd" />
        <issuer fingerprint="SHA-256 of a CA certificate in the validated chain" />
        <eku oid="1.3.6.1.4.1.311.97.990309390.766961637.194916062.941502583" />
      </identity>
      <scope signer="Contoso">                    what a trusted signer (any kind) may sign
        <package pattern="Contoso.*" />
      </scope>
      <exception id="Legacy.Lib" version="[1.2.0]" expires="2026-04-01" reason="unsigned, ticket SEC-42" />
    </trustPolicy>

Anything else in the section, or a value that cannot be read, is refused with file:line: a rule that
is silently ignored could widen (an unread scope) or narrow trust without anyone noticing. An identity
rule without an issuer pin is kept so that lint can report it; verification refuses it (`unusable`).
Element and attribute names are case-sensitive.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING

from lxml import etree

from trustpolicy._internal.patterns import check_package_id, check_pattern
from trustpolicy.errors import ConfigError
from trustpolicy.models import Location

if TYPE_CHECKING:
    from trustpolicy._internal.versionrange import VersionRange

__all__ = [
    "ATS_IDENTITY_ARC",
    "ATS_PUBLIC_TRUST",
    "EXPIRY_WARNING_DAYS",
    "SECTION",
    "SUBJECT_ATTRIBUTES",
    "Clear",
    "IdentityRule",
    "IssuerPin",
    "PackageException",
    "RuleItem",
    "SignerScope",
    "TrustRules",
    "durable_identities",
    "parse_section",
    "rule_key",
]

SECTION = "trustPolicy"
EXPIRY_WARNING_DAYS = 14
# Azure Trusted Signing (Artifact Signing) puts its subscriber's durable identity in an EKU under this
# arc; every one of its public-trust certificates also carries the generic mark (docs/identity.md).
ATS_IDENTITY_ARC = "1.3.6.1.4.1.311.97."
ATS_PUBLIC_TRUST = "1.3.6.1.4.1.311.97.1.0"
KINDS = ("author", "repository")
# Subject attributes an identity rule may pin, named as `inspect` and the reports print them.
SUBJECT_ATTRIBUTES = {
    "CN": "2.5.4.3",
    "O": "2.5.4.10",
    "OU": "2.5.4.11",
    "L": "2.5.4.7",
    "S": "2.5.4.8",
    "C": "2.5.4.6",
    "STREET": "2.5.4.9",
    "SERIALNUMBER": "2.5.4.5",
    "E": "1.2.840.113549.1.9.1",
    "DC": "0.9.2342.19200300.100.1.25",
}
_OID = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*))+")
_HEX64 = re.compile(r"[0-9A-Fa-f]{64}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass(frozen=True)
class IssuerPin:
    """A CA certificate (SHA-256) that must be in the signing certificate's validated chain."""

    fingerprint: str  # upper-case hex
    source: Location


@dataclass(frozen=True)
class IdentityRule:
    """A trusted signer known by what its certificate says, not by the certificate itself.

    A signing certificate matches when its subject has every `subject` attribute, it carries every
    `ekus` OID, and one of the `issuers` is a CA in its chain as validated at the signing time.
    """

    name: str
    kind: str  # "author" | "repository"
    subject: tuple[tuple[str, str], ...]  # (attribute as written, e.g. "CN", value)
    issuers: tuple[IssuerPin, ...]
    ekus: tuple[str, ...]
    source: Location


@dataclass(frozen=True)
class SignerScope:
    """The package ids a trusted signer (trustedSigners entry or identity rule) may sign."""

    signer: str
    patterns: tuple[str, ...]
    source: Location


@dataclass(frozen=True)
class PackageException:
    """One package version range allowed although unsigned or untrusted, until `expires` (UTC)."""

    package_id: str
    versions: VersionRange
    expires: date  # the first day on which it no longer applies
    reason: str
    source: Location

    @property
    def expires_at(self) -> datetime:
        return datetime.combine(self.expires, time(), UTC)

    def expired(self, at: datetime) -> bool:
        return at >= self.expires_at

    def expiring(self, at: datetime) -> bool:
        """Still applies, but not for more than EXPIRY_WARNING_DAYS."""
        return not self.expired(at) and (self.expires_at - at).total_seconds() <= EXPIRY_WARNING_DAYS * 86400

    def describe(self) -> str:
        return f"{self.package_id} {self.versions.text} ({self.reason}; expires {self.expires.isoformat()}, {self.source})"


@dataclass(frozen=True)
class Clear:
    """A <clear/> in any section: drops what came before it (nugetconfig uses the same class)."""

    source: Location


Rule = IdentityRule | SignerScope | PackageException
RuleItem = Rule | Clear


def rule_key(item: Rule) -> tuple[str, ...]:
    """What a closer file's rule replaces a farther one on: identities by name, scopes by signer,
    exceptions by id (ignoring case) and range."""
    if isinstance(item, IdentityRule):
        return ("identity", item.name)
    if isinstance(item, SignerScope):
        return ("scope", item.signer)
    return ("exception", item.package_id.lower(), item.versions.text)


def durable_identities(ekus: Iterable[str]) -> list[str]:
    """The Trusted Signing identity EKUs among `ekus` (not the generic public-trust mark)."""
    return sorted(e for e in ekus if e.startswith(ATS_IDENTITY_ARC) and e != ATS_PUBLIC_TRUST)


@dataclass(frozen=True)
class TrustRules:
    """The effective trustPolicy rules of a set of config files."""

    identities: tuple[IdentityRule, ...] = ()
    scopes: tuple[SignerScope, ...] = ()
    exceptions: tuple[PackageException, ...] = ()

    @classmethod
    def of(cls, items: Iterable[RuleItem]) -> TrustRules:
        items = list(items)
        return cls(
            tuple(i for i in items if isinstance(i, IdentityRule)),
            tuple(i for i in items if isinstance(i, SignerScope)),
            tuple(i for i in items if isinstance(i, PackageException)),
        )

    def __bool__(self) -> bool:
        return bool(self.identities or self.scopes or self.exceptions)

    def scope_of(self, signer: str) -> SignerScope | None:
        return next((scope for scope in self.scopes if scope.signer == signer), None)


# --- reading one section ------------------------------------------------------------------------


@dataclass
class _SectionReader:
    path: str
    line_of: Callable[[etree._Element], int]
    items: list[tuple[etree._Element, RuleItem]] = field(default_factory=list)

    def at(self, element: etree._Element) -> Location:
        return Location(self.path, self.line_of(element) or None)

    def error(self, message: str, element: etree._Element) -> ConfigError:
        return ConfigError(f"<{SECTION}>: {message}", path=self.path, line=self.line_of(element) or None)

    def attributes(self, element: etree._Element, what: str, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict[str, str]:
        names = set(required) | set(optional)
        for name in element.attrib:
            if name not in names:
                hint = next((n for n in names if n.lower() == str(name).lower()), None)
                extra = f" (attribute names are case-sensitive: write {hint})" if hint else f"; {what} takes {_list(sorted(names))}"
                raise self.error(f"{what} has an unknown attribute {name!r}{extra}", element)
        values = {}
        for name in required:
            value = element.get(name)
            if value is None or not value.strip():
                raise self.error(f"{what} needs a non-empty {name} attribute", element)
            values[name] = value.strip()
        for name in optional:
            if element.get(name) is not None:
                values[name] = element.get(name, "").strip()
        return values

    def children(self, element: etree._Element, what: str) -> list[etree._Element]:
        """The child elements; text other than white space is refused (it would mean nothing)."""
        pieces = [element.text or ""] + [child.tail or "" for child in element]
        if any(piece.strip() for piece in pieces):
            raise self.error(f"{what} cannot hold text, only elements", element)
        return [child for child in element if isinstance(child.tag, str)]

    def read(self, section: etree._Element) -> list[RuleItem]:
        self.attributes(section, f"<{SECTION}>", ())
        for child in self.children(section, f"<{SECTION}>"):
            name = _local(child)
            if name == "clear":
                self.attributes(child, "<clear/>", ())
                if self.children(child, "<clear/>"):
                    raise self.error("<clear/> cannot have child elements", child)
                self.items.append((child, Clear(self.at(child))))
            elif name == "identity":
                self.items.append((child, self.identity(child)))
            elif name == "scope":
                self.items.append((child, self.scope(child)))
            elif name == "exception":
                self.items.append((child, self.exception(child)))
            else:
                raise self.error(f"unknown element <{name}>; the section holds <identity>, <scope>, <exception> "
                                 "and <clear/>", child)
        self.refuse_repeats()
        result: list[RuleItem] = []
        for _, item in self.items:  # <clear/> drops what came before it in the same section, as NuGet's
            if isinstance(item, Clear):
                result.clear()
            result.append(item)
        return result

    def identity(self, element: etree._Element) -> IdentityRule:
        values = self.attributes(element, "<identity>", ("name", "kind"))
        kind = values["kind"]
        if kind not in KINDS:
            raise self.error(f"<identity> kind must be author or repository, not {kind!r}", element)
        subject: list[tuple[str, str]] = []
        issuers: list[IssuerPin] = []
        ekus: list[str] = []
        subjects = 0
        for child in self.children(element, "<identity>"):
            name = _local(child)
            if name == "subject":
                subjects += 1
                if subjects > 1:
                    raise self.error("<identity> has more than one <subject>; put every attribute on one", child)
                subject = self.subject(child)
            elif name == "issuer":
                fingerprint = self.attributes(child, "<issuer>", ("fingerprint",))["fingerprint"]
                if not _HEX64.fullmatch(fingerprint):
                    hint = " (that is a SHA-1 fingerprint)" if len(fingerprint) == 40 else ""
                    raise self.error(f"<issuer> fingerprint {fingerprint!r} is not the SHA-256 fingerprint of a CA "
                                     f"certificate (64 hex digits){hint}", child)
                self.no_children(child, "<issuer>")
                issuers.append(IssuerPin(fingerprint.upper(), self.at(child)))
            elif name == "eku":
                oid = self.attributes(child, "<eku>", ("oid",))["oid"]
                if not _OID.fullmatch(oid):
                    raise self.error(f"<eku> oid {oid!r} is not an object identifier (dotted numbers such as "
                                     "1.3.6.1.4.1.311.97.1.0)", child)
                self.no_children(child, "<eku>")
                ekus.append(oid)
            else:
                raise self.error(f"unknown element <{name}> in <identity>; it holds <subject>, <issuer> and <eku>", child)
        return IdentityRule(values["name"], kind, tuple(subject), tuple(issuers), tuple(dict.fromkeys(ekus)), self.at(element))

    def subject(self, element: etree._Element) -> list[tuple[str, str]]:
        self.no_children(element, "<subject>")
        pairs = []
        for name, value in element.attrib.items():
            if name not in SUBJECT_ATTRIBUTES:
                hint = next((n for n in SUBJECT_ATTRIBUTES if n.lower() == str(name).lower()), None)
                extra = f"write {hint}" if hint else f"use {_list(SUBJECT_ATTRIBUTES)}"
                raise self.error(f"<subject> attribute {name!r} is not a subject attribute trustpolicy knows; {extra}", element)
            if not value.strip():
                raise self.error(f"<subject> {name} is empty", element)
            pairs.append((str(name), value))
        if not pairs:
            raise self.error("<subject> names no attribute (e.g. CN=\"Contoso Ltd\" O=\"Contoso Ltd\")", element)
        return pairs

    def scope(self, element: etree._Element) -> SignerScope:
        signer = self.attributes(element, "<scope>", ("signer",))["signer"]
        patterns: list[str] = []
        for child in self.children(element, "<scope>"):
            if _local(child) != "package":
                raise self.error(f"unknown element <{_local(child)}> in <scope>; it holds <package pattern=\"...\"/>", child)
            pattern = self.attributes(child, "<package>", ("pattern",))["pattern"]
            self.no_children(child, "<package>")
            try:
                patterns.append(check_pattern(pattern))
            except ValueError as error:
                raise self.error(str(error), child) from None
        if not patterns:
            raise self.error(f"<scope> of {signer!r} lists no <package pattern=\"...\"/>; a scope that allows nothing "
                             "is a mistake (remove the signer instead)", element)
        return SignerScope(signer, tuple(dict.fromkeys(patterns)), self.at(element))

    def exception(self, element: etree._Element) -> PackageException:
        from trustpolicy._internal.versionrange import parse_range  # the version parser lives with the graph code

        values = self.attributes(element, "<exception>", ("id", "version", "expires", "reason"))
        self.no_children(element, "<exception>")
        try:
            package_id = check_package_id(values["id"])
        except ValueError as error:
            raise self.error(f"<exception> id: {error}; an exception names one package", element) from None
        try:
            versions = parse_range(values["version"])
        except ValueError as error:
            raise self.error(f"<exception> version: {error}", element) from None
        expires = values["expires"]
        try:
            if not _DATE.fullmatch(expires):
                raise ValueError
            day = date.fromisoformat(expires)
        except ValueError:
            raise self.error(f"<exception> expires {expires!r} is not a date written YYYY-MM-DD (the first day on "
                             "which the exception no longer applies, UTC)", element) from None
        return PackageException(package_id, versions, day, values["reason"], self.at(element))

    def no_children(self, element: etree._Element, what: str) -> None:
        if self.children(element, what):
            raise self.error(f"{what} cannot have child elements", element)

    def refuse_repeats(self) -> None:
        """Two rules with the same key in one file: which one is meant cannot be told."""
        seen: dict[tuple[str, ...], etree._Element] = {}
        for element, item in self.items:
            if isinstance(item, Clear):
                continue
            key = rule_key(item)
            if key in seen:
                if isinstance(item, IdentityRule):
                    what = f"identity {item.name!r}"
                elif isinstance(item, SignerScope):
                    what = f"the scope of {item.signer!r}"
                else:
                    what = f"an exception for {key[1]} {key[2]}"
                raise self.error(f"{what} is defined twice in this file (also at line {self.line_of(seen[key])})", element)
            seen[key] = element


def parse_section(section: etree._Element, path: str, line_of: Callable[[etree._Element], int]) -> list[RuleItem]:
    """The rules of one file's `<trustPolicy>` element, in file order, after its own `<clear/>`s.
    Raises ConfigError with file:line for anything it cannot read."""
    return _SectionReader(path, line_of).read(section)


def _local(element: etree._Element) -> str:
    return etree.QName(element).localname


def _list(names: Iterable[str]) -> str:
    return ", ".join(names)
