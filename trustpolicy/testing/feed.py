"""A NuGet V3 feed on 127.0.0.1 for tests, with knobs for every way an upstream can fail.

    with FeedServer() as feed:
        feed.add(Path("Contoso.Lib.1.2.0.nupkg"))
        feed.index_url                     # http://127.0.0.1:PORT/v3/index.json
        feed.faults["contoso.lib"] = "truncate"

It serves what nuget.org serves for a restore: the service index, the flat container (versions and
.nupkg), registration in two hives (3.6.0 with a page that is not inlined, 3.0.0-beta inlined), leaf
documents, search, autocomplete and a RepositorySignatures document. Every `packageContent`,
`registration` and page URL points at this server, as an upstream's do. `requests` records each path.

Faults apply to a package's .nupkg (keyed by lower-case id; knobs may change while it runs):
  "timeout"              no answer until the server stops
  "stall"                headers and half the body, then nothing
  "reset"                TCP RST instead of an answer
  "truncate"             Content-Length of the whole file, half the bytes, then close
  "oversize-declared"    a Content-Length of `huge_bytes`
  "oversize-stream"      `huge_bytes` without a Content-Length (ends when the connection closes)
  "garbage"              200 with bytes that are not a zip archive
  "redirect-other-host"  302 to the same path on http://localhost:PORT (another host name)
  "redirect-same-host"   302 to another path on this host that serves the file
  "status-NNN"           that HTTP status (e.g. status-503)
  "wrong-package:ID/V"   the bytes of package ID V instead
  "slow"                 the file after `delay` seconds
  "trickle"              the file in 64 KB pieces, `delay` seconds apart
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from trustpolicy._internal.archive import PackageArchive
from trustpolicy._internal.graph.versions import parse_version
from trustpolicy.testing.server import LoopbackServer

__all__ = ["FeedPackage", "FeedServer"]


@dataclass(frozen=True)
class FeedPackage:
    path: Path
    id: str
    version: str  # normalized
    dependencies: tuple[tuple[str, str], ...] = ()  # (id, range)

    @property
    def key(self) -> tuple[str, str]:
        return self.id.lower(), self.version.lower()


class FeedServer(LoopbackServer):
    def __init__(self, *, flat: bool = True, signatures: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.flat = flat  # False: a feed with registration only (downloads via packageContent)
        self.signatures = signatures  # the RepositorySignatures document to offer, if any
        self.packages: dict[tuple[str, str], FeedPackage] = {}
        self.faults: dict[str, str] = {}
        self.delay = 0.5
        self.huge_bytes = 8 * 1024 * 1024
        self.content_base: str | None = None  # another origin for packageContent URLs (e.g. http://localhost:PORT)
        self.requests: list[str] = []
        self._lock = threading.Lock()

    def add(self, path: Path, dependencies: tuple[tuple[str, str], ...] = ()) -> FeedPackage:
        package_id, version = PackageArchive.open(path).read_nuspec()
        package = FeedPackage(Path(path), package_id, parse_version(version).normalized, dependencies)
        self.packages[package.key] = package
        return package

    @property
    def index_url(self) -> str:
        return f"{self.base_url}/v3/index.json"

    def downloads(self, package_id: str, version: str) -> int:
        """How many times the .nupkg of this package was asked for."""
        lid, lver = package_id.lower(), version.lower()
        wanted = f"/v3/flat/{lid}/{lver}/{lid}.{lver}.nupkg"
        with self._lock:
            return sum(1 for path in self.requests if path == wanted)

    # -- documents --

    def _versions_of(self, lower_id: str) -> list[FeedPackage]:
        found = [p for key, p in self.packages.items() if key[0] == lower_id]
        return sorted(found, key=lambda p: parse_version(p.version)._key())

    def service_index(self) -> dict[str, Any]:
        base = self.base_url + "/v3/"
        resources = [
            {"@id": base + "registration-semver2/", "@type": "RegistrationsBaseUrl/3.6.0"},
            {"@id": base + "registration/", "@type": "RegistrationsBaseUrl/3.0.0-beta"},
            {"@id": base + "query", "@type": "SearchQueryService/3.0.0-beta"},
            {"@id": base + "autocomplete", "@type": "SearchAutocompleteService/3.0.0-beta"},
            {"@id": base + "publish", "@type": "PackagePublish/2.0.0"},
        ]
        if self.flat:
            resources.insert(0, {"@id": base + "flat/", "@type": "PackageBaseAddress/3.0.0"})
        if self.signatures is not None:
            resources.append({"@id": base + "repository-signatures/index.json", "@type": "RepositorySignatures/5.0.0"})
        return {"version": "3.0.0", "resources": resources}

    def _content_url(self, p: FeedPackage) -> str:
        lid, lver = p.key
        return f"{self.content_base or self.base_url}/v3/flat/{lid}/{lver}/{lid}.{lver}.nupkg"

    def _leaf(self, hive: str, p: FeedPackage) -> dict[str, Any]:
        lid, lver = p.key
        base = f"{self.base_url}/v3/{hive}/"
        entry = {
            "@id": f"{self.base_url}/v3/catalog/{lid}.{lver}.json",
            "id": p.id,
            "version": p.version,
            "listed": True,
            "packageContent": self._content_url(p),
            "dependencyGroups": [{"dependencies": [
                {"id": dep, "range": rng, "registration": f"{base}{dep.lower()}/index.json"} for dep, rng in p.dependencies
            ]}] if p.dependencies else [],
        }
        return {"@id": f"{base}{lid}/{lver}.json", "catalogEntry": entry, "packageContent": self._content_url(p),
                "registration": f"{base}{lid}/index.json"}

    def registration(self, hive: str, rest: str) -> Any:
        parts = rest.split("/")
        lid = parts[0].lower()
        versions = self._versions_of(lid)
        if not versions:
            return None
        base = f"{self.base_url}/v3/{hive}/{lid}/"
        lower, upper = versions[0].version.lower(), versions[-1].version.lower()
        page_url = f"{base}page/{lower}/{upper}.json"
        if parts[1:] == ["index.json"]:
            page = {"@id": page_url, "count": len(versions), "lower": lower, "upper": upper}
            # the SemVer 2 hive leaves a page of several versions to be fetched, as nuget.org does for big ids
            if hive != "registration-semver2" or len(versions) == 1:
                page.update(items=[self._leaf(hive, p) for p in versions], parent=base + "index.json")
            return {"@id": base + "index.json", "count": 1, "items": [page]}
        if parts[1:] == ["page", lower, f"{upper}.json"]:
            return {"@id": page_url, "count": len(versions), "lower": lower, "upper": upper,
                    "parent": base + "index.json", "items": [self._leaf(hive, p) for p in versions]}
        if len(parts) == 2:
            p = next((v for v in versions if f"{v.version.lower()}.json" == parts[1]), None)
            if p is not None:
                return {"@id": f"{base}{parts[1]}", "catalogEntry": f"{self.base_url}/v3/catalog/{lid}.{parts[1]}",
                        "listed": True, "packageContent": self._content_url(p), "registration": base + "index.json"}
        return None

    def search(self, query: dict[str, str]) -> Any:
        text = query.get("q", "").lower()
        ids = sorted({key[0] for key in self.packages if text in key[0]})
        data = []
        for lid in ids:
            versions = self._versions_of(lid)
            base = f"{self.base_url}/v3/registration-semver2/{lid}/"
            data.append({"@id": base + "index.json", "registration": base + "index.json", "id": versions[-1].id,
                         "version": versions[-1].version, "iconUrl": f"{self.base_url}/v3/flat/{lid}/icon",
                         "versions": [{"version": p.version, "downloads": 1, "@id": f"{base}{p.version.lower()}.json"}
                                      for p in versions]})
        return {"totalHits": len(data), "data": data}

    # -- lifecycle --

    def start(self) -> FeedServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path, _, query = self.path.partition("?")
                with owner._lock:
                    owner.requests.append(path)
                try:
                    self._route(path, dict(urllib.parse.parse_qsl(query)))
                except OSError:
                    pass  # the client hung up (a timeout or size cap on its side): expected

            def _route(self, path: str, query: dict[str, str]) -> None:
                if path.startswith("/redirected/"):
                    path = path[len("/redirected"):]
                    return self._package(path, fault=None) if path.endswith(".nupkg") else self._json(None)
                if path == "/v3/index.json":
                    return self._json(owner.service_index())
                if path == "/v3/repository-signatures/index.json" and owner.signatures is not None:
                    return self._json(owner.signatures)
                if path.startswith("/v3/flat/") and path.endswith("/index.json") and owner.flat:
                    versions = owner._versions_of(path.split("/")[3].lower())
                    return self._json({"versions": [p.version.lower() for p in versions]} if versions else None)
                if path.startswith("/v3/flat/") and path.endswith(".nupkg"):
                    return self._package(path, fault=owner.faults.get(path.split("/")[3]))
                for hive in ("registration-semver2", "registration"):
                    if path.startswith(f"/v3/{hive}/"):
                        return self._json(owner.registration(hive, path[len(f"/v3/{hive}/"):]))
                if path == "/v3/query":
                    return self._json(owner.search(query))
                if path == "/v3/autocomplete":
                    ids = sorted({p.id for p in owner.packages.values() if query.get("q", "").lower() in p.id.lower()})
                    return self._json({"totalHits": len(ids), "data": ids})
                return self._json(None)

            def _package(self, path: str, fault: str | None) -> None:
                parts = path.split("/")  # /v3/flat/{id}/{version}/{file}
                package = owner.packages.get((parts[3], parts[4])) if len(parts) == 6 else None
                if package is None or parts[5] != f"{parts[3]}.{parts[4]}.nupkg":
                    return self._send(404, b"not found")
                data = package.path.read_bytes()
                if fault is None:
                    return self._send(200, data, "application/octet-stream")
                if fault in ("timeout", "stall"):
                    if fault == "stall":
                        self._head(200, len(data))
                        self.wfile.write(data[: len(data) // 2])
                        self.wfile.flush()
                    owner._stop.wait(60)
                    self.close_connection = True
                elif fault == "reset":  # SO_LINGER 0: close() sends RST instead of FIN
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                elif fault == "truncate":
                    self._head(200, len(data))
                    self.wfile.write(data[: len(data) // 2])
                    self.close_connection = True
                elif fault == "oversize-declared":
                    self._head(200, owner.huge_bytes)
                    self.wfile.write(data)
                    self.close_connection = True
                elif fault == "oversize-stream":
                    self._head(200, None)
                    for _ in range(owner.huge_bytes // 65536):
                        if owner._stop.is_set():
                            break
                        self.wfile.write(b"\0" * 65536)
                    self.close_connection = True
                elif fault == "garbage":
                    self._send(200, b"this is not a zip archive\n" * 100, "application/octet-stream")
                elif fault.startswith("redirect-"):
                    port = owner.port
                    target = f"http://localhost:{port}{path}" if fault == "redirect-other-host" else f"/redirected{path}"
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif fault.startswith("status-"):
                    self._send(int(fault.split("-")[1]), b"upstream trouble")
                elif fault.startswith("wrong-package:"):
                    other_id, other_version = fault.split(":", 1)[1].lower().split("/")
                    self._send(200, owner.packages[(other_id, other_version)].path.read_bytes(), "application/octet-stream")
                elif fault in ("slow", "trickle"):
                    if fault == "slow":
                        if owner._stop.wait(owner.delay):
                            return
                        return self._send(200, data, "application/octet-stream")
                    self._head(200, len(data))
                    for start in range(0, len(data), 65536):
                        if owner._stop.wait(owner.delay):
                            return
                        self.wfile.write(data[start: start + 65536])
                        self.wfile.flush()
                else:
                    raise ValueError(f"unknown fault {fault!r}")

            def _head(self, status: int, length: int | None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream")
                if length is None:
                    self.send_header("Connection", "close")
                else:
                    self.send_header("Content-Length", str(length))
                self.end_headers()

            def _json(self, document: Any) -> None:
                if document is None:
                    return self._send(404, b'{"error":"not found"}', "application/json")
                self._send(200, json.dumps(document).encode(), "application/json")

            def _send(self, status: int, payload: bytes, content_type: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

        return self._serve_with(Handler)
