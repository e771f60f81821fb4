"""Package signature verification with NuGet's semantics (spec/verify.md).

    from trustpolicy.verify import Verifier, VERIFY
    verdict = Verifier(VERIFY, at=moment).verify_package("pkg.nupkg")
    verdict.verdict, verdict.issues, verdict.steps

`Verifier.verify_package` never raises for findings; the verdict keeps each step's status apart
from the level of its messages.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

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

if TYPE_CHECKING:
    from trustpolicy.verify.allowlist import AllowList, AllowListEntry, compile_trusted_signers
    from trustpolicy.verify.engine import RepositorySignatures, Verifier

# The engine and the allow lists pull in the CMS, X.509 and crypto stack: loaded on first use, so
# `trustpolicy.verify.settings` (all a check answered from the cache needs) stays cheap to import.
_LAZY = {
    "AllowList": "trustpolicy.verify.allowlist",
    "AllowListEntry": "trustpolicy.verify.allowlist",
    "compile_trusted_signers": "trustpolicy.verify.allowlist",
    "RepositorySignatures": "trustpolicy.verify.engine",
    "Verifier": "trustpolicy.verify.engine",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
