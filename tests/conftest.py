"""Shared pytest fixtures. Helpers append their own sections; keep each section self-contained."""

from __future__ import annotations

# --- test PKI and timestamp servers (trustpolicy.testing; used by sign, verify, revocation tests) ---
import os
import shutil
import subprocess
import zipfile
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path

import pytest

from trustpolicy._internal import clock
from trustpolicy._internal.chain import ChainValidator
from trustpolicy._internal.config import TrustedSigner
from trustpolicy._internal.sign import SigningIdentity
from trustpolicy._internal.verify import VerificationSettings, Verifier
from trustpolicy._internal.verify.allowlist import RepositorySignatures, compose, normalize_sha256
from trustpolicy.testing.pki import Issued, TestPKI
from trustpolicy.testing.tsa import TimestampServer


def make_package(path: Path, package_id: str = "Test.Package", version: str = "1.0.0",
                 files: dict[str, bytes] | None = None) -> Path:
    """A small unsigned .nupkg (deflated entries, like `dotnet pack`)."""
    nuspec = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">'
        f"<metadata><id>{package_id}</id><version>{version}</version>"
        "<authors>trustpolicy</authors><description>test package</description></metadata></package>"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"{package_id}.nuspec", nuspec)
        for name, data in (files or {"lib/net8.0/Test.dll": b"MZ" + bytes(range(256)) * 8}).items():
            z.writestr(name, data)
    return path


def make_verifier(settings: VerificationSettings, chains: ChainValidator, *, at: datetime | None = None,
                  trusted_signers: Iterable[TrustedSigner] = (), require_non_empty: bool = False,
                  certificate_fingerprints: Iterable[str] = (), repository: RepositorySignatures | None = None) -> Verifier:
    """A Verifier over a test chain validator: the preset with the validator's revocation mode (and a
    source's restrictions), the allow lists composed as a TrustContext composes them."""
    settings = settings.replace(revocation_mode=chains.revocation.mode)
    if repository is not None:
        settings = repository.restrict(settings)
    allow_lists = compose(trusted_signers, require_non_empty=require_non_empty,
                          fingerprints=[normalize_sha256(f) for f in certificate_fingerprints], repository=repository)
    return Verifier(settings, chains=chains, at=at or clock.now(), allow_lists=allow_lists)


def identity_of(issued: Issued) -> SigningIdentity:
    """SigningIdentity for a TestPKI certificate, with its chain up to the root."""
    return SigningIdentity(issued.certificate, issued.private_key, issued.chain[1:])


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    """One PKI for the session: pki.root -> pki.intermediate -> pki.leaf; pki.tsa_root -> pki.tsa."""
    return TestPKI(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="session")
def tsa_server(pki: TestPKI) -> Iterator[TimestampServer]:
    """A well-behaved timestamp server for the session. Do not change its knobs: use make_tsa."""
    with TimestampServer(pki.tsa) as server:
        yield server


@pytest.fixture
def make_tsa(pki: TestPKI) -> Iterator:
    """Factory for per-test timestamp servers with knobs: make_tsa(wrong_nonce=True).url"""
    servers: list[TimestampServer] = []

    def factory(tsa: Issued | None = None, **knobs: object) -> TimestampServer:
        server = TimestampServer(tsa or pki.tsa, **knobs).start()  # type: ignore[arg-type]
        servers.append(server)
        return server

    yield factory
    for server in servers:
        server.stop()


@pytest.fixture
def signing_identity(pki: TestPKI) -> SigningIdentity:
    return identity_of(pki.leaf)


@pytest.fixture
def unsigned_package(tmp_path: Path) -> Path:
    return make_package(tmp_path / "Test.Package.1.0.0.nupkg")


# --- a real NuGet client: nuget.exe under mono (installed by .ci/install-nuget) ---------------------

NUGET_EXE_DEFAULT = Path(__file__).resolve().parents[1] / ".ci" / "tools" / "node_modules" / "nuget-exe" / "nuget-5.8.0.exe"


@pytest.fixture(scope="session")
def nuget_exe() -> list[str]:
    """The command that runs nuget.exe 5.8.0 (`mono nuget.exe`). Skips where it is not installed, unless
    TRUSTPOLICY_REQUIRE_NUGET=1 (CI), where a missing client fails the test instead."""
    exe = Path(os.environ.get("TRUSTPOLICY_NUGET_EXE") or NUGET_EXE_DEFAULT)
    mono = shutil.which("mono")
    if mono is None or not exe.is_file():
        message = f"nuget.exe under mono is not installed ({exe}); run: bash .ci/install-nuget"
        if os.environ.get("TRUSTPOLICY_REQUIRE_NUGET") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return [mono, str(exe)]


def run_nuget(command: list[str], *args: str, cwd: Path, home: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run nuget.exe with its own HOME (its user config and caches), never the real one."""
    env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "NUGET_PACKAGES": str(home / "packages"), "MONO_ENV_OPTIONS": ""}
    return subprocess.run([*command, *args, "-NonInteractive"], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


# --- trustpolicy serve: the packages and policy its tests share (tests/serve_support.py) -------------


@pytest.fixture(scope="session")
def serve_world(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """Signed test packages of every kind and a require-mode config trusting Contoso and the test feed."""
    from serve_support import build_world

    return build_world(tmp_path_factory.mktemp("serve-world"), pki)
