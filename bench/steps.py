"""Where a cold check spends its time, step by step, in one process (run by hand; not a test).

    .venv/bin/python bench/steps.py [GRAPH_DIR] [--project N] [--json FILE]

GRAPH_DIR is a folder made by bench/make_graph.py (default bench/out/realistic-1000). Times, per
package and without a profiler's overhead, each piece of work `check` does for it, calling the
same functions in the same order as check.py's worker (CPU time, so a busy machine does not skew it): open the archive, read the nuspec, read and
parse the signature, the one read that hashes the file (SHA-256 and SHA-512 of the unsigned content,
SHA-512 of the whole file for .nupkg.sha512), the trust evaluation (CMS signatures, timestamps,
chains), the graph's integrity records, the report entry, the verdict cache. The first
package is reported apart: it builds the trust managers and validates each chain once.
Also prints this machine's single-core hashlib throughput.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))


def hash_throughput(mb: int = 256) -> dict[str, float]:
    data = os.urandom(mb << 20)
    out = {}
    for name in ("sha256", "sha384", "sha512"):
        best = min(_timed(lambda: hashlib.new(name, data).digest()) for _ in range(3))
        out[name] = mb * 1.048576 / best  # MB/s
    return out


def _timed(fn) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("graph", nargs="?", default=str(BENCH / "out" / "realistic-1000"))
    parser.add_argument("--project", help="projects/<N> to read (default: the largest)")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    graph_dir = Path(args.graph)
    project = args.project or max((p.name for p in (graph_dir / "projects").iterdir()), key=int)

    t0 = time.perf_counter()
    from trustpolicy._internal.archive import PackageArchive
    from trustpolicy._internal.cache import VerdictCache
    from trustpolicy._internal.explain import explain
    from trustpolicy._internal.graph import HashCache, collect_graph, verify_graph_hashes
    from trustpolicy._internal.signature import parse_signature
    from trustpolicy.context import TrustContext, TrustOptions
    imports = time.perf_counter() - t0

    timings: dict[str, list[float]] = defaultdict(list)

    def step(name: str, fn):  # type: ignore[no-untyped-def]
        start = time.process_time()  # CPU time: stable when other processes share the machine
        value = fn()
        timings[name].append(time.process_time() - start)
        return value

    t0 = time.perf_counter()
    graph = collect_graph([graph_dir / "projects" / project], configfile=graph_dir / "NuGet.Config")
    collect = time.perf_counter() - t0
    t0 = time.perf_counter()
    context = TrustContext.build(TrustOptions(mode="require", configfile=str(graph_dir / "NuGet.Config"),
                                              extra_roots=(str(graph_dir / "roots.pem"),), revocation="off"))
    verifier = context.verifier()
    setup = time.perf_counter() - t0

    hashes = HashCache()
    cache = VerdictCache(Path(tempfile.mkdtemp(prefix="steps-cache-", dir=BENCH / "out")), "steps")
    first: dict[str, float] = {}
    total_bytes = 0
    for index, package in enumerate(graph.packages):
        assert package.nupkg is not None
        path = Path(package.nupkg)
        total_bytes += path.stat().st_size
        archive = step("archive open (central directory)", lambda: PackageArchive.open(path))
        step("one read: content SHA-256 + SHA-512, file SHA-512",
             lambda: archive.package_hashes(("sha256", "sha512"), file_algorithms=("sha512",)))
        step("read nuspec", archive.read_nuspec)
        der = step("read .signature.p7s", archive.read_signature)
        primary = step("parse_signature (asn1crypto CMS)", lambda: parse_signature(der))
        step("is_zip64", archive.is_zip64)
        step("trust: evaluate signatures + chains", lambda: verifier._trust(primary))
        step("allow lists", lambda: verifier.allow_lists.check(primary, verifier.settings))
        verdict = step("= Verifier.verify_package (all but hashing, again)",
                       lambda: verifier.verify_package(path, archive=archive))
        step("graph: verify_graph_hashes (digests from the read)",
             lambda: verify_graph_hashes(package, cache=hashes, archive=archive))
        step("report entry: verdict.to_json", verdict.to_json)
        step("explain", lambda: explain(verdict, package.id, package.version, mode="require"))
        key = hashlib.sha256(str(path).encode()).hexdigest()
        step("verdict cache put (in memory)", lambda: cache.put(key, verdict))
        if index == 0:
            first = {name: values.pop() for name, values in timings.items()}
    timings["verdict cache save (all entries, once)"].append(_timed(cache.save))
    first["verdict cache save (all entries, once)"] = 0.0

    n = len(graph.packages) - 1
    print(f"{graph_dir.name}/projects/{project}: {n + 1} packages, {total_bytes / 1e6:.0f} MB")
    print(f"imports {imports * 1000:.0f} ms, collect_graph {collect * 1000:.0f} ms, verifier setup {setup * 1000:.0f} ms")
    print(f"\n{'step':<52} {'first pkg ms':>12} {'mean ms':>9} {'median ms':>10} {'total s':>8}")
    rows = {}
    for name, values in timings.items():
        rows[name] = {"first_ms": 1000 * first.get(name, 0), "mean_ms": 1000 * statistics.fmean(values),
                      "median_ms": 1000 * statistics.median(values), "total_s": sum(values)}
        r = rows[name]
        print(f"{name:<52} {r['first_ms']:>12.2f} {r['mean_ms']:>9.3f} {r['median_ms']:>10.3f} {r['total_s']:>8.2f}")
    throughput = hash_throughput()
    print("\nhashlib, one core: " + ", ".join(f"{k} {v:.0f} MB/s" for k, v in throughput.items()))
    if args.json:
        Path(args.json).write_text(json.dumps({"graph": str(graph_dir), "project": project, "packages": n + 1,
                                               "bytes": total_bytes, "imports_s": imports, "collect_s": collect,
                                               "setup_s": setup, "steps": rows, "hashlib_mb_s": throughput}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
