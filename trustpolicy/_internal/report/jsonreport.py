"""The JSON reports: `check`'s (schemas/report.schema.json) and `verify`'s, from one GraphReport.

`report_problems` / `validate_report` check a JSON document (what a consumer reads) against the
schema, and that its summary and exit code follow from its verdicts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from trustpolicy._internal.clock import format_moment
from trustpolicy._internal.resources import schema_path
from trustpolicy.models import GraphReport, Issue, Summary, exit_code

SCHEMA_NAME = "report.schema.json"


class ReportInvalid(ValueError):
    """A report document that breaks the schema or whose summary does not add up."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("report does not match report.schema.json: " + "; ".join(problems))
        self.problems = list(problems)


def summary_line(report: GraphReport) -> str:
    """One line for stdout: counts and the outcome (also used when --output takes the report)."""
    s = report.summary
    noun = "package" if s.total == 1 else "packages"
    warn = "warning" if s.warnings == 1 else "warnings"
    counts = f"{s.total} {noun}: {s.valid} valid, {s.invalid} invalid, {s.warnings} {warn}"
    if not s.invalid:
        outcome = "policy satisfied"
    elif report.mode == "audit":
        outcome = "policy violated (audit mode: not failing)"
    else:
        outcome = "policy violated"
    return f"{counts} - {outcome} (mode {report.mode}, exit code {report.exit_code})"


def _problem(issue: Issue) -> dict[str, Any]:
    return {"code": issue.code.value, "level": issue.level.value, "message": issue.message,
            "source": issue.where.to_json() if issue.where else None}


def check_document(report: GraphReport) -> dict[str, Any]:
    """`check --format json`: the shape of schemas/report.schema.json."""
    return {
        "tool": {"name": "trustpolicy", "version": report.tool_version},
        "mode": report.mode,
        "settings": dict(report.settings),
        "trustStore": report.trust_store,
        "configFiles": list(report.config_files),
        "generatedAt": format_moment(report.generated_at),
        "packages": [package.to_json() for package in report.packages],
        "graphProblems": [_problem(problem) for problem in report.graph_problems],
        "searchedFolders": [{"path": path, "source": source} for path, source in report.searched_folders],
        "suggestions": [suggestion.to_json() for suggestion in report.suggestions],
        "summary": report.summary.to_json(),
        "exitCode": report.exit_code,
    }


def verify_document(report: GraphReport) -> dict[str, Any]:
    """`verify --format json`: the verify command's own, smaller document."""
    s = report.summary
    return {
        "tool": {"name": "trustpolicy", "version": report.tool_version},
        "settings": dict(report.settings),
        "trustStore": report.trust_store,
        "packages": [package.verdict.to_json() for package in report.packages],
        "summary": {"total": s.total, "valid": s.valid, "invalid": s.invalid},
    }


def render_verify_json(report: GraphReport) -> str:
    """`verify --format json` as text: indented, as `dotnet nuget verify` users read it (a few packages)."""
    return json.dumps(verify_document(report), indent=2, ensure_ascii=False) + "\n"


def render_json(document: Mapping[str, Any]) -> str:
    """A JSON document as text ending with a newline (non-ASCII kept readable): one top-level field
    per line, and each element of a list field (packages, graph problems) on a line of its own.

    Readable in a diff and fast: json's C encoder writes each line, where `indent=` would switch
    to its pure-Python encoder (0.1 s for 1,000 packages, a third of a warm check).
    """
    pieces = ["{"]
    for key, item in document.items():
        pieces += ["\n  " if len(pieces) == 1 else ",\n  ", json.dumps(key, ensure_ascii=False), ": "]
        if isinstance(item, list) and item:
            for index, element in enumerate(item):
                pieces += ["[\n    " if index == 0 else ",\n    ", json.dumps(element, ensure_ascii=False)]
            pieces.append("\n  ]")
        else:
            pieces.append(json.dumps(item, ensure_ascii=False))
    pieces.append("\n}\n")
    return "".join(pieces)  # one join: a 10,000-package report is ~12 MB, so no intermediate copies


def load_schema() -> dict[str, Any]:
    with open(schema_path(SCHEMA_NAME), encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


def _summary_of(packages: Sequence[Mapping[str, Any]]) -> Summary:
    valid = sum(1 for p in packages if p["verdict"] == "valid")
    warnings = sum(1 for p in packages for issue in p["issues"] if issue["level"] == "warning")
    return Summary(len(packages), valid, len(packages) - valid, warnings)


def report_problems(document: Any) -> list[str]:
    """Everything wrong with a `check` JSON document: schema violations, then a summary or exit code
    that does not follow from its verdicts. Needs the `jsonschema` package (the test extra)."""
    import jsonschema  # lazy: a test/dev dependency, not needed to render reports

    validator = jsonschema.Draft202012Validator(load_schema())
    problems = [
        f"{'/' + '/'.join(str(part) for part in error.absolute_path)}: {error.message}"
        for error in sorted(validator.iter_errors(document), key=lambda e: list(map(str, e.absolute_path)))
    ]
    if problems:
        return problems
    expected = _summary_of(document["packages"])
    if document["summary"] != expected.to_json():
        problems.append(f"/summary: {document['summary']} does not match the packages ({expected.to_json()})")
    # exit code 2 (unusable input) may come with a partial report; 0/1 must follow from the verdicts.
    code = exit_code(document["mode"], expected)
    if document["exitCode"] != 2 and document["exitCode"] != code:
        problems.append(f"/exitCode: {document['exitCode']} but mode {document['mode']} with these verdicts gives {code}")
    return problems


def validate_report(document: Any) -> None:
    """Raise ReportInvalid listing every problem when `document` does not match the schema."""
    problems = report_problems(document)
    if problems:
        raise ReportInvalid(problems)
