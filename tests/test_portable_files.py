"""trustpolicy/fileutil.py: the file operations every platform shares (issue 11 part 5, issue 12 part 6).

Nothing here runs Windows, so the Windows branches are exercised on Linux where they can be, with real
files: the open path without O_NONBLOCK (Windows has none) must still refuse a real FIFO before opening
it; the replace retry must ride out a real PermissionError from a folder that refuses renames for a
moment. mypy checks the rest for win32 and darwin (.ci/typecheck).
"""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from trustpolicy._internal import fileutil
from trustpolicy._internal.fileutil import NotRegularFile, not_regular, open_regular, replace_file, write_atomic
from trustpolicy.errors import TrustPolicyError


def run_with_deadline(fn, seconds: float = 10.0):  # type: ignore[no-untyped-def]
    """fn() in a thread; fails the test instead of hanging it when fn blocks (a FIFO open would)."""
    outcome: dict = {}

    def target() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"blocked for more than {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


@pytest.fixture
def specials(tmp_path: Path) -> Iterator[dict[str, Path]]:
    """Real special files: a FIFO, a socket, a folder, a character device, links to them, a link loop."""
    fifo = tmp_path / "fifo.nupkg"
    os.mkfifo(fifo)
    sock_path = tmp_path / "sock.nupkg"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    folder = tmp_path / "folder.nupkg"
    folder.mkdir()
    device_link = tmp_path / "device.nupkg"
    device_link.symlink_to("/dev/zero")  # reading it would never end
    fifo_link = tmp_path / "fifo-link.nupkg"
    fifo_link.symlink_to(fifo)
    loop = tmp_path / "loop.nupkg"
    loop.symlink_to(loop)
    try:
        yield {"fifo": fifo, "socket": sock_path, "folder": folder, "device": device_link, "fifo link": fifo_link,
               "loop": loop}
    finally:
        sock.close()


def test_not_regular_names_every_kind(specials: dict[str, Path], tmp_path: Path) -> None:
    """The decision made from a stat result alone (the only check Windows gets before its open)."""
    regular = tmp_path / "plain"
    regular.write_bytes(b"x")
    assert not_regular(os.stat(regular).st_mode) is None
    assert not_regular(os.stat(specials["fifo"]).st_mode) == "a FIFO (named pipe)"
    assert not_regular(os.stat(specials["socket"]).st_mode) == "a socket"
    assert not_regular(os.stat(specials["folder"]).st_mode) == "a directory"
    assert not_regular(os.stat("/dev/null").st_mode) == "a character device"
    assert not_regular(stat.S_IFBLK | 0o600) == "a block device"


@pytest.mark.parametrize("kind", ["fifo", "socket", "folder", "device", "fifo link"])
def test_open_regular_refuses_special_files_without_blocking(specials: dict[str, Path], kind: str) -> None:
    with pytest.raises(NotRegularFile) as refused:
        run_with_deadline(lambda: open_regular(specials[kind]))
    assert str(specials[kind]) in str(refused.value) and "not a regular file" in refused.value.strerror
    assert isinstance(refused.value, OSError)  # every caller's `except OSError` already handles it


def test_open_regular_reports_a_link_loop(specials: dict[str, Path]) -> None:
    with pytest.raises(OSError) as failed:
        run_with_deadline(lambda: open_regular(specials["loop"]))
    assert "symbolic links" in str(failed.value)


def test_open_regular_reads_files_and_links_to_them(tmp_path: Path) -> None:
    data = bytes(range(256)) * 64 + b"\r\n\n"
    (tmp_path / "a.bin").write_bytes(data)
    (tmp_path / "link.bin").symlink_to("a.bin")
    for name in ("a.bin", "link.bin"):
        with open_regular(tmp_path / name) as handle:
            assert handle.read() == data  # binary: no newline translation


def test_the_windows_open_path_refuses_a_fifo_before_opening_it(specials: dict[str, Path], tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Windows has no O_NONBLOCK: there the stat before the open is what keeps a FIFO (a named pipe, a
    device) out. With the flags Windows uses, opening the FIFO itself would block: the refusal must
    come first."""
    monkeypatch.setattr(fileutil, "_READ_FLAGS", os.O_RDONLY)
    with pytest.raises(NotRegularFile):
        run_with_deadline(lambda: open_regular(specials["fifo"]))
    (tmp_path / "ok").write_bytes(b"fine")
    with open_regular(tmp_path / "ok") as handle:
        assert handle.read() == b"fine"


@contextmanager
def renames_refused(folder: Path) -> Iterator[None]:
    """Make renames into `folder` fail with a real PermissionError until the block exits (root ignores
    permission bits, so as root the folder is made immutable instead)."""
    if os.geteuid() == 0:
        done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, timeout=30)
        if done.returncode:
            pytest.skip("as root, a rename can only be refused with chattr +i, which is not available here")
        undo = ["chattr", "-i", str(folder)]
    else:
        folder.chmod(0o555)
        undo = ["chmod", "755", str(folder)]
    try:
        yield
    finally:
        subprocess.run(undo, capture_output=True, timeout=30)


def _lift_after(folder: Path, seconds: float) -> threading.Thread:
    def lift() -> None:
        time.sleep(seconds)
        undo = ["chattr", "-i", str(folder)] if os.geteuid() == 0 else ["chmod", "755", str(folder)]
        subprocess.run(undo, capture_output=True, timeout=30)

    thread = threading.Thread(target=lift)
    thread.start()
    return thread


def test_replace_file_retries_while_the_target_cannot_be_replaced(tmp_path: Path) -> None:
    """Windows refuses to replace a file another process holds open, with PermissionError, until it is
    closed. The same error, real, from a folder that refuses renames for 0.3 s: the write waits it out."""
    folder = tmp_path / "held"
    folder.mkdir()
    dest = folder / "NuGet.Config"
    dest.write_text("old")
    tmp = tmp_path / "new.tmp"  # outside the folder: created before the folder starts refusing
    tmp.write_text("new")
    with renames_refused(folder):
        with pytest.raises(PermissionError):
            os.replace(tmp, dest)  # the refusal is real
        lifter = _lift_after(folder, 0.3)
        start = time.monotonic()
        replace_file(tmp, dest, wait=10.0)  # generous: the lifting thread may be slow on a busy machine
        waited = time.monotonic() - start
        lifter.join()
    assert dest.read_text() == "new" and not tmp.exists()
    assert waited > 0.25  # it did wait for the refusal to end


def test_replace_file_gives_up_with_a_clear_error(tmp_path: Path) -> None:
    folder = tmp_path / "held"
    folder.mkdir()
    dest = folder / "NuGet.Config"
    dest.write_text("old")
    tmp = tmp_path / "new.tmp"
    tmp.write_text("new")
    with renames_refused(folder):
        start = time.monotonic()
        with pytest.raises(TrustPolicyError) as refused:
            replace_file(tmp, dest, wait=0.3)
        waited = time.monotonic() - start
    assert refused.value.path == str(dest) and refused.value.message.startswith("cannot write: ")
    assert "another program may have it open" in refused.value.message
    assert 0.3 <= waited < 2.0
    assert dest.read_text() == "old" and tmp.read_text() == "new"  # nothing lost; the caller removes tmp


def test_replace_file_does_not_retry_other_errors(tmp_path: Path) -> None:
    start = time.monotonic()
    with pytest.raises(FileNotFoundError):
        replace_file(tmp_path / "absent.tmp", tmp_path / "dest")
    assert time.monotonic() - start < 0.1


def test_write_atomic_through_a_symbolic_link_keeps_the_link(tmp_path: Path) -> None:
    """issue 12 part 6: editing a NuGet.Config that is a link must change the file it points to."""
    real = tmp_path / "dotfiles" / "NuGet.Config"
    real.parent.mkdir()
    real.write_text("old")
    real.chmod(0o640)
    link = tmp_path / "NuGet.Config"
    link.symlink_to(real)
    write_atomic(link, "new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new" and stat.S_IMODE(real.stat().st_mode) == 0o640
    assert sorted(p.name for p in real.parent.iterdir()) == ["NuGet.Config"]  # the temp file sat beside the target
    dangling = tmp_path / "later.config"
    dangling.symlink_to(tmp_path / "dotfiles" / "later.config")
    write_atomic(dangling, "created")  # a link to a file not there yet: created where it points
    assert dangling.is_symlink() and (tmp_path / "dotfiles" / "later.config").read_text() == "created"


def test_write_atomic_refuses_special_files(specials: dict[str, Path]) -> None:
    for kind in ("fifo", "folder", "device"):
        with pytest.raises(TrustPolicyError) as refused:
            run_with_deadline(lambda kind=kind: write_atomic(specials[kind], "report"))
        assert refused.value.path == str(specials[kind]) and "not a regular file" in refused.value.message
    assert stat.S_ISFIFO(os.stat(specials["fifo"]).st_mode) and os.readlink(specials["device"]) == "/dev/zero"
    with pytest.raises(TrustPolicyError) as looped:
        write_atomic(specials["loop"], "report")
    assert "symbolic links" in looped.value.message


def test_no_module_uses_a_posix_only_constant_unguarded() -> None:
    """The calls that made every run fail on Windows (os.O_NONBLOCK) live in fileutil only, behind its
    platform test; mypy --platform win32 checks the rest (.ci/typecheck)."""
    root = Path(__file__).resolve().parents[1] / "trustpolicy"
    offenders = [str(p.relative_to(root)) for p in root.rglob("*.py")
                 if p.name != "fileutil.py" and any(name in p.read_text() for name in ("O_NONBLOCK", "O_NOCTTY", "mkfifo"))]
    assert offenders == []
