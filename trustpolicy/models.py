"""The result model, from the verifier to every report: typed, frozen, derived in one place.

A verification step (integrity, an allow list, trust) ends in a `Status`; its `Issue`s explain it at
a `Level` that depends on the mode. A package's verdict follows from its steps' statuses, never from
the loudest message: an accept-mode NU3013 is a warning, yet its status rejects the package
(docs/verification.md section 1). `PackageVerdict.passed` is the one place that decides.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cached_property

from trustpolicy._internal.clock import format_moment
from trustpolicy.codes import Code, Level

__all__ = [
    "ExceptionUse",
    "GraphReport",
    "Issue",
    "Level",
    "Location",
    "MatchedSigner",
    "PackageReport",
    "PackageVerdict",
    "Refusal",
    "SignatureReport",
    "Status",
    "StepResult",
    "Suggestion",
    "Summary",
    "worst",
]


class Status(enum.IntEnum):
    """NuGet's SignatureVerificationStatus, ordered so that min() is the more severe."""

    UNKNOWN = 0
    SUSPECT = 1
    DISALLOWED = 2
    VALID = 3

    @property
    def label(self) -> str:
        return self.name.lower()


def worst(*statuses: Status) -> Status:
    """The combined status of several results: the most severe one (an empty list is UNKNOWN)."""
    return min(statuses, default=Status.UNKNOWN)


@dataclass(frozen=True)
class Location:
    """A place in a file: a config line, a graph entry (JSON pointer or packages.config step).

    `kind` says what the file is when that matters to a reader ("assets", "lock", "folder", ...).
    """

    path: str
    line: int | None = None
    pointer: str | None = None
    kind: str | None = None

    def __str__(self) -> str:
        return f"{self.path}:{self.line}" if self.line else self.path

    def to_json(self) -> dict[str, object]:
        return {"path": self.path, "kind": self.kind, "pointer": self.pointer, "line": self.line}



@dataclass(frozen=True)
class Issue:
    """One finding, wherever it comes from: verification, the graph, configuration, lint, signing.

    `signature` says which signature of a package it is about ("primary" | "countersignature");
    `where` points into a file (a config line, a graph entry); `fix` says what to do. `message` is
    one line; `detail` holds the long text behind it (a whole chain or revocation answer), if any.
    """

    code: Code
    level: Level
    message: str
    signature: str | None = None
    where: Location | None = None
    cause: str | None = None
    fix: str | None = None
    detail: str | None = None

    def __post_init__(self) -> None:
        # Plain strings are accepted and checked: an unregistered code or level is a bug, not a finding.
        if type(self.code) is not Code:
            object.__setattr__(self, "code", Code(self.code))
        if type(self.level) is not Level:
            object.__setattr__(self, "level", Level(self.level))

    def to_json(self) -> dict[str, object]:
        """The issue object of the package reports (schemas/report.schema.json); `detail` only when set."""
        data: dict[str, object] = {"code": self.code.value, "level": self.level.value, "message": self.message,
                                   "signature": self.signature}
        if self.detail:
            data["detail"] = self.detail
        return data



@dataclass(frozen=True)
class StepResult:
    """The outcome of one verification step (NuGet's provider result): a status plus its issues."""

    step: str  # "read" | "unsigned" | "signature" | "integrity" | "trusted-signers" | "trust" | "graph" | ...
    status: Status
    issues: tuple[Issue, ...] = ()




@dataclass(frozen=True)
class MatchedSigner:
    """The allow-list entry a package matched: trustedSigners name and kind, and the fingerprint.

    `rule` says what kind of entry it was: "fingerprint" (a trustedSigners certificate or another
    fingerprint list) or "identity" (a `<trustPolicy>` identity rule, at `source`; `fingerprint` is
    then the certificate it matched).
    """

    name: str
    kind: str  # "author" | "repository"
    fingerprint: str | None
    placement: str = "primary"  # which signature matched: "primary" | "countersignature"
    rule: str = "fingerprint"  # "fingerprint" | "identity"
    source: Location | None = None

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {"name": self.name, "kind": self.kind, "fingerprint": self.fingerprint}
        if self.rule != "fingerprint":  # a fingerprint match reads as it always has
            data["rule"] = self.rule
            data["source"] = {"path": self.source.path, "line": self.source.line} if self.source else None
        return data



@dataclass(frozen=True)
class ExceptionUse:
    """The `<trustPolicy>` exception that allowed a package although it is unsigned or untrusted."""

    package_id: str
    versions: str  # the version range as written
    expires: str  # YYYY-MM-DD: the first day it no longer applies
    reason: str
    source: Location | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.package_id,
            "versions": self.versions,
            "expires": self.expires,
            "reason": self.reason,
            "source": {"path": self.source.path, "line": self.source.line} if self.source else None,
        }



@dataclass(frozen=True)
class SignatureReport:
    """What the report says about one signature (primary or repository countersignature)."""

    kind: str  # "author" | "repository" | "unknown"
    placement: str  # "primary" | "countersignature"
    subject: str | None
    fingerprints: Mapping[str, str] = field(default_factory=dict)  # {"SHA256": uppercase hex}
    timestamp: datetime | None = None  # time proven by the valid timestamp, if any
    service_index: str | None = None
    owners: tuple[str, ...] = ()
    status: Status | None = None  # None: the trust step did not evaluate this signature
    identities: tuple[str, ...] = ()  # Trusted Signing identity EKUs: its certificates live for days

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "kind": self.kind,
            "placement": self.placement,
            "subject": self.subject,
            "fingerprints": dict(self.fingerprints),
            "timestamp": format_moment(self.timestamp) if self.timestamp else None,
            "serviceIndex": self.service_index,
            "owners": list(self.owners),
            "status": self.status.label if self.status is not None else "not-evaluated",
        }
        if self.identities:
            data["identities"] = list(self.identities)
        return data



@dataclass(frozen=True)
class PackageVerdict:
    """The judgement of one package file.

    The verdict is derived, never stored: "valid" iff every step is VALID and, when `errors_fail`
    (the verify command counts error-level messages, docs/verification.md section 9), no issue is an
    error. `trusted_signer` is the allow-list entry that matched, or None with `trusted_signer_reason`.
    """

    path: str | None
    id: str | None
    version: str | None
    signed: bool | None  # None when the file could not be read far enough to tell
    steps: tuple[StepResult, ...]
    signatures: tuple[SignatureReport, ...] = ()
    trusted_signer: MatchedSigner | None = None
    trusted_signer_reason: str | None = None
    errors_fail: bool = False
    exception: ExceptionUse | None = None

    @cached_property
    def passed(self) -> bool:
        if not self.steps or any(step.status != Status.VALID for step in self.steps):
            return False
        return not (self.errors_fail and any(i.level is Level.ERROR for step in self.steps for i in step.issues))

    @property
    def verdict(self) -> str:
        return "valid" if self.passed else "invalid"

    @property
    def status(self) -> Status:
        """The combined step status (UNKNOWN when no step ran)."""
        return worst(*(step.status for step in self.steps))

    @cached_property
    def issues(self) -> tuple[Issue, ...]:
        """Every step's issues in order; a rejection whose findings are only warnings in this mode gets
        one more error saying so, so that an invalid verdict always carries an error."""
        issues = tuple(issue for step in self.steps for issue in step.issues)
        if self.passed or any(issue.level is Level.ERROR for issue in issues):
            return issues
        failing = next((step for step in self.steps if step.status != Status.VALID), None)
        if failing is None:
            return issues
        cause = next(iter(failing.issues), None)
        because = f" because of {cause.code} ({cause.message})" if cause else ""
        rejection = Issue(
            cause.code if cause else Code.TP0004,
            Level.ERROR,
            f"The package is rejected: the {failing.step} step is {failing.status.label}{because}, even though "
            "that finding is only a warning in this mode.",
            cause.signature if cause else None,
        )
        return (*issues, rejection)

    @property
    def errors(self) -> tuple[Issue, ...]:
        return tuple(issue for issue in self.issues if issue.level is Level.ERROR)

    @property
    def warnings(self) -> tuple[Issue, ...]:
        return tuple(issue for issue in self.issues if issue.level is Level.WARNING)

    def codes(self, level: str | None = None) -> list[str]:
        """The issue codes in order, optionally only those of one level (handy in tests)."""
        return [issue.code.value for issue in self.issues if level is None or issue.level == level]

    def with_step(self, step: StepResult) -> PackageVerdict:
        """This verdict with one more step (e.g. the graph's own integrity records), decided again."""
        return replace(self, steps=(*self.steps, step))

    def to_json(self) -> dict[str, object]:
        """The package object of `trustpolicy verify --format json`."""
        data: dict[str, object] = {
            "path": self.path,
            "id": self.id,
            "version": self.version,
            "signed": self.signed,
            "verdict": self.verdict,
            "signatures": [signature.to_json() for signature in self.signatures],
            "issues": [issue.to_json() for issue in self.issues],
        }
        if self.exception is not None:
            data["exception"] = self.exception.to_json()
        return data


@dataclass(frozen=True)
class PackageReport:
    """One package of a graph report: the verdict on its file, named as the graph names it, where the
    graph lists it, and the one-line cause and fix for a failing package."""

    id: str
    version: str
    verdict: PackageVerdict
    source: Location
    cause: str | None = None
    fix: str | None = None

    @property
    def passed(self) -> bool:
        return self.verdict.passed

    def to_json(self) -> dict[str, object]:
        verdict = self.verdict
        data: dict[str, object] = {
            "path": verdict.path,
            "id": self.id,
            "version": self.version,
            "signed": verdict.signed,
            "verdict": verdict.verdict,
            "signatures": [signature.to_json() for signature in verdict.signatures],
            "issues": [issue.to_json() for issue in verdict.issues],
            "trustedSigner": verdict.trusted_signer.to_json() if verdict.trusted_signer else None,
            "trustedSignerReason": verdict.trusted_signer_reason,
            "source": self.source.to_json(),
            "cause": self.cause,
            "fix": self.fix,
        }
        if verdict.exception is not None:  # only packages an exception allowed carry the key
            data["exception"] = verdict.exception.to_json()
        return data


@dataclass(frozen=True)
class Summary:
    """Package counts by verdict and the number of warning-level issues."""

    total: int
    valid: int
    invalid: int
    warnings: int

    @classmethod
    def of(cls, verdicts: Iterable[PackageVerdict]) -> Summary:
        verdicts = list(verdicts)
        valid = sum(1 for v in verdicts if v.passed)
        warnings = sum(1 for v in verdicts for issue in v.issues if issue.level is Level.WARNING)
        return cls(len(verdicts), valid, len(verdicts) - valid, warnings)

    def to_json(self) -> dict[str, int]:
        return {"total": self.total, "valid": self.valid, "invalid": self.invalid, "warnings": self.warnings}


@dataclass(frozen=True)
class Suggestion:
    """One trustedSigners entry that would allow failing packages of a run, checked with the engine.

    A new entry is added by running `commands` in order (or by pasting `xml` into trustedSigners); an
    entry that exists already (`replaces`: its file and line) is edited to read as `xml` instead.
    `untrusted_roots` are the certificates pinned with allowUntrustedRoot="true" because their chains
    end in a root no trust store here trusts (`note` says so). `without_owners`: the commands that
    trust the repository for every package it signs, for whoever prefers that to listing owners.
    """

    kind: str  # "author" | "repository"
    name: str
    packages: tuple[str, ...]  # "Id Version" of each package it allows
    fingerprints: tuple[str, ...]  # SHA-256, upper-case hex
    untrusted_roots: tuple[str, ...] = ()
    service_index: str | None = None
    owners: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    xml: str = ""
    replaces: Location | None = None
    without_owners: tuple[str, ...] = ()
    note: str | None = None

    @property
    def fix(self) -> str:
        """What to do, as one text: the commands (one a line), else the edit."""
        if self.commands:
            return "\n".join(self.commands)
        return f"edit the entry at {self.replaces} to read:\n{self.xml}" if self.replaces else self.xml

    def to_json(self) -> dict[str, object]:
        return {
            "kind": self.kind,
            "name": self.name,
            "packages": list(self.packages),
            "fingerprints": list(self.fingerprints),
            "allowUntrustedRoot": list(self.untrusted_roots),
            "serviceIndex": self.service_index,
            "owners": list(self.owners),
            "commands": list(self.commands),
            "xml": self.xml,
            "replaces": self.replaces.to_json() if self.replaces else None,
            "withoutOwners": list(self.without_owners) or None,
            "note": self.note,
        }


@dataclass(frozen=True)
class Refusal:
    """A signer no suggestion may pin, the packages that need it, and why (e.g. an untrusted root
    without --allow-untrusted-root, an expired certificate without a timestamp)."""

    kind: str  # "author" | "repository"
    name: str
    packages: tuple[str, ...]
    reason: str


# Exit codes, the one place: 0 the policy is satisfied, 1 violations, 2 unusable input (raised errors).
EXIT_OK, EXIT_VIOLATIONS, EXIT_UNUSABLE = 0, 1, 2


def exit_code(mode: str, summary: Summary) -> int:
    """0 when every package passed, else 1; audit judges as require but never fails."""
    if mode == "audit":
        return EXIT_OK
    return EXIT_VIOLATIONS if summary.invalid else EXIT_OK


REPORT_MODES = ("accept", "require", "audit", "verify")


@dataclass(frozen=True)
class GraphReport:
    """The result of `check` (and, with file packages, of `verify`): what every renderer draws."""

    mode: str  # "accept" | "require" | "audit" | "verify"
    packages: tuple[PackageReport, ...]
    generated_at: datetime
    settings: Mapping[str, object]
    trust_store: str
    config_files: tuple[str, ...] = ()
    graph_problems: tuple[Issue, ...] = ()
    tool_version: str = ""
    suggestions: tuple[Suggestion, ...] = ()  # grouped trustedSigners entries allowing failing packages
    refusals: tuple[Refusal, ...] = ()  # signers of failing packages no suggestion pins, with the reason
    searched_folders: tuple[tuple[str, str], ...] = ()  # (folder, who named it) searched for missing packages

    def __post_init__(self) -> None:
        if self.mode not in REPORT_MODES:
            raise ValueError(f"mode must be one of {', '.join(REPORT_MODES)}, not {self.mode!r}")
        if self.generated_at.tzinfo is None:
            raise ValueError("report times must be timezone-aware")

    @cached_property
    def summary(self) -> Summary:
        return Summary.of(p.verdict for p in self.packages)

    @property
    def exit_code(self) -> int:
        return exit_code(self.mode, self.summary)

    @property
    def failing(self) -> tuple[PackageReport, ...]:
        return tuple(p for p in self.packages if not p.passed)
