"""Files shipped with trustpolicy: root bundles and known certificates (data/), schemas."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent.parent  # trustpolicy/, beside _internal/
DATA_DIR = _PACKAGE / "data"


def schema_path(name: str) -> Path:
    """A file from the top-level schemas/ (a wheel carries it as trustpolicy/schemas/)."""
    for candidate in (_PACKAGE / "schemas" / name, _PACKAGE.parent / "schemas" / name):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"schema {name} is not installed with trustpolicy")
