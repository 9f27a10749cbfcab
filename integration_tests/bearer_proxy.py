"""A loopback gateway that speaks Bearer to the client and Basic to Cyrus.

Cyrus only accepts Basic auth; this stands in for a server that takes API tokens, so
Bearer auth is proven end to end against the real JMAP server rather than a mock.
"""

from __future__ import annotations

import base64
import http.client
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager

FORWARDED_HEADERS = ("Content-Type", "Accept", "Host")
RETURNED_HEADERS = ("Content-Type", "Location", "Retry-After")


@contextmanager
def bearer_gateway(token: str, user: str, password: str, upstream_port: int) -> Iterator[str]:
    """Serve on a free loopback port; yields its origin."""
    basic = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    class Gateway(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self._forward()

        def do_POST(self) -> None:
            self._forward()

        def _forward(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name: self.headers[name] for name in FORWARDED_HEADERS if self.headers[name]}
            if self.path.startswith("/.well-known/"):
                pass  # discovery needs no credentials
            elif self.headers.get("Authorization") == f"Bearer {token}":
                headers["Authorization"] = basic
            else:
                self._reply(401, {"WWW-Authenticate": 'Bearer realm="jmap", error="invalid_token"'}, b"")
                return
            upstream = http.client.HTTPConnection("127.0.0.1", upstream_port, timeout=60)
            upstream.request(self.command, self.path, body=body or None, headers=headers)
            response = upstream.getresponse()
            payload = response.read()
            upstream.close()
            self._reply(response.status, {h: response.getheader(h) for h in RETURNED_HEADERS if response.getheader(h)},
                        payload)

        def _reply(self, status: int, headers: dict[str, str], payload: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
