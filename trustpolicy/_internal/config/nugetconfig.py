"""One NuGet.Config file read the way NuGet reads it: signing policy, package sources, trusted signers,
and trustpolicy's own `<trustPolicy>` section (config.rules, read strictly: NuGet ignores it).

The rules are those of NuGet.Configuration's parser:
- section names are case-sensitive (a <TrustedSigners> section is not the trustedSigners section);
  item element names (author, repository, certificate, owners, clear, add) are not;
- attribute names are case-sensitive; author needs name; repository needs name and serviceIndex;
  certificate needs fingerprint, hashAlgorithm and allowUntrustedRoot; each signer has >= 1
  certificate; a repository has at most one <owners>, which holds text only;
- hashAlgorithm is parsed like a .NET enum (case-insensitive; SHA256/384/512, and SHA1 which
  NuGet's enum holds since 6.12); allowUntrustedRoot like a .NET bool (anything else is false);
- an unparseable signatureValidationMode is accept;
- within one section, an item whose element name and attribute values repeat an earlier item's
  (ignoring case) is dropped, and so is every <clear/> after the first; then each <clear/> drops
  the items before it. Two different items with the same identity (two authors named X, two
  signatureValidationMode keys) make NuGet fail to load the file, so they are refused here too.
Anything NuGet ignores or misreads without a word is recorded as an Issue in `ConfigFile.notes`,
which `trustpolicy lint` reports. Two values are kept for lint instead of refused here: a SHA-1
hashAlgorithm (NuGet before 6.12 refuses the file; later versions load it and then fail on every
signed package) and an unknown one (NuGet refuses the file). Such a certificate is not `usable`;
TrustSettings.require_usable() refuses it before anything is verified.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from copy import deepcopy
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TypeVar

from lxml import etree

from trustpolicy._internal.config.document import ConfigDocument, local_name
from trustpolicy._internal.config.rules import SECTION as POLICY, Clear, RuleItem, parse_section
from trustpolicy._internal.resources import schema_path
from trustpolicy.codes import CODES, Code
from trustpolicy.errors import ConfigError
from trustpolicy.models import Issue, Location

CONFIG, SOURCES, SIGNERS = "config", "packageSources", "trustedSigners"
MODE_KEY = "signatureValidationMode"
HASH_ALGORITHMS = ("SHA256", "SHA384", "SHA512")  # what NuGet documents and its CLI writes
FINGERPRINT_LENGTHS = {"SHA1": 40, "SHA256": 64, "SHA384": 96, "SHA512": 128}

# .NET enums NuGet parses with Enum.TryParse(ignoreCase: true): name -> value.
_HASH_ENUM = {"unknown": 0, "sha256": 1, "sha384": 2, "sha512": 3, "sha1": 4}
_HASH_NAMES = {1: "SHA256", 2: "SHA384", 3: "SHA512", 4: "SHA1"}
_MODE_ENUM = {"accept": 0, "require": 1}
_ITEM_NAMES = {n.lower(): n for n in ("author", "repository", "certificate", "owners", "clear", "add")}
_ENV_REFERENCE = re.compile(r"%([^%]+)%")


@dataclass(frozen=True)
class CertificateEntry:
    """One <certificate> of a trusted signer.

    fingerprint is upper-case hex (matching is case-insensitive in NuGet). allow_untrusted_root is
    the value NuGet *honours*: NuGet compares the fingerprint as written, case-sensitively, with the
    upper-case hex it computes, so allowUntrustedRoot="true" on a fingerprint that is not written in
    upper case has no effect. written_* keep what the file says.
    """

    fingerprint: str
    hash_algorithm: str  # "SHA256" | "SHA384" | "SHA512"; else "SHA1" or the text as written (not usable)
    allow_untrusted_root: bool
    source: Location
    written_fingerprint: str = ""
    written_allow_untrusted_root: bool = False

    @property
    def usable(self) -> bool:
        """Whether NuGet can match packages with this entry (not with SHA-1 or an unknown algorithm)."""
        return self.hash_algorithm in HASH_ALGORITHMS


@dataclass(frozen=True)
class TrustedSigner:
    kind: str  # "author" | "repository"
    name: str
    certificates: tuple[CertificateEntry, ...]
    service_index: str | None
    owners: tuple[str, ...]  # split on ';' and trimmed; empty items kept, as NuGet keeps them
    source: Location

    @property
    def identity(self) -> tuple[str, str]:
        """What NuGet merges on: authors by name, repositories by serviceIndex (both ordinal)."""
        return (self.kind, self.name if self.kind == "author" else self.service_index or "")


@dataclass(frozen=True)
class Setting:
    """An <add key value/> of <config> or <packageSources> (value as written, before %VAR% expansion)."""

    key: str
    value: str
    source: Location


Item = TypeVar("Item", bound=TrustedSigner | Setting | Clear)


@dataclass(frozen=True)
class ConfigFile:
    """The sections of one file that matter here, items in file order as NuGet keeps them."""

    path: str
    config: tuple[Setting | Clear, ...]
    sources: tuple[Setting | Clear, ...]
    signers: tuple[TrustedSigner | Clear, ...]
    notes: tuple[Issue, ...]  # what NuGet ignores or misreads without a word (lint reports them)
    rules: tuple[RuleItem, ...] = ()  # the <trustPolicy> section (config.rules), after its own <clear/>s

    @property
    def clears_signers(self) -> bool:
        return any(isinstance(item, Clear) for item in self.signers)


def read_config_file(path: str | Path) -> ConfigFile:
    return parse_document(ConfigDocument.read(path))


def parse_config_bytes(raw: bytes, path: str) -> ConfigFile:
    return parse_document(ConfigDocument.parse(raw, path))


def parse_document(doc: ConfigDocument) -> ConfigFile:
    return _Reader(doc).read()


def expand_environment(value: str, environ: Mapping[str, str] | None = None) -> str:
    """%NAME% -> its value when NAME is set (NuGet expands config values the .NET way)."""
    env = os.environ if environ is None else environ
    return _ENV_REFERENCE.sub(lambda m: env.get(m.group(1), m.group(0)), value)


def parse_mode(raw: str | None) -> str:
    """signatureValidationMode: require only when it parses as Require; anything else is accept."""
    return "require" if raw is not None and _dotnet_enum(raw, _MODE_ENUM) == 1 else "accept"


def parse_hash_algorithm(raw: str) -> str | None:
    value = _dotnet_enum(raw, _HASH_ENUM)
    return _HASH_NAMES.get(value) if value is not None else None


def parse_bool(raw: str) -> bool:
    """.NET bool.TryParse: 'true'/'false' in any case, surrounding whitespace allowed; else false."""
    return raw.strip(" \t\r\n\x00").lower() == "true"


def _dotnet_enum(raw: str, members: dict[str, int]) -> int | None:
    """Enum.TryParse(ignoreCase): a number, or names separated by commas (OR-ed together)."""
    text = raw.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    result = 0
    for part in text.split(","):
        value = members.get(part.strip().lower())
        if value is None:
            return None
        result |= value
    return result


@lru_cache(maxsize=1)
def _schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(schema_path("nuget-config.xsd"))))


class _Reader:
    def __init__(self, doc: ConfigDocument) -> None:
        self.doc = doc
        self.path = doc.path
        self.notes: list[Issue] = []
        self.schema_copy = etree.Element("configuration")

    def at(self, element: etree._Element) -> Location:
        return Location(self.path, self.doc.line_of(element) or None)

    def error(self, message: str, element: etree._Element) -> ConfigError:
        return ConfigError(message, path=self.path, line=self.doc.line_of(element) or None)

    def note(self, code: Code, message: str, element: etree._Element, *, fix: str | None = None) -> None:
        info = CODES[code]
        self.notes.append(Issue(code, info.level, message, where=self.at(element), fix=fix or info.help))

    def read(self) -> ConfigFile:
        root = self.doc.root
        if root.tag != "configuration":
            raise self.error(f"the root element must be <configuration>, not <{root.tag}>", root)
        sections: dict[str, etree._Element] = {}
        for child in _elements(root):
            name = local_name(child)
            if name.lower() == POLICY.lower():
                # trustpolicy's own section: a second or mis-cased one is refused, since ignoring
                # its rules (a scope, say) could widen trust without a word.
                if name != POLICY:
                    raise self.error(f"section <{name}> is not read: section names are case-sensitive, write <{POLICY}>", child)
                if POLICY in sections:
                    raise self.error(f"<{POLICY}> appears twice in this file (also at line {self.doc.line_of(sections[POLICY])}); "
                                     "merge them into one", child)
                sections[name] = child
            elif name in (CONFIG, SOURCES, SIGNERS):
                if name in sections:  # NuGet keeps the first section of a name and drops the others
                    self.note(Code.TP1012, f"a second <{name}> section in this file is ignored by NuGet", child)
                    continue
                sections[name] = child
            elif name.lower() in (CONFIG.lower(), SOURCES.lower(), SIGNERS.lower()):
                wanted = {CONFIG.lower(): CONFIG, SOURCES.lower(): SOURCES, SIGNERS.lower(): SIGNERS}[name.lower()]
                self.note(Code.TP1013, f"section <{name}> is ignored by NuGet: section names are case-sensitive, write <{wanted}>", child)
        config = self.settings(sections.get(CONFIG), check_mode=True)
        sources = self.settings(sections.get(SOURCES), check_mode=False)
        signers = self.signers(sections.get(SIGNERS))
        rules: tuple[RuleItem, ...] = ()
        if POLICY in sections:
            rules = tuple(parse_section(sections[POLICY], self.path, self.doc.line_of))
            self.schema_copy.append(deepcopy(sections[POLICY]))  # already canonical: anything else was refused
        self.validate_schema()
        return ConfigFile(self.path, config, sources, signers, tuple(self.notes), rules)

    # -- <config> and <packageSources> -------------------------------------------------------

    def settings(self, section: etree._Element | None, *, check_mode: bool) -> tuple[Setting | Clear, ...]:
        if section is None:
            return ()
        copy = self.copy(section, local_name(section))
        items: list[tuple[etree._Element, Setting | Clear]] = []
        for child in _elements(section):
            kind = _ITEM_NAMES.get(local_name(child).lower())
            if kind == "add":
                self.require(child, "add", ("key", "value"))
                if not child.get("key"):
                    raise self.error("add has an empty key", child)
                items.append((child, Setting(child.get("key", ""), child.get("value", ""), self.at(child))))
                self.copy(child, "add", copy)
            elif kind == "clear":
                items.append((child, Clear(self.at(child))))
                self.copy(child, "clear", copy)
        kept = self.dedupe(items)
        first: dict[str, Setting] = {}
        for element, item in items:
            if not isinstance(item, Setting) or item not in kept:
                continue
            earlier = first.setdefault(item.key, item)
            if check_mode and item.key.lower() == MODE_KEY.lower():
                if earlier is not item:  # same key, other value: NuGet fails to load the file
                    raise self.error(f"{MODE_KEY} is set twice in <config> (also at line {earlier.source.line}); NuGet refuses such a file", element)
                spelled = next(s for k, s in first.items() if k.lower() == MODE_KEY.lower())
                if spelled is not item:  # another spelling: NuGet reads the first one
                    self.note(Code.TP1015, f"{MODE_KEY} is set twice (also at line {spelled.source.line}); NuGet uses the first", element)
            elif not check_mode and earlier is not item:
                self.note(Code.TP1015, f"package source {item.key!r} is defined twice (also at line {earlier.source.line}); the first one is used", element)
        return tuple(self.apply_clears(kept))

    # -- <trustedSigners> --------------------------------------------------------------------

    def signers(self, section: etree._Element | None) -> tuple[TrustedSigner | Clear, ...]:
        if section is None:
            return ()
        copy = self.copy(section, SIGNERS)
        items: list[tuple[etree._Element, TrustedSigner | Clear]] = []
        for child in _elements(section):
            kind = _ITEM_NAMES.get(local_name(child).lower())
            if kind in ("author", "repository"):
                items.append((child, self.signer(child, kind, copy)))
            elif kind == "clear":
                items.append((child, Clear(self.at(child))))
                self.copy(child, "clear", copy)
            else:
                self.note(Code.TP1016, f"<{local_name(child)}> is not a trusted signer; NuGet ignores it here", child)
        kept = self.dedupe(items)
        seen: dict[tuple[str, str], TrustedSigner] = {}
        for item in kept:
            if isinstance(item, TrustedSigner) and item.kind == "author":
                first = seen.setdefault(item.identity, item)
                if first is not item:
                    raise ConfigError(
                        f"author {item.name!r} is defined twice in this file (also at line {first.source.line}); "
                        "NuGet refuses such a file",
                        path=self.path,
                        line=item.source.line,
                    )
        return tuple(self.apply_clears(kept))

    def signer(self, element: etree._Element, kind: str, section_copy: etree._Element) -> TrustedSigner:
        required = ("name",) if kind == "author" else ("name", "serviceIndex")
        self.require(element, kind, required)
        copy = self.copy(element, kind, section_copy)
        certificates: list[CertificateEntry] = []
        owners: list[etree._Element] = []
        for child in _elements(element):
            child_kind = _ITEM_NAMES.get(local_name(child).lower())
            if child_kind == "certificate":
                certificates.append(self.certificate(child))
                self.copy(child, "certificate", copy)
            elif child_kind == "owners":
                self.check_owners(child)
                owners.append(child)
                self.copy(child, "owners", copy).text = child.text
                if kind == "author":
                    self.note(Code.TP1017, "<owners> has no effect on an author; NuGet ignores it", child)
            else:
                self.note(Code.TP1016, f"<{local_name(child)}> inside <{kind}> is ignored by NuGet", child)
        if not certificates:
            raise self.error(f"{kind} {element.get('name')!r} has no certificate; a trusted signer needs at least one", element)
        if kind == "repository" and len(owners) > 1:
            raise self.error(f"repository {element.get('name')!r} has more than one <owners> element", owners[1])
        owner_list: tuple[str, ...] = ()
        if kind == "repository" and owners:
            owner_list = tuple(part.strip() for part in _owners_text(owners[0]).split(";"))
            self.check_owner_names(element.get("name", ""), owner_list, owners[0])
        return TrustedSigner(
            kind=kind,
            name=element.get("name", ""),
            certificates=tuple(certificates),
            service_index=element.get("serviceIndex") if kind == "repository" else None,
            owners=owner_list,
            source=self.at(element),
        )

    def certificate(self, element: etree._Element) -> CertificateEntry:
        self.require(element, "certificate", ("fingerprint", "hashAlgorithm", "allowUntrustedRoot"))
        if len(element):
            raise self.error("certificate cannot have child elements", element[0])
        written_algorithm = element.get("hashAlgorithm", "")
        algorithm = parse_hash_algorithm(written_algorithm)
        if algorithm == "SHA1":
            self.note(
                Code.NU3043,
                'hashAlgorithm="SHA1": NuGet cannot use SHA-1 certificate fingerprints (NU3043); NuGet before 6.12 '
                "refuses this file and later versions fail on every signed package, so trustpolicy refuses it too",
                element,
                fix='replace it with the certificate\'s SHA-256 fingerprint and hashAlgorithm="SHA256"',
            )
        elif algorithm is None:
            self.note(
                Code.TP1020,
                f"hashAlgorithm {written_algorithm!r} is not SHA256, SHA384 or SHA512; NuGet refuses this file "
                "(unsupported hash algorithm), and so does trustpolicy",
                element,
            )
        allow_text = element.get("allowUntrustedRoot", "")
        if allow_text.strip(" \t\r\n\x00").lower() not in ("true", "false"):
            self.note(Code.TP1019, f"allowUntrustedRoot={allow_text!r} is neither true nor false; NuGet silently reads it as false", element)
        written = element.get("fingerprint", "")
        declared = parse_bool(allow_text)
        return CertificateEntry(
            fingerprint=written.upper(),
            hash_algorithm=algorithm or written_algorithm,
            allow_untrusted_root=declared and written == written.upper(),
            source=self.at(element),
            written_fingerprint=written,
            written_allow_untrusted_root=declared,
        )

    def check_owner_names(self, name: str, owners: tuple[str, ...], element: etree._Element) -> None:
        """Owners NuGet keeps but that can never match a package owner."""
        if "" in owners:
            self.note(Code.TP1007, f"the owners of repository {name!r} contain an empty item ({';'.join(owners)!r}): a stray ';'", element)
        for owner in owners:
            if any(ch.isspace() for ch in owner):
                self.note(Code.TP1021, f"owner {owner!r} of repository {name!r} contains whitespace; nuget.org account "
                          "names never do, so it can never match (owners are separated by ';')", element)

    def check_owners(self, element: etree._Element) -> None:
        if element.attrib:
            raise self.error(f"owners cannot have attributes (found {', '.join(element.attrib)})", element)
        if len(element) and any(isinstance(c.tag, str) for c in element):
            raise self.error("owners can only contain text, not elements", element)
        chunks = [c for c in _text_nodes(element) if c.strip()]
        if not chunks:
            raise self.error("owners is empty; list owners separated by ';' or remove the element", element)
        if len(chunks) > 1:  # NuGet sees text split by a comment as several nodes and refuses it
            raise self.error("owners text is interrupted by a comment; NuGet refuses it", element)

    # -- shared helpers ----------------------------------------------------------------------

    def require(self, element: etree._Element, what: str, names: tuple[str, ...]) -> None:
        for name in names:  # attribute names are case-sensitive in NuGet's lookup
            if element.get(name) is None:
                hint = next((a for a in element.attrib if a.lower() == name.lower()), None)
                extra = f" (found {hint!r}; attribute names are case-sensitive)" if hint else ""
                raise self.error(f"{what} is missing the required attribute {name}{extra}", element)

    def dedupe(self, items: list[tuple[etree._Element, Item]]) -> list[Item]:
        """Drop exact repeats (element name + attribute values, ignoring case), as NuGet does."""
        seen: dict[tuple[str, ...], etree._Element] = {}
        kept: list[Item] = []
        for element, item in items:
            key = (local_name(element).lower(), *(v.lower() for v in element.attrib.values()))
            if key in seen:
                what = "<clear/> after the first one" if isinstance(item, Clear) else f"repeat of line {self.doc.line_of(seen[key])}"
                self.note(Code.TP1014, f"{what} is ignored by NuGet", element)
                continue
            seen[key] = element
            kept.append(item)
        return kept

    @staticmethod
    def apply_clears(items: list[Item]) -> list[Item]:
        result: list[Item] = []
        for item in items:
            if isinstance(item, Clear):
                result.clear()
            result.append(item)
        return result

    def copy(self, element: etree._Element, name: str, parent: etree._Element | None = None) -> etree._Element:
        """Build the normalised copy the schema checks: canonical names, known items only."""
        target = self.schema_copy if parent is None else parent
        clone = etree.SubElement(target, name, dict(element.attrib))
        clone.sourceline = self.doc.line_of(element) or None
        return clone

    def validate_schema(self) -> None:
        schema = _schema()
        if not schema.validate(self.schema_copy):
            error = schema.error_log.last_error
            message = re.sub(r"^Element '([^']+)': ", r"\1: ", error.message) if error else "invalid"
            raise ConfigError(f"does not match the NuGet.Config schema: {message}", path=self.path, line=error.line or None)


def _elements(parent: etree._Element) -> list[etree._Element]:
    return [child for child in parent if isinstance(child.tag, str)]


def _text_nodes(element: etree._Element) -> list[str]:
    """Text pieces of an element as separate nodes: its text, then each child's tail."""
    pieces = [element.text or ""]
    pieces += [child.tail or "" for child in element]
    return pieces


def _owners_text(element: etree._Element) -> str:
    return "".join(_text_nodes(element))
