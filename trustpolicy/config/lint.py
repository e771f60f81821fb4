"""`trustpolicy lint`: mistakes in trust settings that NuGet accepts without a word.

Each Finding names the file and line and says how to fix it. Levels: "error" (the entry cannot do
what it is meant to), "warning" (NuGet ignores or overrides something), "info" (advice; does not
change the exit code).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import date, datetime, time, timezone
from functools import lru_cache

from trustpolicy.config.hierarchy import LoadedConfig
from trustpolicy.config.nugetconfig import FINGERPRINT_LENGTHS, Location, TrustedSigner
from trustpolicy.resources import DATA_DIR

NUGET_ORG_DATA = DATA_DIR / "nuget-org-repository-certificates.json"


@dataclass(frozen=True)
class Finding:
    rule: str
    level: str  # "error" | "warning" | "info"
    message: str
    fix: str
    source: Location

    def as_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["source"] = {"path": self.source.path, "line": self.source.line}
        return data


@dataclass(frozen=True)
class KnownCertificate:
    fingerprint: str
    hash_algorithm: str
    not_before: date
    not_after: date

    def valid_at(self, moment: datetime) -> bool:
        start = datetime.combine(self.not_before, time.min, timezone.utc)
        end = datetime.combine(self.not_after, time.max, timezone.utc)
        return start <= moment <= end


@lru_cache(maxsize=1)
def nuget_org_certificates() -> tuple[str, tuple[KnownCertificate, ...]]:
    """nuget.org's service index and its repository certificates (data file, sources stated there)."""
    data = json.loads(NUGET_ORG_DATA.read_text(encoding="utf-8"))
    certificates = tuple(
        KnownCertificate(c["fingerprint"].upper(), c["hashAlgorithm"], date.fromisoformat(c["notBefore"]), date.fromisoformat(c["notAfter"]))
        for c in data["certificates"]
    )
    return data["serviceIndex"], certificates


def lint(loaded: LoadedConfig, *, at: datetime) -> list[Finding]:
    """All findings, in file order. `at` decides which nuget.org certificate is current."""
    findings: list[Finding] = []
    settings = loaded.settings
    for loaded_file in loaded.files:
        if loaded_file.parsed is None:
            continue
        for note in loaded_file.parsed.notes:
            findings.append(Finding(note.kind, "warning", note.message, _NOTE_FIXES.get(note.kind, "remove or correct it"), note.source))
        signers = [s for s in loaded_file.parsed.signers if isinstance(s, TrustedSigner)]
        for signer in signers:
            findings += _check_signer(signer, settings.sources, at)
        findings += _same_service_index(signers)

    for warning in settings.warnings:
        findings.append(
            Finding(
                "conflicting-allow-untrusted-root",
                "warning",
                f"{warning.code}: {warning.message}",
                "give every entry of this certificate the same allowUntrustedRoot value",
                warning.source,
            )
        )
    if settings.signers and settings.mode == "accept":
        where = settings.mode_source or settings.signers[0].source
        findings.append(
            Finding(
                "signers-in-accept-mode",
                "info",
                "trustedSigners is set but signatureValidationMode is accept: packages from other signers are "
                "still installed, with a NU3034 warning",
                'to enforce the list, add <add key="signatureValidationMode" value="require" /> to <config>',
                where,
            )
        )
    if not settings.signers and settings.mode == "require" and settings.mode_source:
        findings.append(
            Finding(
                "require-without-signers",
                "error",
                "signatureValidationMode is require but no trusted signer is configured: every package fails (NU3034)",
                "add trusted signers (trustpolicy trust author|repository|source ...) or set the mode to accept",
                settings.mode_source,
            )
        )
    return sorted(findings, key=lambda f: (_file_order(loaded, f.source.path), f.source.line))


def _check_signer(signer: TrustedSigner, sources: dict[str, str], at: datetime) -> list[Finding]:
    found: list[Finding] = []
    seen: dict[tuple[str, str], Location] = {}
    for cert in signer.certificates:
        written, algorithm = cert.written_fingerprint, cert.hash_algorithm
        expected = FINGERPRINT_LENGTHS[algorithm]
        if algorithm == "SHA1":
            found.append(
                Finding(
                    "sha1-fingerprint",
                    "error",
                    f"{signer.kind} {signer.name!r} trusts a SHA-1 fingerprint; SHA-1 is not a documented trustedSigners algorithm and NuGet no longer accepts SHA-1 fingerprints (NU3043)",
                    "replace it with the certificate's SHA-256 fingerprint and hashAlgorithm=\"SHA256\"",
                    cert.source,
                )
            )
        if not re.fullmatch(r"[0-9A-Fa-f]*", written) or not written:
            found.append(
                Finding(
                    "fingerprint-not-hex",
                    "error",
                    f"fingerprint {written!r} is not hexadecimal, so it can never match a certificate",
                    f"write the {expected}-digit {algorithm} hex fingerprint without spaces or separators",
                    cert.source,
                )
            )
        elif len(written) != expected:
            hint = " (that is the length of a SHA-1 fingerprint)" if len(written) == 40 else ""
            found.append(
                Finding(
                    "fingerprint-length",
                    "error",
                    f"{algorithm} fingerprint has {len(written)} hex digits, not {expected}{hint}; it can never match",
                    f"use the {algorithm} fingerprint of the signing certificate, or the hashAlgorithm that matches this one",
                    cert.source,
                )
            )
        if cert.written_allow_untrusted_root and written != written.upper():
            found.append(
                Finding(
                    "allow-untrusted-root-ignored",
                    "warning",
                    'allowUntrustedRoot="true" has no effect: NuGet compares this fingerprint case-sensitively with the upper-case hex it computes',
                    f'write the fingerprint in upper case: fingerprint="{written.upper()}"',
                    cert.source,
                )
            )
        key = (algorithm, cert.fingerprint)
        if key in seen:
            found.append(
                Finding(
                    "duplicate-certificate",
                    "warning",
                    f"{signer.kind} {signer.name!r} lists {algorithm} {cert.fingerprint} twice (also at line {seen[key].line})",
                    "remove one of them",
                    cert.source,
                )
            )
        seen.setdefault(key, cert.source)
    if signer.kind == "repository":
        found += _check_repository(signer, sources, at)
    return found


def _check_repository(signer: TrustedSigner, sources: dict[str, str], at: datetime) -> list[Finding]:
    found: list[Finding] = []
    index = signer.service_index or ""
    if "" in signer.owners:
        found.append(
            Finding(
                "empty-owner",
                "warning",
                f"the owners of repository {signer.name!r} contain an empty item ({';'.join(signer.owners)!r}): a stray ';'",
                "remove the extra ';' (owners are separated by single semicolons)",
                signer.source,
            )
        )
    if not index.lower().startswith("https://"):
        found.append(
            Finding(
                "service-index-not-https",
                "warning",
                f"serviceIndex {index!r} is not an https URL; `trust sync` cannot refresh this entry",
                "use the source's https V3 service index URL",
                signer.source,
            )
        )
    if _normal_url(index) not in {_normal_url(url) for url in sources.values()}:
        found.append(
            Finding(
                "service-index-without-source",
                "warning",
                f"serviceIndex {index} of repository {signer.name!r} matches no configured package source",
                "correct the serviceIndex, or add the source to <packageSources> if packages come from it",
                signer.source,
            )
        )
    nuget_org_index, known = nuget_org_certificates()
    if _normal_url(index) == _normal_url(nuget_org_index):
        trusted = {c.fingerprint for c in signer.certificates if c.hash_algorithm == "SHA256"}
        current = [k for k in known if k.valid_at(at)]
        missing = [k for k in current if k.fingerprint not in trusted]
        for cert in missing:
            found.append(
                Finding(
                    "nuget-org-certificate-missing",
                    "warning",
                    f"repository {signer.name!r} does not trust nuget.org's current repository certificate "
                    f"{cert.fingerprint} (valid {cert.not_before} to {cert.not_after}); packages it signs will not match",
                    f"run `trustpolicy trust sync {signer.name}` or add <certificate fingerprint=\"{cert.fingerprint}\" hashAlgorithm=\"SHA256\" allowUntrustedRoot=\"false\" />",
                    signer.source,
                )
            )
    return found


def _same_service_index(signers: list[TrustedSigner]) -> list[Finding]:
    found: list[Finding] = []
    first: dict[str, TrustedSigner] = {}
    for signer in signers:
        if signer.kind != "repository":
            continue
        earlier = first.setdefault(signer.service_index or "", signer)
        if earlier is not signer:
            found.append(
                Finding(
                    "duplicate-service-index",
                    "warning",
                    f"repositories {earlier.name!r} (line {earlier.source.line}) and {signer.name!r} have the same serviceIndex",
                    "merge them into one <repository> entry",
                    signer.source,
                )
            )
    return found


_NOTE_FIXES = {
    "duplicate-section": "merge its content into the first section of that name",
    "section-case": "rename the section with the exact casing NuGet expects",
    "duplicate-item": "remove the repeated element",
    "duplicate-key": "give each package source its own key, or remove the repeated one",
    "unknown-element": "remove it, or correct its name",
    "owners-on-author": "remove <owners>, or make the signer a <repository> if owners should apply",
}


def _normal_url(url: str) -> str:
    return url.strip().rstrip("/").lower()


def _file_order(loaded: LoadedConfig, path: str) -> int:
    paths = [f.path for f in loaded.files]
    return paths.index(path) if path in paths else len(paths)


def failing(findings: list[Finding]) -> bool:
    return any(f.level in ("error", "warning") for f in findings)
