"""`trustpolicy lint`: what NuGet accepts in trust settings without a word, but should not.

Every finding is a models.Issue with a registered code (trustpolicy.codes; lint also prints the
code's kebab-case name), the file and line (`where`) and a fix. Levels: "error" (the entry cannot
do what it is meant to, or NuGet misreads the value), "warning" (NuGet ignores or overrides
something, or an entry misses certificates it needs), "info" (advice; does not change the exit code).
The `<trustPolicy>` rules are linted too: identity rules without a CA pin or naming no subscriber,
scopes that name no signer or allow everything, exceptions that expired or expire within 14 days.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache

from trustpolicy._internal.config.hierarchy import LoadedConfig, LoadedFile, TrustSettings
from trustpolicy._internal.config.nugetconfig import FINGERPRINT_LENGTHS, TrustedSigner
from trustpolicy._internal.config.rules import ATS_PUBLIC_TRUST, IdentityRule, PackageException, SignerScope
from trustpolicy._internal.resources import DATA_DIR
from trustpolicy.codes import CODES, Code
from trustpolicy.models import Issue, Level, Location

NUGET_ORG_DATA = DATA_DIR / "nuget-org-repository-certificates.json"
# EKUs every certificate of a kind carries, so they name no subscriber: code signing, any purpose,
# and the mark of every Azure Trusted Signing public-trust certificate (docs/identity.md).
GENERIC_EKUS = frozenset({"1.3.6.1.5.5.7.3.3", "2.5.29.37.0", ATS_PUBLIC_TRUST})
# Subject attributes that name someone; C, S, L and STREET alone only say where.
IDENTIFYING_ATTRIBUTES = frozenset({"CN", "O", "OU", "SERIALNUMBER", "E", "DC"})


@dataclass(frozen=True)
class KnownCertificate:
    """A certificate nuget.org signs (or signed) packages with as a repository."""

    fingerprint: str
    hash_algorithm: str
    not_before: date
    not_after: date
    used_from: date
    used_until: date | None  # None: still in use

    @property
    def period(self) -> str:
        """When nuget.org signed with it, in words."""
        if self.used_until is None:
            return f"in use since {self.used_from}"
        return f"used from {self.used_from} to {self.used_until}"


@lru_cache(maxsize=1)
def nuget_org_certificates() -> tuple[str, tuple[KnownCertificate, ...]]:
    """nuget.org's service index and every repository certificate it has signed with (data file,
    sources stated there)."""
    data = json.loads(NUGET_ORG_DATA.read_text(encoding="utf-8"))
    certificates = tuple(
        KnownCertificate(
            c["fingerprint"].upper(),
            c["hashAlgorithm"],
            date.fromisoformat(c["notBefore"]),
            date.fromisoformat(c["notAfter"]),
            date.fromisoformat(c["usedFrom"]),
            date.fromisoformat(c["usedUntil"]) if c.get("usedUntil") else None,
        )
        for c in data["certificates"]
    )
    return data["serviceIndex"], certificates


def lint(loaded: LoadedConfig, *, at: datetime, roots: Collection[str] = ()) -> list[Issue]:
    """All findings, in file order. nuget.org certificates first used after `at` are not required;
    exceptions are judged at `at`. `roots`: SHA-256 fingerprints of the trust store's code-signing
    roots (an identity rule that pins one and names no subscriber matches far too much)."""
    findings: list[Issue] = []
    settings = loaded.settings
    for loaded_file in loaded.files:
        if loaded_file.parsed is None:
            continue
        findings += loaded_file.parsed.notes
        signers = [s for s in loaded_file.parsed.signers if isinstance(s, TrustedSigner)]
        for signer in signers:
            findings += _check_signer(signer, settings.sources, at, loaded_file)
        findings += _same_service_index(signers)
        for item in loaded_file.parsed.rules:
            if isinstance(item, IdentityRule):
                findings += _check_identity(item, roots)
            elif isinstance(item, SignerScope):
                findings += _check_scope(item, settings)
            elif isinstance(item, PackageException):
                findings += _check_exception(item, at)

    findings += settings.warnings
    mode_problem = settings.mode_problem
    if mode_problem is not None:
        findings.append(mode_problem)
    elif settings.signers and settings.mode == "accept":
        findings.append(_issue(
            Code.TP1001,
            "trustedSigners is set but signatureValidationMode is accept: packages from other signers are "
            "still installed, with a NU3034 warning",
            settings.mode_source or settings.signers[0].source,
            fix='to enforce the list, add <add key="signatureValidationMode" value="require" /> to <config>',
        ))
    if not settings.signers and not settings.rules.identities and settings.mode == "require" and settings.mode_source:
        findings.append(_issue(
            Code.TP1002,
            "signatureValidationMode is require but no trusted signer is configured: every package fails (NU3034)",
            settings.mode_source,
            fix="add trusted signers (trustpolicy trust author|repository|source ...) or set the mode to accept",
        ))
    return sorted(findings, key=lambda f: (_file_order(loaded, f.where), (f.where.line or 0) if f.where else 0))


def failing(findings: list[Issue]) -> bool:
    """Whether lint exits 1: any error or warning (info is advice only)."""
    return any(f.level in (Level.ERROR, Level.WARNING) for f in findings)


def rule(issue: Issue) -> str:
    """The kebab-case name lint prints for a code."""
    return CODES[issue.code].name


def _issue(code: Code, message: str, where: Location, *, fix: str | None = None, level: Level | None = None) -> Issue:
    info = CODES[code]
    return Issue(code, level or info.level, message, where=where, fix=fix or info.help)


def _check_signer(signer: TrustedSigner, sources: dict[str, str], at: datetime, home: LoadedFile) -> list[Issue]:
    found: list[Issue] = []
    seen: dict[tuple[str, str], Location] = {}
    for cert in signer.certificates:
        written, algorithm = cert.written_fingerprint, cert.hash_algorithm
        if cert.usable:  # SHA-1 and unknown algorithms are the parser's findings already
            expected = FINGERPRINT_LENGTHS[algorithm]
            if not re.fullmatch(r"[0-9A-Fa-f]*", written) or not written:
                found.append(_issue(
                    Code.TP1003,
                    f"fingerprint {written!r} is not hexadecimal, so it can never match a certificate",
                    cert.source,
                    fix=f"write the {expected}-digit {algorithm} hex fingerprint without spaces or separators",
                ))
            elif len(written) != expected:
                hint = " (that is the length of a SHA-1 fingerprint)" if len(written) == 40 else ""
                found.append(_issue(
                    Code.TP1004,
                    f"{algorithm} fingerprint has {len(written)} hex digits, not {expected}{hint}; it can never match",
                    cert.source,
                    fix=f"use the {algorithm} fingerprint of the signing certificate, or the hashAlgorithm that matches this one",
                ))
        if cert.written_allow_untrusted_root and written != written.upper():
            found.append(_issue(
                Code.TP1005,
                'allowUntrustedRoot="true" has no effect: NuGet compares this fingerprint case-sensitively with the '
                "upper-case hex it computes",
                cert.source,
                fix=f'write the fingerprint in upper case: fingerprint="{written.upper()}"',
            ))
        key = (algorithm, cert.fingerprint)
        if key in seen:
            found.append(_issue(
                Code.TP1006,
                f"{signer.kind} {signer.name!r} lists {algorithm} {cert.fingerprint} twice (also at line {seen[key].line})",
                cert.source,
            ))
        seen.setdefault(key, cert.source)
    if signer.kind == "repository":
        found += _check_repository(signer, sources, at, home)
    return found


def _check_repository(signer: TrustedSigner, sources: dict[str, str], at: datetime, home: LoadedFile) -> list[Issue]:
    found: list[Issue] = []
    index = signer.service_index or ""
    if not index.lower().startswith("https://"):
        found.append(_issue(
            Code.TP1008,
            f"serviceIndex {index!r} is not an https URL; `trust sync` cannot refresh this entry",
            signer.source,
        ))
    nuget_org_index, known = nuget_org_certificates()
    known_fingerprints = {k.fingerprint for k in known}
    trusted = {c.fingerprint for c in signer.certificates if c.hash_algorithm == "SHA256"}
    pins_nuget_org = _normal_url(index) == _normal_url(nuget_org_index) or bool(trusted & known_fingerprints)
    if not pins_nuget_org and _normal_url(index) not in {_normal_url(url) for url in sources.values()}:
        # Normal behind a proxy or mirror: matching never reads the serviceIndex, only `trust sync` does.
        found.append(_issue(
            Code.TP1009,
            f"serviceIndex {index} of repository {signer.name!r} matches no configured package source; that is "
            "fine when its packages come through a proxy or mirror (only `trust sync` reads the serviceIndex)",
            signer.source,
        ))
    if pins_nuget_org:
        for cert in known:
            if cert.fingerprint in trusted or cert.used_from > at.date():
                continue
            found.append(_issue(
                Code.TP1010,
                f"repository {signer.name!r} pins nuget.org but does not trust its repository certificate "
                f"{cert.fingerprint} ({cert.period}); nuget.org never replaces a countersignature, so packages "
                "countersigned with it do not match this entry (NU3034 in require mode)",
                signer.source,
                fix=f"run: {_add_certificate_command(signer.name, cert.fingerprint, home)}",
            ))
    return found


def _add_certificate_command(name: str, fingerprint: str, home: LoadedFile) -> str:
    """The one `trust` command that adds the certificate to this signer: in its own file when that
    file may be written; a read-only (machine-wide) file gets a closer copy, as NuGet writes one."""
    command = ["trustpolicy", "trust", "certificate", name, fingerprint]
    if home.writable:
        command += ["--configfile", home.path]
    return shlex.join(command)


def _same_service_index(signers: list[TrustedSigner]) -> list[Issue]:
    found: list[Issue] = []
    first: dict[str, TrustedSigner] = {}
    for signer in signers:
        if signer.kind != "repository":
            continue
        earlier = first.setdefault(signer.service_index or "", signer)
        if earlier is not signer:
            found.append(_issue(
                Code.TP1011,
                f"repositories {earlier.name!r} (line {earlier.source.line}) and {signer.name!r} have the same serviceIndex",
                signer.source,
            ))
    return found


def _check_identity(rule: IdentityRule, roots: Collection[str]) -> list[Issue]:
    """An identity must name a subscriber and the CA that vouches for it (docs/identity.md)."""
    if not rule.issuers:
        return [_issue(
            Code.TP2006,
            f"identity {rule.name!r} pins no issuing CA, so trustpolicy refuses it: a subject alone is no identity, "
            "since any CA can issue a certificate with the same CN",
            rule.source,
        )]
    named = any(name in IDENTIFYING_ATTRIBUTES for name, _ in rule.subject) or any(
        eku not in GENERIC_EKUS for eku in rule.ekus)
    if named:
        return []
    pinned_roots = [pin for pin in rule.issuers if pin.fingerprint in roots]
    if pinned_roots:
        return [_issue(
            Code.TP2005,
            f"identity {rule.name!r} pins the root CA {pinned_roots[0].fingerprint}, which issues (through its "
            "intermediates) to many subscribers, and names none of them: any code-signing certificate under that "
            "root matches",
            rule.source,
            level=Level.ERROR,
        )]
    return [_issue(
        Code.TP2005,
        f"identity {rule.name!r} names no subscriber (no CN, O or other identifying subject attribute, no identity "
        "EKU): every code-signing certificate its pinned CA issues matches; fine only for a CA that issues to you alone",
        rule.source,
    )]


def _check_scope(scope: SignerScope, settings: TrustSettings) -> list[Issue]:
    found: list[Issue] = []
    names = {signer.name for signer in settings.signers} | {rule.name for rule in settings.rules.identities}
    if scope.signer not in names:
        near = next((name for name in sorted(names) if name.lower() == scope.signer.lower()), None)
        hint = f" (names are case-sensitive: did you mean {near!r}?)" if near else ""
        found.append(_issue(
            Code.TP2007,
            f"the scope of {scope.signer!r} names no trusted signer{hint}, so it restricts nothing",
            scope.source,
        ))
    if "*" in scope.patterns:
        found.append(_issue(
            Code.TP2008,
            f"the scope of {scope.signer!r} has the pattern '*', which lets it sign every package that no other "
            "scope claims more specifically",
            scope.source,
        ))
    return found


def _check_exception(exception: PackageException, at: datetime) -> list[Issue]:
    what = f"the exception for {exception.package_id} {exception.versions.text} ({exception.reason})"
    if exception.expired(at):
        return [_issue(
            Code.TP2002,
            f"{what} expired on {exception.expires.isoformat()} and no longer applies",
            exception.source,
            level=Level.WARNING,
            fix="remove it, or renew it with a new expires date and reason if the package is still needed as it is",
        )]
    if exception.expiring(at):
        return [_issue(Code.TP2003, f"{what} expires on {exception.expires.isoformat()}", exception.source)]
    return []


def _normal_url(url: str) -> str:
    return url.strip().rstrip("/").lower()


def _file_order(loaded: LoadedConfig, where: Location | None) -> int:
    paths = [f.path for f in loaded.files]
    return paths.index(where.path) if where is not None and where.path in paths else len(paths)
