"""The JSON report: building it, checking it against schemas/report.schema.json, writing it.

The report is one plain dict (JSON types only). Every renderer reads that dict and nothing else, so
the renderers do not depend on the engine's classes. Its exact shape is schemas/report.schema.json.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from trustpolicy import __version__
from trustpolicy.resources import schema_path

SCHEMA_NAME = "report.schema.json"
MODES = ("accept", "require", "audit")

Report = dict[str, Any]


class ReportInvalid(ValueError):
    """A report dict that breaks the schema or whose summary does not add up."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("report does not match report.schema.json: " + "; ".join(problems))
        self.problems = list(problems)


def summarize(packages: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """The report's summary: package counts by verdict and the number of warning-level issues."""
    total = valid = warnings = 0
    for package in packages:
        total += 1
        valid += package["verdict"] == "valid"
        warnings += sum(1 for issue in package["issues"] if issue["level"] == "warning")
    return {"total": total, "valid": valid, "invalid": total - valid, "warnings": warnings}


def exit_code_for(mode: str, summary: Mapping[str, int]) -> int:
    """0 when the policy is satisfied, 1 on violations; audit judges as require but never fails."""
    if mode == "audit":
        return 0
    return 1 if summary["invalid"] else 0


def summary_line(report: Mapping[str, Any]) -> str:
    """One line for stdout: counts and the outcome (also used when --output takes the report)."""
    s = report["summary"]
    noun = "package" if s["total"] == 1 else "packages"
    warn = "warning" if s["warnings"] == 1 else "warnings"
    counts = f"{s['total']} {noun}: {s['valid']} valid, {s['invalid']} invalid, {s['warnings']} {warn}"
    if not s["invalid"]:
        outcome = "policy satisfied"
    elif report["mode"] == "audit":
        outcome = "policy violated (audit mode: not failing)"
    else:
        outcome = "policy violated"
    return f"{counts} - {outcome} (mode {report['mode']}, exit code {report['exitCode']})"


def format_moment(moment: datetime) -> str:
    """An aware datetime as RFC 3339 in UTC with a Z (naive datetimes are refused: ambiguous)."""
    if moment.tzinfo is None:
        raise ValueError("report times must be timezone-aware")
    return moment.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


def build_report(
    *,
    mode: str,
    packages: Sequence[Mapping[str, Any]],
    generated_at: datetime,
    settings: Mapping[str, Any] | None = None,
    trust_store: str = "",
    config_files: Sequence[str] = (),
    graph_problems: Sequence[Mapping[str, Any]] = (),
    version: str = __version__,
) -> Report:
    """Assemble the report dict, computing summary and exitCode from the packages.

    `generated_at` comes from the caller (clock.now() or --at): this module never reads the clock.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    package_list = [dict(package) for package in packages]
    summary = summarize(package_list)
    return {
        "tool": {"name": "trustpolicy", "version": version},
        "mode": mode,
        "settings": dict(settings or {}),
        "trustStore": trust_store,
        "configFiles": [str(path) for path in config_files],
        "generatedAt": format_moment(generated_at),
        "packages": package_list,
        "graphProblems": [dict(problem) for problem in graph_problems],
        "summary": summary,
        "exitCode": exit_code_for(mode, summary),
    }


def load_schema() -> dict[str, Any]:
    with open(schema_path(SCHEMA_NAME), encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


def report_problems(report: Any) -> list[str]:
    """Everything wrong with `report`: schema violations, then summary/exit code that do not add up.

    Needs the `jsonschema` package (the test extra); it is imported only here.
    """
    import jsonschema  # lazy: a test/dev dependency, not needed to render reports

    validator = jsonschema.Draft202012Validator(load_schema())
    problems = [
        f"{'/' + '/'.join(str(part) for part in error.absolute_path)}: {error.message}"
        for error in sorted(validator.iter_errors(report), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if problems:
        return problems
    expected = summarize(report["packages"])
    if report["summary"] != expected:
        problems.append(f"/summary: {report['summary']} does not match the packages ({expected})")
    # exit code 2 (unusable input) may come with a partial report; 0/1 must follow from the verdicts.
    code = exit_code_for(report["mode"], expected)
    if report["exitCode"] != 2 and report["exitCode"] != code:
        problems.append(f"/exitCode: {report['exitCode']} but mode {report['mode']} with these verdicts gives {code}")
    return problems


def validate_report(report: Any) -> None:
    """Raise ReportInvalid listing every problem when `report` does not match the schema."""
    problems = report_problems(report)
    if problems:
        raise ReportInvalid(problems)


def render_json(report: Mapping[str, Any]) -> str:
    """The report as JSON text ending with a newline (non-ASCII kept readable): one top-level field
    per line, and each element of a list field (packages, graph problems) on a line of its own.

    Readable in a diff and fast: json's C encoder writes each line, where `indent=` would switch
    to its pure-Python encoder (0.1 s for 1,000 packages, a third of a warm check).
    """

    pieces = ["{"]
    for key, item in report.items():
        pieces += ["\n  " if len(pieces) == 1 else ",\n  ", json.dumps(key, ensure_ascii=False), ": "]
        if isinstance(item, list) and item:
            for index, element in enumerate(item):
                pieces += ["[\n    " if index == 0 else ",\n    ", json.dumps(element, ensure_ascii=False)]
            pieces.append("\n  ]")
        else:
            pieces.append(json.dumps(item, ensure_ascii=False))
    pieces.append("\n}\n")
    return "".join(pieces)  # one join: a 10,000-package report is ~12 MB, so no intermediate copies
