"""A real HTTP server on loopback for the tests that must see how answers come off the socket."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackHandler(BaseHTTPRequestHandler):
    """A handler for `loopback_server`: keep-alive (HTTP/1.1), quiet, and one way to start an answer."""

    protocol_version = "HTTP/1.1"

    def send_head(self, status: int, length: int, media_type: str | None = None) -> None:
        """The status line and headers of an answer of `length` bytes, flushed (the body may trickle after)."""
        self.send_response(status)
        if media_type is not None:
            self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.flush()

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def loopback_server(handler: type[BaseHTTPRequestHandler], **attributes: Any) -> Iterator[ThreadingHTTPServer]:
    """`handler` served on 127.0.0.1 (a free port) in threads, with `attributes` set on the server for it."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True  # a handler still trickling its answer does not hold the shutdown
    for name, value in attributes.items():
        setattr(httpd, name, value)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        yield httpd
    finally:
        httpd.shutdown()
        httpd.server_close()


def origin(httpd: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{httpd.server_port}"  # ignore-https-check: a test server on loopback
