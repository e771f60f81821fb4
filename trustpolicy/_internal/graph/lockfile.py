"""packages.lock.json versions 1, 2 and 3: resolved packages and contentHash (docs/graph.md section 3)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from trustpolicy._internal.graph._io import KeyLocator, pointer
from trustpolicy._internal.graph.locate import Entry
from trustpolicy._internal.graph.model import Claim, Origin, finding
from trustpolicy._internal.graph.versions import try_parse_version
from trustpolicy.codes import Code
from trustpolicy.errors import TrustPolicyError
from trustpolicy.models import Issue, Level


def looks_like_lock(doc: Any) -> bool:
    if not isinstance(doc, dict) or "libraries" in doc:
        return False
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        return False
    if version >= 3:
        return any(isinstance(v, dict) and "framework" in v for v in doc.values())
    return isinstance(doc.get("dependencies"), dict)


def _targets(doc: dict[str, Any], path: Path) -> Iterator[tuple[str, Any, tuple[str, ...]]]:
    """(name, entries, pointer tokens of the entries object) for each target."""
    version = doc.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise TrustPolicyError(f"unsupported lock file version {version!r}", path=str(path))
    if version <= 2:
        targets = doc.get("dependencies")
        if not isinstance(targets, dict):
            raise TrustPolicyError("packages.lock.json has no 'dependencies' object", path=str(path))
        for name, entries in targets.items():
            yield name, entries, ("dependencies", name)
        return
    # Version 3 (section 3.6): every root property except `version` that has `framework` is a target.
    for name, target in doc.items():
        if name != "version" and isinstance(target, dict) and "framework" in target:
            yield name, target.get("dependencies", {}), (name, "dependencies")


def read_lock(doc: dict[str, Any], text: str, path: Path) -> tuple[list[Entry], list[Issue]]:
    """One Entry per distinct (id, resolved) across targets; `Project` entries are skipped."""
    locator = KeyLocator(text)
    problems: list[Issue] = []
    by_key: dict[tuple[str, str], Entry] = {}
    for name, entries, tokens in _targets(doc, path):
        target_at = locator.find(name) or 0
        if not isinstance(entries, dict):
            problems.append(finding(Code.TP0003, f"target {name!r} is not an object", Level.ERROR, Origin(path, "lock", pointer(*tokens))))
            continue
        cursor = target_at
        for package_id, item in entries.items():
            offset = locator.find(package_id, cursor)
            cursor = offset if offset is not None else cursor
            origin = Origin(path, "lock", pointer(*tokens, package_id), locator.line(offset), (name,))
            if not isinstance(item, dict):
                problems.append(finding(Code.TP0003, f"entry {package_id!r} in {name!r} is not an object", Level.ERROR, origin))
                continue
            kind = item.get("type")
            if isinstance(kind, str) and kind.lower() == "project":
                continue  # a ProjectReference: nothing to verify
            resolved = item.get("resolved")
            version = try_parse_version(resolved) if isinstance(resolved, str) else None
            text_version = resolved if isinstance(resolved, str) else ""
            key = (package_id.lower(), version.folder_name if version else text_version.lower())
            entry = by_key.get(key)
            if entry is not None:  # the same package in another target (a RID target repeats entries)
                if name not in entry.origin.targets:
                    entry.origin = Origin(entry.origin.path, "lock", entry.origin.pointer, entry.origin.line, entry.origin.targets + (name,))
                entry.claims.extend(c for c in _claims(item, path) if c not in entry.claims)
                continue
            entry = Entry(package_id, version, text_version, origin)
            if version is None:
                entry.problems.append(finding(Code.TP0003, f"{package_id!r} in {name!r} has no valid 'resolved' version ({resolved!r})", Level.ERROR, origin))
            entry.claims.extend(_claims(item, path))
            if not entry.claims:
                entry.problems.append(finding(Code.TP0003, f"{package_id!r} in {name!r} has no contentHash to check the package against", Level.WARNING, origin))
            by_key[key] = entry
    return list(by_key.values()), problems


def _claims(item: dict[str, Any], path: Path) -> list[Claim]:
    value = item.get("contentHash")
    return [Claim("contentHash", value, path)] if isinstance(value, str) and value else []
