"""Signed packages and verifiers for the hardening tests and harnesses, built once per process.

Everything is real: a TestPKI, timestamps from a TimestampServer on 127.0.0.1, signatures from
trustpolicy._internal.sign.sign_package, and Verifiers (ACCEPT, REQUIRE, VERIFY) that trust the test roots in
addition to the bundled ones, with revocation off.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from trustpolicy._internal import clock
from trustpolicy._internal.archive import hash_file, insert_signature
from trustpolicy._internal.chain import ChainValidator
from trustpolicy._internal.revocation import RevocationOptions
from trustpolicy._internal.sign import RepositoryOptions, SigningIdentity, build_signature, sign_package, signature_content
from trustpolicy._internal.truststore import TrustStore
from trustpolicy._internal.verify import ACCEPT, REQUIRE, VERIFY, Verifier
from trustpolicy._internal.verify.allowlist import compose
from trustpolicy.models import PackageVerdict, Status
from trustpolicy.testing.pki import Issued, TestPKI
from trustpolicy.testing.tsa import TimestampServer

try:  # imported as fuzz.signed by pytest, as signed by the harnesses
    from fuzz import zipkit
except ImportError:  # pragma: no cover
    import zipkit  # type: ignore[no-redef]

SERVICE_INDEX = "https://hardening.test/v3/index.json"
PRESETS = {"accept": ACCEPT, "require": REQUIRE, "verify": VERIFY}


def identity_of(issued: Issued) -> SigningIdentity:
    return SigningIdentity(issued.certificate, issued.private_key, issued.chain[1:])


@dataclass
class World:
    directory: Path
    pki: TestPKI
    store: TrustStore
    chains: ChainValidator
    at: datetime
    verifiers: dict[str, Verifier]
    unsigned: Path  # the small package (zipkit.small_package)
    author: Path
    repository: Path
    countersigned: Path
    large_unsigned: Path
    large: Path  # author signed
    no_timestamp: Path  # author signed, no timestamp (a smaller signature)
    other_signer: Path  # the small package author signed by another certificate

    def path(self, name: str) -> Path:
        return self.directory / name

    def write(self, name: str, data: bytes) -> Path:
        path = self.directory / name
        path.write_bytes(data)
        return path

    def verify(self, path: Path, preset: str = "verify") -> PackageVerdict:
        return self.verifiers[preset].verify_package(path)

    def signature_for(self, unsigned: bytes, *, hash_algorithm: str = "sha256") -> bytes:
        """A real author signature (no timestamp) whose content hash is SHA-2 of `unsigned` as a file.

        For layouts our signer refuses: the caller places the entry by hand.
        """
        content = signature_content(hash_algorithm, hashlib.new(hash_algorithm, unsigned).digest())
        return build_signature(content, identity=identity_of(self.pki.leaf), hash_algorithm=hash_algorithm)

    def sign_bytes(self, name: str, unsigned: bytes, **options: object) -> Path:
        """sign_package on `unsigned` written to disk (our signer's own refusals propagate)."""
        source = self.write(name + ".unsigned.nupkg", unsigned)
        return sign_package(source, identity=identity_of(self.pki.leaf), output=self.path(name + ".nupkg"),
                            on_warning=lambda w: None, **options)  # type: ignore[arg-type]


_WORLD: World | None = None


def world(base: Path | None = None) -> World:
    """The process-wide world (built on first use; `base` is where its files go)."""
    global _WORLD
    if _WORLD is None:
        _WORLD = _build(Path(base) if base is not None else Path(tempfile.mkdtemp(prefix="trustpolicy-hardening-")))
    return _WORLD


def _build(base: Path) -> World:
    directory = base / "packages"
    directory.mkdir(parents=True, exist_ok=True)
    pki = TestPKI(base / "pki", tag="hardening")
    roots = [pki.root.asn1, pki.tsa_root.asn1]
    store = TrustStore.bundled().with_extra_roots(roots)
    chains = ChainValidator(store, RevocationOptions("off"))
    at = clock.now()
    no_lists = compose((), require_non_empty=False)
    verifiers = {name: Verifier(settings.replace(revocation_mode="off"), chains=chains, at=at, allow_lists=no_lists)
                 for name, settings in PRESETS.items()}
    leaf = identity_of(pki.leaf)
    unsigned = directory / "small.unsigned.nupkg"
    unsigned.write_bytes(zipkit.small_package())
    large_unsigned = directory / "large.unsigned.nupkg"
    large_unsigned.write_bytes(zipkit.large_package())
    repo = RepositoryOptions(SERVICE_INDEX, ("hardening-owner",))
    repo_leaf = identity_of(pki.issue_code_signing("Hardening Repository Signing"))
    quiet = dict(on_warning=lambda w: None)
    with TimestampServer(pki.tsa) as tsa:
        author = sign_package(unsigned, identity=leaf, output=directory / "small.author.nupkg", timestamper=tsa.url)
        repository = sign_package(unsigned, identity=repo_leaf, output=directory / "small.repository.nupkg",
                                  timestamper=tsa.url, repository=repo)
        countersigned = sign_package(author, identity=repo_leaf, output=directory / "small.countersigned.nupkg",
                                     timestamper=tsa.url, repository=repo)
        large = sign_package(large_unsigned, identity=leaf, output=directory / "large.author.nupkg",
                             timestamper=tsa.url)
    no_timestamp = sign_package(unsigned, identity=leaf, output=directory / "small.nots.nupkg", **quiet)
    other_signer = sign_package(unsigned, identity=repo_leaf, output=directory / "small.other.nupkg", **quiet)
    return World(directory, pki, store, chains, at, verifiers, unsigned, author, repository, countersigned,
                 large_unsigned, large, no_timestamp, other_signer)


# --- the "no false valid" oracle for a package whose signature bytes were changed ---------------------

CODE = re.compile(r"(NU3\d\d\d|TP\d\d\d\d)")
ILLEGAL = {"NU3000", "NU3003", "NU3005", "NU3007", "NU3009", "NU3010", "NU3011", "NU3031", "NU3032", "NU3033"}


def report_key(report):  # type: ignore[no-untyped-def]
    return (report.subject, tuple(sorted(report.fingerprints.items())))


def judge(original: PackageVerdict, verdict: PackageVerdict, preset: str) -> str:
    """"invalid" | "same" | "no-timestamp" | "countersignature-dropped" | "illegal-accepted" | "weaker" |
    "claims-changed-unverified" | "BAD: why".

    Unsigned attributes (timestamps, the countersignature) can be dropped by anyone, so losing one is
    not a false verdict; another signer, another time or a valid verdict without integrity is.
    """
    if verdict.verdict == "invalid":
        if not verdict.errors or not all(CODE.fullmatch(issue.code) for issue in verdict.errors):
            return f"BAD: invalid without a coded error {verdict.issues}"
        return "invalid"
    if verdict.signatures == original.signatures and verdict.issues == original.issues:
        return "same"
    if not verdict.signatures:  # the signature is not vouched for at all
        ok = preset == "accept" and all(i.level != "error" and i.code in ILLEGAL for i in verdict.issues)
        return "illegal-accepted" if ok and verdict.issues else f"BAD: valid without signatures {verdict.issues}"
    integrity = next((s for s in verdict.steps if s.step == "integrity"), None)
    if integrity is None or integrity.status != Status.VALID:
        return "BAD: valid without a passing integrity step"
    keys, before = [report_key(r) for r in verdict.signatures], [report_key(r) for r in original.signatures]
    if keys != before[: len(keys)]:  # the primary first; a countersignature (unsigned to it) may be gone
        return f"BAD: another signer {verdict.signatures}"
    for new, old in zip(verdict.signatures, original.signatures):
        if new.timestamp not in (None, old.timestamp):
            return f"BAD: another timestamp time {new.timestamp} != {old.timestamp}"
        if (new.kind, new.service_index, new.owners) != (old.kind, old.service_index, old.owners):
            # only for a signature reported as not verifying, or one the mode did not evaluate
            if "NU3012" not in verdict.codes() and new.status is not None:
                return f"BAD: another kind / service index / owners {new}"
            return "claims-changed-unverified"
    if len(keys) < len(before):
        return "countersignature-dropped"
    if all(n.timestamp == o.timestamp for n, o in zip(verdict.signatures, original.signatures)):
        return "weaker"  # same signer and time, with added warnings (accept: NU3012 and the like)
    return "no-timestamp"


def copy(path: Path, dest: Path) -> Path:
    shutil.copyfile(path, dest)
    return dest


__all__ = ["CODE", "ILLEGAL", "PRESETS", "SERVICE_INDEX", "World", "copy", "hash_file", "identity_of", "insert_signature", "judge", "world"]
