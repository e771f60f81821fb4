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
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:
    from trustpolicy.check import CheckOptions, check_graph
    from trustpolicy.codes import CODES, Code, CodeInfo
    from trustpolicy.context import TrustContext, TrustOptions
    from trustpolicy.errors import ConfigError, SignatureFormatError, SigningError, TrustPolicyError, UsageError
    from trustpolicy.models import (
        GraphReport,
        Issue,
        Level,
        Location,
        MatchedSigner,
        PackageReport,
        PackageVerdict,
        SignatureReport,
        Status,
        StepResult,
        Summary,
    )
    from trustpolicy.verification import verify_package, verify_packages

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

__all__ = [
    "CODES",
    "CheckOptions",
    "Code",
    "CodeInfo",
    "ConfigError",
    "GraphReport",
    "Issue",
    "Level",
    "Location",
    "MatchedSigner",
    "PackageReport",
    "PackageVerdict",
    "SignatureFormatError",
    "SignatureReport",
    "SigningError",
    "Status",
    "StepResult",
    "Summary",
    "TrustContext",
    "TrustOptions",
    "TrustPolicyError",
    "UsageError",
    "__version__",
    "check_graph",
    "verify_package",
    "verify_packages",
]


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module 'trustpolicy' has no attribute {name!r}")
    return getattr(import_module(f"trustpolicy.{module}"), name)


def __dir__() -> list[str]:
    return __all__
