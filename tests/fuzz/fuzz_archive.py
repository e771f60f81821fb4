"""atheris harness: trustpolicy._internal.archive (and read_nuspec) on arbitrary bytes.

    .venv/bin/python tests/fuzz/fuzz_archive.py tests/fuzz/corpus-archive -max_total_time=600

Any exception other than TrustPolicyError (and its subclasses) is a finding; so is a hang
(use -timeout=10). The custom mutator mixes libFuzzer's byte mutations with zipkit.mutate_zip
(header integers, offsets, counts, truncations, planted signatures). See README.md.
"""

from __future__ import annotations

import random
import sys

import atheris

with atheris.instrument_imports():
    from _harness import SCRATCH, check_error, seed_corpus, zipkit

    from trustpolicy._internal.archive import ALGORITHMS, PackageArchive, insert_signature, strip_signature
    from trustpolicy.errors import TrustPolicyError

PATH = SCRATCH / "input.nupkg"


def one_input(data: bytes) -> None:
    PATH.write_bytes(data)
    try:
        archive = PackageArchive.open(PATH)
    except TrustPolicyError as error:
        check_error(error)
        return
    operations = [archive.read_signature, archive.is_zip64, archive.read_nuspec,
                  *(lambda a=a: archive.package_hash(a) for a in ALGORITHMS),
                  lambda: strip_signature(PATH, SCRATCH / "stripped.nupkg"),
                  lambda: insert_signature(PATH, b"\x30\x00", SCRATCH / "inserted.nupkg")]
    for operation in operations:
        try:
            operation()
        except TrustPolicyError as error:
            check_error(error)


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if data and rng.random() < 0.6:
        return zipkit.mutate_zip(data, rng)[:max_size]
    return atheris.Mutate(data, max_size)


if __name__ == "__main__":
    corpus = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    if corpus:
        from pathlib import Path

        seed_corpus(Path(corpus), "archive")
    atheris.Setup(sys.argv, one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()
