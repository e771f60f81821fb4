"""`trustpolicy trust` and a real NuGet client agree on trustedSigners, both ways.

nuget.exe 5.8.0 (under mono; `bash .ci/install-nuget`) lists what `trustpolicy trust` writes as the
same signers, and trustpolicy reads what `nuget trusted-signers add|remove` writes as the same
signers: authors by certificate fingerprint and by package, repositories with owners, several
signers in one file. Signers are compared as (name, kind, serviceIndex, owners, certificates as
written with their allowUntrustedRoot).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from conftest import identity_of, make_package, run_nuget
from cryptography.hazmat.primitives.serialization import Encoding

from trustpolicy._internal.config import load_trust_settings
from trustpolicy._internal.sign import RepositoryOptions, sign_package
from trustpolicy.cli import main

SERVICE_INDEX = "https://repo.example.test/v3/index.json"
FP_LOWER = "0123456789abcdef" * 4
FP_384 = "1123456789ABCDEF" * 6
EMPTY = '<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n</configuration>\n'

Signer = tuple[str, str, "str | None", tuple[str, ...], tuple[tuple[str, str, bool], ...]]


@pytest.fixture(scope="module")
def packages(pki, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """An author-signed package and an author-signed package with a repository countersignature (owners)."""
    folder = tmp_path_factory.mktemp("interop-packages")
    author = sign_package(make_package(folder / "src" / "A.nupkg", "Interop.Author"), identity=identity_of(pki.leaf),
                          output=folder / "Interop.Author.1.0.0.nupkg", on_warning=lambda w: None)
    repository = identity_of(pki.issue_code_signing("Interop Repository", issuer=pki.intermediate))
    base = sign_package(make_package(folder / "src" / "R.nupkg", "Interop.Repo"), identity=identity_of(pki.leaf),
                        output=folder / "src" / "R.signed.nupkg", on_warning=lambda w: None)
    countersigned = sign_package(base, identity=repository, repository=RepositoryOptions(SERVICE_INDEX, ("alice", "bob")),
                                 output=folder / "Interop.Repo.1.0.0.nupkg", on_warning=lambda w: None)
    return {
        "author": author,
        "countersigned": countersigned,
        "author-fp": hashlib.sha256(pki.leaf.der).hexdigest().upper(),
        "repository-fp": hashlib.sha256(repository.certificate.public_bytes(Encoding.DER)).hexdigest().upper(),
    }


def nuget(nuget_exe: list[str], tmp_path: Path, *args: str) -> str:
    result = run_nuget(nuget_exe, *args, cwd=tmp_path, home=tmp_path / "nuget-home")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def nuget_list(nuget_exe: list[str], tmp_path: Path, config: Path) -> list[Signer]:
    """`nuget trusted-signers list` parsed: NuGet's own reading of the file."""
    out = nuget(nuget_exe, tmp_path, "trusted-signers", "list", "-ConfigFile", str(config))
    signers: list[Signer] = []
    for block in re.split(r"\n\s*\d+\.\s+", "\n" + out)[1:]:
        lines = block.splitlines()
        name, kind = re.fullmatch(r"(.*) \[(author|repository)\]", lines[0].strip()).groups()  # type: ignore[union-attr]
        index = next((line.split(":", 1)[1].strip() for line in lines if line.strip().startswith("Service Index:")), None)
        owners_line = next((line.split(":", 1)[1] for line in lines if line.strip().startswith("Trusted owners:")), None)
        owners = tuple(o.strip() for o in owners_line.split(";")) if owners_line is not None else ()
        certificates = tuple(
            (m.group(2), m.group(3), m.group(1) is not None)
            for line in lines
            if (m := re.fullmatch(r"\s*(\[U\] )?(SHA\d+) - (\S+)\s*", line))
        )
        signers.append((name, kind, index, owners, certificates))
    return signers


def ours(config: Path) -> list[Signer]:
    """trustpolicy's reading of the same file."""
    return [
        (s.name, s.kind, s.service_index, s.owners,
         tuple((c.hash_algorithm, c.written_fingerprint, c.written_allow_untrusted_root) for c in s.certificates))
        for s in load_trust_settings(configfile=config).signers
    ]


def trust(*argv: str) -> None:
    assert main(["trust", *argv]) == 0


def test_what_trustpolicy_writes_nuget_reads_as_the_same_signers(
    nuget_exe: list[str], packages: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "NuGet.Config"
    trust("certificate", "My Author", FP_LOWER, "--allow-untrusted-root", "--configfile", str(config))
    trust("certificate", "My Author", FP_384, "--algorithm", "SHA384", "--configfile", str(config))
    trust("author", "signed author", str(packages["author"]), "--configfile", str(config))
    trust("repository", "repo", str(packages["countersigned"]), "--owners", "alice;bob", "--configfile", str(config))
    capsys.readouterr()
    expected = [
        ("My Author", "author", None, (), (("SHA256", FP_LOWER.upper(), True), ("SHA384", FP_384, False))),
        ("signed author", "author", None, (), (("SHA256", packages["author-fp"], False),)),
        ("repo", "repository", SERVICE_INDEX, ("alice", "bob"), (("SHA256", packages["repository-fp"], False),)),
    ]
    assert ours(config) == expected
    assert nuget_list(nuget_exe, tmp_path, config) == expected

    trust("remove", "signed author", "--configfile", str(config))
    assert nuget_list(nuget_exe, tmp_path, config) == [expected[0], expected[2]] == ours(config)


def test_what_nuget_writes_trustpolicy_reads_as_the_same_signers(
    nuget_exe: list[str], packages: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "NuGet.Config"
    config.write_text(EMPTY)
    cfg = ("-ConfigFile", str(config))
    nuget(nuget_exe, tmp_path, "trusted-signers", "add", "-Name", "My Author", "-CertificateFingerprint", FP_LOWER,
          "-FingerprintAlgorithm", "SHA256", "-AllowUntrustedRoot", *cfg)
    nuget(nuget_exe, tmp_path, "trusted-signers", "add", "-Name", "My Author", "-CertificateFingerprint", FP_384,
          "-FingerprintAlgorithm", "SHA384", *cfg)
    nuget(nuget_exe, tmp_path, "trusted-signers", "add", str(packages["author"]), "-Name", "signed author", "-Author", *cfg)
    nuget(nuget_exe, tmp_path, "trusted-signers", "add", str(packages["countersigned"]), "-Name", "repo", "-Repository",
          "-Owners", "alice;bob", *cfg)
    expected = [
        # NuGet keeps the fingerprint as typed (lower case): allowUntrustedRoot is then not honoured, lint says so
        ("My Author", "author", None, (), (("SHA256", FP_LOWER, True), ("SHA384", FP_384, False))),
        ("signed author", "author", None, (), (("SHA256", packages["author-fp"], False),)),
        ("repo", "repository", SERVICE_INDEX, ("alice", "bob"), (("SHA256", packages["repository-fp"], False),)),
    ]
    assert nuget_list(nuget_exe, tmp_path, config) == expected
    assert ours(config) == expected
    assert main(["trust", "list", "--configfile", str(config)]) == 0
    listed = capsys.readouterr().out
    assert f"[U] SHA256 - {FP_LOWER}" in listed and "Owners: alice; bob" in listed

    nuget(nuget_exe, tmp_path, "trusted-signers", "remove", "-Name", "My Author", *cfg)
    assert ours(config) == expected[1:] == nuget_list(nuget_exe, tmp_path, config)
    # and a file NuGet wrote (BOM, its own indentation) stays readable to NuGet after trustpolicy edits it
    trust("remove", "repo", "--configfile", str(config))
    trust("certificate", "repo2", packages["repository-fp"], "--configfile", str(config))
    capsys.readouterr()
    assert config.read_bytes().startswith(b"\xef\xbb\xbf")
    assert nuget_list(nuget_exe, tmp_path, config) == ours(config) == [
        expected[1], ("repo2", "author", None, (), (("SHA256", packages["repository-fp"], False),))]
