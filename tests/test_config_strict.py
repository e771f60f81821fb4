"""The strict reading of NuGet.Config by `check` and `verify`: a value NuGet would misread or fail
on is refused before anything is verified (exit 2, the file, the line, the allowed values), and no
config value reaches a verification worker as an exception."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest
from conftest import identity_of, make_package
from cryptography.hazmat.primitives.serialization import Encoding
from hypothesis import HealthCheck, given, settings, strategies as st

from trustpolicy._internal.config.hierarchy import MACHINE_DIR_ENV, USER_DIR_ENV
from trustpolicy._internal.sign import RepositoryOptions, sign_package
from trustpolicy.cli import main

A = "A" * 64


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(USER_DIR_ENV, "")
    monkeypatch.setenv(MACHINE_DIR_ENV, "")
    return tmp_path


def write_config(path: Path, signers: str, mode: str | None = "accept") -> Path:
    mode_item = f'<config><add key="signatureValidationMode" value={quoteattr(mode)} /></config>' if mode is not None else ""
    path.write_text(f'<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n  {mode_item}\n'
                    f"  <trustedSigners>\n{signers}\n  </trustedSigners>\n</configuration>\n", encoding="utf-8")
    return path


def cert(fp: str = A, alg: str = "SHA256", allow: str = "false") -> str:
    return f'<certificate fingerprint="{fp}" hashAlgorithm="{alg}" allowUntrustedRoot="{allow}" />'


def folder_of_packages(folder: Path, count: int) -> Path:
    for number in range(count):
        make_package(folder / f"Pkg{number}.1.0.0.nupkg", f"Pkg{number}")
    return folder


def check(*argv: str) -> int:
    return main(["check", *argv, "--no-cache", "--revocation", "off", "--format", "json"])


# -- SHA-1 and unknown hash algorithms --------------------------------------------------------------


@pytest.mark.parametrize(
    ("algorithm", "fingerprint", "code"),
    [("SHA1", "AB" * 20, "NU3043"), ("SHA1", A, "NU3043"), ("sha1", "AB" * 20, "NU3043"), ("MD5", A, "TP1020")],
)
def test_check_refuses_a_certificate_nuget_cannot_use_before_any_worker_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], algorithm: str, fingerprint: str, code: str
) -> None:
    """Regression: a SHA1 entry crashed every verification worker (ValueError, BrokenProcessPool, exit 3)."""
    graph = folder_of_packages(tmp_path / "graph", 9)  # >= 8 packages and 2 jobs: the process pool
    config = write_config(tmp_path / "NuGet.Config", f'<author name="ok">{cert()}</author>\n<author name="old">\n{cert(fingerprint, algorithm)}\n</author>')
    assert check(str(graph), "--configfile", str(config), "--jobs", "2") == 2
    err = capsys.readouterr().err
    shown = "SHA1" if code == "NU3043" else algorithm  # NuGet's enum reads "sha1" as SHA1
    assert f"{config}:7: {code}: author 'old' has a certificate with hashAlgorithm {shown!r}" in err
    assert "SHA256" in err and "Traceback" not in err and "internal error" not in err


def test_verify_refuses_a_sha1_entry_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    package = make_package(tmp_path / "One.1.0.0.nupkg", "One")
    config = write_config(tmp_path / "NuGet.Config", f'<author name="old">\n{cert("AB" * 20, "SHA1")}</author>')
    assert main(["verify", str(package), "--configfile", str(config), "--revocation", "off"]) == 2
    assert f"{config}:6: NU3043:" in capsys.readouterr().err


def test_an_allow_list_built_anyway_skips_unusable_entries_instead_of_raising() -> None:
    from trustpolicy._internal.config.nugetconfig import parse_config_bytes
    from trustpolicy._internal.verify.allowlist import compile_trusted_signers

    raw = write_config(Path(tempfile.mkdtemp()) / "c.config", f'<author name="a">{cert("AB" * 20, "SHA1")}{cert(alg="MD5")}{cert()}</author>').read_bytes()
    (signer,) = parse_config_bytes(raw, "c.config").signers
    assert [(e.hash_algorithm, e.fingerprint) for e in compile_trusted_signers([signer])] == [("sha256", A)]


# -- signatureValidationMode that is neither accept nor require ---------------------------------------


@pytest.mark.parametrize("value", ["requir", "Required", "", "0", "accept,require"])
def test_check_refuses_an_invalid_mode_unless_mode_is_given(tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str) -> None:
    graph = folder_of_packages(tmp_path / "graph", 1)
    config = write_config(tmp_path / "NuGet.Config", f'<author name="a">{cert()}</author>', mode=value)
    assert check(str(graph), "--configfile", str(config)) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"trustpolicy: error: {config}:3: TP1018: signatureValidationMode is {value!r}, which is neither accept nor require")
    assert err.endswith('NuGet silently reads it as accept. Set it to "accept" or "require", or pass --mode.') and "\n" not in err
    # --mode says what to enforce: the run goes ahead (the unsigned package fails require: exit 1)
    assert check(str(graph), "--configfile", str(config), "--mode", "require") == 1
    assert check(str(graph), "--configfile", str(config), "--mode", "accept") == 0


def test_trust_context_keeps_nugets_reading_and_refuses_without_a_mode(tmp_path: Path) -> None:
    from trustpolicy.context import TrustContext, TrustOptions
    from trustpolicy.errors import ConfigError

    config = write_config(tmp_path / "NuGet.Config", f'<author name="a">{cert()}</author>', mode="requir")
    with pytest.raises(ConfigError) as caught:
        TrustContext.build(TrustOptions(configfile=str(config)))
    assert (caught.value.path, caught.value.line) == (str(config), 3)
    context = TrustContext.build(TrustOptions(configfile=str(config), mode="require"))
    assert (context.mode, context.config.mode, context.config.mode_value) == ("require", "accept", "requir")


def test_check_finds_the_invalid_mode_in_the_hierarchy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = folder_of_packages(tmp_path / "repo" / "src" / "packages", 1)
    config = write_config(tmp_path / "repo" / "nuget.config", f'<author name="a">{cert()}</author>', mode="requier")
    assert check(str(project)) == 2
    assert f"{config}:3: TP1018" in capsys.readouterr().err


def test_verify_fails_closed_on_an_invalid_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """verify reads the config's mode for its "require needs signers" rule: it cannot guess, so it refuses."""
    package = make_package(tmp_path / "One.1.0.0.nupkg", "One")
    config = write_config(tmp_path / "NuGet.Config", "", mode="requir")
    assert main(["verify", str(package), "--configfile", str(config), "--revocation", "off"]) == 2
    assert f"{config}:3: TP1018" in capsys.readouterr().err


def test_valid_modes_and_no_mode_are_accepted(tmp_path: Path) -> None:
    graph = folder_of_packages(tmp_path / "graph", 1)
    for mode, expected in (("Accept", 0), (" require ", 1), (None, 0)):
        assert check(str(graph), "--configfile", str(write_config(tmp_path / "NuGet.Config", f'<author name="a">{cert()}</author>', mode))) == expected


# -- fuzz: no config value reaches the verifier as an exception ---------------------------------------


@pytest.fixture(scope="module")
def small_graph(pki, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An unsigned, an author-signed and a countersigned package: every allow-list path runs."""
    folder, sources = tmp_path_factory.mktemp("fuzz-graph"), tmp_path_factory.mktemp("fuzz-sources")
    make_package(folder / "Plain.1.0.0.nupkg", "Plain")
    sign_package(make_package(sources / "Signed.nupkg", "Signed"), identity=identity_of(pki.leaf),
                 output=folder / "Signed.1.0.0.nupkg", on_warning=lambda w: None)
    author_signed = sign_package(make_package(sources / "Counter.nupkg", "Counter"), identity=identity_of(pki.leaf),
                                 output=sources / "Counter.signed.nupkg", on_warning=lambda w: None)
    repository = identity_of(pki.issue_code_signing("Fuzz Repository", issuer=pki.intermediate))
    sign_package(author_signed, identity=repository, repository=RepositoryOptions("https://repo.test/v3/index.json", ("alice", "bob")),
                 output=folder / "Counter.1.0.0.nupkg", on_warning=lambda w: None)
    _LEAF[:] = [hashlib.sha256(der).hexdigest().upper() for der in (pki.leaf.der, repository.certificate.public_bytes(Encoding.DER))]
    return folder


_LEAF: list[str] = ["", ""]  # the SHA-256 fingerprints of the author and repository certificates (set by small_graph)


_attribute_text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["", " ", "SHA256", "sha384", "SHA512", "SHA1", "sha-256", "1", "4", "-1", "99999999999999999999",
                     "SHA256,SHA384", "true", "false", "TRUE", "maybe", "\u0130", "\u00df" * 32, "0" * 64, "A" * 64]),
)
_xml_text = _attribute_text.map(lambda s: "".join(ch for ch in s if ch in "\t\n\r" or (" " <= ch <= "\ud7ff") or ("\ue000" <= ch <= "\ufffd")))


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    mode=st.one_of(st.none(), st.sampled_from(["accept", "require", "Require"]), _xml_text),
    kind=st.sampled_from(["author", "repository"]),
    name=_xml_text,
    index=st.one_of(st.just("https://repo.test/v3/index.json"), _xml_text),
    fingerprint=st.one_of(st.sampled_from(["<leaf>", "<leaf-lower>", "<repository>"]), _xml_text),
    algorithm=st.one_of(st.sampled_from(["SHA256", "sha256", " Sha256 ", "SHA384", "SHA512"]), _xml_text),
    allow=st.one_of(st.sampled_from(["true", "false", "True"]), _xml_text),
    owners=st.one_of(st.none(), st.sampled_from(["alice", "bob;alice", "carol"]), _xml_text),
    cli_mode=st.sampled_from([None, "accept", "require", "audit"]),
)
def test_fuzzed_config_values_never_reach_the_verifier_as_an_exception(
    small_graph: Path, capsys: pytest.CaptureFixture[str], mode: str | None, kind: str, name: str, index: str,
    fingerprint: str, algorithm: str, allow: str, owners: str | None, cli_mode: str | None,
) -> None:
    """Values are valid about half the time, so that the allow lists and the verifier run on them."""
    fingerprint = {"<leaf>": _LEAF[0], "<leaf-lower>": _LEAF[0].lower(), "<repository>": _LEAF[1]}.get(fingerprint, fingerprint)
    attributes = f"name={quoteattr(name)}" + (f" serviceIndex={quoteattr(index)}" if kind == "repository" else "")
    certificate = f"<certificate fingerprint={quoteattr(fingerprint)} hashAlgorithm={quoteattr(algorithm)} allowUntrustedRoot={quoteattr(allow)} />"
    owner_element = f"<owners>{_escape(owners)}</owners>" if owners is not None and kind == "repository" else ""
    signers = f"<{kind} {attributes}>{certificate}{owner_element}</{kind}>"
    with tempfile.TemporaryDirectory() as folder:
        config = write_config(Path(folder) / "NuGet.Config", signers, mode)
        argv = [str(small_graph), "--configfile", str(config)] + (["--mode", cli_mode] if cli_mode else [])
        code = check(*argv)
    err = capsys.readouterr().err
    assert code in (0, 1, 2), err
    assert "Traceback" not in err and "internal error" not in err
    if code == 2:  # unusable input names the config file
        assert str(config) in err


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@pytest.fixture(scope="module")
def lock_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("fuzz-lock") / "App"
    project.mkdir()
    (project / "packages.lock.json").write_text(
        '{"version": 1, "dependencies": {"net8.0": {"Lib": {"type": "Direct", "requested": "[1.0.0, )", '
        '"resolved": "1.0.0", "contentHash": "AAAA"}}}}')
    return project


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(folder=st.one_of(_xml_text, st.sampled_from(["/dev/null", "/etc/passwd", "%HOME%", "..", "a/" * 2000, "\\\\server\\share"])),
       key=st.sampled_from(["globalPackagesFolder", "repositoryPath", "GLOBALPACKAGESFOLDER"]))
def test_fuzzed_package_folder_values_never_raise(lock_project: Path, capsys: pytest.CaptureFixture[str], folder: str, key: str) -> None:
    """The package folders come from the same reader: whatever the value, the walk reports, never raises."""
    config = lock_project.parent / "nuget.config"
    config.write_text(f"<configuration><config><add key={quoteattr(key)} value={quoteattr(folder)} /></config></configuration>",
                      encoding="utf-8")
    code = check(str(lock_project))
    err = capsys.readouterr().err
    assert code in (1, 2), err  # the package cannot be found anywhere: a finding, or an unusable input named
    assert "Traceback" not in err and "internal error" not in err
