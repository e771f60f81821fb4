"""Issue 12 part 6: files that are not what their names say, and paths the OS refuses.

Every command runs in a subprocess with a timeout: before the fix, opening a FIFO blocked forever.
Real FIFOs (os.mkfifo), real devices (/dev/zero, /dev/null, through links named *.nupkg), real link
loops, a real over-long path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from graphdata.layout import install, src, write_assets

from trustpolicy._internal.graph import collect_graph

TIMEOUT = 60  # seconds; a blocked open() never returns


def cli(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([sys.executable, "-m", "trustpolicy", *argv], capture_output=True, text=True,
                              timeout=TIMEOUT, cwd=cwd)
    except subprocess.TimeoutExpired:
        pytest.fail(f"trustpolicy {' '.join(argv)} did not end within {TIMEOUT} s (blocked on a FIFO?)")


def hostile_folder(folder: Path) -> dict[str, Path]:
    """A folder of .nupkg files next to a FIFO, a device, a link loop and a broken link, all named *.nupkg."""
    folder.mkdir(parents=True)
    good = folder / "PackageWithTextFile.1.0.nupkg"
    shutil.copyfile(src("textfile"), good)
    bad = {"fifo": folder / "fifo.nupkg", "device": folder / "device.nupkg", "loop": folder / "loop.nupkg",
           "broken": folder / "broken.nupkg"}
    os.mkfifo(bad["fifo"])
    bad["device"].symlink_to("/dev/zero")
    bad["loop"].symlink_to(bad["loop"].name)
    bad["broken"].symlink_to("gone.nupkg")
    return bad


def test_verify_on_a_fifo_device_or_folder_is_unreadable_not_a_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "x.nupkg"
    os.mkfifo(fifo)
    device = tmp_path / "zero.nupkg"
    device.symlink_to("/dev/zero")
    folder = tmp_path / "dir.nupkg"
    folder.mkdir()
    result = cli("verify", str(fifo), str(device), "--format", "json")
    assert result.returncode == 1, result.stderr  # verify's rule: an unreadable package is an invalid verdict
    verdicts = {v["path"]: v for v in json.loads(result.stdout)["packages"]}
    expected = {str(fifo): "FIFO", str(device): "character device"}
    for path, kind in expected.items():
        (issue,) = verdicts[path]["issues"]
        assert verdicts[path]["verdict"] == "invalid" and issue["code"] == "TP0003" and kind in issue["message"]
    # A folder is no package file at all: unusable input, as for `inspect` (exit 2), the others still judged.
    result = cli("verify", str(fifo), str(folder), "--format", "json")
    assert result.returncode == 2 and f"{folder}: is a folder" in result.stderr
    assert [v["path"] for v in json.loads(result.stdout)["packages"]] == [str(fifo)]


def test_inspect_on_a_fifo_names_it_and_carries_on(tmp_path: Path) -> None:
    fifo = tmp_path / "x.nupkg"
    os.mkfifo(fifo)
    signature = tmp_path / "loose.signature.p7s"
    os.mkfifo(signature)
    result = cli("inspect", str(fifo), str(signature), str(src("textfile")), "--format", "json")
    assert result.returncode == 2
    assert [r["id"] for r in json.loads(result.stdout)] == ["PackageWithTextFile"]
    lines = result.stderr.splitlines()
    assert lines == [f"trustpolicy: error: {fifo}: TP0003: cannot open the package: it is a FIFO (named pipe), "
                     "not a regular file",
                     f"trustpolicy: error: {signature}: TP0003: cannot read the signature file: it is a FIFO "
                     "(named pipe), not a regular file"]


def test_inspect_and_verify_give_the_same_code_for_an_unreadable_file(tmp_path: Path) -> None:
    """Issue 12 part 3: NU3008 from inspect and TP0003 from verify for the same file, before."""
    broken = tmp_path / "broken.nupkg"
    data = src("textfile").read_bytes()
    broken.write_bytes(data[: data.rindex(b"PK\x05\x06")])  # no end record: not a zip any more
    inspected = cli("inspect", str(broken))
    verified = cli("verify", str(broken), "--format", "json")
    (verdict,) = json.loads(verified.stdout)["packages"]
    assert [i["code"] for i in verdict["issues"]] == ["TP0003"]
    assert inspected.returncode == 2 and f"{broken}: TP0003: " in inspected.stderr and "NU3008" not in inspected.stderr


def test_check_reports_every_special_file_in_a_folder_of_packages(tmp_path: Path) -> None:
    """Before: the FIFO, device, loop and broken link were dropped; the run said "1 package, valid"."""
    bad = hostile_folder(tmp_path / "feed")
    result = cli("check", str(tmp_path / "feed"), "--mode", "accept", "--no-cache", "--revocation", "off",
                 "--format", "json")
    assert result.returncode == 1, result.stderr
    packages = {p["path"]: p for p in json.loads(result.stdout)["packages"]}
    assert packages[str(tmp_path / "feed" / "PackageWithTextFile.1.0.nupkg")]["verdict"] == "valid"
    for name, path in bad.items():
        package = packages[str(path)]
        assert package["verdict"] == "invalid" and "TP0003" in {i["code"] for i in package["issues"]}, name
    fifo_messages = " ".join(i["message"] for i in packages[str(bad["fifo"])]["issues"])
    assert "FIFO" in fifo_messages


def test_collect_graph_gives_special_files_a_finding_with_their_path(tmp_path: Path) -> None:
    bad = hostile_folder(tmp_path / "feed")
    rows = {p.nupkg: p for p in collect_graph([tmp_path / "feed"], environ={}).packages}
    for name, path in bad.items():
        (finding,) = rows[path].problems
        assert finding.code == "TP0003" and finding.where is not None and finding.where.path == str(path), name


def test_check_on_a_global_folder_with_a_fifo_package(tmp_path: Path) -> None:
    """A FIFO where the .nupkg belongs: before, the package was "missing" (or the folder skipped)."""
    gpf = tmp_path / "gpf"
    nupkg = install(gpf, "textfile")
    nupkg.unlink()
    os.mkfifo(nupkg)
    alone = install(gpf, "external", metadata=False, sha512=False)  # only the archive marks the folder
    alone.unlink()
    alone.symlink_to("/dev/zero")
    graph = collect_graph([gpf], environ={})
    by_file = {p.nupkg: p for p in graph.packages}
    assert set(by_file) == {nupkg, alone}
    for path in (nupkg, alone):
        assert [f.code for f in by_file[path].problems] == ["TP0003"] and str(path) in by_file[path].problems[0].message
    assets = write_assets(tmp_path / "app" / "obj" / "project.assets.json", ["textfile"], [gpf])
    result = cli("check", str(assets), "--mode", "accept", "--no-cache", "--revocation", "off", "--format", "json")
    (package,) = json.loads(result.stdout)["packages"]
    assert result.returncode == 1 and package["path"] == str(nupkg) and package["verdict"] == "invalid"
    assert "TP0003" in {i["code"] for i in package["issues"]}


def test_graph_files_and_configs_that_are_fifos_are_refused(tmp_path: Path) -> None:
    assets = tmp_path / "project.assets.json"
    os.mkfifo(assets)
    result = cli("check", str(assets))
    assert result.returncode == 2 and result.stderr == (
        f"trustpolicy: error: {assets}: cannot read graph file: it is a FIFO (named pipe), not a regular file\n")
    config = tmp_path / "NuGet.Config"
    os.mkfifo(config)
    result = cli("check", str(src("textfile")), "--configfile", str(config))
    assert result.returncode == 2 and f"{config}: is a FIFO (named pipe), not a config file" in result.stderr


def test_check_on_a_path_longer_than_the_os_allows(tmp_path: Path) -> None:
    """Before: exit 3, "internal error: OSError: [Errno 36] File name too long"."""
    for long in (tmp_path / ("a" * 300), tmp_path.joinpath(*["b" * 200] * 30)):
        result = cli("check", str(long))
        assert result.returncode == 2, result.stderr
        assert result.stderr == f"trustpolicy: error: {long}: cannot be read: File name too long\n"


def test_check_output_never_replaces_a_device_or_fifo(tmp_path: Path) -> None:
    """--output onto a FIFO replaced it with a regular file (as root, onto /dev/null, the device)."""
    fifo = tmp_path / "report.json"
    os.mkfifo(fifo)
    result = cli("check", str(src("textfile")), "--mode", "accept", "--no-cache", "--revocation", "off",
                 "--output", str(fifo))
    assert result.returncode == 2 and "it is a FIFO (named pipe), not a regular file" in result.stderr
    assert os.path.exists(fifo) and not os.path.isfile(fifo)


def test_trust_on_a_linked_config_edits_the_target_and_keeps_the_link(tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "NuGet.Config"
    real.parent.mkdir()
    original = '<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n  <!-- mine -->\n</configuration>\n'
    real.write_text(original)
    link = tmp_path / "project" / "NuGet.Config"
    link.parent.mkdir()
    link.symlink_to(real)
    fingerprint = "AB" * 32
    result = cli("trust", "--configfile", str(link), "certificate", "Contoso", fingerprint)
    assert result.returncode == 0, result.stderr
    assert link.is_symlink() and link.resolve() == real
    text = real.read_text()
    assert fingerprint in text and "<!-- mine -->" in text and text.startswith(original.split("</configuration>")[0])
    assert sorted(p.name for p in real.parent.iterdir()) == ["NuGet.Config"]
    listed = cli("trust", "--configfile", str(link), "list")
    assert listed.returncode == 0 and "Contoso" in listed.stdout
