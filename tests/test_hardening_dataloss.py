"""No data lost (issue 6, part 6): killed edits, unwritable configs, a shared verdict cache.

1. `trust author / certificate / remove` run as real processes against a NuGet.Config padded with
   3 MB of comments (so parsing and writing take a measurable time) and are SIGKILLed at many
   moments: at delays spread over the whole run, and right when (or just after) the temporary file
   of fileutil.write_atomic appears in the folder, i.e. inside the write. Afterwards the config is
   byte-identical to before or exactly what an uninterrupted run writes, never anything else.
   A kill inside the write leaves `.NuGet.Config.<random>.tmp` behind (write_atomic cannot clean up
   after SIGKILL); such files are never read (not a config file name), never reused (mkstemp picks
   a new name) and do not change what later runs do, which the trials show by running among them.
2. A config that cannot be written gives one clear error line naming it and no change, no temp file:
   a read-only file, a read-only folder, an immutable file or folder (chattr +i), a write cut short
   by the file size limit (RLIMIT_FSIZE, as a full disk would), a folder where the file should be, a
   path through a regular file. As root, permission bits stop nothing; the read-only cases then run
   with CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH / CAP_FOWNER dropped (root is then bound by the
   bits, as any user is); they are skipped only where even that is impossible.
3. `check` processes sharing one cache folder, four at a time for several rounds while another
   thread truncates, garbles, empties, deletes and replaces cache entries, all report exactly what
   a --no-cache run reports.
"""

from __future__ import annotations

import ctypes
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "fixtures" / "demo"
NORTHWIND = DEMO / "packages" / "northwind.utils" / "1.4.2" / "northwind.utils.1.4.2.nupkg"
NEW_FP = "CD" * 32

VERBS: dict[str, list[str]] = {
    "author": ["trust", "author", "Northwind", str(NORTHWIND), "--allow-untrusted-root"],
    "certificate": ["trust", "certificate", "New Signer", NEW_FP],
    "remove": ["trust", "remove", "Contoso Ltd"],
}
TIMED_KILLS = 5  # per verb, spread over the run
WRITE_KILLS = (0.0, 0.0, 0.0, 0.001, 0.003, 0.006)  # per verb, seconds after the temp file appears


def env_for(home: Path) -> dict[str, str]:
    return {**os.environ, "HOME": str(home), "NUGET_COMMON_APPLICATION_DATA": str(home / "machine"),
            "XDG_CACHE_HOME": str(home / "cache")}


def big_config(path: Path) -> bytes:
    """The demo's config (two trusted signers) with 30 comments of 100 KB each in front."""
    demo = (DEMO / "NuGet.Config").read_text()
    head, tail = demo.split("<configuration>", 1)
    comment = "<!-- " + "lorem ipsum dolor sit amet, " * 3600 + "-->\n"
    data = (head + "<configuration>\n" + comment * 30 + tail).encode()
    path.write_bytes(data)
    return data


def temp_files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name.endswith(".tmp")}


def trust(argv: list[str], config: Path, home: Path, **kw: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "trustpolicy", *argv, "--configfile", str(config)],
                          capture_output=True, text=True, env=env_for(home), timeout=60, **kw)


# --- 1. SIGKILL at any moment ----------------------------------------------------------------------


def kill_trial(argv: list[str], config: Path, home: Path, *, delay: float | None = None,
               after_temp: float | None = None) -> str:
    """Run one edit and SIGKILL it; returns where the kill landed."""
    before = temp_files(config.parent)
    proc = subprocess.Popen([sys.executable, "-m", "trustpolicy", *argv, "--configfile", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env_for(home))
    landed = "running"
    if delay is not None:
        time.sleep(delay)
    else:
        deadline = time.monotonic() + 30
        while proc.poll() is None and time.monotonic() < deadline:
            fresh = temp_files(config.parent) - before  # a listing takes ~20 us: the write takes ms
            if fresh:
                if after_temp:
                    time.sleep(after_temp)
                landed = "inside write_atomic" if fresh & temp_files(config.parent) else "after the rename"
                break
            time.sleep(0.0002)  # let the other campaigns' threads run
    if proc.poll() is not None:
        landed = "after exit"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return landed


def kill_campaign(verb: str, base: Path) -> dict[str, Any]:
    """Every kill of one verb, in its own folder; returns what happened (asserted by the caller)."""
    argv = VERBS[verb]
    home = base / "home"
    home.mkdir(parents=True)
    # What an uninterrupted run writes, and how long it takes.
    reference = base / "reference" / "NuGet.Config"
    reference.parent.mkdir()
    original = big_config(reference)
    started = time.monotonic()
    done = trust(argv, reference, home)
    duration = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    intended = reference.read_bytes()
    assert intended != original and abs(len(intended) - len(original)) < 2000

    folder = base / "victim"
    folder.mkdir()
    config = folder / "NuGet.Config"
    rng = random.Random(f"{verb}-6")
    delays = [duration * (i + rng.random()) / TIMED_KILLS for i in range(TIMED_KILLS)]
    plan: list[dict[str, float]] = [{"delay": d} for d in delays] + [{"after_temp": a} for a in WRITE_KILLS]
    landed: list[str] = []
    found: list[str] = []
    modes: set[int] = set()
    for step in plan:
        config.write_bytes(original)  # leftover temp files from earlier trials stay in the folder
        landed.append(kill_trial(argv, config, home, **step))  # type: ignore[arg-type]
        now = config.read_bytes()
        found.append("unchanged" if now == original else "complete" if now == intended else f"PARTIAL ({len(now)} bytes)")
        modes.add(config.stat().st_mode & 0o777)
    leftovers = temp_files(folder)
    # A later run among the leftovers writes exactly the intended file, reads none of them, reuses no name.
    config.write_bytes(original)
    again = trust(argv, config, home)
    shown = subprocess.run([sys.executable, "-m", "trustpolicy", "config", "show", "--directory", str(folder), "--format", "json"],
                           capture_output=True, text=True, env=env_for(home), timeout=60)
    return {"landed": landed, "found": found, "modes": modes, "mode": reference.stat().st_mode & 0o777,
            "leftovers": leftovers, "again": again, "after_again": config.read_bytes() == intended,
            "leftovers_after": temp_files(folder), "shown": shown, "config": config}


def test_sigkill_never_leaves_a_half_written_config(tmp_path: Path) -> None:
    with ThreadPoolExecutor(max_workers=len(VERBS)) as pool:  # the three verbs at once: kills land anywhere
        campaigns = dict(zip(VERBS, pool.map(lambda verb: kill_campaign(verb, tmp_path / verb), VERBS)))
    lines = []
    for verb, c in campaigns.items():
        assert all(f in ("unchanged", "complete") for f in c["found"]), (verb, list(zip(c["landed"], c["found"])))
        assert c["modes"] == {c["mode"]}
        inside = c["landed"].count("inside write_atomic")
        # Leftover temp files (there are some, see below) do nothing to a later run.
        assert c["again"].returncode == 0 and c["after_again"], c["again"].stderr
        assert c["leftovers_after"] == c["leftovers"]
        assert c["shown"].returncode == 0, c["shown"].stderr
        # the hierarchy seen from the folder: its NuGet.Config (the user file does not exist), no temp file
        assert [f["path"] for f in json.loads(c["shown"].stdout)["files"] if f["exists"]] == [str(c["config"])]
        lines.append(f"{verb}: {len(c['landed'])} kills ({inside} inside write_atomic, "
                     f"{c['landed'].count('after the rename')} just after the rename, {c['landed'].count('running')} at timed "
                     f"moments, {c['landed'].count('after exit')} after exit); config unchanged {c['found'].count('unchanged')}x, "
                     f"complete {c['found'].count('complete')}x, never partial; {len(c['leftovers'])} stray temp files, harmless")
    # Kills did land inside the write (the point of the exercise; typically 3-7 per verb), and
    # SIGKILL did leave temp files behind.
    assert sum(c["landed"].count("inside write_atomic") for c in campaigns.values()) >= 3
    assert any(c["leftovers"] for c in campaigns.values())
    print("\nSIGKILL " + "\nSIGKILL ".join(lines))


# --- 2. configs that cannot be written ---------------------------------------------------------------

_libc = ctypes.CDLL(None, use_errno=True)
_PR_CAPBSET_DROP = 24
_DAC_CAPS = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER


def _drop_dac_caps() -> None:
    """preexec_fn: as root, give up the capabilities that let root ignore permission bits."""
    if os.geteuid() == 0:
        for cap in _DAC_CAPS:
            if _libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _can_drop_caps() -> bool:
    if os.geteuid() != 0:
        return True
    try:
        return subprocess.run([sys.executable, "-c", "pass"], preexec_fn=_drop_dac_caps, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _chattr(path: Path, flag: str) -> bool:
    try:
        return subprocess.run(["chattr", flag, str(path)], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _fsize_limit() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG instead of killing
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))


def _small_config(path: Path) -> bytes:
    data = (DEMO / "NuGet.Config").read_bytes() + b"<!-- " + b"padding " * 1000 + b"-->\n"  # > 4096 bytes
    path.write_bytes(data)
    return data


# name -> (arrange(folder, config) -> preexec_fn or None, expected message, cleanup(folder, config))
Arrange = Callable[[Path, Path], Callable[[], None] | None]


def _read_only_file(folder: Path, config: Path) -> Callable[[], None]:
    config.chmod(0o444)
    return _drop_dac_caps


def _read_only_folder(folder: Path, config: Path) -> Callable[[], None]:
    folder.chmod(0o555)
    return _drop_dac_caps


def _immutable_file(folder: Path, config: Path) -> None:
    if not _chattr(config, "+i"):
        pytest.skip("chattr +i is not available here (no e2fsprogs, an unsupported file system or no CAP_LINUX_IMMUTABLE)")
    return None


def _immutable_folder(folder: Path, config: Path) -> None:
    if not _chattr(folder, "+i"):
        pytest.skip("chattr +i is not available here (no e2fsprogs, an unsupported file system or no CAP_LINUX_IMMUTABLE)")
    return None


def _file_size_limit(folder: Path, config: Path) -> Callable[[], None]:
    return _fsize_limit


CASES: dict[str, tuple[Arrange, str]] = {
    "read-only file": (_read_only_file, "the file is read-only"),
    "read-only folder": (_read_only_folder, "Permission denied"),
    "immutable file": (_immutable_file, "read-only"),
    "immutable folder": (_immutable_folder, "Operation not permitted"),
    "file size limit (disk full)": (_file_size_limit, "File too large"),
}


@pytest.mark.parametrize("verb", list(VERBS))
@pytest.mark.parametrize("case", list(CASES))
def test_unwritable_config_is_a_clear_error_and_no_change(case: str, verb: str, tmp_path: Path) -> None:
    arrange, message = CASES[case]
    if arrange in (_read_only_file, _read_only_folder) and not _can_drop_caps():
        pytest.skip("running as root without CAP_SETPCAP: root ignores permission bits, and they cannot be enforced")
    home = tmp_path / "home"
    home.mkdir()
    folder = tmp_path / "config"
    folder.mkdir()
    config = folder / "NuGet.Config"
    original = _small_config(config)
    try:
        preexec = arrange(folder, config)
        result = trust(VERBS[verb], config, home, preexec_fn=preexec)
    finally:
        _chattr(config, "-i")
        _chattr(folder, "-i")
        folder.chmod(0o755)
        config.chmod(0o644)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr == f"trustpolicy: error: {config}: cannot write: {result.stderr.split('cannot write: ')[-1]}"
    assert message in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert result.stdout == ""  # no "Added ..." claim for a change that did not happen
    assert config.read_bytes() == original
    assert sorted(p.name for p in folder.iterdir()) == ["NuGet.Config"]  # no temp file left behind


@pytest.mark.parametrize("verb", list(VERBS))
def test_config_path_that_is_not_a_file(verb: str, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    folder_as_config = tmp_path / "NuGet.Config"
    folder_as_config.mkdir()
    result = trust(VERBS[verb], folder_as_config, home)
    assert result.returncode == 2 and f"{folder_as_config}: is a directory" in result.stderr
    plain = tmp_path / "plain.txt"
    plain.write_text("not a folder")
    result = trust(VERBS[verb], plain / "NuGet.Config", home)
    assert result.returncode == 2 and str(plain / "NuGet.Config") in result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert plain.read_text() == "not a folder" and folder_as_config.is_dir() and not any(folder_as_config.iterdir())


# --- 3. concurrent checks sharing a cache, with a vandal -------------------------------------------

ROUNDS = 3
PARALLEL = 4


def summary(report: dict[str, Any]) -> list[tuple[Any, ...]]:
    """What must not change: each package's verdict, issue codes and levels, trusted signer."""
    rows = []
    for p in report["packages"]:
        issues = sorted((i["code"], i["level"]) for i in p["issues"])
        signer = (p.get("trustedSigner") or {}).get("name")
        rows.append((p["id"], p["version"], p["verdict"], tuple(issues), signer))
    return sorted(rows)


class Vandal(threading.Thread):
    """Keeps damaging cache entries while checks run: every way a file can be half there or wrong."""

    def __init__(self, folder: Path, seed: int) -> None:
        super().__init__(daemon=True)
        self.folder = folder
        self.rng = random.Random(seed)
        self.stop = threading.Event()
        self.damage: dict[str, int] = {}

    def run(self) -> None:
        while not self.stop.is_set():
            files = list(self.folder.glob("*.json")) if self.folder.exists() else []
            for policy_file in files:
                self.hit(policy_file)
            self.stop.wait(0.01)

    def hit(self, policy_file: Path) -> None:
        kind = self.rng.choice(["truncate", "garbage", "empty", "wrong-policy", "wrong-format", "not-an-entry",
                                "not-an-object", "delete"])
        try:
            data = policy_file.read_bytes()
            if kind == "truncate":
                policy_file.write_bytes(data[: self.rng.randrange(max(len(data), 1))])
            elif kind == "garbage":
                policy_file.write_bytes(self.rng.randbytes(self.rng.randrange(1, 4096)))
            elif kind == "empty":
                policy_file.write_bytes(b"")
            elif kind in ("wrong-policy", "wrong-format", "not-an-entry", "not-an-object"):
                stored = json.loads(data)
                if kind == "wrong-policy":
                    stored["policy"] = "0" * 64
                elif kind == "wrong-format":
                    stored["format"] = 999
                elif kind == "not-an-entry":
                    key = self.rng.choice(sorted(stored["entries"]))
                    stored["entries"][key] = ["not", "an", "entry"]
                else:
                    stored["entries"] = ["not", "an", "object"]
                policy_file.write_text(json.dumps(stored))
            else:
                policy_file.unlink()
        except (OSError, ValueError, LookupError, TypeError):
            return  # the file was replaced or already damaged meanwhile: fine
        self.damage[kind] = self.damage.get(kind, 0) + 1


def test_concurrent_checks_with_a_vandalised_cache_agree_with_no_cache(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    shutil.copytree(DEMO, demo)
    home = tmp_path / "home"
    home.mkdir()
    cache = tmp_path / "shared-cache"
    args = [sys.executable, "-m", "trustpolicy", "check", str(demo), "--revocation", "off", "--format", "json", "--jobs", "1"]

    def check(*extra: str) -> tuple[int, dict[str, Any], str]:
        proc = subprocess.run([*args, *extra], capture_output=True, text=True, env=env_for(home), timeout=120)
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc.returncode, json.loads(proc.stdout), proc.stderr

    code, baseline, _ = check("--no-cache")
    assert code == 1
    expected = summary(baseline)
    assert [row[2] for row in expected].count("valid") == 2 and len(expected) == 5  # the demo's two valid packages

    vandal = Vandal(cache / "verdicts", seed=6)
    vandal.start()
    runs = 0
    try:
        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            for _ in range(ROUNDS):
                for code, report, err in pool.map(lambda _: check("--cache-dir", str(cache)), range(PARALLEL)):
                    runs += 1
                    assert code == 1, err
                    assert summary(report) == expected
    finally:
        vandal.stop.set()
        vandal.join(5)
    # and once more, quietly, from whatever the vandal left
    code, report, _ = check("--cache-dir", str(cache))
    assert code == 1 and summary(report) == expected
    damaged = sum(vandal.damage.values())
    assert damaged >= 20, vandal.damage  # the vandal did get at the entries while the checks ran
    print(f"\ncache: {ROUNDS} rounds x {PARALLEL} concurrent checks = {runs} runs, all equal to --no-cache; "
          f"{damaged} cache entries damaged meanwhile {dict(sorted(vandal.damage.items()))}")
