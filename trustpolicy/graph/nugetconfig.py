"""The two NuGet.Config keys that move packages: `globalPackagesFolder` and `repositoryPath`.

graph.md 5.1 (global folder: after NUGET_PACKAGES, before `<home>/.nuget/packages`) and 6.2 (the
packages.config `packages/` folder). Files apply closest first: a nuget.config in the directory and
each parent, then the user file `<home>/.nuget/NuGet/NuGet.Config`; merged farthest to closest, so a
closer `<add>` replaces a farther one and `<clear/>` drops what came before. A relative value is
resolved against the directory of the file that defines it. The signing policy in the same files
is trustpolicy.config's business; this reader only needs `<config>`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

from trustpolicy.errors import TrustPolicyError
from trustpolicy.graph._io import XML_MAX_BYTES, local_name, parse_xml, read_bytes
from trustpolicy.graph.model import Finding, Origin

PROBE_NAMES = ("nuget.config", "NuGet.config", "NuGet.Config")  # NuGet's order on case-sensitive file systems
KEYS = ("globalpackagesfolder", "repositorypath")
_ENV = re.compile(r"%([^%]+)%")


class ConfigReader:
    """Reads each config file once per walk."""

    def __init__(self, environ: Mapping[str, str], configfile: Path | None = None) -> None:
        self.environ = environ
        self.configfile = configfile
        self.problems: list[Finding] = []
        self._parsed: dict[Path, list[tuple[str, str] | None]] = {}

    def files(self, start: Path) -> list[Path]:
        """Closest first. With an explicit --configfile, that file only (as NuGet does)."""
        if self.configfile is not None:
            return [self.configfile]
        found = []
        for directory in (start, *start.parents):
            found += [directory / name for name in PROBE_NAMES if (directory / name).is_file()][:1]
        home = self.environ.get("APPDATA") if os.name == "nt" else self.environ.get("HOME")
        if home:
            user = Path(home) / "NuGet" / "NuGet.Config" if os.name == "nt" else Path(home) / ".nuget" / "NuGet" / "NuGet.Config"
            if user.is_file() and user not in found:
                found.append(user)
        return found

    def settings(self, start: Path) -> dict[str, Path]:
        """{lower key: absolute folder} for KEYS, as the files under `start` define them."""
        merged: dict[str, Path] = {}
        for path in reversed(self.files(start.absolute())):
            for item in self._read(path):
                if item is None:
                    merged.clear()
                else:
                    key, value = item
                    value = _ENV.sub(lambda m: self.environ.get(m.group(1), m.group(0)), value)
                    merged[key] = path.parent / value  # an absolute value replaces the base
        return merged

    def _read(self, path: Path) -> list[tuple[str, str] | None]:
        if path not in self._parsed:
            items: list[tuple[str, str] | None] = []
            try:
                root = parse_xml(read_bytes(path, XML_MAX_BYTES, "NuGet.Config"), path, "NuGet.Config")
            except TrustPolicyError as error:
                # The policy reader reports a broken config; here it only costs a search location.
                self.problems.append(Finding("TP0003", f"{error} (its package folders are not searched)", "warning",
                                             Origin(path, "nuget.config")))
                root = None
            for section in root if root is not None else ():
                if local_name(section) != "config":
                    continue
                for element in section:
                    name = local_name(element)
                    if name == "clear":
                        items.append(None)
                    elif name == "add" and (element.get("key") or "").lower() in KEYS and element.get("value"):
                        items.append(((element.get("key") or "").lower(), element.get("value") or ""))
            self._parsed[path] = items
        return self._parsed[path]
