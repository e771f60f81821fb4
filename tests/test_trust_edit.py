"""`trustpolicy trust` edits: only what must change, byte for byte (scenarios 99-103)."""

from __future__ import annotations

import difflib
import os
import stat
from pathlib import Path

import pytest

from trustpolicy._internal.config import load_trust_settings
from trustpolicy._internal.config.edit import ConfigEditor, certificate_node, signer_node
from trustpolicy._internal.config.hierarchy import MACHINE_DIR_ENV, USER_DIR_ENV
from trustpolicy.cli import main

CONFIGS = Path(__file__).parent / "configs"
A = "A" * 64
B = "B" * 64
FABRIKAM = "F23175B9B052CE9C9D7E1546316F48A422DA3051FC79F4DB58ED5D78E372CEEC"


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in tmp_path with user and machine config directories of our own."""
    monkeypatch.setenv(USER_DIR_ENV, str(tmp_path / "user"))
    monkeypatch.setenv(MACHINE_DIR_ENV, str(tmp_path / "machine"))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def copy(name: str, dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes((CONFIGS / name).read_bytes())
    return dest


def only_inserted(old: bytes, new: bytes, block: bytes | str) -> None:
    """new is old with exactly `block` inserted somewhere, and nothing else changed."""
    block = block.encode() if isinstance(block, str) else block
    at, found = -1, False
    while (at := new.find(block, at + 1)) >= 0:
        found = found or new[:at] + new[at + len(block) :] == old
    assert found, f"not a pure insertion of {block!r}:\n{new!r}"


def only_removed(old: bytes, new: bytes, block: bytes | str) -> None:
    only_inserted(new, old, block)


def line_changes(old: bytes, new: bytes) -> list[tuple[str, list[bytes], list[bytes]]]:
    """Changed runs of lines; lines not listed are byte-identical and in place."""
    a, b = old.splitlines(keepends=True), new.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    return [(op, a[i1:i2], b[j1:j2]) for op, i1, i2, j1, j2 in matcher.get_opcodes() if op != "equal"]


def run(*argv: str) -> int:
    return main(["trust", *argv])


# -- certificate ---------------------------------------------------------------------------------


def test_certificate_added_to_existing_author_touches_nothing_else(isolated: Path) -> None:
    path = copy("realworld-bom-crlf.config", isolated / "NuGet.Config")
    old = path.read_bytes()
    assert run("certificate", "Fabrikam", A.lower(), "--configfile", str(path)) == 0
    only_inserted(old, path.read_bytes(), f'\r\n      <certificate fingerprint="{A}" hashAlgorithm="SHA256" allowUntrustedRoot="false" />')
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    fabrikam = load_trust_settings(configfile=path).signers[0]
    assert [c.fingerprint for c in fabrikam.certificates] == [FABRIKAM, A]


def test_certificate_for_a_new_name_creates_an_author_at_the_end(isolated: Path) -> None:
    path = copy("realworld-bom-crlf.config", isolated / "NuGet.Config")
    old = path.read_bytes()
    assert run("certificate", "newco", B, "--algorithm", "sha256", "--allow-untrusted-root", "--configfile", str(path)) == 0
    only_inserted(
        old,
        path.read_bytes(),
        '\r\n    <author name="newco">'
        f'\r\n      <certificate fingerprint="{B}" hashAlgorithm="SHA256" allowUntrustedRoot="true" />'
        "\r\n    </author>",
    )
    assert [s.name for s in load_trust_settings(configfile=path).signers] == ["Fabrikam", "nuget.org", "newco"]


def test_same_certificate_twice_fails_and_leaves_the_file(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = copy("realworld-bom-crlf.config", isolated / "NuGet.Config")
    old = path.read_bytes()
    assert run("certificate", "Fabrikam", FABRIKAM.lower(), "--configfile", str(path)) == 2
    assert "already trusts" in capsys.readouterr().err
    assert path.read_bytes() == old


@pytest.mark.parametrize(
    ("fingerprint", "message"),
    [("xyz", "not hexadecimal"), ("AB" * 20, "SHA-1 fingerprint"), ("AB" * 31, "has 64 hex digits, not 62")],
)
def test_bad_fingerprints_are_refused(isolated: Path, capsys: pytest.CaptureFixture[str], fingerprint: str, message: str) -> None:
    path = isolated / "NuGet.Config"
    assert run("certificate", "x", fingerprint, "--configfile", str(path)) == 2
    assert message in capsys.readouterr().err
    assert not path.exists()


def test_sha384_fingerprint(isolated: Path) -> None:
    path = isolated / "c.config"
    assert run("certificate", "x", "ab" * 48, "--algorithm", "SHA384", "--configfile", str(path)) == 0
    cert = load_trust_settings(configfile=path).signers[0].certificates[0]
    assert (cert.hash_algorithm, cert.written_fingerprint) == ("SHA384", "AB" * 48)


# -- new files and missing sections --------------------------------------------------------------


def test_missing_configfile_is_created_minimal_and_valid(isolated: Path) -> None:
    path = isolated / "new" / "NuGet.Config"
    assert run("certificate", "x", A, "--configfile", str(path)) == 0
    assert path.read_text() == (
        '<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n  <trustedSigners>\n    <author name="x">\n'
        f'      <certificate fingerprint="{A}" hashAlgorithm="SHA256" allowUntrustedRoot="false" />\n'
        "    </author>\n  </trustedSigners>\n</configuration>\n"
    )


def test_section_created_in_a_file_without_one(isolated: Path) -> None:
    path = copy("other-sections.config", isolated / "NuGet.Config")
    old = path.read_bytes()
    assert run("certificate", "x", A, "--configfile", str(path)) == 0
    only_inserted(
        old,
        path.read_bytes(),
        f'\n  <trustedSigners>\n    <author name="x">\n      <certificate fingerprint="{A}" hashAlgorithm="SHA256" '
        'allowUntrustedRoot="false" />\n    </author>\n  </trustedSigners>',
    )


@pytest.mark.parametrize(
    "text",
    ["<configuration/>", "<configuration>\n  <trustedSigners />\n</configuration>\n", "<configuration><trustedSigners></trustedSigners></configuration>"],
)
def test_self_closing_and_inline_elements(isolated: Path, text: str) -> None:
    path = isolated / "c.config"
    path.write_text(text)
    assert run("certificate", "x", A, "--configfile", str(path)) == 0
    assert [s.name for s in load_trust_settings(configfile=path).signers] == ["x"]


def test_tab_indented_file_gets_tabs(isolated: Path) -> None:
    path = copy("tabs-comments.config", isolated / "NuGet.Config")
    old = path.read_bytes()
    assert run("certificate", "x", A, "--configfile", str(path)) == 0
    block = f'\n\t\t<author name="x">\n\t\t\t<certificate fingerprint="{A}" hashAlgorithm="SHA256" allowUntrustedRoot="false" />\n\t\t</author>'
    only_inserted(old, path.read_bytes(), block)


def test_latin1_file_keeps_its_encoding(isolated: Path) -> None:
    path = isolated / "c.config"
    text = '<?xml version="1.0" encoding="iso-8859-1"?>\n<configuration>\n  <!-- Zürich -->\n</configuration>\n'
    path.write_bytes(text.encode("latin-1"))
    assert run("certificate", "Müller", A, "--configfile", str(path)) == 0
    raw = path.read_bytes()
    assert "<!-- Zürich -->".encode("latin-1") in raw and 'name="Müller"'.encode("latin-1") in raw
    assert load_trust_settings(configfile=path).signers[0].name == "Müller"


def test_names_with_markup_are_escaped(isolated: Path) -> None:
    path = isolated / "c.config"
    assert run("certificate", 'a "quoted" <name> & co', A, "--configfile", str(path)) == 0
    assert load_trust_settings(configfile=path).signers[0].name == 'a "quoted" <name> & co'


# -- remove and list -------------------------------------------------------------------------------


def test_remove_deletes_exactly_the_element_lines(isolated: Path) -> None:
    path = copy("realworld-bom-crlf.config", isolated / "NuGet.Config")
    old = path.read_bytes()
    assert run("remove", "Fabrikam", "--configfile", str(path)) == 0
    only_removed(
        old,
        path.read_bytes(),
        '\r\n    <author name="Fabrikam">'
        f'\r\n      <certificate fingerprint="{FABRIKAM}" hashAlgorithm="SHA256" allowUntrustedRoot="true" />'
        "\r\n    </author>",
    )
    assert [s.name for s in load_trust_settings(configfile=path).signers] == ["nuget.org"]


def test_remove_unknown_name_changes_nothing(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = copy("policy-example.config", isolated / "NuGet.Config")
    old, mtime = path.read_bytes(), path.stat().st_mtime_ns
    assert run("remove", "nobody", "--configfile", str(path)) == 0
    assert "No trusted signer named 'nobody'" in capsys.readouterr().out
    assert path.read_bytes() == old and path.stat().st_mtime_ns == mtime


def test_remove_inline_element_keeps_the_line(isolated: Path) -> None:
    path = isolated / "c.config"
    path.write_text(
        f'<configuration><trustedSigners><author name="a"><certificate fingerprint="{A}" hashAlgorithm="SHA256" allowUntrustedRoot="false"/></author>'
        f'<author name="b"><certificate fingerprint="{B}" hashAlgorithm="SHA256" allowUntrustedRoot="false"/></author></trustedSigners></configuration>'
    )
    assert run("remove", "a", "--configfile", str(path)) == 0
    assert path.read_text().startswith('<configuration><trustedSigners><author name="b">')


def test_list(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = isolated / "empty.config"
    empty.write_text("<configuration/>")
    assert run("list", "--configfile", str(empty)) == 0
    assert "There are no trusted signers." in capsys.readouterr().out
    path = copy("policy-example.config", isolated / "NuGet.Config")
    assert run("--configfile", str(path)) == 0  # list is the default verb
    out = capsys.readouterr().out
    assert " 3. nuget.org [repository]" in out
    assert "[U] SHA256 - F23175B9B052CE9C9D7E1546316F48A422DA3051FC79F4DB58ED5D78E372CEEC" in out
    assert "Service index: https://api.nuget.org/v3/index.json" in out


# -- where writes go without --configfile ----------------------------------------------------------


def test_without_configfile_new_signers_go_to_the_user_file(isolated: Path) -> None:
    repo = isolated / "repo"
    copy("policy-example.config", repo / "sub" / "nuget.config")  # has <clear/>: the closest clearing file
    (repo / "sub" / "nuget.config").write_text((repo / "sub" / "nuget.config").read_text().replace("    <clear />\n    <!--", "    <!--"))
    os.chdir(repo / "sub")
    assert run("certificate", "x", A) == 0
    user = isolated / "user" / "NuGet.Config"
    text = user.read_text()
    assert '<add key="nuget.org" value="https://api.nuget.org/v3/index.json" protocolVersion="3" />' in text  # as NuGet creates it
    assert f'fingerprint="{A}"' in text
    assert "x" in [s.name for s in load_trust_settings(directory=repo / "sub").signers]


def test_without_configfile_writes_go_to_the_closest_file_with_clear(isolated: Path) -> None:
    repo = isolated / "repo"
    clearing = copy("policy-example.config", repo / "nuget.config")
    (repo / "sub").mkdir()
    (repo / "sub" / "nuget.config").write_text(f'<configuration><trustedSigners><author name="sub"><certificate fingerprint="{B}" hashAlgorithm="SHA256" allowUntrustedRoot="false"/></author></trustedSigners></configuration>')
    os.chdir(repo / "sub")
    old = clearing.read_bytes()
    assert run("certificate", "x", A) == 0
    new = clearing.read_bytes()
    block = new[new.index(b'\n    <author name="x">') : new.index(b"</author>", new.index(b'<author name="x">')) + 9]
    only_inserted(old, new, block)
    assert not (isolated / "user" / "NuGet.Config").exists()


def test_machine_wide_files_are_never_written(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    machine = isolated / "machine" / "corp.config"
    machine.parent.mkdir()
    machine.write_text(f'<configuration><trustedSigners><author name="corp"><certificate fingerprint="{A}" hashAlgorithm="SHA256" allowUntrustedRoot="false"/></author></trustedSigners></configuration>')
    before = machine.read_bytes()
    (isolated / "work").mkdir()
    os.chdir(isolated / "work")
    assert run("certificate", "corp", B) == 0  # copied, with the new certificate, into the user file
    settings = load_trust_settings(directory=isolated / "work")
    corp = [s for s in settings.signers if s.name == "corp"]
    assert len(corp) == 1 and [c.fingerprint for c in corp[0].certificates] == [A, B]
    assert corp[0].source.path == str(isolated / "user" / "NuGet.Config")
    assert machine.read_bytes() == before
    assert run("remove", "corp") == 0
    assert "read-only" in capsys.readouterr().out
    assert machine.read_bytes() == before
    assert [s.name for s in load_trust_settings(directory=isolated / "work").signers] == ["corp"]  # the machine one


def test_remove_also_removes_the_farther_entries_it_replaced(isolated: Path) -> None:
    user = isolated / "user" / "NuGet.Config"
    user.parent.mkdir()
    user.write_text(f'<configuration><trustedSigners><author name="x"><certificate fingerprint="{A}" hashAlgorithm="SHA256" allowUntrustedRoot="false"/></author></trustedSigners></configuration>')
    (isolated / "repo").mkdir()
    (isolated / "repo" / "nuget.config").write_text(f'<configuration><trustedSigners><author name="x"><certificate fingerprint="{B}" hashAlgorithm="SHA256" allowUntrustedRoot="false"/></author></trustedSigners></configuration>')
    os.chdir(isolated / "repo")
    assert run("remove", "x") == 0
    assert load_trust_settings(directory=isolated / "repo").signers == ()


# -- the editor itself -------------------------------------------------------------------------------


def test_write_is_atomic_and_keeps_permissions(isolated: Path) -> None:
    path = copy("policy-example.config", isolated / "NuGet.Config")
    path.chmod(0o640)
    editor = ConfigEditor(path)
    editor.add_signer(signer_node("author", "y", [certificate_node(A, "SHA256", False)]))
    assert editor.save() is True
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(p.name for p in isolated.iterdir()) == ["NuGet.Config"]  # no temporary file left
    assert ConfigEditor(path).save() is False  # nothing changed, nothing written


def test_replace_certificates_keeps_survivors_byte_identical(isolated: Path) -> None:
    path = copy("policy-example.config", isolated / "NuGet.Config")
    old = path.read_bytes()
    settings = load_trust_settings(configfile=path)
    nuget = settings.signers[2]
    editor = ConfigEditor(path)
    editor.replace_certificates(nuget, {"1F4B311D9ACC115C8DC8018B5A49E00FCE6DA8E2855F9F014CA6F34570BC482D"}, [certificate_node(A, "SHA256", False)])
    editor.save()
    changes = line_changes(old, path.read_bytes())
    assert [op for op, _, _ in changes] == ["delete", "insert"]
    assert [len(a) for _, a, _ in changes] == [2, 0]  # 0E5F... and 5A29... lines
    assert changes[1][2] == [f'      <certificate fingerprint="{A}" hashAlgorithm="SHA256" allowUntrustedRoot="false" />\n'.encode()]


# -- property: adding then removing a signer gives back the original bytes ---------------------------

from hypothesis import (  # noqa: E402
    HealthCheck,
    given,
    settings,
    strategies as st,
)

from trustpolicy._internal.config import trust  # noqa: E402

XML_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff") | st.sampled_from("\t\n\r&<>\"'"),
    min_size=1,
    max_size=30,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    sample=st.sampled_from(["policy-example.config", "realworld-bom-crlf.config", "tabs-comments.config", "mixed-case-items.config"]),
    name=XML_TEXT,
    fingerprint=st.binary(min_size=32, max_size=32).map(bytes.hex),
)
def test_add_then_remove_restores_the_file(tmp_path: Path, sample: str, name: str, fingerprint: str) -> None:
    path = tmp_path / f"{sample}.copy"
    path.write_bytes((CONFIGS / sample).read_bytes())
    original = path.read_bytes()
    scope = trust.Scope(configfile=str(path))
    name = "hyp-" + name
    trust.add_certificate(scope, name, fingerprint)
    added = [s for s in load_trust_settings(configfile=path).signers if s.name == name]
    assert len(added) == 1 and added[0].certificates[0].fingerprint == fingerprint.upper()
    trust.remove(scope, name)
    assert path.read_bytes() == original


def test_a_doctype_word_inside_a_comment_is_harmless(tmp_path: Path) -> None:
    path = tmp_path / "c.config"
    path.write_text("<!-- never add a <!DOCTYPE here -->\n<configuration/>\n")
    assert run("certificate", "x", A, "--configfile", str(path)) == 0
