"""SARIF 2.1.0 rendering of a check report, for code-scanning upload (e.g. GitHub).

Rules are the NU/TP codes that occur. Each code of each non-valid package is one result, at the
highest level it has in that package, pointing at the package's entry in the assets or lock file
(line when the graph reader knew it). A result carries the cause and fix of its own code: the
package's own when they speak about that code, else the code's help text. A valid package that only
a `<trustPolicy>` exception allowed gets its exception findings too (TP2004 note, TP2003 warning
near the expiry), so every exception in use shows in code scanning.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from trustpolicy import codes
from trustpolicy._internal.explain import addressed_codes
from trustpolicy.codes import Code
from trustpolicy.models import GraphReport, Issue, Level, PackageReport

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA_URI = "https://json.schemastore.org/sarif-2.1.0.json"
# Where a reader learns what the tool checks: NuGet's signed-package reference, until the project has a home page.
INFORMATION_URI = "https://learn.microsoft.com/nuget/reference/signed-packages-reference"
BASE_ID = "SRCROOT"

_LEVELS = {"error": "error", "warning": "warning", "info": "note"}
_EXCEPTION_CODES = frozenset({Code.TP2003, Code.TP2004})


def rule_name(code: str) -> str:
    """A PascalCase rule name from the code's title, as SARIF recommends (no spaces)."""
    title = codes.title(code).split("(")[0]
    # "graph's" -> "graphs", "SHA-1" -> "SHA1"; then "SHA1" -> "Sha1" so the name stays Pascal-case.
    words = re.findall(r"[A-Za-z0-9]+", re.sub(r"['\u2019]|-(?=[0-9])", "", title))
    return "".join(word.capitalize() for word in words) or code


def _rule(code: str) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": code,
        "name": rule_name(code),
        "shortDescription": {"text": codes.title(code)},
    }
    uri = codes.help_uri(code)
    if uri:
        rule["helpUri"] = uri
    return rule


def artifact_location(path: str, base_dir: str) -> dict[str, Any]:
    """A relative uri under SRCROOT when `path` is inside `base_dir`, else an absolute file: URI.

    A relative `path` in the report is relative to the current directory, where the check ran.
    """
    absolute = os.path.abspath(path)
    try:
        relative = os.path.relpath(absolute, base_dir)
    except ValueError:  # another drive on Windows
        relative = os.pardir
    if relative != os.pardir and not relative.startswith(os.pardir + os.sep):
        posix = PurePosixPath(*Path(relative).parts).as_posix()
        return {"uri": quote(posix), "uriBaseId": BASE_ID}
    return {"uri": Path(absolute).as_uri()}


_RANK = {Level.ERROR: 0, Level.WARNING: 1, Level.INFO: 2}


def _per_code(package: PackageReport) -> list[Issue]:
    """One issue per code, in first-seen order: the first one at the code's highest level."""
    chosen: dict[str, Issue] = {}
    for issue in package.verdict.issues:
        held = chosen.get(issue.code)
        if held is None or _RANK[issue.level] < _RANK[held.level]:
            chosen[issue.code] = issue
    return list(chosen.values())


def _cause_and_fix(package: PackageReport, issue: Issue) -> tuple[str | None, str, bool]:
    """(cause, fix, whether the fix is the package's own): the package's cause and fix when they speak
    about this code, else (and for a missing fix) the code's help text."""
    help_text = codes.CODES[issue.code].help
    if issue.code in addressed_codes(package.verdict):
        return package.cause, package.fix or help_text, bool(package.fix)
    return None, help_text, False


def _message(package: PackageReport, issue: Issue) -> str:
    text = f"{package.id} {package.version}: {issue.code} {issue.message.rstrip('.')}."
    cause, fix, own = _cause_and_fix(package, issue)
    if cause and cause.rstrip(".") != issue.message.rstrip("."):
        text += f" Cause: {cause.rstrip('.')}."
    return text + (f" To allow it: {fix}" if own else f" {fix}")


def _result(package: PackageReport, issue: Issue, rule_index: int, base_dir: str) -> dict[str, Any]:
    identity = f"{package.id}/{package.version}"
    source = package.source
    path = package.verdict.path
    # In a folder source the graph entry is the .nupkg itself; a folder is no artifact to point at.
    on_nupkg = source.kind in ("folder", "global-folder") and bool(path)
    where = path if on_nupkg and path else source.path
    # Viewers (and the Multitool's SARIF2017) want a region; line 1 stands for "in this file" when unknown.
    physical: dict[str, Any] = {
        "artifactLocation": artifact_location(where, base_dir),
        "region": {"startLine": source.line or 1},
    }
    result: dict[str, Any] = {
        "ruleId": issue.code.value,
        "ruleIndex": rule_index,
        "level": _LEVELS[issue.level],
        "message": {"text": _message(package, issue)},
        "locations": [
            {
                "physicalLocation": physical,
                "logicalLocations": [{"name": identity, "fullyQualifiedName": identity, "kind": "module"}],
            }
        ],
        # Stable across runs so code scanning tracks one alert per package, code and signature.
        "partialFingerprints": {
            "trustpolicyPackageIssue/v1": "/".join(
                [package.id.lower(), package.version.lower(), issue.code.value, issue.signature or "package"]
            )
        },
        "properties": {
            "packageId": package.id,
            "packageVersion": package.version,
            "sourceKind": source.kind,
        },
    }
    if source.pointer is not None:
        result["properties"]["jsonPointer"] = source.pointer
    cause, fix, _ = _cause_and_fix(package, issue)
    if cause:
        result["properties"]["cause"] = cause
    result["properties"]["fix"] = fix
    if path and not on_nupkg:
        result["relatedLocations"] = [
            {
                "id": 1,
                "physicalLocation": {"artifactLocation": artifact_location(path, base_dir)},
                "message": {"text": "package file"},
            }
        ]
    return result


def render_sarif(report: GraphReport, *, base_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The SARIF log (a dict). Paths are made relative to `base_dir` (default: the current directory)."""
    base = os.path.abspath(base_dir if base_dir is not None else os.getcwd())
    reported = [(package, issue) for package in report.packages for issue in _per_code(package)
                if not package.passed or issue.code in _EXCEPTION_CODES]
    used = sorted({issue.code.value for _, issue in reported})
    index = {code: position for position, code in enumerate(used)}
    results = [_result(package, issue, index[issue.code], base) for package, issue in reported]
    base_uri = Path(base).as_uri().rstrip("/") + "/"  # a base URI must end with a slash
    run: dict[str, Any] = {
        "tool": {
            "driver": {
                "name": "trustpolicy",
                "version": report.tool_version,
                "informationUri": INFORMATION_URI,
                "rules": [_rule(code) for code in used],
            }
        },
        "originalUriBaseIds": {BASE_ID: {"uri": base_uri}},
        "invocations": [{"executionSuccessful": True, "exitCode": report.exit_code}],
        "results": results,
        "properties": {
            "mode": report.mode,
            "summary": report.summary.to_json(),
            "suggestions": [suggestion.to_json() for suggestion in report.suggestions],
        },
    }
    return {"$schema": SARIF_SCHEMA_URI, "version": SARIF_VERSION, "runs": [run]}


def render_sarif_text(report: GraphReport, *, base_dir: str | os.PathLike[str] | None = None) -> str:
    """The SARIF log as indented JSON text ending with a newline."""
    return json.dumps(render_sarif(report, base_dir=base_dir), indent=2, ensure_ascii=False) + "\n"
