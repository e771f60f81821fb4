"""Package id patterns, read the way NuGet reads packageSourceMapping patterns.

A pattern is an exact package id (`Contoso.Logging`) or a prefix followed by one `*` (`Contoso.*`,
`Contoso*`, or `*` alone for every id). Matching ignores case. When several patterns match an id, the
most specific one decides: an exact id beats every prefix, a longer prefix beats a shorter one.
trustPolicy scopes use this to say which signers may sign which packages (docs/identity.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = ["MAX_ID_LENGTH", "best_match", "check_package_id", "check_pattern", "matches", "specificity"]

MAX_ID_LENGTH = 100  # NuGet's limit on a package id
_ID = re.compile(r"[A-Za-z0-9_]+(?:[.-][A-Za-z0-9_]+)*")
_PREFIX = re.compile(r"[A-Za-z0-9_.-]*")


def check_package_id(value: str) -> str:
    """The id itself; ValueError when it is not a valid NuGet package id."""
    if len(value) > MAX_ID_LENGTH or not _ID.fullmatch(value):
        raise ValueError(f"{value!r} is not a package id (letters, digits, '_', '.' and '-' between them, at most "
                         f"{MAX_ID_LENGTH} characters)")
    return value


def check_pattern(value: str) -> str:
    """The pattern itself; ValueError when it is neither an id nor a prefix ending in one '*'."""
    if value.endswith("*"):
        prefix = value[:-1]
        if len(value) <= MAX_ID_LENGTH and _PREFIX.fullmatch(prefix):
            return value
        raise ValueError(f"{value!r} is not a package id pattern: a '*' may only end a prefix of letters, digits, "
                         "'_', '.' and '-' (as in 'Contoso.*')")
    try:
        return check_package_id(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a package id pattern: write an exact id ('Contoso.Logging') or a prefix "
                         "followed by '*' ('Contoso.*')") from None


def matches(pattern: str, package_id: str) -> bool:
    if pattern.endswith("*"):
        return package_id.lower().startswith(pattern[:-1].lower())
    return package_id.lower() == pattern.lower()


def specificity(pattern: str) -> int:
    """Higher is more specific: an exact id outranks any prefix, a longer prefix a shorter one."""
    return len(pattern) - 1 if pattern.endswith("*") else MAX_ID_LENGTH + 1


def best_match(owners: Mapping[str, Iterable[str]], package_id: str) -> tuple[str | None, frozenset[str]]:
    """The most specific pattern matching `package_id` among every owner's patterns, and the owners
    that hold it (several owners may hold the same pattern). (None, {}) when nothing matches."""
    best: str | None = None
    holders: set[str] = set()
    for owner, patterns in owners.items():
        for pattern in patterns:
            if not matches(pattern, package_id):
                continue
            if best is None or specificity(pattern) > specificity(best):
                best, holders = pattern, {owner}
            elif specificity(pattern) == specificity(best):
                holders.add(owner)
    return best, frozenset(holders)
