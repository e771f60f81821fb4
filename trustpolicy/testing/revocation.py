"""A CRL distribution point and an OCSP responder on 127.0.0.1 for tests.

Real HTTP servers (threads, port 0) that answer with real CRLs and OCSP responses made by
`trustpolicy.testing.pki`, plus knobs for every way a revocation server can fail:

    with CRLServer() as cdp, OCSPResponder(pki.intermediate) as ocsp:
        url = cdp.publish("intermediate.crl", pki.make_crl(pki.intermediate, revoked=[leaf.serial]))
        ocsp.set_status(leaf, "revoked", revocation_time=...)
        leaf = pki.issue_code_signing("Leaf", crl_urls=[url], ocsp_urls=[ocsp.url])

Knobs are plain attributes and may be changed while the server runs:
`failure` = None (answer normally) | "hang" (sleep `hang_seconds` before answering) | "reset"
(TCP RST without an answer) | "garbage" (200 with random bytes) | "huge" (200 streaming
`huge_bytes` bytes without a length) | "huge-declared" (200 announcing a 1 GiB Content-Length) |
"redirect-loop" (302 back and forth) | "http-500" | "trickle" (one byte every 0.2 s).
`requests` counts the requests received, `paths` lists them.
"""

from __future__ import annotations

import base64
import os
import socket
import struct
import threading
import urllib.parse
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any

from cryptography import x509
from cryptography.x509 import ocsp

from trustpolicy.testing.pki import Issued, make_ocsp_error, make_ocsp_response
from trustpolicy.testing.server import LoopbackServer

__all__ = ["FAILURES", "CRLServer", "OCSPResponder", "closed_port_url"]

FAILURES = (None, "hang", "reset", "garbage", "huge", "huge-declared", "redirect-loop", "http-500", "trickle")
_MAX_REQUEST = 64 * 1024


def closed_port_url(path: str = "/x.crl") -> str:
    """An http://127.0.0.1 URL on a port nobody listens on (connection refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


class _RevocationServer(LoopbackServer):
    """The HTTP side shared by both servers; subclasses implement `answer(method, path, body)`."""

    content_type = "application/octet-stream"

    def __init__(self) -> None:
        super().__init__()
        self.failure: str | None = None
        self.hang_seconds = 30.0
        self.huge_bytes = 64 * 1024 * 1024
        self.requests = 0
        self.paths: list[str] = []
        self._lock = threading.Lock()

    # -- lifecycle --

    def start(self) -> Any:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:
                owner._serve(self, "GET", b"")

            def do_POST(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if not 0 <= length <= _MAX_REQUEST:
                    owner._send(self, 413, b"request too large")
                    return
                owner._serve(self, "POST", self.rfile.read(length))

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

        return self._serve_with(Handler)

    # -- request handling --

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        raise NotImplementedError

    def _serve(self, handler: BaseHTTPRequestHandler, method: str, body: bytes) -> None:
        with self._lock:
            self.requests += 1
            self.paths.append(handler.path)
        failure = self.failure
        if failure == "hang":
            self._stop.wait(self.hang_seconds)
            return  # drop the connection without an answer
        if failure == "reset":
            # SO_LINGER 0: close() sends RST instead of FIN.
            handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            handler.connection.close()
            handler.close_connection = True
            return
        if failure == "http-500":
            self._send(handler, 500, b"internal error")
            return
        if failure == "garbage":
            self._send(handler, 200, os.urandom(512))
            return
        if failure == "redirect-loop":
            target = "/loop-b" if handler.path != "/loop-b" else "/loop-a"
            self._send(handler, 302, b"", headers={"Location": target})
            return
        if failure == "huge-declared":
            self._send(handler, 200, b"\x30\x84", headers={"Content-Length": str(1 << 30)}, length=False)
            return
        if failure == "huge":
            self._stream(handler, b"\0" * 65536, self.huge_bytes // 65536, 0.0)
            return
        status, payload = self.answer(method, urllib.parse.urlsplit(handler.path).path, body)
        if failure == "trickle":
            self._stream(handler, payload[:1] or b"\0", max(len(payload), 1000), 0.2)
            return
        self._send(handler, status, payload)

    def _send(
        self,
        handler: BaseHTTPRequestHandler,
        status: int,
        payload: bytes,
        *,
        headers: dict[str, str] | None = None,
        length: bool = True,
    ) -> None:
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", self.content_type)
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            if length:
                handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except OSError:
            pass  # the client gave up: nothing to do

    def _stream(self, handler: BaseHTTPRequestHandler, chunk: bytes, count: int, pause: float) -> None:
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", self.content_type)
            handler.end_headers()
            for _ in range(count):
                if self._stop.is_set() or (pause and self._stop.wait(pause)):
                    return
                handler.wfile.write(chunk)
                handler.wfile.flush()
        except OSError:
            pass  # the client hung up (size cap or timeout): expected


class CRLServer(_RevocationServer):
    """Serves CRLs by path: `publish(name, der)` returns the URL to put in a CDP extension."""

    content_type = "application/pkix-crl"

    def __init__(self) -> None:
        super().__init__()
        self.crls: dict[str, bytes] = {}

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name.lstrip('/')}"

    def publish(self, name: str, der: bytes) -> str:
        self.crls["/" + name.lstrip("/")] = der
        return self.url(name)

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if method != "GET" or path not in self.crls:
            return 404, b"no such CRL"
        return 200, self.crls[path]


class OCSPResponder(_RevocationServer):
    """An RFC 6960 responder for the certificates issued by `ca` (POST, and GET with base64 path).

    `set_status(cert, "good" | "revoked" | "unknown", revocation_time=...)` registers a certificate;
    a request for any other serial gets an "unauthorized" error response. `responder` signs with a
    delegated OCSP responder certificate instead of the CA. `this_update` / `next_update` fix the
    response times (default: pki.make_ocsp_response's, i.e. around the wall clock).
    """

    content_type = "application/ocsp-response"

    def __init__(self, ca: Issued, *, responder: Issued | None = None) -> None:
        super().__init__()
        self.ca = ca
        self.responder = responder
        self.this_update: datetime | None = None
        self.next_update: datetime | None = None
        self.statuses: dict[int, tuple[x509.Certificate, str, datetime | None]] = {}

    @property
    def url(self) -> str:
        return f"{self.base_url}/ocsp"

    def set_status(
        self, cert: Issued | x509.Certificate, status: str, *, revocation_time: datetime | None = None
    ) -> None:
        if status not in ("good", "revoked", "unknown"):
            raise ValueError(f"unknown OCSP status {status!r}")
        certificate = cert.certificate if isinstance(cert, Issued) else cert
        self.statuses[certificate.serial_number] = (certificate, status, revocation_time)

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, bytes]:
        if method == "GET":  # RFC 6960 A.1: base64 of the DER request, URL-encoded, as the last path segment
            encoded = urllib.parse.unquote(path.rsplit("/", 1)[-1])
            try:
                body = base64.b64decode(encoded, validate=True)
            except ValueError:
                return 400, b"bad request encoding"
        try:
            request = ocsp.load_der_ocsp_request(body)
        except ValueError:
            return 200, make_ocsp_error("malformed_request")
        entry = self.statuses.get(request.serial_number)
        if entry is None:
            return 200, make_ocsp_error("unauthorized")
        certificate, status, revocation_time = entry
        return 200, make_ocsp_response(
            self.ca,
            certificate,
            status,
            this_update=self.this_update,
            next_update=self.next_update,
            revocation_time=revocation_time,
            responder=self.responder,
            request=request,
        )
