"""Turn user paths into the list of distinct package files to verify (docs/graph.md section 8)."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trustpolicy._internal.graph import folders
from trustpolicy._internal.graph._io import (
    JSON_MAX_BYTES,
    SMALL_MAX_BYTES,
    XML_MAX_BYTES,
    parse_json,
    parse_xml,
    read_bytes,
    read_if_file,
)
from trustpolicy._internal.graph.assets import looks_like_assets, read_assets, recorded_roots
from trustpolicy._internal.graph.hashes import DEFAULT_CACHE, HashCache
from trustpolicy._internal.graph.locate import METADATA_FILE, Entry, Listings, Root, default_roots, locate, with_config
from trustpolicy._internal.graph.lockfile import looks_like_lock, read_lock
from trustpolicy._internal.graph.model import Claim, Graph, GraphPackage, Origin, finding
from trustpolicy._internal.graph.nugetconfig import ConfigReader
from trustpolicy._internal.graph.packagesconfig import find_solution_packages_folder, read_packages_config
from trustpolicy.codes import Code
from trustpolicy.errors import TrustPolicyError, UsageError
from trustpolicy.models import Issue, Level

# Folders never holding a project of the solution (or holding thousands of irrelevant files).
_SKIP_DIRS = {"packages", "bin", "obj", "node_modules", ".git", ".vs", ".idea"}
_SOLUTION_DEPTH = 4


@dataclass
class _Walk:
    explicit: list[Root]  # --packages-dir, NUGET_PACKAGES, home (in that order)
    config: ConfigReader
    graph: Graph
    entries: list[Entry] = field(default_factory=list)
    seen: set[tuple[int, int]] = field(default_factory=set)

    def defaults(self, graph_file: Path) -> list[Root]:
        """The search folders for one graph file: its NuGet.Config globalPackagesFolder goes before home."""
        return with_config(self.explicit, self.config.settings(graph_file.parent).get("globalpackagesfolder"))

    def first_visit(self, path: Path) -> bool:
        """Each graph file is read once, however many paths reach it."""
        try:
            st = path.stat()
        except OSError:
            return True
        key = (st.st_dev, st.st_ino)
        if key in self.seen:
            return False
        self.seen.add(key)
        return True

    def packages_config_roots(self, config: Path) -> list[Root]:
        """repositoryPath, the solution packages/ folder, each --packages-dir in both layouts, the global folders."""
        roots = []
        configured = self.config.settings(config.parent).get("repositorypath")
        if configured:
            roots.append(Root(configured, "side-by-side", "NuGet.Config repositoryPath"))
        solution = find_solution_packages_folder(config)
        if solution:
            roots.append(Root(solution, "side-by-side", "solution packages folder"))
        for root in self.defaults(config):
            if root.source == "--packages-dir":
                roots.append(Root(root.path, "side-by-side", root.source))
            roots.append(root)
        return roots


def collect_graph(
    paths: Iterable[str | os.PathLike[str]],
    *,
    packages_dirs: Iterable[str | os.PathLike[str]] = (),
    environ: Mapping[str, str] | None = None,
    cache: HashCache | None = None,
    configfile: str | os.PathLike[str] | None = None,
) -> Graph:
    """Read every path and return the distinct packages to verify.

    Args:
        paths: project directories, solution directories, project.assets.json, packages.lock.json,
            packages.config, folders of .nupkg files, global packages folders, or single .nupkg
            files. No paths means the current directory.
        packages_dirs: extra folders to search (`--packages-dir`), after the folders an assets file
            records and before NUGET_PACKAGES, NuGet.Config globalPackagesFolder and `<home>/.nuget/packages`.
        environ: the environment to read NUGET_PACKAGES and HOME/USERPROFILE from (default os.environ).
        cache: where file digests are kept (used to merge byte-identical copies).
        configfile: the one NuGet.Config to read `globalPackagesFolder` / `repositoryPath` from
            (`--configfile`); by default the nuget.config files from each project up, then the user file.

    Returns:
        Graph: `packages` (one row per distinct file, or per missing package) and `problems`.

    Raises:
        UsageError: a path that does not exist or is not a recognised kind.
        TrustPolicyError: a graph file that cannot be read or parsed (names the file).
    """
    environ = os.environ if environ is None else environ
    explicit, notes = default_roots(tuple(Path(p) for p in packages_dirs), environ)
    config = ConfigReader(environ, Path(configfile) if configfile is not None else None)
    walk = _Walk(explicit, config, Graph(problems=list(notes)))
    for raw in list(paths) or ["."]:
        _add_path(walk, Path(raw))
    walk.graph.problems += config.problems
    listings = Listings()
    for entry in walk.entries:
        _resolve(entry, listings)
        if entry.nupkg is None and entry.version is not None:  # folders searched in vain, said once per report
            for root in entry.roots:
                if (str(root.path), root.source) not in walk.graph.searched:
                    walk.graph.searched.append((str(root.path), root.source))
    walk.graph.packages = _merge(walk.entries, walk.graph, cache or DEFAULT_CACHE)
    return walk.graph


def iter_graph(
    paths: Iterable[str | os.PathLike[str]],
    packages_dirs: Iterable[str | os.PathLike[str]] = (),
    environ: Mapping[str, str] | None = None,
) -> list[GraphPackage]:
    """The module contract's name: `collect_graph(...).packages` (graph-level problems dropped)."""
    return collect_graph(paths, packages_dirs=packages_dirs, environ=environ).packages


def detect_kind(path: Path) -> str:
    """What a path is: "project" | "solution" | "folder" | "global-folder" | "nupkg" | "file" (graph file).

    A `*.nupkg` that is not a regular file (a FIFO, a device, a broken or looping link) is still a
    "nupkg": it is reported as unreadable, with its path, not skipped. UsageError for a path that
    does not exist or cannot be looked at (too long, no permission)."""
    nupkg_name = path.name.lower().endswith(".nupkg")
    try:
        is_dir = stat.S_ISDIR(path.stat().st_mode)
    except OSError as error:
        if nupkg_name and os.path.lexists(path):
            return "nupkg"
        if isinstance(error, (FileNotFoundError, NotADirectoryError)):
            raise UsageError(f"{path}: no such file or directory") from None
        raise UsageError(f"{path}: cannot be read: {error.strerror or error}") from None
    if is_dir:
        if _project_files(path):
            return "project"
        if _is_solution(path):
            return "solution"
        if folders.looks_like_flat_folder(path):
            return "folder"
        if folders.looks_like_global_folder(path):
            return "global-folder"
        raise UsageError(
            f"{path}: not a project directory (no obj/project.assets.json, packages.lock.json or packages.config), "
            "solution, folder of .nupkg files or global packages folder"
        )
    return "nupkg" if nupkg_name else "file"


def _add_path(walk: _Walk, path: Path) -> None:
    kind = detect_kind(path)
    if kind == "project":
        _add_project(walk, path)
        if _is_solution(path):  # a project at the solution root: its sibling projects count too
            for project in _solution_projects(path):
                _add_project(walk, project)
    elif kind == "solution":
        found = _solution_projects(path)
        if not found:
            raise UsageError(f"{path}: solution directory holds no restored project (no project.assets.json, "
                             "packages.lock.json or packages.config below it)")
        for project in found:
            _add_project(walk, project)
    elif kind == "folder":
        walk.graph.sources.append(Origin(path, "folder"))
        walk.entries += folders.read_flat_folder(path)
    elif kind == "global-folder":
        walk.graph.sources.append(Origin(path, "global-folder"))
        entries, problems = folders.read_global_folder(path)
        walk.entries += entries
        walk.graph.problems += problems
    elif kind == "nupkg":
        walk.graph.sources.append(Origin(path, "folder"))
        walk.entries.append(folders.nupkg_entry(path, "folder", one_per_folder=False))
    else:
        _add_file(walk, path)


def _project_files(folder: Path) -> list[Path]:
    """Graph files of one project: assets (+ lock) when restored with PackageReference, else lock/config."""
    assets = [p for p in (folder / "obj" / "project.assets.json", folder / "project.assets.json") if p.is_file()]
    locks = sorted(p for p in folder.glob("packages*.lock.json") if p.is_file())
    configs = sorted(p for p in folder.glob("packages*.config") if p.is_file())
    return assets[:1] + locks if assets else locks + configs


def _is_solution(folder: Path) -> bool:
    try:
        return any(p.suffix.lower() in (".sln", ".slnx") and p.is_file() for p in folder.iterdir())
    except OSError:
        return False


def _solution_projects(folder: Path) -> list[Path]:
    found = []
    for current, dirs, _files in os.walk(folder):
        here = Path(current)
        dirs[:] = sorted(d for d in dirs if d.lower() not in _SKIP_DIRS and not d.startswith("."))
        if len(here.relative_to(folder).parts) >= _SOLUTION_DEPTH:
            dirs[:] = []
        if _project_files(here):
            found.append(here)
    return found


def _add_project(walk: _Walk, folder: Path) -> None:
    files = _project_files(folder)
    recorded: list[Root] = []
    for path in files:
        recorded += _add_file(walk, path, extra_roots=recorded)


def _add_file(walk: _Walk, path: Path, extra_roots: list[Root] | None = None) -> list[Root]:
    """Read one graph file (kind sniffed from its content); returns the roots an assets file records."""
    if not walk.first_visit(path):
        return []
    data = read_bytes(path, JSON_MAX_BYTES, "graph file")
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head == b"{":
        doc, text = parse_json(data, path, "graph file")
        if looks_like_assets(doc):
            return _add_assets(walk, doc, text, path)
        # A file named like a lock file but of an unknown version gets read_lock's precise error.
        if looks_like_lock(doc) or (isinstance(doc, dict) and path.name.lower().endswith(".lock.json")):
            _add_lock(walk, doc, text, path, extra_roots or [])
            return []
        raise UsageError(f"{path}: JSON file is neither a project.assets.json nor a packages.lock.json")
    if head == b"<" or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        if len(data) > XML_MAX_BYTES:
            raise TrustPolicyError(f"packages.config is larger than {XML_MAX_BYTES // (1024 * 1024)} MB", path=str(path))
        root = parse_xml(data, path, "packages.config")
        entries, problems = read_packages_config(root, path)
        roots = tuple(walk.packages_config_roots(path))
        for entry in entries:
            entry.roots = roots
        walk.graph.sources.append(Origin(path, "packages.config"))
        walk.entries += entries
        walk.graph.problems += problems
        return []
    raise UsageError(f"{path}: not a project.assets.json, packages.lock.json or packages.config")


def _add_assets(walk: _Walk, doc: dict[str, Any], text: str, path: Path) -> list[Root]:
    recorded, notes = recorded_roots(doc, path)
    entries, problems = read_assets(doc, text, path)
    roots = tuple(recorded + walk.defaults(path))
    for entry in entries:
        entry.roots = roots
    walk.graph.sources.append(Origin(path, "assets"))
    walk.entries += entries
    walk.graph.problems += notes + problems
    return recorded


def _add_lock(walk: _Walk, doc: dict[str, Any], text: str, path: Path, extra_roots: list[Root]) -> None:
    entries, problems = read_lock(doc, text, path)
    # A packages.config project's lock file (section 3.2): its packages live in the solution packages/.
    configs = [p for p in path.parent.glob("packages*.config") if p.is_file()]
    roots = tuple(walk.packages_config_roots(configs[0]) if configs else extra_roots + walk.defaults(path))
    for entry in entries:
        entry.roots = roots
    walk.graph.sources.append(Origin(path, "lock"))
    walk.entries += entries
    walk.graph.problems += problems


def _resolve(entry: Entry, listings: Listings) -> None:
    """Find the archive, then read the folder's own integrity files."""
    if entry.nupkg is None and entry.folder is None and entry.version is not None:
        if not entry.roots:
            entry.problems.append(finding(Code.TP0001, f"{entry.id} {entry.version_str}: no packages folder to search "
                                          "(give --packages-dir or set NUGET_PACKAGES)", Level.ERROR, entry.origin))
            return
        hit, searched = locate(entry, listings)
        if hit is None:
            entry.problems.append(finding(Code.TP0001, f"{entry.id} {entry.version_str}: package not found; searched "
                                          + "; ".join(searched), Level.ERROR, entry.origin))
            return
        entry.folder, entry.nupkg = hit.folder, hit.nupkg
        if not hit.complete:
            entry.problems.append(finding(Code.TP0001, f"{hit.folder} has no .nupkg.metadata: the extraction may be incomplete",
                                          Level.WARNING, entry.origin))
    if entry.nupkg is None and entry.folder is not None:
        if not any(p.code == Code.TP0001 for p in entry.problems):
            entry.problems.append(finding(Code.TP0001, f"{entry.id} {entry.version_str}: {entry.folder} holds no .nupkg: "
                                          "no archive to verify", Level.ERROR, entry.origin))
    if entry.folder is not None:
        _read_metadata(entry, entry.folder / METADATA_FILE)
    if entry.nupkg is not None:
        _read_sha512(entry, entry.nupkg.with_name(entry.nupkg.name + ".sha512"))


def _read_metadata(entry: Entry, path: Path) -> None:
    """`.nupkg.metadata` (section 4.2): property names case-insensitive, version not checked."""
    try:
        data = read_if_file(path, SMALL_MAX_BYTES, ".nupkg.metadata")
        if data is None:
            return
        doc, _ = parse_json(data, path, ".nupkg.metadata")
    except TrustPolicyError as error:
        entry.problems.append(finding(Code.TP0003, f"{error}", Level.ERROR, entry.origin))
        return
    value = None
    if isinstance(doc, dict):
        value = next((v for k, v in doc.items() if k.lower() == "contenthash"), None)
    if isinstance(value, str) and value:
        entry.claims.append(Claim("metadata", value, path))
    else:
        entry.problems.append(finding(Code.TP0003, f"{path}: .nupkg.metadata has no contentHash", Level.ERROR, entry.origin))


def _read_sha512(entry: Entry, path: Path) -> None:
    """`<id>.<version>.nupkg.sha512` (section 4.1): one base64 line."""
    try:
        data = read_if_file(path, SMALL_MAX_BYTES, ".nupkg.sha512")
        if data is None:
            return
        value = data.decode("ascii").strip()
    except (TrustPolicyError, UnicodeDecodeError) as error:
        entry.problems.append(finding(Code.TP0003, f"{path}: cannot read the .sha512 file: {error}", Level.ERROR, entry.origin))
        return
    entry.claims.append(Claim("sha512file", value, path))


@dataclass
class _Row:
    id: str
    version: str
    nupkg: Path | None
    origins: list[Origin]
    claims: list[Claim]
    problems: list[Issue]
    copies: list[Path] = field(default_factory=list)

    def absorb(self, other: _Row) -> None:
        for name, items in (("origins", other.origins), ("claims", other.claims)):
            mine = getattr(self, name)
            mine.extend(x for x in items if x not in mine)
        # The same finding reached through two graph files is one finding (the origins list both).
        said = {(p.code, p.level, p.message) for p in self.problems}
        self.problems.extend(p for p in other.problems if (p.code, p.level, p.message) not in said)
        for copy in ([other.nupkg] if other.nupkg else []) + other.copies:
            if copy != self.nupkg and copy not in self.copies:
                self.copies.append(copy)

    def freeze(self) -> GraphPackage:
        return GraphPackage(self.id, self.version, self.nupkg, tuple(self.origins), tuple(self.claims),
                            tuple(self.problems), tuple(self.copies))


def _merge(entries: list[Entry], graph: Graph, cache: HashCache) -> list[GraphPackage]:
    """One row per file (by inode), then byte-identical files of the same package merged; never different ones."""
    rows: dict[tuple[Any, ...], _Row] = {}
    for entry in entries:
        row = _Row(entry.id, entry.version_str, entry.nupkg, [entry.origin], list(entry.claims), list(entry.problems))
        if entry.nupkg is not None:
            try:
                st = entry.nupkg.stat()
                key: tuple[Any, ...] = ("file", st.st_dev, st.st_ino)
            except OSError:
                key = ("path", str(entry.nupkg))
        else:
            key = ("missing", entry.id.lower(), entry.version_str.lower(), str(entry.folder or ""))
        if key in rows:
            rows[key].absorb(row)
        else:
            rows[key] = row

    result: list[_Row] = []
    by_name: dict[tuple[str, str], list[_Row]] = {}
    for row in rows.values():
        same = by_name.setdefault((row.id.lower(), row.version.lower()), [])
        twin = next((r for r in same if row.nupkg and r.nupkg and _identical(r.nupkg, row.nupkg, cache)), None)
        if twin is not None:
            twin.absorb(row)
            continue
        if row.nupkg and any(r.nupkg for r in same):
            others = ", ".join(str(r.nupkg) for r in same if r.nupkg)
            graph.problems.append(finding(Code.TP0002, f"{row.id} {row.version}: {row.nupkg} differs from {others}; "
                                          "both are verified", Level.WARNING, row.origins[0]))
        same.append(row)
        result.append(row)
    return [row.freeze() for row in result]


def _identical(a: Path, b: Path, cache: HashCache) -> bool:
    try:
        return a.stat().st_size == b.stat().st_size and cache.whole(a) == cache.whole(b)
    except (OSError, TrustPolicyError):
        return False
