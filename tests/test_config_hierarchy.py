"""Which files apply and how they merge (docs/policy.md section 4; scenario 98), and `config show`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from trustpolicy._internal.config import ConfigLocations, load_config, load_trust_settings
from trustpolicy._internal.config.hierarchy import MACHINE_DIR_ENV, USER_DIR_ENV
from trustpolicy.cli import main
from trustpolicy.errors import ConfigError

A = "A" * 64
B = "B" * 64
C = "C" * 64


def write(path: Path, signers: str = "", config: str = "", sources: str = "") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n'
        f"  <config>{config}</config>\n  <packageSources>{sources}</packageSources>\n"
        f"  <trustedSigners>\n{signers}\n  </trustedSigners>\n</configuration>\n",
        encoding="utf-8",
    )
    return path


def author(name: str, fp: str = A, allow: str = "false") -> str:
    return f'<author name="{name}"><certificate fingerprint="{fp}" hashAlgorithm="SHA256" allowUntrustedRoot="{allow}" /></author>'


def repository(name: str, index: str, fp: str = A, allow: str = "false") -> str:
    return (
        f'<repository name="{name}" serviceIndex="{index}">'
        f'<certificate fingerprint="{fp}" hashAlgorithm="SHA256" allowUntrustedRoot="{allow}" /></repository>'
    )


MODE_REQUIRE = '<add key="signatureValidationMode" value="require" />'


@pytest.fixture
def home(tmp_path: Path) -> ConfigLocations:
    """User and machine locations inside the test directory, never the real ones."""
    return ConfigLocations(user_dir=str(tmp_path / "user"), machine_dir=str(tmp_path / "machine"))


def ours(paths, tmp_path: Path) -> list[str]:
    """Files under the test directory (the walk goes up to / and may meet files we do not own)."""
    return [str(Path(p).relative_to(tmp_path)) for p in paths if str(p).startswith(str(tmp_path))]


def test_discovery_order_closest_first_then_user_additional_machine(tmp_path: Path, home: ConfigLocations) -> None:
    write(tmp_path / "repo" / "nuget.config")
    write(tmp_path / "repo" / "src" / "app" / "NuGet.Config")
    write(tmp_path / "user" / "NuGet.Config")
    write(tmp_path / "user" / "config" / "b.config")
    write(tmp_path / "user" / "config" / "a.Config")
    write(tmp_path / "user" / "config" / "ignored.txt")
    write(tmp_path / "machine" / "zz.config")
    write(tmp_path / "machine" / "Machine.Config")
    loaded = load_config(directory=tmp_path / "repo" / "src" / "app", locations=home)
    assert ours((f.path for f in loaded.files), tmp_path) == [
        "repo/src/app/NuGet.Config",
        "repo/nuget.config",
        "user/NuGet.Config",
        "user/config/a.Config",
        "user/config/b.config",
        "machine/Machine.Config",
        "machine/zz.config",
    ]
    scopes = {Path(f.path).name: (f.scope, f.writable) for f in loaded.files if str(f.path).startswith(str(tmp_path))}
    assert scopes["a.Config"] == ("additional-user", False)
    assert scopes["zz.config"] == ("machine", False)
    assert scopes["NuGet.Config"][1] is True


def test_one_file_per_directory_probed_in_nuget_order(tmp_path: Path, home: ConfigLocations) -> None:
    write(tmp_path / "d" / "NuGet.Config", author("from-NuGet.Config"))
    if (tmp_path / "d" / "nuget.config").exists():
        pytest.skip("case-insensitive file system")
    write(tmp_path / "d" / "nuget.config", author("from-nuget.config"))
    settings = load_trust_settings(directory=tmp_path / "d", locations=home)
    assert [s.name for s in settings.signers] == ["from-nuget.config"]


def test_configfile_alone_ignores_walk_user_and_machine(tmp_path: Path, home: ConfigLocations) -> None:
    write(tmp_path / "d" / "nuget.config", author("walk"))
    write(tmp_path / "user" / "NuGet.Config", author("user"))
    write(tmp_path / "machine" / "m.config", author("machine"))
    only = write(tmp_path / "d" / "custom.config", author("explicit"))
    settings = load_trust_settings(configfile=only, locations=home)
    assert [s.name for s in settings.signers] == ["explicit"]
    assert settings.files == (str(only),)
    assert settings.sources == {}  # no default nuget.org either: only that file


def test_closer_files_win_by_identity_and_clear_drops_farther(tmp_path: Path, home: ConfigLocations) -> None:
    write(tmp_path / "machine" / "m.config", author("machine-author") + repository("corp", "https://corp.test/index.json", B))
    write(tmp_path / "user" / "NuGet.Config", author("shared", A) + author("user-only"))
    write(tmp_path / "repo" / "nuget.config", author("shared", C) + repository("renamed", "https://corp.test/index.json", C), config=MODE_REQUIRE)
    settings = load_trust_settings(directory=tmp_path / "repo", locations=home)
    by_name = {s.name: s for s in settings.signers}
    assert set(by_name) == {"machine-author", "shared", "user-only", "renamed"}
    assert [c.fingerprint for c in by_name["shared"].certificates] == [C]  # replaced, not merged
    assert by_name["renamed"].service_index == "https://corp.test/index.json"  # repositories merge on serviceIndex
    assert settings.mode == "require" and settings.mode_source is not None
    assert settings.mode_source.path.endswith("repo/nuget.config")

    write(tmp_path / "repo" / "nuget.config", "<clear />" + author("only-this"))
    settings = load_trust_settings(directory=tmp_path / "repo", locations=home)
    assert [s.name for s in settings.signers] == ["only-this"]


def test_author_identity_is_case_sensitive_across_files(tmp_path: Path, home: ConfigLocations) -> None:
    write(tmp_path / "user" / "NuGet.Config", author("Contoso", A))
    write(tmp_path / "repo" / "nuget.config", author("contoso", B))
    names = [s.name for s in load_trust_settings(directory=tmp_path / "repo", locations=home).signers]
    assert sorted(names) == ["Contoso", "contoso"]


def test_three_level_merge(tmp_path: Path, home: ConfigLocations) -> None:
    write(tmp_path / "user" / "NuGet.Config", author("one", A))
    write(tmp_path / "a" / "nuget.config", author("two", B))
    write(tmp_path / "a" / "b" / "nuget.config", repository("three", "https://three.test/index.json", C))
    settings = load_trust_settings(directory=tmp_path / "a" / "b", locations=home)
    assert [(s.kind, s.name) for s in settings.signers] == [("author", "one"), ("author", "two"), ("repository", "three")]


def test_mode_closest_wins_and_config_clear_resets_it(tmp_path: Path, home: ConfigLocations) -> None:
    write(tmp_path / "user" / "NuGet.Config", config=MODE_REQUIRE)
    write(tmp_path / "repo" / "nuget.config")
    assert load_trust_settings(directory=tmp_path / "repo", locations=home).mode == "require"
    write(tmp_path / "repo" / "nuget.config", config='<add key="signatureValidationMode" value="accept" />')
    assert load_trust_settings(directory=tmp_path / "repo", locations=home).mode == "accept"
    write(tmp_path / "repo" / "nuget.config", config="<clear />")
    settings = load_trust_settings(directory=tmp_path / "repo", locations=home)
    assert settings.mode == "accept" and settings.mode_source is None


def test_mode_value_expands_environment_variables(tmp_path: Path) -> None:
    path = write(tmp_path / "c.config", config='<add key="signatureValidationMode" value="%SIGNING_MODE%" />')
    assert load_trust_settings(configfile=path, environ={"SIGNING_MODE": "require"}).mode == "require"
    assert load_trust_settings(configfile=path, environ={}).mode == "accept"


def test_missing_user_file_means_nugets_default_source(tmp_path: Path, home: ConfigLocations) -> None:
    (tmp_path / "empty").mkdir()
    settings = load_trust_settings(directory=tmp_path / "empty", locations=home)
    assert settings.sources == {"nuget.org": "https://api.nuget.org/v3/index.json"}
    write(tmp_path / "user" / "NuGet.Config", sources='<add key="corp" value="https://corp.test/v3/index.json" />')
    settings = load_trust_settings(directory=tmp_path / "empty", locations=home)
    assert settings.sources == {"corp": "https://corp.test/v3/index.json"}


def test_nu3040_conflicting_allow_untrusted_root_becomes_false(tmp_path: Path) -> None:
    path = write(tmp_path / "c.config", author("a", A, "true") + repository("r", "https://r.test/index.json", A, "false") + author("b", B, "true"))
    settings = load_trust_settings(configfile=path)
    assert [w.code for w in settings.warnings] == ["NU3040"]
    assert A in settings.warnings[0].message
    flags = {(s.name, c.fingerprint): c.allow_untrusted_root for s in settings.signers for c in s.certificates}
    assert flags == {("a", A): False, ("r", A): False, ("b", B): True}


def test_same_fingerprint_under_two_algorithms_is_not_a_conflict(tmp_path: Path) -> None:
    path = write(
        tmp_path / "c.config",
        f'<author name="a"><certificate fingerprint="{A}" hashAlgorithm="SHA256" allowUntrustedRoot="true" />'
        f'<certificate fingerprint="{A}" hashAlgorithm="SHA384" allowUntrustedRoot="false" /></author>',
    )
    assert load_trust_settings(configfile=path).warnings == ()


def test_an_error_in_a_farther_file_names_that_file(tmp_path: Path, home: ConfigLocations) -> None:
    bad = tmp_path / "user" / "NuGet.Config"
    bad.parent.mkdir(parents=True)
    bad.write_text("<configuration>\n<trustedSigners>\n<author name='x'/>\n</trustedSigners>\n</configuration>\n")
    (tmp_path / "repo").mkdir()
    with pytest.raises(ConfigError) as caught:
        load_trust_settings(directory=tmp_path / "repo", locations=home)
    assert caught.value.path == str(bad) and caught.value.line == 3


def test_missing_configfile_and_bad_directory_are_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_trust_settings(configfile=tmp_path / "nope.config")
    with pytest.raises(ConfigError, match="not a directory"):
        load_trust_settings(directory=tmp_path / "nope")


def test_output_file_is_closest_with_clear_else_user_file(tmp_path: Path, home: ConfigLocations) -> None:
    write(tmp_path / "repo" / "nuget.config", author("x"))
    write(tmp_path / "repo" / "sub" / "nuget.config", author("y"))
    loaded = load_config(directory=tmp_path / "repo" / "sub", locations=home)
    assert loaded.output_file().path == str(tmp_path / "user" / "NuGet.Config")
    write(tmp_path / "repo" / "nuget.config", "<clear/>" + author("x"))
    loaded = load_config(directory=tmp_path / "repo" / "sub", locations=home)
    assert loaded.output_file().path == str(tmp_path / "repo" / "nuget.config")


# -- NuGet's locations per OS --------------------------------------------------------------------


def test_linux_locations() -> None:
    loc = ConfigLocations.for_platform("linux", {"HOME": "/home/ann"})
    assert (loc.user_dir, loc.machine_dir, loc.windows) == ("/home/ann/.nuget/NuGet", "/etc/opt/NuGet/Config", False)
    loc = ConfigLocations.for_platform("linux", {"HOME": "/home/ann", "NUGET_COMMON_APPLICATION_DATA": "/data"})
    assert loc.machine_dir == "/data/NuGet/Config"


def test_macos_locations() -> None:
    loc = ConfigLocations.for_platform("darwin", {"HOME": "/Users/ann"})
    assert (loc.user_dir, loc.machine_dir) == ("/Users/ann/.nuget/NuGet", "/Library/Application Support/NuGet/Config")


def test_windows_locations() -> None:
    env = {"APPDATA": r"C:\Users\ann\AppData\Roaming", "ProgramFiles(x86)": r"C:\Program Files (x86)"}
    loc = ConfigLocations.for_platform("win32", env)
    assert loc.user_dir == r"C:\Users\ann\AppData\Roaming\NuGet"
    assert loc.machine_dir == r"C:\Program Files (x86)\NuGet\Config"
    assert loc.windows is True
    assert ConfigLocations.for_platform("win32", {"APPDATA": "C:\\A", "ProgramFiles": "C:\\PF"}).machine_dir == r"C:\PF\NuGet\Config"


def test_trustpolicy_overrides() -> None:
    env = {"HOME": "/home/ann", USER_DIR_ENV: "/tmp/u", MACHINE_DIR_ENV: ""}
    loc = ConfigLocations.for_platform("linux", env)
    assert (loc.user_dir, loc.machine_dir) == ("/tmp/u", None)


# -- trustpolicy config show -----------------------------------------------------------------------


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(USER_DIR_ENV, str(tmp_path / "user"))
    monkeypatch.setenv(MACHINE_DIR_ENV, str(tmp_path / "machine"))
    return tmp_path


def test_config_show_text_names_file_and_line(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(isolated / "repo" / "nuget.config", author("contoso", A, "true"), config=MODE_REQUIRE)
    assert main(["config", "show", "--directory", str(isolated / "repo")]) == 0
    out = capsys.readouterr().out
    assert f"signatureValidationMode: require  ({path}:3)" in out
    assert f"author 'contoso'  ({path}:6)" in out
    assert f"SHA256 {A}  [allowUntrustedRoot]  ({path}:6)" in out
    assert "(does not exist)" in out  # the user file


def test_config_show_json(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(isolated / "c.config", repository("corp", "https://corp.test/index.json"), sources='<add key="corp" value="https://corp.test/index.json"/>')
    assert main(["config", "--configfile", str(path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["signatureValidationMode"] == {"value": "accept", "written": None, "valid": True, "source": None}
    assert data["globalPackagesFolder"] is None and data["repositoryPath"] is None
    assert data["packageSources"] == [{"name": "corp", "url": "https://corp.test/index.json", "source": {"path": str(path), "line": 4}}]
    signer = data["trustedSigners"][0]
    assert signer["kind"] == "repository" and signer["source"] == {"path": str(path), "line": 6}
    assert signer["certificates"][0]["fingerprint"] == A


def test_config_show_bad_file_exits_2_with_file_and_line(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = isolated / "bad.config"
    bad.write_text("<configuration>\n<trustedSigners>\n<author name='x'><certificate fingerprint='A' hashAlgorithm='SHA256'/></author>\n</trustedSigners>\n</configuration>\n")
    assert main(["config", "show", "--configfile", str(bad)]) == 2
    err = capsys.readouterr().err
    assert f"{bad}:3: certificate is missing the required attribute allowUntrustedRoot" in err
    assert "Traceback" not in err


def test_two_repositories_with_one_service_index_in_one_file_both_count(tmp_path: Path, home: ConfigLocations) -> None:
    """NuGet keeps both (its Equals/GetHashCode quirk); a closer file with that serviceIndex replaces the
    first of them only (VirtualSettingSection.Merge removes the first equal item and appends)."""
    write(tmp_path / "user" / "NuGet.Config", repository("one", "https://r.test/index.json", A) + repository("two", "https://r.test/index.json", B))
    (tmp_path / "repo").mkdir()
    settings = load_trust_settings(directory=tmp_path / "repo", locations=home)
    assert [s.name for s in settings.signers] == ["one", "two"]
    write(tmp_path / "repo" / "nuget.config", repository("three", "https://r.test/index.json", C))
    settings = load_trust_settings(directory=tmp_path / "repo", locations=home)
    assert [s.name for s in settings.signers] == ["two", "three"]


def test_a_replacing_item_moves_to_the_end_like_nuget(tmp_path: Path, home: ConfigLocations) -> None:
    write(tmp_path / "user" / "NuGet.Config", author("a") + author("b", B))
    write(tmp_path / "repo" / "nuget.config", author("a", C))
    settings = load_trust_settings(directory=tmp_path / "repo", locations=home)
    assert [(s.name, s.certificates[0].fingerprint) for s in settings.signers] == [("b", B), ("a", C)]


# -- one environment for every reader --------------------------------------------------------------


def test_load_config_finds_user_and_machine_files_through_the_environ_it_is_given(tmp_path: Path) -> None:
    write(tmp_path / "u" / "NuGet.Config", author("from-user"))
    write(tmp_path / "m" / "corp.config", author("from-machine", B))
    (tmp_path / "repo").mkdir()
    environ = {USER_DIR_ENV: str(tmp_path / "u"), MACHINE_DIR_ENV: str(tmp_path / "m")}
    loaded = load_config(directory=tmp_path / "repo", environ=environ)
    assert [s.name for s in loaded.settings.signers] == ["from-machine", "from-user"]
    assert ours(loaded.settings.files, tmp_path) == ["u/NuGet.Config", "m/corp.config"]


def test_a_given_environ_without_home_has_no_user_folder() -> None:
    assert ConfigLocations.for_platform("linux", {}).user_dir is None
    assert ConfigLocations.for_platform("win32", {}).user_dir is None
    assert ConfigLocations.for_platform("linux", {"HOME": "/h"}).user_dir == "/h/.nuget/NuGet"


# -- globalPackagesFolder / repositoryPath ----------------------------------------------------------


def folder(path: Path, key: str, value: str) -> Path:
    return write(path, config=f'<add key="{key}" value="{value}" />')


def test_package_folders_resolve_against_the_defining_file(tmp_path: Path, home: ConfigLocations) -> None:
    folder(tmp_path / "user" / "NuGet.Config", "globalPackagesFolder", "../cache")
    (tmp_path / "repo" / "src").mkdir(parents=True)
    settings = load_trust_settings(directory=tmp_path / "repo" / "src", locations=home)
    assert settings.global_packages_folder.path == str(tmp_path / "cache")
    assert settings.global_packages_folder.source.path == str(tmp_path / "user" / "NuGet.Config")
    assert settings.repository_path is None

    folder(tmp_path / "repo" / "nuget.config", "globalPackagesFolder", "%STORE%/pkgs")
    settings = load_trust_settings(directory=tmp_path / "repo" / "src", locations=home, environ={"STORE": "/srv/store"})
    assert settings.global_packages_folder.path == "/srv/store/pkgs"  # an absolute value replaces the base
    # Keys merge by their exact spelling but are looked up ignoring case: a closer key spelled
    # differently is appended after the farther one, and NuGet's lookup finds the farther one first.
    folder(tmp_path / "repo" / "nuget.config", "GLOBALPACKAGESFOLDER", "/srv/other")
    settings = load_trust_settings(directory=tmp_path / "repo" / "src", locations=home)
    assert settings.global_packages_folder.path == str(tmp_path / "cache")
    write(tmp_path / "repo" / "nuget.config", config='<add key="globalPackagesFolder" value="" /><add key="repositoryPath" value="lib/../pkgs" />')
    settings = load_trust_settings(directory=tmp_path / "repo" / "src", locations=home)
    assert settings.global_packages_folder is None  # an empty closer value means NuGet's default
    assert settings.repository_path.path == str(tmp_path / "repo" / "pkgs")
    write(tmp_path / "repo" / "nuget.config", config="<clear />")
    assert load_trust_settings(directory=tmp_path / "repo" / "src", locations=home).global_packages_folder is None


# -- the strict reading: what NuGet misreads is refused ---------------------------------------------


@pytest.mark.parametrize("value", ["requir", "", "1", "accept,require", "%UNSET%"])
def test_an_invalid_mode_is_kept_raw_and_refused_unless_a_mode_is_given(tmp_path: Path, value: str) -> None:
    path = write(tmp_path / "c.config", author("a"), config=f'<add key="signatureValidationMode" value="{value}" />')
    settings = load_trust_settings(configfile=path, environ={})
    assert settings.mode_value == value and settings.mode in ("accept", "require")  # NuGet's reading stays
    problem = settings.mode_problem
    assert (problem.code, problem.level, str(problem.where)) == ("TP1018", "error", f"{path}:3")
    with pytest.raises(ConfigError) as caught:
        settings.require_usable(mode_given=False)
    assert str(caught.value).startswith(f"{path}:3: TP1018: signatureValidationMode is {value!r}")
    assert "accept" in caught.value.message and "require" in caught.value.message and "--mode" in caught.value.message
    settings.require_usable(mode_given=True)


@pytest.mark.parametrize("value", ["require", "Accept", " REQUIRE "])
def test_valid_modes_in_any_case_are_not_a_problem(tmp_path: Path, value: str) -> None:
    path = write(tmp_path / "c.config", author("a"), config=f'<add key="signatureValidationMode" value="{value}" />')
    settings = load_trust_settings(configfile=path)
    assert settings.mode_problem is None
    settings.require_usable(mode_given=False)


@pytest.mark.parametrize(("algorithm", "fingerprint", "code"), [("SHA1", "AB" * 20, "NU3043"), ("SHA1", A, "NU3043"), ("MD5", A, "TP1020")])
def test_certificates_nuget_cannot_use_are_refused_with_file_and_line(tmp_path: Path, algorithm: str, fingerprint: str, code: str) -> None:
    cert = f'<certificate fingerprint="{fingerprint}" hashAlgorithm="{algorithm}" allowUntrustedRoot="false" />'
    path = write(tmp_path / "c.config", f'{author("ok")}\n<author name="old">\n{cert}</author>')
    settings = load_trust_settings(configfile=path)
    with pytest.raises(ConfigError) as caught:
        settings.require_usable(mode_given=True)
    assert str(caught.value).startswith(f"{path}:8: {code}: author 'old' has a certificate with hashAlgorithm {algorithm!r}")
    assert str(caught.value).endswith("SHA-256 fingerprint.")


def test_config_show_shows_an_invalid_mode_as_written(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(isolated / "c.config", config='<add key="signatureValidationMode" value="requir" />')
    assert main(["config", "--configfile", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"signatureValidationMode: 'requir'  [invalid: neither accept nor require; NuGet reads it as accept]  ({path}:3)" in out
    assert main(["config", "--configfile", str(path), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)["signatureValidationMode"]
    assert data == {"value": "accept", "written": "requir", "valid": False, "source": {"path": str(path), "line": 3}}
