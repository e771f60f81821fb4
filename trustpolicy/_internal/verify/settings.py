"""Verification settings: NuGet's `SignedPackageVerifierSettings`, as frozen data with named presets.

Each flag has NuGet's meaning (docs/verification.md section 6). The presets are the three built-in policies:
ACCEPT (restore in accept mode), REQUIRE (restore in require mode) and VERIFY (the verify command).
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from trustpolicy.errors import UsageError

__all__ = [
    "ACCEPT",
    "REQUIRE",
    "REVOCATION_MODES",
    "VERIFY",
    "CountersignatureBehavior",
    "RevocationOptions",
    "SignaturePlacement",
    "VerificationSettings",
    "VerificationTarget",
    "preset",
]


class VerificationTarget(enum.Flag):
    """Which signature types are evaluated by the trust step (NuGet `VerificationTarget`)."""

    NONE = 0
    UNKNOWN = 1
    AUTHOR = 2
    REPOSITORY = 4
    ALL = UNKNOWN | AUTHOR | REPOSITORY

    def includes(self, kind: str) -> bool:
        """Whether a signature of `kind` ("author" | "repository" | "unknown") is a target."""
        return bool(self & _KIND_TARGET[kind])


_KIND_TARGET = {
    "unknown": VerificationTarget.UNKNOWN,
    "author": VerificationTarget.AUTHOR,
    "repository": VerificationTarget.REPOSITORY,
}


class SignaturePlacement(enum.Flag):
    """Which placements are evaluated (NuGet `SignaturePlacement`)."""

    NONE = 0
    PRIMARY = 1
    COUNTERSIGNATURE = 2
    ANY = PRIMARY | COUNTERSIGNATURE


class CountersignatureBehavior(enum.StrEnum):
    """When the repository countersignature is evaluated (docs/verification.md 4.1)."""

    NEVER = "never"
    IF_EXISTS = "if-exists"  # verify command
    IF_EXISTS_AND_IS_NECESSARY = "if-exists-and-is-necessary"  # restore: only to rescue the primary
    ALWAYS = "always"  # NU3038 when missing; no built-in policy uses it


REVOCATION_MODES = ("online", "offline", "off")


@dataclass(frozen=True)
class VerificationSettings:
    """One verification policy. Every `allow_*` flag turns a finding into a non-fatal one.

    Attributes:
        allow_unsigned: an unsigned package is valid (else NU3004).
        allow_illegal: malformed signatures and certificate-policy breaches are warnings, not errors.
        allow_untrusted: untrusted roots (NU3018), expiry without timestamp (NU3037) and allow-list
            misses (NU3034) are warnings and do not disallow the signature.
        allow_ignore_timestamp: an invalid timestamp is a warning and is simply ignored
            (else an error that disallows the signature).
        allow_multiple_timestamps: more than one timestamp is fine (else NU3000).
        allow_no_timestamp: a signature without timestamp is fine (NU3027 warning; else an error).
        allow_unknown_revocation: unknown revocation status never disallows.
        report_unknown_revocation: unknown revocation status is reported (NU3018 / NU3028).
        verification_target / signature_placement: which signatures the trust step evaluates.
        repository_countersignature_verification_behavior: when the countersignature is evaluated.
        revocation_mode: "online" | "offline" | "off". Offline turns unknown revocation into
            information; off means revocation is not checked (trustpolicy's addition).
        fail_on_error_issues: the verify command counts Error-level messages (docs/verification.md 9), so a
            package whose steps are all Valid but which carries an error (e.g. NU3028 for an
            ignored untrusted timestamp) still fails. Restore judges by status only.
    """

    allow_unsigned: bool
    allow_illegal: bool
    allow_untrusted: bool
    allow_ignore_timestamp: bool
    allow_multiple_timestamps: bool = True
    allow_no_timestamp: bool = True
    allow_unknown_revocation: bool = True
    report_unknown_revocation: bool = False
    verification_target: VerificationTarget = VerificationTarget.ALL
    signature_placement: SignaturePlacement = SignaturePlacement.ANY
    repository_countersignature_verification_behavior: CountersignatureBehavior = (
        CountersignatureBehavior.IF_EXISTS_AND_IS_NECESSARY
    )
    revocation_mode: str = "online"
    fail_on_error_issues: bool = False

    def __post_init__(self) -> None:
        if self.revocation_mode not in REVOCATION_MODES:
            raise ValueError(f"revocation_mode must be one of {REVOCATION_MODES}, not {self.revocation_mode!r}")

    @property
    def countersignature_requested(self) -> bool:
        """NuGet's isRepositoryCountersignatureVerificationRequested."""
        return (
            bool(self.verification_target & VerificationTarget.REPOSITORY)
            and bool(self.signature_placement & SignaturePlacement.COUNTERSIGNATURE)
            and self.repository_countersignature_verification_behavior is not CountersignatureBehavior.NEVER
        )

    def replace(self, **changes: Any) -> VerificationSettings:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON types, for the report's "settings" object."""
        data = asdict(self)
        data["verification_target"] = _flag_names(self.verification_target)
        data["signature_placement"] = _flag_names(self.signature_placement)
        data["repository_countersignature_verification_behavior"] = (
            self.repository_countersignature_verification_behavior.value
        )
        return {_camel(key): value for key, value in data.items()}


@dataclass(frozen=True)
class RevocationOptions:
    """How revocation is checked.

    mode: "online" (data dirs + cache + network), "offline" (data dirs + cache only, as NuGet's
    NUGET_CERT_REVOCATION_MODE=offline), "off" (no check: revocation "not-checked").
    cache_dir: None means the per-user cache (platformdirs); tests inject a temporary directory.
    timeout: seconds per HTTP request (connect + all reads + redirects); budget: seconds of network
    time for the whole run, after which only cached data is used.
    """

    mode: str
    data_dirs: tuple[Path, ...] = ()
    cache_dir: Path | None = None
    timeout: float = 5.0
    budget: float = 30.0
    max_response_bytes: int = 20 * 1024 * 1024  # DigiCert-class CRLs are a few MB

    def __post_init__(self) -> None:
        if self.mode not in REVOCATION_MODES:
            raise UsageError(f"revocation mode {self.mode!r} is not one of {', '.join(REVOCATION_MODES)}")
        if not self.timeout > 0 or self.budget < 0 or self.max_response_bytes <= 0:
            raise UsageError("revocation timeout must be > 0, budget >= 0 and max response size > 0")
        object.__setattr__(self, "data_dirs", tuple(Path(d) for d in self.data_dirs))
        if self.cache_dir is not None:
            object.__setattr__(self, "cache_dir", Path(self.cache_dir))

    @property
    def effective_cache_dir(self) -> Path:
        if self.cache_dir is not None:
            return self.cache_dir
        import platformdirs  # deferred: only runs that use the default cache need it

        return Path(platformdirs.user_cache_dir("trustpolicy")) / "revocation"



def _flag_names(value: enum.Flag) -> list[str]:
    return [member.name.lower() for member in type(value) if member.name and member.value and
            bin(member.value).count("1") == 1 and member in value]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


# docs/verification.md section 6, "Policy flag values".
ACCEPT = VerificationSettings(
    allow_unsigned=True,
    allow_illegal=True,
    allow_untrusted=True,
    allow_ignore_timestamp=True,
    report_unknown_revocation=False,
)
REQUIRE = VerificationSettings(
    allow_unsigned=False,
    allow_illegal=False,
    allow_untrusted=False,
    allow_ignore_timestamp=True,
    report_unknown_revocation=True,
)
VERIFY = VerificationSettings(
    allow_unsigned=False,
    allow_illegal=False,
    allow_untrusted=False,
    allow_ignore_timestamp=False,
    report_unknown_revocation=True,
    repository_countersignature_verification_behavior=CountersignatureBehavior.IF_EXISTS,
    fail_on_error_issues=True,
)

_PRESETS = {"accept": ACCEPT, "require": REQUIRE, "verify": VERIFY}


def preset(name: str) -> VerificationSettings:
    """ACCEPT / REQUIRE / VERIFY by name (case-insensitive)."""
    try:
        return _PRESETS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; expected accept, require or verify") from None
