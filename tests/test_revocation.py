"""Revocation: real CRL distribution points and OCSP responders on 127.0.0.1, offline data, cache,
and every way a revocation server can fail (which must give "unknown" quickly, never a hang)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import pem

from trustpolicy._internal.chain import ChainResult, ChainValidator
from trustpolicy._internal.revocation import RevocationFetcher, RevocationOptions
from trustpolicy._internal.truststore import TrustStore
from trustpolicy.errors import TrustPolicyError, UsageError
from trustpolicy.testing.pki import Issued, TestPKI
from trustpolicy.testing.revocation import CRLServer, OCSPResponder, closed_port_url

TIMEOUT = 1.0
SLACK = 2.0  # generous: CI machines are slow and noisy


@pytest.fixture(scope="module")
def infra() -> Iterator[CRLServer]:
    """Serves the root's (empty) CRL, so the CA below it has a good revocation status."""
    with CRLServer() as server:
        yield server


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI(tag="revocation")


@pytest.fixture(scope="module")
def ca(pki: TestPKI, infra: CRLServer) -> Issued:
    url = infra.publish("root.crl", pki.make_crl(pki.root))
    return pki.issue_ca("Revocation CA", issuer=pki.root, crl_urls=[url])


@pytest.fixture(scope="module")
def store(pki: TestPKI) -> TrustStore:
    return TrustStore([pki.root.asn1], [pki.root.asn1], "revocation test root")


@pytest.fixture()
def cdp() -> Iterator[CRLServer]:
    with CRLServer() as server:
        yield server


@pytest.fixture()
def responder(ca: Issued) -> Iterator[OCSPResponder]:
    with OCSPResponder(ca) as server:
        yield server


def online(tmp_path: Path, **kw) -> RevocationOptions:  # type: ignore[no-untyped-def]
    kw.setdefault("timeout", TIMEOUT)
    return RevocationOptions("online", cache_dir=tmp_path / "cache", **kw)


def run(store: TrustStore, options: RevocationOptions, leaf: Issued, *chain: Issued, moment: datetime) -> ChainResult:
    validator = ChainValidator(store, options)
    return validator.validate(leaf.asn1, [c.asn1 for c in chain], moment=moment, purpose="code_signing")


# --- CRL ------------------------------------------------------------------------------------------


def test_crl_revoked_before_the_moment(pki: TestPKI, ca: Issued, store: TrustStore, cdp: CRLServer, tmp_path: Path) -> None:
    leaf = pki.issue_code_signing("CRL revoked", issuer=ca, crl_urls=[cdp.url("ca.crl")])
    revoked_at = pki.now - timedelta(days=2)
    cdp.publish("ca.crl", pki.make_crl(ca, revoked=[(leaf.serial, revoked_at)]))
    result = run(store, online(tmp_path), leaf, ca, moment=pki.now)
    assert (result.trusted, result.status, result.revocation, result.revoked_at) == (True, "revoked", "revoked", revoked_at)
    assert "CRL" in result.message and "revoked" in result.message
    # signed before the revocation (e.g. a timestamp three days ago): still good
    before = run(store, online(tmp_path), leaf, ca, moment=pki.now - timedelta(days=3))
    assert (before.status, before.revocation, before.revoked_at) == ("valid", "good", None)


def test_crl_good(pki: TestPKI, ca: Issued, store: TrustStore, cdp: CRLServer, tmp_path: Path) -> None:
    leaf = pki.issue_code_signing("CRL good", issuer=ca, crl_urls=[cdp.url("ca.crl")])
    cdp.publish("ca.crl", pki.make_crl(ca, revoked=[leaf.serial + 1000]))
    result = run(store, online(tmp_path), leaf, ca, moment=pki.now)
    assert (result.status, result.revocation) == ("valid", "good")


def test_revoked_intermediate(pki: TestPKI, store: TrustStore, cdp: CRLServer, tmp_path: Path) -> None:
    bad_ca = pki.issue_ca("Revoked CA", issuer=pki.root, crl_urls=[cdp.url("root.crl")])
    cdp.publish("root.crl", pki.make_crl(pki.root, revoked=[(bad_ca.serial, pki.now - timedelta(days=1))]))
    leaf = pki.issue_code_signing("Under revoked CA", issuer=bad_ca)
    result = run(store, online(tmp_path), leaf, bad_ca, moment=pki.now)
    assert (result.status, result.revocation) == ("revoked", "revoked")
    assert "Revoked CA" in result.message


def test_revoked_leaf_is_found_behind_an_unreachable_intermediate_crl(pki: TestPKI, store: TrustStore, cdp: CRLServer, tmp_path: Path) -> None:
    dark_ca = pki.issue_ca("Dark CA", issuer=pki.root, crl_urls=[closed_port_url("/root.crl")])
    leaf = pki.issue_code_signing("Revoked under dark CA", issuer=dark_ca, crl_urls=[cdp.url("dark.crl")])
    cdp.publish("dark.crl", pki.make_crl(dark_ca, revoked=[leaf.serial]))
    result = run(store, online(tmp_path), leaf, dark_ca, moment=pki.now)
    assert (result.status, result.revocation) == ("revoked", "revoked")


def test_forged_crl_does_not_revoke(pki: TestPKI, ca: Issued, store: TrustStore, cdp: CRLServer, tmp_path: Path) -> None:
    leaf = pki.issue_code_signing("Forged CRL target", issuer=ca, crl_urls=[cdp.url("ca.crl")])
    forger = pki.issue_ca("Forger", issuer=pki.root)
    cdp.publish("ca.crl", pki.make_crl(ca, revoked=[leaf.serial], signer=forger))
    result = run(store, online(tmp_path), leaf, ca, moment=pki.now)
    assert (result.status, result.revocation) == ("valid", "unknown")


def test_results_are_cached_per_revocation_window(pki: TestPKI, ca: Issued, store: TrustStore, cdp: CRLServer, tmp_path: Path) -> None:
    leaf = pki.issue_code_signing("Window", issuer=ca, crl_urls=[cdp.url("ca.crl")])
    revoked_at = pki.now - timedelta(days=2)
    cdp.publish("ca.crl", pki.make_crl(ca, revoked=[(leaf.serial, revoked_at)]))
    validator = ChainValidator(store, online(tmp_path))

    def state(moment: datetime) -> str:
        return validator.validate(leaf.asn1, [ca.asn1], moment=moment, purpose="code_signing").revocation

    assert state(revoked_at - timedelta(hours=1)) == "good"
    assert state(revoked_at + timedelta(hours=1)) == "revoked"  # not the cached "good"
    assert state(revoked_at - timedelta(hours=2)) == "good"
    assert state(revoked_at + timedelta(hours=2)) == "revoked"
    assert validator.stats == {"validations": 2, "cache_hits": 2}
    assert cdp.requests == 1


def test_untrusted_root_still_reports_revocation(store: TrustStore, tmp_path: Path) -> None:
    with CRLServer() as server:
        other = TestPKI(tag="untrusted-revoked")
        other_ca = other.issue_ca("Untrusted CA", issuer=other.root, crl_urls=[server.url("root.crl")])
        leaf = other.issue_code_signing("Revoked, untrusted", issuer=other_ca, crl_urls=[server.url("ca.crl")])
        server.publish("root.crl", other.make_crl(other.root))
        server.publish("ca.crl", other.make_crl(other_ca, revoked=[leaf.serial]))
        validator = ChainValidator(store, online(tmp_path))
        certs = [other_ca.asn1, other.root.asn1]
        result = validator.validate(leaf.asn1, certs, moment=other.now, purpose="code_signing")
        assert (result.trusted, result.status, result.revocation) == (False, "revoked", "revoked")
        assert result.problems == ("revoked", "untrusted-root")
        # allowUntrustedRoot (the leaf trusted explicitly) does not excuse a revocation
        allowed = validator.validate(leaf.asn1, certs, moment=other.now, purpose="code_signing", extra_trusted=[leaf.asn1])
        assert (allowed.trusted, allowed.status) == (True, "revoked")


def test_stale_crl_is_unknown(pki: TestPKI, ca: Issued, store: TrustStore, cdp: CRLServer, tmp_path: Path) -> None:
    leaf = pki.issue_code_signing("Stale CRL", issuer=ca, crl_urls=[cdp.url("ca.crl")])
    cdp.publish("ca.crl", pki.make_crl(ca, this_update=pki.now - timedelta(days=10), next_update=pki.now - timedelta(days=5)))
    result = run(store, online(tmp_path), leaf, ca, moment=pki.now)
    assert result.revocation == "unknown"
    # the same CRL speaks for a moment inside its validity window
    assert run(store, online(tmp_path), leaf, ca, moment=pki.now - timedelta(days=6)).revocation == "good"


# --- OCSP -----------------------------------------------------------------------------------------


def test_ocsp_revoked_before_and_after_the_moment(pki: TestPKI, ca: Issued, store: TrustStore, responder: OCSPResponder, tmp_path: Path) -> None:
    leaf = pki.issue_code_signing("OCSP revoked", issuer=ca, ocsp_urls=[responder.url])
    revoked_at = pki.now - timedelta(days=1)
    responder.set_status(leaf, "revoked", revocation_time=revoked_at)
    result = run(store, online(tmp_path), leaf, ca, moment=pki.now)
    assert (result.status, result.revocation, result.revoked_at) == ("revoked", "revoked", revoked_at)
    assert "OCSP" in result.message
    before = run(store, online(tmp_path), leaf, ca, moment=pki.now - timedelta(days=2))
    assert (before.status, before.revocation) == ("valid", "good")
    assert responder.requests >= 1


@pytest.mark.parametrize(("status", "expected"), [("good", "good"), ("unknown", "unknown")])
def test_ocsp_status(pki: TestPKI, ca: Issued, store: TrustStore, responder: OCSPResponder, tmp_path: Path, status: str, expected: str) -> None:
    leaf = pki.issue_code_signing(f"OCSP {status}", issuer=ca, ocsp_urls=[responder.url])
    responder.set_status(leaf, status)
    result = run(store, online(tmp_path), leaf, ca, moment=pki.now)
    assert (result.status, result.revocation) == ("valid", expected)
    assert responder.requests == 1


def test_ocsp_for_a_serial_the_responder_does_not_serve(pki: TestPKI, ca: Issued, store: TrustStore, responder: OCSPResponder, tmp_path: Path) -> None:
    leaf = pki.issue_code_signing("Not served", issuer=ca, ocsp_urls=[responder.url])
    assert run(store, online(tmp_path), leaf, ca, moment=pki.now).revocation == "unknown"


def test_ocsp_good_means_no_crl_download(pki: TestPKI, ca: Issued, store: TrustStore, responder: OCSPResponder, cdp: CRLServer, tmp_path: Path) -> None:
    leaf = pki.issue_code_signing("OCSP and CRL", issuer=ca, ocsp_urls=[responder.url], crl_urls=[cdp.url("ca.crl")])
    cdp.publish("ca.crl", pki.make_crl(ca))
    responder.set_status(leaf, "good")
    assert run(store, online(tmp_path), leaf, ca, moment=pki.now).revocation == "good"
    assert (responder.requests, cdp.requests) == (1, 0)
    # a dead responder falls back to the CRL
    responder.failure = "http-500"
    assert run(store, online(tmp_path / "other"), leaf, ca, moment=pki.now).revocation == "good"
    assert cdp.requests == 1


# --- failing servers: always "unknown", always bounded --------------------------------------------


def _timed(store: TrustStore, options: RevocationOptions, leaf: Issued, ca: Issued, moment: datetime) -> tuple[ChainResult, float, ChainValidator]:
    validator = ChainValidator(store, options)
    start = time.monotonic()
    result = validator.validate(leaf.asn1, [ca.asn1], moment=moment, purpose="code_signing")
    return result, time.monotonic() - start, validator


def test_closed_port_is_unknown_at_once(pki: TestPKI, ca: Issued, store: TrustStore, tmp_path: Path) -> None:
    leaf = pki.issue_code_signing("Closed port", issuer=ca, crl_urls=[closed_port_url()], ocsp_urls=[closed_port_url("/ocsp")])
    result, elapsed, validator = _timed(store, online(tmp_path), leaf, ca, pki.now)
    assert (result.status, result.revocation) == ("valid", "unknown")
    assert elapsed < 2 * TIMEOUT + SLACK
    assert any("refused" in why.lower() for why in validator.fetcher.failures.values())


@pytest.mark.parametrize("kind", ["crl", "ocsp"])
def test_hanging_server_is_cut_at_the_timeout(pki: TestPKI, ca: Issued, store: TrustStore, cdp: CRLServer, responder: OCSPResponder, tmp_path: Path, kind: str) -> None:
    server: CRLServer | OCSPResponder = cdp if kind == "crl" else responder
    urls = {"crl_urls": [cdp.url("ca.crl")]} if kind == "crl" else {"ocsp_urls": [responder.url]}
    leaf = pki.issue_code_signing(f"Hanging {kind}", issuer=ca, **urls)
    other = pki.issue_code_signing(f"Same {kind} server", issuer=ca, **urls)
    cdp.publish("ca.crl", pki.make_crl(ca))
    responder.set_status(leaf, "good")
    responder.set_status(other, "good")
    server.failure = "hang"
    result, elapsed, validator = _timed(store, online(tmp_path), leaf, ca, pki.now)
    assert (result.status, result.revocation) == ("valid", "unknown")
    assert server.requests == 1
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + SLACK
    failed_url = cdp.url("ca.crl") if kind == "crl" else responder.url
    why = validator.fetcher.failures[failed_url]
    assert "no answer within" in why or "timed out" in why  # whichever of the two clocks fires first
    # another package whose certificate points at the same server does not wait again in this run
    start = time.monotonic()
    assert validator.validate(other.asn1, [ca.asn1], moment=pki.now, purpose="code_signing").revocation == "unknown"
    assert server.requests == 1 and time.monotonic() - start < TIMEOUT * 0.9


def test_budget_bounds_the_whole_run(pki: TestPKI, ca: Issued, store: TrustStore, tmp_path: Path) -> None:
    with CRLServer() as a, CRLServer() as b, CRLServer() as c:
        for server in (a, b, c):
            server.failure = "hang"
        leaf = pki.issue_code_signing("Three hanging CDPs", issuer=ca, crl_urls=[a.url("x.crl"), b.url("x.crl"), c.url("x.crl")])
        result, elapsed, validator = _timed(store, online(tmp_path, budget=1.5), leaf, ca, pki.now)
        assert result.revocation == "unknown"
        assert elapsed < 1.5 + SLACK
        assert (a.requests, b.requests, c.requests) == (1, 1, 0)
        assert "budget" in validator.fetcher.failures[c.url("x.crl")]


@pytest.mark.parametrize("failure", ["reset", "garbage", "huge", "huge-declared", "redirect-loop", "http-500", "trickle"])
def test_broken_crl_server_is_unknown(pki: TestPKI, ca: Issued, store: TrustStore, cdp: CRLServer, tmp_path: Path, failure: str) -> None:
    leaf = pki.issue_code_signing(f"CDP {failure}", issuer=ca, crl_urls=[cdp.url("ca.crl")])
    cdp.publish("ca.crl", pki.make_crl(ca, revoked=[leaf.serial]))
    cdp.failure = failure
    options = online(tmp_path, max_response_bytes=256 * 1024)
    result, elapsed, validator = _timed(store, options, leaf, ca, pki.now)
    assert (result.status, result.revocation) == ("valid", "unknown")
    assert elapsed < TIMEOUT + SLACK
    assert validator.fetcher.failures[cdp.url("ca.crl")]
    assert len(list((tmp_path / "cache").rglob("*.der"))) == 1  # the root's CRL; nothing broken is cached


@pytest.mark.parametrize("failure", ["garbage", "http-500", "reset"])
def test_broken_ocsp_responder_is_unknown(pki: TestPKI, ca: Issued, store: TrustStore, responder: OCSPResponder, tmp_path: Path, failure: str) -> None:
    leaf = pki.issue_code_signing(f"OCSP {failure}", issuer=ca, ocsp_urls=[responder.url])
    responder.set_status(leaf, "revoked")
    responder.failure = failure
    result, elapsed, _ = _timed(store, online(tmp_path), leaf, ca, pki.now)
    assert (result.status, result.revocation) == ("valid", "unknown")
    assert elapsed < TIMEOUT + SLACK


# --- offline data and the cache -------------------------------------------------------------------


def test_offline_uses_revocation_data_dirs(pki: TestPKI, ca: Issued, store: TrustStore, cdp: CRLServer, tmp_path: Path) -> None:
    revoked = pki.issue_code_signing("Offline revoked", issuer=ca, crl_urls=[cdp.url("ca.crl")])
    good = pki.issue_code_signing("Offline good", issuer=ca, crl_urls=[cdp.url("ca.crl")])
    data = tmp_path / "revocation-data"
    data.mkdir()
    (data / "root.crl").write_bytes(pki.make_crl(pki.root))
    ca_crl = pki.make_crl(ca, revoked=[(revoked.serial, pki.now - timedelta(hours=5))])
    # a PEM file may carry several CRLs (a duplicate of the root's is harmless)
    (data / "bundle.pem").write_bytes(pem.armor("X509 CRL", ca_crl) + pem.armor("X509 CRL", pki.make_crl(pki.root)))
    options = RevocationOptions("offline", data_dirs=(data,), cache_dir=tmp_path / "cache")
    validator = ChainValidator(store, options)
    result = validator.validate(revoked.asn1, [ca.asn1], moment=pki.now, purpose="code_signing")
    assert (result.status, result.revocation, result.revoked_at) == ("revoked", "revoked", pki.now - timedelta(hours=5))
    assert validator.validate(good.asn1, [ca.asn1], moment=pki.now, purpose="code_signing").revocation == "good"
    assert cdp.requests == 0 and validator.fetcher.requests == 0  # offline never touches the network


def test_offline_ocsp_response_file(pki: TestPKI, ca: Issued, store: TrustStore, tmp_path: Path) -> None:
    leaf = pki.issue_code_signing("Offline OCSP", issuer=ca, ocsp_urls=[closed_port_url("/ocsp")])
    data = tmp_path / "data"
    data.mkdir()
    (data / "root.crl").write_bytes(pki.make_crl(pki.root))
    (data / "leaf.ocsp").write_bytes(pki.make_ocsp_response(ca, leaf, "revoked", revocation_time=pki.now - timedelta(days=3)))
    options = RevocationOptions("offline", data_dirs=(data,), cache_dir=tmp_path / "cache")
    assert run(store, options, leaf, ca, moment=pki.now).revocation == "revoked"
    assert run(store, options, leaf, ca, moment=pki.now - timedelta(days=4)).revocation == "good"


def test_offline_without_data_is_unknown(pki: TestPKI, ca: Issued, store: TrustStore, cdp: CRLServer, tmp_path: Path) -> None:
    leaf = pki.issue_code_signing("Offline nothing", issuer=ca, crl_urls=[cdp.url("ca.crl")])
    cdp.publish("ca.crl", pki.make_crl(ca))
    result = run(store, RevocationOptions("offline", cache_dir=tmp_path), leaf, ca, moment=pki.now)
    assert (result.status, result.revocation) == ("valid", "unknown")
    assert cdp.requests == 0


def test_cache_is_reused_by_the_next_run(pki: TestPKI, ca: Issued, store: TrustStore, cdp: CRLServer, responder: OCSPResponder, tmp_path: Path) -> None:
    leaf = pki.issue_code_signing("Cached", issuer=ca, crl_urls=[cdp.url("ca.crl")])
    ocsp_leaf = pki.issue_code_signing("Cached OCSP", issuer=ca, ocsp_urls=[responder.url])
    cdp.publish("ca.crl", pki.make_crl(ca, revoked=[leaf.serial]))
    responder.set_status(ocsp_leaf, "good")
    options = online(tmp_path)
    assert run(store, options, leaf, ca, moment=pki.now).revocation == "revoked"
    assert run(store, options, ocsp_leaf, ca, moment=pki.now).revocation == "good"
    assert (cdp.requests, responder.requests) == (1, 1)
    # a new run (new validator, same cache dir): no request at all
    assert run(store, options, leaf, ca, moment=pki.now).revocation == "revoked"
    assert run(store, options, ocsp_leaf, ca, moment=pki.now).revocation == "good"
    assert (cdp.requests, responder.requests) == (1, 1)
    # offline mode reads the same cache
    offline = RevocationOptions("offline", cache_dir=options.cache_dir)
    assert run(store, offline, leaf, ca, moment=pki.now).revocation == "revoked"
    # once the cached data is past its nextUpdate, online mode fetches again
    fetcher = RevocationFetcher(options, now=lambda: pki.now + timedelta(days=30))
    validator = ChainValidator(store, options, fetcher=fetcher)
    assert validator.validate(leaf.asn1, [ca.asn1], moment=pki.now, purpose="code_signing").revocation == "revoked"
    assert cdp.requests == 2
    assert not [p for p in options.effective_cache_dir.rglob("*") if p.name.endswith(".tmp")]


def test_concurrent_runs_share_the_cache_safely(pki: TestPKI, ca: Issued, cdp: CRLServer, tmp_path: Path) -> None:
    leaf = pki.issue_code_signing("Concurrent", issuer=ca, crl_urls=[cdp.url("ca.crl")])
    cdp.publish("ca.crl", pki.make_crl(ca, revoked=[leaf.serial]))
    options = online(tmp_path)
    fetchers = [RevocationFetcher(options) for _ in range(8)]
    barrier = threading.Barrier(len(fetchers))
    found: list[int] = []

    def work(fetcher: RevocationFetcher) -> None:
        barrier.wait()
        crls, _ = fetcher.collect([(leaf.asn1, ca.asn1)])
        found.append(len(crls))

    threads = [threading.Thread(target=work, args=(f,)) for f in fetchers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert found == [1] * len(fetchers)
    (entry,) = (options.effective_cache_dir / "crl").glob("*.der")
    assert entry.read_bytes() == cdp.crls["/ca.crl"]
    assert not [p for p in options.effective_cache_dir.rglob("*") if p.is_file() and p.suffix != ".der"]


def test_one_request_per_url_in_a_run(pki: TestPKI, ca: Issued, store: TrustStore, cdp: CRLServer, tmp_path: Path) -> None:
    leaves = [pki.issue_code_signing(f"Sibling {i}", issuer=ca, crl_urls=[cdp.url("ca.crl")]) for i in range(5)]
    cdp.publish("ca.crl", pki.make_crl(ca, revoked=[leaves[0].serial]))
    validator = ChainValidator(store, online(tmp_path))
    states = [validator.validate(leaf.asn1, [ca.asn1], moment=pki.now, purpose="code_signing").revocation for leaf in leaves]
    assert states == ["revoked", "good", "good", "good", "good"]
    assert cdp.requests == 1


def test_damaged_cache_entry_is_refetched(pki: TestPKI, ca: Issued, store: TrustStore, cdp: CRLServer, tmp_path: Path) -> None:
    leaf = pki.issue_code_signing("Damaged cache", issuer=ca, crl_urls=[cdp.url("ca.crl")])
    cdp.publish("ca.crl", pki.make_crl(ca, revoked=[leaf.serial]))
    options = online(tmp_path)
    assert run(store, options, leaf, ca, moment=pki.now).revocation == "revoked"
    entries = list((options.effective_cache_dir / "crl").glob("*.der"))
    assert len(entries) == 2  # the root's CRL and the CA's
    for entry in entries:
        entry.write_bytes(b"\x30\x03garbage")
    assert run(store, options, leaf, ca, moment=pki.now).revocation == "revoked"
    assert cdp.requests == 2


def test_mode_off_checks_nothing(pki: TestPKI, ca: Issued, store: TrustStore, cdp: CRLServer) -> None:
    leaf = pki.issue_code_signing("Off", issuer=ca, crl_urls=[cdp.url("ca.crl")])
    cdp.publish("ca.crl", pki.make_crl(ca, revoked=[leaf.serial]))
    result = run(store, RevocationOptions("off"), leaf, ca, moment=pki.now)
    assert (result.status, result.revocation) == ("valid", "not-checked")
    assert cdp.requests == 0


# --- bad input ------------------------------------------------------------------------------------


def test_unusable_data_file_names_the_file(tmp_path: Path, store: TrustStore) -> None:
    (tmp_path / "notes.crl").write_bytes(b"this is not a CRL")
    with pytest.raises(TrustPolicyError, match="not usable revocation data") as info:
        ChainValidator(store, RevocationOptions("offline", data_dirs=(tmp_path,)))
    assert info.value.path == str(tmp_path / "notes.crl")


def test_missing_data_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(TrustPolicyError, match="does not exist") as info:
        RevocationFetcher(RevocationOptions("online", data_dirs=(tmp_path / "nope",)))
    assert info.value.path == str(tmp_path / "nope")


@pytest.mark.parametrize("kw", [{"mode": "sometimes"}, {"mode": "online", "timeout": 0}, {"mode": "online", "budget": -1}])
def test_bad_options(kw: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(UsageError):
        RevocationOptions(**kw)
