"""Policy decisions: the judge (a package file -> a verdict, in a worker process) and the decision
(a verdict -> what the gate answers).

The policy is a TrustContext built from the same options and NuGet.Config as `check`'s, by
`build_judge`; the verifier is the context's own. The rest of the server sees only `Judge`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trustpolicy._internal import clock
from trustpolicy._internal.explain import common_name
from trustpolicy._internal.graph.versions import try_parse_version
from trustpolicy.codes import Code, title
from trustpolicy.context import TrustContext, TrustOptions
from trustpolicy.models import Level, PackageVerdict

if TYPE_CHECKING:
    from trustpolicy._internal.chain import ChainValidator

MODES = ("accept", "require", "audit")
_REASON_LENGTH = 200


@dataclass(frozen=True)
class Judge:
    """One policy: judges package files (in a worker) and names the policy for the verdict cache."""

    context: TrustContext
    _digests: dict[date, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def mode(self) -> str:
        return self.context.mode

    def policy(self, day: date) -> str:
        """The verdict cache's name for this policy on one UTC day (verdicts are judged "now")."""
        if day not in self._digests:
            self._digests.clear()
            self._digests[day] = self.context.at(datetime.combine(day, time(), UTC)).policy_digest()
        return self._digests[day]

    @property
    def config_files(self) -> tuple[str, ...]:
        return self.context.config.files


def build_judge(options: TrustOptions) -> Judge:
    """The policy of `check`, from the same options and NuGet.Config. Raises TrustPolicyError (exit 2)
    for a bad config, mode, trust store or revocation option."""
    from trustpolicy.errors import UsageError

    if options.mode is not None and options.mode not in MODES:
        raise UsageError(f"--mode must be one of {', '.join(MODES)}")
    if options.at is not None:
        raise UsageError("--at does not apply to serve: each package is judged at the moment it is downloaded")
    context = TrustContext.build(options)
    if context.mode not in MODES:
        raise UsageError(f"signatureValidationMode must be one of {', '.join(MODES)} for serve")
    return Judge(context)


# -- in the worker process ------------------------------------------------------------------------------

_context: TrustContext | None = None
_chains: ChainValidator | None = None


def _init_worker(judge: Judge) -> None:
    global _context, _chains
    _context = judge.context
    _chains = _context.chain_validator()  # roots registered once per worker
    parent = multiprocessing.parent_process()
    if parent is not None:  # a gate killed with SIGKILL leaves no worker behind
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(0)


def _ready() -> int:
    return os.getpid()


@dataclass(frozen=True)
class Judgement:
    """A downloaded file judged "now": the verdict, the file's SHA-512 (its cache address), its size."""

    verdict: PackageVerdict
    sha512: str
    size: int
    at: datetime


def judge_file(path: str) -> Judgement:
    """Verify one downloaded file at this moment. The whole-file SHA-512 is taken in the same read as
    the signature's content hash."""
    from trustpolicy._internal.archive import PackageArchive, hash_file
    from trustpolicy.errors import TrustPolicyError

    assert _context is not None and _chains is not None
    at = clock.now()
    archive, sha512 = None, None
    try:
        archive = PackageArchive.open(path)
        if archive.is_signed:
            archive.package_hashes(("sha256",), file_algorithms=("sha512",))
            sha512 = archive.file_hash("sha512")
    except (TrustPolicyError, OSError):
        archive = None  # the verifier opens it again and says why it cannot be read
    if sha512 is None:
        sha512 = hash_file(path, "sha512")
    verdict = _context.at(at).verifier(_chains).verify_package(path, archive=archive)
    return Judgement(verdict, sha512.hex(), os.path.getsize(path), at)


def verdict_document(verdict: PackageVerdict) -> dict[str, Any]:
    """The verdict as a refusal's JSON body and the verdict store keep it: the report's package
    object without the path (a temporary file, meaningless to anyone else)."""
    document = verdict.to_json()
    del document["path"]
    document["trustedSigner"] = verdict.trusted_signer.to_json() if verdict.trusted_signer else None
    document["trustedSignerReason"] = verdict.trusted_signer_reason
    return document


class VerificationFailed(Exception):
    """The worker gave no verdict: it died (`status` 502) or took longer than allowed (504)."""

    def __init__(self, message: str, status: int = 502) -> None:
        super().__init__(message)
        self.status = status


class JudgePool:
    """Worker processes that each hold one Judge; a policy change gets a new pool."""

    def __init__(self, judge: Judge, workers: int, timeout: float = 300.0) -> None:
        self.judge = judge
        self.workers = workers
        self.timeout = timeout  # seconds one verification may take before its worker is killed
        self._executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        # spawn: the server process has threads and an event loop, which fork would copy half-way
        return ProcessPoolExecutor(self.workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_init_worker, initargs=(self.judge,))

    async def warm_up(self) -> None:
        """Start every worker now, so the first download does not pay for imports and roots."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*(loop.run_in_executor(self._executor, _ready) for _ in range(self.workers)))

    async def judge_file(self, path: Path) -> Judgement:
        loop = asyncio.get_running_loop()
        executor = self._executor
        try:
            result = await asyncio.wait_for(loop.run_in_executor(executor, judge_file, str(path)), self.timeout)
        except BrokenProcessPool:
            self._replace(executor)  # a worker died (killed, out of memory): later requests get new ones
            raise VerificationFailed("the verification worker stopped before it gave a verdict") from None
        except TimeoutError:
            self._replace(executor, kill=True)  # a worker that hangs is stopped, not waited for
            raise VerificationFailed(f"the verification did not finish within {self.timeout:g} s", 504) from None
        return result

    def _replace(self, executor: ProcessPoolExecutor, *, kill: bool = False) -> None:
        if self._executor is not executor:
            return  # another request already replaced it
        self._executor = self._start()
        if kill:
            for process in list(getattr(executor, "_processes", {}).values()):  # no public way before Python 3.14
                process.kill()
        executor.shutdown(wait=False, cancel_futures=True)

    def close(self, *, wait: bool = False) -> None:
        """wait=False: verifications already handed over still finish (a reload); True: stop now and wait."""
        self._executor.shutdown(wait=wait, cancel_futures=wait)


# -- the decision --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decision:
    status: int  # 200 served, 403 refused by policy, 502 the upstream did not send the package asked for
    outcome: str  # "served" | "refused" | "audit-served" (would be refused) | "bad-package"
    reason: str  # the HTTP reason phrase: NU/TP code, package, one sentence

    @property
    def served(self) -> bool:
        return self.status == 200


def decide(mode: str, verdict: PackageVerdict, package_id: str, version: str) -> Decision:
    """What the gate answers for a judged file that was fetched as `package_id` `version` (lower case)."""
    who = f"{package_id} {version}"
    if Code.TP0003 in verdict.codes():
        return Decision(502, "bad-package", f"{Code.TP0003} {who}: the upstream sent a file that is not a readable "
                                            "NuGet package")
    if verdict.id is None or verdict.version is None:
        return Decision(502, "bad-package", f"{Code.TP0003} {who}: the upstream sent a package whose manifest "
                                            "cannot be read")
    parsed = try_parse_version(verdict.version)
    if verdict.id.lower() != package_id or parsed is None or parsed.normalized.lower() != version:
        return Decision(502, "bad-package",
                        _phrase(f"{Code.TP0002} {who}: the upstream sent {verdict.id} {verdict.version} instead"))
    if verdict.passed:
        return Decision(200, "served", "OK")
    reason = refusal_reason(verdict, verdict.id, parsed.normalized)
    if mode == "audit":
        return Decision(200, "audit-served", reason)
    return Decision(403, "refused", reason)


def refusal_reason(verdict: PackageVerdict, package_id: str, version: str) -> str:
    """`NU3034 Contoso.Lib 1.2.0: signer 'X' is not trusted`: the first error, in one line."""
    issues = verdict.issues
    issue = next((i for i in issues if i.level is Level.ERROR), issues[0] if issues else None)
    code = issue.code if issue else Code.TP0004
    if code == Code.NU3034 and issue is not None and issue.signature is not None:
        subject = next((s.subject for s in verdict.signatures if s.placement == issue.signature), None)
        signer = (common_name(subject) or subject) if subject else None
        sentence = f"signer '{signer}' is not trusted" if signer else "the signer is not trusted"
    elif code == Code.NU3034:
        sentence = "no trusted signers are configured"
    else:
        sentence = _SENTENCES.get(code) or title(code)
    return _phrase(f"{code} {package_id} {version}: {sentence[0].lower()}{sentence[1:]}")


_SENTENCES = {
    Code.NU3004: "the package is not signed",
    Code.NU3008: "the package has changed since it was signed",
    Code.TP0004: "verification could not be completed",
}


def _phrase(text: str) -> str:
    """A reason phrase is one line of printable ASCII; clients print it as it is."""
    text = "".join(c if " " <= c <= "~" else "?" for c in " ".join(text.split()))
    return text if len(text) <= _REASON_LENGTH else text[: _REASON_LENGTH - 3] + "..."
