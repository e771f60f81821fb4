"""Grouped suggestions of `check` and the policy `init` writes, end to end on real signed packages.

The promise under test: run every suggested command (or make the suggested edit) and the same
`check` passes for every package the suggestions named; `init` then `check` passes for every package
`init` pinned. Packages are signed for real (test PKI, trustpolicy._internal.sign), commands run through the CLI.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest
from conftest import identity_of, make_package
from test_verify_support import first_data_offset, flip_byte

from trustpolicy._internal.sign import RepositoryOptions, sign_package
from trustpolicy.cli import main
from trustpolicy.testing.pki import Issued, TestPKI, write_certificates

FEED = "https://feed.example/v3/index.json"
OTHER_FEED = "https://other-feed.example/v3/index.json"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No real user or machine NuGet.Config: the user folder is a temporary one (it may be written)."""
    user = tmp_path / "user-nuget"
    user.mkdir()
    monkeypatch.setenv("TRUSTPOLICY_NUGET_USER_DIR", str(user))
    monkeypatch.setenv("TRUSTPOLICY_NUGET_MACHINE_DIR", "")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    work = tmp_path / "elsewhere"  # commands are run from a folder unrelated to the graph
    work.mkdir()
    monkeypatch.chdir(work)
    return user


class Signers:
    def __init__(self, pki: TestPKI) -> None:
        ca = pki.intermediate
        self.author_one = pki.issue_code_signing("Author One", issuer=ca)
        self.author_two = pki.issue_code_signing("Author Two", issuer=ca)
        self.author_two_renewed = pki.issue_code_signing("Author Two", issuer=ca)  # same name, new certificate
        self.feed = pki.issue_code_signing("Feed Repository", issuer=ca)
        self.other_feed = pki.issue_code_signing("Other Feed Repository", issuer=ca)


@pytest.fixture(scope="module")
def signers(pki: TestPKI) -> Signers:
    return Signers(pki)


@pytest.fixture(scope="module")
def roots(pki: TestPKI, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("roots") / "roots.pem"
    write_certificates(path, [pki.root.certificate])
    return str(path)


def signed(folder: Path, package_id: str, author: Issued | None, repository: Issued | None = None,
           owners: tuple[str, ...] = (), feed: str = FEED) -> Path:
    path = make_package(folder / f"{package_id}.1.0.0.nupkg", package_id, "1.0.0")
    if author is not None:
        sign_package(path, identity=identity_of(author), on_warning=lambda w: None)
    if repository is not None:
        sign_package(path, identity=identity_of(repository), repository=RepositoryOptions(feed, owners),
                     on_warning=lambda w: None)
    return path


def write_config(folder: Path, signers_xml: str, *, clear: bool = False) -> Path:
    path = folder / "NuGet.Config"
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n'
        '  <config>\n    <add key="signatureValidationMode" value="require" />\n  </config>\n'
        f'  <trustedSigners>\n{"    <clear />" if clear else ""}\n{signers_xml}\n  </trustedSigners>\n</configuration>\n',
        encoding="utf-8")
    return path


UNRELATED = ('    <author name="Unrelated">\n      <certificate fingerprint="' + "AB" * 32
             + '" hashAlgorithm="SHA256" allowUntrustedRoot="false" />\n    </author>')


def check(capsys: pytest.CaptureFixture[str], graph: Path, roots: str | None, *extra: str) -> tuple[int, dict]:
    """`check --format json` (roots: the --trust-store file; None: the bundled roots)."""
    store = ["--trust-store", roots] if roots else []
    code = main(["check", str(graph), *store, "--revocation", "off", "--no-cache", "--format", "json", *extra])
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, json.loads(out)


def verdicts(document: dict) -> dict[str, str]:
    return {p["id"]: p["verdict"] for p in document["packages"]}


def run_command(capsys: pytest.CaptureFixture[str], command: str) -> None:
    words = shlex.split(command)
    assert words[:2] == ["trustpolicy", "trust"], command
    assert main(words[1:]) == 0, (command, capsys.readouterr())
    capsys.readouterr()


@pytest.fixture
def graph(tmp_path: Path, signers: Signers) -> Path:
    """Several packages countersigned by one repository with different owners, an author with two
    certificates, and packages no signer can fix (unsigned, tampered)."""
    folder = tmp_path / "graph"
    folder.mkdir()
    signed(folder, "Feed.Alice", signers.author_one, signers.feed, ("alice",))
    signed(folder, "Feed.Bob", signers.author_one, signers.feed, ("bob",))
    signed(folder, "Feed.AliceCarol", signers.author_two, signers.feed, ("alice", "carol"))
    signed(folder, "Two.First", signers.author_two)
    signed(folder, "Two.Renewed", signers.author_two_renewed)
    make_package(folder / "Plain.Unsigned.1.0.0.nupkg", "Plain.Unsigned", "1.0.0")
    tamper(signed(folder, "Two.Tampered", signers.author_two))
    return folder


def tamper(package: Path) -> None:
    """One byte of the assembly changed: the manifest still reads, the signed hash no longer matches."""
    flip_byte(package, first_data_offset(package, b"lib/net8.0/Test.dll") + 3)


FIXABLE = {"Feed.Alice", "Feed.Bob", "Feed.AliceCarol", "Two.First", "Two.Renewed"}


def test_one_suggestion_per_signer_and_running_them_makes_check_pass(
        capsys: pytest.CaptureFixture[str], graph: Path, roots: str, isolated: Path) -> None:
    write_config(graph, UNRELATED)  # no <clear/>: NuGet writes new signers to the user file
    code, before = check(capsys, graph, roots)
    assert code == 1 and all(verdicts(before)[pid] == "invalid" for pid in FIXABLE)

    suggestions = before["suggestions"]
    assert [(s["kind"], s["name"]) for s in suggestions] == [("repository", "feed.example"), ("author", "Author Two")]
    feed, author = suggestions
    assert feed["serviceIndex"] == FEED and feed["owners"] == ["alice", "bob", "carol"]  # merged, one entry
    assert sorted(feed["packages"]) == ["Feed.Alice 1.0.0", "Feed.AliceCarol 1.0.0", "Feed.Bob 1.0.0"]
    assert len(feed["commands"]) == 1 and "--owners alice;bob;carol" in shlex.join(shlex.split(feed["commands"][0])).replace("'", "")
    assert feed["withoutOwners"] and "--owners" not in feed["withoutOwners"][0]
    assert sorted(author["packages"]) == ["Two.First 1.0.0", "Two.Renewed 1.0.0"]
    assert len(author["fingerprints"]) == 2 and len(author["commands"]) == 2  # trust author, then trust certificate
    assert "trust certificate 'Author Two'" in author["commands"][1]
    for suggestion in suggestions:
        assert suggestion["allowUntrustedRoot"] == [] and suggestion["note"] is None
        for command in suggestion["commands"]:
            assert shlex.split(command)[-2:] == ["--configfile", str(isolated / "NuGet.Config")]  # read by `check`
    # every package of a suggestion carries all of its commands as its fix; the others carry no trust command
    packages = {p["id"]: p for p in before["packages"]}
    assert packages["Feed.Bob"]["fix"] == "\n".join(feed["commands"])
    assert "trustpolicy trust" not in (packages["Two.Tampered"]["fix"] or "")
    assert packages["Plain.Unsigned"]["fix"] is None

    for suggestion in suggestions:
        for command in suggestion["commands"]:
            run_command(capsys, command)  # each command succeeds, run as printed
    code, after = check(capsys, graph, roots)
    assert {pid: v for pid, v in verdicts(after).items() if pid in FIXABLE} == dict.fromkeys(FIXABLE, "valid")
    assert verdicts(after)["Plain.Unsigned"] == "invalid" and verdicts(after)["Two.Tampered"] == "invalid"
    assert after["suggestions"] == [] and code == 1


def test_the_option_without_owners_also_passes(capsys: pytest.CaptureFixture[str], graph: Path, roots: str) -> None:
    write_config(graph, UNRELATED, clear=True)  # a <clear/>: new signers go to this file
    _, before = check(capsys, graph, roots)
    feed = before["suggestions"][0]
    assert all(shlex.split(c)[-2:] == ["--configfile", str(graph / "NuGet.Config")] for c in feed["withoutOwners"])
    for command in feed["withoutOwners"]:
        run_command(capsys, command)
    _, after = check(capsys, graph, roots)
    assert all(verdicts(after)[p.split()[0]] == "valid" for p in feed["packages"])
    assert "<owners>" not in (graph / "NuGet.Config").read_text()


def test_an_existing_repository_entry_is_extended_not_duplicated(
        capsys: pytest.CaptureFixture[str], graph: Path, roots: str, signers: Signers) -> None:
    """The nuget.org case: the repository is trusted for some owners; the others' packages fail. The
    suggestion edits that entry (merged owners) instead of a `trust repository` that would be refused."""
    from trustpolicy._internal.signature import fingerprint

    feed_fp = fingerprint(signers.feed.asn1)
    existing = (f'    <repository name="our feed" serviceIndex="{FEED}">\n'
                f'      <certificate fingerprint="{feed_fp}" hashAlgorithm="SHA256" allowUntrustedRoot="false" />\n'
                '      <owners>alice</owners>\n    </repository>')
    config = write_config(graph, existing, clear=True)
    _, before = check(capsys, graph, roots)
    assert verdicts(before)["Feed.Alice"] == "valid" and verdicts(before)["Feed.Bob"] == "invalid"
    feed = next(s for s in before["suggestions"] if s["kind"] == "repository")
    assert feed["name"] == "our feed" and feed["commands"] == [] and feed["replaces"]["path"] == str(config)
    assert feed["owners"] == ["alice", "bob"] and feed["packages"] == ["Feed.Bob 1.0.0"]  # AliceCarol: alice is trusted

    # The old advice, `trust repository` for the failing package, is refused: the service index exists.
    assert main(["trust", "repository", "feed", str(graph / "Feed.Bob.1.0.0.nupkg"), "--owners", "bob",
                 "--configfile", str(config)]) == 2
    capsys.readouterr()

    text = config.read_text()
    config.write_text(text.replace(existing, "    " + feed["xml"].replace("\n", "\n    ")))
    _, after = check(capsys, graph, roots)
    assert verdicts(after)["Feed.Bob"] == "valid" and verdicts(after)["Feed.Alice"] == "valid"


def test_a_second_repository_and_a_new_certificate_of_a_trusted_repository(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, roots: str, signers: Signers) -> None:
    """Two repositories are two suggestions; an existing entry that only lacks a certificate gets a
    `trust certificate` command for its own file."""
    from trustpolicy._internal.signature import fingerprint

    folder = tmp_path / "two-feeds"
    folder.mkdir()
    signed(folder, "A.One", signers.author_one, signers.feed, ("alice",))
    signed(folder, "B.One", signers.author_one, signers.other_feed, ("bob",), feed=OTHER_FEED)
    signed(folder, "B.Two", None, signers.other_feed, ("bob",), feed=OTHER_FEED)  # a repository primary signature
    old_fp = fingerprint(signers.author_one.asn1)  # a certificate the feed does not use
    config = write_config(folder, (f'    <repository name="feed" serviceIndex="{FEED}">\n'
                                   f'      <certificate fingerprint="{old_fp}" hashAlgorithm="SHA256" '
                                   'allowUntrustedRoot="false" />\n      <owners>alice</owners>\n    </repository>'),
                          clear=True)
    _, before = check(capsys, folder, roots)
    kinds = {s["name"]: s for s in before["suggestions"]}
    assert set(kinds) == {"feed", "other-feed.example"}
    assert kinds["feed"]["commands"] == [shlex.join(["trustpolicy", "trust", "certificate", "feed",
                                                     fingerprint(signers.feed.asn1), "--configfile", str(config)])]
    assert sorted(kinds["other-feed.example"]["packages"]) == ["B.One 1.0.0", "B.Two 1.0.0"]
    for suggestion in before["suggestions"]:
        for command in suggestion["commands"]:
            run_command(capsys, command)
    _, after = check(capsys, folder, roots)
    assert set(verdicts(after).values()) == {"valid"}


def test_untrusted_root_is_suggested_loudly(capsys: pytest.CaptureFixture[str], graph: Path, tmp_path: Path) -> None:
    """With a trust store that lacks the PKI's root, the suggestion pins the certificates with
    allowUntrustedRoot and says so; the commands still make the packages pass."""
    other = TestPKI(tmp_path / "other-pki")
    store = tmp_path / "other-root.pem"
    write_certificates(store, [other.root.certificate])
    write_config(graph, UNRELATED, clear=True)
    _, before = check(capsys, graph, str(store))
    assert before["suggestions"]
    for suggestion in before["suggestions"]:
        assert suggestion["allowUntrustedRoot"] == suggestion["fingerprints"]
        assert "WARNING" in suggestion["note"] and "allowUntrustedRoot" in suggestion["note"]
        assert all("--allow-untrusted-root" in c for c in suggestion["commands"])
        for command in suggestion["commands"]:
            run_command(capsys, command)
    _, after = check(capsys, graph, str(store))
    assert all(verdicts(after)[pid] == "valid" for pid in FIXABLE)


def test_table_prints_each_suggestion_once(capsys: pytest.CaptureFixture[str], graph: Path, roots: str) -> None:
    write_config(graph, UNRELATED, clear=True)
    assert main(["check", str(graph), "--trust-store", roots, "--revocation", "off", "--no-cache"]) == 1
    out = capsys.readouterr().out
    assert out.count("trustpolicy trust repository") == 2  # once, and once more without owners: not per package
    assert out.count("fix: suggestion 1 below") == 3 and out.count("fix: suggestion 2 below") == 2
    assert "--owners 'alice;bob;carol'" in out and "no owner check" in out


# --- init -----------------------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "fixtures" / "demo"


def test_init_then_check_passes_and_skips_what_fails_integrity(
        capsys: pytest.CaptureFixture[str], graph: Path, roots: str, tmp_path: Path) -> None:
    config = tmp_path / "pinned" / "NuGet.Config"
    config.parent.mkdir()
    assert main(["init", str(graph), "--configfile", str(config), "--trust-store", roots, "--revocation", "off"]) == 0
    out, err = capsys.readouterr()
    assert "skipped Two.Tampered 1.0.0" in err and "skipped Plain.Unsigned 1.0.0" in err
    text = config.read_text()
    assert 'allowUntrustedRoot="true"' not in text
    assert "<owners>alice;bob;carol</owners>" in text and '<author name="Author Two">' in text
    assert "Author One" not in text  # its packages are allowed through the repository already

    code, after = check(capsys, graph, roots, "--configfile", str(config), "--mode", "require")
    assert {pid: v for pid, v in verdicts(after).items() if pid in FIXABLE} == dict.fromkeys(FIXABLE, "valid")
    assert verdicts(after)["Two.Tampered"] == "invalid" and verdicts(after)["Plain.Unsigned"] == "invalid"

    before = config.read_bytes()  # a second init finds nothing to add
    assert main(["init", str(graph), "--configfile", str(config), "--trust-store", roots, "--revocation", "off"]) == 0
    assert config.read_bytes() == before
    assert "nothing to add" in capsys.readouterr().err


def test_init_on_a_tampered_package_alone_learns_nothing(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, roots: str, signers: Signers) -> None:
    folder = tmp_path / "only-tampered"
    folder.mkdir()
    tamper(signed(folder, "Lone.Tampered", signers.author_one))
    assert main(["init", str(folder), "--trust-store", roots, "--revocation", "off"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and "skipped Lone.Tampered 1.0.0" in err and "Author One" not in err + out


def test_init_refuses_untrusted_roots_unless_asked(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    shutil.copytree(DEMO, demo)
    config = tmp_path / "pinned" / "NuGet.Config"
    config.parent.mkdir()
    common = ["--revocation", "off", "--configfile", str(config)]

    # The demo's roots are in no trust store: without the flag nothing is pinned, and each signer says why.
    assert main(["init", str(demo), *common]) == 1
    err = capsys.readouterr().err
    for name in ("Contoso Ltd", "Northwind Traders", "demo-feed.example"):
        assert "not pinned: " in err and f"{name!r}" in err
    assert "--allow-untrusted-root" in err and "--extra-roots" in err
    assert not config.exists()

    # With the flag: pinned, loudly, and the graph passes (all but the unsigned and the tampered package).
    assert main(["init", str(demo), *common, "--allow-untrusted-root"]) == 0
    err = capsys.readouterr().err
    assert err.count("WARNING") == 3
    assert config.read_text().count('allowUntrustedRoot="true"') == 3
    code, report = check(capsys, demo, None, "--configfile", str(config), "--mode", "require",
                         "--packages-dir", str(demo / "packages"))
    assert verdicts(report) == {"Contoso.Logging": "valid", "Fabrikam.Json": "valid", "Northwind.Utils": "valid",
                                "Legacy.Unsigned": "invalid", "Contoso.Tampered": "invalid"}


def test_init_with_the_root_trusted_pins_without_untrusted_roots(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    shutil.copytree(DEMO, demo)
    root = str(demo / "pki" / "demo-root-ca.pem")
    assert main(["init", str(demo), "--revocation", "off", "--extra-roots", root]) == 0
    xml = capsys.readouterr().out
    assert xml.startswith("<trustedSigners>") and 'allowUntrustedRoot="true"' not in xml
    config = tmp_path / "NuGet.Config"
    config.write_text(f'<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n{xml}</configuration>\n')
    assert main(["check", str(demo), "--configfile", str(config), "--mode", "require", "--extra-roots", root,
                 "--packages-dir", str(demo / "packages"), "--revocation", "off", "--no-cache", "--format", "json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [p["id"] for p in report["packages"] if p["verdict"] == "invalid"] == ["Legacy.Unsigned", "Contoso.Tampered"]



def test_a_pin_with_an_authority_comes_before_allow_untrusted_root(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, roots: str, signers: Signers) -> None:
    """Countersigned by a repository whose root no store trusts, authored by a signer whose root is
    trusted: the author is suggested, without allowUntrustedRoot; the repository is not."""
    other = TestPKI(tmp_path / "other-pki", fresh_keys=True)  # keys of its own: no certificate shares one
    folder = tmp_path / "mixed"
    folder.mkdir()
    signed(folder, "Mixed.One", signers.author_one, other.leaf, ("alice",))
    write_config(folder, UNRELATED, clear=True)
    _, before = check(capsys, folder, roots)
    (suggestion,) = before["suggestions"]
    assert (suggestion["kind"], suggestion["name"], suggestion["allowUntrustedRoot"]) == ("author", "Author One", [])
    for command in suggestion["commands"]:
        run_command(capsys, command)
    _, after = check(capsys, folder, roots)
    assert verdicts(after) == {"Mixed.One": "valid"}


def test_a_package_without_owners_makes_an_entry_without_owners(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, roots: str, signers: Signers) -> None:
    folder = tmp_path / "ownerless"
    folder.mkdir()
    signed(folder, "Owned", signers.author_one, signers.feed, ("alice",))
    signed(folder, "Unowned", signers.author_one, signers.feed, ())
    write_config(folder, UNRELATED, clear=True)
    _, before = check(capsys, folder, roots)
    (suggestion,) = before["suggestions"]
    assert suggestion["kind"] == "repository" and suggestion["owners"] == [] and suggestion["withoutOwners"] is None
    assert "name no owner" in suggestion["note"] and "--owners" not in suggestion["commands"][0]
    for command in suggestion["commands"]:
        run_command(capsys, command)
    _, after = check(capsys, folder, roots)
    assert verdicts(after) == {"Owned": "valid", "Unowned": "valid"}
