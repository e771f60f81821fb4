"""The verdict cache: one file per policy, whole-file atomic writes, anything damaged is a miss."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from trustpolicy._internal import cache as cache_module
from trustpolicy._internal.cache import VerdictCache
from trustpolicy._internal.clock import parse_moment
from trustpolicy.models import Issue, MatchedSigner, PackageVerdict, SignatureReport, Status, StepResult

ENTRY = PackageVerdict("a.nupkg", "A", "1.0.0", True, (StepResult("trust", Status.VALID),))
INVALID = PackageVerdict(
    "b.nupkg", "B", "2.0.0", True,
    (StepResult("integrity", Status.VALID),
     StepResult("trust", Status.DISALLOWED, (Issue("NU3018", "warning", "untrusted root", "primary"),))),
    (SignatureReport("author", "primary", "CN=B", {"SHA256": "AB" * 32}, parse_moment("2024-01-02T03:04:05Z"),
                     None, (), Status.DISALLOWED),
     SignatureReport("repository", "countersignature", "CN=R", {}, None, "https://r.test/index.json", ("o",), None)),
    MatchedSigner("r", "repository", "CD" * 32, "countersignature"), None, errors_fail=True,
)


def saved(directory: Path, policy: str = "p1", **entries: PackageVerdict) -> VerdictCache:
    cache = VerdictCache(directory, policy)
    for key, entry in entries.items():
        cache.put(key, entry)
    cache.save()
    return cache


def test_entries_survive_a_new_run_under_the_same_policy_only(tmp_path: Path) -> None:
    saved(tmp_path, "p1", a=ENTRY, b=INVALID)
    again = VerdictCache(tmp_path, "p1")
    assert again.get("a") == ENTRY and again.get("c") is None
    # every field round-trips, so a cached verdict renders exactly as a fresh one
    assert again.get("b") == INVALID and again.get("b").to_json() == INVALID.to_json()
    assert again.get("b").verdict == "invalid" and again.get("b").codes() == ["NU3018", "NU3018"]
    assert VerdictCache(tmp_path, "p2").get("a") is None  # another policy: another file


def test_nothing_written_when_nothing_changed(tmp_path: Path) -> None:
    saved(tmp_path, "p1", a=ENTRY)
    path = tmp_path / "p1.json"
    before = path.stat().st_mtime_ns
    os.utime(path, ns=(before - 10**9, before - 10**9))
    reader = VerdictCache(tmp_path, "p1")
    assert reader.get("a") == ENTRY
    reader.save()
    assert path.stat().st_mtime_ns == before - 10**9


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],
        lambda data: b"\x00garbage\xff" * 10,
        lambda data: b"",
        lambda data: json.dumps({**json.loads(data), "format": 999}).encode(),
        lambda data: json.dumps({**json.loads(data), "policy": "p2"}).encode(),
        lambda data: json.dumps({**json.loads(data), "entries": ["a"]}).encode(),
        lambda data: json.dumps([1, 2, 3]).encode(),
    ],
    ids=["truncated", "garbage", "empty", "format", "policy", "entries", "not-an-object"],
)
def test_a_damaged_file_is_an_empty_cache(tmp_path: Path, damage) -> None:  # type: ignore[no-untyped-def]
    saved(tmp_path, "p1", a=ENTRY)
    path = tmp_path / "p1.json"
    path.write_bytes(damage(path.read_bytes()))
    cache = VerdictCache(tmp_path, "p1")
    assert cache.get("a") is None
    cache.put("b", ENTRY)
    cache.save()  # and the next save repairs it
    assert VerdictCache(tmp_path, "p1").get("b") == ENTRY


def test_entries_of_the_wrong_shape_are_misses(tmp_path: Path) -> None:
    saved(tmp_path, "p1", a=ENTRY, b=ENTRY, c=ENTRY, d=ENTRY)
    path = tmp_path / "p1.json"
    stored = json.loads(path.read_text())
    entry = stored["entries"]["a"]
    stored["entries"]["b"] = ["not", "an", "entry"]
    stored["entries"]["c"] = {**entry, "steps": [{"step": "trust", "status": "probably fine", "issues": []}]}
    stored["entries"]["d"] = {**entry, "steps": None}
    path.write_text(json.dumps(stored))
    cache = VerdictCache(tmp_path, "p1")
    assert cache.get("a") == ENTRY and [cache.get(k) for k in "bcd"] == [None, None, None]


def test_the_newest_entries_are_kept_at_the_cap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "MAX_ENTRIES", 3)
    saved(tmp_path, "p1", a=ENTRY, b=ENTRY, c=ENTRY)
    cache = VerdictCache(tmp_path, "p1")
    cache.put("a", ENTRY)  # re-used: now the newest
    cache.put("d", ENTRY)
    cache.save()
    again = VerdictCache(tmp_path, "p1")
    assert [k for k in "abcd" if again.get(k) is not None] == ["a", "c", "d"]


def test_files_unused_for_a_week_are_removed(tmp_path: Path) -> None:
    saved(tmp_path, "old", a=ENTRY)
    saved(tmp_path, "recent", a=ENTRY)
    week_ago = (tmp_path / "old.json").stat().st_mtime - 8 * 24 * 3600
    os.utime(tmp_path / "old.json", (week_ago, week_ago))
    saved(tmp_path, "today", a=ENTRY)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recent.json", "today.json"]


def test_an_unwritable_folder_is_not_an_error(tmp_path: Path) -> None:
    blocked = tmp_path / "file-not-folder"
    blocked.write_text("in the way")
    cache = VerdictCache(blocked / "verdicts", "p1")
    cache.put("a", ENTRY)
    cache.save()  # no exception
    assert cache.get("a") == ENTRY
