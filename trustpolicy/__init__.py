"""trustpolicy: decide whether a restored NuGet package graph may be trusted.

    import trustpolicy

    context = trustpolicy.TrustContext.build(trustpolicy.TrustOptions(mode="require", directory="src/App"))
    report = trustpolicy.check_graph(["src/App"], context)
    for package in report.failing:
        print(package.id, package.version, package.verdict.codes("error"), package.fix)
    raise SystemExit(report.exit_code)

The names below are the public API; everything under `trustpolicy._internal` may change without
notice. Findings never raise: they are `Issue`s in a verdict. Errors (`TrustPolicyError` and its
subclasses) mean the input could not be used at all.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from trustpolicy.check import (
        CheckOptions as CheckOptions,
        check_graph as check_graph,
    )
    from trustpolicy.codes import (
        CODES as CODES,
        Code as Code,
        CodeInfo as CodeInfo,
    )
    from trustpolicy.context import (
        TrustContext as TrustContext,
        TrustOptions as TrustOptions,
    )
    from trustpolicy.errors import (
        ConfigError as ConfigError,
        SignatureFormatError as SignatureFormatError,
        SigningError as SigningError,
        TrustPolicyError as TrustPolicyError,
        UsageError as UsageError,
    )
    from trustpolicy.models import (
        GraphReport as GraphReport,
        Issue as Issue,
        Level as Level,
        Location as Location,
        MatchedSigner as MatchedSigner,
        PackageReport as PackageReport,
        PackageVerdict as PackageVerdict,
        SignatureReport as SignatureReport,
        Status as Status,
        StepResult as StepResult,
        Summary as Summary,
    )
    from trustpolicy.verification import (
        verify_package as verify_package,
        verify_packages as verify_packages,
    )

# Loaded on first use: `import trustpolicy` stays cheap for the command line, which needs only a few.
_PUBLIC = {
    "check": ("CheckOptions", "check_graph"),
    "codes": ("CODES", "Code", "CodeInfo"),
    "context": ("TrustContext", "TrustOptions"),
    "errors": ("ConfigError", "SignatureFormatError", "SigningError", "TrustPolicyError", "UsageError"),
    "models": (
        "GraphReport",
        "Issue",
        "Level",
        "Location",
        "MatchedSigner",
        "PackageReport",
        "PackageVerdict",
        "SignatureReport",
        "Status",
        "StepResult",
        "Summary",
    ),
    "verification": ("verify_package", "verify_packages"),
}
_HOME = {name: module for module, names in _PUBLIC.items() for name in names}

__all__ = sorted(["__version__", *_HOME])  # the TYPE_CHECKING imports above name the same, for type checkers


def __getattr__(name: str) -> object:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'trustpolicy' has no attribute {name!r}")
    return getattr(import_module(f"trustpolicy.{module}"), name)


def __dir__() -> list[str]:
    return __all__
