"""Every real restore file in tests/data/restore parses into the packages tests/data/README.md states."""

from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import pytest
from graphdata.layout import RESTORE, src

from trustpolicy._internal.graph import collect_graph, parse_version, verify_graph_hashes

ASSETS = {
    "0-darrin-0+Catalog__Catalog.Api__obj__project.assets.json": 113,
    "00009027+DSCC_0009027-Backend__obj__project.assets.json": 237,
    "00Theory+BookStoreApi__obj__project.assets.json": 25,
}
LOCKS = {  # distinct packages (Project entries excluded), README table
    "1llum1n4t1s+TurnOffTheDisplay__packages.lock.json": 30,
    "Aida-Enna+Doorbell__packages.lock.json": 4,
    "AnthonyDickson+oxpecker-todos__packages.lock.json": 9,
    "Bluefissure+Dalamud-OBS__packages.lock.json": 8,
    "CHOYSEN+node-windows-ocr__lib__packages.lock.json": 19,
    "Caraxi+Honorific__packages.lock.json": 2,
    "CaringDev+PRDA__packages.lock.json": 2,
}
CONFIGS = {
    "alc-br+IControlIT__IControlIT__packages.config": 98,
    "alc-br+IControlIT__WS_IControlIT__packages.config": 1,
    "blue0x1+sqlwinds__SQL__packages.config": 6,
    "exinoss+PetGPS__PetGPS__packages.config": 22,
}


def test_every_corpus_file_is_covered() -> None:
    names = {p.name for p in RESTORE.iterdir() if p.is_file()}
    assert names == set(ASSETS) | set(LOCKS) | set(CONFIGS)


@pytest.mark.parametrize(("name", "count"), sorted((ASSETS | LOCKS | CONFIGS).items()))
def test_corpus_file_gives_its_packages(name: str, count: int, tmp_path: Path) -> None:
    path = RESTORE / name
    graph = collect_graph([path], packages_dirs=[tmp_path], environ={})
    assert len(graph.packages) == count
    kind = "assets" if name in ASSETS else "lock" if name in LOCKS else "packages.config"
    for pkg in graph.packages:
        assert pkg.origin.kind == kind and pkg.origin.path == path
        assert pkg.nupkg is None and [p.code for p in pkg.problems if p.level == "error"] == ["TP0001"]
        # versions are normalized and the folder we searched is <root>/<lower id>/<lower normalized version>
        assert pkg.version == parse_version(pkg.version).normalized
        assert str(tmp_path / pkg.id.lower() / pkg.version.lower()) in pkg.problems[-1].message
        if kind != "packages.config":
            (record, value), = pkg.expected.items()
            assert record == ("sha512" if kind == "assets" else "contentHash")
            assert len(base64.b64decode(value, validate=True)) == 64
        assert verify_graph_hashes(pkg) == ()  # nothing to hash, one record: nothing disagrees
    assert len({p.key for p in graph.packages}) == count


def _raw_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8-sig").splitlines()


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_assets_values_match_the_file(name: str) -> None:
    path = RESTORE / name
    doc = json.loads(path.read_text(encoding="utf-8-sig"))
    graph = collect_graph([path], environ={})
    lines = _raw_lines(path)
    libraries = doc["libraries"]
    for pkg in graph.packages:
        key = pkg.origin.pointer.removeprefix("/libraries/").replace("~1", "/").replace("~0", "~")
        assert pkg.expected == {"sha512": libraries[key]["sha512"]}
        assert key == f"{pkg.id}/{pkg.version}"
        assert lines[pkg.origin.line - 1].strip() == f'"{key}": {{'
        assert pkg.origin.targets == tuple(doc["targets"])
    # the recorded Windows folder is reported, never joined to the current directory
    (note,) = graph.problems
    assert note.level == "info" and next(iter(doc["packageFolders"])) in note.message


def test_assets_reference_values() -> None:
    graph = collect_graph([RESTORE / "00Theory+BookStoreApi__obj__project.assets.json"], environ={})
    core = next(p for p in graph.packages if p.id == "AWSSDK.Core")
    assert core.version == "3.7.100.14"
    assert core.expected["sha512"].startswith("gnEgxBlk4PFEfdPE8Lkf4+D16MZFYSaW7")
    catalog = collect_graph([RESTORE / "0-darrin-0+Catalog__Catalog.Api__obj__project.assets.json"], environ={})
    first = catalog.packages[0]
    assert (first.id, first.version, first.origin.line) == ("AspNetCore.HealthChecks.MongoDb", "6.0.2", 1895)
    assert first.origin.targets == ("net5.0",)
    assert first.expected["sha512"] == "0R3NVbsjMhS5fd2hGijzQNKJ0zQBv/qMC7nkpmnbtgribCj7vfNdAhSqv4lwbibffRWPW5A/7VNJMX4aPej0WQ=="


@pytest.mark.parametrize("name", sorted(LOCKS))
def test_lock_values_match_the_file(name: str) -> None:
    path = RESTORE / name
    doc = json.loads(path.read_text())
    expected: dict[tuple[str, str], set[str]] = {}
    for target, entries in doc["dependencies"].items():
        for pid, entry in entries.items():
            if entry["type"] != "Project":
                expected.setdefault((pid, entry["resolved"]), set()).add(target)
    graph = collect_graph([path], environ={})
    lines = _raw_lines(path)
    got = {(p.id, p.version): set(p.origin.targets) for p in graph.packages}
    assert got == expected
    for pkg in graph.packages:
        target = pkg.origin.targets[0]
        assert pkg.expected == {"contentHash": doc["dependencies"][target][pkg.id]["contentHash"]}
        assert lines[pkg.origin.line - 1].strip() == f'"{pkg.id}": {{'


def test_lock_reference_values() -> None:
    turn_off = collect_graph([RESTORE / "1llum1n4t1s+TurnOffTheDisplay__packages.lock.json"], environ={})
    versions = {p.id: p.version for p in turn_off.packages}
    assert versions["HarfBuzzSharp"] == "8.3.1.3"
    assert versions["Avalonia.Angle.Windows.Natives"] == "2.1.27548.20260419"
    rid_only = [p.id for p in turn_off.packages if p.origin.targets == ("net10.0-windows8.0/win-x64",)]
    assert rid_only == ["runtime.win-x64.Microsoft.DotNet.ILCompiler"]
    assert sum("net10.0-windows8.0/win-x64" in p.origin.targets for p in turn_off.packages) == 10

    ocr = collect_graph([RESTORE / "CHOYSEN+node-windows-ocr__lib__packages.lock.json"], environ={})
    assert {"10.0.26100.1742", "2.0.0-beta4.22272.1"} <= {p.version for p in ocr.packages}
    assert all(p.origin.targets == (".NETFramework,Version=v4.8.1",) for p in ocr.packages)  # the RID target is empty

    obs = collect_graph([RESTORE / "Bluefissure+Dalamud-OBS__packages.lock.json"], environ={})
    assert "obs-websocket-dotnet" not in {p.id for p in obs.packages} and len(obs.packages) == 8

    prda = collect_graph([RESTORE / "CaringDev+PRDA__packages.lock.json"], environ={})  # CRLF
    assert [(p.id, p.version, p.origin.line) for p in prda.packages] == [
        ("Microsoft.AspNetCore.OpenApi", "9.0.0-preview.7.24406.2", 5), ("Microsoft.OpenApi", "1.6.17", 14)]


def test_assets_and_lock_files_agree_on_shared_packages() -> None:
    """Cross-check (tests/data/README.md): five (id, version) pairs in both kinds, sha512 == contentHash for each."""
    assets = collect_graph([RESTORE / n for n in ASSETS], environ={})
    locks = collect_graph([RESTORE / n for n in LOCKS], environ={})
    a = {p.key: p.expected["sha512"] for p in assets.packages}
    shared = {p.key: p.expected["contentHash"] for p in locks.packages if p.key in a}
    assert sorted(shared) == [("system.buffers", "4.5.1"), ("system.memory", "4.5.5"),
                              ("system.numerics.vectors", "4.5.0"), ("system.runtime.compilerservices.unsafe", "6.0.0"),
                              ("system.threading.tasks.extensions", "4.5.4")]
    assert all(a[k] == v for k, v in shared.items())


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_packages_config_values_match_the_file(name: str) -> None:
    path = RESTORE / name
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    listed = re.findall(r'<package id="([^"]+)" version="([^"]+)"', raw.decode("utf-8-sig"))
    graph = collect_graph([path], environ={})
    assert [(p.id, p.version) for p in graph.packages] == [(i, parse_version(v).normalized) for i, v in listed]
    lines = _raw_lines(path)
    for pkg in graph.packages:
        assert f'id="{pkg.id}"' in lines[pkg.origin.line - 1]


def test_packages_config_reference_values() -> None:
    graph = collect_graph([RESTORE / "alc-br+IControlIT__IControlIT__packages.config"], environ={})
    versions = {p.id: p.version for p in graph.packages}
    assert versions["Microsoft.AspNet.Mvc"] == "4.0.30506"
    assert versions["AjaxMin"] == "4.97.4951.28483"
    pet = collect_graph([RESTORE / "exinoss+PetGPS__PetGPS__packages.config"], environ={})
    assert {p.id: p.version for p in pet.packages}["System.Data.SQLite"] == "1.0.115.5"


def test_packages_config_solution_folder_uses_original_version_text(tmp_path: Path) -> None:
    """packages/Microsoft.AspNet.Mvc.4.0.30506.0/ (ToString form), global folder microsoft.aspnet.mvc/4.0.30506."""
    project = tmp_path / "sln" / "IControlIT"
    project.mkdir(parents=True)
    shutil.copyfile(RESTORE / "alc-br+IControlIT__IControlIT__packages.config", project / "packages.config")
    folder = tmp_path / "sln" / "packages" / "Microsoft.AspNet.Mvc.4.0.30506.0"
    folder.mkdir(parents=True)
    shutil.copyfile(src("textfile"), folder / "Microsoft.AspNet.Mvc.4.0.30506.0.nupkg")
    home = tmp_path / "home"
    graph = collect_graph([project], environ={"HOME": str(home)})
    assert len(graph.packages) == 98
    mvc = next(p for p in graph.packages if p.id == "Microsoft.AspNet.Mvc")
    assert mvc.nupkg == folder / "Microsoft.AspNet.Mvc.4.0.30506.0.nupkg" and mvc.problems == ()
    razor = next(p for p in graph.packages if p.id == "Microsoft.AspNet.Razor")
    (missing,) = razor.problems
    assert missing.code == "TP0001"
    assert str(tmp_path / "sln" / "packages") in missing.message
    assert str(home / ".nuget" / "packages" / "microsoft.aspnet.razor" / "2.0.30506") in missing.message
