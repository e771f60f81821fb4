"""Generate restored package graphs for the benchmarks (run by hand; not part of the test suite).

    .venv/bin/python bench/make_graph.py [--packages N] [--kind realistic|tiny|SIZE] [--name NAME]

Writes bench/out/<name>/ (bench/out is gitignored):

    manifest.json                  parameters + what was written; a graph is reused while they match
    NuGet.Config                   require mode, trusts the 5 bench authors and the bench repository
    roots.pem                      the bench code-signing root + TSA root (pass as --extra-roots)
    packages/<lid>/<lver>/         global packages folder layout: .nupkg, .nupkg.sha512,
                                   .nupkg.metadata, <lid>.nuspec, .signature.p7s
    projects/<n>/obj/project.assets.json   a restore of the first n packages (packageFolders = packages/)
    flat/<n>/<Id>.<Version>.nupkg  the first n packages in one folder (a drop folder, a v2 file feed)
    solutions/<n>/                 a packages.config solution: Bench.sln, App/packages.config and
                                   packages/<Id>.<Version>/<Id>.<Version>.nupkg (side by side)
                                   (flat/ and solutions/ hold hard links to the packages' files)

Packages are real: payload entries are random (incompressible) bytes stored uncompressed, so file
sizes are real sizes on disk. About 70% are author-signed by one of 5 authors and countersigned by
the repository, the rest repository-signed; every signature carries an RFC 3161 timestamp from a
TimestampServer running on 127.0.0.1 during generation. The PKI (bench/out/pki/) is shared by
every graph; regenerating it regenerates the graphs.

Kinds: "realistic" (sizes from a lognormal with a median of 100 KB, deterministic quantiles, so
a 1,000-package graph has a handful of 20-100 MB packages), "tiny" (~2 KB each; a pool that grows
when more packages are asked for, with one assets file per subset size) or a fixed size in bytes.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import random
import shutil
import statistics
import sys
import time
import zipfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = Path(os.environ.get("TRUSTPOLICY_BENCH_OUT", ROOT / "bench" / "out"))

FORMAT = 3  # bump when the generated layout changes: every graph is regenerated
FEED = "https://bench-feed.example/v3/index.json"
OWNERS = ("bench-team",)
AUTHORS = 5
COUNTERSIGNED_SHARE = 0.7  # the rest are repository-signed
TFM = "net8.0"
MEDIAN = 100 * 1024
SIGMA = 2.0  # with N=1,000: 4 packages above 20 MB, the largest ~72 MB
MAX_SIZE = 100 * 1024 * 1024
TINY = 2048
ENTRY_CHUNK = 512 * 1024  # one payload entry per 512 KB (at most 64): packages have many files


# -- PKI ------------------------------------------------------------------------------------------


def ensure_pki(out: Path = OUT) -> dict:
    """The bench PKI in out/pki (created once): 5 authors, 1 repository, 1 TSA. Returns its manifest."""
    pki_dir = out / "pki"
    manifest_path = pki_dir / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("format") == FORMAT:
            return manifest
    shutil.rmtree(pki_dir, ignore_errors=True)
    pki_dir.mkdir(parents=True)
    from cryptography.hazmat.primitives import hashes

    from trustpolicy.testing.pki import TestPKI

    now = datetime.now(UTC).replace(microsecond=0)  # bench tooling, not trustpolicy code
    pki = TestPKI(now=now, tag="trustpolicy bench - do not trust", fresh_keys=True)
    long = now + timedelta(days=3650)
    root = pki.issue_ca("Bench Root CA", not_before=now - timedelta(days=30), not_after=long)
    ca = pki.issue_ca("Bench Code Signing CA", issuer=root, not_before=now - timedelta(days=30), not_after=long)
    tsa_root = pki.issue_ca("Bench TSA Root CA", not_before=now - timedelta(days=30), not_after=long)
    tsa = pki.issue_tsa("Bench Timestamping", issuer=tsa_root, not_before=now - timedelta(days=30), not_after=long)
    signers = {f"author{i}": pki.issue_code_signing(f"Bench Author {i}", issuer=ca, not_before=now - timedelta(days=30),
                                                    not_after=now + timedelta(days=1825))
               for i in range(1, AUTHORS + 1)}
    signers["repository"] = pki.issue_code_signing("Bench Repository", issuer=ca, not_before=now - timedelta(days=30),
                                                   not_after=now + timedelta(days=1825))
    files = {}
    for name, issued in [*signers.items(), ("tsa", tsa)]:
        cert_path, key_path = issued.write_pem(pki_dir, chain=True)
        files[name] = {"cert": cert_path.name, "key": key_path.name,
                       "sha256": issued.certificate.fingerprint(hashes.SHA256()).hex().upper(),
                       "subject": issued.certificate.subject.rfc4514_string()}
    roots = pki_dir / "roots.pem"
    roots.write_bytes(root.pem + tsa_root.pem)
    manifest = {"format": FORMAT, "created": now.isoformat(), "signers": files, "roots": roots.name,
                "root_sha256": root.certificate.fingerprint(hashes.SHA256()).hex().upper()}
    manifest_path.write_text(json.dumps(manifest, indent=2))
    return manifest


# -- sizes ----------------------------------------------------------------------------------------


def realistic_sizes(count: int, seed: int) -> list[int]:
    """Lognormal sizes at deterministic quantiles (the same count always gives the same set), shuffled."""
    dist = statistics.NormalDist()
    mu = math.log(MEDIAN)
    sizes = [min(MAX_SIZE, int(math.exp(mu + SIGMA * dist.inv_cdf((i + 0.5) / count)))) for i in range(count)]
    random.Random(seed).shuffle(sizes)
    return sizes


def size_of(kind: str, index: int, sizes: list[int] | None) -> int:
    if kind == "realistic":
        assert sizes is not None
        return sizes[index]
    if kind == "tiny":
        return TINY
    return int(kind)


def how_signed(index: int, seed: int) -> tuple[str, bool]:
    """(author name or "repository", countersigned) for package `index` (deterministic)."""
    rng = random.Random(seed * 1_000_003 + index)
    if rng.random() < COUNTERSIGNED_SHARE:
        return f"author{1 + rng.randrange(AUTHORS)}", True
    return "repository", False


# -- one package (runs in a worker process) ---------------------------------------------------------

_identities: dict = {}


@dataclass(frozen=True)
class Task:
    index: int
    package_id: str
    version: str
    size: int
    signer: str
    countersigned: bool
    packages: str  # the global folder
    tsa_url: str


def _init_worker(pki_dir: str, manifest: dict) -> None:
    from trustpolicy._internal.sign import SigningIdentity

    for name, files in manifest["signers"].items():
        if name != "tsa":
            _identities[name] = SigningIdentity.from_pem(Path(pki_dir) / files["cert"], Path(pki_dir) / files["key"])


def _write_unsigned(path: Path, package_id: str, version: str, size: int) -> None:
    nuspec = (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">\n'
        f"  <metadata>\n    <id>{package_id}</id>\n    <version>{version}</version>\n"
        f"    <authors>trustpolicy bench</authors>\n"
        f"    <description>benchmark package of {size} payload bytes</description>\n  </metadata>\n</package>\n"
    )
    entries = max(1, min(64, size // ENTRY_CHUNK))
    stamp = (2025, 1, 1, 0, 0, 0)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(zipfile.ZipInfo("_rels/.rels", stamp), "<Relationships/>")
        archive.writestr(zipfile.ZipInfo(f"{package_id}.nuspec", stamp), nuspec)
        left = size
        for part in range(entries):
            length = left if part == entries - 1 else size // entries
            left -= length
            info = zipfile.ZipInfo(f"lib/{TFM}/{package_id}{'' if part == 0 else f'.part{part}'}.dll", stamp)
            info.file_size = length  # known up front: no Zip64 extra, no data descriptor
            with archive.open(info, "w") as out:
                while length:
                    chunk = min(length, 1 << 20)
                    out.write(os.urandom(chunk))  # incompressible, so the size on disk is the size
                    length -= chunk
        archive.writestr(zipfile.ZipInfo("[Content_Types].xml", stamp), "<Types/>")


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def make_package(task: Task) -> dict:
    """Write, sign and install one package; returns its assets library record."""
    from trustpolicy._internal.archive import PackageArchive, hash_file
    from trustpolicy._internal.sign import RepositoryOptions, sign_package

    lid, lver = task.package_id.lower(), task.version.lower()
    folder = Path(task.packages) / lid / lver
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    nupkg = folder / f"{lid}.{lver}.nupkg"
    unsigned = folder / "unsigned.tmp"
    _write_unsigned(unsigned, task.package_id, task.version, task.size)
    repository = RepositoryOptions(FEED, OWNERS)
    quiet = lambda warning: None  # noqa: E731
    if task.signer == "repository":
        sign_package(unsigned, identity=_identities["repository"], output=nupkg, repository=repository,
                     timestamper=task.tsa_url, on_warning=quiet)
    else:
        sign_package(unsigned, identity=_identities[task.signer], output=nupkg, timestamper=task.tsa_url, on_warning=quiet)
        if task.countersigned:
            sign_package(nupkg, identity=_identities["repository"], repository=repository,
                         timestamper=task.tsa_url, on_warning=quiet)
    unsigned.unlink()
    archive = PackageArchive.open(nupkg)
    content = _b64(archive.package_hash("sha512"))
    (folder / f"{lid}.{lver}.nupkg.sha512").write_text(_b64(hash_file(nupkg, "sha512")))
    with zipfile.ZipFile(nupkg) as z:
        (folder / f"{lid}.nuspec").write_bytes(z.read(f"{task.package_id}.nuspec"))
        (folder / ".signature.p7s").write_bytes(z.read(".signature.p7s"))
    (folder / ".nupkg.metadata").write_text(json.dumps({"version": 2, "contentHash": content, "source": FEED}, indent=2))
    return {"key": f"{task.package_id}/{task.version}", "path": f"{lid}/{lver}", "sha512": content,
            "size": nupkg.stat().st_size, "signer": task.signer, "countersigned": task.countersigned,
            "files": [".nupkg.metadata", ".signature.p7s", f"{lid}.{lver}.nupkg.sha512", f"{lid}.nuspec"]}


# -- a graph ----------------------------------------------------------------------------------------


def _package_name(name: str, index: int) -> tuple[str, str]:
    prefix = "".join(part.capitalize() for part in name.replace("-", " ").split()) or "Bench"
    return f"Bench.{prefix}.Package{index:05d}", f"1.{index // 1000}.{index % 1000}"


def _params(kind: str, count: int, seed: int, pki: dict) -> dict:
    params = {"format": FORMAT, "kind": kind, "seed": seed, "pki": pki["root_sha256"]}
    if kind == "realistic":
        params["count"] = count  # the size of package i depends on the count
    return params


def ensure_graph(name: str, count: int, kind: str = "realistic", seed: int = 1, *,
                 subsets: tuple[int, ...] = (), jobs: int | None = None, out: Path = OUT,
                 log=print) -> Path:
    """bench/out/<name> holding at least `count` packages (reused when the parameters match).

    Returns the graph folder; projects/<n>/ is the restore of the first n packages, for n = count and
    every n of `subsets`.
    """
    pki = ensure_pki(out)
    base = out / name
    manifest_path = base / "manifest.json"
    params = _params(kind, count, seed, pki)
    libraries: list[dict] = []
    if manifest_path.is_file():
        old = json.loads(manifest_path.read_text())
        if old.get("params") == params:
            libraries = old["libraries"]
    if not libraries:
        shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True, exist_ok=True)
    packages = base / "packages"
    packages.mkdir(exist_ok=True)

    if len(libraries) < count:
        sizes = realistic_sizes(count, seed) if kind == "realistic" else None
        todo = []
        for index in range(len(libraries), count):
            package_id, version = _package_name(name, index)
            signer, counter = how_signed(index, seed)
            todo.append(Task(index, package_id, version, size_of(kind, index, sizes), signer, counter,
                             str(packages), ""))
        libraries += _generate(todo, pki, out, jobs, log)
        manifest = {"params": params, "generated": datetime.now(UTC).isoformat(), "libraries": libraries}
        manifest_path.write_text(json.dumps(manifest))

    _write_config(base / "NuGet.Config", pki)
    shutil.copyfile(out / "pki" / pki["roots"], base / "roots.pem")
    for n in sorted({count, *subsets}):
        if n <= len(libraries):
            write_assets(base / "projects" / str(n), packages, libraries[:n])
    return base


def _generate(todo: list[Task], pki: dict, out: Path, jobs: int | None, log) -> list[dict]:
    from trustpolicy._internal.sign import SigningIdentity
    from trustpolicy.testing.pki import Issued
    from trustpolicy.testing.tsa import TimestampServer

    pki_dir = out / "pki"
    files = pki["signers"]["tsa"]
    identity = SigningIdentity.from_pem(pki_dir / files["cert"], pki_dir / files["key"])
    tsa_issued = Issued("Bench Timestamping", identity.certificate, identity.private_key, None)
    # The server's chain is (TSA, its root): include_chain follows Issued.issuer, so give it the root.
    root_cert = identity.chain[0] if identity.chain else None
    if root_cert is not None:
        tsa_issued = Issued("Bench Timestamping", identity.certificate, identity.private_key,
                            Issued("Bench TSA Root CA", root_cert, identity.private_key, None))
    total = sum(t.size for t in todo)
    log(f"generating {len(todo)} packages ({total / 1e6:.0f} MB payload) in {out}")
    start = time.perf_counter()
    results: list[dict] = []
    with TimestampServer(tsa_issued) as server:
        tasks = [Task(**{**t.__dict__, "tsa_url": server.url}) for t in todo]
        workers = jobs or os.cpu_count() or 1
        # Big packages first so the pool does not end on one 100 MB straggler; results are re-ordered.
        order = sorted(range(len(tasks)), key=lambda i: -tasks[i].size)
        with ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=_init_worker,
                                 initargs=(str(pki_dir), pki)) as pool:
            done: dict[int, dict] = {}
            for i, record in zip(order, pool.map(make_package, [tasks[i] for i in order], chunksize=8)):
                done[i] = record
                if len(done) % 1000 == 0:
                    log(f"  {len(done)}/{len(tasks)} ({time.perf_counter() - start:.0f} s)")
        results = [done[i] for i in range(len(tasks))]
    log(f"generated {len(todo)} packages in {time.perf_counter() - start:.1f} s")
    return results


def write_assets(project: Path, packages: Path, libraries: list[dict]) -> Path:
    """project/obj/project.assets.json restoring `libraries` from the global folder `packages`."""
    libs, target = {}, {}
    for lib in libraries:
        package_id = lib["key"].split("/")[0]
        libs[lib["key"]] = {"sha512": lib["sha512"], "type": "package", "path": lib["path"], "files": lib["files"]}
        target[lib["key"]] = {"type": "package", "runtime": {f"lib/{TFM}/{package_id}.dll": {}}}
    assets = {
        "version": 3,
        "targets": {TFM: target},
        "libraries": libs,
        "projectFileDependencyGroups": {TFM: [f"{k.split('/')[0]} >= {k.split('/')[1]}" for k in libs]},
        "packageFolders": {str(packages.resolve()) + os.sep: {}},
        "project": {"version": "1.0.0", "restore": {"projectName": "BenchApp", "projectStyle": "PackageReference",
                                                     "packagesPath": str(packages.resolve()) + os.sep}},
    }
    path = project / "obj" / "project.assets.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(assets, indent=2) + "\n"
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)
    return path


def _complete(folder: Path, count: int) -> bool:
    marker = folder / ".complete"
    return marker.is_file() and marker.read_text() == str(count)


def write_flat(folder: Path, packages: Path, libraries: list[dict]) -> Path:
    """The packages as one folder of `<Id>.<Version>.nupkg` files (hard links), no restore records."""
    if not _complete(folder, len(libraries)):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        for lib in libraries:
            package_id, version = lib["key"].split("/")
            os.link(packages / lib["path"] / f"{lib['path'].replace('/', '.')}.nupkg", folder / f"{package_id}.{version}.nupkg")
        (folder / ".complete").write_text(str(len(libraries)))
    return folder


def write_solution(folder: Path, packages: Path, libraries: list[dict]) -> Path:
    """A packages.config solution as NuGet lays it out: Bench.sln, App/packages.config listing the
    packages, and the solution packages/ folder with `<Id>.<Version>/<Id>.<Version>.nupkg` (hard links)."""
    if not _complete(folder, len(libraries)):
        shutil.rmtree(folder, ignore_errors=True)
        (folder / "App").mkdir(parents=True)
        (folder / "Bench.sln").write_text("Microsoft Visual Studio Solution File, Format Version 12.00\n")
        lines = ['<?xml version="1.0" encoding="utf-8"?>', "<packages>"]
        for lib in libraries:
            package_id, version = lib["key"].split("/")
            lines.append(f'  <package id="{package_id}" version="{version}" targetFramework="net48" />')
            target = folder / "packages" / f"{package_id}.{version}"
            target.mkdir(parents=True)
            os.link(packages / lib["path"] / f"{lib['path'].replace('/', '.')}.nupkg", target / f"{package_id}.{version}.nupkg")
        (folder / "App" / "packages.config").write_text("\n".join(lines + ["</packages>"]) + "\n")
        (folder / ".complete").write_text(str(len(libraries)))
    return folder


def write_layouts(base: Path, counts: tuple[int, ...]) -> None:
    """flat/<n> and solutions/<n> for each n: the same packages as projects/<n>, in the other layouts."""
    libraries = json.loads((base / "manifest.json").read_text())["libraries"]
    for n in counts:
        if n <= len(libraries):
            write_flat(base / "flat" / str(n), base / "packages", libraries[:n])
            write_solution(base / "solutions" / str(n), base / "packages", libraries[:n])


def _write_config(path: Path, pki: dict) -> None:
    signers = pki["signers"]
    authors = "\n".join(
        f'    <author name="Bench Author {i}">\n'
        f'      <certificate fingerprint="{signers[f"author{i}"]["sha256"]}" hashAlgorithm="SHA256" allowUntrustedRoot="false" />\n'
        f"    </author>"
        for i in range(1, AUTHORS + 1)
    )
    text = f"""<?xml version="1.0" encoding="utf-8"?>
<!-- trustpolicy bench: require mode; the bench roots are passed with extra-roots (roots.pem). -->
<configuration>
  <config>
    <add key="signatureValidationMode" value="require" />
  </config>
  <packageSources>
    <clear />
    <add key="bench-feed" value="{FEED}" />
  </packageSources>
  <trustedSigners>
    <clear />
{authors}
    <repository name="bench-feed" serviceIndex="{FEED}">
      <certificate fingerprint="{signers['repository']['sha256']}" hashAlgorithm="SHA256" allowUntrustedRoot="false" />
      <owners>{';'.join(OWNERS)}</owners>
    </repository>
  </trustedSigners>
</configuration>
"""
    if not path.is_file() or path.read_text() != text:
        path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packages", type=int, default=1000, help="number of packages (default 1,000)")
    parser.add_argument("--kind", default="realistic", help="realistic (default), tiny, or a size in bytes")
    parser.add_argument("--name", help="graph folder name under bench/out (default: from the kind and count)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, help="generator processes (default: every core)")
    args = parser.parse_args(argv)
    if args.kind not in ("realistic", "tiny") and not args.kind.isdigit():
        parser.error("--kind must be realistic, tiny or a size in bytes")
    name = args.name or (f"realistic-{args.packages}" if args.kind == "realistic" else
                         "tiny" if args.kind == "tiny" else f"size-{args.kind}")
    base = ensure_graph(name, args.packages, args.kind, args.seed, jobs=args.jobs)
    print(f"{base}/projects/{args.packages}  (NuGet.Config and roots.pem in {base})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
