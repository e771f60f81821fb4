"""Report layer of `trustpolicy check`: one report dict, three renderers (table, JSON, SARIF).

The report dict's shape is schemas/report.schema.json. Renderers take that dict and a Console or
return text; they read no clock and no files, so one report renders the same way everywhere.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Mapping
from io import StringIO
from importlib import import_module
from typing import TYPE_CHECKING, Any, assert_never

from trustpolicy.report.jsonreport import (
    Report,
    ReportInvalid,
    build_report,
    exit_code_for,
    format_moment,
    load_schema,
    render_json,
    report_problems,
    summarize,
    summary_line,
    validate_report,
)
from trustpolicy.report.sarif import render_sarif, render_sarif_text

if TYPE_CHECKING:
    from trustpolicy.report.table import build_table, package_cause, render_table

# The table needs rich (~20 ms to import): loaded on first use, not by a run that writes JSON or SARIF.
_TABLE = ("build_table", "package_cause", "render_table")


def __getattr__(name: str) -> Any:
    if name in _TABLE:
        return getattr(import_module("trustpolicy.report.table"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "Report",
    "ReportFormat",
    "ReportInvalid",
    "build_report",
    "build_table",
    "exit_code_for",
    "format_moment",
    "load_schema",
    "package_cause",
    "render_json",
    "render_sarif",
    "render_sarif_text",
    "render_table",
    "render_text",
    "report_problems",
    "summarize",
    "summary_line",
    "validate_report",
]


class ReportFormat(str, enum.Enum):
    """The values of --format."""

    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"


def render_text(
    report: Mapping[str, Any],
    fmt: ReportFormat | str,
    *,
    base_dir: str | os.PathLike[str] | None = None,
    width: int = 120,
) -> str:
    """The report as text in `fmt` (for --output or a pipe). A table rendered here has no colours.

    `base_dir` is SARIF's SRCROOT (default: the current directory); `width` only affects the table.
    """
    fmt = ReportFormat(fmt)
    if fmt is ReportFormat.JSON:
        return render_json(report)
    if fmt is ReportFormat.SARIF:
        return render_sarif_text(report, base_dir=base_dir)
    if fmt is ReportFormat.TABLE:
        from rich.console import Console

        from trustpolicy.report.table import render_table

        buffer = StringIO()
        render_table(report, Console(file=buffer, width=width, force_terminal=False, no_color=True, highlight=False))
        return buffer.getvalue()
    assert_never(fmt)
