"""The lifecycle shared by the test servers: an HTTP server on 127.0.0.1 in a daemon thread."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    request_queue_size = 64  # parallel clients in tests must not hit a full listen backlog
    daemon_threads = True
    block_on_close = False  # a hanging handler must not block stop()


class LoopbackServer:
    """Subclasses build their handler class in start() and pass it to _serve_with().
    `_stop` is set by stop(), releasing handlers that hang or trickle on purpose."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Any:
        raise NotImplementedError

    def _serve_with(self, handler: type[BaseHTTPRequestHandler]) -> Any:
        self._httpd = _Server(("127.0.0.1", 0), handler)
        self._stop.clear()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError("the server is not running")
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"
