"""atheris harness: trustpolicy._internal.signature.parse_signature (CMS, timestamps, countersignatures).

    .venv/bin/python tests/fuzz/fuzz_signature.py tests/fuzz/corpus-signature -max_total_time=600

parse_signature must return or raise SignatureFormatError with an NU code; every timestamp problem
must carry a code. The custom mutator mixes libFuzzer's mutations with zipkit.mutate_der (tags,
lengths, indefinite and huge lengths, truncation, duplication, deep nesting). See README.md.
"""

from __future__ import annotations

import random
import sys

import atheris

with atheris.instrument_imports():
    from _harness import check_error, seed_corpus, zipkit

    from trustpolicy._internal.signature import parse_signature
    from trustpolicy.errors import SignatureFormatError


def one_input(data: bytes) -> None:
    try:
        parsed = parse_signature(data)
    except SignatureFormatError as error:
        check_error(error)
        return
    counter = parsed.countersignature
    for ts in parsed.timestamps + (counter.timestamps if counter else ()):
        assert ts.problem is None or ts.problem.code.startswith("NU3"), ts.problem
        _ = (ts.lower_limit, ts.upper_limit)


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    rng = random.Random(seed)
    if data and rng.random() < 0.6:
        return zipkit.mutate_der(data, rng)[:max_size]
    return atheris.Mutate(data, max_size)


if __name__ == "__main__":
    corpus = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    if corpus:
        from pathlib import Path

        seed_corpus(Path(corpus), "signature")
    atheris.Setup(sys.argv, one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()
