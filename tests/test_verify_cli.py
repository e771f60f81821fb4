"""`trustpolicy verify` end to end, in process: JSON shape, text output, exit codes, options."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_verify_support import SERVICE_INDEX, World, world  # noqa: F401 - fixture

from trustpolicy._internal.signature import fingerprint
from trustpolicy.cli import main
from trustpolicy.testing.pki import write_certificates

PACKAGE_KEYS = {"path", "id", "version", "signed", "verdict", "signatures", "issues"}
SIGNATURE_KEYS = {"kind", "placement", "subject", "fingerprints", "timestamp", "serviceIndex", "owners", "status"}
ISSUE_KEYS = {"code", "level", "message", "signature"}


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No real user or machine NuGet.Config may leak in: HOME, machine dir and cwd are empty dirs."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("NUGET_COMMON_APPLICATION_DATA", str(tmp_path / "machine"))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)


@pytest.fixture(scope="module")
def roots(world: World, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("roots") / "roots.pem"
    write_certificates(path, [world.pki.root.certificate, world.pki.tsa_root.certificate])
    return str(path)


@pytest.fixture(scope="module")
def good(world: World) -> Path:
    return world.sign()


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["verify", *args])
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys: pytest.CaptureFixture[str], roots: str, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    code, out, err = run(capsys, *args, "--trust-store", roots, "--revocation", "off", "--format", "json")
    assert "Traceback" not in err
    return code, json.loads(out)


def write_config(path: Path, signers: str, mode: str = "accept") -> str:
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<configuration>'
        f'<config><add key="signatureValidationMode" value="{mode}" /></config>'
        f"<trustedSigners>{signers}</trustedSigners></configuration>\n", encoding="utf-8")
    return str(path)


def author(name: str, fp: str, allow_untrusted_root: bool = False) -> str:
    return (f'<author name="{name}"><certificate fingerprint="{fp}" hashAlgorithm="SHA256" '
            f'allowUntrustedRoot="{str(allow_untrusted_root).lower()}" /></author>')


# --- JSON ---------------------------------------------------------------------------------------


def test_json_shape(capsys, roots, world: World, good: Path) -> None:  # type: ignore[no-untyped-def]
    countersigned = world.countersign(good, owners=("nuget",))
    code, doc = run_json(capsys, roots, str(good), str(countersigned))
    assert code == 0
    assert set(doc) == {"tool", "settings", "trustStore", "packages", "summary"}
    assert doc["tool"]["name"] == "trustpolicy" and doc["tool"]["version"]
    assert doc["settings"]["allowUntrusted"] is False and doc["settings"]["revocationMode"] == "off"
    assert "test roots" not in doc["trustStore"] and roots in doc["trustStore"]
    assert doc["summary"] == {"total": 2, "valid": 2, "invalid": 0}
    for package in doc["packages"]:
        assert set(package) == PACKAGE_KEYS
        assert package["verdict"] == "valid" and package["signed"] is True
        assert (package["id"], package["version"]) == ("Test.Package", "1.0.0")
        for signature in package["signatures"]:
            assert set(signature) == SIGNATURE_KEYS
            assert set(signature["fingerprints"]) == {"SHA256"} and signature["timestamp"].endswith("Z")
    primary, counter = doc["packages"][1]["signatures"]
    assert (primary["kind"], primary["placement"], primary["status"]) == ("author", "primary", "valid")
    assert (counter["kind"], counter["placement"]) == ("repository", "countersignature")
    assert counter["serviceIndex"] == SERVICE_INDEX and counter["owners"] == ["nuget"]
    assert primary["fingerprints"]["SHA256"] == fingerprint(world.pki.leaf.asn1)


def test_json_issues_and_exit_1(capsys, roots, world: World) -> None:  # type: ignore[no-untyped-def]
    code, doc = run_json(capsys, roots, str(world.unsigned()), str(world.sign(timestamp=False)))
    assert code == 1 and doc["summary"] == {"total": 2, "valid": 1, "invalid": 1}
    unsigned, untimestamped = doc["packages"]
    assert unsigned["signed"] is False and unsigned["verdict"] == "invalid" and unsigned["signatures"] == []
    assert [(i["code"], i["level"]) for i in unsigned["issues"]] == [("NU3004", "error")]
    assert untimestamped["verdict"] == "valid"
    assert [(i["code"], i["level"], i["signature"]) for i in untimestamped["issues"]] == [("NU3027", "warning", "primary")]
    assert all(set(i) == ISSUE_KEYS for p in doc["packages"] for i in p["issues"])


# --- text ---------------------------------------------------------------------------------------


def test_text_output(capsys, roots, world: World, good: Path) -> None:  # type: ignore[no-untyped-def]
    bad = world.unsigned()
    code, out, err = run(capsys, str(good), str(bad), "--trust-store", roots, "--revocation", "off")
    assert code == 1 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith("VALID") and str(good) in lines[0] and "Test.Package 1.0.0" in lines[0]
    invalid_at = next(i for i, line in enumerate(lines) if line.startswith("INVALID"))
    assert str(bad) in lines[invalid_at] and "error NU3004:" in lines[invalid_at + 2]
    assert lines[-1] == "2 packages: 1 valid, 1 invalid"
    assert "\x1b[" not in out  # colours only on a terminal


# --- options ------------------------------------------------------------------------------------


def test_certificate_fingerprint_allow_and_deny(capsys, roots, world: World, good: Path) -> None:  # type: ignore[no-untyped-def]
    leaf_fp = fingerprint(world.pki.leaf.asn1)
    other_fp = fingerprint(world.other.leaf.asn1)
    code, doc = run_json(capsys, roots, str(good), "--certificate-fingerprint", other_fp,
                         "--certificate-fingerprint", leaf_fp.lower())
    assert code == 0 and doc["packages"][0]["issues"] == []
    assert doc["settings"]["certificateFingerprints"] == [other_fp, leaf_fp]
    code, doc = run_json(capsys, roots, str(good), "--certificate-fingerprint", other_fp)
    assert code == 1
    assert [(i["code"], i["level"]) for i in doc["packages"][0]["issues"]] == [("NU3034", "error")]


@pytest.mark.parametrize("value", ["abc", "Z" * 64, "A" * 40])
def test_bad_certificate_fingerprint_is_usage_error(capsys, roots, good: Path, value: str) -> None:  # type: ignore[no-untyped-def]
    code, out, err = run(capsys, str(good), "--certificate-fingerprint", value)
    assert code == 2 and out == "" and "--certificate-fingerprint" in err and "Traceback" not in err


def test_configfile_trusted_signers_and_mode(capsys, roots, world: World, good: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    trusted = write_config(tmp_path / "trusted.config", author("me", fingerprint(world.pki.leaf.asn1)), "require")
    code, doc = run_json(capsys, roots, str(good), "--configfile", trusted)
    assert code == 0 and doc["settings"]["signatureValidationMode"] == "require"
    assert doc["settings"]["configFiles"] == [trusted]
    stranger = write_config(tmp_path / "stranger.config", author("other", fingerprint(world.other.leaf.asn1)))
    code, doc = run_json(capsys, roots, str(good), "--configfile", stranger)
    assert code == 1 and [i["code"] for i in doc["packages"][0]["issues"]] == ["NU3034"]
    empty_require = write_config(tmp_path / "empty.config", "", "require")
    code, doc = run_json(capsys, roots, str(good), "--configfile", empty_require)
    assert code == 1 and "no trusted signers were specified" in doc["packages"][0]["issues"][0]["message"]


def test_configfile_allow_untrusted_root_only_in_the_file_used(capsys, roots, world: World, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    package = world.sign(world.other.leaf)
    other_fp = fingerprint(world.other.leaf.asn1)
    used = write_config(tmp_path / "used.config", author("other", other_fp, allow_untrusted_root=True))
    code, doc = run_json(capsys, roots, str(package), "--configfile", used)
    assert code == 0 and doc["packages"][0]["issues"] == []
    # scenario 86: the same entry in a config nobody passed does not help
    write_config(tmp_path / "work" / "NuGet.Config", author("other", other_fp, allow_untrusted_root=True))
    unused = write_config(tmp_path / "unused.config", author("other", other_fp))
    code, doc = run_json(capsys, roots, str(package), "--configfile", unused)
    assert code == 1 and ("NU3018", "error") in [(i["code"], i["level"]) for i in doc["packages"][0]["issues"]]


def test_config_hierarchy_without_configfile(capsys, roots, world: World, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    package = world.sign(world.other.leaf)
    write_config(tmp_path / "work" / "NuGet.Config", author("other", fingerprint(world.other.leaf.asn1), True))
    code, doc = run_json(capsys, roots, str(package))
    assert code == 0 and doc["settings"]["configFiles"][0].endswith("NuGet.Config")


def test_extra_roots_and_at(capsys, world: World, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    package = world.sign(world.other.leaf, timestamp=False)
    bundled_only = ["--revocation", "off", "--format", "json"]
    code, out, _ = run(capsys, str(package), *bundled_only)
    assert code == 1 and "NU3018" in out  # the bundled .NET roots do not know the test roots
    pem = write_certificates(tmp_path / "extra.pem", [world.other.root.certificate])
    code, out, _ = run(capsys, str(package), *bundled_only, "--extra-roots", str(pem))
    assert code == 0 and "bundled .NET SDK roots" in json.loads(out)["trustStore"]
    code, out, _ = run(capsys, str(package), *bundled_only, "--extra-roots", str(pem), "--at", "2999-01-01T00:00:00Z")
    doc = json.loads(out)
    assert code == 1 and doc["settings"]["at"] == "2999-01-01T00:00:00Z"
    assert "NU3037" in [i["code"] for i in doc["packages"][0]["issues"]]  # expired by then, and no timestamp


@pytest.mark.parametrize("args", [
    ["--trust-store", "{missing}"],
    ["--trust-store", "{garbage}"],
    ["--extra-roots", "{garbage}"],
    ["--configfile", "{missing}"],
    ["--configfile", "{bad_config}"],
    ["--at", "yesterday"],
    ["--at", "2024-01-01T00:00:00"],
    ["--revocation", "sometimes"],
    ["--revocation-data", "{missing}"],
])
def test_unusable_input_exits_2(capsys, good: Path, tmp_path: Path, args: list[str]) -> None:  # type: ignore[no-untyped-def]
    garbage = tmp_path / "garbage.pem"
    garbage.write_bytes(b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")
    bad_config = tmp_path / "bad.config"
    bad_config.write_text('<configuration><trustedSigners><author name="x" /></trustedSigners></configuration>')
    names = {"missing": str(tmp_path / "nope"), "garbage": str(garbage), "bad_config": str(bad_config)}
    argv = [a.format(**names) for a in args]
    with pytest.raises(SystemExit) if argv[0] == "--revocation" else _no_exit():
        code, out, err = run(capsys, str(good), *argv)
        assert code == 2 and out == "" and "trustpolicy: error:" in err and "Traceback" not in err
    if argv[0] == "--revocation":
        assert "invalid choice" in capsys.readouterr().err


class _no_exit:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return False


# --- bad packages in a batch ----------------------------------------------------------------------


def test_mixed_batch_never_hides_a_package(capsys, roots, world: World, good: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    truncated = tmp_path / "truncated.nupkg"
    truncated.write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    garbage = tmp_path / "garbage.nupkg"
    garbage.write_bytes(b"PK\x03\x04 this is not really a zip" * 10)
    empty = tmp_path / "empty.nupkg"
    empty.write_bytes(b"")
    paths = [good, truncated, garbage, empty, world.unsigned()]
    code, doc = run_json(capsys, roots, *map(str, paths))
    assert code == 1
    assert [p["path"] for p in doc["packages"]] == list(map(str, paths))
    assert [p["verdict"] for p in doc["packages"]] == ["valid"] + ["invalid"] * 4
    assert doc["summary"] == {"total": 5, "valid": 1, "invalid": 4}
    for package in doc["packages"][1:4]:
        (issue,) = package["issues"]
        assert issue["code"] == "TP0003" and issue["level"] == "error" and package["signed"] is None
        assert issue["message"]
    assert "no end of central directory" in doc["packages"][1]["issues"][0]["message"]

    # An input that is no file at all is unusable input, as for `inspect`: exit 2, the others still judged.
    missing = tmp_path / "missing.nupkg"
    directory = tmp_path / "a-directory.nupkg"
    directory.mkdir()
    code, out, err = run(capsys, str(good), str(missing), str(directory), "--trust-store", roots, "--revocation",
                         "off", "--format", "json")
    assert code == 2 and [p["path"] for p in json.loads(out)["packages"]] == [str(good)]
    assert f"{missing}: no such file" in err and f"{directory}: is a folder" in err


def test_wildcards_expand(capsys, roots, world: World) -> None:  # type: ignore[no-untyped-def]
    first, second = world.sign(stem="glob-a"), world.sign(stem="glob-b")
    assert first.parent == second.parent
    code, doc = run_json(capsys, roots, str(first.parent / "glob-[ab]-[0-9]*.nupkg"))
    assert code == 0 and [p["path"] for p in doc["packages"]] == [str(first), str(second)]


def test_all_flag_is_accepted(capsys, roots, good: Path) -> None:  # type: ignore[no-untyped-def]
    code, doc = run_json(capsys, roots, "--all", str(good))
    assert code == 0 and doc["summary"]["valid"] == 1


def test_config_warnings_are_reported(capsys, roots, world: World, good: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fp = fingerprint(world.pki.leaf.asn1)
    conflict = write_config(tmp_path / "conflict.config", author("a", fp, True) + author("b", fp, False))
    code, out, err = run(capsys, str(good), "--configfile", conflict, "--trust-store", roots, "--revocation", "off",
                         "--format", "json")
    assert code == 0 and "NU3040" in err
    assert any("NU3040" in w for w in json.loads(out)["settings"]["configWarnings"])
