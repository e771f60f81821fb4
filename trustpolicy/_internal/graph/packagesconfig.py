"""packages.config (docs/graph.md section 6.1) and finding the solution `packages/` folder (6.2)."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from trustpolicy._internal.graph._io import local_name
from trustpolicy._internal.graph.locate import Entry
from trustpolicy._internal.graph.model import Origin, finding
from trustpolicy._internal.graph.versions import try_parse_version
from trustpolicy.codes import Code
from trustpolicy.errors import TrustPolicyError
from trustpolicy.models import Issue, Level

MAX_PARENT_LEVELS = 8


def read_packages_config(root: etree._Element, path: Path) -> tuple[list[Entry], list[Issue]]:
    """One Entry per `<package>`; an empty attribute counts as absent (NuGet's rule)."""
    if local_name(root) != "packages":
        raise TrustPolicyError(f"packages.config root element is <{local_name(root)}>, expected <packages>", path=str(path))
    entries: list[Entry] = []
    problems: list[Issue] = []
    seen: dict[str, Entry] = {}
    index = 0
    for element in root:
        if local_name(element) != "package":
            continue  # comments, processing instructions, unknown elements
        index += 1
        origin = Origin(path, "packages.config", f"/packages/package[{index}]", element.sourceline)
        package_id = (element.get("id") or "").strip()
        version_text = (element.get("version") or "").strip()
        if not package_id:
            problems.append(finding(Code.TP0003, f"<package> at line {element.sourceline} has no id", Level.ERROR, origin))
            continue
        entry = Entry(package_id, try_parse_version(version_text), version_text, origin)
        if entry.version is None:
            entry.problems.append(finding(Code.TP0003, f"{package_id!r} has no valid version ({version_text!r})", Level.ERROR, origin))
        if package_id.lower() in seen:  # NuGet refuses duplicate ids; report, and keep both rows
            problems.append(finding(Code.TP0003, f"{package_id!r} is listed more than once (line {element.sourceline})", Level.WARNING, origin))
        seen[package_id.lower()] = entry
        entries.append(entry)
    return entries, problems


def find_solution_packages_folder(config_path: Path) -> Path | None:
    """Walk up from the project to the first `packages/` folder; stop at the solution (a *.sln)."""
    folder = config_path.resolve().parent
    for _ in range(MAX_PARENT_LEVELS):
        candidate = folder / "packages"
        if candidate.is_dir():
            return candidate
        try:
            is_solution = any(p.suffix.lower() in (".sln", ".slnx") for p in folder.iterdir())
        except OSError:
            is_solution = False
        if is_solution or folder.parent == folder:
            return None
        folder = folder.parent
    return None
