"""The verifier: runs NuGet's verification steps in order and combines their statuses.

verify.md section 1. For a signed package the steps are, as in the verify command:
  1. integrity                      (section 3)  NU3008 / NU3016
  2. trustedSigners allow list      (section 5.1) NU3034
  3. signature validity and trust   (section 4)  NU3010-NU3038
  4. --certificate-fingerprint list (section 5.2) NU3034
  5. repository-announced list      (section 5.3) NU3034, only when a source announced one
The package is valid iff every step is VALID (plus, for the verify command, no error-level issue).
A signature that cannot be parsed replaces all steps with one "illegal" finding (verify.md 1).

`Verifier.verify_package` never raises for findings: anything unexpected while judging a package
becomes an invalid verdict naming the cause (fail closed).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from trustpolicy import clock
from trustpolicy.archive import ALGORITHMS, PackageArchive
from trustpolicy.errors import SignatureFormatError, TrustPolicyError
from trustpolicy.signature import PrimarySignature, Signature, parse_signature
from trustpolicy.verify.allowlist import (
    AllowList,
    AllowListEntry,
    fingerprint_allow_list,
    repository_allow_list,
    trusted_signers_allow_list,
    untrusted_root_allowed,
    untrusted_root_case_only,
)
from trustpolicy.verify.models import Issue, MatchedSigner, PackageVerdict, SignatureReport, Status, StepResult, worst
from trustpolicy.verify.settings import VERIFY, CountersignatureBehavior, SignaturePlacement, VerificationSettings
from trustpolicy.verify.validity import Flag, SignatureEvaluator, Summary, fingerprints_of, subject_of, within

__all__ = ["INTERNAL_ERROR", "UNREADABLE", "RepositorySignatures", "Verifier"]

_SIGNATURE_NAME = b".signature.p7s"
_UTF8_FLAG = 0x0800
UNREADABLE = "TP0003"  # the package file cannot be read (codes.py)
INTERNAL_ERROR = "TP0004"  # an unexpected failure while judging: fail closed

_UNSIGNED = "The package is not signed."
_UNSIGNED_REQUIRE = (
    "signatureValidationMode is set to require, so packages are allowed only if signed by trusted signers; "
    "however, this package is unsigned."
)
_UNSIGNED_REPOSITORY = (
    "This repository indicated that all its packages are repository signed; however, this package is unsigned."
)


@dataclass(frozen=True)
class RepositorySignatures:
    """A source's announced RepositorySignatures resource (verify.md 5.3-5.4)."""

    all_repository_signed: bool
    fingerprints: tuple[str, ...] = ()  # SHA-256 hex, any case
    source: str = "repository"


class Verifier:
    """Judges package files under one policy, one trust store and one moment.

    Args:
        settings: the policy (ACCEPT, REQUIRE, VERIFY or a custom VerificationSettings).
        trust_store: roots (default: the bundled .NET SDK bundles). Ignored when chain_validator is given.
        revocation: RevocationOptions for a new ChainValidator; its mode becomes settings.revocation_mode.
        chain_validator: a shared ChainValidator (one per process is cheapest).
        at: the moment everything is judged at ("now" for NuGet); read from the clock once when None.
        trusted_signers: config TrustedSigner objects (the trustedSigners allow list).
        require_non_empty: an empty trustedSigners list fails every package (signatureValidationMode=require).
        certificate_fingerprints: `--certificate-fingerprint` values (SHA-256 hex, any case).
        repository: the package's source's RepositorySignatures announcement, if any.
    """

    def __init__(
        self,
        settings: VerificationSettings = VERIFY,
        *,
        trust_store: Any = None,
        revocation: Any = None,
        chain_validator: Any = None,
        at: datetime | None = None,
        trusted_signers: Iterable[Any] = (),
        require_non_empty: bool = False,
        certificate_fingerprints: Iterable[str] = (),
        repository: RepositorySignatures | None = None,
    ) -> None:
        moment = at if at is not None else clock.now()
        if moment.tzinfo is None:
            raise ValueError("Verifier needs an aware datetime for `at`")
        self.at = moment
        if revocation is not None:
            settings = replace(settings, revocation_mode=revocation.mode)
        elif chain_validator is not None and getattr(chain_validator, "revocation", None) is not None:
            settings = replace(settings, revocation_mode=chain_validator.revocation.mode)
        if repository is not None and repository.all_repository_signed:
            # verify.md 5.4: such a source forbids unsigned and untrusted packages even in accept mode
            settings = replace(settings, allow_unsigned=False, allow_untrusted=False)
        self.settings = settings
        self.repository = repository

        if chain_validator is None:
            from trustpolicy.chain import ChainValidator  # imported late: pyhanko-certvalidator is heavy
            from trustpolicy.revocation import RevocationOptions
            from trustpolicy.truststore import TrustStore

            trust_store = trust_store if trust_store is not None else TrustStore.bundled()
            if revocation is None:
                revocation = RevocationOptions(mode=settings.revocation_mode)
            chain_validator = ChainValidator(trust_store, revocation)
        self.chain_validator = chain_validator
        self.trust_store = trust_store if trust_store is not None else getattr(chain_validator, "trust_store", None)

        self.trusted_signers: AllowList = trusted_signers_allow_list(trusted_signers, require_non_empty=require_non_empty)
        self.fingerprints = fingerprint_allow_list(certificate_fingerprints)
        self.repository_list = (
            repository_allow_list(
                repository.fingerprints, all_repository_signed=repository.all_repository_signed, name=repository.source
            )
            if repository is not None
            else None
        )

    @classmethod
    def from_trust_settings(cls, trust: Any, settings: VerificationSettings = VERIFY, *,
                            require_non_empty: bool | None = None, **options: Any) -> Verifier:
        """A Verifier using a config TrustSettings: its signers, and (unless given) require mode's
        non-empty rule from its signatureValidationMode."""
        if require_non_empty is None:
            require_non_empty = trust.mode == "require"
        return cls(settings, trusted_signers=trust.signers, require_non_empty=require_non_empty, **options)

    @property
    def require_non_empty(self) -> bool:
        """An empty trustedSigners list fails every package (signatureValidationMode=require)."""
        return self.trusted_signers.require_non_empty

    @require_non_empty.setter
    def require_non_empty(self, value: bool) -> None:
        self.trusted_signers = replace(self.trusted_signers, require_non_empty=bool(value))

    @property
    def store_description(self) -> str:
        return getattr(self.trust_store, "description", None) or "the trust store"

    # -- entry point --------------------------------------------------------------------------------

    def verify_package(self, path: str | os.PathLike[str], *, archive: PackageArchive | None = None) -> PackageVerdict:
        """Judge one package file. Never raises for findings; fails closed on anything unexpected.

        `archive`: the file already opened by the caller (its remembered package hashes are reused)."""
        name = os.fspath(path)
        try:
            return self._verify(name, archive)
        except Exception as error:  # noqa: BLE001 - a verdict, never a traceback
            issue = Issue(INTERNAL_ERROR, "error", f"Verification could not be completed, so the package is "
                          f"rejected: {type(error).__name__}: {error}")
            return PackageVerdict(name, None, None, None, "invalid", issues=(issue,),
                                  steps=(StepResult("internal", Status.UNKNOWN, (issue,)),))

    def verify_packages(self, paths: Iterable[str | os.PathLike[str]]) -> list[PackageVerdict]:
        return [self.verify_package(path) for path in paths]

    # -- steps --------------------------------------------------------------------------------------

    def _verify(self, path: str, opened: PackageArchive | None = None) -> PackageVerdict:
        try:
            archive = opened or PackageArchive.open(path)
        except (TrustPolicyError, OSError) as error:
            message = getattr(error, "message", None) or str(error)
            issue = Issue(UNREADABLE, "error", f"The package file cannot be read: {message}")
            return PackageVerdict(path, None, None, None, "invalid", issues=(issue,),
                                  steps=(StepResult("read", Status.UNKNOWN, (issue,)),))
        try:
            package_id, version = archive.read_nuspec()
        except TrustPolicyError:
            package_id = version = None  # not a signature matter; the report shows no id

        if not archive.is_signed:
            if any(e.name == _SIGNATURE_NAME and e.flags & _UTF8_FLAG for e in archive.entries):
                # scenarios.md 11: NuGet's IsSigned finds the entry by name, its reader then refuses
                # the UTF-8 flagged entry: "no package signature file" (NU3005).
                error = SignatureFormatError("NU3005", "The package does not contain a valid package signature file: "
                                             "the .signature.p7s entry has the UTF-8 name flag set")
                return self._finish(path, package_id, version, True, [self._illegal(error)], ())
            return self._finish(path, package_id, version, False, [self._unsigned()], ())

        try:
            primary = parse_signature(archive.read_signature())
        except SignatureFormatError as error:
            return self._finish(path, package_id, version, True, [self._illegal(error)], ())

        steps = [self._integrity(archive, primary)]
        trusted, matched, reason = self.trusted_signers.check(primary, self.settings)
        repository = self.repository_list.check(primary, self.settings) if self.repository_list else None
        # An allow list may only rest on a countersignature that is itself valid: evaluate it then.
        counter_matched = any(m is not None and m.placement == "countersignature"
                              for m in (matched, repository[1] if repository else None))
        trust_step, reports, counter_valid = self._trust(primary, counter_needed=counter_matched)
        trusted, matched, reason = _unless_broken_counter(trusted, matched, reason, counter_valid)
        steps.append(trusted)
        steps.append(trust_step)
        if self.fingerprints.entries:
            step, fp_match, fp_reason = self.fingerprints.check(primary, self.settings)
            steps.append(step)
            if matched is None and fp_match is not None:
                matched, reason = fp_match, None
            elif matched is None and not self.trusted_signers.entries:
                reason = fp_reason
        if repository is not None:
            steps.append(_unless_broken_counter(*repository, counter_valid)[0])
        return self._finish(path, package_id, version, True, steps, reports, matched, reason)

    def _illegal(self, error: SignatureFormatError) -> StepResult:
        """verify.md 1: parse-time problems are "illegal": one finding, valid iff AllowIllegal."""
        level = "warning" if self.settings.allow_illegal else "error"
        issue = Issue(error.code, level, error.message, "primary")
        return StepResult("signature", Status.VALID if self.settings.allow_illegal else Status.DISALLOWED, (issue,))

    def _unsigned(self) -> StepResult:
        if self.settings.allow_unsigned:
            return StepResult("unsigned", Status.VALID)
        if self.repository is not None and self.repository.all_repository_signed:
            message = _UNSIGNED_REPOSITORY
        elif self.require_non_empty:
            message = _UNSIGNED_REQUIRE
        else:
            message = _UNSIGNED
        return StepResult("unsigned", Status.DISALLOWED, (Issue("NU3004", "error", message),))

    def _integrity(self, archive: PackageArchive, primary: PrimarySignature) -> StepResult:
        """verify.md 3: the content hash must be SHA-2 and match the unsigned package's hash."""
        algorithm = primary.content.hash_algorithm
        if algorithm not in ALGORITHMS:
            level = "warning" if self.settings.allow_illegal else "error"
            issue = Issue("NU3016", level, f"The package hash uses an unsupported hash algorithm ({algorithm}).")
            return StepResult("integrity", Status.UNKNOWN, (issue,))
        try:
            if archive.is_zip64():
                issue = Issue("NU3006", "error", "Signed Zip64 packages are not supported, so the package integrity "
                              "cannot be verified.")
                return StepResult("integrity", Status.SUSPECT, (issue,))
            actual = archive.package_hash(algorithm)
        except (TrustPolicyError, OSError) as error:
            message = getattr(error, "message", None) or str(error)
            issue = Issue("NU3008", "error", f"The package integrity check failed: {message}.")
            return StepResult("integrity", Status.SUSPECT, (issue,))
        if actual != primary.content.hash_value:
            issue = Issue("NU3008", "error", "The package integrity check failed. The package has changed since it "
                          f"was signed ({algorithm} of the content does not match the signed hash).")
            return StepResult("integrity", Status.SUSPECT, (issue,))
        return StepResult("integrity", Status.VALID)

    def _trust(
        self, primary: PrimarySignature, *, counter_needed: bool = False
    ) -> tuple[StepResult, tuple[SignatureReport, ...], bool]:
        """verify.md 4: evaluate the primary and, when called for (by the settings, or because an allow
        list matched it), the repository countersignature. The flag says whether the countersignature
        was evaluated and found intact and valid (only then may an allow list rest on it)."""
        settings = self.settings
        entries: tuple[AllowListEntry, ...] = self.trusted_signers.entries
        evaluator = SignatureEvaluator(
            settings,
            self.chain_validator,
            self.at,
            primary,
            untrusted_root_allowed=lambda s: untrusted_root_allowed(s, entries),
            case_only_hint=lambda s: untrusted_root_case_only(s, entries),
            store_description=self.store_description,
        )
        counter = primary.countersignature
        behavior = settings.repository_countersignature_verification_behavior

        primary_summary: Summary | None = None
        if SignaturePlacement.PRIMARY in settings.signature_placement and settings.verification_target.includes(primary.kind):
            primary_summary = evaluator.evaluate(primary)

        requested = settings.countersignature_requested
        if behavior is CountersignatureBehavior.IF_EXISTS:
            evaluate_counter = requested and counter is not None
        elif behavior is CountersignatureBehavior.IF_EXISTS_AND_IS_NECESSARY:
            # "necessary": the countersignature can rescue an untrusted or expired author primary (4.1)
            evaluate_counter = (
                requested
                and counter is not None
                and primary_summary is not None
                and primary.kind != "repository"
                and (
                    (primary_summary.status != Status.VALID and bool(primary_summary.flags & Flag.UNTRUSTED_CHAIN))
                    or primary_summary.expired
                )
            )
        elif behavior is CountersignatureBehavior.ALWAYS:
            evaluate_counter = requested
        else:
            evaluate_counter = False
        evaluate_counter = evaluate_counter or (counter_needed and counter is not None)

        issues: list[Issue] = list(primary_summary.issues) if primary_summary else []
        status = primary_summary.status if primary_summary else Status.UNKNOWN
        counter_summary: Summary | None = None
        if evaluate_counter and counter is None:
            issues.append(Issue("NU3038", "error", "Verification settings require a repository countersignature, "
                                "but the package does not have a repository countersignature."))
            status = worst(status, Status.DISALLOWED)
        elif evaluate_counter and counter is not None:
            counter_summary = evaluator.evaluate(counter)
            if primary_summary is None:
                status = counter_summary.status
            else:
                if counter_summary.status == Status.VALID:
                    issues = self._fallback(primary, primary_summary, counter_summary)
                status = worst(primary_summary.status, counter_summary.status)
            issues.extend(counter_summary.issues)

        reports = [self._report(primary, primary_summary)]
        if counter is not None:
            reports.append(self._report(counter, counter_summary))
        counter_valid = (
            counter_summary is not None
            and counter_summary.status == Status.VALID
            and not counter_summary.flags & _BROKEN
            and counter_summary.fixed_status in (None, Status.VALID)
        )
        return StepResult("trust", status, tuple(issues)), tuple(reports), counter_valid

    @staticmethod
    def _fallback(primary: PrimarySignature, summary: Summary, counter: Summary) -> list[Issue]:
        """verify.md 4.3: a Valid countersignature is a trust anchor and/or a trusted timestamp.

        Mutates the primary summary's flags; returns the primary's remaining issues.
        """
        drop: list[Issue] = []
        if summary.untrusted_root:
            drop += summary.untrusted_issues
            summary.flags &= ~Flag.UNTRUSTED_CHAIN
        cert = primary.signer_certificate
        if summary.expired and cert is not None and within(counter.timestamp, cert):
            drop += summary.expiry_issues
            summary.flags &= ~Flag.CERTIFICATE_EXPIRED
        summary.issues = [i for i in summary.issues if not any(i is d for d in drop)]
        return list(summary.issues)

    @staticmethod
    def _report(signature: Signature, summary: Summary | None) -> SignatureReport:
        cert = signature.signer_certificate
        timestamp = summary.timestamp if summary is not None else None
        return SignatureReport(
            kind=signature.kind,
            placement=signature.placement,
            subject=subject_of(cert),
            fingerprints=fingerprints_of(cert),
            timestamp=timestamp.gen_time if timestamp is not None else None,
            service_index=signature.service_index,
            owners=tuple(signature.owners),
            status=summary.status if summary is not None else None,
        )

    # -- the verdict --------------------------------------------------------------------------------

    def _finish(
        self,
        path: str,
        package_id: str | None,
        version: str | None,
        signed: bool,
        steps: Sequence[StepResult],
        reports: Sequence[SignatureReport],
        matched: MatchedSigner | None = None,
        reason: str | None = None,
    ) -> PackageVerdict:
        issues = [issue for step in steps for issue in step.issues]
        passed = all(step.status == Status.VALID for step in steps)
        if passed and self.settings.fail_on_error_issues and any(i.level == "error" for i in issues):
            passed = False
        if not passed and not any(i.level == "error" for i in issues):
            # The status rejects the package although NuGet logs its finding only as a warning
            # (e.g. NU3013 in accept mode): say so, so that an invalid verdict always has an error.
            failing = next(step for step in steps if step.status != Status.VALID)
            cause = next(iter(failing.issues), None)
            code = cause.code if cause else INTERNAL_ERROR
            issues.append(Issue(code, "error", f"The package is rejected: the {failing.step} step is "
                                f"{failing.status.label}" + (f" because of {cause.code} ({cause.message})" if cause else "")
                                + ", even though that finding is only a warning in this mode.",
                                cause.signature if cause else None))
        if not signed:
            reason = "the package is unsigned"
        elif matched is None and reason is None:
            reason = "no trusted signers are configured"
        return PackageVerdict(
            path=path,
            id=package_id,
            version=version,
            signed=signed,
            verdict="valid" if passed else "invalid",
            signatures=tuple(reports),
            issues=tuple(issues),
            steps=tuple(steps),
            trusted_signer=matched,
            trusted_signer_reason=None if matched is not None else reason,
        )


# A signature with any of these is not evidence of anything, whatever the mode tolerates.
_BROKEN = (
    Flag.SIGNATURE_CHECK_FAILED
    | Flag.SIGNATURE_ALGORITHM_UNSUPPORTED
    | Flag.PUBLIC_KEY_INVALID
    | Flag.NO_CERTIFICATE
    | Flag.CHAIN_BUILDING_FAILURE
    | Flag.CERTIFICATE_REVOKED
)


def _unless_broken_counter(
    step: StepResult, matched: MatchedSigner | None, reason: str | None, counter_valid: bool
) -> tuple[StepResult, MatchedSigner | None, str | None]:
    """An allow-list match through a repository countersignature that is not valid does not count."""
    if matched is None or matched.placement != "countersignature" or counter_valid:
        return step, matched, reason
    why = "the repository countersignature matches a trusted certificate but is not itself valid"
    issue = Issue("NU3034", "error", f"This package is not signed by a trusted signer: {why}.", "countersignature")
    return StepResult(step.step, Status.DISALLOWED, step.issues + (issue,)), None, why
