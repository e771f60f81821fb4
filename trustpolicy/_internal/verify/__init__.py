"""Package signature verification with NuGet's semantics (docs/verification.md).

    verdict = TrustContext.build(TrustOptions(mode="verify")).verifier().verify_package("pkg.nupkg")
    verdict.verdict, verdict.issues, verdict.steps

`Verifier.verify_package` never raises for findings; the verdict keeps each step's status apart
from the level of its messages.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from trustpolicy._internal.verify.settings import (
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
    from trustpolicy._internal.verify.allowlist import (
        AllOf,
        AllowList,
        AllowListEntry,
        RepositorySignatures,
        compile_trusted_signers,
    )
    from trustpolicy._internal.verify.engine import Verifier

# The engine and the allow lists pull in the CMS, X.509 and crypto stack: loaded on first use, so
# `trustpolicy._internal.verify.settings` (all a check answered from the cache needs) stays cheap to import.
_LAZY = {
    "AllowList": "trustpolicy._internal.verify.allowlist",
    "AllowListEntry": "trustpolicy._internal.verify.allowlist",
    "compile_trusted_signers": "trustpolicy._internal.verify.allowlist",
    "RepositorySignatures": "trustpolicy._internal.verify.allowlist",
    "AllOf": "trustpolicy._internal.verify.allowlist",
    "Verifier": "trustpolicy._internal.verify.engine",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ACCEPT",
    "REQUIRE",
    "VERIFY",
    "AllOf",
    "AllowList",
    "AllowListEntry",
    "CountersignatureBehavior",
    "RepositorySignatures",
    "SignaturePlacement",
    "VerificationSettings",
    "VerificationTarget",
    "Verifier",
    "compile_trusted_signers",
    "preset",
]
