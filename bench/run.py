"""Benchmark `trustpolicy check` against the limit the hardware sets (run by hand; not a test).

    .venv/bin/python bench/run.py [--packages N] [--jobs J] [--json out.json] [--full] [--repeat R]

Measures in one run, on one machine (graphs come from bench/make_graph.py, generated once):

- limit: SHA-256 over every .nupkg of the graph, each file read once, on every core (process pool);
- cold check: `trustpolicy check` in a subprocess with an empty cache folder, --revocation off,
  the bench roots as --extra-roots: wall time and peak RSS; warm: the same again, cache kept;
- fixed cost per package: 200 tiny packages vs 1, --jobs 1, no cache, minus their hashing;
- scaling with N (100, 1,000 and, with --full, 10,000 tiny packages) and with package size
  (one package of 1, 10 and 100 MiB).

Prints a table with PASS/MISS against the targets and writes everything to --json.
Page cache: every file is read once before timing, so limit and check both read from memory;
the figures are CPU bounds, not disk bounds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import make_graph  # noqa: E402

MiB = 1024 * 1024
TARGETS = {
    "cold_vs_limit": 1.5,  # cold check of the 1,000-package graph / hashing limit
    "fixed_ms": 2.0,  # per-package fixed cost, one core
    "warm_s": 0.3,  # warm check of the unchanged 1,000-package graph
    "rss_mb": 200.0,  # peak RSS, any package size
    "linear": 1.25,  # per-package cost at the largest N / at the smallest N (tolerance)
}


def python() -> str:
    venv = ROOT / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


# -- measuring a subprocess ---------------------------------------------------------------------------


@dataclass
class Run:
    wall: float
    peak_rss_mb: float  # largest single process (the check or one of its workers): wait4's ru_maxrss
    tree_rss_mb: float  # largest sampled sum of RSS over the process and its descendants
    exit_code: int
    user: float = 0.0
    system: float = 0.0
    stderr: str = field(default="", repr=False)


def _children_map() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith(b"VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(cmd: list[str], *, cwd: Path | None = None, sample: float = 0.05) -> Run:
    """Run cmd; wall time, peak RSS (wait4: max over the process and its reaped descendants) and the
    peak of the summed RSS of its process tree (sampled from /proc every `sample` seconds)."""
    stderr = tempfile.TemporaryFile()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr)
    peak_tree = 0
    stop = threading.Event()

    def sampler() -> None:
        nonlocal peak_tree
        while not stop.wait(sample):
            tree, todo, total = _children_map(), [proc.pid], 0
            while todo:
                pid = todo.pop()
                total += _rss_kb(pid)
                todo.extend(tree.get(pid, ()))
            peak_tree = max(peak_tree, total)

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    stop.set()
    thread.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr.seek(0)
    peak = usage.ru_maxrss / 1024
    return Run(wall, peak, max(peak_tree / 1024, peak), proc.returncode, usage.ru_utime, usage.ru_stime,
               stderr.read().decode(errors="replace")[-2000:])


def check_cmd(graph: Path, project: str, *, cache: Path | None, jobs: int | None, report: Path) -> list[str]:
    cmd = [python(), "-m", "trustpolicy", "check", str(graph / "projects" / project),
           "--configfile", str(graph / "NuGet.Config"), "--extra-roots", str(graph / "roots.pem"),
           "--revocation", "off", "--format", "json", "--output", str(report)]
    cmd += ["--cache-dir", str(cache)] if cache else ["--no-cache"]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    return cmd


def run_check(graph: Path, project: str, *, jobs: int | None, cache: Path | None, expect: int) -> Run:
    report = Path(tempfile.mkstemp(prefix="bench-report-", suffix=".json")[1])
    try:
        run = measure(check_cmd(graph, project, cache=cache, jobs=jobs, report=report))
        if run.exit_code != 0:
            raise SystemExit(f"check failed (exit {run.exit_code}) on {graph}/projects/{project}:\n{run.stderr}")
        summary = json.loads(report.read_text())["summary"]
        if summary["total"] != expect or summary["valid"] != expect:
            raise SystemExit(f"expected {expect} valid packages, got {summary}")
        return run
    finally:
        report.unlink(missing_ok=True)


def cold_and_warm(graph: Path, project: str, *, jobs: int | None, expect: int, repeat: int,
                  warm: bool = True) -> tuple[list[Run], list[Run]]:
    """`repeat` cold runs (a fresh cache folder each), each followed by one warm run on its cache."""
    colds, warms = [], []
    for _ in range(repeat):
        cache = Path(tempfile.mkdtemp(prefix="cache-", dir=make_graph.OUT))
        try:
            colds.append(run_check(graph, project, jobs=jobs, cache=cache, expect=expect))
            if warm:
                warms.append(run_check(graph, project, jobs=jobs, cache=cache, expect=expect))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    return colds, warms


# -- the limit ------------------------------------------------------------------------------------


def _sha256_file(path: str) -> int:
    h = hashlib.sha256()
    with open(path, "rb", buffering=0) as handle:
        buffer = bytearray(1 << 20)
        view = memoryview(buffer)
        while n := handle.readinto(buffer):
            h.update(view[:n])
    return os.path.getsize(path)


def nupkgs(graph: Path, count: int) -> list[str]:
    libraries = json.loads((graph / "manifest.json").read_text())["libraries"][:count]
    return [str(graph / "packages" / lib["path"] / f"{lib['path'].replace('/', '.')}.nupkg") for lib in libraries]


def limit(files: list[str], workers: int, repeat: int) -> list[float]:
    """Wall seconds to SHA-256 every file once on `workers` processes (pool start included)."""
    for path in files:  # page cache: time CPU work, not the disk
        with open(path, "rb") as handle:
            while handle.read(1 << 22):
                pass
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        if workers == 1:
            for path in files:
                _sha256_file(path)
        else:
            with ProcessPoolExecutor(workers) as pool:
                # biggest first: the pool does not end on one large straggler
                ordered = sorted(files, key=os.path.getsize, reverse=True)
                list(pool.map(_sha256_file, ordered, chunksize=max(1, len(files) // (workers * 16))))
        times.append(time.perf_counter() - start)
    return times


# -- reporting ------------------------------------------------------------------------------------


def machine() -> dict:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = next(int(l.split()[1]) for l in Path("/proc/meminfo").read_text().splitlines() if l.startswith("MemTotal"))
    except (OSError, StopIteration):
        mem_kb = 0
    version = subprocess.run([python(), "-c", "import sys, trustpolicy, cryptography, ssl; "
                              "print(sys.version.split()[0], trustpolicy.__version__, cryptography.__version__, ssl.OPENSSL_VERSION)"],
                             capture_output=True, text=True).stdout.split(" ", 3)
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "trustpolicy"],
                                    capture_output=True, text=True).stdout.strip())
    except OSError:
        rev, dirty = "", False
    return {"nproc": os.cpu_count(), "cpu": model, "ram_gb": round(mem_kb / 1024 / 1024, 1),
            "python": version[0] if version else platform.python_version(),
            "trustpolicy": version[1] if len(version) > 1 else "?", "cryptography": version[2] if len(version) > 2 else "?",
            "openssl": version[3].strip() if len(version) > 3 else "?", "git": rev + ("+dirty" if dirty else ""),
            "kernel": platform.release()}


def med(values: list[float]) -> float:
    return statistics.median(values)


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", type=int, default=1000, help="packages in the realistic graph (default 1,000)")
    parser.add_argument("--jobs", type=int, help="--jobs for the check and workers for the limit (default: every core)")
    parser.add_argument("--json", metavar="FILE", help="write every measurement here")
    parser.add_argument("--full", action="store_true", help="add the 10,000-package scaling point")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is reported (default 3)")
    parser.add_argument("--skip", action="append", default=[], choices=("main", "fixed", "scaling", "size"),
                        help="leave out a part (repeatable)")
    args = parser.parse_args(argv)
    jobs = args.jobs
    workers = jobs or os.cpu_count() or 1
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    results: dict = {"machine": machine(), "params": {"packages": args.packages, "jobs": jobs, "workers": workers,
                                                      "repeat": args.repeat, "full": args.full}}
    log(f"machine: {results['machine']}")
    rows: list[tuple[str, str, str, str]] = []  # figure, value, target, PASS/MISS

    # Import floor: what any check pays before it reads the graph (helps read the warm figure).
    floor = [measure([python(), "-c", "import trustpolicy.check"]) for _ in range(args.repeat)]
    results["import_floor_s"] = med([r.wall for r in floor])
    rows.append(("python -c 'import trustpolicy.check'", f"{results['import_floor_s']:.3f} s", "", ""))

    if "main" not in args.skip:
        n = args.packages
        graph = make_graph.ensure_graph(f"realistic-{n}", n, "realistic", log=log)
        files = nupkgs(graph, n)
        total = sum(os.path.getsize(f) for f in files)
        log(f"main graph: {n} packages, {total / 1e6:.0f} MB; limit...")
        lim = limit(files, workers, args.repeat)
        log("cold/warm checks...")
        colds, warms = cold_and_warm(graph, str(n), jobs=jobs, expect=n, repeat=args.repeat)
        cold, warm, lim_s = med([r.wall for r in colds]), med([r.wall for r in warms]), med(lim)
        results["main"] = {"packages": n, "bytes": total, "limit_s": lim, "cold": [asdict(r) for r in colds],
                           "warm": [asdict(r) for r in warms], "cold_over_limit": cold / lim_s}
        rows += [
            (f"limit: SHA-256 of {n} packages ({total / 1e6:.0f} MB), {workers} procs", f"{lim_s:.3f} s",
             f"{total / lim_s / 1e6:.0f} MB/s", ""),
            ("cold check", f"{cold:.3f} s", f"{max(r.peak_rss_mb for r in colds):.0f} MB peak/proc, "
             f"{max(r.tree_rss_mb for r in colds):.0f} MB tree", ""),
            ("cold / limit", f"{cold / lim_s:.2f}x", f"< {TARGETS['cold_vs_limit']}x",
             verdict(cold / lim_s < TARGETS["cold_vs_limit"])),
            ("warm check (unchanged graph)", f"{warm:.3f} s", f"< {TARGETS['warm_s']} s", verdict(warm < TARGETS["warm_s"])),
            ("warm peak RSS", f"{max(r.peak_rss_mb for r in warms):.0f} MB", "", ""),
        ]
        if n != 1000:
            rows[-3] = (*rows[-3][:3], rows[-3][3] + " (target is for N=1,000)")

    if "fixed" not in args.skip or "scaling" not in args.skip:
        pool_size = 10000 if args.full else 1000
        subsets = (1, 100, 200, 1000, 10000)
        tiny = make_graph.ensure_graph("tiny", pool_size, "tiny", subsets=subsets, log=log)

    if "fixed" not in args.skip:
        log("fixed cost: tiny 1 vs 200, --jobs 1 ...")
        one = [run_check(tiny, "1", jobs=1, cache=None, expect=1) for _ in range(args.repeat)]
        two = [run_check(tiny, "200", jobs=1, cache=None, expect=200) for _ in range(args.repeat)]
        hash_s = med(limit(nupkgs(tiny, 200), 1, args.repeat)) / 200
        fixed_ms = 1000 * ((med([r.wall for r in two]) - med([r.wall for r in one])) / 199 - hash_s)
        results["fixed"] = {"one": [asdict(r) for r in one], "two_hundred": [asdict(r) for r in two],
                            "hash_per_package_s": hash_s, "fixed_ms": fixed_ms}
        rows += [
            ("check of 1 tiny package, --jobs 1 (startup)", f"{med([r.wall for r in one]):.3f} s", "", ""),
            ("check of 200 tiny packages, --jobs 1", f"{med([r.wall for r in two]):.3f} s", "", ""),
            ("per-package fixed cost, one core", f"{fixed_ms:.2f} ms", f"< {TARGETS['fixed_ms']} ms",
             verdict(fixed_ms < TARGETS["fixed_ms"])),
        ]

    if "scaling" not in args.skip:
        points = [100, 1000] + ([10000] if args.full else [])
        scaling = {}
        for count in points:
            log(f"scaling: {count} tiny packages...")
            colds, warms = cold_and_warm(tiny, str(count), jobs=jobs, expect=count,
                                         repeat=args.repeat if count < 10000 else 1)
            scaling[count] = {"cold": [asdict(r) for r in colds], "warm": [asdict(r) for r in warms]}
            c, w = med([r.wall for r in colds]), med([r.wall for r in warms])
            rows.append((f"scaling: {count} tiny packages cold / warm", f"{c:.3f} s / {w:.3f} s",
                         f"{1000 * c / count:.2f} / {1000 * w / count:.2f} ms per package", ""))
        # Linear: the marginal cost per package over the last step is not above the first step's.
        first = (med([r["wall"] for r in scaling[points[1]]["cold"]]) - med([r["wall"] for r in scaling[points[0]]["cold"]])) / (points[1] - points[0])
        last = first
        if len(points) > 2:
            last = (med([r["wall"] for r in scaling[points[2]]["cold"]]) - med([r["wall"] for r in scaling[points[1]]["cold"]])) / (points[2] - points[1])
        ratio = last / first if first > 0 else float("inf")
        results["scaling"] = {"points": scaling, "marginal_first_s": first, "marginal_last_s": last, "ratio": ratio}
        rows.append(("scaling: marginal cost per package, first / last step", f"{1000 * first:.2f} / {1000 * last:.2f} ms",
                     f"ratio {ratio:.2f} < {TARGETS['linear']}" + ("" if args.full else " (needs --full)"),
                     verdict(ratio < TARGETS["linear"]) if args.full else "-"))

    if "size" not in args.skip:
        sizes = {}
        worst_rss = 0.0
        for mib in (1, 10, 100):
            graph = make_graph.ensure_graph(f"size-{mib}MiB", 1, str(mib * MiB), log=log)
            log(f"size: one {mib} MiB package...")
            lim = limit(nupkgs(graph, 1), 1, args.repeat)
            colds, warms = cold_and_warm(graph, "1", jobs=jobs, expect=1, repeat=args.repeat)
            c = med([r.wall for r in colds])
            rss = max(r.tree_rss_mb for r in colds)
            worst_rss = max(worst_rss, rss)
            sizes[mib] = {"limit_s": lim, "cold": [asdict(r) for r in colds], "warm": [asdict(r) for r in warms]}
            rows.append((f"size: one {mib} MiB package: limit / cold", f"{med(lim):.3f} s / {c:.3f} s",
                         f"peak RSS {rss:.0f} MB (< {TARGETS['rss_mb']:.0f})", verdict(rss < TARGETS["rss_mb"])))
        if "main" in results:
            main_rss = max(r["peak_rss_mb"] for r in results["main"]["cold"])
            rows.append(("peak RSS of one process, 1,000-package cold check", f"{main_rss:.0f} MB",
                         f"< {TARGETS['rss_mb']:.0f} MB", verdict(main_rss < TARGETS["rss_mb"])))
        results["size"] = sizes

    results["rows"] = rows
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    twidth = max(len(r[2]) for r in rows)
    m = results["machine"]
    print(f"\ntrustpolicy {m['trustpolicy']} ({m['git']}) - {m['nproc']} x {m['cpu']}, {m['ram_gb']} GB RAM, "
          f"Python {m['python']}, {m['openssl']}; median of {args.repeat}")
    for figure, value, target, ok in rows:
        print(f"{figure:<{width}}  {value:>{vwidth}}  {target:<{twidth}}  {ok}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
