"""`trustpolicy lint`: findings with file:line and a fix; exit 0 / 1 / 2."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

import pytest

from trustpolicy.cli import main
from trustpolicy.config import load_config
from trustpolicy.config.hierarchy import MACHINE_DIR_ENV, USER_DIR_ENV
from trustpolicy.config.lint import lint, nuget_org_certificates

CONFIGS = Path(__file__).parent / "configs"
AT_2025 = datetime(2025, 6, 1, tzinfo=timezone.utc)
A = "A" * 64
NUGET_ORG = "https://api.nuget.org/v3/index.json"
CURRENT_2025 = "1F4B311D9ACC115C8DC8018B5A49E00FCE6DA8E2855F9F014CA6F34570BC482D"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(USER_DIR_ENV, str(tmp_path / "user"))
    monkeypatch.setenv(MACHINE_DIR_ENV, str(tmp_path / "machine"))
    return tmp_path


def config(tmp_path: Path, signers: str, *, mode: str = "require", sources: str = "") -> Path:
    path = tmp_path / "NuGet.Config"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n'
        f'  <config><add key="signatureValidationMode" value="{mode}" /></config>\n'
        f"  <packageSources>{sources}</packageSources>\n"
        f"  <trustedSigners>\n{signers}\n  </trustedSigners>\n</configuration>\n"
    )
    return path


def cert(fp: str = A, alg: str = "SHA256", allow: str = "false") -> str:
    return f'<certificate fingerprint="{fp}" hashAlgorithm="{alg}" allowUntrustedRoot="{allow}" />'


def rules(path: Path, at: datetime = AT_2025) -> list[tuple[str, int]]:
    return [(f.rule, f.source.line) for f in lint(load_config(configfile=path), at=at)]


def test_policy_example_is_clean_in_2025(tmp_path: Path) -> None:
    assert rules(CONFIGS / "policy-example.config") == []


def test_nuget_org_entry_missing_the_current_certificate(tmp_path: Path) -> None:
    path = config(
        tmp_path,
        f'<repository name="nuget.org" serviceIndex="{NUGET_ORG}/">\n'
        f'{cert("0E5F38F57DC1BCC806D8494F4F90FBCEDD988B46760709CBEEC6F4219AA6157D")}</repository>',
        sources=f'<add key="nuget.org" value="{NUGET_ORG}" />',
    )
    findings = lint(load_config(configfile=path), at=AT_2025)
    assert [(f.rule, f.source.line) for f in findings] == [("nuget-org-certificate-missing", 6)]
    assert CURRENT_2025 in findings[0].message and "trust sync nuget.org" in findings[0].fix
    # in 2019 the 0E5F certificate was the current one
    assert rules(path, datetime(2019, 6, 1, tzinfo=timezone.utc)) == []


def test_known_nuget_org_certificates_come_from_the_spec() -> None:
    index, known = nuget_org_certificates()
    assert index == NUGET_ORG
    assert [k.fingerprint[:4] for k in known] == ["0E5F", "5A29", "1F4B"]
    assert all(len(k.fingerprint) == 64 and k.not_before < k.not_after for k in known)


@pytest.mark.parametrize(
    ("body", "rule", "line"),
    [
        (f'<author name="a">\n{cert("A" * 62)}</author>', "fingerprint-length", 7),
        (f'<author name="a">\n{cert("A" * 64, "SHA384")}</author>', "fingerprint-length", 7),
        (f'<author name="a">\n{cert("G" * 64)}</author>', "fingerprint-not-hex", 7),
        (f'<author name="a">\n{cert("AB:CD")}</author>', "fingerprint-not-hex", 7),
        (f'<author name="a">\n{cert("")}</author>', "fingerprint-not-hex", 7),
        (f'<author name="a">\n{cert(A.lower(), allow="true")}</author>', "allow-untrusted-root-ignored", 7),
        (f'<author name="a">{cert()}\n{cert()}</author>', "duplicate-certificate", 7),
        (f'<author name="a">{cert()}<owners>x</owners></author>', "owners-on-author", 6),
        (f'<author name="a">{cert()}</author>\n<author name="a">{cert()}</author>', "duplicate-item", 7),
        (f'<author name="a">{cert()}</author>\n<trustedsigner name="b"/>', "unknown-element", 7),
        (f'<repository name="r" serviceIndex="https://r.test/index.json">{cert()}<owners>a;;b</owners></repository>', "empty-owner", 6),
        (f'<repository name="r" serviceIndex="https://r.test/index.json">{cert()}<owners>a;b;</owners></repository>', "empty-owner", 6),
        (f'<repository name="r" serviceIndex="https://elsewhere.test/index.json">{cert()}</repository>', "service-index-without-source", 6),
        (f'<repository name="r" serviceIndex="https://r.test/index.json">{cert()}</repository>\n'
         f'<repository name="s" serviceIndex="https://r.test/index.json">{cert("B" * 64)}</repository>', "duplicate-service-index", 7),
        (f'<author name="a">{cert(allow="true")}</author>\n<author name="b">{cert(allow="false")}</author>', "conflicting-allow-untrusted-root", 7),
    ],
)
def test_each_rule_with_its_line(tmp_path: Path, body: str, rule: str, line: int) -> None:
    path = config(tmp_path, body, sources='<add key="r" value="https://r.test/index.json" />')
    assert (rule, line) in rules(path)


def test_duplicate_package_source_key(tmp_path: Path) -> None:
    path = config(tmp_path, "", mode="accept", sources='<add key="s" value="https://a.test/i.json"/>\n<add key="s" value="https://b.test/i.json"/>')
    assert rules(path) == [("duplicate-key", 5)]
    assert load_config(configfile=path).settings.sources == {"s": "https://a.test/i.json"}


def test_sha1_entry(tmp_path: Path) -> None:
    path = config(tmp_path, f'<author name="a">\n{cert("AB" * 20, "SHA1")}</author>')
    assert rules(path) == [("sha1-fingerprint", 7)]  # the right length for SHA-1, so only the SHA-1 finding
    path = config(tmp_path, f'<author name="a">\n{cert("AB" * 20, "SHA256")}</author>')
    (finding,) = lint(load_config(configfile=path), at=AT_2025)
    assert finding.rule == "fingerprint-length" and "SHA-1" in finding.message


def test_signers_in_accept_mode_is_advice_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, f'<author name="a">{cert()}</author>', mode="accept")
    assert rules(path) == [("signers-in-accept-mode", 3)]
    assert main(["lint", "--configfile", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}:3: info:" in out and "No findings" in out


def test_require_without_signers(tmp_path: Path) -> None:
    assert rules(config(tmp_path, "")) == [("require-without-signers", 3)]


def test_miscased_section_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "c.config"
    path.write_text(f'<configuration>\n<TrustedSigners><author name="a">{cert()}</author></TrustedSigners>\n</configuration>\n')
    assert rules(path) == [("section-case", 2)]


def test_exit_codes_and_text_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = CONFIGS / "policy-example.config"
    assert main(["lint", "--configfile", str(clean), "--at", "2025-06-01T00:00:00Z"]) == 0
    capsys.readouterr()

    path = config(tmp_path, f'<author name="a">\n{cert("A" * 62)}</author>')
    assert main(["lint", "--configfile", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:7: error: SHA256 fingerprint has 62 hex digits, not 64" in out
    assert "    fix: " in out and "1 finding(s) in 1 file(s)" in out

    unreadable = tmp_path / "bad.config"
    unreadable.write_text("<configuration><trustedSigners>")
    assert main(["lint", "--configfile", str(unreadable)]) == 2
    assert str(unreadable) in capsys.readouterr().err
    assert main(["lint", "--configfile", str(tmp_path / "missing.config")]) == 2
    assert main(["lint", "--configfile", str(clean), "--at", "yesterday"]) == 2


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, f'<author name="a">\n{cert(A.lower(), allow="true")}</author>')
    assert main(["lint", "--configfile", str(path), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["exitCode"] == 1 and data["files"] == [str(path)]
    (finding,) = data["findings"]
    assert finding["rule"] == "allow-untrusted-root-ignored"
    assert finding["source"] == {"path": str(path), "line": 7}
    assert A in finding["fix"]


def test_lint_walks_the_hierarchy(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    user = isolated / "user" / "NuGet.Config"
    user.parent.mkdir()
    user.write_text(f'<configuration><trustedSigners><author name="u">{cert("A" * 10)}</author></trustedSigners></configuration>')
    (isolated / "repo").mkdir()
    (isolated / "repo" / "nuget.config").write_text(f'<configuration><trustedSigners><author name="r">{cert()}</author></trustedSigners></configuration>')
    assert main(["lint", "--directory", str(isolated / "repo")]) == 1
    out = capsys.readouterr().out
    assert f"{user}:1: error:" in out and "in 2 file(s)" in out


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.config")))
def test_every_sample_lints_without_crashing(name: str) -> None:
    assert main(["lint", "--configfile", str(CONFIGS / name), "--format", "json"]) in (0, 1)
