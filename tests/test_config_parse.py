"""Reading one NuGet.Config the way NuGet does (docs/policy.md sections 1-2; scenarios 89-97)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from trustpolicy._internal.config.nugetconfig import (
    Clear,
    TrustedSigner,
    parse_bool,
    parse_config_bytes,
    parse_hash_algorithm,
    parse_mode,
    read_config_file,
)
from trustpolicy._internal.resources import schema_path
from trustpolicy.errors import ConfigError

CONFIGS = Path(__file__).parent / "configs"
SAMPLES = sorted(p.name for p in CONFIGS.glob("*.config"))
FP256 = "3F9001EA83C560D712C24CF213C3D312CB3BFF51EE89435D3430BD06B5D0EECE"


def signers_of(config) -> list[TrustedSigner]:
    return [s for s in config.signers if isinstance(s, TrustedSigner)]


def doc(signers: str = "", config: str = "", extra: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n'
        f"  <config>{config}</config>\n  <trustedSigners>\n{signers}\n  </trustedSigners>\n{extra}</configuration>\n"
    ).encode()


def cert(fp: str = FP256, alg: str = "SHA256", allow: str = "false") -> str:
    return f'<certificate fingerprint="{fp}" hashAlgorithm="{alg}" allowUntrustedRoot="{allow}" />'


# -- the sample configs ------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_every_sample_parses(name: str) -> None:
    config = read_config_file(CONFIGS / name)
    assert config.path.endswith(name)


@pytest.mark.parametrize("name", [n for n in SAMPLES if n != "mixed-case-items.config"])
def test_samples_with_canonical_names_validate_directly_against_the_schema(name: str) -> None:
    schema = etree.XMLSchema(etree.parse(str(schema_path("nuget-config.xsd"))))
    assert schema.validate(etree.parse(str(CONFIGS / name))), schema.error_log


def test_schema_rejects_what_nuget_rejects() -> None:
    schema = etree.XMLSchema(etree.parse(str(schema_path("nuget-config.xsd"))))
    bad = doc('<author name="a"><certificate fingerprint="A" hashAlgorithm="SHA256" /></author>')
    assert not schema.validate(etree.fromstring(bad))
    two_owners = doc(f'<repository name="r" serviceIndex="https://x.test/index.json">{cert()}<owners>a</owners><owners>b</owners></repository>')
    assert not schema.validate(etree.fromstring(two_owners))
    no_cert = doc('<author name="a"></author>')
    assert not schema.validate(etree.fromstring(no_cert))


def test_policy_example_reads_exactly() -> None:
    config = read_config_file(CONFIGS / "policy-example.config")
    assert isinstance(config.signers[0], Clear) and config.signers[0].source.line == 12
    microsoft, company, nuget = signers_of(config)
    assert (microsoft.kind, microsoft.name, len(microsoft.certificates)) == ("author", "microsoft", 3)
    assert microsoft.certificates[0].fingerprint == FP256
    assert microsoft.certificates[0].source.line == 15
    assert company.certificates[0].allow_untrusted_root is True
    assert nuget.kind == "repository"
    assert nuget.service_index == "https://api.nuget.org/v3/index.json"
    assert nuget.owners == ("microsoft", "aspnet", "nuget")
    assert nuget.source.line == 24
    assert [s.key for s in config.sources if not isinstance(s, Clear)] == ["nuget.org", "contoso"]


def test_bom_crlf_and_comments_everywhere() -> None:
    raw = (CONFIGS / "realworld-bom-crlf.config").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw
    config = read_config_file(CONFIGS / "realworld-bom-crlf.config")
    fabrikam, nuget = signers_of(config)
    assert fabrikam.source.line == 45 and fabrikam.certificates[0].source.line == 46
    assert nuget.owners == ("Microsoft", "aspnet", "nuget")
    # lower-case fingerprints as `sync` writes them: matched upper-case, kept as written
    assert nuget.certificates[0].fingerprint == nuget.certificates[0].written_fingerprint.upper()
    assert nuget.certificates[0].written_fingerprint.islower()


def test_tabs_multiline_tags_single_quotes_and_clear_in_the_middle() -> None:
    config = read_config_file(CONFIGS / "tabs-comments.config")
    assert isinstance(config.signers[0], Clear)  # the author before <clear/> is gone
    contoso, internal = signers_of(config)
    assert contoso.name == "contoso"
    assert contoso.source.line == 20  # the line where "<author" starts, not where its tag ends
    assert contoso.certificates[0].source.line == 24
    assert internal.owners == ("team-a", "team-b")  # trimmed around ';' and the element's whitespace
    assert internal.certificates[0].hash_algorithm == "SHA384"
    mode = [s for s in config.config if not isinstance(s, Clear) and s.key == "signatureValidationMode"][0]
    assert parse_mode(mode.value) == "require"


def test_item_element_names_are_case_insensitive_attribute_values_normalised() -> None:
    config = read_config_file(CONFIGS / "mixed-case-items.config")
    contoso, myget = signers_of(config)
    assert contoso.kind == "author" and contoso.certificates[0].hash_algorithm == "SHA256"
    assert contoso.certificates[0].allow_untrusted_root is True  # "True"
    assert myget.kind == "repository" and myget.owners == ("alice",)
    assert myget.certificates[0].hash_algorithm == "SHA512"
    assert myget.certificates[0].allow_untrusted_root is False  # " FALSE "


def test_other_sections_are_tolerated_and_ignored() -> None:
    config = read_config_file(CONFIGS / "other-sections.config")
    assert config.signers == () and config.sources == ()
    assert {s.key for s in config.config if not isinstance(s, Clear)} >= {"globalPackagesFolder", "http_proxy"}


# -- value parsing (.NET rules) -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "mode"),
    [(None, "accept"), ("require", "require"), ("REQUIRE", "require"), (" Require ", "require"), ("accept", "accept"),
     ("", "accept"), ("garbage", "accept"), ("strict", "accept"), ("1", "require"), ("0", "accept")],
)
def test_signature_validation_mode_parsing(raw: str | None, mode: str) -> None:
    assert parse_mode(raw) == mode


@pytest.mark.parametrize(
    ("raw", "name"),
    [("SHA256", "SHA256"), ("sha384", "SHA384"), ("Sha512", "SHA512"), (" SHA256 ", "SHA256"), ("SHA1", "SHA1"),
     ("MD5", None), ("SHA-256", None), ("", None), ("SHA224", None)],
)
def test_hash_algorithm_parsing(raw: str, name: str | None) -> None:
    assert parse_hash_algorithm(raw) == name


@pytest.mark.parametrize(("raw", "value"), [("true", True), ("True", True), (" TRUE ", True), ("false", False), ("yes", False), ("1", False), ("", False)])
def test_allow_untrusted_root_is_a_dotnet_bool(raw: str, value: bool) -> None:
    assert parse_bool(raw) is value


def test_allow_untrusted_root_only_takes_effect_on_an_upper_case_fingerprint() -> None:
    config = parse_config_bytes(
        doc(f'<author name="lower">{cert(FP256.lower(), allow="true")}</author><author name="upper">{cert(allow="true")}</author>'),
        "NuGet.Config",
    )
    lower, upper = signers_of(config)
    assert lower.certificates[0].written_allow_untrusted_root is True
    assert lower.certificates[0].allow_untrusted_root is False
    assert lower.certificates[0].fingerprint == FP256
    assert upper.certificates[0].allow_untrusted_root is True


# -- errors name the file and the line ---------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        (f'<author>{cert()}</author>', 5, "author is missing the required attribute name"),
        (f'<repository name="r">{cert()}</repository>', 5, "repository is missing the required attribute serviceIndex"),
        ('<author name="a">\n<certificate fingerprint="AB" hashAlgorithm="SHA256" />\n</author>', 6,
         "certificate is missing the required attribute allowUntrustedRoot"),
        ('<author name="a"><certificate hashAlgorithm="SHA256" allowUntrustedRoot="false" /></author>', 5,
         "certificate is missing the required attribute fingerprint"),
        ('<author name="a"><certificate fingerprint="AB" allowUntrustedRoot="false" /></author>', 5,
         "certificate is missing the required attribute hashAlgorithm"),
        ('<author name="a"><certificate Fingerprint="AB" hashAlgorithm="SHA256" allowUntrustedRoot="false" /></author>', 5,
         "attribute names are case-sensitive"),
        ('<author name="a"><certificate fingerprint="AB" hashAlgorithm="SHA256" allowUntrustedRoot="false"><x/></certificate></author>', 5,
         "certificate cannot have child elements"),
        ('<author name="a">\n</author>', 5, "has no certificate"),
        ('<repository name="r" serviceIndex="https://x.test/i.json"><owners>a</owners></repository>', 5, "has no certificate"),
        (f'<repository name="r" serviceIndex="https://x.test/i.json">{cert()}\n<owners>a</owners>\n<owners>b</owners></repository>', 7,
         "more than one <owners>"),
        (f'<repository name="r" serviceIndex="https://x.test/i.json">{cert()}<owners> </owners></repository>', 5, "owners is empty"),
        (f'<repository name="r" serviceIndex="https://x.test/i.json">{cert()}<owners/></repository>', 5, "owners is empty"),
        (f'<repository name="r" serviceIndex="https://x.test/i.json">{cert()}<owners x="1">a</owners></repository>', 5,
         "owners cannot have attributes"),
        (f'<repository name="r" serviceIndex="https://x.test/i.json">{cert()}<owners>a<b/></owners></repository>', 5,
         "owners can only contain text"),
        (f'<repository name="r" serviceIndex="https://x.test/i.json">{cert()}<owners>a;<!-- c -->b</owners></repository>', 5,
         "interrupted by a comment"),
        (f'<author name="a">{cert()}</author>\n<author name="a" note="x">{cert()}</author>', 6, "defined twice"),
    ],
)
def test_nuget_rule_violations_name_file_and_line(body: str, line: int, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config_bytes(doc(body), "NuGet.Config")
    assert message in caught.value.message
    assert caught.value.path == "NuGet.Config"
    assert caught.value.line == line
    assert str(caught.value).startswith(f"NuGet.Config:{line}: ")


def test_missing_attribute_message_is_exactly_the_documented_one() -> None:
    body = "\n" * 7 + '<author name="a"><certificate fingerprint="AB" hashAlgorithm="SHA256" /></author>'
    with pytest.raises(ConfigError) as caught:
        parse_config_bytes(doc(body), "NuGet.Config")
    assert str(caught.value) == "NuGet.Config:12: certificate is missing the required attribute allowUntrustedRoot"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'<?xml version="1.0"?>\n<!DOCTYPE configuration [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>\n<configuration>&b;</configuration>',
         "DOCTYPE is not allowed"),
        (b'<?xml version="1.0"?>\n<!DOCTYPE configuration SYSTEM "http://127.0.0.1:9/evil.dtd">\n<configuration/>', "DOCTYPE is not allowed"),
        (b'<?xml version="1.0"?>\n<!DOCTYPE c [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<configuration>&x;</configuration>', "DOCTYPE is not allowed"),
    ],
)
def test_doctype_dtd_and_entities_are_refused(raw: bytes, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config_bytes(raw, "evil.config")
    assert message in caught.value.message and caught.value.line == 2


@pytest.mark.parametrize(
    ("raw", "message", "line"),
    [
        (b"<configuration>\n  <config>\n</configuration>", "not well-formed XML", 3),
        (b"<settings/>", "root element must be <configuration>", 1),
        (b"", "empty", None),
        (b"<configuration>&undefined;</configuration>", "not well-formed XML", 1),
        (b'<?xml version="1.0" encoding="no-such-codec"?><configuration/>', "cannot decode", None),
        (doc(config='<add key="signatureValidationMode" value="require"/><add key="signatureValidationMode" value="accept"/>'),
         "set twice", 3),
        (doc(config='<add key="signatureValidationMode"/>'), "add is missing the required attribute value", 3),
    ],
)
def test_unusable_files_are_refused_clearly(raw: bytes, message: str, line: int | None) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config_bytes(raw, "x.config")
    assert message in caught.value.message
    assert caught.value.line == line


def test_utf16_and_declared_latin1_files_parse() -> None:
    text = doc(f'<author name="Müller">{cert()}</author>').decode()
    utf16 = "\ufeff" + text.replace('encoding="utf-8"', 'encoding="utf-16"')
    assert signers_of(parse_config_bytes(utf16.encode("utf-16-le"), "u16.config"))[0].name == "Müller"
    latin1 = text.replace('encoding="utf-8"', 'encoding="iso-8859-1"').encode("latin-1")
    assert signers_of(parse_config_bytes(latin1, "l1.config"))[0].name == "Müller"


# -- what NuGet silently ignores ----------------------------------------------------------------


def test_exact_duplicates_and_second_clear_are_dropped_like_nuget() -> None:
    body = (
        f'<author name="a">{cert()}</author>\n<clear/>\n<author name="b">{cert()}</author>\n<clear/>\n'
        f'<author name="c">{cert()}</author>\n<author name="C">{cert()}</author>'
    )
    config = parse_config_bytes(doc(body), "NuGet.Config")
    # the second <clear/> repeats the first and is dropped; so is "C" (same attributes ignoring case)
    assert [s.name for s in signers_of(config)] == ["b", "c"]
    assert sorted(n.code for n in config.notes) == ["TP1014", "TP1014"]  # duplicate-item


def test_exact_repeat_after_a_clear_is_dropped_before_the_clear_applies() -> None:
    config = parse_config_bytes(doc(f'<author name="a">{cert()}</author><clear/><author name="a">{cert()}</author>'), "x")
    assert signers_of(config) == []


def test_section_names_are_case_sensitive_and_duplicate_sections_ignored() -> None:
    raw = doc(
        f'<author name="first">{cert()}</author>',
        extra=f'  <TrustedSigners><author name="miscased">{cert()}</author></TrustedSigners>\n'
        f'  <trustedSigners><author name="second-section">{cert()}</author></trustedSigners>\n',
    )
    config = parse_config_bytes(raw, "NuGet.Config")
    assert [s.name for s in signers_of(config)] == ["first"]
    assert {n.code for n in config.notes} == {"TP1013", "TP1012"}  # section-case, duplicate-section


def test_unknown_elements_and_owners_on_author_are_ignored_with_a_note() -> None:
    body = f'<author name="a">{cert()}<owners>x</owners><comment>hi</comment></author><add key="k" value="v"/>'
    config = parse_config_bytes(doc(body), "NuGet.Config")
    assert signers_of(config)[0].owners == ()
    assert sorted(n.code for n in config.notes) == ["TP1016", "TP1016", "TP1017"]  # unknown-element, owners-on-author


def test_owners_empty_items_are_kept() -> None:
    body = f'<repository name="r" serviceIndex="https://x.test/i.json">{cert()}<owners>a;;b;</owners></repository>'
    assert signers_of(parse_config_bytes(doc(body), "x"))[0].owners == ("a", "", "b", "")


def test_owners_cdata_is_text() -> None:
    body = f'<repository name="r" serviceIndex="https://x.test/i.json">{cert()}<owners><![CDATA[a & b;c]]></owners></repository>'
    assert signers_of(parse_config_bytes(doc(body), "x"))[0].owners == ("a & b", "c")


def test_mode_spelled_twice_with_other_case_uses_the_first() -> None:
    raw = doc(config='<add key="signatureValidationMode" value="require"/>\n<add key="SignatureValidationMode" value="accept"/>')
    config = parse_config_bytes(raw, "x")
    assert [n.code for n in config.notes] == ["TP1015"] and config.notes[0].where.line == 4  # duplicate-key


def test_sha1_and_unknown_algorithms_are_kept_for_lint_but_not_usable() -> None:
    # NuGet 6.12+ parses SHA1 (older versions refuse the file); an unknown name NuGet always refuses.
    # Both are kept with a finding so that lint can list every problem; TrustContext refuses them.
    body = f'<author name="a">\n{cert("A" * 40, "SHA1")}\n{cert(alg="MD5")}\n{cert(alg="")}\n{cert(alg="Sha256")}</author>'
    config = parse_config_bytes(doc(body), "x")
    certificates = signers_of(config)[0].certificates
    assert [(c.hash_algorithm, c.usable) for c in certificates] == [
        ("SHA1", False), ("MD5", False), ("", False), ("SHA256", True)]
    assert [(n.code, n.level, n.where.line) for n in config.notes] == [
        ("NU3043", "error", 6), ("TP1020", "error", 7), ("TP1020", "error", 8)]
    assert "'MD5'" in config.notes[1].message


@pytest.mark.parametrize(
    ("body", "code", "level", "line"),
    [
        (f'<author name="a">\n{cert(allow="maybe")}</author>', "TP1019", "error", 6),
        (f'<author name="a">\n{cert(allow="")}</author>', "TP1019", "error", 6),
        (f'<repository name="r" serviceIndex="https://x.test/i.json">{cert()}\n<owners>a b;c</owners></repository>', "TP1021", "error", 6),
        (f'<repository name="r" serviceIndex="https://x.test/i.json">{cert()}\n<owners>a;b;</owners></repository>', "TP1007", "warning", 6),
        (f'<repository name="r" serviceIndex="https://x.test/i.json">{cert()}\n<owners>a;;b</owners></repository>', "TP1007", "warning", 6),
    ],
)
def test_values_nuget_misreads_are_noted_with_their_line(body: str, code: str, level: str, line: int) -> None:
    config = parse_config_bytes(doc(body), "NuGet.Config")
    assert [(n.code, n.level, str(n.where)) for n in config.notes] == [(code, level, f"NuGet.Config:{line}")]
    assert config.notes[0].fix


@pytest.mark.parametrize("value", ["true", "false", "TRUE", " False ", "tRuE"])
def test_booleans_dotnet_parses_are_not_noted(value: str) -> None:
    assert parse_config_bytes(doc(f'<author name="a">{cert(allow=value)}</author>'), "x").notes == ()
