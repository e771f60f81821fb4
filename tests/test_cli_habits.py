"""Command-line habits: Ctrl-C at any moment, verbosity, usage errors, unusable `verify` inputs, the
table in a CI log. Ctrl-C is tested on a real `trustpolicy check` process, by signal."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import identity_of, make_package
from test_verify_support import world  # noqa: F401 - fixture

from trustpolicy._internal.archive import PackageArchive, insert_signature
from trustpolicy._internal.sign import sign_package
from trustpolicy.cli import main
from trustpolicy.testing.pki import TestPKI

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "fixtures" / "demo"
PROGRAM = str(Path(sys.executable).with_name("trustpolicy"))


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTPOLICY_NUGET_USER_DIR", str(tmp_path / "user-nuget"))
    monkeypatch.setenv("TRUSTPOLICY_NUGET_MACHINE_DIR", "")


# --- Ctrl-C -------------------------------------------------------------------------------------------

PACKAGES, PAYLOAD = 1200, 20_000  # a cold check of these takes a few seconds on two cores


@pytest.fixture(scope="module")
def big_graph(tmp_path_factory: pytest.TempPathFactory, pki: TestPKI) -> Path:
    """A folder of packages, each in its own subfolder, all carrying one real signature (made for
    another package: each fails integrity, after the same work as any other). Big enough to interrupt
    at leisure; written without fsync, since only the speed of writing them changes."""
    folder = tmp_path_factory.mktemp("big-graph")
    model = sign_package(make_package(folder.parent / "model.nupkg"), identity=identity_of(pki.leaf),
                         on_warning=lambda warning: None)
    signature = PackageArchive.open(model).read_signature()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "fsync", lambda fd: None)
        for index in range(PACKAGES):
            package_id = f"Big.Package{index:04d}"
            bare = make_package(folder / package_id / "bare.zip", package_id, "1.0.0",
                                {"lib/net8.0/Payload.dll": os.urandom(PAYLOAD)})
            insert_signature(bare, signature, folder / package_id / f"{package_id}.1.0.0.nupkg")
            bare.unlink()
    return folder


def _children(pid: int) -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry))
    return found


def _wait_for(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the moment to interrupt never came"
        time.sleep(0.005)


def _busy(pid: int, seconds: float) -> bool:
    """Every worker of `pid` has used `seconds` of CPU."""
    workers = _children(pid)
    tick = os.sysconf("SC_CLK_TCK")
    used = []
    for worker in workers:
        try:
            fields = Path(f"/proc/{worker}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return False
        used.append((int(fields[11]) + int(fields[12])) / tick)
    return bool(used) and min(used) >= seconds


def _loaded(pid: int, fragment: str) -> bool:
    try:
        return fragment in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


MOMENTS = {
    # main() runs and imports what `check` needs (lxml, for the config); the graph is not read yet
    "loading": lambda p: _wait_for(lambda: _loaded(p.pid, "etree.cpython")),
    # the first worker processes exist, they are still starting (imports, roots)
    "workers-start": lambda p: _wait_for(lambda: bool(_children(p.pid))),
    # workers are verifying: each has spent ~0.3 s of CPU (of ~0.7 s), a measure of progress that a
    # loaded machine does not skew the way a wall-clock delay would
    "mid-verification": lambda p: _wait_for(lambda: _busy(p.pid, 0.3)),
    # the JSON report is being written to a pipe nobody reads yet: the write blocks
    "output": lambda p: (_wait_for(lambda: bool(select.select([p.stdout], [], [], 0)[0])), time.sleep(0.3)),
}


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs /proc to watch the process")
@pytest.mark.parametrize("group", [False, True], ids=["parent", "process-group"])
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_ctrl_c_prints_one_line_and_exits_130(big_graph: Path, tmp_path: Path, moment: str, group: bool) -> None:
    """SIGINT to the parent (kill -INT) or to the whole process group (a terminal's Ctrl-C, which the
    workers receive too): one line on stderr, exit 130, no traceback, no worker left behind."""
    process = subprocess.Popen(
        [PROGRAM, "check", str(big_graph), "--mode", "accept", "--revocation", "off", "--no-cache", "--jobs", "2",
         "--format", "json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, cwd=tmp_path)
    workers: set[int] = set()
    try:
        MOMENTS[moment](process)
        workers = _children(process.pid)
        assert process.poll() is None, "the check ended before it could be interrupted: make the graph bigger"
        if group:
            os.killpg(process.pid, signal.SIGINT)
        else:
            process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert err.decode() == "trustpolicy: interrupted\n", err.decode()
    assert process.returncode == 130
    if moment != "output":
        assert out == b""
    time.sleep(0.2)
    assert not [w for w in workers if Path(f"/proc/{w}").exists() and "Z" not in _state(w)], "workers survived"


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_ctrl_c_in_process_returns_130(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from trustpolicy.cli import check_cmd

    def interrupted(args: object) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(check_cmd, "run", interrupted)
    assert main(["check", str(DEMO)]) == 130
    assert capsys.readouterr().err == "trustpolicy: interrupted\n"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # the test process keeps its Ctrl-C


# --- verbosity ---------------------------------------------------------------------------------------------


def _check(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> tuple[int, str, str]:
    code = main(["check", str(DEMO), "--revocation", "off", "--cache-dir", str(tmp_path / "cache"), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_check_verbosity_levels(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    levels = {}
    for flag in (["-q"], ["-v", "minimal"], [], ["-v", "detailed"], ["--verbosity", "diagnostic"]):
        code, out, err = _check(capsys, tmp_path, *flag)
        assert code == 1 and "Traceback" not in err  # verbosity never changes the verdict
        levels[" ".join(flag) or "normal"] = out
    quiet, minimal, normal, detailed, diagnostic = levels.values()
    assert quiet.splitlines() == [line for line in quiet.splitlines() if line.startswith("x ")]
    assert len(quiet.splitlines()) == 3 and "Northwind.Utils 1.4.2" in quiet and "fix:" not in quiet
    assert "policy violated" in minimal and "fix: suggestion 1 below" in minimal and "┃" not in minimal
    assert "┃ Package" in normal and "trustpolicy 0.1.0" in normal and "error NU3034" not in normal
    assert "error NU3034 (primary): This package is signed but not by a trusted signer." in detailed
    assert "Contoso.Logging 2.1.0 (valid)" not in detailed
    assert "Contoso.Logging 2.1.0 (valid)" in diagnostic and "setting revocationMode: off" in diagnostic
    assert "CN=Demo Root CA is not trusted for code signing" in diagnostic  # an issue's detail
    assert len(quiet) < len(minimal) < len(normal) < len(detailed) < len(diagnostic)


def test_verbosity_before_the_command_and_json_unchanged(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["-q", "check", str(DEMO), "--revocation", "off", "--no-cache"]) == 1
    assert len(capsys.readouterr().out.splitlines()) == 3
    code, normal, _ = _check(capsys, tmp_path, "--format", "json")
    code, quiet, _ = _check(capsys, tmp_path, "--format", "json", "-q")
    strip = lambda text: {k: v for k, v in json.loads(text).items() if k != "generatedAt"}  # noqa: E731
    assert strip(normal) == strip(quiet)


def test_bad_verbosity_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["check", "-v", "loud"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "usage: trustpolicy check" in err and "'loud' is not one of quiet" in err


def test_quiet_trust_and_lint_print_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "NuGet.Config"
    package = make_package(tmp_path / "P.1.0.0.nupkg")
    assert main(["lint", "--configfile", str(DEMO / "NuGet.Config"), "-q"]) in (0, 1)
    assert capsys.readouterr().out == ""
    assert main(["trust", "list", "--configfile", str(DEMO / "NuGet.Config"), "-q"]) == 0
    assert capsys.readouterr().out == ""
    assert main(["trust", "list", "--configfile", str(DEMO / "NuGet.Config")]) == 0
    assert "Contoso Ltd" in capsys.readouterr().out
    # errors still reach stderr
    assert main(["trust", "author", "x", str(package), "--configfile", str(config), "-q"]) == 2
    assert "not signed" in capsys.readouterr().err


def test_sign_verbosity(capsys: pytest.CaptureFixture[str], tmp_path: Path, pki: TestPKI) -> None:
    cert, key = pki.leaf.write_pem(tmp_path)
    package = make_package(tmp_path / "S.1.0.0.nupkg", "S")
    base = ["sign", str(package), "--certificate-path", str(cert), "--key", str(key), "--overwrite"]
    assert main([*base, "-q"]) == 0
    out, err = capsys.readouterr()
    assert out == "" and err == ""  # no "signed" line, no NU3002 warning
    assert main(base) == 0
    out, err = capsys.readouterr()
    assert out.startswith("signed ") and "NU3002" in err
    assert main([*base, "-v", "detailed"]) == 0
    out, _ = capsys.readouterr()
    assert "signer: " in out and "Test Code Signing" in out and "timestamper none" in out


# --- usage ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("argv, usage", [
    (["check", "--bogus"], "usage: trustpolicy check"),
    (["verify", "x.nupkg", "--nope"], "usage: trustpolicy verify"),
    (["trust", "list", "--nope"], "usage: trustpolicy trust list"),
    (["trust", "author", "n", "p.nupkg", "--nope"], "usage: trustpolicy trust author"),
    (["config", "show", "--nope"], "usage: trustpolicy config show"),
    (["init", "--nope"], "usage: trustpolicy init"),
    (["--nope", "check"], "usage: trustpolicy [-h]"),
])
def test_unknown_option_prints_the_usage_of_its_command(capsys: pytest.CaptureFixture[str], argv: list[str],
                                                        usage: str) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(usage) and "unrecognized arguments: --nope" in err.replace("--bogus", "--nope")


# --- verify: inputs that are no file -----------------------------------------------------------------------


def test_verify_missing_folder_and_unmatched_wildcard_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    good = DEMO / "packages" / "legacy.unsigned" / "1.0.0" / "legacy.unsigned.1.0.0.nupkg"
    for bad, says in ((tmp_path / "missing.nupkg", "no such file"), (tmp_path, "is a folder"),
                      (tmp_path / "none-*.nupkg", "no file matches")):
        code = main(["verify", str(good), str(bad), "--revocation", "off", "--format", "json"])
        out, err = capsys.readouterr()
        assert code == 2 and f"trustpolicy: error: {bad}: {says}" in err and "Traceback" not in err
        assert [p["path"] for p in json.loads(out)["packages"]] == [str(good)]  # the others are still judged
    truncated = tmp_path / "truncated.nupkg"
    truncated.write_bytes(good.read_bytes()[:100])
    assert main(["verify", str(truncated), "--revocation", "off"]) == 1  # a file that is not a package: invalid
    capsys.readouterr()


# --- the table in a CI log ---------------------------------------------------------------------------------


def test_table_never_breaks_an_id_off_a_terminal(tmp_path: Path) -> None:
    folder = tmp_path / "graph"
    long_id = "Contoso.Extensions.DependencyInjection.Abstractions.Internal.Generated"
    make_package(folder / f"{long_id}.1.0.0.nupkg", long_id, "1.0.0-preview.20260101.1")
    make_package(folder / "Short.1.0.0.nupkg", "Short", "1.0.0")
    config = tmp_path / "NuGet.Config"
    config.write_text('<configuration><config><add key="signatureValidationMode" value="require" /></config>'
                      "</configuration>")
    done = subprocess.run([PROGRAM, "check", str(folder), "--configfile", str(config), "--revocation", "off",
                           "--no-cache"], capture_output=True, text=True, env={**os.environ, "COLUMNS": "60"},
                          timeout=120)
    assert done.returncode == 1, done.stderr
    rows = [line for line in done.stdout.splitlines() if "│" in line]
    assert any(long_id in row and "1.0.0-preview.20260101.1" in row for row in rows), done.stdout
    assert len(rows) == 2  # one line per package: nothing wrapped


def test_missing_packages_are_reported_once(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import shutil

    demo = tmp_path / "demo"
    shutil.copytree(DEMO, demo)
    for folder in ("contoso.logging", "northwind.utils", "legacy.unsigned"):
        shutil.rmtree(demo / "packages" / folder)
    code = main(["check", str(demo), "--revocation", "off", "--no-cache", "--packages-dir", str(tmp_path / "extra")])
    out = capsys.readouterr().out
    assert code == 1
    assert "x 3 packages were not found: Contoso.Logging 2.1.0, Northwind.Utils 1.4.2, Legacy.Unsigned 1.0.0" in out
    assert out.count("searched:") == 1 and f"{tmp_path / 'extra'} (--packages-dir)" in out
    assert f"{demo / 'packages'} (NuGet.Config globalPackagesFolder)" in out
    assert out.count("--packages-dir DIR") == 1 and "x Contoso.Logging" not in out
    main(["check", str(demo), "--revocation", "off", "--no-cache", "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    assert {"path": str(demo / "packages"), "source": "NuGet.Config globalPackagesFolder"} in document["searchedFolders"]


# --- one-line chain and revocation messages ----------------------------------------------------------------

CHAIN_CODES = {"NU3012", "NU3018", "NU3028", "NU3042"}


def test_chain_and_revocation_messages_are_one_line_with_the_details_apart(world) -> None:  # type: ignore[no-untyped-def]
    """Revoked, unreachable, unknown and untrusted chains, for signers and timestamp authorities: each
    message is one line under 200 characters; the chain's own long answer is the issue's detail."""
    from test_verify_support import TimestampServer

    from trustpolicy._internal.verify import REQUIRE, VERIFY

    with TimestampServer(world.revoked_tsa) as revoked_tsa, TimestampServer(world.other.tsa) as untrusted_tsa:
        packages = [world.sign(world.revoked, stem="m-revoked"), world.sign(world.unreachable, stem="m-unreachable"),
                    world.sign(world.other.leaf, stem="m-untrusted"),
                    world.sign(world.revocable, timestamp=revoked_tsa, stem="m-revoked-tsa"),
                    world.sign(timestamp=untrusted_tsa, stem="m-untrusted-tsa")]
    seen: dict[str, int] = {}
    for chains in (world.online, world.offline):
        for settings in (REQUIRE, VERIFY):
            for package in packages:
                for issue in world.verifier(settings, chains=chains).verify_package(package).issues:
                    if issue.code not in CHAIN_CODES:
                        continue
                    seen[issue.code] = seen.get(issue.code, 0) + 1
                    assert len(issue.message) < 200 and "\n" not in issue.message, issue.message
                    assert issue.detail, issue
                    assert issue.detail not in issue.message
    assert set(seen) == CHAIN_CODES  # every kind was produced at least once


def test_detail_reaches_the_json_and_diagnostic_output(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["check", str(DEMO), "--revocation", "offline", "--no-cache", "--format", "json"])
    document = json.loads(capsys.readouterr().out)
    from trustpolicy._internal.report import report_problems

    assert code == 1 and report_problems(document) == []
    chain_issues = [i for p in document["packages"] for i in p["issues"] if i["code"] in CHAIN_CODES]
    assert chain_issues and all(len(i["message"]) < 200 and i.get("detail") for i in chain_issues)
    assert any("Demo Root CA" in i["detail"] and "is not trusted for code signing" in i["detail"] for i in chain_issues)
