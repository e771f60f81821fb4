"""Write real restore artefacts (global folder, assets, lock, packages.config) around corpus packages.

Hashes come from docs/graph.md section 3.4 (computed there independently of our code), so a test that
checks `verify_graph_hashes` against them can fail for a wrong implementation.
"""

from __future__ import annotations

import base64
import hashlib
import json
import shutil
from pathlib import Path

from datafiles import NUGET, RESTORE  # noqa: F401 - RESTORE: re-exported for the graph tests

# file -> (id, version in nuspec, whole-file sha512, contentHash) from docs/graph.md section 3.4
PACKAGES = {
    "signed": ("signed/SignedPackage.1.0.0.nupkg", "SignedPackage", "1.0.0",
               "l9Df9gOAq1ZOeGPyFspj/1eUYYaedkWnynWJYc1p1qz/gFlXLSTft6pAmrde9I9xkZxg4aEFqPicoZNm3/+o/A==",
               "+OEohCE1z5qwzMffkI/9+ebbr6/cl8YD79nOo1ZItyfGzpiUUqKtYwHpKvHwvc578OQCxjXAlGpVkb9F3i/Kiw=="),
    "reposigned": ("signed/Test.Reposigned.1.0.0.nupkg", "Test.Reposigned", "1.0.0",
                   "LaTt/epem0jSkND34mIzrLwUHL3BFdsOj75WRJSYtod2h0jSwfjdGBaQlZ/H8KRDuliLbOFGLXj4z0+a575UcQ==",
                   "aHdH0zc2b34IN+vs5xnBx3OdoX4O/O+psU7sxo9/zD5IprRCLwDAKHzKwDHK+M8kPR4jUy+3MzavY8PSWG+ExQ=="),
    "crl": ("signed/UnavailableCrlPackage.nupkg", "TestSigned.leaf-1", "1.0.0",
            "jwptJRRLaMPAUpjR+joDflPf7qMPrVRXZi1/lp9jKvW6bwYjGNw0frhm+Bbla1/5Kipzsd6cNu908y/bpKd3hg==",
            "EPTOvr8cfu1fuvxLy2yXrqf8zgZfefnvRt3qAWRQ60ciQXtqIbPMDAKUu2thgoYEWBXvOqjLcI3F8DXEo5p4lg=="),
    "untrustedts": ("signed/UntrustedTimestampPackage.nupkg", "TestSigned.leaf-1", "1.0.0",
                    "A+VW6DfhKcJiupjlNtJl66EXJUPBd2hDvyKMeABeTEVOnjwH6xmYGEJG2+jqKQpQKj1sgciAiEVye2KUMnTyLA==",
                    "EPTOvr8cfu1fuvxLy2yXrqf8zgZfefnvRt3qAWRQ60ciQXtqIbPMDAKUu2thgoYEWBXvOqjLcI3F8DXEo5p4lg=="),
    "versioning": ("signed/nuget.versioning.5.0.0.nupkg", "NuGet.Versioning", "5.0.0",
                   "z9o0IMRD2eYbwCI9Nlqc6c7HLwm11aVcSqKtmsR7HmYlYw/qgFkd+v81AtNX4sFFBDcGxlg/8pC3TjbcoBL5zg==",
                   "MLFLRQoZv6RGbaxxSHWOM+Ve2DvTVNbS9adF7YS+jPbjm0vNzmRie7/UX9/7UVTV0nZ8YjWg8uRPJh9R0BartQ=="),
    "textfile": ("unsigned/PackageWithTextFile.1.0.nupkg", "PackageWithTextFile", "1.0",
                 "+b9lw+wbSUywTA/L1KsF2yk4J83IdF1o3Gxlv8hWB3aK+GYQAZ58kWfkIyQoE0mJMOCHEu/Cbp1ccvr1LFNBEw==",
                 "+b9lw+wbSUywTA/L1KsF2yk4J83IdF1o3Gxlv8hWB3aK+GYQAZ58kWfkIyQoE0mJMOCHEu/Cbp1ccvr1LFNBEw=="),
    "external": ("unsigned/PackageWithExternalDependency.1.0.nupkg", "PackageWithExternalDependency", "1.0",
                 "hM4hZF9s2iJ2miX5XG4dr3jTgKQiV5LYTERDIpngBXsxPrlWKTAo0hHIFPSMlm+EUBv4x/RvxwtBgJJLaWqPGw==",
                 "hM4hZF9s2iJ2miX5XG4dr3jTgKQiV5LYTERDIpngBXsxPrlWKTAo0hHIFPSMlm+EUBv4x/RvxwtBgJJLaWqPGw=="),
    "prerelease": ("unsigned/PreReleaseTestPackage.A.1.0.0-a.nupkg", "PreReleaseTestPackage.A", "1.0.0-a",
                   "azI+MHBIyPi3i76cqGJYQ5Ak4utTfAqBnEy7xckj9fi6gz0mxI8x7LA3rUKfcAq1emIuLcOOmewl1CUm4cAzDA==",
                   "azI+MHBIyPi3i76cqGJYQ5Ak4utTfAqBnEy7xckj9fi6gz0mxI8x7LA3rUKfcAq1emIuLcOOmewl1CUm4cAzDA=="),
}


def src(name: str) -> Path:
    return NUGET / PACKAGES[name][0]


def ident(name: str) -> tuple[str, str]:
    """(id, normalized version)."""
    _, pid, version, _, _ = PACKAGES[name]
    return pid, {"1.0": "1.0.0"}.get(version, version)


def whole_hash(name: str) -> str:
    return PACKAGES[name][3]


def content_hash(name: str) -> str:
    return PACKAGES[name][4]


def b64sha512(path: Path) -> str:
    return base64.b64encode(hashlib.sha512(path.read_bytes()).digest()).decode()


def install(root: Path, name: str, *, from_name: str | None = None, metadata: bool = True, sha512: bool = True,
            nupkg: bool = True, metadata_hash: str | None = None) -> Path:
    """Extract like NuGet into a global packages folder: <lid>/<lver>/ with .nupkg, .sha512, .nupkg.metadata, nuspec.

    `from_name` puts another package's bytes under this package's name (a swapped file) while the
    .sha512 / .nupkg.metadata keep describing `name`.
    """
    pid, version = ident(name)
    lid, lver = pid.lower(), version.lower()
    folder = root / lid / lver
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{lid}.{lver}.nupkg"
    if nupkg:
        shutil.copyfile(src(from_name or name), target)
    if sha512:
        (folder / f"{lid}.{lver}.nupkg.sha512").write_text(whole_hash(name))
    if metadata:
        doc = {"version": 2, "contentHash": metadata_hash or content_hash(name), "source": "https://api.nuget.org/v3/index.json"}
        (folder / ".nupkg.metadata").write_text(json.dumps(doc, indent=2))
    (folder / f"{lid}.nuspec").write_text(
        f'<?xml version="1.0" encoding="utf-8"?>\n<package xmlns="http://schemas.microsoft.com/packaging/2013/05/nuspec.xsd">'
        f"<metadata><id>{pid}</id><version>{version}</version></metadata></package>"
    )
    return target


def write_assets(path: Path, names: list[str], folders: list[Path | str], *, hashes: dict[str, str] | None = None,
                 target: str = "net8.0") -> Path:
    """A version-3 project.assets.json listing `names` as package libraries."""
    hashes = hashes or {}
    libraries, entries = {}, {}
    for name in names:
        pid, version = ident(name)
        key = f"{pid}/{version}"
        entries[key] = {"type": "package", "compile": {"lib/net8.0/_._": {}}}
        libraries[key] = {
            "sha512": hashes.get(name, content_hash(name)),
            "type": "package",
            "path": f"{pid.lower()}/{version.lower()}",
            "files": [".nupkg.metadata", ".signature.p7s", f"{pid.lower()}.{version.lower()}.nupkg.sha512", f"{pid.lower()}.nuspec"],
        }
    doc = {
        "version": 3,
        "targets": {target: entries},
        "libraries": libraries,
        "projectFileDependencyGroups": {target: [f"{ident(n)[0]} >= {ident(n)[1]}" for n in names]},
        "packageFolders": {(str(f).rstrip("/\\") + "/" if not str(f).endswith("\\") else str(f)): {} for f in folders},
        "project": {"version": "1.0.0", "restore": {"projectName": "Demo", "projectStyle": "PackageReference"},
                    "frameworks": {target: {"targetAlias": target, "dependencies": {}}}},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2))
    return path


def write_lock(path: Path, names: list[str], *, hashes: dict[str, str] | None = None, version: int = 1,
               target: str = "net8.0", crlf: bool = False) -> Path:
    hashes = hashes or {}
    entries = {}
    for i, name in enumerate(names):
        pid, ver = ident(name)
        entry = {"type": "Direct" if i == 0 else "Transitive"}
        if i == 0:
            entry["requested"] = f"[{ver}, )"
        entry |= {"resolved": ver, "contentHash": hashes.get(name, content_hash(name))}
        entries[pid] = entry
    entries["Other.Project"] = {"type": "Project", "dependencies": {"X": "[1.0.0, )"}}
    if version >= 3:
        doc = {"version": version, target: {"framework": ".NETCoreApp,Version=v8.0", "dependencies": entries}}
    else:
        doc = {"version": version, "dependencies": {target: entries}}
    text = json.dumps(doc, indent=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.replace("\n", "\r\n").encode() if crlf else text.encode())
    return path


def write_packages_config(path: Path, packages: list[tuple[str, str]]) -> Path:
    lines = ["\ufeff<?xml version=\"1.0\" encoding=\"utf-8\"?>", "<packages>"]
    lines += [f'  <package id="{pid}" version="{ver}" targetFramework="net472" />' for pid, ver in packages]
    lines.append("</packages>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    return path
