"""Package signature verification with NuGet's semantics (spec/verify.md).

    from trustpolicy.verify import Verifier, VERIFY
    verdict = Verifier(VERIFY, at=moment).verify_package("pkg.nupkg")
    verdict.verdict, verdict.issues, verdict.steps

`Verifier.verify_package` never raises for findings; the verdict keeps each step's status apart
from the level of its messages.
"""

from trustpolicy.verify.allowlist import AllowList, AllowListEntry, compile_trusted_signers
from trustpolicy.verify.engine import RepositorySignatures, Verifier
from trustpolicy.verify.models import Issue, MatchedSigner, PackageVerdict, SignatureReport, Status, StepResult, worst
from trustpolicy.verify.settings import (
    ACCEPT,
    REQUIRE,
    VERIFY,
    CountersignatureBehavior,
    SignaturePlacement,
    VerificationSettings,
    VerificationTarget,
    preset,
)

__all__ = [
    "ACCEPT",
    "REQUIRE",
    "VERIFY",
    "AllowList",
    "AllowListEntry",
    "CountersignatureBehavior",
    "Issue",
    "MatchedSigner",
    "PackageVerdict",
    "RepositorySignatures",
    "SignaturePlacement",
    "SignatureReport",
    "Status",
    "StepResult",
    "VerificationSettings",
    "VerificationTarget",
    "Verifier",
    "compile_trusted_signers",
    "preset",
    "worst",
]
