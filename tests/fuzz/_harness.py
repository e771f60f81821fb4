"""Shared by the atheris harnesses: seeds, a scratch directory, and the "clean outcome" rule."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent)]  # tests/: so `fuzz.zipkit` and `fuzz.signed` import as under pytest

from fuzz import signed, zipkit  # noqa: E402

from trustpolicy.errors import SignatureFormatError, TrustPolicyError  # noqa: E402

SCRATCH = Path(tempfile.mkdtemp(prefix="trustpolicy-fuzz-"))


def seed_corpus(directory: Path, kind: str) -> None:
    """Write the starting inputs (real signed packages, or their signatures) if the directory is empty."""
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        return
    world = signed.world(SCRATCH)
    for name in ("unsigned", "author", "repository", "countersigned", "no_timestamp"):
        data = getattr(world, name).read_bytes()
        if kind == "signature":
            if name == "unsigned":
                continue
            from trustpolicy._internal.archive import PackageArchive

            data = PackageArchive.open(getattr(world, name)).read_signature()
        (directory / f"{name}.bin").write_bytes(data)


def check_error(error: TrustPolicyError) -> None:
    """A refusal is fine when it is one of ours and carries a code (signature errors) or a path."""
    if isinstance(error, SignatureFormatError):
        assert error.code.startswith(("NU3", "TP")), error
    assert error.path is None or os.path.isabs(error.path) or error.path, error


__all__ = ["SCRATCH", "check_error", "seed_corpus", "signed", "zipkit"]
