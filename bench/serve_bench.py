"""Benchmark `trustpolicy serve` against a plain static file server (run by hand; not a test).

    .venv/bin/python bench/serve_bench.py [--requests N] [--duration S] [--connections C] [--json out.json]

Everything runs on this machine, in one run, in bench/out/serve/ (regenerated each run):

- packages: author-signed and RFC 3161-timestamped by a bench PKI, random (incompressible) payloads
  stored uncompressed: 40 of 100 KB, one of 10 MB and one of 50 MB; a require-mode NuGet.Config that
  trusts their author; the PKI and TSA roots as --trust-store;
- upstream: trustpolicy.testing.feed.FeedServer on 127.0.0.1 (a thread of this process);
- the gate: `python -m trustpolicy serve` (2 workers, --revocation off) in its own process;
- static: the same package files served by aiohttp's static file handler (sendfile, as the gate) in
  its own process: what a plain file server costs on the same stack.

Figures (targets from issue 13):
- latency of a cached allowed 100 KB package, gate and static requests interleaved on two keep-alive
  connections of one client: p50 and p99 of each, overhead = gate - static (target < 2 ms at both);
- throughput: `wrk -t1 -cC -dS` on the cached 100 KB package (target >= 1,000 responses/s), and the
  same against the static server; the gate's RSS (its process and workers) sampled every 50 ms;
- first download: each 100 KB package and the 10 MB one fetched once through an empty gate, against
  the same file fetched straight from the upstream; overhead = gate - direct, compared with the
  verification cost (the gate's own judge_file on that file in this process, warm, median of 3)
  (target: overhead <= verification + 10%);
- streaming: 8 clients download the cached 50 MB package at once; the gate's RSS must not grow with it.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
OUT = Path(os.environ.get("TRUSTPOLICY_BENCH_OUT", BENCH / "out")) / "serve"

from trustpolicy._internal import clock  # noqa: E402
from trustpolicy.context import TrustOptions  # noqa: E402
from trustpolicy.serve.gate import _init_worker, build_judge, judge_file  # noqa: E402
from trustpolicy.testing.feed import FeedServer  # noqa: E402

SMALL, SMALL_COUNT = 100 * 1024, 40
TARGETS = {"latency_ms": 2.0, "throughput": 1000.0, "first_ratio": 1.10}


# -- setup ------------------------------------------------------------------------------------------------


def build(out: Path) -> dict[str, Any]:
    from cryptography.hazmat.primitives import hashes

    from trustpolicy._internal.sign import SigningIdentity, sign_package
    from trustpolicy.testing.pki import TestPKI, write_certificates
    from trustpolicy.testing.tsa import TimestampServer

    if out.exists():
        shutil.rmtree(out)
    (out / "packages").mkdir(parents=True)
    pki = TestPKI(out / "pki", now=clock.now() - timedelta(days=1), tag="trustpolicy serve bench")
    author = pki.issue_code_signing("Bench Author")
    identity = SigningIdentity(author.certificate, author.private_key, author.chain[1:])
    rng = random.Random(13)
    sizes = [(f"Bench.Small{i:02d}", SMALL) for i in range(SMALL_COUNT)] + [("Bench.Ten", 10 << 20), ("Bench.Fifty", 50 << 20)]
    packages = {}
    with TimestampServer(pki.tsa) as tsa:
        for package_id, size in sizes:
            path = out / "packages" / f"{package_id.lower()}.1.0.0.nupkg"
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr(f"{package_id}.nuspec", f'<?xml version="1.0"?><package><metadata><id>{package_id}</id>'
                                 "<version>1.0.0</version><authors>bench</authors><description>bench</description>"
                                 "</metadata></package>")
                archive.writestr(zipfile.ZipInfo("content/payload.bin"), rng.randbytes(size))
            sign_package(path, identity=identity, timestamper=tsa.url, on_warning=lambda w: None)
            packages[package_id] = path
    roots = write_certificates(out / "roots.pem", [pki.root.certificate, pki.tsa_root.certificate])
    fingerprint = author.certificate.fingerprint(hashes.SHA256()).hex().upper()
    config = out / "NuGet.Config"
    config.write_text('<?xml version="1.0" encoding="utf-8"?><configuration><config>'
                      '<add key="signatureValidationMode" value="require" /></config><trustedSigners>'
                      f'<author name="Bench Author"><certificate fingerprint="{fingerprint}" hashAlgorithm="SHA256" '
                      'allowUntrustedRoot="false" /></author></trustedSigners></configuration>\n')
    return {"packages": packages, "roots": roots, "config": config}


class Process:
    """A server in its own process; `url` from the first line it prints."""

    def __init__(self, command: list[str], cwd: Path, pattern: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "TRUSTPOLICY_NUGET_USER_DIR": "", "TRUSTPOLICY_NUGET_MACHINE_DIR": ""}
        self.process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert self.process.stdout is not None
        for line in self.process.stdout:
            match = re.search(pattern, line)
            if match:
                self.url = match.group(1)
                break
        else:
            raise SystemExit(f"server did not start: {' '.join(command)}")
        threading.Thread(target=lambda: [None for _ in self.process.stdout], daemon=True).start()  # type: ignore[union-attr]

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()


STATIC_SERVER = """
import sys
from aiohttp import web
app = web.Application()
app.router.add_static("/files/", sys.argv[1])
runner = web.AppRunner(app, access_log=None)
import asyncio
async def main():
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
    await site.start()
    print("static listening on http://127.0.0.1:%d" % site._server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def tree_rss(pid: int) -> int:
    """RSS of a process and its children (the gate's workers), bytes."""
    total = 0
    for proc in [pid, *_children(pid)]:
        try:
            with open(f"/proc/{proc}/status") as status:
                total += next(int(l.split()[1]) * 1024 for l in status if l.startswith("VmRSS:"))
        except (OSError, StopIteration):
            pass
    return total


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as handle:
            kids = [int(p) for p in handle.read().split()]
    except OSError:
        return []
    return kids + [g for k in kids for g in _children(k)]


class RssSampler:
    def __init__(self, pid: int) -> None:
        self.pid, self.samples, self._stop = pid, [], threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.samples.append(tree_rss(self.pid))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# -- measurements ----------------------------------------------------------------------------------------


def fetch(connection: http.client.HTTPConnection, path: str) -> tuple[float, int, int]:
    started = time.perf_counter()
    connection.request("GET", path)
    response = connection.getresponse()
    body = response.read()
    return time.perf_counter() - started, response.status, len(body)


def connect(url: str) -> http.client.HTTPConnection:
    host, port = url.split("//")[1].split("/")[0].split(":")
    return http.client.HTTPConnection(host, int(port), timeout=60)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def latency(gate: str, static: str, requests: int) -> dict[str, float]:
    gate_path = "/" + gate.split("/", 3)[3]
    static_path = "/" + static.split("/", 3)[3]
    g, s = connect(gate), connect(static)
    for _ in range(200):  # warm-up: connections, caches, the gate's first hash of the cached file
        fetch(g, gate_path), fetch(s, static_path)
    times: dict[str, list[float]] = {"gate": [], "static": []}
    for index in range(requests):
        order = (("gate", g, gate_path), ("static", s, static_path))
        for name, connection, path in order if index % 2 else reversed(order):
            seconds, status, size = fetch(connection, path)
            assert status == 200 and size > 0, (name, status)
            times[name].append(seconds * 1000)
    result = {f"{name}_{q}": percentile(values, p) for name, values in times.items() for q, p in (("p50", 0.5), ("p99", 0.99))}
    result["overhead_p50"] = result["gate_p50"] - result["static_p50"]
    result["overhead_p99"] = result["gate_p99"] - result["static_p99"]
    return result


def wrk(url: str, connections: int, duration: int) -> float | None:
    if shutil.which("wrk") is None:
        return None
    out = subprocess.run(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", url], capture_output=True, text=True).stdout
    match = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise SystemExit(f"wrk saw {errors.group(1)} failed responses from {url}")
    return float(match.group(1)) if match else None


def first_downloads(gate: str, upstream: FeedServer, packages: dict[str, Path], judge_options: TrustOptions) -> list[dict[str, Any]]:
    _init_worker(build_judge(judge_options))
    rows = []
    g, u = connect(gate), connect(upstream.base_url)
    for package_id, path in packages.items():
        if package_id == "Bench.Fifty":
            continue
        lid = package_id.lower()
        tail = f"{lid}/1.0.0/{lid}.1.0.0.nupkg"
        direct = min(fetch(u, f"/v3/flat/{tail}")[0] for _ in range(3))
        before = gate_timings(gate)
        seconds, status, size = fetch(g, f"/feeds/up/v3/flat/{tail}")
        assert status == 200 and size == path.stat().st_size, (package_id, status)
        after = gate_timings(gate)
        verify = statistics.median(_timed(judge_file, str(path)) for _ in range(3))
        rows.append({"package": package_id, "size": size, "direct_ms": direct * 1000, "gate_first_ms": seconds * 1000,
                     "verify_ms": verify * 1000, "overhead_ms": (seconds - direct) * 1000,
                     "gate_fetch_ms": (after["upstream"] - before["upstream"]) * 1000,
                     "gate_verify_ms": (after["verification"] - before["verification"]) * 1000})
    return rows


def gate_timings(gate: str) -> dict[str, float]:
    """Seconds the gate spent fetching from upstreams and verifying in workers, so far (from /metrics)."""
    connection = connect(gate)
    connection.request("GET", "/metrics")
    text = connection.getresponse().read().decode()
    connection.close()
    sums = {"upstream": 0.0, "verification": 0.0}
    for line in text.splitlines():
        for name in sums:
            if line.startswith(f"trustpolicy_serve_{name}_seconds_sum"):
                sums[name] += float(line.split()[-1])
    return sums


def _timed(fn: Any, *args: Any) -> float:
    started = time.perf_counter()
    result = fn(*args)
    assert result.verdict.passed, result.verdict.issues
    return time.perf_counter() - started


def streaming(gate: str, pid: int) -> dict[str, float]:
    path = "/feeds/up/v3/flat/bench.fifty/1.0.0/bench.fifty.1.0.0.nupkg"
    assert fetch(connect(gate), path)[1] == 200  # downloaded, verified, cached
    before = tree_rss(pid)

    async def many() -> None:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            async def one() -> None:
                async with session.get(gate + path) as response:
                    async for _ in response.content.iter_chunked(1 << 16):
                        await asyncio.sleep(0)

            await asyncio.gather(*(one() for _ in range(8)))

    with RssSampler(pid) as sampler:
        asyncio.run(many())
    return {"rss_before_mb": before / 2**20, "rss_peak_mb": max(sampler.samples, default=before) / 2**20}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="latency: requests to each server (default 2000)")
    parser.add_argument("--duration", type=int, default=10, help="throughput: seconds of wrk per server (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="throughput: wrk connections (default 32)")
    parser.add_argument("--json", metavar="FILE", help="write every figure to FILE")
    args = parser.parse_args()

    print(f"building packages in {OUT} ...", flush=True)
    world = build(OUT)
    packages: dict[str, Path] = world["packages"]
    upstream = FeedServer().start()
    for path in packages.values():
        upstream.add(path)
    judge_options = TrustOptions(configfile=str(world["config"]), trust_store=(str(world["roots"]),), revocation="off",
                                 cache_dir=str(OUT / "cache"))
    gate = Process([sys.executable, "-m", "trustpolicy", "serve", "--listen", "127.0.0.1:0", "--configfile", str(world["config"]),
                    "--trust-store", str(world["roots"]), "--revocation", "off", "--cache-dir", str(OUT / "cache"),
                    "--audit-log", str(OUT / "audit.jsonl"), "--workers", "2", "--upstream", f"up={upstream.index_url}"],
                   OUT, r"listening on (http://\S+)")
    static = Process([sys.executable, "-c", STATIC_SERVER, str(OUT / "packages")], OUT, r"listening on (http://\S+)")
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                                           "load_before": os.getloadavg()}}
    try:
        time.sleep(2)  # the gate's workers start in the background
        first = first_downloads(gate.url, upstream, packages, judge_options)
        small = [r for r in first if r["size"] < 1 << 20]
        ten = next(r for r in first if r["package"] == "Bench.Ten")
        results["first_download"] = {
            "small_median": {k: statistics.median(r[k] for r in small)
                             for k in ("direct_ms", "gate_first_ms", "verify_ms", "overhead_ms", "gate_fetch_ms", "gate_verify_ms")},
            "ten_mb": ten, "rows": first}
        name = "bench.small00/1.0.0/bench.small00.1.0.0.nupkg"
        results["latency_ms"] = latency(f"{gate.url}/feeds/up/v3/flat/{name}", f"{static.url}/files/bench.small00.1.0.0.nupkg",
                                        args.requests)
        rss_before = tree_rss(gate.process.pid)
        with RssSampler(gate.process.pid) as sampler:
            gate_rps = wrk(f"{gate.url}/feeds/up/v3/flat/{name}", args.connections, args.duration)
        static_rps = wrk(f"{static.url}/files/bench.small00.1.0.0.nupkg", args.connections, args.duration)
        results["throughput"] = {"gate_rps": gate_rps, "static_rps": static_rps, "rss_before_mb": rss_before / 2**20,
                                 "rss_peak_mb": max(sampler.samples, default=rss_before) / 2**20,
                                 "rss_after_mb": tree_rss(gate.process.pid) / 2**20}
        results["streaming_50mb_x8"] = streaming(gate.url, gate.process.pid)
        results["machine"]["load_after"] = os.getloadavg()
    finally:
        gate.stop()
        static.stop()
        upstream.stop()

    report(results)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


def report(r: dict[str, Any]) -> None:
    lat, thr, first, stream = r["latency_ms"], r["throughput"], r["first_download"], r["streaming_50mb_x8"]
    small, ten = first["small_median"], first["ten_mb"]

    def mark(ok: bool | None) -> str:
        return "n/a" if ok is None else ("PASS" if ok else "MISS")

    rows = [
        ("cached 100 KB, p50: gate / static / overhead", f"{lat['gate_p50']:.2f} / {lat['static_p50']:.2f} / {lat['overhead_p50']:.2f} ms",
         "< 2 ms", mark(lat["overhead_p50"] < TARGETS["latency_ms"])),
        ("cached 100 KB, p99: gate / static / overhead", f"{lat['gate_p99']:.2f} / {lat['static_p99']:.2f} / {lat['overhead_p99']:.2f} ms",
         "< 2 ms", mark(lat["overhead_p99"] < TARGETS["latency_ms"])),
        ("throughput, cached 100 KB (static server)",
         f"{thr['gate_rps']:.0f}/s ({thr['static_rps']:.0f}/s)" if thr["gate_rps"] else "wrk not installed",
         ">= 1,000/s", mark(None if thr["gate_rps"] is None else thr["gate_rps"] >= TARGETS["throughput"])),
        ("gate RSS under that load: before / peak / after", f"{thr['rss_before_mb']:.0f} / {thr['rss_peak_mb']:.0f} / {thr['rss_after_mb']:.0f} MB",
         "flat", mark(thr["rss_peak_mb"] - thr["rss_before_mb"] < 50)),
        ("first download 100 KB (median of 40): overhead / verification", f"{small['overhead_ms']:.1f} / {small['verify_ms']:.1f} ms",
         "<= verification + 10%", mark(small["overhead_ms"] <= TARGETS["first_ratio"] * small["verify_ms"])),
        ("  of which: gate's fetch / worker round trip", f"{small['gate_fetch_ms']:.1f} / {small['gate_verify_ms']:.1f} ms", "", ""),
        ("first download 10 MB: overhead / verification", f"{ten['overhead_ms']:.1f} / {ten['verify_ms']:.1f} ms",
         "<= verification + 10%", mark(ten["overhead_ms"] <= TARGETS["first_ratio"] * ten["verify_ms"])),
        ("  of which: gate's fetch / worker round trip", f"{ten['gate_fetch_ms']:.1f} / {ten['gate_verify_ms']:.1f} ms", "", ""),
        ("8 clients streaming the cached 50 MB package: RSS before / peak", f"{stream['rss_before_mb']:.0f} / {stream['rss_peak_mb']:.0f} MB",
         "flat", mark(stream["rss_peak_mb"] - stream["rss_before_mb"] < 50)),
    ]
    width = max(len(r[0]) for r in rows)
    print()
    for label, value, target, verdict in rows:
        print(f"{label:<{width}}  {value:>28}  {target:>22}  {verdict}")
    print(f"\nload average before/after: {r['machine']['load_before']} / {r['machine'].get('load_after')}")


if __name__ == "__main__":
    sys.exit(main())
