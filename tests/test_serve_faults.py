"""`trustpolicy serve` fails closed: every upstream fault, bad input, a damaged cache, SIGKILL in the
middle of downloads, and a bounded load test. Unverified bytes are never served and never kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import http.client
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import pytest
from serve_support import GateProcess, ServeWorld, V3Client, gate_args, get, read_audit, wait_for

from trustpolicy.testing.feed import FeedServer
from trustpolicy.testing.revocation import closed_port_url

CAP_MB = 2  # --max-package-size of the fault gate: the 6 MB package is over it


@pytest.fixture(scope="module")
def upstream(serve_world: ServeWorld) -> Iterator[FeedServer]:
    feed = serve_world.feed()
    yield feed
    feed.stop()


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def gate(serve_world: ServeWorld, upstream: FeedServer, work: Path) -> Iterator[GateProcess]:
    args = gate_args(serve_world, work / "cache", "--upstream-timeout", "1", "--download-timeout", "4",
                     "--max-package-size", str(CAP_MB), "--audit-log", str(work / "audit.log"),
                     upstreams={"up": upstream.index_url, "dead": closed_port_url("/v3/index.json")})
    with GateProcess(args, cwd=work, home=work / "home") as process:
        yield process


def stored(cache: Path) -> dict[str, Path]:
    """sha512 -> file, for every package file in the gate's cache."""
    return {p.stem: p for p in (cache / "packages").glob("*/*.nupkg")}


def assert_cache_consistent(cache: Path) -> None:
    """Only whole, verified files: each named by its own hash; each index entry names a stored file or none."""
    files = stored(cache)
    for name, path in files.items():
        assert hashlib.sha512(path.read_bytes()).hexdigest() == name, path
    for entry in (cache / "index").glob("*/*/*"):
        if entry.name.startswith(".tmp-"):
            continue  # a write in flight (renamed into place when complete)
        assert entry.read_text() in files, entry


FAULTS = [  # fault, status, words of the reason phrase
    ("timeout", 504, "did not finish in time"),
    ("stall", 504, "did not finish in time"),
    ("reset", 502, "the package could not be fetched"),
    ("truncate", 502, "cut short"),
    ("oversize-declared", 502, f"larger than the {CAP_MB * 1024 * 1024}-byte limit"),
    ("oversize-stream", 502, f"larger than the {CAP_MB * 1024 * 1024}-byte limit"),
    ("garbage", 502, "TP0003 contoso.lib 1.2.0: the upstream sent a file that is not a readable NuGet package"),
    ("redirect-other-host", 502, "redirected to another host (localhost)"),
    ("status-500", 502, "answered HTTP 500"),
    ("status-503", 502, "answered HTTP 503"),
    ("status-401", 502, "answered HTTP 401"),
    ("wrong-package:northwind.utils/1.4.2", 502, "TP0002 contoso.lib 1.2.0: the upstream sent Northwind.Utils 1.4.2 instead"),
]


def test_upstream_faults_fail_closed(gate: GateProcess, upstream: FeedServer, serve_world: ServeWorld, work: Path) -> None:
    client = V3Client(gate.feed("up"))
    original = serve_world.packages["trusted"].read_bytes()
    cache = work / "cache"
    for fault, status, words in FAULTS:
        upstream.faults["contoso.lib"] = fault
        started = time.monotonic()
        answer = client.restore("Contoso.Lib", "1.2.0")
        assert answer.status == status and words in answer.reason, (fault, answer.status, answer.reason)
        assert time.monotonic() - started < 10, fault  # every fault is bounded by the timeouts
        assert original[:64] not in answer.body and answer.json()["error"] == answer.reason
        assert not (cache / "index" / "up" / "contoso.lib").exists(), fault  # nothing is kept
        assert stored(cache) == {}, fault
        assert wait_for(lambda: not any((cache / "tmp").iterdir()), timeout=5), fault  # no partial file left
    records = [r for r in read_audit(work / "audit.log") if r["id"] == "contoso.lib"]
    assert [r["status"] for r in records] == [status for _, status, _ in FAULTS]
    assert {r["decision"] for r in records} == {"upstream-error", "bad-package"}
    assert all(r["verdict"] in (None, "invalid") for r in records)

    upstream.faults.clear()  # the upstream recovers: no failure was remembered
    answer = client.install("Contoso.Lib", "1.2.0")
    assert answer.status == 200 and answer.body == original
    assert_cache_consistent(cache)


def test_real_oversized_package_and_redirects(gate: GateProcess, upstream: FeedServer, serve_world: ServeWorld) -> None:
    client = V3Client(gate.feed("up"))
    answer = client.restore("Contoso.Large", "1.0.0")  # 6 MB, over the 2 MB cap, no lie involved
    assert answer.status == 502 and "larger than" in answer.reason
    upstream.faults["contoso.app"] = "redirect-same-host"  # a redirect on the same host is followed
    try:
        answer = client.restore("Contoso.App", "1.0.0")
        assert answer.status == 200 and answer.body == serve_world.packages["app"].read_bytes()
    finally:
        upstream.faults.clear()


def test_unreachable_upstream(gate: GateProcess) -> None:
    answer = get(gate.feed("dead"))
    assert answer.status == 502 and "upstream dead: the service index could not be fetched" in answer.reason
    answer = get(f"{gate.url}/feeds/dead/v3/flat/contoso.lib/1.2.0/contoso.lib.1.2.0.nupkg")
    assert answer.status == 502 and answer.reason.startswith("upstream dead:")


def test_only_configured_hosts(serve_world: ServeWorld, tmp_path: Path) -> None:
    """A source whose packageContent names another host is not followed there, unless that host is allowed."""
    elsewhere, allowed = serve_world.feed(flat=False), serve_world.feed(flat=False)
    elsewhere.content_base = f"http://127.0.0.2:{elsewhere.base_url.rsplit(':', 1)[1]}"
    allowed.content_base = f"http://localhost:{allowed.base_url.rsplit(':', 1)[1]}"
    try:
        args = gate_args(serve_world, tmp_path / "cache", "--allow-host", "localhost",
                         upstreams={"elsewhere": elsewhere.index_url, "allowed": allowed.index_url})
        with GateProcess(args, cwd=tmp_path, home=tmp_path / "home") as gate:
            answer = V3Client(gate.feed("elsewhere")).install("Contoso.Lib", "1.2.0")
            assert answer.status == 502
            assert "refused to contact http://127.0.0.2 (not a configured host)" in answer.reason
            assert V3Client(gate.feed("allowed")).install("Contoso.Lib", "1.2.0").status == 200
        assert allowed.downloads("Contoso.Lib", "1.2.0") == 1 and elsewhere.downloads("Contoso.Lib", "1.2.0") == 0
    finally:
        elsewhere.stop()
        allowed.stop()


def test_a_verification_that_takes_too_long_is_stopped(serve_world: ServeWorld, upstream: FeedServer, tmp_path: Path) -> None:
    """A worker that does not answer in time is killed and replaced; the client gets a 504, nothing is kept."""
    args = gate_args(serve_world, tmp_path / "cache", "--verify-timeout", "0.001", upstreams={"up": upstream.index_url})
    with GateProcess(args, cwd=tmp_path, home=tmp_path / "home") as gate:
        for _ in range(2):  # the replaced workers are used (and stopped) again
            answer = V3Client(gate.feed("up")).restore("Contoso.App", "1.0.0")
            assert answer.status == 504 and "TP0004" in answer.reason and "did not finish within" in answer.reason
        assert get(f"{gate.url}/healthz").status == 200
    assert stored(tmp_path / "cache") == {}


def raw(gate: GateProcess, method: str, path: str) -> tuple[int, str]:
    """A request exactly as written (no client-side normalisation of the path)."""
    host, port = gate.url.split("//")[1].split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        connection.endheaders()
        response = connection.getresponse()
        response.read()
        return response.status, response.reason
    finally:
        connection.close()


@pytest.mark.parametrize("method, path, status", [
    ("GET", "/feeds/up/v3/flat/contoso.lib/1.0/contoso.lib.1.0.nupkg", 400),  # not the normalized 1.0.0
    ("GET", "/feeds/up/v3/flat/contoso.lib/1.2.0.0/contoso.lib.1.2.0.0.nupkg", 400),
    ("GET", "/feeds/up/v3/flat/contoso.lib/01.2.0/contoso.lib.01.2.0.nupkg", 400),
    ("GET", "/feeds/up/v3/flat/contoso.lib/banana/contoso.lib.banana.nupkg", 400),
    ("GET", "/feeds/up/v3/flat/contoso..lib/1.2.0/contoso..lib.1.2.0.nupkg", 400),
    ("GET", "/feeds/up/v3/flat/%2e%2e%2f%2e%2e/1.2.0/x.nupkg", 400),
    ("GET", "/feeds/up/v3/flat/..%2F..%2Fetc/index.json", 400),
    ("GET", "/feeds/up/v3/flat/" + "a" * 101 + "/index.json", 400),
    ("GET", "/feeds/up/v3/flat/contoso.lib/" + "1" * 70 + "/x.nupkg", 400),
    ("GET", "/feeds/up/v3/flat/b%C3%A4r/index.json", 400),  # NuGet ids here are ASCII
    ("GET", "/feeds/up/v3/registration/0/%2e%2e/%2e%2e/secret.json", 400),
    ("GET", "/feeds/up/v3/registration/0/contoso.lib/../../../index.json", 400),
    ("GET", "/feeds/up/v3/registration/0/contoso.lib/index.txt", 400),
    ("GET", "/feeds/up/v3/flat/contoso.lib/1.2.0/northwind.utils.1.2.0.nupkg", 404),  # file of another package
    ("GET", "/feeds/up/v3/flat/contoso.lib/1.2.0/contoso.lib.1.2.0.nupkg.sha512", 404),
    ("GET", "/feeds/../../etc/passwd", 404),
    ("GET", "/feeds/up/v2/package/contoso.lib/1.2.0", 404),
    ("GET", "/feeds/up/v3/publish", 404),
    ("GET", "/", 404),
    ("PUT", "/feeds/up/v3/flat/contoso.lib/1.2.0/contoso.lib.1.2.0.nupkg", 405),  # no push
    ("DELETE", "/feeds/up/v3/flat/contoso.lib/1.2.0/contoso.lib.1.2.0.nupkg", 405),
])
def test_bad_requests(gate: GateProcess, method: str, path: str, status: int) -> None:
    assert raw(gate, method, path)[0] == status


def test_absurd_request_is_refused_and_the_gate_lives_on(gate: GateProcess) -> None:
    assert raw(gate, "GET", "/feeds/up/v3/flat/" + "a" * 20000 + "/index.json")[0] in (400, 414)
    assert get(f"{gate.url}/healthz").status == 200


def test_damaged_cache_file_is_discarded_and_fetched_again(gate: GateProcess, upstream: FeedServer,
                                                          serve_world: ServeWorld, work: Path) -> None:
    client = V3Client(gate.feed("up"))
    original = serve_world.packages["countersigned"].read_bytes()
    assert client.restore("Fabrikam.Json", "13.0.3").body == original
    digest = hashlib.sha512(original).hexdigest()
    path = stored(work / "cache")[digest]
    assert not os.access(path, os.W_OK) or os.getuid() == 0  # stored read-only
    downloads = upstream.downloads("Fabrikam.Json", "13.0.3")
    for damage in (lambda data: data[:100] + bytes([data[100] ^ 1]) + data[101:],  # one flipped byte
                   lambda data: serve_world.packages["trusted"].read_bytes()):  # another, valid, package's bytes
        os.chmod(path, 0o644)
        path.write_bytes(damage(original))
        answer = client.restore("Fabrikam.Json", "13.0.3")
        assert answer.status == 200 and answer.body == original
        downloads += 1
        assert upstream.downloads("Fabrikam.Json", "13.0.3") == downloads  # fetched again, not served damaged
        assert hashlib.sha512(path.read_bytes()).hexdigest() == digest
    assert_cache_consistent(work / "cache")


def test_concurrent_requests_download_and_verify_once(gate: GateProcess, upstream: FeedServer, serve_world: ServeWorld) -> None:
    client = V3Client(gate.feed("up"))
    verified = verifications(gate)
    upstream.faults.update({"contoso.lib": "slow", "northwind.utils": "slow"})
    upstream.delay = 0.5  # every request arrives while the first download is still under way
    try:
        jobs = [("Contoso.Lib", "2.0.0")] * 12 + [("Northwind.Utils", "1.4.2")] * 12
        with ThreadPoolExecutor(len(jobs)) as pool:
            answers = list(pool.map(lambda job: client.restore(*job), jobs))
    finally:
        upstream.faults.clear()
    assert [a.status for a in answers] == [200] * 12 + [403] * 12
    assert {a.body for a in answers[:12]} == {serve_world.packages["trusted-2"].read_bytes()}
    assert {a.reason for a in answers[12:]} == {"NU3034 Northwind.Utils 1.4.2: signer 'Northwind Traders' is not trusted"}
    assert upstream.downloads("Contoso.Lib", "2.0.0") == 1
    assert upstream.downloads("Northwind.Utils", "1.4.2") == 1
    assert verifications(gate) == verified + 2  # one per file, not one per request


def verifications(gate: GateProcess) -> float:
    metrics = get(f"{gate.url}/metrics").body.decode()
    line = next((l for l in metrics.splitlines() if l.startswith("trustpolicy_serve_verifications_total")), "x 0")
    return float(line.split()[-1])


def test_sigkill_during_downloads_loses_nothing(serve_world: ServeWorld, upstream: FeedServer, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    args = gate_args(serve_world, cache, upstreams={"up": upstream.index_url})
    large = serve_world.packages["large"].read_bytes()
    gate = GateProcess(args, cwd=tmp_path, home=tmp_path / "home").start()
    try:
        client = V3Client(gate.feed("up"))
        assert client.restore("Contoso.Lib", "1.2.0").status == 200  # one package complete before the kill
        upstream.faults["contoso.large"] = "trickle"
        upstream.delay = 0.03  # 6 MB in 64 KB pieces: about 3 s
        before = upstream.downloads("Contoso.Large", "1.0.0")
        results: list[object] = []
        threads = [threading.Thread(target=lambda: results.append(_try(client.restore, "Contoso.Large", "1.0.0")))
                   for _ in range(4)]
        for thread in threads:
            thread.start()
        assert wait_for(lambda: upstream.downloads("Contoso.Large", "1.0.0") > before)
        assert wait_for(lambda: any(p.stat().st_size > 0 for p in (cache / "tmp").iterdir()))  # bytes on disk
        workers = _children(gate.pid)
        assert workers
        gate.kill()
        assert wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers)), "workers outlived the gate"
        for thread in threads:
            thread.join(15)
        assert not any(getattr(r, "status", None) == 200 for r in results)  # nobody got a partial package
        assert hashlib.sha512(large).hexdigest() not in stored(cache)
        assert_cache_consistent(cache)
    finally:
        gate.stop()
        upstream.faults.clear()

    downloads = upstream.downloads("Contoso.Lib", "1.2.0")
    with GateProcess(args, cwd=tmp_path, home=tmp_path / "home") as again:
        assert not any((cache / "tmp").iterdir())  # partial downloads are cleared at start
        client = V3Client(again.feed("up"))
        assert client.restore("Contoso.Lib", "1.2.0").body == serve_world.packages["trusted"].read_bytes()
        assert upstream.downloads("Contoso.Lib", "1.2.0") == downloads  # kept across the kill
        assert client.restore("Contoso.Large", "1.0.0").body == large
    assert_cache_consistent(cache)


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children") as handle:
        return [int(child) for child in handle.read().split()]


def _try(call, *args):  # type: ignore[no-untyped-def]
    try:
        return call(*args)
    except OSError as error:  # the gate died mid-answer
        return error


def test_bounded_load(gate: GateProcess, serve_world: ServeWorld) -> None:
    """50 clients walking the protocol at once, 10 rounds each; stops by itself. Every answer is
    right, nothing is lost, and the gate's memory stays flat."""
    client = V3Client(gate.feed("up"))
    assert client.restore("Contoso.Lib", "1.2.0").status == 200 and client.restore("Legacy.Unsigned", "1.0.0").status == 403
    trusted = serve_world.packages["trusted"].read_bytes()
    base = f"{gate.url}/feeds/up/v3/"
    rss_before = _rss(gate.pid)

    async def walk(session: aiohttp.ClientSession) -> list[str]:
        wrong: list[str] = []
        for _ in range(10):
            async with session.get(base + "index.json") as r:
                wrong += [] if r.status == 200 else [f"index {r.status}"]
            async with session.get(base + "flat/contoso.lib/index.json") as r:
                wrong += [] if r.status == 200 and "1.2.0" in (await r.json())["versions"] else [f"versions {r.status}"]
            async with session.get(base + "flat/contoso.lib/1.2.0/contoso.lib.1.2.0.nupkg") as r:
                wrong += [] if r.status == 200 and await r.read() == trusted else [f"nupkg {r.status}"]
            async with session.get(base + "flat/legacy.unsigned/1.0.0/legacy.unsigned.1.0.0.nupkg") as r:
                wrong += [] if r.status == 403 and r.reason.startswith("NU3004") else [f"refusal {r.status}"]
            async with session.get(base + "registration/0/contoso.lib/index.json") as r:
                wrong += [] if r.status == 200 else [f"registration {r.status}"]
        return wrong

    async def load() -> list[str]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as session:
            results = await asyncio.gather(*(walk(session) for _ in range(50)))
        return [w for ws in results for w in ws]

    started = time.monotonic()
    wrong = asyncio.run(load())
    assert wrong == []
    assert time.monotonic() - started < 60
    assert _rss(gate.pid) - rss_before < 40 * 1024 * 1024, "memory grew under load"
    assert get(f"{gate.url}/healthz").status == 200


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmRSS:"))
