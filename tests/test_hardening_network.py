"""Network faults through the command line (issue 6, part 7): bounded time, one clear line, no hang.

Real servers on 127.0.0.1 (trustpolicy.testing) misbehave in every way we know, and the commands
that talk to them run as real processes:

- `sign --timestamper` against a TimestampServer that hangs, resets, sends garbage, a huge body
  (streamed, or announced), redirects in a loop, answers HTTP 500 or trickles a byte at a time:
  exit 2, one NU3000 line naming the URL, the package untouched, within timeout * 3 + 10 s.
- `verify --revocation online` and `check --revocation online`, for a package whose signing
  certificate IS revoked (on the CRL and by OCSP) while its CRL distribution point and OCSP
  responder fail in the same ways: the run ends within revocation timeout * 3 + 10 s, the unknown
  status is reported (NU3018), and a tampered package next to it is invalid every time. With the
  servers healthy the same package is invalid (revoked), so the servers really are consulted.
  (Unknown revocation does not make a signature invalid: NuGet's rule, kept on purpose.)
- `trust source` and `trust sync` against a service index server, or a RepositorySignatures
  document server, failing the same ways: exit 2, one line naming the URL, the config untouched.

Everything runs concurrently (the waits are I/O), so the whole file takes about as long as its
slowest case.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from trustpolicy._internal.sign import SigningIdentity, sign_package
from trustpolicy._internal.signature import fingerprint
from trustpolicy.testing.pki import Issued, TestPKI, write_certificates
from trustpolicy.testing.revocation import CRLServer, OCSPResponder
from trustpolicy.testing.tsa import TimestampServer

FAULTS = ("hang", "reset", "garbage", "huge", "huge-declared", "redirect-loop", "http-500", "trickle")
TSA_TIMEOUT = 1.0  # --timestamp-timeout
SOURCE_TIMEOUT = 1.0  # trust source/sync --timeout
REVOCATION_TIMEOUT = 5.0  # RevocationOptions.timeout (not a CLI option): per request


def bound(timeout: float) -> float:
    return timeout * 3 + 10


def env_for(base: Path) -> dict[str, str]:
    """Isolated HOME, caches (revocation answers are cached!) and no proxies."""
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    env.update(HOME=str(base / "home"), XDG_CACHE_HOME=str(base / "cache"),
               NUGET_COMMON_APPLICATION_DATA=str(base / "machine"))
    return env


@dataclass
class Run:
    label: str
    code: int
    out: str
    err: str
    seconds: float


def cli(label: str, argv: list[str], base: Path, timeout: float = 120) -> Run:
    base.mkdir(parents=True, exist_ok=True)
    (base / "home").mkdir(exist_ok=True)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "trustpolicy", *argv], capture_output=True, text=True,
                          env=env_for(base), timeout=timeout, cwd=base)
    return Run(label, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start)


def assert_clean_failure(run: Run, limit: float, *needles: str) -> None:
    """Exit 2 in time with one error line holding every needle; no traceback."""
    where = f"{run.label}: exit {run.code} after {run.seconds:.1f} s: {run.err[-500:]}"
    assert run.seconds < limit, where
    assert run.code == 2, where
    assert "Traceback" not in run.err and "internal error" not in run.err, where
    assert run.err.startswith("trustpolicy: error: ") and run.err.count("\n") == 1, where  # exactly one line
    for needle in needles:
        assert needle in run.err, where


def make_package(path: Path, package_id: str) -> Path:
    nuspec = (f'<?xml version="1.0" encoding="utf-8"?><package><metadata><id>{package_id}</id>'
              "<version>1.0.0</version><authors>a</authors><description>d</description></metadata></package>")
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(f"{package_id}.nuspec", nuspec, zipfile.ZIP_DEFLATED)
        z.writestr("lib/net8.0/payload.bin", b"PAYLOAD-" + bytes(range(256)) * 4, zipfile.ZIP_STORED)
    return path


def tamper(signed: Path, dest: Path) -> Path:
    data = bytearray(signed.read_bytes())
    at = data.index(b"PAYLOAD-") + 20
    data[at] ^= 0xFF
    dest.write_bytes(bytes(data))
    return dest


def identity_of(issued: Issued) -> SigningIdentity:
    return SigningIdentity(issued.certificate, issued.private_key, issued.chain[1:])


class Faulty:
    """Servers to be broken on purpose; all stopped (hanging handlers released) at the end."""

    def __init__(self) -> None:
        self.stack = ExitStack()

    def crl(self, failure: str | None = None) -> CRLServer:
        server = self.stack.enter_context(CRLServer())
        server.failure = failure
        return server

    def ocsp(self, ca: Issued, failure: str | None = None) -> OCSPResponder:
        server = self.stack.enter_context(OCSPResponder(ca))
        server.failure = failure
        return server

    def tsa(self, tsa: Issued, **knobs: Any) -> TimestampServer:
        return self.stack.enter_context(TimestampServer(tsa, **knobs))


@pytest.fixture(scope="module")
def servers() -> Iterator[Faulty]:
    faulty = Faulty()
    with faulty.stack:
        yield faulty


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return TestPKI(tmp_path_factory.mktemp("net-pki"), tag="hardening-network")


# --- sign --timestamper --------------------------------------------------------------------------

TSA_FAULTS: dict[str, dict[str, Any]] = {
    "hang": {"hang": 30.0},
    "reset": {"fault": "reset"},
    "garbage": {"garbage": os.urandom(512)},
    "huge": {"fault": "huge"},
    "huge-declared": {"garbage": b"\x30\x84" + b"\0" * (2 << 20)},  # 2 MiB with its Content-Length
    "redirect-loop": {"fault": "redirect-loop"},
    "http-500": {"http_status": 500},
    "trickle": {"fault": "trickle"},
}


def test_sign_with_a_broken_timestamp_server(pki: TestPKI, servers: Faulty, tmp_path: Path) -> None:
    pfx = pki.leaf.write_pfx(tmp_path / "leaf.pfx", "pw")
    healthy = servers.tsa(pki.tsa)

    def one(name: str) -> tuple[Run, bytes, Path]:
        folder = tmp_path / name
        folder.mkdir()
        package = make_package(folder / "Net.Sign.1.0.0.nupkg", "Net.Sign")
        before = package.read_bytes()
        url = healthy.url if name == "healthy" else servers.tsa(pki.tsa, **TSA_FAULTS[name]).url
        run = cli(f"sign / {name}", ["sign", str(package), "--certificate-path", str(pfx), "--certificate-password", "pw",
                                     "--timestamper", url, "--timestamp-timeout", str(TSA_TIMEOUT)], folder / "env")
        return run, before, package

    with ThreadPoolExecutor(max_workers=5) as pool:
        results = dict(zip(["healthy", *TSA_FAULTS], pool.map(one, ["healthy", *TSA_FAULTS])))
    run, before, package = results.pop("healthy")
    assert run.code == 0 and package.read_bytes() != before, run.err  # the control: it does sign
    for name, (run, before, package) in results.items():
        assert_clean_failure(run, bound(TSA_TIMEOUT), str(package), "NU3000", "http://127.0.0.1:")
        assert package.read_bytes() == before, name  # signing in place: untouched on failure
        assert sorted(p.name for p in package.parent.iterdir()) == ["Net.Sign.1.0.0.nupkg", "env"], name
    print(f"\nsign --timestamper: {len(results)} faults, slowest {max(r[0].seconds for r in results.values()):.1f} s: "
          + "; ".join(f"{name} {r[0].seconds:.1f} s: {r[0].err.strip().partition('NU3000: ')[2]}" for name, r in results.items()))


# --- verify / check --revocation online ----------------------------------------------------------


@dataclass
class RevocationCase:
    failure: str | None
    leaf: Issued
    good: Path  # signed by `leaf`, which the servers (when they answer) say is revoked
    tampered: Path
    config: Path  # require mode, `leaf` trusted


@pytest.fixture(scope="module")
def revocation_cases(pki: TestPKI, servers: Faulty, tmp_path_factory: pytest.TempPathFactory) -> dict[str | None, RevocationCase]:
    base = tmp_path_factory.mktemp("revocation")
    infra = servers.crl()
    ca = pki.issue_ca("Net CA", issuer=pki.root, crl_urls=[infra.publish("root.crl", pki.make_crl(pki.root))])
    cases: dict[str | None, RevocationCase] = {}
    for failure in (None, *FAULTS):
        name = failure or "healthy"
        cdp = servers.crl()
        responder = servers.ocsp(ca)
        leaf = pki.issue_code_signing(f"Net leaf {name}", issuer=ca, crl_urls=[cdp.url("ca.crl")], ocsp_urls=[responder.url])
        cdp.publish("ca.crl", pki.make_crl(ca, revoked=[leaf.serial]))
        responder.set_status(leaf, "revoked")
        folder = base / name / "packages"
        folder.mkdir(parents=True)
        good = make_package(folder / "net.good.1.0.0.nupkg", "Net.Good")
        sign_package(good, identity=identity_of(leaf), output=good, overwrite=True, on_warning=lambda w: None)
        tampered = tamper(good, folder / "net.tampered.1.0.0.nupkg")
        config = base / name / "NuGet.Config"
        config.write_text(
            '<?xml version="1.0" encoding="utf-8"?>\n<configuration><config><add key="signatureValidationMode" value="require" />'
            f'</config><trustedSigners><author name="net"><certificate fingerprint="{fingerprint(leaf.asn1)}" '
            'hashAlgorithm="SHA256" allowUntrustedRoot="false" /></author></trustedSigners></configuration>\n')
        cdp.failure = responder.failure = failure  # broken from here on (the healthy case stays healthy)
        cases[failure] = RevocationCase(failure, leaf, good, tampered, config)
    return cases


def test_online_revocation_with_broken_servers(pki: TestPKI, revocation_cases: dict[str | None, RevocationCase],
                                               tmp_path: Path) -> None:
    roots = write_certificates(tmp_path / "roots.pem", [pki.root.certificate])
    jobs = []
    for failure, case in revocation_cases.items():
        name = failure or "healthy"
        common = ["--revocation", "online", "--trust-store", str(roots), "--configfile", str(case.config), "--format", "json"]
        jobs.append((failure, "verify", ["verify", str(case.good), str(case.tampered), *common], tmp_path / name / "verify"))
        jobs.append((failure, "check", ["check", str(case.good.parent), *common, "--cache-dir", str(tmp_path / name / "cache")],
                     tmp_path / name / "check"))
    # The slow ones (waiting for timeouts) first, and few at a time, so that CPU-bound runs do not
    # crowd the timed ones on a small machine.
    jobs.sort(key=lambda job: job[0] not in ("hang", "trickle"))
    with ThreadPoolExecutor(max_workers=6) as pool:
        runs = list(pool.map(lambda job: (job[0], job[1], cli(f"{job[1]} / {job[0]}", job[2], job[3])), jobs))

    slowest = 0.0
    for failure, command, run in runs:
        where = f"{run.label}: exit {run.code} after {run.seconds:.1f} s: {run.err[-500:]}"
        slowest = max(slowest, run.seconds)
        assert run.seconds < bound(REVOCATION_TIMEOUT), where
        assert "Traceback" not in run.err and "internal error" not in run.err, where
        assert run.code == 1, where  # findings (the tampered package at least), never an unusable run
        packages = {Path(p["path"]).name: p for p in json.loads(run.out)["packages"]}
        good, tampered = packages["net.good.1.0.0.nupkg"], packages["net.tampered.1.0.0.nupkg"]
        assert tampered["verdict"] == "invalid" and "NU3008" in {i["code"] for i in tampered["issues"]}, where
        codes = {i["code"]: i for i in good["issues"]}
        if failure is None:  # healthy servers: the revocation is found
            assert good["verdict"] == "invalid" and "NU3012" in codes, (where, codes)
        else:  # broken servers: unknown, said so, and the run ends
            assert "NU3012" not in codes, where
            assert "NU3018" in codes and "revocation" in codes["NU3018"]["message"], (where, good["issues"])
    times = {f"{command}/{failure or 'healthy'}": round(run.seconds, 1) for failure, command, run in runs}
    print(f"\nonline revocation: {len(FAULTS)} faults (CRL + OCSP) x verify/check = {len(runs) - 2} runs, "
          f"slowest {slowest:.1f} s (bound {bound(REVOCATION_TIMEOUT):.0f} s): {times}")


# --- trust source / sync ------------------------------------------------------------------------

SIGNATURES_DOC = {"allRepositorySigned": True, "signingCertificates": [{
    "fingerprints": {"2.16.840.1.101.3.4.2.1": "AB" * 32}, "subject": "CN=Repo", "issuer": "CN=CA",
    "notBefore": "2024-01-01T00:00:00.0000000Z", "notAfter": "2030-01-01T00:00:00.0000000Z",
    "contentUrl": "https://certs.example.test/repo.crt"}]}


def service_index(resource_url: str) -> bytes:
    return json.dumps({"version": "3.0.0", "resources": [
        {"@id": resource_url, "@type": "RepositorySignatures/5.0.0"}]}).encode()


def test_trust_source_and_sync_with_a_broken_service(servers: Faulty, tmp_path: Path) -> None:
    good_docs = servers.crl()  # a well-behaved RepositorySignatures document
    good_docs.publish("sigs.json", json.dumps(SIGNATURES_DOC).encode())
    jobs: list[tuple[str, str, list[str], Path, Path, str]] = []
    for fault in (None, *FAULTS):
        name = fault or "healthy"
        broken_index = servers.crl(fault)  # the service index itself fails
        broken_index.publish("index.json", service_index(good_docs.url("sigs.json")))
        broken_docs = servers.crl(fault)  # the index is fine, its RepositorySignatures document fails
        broken_docs.publish("sigs.json", json.dumps(SIGNATURES_DOC).encode())
        second_index = servers.crl()
        second_index.publish("index.json", service_index(broken_docs.url("sigs.json")))
        stages = (("index", broken_index.url("index.json"), broken_index.url("index.json")),
                  ("signatures", second_index.url("index.json"), broken_docs.url("sigs.json")))
        for stage, url, failing in stages:
            folder = tmp_path / name / f"source-{stage}"
            folder.mkdir(parents=True)
            config = folder / "NuGet.Config"
            config.write_text("<configuration />\n")
            jobs.append((f"trust source / {stage} / {name}", name, ["trust", "source", "feed", "--source-url", url,
                         "--timeout", str(SOURCE_TIMEOUT), "--configfile", str(config)], folder, config, failing))
        folder = tmp_path / name / "sync"
        folder.mkdir(parents=True)
        config = folder / "NuGet.Config"
        config.write_text(
            '<configuration><trustedSigners><repository name="feed" serviceIndex="'
            f'{broken_index.url("index.json")}"><certificate fingerprint="{"CD" * 32}" hashAlgorithm="SHA256" '
            'allowUntrustedRoot="false" /></repository></trustedSigners></configuration>\n')
        jobs.append((f"trust sync / {name}", name, ["trust", "sync", "feed", "--timeout", str(SOURCE_TIMEOUT),
                     "--configfile", str(config)], folder, config, broken_index.url("index.json")))

    befores = {job[0]: job[4].read_bytes() for job in jobs}
    with ThreadPoolExecutor(max_workers=8) as pool:
        runs = list(pool.map(lambda job: cli(job[0], job[2], job[3] / "env"), jobs))
    for (label, name, _, folder, config, url), run in zip(jobs, runs):
        if name == "healthy":
            assert run.code == 0, run.err
            assert config.read_bytes() != befores[label] and ("AB" * 32).encode() in config.read_bytes()
            continue
        assert_clean_failure(run, bound(SOURCE_TIMEOUT), url)  # names the URL that failed
        assert config.read_bytes() == befores[label], label
        assert sorted(p.name for p in folder.iterdir()) == ["NuGet.Config", "env"], label
    failures = [r for (label, name, *_), r in zip(jobs, runs) if name != "healthy"]
    print(f"\ntrust source/sync: {len(failures)} faulty runs, slowest {max(r.seconds for r in failures):.1f} s")
