"""The verifier: runs NuGet's verification steps in order and combines their statuses.

docs/verification.md section 1. For a signed package the steps are, as in the verify command:
  1. integrity                      (section 3)  NU3008 / NU3016
  2. trustedSigners allow list      (section 5.1) NU3034
  3. signature validity and trust   (section 4)  NU3010-NU3038
  4. --certificate-fingerprint list (section 5.2) NU3034
  5. repository-announced list      (section 5.3) NU3034, only when a source announced one
The package is valid iff every step is VALID (plus, for the verify command, no error-level issue).
A signature that cannot be parsed replaces all steps with one "illegal" finding (docs/verification.md 1).

Each signature is evaluated once (validity.SignatureEvaluator) and that evaluation serves both the
trust step and the allow lists, whose identity rules need the chain that validated at the signing
time. A package that fails is judged again under a `<trustPolicy>` exception naming it, if one is in
force (verify/package_exceptions.py).

`Verifier.verify_package` never raises for findings: anything unexpected while judging a package
becomes an invalid verdict naming the cause (fail closed).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from trustpolicy._internal.archive import ALGORITHMS, PackageArchive
from trustpolicy._internal.config.rules import durable_identities
from trustpolicy._internal.signature import PrimarySignature, Signature, parse_signature
from trustpolicy._internal.verify.allowlist import (
    AllOf,
    AllowListEntry,
    AllowResult,
    Evidence,
    untrusted_root_allowed,
    untrusted_root_case_only,
)
from trustpolicy._internal.verify.identity import certificate_ekus
from trustpolicy._internal.verify.package_exceptions import Exceptions, expired_step, use_of, used_step
from trustpolicy._internal.verify.settings import CountersignatureBehavior, SignaturePlacement, VerificationSettings
from trustpolicy._internal.verify.validity import Flag, SignatureEvaluator, Summary, fingerprints_of, subject_of
from trustpolicy.codes import Code
from trustpolicy.errors import SignatureFormatError, TrustPolicyError
from trustpolicy.models import Issue, Level, MatchedSigner, PackageVerdict, SignatureReport, Status, StepResult, worst

if TYPE_CHECKING:
    from collections.abc import Callable

    from trustpolicy._internal.chain import ChainValidator
    from trustpolicy._internal.config.rules import PackageException

__all__ = ["Verifier"]

_SIGNATURE_NAME = b".signature.p7s"
_UTF8_FLAG = 0x0800
_UNSIGNED = "The package is not signed."


class Verifier:
    """Judges package files under one policy, one chain validator and one moment.

    Build it from a TrustContext (`context.verifier()`), which assembles everything once.

    Args:
        settings: the policy (ACCEPT, REQUIRE, VERIFY or a custom VerificationSettings), final: the
            verifier never changes it. Its revocation_mode must be the chain validator's.
        chains: the chain validator (trust store and revocation); one per process is cheapest.
        at: the moment everything is judged at (the run's reference time; aware).
        allow_lists: every allow list a package must pass (trustedSigners first, see AllOf).
        exceptions: the `<trustPolicy>` exceptions in force (packages allowed although unsigned or
            untrusted, until a date judged against `at`).
    """

    def __init__(
        self,
        settings: VerificationSettings,
        *,
        chains: ChainValidator,
        at: datetime,
        allow_lists: AllOf,
        exceptions: Iterable[PackageException] = (),
    ) -> None:
        if at.tzinfo is None:
            raise ValueError("Verifier needs an aware datetime for `at`")
        if chains.revocation.mode != settings.revocation_mode:
            raise ValueError(f"the settings say revocation {settings.revocation_mode!r} but the chain validator "
                             f"checks {chains.revocation.mode!r}")
        self.settings = settings
        self.chains = chains
        self.at = at
        self.allow_lists = allow_lists
        self.exceptions = Exceptions.of(exceptions)

    # -- entry point --------------------------------------------------------------------------------

    def verify_package(self, path: str | os.PathLike[str], *, archive: PackageArchive | None = None) -> PackageVerdict:
        """Judge one package file. Never raises for findings; fails closed on anything unexpected.

        `archive`: the file already opened by the caller (its remembered package hashes are reused)."""
        name = os.fspath(path)
        try:
            return self._verify(name, archive)
        except Exception as error:
            issue = Issue(Code.TP0004, Level.ERROR, f"Verification could not be completed, so the package is "
                          f"rejected: {type(error).__name__}: {error}")
            return PackageVerdict(name, None, None, None, (StepResult("internal", Status.UNKNOWN, (issue,)),))

    def verify_packages(self, paths: Iterable[str | os.PathLike[str]]) -> list[PackageVerdict]:
        return [self.verify_package(path) for path in paths]

    # -- steps --------------------------------------------------------------------------------------

    def _verify(self, path: str, opened: PackageArchive | None = None) -> PackageVerdict:
        try:
            archive = opened or PackageArchive.open(path)
        except (TrustPolicyError, OSError) as error:
            message = getattr(error, "message", None) or str(error)
            issue = Issue(Code.TP0003, Level.ERROR, f"The package file cannot be read: {message}")
            return PackageVerdict(path, None, None, None, (StepResult("read", Status.UNKNOWN, (issue,)),))
        package_id: str | None
        version: str | None
        try:
            package_id, version = archive.read_nuspec()
        except TrustPolicyError:
            package_id = version = None  # not a signature matter; the report shows no id

        verdict = self._judge(path, archive, package_id, version)
        if verdict.passed or not self.exceptions or package_id is None or version is None:
            return verdict
        active, expired = self.exceptions.lookup(package_id, version, self.at)
        if active is not None:
            excused = self._judge(path, archive, package_id, version, excepted=True)
            excused = excused.with_step(used_step(active, package_id, version, self.at))
            if excused.passed:
                reason = excused.trusted_signer_reason
                if excused.trusted_signer is None:
                    reason = f"{reason}; allowed by the exception for {active.describe()}"
                return replace(excused, exception=use_of(active), trusted_signer_reason=reason)
            return verdict  # what is wrong is more than an exception covers (integrity, a broken signature...)
        if expired is not None:
            return verdict.with_step(expired_step(expired, package_id, version))
        return verdict

    def _judge(
        self, path: str, archive: PackageArchive, package_id: str | None, version: str | None, *, excepted: bool = False
    ) -> PackageVerdict:
        """The verdict on the package; `excepted`: under an exception (unsigned allowed, no allow list
        needed, untrusted roots tolerated)."""
        if not archive.is_signed:
            if any(e.name == _SIGNATURE_NAME and e.flags & _UTF8_FLAG for e in archive.entries):
                # docs/scenarios.md 11: NuGet's IsSigned finds the entry by name, its reader then refuses
                # the UTF-8 flagged entry: "no package signature file" (NU3005).
                flagged = SignatureFormatError(Code.NU3005, "The package does not contain a valid package signature "
                                               "file: the .signature.p7s entry has the UTF-8 name flag set")
                return self._finish(path, package_id, version, True, [self._illegal(flagged)], ())
            return self._finish(path, package_id, version, False, [self._unsigned(excepted)], ())

        try:
            primary = parse_signature(archive.read_signature())
        except SignatureFormatError as error:
            return self._finish(path, package_id, version, True, [self._illegal(error)], ())

        evaluate = self._evaluator(primary, excepted)
        results = self.allow_lists.check(primary, self.settings, Evidence(package_id, evaluate))
        # An allow list may only rest on a countersignature that is itself valid: evaluate it then.
        counter_needed = any(r.matched is not None and r.matched.placement == "countersignature" for r in results)
        trust_step, reports, counter_valid = self._trust(primary, evaluate, counter_needed=counter_needed)
        results = tuple(_unless_broken_counter(result, counter_valid) for result in results)
        if excepted:
            results = tuple(_excused(result) for result in results)
        # NuGet's provider order: integrity, the client's trustedSigners, trust and validity, then the
        # other lists (--certificate-fingerprint, a repository's announced certificates).
        first, *rest = results
        steps = [self._integrity(archive, primary), first.step, trust_step, *(r.step for r in rest)]
        matched = next((r.matched for r in results if r.matched is not None), None)
        configured = [r for r, p in zip(results, self.allow_lists.policies) if p.entries or getattr(p, "identities", ())]
        reason = None if matched is not None else (configured or [first])[0].reason
        return self._finish(path, package_id, version, True, steps, reports, matched, reason)

    def _evaluator(self, primary: PrimarySignature, excepted: bool) -> Callable[[Signature], Summary]:
        """Each signature's own evaluation (docs/verification.md 4.2), computed once however often it is asked for."""
        entries: tuple[AllowListEntry, ...] = self.allow_lists.entries
        evaluator = SignatureEvaluator(
            self.settings,
            self.chains,
            self.at,
            primary,
            untrusted_root_allowed=lambda s: excepted or untrusted_root_allowed(s, entries),
            case_only_hint=lambda s: untrusted_root_case_only(s, entries),
            store_description=self.chains.trust_store.description,
        )
        done: dict[str, Summary] = {}

        def evaluate(signature: Signature) -> Summary:
            if signature.placement not in done:
                done[signature.placement] = evaluator.evaluate(signature)
            return done[signature.placement]

        return evaluate

    def _illegal(self, error: SignatureFormatError) -> StepResult:
        """docs/verification.md 1: parse-time problems are "illegal": one finding, valid iff AllowIllegal."""
        level = Level.WARNING if self.settings.allow_illegal else Level.ERROR
        issue = Issue(error.code, level, error.message, "primary")
        return StepResult("signature", Status.VALID if self.settings.allow_illegal else Status.DISALLOWED, (issue,))

    def _unsigned(self, excepted: bool = False) -> StepResult:
        if self.settings.allow_unsigned or excepted:
            return StepResult("unsigned", Status.VALID)
        message = self.allow_lists.unsigned_message or _UNSIGNED
        return StepResult("unsigned", Status.DISALLOWED, (Issue(Code.NU3004, Level.ERROR, message),))

    def _integrity(self, archive: PackageArchive, primary: PrimarySignature) -> StepResult:
        """docs/verification.md 3: the content hash must be SHA-2 and match the unsigned package's hash."""
        algorithm = primary.content.hash_algorithm
        if algorithm not in ALGORITHMS:
            level = Level.WARNING if self.settings.allow_illegal else Level.ERROR
            issue = Issue(Code.NU3016, level, f"The package hash uses an unsupported hash algorithm ({algorithm}).")
            return StepResult("integrity", Status.UNKNOWN, (issue,))
        try:
            if archive.is_zip64():
                issue = Issue(Code.NU3006, Level.ERROR, "Signed Zip64 packages are not supported, so the package integrity "
                              "cannot be verified.")
                return StepResult("integrity", Status.SUSPECT, (issue,))
            actual = archive.package_hash(algorithm)
        except (TrustPolicyError, OSError) as error:
            message = getattr(error, "message", None) or str(error)
            issue = Issue(Code.NU3008, Level.ERROR, f"The package integrity check failed: {message}.")
            return StepResult("integrity", Status.SUSPECT, (issue,))
        if actual != primary.content.hash_value:
            issue = Issue(Code.NU3008, Level.ERROR, "The package integrity check failed. The package has changed since it "
                          f"was signed ({algorithm} of the content does not match the signed hash).")
            return StepResult("integrity", Status.SUSPECT, (issue,))
        return StepResult("integrity", Status.VALID)

    def _trust(
        self, primary: PrimarySignature, evaluate: Callable[[Signature], Summary], *, counter_needed: bool = False
    ) -> tuple[StepResult, tuple[SignatureReport, ...], bool]:
        """docs/verification.md 4: evaluate the primary and, when called for (by the settings, or because an allow
        list matched it), the repository countersignature. The flag says whether the countersignature
        was evaluated and found intact and valid (only then may an allow list rest on it)."""
        settings = self.settings
        counter = primary.countersignature
        behavior = settings.repository_countersignature_verification_behavior

        primary_summary: Summary | None = None
        if SignaturePlacement.PRIMARY in settings.signature_placement and settings.verification_target.includes(primary.kind):
            primary_summary = evaluate(primary)

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

        counter_summary: Summary | None = None
        missing_counter: tuple[Issue, ...] = ()
        if evaluate_counter and counter is None:
            missing_counter = (Issue(Code.NU3038, Level.ERROR, "Verification settings require a repository "
                                     "countersignature, but the package does not have a repository countersignature."),)
        elif evaluate_counter and counter is not None:
            counter_summary = evaluate(counter)
            if primary_summary is not None and counter_summary.status == Status.VALID:
                primary_summary = primary_summary.rescued_by(counter_summary)

        summaries = [s for s in (primary_summary, counter_summary) if s is not None]
        status = worst(*(s.status for s in summaries)) if summaries else Status.UNKNOWN
        if missing_counter:
            status = worst(status, Status.DISALLOWED)
        issues = tuple(issue for s in summaries for issue in s.issues) + missing_counter

        reports = [self._report(primary, primary_summary)]
        if counter is not None:
            reports.append(self._report(counter, counter_summary))
        counter_valid = counter_summary is not None and counter_summary.intact_and_valid
        return StepResult("trust", status, issues), tuple(reports), counter_valid

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
            identities=tuple(durable_identities(certificate_ekus(cert))) if cert is not None else (),
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
        if not signed:
            reason = "the package is unsigned"
        elif matched is None and reason is None:
            reason = "no trusted signers are configured"
        return PackageVerdict(
            path=path,
            id=package_id,
            version=version,
            signed=signed,
            steps=tuple(steps),
            signatures=tuple(reports),
            trusted_signer=matched,
            trusted_signer_reason=None if matched is not None else reason,
            errors_fail=self.settings.fail_on_error_issues,
        )


def _unless_broken_counter(result: AllowResult, counter_valid: bool) -> AllowResult:
    """An allow-list match through a repository countersignature that is not valid does not count."""
    matched = result.matched
    if matched is None or matched.placement != "countersignature" or counter_valid:
        return result
    why = "the repository countersignature matches a trusted certificate but is not itself valid"
    issue = Issue(Code.NU3034, Level.ERROR, f"This package is not signed by a trusted signer: {why}.", "countersignature")
    step = result.step
    return AllowResult(StepResult(step.step, Status.DISALLOWED, (*step.issues, issue)), None, why)


def _excused(result: AllowResult) -> AllowResult:
    """Under an exception an allow list that matched nothing does not refuse: its findings stay, as warnings."""
    step = result.step
    if step.status == Status.VALID:
        return result
    issues = tuple(replace(i, level=Level.WARNING) if i.level is Level.ERROR else i for i in step.issues)
    return AllowResult(StepResult(step.step, Status.VALID, issues), result.matched, result.reason)
