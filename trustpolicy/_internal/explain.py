"""Why a package failed, and what would allow the failing packages of a run.

`explain` gives one line of cause (and, where one exists, a fix) per failing package. `suggest`
groups the packages that only lack a trusted signer into one trustedSigners entry per signer, and
checks each proposal with the same engine before it is shown: a suggestion names only packages that
pass once every suggested entry is in place. Works on verdicts, so cached verdicts are explained the
same way as fresh ones.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from trustpolicy.codes import Code
from trustpolicy.models import Level, Location, PackageReport, PackageVerdict, Refusal, SignatureReport, Status, Suggestion

if TYPE_CHECKING:
    from trustpolicy._internal.config import TrustedSigner
    from trustpolicy.context import TrustContext

__all__ = ["Advice", "Judge", "addressed_codes", "common_name", "explain", "signer_name", "suggest", "with_signers"]

# signature.distinguished_name: "CN=Contoso Ltd, O=Contoso, C=US" (a quoted value may hold commas)
_CN = re.compile(r'(?:^|,\s*)CN=("(?:[^"]|"")*"|[^,]+)')

# The steps a trustedSigners entry can change; a package failing any other step (integrity, the
# graph's records, an unreadable file) cannot be allowed by trusting someone.
_SIGNER_STEPS = frozenset({"trusted-signers", "trust"})

_MISSING = "run the restore again, or pass --packages-dir with the folder that holds it"
_RESTORE = "delete the package folder and restore it again from a trusted source; investigate how it changed"


# -- one package ---------------------------------------------------------------------------------------


def explain(
    verdict: PackageVerdict, package_id: str, version: str, *, mode: str, configfile: str | None = None
) -> tuple[str | None, str | None]:
    """(cause, fix) for an invalid package; (None, None) for a valid one.

    A package that only lacks a trusted signer gets no fix here: the run's suggestions give it one
    entry per signer (a command per package would fail from the second package of a signer on).
    `configfile` is accepted for callers of the older signature and not used.
    """
    if verdict.passed:
        return None, None
    errors = [i for i in verdict.issues if i.level is Level.ERROR] or list(verdict.issues)
    codes = {i.code for i in errors}
    name = f"{package_id} {version}"
    first = errors[0].message if errors else "the package did not pass verification"

    if Code.TP0001 in codes:
        return f"{name} is in the graph but its .nupkg was not found", _MISSING
    if Code.TP0002 in codes or Code.NU3008 in codes:
        return f"{name} on disk is not the package that was restored or signed: {first}", _RESTORE
    if Code.TP0003 in codes:
        return first, None
    if Code.TP2002 in codes:  # the exception that would have allowed it has expired: that is the news
        return next(i.message for i in errors if i.code == Code.TP2002), None
    if Code.NU3004 in codes:
        return f"{name} is unsigned and {mode} mode allows only signed packages", None
    if Code.NU3034 in codes:
        return f"{name} is {_signed_by(verdict)}, which no trustedSigners entry allows{_owner_note(verdict)}", None
    return first, None


def addressed_codes(verdict: PackageVerdict) -> frozenset[Code]:
    """The codes the cause and fix of `explain` (and a suggestion) speak about, for this verdict."""
    errors = [i for i in verdict.issues if i.level is Level.ERROR] or list(verdict.issues)
    codes = {i.code for i in errors}
    for group in ({Code.TP0001}, {Code.TP0002, Code.NU3008}, {Code.TP0003}, {Code.NU3004}, {Code.NU3034, Code.NU3018}):
        if codes & group:
            return frozenset(group)
    return frozenset({errors[0].code}) if errors else frozenset()


def _signed_by(verdict: PackageVerdict) -> str:
    words = []
    for signature in verdict.signatures:
        who = signer_name(signature)
        if signature.kind == "repository" and signature.service_index:
            who = signature.service_index
        verb = "signed by" if signature.placement == "primary" else "countersigned by"
        words.append(f"{verb} {signature.kind} {who!r}" if signature.kind != "unknown" else f"{verb} {who!r}")
    return ", ".join(words) or "signed"


def _owner_note(verdict: PackageVerdict) -> str:
    reason = verdict.trusted_signer_reason or ""
    return f" ({reason})" if "owners" in reason else ""


def signer_name(signature: SignatureReport) -> str:
    """A readable trustedSigners name: the certificate's common name, else the service index host."""
    return common_name(signature.subject or "") or signature.service_index or "signer"


def common_name(subject: str) -> str | None:
    """The CN of a distinguished name as signature.distinguished_name writes it, unquoted."""
    match = _CN.search(subject)
    if not match:
        return None
    value = match.group(1).strip()
    return value[1:-1].replace('""', '"') if value.startswith('"') else value


# -- suggestions ---------------------------------------------------------------------------------------

# Verdicts of package files (no graph records) under a variant of the run's context.
Judge = Callable[["TrustContext", Sequence[PackageReport]], list[PackageVerdict]]

_MAX_ROUNDS = 6  # each round moves every still-failing package on; 4 options at most, then a last check


@dataclass(frozen=True)
class _Option:
    """One way to allow a package: trust this signature's certificate (with allowUntrustedRoot?)."""

    kind: str  # "author" | "repository"
    key: str  # the entry it joins: an author's name, a repository's service index (lower case)
    signature: SignatureReport
    untrusted_root: bool = False

    @property
    def fingerprint(self) -> str:
        return self.signature.fingerprints["SHA256"]


@dataclass
class _Group:
    kind: str
    key: str
    members: list[int] = field(default_factory=list)
    certificates: dict[str, bool] = field(default_factory=dict)  # SHA-256 -> allowUntrustedRoot
    owners: list[str] = field(default_factory=list)
    ownerless: list[int] = field(default_factory=list)  # members whose signature names no owner
    service_index: str | None = None
    name: str = ""
    existing: TrustedSigner | None = None

    def add(self, index: int, option: _Option) -> None:
        self.members.append(index)
        fp = option.fingerprint
        self.certificates[fp] = self.certificates.get(fp, False) or option.untrusted_root
        if self.kind == "repository":
            self.service_index = self.service_index or option.signature.service_index
            if not option.signature.owners:
                self.ownerless.append(index)
            self.owners += [o for o in option.signature.owners if o not in self.owners]

    @property
    def entry_owners(self) -> tuple[str, ...]:
        """The owners the entry lists: none when a package names none (it could not match otherwise)."""
        if self.kind != "repository" or self.ownerless:
            return ()
        if self.existing is not None:
            if not self.existing.owners:
                return ()
            return (*self.existing.owners, *(o for o in sorted(self.owners) if o not in self.existing.owners))
        return tuple(sorted(self.owners))


@dataclass(frozen=True)
class Advice:
    """What `suggest` found: the entries, the signers it may not pin, and which package (by its
    index in the list given) each suggestion allows."""

    suggestions: tuple[Suggestion, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    covered: dict[int, int] = field(default_factory=dict)  # package index -> suggestion index


def suggest(
    packages: Sequence[PackageReport],
    context: TrustContext,
    judge: Judge,
    *,
    untrusted_roots: bool = True,
) -> Advice:
    """One trustedSigners entry per signer that allows the failing packages only a signer keeps out.

    A package is first offered to its repository (the countersignature's or the primary's, by
    service index, owners merged), else to its author (by certificate). Every proposal is checked by
    `judge` under the run's policy plus all proposals together; a package that still fails moves on:
    to allowUntrustedRoot="true" when its chain ends in an untrusted root and `untrusted_roots`
    allows that, then to its author. What passes in the last round is suggested; the rest is refused
    with a reason. An entry that exists for the same repository is extended (`replaces`), never
    shadowed by a second one.
    """
    candidates = [i for i, p in enumerate(packages) if _allowable(p)]
    options = {i: _options(packages[i].verdict, untrusted_roots) for i in candidates}
    blocked: dict[int, tuple[_Option, str]] = {}  # an untrusted root that was not pinned: said if nothing works
    untrusted_kinds: dict[int, set[str]] = {i: set() for i in candidates}  # signers kept out by their root
    refused: dict[int, tuple[_Option, str]] = {}
    state = {i: 0 for i in candidates if options[i]}
    for i in candidates:
        if not options[i] and _identity_author(packages[i].verdict):
            refused[i] = _identity_refusal(packages[i])
        elif not options[i]:
            refused[i] = (_fallback_option(packages[i].verdict), "its signature carries no usable signing certificate")
    groups: list[_Group] = []
    for _ in range(_MAX_ROUNDS):
        if not state:
            break
        plan = {i: options[i][state[i]] for i in state}
        groups = _groups(plan, context)
        variant = _with_groups(context, groups)
        verdicts = judge(variant, [packages[i] for i in plan])
        moved = False
        for i, verdict in zip(list(plan), verdicts):
            if verdict.passed:
                continue
            moved = True
            chosen = plan[i]
            if not chosen.untrusted_root and _blocked_by_untrusted_root(verdict, chosen.signature.placement):
                untrusted_kinds[i].add(chosen.kind)
                if not untrusted_roots and i not in blocked:
                    blocked[i] = (chosen, _untrusted_reason(verdict, chosen))
            nxt = _next_option(options[i], state[i], untrusted_kinds[i])
            if nxt is None:
                refused[i] = blocked.get(i) or (chosen, _failure(verdict))
                del state[i]
            else:
                state[i] = nxt
        if not moved:
            break
    else:  # still moving after the last round: what failed in it is not suggested
        for i in list(state):
            refused[i] = (options[i][state[i]], "no trustedSigners entry was found that allows it")
            del state[i]
    final = [g for g in groups if all(m in state for m in g.members)] if state else []
    target = _target_configfile(context) if final else None
    names = [signer.name for signer in context.config.signers]
    suggestions = tuple(_suggestion(g, packages, target, unique_name=names.count(g.name) == 1) for g in final)
    covered = {member: number for number, group in enumerate(final) for member in group.members}
    return Advice(suggestions, _refusals(refused, packages), covered)


def _allowable(package: PackageReport) -> bool:
    """Failing only because no trusted signer allows it (and maybe its chain): a signer can fix that."""
    verdict = package.verdict
    if verdict.passed or not verdict.path or not verdict.signatures:
        return False
    failing = {step.step for step in verdict.steps if step.status != Status.VALID}
    return "trusted-signers" in failing and failing <= _SIGNER_STEPS


def _options(verdict: PackageVerdict, untrusted_roots: bool) -> list[_Option]:
    """The package's repository, then its author; both with allowUntrustedRoot only after both without
    it (a pin with an authority behind it is always preferred)."""
    out: list[_Option] = []
    repository = next((s for s in verdict.signatures if s.kind == "repository" and s.service_index
                       and "SHA256" in s.fingerprints), None)
    # A Trusted Signing author's certificate is renewed every few days: a pin would soon stop matching.
    author = next((s for s in verdict.signatures if s.kind == "author" and s.placement == "primary"
                   and "SHA256" in s.fingerprints and not s.identities), None)
    if repository is not None:
        assert repository.service_index is not None
        out.append(_Option("repository", repository.service_index.lower(), repository))
    if author is not None:
        out.append(_Option("author", signer_name(author), author))
    if untrusted_roots:
        out += [replace(option, untrusted_root=True) for option in out]
    return out


def _identity_author(verdict: PackageVerdict) -> SignatureReport | None:
    return next((s for s in verdict.signatures if s.kind == "author" and s.identities), None)


def _identity_refusal(package: PackageReport) -> tuple[_Option, str]:
    """A Trusted Signing author is trusted by its identity (docs/identity.md), never by a certificate."""
    author = _identity_author(package.verdict)
    assert author is not None and package.verdict.path is not None
    command = shlex.join(["trustpolicy", "trust", "author", signer_name(author), "--identity-from", package.verdict.path])
    return (_Option("author", signer_name(author), author),
            "it signs with Trusted Signing certificates, renewed every few days, so a certificate pin would soon "
            f"stop matching: trust its identity instead with `{command}`")


def _fallback_option(verdict: PackageVerdict) -> _Option:
    signature = verdict.signatures[0]
    kind = signature.kind if signature.kind in ("author", "repository") else "author"
    return _Option(kind, signer_name(signature), signature)


def _next_option(options: list[_Option], current: int, untrusted_kinds: set[str]) -> int | None:
    """The next option to try; one with allowUntrustedRoot only for a signer that an untrusted root
    (and nothing else) kept out."""
    for index in range(current + 1, len(options)):
        option = options[index]
        if not option.untrusted_root or option.kind in untrusted_kinds:
            return index
    return None


def _blocked_by_untrusted_root(verdict: PackageVerdict, placement: str) -> bool:
    """The chain of that signature ends in an untrusted root (NU3018 error), and nothing else that
    allowUntrustedRoot would also wave through (an expired certificate without timestamp, NU3037)."""
    mine = [i for i in verdict.issues if i.level is Level.ERROR and i.signature == placement]
    return any(i.code is Code.NU3018 for i in mine) and not any(i.code is Code.NU3037 for i in mine)


def _untrusted_reason(verdict: PackageVerdict, option: _Option) -> str:
    root = next((i.message for i in verdict.issues if i.code is Code.NU3018 and i.level is Level.ERROR
                 and i.signature == option.signature.placement), "")
    match = re.search(r"\(root: (.*)\)", root)
    where = f" ({match.group(1)})" if match else ""
    return (f"its certificate chain ends in a root that no trust store here trusts{where}: add that root with "
            "--extra-roots if you trust it, or pin the certificate itself with --allow-untrusted-root")


def _failure(verdict: PackageVerdict) -> str:
    """The first error of a what-if verdict that is not about the allow list itself."""
    errors = [i for i in verdict.issues if i.level is Level.ERROR]
    chosen = next((i for i in errors if i.code is not Code.NU3034), errors[0] if errors else None)
    return f"{chosen.code}: {chosen.message}" if chosen else "it still fails"


def _groups(plan: dict[int, _Option], context: TrustContext) -> list[_Group]:
    """The plan as entries: one per repository service index or author name, in a stable order."""
    by_key: dict[tuple[str, str], _Group] = {}
    for index in sorted(plan):
        option = plan[index]
        group = by_key.setdefault((option.kind, option.key), _Group(option.kind, option.key))
        group.add(index, option)
    groups = sorted(by_key.values(), key=lambda g: (g.kind != "repository", g.key))
    signers = context.config.signers
    used = {signer.name for signer in signers}
    for group in groups:
        if group.kind == "repository":
            group.existing = next((s for s in signers if s.kind == "repository" and s.service_index
                                   and s.service_index.lower() == group.key), None)
        if group.existing is not None:
            group.name = group.existing.name
            continue
        base = _repository_name(group.service_index or group.key) if group.kind == "repository" else group.key
        name, number = base, 2
        while name in used:
            name, number = f"{base} ({number})", number + 1
        used.add(name)
        group.name = name
    return groups


def _with_groups(context: TrustContext, groups: list[_Group]) -> TrustContext:
    """The run's context with every proposed entry in place (an existing repository entry replaced)."""
    replaced = {id(g.existing): g for g in groups if g.existing is not None}
    signers = [_signer(replaced[id(s)]) if id(s) in replaced else s for s in context.config.signers]
    signers += [_signer(g) for g in groups if g.existing is None]
    return with_signers(context, signers)


def with_signers(context: TrustContext, signers: Sequence[TrustedSigner]) -> TrustContext:
    """`context` with these trustedSigners instead of the config's (everything else the same)."""
    loaded = context.loaded
    return replace(context, loaded=replace(loaded, settings=replace(loaded.settings, signers=tuple(signers))))


def _signer(group: _Group) -> TrustedSigner:
    from trustpolicy._internal.config import CertificateEntry, Location as ConfigLocation, TrustedSigner

    where = group.existing.source if group.existing is not None else ConfigLocation("(suggested)", 0)
    certificates = [(c.fingerprint, c.hash_algorithm, c.allow_untrusted_root or group.certificates.get(c.fingerprint, False))
                    for c in (group.existing.certificates if group.existing is not None else ())]
    present = {fp for fp, algorithm, _ in certificates if algorithm == "SHA256"}
    certificates += [(fp, "SHA256", untrusted) for fp, untrusted in group.certificates.items() if fp not in present]
    entries = tuple(CertificateEntry(fp, algorithm, untrusted, where, fp, untrusted) for fp, algorithm, untrusted in certificates)
    return TrustedSigner(group.kind, group.name, entries, group.service_index if group.kind == "repository" else None,
                         group.entry_owners, where)


def _repository_name(service_index: str) -> str:
    host = urlsplit(service_index).hostname or service_index
    return "nuget.org" if host == "api.nuget.org" else host


def _target_configfile(context: TrustContext) -> str | None:
    """The file `trustpolicy trust` must write for this run's check to read the entry: the one
    --configfile, else where NuGet writes a new signer in the hierarchy the check read."""
    if context.configfile:
        return context.configfile
    from trustpolicy.errors import TrustPolicyError

    try:
        return context.loaded.output_file().path
    except TrustPolicyError:
        return None


def _suggestion(group: _Group, packages: Sequence[PackageReport], target: str | None, *, unique_name: bool) -> Suggestion:
    from trustpolicy._internal.config.edit import certificate_node, signer_node

    signer = _signer(group)
    owners = ";".join(signer.owners) or None
    xml = signer_node(group.kind, group.name, [certificate_node(c.fingerprint, c.hash_algorithm, c.allow_untrusted_root)
                                               for c in signer.certificates],
                      signer.service_index, owners).render("", "  ", "\n")
    untrusted = tuple(fp for fp, flag in group.certificates.items() if flag)
    names = tuple(f"{packages[i].id} {packages[i].version}" for i in group.members)
    commands: tuple[str, ...] = ()
    without: tuple[str, ...] = ()
    replaces = None
    if group.existing is None:
        commands = _commands(group, packages, owners, target)
        if owners:
            without = _commands(group, packages, None, target)
    else:
        replaces = Location(group.existing.source.path, group.existing.source.line or None)
        commands = _certificate_commands(group, signer, unique=unique_name)
    return Suggestion(
        kind=group.kind,
        name=group.name,
        packages=names,
        fingerprints=tuple(group.certificates),
        untrusted_roots=untrusted,
        service_index=signer.service_index,
        owners=signer.owners,
        commands=commands,
        xml=xml,
        replaces=replaces,
        without_owners=without,
        note=_note(group, untrusted),
    )


def _commands(group: _Group, packages: Sequence[PackageReport], owners: str | None, target: str | None) -> tuple[str, ...]:
    """`trust author|repository NAME PACKAGE` with the first certificate, `trust certificate` for the rest."""
    first, *rest = group.certificates
    source = next(i for i in group.members
                  if any(s.fingerprints.get("SHA256") == first and s.kind == group.kind for s in packages[i].verdict.signatures))
    tail = ["--configfile", target] if target else []
    words = ["trustpolicy", "trust", group.kind, group.name, str(packages[source].verdict.path)]
    if owners:
        words += ["--owners", owners]
    if group.certificates[first]:
        words.append("--allow-untrusted-root")
    commands = [words + tail]
    for fp in rest:
        more = ["trustpolicy", "trust", "certificate", group.name, fp]
        if group.certificates[fp]:
            more.append("--allow-untrusted-root")
        commands.append(more + tail)
    return tuple(shlex.join(command) for command in commands)


def _certificate_commands(group: _Group, signer: TrustedSigner, *, unique: bool) -> tuple[str, ...]:
    """An existing entry that only lacks certificates: `trust certificate` adds them in its own file.
    Anything else (owners, allowUntrustedRoot on a certificate it has) is an edit of the XML."""
    existing = group.existing
    assert existing is not None
    kept = {(c.fingerprint, c.hash_algorithm, c.allow_untrusted_root) for c in existing.certificates}
    if not unique or not os.access(existing.source.path, os.W_OK) or signer.owners != existing.owners or not kept <= {
            (c.fingerprint, c.hash_algorithm, c.allow_untrusted_root) for c in signer.certificates}:
        return ()
    commands = []
    for certificate in signer.certificates[len(existing.certificates):]:
        words = ["trustpolicy", "trust", "certificate", existing.name, certificate.fingerprint]
        if certificate.allow_untrusted_root:
            words.append("--allow-untrusted-root")
        commands.append(shlex.join(words + ["--configfile", existing.source.path]))
    return tuple(commands)


def _note(group: _Group, untrusted: tuple[str, ...]) -> str | None:
    notes = []
    if untrusted:
        notes.append(f"WARNING: {len(untrusted)} certificate(s) of {group.kind} {group.name!r} chain to a root no trust "
                     "store here trusts; allowUntrustedRoot=\"true\" trusts the certificate itself, with no authority "
                     "behind it. Prefer adding the root with --extra-roots if you trust it.")
    if group.kind == "repository" and group.ownerless:
        notes.append("Some of its packages name no owner, so the entry cannot restrict owners: it allows every "
                     "package this repository signs.")
    return " ".join(notes) or None


def _refusals(refused: dict[int, tuple[_Option, str]], packages: Sequence[PackageReport]) -> tuple[Refusal, ...]:
    by_signer: dict[tuple[str, str, str], list[int]] = {}
    for index in sorted(refused):
        option, reason = refused[index]
        name = _repository_name(option.signature.service_index or option.key) if option.kind == "repository" else option.key
        by_signer.setdefault((option.kind, name, reason), []).append(index)
    return tuple(Refusal(kind, name, tuple(f"{packages[i].id} {packages[i].version}" for i in members), reason)
                 for (kind, name, reason), members in by_signer.items())
