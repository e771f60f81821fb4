"""Verdicts on real packages signed by NuGet's own tooling (tests/data/README.md).

nuget.org and Microsoft signatures chain to roots of the bundled .NET SDK bundles; the test-chain
packages carry their own (untrusted) roots, which some tests extract from the signature and pass as
extra roots, as the README says. No network: revocation is off, or "online" with a zero network
budget (revocation unknown, deterministically).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import make_verifier
from datafiles import SIGNED, UNSIGNED, ZIP_EDGE

from trustpolicy._internal.archive import PackageArchive
from trustpolicy._internal.chain import ChainValidator
from trustpolicy._internal.revocation import RevocationOptions
from trustpolicy._internal.signature import parse_signature
from trustpolicy._internal.truststore import TrustStore
from trustpolicy._internal.verify import ACCEPT, REQUIRE, VERIFY
from trustpolicy.models import PackageVerdict, Status

PRESETS = {"accept": ACCEPT, "require": REQUIRE, "verify": VERIFY}
SIGNED_PACKAGES = sorted(p.name for p in SIGNED.glob("*.nupkg"))


@pytest.fixture(scope="module")
def no_network(tmp_path_factory: pytest.TempPathFactory) -> RevocationOptions:
    """Online semantics, but nothing is fetched and no user cache is read: revocation is unknown."""
    return RevocationOptions("online", budget=0, cache_dir=tmp_path_factory.mktemp("empty-revocation-cache"))


@pytest.fixture(scope="module")
def bundled() -> TrustStore:
    return TrustStore.bundled()


@pytest.fixture(scope="module")
def chains(bundled: TrustStore):  # type: ignore[no-untyped-def]
    with ChainValidator(bundled, RevocationOptions("off")) as validator:
        yield validator


def verify(name: str | Path, preset: str = "verify", *, chains=None, store: TrustStore | None = None,  # type: ignore[no-untyped-def]
           revocation: RevocationOptions | None = None, **kw) -> PackageVerdict:
    path = name if isinstance(name, Path) else SIGNED / name
    if chains is None:
        chains = ChainValidator(store or TrustStore.bundled(), revocation or RevocationOptions("off"))
    return make_verifier(PRESETS[preset], chains, **kw).verify_package(path)


def own_roots(name: str) -> list:  # type: ignore[type-arg]
    """The self-issued certificates a package's signature carries (signer and TSA chains)."""
    primary = parse_signature(PackageArchive.open(SIGNED / name).read_signature())
    certs = list(primary.certificates)
    for timestamp in primary.timestamps:
        certs += timestamp.certificates
    return [c for c in certs if c.self_issued]


def with_own_roots(name: str) -> TrustStore:
    return TrustStore.bundled().with_extra_roots(own_roots(name), source=name)


def codes(verdict: PackageVerdict, level: str | None = None) -> set[str]:
    return set(verdict.codes(level))


# --- real nuget.org / Microsoft signatures --------------------------------------------------------


@pytest.mark.parametrize("preset", PRESETS)
@pytest.mark.parametrize("name", ["nuget.versioning.5.0.0.nupkg", "TestPackage.AuthorSigned.1.0.0.nupkg"])
def test_real_signatures_are_valid_with_the_sdk_bundles(chains, name: str, preset: str) -> None:  # type: ignore[no-untyped-def]
    verdict = verify(name, preset, chains=chains)
    assert verdict.verdict == "valid" and verdict.issues == ()
    assert verdict.signatures[0].timestamp is not None


def test_nuget_versioning_report(chains) -> None:  # type: ignore[no-untyped-def]
    verdict = verify("nuget.versioning.5.0.0.nupkg", chains=chains)
    assert verdict.id == "NuGet.Versioning" and verdict.version.startswith("5.0.0+")  # as the nuspec says
    author, repository = verdict.signatures
    assert (author.kind, author.placement) == ("author", "primary") and "Microsoft Corporation" in author.subject
    assert (repository.kind, repository.placement) == ("repository", "countersignature")
    assert repository.service_index == "https://api.nuget.org/v3/index.json"
    assert repository.owners == ("Microsoft", "nuget")
    assert repository.status == Status.VALID  # the verify command evaluates it (IfExists)
    assert len(author.fingerprints["SHA256"]) == 64


@pytest.mark.parametrize("preset", ["require", "verify"])
def test_unknown_revocation_is_a_warning_in_require_and_verify(no_network: RevocationOptions, preset: str) -> None:
    verdict = verify("nuget.versioning.5.0.0.nupkg", preset, revocation=no_network)
    assert verdict.verdict == "valid" and "NU3018" in codes(verdict, "warning") and not verdict.errors


def test_unknown_revocation_is_silent_in_accept(no_network: RevocationOptions) -> None:
    verdict = verify("nuget.versioning.5.0.0.nupkg", "accept", revocation=no_network)
    assert verdict.verdict == "valid" and verdict.issues == ()


def test_nuget_versioning_is_untrusted_without_the_sdk_roots() -> None:
    empty = TrustStore([], [], "no roots")
    verdict = verify("nuget.versioning.5.0.0.nupkg", store=empty)
    assert verdict.verdict == "invalid" and {"NU3018", "NU3028"} <= codes(verdict, "error")


# --- tampering ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SIGNED_PACKAGES)
def test_one_byte_changed_in_a_file_entry_is_nu3008(chains, tmp_path: Path, name: str) -> None:  # type: ignore[no-untyped-def]
    copy = tmp_path / name
    shutil.copyfile(SIGNED / name, copy)
    archive = PackageArchive.open(copy)
    target = max((e for e in archive.entries if not e.names_signature), key=lambda e: e.compressed_size)
    raw = bytearray(copy.read_bytes())
    name_len, extra_len = int.from_bytes(raw[target.lfh_offset + 26:target.lfh_offset + 28], "little"), \
        int.from_bytes(raw[target.lfh_offset + 28:target.lfh_offset + 30], "little")
    data_at = target.lfh_offset + 30 + name_len + extra_len
    raw[data_at + target.compressed_size // 2] ^= 0x01
    copy.write_bytes(bytes(raw))
    for preset in PRESETS:
        verdict = verify(copy, preset, chains=chains)
        assert verdict.verdict == "invalid" and "NU3008" in codes(verdict, "error")
        assert next(s for s in verdict.steps if s.step == "integrity").status == Status.SUSPECT
    assert verify(SIGNED / name, "verify", chains=chains).codes().count("NU3008") == 0  # the original is intact


# --- test chains: untrusted by default, with their own roots as described -------------------------


@pytest.mark.parametrize("name", ["Test.Reposigned.1.0.0.nupkg", "Test.RepoCountersigned.1.0.0.nupkg"])
def test_repository_signed_test_packages(chains, name: str) -> None:  # type: ignore[no-untyped-def]
    verdict = verify(name, chains=chains)
    assert verdict.verdict == "invalid" and codes(verdict, "error") == {"NU3018"}
    assert "NU3027" in codes(verdict, "warning")
    assert verdict.signatures[0].kind == "repository"
    assert verdict.signatures[0].service_index == "https://v3ServiceIndex.test/api/index"
    assert verdict.signatures[0].owners == ()
    trusted = verify(name, store=with_own_roots(name))
    assert trusted.verdict == "valid" and [i.code for i in trusted.issues] == ["NU3027"]


def test_signed_package_expired_self_signed(chains) -> None:  # type: ignore[no-untyped-def]
    verdict = verify("SignedPackage.1.0.0.nupkg", chains=chains)
    assert verdict.verdict == "invalid"
    assert {"NU3018", "NU3037"} <= codes(verdict, "error") and "NU3027" in codes(verdict, "warning")


def test_unavailable_crl_package(no_network: RevocationOptions) -> None:
    name = "UnavailableCrlPackage.nupkg"
    assert "NU3018" in codes(verify(name), "error")  # untrusted root by default
    store = with_own_roots(name)
    assert verify(name, "accept", store=store, revocation=no_network).issues == ()
    for preset in ("require", "verify"):
        verdict = verify(name, preset, store=store, revocation=no_network)
        assert verdict.verdict == "valid" and "NU3018" in codes(verdict, "warning") and not verdict.errors


def test_expired_primary_and_timestamp_certificates(no_network: RevocationOptions) -> None:
    name = "ExpiredPrimaryAndTimestampCertificatesWithUnavailableRevocationInfo.nupkg"
    assert verify(name).verdict == "invalid"  # untrusted root by default
    store = with_own_roots(name)
    verdict = verify(name, "require", store=store, revocation=no_network)
    assert verdict.verdict == "valid" and codes(verdict) == {"NU3018"} and not verdict.errors
    assert verify(name, "verify", store=store).verdict == "valid"  # valid on its timestamp


def test_timestamp_gen_time_outside_tsa_validity(chains) -> None:  # type: ignore[no-untyped-def]
    verdict = verify("TimestampInvalidGenTimePackage.nupkg", chains=chains)
    assert verdict.verdict == "invalid" and "NU3036" in codes(verdict, "error")
    assert len(verdict.errors) == 3  # scenario 52: NU3036, then NU3018 and NU3037 without the timestamp


def test_untrusted_timestamp(chains) -> None:  # type: ignore[no-untyped-def]
    verdict = verify("UntrustedTimestampPackage.nupkg", chains=chains)
    assert verdict.verdict == "invalid" and "NU3028" in codes(verdict, "error")
    assert len(verdict.errors) == 3  # scenario 50: NU3028, NU3018, NU3037


# --- unsigned and zip edge cases ------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(p.name for p in UNSIGNED.glob("*.nupkg")))
def test_unsigned_packages(chains, name: str) -> None:  # type: ignore[no-untyped-def]
    path = UNSIGNED / name
    assert verify(path, "accept", chains=chains).issues == ()
    for preset in ("require", "verify"):
        verdict = verify(path, preset, chains=chains)
        assert verdict.verdict == "invalid" and verdict.codes() == ["NU3004"] and verdict.signed is False


@pytest.mark.parametrize(("name", "code"), [
    ("SignatureFileWithDeflateCompressionMethodAndDefaultCompressionLevel.zip", "NU3005"),
    ("SignatureFileWithFakeContent.zip", "NU3003"),
    ("SignatureFileWithUppercaseFileName.zip", "NU3004"),
])
def test_zip_edge_cases(chains, name: str, code: str) -> None:  # type: ignore[no-untyped-def]
    verdict = verify(ZIP_EDGE / name, chains=chains)
    assert verdict.verdict == "invalid" and verdict.codes() == [code]
