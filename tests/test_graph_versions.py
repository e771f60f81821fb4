"""NuGet version parsing and normalization (docs/graph.md section 1)."""

from __future__ import annotations

import pytest

from trustpolicy._internal.graph import normalize_version, parse_version, try_parse_version


@pytest.mark.parametrize(
    ("text", "normalized", "folder"),
    [  # the table of docs/graph.md 1.2
        ("1", "1.0.0", "1.0.0"),
        ("1.0", "1.0.0", "1.0.0"),
        ("1.0.0.0", "1.0.0", "1.0.0"),
        ("1.00", "1.0.0", "1.0.0"),
        ("1.01.1", "1.1.1", "1.1.1"),
        ("1.00.0.1", "1.0.0.1", "1.0.0.1"),
        ("1.0.01.0", "1.0.1", "1.0.1"),
        ("4.0.30506.0", "4.0.30506", "4.0.30506"),
        ("3.7.100.14", "3.7.100.14", "3.7.100.14"),
        ("1.0.7+r3456", "1.0.7", "1.0.7"),
        ("2.0.0-Beta4.22272.1", "2.0.0-Beta4.22272.1", "2.0.0-beta4.22272.1"),
        (" 5.0.0+42a8779499c1d1ed2488c2e6b9e2ee6ff6107766 ", "5.0.0", "5.0.0"),
        ("9.0.0-preview.7.24406.2", "9.0.0-preview.7.24406.2", "9.0.0-preview.7.24406.2"),
        ("2.3.1-rc01", "2.3.1-rc01", "2.3.1-rc01"),
    ],
)
def test_normalized_and_folder_forms(text: str, normalized: str, folder: str) -> None:
    version = parse_version(text)
    assert version.normalized == normalized == normalize_version(text)
    assert version.folder_name == folder


@pytest.mark.parametrize(
    ("text", "to_string"),
    [  # docs/graph.md 1.3: original text unless SemVer 2
        ("1.0", "1.0"),
        ("4.0.30506.0", "4.0.30506.0"),
        ("1.0.0-beta", "1.0.0-beta"),
        ("1.0.0-beta.1", "1.0.0-beta.1"),
        ("1.00.0-beta.1", "1.0.0-beta.1"),
        ("1.0.0+abc", "1.0.0"),
        ("01.0", "01.0"),
    ],
)
def test_to_string_keeps_original_text_unless_semver2(text: str, to_string: str) -> None:
    assert parse_version(text).to_string() == to_string


@pytest.mark.parametrize(
    "text",
    ["", " ", "1.0.0.0.0", "1.0.0-01", "1.0.0-", "1.0.0-a..b", "1.0.0+", "a.b", "1..0", "-1.0", "1.0.0-a_b",
     "1.0.0+a_b", "99999999999.0", ".1", "1."],
)
def test_invalid_versions_are_rejected(text: str) -> None:
    with pytest.raises(ValueError):
        parse_version(text)
    assert try_parse_version(text) is None


def test_equality_ignores_label_case_and_metadata() -> None:
    assert parse_version("1.0.0-Beta") == parse_version("1.0.0-beta")
    assert parse_version("1.0.0+a") == parse_version("1.0")
    assert parse_version("1.0.0.0") == parse_version("1")
    assert parse_version("1.0.0-beta") != parse_version("1.0.0")
    assert parse_version("1.0.0.1") != parse_version("1.0.0")
    assert len({parse_version("1.0.0-RC.1"), parse_version("1.0.0-rc.1+x")}) == 1
    assert parse_version("1.0.0-0").is_prerelease and parse_version("1.0.0-0").release_labels == ("0",)
    assert try_parse_version(None) is None
