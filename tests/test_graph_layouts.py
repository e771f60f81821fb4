"""Real restored layouts in tmp_path: locating, hashing, de-duplication, packages.config, precedence."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from graphdata.layout import (
    b64sha512,
    content_hash,
    ident,
    install,
    src,
    whole_hash,
    write_assets,
    write_lock,
    write_packages_config,
)

from trustpolicy._internal.graph import Graph, GraphPackage, HashCache, collect_graph, detect_kind, verify_graph_hashes
from trustpolicy._internal.graph.locate import Listings


def one(graph: Graph, pid: str) -> GraphPackage:
    (pkg,) = [p for p in graph.packages if p.id.lower() == pid.lower()]
    return pkg


def codes(findings) -> list[str]:
    return [f.code for f in findings]


# --- contentHash is what docs/graph.md 3.3 says ------------------------------------------------

@pytest.mark.parametrize("name", ["signed", "reposigned", "crl", "untrustedts", "versioning", "textfile", "external", "prerelease"])
def test_hashes_match_the_reference_values(name: str, tmp_path: Path) -> None:
    """All four records hold what NuGet writes; re-hashing the file finds no disagreement."""
    gpf = tmp_path / "gpf"
    nupkg = install(gpf, name)
    assets = write_assets(tmp_path / "proj" / "obj" / "project.assets.json", [name], [gpf])
    write_lock(tmp_path / "proj" / "packages.lock.json", [name])
    graph = collect_graph([tmp_path / "proj"], environ={})
    pkg = one(graph, ident(name)[0])
    assert pkg.nupkg == nupkg and pkg.version == ident(name)[1]
    assert pkg.expected == {"sha512": content_hash(name), "metadata": content_hash(name),
                            "sha512file": whole_hash(name), "contentHash": content_hash(name)}
    assert {o.kind for o in pkg.origins} == {"assets", "lock"} and pkg.origin.path == assets
    assert pkg.problems == () and verify_graph_hashes(pkg) == ()
    assert b64sha512(nupkg) == whole_hash(name)


def test_signed_package_content_hash_is_not_the_file_hash(tmp_path: Path) -> None:
    """A .nupkg.metadata that holds the whole-file hash of a signed package is wrong (TP0002)."""
    gpf = tmp_path / "gpf"
    install(gpf, "signed", metadata_hash=whole_hash("signed"))
    write_assets(tmp_path / "obj" / "project.assets.json", ["signed"], [gpf])
    (pkg,) = collect_graph([tmp_path / "obj" / "project.assets.json"], environ={}).packages
    (finding,) = verify_graph_hashes(pkg)
    assert finding.code == "TP0002" and ".nupkg.metadata" in finding.message
    assert content_hash("signed") in finding.message  # the value we computed is shown


def test_old_assets_whole_file_hash_of_a_signed_package_is_accepted(tmp_path: Path) -> None:
    """NuGet 4.6-4.8 wrote the .sha512 text into assets sha512 (docs/graph.md 3.5)."""
    gpf = tmp_path / "gpf"
    install(gpf, "reposigned", metadata=False)
    write_assets(tmp_path / "obj" / "project.assets.json", ["reposigned"], [gpf], hashes={"reposigned": whole_hash("reposigned")})
    (pkg,) = collect_graph([tmp_path / "obj" / "project.assets.json"], environ={}).packages
    assert pkg.expected == {"sha512": whole_hash("reposigned"), "sha512file": whole_hash("reposigned")}
    assert verify_graph_hashes(pkg) == ()
    # ...but a lock file contentHash must be the content hash
    write_lock(tmp_path / "packages.lock.json", ["reposigned"], hashes={"reposigned": whole_hash("reposigned")})
    (pkg,) = collect_graph([tmp_path / "packages.lock.json"], environ={"HOME": str(tmp_path / "h")},
                           packages_dirs=[gpf]).packages
    assert codes(verify_graph_hashes(pkg)) == ["TP0002"]


def test_resigned_package_keeps_its_content_hash(tmp_path: Path) -> None:
    """Same unsigned package, other signature: contentHash still matches, .sha512 does not."""
    gpf = tmp_path / "gpf"
    install(gpf, "crl", from_name="untrustedts")  # .sha512/.metadata describe the CRL file
    write_lock(tmp_path / "packages.lock.json", ["crl"])
    (pkg,) = collect_graph([tmp_path / "packages.lock.json"], packages_dirs=[gpf], environ={}).packages
    (finding,) = verify_graph_hashes(pkg)
    assert finding.code == "TP0002" and ".nupkg.sha512" in finding.message and whole_hash("crl") in finding.message


# --- location -----------------------------------------------------------------------------------

def test_missing_package_is_tp0001_naming_where_it_looked(tmp_path: Path) -> None:
    gpf = tmp_path / "gpf"
    install(gpf, "signed")
    write_assets(tmp_path / "obj" / "project.assets.json", ["signed", "textfile"], [gpf])
    graph = collect_graph([tmp_path], environ={})
    assert one(graph, "SignedPackage").problems == ()
    missing = one(graph, "PackageWithTextFile")
    assert missing.nupkg is None and codes(missing.problems) == ["TP0001"]
    assert str(gpf / "packagewithtextfile" / "1.0.0") in missing.problems[0].message
    assert verify_graph_hashes(missing) == ()


def test_folder_without_nupkg_is_reported(tmp_path: Path) -> None:
    """.nupkg.metadata present, archive gone (e.g. extraction without Nupkg): cannot verify."""
    gpf = tmp_path / "gpf"
    install(gpf, "textfile", nupkg=False)
    write_lock(tmp_path / "packages.lock.json", ["textfile"])
    (pkg,) = collect_graph([tmp_path], packages_dirs=[gpf], environ={}).packages
    assert pkg.nupkg is None and codes(pkg.problems) == ["TP0001"] and "holds no .nupkg" in pkg.problems[0].message
    assert pkg.expected == {"contentHash": content_hash("textfile"), "metadata": content_hash("textfile")}


def test_swapped_file_is_tp0002_for_every_record(tmp_path: Path) -> None:
    gpf = tmp_path / "gpf"
    install(gpf, "signed", from_name="reposigned")
    write_assets(tmp_path / "obj" / "project.assets.json", ["signed"], [gpf])
    write_lock(tmp_path / "packages.lock.json", ["signed"])
    (pkg,) = collect_graph([tmp_path], environ={}).packages
    findings = verify_graph_hashes(pkg)
    assert codes(findings) == ["TP0002"] * 4
    text = "\n".join(f.message for f in findings)
    for record in ("project.assets.json sha512", "packages.lock.json contentHash", ".nupkg.metadata contentHash", ".nupkg.sha512"):
        assert record in text
    assert content_hash("reposigned") in text and whole_hash("reposigned") in text


def test_lock_record_disagreeing_with_assets_without_a_file(tmp_path: Path) -> None:
    """No archive to hash: the records must agree with each other (NuGet's NU1403)."""
    write_assets(tmp_path / "obj" / "project.assets.json", ["textfile"], [tmp_path / "nowhere"])
    write_lock(tmp_path / "packages.lock.json", ["textfile"], hashes={"textfile": content_hash("external")})
    (pkg,) = collect_graph([tmp_path], environ={}).packages
    assert codes(pkg.problems) == ["TP0001"]
    (finding,) = verify_graph_hashes(pkg)
    assert finding.code == "TP0002" and "disagree" in finding.message


def test_precedence_assets_folder_then_packages_dir_then_nuget_packages_then_home(tmp_path: Path) -> None:
    recorded, explicit, env, home = (tmp_path / n for n in ("recorded", "explicit", "env", "home"))
    for root in (recorded, explicit, env, home / ".nuget" / "packages"):
        install(root, "textfile")
    environ = {"NUGET_PACKAGES": str(env), "HOME": str(home)}
    write_assets(tmp_path / "p" / "obj" / "project.assets.json", ["textfile"], [recorded])
    write_lock(tmp_path / "p" / "packages.lock.json", ["textfile"])

    def where(paths, **kw) -> Path:
        (pkg,) = collect_graph(paths, environ=environ, **kw).packages
        return pkg.nupkg.parents[2]

    assert where([tmp_path / "p"], packages_dirs=[explicit]) == recorded
    lock = tmp_path / "p" / "packages.lock.json"
    assert where([lock], packages_dirs=[explicit]) == explicit
    assert where([lock]) == env
    environ.pop("NUGET_PACKAGES")
    assert where([lock]) == home / ".nuget" / "packages"
    shutil.rmtree(recorded)
    assert where([tmp_path / "p" / "obj" / "project.assets.json"], packages_dirs=[explicit]) == explicit


def test_relative_nuget_packages_is_ignored_with_a_warning(tmp_path: Path) -> None:
    write_lock(tmp_path / "packages.lock.json", ["textfile"])
    graph = collect_graph([tmp_path], environ={"NUGET_PACKAGES": "relative/dir"})
    assert any("NUGET_PACKAGES" in p.message and p.level == "warning" for p in graph.problems)
    assert "no packages folder to search" in graph.packages[0].problems[0].message


def test_fallback_folder_needs_nupkg_metadata_global_folder_accepts_sha512(tmp_path: Path) -> None:
    first, fallback = tmp_path / "global", tmp_path / "fallback"
    install(fallback, "textfile", metadata=False)  # only .sha512: not installed in a fallback folder
    install(fallback, "external")
    write_assets(tmp_path / "obj" / "project.assets.json", ["textfile", "external"], [first, fallback])
    graph = collect_graph([tmp_path / "obj" / "project.assets.json"], environ={})
    assert one(graph, "PackageWithExternalDependency").nupkg.is_relative_to(fallback)
    text = one(graph, "PackageWithTextFile")
    assert text.nupkg is not None and text.nupkg.is_relative_to(fallback)  # used, but flagged incomplete
    assert [(p.code, p.level) for p in text.problems] == [("TP0001", "warning")]
    install(first, "textfile", metadata=False)  # the global folder accepts the .sha512 marker
    graph = collect_graph([tmp_path / "obj" / "project.assets.json"], environ={})
    assert one(graph, "PackageWithTextFile").nupkg.is_relative_to(first) and one(graph, "PackageWithTextFile").problems == ()


def test_complete_folder_later_wins_over_incomplete_earlier_one(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    install(a, "textfile", metadata=False, sha512=False)
    install(b, "textfile")
    write_lock(tmp_path / "packages.lock.json", ["textfile"])
    (pkg,) = collect_graph([tmp_path / "packages.lock.json"], packages_dirs=[a, b], environ={}).packages
    assert pkg.nupkg.is_relative_to(b) and pkg.problems == ()


def test_assets_path_is_used_as_written(tmp_path: Path) -> None:
    """RestoreLegacyPackagesDirectory keeps the original case: never rebuild `path`."""
    gpf = tmp_path / "gpf"
    folder = gpf / "PackageWithTextFile" / "1.0.0"
    folder.mkdir(parents=True)
    shutil.copyfile(src("textfile"), folder / "PackageWithTextFile.1.0.0.nupkg")
    (folder / ".nupkg.metadata").write_text(json.dumps({"version": 1, "contentHash": content_hash("textfile")}))
    assets = write_assets(tmp_path / "obj" / "project.assets.json", ["textfile"], [gpf])
    doc = json.loads(assets.read_text())
    doc["libraries"]["PackageWithTextFile/1.0.0"]["path"] = "PackageWithTextFile/1.0.0"
    assets.write_text(json.dumps(doc))
    (pkg,) = collect_graph([assets], environ={}).packages
    assert pkg.nupkg == folder / "PackageWithTextFile.1.0.0.nupkg"
    assert verify_graph_hashes(pkg) == ()


def test_windows_package_folder_is_never_joined_to_the_cwd(tmp_path: Path) -> None:
    write_assets(tmp_path / "obj" / "project.assets.json", ["textfile"], ["C:\\Users\\me\\.nuget\\packages\\"])
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        lookalike = tmp_path / "C:\\Users\\me\\.nuget\\packages\\" / "packagewithtextfile" / "1.0.0"
        lookalike.mkdir(parents=True)
        shutil.copyfile(src("textfile"), lookalike / "packagewithtextfile.1.0.0.nupkg")
        graph = collect_graph([tmp_path / "obj" / "project.assets.json"], environ={})
    finally:
        os.chdir(cwd)
    assert graph.packages[0].nupkg is None and "C:\\Users\\me" in graph.problems[0].message


# --- de-duplication -----------------------------------------------------------------------------

def test_same_file_reached_many_ways_is_one_package(tmp_path: Path) -> None:
    gpf = tmp_path / "gpf"
    nupkg = install(gpf, "signed")
    proj = tmp_path / "proj"
    assets = write_assets(proj / "obj" / "project.assets.json", ["signed"], [gpf])
    write_lock(proj / "packages.lock.json", ["signed"])
    graph = collect_graph([proj, assets, proj / "packages.lock.json", gpf, nupkg, proj], environ={})
    (pkg,) = graph.packages
    assert [o.kind for o in pkg.origins] == ["assets", "lock", "global-folder", "folder"]
    assert pkg.nupkg == nupkg and pkg.copies == ()
    assert [s.kind for s in graph.sources] == ["assets", "lock", "global-folder", "folder"]


def test_solution_with_two_projects_shares_packages(tmp_path: Path) -> None:
    gpf = tmp_path / "gpf"
    for name in ("signed", "textfile", "prerelease"):
        install(gpf, name)
    sln = tmp_path / "sln"
    (sln / "App.sln").parent.mkdir()
    (sln / "App.sln").write_text("Microsoft Visual Studio Solution File, Format Version 12.00\n")
    write_assets(sln / "src" / "A" / "obj" / "project.assets.json", ["signed", "textfile"], [gpf])
    write_assets(sln / "src" / "B" / "obj" / "project.assets.json", ["signed", "prerelease"], [gpf])
    write_lock(sln / "tests" / "C" / "packages.lock.json", ["textfile"])
    assert detect_kind(sln) == "solution"
    graph = collect_graph([sln], packages_dirs=[gpf], environ={})
    assert sorted(p.id for p in graph.packages) == ["PackageWithTextFile", "PreReleaseTestPackage.A", "SignedPackage"]
    assert len(one(graph, "SignedPackage").origins) == 2 and len(one(graph, "PackageWithTextFile").origins) == 2
    assert one(graph, "PreReleaseTestPackage.A").version == "1.0.0-a"
    assert all(verify_graph_hashes(p) == () for p in graph.packages)
    # a project at the solution root (App.sln next to obj/): its own graph and the others
    write_lock(sln / "packages.lock.json", ["versioning"])
    install(gpf, "versioning")
    graph = collect_graph([sln], packages_dirs=[gpf], environ={})
    assert detect_kind(sln) == "project" and len(graph.packages) == 4 and len(graph.sources) == 4


def test_different_files_for_the_same_package_are_never_merged(tmp_path: Path) -> None:
    """Both TestSigned.leaf-1 1.0.0 files in one feed folder: two rows, and a warning."""
    feed = tmp_path / "feed"
    feed.mkdir()
    shutil.copyfile(src("crl"), feed / "a.nupkg")
    shutil.copyfile(src("untrustedts"), feed / "b.nupkg")
    graph = collect_graph([feed], environ={})
    assert [(p.id, p.version, p.nupkg.name) for p in graph.packages] == [
        ("TestSigned.leaf-1", "1.0.0", "a.nupkg"), ("TestSigned.leaf-1", "1.0.0", "b.nupkg")]
    (warning,) = graph.problems
    assert warning.level == "warning" and "a.nupkg" in warning.message and "b.nupkg" in warning.message


def test_byte_identical_copies_are_merged(tmp_path: Path) -> None:
    """packages.config installs go through the global folder too: same bytes, one row, both paths."""
    gpf = tmp_path / "gpf"
    global_copy = install(gpf, "textfile")
    feed = tmp_path / "feed"
    feed.mkdir()
    shutil.copyfile(src("textfile"), feed / "copy.nupkg")
    shutil.copyfile(src("external"), feed / "ext.nupkg")
    os.link(feed / "ext.nupkg", feed / "hardlink.nupkg")  # same inode: merged without hashing
    graph = collect_graph([gpf, feed], environ={})
    text = one(graph, "PackageWithTextFile")
    assert text.nupkg == global_copy and text.copies == (feed / "copy.nupkg",)
    assert [o.kind for o in text.origins] == ["global-folder", "folder"]
    ext = one(graph, "PackageWithExternalDependency")
    assert ext.nupkg == feed / "ext.nupkg" and ext.copies == (feed / "hardlink.nupkg",) and len(ext.origins) == 2
    assert graph.problems == []


def test_hash_cache_hashes_each_file_once(tmp_path: Path) -> None:
    class Counting(HashCache):
        def __init__(self) -> None:
            super().__init__()
            self.reads: list[Path] = []

        def _slot(self, path):  # called for every request; count the real reads via the slots' state
            slot = super()._slot(path)
            self.reads.append((path, slot.whole is None, slot.content is None))
            return slot

    cache = Counting()
    nupkg = install(tmp_path / "gpf", "textfile")
    write_lock(tmp_path / "p" / "packages.lock.json", ["textfile"])
    write_assets(tmp_path / "p" / "obj" / "project.assets.json", ["textfile"], [tmp_path / "gpf"])
    (pkg,) = collect_graph([tmp_path / "p"], environ={}, cache=cache).packages
    assert len(pkg.claims) == 4
    assert verify_graph_hashes(pkg, cache=cache) == ()
    assert verify_graph_hashes(pkg, cache=cache) == ()
    assert [r for r in cache.reads if r[2]] == [(nupkg, True, True)]  # one read computed both digests


# --- packages.config and the solution packages/ folder ------------------------------------------

def _solution(tmp_path: Path, packages: list[tuple[str, str]]) -> tuple[Path, Path]:
    sln = tmp_path / "sln"
    sln.mkdir()
    (sln / "Legacy.sln").write_text("")
    config = write_packages_config(sln / "Legacy" / "packages.config", packages)
    return sln, config


def test_packages_config_with_solution_packages_folder(tmp_path: Path) -> None:
    sln, config = _solution(tmp_path, [("PackageWithTextFile", "1.0"), ("packagewithexternaldependency", "1.0.0"),
                                       ("PreReleaseTestPackage.A", "1.0.0-a"), ("NuGet.Versioning", "5.0.0"),
                                       ("Missing.Package", "2.0.0.0")])
    packages = sln / "packages"
    (packages / "PackageWithTextFile.1.0").mkdir(parents=True)  # exact <Id>.<ToString()>
    shutil.copyfile(src("textfile"), packages / "PackageWithTextFile.1.0" / "PackageWithTextFile.1.0.nupkg")
    (packages / "PackageWithExternalDependency.1.0").mkdir()  # other case, other version text: lenient lookup
    shutil.copyfile(src("external"), packages / "PackageWithExternalDependency.1.0" / "PackageWithExternalDependency.1.0.nupkg")
    (packages / "PreReleaseTestPackage.A.1.0.0-a").mkdir()  # installed marker only: no archive
    (packages / "PreReleaseTestPackage.A.1.0.0-a" / "PreReleaseTestPackage.A.packagedownload.marker").write_text("")
    home = tmp_path / "home"
    install(home / ".nuget" / "packages", "versioning")  # only in the global folder
    graph = collect_graph([sln / "Legacy"], environ={"HOME": str(home)})
    assert [s.kind for s in graph.sources] == ["packages.config"]
    assert [(p.id, p.version) for p in graph.packages] == [
        ("PackageWithTextFile", "1.0.0"), ("packagewithexternaldependency", "1.0.0"), ("PreReleaseTestPackage.A", "1.0.0-a"),
        ("NuGet.Versioning", "5.0.0"), ("Missing.Package", "2.0.0")]
    text, ext, pre, ver, missing = graph.packages
    assert text.nupkg == packages / "PackageWithTextFile.1.0" / "PackageWithTextFile.1.0.nupkg" and text.problems == ()
    assert text.expected == {} and text.origin.line == 3 and text.origin.pointer == "/packages/package[1]"
    assert ext.nupkg.name == "PackageWithExternalDependency.1.0.nupkg"
    assert pre.nupkg is None and codes(pre.problems) == ["TP0001"] and "no archive" in pre.problems[0].message
    assert ver.nupkg.is_relative_to(home) and ver.expected["sha512file"] == whole_hash("versioning")
    assert codes(missing.problems) == ["TP0001"] and "missing.package.2.0.0.0" in missing.problems[0].message.lower()
    assert all(verify_graph_hashes(p) == () for p in graph.packages)


def test_packages_folder_root_level_nupkg(tmp_path: Path) -> None:
    """NuGet also accepts `<id>.<version>.nupkg` loose in packages/ when the version compares equal."""
    sln, config = _solution(tmp_path, [("PreReleaseTestPackage.A", "1.0.0.0-a"), ("PackageWithTextFile", "1.0.0")])
    packages = sln / "packages"
    packages.mkdir()
    shutil.copyfile(src("prerelease"), packages / "prereleasetestpackage.a.1.0.0-A.nupkg")
    (packages / ".nupkg.metadata").write_text("{}")  # not the package's own folder: never read
    (packages / "PackageWithTextFile.1.0.0.0").mkdir()
    shutil.copyfile(src("textfile"), packages / "PackageWithTextFile.1.0.0.0" / "PackageWithTextFile.1.0.0.0.nupkg")
    pre, text = collect_graph([config], environ={}).packages
    assert pre.nupkg == packages / "prereleasetestpackage.a.1.0.0-A.nupkg" and pre.problems == () and pre.claims == ()
    assert text.nupkg.name == "PackageWithTextFile.1.0.0.0.nupkg" and text.problems == ()


def test_packages_config_lock_file_reads_metadata_in_packages_folder(tmp_path: Path) -> None:
    """docs/graph.md 3.2: a packages.config lock file; the hash comes from packages/<Id>.<Version>/.nupkg.metadata."""
    sln, config = _solution(tmp_path, [("Test.Reposigned", "1.0.0")])
    write_lock(config.parent / "packages.lock.json", ["reposigned"], target=".NETFramework,Version=v4.7.2")
    folder = sln / "packages" / "Test.Reposigned.1.0.0"
    folder.mkdir(parents=True)
    shutil.copyfile(src("reposigned"), folder / "Test.Reposigned.1.0.0.nupkg")
    (folder / ".nupkg.metadata").write_text(json.dumps({"version": 2, "contentHash": content_hash("reposigned"), "source": None}))
    graph = collect_graph([config.parent], environ={})
    assert [s.kind for s in graph.sources] == ["lock", "packages.config"]
    (pkg,) = graph.packages
    assert pkg.expected == {"contentHash": content_hash("reposigned"), "metadata": content_hash("reposigned")}
    assert verify_graph_hashes(pkg) == ()
    shutil.copyfile(src("signed"), folder / "Test.Reposigned.1.0.0.nupkg")  # swapped in place
    (pkg,) = collect_graph([config], packages_dirs=[], environ={}).packages
    assert codes(verify_graph_hashes(pkg)) == ["TP0002"]  # metadata only (no lock read this time)


def test_packages_dir_serves_both_layouts_for_packages_config(tmp_path: Path) -> None:
    config = write_packages_config(tmp_path / "proj" / "packages.config", [("PackageWithTextFile", "1.0"), ("Test.Reposigned", "1.0.0")])
    elsewhere = tmp_path / "restored"
    (elsewhere / "PackageWithTextFile.1.0").mkdir(parents=True)
    shutil.copyfile(src("textfile"), elsewhere / "PackageWithTextFile.1.0" / "PackageWithTextFile.1.0.nupkg")
    install(elsewhere, "reposigned")
    graph = collect_graph([config], packages_dirs=[elsewhere], environ={})
    assert [p.nupkg.relative_to(elsewhere).as_posix() for p in graph.packages] == [
        "PackageWithTextFile.1.0/PackageWithTextFile.1.0.nupkg", "test.reposigned/1.0.0/test.reposigned.1.0.0.nupkg"]


# --- folder inputs -----------------------------------------------------------------------------

def test_flat_folder_reads_ids_from_the_nuspec(tmp_path: Path) -> None:
    feed = tmp_path / "feed"
    (feed / "sub").mkdir(parents=True)
    shutil.copyfile(src("versioning"), feed / "whatever.nupkg")
    shutil.copyfile(src("prerelease"), feed / "sub" / "x.nupkg")
    (feed / "sub" / "x.nupkg.sha512").write_text(whole_hash("textfile"))  # wrong file's hash
    (feed / "deeper" / "a" ).mkdir(parents=True)
    shutil.copyfile(src("textfile"), feed / "deeper" / "a" / "too-deep.nupkg")  # depth 2: not a feed entry
    assert detect_kind(feed) == "folder"
    graph = collect_graph([feed], environ={})
    assert [(p.id, p.version, p.origin.kind) for p in graph.packages] == [
        ("NuGet.Versioning", "5.0.0", "folder"), ("PreReleaseTestPackage.A", "1.0.0-a", "folder")]
    assert verify_graph_hashes(graph.packages[0]) == ()
    assert codes(verify_graph_hashes(graph.packages[1])) == ["TP0002"]


def test_global_folder_input(tmp_path: Path) -> None:
    gpf = tmp_path / "gpf"
    install(gpf, "signed")
    install(gpf, "prerelease", from_name="textfile")
    install(gpf, "external", nupkg=False)
    (gpf / ".tools").mkdir()
    assert detect_kind(gpf) == "global-folder"
    graph = collect_graph([gpf], environ={})
    assert [(p.id, p.version, p.origin.kind) for p in graph.packages] == [
        ("PackageWithExternalDependency", "1.0.0", "global-folder"), ("PreReleaseTestPackage.A", "1.0.0-a", "global-folder"),
        ("SignedPackage", "1.0.0", "global-folder")]
    ext, pre, signed = graph.packages
    assert codes(ext.problems) == ["TP0001"] and ext.nupkg is None
    assert codes(verify_graph_hashes(pre)) == ["TP0002", "TP0002"]
    assert verify_graph_hashes(signed) == ()


def test_single_nupkg_path(tmp_path: Path) -> None:
    (pkg,) = collect_graph([src("reposigned")], environ={}).packages
    assert (pkg.id, pkg.version, pkg.nupkg, pkg.claims) == ("Test.Reposigned", "1.0.0", src("reposigned"), ())


def test_project_directory_kinds(tmp_path: Path) -> None:
    lock_only = tmp_path / "lock"
    write_lock(lock_only / "packages.lock.json", ["textfile"], crlf=True)
    assert detect_kind(lock_only) == "project"
    assert [s.kind for s in collect_graph([lock_only], environ={}).sources] == ["lock"]
    named = tmp_path / "named"
    write_lock(named / "packages.MyProject.lock.json", ["textfile"], version=2)
    assert one(collect_graph([named], environ={}), "PackageWithTextFile").origin.path.name == "packages.MyProject.lock.json"
    v3 = tmp_path / "v3"
    write_lock(v3 / "packages.lock.json", ["textfile", "prerelease"], version=3)
    graph = collect_graph([v3], environ={})
    assert [(p.id, p.origin.pointer, p.origin.targets) for p in graph.packages] == [
        ("PackageWithTextFile", "/net8.0/dependencies/PackageWithTextFile", ("net8.0",)),
        ("PreReleaseTestPackage.A", "/net8.0/dependencies/PreReleaseTestPackage.A", ("net8.0",))]


# --- NuGet.Config globalPackagesFolder / repositoryPath (docs/graph.md 5.1, 6.2) -----------------

def _config(path: Path, body: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n{body}\n</configuration>\n')
    return path


def test_nuget_config_global_packages_folder(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _config(repo / "nuget.config", '<config><add key="globalPackagesFolder" value="store" /></config>')
    install(repo / "store", "textfile")
    write_lock(repo / "src" / "App" / "packages.lock.json", ["textfile"])
    home, env = tmp_path / "home", tmp_path / "env"
    install(home / ".nuget" / "packages", "textfile")

    def root(**environ) -> Path:
        (pkg,) = collect_graph([repo / "src" / "App"], environ={"HOME": str(home), **environ}).packages
        return pkg.nupkg.parents[2]

    assert root() == (repo / "store").absolute()  # relative to the config file, before the home folder
    install(env, "textfile")
    assert root(NUGET_PACKAGES=str(env)) == env  # the environment variable wins over the config
    # a closer config replaces the key; <clear/> drops the farther one
    _config(repo / "src" / "NuGet.Config", '<config><clear /></config>')
    assert root() == home / ".nuget" / "packages"
    _config(repo / "src" / "NuGet.Config", '<config><add key="GLOBALPACKAGESFOLDER" value="%STORE%" /></config>')
    assert root(STORE=str(repo / "store")) == repo / "store"
    # --configfile: that file only
    only = _config(tmp_path / "only.config", '<config><add key="globalPackagesFolder" value="/nonexistent" /></config>')
    (pkg,) = collect_graph([repo / "src" / "App"], environ={}, configfile=only).packages
    assert pkg.nupkg is None and "/nonexistent/packagewithtextfile/1.0.0 (NuGet.Config globalPackagesFolder)" in pkg.problems[0].message


def test_user_config_and_broken_config(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _config(home / ".nuget" / "NuGet" / "NuGet.Config", '<config><add key="globalPackagesFolder" value="../cache" /></config>')
    install(home / ".nuget" / "cache", "textfile")
    write_lock(tmp_path / "p" / "packages.lock.json", ["textfile"])
    (pkg,) = collect_graph([tmp_path / "p"], environ={"HOME": str(home)}).packages
    assert pkg.nupkg.resolve().is_relative_to((home / ".nuget" / "cache").resolve())
    (tmp_path / "p" / "nuget.config").write_text("<configuration><config>")  # broken: a warning, not a crash
    graph = collect_graph([tmp_path / "p"], environ={"HOME": str(home)})
    assert graph.packages[0].nupkg is not None
    assert [(p.code, p.level) for p in graph.problems] == [("TP0003", "warning")] and "nuget.config" in graph.problems[0].message


def test_nuget_config_repository_path_for_packages_config(tmp_path: Path) -> None:
    sln, config = _solution(tmp_path, [("PackageWithTextFile", "1.0")])
    _config(sln / "nuget.config", '<config><add key="repositoryPath" value="lib/pkgs" /></config>')
    folder = sln / "lib" / "pkgs" / "PackageWithTextFile.1.0"
    folder.mkdir(parents=True)
    shutil.copyfile(src("textfile"), folder / "PackageWithTextFile.1.0.nupkg")
    (pkg,) = collect_graph([config], environ={}).packages
    assert pkg.nupkg == (folder / "PackageWithTextFile.1.0.nupkg").absolute() and pkg.problems == ()


# --- scale: each folder is listed a fixed number of times, whatever it holds (issue 12 part 5) -------


def _listings_per_folder(paths: list[Path], monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """collect_graph(paths) with the real os.scandir / os.listdir counted per folder (not replaced)."""
    counts: dict[str, int] = {}
    real_scandir, real_listdir = os.scandir, os.listdir

    def scandir(path="."):  # type: ignore[no-untyped-def]
        counts[os.fspath(path)] = counts.get(os.fspath(path), 0) + 1
        return real_scandir(path)

    def listdir(path="."):  # type: ignore[no-untyped-def]
        counts[os.fspath(path)] = counts.get(os.fspath(path), 0) + 1
        return real_listdir(path)

    with monkeypatch.context() as patch:
        patch.setattr(os, "scandir", scandir)
        patch.setattr(os, "listdir", listdir)
        collect_graph(paths, environ={})
    return counts


def _feed(folder: Path, count: int) -> Path:
    """`count` packages at the root and in two subfolders (hard links: the bytes do not matter here)."""
    for where in (folder, folder / "a", folder / "b"):
        where.mkdir(parents=True)
        for i in range(count):
            os.link(src("textfile"), where / f"p{i:04d}.nupkg")
    return folder


def test_a_flat_folder_is_listed_a_fixed_number_of_times(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: every package listed (and stat'ed) its whole folder again to see whether it was alone in it:
    1,000 files took 11.5 s. The count per folder must not grow with the number of packages."""
    few = _listings_per_folder([_feed(tmp_path / "few", 2)], monkeypatch)
    many = _listings_per_folder([_feed(tmp_path / "many", 150)], monkeypatch)
    for name in ("", "/a", "/b"):
        assert many[str(tmp_path / "many") + name] == few[str(tmp_path / "few") + name], name
    assert many[str(tmp_path / "many" / "a")] == 1  # read once: the kind test stops at the root's own packages
    assert sum(many.values()) == sum(few.values()) <= 12


def test_a_global_folder_is_listed_a_fixed_number_of_times(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counts = []
    for n, name in ((1, "small"), (3, "large")):
        gpf = tmp_path / name
        for package in ("signed", "prerelease", "external")[:n]:
            install(gpf, package)
        counts.append(_listings_per_folder([gpf], monkeypatch)[str(gpf)])
    assert counts[0] == counts[1] <= 6  # the kind tests (project? solution? feed?) and the read


def test_side_by_side_names_are_found_by_prefix(tmp_path: Path) -> None:
    """The packages/ folder lookup searches a sorted listing instead of scanning it for every package."""
    root = tmp_path / "packages"
    names = ["Foo.1.0.0", "foo.bar.2.0.0", "FOO.1.0.1", "Foo.Bar.Baz.1.0", "Fo.1.0", "Foox.1.0", "zzz"]
    for name in names:
        (root / name).mkdir(parents=True)
    listings = Listings()
    assert sorted(listings.starting_with(root, "foo.")) == sorted(["Foo.1.0.0", "foo.bar.2.0.0", "FOO.1.0.1", "Foo.Bar.Baz.1.0"])
    assert sorted(listings.starting_with(root, "foo.bar.")) == sorted(["foo.bar.2.0.0", "Foo.Bar.Baz.1.0"])
    assert listings.starting_with(root, "nothing.") == [] and listings.starting_with(root / "absent", "foo.") == []
