"""Issue 6.2: no crash, no hang, bounded cost on malformed input.

Hypothesis drives structure-aware mutations (tests/fuzz/zipkit.py: header integers set to edge
values, wrong lengths and offsets, truncations, duplicated spans, planted header signatures, wrong
DER tags and lengths, deep indefinite nesting, huge lengths) of real signed packages and signatures,
plus zips generated from scratch with disagreeing headers. Every input must end in a result or a
TrustPolicyError (SignatureFormatError with an NU code) naming the file, within a time bound;
a `valid` verdict for a mutated package must mean the files are still those that were signed.
A SIGALRM deadline turns a hang into a failure. Long runs: tests/fuzz/README.md (atheris).
"""

from __future__ import annotations

import contextlib
import io
import random
import re
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from fuzz import signed, zipkit
from fuzz.signed import judge
from fuzz.zipkit import Entry
from hypothesis import HealthCheck, given, settings, strategies as st

from trustpolicy._internal.archive import ALGORITHMS, PackageArchive, insert_signature, strip_signature
from trustpolicy._internal.signature import parse_signature
from trustpolicy.cli import main as cli_main
from trustpolicy.errors import SignatureFormatError, TrustPolicyError

CODE = re.compile(r"(NU3\d\d\d|TP\d\d\d\d)")
PER_INPUT = 5.0  # seconds; typical inputs take milliseconds
STATS: Counter[str] = Counter()
FAST = settings(deadline=None, suppress_health_check=list(HealthCheck), derandomize=True, database=None)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> signed.World:
    return signed.world(tmp_path_factory.mktemp("hardening"))


@pytest.fixture(scope="module", autouse=True)
def figures() -> Iterator[None]:
    yield
    print(f"\n[fuzz] {dict(STATS)}")


@contextlib.contextmanager
def deadline(seconds: float = PER_INPUT) -> Iterator[None]:
    """Fail instead of hanging: SIGALRM raises inside whatever is running."""
    def expired(signum, frame):  # type: ignore[no-untyped-def]
        raise TimeoutError(f"an input took more than {seconds}s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def clean(error: TrustPolicyError, path: Path) -> None:
    assert error.path == str(path), error
    if isinstance(error, SignatureFormatError):
        assert CODE.fullmatch(error.code), error


def every_archive_operation(path: Path, scratch: Path) -> str:
    """Run everything the archive offers; return how it ended ("ok" or the error code)."""
    outcome = "ok"
    try:
        archive = PackageArchive.open(path)
    except TrustPolicyError as error:
        clean(error, path)
        return getattr(error, "code", None) or "error"
    for operation in ([archive.read_signature, archive.is_zip64, archive.read_nuspec]
                      + [lambda a=a: archive.package_hash(a) for a in ALGORITHMS]
                      + [lambda: strip_signature(path, scratch / "stripped.nupkg"),
                         lambda: insert_signature(path, b"\x30\x03\x02\x01\x01", scratch / "inserted.nupkg")]):
        try:
            operation()
        except TrustPolicyError as error:
            assert error.path in (str(path), None) or Path(error.path).parent == scratch, error
            outcome = getattr(error, "code", None) or "error"
    return outcome


# --- the archive reader ------------------------------------------------------------------------------


SEEDS = ("unsigned", "author", "repository", "countersigned", "no_timestamp")


@settings(FAST, max_examples=600)
@given(seed=st.sampled_from(SEEDS), mutations=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=4))
def test_mutated_packages_through_the_archive(world: signed.World, tmp_path_factory: pytest.TempPathFactory,
                                              seed: str, mutations: list[int]) -> None:
    data = getattr(world, seed).read_bytes()
    for m in mutations:
        data = zipkit.mutate_zip(data, random.Random(m))
    path = world.write("fuzz-archive.nupkg", data)
    scratch = tmp_path_factory.getbasetemp()
    start = time.perf_counter()
    with deadline():
        outcome = every_archive_operation(path, scratch)
    STATS["archive inputs"] += 1
    STATS[f"archive:{outcome}"] += 1
    STATS["archive max ms"] = max(STATS["archive max ms"], int((time.perf_counter() - start) * 1000))


names = st.sampled_from([b"a.nuspec", b"lib/x.dll", b".signature.p7s", b".Signature.p7s", b"lib/", b"x" * 300, b""])
overrides = st.fixed_dictionaries({}, optional={
    "method": st.sampled_from([0, 8, 12, 99]),
    "flags": st.sampled_from([0, 1, 8, 0x800, 0xFFFF]),
    "lfh_name": names,
    "lfh_sizes": st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    "cd_sizes": st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1)),
    "lfh_method": st.sampled_from([0, 8, 14]),
    "cd_offset": st.integers(0, 2**32 - 1),
    "extra": st.sampled_from([b"", b"\x01\x00\x10\x00" + b"\xff" * 16, b"\xca\xfe\x04\x00abcd", b"\x01"]),
    "descriptor": st.booleans(),
    "external": st.sampled_from([0, 0x10, 0x81A40000]),
})


@st.composite
def generated_zips(draw: st.DrawFn) -> bytes:
    items = []
    for _ in range(draw(st.integers(0, 6))):
        entry = Entry(draw(names), draw(st.binary(max_size=300)))
        for key, value in draw(overrides).items():
            setattr(entry, key, value)
        items.append(entry)
    n = len(items)
    local = draw(st.permutations(list(range(n))))
    cd = draw(st.lists(st.integers(0, n - 1), max_size=n + 2)) if n and draw(st.booleans()) else list(range(n))
    counts = draw(st.one_of(st.none(), st.tuples(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF))))
    return zipkit.build_zip(
        items, local_order=local, cd_order=cd, prefix=draw(st.sampled_from([b"", b"MZ" * 10])),
        comment=draw(st.sampled_from([b"", b"comment", b"PK\x05\x06 inside"])),
        trailing=draw(st.sampled_from([b"", b"\0" * 30])), eocd_counts=counts,
        eocd_cd_size=draw(st.one_of(st.none(), st.integers(0, 2**32 - 1))),
        eocd_cd_offset=draw(st.one_of(st.none(), st.integers(0, 2**32 - 1))),
        zip64_locator=draw(st.booleans()))


@settings(FAST, max_examples=500)
@given(data=generated_zips())
def test_generated_zips_through_the_archive(world: signed.World, tmp_path_factory: pytest.TempPathFactory,
                                            data: bytes) -> None:
    path = world.write("fuzz-generated.nupkg", data)
    with deadline():
        outcome = every_archive_operation(path, tmp_path_factory.getbasetemp())
    STATS["generated zips"] += 1
    STATS[f"generated:{outcome}"] += 1


# --- the CMS / timestamp parser ------------------------------------------------------------------------


def signatures(world: signed.World) -> list[bytes]:
    return [PackageArchive.open(getattr(world, s)).read_signature() for s in SEEDS[1:]]


@settings(FAST, max_examples=1500)
@given(which=st.integers(0, 3), mutations=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=3))
def test_mutated_signatures_through_the_parser(world: signed.World, which: int, mutations: list[int]) -> None:
    der = signatures(world)[which]
    for m in mutations:
        der = zipkit.mutate_der(der, random.Random(m))
    with deadline():
        try:
            parsed = parse_signature(der)
        except SignatureFormatError as error:
            assert CODE.fullmatch(error.code), error
            STATS[f"cms:{error.code}"] += 1
        else:
            for ts in parsed.timestamps + (parsed.countersignature.timestamps if parsed.countersignature else ()):
                assert ts.problem is None or CODE.fullmatch(ts.problem.code)
                _ = (ts.lower_limit, ts.upper_limit)
            STATS["cms:parsed"] += 1
    STATS["cms inputs"] += 1


@pytest.mark.slow
@settings(FAST, max_examples=400)
@given(which=st.sampled_from(SEEDS[1:]), mutations=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=2),
       preset=st.sampled_from(tuple(signed.PRESETS)))
def test_mutated_signatures_through_the_engine(world: signed.World, which: str, mutations: list[int],
                                               preset: str) -> None:
    """Only the signature bytes change (re-inserted as the entry): a valid verdict must keep the signer."""
    package = getattr(world, which)
    der = PackageArchive.open(package).read_signature()
    for m in mutations:
        der = zipkit.mutate_der(der, random.Random(m))
    der = der[: 1 << 20]
    unsigned = world.path("fuzz-engine.unsigned.nupkg")
    strip_signature(package, unsigned)
    path = world.path("fuzz-engine.nupkg")
    insert_signature(unsigned, der, path)
    with deadline():
        verdict = world.verify(path, preset)
    outcome = judge(world.verify(package, preset), verdict, preset)
    assert not outcome.startswith("BAD"), outcome
    STATS["engine (signature) inputs"] += 1
    STATS[f"engine-signature:{outcome}"] += 1


@pytest.mark.slow
@settings(FAST, max_examples=600)
@given(which=st.sampled_from(SEEDS[1:]), mutations=st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=3),
       preset=st.sampled_from(tuple(signed.PRESETS)))
def test_mutated_packages_through_the_engine(world: signed.World, which: str, mutations: list[int],
                                             preset: str) -> None:
    """Whole-package mutations: a valid verdict that vouches for a signature means unchanged files."""
    original = getattr(world, which).read_bytes()
    data = original
    for m in mutations:
        data = zipkit.mutate_zip(data, random.Random(m))
    path = world.write("fuzz-engine-zip.nupkg", data)
    with deadline():
        verdict = world.verify(path, preset)
    STATS["engine (package) inputs"] += 1
    STATS[f"engine-package:{verdict.verdict}"] += 1
    if verdict.verdict == "invalid":
        assert verdict.errors and all(CODE.fullmatch(i.code) for i in verdict.errors)
    elif verdict.signatures:  # a signature vouched for: the files must be the signed ones
        unsigned = world.unsigned.read_bytes()
        assert zipkit.without_signature(zipkit.cd_extract(data)) == zipkit.cd_extract(unsigned)
        assert zipkit.without_signature(zipkit.stream_extract(data)) == zipkit.stream_extract(unsigned)
        STATS["engine-package:valid-and-faithful"] += 1
    else:  # accept mode: unsigned, or an illegal signature let through with a warning
        assert preset == "accept" or (verdict.signed is False and verdict.issues == ())


# --- the command line -----------------------------------------------------------------------------------


def run_cli(args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), deadline(60):
        code = cli_main(args)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.slow
def test_cli_on_malformed_packages(world: signed.World) -> None:
    rng = random.Random(6)
    paths = []
    for i in range(40):
        data = getattr(world, SEEDS[i % len(SEEDS)]).read_bytes()
        for _ in range(rng.randint(1, 3)):
            data = zipkit.mutate_zip(data, rng)
        paths.append(world.write(f"cli-{i}.nupkg", data))
    paths.append(world.write("cli-empty.nupkg", b""))
    paths.append(world.write("cli-text.nupkg", b"not a zip at all\n"))
    code, out, err = run_cli(["verify", *map(str, paths), "--format", "json", "--revocation", "off"])
    assert code in (0, 1) and "Traceback" not in err and "internal error" not in err, err
    assert out.count('"verdict"') >= len(paths)
    for path in paths:
        for args in (["inspect", str(path)], ["inspect", str(path), "--format", "json"]):
            code, _, err = run_cli(args)
            assert code in (0, 1, 2) and "Traceback" not in err and "internal error" not in err, (path, err)
            STATS["cli runs"] += 1
    STATS["cli runs"] += 1
