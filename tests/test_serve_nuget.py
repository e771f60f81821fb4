"""A real NuGet client (nuget.exe 5.8.0 under mono) against `trustpolicy serve`.

nuget.exe on mono verifies no signatures: given a folder feed it installs an untrusted package even
under a require-mode NuGet.Config. Through the gate the same command fails with the gate's reason,
and a trusted package (and its dependency) installs. Over https with a test-PKI certificate too,
once mono trusts the test root (`cert-sync --user`).
"""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_nuget
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from serve_support import GateProcess, ServeWorld, copy_world_feed, gate_args

from trustpolicy.testing.feed import FeedServer
from trustpolicy.testing.pki import write_certificates

REFUSAL = "Response status code does not indicate success: 403 (NU3034 Northwind.Utils 1.4.2: signer 'Northwind Traders' is not trusted)."


@pytest.fixture(scope="module")
def upstream(serve_world: ServeWorld) -> Iterator[FeedServer]:
    feed = serve_world.feed(signatures={"allRepositorySigned": False, "signingCertificates": [{
        "fingerprints": {"2.16.840.1.101.3.4.2.1": serve_world.fingerprints["feed"].lower()},
        "subject": "CN=Test Feed Repository", "issuer": "CN=Test Intermediate CA", "notBefore": "2025-01-01T00:00:00Z",
        "notAfter": "2035-01-01T00:00:00Z", "contentUrl": "https://test-feed.example/feed.crt"}]})
    yield feed
    feed.stop()


def install(nuget: list[str], source: str, package: str, version: str, work: Path, config: Path) -> subprocess.CompletedProcess[str]:
    out = work / "out"
    return run_nuget(nuget, "install", package, "-Version", version, "-Source", source, "-OutputDirectory", str(out),
                     "-ConfigFile", str(config), cwd=work, home=work / "home")


def installed(work: Path, package: str, version: str) -> Path:
    return work / "out" / f"{package}.{version}" / f"{package}.{version}.nupkg"


def test_folder_feed_installs_an_untrusted_package_without_a_word(nuget_exe: list[str], serve_world: ServeWorld,
                                                                tmp_path: Path) -> None:
    """The client a gate exists for: require mode, only Contoso trusted, and still it installs Northwind."""
    folder = copy_world_feed(serve_world, tmp_path / "folder", ("untrusted",))
    result = install(nuget_exe, str(folder), "Northwind.Utils", "1.4.2", tmp_path, serve_world.config)
    assert result.returncode == 0, result.stdout + result.stderr
    assert installed(tmp_path, "Northwind.Utils", "1.4.2").read_bytes() == serve_world.packages["untrusted"].read_bytes()


def test_through_the_gate_untrusted_fails_with_the_reason_and_trusted_installs(
        nuget_exe: list[str], serve_world: ServeWorld, upstream: FeedServer, tmp_path: Path) -> None:
    folder = copy_world_feed(serve_world, tmp_path / "folder", ("untrusted",))
    args = gate_args(serve_world, tmp_path / "cache", upstreams={"folder": str(folder), "up": upstream.index_url})
    with GateProcess(args, cwd=tmp_path, home=tmp_path / "gate-home") as gate:
        for feed in ("folder", "up"):  # the same folder feed as above, and a V3 upstream
            work = tmp_path / f"client-{feed}"
            work.mkdir()
            refused = install(nuget_exe, gate.feed(feed), "Northwind.Utils", "1.4.2", work, serve_world.config)
            assert refused.returncode != 0
            assert REFUSAL in refused.stdout + refused.stderr, refused.stdout + refused.stderr
            assert not installed(work, "Northwind.Utils", "1.4.2").exists()

        # a trusted package and the dependency it names, resolved through the gate's registration
        result = install(nuget_exe, gate.feed("up"), "Contoso.App", "1.0.0", work, serve_world.config)
        assert result.returncode == 0, result.stdout + result.stderr
        assert installed(work, "Contoso.App", "1.0.0").read_bytes() == serve_world.packages["app"].read_bytes()
        assert installed(work, "Contoso.Lib", "1.2.0").read_bytes() == serve_world.packages["trusted"].read_bytes()


def test_https_gate_with_a_test_certificate(nuget_exe: list[str], serve_world: ServeWorld, upstream: FeedServer,
                                           tmp_path: Path) -> None:
    """mono trusts the test root once it is in its user store; it checks host names, not IP addresses, so
    the client uses https://localhost (the gate still listens on 127.0.0.1)."""
    cert_sync = shutil.which("cert-sync")
    if cert_sync is None:
        pytest.skip("cert-sync (mono) is not installed")
    pki = serve_world.pki
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
    server = pki.issue("localhost", issuer=pki.intermediate, eku=[ExtendedKeyUsageOID.SERVER_AUTH],
                       key_usage=("digital_signature", "key_encipherment"), extensions=[(san, False)])
    cert, key = server.write_pem(tmp_path / "tls", chain=True)
    home = tmp_path / "home"
    root = write_certificates(tmp_path / "root.pem", [pki.root.certificate])
    synced = subprocess.run([cert_sync, "--quiet", "--user", str(root)], env={"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
                            "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120)
    assert synced.returncode == 0, synced.stdout + synced.stderr
    args = gate_args(serve_world, tmp_path / "cache", "--tls-cert", str(cert), "--tls-key", str(key),
                     upstreams={"up": upstream.index_url})
    with GateProcess(args, cwd=tmp_path, home=tmp_path / "gate-home") as gate:
        source = gate.feed("up").replace("https://127.0.0.1:", "https://localhost:")
        refused = install(nuget_exe, source, "Northwind.Utils", "1.4.2", tmp_path, serve_world.config)
        assert REFUSAL in refused.stdout + refused.stderr, refused.stdout + refused.stderr
        result = install(nuget_exe, source, "Fabrikam.Json", "13.0.3", tmp_path, serve_world.config)
        assert result.returncode == 0, result.stdout + result.stderr
        assert installed(tmp_path, "Fabrikam.Json", "13.0.3").read_bytes() == serve_world.packages["countersigned"].read_bytes()
    assert any(p.endswith("/repository-signatures/index.json") for p in upstream.requests)  # announced over https only
