"""The human report: a rich table, a summary line, then cause and fix for each failing package.

Pure rendering: takes the report dict and a rich Console; the Console decides about colours
(on a terminal only). All report text goes in as rich Text, never as markup, because subjects,
messages and XML snippets may contain '[' or '<'.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from trustpolicy.explain import common_name
from trustpolicy.models import GraphReport, Level, PackageReport
from trustpolicy.report.jsonreport import summary_line

_VERDICT_STYLE = {"valid": "bold green", "invalid": "bold red"}
_LEVEL_STYLE = {Level.ERROR: "red", Level.WARNING: "yellow", Level.INFO: "dim"}


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


def build_table(report: GraphReport) -> Table:
    """The per-package table (one row per package, in report order)."""
    table = Table(show_header=True, header_style="bold", show_lines=False)
    table.add_column("Package", overflow="fold")
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


def render_table(report: GraphReport, console: Console) -> None:
    """Print the whole human report to `console`: header, table, summary, causes and fixes."""
    header = Text(f"trustpolicy {report.tool_version}  mode: {report.mode}", style="bold")
    if report.trust_store:
        header.append(f"  trust store: {report.trust_store}", style="")
    console.print(header, soft_wrap=True)
    if report.config_files:
        console.print(Text("config: " + ", ".join(report.config_files), style="dim"), soft_wrap=True)
    for problem in report.graph_problems:
        style = "red" if problem.level is Level.ERROR else "yellow"
        console.print(Text(f"graph {problem.level} {problem.code}: {problem.message}", style=style), soft_wrap=True)
    if report.packages:
        console.print(build_table(report))
    else:
        console.print(Text("no packages in the graph", style="yellow"))
    outcome_style = "green" if not report.summary.invalid else ("yellow" if report.mode == "audit" else "red")
    console.print(Text(summary_line(report), style=f"bold {outcome_style}"), soft_wrap=True)
    for package in report.failing:
        console.print()
        line = Text("x ", style="bold red")
        line.append(f"{package.id} {package.version}", style="bold")
        line.append(f": {package_cause(package)}")
        console.print(line, soft_wrap=True)  # soft_wrap: never break a line the user may copy
        if package.fix:
            lines = package.fix.splitlines() or [""]
            console.print(Text("  fix: ", style="cyan") + Text(lines[0]), soft_wrap=True)
            for rest in lines[1:]:
                console.print(Text("       " + rest), soft_wrap=True)
