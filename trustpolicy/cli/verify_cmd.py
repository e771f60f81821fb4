"""`trustpolicy verify`: judge package files with the verify command's policy (docs/verification.md 1, 9).

Like `dotnet nuget verify`: the VERIFY preset, the trustedSigners and signatureValidationMode of the
NuGet.Config in effect (--configfile picks the file), and --certificate-fingerprint as an extra
allow list. Exit 0 when every package is valid, 1 when any is invalid, 2 for bad usage, an unusable
config / trust file, or an input that is no file at all (missing, a folder, a wildcard matching
nothing: one line each on stderr, the other packages are still judged, as `inspect` does). A file
that is there but cannot be read as a package is an invalid package, not an error.
"""

from __future__ import annotations

import argparse
import glob
import os
import sys

from trustpolicy._internal.verbosity import Verbosity
from trustpolicy.cli.options import add_trust_options, trust_options
from trustpolicy.models import EXIT_UNUSABLE


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "verify",
        help="verify package signatures (like dotnet nuget verify)",
        description="Verify the signatures of .nupkg files with the verify command's policy.",
    )
    parser.add_argument("packages", nargs="+", metavar="PACKAGE", help="package files (wildcards allowed)")
    parser.add_argument("--all", action="store_true", help="run every verification (today: signatures, the default)")
    parser.add_argument(
        "--certificate-fingerprint", action="append", default=[], metavar="FP",
        help="SHA-256 fingerprint (hex, any case) of an allowed primary signer certificate; repeatable",
    )
    add_trust_options(parser)
    parser.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    parser.set_defaults(func=run)


def _expand(patterns: list[str]) -> tuple[list[str], list[str]]:
    """(files, problems): paths as given, a pattern with wildcards that names no file expanded
    (sorted, files only); one line for each input that is not a file."""
    files: list[str] = []
    problems: list[str] = []
    for pattern in patterns:
        if not os.path.exists(pattern) and glob.has_magic(pattern):
            matches = sorted(path for path in glob.glob(pattern) if not os.path.isdir(path))
            files.extend(matches)
            if not matches:
                problems.append(f"{pattern}: no file matches this pattern")
        elif os.path.isdir(pattern):
            problems.append(f"{pattern}: is a folder, not a package file (use `trustpolicy check {pattern}` for a folder)")
        elif not os.path.exists(pattern):
            problems.append(f"{pattern}: no such file")
        else:
            files.append(pattern)
    return files, problems


def run(args: argparse.Namespace) -> int:
    from trustpolicy._internal.report import render_verify_json, render_verify_text
    from trustpolicy.context import TrustContext
    from trustpolicy.verification import config_warnings, verify_packages

    # Everything that can make the run unusable is checked before any package is judged (exit 2).
    context = TrustContext.build(trust_options(args, mode="verify", certificate_fingerprints=args.certificate_fingerprint))
    files, problems = _expand(args.packages)
    for problem in problems:
        print(f"trustpolicy: error: {problem}", file=sys.stderr)
    report = verify_packages(files, context)
    if args.verbosity > Verbosity.QUIET:
        for warning in config_warnings(context):
            print(f"trustpolicy: warning: {warning}", file=sys.stderr)
    if args.format == "json":
        sys.stdout.write(render_verify_json(report))
    else:
        render_verify_text(report, verbosity=args.verbosity)
    return EXIT_UNUSABLE if problems else report.exit_code
