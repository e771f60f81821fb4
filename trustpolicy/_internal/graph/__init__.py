"""The restored package graph: which .nupkg files a restore used, and what it recorded about them.

    graph = collect_graph(["src/MyApp"], packages_dirs=["/mnt/nuget"])
    for pkg in graph.packages:
        findings = pkg.problems + verify_graph_hashes(pkg)   # TP0001 / TP0002 / TP0003

Inputs (kind sniffed, see `detect_kind`): project and solution directories, project.assets.json,
packages.lock.json (v1-v3), packages.config (+ the solution packages/ folder), folders of .nupkg
files, global packages folders. Archives are searched in: the folders an assets file records,
--packages-dir, NUGET_PACKAGES, NuGet.Config globalPackagesFolder (repositoryPath for
packages.config), `<home>/.nuget/packages`. Rules: docs/graph.md.
"""

from __future__ import annotations

from trustpolicy._internal.graph.hashes import HashCache, verify_graph_hashes
from trustpolicy._internal.graph.model import KINDS, RECORDS, Claim, Graph, GraphPackage, Origin
from trustpolicy._internal.graph.versions import NuGetVersion, normalize_version, parse_version, try_parse_version
from trustpolicy._internal.graph.walk import collect_graph, detect_kind, iter_graph

__all__ = [
    "KINDS",
    "RECORDS",
    "Claim",
    "Graph",
    "GraphPackage",
    "HashCache",
    "NuGetVersion",
    "Origin",
    "collect_graph",
    "detect_kind",
    "iter_graph",
    "normalize_version",
    "parse_version",
    "try_parse_version",
    "verify_graph_hashes",
]
