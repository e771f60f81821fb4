"""`verify`: judge package files (not a graph) with the verify command's policy, like
`dotnet nuget verify --all`.

    context = TrustContext.build(TrustOptions(mode="verify"))
    report = verify_packages(["a.nupkg", "b.nupkg"], context)

A package that cannot be read is an invalid verdict (TP0003), not an error.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from trustpolicy import __version__
from trustpolicy._internal.clock import format_moment
from trustpolicy.context import TrustContext, TrustOptions
from trustpolicy.models import GraphReport, Location, PackageReport, PackageVerdict

__all__ = ["verify_package", "verify_packages"]


def verify_package(path: str | os.PathLike[str], context: TrustContext | None = None) -> PackageVerdict:
    """The verdict on one package file (the verify command's policy unless `context` says otherwise)."""
    context = context or TrustContext.build(TrustOptions(mode="verify"))
    return context.verifier().verify_package(path)


def verify_packages(paths: Sequence[str | os.PathLike[str]], context: TrustContext | None = None) -> GraphReport:
    """Verdicts on package files, as a report (its exit_code is 0 only when every package is valid)."""
    context = context or TrustContext.build(TrustOptions(mode="verify"))
    with context.chain_validator() as chains:
        verifier = context.verifier(chains)
        verdicts = [verifier.verify_package(path) for path in paths]
    settings = dict(context.settings.to_json())
    settings.update(
        at=format_moment(context.reference_time),
        signatureValidationMode=context.config.mode,
        configFiles=list(context.config.files),
        trustedSigners=len(context.config.signers),
        certificateFingerprints=list(context.fingerprints),
        configWarnings=config_warnings(context),
    )
    # verify names a package by its file: id and version are only known when its manifest was read
    packages = tuple(
        PackageReport(v.id or "", v.version or "", v, Location(os.fspath(path), kind="file"))
        for v, path in zip(verdicts, paths)
    )
    return GraphReport(
        mode=context.mode,
        packages=packages,
        generated_at=context.reference_time,
        settings=settings,
        trust_store=context.trust_store.description,
        config_files=context.config.files,
        tool_version=__version__,
    )


def config_warnings(context: TrustContext) -> list[str]:
    """Config load warnings (NU3040...) as "file:line: CODE: message"."""
    return [f"{w.where}: {w.code}: {w.message}" for w in context.config.warnings]
