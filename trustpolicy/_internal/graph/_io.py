"""Hardened reading of the graph's JSON and XML files; cheap line numbers for JSON keys."""

from __future__ import annotations

import bisect
import json
import re
from pathlib import Path
from typing import Any

from lxml import etree

from trustpolicy._internal.fileutil import NotRegularFile, read_regular
from trustpolicy.errors import TrustPolicyError

JSON_MAX_BYTES = 256 * 1024 * 1024  # assets files of big solutions reach tens of MB; cap far above
XML_MAX_BYTES = 16 * 1024 * 1024  # packages.config / nuspec are small
SMALL_MAX_BYTES = 1024 * 1024  # .nupkg.metadata, .nupkg.sha512
# At most this many "<" (elements) and as many "=" (attributes) in an XML file, counted before
# parsing. packages.config lists hundreds of packages, a nuspec a few thousand elements; without a
# bound a 16 MB packages.config of tiny elements cost GBs, and 100,000 packages 20 s of lookups.
XML_MAX_MARKUP = 50_000


def _within(data: bytes, limit: int, what: str, path: Path) -> bytes:
    if len(data) > limit:
        raise TrustPolicyError(f"{what} is larger than {limit // (1024 * 1024)} MB", path=str(path))
    return data


def read_bytes(path: Path, limit: int, what: str) -> bytes:
    """Read a whole regular file, refusing anything larger than `limit` (TrustPolicyError naming it)."""
    try:
        return _within(read_regular(path, limit), limit, what, path)
    except OSError as error:
        raise TrustPolicyError(f"cannot read {what}: {error.strerror or error}", path=str(path)) from None


def read_if_file(path: Path, limit: int, what: str) -> bytes | None:
    """A small file's bytes; None when it is missing or not a regular file (a FIFO, a folder): an
    integrity file that is not a file counts as absent. Larger than `limit` or unreadable: TrustPolicyError."""
    try:
        data = read_regular(path, limit)
    except (FileNotFoundError, NotADirectoryError, NotRegularFile):
        return None
    except OSError as error:
        raise TrustPolicyError(f"cannot read {what}: {error.strerror or error}", path=str(path)) from None
    return _within(data, limit, what, path)


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def parse_json(data: bytes, path: Path, what: str) -> tuple[Any, str]:
    """Decode UTF-8 JSON (BOM allowed); return (value, text). Errors name the file and line."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise TrustPolicyError(f"{what} is not UTF-8 (byte {error.start})", path=str(path)) from None
    try:
        return json.loads(text, parse_constant=_no_constants), text
    except json.JSONDecodeError as error:
        raise TrustPolicyError(
            f"{what} is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}", path=str(path)
        ) from None
    except (ValueError, RecursionError) as error:
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise TrustPolicyError(f"{what} is not valid JSON: {reason}", path=str(path)) from None


def load_json(path: Path, what: str, limit: int = JSON_MAX_BYTES) -> tuple[Any, str]:
    return parse_json(read_bytes(path, limit, what), path, what)


def pointer(*tokens: str) -> str:
    """RFC 6901 JSON pointer from raw keys (`~` -> `~0`, `/` -> `~1`)."""
    return "".join("/" + t.replace("~", "~0").replace("/", "~1") for t in tokens)


class KeyLocator:
    """Find the line of an object key in JSON text without a position-aware parser.

    NuGet writes keys once per object and in order, so searching for `"key": {` (the entries we
    locate are objects; a dependency `"Id": "1.0"` is not) after the parent's position is exact
    for its files; a miss just means no line number.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._newlines = [m.start() for m in re.finditer("\n", text)]

    def find(self, key: str, start: int = 0) -> int | None:
        quoted = json.dumps(key, ensure_ascii=False)
        pos = start
        while True:
            pos = self.text.find(quoted, pos)
            if pos < 0:
                return None
            after = pos + len(quoted)
            rest = self.text[after : after + 32].lstrip()
            if rest.startswith(":") and rest[1:].lstrip().startswith("{"):
                return pos
            pos = after

    def line(self, offset: int | None) -> int | None:
        if offset is None:
            return None
        return bisect.bisect_left(self._newlines, offset) + 1


def _xml_parser() -> etree.XMLParser:
    # No DTD, no entity expansion, no network, no huge trees: packages.config and nuspec never need them.
    return etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False
    )


def parse_xml(data: bytes, path: Path, what: str) -> etree._Element:
    """Parse XML with a hardened parser; refuse any DOCTYPE. Errors name the file and line."""
    if b"<!DOCTYPE" in data or b"<\x00!\x00D\x00O\x00C\x00T\x00Y\x00P\x00E" in data:
        raise TrustPolicyError(f"{what} has a DOCTYPE (refused: DTDs and entities are not allowed)", path=str(path))
    if max(data.count(b"<"), data.count(b"=")) > XML_MAX_MARKUP:
        raise TrustPolicyError(f"{what} has more than {XML_MAX_MARKUP} tags or attributes (refused unparsed)", path=str(path))
    try:
        root = etree.fromstring(data, _xml_parser())
    except etree.XMLSyntaxError as error:
        line = f" at line {error.lineno}" if error.lineno else ""
        reason = " ".join(error.msg.split())  # libxml2 messages may hold newlines; errors are one line
        raise TrustPolicyError(f"{what} is not valid XML{line}: {reason}", path=str(path)) from None
    except ValueError as error:  # e.g. unicode strings with encoding declarations
        raise TrustPolicyError(f"{what} is not valid XML: {error}", path=str(path)) from None
    if root is None:
        raise TrustPolicyError(f"{what} is empty", path=str(path))
    if root.getroottree().docinfo.doctype:
        raise TrustPolicyError(f"{what} has a DOCTYPE (refused)", path=str(path))
    return root


def local_name(element: etree._Element) -> str:
    tag = element.tag
    return etree.QName(tag).localname if isinstance(tag, str) else ""
