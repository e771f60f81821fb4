"""Benchmark `trustpolicy check` against the limit the hardware sets (run by hand; not a test).

    .venv/bin/python bench/run.py [--packages N] [--jobs J] [--json out.json] [--full] [--repeat R]

Measures in one run, on one machine (graphs come from bench/make_graph.py, generated once):

- floor (the yardstick): SHA-256 and SHA-512 over every .nupkg of the graph, each file read once, on
  every core (process pool): the signature covers a SHA-256 of the content and restore's records are
  SHA-512s, so this is the least a verifier that re-checks them can do; the SHA-256-only limit is
  shown beside it;
- cold check: `trustpolicy check` in a subprocess with an empty cache folder, --revocation off,
  the bench roots as --extra-roots: wall time and peak RSS, and its ratio to the floor; warm: the
  same again, cache kept;
- fixed cost per package: 200 tiny packages vs 1, --jobs 1, no cache, minus their hashing;
- scaling with N (100, 1,000 and, with --full, 10,000 tiny packages) for every source format (an
  assets file over a global folder, one folder of .nupkg files, a packages.config solution) and
  with package size (one package of 1, 10 and 100 MiB).

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
import resource
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
    "cold_vs_floor": 1.5,  # cold check of the 1,000-package graph / the floor (SHA-256 + SHA-512, one read)
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
    peak_rss_mb: float  # largest single process (the check or one of its workers): sampled VmHWM
    tree_rss_mb: float  # largest sampled sum of RSS over the process and its descendants
    exit_code: int
    user: float = 0.0  # CPU seconds of the process and its workers
    system: float = 0.0
    foreign: float = 0.0  # share of the machine's CPU used by other processes meanwhile (noise)
    stderr: str = field(default="", repr=False)


def child_env() -> dict[str, str]:
    """The environment of measured processes: bytecode caching on (as in any pip install), in
    bench/out/pycache so that nothing is written into the source tree."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(make_graph.OUT / "pycache")
    return env


def _busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy (all cores), from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, idle, iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def machine_busy(seconds: float = 1.0) -> float:
    """Share of all cores busy over `seconds` (0..1)."""
    before = _busy_seconds()
    time.sleep(seconds)
    return (_busy_seconds() - before) / (seconds * (os.cpu_count() or 1))


def wait_quiet(limit: float, log, threshold: float = 0.15) -> float:
    """Wait up to `limit` seconds for the machine to be idle (other users' CPU below threshold)."""
    deadline = time.monotonic() + limit
    busy = machine_busy()
    while busy > threshold and time.monotonic() < deadline:
        log(f"  machine busy ({busy:.0%} of all cores used by others); waiting...")
        time.sleep(10)
        busy = machine_busy()
    return busy


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


def _memory_kb(pid: int) -> tuple[int, int]:
    """(VmRSS, VmHWM) of a process: its resident set now and at its peak so far."""
    found = {}
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            for line in handle:
                if line.startswith((b"VmRSS:", b"VmHWM:")):
                    found[line[:5]] = int(line.split()[1])
    except OSError:
        pass
    return found.get(b"VmRSS", 0), found.get(b"VmHWM", 0)


def measure(cmd: list[str], *, cwd: Path | None = None, sample: float = 0.05) -> Run:
    """Run cmd; wall time, peak RSS of its largest process and the peak of the summed RSS of its
    process tree, both sampled from /proc every `sample` seconds (and once at the start).

    wait4's ru_maxrss alone misleads: Linux carries the parent's peak across fork + exec into it, so
    once this harness has grown (generating graphs) every child reports at least the harness's size
    (`/bin/true` "uses" 310 MB under a 300 MB parent)."""
    stderr = tempfile.TemporaryFile()
    busy_before = _busy_seconds()
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr, env=child_env())
    peak_tree = peak_one = 0
    stop = threading.Event()

    def sampler() -> None:
        nonlocal peak_tree, peak_one
        while True:
            tree, todo, total = _children_map(), [proc.pid], 0
            while todo:
                pid = todo.pop()
                rss, hwm = _memory_kb(pid)
                total += rss
                peak_one = max(peak_one, hwm)
                todo.extend(tree.get(pid, ()))
            peak_tree = max(peak_tree, total)
            if stop.wait(sample):
                return

    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    busy = _busy_seconds() - busy_before
    stop.set()
    thread.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    stderr.seek(0)
    # wait4 also sees a short process the sampler missed, but is only believable above our own peak.
    own_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    peak = max(peak_one, usage.ru_maxrss if usage.ru_maxrss > own_peak else 0) / 1024
    foreign = max(0.0, busy - usage.ru_utime - usage.ru_stime) / (wall * (os.cpu_count() or 1))
    return Run(wall, peak, max(peak_tree / 1024, peak), proc.returncode, usage.ru_utime, usage.ru_stime,
               round(foreign, 3), stderr.read().decode(errors="replace")[-2000:])


# Where each source format's graph of n packages lives in a graph folder (make_graph.py).
FORMATS = {"assets": "projects", "folder": "flat", "packages.config": "solutions"}


def check_cmd(graph: Path, project: str, *, cache: Path | None, jobs: int | None, report: Path,
              layout: str = "projects") -> list[str]:
    cmd = [python(), "-m", "trustpolicy", "check", str(graph / layout / project),
           "--configfile", str(graph / "NuGet.Config"), "--extra-roots", str(graph / "roots.pem"),
           "--revocation", "off", "--format", "json", "--output", str(report)]
    cmd += ["--cache-dir", str(cache)] if cache else ["--no-cache"]
    if jobs:
        cmd += ["--jobs", str(jobs)]
    return cmd


def run_check(graph: Path, project: str, *, jobs: int | None, cache: Path | None, expect: int,
              layout: str = "projects") -> Run:
    report = Path(tempfile.mkstemp(prefix="bench-report-", suffix=".json")[1])
    try:
        run = measure(check_cmd(graph, project, cache=cache, jobs=jobs, report=report, layout=layout))
        if run.exit_code != 0:
            raise SystemExit(f"check failed (exit {run.exit_code}) on {graph}/{layout}/{project}:\n{run.stderr}")
        summary = json.loads(report.read_text())["summary"]
        if summary["total"] != expect or summary["valid"] != expect:
            raise SystemExit(f"expected {expect} valid packages, got {summary}")
        return run
    finally:
        report.unlink(missing_ok=True)


def cold_and_warm(graph: Path, project: str, *, jobs: int | None, expect: int, repeat: int,
                  warm: bool = True, layout: str = "projects") -> tuple[list[Run], list[Run]]:
    """`repeat` cold runs (a fresh cache folder each), each followed by one warm run on its cache."""
    colds, warms = [], []
    for _ in range(repeat):
        cache = Path(tempfile.mkdtemp(prefix="cache-", dir=make_graph.OUT))
        try:
            colds.append(run_check(graph, project, jobs=jobs, cache=cache, expect=expect, layout=layout))
            if warm:
                warms.append(run_check(graph, project, jobs=jobs, cache=cache, expect=expect, layout=layout))
        finally:
            shutil.rmtree(cache, ignore_errors=True)
    return colds, warms


# -- the limit ------------------------------------------------------------------------------------


def _hash_file(path: str, algorithms: tuple[str, ...] = ("sha256",)) -> int:
    """Read `path` once, feeding every chunk to one hasher per algorithm."""
    hashers = [hashlib.new(a) for a in algorithms]
    with open(path, "rb", buffering=0) as handle:
        buffer = bytearray(1 << 20)
        view = memoryview(buffer)
        while n := handle.readinto(buffer):
            for h in hashers:
                h.update(view[:n])
    return os.path.getsize(path)


def _hash_sha256_sha512(path: str) -> int:
    return _hash_file(path, ("sha256", "sha512"))


def nupkgs(graph: Path, count: int) -> list[str]:
    libraries = json.loads((graph / "manifest.json").read_text())["libraries"][:count]
    return [str(graph / "packages" / lib["path"] / f"{lib['path'].replace('/', '.')}.nupkg") for lib in libraries]


def package_files(graph: Path, count: int) -> list[str]:
    """Every file of the first `count` packages' folders (.nupkg, .nupkg.metadata, .sha512, ...)."""
    libraries = json.loads((graph / "manifest.json").read_text())["libraries"][:count]
    return [str(p) for lib in libraries for p in (graph / "packages" / lib["path"]).iterdir() if p.is_file()]


def warm_page_cache(files: list[str]) -> None:
    for path in files:  # time CPU work, not the disk
        with open(path, "rb") as handle:
            while handle.read(1 << 22):
                pass


@dataclass
class Limit:
    wall: list[float]
    cpu: list[float]  # CPU seconds of the hashing processes (robust when the machine is shared)


def limit(files: list[str], workers: int, repeat: int, fn=_hash_file) -> Limit:  # type: ignore[no-untyped-def]
    """Seconds to hash every file once on `workers` processes (pool start included).

    fn=_hash_file: the limit (SHA-256); fn=_hash_sha256_sha512: the floor of what check must hash
    (the signature's SHA-256 content hash and the graph's SHA-512 records), one read per file."""
    warm_page_cache(files)
    walls, cpus = [], []
    for _ in range(repeat):
        start, cpu_start = time.perf_counter(), _cpu_self_and_children()
        if workers == 1:
            for path in files:
                fn(path)
        else:
            with ProcessPoolExecutor(workers) as pool:
                # biggest first: the pool does not end on one large straggler
                ordered = sorted(files, key=os.path.getsize, reverse=True)
                list(pool.map(fn, ordered, chunksize=max(1, len(files) // (workers * 16))))
        walls.append(time.perf_counter() - start)
        cpus.append(_cpu_self_and_children() - cpu_start)
    return Limit(walls, cpus)


def _cpu_self_and_children() -> float:
    """CPU seconds of this process and its reaped children (pool workers are reaped at shutdown)."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


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


def cpu(runs: list[Run]) -> float:
    return med([r.user + r.system for r in runs])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", type=int, default=1000, help="packages in the realistic graph (default 1,000)")
    parser.add_argument("--jobs", type=int, help="--jobs for the check and workers for the limit (default: every core)")
    parser.add_argument("--json", metavar="FILE", help="write every measurement here")
    parser.add_argument("--full", action="store_true", help="add the 10,000-package scaling point")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the median is reported (default 3)")
    parser.add_argument("--wait-quiet", type=float, default=300, metavar="S",
                        help="before each part, wait up to S seconds for other processes to leave the CPUs idle (default 300)")
    parser.add_argument("--skip", action="append", default=[], choices=("main", "fixed", "scaling", "size"),
                        help="leave out a part (repeatable)")
    args = parser.parse_args(argv)
    jobs = args.jobs
    workers = jobs or os.cpu_count() or 1
    log = lambda *a: print(*a, file=sys.stderr, flush=True)  # noqa: E731
    results: dict = {"machine": machine(), "params": {"packages": args.packages, "jobs": jobs, "workers": workers,
                                                      "repeat": args.repeat, "full": args.full}}
    log(f"machine: {results['machine']}")
    rows: list[tuple[str, str, str, str]] = []  # figure, value, note/target, PASS/MISS
    busy: dict[str, float] = {}

    # Import floor: what any check pays before it reads the graph (helps read the warm figure).
    measure([python(), "-c", "import trustpolicy.check, trustpolicy.cli"])  # fills the bytecode cache
    busy["import"] = wait_quiet(args.wait_quiet, log)
    floor = [measure([python(), "-c", "import trustpolicy.check"]) for _ in range(args.repeat)]
    results["import_floor"] = [asdict(r) for r in floor]
    rows.append(("python -c 'import trustpolicy.check'", f"{med([r.wall for r in floor]):.3f} s", "", ""))

    if "main" not in args.skip:
        n = args.packages
        graph = make_graph.ensure_graph(f"realistic-{n}", n, "realistic", log=log)
        files = nupkgs(graph, n)
        total = sum(os.path.getsize(f) for f in files)
        busy["main"] = wait_quiet(args.wait_quiet, log)
        log(f"main graph: {n} packages, {total / 1e6:.0f} MB; limit...")
        lim = limit(files, workers, args.repeat)
        both = limit(files, workers, args.repeat, _hash_sha256_sha512)
        log("cold/warm checks...")
        colds, warms = cold_and_warm(graph, str(n), jobs=jobs, expect=n, repeat=args.repeat)
        cold, warm, lim_s, floor_s = (med([r.wall for r in colds]), med([r.wall for r in warms]), med(lim.wall),
                                      med(both.wall))
        results["main"] = {"packages": n, "bytes": total, "limit": asdict(lim), "sha256_sha512": asdict(both),
                           "cold": [asdict(r) for r in colds], "warm": [asdict(r) for r in warms],
                           "cold_over_limit": cold / lim_s, "cold_over_limit_cpu": cpu(colds) / med(lim.cpu),
                           "cold_over_floor": cold / floor_s, "cold_over_floor_cpu": cpu(colds) / med(both.cpu)}
        target = f"< {TARGETS['cold_vs_floor']}x" + ("" if n == 1000 else " (target set for N=1,000)")
        rows += [
            (f"floor: SHA-256 + SHA-512 of {n} packages ({total / 1e6:.0f} MB), one read, {workers} procs",
             f"{floor_s:.3f} s", f"CPU {med(both.cpu):.2f} s: the least a check of restore's SHA-512 records can do", ""),
            ("  SHA-256 alone (what the signature needs)", f"{lim_s:.3f} s",
             f"{total / lim_s / 1e6:.0f} MB/s; the floor is {floor_s / lim_s:.2f}x this", ""),
            ("cold check", f"{cold:.3f} s", f"CPU {cpu(colds):.1f} s; peak RSS {max(r.peak_rss_mb for r in colds):.0f} MB"
             f"/proc, {max(r.tree_rss_mb for r in colds):.0f} MB all procs", ""),
            ("cold / floor", f"{cold / floor_s:.2f}x", f"{target} (CPU: {cpu(colds) / med(both.cpu):.2f}x; "
             f"{cold / lim_s:.2f}x SHA-256 alone)", verdict(cold / floor_s < TARGETS["cold_vs_floor"])),
            ("warm check (unchanged graph)", f"{warm:.3f} s", f"< {TARGETS['warm_s']} s; CPU {cpu(warms):.2f} s, "
             f"peak RSS {max(r.peak_rss_mb for r in warms):.0f} MB", verdict(warm < TARGETS["warm_s"])),
        ]

    if "fixed" not in args.skip or "scaling" not in args.skip:
        pool_size = 10000 if args.full else 1000
        tiny = make_graph.ensure_graph("tiny", pool_size, "tiny", subsets=(1, 100, 200, 1000, 10000), log=log)

    if "fixed" not in args.skip:
        busy["fixed"] = wait_quiet(args.wait_quiet, log)
        log("fixed cost: tiny 1 vs 200, --jobs 1 ...")
        one = [run_check(tiny, "1", jobs=1, cache=None, expect=1) for _ in range(args.repeat)]
        two = [run_check(tiny, "200", jobs=1, cache=None, expect=200) for _ in range(args.repeat)]
        hash_s = med(limit(nupkgs(tiny, 200), 1, args.repeat).cpu) / 200
        fixed_ms = 1000 * ((med([r.wall for r in two]) - med([r.wall for r in one])) / 199 - hash_s)
        fixed_cpu_ms = 1000 * ((cpu(two) - cpu(one)) / 199 - hash_s)
        results["fixed"] = {"one": [asdict(r) for r in one], "two_hundred": [asdict(r) for r in two],
                            "hash_per_package_s": hash_s, "fixed_ms": fixed_ms, "fixed_cpu_ms": fixed_cpu_ms}
        rows += [
            ("check of 1 tiny package, --jobs 1 (startup)", f"{med([r.wall for r in one]):.3f} s", f"CPU {cpu(one):.2f} s", ""),
            ("check of 200 tiny packages, --jobs 1", f"{med([r.wall for r in two]):.3f} s", f"CPU {cpu(two):.2f} s", ""),
            ("per-package fixed cost, one core", f"{fixed_ms:.2f} ms",
             f"< {TARGETS['fixed_ms']} ms (CPU {fixed_cpu_ms:.2f} ms)", verdict(fixed_ms < TARGETS["fixed_ms"])),
        ]

    if "scaling" not in args.skip:
        points = [100, 1000] + ([10000] if args.full else [])
        make_graph.write_layouts(tiny, tuple(points))
        busy["scaling"] = wait_quiet(args.wait_quiet, log)
        results["scaling"] = {}
        for fmt, layout in FORMATS.items():
            scaling = {}
            for count in points:
                log(f"scaling ({fmt}): {count} tiny packages...")
                warm_page_cache(package_files(tiny, count))  # the 10,000 point runs once: no disk reads in it
                colds, warms = cold_and_warm(tiny, str(count), jobs=jobs, expect=count, layout=layout,
                                             repeat=args.repeat if count < 10000 else 1)
                scaling[count] = {"cold": [asdict(r) for r in colds], "warm": [asdict(r) for r in warms]}
                c, w = med([r.wall for r in colds]), med([r.wall for r in warms])
                rows.append((f"scaling ({fmt}): {count} tiny packages cold / warm", f"{c:.3f} s / {w:.3f} s",
                             f"{1000 * c / count:.2f} / {1000 * w / count:.2f} ms per package; cold CPU "
                             f"{cpu(colds):.1f} s, RSS {max(r.peak_rss_mb for r in colds):.0f} MB/proc", ""))
            results["scaling"][fmt] = summary = linearity(scaling, points)
            rows.append((f"scaling ({fmt}): ms per added package, 100->1k / 1k->10k",
                         f"{1000 * summary['marginal_first_s']:.2f} / {1000 * summary['marginal_last_s']:.2f}",
                         (f"ratio {summary['ratio']:.2f} < {TARGETS['linear']} (CPU {1000 * summary['marginal_first_cpu_s']:.2f}"
                          f" / {1000 * summary['marginal_last_cpu_s']:.2f} ms, ratio {summary['ratio_cpu']:.2f})")
                         if args.full else "(10k point needs --full)",
                         verdict(summary["ratio"] < TARGETS["linear"]) if args.full else "-"))

    if "size" not in args.skip:
        sizes = {}
        graphs = {mib: make_graph.ensure_graph(f"size-{mib}MiB", 1, str(mib * MiB), log=log) for mib in (1, 10, 100)}
        busy["size"] = wait_quiet(args.wait_quiet, log)
        for mib, graph in graphs.items():
            log(f"size: one {mib} MiB package...")
            lim = limit(nupkgs(graph, 1), 1, args.repeat)
            colds, warms = cold_and_warm(graph, "1", jobs=jobs, expect=1, repeat=args.repeat)
            c = med([r.wall for r in colds])
            rss = max(r.tree_rss_mb for r in colds)
            sizes[mib] = {"limit": asdict(lim), "cold": [asdict(r) for r in colds], "warm": [asdict(r) for r in warms]}
            rows.append((f"size: one {mib} MiB package: limit / cold", f"{med(lim.wall):.3f} s / {c:.3f} s",
                         f"peak RSS {rss:.0f} MB (< {TARGETS['rss_mb']:.0f} MB); cold CPU {cpu(colds):.2f} s",
                         verdict(rss < TARGETS["rss_mb"])))
        if len(sizes) == 3:
            grow = med([r["wall"] for r in sizes[100]["cold"]]) - med([r["wall"] for r in sizes[1]["cold"]])
            rows.append(("size: extra time per MiB (1 -> 100 MiB)", f"{1000 * grow / 99:.2f} ms",
                         f"limit {1000 * (med(sizes[100]['limit']['wall']) - med(sizes[1]['limit']['wall'])) / 99:.2f} ms",
                         ""))
        results["size"] = sizes
    if "main" in results:
        main_rss = max(r["peak_rss_mb"] for r in results["main"]["cold"])
        rows.append(("peak RSS of one process, cold check of the main graph", f"{main_rss:.0f} MB",
                     f"< {TARGETS['rss_mb']:.0f} MB", verdict(main_rss < TARGETS["rss_mb"])))

    results["busy_before"] = busy
    runs = [r for part in ("main", "fixed", "scaling", "size") for r in _runs(results.get(part))]
    noise = max((r["foreign"] for r in runs), default=0.0)
    results["rows"] = rows
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    twidth = max(len(r[2]) for r in rows)
    m = results["machine"]
    print(f"\ntrustpolicy {m['trustpolicy']} ({m['git']}) - {m['nproc']} x {m['cpu']}, {m['ram_gb']} GB RAM, "
          f"Python {m['python']}, {m['openssl']}; median of {args.repeat}")
    print(f"noise: other processes used up to {noise:.0%} of the CPUs during a measured run "
          f"(idle before each part: {', '.join(f'{k} {v:.0%} busy' for k, v in busy.items())})\n")
    for figure, value, note, ok in rows:
        print(f"{figure:<{width}}  {value:>{vwidth}}  {note:<{twidth}}  {ok}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"\nwrote {args.json}")
    return 0


def linearity(scaling: dict, points: list[int]) -> dict:
    """Cost per added package (cold wall and CPU) between the first two points and the last two."""

    def marginal(a: int, b: int, of) -> float:  # type: ignore[no-untyped-def]
        return (med([of(r) for r in scaling[b]["cold"]]) - med([of(r) for r in scaling[a]["cold"]])) / (b - a)

    def wall(r: dict) -> float:
        return r["wall"]

    def cpu_of(r: dict) -> float:
        return r["user"] + r["system"]

    summary: dict = {"points": scaling}
    for label, of in (("", wall), ("_cpu", cpu_of)):
        first = marginal(points[0], points[1], of)
        last = marginal(points[-2], points[-1], of)
        summary[f"marginal_first{label}_s"], summary[f"marginal_last{label}_s"] = first, last
        summary[f"ratio{label}"] = last / first if first > 0 else float("inf")
    return summary


def _runs(part) -> list[dict]:  # type: ignore[no-untyped-def]
    """Every subprocess run recorded under a results part."""
    if isinstance(part, dict):
        if "wall" in part and "foreign" in part:
            return [part]
        return [r for value in part.values() for r in _runs(value)]
    if isinstance(part, list):
        return [r for value in part for r in _runs(value)]
    return []


if __name__ == "__main__":
    raise SystemExit(main())
