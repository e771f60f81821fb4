"""`trustpolicy lint`: findings with file:line and a fix; exit 0 / 1 / 2."""

from __future__ import annotations

import json
import shlex
from datetime import UTC, datetime
from pathlib import Path

import pytest

from trustpolicy._internal.config import load_config
from trustpolicy._internal.config.hierarchy import MACHINE_DIR_ENV, USER_DIR_ENV
from trustpolicy._internal.config.lint import lint, nuget_org_certificates, rule
from trustpolicy.cli import main
from trustpolicy.codes import CODES

CONFIGS = Path(__file__).parent / "configs"
AT_2025 = datetime(2025, 6, 1, tzinfo=UTC)
A = "A" * 64
NUGET_ORG = "https://api.nuget.org/v3/index.json"
NUGET_ORG_2018 = "0E5F38F57DC1BCC806D8494F4F90FBCEDD988B46760709CBEEC6F4219AA6157D"
NUGET_ORG_2021 = "5A2901D6ADA3D18260B9C6DFE2133C95D74B9EEF6AE0E5DC334C8454D1477DF4"
NUGET_ORG_2024 = "1F4B311D9ACC115C8DC8018B5A49E00FCE6DA8E2855F9F014CA6F34570BC482D"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(USER_DIR_ENV, str(tmp_path / "user"))
    monkeypatch.setenv(MACHINE_DIR_ENV, str(tmp_path / "machine"))
    return tmp_path


def config(tmp_path: Path, signers: str, *, mode: str = "require", sources: str = "", name: str = "NuGet.Config") -> Path:
    path = tmp_path / name
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
    return [(rule(f), f.where.line) for f in lint(load_config(configfile=path), at=at)]


def nuget_org_entry(tmp_path: Path, *fingerprints: str, index: str = NUGET_ORG, name: str = "nuget.org", sources: str = "") -> Path:
    body = f'<repository name="{name}" serviceIndex="{index}">\n' + "\n".join(cert(fp) for fp in fingerprints) + "</repository>"
    return config(tmp_path, body, sources=sources or f'<add key="nuget.org" value="{NUGET_ORG}" />')


def test_policy_example_is_clean_in_2025() -> None:
    assert rules(CONFIGS / "policy-example.config") == []


# -- nuget.org: every certificate that ever signed --------------------------------------------------


def test_known_nuget_org_certificates_and_their_periods() -> None:
    index, known = nuget_org_certificates()
    assert index == NUGET_ORG
    assert [k.fingerprint for k in known] == [NUGET_ORG_2018, NUGET_ORG_2021, NUGET_ORG_2024]
    assert all(k.hash_algorithm == "SHA256" and k.not_before < k.not_after for k in known)
    # each was used within its validity, the periods follow each other, the newest is still in use
    assert all(k.not_before <= k.used_from and (k.used_until is None or k.used_until <= k.not_after) for k in known)
    assert [k.used_until for k in known[:-1]] == [k.used_from for k in known[1:]] and known[-1].used_until is None


def test_an_entry_pinning_only_the_2018_certificate_misses_the_two_later_ones(tmp_path: Path) -> None:
    path = nuget_org_entry(tmp_path, NUGET_ORG_2018)
    findings = lint(load_config(configfile=path), at=AT_2025)
    assert [(f.code, f.level, str(f.where)) for f in findings] == [("TP1010", "warning", f"{path}:6")] * 2
    assert [NUGET_ORG_2021 in findings[0].message, NUGET_ORG_2024 in findings[1].message] == [True, True]
    assert "used from 2021-03-15 to 2024-04-08" in findings[0].message and "in use since 2024-04-08" in findings[1].message
    assert findings[0].fix == f"run: trustpolicy trust certificate nuget.org {NUGET_ORG_2021} --configfile {path}"
    # in 2019 only the 2018 certificate had ever signed
    assert rules(path, datetime(2019, 6, 1, tzinfo=UTC)) == []
    assert main(["lint", "--configfile", str(path)]) == 1


def test_nuget_org_is_recognised_by_a_certificate_behind_a_proxy(tmp_path: Path) -> None:
    # an Artifactory-style proxy as the only source, nuget.org's serviceIndex kept (correct) or not
    proxy = '<add key="proxy" value="https://artifactory.corp.test/api/nuget/v3/nuget-remote" />'
    path = nuget_org_entry(tmp_path, NUGET_ORG_2024, sources=proxy)
    assert [(r, line) for r, line in rules(path)] == [("nuget-org-certificate-missing", 6)] * 2
    path = nuget_org_entry(tmp_path, NUGET_ORG_2021, index="https://artifactory.corp.test/api/nuget/v3/nuget-remote", sources=proxy)
    assert rules(path) == [("nuget-org-certificate-missing", 6)] * 2


def test_the_printed_command_adds_each_missing_certificate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = nuget_org_entry(tmp_path, NUGET_ORG_2018, name="nuget org; mirror")  # a name that needs quoting
    findings = lint(load_config(configfile=path), at=AT_2025)
    assert len(findings) == 2
    for finding in findings:
        argv = shlex.split(finding.fix.removeprefix("run: "))
        assert argv[0] == "trustpolicy" and main(argv[1:]) == 0
    capsys.readouterr()
    assert rules(path) == []
    (signer,) = load_config(configfile=path).settings.signers
    assert [c.fingerprint for c in signer.certificates] == [NUGET_ORG_2018, NUGET_ORG_2021, NUGET_ORG_2024]


def test_a_read_only_machine_file_gets_a_command_without_configfile(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    machine = isolated / "machine" / "corp.config"
    machine.parent.mkdir()
    original = (f'<configuration><trustedSigners><repository name="nuget.org" serviceIndex="{NUGET_ORG}">'
                f"{cert(NUGET_ORG_2021)}{cert(NUGET_ORG_2024)}</repository></trustedSigners></configuration>")
    machine.write_text(original)
    (isolated / "repo").mkdir()
    (finding,) = [f for f in lint(load_config(directory=isolated / "repo"), at=AT_2025) if f.code == "TP1010"]
    assert finding.fix == f"run: trustpolicy trust certificate nuget.org {NUGET_ORG_2018}"
    # run in the project folder, it writes a complete closer copy (the user file) and leaves the machine file alone
    monkeypatch.chdir(isolated / "repo")
    assert main(shlex.split(finding.fix.removeprefix("run: "))[1:]) == 0
    capsys.readouterr()
    assert machine.read_text() == original
    assert [f for f in lint(load_config(directory=isolated / "repo"), at=AT_2025) if f.code == "TP1010" and f.where.path != str(machine)] == []
    (signer,) = load_config(directory=isolated / "repo").settings.signers
    assert signer.source.path == str(isolated / "user" / "NuGet.Config") and len(signer.certificates) == 3


# -- a serviceIndex that matches no source is normal behind a proxy ---------------------------------


def test_service_index_without_source_is_advice_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, f'<repository name="corp" serviceIndex="https://corp.test/v3/index.json">{cert()}</repository>',
                  sources='<add key="proxy" value="https://nexus.corp.test/repository/nuget-group/index.json" />')
    (finding,) = lint(load_config(configfile=path), at=AT_2025)
    assert (rule(finding), finding.level, finding.where.line) == ("service-index-without-source", "info", 6)
    assert main(["lint", "--configfile", str(path)]) == 0
    assert "1 finding in 1 file: 1 info" in capsys.readouterr().out


# -- every rule with its line -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "rule_name", "line"),
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
        (f'<repository name="r" serviceIndex="https://r.test/index.json">{cert()}\n<owners>a;b;</owners></repository>', "empty-owner", 7),
        (f'<repository name="r" serviceIndex="https://r.test/index.json">{cert()}\n<owners>Micro soft</owners></repository>', "owner-whitespace", 7),
        (f'<repository name="r" serviceIndex="http://r.test/index.json">{cert()}</repository>', "service-index-not-https", 6),
        (f'<repository name="r" serviceIndex="https://elsewhere.test/index.json">{cert()}</repository>', "service-index-without-source", 6),
        (f'<repository name="r" serviceIndex="https://r.test/index.json">{cert()}</repository>\n'
         f'<repository name="s" serviceIndex="https://r.test/index.json">{cert("B" * 64)}</repository>', "duplicate-service-index", 7),
        (f'<author name="a">{cert(allow="true")}</author>\n<author name="b">{cert(allow="false")}</author>', "conflicting-allow-untrusted-root", 7),
        (f'<author name="a">\n{cert(allow="maybe")}</author>', "invalid-boolean", 7),
        (f'<author name="a">\n{cert(alg="SHA1")}</author>', "sha1-fingerprint", 7),
        (f'<author name="a">\n{cert(alg="MD5")}</author>', "unknown-hash-algorithm", 7),
    ],
)
def test_each_rule_with_its_line(tmp_path: Path, body: str, rule_name: str, line: int) -> None:
    path = config(tmp_path, body, sources='<add key="r" value="https://r.test/index.json" />')
    findings = lint(load_config(configfile=path), at=AT_2025)
    assert (rule_name, line) in [(rule(f), f.where.line) for f in findings]
    finding = next(f for f in findings if rule(f) == rule_name)
    assert finding.where.path == str(path) and finding.fix and CODES[finding.code].name == rule_name


def test_duplicate_package_source_key(tmp_path: Path) -> None:
    path = config(tmp_path, "", mode="accept", sources='<add key="s" value="https://a.test/i.json"/>\n<add key="s" value="https://b.test/i.json"/>')
    assert rules(path) == [("duplicate-key", 5)]
    assert load_config(configfile=path).settings.sources == {"s": "https://a.test/i.json"}


def test_sha1_entry(tmp_path: Path) -> None:
    path = config(tmp_path, f'<author name="a">\n{cert("AB" * 20, "SHA1")}</author>')
    (finding,) = lint(load_config(configfile=path), at=AT_2025)  # the right length for SHA-1: only NU3043
    assert (finding.code, finding.level, finding.where.line) == ("NU3043", "error", 7)
    assert "SHA-256" in finding.fix
    path = config(tmp_path, f'<author name="a">\n{cert("AB" * 20, "SHA256")}</author>')
    (finding,) = lint(load_config(configfile=path), at=AT_2025)
    assert rule(finding) == "fingerprint-length" and "SHA-1" in finding.message


# -- signatureValidationMode ----------------------------------------------------------------------


@pytest.mark.parametrize("value", ["requir", "Required", "", "yes"])
def test_an_invalid_mode_is_an_error_with_file_and_line(tmp_path: Path, value: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, f'<author name="a">{cert()}</author>', mode=value)
    assert rules(path) == [("invalid-validation-mode", 3)]  # not also "signers-in-accept-mode"
    assert main(["lint", "--configfile", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:3: error: signatureValidationMode is {value!r}, which is neither accept nor require" in out
    assert "[TP1018 invalid-validation-mode]" in out


def test_signers_in_accept_mode_is_advice_only(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, f'<author name="a">{cert()}</author>', mode="accept")
    assert rules(path) == [("signers-in-accept-mode", 3)]
    assert main(["lint", "--configfile", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"{path}:3: info:" in out and "1 finding in 1 file: 1 info" in out and "No findings" not in out


def test_require_without_signers(tmp_path: Path) -> None:
    assert rules(config(tmp_path, "")) == [("require-without-signers", 3)]


def test_miscased_section_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "c.config"
    path.write_text(f'<configuration>\n<TrustedSigners><author name="a">{cert()}</author></TrustedSigners>\n</configuration>\n')
    assert rules(path) == [("section-case", 2)]


# -- output and exit codes ------------------------------------------------------------------------


def test_exit_codes_and_text_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clean = CONFIGS / "policy-example.config"
    assert main(["lint", "--configfile", str(clean), "--at", "2025-06-01T00:00:00Z"]) == 0
    assert capsys.readouterr().out.strip() == "No findings in 1 file."

    path = config(tmp_path, f'<author name="a">\n{cert("A" * 62)}</author>')
    assert main(["lint", "--configfile", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"{path}:7: error: SHA256 fingerprint has 62 hex digits, not 64" in out
    assert "[TP1004 fingerprint-length]" in out and "    fix: " in out and "1 finding in 1 file: 1 error" in out

    unreadable = tmp_path / "bad.config"
    unreadable.write_text("<configuration><trustedSigners>")
    assert main(["lint", "--configfile", str(unreadable)]) == 2
    assert str(unreadable) in capsys.readouterr().err
    assert main(["lint", "--configfile", str(tmp_path / "missing.config")]) == 2
    assert main(["lint", "--configfile", str(clean), "--at", "yesterday"]) == 2


def test_the_summary_counts_what_was_printed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    body = (f'<author name="a">\n{cert("A" * 62)}\n{cert(A.lower(), allow="true")}</author>\n'
            f'<repository name="r" serviceIndex="https://elsewhere.test/index.json">{cert("B" * 64)}</repository>')
    path = config(tmp_path, body, mode="accept")
    assert main(["lint", "--configfile", str(path)]) == 1
    out = capsys.readouterr().out.splitlines()
    printed = [line for line in out if not line.startswith(("    fix:", "4 findings"))]
    assert len(printed) == 4 and out[-1] == "4 findings in 1 file: 1 error, 1 warning, 2 info"


def test_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = config(tmp_path, f'<author name="a">\n{cert(A.lower(), allow="true")}</author>')
    assert main(["lint", "--configfile", str(path), "--format", "json"]) == 1
    data = json.loads(capsys.readouterr().out)
    assert data["exitCode"] == 1 and data["files"] == [str(path)]
    (finding,) = data["findings"]
    assert (finding["code"], finding["rule"], finding["level"]) == ("TP1005", "allow-untrusted-root-ignored", "warning")
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
    assert f"{user}:1: error:" in out and "in 2 files" in out


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.config")))
def test_every_sample_lints_without_crashing(name: str) -> None:
    assert main(["lint", "--configfile", str(CONFIGS / name), "--format", "json"]) in (0, 1)


# -- real NuGet.Config files from public repositories (tests/configs/PROVENANCE.md) -----------------


@pytest.mark.parametrize(
    ("name", "committed", "then", "in_2025"),
    [
        # pinned the 2018 certificate only: right in February 2021, wrong from March 2021 on
        ("realworld-library-template-2021.config", "2021-02-10", [],
         [("nuget-org-certificate-missing", 18, NUGET_ORG_2021), ("nuget-org-certificate-missing", 18, NUGET_ORG_2024)]),
        ("realworld-cswin32-2022.config", "2022-06-01", [], [("nuget-org-certificate-missing", 14, NUGET_ORG_2024)]),
        # accept mode with a signer list: advice only
        ("realworld-nerdbank-gitversioning-2021-accept.config", "2021-08-01", [("signers-in-accept-mode", 5, None)],
         [("signers-in-accept-mode", 5, None), ("nuget-org-certificate-missing", 14, NUGET_ORG_2024)]),
    ],
)
def test_real_configs_no_false_alarm_when_written_and_the_right_finding_later(
    name: str, committed: str, then: list, in_2025: list
) -> None:
    loaded = load_config(configfile=CONFIGS / name)
    loaded.settings.require_usable(mode_given=False)  # check and verify accept every one of them

    def found(at: datetime) -> list[tuple[str, int, str | None]]:
        findings = lint(loaded, at=at)
        return [(rule(f), f.where.line, next((fp for fp in (NUGET_ORG_2021, NUGET_ORG_2024) if fp in f.message), None))
                for f in findings]

    assert found(datetime.fromisoformat(committed).replace(tzinfo=UTC)) == then
    assert found(AT_2025) == in_2025


def test_fixing_a_real_config_with_the_printed_commands_keeps_everything_else(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    original = (CONFIGS / "realworld-library-template-2021.config").read_bytes()
    path = tmp_path / "nuget.config"
    path.write_bytes(original)
    for finding in lint(load_config(configfile=path), at=AT_2025):
        assert main(shlex.split(finding.fix.removeprefix("run: "))[1:]) == 0
    capsys.readouterr()
    assert rules(path) == []
    fixed = path.read_bytes()
    assert fixed.startswith(b"\xef\xbb\xbf")  # the file's BOM stays
    added = [line for line in fixed.decode("utf-8-sig").splitlines() if line not in original.decode("utf-8-sig").splitlines()]
    assert [NUGET_ORG_2021 in added[0], NUGET_ORG_2024 in added[1], len(added)] == [True, True, 2]
