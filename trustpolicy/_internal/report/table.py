"""The human report: a rich table, a summary line, the cause and fix of each failing package, the
packages that were not found (once), and the suggested trustedSigners entries (once per signer).

Pure rendering: takes the report and a rich Console; the Console decides about colours (on a
terminal only). All report text goes in as rich Text, never as markup, because subjects, messages
and XML snippets may contain '[' or '<'. Off a terminal (a CI log, a file) the table takes the width
it needs, so no package id is ever broken in the middle; on a terminal it fits the window.
"""

from __future__ import annotations

from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from trustpolicy._internal.explain import common_name
from trustpolicy._internal.report.jsonreport import summary_line
from trustpolicy._internal.verbosity import Verbosity
from trustpolicy.codes import Code
from trustpolicy.models import GraphReport, Issue, Level, PackageReport, Suggestion

_VERDICT_STYLE = {"valid": "bold green", "invalid": "bold red"}
_LEVEL_STYLE = {Level.ERROR: "red", Level.WARNING: "yellow", Level.INFO: "dim"}
_UNLIMITED = 100_000  # a width no table reaches: measure its natural width
_LISTED = 5  # packages named in a suggestion's title below detailed verbosity


def _signer_cell(package: PackageReport) -> Text:
    verdict = package.verdict
    if verdict.signed is None:
        return Text("?", style="dim")
    if not verdict.signatures:
        return Text("unsigned", style="dim")
    lines = []
    for signature in verdict.signatures:
        # A full distinguished name is too wide for a table cell; the CN is what people recognise.
        who = (common_name(signature.subject) or signature.subject) if signature.subject else "(no certificate)"
        lines.append(f"{signature.kind}: {who}")
    return Text("\n".join(lines))


def _trusted_cell(package: PackageReport) -> Text:
    signer = package.verdict.trusted_signer
    if signer is None:
        exception = package.verdict.exception
        if exception is not None:  # allowed without a trusted signer: say by what
            return Text(f"exception, expires {exception.expires}", style="yellow")
        return Text("-", style="dim")
    how = ", identity" if signer.rule == "identity" else ""
    return Text(f"{signer.name} ({signer.kind}{how})", style="green")


def _issues_cell(package: PackageReport) -> Text:
    cell = Text()
    seen: set[str] = set()
    for issue in package.verdict.issues:
        if issue.code in seen:
            continue
        seen.add(issue.code)
        if cell:
            cell.append(" ")
        cell.append(issue.code.value, style=_LEVEL_STYLE[issue.level])
    return cell


def package_cause(package: PackageReport) -> str:
    """The one-line cause; falls back to the first error's message when the engine gave none."""
    if package.cause:
        return package.cause
    for issue in package.verdict.issues:
        if issue.level is Level.ERROR:
            return f"{issue.code}: {issue.message}"
    return "not trusted"


def build_table(report: GraphReport, *, id_width: int = 0) -> Table:
    """The per-package table (one row per package, in report order). `id_width`: the least width of
    the Package column, so that a narrow terminal folds other columns before the ids."""
    table = Table(show_header=True, header_style="bold", show_lines=False)
    table.add_column("Package", overflow="fold", min_width=id_width or None)
    table.add_column("Version", overflow="fold")
    table.add_column("Verdict")
    table.add_column("Signer", overflow="fold")
    table.add_column("Trusted signer", overflow="fold")
    table.add_column("Issues", overflow="fold")
    for package in report.packages:
        verdict = package.verdict.verdict
        table.add_row(
            Text(package.id),
            Text(package.version),
            Text(verdict, style=_VERDICT_STYLE[verdict]),
            _signer_cell(package),
            _trusted_cell(package),
            _issues_cell(package),
        )
    return table


def _print_table(report: GraphReport, console: Console) -> None:
    if console.is_terminal:
        longest = max((len(p.id) for p in report.packages), default=0)
        console.print(build_table(report, id_width=min(longest, console.width // 3)))
        return
    table = build_table(report)
    needed = Measurement.get(console, console.options.update(width=_UNLIMITED), table).maximum
    previous = console.width
    console.width = max(needed, previous)  # the table's own width: a CI log must not break ids
    try:
        console.print(table, crop=False)
    finally:
        console.width = previous


def _is_missing(package: PackageReport) -> bool:
    """Not found in any packages folder: reported once for all such packages."""
    return package.verdict.path is None and any(i.code is Code.TP0001 for i in package.verdict.issues)


def render_table(report: GraphReport, console: Console, verbosity: Verbosity = Verbosity.NORMAL) -> None:
    """Print the human report to `console`, as much of it as `verbosity` asks for (see Verbosity)."""
    failing = [p for p in report.failing if not _is_missing(p)]
    missing = [p for p in report.failing if _is_missing(p)]
    if verbosity is Verbosity.QUIET:
        for problem in report.graph_problems:
            if problem.level is Level.ERROR:
                console.print(Text(f"graph error {problem.code}: {problem.message}", style="red"), soft_wrap=True)
        for package in failing:
            console.print(_failure_line(package), soft_wrap=True)
        if missing:
            console.print(_missing_line(missing), soft_wrap=True)
        return
    if verbosity >= Verbosity.NORMAL:
        _header(report, console, verbosity)
        if report.packages:
            _print_table(report, console)
        else:
            console.print(Text("no packages in the graph", style="yellow"))
    outcome_style = "green" if not report.summary.invalid else ("yellow" if report.mode == "audit" else "red")
    console.print(Text(summary_line(report), style=f"bold {outcome_style}"), soft_wrap=True)
    numbered = {pkg: number for number, s in enumerate(report.suggestions, 1) for pkg in s.packages}
    for package in failing:
        console.print()
        console.print(_failure_line(package), soft_wrap=True)  # soft_wrap: never break a line the user may copy
        number = numbered.get(f"{package.id} {package.version}")
        if number is not None and package.fix == report.suggestions[number - 1].fix:
            console.print(Text("  fix: ", style="cyan") + Text(f"suggestion {number} below"), soft_wrap=True)
        elif package.fix:
            _fix(console, "  fix: ", package.fix)
        if verbosity >= Verbosity.DETAILED:
            _issues(console, package.verdict.issues, verbosity)
    if verbosity >= Verbosity.DIAGNOSTIC:
        for package in report.packages:
            if package.passed and package.verdict.issues:
                console.print()
                console.print(Text(f"  {package.id} {package.version} (valid):", style="bold"), soft_wrap=True)
                _issues(console, package.verdict.issues, verbosity)
    if missing:
        _missing(report, missing, console)
    _suggestions(report, console, verbosity)


def _header(report: GraphReport, console: Console, verbosity: Verbosity) -> None:
    header = Text(f"trustpolicy {report.tool_version}  mode: {report.mode}", style="bold")
    if report.trust_store:
        header.append(f"  trust store: {report.trust_store}", style="")
    console.print(header, soft_wrap=True)
    if report.config_files:
        console.print(Text("config: " + ", ".join(report.config_files), style="dim"), soft_wrap=True)
    if verbosity >= Verbosity.DIAGNOSTIC:
        for key, value in report.settings.items():
            console.print(Text(f"setting {key}: {value}", style="dim"), soft_wrap=True)
    for problem in report.graph_problems:
        style = "red" if problem.level is Level.ERROR else "yellow"
        console.print(Text(f"graph {problem.level} {problem.code}: {problem.message}", style=style), soft_wrap=True)


def _failure_line(package: PackageReport) -> Text:
    line = Text("x ", style="bold red")
    line.append(f"{package.id} {package.version}", style="bold")
    line.append(f": {package_cause(package)}")
    return line


def _fix(console: Console, label: str, text: str) -> None:
    lines = text.splitlines() or [""]
    console.print(Text(label, style="cyan") + Text(lines[0]), soft_wrap=True)
    for rest in lines[1:]:
        console.print(Text(" " * len(label) + rest), soft_wrap=True)


def _issues(console: Console, issues: tuple[Issue, ...], verbosity: Verbosity) -> None:
    for issue in issues:
        where = f" ({issue.signature})" if issue.signature else ""
        console.print(Text(f"    {issue.level} {issue.code}{where}: {issue.message}", style=_LEVEL_STYLE[issue.level]),
                      soft_wrap=True)
        if issue.detail and verbosity >= Verbosity.DIAGNOSTIC:
            console.print(Text(f"      {issue.detail}", style="dim"), soft_wrap=True)


def _missing_line(missing: list[PackageReport]) -> Text:
    line = Text("x ", style="bold red")
    noun = "package was" if len(missing) == 1 else "packages were"
    line.append(f"{len(missing)} {noun} not found: ", style="bold")
    line.append(", ".join(f"{p.id} {p.version}" for p in missing))  # all of them: each is a failure
    return line


def _missing(report: GraphReport, missing: list[PackageReport], console: Console) -> None:
    console.print()
    console.print(_missing_line(missing), soft_wrap=True)
    if report.searched_folders:
        console.print(Text("  searched:", style="dim"), soft_wrap=True)
        for folder, source in report.searched_folders:
            console.print(Text(f"    {folder} ({source})"), soft_wrap=True)
    _fix(console, "  fix: ", "run the restore again, or add the folder that holds them with --packages-dir DIR")


def _suggestions(report: GraphReport, console: Console, verbosity: Verbosity) -> None:
    if not report.suggestions and not report.refusals:
        return
    if report.suggestions:
        console.print()
        allowed = sum(len(s.packages) for s in report.suggestions)
        console.print(Text(f"To allow {allowed} failing package(s), add {len(report.suggestions)} trusted signer(s) "
                           "(each checked: with all of them in place, these packages pass):", style="bold"),
                      soft_wrap=True)
    for number, suggestion in enumerate(report.suggestions, 1):
        _suggestion(console, number, suggestion, verbosity)
    for refusal in report.refusals:
        console.print()
        console.print(Text(f"no suggestion for {refusal.kind} {refusal.name!r} ({_some(refusal.packages, verbosity)}): "
                           f"{refusal.reason}", style="yellow"), soft_wrap=True)


def _some(names: tuple[str, ...] | list[str], verbosity: Verbosity) -> str:
    """Names, all of them from detailed verbosity on, else the first few and how many more."""
    if verbosity >= Verbosity.DETAILED or len(names) <= _LISTED:
        return ", ".join(names)
    return f"{len(names)} packages: {', '.join(names[:_LISTED])} and {len(names) - _LISTED} more (-v detailed lists all)"


def _suggestion(console: Console, number: int, suggestion: Suggestion, verbosity: Verbosity) -> None:
    console.print()
    title = Text(f"{number}. {suggestion.kind} {suggestion.name!r}", style="bold")
    if suggestion.service_index:
        title.append(f" {suggestion.service_index}")
    if suggestion.owners:
        title.append(f" owners {';'.join(suggestion.owners)}")
    title.append(f" - allows {_some(suggestion.packages, verbosity)}")
    console.print(title, soft_wrap=True)
    if suggestion.note:
        console.print(Text(f"   {suggestion.note}", style="bold yellow"), soft_wrap=True)
    if suggestion.commands:
        for command in suggestion.commands:
            console.print(Text(f"   {command}", style="cyan"), soft_wrap=True)
    else:
        where = f" (edit the entry at {suggestion.replaces})" if suggestion.replaces else ""
        console.print(Text(f"   in NuGet.Config{where}:"), soft_wrap=True)
        for line in suggestion.xml.splitlines():
            console.print(Text(f"     {line}", style="cyan"), soft_wrap=True)
    if suggestion.without_owners:
        console.print(Text("   or, to trust every package this repository signs (no owner check):"), soft_wrap=True)
        for command in suggestion.without_owners:
            console.print(Text(f"   {command}", style="cyan"), soft_wrap=True)
