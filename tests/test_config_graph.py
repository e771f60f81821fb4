"""One NuGet.Config reader: the signing policy and the package folders of one `check` run come from
the same files, found with the same environment (user and machine folders, their overrides)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from conftest import identity_of, make_package

from trustpolicy._internal.config.hierarchy import MACHINE_DIR_ENV, USER_DIR_ENV
from trustpolicy._internal.graph import HashCache, collect_graph
from trustpolicy._internal.graph.hashes import b64
from trustpolicy._internal.sign import sign_package
from trustpolicy.cli import main


def lock_file(project: Path, package_id: str, version: str, content_hash: str) -> Path:
    doc = {"version": 1, "dependencies": {"net8.0": {package_id: {
        "type": "Direct", "requested": f"[{version}, )", "resolved": version, "contentHash": content_hash}}}}
    path = project / "packages.lock.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))
    return path


def install_global(root: Path, package: Path, package_id: str, version: str) -> Path:
    """The package as restore leaves it in a global packages folder: <id>/<version>/<id>.<version>.nupkg."""
    folder = root / package_id.lower() / version
    folder.mkdir(parents=True)
    target = folder / f"{package_id.lower()}.{version}.nupkg"
    target.write_bytes(package.read_bytes())
    (folder / f"{package_id.lower()}.nuspec").write_text(
        f'<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd"><metadata><id>{package_id}</id>'
        f"<version>{version}</version></metadata></package>")
    return target


def test_machine_file_gives_both_the_package_folder_and_the_signer(
    pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    signed = sign_package(make_package(tmp_path / "src" / "Corp.Lib.nupkg", "Corp.Lib"), identity=identity_of(pki.leaf),
                          output=tmp_path / "src" / "Corp.Lib.signed.nupkg", on_warning=lambda w: None)
    leaf = hashlib.sha256(pki.leaf.der).hexdigest().upper()

    machine = tmp_path / "machine"  # the override of the machine-wide folder
    machine.mkdir()
    (machine / "corp.config").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n'
        '  <config>\n    <add key="signatureValidationMode" value="require" />\n'
        '    <add key="globalPackagesFolder" value="store" />\n  </config>\n'
        f'  <trustedSigners>\n    <author name="Corp">\n      <certificate fingerprint="{leaf}" hashAlgorithm="SHA256" allowUntrustedRoot="true" />\n'
        "    </author>\n  </trustedSigners>\n</configuration>\n")
    installed = install_global(machine / "store", signed, "Corp.Lib", "1.0.0")
    (tmp_path / "user").mkdir()  # the override of the user folder: no NuGet.Config in it
    home = tmp_path / "home"  # the real default folder <home>/.nuget/packages stays empty
    home.mkdir()
    _, content = HashCache().content(installed)
    project = tmp_path / "repo" / "App"
    lock_file(project, "Corp.Lib", "1.0.0", b64(content))

    monkeypatch.setenv(USER_DIR_ENV, str(tmp_path / "user"))
    monkeypatch.setenv(MACHINE_DIR_ENV, str(machine))
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("NUGET_PACKAGES", raising=False)
    code = main(["check", str(project), "--format", "json", "--no-cache", "--revocation", "off"])
    report = json.loads(capsys.readouterr().out)
    (package,) = report["packages"]
    assert package["path"] == str(installed)  # found through the machine file's globalPackagesFolder
    assert package["trustedSigner"]["name"] == "Corp"  # trusted through the machine file's trustedSigners
    assert report["mode"] == "require"  # and judged in the machine file's mode
    assert str(machine / "corp.config") in report["configFiles"]
    assert code == 0 and package["verdict"] == "valid"

    # Without the machine folder neither is seen: default accept mode, and the package is not found.
    monkeypatch.setenv(MACHINE_DIR_ENV, "")
    assert main(["check", str(project), "--format", "json", "--no-cache", "--revocation", "off"]) == 1
    report = json.loads(capsys.readouterr().out)
    (package,) = report["packages"]
    assert report["mode"] == "accept" and report["configFiles"] == []
    assert package["path"] is None and [i["code"] for i in package["issues"]] == ["TP0001"]


def test_the_graph_walk_reads_the_environ_it_is_given(tmp_path: Path) -> None:
    package = make_package(tmp_path / "src" / "Lib.nupkg", "Lib")
    machine = tmp_path / "m"
    machine.mkdir()
    (machine / "a.config").write_text('<configuration><config><add key="globalPackagesFolder" value="%STORE%" /></config></configuration>')
    installed = install_global(tmp_path / "store", package, "Lib", "1.0.0")
    _, content = HashCache().content(installed)
    project = tmp_path / "App"
    lock_file(project, "Lib", "1.0.0", b64(content))
    environ = {MACHINE_DIR_ENV: str(machine), USER_DIR_ENV: "", "STORE": str(tmp_path / "store")}
    (found,) = collect_graph([project], environ=environ).packages
    assert found.nupkg == installed
    (missing,) = collect_graph([project], environ={USER_DIR_ENV: "", MACHINE_DIR_ENV: ""}).packages
    assert missing.nupkg is None
