"""The NuGet V3 protocol as the gate speaks it: names, the service index and URL rewriting.

- Ids follow NuGet's rule (word characters separated by single dots or dashes, at most 100), limited
  to ASCII so that lower-casing is the same everywhere; versions must be in the normalized lower-case
  form clients put in flat-container URLs.
- The gate's own service index lists each resource under every @type string clients look up
  (nuget.exe 5.8 knows only RegistrationsBaseUrl/3.4.0, /3.0.0-beta and /Versioned).
- Registration and search documents from an upstream keep their shape; every URL under one of the
  upstream's registration bases is moved under the gate, and every `packageContent` is replaced by
  the gate's own download URL (or removed when the package it names cannot be told): nuget.exe
  downloads from `packageContent`, so an upstream URL left there would be a way around the gate.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import dataclass
from typing import Any

from trustpolicy._internal.graph.versions import try_parse_version

MAX_ID_LENGTH = 100
MAX_VERSION_LENGTH = 64
_ID = re.compile(r"[A-Za-z0-9_]+(?:[.-][A-Za-z0-9_]+)*\Z")
_FEED_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._ -]{0,63}\Z")
# What may follow a registration base in a URL the gate passes through (page and leaf paths).
_TAIL = re.compile(r"[A-Za-z0-9_.+-]+(?:/[A-Za-z0-9_.+-]+){0,7}\Z")
MAX_TAIL_LENGTH = 512

SERVICE_INDEX_VERSION = "3.0.0"
FLAT_TYPES = ("PackageBaseAddress/3.0.0",)
# Upstream registration hives, preferred first: SemVer 2 and gzip (3.6.0) over the older ones.
REGISTRATION_TYPES = (
    "RegistrationsBaseUrl/3.6.0",
    "RegistrationsBaseUrl/Versioned",
    "RegistrationsBaseUrl/3.4.0",
    "RegistrationsBaseUrl/3.0.0-rc",
    "RegistrationsBaseUrl/3.0.0-beta",
    "RegistrationsBaseUrl",
)
SEARCH_TYPES = (
    "SearchQueryService/3.5.0",
    "SearchQueryService/Versioned",
    "SearchQueryService/3.4.0",
    "SearchQueryService/3.0.0-rc",
    "SearchQueryService/3.0.0-beta",
    "SearchQueryService",
)
AUTOCOMPLETE_TYPES = (
    "SearchAutocompleteService/3.5.0",
    "SearchAutocompleteService/Versioned",
    "SearchAutocompleteService/3.0.0-rc",
    "SearchAutocompleteService/3.0.0-beta",
    "SearchAutocompleteService",
)
SIGNATURES_TYPES = ("RepositorySignatures/5.0.0", "RepositorySignatures/4.9.0", "RepositorySignatures/4.7.0")

# What the gate advertises: every name a client in use looks up (older clients fail on a source
# whose registration resource is listed under none of the names they know).
_ADVERTISED = {
    "flat/": ("PackageBaseAddress/3.0.0",),
    "registration/0/": ("RegistrationsBaseUrl", "RegistrationsBaseUrl/3.0.0-beta", "RegistrationsBaseUrl/3.0.0-rc",
                        "RegistrationsBaseUrl/3.4.0", "RegistrationsBaseUrl/3.6.0", "RegistrationsBaseUrl/Versioned"),
    "search": ("SearchQueryService", "SearchQueryService/3.0.0-beta", "SearchQueryService/3.0.0-rc",
               "SearchQueryService/3.4.0", "SearchQueryService/3.5.0", "SearchQueryService/Versioned"),
    "autocomplete": ("SearchAutocompleteService", "SearchAutocompleteService/3.0.0-beta",
                     "SearchAutocompleteService/3.0.0-rc", "SearchAutocompleteService/3.5.0",
                     "SearchAutocompleteService/Versioned"),
    "repository-signatures/index.json": ("RepositorySignatures/5.0.0",),
}


class BadName(ValueError):
    """A package id, version or path the gate refuses to look up (HTTP 400)."""


def package_id(text: str) -> str:
    """The lower-case id, or BadName."""
    if len(text) > MAX_ID_LENGTH:
        raise BadName(f"package id longer than {MAX_ID_LENGTH} characters")
    if not _ID.match(text):
        raise BadName("not a valid package id")
    return text.lower()


def package_version(text: str) -> str:
    """The version as flat-container URLs carry it (normalized, lower case), or BadName."""
    if len(text) > MAX_VERSION_LENGTH:
        raise BadName(f"version longer than {MAX_VERSION_LENGTH} characters")
    parsed = try_parse_version(text)
    if parsed is None or text != text.strip():
        raise BadName("not a valid version")
    normalized = parsed.normalized.lower()
    if normalized != text.lower():
        raise BadName(f"version not in normalized form (use {normalized})")
    return normalized


def normalized_version(text: Any) -> str | None:
    """The lower-case normalized form of a version string from a document, None if it is not one."""
    if not isinstance(text, str) or len(text) > MAX_VERSION_LENGTH:
        return None
    parsed = try_parse_version(text)
    return parsed.normalized.lower() if parsed is not None else None


def is_feed_name(name: str) -> bool:
    """Names the gate can put in a URL path and a cache folder name."""
    return bool(_FEED_NAME.match(name)) and not name.endswith((" ", "."))


def registration_tail(text: str) -> str:
    """The part of a registration URL after its base (`{id}/index.json`, pages, leaves), or BadName."""
    if len(text) > MAX_TAIL_LENGTH or not _TAIL.match(text) or not text.endswith(".json"):
        raise BadName("not a registration document path")
    if any(part in (".", "..") or part.startswith("..") for part in text.split("/")):
        raise BadName("not a registration document path")
    return text


def leaf_identity(tail: str) -> tuple[str, str] | None:
    """(id, version) of a registration leaf path `{id}/{version}.json`, None for other paths."""
    parts = tail.split("/")
    if len(parts) != 2 or parts[1] == "index.json":
        return None
    try:
        return package_id(parts[0]), package_version(parts[1][: -len(".json")])
    except BadName:
        return None


# -- the gate's URLs ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class FeedUrls:
    """The URLs of one feed as clients see them; `base` ends in /v3/."""

    base: str

    @classmethod
    def of(cls, public: str, feed: str) -> FeedUrls:
        return cls(f"{public.rstrip('/')}/feeds/{urllib.parse.quote(feed, safe='')}/v3/")

    @property
    def index(self) -> str:
        return self.base + "index.json"

    @property
    def flat(self) -> str:
        return self.base + "flat/"

    def registration(self, hive: int = 0) -> str:
        return f"{self.base}registration/{hive}/"

    @property
    def search(self) -> str:
        return self.base + "search"

    @property
    def autocomplete(self) -> str:
        return self.base + "autocomplete"

    def nupkg(self, lower_id: str, lower_version: str) -> str:
        return f"{self.flat}{lower_id}/{lower_version}/{lower_id}.{lower_version}.nupkg"

    def registration_index(self, lower_id: str) -> str:
        return f"{self.registration()}{lower_id}/index.json"

    def registration_leaf(self, lower_id: str, lower_version: str) -> str:
        return f"{self.registration()}{lower_id}/{lower_version}.json"


def service_index(urls: FeedUrls, *, registration: bool, search: bool, autocomplete: bool, signatures: bool) -> dict[str, Any]:
    """The gate's service index for one feed: only what it serves, no push."""
    offered = {"flat/": True, "registration/0/": registration, "search": search, "autocomplete": autocomplete,
               "repository-signatures/index.json": signatures}
    resources = [
        {"@id": urls.base + path, "@type": type_name, "comment": _COMMENTS[type_name.split("/")[0]]}
        for path, types in _ADVERTISED.items()
        if offered[path]
        for type_name in types
    ]
    return {"version": SERVICE_INDEX_VERSION, "resources": resources}


_COMMENTS = {
    "PackageBaseAddress": "Package contents, each verified by trustpolicy before it is served",
    "RegistrationsBaseUrl": "Package metadata; every download URL points at this gate",
    "SearchQueryService": "Search, passed through from the upstream feed",
    "SearchAutocompleteService": "Autocomplete, passed through from the upstream feed",
    "RepositorySignatures": "The upstream's repository signing certificates",
}


# -- an upstream's service index -----------------------------------------------------------------------


@dataclass(frozen=True)
class Resources:
    """The resources of an upstream's service index the gate uses."""

    flat: str | None
    registrations: tuple[str, ...]  # preferred first; the gate's hive k maps to registrations[k]
    search: str | None
    autocomplete: str | None
    signatures: str | None

    def urls(self) -> list[str]:
        return [u for u in (self.flat, *self.registrations, self.search, self.autocomplete, self.signatures) if u]


def parse_service_index(document: Any) -> Resources:
    """The resources of a V3 service index; ValueError saying what is wrong."""
    if not isinstance(document, dict) or not isinstance(document.get("resources"), list):
        raise ValueError("not a NuGet V3 service index (no resources list)")
    version = document.get("version")
    if not isinstance(version, str) or not version.startswith("3."):
        raise ValueError(f"unsupported service index version {version!r}")
    offered: dict[str, str] = {}
    for resource in document["resources"]:
        if not isinstance(resource, dict) or not isinstance(resource.get("@id"), str):
            continue
        url = resource["@id"]
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            continue  # relative or odd URLs are skipped, as NuGet does
        types = resource.get("@type")
        for type_name in types if isinstance(types, list) else [types]:
            if isinstance(type_name, str):
                offered.setdefault(type_name, url)

    def first(types: tuple[str, ...], *, folder: bool = False) -> str | None:
        url = next((offered[t] for t in types if t in offered), None)
        return url.rstrip("/") + "/" if url and folder else url

    registrations = tuple(dict.fromkeys(offered[t].rstrip("/") + "/" for t in REGISTRATION_TYPES if t in offered))
    return Resources(
        flat=first(FLAT_TYPES, folder=True),
        registrations=registrations,
        search=first(SEARCH_TYPES),
        autocomplete=first(AUTOCOMPLETE_TYPES),
        signatures=first(SIGNATURES_TYPES),
    )


# -- rewriting upstream documents ----------------------------------------------------------------------

_DROP = object()


class Rewriter:
    """Moves an upstream's registration URLs under the gate and points every download at it."""

    def __init__(self, urls: FeedUrls, registrations: tuple[str, ...]) -> None:
        self.urls = urls
        self.registrations = registrations

    def url(self, value: str) -> str | None:
        """The gate's URL for an upstream registration URL; None when it is not under one."""
        for hive, base in enumerate(self.registrations):
            if value.startswith(base):
                return self.urls.registration(hive) + value[len(base):]
        return None

    def document(self, node: Any, leaf: tuple[str, str] | None = None) -> Any:
        """A registration index, page, leaf or search result, rewritten. `leaf`: the (id, version)
        a leaf document is about (it names no id of its own)."""
        result = self._walk(node, leaf)
        return {} if result is _DROP else result

    def _walk(self, node: Any, leaf: tuple[str, str] | None = None) -> Any:
        if isinstance(node, list):
            return [item for item in (self._walk(i) for i in node) if item is not _DROP]
        if isinstance(node, str):
            return self.url(node) or node
        if not isinstance(node, dict):
            return node
        out = {key: self._walk(value) for key, value in node.items() if key != "packageContent"}
        if _is_unfetched_page(node) and self.url(node["@id"]) is None:
            return _DROP  # a page the client would fetch straight from the upstream
        if "packageContent" in node:
            identity = _identity(node) or leaf
            if identity is None:
                return _DROP  # a download the gate cannot route through itself
            out["packageContent"] = self.urls.nupkg(*identity)
        return out


def _is_unfetched_page(node: dict[str, Any]) -> bool:
    return "lower" in node and "upper" in node and "items" not in node and isinstance(node.get("@id"), str)


def _identity(node: dict[str, Any]) -> tuple[str, str] | None:
    catalog = node.get("catalogEntry")
    entry: dict[str, Any] = catalog if isinstance(catalog, dict) else node
    package, version = entry.get("id"), normalized_version(entry.get("version"))
    if not isinstance(package, str) or version is None:
        return None
    try:
        return package_id(package), version
    except BadName:
        return None
