"""Bad input: a clear error naming the file, or a finding on the package; never a traceback."""

from __future__ import annotations

import json
import os
import shutil
import struct
from pathlib import Path

import pytest
from datafiles import ZIP_EDGE
from graphdata.layout import RESTORE, content_hash, install, write_assets, write_lock, write_packages_config
from hypothesis import HealthCheck, given, settings, strategies as st

from trustpolicy._internal.graph import collect_graph, verify_graph_hashes
from trustpolicy._internal.graph._io import read_bytes
from trustpolicy.errors import TrustPolicyError, UsageError


def codes(findings) -> list[str]:
    return [f.code for f in findings]


def error_for(path: Path, **kw) -> TrustPolicyError:
    with pytest.raises(TrustPolicyError) as info:
        collect_graph([path], environ={}, **kw)
    assert str(path) in str(info.value)
    return info.value


# --- paths ------------------------------------------------------------------------------------

def test_unrecognised_paths_are_usage_errors(tmp_path: Path) -> None:
    assert isinstance(error_for(tmp_path / "nope"), UsageError)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("hello")
    assert "not a project directory" in str(error_for(empty))
    assert isinstance(error_for(empty / "readme.txt"), UsageError)
    other = tmp_path / "package.json"
    other.write_text('{"name": "x", "version": "1.0.0", "dependencies": {"left-pad": "1.0.0"}}')
    assert "neither" in str(error_for(other))
    array = tmp_path / "array.json"
    array.write_text("[1, 2]")
    assert isinstance(error_for(array), UsageError)
    solution = tmp_path / "sln"
    solution.mkdir()
    (solution / "A.sln").write_text("")
    assert "no restored project" in str(error_for(solution))


# --- JSON ------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"version": 1, "dependencies": {', "line 1"),
        ('{"version": 1,\n "dependencies": {"net8.0": {"A": {"resolved": NaN}}}}', "NaN"),
        ('{"a":' * 100_000 + "1" + "}" * 100_000, "nested too deeply"),
        ('{"version": "x", "dependencies": {}}', "unsupported lock file version"),
        ('{"version": 0, "dependencies": {}}', "unsupported lock file version"),
        ('{"version": 3, "net8.0": {"framework": "net8.0", "dependencies": {}}, "dependencies": 5}', None),
        ('{"targets": {}, "libraries": {}}', "no valid 'version'"),
        ('{"version": 1, "dependencies": []}', "no 'dependencies' object"),
    ],
)
def test_malformed_json_names_the_file(tmp_path: Path, text: str, needle: str | None) -> None:
    path = tmp_path / "packages.lock.json"
    path.write_text(text)
    if needle is None:  # a valid v3 file: the stray key is ignored
        assert collect_graph([path], environ={}).packages == []
        return
    assert needle in str(error_for(path))


def test_non_utf8_json(tmp_path: Path) -> None:
    path = tmp_path / "project.assets.json"
    path.write_bytes(b'{"version": 3, "x": "\xff"}')
    assert "not UTF-8" in str(error_for(path))


def test_size_cap(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    path.write_bytes(b"{" + b" " * 2000 + b"}")
    with pytest.raises(TrustPolicyError, match="larger than"):
        read_bytes(path, 1024, "graph file")
    assert read_bytes(path, 4096, "graph file").startswith(b"{")


def test_bad_entries_become_findings_not_crashes(tmp_path: Path) -> None:
    gpf = tmp_path / "gpf"
    install(gpf, "textfile")
    assets = write_assets(tmp_path / "obj" / "project.assets.json", ["textfile", "prerelease"], [gpf])
    doc = json.loads(assets.read_text())
    libs = doc["libraries"]
    del libs["PackageWithTextFile/1.0.0"]["path"]  # rebuilt from id/version, with a warning
    del libs["PreReleaseTestPackage.A/1.0.0-a"]  # used by the target, missing from libraries
    libs["NoSlash"] = {"type": "package", "path": "noslash/1.0.0", "sha512": content_hash("textfile")}
    libs["Evil/1.0.0"] = {"type": "package", "path": "../../etc", "sha512": "x"}
    libs["Broken/1.0.0"] = "not an object"
    libs["Proj/1.0.0"] = {"type": "project", "path": "../Proj/Proj.csproj"}
    doc["targets"]["net8.0"]["Bad"] = 7
    assets.write_text(json.dumps(doc))
    graph = collect_graph([assets], environ={})
    rows = {p.id: p for p in graph.packages}
    assert set(rows) == {"PackageWithTextFile", "NoSlash", "Evil", "PreReleaseTestPackage.A"}
    text = rows["PackageWithTextFile"]
    assert text.nupkg is not None and [(p.code, p.level) for p in text.problems] == [("TP0003", "warning")]
    assert verify_graph_hashes(text) == ()
    assert codes(rows["NoSlash"].problems) == ["TP0003"]
    evil = rows["Evil"]
    assert ("TP0003", "warning") in [(p.code, p.level) for p in evil.problems] and evil.nupkg is None
    orphan = rows["PreReleaseTestPackage.A"]
    assert orphan.origin.targets == ("net8.0",) and "no record" in orphan.problems[0].message
    assert any("Broken/1.0.0" in p.message for p in graph.problems)


def test_bad_lock_entries(tmp_path: Path) -> None:
    lock = write_lock(tmp_path / "packages.lock.json", ["textfile"])
    doc = json.loads(lock.read_text())
    entries = doc["dependencies"]["net8.0"]
    entries["NoResolved"] = {"type": "Transitive", "contentHash": "abc"}
    entries["BadVersion"] = {"type": "Transitive", "resolved": "1.0.0-01", "contentHash": "abc"}
    entries["NoHash"] = {"type": "Transitive", "resolved": "2.0.0"}
    entries["Junk"] = ["x"]
    lock.write_text(json.dumps(doc, indent=2))
    graph = collect_graph([lock], environ={})
    rows = {p.id: p for p in graph.packages}
    assert codes(rows["NoResolved"].problems) == ["TP0003"] and codes(rows["BadVersion"].problems) == ["TP0003"]
    assert rows["BadVersion"].version == "1.0.0-01"
    assert codes(rows["NoHash"].problems) == ["TP0003", "TP0001"]
    assert any("'Junk'" in p.message for p in graph.problems)


def test_bad_integrity_files(tmp_path: Path) -> None:
    gpf = tmp_path / "gpf"
    install(gpf, "textfile")
    install(gpf, "external")
    install(gpf, "prerelease")
    (gpf / "packagewithtextfile" / "1.0.0" / ".nupkg.metadata").write_text("{not json")
    (gpf / "packagewithexternaldependency" / "1.0.0" / ".nupkg.metadata").write_text('{"version": 2}')
    (gpf / "packagewithexternaldependency" / "1.0.0" / "packagewithexternaldependency.1.0.0.nupkg.sha512").write_text("%%%")
    meta = gpf / "prereleasetestpackage.a" / "1.0.0-a" / ".nupkg.metadata"
    meta.write_text(json.dumps({"CONTENTHASH": content_hash("prerelease"), "Version": 1}))  # names are case-insensitive
    graph = collect_graph([gpf], environ={})
    ext, text, pre = graph.packages
    assert codes(text.problems) == ["TP0003"] and ".nupkg.metadata" in text.problems[0].message
    assert codes(ext.problems) == ["TP0003"] and "no contentHash" in ext.problems[0].message
    (bad,) = verify_graph_hashes(ext)
    assert bad.code == "TP0002" and "not a base64 SHA-512" in bad.message
    assert pre.expected["metadata"] == content_hash("prerelease") and verify_graph_hashes(pre) == ()


def test_integrity_files_that_are_fifos_or_folders_are_not_read(tmp_path: Path) -> None:
    """Opened once without waiting for a writer; what is not a regular file counts as absent."""
    gpf = tmp_path / "gpf"
    install(gpf, "textfile")
    install(gpf, "external")
    folder = gpf / "packagewithtextfile" / "1.0.0"
    (folder / ".nupkg.metadata").unlink()
    os.mkfifo(folder / ".nupkg.metadata")
    (folder / "packagewithtextfile.1.0.0.nupkg.sha512").unlink()
    os.mkfifo(folder / "packagewithtextfile.1.0.0.nupkg.sha512")
    other = gpf / "packagewithexternaldependency" / "1.0.0"
    (other / "packagewithexternaldependency.1.0.0.nupkg.sha512").unlink()
    (other / "packagewithexternaldependency.1.0.0.nupkg.sha512").mkdir()
    write_lock(tmp_path / "p" / "packages.lock.json", ["textfile", "external"])
    graph = collect_graph([tmp_path / "p"], packages_dirs=[gpf], environ={})  # would block on open() otherwise
    ext, text = sorted(graph.packages, key=lambda p: p.id)
    assert text.nupkg is not None and {c.record for c in text.claims} == {"contentHash"}
    assert {c.record for c in ext.claims} == {"contentHash", "metadata"}
    assert verify_graph_hashes(text) == () and verify_graph_hashes(ext) == ()


def test_package_file_that_is_not_a_zip(tmp_path: Path) -> None:
    gpf = tmp_path / "gpf"
    nupkg = install(gpf, "textfile")
    nupkg.write_bytes(b"this is not a zip file at all")
    (pkg,) = collect_graph([gpf], environ={}).packages
    (finding,) = verify_graph_hashes(pkg)
    assert finding.code == "TP0002" and "integrity" in finding.message  # records exist and nothing matches
    alone = tmp_path / "alone.nupkg"
    shutil.copyfile(nupkg, alone)
    (plain,) = collect_graph([alone], environ={}).packages  # no records: just unreadable
    assert codes(plain.problems) == ["TP0003"] and codes(verify_graph_hashes(plain)) == ["TP0003"]


def test_signed_package_with_broken_offsets_is_an_integrity_failure(tmp_path: Path) -> None:
    gpf = tmp_path / "gpf"
    nupkg = install(gpf, "reposigned")
    data = bytearray(nupkg.read_bytes())
    eocd = data.rfind(b"PK\x05\x06")
    struct.pack_into("<I", data, eocd + 16, len(data) + 100)  # central directory offset past the end
    nupkg.write_bytes(bytes(data))
    (pkg,) = collect_graph([gpf], environ={}).packages
    assert codes(verify_graph_hashes(pkg)) == ["TP0002"]


def test_file_gone_before_hashing(tmp_path: Path) -> None:
    gpf = tmp_path / "gpf"
    nupkg = install(gpf, "textfile")
    (pkg,) = collect_graph([gpf], environ={}).packages
    nupkg.unlink()
    (finding,) = verify_graph_hashes(pkg)
    assert finding.code == "TP0003" and str(nupkg) in finding.message


# --- XML ---------------------------------------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<packages><package id="&lol2;" version="1.0.0" /></packages>"""
XXE = b"""<?xml version="1.0"?>
<!DOCTYPE packages [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<packages><package id="&xxe;" version="1.0.0" /></packages>"""


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (BILLION_LAUGHS, "DOCTYPE"),
        (XXE, "DOCTYPE"),
        ("<?xml version='1.0' encoding='utf-16'?><!DOCTYPE p []><packages/>".encode("utf-16"), "DOCTYPE"),
        (b"<packages><package id='a' version='1.0'></packages>", "line 1"),
        (b"<configuration/>", "expected <packages>"),
        (b"\xef\xbb\xbf<?xml version='1.0'?>\n<packages>\n<package id='A' version='1.0'/>\n</packages", "not valid XML"),
    ],
)
def test_malformed_or_hostile_xml(tmp_path: Path, data: bytes, needle: str) -> None:
    path = tmp_path / "packages.config"
    path.write_bytes(data)
    assert needle in str(error_for(path))


def test_packages_config_attribute_rules(tmp_path: Path) -> None:
    path = write_packages_config(tmp_path / "packages.config", [("A", "1.0"), ("", "1.0"), ("B", ""), ("C", "1.0.0-01"),
                                                                 ("a", "2.0")])
    graph = collect_graph([path], environ={})
    assert [(p.id, p.version) for p in graph.packages] == [("A", "1.0.0"), ("B", ""), ("C", "1.0.0-01"), ("a", "2.0.0")]
    assert codes(graph.packages[1].problems) == ["TP0003"] and codes(graph.packages[2].problems) == ["TP0003"]
    messages = [p.message for p in graph.problems]
    assert any("has no id" in m for m in messages) and any("more than once" in m for m in messages)


def test_utf16_packages_config(tmp_path: Path) -> None:
    path = tmp_path / "packages.config"
    path.write_bytes('<?xml version="1.0" encoding="utf-16"?>\n<packages>\n  <package id="Zed" version="3.0" />\n</packages>'
                     .encode("utf-16"))
    (pkg,) = collect_graph([path], environ={}).packages
    assert (pkg.id, pkg.version, pkg.origin.line) == ("Zed", "3.0.0", 3)


# --- never a traceback -------------------------------------------------------------------------

SEEDS = [RESTORE / "CaringDev+PRDA__packages.lock.json", RESTORE / "alc-br+IControlIT__WS_IControlIT__packages.config"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.sampled_from(SEEDS), cuts=st.lists(st.tuples(st.integers(0, 700), st.binary(max_size=4)), max_size=4))
def test_mutated_graph_files_never_raise_anything_else(tmp_path: Path, seed: Path, cuts) -> None:
    data = bytearray(seed.read_bytes())
    for at, junk in cuts:
        data[at : at + len(junk)] = junk
    path = tmp_path / seed.name
    path.write_bytes(bytes(data))
    try:
        graph = collect_graph([path], environ={})
    except TrustPolicyError as error:
        assert str(path) in str(error)
        return
    for pkg in graph.packages:
        verify_graph_hashes(pkg)


def test_corpus_zip_edge_files_in_a_folder(tmp_path: Path) -> None:
    """Odd ZIPs named .nupkg: rows with TP0003, never an exception."""
    feed = tmp_path / "feed"
    shutil.copytree(ZIP_EDGE, feed)
    for zip_file in list(feed.iterdir()):
        zip_file.rename(zip_file.with_suffix(".nupkg"))
    graph = collect_graph([feed], environ={})
    assert len(graph.packages) == 7
    for pkg in graph.packages:
        assert codes(pkg.problems) == ["TP0003"]
        assert set(codes(verify_graph_hashes(pkg))) <= {"TP0003"}
