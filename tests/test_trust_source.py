"""`trust source` / `trust sync` against a real HTTP server on 127.0.0.1 (scenario 104)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from trustpolicy._internal.config import load_trust_settings
from trustpolicy._internal.config.sources import SourceError, fetch_repository_signatures
from trustpolicy.cli import main

A = "a1" * 32
B = "b2" * 32
C = "c3" * 32
SHA256_OID = "2.16.840.1.101.3.4.2.1"

Route = bytes | tuple[int, bytes, dict[str, str]] | Callable[[BaseHTTPRequestHandler], None]


class Server:
    """A real HTTP server on 127.0.0.1 serving what the test puts in `routes`."""

    def __init__(self) -> None:
        routes: dict[str, Route] = {}
        self.routes = routes
        self.hits: list[str] = []
        hits = self.hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                route = routes.get(self.path)
                if route is None:
                    route = (404, b"not found", {})
                if callable(route):
                    route(self)
                    return
                status, body, headers = route if isinstance(route, tuple) else (200, route, {})
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except OSError:
                    pass  # the client stopped reading (a size cap): expected, and not this test's output

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, index: Any = None, signatures: Any = None, *, resource_type: str = "RepositorySignatures/5.0.0") -> str:
        """Install a service index at /v3/index.json pointing to /v3/sigs.json; returns the index URL."""
        if index is None:
            index = {
                "version": "3.0.0",
                "resources": [
                    {"@id": self.url("/v3/query"), "@type": "SearchQueryService"},
                    {"@id": self.url("/v3/sigs.json"), "@type": resource_type},
                ],
            }
        self.routes["/v3/index.json"] = index if isinstance(index, bytes) else json.dumps(index).encode()
        if signatures is not None:
            self.routes["/v3/sigs.json"] = signatures if isinstance(signatures, bytes) else json.dumps(signatures).encode()
        return self.url("/v3/index.json")


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.httpd.shutdown()
        srv.httpd.server_close()
        srv.thread.join(5)


def signatures(*fingerprints: str, all_signed: bool = True, content_url: str = "https://certs.repo.test/c.crt") -> dict[str, Any]:
    return {
        "allRepositorySigned": all_signed,
        "signingCertificates": [
            {
                "fingerprints": {SHA256_OID: fp},
                "subject": f"CN=Repo {fp[:4]}",
                "issuer": "CN=Test CA",
                "notBefore": "2024-02-23T00:00:00.0000000Z",
                "notAfter": "2027-05-18T23:59:59.0000000Z",
                "contentUrl": content_url,
            }
            for fp in fingerprints
        ],
    }


def run(*argv: str) -> int:
    return main(["trust", *argv])


def config_with_source(path: Path, url: str) -> Path:
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n  <packageSources>\n'
        f'    <add key="corp" value="{url}" protocolVersion="3" />\n  </packageSources>\n</configuration>\n'
    )
    return path


# -- source ----------------------------------------------------------------------------------------


def test_source_with_url_trusts_every_announced_certificate(tmp_path: Path, server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    url = server.serve(signatures=signatures(A, B))
    config = tmp_path / "NuGet.Config"
    assert run("source", "corp", "--source-url", url, "--owners", "alice;bob", "--configfile", str(config)) == 0
    out = capsys.readouterr().out
    assert f"+ SHA256 {A.upper()}" in out and f"+ SHA256 {B.upper()}" in out
    (signer,) = load_trust_settings(configfile=config).signers
    assert (signer.kind, signer.name, signer.service_index, signer.owners) == ("repository", "corp", url, ("alice", "bob"))
    assert [(c.fingerprint, c.hash_algorithm, c.allow_untrusted_root) for c in signer.certificates] == [
        (A.upper(), "SHA256", False),
        (B.upper(), "SHA256", False),
    ]
    assert server.hits == ["/v3/index.json", "/v3/sigs.json"]


def test_source_by_configured_package_source_name(tmp_path: Path, server: Server) -> None:
    url = server.serve(signatures=signatures(A, all_signed=False), resource_type="RepositorySignatures/4.7.0")
    config = config_with_source(tmp_path / "NuGet.Config", url)
    before = config.read_bytes()
    assert run("source", "corp", "--configfile", str(config)) == 0
    assert config.read_bytes().startswith(before[: before.index(b"</configuration>")])  # appended, nothing else moved
    assert load_trust_settings(configfile=config).signers[0].service_index == url


def test_source_dry_run_writes_nothing(tmp_path: Path, server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    url = server.serve(signatures=signatures(A))
    config = config_with_source(tmp_path / "NuGet.Config", url)
    before = config.read_bytes()
    assert run("source", "corp", "--dry-run", "--configfile", str(config)) == 0
    assert "Dry run" in capsys.readouterr().out
    assert config.read_bytes() == before


def test_source_twice_fails(tmp_path: Path, server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    url = server.serve(signatures=signatures(A))
    config = config_with_source(tmp_path / "NuGet.Config", url)
    assert run("source", "corp", "--configfile", str(config)) == 0
    before = config.read_bytes()
    assert run("source", "other", "--source-url", url.upper().replace("HTTP://", "http://"), "--configfile", str(config)) == 2
    assert "already trusts" in capsys.readouterr().err
    assert config.read_bytes() == before


def test_unknown_source_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.config"
    config.write_text("<configuration/>")
    assert run("source", "nope", "--configfile", str(config)) == 2
    assert "no package source named 'nope'" in capsys.readouterr().err


# -- refused documents leave the config untouched ------------------------------------------------------


BAD_DOCUMENTS: list[tuple[str, Callable[[Server], Any], str]] = [
    ("http-content-url", lambda s: s.serve(signatures=signatures(A, content_url="http://certs.repo.test/c.crt")), "contentUrl must be an https URL"),
    ("empty-list", lambda s: s.serve(signatures=signatures()), "lists no signing certificates"),
    ("no-allRepositorySigned", lambda s: s.serve(signatures={"signingCertificates": signatures(A)["signingCertificates"]}), "has no allRepositorySigned"),
    ("malformed-json", lambda s: s.serve(signatures=b'{"allRepositorySigned": true, "signingCertificates": ['), "is not valid JSON"),
    ("not-an-object", lambda s: s.serve(signatures=b"[1, 2]"), "is not a JSON object"),
    ("string-bool", lambda s: s.serve(signatures={**signatures(A), "allRepositorySigned": "true"}), "must be true or false"),
    ("all-signed-below-5", lambda s: s.serve(signatures=signatures(A), resource_type="RepositorySignatures/4.9.0"), "must be false in RepositorySignatures/4.9.0"),
    ("bad-fingerprint", lambda s: s.serve(signatures=signatures("xyz")), "64 hex digits"),
    ("no-fingerprints", lambda s: s.serve(signatures={"allRepositorySigned": True, "signingCertificates": [{"contentUrl": "https://x.test/c"}]}), "no fingerprints"),
    ("no-resource", lambda s: s.serve(index={"version": "3.0.0", "resources": [{"@id": s.url("/q"), "@type": "SearchQueryService"}]}), "no RepositorySignatures resource"),
    ("index-not-v3", lambda s: s.serve(index={"version": "2.0.0"}), "not a NuGet V3 service index"),
    ("index-malformed", lambda s: s.serve(index=b"<html>"), "is not valid JSON"),
    ("http-resource", lambda s: s.serve(index={"resources": [{"@id": "http://repo.test/sigs.json", "@type": "RepositorySignatures/5.0.0"}]}), "must be an https URL"),
    ("missing-document", lambda s: s.serve(), "HTTP 404"),
    ("too-large", lambda s: s.serve(signatures=b" " * (1024 * 1024 + 10) + b"{}"), "larger than"),
]


@pytest.mark.parametrize(("case", "setup", "message"), BAD_DOCUMENTS, ids=[c[0] for c in BAD_DOCUMENTS])
def test_bad_source_documents_are_refused(tmp_path: Path, server: Server, capsys: pytest.CaptureFixture[str], case: str, setup, message: str) -> None:
    url = setup(server)
    config = config_with_source(tmp_path / "NuGet.Config", url)
    before = config.read_bytes()
    assert run("source", "corp", "--configfile", str(config)) == 2
    err = capsys.readouterr().err
    assert message in err and server.base in err, err
    assert "Traceback" not in err
    assert config.read_bytes() == before


@pytest.mark.parametrize(("case", "setup", "message"), BAD_DOCUMENTS, ids=[c[0] for c in BAD_DOCUMENTS])
def test_bad_documents_make_sync_fail_without_writing(tmp_path: Path, server: Server, capsys: pytest.CaptureFixture[str], case: str, setup, message: str) -> None:
    url = server.serve(signatures=signatures(A))
    config = config_with_source(tmp_path / "NuGet.Config", url)
    assert run("source", "corp", "--configfile", str(config)) == 0
    before = config.read_bytes()
    server.routes.clear()
    setup(server)
    assert run("sync", "corp", "--configfile", str(config)) == 2
    assert message in capsys.readouterr().err
    assert config.read_bytes() == before


def test_plain_http_to_a_remote_host_is_refused_before_connecting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.config"
    assert run("source", "x", "--source-url", "http://nuget.example.test/v3/index.json", "--configfile", str(config)) == 2
    assert "the service index must be an https URL" in capsys.readouterr().err
    with pytest.raises(SourceError, match="must be an https URL"):
        fetch_repository_signatures("ftp://127.0.0.1/index.json")


def test_redirect_to_plain_http_is_refused(tmp_path: Path, server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    server.routes["/v3/index.json"] = (302, b"", {"Location": "http://nuget.example.test/v3/index.json"})
    config = tmp_path / "c.config"
    assert run("source", "x", "--source-url", server.url("/v3/index.json"), "--configfile", str(config)) == 2
    assert "redirect target must be an https URL" in capsys.readouterr().err
    assert not config.exists()


def test_a_hanging_server_times_out(tmp_path: Path, server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    def slow(handler: BaseHTTPRequestHandler) -> None:
        time.sleep(3)

    server.routes["/v3/index.json"] = slow
    config = tmp_path / "c.config"
    started = time.monotonic()
    assert run("source", "x", "--source-url", server.url("/v3/index.json"), "--timeout", "0.3", "--configfile", str(config)) == 2
    assert time.monotonic() - started < 2.5
    assert "could not be fetched" in capsys.readouterr().err


def test_type_lists_and_newest_version_win(server: Server) -> None:
    index = {
        "resources": [
            {"@id": server.url("/old.json"), "@type": "RepositorySignatures/4.7.0"},
            {"@id": server.url("/v3/sigs.json"), "@type": ["Other/1.0", "RepositorySignatures/5.0.0"]},
        ]
    }
    url = server.serve(index=index, signatures=signatures(A))
    announced = fetch_repository_signatures(url)
    assert announced.resource_type == "RepositorySignatures/5.0.0" and announced.all_repository_signed is True
    assert [c.fingerprint for c in announced.certificates] == [A.upper()]


# -- sync ------------------------------------------------------------------------------------------------


def test_sync_replaces_the_certificate_list_and_reports_changes(tmp_path: Path, server: Server, capsys: pytest.CaptureFixture[str]) -> None:
    url = server.serve(signatures=signatures(A, B))
    config = tmp_path / "NuGet.Config"
    assert run("source", "corp", "--source-url", url, "--owners", "alice", "--configfile", str(config)) == 0
    capsys.readouterr()
    server.serve(signatures=signatures(B, C))  # A retired, C added

    before = config.read_bytes()
    assert run("sync", "corp", "--dry-run", "--configfile", str(config)) == 0
    out = capsys.readouterr().out
    assert f"+ SHA256 {C.upper()}" in out and f"- SHA256 {A.upper()}" in out and "Dry run" in out
    assert config.read_bytes() == before

    assert run("sync", "corp", "--configfile", str(config)) == 0
    out = capsys.readouterr().out
    assert f"+ SHA256 {C.upper()}" in out and f"- SHA256 {A.upper()}" in out
    (signer,) = load_trust_settings(configfile=config).signers
    assert [c.fingerprint for c in signer.certificates] == [B.upper(), C.upper()]
    assert signer.owners == ("alice",)
    b_line = next(line for line in before.splitlines() if B.upper().encode() in line)
    assert b_line in config.read_bytes().splitlines()  # the surviving certificate is untouched

    after = config.read_bytes()
    assert run("sync", "corp", "--configfile", str(config)) == 0
    assert "up to date" in capsys.readouterr().out
    assert config.read_bytes() == after


def test_sync_keeps_a_lower_case_entry_that_is_still_announced(tmp_path: Path, server: Server) -> None:
    url = server.serve(signatures=signatures(A))
    config = tmp_path / "NuGet.Config"
    config.write_text(
        "<configuration>\n  <trustedSigners>\n"
        f'    <repository name="corp" serviceIndex="{url}">\n'
        f'      <certificate fingerprint="{A}" hashAlgorithm="SHA256" allowUntrustedRoot="false" />\n'
        f'      <certificate fingerprint="{B.upper()}" hashAlgorithm="SHA384" allowUntrustedRoot="false" />\n'
        "    </repository>\n  </trustedSigners>\n</configuration>\n"
    )
    assert run("sync", "corp", "--configfile", str(config)) == 0
    text = config.read_text()
    assert f'fingerprint="{A}"' in text and B.upper() not in text


def test_sync_needs_a_repository(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "c.config"
    config.write_text(f'<configuration><trustedSigners><author name="a"><certificate fingerprint="{A}" hashAlgorithm="SHA256" allowUntrustedRoot="false"/></author></trustedSigners></configuration>')
    assert run("sync", "a", "--configfile", str(config)) == 2
    assert "it is an author" in capsys.readouterr().err
    assert run("sync", "zzz", "--configfile", str(config)) == 2
    assert "no such trusted signer" in capsys.readouterr().err
