"""`trustpolicy inspect PACKAGE... [--format text|json]`: show what a package's signatures contain.

Exit codes: 0 every file was inspected (unsigned is fine); 1 a signature could not be parsed (its
NU code is in the output); 2 a file could not be read at all (one line on stderr naming it, with
TP0003 as `verify` and `check` report it; the others still run).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from rich.console import Console
from rich.text import Text

from trustpolicy._internal.inspect import inspect_package, signature_failed
from trustpolicy.errors import TrustPolicyError

EXIT_OK, EXIT_FINDINGS, EXIT_ERROR = 0, 1, 2
_LABEL = 16  # width of the label column in text output


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="show a package's signatures, timestamps and certificates",
        description="Show the signatures of .nupkg files (or bare .signature.p7s files) without judging trust.",
    )
    parser.add_argument("packages", nargs="+", metavar="PACKAGE", help=".nupkg or .signature.p7s file")
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format (default: text)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    reports: list[dict[str, Any]] = []
    exit_code = EXIT_OK
    for path in args.packages:
        try:
            report = inspect_package(path)
        except TrustPolicyError as error:  # unreadable file: say so, carry on with the others
            print(f"trustpolicy: error: {error}", file=sys.stderr)
            exit_code = EXIT_ERROR
            continue
        if signature_failed(report):
            exit_code = max(exit_code, EXIT_FINDINGS)
        reports.append(report)
    if args.format == "json":
        json.dump(reports, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        console = Console(file=sys.stdout, highlight=False, soft_wrap=True)  # colours only on a terminal
        for index, report in enumerate(reports):
            if index:
                console.print()
            _render(console, report)
    return exit_code


def _line(console: Console, indent: int, label: str, value: Any, style: str = "") -> None:
    text = Text(" " * indent)
    text.append(f"{label + ':':<{_LABEL}}", style="dim")
    text.append("-" if value is None or value == "" else str(value), style=style)
    console.print(text)


def _render(console: Console, report: dict[str, Any]) -> None:
    console.print(Text(report["path"], style="bold"))
    if report["id"]:
        _line(console, 2, "Package", f"{report['id']} {report['version']}")
    _line(console, 2, "Signed", "yes" if report["signed"] else "no", "green" if report["signed"] else "yellow")
    content = report["contentHash"]
    if content:
        _line(console, 2, "Content hash", f"{content['algorithm']} {content['value']}")
        if "matches" in content:
            ok = content["matches"]
            _line(console, 2, "Integrity", "matches the package" if ok else "DOES NOT match the package",
                  "green" if ok else "bold red")
    if report["primary"]:
        _render_signature(console, report["primary"])
    for counter in report["countersignatures"]:
        _render_signature(console, counter)
    if report["problems"]:
        console.print(Text("  Problems", style="bold red"))
        for problem in report["problems"]:
            text = Text("    ")
            text.append(problem["code"], style="red")
            text.append(f" {problem['message']}")
            console.print(text)


def _render_signature(console: Console, sig: dict[str, Any]) -> None:
    title = f"{sig['kind'].capitalize()} {'signature' if sig['placement'] == 'primary' else 'countersignature'}"
    if sig["placement"] == "primary":
        title += " (primary)"
    console.print(Text(f"  {title}", style="bold cyan"))
    signer = sig["signer"]
    if signer:
        _line(console, 4, "Subject", signer["subject"])
        _line(console, 4, "Issuer", signer["issuer"])
        _line(console, 4, "Serial number", signer["serialNumber"])
        _line(console, 4, "Valid", f"{signer['notBefore']} to {signer['notAfter']}")
        _line(console, 4, "SHA256", signer["fingerprints"]["SHA256"])
    else:
        _line(console, 4, "Signer", "certificate not found in the signature", "red")
    _line(console, 4, "Digest", sig["digestAlgorithm"])
    _line(console, 4, "Signing time", sig["signingTime"])
    if sig["kind"] == "repository":
        _line(console, 4, "Service index", sig["serviceIndex"])
        _line(console, 4, "Owners", ", ".join(sig["owners"]) or None)
    if not sig["timestamps"]:
        _line(console, 4, "Timestamp", "none", "yellow")
    for ts in sig["timestamps"]:
        when = f"{ts['time']} (accuracy {ts['accuracy']:g} s)" if ts["time"] else None
        _line(console, 4, "Timestamp", when)
        _line(console, 6, "TSA", ts["tsaSubject"])
        _line(console, 6, "Hash", ts["hashAlgorithm"])
        if ts["problem"]:
            _line(console, 6, "Problem", f"{ts['problem']['code']} {ts['problem']['message']}", "red")
    if sig["certificates"]:
        console.print(Text(" " * 4 + "Certificates:", style="dim"))
        for number, cert in enumerate(sig["certificates"], 1):
            console.print(Text(f"      {number}. {cert['subject']}"))
            console.print(Text(f"         SHA256 {cert['fingerprints']['SHA256']}", style="dim"))
            console.print(Text(f"         valid {cert['notBefore']} to {cert['notAfter']}", style="dim"))
