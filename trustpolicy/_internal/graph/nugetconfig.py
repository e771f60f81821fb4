"""The two NuGet.Config keys that move packages: `globalPackagesFolder` and `repositoryPath`.

The global folder goes after NUGET_PACKAGES and before `<home>/.nuget/packages`; repositoryPath is
the packages.config `packages/` folder. trustpolicy._internal.config is the one NuGet.Config reader: the same
files (directory walk, user, additional user and machine-wide files, the location overrides), the
same merge (closer wins, <clear/>), %VAR% expansion and relative paths against the defining file's
folder as for the signing policy. This module only asks it, once per directory, with the walk's
environment, and turns a file it cannot read into a warning: a broken config costs its own
settings, not the run (the policy reader refuses it where it matters).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from trustpolicy._internal.config.hierarchy import load_config
from trustpolicy._internal.config.nugetconfig import ConfigFile, read_config_file
from trustpolicy._internal.graph.model import Origin, finding
from trustpolicy.codes import Code
from trustpolicy.errors import ConfigError
from trustpolicy.models import Issue, Level

KEYS = ("globalpackagesfolder", "repositorypath")


class ConfigReader:
    """Package folders per directory, for one graph walk (each file is read once)."""

    def __init__(self, environ: Mapping[str, str], configfile: Path | None = None) -> None:
        self.environ = environ
        self.configfile = configfile
        self.problems: list[Issue] = []
        self._files: dict[Path, ConfigFile] = {}
        self._folders: dict[Path, dict[str, Path]] = {}

    def settings(self, start: Path) -> dict[str, Path]:
        """{lower key: absolute folder} for KEYS, as the files seen from `start` define them."""
        start = start.absolute()
        if start not in self._folders:
            self._folders[start] = self._load(start)
        return self._folders[start]

    def _load(self, start: Path) -> dict[str, Path]:
        directory = None if self.configfile is not None else start
        try:
            settings = load_config(self.configfile, directory, environ=self.environ, read=self._read).settings
        except ConfigError as error:  # an unlistable machine folder, a vanished directory
            self._problem(Path(error.path or start), str(error))
            return {}
        found = {"globalpackagesfolder": settings.global_packages_folder, "repositorypath": settings.repository_path}
        return {key: Path(folder.path) for key, folder in found.items() if folder is not None}

    def _read(self, path: Path) -> ConfigFile:
        if path not in self._files:
            try:
                self._files[path] = read_config_file(path)
            except ConfigError as error:
                self._problem(path, str(error))
                self._files[path] = ConfigFile(str(path), (), (), (), ())
        return self._files[path]

    def _problem(self, path: Path, message: str) -> None:
        self.problems.append(finding(Code.TP0003, f"{message} (its package folders are not searched)", Level.WARNING,
                                     Origin(path, "nuget.config")))
