"""<trustPolicy> rules at work on real signed packages: identity rules (a vendor whose certificate is
renewed every day, like Azure Trusted Signing), signer scopes, and exceptions with expiry dates.

One test PKI issues, from one CA, 30 short-lived certificates (three days each, one per "day") for
one subject with a Trusted-Signing-like identity EKU; a package is signed with each and timestamped
by a real RFC 3161 server at its day. Everything goes through TrustContext, as `check` does.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from conftest import identity_of, make_package
from cryptography import x509
from cryptography.x509.oid import NameOID

from trustpolicy._internal.config import load_trust_settings
from trustpolicy._internal.report import render_text, validate_report
from trustpolicy._internal.sign import RepositoryOptions, sign_package
from trustpolicy._internal.signature import fingerprint
from trustpolicy.check import CheckOptions, check_graph
from trustpolicy.cli import main
from trustpolicy.context import TrustContext, TrustOptions
from trustpolicy.models import PackageVerdict
from trustpolicy.testing.pki import CODE_SIGNING, Issued, TestPKI, write_certificates
from trustpolicy.testing.tsa import TimestampServer

ATS_MARK = "1.3.6.1.4.1.311.97.1.0"  # every Trusted Signing public-trust certificate has it
CONTOSO_ID = "1.3.6.1.4.1.311.97.990309390.766961637.194916062.941502583"  # one subscriber's durable identity
OTHER_ID = "1.3.6.1.4.1.311.97.111111111.222222222.333333333.444444444"
DAYS = 30


def ekus(*oids: str) -> list[x509.ObjectIdentifier]:
    return [CODE_SIGNING, *(x509.ObjectIdentifier(oid) for oid in oids)]


def subject(common_name: str, organization: str) -> x509.Name:
    return x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
    ])


@dataclass
class Rotation:
    """The PKI, its trust store file, the 30 daily packages and the packages that must be refused."""

    pki: TestPKI
    roots_pem: Path
    pca: Issued  # the CA under the root that issues only to the signing service's issuing CAs
    issuing: Issued  # the CA that issues the daily certificates
    daily: list[tuple[Issued, Path]]  # (certificate, package signed and timestamped on its day)
    other_ca: Path  # same subject and EKUs, from another CA under the same trusted root
    other_identity: Path  # same subject, same CA, another subscriber's identity EKU
    expired_untimestamped: Path  # right identity, expired, no timestamp
    untrusted: Path  # right identity, but from a chain whose root is not trusted
    untrusted_ca: Issued  # the CA of that chain
    stranger: Path  # signed by a certificate no rule names (for scopes and exceptions)
    unsigned: Path
    tsa: TimestampServer
    directory: Path

    @property
    def at(self) -> datetime:
        return self.pki.now

    def sign(self, signer: Issued, package_id: str, version: str, *, when: datetime | None = None,
             timestamp: bool = True) -> Path:
        when = when or self.at - timedelta(hours=1)
        source = make_package(self.directory / "unsigned" / f"{package_id}.{version}.nupkg", package_id, version)
        self.tsa.gen_time = when if timestamp else None
        return sign_package(source, identity=identity_of(signer), output=self.directory / f"{package_id}.{version}.nupkg",
                            timestamper=self.tsa.url if timestamp else None, signing_time=when, overwrite=True,
                            on_warning=lambda w: None)


@pytest.fixture(scope="module")
def rotation(tmp_path_factory: pytest.TempPathFactory) -> Any:
    base = tmp_path_factory.mktemp("rotation")
    pki = TestPKI(base / "pki", tag="identity-rules")
    pca = pki.issue_ca("Test ID Verified Code Signing PCA", issuer=pki.root)
    issuing = pki.issue_ca("Test ID Verified CS EOC CA 01", issuer=pca)
    roots_pem = write_certificates(base / "roots.pem", [pki.root.certificate, pki.tsa_root.certificate])
    key = pki.key()  # the service rotates certificates, not necessarily keys; one key keeps the test fast
    contoso = subject("Contoso Ltd", "Contoso Ltd")
    start = pki.now - timedelta(days=DAYS - 0.5)  # the TSA certificate is valid from 30 days ago
    with TimestampServer(pki.tsa) as tsa:
        world = Rotation(pki, roots_pem, pca, issuing, [], Path(), Path(), Path(), Path(), pki.root, Path(), Path(),
                         tsa, base / "packages")
        for day in range(DAYS):
            born = start + timedelta(days=day)
            cert = pki.issue_code_signing(f"Contoso day {day}", issuer=issuing, subject=contoso, key=key,
                                          eku=ekus(ATS_MARK, CONTOSO_ID), not_before=born,
                                          not_after=born + timedelta(days=3))
            world.daily.append((cert, world.sign(cert, "Contoso.Tools", f"1.0.{day}", when=born + timedelta(hours=1))))
        other_ca = pki.issue_ca("Other Code Signing CA", issuer=pki.root)
        world.other_ca = world.sign(pki.issue_code_signing("Contoso elsewhere", issuer=other_ca, subject=contoso,
                                                           key=key, eku=ekus(ATS_MARK, CONTOSO_ID)), "Contoso.Tools", "2.0.0")
        world.other_identity = world.sign(pki.issue_code_signing("Contoso lookalike", issuer=issuing, subject=contoso,
                                                                 key=key, eku=ekus(ATS_MARK, OTHER_ID)),
                                          "Contoso.Tools", "2.0.1")
        old = pki.issue_code_signing("Contoso expired", issuer=issuing, subject=contoso, key=key,
                                     eku=ekus(ATS_MARK, CONTOSO_ID), not_before=pki.now - timedelta(days=10),
                                     not_after=pki.now - timedelta(days=7))
        world.expired_untimestamped = world.sign(old, "Contoso.Tools", "2.0.2", when=pki.now - timedelta(days=8),
                                                 timestamp=False)
        rogue = TestPKI(base / "rogue", tag="identity-rules-rogue", fresh_keys=True)
        rogue_ca = rogue.issue_ca("Test ID Verified CS EOC CA 01", issuer=rogue.root)
        world.untrusted_ca = rogue_ca
        world.untrusted = world.sign(rogue.issue_code_signing("Contoso rogue", issuer=rogue_ca, subject=contoso,
                                                              eku=ekus(ATS_MARK, CONTOSO_ID)), "Contoso.Tools", "2.0.3")
        world.stranger = world.sign(pki.issue_code_signing("Northwind Traders"), "Northwind.Utils", "1.4.2")
        world.unsigned = make_package(base / "packages" / "Legacy.Lib.1.2.0.nupkg", "Legacy.Lib", "1.2.0")
        yield world


# --- helpers ------------------------------------------------------------------------------------------


def write_config(path: Path, policy: str = "", signers: str = "", mode: str = "require") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n'
        f'  <config>\n    <add key="signatureValidationMode" value="{mode}" />\n  </config>\n'
        f"  <trustedSigners>\n{signers}  </trustedSigners>\n"
        f"  <trustPolicy>\n{policy}  </trustPolicy>\n</configuration>\n",
        encoding="utf-8",
    )
    return path


def identity_xml(name: str, *pins: str, subject_attrs: str = "", oids: tuple[str, ...] = (), kind: str = "author") -> str:
    children = [f"      <subject {subject_attrs} />"] if subject_attrs else []
    children += [f'      <issuer fingerprint="{pin}" />' for pin in pins]
    children += [f'      <eku oid="{oid}" />' for oid in oids]
    return f'    <identity name="{name}" kind="{kind}">\n' + "\n".join(children) + "\n    </identity>\n"


def author_xml(name: str, cert: Issued) -> str:
    return (f'    <author name="{name}">\n      <certificate fingerprint="{fingerprint(cert.asn1)}" '
            'hashAlgorithm="SHA256" allowUntrustedRoot="false" />\n    </author>\n')


def context(world: Rotation, config: Path, *, mode: str | None = None, at: datetime | None = None) -> TrustContext:
    return TrustContext.build(TrustOptions(mode=mode, configfile=str(config), trust_store=(str(world.roots_pem),),
                                           revocation="off", at=at or world.at, cache_dir=str(config.parent / "cache")))


def judge(world: Rotation, config: Path, package: Path, **kw: Any) -> PackageVerdict:
    return context(world, config, **kw).verifier().verify_package(package)


def fp(cert: Issued) -> str:
    return fingerprint(cert.asn1)


def line_of(config: Path, needle: str) -> int:
    return next(n for n, line in enumerate(config.read_text().splitlines(), 1) if needle in line)


# --- identity rules ----------------------------------------------------------------------------------


def test_one_identity_rule_accepts_all_30_daily_certificates(rotation: Rotation, tmp_path: Path) -> None:
    """The durable identity EKU with the service's CA under the root: every day's certificate matches
    at its own timestamp, although each has long expired but the last; one chain validation per
    certificate, shared by the trust step and the rule."""
    config = write_config(tmp_path / "NuGet.Config", identity_xml("Contoso", fp(rotation.pca), oids=(CONTOSO_ID,)))
    verifier = context(rotation, config).verifier()
    fingerprints = set()
    for cert, package in rotation.daily:
        verdict = verifier.verify_package(package)
        assert verdict.passed, (cert.label, verdict.issues)
        matched = verdict.trusted_signer
        assert matched is not None and matched.rule == "identity" and matched.name == "Contoso"
        assert matched.fingerprint == fp(cert) and matched.source is not None
        assert matched.source.line == line_of(config, "<identity")
        fingerprints.add(matched.fingerprint)
    assert len(fingerprints) == DAYS  # thirty certificates, no fingerprint entry could have pinned them
    # 30 signing chains + the TSA chain once; the TSA chain comes from the cache for the other 29
    # packages, and no signing chain is validated twice (the rule reuses the trust step's chain).
    assert verifier.chains.stats == {"validations": DAYS + 1, "cache_hits": DAYS - 1}


def test_a_subject_rule_with_the_issuing_ca_also_survives_rotation(rotation: Rotation, tmp_path: Path) -> None:
    config = write_config(tmp_path / "NuGet.Config",
                          identity_xml("Contoso", fp(rotation.issuing), subject_attrs='CN="contoso  ltd" O="Contoso Ltd"'))
    verifier = context(rotation, config).verifier()
    assert all(verifier.verify_package(package).passed for _, package in rotation.daily[::7])


def test_what_an_identity_rule_refuses(rotation: Rotation, tmp_path: Path) -> None:
    config = write_config(tmp_path / "NuGet.Config", identity_xml("Contoso", fp(rotation.pca),
                                                                  subject_attrs='CN="Contoso Ltd"', oids=(CONTOSO_ID,)))
    verifier = context(rotation, config).verifier()
    refused = {
        "same subject from another CA": (rotation.other_ca, "none of the CAs it pins"),
        "another identity EKU from the same CA": (rotation.other_identity, "no allow-list entry matches"),
        "expired certificate without a timestamp": (rotation.expired_untimestamped, "not valid at the signing time"),
    }
    for case, (package, why) in refused.items():
        verdict = verifier.verify_package(package)
        assert not verdict.passed, case
        assert "NU3034" in verdict.codes("error"), (case, verdict.issues)
        assert verdict.trusted_signer is None and why in (verdict.trusted_signer_reason or ""), (case, verdict.trusted_signer_reason)


def test_an_identity_rule_never_accepts_an_untrusted_root(rotation: Rotation, tmp_path: Path) -> None:
    """Even pinning the CA of that chain, and in accept mode (where the root itself is only a warning)."""
    config = write_config(tmp_path / "NuGet.Config",
                          identity_xml("Contoso", fp(rotation.untrusted_ca), oids=(CONTOSO_ID,)), mode="accept")
    verdict = judge(rotation, config, rotation.untrusted)
    assert verdict.passed and verdict.trusted_signer is None  # accept mode lets it in, unsigned-like
    assert "untrusted root" in (verdict.trusted_signer_reason or "")
    assert ("NU3034", "warning") in [(i.code, i.level) for i in verdict.issues]


def test_identity_rule_in_accept_mode_names_the_signer(rotation: Rotation, tmp_path: Path) -> None:
    config = write_config(tmp_path / "NuGet.Config", identity_xml("Contoso", fp(rotation.pca), oids=(CONTOSO_ID,)),
                          mode="accept")
    verdict = judge(rotation, config, rotation.daily[3][1])
    assert verdict.passed and verdict.issues == () and verdict.trusted_signer.rule == "identity"


# --- scopes --------------------------------------------------------------------------------------------


def scoped(world: Rotation, tmp_path: Path, patterns: str, mode: str = "require", extra: str = "") -> Path:
    policy = identity_xml("Contoso", fp(world.pca), oids=(CONTOSO_ID,)) + (
        f'    <scope signer="Northwind">{patterns}</scope>\n' + extra)
    return write_config(tmp_path / "NuGet.Config", policy, author_xml("Northwind", world.pki.leaf), mode=mode)


def test_scope_allows_in_scope_and_refuses_out_of_scope(rotation: Rotation, tmp_path: Path) -> None:
    northwind = rotation.pki.leaf
    in_scope = rotation.sign(northwind, "Northwind.Data", "1.0.0")
    out_of_scope = rotation.sign(northwind, "Contoso.Fake", "1.0.0")
    config = scoped(rotation, tmp_path, '<package pattern="northwind.*" />')

    ok = judge(rotation, config, in_scope)
    assert ok.passed and ok.trusted_signer.name == "Northwind" and ok.trusted_signer.rule == "fingerprint"
    refused = judge(rotation, config, out_of_scope)
    assert not refused.passed and refused.codes("error")[:1] == ["TP2001"]
    assert "Contoso.Fake is outside the scope of 'Northwind' (northwind.*" in refused.trusted_signer_reason

    accept = scoped(rotation, tmp_path / "accept", '<package pattern="Northwind.*" />', mode="accept")
    let_in = judge(rotation, accept, out_of_scope)
    assert let_in.passed and let_in.trusted_signer is None  # accept mode installs it, but no signer vouches for it
    assert ("TP2001", "warning") in [(i.code, i.level) for i in let_in.issues]


def test_the_most_specific_scope_decides(rotation: Rotation, tmp_path: Path) -> None:
    """packageSourceMapping's rule: Contoso.* belongs to Contoso, but Contoso.Internal.* to Northwind."""
    config = scoped(rotation, tmp_path, '<package pattern="Northwind.*" /><package pattern="Contoso.Internal.*" />',
                    extra='    <scope signer="Contoso"><package pattern="Contoso.*" /></scope>\n')
    contoso_cert = rotation.daily[-1][0]
    assert judge(rotation, config, rotation.sign(contoso_cert, "Contoso.Tools", "9.0.0")).passed
    internal_by_contoso = judge(rotation, config, rotation.sign(contoso_cert, "Contoso.Internal.Secrets", "1.0.0"))
    assert internal_by_contoso.codes("error")[:1] == ["TP2001"]
    assert "the more specific pattern Contoso.Internal.* belongs to 'Northwind'" in internal_by_contoso.trusted_signer_reason
    assert judge(rotation, config, rotation.sign(rotation.pki.leaf, "Contoso.Internal.Secrets", "1.0.1")).passed


# --- exceptions ----------------------------------------------------------------------------------------


def excepted(world: Rotation, tmp_path: Path, expires: str, version: str = "[1.2.0]", package: str = "Legacy.Lib") -> Path:
    policy = f'    <exception id="{package}" version="{version}" expires="{expires}" reason="vendor signs from 2.0, SEC-42" />\n'
    return write_config(tmp_path / "NuGet.Config", policy, author_xml("Northwind", world.pki.leaf))


def test_exception_used_near_expiry_and_expired(rotation: Rotation, tmp_path: Path) -> None:
    config = excepted(rotation, tmp_path, "2030-03-01")
    used = judge(rotation, config, rotation.unsigned, at=datetime.fromisoformat("2030-01-15T00:00:00+00:00"))
    assert used.passed and used.exception is not None and used.exception.reason == "vendor signs from 2.0, SEC-42"
    assert [(i.code, i.level) for i in used.issues] == [("TP2004", "info")]

    near = judge(rotation, config, rotation.unsigned, at=datetime.fromisoformat("2030-02-20T00:00:00+00:00"))
    assert near.passed and near.codes("warning") == ["TP2003"] and "in 9 days" in near.warnings[0].message

    expired = judge(rotation, config, rotation.unsigned, at=datetime.fromisoformat("2030-03-01T00:00:00+00:00"))
    assert not expired.passed and expired.exception is None
    assert set(expired.codes("error")) == {"NU3004", "TP2002"}


def test_exception_covers_untrusted_signers_but_not_broken_packages(rotation: Rotation, tmp_path: Path) -> None:
    config = excepted(rotation, tmp_path, "2999-01-01", version="[2.0,3.0)", package="Contoso.Tools")
    # signed by a chain whose root is not trusted, and by no trusted signer: allowed by the exception
    verdict = judge(rotation, config, rotation.untrusted)
    assert verdict.passed and verdict.exception is not None and verdict.codes("error") == []
    assert {"NU3034", "TP2004"} <= set(verdict.codes())
    # the same package with its content changed after signing stays refused
    tampered = tmp_path / "tampered.nupkg"
    raw = bytearray(rotation.other_ca.read_bytes())
    raw[60] ^= 0x01  # inside the first entry's data: the signed content hash no longer matches
    tampered.write_bytes(bytes(raw))
    broken = judge(rotation, config, tampered)
    assert not broken.passed and broken.exception is None and "NU3008" in broken.codes("error")
    # outside the range: no exception
    assert not judge(rotation, config, rotation.daily[0][1]).passed


def test_a_package_that_passes_uses_no_exception(rotation: Rotation, tmp_path: Path) -> None:
    config = excepted(rotation, tmp_path, "2999-01-01", version="1.0", package="Northwind.Utils")
    verdict = judge(rotation, config, rotation.sign(rotation.pki.leaf, "Northwind.Utils", "1.5.0"))
    assert verdict.passed and verdict.exception is None and verdict.trusted_signer.name == "Northwind"


# --- reports and the command line ----------------------------------------------------------------------


def folder_graph(world: Rotation, tmp_path: Path, packages: list[Path]) -> Path:
    folder = tmp_path / "feed"
    folder.mkdir()
    for package in packages:
        (folder / package.name).write_bytes(package.read_bytes())
    return folder


def test_check_report_names_the_rule_that_allowed_each_package(rotation: Rotation, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    policy = identity_xml("Contoso", fp(rotation.pca), oids=(CONTOSO_ID,)) + (
        '    <exception id="Legacy.Lib" version="[1.2.0]" expires="2030-02-01" reason="SEC-42" />\n')
    config = write_config(tmp_path / "NuGet.Config", policy, author_xml("Northwind", rotation.pki.leaf))
    northwind = rotation.sign(rotation.pki.leaf, "Northwind.Utils", "1.4.2")
    feed = folder_graph(rotation, tmp_path, [rotation.daily[5][1], rotation.unsigned, northwind])
    args = ["check", str(feed), "--configfile", str(config), "--trust-store", str(rotation.roots_pem), "--revocation",
            "off", "--at", "2030-01-25T00:00:00Z", "--no-cache", "--format"]
    assert main([*args, "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    validate_report(document)
    by_id = {p["id"]: p for p in document["packages"]}
    assert by_id["Contoso.Tools"]["trustedSigner"]["rule"] == "identity"
    assert by_id["Contoso.Tools"]["trustedSigner"]["source"] == {"path": str(config), "line": line_of(config, "<identity")}
    assert by_id["Northwind.Utils"]["trustedSigner"] == {"name": "Northwind", "kind": "author",
                                                         "fingerprint": fp(rotation.pki.leaf)}
    assert "exception" not in by_id["Northwind.Utils"]
    assert by_id["Legacy.Lib"]["exception"] == {"id": "Legacy.Lib", "versions": "[1.2.0]", "expires": "2030-02-01",
                                                "reason": "SEC-42",
                                                "source": {"path": str(config), "line": line_of(config, "<exception")}}
    assert [i["code"] for i in by_id["Legacy.Lib"]["issues"]] == ["TP2004", "TP2003"]

    assert main([*args, "sarif"]) == 0
    results = json.loads(capsys.readouterr().out)["runs"][0]["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [("TP2004", "note"), ("TP2003", "warning")]
    assert "Legacy.Lib 1.2.0" in results[0]["message"]["text"]

    report = check_graph([feed], context(rotation, config, at=datetime.fromisoformat("2030-01-25T00:00:00+00:00")),
                         CheckOptions(jobs=1, use_cache=False))
    table = render_text(report, "table", width=250)
    assert "Contoso (author, identity)" in table and "exception, expires 2030-02-01" in table


def test_check_refuses_an_identity_rule_without_a_ca_pin(rotation: Rotation, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path / "NuGet.Config", identity_xml("Contoso", subject_attrs='CN="Contoso Ltd"'))
    feed = folder_graph(rotation, tmp_path, [rotation.daily[0][1]])
    code = main(["check", str(feed), "--configfile", str(config), "--revocation", "off", "--no-cache"])
    assert code == 2
    line = line_of(config, "<identity")
    assert f"{config}:{line}: TP2006: identity 'Contoso' pins no issuing CA" in capsys.readouterr().err


def test_trust_author_identity_from_a_package(rotation: Rotation, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The helper writes the identity EKU and the root (the service's issuing CAs rotate); the rule
    accepts every other day's package and still refuses another subscriber's."""
    config = tmp_path / "NuGet.Config"
    config.write_text('<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n  <!-- keep me -->\n</configuration>\n')
    package = rotation.daily[12][1]
    assert main(["trust", "author", "Contoso", "--identity-from", str(package), "--extra-roots", str(rotation.roots_pem),
                 "--configfile", str(config)]) == 0
    assert "Added identity 'Contoso'" in capsys.readouterr().out
    text = config.read_text()
    assert "<!-- keep me -->" in text
    rule = load_trust_settings(configfile=config).rules.identities[0]
    assert (rule.kind, rule.subject, rule.ekus) == ("author", (), (CONTOSO_ID,))
    assert [pin.fingerprint for pin in rule.issuers] == [fp(rotation.pki.root)]
    write_config(config, text.split("<trustPolicy>\n")[1].split("  </trustPolicy>")[0])  # the same rule, require mode
    verifier = context(rotation, config).verifier()
    assert all(verifier.verify_package(p).passed for _, p in rotation.daily)
    assert not verifier.verify_package(rotation.other_identity).passed


def test_trust_author_identity_needs_a_trusted_chain(rotation: Rotation, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "NuGet.Config"
    assert main(["trust", "author", "Contoso", "--identity-from", str(rotation.untrusted), "--configfile", str(config)]) == 2
    assert "root that is not trusted" in capsys.readouterr().err and not config.exists()
    assert main(["trust", "author", "Contoso", str(rotation.stranger), "--identity-from", str(rotation.stranger)]) == 2


def test_trust_author_identity_from_a_classic_certificate(rotation: Rotation, tmp_path: Path) -> None:
    """Without an identity EKU the helper pins the subject's CN and O and the CA just below the root."""
    config = tmp_path / "NuGet.Config"
    fabrikam = rotation.pki.issue_code_signing("Fabrikam", subject=subject("Fabrikam, Inc.", "Fabrikam, Inc."))
    package = rotation.sign(fabrikam, "Fabrikam.Json", "13.0.3")
    assert main(["trust", "author", "Fabrikam", "--identity-from", str(package), "--extra-roots", str(rotation.roots_pem),
                 "--configfile", str(config)]) == 0
    (rule,) = load_trust_settings(configfile=config).rules.identities
    assert rule.subject == (("CN", "Fabrikam, Inc."), ("O", "Fabrikam, Inc.")) and rule.ekus == ()
    assert [pin.fingerprint for pin in rule.issuers] == [fp(rotation.pki.intermediate)]


def test_a_repository_identity_rule_matches_a_valid_countersignature(rotation: Rotation, tmp_path: Path) -> None:
    feed = rotation.pki.issue_code_signing("Fabrikam Feed", issuer=rotation.issuing, subject=subject("Fabrikam Feed", "Fabrikam"))
    countersigned = sign_package(rotation.stranger, identity=identity_of(feed), output=tmp_path / "countersigned.nupkg",
                                 repository=RepositoryOptions("https://feed.fabrikam.test/v3/index.json", ("fabrikam",)),
                                 timestamper=rotation.tsa.url, on_warning=lambda w: None)
    rule = identity_xml("Fabrikam Feed", fp(rotation.pca), subject_attrs='CN="Fabrikam Feed"', kind="repository")
    verdict = judge(rotation, write_config(tmp_path / "NuGet.Config", rule), countersigned)
    assert verdict.passed, verdict.issues
    matched = verdict.trusted_signer
    assert (matched.kind, matched.placement, matched.rule, matched.fingerprint) == (
        "repository", "countersignature", "identity", fp(feed))
    # the same rule as an author rule does not vouch for the countersignature
    as_author = identity_xml("Fabrikam Feed", fp(rotation.pca), subject_attrs='CN="Fabrikam Feed"')
    assert not judge(rotation, write_config(tmp_path / "author" / "NuGet.Config", as_author), countersigned).passed


def test_init_does_not_pin_a_daily_certificate(rotation: Rotation, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A Trusted-Signing-like author gets the identity command, not a certificate pin that breaks in days;
    the other signer is pinned. Exit 1: the policy is complete only once that command has run."""
    northwind = rotation.sign(rotation.pki.leaf, "Northwind.Data", "2.0.0")
    feed = folder_graph(rotation, tmp_path, [rotation.daily[-1][1], northwind])
    assert main(["init", str(feed), "--trust-store", str(rotation.roots_pem), "--revocation", "off"]) == 1
    out, err = capsys.readouterr()
    assert fp(rotation.pki.leaf) in out and fp(rotation.daily[-1][0]) not in out
    command = f"trustpolicy trust author 'Contoso Ltd' --identity-from {feed / rotation.daily[-1][1].name}"
    assert command in err


def test_check_accepts_the_30_days_in_worker_processes(rotation: Rotation, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    """The rules travel to the worker processes with the context; the verdicts name the rule."""
    config = write_config(tmp_path / "NuGet.Config", identity_xml("Contoso", fp(rotation.pca), oids=(CONTOSO_ID,)))
    feed = folder_graph(rotation, tmp_path, [package for _, package in rotation.daily])
    code = main(["check", str(feed), "--configfile", str(config), "--trust-store", str(rotation.roots_pem),
                 "--revocation", "off", "--no-cache", "--jobs", "2", "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert code == 0 and document["summary"]["valid"] == DAYS
    assert {p["trustedSigner"]["rule"] for p in document["packages"]} == {"identity"}
