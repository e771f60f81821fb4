"""`trust author` / `trust repository` from real signed packages (scenarios 99-100)."""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import pytest
from asn1crypto import cms
from datafiles import SIGNED, UNSIGNED

from trustpolicy._internal.config import load_trust_settings
from trustpolicy.cli import main

NUGET_VERSIONING = SIGNED / "nuget.versioning.5.0.0.nupkg"  # author (Microsoft) + nuget.org countersignature
REPOSIGNED = SIGNED / "Test.Reposigned.1.0.0.nupkg"  # repository primary signature
AUTHOR_SIGNED = SIGNED / "TestPackage.AuthorSigned.1.0.0.nupkg"
UNSIGNED_PACKAGE = UNSIGNED / "PackageWithTextFile.1.0.nupkg"

# Independent facts (docs/policy.md section 3): Microsoft's author certificate and nuget.org's 2018-2021
# repository certificate, as NuGet documents their SHA-256 fingerprints.
MICROSOFT = "3F9001EA83C560D712C24CF213C3D312CB3BFF51EE89435D3430BD06B5D0EECE"
NUGET_ORG_2018 = "0E5F38F57DC1BCC806D8494F4F90FBCEDD988B46760709CBEEC6F4219AA6157D"


def run(*argv: str) -> int:
    return main(["trust", *argv])


def test_trust_author_writes_the_author_certificate(tmp_path: Path) -> None:
    config = tmp_path / "NuGet.Config"
    assert run("author", "microsoft", str(NUGET_VERSIONING), "--configfile", str(config)) == 0
    (signer,) = load_trust_settings(configfile=config).signers
    assert (signer.kind, signer.name) == ("author", "microsoft")
    assert [(c.fingerprint, c.hash_algorithm, c.written_allow_untrusted_root) for c in signer.certificates] == [
        (MICROSOFT, "SHA256", False)
    ]
    assert f'<certificate fingerprint="{MICROSOFT}" hashAlgorithm="SHA256" allowUntrustedRoot="false" />' in config.read_text()


def test_author_fingerprint_is_the_leaf_of_the_package_signature(tmp_path: Path) -> None:
    """Cross-check with plain asn1crypto: the fingerprint is the Microsoft leaf in the signature."""
    with zipfile.ZipFile(AUTHOR_SIGNED) as z:
        signed_data = cms.ContentInfo.load(z.read(".signature.p7s"))["content"]
    digests = {
        hashlib.sha256(c.chosen.dump()).hexdigest().upper()
        for c in signed_data["certificates"]
        if c.chosen.subject.native.get("common_name") == "Microsoft Corporation"
    }
    config = tmp_path / "c.config"
    assert run("author", "ms", str(AUTHOR_SIGNED), "--allow-untrusted-root", "--configfile", str(config)) == 0
    cert = load_trust_settings(configfile=config).signers[0].certificates[0]
    assert cert.fingerprint in digests and cert.allow_untrusted_root is True


def test_trust_author_twice_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "NuGet.Config"
    assert run("author", "microsoft", str(NUGET_VERSIONING), "--configfile", str(config)) == 0
    before = config.read_bytes()
    assert run("author", "microsoft", str(AUTHOR_SIGNED), "--configfile", str(config)) == 2
    assert "already exists" in capsys.readouterr().err
    assert config.read_bytes() == before


def test_trust_repository_uses_the_countersignature(tmp_path: Path) -> None:
    config = tmp_path / "NuGet.Config"
    assert run("repository", "nuget.org", str(NUGET_VERSIONING), "--owners", "Microsoft; nuget", "--configfile", str(config)) == 0
    (signer,) = load_trust_settings(configfile=config).signers
    assert signer.kind == "repository"
    assert signer.service_index == "https://api.nuget.org/v3/index.json"
    assert signer.owners == ("Microsoft", "nuget")
    assert [c.fingerprint for c in signer.certificates] == [NUGET_ORG_2018]


def test_trust_repository_from_a_repository_primary_signature(tmp_path: Path) -> None:
    config = tmp_path / "NuGet.Config"
    assert run("repository", "test", str(REPOSIGNED), "--configfile", str(config)) == 0
    (signer,) = load_trust_settings(configfile=config).signers
    assert signer.service_index == "https://v3ServiceIndex.test/api/index"
    assert signer.owners == ()


def test_same_repository_twice_fails_even_under_another_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "NuGet.Config"
    assert run("repository", "one", str(REPOSIGNED), "--configfile", str(config)) == 0
    before = config.read_bytes()
    assert run("repository", "two", str(REPOSIGNED), "--configfile", str(config)) == 2
    assert "already trusts https://v3ServiceIndex.test/api/index" in capsys.readouterr().err
    assert config.read_bytes() == before


@pytest.mark.parametrize(
    ("verb", "package", "message"),
    [
        ("author", REPOSIGNED, "is not an author signature (it is repository)"),
        ("repository", AUTHOR_SIGNED, "neither a repository signature nor a repository countersignature"),
        ("author", UNSIGNED_PACKAGE, "not signed"),
        ("author", Path(__file__), "zip"),
    ],
)
def test_wrong_packages_are_refused_and_nothing_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], verb: str, package: Path, message: str
) -> None:
    config = tmp_path / "NuGet.Config"
    assert run(verb, "x", str(package), "--configfile", str(config)) == 2
    err = capsys.readouterr().err
    assert message in err and str(package) in err
    assert not config.exists()
