"""`check`: enforce the effective NuGet.Config policy over a restored package graph.

    report = check_graph(["src/App"], CheckOptions(mode="require"))

Flow: graph sources -> packages -> (cached) verification in worker processes -> one report dict
(schemas/report.schema.json) that the table, JSON and SARIF renderers share. Findings never raise;
only unusable input (no graph, bad config, bad trust store) raises TrustPolicyError (exit 2).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trustpolicy import __version__, clock
from trustpolicy.archive import PackageArchive
from trustpolicy.cache import VerdictCache
from trustpolicy.config import TrustSettings, load_trust_settings
from trustpolicy.errors import TrustPolicyError, UsageError
from trustpolicy.explain import explain
from trustpolicy.graph import Finding, Graph, GraphPackage, HashCache, collect_graph, try_parse_version, verify_graph_hashes
from trustpolicy.report import Report, build_report
from trustpolicy.truststore import TrustStore
from trustpolicy.verify.settings import ACCEPT, REQUIRE, VerificationSettings

if TYPE_CHECKING:
    from trustpolicy.revocation import RevocationOptions
    from trustpolicy.verify import Verifier

MODES = ("accept", "require", "audit")
# Below this many packages a process pool costs more (imports, trust manager) than it saves.
_POOL_THRESHOLD = 8
# Work is handed to the workers in batches, largest packages first: a big file started last would
# leave the other workers idle at the end, and small files travel in groups (fewer messages).
_BATCH_BYTES = 4 << 20
_BATCH_COUNT = 16


@dataclass(frozen=True)
class CheckOptions:
    """Everything outside the graph that can change a verdict, passed in from the top."""

    mode: str | None = None  # accept | require | audit; None: signatureValidationMode from the config
    configfile: str | None = None
    trust_store: tuple[str, ...] = ()  # PEM files replacing the bundled roots
    extra_roots: tuple[str, ...] = ()  # PEM files added to them
    revocation: str = "online"
    revocation_data: tuple[str, ...] = ()
    revocation_timeout: float = 5.0
    at: datetime | None = None  # None: now, read once
    jobs: int | None = None  # None: every core
    packages_dirs: tuple[str, ...] = ()
    cache_dir: str | None = None  # None: the per-user cache folder
    use_cache: bool = True
    environ: dict[str, str] | None = field(default=None, compare=False)


@dataclass(frozen=True)
class _Job:
    """What a worker needs to build its Verifier once (inherited by forked workers, else pickled)."""

    settings: VerificationSettings
    options: CheckOptions
    cache_root: Path
    at: datetime
    trust: TrustSettings
    require_non_empty: bool


def check_graph(
    paths: Sequence[str | os.PathLike[str]],
    options: CheckOptions = CheckOptions(),
    *,
    progress: Callable[[int, int], None] | None = None,
) -> Report:
    """Judge every package of the graph under `paths`; the report's exitCode is the CI gate."""
    paths = [Path(p) for p in paths] or [Path.cwd()]
    at = options.at or clock.now()
    graph = collect_graph(
        paths, packages_dirs=options.packages_dirs, environ=options.environ, configfile=options.configfile
    )
    if not graph.packages and not graph.sources:
        raise UsageError(f"no restored package graph found in {', '.join(map(str, paths))}")
    # --configfile is used alone, as NuGet does; otherwise the hierarchy from the first input's folder.
    directory = None if options.configfile else _config_directory(paths[0])
    trust = load_trust_settings(configfile=options.configfile, directory=directory)
    mode = options.mode or trust.mode
    if mode not in MODES:
        raise UsageError(f"--mode must be one of {', '.join(MODES)}")
    job = _Job(
        settings=ACCEPT if mode == "accept" else REQUIRE,
        options=options,
        cache_root=_cache_root(options),
        at=at,
        trust=trust,
        require_non_empty=mode != "accept",
    )
    store = _trust_store(job)  # load once here too: a bad PEM is exit 2 before any work
    policy = _policy_digest(job, store, explicit_time=options.at is not None)
    cache = VerdictCache(job.cache_root / "verdicts", policy) if options.use_cache else None

    entries = _judge_all(graph, job, cache, options.jobs, progress)
    for entry in entries:
        entry["cause"], entry["fix"] = explain(entry, mode=mode, configfile=options.configfile)
    return build_report(
        mode=mode,
        packages=entries,
        generated_at=at,
        settings=job.settings.to_json(),
        trust_store=store.description,
        config_files=trust.files,
        graph_problems=[_problem(finding) for finding in graph.problems],
        version=__version__,
    )


def _judge_all(
    graph: Graph,
    job: _Job,
    cache: VerdictCache | None,
    jobs: int | None,
    progress: Callable[[int, int], None] | None,
) -> list[dict[str, Any]]:
    packages = graph.packages
    results: list[dict[str, Any] | None] = [None] * len(packages)
    keys: list[str | None] = [None] * len(packages)
    sizes = [0] * len(packages)
    todo: list[int] = []
    for index, package in enumerate(packages):
        keys[index], sizes[index] = _identity(package, keyed=cache is not None)
        hit = cache.get(keys[index]) if cache and keys[index] else None
        if hit is not None:
            results[index] = hit
        else:
            todo.append(index)
    done = len(packages) - len(todo)
    if progress:
        progress(done, len(packages))

    def finished(index: int, entry: dict[str, Any]) -> None:
        nonlocal done
        results[index] = entry
        key = keys[index]
        if cache and key:
            cache.put(key, entry)
        done += 1
        if progress:
            progress(done, len(packages))

    if todo:
        # Built here, not by every worker: bad revocation options are exit 2 before any work. Only now:
        # a check whose verdicts all come from the cache never loads the revocation or verification stack.
        revocation = _revocation_options(job)
        workers = min(jobs or os.cpu_count() or 1, len(todo))
        if workers > 1 and len(todo) >= _POOL_THRESHOLD:
            from concurrent.futures import ProcessPoolExecutor, as_completed

            with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(job, revocation)) as pool:
                batches = {
                    pool.submit(_judge_batch, [packages[i] for i in batch]): batch for batch in _batches(todo, sizes)
                }
                for future in as_completed(batches):
                    for index, entry in zip(batches[future], future.result()):
                        finished(index, entry)
        else:
            _init_worker(job, revocation)
            for index in todo:
                finished(index, _judge_in_worker(packages[index]))

    if cache:
        cache.save()
    entries = []
    for package, entry in zip(packages, results):
        assert entry is not None
        entry = dict(entry)
        entry["source"] = _source(package)
        entries.append(entry)
    return entries


def _batches(todo: list[int], sizes: list[int]) -> list[list[int]]:
    """The packages to verify in batches of about _BATCH_BYTES (or _BATCH_COUNT packages), largest first."""
    batches: list[list[int]] = []
    batch: list[int] = []
    weight = 0
    for index in sorted(todo, key=lambda i: -sizes[i]):
        batch.append(index)
        weight += sizes[index]
        if weight >= _BATCH_BYTES or len(batch) >= _BATCH_COUNT:
            batches.append(batch)
            batch, weight = [], 0
    if batch:
        batches.append(batch)
    return batches


# -- one package (runs in a worker process) -----------------------------------------------------------

_verifier: Verifier | None = None
_hashes = HashCache()


def _init_worker(job: _Job, revocation: RevocationOptions) -> None:
    global _verifier, _hashes
    from trustpolicy.verify import Verifier  # imported here: see _revocation_options

    _hashes = HashCache()  # digests are remembered for one run only: files may change between runs
    _verifier = Verifier.from_trust_settings(
        job.trust,
        job.settings,
        trust_store=_trust_store(job),
        revocation=revocation,
        at=job.at,
        require_non_empty=job.require_non_empty,
    )


def _judge_batch(packages: list[GraphPackage]) -> list[dict[str, Any]]:
    return [_judge_in_worker(package) for package in packages]


def _judge_in_worker(package: GraphPackage) -> dict[str, Any]:
    """The report entry of one graph package, without `source` (added by the parent)."""
    assert _verifier is not None
    archive = _open_hashed(package)
    graph_findings = list(package.problems) + list(verify_graph_hashes(package, cache=_hashes, archive=archive))
    if package.nupkg is None:
        entry: dict[str, Any] = {
            "path": None,
            "id": package.id,
            "version": package.version,
            "signed": None,
            "verdict": "invalid",
            "signatures": [],
            "issues": [],
            "trustedSigner": None,
        }
    else:
        verdict = _verifier.verify_package(package.nupkg, archive=archive)
        entry = verdict.to_json()
        graph_findings += _identity_findings(package, entry)
        entry["id"], entry["version"] = package.id, package.version  # the report speaks of what the graph uses
        entry["trustedSigner"] = verdict.trusted_signer.to_json() if verdict.trusted_signer else None
        entry["trustedSignerReason"] = verdict.trusted_signer_reason
    for finding in graph_findings:
        issue = _problem(finding)
        entry["issues"].append({"code": issue["code"], "level": issue["level"], "message": finding.message, "signature": None})
        if issue["level"] == "error":
            entry["verdict"] = "invalid"  # the graph's own integrity record disagrees: fail closed
    return entry


def _open_hashed(package: GraphPackage) -> PackageArchive | None:
    """The package opened once, with the signature's SHA-256, restore's SHA-512 content hash and, when a
    `.nupkg.sha512` records it, the whole-file SHA-512 taken in one read. None when it cannot be read:
    the verifier and the graph check then say why."""
    if package.nupkg is None:
        return None
    try:
        archive = PackageArchive.open(package.nupkg)
        if archive.is_signed:
            whole = ("sha512",) if any(c.record == "sha512file" for c in package.claims) else ()
            archive.package_hashes(("sha256", "sha512"), file_algorithms=whole)
        return archive
    except (TrustPolicyError, OSError):
        return None


def _identity_findings(package: GraphPackage, entry: dict[str, Any]) -> list[Finding]:
    """A file whose own nuspec names another package than the graph entry is a swapped file."""
    found_id, found_version = entry.get("id"), entry.get("version")
    if package.origin.kind == "folder":
        return []  # a plain folder's rows come from the nuspec itself (the graph reports unreadable ones)
    if found_id is None:
        # Without its manifest the file cannot be shown to be the package the graph names: fail closed.
        return [Finding("TP0003", f"{package.nupkg}: its .nuspec cannot be read, so it cannot be matched "
                                  f"to {package.id} {package.version}")]
    parsed = try_parse_version(found_version) if found_version else None
    same_version = parsed is not None and parsed.normalized.lower() == package.version.lower()
    if found_id.lower() == package.id.lower() and same_version:
        return []
    return [
        Finding(
            "TP0002",
            f"{package.nupkg} is {found_id} {found_version} according to its own manifest, "
            f"but the graph expects {package.id} {package.version} there",
        )
    ]


# -- helpers --------------------------------------------------------------------------------------------


def _trust_store(job: _Job) -> TrustStore:
    return TrustStore.from_files(job.options.trust_store, extra=job.options.extra_roots)


def _revocation_options(job: _Job) -> RevocationOptions:
    from trustpolicy.revocation import RevocationOptions

    options = job.options
    return RevocationOptions(
        mode=options.revocation,
        data_dirs=tuple(Path(d) for d in options.revocation_data),
        cache_dir=job.cache_root / "revocation",
        timeout=options.revocation_timeout,
    )


def _config_directory(path: Path) -> Path:
    return path if path.is_dir() else path.parent


def _cache_root(options: CheckOptions) -> Path:
    if options.cache_dir:
        return Path(options.cache_dir)
    import platformdirs

    return Path(platformdirs.user_cache_dir("trustpolicy"))


def _policy_digest(job: _Job, store: TrustStore, *, explicit_time: bool) -> str:
    """Without --at the verdict is judged "now": cache it for the current UTC day only, so expiry and
    fresh revocation data are picked up by the next day's run at the latest."""
    moment = job.at.isoformat() if explicit_time else job.at.date().isoformat()
    options = job.options
    return policy_digest(job.settings, job.require_non_empty, job.trust.signers, store,
                         options.revocation, options.revocation_data, moment)


def policy_digest(settings: VerificationSettings, require_non_empty: bool, signers: Sequence[Any], store: TrustStore,
                  revocation: str, revocation_data: Sequence[str | os.PathLike[str]], moment: str) -> str:
    """Everything besides the package bytes that can change a verdict, as one digest (also the
    verdict cache key of `serve`). `moment`: the instant, or the UTC day, the verdict holds for."""
    material = {
        "tool": __version__,
        "settings": settings.to_json(),
        "requireNonEmpty": require_non_empty,
        "signers": [_signer_meaning(signer) for signer in signers],
        "roots": sorted(c.hex() for part in store.key for c in part),
        "revocation": [revocation, [str(Path(d)) for d in revocation_data]],
        "moment": moment,
    }
    return hashlib.sha256(json.dumps(material, sort_keys=True, default=str).encode()).hexdigest()


def _signer_meaning(signer: Any) -> list[Any]:
    """What a trusted signer means for a verdict: not where it was written (file, line)."""
    certificates = sorted((c.fingerprint, c.hash_algorithm, c.allow_untrusted_root) for c in signer.certificates)
    return [signer.kind, signer.name, signer.service_index, sorted(signer.owners), certificates]


def _identity(package: GraphPackage, *, keyed: bool) -> tuple[str | None, int]:
    """(cache key, size): the package file's identity (path and stat, which any write changes) and its
    graph claims, as one digest. No key when there is no file to identify or no cache to ask."""
    if package.nupkg is None:
        return None, 0
    try:
        st = os.stat(package.nupkg)
    except OSError:
        return None, 0
    if not keyed:
        return None, st.st_size
    identity = [
        os.path.abspath(package.nupkg),
        st.st_dev,
        st.st_ino,
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
        sorted((c.record, c.value) for c in package.claims),
        [(f.code, f.message) for f in package.problems],
    ]
    return hashlib.sha256(json.dumps(identity, default=str).encode()).hexdigest(), st.st_size


def _source(package: GraphPackage) -> dict[str, Any]:
    return _origin(package.origin)


def _origin(origin: Any) -> dict[str, Any]:
    return {"path": str(origin.path), "kind": origin.kind, "pointer": origin.pointer, "line": origin.line}


def _problem(finding: Finding) -> dict[str, Any]:
    level = {"note": "info"}.get(finding.level, finding.level)
    source = _origin(finding.origin) if finding.origin else None
    return {"code": finding.code, "level": level, "message": finding.message, "source": source}
