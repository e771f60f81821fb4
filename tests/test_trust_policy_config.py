"""The <trustPolicy> section as configuration (docs/identity.md sections 1, 4-6): reading with file:line,
refusing what cannot be read, hierarchy merging with <clear/>, the XSD, `config show`, `lint`, NuGet
reading the same file, package patterns and version ranges."""

from __future__ import annotations

import json
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest
from conftest import make_package
from hypothesis import HealthCheck, given, settings, strategies as st
from lxml import etree

from trustpolicy._internal.config import ConfigLocations, load_config, load_trust_settings
from trustpolicy._internal.config.lint import lint, rule
from trustpolicy._internal.config.nugetconfig import read_config_file
from trustpolicy._internal.config.rules import IdentityRule, PackageException, SignerScope
from trustpolicy._internal.graph.versions import parse_version
from trustpolicy._internal.patterns import best_match, check_pattern
from trustpolicy._internal.resources import schema_path
from trustpolicy._internal.versionrange import parse_range
from trustpolicy.cli import main
from trustpolicy.context import TrustContext, TrustOptions
from trustpolicy.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PIN = "A" * 64
OTHER_PIN = "B" * 64
ATS_ID = "1.3.6.1.4.1.311.97.990309390.766961637.194916062.941502583"
AT = datetime(2027, 3, 1, tzinfo=UTC)
NO_HOME = ConfigLocations(user_dir=None, machine_dir=None)


def readme_example() -> str:
    """The complete example config of the README (its section on identity rules)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("### Trust by identity, scoped signers, expiring exceptions"):]
    match = re.search(r"```xml\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def write(path: Path, policy: str, *, signers: str = "", mode: str = "require") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n'
        f'  <config><add key="signatureValidationMode" value="{mode}" /></config>\n'
        f"  <trustedSigners>{signers}</trustedSigners>\n"
        f"  <trustPolicy>\n{policy}\n  </trustPolicy>\n</configuration>\n",
        encoding="utf-8",
    )
    return path


def identity(name: str, pin: str | None = PIN, *, subject: str = 'CN="Contoso Ltd"', eku: str | None = None) -> str:
    parts = [f"<subject {subject} />"] if subject else []
    parts += [f'<issuer fingerprint="{pin}" />'] if pin else []
    parts += [f'<eku oid="{eku}" />'] if eku else []
    return f'    <identity name="{name}" kind="author">{"".join(parts)}</identity>'


AUTHOR = ('<author name="Build"><certificate fingerprint="' + "C" * 64 +
          '" hashAlgorithm="SHA256" allowUntrustedRoot="false" /></author>')


# --- reading ----------------------------------------------------------------------------------------


def test_the_readme_example_reads_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "NuGet.Config"
    path.write_text(readme_example(), encoding="utf-8")
    lines = path.read_text().splitlines()
    settings = load_trust_settings(configfile=path)
    rules = settings.rules
    assert [r.name for r in rules.identities] == ["Contoso", "Fabrikam"]
    contoso, fabrikam = rules.identities
    assert contoso.ekus == (ATS_ID,) and contoso.subject == ()
    assert fabrikam.subject == (("CN", "Fabrikam, Inc."), ("O", "Fabrikam, Inc."))
    assert '<identity name="Fabrikam"' in lines[fabrikam.source.line - 1]
    assert "<issuer" in lines[contoso.issuers[0].source.line - 1]
    assert [(s.signer, s.patterns) for s in rules.scopes] == [("Contoso", ("Contoso.*",)),
                                                             ("Build", ("Contoso.Internal.*", "Fabrikam.Build.Tasks"))]
    (exception,) = rules.exceptions
    assert (exception.package_id, exception.versions.text, exception.expires.isoformat()) == (
        "Legacy.Barcode", "[1.2.0]", "2027-04-01")
    assert "<exception" in lines[exception.source.line - 1]
    # lint finds nothing wrong in it, with the bundled roots (one of which the Contoso rule pins)
    assert main(["lint", "--configfile", str(path), "--at", "2026-12-01T00:00:00Z"]) == 0


def test_a_config_without_the_section_has_no_rules(tmp_path: Path) -> None:
    path = tmp_path / "NuGet.Config"
    path.write_text('<configuration><trustedSigners>' + AUTHOR + '</trustedSigners></configuration>')
    settings = load_trust_settings(configfile=path)
    assert not settings.rules and settings.rules.identities == () and read_config_file(path).rules == ()


BAD = {
    "unknown element": ('    <identity name="A" kind="author"><issuer fingerprint="' + PIN + '" /><subjekt CN="A" /></identity>',
                        "unknown element <subjekt> in <identity>"),
    "unknown top element": ('    <signer name="A" />', "unknown element <signer>"),
    "NuGet item name": ('    <author name="A" />', "unknown element <author>"),
    "cased element": ('    <Identity name="A" kind="author" />', "unknown element <Identity>"),
    "unknown attribute": ('    <exception id="A" version="1.0" expires="2027-01-01" reason="r" until="x" />',
                          "unknown attribute 'until'"),
    "cased attribute": ('    <scope Signer="A"><package pattern="A.*" /></scope>', "write signer"),
    "bad OID": (identity("A", eku="1.3.6.1.4.1.311.97.x"), "is not an object identifier"),
    "OID with a leading zero": (identity("A", eku="1.3.06.1"), "is not an object identifier"),
    "bad fingerprint": (identity("A", pin="AB" * 20), "(that is a SHA-1 fingerprint)"),
    "bad kind": ('    <identity name="A" kind="publisher"><issuer fingerprint="' + PIN + '" /></identity>',
                 "kind must be author or repository"),
    "unknown subject attribute": (identity("A", subject='CommonName="A"'), "use CN, O"),
    "cased subject attribute": (identity("A", subject='cn="A"'), "write CN"),
    "empty subject": (identity("A", subject=" "), "names no attribute"),
    "two subjects": ('    <identity name="A" kind="author"><subject CN="A" /><subject O="A" /></identity>',
                     "more than one <subject>"),
    "bad date": ('    <exception id="A" version="1.0" expires="2027-13-01" reason="r" />', "is not a date"),
    "date and time": ('    <exception id="A" version="1.0" expires="2027-01-01T00:00:00Z" reason="r" />', "is not a date"),
    "bad pattern": ('    <scope signer="A"><package pattern="Con*oso" /></scope>', "is not a package id pattern"),
    "pattern with a leading star": ('    <scope signer="A"><package pattern="*.Contoso" /></scope>', "is not a package id pattern"),
    "empty scope": ('    <scope signer="A" />', "lists no <package"),
    "bad version range": ('    <exception id="A" version="[1.0" expires="2027-01-01" reason="r" />', "is not a version range"),
    "floating version": ('    <exception id="A" version="1.*" expires="2027-01-01" reason="r" />', "floating versions"),
    "empty range": ('    <exception id="A" version="[2.0,1.0]" expires="2027-01-01" reason="r" />', "empty version range"),
    "pattern as exception id": ('    <exception id="A.*" version="1.0" expires="2027-01-01" reason="r" />', "is not a package id"),
    "missing reason": ('    <exception id="A" version="1.0" expires="2027-01-01" />', "needs a non-empty reason"),
    "blank reason": ('    <exception id="A" version="1.0" expires="2027-01-01" reason="  " />', "needs a non-empty reason"),
    "text": ('    <scope signer="A">Contoso.*</scope>', "cannot hold text"),
    "child of an exception": ('    <exception id="A" version="1.0" expires="2027-01-01" reason="r"><clear /></exception>',
                              "cannot have child elements"),
    "same identity twice": (identity("A") + "\n" + identity("A", OTHER_PIN), "identity 'A' is defined twice"),
    "same exception twice": ('    <exception id="A" version="1.0" expires="2027-01-01" reason="r" />\n'
                             '    <exception id="a" version="1.0" expires="2028-01-01" reason="s" />',
                             "an exception for a 1.0 is defined twice"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_refused_with_file_and_line(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policy, message = BAD[case]
    path = write(tmp_path / "NuGet.Config", policy)
    last_line = policy.splitlines()[-1].strip()
    expected_line = next(n for n, line in enumerate(path.read_text().splitlines(), 1) if line.strip() == last_line)
    with pytest.raises(ConfigError) as raised:
        load_trust_settings(configfile=path)
    error = raised.value
    assert (error.path, error.line) == (str(path), expected_line)
    assert message in error.message
    # every command that reads the config stops with the same line (exit code 2), lint included
    assert main(["lint", "--configfile", str(path)]) == 2
    assert f"{path}:{expected_line}: <trustPolicy>: " in capsys.readouterr().err


@pytest.mark.parametrize(("section", "message"), [
    ("<TrustPolicy><clear /></TrustPolicy>", "section names are case-sensitive, write <trustPolicy>"),
    ("<trustPolicy /><trustPolicy />", "<trustPolicy> appears twice in this file"),
])
def test_a_section_that_would_be_ignored_is_refused(section: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "NuGet.Config"
    path.write_text(f"<configuration>\n  {section}\n</configuration>\n")
    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        load_trust_settings(configfile=path)
    assert raised.value.line == 2


def test_the_schema_agrees_with_the_reader(tmp_path: Path) -> None:
    """The XSD accepts the README example's section and refuses what the reader refuses."""
    schema = etree.XMLSchema(etree.parse(str(schema_path("nuget-config.xsd"))))

    def section(policy: str) -> etree._Element:
        document = etree.fromstring(f"<configuration><trustPolicy>{policy}</trustPolicy></configuration>")
        copy = etree.Element("configuration")
        copy.append(document[0])
        return copy

    example = etree.fromstring(readme_example().split("?>", 1)[1])
    assert schema.validate(section("".join(etree.tostring(e, encoding="unicode") for e in example.find("trustPolicy"))))
    for case in ("unknown element", "bad OID", "bad fingerprint", "bad kind", "unknown subject attribute", "bad date",
                 "bad pattern", "pattern with a leading star", "empty scope", "pattern as exception id", "missing reason",
                 "blank reason", "unknown attribute"):
        assert not schema.validate(section(BAD[case][0])), case


# --- merging -----------------------------------------------------------------------------------------


def test_hierarchy_merges_rules_and_a_closer_rule_replaces_a_farther_one(tmp_path: Path) -> None:
    outer = write(tmp_path / "repo" / "nuget.config",
                  identity("Contoso") + "\n" + identity("Fabrikam") +
                  '\n    <scope signer="Contoso"><package pattern="Contoso.*" /></scope>'
                  '\n    <exception id="Old.Lib" version="[1.0]" expires="2027-06-01" reason="r" />')
    inner = write(tmp_path / "repo" / "src" / "NuGet.Config", identity("Contoso", OTHER_PIN))
    rules = load_config(directory=inner.parent, locations=NO_HOME).settings.rules
    assert [(r.name, r.source.path) for r in rules.identities] == [("Fabrikam", str(outer)), ("Contoso", str(inner))]
    assert rules.identities[1].issuers[0].fingerprint == OTHER_PIN
    assert [s.source.path for s in rules.scopes] == [str(outer)] and len(rules.exceptions) == 1


def test_clear_drops_the_rules_of_farther_files_only(tmp_path: Path) -> None:
    write(tmp_path / "repo" / "nuget.config", identity("Contoso") + '\n    <exception id="Old.Lib" version="1.0" '
          'expires="2027-06-01" reason="r" />', signers=AUTHOR)
    inner = write(tmp_path / "repo" / "src" / "NuGet.Config", "    <clear />\n" + identity("Fabrikam"))
    settings = load_config(directory=inner.parent, locations=NO_HOME).settings
    assert [r.name for r in settings.rules.identities] == ["Fabrikam"] and settings.rules.exceptions == ()
    assert [s.name for s in settings.signers] == ["Build"]  # the other sections keep their own merge
    # a <clear/> in one file also drops the rules before it in that file
    inner.write_text(inner.read_text().replace("    <clear />\n" + identity("Fabrikam"),
                                               identity("Fabrikam") + "\n    <clear />\n" + identity("Contoso", OTHER_PIN)))
    rules = load_config(directory=inner.parent, locations=NO_HOME).settings.rules
    assert [(r.name, r.issuers[0].fingerprint) for r in rules.identities] == [("Contoso", OTHER_PIN)]


def test_the_rules_are_part_of_the_verdict_cache_key(tmp_path: Path) -> None:
    path = write(tmp_path / "NuGet.Config", identity("Contoso"), signers=AUTHOR)

    def digest() -> str:
        return TrustContext.build(TrustOptions(configfile=str(path), revocation="off", at=AT)).policy_digest()

    first = digest()
    path.write_text(path.read_text().replace(PIN, OTHER_PIN))
    assert digest() != first


# --- config show, trust list ------------------------------------------------------------------------------


def test_config_show_lists_the_rules_with_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "NuGet.Config"
    path.write_text(readme_example())
    assert main(["config", "show", "--configfile", str(path), "--format", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)["trustPolicy"]
    lines = path.read_text().splitlines()
    contoso = shown["identities"][0]
    assert contoso["ekus"] == [ATS_ID] and contoso["subject"] == {}
    assert "<identity" in lines[contoso["source"]["line"] - 1]
    assert shown["identities"][1]["subject"] == {"CN": "Fabrikam, Inc.", "O": "Fabrikam, Inc."}
    assert shown["exceptions"][0] | {"source": None} == {"id": "Legacy.Barcode", "versions": "[1.2.0]",
                                                         "expires": "2027-04-01", "source": None,
                                                         "reason": "unsigned; vendor signs from 2.0 (SEC-142)"}
    assert main(["config", "show", "--configfile", str(path)]) == 0
    text = capsys.readouterr().out
    assert f"identity 'Fabrikam' [author]  ({path}:" in text and 'subject: CN="Fabrikam, Inc." O="Fabrikam, Inc."' in text
    assert "scope of 'Build': Contoso.Internal.*, Fabrikam.Build.Tasks" in text
    assert main(["trust", "list", "--configfile", str(path)]) == 0
    assert "Identity rules (<trustPolicy>):\n 1. Contoso [author]" in capsys.readouterr().out


def test_config_show_without_rules_has_no_trust_policy_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "NuGet.Config"
    path.write_text("<configuration><trustedSigners>" + AUTHOR + "</trustedSigners></configuration>")
    assert main(["config", "show", "--configfile", str(path), "--format", "json"]) == 0
    assert "trustPolicy" not in json.loads(capsys.readouterr().out)


# --- lint ---------------------------------------------------------------------------------------------


def findings(path: Path, *, roots: frozenset[str] = frozenset()) -> list[tuple[str, str, int | None]]:
    return [(rule(f), f.level.value, f.where.line if f.where else None)
            for f in lint(load_config(configfile=path), at=AT, roots=roots) if f.code.value.startswith("TP2")]


def test_lint_flags_identity_rules_that_are_too_broad(tmp_path: Path) -> None:
    policy = "\n".join([
        identity("NoPin", pin=None),  # line 6
        identity("RootOnly", subject=""),  # 7: pins a root, names nobody
        identity("GenericMark", subject="", eku="1.3.6.1.4.1.311.97.1.0"),  # 8: every subscriber has that EKU
        identity("WhereOnly", OTHER_PIN, subject='C="US" S="Washington"'),  # 9: an intermediate, no one named
        identity("Good", subject='CN="Contoso Ltd"'),  # 10
        identity("Durable", subject="", eku=ATS_ID),  # 11
    ])
    path = write(tmp_path / "NuGet.Config", policy)
    assert findings(path, roots=frozenset({PIN})) == [
        ("identity-without-ca", "error", 6),
        ("identity-too-broad", "error", 7),
        ("identity-too-broad", "error", 8),
        ("identity-too-broad", "warning", 9),
    ]


def test_lint_flags_scopes_and_exceptions(tmp_path: Path) -> None:
    policy = "\n".join([
        identity("Contoso"),  # line 6
        '    <scope signer="contoso"><package pattern="Contoso.*" /></scope>',  # 7: no such signer (case)
        '    <scope signer="Build"><package pattern="*" /></scope>',  # 8
        '    <exception id="Old.Lib" version="1.0" expires="2027-03-01" reason="r" />',  # 9: expired at AT
        '    <exception id="Soon.Lib" version="1.0" expires="2027-03-15" reason="r" />',  # 10: 14 days left
        '    <exception id="Later.Lib" version="1.0" expires="2027-03-16" reason="r" />',  # 11: 15 days
    ])
    path = write(tmp_path / "NuGet.Config", policy, signers=AUTHOR)
    assert findings(path) == [
        ("scope-unknown-signer", "warning", 7),
        ("scope-matches-all", "warning", 8),
        ("exception-expired", "warning", 9),
        ("exception-expiring", "warning", 10),
    ]
    (unknown,) = [f for f in lint(load_config(configfile=path), at=AT) if f.code.value == "TP2007"]
    assert "did you mean 'Contoso'?" in unknown.message


def test_lint_cli_knows_the_bundled_roots_and_identities_count_as_signers(tmp_path: Path,
                                                                          capsys: pytest.CaptureFixture[str]) -> None:
    microsoft_root = "5367F20C7ADE0E2BCA790915056D086B720C33C1FA2A2661ACF787E3292E1270"
    path = write(tmp_path / "NuGet.Config", identity("Everyone", microsoft_root, subject="",
                                                     eku="1.3.6.1.4.1.311.97.1.0"))
    assert main(["lint", "--configfile", str(path), "--format", "json"]) == 1
    result = json.loads(capsys.readouterr().out)["findings"]
    assert [(f["code"], f["level"]) for f in result] == [("TP2005", "error")]  # no TP1002: the identity is a signer
    assert "pins the root CA 5367F20C" in result[0]["message"]


# --- NuGet reads the same file ---------------------------------------------------------------------------


def test_nuget_reads_a_config_with_the_section(nuget_exe: list[str], tmp_path: Path) -> None:
    from test_trust_nuget_interop import nuget_list, ours

    path = tmp_path / "NuGet.Config"
    path.write_text(readme_example())
    assert nuget_list(nuget_exe, tmp_path, path) == ours(path)
    assert [s.name for s in load_trust_settings(configfile=path).signers] == ["nuget.org", "Build"]


# --- patterns and ranges ---------------------------------------------------------------------------------


def test_package_patterns_follow_package_source_mapping() -> None:
    for good in ("*", "Contoso.*", "Contoso*", "Contoso.Logging", "a_b-c.D"):
        assert check_pattern(good) == good
    for bad in ("", "Con*oso", "*.Contoso", "**", "Contoso Logging", "Contoso.", "x" * 101):
        with pytest.raises(ValueError):
            check_pattern(bad)
    owners = {"A": ("*",), "B": ("Contoso.*",), "C": ("contoso.internal.*",), "D": ("Contoso.Internal.Keys",)}
    assert best_match(owners, "Contoso.Internal.Keys") == ("Contoso.Internal.Keys", frozenset({"D"}))
    assert best_match(owners, "CONTOSO.INTERNAL.Other") == ("contoso.internal.*", frozenset({"C"}))
    assert best_match(owners, "Contoso.Logging") == ("Contoso.*", frozenset({"B"}))
    assert best_match(owners, "Fabrikam") == ("*", frozenset({"A"}))
    assert best_match({"B": ("Contoso.*",), "E": ("CONTOSO.*",)}, "contoso.x")[1] == frozenset({"B", "E"})
    assert best_match({"B": ("Contoso.*",)}, "Fabrikam") == (None, frozenset())


@pytest.mark.parametrize(("text", "inside", "outside"), [
    ("1.2.0", ["1.2.0", "1.2.0.1", "2.0.0"], ["1.1.9", "1.2.0-beta"]),
    ("[1.2.0]", ["1.2.0", "1.2"], ["1.2.1", "1.2.0-rc.1"]),
    ("[1.2,2.0)", ["1.2.0", "1.9.9", "2.0.0-alpha"], ["2.0.0", "1.1"]),
    ("(1.2,)", ["1.2.1", "9.0"], ["1.2.0"]),
    ("(,2.0]", ["0.1", "2.0"], ["2.0.1"]),
    ("[1.0.0-alpha.2,1.0.0-alpha.10]", ["1.0.0-alpha.2", "1.0.0-ALPHA.9"], ["1.0.0-alpha.11", "1.0.0-alpha.1", "1.0.0"]),
])
def test_version_ranges(text: str, inside: list[str], outside: list[str]) -> None:
    versions = parse_range(text)
    assert all(parse_version(v) in versions for v in inside), text
    assert not any(parse_version(v) in versions for v in outside), text


def test_rule_objects_keep_what_was_written(tmp_path: Path) -> None:
    path = write(tmp_path / "NuGet.Config", identity("A", subject='CN=" Contoso  Ltd "') +
                 '\n    <scope signer="A"><package pattern="A.*" /><package pattern="A.*" /></scope>'
                 '\n    <exception id="A" version=" [1.0] " expires="2027-01-01" reason=" r " />')
    items = read_config_file(path).rules
    assert isinstance(items[0], IdentityRule) and items[0].subject == (("CN", " Contoso  Ltd "),)
    assert isinstance(items[1], SignerScope) and items[1].patterns == ("A.*",)
    assert isinstance(items[2], PackageException) and (items[2].versions.text, items[2].reason) == ("[1.0]", "r")


# --- fuzzed values ------------------------------------------------------------------------------------

_value = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["", " ", "*", "Contoso.*", "Con*", "1.0", "[1.0]", "[1.0,", "(,)", "[2.0,1.0]", "1.*", "2027-02-30",
                     "2027-01-01", "9999-12-31", "0001-01-01", PIN, PIN.lower(), "1.3.6.1.4.1.311.97.1.0", "1..3",
                     "author", "repository", "\u0130", "\u00df" * 30]),
).map(lambda s: "".join(ch for ch in s if ch in "\t\n\r" or (" " <= ch <= "\ud7ff") or ("\ue000" <= ch <= "\ufffd")))


VALID = {"name": "Contoso", "kind": "author", "cn": "Contoso Ltd", "pin": PIN, "oid": ATS_ID, "signer": "Contoso",
         "pattern": "Contoso.*", "package": "Legacy.Lib", "version": "[1.0,2.0)", "expires": "2027-06-01", "reason": "SEC-1"}


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fuzzed=st.dictionaries(st.sampled_from(sorted(VALID)), _value, max_size=3))
def test_fuzzed_rule_values_are_read_or_refused_with_a_line(tmp_path: Path, fuzzed: dict[str, str]) -> None:
    """Whatever the values (a few at a time, the others valid), the section is read, or refused naming
    the file and the element's line; a config that reads verifies a package without an internal failure."""
    v = {key: quoteattr(value) for key, value in (VALID | fuzzed).items()}
    policy = (f"    <identity name={v['name']} kind={v['kind']}><subject CN={v['cn']} /><issuer fingerprint={v['pin']} />"
              f"<eku oid={v['oid']} /></identity>\n"
              f"    <scope signer={v['signer']}><package pattern={v['pattern']} /></scope>\n"
              f"    <exception id={v['package']} version={v['version']} expires={v['expires']} reason={v['reason']} />")
    with tempfile.TemporaryDirectory(dir=tmp_path) as folder:
        path = write(Path(folder) / "NuGet.Config", policy)
        try:
            rules = load_trust_settings(configfile=path).rules
        except ConfigError as error:
            assert error.path == str(path) and error.line in (6, 7, 8), error
            return
        assert len(rules.identities) == len(rules.scopes) == len(rules.exceptions) == 1
        package_id = rules.exceptions[0].package_id
        unsigned = make_package(Path(folder) / "pkg.nupkg", package_id, "1.5.0")
        verdict = TrustContext.build(TrustOptions(configfile=str(path), revocation="off", at=AT)).verifier().verify_package(unsigned)
        assert "TP0004" not in verdict.codes()
        if rules.exceptions[0].versions.text == "[1.0,2.0)" and not rules.exceptions[0].expired(AT):
            assert verdict.passed and verdict.exception is not None


def test_trust_remove_removes_identity_rules_and_keeps_the_rest(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "NuGet.Config"
    path.write_text(readme_example())
    before = path.read_text()
    assert main(["trust", "remove", "Fabrikam", "--configfile", str(path)]) == 0
    assert "Removed identity 'Fabrikam'" in capsys.readouterr().out
    after = path.read_text()
    removed = before[before.index('    <identity name="Fabrikam"'):before.index("</identity>", before.index('name="Fabrikam"'))
                     + len("</identity>\n")]
    assert after == before.replace(removed, "")
    assert [r.name for r in load_trust_settings(configfile=path).rules.identities] == ["Contoso"]
    assert main(["trust", "remove", "Fabrikam", "--configfile", str(path)]) == 0
    assert "nothing removed" in capsys.readouterr().out
