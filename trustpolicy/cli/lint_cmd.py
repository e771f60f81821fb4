"""`trustpolicy lint`: findings in NuGet trust settings, with file:line and a fix.

Exit codes: 0 no findings (advice only), 1 findings, 2 a config file cannot be read.
"""

from __future__ import annotations

import argparse
import json

from trustpolicy import clock
from trustpolicy.cli.config_cmd import add_scope_arguments
from trustpolicy.config.hierarchy import load_config
from trustpolicy.config.lint import failing, lint
from trustpolicy.errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("lint", help="find mistakes in NuGet.Config trust settings")
    add_scope_arguments(parser)
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--at", metavar="MOMENT", help="judge certificate validity at this ISO 8601 moment (default: now)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    loaded = load_config(args.configfile, args.directory)
    try:
        at = clock.parse_moment(args.at) if args.at else clock.now()
    except ValueError as exc:
        raise UsageError(f"--at: {exc}") from None
    findings = lint(loaded, at=at)
    code = 1 if failing(findings) else 0
    if args.format == "json":
        print(
            json.dumps(
                {
                    "files": [f.path for f in loaded.files if f.parsed is not None],
                    "findings": [f.as_dict() for f in findings],
                    "exitCode": code,
                },
                indent=2,
            )
        )
        return code
    for finding in findings:
        print(f"{finding.source}: {finding.level}: {finding.message} [{finding.rule}]")
        print(f"    fix: {finding.fix}")
    checked = sum(1 for f in loaded.files if f.parsed is not None)
    counted = [f for f in findings if f.level != "info"]
    print(f"{len(counted)} finding(s) in {checked} file(s)" if counted else f"No findings in {checked} file(s).")
    return code
