"""The `trust` verbs (dotnet nuget trust): list, author, repository, certificate, source, sync, remove.

`author NAME --identity-from PACKAGE` is trustpolicy's own: it writes a `<trustPolicy>` identity
rule (config.rules) from the package's signature instead of pinning its certificate, for signers
whose certificates are renewed often (docs/identity.md).

Semantics follow NuGet's TrustedSignerActionsProvider (NuGet.Commands):
- new signers go to --configfile, or else to the closest writable file whose <trustedSigners> has
  a <clear/>, or else to the user file (machine-wide and additional user files are never written);
- author/repository/source refuse a name that exists (ordinal), and repository/source also a
  serviceIndex that exists (ignoring case);
- certificate adds to an existing signer of that name, or creates an author;
- sync replaces a repository's certificate list with what its source announces;
- remove deletes every signer of that name, and the farther ones it had replaced.
Two deliberate differences: fingerprints are written in upper case (so that allowUntrustedRoot
works if someone sets it later), and sync leaves certificates that are still announced untouched
instead of rewriting them.
Every function returns the lines to show; nothing is written when `dry_run` is set.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from trustpolicy._internal.config.edit import ConfigEditor, Node, certificate_node, signer_node
from trustpolicy._internal.config.hierarchy import ConfigLocations, LoadedConfig, LoadedFile, load_config
from trustpolicy._internal.config.nugetconfig import FINGERPRINT_LENGTHS, HASH_ALGORITHMS, TrustedSigner
from trustpolicy._internal.config.rules import SECTION as POLICY, durable_identities
from trustpolicy._internal.config.sources import DEFAULT_TIMEOUT, RepositorySignatures, fetch_repository_signatures
from trustpolicy.errors import TrustPolicyError, UsageError

if TYPE_CHECKING:
    from trustpolicy._internal.truststore import TrustStore


@dataclass
class Outcome:
    lines: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)

    def say(self, line: str) -> None:
        self.lines.append(line)


@dataclass(frozen=True)
class Scope:
    """Which files to read: one --configfile, or the hierarchy seen from a directory."""

    configfile: str | None = None
    directory: str | None = None
    locations: ConfigLocations | None = None  # None: this platform's user and machine locations

    def load(self, *, for_writing: bool = False) -> LoadedConfig:
        return load_config(self.configfile, self.directory, locations=self.locations, allow_missing=for_writing)


# -- list --------------------------------------------------------------------------------------


def list_signers(scope: Scope) -> Outcome:
    settings = scope.load().settings
    out = Outcome()
    identities = settings.rules.identities
    for number, rule in enumerate(identities, 1):  # trustpolicy's own, listed before NuGet's output
        if number == 1:
            out.say("Identity rules (<trustPolicy>):")
        pins = ", ".join(pin.fingerprint for pin in rule.issuers) or "none (refused)"
        said = " ".join([*(f'{k}="{v}"' for k, v in rule.subject), *(f"EKU {e}" for e in rule.ekus)])
        out.say(f" {number}. {rule.name} [{rule.kind}]  ({rule.source}): {said or 'any subject'}; issuer CA {pins}")
    if identities:
        out.say("")
    if not settings.signers:
        out.say("There are no trustedSigners entries." if identities else "There are no trusted signers.")
        return out
    out.say("Registered trusted signers:")
    for number, signer in enumerate(settings.signers, 1):
        out.say("")
        out.say(f" {number}. {signer.name} [{signer.kind}]  ({signer.source})")
        if signer.service_index is not None:
            out.say(f"      Service index: {signer.service_index}")
        if signer.owners:
            out.say(f"      Owners: {'; '.join(signer.owners)}")
        out.say("      Certificate fingerprint(s):")
        for cert in signer.certificates:
            marker = "[U] " if cert.written_allow_untrusted_root else ""
            out.say(f"        {marker}{cert.hash_algorithm} - {cert.written_fingerprint}")
    return out


# -- adding ------------------------------------------------------------------------------------


def add_author(scope: Scope, name: str, package: str, *, allow_untrusted_root: bool = False) -> Outcome:
    loaded = scope.load(for_writing=True)
    _refuse_existing(loaded, name)
    signature = _read_signature(package)
    if signature.kind != "author":
        raise TrustPolicyError(f"the package's primary signature is not an author signature (it is {signature.kind})", path=package)
    fingerprint = _signer_fingerprint(signature, package)
    node = signer_node("author", name, [certificate_node(fingerprint, "SHA256", allow_untrusted_root)])
    return _add(loaded, node, f"author {name!r} (SHA256 {fingerprint})")


def add_identity(scope: Scope, name: str, package: str, *, trust_store: TrustStore) -> Outcome:
    """An identity rule for the author who signed PACKAGE: its Trusted Signing identity EKU and the
    chain's root when the certificate has one (the subject may change, the issuing CAs rotate), else
    its subject's CN and O and the CA just below the root, from the chain that validated when it signed."""
    loaded = scope.load(for_writing=True)
    _refuse_existing(loaded, name)
    signature = _read_signature(package)
    if signature.kind != "author":
        raise TrustPolicyError(f"the package's primary signature is not an author signature (it is {signature.kind})", path=package)
    subject, ekus, pinned = _identity_evidence(signature, package, trust_store)
    children = [Node("subject", subject)] if subject else []
    children.append(Node("issuer", [("fingerprint", pinned[1])]))
    children += [Node("eku", [("oid", oid)]) for oid in ekus]
    node = Node("identity", [("name", name), ("kind", "author")], children)
    out = Outcome()
    editor = _editor_for(loaded.output_file())
    editor.add_to_section(POLICY, node)
    what = " ".join([*(f'{key}="{value}"' for key, value in subject), *(f"EKU {oid}" for oid in ekus)])
    _save(editor, out, f"Added identity {name!r} ({what}; issued under {pinned[0]}, SHA256 {pinned[1]})")
    return out


def _identity_evidence(signature, package: str, trust_store: TrustStore):  # type: ignore[no-untyped-def]
    """(subject attributes, identity EKUs, (CA name, CA SHA-256)) of a signature whose chain validates
    at its signing time; TrustPolicyError naming the package otherwise."""
    from trustpolicy._internal import clock
    from trustpolicy._internal.chain import ChainValidator
    from trustpolicy._internal.signature import distinguished_name, fingerprint
    from trustpolicy._internal.verify.identity import certificate_ekus
    from trustpolicy._internal.verify.settings import REQUIRE
    from trustpolicy._internal.verify.validity import SignatureEvaluator

    cert = signature.signer_certificate
    if cert is None:
        raise TrustPolicyError("the signature does not include its signing certificate", path=package)
    with ChainValidator(trust_store) as chains:  # revocation off: this picks names, check judges later
        summary = SignatureEvaluator(REQUIRE.replace(revocation_mode="off"), chains, clock.now(), signature,
                                     untrusted_root_allowed=lambda s: False).evaluate(signature)
    chain = summary.chain
    if summary.untrusted_root:
        root = distinguished_name(chain.path[-1].subject) if chain else "?"
        raise TrustPolicyError(f"the signing certificate's chain ends in a root that is not trusted ({root}); an "
                               "identity rule needs a trusted chain: add the root with --extra-roots if you trust it",
                               path=package)
    if summary.expired or not summary.intact_and_valid or chain is None or not chain.valid:
        problems = "; ".join(issue.message for issue in summary.issues) or "its chain did not validate"
        raise TrustPolicyError(f"the signature does not validate at its signing time, so it cannot vouch for an "
                               f"identity: {problems}", path=package)
    ekus = durable_identities(certificate_ekus(cert))
    subject: list[tuple[str, str]] = []
    if not ekus:
        names = {ava["type"].dotted: ava["value"].native for rdn in cert.subject.chosen for ava in rdn}
        subject = [(key, names[oid]) for key, oid in (("CN", "2.5.4.3"), ("O", "2.5.4.10")) if isinstance(names.get(oid), str)]
        if not subject:
            raise TrustPolicyError("the signing certificate has neither an identity EKU nor a CN or O to pin", path=package)
    # A durable identity EKU is the service's own, so its root is pin enough (its issuing intermediates
    # rotate); a subject needs the CA closer to it: the one just below the root.
    path = chain.path
    ca = path[-1] if ekus or len(path) < 3 else path[-2]
    return subject, ekus, (distinguished_name(ca.subject), fingerprint(ca))


def add_repository(
    scope: Scope, name: str, package: str, *, allow_untrusted_root: bool = False, owners: str | None = None
) -> Outcome:
    loaded = scope.load(for_writing=True)
    signature = _read_signature(package)
    if signature.kind != "repository":
        counter = signature.countersignature
        if counter is None or counter.kind != "repository":
            raise TrustPolicyError("the package has neither a repository signature nor a repository countersignature", path=package)
        signature = counter
    if not signature.service_index:
        raise TrustPolicyError("the repository signature has no nuget-v3-service-index-url attribute", path=package)
    _refuse_existing(loaded, name, service_index=signature.service_index)
    fingerprint = _signer_fingerprint(signature, package)
    node = signer_node(
        "repository",
        name,
        [certificate_node(fingerprint, "SHA256", allow_untrusted_root)],
        service_index=signature.service_index,
        owners=_owners(owners),
    )
    return _add(loaded, node, f"repository {name!r} ({signature.service_index}, SHA256 {fingerprint})")


def add_certificate(
    scope: Scope, name: str, fingerprint: str, *, algorithm: str = "SHA256", allow_untrusted_root: bool = False
) -> Outcome:
    algorithm = algorithm.upper()
    if algorithm not in HASH_ALGORITHMS:
        raise UsageError(f"unsupported hash algorithm {algorithm!r}; use SHA256, SHA384 or SHA512")
    fingerprint = check_fingerprint(fingerprint, algorithm)
    loaded = scope.load(for_writing=True)
    node = certificate_node(fingerprint, algorithm, allow_untrusted_root)
    existing = [s for s in loaded.settings.signers if s.name == name]
    if not existing:
        return _add(loaded, signer_node("author", name, [node]), f"author {name!r} ({algorithm} {fingerprint})")
    signer = existing[0]
    if any(c.fingerprint == fingerprint and c.hash_algorithm == algorithm for c in signer.certificates):
        raise UsageError(f"{signer.kind} {name!r} already trusts {algorithm} {fingerprint} ({signer.source})")
    out = Outcome()
    home = loaded.file_for(signer.source.path)
    if home is not None and home.writable:
        editor = ConfigEditor(home.path)
        editor.add_certificate(editor.find_signer(signer), node)
    else:  # a read-only file: write a full copy (closer, same identity) that replaces it
        editor = _editor_for(loaded.output_file())
        editor.add_signer(_copy_signer(signer, extra=[node]))
    _save(editor, out, f"Added {algorithm} {fingerprint} to {signer.kind} {name!r}")
    return out


def add_source(
    scope: Scope,
    name: str,
    *,
    source_url: str | None = None,
    owners: str | None = None,
    dry_run: bool = False,
    timeout: float = DEFAULT_TIMEOUT,
) -> Outcome:
    loaded = scope.load(for_writing=True)
    url = source_url or _source_url(loaded, name)
    _refuse_existing(loaded, name, service_index=url)
    announced = fetch_repository_signatures(url, timeout=timeout)
    node = signer_node(
        "repository",
        name,
        [certificate_node(c.fingerprint, "SHA256", False) for c in announced.certificates],
        service_index=url,
        owners=_owners(owners),
    )
    out = Outcome()
    out.say(f"Repository {name!r} ({url}) announces:")
    for cert in announced.certificates:
        out.say(f"  + SHA256 {cert.fingerprint}{_describe(cert)}")
    if dry_run:
        out.say("Dry run: nothing written")
        return out
    editor = _editor_for(loaded.output_file())
    editor.add_signer(node)
    _save(editor, out, f"Added repository {name!r} with {len(announced.certificates)} certificate(s)")
    return out


# -- sync and remove ---------------------------------------------------------------------------


def sync(scope: Scope, name: str, *, dry_run: bool = False, timeout: float = DEFAULT_TIMEOUT) -> Outcome:
    loaded = scope.load()
    matches = [s for s in loaded.settings.signers if s.name == name]
    repositories = [s for s in matches if s.kind == "repository"]
    if not repositories:
        what = "it is an author; only repositories can be synced" if matches else "there is no such trusted signer"
        raise UsageError(f"cannot sync {name!r}: {what}")
    out = Outcome()
    for signer in repositories:
        assert signer.service_index is not None
        announced = fetch_repository_signatures(signer.service_index, timeout=timeout)
        _sync_one(loaded, signer, announced, out, dry_run=dry_run)
    return out


def _sync_one(loaded: LoadedConfig, signer: TrustedSigner, announced: RepositorySignatures, out: Outcome, *, dry_run: bool) -> None:
    served = {c.fingerprint: c for c in announced.certificates}
    current = {c.fingerprint for c in signer.certificates if c.hash_algorithm == "SHA256"}
    keep = current & set(served)
    added = [c for c in announced.certificates if c.fingerprint not in current]
    removed = [c for c in signer.certificates if not (c.hash_algorithm == "SHA256" and c.fingerprint in served)]
    out.say(f"Repository {signer.name!r} ({signer.service_index}, {signer.source}):")
    for cert in added:
        out.say(f"  + SHA256 {cert.fingerprint}{_describe(cert)}")
    for old in removed:
        out.say(f"  - {old.hash_algorithm} {old.written_fingerprint}")
    if not added and not removed:
        out.say("  up to date: no certificate changes")
        return
    if dry_run:
        out.say("Dry run: nothing written")
        return
    nodes = [certificate_node(c.fingerprint, "SHA256", False) for c in added]
    home = loaded.file_for(signer.source.path)
    if home is not None and home.writable:
        editor = ConfigEditor(home.path)
        editor.replace_certificates(signer, keep, nodes)
    else:
        editor = _editor_for(loaded.output_file())
        kept = [certificate_node(c.written_fingerprint, c.hash_algorithm, c.written_allow_untrusted_root) for c in signer.certificates if c.fingerprint in keep]
        editor.add_signer(_copy_signer(signer, replace_with=kept + nodes))
    _save(editor, out, f"Updated the certificates of repository {signer.name!r}")


def remove(scope: Scope, name: str) -> Outcome:
    loaded = scope.load()
    doomed = [s for s in loaded.settings.signers if s.name == name]
    out = Outcome()
    identities = _remove_identities(loaded, name, out)
    if not doomed:
        if not identities:
            out.say(f"No trusted signer named {name!r}; nothing removed.")
        return out
    targets = [t for signer in doomed for t in (signer, *loaded.shadowed.get(signer.source, ()))]
    by_file: dict[str, list[TrustedSigner]] = {}
    for signer in targets:
        by_file.setdefault(signer.source.path, []).append(signer)
    for path, signers in by_file.items():
        home = loaded.file_for(path)
        if home is None or not home.writable:
            out.say(f"Left {', '.join(repr(s.name) for s in signers)} in read-only {path}")
            continue
        editor = ConfigEditor(path)
        for signer in sorted(signers, key=lambda s: s.source.line or 0, reverse=True):
            editor.remove(editor.find_signer(signer))
        _save(editor, out, f"Removed {', '.join(f'{s.kind} {s.name!r}' for s in signers)}")
    return out


def _remove_identities(loaded: LoadedConfig, name: str, out: Outcome) -> bool:
    """Remove the <trustPolicy> identity rules named `name` from every file that has one (the farther
    ones too, as for signers). Whether there was any."""
    from trustpolicy._internal.config.document import local_name
    from trustpolicy._internal.config.rules import IdentityRule

    found = False
    for loaded_file in loaded.files:
        # one per file at most: the reader refuses two identities of one name in a file
        rule = next((r for r in (loaded_file.parsed.rules if loaded_file.parsed else ())
                     if isinstance(r, IdentityRule) and r.name == name), None)
        if rule is None:
            continue
        found = True
        if not loaded_file.writable:
            out.say(f"Left identity {name!r} in read-only {loaded_file.path}")
            continue
        editor = ConfigEditor(loaded_file.path)
        section = editor.section(POLICY)
        assert section is not None  # the rule was read from this file's section
        element = next(c for c in section if isinstance(c.tag, str) and local_name(c) == "identity"
                       and c.get("name") == name and (editor.doc.line_of(c) or None) == rule.source.line)
        editor.remove(element)
        _save(editor, out, f"Removed identity {name!r}")
    return found


# -- helpers -----------------------------------------------------------------------------------


def check_fingerprint(fingerprint: str, algorithm: str) -> str:
    """Hex of the right length for the algorithm, returned in upper case."""
    value = fingerprint.strip().replace(":", "")
    if not re.fullmatch(r"[0-9A-Fa-f]+", value):
        raise UsageError(f"fingerprint {fingerprint!r} is not hexadecimal")
    if len(value) == FINGERPRINT_LENGTHS["SHA1"] and algorithm != "SHA1":
        raise UsageError("that is a SHA-1 fingerprint (40 hex digits), which NuGet no longer accepts (NU3043); give the SHA-256 one")
    if len(value) != FINGERPRINT_LENGTHS[algorithm]:
        raise UsageError(f"a {algorithm} fingerprint has {FINGERPRINT_LENGTHS[algorithm]} hex digits, not {len(value)}")
    return value.upper()


def _refuse_existing(loaded: LoadedConfig, name: str, *, service_index: str | None = None) -> None:
    for rule in loaded.settings.rules.identities:  # scopes name signers of either kind: one namespace
        if rule.name == name:
            raise UsageError(f"an identity rule named {name!r} already exists ({rule.source}); use another name or remove it first")
    for signer in loaded.settings.signers:
        if signer.name == name:
            raise UsageError(f"a trusted signer named {name!r} already exists ({signer.source}); use another name or remove it first")
        if service_index and signer.service_index and signer.service_index.lower() == service_index.lower():
            raise UsageError(f"repository {signer.name!r} already trusts {signer.service_index} ({signer.source})")


def _read_signature(package: str):  # type: ignore[no-untyped-def]
    from trustpolicy._internal.archive import PackageArchive  # imported here: only the package verbs need them
    from trustpolicy._internal.signature import parse_signature

    archive = PackageArchive.open(package)
    if not archive.is_signed:
        raise TrustPolicyError("the package is not signed", path=package)
    return parse_signature(archive.read_signature())


def _signer_fingerprint(signature, package: str) -> str:  # type: ignore[no-untyped-def]
    from trustpolicy._internal.signature import fingerprint

    if signature.signer_certificate is None:
        raise TrustPolicyError("the signature does not include its signing certificate", path=package)
    return fingerprint(signature.signer_certificate, "sha256")


def _owners(owners: str | None) -> str | None:
    if owners is None:
        return None
    items = [o.strip() for o in owners.split(";")]
    if not any(items):
        raise UsageError("--owners is empty; give owners separated by ';'")
    return ";".join(items)


def _source_url(loaded: LoadedConfig, name: str) -> str:
    sources = loaded.settings.sources
    key = name if name in sources else next((k for k in sources if k.lower() == name.lower()), None)
    if key is None:
        raise UsageError(f"no package source named {name!r} is configured; give its service index with --source-url")
    url = sources[key]
    if not url.lower().startswith(("https://", "http://")):
        raise UsageError(f"package source {name!r} is not an http(s) V3 source: {url}")
    return url


def _editor_for(target: LoadedFile) -> ConfigEditor:
    if target.scope == "user" and target.parsed is None:
        return ConfigEditor.user_file(target.path)
    return ConfigEditor(target.path)


def _add(loaded: LoadedConfig, node: Node, what: str) -> Outcome:
    out = Outcome()
    editor = _editor_for(loaded.output_file())
    editor.add_signer(node)
    _save(editor, out, f"Added {what}")
    return out


def _save(editor: ConfigEditor, out: Outcome, message: str) -> None:
    created = editor.created
    if editor.save():
        out.written.append(editor.path)
        out.say(f"{message} {'in new file' if created else 'in'} {editor.path}")


def _copy_signer(signer: TrustedSigner, *, extra: Sequence[Node] = (), replace_with: list[Node] | None = None) -> Node:
    certificates = replace_with if replace_with is not None else [
        certificate_node(c.written_fingerprint, c.hash_algorithm, c.written_allow_untrusted_root) for c in signer.certificates
    ]
    owners = ";".join(signer.owners) if signer.owners else None
    return signer_node(signer.kind, signer.name, list(certificates) + list(extra), signer.service_index, owners)


def _describe(cert) -> str:  # type: ignore[no-untyped-def]
    parts = [p for p in (cert.subject, f"valid {cert.not_before} to {cert.not_after}" if cert.not_before else None) if p]
    return f"  ({'; '.join(parts)})" if parts else ""


__all__ = [
    "Outcome",
    "Scope",
    "add_author",
    "add_certificate",
    "add_identity",
    "add_repository",
    "add_source",
    "check_fingerprint",
    "list_signers",
    "remove",
    "sync",
]
