"""Which NuGet.Config files apply, and what they add up to (NuGet.Configuration's Settings).

Without --configfile, NuGet reads (closest first): a nuget.config in the directory and in every
parent up to the root (one per directory, probed as nuget.config, NuGet.config, NuGet.Config), the
user file, the additional user files (<user dir>/config/*.config, read-only) and the machine-wide
files (read-only). With --configfile it reads that one file and nothing else.

Files are merged from the farthest to the closest: <clear/> drops what came before, an item with
the same identity (author: name; repository: serviceIndex; <add>: key) replaces the farther one,
anything else is added. A <config> key (signatureValidationMode, globalPackagesFolder,
repositoryPath) is the first matching item (ignoring case) of the merged <config> section; values
have %VAR% expanded, and a relative folder is relative to the folder of the file that defines it.

This is the one NuGet.Config reader: the signing policy and the package folders the graph walk
searches (TrustSettings.global_packages_folder / repository_path, which trustpolicy._internal.graph asks for)
come from the same files, found with the same environment.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any, TypeVar

import platformdirs

from trustpolicy._internal.config.nugetconfig import (
    MODE_KEY,
    ConfigFile,
    Setting,
    TrustedSigner,
    expand_environment,
    parse_mode,
    read_config_file,
)
from trustpolicy._internal.config.rules import Clear, Rule, TrustRules, rule_key
from trustpolicy.codes import CODES, Code
from trustpolicy.errors import ConfigError
from trustpolicy.models import Issue, Level, Location

PROBE_NAMES = ("nuget.config", "NuGet.config", "NuGet.Config")  # NuGet's order on case-sensitive file systems
USER_FILE_NAME = "NuGet.Config"
NUGET_ORG_SOURCE = ("nuget.org", "https://api.nuget.org/v3/index.json")  # what NuGet puts in a new user file
# trustpolicy's own overrides of the user and machine-wide config directories (an empty value means
# "none"); for containers, CI and tests that must not read the real home.
USER_DIR_ENV, MACHINE_DIR_ENV = "TRUSTPOLICY_NUGET_USER_DIR", "TRUSTPOLICY_NUGET_MACHINE_DIR"
GLOBAL_PACKAGES_FOLDER, REPOSITORY_PATH = "globalPackagesFolder", "repositoryPath"
MODES = ("accept", "require")


@dataclass(frozen=True)
class ConfigLocations:
    """Where NuGet looks besides the directory walk. Pass your own (tests do) to avoid the real home.

    user_dir holds NuGet.Config and config/*.config; machine_dir holds the machine-wide *.config files.
    None means "no such location". for_platform() computes NuGet's paths for an OS from environment
    variables; TRUSTPOLICY_NUGET_USER_DIR / TRUSTPOLICY_NUGET_MACHINE_DIR override them.
    """

    user_dir: str | None
    machine_dir: str | None
    windows: bool = False

    @classmethod
    def for_platform(cls, platform: str | None = None, environ: Mapping[str, str] | None = None) -> ConfigLocations:
        """The locations NuGet uses on `platform` (sys.platform style), from `environ` (os.environ).

        A given `environ` is the whole environment: without HOME (APPDATA) in it there is no user
        folder; the process's own home is only a fallback when reading os.environ."""
        platform = sys.platform if platform is None else platform
        env = os.environ if environ is None else environ
        base = cls._nuget_defaults(platform, env, home_fallback=environ is None)
        user_override, machine_override = env.get(USER_DIR_ENV), env.get(MACHINE_DIR_ENV)
        return cls(
            user_dir=base.user_dir if user_override is None else (user_override or None),
            machine_dir=base.machine_dir if machine_override is None else (machine_override or None),
            windows=base.windows,
        )

    @classmethod
    def _nuget_defaults(cls, platform: str, env: Mapping[str, str], *, home_fallback: bool) -> ConfigLocations:
        if platform.startswith("win"):
            roaming = platformdirs.user_data_dir(appauthor=False, roaming=True) if sys.platform == "win32" and home_fallback else None
            appdata = env.get("APPDATA") or roaming  # %APPDATA%, as NuGet reads it
            program_files = env.get("ProgramFiles(x86)") or env.get("PROGRAMFILES(X86)") or env.get("ProgramFiles") or env.get("PROGRAMFILES")
            return cls(
                user_dir=str(PureWindowsPath(appdata, "NuGet")) if appdata else None,
                machine_dir=str(PureWindowsPath(program_files, "NuGet", "Config")) if program_files else None,
                windows=True,
            )
        home = env.get("HOME") or (str(Path.home()) if home_fallback else None)
        if platform == "darwin":
            machine = "/Library/Application Support"
        else:
            machine = env.get("NUGET_COMMON_APPLICATION_DATA") or "/etc/opt"
        return cls(
            user_dir=str(PurePosixPath(home, ".nuget", "NuGet")) if home else None,
            machine_dir=str(PurePosixPath(machine, "NuGet", "Config")),
        )


@dataclass(frozen=True)
class FolderSetting:
    """A <config> key naming a folder: the absolute folder, as NuGet resolves it, and where it is set."""

    key: str
    path: str
    source: Location


@dataclass(frozen=True)
class TrustSettings:
    """The effective settings of a set of config files.

    `mode` is what NuGet makes of signatureValidationMode (anything it cannot parse is accept);
    `mode_value` is the value as written (%VAR% expanded; None: not set) and `mode_source` where.
    files are the files read, closest first. sources maps package source names to their URLs
    (%VAR% expanded). warnings carry NuGet's NU3040 for conflicting allowUntrustedRoot values; the
    certificates concerned already have allow_untrusted_root=False, as NuGet decides.
    global_packages_folder / repository_path: the package folders the files name (None: not set).
    rules: the merged <trustPolicy> rules (identity rules, signer scopes, package exceptions).
    """

    mode: str  # "accept" | "require"
    mode_source: Location | None
    signers: tuple[TrustedSigner, ...]
    sources: dict[str, str]
    files: tuple[str, ...]
    warnings: tuple[Issue, ...] = ()
    mode_value: str | None = None
    global_packages_folder: FolderSetting | None = None
    repository_path: FolderSetting | None = None
    rules: TrustRules = field(default_factory=TrustRules)

    @property
    def mode_problem(self) -> Issue | None:
        """TP1018 when signatureValidationMode is set to anything but accept or require (any case):
        NuGet then silently uses accept, which a strict reading must not assume."""
        if self.mode_value is None or self.mode_value.strip().lower() in MODES:
            return None
        return Issue(
            Code.TP1018,
            Level.ERROR,
            f"signatureValidationMode is {self.mode_value!r}, which is neither accept nor require; "
            "NuGet silently reads it as accept",
            where=self.mode_source,
            fix='Set it to "accept" or "require".',
        )

    def unusable(self) -> list[Issue]:
        """Trusted-signer certificates NuGet cannot use: SHA-1 (NU3043) or an unknown hashAlgorithm;
        identity rules that pin no issuing CA (TP2006: a subject alone is no identity)."""
        issues = []
        for signer in self.signers:
            for cert in signer.certificates:
                if not cert.usable:
                    code = Code.NU3043 if cert.hash_algorithm == "SHA1" else Code.TP1020
                    issues.append(Issue(
                        code, Level.ERROR,
                        f"{signer.kind} {signer.name!r} has a certificate with hashAlgorithm {cert.hash_algorithm!r}, "
                        "which NuGet cannot use (only SHA256, SHA384 and SHA512)",
                        where=cert.source, fix=CODES[code].help,
                    ))
        for rule in self.rules.identities:
            if not rule.issuers:
                issues.append(Issue(
                    Code.TP2006, Level.ERROR,
                    f"identity {rule.name!r} pins no issuing CA: any CA can issue a certificate with the same subject",
                    where=rule.source, fix=CODES[Code.TP2006].help,
                ))
        return issues

    def require_usable(self, *, mode_given: bool) -> None:
        """Refuse (ConfigError with file:line) what NuGet would misread or fail on: a certificate
        with a SHA-1 or unknown hashAlgorithm, and, unless the caller sets the mode itself, a
        signatureValidationMode that is neither accept nor require."""
        problems = self.unusable()
        if not mode_given and self.mode_problem is not None:
            problems.insert(0, self.mode_problem)
        if problems:
            first = problems[0]
            fix = (first.fix or "").rstrip(".") + (", or pass --mode" if first.code == Code.TP1018 else "")
            where = first.where
            raise ConfigError(f"{first.code}: {first.message}. {fix}.",
                              path=where.path if where else None, line=where.line if where else None)


@dataclass(frozen=True)
class LoadedFile:
    path: str
    scope: str  # "explicit" | "directory" | "user" | "additional-user" | "machine"
    writable: bool
    parsed: ConfigFile | None  # None: the file does not exist (yet)


@dataclass(frozen=True)
class LoadedConfig:
    """All files in priority order (closest first), and the merged result."""

    files: tuple[LoadedFile, ...]
    settings: TrustSettings
    # signer location -> the farther signers with the same identity it replaced (NuGet removes those too)
    shadowed: dict[Location, tuple[TrustedSigner, ...]] = field(default_factory=dict)
    source_locations: dict[str, Location] = field(default_factory=dict)

    def output_file(self) -> LoadedFile:
        """Where NuGet writes a new trusted signer: the closest writable file whose <trustedSigners>
        has a <clear/>, otherwise the farthest writable file (the user file)."""
        writable = [f for f in self.files if f.writable]
        if not writable:
            raise ConfigError("no writable config file: pass --configfile")
        for loaded in writable:
            if loaded.parsed and loaded.parsed.clears_signers:
                return loaded
        return writable[-1]

    def file_for(self, path: str) -> LoadedFile | None:
        return next((f for f in self.files if f.path == path), None)


def load_trust_settings(
    configfile: str | os.PathLike[str] | None = None,
    directory: str | os.PathLike[str] | None = None,
    *,
    locations: ConfigLocations | None = None,
    environ: Mapping[str, str] | None = None,
) -> TrustSettings:
    """The effective trust settings: `configfile` alone, or the hierarchy seen from `directory`
    (default: the current directory). Raises ConfigError naming the file and line."""
    return load_config(configfile, directory, locations=locations, environ=environ).settings


def load_config(
    configfile: str | os.PathLike[str] | None = None,
    directory: str | os.PathLike[str] | None = None,
    *,
    locations: ConfigLocations | None = None,
    environ: Mapping[str, str] | None = None,
    allow_missing: bool = False,
    read: Callable[[Path], ConfigFile] = read_config_file,
) -> LoadedConfig:
    """Read and merge. `environ` (default os.environ) is the one environment every part sees: %VAR%
    expansion and, unless `locations` is given, the user and machine folders. allow_missing lets a
    write command start from a --configfile that does not exist; `read` parses one file (a caller
    that reads many hierarchies passes a memo)."""
    if configfile is not None and directory is not None:
        raise ConfigError("give either a config file or a directory, not both")
    locations = locations or ConfigLocations.for_platform(environ=environ)
    files = discover(configfile, directory, locations=locations, allow_missing=allow_missing, read=read)
    return merge(files, environ=environ)


def discover(
    configfile: str | os.PathLike[str] | None = None,
    directory: str | os.PathLike[str] | None = None,
    *,
    locations: ConfigLocations | None = None,
    allow_missing: bool = False,
    read: Callable[[Path], ConfigFile] = read_config_file,
) -> list[LoadedFile]:
    if configfile is not None:
        path = Path(configfile)
        if path.is_dir():
            raise ConfigError("is a directory; --configfile needs a file", path=str(path))
        if not path.exists():
            if not allow_missing:
                raise ConfigError("file does not exist", path=str(path))
            return [LoadedFile(str(path), "explicit", True, None)]
        return [LoadedFile(str(path), "explicit", True, read(path))]

    start = Path(directory if directory is not None else os.getcwd())
    if not start.is_dir():
        raise ConfigError("is not a directory", path=str(start))
    locations = locations or ConfigLocations.for_platform()
    files = [LoadedFile(str(p), "directory", True, read(p)) for p in walk_up(start.resolve())]
    if locations.user_dir:
        user_dir = Path(locations.user_dir)
        user_file = user_dir / USER_FILE_NAME
        if user_file.is_file():
            files.append(LoadedFile(str(user_file), "user", True, read(user_file)))
        else:  # NuGet would create it, holding only the nuget.org source
            files.append(LoadedFile(str(user_file), "user", True, None))
        for extra in _config_files(user_dir / "config", locations.windows):
            if extra.name.lower() != USER_FILE_NAME.lower():
                files.append(LoadedFile(str(extra), "additional-user", False, read(extra)))
    if locations.machine_dir:
        for machine in _config_files(Path(locations.machine_dir), locations.windows):
            files.append(LoadedFile(str(machine), "machine", False, read(machine)))
    return files


def walk_up(start: Path) -> list[Path]:
    """The config file of `start` and of each parent, closest first (one per directory)."""
    found: list[Path] = []
    for directory in (start, *start.parents):
        for name in PROBE_NAMES:
            if (directory / name).is_file():
                found.append(directory / _actual_name(directory, name))
                break
    return found


def _actual_name(directory: Path, name: str) -> str:
    """The name as stored on disk: on a case-insensitive file system "nuget.config" may find
    NuGet.Config, and edits must keep that name."""
    try:
        listing = os.listdir(directory)
    except OSError:
        return name
    if name in listing:
        return name
    return next((entry for entry in listing if entry.lower() == name.lower()), name)


def _config_files(directory: Path, windows: bool) -> list[Path]:
    """*.config files of a directory (also *.Config off Windows), in ordinal name order."""
    try:
        names = sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    except OSError as exc:
        raise ConfigError(f"cannot list: {exc.strerror or exc}", path=str(directory)) from exc
    wanted = (lambda n: n.lower().endswith(".config")) if windows else (lambda n: n.endswith((".config", ".Config")))
    return [directory / n for n in names if wanted(n) and (directory / n).is_file()]


T = TypeVar("T")


def _merge_items(
    sections: Iterable[tuple[T | Clear, ...]], identity: Callable[[Any], object]
) -> tuple[list[T], dict[Location, list[T]]]:
    """Farthest section first, as NuGet merges sections: <clear/> drops what came before; an item
    with the identity of one from a farther file removes the first such item and is appended (so
    the order changes); anything else is appended. Items of one file never replace each other (the
    parser already settled those). Returns the merged items and, by location, what each replaced."""
    merged: list[T] = []
    replaced: dict[Location, list[T]] = {}
    for items in sections:
        farther = list(merged)
        for item in items:
            if isinstance(item, Clear):
                merged.clear()
                farther = []
                continue
            key = identity(item)
            old = next((e for e in farther if identity(e) == key and any(e is m for m in merged)), None)
            if old is not None:
                replaced[item.source] = [*replaced.get(old.source, []), old]  # type: ignore[attr-defined]
                merged = [m for m in merged if m is not old]
            merged.append(item)
    return merged, replaced


def merge(files: list[LoadedFile], *, environ: Mapping[str, str] | None = None) -> LoadedConfig:
    farthest_first = list(reversed(files))
    config_sections = [f.parsed.config for f in farthest_first if f.parsed]
    source_sections = [
        f.parsed.sources if f.parsed else (Setting(*NUGET_ORG_SOURCE, Location(f.path)),)
        for f in farthest_first
        if f.parsed or f.scope == "user"
    ]
    signer_sections = [f.parsed.signers for f in farthest_first if f.parsed]
    rule_sections: list[tuple[Rule | Clear, ...]] = [f.parsed.rules for f in farthest_first if f.parsed]

    config, _ = _merge_items(config_sections, lambda s: s.key)
    sources, _ = _merge_items(source_sections, lambda s: s.key)
    signers, replaced = _merge_items(signer_sections, lambda s: s.identity)
    rules: list[Rule]
    rules, _ = _merge_items(rule_sections, rule_key)  # Any: mypy cannot split a union of unions

    first_sources: dict[str, Setting] = {}
    for source in sources:
        first_sources.setdefault(source.key, source)  # one file may name a key twice: the first wins
    mode_setting = _first(config, MODE_KEY)
    mode_value = expand_environment(mode_setting.value, environ) if mode_setting else None
    signers, warnings = _resolve_conflicts(signers)
    settings = TrustSettings(
        mode=parse_mode(mode_value),
        mode_source=mode_setting.source if mode_setting else None,
        signers=tuple(signers),
        sources={key: expand_environment(s.value, environ) for key, s in first_sources.items()},
        files=tuple(f.path for f in files if f.parsed),
        warnings=tuple(warnings),
        mode_value=mode_value,
        global_packages_folder=_folder(config, GLOBAL_PACKAGES_FOLDER, environ),
        repository_path=_folder(config, REPOSITORY_PATH, environ),
        rules=TrustRules.of(rules),
    )
    return LoadedConfig(
        files=tuple(files),
        settings=settings,
        shadowed={where: tuple(old) for where, old in replaced.items()},
        source_locations={key: s.source for key, s in first_sources.items()},
    )


def _first(config: list[Setting], key: str) -> Setting | None:
    """NuGet's lookup of a <config> key: the first item of the merged section, ignoring case."""
    return next((s for s in config if s.key.lower() == key.lower()), None)


def _folder(config: list[Setting], key: str, environ: Mapping[str, str] | None) -> FolderSetting | None:
    """A folder key as NuGet resolves it: %VAR% expanded, relative to the defining file's folder,
    normalised. An empty value hides farther ones and means NuGet's default (None)."""
    setting = _first(config, key)
    value = expand_environment(setting.value, environ) if setting else ""
    if not setting or not value:
        return None
    base = os.path.dirname(os.path.abspath(setting.source.path))
    return FolderSetting(setting.key, os.path.normpath(os.path.join(base, value)), setting.source)


def _resolve_conflicts(signers: list[TrustedSigner]) -> tuple[list[TrustedSigner], list[Issue]]:
    """NU3040: one certificate (same algorithm and fingerprint as written) listed with different
    allowUntrustedRoot values. NuGet warns and uses false for it."""
    by_key: dict[str, list[Location]] = {}
    declared: dict[str, set[bool]] = {}
    for signer in signers:
        for cert in signer.certificates:
            key = f"{cert.hash_algorithm}-{cert.written_fingerprint}"
            by_key.setdefault(key, []).append(cert.source)
            declared.setdefault(key, set()).add(cert.written_allow_untrusted_root)
    conflicts = {key for key, values in declared.items() if len(values) > 1}
    warnings = [
        Issue(
            Code.NU3040,
            Level.WARNING,
            f"certificate {key.split('-', 1)[1]} ({key.split('-', 1)[0]}) is trusted more than once with different "
            f"allowUntrustedRoot values (at {', '.join(str(loc) for loc in by_key[key])}); NuGet uses false",
            where=by_key[key][-1],
            fix="give every entry of this certificate the same allowUntrustedRoot value",
        )
        for key in sorted(conflicts)
    ]
    if not conflicts:
        return signers, warnings
    resolved = []
    for signer in signers:
        certificates = tuple(
            replace(c, allow_untrusted_root=False) if f"{c.hash_algorithm}-{c.written_fingerprint}" in conflicts else c
            for c in signer.certificates
        )
        resolved.append(replace(signer, certificates=certificates))
    return resolved, warnings
