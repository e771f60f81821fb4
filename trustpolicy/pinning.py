"""`init`: a trustedSigners section that pins the signers a restored graph uses today.

Authors are pinned by their signing certificate, repositories by service index with every
certificate and the union of the owners seen, so the graph as it is passes in require mode and a
new signer does not. The result is meant for review before it is committed. An author whose
certificate carries an Azure Trusted Signing identity (renewed daily) is not pinned by certificate:
it is listed with the `trust author NAME --identity-from PACKAGE` command that writes an identity rule.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from trustpolicy.archive import PackageArchive
from trustpolicy.config.edit import ConfigEditor, Node, certificate_node, signer_node
from trustpolicy.config.nugetconfig import TrustedSigner, parse_document
from trustpolicy.config.rules import IdentityRule, durable_identities
from trustpolicy.errors import TrustPolicyError
from trustpolicy.explain import common_name
from trustpolicy.graph import collect_graph
from trustpolicy.signature import Signature, distinguished_name, fingerprint, parse_signature
from trustpolicy.verify.identity import certificate_ekus


@dataclass
class _Signer:
    kind: str
    name: str
    fingerprints: list[str] = field(default_factory=list)
    service_index: str | None = None
    owners: set[str] = field(default_factory=set)
    packages: int = 0

    def add(self, signature: Signature) -> None:
        assert signature.signer_certificate is not None
        value = fingerprint(signature.signer_certificate, "sha256")
        if value not in self.fingerprints:
            self.fingerprints.append(value)
        self.owners.update(signature.owners)
        self.packages += 1

    def node(self) -> Node:
        certificates = [certificate_node(fp, "SHA256", False) for fp in self.fingerprints]
        owners = ";".join(sorted(self.owners)) or None
        return signer_node(self.kind, self.name, certificates, self.service_index, owners)


@dataclass
class Pins:
    signers: list[_Signer]
    skipped: list[str]  # packages that add nothing: unsigned, unreadable, unknown signature kind
    identities: dict[str, str] = field(default_factory=dict)  # author name -> a package it signed (short-lived certs)

    def nodes(self) -> list[Node]:
        return [signer.node() for signer in self.signers]

    def xml(self) -> str:
        return Node("trustedSigners", children=self.nodes()).render("", "  ", "\n") + "\n"


def collect_pins(paths: Iterable[str | os.PathLike[str]], *, packages_dirs=(), configfile: str | None = None) -> Pins:
    graph = collect_graph(list(paths), packages_dirs=packages_dirs, configfile=configfile)
    authors: dict[str, _Signer] = {}
    repositories: dict[str, _Signer] = {}
    identities: dict[str, str] = {}
    skipped: list[str] = []
    for package in graph.packages:
        label = f"{package.id} {package.version}"
        if package.nupkg is None:
            skipped.append(f"{label}: not found")
            continue
        try:
            archive = PackageArchive.open(package.nupkg)
            if not archive.is_signed:
                skipped.append(f"{label}: unsigned")
                continue
            primary = parse_signature(archive.read_signature())
        except TrustPolicyError as error:
            skipped.append(f"{label}: {error}")
            continue
        repository = primary if primary.kind == "repository" else primary.countersignature
        if primary.kind == "author":
            name = common_name(distinguished_name(primary.signer_certificate.subject)) or "signer"
            if durable_identities(certificate_ekus(primary.signer_certificate)):
                identities.setdefault(name, str(package.nupkg))  # a pinned certificate would break within days
            else:
                authors.setdefault(name, _Signer("author", name)).add(primary)
        if repository is not None and repository.kind == "repository" and repository.service_index:
            index = repository.service_index
            repositories.setdefault(index, _Signer("repository", _repository_name(index), service_index=index)).add(repository)
        if primary.kind == "unknown":
            skipped.append(f"{label}: the signature is neither an author nor a repository signature")
    signers = sorted(authors.values(), key=lambda s: s.name) + sorted(repositories.values(), key=lambda s: s.name)
    return Pins(signers, skipped, dict(sorted(identities.items())))


def write_pins(pins: Pins, configfile: str) -> list[str]:
    """Add the pinned signers to `configfile` (created when missing); returns the names added.
    A signer already present by name (authors) or service index (repositories) is left as it is."""
    editor = ConfigEditor(configfile)
    parsed = parse_document(editor.doc)
    present = {signer.identity for signer in parsed.signers if isinstance(signer, TrustedSigner)}
    present |= {("author", rule.name) for rule in parsed.rules if isinstance(rule, IdentityRule)}
    added = []
    for signer in pins.signers:
        identity = (signer.kind, signer.service_index if signer.kind == "repository" else signer.name)
        if identity in present:
            continue
        editor.add_signer(signer.node())
        added.append(signer.name)
    editor.save()
    return added


def _repository_name(service_index: str) -> str:
    host = urlsplit(service_index).hostname or service_index
    return "nuget.org" if host == "api.nuget.org" else host
