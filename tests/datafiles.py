"""Where the test data lives: tests/data/, inside the repository.

tests/data/README.md says what each file is and what NuGet expects of it; tests/data/PROVENANCE.md
says where it came from. Tests read data only through these names.
"""

from __future__ import annotations

from pathlib import Path

DATA = Path(__file__).resolve().parent / "data"
NUGET = DATA / "nuget-client"  # packages, signatures, zips and certificates made by NuGet's own tooling
SIGNED = NUGET / "signed"
UNSIGNED = NUGET / "unsigned"
ZIP_EDGE = NUGET / "zip-edge"
CERTS = NUGET / "certs"
RESTORE = DATA / "restore"  # project.assets.json, packages.lock.json and packages.config from real restores
