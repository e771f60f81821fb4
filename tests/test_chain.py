"""ChainValidator: trust, purpose (EKU), time validity, broken chains, caching.

Real chains from the corpus (Microsoft / DigiCert, NuGet's test chains) and chains from the test
PKI. Revocation is covered in test_revocation.py; here it is off, or offline without data.
"""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from datafiles import SIGNED

from trustpolicy._internal.chain import ChainResult, ChainStatus, ChainValidator, Revocation
from trustpolicy._internal.revocation import RevocationOptions
from trustpolicy._internal.signature import PrimarySignature, parse_signature
from trustpolicy._internal.truststore import TrustStore
from trustpolicy.testing.pki import CLIENT_AUTH, CODE_SIGNING, TIME_STAMPING, Issued, TestPKI

OFF = RevocationOptions("off")


def corpus_signature(name: str) -> PrimarySignature:
    with zipfile.ZipFile(SIGNED / name) as archive:
        return parse_signature(archive.read(".signature.p7s"))


def cn(cert: asn1_x509.Certificate) -> str:
    return cert.subject.native["common_name"]


@pytest.fixture(scope="module")
def bundled() -> ChainValidator:
    return ChainValidator(TrustStore.bundled(), OFF)


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI()


@pytest.fixture(scope="module")
def store(pki: TestPKI) -> TrustStore:
    roots = [pki.root.asn1, pki.tsa_root.asn1]
    return TrustStore(roots, roots, "test roots")


@pytest.fixture()
def validator(store: TrustStore) -> ChainValidator:
    return ChainValidator(store, OFF)


def check(validator: ChainValidator, leaf: Issued, *chain: Issued, moment: datetime, purpose: str = "code_signing", **kw) -> ChainResult:  # type: ignore[no-untyped-def]
    return validator.validate(leaf.asn1, [c.asn1 for c in chain], moment=moment, purpose=purpose, **kw)


# --- the real corpus ----------------------------------------------------------------------------


def test_microsoft_author_signer_is_trusted_at_its_timestamp(bundled: ChainValidator) -> None:
    signature = corpus_signature("nuget.versioning.5.0.0.nupkg")
    moment = signature.timestamps[0].upper_limit
    assert moment is not None
    result = bundled.validate(signature.signer_certificate, signature.certificates, moment=moment, purpose="code_signing")
    assert (result.trusted, result.status, result.revocation) == (True, "valid", "not-checked")
    assert [cn(c) for c in result.path] == [
        "Microsoft Corporation",
        "DigiCert SHA2 Assured ID Code Signing CA",
        "DigiCert Assured ID Root CA",
    ]
    assert result.problems == () and result.valid


def test_microsoft_signer_has_expired_by_now(bundled: ChainValidator) -> None:
    signature = corpus_signature("nuget.versioning.5.0.0.nupkg")
    now = datetime(2026, 1, 1, tzinfo=UTC)
    result = bundled.validate(signature.signer_certificate, signature.certificates, moment=now, purpose="code_signing")
    assert (result.trusted, result.status) == (True, "expired")
    assert "Microsoft Corporation" in result.message and "2021-01-27" in result.message


def test_repository_countersigner_and_timestamp_authority(bundled: ChainValidator) -> None:
    signature = corpus_signature("nuget.versioning.5.0.0.nupkg")
    counter = signature.countersignature
    assert counter is not None and counter.timestamps
    stamp = counter.timestamps[0]
    result = bundled.validate(counter.signer_certificate, signature.certificates, moment=stamp.upper_limit, purpose="code_signing")
    assert (result.trusted, result.status) == (True, "valid")
    assert cn(result.path[0]) == "NuGet.org Repository by Microsoft"
    tsa = bundled.validate(stamp.tsa_certificate, stamp.certificates, moment=stamp.upper_limit, purpose="time_stamping")
    assert (tsa.trusted, tsa.status) == (True, "valid")
    assert cn(tsa.path[-1]) == "VeriSign Universal Root Certification Authority"


def test_signer_is_not_a_timestamp_authority(bundled: ChainValidator) -> None:
    signature = corpus_signature("nuget.versioning.5.0.0.nupkg")
    result = bundled.validate(
        signature.signer_certificate, signature.certificates, moment=signature.timestamps[0].upper_limit, purpose="time_stamping"
    )
    # DigiCert Assured ID Root CA is in both bundles, so the chain is trusted but not for this purpose
    assert (result.trusted, result.status, result.problems) == (True, "not-valid-for-usage", ("not-valid-for-usage",))
    assert "Microsoft Corporation" in result.message and "time stamping" in result.message


def test_offline_revocation_without_data_is_unknown(tmp_path: Path) -> None:
    signature = corpus_signature("nuget.versioning.5.0.0.nupkg")
    validator = ChainValidator(TrustStore.bundled(), RevocationOptions("offline", cache_dir=tmp_path))
    result = validator.validate(
        signature.signer_certificate, signature.certificates, moment=signature.timestamps[0].upper_limit, purpose="code_signing"
    )
    assert (result.trusted, result.status, result.revocation) == (True, "valid", "unknown")
    assert "revocation unknown" in result.message
    assert validator.fetcher.requests == 0


@pytest.mark.parametrize(
    ("package", "moment"),
    [
        ("SignedPackage.1.0.0.nupkg", datetime(2018, 2, 23, tzinfo=UTC)),
        ("Test.Reposigned.1.0.0.nupkg", datetime(2024, 1, 1, tzinfo=UTC)),
    ],
)
def test_self_signed_corpus_signers_are_untrusted(bundled: ChainValidator, package: str, moment: datetime) -> None:
    signature = corpus_signature(package)
    result = bundled.validate(signature.signer_certificate, signature.certificates, moment=moment, purpose="code_signing")
    assert (result.trusted, result.status) == (False, "untrusted-root")
    assert result.path == (signature.signer_certificate,)
    assert "not trusted" in result.message


def test_self_signed_and_expired(bundled: ChainValidator) -> None:
    signature = corpus_signature("SignedPackage.1.0.0.nupkg")
    result = bundled.validate(
        signature.signer_certificate, signature.certificates, moment=datetime(2024, 1, 1, tzinfo=UTC), purpose="code_signing"
    )
    assert (result.trusted, result.status, result.problems) == (False, "untrusted-root", ("untrusted-root", "expired"))


def _do_not_trust() -> tuple[PrimarySignature, asn1_x509.Certificate]:
    signature = corpus_signature("UnavailableCrlPackage.nupkg")
    (root,) = [c for c in signature.certificates if cn(c) == "NUGET_DO_NOT_TRUST.root.test.test"]
    return signature, root


def test_unavailable_crl_package_is_untrusted_by_default(bundled: ChainValidator) -> None:
    signature, root = _do_not_trust()
    moment = signature.timestamps[0].upper_limit
    result = bundled.validate(signature.signer_certificate, signature.certificates, moment=moment, purpose="code_signing")
    assert (result.trusted, result.status) == (False, "untrusted-root")
    assert result.path[-1].sha256 == root.sha256 and len(result.path) == 3


def test_extra_roots_make_the_do_not_trust_chain_trusted() -> None:
    signature, root = _do_not_trust()
    moment = signature.timestamps[0].upper_limit
    validator = ChainValidator(TrustStore.bundled().with_extra_roots([root]), OFF)
    result = validator.validate(signature.signer_certificate, signature.certificates, moment=moment, purpose="code_signing")
    assert (result.trusted, result.status) == (True, "valid")
    assert [cn(c) for c in result.path] == [
        "NUGET_DO_NOT_TRUST.leaf-1.test.test",
        "NUGET_DO_NOT_TRUST.intermediate.test.test",
        "NUGET_DO_NOT_TRUST.root.test.test",
    ]


def test_extra_trusted_per_call_and_cached_separately(bundled: ChainValidator) -> None:
    signature, root = _do_not_trust()
    moment = signature.timestamps[0].upper_limit
    leaf, certs = signature.signer_certificate, signature.certificates
    trusted = bundled.validate(leaf, certs, moment=moment, purpose="code_signing", extra_trusted=[root])
    plain = bundled.validate(leaf, certs, moment=moment, purpose="code_signing")
    assert (trusted.trusted, trusted.status) == (True, "valid")
    assert (plain.trusted, plain.status) == (False, "untrusted-root")


def test_do_not_trust_chain_offline_revocation_is_unknown(tmp_path: Path) -> None:
    signature, root = _do_not_trust()
    validator = ChainValidator(TrustStore.bundled().with_extra_roots([root]), RevocationOptions("offline", cache_dir=tmp_path))
    result = validator.validate(
        signature.signer_certificate, signature.certificates, moment=signature.timestamps[0].upper_limit, purpose="code_signing"
    )
    assert (result.trusted, result.status, result.revocation) == (True, "valid", "unknown")


# --- the test PKI: purpose, time, broken chains --------------------------------------------------


def test_test_chain_is_valid(validator: ChainValidator, pki: TestPKI) -> None:
    result = check(validator, pki.leaf, pki.intermediate, moment=pki.now)
    assert (result.trusted, result.status, result.revocation) == (True, "valid", "not-checked")
    assert [c.sha256 for c in result.path] == [pki.leaf.asn1.sha256, pki.intermediate.asn1.sha256, pki.root.asn1.sha256]


def test_expired_leaf(validator: ChainValidator, pki: TestPKI) -> None:
    leaf = pki.issue_code_signing("Expired", not_before=pki.now - timedelta(days=20), not_after=pki.now - timedelta(days=10))
    result = check(validator, leaf, pki.intermediate, moment=pki.now)
    assert (result.trusted, result.status, result.problems) == (True, "expired", ("expired",))
    assert "Expired" in result.message
    # the same certificate is fine at a moment inside its validity (e.g. a timestamp)
    assert check(validator, leaf, pki.intermediate, moment=pki.now - timedelta(days=15)).status == "valid"


def test_not_yet_valid_leaf(validator: ChainValidator, pki: TestPKI) -> None:
    leaf = pki.issue_code_signing("Future", not_before=pki.now + timedelta(days=1))
    result = check(validator, leaf, pki.intermediate, moment=pki.now)
    assert (result.trusted, result.status) == (True, "not-yet-valid")


def test_expired_intermediate(validator: ChainValidator, pki: TestPKI) -> None:
    old_ca = pki.issue_ca("Old CA", issuer=pki.root, not_before=pki.now - timedelta(days=100), not_after=pki.now - timedelta(days=1))
    leaf = pki.issue_code_signing("Under old CA", issuer=old_ca, not_before=pki.now - timedelta(days=50))
    result = check(validator, leaf, old_ca, moment=pki.now)
    assert (result.trusted, result.status) == (True, "expired")
    assert "Old CA" in result.message


def test_leaf_without_eku_is_valid_for_all_purposes(validator: ChainValidator, pki: TestPKI) -> None:
    leaf = pki.issue_code_signing("No EKU", eku=None)
    assert leaf.asn1.extended_key_usage_value is None
    assert check(validator, leaf, pki.intermediate, moment=pki.now).status == "valid"


def test_wrong_eku_is_not_valid_for_usage(validator: ChainValidator, pki: TestPKI) -> None:
    leaf = pki.issue_code_signing("Client auth", eku=[CLIENT_AUTH])
    result = check(validator, leaf, pki.intermediate, moment=pki.now)
    assert (result.trusted, result.status) == (True, "not-valid-for-usage")
    assert "code signing" in result.message


def test_intermediate_eku_restricts_the_chain(validator: ChainValidator, pki: TestPKI) -> None:
    ca = pki.issue_ca("TLS-only CA", issuer=pki.root, eku=[CLIENT_AUTH])
    leaf = pki.issue_code_signing("Under TLS CA", issuer=ca)
    result = check(validator, leaf, ca, moment=pki.now)
    assert result.status == "not-valid-for-usage" and "TLS-only CA" in result.message
    ok_ca = pki.issue_ca("Code-signing CA", issuer=pki.root, eku=[CODE_SIGNING])
    assert check(validator, pki.issue_code_signing("Under CS CA", issuer=ok_ca), ok_ca, moment=pki.now).status == "valid"


def test_time_stamping_purpose(validator: ChainValidator, pki: TestPKI) -> None:
    assert check(validator, pki.tsa, moment=pki.now, purpose="time_stamping").status == "valid"
    result = check(validator, pki.leaf, pki.intermediate, moment=pki.now, purpose="time_stamping")
    assert result.status == "not-valid-for-usage"
    tsa_as_signer = check(validator, pki.tsa, moment=pki.now, purpose="code_signing")
    assert tsa_as_signer.status == "not-valid-for-usage"
    assert pki.tsa.asn1.extended_key_usage_value.native == ["time_stamping"]
    assert TIME_STAMPING  # the pki constant the TSA was issued with


def test_roots_are_per_purpose(pki: TestPKI) -> None:
    store = TrustStore([pki.root.asn1], [pki.tsa_root.asn1], "split")
    validator = ChainValidator(store, OFF)
    assert check(validator, pki.leaf, pki.intermediate, moment=pki.now).trusted
    # the code-signing root is not a time-stamping root: untrusted when the package carries it,
    # a partial chain when it does not (the other bundle is not a certificate source)
    result = check(validator, pki.leaf, pki.intermediate, pki.root, moment=pki.now, purpose="time_stamping")
    assert not result.trusted and "untrusted-root" in result.problems
    assert check(validator, pki.leaf, pki.intermediate, moment=pki.now, purpose="time_stamping").status == "invalid"


def test_untrusted_root_still_reports_other_problems(validator: ChainValidator) -> None:
    other = TestPKI(tag="untrusted")
    leaf = other.issue_code_signing("Untrusted client auth", eku=[CLIENT_AUTH])
    result = check(validator, leaf, other.intermediate, other.root, moment=other.now)
    assert not result.trusted
    assert result.status == "not-valid-for-usage"
    assert result.problems == ("not-valid-for-usage", "untrusted-root")
    assert result.path[-1].sha256 == other.root.asn1.sha256


def test_missing_intermediate_is_a_partial_chain(validator: ChainValidator, pki: TestPKI) -> None:
    result = check(validator, pki.leaf, moment=pki.now)
    assert (result.trusted, result.status) == (False, "invalid")
    assert "partial chain" in result.message and "Test Intermediate CA" in result.message


def test_one_packages_certificates_never_complete_another_chain(validator: ChainValidator, pki: TestPKI) -> None:
    assert check(validator, pki.leaf, pki.intermediate, moment=pki.now).status == "valid"
    # the intermediate seen in the previous call is not remembered
    assert check(validator, pki.leaf, moment=pki.now).status == "invalid"


def test_untrusted_chain_without_its_root_is_partial(validator: ChainValidator) -> None:
    other = TestPKI(tag="rootless")
    result = check(validator, other.leaf, other.intermediate, moment=other.now)
    assert (result.trusted, result.status) == (False, "invalid")


def test_forged_signature_is_invalid(validator: ChainValidator, pki: TestPKI) -> None:
    forged_ca = pki.issue_ca("Forged", issuer=pki.root, subject=pki.intermediate.certificate.subject)
    leaf = pki.issue_code_signing("Signed by forger", issuer=forged_ca, aki=False)
    result = check(validator, leaf, pki.intermediate, moment=pki.now)  # the real CA's key does not verify it
    assert (result.status, result.revocation) == ("invalid", "not-checked")
    assert "signature" in result.message


def test_leaf_trusted_explicitly(validator: ChainValidator, pki: TestPKI) -> None:
    self_signed = pki.issue("Self-signed signer", eku=[CODE_SIGNING])
    assert check(validator, self_signed, moment=pki.now).status == "untrusted-root"
    result = check(validator, self_signed, moment=pki.now, extra_trusted=[self_signed.asn1])
    assert (result.trusted, result.status) == (True, "valid")
    expired = check(validator, self_signed, moment=pki.now + timedelta(days=400), extra_trusted=[self_signed.asn1])
    assert (expired.trusted, expired.status) == (True, "expired")


def test_leaf_in_extra_trusted_is_allow_untrusted_root(validator: ChainValidator) -> None:
    other = TestPKI(tag="allow-untrusted-root")
    result = check(validator, other.leaf, other.intermediate, other.root, moment=other.now, extra_trusted=[other.leaf.asn1])
    assert (result.trusted, result.status, result.problems) == (True, "valid", ())
    assert len(result.path) == 3  # the chain is still built up to its own root
    # but it does not excuse anything else: a wrong purpose, or a chain that cannot be built
    wrong = other.issue_code_signing("Allowed but client auth", eku=[CLIENT_AUTH])
    assert check(validator, wrong, other.intermediate, other.root, moment=other.now, extra_trusted=[wrong.asn1]).status == "not-valid-for-usage"
    partial = check(validator, other.leaf, moment=other.now, extra_trusted=[other.leaf.asn1])
    assert (partial.trusted, partial.status) == (False, "invalid")


def test_sha1_intermediate_still_chains(validator: ChainValidator, pki: TestPKI) -> None:
    # NU3013 is judged on the signer certificate by the verifier; the chain engine accepts SHA-1.
    ca = pki.issue_ca("SHA-1 CA", issuer=pki.root, hash_algorithm="sha1")
    leaf = pki.issue_code_signing("Under SHA-1 CA", issuer=ca)
    assert check(validator, leaf, ca, moment=pki.now).status == "valid"


def test_bad_arguments(validator: ChainValidator, pki: TestPKI) -> None:
    with pytest.raises(ValueError, match="timezone"):
        check(validator, pki.leaf, pki.intermediate, moment=datetime(2024, 1, 1))
    with pytest.raises(ValueError, match="purpose"):
        check(validator, pki.leaf, pki.intermediate, moment=pki.now, purpose="server_auth")


def test_statuses_are_the_contract() -> None:
    assert [s.value for s in ChainStatus] == ["revoked", "invalid", "not-valid-for-usage", "untrusted-root", "expired",
                                              "not-yet-valid", "valid"]  # worst first
    assert [s.value for s in Revocation] == ["good", "revoked", "unknown", "not-checked"]


# --- caching --------------------------------------------------------------------------------------


def test_same_chain_is_validated_once_across_moments(store: TrustStore, pki: TestPKI) -> None:
    validator = ChainValidator(store, OFF)
    leaf = pki.issue_code_signing("Cached", not_before=pki.now - timedelta(days=10), not_after=pki.now + timedelta(days=10))
    results = [check(validator, leaf, pki.intermediate, moment=pki.now - timedelta(days=5, minutes=i)) for i in range(200)]
    assert validator.stats == {"validations": 1, "cache_hits": 199}
    assert all(r is results[0] for r in results)
    # crossing the leaf's notAfter changes the answer: a new validation, not a stale hit
    later = check(validator, leaf, pki.intermediate, moment=pki.now + timedelta(days=11))
    assert later.status == "expired" and validator.stats["validations"] == 2
    # the intermediate set is part of the key
    assert check(validator, leaf, moment=pki.now).status == "invalid"
    assert validator.stats["validations"] == 3


def test_moment_next_to_a_boundary_is_not_cached(store: TrustStore, pki: TestPKI) -> None:
    validator = ChainValidator(store, OFF)
    leaf = pki.issue_code_signing("Edge", not_after=pki.now + timedelta(days=1))
    edge = leaf.asn1.not_valid_after
    assert check(validator, leaf, pki.intermediate, moment=edge - timedelta(seconds=1)).status == "valid"
    assert check(validator, leaf, pki.intermediate, moment=edge + timedelta(seconds=1)).status == "expired"
    assert check(validator, leaf, pki.intermediate, moment=edge + timedelta(seconds=30)).status == "expired"
    assert validator.stats["validations"] == 3


def test_usable_from_async_code(validator: ChainValidator, pki: TestPKI) -> None:
    import asyncio

    async def inside_a_loop() -> ChainResult:
        return check(validator, pki.leaf, pki.intermediate, moment=pki.now)

    assert asyncio.run(inside_a_loop()).status == "valid"
