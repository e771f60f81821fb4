"""Package folders given directly: a folder of .nupkg files, or a global packages folder (docs/graph.md 5, 7)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from trustpolicy._internal.archive import PackageArchive
from trustpolicy._internal.fileutil import not_regular
from trustpolicy._internal.graph._io import XML_MAX_BYTES, local_name, parse_xml, read_bytes
from trustpolicy._internal.graph.locate import METADATA_FILE, Entry, exists_as_file, is_file
from trustpolicy._internal.graph.model import Origin, finding
from trustpolicy._internal.graph.versions import try_parse_version
from trustpolicy.codes import Code
from trustpolicy.errors import TrustPolicyError
from trustpolicy.models import Issue, Level


@dataclass(frozen=True)
class _Listing:
    """One folder, listed once: its visible subfolders and the `*.nupkg` names that are not folders."""

    folders: list[Path]
    nupkgs: list[Path]  # regular files, and FIFOs, devices or broken links: those are reported when opened


def _list(folder: Path) -> _Listing:
    """One scandir of `folder` (sorted by name); an unreadable folder lists as empty."""
    try:
        with os.scandir(folder) as listing:
            items = sorted(listing, key=lambda item: item.name)
    except OSError:
        return _Listing([], [])
    folders, nupkgs = [], []
    for item in items:
        if _is_dir(item):
            if not item.name.startswith("."):
                folders.append(Path(item.path))
        elif item.name.lower().endswith(".nupkg"):
            nupkgs.append(Path(item.path))
    return _Listing(folders, nupkgs)


def _is_dir(item: os.DirEntry[str]) -> bool:
    try:
        return item.is_dir()  # follows a link to a folder; the type often comes with the listing itself
    except OSError:  # a link loop: not a folder
        return False


def is_version_folder(folder: Path) -> bool:
    """`<lid>/<lver>/` of a global (or hierarchical) folder: a completion marker or `<lid>.<lver>.nupkg`."""
    stem = f"{folder.parent.name}.{folder.name}.nupkg"
    return any(is_file(folder / name) for name in (METADATA_FILE, stem + ".sha512")) or exists_as_file(folder / stem)


def looks_like_global_folder(folder: Path) -> bool:
    return any(is_version_folder(v) for d in _list(folder).folders for v in _list(d).folders)


def looks_like_flat_folder(folder: Path) -> bool:
    """NuGet's own test for a v2 feed: a .nupkg at the root or one level down (section 7)."""
    root = _list(folder)
    return bool(root.nupkgs) or any(_list(d).nupkgs for d in root.folders)


def read_flat_folder(folder: Path) -> list[Entry]:
    """Every .nupkg at the root or one level down (each folder listed once); id and version come
    from its nuspec. One that cannot be read (a FIFO or device too) is an entry with TP0003."""
    root = _list(folder)
    groups = [root.nupkgs] + [_list(d).nupkgs for d in root.folders]
    return [nupkg_entry(p, "folder", one_per_folder=len(group) == 1) for group in groups for p in group]


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
        entry.problems.append(finding(Code.TP0003, f"cannot read the package's id and version: {error.message}", Level.ERROR, origin))
        return entry
    entry = Entry(package_id, try_parse_version(version_text), version_text, origin, nupkg=nupkg, folder=folder)
    if entry.version is None:
        entry.problems.append(finding(Code.TP0003, f"the nuspec version {version_text!r} is not a valid NuGet version", Level.ERROR, origin))
    return entry


def read_global_folder(root: Path) -> tuple[list[Entry], list[Issue]]:
    """Every `<lid>/<lver>/` version folder; the extracted `<lid>.nuspec` gives the id's original case."""
    entries: list[Entry] = []
    problems: list[Issue] = []
    for id_dir in _list(root).folders:
        for version_dir in _list(id_dir).folders:
            if not is_version_folder(version_dir):
                continue
            lid, lver = id_dir.name, version_dir.name
            nupkg = version_dir / f"{lid}.{lver}.nupkg"
            origin = Origin(version_dir, "global-folder")
            package_id = _nuspec_id(version_dir / f"{lid}.nuspec", lid) or lid
            version = try_parse_version(lver)
            present = exists_as_file(nupkg)
            entry = Entry(package_id, version, lver, origin, nupkg=nupkg if present else None, folder=version_dir)
            if version is None:
                entry.problems.append(finding(Code.TP0003, f"folder name {lver!r} is not a NuGet version", Level.ERROR, origin))
            if not present:
                entry.problems.append(finding(Code.TP0001, f"{nupkg.name} is missing in {version_dir}: no archive to verify", Level.ERROR, origin))
            elif unreadable := _not_a_file(nupkg):
                entry.problems.append(finding(Code.TP0003, f"{nupkg}: cannot be read: {unreadable}", Level.ERROR, origin))
            entries.append(entry)
    if not entries:
        problems.append(finding(Code.TP0001, f"no packages found in {root}", Level.WARNING, Origin(root, "global-folder")))
    return entries, problems


def _not_a_file(nupkg: Path) -> str | None:
    """Why a present .nupkg is not a regular file ("it is a FIFO ..."), or None when it is one."""
    try:
        mode = os.stat(nupkg).st_mode
    except OSError as error:  # a broken or looping link
        return error.strerror or str(error)
    kind = not_regular(mode)
    return f"it is {kind}, not a regular file" if kind else None


def _nuspec_id(path: Path, lid: str) -> str | None:
    """The id as written in the extracted nuspec, if it names the same package as the folder."""
    try:
        root = parse_xml(read_bytes(path, XML_MAX_BYTES, "nuspec"), path, "nuspec")
    except TrustPolicyError:
        return None  # display only (also when missing or not a file); the .nupkg is what gets verified
    for metadata in root:
        if local_name(metadata) == "metadata":
            for child in metadata:
                if local_name(child) == "id" and (child.text or "").strip().lower() == lid.lower():
                    return (child.text or "").strip()
    return None
