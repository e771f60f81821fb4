"""`trustpolicy serve` end to end: a real upstream feed, the gate in its own process, a client walking
the V3 protocol as NuGet restore (flat container) and nuget.exe install (registration) do.

Every package kind gets its answer in require, accept and audit mode; metadata documents never carry
an upstream download URL; verdicts and files are cached; a policy change re-judges without a new
download; https serves the repository signatures that http must not advertise.
"""

from __future__ import annotations

import hashlib
import ipaddress
import signal
import ssl
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID
from serve_support import GateProcess, ServeWorld, V3Client, copy_world_feed, gate_args, get, read_audit, wait_for

from trustpolicy.testing.feed import FeedServer

# key -> (id, version, status in require, accept, audit, the code a refusal names)
KINDS = {
    "trusted": ("Contoso.Lib", "1.2.0", 200, 200, 200, None),
    "countersigned": ("Fabrikam.Json", "13.0.3", 200, 200, 200, None),
    "untrusted": ("Northwind.Utils", "1.4.2", 403, 200, 200, "NU3034"),
    "unsigned": ("Legacy.Unsigned", "1.0.0", 403, 200, 200, "NU3004"),
    "tampered": ("Contoso.Tampered", "3.0.0", 403, 403, 200, "NU3008"),
    "large": ("Contoso.Large", "1.0.0", 200, 200, 200, None),  # 6 MB, streamed both ways
}
MODES = ("require", "accept", "audit")
SIGNATURES = {"allRepositorySigned": False, "signingCertificates": [{
    "fingerprints": {"2.16.840.1.101.3.4.2.1": "ab" * 32}, "subject": "CN=Test Feed Repository",
    "issuer": "CN=Test Intermediate CA", "notBefore": "2025-01-01T00:00:00Z", "notAfter": "2030-01-01T00:00:00Z",
    "contentUrl": "https://test-feed.example/certificates/feed.crt"}]}


@pytest.fixture(scope="module")
def upstream(serve_world: ServeWorld) -> Iterator[FeedServer]:
    feed = serve_world.feed(signatures=SIGNATURES)
    yield feed
    feed.stop()


@pytest.fixture(scope="module")
def gates(serve_world: ServeWorld, upstream: FeedServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, GateProcess]]:
    """One gate per mode in front of the same upstream, each with its own cache and audit log."""
    started: dict[str, GateProcess] = {}
    try:
        for mode in MODES:
            work = tmp_path_factory.mktemp(f"gate-{mode}")
            args = gate_args(serve_world, work / "cache", "--mode", mode, "--audit-log", str(work / "audit.log"),
                             upstreams={"up": upstream.index_url})
            started[mode] = GateProcess(args, cwd=work, home=work / "home").launch()
        for gate in started.values():
            gate.wait_ready()
        yield started
    finally:
        for gate in started.values():
            gate.stop()


def audit_of(gate: GateProcess) -> list[dict]:
    return read_audit(Path(gate.args[gate.args.index("--audit-log") + 1]))


@pytest.mark.parametrize("mode", MODES)
def test_every_package_kind_in_every_mode(mode: str, gates: dict[str, GateProcess], serve_world: ServeWorld) -> None:
    gate = gates[mode]
    client = V3Client(gate.feed("up"))
    column = MODES.index(mode) + 2
    for key, row in KINDS.items():
        package_id, version, code = row[0], row[1], row[5]
        expected = row[column]
        original = serve_world.packages[key].read_bytes()
        for how, answer in (("restore", client.restore(package_id, version)), ("install", client.install(package_id, version))):
            assert answer.status == expected, (mode, key, how, answer.status, answer.reason)
            if expected == 200:
                assert answer.body == original, (mode, key, how)
                would_refuse = answer.headers.get("X-Trustpolicy-Audit")
                if mode == "audit" and code is not None:  # served, but require would refuse it
                    assert would_refuse and would_refuse.startswith(f"{code} {package_id} {version}: "), would_refuse
                else:
                    assert would_refuse is None
            else:
                # the reason phrase is what NuGet prints: code, package, one sentence
                assert answer.reason.startswith(f"{code} {package_id} {version}: "), answer.reason
                body = answer.json()
                assert body["error"] == answer.reason
                assert body["verdict"]["verdict"] == "invalid"
                assert code in [issue["code"] for issue in body["verdict"]["issues"]]
                assert original not in answer.body

    records = audit_of(gate)
    assert len(records) == 2 * len(KINDS)  # one line per decision
    for record in records:
        key = next(k for k, row in KINDS.items() if row[0] == record["id"])
        assert record["feed"] == "up" and record["client"] == "127.0.0.1" and record["mode"] == mode
        assert record["version"] == KINDS[key][1]
        assert record["sha512"] == hashlib.sha512(serve_world.packages[key].read_bytes()).hexdigest()
        assert record["status"] == KINDS[key][column]
        assert record["time"].endswith("Z")
        refused_by_policy = KINDS[key][5] is not None and not (mode == "accept" and key != "tampered")
        assert record["verdict"] == ("invalid" if refused_by_policy else "valid"), record
        if refused_by_policy:
            assert KINDS[key][5] in record["codes"]
            assert record["decision"] == ("audit-served" if mode == "audit" else "refused")
        else:
            assert record["decision"] == "served" and record["reason"] is None
    by_id = {r["id"]: r for r in records}
    assert by_id["Contoso.Lib"]["trustedSigner"] == {"name": "Contoso Ltd", "kind": "author",
                                                     "fingerprint": serve_world.fingerprints["contoso"]}
    assert by_id["Fabrikam.Json"]["trustedSigner"]["name"] == "test-feed"
    assert by_id["Fabrikam.Json"]["trustedSigner"]["kind"] == "repository"
    assert [r["cached"] for r in records if r["id"] == "Contoso.Lib"] == [False, True]

    if mode == "require":
        assert client.restore("Northwind.Utils", "1.4.2").reason == "NU3034 Northwind.Utils 1.4.2: signer 'Northwind Traders' is not trusted"
        assert client.restore("Legacy.Unsigned", "1.0.0").reason == "NU3004 Legacy.Unsigned 1.0.0: the package is not signed"


def test_service_index_speaks_every_client(gates: dict[str, GateProcess], upstream: FeedServer) -> None:
    gate = gates["require"]
    document = get(gate.feed("up")).json()
    assert document["version"] == "3.0.0"
    types = {r["@type"]: r["@id"] for r in document["resources"]}
    # nuget.exe 5.8 finds registration only under these names; newer clients under 3.6.0
    for needed in ("RegistrationsBaseUrl/3.4.0", "RegistrationsBaseUrl/3.0.0-beta", "RegistrationsBaseUrl/Versioned",
                   "RegistrationsBaseUrl/3.6.0", "PackageBaseAddress/3.0.0", "SearchQueryService/3.0.0-beta",
                   "SearchQueryService/3.4.0", "SearchAutocompleteService/3.0.0-beta"):
        assert needed in types, needed
    assert all(url.startswith(f"{gate.url}/feeds/up/v3/") for url in types.values())
    assert not any(t.startswith(("PackagePublish", "RepositorySignatures")) for t in types)  # no push; no http announcement
    assert get(f"{gate.url}/feeds/up/v3/repository-signatures/index.json").status == 404
    assert get(f"{gate.url}/feeds/nope/v3/index.json").status == 404


def test_metadata_never_leads_around_the_gate(gates: dict[str, GateProcess], upstream: FeedServer,
                                             serve_world: ServeWorld) -> None:
    """Registration index, non-inlined page, leaf and search: every download URL goes through the gate."""
    gate = gates["require"]
    client = V3Client(gate.feed("up"))
    base = f"{gate.url}/feeds/up/v3/"
    upstream_downloads = f"{upstream.base_url}/v3/flat/"
    contents = client.package_contents("Contoso.Lib")  # two versions: the upstream does not inline this page
    assert contents == {"1.2.0": f"{base}flat/contoso.lib/1.2.0/contoso.lib.1.2.0.nupkg",
                        "2.0.0": f"{base}flat/contoso.lib/2.0.0/contoso.lib.2.0.0.nupkg"}
    index = get(f"{base}registration/0/contoso.lib/index.json").json()
    page_url = index["items"][0]["@id"]
    assert "items" not in index["items"][0] and page_url.startswith(base + "registration/0/")
    documents = [index, get(page_url).json(), get(f"{base}registration/0/contoso.lib/1.2.0.json").json(),
                 get(f"{base}registration/0/contoso.app/index.json").json(), client.search("contoso")]
    # the upstream's older hive, as a search result or a dependency may name it, is under the gate too
    documents.append(get(f"{base}registration/1/contoso.lib/index.json").json())
    for document in documents:
        for key, value in strings(document):
            assert not value.startswith(f"{upstream.base_url}/v3/registration"), (key, value)
            assert key == "iconUrl" or not value.startswith(upstream_downloads), (key, value)  # icons are not packages
    leaf = documents[2]
    assert leaf["packageContent"] == contents["1.2.0"]
    app_entry = documents[3]["items"][0]["items"][0]["catalogEntry"]
    assert app_entry["dependencyGroups"][0]["dependencies"][0]["registration"] == f"{base}registration/0/contoso.lib/index.json"
    search = documents[4]
    assert {d["id"] for d in search["data"]} >= {"Contoso.Lib", "Contoso.App"}
    lib = next(d for d in search["data"] if d["id"] == "Contoso.Lib")
    assert lib["registration"] == f"{base}registration/0/contoso.lib/index.json"
    assert [v["@id"] for v in lib["versions"]] == [f"{base}registration/0/contoso.lib/1.2.0.json",
                                                  f"{base}registration/0/contoso.lib/2.0.0.json"]
    assert client.versions("Contoso.Lib") == ["1.2.0", "2.0.0"]
    assert client.versions("No.Such.Package") is None
    assert get(f"{base}autocomplete?q=northwind").json()["data"] == ["Northwind.Utils"]
    assert get(f"{base}registration/0/no.such.package/index.json").status == 404
    assert client.restore("No.Such.Package", "1.0.0").status == 404

    # the manifest comes out of the verified package, under the same decision
    manifest = get(f"{base}flat/contoso.lib/1.2.0/contoso.lib.nuspec")
    assert manifest.status == 200 and b"<id>Contoso.Lib</id>" in manifest.body
    assert get(f"{base}flat/northwind.utils/1.4.2/northwind.utils.nuspec").status == 403
    head = urllib.request.Request(f"{base}flat/contoso.lib/1.2.0/contoso.lib.1.2.0.nupkg", method="HEAD")
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(head) as answer:
        assert answer.status == 200 and answer.read() == b""
        assert int(answer.headers["Content-Length"]) == serve_world.packages["trusted"].stat().st_size


def strings(node: object, key: str = "") -> Iterator[tuple[str, str]]:
    """Every (key, string value) of a JSON document."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from strings(v, k)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item, key)
    elif isinstance(node, str):
        yield key, node


def test_cache_metrics_and_health(gates: dict[str, GateProcess], upstream: FeedServer) -> None:
    gate = gates["accept"]
    client = V3Client(gate.feed("up"))
    before = upstream.downloads("Contoso.Lib", "2.0.0")
    for _ in range(3):
        assert client.restore("Contoso.Lib", "2.0.0").status == 200
    assert upstream.downloads("Contoso.Lib", "2.0.0") == before + 1  # downloaded and verified once
    metrics = get(f"{gate.url}/metrics")
    assert metrics.status == 200 and metrics.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = metrics.body.decode()
    for line in ('trustpolicy_serve_cache_total{result="hit"}', 'trustpolicy_serve_decisions_total{outcome="served"}',
                 'trustpolicy_serve_verdict_codes_total{code="NU3034",level="warning"}',
                 'trustpolicy_serve_upstream_seconds_count{feed="up"}', "trustpolicy_serve_verification_seconds_bucket{le=",
                 'trustpolicy_serve_requests_total{route="/feeds/{feed}/v3/flat/{id}/{version}/{file}",status="200"}'):
        assert line in text, line
    hits = next(float(l.split()[-1]) for l in text.splitlines() if l.startswith('trustpolicy_serve_cache_total{result="hit"}'))
    assert hits >= 2
    health = get(f"{gate.url}/healthz").json()
    assert health["status"] == "ok" and health["mode"] == "accept" and health["feeds"] == ["up"]


def test_local_folder_feed_and_registration_only_upstream(serve_world: ServeWorld, tmp_path: Path) -> None:
    """A folder of .nupkg files and a V3 source without a flat container are gated the same way."""
    folder = copy_world_feed(serve_world, tmp_path / "folder", ("trusted", "app", "untrusted"))
    bare = serve_world.feed(flat=False)
    try:
        args = gate_args(serve_world, tmp_path / "cache", upstreams={"local": str(folder), "bare": bare.index_url})
        with GateProcess(args, cwd=tmp_path, home=tmp_path / "home") as gate:
            for feed in ("local", "bare"):
                client = V3Client(gate.feed(feed))
                assert client.versions("Contoso.Lib") == (["1.2.0"] if feed == "local" else ["1.2.0", "2.0.0"])
                for how in (client.restore, client.install):
                    assert how("Contoso.Lib", "1.2.0").body == serve_world.packages["trusted"].read_bytes()
                    assert how("Northwind.Utils", "1.4.2").status == 403
            local = V3Client(gate.feed("local"))
            app = get(f"{gate.url}/feeds/local/v3/registration/0/contoso.app/index.json").json()
            entry = app["items"][0]["items"][0]["catalogEntry"]
            assert entry["dependencyGroups"] == [{"targetFramework": "net8.0", "dependencies": [{"id": "Contoso.Lib", "range": "1.2.0"}]}]
            assert [d["id"] for d in local.search("contoso")["data"]] == ["Contoso.App", "Contoso.Lib"]
            # no flat container: versions from registration, the file from its packageContent, once
            assert bare.downloads("Contoso.Lib", "1.2.0") == 1
            assert not any(p.endswith("/index.json") and p.startswith("/v3/flat/") for p in bare.requests)
    finally:
        bare.stop()


def test_policy_edit_rejudges_without_downloading_again(serve_world: ServeWorld, upstream: FeedServer, tmp_path: Path) -> None:
    config = serve_world.write_config(tmp_path / "NuGet.Config")
    args = gate_args(serve_world, tmp_path / "cache", "--reload-interval", "0.2", upstreams={"up": upstream.index_url},
                     config=config)
    with GateProcess(args, cwd=tmp_path, home=tmp_path / "home") as gate:
        client = V3Client(gate.feed("up"))
        before = upstream.downloads("Northwind.Utils", "1.4.2")
        assert client.restore("Northwind.Utils", "1.4.2").status == 403
        policy = get(f"{gate.url}/healthz").json()["policy"]
        serve_world.write_config(config, trust_northwind=True)
        assert wait_for(lambda: get(f"{gate.url}/healthz").json()["policy"] != policy), gate.output()
        answer = client.restore("Northwind.Utils", "1.4.2")
        assert answer.status == 200 and answer.body == serve_world.packages["untrusted"].read_bytes()
        assert upstream.downloads("Northwind.Utils", "1.4.2") == before + 1  # judged again from the cache
        assert "policy reloaded (config file changed)" in "".join(gate.stdout)

        # A config that cannot be read keeps the policy in force and says why.
        config.write_text("<configuration><trustedSigners>", encoding="utf-8")
        assert wait_for(lambda: "the policy was not reloaded" in "".join(gate.stderr)), gate.output()
        assert client.restore("Northwind.Utils", "1.4.2").status == 200


def test_sighup_reloads_and_restart_keeps_the_cache(serve_world: ServeWorld, upstream: FeedServer, tmp_path: Path) -> None:
    config = serve_world.write_config(tmp_path / "NuGet.Config")
    audit = tmp_path / "audit.log"
    args = gate_args(serve_world, tmp_path / "cache", "--reload-interval", "0", "--audit-log", str(audit),
                     upstreams={"up": upstream.index_url}, config=config)
    downloads = upstream.downloads("Northwind.Utils", "1.4.2")
    with GateProcess(args, cwd=tmp_path, home=tmp_path / "home") as gate:
        client = V3Client(gate.feed("up"))
        assert client.restore("Northwind.Utils", "1.4.2").status == 403
        serve_world.write_config(config, trust_northwind=True)
        assert client.restore("Northwind.Utils", "1.4.2").status == 403  # no watching: nothing changes yet
        audit.rename(tmp_path / "audit.log.1")  # logrotate, then SIGHUP
        gate.signal(signal.SIGHUP)
        assert wait_for(lambda: "policy reloaded (SIGHUP)" in "".join(gate.stdout)), gate.output()
        assert client.restore("Northwind.Utils", "1.4.2").status == 200
    assert gate.process is not None and gate.process.returncode == 0  # SIGTERM: a clean stop
    assert "trustpolicy serve: stopped" in "".join(gate.stdout) and "Traceback" not in "".join(gate.stderr)
    assert [r["status"] for r in read_audit(tmp_path / "audit.log.1")] == [403, 403]
    assert [r["status"] for r in read_audit(audit)] == [200]  # reopened after the rotation
    with GateProcess(args, cwd=tmp_path, home=tmp_path / "home") as again:
        assert V3Client(again.feed("up")).install("Northwind.Utils", "1.4.2").status == 200
    assert upstream.downloads("Northwind.Utils", "1.4.2") == downloads + 1  # the restarted gate used its cache


def _tls_files(serve_world: ServeWorld, directory: Path) -> tuple[Path, Path]:
    pki = serve_world.pki
    san = x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    server = pki.issue("127.0.0.1", issuer=pki.intermediate, eku=[ExtendedKeyUsageOID.SERVER_AUTH],
                       key_usage=("digital_signature", "key_encipherment"), extensions=[(san, False)])
    return server.write_pem(directory, chain=True)


def test_https_serves_repository_signatures(serve_world: ServeWorld, upstream: FeedServer, tmp_path: Path) -> None:
    cert, key = _tls_files(serve_world, tmp_path)
    args = gate_args(serve_world, tmp_path / "cache", "--tls-cert", str(cert), "--tls-key", str(key),
                     upstreams={"up": upstream.index_url})
    with GateProcess(args, cwd=tmp_path, home=tmp_path / "home") as gate:
        assert gate.url.startswith("https://127.0.0.1:")
        trusting = ssl.create_default_context(cafile=str(serve_world.roots))
        client = V3Client(gate.feed("up"), context=trusting)
        types = client.resources()
        assert types["RepositorySignatures/5.0.0"] == f"{gate.url}/feeds/up/v3/repository-signatures/index.json"
        assert all(url.startswith("https://") for url in types.values())
        assert client.get(types["RepositorySignatures/5.0.0"]).json() == SIGNATURES
        assert client.restore("Contoso.Lib", "1.2.0").body == serve_world.packages["trusted"].read_bytes()
        assert client.install("Northwind.Utils", "1.4.2").reason.startswith("NU3034 Northwind.Utils 1.4.2: ")
        with pytest.raises(Exception, match="CERTIFICATE_VERIFY_FAILED"):
            get(gate.feed("up"), context=ssl.create_default_context())  # a client that does not trust the test CA
