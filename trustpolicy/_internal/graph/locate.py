"""Find a package's .nupkg on disk (docs/graph.md sections 2.4, 5 and 6.2).

Two layouts:
- "global"/"fallback": `<root>/<lower id>/<lower normalized version>/<lid>.<lver>.nupkg`. NuGet treats
  `.nupkg.metadata` as the "fully extracted" marker; the global folder also accepts `.nupkg.sha512`,
  fallback folders do not.
- "side-by-side" (packages.config `packages/`): `<root>/<Id>.<Version>/<Id>.<Version>.nupkg` with the
  id as written and `ToString()` of the version, looked up leniently like NuGet (section 6.2).
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from trustpolicy._internal.graph.model import Claim, Origin, finding
from trustpolicy._internal.graph.versions import NuGetVersion, try_parse_version
from trustpolicy.codes import Code
from trustpolicy.models import Issue, Level

METADATA_FILE = ".nupkg.metadata"


@dataclass(frozen=True)
class Root:
    """A folder to search: `layout` is "global" | "fallback" | "side-by-side"; `source` says who named it."""

    path: Path
    layout: str
    source: str


@dataclass
class Entry:
    """One package entry read from a graph file, before location and de-duplication."""

    id: str
    version: NuGetVersion | None
    version_text: str
    origin: Origin
    roots: tuple[Root, ...] = ()
    folder_rel: tuple[str, str] | None = None  # assets `path` as written (id part, version part)
    nupkg: Path | None = None  # already known (folder inputs) or found by `locate`
    folder: Path | None = None  # the folder holding it (and its .nupkg.metadata / .sha512)
    claims: list[Claim] = field(default_factory=list)
    problems: list[Issue] = field(default_factory=list)

    @property
    def version_str(self) -> str:
        return self.version.normalized if self.version else self.version_text


@dataclass(frozen=True)
class Hit:
    folder: Path | None  # the package's own folder (None for a .nupkg loose at a packages/ root)
    nupkg: Path | None  # None: the folder says "installed" but holds no archive
    complete: bool  # a completion marker was present


def default_roots(packages_dirs: tuple[Path, ...], environ: Mapping[str, str]) -> tuple[list[Root], list[Issue]]:
    """--packages-dir folders, NUGET_PACKAGES, then `<home>/.nuget/packages` (section 5.1).

    The NuGet.Config `globalPackagesFolder` (per project) goes before the home folder: `with_config`.
    """
    roots = [Root(Path(p), "global", "--packages-dir") for p in packages_dirs]
    notes: list[Issue] = []
    env = environ.get("NUGET_PACKAGES")
    if env:
        if os.path.isabs(env):
            roots.append(Root(Path(env), "global", "NUGET_PACKAGES"))
        else:  # NuGet refuses a relative NUGET_PACKAGES; so do we, without failing the run
            notes.append(finding(Code.TP0001, f"NUGET_PACKAGES is not an absolute path, ignored: {env}", Level.WARNING))
    home = environ.get("USERPROFILE") if os.name == "nt" else environ.get("HOME")
    if home:
        roots.append(Root(Path(home) / ".nuget" / "packages", "global", HOME_SOURCE))
    return roots, notes


HOME_SOURCE = "default global packages folder"


def with_config(defaults: list[Root], config_folder: Path | None) -> list[Root]:
    """Insert a NuGet.Config globalPackagesFolder just before the home default."""
    if config_folder is None:
        return list(defaults)
    at = next((i for i, r in enumerate(defaults) if r.source == HOME_SOURCE), len(defaults))
    return [*defaults[:at], Root(config_folder, "global", "NuGet.Config globalPackagesFolder"), *defaults[at:]]


def is_file(path: Path) -> bool:
    """A regular file (or a link to one) is at `path`."""
    try:
        return path.is_file()
    except OSError:
        return False


def exists_as_file(path: Path) -> bool:
    """Something other than a folder is at `path`: a package file is there, even when it is a FIFO, a
    device or a broken or looping link (opening it then fails with its path; it is never skipped)."""
    return os.path.lexists(path) and not os.path.isdir(path)


def find_in_global(root: Root, id_part: str, ver_part: str) -> Hit | None:
    folder = root.path.joinpath(id_part, ver_part)
    nupkg = folder / f"{id_part}.{ver_part}.nupkg"
    marker = is_file(folder / METADATA_FILE)
    if not marker and root.layout == "global":
        marker = is_file(folder / f"{id_part}.{ver_part}.nupkg.sha512")
    has_nupkg = exists_as_file(nupkg)
    if not marker and not has_nupkg:
        return None
    return Hit(folder, nupkg if has_nupkg else None, marker)


class Listings(dict[Path, list[str]]):
    """Directory listings cached for one walk (a packages/ folder is listed once, not per package)."""

    def __init__(self) -> None:
        super().__init__()
        self._lowered: dict[Path, list[tuple[str, str]]] = {}

    def __call__(self, folder: Path) -> list[str]:
        if folder not in self:
            try:
                self[folder] = sorted(os.listdir(folder))
            except OSError:
                self[folder] = []
        return self[folder]

    def starting_with(self, folder: Path, prefix: str) -> list[str]:
        """The names in `folder` that start with `prefix` (lower case), case-insensitively: a binary
        search in the listing sorted by lower-case name, not a scan of it per package."""
        lowered = self._lowered.get(folder)
        if lowered is None:
            lowered = self._lowered[folder] = sorted((name.lower(), name) for name in self(folder))
        start = bisect.bisect_left(lowered, (prefix,))
        found = []
        for low, name in lowered[start:]:
            if not low.startswith(prefix):
                break
            found.append(name)
        return found


def find_side_by_side(root: Root, package_id: str, version: NuGetVersion, _listing: Listings) -> Hit | None:
    """Exact `<Id>.<ToString>` first, then the normalized form, then any `<id>.<v>` whose version is equal."""
    candidates = [f"{package_id}.{version.to_string()}", f"{package_id}.{version.normalized}"]
    prefix = package_id.lower() + "."
    for name in _listing.starting_with(root.path, prefix):  # case-insensitive and lenient, like NuGet's
        stem = name[len(prefix) :]  # glob + version compare
        stem = stem[: -len(".nupkg")] if stem.lower().endswith(".nupkg") else stem
        if try_parse_version(stem) == version and name not in candidates:
            candidates.append(name)
    for name in candidates:
        folder = root.path / name
        if folder.is_dir():
            nupkgs = [folder / f"{name}.nupkg"] + [
                folder / n for n in _listing(folder) if n.lower().endswith(".nupkg") and n != f"{name}.nupkg"
            ]
            for nupkg in nupkgs:
                if exists_as_file(nupkg) and try_parse_version(nupkg.name[len(prefix) : -len(".nupkg")]) == version:
                    return Hit(folder, nupkg, True)
            if is_file(folder / f"{package_id}.packagedownload.marker") or is_file(folder / METADATA_FILE):
                return Hit(folder, None, True)
        elif name.lower().endswith(".nupkg") and exists_as_file(root.path / name):  # a .nupkg at the root
            return Hit(None, root.path / name, True)
    return None


def locate(entry: Entry, listings: Listings) -> tuple[Hit | None, list[str]]:
    """First complete hit in root order; else the first incomplete one. Returns (hit, searched)."""
    if entry.version is None:
        return None, []
    searched: list[str] = []
    fallback: Hit | None = None
    for root in entry.roots:
        if root.layout == "side-by-side":
            hit = find_side_by_side(root, entry.id, entry.version, listings)
            searched.append(f"{root.path / f'{entry.id}.{entry.version.to_string()}'} ({root.source})")
        else:
            if entry.folder_rel:  # the assets `path`, used as written (section 2.3)
                parts = [entry.folder_rel]
            else:  # lower-cased; RestoreLegacyPackagesDirectory keeps the original case
                parts = list(dict.fromkeys([(entry.id.lower(), entry.version.folder_name), (entry.id, entry.version.normalized)]))
            hit = None
            for id_part, ver_part in parts:
                hit = find_in_global(root, id_part, ver_part)
                if hit:
                    break
            searched.append(f"{os.path.join(root.path, *parts[0])} ({root.source})")
        if hit and hit.complete:
            return hit, searched
        fallback = fallback or hit
    return fallback, searched
