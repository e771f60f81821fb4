"""`trustpolicy lint`: findings in NuGet trust settings, with file:line and a fix.

Exit codes: 0 no errors or warnings (info findings are advice), 1 errors or warnings, 2 a config
file cannot be read at all.
"""

from __future__ import annotations

import argparse
import json

from trustpolicy._internal.config.lint import failing, lint, rule
from trustpolicy.cli.config_cmd import add_scope_arguments
from trustpolicy.cli.options import parse_at
from trustpolicy.models import Issue, Level


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("lint", help="find mistakes in NuGet.Config trust settings")
    add_scope_arguments(parser)
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument(
        "--at", metavar="MOMENT", help="judge which nuget.org certificates are in use at this ISO 8601 moment (default: now)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from trustpolicy.context import TrustContext, TrustOptions

    # Not strict: what verification would refuse is what lint reports.
    options = TrustOptions(configfile=args.configfile, directory=args.directory, at=parse_at(args.at))
    context = TrustContext.build(options, strict=False)
    loaded = context.loaded
    findings = lint(loaded, at=context.reference_time, roots=_root_fingerprints(context))
    code = 1 if failing(findings) else 0
    checked = [f.path for f in loaded.files if f.parsed is not None]
    if args.format == "json":
        print(json.dumps({"files": checked, "findings": [as_json(f) for f in findings], "exitCode": code}, indent=2))
        return code
    for finding in findings:
        print(f"{finding.where}: {finding.level}: {finding.message} [{finding.code} {rule(finding)}]")
        print(f"    fix: {finding.fix}")
    print(summary(findings, len(checked)))
    return code


def _root_fingerprints(context) -> frozenset[str]:  # type: ignore[no-untyped-def]
    """SHA-256 of the code-signing roots, for identity rules that pin one (only when there are any)."""
    if not context.config.rules.identities:
        return frozenset()
    from trustpolicy._internal.signature import fingerprint

    return frozenset(fingerprint(root) for root in context.trust_store.roots("code_signing"))


def as_json(issue: Issue) -> dict[str, object]:
    where = issue.where
    return {
        "code": issue.code.value,
        "rule": rule(issue),
        "level": issue.level.value,
        "message": issue.message,
        "fix": issue.fix,
        "source": {"path": where.path, "line": where.line} if where else None,
    }


def summary(findings: list[Issue], files: int) -> str:
    """What was printed, counted by level."""
    where = f"in {files} file{'s' if files != 1 else ''}"
    if not findings:
        return f"No findings {where}."
    counts = [(sum(1 for f in findings if f.level is level), level.value) for level in Level]
    parts = ", ".join(f"{n} {name}{'s' if n != 1 and name != 'info' else ''}" for n, name in counts if n)
    return f"{len(findings)} finding{'s' if len(findings) != 1 else ''} {where}: {parts}"
