"""Package folders given directly: a folder of .nupkg files, or a global packages folder (graph.md 5, 7)."""

from __future__ import annotations

import os
from pathlib import Path

from trustpolicy.archive import PackageArchive
from trustpolicy.errors import TrustPolicyError
from trustpolicy.graph._io import XML_MAX_BYTES, local_name, parse_xml, read_bytes
from trustpolicy.graph.locate import METADATA_FILE, Entry
from trustpolicy.graph.model import Finding, Origin
from trustpolicy.graph.versions import try_parse_version


def _subdirs(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    except OSError:
        return []


def _nupkgs(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if p.name.lower().endswith(".nupkg") and p.is_file())
    except OSError:
        return []


def is_version_folder(folder: Path) -> bool:
    """`<lid>/<lver>/` of a global (or hierarchical) folder: a completion marker or `<lid>.<lver>.nupkg`."""
    stem = f"{folder.parent.name}.{folder.name}.nupkg"
    return any((folder / name).is_file() for name in (METADATA_FILE, stem + ".sha512", stem))


def looks_like_global_folder(folder: Path) -> bool:
    return any(is_version_folder(v) for d in _subdirs(folder) for v in _subdirs(d))


def looks_like_flat_folder(folder: Path) -> bool:
    """NuGet's own test for a v2 feed: a .nupkg at the root or one level down (section 7)."""
    return bool(_nupkgs(folder)) or any(_nupkgs(d) for d in _subdirs(folder))


def read_flat_folder(folder: Path) -> list[Entry]:
    """Every .nupkg at the root or one level down; id and version come from its nuspec."""
    files = _nupkgs(folder) + [p for d in _subdirs(folder) for p in _nupkgs(d)]
    return [nupkg_entry(p, "folder", one_per_folder=len(_nupkgs(p.parent)) == 1) for p in files]


def nupkg_entry(nupkg: Path, kind: str, one_per_folder: bool = False) -> Entry:
    """An Entry for a .nupkg whose name is not trusted: the nuspec inside says what it is.

    `folder` (where `.nupkg.metadata` is read) is set only when the .nupkg is alone in its folder
    (`packages/<Id>.<Version>/`); a metadata file next to many packages describes none of them.
    """
    origin = Origin(nupkg, kind)
    folder = nupkg.parent if one_per_folder else None
    try:
        package_id, version_text = PackageArchive.open(nupkg).read_nuspec()
    except TrustPolicyError as error:
        stem = nupkg.name[: -len(".nupkg")]
        entry = Entry(stem, None, "", origin, nupkg=nupkg, folder=folder)
        entry.problems.append(Finding("TP0003", f"cannot read the package's id and version: {error.message}", "error", origin))
        return entry
    entry = Entry(package_id, try_parse_version(version_text), version_text, origin, nupkg=nupkg, folder=folder)
    if entry.version is None:
        entry.problems.append(Finding("TP0003", f"the nuspec version {version_text!r} is not a valid NuGet version", "error", origin))
    return entry


def read_global_folder(root: Path) -> tuple[list[Entry], list[Finding]]:
    """Every `<lid>/<lver>/` version folder; the extracted `<lid>.nuspec` gives the id's original case."""
    entries: list[Entry] = []
    problems: list[Finding] = []
    for id_dir in _subdirs(root):
        for version_dir in _subdirs(id_dir):
            if not is_version_folder(version_dir):
                continue
            lid, lver = id_dir.name, version_dir.name
            nupkg = version_dir / f"{lid}.{lver}.nupkg"
            origin = Origin(version_dir, "global-folder")
            package_id = _nuspec_id(version_dir / f"{lid}.nuspec", lid) or lid
            version = try_parse_version(lver)
            entry = Entry(package_id, version, lver, origin, nupkg=nupkg if nupkg.is_file() else None, folder=version_dir)
            if version is None:
                entry.problems.append(Finding("TP0003", f"folder name {lver!r} is not a NuGet version", "error", origin))
            if entry.nupkg is None:
                entry.problems.append(Finding("TP0001", f"{nupkg.name} is missing in {version_dir}: no archive to verify", "error", origin))
            entries.append(entry)
    if not entries:
        problems.append(Finding("TP0001", f"no packages found in {root}", "warning", Origin(root, "global-folder")))
    return entries, problems


def _nuspec_id(path: Path, lid: str) -> str | None:
    """The id as written in the extracted nuspec, if it names the same package as the folder."""
    try:
        if not path.is_file() or os.path.getsize(path) > XML_MAX_BYTES:
            return None
        root = parse_xml(read_bytes(path, XML_MAX_BYTES, "nuspec"), path, "nuspec")
    except (TrustPolicyError, OSError):
        return None  # display only; the .nupkg is what gets verified
    for metadata in root:
        if local_name(metadata) == "metadata":
            for child in metadata:
                if local_name(child) == "id" and (child.text or "").strip().lower() == lid.lower():
                    return (child.text or "").strip()
    return None
