"""`trustpolicy check [PATH...]`: enforce the NuGet.Config policy over a restored graph."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from trustpolicy._internal.verbosity import Verbosity
from trustpolicy.cli.options import add_trust_options, trust_options
from trustpolicy.errors import UsageError

if TYPE_CHECKING:
    from trustpolicy.check import CheckOptions
    from trustpolicy.context import TrustContext
    from trustpolicy.models import GraphReport

_PROGRESS_MIN = 10  # a progress bar for fewer packages than this is only flicker
_FORMATS = ("table", "json", "sarif")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "check",
        help="check a restored package graph against the trust policy",
        description="Verify every package of a restored graph (project folder, project.assets.json, "
        "packages.lock.json, packages.config, a folder of .nupkg files or a global packages folder) "
        "and apply the NuGet.Config signatureValidationMode and trustedSigners. Packages that only lack "
        "a trusted signer get one suggested trustedSigners entry per signer, checked before it is shown. "
        "Exit 0: policy satisfied; 1: violations; 2: unusable input; 130: interrupted.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="graph inputs (default: the current folder)")
    parser.add_argument("--mode", choices=("accept", "require", "audit"),
                        help="override signatureValidationMode; audit judges as require but exits 0")
    add_trust_options(parser)
    parser.add_argument("--packages-dir", metavar="DIR", action="append", default=[],
                        help="look for packages in this folder as well (repeatable)")
    parser.add_argument("--format", choices=_FORMATS, default="table", help="report format (default: table)")
    parser.add_argument("--output", metavar="FILE", help="write the report to FILE; stdout gets a one-line summary")
    parser.add_argument("--jobs", type=int, metavar="N", help="worker processes (default: every core)")
    parser.add_argument("--no-cache", action="store_true", help="do not read or write the verdict cache")
    parser.add_argument("--cache-dir", metavar="DIR", help="cache folder (default: the per-user cache folder)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # deferred: keeps --help fast
    from trustpolicy._internal.fileutil import write_atomic
    from trustpolicy._internal.report import ReportFormat, render_text, summary_line
    from trustpolicy.check import CheckOptions, config_directory
    from trustpolicy.context import TrustContext

    if args.jobs is not None and args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    paths = args.paths or ["."]
    context = TrustContext.build(trust_options(
        args, mode=args.mode, cache_dir=args.cache_dir,
        directory=None if args.configfile else config_directory(paths[0]),
    ))
    options = CheckOptions(jobs=args.jobs, packages_dirs=tuple(args.packages_dir), use_cache=not args.no_cache)
    report = _run_with_progress(paths, context, options, show=args.verbosity >= Verbosity.NORMAL)
    fmt = ReportFormat(args.format)
    if args.output:
        write_atomic(args.output, render_text(report, fmt, base_dir=Path.cwd()))
        if args.verbosity > Verbosity.QUIET:
            print(summary_line(report))
    elif fmt is ReportFormat.TABLE:
        from rich.console import Console  # rich is loaded only for what it draws

        from trustpolicy._internal.report.table import render_table

        render_table(report, Console(highlight=False), args.verbosity)  # colours only on a terminal
    else:
        sys.stdout.write(render_text(report, fmt, base_dir=Path.cwd()))
    return report.exit_code


def _run_with_progress(paths: list[str], context: TrustContext, options: CheckOptions, *, show: bool) -> GraphReport:
    from trustpolicy.check import check_graph

    if not show or not sys.stderr.isatty():  # rich's own test below, without importing rich for a pipe or a file
        return check_graph(paths, context, options)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    err = Console(stderr=True)
    if not err.is_terminal:
        return check_graph(paths, context, options)

    with Progress(TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err, transient=True) as progress:
        task = progress.add_task("verify", total=None, visible=False)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total, visible=total >= _PROGRESS_MIN)

        return check_graph(paths, context, options, progress=update)
