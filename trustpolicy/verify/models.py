"""The verdict model: statuses kept apart from messages (verify.md section 1, style.md "absorb" 1).

A step (integrity, allow list, trust) ends in a `Status`; its `Issue`s explain it at a level
("error" | "warning" | "info") that depends on the mode. The verdict follows from the statuses,
never from the loudest message: an accept-mode NU3013 is a warning yet its status rejects the package.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

__all__ = ["Issue", "MatchedSigner", "PackageVerdict", "SignatureReport", "Status", "StepResult", "worst"]

LEVELS = ("error", "warning", "info")


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
class Issue:
    """One finding: an NU30xx (or TP) code, its level in this mode, and which signature it is about."""

    code: str
    level: str  # "error" | "warning" | "info"
    message: str
    signature: str | None = None  # "primary" | "countersignature" | None (the package as a whole)

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"issue level must be one of {LEVELS}, not {self.level!r}")

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "level": self.level, "message": self.message, "signature": self.signature}


@dataclass(frozen=True)
class StepResult:
    """The outcome of one verification step (NuGet's provider result): a status plus its issues."""

    step: str  # "unsigned" | "signature" | "integrity" | "trusted-signers" | "trust" | "certificate-fingerprints" | ...
    status: Status
    issues: tuple[Issue, ...] = ()


@dataclass(frozen=True)
class MatchedSigner:
    """The allow-list entry a package matched: trustedSigners name and kind, and the fingerprint."""

    name: str
    kind: str  # "author" | "repository"
    fingerprint: str | None
    placement: str = "primary"  # which signature matched: "primary" | "countersignature"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "kind": self.kind, "fingerprint": self.fingerprint}


@dataclass(frozen=True)
class SignatureReport:
    """What the report says about one signature (primary or repository countersignature)."""

    kind: str  # "author" | "repository" | "unknown"
    placement: str  # "primary" | "countersignature"
    subject: str | None
    fingerprints: dict[str, str] = field(default_factory=dict)  # {"SHA256": uppercase hex}
    timestamp: datetime | None = None  # time proven by the valid timestamp, if any
    service_index: str | None = None
    owners: tuple[str, ...] = ()
    status: Status | None = None  # None: the trust step did not evaluate this signature

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "placement": self.placement,
            "subject": self.subject,
            "fingerprints": dict(self.fingerprints),
            "timestamp": format_moment(self.timestamp) if self.timestamp else None,
            "serviceIndex": self.service_index,
            "owners": list(self.owners),
            "status": self.status.label if self.status is not None else "not-evaluated",
        }


@dataclass(frozen=True)
class PackageVerdict:
    """The judgement of one package file.

    `verdict` is "valid" iff every step is VALID (and, when the settings count errors like the verify
    command does, no issue is an error). `steps` keep each step's status apart from issue levels.
    `trusted_signer` is the allow-list entry that matched, or None with `trusted_signer_reason`.
    """

    path: str
    id: str | None
    version: str | None
    signed: bool | None  # None when the file could not be read far enough to tell
    verdict: str  # "valid" | "invalid"
    signatures: tuple[SignatureReport, ...] = ()
    issues: tuple[Issue, ...] = ()
    steps: tuple[StepResult, ...] = ()
    trusted_signer: MatchedSigner | None = None
    trusted_signer_reason: str | None = None

    @property
    def passed(self) -> bool:
        return self.verdict == "valid"

    @property
    def status(self) -> Status:
        """The combined step status (UNKNOWN when no step ran)."""
        return worst(*(step.status for step in self.steps))

    @property
    def errors(self) -> tuple[Issue, ...]:
        return tuple(issue for issue in self.issues if issue.level == "error")

    @property
    def warnings(self) -> tuple[Issue, ...]:
        return tuple(issue for issue in self.issues if issue.level == "warning")

    def codes(self, level: str | None = None) -> list[str]:
        """The issue codes in order, optionally only those of one level (handy in tests)."""
        return [issue.code for issue in self.issues if level is None or issue.level == level]

    def to_json(self) -> dict[str, Any]:
        """The package object of `trustpolicy verify --format json`."""
        return {
            "path": self.path,
            "id": self.id,
            "version": self.version,
            "signed": self.signed,
            "verdict": self.verdict,
            "signatures": [signature.to_json() for signature in self.signatures],
            "issues": [issue.to_json() for issue in self.issues],
        }


def format_moment(moment: datetime) -> str:
    """RFC 3339 in UTC with a Z."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")
