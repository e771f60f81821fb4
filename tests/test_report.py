"""The report layer of `trustpolicy check`: JSON schema, SARIF 2.1.0, table, atomic --output."""

from __future__ import annotations

import copy
import json
import os
import shutil
import stat
import subprocess
from datetime import UTC, datetime
from io import StringIO
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from rich.console import Console

from trustpolicy import __version__, codes
from trustpolicy._internal.clock import format_moment, parse_moment
from trustpolicy._internal.fileutil import write_atomic
from trustpolicy._internal.report import (
    ReportFormat,
    ReportInvalid,
    check_document,
    load_schema,
    render_sarif,
    render_table,
    render_text,
    report_problems,
    summary_line,
    validate_report,
)
from trustpolicy.errors import TrustPolicyError
from trustpolicy.models import (
    GraphReport,
    Issue,
    Location,
    MatchedSigner,
    PackageReport,
    PackageVerdict,
    SignatureReport,
    Status,
    StepResult,
)

DATA = Path(__file__).parent / "data"
MOMENT = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
FP_A = "3F9001EA83C560D712C24CF213C3D312CB3BFF51EE89435D3D3A35BFAB5A1B53"
FP_B = "0E5F38F57DC1BCC806D8494F4F90FBCEDD988B46760709CBEEC6F4219AA6157D"
EVIL_FP = "AB" * 32
FIX_AUTHOR = f"trustpolicy trust author 'Evil Corp' --fingerprint {EVIL_FP}"
FIX_XML = f'<author name="Evil Corp">\n  <certificate fingerprint="{EVIL_FP}" hashAlgorithm="SHA256" allowUntrustedRoot="false" />\n</author>'


def sig(kind: str = "author", placement: str = "primary", subject: str | None = "CN=Contoso Signing, O=Contoso",
        fp: str | None = FP_A, status: str = "valid", service_index: str | None = None,
        owners: tuple[str, ...] = ()) -> SignatureReport:
    return SignatureReport(kind, placement, subject, {"SHA256": fp} if fp else {}, parse_moment("2024-05-01T10:00:00Z"),
                           service_index, owners, Status[status.upper()])


def issue(code: str, level: str = "error", message: str | None = None, signature: str | None = "primary") -> Issue:
    return Issue(code, level, message or codes.title(code), signature)


def package(pid: str, version: str, *, verdict: str = "valid", signed: bool | None = True,
            signatures: list[SignatureReport] | None = None, issues: list[Issue] | None = None,
            path: str | None = "default", source: Location | None = None, trusted: MatchedSigner | None = None,
            cause: str | None = None, fix: str | None = None) -> PackageReport:
    """A package whose one step has the given verdict (the verdict is derived from steps)."""
    step = StepResult("trust", Status.VALID if verdict == "valid" else Status.DISALLOWED, tuple(issues or ()))
    file = f"packages/{pid.lower()}/{version}/{pid.lower()}.{version}.nupkg" if path == "default" else path
    result = PackageVerdict(file, pid, version, signed, (step,), tuple([sig()] if signatures is None else signatures),
                            trusted, None if trusted else "no trusted signer matched")
    assert result.verdict == verdict
    where = source or Location("obj/project.assets.json", 10, f"/libraries/{pid}~1{version}", "assets")
    return PackageReport(pid, version, result, where, cause, fix)


def sample_packages() -> list[PackageReport]:
    return [
        # author-signed and trusted
        package("Contoso.Lib", "1.2.3", trusted=MatchedSigner("contoso", "author", FP_A),
                source=Location("src/app/obj/project.assets.json", 120, "/libraries/Contoso.Lib~11.2.3", "assets")),
        # repository-countersigned, trusted by owners, but with a warning (valid packages give no SARIF result)
        package("Newtonsoft.Json", "13.0.3",
                signatures=[sig(subject="CN=James Newton-King"),
                            sig("repository", "countersignature", "CN=NuGet.org Repository by Microsoft", FP_B,
                                service_index="https://api.nuget.org/v3/index.json", owners=("jamesnk",))],
                issues=[issue("NU3018", "warning", "revocation status of the author chain is unknown (offline)")],
                trusted=MatchedSigner("nuget.org", "repository", FP_B),
                source=Location("src/app/obj/project.assets.json", 250, "/libraries/Newtonsoft.Json~113.0.3", "assets")),
        # untrusted signer with several issues; subject holds rich markup that must print literally
        package("Evil.Pkg", "6.6.6", verdict="invalid",
                signatures=[sig(subject="CN=[bold]Evil Corp[/bold], O=Evil", fp=EVIL_FP, status="disallowed")],
                issues=[issue("NU3034", message="the author signer matches no trustedSigners entry"),
                        issue("NU3018", message="chain ends in a root that is not trusted"),
                        issue("NU3027", "info", "signature has no timestamp")],
                cause="author 'Evil Corp' (SHA256 ABAB...) is not in trustedSigners", fix=FIX_AUTHOR,
                source=Location("src/app/obj/project.assets.json", 300, "/libraries/Evil.Pkg~16.6.6", "assets")),
        # unsigned in require mode; lock file source without a line; XML fix
        package("Unsigned.Thing", "0.1.0-beta", verdict="invalid", signed=False, signatures=[],
                issues=[issue("NU3004", signature=None)],
                cause="package is unsigned and the mode is require", fix=FIX_XML,
                source=Location("src/lib dir/packages.lock.json", None, "/dependencies/net8.0/Unsigned.Thing", "lock")),
        # not found in any packages folder
        package("Missing.Pkg", "2.0.0", verdict="invalid", signed=None, signatures=[], path=None,
                issues=[issue("TP0001", message="no .nupkg for Missing.Pkg 2.0.0 in packages folders", signature=None)],
                cause="Missing.Pkg 2.0.0 was not found in any packages folder",
                source=Location("/elsewhere/repo/packages.config", 7, None, "packages.config")),
        # tampered in the cache: content hash and signed hash both wrong; no fix can allow it
        package("Tampered.Pkg", "1.0.0", verdict="invalid",
                issues=[issue("NU3008"), issue("TP0002", message="sha512 differs from the assets file", signature=None)],
                cause="package content was changed after signing",
                source=Location("packages", None, None, "folder")),
    ]


def make_report(mode: str = "require", packages: list[PackageReport] | None = None, **extra: Any) -> GraphReport:
    return GraphReport(mode=mode, packages=tuple(sample_packages() if packages is None else packages),
                       generated_at=MOMENT, settings=extra.pop("settings", {}), trust_store=extra.pop("trust_store", ""),
                       tool_version=__version__, **extra)


@pytest.fixture
def report() -> GraphReport:
    return make_report(settings={"revocation": "offline", "at": None}, trust_store="bundled (codesignctl.pem)",
                       config_files=("/home/u/.nuget/NuGet/NuGet.Config", "src/NuGet.Config"))


@pytest.fixture
def document(report: GraphReport) -> dict[str, Any]:
    return check_document(report)


# ---- JSON ------------------------------------------------------------------------------------------

def test_report_summary_and_exit_code(report: GraphReport, document: dict[str, Any]) -> None:
    assert document["tool"] == {"name": "trustpolicy", "version": __version__}
    assert document["summary"] == {"total": 6, "valid": 2, "invalid": 4, "warnings": 1}
    assert report.exit_code == document["exitCode"] == 1
    assert document["generatedAt"] == "2025-03-01T12:00:00Z"
    audit = make_report("audit")
    assert audit.exit_code == 0 and audit.summary.invalid == 4
    assert make_report(packages=sample_packages()[:2]).exit_code == 0


def test_report_refuses_bad_mode_and_naive_time() -> None:
    with pytest.raises(ValueError, match="mode"):
        make_report("strict")
    with pytest.raises(ValueError, match="timezone"):
        GraphReport(mode="require", packages=(), generated_at=datetime(2025, 1, 1), settings={}, trust_store="")
    with pytest.raises(ValueError, match="timezone"):
        format_moment(datetime(2025, 1, 1))


def test_json_report_validates_and_round_trips(report: GraphReport, document: dict[str, Any]) -> None:
    validate_report(document)
    text = render_text(report, "json")
    assert text.endswith("\n")
    assert json.loads(text) == document
    validate_report(json.loads(text))
    # one line per top-level field and per package, for diffs and grep
    lines = text.splitlines()
    for package in document["packages"]:
        assert "    " + json.dumps(package, ensure_ascii=False) + ("," if package is not document["packages"][-1] else "") in lines
    assert sum(line.startswith('  "') for line in lines) == len(document)
    validate_report(check_document(make_report("accept", [])))
    # optional: why the trustedSigner entry matched, or why none did
    document["packages"][2]["trustedSignerReason"] = "no author entry has fingerprint ABAB..."
    document["packages"][0]["trustedSignerReason"] = None
    validate_report(document)
    document["packages"][2]["trustedSignerReason"] = 3
    with pytest.raises(ReportInvalid, match="trustedSignerReason"):
        validate_report(document)


def test_package_shape_is_a_superset_of_verify_package_shape() -> None:
    package_schema = load_schema()["$defs"]["package"]
    verify_keys = {"path", "id", "version", "signed", "verdict", "signatures", "issues"}
    assert verify_keys <= set(package_schema["required"])
    assert {"source", "trustedSigner", "cause", "fix"} <= set(package_schema["properties"])


def _broken(document: dict[str, Any], how: str) -> dict[str, Any]:
    bad = copy.deepcopy(document)
    evil = bad["packages"][2]
    if how == "missing source":
        del bad["packages"][0]["source"]
    elif how == "unknown verdict":
        evil["verdict"] = "suspect"
    elif how == "bad code":
        evil["issues"][0]["code"] = "NU34"
    elif how == "bad level":
        evil["issues"][0]["level"] = "fatal"
    elif how == "invalid without an error":
        evil["issues"] = [issue("NU3027", "info").to_json()]
    elif how == "extra package key":
        evil["colour"] = "red"
    elif how == "lowercase fingerprint":
        evil["signatures"][0]["fingerprints"]["SHA256"] = EVIL_FP.lower()
    elif how == "time without zone":
        bad["generatedAt"] = "2025-03-01T12:00:00"
    elif how == "bad source kind":
        evil["source"]["kind"] = "csproj"
    elif how == "line zero":
        evil["source"]["line"] = 0
    elif how == "bad pointer":
        evil["source"]["pointer"] = "libraries/Evil.Pkg"
    elif how == "summary does not add up":
        bad["summary"]["valid"] = 5
    elif how == "exit code contradicts verdicts":
        bad["exitCode"] = 0
    elif how == "wrong tool":
        bad["tool"]["name"] = "nuget"
    else:
        raise AssertionError(how)
    return bad


@pytest.mark.parametrize("how", [
    "missing source", "unknown verdict", "bad code", "bad level", "invalid without an error", "extra package key",
    "lowercase fingerprint", "time without zone", "bad source kind", "line zero", "bad pointer",
    "summary does not add up", "exit code contradicts verdicts", "wrong tool",
])
def test_invalid_report_does_not_validate(document: dict[str, Any], how: str) -> None:
    validate_report(document)  # the unbroken one passes, so the failure below is caused by `how`
    bad = _broken(document, how)
    with pytest.raises(ReportInvalid) as caught:
        validate_report(bad)
    assert caught.value.problems and all(problem.startswith("/") for problem in caught.value.problems)


def test_report_problems_names_the_place() -> None:
    bad = check_document(make_report())
    bad["packages"][3]["issues"][0]["level"] = "fatal"
    problems = report_problems(bad)
    assert any(problem.startswith("/packages/3/issues/0/level") for problem in problems), problems


# ---- SARIF -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def sarif_validator() -> jsonschema.protocols.Validator:
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def test_sarif_validates_against_official_schema(report: GraphReport, tmp_path: Path,
                                                 sarif_validator: jsonschema.protocols.Validator) -> None:
    log = render_sarif(report, base_dir=tmp_path)
    errors = [e.message for e in sarif_validator.iter_errors(log)]
    assert errors == []
    # text form is the same log
    assert json.loads(render_text(report, ReportFormat.SARIF, base_dir=tmp_path)) == log
    # a clean graph gives a valid log with no results and no rules
    clean = render_sarif(make_report(packages=sample_packages()[:2]))
    assert list(sarif_validator.iter_errors(clean)) == []
    assert clean["runs"][0]["results"] == [] and clean["runs"][0]["tool"]["driver"]["rules"] == []


def test_sarif_schema_check_can_fail(report: GraphReport, sarif_validator: jsonschema.protocols.Validator) -> None:
    log = render_sarif(report)
    log["runs"][0]["results"][0]["level"] = "info"  # the report's level name is not a SARIF level
    assert any("info" in e.message for e in sarif_validator.iter_errors(log))


def test_sarif_rules_are_the_codes_used(report: GraphReport) -> None:
    driver = render_sarif(report)["runs"][0]["tool"]["driver"]
    assert driver["name"] == "trustpolicy" and driver["version"] == __version__
    assert driver["informationUri"].startswith("https://")
    # NU3018 of the valid Newtonsoft.Json counts too, because Evil.Pkg has it; its warning gives no result.
    assert [rule["id"] for rule in driver["rules"]] == ["NU3004", "NU3008", "NU3018", "NU3027", "NU3034",
                                                         "TP0001", "TP0002"]
    for rule in driver["rules"]:
        assert rule["shortDescription"]["text"] == codes.title(rule["id"])
        assert rule["name"].isalnum() and rule["name"][0].isupper()
        if rule["id"].startswith("NU"):
            assert rule["helpUri"] == codes.help_uri(rule["id"]) == (
                f"https://learn.microsoft.com/nuget/reference/errors-and-warnings/{rule['id'].lower()}")
        else:
            assert "helpUri" not in rule
    assert next(r for r in driver["rules"] if r["id"] == "NU3004")["name"] == "PackageIsUnsignedButPolicyRequiresSignedPackages"


def test_sarif_results_one_per_issue_of_failing_packages(report: GraphReport, tmp_path: Path) -> None:
    run = render_sarif(report, base_dir=tmp_path)["runs"][0]
    results = run["results"]
    rules = run["tool"]["driver"]["rules"]
    assert [(r["ruleId"], r["properties"]["packageId"]) for r in results] == [
        ("NU3034", "Evil.Pkg"), ("NU3018", "Evil.Pkg"), ("NU3027", "Evil.Pkg"),
        ("NU3004", "Unsigned.Thing"), ("TP0001", "Missing.Pkg"), ("NU3008", "Tampered.Pkg"), ("TP0002", "Tampered.Pkg"),
    ]
    assert [r["level"] for r in results] == ["error", "error", "note", "error", "error", "error", "error"]
    for result in results:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
    evil = results[0]
    text = evil["message"]["text"]
    assert "Evil.Pkg 6.6.6" in text and "matches no trustedSigners entry" in text
    assert "not in trustedSigners" in text and FIX_AUTHOR in text
    assert evil["properties"]["fix"] == FIX_AUTHOR
    logical = evil["locations"][0]["logicalLocations"][0]
    assert logical["fullyQualifiedName"] == "Evil.Pkg/6.6.6"
    assert evil["partialFingerprints"] == {"trustpolicyPackageIssue/v1": "evil.pkg/6.6.6/NU3034/primary"}
    assert len({json.dumps(r["partialFingerprints"]) for r in results}) == len(results)


def test_sarif_locations(report: GraphReport, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Paths in the report are relative to the current directory; SRCROOT is base_dir.
    monkeypatch.chdir(tmp_path)
    run = render_sarif(report, base_dir=tmp_path / "src")["runs"][0]
    assert run["originalUriBaseIds"] == {"SRCROOT": {"uri": (tmp_path / "src").as_uri() + "/"}}
    by_id = {r["properties"]["packageId"]: r for r in run["results"]}

    evil = by_id["Evil.Pkg"]["locations"][0]["physicalLocation"]
    assert evil == {"artifactLocation": {"uri": "app/obj/project.assets.json", "uriBaseId": "SRCROOT"},
                    "region": {"startLine": 300}}
    assert by_id["Evil.Pkg"]["properties"]["jsonPointer"] == "/libraries/Evil.Pkg~16.6.6"

    unsigned = by_id["Unsigned.Thing"]["locations"][0]["physicalLocation"]
    # no line known: line 1 of the file (viewers need a region)
    assert unsigned == {"artifactLocation": {"uri": "lib%20dir/packages.lock.json", "uriBaseId": "SRCROOT"},
                        "region": {"startLine": 1}}
    assert by_id["Unsigned.Thing"]["relatedLocations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": (tmp_path / "packages/unsigned.thing/0.1.0-beta/unsigned.thing.0.1.0-beta.nupkg").as_uri()}

    missing = by_id["Missing.Pkg"]
    assert missing["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "file:///elsewhere/repo/packages.config"}, "region": {"startLine": 7}}
    assert "relatedLocations" not in missing  # no .nupkg was found

    tampered = by_id["Tampered.Pkg"]
    # folder source: the result points at the .nupkg itself; "packages/..." (cwd-relative) lies
    # outside SRCROOT=<tmp>/src, so the URI is absolute
    assert tampered["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": (tmp_path / "packages/tampered.pkg/1.0.0/tampered.pkg.1.0.0.nupkg").as_uri()},
        "region": {"startLine": 1}}
    assert "relatedLocations" not in tampered


def _multitool() -> str | None:
    configured = os.environ.get("SARIF_MULTITOOL")
    if configured:
        return configured
    for name in ("sarif-multitool", "sarif-multitool-linux", "Sarif.Multitool"):
        found = shutil.which(name)
        if found:
            return found
    return None


def test_sarif_multitool_validate(report: GraphReport, tmp_path: Path) -> None:
    """Microsoft's SARIF Multitool as an independent validator (schema + SARIF1xxx/2xxx rules)."""
    tool = _multitool()
    if tool is None:
        pytest.skip("SARIF Multitool not installed (npm @microsoft/sarif-multitool-linux; "
                    "set SARIF_MULTITOOL to its Sarif.Multitool binary)")
    log_path = tmp_path / "report.sarif"
    out_path = tmp_path / "validation.sarif"
    log_path.write_text(render_text(report, "sarif", base_dir=tmp_path), encoding="utf-8")
    done = subprocess.run([tool, "validate", str(log_path), "-o", str(out_path), "--log", "ForceOverwrite"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    findings = [r for run in json.loads(out_path.read_text(encoding="utf-8-sig"))["runs"] for r in run.get("results", [])]
    # default levels are error and warning; notes (style advice, unreachable URIs offline) are not reported
    assert [(f["ruleId"], f.get("level", "warning"), f["message"]) for f in findings
            if f.get("level", "warning") in ("error", "warning")] == []
    # and it does catch a broken log (proves the run above really looked)
    broken = render_sarif(report, base_dir=tmp_path)
    broken["runs"][0]["results"][0]["ruleIndex"] = 99
    log_path.write_text(json.dumps(broken), encoding="utf-8")
    subprocess.run([tool, "validate", str(log_path), "-o", str(out_path), "--log", "ForceOverwrite"],
                   capture_output=True, text=True, timeout=300)
    findings = [r for run in json.loads(out_path.read_text(encoding="utf-8-sig"))["runs"] for r in run.get("results", [])]
    assert any(f["ruleId"].startswith("SARIF1009") for f in findings), findings


# ---- table -----------------------------------------------------------------------------------------

def _table(report: GraphReport, **console_args: Any) -> str:
    buffer = StringIO()
    render_table(report, Console(file=buffer, width=200, force_terminal=False, **console_args))
    return buffer.getvalue()


def test_table_shows_verdicts_codes_causes_and_fixes(report: GraphReport) -> None:
    out = _table(report)
    assert "\x1b[" not in out  # not a terminal: no colours
    lines = out.splitlines()
    row = {pid: next(line for line in lines if pid in line and "│" in line)
           for pid in ("Contoso.Lib", "Newtonsoft.Json", "Evil.Pkg", "Unsigned.Thing", "Missing.Pkg", "Tampered.Pkg")}
    assert "valid" in row["Contoso.Lib"] and "invalid" not in row["Contoso.Lib"]
    assert "contoso (author)" in row["Contoso.Lib"] and "author: Contoso Signing" in row["Contoso.Lib"]
    assert "nuget.org (repository)" in row["Newtonsoft.Json"] and "NU3018" in row["Newtonsoft.Json"]
    assert "invalid" in row["Evil.Pkg"] and "NU3034 NU3018 NU3027" in row["Evil.Pkg"]
    assert "author: [bold]Evil Corp[/bold]" in row["Evil.Pkg"]  # markup in data printed literally
    assert "unsigned" in row["Unsigned.Thing"] and "NU3004" in row["Unsigned.Thing"]
    assert "TP0001" in row["Missing.Pkg"] and "NU3008 TP0002" in row["Tampered.Pkg"]
    # the countersignature is listed under the signer column too
    assert any("repository: NuGet.org Repository by Microsoft" in line for line in lines)

    assert summary_line(report) in lines
    assert summary_line(report) == ("6 packages: 2 valid, 4 invalid, 1 warning - policy violated "
                                    "(mode require, exit code 1)")
    assert "x Evil.Pkg 6.6.6: author 'Evil Corp' (SHA256 ABAB...) is not in trustedSigners" in lines
    assert f"  fix: {FIX_AUTHOR}" in lines
    assert "x Unsigned.Thing 0.1.0-beta: package is unsigned and the mode is require" in lines
    assert '  fix: <author name="Evil Corp">' in lines and "       </author>" in lines
    assert "x Tampered.Pkg 1.0.0: package content was changed after signing" in lines
    assert not any(line.startswith("x Contoso.Lib") or line.startswith("x Newtonsoft.Json") for line in lines)
    # tampered has no fix; the packages not found are reported once, with one fix for all of them
    assert sum(1 for line in lines if line.startswith("  fix: ")) == 3
    assert "x 1 package was not found: Missing.Pkg 2.0.0" in lines and "x Missing.Pkg 2.0.0" not in out
    assert "mode: require" in lines[0] and "trust store: bundled (codesignctl.pem)" in lines[0]


def test_table_colours_only_on_a_terminal(report: GraphReport) -> None:
    buffer = StringIO()
    render_table(report, Console(file=buffer, width=200, force_terminal=True, color_system="standard"))
    assert "\x1b[" in buffer.getvalue()
    assert "\x1b[" not in render_text(report, ReportFormat.TABLE)


def test_table_cause_falls_back_to_first_error_and_audit_wording() -> None:
    pkg = package("NoCause.Pkg", "1.0.0", verdict="invalid", issues=[issue("NU3027", "warning"), issue("NU3012")])
    rep = make_report("audit", [pkg])
    validate_report(check_document(rep))
    out = _table(rep)
    assert f"x NoCause.Pkg 1.0.0: NU3012: {codes.title('NU3012')}" in out.splitlines()
    assert "policy violated (audit mode: not failing) (mode audit, exit code 0)" in out
    empty = _table(make_report("accept", []))
    assert "no packages in the graph" in empty and "0 packages: 0 valid, 0 invalid, 0 warnings - policy satisfied" in empty


def test_render_text_all_formats(report: GraphReport) -> None:
    assert json.loads(render_text(report, "json")) == check_document(report)
    assert json.loads(render_text(report, "sarif"))["version"] == "2.1.0"
    assert "Evil.Pkg" in render_text(report, "table")
    with pytest.raises(ValueError):
        render_text(report, "xml")


# ---- write_atomic ----------------------------------------------------------------------------------

def test_write_atomic_creates_replaces_and_keeps_mode(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    write_atomic(target, "first\n")
    assert target.read_text(encoding="utf-8") == "first\n"
    target.chmod(0o640)
    write_atomic(str(target), "zweite Fassung \u2713\n")
    assert target.read_text(encoding="utf-8") == "zweite Fassung \u2713\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    write_atomic(target, b"\x00bytes")
    assert target.read_bytes() == b"\x00bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]  # no temp files left


def test_write_atomic_error_names_the_file(tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "out.sarif"
    with pytest.raises(TrustPolicyError) as caught:
        write_atomic(target, "x")
    assert str(target) in str(caught.value)
    # a directory in the way: the temp file is removed again
    (tmp_path / "dir.json").mkdir()
    with pytest.raises(TrustPolicyError, match="dir.json"):
        write_atomic(tmp_path / "dir.json", "x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir.json"]


def test_sarif_one_result_per_code_at_its_highest_level_with_its_own_fix() -> None:
    """A code appears once per package, at its highest level; only the codes the package's cause and fix
    speak about carry them, the others carry their own code's help (not a trust command)."""
    pkg = package("Evil.Two", "1.0.0", verdict="invalid",
                  issues=[issue("NU3018", "warning", "revocation status unknown"), issue("NU3034"),
                          issue("NU3018", "error", "chain ends in an untrusted root"), issue("NU3027", "warning")],
                  cause="author 'Evil Corp' is not in trustedSigners", fix=FIX_AUTHOR)
    results = render_sarif(make_report(packages=[pkg]))["runs"][0]["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [("NU3018", "error"), ("NU3034", "error"),
                                                            ("NU3027", "warning")]
    by_code = {r["ruleId"]: r for r in results}
    assert "untrusted root" in by_code["NU3018"]["message"]["text"]
    for code in ("NU3018", "NU3034"):
        assert by_code[code]["properties"]["fix"] == FIX_AUTHOR and FIX_AUTHOR in by_code[code]["message"]["text"]
        assert by_code[code]["properties"]["cause"] == "author 'Evil Corp' is not in trustedSigners"
    timestamp = by_code["NU3027"]
    assert timestamp["properties"]["fix"] == codes.CODES[codes.Code.NU3027].help and "cause" not in timestamp["properties"]
    assert FIX_AUTHOR not in timestamp["message"]["text"] and codes.CODES[codes.Code.NU3027].help in timestamp["message"]["text"]


def test_suggestions_in_json_and_sarif() -> None:
    from trustpolicy.models import Suggestion

    suggestion = Suggestion("repository", "nuget.org", ("Evil.Pkg 6.6.6",), (FP_B,), (),
                            "https://api.nuget.org/v3/index.json", ("a", "b"), ("trustpolicy trust repository ...",),
                            "<repository />", None, ("trustpolicy trust repository ... (no owners)",), None)
    rep = make_report(suggestions=(suggestion,), searched_folders=(("/p", "--packages-dir"),))
    document = check_document(rep)
    validate_report(document)
    assert document["suggestions"][0]["owners"] == ["a", "b"] and document["searchedFolders"] == [
        {"path": "/p", "source": "--packages-dir"}]
    assert render_sarif(rep)["runs"][0]["properties"]["suggestions"] == document["suggestions"]
    broken = copy.deepcopy(document)
    broken["suggestions"][0]["fingerprints"] = ["not hex"]
    assert report_problems(broken)
