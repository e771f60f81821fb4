"""`trustpolicy serve` set-up: the machine-wide NuGet.Config the README documents is accepted by
trustpolicy's own config reader and means what the README says; bad options are exit 2 with one line."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from serve_support import ServeWorld

from trustpolicy.cli import main
from trustpolicy.context import TrustOptions
from trustpolicy.serve.app import ServeOptions, feed_specs
from trustpolicy.serve.gate import build_judge

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_block(title: str) -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"<!-- {re.escape(title)};[^>]*-->\n```xml\n(.*?)```", text, re.S)
    assert match, f"README has no block {title!r}"
    return match.group(1)


def config_show(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], user: Path, machine: Path,
                project: Path) -> dict:
    monkeypatch.setenv("TRUSTPOLICY_NUGET_USER_DIR", str(user))
    monkeypatch.setenv("TRUSTPOLICY_NUGET_MACHINE_DIR", str(machine))
    assert main(["config", "show", "--directory", str(project), "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("variant", ["https", "http"])
def test_machine_wide_config_from_the_readme(variant: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    machine, user, project = tmp_path / "machine", tmp_path / "user", tmp_path / "project"
    for folder in (machine, user, project):
        folder.mkdir()
    (machine / "trustpolicy-gate.config").write_text(readme_block(f"machine-wide NuGet.Config ({variant})"), encoding="utf-8")
    gate = "https://nuget-gate.corp.example:5555" if variant == "https" else "http://127.0.0.1:5555"

    # With no user file NuGet makes one holding nuget.org, which comes first: the README's warning.
    shown = config_show(monkeypatch, capsys, user, machine, project)
    sources = {s["name"]: s["url"] for s in shown["packageSources"]}
    assert sources["nuget.org"] == "https://api.nuget.org/v3/index.json"

    # With the provisioned (empty) user file, the machine-wide file alone decides: only the gate.
    (user / "NuGet.Config").write_text("<configuration />\n", encoding="utf-8")
    shown = config_show(monkeypatch, capsys, user, machine, project)
    sources = {s["name"]: s["url"] for s in shown["packageSources"]}
    assert all(url.startswith(f"{gate}/feeds/{name}/v3/index.json") for name, url in sources.items())
    assert "nuget.org" in sources and (variant == "http" or "contoso-internal" in sources)
    assert {f["scope"] for f in shown["files"] if f["exists"]} == {"user", "machine"}

    # The gate serves the same names, so packageSourceMapping keeps working: feed names are the keys.
    trust = TrustOptions(configfile=str(machine / "trustpolicy-gate.config"), cache_dir=str(tmp_path / "cache"))
    specs = feed_specs(ServeOptions(trust=trust, cache_dir=tmp_path / "cache"), build_judge(trust))
    assert [s.name for s in specs] == list(sources)


def test_bad_options_are_exit_2_with_one_line(serve_world: ServeWorld, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    config, roots = str(serve_world.config), str(serve_world.roots)
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    empty = tmp_path / "empty.config"
    empty.write_text("<configuration><packageSources><clear /></packageSources></configuration>\n")
    base = ["--configfile", config, "--trust-store", roots, "--cache-dir", str(tmp_path / "cache")]
    for args, words in (
        (["--listen", "nowhere"], "--listen must be HOST:PORT"),
        (["--listen", "127.0.0.1:99999"], "--listen must be HOST:PORT"),
        (["--upstream", "no-equals-sign"], "--upstream must be NAME=URL"),
        (["--upstream", "a/b=http://127.0.0.1:1/v3/index.json"], "not a usable feed name"),
        (["--upstream", "x=http://127.0.0.1:1/i.json", "--upstream", "x=http://127.0.0.1:2/i.json"], "given twice"),
        (["--at", "2026-01-01T00:00:00Z", "--upstream", "x=/tmp"], "--at does not apply"),
        (["--tls-cert", roots, "--upstream", "x=/tmp"], "--tls-cert and --tls-key go together"),
        (["--tls-cert", str(garbage), "--tls-key", str(garbage), "--upstream", "x=/tmp"], "cannot use the TLS certificate"),
        (["--max-package-size", "0", "--upstream", "x=/tmp"], "--max-package-size must be more than 0"),
        (["--public-url", "ftp://gate", "--upstream", "x=/tmp"], "--public-url must be"),
        (["--workers", "0", "--upstream", "x=/tmp"], "--workers must be at least 1"),
        (["--configfile", str(tmp_path / "missing.config")], "file does not exist"),
        (["--trust-store", str(garbage), "--upstream", "x=/tmp"], "garbage.pem"),
        (["--configfile", str(empty)], "no package sources to serve"),
    ):
        assert main(["serve", *base, *args]) == 2, args
        err = capsys.readouterr().err
        assert words in err and len(err.strip().splitlines()) == 1, (args, err)


def test_a_taken_port_is_exit_2(serve_world: ServeWorld, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TRUSTPOLICY_NUGET_USER_DIR": "", "TRUSTPOLICY_NUGET_MACHINE_DIR": ""}
        result = subprocess.run([sys.executable, "-m", "trustpolicy", "serve", "--listen", f"127.0.0.1:{port}",
                                 "--configfile", str(serve_world.config), "--trust-store", str(serve_world.roots),
                                 "--cache-dir", str(tmp_path / "cache"), "--upstream", f"x={tmp_path}", "--workers", "1"],
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "Traceback" not in result.stderr, result.stderr
