"""project.assets.json: package libraries, their folder and sha512 (docs/graph.md section 2)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from trustpolicy._internal.graph._io import KeyLocator, pointer
from trustpolicy._internal.graph.locate import Entry, Root
from trustpolicy._internal.graph.model import Claim, Origin, finding
from trustpolicy._internal.graph.versions import try_parse_version
from trustpolicy.codes import Code
from trustpolicy.errors import TrustPolicyError
from trustpolicy.models import Issue, Level


def looks_like_assets(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("libraries"), dict) and isinstance(doc.get("targets"), dict)


def recorded_roots(doc: dict[str, Any], path: Path) -> tuple[list[Root], list[Issue]]:
    """`packageFolders` in file order: the first is the global folder, the rest are fallback folders."""
    folders = doc.get("packageFolders") or {}
    if not isinstance(folders, dict):
        return [], [finding(Code.TP0003, "packageFolders is not an object; ignored", Level.WARNING, Origin(path, "assets", "/packageFolders"))]
    roots = []
    for index, folder in enumerate(folders):
        layout = "global" if index == 0 else "fallback"
        # Paths from another OS (C:\Users\...\) are not absolute here; never join them to the cwd.
        if os.path.isabs(folder):
            roots.append(Root(Path(folder), layout, "project.assets.json packageFolders"))
    notes = []
    missing = [f for f in folders if not (os.path.isabs(f) and os.path.isdir(f))]
    if missing:
        notes.append(
            finding(Code.TP0001,
                "packages folder recorded by the restore is not on this machine: " + ", ".join(missing)
                + " (searching --packages-dir, NUGET_PACKAGES and the default folder instead)",
                Level.INFO,
                Origin(path, "assets", "/packageFolders"),
            )
        )
    return roots, notes


def read_assets(doc: dict[str, Any], text: str, path: Path) -> tuple[list[Entry], list[Issue]]:
    """One Entry per `type: package` library; target names attached; orphans reported."""
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TrustPolicyError(f"project.assets.json has no valid 'version' (got {version!r})", path=str(path))
    locator = KeyLocator(text)
    problems: list[Issue] = []

    # Which targets use each "Id/Version" (section 2.2); targets carry no hash or path.
    used_in: dict[str, list[str]] = {}
    for target_name, target in doc["targets"].items():
        if not isinstance(target, dict):
            problems.append(finding(Code.TP0003, f"target {target_name!r} is not an object", Level.WARNING,
                                    Origin(path, "assets", pointer("targets", target_name))))
            continue
        for key, lib in target.items():
            if isinstance(lib, dict) and lib.get("type", "package") == "package":
                used_in.setdefault(key, []).append(target_name)

    libraries: dict[str, Any] = doc["libraries"]
    section = locator.find("libraries") or 0
    cursor = section
    entries: list[Entry] = []
    for key, lib in libraries.items():
        where = pointer("libraries", key)
        offset = locator.find(key, cursor)
        if offset is None:
            offset = locator.find(key, section)
        cursor = offset if offset is not None else cursor
        if not isinstance(lib, dict):
            problems.append(finding(Code.TP0003, f"library {key!r} is not an object", Level.ERROR,
                                    Origin(path, "assets", where, locator.line(offset))))
            continue
        if lib.get("type") != "package":
            continue  # projects have no archive to verify
        origin = Origin(path, "assets", where, locator.line(offset), tuple(used_in.get(key, ())))
        package_id, slash, version_text = key.partition("/")
        entry = Entry(package_id, try_parse_version(version_text), version_text, origin)
        if not slash or not package_id or entry.version is None:
            entry.problems.append(finding(Code.TP0003, f"library key {key!r} is not 'Id/Version' with a valid version", Level.ERROR, origin))
        rel = lib.get("path")
        parts = rel.split("/") if isinstance(rel, str) else []
        if len(parts) == 2 and all(_safe_part(p) for p in parts):
            entry.folder_rel = (parts[0], parts[1])
        else:  # rebuild it, but say so: NuGet always writes the path
            entry.problems.append(finding(Code.TP0003, f"library {key!r} has no usable 'path' ({rel!r}); using the default folder name", Level.WARNING, origin))
        sha512 = lib.get("sha512")
        if isinstance(sha512, str) and sha512:
            entry.claims.append(Claim("sha512", sha512, path))
        else:
            entry.problems.append(finding(Code.TP0003, f"library {key!r} has no sha512 to check the package against", Level.WARNING, origin))
        entries.append(entry)

    # A package a target uses but `libraries` omits still gets a row (located by the default name).
    for key, targets in used_in.items():
        if key not in libraries:
            where = pointer("targets", targets[0], key)
            origin = Origin(path, "assets", where, locator.line(locator.find(key, locator.find(targets[0]) or 0)), tuple(targets))
            package_id, _, version_text = key.partition("/")
            entry = Entry(package_id, try_parse_version(version_text), version_text, origin)
            entry.problems.append(finding(Code.TP0003, f"{key!r} is used by {', '.join(targets)} but libraries has no record of it (no path, no sha512)", Level.ERROR, origin))
            entries.append(entry)
    return entries, problems


def _safe_part(part: str) -> bool:
    """One folder name: never a way out of the packages folder."""
    return bool(part) and part not in (".", "..") and not any(c in part for c in "\\:\0")
