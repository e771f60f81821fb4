"""Measure proposed optimisations before anyone writes them (run by hand; not a test).

    .venv/bin/python bench/experiments.py [--packages N] [--only NAME]

Each experiment times the current code and a prototype of the change (monkeypatched here, never
edited in place) in CPU seconds (time.process_time: robust when other processes share the
machine), checks that the prototype gives the same results, and prints the gain per package.
Graphs: bench/out/realistic-1000 (hashing) and bench/out/tiny (fixed costs); run bench/run.py or
bench/make_graph.py first.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))
OUT = BENCH / "out"
RESULTS: dict[str, dict] = {}


def cpu(fn: Callable[[], object], repeat: int = 3) -> float:
    """Best CPU seconds of `repeat` calls."""
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


def report(name: str, what: str, n: int, before: float, after: float) -> None:
    RESULTS[name] = {"what": what, "n": n, "before_ms_per_pkg": 1000 * before / n, "after_ms_per_pkg": 1000 * after / n,
                     "before_s": before, "after_s": after}
    print(f"{name:<22} {what:<58} {1000 * before / n:8.3f} -> {1000 * after / n:8.3f} ms/pkg "
          f"({before:.2f} -> {after:.2f} s for {n}; x{before / after if after else float('inf'):.1f})")


@contextmanager
def patched(obj: object, name: str, value: object):  # type: ignore[no-untyped-def]
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def packages(graph: str, count: int) -> list[Path]:
    libraries = json.loads((OUT / graph / "manifest.json").read_text())["libraries"][:count]
    return [OUT / graph / "packages" / lib["path"] / f"{lib['path'].replace('/', '.')}.nupkg" for lib in libraries]


# -- 1. parse_signature: intern certificates, cheaper name and ESSCertID comparisons ------------------


def exp_parse(n: int) -> None:
    from asn1crypto import x509

    from trustpolicy import signature as sig
    from trustpolicy.archive import PackageArchive

    ders = [PackageArchive.open(p).read_signature() for p in packages("tiny", n)]

    _interned: dict[bytes, x509.Certificate] = {}

    def certificates(signed_data):  # type: ignore[no-untyped-def]
        certs = signed_data["certificates"]
        if not sig._present(certs):
            return ()
        out = []
        for choice in certs:
            if choice.name != "certificate":
                continue
            der = choice.chosen.dump()
            cert = _interned.get(der)
            if cert is None:  # parsed once per process: lazily computed hashable/sha256/SKI stay cached
                cert = _interned[der] = x509.Certificate.load(der)
            out.append(cert)
        return tuple(out)

    original_find = sig._find_certificate

    def find_certificate(sid, certs):  # type: ignore[no-untyped-def]
        if sid.name == "issuer_and_serial_number":
            issuer, serial = sid.chosen["issuer"], sid.chosen["serial_number"].native
            raw = issuer.dump()
            for cert in certs:  # byte-equal DER names are equal names: skip stringprep
                if cert.serial_number == serial and cert.issuer.dump() == raw:
                    return cert
        return original_find(sid, certs)

    original_check = sig._check_cert_id

    def check_cert_id(cert_id, cert, hash_name, *, issuer_serial_required):  # type: ignore[no-untyped-def]
        # Same rules without IssuerSerial.native (which converts every GeneralName to Python).
        if cert_id["cert_hash"].native != hashlib.new(hash_name, cert.dump()).digest():
            raise ValueError("the certificate hash does not match the signer certificate")
        issuer_serial = cert_id["issuer_serial"]
        if not sig._present(issuer_serial):
            if issuer_serial_required:
                raise ValueError("issuerSerial is missing")
            return
        names = issuer_serial["issuer"]
        if len(names) == 0:
            raise ValueError("issuerSerial has no issuer name")
        if issuer_serial["serial_number"].native != cert.serial_number:
            raise ValueError("issuerSerial serial number does not match the signer certificate")
        first = names[0]
        if first.name == "directory_name" and first.chosen.untag().dump() != cert.issuer.dump() \
                and sig._dn_key(first.chosen) != sig._dn_key(cert.issuer):
            raise ValueError("issuerSerial issuer does not match the signer certificate")

    def run() -> list:
        return [sig.parse_signature(d) for d in ders]

    base = run()
    before = cpu(run)
    with patched(sig, "_certificates", certificates):
        interned = cpu(run)
        with patched(sig, "_find_certificate", find_certificate), patched(sig, "_check_cert_id", check_cert_id):
            after = cpu(run)
            new = run()
    for a, b in zip(base, new):  # same parse
        assert a.kind == b.kind and a.content == b.content and a.signer_certificate.dump() == b.signer_certificate.dump()
        assert [t.gen_time for t in a.timestamps] == [t.gen_time for t in b.timestamps]
        assert (a.countersignature is None) == (b.countersignature is None)
    report("parse.intern", "signature._certificates: intern certs by DER", n, before, interned)
    report("parse.all", "+ _find_certificate DER fast path, _check_cert_id w/o .native", n, before, after)
    print(f"{'':22} (interned certificates: {len(_interned)} distinct in {n} signatures)")


# -- 2. trust step with interned certificates --------------------------------------------------------


def _verifier(graph: str):  # type: ignore[no-untyped-def]
    from trustpolicy.config import load_trust_settings
    from trustpolicy.revocation import RevocationOptions
    from trustpolicy.truststore import TrustStore
    from trustpolicy.verify import REQUIRE, Verifier

    trust = load_trust_settings(configfile=str(OUT / graph / "NuGet.Config"))
    store = TrustStore.from_files((), extra=(OUT / graph / "roots.pem",))
    return Verifier.from_trust_settings(trust, REQUIRE, trust_store=store, revocation=RevocationOptions(mode="off"),
                                        at=datetime.now(timezone.utc))


def exp_trust(n: int) -> None:
    """The trust step on freshly parsed signatures (as in a check: every package is parsed anew),
    with and without interned certificates (whose lazily computed properties then stay cached)."""
    from trustpolicy import signature as sig
    from trustpolicy.archive import PackageArchive

    ders = [PackageArchive.open(p).read_signature() for p in packages("tiny", n)]
    verifier = _verifier("tiny")
    verifier._trust(sig.parse_signature(ders[0]))  # trust managers and chain results: not measured here
    _interned: dict = {}
    original = sig._certificates

    def certificates(signed_data):  # type: ignore[no-untyped-def]
        return tuple(_interned.setdefault(c.dump(), c) for c in original(signed_data))

    def trust_cpu() -> tuple[float, list]:
        best, statuses = float("inf"), []
        for _ in range(3):
            parsed = [sig.parse_signature(d) for d in ders]  # fresh objects, outside the timing
            start = time.process_time()
            statuses = [verifier._trust(p)[0].status for p in parsed]
            best = min(best, time.process_time() - start)
        return best, statuses

    before, plain = trust_cpu()
    with patched(sig, "_certificates", certificates):
        after, interned = trust_cpu()
    assert plain == interned
    report("trust.intern", "Verifier._trust on fresh parses, certificates interned", n, before, after)


# -- 3. one read for every digest the check needs ----------------------------------------------------


class _Fan:
    """A stand-in for hashlib objects inside archive.package_hash: feeds SHA-256 and SHA-512 at once
    and snapshots SHA-512 where the content stream stops following the file (for the whole-file hash)."""

    def __init__(self) -> None:
        self.h256, self.h512 = hashlib.sha256(), hashlib.sha512()
        self.pos = 0
        self.whole = None
        self.prefix = 0

    def update(self, data: bytes) -> None:
        self.h256.update(data)
        self.h512.update(data)

    def digest(self) -> bytes:
        return self.h256.digest()


def combined_digests(path: Path, package_hash=None) -> tuple[bytes, bytes, bytes]:  # type: ignore[no-untyped-def]
    """(content SHA-256, content SHA-512, whole-file SHA-512), the package read once (+ its small tail twice)."""
    import trustpolicy.archive as archive_module

    fan = _Fan()
    original_feed = archive_module._feed

    def feed(f, start, end, size, sink):  # type: ignore[no-untyped-def]
        if fan.whole is None and start != fan.pos:  # the content stream leaves the file order here
            fan.whole, fan.prefix = fan.h512.copy(), fan.pos
        original_feed(f, start, end, size, sink)
        if fan.whole is None:
            fan.pos = end

    class Shim:
        @staticmethod
        def new(name: str, *args):  # type: ignore[no-untyped-def]
            return fan

    archive = archive_module.PackageArchive.open(path)
    with patched(archive_module, "_feed", feed), patched(archive_module, "hashlib", Shim):
        (package_hash or archive_module.PackageArchive.package_hash)(archive, "sha256")
    whole = fan.whole if fan.whole is not None else fan.h512.copy()
    with open(path, "rb") as handle:  # the signature entry, the central directory and the EOCD
        handle.seek(fan.whole is not None and fan.prefix or fan.pos)
        while chunk := handle.read(1 << 20):
            whole.update(chunk)
    return fan.h256.digest(), fan.h512.digest(), whole.digest()


def exp_digests(n: int) -> None:
    from trustpolicy.archive import PackageArchive, hash_file

    files = packages(f"realistic-{n}", n) if (OUT / f"realistic-{n}").is_dir() else packages("realistic-1000", n)
    total = sum(p.stat().st_size for p in files)

    def current() -> list:
        out = []
        for p in files:  # what check does today: Verifier._integrity, HashCache.content, HashCache.whole
            a = PackageArchive.open(p)
            out.append((a.package_hash("sha256"), PackageArchive.open(p).package_hash("sha512"), hash_file(p, "sha512")))
        return out

    def one_pass() -> list:
        return [combined_digests(p) for p in files]

    assert current() == one_pass(), "the one-pass digests differ"
    before = cpu(current, 1)
    after = cpu(one_pass, 1)
    report("digests.one_pass", f"3 passes -> 1 read, SHA-512 prefix shared ({total / 1e6:.0f} MB)", len(files), before, after)

    def limit() -> None:
        for p in files:
            hash_file(p, "sha256")

    lim = cpu(limit, 1)
    print(f"{'':22} one core: limit (SHA-256 once) {lim:.2f} s; today {before / lim:.2f}x; one pass {after / lim:.2f}x")
    RESULTS["digests.one_pass"]["limit_s"] = lim


# -- 4. nuspec without zipfile ------------------------------------------------------------------------


def exp_nuspec(n: int) -> None:
    import zlib

    from trustpolicy.archive import PackageArchive, _parse_nuspec

    files = packages("realistic-1000", n)
    archives = [PackageArchive.open(p) for p in files]

    def direct(archive: PackageArchive) -> tuple[str, str]:
        found = [e for e in archive.entries if b"/" not in e.name and e.name.lower().endswith(b".nuspec")]
        entry = found[0]
        with open(archive.path, "rb") as handle:
            handle.seek(entry.lfh_offset + 26)
            name_len, extra_len = int.from_bytes(handle.read(2), "little"), int.from_bytes(handle.read(2), "little")
            handle.seek(entry.lfh_offset + 30 + name_len + extra_len)
            data = handle.read(entry.compressed_size)
        if entry.method == 8:
            data = zlib.decompress(data, -15)
        return _parse_nuspec(data, str(archive.path))

    assert [a.read_nuspec() for a in archives] == [direct(a) for a in archives]
    before = cpu(lambda: [a.read_nuspec() for a in archives])
    after = cpu(lambda: [direct(a) for a in archives])
    report("nuspec.direct", "read_nuspec from the parsed central directory, no zipfile", n, before, after)


# -- 5. the warm path ---------------------------------------------------------------------------------


def exp_warm() -> None:
    from trustpolicy import truststore
    from trustpolicy.resources import DATA_DIR

    def bundled() -> None:
        truststore._bundled.cache_clear() if hasattr(truststore._bundled, "cache_clear") else None
        truststore.TrustStore.bundled()

    before = cpu(bundled)
    pems = [DATA_DIR / "codesignctl.pem", DATA_DIR / "timestampctl.pem"]
    after = cpu(lambda: [hashlib.sha256(p.read_bytes()).hexdigest() for p in pems])
    report("warm.bundled_roots", "policy digest: parse 2 bundles -> hash their bytes", 1, before, after)

    report_path = Path("/tmp/bench-warm-report.json")
    graph = OUT / "realistic-1000"
    subprocess.run([sys.executable, "-m", "trustpolicy", "check", str(graph / "projects" / "1000"), "--configfile",
                    str(graph / "NuGet.Config"), "--extra-roots", str(graph / "roots.pem"), "--revocation", "off",
                    "--no-cache", "--format", "json", "--output", str(report_path)], check=False, capture_output=True)
    if report_path.is_file():
        doc = json.loads(report_path.read_text())
        before = cpu(lambda: json.dumps(doc, indent=2))
        after = cpu(lambda: json.dumps(doc, indent=None, separators=(",", ":")))
        report("warm.json_render", "json.dumps(indent=2) -> C encoder (no indent)", 1, before, after)

    paths = packages("realistic-1000", 1000)
    before = cpu(lambda: [str(p.resolve()) for p in paths])
    after = cpu(lambda: [os.path.abspath(p) for p in paths])
    report("warm.cache_key_path", "_cache_key: Path.resolve() -> os.path.abspath", 1000, before, after)

    def imports(code: str) -> float:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = str(OUT / "pycache")
        subprocess.run([sys.executable, "-c", code], env=env, check=True)  # fill the bytecode cache
        best = float("inf")
        for _ in range(3):
            usage_before = os.times()
            subprocess.run([sys.executable, "-c", code], env=env, check=True)
            usage = os.times()
            best = min(best, usage.children_user + usage.children_system - usage_before.children_user - usage_before.children_system)
        return best

    everything = imports("from trustpolicy.cli import build_parser; build_parser()")
    check_only = imports("import argparse; from trustpolicy.cli import check_cmd; "
                         "check_cmd.register(argparse.ArgumentParser().add_subparsers()); import trustpolicy.check")
    bare = imports("pass")
    report("warm.cli_imports", "CLI start: import all commands -> check's modules only", 1, everything - bare, check_only - bare)
    pyhanko = imports("import trustpolicy.check, trustpolicy.chain") - imports("import trustpolicy.check")
    print(f"{'':22} importing trustpolicy.chain (pyhanko) on top of trustpolicy.check: {1000 * pyhanko:.0f} ms CPU "
          "(the warm path pays it in _init_worker although nothing is verified)")
    RESULTS["warm.pyhanko_import_ms"] = {"ms": 1000 * pyhanko}


def exp_phases() -> None:
    """CPU per phase of a warm check of the 1,000-package graph, in process (imports excluded)."""
    import tempfile

    from trustpolicy import check
    from trustpolicy.report import ReportFormat, render_text

    graph = OUT / "realistic-1000"
    cache_dir = tempfile.mkdtemp(prefix="phases-", dir=OUT)
    options = check.CheckOptions(configfile=str(graph / "NuGet.Config"), extra_roots=(str(graph / "roots.pem"),),
                                 revocation="off", cache_dir=cache_dir)
    check.check_graph([graph / "projects" / "1000"], options)  # fill the cache
    spent: dict[str, float] = {}

    def timed(module: object, name: str):  # type: ignore[no-untyped-def]
        fn = getattr(module, name)

        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[name] = spent.get(name, 0.0) + time.process_time() - start
        return patched(module, name, wrapper)

    names = ["collect_graph", "load_trust_settings", "_trust_store", "_policy_digest", "_cache_key", "_init_worker",
             "explain", "build_report"]
    from contextlib import ExitStack

    with ExitStack() as stack:
        for name in names:
            stack.enter_context(timed(check, name))
        start = time.process_time()
        report_doc = check.check_graph([graph / "projects" / "1000"], options)
        total = time.process_time() - start
    start = time.process_time()
    render_text(report_doc, ReportFormat.JSON, base_dir=Path.cwd())
    render = time.process_time() - start
    spent["cache get (rest of _judge_all)"] = total - sum(spent.values())
    spent["render json"] = render
    print(f"warm check_graph of 1,000 packages, in process: {1000 * total:.0f} ms CPU + render {1000 * render:.0f} ms")
    for name, value in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"{'':22} {name:<34} {1000 * value:7.1f} ms")
    RESULTS["warm.phases_ms"] = {k: 1000 * v for k, v in spent.items()}


# -- 6. everything together, in check's own worker function ------------------------------------------


def exp_all(n: int, graph: str) -> None:
    """check._judge_in_worker per package (what a pool worker does), today vs with the prototypes
    of experiments 1-4 together: interned certificates + name/ESSCertID fast paths, nuspec from the
    central directory, and one read per package for its three digests."""
    from contextlib import ExitStack

    from asn1crypto import x509

    from trustpolicy import archive as archive_module
    from trustpolicy import check
    from trustpolicy import signature as sig
    from trustpolicy.graph import collect_graph
    from trustpolicy.graph import hashes as graph_hashes

    base = OUT / graph
    options = check.CheckOptions(configfile=str(base / "NuGet.Config"), extra_roots=(str(base / "roots.pem"),),
                                 revocation="off", use_cache=False)
    pkgs = collect_graph([base / "projects" / str(n)], configfile=base / "NuGet.Config").packages
    from trustpolicy.config import load_trust_settings
    from trustpolicy.revocation import RevocationOptions
    from trustpolicy.verify import REQUIRE

    job = check._Job(settings=REQUIRE, trust_store=(), extra_roots=options.extra_roots,
                     revocation=RevocationOptions(mode="off"), at=datetime.now(timezone.utc),
                     trust=load_trust_settings(configfile=options.configfile), require_non_empty=True)

    def run() -> tuple[float, list]:
        check._init_worker(job)
        check._hashes = graph_hashes.HashCache()
        check._judge_in_worker(pkgs[0])  # chains validated once: not per-package work
        start = time.process_time()
        entries = [check._judge_in_worker(p) for p in pkgs[1:]]
        return time.process_time() - start, entries

    before, old_entries = run()
    original_ph = archive_module.PackageArchive.package_hash
    memo: dict[str, tuple[bytes, bytes, bytes]] = {}

    def digests(path: Path) -> tuple[bytes, bytes, bytes]:
        key = os.fspath(path)
        if key not in memo:
            memo[key] = combined_digests(Path(key), original_ph)
        return memo[key]

    def package_hash(self, algorithm):  # type: ignore[no-untyped-def]
        if algorithm == "sha256":
            return digests(self.path)[0]
        if algorithm == "sha512":
            return digests(self.path)[1]
        return original_ph(self, algorithm)

    original_content, original_whole = graph_hashes.HashCache.content, graph_hashes.HashCache.whole

    def content(self, path):  # type: ignore[no-untyped-def]
        if os.fspath(path) in memo:
            return True, memo[os.fspath(path)][1]
        return original_content(self, path)

    def whole(self, path):  # type: ignore[no-untyped-def]
        if os.fspath(path) in memo:
            return memo[os.fspath(path)][2]
        return original_whole(self, path)

    _interned: dict[bytes, x509.Certificate] = {}
    original_certs, original_find = sig._certificates, sig._find_certificate

    def certificates(signed_data):  # type: ignore[no-untyped-def]
        return tuple(_interned.setdefault(c.dump(), c) for c in original_certs(signed_data))

    def find_certificate(sid, certs):  # type: ignore[no-untyped-def]
        if sid.name == "issuer_and_serial_number":
            issuer, serial = sid.chosen["issuer"], sid.chosen["serial_number"].native
            raw = issuer.dump()
            for cert in certs:
                if cert.serial_number == serial and cert.issuer.dump() == raw:
                    return cert
        return original_find(sid, certs)

    def check_cert_id(cert_id, cert, hash_name, *, issuer_serial_required):  # type: ignore[no-untyped-def]
        if cert_id["cert_hash"].native != hashlib.new(hash_name, cert.dump()).digest():
            raise ValueError("the certificate hash does not match the signer certificate")
        issuer_serial = cert_id["issuer_serial"]
        if not sig._present(issuer_serial):
            if issuer_serial_required:
                raise ValueError("issuerSerial is missing")
            return
        names = issuer_serial["issuer"]
        if len(names) == 0 or issuer_serial["serial_number"].native != cert.serial_number:
            raise ValueError("issuerSerial does not match the signer certificate")
        first = names[0]
        if first.name == "directory_name" and first.chosen.untag().dump() != cert.issuer.dump() \
                and sig._dn_key(first.chosen) != sig._dn_key(cert.issuer):
            raise ValueError("issuerSerial issuer does not match the signer certificate")

    def read_nuspec(self):  # type: ignore[no-untyped-def]
        import zlib

        found = [e for e in self.entries if b"/" not in e.name and e.name.lower().endswith(b".nuspec")]
        if len(found) != 1:
            return original_nuspec(self)
        entry = found[0]
        with open(self.path, "rb") as handle:
            handle.seek(entry.lfh_offset + 26)
            name_len, extra_len = int.from_bytes(handle.read(2), "little"), int.from_bytes(handle.read(2), "little")
            handle.seek(entry.lfh_offset + 30 + name_len + extra_len)
            data = handle.read(entry.compressed_size)
        return archive_module._parse_nuspec(zlib.decompress(data, -15) if entry.method == 8 else data, str(self.path))

    original_nuspec = archive_module.PackageArchive.read_nuspec
    with ExitStack() as stack:
        for obj, name, value in [(archive_module.PackageArchive, "package_hash", package_hash),
                                 (archive_module.PackageArchive, "read_nuspec", read_nuspec),
                                 (graph_hashes.HashCache, "content", content), (graph_hashes.HashCache, "whole", whole),
                                 (sig, "_certificates", certificates), (sig, "_find_certificate", find_certificate),
                                 (sig, "_check_cert_id", check_cert_id)]:
            stack.enter_context(patched(obj, name, value))
        after, new_entries = run()
        if os.environ.get("BENCH_PROFILE"):  # where the rest goes, with every prototype applied
            import cProfile
            import pstats

            profiler = cProfile.Profile()
            profiler.runcall(run)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(os.environ["BENCH_PROFILE"], 45)
    assert old_entries == new_entries, "the prototypes change the report"
    report(f"all.{graph}", f"check._judge_in_worker, all prototypes ({graph})", len(pkgs) - 1, before, after)


# -- 7. trust managers per worker ----------------------------------------------------------------------


def exp_managers() -> None:
    from trustpolicy.chain import ChainValidator
    from trustpolicy.revocation import RevocationOptions
    from trustpolicy.truststore import TrustStore

    store = TrustStore.bundled()

    def build() -> None:
        validator = ChainValidator(store, RevocationOptions("off"))
        validator._manager("code_signing")
        validator._manager("time_stamping")

    spent = cpu(build)
    report("pool.managers", "trust managers built per worker -> once in the parent (fork)", 1, spent, 0.0)


EXPERIMENTS = {"parse": exp_parse, "trust": exp_trust, "digests": exp_digests, "nuspec": exp_nuspec,
               "warm": exp_warm, "phases": exp_phases, "managers": exp_managers,
               "all": lambda n: (exp_all(n, "tiny"), exp_all(min(n, 1000), "realistic-1000"))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", type=int, default=200, help="packages per experiment (default 200; digests: 1,000)")
    parser.add_argument("--only", action="append", choices=sorted(EXPERIMENTS))
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args(argv)
    for name in args.only or EXPERIMENTS:
        fn = EXPERIMENTS[name]
        if name in ("parse", "trust", "nuspec", "all"):
            fn(args.packages)
        elif name == "digests":
            fn(max(args.packages, 1000))
        else:
            fn()
    if args.json:
        Path(args.json).write_text(json.dumps(RESULTS, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
