"""NuGet version ranges (`1.0`, `[1.0]`, `[1.0,2.0)`, `(,2.0]`) and the order they compare in.

The notation is NuGet's: a bare version is a minimum (inclusive); brackets include a bound, parentheses
exclude it, an empty side is unbounded; `[1.0]` is exactly 1.0. Floating versions (`1.*`) are not
ranges here. Versions order as SemVer 2.0 with NuGet's four numbers: a prerelease sorts before its
release, release labels compare part by part (numbers numerically and before text, text ignoring case),
build metadata never counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from trustpolicy._internal.graph.versions import NuGetVersion, parse_version

__all__ = ["VersionRange", "order_key", "parse_range"]


def order_key(version: NuGetVersion) -> tuple[object, ...]:
    """A key that sorts versions in NuGet's order."""
    labels = tuple((0, int(label), "") if label.isdigit() else (1, 0, label.lower()) for label in version.release_labels)
    # A release (no labels) sorts after all of its prereleases.
    return (version.major, version.minor, version.patch, version.revision, not labels, labels)


@dataclass(frozen=True)
class VersionRange:
    """A range of versions; `text` is the range as written."""

    text: str
    minimum: NuGetVersion | None
    include_minimum: bool
    maximum: NuGetVersion | None
    include_maximum: bool

    def __contains__(self, version: NuGetVersion) -> bool:
        key = order_key(version)
        if self.minimum is not None:
            low = order_key(self.minimum)
            if key < low or (key == low and not self.include_minimum):
                return False
        if self.maximum is not None:
            high = order_key(self.maximum)
            if key > high or (key == high and not self.include_maximum):
                return False
        return True

    def __str__(self) -> str:
        return self.text


def parse_range(text: str) -> VersionRange:
    """Parse NuGet's range notation; ValueError naming the text when it is not a range."""
    value = text.strip()
    if not value:
        raise ValueError("empty version range")
    if "*" in value:
        raise ValueError(f"{text!r}: floating versions are not allowed here; write a range such as [1.0,2.0)")
    if value[0] not in "[(":
        return VersionRange(text, _version(value, text), True, None, False)
    if len(value) < 3 or value[-1] not in "])":
        raise ValueError(f"{text!r} is not a version range: it opens with {value[0]!r} but does not close with ']' or ')'")
    include_min, include_max = value[0] == "[", value[-1] == "]"
    inner = value[1:-1]
    if "," not in inner:
        if not (include_min and include_max):
            raise ValueError(f"{text!r} is not a version range: an exact version is written [1.0]")
        exact = _version(inner, text)
        return VersionRange(text, exact, True, exact, True)
    low_text, _, high_text = inner.partition(",")
    if "," in high_text:
        raise ValueError(f"{text!r} is not a version range: it has more than one ','")
    low = _version(low_text, text) if low_text.strip() else None
    high = _version(high_text, text) if high_text.strip() else None
    if low is None and high is None:
        raise ValueError(f"{text!r} is not a version range: give at least one bound")
    if low is not None and high is not None:
        low_key, high_key = order_key(low), order_key(high)
        if low_key > high_key or (low_key == high_key and not (include_min and include_max)):
            raise ValueError(f"{text!r} is an empty version range: its lower bound is not below its upper bound")
    return VersionRange(text, low, include_min and low is not None, high, include_max and high is not None)


def _version(value: str, text: str) -> NuGetVersion:
    try:
        return parse_version(value)
    except ValueError as error:
        raise ValueError(f"{text!r} is not a version range: {error}") from None
