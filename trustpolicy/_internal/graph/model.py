"""Data the graph walk produces: packages to verify, where each came from, what the graph claims."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from trustpolicy.codes import Code
from trustpolicy.models import Issue, Level, Location

# Origin kinds (the file or folder a package row was read from).
KINDS = ("assets", "lock", "packages.config", "folder", "global-folder")

# Integrity records a graph can hold (docs/graph.md sections 2.3, 3.3, 4.1, 4.2).
RECORDS = {
    "sha512": "project.assets.json sha512",
    "contentHash": "packages.lock.json contentHash",
    "metadata": ".nupkg.metadata contentHash",
    "sha512file": ".nupkg.sha512",
}


@dataclass(frozen=True)
class Origin:
    """Where a package row was read: file, kind, and a region for SARIF.

    `pointer` is a JSON pointer for JSON files (`/libraries/Newtonsoft.Json~113.0.1`) or an
    XPath-like step for packages.config (`/packages/package[3]`); `line` is 1-based when known.
    `targets` lists the frameworks (assets/lock target names) that use the package.
    """

    path: Path
    kind: str
    pointer: str | None = None
    line: int | None = None
    targets: tuple[str, ...] = ()

    @property
    def location(self) -> Location:
        return Location(str(self.path), self.line, self.pointer, self.kind)


def finding(code: Code, message: str, level: Level = Level.ERROR, origin: Origin | None = None) -> Issue:
    """A graph problem as an Issue: TP0001 (not found), TP0002 (hash mismatch), TP0003 (unreadable)."""
    return Issue(code, level, message, where=origin.location if origin else None)


@dataclass(frozen=True)
class Claim:
    """One integrity record: `record` is a RECORDS key, `value` the base64 text as written."""

    record: str
    value: str
    source: Path


@dataclass(frozen=True)
class GraphPackage:
    """One distinct package file (or one missing package) to verify.

    `version` is the normalized version (or the raw text when it does not parse; then a TP0003
    problem says so). `nupkg` is None when no file was found (a TP0001 problem says why).
    `origins` holds every graph entry that reached this file; `copies` other paths holding
    byte-identical files that were merged into this row.
    """

    id: str
    version: str
    nupkg: Path | None
    origins: tuple[Origin, ...]
    claims: tuple[Claim, ...] = ()
    problems: tuple[Issue, ...] = ()
    copies: tuple[Path, ...] = ()

    @property
    def origin(self) -> Origin:
        return self.origins[0]

    @property
    def expected(self) -> dict[str, str]:
        """First claimed value per record kind: {"sha512"|"contentHash"|"metadata"|"sha512file": base64}."""
        out: dict[str, str] = {}
        for claim in self.claims:
            out.setdefault(claim.record, claim.value)
        return out

    @property
    def key(self) -> tuple[str, str]:
        """(lower id, lower normalized version): the identity NuGet folders use."""
        return (self.id.lower(), self.version.lower())


@dataclass
class Graph:
    """The result of `collect_graph`: packages in input order plus graph-level problems."""

    packages: list[GraphPackage] = field(default_factory=list)
    problems: list[Issue] = field(default_factory=list)
    sources: list[Origin] = field(default_factory=list)  # the graph files read (kind + path)
    searched: list[tuple[str, str]] = field(default_factory=list)  # (folder, who named it) searched in vain
