"""RFC 3161 timestamp servers on 127.0.0.1 for tests.

`TimestampServer` is our own responder (asn1crypto + cryptography) with knobs for every way a TSA
can go wrong. `OpenSSLTimestampServer` answers each request by running `openssl ts -reply`: an
independent implementation, so our client is not only tested against our own server.

    with TimestampServer(pki.tsa) as tsa:
        sign_package(pkg, identity=..., timestamper=tsa.url)

Knobs are plain attributes and may be changed while the server runs (tsa.wrong_nonce = True).
"""

from __future__ import annotations

import hashlib
import itertools
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from asn1crypto import cms, core, tsp
from cryptography.hazmat.primitives import serialization

from trustpolicy._internal import clock
from trustpolicy._internal.sign import (
    TimeStampResp,
    attribute,
    make_signer_info,
    signing_certificate_v1,
    signing_certificate_v2,
    signing_time_value,
)
from trustpolicy.testing.pki import Issued
from trustpolicy.testing.server import LoopbackServer

__all__ = ["DEFAULT_POLICY", "OpenSSLTimestampServer", "TimestampServer"]

DEFAULT_POLICY = "1.3.6.1.4.1.55555.3161.1"  # an arbitrary test policy OID
REPLY_TYPE = "application/timestamp-reply"
MAX_REQUEST = 64 * 1024


class _Responder(LoopbackServer):
    """The HTTP side shared by both servers: a POST body in, (status, content type, body) out."""

    def __init__(self) -> None:
        super().__init__()
        self.http_status = 200  # anything else: answer with that status and no token
        self.hang = 0.0  # seconds to wait before answering (longer than the client timeout = hang)
        # None | "reset" (TCP RST, no answer) | "redirect-loop" (302 back and forth) | "huge" (200
        # streaming `huge_bytes` without a length) | "trickle" (one byte every 0.2 s, for minutes)
        self.fault: str | None = None
        self.huge_bytes = 64 * 1024 * 1024
        self.request_count = 0

    # -- lifecycle --

    def start(self) -> Any:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_POST(self) -> None:
                try:
                    length = int(self.headers.get("Content-Length") or 0)
                except ValueError:
                    length = -1
                if not 0 <= length <= MAX_REQUEST:
                    self._answer(413, "text/plain", b"request too large")
                    return
                body = self.rfile.read(length)
                owner.request_count += 1
                if owner.hang and owner._stop.wait(owner.hang):
                    return  # server stopping: drop the connection
                if owner.fault:
                    self._fault(owner.fault)
                    return
                if owner.http_status != 200:
                    self._answer(owner.http_status, "text/plain", b"timestamp service unavailable")
                    return
                try:
                    answer = owner.respond(body)
                except Exception as exc:
                    answer = (500, "text/plain", f"{type(exc).__name__}: {exc}".encode())
                self._answer(*answer)

            def do_GET(self) -> None:
                if owner.fault:
                    self._fault(owner.fault)
                else:
                    self._answer(405, "text/plain", b"POST a TimeStampReq")

            def _fault(self, fault: str) -> None:
                if fault == "reset":  # SO_LINGER 0: close() sends RST instead of FIN
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                elif fault == "redirect-loop":
                    target = "/loop-b" if self.path != "/loop-b" else "/loop-a"
                    try:
                        self.send_response(302)
                        self.send_header("Location", target)
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                    except OSError:
                        pass
                elif fault in ("huge", "trickle"):
                    if fault == "huge":
                        chunk, count, pause = b"\0" * 65536, owner.huge_bytes // 65536, 0.0
                    else:
                        chunk, count, pause = b"\x30", 1000, 0.2
                    try:
                        self.send_response(200)
                        self.send_header("Content-Type", REPLY_TYPE)
                        self.end_headers()
                        for _ in range(count):
                            if owner._stop.is_set() or (pause and owner._stop.wait(pause)):
                                return
                            self.wfile.write(chunk)
                            self.wfile.flush()
                    except OSError:
                        pass  # the client hung up (size cap or timeout): expected
                else:
                    raise ValueError(f"unknown fault {fault!r}")

            def _answer(self, status: int, content_type: str, payload: bytes) -> None:
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the client gave up (timeout test): nothing to do

            def log_message(self, format: str, *args: Any) -> None:  # quiet test output
                pass

        return self._serve_with(Handler)

    @property
    def url(self) -> str:
        return self.base_url + "/tsa"

    def respond(self, body: bytes) -> tuple[int, str, bytes]:
        raise NotImplementedError


def _rejection(status: str, text: str, fail_info: str | None = None) -> bytes:
    info: dict[str, Any] = {"status": status, "status_string": [text]}
    if fail_info:
        info["fail_info"] = {fail_info}
    return TimeStampResp({"status": info}).dump()


class TimestampServer(_Responder):
    """Our own RFC 3161 responder signing with `tsa` (an Issued from TestPKI).

    Knobs (attributes): policy, accuracy (timedelta or None), gen_time (fixed datetime or None for
    the clock), hash_algorithm (token digest), wrong_imprint, wrong_nonce, omit_nonce, garbage
    (True, or the exact bytes of a body that is not a TimeStampResp), status ("granted",
    "rejection", "waiting"...), http_status, hang (seconds), fault ("reset", "redirect-loop",
    "huge", "trickle"; see _Responder),
    include_certificates (None: honour certReq), include_chain, signing_certificate
    ("v2" | "v1" | "both" | "none"), signer_key (sign with another key: a bad token signature).
    Received requests are kept in `requests` (parsed TimeStampReq).
    """

    def __init__(
        self,
        tsa: Issued,
        *,
        policy: str = DEFAULT_POLICY,
        accuracy: timedelta | None = None,
        gen_time: datetime | None = None,
        hash_algorithm: str = "sha256",
        wrong_imprint: bool = False,
        wrong_nonce: bool = False,
        omit_nonce: bool = False,
        garbage: bool | bytes = False,
        status: str = "granted",
        http_status: int = 200,
        hang: float = 0.0,
        fault: str | None = None,
        include_certificates: bool | None = None,
        include_chain: bool = True,
        signing_certificate: str = "v2",
        signer_key: Any = None,
    ) -> None:
        super().__init__()
        self.tsa = tsa
        self.policy = policy
        self.accuracy = accuracy
        self.gen_time = gen_time
        self.hash_algorithm = hash_algorithm
        self.wrong_imprint = wrong_imprint
        self.wrong_nonce = wrong_nonce
        self.omit_nonce = omit_nonce
        self.garbage = garbage
        self.status = status
        self.http_status = http_status
        self.hang = hang
        self.fault = fault
        self.include_certificates = include_certificates
        self.include_chain = include_chain
        self.signing_certificate = signing_certificate
        self.signer_key = signer_key
        self.requests: list[tsp.TimeStampReq] = []
        self._serials = itertools.count(1)
        self._lock = threading.Lock()

    def start(self) -> TimestampServer:
        return super().start()  # type: ignore[no-any-return]

    def __enter__(self) -> TimestampServer:
        return self.start()

    def respond(self, body: bytes) -> tuple[int, str, bytes]:
        if self.garbage:
            payload = self.garbage if isinstance(self.garbage, bytes) else b"this is not a timestamp response"
            return 200, REPLY_TYPE, payload
        try:
            request = tsp.TimeStampReq.load(body, strict=True)
            _ = request.native  # parse everything now
        except (ValueError, TypeError):
            return 200, REPLY_TYPE, _rejection("rejection", "malformed request", "bad_data_format")
        with self._lock:
            self.requests.append(request)
            serial = next(self._serials)
        if self.status not in ("granted", "granted_with_mods"):
            return 200, REPLY_TYPE, _rejection(self.status, "refused by test knob")
        token = self.make_token(request, serial)
        response = TimeStampResp({"status": {"status": self.status}, "time_stamp_token": token})
        return 200, REPLY_TYPE, response.dump()

    def make_token(self, request: tsp.TimeStampReq, serial: int = 1) -> cms.ContentInfo:
        """The TimeStampToken for `request` with the current knobs applied."""
        imprint = request["message_imprint"]
        hashed = bytearray(imprint["hashed_message"].native)
        if self.wrong_imprint:
            hashed[0] ^= 0xFF
        gen_time = (self.gen_time or clock.now()).replace(microsecond=0)
        tst: dict[str, Any] = {
            "version": "v1",
            "policy": self.policy,
            "message_imprint": {
                "hash_algorithm": imprint["hash_algorithm"],
                "hashed_message": bytes(hashed),
            },
            "serial_number": serial,
            "gen_time": gen_time,
        }
        if self.accuracy is not None:
            tst["accuracy"] = _accuracy(self.accuracy)
        nonce = request["nonce"].native
        if self.wrong_nonce:
            nonce = (nonce or 0) + 1
        if nonce is not None and not self.omit_nonce:
            tst["nonce"] = nonce
        tst_der = tsp.TSTInfo(tst).dump()

        cert = self.tsa.certificate
        signed = [
            attribute("content_type", "tst_info"),
            attribute("signing_time", signing_time_value(gen_time)),
            attribute("message_digest", hashlib.new(self.hash_algorithm, tst_der).digest()),
        ]
        if self.signing_certificate in ("v2", "both"):
            signed.append(attribute("signing_certificate_v2", signing_certificate_v2(cert, self.hash_algorithm)))
        if self.signing_certificate in ("v1", "both"):
            signed.append(attribute("signing_certificate", signing_certificate_v1(cert)))
        # issuerAndSerialNumber: PKCS#7 readers (openssl ts -verify) cannot resolve a key identifier.
        info = make_signer_info(cert, self.signer_key or self.tsa.private_key, self.hash_algorithm, signed,
                                prefer_ski=False)
        wants_certs = request["cert_req"].native if self.include_certificates is None else self.include_certificates
        certs = (self.tsa.chain if self.include_chain else (cert,)) if wants_certs else ()
        signed_data: dict[str, Any] = {
            "version": "v3",
            "digest_algorithms": [{"algorithm": self.hash_algorithm}],
            "encap_content_info": {"content_type": "tst_info", "content": core.ParsableOctetString(tst_der)},
            "signer_infos": [info],
        }
        if certs:
            signed_data["certificates"] = [
                cms.CertificateChoices.load(c.public_bytes(serialization.Encoding.DER)) for c in certs
            ]
        return cms.ContentInfo({"content_type": "signed_data", "content": cms.SignedData(signed_data)})


def _accuracy(value: timedelta) -> dict[str, int]:
    micros_total = int(value / timedelta(microseconds=1))
    seconds, rest = divmod(micros_total, 1_000_000)
    millis, micros = divmod(rest, 1000)
    parts = {"seconds": seconds, "millis": millis, "micros": micros}
    return {k: v for k, v in parts.items() if v} or {"seconds": 0}


_OPENSSL_CONFIG = """\
[ tsa ]
default_tsa = tsa_config

[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/chain.pem
signer_key = $dir/tsa.key.pem
signer_digest = {digest}
default_policy = {policy}
digests = sha256, sha384, sha512
accuracy = {accuracy}
clock_precision_digits = 0
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = {ess}
"""


class OpenSSLTimestampServer(_Responder):
    """The same HTTP endpoint, each request answered by `openssl ts -reply` with a generated config.

    Knobs: policy, hash_algorithm (signer digest), accuracy (openssl syntax "secs:1, millisecs:500"),
    ess_cert_id_alg ("sha1" writes signing-certificate v1, "sha256" v2), plus http_status and hang.
    """

    def __init__(
        self,
        tsa: Issued,
        directory: str | Path | None = None,
        *,
        policy: str = DEFAULT_POLICY,
        hash_algorithm: str = "sha256",
        accuracy: str = "secs:1",
        ess_cert_id_alg: str = "sha256",
        openssl: str | None = None,
    ) -> None:
        super().__init__()
        binary = openssl or shutil.which("openssl")
        if binary is None:
            raise RuntimeError("openssl is not installed")
        self.openssl = binary
        self._own_dir = directory is None
        self.directory = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="tp-openssl-tsa-"))
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        d = self.directory
        (d / "tsa.pem").write_bytes(tsa.pem)
        (d / "tsa.key.pem").write_bytes(tsa.key_pem)
        (d / "chain.pem").write_bytes(
            b"".join(c.public_bytes(serialization.Encoding.PEM) for c in tsa.chain[1:]) or tsa.pem
        )
        (d / "serial").write_text("01\n")
        self.config = d / "openssl.cnf"
        self.config.write_text(
            _OPENSSL_CONFIG.format(dir=d, digest=hash_algorithm, policy=policy, accuracy=accuracy, ess=ess_cert_id_alg)
        )

    def start(self) -> OpenSSLTimestampServer:
        return super().start()  # type: ignore[no-any-return]

    def __enter__(self) -> OpenSSLTimestampServer:
        return self.start()

    def stop(self) -> None:
        super().stop()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def respond(self, body: bytes) -> tuple[int, str, bytes]:
        with self._lock:  # one openssl at a time: it rewrites the serial file
            query, reply = self.directory / "query.tsq", self.directory / "reply.tsr"
            query.write_bytes(body)
            reply.unlink(missing_ok=True)
            result = subprocess.run(
                [self.openssl, "ts", "-reply", "-config", str(self.config), "-queryfile", str(query),
                 "-out", str(reply)],
                capture_output=True,
                timeout=30,
            )
            if result.returncode != 0 or not reply.exists():
                return 500, "text/plain", result.stderr[-2000:]
            return 200, REPLY_TYPE, reply.read_bytes()
