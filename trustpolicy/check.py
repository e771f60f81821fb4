"""`check`: enforce the effective NuGet.Config policy over a restored package graph.

    report = check_graph(["src/App"], TrustContext.build(TrustOptions(mode="require", directory="src/App")))

Flow: graph sources -> packages -> (cached) verdicts from worker processes -> one GraphReport that
the table, JSON and SARIF renderers share. Findings never raise; only unusable input (no graph, bad
config, bad trust store) raises TrustPolicyError (exit 2).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from trustpolicy import __version__
from trustpolicy._internal.archive import PackageArchive
from trustpolicy._internal.cache import VerdictCache
from trustpolicy._internal.explain import Advice, explain, suggest
from trustpolicy._internal.graph import Graph, GraphPackage, HashCache, collect_graph, try_parse_version, verify_graph_hashes
from trustpolicy.codes import Code
from trustpolicy.context import TrustContext, TrustOptions
from trustpolicy.errors import TrustPolicyError, UsageError
from trustpolicy.models import GraphReport, Issue, Level, PackageReport, PackageVerdict, Status, StepResult

if TYPE_CHECKING:
    from trustpolicy._internal.chain import ChainValidator
    from trustpolicy._internal.verify.engine import Verifier

__all__ = ["CheckOptions", "check_graph", "config_directory"]

# Below this many packages a process pool costs more (imports, trust manager) than it saves.
_POOL_THRESHOLD = 8
# Work is handed to the workers in batches, largest packages first: a big file started last would
# leave the other workers idle at the end, and small files travel in groups (fewer messages).
_BATCH_BYTES = 4 << 20
_BATCH_COUNT = 16


@dataclass(frozen=True)
class CheckOptions:
    """How a check runs (what to trust is the TrustContext's business).

    jobs: worker processes (None: every core); packages_dirs: extra folders to find packages in;
    use_cache: read and write the verdict cache; suggest: group the packages that only lack a trusted
    signer into suggested trustedSigners entries (checked with the engine); untrusted_roots: a
    suggestion may pin a certificate whose chain ends in an untrusted root (allowUntrustedRoot).
    """

    jobs: int | None = None
    packages_dirs: tuple[str, ...] = ()
    use_cache: bool = True
    suggest: bool = True
    untrusted_roots: bool = True


def config_directory(path: str | os.PathLike[str]) -> str:
    """Where the NuGet.Config hierarchy of a graph input starts: the input's folder."""
    path = Path(path)
    try:
        is_dir = path.is_dir()
    except OSError as error:  # too long, no permission: the input is unusable
        raise UsageError(f"{path}: cannot be read: {error.strerror or error}") from None
    return str(path if is_dir else path.parent)


def check_graph(
    paths: Sequence[str | os.PathLike[str]],
    context: TrustContext | None = None,
    options: CheckOptions = CheckOptions(),
    *,
    progress: Callable[[int, int], None] | None = None,
) -> GraphReport:
    """Judge every package of the graph under `paths`; the report's exit_code is the CI gate.

    `context` defaults to the NuGet.Config hierarchy seen from the first input, in its own mode.
    """
    inputs = [Path(p) for p in paths] or [Path.cwd()]
    if context is None:
        context = TrustContext.build(TrustOptions(directory=config_directory(inputs[0])))
    if context.mode == "verify":
        raise UsageError("check judges in accept, require or audit mode, not verify")
    graph = collect_graph(inputs, packages_dirs=options.packages_dirs, environ=context.environ,
                          configfile=context.configfile)
    if not graph.packages and not graph.sources:
        raise UsageError(f"no restored package graph found in {', '.join(map(str, inputs))}")
    cache = VerdictCache(context.cache_dir / "verdicts", context.policy_digest()) if options.use_cache else None
    verdicts = _judge_all(graph, context, cache, options.jobs, progress)
    packages = []
    for package, verdict in zip(graph.packages, verdicts):
        cause, fix = explain(verdict, package.id, package.version, mode=context.mode)
        packages.append(PackageReport(package.id, package.version, verdict, package.origin.location, cause, fix))
    advice = Advice()
    if options.suggest and any(not p.passed for p in packages):
        with _WhatIf(context, options.use_cache) as judge:
            advice = suggest(packages, context, judge, untrusted_roots=options.untrusted_roots)
        for index, number in advice.covered.items():  # one fix per signer, the same for each of its packages
            packages[index] = replace(packages[index], fix=advice.suggestions[number].fix)
    return GraphReport(
        mode=context.mode,
        packages=tuple(packages),
        generated_at=context.reference_time,
        settings=context.settings.to_json(),
        trust_store=context.trust_store.description,
        config_files=context.config.files,
        graph_problems=tuple(graph.problems),
        tool_version=__version__,
        suggestions=advice.suggestions,
        refusals=advice.refusals,
        searched_folders=tuple(graph.searched),
    )


def _judge_all(
    graph: Graph,
    context: TrustContext,
    cache: VerdictCache | None,
    jobs: int | None,
    progress: Callable[[int, int], None] | None,
) -> list[PackageVerdict]:
    packages = graph.packages
    results: list[PackageVerdict | None] = [None] * len(packages)
    keys: list[str | None] = [None] * len(packages)
    sizes = [0] * len(packages)
    todo: list[int] = []
    for index, package in enumerate(packages):
        keys[index], sizes[index] = _identity(package, keyed=cache is not None)
        key = keys[index]
        hit = cache.get(key) if cache is not None and key is not None else None
        if hit is not None:
            results[index] = hit
        else:
            todo.append(index)
    done = len(packages) - len(todo)
    if progress:
        progress(done, len(packages))

    def finished(index: int, verdict: PackageVerdict) -> None:
        nonlocal done
        results[index] = verdict
        key = keys[index]
        if cache is not None and key is not None:
            cache.put(key, verdict)
        done += 1
        if progress:
            progress(done, len(packages))

    if todo:
        workers = min(jobs or os.cpu_count() or 1, len(todo))
        if workers > 1 and len(todo) >= _POOL_THRESHOLD:
            _judge_in_pool(workers, context, [(batch, [packages[i] for i in batch]) for batch in _batches(todo, sizes)],
                           finished)
        else:
            _init_worker(context)
            for index in todo:
                finished(index, _judge(packages[index]))

    if cache is not None:
        cache.save()
    return [verdict for verdict in results if verdict is not None]


def _judge_in_pool(
    workers: int,
    context: TrustContext,
    batches: list[tuple[list[int], list[GraphPackage]]],
    finished: Callable[[int, PackageVerdict], None],
) -> None:
    """Verify the batches in worker processes. Ctrl-C is the parent's business: workers ignore
    SIGINT from their first instruction (it is blocked while they are forked, then ignored), so a
    terminal's Ctrl-C, which reaches the whole process group, prints no worker traceback; the
    parent's KeyboardInterrupt cancels what is queued, stops the workers and goes on up."""
    import signal
    from concurrent.futures import ProcessPoolExecutor, as_completed

    pool = ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(context, True))
    try:
        # POSIX: the workers start in submit() and inherit a blocked SIGINT; a Ctrl-C meanwhile waits until
        # it is unblocked. Windows has no signal mask: there the initializer alone ignores it.
        if sys.platform != "win32":
            blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            futures = {pool.submit(_judge_batch, packages): batch for batch, packages in batches}
        finally:
            if sys.platform != "win32":
                signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        for future in as_completed(futures):
            for index, verdict in zip(futures[future], future.result()):
                finished(index, verdict)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        for process in list((getattr(pool, "_processes", None) or {}).values()):
            process.terminate()  # a batch in progress is not worth waiting for
        raise
    pool.shutdown(wait=True)


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


def _init_worker(context: TrustContext, worker: bool = False) -> None:
    global _verifier, _hashes
    if worker:  # Ctrl-C is for the parent (see _judge_in_pool): ignore it, then let the blocked one go
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if sys.platform != "win32":
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    _hashes = HashCache()  # digests are remembered for one run only: files may change between runs
    _verifier = context.verifier()


def _judge_batch(packages: list[GraphPackage]) -> list[PackageVerdict]:
    return [_judge(package) for package in packages]


def _judge(package: GraphPackage) -> PackageVerdict:
    """The verdict on one graph package: its file's signatures, then the graph's own records of it."""
    assert _verifier is not None
    archive = _open_hashed(package)
    findings = [*package.problems, *verify_graph_hashes(package, cache=_hashes, archive=archive)]
    if package.nupkg is None:
        return PackageVerdict(None, package.id, package.version, None, (StepResult("graph", Status.UNKNOWN, tuple(findings)),))
    verdict = _verifier.verify_package(package.nupkg, archive=archive)
    findings += _identity_findings(package, verdict)
    if not findings:
        return verdict
    # The graph's own integrity record disagrees with the file: fail closed.
    failed = any(issue.level is Level.ERROR for issue in findings)
    return verdict.with_step(StepResult("graph", Status.SUSPECT if failed else Status.VALID, tuple(findings)))


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


def _identity_findings(package: GraphPackage, verdict: PackageVerdict) -> list[Issue]:
    """A file whose own nuspec names another package than the graph entry is a swapped file."""
    if package.origin.kind == "folder":
        return []  # a plain folder's rows come from the nuspec itself (the graph reports unreadable ones)
    if verdict.id is None:
        # Without its manifest the file cannot be shown to be the package the graph names: fail closed.
        return [Issue(Code.TP0003, Level.ERROR, f"{package.nupkg}: its .nuspec cannot be read, so it cannot be "
                                                f"matched to {package.id} {package.version}")]
    parsed = try_parse_version(verdict.version) if verdict.version else None
    same_version = parsed is not None and parsed.normalized.lower() == package.version.lower()
    if verdict.id.lower() == package.id.lower() and same_version:
        return []
    return [
        Issue(
            Code.TP0002,
            Level.ERROR,
            f"{package.nupkg} is {verdict.id} {verdict.version} according to its own manifest, "
            f"but the graph expects {package.id} {package.version} there",
        )
    ]


# -- what-if verdicts for the suggestions ---------------------------------------------------------------


class _WhatIf:
    """Verdicts on package files under variants of the run's policy (the suggestions' proposals), in
    this process. Cached like the run's own verdicts, in a folder of their own: they carry no graph
    records (the packages they are asked about passed those already)."""

    def __init__(self, context: TrustContext, use_cache: bool) -> None:
        self.context = context
        self.use_cache = use_cache
        self.chains: ChainValidator | None = None  # one for every variant: chains do not depend on the list

    def __enter__(self) -> _WhatIf:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.chains is not None:
            self.chains.close()

    def __call__(self, variant: TrustContext, packages: Sequence[PackageReport]) -> list[PackageVerdict]:
        cache = VerdictCache(self.context.cache_dir / "what-if", variant.policy_digest()) if self.use_cache else None
        verifier = None
        verdicts = []
        for package in packages:
            path = package.verdict.path
            assert path is not None
            key = _file_key(path) if cache is not None else None
            verdict = cache.get(key) if cache is not None and key is not None else None
            if verdict is None:
                if verifier is None:
                    self.chains = self.chains or self.context.chain_validator()
                    verifier = variant.verifier(self.chains)
                verdict = verifier.verify_package(path)
                if cache is not None and key is not None:
                    cache.put(key, verdict)
            verdicts.append(verdict)
        if cache is not None:
            cache.save()
        return verdicts


def _file_key(path: str) -> str | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    identity = [os.path.abspath(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]
    return hashlib.sha256(json.dumps(identity).encode()).hexdigest()


# -- helpers --------------------------------------------------------------------------------------------


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
