"""TrustStore: the bundled .NET SDK roots, --trust-store (replace), --extra-roots (add), bad files."""

from __future__ import annotations

from pathlib import Path

import pytest

from trustpolicy._internal.truststore import TrustStore, load_certificates
from trustpolicy.errors import TrustPolicyError
from trustpolicy.testing.pki import TestPKI, write_certificates

DIGICERT_ASSURED_ID_ROOT = "3E9099B5015E8F486C00BCEA9D111EE721FABA355A89BCF1DF69561E3DC6325C"
VERISIGN_UNIVERSAL_ROOT = "2399561127A57125DE8CEFEA610DDF2FA078B5C8067F4E828290BFB860E84B3C"


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI()


def _fingerprints(certs) -> set[str]:  # type: ignore[no-untyped-def]
    return {c.sha256.hex().upper() for c in certs}


def test_bundled_store_has_the_sdk_roots() -> None:
    store = TrustStore.bundled()
    assert len(store.code_signing) == 305
    assert len(store.time_stamping) == 327
    assert "305 code signing" in store.description and "327 time stamping" in store.description
    assert DIGICERT_ASSURED_ID_ROOT in _fingerprints(store.roots("code_signing"))
    assert VERISIGN_UNIVERSAL_ROOT in _fingerprints(store.roots("time_stamping"))
    assert TrustStore.bundled() is store  # loaded once per process


def test_unknown_purpose_is_refused() -> None:
    with pytest.raises(ValueError, match="purpose"):
        TrustStore.bundled().roots("server_auth")


def test_trust_store_file_replaces_both_bundles(pki: TestPKI, tmp_path: Path) -> None:
    bundle = write_certificates(tmp_path / "roots.pem", [pki.root.certificate, pki.tsa_root.certificate])
    store = TrustStore.from_files([bundle])
    expected = {pki.root.asn1.sha256, pki.tsa_root.asn1.sha256}
    assert {c.sha256 for c in store.code_signing} == expected
    assert {c.sha256 for c in store.time_stamping} == expected
    assert str(bundle) in store.description


def test_extra_roots_add_to_both_bundles(pki: TestPKI, tmp_path: Path) -> None:
    extra = write_certificates(tmp_path / "extra.pem", [pki.root.certificate])
    store = TrustStore.from_files([], extra=[extra])
    assert len(store.code_signing) == 306 and len(store.time_stamping) == 328
    assert pki.root.asn1.sha256 in {c.sha256 for c in store.code_signing}
    assert "1 extra root" in store.description and str(extra) in store.description
    # the bundled store itself is untouched
    assert len(TrustStore.bundled().code_signing) == 305


def test_with_extra_roots_deduplicates(pki: TestPKI) -> None:
    store = TrustStore.bundled().with_extra_roots([pki.root.asn1, pki.root.asn1])
    assert len(store.code_signing) == 306
    again = store.with_extra_roots([pki.root.asn1])
    assert len(again.code_signing) == 306
    assert again.key == store.key


def test_der_certificate_file_is_accepted(pki: TestPKI, tmp_path: Path) -> None:
    path = tmp_path / "root.cer"
    path.write_bytes(pki.root.der)
    (cert,) = load_certificates(path)
    assert cert.sha256 == pki.root.asn1.sha256


def test_text_around_pem_blocks_is_ignored(pki: TestPKI, tmp_path: Path) -> None:
    path = tmp_path / "commented.pem"
    path.write_bytes(b"# my roots\n" + pki.root.pem + b"\nsome trailing words\n")
    assert len(load_certificates(path)) == 1


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.pem", b"", "no certificate"),
        ("garbage.pem", b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n", "not a valid"),
        ("junk.der", b"\x00\x01\x02 plainly not DER", "not a valid"),
        ("truncated.pem", b"-----BEGIN CERTIFICATE-----\nMIIB\n", "not a valid"),
    ],
)
def test_invalid_file_names_the_file(tmp_path: Path, name: str, content: bytes, message: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(TrustPolicyError, match=message) as info:
        TrustStore.from_files([path])
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


def test_private_key_block_is_refused(pki: TestPKI, tmp_path: Path) -> None:
    path = tmp_path / "mixed.pem"
    path.write_bytes(pki.root.pem + pki.root.key_pem)
    with pytest.raises(TrustPolicyError, match="PRIVATE KEY") as info:
        TrustStore.from_files([], extra=[path])
    assert info.value.path == str(path)


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.pem"
    with pytest.raises(TrustPolicyError, match="cannot read") as info:
        TrustStore.from_files([path])
    assert info.value.path == str(path)


def test_bundled_roots_are_parsed_only_when_a_purpose_is_used() -> None:
    """A check answered from the cache needs the store's identity, not its parsed roots."""
    from trustpolicy._internal import truststore

    fresh = truststore._bundled.__wrapped__()  # not the per-process instance other tests have used
    assert fresh._certificates == {}
    assert "305 code signing" in fresh.description and "327 time stamping" in fresh.description
    assert fresh.key == TrustStore.bundled().key
    parsed = fresh.roots("time_stamping")
    assert fresh.key[1] == frozenset(c.sha256 for c in parsed)
    assert len(fresh._certificates) == 327  # the other purpose is still unparsed
