"""`verify`'s text output: a block per package (verdict, signatures, trusted signer, issues), then a
count. Colours only on a terminal; report text is never read as markup.

Verbosity: quiet prints one line per invalid package; minimal one line per package and the count;
normal adds signatures, the trusted signer and each issue; detailed adds each issue's detail;
diagnostic also the settings the packages were judged with."""

from __future__ import annotations

import sys
from typing import TextIO

from trustpolicy._internal.clock import format_moment
from trustpolicy._internal.verbosity import Verbosity
from trustpolicy.models import GraphReport, Level

_STYLES = {"valid": "bold green", "invalid": "bold red", Level.ERROR: "red", Level.WARNING: "yellow", Level.INFO: "dim"}


def render_verify_text(report: GraphReport, out: TextIO | None = None, verbosity: Verbosity = Verbosity.NORMAL) -> None:
    out = out or sys.stdout
    console = None
    if out.isatty():
        from rich.console import Console

        console = Console(file=out, highlight=False, soft_wrap=True)

    def emit(text: str, style: str | None = None) -> None:
        if console is not None:
            from rich.text import Text

            console.print(Text(text, style=style or ""))
        else:
            print(text, file=out)

    if verbosity >= Verbosity.DIAGNOSTIC:
        for key, value in report.settings.items():
            emit(f"setting {key}: {value}", Level.INFO)
    for package in report.packages:
        verdict = package.verdict
        name = f"{verdict.id} {verdict.version}" if verdict.id else None
        line = f"{verdict.verdict.upper():8} {verdict.path}" + (f" ({name})" if name else "")
        if verbosity is Verbosity.QUIET:
            if not verdict.passed:
                first = verdict.errors[0] if verdict.errors else None
                emit(line + (f": {first.code} {first.message}" if first else ""), _STYLES[verdict.verdict])
            continue
        emit(line, _STYLES[verdict.verdict])
        if verbosity is Verbosity.MINIMAL:
            continue
        if verdict.signed is False:
            emit("  unsigned")
        for sig in verdict.signatures:
            parts = [f"{sig.kind} primary signature" if sig.placement == "primary" else "repository countersignature"]
            if sig.subject:
                parts.append(sig.subject)
            if "SHA256" in sig.fingerprints:
                parts.append(f"SHA256 {sig.fingerprints['SHA256']}")
            parts.append(f"timestamp {format_moment(sig.timestamp)}" if sig.timestamp else "no valid timestamp")
            if sig.service_index:
                parts.append(f"service index {sig.service_index}")
            if sig.owners:
                parts.append(f"owners {';'.join(sig.owners)}")
            parts.append(sig.status.label if sig.status is not None else "not evaluated")
            emit("  " + ", ".join(parts))
        if verdict.trusted_signer is not None:
            matched = verdict.trusted_signer
            how = f", identity rule at {matched.source}" if matched.rule == "identity" else ""
            emit(f"  trusted signer: {matched.kind} '{matched.name}' ({matched.fingerprint}{how})")
        if verdict.exception is not None:
            used = verdict.exception
            emit(f"  allowed by exception: {used.package_id} {used.versions} until {used.expires}, {used.reason} ({used.source})")
        for issue in verdict.issues:
            emit(f"  {issue.level} {issue.code}: {issue.message}", _STYLES[issue.level])
            if issue.detail and verbosity >= Verbosity.DETAILED:
                emit(f"    {issue.detail}", Level.INFO)
    if verbosity is Verbosity.QUIET:
        return
    s = report.summary
    emit(f"{s.total} package{'s' if s.total != 1 else ''}: {s.valid} valid, {s.invalid} invalid")
