"""NuGet version parsing and the three string forms restore writes (docs/graph.md section 1).

- `normalized`: assets keys, lock `resolved`, global-folder names (lower-cased there).
- `to_string()`: NuGet's `ToString()`, the packages.config `packages/<Id>.<Version>/` form.
- equality: release labels case-insensitive, build metadata ignored (`VersionComparer.Default`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PART = re.compile(r"[0-9]+\Z")
_LABEL = re.compile(r"[0-9A-Za-z-]+\Z")
_INT32_MAX = 2**31 - 1


@dataclass(frozen=True, eq=False)
class NuGetVersion:
    """A parsed NuGet version. Compare with `==`/`hash` (labels case-insensitive, metadata ignored)."""

    major: int
    minor: int
    patch: int
    revision: int
    release_labels: tuple[str, ...]
    metadata: str | None
    original: str

    @property
    def is_prerelease(self) -> bool:
        return bool(self.release_labels)

    @property
    def is_semver2(self) -> bool:
        return len(self.release_labels) > 1 or self.metadata is not None

    @property
    def normalized(self) -> str:
        """`ToNormalizedString()`: revision only when non-zero, labels as written, no metadata."""
        text = f"{self.major}.{self.minor}.{self.patch}"
        if self.revision > 0:
            text += f".{self.revision}"
        if self.release_labels:
            text += "-" + ".".join(self.release_labels)
        return text

    @property
    def folder_name(self) -> str:
        """The global packages folder form: normalized, lower-cased."""
        return self.normalized.lower()

    def to_string(self) -> str:
        """`ToString()`: the original text unless SemVer 2 (then the normalized string)."""
        return self.normalized if self.is_semver2 else self.original

    # Labels keep their case for display but compare case-insensitively; metadata never compares.
    def _key(self) -> tuple[int, int, int, int, tuple[str, ...]]:
        return (self.major, self.minor, self.patch, self.revision, tuple(x.lower() for x in self.release_labels))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, NuGetVersion):
            return NotImplemented
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __str__(self) -> str:
        return self.normalized


def parse_version(text: str) -> NuGetVersion:
    """Parse like `NuGetVersion.TryParse`; raise ValueError naming the text when it is invalid."""
    if not isinstance(text, str):
        raise ValueError(f"version must be a string, not {type(text).__name__}")
    # Outer whitespace is trimmed and inner spaces are dropped from the stored text (section 1.1).
    original = text.strip().replace(" ", "")
    if not original:
        raise ValueError("empty version")
    rest, plus, metadata = original.partition("+")
    numbers, dash, labels_text = rest.partition("-")
    parts = numbers.split(".")
    if not 1 <= len(parts) <= 4 or not all(_PART.match(p) for p in parts):
        raise ValueError(f"invalid version {text!r}")
    values = [int(p) for p in parts]
    if any(v > _INT32_MAX for v in values):
        raise ValueError(f"invalid version {text!r}: number too large")
    values += [0] * (4 - len(values))
    labels: tuple[str, ...] = ()
    if dash:
        labels = tuple(labels_text.split("."))
        for label in labels:
            if not _LABEL.match(label) or (label.isdigit() and len(label) > 1 and label[0] == "0"):
                raise ValueError(f"invalid version {text!r}: bad release label {label!r}")
    if plus:
        if not all(_LABEL.match(m) for m in metadata.split(".")):
            raise ValueError(f"invalid version {text!r}: bad build metadata")
    return NuGetVersion(values[0], values[1], values[2], values[3], labels, metadata if plus else None, original)


def try_parse_version(text: object) -> NuGetVersion | None:
    try:
        return parse_version(text)  # type: ignore[arg-type]
    except ValueError:
        return None


def normalize_version(text: str) -> str:
    """`parse_version(text).normalized`; raises ValueError when invalid."""
    return parse_version(text).normalized
