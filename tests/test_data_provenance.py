"""Every file under tests/data/ is listed in tests/data/PROVENANCE.md and still has the SHA-256 recorded there.

A fixture that was corrupted, swapped or added without saying where it came from fails here, by name,
instead of silently changing what the other tests prove.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from datafiles import DATA

PROVENANCE = DATA / "PROVENANCE.md"
NOT_DATA = {"README.md", "PROVENANCE.md", ".gitattributes"}  # documents about the data, at the top level only
# | `file` | source | `path` | `commit or version` | licence | `sha256` |
ROW = re.compile(r"^\| `(?P<file>[^`]+)` \| (?P<source>[^|]+) \| (?P<path>[^|]+) \| (?P<commit>[^|]+) \| "
                 r"(?P<licence>[^|]+) \| `(?P<sha256>[0-9a-f]{64})` \|$")
COMMIT = re.compile(r"^`[0-9a-f]{40}`$")
REPOSITORY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")


def recorded(text: str) -> dict[str, dict[str, str]]:
    rows: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        match = ROW.match(line)
        if match:
            assert match["file"] not in rows, f"{match['file']} is listed twice in {PROVENANCE.name}"
            rows[match["file"]] = {k: v.strip() for k, v in match.groupdict().items()}
    return rows


def problems(data: Path, rows: dict[str, dict[str, str]]) -> list[str]:
    """What disagrees between the files under `data` and the rows: unlisted, missing or changed files."""
    files = sorted(p.relative_to(data).as_posix() for p in data.rglob("*")
                   if p.is_file() and p.relative_to(data).as_posix() not in NOT_DATA)
    found = [f"{name}: not listed in PROVENANCE.md" for name in files if name not in rows]
    found += [f"{name}: listed in PROVENANCE.md but missing" for name in rows if name not in files]
    for name in sorted(set(files) & set(rows)):
        actual = hashlib.sha256((data / name).read_bytes()).hexdigest()
        if actual != rows[name]["sha256"]:
            found.append(f"{name}: SHA-256 is {actual}, PROVENANCE.md records {rows[name]['sha256']}")
    return found


ROWS = recorded(PROVENANCE.read_text(encoding="utf-8"))


def test_every_data_file_is_listed_with_its_sha256() -> None:
    assert problems(DATA, ROWS) == []
    assert len(ROWS) >= 40  # the NuGet files and their licence, the restore files and theirs, the SARIF schema


@pytest.mark.parametrize("name", sorted(ROWS))
def test_row_names_a_source_and_a_licence(name: str) -> None:
    row = ROWS[name]
    assert row["licence"] and row["path"]
    if REPOSITORY.match(row["source"]):  # a GitHub repository: the exact commit the file was taken from
        assert COMMIT.match(row["commit"]), f"{name}: no full commit SHA"


def test_a_changed_an_unlisted_and_a_missing_file_are_each_reported(tmp_path: Path) -> None:
    listed = ["nuget-client/zip-edge/SignatureFileEntry.zip", "nuget-client/certs/root.crt", "restore/CaringDev+PRDA__packages.lock.json"]
    rows = {name: ROWS[name] for name in listed}
    for name in listed[:2]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes((DATA / name).read_bytes())
    assert problems(tmp_path, rows) == [f"{listed[2]}: listed in PROVENANCE.md but missing"]
    changed = bytearray((tmp_path / listed[0]).read_bytes())
    changed[-1] ^= 1
    (tmp_path / listed[0]).write_bytes(bytes(changed))
    (tmp_path / "extra.bin").write_bytes(b"x")
    (tmp_path / "README.md").write_text("about the data")  # documents are not data
    found = problems(tmp_path, rows)
    assert found[0] == "extra.bin: not listed in PROVENANCE.md"
    assert found[2].startswith(f"{listed[0]}: SHA-256 is ") and len(found) == 3
