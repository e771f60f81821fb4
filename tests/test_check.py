"""`trustpolicy check` end to end on real restored graphs: the committed demo and corpus packages."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from datafiles import SIGNED, UNSIGNED

from trustpolicy._internal.report import check_document, report_problems
from trustpolicy.check import CheckOptions, check_graph, config_directory
from trustpolicy.cli import main
from trustpolicy.context import TrustContext, TrustOptions
from trustpolicy.errors import TrustPolicyError

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "fixtures" / "demo"


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    """A private copy of the demo, so a test may change it."""
    target = tmp_path / "demo"
    shutil.copytree(DEMO, target)
    return target


def by_id(report: dict) -> dict[str, dict]:
    return {package["id"]: package for package in report["packages"]}


def codes(package: dict, level: str | None = None) -> set[str]:
    return {issue["code"] for issue in package["issues"] if level is None or issue["level"] == level}


def check(paths, progress=None, **options) -> dict:  # type: ignore[no-untyped-def]
    """check_graph as the CLI calls it (options split into trust and run options), as its JSON document."""
    run_options = {key: options.pop(key) for key in ("jobs", "packages_dirs", "use_cache") if key in options}
    if not options.get("configfile"):
        options.setdefault("directory", config_directory(paths[0]))
    context = TrustContext.build(TrustOptions(**options))
    report = check_graph([str(p) for p in paths], context, CheckOptions(**run_options), progress=progress)
    return check_document(report)


def run(paths, tmp_path: Path, **options) -> dict:
    options.setdefault("cache_dir", str(tmp_path / "cache"))
    options.setdefault("revocation", "off")
    return check(paths, **options)


def test_demo_require_mode_verdicts(demo: Path, tmp_path: Path) -> None:
    report = run([demo], tmp_path)
    assert report_problems(report) == []
    assert report["mode"] == "require"
    packages = by_id(report)
    assert set(packages) == {"Contoso.Logging", "Fabrikam.Json", "Northwind.Utils", "Legacy.Unsigned", "Contoso.Tampered"}

    logging = packages["Contoso.Logging"]
    assert logging["verdict"] == "valid"
    assert logging["trustedSigner"]["name"] == "Contoso Ltd" and logging["trustedSigner"]["kind"] == "author"
    assert "NU3027" in codes(logging, "warning")  # the demo's signatures carry no timestamp

    fabrikam = packages["Fabrikam.Json"]
    assert fabrikam["verdict"] == "valid"
    assert fabrikam["trustedSigner"]["name"] == "demo-feed" and fabrikam["trustedSigner"]["kind"] == "repository"
    assert [s["placement"] for s in fabrikam["signatures"]] == ["primary", "countersignature"]

    northwind = packages["Northwind.Utils"]
    assert northwind["verdict"] == "invalid" and "NU3034" in codes(northwind, "error")
    assert northwind["trustedSigner"] is None
    assert northwind["fix"].startswith("trustpolicy trust author 'Northwind Traders' ")
    assert "--allow-untrusted-root" in northwind["fix"]  # its root is in no trust store either

    unsigned = packages["Legacy.Unsigned"]
    assert unsigned["verdict"] == "invalid" and codes(unsigned, "error") == {"NU3004"}
    assert unsigned["signed"] is False and "unsigned" in unsigned["cause"]

    tampered = packages["Contoso.Tampered"]
    assert tampered["verdict"] == "invalid"
    assert {"NU3008", "TP0002"} <= codes(tampered, "error")

    for package in packages.values():
        assert package["source"]["kind"] == "assets"
        assert package["source"]["path"].endswith("project.assets.json")
    assert report["summary"] == {"total": 5, "valid": 2, "invalid": 3, "warnings": report["summary"]["warnings"]}
    assert report["exitCode"] == 1


def test_fix_command_allows_the_package(demo: Path, tmp_path: Path) -> None:
    """The suggested `trustpolicy trust` command, run as given, makes the package pass."""
    report = run([demo], tmp_path)
    fix = by_id(report)["Northwind.Utils"]["fix"]
    import shlex

    words = shlex.split(fix)
    assert words[:2] == ["trustpolicy", "trust"]
    assert main(words[1:] + ["--configfile", str(demo / "NuGet.Config")]) == 0
    after = by_id(run([demo], tmp_path, configfile=str(demo / "NuGet.Config")))
    assert after["Northwind.Utils"]["verdict"] == "valid"
    assert after["Northwind.Utils"]["trustedSigner"]["name"] == "Northwind Traders"


def test_accept_and_audit_modes(demo: Path, tmp_path: Path) -> None:
    accept = by_id(run([demo], tmp_path, mode="accept"))
    assert accept["Legacy.Unsigned"]["verdict"] == "valid"
    assert accept["Northwind.Utils"]["verdict"] == "valid"
    assert "NU3034" in codes(accept["Northwind.Utils"], "warning")
    assert accept["Contoso.Tampered"]["verdict"] == "invalid"  # integrity fails in every mode

    audit = run([demo], tmp_path, mode="audit")
    assert audit["exitCode"] == 0
    assert by_id(audit)["Legacy.Unsigned"]["verdict"] == "invalid"


def test_missing_package_is_a_finding(demo: Path, tmp_path: Path) -> None:
    shutil.rmtree(demo / "packages" / "contoso.logging")
    report = run([demo], tmp_path)
    missing = by_id(report)["Contoso.Logging"]
    assert missing["verdict"] == "invalid" and "TP0001" in codes(missing, "error")
    assert missing["path"] is None
    assert report_problems(report) == []


def test_swapped_file_in_cache_is_caught(demo: Path, tmp_path: Path) -> None:
    """Replace a package with another validly signed one: signatures pass, the graph's record does not."""
    target = demo / "packages" / "contoso.logging" / "2.1.0" / "contoso.logging.2.1.0.nupkg"
    other = demo / "packages" / "fabrikam.json" / "13.0.3" / "fabrikam.json.13.0.3.nupkg"
    shutil.copyfile(other, target)
    package = by_id(run([demo], tmp_path))["Contoso.Logging"]
    assert package["verdict"] == "invalid"
    assert "TP0002" in codes(package, "error")


def test_whole_file_record_is_checked_in_the_same_read(demo: Path, tmp_path: Path) -> None:
    """The content hash and the whole-file SHA-512 come from one pass; each record is still judged alone."""
    folder = demo / "packages" / "fabrikam.json" / "13.0.3"
    record = folder / "fabrikam.json.13.0.3.nupkg.sha512"
    assert by_id(run([demo], tmp_path, use_cache=False))["Fabrikam.Json"]["verdict"] == "valid"
    other = (demo / "packages" / "contoso.logging" / "2.1.0" / "contoso.logging.2.1.0.nupkg.sha512").read_text()
    record.write_text(other)  # a well-formed SHA-512 of another file
    package = by_id(run([demo], tmp_path, use_cache=False))["Fabrikam.Json"]
    assert package["verdict"] == "invalid"
    (issue,) = [i for i in package["issues"] if i["code"] == "TP0002"]
    assert ".nupkg.sha512" in issue["message"] and other.strip() in issue["message"]


def test_cache_reuses_and_invalidates(demo: Path, tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    first = run([demo], tmp_path)
    second = check([demo], cache_dir=str(tmp_path / "cache"), revocation="off",
                   progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (5, 5)  # every package came from the cache
    assert [p["verdict"] for p in first["packages"]] == [p["verdict"] for p in second["packages"]]

    # A changed file is a cache miss, and its new verdict is computed.
    target = demo / "packages" / "contoso.logging" / "2.1.0" / "contoso.logging.2.1.0.nupkg"
    data = bytearray(target.read_bytes())
    data[40] ^= 0xFF
    target.write_bytes(bytes(data))
    third = by_id(run([demo], tmp_path))
    assert third["Contoso.Logging"]["verdict"] == "invalid"


def test_parallel_matches_serial(tmp_path: Path) -> None:
    folder = tmp_path / "feed"
    folder.mkdir()
    for nupkg in sorted(SIGNED.glob("*.nupkg")) + sorted(UNSIGNED.glob("*.nupkg")):
        shutil.copy(nupkg, folder)
    serial = run([folder], tmp_path, jobs=1, use_cache=False, mode="accept")
    parallel = run([folder], tmp_path, jobs=2, use_cache=False, mode="accept")
    assert len(serial["packages"]) == 12  # 9 signed + 3 unsigned corpus packages
    strip = lambda r: sorted((p["id"], p["verdict"], sorted(codes(p))) for p in r["packages"])  # noqa: E731
    assert strip(serial) == strip(parallel)
    versioning = next(p for p in serial["packages"] if p["id"] == "NuGet.Versioning")
    assert versioning["verdict"] == "valid"


def test_cli_json_sarif_and_output(demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cache = ["--cache-dir", str(tmp_path / "cache"), "--revocation", "off"]
    assert main(["check", str(demo), "--format", "json", *cache]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report_problems(report) == []

    out = tmp_path / "report.sarif"
    assert main(["check", str(demo), "--format", "sarif", "--output", str(out), *cache]) == 1
    stdout = capsys.readouterr().out
    assert stdout.count("\n") == 1 and "5 packages" in stdout
    sarif = json.loads(out.read_text())
    assert sarif["version"] == "2.1.0"
    rules = {rule["id"] for rule in sarif["runs"][0]["tool"]["driver"]["rules"]}
    assert {"NU3004", "NU3008", "NU3034", "TP0002"} <= rules

    assert main(["check", str(demo), "--mode", "audit", *cache]) == 0
    table = capsys.readouterr().out
    assert "Northwind.Utils" in table and "NU3034" in table and "trustpolicy trust author" in table


def test_unusable_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(tmp_path / "nothing-here")]) == 2
    assert "nothing-here" in capsys.readouterr().err

    bad = tmp_path / "NuGet.Config"
    bad.write_text("<configuration><trustedSigners><author name='x'/></trustedSigners></configuration>")
    assert main(["check", str(DEMO), "--configfile", str(bad), "--revocation", "off", "--no-cache"]) == 2
    err = capsys.readouterr().err
    assert "NuGet.Config" in err and "Traceback" not in err

    with pytest.raises(TrustPolicyError):
        check([DEMO], trust_store=(str(tmp_path / "missing.pem"),), use_cache=False)


def test_init_pins_the_graph_signers(demo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`init` then `check --configfile` in require mode: every signed, intact package passes."""
    config = tmp_path / "pinned" / "NuGet.Config"
    config.parent.mkdir()
    roots = ["--extra-roots", str(demo / "pki" / "demo-root-ca.pem"), "--revocation", "off"]
    assert main(["init", str(demo), "--configfile", str(config), *roots]) == 0
    err = capsys.readouterr().err
    assert "skipped Legacy.Unsigned 1.0.0" in err and "skipped Contoso.Tampered 3.0.0" in err
    text = config.read_text()
    assert '<author name="Northwind Traders">' in text
    assert 'serviceIndex="https://demo-feed.example/v3/index.json"' in text
    assert "<owners>demo-team;fabrikam</owners>" in text and 'allowUntrustedRoot="true"' not in text

    # --configfile is used alone (as NuGet does), so the demo's globalPackagesFolder is not read.
    report = run([demo], tmp_path, configfile=str(config), mode="require", packages_dirs=(str(demo / "packages"),),
                 extra_roots=(str(demo / "pki" / "demo-root-ca.pem"),))
    verdicts = {p["id"]: p["verdict"] for p in report["packages"]}
    assert verdicts == {"Contoso.Logging": "valid", "Fabrikam.Json": "valid", "Northwind.Utils": "valid",
                        "Legacy.Unsigned": "invalid", "Contoso.Tampered": "invalid"}
    assert by_id(report)["Northwind.Utils"]["trustedSigner"]["name"] == "Northwind Traders"

    # Without --configfile the XML goes to stdout for review, and a second init changes nothing.
    before = config.read_bytes()
    assert main(["init", str(demo), *roots]) == 0
    assert capsys.readouterr().out.startswith("<trustedSigners>")
    assert main(["init", str(demo), "--configfile", str(config), *roots]) == 0
    assert config.read_bytes() == before


EXPECTED_DEMO = {"Contoso.Logging": "valid", "Fabrikam.Json": "valid", "Northwind.Utils": "invalid",
                 "Legacy.Unsigned": "invalid", "Contoso.Tampered": "invalid"}


def _demo_libraries() -> dict[str, dict]:
    assets = json.loads((DEMO / "obj" / "project.assets.json").read_text())
    return assets["libraries"]


def test_every_source_format_gives_the_same_verdicts(demo: Path, tmp_path: Path) -> None:
    """The demo graph as a lock file, a global packages folder and a packages.config solution."""
    config = str(demo / "NuGet.Config")
    packages = demo / "packages"

    # packages.lock.json (v1) beside a project, packages found through --packages-dir
    lock_project = tmp_path / "lockproj"
    lock_project.mkdir()
    dependencies = {}
    for key, library in _demo_libraries().items():
        package_id, version = key.split("/")
        dependencies[package_id] = {"type": "Direct", "requested": f"[{version}, )", "resolved": version,
                                    "contentHash": library["sha512"]}
    (lock_project / "packages.lock.json").write_text(json.dumps({"version": 1, "dependencies": {"net8.0": dependencies}}))
    lock = run([lock_project / "packages.lock.json"], tmp_path, configfile=config, packages_dirs=(str(packages),))

    # the global packages folder itself
    folder = run([packages], tmp_path, configfile=config)

    # packages.config with the solution's packages/ folder (<Id>.<Version>/<Id>.<Version>.nupkg)
    solution = tmp_path / "solution"
    (solution / "App").mkdir(parents=True)
    (solution / "App.sln").write_text("")
    lines = []
    for key, library in _demo_libraries().items():
        package_id, version = key.split("/")
        target = solution / "packages" / f"{package_id}.{version}"
        target.mkdir(parents=True)
        shutil.copy(packages / library["path"] / f"{library['path'].replace('/', '.')}.nupkg",
                    target / f"{package_id}.{version}.nupkg")
        lines.append(f'  <package id="{package_id}" version="{version}" targetFramework="net48" />')
    (solution / "App" / "packages.config").write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<packages>\n' + "\n".join(lines) + "\n</packages>\n")
    legacy = run([solution / "App" / "packages.config"], tmp_path, configfile=config)

    for report, kind in ((lock, "lock"), (folder, "global-folder"), (legacy, "packages.config")):
        assert report_problems(report) == []
        assert {p["id"]: p["verdict"] for p in report["packages"]} == EXPECTED_DEMO, kind
        assert {p["source"]["kind"] for p in report["packages"]} == {kind}
        tampered = by_id(report)["Contoso.Tampered"]
        assert "NU3008" in codes(tampered, "error")
    # The lock file and the folder's .nupkg.metadata record the content hash; packages.config records none.
    assert "TP0002" in codes(by_id(lock)["Contoso.Tampered"])
    assert "TP0002" in codes(by_id(folder)["Contoso.Tampered"])
    assert "TP0002" not in codes(by_id(legacy)["Contoso.Tampered"])
    assert by_id(lock)["Contoso.Logging"]["source"]["line"] is not None


def test_sarif_from_check_is_valid_sarif(demo: Path, tmp_path: Path) -> None:
    import jsonschema

    from trustpolicy._internal.report import render_sarif

    schema = json.loads((ROOT / "tests" / "data" / "sarif-schema-2.1.0.json").read_text())
    context = TrustContext.build(TrustOptions(directory=str(demo), cache_dir=str(tmp_path / "cache"), revocation="off"))
    sarif = render_sarif(check_graph([demo], context), base_dir=demo)
    jsonschema.validate(sarif, schema)
    results = sarif["runs"][0]["results"]
    assert {r["ruleId"] for r in results} >= {"NU3004", "NU3008", "NU3034", "TP0002"}
    located = [r for r in results if r["ruleId"] == "NU3034"][0]["locations"][0]["physicalLocation"]
    assert located["artifactLocation"]["uri"].endswith("project.assets.json")
    assert located["region"]["startLine"] > 1


def test_graph_problems_reach_the_report(demo: Path, tmp_path: Path) -> None:
    assets_path = demo / "obj" / "project.assets.json"
    assets = json.loads(assets_path.read_text())
    assets["packageFolders"] = {"/nonexistent/restore/machine/packages/": {}}
    assets_path.write_text(json.dumps(assets))
    report = run([demo], tmp_path)
    assert report_problems(report) == []
    problems = report["graphProblems"]
    assert any("/nonexistent/restore/machine/packages/" in p["message"] and p["source"]["kind"] == "assets"
               for p in problems)
    # The demo's own globalPackagesFolder still finds every package.
    assert {p["id"]: p["verdict"] for p in report["packages"]} == EXPECTED_DEMO


def test_package_without_readable_manifest_fails_closed(demo: Path, tmp_path: Path) -> None:
    import zipfile

    target = demo / "packages" / "legacy.unsigned" / "1.0.0" / "legacy.unsigned.1.0.0.nupkg"
    with zipfile.ZipFile(target, "w") as archive:  # no .nuspec at all
        archive.writestr("lib/net8.0/Legacy.Unsigned.dll", b"not the package the graph names")
    package = by_id(run([demo], tmp_path, mode="accept"))["Legacy.Unsigned"]
    assert package["verdict"] == "invalid" and "TP0003" in codes(package, "error")


def test_a_fifo_in_the_cache_does_not_block(demo: Path, tmp_path: Path) -> None:
    import os

    cache = tmp_path / "cache"
    run([demo], tmp_path, cache_dir=str(cache))
    (entries,) = (cache / "verdicts").glob("*.json")  # one file holds the policy's entries
    entries.unlink()
    os.mkfifo(entries)
    report = run([demo], tmp_path, cache_dir=str(cache))  # would block forever on open() without O_NONBLOCK
    assert {p["id"]: p["verdict"] for p in report["packages"]} == EXPECTED_DEMO


def test_cache_key_is_what_the_policy_means_not_where_it_is_written(demo: Path, tmp_path: Path) -> None:
    """The same trustedSigners reached through another spelling of the path, or moved a line down by a
    comment, is the same policy: the cache still answers (found by the benchmarks)."""
    config = demo / "NuGet.Config"
    run([demo], tmp_path, configfile=str(config))
    config.write_text(config.read_text().replace("<configuration>", "<configuration>\n  <!-- moved -->", 1))
    spelled = demo / "obj" / ".." / "NuGet.Config"
    seen: list[tuple[int, int]] = []
    check([demo], cache_dir=str(tmp_path / "cache"), revocation="off", configfile=str(spelled),
          progress=lambda done, total: seen.append((done, total)))
    assert seen[0] == (5, 5)


def test_bad_revocation_options_are_unusable_input(demo: Path, tmp_path: Path) -> None:
    with pytest.raises(TrustPolicyError, match="revocation"):
        run([demo], tmp_path, revocation="sometimes")
    with pytest.raises(TrustPolicyError, match="timeout"):
        run([demo], tmp_path, revocation_timeout=0)


def test_work_goes_out_largest_first_in_bounded_batches() -> None:
    from trustpolicy.check import _BATCH_BYTES, _BATCH_COUNT, _batches

    sizes = [1_000] * 40 + [90 << 20, 3 << 20, 2 << 20, 12 << 20]
    batches = _batches(list(range(len(sizes))), sizes)
    assert batches[0] == [40] and batches[1] == [43]  # each big file alone, the biggest first
    assert sorted(i for batch in batches for i in batch) == list(range(len(sizes)))
    order = [i for batch in batches for i in batch]
    assert [sizes[i] for i in order] == sorted(sizes, reverse=True)
    assert all(len(b) <= _BATCH_COUNT and sum(sizes[i] for i in b[:-1]) < _BATCH_BYTES for b in batches)
