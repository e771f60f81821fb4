"""Signature validity and trust (docs/verification.md section 4): one signature at a time.

`SignatureEvaluator.evaluate(signature)` runs Step A (pick and check the first timestamp), Step B
(CMS signature, certificate rules, chain, validity at signing time) and Step C (timestamp
strictness) for a primary signature or a repository countersignature, and returns a summary with
NuGet's status flags. The engine combines the summaries (countersignature fallback, section 4.3).

Chains are judged by the injected ChainValidator; this module maps its outcomes onto NU codes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING

from asn1crypto import x509

from trustpolicy._internal import asn1 as oids
from trustpolicy._internal.chain import ChainResult, ChainStatus, Revocation
from trustpolicy._internal.clock import format_moment
from trustpolicy._internal.signature import PrimarySignature, Signature, Timestamp, distinguished_name, fingerprint
from trustpolicy._internal.signerinfo import certificate_algorithm_ok, rsa_key_ok, validity_of, verify_signer_info
from trustpolicy._internal.timestamp import check_token
from trustpolicy._internal.verify.settings import VerificationSettings
from trustpolicy.codes import Code
from trustpolicy.errors import TrustPolicyError
from trustpolicy.models import Issue, Level, Status

if TYPE_CHECKING:
    from collections.abc import Callable

    from trustpolicy._internal.chain import ChainValidator

__all__ = ["BROKEN", "Flag", "SignatureEvaluator", "Summary", "status_of"]


class Flag(enum.Flag):
    """NuGet's SignatureVerificationStatusFlags (the subset trustpolicy can raise)."""

    NONE = 0
    SIGNATURE_CHECK_FAILED = enum.auto()
    SIGNATURE_ALGORITHM_UNSUPPORTED = enum.auto()
    PUBLIC_KEY_INVALID = enum.auto()
    LIFETIME_SIGNING_EKU = enum.auto()
    NOT_YET_VALID = enum.auto()
    NO_CERTIFICATE = enum.auto()
    CHAIN_BUILDING_FAILURE = enum.auto()
    MULTIPLE_TIMESTAMPS = enum.auto()
    NO_VALID_TIMESTAMP = enum.auto()
    TIMESTAMP_INVALID = enum.auto()  # a timestamp check failed (the timestamp is discarded)
    UNKNOWN_REVOCATION = enum.auto()
    CERTIFICATE_REVOKED = enum.auto()
    UNTRUSTED_CHAIN = enum.auto()
    CERTIFICATE_EXPIRED = enum.auto()


SUSPECT_FLAGS = Flag.CERTIFICATE_REVOKED
DISALLOWING_FLAGS = (
    Flag.SIGNATURE_CHECK_FAILED
    | Flag.SIGNATURE_ALGORITHM_UNSUPPORTED
    | Flag.PUBLIC_KEY_INVALID
    | Flag.LIFETIME_SIGNING_EKU
    | Flag.NOT_YET_VALID
    | Flag.NO_CERTIFICATE
    | Flag.CHAIN_BUILDING_FAILURE
    | Flag.MULTIPLE_TIMESTAMPS
    | Flag.NO_VALID_TIMESTAMP
    | Flag.TIMESTAMP_INVALID
    | Flag.UNKNOWN_REVOCATION
    | Flag.UNTRUSTED_CHAIN
    | Flag.CERTIFICATE_EXPIRED
)


def status_of(flags: Flag) -> Status:
    """docs/verification.md 4.2 Step B.6: no flag -> Valid; revoked -> Suspect; known problems -> Disallowed."""
    if not flags:
        return Status.VALID
    if flags & SUSPECT_FLAGS:
        return Status.SUSPECT
    if flags & DISALLOWING_FLAGS:
        return Status.DISALLOWED
    return Status.UNKNOWN


# A signature with any of these is not evidence of anything, whatever the mode tolerates.
BROKEN = (
    Flag.SIGNATURE_CHECK_FAILED
    | Flag.SIGNATURE_ALGORITHM_UNSUPPORTED
    | Flag.PUBLIC_KEY_INVALID
    | Flag.NO_CERTIFICATE
    | Flag.CHAIN_BUILDING_FAILURE
    | Flag.CERTIFICATE_REVOKED
)


@dataclass(frozen=True)
class Summary:
    """The evaluation of one signature (NuGet's SignatureVerificationSummary).

    Attributes:
        flags: NuGet's status flags; the status follows from them (or from `fixed_status`).
        issues: what is reported about this signature, in NuGet's order.
        timestamp: the valid timestamp used, if any.
        expired: NU3037 fired (NuGet records ExpirationTime).
        untrusted_root: the chain ended in an untrusted root (reported or not).
        untrusted_issues / expiry_issues: the NU3018/NU3042 and NU3037 issues a valid repository
            countersignature may clear (docs/verification.md 4.3).
        fixed_status: the status NuGet returns without flags (NU3010, or NU3012 on the CMS signature).
        chain: the code-signing chain as validated at the signing time (None when none was built):
            identity rules look for their pinned CA in it.
    """

    signature: Signature
    flags: Flag = Flag.NONE
    issues: tuple[Issue, ...] = ()
    timestamp: Timestamp | None = None
    expired: bool = False
    untrusted_root: bool = False
    untrusted_issues: tuple[Issue, ...] = ()
    expiry_issues: tuple[Issue, ...] = ()
    fixed_status: Status | None = None
    chain: ChainResult | None = None

    @property
    def status(self) -> Status:
        return self.fixed_status if self.fixed_status is not None else status_of(self.flags)

    @property
    def intact_and_valid(self) -> bool:
        """Valid, and evidence of something: not broken, whatever the mode tolerates."""
        return self.status == Status.VALID and not self.flags & BROKEN and self.fixed_status in (None, Status.VALID)

    def rescued_by(self, counter: Summary) -> Summary:
        """docs/verification.md 4.3: a valid repository countersignature is a trust anchor for an untrusted root,
        and its timestamp proves an expired primary certificate was valid when it was countersigned."""
        drop: list[Issue] = []
        flags = self.flags
        if self.untrusted_root:
            drop += self.untrusted_issues
            flags &= ~Flag.UNTRUSTED_CHAIN
        cert = self.signature.signer_certificate
        if self.expired and cert is not None and within(counter.timestamp, cert):
            drop += self.expiry_issues
            flags &= ~Flag.CERTIFICATE_EXPIRED
        issues = tuple(i for i in self.issues if not any(i is d for d in drop))
        return replace(self, flags=flags, issues=issues)


@dataclass
class _Draft:
    """A Summary while the evaluator collects it."""

    signature: Signature
    timestamp: Timestamp | None = None
    flags: Flag = Flag.NONE
    issues: list[Issue] = field(default_factory=list)
    expired: bool = False
    untrusted_root: bool = False
    untrusted_issues: list[Issue] = field(default_factory=list)
    expiry_issues: list[Issue] = field(default_factory=list)
    fixed_status: Status | None = None
    chain: ChainResult | None = None

    def freeze(self) -> Summary:
        return Summary(self.signature, self.flags, tuple(self.issues), self.timestamp, self.expired,
                       self.untrusted_root, tuple(self.untrusted_issues), tuple(self.expiry_issues), self.fixed_status,
                       self.chain)


def _t(moment: datetime) -> str:
    """A moment for messages: RFC 3339 UTC to the second."""
    return format_moment(moment, seconds=True)


def _level(fatal: bool) -> Level:
    return Level.ERROR if fatal else Level.WARNING


def _name(signature: Signature) -> str:
    return "primary signature" if signature.placement == "primary" else "repository countersignature"


# --- crypto helpers ---------------------------------------------------------------------------------


def _ekus(cert: x509.Certificate) -> set[str]:
    value = cert.extended_key_usage_value
    return {purpose.dotted for purpose in value} if value is not None else set()


def _not_before(cert: x509.Certificate) -> datetime:
    return validity_of(cert)[0]


def _not_after(cert: x509.Certificate) -> datetime:
    return validity_of(cert)[1]


def subject_of(cert: x509.Certificate | None) -> str | None:
    return None if cert is None else distinguished_name(cert.subject)


# --- the evaluator -------------------------------------------------------------------------------------


class SignatureEvaluator:
    """Evaluates signatures of one package against fixed settings, chain validator and moment."""

    def __init__(
        self,
        settings: VerificationSettings,
        chains: ChainValidator,
        now: datetime,
        primary: PrimarySignature,
        *,
        untrusted_root_allowed: Callable[[Signature], bool],
        case_only_hint: Callable[[Signature], bool] | None = None,
        store_description: str = "the trust store",
    ) -> None:
        self.settings = settings
        self.chains = chains
        self.now = now
        self.primary = primary
        self._untrusted_root_allowed = untrusted_root_allowed
        self._case_only_hint = case_only_hint
        self._store = store_description

    def evaluate(self, signature: Signature) -> Summary:
        """Steps A, B and C of docs/verification.md 4.2 for one signature."""
        label = signature.placement
        allowed_root = self._untrusted_root_allowed(signature)
        allow_untrusted = self.settings.allow_untrusted or allowed_root
        report_untrusted_root = not allowed_root

        ts_flags, ts_issues, timestamp = self._timestamp(signature, label)
        draft = self._signature(signature, timestamp, allow_untrusted, report_untrusted_root)
        draft.issues[:0] = ts_issues  # timestamp messages first, as NuGet logs them
        # Step C, and the timestamp policy flags that disallow in every mode.
        if ts_flags & (Flag.NO_VALID_TIMESTAMP | Flag.MULTIPLE_TIMESTAMPS):
            draft.flags |= ts_flags & (Flag.NO_VALID_TIMESTAMP | Flag.MULTIPLE_TIMESTAMPS)
        if ts_flags and not self.settings.allow_ignore_timestamp:
            draft.flags |= Flag.NO_VALID_TIMESTAMP
            if draft.fixed_status is not None:
                draft.fixed_status = Status.DISALLOWED
        return draft.freeze()

    # -- Step A -----------------------------------------------------------------------------------

    def _timestamp(self, signature: Signature, label: str) -> tuple[Flag, list[Issue], Timestamp | None]:
        settings = self.settings
        issues: list[Issue] = []
        flags = Flag.NONE
        timestamps = signature.timestamps
        if not timestamps:
            fatal = not settings.allow_no_timestamp
            issues.append(Issue(Code.NU3027, _level(fatal), f"The {_name(signature)} should be timestamped to enable "
                                "long-term signature validity after the certificate has expired.", label))
            if fatal:
                flags |= Flag.NO_VALID_TIMESTAMP
            return flags, issues, None
        if len(timestamps) > 1 and not settings.allow_multiple_timestamps:
            issues.append(Issue(Code.NU3000, Level.ERROR, f"The {_name(signature)} has {len(timestamps)} timestamps; "
                                "multiple timestamps are not accepted.", label))
            flags |= Flag.MULTIPLE_TIMESTAMPS
        timestamp = timestamps[0]
        flags |= self._check_timestamp(signature, timestamp, issues, label)
        valid = not (flags & ~Flag.UNKNOWN_REVOCATION)
        return flags, issues, timestamp if valid else None

    def _check_timestamp(self, signature: Signature, ts: Timestamp, issues: list[Issue], label: str) -> Flag:
        """docs/verification.md 4.2 Step A.3: the token checks (trustpolicy._internal.timestamp), then the TSA chain."""
        level = _level(not self.settings.allow_ignore_timestamp)
        what = f"The timestamp of the {_name(signature)}"
        problems = check_token(ts, signature.signature_value, self.now).problems
        for problem in problems:
            issues.append(Issue(problem.code, level, f"{what} is invalid: {problem.message}.", label))
        if problems:
            return Flag.TIMESTAMP_INVALID
        return self._timestamp_chain(signature, ts, issues, label)

    def _timestamp_chain(self, signature: Signature, ts: Timestamp, issues: list[Issue], label: str) -> Flag:
        """TSA chain for id-kp-timeStamping; time validity ignored (docs/verification.md 4.2 table)."""
        settings = self.settings
        assert ts.tsa_certificate is not None
        what = f"The timestamp of the {_name(signature)}"
        try:
            result = self.chains.validate(ts.tsa_certificate, ts.certificates, moment=self.now, purpose="time_stamping")
        except TrustPolicyError as error:
            issues.append(Issue(Code.NU3028, _level(not settings.allow_ignore_timestamp),
                                f"{what}: the timestamping certificate chain cannot be built.", label, detail=str(error)))
            return Flag.TIMESTAMP_INVALID
        flags = Flag.NONE
        if result.revoked:
            issues.append(Issue(Code.NU3028, Level.ERROR, f"{what}: the timestamping certificate is revoked.", label,
                                detail=result.message))
            return Flag.TIMESTAMP_INVALID
        if ChainStatus.UNTRUSTED_ROOT in result.problems:
            issues.append(Issue(Code.NU3028, Level.ERROR, f"{what}: the timestamping certificate is not trusted by the "
                                f"trust provider (root: {_root_name(result)}).", label, detail=result.message))
            self._missing_root(result, "time-stamping", issues, label)
            flags |= Flag.TIMESTAMP_INVALID
        hard = _hard_problems(result)
        if hard:
            issues.append(Issue(Code.NU3028, _level(not settings.allow_ignore_timestamp),
                                f"{what}: the timestamping certificate chain has a problem: {', '.join(hard)}.",
                                label, detail=result.message))
            flags |= Flag.TIMESTAMP_INVALID
        if result.revocation is Revocation.UNKNOWN:
            tolerated = settings.allow_ignore_timestamp or settings.allow_unknown_revocation
            if not settings.allow_ignore_timestamp:
                message = f"{what}: the revocation status of the timestamping certificate is unknown."
                level = Level.INFO if settings.revocation_mode == "offline" else _level(not settings.allow_unknown_revocation)
                issues.append(Issue(Code.NU3028, level, message, label, detail=result.message))
            if not tolerated:
                flags |= Flag.UNKNOWN_REVOCATION
        return flags

    def _missing_root(self, result: ChainResult, bundle: str, issues: list[Issue], label: str) -> None:
        """NU3042 (warning): name the root that the bundle lacks, when the chain ends in one."""
        path = result.path
        if not path or not path[-1].self_issued:
            return
        root = path[-1]
        issues.append(Issue(
            Code.NU3042, Level.WARNING,
            f"The root certificate {_root_name(result)} is not in the {bundle} trust store; add it with "
            "--extra-roots if you trust it.",
            label,
            detail=f"root {distinguished_name(root.subject)}, SHA256 {fingerprint(root)}; trust store: {self._store}",
        ))

    # -- Step B -----------------------------------------------------------------------------------

    def _signature(self, signature: Signature, timestamp: Timestamp | None, allow_untrusted: bool,
                   report_untrusted_root: bool) -> _Draft:
        settings = self.settings
        label = signature.placement
        name = _name(signature)
        summary = _Draft(signature, timestamp=timestamp)
        issues = summary.issues
        cert = signature.signer_certificate
        illegal = _level(not settings.allow_illegal)

        # B.1 signer certificate
        if cert is None:
            issues.append(Issue(Code.NU3010, illegal, f"The {name} does not have a signing certificate.", label))
            summary.flags |= Flag.NO_CERTIFICATE
            summary.fixed_status = Status.VALID if settings.allow_illegal else Status.DISALLOWED
            return summary

        # B.2 the CMS signature over the original signed attributes
        signed_content = (
            self.primary.content_bytes if signature.placement == "primary" else self.primary.signature_value
        )
        why = verify_signer_info(cert, signature.signer_info, signature.signed_attrs_der, signed_content,
                                 signature.digest_algorithm, signature.message_digest)
        if why is not None:
            issues.append(Issue(Code.NU3012, illegal, f"The {name} validation failed: {why}.", label))
            summary.flags |= Flag.SIGNATURE_CHECK_FAILED
            summary.fixed_status = Status.VALID if settings.allow_illegal else Status.DISALLOWED
            return summary

        # B.3 signing-certificate rules; any failure skips the chain (NuGet's ValidateSigningCertificate)
        rule_flags = Flag.NONE
        if not certificate_algorithm_ok(cert):
            issues.append(Issue(Code.NU3013, illegal, f"The signing certificate of the {name} has an unsupported "
                                f"signature algorithm ({cert['signature_algorithm']['algorithm'].dotted}).", label))
            rule_flags |= Flag.SIGNATURE_ALGORITHM_UNSUPPORTED
        if not rsa_key_ok(cert):
            issues.append(Issue(Code.NU3014, illegal, f"The signing certificate of the {name} does not meet the public "
                                f"key requirements: RSA of at least 2048 bits is required ({cert.public_key.algorithm}, "
                                f"{cert.public_key.bit_size} bits).", label))
            rule_flags |= Flag.PUBLIC_KEY_INVALID
        if oids.EKU_LIFETIME_SIGNING in _ekus(cert):
            issues.append(Issue(Code.NU3015, illegal, f"The signing certificate of the {name} has the lifetime signing "
                                "EKU.", label))
            rule_flags |= Flag.LIFETIME_SIGNING_EKU
        if _not_before(cert) > self.now:
            issues.append(Issue(Code.NU3017, illegal, f"The signing certificate of the {name} is not yet valid "
                                f"(notBefore {_t(_not_before(cert))}).", label))
            rule_flags |= Flag.NOT_YET_VALID
        if rule_flags:
            summary.flags |= rule_flags
            return summary

        # B.4 chain, at the timestamp's upper limit when a valid timestamp was kept, else now
        lower = timestamp.lower_limit if timestamp is not None else self.now
        upper = timestamp.upper_limit if timestamp is not None else self.now
        assert lower is not None and upper is not None
        if self._chain(signature, upper, allow_untrusted, report_untrusted_root, summary):
            return summary  # revoked: Suspect, stop

        # B.5 validity at signing time: strict on both ends
        if not (lower > _not_before(cert) and upper < _not_after(cert)):
            when = "the time of signing proven by its timestamp" if timestamp is not None else "the time of verification"
            issues.append(Issue(Code.NU3037, _level(not allow_untrusted), f"The {name} validity period has expired: its "
                                f"certificate is valid from {_t(_not_before(cert))} to "
                                f"{_t(_not_after(cert))}, which does not cover {when} "
                                f"({_t(upper)}).", label))
            summary.expiry_issues.append(issues[-1])
            summary.expired = True
            if not allow_untrusted:
                summary.flags |= Flag.CERTIFICATE_EXPIRED
        return summary

    def _chain(self, signature: Signature, moment: datetime, allow_untrusted: bool, report_untrusted_root: bool,
               summary: _Draft) -> bool:
        """Map the code-signing chain outcome (docs/verification.md 4.2 B.4). True when revoked (stop)."""
        settings = self.settings
        label = signature.placement
        name = _name(signature)
        issues = summary.issues
        cert = signature.signer_certificate
        assert cert is not None
        try:
            result = self.chains.validate(cert, self.primary.certificates, moment=moment, purpose="code_signing")
        except TrustPolicyError as error:
            issues.append(Issue(Code.NU3012, _level(not settings.allow_illegal),
                                f"The {name} found a chain building issue: the chain cannot be built.", label,
                                detail=str(error)))
            summary.flags |= Flag.CHAIN_BUILDING_FAILURE
            return False
        if result.revocation is Revocation.GOOD and moment < self.now and settings.revocation_mode != "off":
            # NuGet's chain engine reports a certificate revoked today as Revoked, even when the
            # timestamp proves it signed before the revocation (docs/verification.md 7): ask again at now.
            later = self.chains.validate(cert, self.primary.certificates, moment=self.now, purpose="code_signing")
            if later.revocation is Revocation.REVOKED:
                result = later
        summary.chain = result
        if result.revoked:
            when = f" on {_t(result.revoked_at)}" if result.revoked_at else ""
            issues.append(Issue(Code.NU3012, Level.ERROR, f"The {name} found a chain building issue: the certificate is "
                                f"revoked{when}.", label, detail=result.message))
            summary.flags |= Flag.CERTIFICATE_REVOKED
            return True
        hard = _hard_problems(result)
        if hard:
            issues.append(Issue(Code.NU3012, _level(not settings.allow_illegal), f"The {name} found a chain building "
                                f"issue: {', '.join(hard)}.", label, detail=result.message))
            summary.flags |= Flag.CHAIN_BUILDING_FAILURE
        if ChainStatus.UNTRUSTED_ROOT in result.problems:
            summary.untrusted_root = True
            if report_untrusted_root:
                why = f"(root: {_root_name(result)})"
                detail = result.message
                if self._case_only_hint is not None and self._case_only_hint(signature):
                    why = "(allowUntrustedRoot is ignored: it compares the fingerprint case-sensitively)"
                    detail = ("trustedSigners lists this certificate with allowUntrustedRoot=\"true\", but not in "
                              "uppercase; like NuGet, allowUntrustedRoot compares the fingerprint case-sensitively. "
                              + detail)
                before = len(issues)
                issues.append(Issue(Code.NU3018, _level(not allow_untrusted), f"The {name}'s signing certificate is not "
                                    f"trusted by the trust provider {why}.", label, detail=detail))
                self._missing_root(result, "code-signing", issues, label)
                summary.untrusted_issues.extend(issues[before:])
            if not allow_untrusted:
                summary.flags |= Flag.UNTRUSTED_CHAIN
        if result.revocation is Revocation.UNKNOWN and settings.report_unknown_revocation:
            message = f"The {name}: the revocation function was unable to check revocation for the signing certificate."
            level = Level.INFO if settings.revocation_mode == "offline" else _level(not settings.allow_unknown_revocation)
            issues.append(Issue(Code.NU3018, level, message, label, detail=result.message))
        if result.revocation is Revocation.UNKNOWN and not settings.allow_unknown_revocation:
            summary.flags |= Flag.UNKNOWN_REVOCATION
        return False


# A name in a one-line message is cut here; the whole distinguished name goes to the issue's detail.
_NAME_MAX = 64


def _root_name(result: ChainResult) -> str:
    """The last certificate of the chain, as its common name (else its distinguished name), kept short."""
    if not result.path:
        return "unknown"
    cert = result.path[-1]
    try:
        name = cert.subject.native.get("common_name") or distinguished_name(cert.subject)
    except Exception:
        name = f"serial {cert.serial_number}"
    name = name if isinstance(name, str) else ", ".join(map(str, name))
    return name if len(name) <= _NAME_MAX else name[: _NAME_MAX - 3] + "..."


def _hard_problems(result: ChainResult) -> list[str]:
    """The chain problems that disallow; NotTimeValid is ignored (NuGet judges validity itself, B.5)."""
    return [p.value for p in result.problems if p in (ChainStatus.INVALID, ChainStatus.NOT_VALID_FOR_USAGE)]


def within(limits: Timestamp | None, cert: x509.Certificate) -> bool:
    """Whether a timestamp's range lies strictly inside the certificate's validity."""
    if limits is None or limits.lower_limit is None or limits.upper_limit is None:
        return False
    return limits.lower_limit > _not_before(cert) and limits.upper_limit < _not_after(cert)


def fingerprints_of(cert: x509.Certificate | None) -> dict[str, str]:
    return {} if cert is None else {"SHA256": fingerprint(cert, "sha256")}
