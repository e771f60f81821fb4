"""The gate's V3 vocabulary on its own: names it accepts, how it reads a service index, how it rewrites
upstream documents, and the reason phrases it gives (the end-to-end suites show them on the wire)."""

from __future__ import annotations

import json

import pytest

from trustpolicy.models import Issue, PackageVerdict, SignatureReport, Status, StepResult
from trustpolicy.serve.gate import decide, refusal_reason
from trustpolicy.serve.protocol import (
    BadName,
    FeedUrls,
    Rewriter,
    is_feed_name,
    package_id,
    package_version,
    parse_service_index,
    registration_tail,
)

URLS = FeedUrls.of("http://127.0.0.1:5555", "nuget.org")
UP = "https://api.example/v3/"


@pytest.mark.parametrize("text, lower", [("Contoso.Lib", "contoso.lib"), ("A", "a"), ("Newtonsoft.Json", "newtonsoft.json"),
                                         ("my_pkg-2.x", "my_pkg-2.x"), ("x" * 100, "x" * 100)])
def test_valid_ids(text: str, lower: str) -> None:
    assert package_id(text) == lower


@pytest.mark.parametrize("text", ["", ".", "..", "a..b", ".a", "a.", "a/b", "a b", "a%2Fb", "x" * 101, "bär", "a\x00"])
def test_invalid_ids(text: str) -> None:
    with pytest.raises(BadName):
        package_id(text)


@pytest.mark.parametrize("text, expected", [("1.2.0", "1.2.0"), ("1.2.0-beta.1", "1.2.0-beta.1"), ("1.0.0.1", "1.0.0.1"),
                                            ("1.0.0-RC", "1.0.0-rc"), ("1.2.0-Beta", "1.2.0-beta")])
def test_versions_as_the_flat_container_writes_them(text: str, expected: str) -> None:
    assert package_version(text) == expected


@pytest.mark.parametrize("text", ["1.0", "1.0.0.0", "01.0.0", "1.0.0+build", "banana", "", " 1.0.0", "1" * 65, "1.0.0-01"])
def test_versions_refused(text: str) -> None:
    with pytest.raises(BadName):
        package_version(text)


def test_feed_names_and_registration_paths() -> None:
    assert is_feed_name("nuget.org") and is_feed_name("My Feed") and is_feed_name("contoso-internal")
    assert not any(is_feed_name(n) for n in ("", ".hidden", "..", "a/b", "a\\b", "x" * 65, "name.", "a%2f"))
    assert registration_tail("contoso.lib/page/1.0.0/2.0.0.json") == "contoso.lib/page/1.0.0/2.0.0.json"
    for bad in ("../x.json", "a/../b.json", "a//b.json", "a/b.txt", "/a.json", "a/..json", "a\\b.json", "a" * 600 + ".json"):
        with pytest.raises(BadName):
            registration_tail(bad)


def test_service_index_reading() -> None:
    document = {"version": "3.0.0", "resources": [
        {"@id": UP + "flat", "@type": "PackageBaseAddress/3.0.0"},
        {"@id": UP + "reg/", "@type": "RegistrationsBaseUrl"},
        {"@id": UP + "reg-gz-semver2/", "@type": ["RegistrationsBaseUrl/3.6.0", "RegistrationsBaseUrl/Versioned"]},
        {"@id": "relative/search", "@type": "SearchQueryService"},  # relative: skipped, as NuGet does
        {"@id": "https://search.example/query", "@type": "SearchQueryService/3.0.0-beta"},
    ]}
    resources = parse_service_index(document)
    assert resources.flat == UP + "flat/"
    assert resources.registrations == (UP + "reg-gz-semver2/", UP + "reg/")  # SemVer 2 hive first
    assert resources.search == "https://search.example/query" and resources.autocomplete is None
    for bad in ({"resources": []}, {"version": "2.0.0", "resources": []}, [], {"version": "3.0.0"}):
        with pytest.raises(ValueError):
            parse_service_index(bad)


def test_rewriting_leaves_no_way_around_the_gate() -> None:
    reg = UP + "reg/"
    index = {"@id": reg + "x/index.json", "count": 3, "items": [
        {"@id": reg + "x/page/1.0.0/1.0.0.json", "lower": "1.0.0", "upper": "1.0.0", "items": [
            {"@id": reg + "x/1.0.0.json", "packageContent": "https://cdn.example/x.1.0.0.nupkg",
             "catalogEntry": {"@id": UP + "catalog/x.json", "id": "X", "version": "1.0.0+meta",
                              "packageContent": "https://cdn.example/x.1.0.0.nupkg",
                              "dependencyGroups": [{"dependencies": [{"id": "Y", "registration": reg + "y/index.json"}]}]}},
            {"@id": reg + "x/weird.json", "packageContent": "https://cdn.example/weird.nupkg",
             "catalogEntry": {"id": "X", "version": "not a version"}},  # no way to name it: dropped
        ]},
        {"@id": reg + "x/page/2.0.0/3.0.0.json", "lower": "2.0.0", "upper": "3.0.0"},  # fetched later, through the gate
        {"@id": "https://elsewhere.example/page.json", "lower": "4.0.0", "upper": "5.0.0"},  # would bypass: dropped
    ]}
    out = Rewriter(URLS, (reg,)).document(index)
    gate = "http://127.0.0.1:5555/feeds/nuget.org/v3/"
    assert out["@id"] == gate + "registration/0/x/index.json"
    assert [p["@id"] for p in out["items"]] == [gate + "registration/0/x/page/1.0.0/1.0.0.json",
                                               gate + "registration/0/x/page/2.0.0/3.0.0.json"]
    leaves = out["items"][0]["items"]
    assert len(leaves) == 1
    assert leaves[0]["packageContent"] == leaves[0]["catalogEntry"]["packageContent"] == gate + "flat/x/1.0.0/x.1.0.0.nupkg"
    assert leaves[0]["catalogEntry"]["@id"] == UP + "catalog/x.json"  # not a download: left alone
    assert leaves[0]["catalogEntry"]["dependencyGroups"][0]["dependencies"][0]["registration"] == gate + "registration/0/y/index.json"
    assert "cdn.example" not in json.dumps(out) and "elsewhere.example" not in json.dumps(out)

    leaf_document = {"@id": reg + "x/1.0.0.json", "catalogEntry": UP + "catalog/x.json", "packageContent": "https://cdn.example/a"}
    assert Rewriter(URLS, (reg,)).document(leaf_document, ("x", "1.0.0"))["packageContent"] == gate + "flat/x/1.0.0/x.1.0.0.nupkg"
    assert "packageContent" not in json.dumps(Rewriter(URLS, (reg,)).document(leaf_document))


def _verdict(codes: list[tuple[str, str, str | None]], *, valid: bool = False, package: tuple[str, str] = ("Contoso.Lib", "1.2.0"),
             subject: str = "CN=Northwind Traders, O=Northwind") -> PackageVerdict:
    issues = tuple(Issue(c, level, "m", sig) for c, level, sig in codes)
    step = StepResult("trust", Status.VALID if valid else Status.DISALLOWED, issues)
    return PackageVerdict("/tmp/download", package[0], package[1], True, (step,),
                          (SignatureReport("author", "primary", subject),))


def test_decisions_and_reason_phrases() -> None:
    untrusted = _verdict([("NU3027", "warning", "primary"), ("NU3034", "error", "primary")])
    assert decide("require", untrusted, "contoso.lib", "1.2.0").reason == "NU3034 Contoso.Lib 1.2.0: signer 'Northwind Traders' is not trusted"
    assert decide("require", untrusted, "contoso.lib", "1.2.0").status == 403
    audit = decide("audit", untrusted, "contoso.lib", "1.2.0")
    assert (audit.status, audit.outcome) == (200, "audit-served")
    assert decide("accept", _verdict([("NU3034", "warning", "primary")], valid=True), "contoso.lib", "1.2.0").status == 200
    # the package asked for, and nothing else
    assert decide("audit", _verdict([], valid=True, package=("Other", "1.2.0")), "contoso.lib", "1.2.0").status == 502
    assert decide("require", _verdict([], valid=True, package=("Contoso.Lib", "1.2")), "contoso.lib", "1.2.0").status == 200
    assert decide("audit", _verdict([("TP0003", "error", None)]), "contoso.lib", "1.2.0").status == 502
    # quoted and odd names still give one printable line
    quoted = _verdict([("NU3034", "error", "primary")], subject='CN="Fabrikam, Inc", O=F')
    assert refusal_reason(quoted, "A", "1.0.0") == "NU3034 A 1.0.0: signer 'Fabrikam, Inc' is not trusted"
    odd = _verdict([("NU3034", "error", "primary")], subject="CN=Évil\r\nX-Injected: 1" + "x" * 300)
    phrase = refusal_reason(odd, "A", "1.0.0")
    assert phrase.isprintable() and phrase.isascii() and "\n" not in phrase and len(phrase) <= 200
    assert refusal_reason(_verdict([("NU3034", "error", None)]), "A", "1.0.0") == "NU3034 A 1.0.0: no trusted signers are configured"
    assert refusal_reason(_verdict([("NU3018", "error", "primary")]), "A", "1.0.0").startswith("NU3018 A 1.0.0: signing certificate")
