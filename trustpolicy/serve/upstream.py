"""The feeds behind the gate: a NuGet V3 source over HTTP(S), or a local folder of .nupkg files.

Both answer the same questions (versions of an id, download a package into a file, registration and
search documents already pointing at the gate). Failures are UpstreamError with the HTTP status the
gate answers (404 not there, 502 bad answer, 504 no answer) and a one-line reason.

An HTTP upstream is contacted only at the host of its configured service index, the hosts that
service index names for the resources the gate uses, and hosts allowed with --allow-host; a redirect
must stay on its host. Documents and packages are size-capped, every request has a deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.parse
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from lxml import etree

from trustpolicy._internal.graph.versions import try_parse_version
from trustpolicy.serve.protocol import (
    BadName,
    FeedUrls,
    Resources,
    Rewriter,
    leaf_identity,
    normalized_version,
    package_id,
    parse_service_index,
)

_INDEX_TTL = 600.0  # seconds an upstream's service index is reused (NuGet's own client: 40 minutes)
_FAILURE_TTL = 2.0  # seconds a failure to read it is repeated without asking again
_MAX_REDIRECTS = 5
_MAX_PAGES = 200  # registration pages fetched for one id
_CHUNK = 1 << 18
SEARCH_PARAMETERS = ("q", "skip", "take", "prerelease", "semVerLevel", "packageType", "id")
_MAX_PARAMETER = 256


class UpstreamError(Exception):
    """The upstream did not give what was asked: `status` is the gate's answer (404, 502, 504)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    timeout: float = 30.0  # connect, each read, and a whole JSON document
    download_timeout: float = 600.0  # a whole package
    max_package: int = 250 * 1024 * 1024  # nuget.org's own limit
    max_document: int = 64 * 1024 * 1024  # decompressed JSON


@dataclass(frozen=True)
class Capabilities:
    registration: bool
    search: bool
    autocomplete: bool
    signatures: bool


# -- NuGet V3 over HTTP ---------------------------------------------------------------------------------


class HttpFeed:
    kind = "v3"

    def __init__(self, name: str, url: str, session: aiohttp.ClientSession, limits: Limits,
                 allow_hosts: frozenset[str] = frozenset()) -> None:
        self.name = name
        self.url = url
        self.session = session
        self.limits = limits
        self.allow_hosts = allow_hosts
        self._resources: Resources | None = None
        self._fetched_at = 0.0
        self._failure: tuple[float, UpstreamError] | None = None  # the last failure, repeated for a moment
        self._lock = asyncio.Lock()
        self._hosts = {_host(url)} | set(allow_hosts)

    def __repr__(self) -> str:
        return f"HttpFeed({self.name!r}, {self.url!r})"

    @property
    def location(self) -> str:
        return self.url

    # -- what the upstream offers --

    async def resources(self) -> Resources:
        async with self._lock:  # one fetch at a time when it has expired
            if self._resources is None or time.monotonic() - self._fetched_at > _INDEX_TTL:
                if self._failure is not None and time.monotonic() - self._failure[0] < _FAILURE_TTL:
                    raise self._failure[1]  # clients waiting on a dead upstream do not queue up one timeout each
                try:
                    await self._load_resources()
                except UpstreamError as error:
                    self._failure = (time.monotonic(), error)
                    raise
                self._failure = None
            assert self._resources is not None
            return self._resources

    async def _load_resources(self) -> None:
        document = await self._json(self.url, "service index")
        if document is None:
            raise UpstreamError(502, f"upstream {self.name}: its service index was not found (HTTP 404)")
        try:
            resources = parse_service_index(document)
        except ValueError as error:
            raise UpstreamError(502, f"upstream {self.name}: {error}") from None
        if resources.flat is None and not resources.registrations:
            raise UpstreamError(502, f"upstream {self.name}: its service index lists neither "
                                     "PackageBaseAddress nor RegistrationsBaseUrl")
        self._hosts = {_host(self.url), *self.allow_hosts, *(_host(u) for u in resources.urls())}
        self._resources, self._fetched_at = resources, time.monotonic()

    async def capabilities(self) -> Capabilities:
        resources = await self.resources()
        return Capabilities(bool(resources.registrations), resources.search is not None,
                            resources.autocomplete is not None, resources.signatures is not None)

    # -- flat container --

    async def versions(self, lower_id: str) -> list[str] | None:
        resources = await self.resources()
        if resources.flat is not None:
            document = await self._json(f"{resources.flat}{lower_id}/index.json", "versions list")
            if document is None:
                return None
            listed = document.get("versions") if isinstance(document, dict) else None
            if not isinstance(listed, list):
                raise UpstreamError(502, f"upstream {self.name}: the versions list of {lower_id} has no versions array")
            return _unique(normalized_version(v) for v in listed)
        leaves = await self._leaves(lower_id)
        return None if leaves is None else list(leaves)

    async def download(self, lower_id: str, lower_version: str, dest: Path) -> None:
        """The package's bytes into `dest`, whole and within the size cap, or UpstreamError."""
        resources = await self.resources()
        if resources.flat is not None:
            url = f"{resources.flat}{lower_id}/{lower_version}/{lower_id}.{lower_version}.nupkg"
        else:  # a source with registration only: its packageContent is the download
            leaf = (await self._leaves(lower_id) or {}).get(lower_version)
            if leaf is None:
                raise UpstreamError(404, f"{lower_id} {lower_version} is not on upstream {self.name}")
            url = leaf
        with open(dest, "wb") as out:
            found = await self._stream(url, "package", out.write, cap=self.limits.max_package,
                                       deadline=self.limits.download_timeout, whole=None)
        if not found:
            raise UpstreamError(404, f"{lower_id} {lower_version} is not on upstream {self.name}")

    # -- registration and search, pointing at the gate --

    async def registration(self, hive: int, tail: str, urls: FeedUrls) -> Any | None:
        resources = await self.resources()
        if hive >= len(resources.registrations):
            return None
        document = await self._json(resources.registrations[hive] + tail, "registration document")
        if document is None:
            return None
        return Rewriter(urls, resources.registrations).document(document, leaf_identity(tail))

    async def search(self, query: Mapping[str, str], urls: FeedUrls) -> Any:
        resources = await self.resources()
        if resources.search is None:
            return None
        document = await self._json(_with_query(resources.search, query), "search result")
        return Rewriter(urls, resources.registrations).document(document) if document is not None else None

    async def autocomplete(self, query: Mapping[str, str], urls: FeedUrls) -> Any:
        resources = await self.resources()
        if resources.autocomplete is None:
            return None
        return await self._json(_with_query(resources.autocomplete, query), "autocomplete result")

    async def repository_signatures(self) -> Any:
        resources = await self.resources()
        if resources.signatures is None:
            return None
        document = await self._json(resources.signatures, "repository signatures")
        if not isinstance(document, dict):
            raise UpstreamError(502, f"upstream {self.name}: the repository signatures document is not a JSON object")
        return document

    # -- HTTP --

    async def _leaves(self, lower_id: str) -> dict[str, str] | None:
        """version -> packageContent from the registration index and its pages; None if the id is unknown."""
        resources = await self.resources()
        if not resources.registrations:
            return None
        index = await self._json(f"{resources.registrations[0]}{lower_id}/index.json", "registration index")
        if index is None:
            return None
        pages = index.get("items") if isinstance(index, dict) else None
        if not isinstance(pages, list) or len(pages) > _MAX_PAGES:
            raise UpstreamError(502, f"upstream {self.name}: the registration index of {lower_id} is malformed")
        leaves: dict[str, str] = {}
        for page in pages:
            items = page.get("items") if isinstance(page, dict) else None
            if items is None and isinstance(page, dict) and isinstance(page.get("@id"), str):
                fetched = await self._json(page["@id"], "registration page")
                items = fetched.get("items") if isinstance(fetched, dict) else None
            for leaf in items if isinstance(items, list) else ():
                entry = leaf.get("catalogEntry") if isinstance(leaf, dict) else None
                version = normalized_version(entry.get("version")) if isinstance(entry, dict) else None
                content = leaf.get("packageContent")
                if version is not None and isinstance(content, str):
                    leaves.setdefault(version, content)
        return leaves

    async def _json(self, url: str, what: str) -> Any | None:
        """A JSON document (None for 404), size-capped and within the document deadline."""
        chunks: list[bytes] = []
        timeout = self.limits.timeout
        if not await self._stream(url, what, chunks.append, cap=self.limits.max_document, deadline=timeout, whole=timeout):
            return None
        try:
            return json.loads(b"".join(chunks).decode("utf-8-sig"))
        except (UnicodeDecodeError, ValueError):
            raise UpstreamError(502, f"upstream {self.name}: the {what} is not valid JSON") from None

    async def _stream(self, url: str, what: str, sink: Callable[[bytes], object], *, cap: int, deadline: float,
                      whole: float | None) -> bool:
        """GET `url` into `sink`, at most `cap` bytes, all of it within `deadline` seconds; False for a 404.
        Every failure is an UpstreamError naming the upstream and `what` was fetched."""
        where = f"upstream {self.name}: the {what}"
        try:
            async with asyncio.timeout(deadline):
                response = await self._get(url, _timeouts(self.limits, whole=whole))
                async with response:
                    if response.status == 404:
                        return False
                    self._check_status(response, what)
                    if response.content_length is not None and response.content_length > cap:
                        raise UpstreamError(502, f"{where} is larger than the {cap}-byte limit")
                    size = 0
                    async for chunk in response.content.iter_chunked(_CHUNK):
                        size += len(chunk)
                        if size > cap:
                            raise UpstreamError(502, f"{where} is larger than the {cap}-byte limit")
                        sink(chunk)
        except UpstreamError:
            raise
        except TimeoutError:
            raise UpstreamError(504, f"{where} download did not finish in time ({deadline:g} s)") from None
        except aiohttp.ClientPayloadError:
            raise UpstreamError(502, f"{where} download was cut short") from None
        except (aiohttp.ClientError, OSError) as error:
            raise UpstreamError(502, f"{where} could not be fetched ({_describe(error)})") from None
        return True

    async def _get(self, url: str, timeout: aiohttp.ClientTimeout) -> aiohttp.ClientResponse:
        """GET following redirects only on the same host; only allowed hosts are contacted."""
        for _ in range(_MAX_REDIRECTS + 1):
            parts = urllib.parse.urlsplit(url)
            if parts.scheme not in ("http", "https") or _host(url) not in self._hosts:
                raise UpstreamError(502, f"upstream {self.name}: refused to contact {parts.scheme}://{parts.hostname} "
                                         "(not a configured host)")
            response = await self.session.get(url, allow_redirects=False, timeout=timeout)
            if response.status not in (301, 302, 303, 307, 308):
                return response
            location = response.headers.get("Location", "")
            response.release()
            target = urllib.parse.urljoin(url, location)
            if _host(target) != _host(url) and _host(target) not in self.allow_hosts:
                raise UpstreamError(502, f"upstream {self.name}: redirected to another host "
                                         f"({urllib.parse.urlsplit(target).hostname})")
            url = target
        raise UpstreamError(502, f"upstream {self.name}: too many redirects")

    def _check_status(self, response: aiohttp.ClientResponse, what: str) -> None:
        if response.status != 200:
            raise UpstreamError(502, f"upstream {self.name} answered HTTP {response.status} for the {what}")


def _timeouts(limits: Limits, *, whole: float | None) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=whole, sock_connect=limits.timeout, sock_read=limits.timeout)


def _host(url: str) -> str:
    return (urllib.parse.urlsplit(url).hostname or "").lower()


def _describe(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _with_query(url: str, query: Mapping[str, str]) -> str:
    kept = {k: v for k, v in query.items() if k in SEARCH_PARAMETERS and len(v) <= _MAX_PARAMETER}
    return f"{url}{'&' if '?' in url else '?'}{urllib.parse.urlencode(kept)}" if kept else url


def _unique(versions: Any) -> list[str]:
    return list(dict.fromkeys(v for v in versions if v is not None))


# -- a local folder feed ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalPackage:
    path: Path
    id: str
    version: str  # as the nuspec writes it
    description: str
    authors: str
    dependency_groups: tuple[dict[str, Any], ...]


@dataclass
class _Scan:
    at: float = 0.0
    packages: dict[str, dict[str, LocalPackage]] = field(default_factory=dict)  # lower id -> lower version -> package


class FolderFeed:
    """A local feed: *.nupkg in the folder or one level down (flat), or {id}/{version}/ (hierarchical)."""

    kind = "folder"
    _RESCAN = 2.0  # seconds a listing is reused
    _MAX_NUSPEC = 1 << 20

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.root = root
        self._scan = _Scan()
        self._seen: dict[str, tuple[tuple[int, int], LocalPackage | None]] = {}
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"FolderFeed({self.name!r}, {str(self.root)!r})"

    @property
    def location(self) -> str:
        return str(self.root)

    async def capabilities(self) -> Capabilities:
        return Capabilities(registration=True, search=True, autocomplete=True, signatures=False)

    async def _packages(self) -> dict[str, dict[str, LocalPackage]]:
        async with self._lock:
            if time.monotonic() - self._scan.at > self._RESCAN:
                packages = await asyncio.get_running_loop().run_in_executor(None, self._read_folder)
                self._scan = _Scan(time.monotonic(), packages)
            return self._scan.packages

    def _read_folder(self) -> dict[str, dict[str, LocalPackage]]:
        if not self.root.is_dir():
            raise UpstreamError(502, f"upstream {self.name}: the folder {self.root} does not exist")
        found: dict[str, dict[str, LocalPackage]] = {}
        for pattern in ("*.nupkg", "*/*.nupkg", "*/*/*.nupkg"):
            for path in sorted(self.root.glob(pattern)):
                package = self._read_package(path)
                if package is not None:
                    version = normalized_version(package.version)
                    if version is not None:
                        found.setdefault(package.id.lower(), {}).setdefault(version, package)
        return found

    def _read_package(self, path: Path) -> LocalPackage | None:
        try:
            info = path.stat()
        except OSError:
            return None
        stamp = (info.st_size, info.st_mtime_ns)
        seen = self._seen.get(str(path))
        if seen is not None and seen[0] == stamp:
            return seen[1]
        package = _read_nuspec(path, self._MAX_NUSPEC)
        self._seen[str(path)] = (stamp, package)
        return package

    async def versions(self, lower_id: str) -> list[str] | None:
        versions = (await self._packages()).get(lower_id)
        return sorted(versions, key=version_key) if versions else None

    async def download(self, lower_id: str, lower_version: str, dest: Path) -> None:
        package = (await self._packages()).get(lower_id, {}).get(lower_version)
        if package is None:
            raise UpstreamError(404, f"{lower_id} {lower_version} is not in folder feed {self.name}")
        try:
            await asyncio.get_running_loop().run_in_executor(None, _copy, package.path, dest)
        except OSError as error:
            raise UpstreamError(502, f"upstream {self.name}: {package.path.name} cannot be read "
                                     f"({error.strerror or error})") from None

    async def registration(self, hive: int, tail: str, urls: FeedUrls) -> Any | None:
        packages = await self._packages()
        parts = tail.split("/")
        if hive != 0 or len(parts) != 2:
            return None
        leaf = leaf_identity(tail)
        if leaf is not None:
            package = packages.get(leaf[0], {}).get(leaf[1])
            if package is None:
                return None
            return {"@id": urls.registration_leaf(*leaf), "catalogEntry": urls.registration_leaf(*leaf), "listed": True,
                    "packageContent": urls.nupkg(*leaf), "registration": urls.registration_index(leaf[0])}
        if parts[1] != "index.json":
            return None
        try:
            lower_id = package_id(parts[0])
        except BadName:
            return None
        versions = packages.get(lower_id)
        if not versions:
            return None
        ordered = sorted(versions, key=version_key)
        items = [_leaf(urls, lower_id, v, versions[v]) for v in ordered]
        index = urls.registration_index(lower_id)
        page = {"@id": f"{index}#page/{ordered[0]}/{ordered[-1]}", "count": len(items), "lower": ordered[0],
                "upper": ordered[-1], "parent": index, "items": items}
        return {"@id": index, "count": 1, "items": [page]}

    async def search(self, query: Mapping[str, str], urls: FeedUrls) -> Any:
        packages = await self._packages()
        text = query.get("q", "").strip().lower()
        prerelease = query.get("prerelease", "false").lower() == "true"
        skip, take = _number(query.get("skip"), 0), min(_number(query.get("take"), 20), 1000)
        data = []
        for lower_id in sorted(packages):
            chosen = {v: p for v, p in packages[lower_id].items() if prerelease or "-" not in v}
            if not chosen or (text and text not in lower_id):
                continue
            ordered = sorted(chosen, key=version_key)
            latest = chosen[ordered[-1]]
            data.append({
                "@id": urls.registration_index(lower_id), "@type": "Package", "registration": urls.registration_index(lower_id),
                "id": latest.id, "version": latest.version, "description": latest.description, "authors": [latest.authors],
                "totalDownloads": 0, "verified": False,
                "versions": [{"version": chosen[v].version, "downloads": 0, "@id": urls.registration_leaf(lower_id, v)}
                             for v in ordered],
            })
        return {"totalHits": len(data), "data": data[skip: skip + take]}

    async def autocomplete(self, query: Mapping[str, str], urls: FeedUrls) -> Any:
        packages = await self._packages()
        if "id" in query:
            versions = packages.get(query["id"].lower(), {})
            ordered = sorted(versions, key=version_key)
            return {"totalHits": len(ordered), "data": [versions[v].version for v in ordered]}
        text = query.get("q", "").strip().lower()
        ids = [packages[i][next(iter(packages[i]))].id for i in sorted(packages) if text in i]
        skip, take = _number(query.get("skip"), 0), min(_number(query.get("take"), 20), 1000)
        return {"totalHits": len(ids), "data": ids[skip: skip + take]}

    async def repository_signatures(self) -> Any:
        return None


def _leaf(urls: FeedUrls, lower_id: str, version: str, package: LocalPackage) -> dict[str, Any]:
    leaf_url = urls.registration_leaf(lower_id, version)
    entry: dict[str, Any] = {"@id": leaf_url, "id": package.id, "version": package.version, "listed": True,
                             "description": package.description, "authors": package.authors,
                             "packageContent": urls.nupkg(lower_id, version)}
    if package.dependency_groups:
        entry["dependencyGroups"] = list(package.dependency_groups)
    return {"@id": leaf_url, "catalogEntry": entry, "packageContent": urls.nupkg(lower_id, version),
            "registration": urls.registration_index(lower_id)}


def version_key(version: str) -> tuple[Any, ...]:
    """SemVer order of a normalized version string (release after its pre-releases)."""
    parsed = try_parse_version(version)
    if parsed is None:
        return (-1,)
    labels = tuple((0, int(label), "") if label.isdigit() else (1, 0, label.lower()) for label in parsed.release_labels)
    return (parsed.major, parsed.minor, parsed.patch, parsed.revision, not labels, labels)


def _number(text: str | None, default: int) -> int:
    return int(text) if text is not None and text.isdigit() and len(text) < 10 else default


def _copy(source: Path, dest: Path) -> None:
    with open(source, "rb") as src, open(dest, "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)


def _read_nuspec(path: Path, limit: int) -> LocalPackage | None:
    """Id, version, description, authors and dependencies from a package's manifest; None if unreadable."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = [i for i in archive.infolist() if "/" not in i.filename and i.filename.lower().endswith(".nuspec")]
            if len(infos) != 1 or infos[0].file_size > limit:
                return None
            with archive.open(infos[0]) as handle:
                data = handle.read(limit + 1)
        if len(data) > limit:
            return None
        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
        root = etree.fromstring(data, parser)
        if root.getroottree().docinfo.doctype:
            return None
    except (OSError, zipfile.BadZipFile, etree.LxmlError, ValueError, RuntimeError, NotImplementedError):
        return None
    metadata = next((c for c in root if _local(c) == "metadata"), None)
    if metadata is None:
        return None
    fields = {_local(c): (c.text or "").strip() for c in metadata if isinstance(c.tag, str)}
    if not fields.get("id") or not fields.get("version"):
        return None
    try:
        package_id(fields["id"])
    except BadName:
        return None
    return LocalPackage(path, fields["id"], fields["version"], fields.get("description", ""), fields.get("authors", ""),
                        _dependency_groups(metadata))


def _dependency_groups(metadata: Any) -> tuple[dict[str, Any], ...]:
    dependencies = next((c for c in metadata if _local(c) == "dependencies"), None)
    if dependencies is None:
        return ()

    def listed(element: Any) -> list[dict[str, str]]:
        return [{"id": d.get("id"), **({"range": d.get("version")} if d.get("version") else {})}
                for d in element if _local(d) == "dependency" and d.get("id")]

    groups = [{**({"targetFramework": g.get("targetFramework")} if g.get("targetFramework") else {}),
               "dependencies": listed(g)} for g in dependencies if _local(g) == "group"]
    flat = listed(dependencies)
    if flat:
        groups.append({"dependencies": flat})
    return tuple(groups)


def _local(element: Any) -> str:
    return etree.QName(element).localname if isinstance(element.tag, str) else ""


def feed_from_source(name: str, value: str, session: aiohttp.ClientSession, limits: Limits,
                     allow_hosts: frozenset[str], base: Path | None = None) -> HttpFeed | FolderFeed:
    """A feed from a NuGet.Config packageSources value or an --upstream URL: http(s) or a folder."""
    scheme = urllib.parse.urlsplit(value).scheme.lower()
    if scheme in ("http", "https"):
        return HttpFeed(name, value, session, limits, allow_hosts)
    if scheme == "file":
        value = urllib.parse.unquote(urllib.parse.urlsplit(value).path)
    path = Path(os.path.expanduser(value))
    if not path.is_absolute() and base is not None:
        path = base / path
    return FolderFeed(name, path)
