"""The wheel stands on its own (issue 11): built with `pip wheel --no-deps .` and installed, not editable,
into a fresh virtual environment, it carries the schemas, the .NET SDK root bundles, the data files and
py.typed, and its `trustpolicy` command judges a real package with them, away from the source tree.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from datafiles import CERTS, SIGNED

ROOT = Path(__file__).resolve().parents[1]
VERSIONING = SIGNED / "nuget.versioning.5.0.0.nupkg"  # author + nuget.org countersignature (tests/data/README.md)
SHIPPED = ("trustpolicy/py.typed", "trustpolicy/schemas/report.schema.json", "trustpolicy/schemas/nuget-config.xsd",
           "trustpolicy/data/codesignctl.pem", "trustpolicy/data/timestampctl.pem",
           "trustpolicy/data/nuget-org-repository-certificates.json")

pytestmark = pytest.mark.slow


def run(argv: list[object], cwd: Path, env: dict[str, str] | None = None, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def checked(argv: list[object], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = run(argv, cwd, env)
    assert result.returncode == 0, f"{argv}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel_and_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    base = tmp_path_factory.mktemp("packaging")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    checked([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", base / "dist", ROOT], base, env)
    (wheel,) = (base / "dist").glob("trustpolicy-*.whl")
    venv = base / "venv"
    checked([sys.executable, "-m", "venv", venv], base, env)
    checked([venv / "bin" / "python", "-m", "pip", "install", "-q", wheel], base, env)
    return wheel, venv


@pytest.fixture
def user_env(tmp_path: Path) -> dict[str, str]:
    """No user or machine NuGet.Config, no user cache, nothing importable from the source tree."""
    home = tmp_path / "home"
    home.mkdir()
    keep = ("PATH", "LANG", "LC_ALL", "SYSTEMROOT", "TMPDIR")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, "HOME": str(home),
            "XDG_CACHE_HOME": str(home / ".cache"), "TRUSTPOLICY_NUGET_USER_DIR": str(home / "user"),
            "TRUSTPOLICY_NUGET_MACHINE_DIR": str(home / "machine")}


def test_wheel_carries_the_runtime_files(wheel_and_venv: tuple[Path, Path]) -> None:
    wheel, _ = wheel_and_venv
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        for name in SHIPPED:
            assert name in names, f"{name} missing from {wheel.name}"
        for name in SHIPPED[1:]:  # the same bytes as in the repository (py.typed is empty)
            source = ROOT / name.replace("trustpolicy/schemas/", "schemas/")
            assert archive.read(name) == source.read_bytes(), name
    assert not any(n.startswith(("tests/", "fixtures/", "bench/")) for n in names)


def test_installed_trustpolicy_is_not_the_source_tree(wheel_and_venv: tuple[Path, Path], tmp_path: Path, user_env: dict[str, str]) -> None:
    _, venv = wheel_and_venv
    code = ("import json, trustpolicy, trustpolicy._internal.resources as r; "
            "print(json.dumps([trustpolicy.__file__, str(r.schema_path('report.schema.json')), "
            "str(r.schema_path('nuget-config.xsd')), str(r.DATA_DIR)]))")
    module, report_schema, config_schema, data = json.loads(checked([venv / "bin" / "python", "-c", code], tmp_path, user_env).stdout)
    site = venv.resolve()
    for path in (module, report_schema, config_schema, data):
        assert Path(path).resolve().is_relative_to(site), f"{path} is not inside the installed venv {site}"
    assert json.loads(Path(report_schema).read_text())["$schema"].startswith("https://json-schema.org/")
    (venv_typed,) = site.glob("lib/python*/site-packages/trustpolicy/py.typed")
    assert venv_typed.is_file()


def test_installed_verify_judges_a_real_package_with_the_bundled_roots(wheel_and_venv: tuple[Path, Path], tmp_path: Path,
                                                                       user_env: dict[str, str]) -> None:
    _, venv = wheel_and_venv
    exe = venv / "bin" / "trustpolicy"
    text = run([exe, "verify", VERSIONING, "--revocation", "off"], tmp_path, user_env)
    assert text.returncode == 0, text.stdout + text.stderr
    assert text.stdout.startswith(f"VALID    {VERSIONING}") and "1 package: 1 valid, 0 invalid" in text.stdout
    report = run([exe, "verify", VERSIONING, "--revocation", "off", "--format", "json"], tmp_path, user_env)
    assert report.returncode == 0, report.stderr
    (package,) = json.loads(report.stdout)["packages"]
    assert (package["id"], package["verdict"]) == ("NuGet.Versioning", "valid")
    assert [s["kind"] for s in package["signatures"]][:1] == ["author"]


def test_installed_verify_with_another_trust_store_rejects_it(wheel_and_venv: tuple[Path, Path], tmp_path: Path,
                                                              user_env: dict[str, str]) -> None:
    """The same package against a store holding only NuGet's test root: untrusted, exit code 1."""
    _, venv = wheel_and_venv
    der = (CERTS / "root.crt").read_bytes()
    body = base64.encodebytes(der).decode("ascii")
    store = tmp_path / "test-root.pem"
    store.write_text(f"-----BEGIN CERTIFICATE-----\n{body}-----END CERTIFICATE-----\n", encoding="ascii")
    result = run([venv / "bin" / "trustpolicy", "verify", VERSIONING, "--trust-store", store, "--revocation", "off"],
                 tmp_path, user_env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith(f"INVALID  {VERSIONING}") and "NU3018" in result.stdout


def test_installed_config_reading_uses_the_shipped_schema(wheel_and_venv: tuple[Path, Path], tmp_path: Path,
                                                          user_env: dict[str, str]) -> None:
    """Every NuGet.Config read is validated against the XSD the wheel carries; a broken one is refused by name (exit 2)."""
    _, venv = wheel_and_venv
    good = tmp_path / "good.config"
    good.write_text('<?xml version="1.0" encoding="utf-8"?>\n<configuration><config>'
                    '<add key="signatureValidationMode" value="require" /></config></configuration>\n', encoding="utf-8")
    shown = run([venv / "bin" / "trustpolicy", "config", "show", "--configfile", good, "--format", "json"], tmp_path, user_env)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert json.loads(shown.stdout)["signatureValidationMode"]["value"] == "require"
    bad = tmp_path / "bad.config"
    bad.write_text('<?xml version="1.0" encoding="utf-8"?>\n<configuration><trustedSigners>'
                   '<author name="a"><certificate fingerprint="AB" hashAlgorithm="SHA256" /></author>'
                   '</trustedSigners></configuration>\n', encoding="utf-8")
    refused = run([venv / "bin" / "trustpolicy", "config", "show", "--configfile", bad], tmp_path, user_env)
    assert refused.returncode == 2 and str(bad) in refused.stderr and "Traceback" not in refused.stderr
