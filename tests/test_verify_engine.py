"""The verify engine beyond the numbered scenarios: presets, the verdict model, EKUs, timestamp
checks, fail-closed behaviour, allow-list compilation and the chain result cache."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from test_verify_support import (  # noqa: F401 - `world` is a fixture
    World,
    assemble,
    author_attributes,
    later,
    make_signer_info,
    world,
)

from trustpolicy._internal.archive import hash_file, insert_signature
from trustpolicy._internal.config import load_trust_settings
from trustpolicy._internal.sign import signature_content
from trustpolicy._internal.signature import fingerprint
from trustpolicy._internal.verify import (
    ACCEPT,
    REQUIRE,
    VERIFY,
    CountersignatureBehavior,
    compile_trusted_signers,
    preset,
)
from trustpolicy.models import Issue, PackageVerdict, Status, worst
from trustpolicy.testing.pki import CLIENT_AUTH, CODE_SIGNING, generate_key
from trustpolicy.testing.tsa import TimestampServer


def pairs(verdict: PackageVerdict) -> list[tuple[str, str]]:
    return [(issue.code, issue.level) for issue in verdict.issues]


def step(verdict: PackageVerdict, name: str) -> Status:
    return next(s.status for s in verdict.steps if s.step == name)


# --- settings and model -------------------------------------------------------------------------


def test_presets_are_verify_md_section_6() -> None:
    table = {  # flag: (accept, require, verify)
        "allow_unsigned": (True, False, False),
        "allow_illegal": (True, False, False),
        "allow_untrusted": (True, False, False),
        "allow_ignore_timestamp": (True, True, False),
        "allow_multiple_timestamps": (True, True, True),
        "allow_no_timestamp": (True, True, True),
        "allow_unknown_revocation": (True, True, True),
        "report_unknown_revocation": (False, True, True),
    }
    for flag, values in table.items():
        assert (getattr(ACCEPT, flag), getattr(REQUIRE, flag), getattr(VERIFY, flag)) == values, flag
    behaviors = [p.repository_countersignature_verification_behavior for p in (ACCEPT, REQUIRE, VERIFY)]
    assert behaviors == [CountersignatureBehavior.IF_EXISTS_AND_IS_NECESSARY] * 2 + [CountersignatureBehavior.IF_EXISTS]
    assert preset("Verify") is VERIFY and preset("accept") is ACCEPT
    with pytest.raises(ValueError):
        preset("strict")
    with pytest.raises(ValueError):
        VERIFY.replace(revocation_mode="sometimes")
    with pytest.raises(Exception):
        VERIFY.allow_unsigned = True  # type: ignore[misc]  # frozen


def test_settings_json() -> None:
    data = VERIFY.to_json()
    assert data["allowUntrusted"] is False and data["repositoryCountersignatureVerificationBehavior"] == "if-exists"
    assert data["verificationTarget"] == ["unknown", "author", "repository"]
    assert data["signaturePlacement"] == ["primary", "countersignature"]


def test_status_order_and_worst() -> None:
    assert Status.UNKNOWN < Status.SUSPECT < Status.DISALLOWED < Status.VALID
    assert worst(Status.VALID, Status.SUSPECT, Status.DISALLOWED) == Status.SUSPECT
    assert worst() == Status.UNKNOWN
    with pytest.raises(ValueError):
        Issue("NU3000", "fatal", "no such level")


def test_naive_moment_is_refused(world: World) -> None:
    with pytest.raises(ValueError):
        world.verifier(VERIFY, at=datetime(2024, 1, 1))


def test_package_json_and_not_evaluated_countersignature(world: World) -> None:
    package = world.countersign(world.sign())
    verdict = world.verifier(REQUIRE).verify_package(package)
    data = verdict.to_json()
    assert list(data) == ["path", "id", "version", "signed", "verdict", "signatures", "issues"]
    assert [s["status"] for s in data["signatures"]] == ["valid", "not-evaluated"]
    assert data["signatures"][1]["timestamp"] is None  # not evaluated: no proven time


# --- EKUs ----------------------------------------------------------------------------------------


def test_signer_without_code_signing_eku(world: World) -> None:
    package = world.forge(world.pki.issue_code_signing("Client Auth Only", eku=[CLIENT_AUTH]), timestamp=world.tsa)
    for settings, level in ((VERIFY, "error"), (ACCEPT, "warning")):
        verdict = world.verifier(settings).verify_package(package)
        assert ("NU3012", level) in pairs(verdict) and step(verdict, "trust") == Status.DISALLOWED
        assert "not-valid-for-usage" in next(i.message for i in verdict.issues if i.code == "NU3012")
        assert verdict.verdict == "invalid" and verdict.errors  # an invalid verdict always says why at error level
    no_eku = world.forge(world.pki.issue_code_signing("No EKU", eku=None), timestamp=world.tsa)
    assert world.verifier(VERIFY).verify_package(no_eku).verdict == "valid"  # no EKU: any purpose (Windows)


def test_tsa_without_time_stamping_eku(world: World) -> None:
    tsa = world.pki.issue_tsa("Code Signing TSA", eku=[CODE_SIGNING])
    with TimestampServer(tsa) as server:
        package = world.forge(world.pki.leaf, timestamp=server)
    verdict = world.verifier(VERIFY).verify_package(package)
    assert ("NU3028", "error") in pairs(verdict) and verdict.verdict == "invalid"
    relaxed = world.verifier(REQUIRE).verify_package(package)
    assert ("NU3028", "warning") in pairs(relaxed) and relaxed.verdict == "valid"  # timestamp ignored


# --- timestamp checks ----------------------------------------------------------------------------


@pytest.mark.parametrize(("knobs", "code"), [
    ({"wrong_imprint": True}, "NU3019"),
    ({"signer_key": "other"}, "NU3021"),
])
def test_bad_timestamp_token(world: World, knobs: dict, code: str) -> None:  # type: ignore[type-arg]
    if knobs.get("signer_key") == "other":
        knobs = {"signer_key": generate_key()}
    with TimestampServer(world.pki.tsa, **knobs) as server:
        package = world.forge(world.pki.leaf, timestamp=server)
    strict = world.verifier(VERIFY).verify_package(package)
    assert (code, "error") in pairs(strict) and step(strict, "trust") == Status.DISALLOWED
    relaxed = world.verifier(ACCEPT).verify_package(package)
    assert (code, "warning") in pairs(relaxed) and relaxed.verdict == "valid"
    assert relaxed.signatures[0].timestamp is None  # discarded


def test_tsa_certificate_not_yet_valid(world: World) -> None:
    now = datetime.now().astimezone()
    tsa = world.pki.issue_tsa("Future TSA", not_before=now + timedelta(days=5), not_after=now + timedelta(days=50))
    with TimestampServer(tsa) as server:
        package = world.forge(world.pki.leaf, timestamp=server)
    verdict = world.verifier(VERIFY).verify_package(package)
    assert ("NU3025", "error") in pairs(verdict) and "NU3036" not in verdict.codes()


def test_tsa_revoked_after_the_timestamp_still_counts(world: World) -> None:
    # NuGet builds the TSA chain at "now": a revocation after the timestamp still fails it (docs/verification.md 7).
    with TimestampServer(world.revoked_tsa_later) as server:
        package = world.sign(world.revocable, timestamp=server)
    before = world.verifier(VERIFY, chains=world.online).verify_package(package)
    assert before.verdict == "valid" and "NU3028" not in before.codes("error")
    after = world.verifier(VERIFY, chains=world.online, at=later(3)).verify_package(package)
    assert ("NU3028", "error") in pairs(after) and after.verdict == "invalid"


def test_error_issues_fail_the_verify_command_only(world: World) -> None:
    with TimestampServer(world.other.tsa) as server:
        package = world.sign(timestamp=server)
    restore = world.verifier(ACCEPT).verify_package(package)
    assert restore.verdict == "valid" and ("NU3028", "error") in pairs(restore)  # status decides at restore
    counting = world.verifier(ACCEPT.replace(fail_on_error_issues=True)).verify_package(package)
    assert counting.verdict == "invalid" and all(s.status == Status.VALID for s in counting.steps)


# --- unknown signature type ----------------------------------------------------------------------


def test_unknown_signature_type_is_verified_but_never_trusted(world: World, tmp_path: Path) -> None:
    package = world.unsigned()
    content = signature_content("sha256", hash_file(package, "sha256"))
    leaf = world.pki.leaf
    info = make_signer_info(leaf.certificate, leaf.private_key, "sha256",
                            author_attributes(leaf.certificate, content, commitment=None))
    dest = world.path("unknown-type")
    insert_signature(package, assemble(content, [info], leaf.chain), dest)
    verdict = world.verifier(VERIFY).verify_package(dest)
    assert verdict.signatures[0].kind == "unknown" and verdict.verdict == "valid"
    config = tmp_path / "NuGet.Config"
    config.write_text(f'<configuration><trustedSigners><author name="me"><certificate fingerprint="{fingerprint(leaf.asn1)}" '
                      'hashAlgorithm="SHA256" allowUntrustedRoot="false" /></author></trustedSigners></configuration>')
    trust = load_trust_settings(configfile=str(config))
    listed = world.verifier(VERIFY, trusted_signers=trust.signers).verify_package(dest)
    assert pairs(listed) == [("NU3034", "error"), ("NU3027", "warning")]  # allow list runs before trust


# --- allow lists ---------------------------------------------------------------------------------


def test_trusted_signers_compile_and_merge(tmp_path: Path) -> None:
    fp = "AB" * 32
    config = tmp_path / "NuGet.Config"
    config.write_text(
        '<configuration><trustedSigners>'
        f'<author name="a"><certificate fingerprint="{fp}" hashAlgorithm="SHA256" allowUntrustedRoot="true" /></author>'
        f'<repository name="r" serviceIndex="https://r.example/index.json"><certificate fingerprint="{fp}" '
        'hashAlgorithm="SHA256" allowUntrustedRoot="false" /><owners>x; y</owners></repository>'
        f'<author name="b"><certificate fingerprint="{fp}" hashAlgorithm="SHA384" allowUntrustedRoot="true" /></author>'
        '</trustedSigners></configuration>')
    entries = compile_trusted_signers(load_trust_settings(configfile=str(config)).signers)
    assert len(entries) == 2  # same fingerprint under SHA256 and SHA384: two entries
    merged = next(e for e in entries if e.hash_algorithm == "sha256")
    assert merged.targets == {"author", "repository"} and merged.placements == {"primary", "countersignature"}
    assert merged.owners == ("x", "y") and merged.allow_untrusted_root is False  # conflict: false (NU3040)
    assert [name for name, _ in merged.signers] == ["a", "r"]


def test_lowercase_allow_untrusted_root_hint(world: World, tmp_path: Path) -> None:
    fp = fingerprint(world.other.leaf.asn1).lower()
    config = tmp_path / "NuGet.Config"
    config.write_text(f'<configuration><trustedSigners><author name="other"><certificate fingerprint="{fp}" '
                      'hashAlgorithm="SHA256" allowUntrustedRoot="true" /></author></trustedSigners></configuration>')
    trust = load_trust_settings(configfile=str(config))
    verdict = world.verifier(VERIFY, trusted_signers=trust.signers).verify_package(world.sign(world.other.leaf))
    # NuGet: the lowercase entry still trusts the signer for the allow list, but not its root
    assert verdict.trusted_signer is not None and verdict.trusted_signer.name == "other"
    untrusted = next(i for i in verdict.issues if i.code == "NU3018")
    assert untrusted.level == "error" and "case-sensitively" in untrusted.message


# --- failing closed ------------------------------------------------------------------------------


def test_unexpected_failure_is_an_invalid_verdict(world: World) -> None:
    broken = world.verifier(VERIFY)
    broken.chains = None  # type: ignore[assignment]  # a verifier that fails inside: no chain validator
    verdict = broken.verify_package(world.sign())
    assert verdict.verdict == "invalid" and pairs(verdict) == [("TP0004", "error")]
    assert "AttributeError" in verdict.issues[0].message
    assert broken.verify_package(world.unsigned()).codes() == ["NU3004"]  # the others are still judged


def test_chain_results_are_cached_across_packages(world: World) -> None:
    from trustpolicy._internal.chain import ChainValidator
    from trustpolicy._internal.revocation import RevocationOptions

    with ChainValidator(world.store, RevocationOptions("off")) as chains:
        verifier = world.verifier(VERIFY, chains=chains)
        packages = [world.sign() for _ in range(5)]
        assert all(verifier.verify_package(p).verdict == "valid" for p in packages)
        assert chains.stats["validations"] == 2  # one signer chain, one TSA chain
        assert chains.stats["cache_hits"] == 8
