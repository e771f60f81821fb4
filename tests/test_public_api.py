"""The public API: what a user of the library needs, imported from `trustpolicy` alone.

This module imports nothing else of trustpolicy (a test below checks that), so it fails when the
public surface loses something a user relies on.
"""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest

import trustpolicy
from trustpolicy import (
    CheckOptions,
    Code,
    ConfigError,
    GraphReport,
    Level,
    PackageVerdict,
    Status,
    TrustContext,
    TrustOptions,
    TrustPolicyError,
    UsageError,
    check_graph,
    verify_package,
    verify_packages,
)

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "fixtures" / "demo"
VERSIONING = ROOT / "tests" / "data" / "nuget-client" / "signed" / "nuget.versioning.5.0.0.nupkg"
MOMENT = datetime(2026, 12, 1, tzinfo=UTC)


def test_check_the_demo_graph(tmp_path: Path) -> None:
    context = TrustContext.build(TrustOptions(directory=str(DEMO), revocation="off", cache_dir=str(tmp_path)))
    report = check_graph([DEMO], context, CheckOptions(use_cache=False))
    assert isinstance(report, GraphReport) and report.mode == "require"
    verdicts = {package.id: package.verdict.verdict for package in report.packages}
    assert verdicts == {"Contoso.Logging": "valid", "Fabrikam.Json": "valid", "Northwind.Utils": "invalid",
                        "Legacy.Unsigned": "invalid", "Contoso.Tampered": "invalid"}
    assert report.exit_code == 1 and report.summary.invalid == 3
    tampered = next(p for p in report.failing if p.id == "Contoso.Tampered")
    assert {Code.NU3008, Code.TP0002} <= {issue.code for issue in tampered.verdict.errors}
    assert all(issue.level is Level.ERROR for issue in tampered.verdict.errors)
    # audit judges the same way and never fails
    audit = check_graph([DEMO], TrustContext.build(TrustOptions(mode="audit", directory=str(DEMO), revocation="off")),
                        CheckOptions(use_cache=False))
    assert audit.exit_code == 0 and audit.summary == report.summary


def test_verify_a_real_package() -> None:
    context = TrustContext.build(TrustOptions(mode="verify", revocation="off", at=MOMENT, directory=str(ROOT)))
    verdict = verify_package(VERSIONING, context)
    assert isinstance(verdict, PackageVerdict) and verdict.passed and verdict.status is Status.VALID
    assert verdict.id == "NuGet.Versioning" and verdict.version.startswith("5.0.0+")  # as its nuspec says
    assert [s.kind for s in verdict.signatures] == ["author", "repository"]
    report = verify_packages([VERSIONING, ROOT / "no-such.nupkg"], context)
    assert [p.verdict.verdict for p in report.packages] == ["valid", "invalid"] and report.exit_code == 1
    assert report.packages[1].verdict.codes() == [Code.TP0003]


def test_unusable_input_raises_with_the_file_named(tmp_path: Path) -> None:
    bad = tmp_path / "NuGet.Config"
    bad.write_text("<configuration><trustedSigners><author name='x'/></trustedSigners></configuration>")
    with pytest.raises(ConfigError) as caught:
        TrustContext.build(TrustOptions(configfile=str(bad)))
    assert isinstance(caught.value, TrustPolicyError) and str(bad) in str(caught.value)
    with pytest.raises(UsageError, match="revocation"):
        TrustContext.build(TrustOptions(revocation="sometimes"))


def test_every_exported_name_resolves_to_public_code() -> None:
    for name in trustpolicy.__all__:
        value = getattr(trustpolicy, name)
        module = getattr(value, "__module__", "trustpolicy") or "trustpolicy"
        assert not module.startswith("trustpolicy._internal"), (name, module)
    assert set(dir(trustpolicy)) == set(trustpolicy.__all__)
    with pytest.raises(AttributeError):
        trustpolicy.Verifier  # machinery is not exported


def test_this_module_imports_only_the_public_api() -> None:
    tree = ast.parse(Path(__file__).read_text(encoding="utf-8"))
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    modules |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert {m for m in modules if m and m.startswith("trustpolicy")} == {"trustpolicy"}
