"""Policy decisions: the judge (a package file -> a verdict, in a worker process) and the decision
(a verdict -> what the gate answers).

`build_judge` is the one place the verifier is assembled from the options and the effective
NuGet.Config, the same way `check` does; the rest of the server sees only `Judge`.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.connection
import os
import re
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trustpolicy import clock
from trustpolicy.codes import title
from trustpolicy.graph.versions import try_parse_version

if TYPE_CHECKING:
    from trustpolicy.config import TrustSettings
    from trustpolicy.revocation import RevocationOptions
    from trustpolicy.truststore import TrustStore
    from trustpolicy.verify.settings import VerificationSettings

MODES = ("accept", "require", "audit")
UNREADABLE = "TP0003"  # the verifier's code for a file that is not a readable package
WRONG_PACKAGE = "TP0002"  # the file is another package than the one asked for
_REASON_LENGTH = 200


@dataclass(frozen=True)
class JudgeOptions:
    """What `check` also takes: mode, config, trust store and revocation."""

    mode: str | None = None  # None: signatureValidationMode of the config
    configfile: str | None = None
    directory: str | None = None  # where the config hierarchy starts when there is no configfile
    trust_store: tuple[str, ...] = ()
    extra_roots: tuple[str, ...] = ()
    revocation: str = "online"
    revocation_data: tuple[str, ...] = ()
    revocation_timeout: float = 5.0
    cache_dir: Path | None = None  # revocation data is cached under it


@dataclass(frozen=True)
class Judge:
    """One policy: judges package files (in a worker) and names the policy for the verdict cache."""

    mode: str  # accept | require | audit (audit judges as require)
    trust: TrustSettings
    settings: VerificationSettings
    require_non_empty: bool
    store: TrustStore
    revocation: RevocationOptions
    _digests: dict[date, str] = field(default_factory=dict, compare=False, repr=False)

    def policy(self, day: date) -> str:
        """The verdict cache's name for this policy on one UTC day (verdicts are judged "now")."""
        if day not in self._digests:
            from trustpolicy.check import policy_digest

            self._digests.clear()
            self._digests[day] = policy_digest(self.settings, self.require_non_empty, self.trust.signers, self.store,
                                               self.revocation.mode, self.revocation.data_dirs, day.isoformat())
        return self._digests[day]

    @property
    def config_files(self) -> tuple[str, ...]:
        return self.trust.files


def build_judge(options: JudgeOptions) -> Judge:
    """The policy of `check`, from the same options and NuGet.Config. Raises TrustPolicyError (exit 2)
    for a bad config, mode, trust store or revocation option."""
    from trustpolicy.config import load_trust_settings
    from trustpolicy.errors import UsageError
    from trustpolicy.revocation import RevocationOptions
    from trustpolicy.truststore import TrustStore
    from trustpolicy.verify.settings import ACCEPT, REQUIRE

    directory = None if options.configfile else (options.directory or os.getcwd())
    trust = load_trust_settings(configfile=options.configfile, directory=directory)
    mode = options.mode or trust.mode
    if mode not in MODES:
        raise UsageError(f"--mode must be one of {', '.join(MODES)}")
    return Judge(
        mode=mode,
        trust=trust,
        settings=ACCEPT if mode == "accept" else REQUIRE,
        require_non_empty=mode != "accept",
        store=TrustStore.from_files(options.trust_store, extra=options.extra_roots),
        revocation=RevocationOptions(
            mode=options.revocation,
            data_dirs=tuple(Path(d) for d in options.revocation_data),
            cache_dir=options.cache_dir / "revocation" if options.cache_dir else None,
            timeout=options.revocation_timeout,
        ),
    )


# -- in the worker process ------------------------------------------------------------------------------

_judge: Judge | None = None
_chains: Any = None


def _init_worker(judge: Judge) -> None:
    global _judge, _chains
    from trustpolicy.chain import ChainValidator

    _judge = judge
    _chains = ChainValidator(judge.store, judge.revocation)  # roots registered once per worker
    parent = multiprocessing.parent_process()
    if parent is not None:  # a gate killed with SIGKILL leaves no worker behind
        threading.Thread(target=_exit_with, args=(parent.sentinel,), daemon=True).start()


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(0)


def _ready() -> int:
    return os.getpid()


def judge_file(path: str) -> dict[str, Any]:
    """Verify one downloaded file "now": its verdict (the report entry shape) and its SHA-512.

    The whole-file SHA-512 (the cache address) is taken in the same read as the signature's content hash."""
    from trustpolicy.archive import PackageArchive, hash_file
    from trustpolicy.errors import TrustPolicyError
    from trustpolicy.verify import Verifier

    assert _judge is not None
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
    verifier = Verifier.from_trust_settings(_judge.trust, _judge.settings, chain_validator=_chains, at=at,
                                            require_non_empty=_judge.require_non_empty)
    verdict = verifier.verify_package(path, archive=archive)
    entry = verdict.to_json()
    entry["trustedSigner"] = verdict.trusted_signer.to_json() if verdict.trusted_signer else None
    entry["trustedSignerReason"] = verdict.trusted_signer_reason
    entry.pop("path", None)  # a temporary file: meaningless to anyone else
    return {"verdict": entry, "sha512": sha512.hex(), "size": os.path.getsize(path), "at": at.isoformat()}


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

    async def judge_file(self, path: Path) -> tuple[dict[str, Any], datetime]:
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
        return result, datetime.fromisoformat(result["at"])

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


def decide(mode: str, verdict: dict[str, Any], package_id: str, version: str) -> Decision:
    """What the gate answers for a judged file that was fetched as `package_id` `version` (lower case)."""
    who = f"{package_id} {version}"
    codes = [issue.get("code") for issue in verdict.get("issues", [])]
    if UNREADABLE in codes:
        return Decision(502, "bad-package", f"{UNREADABLE} {who}: the upstream sent a file that is not a readable NuGet package")
    found_id, found_version = verdict.get("id"), verdict.get("version")
    if not isinstance(found_id, str) or not isinstance(found_version, str):
        return Decision(502, "bad-package", f"{UNREADABLE} {who}: the upstream sent a package whose manifest cannot be read")
    parsed = try_parse_version(found_version)
    if found_id.lower() != package_id or parsed is None or parsed.normalized.lower() != version:
        return Decision(502, "bad-package", _phrase(f"{WRONG_PACKAGE} {who}: the upstream sent {found_id} {found_version} instead"))
    if verdict.get("verdict") == "valid":
        return Decision(200, "served", "OK")
    reason = refusal_reason(verdict, found_id, parsed.normalized)
    if mode == "audit":
        return Decision(200, "audit-served", reason)
    return Decision(403, "refused", reason)


def refusal_reason(verdict: dict[str, Any], package_id: str, version: str) -> str:
    """`NU3034 Contoso.Lib 1.2.0: signer 'X' is not trusted`: the first error, in one line."""
    issues = verdict.get("issues", [])
    issue = next((i for i in issues if i.get("level") == "error"), issues[0] if issues else {})
    code = issue.get("code") or "TP0004"
    if code == "NU3034" and issue.get("signature") is not None:
        signer = _common_name(next((s.get("subject") for s in verdict.get("signatures", [])
                                    if s.get("placement") == issue.get("signature")), None))
        sentence = f"signer '{signer}' is not trusted" if signer else "the signer is not trusted"
    elif code == "NU3034":
        sentence = "no trusted signers are configured"
    else:
        sentence = _SENTENCES.get(code) or title(code)
    return _phrase(f"{code} {package_id} {version}: {sentence[0].lower()}{sentence[1:]}")


_SENTENCES = {
    "NU3004": "the package is not signed",
    "NU3008": "the package has changed since it was signed",
    "TP0004": "verification could not be completed",
}


def _common_name(subject: str | None) -> str | None:
    """The CN of a DN as .NET prints it (`CN=Name, O=...` or `CN="Name, Inc", ...`)."""
    if not subject:
        return None
    match = re.search(r'(?:^|,\s*)CN=("(?:[^"]|"")*"|[^,]*)', subject)
    if not match:
        return subject
    value = match.group(1).strip()
    return value[1:-1].replace('""', '"') if value.startswith('"') else value


def _phrase(text: str) -> str:
    """A reason phrase is one line of printable ASCII; clients print it as it is."""
    text = "".join(c if " " <= c <= "~" else "?" for c in " ".join(text.split()))
    return text if len(text) <= _REASON_LENGTH else text[: _REASON_LENGTH - 3] + "..."
