"""Surgical edits of a NuGet.Config: splice text, keep every other byte.

Each edit replaces one span of the decoded text and re-parses the result, so the next edit sees
fresh offsets and a broken intermediate state is caught at once. Comments, other sections,
attribute order and indentation outside the edited span stay byte-identical; the file keeps its
encoding, BOM and line endings. save() checks the result with the full NuGet rules before an
atomic replace (fileutil.write_atomic: a temporary file beside the file, then a rename; a symbolic
link is kept and the file it points to is the one replaced).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape

from lxml import etree

from trustpolicy._internal.config.document import ConfigDocument, local_name
from trustpolicy._internal.config.hierarchy import NUGET_ORG_SOURCE
from trustpolicy._internal.config.nugetconfig import SIGNERS, ConfigFile, TrustedSigner, parse_document
from trustpolicy._internal.fileutil import write_atomic
from trustpolicy.errors import ConfigError

_ATTRIBUTE_ESCAPES = {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"}
_NEWLINE = re.compile(r"\r\n|\r|\n")
MINIMAL_DOCUMENT = '<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n</configuration>\n'


@dataclass
class Node:
    """An element to write: name, attributes in order, child nodes or text."""

    name: str
    attributes: list[tuple[str, str]] = field(default_factory=list)
    children: list[Node] = field(default_factory=list)
    text: str | None = None

    def render(self, indent: str, unit: str, newline: str) -> str:
        """The element as text; its first line carries no indent (the caller places it)."""
        attrs = "".join(f' {name}="{escape(value, _ATTRIBUTE_ESCAPES)}"' for name, value in self.attributes)
        if self.text is not None:
            return f"<{self.name}{attrs}>{escape(self.text)}</{self.name}>"
        if not self.children:
            return f"<{self.name}{attrs} />"
        inner = indent + unit
        lines = [f"<{self.name}{attrs}>"]
        lines += [inner + child.render(inner, unit, newline) for child in self.children]
        lines.append(f"{indent}</{self.name}>")
        return newline.join(lines)


def certificate_node(fingerprint: str, hash_algorithm: str, allow_untrusted_root: bool) -> Node:
    return Node(
        "certificate",
        [
            ("fingerprint", fingerprint),
            ("hashAlgorithm", hash_algorithm),
            ("allowUntrustedRoot", "true" if allow_untrusted_root else "false"),
        ],
    )


def signer_node(
    kind: str,
    name: str,
    certificates: list[Node],
    service_index: str | None = None,
    owners: str | None = None,
) -> Node:
    attributes = [("name", name)] + ([("serviceIndex", service_index)] if service_index is not None else [])
    children = list(certificates) + ([Node("owners", text=owners)] if owners else [])
    return Node(kind, attributes, children)


class ConfigEditor:
    """Edits one file in memory; save() writes it. A missing file starts from `template`."""

    def __init__(self, path: str | Path, *, template: str = MINIMAL_DOCUMENT) -> None:
        self.path = str(path)
        self.created = not Path(path).exists()
        self.doc = ConfigDocument.parse(template.encode("utf-8"), self.path) if self.created else ConfigDocument.read(path)
        self.original = self.doc.raw
        parse_document(self.doc)  # a file NuGet would refuse is not edited either
        self._require_editable()

    @classmethod
    def user_file(cls, path: str | Path) -> ConfigEditor:
        """The user-level file; if NuGet has not created it yet, start from what NuGet would write."""
        key, url = NUGET_ORG_SOURCE
        template = (
            '<?xml version="1.0" encoding="utf-8"?>\n<configuration>\n  <packageSources>\n'
            f'    <add key="{key}" value="{url}" protocolVersion="3" />\n  </packageSources>\n</configuration>\n'
        )
        return cls(path, template=template)

    @property
    def changed(self) -> bool:
        return self.created or self.doc.raw != self.original

    # -- finding things ----------------------------------------------------------------------

    def section(self, name: str) -> etree._Element | None:
        return next((c for c in self.doc.root if isinstance(c.tag, str) and local_name(c) == name), None)

    def find_signer(self, signer: TrustedSigner) -> etree._Element:
        """The element a parsed signer came from (same kind, name and line)."""
        section = self.section(SIGNERS)
        for child in _element_children(section):
            if (
                local_name(child).lower() == signer.kind
                and child.get("name") == signer.name
                and (self.doc.line_of(child) or None) == signer.source.line
            ):
                return child
        raise ConfigError(f"cannot find {signer.kind} {signer.name!r} in the file any more", path=self.path, line=signer.source.line)

    def certificates_of(self, element: etree._Element) -> list[etree._Element]:
        return [c for c in _element_children(element) if local_name(c).lower() == "certificate"]

    # -- edits -------------------------------------------------------------------------------

    def add_signer(self, node: Node) -> None:
        self.add_to_section(SIGNERS, node)

    def add_to_section(self, name: str, node: Node) -> None:
        """Append `node` to section `name`, creating the section at the end of the file if needed."""
        section = self.section(name)
        if section is None:
            self.append_child(self.doc.root, Node(name, children=[node]))
        else:
            self.append_child(section, node)

    def add_certificate(self, signer: etree._Element, node: Node) -> None:
        certificates = self.certificates_of(signer)
        if certificates:
            self.insert_after(certificates[-1], node)
        else:
            self.append_child(signer, node)

    def replace_certificates(self, signer: TrustedSigner, keep: set[str], add: list[Node]) -> None:
        """Keep the signer's certificates whose upper-case fingerprint is in `keep` (byte-identical),
        add `add` after the last kept one, and remove the rest."""
        certificates = self.certificates_of(self.find_signer(signer))
        if add:
            kept = [c for c in certificates if _fingerprint(c) in keep]
            self.insert_after((kept or certificates)[-1], *add)
        wanted = keep | {value.upper() for node in add for name, value in node.attributes if name == "fingerprint"}
        while doomed := [c for c in self.certificates_of(self.find_signer(signer)) if _fingerprint(c) not in wanted]:
            self.remove(doomed[-1])  # the last first: earlier offsets stay valid in the fresh parse

    def append_child(self, parent: etree._Element, node: Node) -> None:
        span = self.doc.spans[parent]
        text, nl, unit = self.doc.text, self.doc.newline, self.indent_unit()
        parent_indent = self.indent_of(parent) or ""
        if span.self_closing:
            child_indent = parent_indent + unit
            open_tag = re.sub(r"\s*/>$", ">", text[span.start : span.end])
            block = f"{open_tag}{nl}{child_indent}{node.render(child_indent, unit, nl)}{nl}{parent_indent}</{span.name}>"
            self.splice(span.start, span.end, block)
            return
        indents = [indent for c in _element_children(parent) if (indent := self.indent_of(c)) is not None]
        child_indent = indents[-1] if indents else parent_indent + unit
        content_end = span.start_tag_end + len(text[span.start_tag_end : span.close_start].rstrip())
        rendered = node.render(child_indent, unit, nl)
        if "\n" in text[content_end : span.close_start] or "\r" in text[content_end : span.close_start]:
            self.splice(content_end, content_end, f"{nl}{child_indent}{rendered}")
        else:
            self.splice(content_end, span.close_start, f"{nl}{child_indent}{rendered}{nl}{parent_indent}")

    def insert_after(self, sibling: etree._Element, *nodes: Node) -> None:
        """Place nodes right after `sibling`, each on its own line at the sibling's indentation."""
        span = self.doc.spans[sibling]
        indent = self.indent_of(sibling)
        unit, nl = self.indent_unit(), self.doc.newline
        if indent is None:
            block = "".join(node.render("", unit, nl) for node in nodes)
        else:
            block = "".join(f"{nl}{indent}{node.render(indent, unit, nl)}" for node in nodes)
        self.splice(span.end, span.end, block)

    def remove(self, element: etree._Element) -> None:
        """Delete the element; when it has its line(s) to itself, delete those lines too."""
        span = self.doc.spans[element]
        text = self.doc.text
        line_start = self.doc.line_start(span.start)
        line_end = len(text) if (m := _NEWLINE.search(text, span.end)) is None else m.start()
        if text[line_start : span.start].strip() or text[span.end : line_end].strip():
            self.splice(span.start, span.end, "")
            return
        if line_start > 0:  # take the newline that ends the previous line, keep ours
            cut = line_start - (2 if text[line_start - 2 : line_start] == "\r\n" else 1)
            self.splice(cut, span.end, "")
        else:
            after = m.end() if m else line_end
            self.splice(0, after, "")

    def splice(self, start: int, end: int, replacement: str) -> None:
        new_text = self.doc.text[:start] + replacement + self.doc.text[end:]
        self.doc = ConfigDocument.parse(self.doc.encode(new_text), self.path)
        self._require_editable()

    def _require_editable(self) -> None:
        if not self.doc.editable:
            raise ConfigError("trustpolicy cannot locate this file's elements precisely enough to edit it safely; edit it by hand", path=self.path)

    # -- layout ------------------------------------------------------------------------------

    def indent_of(self, element: etree._Element) -> str | None:
        """The whitespace before the element on its line, or None if something else precedes it."""
        span = self.doc.spans[element]
        before = self.doc.text[self.doc.line_start(span.start) : span.start]
        return before if not before.strip() else None

    def indent_unit(self) -> str:
        """One level of indentation as the file uses it (two spaces when nothing tells)."""
        for parent in self.doc.root.iter():
            if not isinstance(parent.tag, str):
                continue
            outer = self.indent_of(parent)
            for child in _element_children(parent):
                inner = self.indent_of(child)
                if outer is not None and inner is not None and inner.startswith(outer) and len(inner) > len(outer):
                    return inner[len(outer) :]
        return "\t" if re.search(r"^\t", self.doc.text, re.MULTILINE) else "  "

    # -- saving ------------------------------------------------------------------------------

    def check(self) -> ConfigFile:
        """The edited document under the full NuGet rules (raises ConfigError if we broke it)."""
        return parse_document(self.doc)

    def save(self) -> bool:
        """Write the file if anything changed. Returns whether it wrote."""
        if not self.changed:
            return False
        self.check()
        try:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # e.g. a path through a regular file
            raise ConfigError(f"cannot create its folder: {exc.strerror or exc}", path=self.path) from None
        write_atomic(self.path, self.doc.raw)
        return True


def _element_children(element: etree._Element | None) -> list[etree._Element]:
    return [] if element is None else [c for c in element if isinstance(c.tag, str)]


def _fingerprint(element: etree._Element) -> str:
    return (element.get("fingerprint") or "").upper()

