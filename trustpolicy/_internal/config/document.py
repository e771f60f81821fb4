"""A NuGet.Config as bytes, text and tree: hardened parsing plus the offsets that edits need.

lxml (no DTD, no entities, no network) decides whether the file is well-formed and gives the
values. A small scanner over the decoded text gives each element's exact offsets and starting line,
so that `trust` edits can splice text and leave every other byte of the file as it was. The two
walks must agree element by element, or the document is refused for editing.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

from trustpolicy._internal.fileutil import NotRegularFile, read_regular
from trustpolicy.errors import ConfigError

MAX_CONFIG_BYTES = 16 * 1024 * 1024  # a NuGet.Config is a few KB; refuse absurd files early
# At most this many "<" (elements, comments, PIs) and as many "=" (attributes), counted before
# parsing. A real NuGet.Config has hundreds; each costs ~1 KB once parsed and mapped, so without a
# bound a 16 MB file of "<a/>" took a minute and GBs of memory.
MAX_CONFIG_MARKUP = 50_000  # as graph._io.XML_MAX_MARKUP

_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_DECLARED_ENCODING = re.compile(rb"""<\?xml[^>]*?encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
# Comments are skipped; an unclosed one runs to the end (lxml then refuses the file), which keeps
# the scan linear: with a bare "<!--.*?-->" a file of "<!--<!--..." took quadratic time.
_DOCTYPE = re.compile(r"<!--.*?(?:-->|\Z)|<!DOCTYPE", re.IGNORECASE | re.DOTALL)
_NEWLINE = re.compile(r"\r\n|\r|\n")
# Markup in a well-formed document (lxml has checked that): comments, CDATA, PIs, end tags, start tags.
_MARKUP = re.compile(
    r"""<!--.*?-->|<!\[CDATA\[.*?\]\]>|<\?.*?\?>|</([^\s>]+)\s*>"""
    r"""|<([^\s/>!?]+)((?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*(/?)>""",
    re.DOTALL,
)


def _hardened_parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        remove_pis=False,
        remove_blank_text=False,
        collect_ids=False,
    )


@dataclass
class Span:
    """Where one element sits in the text (offsets into ConfigDocument.text)."""

    name: str
    start: int  # "<" of the start tag
    start_tag_end: int  # just after ">" of the start tag
    close_start: int  # "<" of the end tag (== end for <x/>)
    end: int  # just after the element
    self_closing: bool
    line: int = 0


@dataclass
class ConfigDocument:
    """One config file: raw bytes, decoded text, the lxml tree and element spans."""

    path: str
    raw: bytes
    text: str
    encoding: str
    bom: bytes
    newline: str
    root: etree._Element
    spans: dict[etree._Element, Span] = field(default_factory=dict)
    _line_starts: list[int] = field(default_factory=list)

    @classmethod
    def read(cls, path: str | Path) -> ConfigDocument:
        name = str(path)
        try:
            raw = read_regular(path, MAX_CONFIG_BYTES)  # a FIFO or device would block or never end
        except FileNotFoundError:
            raise ConfigError("file does not exist", path=name) from None
        except NotRegularFile as exc:
            raise ConfigError(f"is {exc.kind}, not a config file", path=name) from None
        except OSError as exc:
            raise ConfigError(f"cannot read: {exc.strerror or exc}", path=name) from exc
        if len(raw) > MAX_CONFIG_BYTES:
            raise ConfigError(f"larger than {MAX_CONFIG_BYTES} bytes; not a NuGet.Config", path=name)
        return cls.parse(raw, name)

    @classmethod
    def parse(cls, raw: bytes, path: str) -> ConfigDocument:
        text, encoding, bom = _decode(raw, path)
        if max(text.count("<"), text.count("=")) > MAX_CONFIG_MARKUP:
            raise ConfigError(
                f"more than {MAX_CONFIG_MARKUP} tags or attributes; not a NuGet.Config (refused unparsed)", path=path
            )
        line_starts = [0] + [m.end() for m in _NEWLINE.finditer(text)]
        doctype = next((m for m in _DOCTYPE.finditer(text) if not m.group().startswith("<!--")), None)
        if doctype:
            line = bisect.bisect_right(line_starts, doctype.start())
            raise ConfigError(
                "a DOCTYPE is not allowed in a NuGet.Config (DTDs and entities are refused)",
                path=path,
                line=line,
            )
        if not text.strip():
            raise ConfigError("the file is empty; a NuGet.Config needs a <configuration> element", path=path)
        try:
            root = etree.fromstring(raw, _hardened_parser())
        except etree.XMLSyntaxError as exc:
            reason = " ".join(exc.msg.split())  # libxml2 messages may hold newlines; errors are one line
            raise ConfigError(f"not well-formed XML: {reason}", path=path, line=exc.lineno or None) from None
        tree = root.getroottree()
        if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:  # backstop for odd encodings
            raise ConfigError("a DOCTYPE is not allowed in a NuGet.Config", path=path)
        crlf = text.count("\r\n")
        newline = "\r\n" if crlf and crlf >= text.count("\n") - crlf else "\n"
        doc = cls(path, raw, text, encoding, bom, newline, root, {}, line_starts)
        try:
            doc._map_spans()
        except ConfigError:
            doc.spans.clear()  # still readable (lines from lxml); ConfigEditor refuses to edit it
        return doc

    # -- positions -------------------------------------------------------------------------------

    def line_at(self, offset: int) -> int:
        return bisect.bisect_right(self._line_starts, offset)

    def line_of(self, element: etree._Element) -> int:
        span = self.spans.get(element)
        return span.line if span else (element.sourceline or 0)

    def line_start(self, offset: int) -> int:
        return self._line_starts[self.line_at(offset) - 1]

    def _map_spans(self) -> None:
        """Pair each lxml element with the scanner's element at the same position in document order."""
        scanned: list[Span] = []
        stack: list[Span] = []
        for match in _MARKUP.finditer(self.text):
            close_name, open_name, _attrs, slash = match.groups()
            if close_name is not None:
                if not stack or stack[-1].name != close_name:
                    raise self._scan_error(match.start())
                span = stack.pop()
                span.close_start, span.end = match.start(), match.end()
            elif open_name is not None:
                span = Span(open_name, match.start(), match.end(), match.end(), match.end(), bool(slash))
                span.line = self.line_at(match.start())
                scanned.append(span)
                if not slash:
                    stack.append(span)
        elements = [e for e in self.root.iter() if isinstance(e.tag, str)]
        if stack or len(scanned) != len(elements):
            raise self._scan_error(0)
        for element, span in zip(elements, scanned):
            if local_name(element) != span.name.rpartition(":")[2]:
                raise self._scan_error(span.start)
            self.spans[element] = span

    def _scan_error(self, offset: int) -> ConfigError:
        return ConfigError("cannot map this file's markup precisely", path=self.path, line=self.line_at(offset) or None)

    @property
    def editable(self) -> bool:
        """Whether every element's offsets are known (the scanner and lxml agreed)."""
        return bool(self.spans)

    # -- writing ---------------------------------------------------------------------------------

    def encode(self, text: str) -> bytes:
        """Text back to bytes in the file's own encoding, with its BOM if it had one."""
        try:
            return self.bom + text.encode(self.encoding)
        except UnicodeEncodeError as exc:
            raise ConfigError(
                f"the new content cannot be written in the file's encoding {self.encoding}: {exc.reason}",
                path=self.path,
            ) from exc


def local_name(element: etree._Element) -> str:
    return etree.QName(element).localname


def _decode(raw: bytes, path: str) -> tuple[str, str, bytes]:
    for bom, codec in _BOMS:
        if raw.startswith(bom):
            body, encoding = raw[len(bom) :], codec
            break
    else:
        declared = _DECLARED_ENCODING.match(raw.lstrip())
        body, bom, encoding = raw, b"", declared.group(1).decode("ascii").lower() if declared else "utf-8"
    try:
        return body.decode(encoding), encoding, bom
    except (LookupError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot decode the file as {encoding}: {exc}", path=path) from None
