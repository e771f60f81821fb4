"""Reports: renderers over one GraphReport (table, JSON, SARIF for `check`; text and JSON for `verify`).

Renderers read no clock and no files, so one report renders the same way everywhere.
"""

from __future__ import annotations

import enum
import os
from importlib import import_module
from io import StringIO
from typing import TYPE_CHECKING, Any, assert_never

from trustpolicy._internal.report.jsonreport import (
    ReportInvalid,
    check_document,
    load_schema,
    render_json,
    render_verify_json,
    report_problems,
    summary_line,
    validate_report,
    verify_document,
)
from trustpolicy.models import GraphReport

if TYPE_CHECKING:
    from trustpolicy._internal.report.sarif import render_sarif, render_sarif_text
    from trustpolicy._internal.report.table import build_table, package_cause, render_table
    from trustpolicy._internal.report.text import render_verify_text

# Loaded on first use: the table needs rich (~20 ms to import), SARIF its own module; a JSON run needs neither.
_LAZY = {
    "render_sarif": "trustpolicy._internal.report.sarif",
    "render_sarif_text": "trustpolicy._internal.report.sarif",
    "build_table": "trustpolicy._internal.report.table",
    "package_cause": "trustpolicy._internal.report.table",
    "render_table": "trustpolicy._internal.report.table",
    "render_verify_text": "trustpolicy._internal.report.text",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ReportFormat",
    "ReportInvalid",
    "build_table",
    "check_document",
    "load_schema",
    "package_cause",
    "render_json",
    "render_sarif",
    "render_sarif_text",
    "render_table",
    "render_text",
    "render_verify_json",
    "render_verify_text",
    "report_problems",
    "summary_line",
    "validate_report",
    "verify_document",
]


class ReportFormat(enum.StrEnum):
    """The values of `check --format`."""

    TABLE = "table"
    JSON = "json"
    SARIF = "sarif"


def render_text(
    report: GraphReport,
    fmt: ReportFormat | str,
    *,
    base_dir: str | os.PathLike[str] | None = None,
    width: int = 120,
) -> str:
    """A check report as text in `fmt` (for --output or a pipe). A table rendered here has no colours.

    `base_dir` is SARIF's SRCROOT (default: the current directory); `width` only affects the table.
    """
    fmt = ReportFormat(fmt)
    if fmt is ReportFormat.JSON:
        return render_json(check_document(report))
    if fmt is ReportFormat.SARIF:
        from trustpolicy._internal.report.sarif import render_sarif_text

        return render_sarif_text(report, base_dir=base_dir)
    if fmt is ReportFormat.TABLE:
        from rich.console import Console

        from trustpolicy._internal.report.table import render_table

        buffer = StringIO()
        render_table(report, Console(file=buffer, width=width, force_terminal=False, no_color=True, highlight=False))
        return buffer.getvalue()
    assert_never(fmt)
